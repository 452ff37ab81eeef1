//! Verification of signed webhooks, over raw bytes, in constant time, without allocating.
//!
//! For HMAC schemes the hot path streams id, separators, timestamp and body into a clone of a
//! pre-keyed HMAC state (no copy of the body, no string building), decodes each signature of the
//! header into a stack buffer and compares the decoded bytes in constant time. Every signature
//! entry is tried against every key live at `now` (rotation), and the timestamp is checked
//! against a replay window set separately for the past and the future, before any hashing.
//!
//! Ed25519 schemes need the signed content in one buffer, so they allocate it once per message.
//!
//! # Rules
//! * `now` is the caller's clock; this crate never reads it. Timestamps are compared in whole
//!   seconds (`now` truncated) and the bounds are inclusive: with the default 300 s window, a
//!   timestamp exactly 300 s old or ahead is accepted, 301 s is refused.
//! * Hex signatures must be lowercase and base64 ones canonical padded standard base64, so that
//!   every change of the text is a change of the signature.
//! * A malformed entry does not hide a valid one: entries that do not decode are skipped, and the
//!   header is reported as malformed only when no entry with the scheme's prefix decodes.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName};
use subtle::ConstantTimeEq;

use super::codec::{self, MAX_SIG_LEN};
use super::keys::{self, KeyState, LoadedKey, Purpose};
use super::scheme::hmac_tag;
use crate::{
    HandshakeReply, KeyRing, KeyRingError, Scheme, SignatureEncoding, SignatureFormat,
    TimestampSource, Tolerance,
};

/// Why a message was refused. Variants are stable reasons a receiver can act on (answer 400 or
/// 401, log, alert); none carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A header the scheme needs is absent.
    #[error("missing header `{header}`")]
    MissingHeader {
        /// The header.
        header: HeaderName,
    },
    /// A header is present but unusable.
    #[error("malformed header `{header}`: {reason}")]
    MalformedHeader {
        /// The header.
        header: HeaderName,
        /// What is wrong.
        reason: &'static str,
    },
    /// The signature header holds no entry with the scheme's prefix (e.g. only `v2,` entries
    /// for a `v1,` scheme, or `sha1=` where `sha256=` is expected).
    #[error("header `{header}` holds no signature of a supported version")]
    UnsupportedVersion {
        /// The signature header.
        header: HeaderName,
    },
    /// Signatures were well-formed but none matches any live key: wrong secret, altered body,
    /// id or timestamp.
    #[error("no signature matches any live key")]
    NoMatchingSignature,
    /// The timestamp is further in the past than the tolerance allows (possible replay).
    #[error("the message is {age_secs} s old, more than the {tolerance_secs} s allowed")]
    TooOld {
        /// How old the message is, in seconds.
        age_secs: u64,
        /// The allowed age.
        tolerance_secs: u64,
    },
    /// The timestamp is further in the future than the tolerance allows.
    #[error(
        "the message is {ahead_secs} s in the future, more than the {tolerance_secs} s allowed"
    )]
    InFuture {
        /// How far ahead the timestamp is, in seconds.
        ahead_secs: u64,
        /// The allowed lead.
        tolerance_secs: u64,
    },
    /// Every key of the ring has expired at `now`.
    #[error("no key is live at this time")]
    NoLiveKey,
}

impl VerifyError {
    /// Whether the refusal is about the replay window ([`TooOld`](Self::TooOld) or
    /// [`InFuture`](Self::InFuture)): a clock problem rather than a forgery.
    pub fn is_timestamp(&self) -> bool {
        matches!(self, Self::TooOld { .. } | Self::InFuture { .. })
    }
}

/// Whether and how the timestamp is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimestampCheck {
    /// Refuse timestamps outside the window.
    Enforce(Tolerance),
    /// Accept any timestamp (replaying stored messages, tests). The timestamp is still parsed
    /// and still signed.
    Ignore,
}

/// A message that passed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified<'h> {
    id: Option<&'h str>,
    timestamp: Option<u64>,
    key_index: usize,
}

impl<'h> Verified<'h> {
    /// The message id (deduplication key), for schemes that carry one.
    pub fn id(&self) -> Option<&'h str> {
        self.id
    }

    /// The signed timestamp in unix seconds, for schemes that carry one.
    pub fn timestamp(&self) -> Option<u64> {
        self.timestamp
    }

    /// Index in the [`KeyRing`] of the key whose signature matched.
    pub fn key_index(&self) -> usize {
        self.key_index
    }
}

