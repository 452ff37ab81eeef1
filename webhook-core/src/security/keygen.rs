//! Making keys: [`Scheme::generate_key`] turns 32 random bytes from the caller into the secret
//! (and, for Ed25519, the public key) a scheme's parties exchange, in the text forms
//! [`Scheme::parse_key`] reads back.
//!
//! The core reads no randomness of its own (like the clock, it is an input): the caller passes
//! 32 bytes from the operating system's generator (`getrandom`, `rand::rngs::OsRng`, ...).
//!
//! | scheme's [`SecretFormat`] | secret | public key |
//! | --- | --- | --- |
//! | [`Whsec`](SecretFormat::Whsec), [`Literal`](SecretFormat::Literal) | `whsec_` + base64 of 24 bytes (the Svix form; a literal scheme uses the whole text) | — |
//! | [`Ed25519`](SecretFormat::Ed25519) | `whsk_` + base64 of the 32-byte seed | `whpk_` + base64, and 64 hex digits (Discord's form) |

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::key_text::{KeyTextError, SecretFormat};
use crate::Scheme;

/// Bytes of a generated shared secret: 24, the length Svix hands out (192 bits), which encodes
/// to 32 base64 characters without padding.
const SHARED_SECRET_LEN: usize = 24;

/// A key made by [`Scheme::generate_key`]: the secret text (zeroized on drop, redacted in
/// `Debug`) and, for Ed25519, the public key.
#[derive(Clone)]
pub struct GeneratedKey {
    secret: Zeroizing<String>,
    public: Option<(String, String)>,
}

impl GeneratedKey {
    /// The secret, as the signing party keeps it (`whsec_...` or `whsk_...`).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The public key as `whpk_...` (Ed25519 schemes only).
    pub fn public_key(&self) -> Option<&str> {
        self.public.as_ref().map(|(whpk, _)| whpk.as_str())
    }

    /// The public key as 64 lowercase hex digits, Discord's form (Ed25519 schemes only).
    pub fn public_key_hex(&self) -> Option<&str> {
        self.public.as_ref().map(|(_, hex)| hex.as_str())
    }
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("secret", &"***")
            .field("public_key", &self.public_key())
            .finish()
    }
}

impl Scheme {
    /// Makes a new key for this scheme from 32 random bytes (from the operating system's
    /// generator; the core reads no randomness itself), in the text forms
    /// [`parse_key`](Self::parse_key) reads back: `whsec_` + base64 of 24 bytes for the HMAC
    /// schemes (a [`SecretFormat::Literal`] scheme uses the whole text), or for Ed25519 the
    /// secret key `whsk_` + base64 of the seed with the public key as `whpk_...` and as 64 hex
    /// digits (Discord's form).
    ///
    /// ```
    /// use webhook_core::{Key, Scheme};
    ///
    /// let random = [7u8; 32]; // use the operating system's generator
    /// let made = Scheme::standard_webhooks().generate_key(random)?;
    /// assert!(made.secret().starts_with("whsec_"));
    /// assert!(matches!(Scheme::standard_webhooks().parse_key(made.secret())?, Key::Hmac(s) if s.len() == 24));
    /// assert_eq!(made.public_key(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`KeyTextError::Ed25519Disabled`] for an Ed25519 scheme without the `ed25519` feature.
    pub fn generate_key(&self, random: [u8; 32]) -> Result<GeneratedKey, KeyTextError> {
        let random = Zeroizing::new(random);
        match self.secret_format() {
            SecretFormat::Whsec | SecretFormat::Literal => {
                let mut secret = Zeroizing::new(String::from("whsec_"));
                STANDARD.encode_string(random.get(..SHARED_SECRET_LEN).unwrap_or(&[]), &mut secret);
                Ok(GeneratedKey {
                    secret,
                    public: None,
                })
            }
            SecretFormat::Ed25519 => ed25519_key(*random),
        }
    }
}

#[cfg(feature = "ed25519")]
fn ed25519_key(seed: [u8; 32]) -> Result<GeneratedKey, KeyTextError> {
    let key = crate::ed25519::Ed25519SigningKey::from_seed(seed);
    let public = key.verifying_key();
    Ok(GeneratedKey {
        secret: key.to_whsk(),
        public: Some((public.to_whpk(), public.to_hex())),
    })
}

#[cfg(not(feature = "ed25519"))]
fn ed25519_key(_seed: [u8; 32]) -> Result<GeneratedKey, KeyTextError> {
    Err(KeyTextError::Ed25519Disabled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key;

    #[test]
    fn generated_secrets_parse_back_for_every_preset() {
        for scheme in Scheme::presets() {
            let made = scheme.generate_key([42u8; 32]).unwrap();
            let key = scheme.parse_key(made.secret()).unwrap();
            match (scheme.secret_format(), key) {
                (SecretFormat::Whsec, Key::Hmac(s)) => assert_eq!(s.expose_secret(), [42u8; 24]),
                (SecretFormat::Literal, Key::Hmac(s)) => {
                    assert_eq!(s.expose_secret(), made.secret().as_bytes());
                }
                #[cfg(feature = "ed25519")]
                (SecretFormat::Ed25519, Key::Ed25519Signing(k)) => {
                    assert_eq!(
                        made.public_key(),
                        Some(k.verifying_key().to_whpk().as_str())
                    );
                    assert_eq!(made.public_key_hex().map(str::len), Some(64));
                }
                (format, key) => panic!("{}: {format:?} {key:?}", scheme.name()),
            }
            assert!(!format!("{made:?}").contains(made.secret()));
        }
    }
}
