//! How a sender authenticates its requests: [`SenderAuth`].

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};

use super::{AuthError, BasicCredentials, BearerToken, ClientCertificate, HeaderToken};
use crate::{KeyRing, KeyRingError, Scheme, Signer};

/// How a sender authenticates its requests.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SenderAuth {
    /// No authentication.
    None,
    /// HTTP Basic.
    Basic(BasicCredentials),
    /// Bearer token.
    Bearer(BearerToken),
    /// Static secret header.
    HeaderToken(HeaderToken),
    /// Signature headers of a scheme.
    Signature(Signer),
    /// Mutual TLS: no header; the sender's TLS layer presents the certificate.
    ClientCertificate(ClientCertificate),
}

impl SenderAuth {
    /// Sysdig-style `SIGNATURE` auth with the default scheme, Standard Webhooks, and one key.
    ///
    /// ```
    /// use webhook_core::{Secret, SenderAuth};
    /// let auth = SenderAuth::signature(Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?)?;
    /// let mut headers = http::HeaderMap::new();
    /// auth.apply("msg_1", 1_700_000_000, b"[]", &mut headers)?;
    /// assert!(headers.contains_key("webhook-signature"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`KeyRingError`] (cannot happen for an HMAC secret with the default scheme; kept for
    /// symmetry with [`signature_with`](Self::signature_with)).
    pub fn signature(secret: crate::Secret) -> Result<Self, KeyRingError> {
        Self::signature_with(Scheme::standard_webhooks(), &KeyRing::single(secret))
    }

    /// `SIGNATURE` auth with any scheme and key ring.
    ///
    /// # Errors
    /// [`KeyRingError`] if the keys do not fit the scheme.
    pub fn signature_with(scheme: Scheme, ring: &KeyRing) -> Result<Self, KeyRingError> {
        Signer::new(scheme, ring).map(SenderAuth::Signature)
    }

    /// Writes the authentication headers of one attempt (`id`, `timestamp_secs` and `body` are
    /// used by [`SenderAuth::Signature`] only).
    ///
    /// # Errors
    /// [`AuthError::Sign`] if signing fails.
    pub fn apply(
        &self,
        id: &str,
        timestamp_secs: u64,
        body: &[u8],
        headers: &mut HeaderMap,
    ) -> Result<(), AuthError> {
        match self {
            Self::None | Self::ClientCertificate(_) => {}
            Self::Basic(c) => {
                headers.insert(AUTHORIZATION, c.header_value()?);
            }
            Self::Bearer(t) => {
                headers.insert(AUTHORIZATION, t.header_value()?);
            }
            Self::HeaderToken(t) => {
                headers.insert(t.name().clone(), t.header_value()?);
            }
            Self::Signature(s) => s.sign(id, timestamp_secs, body, headers)?,
        }
        Ok(())
    }

    /// The client certificate, for the sender's TLS configuration.
    pub fn client_certificate(&self) -> Option<&ClientCertificate> {
        match self {
            Self::ClientCertificate(c) => Some(c),
            _ => None,
        }
    }

    /// The headers this method writes (to reserve them against custom headers).
    pub fn header_names(&self) -> Vec<HeaderName> {
        match self {
            Self::None | Self::ClientCertificate(_) => Vec::new(),
            Self::Basic(_) | Self::Bearer(_) => vec![AUTHORIZATION],
            Self::HeaderToken(t) => vec![t.name().clone()],
            Self::Signature(s) => s.scheme().headers().cloned().collect(),
        }
    }
}
