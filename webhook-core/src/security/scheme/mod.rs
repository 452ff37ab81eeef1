//! The one general description of a signature scheme.
//!
//! Every sender in the field is a point in the same space: an [`Algorithm`], a
//! [`SignedContent`] template, an [`SignatureEncoding`], a prefix, header names, a [`SignatureFormat`]
//! for several signatures, and a [`TimestampSource`] with a default [`Tolerance`]. The presets
//! ([`Scheme::standard_webhooks`], [`Scheme::github`], ...) are values of this type, and users
//! describe any other sender with [`Scheme::builder`].

mod presets;

#[cfg(test)]
pub(crate) use presets::PRESET_HEADERS;
pub(crate) use presets::is_sdk_signature_header;

use std::borrow::Cow;
use std::time::Duration;

use hmac::Mac;
use http::HeaderName;

use crate::{Handshake, SecretFormat};

/// The MAC or signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC with SHA-256 (32-byte tags). Signs and verifies.
    HmacSha256,
    /// HMAC with SHA-1 (20-byte tags), for verifying legacy senders only (e.g. GitHub's
    /// `X-Hub-Signature`). A [`Signer`](crate::Signer) refuses it.
    HmacSha1,
    /// Ed25519 (64-byte signatures) over the signed content (feature `ed25519`).
    #[cfg(feature = "ed25519")]
    Ed25519,
}

impl Algorithm {
    /// Length in bytes of a tag or signature.
    pub fn output_len(self) -> usize {
        match self {
            Self::HmacSha256 => 32,
            Self::HmacSha1 => 20,
            #[cfg(feature = "ed25519")]
            Self::Ed25519 => 64,
        }
    }

    /// Whether this crate signs with the algorithm (everything but HMAC-SHA1).
    pub fn can_sign(self) -> bool {
        !matches!(self, Self::HmacSha1)
    }

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Self::HmacSha256 => "HMAC-SHA256",
            Self::HmacSha1 => "HMAC-SHA1",
            #[cfg(feature = "ed25519")]
            Self::Ed25519 => "Ed25519",
        }
    }
}

/// How signature bytes are written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureEncoding {
    /// Lowercase hex. Verification accepts lowercase only, the canonical form every listed
    /// sender emits, so that any change to the text changes the decoded bytes.
    Hex,
    /// Standard alphabet, padded base64 (canonical: non-zero trailing bits are refused).
    Base64,
}

/// How several signatures share one header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureFormat {
    /// One signature: the header value is `{prefix}{signature}` (GitHub, Slack, Shopify, ...).
    /// A signer uses the first live key.
    Single,
    /// Space-separated `{prefix}{signature}` entries (Standard Webhooks `v1,<b64> v1,<b64>`).
    /// Entries with another prefix (another version) are skipped.
    SpaceSeparated,
    /// Comma-separated entries (Stripe `t=<ts>,v1=<hex>,v1=<hex>`); entries not starting with
    /// the prefix (or the timestamp key) are skipped.
    CommaSeparated,
}

/// Where the signing timestamp travels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimestampSource {
    /// The scheme has no timestamp (GitHub, Shopify, Soveren): no replay window.
    None,
    /// A header of its own holding unix seconds (Standard Webhooks, Slack, Zoom, Discord).
    Header(HeaderName),
    /// An entry of a comma-separated signature header starting with this key, e.g. `t=`
    /// (Stripe).
    SignatureEntry(Cow<'static, str>),
}

