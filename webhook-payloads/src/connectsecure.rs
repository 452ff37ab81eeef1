//! ConnectSecure alerts: always `{"subject": "...", "body": "..."}`. Route on [`Subject`]
//! (matched tolerantly: case, spacing, punctuation and the `(s)` plural marker), extract facts
//! from the free-text body with [`BodyFacts::extract`], and keep the raw body.
//!
//! # An invalid escape in ConnectSecure's own documentation
//!
//! One documented example contains `\ ` (backslash, space) inside the `body` string, which is not
//! a JSON escape, so a strict parser rejects the request. [`ConnectSecureAlert::from_slice`]
//! first parses strictly and, only if that fails with a syntax error, retries once after
//! [`repair_invalid_escapes`] has turned each invalid `\X` inside a string into an escaped
//! backslash followed by `X` (the sender's evident meaning: a literal backslash). The body then
//! contains `\` and the extractor treats it as a separator. Anything else still malformed keeps
//! the original error (HTTP 400). [`crate::detect()`] uses the same fallback for bodies that fail
//! strict parsing.
//!
//! Extraction never fails and never panics (it is property-tested on arbitrary text): each fact
//! is found by keyword (`hostname`, `port`, `company`, `product`, `severity`, `service`, `user`,
//! `IPAddress`, ...) or by shape (IP and MAC addresses, `CVE-YYYY-N…`, `YYYY-MM-DD HH:MM:SS`),
//! and a fact that is not there is `None`.

use std::fmt;
use std::net::IpAddr;

use crate::DecodeError;
use crate::Timestamp;
use crate::object::json_object;

json_object! {
    /// A ConnectSecure webhook alert.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use webhook_payloads::connectsecure::{ConnectSecureAlert, Subject};
    /// let alert = ConnectSecureAlert::from_slice(br#"{"subject": "Login Failure",
    ///   "body": "Login Failure for john.doe With IPAddress 203.0.113.10 on service AzureAD at 2024-01-15 10:30:00 UTC"}"#)?;
    /// assert_eq!(alert.subject(), Subject::LoginFailure);
    /// let facts = alert.facts();
    /// assert_eq!(facts.user_name.as_deref(), Some("john.doe"));
    /// assert_eq!(facts.source_ip, Some("203.0.113.10".parse()?));
    /// assert_eq!(facts.service.as_deref(), Some("AzureAD"));
    /// # Ok(()) }
    /// ```
    pub struct ConnectSecureAlert {
        /// `subject`: the event category or title (the routing key).
        subject "subject": Option<String>,
        /// `body`: the human-readable description, kept verbatim.
        body "body": Option<String>,
    }
}

impl ConnectSecureAlert {
    /// Builds an alert from a subject and body.
    pub fn new(subject: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            subject: Some(subject.into()),
            body: Some(body.into()),
            extra: serde_json::Map::new(),
        }
    }

    /// Parses a request body, retrying once with invalid string escapes repaired (see the
    /// module docs).
    ///
    /// # Errors
    ///
    /// The strict parse's [`DecodeError`] when the repaired body does not parse either.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        match crate::decode::from_json(bytes) {
            Ok(v) => Ok(v),
            Err(e) if e.is_syntax() => {
                let repaired = repair_invalid_escapes(bytes);
                crate::decode::from_json(&repaired).map_err(|_| DecodeError::from_json(&e))
            }
            Err(e) => Err(DecodeError::from_json(&e)),
        }
    }

    /// The subject, classified.
    pub fn subject(&self) -> Subject {
        Subject::parse(self.subject.as_deref().unwrap_or(""))
    }

    /// The raw body (empty when absent).
    pub fn raw_body(&self) -> &str {
        self.body.as_deref().unwrap_or("")
    }

    /// The facts found in the body.
    pub fn facts(&self) -> BodyFacts {
        BodyFacts::extract(self.raw_body())
    }
}

