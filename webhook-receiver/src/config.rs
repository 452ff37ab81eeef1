//! Receiver configuration: authentication, limits, formats, methods, replay protection.
//!
//! [`ReceiverConfig`] configures the part of the pipeline before handlers (method → media type
//! and encoding → bounded body → decompression → authentication → replay check), which the
//! intake (`intake.rs`) runs for the [`Receiver`](crate::Receiver), the tower
//! `VerifyLayer` and the axum extractor. Clones share one replay cache.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Method;

use crate::auth::Authenticate;
use crate::media::MediaType;
use crate::replay::{ReplayCache, ReplayStore, SharedReplayCache};

/// Default body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// Largest configurable body (and decompressed) limit: 1 GiB.
pub const MAX_BODY_LIMIT: usize = 1024 * 1024 * 1024;
/// Default replay window: 300 s, the Standard Webhooks tolerance.
pub const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(300);
/// Default replay cache size: 100 000 ids.
pub const DEFAULT_REPLAY_ENTRIES: usize = 100_000;

/// Which bytes the authenticator sees when the body has a `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SignedBody {
    /// The body exactly as received (compressed): authenticate before decompressing anything.
    #[default]
    AsReceived,
    /// The body after decompression (for senders that sign before compressing).
    Decoded,
}

/// Why a configuration or receiver could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiverBuildError {
    /// No authenticator was chosen; pass [`ReceiverAuth::None`](webhook_core::ReceiverAuth::None) to accept everyone explicitly.
    #[error(
        "no authenticator chosen (use ReceiverAuth::None to accept unauthenticated requests explicitly)"
    )]
    NoAuthenticator,
    /// The body limit is zero.
    #[error("the body limit must be at least 1 byte")]
    ZeroBodyLimit,
    /// A body or decompressed limit is above [`MAX_BODY_LIMIT`].
    #[error("limit {limit} exceeds the maximum of {max} bytes")]
    LimitTooLarge {
        /// The configured limit.
        limit: usize,
        /// The maximum.
        max: usize,
    },
    /// The decompressed-size limit is zero.
    #[error("the decompressed-size limit must be at least 1 byte")]
    ZeroDecompressedLimit,
    /// No media type is accepted.
    #[error("at least one media type must be accepted")]
    NoMediaTypes,
    /// No method is allowed.
    #[error("at least one method must be allowed")]
    NoMethods,
    /// The replay window is zero.
    #[error("the replay window must be positive")]
    ZeroReplayWindow,
    /// The replay cache size is zero.
    #[error("the replay cache must hold at least one id")]
    ZeroReplayEntries,
    /// The replay window is shorter than the time the authenticator accepts a message (its
    /// timestamp tolerance): a replay after the window would be accepted.
    #[error(
        "the replay window of {window:?} is shorter than the {required:?} the authenticator accepts a message for"
    )]
    ReplayWindowTooShort {
        /// The configured window.
        window: Duration,
        /// What the authenticator needs ([`Authenticate::replay_window`]).
        required: Duration,
    },
    /// The receiver has no fallback handler.
    #[error("a fallback handler is required")]
    NoFallback,
    /// A route pattern is invalid (for example empty).
    #[error(transparent)]
    Route(#[from] webhook_core::RouteError),
    /// Two routes have the same pattern.
    #[error("duplicate route pattern {pattern:?}")]
    DuplicateRoute {
        /// The duplicated pattern.
        pattern: String,
    },
}

struct Inner {
    auth: Box<dyn Authenticate>,
    body_limit: usize,
    decompressed_limit: usize,
    gzip: bool,
    signed_body: SignedBody,
    media_types: Vec<MediaType>,
    methods: Vec<Method>,
    replay: Option<ReplayState>,
    handshakes: bool,
}

/// The replay cache of a built configuration.
struct ReplayState {
    window: Duration,
    cache: SharedReplayCache,
    /// A store shared with other receivers, used instead of `cache`.
    store: Option<Arc<dyn ReplayStore>>,
}