/// The accepted distance between a message's timestamp and `now`, set separately for the past
/// (message older than `now`) and the future (sender's clock ahead).
///
/// Bounds are inclusive and counted in whole seconds, with `now` truncated to whole seconds: with
/// the default of 300 s, a message exactly 300 s old or 300 s ahead is accepted, 301 s is not.
///
/// ```
/// use std::time::Duration;
/// use webhook_core::{KeyRing, Scheme, Secret, Tolerance, Verifier};
///
/// // Accept messages up to 10 minutes old, but only 30 s ahead of our clock.
/// let verifier = Verifier::new(Scheme::standard_webhooks(), &KeyRing::single(Secret::from_bytes("k")?))?
///     .with_tolerance(Tolerance { past: Duration::from_secs(600), future: Duration::from_secs(30) });
/// assert_eq!(Tolerance::default(), Tolerance::symmetric(Duration::from_secs(300)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tolerance {
    /// How far in the past a timestamp may be.
    pub past: Duration,
    /// How far in the future a timestamp may be.
    pub future: Duration,
}

impl Tolerance {
    /// The default of the Standard Webhooks reference libraries: 300 s either way.
    pub const DEFAULT: Self = Self {
        past: Duration::from_secs(300),
        future: Duration::from_secs(300),
    };

    /// The same window both ways.
    pub fn symmetric(window: Duration) -> Self {
        Self {
            past: window,
            future: window,
        }
    }
}

impl Default for Tolerance {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One piece of the signed content.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Part {
    Id,
    Timestamp,
    Body,
    Literal(Box<[u8]>),
}

/// The template of the bytes that are signed, e.g. `{id}.{ts}.{body}`.
///
/// Placeholders: `{id}` (the message id header), `{ts}` (the timestamp exactly as sent), and
/// `{body}` (the raw body bytes, exactly once); everything else is literal text. Braces are only
/// allowed as part of a placeholder.
///
/// ```
/// use webhook_core::SignedContent;
///
/// let t = SignedContent::parse("v0:{ts}:{body}")?;
/// assert!(t.uses_timestamp() && !t.uses_id());
/// assert!(SignedContent::parse("{ts}").is_err()); // no {body}
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignedContent {
    parts: Box<[Part]>,
    template: Cow<'static, str>,
}

impl SignedContent {
    /// Parses a template.
    ///
    /// # Errors
    /// [`SchemeError::Template`] saying what is wrong.
    pub fn parse(template: &str) -> Result<Self, SchemeError> {
        let mut parts = Vec::new();
        let mut literal = Vec::new();
        let mut bodies = 0;
        let mut rest = template;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('{') {
                let close = after.find('}').ok_or(SchemeError::Template {
                    reason: "`{` without a closing `}`",
                })?;
                let (name, tail) = after.split_at(close);
                let part = match name {
                    "id" => Part::Id,
                    "ts" => Part::Timestamp,
                    "body" => {
                        bodies += 1;
                        Part::Body
                    }
                    _ => {
                        return Err(SchemeError::Template {
                            reason: "unknown placeholder (expected {id}, {ts} or {body})",
                        });
                    }
                };
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal).into()));
                }
                parts.push(part);
                rest = tail.get(1..).unwrap_or_default();
            } else if rest.starts_with('}') {
                return Err(SchemeError::Template {
                    reason: "`}` without an opening `{`",
                });
            } else {
                let next = rest.find(['{', '}']).unwrap_or(rest.len());
                let (lit, tail) = rest.split_at(next);
                literal.extend_from_slice(lit.as_bytes());
                rest = tail;
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal.into()));
        }
        match bodies {
            0 => Err(SchemeError::Template {
                reason: "the template must contain {body}",
            }),
            1 => Ok(Self {
                parts: parts.into(),
                template: Cow::Owned(template.to_owned()),
            }),
            _ => Err(SchemeError::Template {
                reason: "{body} may appear only once",
            }),
        }
    }

    fn preset(template: &'static str, parts: Vec<Part>) -> Self {
        Self {
            parts: parts.into(),
            template: Cow::Borrowed(template),
        }
    }

    /// `{body}`: the raw body (GitHub, Soveren, Shopify).
    pub fn body() -> Self {
        Self::preset("{body}", vec![Part::Body])
    }

    /// `{ts}.{body}` (Stripe).
    pub fn ts_dot_body() -> Self {
        Self::preset(
            "{ts}.{body}",
            vec![Part::Timestamp, Part::Literal(Box::from(*b".")), Part::Body],
        )
    }

    /// `{id}.{ts}.{body}` (Standard Webhooks, Svix).
    pub fn id_dot_ts_dot_body() -> Self {
        Self::preset(
            "{id}.{ts}.{body}",
            vec![
                Part::Id,
                Part::Literal(Box::from(*b".")),
                Part::Timestamp,
                Part::Literal(Box::from(*b".")),
                Part::Body,
            ],
        )
    }

    /// `v0:{ts}:{body}` (Slack, Zoom).
    pub fn v0_colon_ts_colon_body() -> Self {
        Self::preset(
            "v0:{ts}:{body}",
            vec![
                Part::Literal(Box::from(*b"v0:")),
                Part::Timestamp,
                Part::Literal(Box::from(*b":")),
                Part::Body,
            ],
        )
    }

    /// `{ts}{body}` (Discord).
    pub fn ts_body() -> Self {
        Self::preset("{ts}{body}", vec![Part::Timestamp, Part::Body])
    }

    /// The template text.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// Whether `{id}` appears.
    pub fn uses_id(&self) -> bool {
        self.parts.contains(&Part::Id)
    }

    /// Whether `{ts}` appears.
    pub fn uses_timestamp(&self) -> bool {
        self.parts.contains(&Part::Timestamp)
    }

    pub(crate) fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Feeds the content, piece by piece, into `sink` (no copy of the body).
    pub(crate) fn feed(&self, id: &[u8], ts: &[u8], body: &[u8], mut sink: impl FnMut(&[u8])) {
        for part in self.parts() {
            match part {
                Part::Id => sink(id),
                Part::Timestamp => sink(ts),
                Part::Body => sink(body),
                Part::Literal(l) => sink(l),
            }
        }
    }

    /// Total length of the content for the given pieces.
    #[cfg(feature = "ed25519")]
    pub(crate) fn content_len(&self, id: &[u8], ts: &[u8], body: &[u8]) -> usize {
        let mut n = 0usize;
        self.feed(id, ts, body, |p| n = n.saturating_add(p.len()));
        n
    }
}

