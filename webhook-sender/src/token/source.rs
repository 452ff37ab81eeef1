//! Token sources and the token request/answer formats: the authentication URL with a username
//! and password, and OAuth 2.0 client credentials (RFC 6749 §4.4, §5.1, §5.2).
//!
//! The request is prepared once when the provider is built ([`RequestTemplate`]), so every
//! fetch only copies bytes; credentials are written straight into zeroized buffers.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use zeroize::Zeroizing;

use super::{Credential, TokenConfigError, TokenError};

/// How the username and password are sent to an authentication URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CredentialsEncoding {
    /// `POST` with a JSON object body (default).
    #[default]
    Json,
    /// `POST` with an `application/x-www-form-urlencoded` body.
    Form,
    /// `POST` with an empty body and `Authorization: Basic` credentials.
    Basic,
}

/// Where the token is found in the authentication URL's JSON answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TokenField {
    /// The first present of `access_token`, `token`, `id_token` (default). A JSON string answer
    /// is taken as the token itself.
    #[default]
    Auto,
    /// A top-level field name.
    Name(String),
    /// A JSON pointer (RFC 6901), e.g. `/data/token`.
    Pointer(String),
}

impl TokenField {
    const AUTO: [&'static str; 3] = ["access_token", "token", "id_token"];
}

/// A "Webhook Authentication URL" with a username and password.
///
/// ```
/// use std::time::Duration;
/// use webhook_sender::token::{AuthUrlSource, TokenField};
/// let source = AuthUrlSource::new("https://auth.example.com/login", "svc", "s3cret")
///     .token_field(TokenField::Pointer("/data/token".into()))
///     .default_ttl(Duration::from_secs(600));
/// assert!(!format!("{source:?}").contains("s3cret"));
/// ```
#[derive(Debug, Clone)]
pub struct AuthUrlSource {
    url: String,
    username: String,
    password: Credential,
    encoding: CredentialsEncoding,
    username_field: String,
    password_field: String,
    token_field: TokenField,
    scheme: String,
    default_ttl: Duration,
}

impl AuthUrlSource {
    /// A source posting `{"username", "password"}` as JSON to `url`; tokens without
    /// `expires_in` live 300 s; sent as `Authorization: Bearer <token>`.
    #[must_use]
    pub fn new(
        url: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<Credential>,
    ) -> Self {
        Self {
            url: url.into(),
            username: username.into(),
            password: password.into(),
            encoding: CredentialsEncoding::Json,
            username_field: "username".to_owned(),
            password_field: "password".to_owned(),
            token_field: TokenField::Auto,
            scheme: "Bearer".to_owned(),
            default_ttl: Duration::from_secs(300),
        }
    }

    /// How the credentials are sent (default JSON).
    #[must_use]
    pub fn encoding(mut self, encoding: CredentialsEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// The names of the username and password fields in a JSON or form body.
    #[must_use]
    pub fn field_names(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username_field = username.into();
        self.password_field = password.into();
        self
    }

    /// Where the token is in the answer (default: `access_token`, `token`, `id_token`).
    #[must_use]
    pub fn token_field(mut self, field: TokenField) -> Self {
        self.token_field = field;
        self
    }

    /// The `Authorization` scheme the token is sent with (default `Bearer`).
    #[must_use]
    pub fn scheme(mut self, scheme: impl Into<String>) -> Self {
        self.scheme = scheme.into();
        self
    }

    /// Lifetime of a token whose answer has no `expires_in` (default 300 s).
    #[must_use]
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }
}

/// How an OAuth2 client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// `Authorization: Basic` with the form-encoded client id and secret (default).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    RequestBody,
}

/// OAuth 2.0 client credentials grant (RFC 6749 §4.4).
///
/// ```
/// use webhook_sender::token::{ClientAuth, ClientCredentialsSource};
/// let source = ClientCredentialsSource::new("https://idp.example.com/oauth2/token", "my-client", "s3cret")
///     .scope("webhooks:write")
///     .client_auth(ClientAuth::RequestBody);
/// assert!(!format!("{source:?}").contains("s3cret"));
/// ```
#[derive(Debug, Clone)]
pub struct ClientCredentialsSource {
    token_url: String,
    client_id: String,
    client_secret: Credential,
    scope: Option<String>,
    client_auth: ClientAuth,
    default_ttl: Duration,
}

impl ClientCredentialsSource {
    /// A client-credentials source with HTTP Basic client authentication, no scope, and a
    /// 300 s lifetime for tokens whose answer has no `expires_in`.
    #[must_use]
    pub fn new(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Credential>,
    ) -> Self {
        Self {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: None,
            client_auth: ClientAuth::Basic,
            default_ttl: Duration::from_secs(300),
        }
    }

    /// The `scope` parameter (space-separated scopes).
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// How the client authenticates (default HTTP Basic).
    #[must_use]
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// Lifetime of a token whose answer has no `expires_in` (default 300 s).
    #[must_use]
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }
}

