//! # webhook-payloads
//!
//! Typed payloads of the webhook senders this SDK's users meet: Sysdig Secure, ConnectSecure,
//! Soveren, Safous, Falco/Falcosidekick, Alertmanager, CloudEvents and Standard Webhooks, plus
//! [`detect()`], which recognizes the family of a request body and parses it once, and generic
//! decoding helpers ([`decode_object`], [`decode_array`], [`decode_ndjson`], [`decode_batch`])
//! whose [`DecodeError`] separates malformed JSON (HTTP 400) from JSON of the wrong shape (422).
//!
//! Every payload struct keeps the fields it does not know in an `extra` map and writes them back,
//! so parse → serialize → parse loses nothing. Vendors' loose typing is tolerated where it is
//! known to happen (numbers sent as strings, categories renamed between versions, unknown event
//! types): an odd but real event parses rather than being dropped.
//!
//! | module | payload |
//! | --- | --- |
//! | [`sysdig`] | Sysdig Secure events (policy current + legacy, activity audit, audit trail, ...) |
//! | [`connectsecure`] | ConnectSecure `{subject, body}` alerts, with facts extracted from `body` |
//! | [`soveren`] | Soveren event objects |
//! | [`safous`] | Safous ZTNA webhook-rule parameters (`%param%`) and decision responses |
//! | [`falco`] | Falco / Falcosidekick events |
//! | [`alertmanager`] | Prometheus Alertmanager webhook (version 4) |
//! | [`cloudevents`] | CloudEvents 1.0: structured, batch and binary HTTP modes |
//! | [`standard`] | Standard Webhooks envelope (`type`, `timestamp`, `data`) |
//!
//! This crate does no I/O and never reads the clock.

mod decode;
mod detect;
mod error;
mod object;
mod timestamp;

pub mod alertmanager;
pub mod cloudevents;
pub mod connectsecure;
pub mod falco;
pub mod safous;
pub mod soveren;
pub mod standard;
pub mod sysdig;

pub use decode::{Framing, decode_array, decode_batch, decode_ndjson, decode_object, framing};
pub use detect::{Detected, Family, Payload, detect};
pub use error::{DecodeError, DetectError};
pub use timestamp::{Timestamp, TimestampFormat};
