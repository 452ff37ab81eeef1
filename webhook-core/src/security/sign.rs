//! Signing: one general mechanism, many presets.
//!
//! A [`Scheme`] describes a sender's signature (its parts and presets live in the sibling
//! `scheme` module, shared with verification); a [`Signer`] binds a scheme to a [`KeyRing`] and writes the id, timestamp
//! and signature headers of each delivery attempt.
//!
//! # Driving contract
//! Build the `Signer` once (keys are loaded and HMAC states keyed there), then call
//! [`Signer::sign`] for every attempt with the event's stable id and the *attempt's* timestamp
//! (unix seconds from your clock: this crate never reads it). Keys are live at that timestamp.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};

use super::codec::{self, MAX_ENCODED_LEN, MAX_SIG_LEN};
use super::keys::{self, KeyState, LoadedKey, Purpose};
#[cfg(feature = "ed25519")]
use super::scheme::content_bytes;
use super::scheme::{hmac_tag, id_is_valid};
use crate::{KeyRing, KeyRingError, Scheme, SignatureEncoding, SignatureFormat, TimestampSource};

/// Why a message could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The scheme signs a message id and the id is empty.
    #[error("the message id is empty")]
    EmptyId,
    /// The id cannot travel in a header unchanged: only visible ASCII and inner spaces are
    /// allowed (no control characters, no non-ASCII, no leading or trailing whitespace).
    #[error("the message id is not a valid header value (visible ASCII, no surrounding spaces)")]
    InvalidId,
    /// No key of the ring is live at the signing timestamp.
    #[error("no key is live at timestamp {timestamp}")]
    NoLiveKey {
        /// The signing timestamp (unix seconds).
        timestamp: u64,
    },
}

/// Signs messages with one scheme and every live key of a ring.
///
/// A [`Scheme`] describes a sender's signature (its parts and presets live in the sibling
/// `scheme` module, shared with verification); a [`Signer`] binds a scheme to a [`KeyRing`] and writes the id, timestamp
/// and signature headers of each delivery attempt.
///
/// # Driving contract
/// Build the `Signer` once (keys are loaded and HMAC states keyed there), then call
/// [`Signer::sign`] for every attempt with the event's stable id and the *attempt's* timestamp
/// (unix seconds from your clock: this crate never reads it). Keys are live at that timestamp.
///
/// Like [`Verifier`](crate::Verifier), it keys HMAC states once at construction (see there for
/// how that key material is held).
///
/// ```
/// use webhook_core::{KeyRing, Scheme, Secret, Signer};
///
/// let signer = Signer::new(Scheme::stripe(), &KeyRing::single(Secret::from_bytes("whsec_test")?))?;
/// let mut headers = http::HeaderMap::new();
/// signer.sign("evt_1", 1_700_000_000, b"{}", &mut headers)?;
/// assert!(headers["stripe-signature"].to_str()?.starts_with("t=1700000000,v1="));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Signer {
    scheme: Scheme,
    keys: Vec<LoadedKey>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("scheme", &self.scheme.name())
            .field("keys", &self.keys)
            .finish()
    }
}

/// An encoded signature in a stack buffer.
struct Encoded {
    buf: [u8; MAX_ENCODED_LEN],
    len: usize,
}

impl Encoded {
    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

fn encode(encoding: SignatureEncoding, raw: &[u8]) -> Encoded {
    let mut buf = [0u8; MAX_ENCODED_LEN];
    let len = match encoding {
        SignatureEncoding::Hex => codec::hex_encode(raw, &mut buf),
        SignatureEncoding::Base64 => codec::base64_encode(raw, &mut buf),
    };
    Encoded { buf, len }
}

impl Signer {
    /// Binds `scheme` to the keys of `ring` (HMAC states are keyed here, once).
    ///
    /// # Errors
    /// [`KeyRingError::Empty`], [`KeyRingError::VerifyOnlyAlgorithm`] (HMAC-SHA1), or
    /// [`KeyRingError::WrongKeyKind`] (e.g. an Ed25519 public key, or an HMAC secret for an
    /// Ed25519 scheme).
    pub fn new(scheme: Scheme, ring: &KeyRing) -> Result<Self, KeyRingError> {
        let keys = keys::load(&scheme, ring, Purpose::Sign)?;
        Ok(Self { scheme, keys })
    }