/// Where tokens come from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TokenSource {
    /// An authentication URL with a username and password.
    AuthUrl(AuthUrlSource),
    /// OAuth 2.0 client credentials.
    ClientCredentials(ClientCredentialsSource),
}

impl From<AuthUrlSource> for TokenSource {
    fn from(s: AuthUrlSource) -> Self {
        Self::AuthUrl(s)
    }
}

impl From<ClientCredentialsSource> for TokenSource {
    fn from(s: ClientCredentialsSource) -> Self {
        Self::ClientCredentials(s)
    }
}

/// The token request, prepared once at build time.
pub(super) struct RequestTemplate {
    pub(super) uri: Uri,
    content_type: Option<HeaderValue>,
    authorization: Option<HeaderValue>,
    body: Zeroizing<Vec<u8>>,
    parse: ParseRule,
}

enum ParseRule {
    AuthUrl {
        field: TokenField,
        scheme: String,
        default_ttl: Duration,
    },
    OAuth2 {
        default_ttl: Duration,
    },
}

pub(super) struct Parsed {
    pub(super) token: Credential,
    pub(super) scheme: String,
    pub(super) lifetime: Duration,
}

const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

fn form_pair(body: &mut Vec<u8>, key: &str, value: &str) {
    if !body.is_empty() {
        body.push(b'&');
    }
    body.extend(utf8_percent_encode(key, FORM).flat_map(str::bytes));
    body.push(b'=');
    body.extend(utf8_percent_encode(value, FORM).flat_map(str::bytes));
}

/// Appends `s` as a JSON string literal (RFC 8259 §7 escaping).
fn json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x00..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

fn basic(user: &str, password: &str, what: &'static str) -> Result<HeaderValue, TokenConfigError> {
    if user.contains(':')
        || user.chars().any(char::is_control)
        || password.chars().any(char::is_control)
    {
        return Err(TokenConfigError::InvalidCredential(what));
    }
    let plain = Zeroizing::new(format!("{user}:{password}"));
    let encoded =
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(plain.as_bytes()));
    let mut value = HeaderValue::try_from(format!("Basic {}", encoded.as_str()))
        .map_err(|_| TokenConfigError::InvalidCredential(what))?;
    value.set_sensitive(true);
    Ok(value)
}

fn parse_url(url: &str) -> Result<Uri, TokenConfigError> {
    let uri: Uri = url.parse().map_err(|_| TokenConfigError::InvalidUrl)?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(uri),
        _ => Err(TokenConfigError::InvalidUrl),
    }
}

impl RequestTemplate {
    pub(super) fn new(source: &TokenSource) -> Result<Self, TokenConfigError> {
        match source {
            TokenSource::AuthUrl(s) => {
                let uri = parse_url(&s.url)?;
                if s.scheme.is_empty()
                    || HeaderValue::try_from(s.scheme.as_str()).is_err()
                    || s.scheme.contains(' ')
                {
                    return Err(TokenConfigError::InvalidScheme);
                }
                if s.username.chars().any(char::is_control) {
                    return Err(TokenConfigError::InvalidCredential("username"));
                }
                let mut body = Zeroizing::new(Vec::new());
                let (content_type, authorization) = match s.encoding {
                    CredentialsEncoding::Json => {
                        // Written straight into the zeroized buffer: no other copy of the password.
                        body.push(b'{');
                        json_string(&mut body, &s.username_field);
                        body.push(b':');
                        json_string(&mut body, &s.username);
                        body.push(b',');
                        json_string(&mut body, &s.password_field);
                        body.push(b':');
                        json_string(&mut body, s.password.expose());
                        body.push(b'}');
                        (Some(HeaderValue::from_static("application/json")), None)
                    }
                    CredentialsEncoding::Form => {
                        form_pair(&mut body, &s.username_field, &s.username);
                        form_pair(&mut body, &s.password_field, s.password.expose());
                        (
                            Some(HeaderValue::from_static(
                                "application/x-www-form-urlencoded",
                            )),
                            None,
                        )
                    }
                    CredentialsEncoding::Basic => (
                        None,
                        Some(basic(
                            &s.username,
                            s.password.expose(),
                            "username or password",
                        )?),
                    ),
                };
                Ok(Self {
                    uri,
                    content_type,
                    authorization,
                    body,
                    parse: ParseRule::AuthUrl {
                        field: s.token_field.clone(),
                        scheme: s.scheme.clone(),
                        default_ttl: s.default_ttl,
                    },
                })
            }
            TokenSource::ClientCredentials(s) => {
                let uri = parse_url(&s.token_url)?;
                let mut body = Zeroizing::new(Vec::new());
                form_pair(&mut body, "grant_type", "client_credentials");
                if let Some(scope) = &s.scope {
                    form_pair(&mut body, "scope", scope);
                }
                let authorization = match s.client_auth {
                    ClientAuth::Basic => {
                        // RFC 6749 §2.3.1: form-encode id and secret before Basic encoding.
                        let id = utf8_percent_encode(&s.client_id, FORM).to_string();
                        let secret = Zeroizing::new(
                            utf8_percent_encode(s.client_secret.expose(), FORM).to_string(),
                        );
                        Some(basic(&id, &secret, "client id")?)
                    }
                    ClientAuth::RequestBody => {
                        form_pair(&mut body, "client_id", &s.client_id);
                        form_pair(&mut body, "client_secret", s.client_secret.expose());
                        None
                    }
                };
                Ok(Self {
                    uri,
                    content_type: Some(HeaderValue::from_static(
                        "application/x-www-form-urlencoded",
                    )),
                    authorization,
                    body,
                    parse: ParseRule::OAuth2 {
                        default_ttl: s.default_ttl,
                    },
                })
            }
        }
    }