/// Why a scheme description is invalid (reported by [`SchemeBuilder::build`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemeError {
    /// The signed-content template is invalid.
    #[error("invalid signed-content template: {reason}")]
    Template {
        /// What is wrong.
        reason: &'static str,
    },
    /// A header name is not a valid HTTP header name.
    #[error("invalid {role} header name {name:?}")]
    InvalidHeaderName {
        /// `"signature"`, `"id"` or `"timestamp"`.
        role: &'static str,
        /// The name as given.
        name: String,
    },
    /// No algorithm was chosen.
    #[error("no algorithm was set")]
    MissingAlgorithm,
    /// No signature header was set.
    #[error("no signature header was set")]
    MissingSignatureHeader,
    /// The template uses `{id}` but there is no id header.
    #[error("the template uses {{id}} but no id header was set")]
    MissingIdHeader,
    /// The template uses `{ts}` but the scheme carries no timestamp.
    #[error("the template uses {{ts}} but no timestamp header or entry was set")]
    MissingTimestamp,
    /// The scheme carries a timestamp that is not signed: anyone could change it, so it would
    /// give no replay protection.
    #[error("the timestamp is not part of the signed content (add {{ts}} to the template)")]
    UnsignedTimestamp,
    /// The id header is set but `{id}` is not signed.
    #[error("the id header is not part of the signed content (add {{id}} to the template)")]
    UnsignedId,
    /// The prefix cannot be told apart from the list separators.
    #[error("invalid prefix: {reason}")]
    InvalidPrefix {
        /// What is wrong.
        reason: &'static str,
    },
    /// A timestamp inside the signature header requires [`SignatureFormat::CommaSeparated`].
    #[error("a timestamp entry in the signature header requires the comma-separated format")]
    TimestampEntryNeedsCommaSeparated,
    /// Two roles share one header name.
    #[error("header {name:?} is used for two roles")]
    DuplicateHeader {
        /// The header name.
        name: String,
    },
    /// The secret format reads keys of another algorithm (e.g. Ed25519 keys for HMAC).
    #[error("secret format {format:?} does not read {algorithm} keys")]
    SecretFormat {
        /// The format chosen.
        format: SecretFormat,
        /// The scheme's algorithm.
        algorithm: &'static str,
    },
    /// The handshake cannot be answered with this scheme.
    #[error("the {handshake} handshake does not fit the scheme: {reason}")]
    Handshake {
        /// The handshake's name.
        handshake: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// A complete, validated signature scheme. Cheap to clone.
///
/// # Presets
///
/// The schemes of real senders, as values of the one general [`Scheme`].
///
/// | preset | headers | signed content | algorithm, encoding, prefix | timestamp |
/// | --- | --- | --- | --- | --- |
/// | [`Scheme::standard_webhooks`] | `webhook-id`, `webhook-timestamp`, `webhook-signature` | `{id}.{ts}.{body}` | HMAC-SHA256, base64, `v1,` (space-separated list) | header, 300 s |
/// | `Scheme::standard_webhooks_v1a` | same | same | Ed25519, base64, `v1a,` | header, 300 s |
/// | [`Scheme::svix`] | `svix-id`, `svix-timestamp`, `svix-signature` | `{id}.{ts}.{body}` | HMAC-SHA256, base64, `v1,` | header, 300 s |
/// | [`Scheme::soveren`] | `x-soveren-signature` | `{body}` | HMAC-SHA256, hex, `sha256=` | none |
/// | [`Scheme::github`] | `x-hub-signature-256` | `{body}` | HMAC-SHA256, hex, `sha256=` | none |
/// | [`Scheme::github_legacy_sha1`] (verify only) | `x-hub-signature` | `{body}` | HMAC-SHA1, hex, `sha1=` | none |
/// | [`Scheme::stripe`] | `stripe-signature: t=..,v1=..` | `{ts}.{body}` | HMAC-SHA256, hex, `v1=` (comma list) | `t=` entry, 300 s |
/// | [`Scheme::slack`] | `x-slack-signature`, `x-slack-request-timestamp` | `v0:{ts}:{body}` | HMAC-SHA256, hex, `v0=` | header, 300 s |
/// | [`Scheme::zoom`] | `x-zm-signature`, `x-zm-request-timestamp` | `v0:{ts}:{body}` | HMAC-SHA256, hex, `v0=` | header, 300 s |
/// | [`Scheme::shopify`] | `x-shopify-hmac-sha256` | `{body}` | HMAC-SHA256, base64 | none |
/// | `Scheme::discord` | `x-signature-ed25519`, `x-signature-timestamp` | `{ts}{body}` | Ed25519, hex | header, 300 s |
///
/// Zoom and Discord do not publish a replay window; the presets apply the same 300 s default,
/// which a [`Verifier`](crate::Verifier) can change or switch off.
///
/// Every sender in the field is a point in the same space: an [`Algorithm`], a
/// [`SignedContent`] template, an [`SignatureEncoding`], a prefix, header names, a [`SignatureFormat`]
/// for several signatures, and a [`TimestampSource`] with a default [`Tolerance`]. The presets
/// ([`Scheme::standard_webhooks`], [`Scheme::github`], ...) are values of this type, and users
/// describe any other sender with [`Scheme::builder`].
///
/// Build one from a preset (`Scheme::standard_webhooks()`, `Scheme::stripe()`, ...) or with
/// [`Scheme::builder`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scheme {
    pub(crate) name: Cow<'static, str>,
    pub(crate) algorithm: Algorithm,
    pub(crate) content: SignedContent,
    pub(crate) encoding: SignatureEncoding,
    pub(crate) prefix: Cow<'static, str>,
    pub(crate) format: SignatureFormat,
    pub(crate) signature_header: HeaderName,
    pub(crate) id_header: Option<HeaderName>,
    pub(crate) timestamp: TimestampSource,
    pub(crate) tolerance: Tolerance,
    pub(crate) secret_format: SecretFormat,
    pub(crate) handshake: Option<Handshake>,
}

