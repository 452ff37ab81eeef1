//! # webhook-core
//!
//! The I/O-free heart of the webhook SDK: everything a webhook sender or receiver *decides*,
//! with none of what it *does*. This crate never opens a socket, never spawns a task and never
//! reads the clock: every function that depends on time takes `now` as an argument (the
//! quinn-proto discipline), so the whole delivery and verification logic is testable to the
//! millisecond without sleeping. `clippy.toml` enforces it: the clock, files, sockets, sleeping
//! and the environment are disallowed methods in this crate's code.
//!
//! The async drivers live in `webhook-sender` (outbound) and `webhook-receiver` (inbound).
//!
//! ## Modules
//!
//! Every type has one public path: the crate root. The source folders show the architecture;
//! three small namespaces stay public for items that are not at the root.
//!
//! | part | source | concepts (at the crate root) |
//! | --- | --- | --- |
//! | security | `security/secret.rs`, `keyring.rs` | [`Secret`], [`KeyRing`], [`Key`], [`KeyEntry`] (rotation windows) |
//! | | `security/scheme/` | [`Scheme`] (one description of every signature scheme) and its presets: [`Scheme::standard_webhooks`], [`Scheme::github`], [`Scheme::stripe`], ... |
//! | | `security/key_text.rs`, `keygen.rs` | [`SecretFormat`] and [`Scheme::parse_key`]: each scheme reads its secret as its sender hands it out (Stripe's `whsec_` literally, Standard Webhooks' decoded); [`Scheme::generate_key`] |
//! | | `security/handshake.rs` | [`Handshake`]: Discord PING, Slack `url_verification`, Zoom `endpoint.url_validation`, answered by [`Verifier::answer_handshake`] |
//! | | `security/sign.rs`, `verify.rs` | [`Signer`], [`Verifier`], [`Verified`]: constant time, allocation-free for HMAC |
//! | | `security/auth/` | [`SenderAuth`], [`ReceiverAuth`], [`Identity`]: Basic, Bearer, header token, signature, [`ClientCertificate`] |
//! | | `security/headers.rs` | [`CustomHeaders`]: the headers users may set |
//! | | `security/pem.rs` | namespace [`pem`]: [`pem::PemSource`] and DER decoding for both sides' TLS |
//! | | `security/ed25519.rs` | namespace `ed25519` (feature `ed25519`): `whsk_`/`whpk_` keys |
//! | routing | `routing/route.rs` | [`Router`]: subjects to handlers, wildcards, fallback |
//! | | `routing/template.rs` | [`Template`]: URL, header and body templates (`%name%`) |
//! | | `routing/response_actions.rs` | [`ResponseActions`], [`Decision`]: Safous allow/deny rules over a response |
//! | | `routing/sysdig_config.rs` | namespace [`sysdig_config`]: the Sysdig agent's `WEBHOOK` configuration |
//! | delivery | `event.rs`, `encode.rs`, `json.rs` | [`Event`], [`Encoding`], [`Body`] |
//! | | `batch.rs`, `retry.rs`, `breaker.rs`, `health.rs` | [`Batcher`], [`RetryPolicy`], [`CircuitBreaker`], [`Health`] |
//! | | `request.rs` | [`Endpoint`]: an event batch as a signed `http::Request` |
//!
//! ## Authentication methods
//!
//! Sender side and receiver side, in `security/auth/`:
//!
//! | method | sender ([`SenderAuth::apply`]) | receiver ([`ReceiverAuth::check`]) | identity |
//! | --- | --- | --- | --- |
//! | None | nothing | accepts | [`Identity::Anonymous`] |
//! | Basic (Sysdig `BASIC_AUTH`, Safous) | `Authorization: Basic base64(user:password)` | constant-time | [`Identity::Basic`] (user name) |
//! | Bearer (Sysdig `BEARER_TOKEN`) | `Authorization: Bearer <token>` | constant-time | [`Identity::Bearer`] |
//! | Static header token (ConnectSecure, GitLab) | `<name>: <value>` | constant-time | [`Identity::HeaderToken`] |
//! | Signature (Sysdig `SIGNATURE`) | the scheme's headers ([`Signer`]) | [`Verifier`] | [`Identity::Signature`] (key index, id, timestamp) |
//! | Client certificate (Sysdig, mTLS) | configuration only: the sender's TLS layer presents it | the receiver's TLS layer | — |
//!
//! Sysdig does not publish how its `SIGNATURE` is computed, so [`SenderAuth::signature`] and
//! [`ReceiverAuth::signature`] default to Standard Webhooks; any [`Scheme`] can be used instead.
//!
//! Constant time: credentials are compared as SHA-256 digests with `subtle`, so neither the
//! position of the first difference nor the length of the expected secret leaks through timing.
//! Header values that carry credentials are marked sensitive (never indexed by HTTP/2 HPACK).
//!
//! ## Features
//!
//! | feature | default | provides |
//! | --- | --- | --- |
//! | `yaml` | yes | `SysdigWebhookConfig::from_yaml_str` and the other YAML readers of [`sysdig_config`] (`serde_yaml_ng`) |
//! | `gzip` | no | gzip-compressed batch bodies ([`Encoding`] with `Content-Encoding: gzip`, `flate2`) |
//! | `ed25519` | no | Ed25519 keys (`whsk_`/`whpk_`), Standard Webhooks `v1a` and Discord signatures (`ed25519-dalek`) |
//! | `pem` | always on | kept for compatibility: [`pem`] is always built, because [`ClientCertificate`] decodes its PEM with it (`rustls-pki-types`, no dependencies of its own) |
//!
//! ## Example
//!
//! A sender signs with the attempt's timestamp; a receiver verifies the raw bytes at its own
//! `now`, and routes the event by subject.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use webhook_core::{KeyRing, Router, Scheme, Secret, Signer, Verifier, VerifyError};
//!
//! let ring = KeyRing::single(Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?);
//! let body = br#"{"type":"policy.runtime"}"#;
//!
//! // Sender: sign one delivery attempt.
//! let mut headers = http::HeaderMap::new();
//! Signer::new(Scheme::standard_webhooks(), &ring)?
//!     .sign("msg_1", 1_700_000_000, body, &mut headers)?;
//!
//! // Receiver: verify at its `now`, within the scheme's replay window...
//! let verifier = Verifier::new(Scheme::standard_webhooks(), &ring)?;
//! let now = UNIX_EPOCH + Duration::from_secs(1_700_000_010);
//! assert_eq!(verifier.verify(&headers, body, now)?.id(), Some("msg_1"));
//! // ...and refuse a changed body.
//! assert!(matches!(
//!     verifier.verify(&headers, b"{}", now),
//!     Err(VerifyError::NoMatchingSignature)
//! ));
//!
//! // Route by subject.
//! let router = Router::builder().route("policy.*", "policy handler").build()?;
//! assert_eq!(router.first("policy.runtime"), Some(&"policy handler"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]
// `clippy.toml` bans the clock and I/O in this crate; unit tests may use them. The ban stays
// enforced on the library itself, which clippy also checks without `cfg(test)`.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

