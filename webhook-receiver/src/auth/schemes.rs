//! `webhook-core`'s receiver-side authenticators behind the [`Authenticate`] seam.
//!
//! * [`Verifier`]: any signature scheme (the presets of
//!   [`Scheme`](webhook_core::Scheme) or a custom one), a key ring with rotation, and a
//!   timestamp tolerance. A match becomes [`Identity::Signature`] (index of the matched key,
//!   message id, signed timestamp); the message id and timestamp also key replay protection.
//! * [`ReceiverAuth`]: Basic, Bearer, a static header token, a signature, or none.
//!
//! Refusals map to the receiver's `401` kinds ([`AuthRejectionKind`]); the detailed core error
//! (header names, ages, never a secret or signature) stays the [`AuthRejection`]'s source.
//!
//! Replay protection keys on the message id when the scheme carries one (Standard Webhooks,
//! Svix). Schemes that sign a timestamp but carry no id (Stripe, Slack, Zoom, Discord) are
//! keyed on a SHA-256 digest of the signed timestamp and body instead, so an exact replay
//! within the tolerance is refused too (`409`); a sender's retry, signed afresh with a new
//! timestamp, is a new message. Schemes with neither (GitHub, Shopify, Soveren) have no replay
//! protection beyond what the sender's body carries.
//!
//! The replay window a [`Verifier`] needs is derived from its tolerance: a message signed at
//! `ts` is accepted while `ts - future <= now < ts + past + 1 s` (whole seconds, inclusive
//! bounds), so ids are kept for `past + 1 s` after the later of the signed timestamp and the
//! first acceptance.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use webhook_core::{
    AuthError as CoreAuthError, HandshakeReply, ReceiverAuth, TimestampCheck, Verified, Verifier,
    VerifyError,
};

use super::{AuthRejection, AuthRejectionKind, Authenticate, Authenticated, Identity};

impl From<VerifyError> for AuthRejection {
    fn from(e: VerifyError) -> Self {
        let kind = match &e {
            VerifyError::MissingHeader { .. } => AuthRejectionKind::Missing,
            VerifyError::MalformedHeader { .. } | VerifyError::UnsupportedVersion { .. } => {
                AuthRejectionKind::Malformed
            }
            VerifyError::TooOld { .. } | VerifyError::InFuture { .. } => AuthRejectionKind::Expired,
            VerifyError::NoLiveKey => {
                tracing::warn!("every key of the webhook key ring has expired");
                AuthRejectionKind::NoLiveKey
            }
            VerifyError::NoMatchingSignature => AuthRejectionKind::Invalid,
            _ => AuthRejectionKind::Other,
        };
        Self::from_core(kind, CoreAuthError::Signature(e))
    }
}

impl From<CoreAuthError> for AuthRejection {
    fn from(e: CoreAuthError) -> Self {
        let e = match e {
            CoreAuthError::Signature(v) => return v.into(),
            other => other,
        };
        let kind = match &e {
            CoreAuthError::MissingHeader { .. } => AuthRejectionKind::Missing,
            CoreAuthError::WrongScheme { .. } | CoreAuthError::Malformed { .. } => {
                AuthRejectionKind::Malformed
            }
            CoreAuthError::InvalidCredentials => AuthRejectionKind::Invalid,
            _ => AuthRejectionKind::Other,
        };
        Self::from_core(kind, e)
    }
}

fn authenticated(ok: Verified<'_>, body: &[u8]) -> Authenticated {
    let id = ok.id();
    let replay_digest = match (id, ok.timestamp()) {
        (None, Some(ts)) => {
            use sha2::Digest as _;
            let mut h = sha2::Sha256::new();
            h.update(ts.to_be_bytes());
            h.update(body);
            Some(h.finalize().into())
        }
        _ => None,
    };
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
        replay_digest,
    }
}

/// The verifier's handshake answer for a request it accepted (keyed with the matched key).
fn verifier_handshake(
    v: &Verifier,
    authenticated: &Authenticated,
    body: &[u8],
) -> Option<HandshakeReply> {
    match authenticated.identity() {
        Identity::Signature { key_index, .. } => v.answer_handshake(*key_index, body),
        _ => None,
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
    ) -> Result<Authenticated, AuthRejection> {
        self.verify(headers, body, now)
            .map(|ok| authenticated(ok, body))
            .map_err(AuthRejection::from)
    }

    fn replay_window(&self) -> Option<Duration> {
        verifier_window(self)
    }

    fn handshake(&self, authenticated: &Authenticated, body: &[u8]) -> Option<HandshakeReply> {
        verifier_handshake(self, authenticated, body)
    }
}

