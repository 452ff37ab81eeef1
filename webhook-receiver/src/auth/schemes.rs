//! `webhook-core`'s receiver-side authenticators behind the [`Authenticate`] seam.
//!
//! * [`Verifier`]: any signature scheme (the presets of
//!   [`Scheme`](webhook_core::Scheme) or a custom one), a key ring with rotation, and a
//!   timestamp tolerance. A match becomes [`Identity::Signature`] (index of the matched key,
//!   message id, signed timestamp); the message id and timestamp also key replay protection.
//! * [`ReceiverAuth`]: Basic, Bearer, a static header token, a signature, or none.
//!
//! Refusals map to the receiver's `401` kinds ([`AuthError`]); the detailed core error (header
//! names, ages, never a secret or signature) is logged at `debug` level only.
//!
//! The replay window a [`Verifier`] needs is derived from its tolerance: a message signed at
//! `ts` is accepted while `ts - future <= now < ts + past + 1 s` (whole seconds, inclusive
//! bounds), so ids are kept for `past + 1 s` after the later of the signed timestamp and the
//! first acceptance.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use webhook_core::{ReceiverAuth, TimestampCheck, Verified, Verifier, VerifyError};

use super::{AuthError, Authenticate, Authenticated, Identity};

impl From<VerifyError> for AuthError {
    fn from(e: VerifyError) -> Self {
        tracing::debug!(error = %e, "signature verification failed");
        match e {
            VerifyError::MissingHeader { .. } => AuthError::Missing,
            VerifyError::MalformedHeader { .. } | VerifyError::UnsupportedVersion { .. } => {
                AuthError::Malformed
            }
            VerifyError::TooOld { .. } | VerifyError::InFuture { .. } => AuthError::Expired,
            VerifyError::NoLiveKey => {
                tracing::warn!("every key of the webhook key ring has expired");
                AuthError::NoLiveKey
            }
            VerifyError::NoMatchingSignature => AuthError::Invalid,
            other => AuthError::Other(Box::new(other)),
        }
    }
}

impl From<webhook_core::AuthError> for AuthError {
    fn from(e: webhook_core::AuthError) -> Self {
        use webhook_core::AuthError as Core;
        match e {
            Core::Signature(v) => v.into(),
            Core::MissingHeader { .. } => {
                tracing::debug!(error = %e, "authentication failed");
                AuthError::Missing
            }
            Core::WrongScheme { .. } | Core::Malformed { .. } => {
                tracing::debug!(error = %e, "authentication failed");
                AuthError::Malformed
            }
            Core::InvalidCredentials => AuthError::Invalid,
            other => AuthError::Other(Box::new(other)),
        }
    }
}

fn authenticated(ok: Verified<'_>) -> Authenticated {
    let id = ok.id();
    let timestamp = ok
        .timestamp()
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)));
    Authenticated {
        identity: Identity::Signature {
            key_index: ok.key_index(),
            id: id.map(str::to_owned),
            timestamp: ok.timestamp(),
        },
        // `message_id()` reads the id of the signature identity: one allocation, not two.
        message_id: None,
        timestamp,
    }
}

fn verifier_window(v: &Verifier) -> Option<Duration> {
    match v.timestamp_check() {
        TimestampCheck::Enforce(tol) => Some(tol.past.saturating_add(Duration::from_secs(1))),
        _ => None,
    }
}

/// Signature verification with `webhook-core`: any scheme, a key ring, a tolerance.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use webhook_core::{Identity, KeyRing, Scheme, Secret, Signer, Verifier};
/// use webhook_receiver::Authenticate;
///
/// let ring = KeyRing::single(Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?);
/// let mut headers = http::HeaderMap::new();
/// Signer::new(Scheme::standard_webhooks(), &ring)?.sign("msg_1", 1_700_000_000, b"{}", &mut headers)?;
///
/// let verifier = Verifier::new(Scheme::standard_webhooks(), &ring)?;
/// let ok = verifier.authenticate(&headers, b"{}", UNIX_EPOCH + Duration::from_secs(1_700_000_000))?;
/// assert_eq!(ok.message_id(), Some("msg_1"));
/// assert!(matches!(ok.identity(), Identity::Signature { key_index: 0, .. }));
/// // Ids are remembered for as long as the signature would be accepted.
/// assert_eq!(verifier.replay_window(), Some(Duration::from_secs(301)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl Authenticate for Verifier {
    fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Authenticated, AuthError> {
        self.verify(headers, body, now)
            .map(authenticated)
            .map_err(AuthError::from)
    }

    fn replay_window(&self) -> Option<Duration> {
        verifier_window(self)
    }
}

