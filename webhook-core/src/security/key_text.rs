//! How a scheme reads the secret its sender hands out: [`SecretFormat`] and
//! [`Scheme::parse_key`].
//!
//! The same text means different keys to different senders. Stripe shows an endpoint secret
//! `whsec_...` and HMACs with that text as it is; Standard Webhooks and Svix show `whsec_...`
//! too, but HMAC with the bytes its base64 decodes to. Reading a Stripe secret the Standard
//! Webhooks way (or the other way round) signs with the wrong key in both directions, so every
//! [`Scheme`] says how it reads its secret and the library, the CLI and the registry all parse
//! through [`Scheme::parse_key`].
//!
//! | format | presets | the key is |
//! | --- | --- | --- |
//! | [`SecretFormat::Whsec`] | Standard Webhooks, Svix | `whsec_` + base64 (padded or not): the decoded bytes; other text: its bytes as typed (the peers' "raw" secret) |
//! | [`SecretFormat::Literal`] | Stripe, GitHub, Slack, Zoom, Shopify, Soveren | the text byte for byte, a `whsec_` prefix included |
//! | [`SecretFormat::Ed25519`] | Standard Webhooks `v1a`, Discord | `whsk_` (signs and verifies), `whpk_` or 64 hex digits (verifies) |
//!
//! Text that cannot be a key of the scheme is refused with a hint ([`KeyTextError::hint`]):
//! an Ed25519 key (`whsk_`/`whpk_`) for an HMAC scheme, a `whsec_` secret for an Ed25519 one, a
//! `whsec_` whose base64 is broken, an empty text.

use crate::{Algorithm, Key, Scheme, Secret, SecretError};

/// How a scheme reads the secret text its sender hands out ([`Scheme::parse_key`]).
///
/// The same text means different keys to different senders: Stripe HMACs with its endpoint
/// secret `whsec_...` as it is, Standard Webhooks and Svix with the bytes its base64 decodes to.
///
/// | format | presets | the key is |
/// | --- | --- | --- |
/// | [`Whsec`](Self::Whsec) | Standard Webhooks, Svix | `whsec_` + base64 (padded or not): the decoded bytes; other text: its bytes as typed |
/// | [`Literal`](Self::Literal) | Stripe, GitHub, Slack, Zoom, Shopify, Soveren | the text byte for byte, a `whsec_` prefix included |
/// | [`Ed25519`](Self::Ed25519) | Standard Webhooks `v1a`, Discord | `whsk_` (signs and verifies), `whpk_` or 64 hex digits (verifies) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretFormat {
    /// Standard Webhooks and Svix: `whsec_` + standard base64, padded or not, is decoded (24 to
    /// 64 bytes); text without the prefix is used as its bytes, like the reference libraries'
    /// raw secrets (`format: "raw"`, or a `bytes` secret) and a Sysdig `SIGNATURE` secret.
    Whsec,
    /// The text is the HMAC key, byte for byte, whatever it looks like (Stripe's `whsec_...`
    /// included): Stripe, GitHub, Slack, Zoom, Shopify, Soveren.
    Literal,
    /// Ed25519 keys: `whsk_` + base64 of the seed (signs, and verifies through its public half),
    /// `whpk_` + base64 or 64 hex digits of the public key (verifies).
    Ed25519,
}

impl SecretFormat {
    /// The format a scheme of `algorithm` reads unless told otherwise: [`Whsec`](Self::Whsec)
    /// for HMAC, [`Ed25519`](Self::Ed25519) for Ed25519.
    pub fn default_for(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::HmacSha256 | Algorithm::HmacSha1 => Self::Whsec,
            #[cfg(feature = "ed25519")]
            Algorithm::Ed25519 => Self::Ed25519,
        }
    }

    /// Whether the format reads keys for `algorithm`.
    pub fn fits(self, algorithm: Algorithm) -> bool {
        match self {
            Self::Whsec | Self::Literal => {
                matches!(algorithm, Algorithm::HmacSha256 | Algorithm::HmacSha1)
            }
            Self::Ed25519 => !matches!(algorithm, Algorithm::HmacSha256 | Algorithm::HmacSha1),
        }
    }

    /// A short description, for help texts and errors.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Whsec => "whsec_ + base64 (decoded), or any other text used as typed",
            Self::Literal => "the secret text exactly as the sender shows it (used as typed)",
            Self::Ed25519 => "whsk_... to sign; whpk_... or 64 hex digits (public key) to verify",
        }
    }
}

