//! Outgoing events: already-encoded JSON bytes plus the metadata the delivery engine needs.
//!
//! An [`Event`] is encoded **once**, when it is created (typed payloads go through serde straight
//! to bytes, never through a `serde_json::Value`). Batching and request building then only
//! concatenate those bytes (see [`crate::delivery::encode`]), so the per-batch cost is one `memcpy` per
//! event.
//!
//! Timestamps are integers of nanoseconds since the Unix epoch. [`TimestampFormat`] (Sysdig's
//! `timestampFormat`: seconds, milliseconds, microseconds, nanoseconds; default nanoseconds)
//! scales them for a payload, and [`ScaledTimestamp`] serializes the scaled value as an integer,
//! never a float.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize, Serializer};

/// Errors creating an [`Event`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The payload could not be serialized to JSON (e.g. a map with non-string keys).
    #[error("payload could not be serialized to JSON: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The supplied bytes are not one complete JSON value.
    #[error("event body is not a single JSON value: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// The body contains a raw line break, which would split an NDJSON line; re-encode it
    /// compactly (serde_json's default output never contains one).
    #[error("event body contains a raw line break at byte {offset}; encode it compactly")]
    LineBreak {
        /// Byte offset of the first CR or LF.
        offset: usize,
    },
    /// The body is empty.
    #[error("event body is empty")]
    Empty,
}

/// The resolution of an integer timestamp in a payload (Sysdig `timestampFormat`).
///
/// The default is [`TimestampFormat::Nanoseconds`], as Sysdig. Parsing and serde use the Sysdig
/// spellings `seconds`, `milliseconds`, `microseconds`, `nanoseconds`.
///
/// ```
/// use webhook_core::TimestampFormat;
/// let ns = 1_720_031_001_639_981_110_u64;
/// assert_eq!(TimestampFormat::Milliseconds.from_nanos(ns), 1_720_031_001_639);
/// assert_eq!("seconds".parse::<TimestampFormat>()?, TimestampFormat::Seconds);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampFormat {
    /// Whole seconds.
    Seconds,
    /// Milliseconds.
    Milliseconds,
    /// Microseconds.
    Microseconds,
    /// Nanoseconds (the default).
    #[default]
    Nanoseconds,
}

impl TimestampFormat {
    /// Nanoseconds per unit of this resolution.
    pub const fn nanos_per_unit(self) -> u64 {
        match self {
            Self::Seconds => 1_000_000_000,
            Self::Milliseconds => 1_000_000,
            Self::Microseconds => 1_000,
            Self::Nanoseconds => 1,
        }
    }

    /// Converts nanoseconds since the epoch to this resolution (truncating, integer only).
    ///
    /// ```
    /// use webhook_core::TimestampFormat;
    /// assert_eq!(TimestampFormat::Microseconds.from_nanos(1_999), 1);
    /// ```
    pub const fn from_nanos(self, nanos: u64) -> u64 {
        nanos / self.nanos_per_unit()
    }

    /// Converts a value in this resolution back to nanoseconds, `None` on overflow.
    ///
    /// ```
    /// use webhook_core::TimestampFormat;
    /// assert_eq!(TimestampFormat::Seconds.to_nanos(2), Some(2_000_000_000));
    /// assert_eq!(TimestampFormat::Seconds.to_nanos(u64::MAX), None);
    /// ```
    pub const fn to_nanos(self, value: u64) -> Option<u64> {
        value.checked_mul(self.nanos_per_unit())
    }

