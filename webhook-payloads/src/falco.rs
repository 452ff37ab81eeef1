//! Falco / Falcosidekick events: one JSON object per request (Falco's `http_output` with
//! `json_output: true`, or Falcosidekick's webhook output).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Timestamp;
use crate::object::json_object;

json_object! {
    /// A Falco event.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use webhook_payloads::falco::{FalcoEvent, Priority};
    /// let ev: FalcoEvent = serde_json::from_str(r#"{"uuid":"6fd6c5b0-7ba4-4b2b-9ab2-6d5e3c1a4f00",
    ///   "output":"Shell spawned","priority":"Warning","rule":"Terminal shell in container",
    ///   "time":"2024-07-03T18:23:21.639981110Z","output_fields":{"proc.pid":4242},
    ///   "source":"syscall","tags":["container","shell"],"hostname":"node-1"}"#)?;
    /// assert_eq!(ev.priority, Some(Priority::Warning));
    /// assert_eq!(ev.time.as_ref().and_then(|t| t.unix_nanos()), Some(1_720_031_001_639_981_110));
    /// # Ok(()) }
    /// ```
    pub struct FalcoEvent {
        /// `uuid`.
        uuid "uuid": Option<String>,
        /// `output`: the formatted message.
        output "output": Option<String>,
        /// `priority`.
        priority "priority": Option<Priority>,
        /// `rule`.
        rule "rule": Option<String>,
        /// `time` (RFC 3339).
        time "time": Option<Timestamp>,
        /// `output_fields`: values keep their JSON type (numbers, strings, null).
        output_fields "output_fields": Option<serde_json::Map<String, serde_json::Value>>,
        /// `source`, e.g. `syscall`, `k8s_audit`.
        source "source": Option<String>,
        /// `tags[]`.
        tags "tags": Option<Vec<String>>,
        /// `hostname`.
        hostname "hostname": Option<String>,
    }
}

impl FalcoEvent {
    /// An output field as text (strings as is, other scalars as their JSON text).
    pub fn output_field(&self, key: &str) -> Option<String> {
        match self.output_fields.as_ref()?.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            v => Some(v.to_string()),
        }
    }
}

/// Falco's priority levels (syslog severities), matched case-insensitively.
///
/// ```
/// use webhook_payloads::falco::Priority;
/// assert_eq!(Priority::parse("warning"), Priority::Warning);
/// assert_eq!(Priority::Informational.to_string(), "Informational");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Priority {
    /// Emergency.
    Emergency,
    /// Alert.
    Alert,
    /// Critical.
    Critical,
    /// Error.
    Error,
    /// Warning.
    Warning,
    /// Notice.
    Notice,
    /// Informational (`Informational` or `Info`).
    Informational,
    /// Debug.
    Debug,
    /// Anything else, as sent.
    Other(String),
}

impl Priority {
    /// Classifies a priority; never fails.
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "emergency" => Self::Emergency,
            "alert" => Self::Alert,
            "critical" => Self::Critical,
            "error" => Self::Error,
            "warning" => Self::Warning,
            "notice" => Self::Notice,
            "informational" | "info" => Self::Informational,
            "debug" => Self::Debug,
            _ => Self::Other(s.to_owned()),
        }
    }

    /// Falco's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Emergency => "Emergency",
            Self::Alert => "Alert",
            Self::Critical => "Critical",
            Self::Error => "Error",
            Self::Warning => "Warning",
            Self::Notice => "Notice",
            Self::Informational => "Informational",
            Self::Debug => "Debug",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Priority {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}
crate::object::json_via_serde!(Priority);
crate::fast::fast_via_serde!(Priority);
