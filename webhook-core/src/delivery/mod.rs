//! Delivery decisions: the per-endpoint [`Delivery`] machine and the parts it composes.
//!
//! ```text
//! push(event, tag, now) ─▶ Batcher ─▶ (staged) ─▶ limits · rate · breaker ─▶ poll_transmit ─▶ driver sends
//!                                          ▲                                          │
//!          handle_timeout(now): retries due, lingers, health windows, deadline        ▼
//!                                          └── RetryPolicy ◀── handle_response(attempt, result, now)
//!                                                   │
//!                       poll_event: Sent · RetryScheduled · Settled(delivered | gave up | abandoned) · Health
//! ```
//!
//! The machine decides; a driver (the sender's tokio task, a test harness with virtual time)
//! reads the clock, feeds inputs, sends what [`Delivery::poll_transmit`] returns and publishes
//! what [`Delivery::poll_event`] returns. See [`Delivery`] for the driving contract.

pub(crate) mod batch;
pub(crate) mod breaker;
pub(crate) mod encode;
pub(crate) mod event;
pub(crate) mod health;
pub mod json;
mod limit;
mod machine;
pub(crate) mod request;
pub(crate) mod retry;
mod settle;

pub use self::limit::{Concurrency, RateLimit};
pub use self::machine::{
    AttemptId, AttemptResult, Delivery, DeliveryBuilder, DeliveryConfigError, DeliveryEvent, Full,
    HealthChange, Settled, Settlement, Transmit,
};
pub use self::settle::{AttemptError, DisableReason, FailureReason, UndeliveredStage};
