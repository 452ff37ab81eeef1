//! RFC 3339 times (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.5+02:00`) read from and
//! written to the command line, in UTC, with the proleptic Gregorian calendar (no dependency:
//! the civil-from-days algorithm of Howard Hinnant).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn number(s: &str, what: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the {what} {s:?} is not a number"));
    }
    s.parse()
        .map_err(|_| format!("the {what} {s:?} is not a number"))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (`t`, `z` and a space for `T` accepted).
/// Times before 1970 are refused.
pub(crate) fn parse(text: &str) -> Result<SystemTime, String> {
    let s = text.trim();
    let expected = || format!("expected an RFC 3339 time such as 2024-05-01T12:00:00Z, got {s:?}");
    let (date, rest) = s.split_once(['T', 't', ' ']).ok_or_else(expected)?;
    let mut parts = date.split('-');
    let (Some(y), Some(mo), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(expected());
    };
    if y.len() != 4 || mo.len() != 2 || d.len() != 2 {
        return Err(expected());
    }
    let (y, mo, d) = (
        i64::from(number(y, "year")?),
        number(mo, "month")?,
        number(d, "day")?,
    );
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return Err(format!("{date:?} is not a date"));
    }
    let (clock, offset_secs) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0i64)
    } else {
        let i = rest.rfind(['+', '-']).ok_or_else(|| {
            format!("{s:?} has no time zone: end it with Z (UTC) or an offset such as +02:00")
        })?;
        let (c, off) = rest.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off
            .get(1..)
            .and_then(|o| o.split_once(':'))
            .ok_or_else(expected)?;
        let (oh, om) = (number(oh, "offset hour")?, number(om, "offset minute")?);
        if oh > 23 || om > 59 {
            return Err(format!("the offset in {s:?} is out of range"));
        }
        (c, sign * i64::from(oh * 3600 + om * 60))
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (clock, None),
    };
    let mut t = hms.split(':');
    let (Some(h), Some(mi), Some(sec), None) = (t.next(), t.next(), t.next(), t.next()) else {
        return Err(expected());
    };
    if h.len() != 2 || mi.len() != 2 || sec.len() != 2 {
        return Err(expected());
    }
    let (h, mi, sec) = (
        number(h, "hour")?,
        number(mi, "minute")?,
        number(sec, "second")?,
    );
    // 60: a leap second, read as the next second's start.
    if h > 23 || mi > 59 || sec > 60 {
        return Err(format!("{clock:?} is not a time of day"));
    }
    let nanos = match frac {
        None => 0,
        Some(f) => {
            number(f, "fraction of a second")?;
            let digits: String = f.chars().chain(std::iter::repeat('0')).take(9).collect();
            number(&digits, "fraction of a second")?
        }
    };
    let secs =
        days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - offset_secs;
    let secs = u64::try_from(secs).map_err(|_| format!("{s:?} is before 1970"))?;
    Ok(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds).
pub(crate) fn format(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX / 2);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        tod / 3600,
        tod / 60 % 60,
        tod % 60,
        since.subsec_millis()
    )
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of a time in milliseconds since the Unix epoch.
pub(crate) fn format_ms(ms: u64) -> String {
    format(UNIX_EPOCH + Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn parses_utc_offsets_and_fractions() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Ok(at(0)));
        assert_eq!(parse("2024-05-01T12:00:00Z"), Ok(at(1_714_564_800)));
        assert_eq!(parse("2024-05-01T14:00:00+02:00"), Ok(at(1_714_564_800)));
        assert_eq!(parse("2024-05-01 09:30:00-02:30"), Ok(at(1_714_564_800)));
        assert_eq!(
            parse("2024-02-29t12:00:00.25z"),
            Ok(at(1_709_208_000) + Duration::from_millis(250))
        );
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00Z",
            "2024-05-01T12:00:00.xZ",
            "1969-12-31T23:59:59Z",
            "2024-05-01T12:00:00+25:00",
            "２０２4-05-01T12:00:00Z",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn formats_what_it_parses() {
        for text in [
            "1970-01-01T00:00:00.000Z",
            "2000-02-29T23:59:59.999Z",
            "2024-05-01T12:00:00.000Z",
            "2100-12-31T00:00:01.500Z",
        ] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
        assert_eq!(format_ms(1_714_564_800_123), "2024-05-01T12:00:00.123Z");
    }
}
