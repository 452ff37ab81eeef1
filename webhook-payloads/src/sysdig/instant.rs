//! [`SysdigTimestamp`]: Sysdig's integer `timestamp` at the resolution the sender used.
//!
//! A Sysdig agent configured with `timestampFormat: seconds|milliseconds|microseconds` writes
//! `timestamp` at that resolution; Sysdig Secure's own forwarding writes nanoseconds. The value
//! is kept exactly as sent (so writing the event back unchanged gives the same bytes) together
//! with its resolution: the one the receiver configured
//! ([`SysdigEvent::set_timestamp_format`](super::SysdigEvent::set_timestamp_format)), or else the
//! one its magnitude shows ([`TimestampFormat::guess`]): below 10^11 seconds, below 10^14
//! milliseconds, below 10^17 microseconds, otherwise nanoseconds. The guess is right for every
//! instant from March 1973 to the year 5138; configure the resolution for instants outside that
//! range (test data near 1970).

use std::fmt;

use serde::de::{Deserialize, Deserializer};

use crate::TimestampFormat;
use crate::object::{Field, IntoStatic, Lenient};

/// Sysdig's integer `timestamp`, as sent, with its resolution.
///
/// Sysdig Secure sends nanoseconds; an agent with `timestampFormat: seconds|milliseconds|
/// microseconds` sends that resolution. The value is kept exactly as sent (written back
/// unchanged) with its resolution: declared ([`with_format`](Self::with_format),
/// [`SysdigEvent::set_timestamp_format`](super::SysdigEvent::set_timestamp_format)), or else read
/// from the magnitude ([`TimestampFormat::guess`]: below 10^11 seconds, below 10^14
/// milliseconds, below 10^17 microseconds, otherwise nanoseconds), which is right for every
/// instant from March 1973 to the year 5138.
///
/// ```
/// use webhook_payloads::sysdig::SysdigTimestamp;
/// use webhook_payloads::TimestampFormat;
///
/// let ms = SysdigTimestamp::new(1_720_031_001_639);
/// assert_eq!(ms.format(), TimestampFormat::Milliseconds);
/// assert_eq!(ms.nanos(), Some(1_720_031_001_639_000_000));
/// assert_eq!(ms, 1_720_031_001_639); // compares with the value as sent
///
/// // Near 1970 the magnitude misleads: say what the sender used.
/// let early = SysdigTimestamp::new(5_000).with_format(TimestampFormat::Milliseconds);
/// assert_eq!(early.nanos(), Some(5_000_000_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SysdigTimestamp {
    value: u64,
    format: Option<TimestampFormat>,
}

impl SysdigTimestamp {
    /// A value as sent, its resolution read from its magnitude.
    pub const fn new(value: u64) -> Self {
        Self {
            value,
            format: None,
        }
    }

    /// The same value, declared to be at `format`.
    #[must_use]
    pub const fn with_format(mut self, format: TimestampFormat) -> Self {
        self.format = Some(format);
        self
    }

    /// The value exactly as sent.
    pub const fn value(self) -> u64 {
        self.value
    }

    /// The resolution: as declared, else guessed from the magnitude.
    pub const fn format(self) -> TimestampFormat {
        match self.format {
            Some(f) => f,
            None => TimestampFormat::guess(self.value),
        }
    }

    /// Whether the resolution was declared rather than guessed.
    pub const fn is_format_declared(self) -> bool {
        self.format.is_some()
    }

    /// Nanoseconds since the Unix epoch (`None` past `u64`, after the year 2554).
    pub fn nanos(self) -> Option<u64> {
        self.format().to_nanos(self.value)
    }

    /// The value to write at `format` (`None`: as sent). A value whose nanoseconds do not fit
    /// `u64` is written as sent.
    pub fn value_at(self, format: Option<TimestampFormat>) -> u64 {
        match format {
            None => self.value,
            Some(f) if f == self.format() => self.value,
            Some(f) => self.nanos().map_or(self.value, |ns| f.from_nanos(ns)),
        }
    }
}

impl PartialEq<u64> for SysdigTimestamp {
    fn eq(&self, other: &u64) -> bool {
        self.value == *other
    }
}

impl From<u64> for SysdigTimestamp {
    fn from(value: u64) -> Self {
        Self::new(value)
    }
}

impl fmt::Display for SysdigTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Lenient<SysdigTimestamp> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Lenient::<u64>::deserialize(d).map(|Lenient(v)| Self(SysdigTimestamp::new(v)))
    }
}

impl crate::fast::FastRead<'_> for Lenient<SysdigTimestamp> {
    fn read(r: &mut crate::fast::Reader<'_>) -> Option<Self> {
        <Lenient<u64> as crate::fast::FastRead<'_>>::read(r)
            .map(|Lenient(v)| Self(SysdigTimestamp::new(v)))
    }
}

impl Field for SysdigTimestamp {
    fn missing<E: serde::de::Error>(name: &'static str) -> Result<Self, E> {
        Err(E::missing_field(name))
    }
    fn is_absent(&self) -> bool {
        false
    }
}

impl IntoStatic for SysdigTimestamp {
    type Static = Self;
    fn into_static(self) -> Self {
        self
    }
}

/// Writes the value as sent.
impl webhook_core::json::ToJson for SysdigTimestamp {
    const ESCAPES_LINE_BREAKS: bool = true;

    fn write_json(&self, out: &mut Vec<u8>) {
        webhook_core::json::write_u64(out, self.value);
    }
}

impl serde::Serialize for SysdigTimestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resolution_reads_and_writes_back() {
        let ns = 1_720_453_939_637_554_200_u64;
        for f in [
            TimestampFormat::Seconds,
            TimestampFormat::Milliseconds,
            TimestampFormat::Microseconds,
            TimestampFormat::Nanoseconds,
        ] {
            let sent = f.from_nanos(ns);
            let t = SysdigTimestamp::new(sent);
            assert_eq!(t.format(), f);
            assert_eq!(t.nanos(), Some(f.to_nanos(sent).unwrap()));
            assert_eq!(t.value_at(None), sent);
            assert_eq!(t.value_at(Some(f)), sent);
            let ms = TimestampFormat::Milliseconds;
            assert_eq!(t.value_at(Some(ms)), ms.from_nanos(t.nanos().unwrap()));
            assert_eq!(t.value_at(Some(ms)) / 1000, 1_720_453_939);
        }
        // declared beats guessed; overflow writes the value as sent
        let t = SysdigTimestamp::new(1).with_format(TimestampFormat::Nanoseconds);
        assert_eq!(
            (t.nanos(), t.value_at(Some(TimestampFormat::Seconds))),
            (Some(1), 0)
        );
        let far = SysdigTimestamp::new(99_999_999_999);
        assert_eq!(far.nanos(), None);
        assert_eq!(
            far.value_at(Some(TimestampFormat::Nanoseconds)),
            99_999_999_999
        );
    }
}
