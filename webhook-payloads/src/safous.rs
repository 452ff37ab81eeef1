//! Safous ZTNA webhook rules: the `%param%` context Safous fills templates from, and the
//! decision a receiver answers.
//!
//! Safous calls a webhook synchronously while it evaluates an access request; the request's
//! headers and (POST) body are templated from `%username%`, `%internal_addr%`, `%user_agent%`,
//! `%remote_ip%`, `%cert_thumbprint%`, `%cert_thumbprint_upper%`, `%cert_thumbprint_256%`,
//! `%cert_thumbprint_256_upper%`, `%cert_name%`, `%cert_alt_name%`, `%device_id%`, `%groups%`,
//! `%group_names%` and `%headers.XYZ%`. [`SafousContext`] holds all of them for one access
//! request, built from the client's [`http::request::Parts`] plus [`ConnectionFacts`]; the
//! response is checked by "API response actions" (type, key, value) the administrator
//! configures, for which [`SafousDecision`] offers a stable JSON shape.
//!
//! Lists (`%groups%`, `%group_names%`, `%cert_alt_name%`) are joined with `,`; a header sent
//! several times is joined with `, ` (RFC 9110 field-line combination).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::IpAddr;

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use webhook_core::Decision;

/// Facts about the client connection that are not in the HTTP request itself.
///
/// Chained setters, no failure: a fact left out yields no value for its parameter.
///
/// ```
/// use webhook_payloads::safous::ConnectionFacts;
/// let facts = ConnectionFacts::new("198.51.100.7".parse().unwrap())
///     .username("alice")
///     .device_id("dev-42")
///     .groups(["g1", "g2"])
///     .group_names(["Admins", "Ops"]);
/// assert_eq!(facts.remote_ip().to_string(), "198.51.100.7");
/// ```
#[derive(Debug, Clone)]
pub struct ConnectionFacts {
    remote_ip: IpAddr,
    username: Option<String>,
    internal_addr: Option<String>,
    cert_der: Option<Vec<u8>>,
    cert_name: Option<String>,
    cert_alt_names: Vec<String>,
    device_id: Option<String>,
    groups: Vec<String>,
    group_names: Vec<String>,
}

impl ConnectionFacts {
    /// Facts for a client connecting from `remote_ip`.
    pub fn new(remote_ip: IpAddr) -> Self {
        Self {
            remote_ip,
            username: None,
            internal_addr: None,
            cert_der: None,
            cert_name: None,
            cert_alt_names: Vec::new(),
            device_id: None,
            groups: Vec::new(),
            group_names: Vec::new(),
        }
    }

    /// The client's address.
    pub fn remote_ip(&self) -> IpAddr {
        self.remote_ip
    }

    /// The authenticated user name (`%username%`).
    #[must_use]
    pub fn username(mut self, v: impl Into<String>) -> Self {
        self.username = Some(v.into());
        self
    }

    /// The internal address of the application being reached (`%internal_addr%`); defaults to
    /// the request's authority (URI, then `Host` header).
    #[must_use]
    pub fn internal_addr(mut self, v: impl Into<String>) -> Self {
        self.internal_addr = Some(v.into());
        self
    }

    /// The client certificate: DER bytes (thumbprints are computed from them), subject name
    /// (`%cert_name%`) and subject alternative names (`%cert_alt_name%`).
    #[must_use]
    pub fn client_certificate<I, S>(
        mut self,
        der: impl Into<Vec<u8>>,
        subject_name: impl Into<String>,
        alt_names: I,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cert_der = Some(der.into());
        self.cert_name = Some(subject_name.into());
        self.cert_alt_names = alt_names.into_iter().map(Into::into).collect();
        self
    }

    /// The device id (`%device_id%`).
    #[must_use]
    pub fn device_id(mut self, v: impl Into<String>) -> Self {
        self.device_id = Some(v.into());
        self
    }

    /// The user's group ids (`%groups%`).
    #[must_use]
    pub fn groups<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
        self.groups = v.into_iter().map(Into::into).collect();
        self
    }

    /// The user's group names (`%group_names%`).
    #[must_use]
    pub fn group_names<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
        self.group_names = v.into_iter().map(Into::into).collect();
        self
    }
}

