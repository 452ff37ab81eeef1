//! Time in payloads: [`TimestampFormat`], the resolution of Sysdig's integer `timestamp`, and
//! [`Timestamp`], an RFC 3339 / ISO 8601 text kept as sent together with the instant it names.
//!
//! The instant is computed here (proleptic Gregorian calendar, no leap seconds) rather than with
//! `chrono`/`time`: parsing one well-specified format is ~100 lines and keeps the crate's build
//! small.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The resolution of an integer Unix timestamp (Sysdig's `timestampFormat` setting): the
/// core's type, so a configuration read by `webhook-core` drives the payload encoders here.
///
/// ```
/// use webhook_payloads::TimestampFormat;
/// let ns = 1_720_031_001_639_981_110_u64;
/// assert_eq!(TimestampFormat::Milliseconds.from_nanos(ns), 1_720_031_001_639);
/// assert_eq!(TimestampFormat::Seconds.to_nanos(1_720_031_001), Some(1_720_031_001_000_000_000));
/// assert_eq!(TimestampFormat::guess(1_720_031_001_639), TimestampFormat::Milliseconds);
/// ```
pub use webhook_core::TimestampFormat;

/// An RFC 3339 / ISO 8601 timestamp as the sender wrote it, with the instant it names when the
/// text parses.
///
/// Parsing never fails: a text this crate cannot read is kept and [`Timestamp::unix_seconds`]
/// returns `None`, so an odd clock format never loses an event. Serialization writes the
/// original text.
///
/// Accepted: `YYYY-MM-DD`, then `T`, `t` or a space and `HH:MM[:SS[.fraction]]`, then `Z`, `z`,
/// `±HH:MM`, `±HHMM`, `±HH`, ` UTC`/` GMT`, or nothing (read as UTC).
///
/// ```
/// use webhook_payloads::Timestamp;
/// let t = Timestamp::parse("2024-07-03T18:23:21.63998111Z");
/// assert_eq!(t.unix_nanos(), Some(1_720_031_001_639_981_110));
/// let t = Timestamp::parse("2024-01-15 10:30:00 UTC");
/// assert_eq!(t.unix_seconds(), Some(1_705_314_600));
/// assert_eq!(Timestamp::parse("yesterday").unix_seconds(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Timestamp {
    text: String,
    instant: Option<(i64, u32)>,
}

impl Timestamp {
    /// Keeps `text` and parses the instant it names, if it can.
    pub fn parse(text: impl Into<String>) -> Self {
        let text = text.into();
        let instant = parse_rfc3339(&text);
        Self { text, instant }
    }

    /// The text as received.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the text named an instant this crate could read.
    pub fn is_valid(&self) -> bool {
        self.instant.is_some()
    }

    /// Seconds since the Unix epoch (negative before 1970).
    pub fn unix_seconds(&self) -> Option<i64> {
        self.instant.map(|(s, _)| s)
    }

    /// The fraction of the second, in nanoseconds.
    pub fn subsec_nanos(&self) -> Option<u32> {
        self.instant.map(|(_, n)| n)
    }

    /// Nanoseconds since the Unix epoch; `None` when unparsed or outside `i64` (years ~1677–2262,
    /// so Alertmanager's zero time `0001-01-01T00:00:00Z` has seconds but no nanoseconds).
    pub fn unix_nanos(&self) -> Option<i64> {
        let (s, n) = self.instant?;
        s.checked_mul(1_000_000_000)?.checked_add(i64::from(n))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::parse)
    }
}

crate::object::required!(Timestamp);

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    s.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Parses the formats documented on [`Timestamp`] into (unix seconds, nanoseconds).
pub(crate) fn parse_rfc3339(text: &str) -> Option<(i64, u32)> {
    let b = text.trim().as_bytes();
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(i64::from(year), month) {
        return None;
    }
    let mut i = 10;
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0u32);
    if matches!(b.get(i), Some(b'T' | b't' | b' ')) && b.get(i + 1).is_some_and(u8::is_ascii_digit)
    {
        hour = digits(b, i + 1, 2)?;
        if b.get(i + 3) != Some(&b':') {
            return None;
        }
        minute = digits(b, i + 4, 2)?;
        i += 6;
        if b.get(i) == Some(&b':') {
            second = digits(b, i + 1, 2)?;
            i += 3;
            if matches!(b.get(i), Some(b'.' | b',')) {
                i += 1;
                let start = i;
                while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
                    if i - start < 9 {
                        nanos = nanos * 10 + u32::from(c - b'0');
                    }
                    i += 1;
                }
                if i == start {
                    return None;
                }
                for _ in (i - start)..9 {
                    nanos *= 10;
                }
            }
        }
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
    }
    let rest = &b[i.min(b.len())..];
    let offset_secs: i64 = match rest {
        b"" | b"Z" | b"z" | b" UTC" | b" GMT" | b" Z" | b"UTC" => 0,
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let (h, m) = match tail.len() {
                2 => (digits(tail, 0, 2)?, 0),
                4 => (digits(tail, 0, 2)?, digits(tail, 2, 2)?),
                5 if tail.get(2) == Some(&b':') => (digits(tail, 0, 2)?, digits(tail, 3, 2)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let off = i64::from(h * 3600 + m * 60);
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    Some((secs, nanos))
}

crate::object::json_via_serde!(Timestamp);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            parse_rfc3339("2024-07-03T17:15:26Z"),
            Some((1_720_026_926, 0))
        );
        assert_eq!(
            parse_rfc3339("2020-11-25T16:49:08.648718268Z"),
            Some((1_606_322_948, 648_718_268))
        );
        assert_eq!(
            parse_rfc3339("2024-07-03T20:23:21.5+02:00"),
            Some((1_720_031_001, 500_000_000))
        );
        assert_eq!(parse_rfc3339("2024-02-29"), Some((1_709_164_800, 0)));
        assert_eq!(
            parse_rfc3339("0001-01-01T00:00:00Z"),
            Some((-62_135_596_800, 0))
        );
        // Extra fraction digits are truncated to nanoseconds.
        assert_eq!(
            parse_rfc3339("2024-07-03T17:15:26.1234567891Z"),
            Some((1_720_026_926, 123_456_789))
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "2024",
            "2023-02-29",
            "2024-13-01",
            "2024-01-01T25:00:00Z",
            "2024-01-01T10:00:00Q",
            "2024-01-01T10:00:00.Z",
            "2024-01-01T1",
            "🦀🦀🦀🦀-01-01",
            "2024-01-01T10:00:00+1",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn resolutions() {
        let ns = 1_720_453_939_637_554_200_u64;
        assert_eq!(TimestampFormat::Seconds.from_nanos(ns), 1_720_453_939);
        assert_eq!(
            TimestampFormat::Microseconds.from_nanos(ns),
            1_720_453_939_637_554
        );
        assert_eq!(TimestampFormat::Nanoseconds.from_nanos(ns), ns);
        assert_eq!(TimestampFormat::Seconds.to_nanos(u64::MAX), None);
        for f in [
            TimestampFormat::Seconds,
            TimestampFormat::Milliseconds,
            TimestampFormat::Microseconds,
            TimestampFormat::Nanoseconds,
        ] {
            assert_eq!(TimestampFormat::guess(f.from_nanos(ns)), f);
        }
    }
}