mod routing;
mod security;

// ---------------------------------------------------------------------------------------------
// Security: secrets, keys, signing, verification, auth, header rules.
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "ed25519")]
#[cfg_attr(docsrs, doc(cfg(feature = "ed25519")))]
pub use security::ed25519;
pub use security::pem;

pub use security::auth::{
    AuthConfigError, AuthError, BasicCredentials, BearerToken, ClientCertificate,
    ClientCertificatePem, HeaderToken, Identity, ReceiverAuth, SenderAuth,
};
pub use security::handshake::{Handshake, HandshakeReply};
pub use security::headers::{CustomHeaders, CustomHeadersBuilder, HeaderError, is_reserved_header};
pub use security::key_text::{KeyTextError, SecretFormat};
pub use security::keygen::GeneratedKey;
pub use security::keyring::{Key, KeyEntry, KeyRing, KeyRingError};
pub use security::scheme::{
    Algorithm, Scheme, SchemeBuilder, SchemeError, SignatureEncoding, SignatureFormat,
    SignedContent, TimestampSource, Tolerance,
};
pub use security::secret::{Secret, SecretError};
pub use security::sign::{SignError, Signer};
pub use security::verify::{TimestampCheck, Verified, Verifier, VerifyError};

// ---------------------------------------------------------------------------------------------
// Routing: routers, templates, response actions, the Sysdig configuration.
// ---------------------------------------------------------------------------------------------

pub use routing::sysdig_config;

pub use routing::response_actions::{
    Condition, Decision, Evaluation, ResponseActions, ResponseActionsBuilder, ResponseError,
    ResponseFormat,
};
pub use routing::route::{MatchMode, Matches, RouteError, Router, RouterBuilder};
pub use routing::subscription::{
    EventSet, EventSets, RouteIndex, Selector, Subscription, SubscriptionError,
};
pub use routing::template::{
    OnMissing, ParamSet, RenderError, Template, TemplateBuilder, TemplateContext, TemplateError,
    TemplateParams, WithHeaders,
};

// ---------------------------------------------------------------------------------------------
// Delivery: events, encoding, batching, retry, health, requests.
// ---------------------------------------------------------------------------------------------

pub use delivery::batch::{
    Batch, BatchId, BatchOutcome, Batcher, BatcherConfig, BatcherConfigBuilder, BatcherConfigError,
    BatcherStats, CompleteError, FlushReason, PushError,
};
pub use delivery::breaker::{BreakerConfig, BreakerConfigError, BreakerState, CircuitBreaker};
pub use delivery::encode::{Body, EncodeError, Encoding};
pub use delivery::event::{
    Event, EventBuilder, EventError, ParseTimestampFormatError, ScaledTimestamp, TimestampFormat,
};
pub use delivery::health::{Health, HealthConfig, HealthEvent, HealthState};
pub use delivery::request::{
    DEFAULT_USER_AGENT, Endpoint, EndpointBuilder, EndpointError, ID_HEADER, RequestError,
};
pub use delivery::retry::{
    AttemptOutcome, GiveUpReason, JitterRng, RetryDecision, RetryPolicy, RetryPolicyBuilder,
    RetryPolicyError, RetryState, Schedule, SplitMix64, Verdict, WEBHOOK_DELIVERY_HEADER,
    parse_retry_after,
};

// The delivery machine composing batcher, retry, health, breaker and limits.
mod delivery;

pub use delivery::json;

pub use delivery::{
    AttemptError, AttemptId, AttemptResult, Concurrency, Delivery, DeliveryBuilder,
    DeliveryConfigError, DeliveryEvent, DisableReason, FailureReason, Full, HealthChange,
    RateLimit, Settled, Settlement, Transmit, UndeliveredStage,
};
