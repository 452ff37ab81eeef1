//! Shared secrets: the key material of HMAC signature schemes.
//!
//! A [`Secret`] owns its bytes in a buffer that is zeroized when dropped, never prints them
//! (`Debug` shows `Secret(***)`), and is parsed from the forms senders hand out:
//!
//! * Standard Webhooks / Svix secrets, `whsec_` followed by standard base64 (padded or not, as
//!   the reference libraries accept) of 24 to 64 bytes ([`Secret::from_whsec`]);
//! * raw bytes, e.g. a GitHub or Slack signing secret typed by a user ([`Secret::from_bytes`]).
//!
//! Ed25519 keys (`whsk_`/`whpk_`) live in `webhook_core::ed25519` (feature `ed25519`).

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

const WHSEC_PREFIX: &str = Secret::WHSEC_PREFIX;
const WHSEC_MIN_LEN: usize = Secret::WHSEC_MIN_LEN;
const WHSEC_MAX_LEN: usize = Secret::WHSEC_MAX_LEN;

/// Standard-alphabet base64 with or without its `=` padding (canonical: non-zero trailing bits
/// are refused). The Standard Webhooks and Svix libraries read unpadded secrets, so do we.
const PADDING_OPTIONAL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a secret could not be parsed. Never contains any part of the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The secret is empty; an empty HMAC key authenticates nothing.
    #[error("the secret is empty")]
    Empty,
    /// The text does not start with the expected prefix (e.g. `whsec_`).
    #[error("the secret does not start with `{expected}`")]
    MissingPrefix {
        /// The prefix that was expected.
        expected: &'static str,
    },
    /// The text after the prefix is not standard base64.
    #[error("the secret is not valid standard base64")]
    InvalidBase64,
    /// The decoded key has a length outside the allowed range.
    #[error("the secret decodes to {len} bytes, expected {min} to {max}")]
    InvalidLength {
        /// Decoded length.
        len: usize,
        /// Smallest allowed length.
        min: usize,
        /// Largest allowed length.
        max: usize,
    },
}

