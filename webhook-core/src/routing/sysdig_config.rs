//! The Sysdig agent-local `WEBHOOK` forwarding configuration, read as is.
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

use crate::Scheme;
use crate::delivery::encode::Encoding;
use crate::delivery::request::{Endpoint, EndpointError};
use crate::{
    AuthConfigError, BasicCredentials, BearerToken, KeyRing, KeyRingError, SecretError, SenderAuth,
    TimestampFormat,
};

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
/// use webhook_core::sysdig_config::{SysdigAuth, SysdigOutput, SysdigWebhookConfig};
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
/// # Ok::<(), webhook_core::sysdig_config::ConfigError>(())
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
#[derive(Debug, thiserror::Error)]
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
    /// The secret cannot be used with its `auth` method (whitespace in a Basic secret or a
    /// Bearer token, a `whsec_` key that does not decode, ...). Never contains the secret.
    #[error("secret refused: {0}")]
    BadSecret(String),
    /// The endpoint cannot be built: a custom header is refused (reserved, invalid name, CR/LF/NUL
    /// in its value: the error names it), or the URL is invalid.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
}

impl From<AuthConfigError> for ConfigError {
    fn from(e: AuthConfigError) -> Self {
        Self::BadSecret(e.to_string())
    }
}

impl From<SecretError> for ConfigError {
    fn from(e: SecretError) -> Self {
        Self::BadSecret(e.to_string())
    }
}

impl From<KeyRingError> for ConfigError {
    fn from(e: KeyRingError) -> Self {
        Self::BadSecret(e.to_string())
    }
}