impl Scheme {
    /// Starts describing a custom scheme. `build()` reports the first problem.
    ///
    /// ```
    /// use webhook_core::{Algorithm, SignatureEncoding, Scheme, SignatureFormat};
    ///
    /// let acme = Scheme::builder("acme")
    ///     .algorithm(Algorithm::HmacSha256)
    ///     .signed_content("{ts}.{body}")
    ///     .encoding(SignatureEncoding::Hex)
    ///     .prefix("sha256=")
    ///     .signature_header("x-acme-signature")
    ///     .timestamp_header("x-acme-timestamp")
    ///     .format(SignatureFormat::Single)
    ///     .build()?;
    /// assert_eq!(acme.signature_header().as_str(), "x-acme-signature");
    ///
    /// let err = Scheme::builder("bad").algorithm(Algorithm::HmacSha256)
    ///     .signed_content("{ts}.{body}").signature_header("x-sig").build();
    /// assert!(err.is_err()); // {ts} without a timestamp source
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(name: impl Into<Cow<'static, str>>) -> SchemeBuilder {
        SchemeBuilder {
            name: name.into(),
            algorithm: None,
            content: None,
            encoding: SignatureEncoding::Base64,
            prefix: Cow::Borrowed(""),
            format: SignatureFormat::Single,
            signature_header: None,
            id_header: None,
            timestamp: BuilderTimestamp::None,
            tolerance: Tolerance::DEFAULT,
            secret_format: None,
            handshake: None,
        }
    }

