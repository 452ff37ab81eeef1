//! A Sysdig agent's `local_forwarding` section as a [`RegistrySnapshot`]: one endpoint per
//! `WEBHOOK` integration, its `channels` as event sets
//! (the channel catalog is on [`sysdig_channel_types`]).

use serde_json::Value;
use webhook_core::EventSet;
use webhook_core::sysdig_config::{
    ConfigError, LocalForwarding, SysdigAuth, SysdigOutput, SysdigWebhookConfig,
};

use super::spec::{AuthSpec, EncodingSpec, EndpointSpec, HeaderSpec, KeySpec};
use super::{RegistrySnapshot, SpecError};

const CATALOG: &[(&str, &[&str])] = &[
    ("SECURE_EVENTS_POLICIES", &["policy"]),
    (
        "ACTIVITY_AUDIT",
        &["command", "connection", "fileaccess", "kubernetes"],
    ),
    ("PLATFORM_AUDIT", &["audittrail"]),
    ("BENCHMARK_EVENTS", &["benchmark"]),
    ("HOST_VULNERABILITIES", &["hostscanning"]),
];

/// The event `type`s a Sysdig channel carries; `None` for an unknown channel.
///
/// # Catalog
///
/// The event subject of a Sysdig event is its payload's `type`. The payload reference
/// documents the types and which data each belongs to; Sysdig's documentation (seeds 000 and
/// 001, "Data to Send") does not list the agent's channel identifiers.
///
/// | channel | types | source |
/// | --- | --- | --- |
/// | `SECURE_EVENTS_POLICIES` | `policy` | channel as written in agent configurations (this repository's `dragent.yaml` example); type documented |
/// | `ACTIVITY_AUDIT` | `command`, `connection`, `fileaccess`, `kubernetes` | channel as in agent configurations; types documented as "activity audit" |
/// | `PLATFORM_AUDIT` | `audittrail` | **this SDK's naming**, after the reference's "(platform audit)"; type documented |
/// | `BENCHMARK_EVENTS` | `benchmark` | **this SDK's naming**; type documented |
/// | `HOST_VULNERABILITIES` | `hostscanning` | **this SDK's naming**; type documented |
///
/// `SECURE_AUDIT` is not accepted: nothing in the reference ties it to a type.
///
/// ```
/// use webhook_sender::registry::sysdig_channel_types;
/// assert_eq!(sysdig_channel_types("SECURE_EVENTS_POLICIES"), Some(&["policy"][..]));
/// assert_eq!(sysdig_channel_types("NOPE"), None);
/// ```
#[must_use]
pub fn sysdig_channel_types(channel: &str) -> Option<&'static [&'static str]> {
    CATALOG
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(channel))
        .map(|(_, types)| *types)
}

impl RegistrySnapshot {
    /// Every `WEBHOOK` integration of `forwarding` as one endpoint, named `sysdig-1`,
    /// `sysdig-2`, ... in order (the agent's integration entries have no name). Each channel
    /// becomes an event set of that name (see [`sysdig_channel_types`]); an integration without
    /// channels subscribes to every event.
    ///
    /// Each configuration first goes through [`SysdigWebhookConfig::to_forwarding`], so it is
    /// refused for exactly the reasons the agent's own reading refuses it. Then: `BASIC_AUTH`
    /// becomes [`AuthSpec::Basic`] (`user:password`), `BEARER_TOKEN` [`AuthSpec::Bearer`],
    /// `SIGNATURE` [`AuthSpec::Signature`] with the default scheme and the secret as its one
    /// key; `headers`, `output`, `insecure` and `timestampFormat` are kept in
    /// [`EndpointSpec::headers`], [`encoding`](EndpointSpec::encoding),
    /// [`insecure`](EndpointSpec::insecure) and
    /// [`timestamp_format`](EndpointSpec::timestamp_format).
    ///
    /// ```
    /// use webhook_sender::registry::RegistrySnapshot;
    ///
    /// let snapshot = RegistrySnapshot::from_sysdig_yaml_str("
    /// local_forwarding:
    ///   enabled: true
    ///   integrations:
    ///     - type: WEBHOOK
    ///       channels: [SECURE_EVENTS_POLICIES]
    ///       configuration: {endpoint: 'https://siem.example.com/policies'}
    ///     - type: WEBHOOK
    ///       channels: [ACTIVITY_AUDIT]
    ///       configuration: {endpoint: 'https://audit.example.com/in', output: ndjson}
    /// ")?;
    /// assert_eq!(snapshot.endpoints.len(), 2);
    /// assert_eq!(snapshot.endpoints[1].name, "sysdig-2");
    /// assert_eq!(snapshot.endpoints[1].event_sets, ["ACTIVITY_AUDIT"]);
    /// # Ok::<(), webhook_sender::SpecError>(())
    /// ```
    ///
    /// # Errors
    /// [`SpecError::Sysdig`] for a configuration the agent's rules refuse,
    /// [`SpecError::UnknownChannel`] for a channel outside the catalog.
    pub fn from_sysdig(forwarding: &LocalForwarding) -> Result<Self, SpecError> {
        let webhooks = forwarding.webhooks().map_err(|source| SpecError::Sysdig {
            integration: "local_forwarding".to_owned(),
            source,
        })?;
        let mut snapshot = Self::default();
        for (i, (channels, cfg)) in webhooks.iter().enumerate() {
            let name = format!("sysdig-{}", i + 1);
            cfg.to_forwarding().map_err(|source| SpecError::Sysdig {
                integration: name.clone(),
                source,
            })?;
            let mut spec = spec_of(&name, cfg);
            for channel in channels {
                let types =
                    sysdig_channel_types(channel).ok_or_else(|| SpecError::UnknownChannel {
                        integration: name.clone(),
                        channel: channel.clone(),
                    })?;
                if !snapshot.event_sets.iter().any(|s| &s.name == channel) {
                    snapshot
                        .event_sets
                        .push(EventSet::new(channel.clone(), types.iter().copied()));
                }
                if !spec.event_sets.contains(channel) {
                    spec.event_sets.push(channel.clone());
                }
            }
            snapshot.endpoints.push(spec);
        }
        Ok(snapshot)
    }