/// The validated pre-handler configuration; cheap to clone (shared, including the replay cache).
///
/// ```
/// use std::time::Duration;
/// use webhook_receiver::{MediaType, ReceiverConfig};
/// use webhook_core::ReceiverAuth;
///
/// let config = ReceiverConfig::builder()
///     .auth(ReceiverAuth::None)
///     .body_limit(25 * 1024 * 1024)
///     .allow_method(http::Method::GET)
///     .media_types([MediaType::Json, MediaType::NdJson])
///     .replay_protection(Duration::from_secs(300), 50_000)
///     .build()?;
/// assert_eq!(config.body_limit(), 25 * 1024 * 1024);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ReceiverConfig {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ReceiverConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverConfig")
            .field("body_limit", &self.inner.body_limit)
            .field("decompressed_limit", &self.inner.decompressed_limit)
            .field("gzip", &self.inner.gzip)
            .field("signed_body", &self.inner.signed_body)
            .field("media_types", &self.inner.media_types)
            .field("methods", &self.inner.methods)
            .field("replay", &self.inner.replay.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`ReceiverConfig`]; setters never fail, [`build`](Self::build) reports the first
/// problem.
pub struct ReceiverConfigBuilder {
    auth: Option<Box<dyn Authenticate>>,
    body_limit: usize,
    decompressed_limit: Option<usize>,
    gzip: bool,
    signed_body: SignedBody,
    media_types: Vec<MediaType>,
    methods: Vec<Method>,
    replay: Replay,
    replay_store: Option<Arc<dyn ReplayStore>>,
    handshakes: bool,
}

/// The replay-protection choice of a builder.
#[derive(Debug, Clone, Copy)]
enum Replay {
    /// On, with a window of at least the authenticator's (and the default) and this size.
    Default { max_entries: usize },
    /// On, with exactly this window and size.
    Explicit {
        window: Duration,
        max_entries: usize,
    },
    /// Off.
    Off,
}