    pub(super) fn build(&self) -> http::Request<Bytes> {
        let mut request = http::Request::new(Bytes::copy_from_slice(&self.body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(ct) = &self.content_type {
            headers.insert(CONTENT_TYPE, ct.clone());
        }
        if let Some(auth) = &self.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        request
    }

    pub(super) fn parse(&self, json: &Value) -> Result<Parsed, TokenError> {
        match &self.parse {
            ParseRule::AuthUrl {
                field,
                scheme,
                default_ttl,
            } => {
                let token = match field {
                    TokenField::Auto => match json {
                        Value::String(s) => Some(s.as_str()),
                        _ => TokenField::AUTO
                            .iter()
                            .find_map(|k| json.get(k).and_then(Value::as_str)),
                    },
                    TokenField::Name(name) => json.get(name).and_then(Value::as_str),
                    TokenField::Pointer(ptr) => json.pointer(ptr).and_then(Value::as_str),
                };
                let token = token
                    .filter(|t| !t.is_empty())
                    .ok_or(TokenError::MissingToken)?;
                Ok(Parsed {
                    token: Credential::new(token),
                    scheme: scheme.clone(),
                    lifetime: expires_in(json).unwrap_or(*default_ttl),
                })
            }
            ParseRule::OAuth2 { default_ttl } => {
                let token = json
                    .get("access_token")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .ok_or(TokenError::MissingToken)?;
                // RFC 6750: the type is case-insensitive; send the canonical spelling.
                let scheme = match json.get("token_type").and_then(Value::as_str) {
                    None => "Bearer".to_owned(),
                    Some(t) if t.eq_ignore_ascii_case("bearer") => "Bearer".to_owned(),
                    Some(t)
                        if !t.is_empty()
                            && t.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
                    {
                        t.to_owned()
                    }
                    Some(_) => return Err(TokenError::InvalidToken),
                };
                Ok(Parsed {
                    token: Credential::new(token),
                    scheme,
                    lifetime: expires_in(json).unwrap_or(*default_ttl),
                })
            }
        }
    }
}

/// `expires_in` as a number or numeric string of seconds (fractions allowed, capped at a year).
fn expires_in(json: &Value) -> Option<Duration> {
    let v = json.get("expires_in")?;
    let secs = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(365.0 * 86_400.0)))
}

/// The OAuth2 `error` code of an error answer, if it looks like one (short, printable ASCII).
pub(super) fn oauth_error_code(json: &Value) -> Option<String> {
    json.get("error")
        .and_then(Value::as_str)
        .filter(|e| e.len() <= 64 && e.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let a = AuthUrlSource::new("https://x/", "user", "pw-secret");
        let c = ClientCredentialsSource::new("https://x/", "id", "cs-secret");
        let dbg = format!("{a:?}{c:?}");
        assert!(
            !dbg.contains("pw-secret") && !dbg.contains("cs-secret"),
            "{dbg}"
        );
        assert!(dbg.contains("Credential(***)"));
    }

    #[test]
    fn json_string_escapes_round_trip() {
        for s in [
            "plain",
            "q\"uote",
            "back\\slash",
            "nl\n\r\t",
            "\u{1}\u{1f}",
            "ünï©ødé 😀",
            "",
        ] {
            let mut out = Vec::new();
            json_string(&mut out, s);
            let back: String =
                serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!(back, s);
        }
    }

    #[test]
    fn expires_in_forms() {
        assert_eq!(
            expires_in(&serde_json::json!({"expires_in": 60})),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            expires_in(&serde_json::json!({"expires_in": "60"})),
            Some(Duration::from_secs(60))
        );
        assert_eq!(expires_in(&serde_json::json!({"expires_in": -1})), None);
        assert_eq!(expires_in(&serde_json::json!({"expires_in": "x"})), None);
        assert_eq!(
            expires_in(&serde_json::json!({"expires_in": 1e300})),
            Some(Duration::from_secs(365 * 86_400))
        );
    }
}
