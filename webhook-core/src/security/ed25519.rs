//! Ed25519 keys for asymmetric signatures (feature `ed25519`).
//!
//! Standard Webhooks `v1a` signatures and Discord interactions use Ed25519. Keys come in the
//! Standard Webhooks text forms: `whsk_` + base64 of the secret key (the 32-byte seed, or the
//! 64-byte seed-and-public-key form that libsodium produces), and `whpk_` + base64 of the 32-byte
//! public key. Discord hands out public keys as 64 hex characters
//! ([`Ed25519VerifyingKey::from_hex`]).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// The prefix of a Standard Webhooks Ed25519 secret (signing) key.
pub const WHSK_PREFIX: &str = "whsk_";
/// The prefix of a Standard Webhooks Ed25519 public (verifying) key.
pub const WHPK_PREFIX: &str = "whpk_";

/// Why an Ed25519 key could not be parsed. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Ed25519KeyError {
    /// The text does not start with the expected prefix.
    #[error("the key does not start with `{expected}`")]
    MissingPrefix {
        /// The prefix that was expected (`whsk_` or `whpk_`).
        expected: &'static str,
    },
    /// The key text is not standard padded base64 (or not lowercase hex, for `from_hex`).
    #[error("the key is not valid {encoding}")]
    InvalidEncoding {
        /// `"base64"` or `"hex"`.
        encoding: &'static str,
    },
    /// The decoded key has the wrong length.
    #[error("the key decodes to {len} bytes, expected {expected}")]
    InvalidLength {
        /// Decoded length.
        len: usize,
        /// What was expected, e.g. `"32 or 64"`.
        expected: &'static str,
    },
    /// The bytes are not a valid Ed25519 key (bad curve point, or a 64-byte secret key whose
    /// public half does not belong to its seed).
    #[error("the bytes are not a valid Ed25519 key")]
    InvalidKey,
}

/// An Ed25519 signing key (secret), zeroized on drop, redacted in `Debug`.
///
/// ```
/// use webhook_core::ed25519::Ed25519SigningKey;
///
/// let key = Ed25519SigningKey::from_seed([7u8; 32]);
/// let text = key.to_whsk();
/// let again = Ed25519SigningKey::from_whsk(&text)?;
/// assert_eq!(again.verifying_key(), key.verifying_key());
/// assert_eq!(format!("{key:?}"), "Ed25519SigningKey(***)");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Ed25519SigningKey(pub(crate) ed25519_dalek::SigningKey);

impl Ed25519SigningKey {
    /// Builds a key from its 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let seed = Zeroizing::new(seed);
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Parses `whsk_` + standard padded base64 of the 32-byte seed or of the 64-byte
    /// seed‖public-key form.
    ///
    /// # Errors
    /// [`Ed25519KeyError`] naming what is wrong.
    pub fn from_whsk(text: &str) -> Result<Self, Ed25519KeyError> {
        let b64 = text
            .strip_prefix(WHSK_PREFIX)
            .ok_or(Ed25519KeyError::MissingPrefix {
                expected: WHSK_PREFIX,
            })?;
        let bytes = Zeroizing::new(
            STANDARD
                .decode(b64.as_bytes())
                .map_err(|_| Ed25519KeyError::InvalidEncoding { encoding: "base64" })?,
        );
        match bytes.len() {
            32 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                seed.copy_from_slice(&bytes);
                Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
            64 => {
                let mut pair = Zeroizing::new([0u8; 64]);
                pair.copy_from_slice(&bytes);
                ed25519_dalek::SigningKey::from_keypair_bytes(&pair)
                    .map(Self)
                    .map_err(|_| Ed25519KeyError::InvalidKey)
            }
            len => Err(Ed25519KeyError::InvalidLength {
                len,
                expected: "32 or 64",
            }),
        }
    }

    /// Formats the key as `whsk_` + base64 of its 32-byte seed (zeroized on drop).
    pub fn to_whsk(&self) -> Zeroizing<String> {
        let seed = Zeroizing::new(self.0.to_bytes());
        let mut out = Zeroizing::new(String::from(WHSK_PREFIX));
        STANDARD.encode_string(seed.as_slice(), &mut out);
        out
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> Ed25519VerifyingKey {
        Ed25519VerifyingKey(self.0.verifying_key())
    }
}

impl fmt::Debug for Ed25519SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ed25519SigningKey(***)")
    }
}

