//! [`RegistrySnapshot`]: the event sets and endpoints of a sender as one document (JSON or
//! YAML), checked as a whole and applied to a [`SenderBuilder`].

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use webhook_core::{EventSet, EventSets};

use super::{EndpointSpec, SpecError};
use crate::{EndpointConfigBuilder, SenderBuilder};

/// The format version this SDK writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Event sets and endpoints, as data.
///
/// ```
/// use webhook_sender::registry::{EndpointSpec, RegistrySnapshot};
/// use webhook_core::EventSet;
///
/// let mut spec = EndpointSpec::new("acme", "https://hooks.acme.example/in");
/// spec.event_sets = vec!["policies".into()];
/// let snapshot = RegistrySnapshot {
///     event_sets: vec![EventSet::new("policies", ["policy"])],
///     endpoints: vec![spec],
///     ..RegistrySnapshot::default()
/// };
/// let yaml = snapshot.to_yaml_string()?;
/// assert_eq!(RegistrySnapshot::from_yaml_str(&yaml)?, snapshot);
///
/// let mut unknown = snapshot.clone();
/// unknown.endpoints[0].event_sets = vec!["nope".into()];
/// assert!(unknown.validate().unwrap_err().to_string().contains("nope"));
/// # Ok::<(), webhook_sender::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySnapshot {
    /// Format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// Event sets the endpoints subscribe to by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_sets: Vec<EventSet>,
    /// The endpoints.
    #[serde(default)]
    pub endpoints: Vec<EndpointSpec>,
}

impl Default for RegistrySnapshot {
    fn default() -> Self {
        Self {
            version: FORMAT_VERSION,
            event_sets: Vec::new(),
            endpoints: Vec::new(),
        }
    }
}

impl RegistrySnapshot {
    /// Reads a JSON snapshot (shape and version only; see [`validate`](Self::validate)).
    ///
    /// # Errors
    /// [`SpecError::Parse`] or [`SpecError::UnsupportedVersion`].
    pub fn from_json_str(s: &str) -> Result<Self, SpecError> {
        let snapshot: Self = serde_json::from_str(s).map_err(|e| SpecError::Parse {
            format: "JSON",
            message: e.to_string(),
        })?;
        snapshot.check_version()
    }

    /// Reads a YAML snapshot (shape and version only; see [`validate`](Self::validate)).
    ///
    /// # Errors
    /// [`SpecError::Parse`] or [`SpecError::UnsupportedVersion`].
    #[cfg(feature = "yaml")]
    pub fn from_yaml_str(s: &str) -> Result<Self, SpecError> {
        let snapshot: Self = serde_yaml_ng::from_str(s).map_err(|e| SpecError::Parse {
            format: "YAML",
            message: e.to_string(),
        })?;
        snapshot.check_version()
    }

    fn check_version(self) -> Result<Self, SpecError> {
        if self.version == FORMAT_VERSION {
            Ok(self)
        } else {
            Err(SpecError::UnsupportedVersion(self.version))
        }
    }

    /// Pretty-printed JSON. Secrets are written as they are: use [`redacted`](Self::redacted)
    /// for anything but the registry's own storage.
    ///
    /// # Errors
    /// [`SpecError::Serialize`] (not expected).
    pub fn to_json_string(&self) -> Result<String, SpecError> {
        serde_json::to_string_pretty(self).map_err(|e| SpecError::Serialize(e.to_string()))
    }

    /// YAML. Secrets are written as they are (see [`to_json_string`](Self::to_json_string)).
    ///
    /// # Errors
    /// [`SpecError::Serialize`] (not expected).
    #[cfg(feature = "yaml")]
    pub fn to_yaml_string(&self) -> Result<String, SpecError> {
        serde_yaml_ng::to_string(self).map_err(|e| SpecError::Serialize(e.to_string()))
    }

