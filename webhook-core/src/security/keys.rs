//! Keys loaded for one scheme: HMAC states keyed once at load time (cloned per message, so the
//! key is never re-hashed on the hot path) and Ed25519 keys.

use std::fmt;
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::{Algorithm, Scheme};
use crate::{Key, KeyRing, KeyRingError};

/// What a key is loaded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Sign,
    Verify,
}

impl Purpose {
    fn name(self) -> &'static str {
        match self {
            Self::Sign => "sign",
            Self::Verify => "verify",
        }
    }
}

/// A key ready for the scheme's algorithm.
///
/// The keyed HMAC states are derived from the secret (they allow computing MACs, though not
/// recovering the key); `hmac` 0.12 offers no zeroization of them, so they live as long as the
/// `Signer`/`Verifier` that holds them. The secrets themselves stay in the zeroizing
/// [`Secret`](crate::Secret).
#[derive(Clone)]
pub(crate) enum KeyState {
    HmacSha256(Hmac<Sha256>),
    HmacSha1(Hmac<Sha1>),
    #[cfg(feature = "ed25519")]
    Ed25519Signing(ed25519_dalek::SigningKey),
    #[cfg(feature = "ed25519")]
    Ed25519Verifying(ed25519_dalek::VerifyingKey),
}

/// A loaded key with its ring index and expiry.
#[derive(Clone)]
pub(crate) struct LoadedKey {
    pub(crate) index: usize,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) state: KeyState,
}

impl LoadedKey {
    pub(crate) fn is_live_at(&self, t: SystemTime) -> bool {
        self.expires_at.is_none_or(|e| t < e)
    }
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedKey")
            .field("index", &self.index)
            .field("expires_at", &self.expires_at)
            .field("key", &"***")
            .finish()
    }
}

/// Loads every key of `ring` for `scheme`'s algorithm, checking that each key fits.
pub(crate) fn load(
    scheme: &Scheme,
    ring: &KeyRing,
    purpose: Purpose,
) -> Result<Vec<LoadedKey>, KeyRingError> {
    let algorithm = scheme.algorithm();
    if purpose == Purpose::Sign && !algorithm.can_sign() {
        return Err(KeyRingError::VerifyOnlyAlgorithm {
            algorithm: algorithm.name(),
        });
    }
    if ring.is_empty() {
        return Err(KeyRingError::Empty);
    }
    let mut out = Vec::with_capacity(ring.len());
    for (index, entry) in ring.iter().enumerate() {
        let wrong = || KeyRingError::WrongKeyKind {
            index,
            kind: entry.key().kind(),
            algorithm: algorithm.name(),
            purpose: purpose.name(),
        };
        let state = match (algorithm, entry.key()) {
            (Algorithm::HmacSha256, Key::Hmac(s)) => KeyState::HmacSha256(
                <Hmac<Sha256> as Mac>::new_from_slice(s.expose_secret()).map_err(|_| wrong())?,
            ),
            (Algorithm::HmacSha1, Key::Hmac(s)) => KeyState::HmacSha1(
                <Hmac<Sha1> as Mac>::new_from_slice(s.expose_secret()).map_err(|_| wrong())?,
            ),
            #[cfg(feature = "ed25519")]
            (Algorithm::Ed25519, Key::Ed25519Signing(k)) => match purpose {
                Purpose::Sign => KeyState::Ed25519Signing(k.0.clone()),
                Purpose::Verify => KeyState::Ed25519Verifying(k.0.verifying_key()),
            },
            #[cfg(feature = "ed25519")]
            (Algorithm::Ed25519, Key::Ed25519Verifying(k)) if purpose == Purpose::Verify => {
                KeyState::Ed25519Verifying(k.0)
            }
            #[allow(unreachable_patterns)] // reachable with feature `ed25519`
            _ => return Err(wrong()),
        };
        out.push(LoadedKey {
            index,
            expires_at: entry.expires_at(),
            state,
        });
    }
    Ok(out)
}
