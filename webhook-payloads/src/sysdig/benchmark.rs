//! Compliance benchmark results (`type: benchmark`).
//!
//! Sysdig does not publish this content's schema field by field; the envelope is typed and
//! `content` is kept as a JSON object (lossless), with accessors for the counters it usually has.

use super::base::sysdig_event;

sysdig_event! {
    /// A benchmark (compliance) result event.
    pub struct BenchmarkEvent {
        /// `content`: the benchmark run (task, counts, ...).
        content "content": Option<serde_json::Map<String, serde_json::Value>>,
    }
}

impl BenchmarkEvent<'_> {
    /// An integer member of `content` (`passCount`, `failCount`, `warnCount`, ...), also when
    /// written as a string.
    pub fn content_u64(&self, key: &str) -> Option<u64> {
        match self.content.as_ref()?.get(key)? {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A string member of `content` (`taskName`, `benchmarkType`, ...).
    pub fn content_str(&self, key: &str) -> Option<&str> {
        self.content.as_ref()?.get(key)?.as_str()
    }
}