    /// A serializable view of `nanos` at this resolution.
    ///
    /// ```
    /// use webhook_core::TimestampFormat;
    /// let json = serde_json::to_string(&TimestampFormat::Seconds.scaled(3_500_000_000))?;
    /// assert_eq!(json, "3");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn scaled(self, nanos: u64) -> ScaledTimestamp {
        ScaledTimestamp {
            nanos,
            format: self,
        }
    }

    /// Serializes `nanos` at this resolution as an integer; usable from a payload's own
    /// `Serialize` impl (`format.serialize_nanos(self.timestamp_ns, serializer)`).
    ///
    /// ```
    /// use webhook_core::TimestampFormat;
    /// let mut out = Vec::new();
    /// TimestampFormat::Milliseconds
    ///     .serialize_nanos(5_000_000, &mut serde_json::Serializer::new(&mut out))?;
    /// assert_eq!(out, b"5");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn serialize_nanos<S: Serializer>(
        self,
        nanos: u64,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.from_nanos(nanos))
    }

    /// Guesses the resolution of a Unix timestamp from its magnitude, assuming it names an
    /// instant between 1973 and 5138 (below 10^11: seconds, 10^14: milliseconds,
    /// 10^17: microseconds, otherwise nanoseconds).
    ///
    /// ```
    /// use webhook_core::TimestampFormat;
    /// assert_eq!(TimestampFormat::guess(1_720_031_001), TimestampFormat::Seconds);
    /// assert_eq!(TimestampFormat::guess(1_720_031_001_639), TimestampFormat::Milliseconds);
    /// assert_eq!(TimestampFormat::guess(1_720_031_001_639_981_110), TimestampFormat::Nanoseconds);
    /// ```
    pub const fn guess(value: u64) -> Self {
        if value < 100_000_000_000 {
            Self::Seconds
        } else if value < 100_000_000_000_000 {
            Self::Milliseconds
        } else if value < 100_000_000_000_000_000 {
            Self::Microseconds
        } else {
            Self::Nanoseconds
        }
    }

    /// The Sysdig spelling of this resolution.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Seconds => "seconds",
            Self::Milliseconds => "milliseconds",
            Self::Microseconds => "microseconds",
            Self::Nanoseconds => "nanoseconds",
        }
    }
}

impl fmt::Display for TimestampFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error parsing a [`TimestampFormat`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown timestamp format (expected seconds, milliseconds, microseconds or nanoseconds)")]
pub struct ParseTimestampFormatError;

impl FromStr for TimestampFormat {
    type Err = ParseTimestampFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "seconds" => Ok(Self::Seconds),
            "milliseconds" => Ok(Self::Milliseconds),
            "microseconds" => Ok(Self::Microseconds),
            "nanoseconds" => Ok(Self::Nanoseconds),
            _ => Err(ParseTimestampFormatError),
        }
    }
}

/// A nanosecond timestamp that serializes as an integer at a chosen [`TimestampFormat`].
///
/// Put it in a payload struct in place of the raw `u64` to honour `timestampFormat` without a
/// `serde_json::Value` round trip.
///
/// ```
/// use webhook_core::{ScaledTimestamp, TimestampFormat};
/// #[derive(serde::Serialize)]
/// struct Out { timestamp: ScaledTimestamp }
/// let out = Out { timestamp: TimestampFormat::Microseconds.scaled(1_720_031_001_639_981_110) };
/// assert_eq!(serde_json::to_string(&out)?, r#"{"timestamp":1720031001639981}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScaledTimestamp {
    /// Nanoseconds since the Unix epoch.
    pub nanos: u64,
    /// The resolution to serialize at.
    pub format: TimestampFormat,
}

impl ScaledTimestamp {
    /// The integer value at the chosen resolution.
    pub const fn value(self) -> u64 {
        self.format.from_nanos(self.nanos)
    }
}

impl Serialize for ScaledTimestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.value())
    }
}

/// The starting buffer size of [`EventBuilder::serialize`]: the last body size serialized on
/// this thread plus a few bytes of slack (at least 128 bytes, at most 64 KiB).
///
/// The slack stays below the smallest chunk of common allocators (glibc: 32 bytes), so trimming a buffer to a body of the
/// same size as the last one leaves no free fragment behind it: with a larger slack, every
/// trimmed body split off a fragment, and a queue of events under churn (a drop-oldest queue
/// while the endpoint is down) held about 1.7x its payload bytes.
struct SizeHint;

impl SizeHint {
    const MIN: usize = 128;
    const MAX: usize = 64 << 10;
    const SLACK: usize = 16;

    fn get() -> usize {
        LAST_SIZE.with(std::cell::Cell::get)
    }

    fn set(len: usize) {
        let hint = len.saturating_add(Self::SLACK).clamp(Self::MIN, Self::MAX);
        LAST_SIZE.with(|c| c.set(hint));
    }
}

thread_local! {
    static LAST_SIZE: std::cell::Cell<usize> = const { std::cell::Cell::new(SizeHint::MIN) };
}