/// Why a text is not a key of a scheme. Never contains any part of the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyTextError {
    /// The text is empty.
    #[error("the secret is empty")]
    Empty,
    /// A `whsec_` secret that does not decode.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// An Ed25519 key that does not parse.
    #[cfg(feature = "ed25519")]
    #[error(transparent)]
    Ed25519(#[from] crate::ed25519::Ed25519KeyError),
    /// The text is a kind of key the scheme cannot use (an Ed25519 key for an HMAC scheme, a
    /// `whsec_` secret for an Ed25519 scheme).
    #[error("{found} cannot be a key of the {scheme} scheme, which takes {expected}")]
    WrongKind {
        /// The scheme's name.
        scheme: String,
        /// What the text looks like, e.g. `"an Ed25519 secret key (whsk_)"`.
        found: &'static str,
        /// What the scheme takes ([`SecretFormat::describe`]).
        expected: &'static str,
    },
    /// The scheme reads Ed25519 keys but the crate was built without the `ed25519` feature.
    #[error("Ed25519 keys need webhook-core's `ed25519` feature")]
    Ed25519Disabled,
}

impl KeyTextError {
    /// What to do about it, in one sentence.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Empty => "pass the secret exactly as the sender shows it",
            Self::Secret(_) => {
                "a whsec_ secret is whsec_ followed by the base64 the sender shows; copy it whole"
            }
            #[cfg(feature = "ed25519")]
            Self::Ed25519(_) => {
                "Ed25519 keys are whsk_... (secret), whpk_... or 64 hex digits (public)"
            }
            Self::WrongKind { .. } => {
                "check the scheme: Ed25519 keys (whsk_/whpk_) go with standard-webhooks-v1a or \
                 discord, shared secrets with the HMAC schemes"
            }
            Self::Ed25519Disabled => "build with the `ed25519` feature",
        }
    }
}

impl Scheme {
    /// How this scheme reads the secret text its sender hands out.
    ///
    /// ```
    /// use webhook_core::{Scheme, SecretFormat};
    /// assert_eq!(Scheme::standard_webhooks().secret_format(), SecretFormat::Whsec);
    /// assert_eq!(Scheme::stripe().secret_format(), SecretFormat::Literal);
    /// ```
    pub fn secret_format(&self) -> SecretFormat {
        self.secret_format
    }

    /// Parses a secret or key exactly as this scheme's sender hands it out (see
    /// [`SecretFormat`]).
    ///
    /// ```
    /// use webhook_core::{Key, KeyTextError, Scheme};
    ///
    /// // Stripe HMACs with the whole text; Standard Webhooks with the decoded base64.
    /// let Key::Hmac(stripe) = Scheme::stripe().parse_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")? else { panic!() };
    /// assert_eq!(stripe.expose_secret(), b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    /// let Key::Hmac(sw) = Scheme::standard_webhooks().parse_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")? else { panic!() };
    /// assert_eq!(sw.len(), 24);
    ///
    /// // An Ed25519 key is no HMAC secret.
    /// let err = Scheme::github().parse_key("whpk_AAAA").unwrap_err();
    /// assert!(matches!(err, KeyTextError::WrongKind { .. }));
    /// assert!(err.hint().contains("standard-webhooks-v1a"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`KeyTextError`] saying why the text cannot be a key of this scheme.
    pub fn parse_key(&self, text: &str) -> Result<Key, KeyTextError> {
        if text.is_empty() {
            return Err(KeyTextError::Empty);
        }
        let format = self.secret_format;
        let wrong = |found| KeyTextError::WrongKind {
            scheme: self.name().to_owned(),
            found,
            expected: format.describe(),
        };
        match format {
            SecretFormat::Whsec | SecretFormat::Literal => {
                if text.starts_with("whsk_") {
                    return Err(wrong("an Ed25519 secret key (whsk_)"));
                }
                if text.starts_with("whpk_") {
                    return Err(wrong("an Ed25519 public key (whpk_)"));
                }
                let secret = if format == SecretFormat::Whsec && text.starts_with("whsec_") {
                    Secret::from_whsec(text)?
                } else {
                    Secret::from_bytes(text.as_bytes())?
                };
                Ok(Key::Hmac(secret))
            }
            SecretFormat::Ed25519 => {
                if text.starts_with("whsec_") {
                    return Err(wrong("a shared secret (whsec_)"));
                }
                parse_ed25519(text, wrong)
            }
        }
    }
}