/// Every Safous `%param%` value for one access request.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use webhook_payloads::safous::{ConnectionFacts, SafousContext};
/// let req = http::Request::get("https://intranet.example.internal:8443/wiki")
///     .header("user-agent", "Mozilla/5.0")
///     .header("accept-language", "de-CH")
///     .body(())?;
/// let facts = ConnectionFacts::new("198.51.100.7".parse()?)
///     .username("alice")
///     .client_certificate(b"not really DER".to_vec(), "CN=alice", ["alice@example.com"]);
/// let ctx = SafousContext::from_request(&req, facts);
/// assert_eq!(ctx.param("username").as_deref(), Some("alice"));
/// assert_eq!(ctx.param("internal_addr").as_deref(), Some("intranet.example.internal:8443"));
/// assert_eq!(ctx.param("headers.Accept-Language").as_deref(), Some("de-CH"));
/// assert_eq!(ctx.param("cert_thumbprint").map(|t| t.len()), Some(40));
///
/// // With webhook-core's templates: compiled once, values escaped for their context.
/// use webhook_core::{Template, TemplateContext};
/// let body = Template::build(
///     TemplateContext::JsonBody,
///     r#"{"user":"%username%","ip":"%remote_ip%","lang":"%headers.Accept-Language%"}"#,
/// )?;
/// assert_eq!(
///     body.render(&ctx)?,
///     r#"{"user":"alice","ip":"198.51.100.7","lang":"de-CH"}"#
/// );
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct SafousContext {
    /// `%username%`.
    pub username: Option<String>,
    /// `%internal_addr%`.
    pub internal_addr: Option<String>,
    /// `%user_agent%`.
    pub user_agent: Option<String>,
    /// `%remote_ip%`.
    pub remote_ip: IpAddr,
    /// `%cert_thumbprint%`: SHA-1 of the certificate DER, lower-case hex.
    pub cert_thumbprint: Option<String>,
    /// `%cert_thumbprint_upper%`.
    pub cert_thumbprint_upper: Option<String>,
    /// `%cert_thumbprint_256%`: SHA-256 of the certificate DER, lower-case hex.
    pub cert_thumbprint_256: Option<String>,
    /// `%cert_thumbprint_256_upper%`.
    pub cert_thumbprint_256_upper: Option<String>,
    /// `%cert_name%`.
    pub cert_name: Option<String>,
    /// `%cert_alt_name%` (the names; joined with `,` by [`Self::param`]).
    pub cert_alt_names: Vec<String>,
    /// `%device_id%`.
    pub device_id: Option<String>,
    /// `%groups%` (joined with `,`).
    pub groups: Vec<String>,
    /// `%group_names%` (joined with `,`).
    pub group_names: Vec<String>,
    /// The request headers, for `%headers.XYZ%`.
    pub headers: HeaderMap,
}

/// Header values (which may hold `Authorization` or cookies) are not printed, only their names.
impl std::fmt::Debug for SafousContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafousContext")
            .field("username", &self.username)
            .field("internal_addr", &self.internal_addr)
            .field("user_agent", &self.user_agent)
            .field("remote_ip", &self.remote_ip)
            .field("cert_thumbprint_256", &self.cert_thumbprint_256)
            .field("cert_name", &self.cert_name)
            .field("cert_alt_names", &self.cert_alt_names)
            .field("device_id", &self.device_id)
            .field("groups", &self.groups)
            .field("group_names", &self.group_names)
            .field(
                "headers",
                &self.headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8], upper: bool) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = if upper {
            write!(s, "{b:02X}")
        } else {
            write!(s, "{b:02x}")
        };
    }
    s
}

impl SafousContext {
    /// Builds the context from the client request's head and the connection facts.
    pub fn from_parts(parts: &http::request::Parts, facts: ConnectionFacts) -> Self {
        Self::build(&parts.uri, &parts.headers, facts)
    }

    /// Builds the context from a client request (the body is not read).
    pub fn from_request<B>(req: &http::Request<B>, facts: ConnectionFacts) -> Self {
        Self::build(req.uri(), req.headers(), facts)
    }

