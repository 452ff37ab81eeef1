//! The authentication seam: who sent this request, and may we trust its bytes?
//!
//! The receiver calls [`Authenticate::authenticate`] with the request headers, the body bytes
//! exactly as received (see [`SignedBody`](crate::SignedBody)) and the current time, before
//! anything parses the body. An implementation answers with an [`Authenticated`] (the
//! [`Identity`] handed to handlers, and optionally the message id and timestamp used for replay
//! protection) or an [`AuthRejection`] (answered with `401`).
//!
//! `webhook-core`'s authenticators plug in through this trait: a
//! [`Verifier`](webhook_core::Verifier) for any signature scheme and key ring, and
//! [`ReceiverAuth`](webhook_core::ReceiverAuth) for Basic, Bearer, a static header token, a
//! signature, or none: [`ReceiverAuth::None`](webhook_core::ReceiverAuth::None) is the explicit
//! "no authentication" choice (the receiver has no spelling of its own for it).
//!
//! The [`Identity`] handed to handlers is `webhook-core`'s: one type across the SDK.

mod schemes;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderMap;

pub use webhook_core::Identity;

/// Authenticates one inbound request.
///
/// Implementations must compare secrets in constant time, must not read the clock (use `now`)
/// and must never put a secret, a signature or a header value into an [`AuthRejection`].
///
/// ```
/// use std::time::SystemTime;
/// use http::HeaderMap;
/// use webhook_receiver::{AuthRejection, AuthRejectionKind, Authenticate, Authenticated, Identity};
///
/// /// Accepts requests carrying `x-api-key: demo` (use a constant-time comparison in real code).
/// struct ApiKey;
///
/// impl Authenticate for ApiKey {
///     fn authenticate(
///         &self,
///         headers: &HeaderMap,
///         _body: &[u8],
///         _now: SystemTime,
///     ) -> Result<Authenticated, AuthRejection> {
///         match headers.get("x-api-key") {
///             None => Err(AuthRejectionKind::Missing.into()),
///             Some(v) if v.as_bytes() == b"demo" => Ok(Authenticated::new(Identity::HeaderToken {
///                 header: http::HeaderName::from_static("x-api-key"),
///             })),
///             Some(_) => Err(AuthRejectionKind::Invalid.into()),
///         }
///     }
/// }
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-api-key", "demo".parse()?);
/// assert!(ApiKey.authenticate(&headers, b"{}", SystemTime::now()).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Authenticate: Send + Sync + 'static {
    /// Authenticates a request from its headers and raw body bytes at time `now`.
    fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Authenticated, AuthRejection>;

    /// How long after its first acceptance a message could be accepted again (its signed
    /// timestamp is still within the tolerance), if the authenticator knows. The receiver's
    /// replay cache keeps message ids at least this long. `None` (the default): no timestamp
    /// window, the receiver's default replay window applies.
    fn replay_window(&self) -> Option<Duration> {
        None
    }

    /// The answer to a provider's registration handshake when this request, which
    /// [`authenticate`](Self::authenticate) accepted as `authenticated`, is one (Discord's
    /// PING, Slack's `url_verification`, Zoom's `endpoint.url_validation`; see
    /// [`webhook_core::Handshake`]). The receiver sends it with status `200` instead of running
    /// handlers. Default: none; a [`Verifier`](webhook_core::Verifier) answers its scheme's
    /// handshake.
    fn handshake(
        &self,
        authenticated: &Authenticated,
        body: &[u8],
    ) -> Option<webhook_core::HandshakeReply> {
        let _ = (authenticated, body);
        None
    }
}

impl<A: Authenticate + ?Sized> Authenticate for Arc<A> {
    fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Authenticated, AuthRejection> {
        (**self).authenticate(headers, body, now)
    }

    fn replay_window(&self) -> Option<Duration> {
        (**self).replay_window()
    }

    fn handshake(
        &self,
        authenticated: &Authenticated,
        body: &[u8],
    ) -> Option<webhook_core::HandshakeReply> {
        (**self).handshake(authenticated, body)
    }
}

impl<A: Authenticate + ?Sized> Authenticate for Box<A> {
    fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Authenticated, AuthRejection> {
        (**self).authenticate(headers, body, now)
    }

    fn replay_window(&self) -> Option<Duration> {
        (**self).replay_window()
    }

    fn handshake(
        &self,
        authenticated: &Authenticated,
        body: &[u8],
    ) -> Option<webhook_core::HandshakeReply> {
        (**self).handshake(authenticated, body)
    }
}

/// A successful authentication: the identity, and what replay protection keys on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub(crate) identity: Identity,
    pub(crate) message_id: Option<String>,
    pub(crate) timestamp: Option<SystemTime>,
    /// For signature schemes that sign a timestamp but carry no message id (Stripe, Slack,
    /// Zoom, Discord): a digest of the signed timestamp and body, so an exact replay within
    /// the tolerance is still recognised.
    pub(crate) replay_digest: Option<[u8; 32]>,
}

impl Authenticated {
    /// An authentication result for `identity` with no message id and no timestamp.
    pub fn new(identity: Identity) -> Self {
        Self {
            identity,
            message_id: None,
            timestamp: None,
            replay_digest: None,
        }
    }

    /// Sets the authenticated message id (for example `webhook-id`), the replay-protection key.
    #[must_use]
    pub fn with_message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    /// Sets the authenticated (signed) timestamp of the message.
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: SystemTime) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Who authenticated.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The authenticated message id, if the scheme carries one: the one set with
    /// [`with_message_id`](Self::with_message_id), else the id of an
    /// [`Identity::Signature`].
    pub fn message_id(&self) -> Option<&str> {
        match (&self.message_id, &self.identity) {
            (Some(id), _) => Some(id),
            (None, Identity::Signature { id, .. }) => id.as_deref(),
            _ => None,
        }
    }

    /// The authenticated timestamp, if the scheme carries one.
    pub fn timestamp(&self) -> Option<SystemTime> {
        self.timestamp
    }
}

