//! The schemes of real senders, as values of the one general [`Scheme`].
//!
//! | preset | headers | signed content | algorithm, encoding, prefix | timestamp |
//! | --- | --- | --- | --- | --- |
//! | [`Scheme::standard_webhooks`] | `webhook-id`, `webhook-timestamp`, `webhook-signature` | `{id}.{ts}.{body}` | HMAC-SHA256, base64, `v1,` (space-separated list) | header, 300 s |
//! | `Scheme::standard_webhooks_v1a` | same | same | Ed25519, base64, `v1a,` | header, 300 s |
//! | [`Scheme::svix`] | `svix-id`, `svix-timestamp`, `svix-signature` | `{id}.{ts}.{body}` | HMAC-SHA256, base64, `v1,` | header, 300 s |
//! | [`Scheme::soveren`] | `x-soveren-signature` | `{body}` | HMAC-SHA256, hex, `sha256=` | none |
//! | [`Scheme::github`] | `x-hub-signature-256` | `{body}` | HMAC-SHA256, hex, `sha256=` | none |
//! | [`Scheme::github_legacy_sha1`] (verify only) | `x-hub-signature` | `{body}` | HMAC-SHA1, hex, `sha1=` | none |
//! | [`Scheme::stripe`] | `stripe-signature: t=..,v1=..` | `{ts}.{body}` | HMAC-SHA256, hex, `v1=` (comma list) | `t=` entry, 300 s |
//! | [`Scheme::slack`] | `x-slack-signature`, `x-slack-request-timestamp` | `v0:{ts}:{body}` | HMAC-SHA256, hex, `v0=` | header, 300 s |
//! | [`Scheme::zoom`] | `x-zm-signature`, `x-zm-request-timestamp` | `v0:{ts}:{body}` | HMAC-SHA256, hex, `v0=` | header, 300 s |
//! | [`Scheme::shopify`] | `x-shopify-hmac-sha256` | `{body}` | HMAC-SHA256, base64 | none |
//! | `Scheme::discord` | `x-signature-ed25519`, `x-signature-timestamp` | `{ts}{body}` | Ed25519, hex | header, 300 s |
//!
//! Zoom and Discord do not publish a replay window; the presets apply the same 300 s default,
//! which a [`Verifier`](crate::Verifier) can change or switch off.
//!
//! Each preset also says how it reads its secret ([`SecretFormat`]: Stripe, GitHub, Slack, Zoom,
//! Shopify and Soveren literally, Standard Webhooks and Svix `whsec_` decoded, the Ed25519 ones
//! `whsk_`/`whpk_`/hex) and which registration handshake its receivers answer ([`Handshake`]:
//! Slack, Zoom, Discord).

use std::borrow::Cow;

use http::HeaderName;

use super::{
    Algorithm, Scheme, SignatureEncoding, SignatureFormat, SignedContent, TimestampSource,
    Tolerance,
};
use crate::{Handshake, SecretFormat};

/// Every header name the presets write; custom headers may not use them.
pub(crate) const PRESET_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "x-soveren-signature",
    "x-hub-signature-256",
    "x-hub-signature",
    "stripe-signature",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-zm-signature",
    "x-zm-request-timestamp",
    "x-shopify-hmac-sha256",
    "x-signature-ed25519",
    "x-signature-timestamp",
];

#[allow(clippy::too_many_arguments)]
fn preset(
    name: &'static str,
    algorithm: Algorithm,
    content: SignedContent,
    encoding: SignatureEncoding,
    prefix: &'static str,
    format: SignatureFormat,
    signature_header: &'static str,
    id_header: Option<&'static str>,
    timestamp: TimestampSource,
) -> Scheme {
    Scheme {
        name: Cow::Borrowed(name),
        algorithm,
        content,
        encoding,
        prefix: Cow::Borrowed(prefix),
        format,
        signature_header: HeaderName::from_static(signature_header),
        id_header: id_header.map(HeaderName::from_static),
        timestamp,
        tolerance: Tolerance::DEFAULT,
        secret_format: SecretFormat::default_for(algorithm),
        handshake: None,
    }
}