    /// A copy with every endpoint [`redacted`](EndpointSpec::redacted).
    #[must_use]
    pub fn redacted(&self) -> Self {
        Self {
            version: self.version,
            event_sets: self.event_sets.clone(),
            endpoints: self.endpoints.iter().map(EndpointSpec::redacted).collect(),
        }
    }

    /// Checks the whole: valid and distinct event sets, distinct endpoint names, every event set
    /// an endpoint names defined, and each endpoint buildable
    /// ([`EndpointSpec::config_builder`], then the builder's own checks).
    ///
    /// # Errors
    /// The first problem, as a [`SpecError`].
    pub fn validate(&self) -> Result<(), SpecError> {
        let sets = self.event_sets()?;
        let mut names = HashSet::new();
        for spec in &self.endpoints {
            if !names.insert(spec.name.as_str()) {
                return Err(SpecError::DuplicateEndpoint(spec.name.clone()));
            }
            if let Some(missing) = spec.event_sets.iter().find(|n| sets.get(n).is_none()) {
                return Err(SpecError::UnknownEventSet {
                    endpoint: spec.name.clone(),
                    event_set: missing.clone(),
                });
            }
            spec.build(spec.config_builder()?)?;
        }
        Ok(())
    }

    fn event_sets(&self) -> Result<EventSets, SpecError> {
        let mut sets = EventSets::new();
        for set in &self.event_sets {
            sets.insert(set.clone())
                .map_err(|source| SpecError::EventSet {
                    name: set.name.clone(),
                    source,
                })?;
        }
        Ok(sets)
    }

    /// [`validate`](Self::validate)s, then adds the event sets and the endpoints
    /// ([`EndpointSpec::to_config`]) to `builder`.
    ///
    /// ```
    /// use webhook_sender::Sender;
    /// use webhook_sender::registry::RegistrySnapshot;
    ///
    /// let snapshot = RegistrySnapshot::from_json_str(r#"{"version": 1,
    ///     "endpoints": [{"name": "a", "url": "https://a.example/in"}]}"#)?;
    /// let builder = snapshot.apply(Sender::builder())?;
    /// # drop(builder);
    /// # Ok::<(), webhook_sender::SpecError>(())
    /// ```
    ///
    /// # Errors
    /// The first problem, as a [`SpecError`]; [`SpecError::Insecure`] and
    /// [`SpecError::TimestampFormat`] for settings only [`apply_with`](Self::apply_with) can
    /// honour.
    pub fn apply(self, builder: SenderBuilder) -> Result<SenderBuilder, SpecError> {
        self.validate()?;
        let mut builder = self
            .event_sets
            .into_iter()
            .fold(builder, SenderBuilder::event_set);
        for spec in &self.endpoints {
            builder = builder.endpoint(spec.to_config()?);
        }
        Ok(builder)
    }

    /// As [`apply`](Self::apply), but each endpoint's [`EndpointConfigBuilder`] goes through
    /// `hook` before it is built. The hook takes charge of what a config cannot hold:
    /// [`EndpointSpec::insecure`] (give the endpoint a transport that skips certificate
    /// verification with [`EndpointConfigBuilder::transport`]) and
    /// [`EndpointSpec::timestamp_format`] (encode the events at that resolution); `apply_with`
    /// does not refuse them.
    ///
    /// # Errors
    /// The first problem, as a [`SpecError`], or the hook's error.
    pub fn apply_with<F>(
        self,
        builder: SenderBuilder,
        mut hook: F,
    ) -> Result<SenderBuilder, SpecError>
    where
        F: FnMut(&EndpointSpec, EndpointConfigBuilder) -> Result<EndpointConfigBuilder, SpecError>,
    {
        self.validate()?;
        let mut builder = self
            .event_sets
            .into_iter()
            .fold(builder, SenderBuilder::event_set);
        for spec in &self.endpoints {
            let config = hook(spec, spec.config_builder()?)?;
            builder = builder.endpoint(spec.build(config)?);
        }
        Ok(builder)
    }
}