/// Turns each backslash inside a JSON string that does not start a valid escape into `\\`.
///
/// Returns the input unchanged (as a copy) when there is nothing to repair.
///
/// ```
/// use webhook_payloads::connectsecure::repair_invalid_escapes;
/// assert_eq!(repair_invalid_escapes(br#"{"b":"a\ b\n"}"#), br#"{"b":"a\\ b\n"}"#.to_vec());
/// ```
pub fn repair_invalid_escapes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    let mut in_string = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if in_string && b == b'\\' {
            match bytes.get(i + 1) {
                Some(&n @ (b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' | b'u')) => {
                    out.push(b);
                    out.push(n);
                    i += 2;
                    continue;
                }
                _ => out.extend_from_slice(b"\\\\"),
            }
        } else {
            if b == b'"' {
                in_string = !in_string;
            }
            out.push(b);
        }
        i += 1;
    }
    out
}

/// A ConnectSecure subject (or event name), matched tolerantly.
///
/// ```
/// use webhook_payloads::connectsecure::Subject;
/// assert_eq!(Subject::parse("New Asset(s) Added"), Subject::NewAssetsAdded);
/// assert_eq!(Subject::parse("  new  ASSETS added "), Subject::NewAssetsAdded);
/// assert_eq!(Subject::parse("New Asset Added"), Subject::NewAssetsAdded);
/// assert_eq!(Subject::parse("Coffee Ready"), Subject::Other("Coffee Ready".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Subject {
    /// `New Asset(s) Added` / `New Asset Added`.
    NewAssetsAdded,
    /// `Asset Ports`.
    AssetPorts,
    /// `Critical Problems Found`.
    CriticalProblemsFound,
    /// `Critical Vulnerabilities Found`.
    CriticalVulnerabilitiesFound,
    /// `Critical Severity Vulnerabilities Found`.
    CriticalSeverityVulnerabilitiesFound,
    /// `CISA Vulnerabilities Found`.
    CisaVulnerabilitiesFound,
    /// `Login Failure`.
    LoginFailure,
    /// `New Company Created`.
    NewCompanyCreated,
    /// `New Open Port Discovered` (Probe Scan / External Scan).
    NewOpenPortDiscovered,
    /// `Probe Went Down`.
    ProbeWentDown,
    /// `Server Agent Went Down`.
    ServerAgentWentDown,
    /// `Job Failed`.
    JobFailed,
    /// `Certificate Expire in 30 Days`.
    CertificateExpiresIn30Days,
    /// Anything else, as sent.
    Other(String),
}

const SUBJECTS: &[(&str, Subject)] = &[
    ("new asset added", Subject::NewAssetsAdded),
    ("asset port", Subject::AssetPorts),
    ("critical problem found", Subject::CriticalProblemsFound),
    (
        "critical vulnerabilitie found",
        Subject::CriticalVulnerabilitiesFound,
    ),
    (
        "critical severity vulnerabilitie found",
        Subject::CriticalSeverityVulnerabilitiesFound,
    ),
    (
        "cisa vulnerabilitie found",
        Subject::CisaVulnerabilitiesFound,
    ),
    ("login failure", Subject::LoginFailure),
    ("new company created", Subject::NewCompanyCreated),
    ("new open port discovered", Subject::NewOpenPortDiscovered),
    ("probe went down", Subject::ProbeWentDown),
    ("server agent went down", Subject::ServerAgentWentDown),
    ("job failed", Subject::JobFailed),
    (
        "certificate expire in 30 day",
        Subject::CertificateExpiresIn30Days,
    ),
    (
        "certificate expire in 30 days",
        Subject::CertificateExpiresIn30Days,
    ),
];

/// Lower case, `(s)` dropped, non-alphanumerics as single spaces, a plural `s` trimmed from
/// words longer than three letters.
fn normalize(s: &str) -> String {
    let lower = s.to_lowercase().replace("(s)", "");
    let mut out = String::with_capacity(lower.len());
    for word in lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        let w = if word.len() > 3 && !word.ends_with("ss") {
            word.strip_suffix('s').unwrap_or(word)
        } else {
            word
        };
        out.push_str(w);
    }
    out
}

