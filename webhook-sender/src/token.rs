//! Token-fetching authentication: fetch a bearer token from an authentication URL, cache it
//! until it expires, send it on every request.
//!
//! Two sources are supported:
//!
//! - [`AuthUrlSource`]: a "Webhook Authentication URL" with a username and password (as in
//!   ConnectSecure's webhook credentials). By default it POSTs
//!   `{"username": ..., "password": ...}` as JSON and takes the token from the first of
//!   `access_token`, `token`, `id_token` in the JSON answer (or from a configured field, or a
//!   JSON pointer such as `/data/token`); `expires_in` is honoured when present, else a
//!   configured TTL applies.
//! - [`ClientCredentialsSource`]: OAuth 2.0 client credentials (RFC 6749 §4.4, as Safous'
//!   "OAuth: Token URL, Client ID, Client Secret"): POSTs the form
//!   `grant_type=client_credentials` (+ `scope`), authenticating the client with HTTP Basic by
//!   default (§2.3.1) or with `client_id`/`client_secret` in the body; reads `access_token`,
//!   `token_type` and `expires_in` (§5.1).
//!
//! [`TokenProvider`] fetches through a [`Transport`](crate::transport::Transport) (so TLS settings and the SSRF guard apply),
//! caches the token until its expiry minus a skew margin, coalesces concurrent fetches (when
//! many tasks ask at once, one request is made and all share its outcome) and offers
//! [`TokenProvider::invalidate_if_current`] so the delivery engine can refresh once after a
//! `401`.
//!
//! Secrets (password, client secret, tokens) are zeroized on drop where this crate owns them,
//! print as `***` in `Debug`, are never logged, and never appear in an error.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::error::TransportError;
use crate::transport::{RequestTimeout, SharedTransport};

/// A secret string: zeroized on drop, `Debug` prints `Secret(***)`.
///
/// ```
/// use webhook_sender::token::Secret;
/// let s = Secret::new("hunter2");
/// assert_eq!(format!("{s:?}"), "Secret(***)");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    #[must_use]
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    /// The secret itself. Do not log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

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
    password: Secret,
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
        password: impl Into<Secret>,
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
    client_secret: Secret,
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
        client_secret: impl Into<Secret>,
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

/// Why a [`TokenProvider`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenConfigError {
    /// The authentication or token URL is not an absolute `http`/`https` URL.
    #[error("authentication URL is not an absolute http(s) URL")]
    InvalidUrl,
    /// A username or password cannot be sent: it contains a control character, or (for HTTP
    /// Basic) the username contains a colon.
    #[error("{0} cannot be sent: contains a control character or, for HTTP Basic, a colon")]
    InvalidCredential(&'static str),
    /// The `Authorization` scheme is empty or not a token.
    #[error("invalid Authorization scheme")]
    InvalidScheme,
}

/// Why a token could not be obtained. Never contains a secret or the token endpoint's body.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The request to the token endpoint failed (timeout, TLS, SSRF guard, ...).
    #[error("token request failed")]
    Transport(#[source] Arc<TransportError>),
    /// The token endpoint answered with a non-2xx status. `error` is the OAuth2 error code
    /// (RFC 6749 §5.2) when the answer has one.
    #[error("token endpoint answered {status}{}", error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Rejected {
        /// The status code.
        status: StatusCode,
        /// The OAuth2 `error` code, if any.
        error: Option<String>,
    },
    /// The answer is not JSON.
    #[error("token endpoint answer is not JSON")]
    NotJson,
    /// The answer has no token where one was expected.
    #[error("no token in the token endpoint answer")]
    MissingToken,
    /// The token cannot be sent in a header (control characters).
    #[error("the token cannot be sent in an Authorization header")]
    InvalidToken,
}

impl TokenError {
    /// Whether retrying later may succeed (transport failures, 5xx, 408, 429).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(e) => e.is_transient(),
            Self::Rejected { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
            }
            _ => false,
        }
    }
}

/// A fetched token, ready to send. Cheap to clone; `Debug` never shows it.
#[derive(Clone)]
pub struct AccessToken {
    header: HeaderValue,
    secret: Secret,
    expires_at: Instant,
    id: u64,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"***")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl AccessToken {
    /// The `Authorization` header value (`<scheme> <token>`, marked sensitive).
    #[must_use]
    pub fn authorization(&self) -> &HeaderValue {
        &self.header
    }

    /// The bare token. Do not log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.secret.expose()
    }

    /// When the token expires (as reported by the endpoint, or the configured TTL).
    #[must_use]
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }
}