    /// The scheme's name (e.g. `"standard-webhooks"`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The signed-content template.
    pub fn signed_content(&self) -> &SignedContent {
        &self.content
    }

    /// The text encoding of signatures.
    pub fn encoding(&self) -> SignatureEncoding {
        self.encoding
    }

    /// The prefix of each signature (`v1,`, `sha256=`, ...).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How several signatures share the header.
    pub fn format(&self) -> SignatureFormat {
        self.format
    }

    /// The header carrying the signature(s).
    pub fn signature_header(&self) -> &HeaderName {
        &self.signature_header
    }

    /// The header carrying the message id, if the scheme has one.
    pub fn id_header(&self) -> Option<&HeaderName> {
        self.id_header.as_ref()
    }

    /// Where the timestamp travels.
    pub fn timestamp_source(&self) -> &TimestampSource {
        &self.timestamp
    }

    /// The header carrying the timestamp, if it has one of its own.
    pub fn timestamp_header(&self) -> Option<&HeaderName> {
        match &self.timestamp {
            TimestampSource::Header(h) => Some(h),
            _ => None,
        }
    }

    /// The default replay window of the scheme (a [`Verifier`](crate::Verifier) may override it).
    pub fn tolerance(&self) -> Tolerance {
        self.tolerance
    }

    /// The registration handshake a receiver of this scheme answers, if its sender has one
    /// (Discord's PING, Slack's `url_verification`, Zoom's `endpoint.url_validation`).
    ///
    /// ```
    /// use webhook_core::{Handshake, Scheme};
    /// assert_eq!(Scheme::slack().handshake(), Some(Handshake::SlackUrlVerification));
    /// assert_eq!(Scheme::github().handshake(), None);
    /// ```
    pub fn handshake(&self) -> Option<Handshake> {
        self.handshake
    }

    /// Every header this scheme writes when signing.
    pub fn headers(&self) -> impl Iterator<Item = &HeaderName> {
        std::iter::once(&self.signature_header)
            .chain(self.id_header.as_ref())
            .chain(self.timestamp_header())
    }
}