impl Subject {
    /// Classifies a subject; never fails.
    pub fn parse(s: &str) -> Self {
        let n = normalize(s);
        for (name, subject) in SUBJECTS {
            if n == *name {
                return subject.clone();
            }
        }
        // "New Open Port Discovered (Probe Scan)" and similar qualified names.
        for (name, subject) in SUBJECTS {
            if n.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' '))
            {
                return subject.clone();
            }
        }
        Self::Other(s.to_owned())
    }

    /// The documented spelling (or the text of [`Subject::Other`]).
    pub fn as_str(&self) -> &str {
        match self {
            Self::NewAssetsAdded => "New Asset(s) Added",
            Self::AssetPorts => "Asset Ports",
            Self::CriticalProblemsFound => "Critical Problems Found",
            Self::CriticalVulnerabilitiesFound => "Critical Vulnerabilities Found",
            Self::CriticalSeverityVulnerabilitiesFound => "Critical Severity Vulnerabilities Found",
            Self::CisaVulnerabilitiesFound => "CISA Vulnerabilities Found",
            Self::LoginFailure => "Login Failure",
            Self::NewCompanyCreated => "New Company Created",
            Self::NewOpenPortDiscovered => "New Open Port Discovered",
            Self::ProbeWentDown => "Probe Went Down",
            Self::ServerAgentWentDown => "Server Agent Went Down",
            Self::JobFailed => "Job Failed",
            Self::CertificateExpiresIn30Days => "Certificate Expire in 30 Days",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity named in a body (`Severity: Critical`).
///
/// ```
/// use webhook_payloads::connectsecure::BodySeverity;
/// assert_eq!(BodySeverity::parse("CRITICAL"), BodySeverity::Critical);
/// assert_eq!(BodySeverity::parse("Severe"), BodySeverity::Other("Severe".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodySeverity {
    /// Critical.
    Critical,
    /// High.
    High,
    /// Medium.
    Medium,
    /// Low.
    Low,
    /// Informational.
    Info,
    /// Any other word, as written.
    Other(String),
}

impl BodySeverity {
    /// Classifies a severity word (case-insensitive).
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "critical" => Self::Critical,
            "high" => Self::High,
            "medium" | "moderate" => Self::Medium,
            "low" => Self::Low,
            "info" | "informational" | "information" => Self::Info,
            _ => Self::Other(s.to_owned()),
        }
    }
}

/// A MAC address found in a body.
///
/// ```
/// use webhook_payloads::connectsecure::MacAddr;
/// let mac = MacAddr::parse("00-1b-44-11-3a-b7").unwrap();
/// assert_eq!(mac.to_string(), "00:1B:44:11:3A:B7");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Parses six hex octets separated by `:` or `-` (one separator throughout).
    pub fn parse(s: &str) -> Option<Self> {
        let sep = if s.contains(':') { ':' } else { '-' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for slot in &mut out {
            let p = parts.next()?;
            if p.len() != 2 {
                return None;
            }
            *slot = u8::from_str_radix(p, 16).ok()?;
        }
        parts.next().is_none().then_some(Self(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02X}:{b:02X}:{c:02X}:{d:02X}:{e:02X}:{g:02X}")
    }
}

/// Facts extracted from a ConnectSecure body. Every fact is optional; the body itself stays in
/// the [`ConnectSecureAlert`].
///
/// ```
/// use webhook_payloads::connectsecure::{BodyFacts, BodySeverity};
/// let f = BodyFacts::extract("Critical vulnerabilities detected for asset with IP 192.168.1.100, \
///     hostname server-01.example.com in company Acme Corporation\\ Product: Apache HTTP Server. \
///     VUL ID: CVE-2021-44228. Severity: Critical");
/// assert_eq!(f.company.as_deref(), Some("Acme Corporation"));
/// assert_eq!(f.product.as_deref(), Some("Apache HTTP Server"));
/// assert_eq!(f.cve_ids, ["CVE-2021-44228"]);
/// assert_eq!(f.severity, Some(BodySeverity::Critical));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BodyFacts {
    /// Every IPv4/IPv6 address in the body, in order, without duplicates.
    pub ip_addresses: Vec<IpAddr>,
    /// The asset's address: the first address that is not [`Self::source_ip`].
    pub ip: Option<IpAddr>,
    /// `hostname X` / `host name: X`.
    pub hostname: Option<String>,
    /// The first MAC address.
    pub mac: Option<MacAddr>,
    /// `port N`.
    pub port: Option<u16>,
    /// `company X` (up to a separator or the next keyword).
    pub company: Option<String>,
    /// `Product: X`.
    pub product: Option<String>,
    /// Every CVE id, upper case, in order, without duplicates.
    pub cve_ids: Vec<String>,
    /// `Severity: X`, or a leading `Critical ...`.
    pub severity: Option<BodySeverity>,
    /// `user X`, `username: X`, `Login Failure for X`.
    pub user_name: Option<String>,
    /// The address after `IPAddress`, `source IP`, `client IP`, `remote IP` or `from`.
    pub source_ip: Option<IpAddr>,
    /// `service X`.
    pub service: Option<String>,
    /// The first `YYYY-MM-DD[ HH:MM[:SS]][ UTC|Z|±HH:MM]` in the body.
    pub timestamp: Option<Timestamp>,
}