/// Verifies messages of one scheme against the live keys of a ring.
///
/// For HMAC schemes the hot path streams id, separators, timestamp and body into a clone of a
/// pre-keyed HMAC state (no copy of the body, no string building), decodes each signature of the
/// header into a stack buffer and compares the decoded bytes in constant time. Every signature
/// entry is tried against every key live at `now` (rotation), and the timestamp is checked
/// against a replay window set separately for the past and the future, before any hashing.
///
/// Ed25519 schemes need the signed content in one buffer, so they allocate it once per message.
///
/// # Rules
/// * `now` is the caller's clock; this crate never reads it. Timestamps are compared in whole
///   seconds (`now` truncated) and the bounds are inclusive: with the default 300 s window, a
///   timestamp exactly 300 s old or ahead is accepted, 301 s is refused.
/// * Hex signatures must be lowercase and base64 ones canonical padded standard base64, so that
///   every change of the text is a change of the signature.
/// * A malformed entry does not hide a valid one: entries that do not decode are skipped, and the
///   header is reported as malformed only when no entry with the scheme's prefix decodes.
///
/// Build it once per configuration: HMAC keys are absorbed into keyed states at construction
/// and each message clones a state instead of re-hashing the key. Those keyed states are
/// derived from the secret (they cannot give the key back, but can compute MACs) and `hmac`
/// 0.12 cannot zeroize them; the secrets themselves stay in zeroizing [`Secret`](crate::Secret)s.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use webhook_core::{KeyRing, Scheme, Secret, Verifier, VerifyError};
///
/// let ring = KeyRing::single(Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?);
/// let verifier = Verifier::new(Scheme::standard_webhooks(), &ring)?;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".parse()?);
/// headers.insert("webhook-timestamp", "1614265330".parse()?);
/// headers.insert("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".parse()?);
/// let body = br#"{"test": 2432232314}"#;
///
/// let now = UNIX_EPOCH + Duration::from_secs(1614265330 + 10);
/// let ok = verifier.verify(&headers, body, now)?;
/// assert_eq!((ok.timestamp(), ok.key_index()), (Some(1614265330), 0));
///
/// let late = now + Duration::from_secs(3600);
/// assert!(matches!(verifier.verify(&headers, body, late), Err(VerifyError::TooOld { .. })));
/// assert!(verifier.clone().ignore_timestamp().verify(&headers, body, late).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    scheme: Scheme,
    keys: Vec<LoadedKey>,
    timestamps: TimestampCheck,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("scheme", &self.scheme.name())
            .field("keys", &self.keys)
            .field("timestamps", &self.timestamps)
            .finish()
    }
}

/// Iterator over the entries of a signature header that carry the scheme's prefix, yielding
/// the text after the prefix.
#[derive(Clone, Copy)]
struct Candidates<'a> {
    rest: Option<&'a [u8]>,
    separator: Option<u8>,
    trim: bool,
    prefix: &'a [u8],
}

impl<'a> Iterator for Candidates<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let rest = self.rest?;
            let (entry, tail) = match self.separator {
                None => (rest, None),
                Some(sep) => match rest.iter().position(|b| *b == sep) {
                    Some(i) => (rest.get(..i)?, rest.get(i + 1..)),
                    None => (rest, None),
                },
            };
            self.rest = tail;
            let entry = if self.trim { entry.trim_ascii() } else { entry };
            if let Some(sig) = entry.strip_prefix(self.prefix) {
                return Some(sig);
            }
        }
    }
}

impl Verifier {
    /// Binds `scheme` to the keys of `ring`, with the scheme's default tolerance.
    ///
    /// # Errors
    /// [`KeyRingError::Empty`] or [`KeyRingError::WrongKeyKind`].
    pub fn new(scheme: Scheme, ring: &KeyRing) -> Result<Self, KeyRingError> {
        let keys = keys::load(&scheme, ring, Purpose::Verify)?;
        let timestamps = TimestampCheck::Enforce(scheme.tolerance());
        Ok(Self {
            scheme,
            keys,
            timestamps,
        })
    }