impl Scheme {
    /// The same scheme reading its secret as `format` (a preset's senders hand out secrets in
    /// one form; see [`SecretFormat`]).
    fn reading(mut self, format: SecretFormat) -> Self {
        self.secret_format = format;
        self
    }

    /// The same scheme answering `handshake`.
    fn answering(mut self, handshake: Handshake) -> Self {
        self.handshake = Some(handshake);
        self
    }
}

fn ts_header(name: &'static str) -> TimestampSource {
    TimestampSource::Header(HeaderName::from_static(name))
}

impl Scheme {
    /// Standard Webhooks 1.0, symmetric: `webhook-signature: v1,<base64 HMAC-SHA256>` over
    /// `{id}.{ts}.{body}`, several space-separated signatures.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use webhook_core::{KeyRing, Scheme, Secret, Signer, Verifier};
    ///
    /// let ring = KeyRing::single(Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?);
    /// let mut headers = http::HeaderMap::new();
    /// Signer::new(Scheme::standard_webhooks(), &ring)?
    ///     .sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#, &mut headers)?;
    /// assert_eq!(headers["webhook-signature"], "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    ///
    /// let now = UNIX_EPOCH + Duration::from_secs(1614265330);
    /// let ok = Verifier::new(Scheme::standard_webhooks(), &ring)?
    ///     .verify(&headers, br#"{"test": 2432232314}"#, now)?;
    /// assert_eq!(ok.id(), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn standard_webhooks() -> Self {
        preset(
            "standard-webhooks",
            Algorithm::HmacSha256,
            SignedContent::id_dot_ts_dot_body(),
            SignatureEncoding::Base64,
            "v1,",
            SignatureFormat::SpaceSeparated,
            "webhook-signature",
            Some("webhook-id"),
            ts_header("webhook-timestamp"),
        )
    }

    /// Standard Webhooks 1.0, asymmetric: `v1a,<base64 Ed25519>` (feature `ed25519`).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use webhook_core::{KeyRing, Scheme, Signer, Verifier};
    /// use webhook_core::ed25519::Ed25519SigningKey;
    ///
    /// let key = Ed25519SigningKey::from_seed([3u8; 32]);
    /// let mut headers = http::HeaderMap::new();
    /// Signer::new(Scheme::standard_webhooks_v1a(), &KeyRing::single(key.clone()))?
    ///     .sign("msg_1", 1_700_000_000, b"{}", &mut headers)?;
    /// let receiver = KeyRing::single(key.verifying_key());
    /// Verifier::new(Scheme::standard_webhooks_v1a(), &receiver)?
    ///     .verify(&headers, b"{}", UNIX_EPOCH + Duration::from_secs(1_700_000_000))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "ed25519")]
    pub fn standard_webhooks_v1a() -> Self {
        preset(
            "standard-webhooks-v1a",
            Algorithm::Ed25519,
            SignedContent::id_dot_ts_dot_body(),
            SignatureEncoding::Base64,
            "v1a,",
            SignatureFormat::SpaceSeparated,
            "webhook-signature",
            Some("webhook-id"),
            ts_header("webhook-timestamp"),
        )
    }

    /// Svix: Standard Webhooks with `svix-id`, `svix-timestamp`, `svix-signature` headers.
    ///
    /// ```
    /// assert_eq!(webhook_core::Scheme::svix().signature_header().as_str(), "svix-signature");
    /// ```
    pub fn svix() -> Self {
        preset(
            "svix",
            Algorithm::HmacSha256,
            SignedContent::id_dot_ts_dot_body(),
            SignatureEncoding::Base64,
            "v1,",
            SignatureFormat::SpaceSeparated,
            "svix-signature",
            Some("svix-id"),
            ts_header("svix-timestamp"),
        )
    }

    /// Soveren (seed 003): `x-soveren-signature: sha256=<hex HMAC-SHA256 of the body>`.
    ///
    /// ```
    /// assert_eq!(webhook_core::Scheme::soveren().prefix(), "sha256=");
    /// ```
    pub fn soveren() -> Self {
        preset(
            "soveren",
            Algorithm::HmacSha256,
            SignedContent::body(),
            SignatureEncoding::Hex,
            "sha256=",
            SignatureFormat::Single,
            "x-soveren-signature",
            None,
            TimestampSource::None,
        )
        .reading(SecretFormat::Literal)
    }

    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use webhook_core::{KeyRing, Scheme, Secret, Verifier};
    ///
    /// let ring = KeyRing::single(Secret::from_bytes("It's a Secret to Everybody")?);
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-hub-signature-256",
    ///     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".parse()?);
    /// Verifier::new(Scheme::github(), &ring)?.verify(&headers, b"Hello, World!", SystemTime::now())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn github() -> Self {
        preset(
            "github",
            Algorithm::HmacSha256,
            SignedContent::body(),
            SignatureEncoding::Hex,
            "sha256=",
            SignatureFormat::Single,
            "x-hub-signature-256",
            None,
            TimestampSource::None,
        )
        .reading(SecretFormat::Literal)
    }

    /// GitHub's legacy `X-Hub-Signature: sha1=<hex HMAC-SHA1>`, for verifying old senders only.
    ///
    /// ```
    /// use webhook_core::{KeyRing, KeyRingError, Scheme, Secret, Signer};
    /// let ring = KeyRing::single(Secret::from_bytes("s")?);
    /// assert!(matches!(Signer::new(Scheme::github_legacy_sha1(), &ring),
    ///                  Err(KeyRingError::VerifyOnlyAlgorithm { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn github_legacy_sha1() -> Self {
        preset(
            "github-sha1",
            Algorithm::HmacSha1,
            SignedContent::body(),
            SignatureEncoding::Hex,
            "sha1=",
            SignatureFormat::Single,
            "x-hub-signature",
            None,
            TimestampSource::None,
        )
        .reading(SecretFormat::Literal)
    }

    /// Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]` over `{t}.{body}`.
    ///
    /// ```
    /// assert_eq!(webhook_core::Scheme::stripe().prefix(), "v1=");
    /// ```
    pub fn stripe() -> Self {
        preset(
            "stripe",
            Algorithm::HmacSha256,
            SignedContent::ts_dot_body(),
            SignatureEncoding::Hex,
            "v1=",
            SignatureFormat::CommaSeparated,
            "stripe-signature",
            None,
            TimestampSource::SignatureEntry(Cow::Borrowed("t=")),
        )
        .reading(SecretFormat::Literal)
    }

    /// Slack: `X-Slack-Signature: v0=<hex>` over `v0:{ts}:{body}`, timestamp in
    /// `X-Slack-Request-Timestamp`.
    ///
    /// ```
    /// assert_eq!(webhook_core::Scheme::slack().signed_content().template(), "v0:{ts}:{body}");
    /// ```
    pub fn slack() -> Self {
        preset(
            "slack",
            Algorithm::HmacSha256,
            SignedContent::v0_colon_ts_colon_body(),
            SignatureEncoding::Hex,
            "v0=",
            SignatureFormat::Single,
            "x-slack-signature",
            None,
            ts_header("x-slack-request-timestamp"),
        )
        .reading(SecretFormat::Literal)
        .answering(Handshake::SlackUrlVerification)
    }

    /// Zoom: `x-zm-signature: v0=<hex>` over `v0:{ts}:{body}`, timestamp in
    /// `x-zm-request-timestamp`.
    ///
    /// ```
    /// assert_eq!(webhook_core::Scheme::zoom().signature_header().as_str(), "x-zm-signature");
    /// ```
    pub fn zoom() -> Self {
        preset(
            "zoom",
            Algorithm::HmacSha256,
            SignedContent::v0_colon_ts_colon_body(),
            SignatureEncoding::Hex,
            "v0=",
            SignatureFormat::Single,
            "x-zm-signature",
            None,
            ts_header("x-zm-request-timestamp"),
        )
        .reading(SecretFormat::Literal)
        .answering(Handshake::ZoomUrlValidation)
    }

    /// Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>`.
    ///
    /// ```
    /// assert_eq!(webhook_core::Scheme::shopify().prefix(), "");
    /// ```
    pub fn shopify() -> Self {
        preset(
            "shopify",
            Algorithm::HmacSha256,
            SignedContent::body(),
            SignatureEncoding::Base64,
            "",
            SignatureFormat::Single,
            "x-shopify-hmac-sha256",
            None,
            TimestampSource::None,
        )
        .reading(SecretFormat::Literal)
    }

    /// Discord: `X-Signature-Ed25519: <hex>` over `{ts}{body}`, timestamp in
    /// `X-Signature-Timestamp` (feature `ed25519`).
    ///
    /// ```
    /// assert_eq!(webhook_core::Scheme::discord().algorithm(), webhook_core::Algorithm::Ed25519);
    /// ```
    #[cfg(feature = "ed25519")]
    pub fn discord() -> Self {
        preset(
            "discord",
            Algorithm::Ed25519,
            SignedContent::ts_body(),
            SignatureEncoding::Hex,
            "",
            SignatureFormat::Single,
            "x-signature-ed25519",
            None,
            ts_header("x-signature-timestamp"),
        )
        .answering(Handshake::DiscordPing)
    }

    /// The symmetric presets (and, with feature `ed25519`, the Ed25519 ones), for listings and
    /// tests.
    pub fn presets() -> Vec<Self> {
        #[cfg_attr(not(feature = "ed25519"), allow(unused_mut))]
        let mut all = vec![
            Self::standard_webhooks(),
            Self::svix(),
            Self::soveren(),
            Self::github(),
            Self::github_legacy_sha1(),
            Self::stripe(),
            Self::slack(),
            Self::zoom(),
            Self::shopify(),
        ];
        #[cfg(feature = "ed25519")]
        all.extend([Self::standard_webhooks_v1a(), Self::discord()]);
        all
    }
}