    /// [`from_sysdig`](Self::from_sysdig) of a JSON document that is either a whole
    /// `local_forwarding` section (`{"enabled": ..., "integrations": [...]}`) or a document
    /// holding one under the `local_forwarding` key (an agent configuration).
    ///
    /// # Errors
    /// [`SpecError::Parse`], [`SpecError::Sysdig`] (no `WEBHOOK` integration, ...) or as
    /// [`from_sysdig`](Self::from_sysdig).
    pub fn from_sysdig_json_str(s: &str) -> Result<Self, SpecError> {
        let v: Value = serde_json::from_str(s).map_err(|e| SpecError::Parse {
            format: "JSON",
            message: e.to_string(),
        })?;
        Self::from_sysdig_value(v)
    }

    /// [`from_sysdig_json_str`](Self::from_sysdig_json_str) for YAML (the agent's
    /// `dragent.yaml`).
    ///
    /// # Errors
    /// As [`from_sysdig_json_str`](Self::from_sysdig_json_str).
    #[cfg(feature = "yaml")]
    pub fn from_sysdig_yaml_str(s: &str) -> Result<Self, SpecError> {
        let v: Value = serde_yaml_ng::from_str(s).map_err(|e| SpecError::Parse {
            format: "YAML",
            message: e.to_string(),
        })?;
        Self::from_sysdig_value(v)
    }

    fn from_sysdig_value(mut v: Value) -> Result<Self, SpecError> {
        if let Some(section) = v.get_mut("local_forwarding") {
            v = section.take();
        }
        let sysdig = |source| SpecError::Sysdig {
            integration: "local_forwarding".to_owned(),
            source,
        };
        if v.get("integrations").is_none() {
            return Err(sysdig(ConfigError::NoWebhook));
        }
        let forwarding: LocalForwarding =
            serde_json::from_value(v).map_err(|e| sysdig(ConfigError::Parse(e.to_string())))?;
        let snapshot = Self::from_sysdig(&forwarding)?;
        if snapshot.endpoints.is_empty() {
            return Err(sysdig(ConfigError::NoWebhook));
        }
        Ok(snapshot)
    }
}

fn spec_of(name: &str, cfg: &SysdigWebhookConfig) -> EndpointSpec {
    let secret = cfg.secret.clone().unwrap_or_default();
    let mut spec = EndpointSpec::new(name, cfg.endpoint.clone());
    spec.auth = match cfg.auth {
        None => AuthSpec::None,
        Some(SysdigAuth::BasicAuth) => {
            let (user, password) = secret.split_once(':').unwrap_or((&secret, ""));
            AuthSpec::Basic {
                username: user.to_owned(),
                password: password.to_owned(),
            }
        }
        Some(SysdigAuth::BearerToken) => AuthSpec::Bearer { token: secret },
        Some(SysdigAuth::Signature) => AuthSpec::Signature {
            scheme: webhook_core::Scheme::standard_webhooks().name().to_owned(),
            keys: vec![KeySpec::new(secret)],
        },
    };
    spec.headers = cfg
        .headers
        .iter()
        .map(|h| HeaderSpec::new(h.key.clone(), h.value.clone()))
        .collect();
    spec.encoding = match cfg.output {
        SysdigOutput::Ndjson => EncodingSpec::Ndjson,
        SysdigOutput::Json => EncodingSpec::Json,
    };
    spec.insecure = cfg.insecure;
    spec.timestamp_format = Some(cfg.timestamp_format);
    spec
}
