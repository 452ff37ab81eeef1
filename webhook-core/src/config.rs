//! Configuration files: the Sysdig agent-local `WEBHOOK` forwarding configuration, read as is.
//!
//! Seed 001 documents the agent-local forwarding parameters of a `WEBHOOK` integration:
//!
//! | attribute | required | type | allowed values | default |
//! | --- | --- | --- | --- | --- |
//! | `endpoint` | yes | string | | |
//! | `secret` | no (yes when `auth` is set) | string | | |
//! | `insecure` | no | bool | | `false` |
//! | `auth` | no | string | `BASIC_AUTH`, `BEARER_TOKEN`, `SIGNATURE` | |
//! | `headers` | no | list of `{key, value}` | | |
//! | `output` | no | string | `json`, `ndjson` | `json` |
//! | `timestampFormat` | no | string | `seconds`, `milliseconds`, `microseconds`, `nanoseconds` | `nanoseconds` |
//!
//! [`SysdigWebhookConfig`] deserializes exactly that mapping (from JSON, or YAML with the `yaml`
//! feature). Because the agent nests it, [`SysdigWebhookConfig::from_yaml_str`] and
//! [`SysdigWebhookConfig::from_json_str`] also accept it wrapped as an integration entry
//! (`{type: WEBHOOK, channels: [...], configuration: {...}}`) or as a whole `local_forwarding`
//! document (the first `WEBHOOK` integration is taken; use [`LocalForwarding`] to read them all).
//!
//! Unknown attributes are refused: in a configuration file a misspelt key (`timestampformat`)
//! silently falling back to a default is worse than an error naming it.

use serde::{Deserialize, Serialize};

use crate::TimestampFormat;

/// How a Sysdig `WEBHOOK` integration authenticates (the `auth` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SysdigAuth {
    /// HTTP Basic; `secret` is `user:password`.
    BasicAuth,
    /// `Authorization: Bearer <secret>`.
    BearerToken,
    /// An HMAC signature header keyed with `secret` (Standard Webhooks by default: Sysdig does not
    /// publish its format).
    Signature,
}

/// Payload format of a Sysdig `WEBHOOK` integration (the `output` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SysdigOutput {
    /// One JSON array of events per request (`application/json`).
    #[default]
    Json,
    /// Newline-delimited JSON, one event per line (`application/x-ndjson`).
    Ndjson,
}

/// One custom header of a Sysdig `WEBHOOK` integration: `{key: ..., value: ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SysdigHeader {
    /// Header name.
    pub key: String,
    /// Header value.
    pub value: String,
}

/// The agent-local `WEBHOOK` configuration exactly as seed 001 documents it.
///
/// Deserializing checks only the shape; [`validate`](Self::validate) checks the meaning
/// (`auth` without `secret`, a URL that is not `http(s)://host`, ...).
///
/// ```
/// use webhook_core::config::{SysdigAuth, SysdigOutput, SysdigWebhookConfig};
///
/// let cfg = SysdigWebhookConfig::from_json_str(r#"{
///     "endpoint": "https://siem.example.com/hook",
///     "auth": "BASIC_AUTH",
///     "secret": "user:password",
///     "output": "ndjson"
/// }"#)?;
/// assert_eq!(cfg.auth, Some(SysdigAuth::BasicAuth));
/// assert_eq!(cfg.output, SysdigOutput::Ndjson);
/// assert!(!cfg.insecure);
/// # Ok::<(), webhook_core::config::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SysdigWebhookConfig {
    /// The webhook URL.
    pub endpoint: String,
    /// Secret to use, according to `auth`; required when `auth` is set. A YAML scalar that
    /// looks like a number (`secret: 123456`) is taken as its text.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "scalar_as_string"
    )]
    pub secret: Option<String>,
    /// Skip TLS certificate verification (explicit opt-in).
    #[serde(default)]
    pub insecure: bool,
    /// Authentication method, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<SysdigAuth>,
    /// Extra headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<SysdigHeader>,
    /// Payload format.
    #[serde(default)]
    pub output: SysdigOutput,
    /// Resolution of the `timestamp` field.
    #[serde(default)]
    pub timestamp_format: TimestampFormat,
}