    /// The scheme.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// Signs one delivery attempt: writes (replacing) the scheme's id header (if any),
    /// timestamp header (if any) and signature header into `headers`.
    ///
    /// `id` is the event's stable id (same on every retry); `timestamp_secs` the attempt time
    /// in unix seconds. Keys are chosen live at `timestamp_secs`; list formats get one entry per
    /// live key, [`SignatureFormat::Single`] the first live key's.
    ///
    /// # Errors
    /// [`SignError`] if the id cannot be sent or no key is live.
    pub fn sign(
        &self,
        id: &str,
        timestamp_secs: u64,
        body: &[u8],
        headers: &mut HeaderMap,
    ) -> Result<(), SignError> {
        let value = self.signature(id, timestamp_secs, body)?;
        if let Some(name) = self.scheme.id_header() {
            // `signature` has validated the id already.
            let id_value = HeaderValue::from_str(id).map_err(|_| SignError::InvalidId)?;
            headers.insert(name.clone(), id_value);
        }
        if let Some(name) = self.scheme.timestamp_header() {
            headers.insert(name.clone(), HeaderValue::from(timestamp_secs));
        }
        headers.insert(self.scheme.signature_header().clone(), value);
        Ok(())
    }

    /// The value of the signature header alone (what [`sign`](Self::sign) writes under
    /// [`Scheme::signature_header`]).
    ///
    /// ```
    /// use webhook_core::{KeyRing, Scheme, Secret, Signer};
    /// let signer = Signer::new(Scheme::github(), &KeyRing::single(Secret::from_bytes("It's a Secret to Everybody")?))?;
    /// assert_eq!(signer.signature("", 0, b"Hello, World!")?,
    ///            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`sign`](Self::sign).
    pub fn signature(
        &self,
        id: &str,
        timestamp_secs: u64,
        body: &[u8],
    ) -> Result<HeaderValue, SignError> {
        let uses_id = self.scheme.signed_content().uses_id();
        if uses_id && id.is_empty() {
            return Err(SignError::EmptyId);
        }
        if uses_id && !id_is_valid(id.as_bytes()) {
            return Err(SignError::InvalidId);
        }
        let at = UNIX_EPOCH
            .checked_add(Duration::from_secs(timestamp_secs))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut ts_buf = [0u8; 20];
        let ts = codec::format_u64(timestamp_secs, &mut ts_buf);
        let mut live = self.keys.iter().filter(|k| k.is_live_at(at)).peekable();
        if live.peek().is_none() {
            return Err(SignError::NoLiveKey {
                timestamp: timestamp_secs,
            });
        }
        let prefix = self.scheme.prefix().as_bytes();
        let mut out = Vec::with_capacity(self.keys.len() * (prefix.len() + MAX_ENCODED_LEN) + 24);
        let separator = match self.scheme.format() {
            SignatureFormat::Single => None,
            SignatureFormat::SpaceSeparated => Some(b' '),
            SignatureFormat::CommaSeparated => Some(b','),
        };
        if let TimestampSource::SignatureEntry(key) = self.scheme.timestamp_source() {
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(ts);
        }
        #[cfg(feature = "ed25519")]
        let mut content: Option<Vec<u8>> = None;
        for key in live {
            let mut raw = [0u8; MAX_SIG_LEN];
            let raw_len = match &key.state {
                KeyState::HmacSha256(m) => copy(
                    &mut raw,
                    &hmac_tag(m, &self.scheme, id.as_bytes(), ts, body),
                ),
                KeyState::HmacSha1(m) => copy(
                    &mut raw,
                    &hmac_tag(m, &self.scheme, id.as_bytes(), ts, body),
                ),
                #[cfg(feature = "ed25519")]
                KeyState::Ed25519Signing(k) => {
                    use ed25519_dalek::Signer as _;
                    let msg = content.get_or_insert_with(|| {
                        content_bytes(&self.scheme, id.as_bytes(), ts, body)
                    });
                    copy(&mut raw, &k.sign(msg).to_bytes())
                }
                // `keys::load` never yields verifying keys for a signer.
                #[cfg(feature = "ed25519")]
                KeyState::Ed25519Verifying(_) => continue,
            };
            let encoded = encode(
                self.scheme.encoding(),
                raw.get(..raw_len).unwrap_or_default(),
            );
            if !out.is_empty()
                && let Some(sep) = separator
            {
                out.push(sep);
            }
            out.extend_from_slice(prefix);
            out.extend_from_slice(encoded.as_bytes());
            if separator.is_none() {
                break;
            }
        }
        // Prefixes are validated printable ASCII and encodings are ASCII, so this cannot fail;
        // map defensively rather than panic.
        HeaderValue::from_bytes(&out).map_err(|_| SignError::InvalidId)
    }
}

fn copy(dst: &mut [u8; MAX_SIG_LEN], src: &[u8]) -> usize {
    let n = src.len().min(dst.len());
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    #[test]
    fn ids_are_checked() {
        let s = Signer::new(
            Scheme::standard_webhooks(),
            &KeyRing::single(Secret::from_bytes("k").unwrap()),
        )
        .unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(s.sign("", 1, b"", &mut h), Err(SignError::EmptyId));
        assert_eq!(s.sign(" a", 1, b"", &mut h), Err(SignError::InvalidId));
        assert_eq!(s.sign("a\n", 1, b"", &mut h), Err(SignError::InvalidId));
        assert_eq!(s.sign("é", 1, b"", &mut h), Err(SignError::InvalidId));
        assert!(s.sign("a b", 1, b"", &mut h).is_ok());
        assert!(h.is_empty() || h.contains_key("webhook-id"));
        // Stripe does not sign an id, so any id is fine (and not written)
        let stripe = Signer::new(
            Scheme::stripe(),
            &KeyRing::single(Secret::from_bytes("k").unwrap()),
        )
        .unwrap();
        let mut h = HeaderMap::new();
        stripe.sign("", 1, b"", &mut h).unwrap();
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn list_formats_carry_one_entry_per_live_key() {
        let ring = KeyRing::new()
            .with_key(Secret::from_bytes("a").unwrap())
            .with_key(Secret::from_bytes("b").unwrap())
            .with_key_until(Secret::from_bytes("c").unwrap(), UNIX_EPOCH);
        let sw = Signer::new(Scheme::standard_webhooks(), &ring).unwrap();
        let v = sw.signature("m", 5, b"x").unwrap();
        assert_eq!(v.to_str().unwrap().split(' ').count(), 2);
        let stripe = Signer::new(Scheme::stripe(), &ring).unwrap();
        let v = stripe.signature("m", 5, b"x").unwrap();
        let v = v.to_str().unwrap();
        assert!(v.starts_with("t=5,v1="));
        assert_eq!(v.matches("v1=").count(), 2);
        let gh = Signer::new(Scheme::github(), &ring).unwrap();
        let v = gh.signature("m", 5, b"x").unwrap();
        assert_eq!(v.len(), "sha256=".len() + 64);
        let expired = KeyRing::new().with_key_until(Secret::from_bytes("a").unwrap(), UNIX_EPOCH);
        let s = Signer::new(Scheme::github(), &expired).unwrap();
        assert_eq!(
            s.signature("m", 0, b""),
            Err(SignError::NoLiveKey { timestamp: 0 })
        );
    }
}