    /// Sets the replay window.
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Tolerance) -> Self {
        self.timestamps = TimestampCheck::Enforce(tolerance);
        self
    }

    /// Accepts any timestamp (explicit opt-out, e.g. to replay stored messages or in tests).
    #[must_use]
    pub fn ignore_timestamp(mut self) -> Self {
        self.timestamps = TimestampCheck::Ignore;
        self
    }

    /// The scheme.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// The answer to a registration handshake ([`Scheme::handshake`]) when `body` is one, for a
    /// request this verifier accepted: `key_index` is its [`Verified::key_index`] (Zoom's answer
    /// is keyed with that key). `None` when the scheme has no handshake or `body` is not its
    /// request. Call it only after [`verify`](Self::verify) succeeded on the same body: an
    /// unverified request must get no answer.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use webhook_core::{KeyRing, Scheme, Secret, Signer, Verifier};
    ///
    /// let ring = KeyRing::single(Secret::from_bytes("zoom secret token")?);
    /// let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    /// let mut headers = http::HeaderMap::new();
    /// Signer::new(Scheme::zoom(), &ring)?.sign("", 1_654_503_849, body, &mut headers)?;
    /// let verifier = Verifier::new(Scheme::zoom(), &ring)?;
    /// let ok = verifier.verify(&headers, body, UNIX_EPOCH + Duration::from_secs(1_654_503_850))?;
    /// let reply = verifier.answer_handshake(ok.key_index(), body).ok_or("a handshake")?;
    /// let answer: serde_json::Value = serde_json::from_slice(reply.body())?;
    /// assert_eq!(answer["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
    /// assert_eq!(answer["encryptedToken"].as_str().map(str::len), Some(64));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn answer_handshake(&self, key_index: usize, body: &[u8]) -> Option<HandshakeReply> {
        let handshake = self.scheme.handshake()?;
        let key = self.keys.iter().find(|k| k.index == key_index);
        handshake.answer(body, key)
    }

    /// How timestamps are checked.
    pub fn timestamp_check(&self) -> TimestampCheck {
        self.timestamps
    }

    fn header<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<&'h [u8], VerifyError> {
        headers
            .get(name)
            .map(|v| v.as_bytes())
            .ok_or_else(|| VerifyError::MissingHeader {
                header: name.clone(),
            })
    }

    /// Verifies `body` (the raw bytes as received) against `headers` at `now`.
    ///
    /// # Errors
    /// [`VerifyError`] with the reason.
    pub fn verify<'h>(
        &self,
        headers: &'h HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Verified<'h>, VerifyError> {
        let scheme = &self.scheme;
        let sig_name = scheme.signature_header();
        let malformed = |header: &HeaderName, reason| VerifyError::MalformedHeader {
            header: header.clone(),
            reason,
        };
        let sig_value = Self::header(headers, sig_name)?;
        if sig_value.is_empty() {
            return Err(malformed(sig_name, "empty"));
        }

        let id = match scheme.id_header() {
            None => None,
            Some(name) => {
                let raw = Self::header(headers, name)?;
                if raw.is_empty() {
                    return Err(malformed(name, "empty"));
                }
                let text = std::str::from_utf8(raw)
                    .ok()
                    .filter(|_| super::scheme::id_is_valid(raw))
                    .ok_or_else(|| malformed(name, "not printable ASCII"))?;
                Some(text)
            }
        };

        let (ts_raw, ts_header) = match scheme.timestamp_source() {
            TimestampSource::None => (None, sig_name),
            TimestampSource::Header(name) => (Some(Self::header(headers, name)?), name),
            TimestampSource::SignatureEntry(key) => {
                let mut found = None;
                let entries = Candidates {
                    rest: Some(sig_value),
                    separator: Some(b','),
                    trim: true,
                    prefix: key.as_bytes(),
                };
                for t in entries {
                    if found.replace(t).is_some() {
                        return Err(malformed(sig_name, "several timestamps"));
                    }
                }
                (
                    Some(found.ok_or_else(|| malformed(sig_name, "no timestamp entry"))?),
                    sig_name,
                )
            }
        };
        let timestamp = match ts_raw {
            None => None,
            Some(raw) => Some(
                codec::parse_unix_secs(raw)
                    .ok_or_else(|| malformed(ts_header, "not unix seconds"))?,
            ),
        };
        if let (Some(ts), TimestampCheck::Enforce(tol)) = (timestamp, self.timestamps) {
            let now_secs = now
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if now_secs > ts {
                let age = now_secs - ts;
                if age > tol.past.as_secs() {
                    return Err(VerifyError::TooOld {
                        age_secs: age,
                        tolerance_secs: tol.past.as_secs(),
                    });
                }
            } else if ts - now_secs > tol.future.as_secs() {
                return Err(VerifyError::InFuture {
                    ahead_secs: ts - now_secs,
                    tolerance_secs: tol.future.as_secs(),
                });
            }
        }

        let (separator, trim) = match scheme.format() {
            SignatureFormat::Single => (None, false),
            SignatureFormat::SpaceSeparated => (Some(b' '), false),
            SignatureFormat::CommaSeparated => (Some(b','), true),
        };
        let candidates = Candidates {
            rest: Some(sig_value),
            separator,
            trim,
            prefix: scheme.prefix().as_bytes(),
        };
        if candidates_is_empty(&candidates) {
            return Err(VerifyError::UnsupportedVersion {
                header: sig_name.clone(),
            });
        }

        let id_bytes = id.map(str::as_bytes).unwrap_or_default();
        let ts_bytes = ts_raw.unwrap_or_default();
        let expected_len = scheme.algorithm().output_len();
        let encoding = scheme.encoding();
        let mut any_live = false;
        let mut any_decoded = false;
        #[cfg(feature = "ed25519")]
        let mut content: Option<Vec<u8>> = None;
        for key in self.keys.iter().filter(|k| k.is_live_at(now)) {
            any_live = true;
            let matched = match &key.state {
                KeyState::HmacSha256(m) => {
                    let tag = hmac_tag(m, scheme, id_bytes, ts_bytes, body);
                    any_candidate(
                        &candidates,
                        encoding,
                        expected_len,
                        &mut any_decoded,
                        |sig| ct_bytes_eq(tag.as_slice(), sig),
                    )
                }
                KeyState::HmacSha1(m) => {
                    let tag = hmac_tag(m, scheme, id_bytes, ts_bytes, body);
                    any_candidate(
                        &candidates,
                        encoding,
                        expected_len,
                        &mut any_decoded,
                        |sig| ct_bytes_eq(tag.as_slice(), sig),
                    )
                }
                #[cfg(feature = "ed25519")]
                KeyState::Ed25519Verifying(vk) => {
                    let msg = content.get_or_insert_with(|| {
                        super::scheme::content_bytes(scheme, id_bytes, ts_bytes, body)
                    });
                    any_candidate(
                        &candidates,
                        encoding,
                        expected_len,
                        &mut any_decoded,
                        |sig| {
                            <[u8; 64]>::try_from(sig).is_ok_and(|bytes| {
                                vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&bytes))
                                    .is_ok()
                            })
                        },
                    )
                }
                // `keys::load` never yields signing keys for a verifier.
                #[cfg(feature = "ed25519")]
                KeyState::Ed25519Signing(_) => false,
            };
            if matched {
                return Ok(Verified {
                    id,
                    timestamp,
                    key_index: key.index,
                });
            }
        }
        if !any_live {
            return Err(VerifyError::NoLiveKey);
        }
        if !any_decoded {
            return Err(malformed(
                sig_name,
                match encoding {
                    SignatureEncoding::Hex => {
                        "signature is not lowercase hex of the expected length"
                    }
                    SignatureEncoding::Base64 => "signature is not base64 of the expected length",
                },
            ));
        }
        Err(VerifyError::NoMatchingSignature)
    }
}

