//! Sysdig Secure event forwarding: runtime policy events (current and legacy), activity audit
//! (`command`, `connection`, `fileaccess`, `kubernetes`), platform audit (`audittrail`),
//! `benchmark` and `hostscanning`, behind one enum [`SysdigEvent`] dispatching on `type`.
//!
//! Sysdig sends a JSON array per request (agent-local forwarding may send NDJSON);
//! [`parse_batch`] reads both. Every field but `id`, `type` and `timestamp` is optional, unknown
//! fields are kept in each struct's `extra`, so parse → serialize → parse is lossless.
//! `timestamp` is a [`SysdigTimestamp`]: the integer as sent (parsed exactly, values above 2^53
//! never pass through `f64`) with its resolution. Sysdig Secure sends nanoseconds; an agent with
//! `timestampFormat: seconds|milliseconds|microseconds` sends that resolution. The resolution is
//! read from the magnitude unless declared ([`SysdigEvent::set_timestamp_format`], or
//! `webhook-receiver`'s `SysdigDecoder::with_timestamp_format`), so
//! [`SysdigEvent::timestamp_ns`] is the instant for all four, and
//! [`SysdigEvent::to_writer_with`] writes it at any [`TimestampFormat`] (`None`: as sent).
//!
//! # Performance
//!
//! Events borrow from the body ([`Cow`] strings and string maps: no allocation for strings
//! without escapes); [`SysdigEvent::into_owned`] detaches one. Dispatch does not buffer the
//! object: a byte scan reads the top-level `type` (it comes first or nearly so in every real
//! event) and stops, then the object is parsed once, straight into its struct; a current-format
//! parse that finds legacy-only keys (`policyId`, `actionResults`, `timestampNs`, `eventLabels`)
//! is redone as [`LegacyPolicyEvent`]. Only when the scan cannot decide (escaped keys, no `type`)
//! does a full skim run first. [`SysdigEvent::from_slice`] and [`parse_batch`] are this fast
//! path; the `Deserialize` impl, which must work with any deserializer, goes through
//! `serde_json::Value`. On the repository's fixture this parses a 1 MiB NDJSON batch several
//! times faster than `serde_json::Value` (see `benches/benches/parse.rs`).

mod activity;
mod audittrail;
mod base;
mod benchmark;
mod hostscanning;
mod instant;
mod legacy;
mod policy;
mod scan;
mod severity;
mod summary;

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

pub use crate::string_map::StringMap;
pub use activity::{
    CommandEvent, ConnectionEvent, FileAccessEvent, KubernetesArgs, KubernetesEvent, KubernetesUser,
};
pub use audittrail::{AuditTrailContent, AuditTrailEvent};
pub use benchmark::BenchmarkEvent;
pub use hostscanning::HostScanningEvent;
pub use instant::SysdigTimestamp;
pub use legacy::{KeyValue, LegacyPolicyEvent};
pub use policy::{Action, PolicyContent, PolicyEvent};
pub use severity::Severity;

use crate::decode::{Framing, Record, framing, from_json, record_error, split_records};
use crate::object::{IntoStatic, Key};
use crate::{DecodeError, TimestampFormat};

/// The top-level keys only the legacy format has. A key marks an event as legacy only when its
/// value is not `null`: a `null` carries nothing, and since absent optional fields are not
/// written back, classifying by it would not survive a round trip.
const LEGACY_KEYS: [&str; 4] = ["policyId", "actionResults", "timestampNs", "eventLabels"];

/// Whether `object` has a legacy-only key with a non-null value.
fn has_legacy_marker(object: &serde_json::Map<String, Value>) -> bool {
    LEGACY_KEYS
        .iter()
        .any(|k| object.get(*k).is_some_and(|v| !v.is_null()))
}