impl std::fmt::Debug for SysdigWebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SysdigWebhookConfig")
            .field("endpoint", &self.endpoint)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("insecure", &self.insecure)
            .field("auth", &self.auth)
            .field(
                "headers",
                &self.headers.iter().map(|h| &h.key).collect::<Vec<_>>(),
            )
            .field("output", &self.output)
            .field("timestamp_format", &self.timestamp_format)
            .finish()
    }
}

/// One entry of the agent's `local_forwarding.integrations` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SysdigIntegration {
    /// Integration type (`WEBHOOK`, `SYSLOG`, `SPLUNK`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The data channels forwarded (Sysdig "Data to Send"), e.g. `SECURE_EVENTS_POLICIES`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// The integration's parameters; for `WEBHOOK`, a [`SysdigWebhookConfig`].
    pub configuration: serde_json::Value,
}

/// The agent's `local_forwarding` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalForwarding {
    /// Whether local forwarding is on.
    #[serde(default)]
    pub enabled: bool,
    /// Integrations.
    #[serde(default)]
    pub integrations: Vec<SysdigIntegration>,
    /// Attributes this SDK does not interpret (`transmit_message_types`, ...), kept.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl LocalForwarding {
    /// The `WEBHOOK` integrations, each with its channels, parsed and validated.
    pub fn webhooks(&self) -> Result<Vec<(Vec<String>, SysdigWebhookConfig)>, ConfigError> {
        self.integrations
            .iter()
            .filter(|i| i.kind.eq_ignore_ascii_case("WEBHOOK"))
            .map(|i| {
                let cfg: SysdigWebhookConfig = serde_json::from_value(i.configuration.clone())
                    .map_err(|e| ConfigError::Parse(e.to_string()))?;
                cfg.validate()?;
                Ok((i.channels.clone(), cfg))
            })
            .collect()
    }
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The document is not valid JSON/YAML or does not have the documented shape (the message
    /// names the attribute and position; it never contains the secret's value).
    #[error("configuration is malformed: {0}")]
    Parse(String),
    /// The document has no `WEBHOOK` integration.
    #[error("configuration has no WEBHOOK integration")]
    NoWebhook,
    /// `endpoint` is missing its scheme or host, or is not http/https.
    #[error("endpoint {endpoint:?} is not a valid http(s) URL: {reason}")]
    BadEndpoint {
        /// The endpoint as written.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `auth` is set but `secret` is missing or empty.
    #[error("auth {0:?} requires a secret")]
    MissingSecret(SysdigAuth),
    /// `secret` is set but no `auth` method says how to use it.
    #[error("secret is set but auth is not: set auth to BASIC_AUTH, BEARER_TOKEN or SIGNATURE")]
    SecretWithoutAuth,
    /// The `BASIC_AUTH` secret is not `user:password`.
    #[error("BASIC_AUTH secret must be `user:password`")]
    BadBasicSecret,
    /// A custom header is refused (reserved, invalid name, or CR/LF/NUL in its value).
    #[error("header {name:?} refused: {reason}")]
    BadHeader {
        /// The header name as written.
        name: String,
        /// Why it was refused.
        reason: String,
    },
}

impl SysdigWebhookConfig {
    /// Parses JSON: the bare `WEBHOOK` mapping, an integration entry or a `local_forwarding`
    /// document; then [`validate`](Self::validate)s it.
    pub fn from_json_str(s: &str) -> Result<Self, ConfigError> {
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| ConfigError::Parse(e.to_string()))?;
        Self::from_value(v)
    }

    /// Parses YAML (the agent's `dragent.yaml` form): the bare `WEBHOOK` mapping, an
    /// integration entry or a `local_forwarding` document; then validates it.
    ///
    /// ```
    /// use webhook_core::TimestampFormat;
    /// use webhook_core::config::{SysdigAuth, SysdigWebhookConfig};
    ///
    /// let yaml = "
    /// local_forwarding:
    ///   enabled: true
    ///   integrations:
    ///     - type: WEBHOOK
    ///       channels: [SECURE_EVENTS_POLICIES]
    ///       configuration:
    ///         endpoint: https://siem.example.com/hook
    ///         auth: SIGNATURE
    ///         secret: s3cr3t-key
    ///         headers:
    ///           - key: X-Tenant
    ///             value: blue
    ///         timestampFormat: milliseconds
    /// ";
    /// let cfg = SysdigWebhookConfig::from_yaml_str(yaml)?;
    /// assert_eq!(cfg.auth, Some(SysdigAuth::Signature));
    /// assert_eq!(cfg.timestamp_format, TimestampFormat::Milliseconds);
    /// assert_eq!(cfg.headers[0].key, "X-Tenant");
    /// # Ok::<(), webhook_core::config::ConfigError>(())
    /// ```
    #[cfg(feature = "yaml")]
    pub fn from_yaml_str(s: &str) -> Result<Self, ConfigError> {
        let v: serde_json::Value =
            serde_yaml_ng::from_str(s).map_err(|e| ConfigError::Parse(e.to_string()))?;
        Self::from_value(v)
    }

    fn from_value(v: serde_json::Value) -> Result<Self, ConfigError> {
        let cfg = if let Some(lf) = v.get("local_forwarding") {
            let lf: LocalForwarding = serde_json::from_value(lf.clone())
                .map_err(|e| ConfigError::Parse(format!("local_forwarding: {e}")))?;
            let (_, cfg) = lf
                .webhooks()?
                .into_iter()
                .next()
                .ok_or(ConfigError::NoWebhook)?;
            cfg
        } else if v.get("configuration").is_some() {
            let entry: SysdigIntegration =
                serde_json::from_value(v).map_err(|e| ConfigError::Parse(e.to_string()))?;
            if !entry.kind.eq_ignore_ascii_case("WEBHOOK") {
                return Err(ConfigError::NoWebhook);
            }
            serde_json::from_value(entry.configuration)
                .map_err(|e| ConfigError::Parse(e.to_string()))?
        } else {
            serde_json::from_value(v).map_err(|e| ConfigError::Parse(e.to_string()))?
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what the shape cannot: the endpoint is an absolute `http`/`https` URL with a
    /// host, `auth` has its `secret`, a `BASIC_AUTH` secret is `user:password`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_endpoint(&self.endpoint)?;
        let secret = self.secret.as_deref().filter(|s| !s.is_empty());
        match (self.auth, secret) {
            (Some(auth), None) => return Err(ConfigError::MissingSecret(auth)),
            (None, Some(_)) => return Err(ConfigError::SecretWithoutAuth),
            (Some(SysdigAuth::BasicAuth), Some(s)) if !s.contains(':') => {
                return Err(ConfigError::BadBasicSecret);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Reads a string, or a number/bool scalar as its text, so a secret never ends up quoted in a
/// type error.
fn scalar_as_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(serde_json::Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(D::Error::custom("secret must be a string")),
    }
}

fn check_endpoint(endpoint: &str) -> Result<(), ConfigError> {
    let bad = |reason| ConfigError::BadEndpoint {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let uri: http::Uri = endpoint.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => return Err(bad("scheme must be http or https")),
        None => return Err(bad("missing scheme (https://)")),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => Ok(()),
        _ => Err(bad("missing host")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<SysdigWebhookConfig, ConfigError> {
        SysdigWebhookConfig::from_json_str(json)
    }

    #[test]
    fn defaults_match_seed_001() {
        let cfg = parse(r#"{"endpoint":"https://h.example/x"}"#).unwrap();
        assert_eq!(cfg.secret, None);
        assert!(!cfg.insecure);
        assert_eq!(cfg.auth, None);
        assert!(cfg.headers.is_empty());
        assert_eq!(cfg.output, SysdigOutput::Json);
        assert_eq!(cfg.timestamp_format, TimestampFormat::Nanoseconds);
    }

    #[test]
    fn every_documented_value_parses() {
        for (auth, expect) in [
            ("BASIC_AUTH", SysdigAuth::BasicAuth),
            ("BEARER_TOKEN", SysdigAuth::BearerToken),
            ("SIGNATURE", SysdigAuth::Signature),
        ] {
            let secret = if expect == SysdigAuth::BasicAuth {
                "u:p"
            } else {
                "k"
            };
            let cfg = parse(&format!(
                r#"{{"endpoint":"https://h/x","auth":"{auth}","secret":"{secret}"}}"#
            ))
            .unwrap();
            assert_eq!(cfg.auth, Some(expect));
        }
        for (out, expect) in [
            ("json", SysdigOutput::Json),
            ("ndjson", SysdigOutput::Ndjson),
        ] {
            let cfg = parse(&format!(r#"{{"endpoint":"https://h/x","output":"{out}"}}"#)).unwrap();
            assert_eq!(cfg.output, expect);
        }
        for (ts, expect) in [
            ("seconds", TimestampFormat::Seconds),
            ("milliseconds", TimestampFormat::Milliseconds),
            ("microseconds", TimestampFormat::Microseconds),
            ("nanoseconds", TimestampFormat::Nanoseconds),
        ] {
            let cfg = parse(&format!(
                r#"{{"endpoint":"https://h/x","timestampFormat":"{ts}"}}"#
            ))
            .unwrap();
            assert_eq!(cfg.timestamp_format, expect);
        }
    }

    #[test]
    fn errors_are_specific() {
        assert!(matches!(parse(r#"{}"#), Err(ConfigError::Parse(m)) if m.contains("endpoint")));
        assert!(matches!(
            parse(r#"{"endpoint":"https://h/x","auth":"DIGEST"}"#),
            Err(ConfigError::Parse(m)) if m.contains("DIGEST")
        ));
        assert_eq!(
            parse(r#"{"endpoint":"https://h/x","auth":"BEARER_TOKEN"}"#),
            Err(ConfigError::MissingSecret(SysdigAuth::BearerToken))
        );
        assert_eq!(
            parse(r#"{"endpoint":"https://h/x","auth":"BEARER_TOKEN","secret":""}"#),
            Err(ConfigError::MissingSecret(SysdigAuth::BearerToken))
        );
        assert_eq!(
            parse(r#"{"endpoint":"https://h/x","secret":"x"}"#),
            Err(ConfigError::SecretWithoutAuth)
        );
        assert_eq!(
            parse(r#"{"endpoint":"https://h/x","auth":"BASIC_AUTH","secret":"nocolon"}"#),
            Err(ConfigError::BadBasicSecret)
        );
        assert!(matches!(
            parse(r#"{"endpoint":"h.example/x"}"#),
            Err(ConfigError::BadEndpoint { .. })
        ));
        assert!(matches!(
            parse(r#"{"endpoint":"ftp://h.example/x"}"#),
            Err(ConfigError::BadEndpoint { .. })
        ));
        assert!(matches!(
            parse(r#"{"endpoint":"https://h/x","timestampformat":"seconds"}"#),
            Err(ConfigError::Parse(m)) if m.contains("timestampformat")
        ));
    }

    #[test]
    fn parse_errors_never_echo_the_secret() {
        let err = parse(r#"{"endpoint":"https://h/x","auth":"BASIC_AUTH","secret":"hunter2"}"#)
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        let cfg = parse(r#"{"endpoint":"https://h/x","auth":"BEARER_TOKEN","secret":"hunter2"}"#)
            .unwrap();
        assert!(!format!("{cfg:?}").contains("hunter2"));
        let cfg =
            parse(r#"{"endpoint":"https://h/x","auth":"SIGNATURE","secret":918273}"#).unwrap();
        assert_eq!(cfg.secret.as_deref(), Some("918273"));
        let err = parse(r#"{"endpoint":"https://h/x","auth":"SIGNATURE","secret":["918273"]}"#)
            .unwrap_err();
        assert!(!err.to_string().contains("918273"), "{err}");
    }

    #[test]
    fn integration_entry_and_document_forms() {
        let entry = r#"{"type":"WEBHOOK","channels":["SECURE_EVENTS_POLICIES"],
            "configuration":{"endpoint":"https://h/x","output":"ndjson"}}"#;
        assert_eq!(parse(entry).unwrap().output, SysdigOutput::Ndjson);
        let doc = r#"{"local_forwarding":{"enabled":true,"transmit_message_types":["POLICY_EVENTS"],
            "integrations":[{"type":"SYSLOG","configuration":{"address":"x"}},
            {"type":"WEBHOOK","configuration":{"endpoint":"https://h/y"}}]}}"#;
        assert_eq!(parse(doc).unwrap().endpoint, "https://h/y");
        let none =
            r#"{"local_forwarding":{"integrations":[{"type":"SYSLOG","configuration":{}}]}}"#;
        assert_eq!(parse(none), Err(ConfigError::NoWebhook));
    }
}
