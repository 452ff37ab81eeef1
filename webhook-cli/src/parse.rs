//! Value parsers for the command line: durations, sizes, `NAME:VALUE` headers (reserved ones
//! refused), `PATTERN=LABEL` routes, `name=value` parameters and response-action rules.
//!
//! Each returns a `String` error that clap shows after `invalid value '...' for '--flag'`, so
//! the message says what is expected.

use std::time::Duration;

use webhook_core::is_reserved_header;

/// `250ms`, `2s`, `1.5s`, `3m`, `1h`, or a plain number of seconds.
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (s.get(..i).unwrap_or(""), s.get(i..).unwrap_or("")),
        None => (s, "s"),
    };
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("expected a duration such as 250ms, 2s, 5m or 1h, got {s:?}"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use ms, s, m or h)"
            ));
        }
    };
    if !secs.is_finite() || !(0.0..=365.0 * 24.0 * 3600.0).contains(&secs) {
        return Err(format!("duration {s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A point in time on the command line: an RFC 3339 time, or a duration back from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeArg {
    /// `2024-05-01T12:00:00Z`.
    At(std::time::SystemTime),
    /// `1h`: an hour before now.
    Ago(Duration),
}

impl TimeArg {
    /// The time, relative ones counted back from `now`.
    pub(crate) fn resolve(self, now: std::time::SystemTime) -> std::time::SystemTime {
        match self {
            Self::At(t) => t,
            Self::Ago(d) => now
                .checked_sub(d)
                .filter(|t| *t >= std::time::UNIX_EPOCH)
                .unwrap_or(std::time::UNIX_EPOCH),
        }
    }
}

/// `2024-05-01T12:00:00Z` (RFC 3339), or `90s`, `15m`, `1h` back from now.
pub(crate) fn time(s: &str) -> Result<TimeArg, String> {
    let t = s.trim();
    if t.contains('-') && t.len() >= 10 {
        return crate::rfc3339::parse(t).map(TimeArg::At);
    }
    duration(t).map(TimeArg::Ago).map_err(|_| {
        format!(
            "expected an RFC 3339 time (2024-05-01T12:00:00Z) or a duration back from now \
             (90s, 15m, 1h), got {s:?}"
        )
    })
}

/// `1048576`, `512KiB`, `1MiB`, `10MB`, `64k`, `2M`.
pub(crate) fn size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (s.get(..i).unwrap_or(""), s.get(i..).unwrap_or("")),
        None => (s, ""),
    };
    let value: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("expected a size such as 65536, 512KiB or 10MiB, got {s:?}"))?;
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    value
        .checked_mul(factor)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// A header given as `NAME:VALUE` or `NAME: VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderArg {
    pub(crate) name: String,
    pub(crate) value: String,
}

