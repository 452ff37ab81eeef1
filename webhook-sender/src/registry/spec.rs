//! [`EndpointSpec`]: one endpoint's settings as data, and its conversion into an
//! [`EndpointConfig`] through the public builders.
//!
//! Field names are `snake_case` everywhere; unknown fields are refused (a misspelt key falling
//! back to a default is worse than an error naming it). Fields at their default are left out
//! when serializing, so a snapshot shows what was chosen.

use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use webhook_core::pem::PemSource;
use webhook_core::{
    BasicCredentials, BatcherConfig, BearerToken, ClientCertificate, Concurrency, Encoding,
    Endpoint, HeaderToken, KeyRing, RateLimit, RetryPolicy, Scheme, SenderAuth, Subscription,
    TimestampFormat,
};

use super::SpecError;
use super::redact::{REDACTED_PREFIX, marker};
use crate::{EndpointConfig, EndpointConfigBuilder, OverflowPolicy};

/// The serializable settings of one endpoint.
///
/// `Debug` never prints a secret (see [`redacted`](Self::redacted) for the markers it prints
/// instead).
///
/// ```
/// use webhook_sender::registry::{AuthSpec, EndpointSpec, KeySpec};
///
/// let mut spec = EndpointSpec::new("acme", "https://hooks.acme.example/in");
/// spec.types = vec!["policy".into()];
/// spec.auth = AuthSpec::Signature {
///     scheme: "standard-webhooks".into(),
///     keys: vec![
///         KeySpec::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
///         // the old key, signed with as well until it expires (unix seconds)
///         KeySpec::until("an-old-secret", 1_700_000_000),
///     ],
/// };
/// let config = spec.to_config()?;
/// assert_eq!(config.name(), "acme");
/// assert!(!format!("{spec:?}").contains("an-old-secret"));
/// # Ok::<(), webhook_sender::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EndpointSpec {
    /// The endpoint's name (unique in a sender; used in metrics, logs and receipts).
    pub name: String,
    /// The absolute `http`/`https` URL.
    pub url: String,
    /// The tenant whose events it receives (none: every tenant's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Event sets it subscribes to, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_sets: Vec<String>,
    /// Extra type patterns it subscribes to (exact or `*` wildcards). With neither event sets
    /// nor types it receives every type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Label filter (none: every event).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Starts paused.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    /// Receives nothing until a test delivery passed (Sysdig's rule).
    #[serde(default, skip_serializing_if = "is_false")]
    pub require_test: bool,
    /// Authentication.
    #[serde(default, skip_serializing_if = "AuthSpec::is_none")]
    pub auth: AuthSpec,
    /// Custom headers (reserved ones are refused by the endpoint builder).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderSpec>,
    /// Body encoding.
    #[serde(default, skip_serializing_if = "EncodingSpec::is_default")]
    pub encoding: EncodingSpec,
    /// The `User-Agent` (default the SDK's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Batching (default the engine's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batching: Option<BatchingSpec>,
    /// Retries (default Svix's schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// A request rate limit (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSpec>,
    /// In-flight request limit (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<ConcurrencySpec>,
    /// Intake queue capacity and overflow policy (default 10 000, block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueSpec>,
    /// Per-request timeout in milliseconds (default the transport's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout_ms: Option<u64>,
    /// Skip TLS certificate verification (Sysdig's `insecure`). Not part of an
    /// [`EndpointConfig`]: it needs its own transport, so [`to_config`](Self::to_config) refuses
    /// it with [`SpecError::Insecure`]; see
    /// [`RegistrySnapshot::apply_with`](super::RegistrySnapshot::apply_with).
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    /// Resolution of the payload's `timestamp` (Sysdig's `timestampFormat`). The sender sends
    /// payloads as encoded, so this is for whoever encodes the events; `to_config` accepts
    /// `nanoseconds` (what the SDK's Sysdig payloads carry) and refuses the others with
    /// [`SpecError::TimestampFormat`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_format: Option<TimestampFormat>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Authentication of an endpoint, tagged by `type`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum AuthSpec {
    /// None.
    #[default]
    None,
    /// HTTP Basic.
    Basic {
        /// User name (not a secret).
        username: String,
        /// Password (secret).
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token (secret).
        token: String,
    },
    /// A static token in a header of its own (`<name>: <value>`).
    Header {
        /// Header name.
        name: String,
        /// Header value (secret).
        value: String,
    },
    /// Signature headers of a scheme. Several keys are a rotation: the sender signs with every
    /// key live at the attempt's timestamp (schemes with a single signature use the first live
    /// one), so the old key keeps working until its `expires_at`.
    Signature {
        /// A preset name ([`Scheme::presets`]: `standard-webhooks` (default), `svix`,
        /// `github`, `stripe`, ...).
        #[serde(default = "default_scheme")]
        scheme: String,
        /// The keys, newest first.
        keys: Vec<KeySpec>,
    },
    /// Mutual TLS: the sender's TLS layer presents this certificate.
    ClientCertificate(ClientCertificateSpec),
}