impl std::fmt::Debug for ReceiverConfigBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverConfigBuilder")
            .field("auth", &self.auth.is_some())
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl ReceiverConfigBuilder {
    /// The authenticator (required; [`ReceiverAuth::None`](webhook_core::ReceiverAuth::None) for none): a `webhook-core`
    /// [`ReceiverAuth`](webhook_core::ReceiverAuth) (Basic, Bearer, header token, signature),
    /// a [`Verifier`](webhook_core::Verifier), or your own [`Authenticate`].
    ///
    /// ```
    /// use webhook_core::{BasicCredentials, ReceiverAuth};
    /// use webhook_receiver::ReceiverConfig;
    ///
    /// let config = ReceiverConfig::builder()
    ///     .auth(ReceiverAuth::Basic(BasicCredentials::parse("sysdig:s3cret")?))
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn auth(mut self, auth: impl Authenticate) -> Self {
        self.auth = Some(Box::new(auth));
        self
    }

    /// Verifies signatures with `verifier` (any scheme, key ring and tolerance). The replay
    /// window defaults to the verifier's tolerance (at least [`DEFAULT_REPLAY_WINDOW`]).
    ///
    /// ```
    /// use webhook_core::{KeyRing, Scheme, Secret, Verifier};
    /// use webhook_receiver::ReceiverConfig;
    ///
    /// let ring = KeyRing::single(Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?);
    /// let config = ReceiverConfig::builder()
    ///     .verify(Verifier::new(Scheme::standard_webhooks(), &ring)?)
    ///     .build()?;
    /// assert!(config.replay_window() >= Some(std::time::Duration::from_secs(300)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn verify(self, verifier: webhook_core::Verifier) -> Self {
        self.auth(verifier)
    }

    /// HTTP Basic authentication (Sysdig `BASIC_AUTH`, Safous).
    #[must_use]
    pub fn basic(self, credentials: webhook_core::BasicCredentials) -> Self {
        self.auth(webhook_core::ReceiverAuth::Basic(credentials))
    }

    /// `Authorization: Bearer` token authentication (Sysdig `BEARER_TOKEN`).
    #[must_use]
    pub fn bearer(self, token: webhook_core::BearerToken) -> Self {
        self.auth(webhook_core::ReceiverAuth::Bearer(token))
    }

    /// Static header token authentication (ConnectSecure, GitLab).
    #[must_use]
    pub fn header_token(self, token: webhook_core::HeaderToken) -> Self {
        self.auth(webhook_core::ReceiverAuth::HeaderToken(token))
    }

    /// Whether to answer providers' registration handshakes (default `true`): a request that
    /// authenticated and is its scheme's handshake (Discord PING, Slack `url_verification`, Zoom
    /// `endpoint.url_validation`) is answered `200` with the reply the provider expects
    /// ([`Rejection::Handshake`](crate::Rejection::Handshake)) and never reaches handlers.
    /// `false` hands it to the handlers like any event.
    ///
    /// ```
    /// use webhook_core::{KeyRing, Scheme, Secret, Verifier};
    /// use webhook_receiver::ReceiverConfig;
    ///
    /// let ring = KeyRing::single(Scheme::slack().parse_key("8f742231b10e8888abcd99yyyzzz85a5")?);
    /// let config = ReceiverConfig::builder().verify(Verifier::new(Scheme::slack(), &ring)?).build()?;
    /// assert!(config.handshakes());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn handshakes(mut self, answer: bool) -> Self {
        self.handshakes = answer;
        self
    }

    /// The largest body accepted as sent, in bytes (default 1 MiB, at most [`MAX_BODY_LIMIT`]).
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The largest body after gzip decompression (default: the body limit).
    #[must_use]
    pub fn decompressed_limit(mut self, bytes: usize) -> Self {
        self.decompressed_limit = Some(bytes);
        self
    }

    /// Whether `Content-Encoding: gzip` is accepted (default `true`; otherwise `415`).
    #[must_use]
    pub fn gzip(mut self, enabled: bool) -> Self {
        self.gzip = enabled;
        self
    }

    /// Which bytes the authenticator sees for compressed bodies (default
    /// [`SignedBody::AsReceived`]).
    #[must_use]
    pub fn signed_body(mut self, signed: SignedBody) -> Self {
        self.signed_body = signed;
        self
    }

    /// Replaces the accepted media types (default: all of [`MediaType::ALL`]).
    #[must_use]
    pub fn media_types(mut self, types: impl IntoIterator<Item = MediaType>) -> Self {
        self.media_types = types.into_iter().collect();
        self
    }

    /// Replaces the allowed methods (default: `POST`).
    #[must_use]
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = methods.into_iter().collect();
        self
    }

    /// Adds an allowed method (for example `GET` for call-out endpoints).
    #[must_use]
    pub fn allow_method(mut self, method: Method) -> Self {
        if !self.methods.contains(&method) {
            self.methods.push(method);
        }
        self
    }

    /// Turns replay protection on: ids are remembered for `window`, at most `max_entries`
    /// (default: on, 100 000 ids, for the longer of [`DEFAULT_REPLAY_WINDOW`] and the
    /// authenticator's [`replay_window`](Authenticate::replay_window)). A `window` shorter than
    /// the authenticator's is refused by [`build`](Self::build). Requests whose authentication
    /// yields no message id are not checked.
    #[must_use]
    pub fn replay_protection(mut self, window: Duration, max_entries: usize) -> Self {
        self.replay = Replay::Explicit {
            window,
            max_entries,
        };
        self
    }

    /// Keeps the default replay window (derived from the authenticator) with room for
    /// `max_entries` ids.
    #[must_use]
    pub fn replay_entries(mut self, max_entries: usize) -> Self {
        self.replay = Replay::Default { max_entries };
        self
    }

    /// Checks message ids in `store`, shared with other receiver instances, instead of the
    /// in-memory cache: a replay sent to any instance is refused once any of them saw it.
    /// Turns replay protection on (with the default window unless
    /// [`replay_protection`](Self::replay_protection) sets one). When the store cannot be
    /// asked, requests are refused with `503`
    /// ([`Rejection::ReplayStoreUnavailable`](crate::Rejection::ReplayStoreUnavailable)),
    /// unless the store itself is configured to accept them.
    #[must_use]
    pub fn replay_store(mut self, store: Arc<dyn ReplayStore>) -> Self {
        if matches!(self.replay, Replay::Off) {
            self.replay = Replay::Default {
                max_entries: DEFAULT_REPLAY_ENTRIES,
            };
        }
        self.replay_store = Some(store);
        self
    }

    /// Turns replay protection off.
    #[must_use]
    pub fn no_replay_protection(mut self) -> Self {
        self.replay = Replay::Off;
        self
    }

    /// Validates and builds the configuration.
    pub fn build(self) -> Result<ReceiverConfig, ReceiverBuildError> {
        let auth = self.auth.ok_or(ReceiverBuildError::NoAuthenticator)?;
        if self.body_limit == 0 {
            return Err(ReceiverBuildError::ZeroBodyLimit);
        }
        let decompressed_limit = self.decompressed_limit.unwrap_or(self.body_limit);
        if decompressed_limit == 0 {
            return Err(ReceiverBuildError::ZeroDecompressedLimit);
        }
        for limit in [self.body_limit, decompressed_limit] {
            if limit > MAX_BODY_LIMIT {
                return Err(ReceiverBuildError::LimitTooLarge {
                    limit,
                    max: MAX_BODY_LIMIT,
                });
            }
        }
        if self.media_types.is_empty() {
            return Err(ReceiverBuildError::NoMediaTypes);
        }
        if self.methods.is_empty() {
            return Err(ReceiverBuildError::NoMethods);
        }
        let required = auth.replay_window();
        let (window, max) = match self.replay {
            Replay::Off => (None, 0),
            Replay::Default { max_entries } => (
                Some(required.map_or(DEFAULT_REPLAY_WINDOW, |r| r.max(DEFAULT_REPLAY_WINDOW))),
                max_entries,
            ),
            Replay::Explicit {
                window,
                max_entries,
            } => (Some(window), max_entries),
        };
        let replay = match window {
            None => None,
            Some(window) if window.is_zero() => return Err(ReceiverBuildError::ZeroReplayWindow),
            Some(_) if max == 0 => return Err(ReceiverBuildError::ZeroReplayEntries),
            Some(window) => {
                if let Some(required) = required.filter(|r| window < *r) {
                    return Err(ReceiverBuildError::ReplayWindowTooShort { window, required });
                }
                Some(ReplayState {
                    window,
                    cache: Arc::new(Mutex::new(ReplayCache::new(
                        window,
                        if self.replay_store.is_some() { 1 } else { max },
                    ))),
                    store: self.replay_store,
                })
            }
        };
        Ok(ReceiverConfig {
            inner: Arc::new(Inner {
                auth,
                body_limit: self.body_limit,
                decompressed_limit,
                gzip: self.gzip,
                signed_body: self.signed_body,
                media_types: self.media_types,
                methods: self.methods,
                replay,
                handshakes: self.handshakes,
            }),
        })
    }
}

