//! Key rings: several keys, each with an optional expiry, for zero-downtime rotation.
//!
//! A sender signs with every *live* key (schemes whose header holds one signature use the first
//! live key); a verifier accepts a signature made by any live key. A key is live at instant `t`
//! when it has no expiry or `t < expires_at` (the expiry instant itself is already dead).
//! Signers judge liveness at the signing timestamp, verifiers at the `now` they are given: this
//! crate never reads the clock.
//!
//! Rotation: add the new key, deploy receivers, switch senders, then give the old key an expiry
//! (or remove it).

use std::time::SystemTime;

use crate::Secret;
#[cfg(feature = "ed25519")]
use crate::ed25519::{Ed25519SigningKey, Ed25519VerifyingKey};

/// One key of any supported kind.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Key {
    /// A shared secret for HMAC schemes.
    Hmac(Secret),
    /// An Ed25519 secret key: signs, and verifies through its public half.
    #[cfg(feature = "ed25519")]
    Ed25519Signing(Ed25519SigningKey),
    /// An Ed25519 public key: verifies only.
    #[cfg(feature = "ed25519")]
    Ed25519Verifying(Ed25519VerifyingKey),
}

impl Key {
    /// A short name of the key kind, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hmac(_) => "HMAC secret",
            #[cfg(feature = "ed25519")]
            Self::Ed25519Signing(_) => "Ed25519 signing key",
            #[cfg(feature = "ed25519")]
            Self::Ed25519Verifying(_) => "Ed25519 verifying key",
        }
    }
}

impl From<Secret> for Key {
    fn from(s: Secret) -> Self {
        Self::Hmac(s)
    }
}

#[cfg(feature = "ed25519")]
impl From<Ed25519SigningKey> for Key {
    fn from(k: Ed25519SigningKey) -> Self {
        Self::Ed25519Signing(k)
    }
}

#[cfg(feature = "ed25519")]
impl From<Ed25519VerifyingKey> for Key {
    fn from(k: Ed25519VerifyingKey) -> Self {
        Self::Ed25519Verifying(k)
    }
}

/// A key with its optional expiry.
#[derive(Clone, Debug)]
pub struct KeyEntry {
    key: Key,
    expires_at: Option<SystemTime>,
}

impl KeyEntry {
    /// The key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// When the key stops being accepted, if ever.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// Whether the key is live at `t` (no expiry, or `t` strictly before it).
    pub fn is_live_at(&self, t: SystemTime) -> bool {
        self.expires_at.is_none_or(|e| t < e)
    }
}

/// An ordered set of keys. The position of a key (0-based) is its *index*, reported by
/// verification as the key that matched.
///
/// # Rotation
///
/// A sender signs with every *live* key (schemes whose header holds one signature use the first
/// live key); a verifier accepts a signature made by any live key. A key is live at instant `t`
/// when it has no expiry or `t < expires_at` (the expiry instant itself is already dead).
/// Signers judge liveness at the signing timestamp, verifiers at the `now` they are given: this
/// crate never reads the clock.
///
/// Rotation: add the new key, deploy receivers, switch senders, then give the old key an expiry
/// (or remove it).
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use webhook_core::{KeyRing, Secret};
///
/// let rotate_at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let ring = KeyRing::new()
///     .with_key(Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?)
///     .with_key_until(Secret::from_bytes("old secret")?, rotate_at);
/// assert_eq!(ring.len(), 2);
/// assert_eq!(ring.live_at(rotate_at - Duration::from_secs(1)).count(), 2);
/// assert_eq!(ring.live_at(rotate_at).count(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    entries: Vec<KeyEntry>,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// A ring with one key that never expires.
    pub fn single(key: impl Into<Key>) -> Self {
        Self::new().with_key(key)
    }

    /// Adds a key that never expires.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<Key>) -> Self {
        self.push(key, None);
        self
    }

    /// Adds a key that is accepted strictly before `expires_at`.
    #[must_use]
    pub fn with_key_until(mut self, key: impl Into<Key>, expires_at: SystemTime) -> Self {
        self.push(key, Some(expires_at));
        self
    }

    /// Adds a key in place, with an optional expiry.
    pub fn push(&mut self, key: impl Into<Key>, expires_at: Option<SystemTime>) {
        self.entries.push(KeyEntry {
            key: key.into(),
            expires_at,
        });
    }

    /// Number of keys (live or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the ring holds no key at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All keys in order.
    pub fn iter(&self) -> impl Iterator<Item = &KeyEntry> {
        self.entries.iter()
    }

    /// `(index, entry)` of the keys live at `t`.
    pub fn live_at(&self, t: SystemTime) -> impl Iterator<Item = (usize, &KeyEntry)> {
        self.entries
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.is_live_at(t))
    }
}

/// Why a key ring cannot be used with a scheme.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRingError {
    /// The ring holds no key.
    #[error("the key ring is empty")]
    Empty,
    /// A key does not fit the scheme's algorithm (e.g. an HMAC secret for an Ed25519 scheme, or
    /// an Ed25519 public key given to a signer). The message numbers keys from 1 (`key #1`),
    /// as verification reports do.
    #[error("key #{} is an {kind}, which cannot be used to {purpose} with {algorithm}", .index + 1)]
    WrongKeyKind {
        /// Index (0-based) of the key in the ring.
        index: usize,
        /// Kind of the key found.
        kind: &'static str,
        /// The scheme's algorithm.
        algorithm: &'static str,
        /// `"sign"` or `"verify"`.
        purpose: &'static str,
    },
    /// The scheme's algorithm is accepted for verification only (HMAC-SHA1, for legacy senders).
    #[error("{algorithm} is supported for verifying legacy senders only, not for signing")]
    VerifyOnlyAlgorithm {
        /// The algorithm.
        algorithm: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn expiry_is_exclusive() {
        let exp = UNIX_EPOCH + Duration::from_secs(100);
        let ring = KeyRing::new()
            .with_key_until(Secret::from_bytes("a").unwrap(), exp)
            .with_key(Secret::from_bytes("b").unwrap());
        let live = |t| ring.live_at(t).map(|(i, _)| i).collect::<Vec<_>>();
        assert_eq!(live(exp - Duration::from_nanos(1)), vec![0, 1]);
        assert_eq!(live(exp), vec![1]);
        assert_eq!(ring.iter().next().unwrap().expires_at(), Some(exp));
        assert_eq!(ring.iter().next().unwrap().key().kind(), "HMAC secret");
    }
}
