//! # webhook-core
//!
//! The I/O-free heart of the webhook SDK: everything a webhook sender or receiver *decides*,
//! with none of what it *does*. This crate never opens a socket, never spawns a task and never
//! reads the clock: every function that depends on time takes `now` as an argument (the
//! quinn-proto discipline), so the whole delivery and verification logic is testable to the
//! millisecond without sleeping.
//!
//! The async drivers live in `webhook-sender` (outbound) and `webhook-receiver` (inbound).

#![cfg_attr(docsrs, feature(doc_cfg))]

// ---------------------------------------------------------------------------------------------
// Security: secrets, keys, signing, verification, auth, header rules.
// ---------------------------------------------------------------------------------------------

// (security modules)
pub mod auth;
#[cfg(feature = "ed25519")]
#[cfg_attr(docsrs, doc(cfg(feature = "ed25519")))]
pub mod ed25519;
pub mod headers;
pub mod keyring;
#[cfg(feature = "pem")]
#[cfg_attr(docsrs, doc(cfg(feature = "pem")))]
pub mod pem;
pub mod secret;
pub mod sign;
pub mod verify;

pub use auth::{
    AuthConfigError, AuthError, BasicCredentials, BearerToken, ClientCertificate,
    ClientCertificatePem, HeaderToken, Identity, ReceiverAuth, SenderAuth,
};
pub use headers::{CustomHeaders, CustomHeadersBuilder, HeaderError, is_reserved_header};
pub use keyring::{Key, KeyEntry, KeyRing, KeyRingError};
pub use secret::{Secret, SecretError};
pub use sign::{
    Algorithm, Scheme, SchemeBuilder, SchemeError, SignError, SignatureEncoding, SignatureFormat,
    SignedContent, Signer, TimestampSource, Tolerance,
};
pub use verify::{TimestampCheck, Verified, Verifier, VerifyError};
// (end of security modules)

// ---------------------------------------------------------------------------------------------
// Delivery: events, encoding, batching, retry, health, routing, templates, response actions.
// ---------------------------------------------------------------------------------------------

// (delivery modules)
pub mod batch;
pub mod breaker;
pub mod encode;
pub mod event;
pub mod health;
pub mod json;
pub mod response;
pub mod retry;
pub mod route;
pub mod template;

pub use batch::{
    Batch, BatchId, BatchOutcome, Batcher, BatcherConfig, BatcherConfigBuilder, BatcherConfigError,
    BatcherStats, CompleteError, FlushReason, PushError,
};
pub use breaker::{BreakerConfig, BreakerConfigError, BreakerState, CircuitBreaker};
pub use encode::{Body, EncodeError, Encoding};
pub use event::{Event, EventBuilder, EventError, ScaledTimestamp, TimestampFormat};
pub use health::{Health, HealthConfig, HealthEvent, HealthState};
pub use response::{
    Condition, Decision, Evaluation, ResponseActions, ResponseActionsBuilder, ResponseError,
    ResponseFormat,
};
pub use retry::{
    AttemptOutcome, GiveUpReason, JitterRng, RetryDecision, RetryPolicy, RetryPolicyBuilder,
    RetryPolicyError, RetryState, Schedule, SplitMix64, Verdict, parse_retry_after,
};
pub use route::{MatchMode, Matches, RouteError, Router, RouterBuilder};
pub use template::{
    OnMissing, ParamSet, RenderError, Template, TemplateBuilder, TemplateContext, TemplateError,
    TemplateParams, WithHeaders,
};

// ---------------------------------------------------------------------------------------------
// Requests and configuration (built on both of the above).
// ---------------------------------------------------------------------------------------------

// (request and config modules)
pub mod config;
pub mod request;

// The delivery machine composing batcher, retry, health, breaker and limits.
mod delivery;

pub use delivery::{
    AttemptError, AttemptId, AttemptResult, Concurrency, Delivery, DeliveryBuilder,
    DeliveryConfigError, DeliveryEvent, DisableReason, FailureReason, Full, HealthChange,
    RateLimit, Settled, Settlement, Transmit, UndeliveredStage,
};

pub use request::{Endpoint, EndpointBuilder, EndpointError, RequestError};