/// Settings of a [`TokenProvider`].
#[derive(Debug, Clone)]
pub struct TokenProviderBuilder {
    source: TokenSource,
    skew: Duration,
    fetch_timeout: Option<Duration>,
}

impl TokenProviderBuilder {
    /// Refresh this long before the token expires (default 30 s; at most half the lifetime is
    /// taken off short-lived tokens).
    #[must_use]
    pub fn refresh_skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// Timeout of one token request (default: the transport's timeout).
    #[must_use]
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = Some(timeout);
        self
    }

    /// Validates the source and builds the provider; tokens are fetched through `transport`.
    ///
    /// # Errors
    /// [`TokenConfigError`] for an invalid URL, credential or scheme.
    pub fn build(self, transport: SharedTransport) -> Result<TokenProvider, TokenConfigError> {
        let request = RequestTemplate::new(&self.source)?;
        Ok(TokenProvider {
            inner: Arc::new(Inner {
                transport,
                request,
                skew: self.skew,
                fetch_timeout: self.fetch_timeout,
                state: Mutex::new(State::default()),
                fetch_lock: tokio::sync::Mutex::new(()),
                fetches: AtomicU64::new(0),
            }),
        })
    }
}

/// Fetches, caches and shares tokens. Cheap to clone (clones share the cache).
///
/// Driving contract: call [`token`](Self::token) (or [`authorize`](Self::authorize)) before
/// every request; it answers from the cache until the token is within the skew margin of its
/// expiry, then fetches once for all concurrent callers. When the endpoint answers `401`, call
/// [`invalidate_if_current`](Self::invalidate_if_current) with the token that was sent and
/// retry once: concurrent 401s for the same token cause a single refetch.
///
/// ```no_run
/// # #[cfg(any(feature = "reqwest", feature = "hyper"))]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use webhook_sender::token::{ClientCredentialsSource, TokenProvider};
/// use webhook_sender::transport::TransportBuilder;
///
/// let transport = TransportBuilder::new().build()?;
/// let source = ClientCredentialsSource::new("https://idp.example.com/token", "id", "secret");
/// let tokens = TokenProvider::builder(source).build(transport.clone())?;
/// let mut request = http::Request::post("https://hooks.example.com/in").body(bytes::Bytes::new())?;
/// let sent_with = tokens.authorize(&mut request).await?;
/// let response = transport.send(request).await?;
/// if response.status() == http::StatusCode::UNAUTHORIZED {
///     tokens.invalidate_if_current(&sent_with);
///     // ... rebuild the request and send it once more
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenProvider {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("endpoint", &self.inner.request.uri.host())
            .field("fetches", &self.fetch_count())
            .finish_non_exhaustive()
    }
}

struct Inner {
    transport: SharedTransport,
    request: RequestTemplate,
    skew: Duration,
    fetch_timeout: Option<Duration>,
    state: Mutex<State>,
    fetch_lock: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    /// Completed fetches (success or failure).
    generation: u64,
    last_error: Option<TokenError>,
}

struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

impl TokenProvider {
    /// Starts a builder for `source` (refresh skew 30 s).
    #[must_use]
    pub fn builder(source: impl Into<TokenSource>) -> TokenProviderBuilder {
        TokenProviderBuilder {
            source: source.into(),
            skew: Duration::from_secs(30),
            fetch_timeout: None,
        }
    }

    /// A valid token: the cached one, or a freshly fetched one (one fetch for all concurrent
    /// callers; if that fetch fails, every caller waiting on it gets its error).
    ///
    /// # Errors
    /// [`TokenError`] when the fetch fails.
    pub async fn token(&self) -> Result<AccessToken, TokenError> {
        let seen = {
            let state = self.lock_state();
            if let Some(token) = state.fresh(Instant::now()) {
                return Ok(token);
            }
            state.generation
        };
        let _fetching = self.inner.fetch_lock.lock().await;
        {
            let state = self.lock_state();
            if let Some(token) = state.fresh(Instant::now()) {
                return Ok(token);
            }
            if state.generation != seen
                && let Some(err) = &state.last_error
            {
                return Err(err.clone());
            }
        }
        let result = self.fetch().await;
        let mut state = self.lock_state();
        state.generation += 1;
        match &result {
            Ok(cached) => {
                state.cached = Some(Cached {
                    token: cached.0.clone(),
                    refresh_at: cached.1,
                });
                state.last_error = None;
            }
            Err(err) => {
                state.cached = None;
                state.last_error = Some(err.clone());
            }
        }
        result.map(|(token, _)| token)
    }