fn split_header(s: &str) -> Result<HeaderArg, String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("expected NAME:VALUE, got {s:?} (no colon)"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err("the header name before ':' is empty".to_owned());
    }
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!("{name:?} is not a valid header name"));
    }
    let value = value.trim();
    if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
        return Err(format!(
            "the value of {name:?} contains a control character (CR, LF, NUL...)"
        ));
    }
    Ok(HeaderArg {
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

/// A custom header to add to outgoing requests: any `NAME:VALUE` except the reserved headers
/// (Authorization, Content-Type, Host, User-Agent, hop-by-hop headers, and every signature, id
/// and timestamp header the SDK writes itself).
pub(crate) fn custom_header(s: &str) -> Result<HeaderArg, String> {
    let h = split_header(s)?;
    if is_reserved_header(&h.name) {
        return Err(format!(
            "header {:?} is reserved: the SDK sets it itself (use --auth for Authorization, \
             --output for Content-Type; signature headers come from --auth signature)",
            h.name
        ));
    }
    Ok(h)
}

/// Any `NAME:VALUE` header (for `verify`, which checks headers as received).
pub(crate) fn any_header(s: &str) -> Result<HeaderArg, String> {
    split_header(s)
}

/// `PATTERN=LABEL` for `listen --route`.
pub(crate) fn route(s: &str) -> Result<(String, String), String> {
    let (pattern, label) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("expected PATTERN=LABEL, got {s:?}"))?;
    if pattern.is_empty() {
        return Err("the pattern before '=' is empty (use * to match everything)".to_owned());
    }
    if label.is_empty() {
        return Err("the label after '=' is empty".to_owned());
    }
    Ok((pattern.to_owned(), label.to_owned()))
}

/// `name=value` for `call --param`.
pub(crate) fn param(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected name=value, got {s:?}"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err("the parameter name before '=' is empty".to_owned());
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// A response-action condition: `key=value`, `key!=value`, `key~value` (contains) or `key`
/// (exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleArg {
    pub(crate) key: String,
    pub(crate) condition: webhook_core::Condition,
}

pub(crate) fn rule(s: &str) -> Result<RuleArg, String> {
    use webhook_core::Condition;
    let (key, condition) = if let Some((k, v)) = s.split_once("!=") {
        (k, Condition::NotEquals(v.to_owned()))
    } else if let Some((k, v)) = s.split_once('=') {
        (k, Condition::Equals(v.to_owned()))
    } else if let Some((k, v)) = s.split_once('~') {
        (k, Condition::Contains(v.to_owned()))
    } else {
        (s, Condition::Exists)
    };
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(format!(
            "expected a dotted key such as data.status (then =value, !=value, ~value or nothing), got {s:?}"
        ));
    }
    Ok(RuleArg {
        key: key.to_owned(),
        condition,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(duration("fast").is_err());
        assert!(
            duration("3d")
                .unwrap_err()
                .contains("unknown duration unit")
        );
        assert!(duration("-1s").is_err());
    }

    #[test]
    fn times() {
        use std::time::UNIX_EPOCH;
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(
            time("1h").map(|t| t.resolve(now)),
            Ok(UNIX_EPOCH + Duration::from_secs(6_400))
        );
        assert_eq!(
            time("1970-01-01T00:00:10Z").map(|t| t.resolve(now)),
            Ok(UNIX_EPOCH + Duration::from_secs(10))
        );
        assert_eq!(time("5h").map(|t| t.resolve(now)), Ok(UNIX_EPOCH));
        assert!(time("2024-05-01").unwrap_err().contains("RFC 3339"));
        assert!(time("soon").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn sizes() {
        assert_eq!(size("1024"), Ok(1024));
        assert_eq!(size("512KiB"), Ok(512 * 1024));
        assert_eq!(size("1MiB"), Ok(1 << 20));
        assert_eq!(size("2m"), Ok(2 << 20));
        assert!(size("lots").is_err());
        assert!(size("1TiB").is_err());
    }

    #[test]
    fn custom_headers_refuse_reserved_names() {
        assert_eq!(
            custom_header("X-Tenant: blue"),
            Ok(HeaderArg {
                name: "X-Tenant".into(),
                value: "blue".into()
            })
        );
        for reserved in [
            "Authorization: Bearer x",
            "content-type:text/plain",
            "Host: evil",
            "webhook-signature: v1,abc",
            "X-Hub-Signature-256: sha256=00",
            "Transfer-Encoding: chunked",
        ] {
            let err = custom_header(reserved).unwrap_err();
            assert!(err.contains("reserved"), "{reserved}: {err}");
        }
        assert!(
            custom_header("no-colon")
                .unwrap_err()
                .contains("NAME:VALUE")
        );
        assert!(custom_header(": v").is_err());
        assert!(custom_header("bad name: v").is_err());
        assert!(custom_header("X-A: a\r\nX-B: b").is_err());
        // verify takes any header as received
        assert!(any_header("webhook-signature: v1,abc").is_ok());
    }

    #[test]
    fn routes_and_params() {
        assert_eq!(
            route("policy*=alerts"),
            Ok(("policy*".into(), "alerts".into()))
        );
        assert!(route("=x").is_err());
        assert!(route("x=").is_err());
        assert!(route("x").is_err());
        assert_eq!(param("username=ana"), Ok(("username".into(), "ana".into())));
        assert_eq!(param("q=a=b"), Ok(("q".into(), "a=b".into())));
        assert!(param("=x").is_err());
    }

    #[test]
    fn rules() {
        use webhook_core::Condition;
        assert_eq!(
            rule("data.status=active").unwrap().condition,
            Condition::Equals("active".into())
        );
        assert_eq!(
            rule("a!=b").unwrap().condition,
            Condition::NotEquals("b".into())
        );
        assert_eq!(
            rule("groups~admin").unwrap().condition,
            Condition::Contains("admin".into())
        );
        assert_eq!(rule("data.user").unwrap().condition, Condition::Exists);
        assert!(rule("a..b=c").is_err());
        assert!(rule("=c").is_err());
    }
}
