//! # webhook-sender
//!
//! The async delivery engine: a thin tokio driver per endpoint around `webhook-core`'s
//! [`Delivery`](webhook_core::Delivery) machine (which decides batching, retries, health,
//! breaker and limits), with reqwest and hyper transports.
//!
//! | module | what |
//! | --- | --- |
//! | [`sender`] | the engine: [`Sender`], its runtime registry of endpoints (add, update, pause, remove, event sets, status, audit), queues and overflow policies, receipts, lifecycle, shutdown, metrics |
//! | [`outbox`] | the durable outbox: events kept on disk until settled, restart, dead letters and redelivery |
//! | [`registry`] | endpoints as data: [`EndpointSpec`], [`RegistrySnapshot`] (JSON/YAML), the Sysdig `local_forwarding` file as a snapshot, redaction and field diffs |
//! | [`transport`] | the [`Transport`] trait, its reqwest and hyper implementations, timeouts, body cap, no redirects |
//! | [`tls`] | rustls client configuration: webpki roots, custom CA, mTLS, explicit insecure mode |
//! | [`ssrf`] | the SSRF guard applied to the addresses actually connected to |
//! | [`token`] | token-fetching auth: authentication URL with username/password, OAuth2 client credentials |
//! | [`callout`] | sending a prepared call-out request with Basic or OAuth2 auth |
//! | [`error`] | transport errors with `is_timeout()`-style predicates |
//!
//! ## Features
//!
//! | feature | default | enables |
//! | --- | --- | --- |
//! | `reqwest` | yes | [`transport::ReqwestTransport`] |
//! | `hyper` | no | `transport::HyperTransport` (hyper 1, hyper-util legacy client) |
//! | `gzip` | no | gzip-compressed batch bodies for endpoints built with `EndpointBuilder::gzip` |
//! | `yaml` | yes | [`RegistrySnapshot`] from and to YAML |
//!
//! Both use rustls with the `ring` provider; nothing pulls aws-lc or OpenSSL.

pub mod callout;
pub mod error;
pub mod outbox;
pub mod registry;
pub mod sender;
pub mod ssrf;
pub mod tls;
pub mod token;
pub mod transport;

pub use error::{BuildError, TransportError};
pub use registry::{EndpointSpec, RegistrySnapshot, SpecError};
pub use sender::{
    AttemptError, AuditAction, AuditEntry, AuditStream, AuditTarget, Concurrency, Counters,
    DEFAULT_PARK_AFTER, DeadLetter, DeliveryReport, DisableReason, EnableError, EndpointConfig,
    EndpointConfigBuilder, EndpointConfigError, EndpointHealth, EndpointOutcome, EndpointState,
    EndpointStatus, FailureReason, LastError, LifecycleEvent, Outcome, OverflowPolicy, RateLimit,
    Receipt, RegistryError, RemovePolicy, RemoveReport, SendError, Sender, SenderBuildError,
    SenderBuilder, ShutdownReport, TestIntegrationError, TestReport, Undelivered, UndeliveredStage,
};
pub use token::{Credential, TokenProvider};
pub use transport::{Response, SharedTransport, Transport, TransportBuilder};
