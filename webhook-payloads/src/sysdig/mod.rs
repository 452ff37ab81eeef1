//! Sysdig Secure event forwarding: runtime policy events (current and legacy), activity audit
//! (`command`, `connection`, `fileaccess`, `kubernetes`), platform audit (`audittrail`),
//! `benchmark` and `hostscanning`, behind one enum [`SysdigEvent`] dispatching on `type`.
//!
//! Sysdig sends a JSON array per request (agent-local forwarding may send NDJSON);
//! [`parse_batch`] reads both. Every field but `id`, `type` and `timestamp` is optional, unknown
//! fields are kept in each struct's `extra`, so parse → serialize → parse is lossless.
//! `timestamp` is `u64` nanoseconds, parsed exactly (values above 2^53 never pass through `f64`),
//! and [`SysdigEvent::to_writer_with`] writes it at any [`TimestampFormat`].
//!
//! Dispatch reads the object twice: a skim that allocates nothing finds `type` (and the legacy
//! markers), then the object is parsed straight into its struct. This is faster than one pass
//! through a buffered tree (serde's internally tagged enums) and the reason
//! [`SysdigEvent::from_slice`] / [`parse_batch`] are the fast path; the `Deserialize` impl, which
//! must work with any deserializer, goes through `serde_json::Value`.

mod activity;
mod audittrail;
mod base;
mod benchmark;
mod hostscanning;
mod legacy;
mod policy;
mod severity;

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

pub use activity::{
    CommandEvent, ConnectionEvent, FileAccessEvent, KubernetesArgs, KubernetesEvent, KubernetesUser,
};
pub use audittrail::{AuditTrailContent, AuditTrailEvent};
pub use benchmark::BenchmarkEvent;
pub use hostscanning::HostScanningEvent;
pub use legacy::{KeyValue, LegacyPolicyEvent};
pub use policy::{Action, PolicyContent, PolicyEvent};
pub use severity::Severity;

use crate::decode::{Framing, Record, framing, record_error, split_records};
use crate::object::Key;
use crate::{DecodeError, TimestampFormat};

/// Writes a nanosecond timestamp at the requested resolution.
pub(crate) fn write_ns(ns: &u64, format: TimestampFormat) -> u64 {
    format.from_nanos(*ns)
}

/// One Sysdig Secure event, by its `type`.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use webhook_payloads::sysdig::SysdigEvent;
/// use webhook_payloads::TimestampFormat;
/// let line = r#"{"id":"17e047be24848be2ae63efba47ac8869","agentId":57228830,"containerId":"",
///   "type":"connection","timestamp":1720453939637554200}"#;
/// let ev = SysdigEvent::from_slice(line.as_bytes())?;
/// assert!(matches!(ev, SysdigEvent::Connection(_)));
/// assert_eq!(ev.timestamp_ns(), Some(1_720_453_939_637_554_200));
/// let ms = ev.to_vec_with(TimestampFormat::Milliseconds)?;
/// assert!(std::str::from_utf8(&ms)?.contains(r#""timestamp":1720453939637"#));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SysdigEvent {
    /// `policy`, current format.
    Policy(Box<PolicyEvent>),
    /// `policy`, deprecated legacy format (flat `policyId`, `actionResults`, `timestampNs`, ...).
    LegacyPolicy(Box<LegacyPolicyEvent>),
    /// `command` (activity audit).
    Command(Box<CommandEvent>),
    /// `connection` (activity audit).
    Connection(Box<ConnectionEvent>),
    /// `fileaccess` (activity audit).
    FileAccess(Box<FileAccessEvent>),
    /// `kubernetes` (activity audit).
    Kubernetes(Box<KubernetesEvent>),
    /// `audittrail` (platform audit).
    AuditTrail(Box<AuditTrailEvent>),
    /// `benchmark`.
    Benchmark(Box<BenchmarkEvent>),
    /// `hostscanning`.
    HostScanning(Box<HostScanningEvent>),
    /// Any other (or missing) `type`: the JSON as received.
    Unknown(Value),
}

/// What the skim found: the `type` and whether legacy-only keys are present.
#[derive(Default)]
struct Probe<'a> {
    kind: Option<Cow<'a, str>>,
    legacy: bool,
}

