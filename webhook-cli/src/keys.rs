//! Signature schemes by name and secrets from the command line.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use webhook_core::ed25519::{Ed25519SigningKey, Ed25519VerifyingKey};
use webhook_core::{Key, KeyRing, Scheme, Secret};

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

    fn is_ed25519(self) -> bool {
        matches!(self, Self::StandardWebhooksV1a | Self::Discord)
    }
}

/// Parses one secret for `scheme`: `whsec_<base64>` (Standard Webhooks / Svix form) is decoded;
/// for Ed25519 schemes `whsk_` / `whpk_` / 64 hex digits (a public key); anything else is used
/// as its UTF-8 bytes. Errors never contain the secret.
pub(crate) fn parse_key(text: &str, scheme: SchemeName) -> Result<Key, CliError> {
    let bad = |e: &dyn std::fmt::Display| {
        CliError::config(format!("secret refused: {e}"))
            .hint("pass the secret exactly as the sender shows it (whsec_..., or the raw text)")
    };
    if scheme.is_ed25519() {
        if text.starts_with("whsk_") {
            return Ed25519SigningKey::from_whsk(text)
                .map(Key::from)
                .map_err(|e| bad(&e));
        }
        if text.starts_with("whpk_") {
            return Ed25519VerifyingKey::from_whpk(text)
                .map(Key::from)
                .map_err(|e| bad(&e));
        }
        return Ed25519VerifyingKey::from_hex(text)
            .map(Key::from)
            .map_err(|e| {
                bad(&e)
                    .hint("Ed25519 schemes take whsk_... (to sign), whpk_... or a hex public key")
            });
    }
    let secret = if text.starts_with("whsec_") {
        Secret::from_whsec(text)
    } else {
        Secret::from_bytes(text.as_bytes())
    };
    secret.map(Key::from).map_err(|e| bad(&e))
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
}