/// Basic, Bearer, static header token, signature, or none, with `webhook-core`.
///
/// ```
/// use std::time::SystemTime;
/// use webhook_core::{HeaderToken, Identity, ReceiverAuth};
/// use webhook_receiver::{AuthError, Authenticate};
///
/// let auth = ReceiverAuth::HeaderToken(HeaderToken::new("x-connectsecure-token", "s3cret")?);
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-connectsecure-token", "s3cret".parse()?);
/// let ok = auth.authenticate(&headers, b"", SystemTime::now())?;
/// assert!(matches!(ok.identity(), Identity::HeaderToken { .. }));
/// headers.insert("x-connectsecure-token", "guess".parse()?);
/// assert!(matches!(auth.authenticate(&headers, b"", SystemTime::now()), Err(AuthError::Invalid)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl Authenticate for ReceiverAuth {
    fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Authenticated, AuthError> {
        match self {
            ReceiverAuth::Signature(v) => v.authenticate(headers, body, now),
            other => other
                .check(headers, body, now)
                .map(Authenticated::new)
                .map_err(AuthError::from),
        }
    }

    fn replay_window(&self) -> Option<Duration> {
        match self {
            ReceiverAuth::Signature(v) => verifier_window(v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webhook_core::{BasicCredentials, BearerToken, KeyRing, Scheme, Secret, Signer, Tolerance};

    const TS: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn ring() -> KeyRing {
        KeyRing::single(Secret::from_bytes("receiver unit test key").unwrap())
    }

    fn signed(body: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        Signer::new(Scheme::standard_webhooks(), &ring())
            .unwrap()
            .sign("msg_1", TS, body, &mut h)
            .unwrap();
        h
    }

    #[test]
    fn verified_maps_to_signature_identity_id_and_timestamp() {
        let v = Verifier::new(Scheme::standard_webhooks(), &ring()).unwrap();
        let ok = v.authenticate(&signed(b"{}"), b"{}", at(TS)).unwrap();
        assert_eq!(
            ok.identity(),
            &Identity::Signature {
                key_index: 0,
                id: Some("msg_1".into()),
                timestamp: Some(TS)
            }
        );
        assert_eq!(ok.message_id(), Some("msg_1"));
        assert_eq!(ok.timestamp(), Some(at(TS)));
    }

    #[test]
    fn verify_errors_map_to_401_kinds() {
        let v = Verifier::new(Scheme::standard_webhooks(), &ring()).unwrap();
        let h = signed(b"{}");
        assert!(matches!(
            v.authenticate(&h, b"{ }", at(TS)),
            Err(AuthError::Invalid)
        ));
        assert!(matches!(
            v.authenticate(&h, b"{}", at(TS + 301)),
            Err(AuthError::Expired)
        ));
        assert!(matches!(
            v.authenticate(&HeaderMap::new(), b"{}", at(TS)),
            Err(AuthError::Missing)
        ));
        let mut bad = h.clone();
        bad.insert("webhook-signature", "v2,abc".parse().unwrap());
        assert!(matches!(
            v.authenticate(&bad, b"{}", at(TS)),
            Err(AuthError::Malformed)
        ));
        let expired = KeyRing::new().with_key_until(Secret::from_bytes("k").unwrap(), at(TS));
        let v = Verifier::new(Scheme::standard_webhooks(), &expired).unwrap();
        assert!(matches!(
            v.authenticate(&h, b"{}", at(TS)),
            Err(AuthError::NoLiveKey)
        ));
    }

    #[test]
    fn replay_window_follows_the_tolerance() {
        let v = Verifier::new(Scheme::standard_webhooks(), &ring()).unwrap();
        assert_eq!(v.replay_window(), Some(Duration::from_secs(301)));
        let v = v.with_tolerance(Tolerance {
            past: Duration::from_secs(600),
            future: Duration::from_secs(5),
        });
        assert_eq!(v.replay_window(), Some(Duration::from_secs(601)));
        let auth = ReceiverAuth::Signature(v.clone().ignore_timestamp());
        assert_eq!(auth.replay_window(), None);
        assert_eq!(
            ReceiverAuth::Signature(v).replay_window(),
            Some(Duration::from_secs(601))
        );
        assert_eq!(ReceiverAuth::None.replay_window(), None);
    }

    #[test]
    fn receiver_auth_methods() {
        let now = at(TS);
        let basic = ReceiverAuth::Basic(BasicCredentials::new("sysdig", "pw").unwrap());
        let mut h = HeaderMap::new();
        h.insert("authorization", "Basic c3lzZGlnOnB3".parse().unwrap());
        let ok = basic.authenticate(&h, b"", now).unwrap();
        assert_eq!(
            ok.identity(),
            &Identity::Basic {
                user: "sysdig".into()
            }
        );
        assert_eq!(ok.message_id(), None);
        h.insert("authorization", "Bearer x".parse().unwrap());
        assert!(matches!(
            basic.authenticate(&h, b"", now),
            Err(AuthError::Malformed)
        ));
        let bearer = ReceiverAuth::Bearer(BearerToken::new("tok").unwrap());
        assert!(matches!(
            bearer.authenticate(&h, b"", now),
            Err(AuthError::Invalid)
        ));
        assert!(matches!(
            bearer.authenticate(&HeaderMap::new(), b"", now),
            Err(AuthError::Missing)
        ));
        let sig =
            ReceiverAuth::Signature(Verifier::new(Scheme::standard_webhooks(), &ring()).unwrap());
        let ok = sig.authenticate(&signed(b"[]"), b"[]", now).unwrap();
        assert_eq!(ok.message_id(), Some("msg_1"));
    }
}