/// A Sysdig `WEBHOOK` configuration turned into what a sender needs: the [`Endpoint`], plus the
/// two settings that belong to other layers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SysdigForwarding {
    /// URL, auth, custom headers and encoding (`output`).
    pub endpoint: Endpoint,
    /// Skip TLS certificate verification: for the sender's TLS configuration.
    pub insecure: bool,
    /// Resolution of the payload's `timestamp`: for the payload encoder.
    pub timestamp_format: TimestampFormat,
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
    /// use webhook_core::sysdig_config::{SysdigAuth, SysdigWebhookConfig};
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
    /// # Ok::<(), webhook_core::sysdig_config::ConfigError>(())
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

    /// Builds the sender's [`Endpoint`] with `SIGNATURE` signing by the default scheme,
    /// Standard Webhooks (Sysdig does not publish its own; see
    /// [`to_forwarding_with_scheme`](Self::to_forwarding_with_scheme)).
    ///
    /// `BASIC_AUTH` sends `Authorization: Basic` from `user:password`; `BEARER_TOKEN` sends
    /// `Authorization: Bearer <secret>`; `SIGNATURE` signs with the secret as key: a `whsec_`
    /// secret is decoded, any other is used as its UTF-8 bytes. `output` becomes the encoding,
    /// `headers` the custom headers (reserved ones refused, naming the header).
    ///
    /// ```
    /// use webhook_core::sysdig_config::SysdigWebhookConfig;
    ///
    /// let cfg = SysdigWebhookConfig::from_json_str(r#"{"endpoint": "https://siem.example.com/in",
    ///     "auth": "BEARER_TOKEN", "secret": "tok3n", "insecure": true,
    ///     "headers": [{"key": "X-Tenant", "value": "blue"}]}"#)?;
    /// let fwd = cfg.to_forwarding()?;
    /// assert!(fwd.insecure);
    /// assert_eq!(fwd.endpoint.url().host(), Some("siem.example.com"));
    ///
    /// let reserved = SysdigWebhookConfig::from_json_str(r#"{"endpoint": "https://h/in",
    ///     "headers": [{"key": "Content-Type", "value": "text/plain"}]}"#)?;
    /// assert!(reserved.to_forwarding().unwrap_err().to_string().contains("Content-Type"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError`] for an invalid configuration, secret or header.
    pub fn to_forwarding(&self) -> Result<SysdigForwarding, ConfigError> {
        self.to_forwarding_with_scheme(Scheme::standard_webhooks())
    }

    /// As [`to_forwarding`](Self::to_forwarding), signing `SIGNATURE` requests with `scheme`.
    ///
    /// # Errors
    /// [`ConfigError`] for an invalid configuration, secret or header.
    pub fn to_forwarding_with_scheme(
        &self,
        scheme: Scheme,
    ) -> Result<SysdigForwarding, ConfigError> {
        self.validate()?;
        let secret = self.secret.as_deref().unwrap_or_default();
        let auth = match self.auth {
            None => SenderAuth::None,
            Some(SysdigAuth::BasicAuth) => SenderAuth::Basic(BasicCredentials::parse(secret)?),
            Some(SysdigAuth::BearerToken) => SenderAuth::Bearer(BearerToken::new(secret)?),
            Some(SysdigAuth::Signature) => {
                // Read as the scheme's senders hand it out (Standard Webhooks decodes
                // `whsec_`, Stripe uses it literally, ...).
                let key = scheme
                    .parse_key(secret)
                    .map_err(|e| ConfigError::BadSecret(e.to_string()))?;
                SenderAuth::signature_with(scheme, &KeyRing::single(key))?
            }
        };
        let encoding = match self.output {
            SysdigOutput::Json => Encoding::JsonArray,
            SysdigOutput::Ndjson => Encoding::Ndjson,
        };
        let mut builder = Endpoint::builder(&self.endpoint)
            .auth(auth)
            .encoding(encoding);
        for h in &self.headers {
            builder = builder.header(h.key.clone(), h.value.clone());
        }
        Ok(SysdigForwarding {
            endpoint: builder.build()?,
            insecure: self.insecure,
            timestamp_format: self.timestamp_format,
        })
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
    match crate::delivery::request::parse_url(endpoint) {
        Ok(_) => Ok(()),
        Err(EndpointError::Url { url, reason }) => Err(ConfigError::BadEndpoint {
            endpoint: url,
            reason,
        }),
        Err(other) => Err(ConfigError::Endpoint(other)),
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
        assert!(matches!(
            parse(r#"{"endpoint":"https://h/x","auth":"BEARER_TOKEN"}"#),
            Err(ConfigError::MissingSecret(SysdigAuth::BearerToken))
        ));
        assert!(matches!(
            parse(r#"{"endpoint":"https://h/x","auth":"BEARER_TOKEN","secret":""}"#),
            Err(ConfigError::MissingSecret(SysdigAuth::BearerToken))
        ));
        assert!(matches!(
            parse(r#"{"endpoint":"https://h/x","secret":"x"}"#),
            Err(ConfigError::SecretWithoutAuth)
        ));
        assert!(matches!(
            parse(r#"{"endpoint":"https://h/x","auth":"BASIC_AUTH","secret":"nocolon"}"#),
            Err(ConfigError::BadBasicSecret)
        ));
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
        assert!(matches!(parse(none), Err(ConfigError::NoWebhook)));
    }

    fn forwarded_headers(json: &str) -> http::HeaderMap {
        let fwd = parse(json).unwrap().to_forwarding().unwrap();
        let events = [crate::Event::builder("e", "policy")
            .json_bytes(&b"{}"[..])
            .unwrap()];
        let body = fwd.endpoint.encode(&events).unwrap();
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        fwd.endpoint
            .request("b1", &body, at)
            .unwrap()
            .headers()
            .clone()
    }

    #[test]
    fn each_auth_method_produces_its_headers() {
        let basic = forwarded_headers(
            r#"{"endpoint":"https://h/x","auth":"BASIC_AUTH","secret":"user:password"}"#,
        );
        // base64("user:password")
        assert_eq!(basic["authorization"], "Basic dXNlcjpwYXNzd29yZA==");
        let bearer =
            forwarded_headers(r#"{"endpoint":"https://h/x","auth":"BEARER_TOKEN","secret":"tok"}"#);
        assert_eq!(bearer["authorization"], "Bearer tok");
        let sig =
            forwarded_headers(r#"{"endpoint":"https://h/x","auth":"SIGNATURE","secret":"key"}"#);
        assert!(
            sig["webhook-signature"]
                .to_str()
                .unwrap()
                .starts_with("v1,")
        );
        assert_eq!(sig["webhook-id"], "b1");
        let whsec = forwarded_headers(
            r#"{"endpoint":"https://h/x","auth":"SIGNATURE","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}"#,
        );
        assert!(whsec.contains_key("webhook-signature"));
        let none = forwarded_headers(
            r#"{"endpoint":"https://h/x","headers":[{"key":"X-A","value":"1"},{"key":"X-B","value":"2"}],"output":"ndjson"}"#,
        );
        assert!(none.get("authorization").is_none());
        assert_eq!(none["x-a"], "1");
        assert_eq!(none["x-b"], "2");
        assert_eq!(none["content-type"], "application/x-ndjson");
    }

    #[test]
    fn forwarding_refuses_bad_secrets_and_headers_by_name() {
        let ws = parse(r#"{"endpoint":"https://h/x","auth":"BEARER_TOKEN","secret":"a b"}"#)
            .unwrap()
            .to_forwarding()
            .unwrap_err();
        assert!(matches!(ws, ConfigError::BadSecret(_)), "{ws}");
        assert!(!ws.to_string().contains("a b"));
        let bad_whsec =
            parse(r#"{"endpoint":"https://h/x","auth":"SIGNATURE","secret":"whsec_!!!"}"#)
                .unwrap()
                .to_forwarding()
                .unwrap_err();
        assert!(matches!(bad_whsec, ConfigError::BadSecret(_)));
        for reserved in [
            "User-Agent",
            "webhook-signature",
            "Host",
            "Transfer-Encoding",
        ] {
            let err = parse(&format!(
                r#"{{"endpoint":"https://h/x","headers":[{{"key":"{reserved}","value":"v"}}]}}"#
            ))
            .unwrap()
            .to_forwarding()
            .unwrap_err();
            assert!(err.to_string().contains(reserved), "{err}");
        }
        let crlf = parse(
            r#"{"endpoint":"https://h/x","headers":[{"key":"X-A","value":"v\r\nHost: evil"}]}"#,
        )
        .unwrap()
        .to_forwarding()
        .unwrap_err();
        assert!(crlf.to_string().contains("X-A"), "{crlf}");
    }
}