/// Length-checked constant-time equality: the lengths are public (fixed by the algorithm), the
/// contents are folded with OR of XORs (no data-dependent branch) and the final test goes through
/// `subtle`. Cheaper than `subtle`'s per-byte slice comparison, with the same guarantee.
fn ct_bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    diff.ct_eq(&0u8).into()
}

fn candidates_is_empty(c: &Candidates<'_>) -> bool {
    let mut copy = *c;
    copy.next().is_none()
}

/// Decodes each candidate into a stack buffer and tests it with `check`; notes in
/// `any_decoded` whether any candidate decoded to the expected length.
fn any_candidate(
    candidates: &Candidates<'_>,
    encoding: SignatureEncoding,
    expected_len: usize,
    any_decoded: &mut bool,
    mut check: impl FnMut(&[u8]) -> bool,
) -> bool {
    let mut buf = [0u8; MAX_SIG_LEN + 32];
    let mut matched = false;
    for text in *candidates {
        let len = match encoding {
            SignatureEncoding::Hex => codec::hex_decode(text, &mut buf),
            SignatureEncoding::Base64 => codec::base64_decode(text, &mut buf),
        };
        let Some(sig) = len
            .filter(|n| *n == expected_len)
            .and_then(|n| buf.get(..n))
        else {
            continue;
        };
        *any_decoded = true;
        // Keep trying the remaining entries after a match: the work done does not depend on
        // which entry matched.
        matched |= check(sig);
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_equality() {
        assert!(ct_bytes_eq(b"abc", b"abc"));
        assert!(!ct_bytes_eq(b"abc", b"abd"));
        assert!(!ct_bytes_eq(b"abc", b"ab"));
        assert!(ct_bytes_eq(b"", b""));
    }

    #[test]
    fn candidates_split_and_filter() {
        let c = Candidates {
            rest: Some(b"v1,a v2,b  v1,c"),
            separator: Some(b' '),
            trim: false,
            prefix: b"v1,",
        };
        let all: Vec<&[u8]> = Candidates { ..c }.collect();
        assert_eq!(all, vec![&b"a"[..], &b"c"[..]]);
        let c = Candidates {
            rest: Some(b"t=1, v1=aa ,v0=bb"),
            separator: Some(b','),
            trim: true,
            prefix: b"v1=",
        };
        assert_eq!(c.collect::<Vec<_>>(), vec![&b"aa"[..]]);
        let c = Candidates {
            rest: Some(b"sha256=ff"),
            separator: None,
            trim: false,
            prefix: b"sha256=",
        };
        assert_eq!(c.collect::<Vec<_>>(), vec![&b"ff"[..]]);
    }
}