    /// Sets `Authorization` on `request` from a valid token and returns that token (to pass to
    /// [`invalidate_if_current`](Self::invalidate_if_current) after a `401`).
    ///
    /// # Errors
    /// [`TokenError`] when the fetch fails.
    pub async fn authorize<B>(
        &self,
        request: &mut http::Request<B>,
    ) -> Result<AccessToken, TokenError> {
        let token = self.token().await?;
        request
            .headers_mut()
            .insert(AUTHORIZATION, token.header.clone());
        Ok(token)
    }

    /// Drops the cached token: the next [`token`](Self::token) fetches a new one.
    pub fn invalidate(&self) {
        self.lock_state().cached = None;
    }

    /// Drops the cached token only if it is `rejected` (the token a `401` answered). When many
    /// requests fail with the same token, only the first invalidation refetches.
    pub fn invalidate_if_current(&self, rejected: &AccessToken) {
        let mut state = self.lock_state();
        if state
            .cached
            .as_ref()
            .is_some_and(|c| c.token.id == rejected.id)
        {
            state.cached = None;
        }
    }

    /// How many token requests were sent so far (for tests and metrics).
    #[must_use]
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain cache: a panic elsewhere cannot leave it inconsistent.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn fetch(&self) -> Result<(AccessToken, Instant), TokenError> {
        let inner = &*self.inner;
        let id = inner.fetches.fetch_add(1, Ordering::Relaxed) + 1;
        let mut request = inner.request.build();
        if let Some(timeout) = inner.fetch_timeout {
            request.extensions_mut().insert(RequestTimeout(timeout));
        }
        tracing::debug!(endpoint = ?inner.request.uri.host(), "fetching an access token");
        let response = inner
            .transport
            .send(request)
            .await
            .map_err(|e| TokenError::Transport(Arc::new(e)))?;
        let fetched_at = Instant::now();
        let status = response.status();
        let json: Option<Value> = serde_json::from_slice(response.body()).ok();
        if !status.is_success() {
            let error = json.as_ref().and_then(oauth_error_code);
            tracing::debug!(%status, error = error.as_deref(), "token endpoint refused");
            return Err(TokenError::Rejected { status, error });
        }
        let json = json.ok_or(TokenError::NotJson)?;
        let parsed = inner.request.parse(&json)?;
        let header = HeaderValue::try_from(format!("{} {}", parsed.scheme, parsed.token.expose()))
            .map(|mut h| {
                h.set_sensitive(true);
                h
            })
            .map_err(|_| TokenError::InvalidToken)?;
        let lifetime = parsed.lifetime;
        let margin = inner.skew.min(lifetime / 2);
        let token = AccessToken {
            header,
            secret: parsed.token,
            expires_at: fetched_at + lifetime,
            id,
        };
        Ok((token, fetched_at + (lifetime - margin)))
    }
}

impl State {
    fn fresh(&self, now: Instant) -> Option<AccessToken> {
        self.cached
            .as_ref()
            .filter(|c| now < c.refresh_at)
            .map(|c| c.token.clone())
    }
}