fn default_scheme() -> String {
    Scheme::standard_webhooks().name().to_owned()
}

impl AuthSpec {
    fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }

    /// The `type` tag.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Basic { .. } => "basic",
            Self::Bearer { .. } => "bearer",
            Self::Header { .. } => "header",
            Self::Signature { .. } => "signature",
            Self::ClientCertificate(_) => "client_certificate",
        }
    }
}

impl fmt::Debug for AuthSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, password } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &marker(password))
                .finish(),
            Self::Bearer { token } => f
                .debug_struct("Bearer")
                .field("token", &marker(token))
                .finish(),
            Self::Header { name, value } => f
                .debug_struct("Header")
                .field("name", name)
                .field("value", &marker(value))
                .finish(),
            Self::Signature { scheme, keys } => f
                .debug_struct("Signature")
                .field("scheme", scheme)
                .field("keys", keys)
                .finish(),
            Self::ClientCertificate(c) => f.debug_tuple("ClientCertificate").field(c).finish(),
        }
    }
}

/// One signing key: the secret, and when it stops being used.
///
/// `secret` is a Standard Webhooks `whsec_<base64>` key (decoded), or any other text used as
/// its UTF-8 bytes (as Sysdig's `SIGNATURE` secret). `expires_at` is in **unix seconds** (UTC):
/// the key is used strictly before it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KeySpec {
    /// The secret.
    pub secret: String,
    /// Unix seconds after which the key is no longer used (none: never expires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

impl KeySpec {
    /// A key that never expires.
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
            expires_at: None,
        }
    }

    /// A key used until `expires_at` (unix seconds).
    pub fn until(secret: impl Into<String>, expires_at: u64) -> Self {
        Self {
            secret: secret.into(),
            expires_at: Some(expires_at),
        }
    }
}

impl fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySpec")
            .field("secret", &marker(&self.secret))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A client certificate: the chain and the unencrypted private key, each from a PEM file or
/// inline PEM text (exactly one of the two for each).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCertificateSpec {
    /// Path of the certificate chain PEM file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_pem_file: Option<String>,
    /// The certificate chain, PEM text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_pem: Option<String>,
    /// Path of the private key PEM file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_pem_file: Option<String>,
    /// The private key, PEM text (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_pem: Option<String>,
}

impl ClientCertificateSpec {
    /// Certificate and key from PEM files.
    pub fn files(cert: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            cert_pem_file: Some(cert.into()),
            key_pem_file: Some(key.into()),
            ..Self::default()
        }
    }

    /// Certificate and key as PEM text.
    pub fn inline(cert: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            cert_pem: Some(cert.into()),
            key_pem: Some(key.into()),
            ..Self::default()
        }
    }
}

impl fmt::Debug for ClientCertificateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificateSpec")
            .field("cert_pem_file", &self.cert_pem_file)
            .field("cert_pem", &self.cert_pem.as_ref().map(String::len))
            .field("key_pem_file", &self.key_pem_file)
            .field("key_pem", &self.key_pem.as_deref().map(marker))
            .finish()
    }
}

/// One custom header. Its value is treated as a secret (redacted in `Debug`, in
/// [`EndpointSpec::redacted`] and in changes) when the name looks like one: `authorization`,
/// or containing `token`, `key`, `secret`, `password` or `signature`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HeaderSpec {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

impl HeaderSpec {
    /// A header.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }

    /// Whether the name looks like it carries a secret.
    #[must_use]
    pub fn is_sensitive(&self) -> bool {
        let n = self.name.to_ascii_lowercase();
        n == "authorization"
            || ["token", "key", "secret", "password", "signature", "cookie"]
                .iter()
                .any(|s| n.contains(s))
    }
}