#[cfg(feature = "ed25519")]
fn parse_ed25519(
    text: &str,
    wrong: impl Fn(&'static str) -> KeyTextError,
) -> Result<Key, KeyTextError> {
    use crate::ed25519::{Ed25519SigningKey, Ed25519VerifyingKey};
    if text.starts_with("whsk_") {
        return Ok(Ed25519SigningKey::from_whsk(text)?.into());
    }
    if text.starts_with("whpk_") {
        return Ok(Ed25519VerifyingKey::from_whpk(text)?.into());
    }
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Ed25519VerifyingKey::from_hex(text)?.into());
    }
    Err(wrong("text that is neither whsk_, whpk_ nor 64 hex digits"))
}

#[cfg(not(feature = "ed25519"))]
fn parse_ed25519(
    _text: &str,
    _wrong: impl Fn(&'static str) -> KeyTextError,
) -> Result<Key, KeyTextError> {
    Err(KeyTextError::Ed25519Disabled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hmac(scheme: &Scheme, text: &str) -> Vec<u8> {
        match scheme.parse_key(text).unwrap() {
            Key::Hmac(s) => s.expose_secret().to_vec(),
            #[allow(unreachable_patterns)]
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_preset_reads_its_secret_as_its_sender_does() {
        let text = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        for s in [Scheme::standard_webhooks(), Scheme::svix()] {
            assert_eq!(hmac(&s, text).len(), 24, "{}", s.name());
            assert_eq!(hmac(&s, "raw text"), b"raw text");
            assert!(matches!(
                s.parse_key("whsec_***"),
                Err(KeyTextError::Secret(SecretError::InvalidBase64))
            ));
        }
        for s in [
            Scheme::stripe(),
            Scheme::github(),
            Scheme::github_legacy_sha1(),
            Scheme::slack(),
            Scheme::zoom(),
            Scheme::shopify(),
            Scheme::soveren(),
        ] {
            assert_eq!(hmac(&s, text), text.as_bytes(), "{}", s.name());
            assert_eq!(hmac(&s, "whsec_***"), b"whsec_***");
            assert!(matches!(
                s.parse_key("whsk_AAAA"),
                Err(KeyTextError::WrongKind { .. })
            ));
            assert_eq!(s.parse_key("").unwrap_err(), KeyTextError::Empty);
        }
    }

    #[test]
    fn errors_never_show_the_text() {
        let e = Scheme::svix()
            .parse_key("whsec_hunter2hunter2")
            .unwrap_err();
        assert!(!format!("{e} {e:?} {}", e.hint()).contains("hunter2"));
        let e = Scheme::github().parse_key("whpk_hunter2").unwrap_err();
        assert!(!format!("{e} {e:?}").contains("hunter2"));
    }

    #[cfg(feature = "ed25519")]
    #[test]
    fn ed25519_schemes_take_ed25519_keys_only() {
        use crate::ed25519::Ed25519SigningKey;
        let key = Ed25519SigningKey::from_seed([5u8; 32]);
        let public = key.verifying_key();
        for s in [Scheme::discord(), Scheme::standard_webhooks_v1a()] {
            assert!(matches!(
                s.parse_key(&key.to_whsk()).unwrap(),
                Key::Ed25519Signing(_)
            ));
            assert!(matches!(
                s.parse_key(&public.to_whpk()).unwrap(),
                Key::Ed25519Verifying(k) if k == public
            ));
            assert!(matches!(
                s.parse_key(&public.to_hex().to_uppercase()).unwrap(),
                Key::Ed25519Verifying(k) if k == public
            ));
            assert!(matches!(
                s.parse_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                Err(KeyTextError::WrongKind { .. })
            ));
            assert!(matches!(
                s.parse_key("zz"),
                Err(KeyTextError::WrongKind { .. })
            ));
            assert!(matches!(
                s.parse_key("whsk_AAAA"),
                Err(KeyTextError::Ed25519(_))
            ));
        }
    }
}