#[derive(Debug, Clone)]
enum BuilderTimestamp {
    None,
    Header(Cow<'static, str>),
    Entry(Cow<'static, str>),
}

/// Builder of a custom [`Scheme`]. Calls chain infallibly; [`build`](Self::build) reports the
/// first problem.
#[derive(Debug, Clone)]
#[must_use]
pub struct SchemeBuilder {
    name: Cow<'static, str>,
    algorithm: Option<Algorithm>,
    content: Option<Cow<'static, str>>,
    encoding: SignatureEncoding,
    prefix: Cow<'static, str>,
    format: SignatureFormat,
    signature_header: Option<Cow<'static, str>>,
    id_header: Option<Cow<'static, str>>,
    timestamp: BuilderTimestamp,
    tolerance: Tolerance,
    secret_format: Option<SecretFormat>,
    handshake: Option<Handshake>,
}

impl SchemeBuilder {
    /// Sets the algorithm (required).
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = Some(algorithm);
        self
    }

    /// Sets the signed-content template (default `{body}`); see [`SignedContent::parse`].
    pub fn signed_content(mut self, template: impl Into<Cow<'static, str>>) -> Self {
        self.content = Some(template.into());
        self
    }

    /// Sets the encoding (default base64).
    pub fn encoding(mut self, encoding: SignatureEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Sets the prefix written before each signature (default none).
    pub fn prefix(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets how several signatures share the header (default [`SignatureFormat::Single`]).
    pub fn format(mut self, format: SignatureFormat) -> Self {
        self.format = format;
        self
    }

    /// Sets the signature header name (required).
    pub fn signature_header(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.signature_header = Some(name.into());
        self
    }

    /// Sets the message-id header name.
    pub fn id_header(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.id_header = Some(name.into());
        self
    }

    /// The timestamp travels in its own header.
    pub fn timestamp_header(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.timestamp = BuilderTimestamp::Header(name.into());
        self
    }

    /// The timestamp travels as an entry of a comma-separated signature header, starting with
    /// `key` (e.g. `t=`).
    pub fn timestamp_in_signature(mut self, key: impl Into<Cow<'static, str>>) -> Self {
        self.timestamp = BuilderTimestamp::Entry(key.into());
        self
    }

    /// Sets the default replay window (default 300 s each way).
    pub fn tolerance(mut self, tolerance: Tolerance) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Sets how the scheme reads its secret text (default: [`SecretFormat::default_for`] the
    /// algorithm, so `whsec_` secrets are decoded for HMAC schemes).
    pub fn secret_format(mut self, format: SecretFormat) -> Self {
        self.secret_format = Some(format);
        self
    }

    /// Sets the registration handshake receivers answer (default none).
    pub fn handshake(mut self, handshake: Handshake) -> Self {
        self.handshake = Some(handshake);
        self
    }

    /// Validates and builds the scheme.
    ///
    /// # Errors
    /// The first [`SchemeError`] found.
    pub fn build(self) -> Result<Scheme, SchemeError> {
        let algorithm = self.algorithm.ok_or(SchemeError::MissingAlgorithm)?;
        let content = match &self.content {
            Some(t) => SignedContent::parse(t)?,
            None => SignedContent::body(),
        };
        let header = |role: &'static str, name: &str| {
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| SchemeError::InvalidHeaderName {
                role,
                name: name.to_owned(),
            })
        };
        let signature_header = header(
            "signature",
            self.signature_header
                .as_deref()
                .ok_or(SchemeError::MissingSignatureHeader)?,
        )?;
        let id_header = self
            .id_header
            .as_deref()
            .map(|n| header("id", n))
            .transpose()?;
        let timestamp = match &self.timestamp {
            BuilderTimestamp::None => TimestampSource::None,
            BuilderTimestamp::Header(n) => TimestampSource::Header(header("timestamp", n)?),
            BuilderTimestamp::Entry(k) => {
                if self.format != SignatureFormat::CommaSeparated {
                    return Err(SchemeError::TimestampEntryNeedsCommaSeparated);
                }
                if k.is_empty() || k.contains(',') || k.contains(' ') {
                    return Err(SchemeError::InvalidPrefix {
                        reason: "the timestamp key must be non-empty without `,` or spaces",
                    });
                }
                TimestampSource::SignatureEntry(k.clone())
            }
        };
        if content.uses_id() && id_header.is_none() {
            return Err(SchemeError::MissingIdHeader);
        }
        if !content.uses_id() && id_header.is_some() {
            return Err(SchemeError::UnsignedId);
        }
        let has_ts = !matches!(timestamp, TimestampSource::None);
        if content.uses_timestamp() && !has_ts {
            return Err(SchemeError::MissingTimestamp);
        }
        if has_ts && !content.uses_timestamp() {
            return Err(SchemeError::UnsignedTimestamp);
        }
        let prefix_ok = match self.format {
            SignatureFormat::Single => true,
            SignatureFormat::SpaceSeparated => {
                !self.prefix.is_empty() && !self.prefix.contains(' ')
            }
            SignatureFormat::CommaSeparated => {
                !self.prefix.is_empty() && !self.prefix.contains(',')
            }
        };
        if !prefix_ok {
            return Err(SchemeError::InvalidPrefix {
                reason: "a list format needs a non-empty prefix without the list separator",
            });
        }
        if let TimestampSource::SignatureEntry(k) = &timestamp
            && (self.prefix.starts_with(k.as_ref()) || k.starts_with(self.prefix.as_ref()))
        {
            return Err(SchemeError::InvalidPrefix {
                reason: "the timestamp key and the signature prefix overlap",
            });
        }
        if self.prefix.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(SchemeError::InvalidPrefix {
                reason: "control characters are not allowed",
            });
        }
        let mut names: Vec<&HeaderName> = vec![&signature_header];
        names.extend(id_header.as_ref());
        if let TimestampSource::Header(h) = &timestamp {
            names.push(h);
        }
        for (i, a) in names.iter().enumerate() {
            if names.iter().skip(i + 1).any(|b| a == b) {
                return Err(SchemeError::DuplicateHeader {
                    name: a.as_str().to_owned(),
                });
            }
        }
        let secret_format = self
            .secret_format
            .unwrap_or(SecretFormat::default_for(algorithm));
        if !secret_format.fits(algorithm) {
            return Err(SchemeError::SecretFormat {
                format: secret_format,
                algorithm: algorithm.name(),
            });
        }
        if let Some(h) = self.handshake
            && h.needs_hmac_key()
            && algorithm != Algorithm::HmacSha256
        {
            return Err(SchemeError::Handshake {
                handshake: h.name(),
                reason: "its answer is an HMAC-SHA256 keyed with the secret",
            });
        }
        Ok(Scheme {
            name: self.name,
            algorithm,
            content,
            encoding: self.encoding,
            prefix: self.prefix,
            format: self.format,
            signature_header,
            id_header,
            timestamp,
            tolerance: self.tolerance,
            secret_format,
            handshake: self.handshake,
        })
    }
}

/// Whether `id` survives a trip through an HTTP header unchanged.
pub(crate) fn id_is_valid(id: &[u8]) -> bool {
    let edge_ok = |b: Option<&u8>| b.is_none_or(|b| *b != b' ');
    id.iter().all(|b| (0x20..0x7f).contains(b)) && edge_ok(id.first()) && edge_ok(id.last())
}

/// Computes the HMAC tag of the signed content from a keyed state.
pub(crate) fn hmac_tag<M: Mac + Clone>(
    keyed: &M,
    scheme: &Scheme,
    id: &[u8],
    ts: &[u8],
    body: &[u8],
) -> hmac::digest::Output<M> {
    let mut mac = keyed.clone();
    scheme
        .signed_content()
        .feed(id, ts, body, |piece| mac.update(piece));
    mac.finalize().into_bytes()
}

/// The signed content in one buffer (Ed25519 needs the whole message).
#[cfg(feature = "ed25519")]
pub(crate) fn content_bytes(scheme: &Scheme, id: &[u8], ts: &[u8], body: &[u8]) -> Vec<u8> {
    let content = scheme.signed_content();
    let mut msg = Vec::with_capacity(content.content_len(id, ts, body));
    content.feed(id, ts, body, |piece| msg.extend_from_slice(piece));
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_into_parts() {
        let t = SignedContent::parse("{id}.{ts}.{body}").unwrap();
        assert_eq!(t.parts(), SignedContent::id_dot_ts_dot_body().parts());
        let t = SignedContent::parse("v0:{ts}:{body}").unwrap();
        assert_eq!(t.parts(), SignedContent::v0_colon_ts_colon_body().parts());
        let t = SignedContent::parse("{ts}{body}").unwrap();
        assert_eq!(t.parts(), SignedContent::ts_body().parts());
        let t = SignedContent::parse("{ts}.{body}").unwrap();
        assert_eq!(t.parts(), SignedContent::ts_dot_body().parts());
        let t = SignedContent::parse("{body}").unwrap();
        assert_eq!(t.parts(), SignedContent::body().parts());
        let t = SignedContent::parse("{body}!").unwrap();
        assert_eq!(t.parts(), &[Part::Body, Part::Literal(Box::from(*b"!"))]);
        assert_eq!(t.template(), "{body}!");
    }

    #[test]
    fn bad_templates() {
        for bad in [
            "",
            "{ts}",
            "{body}{body}",
            "{bod}",
            "{body",
            "body}",
            "{x}{body}",
        ] {
            assert!(
                matches!(SignedContent::parse(bad), Err(SchemeError::Template { .. })),
                "{bad}"
            );
        }
    }

    fn base() -> SchemeBuilder {
        Scheme::builder("t")
            .algorithm(Algorithm::HmacSha256)
            .signature_header("x-sig")
    }

    #[test]
    fn builder_reports_first_error() {
        assert_eq!(
            Scheme::builder("t").build().unwrap_err(),
            SchemeError::MissingAlgorithm
        );
        assert_eq!(
            Scheme::builder("t")
                .algorithm(Algorithm::HmacSha256)
                .build()
                .unwrap_err(),
            SchemeError::MissingSignatureHeader
        );
        assert!(matches!(
            base().signature_header("bad header").build(),
            Err(SchemeError::InvalidHeaderName {
                role: "signature",
                ..
            })
        ));
        assert_eq!(
            base().signed_content("{id}.{body}").build().unwrap_err(),
            SchemeError::MissingIdHeader
        );
        assert_eq!(
            base().id_header("x-id").build().unwrap_err(),
            SchemeError::UnsignedId
        );
        assert_eq!(
            base().signed_content("{ts}.{body}").build().unwrap_err(),
            SchemeError::MissingTimestamp
        );
        assert_eq!(
            base().timestamp_header("x-ts").build().unwrap_err(),
            SchemeError::UnsignedTimestamp
        );
        assert_eq!(
            base()
                .signed_content("{ts}{body}")
                .timestamp_in_signature("t=")
                .build()
                .unwrap_err(),
            SchemeError::TimestampEntryNeedsCommaSeparated
        );
        assert!(matches!(
            base().format(SignatureFormat::SpaceSeparated).build(),
            Err(SchemeError::InvalidPrefix { .. })
        ));
        assert!(matches!(
            base()
                .format(SignatureFormat::CommaSeparated)
                .prefix("t=")
                .signed_content("{ts}{body}")
                .timestamp_in_signature("t=")
                .build(),
            Err(SchemeError::InvalidPrefix { .. })
        ));
        assert!(matches!(
            base()
                .signed_content("{ts}{body}")
                .timestamp_header("X-Sig")
                .build(),
            Err(SchemeError::DuplicateHeader { .. })
        ));
    }
}
