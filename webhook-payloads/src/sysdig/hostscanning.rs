//! Host vulnerability scanning results (`type: hostscanning`).
//!
//! As for benchmarks, the envelope is typed and `content` is kept as a JSON object (lossless).

use super::base::sysdig_event;

sysdig_event! {
    /// A host scanning (vulnerability) result event.
    pub struct HostScanningEvent {
        /// `content`: the scan result (host, vulnerabilities, ...).
        content "content": Option<serde_json::Map<String, serde_json::Value>>,
    }
}

impl HostScanningEvent<'_> {
    /// A string member of `content` (`hostname`, `mac`, ...).
    pub fn content_str(&self, key: &str) -> Option<&str> {
        self.content.as_ref()?.get(key)?.as_str()
    }
}