    fn build(uri: &http::Uri, headers: &HeaderMap, facts: ConnectionFacts) -> Self {
        let internal_addr = facts.internal_addr.or_else(|| {
            uri.authority().map(|a| a.as_str().to_owned()).or_else(|| {
                headers
                    .get(http::header::HOST)
                    .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            })
        });
        let user_agent = headers
            .get(http::header::USER_AGENT)
            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
        let (sha1, sha256) = match &facts.cert_der {
            Some(der) => (
                Some(Sha1::digest(der).to_vec()),
                Some(Sha256::digest(der).to_vec()),
            ),
            None => (None, None),
        };
        Self {
            username: facts.username,
            internal_addr,
            user_agent,
            remote_ip: facts.remote_ip,
            cert_thumbprint: sha1.as_deref().map(|d| hex(d, false)),
            cert_thumbprint_upper: sha1.as_deref().map(|d| hex(d, true)),
            cert_thumbprint_256: sha256.as_deref().map(|d| hex(d, false)),
            cert_thumbprint_256_upper: sha256.as_deref().map(|d| hex(d, true)),
            cert_name: facts.cert_name,
            cert_alt_names: facts.cert_alt_names,
            device_id: facts.device_id,
            groups: facts.groups,
            group_names: facts.group_names,
            headers: headers.clone(),
        }
    }

    /// The value of a parameter: a plain name (`username`, `cert_thumbprint_256`, ...) or
    /// `headers.XYZ` (header name case-insensitive; repeated headers joined with `, `).
    /// Surrounding `%` are accepted and names are case-insensitive. `None` for an unknown
    /// parameter or a fact that is absent.
    pub fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        let name = name.trim_matches('%');
        if let Some(h) = name
            .get(..8)
            .filter(|p| p.eq_ignore_ascii_case("headers."))
            .and_then(|_| name.get(8..))
        {
            return self.header(h);
        }
        fn b(o: &Option<String>) -> Option<Cow<'_, str>> {
            o.as_deref().map(Cow::Borrowed)
        }
        fn join(v: &[String]) -> Option<Cow<'_, str>> {
            (!v.is_empty()).then(|| Cow::Owned(v.join(",")))
        }
        match name.to_ascii_lowercase().as_str() {
            "username" => b(&self.username),
            "internal_addr" => b(&self.internal_addr),
            "user_agent" => b(&self.user_agent),
            "remote_ip" => Some(Cow::Owned(self.remote_ip.to_string())),
            "cert_thumbprint" => b(&self.cert_thumbprint),
            "cert_thumbprint_upper" => b(&self.cert_thumbprint_upper),
            "cert_thumbprint_256" => b(&self.cert_thumbprint_256),
            "cert_thumbprint_256_upper" => b(&self.cert_thumbprint_256_upper),
            "cert_name" => b(&self.cert_name),
            "cert_alt_name" => join(&self.cert_alt_names),
            "device_id" => b(&self.device_id),
            "groups" => join(&self.groups),
            "group_names" => join(&self.group_names),
            _ => None,
        }
    }

    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        let name = http::HeaderName::from_bytes(name.as_bytes()).ok()?;
        let mut values = self.headers.get_all(&name).iter();
        let first = values.next()?;
        let mut out = String::from_utf8_lossy(first.as_bytes());
        for v in values {
            let s = out.to_mut();
            s.push_str(", ");
            s.push_str(&String::from_utf8_lossy(v.as_bytes()));
        }
        Some(out)
    }
}

/// Safous parameters for webhook-core's [`Template`](webhook_core::Template)s: `%name%` looks up
/// [`SafousContext::param`], `%headers.Name%` the client's request header.
impl webhook_core::TemplateParams for SafousContext {
    fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        Self::param(self, name)
    }

    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        Self::header(self, name)
    }
}

