//! `webhook sign` and `webhook verify`: compute signature headers, and check them with an
//! explanation of every step (which header, which entry, which key by position, the timestamp
//! skew in seconds), never printing a secret.

use std::hash::{BuildHasher as _, Hasher as _};
use std::path::Path;
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;
use webhook_core::{
    Key, KeyRing, Scheme, SignatureFormat, Signer, TimestampSource, Tolerance, Verifier,
    VerifyError,
};

use crate::cli::{BodyArgs, SignArgs, VerifyArgs};
use crate::error::{CliError, Exit};
use crate::events::read_input;
use crate::keys::{self, SchemeName, from_unix_secs, unix_secs};
use crate::parse::{self, HeaderArg};
use crate::style::{Style, truncate};

fn body_bytes(b: &BodyArgs) -> Result<Vec<u8>, CliError> {
    match (&b.body, &b.file) {
        (Some(text), _) => Ok(text.as_bytes().to_vec()),
        (None, Some(path)) => read_input(path),
        (None, None) => Err(CliError::usage("pass --body TEXT or --file FILE")),
    }
}

fn random_id() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("msg_{:016x}", h.finish())
}

/// Runs `sign`.
pub(crate) fn sign(args: &SignArgs) -> Result<Exit, CliError> {
    let scheme = args.scheme.scheme();
    let ring = keys::key_ring(&args.secrets, args.scheme)?;
    let signer = Signer::new(scheme.clone(), &ring).map_err(|e| {
        CliError::config(e.to_string()).hint(format!(
            "{} cannot sign with this key (verify-only scheme, or a public key)",
            scheme.name()
        ))
    })?;
    let body = body_bytes(&args.body)?;
    for warning in unsigned_flags(&scheme, args.id.is_some(), args.timestamp.is_some()) {
        eprintln!("warning: {warning}");
    }
    let id = args.id.clone().unwrap_or_else(random_id);
    let ts = args
        .timestamp
        .unwrap_or_else(|| unix_secs(SystemTime::now()));
    let mut headers = HeaderMap::new();
    signer
        .sign(&id, ts, &body, &mut headers)
        .map_err(|e| CliError::config(e.to_string()))?;
    let ordered: Vec<(&HeaderName, &HeaderValue)> = scheme
        .headers()
        .filter_map(|n| headers.get(n).map(|v| (n, v)))
        .collect();
    if args.json {
        let map: serde_json::Map<String, serde_json::Value> = ordered
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    json!(String::from_utf8_lossy(v.as_bytes())),
                )
            })
            .collect();
        println!("{}", json!({"scheme": scheme.name(), "headers": map}));
    } else {
        for (n, v) in ordered {
            println!("{}: {}", n, String::from_utf8_lossy(v.as_bytes()));
        }
    }
    Ok(Exit::Ok)
}

/// Warnings for `--id` / `--timestamp` given to a scheme that does not sign them (they would be
/// silently ignored).
fn unsigned_flags(scheme: &Scheme, id: bool, timestamp: bool) -> Vec<String> {
    let content = scheme.signed_content();
    let mut out = Vec::new();
    if id && !content.uses_id() {
        out.push(format!(
            "--id is ignored: the {} scheme does not sign a message id (it signs {})",
            scheme.name(),
            content.template()
        ));
    }
    if timestamp && !content.uses_timestamp() {
        out.push(format!(
            "--timestamp is ignored: the {} scheme does not sign a timestamp (it signs {})",
            scheme.name(),
            content.template()
        ));
    }
    out
}

