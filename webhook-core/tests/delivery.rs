//! Integration tests of the delivery logic in `webhook-core`: the delivery machine, batching and
//! retry scheduling in
//! virtual time, endpoint health and circuit breaking, routing, templates and response actions,
//! with tables and property tests.

// Tests may read the clock (see clippy.toml; the library code may not).
#![allow(clippy::disallowed_methods)]

#[path = "delivery/batch.rs"]
mod batch;
#[path = "delivery/breaker.rs"]
mod breaker;
#[path = "delivery/health.rs"]
mod health;
#[path = "delivery/machine.rs"]
mod machine;
#[path = "delivery/props.rs"]
mod props;
#[path = "delivery/response.rs"]
mod response;
#[path = "delivery/retry.rs"]
mod retry;
#[path = "delivery/route.rs"]
mod route;
#[path = "delivery/template.rs"]
mod template;
#[path = "delivery/vtime.rs"]
mod vtime;
