//! # webhook-receiver
//!
//! Receive webhooks correctly: verify the raw bytes, decode, route by subject/type, hand typed
//! payloads to handlers and answer with the status code that tells the sender what to do.