/// One outgoing event: its JSON encoding plus delivery metadata.
///
/// The body is one compact JSON value (no raw line breaks), so it can be framed as a JSON array
/// element, an NDJSON line or a whole request body without re-encoding. Cloning is cheap
/// (reference-counted bytes).
///
/// ```
/// use webhook_core::Event;
/// #[derive(serde::Serialize)]
/// struct Alert<'a> { rule: &'a str, severity: u8 }
/// let event = Event::builder("evt_1", "policy.runtime")
///     .timestamp_nanos(1_720_031_001_639_981_110)
///     .partition_key("host-a")
///     .serialize(&Alert { rule: "shell in container", severity: 3 })?;
/// assert_eq!(&event.body()[..], br#"{"rule":"shell in container","severity":3}"#);
/// assert_eq!(event.subject(), "policy.runtime");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    id: Box<str>,
    subject: Box<str>,
    timestamp_nanos: u64,
    partition_key: Option<Box<str>>,
    /// Tenant and labels, shared by the copies of a fanned-out event (`None`: neither).
    scope: Option<Arc<Scope>>,
    body: Bytes,
}

/// Who an event belongs to and how it is labelled: what subscriptions select it by, beside
/// its subject ([`Subscription`](crate::Subscription)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Scope {
    tenant: Option<Box<str>>,
    labels: Box<[Box<str>]>,
}

impl Event {
    /// Starts an event with its id (stable across retries) and subject/type.
    pub fn builder(id: impl Into<Box<str>>, subject: impl Into<Box<str>>) -> EventBuilder {
        EventBuilder {
            id: id.into(),
            subject: subject.into(),
            timestamp_nanos: 0,
            partition_key: None,
            tenant: None,
            labels: Vec::new(),
        }
    }

    /// The tenant the event belongs to (ConnectSecure's company, a Svix application), if any:
    /// only endpoints of that tenant, or of every tenant, receive it.
    pub fn tenant(&self) -> Option<&str> {
        self.scope.as_ref().and_then(|s| s.tenant.as_deref())
    }

    /// The event's labels (Svix channels): an endpoint with a label filter receives it when
    /// it carries one of the filter's labels.
    pub fn labels(&self) -> &[Box<str>] {
        self.scope.as_ref().map_or(&[], |s| &s.labels)
    }

    /// The event id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The subject or type used for routing and filtering.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Nanoseconds since the Unix epoch (0 when not set).
    pub fn timestamp_nanos(&self) -> u64 {
        self.timestamp_nanos
    }

    /// The partition key (grouping and per-key ordering in the batcher).
    pub fn partition_key(&self) -> Option<&str> {
        self.partition_key.as_deref()
    }

    /// The encoded JSON body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Consumes the event, returning its body.
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// Length of the encoded body in bytes.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    /// Always `false`: an event body is never empty. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
}

/// Builder for [`Event`]; finish with [`EventBuilder::serialize`] or
/// [`EventBuilder::json_bytes`].
#[derive(Debug, Clone)]
#[must_use]
pub struct EventBuilder {
    id: Box<str>,
    subject: Box<str>,
    timestamp_nanos: u64,
    partition_key: Option<Box<str>>,
    tenant: Option<Box<str>>,
    labels: Vec<Box<str>>,
}