/// Keywords that end a multi-word value such as a company or product name.
const STOP_KEYWORDS: &[&str] = &[
    "product",
    "vul id",
    "vulnerability id",
    "severity",
    "hostname",
    "host name",
    "mac address",
    "ip address",
    "ipaddress",
    "company",
    "service",
    "port",
    "user",
];

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Byte offsets just past each whole-word occurrence of `kw` (ASCII, lower case) in `lower`.
fn keyword_ends<'a>(lower: &'a str, kw: &'a str) -> impl Iterator<Item = usize> + 'a {
    let bytes = lower.as_bytes();
    lower.match_indices(kw).filter_map(move |(i, _)| {
        let end = i + kw.len();
        let before_ok = i == 0 || bytes.get(i - 1).is_none_or(|&b| !is_word_byte(b));
        let after_ok = bytes.get(end).is_none_or(|&b| !is_word_byte(b));
        (before_ok && after_ok).then_some(end)
    })
}

/// Skips spaces and one `:`/`=`/`#` separator.
fn skip_sep(s: &str) -> &str {
    let s = s.trim_start();
    let s = s.strip_prefix([':', '=', '#']).unwrap_or(s);
    s.trim_start()
}

const EDGE_PUNCT: &[char] = &[
    '.', ',', ';', ':', ')', '(', '[', ']', '{', '}', '<', '>', '"', '\'', '\\', '!', '?',
];

/// The first whitespace-delimited token of `s`, edge punctuation trimmed.
fn token(s: &str) -> Option<&str> {
    let t = s
        .split(char::is_whitespace)
        .next()?
        .trim_matches(EDGE_PUNCT);
    (!t.is_empty()).then_some(t)
}

/// A multi-word value: up to a separator (`\`, line end, `|`, `;`, `,`, `. `) or a stop keyword.
fn phrase<'a>(s: &'a str, own: &str) -> Option<&'a str> {
    let mut end = s.len();
    for (i, c) in s.char_indices() {
        let next_ws = s
            .get(i + 1..)
            .and_then(|r| r.chars().next())
            .is_none_or(char::is_whitespace);
        if matches!(c, '\\' | '\n' | '\r' | '|' | ';' | ',') || (c == '.' && next_ws) {
            end = i;
            break;
        }
    }
    let head = s.get(..end).unwrap_or(s);
    let lower = head.to_ascii_lowercase();
    let cut = STOP_KEYWORDS
        .iter()
        .filter(|k| **k != own)
        .filter_map(|k| {
            lower
                .match_indices(k)
                .find(|(i, _)| {
                    let b = lower.as_bytes();
                    (*i == 0 || b.get(i - 1).is_some_and(|&c| c == b' '))
                        && b.get(i + k.len()).is_none_or(|&c| !is_word_byte(c))
                })
                .map(|(i, _)| i)
        })
        .min()
        .unwrap_or(head.len());
    let v = head
        .get(..cut)
        .unwrap_or(head)
        .trim()
        .trim_end_matches(EDGE_PUNCT)
        .trim();
    (!v.is_empty()).then_some(v)
}

fn parse_ip(tok: &str) -> Option<IpAddr> {
    let t = tok.trim_matches(EDGE_PUNCT);
    if let Ok(ip) = t.parse() {
        return Some(ip);
    }
    // `192.0.2.1:443`, `[2001:db8::1]:443`
    let (host, port) = t.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.trim_matches(['[', ']']).parse().ok()
}

