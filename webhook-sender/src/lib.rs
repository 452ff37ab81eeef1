//! # webhook-sender
//!
//! The async delivery engine: a thin tokio driver of `webhook-core`'s batcher, retry policy and
//! endpoint health, with reqwest and hyper transports.