/// The token request, prepared once at build time.
struct RequestTemplate {
    uri: Uri,
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

struct Parsed {
    token: Secret,
    scheme: String,
    lifetime: Duration,
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
    fn new(source: &TokenSource) -> Result<Self, TokenConfigError> {
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

    fn build(&self) -> http::Request<Bytes> {
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

    fn parse(&self, json: &Value) -> Result<Parsed, TokenError> {
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
                    token: Secret::new(token),
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
                    token: Secret::new(token),
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
fn oauth_error_code(json: &Value) -> Option<String> {
    json.get("error")
        .and_then(Value::as_str)
        .filter(|e| e.len() <= 64 && e.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{Response, ResponseFuture, Transport};
    use std::collections::VecDeque;

    /// A transport double that records requests and replays canned answers.
    #[derive(Debug, Default)]
    struct Canned {
        answers: Mutex<VecDeque<(u16, &'static str)>>,
        seen: Mutex<Vec<http::Request<Bytes>>>,
    }

    impl Canned {
        fn new(answers: &[(u16, &'static str)]) -> Arc<Self> {
            Arc::new(Self {
                answers: Mutex::new(answers.iter().copied().collect()),
                seen: Mutex::default(),
            })
        }
        fn requests(&self) -> Vec<http::Request<Bytes>> {
            std::mem::take(&mut *self.seen.lock().unwrap_or_else(PoisonError::into_inner))
        }
    }

    impl Transport for Canned {
        fn send(&self, request: http::Request<Bytes>) -> ResponseFuture {
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(request);
            let answer = self
                .answers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop_front();
            Box::pin(async move {
                let (status, body) = answer.unwrap_or((500, "{}"));
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                Ok(Response::new(
                    status,
                    http::HeaderMap::new(),
                    Bytes::from_static(body.as_bytes()),
                ))
            })
        }
    }

    fn provider(source: impl Into<TokenSource>, t: &Arc<Canned>) -> TokenProvider {
        let transport: SharedTransport = t.clone();
        TokenProvider::builder(source)
            .build(transport)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn auth_url_posts_json_and_finds_token() -> Result<(), TokenError> {
        let t = Canned::new(&[(200, r#"{"token":"abc","expires_in":"120"}"#)]);
        let p = provider(
            AuthUrlSource::new("https://auth.test/login", "u\"ser", "p@ss"),
            &t,
        );
        let token = p.token().await?;
        assert_eq!(token.authorization(), "Bearer abc");
        assert!(token.authorization().is_sensitive());
        let req = t.requests().pop().ok_or(TokenError::MissingToken)?;
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.headers()[CONTENT_TYPE], "application/json");
        let body: Value = serde_json::from_slice(req.body()).map_err(|_| TokenError::NotJson)?;
        assert_eq!(
            body,
            serde_json::json!({"username": "u\"ser", "password": "p@ss"})
        );
        Ok(())
    }

    #[tokio::test]
    async fn auth_url_form_basic_and_pointer() -> Result<(), TokenError> {
        let t = Canned::new(&[(200, r#"{"data":{"jwt":"xyz"}}"#), (200, r#""plain""#)]);
        let source = AuthUrlSource::new("https://auth.test/login", "me", "a b&c")
            .encoding(CredentialsEncoding::Form)
            .field_names("user", "pass")
            .token_field(TokenField::Pointer("/data/jwt".into()))
            .scheme("Token");
        let token = provider(source, &t).token().await?;
        assert_eq!(token.authorization(), "Token xyz");
        let req = t.requests().pop().ok_or(TokenError::MissingToken)?;
        assert_eq!(req.body().as_ref(), b"user=me&pass=a%20b%26c");

        let source = AuthUrlSource::new("https://auth.test/login", "me", "pw")
            .encoding(CredentialsEncoding::Basic);
        let token = provider(source, &t).token().await?;
        assert_eq!(token.expose(), "plain");
        let req = t.requests().pop().ok_or(TokenError::MissingToken)?;
        assert_eq!(req.headers()[AUTHORIZATION], "Basic bWU6cHc=");
        assert!(req.body().is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn client_credentials_basic_and_body() -> Result<(), TokenError> {
        let t = Canned::new(&[
            (
                200,
                r#"{"access_token":"t1","token_type":"bearer","expires_in":3600}"#,
            ),
            (200, r#"{"access_token":"t2","token_type":"Bearer"}"#),
        ]);
        let source =
            ClientCredentialsSource::new("https://idp.test/token", "id:x", "s/cret").scope("a b");
        let token = provider(source, &t).token().await?;
        assert_eq!(token.authorization(), "Bearer t1");
        let req = t.requests().pop().ok_or(TokenError::MissingToken)?;
        assert_eq!(
            req.body().as_ref(),
            b"grant_type=client_credentials&scope=a%20b"
        );
        // base64("id%3Ax:s%2Fcret")
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("id%3Ax:s%2Fcret")
        );
        assert_eq!(req.headers()[AUTHORIZATION], expected.as_str());
        assert_eq!(
            req.headers()[CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );

        let source = ClientCredentialsSource::new("https://idp.test/token", "id", "sec")
            .client_auth(ClientAuth::RequestBody);
        provider(source, &t).token().await?;
        let req = t.requests().pop().ok_or(TokenError::MissingToken)?;
        assert_eq!(
            req.body().as_ref(),
            b"grant_type=client_credentials&client_id=id&client_secret=sec"
        );
        assert!(req.headers().get(AUTHORIZATION).is_none());
        Ok(())
    }

    #[tokio::test]
    async fn errors_are_typed_and_carry_no_body() {
        let t = Canned::new(&[
            (
                401,
                r#"{"error":"invalid_client","error_description":"secret s3cret wrong"}"#,
            ),
            (200, "not json"),
            (200, r#"{"nothing":"here"}"#),
            (200, r#"{"access_token":"bad\ntoken"}"#),
        ]);
        let p = provider(
            ClientCredentialsSource::new("https://idp.test/token", "id", "s3cret"),
            &t,
        );
        let err = p.token().await.expect_err("401");
        assert!(
            matches!(&err, TokenError::Rejected { status, error: Some(e) } if *status == 401 && e == "invalid_client")
        );
        assert!(!err.to_string().contains("s3cret"));
        assert!(!err.is_transient());
        assert!(matches!(p.token().await, Err(TokenError::NotJson)));
        assert!(matches!(p.token().await, Err(TokenError::MissingToken)));
        assert!(matches!(p.token().await, Err(TokenError::InvalidToken)));
    }

    #[test]
    fn config_errors() {
        let t: SharedTransport = Canned::new(&[]);
        let bad = |s: TokenSource| TokenProvider::builder(s).build(t.clone()).err();
        assert_eq!(
            bad(AuthUrlSource::new("/relative", "u", "p").into()),
            Some(TokenConfigError::InvalidUrl)
        );
        assert_eq!(
            bad(AuthUrlSource::new("ftp://x/", "u", "p").into()),
            Some(TokenConfigError::InvalidUrl)
        );
        assert_eq!(
            bad(AuthUrlSource::new("https://x/", "a:b", "p")
                .encoding(CredentialsEncoding::Basic)
                .into()),
            Some(TokenConfigError::InvalidCredential("username or password"))
        );
        assert_eq!(
            bad(AuthUrlSource::new("https://x/", "u", "p\n")
                .encoding(CredentialsEncoding::Basic)
                .into()),
            Some(TokenConfigError::InvalidCredential("username or password"))
        );
        assert_eq!(
            bad(AuthUrlSource::new("https://x/", "u\r", "p").into()),
            Some(TokenConfigError::InvalidCredential("username"))
        );
        assert_eq!(
            bad(AuthUrlSource::new("https://x/", "u", "p").scheme("").into()),
            Some(TokenConfigError::InvalidScheme)
        );
        // Form-encoding makes any client id or secret sendable.
        assert_eq!(
            bad(ClientCredentialsSource::new("https://x/", "i:d\n", "p\n").into()),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cached_until_expiry_minus_skew_then_refetched() -> Result<(), TokenError> {
        let t = Canned::new(&[
            (200, r#"{"access_token":"t1","expires_in":100}"#),
            (200, r#"{"access_token":"t2","expires_in":100}"#),
            (200, r#"{"access_token":"t3","expires_in":10}"#),
        ]);
        let p = provider(
            ClientCredentialsSource::new("https://idp.test/token", "id", "s"),
            &t,
        );
        assert_eq!(p.token().await?.expose(), "t1");
        tokio::time::advance(Duration::from_secs(69)).await;
        assert_eq!(p.token().await?.expose(), "t1");
        tokio::time::advance(Duration::from_secs(1)).await; // 100 - 30 s skew
        let t2 = p.token().await?;
        assert_eq!(t2.expose(), "t2");
        assert_eq!(p.fetch_count(), 2);
        // A stale 401 for t1 does not throw away t2; a 401 for t2 does.
        p.invalidate_if_current(&AccessToken {
            id: 1,
            ..t2.clone()
        });
        assert_eq!(p.token().await?.expose(), "t2");
        p.invalidate_if_current(&t2);
        let t3 = p.token().await?;
        assert_eq!(t3.expose(), "t3");
        // Short-lived token: at most half its lifetime is taken off.
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(p.token().await?.expose(), "t3");
        assert_eq!(p.fetch_count(), 3);
        Ok(())
    }

    #[test]
    fn secrets_are_redacted() {
        let a = AuthUrlSource::new("https://x/", "user", "pw-secret");
        let c = ClientCredentialsSource::new("https://x/", "id", "cs-secret");
        let dbg = format!("{a:?}{c:?}");
        assert!(
            !dbg.contains("pw-secret") && !dbg.contains("cs-secret"),
            "{dbg}"
        );
        assert!(dbg.contains("Secret(***)"));
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