impl ReceiverConfig {
    /// A builder with the defaults (no authenticator chosen yet).
    pub fn builder() -> ReceiverConfigBuilder {
        ReceiverConfigBuilder {
            auth: None,
            body_limit: DEFAULT_BODY_LIMIT,
            decompressed_limit: None,
            gzip: true,
            signed_body: SignedBody::AsReceived,
            media_types: MediaType::ALL.to_vec(),
            methods: vec![Method::POST],
            replay: Replay::Default {
                max_entries: DEFAULT_REPLAY_ENTRIES,
            },
            replay_store: None,
            handshakes: true,
        }
    }

    /// Whether verified registration handshakes are answered (see
    /// [`Authenticate::handshake`]).
    pub fn handshakes(&self) -> bool {
        self.inner.handshakes
    }

    /// The body limit in bytes.
    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    /// The decompressed-size limit in bytes.
    pub fn decompressed_limit(&self) -> usize {
        self.inner.decompressed_limit
    }

    /// The allowed methods.
    pub fn methods(&self) -> &[Method] {
        &self.inner.methods
    }

    /// The accepted media types.
    pub fn media_types(&self) -> &[MediaType] {
        &self.inner.media_types
    }

    /// Whether replay protection is on.
    pub fn replay_protection(&self) -> bool {
        self.inner.replay.is_some()
    }

    /// How long message ids are remembered (`None` without replay protection).
    pub fn replay_window(&self) -> Option<Duration> {
        self.inner.replay.as_ref().map(|r| r.window)
    }

    /// The authenticator.
    pub(crate) fn authenticator(&self) -> &dyn Authenticate {
        &*self.inner.auth
    }

    /// Whether `Content-Encoding: gzip` is accepted.
    pub(crate) fn gzip(&self) -> bool {
        self.inner.gzip
    }