/// Symmetric key material, zeroized on drop and redacted in `Debug`.
///
/// A [`Secret`] owns its bytes in a buffer that is zeroized when dropped, never prints them
/// (`Debug` shows `Secret(***)`), and is parsed from the forms senders hand out:
///
/// * Standard Webhooks / Svix secrets, `whsec_` followed by standard base64 (padded or not, as
///   the reference libraries accept) of 24 to 64 bytes ([`Secret::from_whsec`]);
/// * raw bytes, e.g. a GitHub or Slack signing secret typed by a user ([`Secret::from_bytes`]).
///
/// Ed25519 keys (`whsk_`/`whpk_`) live in `webhook_core::ed25519` (feature `ed25519`).
///
/// ```
/// use webhook_core::Secret;
///
/// let s = Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// assert_eq!(s.len(), 24);
/// assert_eq!(format!("{s:?}"), "Secret(***)");
///
/// let github = Secret::from_bytes("It's a Secret to Everybody")?;
/// assert_eq!(github.expose_secret(), b"It's a Secret to Everybody");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// The prefix of a Standard Webhooks symmetric secret.
    pub const WHSEC_PREFIX: &'static str = "whsec_";
    /// The smallest decoded length the Standard Webhooks specification allows for `whsec_`
    /// secrets.
    pub const WHSEC_MIN_LEN: usize = 24;
    /// The largest decoded length the Standard Webhooks specification allows for `whsec_`
    /// secrets.
    pub const WHSEC_MAX_LEN: usize = 64;

    /// Takes raw key bytes as they are (any non-empty length).
    ///
    /// # Errors
    /// [`SecretError::Empty`] if `bytes` is empty.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let bytes = Zeroizing::new(bytes.into());
        if bytes.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self(bytes))
    }

    /// Parses a Standard Webhooks secret: `whsec_` + standard base64 of 24 to 64 bytes, with or
    /// without its `=` padding (the reference libraries accept both and read the same key).
    ///
    /// ```
    /// use webhook_core::{Secret, SecretError};
    /// assert!(Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
    /// // 32 bytes: 43 characters and one `=`, or the 43 characters alone.
    /// let padded = Secret::from_whsec("whsec_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=")?;
    /// let unpadded = Secret::from_whsec("whsec_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc")?;
    /// assert_eq!(padded.expose_secret(), unpadded.expose_secret());
    /// assert_eq!(Secret::from_whsec("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
    ///            SecretError::MissingPrefix { expected: "whsec_" });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`SecretError::MissingPrefix`], [`SecretError::InvalidBase64`] or
    /// [`SecretError::InvalidLength`].
    pub fn from_whsec(text: &str) -> Result<Self, SecretError> {
        let b64 = text
            .strip_prefix(WHSEC_PREFIX)
            .ok_or(SecretError::MissingPrefix {
                expected: WHSEC_PREFIX,
            })?;
        Self::from_base64(b64)
    }

    /// Parses standard base64 (padded or not) of 24 to 64 bytes, without the `whsec_` prefix.
    ///
    /// ```
    /// use webhook_core::Secret;
    /// assert_eq!(Secret::from_base64("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?.len(), 24);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`SecretError::InvalidBase64`] or [`SecretError::InvalidLength`].
    pub fn from_base64(b64: &str) -> Result<Self, SecretError> {
        if b64.is_empty() {
            return Err(SecretError::Empty);
        }
        let bytes = Zeroizing::new(
            PADDING_OPTIONAL
                .decode(b64.as_bytes())
                .map_err(|_| SecretError::InvalidBase64)?,
        );
        if !(WHSEC_MIN_LEN..=WHSEC_MAX_LEN).contains(&bytes.len()) {
            return Err(SecretError::InvalidLength {
                len: bytes.len(),
                min: WHSEC_MIN_LEN,
                max: WHSEC_MAX_LEN,
            });
        }
        Ok(Self(bytes))
    }

    /// Formats the secret as `whsec_<base64>` (for handing it to a receiver). The returned
    /// string is zeroized on drop as well.
    ///
    /// ```
    /// use webhook_core::Secret;
    /// let text = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    /// assert_eq!(Secret::from_whsec(text)?.to_whsec().as_str(), text);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_whsec(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(
            WHSEC_PREFIX.len() + self.0.len().div_ceil(3) * 4,
        ));
        out.push_str(WHSEC_PREFIX);
        STANDARD.encode_string(self.0.as_slice(), &mut out);
        out
    }

    /// The key bytes. Keep the borrow short and never log it.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Length of the key in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: a `Secret` is never empty. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whsec_lengths_are_enforced() {
        let b23 = STANDARD.encode([7u8; 23]);
        let b24 = STANDARD.encode([7u8; 24]);
        let b64 = STANDARD.encode([7u8; 64]);
        let b65 = STANDARD.encode([7u8; 65]);
        assert_eq!(
            Secret::from_whsec(&format!("whsec_{b23}")).unwrap_err(),
            SecretError::InvalidLength {
                len: 23,
                min: 24,
                max: 64
            }
        );
        assert_eq!(
            Secret::from_whsec(&format!("whsec_{b24}")).unwrap().len(),
            24
        );
        assert_eq!(
            Secret::from_whsec(&format!("whsec_{b64}")).unwrap().len(),
            64
        );
        assert!(matches!(
            Secret::from_whsec(&format!("whsec_{b65}")),
            Err(SecretError::InvalidLength { len: 65, .. })
        ));
    }

    #[test]
    fn bad_text_is_a_typed_error() {
        assert_eq!(
            Secret::from_whsec("whsec_").unwrap_err(),
            SecretError::Empty
        );
        assert_eq!(
            Secret::from_whsec("whsec_!!!!").unwrap_err(),
            SecretError::InvalidBase64
        );
        // unpadded base64 is read as the peers read it: the same key as padded
        let padded = STANDARD.encode([1u8; 25]);
        let unpadded = padded.trim_end_matches('=').to_owned();
        assert_ne!(padded, unpadded);
        assert_eq!(
            Secret::from_base64(&unpadded).unwrap().expose_secret(),
            Secret::from_base64(&padded).unwrap().expose_secret()
        );
        // non-canonical trailing bits stay refused
        let mut loose = unpadded.clone().into_bytes();
        let last = loose.len() - 1;
        loose[last] = b'B'; // sets bits the 25th byte does not have
        assert_eq!(
            Secret::from_base64(std::str::from_utf8(&loose).unwrap()).unwrap_err(),
            SecretError::InvalidBase64
        );
        assert_eq!(
            Secret::from_bytes(Vec::new()).unwrap_err(),
            SecretError::Empty
        );
    }

    #[test]
    fn debug_and_errors_never_show_the_secret() {
        let s = Secret::from_bytes("hunter2-hunter2").unwrap();
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", s.clone()), "Secret(***)");
        let e = Secret::from_whsec("whsec_hunter2hunter2").unwrap_err();
        assert!(!format!("{e} {e:?}").contains("hunter2"));
    }
}
