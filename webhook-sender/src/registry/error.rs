//! [`SpecError`]: why a spec, a snapshot or a Sysdig section was refused.

use webhook_core::sysdig_config::ConfigError;
use webhook_core::{EndpointError, HeaderError, SubscriptionError, TimestampFormat};

use crate::EndpointConfigError;

/// Why an [`EndpointSpec`](super::EndpointSpec), a [`RegistrySnapshot`](super::RegistrySnapshot)
/// or a Sysdig section was refused. Each variant names the endpoint (or event set, or
/// integration) and the field; none carries a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The document is not valid JSON/YAML or does not have the shape of a snapshot (serde's
    /// message names the unknown or missing field and the position).
    #[error("{format} document is malformed: {message}")]
    Parse {
        /// `"JSON"` or `"YAML"`.
        format: &'static str,
        /// What serde said.
        message: String,
    },
    /// The snapshot's `version` is not one this SDK reads.
    #[error("snapshot format version {0} is not supported (this SDK reads version 1)")]
    UnsupportedVersion(u32),
    /// Serializing failed (cannot happen for the types of this module; kept typed).
    #[error("cannot serialize the snapshot: {0}")]
    Serialize(String),
    /// Two endpoints share a name.
    #[error("endpoint name {0:?} is used twice")]
    DuplicateEndpoint(String),
    /// An endpoint subscribes to an event set the snapshot does not define.
    #[error("endpoint {endpoint:?}: unknown event set {event_set:?}")]
    UnknownEventSet {
        /// The endpoint.
        endpoint: String,
        /// The event set it names.
        event_set: String,
    },
    /// An event set is invalid (empty name or pattern list, bad pattern, defined twice).
    #[error("event set {name:?} is invalid")]
    EventSet {
        /// The event set.
        name: String,
        /// Why.
        #[source]
        source: SubscriptionError,
    },
    /// The URL is not an absolute `http`/`https` URL with a host.
    #[error("endpoint {endpoint:?}: url {url:?} is invalid: {reason}")]
    Url {
        /// The endpoint.
        endpoint: String,
        /// The URL as written.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A custom header is refused by the endpoint builder (reserved, written by the auth,
    /// invalid name, CR/LF/NUL in its value).
    #[error("endpoint {endpoint:?}: headers: {source}")]
    Header {
        /// The endpoint.
        endpoint: String,
        /// The endpoint builder's reason (it names the header, never its value).
        #[source]
        source: HeaderError,
    },
    /// A secret cannot be used: empty, whitespace in a token, a `whsec_` key that does not
    /// decode, a PEM that is not one, a value that is a redaction marker. Never the value.
    #[error("endpoint {endpoint:?}: {field} refused: {reason}")]
    Secret {
        /// The endpoint.
        endpoint: String,
        /// The field, e.g. `auth.keys[1].secret`.
        field: String,
        /// Why.
        reason: String,
    },
    /// The signature scheme is not one of the presets.
    #[error("endpoint {endpoint:?}: auth.scheme {scheme:?} is not a known preset ({known})")]
    UnknownScheme {
        /// The endpoint.
        endpoint: String,
        /// The name given.
        scheme: String,
        /// The preset names.
        known: String,
    },
    /// A setting is out of range or inconsistent (batching, retry, concurrency, rate limit,
    /// queue, timeout, user agent, client certificate sources).
    #[error("endpoint {endpoint:?}: {field}: {reason}")]
    Setting {
        /// The endpoint.
        endpoint: String,
        /// The field, e.g. `batching.max_bytes`.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The endpoint configuration builder refused the whole (name, encoding mismatch, ...).
    #[error("endpoint {endpoint:?} is invalid")]
    Config {
        /// The endpoint.
        endpoint: String,
        /// The builder's reason.
        #[source]
        source: EndpointConfigError,
    },
    /// `insecure: true` needs a transport that skips certificate verification, which an
    /// `EndpointConfig` built from data alone cannot have: use
    /// [`RegistrySnapshot::apply_with`](super::RegistrySnapshot::apply_with) and give the
    /// endpoint such a transport.
    #[error(
        "endpoint {endpoint:?}: insecure: true needs a transport that skips certificate verification (apply_with)"
    )]
    Insecure {
        /// The endpoint.
        endpoint: String,
    },
    /// A `timestamp_format` other than nanoseconds (what the SDK's Sysdig payloads carry) must
    /// be applied by whoever encodes the events: use
    /// [`RegistrySnapshot::apply_with`](super::RegistrySnapshot::apply_with).
    #[error(
        "endpoint {endpoint:?}: timestamp_format {format:?} must be applied where the events are encoded (apply_with)"
    )]
    TimestampFormat {
        /// The endpoint.
        endpoint: String,
        /// The resolution asked for.
        format: TimestampFormat,
    },
    /// A Sysdig channel this SDK has no catalog entry for.
    #[error("sysdig integration {integration:?}: unknown channel {channel:?}")]
    UnknownChannel {
        /// The integration (endpoint) name.
        integration: String,
        /// The channel.
        channel: String,
    },
    /// A Sysdig `WEBHOOK` configuration was refused by `SysdigWebhookConfig`'s own checks.
    #[error("sysdig integration {integration:?} is invalid")]
    Sysdig {
        /// The integration (endpoint) name, or `local_forwarding` for the section.
        integration: String,
        /// Why.
        #[source]
        source: ConfigError,
    },
}

impl SpecError {
    /// Maps an endpoint builder error to the spec field it comes from.
    pub(crate) fn endpoint(endpoint: &str, e: EndpointError) -> Self {
        let endpoint = endpoint.to_owned();
        match e {
            EndpointError::Url { url, reason } => Self::Url {
                endpoint,
                url,
                reason,
            },
            EndpointError::Header(source) => Self::Header { endpoint, source },
            EndpointError::UserAgent => Self::Setting {
                endpoint,
                field: "user_agent",
                reason: "not a valid header value".to_owned(),
            },
            other => Self::Setting {
                endpoint,
                field: "url",
                reason: other.to_string(),
            },
        }
    }
}