/// An Ed25519 public key (not secret).
///
/// ```
/// use webhook_core::ed25519::{Ed25519SigningKey, Ed25519VerifyingKey};
///
/// let public = Ed25519SigningKey::from_seed([1u8; 32]).verifying_key();
/// assert_eq!(Ed25519VerifyingKey::from_whpk(&public.to_whpk())?, public);
/// assert_eq!(Ed25519VerifyingKey::from_hex(&public.to_hex())?, public);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ed25519VerifyingKey(pub(crate) ed25519_dalek::VerifyingKey);

impl Ed25519VerifyingKey {
    /// Builds a key from its 32 bytes.
    ///
    /// # Errors
    /// [`Ed25519KeyError::InvalidKey`] if the bytes are not a curve point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, Ed25519KeyError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| Ed25519KeyError::InvalidKey)
    }

    /// Parses `whpk_` + standard padded base64 of the 32-byte public key.
    ///
    /// # Errors
    /// [`Ed25519KeyError`] naming what is wrong.
    pub fn from_whpk(text: &str) -> Result<Self, Ed25519KeyError> {
        let b64 = text
            .strip_prefix(WHPK_PREFIX)
            .ok_or(Ed25519KeyError::MissingPrefix {
                expected: WHPK_PREFIX,
            })?;
        let bytes = STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| Ed25519KeyError::InvalidEncoding { encoding: "base64" })?;
        let arr: [u8; 32] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| Ed25519KeyError::InvalidLength {
                    len: bytes.len(),
                    expected: "32",
                })?;
        Self::from_bytes(&arr)
    }

    /// Parses 64 hex characters (the form Discord shows as "Public Key"); either case.
    ///
    /// # Errors
    /// [`Ed25519KeyError`] naming what is wrong.
    pub fn from_hex(text: &str) -> Result<Self, Ed25519KeyError> {
        if text.len() != 64 {
            return Err(Ed25519KeyError::InvalidLength {
                len: text.len() / 2,
                expected: "32",
            });
        }
        let lower = text.to_ascii_lowercase();
        let mut arr = [0u8; 32];
        match crate::security::codec::hex_decode(lower.as_bytes(), &mut arr) {
            Some(32) => Self::from_bytes(&arr),
            _ => Err(Ed25519KeyError::InvalidEncoding { encoding: "hex" }),
        }
    }

    /// Formats the key as `whpk_` + base64.
    pub fn to_whpk(&self) -> String {
        let mut out = String::from(WHPK_PREFIX);
        STANDARD.encode_string(self.0.as_bytes(), &mut out);
        out
    }

    /// Formats the key as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        let mut buf = [0u8; 64];
        let n = crate::security::codec::hex_encode(self.0.as_bytes(), &mut buf);
        buf.get(..n)
            .map(|b| b.iter().map(|&c| char::from(c)).collect())
            .unwrap_or_default()
    }

    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Ed25519VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519VerifyingKey({})", self.to_whpk())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whsk_accepts_seed_and_keypair_forms() {
        let key = Ed25519SigningKey::from_seed([9u8; 32]);
        let mut pair = [0u8; 64];
        pair[..32].copy_from_slice(&[9u8; 32]);
        pair[32..].copy_from_slice(key.verifying_key().as_bytes());
        let text = format!("whsk_{}", STANDARD.encode(pair));
        assert_eq!(
            Ed25519SigningKey::from_whsk(&text).unwrap().verifying_key(),
            key.verifying_key()
        );
        // a keypair whose public half does not match its seed is refused
        pair[40] ^= 1;
        let text = format!("whsk_{}", STANDARD.encode(pair));
        assert_eq!(
            Ed25519SigningKey::from_whsk(&text).unwrap_err(),
            Ed25519KeyError::InvalidKey
        );
    }

    #[test]
    fn malformed_keys_are_typed_errors() {
        assert!(matches!(
            Ed25519SigningKey::from_whsk("whpk_AAAA"),
            Err(Ed25519KeyError::MissingPrefix { .. })
        ));
        assert!(matches!(
            Ed25519SigningKey::from_whsk("whsk_AAAA"),
            Err(Ed25519KeyError::InvalidLength { len: 3, .. })
        ));
        assert!(matches!(
            Ed25519VerifyingKey::from_whpk("whpk_%%%"),
            Err(Ed25519KeyError::InvalidEncoding { .. })
        ));
        assert!(matches!(
            Ed25519VerifyingKey::from_hex("zz"),
            Err(Ed25519KeyError::InvalidLength { .. })
        ));
        assert!(matches!(
            Ed25519VerifyingKey::from_hex(&"g".repeat(64)),
            Err(Ed25519KeyError::InvalidEncoding { .. })
        ));
    }
}