impl fmt::Debug for HeaderSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("HeaderSpec");
        d.field("name", &self.name);
        if self.is_sensitive() {
            d.field("value", &marker(&self.value));
        } else {
            d.field("value", &self.value);
        }
        d.finish()
    }
}

/// Body encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EncodingSpec {
    /// One JSON array per request.
    #[default]
    Json,
    /// Newline-delimited JSON.
    Ndjson,
}

impl EncodingSpec {
    fn is_default(&self) -> bool {
        *self == Self::Json
    }

    fn encoding(self) -> Encoding {
        match self {
            Self::Json => Encoding::JsonArray,
            Self::Ndjson => Encoding::Ndjson,
        }
    }
}

/// Batching limits; a field left out keeps the engine's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchingSpec {
    /// Events per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_events: Option<usize>,
    /// Encoded body bytes per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<usize>,
    /// How long the first event of a batch may wait, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linger_ms: Option<u64>,
}

/// Retry policy, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum RetrySpec {
    /// Svix's schedule ([`RetryPolicy::svix`]).
    Svix,
    /// One attempt, no retry.
    None,
    /// Attempt `i` waits `delays_ms[i]` after attempt `i - 1` failed (the first is normally 0).
    Fixed {
        /// Delays, milliseconds.
        delays_ms: Vec<u64>,
        /// Jitter, percent of each delay (0–100).
        #[serde(default)]
        jitter_percent: u8,
    },
    /// Retry `n` waits `min(cap, base * factor^(n-1))`.
    Exponential {
        /// First retry delay, milliseconds.
        base_ms: u64,
        /// Growth factor (≥ 1).
        factor: f64,
        /// Largest delay, milliseconds.
        cap_ms: u64,
        /// Uniform jitter over `0..=delay`.
        #[serde(default)]
        full_jitter: bool,
        /// Attempts, the first included.
        max_attempts: u32,
    },
}

/// A request rate limit: `requests` per `per_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Requests per period.
    pub requests: u32,
    /// The period, seconds.
    pub per_secs: u64,
}

/// In-flight request limit, tagged by `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ConcurrencySpec {
    /// Exactly `limit` requests in flight.
    Fixed {
        /// The limit (≥ 1).
        limit: usize,
    },
    /// Adaptive (AIMD) between `min` and `max`, starting at `min`.
    Adaptive {
        /// Lower bound (≥ 1).
        min: usize,
        /// Upper bound.
        max: usize,
    },
}

/// Intake queue capacity and what happens when it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// Capacity in events (≥ 1).
    pub capacity: usize,
    /// Overflow policy.
    #[serde(default)]
    pub overflow: OverflowSpec,
}

/// [`OverflowPolicy`] as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OverflowSpec {
    /// The producer waits.
    #[default]
    Block,
    /// The new event is dropped.
    DropNewest,
    /// The oldest queued event is dropped.
    DropOldest,
}