fn is_hostname(s: &str) -> bool {
    s.len() <= 253
        && s.chars().any(|c| c.is_alphanumeric())
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

fn first_after<'a, T>(
    body: &'a str,
    lower: &str,
    keywords: &[&str],
    mut f: impl FnMut(&'a str) -> Option<T>,
) -> Option<T> {
    keywords.iter().find_map(|kw| {
        keyword_ends(lower, kw).find_map(|end| body.get(end..).map(skip_sep).and_then(&mut f))
    })
}

fn find_timestamp(body: &str) -> Option<Timestamp> {
    let b = body.as_bytes();
    for (i, _) in body.char_indices() {
        let is_date = (0..10).all(|k| match (k, b.get(i + k)) {
            (4 | 7, Some(c)) => *c == b'-',
            (_, Some(c)) => c.is_ascii_digit(),
            _ => false,
        });
        if !is_date || (i > 0 && b.get(i - 1).is_some_and(u8::is_ascii_digit)) {
            continue;
        }
        let mut end = i + 10;
        if matches!(b.get(end), Some(b'T' | b' ')) && b.get(end + 1).is_some_and(u8::is_ascii_digit)
        {
            let mut j = end + 1;
            while b
                .get(j)
                .is_some_and(|c| c.is_ascii_digit() || matches!(c, b':' | b'.' | b','))
            {
                j += 1;
            }
            // A trailing sentence period is not a fraction.
            while j > end + 1 && matches!(b.get(j - 1), Some(b'.' | b',' | b':')) {
                j -= 1;
            }
            end = j;
            let rest = body.get(end..).unwrap_or("");
            let zone = ["Z", " UTC", " GMT", " Z"]
                .iter()
                .find(|z| {
                    rest.starts_with(**z)
                        && rest
                            .as_bytes()
                            .get(z.len())
                            .is_none_or(|c| !is_word_byte(*c))
                })
                .map(|z| z.len())
                .or_else(|| {
                    let z = rest.as_bytes();
                    let sign = matches!(z.first(), Some(b'+' | b'-'));
                    let digits = |r: std::ops::Range<usize>| {
                        r.clone().all(|k| z.get(k).is_some_and(u8::is_ascii_digit))
                    };
                    if sign && digits(1..3) && z.get(3) == Some(&b':') && digits(4..6) {
                        Some(6)
                    } else if sign && digits(1..5) {
                        Some(5)
                    } else {
                        None
                    }
                });
            end += zone.unwrap_or(0);
        }
        if let Some(text) = body.get(i..end) {
            let ts = Timestamp::parse(text);
            if ts.is_valid() {
                return Some(ts);
            }
        }
    }
    None
}

impl BodyFacts {
    /// Extracts every fact it can find; never fails, never panics.
    pub fn extract(body: &str) -> Self {
        let lower = body.to_ascii_lowercase();
        let mut f = Self::default();

        for raw in body.split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '\\') {
            let tok = raw.trim_matches(EDGE_PUNCT);
            if tok.is_empty() {
                continue;
            }
            if let Some(mac) = MacAddr::parse(tok) {
                f.mac.get_or_insert(mac);
            } else if let Some(ip) = parse_ip(tok)
                && !f.ip_addresses.contains(&ip)
            {
                f.ip_addresses.push(ip);
            }
            if tok.len() >= 13 && tok.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("cve-")) {
                let id = tok.to_ascii_uppercase();
                let mut parts = id.splitn(3, '-').skip(1);
                let year_ok = parts
                    .next()
                    .is_some_and(|y| y.len() == 4 && y.bytes().all(|c| c.is_ascii_digit()));
                let num_ok = parts
                    .next()
                    .is_some_and(|n| n.len() >= 4 && n.bytes().all(|c| c.is_ascii_digit()));
                if year_ok && num_ok && !f.cve_ids.contains(&id) {
                    f.cve_ids.push(id);
                }
            }
        }

        f.source_ip = first_after(
            body,
            &lower,
            &[
                "ipaddress",
                "source ip",
                "src ip",
                "client ip",
                "remote ip",
                "from ip",
                "from",
            ],
            |s| token(s).and_then(parse_ip),
        );
        f.ip = f
            .ip_addresses
            .iter()
            .copied()
            .find(|ip| Some(*ip) != f.source_ip);
        f.hostname = first_after(body, &lower, &["hostname", "host name", "host"], |s| {
            token(s).filter(|t| is_hostname(t)).map(str::to_owned)
        });
        f.port = first_after(body, &lower, &["port", "port number"], |s| {
            token(s)?.parse().ok()
        });
        f.company = first_after(body, &lower, &["company name", "company"], |s| {
            phrase(s, "company").map(str::to_owned)
        });
        f.product = first_after(body, &lower, &["product name", "product"], |s| {
            phrase(s, "product").map(str::to_owned)
        });
        f.severity = first_after(body, &lower, &["severity"], |s| {
            token(s)
                .map(BodySeverity::parse)
                .filter(|s| !matches!(s, BodySeverity::Other(_)))
        })
        .or_else(|| {
            // An unknown word only right after `severity:` ("Severity: Severe").
            first_after(body, &lower, &["severity:"], |s| {
                token(s).map(BodySeverity::parse)
            })
        })
        .or_else(|| {
            let first = token(body)?;
            match BodySeverity::parse(first) {
                BodySeverity::Other(_) => None,
                s => Some(s),
            }
        });
        f.user_name = first_after(
            body,
            &lower,
            &[
                "username",
                "user name",
                "user",
                "login failure for",
                "login failed for",
                "failed login for",
                "login success for",
                "login for",
            ],
            |s| {
                token(s)
                    .filter(|t| !t.eq_ignore_ascii_case("with"))
                    .map(str::to_owned)
            },
        );
        f.service = first_after(body, &lower, &["service"], |s| token(s).map(str::to_owned));
        f.timestamp = find_timestamp(body);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization() {
        assert_eq!(normalize("New Asset(s) Added"), "new asset added");
        assert_eq!(
            normalize("Critical_Vulnerabilities-Found"),
            "critical vulnerabilitie found"
        );
        assert_eq!(
            Subject::parse("New Open Port Discovered (External Scan)"),
            Subject::NewOpenPortDiscovered
        );
        assert_eq!(
            Subject::parse("Certificate Expire in 30 Days"),
            Subject::CertificateExpiresIn30Days
        );
        assert_eq!(Subject::parse(""), Subject::Other(String::new()));
    }

    #[test]
    fn repair_only_touches_strings() {
        assert_eq!(
            repair_invalid_escapes(br#"{"a":"x\ y","b":"\u00e9\"\\"}"#),
            br#"{"a":"x\\ y","b":"\u00e9\"\\"}"#.to_vec()
        );
        assert_eq!(repair_invalid_escapes(b"\\"), b"\\".to_vec());
        assert_eq!(repair_invalid_escapes(b"\"\\"), b"\"\\\\".to_vec());
    }

    #[test]
    fn ipv6_and_ports() {
        let f =
            BodyFacts::extract("Probe at [2001:db8::1]:8443 went down; host probe-7, port: 8443");
        assert_eq!(f.ip_addresses, ["2001:db8::1".parse::<IpAddr>().unwrap()]);
        assert_eq!(f.hostname.as_deref(), Some("probe-7"));
        assert_eq!(f.port, Some(8443));
    }

    #[test]
    fn unicode_and_partial() {
        let f = BodyFacts::extract(
            "Ärger: Benutzer user Zoë from 198.51.100.7 — company Café Ünïcode GmbH\nnext line",
        );
        assert_eq!(f.user_name.as_deref(), Some("Zoë"));
        assert_eq!(f.source_ip, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(f.company.as_deref(), Some("Café Ünïcode GmbH"));
        let f = BodyFacts::extract("hostname");
        assert_eq!(f, BodyFacts::default());
    }

    #[test]
    fn timestamps_in_text() {
        let f = BodyFacts::extract("seen 2024-01-15T10:30:00+02:00. done");
        assert_eq!(f.timestamp.unwrap().unix_seconds(), Some(1_705_307_400));
        let f = BodyFacts::extract("on 2024-01-15.");
        assert_eq!(f.timestamp.unwrap().as_str(), "2024-01-15");
    }
}
