//! Endpoints as data: the serializable settings of the endpoints an application manages for its
//! customers, and whole registries of them.
//!
//! | item | source | what |
//! | --- | --- | --- |
//! | [`EndpointSpec`] | `spec.rs` | one endpoint's settings (serde); [`EndpointSpec::to_config`] builds its [`EndpointConfig`](crate::EndpointConfig) through the public builders |
//! | [`EndpointSpec::redacted`], [`EndpointSpec::changes`] | `redact.rs` | secrets replaced by `<redacted:sha256:1a2b3c4d>` markers; field-level differences for an audit trail ([`FieldChange`]) |
//! | [`RegistrySnapshot`] | `snapshot.rs` | format version, event sets and endpoints, JSON and YAML, [`validate`](RegistrySnapshot::validate) and [`apply`](RegistrySnapshot::apply) to a [`SenderBuilder`](crate::SenderBuilder) |
//! | [`RegistrySnapshot::from_sysdig`], [`sysdig_channel_types`] | `sysdig.rs` | every `WEBHOOK` integration of a Sysdig agent's `local_forwarding` section, its channels as event sets |
//! | [`SpecError`] | `error.rs` | every refusal, naming the endpoint and the field, never a secret |
//!
//! Two settings of a spec are not part of an [`EndpointConfig`](crate::EndpointConfig):
//! [`EndpointSpec::insecure`] (it needs a transport that skips certificate verification) and
//! [`EndpointSpec::timestamp_format`] (the resolution of the payload's `timestamp`, written by
//! whoever encodes the events). [`EndpointSpec::to_config`] and [`RegistrySnapshot::apply`]
//! refuse a spec that asks for them ([`SpecError::Insecure`], [`SpecError::TimestampFormat`]);
//! [`RegistrySnapshot::apply_with`] hands each spec to a hook that takes charge of them.
//!
//! ```
//! use webhook_sender::registry::RegistrySnapshot;
//!
//! let snapshot = RegistrySnapshot::from_json_str(r#"{
//!   "version": 1,
//!   "event_sets": [{"name": "vulnerabilities", "types": ["vulnerability.*"]}],
//!   "endpoints": [{
//!     "name": "acme-siem",
//!     "url": "https://siem.acme.example/hooks",
//!     "tenant": "acme",
//!     "event_sets": ["vulnerabilities"],
//!     "auth": {"type": "bearer", "token": "s3cr3t-t0ken"}
//!   }]
//! }"#)?;
//! snapshot.validate()?;
//! let config = snapshot.endpoints[0].to_config()?;
//! assert_eq!(config.subscription().tenant.as_deref(), Some("acme"));
//! assert!(!format!("{snapshot:?}").contains("s3cr3t-t0ken"));
//! # Ok::<(), webhook_sender::SpecError>(())
//! ```

mod error;
mod redact;
mod snapshot;
mod spec;
mod sysdig;

pub use error::SpecError;
pub use redact::{FieldChange, REDACTED_PREFIX};
pub use snapshot::{FORMAT_VERSION, RegistrySnapshot};
pub use spec::{
    AuthSpec, BatchingSpec, ClientCertificateSpec, ConcurrencySpec, EncodingSpec, EndpointSpec,
    HeaderSpec, KeySpec, OverflowSpec, QueueSpec, RateLimitSpec, RetrySpec,
};
pub use sysdig::sysdig_channel_types;