/// Writes a `timestamp` at the requested resolution (`None`: as received).
pub(crate) fn write_ns(t: &SysdigTimestamp, format: Option<TimestampFormat>) -> u64 {
    t.value_at(format)
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
pub enum SysdigEvent<'a> {
    /// `policy`, current format.
    Policy(Box<PolicyEvent<'a>>),
    /// `policy`, deprecated legacy format (flat `policyId`, `actionResults`, `timestampNs`, ...).
    LegacyPolicy(Box<LegacyPolicyEvent<'a>>),
    /// `command` (activity audit).
    Command(Box<CommandEvent<'a>>),
    /// `connection` (activity audit).
    Connection(Box<ConnectionEvent<'a>>),
    /// `fileaccess` (activity audit).
    FileAccess(Box<FileAccessEvent<'a>>),
    /// `kubernetes` (activity audit).
    Kubernetes(Box<KubernetesEvent<'a>>),
    /// `audittrail` (platform audit).
    AuditTrail(Box<AuditTrailEvent<'a>>),
    /// `benchmark`.
    Benchmark(Box<BenchmarkEvent<'a>>),
    /// `hostscanning`.
    HostScanning(Box<HostScanningEvent<'a>>),
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
                            // `null` is no marker (see LEGACY_KEYS).
                            if m.next_value::<Option<IgnoredAny>>()?.is_some() {
                                p.legacy = true;
                            }
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

impl<'a> SysdigEvent<'a> {
    /// Parses one event from JSON bytes (the fast path), borrowing strings from `bytes`.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Syntax`] when the bytes are not JSON, [`DecodeError::Shape`] when they are
    /// not an object or a known `type` lacks `id`/`timestamp` or has ill-typed fields.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Self::parse_at(bytes).map_err(|e| DecodeError::from_json(&e))
    }

    fn parse_at(bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        let scanned = scan::top_level_type(bytes);
        let kind = match scanned {
            Some(t) => kind_of(Some(t), false),
            None => Self::probe_kind(bytes)?,
        };
        let ev = Self::parse_as(kind, bytes)?;
        // The scan stops at the first `type`; an object that repeats `type` holds the last one
        // (as `serde_json` and the probe read it): the variant follows that one, so that the
        // event's variant and its `type` agree (and survive being written and read again).
        if scanned.is_some() && ev.event_type() != scanned {
            return Self::parse_as(Self::probe_kind(bytes)?, bytes);
        }
        Ok(ev)
    }

    /// Parses `bytes` as the variant `kind` selects: the fast path, then `serde_json`.
    fn parse_as(kind: Kind, bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        if let Some(ev) = std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| Self::read_fast(kind, text))
        {
            return Ok(ev);
        }
        Ok(match kind {
            Kind::Policy => match from_json::<PolicyEvent<'a>>(bytes) {
                Ok(ev) if !has_legacy_marker(&ev.extra) => Self::Policy(Box::new(ev)),
                Ok(_) => Self::LegacyPolicy(from_json(bytes)?),
                Err(e) => match Self::probe_kind(bytes)? {
                    Kind::Legacy => Self::LegacyPolicy(from_json(bytes)?),
                    _ => return Err(e),
                },
            },
            Kind::Legacy => Self::LegacyPolicy(from_json(bytes)?),
            Kind::Command => Self::Command(from_json(bytes)?),
            Kind::Connection => Self::Connection(from_json(bytes)?),
            Kind::FileAccess => Self::FileAccess(from_json(bytes)?),
            Kind::Kubernetes => Self::Kubernetes(from_json(bytes)?),
            Kind::AuditTrail => Self::AuditTrail(from_json(bytes)?),
            Kind::Benchmark => Self::Benchmark(from_json(bytes)?),
            Kind::HostScanning => Self::HostScanning(from_json(bytes)?),
            Kind::Unknown => Self::Unknown(from_json(bytes)?),
        })
    }

    /// The fast path (see `crate::fast`): `None` whenever `serde_json` must decide.
    fn read_fast(kind: Kind, text: &'a str) -> Option<Self> {
        use crate::fast::read_all;
        Some(match kind {
            Kind::Policy => {
                let ev: PolicyEvent<'a> = read_all(text)?;
                if has_legacy_marker(&ev.extra) {
                    Self::LegacyPolicy(Box::new(read_all(text)?))
                } else {
                    Self::Policy(Box::new(ev))
                }
            }
            Kind::Legacy => Self::LegacyPolicy(Box::new(read_all(text)?)),
            Kind::Command => Self::Command(Box::new(read_all(text)?)),
            Kind::Connection => Self::Connection(Box::new(read_all(text)?)),
            Kind::FileAccess => Self::FileAccess(Box::new(read_all(text)?)),
            Kind::Kubernetes => Self::Kubernetes(Box::new(read_all(text)?)),
            Kind::AuditTrail => Self::AuditTrail(Box::new(read_all(text)?)),
            Kind::Benchmark => Self::Benchmark(Box::new(read_all(text)?)),
            Kind::HostScanning => Self::HostScanning(Box::new(read_all(text)?)),
            Kind::Unknown => return None,
        })
    }

    /// The slow dispatch: skims the whole object for `type` and the legacy keys.
    fn probe_kind(bytes: &[u8]) -> Result<Kind, serde_json::Error> {
        let probe: Probe<'_> = from_json(bytes)?;
        Ok(kind_of(probe.kind.as_deref(), probe.legacy))
    }

    /// Detaches the event from the body it borrows.
    pub fn into_owned(self) -> SysdigEvent<'static> {
        match self {
            Self::Policy(e) => SysdigEvent::Policy(e.into_static()),
            Self::LegacyPolicy(e) => SysdigEvent::LegacyPolicy(e.into_static()),
            Self::Command(e) => SysdigEvent::Command(e.into_static()),
            Self::Connection(e) => SysdigEvent::Connection(e.into_static()),
            Self::FileAccess(e) => SysdigEvent::FileAccess(e.into_static()),
            Self::Kubernetes(e) => SysdigEvent::Kubernetes(e.into_static()),
            Self::AuditTrail(e) => SysdigEvent::AuditTrail(e.into_static()),
            Self::Benchmark(e) => SysdigEvent::Benchmark(e.into_static()),
            Self::HostScanning(e) => SysdigEvent::HostScanning(e.into_static()),
            Self::Unknown(v) => SysdigEvent::Unknown(v),
        }
    }

    /// Builds an event from an already parsed JSON value.
    ///
    /// # Errors
    ///
    /// The `serde_json` error of the selected variant.
    pub fn from_value(v: Value) -> Result<Self, serde_json::Error> {
        if !v.is_object() {
            return Err(de::Error::custom("expected a Sysdig event object"));
        }
        let legacy = v.as_object().is_some_and(has_legacy_marker);
        let kind = kind_of(v.get("type").and_then(Value::as_str), legacy);
        Ok(match kind {
            Kind::Policy => Self::Policy(Deserialize::deserialize(v)?),
            Kind::Legacy => Self::LegacyPolicy(Deserialize::deserialize(v)?),
            Kind::Command => Self::Command(Deserialize::deserialize(v)?),
            Kind::Connection => Self::Connection(Deserialize::deserialize(v)?),
            Kind::FileAccess => Self::FileAccess(Deserialize::deserialize(v)?),
            Kind::Kubernetes => Self::Kubernetes(Deserialize::deserialize(v)?),
            Kind::AuditTrail => Self::AuditTrail(Deserialize::deserialize(v)?),
            Kind::Benchmark => Self::Benchmark(Deserialize::deserialize(v)?),
            Kind::HostScanning => Self::HostScanning(Deserialize::deserialize(v)?),
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

    /// The instant in nanoseconds since the Unix epoch, whatever resolution the sender used
    /// (see [`SysdigTimestamp`]: declared, or read from the magnitude); legacy: `timestampNs`
    /// or µs × 1000; unknown: an integer `timestamp`, its resolution read from its magnitude.
    ///
    /// ```
    /// use webhook_payloads::sysdig::SysdigEvent;
    /// for sent in ["1720453939", "1720453939637", "1720453939637554", "1720453939637554200"] {
    ///     let line = format!(r#"{{"id":"a","type":"connection","timestamp":{sent}}}"#);
    ///     let ev = SysdigEvent::from_slice(line.as_bytes())?;
    ///     assert_eq!(ev.timestamp_ns().map(|ns| ns / 1_000_000_000), Some(1_720_453_939));
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn timestamp_ns(&self) -> Option<u64> {
        match self {
            Self::LegacyPolicy(e) => e.timestamp_ns(),
            Self::Unknown(v) => v
                .get("timestamp")
                .and_then(Value::as_u64)
                .and_then(|t| SysdigTimestamp::new(t).nanos()),
            other => other.timestamp().and_then(SysdigTimestamp::nanos),
        }
    }

    /// The `timestamp` of the current-format event types, as sent with its resolution
    /// (`None` for legacy and unknown events).
    pub fn timestamp(&self) -> Option<SysdigTimestamp> {
        match self {
            Self::Policy(e) => Some(e.timestamp),
            Self::Command(e) => Some(e.timestamp),
            Self::Connection(e) => Some(e.timestamp),
            Self::FileAccess(e) => Some(e.timestamp),
            Self::Kubernetes(e) => Some(e.timestamp),
            Self::AuditTrail(e) => Some(e.timestamp),
            Self::Benchmark(e) => Some(e.timestamp),
            Self::HostScanning(e) => Some(e.timestamp),
            Self::LegacyPolicy(_) | Self::Unknown(_) => None,
        }
    }

    /// Declares the resolution the sender wrote `timestamp` at (the agent's
    /// `timestampFormat`), instead of reading it from the magnitude; the value itself is kept as
    /// sent. Legacy events carry their own units (`timestamp` in µs, `timestampNs`) and unknown
    /// ones are left as they are.
    ///
    /// ```
    /// use webhook_payloads::sysdig::SysdigEvent;
    /// use webhook_payloads::TimestampFormat;
    ///
    /// // 90 s after the epoch, in milliseconds: the magnitude alone reads seconds.
    /// let mut ev = SysdigEvent::from_slice(br#"{"id":"a","type":"command","timestamp":90000}"#)?;
    /// assert_eq!(ev.timestamp_ns(), Some(90_000_000_000_000));
    /// ev.set_timestamp_format(TimestampFormat::Milliseconds);
    /// assert_eq!(ev.timestamp_ns(), Some(90_000_000_000));
    /// assert!(String::from_utf8(ev.to_vec_with(TimestampFormat::Seconds)?)?.contains(r#""timestamp":90"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_timestamp_format(&mut self, format: TimestampFormat) {
        let t = match self {
            Self::Policy(e) => &mut e.timestamp,
            Self::Command(e) => &mut e.timestamp,
            Self::Connection(e) => &mut e.timestamp,
            Self::FileAccess(e) => &mut e.timestamp,
            Self::Kubernetes(e) => &mut e.timestamp,
            Self::AuditTrail(e) => &mut e.timestamp,
            Self::Benchmark(e) => &mut e.timestamp,
            Self::HostScanning(e) => &mut e.timestamp,
            Self::LegacyPolicy(_) | Self::Unknown(_) => return,
        };
        *t = t.with_format(format);
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
        serde_json::to_writer(writer, &WithFormat(self, Some(format)))
    }

    /// [`Self::to_writer_with`] into a new `Vec`, through the serde-free writer
    /// ([`Self::write_json_with`]; the same bytes).
    ///
    /// # Errors
    ///
    /// Never in practice (writing to a `Vec` cannot fail); kept for symmetry.
    pub fn to_vec_with(&self, format: TimestampFormat) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(512);
        self.write_json_with(&mut out, Some(format));
        Ok(out)
    }

    /// Appends the event's compact JSON to `out` without serde, `timestamp` at `format`
    /// (`None`: as received). The bytes are exactly those of [`Self::to_writer_with`] (and of
    /// `serde_json` through `Serialize` for `None`), written several times faster: this is the
    /// path [`webhook_core::Event`] takes through [`webhook_core::EventBuilder::json`].
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use webhook_core::json::ToJson;
    /// use webhook_payloads::sysdig::SysdigEvent;
    /// use webhook_payloads::TimestampFormat;
    /// let ev = SysdigEvent::from_slice(
    ///     br#"{"id":"a","type":"command","timestamp":1720026578020799700,"cmdline":"ls\t-l"}"#)?;
    /// let mut out = Vec::new();
    /// ev.write_json_with(&mut out, Some(TimestampFormat::Milliseconds));
    /// assert_eq!(out, ev.to_vec_with(TimestampFormat::Milliseconds)?);
    /// assert_eq!(ev.to_json_vec(), serde_json::to_vec(&ev)?);
    /// let event = webhook_core::Event::builder("a", "command").json(&ev)?;
    /// assert_eq!(event.body()[..], serde_json::to_vec(&ev)?[..]);
    /// # Ok(()) }
    /// ```
    pub fn write_json_with(&self, out: &mut Vec<u8>, format: Option<TimestampFormat>) {
        match self {
            Self::Policy(e) => e.write_json_object(out, format),
            Self::LegacyPolicy(e) => e.write_json_object(out, format),
            Self::Command(e) => e.write_json_object(out, format),
            Self::Connection(e) => e.write_json_object(out, format),
            Self::FileAccess(e) => e.write_json_object(out, format),
            Self::Kubernetes(e) => e.write_json_object(out, format),
            Self::AuditTrail(e) => e.write_json_object(out, format),
            Self::Benchmark(e) => e.write_json_object(out, format),
            Self::HostScanning(e) => e.write_json_object(out, format),
            Self::Unknown(v) => webhook_core::json::write_value(out, v),
        }
    }

    fn write_map<M: SerializeMap>(
        &self,
        map: &mut M,
        f: Option<TimestampFormat>,
    ) -> Result<(), M::Error> {
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

/// Compact JSON without serde; see [`SysdigEvent::write_json_with`].
impl webhook_core::json::ToJson for SysdigEvent<'_> {
    const ESCAPES_LINE_BREAKS: bool = true;

    fn write_json(&self, out: &mut Vec<u8>) {
        self.write_json_with(out, None);
    }
}

struct WithFormat<'e, 'a>(&'e SysdigEvent<'a>, Option<TimestampFormat>);

impl Serialize for WithFormat<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let SysdigEvent::Unknown(v) = self.0 {
            return v.serialize(s);
        }
        let mut map = s.serialize_map(None)?;
        self.0.write_map(&mut map, self.1)?;
        map.end()
    }
}

impl Serialize for SysdigEvent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WithFormat(self, None).serialize(s)
    }
}

/// Generic deserialization (any deserializer, any input lifetime) buffers through
/// `serde_json::Value` and yields owned strings, so `SysdigEvent` is `DeserializeOwned` and works
/// with `serde_json::from_value` and [`crate::decode_ndjson`]; [`SysdigEvent::from_slice`] and
/// [`parse_batch`] are the faster, borrowing path.
impl<'de> Deserialize<'de> for SysdigEvent<'_> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_value(v).map_err(de::Error::custom)
    }
}

/// Parses an owned event (see [`SysdigEvent::from_slice`] for the borrowing fast path).
impl FromStr for SysdigEvent<'static> {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SysdigEvent::from_slice(s.as_bytes()).map(SysdigEvent::into_owned)
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
pub fn parse_batch<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<(Framing, Vec<SysdigEvent<'a>>), DecodeError> {
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
pub fn parse_ndjson(body: &[u8]) -> Result<Vec<SysdigEvent<'_>>, DecodeError> {
    split_records(body, Framing::Ndjson)?
        .into_iter()
        .map(|rec| parse_record(body, rec))
        .collect()
}

pub(crate) fn parse_record<'a>(
    body: &[u8],
    rec: Record<'a>,
) -> Result<SysdigEvent<'a>, DecodeError> {
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
    events: &[SysdigEvent<'_>],
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
    events: &[SysdigEvent<'_>],
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