impl EndpointSpec {
    /// A spec named `name` for `url` with every other setting at its default.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            tenant: None,
            event_sets: Vec::new(),
            types: Vec::new(),
            labels: Vec::new(),
            paused: false,
            require_test: false,
            auth: AuthSpec::None,
            headers: Vec::new(),
            encoding: EncodingSpec::Json,
            user_agent: None,
            batching: None,
            retry: None,
            rate_limit: None,
            concurrency: None,
            queue: None,
            request_timeout_ms: None,
            insecure: false,
            timestamp_format: None,
        }
    }

    /// The subscription: tenant, event sets, types and labels.
    #[must_use]
    pub fn subscription(&self) -> Subscription {
        Subscription {
            tenant: self.tenant.clone(),
            event_sets: self.event_sets.clone(),
            types: self.types.clone(),
            labels: self.labels.clone(),
        }
    }

    /// Builds the [`EndpointConfig`]: [`config_builder`](Self::config_builder), refusing
    /// [`insecure`](Self::insecure) and a [`timestamp_format`](Self::timestamp_format) other
    /// than nanoseconds (neither is part of an `EndpointConfig`), then
    /// [`EndpointConfigBuilder::build`]. Event set names are checked by the sender (or by
    /// [`RegistrySnapshot::validate`](super::RegistrySnapshot::validate)).
    ///
    /// # Errors
    /// [`SpecError`] naming this endpoint and the field.
    pub fn to_config(&self) -> Result<EndpointConfig, SpecError> {
        if self.insecure {
            return Err(SpecError::Insecure {
                endpoint: self.name.clone(),
            });
        }
        match self.timestamp_format {
            None | Some(TimestampFormat::Nanoseconds) => {}
            Some(format) => {
                return Err(SpecError::TimestampFormat {
                    endpoint: self.name.clone(),
                    format,
                });
            }
        }
        self.build(self.config_builder()?)
    }

    /// Builds `builder` (one from [`config_builder`](Self::config_builder), possibly with a
    /// transport or token provider added), naming this endpoint in the error.
    ///
    /// # Errors
    /// [`SpecError::Config`].
    pub fn build(&self, builder: EndpointConfigBuilder) -> Result<EndpointConfig, SpecError> {
        builder.build().map_err(|source| SpecError::Config {
            endpoint: self.name.clone(),
            source,
        })
    }

    /// Everything of the spec but [`insecure`](Self::insecure) and
    /// [`timestamp_format`](Self::timestamp_format), as an [`EndpointConfigBuilder`] to which
    /// the caller may add what data cannot hold (a transport, a token provider, a jitter seed).
    ///
    /// # Errors
    /// [`SpecError`] naming this endpoint and the field.
    pub fn config_builder(&self) -> Result<EndpointConfigBuilder, SpecError> {
        let name = self.name.as_str();
        let setting = |field: &'static str, reason: String| SpecError::Setting {
            endpoint: name.to_owned(),
            field,
            reason,
        };
        let mut endpoint = Endpoint::builder(&self.url)
            .auth(self.sender_auth()?)
            .encoding(self.encoding.encoding());
        for h in &self.headers {
            endpoint = endpoint.header(h.name.clone(), h.value.clone().into_bytes());
        }
        if let Some(ua) = &self.user_agent {
            endpoint = endpoint.user_agent(ua.clone());
        }
        let endpoint = endpoint.build().map_err(|e| SpecError::endpoint(name, e))?;
        let mut b = EndpointConfig::builder(name, endpoint)
            .spec(self.clone())
            .subscription(self.subscription())
            .paused(self.paused)
            .require_test(self.require_test);
        if let Some(batching) = &self.batching {
            let mut c = BatcherConfig::builder();
            if let Some(n) = batching.max_events {
                c = c.max_events(n);
            }
            if let Some(n) = batching.max_bytes {
                c = c.max_bytes(n);
            }
            // The engine's buffer bounds (10 000 events, 16 MiB), raised to hold one batch.
            c = c.buffer_limits(
                batching.max_events.unwrap_or(0).max(10_000),
                batching.max_bytes.unwrap_or(0).max(16 << 20),
            );
            if let Some(ms) = batching.linger_ms {
                c = c.linger(Duration::from_millis(ms));
            }
            b = b.batching(c.build().map_err(|e| setting("batching", e.to_string()))?);
        }
        if let Some(retry) = &self.retry {
            b = b.retry(retry.policy().map_err(|e| setting("retry", e))?);
        }
        if let Some(r) = self.rate_limit {
            let limit = RateLimit::new(r.requests, Duration::from_secs(r.per_secs));
            limit
                .validate()
                .map_err(|e| setting("rate_limit", e.to_owned()))?;
            b = b.rate_limit(limit);
        }
        if let Some(c) = self.concurrency {
            b = b.concurrency(match c {
                ConcurrencySpec::Fixed { limit } => Concurrency::Fixed(limit),
                ConcurrencySpec::Adaptive { min, max } => Concurrency::adaptive(min, max),
            });
        }
        if let Some(q) = self.queue {
            let overflow = match q.overflow {
                OverflowSpec::Block => OverflowPolicy::Block,
                OverflowSpec::DropNewest => OverflowPolicy::DropNewest,
                OverflowSpec::DropOldest => OverflowPolicy::DropOldest,
            };
            b = b.queue(q.capacity, overflow);
        }
        if let Some(ms) = self.request_timeout_ms {
            b = b.request_timeout(Duration::from_millis(ms));
        }
        Ok(b)
    }

    fn sender_auth(&self) -> Result<SenderAuth, SpecError> {
        let name = &self.name;
        let refused = |field: &str, reason: String| SpecError::Secret {
            endpoint: name.clone(),
            field: field.to_owned(),
            reason,
        };
        let secret = |field: &str, value: &str| {
            if value.starts_with(REDACTED_PREFIX) {
                Err(refused(
                    field,
                    "it is a redaction marker, not the secret".to_owned(),
                ))
            } else {
                Ok(())
            }
        };
        Ok(match &self.auth {
            AuthSpec::None => SenderAuth::None,
            AuthSpec::Basic { username, password } => {
                secret("auth.password", password)?;
                SenderAuth::Basic(
                    BasicCredentials::new(username.clone(), password.clone())
                        .map_err(|e| refused("auth", e.to_string()))?,
                )
            }
            AuthSpec::Bearer { token } => {
                secret("auth.token", token)?;
                SenderAuth::Bearer(
                    BearerToken::new(token.clone())
                        .map_err(|e| refused("auth.token", e.to_string()))?,
                )
            }
            AuthSpec::Header {
                name: header,
                value,
            } => {
                secret("auth.value", value)?;
                SenderAuth::HeaderToken(
                    HeaderToken::new(header, value.clone())
                        .map_err(|e| refused("auth.value", e.to_string()))?,
                )
            }
            AuthSpec::Signature { scheme, keys } => {
                let presets = Scheme::presets();
                let Some(scheme_value) = presets.iter().find(|s| s.name() == scheme).cloned()
                else {
                    return Err(SpecError::UnknownScheme {
                        endpoint: name.clone(),
                        scheme: scheme.clone(),
                        known: presets
                            .iter()
                            .map(|s| s.name().to_owned())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                };
                if keys.is_empty() {
                    return Err(refused("auth.keys", "no key".to_owned()));
                }
                let mut ring = KeyRing::new();
                for (i, k) in keys.iter().enumerate() {
                    let field = format!("auth.keys[{i}].secret");
                    secret(&field, &k.secret)?;
                    // Read as the scheme's senders hand it out (Stripe's `whsec_` literally,
                    // Standard Webhooks' decoded).
                    let key = scheme_value
                        .parse_key(&k.secret)
                        .map_err(|e| refused(&field, e.to_string()))?;
                    let expiry = k.expires_at.map(|s| UNIX_EPOCH + Duration::from_secs(s));
                    ring.push(key, expiry);
                }
                SenderAuth::signature_with(scheme_value, &ring)
                    .map_err(|e| refused("auth.keys", e.to_string()))?
            }
            AuthSpec::ClientCertificate(c) => {
                let source =
                    |file: &Option<String>, pem: &Option<String>, field: &'static str| match (
                        file, pem,
                    ) {
                        (Some(path), None) => Ok(PemSource::file(path)),
                        (None, Some(pem)) => Ok(PemSource::bytes(pem.clone().into_bytes())),
                        _ => Err(SpecError::Setting {
                            endpoint: name.clone(),
                            field,
                            reason: "give exactly one of the file and the inline PEM".to_owned(),
                        }),
                    };
                if let Some(key) = &c.key_pem {
                    secret("auth.key_pem", key)?;
                }
                let cert = source(&c.cert_pem_file, &c.cert_pem, "auth.cert_pem")?;
                let key = source(&c.key_pem_file, &c.key_pem, "auth.key_pem")?;
                if let (Some(cert), Some(key)) = (&c.cert_pem, &c.key_pem) {
                    // Inline PEM is checked now; files when the transport loads them.
                    ClientCertificate::from_pem(
                        cert.clone().into_bytes(),
                        key.clone().into_bytes(),
                    )
                    .map_err(|e| refused("auth.client_certificate", e.to_string()))?;
                }
                SenderAuth::ClientCertificate(ClientCertificate::from_sources(cert, key))
            }
        })
    }
}

impl RetrySpec {
    fn policy(&self) -> Result<RetryPolicy, String> {
        let ms = Duration::from_millis;
        let built = match self {
            Self::Svix => return Ok(RetryPolicy::svix()),
            Self::None => RetryPolicy::builder()
                .fixed(vec![Duration::ZERO], 0)
                .build(),
            Self::Fixed {
                delays_ms,
                jitter_percent,
            } => RetryPolicy::builder()
                .fixed(delays_ms.iter().copied().map(ms).collect(), *jitter_percent)
                .build(),
            Self::Exponential {
                base_ms,
                factor,
                cap_ms,
                full_jitter,
                max_attempts,
            } => RetryPolicy::builder()
                .exponential(ms(*base_ms), *factor, ms(*cap_ms), *full_jitter)
                .max_attempts(*max_attempts)
                .build(),
        };
        built.map_err(|e| e.to_string())
    }
}
