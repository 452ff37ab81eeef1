//! How a receiver authenticates requests ([`ReceiverAuth`]) and who it found ([`Identity`]).

use std::time::SystemTime;

use http::{HeaderMap, HeaderName};

use super::{AuthError, BasicCredentials, BearerToken, HeaderToken};
use crate::{KeyRing, KeyRingError, Scheme, Verifier};

/// How a receiver authenticates requests. (Client certificates are checked by the receiver's
/// TLS layer, not here.)
#[derive(Clone, Debug)]
#[non_exhaustive]
// Built once per receiver; boxing the verifier would only add an indirection per request.
#[allow(clippy::large_enum_variant)]
pub enum ReceiverAuth {
    /// Accept every request.
    None,
    /// HTTP Basic.
    Basic(BasicCredentials),
    /// Bearer token.
    Bearer(BearerToken),
    /// Static secret header.
    HeaderToken(HeaderToken),
    /// Signature verification.
    Signature(Verifier),
}

/// Who a request was authenticated as, for handler context.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// No authentication configured.
    Anonymous,
    /// Basic auth: the user name.
    Basic {
        /// The user name.
        user: String,
    },
    /// A valid bearer token.
    Bearer,
    /// A valid static header token.
    HeaderToken {
        /// The header that carried it.
        header: HeaderName,
    },
    /// A valid signature.
    Signature {
        /// Index in the key ring of the key that matched.
        key_index: usize,
        /// The message id, for schemes that carry one.
        id: Option<String>,
        /// The signed timestamp, for schemes that carry one.
        timestamp: Option<u64>,
    },
}

impl ReceiverAuth {
    /// Sysdig-style `SIGNATURE` auth with the default scheme, Standard Webhooks.
    ///
    /// # Errors
    /// [`KeyRingError`] (cannot happen for an HMAC secret with the default scheme).
    pub fn signature(secret: crate::Secret) -> Result<Self, KeyRingError> {
        Verifier::new(Scheme::standard_webhooks(), &KeyRing::single(secret))
            .map(ReceiverAuth::Signature)
    }

    /// Checks a request's headers (and body, for signatures) at `now`.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use webhook_core::{AuthError, BearerToken, ReceiverAuth};
    ///
    /// let auth = ReceiverAuth::Bearer(BearerToken::new("t0ken")?);
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("authorization", "Bearer wrong".parse()?);
    /// assert_eq!(auth.check(&headers, b"", SystemTime::now()), Err(AuthError::InvalidCredentials));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`AuthError`] with the reason.
    pub fn check(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Identity, AuthError> {
        match self {
            Self::None => Ok(Identity::Anonymous),
            Self::Basic(c) => c.check(headers),
            Self::Bearer(t) => t.check(headers),
            Self::HeaderToken(t) => t.check(headers),
            Self::Signature(v) => {
                let ok = v.verify(headers, body, now)?;
                Ok(Identity::Signature {
                    key_index: ok.key_index(),
                    id: ok.id().map(str::to_owned),
                    timestamp: ok.timestamp(),
                })
            }
        }
    }
}