/// Header names the presets write, plus the families `webhook-*` and `svix-*`.
pub(crate) fn is_sdk_signature_header(name: &HeaderName) -> bool {
    let n = name.as_str();
    PRESET_HEADERS.contains(&n) || n.starts_with("webhook-") || n.starts_with("svix-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_header_is_listed_as_reserved() {
        for scheme in Scheme::presets() {
            for h in scheme.headers() {
                assert!(PRESET_HEADERS.contains(&h.as_str()), "{}", h);
            }
        }
    }

    #[test]
    fn presets_pass_the_builder_rules() {
        for s in Scheme::presets() {
            let mut b = Scheme::builder(s.name().to_owned())
                .algorithm(s.algorithm())
                .signed_content(s.signed_content().template().to_owned())
                .encoding(s.encoding())
                .prefix(s.prefix().to_owned())
                .format(s.format())
                .signature_header(s.signature_header().as_str().to_owned());
            if let Some(id) = s.id_header() {
                b = b.id_header(id.as_str().to_owned());
            }
            b = match s.timestamp_source() {
                TimestampSource::None => b,
                TimestampSource::Header(h) => b.timestamp_header(h.as_str().to_owned()),
                TimestampSource::SignatureEntry(k) => b.timestamp_in_signature(k.clone()),
            };
            b = b.secret_format(s.secret_format());
            if let Some(h) = s.handshake() {
                b = b.handshake(h);
            }
            let built = b.build().unwrap();
            assert_eq!(built, s);
            assert_eq!(built.signed_content().parts(), s.signed_content().parts());
            assert_eq!(built.headers().count(), s.headers().count());
        }
    }
}
