//! The authentication seam: who sent this request, and may we trust its bytes?
//!
//! The receiver calls [`Authenticate::authenticate`] with the request headers, the body bytes
//! exactly as received (see [`SignedBody`](crate::SignedBody)) and the current time, before
//! anything parses the body. An implementation answers with an [`Authenticated`] (the
//! [`Identity`] handed to handlers, and optionally the message id and timestamp used for replay
//! protection) or an [`AuthError`] (answered with `401`).
//!
//! [`NoAuth`] is the explicit "no authentication" choice. `webhook-core`'s authenticators plug in
//! through this trait: a [`Verifier`](webhook_core::Verifier) for any
//! signature scheme and key ring, and [`ReceiverAuth`](webhook_core::ReceiverAuth) for Basic,
//! Bearer, a static header token or a signature.
//!
//! The [`Identity`] handed to handlers is `webhook-core`'s: one type across the SDK.

mod schemes;

use std::time::{Duration, SystemTime};

use http::HeaderMap;

pub use webhook_core::Identity;

/// Authenticates one inbound request.
///
/// Implementations must compare secrets in constant time, must not read the clock (use `now`)
/// and must never put a secret, a signature or a header value into an [`AuthError`].
///
/// ```
/// use std::time::SystemTime;
/// use http::HeaderMap;
/// use webhook_receiver::{AuthError, Authenticate, Authenticated, Identity};
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
///     ) -> Result<Authenticated, AuthError> {
///         match headers.get("x-api-key") {
///             None => Err(AuthError::Missing),
///             Some(v) if v.as_bytes() == b"demo" => Ok(Authenticated::new(Identity::HeaderToken {
///                 header: http::HeaderName::from_static("x-api-key"),
///             })),
///             Some(_) => Err(AuthError::Invalid),
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
    ) -> Result<Authenticated, AuthError>;

    /// How long after its first acceptance a message could be accepted again (its signed
    /// timestamp is still within the tolerance), if the authenticator knows. The receiver's
    /// replay cache keeps message ids at least this long. `None` (the default): no timestamp
    /// window, the receiver's default replay window applies.
    fn replay_window(&self) -> Option<Duration> {
        None
    }
}

impl<A: Authenticate + ?Sized> Authenticate for std::sync::Arc<A> {
    fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Authenticated, AuthError> {
        (**self).authenticate(headers, body, now)
    }

    fn replay_window(&self) -> Option<Duration> {
        (**self).replay_window()
    }
}

impl<A: Authenticate + ?Sized> Authenticate for Box<A> {
    fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Authenticated, AuthError> {
        (**self).authenticate(headers, body, now)
    }

    fn replay_window(&self) -> Option<Duration> {
        (**self).replay_window()
    }
}

/// Explicitly accept every request without authentication.
///
/// Choose it deliberately (for a sender that cannot authenticate, behind a trusted proxy, or in
/// tests): the receiver builder has no implicit default. Requests get [`Identity::Anonymous`]
/// and no message id, so replay protection has nothing to key on.
///
/// ```
/// use std::time::SystemTime;
/// use webhook_receiver::{Authenticate, Identity, NoAuth};
///
/// let auth = NoAuth.authenticate(&http::HeaderMap::new(), b"", SystemTime::now())?;
/// assert_eq!(auth.identity(), &Identity::Anonymous);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoAuth;

impl Authenticate for NoAuth {
    fn authenticate(
        &self,
        _headers: &HeaderMap,
        _body: &[u8],
        _now: SystemTime,
    ) -> Result<Authenticated, AuthError> {
        Ok(Authenticated::new(Identity::Anonymous))
    }
}

/// A successful authentication: the identity, and what replay protection keys on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub(crate) identity: Identity,
    pub(crate) message_id: Option<String>,
    pub(crate) timestamp: Option<SystemTime>,
}

impl Authenticated {
    /// An authentication result for `identity` with no message id and no timestamp.
    pub fn new(identity: Identity) -> Self {
        Authenticated {
            identity,
            message_id: None,
            timestamp: None,
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

/// Why authentication failed; every variant is answered with `401 Unauthorized`.
///
/// Variants carry no secret, signature or header value, so they are safe to log and their
/// [`reason`](AuthError::reason) is what the response body shows.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The credentials or signature headers are absent.
    #[error("credentials or signature missing")]
    Missing,
    /// The credentials or signature headers cannot be parsed.
    #[error("credentials or signature malformed")]
    Malformed,
    /// The credentials did not match, or no signature matched any key.
    #[error("credentials or signature invalid")]
    Invalid,
    /// Every key of the receiver's key ring has expired: a configuration problem of the
    /// receiver (rotate in a new key). The response shows the same generic reason as
    /// [`Invalid`](Self::Invalid), so outsiders learn nothing about the key ring.
    #[error("no key of the key ring is live")]
    NoLiveKey,
    /// The signed timestamp is outside the accepted tolerance window.
    #[error("timestamp outside the tolerance window")]
    Expired,
    /// Another authenticator-specific failure (its message must not contain secrets; the
    /// response body shows only a generic reason).
    #[error("authentication failed: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AuthError {
    /// The short reason shown in the `401` response body.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "credentials or signature missing",
            AuthError::Malformed => "credentials or signature malformed",
            AuthError::Invalid | AuthError::NoLiveKey => "credentials or signature invalid",
            AuthError::Expired => "timestamp outside the tolerance window",
            AuthError::Other(_) => "authentication failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_auth_is_anonymous_without_id() {
        let a = NoAuth
            .authenticate(&HeaderMap::new(), b"x", SystemTime::UNIX_EPOCH)
            .expect("no auth accepts");
        assert_eq!(a.identity(), &Identity::Anonymous);
        assert_eq!(a.message_id(), None);
        assert_eq!(a.timestamp(), None);
    }

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
        let e = AuthError::Other("secret-ish detail".into());
        assert_eq!(e.reason(), "authentication failed");
        assert_eq!(AuthError::NoLiveKey.reason(), AuthError::Invalid.reason());
    }
}