/// The class of an authentication failure; every kind is answered with `401 Unauthorized`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthRejectionKind {
    /// The credentials or signature headers are absent.
    Missing,
    /// The credentials or signature headers cannot be parsed.
    Malformed,
    /// The credentials did not match, or no signature matched any key.
    Invalid,
    /// Every key of the receiver's key ring has expired: a configuration problem of the
    /// receiver (rotate in a new key). The response shows the same generic reason as
    /// [`Invalid`](Self::Invalid), so outsiders learn nothing about the key ring.
    NoLiveKey,
    /// The signed timestamp is outside the accepted tolerance window.
    Expired,
    /// Another authenticator-specific failure (the response body shows only a generic reason).
    Other,
}

impl AuthRejectionKind {
    /// What an [`AuthRejection`] of this kind displays.
    fn message(self) -> &'static str {
        match self {
            Self::Missing => "credentials or signature missing",
            Self::Malformed => "credentials or signature malformed",
            Self::Invalid => "credentials or signature invalid",
            Self::NoLiveKey => "no key of the key ring is live",
            Self::Expired => "timestamp outside the tolerance window",
            Self::Other => "authentication failed",
        }
    }
}

/// Why authentication failed: its [kind](AuthRejectionKind) (answered with `401 Unauthorized`,
/// with the kind's generic [`reason`](Self::reason) in the body) and, as its
/// [`source`](std::error::Error::source), the detailed cause: the `webhook-core` error of the
/// core's authenticators ([`core`](Self::core): missing header `webhook-signature`, the message
/// is 512 s old, ...) or an authenticator's own error.
///
/// Neither the kind nor the cause carries a secret, signature or header value; the cause is
/// never shown to the client, but it reaches the operator: the rejection travels in the
/// extensions of the response (see [`Rejection::of`](crate::Rejection::of)).
///
/// ```
/// use webhook_receiver::{AuthRejection, AuthRejectionKind};
///
/// let e = AuthRejection::from(webhook_core::AuthError::InvalidCredentials);
/// assert_eq!(e.kind(), AuthRejectionKind::Invalid);
/// assert_eq!(e.reason(), "credentials or signature invalid");
/// assert_eq!(std::error::Error::source(&e).map(|s| s.to_string()).as_deref(), Some("invalid credentials"));
/// ```
#[derive(Debug, Clone)]
pub struct AuthRejection {
    kind: AuthRejectionKind,
    cause: Option<Cause>,
}

/// The detailed cause of an [`AuthRejection`].
#[derive(Debug, Clone)]
enum Cause {
    Core(webhook_core::AuthError),
    Other(Arc<dyn std::error::Error + Send + Sync>),
}

impl AuthRejection {
    /// A rejection of `kind` without a detailed cause.
    pub fn new(kind: AuthRejectionKind) -> Self {
        Self { kind, cause: None }
    }

    /// A rejection of `kind` caused by the core error `cause`.
    pub fn from_core(kind: AuthRejectionKind, cause: webhook_core::AuthError) -> Self {
        Self {
            kind,
            cause: Some(Cause::Core(cause)),
        }
    }

    /// An authenticator-specific failure ([`AuthRejectionKind::Other`]) caused by `cause`
    /// (which must not contain secrets).
    pub fn other(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: AuthRejectionKind::Other,
            cause: Some(Cause::Other(Arc::from(cause.into()))),
        }
    }

    /// The class of the failure.
    pub fn kind(&self) -> AuthRejectionKind {
        self.kind
    }

    /// The core error behind the rejection, when a `webhook-core` authenticator refused
    /// (signature failures are [`webhook_core::AuthError::Signature`]).
    pub fn core(&self) -> Option<&webhook_core::AuthError> {
        match &self.cause {
            Some(Cause::Core(e)) => Some(e),
            _ => None,
        }
    }

    /// The short reason shown in the `401` response body.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            AuthRejectionKind::NoLiveKey => AuthRejectionKind::Invalid.message(),
            kind => kind.message(),
        }
    }
}

impl From<AuthRejectionKind> for AuthRejection {
    fn from(kind: AuthRejectionKind) -> Self {
        Self::new(kind)
    }
}

impl std::fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind.message())
    }
}

impl std::error::Error for AuthRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            None => None,
            Some(Cause::Core(e)) => Some(e),
            Some(Cause::Other(e)) => Some(&**e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticated_carries_id_and_timestamp() {
        let a = Authenticated::new(Identity::Bearer)
            .with_message_id("msg_1")
            .with_timestamp(SystemTime::UNIX_EPOCH);
        assert_eq!(a.message_id(), Some("msg_1"));
        assert_eq!(a.timestamp(), Some(SystemTime::UNIX_EPOCH));
        assert_eq!(a.identity(), &Identity::Bearer);
    }

    #[test]
    fn other_reason_is_generic() {
        let e = AuthRejection::other("secret-ish detail");
        assert_eq!(e.reason(), "authentication failed");
        assert_eq!(
            AuthRejection::new(AuthRejectionKind::NoLiveKey).reason(),
            AuthRejection::new(AuthRejectionKind::Invalid).reason()
        );
    }

    #[test]
    fn the_detailed_cause_is_the_source() {
        use std::error::Error as _;
        let e = AuthRejection::other("custom detail");
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("custom detail")
        );
        assert!(e.core().is_none());
        assert!(
            AuthRejection::new(AuthRejectionKind::Missing)
                .source()
                .is_none()
        );
    }
}
