//! Routing and answering: subject routers, request templates, Safous response actions, and the
//! Sysdig agent's webhook configuration that wires them to endpoints.
//!
//! The public items are re-exported at the crate root; `sysdig_config` stays a public namespace.

pub(crate) mod response_actions;
pub(crate) mod route;
pub(crate) mod subscription;
pub mod sysdig_config;
pub(crate) mod template;