    /// Which bytes the authenticator sees.
    pub(crate) fn signed_body(&self) -> SignedBody {
        self.inner.signed_body
    }

    /// The replay cache (`None` without replay protection).
    pub(crate) fn replay_cache(&self) -> Option<&SharedReplayCache> {
        self.inner.replay.as_ref().map(|r| &r.cache)
    }

    /// The shared replay store and the window, when one is set.
    pub(crate) fn replay_store(&self) -> Option<(&Arc<dyn ReplayStore>, Duration)> {
        self.inner
            .replay
            .as_ref()
            .and_then(|r| r.store.as_ref().map(|s| (s, r.window)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webhook_core::ReceiverAuth;

    #[test]
    fn build_reports_first_problem() {
        assert_eq!(
            ReceiverConfig::builder().build().unwrap_err(),
            ReceiverBuildError::NoAuthenticator
        );
        assert_eq!(
            ReceiverConfig::builder()
                .auth(ReceiverAuth::None)
                .body_limit(0)
                .build()
                .unwrap_err(),
            ReceiverBuildError::ZeroBodyLimit
        );
        assert!(matches!(
            ReceiverConfig::builder()
                .auth(ReceiverAuth::None)
                .body_limit(MAX_BODY_LIMIT + 1)
                .build(),
            Err(ReceiverBuildError::LimitTooLarge { .. })
        ));
        assert_eq!(
            ReceiverConfig::builder()
                .auth(ReceiverAuth::None)
                .methods([])
                .build()
                .unwrap_err(),
            ReceiverBuildError::NoMethods
        );
        assert_eq!(
            ReceiverConfig::builder()
                .auth(ReceiverAuth::None)
                .media_types([])
                .build()
                .unwrap_err(),
            ReceiverBuildError::NoMediaTypes
        );
        assert_eq!(
            ReceiverConfig::builder()
                .auth(ReceiverAuth::None)
                .replay_protection(Duration::ZERO, 1)
                .build()
                .unwrap_err(),
            ReceiverBuildError::ZeroReplayWindow
        );
    }

    #[test]
    fn replay_window_derives_from_the_verifier_tolerance() {
        use webhook_core::{KeyRing, Scheme, Secret, Tolerance, Verifier};
        let ring = KeyRing::single(Secret::from_bytes("k").unwrap());
        let v = Verifier::new(Scheme::standard_webhooks(), &ring).unwrap();
        let c = ReceiverConfig::builder().verify(v.clone()).build().unwrap();
        assert_eq!(c.replay_window(), Some(Duration::from_secs(301)));
        let long = v
            .clone()
            .with_tolerance(Tolerance::symmetric(Duration::from_secs(900)));
        let c = ReceiverConfig::builder()
            .verify(long.clone())
            .replay_entries(10)
            .build()
            .unwrap();
        assert_eq!(c.replay_window(), Some(Duration::from_secs(901)));
        assert_eq!(
            ReceiverConfig::builder()
                .verify(long)
                .replay_protection(Duration::from_secs(300), 10)
                .build()
                .unwrap_err(),
            ReceiverBuildError::ReplayWindowTooShort {
                window: Duration::from_secs(300),
                required: Duration::from_secs(901)
            }
        );
        let c = ReceiverConfig::builder()
            .verify(v)
            .no_replay_protection()
            .build()
            .unwrap();
        assert_eq!(c.replay_window(), None);
    }

    #[test]
    fn defaults() {
        let c = ReceiverConfig::builder()
            .auth(ReceiverAuth::None)
            .build()
            .unwrap();
        assert_eq!(c.body_limit(), DEFAULT_BODY_LIMIT);
        assert_eq!(c.decompressed_limit(), DEFAULT_BODY_LIMIT);
        assert_eq!(c.methods(), &[Method::POST]);
        assert!(c.replay_protection());
        assert_eq!(c.replay_window(), Some(DEFAULT_REPLAY_WINDOW));
        let c = ReceiverConfig::builder()
            .auth(ReceiverAuth::None)
            .body_limit(300 * 1024 * 1024)
            .build()
            .unwrap();
        assert_eq!(c.decompressed_limit(), 300 * 1024 * 1024);
    }
}