/// Basic, Bearer, static header token, signature, or none, with `webhook-core`.
///
/// [`ReceiverAuth::None`] is the explicit choice to accept every request without
/// authentication (for a sender that cannot authenticate, behind a trusted proxy, or in tests):
/// the receiver builder has no implicit default. Requests get [`Identity::Anonymous`] and no
/// message id, so replay protection has nothing to key on.
///
/// ```
/// use std::time::SystemTime;
/// use webhook_core::{HeaderToken, Identity, ReceiverAuth};
/// use webhook_receiver::{AuthRejectionKind, Authenticate};
///
/// let auth = ReceiverAuth::HeaderToken(HeaderToken::new("x-connectsecure-token", "s3cret")?);
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-connectsecure-token", "s3cret".parse()?);
/// let ok = auth.authenticate(&headers, b"", SystemTime::now())?;
/// assert!(matches!(ok.identity(), Identity::HeaderToken { .. }));
/// headers.insert("x-connectsecure-token", "guess".parse()?);
/// let refused = auth.authenticate(&headers, b"", SystemTime::now()).unwrap_err();
/// assert_eq!(refused.kind(), AuthRejectionKind::Invalid);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl Authenticate for ReceiverAuth {
    fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Authenticated, AuthRejection> {
        match self {
            Self::None => Ok(Authenticated::new(Identity::Anonymous)),
            Self::Signature(v) => v.authenticate(headers, body, now),
            other => other
                .check(headers, body, now)
                .map(Authenticated::new)
                .map_err(AuthRejection::from),
        }
    }

    fn replay_window(&self) -> Option<Duration> {
        match self {
            Self::Signature(v) => verifier_window(v),
            _ => None,
        }
    }

    fn handshake(&self, authenticated: &Authenticated, body: &[u8]) -> Option<HandshakeReply> {
        match self {
            Self::Signature(v) => verifier_handshake(v, authenticated, body),
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
            Err(e) if e.kind() == AuthRejectionKind::Invalid
        ));
        assert!(matches!(
            v.authenticate(&h, b"{}", at(TS + 301)),
            Err(e) if e.kind() == AuthRejectionKind::Expired
        ));
        assert!(matches!(
            v.authenticate(&HeaderMap::new(), b"{}", at(TS)),
            Err(e) if e.kind() == AuthRejectionKind::Missing
        ));
        let mut bad = h.clone();
        bad.insert("webhook-signature", "v2,abc".parse().unwrap());
        assert!(matches!(
            v.authenticate(&bad, b"{}", at(TS)),
            Err(e) if e.kind() == AuthRejectionKind::Malformed
        ));
        let expired = KeyRing::new().with_key_until(Secret::from_bytes("k").unwrap(), at(TS));
        let v = Verifier::new(Scheme::standard_webhooks(), &expired).unwrap();
        assert!(matches!(
            v.authenticate(&h, b"{}", at(TS)),
            Err(e) if e.kind() == AuthRejectionKind::NoLiveKey
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
    fn no_auth_is_anonymous_without_id() {
        let a = ReceiverAuth::None
            .authenticate(&HeaderMap::new(), b"x", SystemTime::UNIX_EPOCH)
            .expect("no auth accepts");
        assert_eq!(a.identity(), &Identity::Anonymous);
        assert_eq!(a.message_id(), None);
        assert_eq!(a.timestamp(), None);
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
            Err(e) if e.kind() == AuthRejectionKind::Malformed
        ));
        let bearer = ReceiverAuth::Bearer(BearerToken::new("tok").unwrap());
        assert!(matches!(
            bearer.authenticate(&h, b"", now),
            Err(e) if e.kind() == AuthRejectionKind::Invalid
        ));
        assert!(matches!(
            bearer.authenticate(&HeaderMap::new(), b"", now),
            Err(e) if e.kind() == AuthRejectionKind::Missing
        ));
        let sig =
            ReceiverAuth::Signature(Verifier::new(Scheme::standard_webhooks(), &ring()).unwrap());
        let ok = sig.authenticate(&signed(b"[]"), b"[]", now).unwrap();
        assert_eq!(ok.message_id(), Some("msg_1"));
    }
}