impl EventBuilder {
    /// Sets the tenant ([`Event::tenant`]).
    ///
    /// ```
    /// let e = webhook_core::Event::builder("1", "alert")
    ///     .tenant("acme")
    ///     .label("prod")
    ///     .json_bytes(&b"{}"[..])?;
    /// assert_eq!(e.tenant(), Some("acme"));
    /// assert_eq!(&*e.labels()[0], "prod");
    /// # Ok::<(), webhook_core::EventError>(())
    /// ```
    pub fn tenant(mut self, tenant: impl Into<Box<str>>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Adds a label ([`Event::labels`]).
    pub fn label(mut self, label: impl Into<Box<str>>) -> Self {
        self.labels.push(label.into());
        self
    }

    /// Sets the event time in nanoseconds since the Unix epoch.
    pub fn timestamp_nanos(mut self, nanos: u64) -> Self {
        self.timestamp_nanos = nanos;
        self
    }

    /// Sets the partition key.
    pub fn partition_key(mut self, key: impl Into<Box<str>>) -> Self {
        self.partition_key = Some(key.into());
        self
    }

    /// Encodes a typed payload with serde (compact JSON) and finishes the event.
    ///
    /// ```
    /// let e = webhook_core::Event::builder("1", "t").serialize(&[1, 2])?;
    /// assert_eq!(&e.body()[..], b"[1,2]");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// The buffer starts at the size of the previous event serialized on this thread (plus a
    /// little slack), so a stream of similar events is written without growing the buffer,
    /// and the body is then trimmed to its exact length (held events cost what they weigh).
    pub fn serialize<T: Serialize + ?Sized>(self, payload: &T) -> Result<Event, EventError> {
        let mut buf = Vec::with_capacity(SizeHint::get());
        serde_json::to_writer(&mut buf, payload).map_err(EventError::Serialize)?;
        SizeHint::set(buf.len());
        // Exact size: `Bytes` then needs no separate reference-count allocation, and shrinking
        // in place does not copy.
        Ok(self.finish(Bytes::from(buf.into_boxed_slice())))
    }

    /// Encodes a payload that writes its own JSON ([`crate::delivery::json::ToJson`]: no serde, strings
    /// escaped eight bytes at a time) and finishes the event; the bytes are the same as
    /// [`Self::serialize`] would write for a type whose two implementations agree.
    ///
    /// ```
    /// let e = webhook_core::Event::builder("1", "t").json(&vec![1u64, 2])?;
    /// assert_eq!(&e.body()[..], b"[1,2]");
    /// # Ok::<(), webhook_core::EventError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`EventError::Empty`] or [`EventError::LineBreak`] when the implementation broke the
    /// [`ToJson`](crate::delivery::json::ToJson) contract (nothing, or a raw CR/LF, which would break NDJSON
    /// framing; the scan is skipped for types that escape line breaks by construction,
    /// [`ToJson::ESCAPES_LINE_BREAKS`](crate::delivery::json::ToJson::ESCAPES_LINE_BREAKS)); the JSON
    /// itself is not re-parsed.
    pub fn json<T: crate::delivery::json::ToJson + ?Sized>(
        self,
        payload: &T,
    ) -> Result<Event, EventError> {
        let mut buf = Vec::with_capacity(SizeHint::get());
        payload.write_json(&mut buf);
        if buf.is_empty() {
            return Err(EventError::Empty);
        }
        if T::ESCAPES_LINE_BREAKS {
            debug_assert_eq!(
                crate::delivery::json::find_line_break(&buf),
                None,
                "a raw line break"
            );
        } else if let Some(offset) = crate::delivery::json::find_line_break(&buf) {
            return Err(EventError::LineBreak { offset });
        }
        SizeHint::set(buf.len());
        Ok(self.finish(Bytes::from(buf.into_boxed_slice())))
    }

    /// Finishes the event from bytes that must hold exactly one compact JSON value.
    ///
    /// The bytes are validated (one JSON value, no raw CR/LF) so that batch framing stays valid.
    ///
    /// ```
    /// let e = webhook_core::Event::builder("1", "t").json_bytes(&b"{\"a\":1}"[..])?;
    /// assert_eq!(e.len(), 7);
    /// assert!(webhook_core::Event::builder("1", "t").json_bytes(&b"{\"a\":"[..]).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn json_bytes(self, body: impl Into<Bytes>) -> Result<Event, EventError> {
        let body = body.into();
        if body.is_empty() {
            return Err(EventError::Empty);
        }
        if let Some(offset) = body.iter().position(|&b| b == b'\n' || b == b'\r') {
            return Err(EventError::LineBreak { offset });
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(&body).map_err(EventError::InvalidJson)?;
        Ok(self.finish(body))
    }

    fn finish(self, body: Bytes) -> Event {
        Event {
            id: self.id,
            subject: self.subject,
            timestamp_nanos: self.timestamp_nanos,
            partition_key: self.partition_key,
            scope: (self.tenant.is_some() || !self.labels.is_empty()).then(|| {
                Arc::new(Scope {
                    tenant: self.tenant,
                    labels: self.labels.into_boxed_slice(),
                })
            }),
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_hint_follows_the_last_event_and_bodies_stay_exact() {
        let big = "x".repeat(10_000);
        let e = Event::builder("1", "t").serialize(&big).unwrap();
        assert_eq!(e.len(), 10_002);
        assert_eq!(SizeHint::get(), 10_002 + SizeHint::SLACK);
        let small = Event::builder("2", "t").serialize(&[1, 2]).unwrap();
        assert_eq!(&small.body()[..], b"[1,2]");
        assert_eq!(SizeHint::get(), SizeHint::MIN);
        let huge = "y".repeat(100_000);
        let e = Event::builder("3", "t").serialize(&huge).unwrap();
        assert_eq!(e.len(), 100_002);
        assert_eq!(SizeHint::get(), SizeHint::MAX);
    }

    #[test]
    fn json_writers_breaking_the_contract_are_refused() {
        struct Raw(&'static [u8]);
        impl crate::delivery::json::ToJson for Raw {
            fn write_json(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(self.0);
            }
        }
        assert!(matches!(
            Event::builder("1", "t").json(&Raw(b"")),
            Err(EventError::Empty)
        ));
        assert!(matches!(
            Event::builder("1", "t").json(&Raw(b"{\"a\":\n1}")),
            Err(EventError::LineBreak { offset: 5 })
        ));
        let e = Event::builder("1", "t").json(&Raw(b"{\"a\":1}")).unwrap();
        assert_eq!(&e.body()[..], b"{\"a\":1}");
        // Strings with line breaks are escaped, so they never trip the check.
        let e = Event::builder("1", "t").json("two\nlines").unwrap();
        assert_eq!(&e.body()[..], b"\"two\\nlines\"");
    }

    #[test]
    fn timestamp_scaling_is_integer() {
        let ns = 1_720_031_001_639_981_110_u64;
        assert_eq!(TimestampFormat::Seconds.from_nanos(ns), 1_720_031_001);
        assert_eq!(
            TimestampFormat::Milliseconds.from_nanos(ns),
            1_720_031_001_639
        );
        assert_eq!(
            TimestampFormat::Microseconds.from_nanos(ns),
            1_720_031_001_639_981
        );
        assert_eq!(TimestampFormat::Nanoseconds.from_nanos(ns), ns);
        // Above 2^53 the value survives exactly (no f64).
        let json = serde_json::to_string(&TimestampFormat::Nanoseconds.scaled(u64::MAX)).unwrap();
        assert_eq!(json, u64::MAX.to_string());
        assert_eq!(TimestampFormat::default(), TimestampFormat::Nanoseconds);
    }

    #[test]
    fn timestamp_format_serde_spellings() {
        for f in [
            TimestampFormat::Seconds,
            TimestampFormat::Milliseconds,
            TimestampFormat::Microseconds,
            TimestampFormat::Nanoseconds,
        ] {
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.as_str()));
            assert_eq!(serde_json::from_str::<TimestampFormat>(&json).unwrap(), f);
            assert_eq!(f.as_str().parse::<TimestampFormat>().unwrap(), f);
        }
        assert!("Seconds".parse::<TimestampFormat>().is_err());
    }

    #[test]
    fn json_bytes_validation() {
        let b = || Event::builder("id", "s");
        assert!(matches!(
            b().json_bytes(Bytes::new()),
            Err(EventError::Empty)
        ));
        assert!(matches!(
            b().json_bytes(&b"{\n}"[..]),
            Err(EventError::LineBreak { offset: 1 })
        ));
        assert!(matches!(
            b().json_bytes(&b"{} {}"[..]),
            Err(EventError::InvalidJson(_))
        ));
        let e = b()
            .partition_key("k")
            .timestamp_nanos(7)
            .json_bytes(&b"\"x\""[..])
            .unwrap();
        assert_eq!(
            (e.id(), e.subject(), e.partition_key(), e.timestamp_nanos()),
            ("id", "s", Some("k"), 7)
        );
    }

    #[test]
    fn serialize_error_is_typed() {
        let mut m = std::collections::HashMap::new();
        m.insert(vec![1u8], 1);
        assert!(matches!(
            Event::builder("i", "s").serialize(&m),
            Err(EventError::Serialize(_))
        ));
    }
}