/// A webhook-rule answer: `{"decision":"allow","allowed":true,"reason":"..."}`.
///
/// Configure the Safous "API response action" on key `decision` with value `allow` (or on key
/// `allowed` with value `true`). `reason` appears in Safous's activity log when access is denied.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use webhook_payloads::safous::SafousDecision;
/// let d = SafousDecision::deny("device not compliant");
/// assert_eq!(serde_json::to_string(&d)?,
///     r#"{"decision":"deny","allowed":false,"reason":"device not compliant"}"#);
/// assert_eq!(SafousDecision::allow().to_jsonp("cb")?, r#"cb({"decision":"allow","allowed":true});"#);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SafousDecision {
    /// `allow` or `deny`.
    pub decision: Decision,
    /// `true` when allowed (for response actions matching a boolean).
    pub allowed: bool,
    /// Why (shown in Safous's activity log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A JSONP callback name that is not a JavaScript identifier path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "JSONP callback must be letters, digits, `_`, `$` and `.` (not starting with a digit), at most 128 characters"
)]
#[non_exhaustive]
pub struct InvalidCallback;

impl SafousDecision {
    /// Allow, without a reason.
    pub fn allow() -> Self {
        Self {
            decision: Decision::Allow,
            allowed: true,
            reason: None,
        }
    }

    /// Deny, with a reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self {
            decision: Decision::Deny,
            allowed: false,
            reason: Some(reason.into()),
        }
    }

    /// Adds (or replaces) the reason.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and booleans into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The JSONP body `callback(json);`.
    ///
    /// # Errors
    ///
    /// [`InvalidCallback`] when `callback` could inject script.
    pub fn to_jsonp(&self, callback: &str) -> Result<String, InvalidCallback> {
        let ok = !callback.is_empty()
            && callback.len() <= 128
            && !callback.starts_with(|c: char| c.is_ascii_digit())
            && callback
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.'));
        if !ok {
            return Err(InvalidCallback);
        }
        Ok(format!("{callback}({});", self.to_json()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_of_known_input() {
        // SHA-1("abc") and SHA-256("abc") (FIPS 180 test vectors).
        let req = http::Request::get("/").body(()).unwrap();
        let f = ConnectionFacts::new("::1".parse().unwrap()).client_certificate(
            b"abc".to_vec(),
            "CN=x",
            ["a", "b"],
        );
        let ctx = SafousContext::from_request(&req, f);
        assert_eq!(
            ctx.param("cert_thumbprint").unwrap(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            ctx.param("%CERT_THUMBPRINT_UPPER%").unwrap(),
            "A9993E364706816ABA3E25717850C26C9CD0D89D"
        );
        assert_eq!(
            ctx.param("cert_thumbprint_256").unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            ctx.param("cert_thumbprint_256_upper").unwrap(),
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
        );
        assert_eq!(ctx.param("cert_alt_name").unwrap(), "a,b");
        assert_eq!(ctx.param("remote_ip").unwrap(), "::1");
        assert_eq!(ctx.param("internal_addr"), None);
        assert_eq!(ctx.param("groups"), None);
    }

    #[test]
    fn template_params_edge_cases() {
        use webhook_core::{Template, TemplateContext};
        let render = |ctx: &SafousContext, t: &str| {
            Template::build(TemplateContext::Header, t)
                .unwrap()
                .render(ctx)
                .unwrap()
        };
        let req = http::Request::get("/")
            .header("x-a", "1")
            .header("x-a", "2")
            .body(())
            .unwrap();
        let ctx =
            SafousContext::from_request(&req, ConnectionFacts::new("10.0.0.1".parse().unwrap()));
        assert_eq!(render(&ctx, "%headers.X-A%"), "1, 2");
        assert_eq!(render(&ctx, "sure %remote_ip%"), "sure 10.0.0.1");
        assert_eq!(render(&ctx, "%%%remote_ip%%%"), "%10.0.0.1%");
        assert_eq!(ctx.param("headers.bad header"), None);
        assert!(SafousDecision::allow().to_jsonp("alert(1)//").is_err());
        assert!(SafousDecision::allow().to_jsonp("1x").is_err());
        let req = http::Request::get("/")
            .header("authorization", "Bearer s3cr3t")
            .body(())
            .unwrap();
        let ctx =
            SafousContext::from_request(&req, ConnectionFacts::new("10.0.0.1".parse().unwrap()));
        let dbg = format!("{ctx:?}");
        assert!(
            dbg.contains("authorization") && !dbg.contains("s3cr3t"),
            "{dbg}"
        );
    }
}
