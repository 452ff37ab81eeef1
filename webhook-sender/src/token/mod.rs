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
//! [`TokenProvider`] fetches through a [`Transport`] (so TLS settings and the SSRF guard apply),
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

use http::header::AUTHORIZATION;
use http::{HeaderValue, StatusCode};
use serde_json::Value;
use tokio::time::Instant;
use zeroize::Zeroizing;

use bytes::Bytes;

use crate::error::TransportError;
use crate::transport::{RequestTimeout, Response, SharedTransport, Transport};

mod source;

pub use self::source::{
    AuthUrlSource, ClientAuth, ClientCredentialsSource, CredentialsEncoding, TokenField,
    TokenSource,
};
use self::source::{RequestTemplate, oauth_error_code};

/// A text credential (a password, a client secret, a fetched token): zeroized on drop, `Debug`
/// prints `Credential(***)`. Key material for signatures is `webhook_core::Secret`.
///
/// ```
/// use webhook_sender::token::Credential;
/// let s = Credential::new("hunter2");
/// assert_eq!(format!("{s:?}"), "Credential(***)");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, Default)]
pub struct Credential(Zeroizing<String>);

impl Credential {
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

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(***)")
    }
}

impl From<String> for Credential {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for Credential {
    fn from(s: &str) -> Self {
        Self::new(s)
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

/// Why [`TokenProvider::send`] got no response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizedSendError {
    /// The token could not be fetched.
    #[error("the token could not be fetched")]
    Token(#[source] TokenError),
    /// The request got no response (timeout, connection, TLS, SSRF guard).
    #[error("the request failed")]
    Transport(#[source] TransportError),
}

/// A copy of `request` to send again: method, URI, version, headers, body (shared bytes) and
/// the per-request timeout.
pub(crate) fn copy_request(request: &http::Request<Bytes>) -> http::Request<Bytes> {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    if let Some(t) = request.extensions().get::<RequestTimeout>() {
        copy.extensions_mut().insert(*t);
    }
    copy
}

/// A fetched token, ready to send. Cheap to clone; `Debug` never shows it.
#[derive(Clone)]
pub struct AccessToken {
    header: HeaderValue,
    secret: Credential,
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

    /// Authorizes `request`, sends it over `transport` and, when the answer is `401`, refreshes
    /// the token and sends the request once more: the one place that policy lives (deliveries,
    /// [`Sender::test_integration`](crate::Sender::test_integration) and call-outs use it).
    ///
    /// A second `401` is returned as it is. The token a `401` answered is dropped only if it is
    /// still the cached one, so many requests rejected together cause one refetch.
    ///
    /// # Errors
    /// [`AuthorizedSendError::Token`] when no token could be fetched;
    /// [`AuthorizedSendError::Transport`] when a request got no response.
    pub async fn send(
        &self,
        transport: &dyn Transport,
        mut request: http::Request<Bytes>,
    ) -> Result<Response, AuthorizedSendError> {
        let again = copy_request(&request);
        let sent_with = self
            .authorize(&mut request)
            .await
            .map_err(AuthorizedSendError::Token)?;
        let response = transport
            .send(request)
            .await
            .map_err(AuthorizedSendError::Transport)?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        tracing::debug!("401: refreshing the token and sending again, once");
        self.invalidate_if_current(&sent_with);
        let mut again = again;
        self.authorize(&mut again)
            .await
            .map_err(AuthorizedSendError::Token)?;
        transport
            .send(again)
            .await
            .map_err(AuthorizedSendError::Transport)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{Response, ResponseFuture, Transport};
    use base64::Engine as _;
    use bytes::Bytes;
    use http::Method;
    use http::header::CONTENT_TYPE;
    use std::collections::VecDeque;

    #[test]
    fn copy_keeps_everything_needed_for_a_retry() -> Result<(), http::Error> {
        let mut req = http::Request::post("https://x.test/a?b=c")
            .header("x-k", "v")
            .body(Bytes::from_static(b"{}"))?;
        req.extensions_mut()
            .insert(RequestTimeout(Duration::from_secs(2)));
        let copy = copy_request(&req);
        assert_eq!(copy.method(), Method::POST);
        assert_eq!(copy.uri(), req.uri());
        assert_eq!(copy.headers(), req.headers());
        assert_eq!(copy.body(), req.body());
        assert_eq!(
            copy.extensions().get::<RequestTimeout>(),
            Some(&RequestTimeout(Duration::from_secs(2)))
        );
        Ok(())
    }

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
}
