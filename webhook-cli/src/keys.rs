//! Signature schemes by name and secrets from the command line.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use http::HeaderMap;
use webhook_core::{Key, KeyRing, Scheme};

use crate::error::CliError;

/// The signature presets, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SchemeName {
    /// Standard Webhooks 1.0 (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,...`);
    /// the default, and what Sysdig `SIGNATURE` auth uses in this SDK.
    #[value(alias = "standard", alias = "sysdig")]
    StandardWebhooks,
    /// Standard Webhooks with Ed25519 (`v1a,...`); keys `whsk_` (sign) / `whpk_` (verify).
    StandardWebhooksV1a,
    /// Svix (`svix-id`, `svix-timestamp`, `svix-signature`).
    Svix,
    /// Soveren (`x-soveren-signature: sha256=<hex>` over the body).
    Soveren,
    /// GitHub (`X-Hub-Signature-256: sha256=<hex>`).
    Github,
    /// GitHub legacy SHA-1 (`X-Hub-Signature`), verify only.
    GithubSha1,
    /// Stripe (`Stripe-Signature: t=...,v1=...`).
    Stripe,
    /// Slack (`X-Slack-Signature`, `X-Slack-Request-Timestamp`).
    Slack,
    /// Zoom (`x-zm-signature`, `x-zm-request-timestamp`).
    Zoom,
    /// Shopify (`X-Shopify-Hmac-Sha256`, base64).
    Shopify,
    /// Discord (`X-Signature-Ed25519`, `X-Signature-Timestamp`); Ed25519 keys (hex public key
    /// or `whpk_` to verify, `whsk_` to sign).
    Discord,
}

impl SchemeName {
    pub(crate) fn scheme(self) -> Scheme {
        match self {
            Self::StandardWebhooks => Scheme::standard_webhooks(),
            Self::StandardWebhooksV1a => Scheme::standard_webhooks_v1a(),
            Self::Svix => Scheme::svix(),
            Self::Soveren => Scheme::soveren(),
            Self::Github => Scheme::github(),
            Self::GithubSha1 => Scheme::github_legacy_sha1(),
            Self::Stripe => Scheme::stripe(),
            Self::Slack => Scheme::slack(),
            Self::Zoom => Scheme::zoom(),
            Self::Shopify => Scheme::shopify(),
            Self::Discord => Scheme::discord(),
        }
    }

    /// The command-line name (`standard-webhooks`, `stripe`, ...).
    pub(crate) fn cli_name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }

    /// The scheme whose signature header `headers` carries, for a command given no `--scheme`:
    /// `stripe-signature` → stripe, `x-hub-signature-256` → github (`x-hub-signature` alone:
    /// github-sha1), `webhook-signature` → standard-webhooks (standard-webhooks-v1a when its
    /// entries are `v1a,`), ... `None` when no preset's signature header is present.
    pub(crate) fn detect(headers: &HeaderMap) -> Option<(Self, String)> {
        let found = Self::value_variants().iter().copied().find(|name| {
            let scheme = name.scheme();
            let Some(value) = headers.get(scheme.signature_header()) else {
                return false;
            };
            match name {
                // Both share `webhook-signature`: the entries' version decides.
                Self::StandardWebhooks | Self::StandardWebhooksV1a => {
                    let v1a = value
                        .to_str()
                        .is_ok_and(|v| v.split(' ').any(|e| e.starts_with("v1a,")));
                    v1a == (*name == Self::StandardWebhooksV1a)
                }
                // The SHA-1 header counts only without the SHA-256 one.
                Self::GithubSha1 => !headers.contains_key("x-hub-signature-256"),
                _ => true,
            }
        })?;
        Some((found, found.scheme().signature_header().as_str().to_owned()))
    }
}

/// Parses one secret as `scheme`'s sender hands it out ([`Scheme::parse_key`]: Stripe, GitHub,
/// Slack, Zoom, Shopify and Soveren use the text as typed, `whsec_` included; Standard Webhooks
/// and Svix decode `whsec_<base64>`, padded or not; Ed25519 schemes take `whsk_` / `whpk_` / 64
/// hex digits). A text that cannot be a key of the scheme is refused with a hint. Errors never
/// contain the secret.
pub(crate) fn parse_key(text: &str, scheme: SchemeName) -> Result<Key, CliError> {
    let s = scheme.scheme();
    s.parse_key(text).map_err(|e| {
        CliError::config(format!("secret refused: {e}")).hint(format!(
            "{}; the {} scheme takes {}",
            e.hint(),
            s.name(),
            s.secret_format().describe()
        ))
    })
}

/// A key ring from one or more secrets (several: rotation, any may match).
pub(crate) fn key_ring(secrets: &[String], scheme: SchemeName) -> Result<KeyRing, CliError> {
    let mut ring = KeyRing::new();
    for s in secrets {
        ring.push(parse_key(s, scheme)?, None);
    }
    Ok(ring)
}

/// Unix seconds of `t` (0 before the epoch).
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The instant `secs` after the epoch.
pub(crate) fn from_unix_secs(secs: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whsec_and_raw_secrets_parse() {
        assert!(parse_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", SchemeName::Svix).is_ok());
        assert!(parse_key("plain-text", SchemeName::Github).is_ok());
        let err = parse_key("whsec_not*base64", SchemeName::StandardWebhooks).unwrap_err();
        assert!(!err.cause.contains("not*base64"), "{}", err.cause);
        assert!(parse_key("", SchemeName::Github).is_err());
        assert!(parse_key("zz", SchemeName::Discord).is_err());
    }

    #[test]
    fn stripe_reads_whsec_literally_and_an_ed25519_key_is_refused_with_a_hint() {
        // Issue 18: `whsec_test` is no base64 secret; Stripe uses the text as the key.
        let Key::Hmac(k) = parse_key("whsec_test", SchemeName::Stripe).unwrap() else {
            panic!("an HMAC key")
        };
        assert_eq!(k.expose_secret(), b"whsec_test");
        let err = parse_key("whpk_AAAA", SchemeName::Github).unwrap_err();
        assert_eq!(err.exit, crate::error::Exit::Config);
        assert!(err.hint.unwrap().contains("discord"));
    }

    #[test]
    fn schemes_are_detected_from_their_headers() {
        let detect = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, http::HeaderValue::from_static(v));
            }
            SchemeName::detect(&h).map(|(s, _)| s)
        };
        assert_eq!(
            detect(&[("stripe-signature", "t=1,v1=00")]),
            Some(SchemeName::Stripe)
        );
        assert_eq!(
            detect(&[("webhook-signature", "v1a,AAAA")]),
            Some(SchemeName::StandardWebhooksV1a)
        );
        assert_eq!(
            detect(&[("webhook-signature", "v1,AAAA")]),
            Some(SchemeName::StandardWebhooks)
        );
        assert_eq!(
            detect(&[
                ("x-hub-signature", "sha1=00"),
                ("x-hub-signature-256", "sha256=00")
            ]),
            Some(SchemeName::Github)
        );
        assert_eq!(
            detect(&[("x-hub-signature", "sha1=00")]),
            Some(SchemeName::GithubSha1)
        );
        assert_eq!(
            detect(&[("x-signature-ed25519", "00")]),
            Some(SchemeName::Discord)
        );
        assert_eq!(detect(&[("content-type", "application/json")]), None);
        assert_eq!(
            SchemeName::StandardWebhooksV1a.cli_name(),
            "standard-webhooks-v1a"
        );
    }
}