/// A `type` value: a string, or anything else (skipped).
struct TypeValue<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for TypeValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TypeValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(TypeValue(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TypeValue(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(TypeValue(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(TypeValue(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(TypeValue(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(TypeValue(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(TypeValue(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TypeValue(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(TypeValue(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Probe<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Probe<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Sysdig event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut p = Probe::default();
                while let Some(Key(k)) = m.next_key::<Key<'de>>()? {
                    match &*k {
                        "type" => p.kind = m.next_value::<TypeValue<'de>>()?.0,
                        "policyId" | "actionResults" | "timestampNs" | "eventLabels" => {
                            p.legacy = true;
                            m.next_value::<IgnoredAny>()?;
                        }
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(p)
            }
        }
        d.deserialize_map(V)
    }
}

/// The variant a `type` (and the legacy markers) select.
#[derive(Clone, Copy)]
enum Kind {
    Policy,
    Legacy,
    Command,
    Connection,
    FileAccess,
    Kubernetes,
    AuditTrail,
    Benchmark,
    HostScanning,
    Unknown,
}

fn kind_of(kind: Option<&str>, legacy: bool) -> Kind {
    let Some(k) = kind else {
        return if legacy { Kind::Legacy } else { Kind::Unknown };
    };
    let is = |name: &str| k.eq_ignore_ascii_case(name);
    if is("policy") {
        if legacy { Kind::Legacy } else { Kind::Policy }
    } else if is("command") {
        Kind::Command
    } else if is("connection") {
        Kind::Connection
    } else if is("fileaccess") {
        Kind::FileAccess
    } else if is("kubernetes") {
        Kind::Kubernetes
    } else if is("audittrail") {
        Kind::AuditTrail
    } else if is("benchmark") {
        Kind::Benchmark
    } else if is("hostscanning") {
        Kind::HostScanning
    } else {
        Kind::Unknown
    }
}

impl SysdigEvent {
    /// Parses one event from JSON bytes (the fast path).
    ///
    /// # Errors
    ///
    /// [`DecodeError::Syntax`] when the bytes are not JSON, [`DecodeError::Shape`] when they are
    /// not an object or a known `type` lacks `id`/`timestamp` or has ill-typed fields.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::parse_at(bytes).map_err(|e| DecodeError::from_json(&e))
    }

    fn parse_at(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let probe: Probe<'_> = serde_json::from_slice(bytes)?;
        let kind = kind_of(probe.kind.as_deref(), probe.legacy);
        Ok(match kind {
            Kind::Policy => Self::Policy(serde_json::from_slice(bytes)?),
            Kind::Legacy => Self::LegacyPolicy(serde_json::from_slice(bytes)?),
            Kind::Command => Self::Command(serde_json::from_slice(bytes)?),
            Kind::Connection => Self::Connection(serde_json::from_slice(bytes)?),
            Kind::FileAccess => Self::FileAccess(serde_json::from_slice(bytes)?),
            Kind::Kubernetes => Self::Kubernetes(serde_json::from_slice(bytes)?),
            Kind::AuditTrail => Self::AuditTrail(serde_json::from_slice(bytes)?),
            Kind::Benchmark => Self::Benchmark(serde_json::from_slice(bytes)?),
            Kind::HostScanning => Self::HostScanning(serde_json::from_slice(bytes)?),
            Kind::Unknown => Self::Unknown(serde_json::from_slice(bytes)?),
        })
    }

    /// Builds an event from an already parsed JSON value.
    ///
    /// # Errors
    ///
    /// The `serde_json` error of the selected variant.
    pub fn from_value(v: Value) -> Result<Self, serde_json::Error> {
        let legacy = v.as_object().is_some_and(|o| {
            ["policyId", "actionResults", "timestampNs", "eventLabels"]
                .iter()
                .any(|k| o.contains_key(*k))
        });
        let kind = kind_of(v.get("type").and_then(Value::as_str), legacy);
        Ok(match kind {
            Kind::Policy => Self::Policy(serde_json::from_value(v)?),
            Kind::Legacy => Self::LegacyPolicy(serde_json::from_value(v)?),
            Kind::Command => Self::Command(serde_json::from_value(v)?),
            Kind::Connection => Self::Connection(serde_json::from_value(v)?),
            Kind::FileAccess => Self::FileAccess(serde_json::from_value(v)?),
            Kind::Kubernetes => Self::Kubernetes(serde_json::from_value(v)?),
            Kind::AuditTrail => Self::AuditTrail(serde_json::from_value(v)?),
            Kind::Benchmark => Self::Benchmark(serde_json::from_value(v)?),
            Kind::HostScanning => Self::HostScanning(serde_json::from_value(v)?),
            Kind::Unknown => Self::Unknown(v),
        })
    }

    /// The `type` as sent (`None` for an unknown event without a string `type`).
    pub fn event_type(&self) -> Option<&str> {
        match self {
            Self::Policy(e) => Some(&e.kind),
            Self::LegacyPolicy(e) => e.kind.as_deref(),
            Self::Command(e) => Some(&e.kind),
            Self::Connection(e) => Some(&e.kind),
            Self::FileAccess(e) => Some(&e.kind),
            Self::Kubernetes(e) => Some(&e.kind),
            Self::AuditTrail(e) => Some(&e.kind),
            Self::Benchmark(e) => Some(&e.kind),
            Self::HostScanning(e) => Some(&e.kind),
            Self::Unknown(v) => v.get("type").and_then(Value::as_str),
        }
    }

    /// The event `id`.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Policy(e) => Some(&e.id),
            Self::LegacyPolicy(e) => Some(&e.id),
            Self::Command(e) => Some(&e.id),
            Self::Connection(e) => Some(&e.id),
            Self::FileAccess(e) => Some(&e.id),
            Self::Kubernetes(e) => Some(&e.id),
            Self::AuditTrail(e) => Some(&e.id),
            Self::Benchmark(e) => Some(&e.id),
            Self::HostScanning(e) => Some(&e.id),
            Self::Unknown(v) => v.get("id").and_then(Value::as_str),
        }
    }

    /// The instant in nanoseconds since the Unix epoch (legacy: `timestampNs` or µs × 1000;
    /// unknown: an integer `timestamp`, as sent).
    pub fn timestamp_ns(&self) -> Option<u64> {
        match self {
            Self::Policy(e) => Some(e.timestamp),
            Self::LegacyPolicy(e) => e.timestamp_ns(),
            Self::Command(e) => Some(e.timestamp),
            Self::Connection(e) => Some(e.timestamp),
            Self::FileAccess(e) => Some(e.timestamp),
            Self::Kubernetes(e) => Some(e.timestamp),
            Self::AuditTrail(e) => Some(e.timestamp),
            Self::Benchmark(e) => Some(e.timestamp),
            Self::HostScanning(e) => Some(e.timestamp),
            Self::Unknown(v) => v.get("timestamp").and_then(Value::as_u64),
        }
    }

    /// The severity level (0–3 high, 4–5 medium, 6 low, 7 info), when the event has one.
    pub fn severity(&self) -> Option<Severity> {
        match self {
            Self::Policy(e) => e.severity_level(),
            Self::LegacyPolicy(e) => e.severity_level(),
            Self::Command(e) => e.severity_level(),
            Self::Connection(e) => e.severity_level(),
            Self::FileAccess(e) => e.severity_level(),
            Self::Kubernetes(e) => e.severity_level(),
            Self::AuditTrail(e) => e.severity_level(),
            Self::Benchmark(e) => e.severity_level(),
            Self::HostScanning(e) => e.severity_level(),
            Self::Unknown(v) => v
                .get("severity")
                .and_then(Value::as_u64)
                .and_then(Severity::from_number),
        }
    }

    /// Writes the event as JSON with `timestamp` at `format` (other fields unchanged; unknown
    /// events are written as received). Serializes directly, without an intermediate `Value`.
    ///
    /// # Errors
    ///
    /// The writer's I/O error, wrapped by `serde_json`.
    pub fn to_writer_with<W: io::Write>(
        &self,
        writer: W,
        format: TimestampFormat,
    ) -> Result<(), serde_json::Error> {
        serde_json::to_writer(writer, &WithFormat(self, format))
    }

    /// [`Self::to_writer_with`] into a new `Vec`.
    ///
    /// # Errors
    ///
    /// Never in practice (writing to a `Vec` cannot fail); kept for symmetry.
    pub fn to_vec_with(&self, format: TimestampFormat) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(512);
        self.to_writer_with(&mut out, format)?;
        Ok(out)
    }

    fn write_map<M: SerializeMap>(&self, map: &mut M, f: TimestampFormat) -> Result<(), M::Error> {
        match self {
            Self::Policy(e) => e.write_fields(map, f),
            Self::LegacyPolicy(e) => e.write_fields(map, f),
            Self::Command(e) => e.write_fields(map, f),
            Self::Connection(e) => e.write_fields(map, f),
            Self::FileAccess(e) => e.write_fields(map, f),
            Self::Kubernetes(e) => e.write_fields(map, f),
            Self::AuditTrail(e) => e.write_fields(map, f),
            Self::Benchmark(e) => e.write_fields(map, f),
            Self::HostScanning(e) => e.write_fields(map, f),
            Self::Unknown(_) => Ok(()),
        }
    }
}

struct WithFormat<'a>(&'a SysdigEvent, TimestampFormat);

impl Serialize for WithFormat<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let SysdigEvent::Unknown(v) = self.0 {
            return v.serialize(s);
        }
        let mut map = s.serialize_map(None)?;
        self.0.write_map(&mut map, self.1)?;
        map.end()
    }
}

impl Serialize for SysdigEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WithFormat(self, TimestampFormat::Nanoseconds).serialize(s)
    }
}

impl<'de> Deserialize<'de> for SysdigEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_value(v).map_err(de::Error::custom)
    }
}

impl FromStr for SysdigEvent {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_slice(s.as_bytes())
    }
}

/// Parses a Sysdig request body: a JSON array (the default), NDJSON (agent `output: ndjson`, or
/// a `application/x-ndjson` content type) or one object.
///
/// # Errors
///
/// [`DecodeError`] positioned in the body: for NDJSON, the 1-based line of the bad event.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use webhook_payloads::sysdig::{parse_batch, SysdigEvent};
/// use webhook_payloads::Framing;
/// let body = br#"[{"id":"a","type":"command","timestamp":1720026578020799700},
///                 {"id":"b","type":"brand-new","timestamp":1}]"#;
/// let (framing, events) = parse_batch(None, body)?;
/// assert_eq!(framing, Framing::Array);
/// assert!(matches!(events[0], SysdigEvent::Command(_)));
/// assert!(matches!(events[1], SysdigEvent::Unknown(_)));
/// # Ok(()) }
/// ```
pub fn parse_batch(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(Framing, Vec<SysdigEvent>), DecodeError> {
    let f = framing(content_type, body);
    let events = split_records(body, f)?
        .into_iter()
        .map(|rec| parse_record(body, rec))
        .collect::<Result<_, _>>()?;
    Ok((f, events))
}

/// Parses a NDJSON body of Sysdig events (blank lines skipped, `\r\n` accepted).
///
/// # Errors
///
/// [`DecodeError`] naming the 1-based line of the first bad event.
pub fn parse_ndjson(body: &[u8]) -> Result<Vec<SysdigEvent>, DecodeError> {
    split_records(body, Framing::Ndjson)?
        .into_iter()
        .map(|rec| parse_record(body, rec))
        .collect()
}

pub(crate) fn parse_record(body: &[u8], rec: Record<'_>) -> Result<SysdigEvent, DecodeError> {
    SysdigEvent::parse_at(rec.bytes).map_err(|e| record_error(body, rec, &e))
}

/// Writes events as NDJSON (one per line, each ending in `\n`) with `timestamp` at `format`.
///
/// # Errors
///
/// The writer's I/O error.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use webhook_payloads::sysdig::{parse_ndjson, write_ndjson};
/// use webhook_payloads::TimestampFormat;
/// let events = parse_ndjson(b"{\"id\":\"a\",\"type\":\"command\",\"timestamp\":1720026578020799700}\n")?;
/// let mut out = Vec::new();
/// write_ndjson(&events, &mut out, TimestampFormat::Seconds)?;
/// assert_eq!(out, b"{\"id\":\"a\",\"type\":\"command\",\"timestamp\":1720026578}\n");
/// # Ok(()) }
/// ```
pub fn write_ndjson<W: io::Write>(
    events: &[SysdigEvent],
    mut writer: W,
    format: TimestampFormat,
) -> io::Result<()> {
    for ev in events {
        ev.to_writer_with(&mut writer, format)?;
        writer.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes events as one JSON array (Sysdig's default framing) with `timestamp` at `format`.
///
/// # Errors
///
/// The writer's I/O error.
pub fn write_array<W: io::Write>(
    events: &[SysdigEvent],
    mut writer: W,
    format: TimestampFormat,
) -> io::Result<()> {
    writer.write_all(b"[")?;
    for (i, ev) in events.iter().enumerate() {
        if i > 0 {
            writer.write_all(b",")?;
        }
        ev.to_writer_with(&mut writer, format)?;
    }
    writer.write_all(b"]")
}