/// Reads `name: value` lines (HTTP request and status lines, blank lines and `#` comments
/// skipped).
fn headers_from_file(path: &Path) -> Result<Vec<HeaderArg>, CliError> {
    let text = String::from_utf8(read_input(path)?)
        .map_err(|_| CliError::config(format!("{} is not UTF-8 text", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        // Status lines (`HTTP/1.1 200 OK`) and request lines (`POST /hook HTTP/1.1`).
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with("HTTP/")
            || line.contains(" HTTP/")
        {
            continue;
        }
        out.push(
            parse::any_header(line)
                .map_err(|e| CliError::config(format!("{} line {}: {e}", path.display(), i + 1)))?,
        );
    }
    Ok(out)
}

fn header_map(args: &[HeaderArg]) -> Result<HeaderMap, CliError> {
    let mut map = HeaderMap::new();
    for h in args {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| CliError::config(format!("invalid header name {:?}", h.name)))?;
        let value = HeaderValue::from_str(&h.value)
            .map_err(|_| CliError::config(format!("invalid value for header {}", h.name)))?;
        map.append(name, value);
    }
    Ok(map)
}

/// The entries of a signature header, as the scheme splits them.
fn entries(scheme: &Scheme, value: &str) -> Vec<String> {
    let parts: Vec<&str> = match scheme.format() {
        SignatureFormat::SpaceSeparated => value.split(' ').collect(),
        SignatureFormat::CommaSeparated => value.split(',').map(str::trim).collect(),
        _ => vec![value],
    };
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What one signature entry matched.
#[derive(Debug, PartialEq, Eq)]
enum EntryCheck {
    /// The timestamp entry of a comma-separated header (`t=`).
    Timestamp,
    /// Another version's entry (different prefix).
    OtherVersion,
    /// Matches the key at this 0-based position.
    Matches(usize),
    /// Decodes but matches no key.
    NoMatch,
    /// Does not decode as the scheme's encoding.
    Undecodable,
    /// Cannot be checked: another header the signed content needs is missing or malformed.
    Unchecked(String),
}

fn check_entry(
    scheme: &Scheme,
    keys: &[Key],
    headers: &HeaderMap,
    entry: &str,
    ts_entry: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> EntryCheck {
    if let TimestampSource::SignatureEntry(k) = scheme.timestamp_source()
        && entry.starts_with(k.as_ref())
    {
        return EntryCheck::Timestamp;
    }
    if !entry.starts_with(scheme.prefix()) {
        return EntryCheck::OtherVersion;
    }
    let value = match ts_entry {
        Some(t) => format!("{t},{entry}"),
        None => entry.to_owned(),
    };
    let Ok(value) = HeaderValue::from_str(&value) else {
        return EntryCheck::Undecodable;
    };
    let mut single = headers.clone();
    single.insert(scheme.signature_header().clone(), value);
    let mut undecodable = false;
    for (i, key) in keys.iter().enumerate() {
        let Ok(v) = Verifier::new(scheme.clone(), &KeyRing::single(key.clone())) else {
            continue;
        };
        match v.ignore_timestamp().verify(&single, body, now) {
            Ok(_) => return EntryCheck::Matches(i),
            Err(VerifyError::MissingHeader { header }) => {
                return EntryCheck::Unchecked(format!("`{header}` is missing"));
            }
            Err(VerifyError::MalformedHeader { header, reason })
                if header != scheme.signature_header() =>
            {
                return EntryCheck::Unchecked(format!("`{header}` is malformed ({reason})"));
            }
            Err(VerifyError::MalformedHeader { .. } | VerifyError::UnsupportedVersion { .. }) => {
                undecodable = true;
            }
            Err(_) => {}
        }
    }
    if undecodable {
        EntryCheck::Undecodable
    } else {
        EntryCheck::NoMatch
    }
}

/// Body changes that commonly break signatures, tried when nothing matches.
fn body_variants(body: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    if let Some(b) = body.strip_suffix(b"\n") {
        out.push(("without its trailing newline", b.to_vec()));
    } else {
        let mut b = body.to_vec();
        b.push(b'\n');
        out.push(("with a trailing newline", b));
    }
    if body.windows(2).any(|w| w == b"\r\n") {
        let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
        out.push(("with LF line ends instead of CRLF", text.into_bytes()));
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let compact = v.to_string().into_bytes();
        if compact != body {
            out.push(("re-serialized as compact JSON", compact));
        }
    }
    out
}

fn skew_text(ts: u64, now: u64) -> (String, u64, bool) {
    if now >= ts {
        (format!("{} s old", now - ts), now - ts, true)
    } else {
        (format!("{} s in the future", ts - now), ts - now, false)
    }
}

/// Runs `verify`.
pub(crate) fn verify(args: &VerifyArgs, no_color: bool) -> Result<Exit, CliError> {
    let s = Style::stdout(no_color);
    let mut header_args = args.headers.clone();
    if let Some(path) = &args.headers_file {
        header_args.extend(headers_from_file(path)?);
    }
    let headers = header_map(&header_args)?;
    // Without --scheme: the scheme whose signature header the request carries.
    let detected = match args.scheme {
        Some(_) => None,
        None => SchemeName::detect(&headers),
    };
    let scheme_name = args
        .scheme
        .or(detected.as_ref().map(|(name, _)| *name))
        .unwrap_or(SchemeName::StandardWebhooks);
    let scheme = scheme_name.scheme();
    let keys: Vec<Key> = args
        .secrets
        .iter()
        .map(|t| keys::parse_key(t, scheme_name))
        .collect::<Result<_, _>>()?;
    let ring = keys
        .iter()
        .cloned()
        .fold(KeyRing::new(), |r, k| r.with_key(k));
    let tolerance = Tolerance::symmetric(args.tolerance);
    let verifier =
        Verifier::new(scheme.clone(), &ring).map_err(|e| CliError::config(e.to_string()))?;
    let verifier = if args.ignore_timestamp {
        verifier.ignore_timestamp()
    } else {
        verifier.with_tolerance(tolerance)
    };
    let body = body_bytes(&args.body)?;
    let now_secs = args.now.unwrap_or_else(|| unix_secs(SystemTime::now()));
    let now = from_unix_secs(now_secs);
    let result = verifier.verify(&headers, &body, now);

    let names: Vec<&str> = scheme.headers().map(HeaderName::as_str).collect();
    println!(
        "scheme {}{} (headers: {}), {} key(s), body {} bytes",
        s.bold(scheme.name()),
        match &detected {
            Some((_, header)) => format!(", detected from the {header} header"),
            None if args.scheme.is_none() => ", the default: no known signature header".to_owned(),
            None => String::new(),
        },
        names.join(", "),
        keys.len(),
        body.len()
    );
    let ok = s.green("✓");
    let bad = s.red("✗");
    if let Some(name) = scheme.id_header() {
        match headers.get(name) {
            Some(v) => println!("{ok} {name}: {}", String::from_utf8_lossy(v.as_bytes())),
            None => println!("{bad} {name}: missing"),
        }
    }
    // The timestamp, wherever the scheme carries it.
    let sig_value = headers
        .get(scheme.signature_header())
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let (ts_label, ts_raw, ts_entry): (String, Option<String>, Option<String>) =
        match scheme.timestamp_source() {
            TimestampSource::Header(name) => (
                name.as_str().to_owned(),
                headers
                    .get(name)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                None,
            ),
            TimestampSource::SignatureEntry(k) => {
                let entry = sig_value
                    .as_deref()
                    .map(|v| entries(&scheme, v))
                    .unwrap_or_default()
                    .into_iter()
                    .find(|e| e.starts_with(k.as_ref()));
                (
                    format!("{} entry {}", scheme.signature_header(), k),
                    entry
                        .as_deref()
                        .map(|e| e.trim_start_matches(k.as_ref()).to_owned()),
                    entry,
                )
            }
            _ => (String::new(), None, None),
        };
    let mut ts_in_window = true;
    if !ts_label.is_empty() {
        match ts_raw.as_deref().map(|t| (t, t.trim().parse::<u64>())) {
            None => println!("{bad} {ts_label}: missing"),
            Some((raw, Err(_))) => println!("{bad} {ts_label}: {raw:?} is not unix seconds"),
            Some((raw, Ok(ts))) => {
                let (text, dist, past) = skew_text(ts, now_secs);
                let allowed = if past {
                    tolerance.past
                } else {
                    tolerance.future
                }
                .as_secs();
                if args.ignore_timestamp {
                    println!("{ok} {ts_label}: {raw} — {text} (not checked: --ignore-timestamp)");
                } else if dist <= allowed {
                    println!("{ok} {ts_label}: {raw} — {text}, within the {allowed} s allowed");
                } else {
                    ts_in_window = false;
                    println!(
                        "{bad} {ts_label}: {raw} — {text}, more than the {allowed} s allowed (skew {}{dist} s)",
                        if past { "-" } else { "+" }
                    );
                }
            }
        }
    }
    // Every signature entry against every key.
    let mut any_match = None;
    match &sig_value {
        None => println!("{bad} {}: missing", scheme.signature_header()),
        Some(v) => {
            let list: Vec<String> = entries(&scheme, v)
                .into_iter()
                .filter(|e| match scheme.timestamp_source() {
                    TimestampSource::SignatureEntry(k) => !e.starts_with(k.as_ref()),
                    _ => true,
                })
                .collect();
            println!(
                "{} {}: {} entr{}",
                if list.is_empty() { &bad } else { &ok },
                scheme.signature_header(),
                list.len(),
                if list.len() == 1 { "y" } else { "ies" }
            );
            let mut n = 0;
            for entry in &list {
                let check = check_entry(
                    &scheme,
                    &keys,
                    &headers,
                    entry,
                    ts_entry.as_deref(),
                    &body,
                    now,
                );
                if check == EntryCheck::Timestamp {
                    continue;
                }
                n += 1;
                let shown = truncate(entry, 24);
                let text = match check {
                    EntryCheck::Matches(i) => {
                        any_match.get_or_insert(i);
                        format!("{ok} entry {n} ({shown}): matches key #{}", i + 1)
                    }
                    EntryCheck::NoMatch => format!(
                        "{bad} entry {n} ({shown}): matches none of the {} key(s)",
                        keys.len()
                    ),
                    EntryCheck::Undecodable => format!(
                        "{bad} entry {n} ({shown}): does not decode as {} {} signature",
                        match scheme.encoding() {
                            webhook_core::SignatureEncoding::Hex => "a hex",
                            _ => "a base64",
                        },
                        scheme.algorithm().name()
                    ),
                    EntryCheck::OtherVersion => format!(
                        "  entry {n} ({shown}): skipped, not a `{}` signature",
                        scheme.prefix()
                    ),
                    EntryCheck::Unchecked(why) => {
                        format!("{bad} entry {n} ({shown}): cannot be checked: {why}")
                    }
                    EntryCheck::Timestamp => String::new(),
                };
                println!("  {text}");
            }
        }
    }

    match result {
        Ok(v) => {
            println!(
                "{}: signed by key #{}{}",
                s.green("VALID"),
                v.key_index() + 1,
                v.id()
                    .map(|id| format!(", message id {id}"))
                    .unwrap_or_default()
            );
            Ok(Exit::Ok)
        }
        Err(e) => {
            println!("{}: {e}", s.red("INVALID"));
            let why: String = match &e {
                VerifyError::MissingHeader { header } => match SchemeName::detect(&headers) {
                    Some((other, found)) if other != scheme_name => format!(
                        "the request has no `{header}` header, but a `{found}` header: it was \
                         signed with the {} scheme; pass --scheme {}",
                        other.cli_name(),
                        other.cli_name()
                    ),
                    _ => format!(
                        "the request has no `{header}` header; is --scheme {} the sender's scheme?",
                        scheme_name.cli_name()
                    ),
                },
                VerifyError::MalformedHeader { header, reason } => {
                    format!("header `{header}` is malformed ({reason})")
                }
                VerifyError::UnsupportedVersion { header } => format!(
                    "no entry of `{header}` starts with `{}`: another scheme or version signed it",
                    scheme.prefix()
                ),
                VerifyError::TooOld { .. } | VerifyError::InFuture { .. } => match any_match {
                    Some(i) => format!(
                        "the signature itself is correct (key #{}), but the timestamp is outside the \
                         window: a replayed or delayed request, or a clock off; --ignore-timestamp \
                         checks a captured request",
                        i + 1
                    ),
                    None => "the timestamp is outside the window (and no signature matches either)"
                        .to_owned(),
                },
                VerifyError::NoLiveKey => "every key has expired".to_owned(),
                _ => {
                    let variant = body_variants(&body).into_iter().find(|(_, b)| {
                        verifier
                            .clone()
                            .ignore_timestamp()
                            .verify(&headers, b, now)
                            .is_ok()
                    });
                    match variant {
                        Some((what, _)) => format!(
                            "the signature matches this body {what}: the body was changed after \
                             signing; verify the raw bytes exactly as received"
                        ),
                        None => format!(
                            "the signed content does not match: {} changed after signing, or the \
                             secret is not the one the sender used",
                            if scheme.signed_content().uses_id()
                                || scheme.signed_content().uses_timestamp()
                            {
                                format!(
                                    "the body ({} bytes) or the id/timestamp headers were",
                                    body.len()
                                )
                            } else {
                                format!("the body ({} bytes) was", body.len())
                            }
                        ),
                    }
                }
            };
            println!("why: {why}");
            let _ = ts_in_window;
            Ok(Exit::Negative)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SchemeName;

    #[test]
    fn entries_split_by_format() {
        let sw = Scheme::standard_webhooks();
        assert_eq!(entries(&sw, "v1,a v1,b"), ["v1,a", "v1,b"]);
        let st = Scheme::stripe();
        assert_eq!(entries(&st, "t=1, v1=aa,v1=bb"), ["t=1", "v1=aa", "v1=bb"]);
        assert_eq!(entries(&Scheme::github(), "sha256=x"), ["sha256=x"]);
    }

    #[test]
    fn entry_checks_name_the_key() {
        let keys = vec![
            keys::parse_key("old", SchemeName::Stripe).unwrap(),
            keys::parse_key("new", SchemeName::Stripe).unwrap(),
        ];
        let scheme = Scheme::stripe();
        let signer = Signer::new(scheme.clone(), &KeyRing::single(keys[1].clone())).unwrap();
        let mut h = HeaderMap::new();
        signer.sign("", 100, b"{}", &mut h).unwrap();
        let value = h["stripe-signature"].to_str().unwrap().to_owned();
        let list = entries(&scheme, &value);
        let now = from_unix_secs(100);
        assert_eq!(
            check_entry(&scheme, &keys, &h, &list[0], Some(&list[0]), b"{}", now),
            EntryCheck::Timestamp
        );
        assert_eq!(
            check_entry(&scheme, &keys, &h, &list[1], Some(&list[0]), b"{}", now),
            EntryCheck::Matches(1)
        );
        assert_eq!(
            check_entry(&scheme, &keys, &h, &list[1], Some(&list[0]), b"{ }", now),
            EntryCheck::NoMatch
        );
        assert_eq!(
            check_entry(&scheme, &keys, &h, "v1=zz", Some(&list[0]), b"{}", now),
            EntryCheck::Undecodable
        );
        assert_eq!(
            check_entry(&scheme, &keys, &h, "v0=00", Some(&list[0]), b"{}", now),
            EntryCheck::OtherVersion
        );
    }

    #[test]
    fn an_entry_without_its_timestamp_header_cannot_be_checked() {
        let keys = vec![keys::parse_key("k", SchemeName::Slack).unwrap()];
        let scheme = Scheme::slack();
        let mut h = HeaderMap::new();
        h.insert("x-slack-signature", HeaderValue::from_static("v0=00"));
        let check = check_entry(&scheme, &keys, &h, "v0=00", None, b"{}", from_unix_secs(1));
        assert_eq!(
            check,
            EntryCheck::Unchecked("`x-slack-request-timestamp` is missing".into())
        );
    }

    #[test]
    fn flags_a_scheme_does_not_sign_are_warned_about() {
        assert!(unsigned_flags(&Scheme::standard_webhooks(), true, true).is_empty());
        let w = unsigned_flags(&Scheme::stripe(), true, true);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("--id is ignored: the stripe scheme"),
            "{w:?}"
        );
        let w = unsigned_flags(&Scheme::github(), true, true);
        assert_eq!(w.len(), 2);
        assert!(
            w[1].contains("does not sign a timestamp (it signs {body})"),
            "{w:?}"
        );
        assert!(unsigned_flags(&Scheme::github(), false, false).is_empty());
    }

    #[test]
    fn body_variants_find_the_usual_culprits() {
        let names: Vec<&str> = body_variants(b"{\"a\": 1}\n")
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        assert_eq!(
            names,
            [
                "without its trailing newline",
                "re-serialized as compact JSON"
            ]
        );
        assert_eq!(skew_text(100, 130).0, "30 s old");
        assert_eq!(skew_text(130, 100).0, "30 s in the future");
    }
}
