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
//! Sysdig events borrow their strings from the request body (`SysdigEvent<'a>`, see
//! [`sysdig`]); `into_owned()` detaches them. The other families are small and owned.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use webhook_payloads::{detect, Family, Payload};
//! let body = br#"[{"id":"17dec715376910362c8c3f62a4ceda2e","type":"policy",
//!   "timestamp":1720031001639981110,"severity":7,"labels":{"host.hostName":"node-1"}}]"#;
//! let found = detect(Some("application/json"), &http::HeaderMap::new(), body)?;
//! assert_eq!(found.family(), Some(Family::Sysdig));
//! let Payload::Sysdig(ev) = &found.payloads[0] else { unreachable!() };
//! assert_eq!(ev.timestamp_ns(), Some(1_720_031_001_639_981_110));
//!
//! // Malformed JSON and JSON of the wrong shape map to different HTTP statuses.
//! let err = detect(None, &http::HeaderMap::new(), b"{\"id\":").unwrap_err();
//! assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
//! # Ok(()) }
//! ```
//!
//! This crate does no I/O and never reads the clock.

mod decode;
mod detect;
mod error;
mod fast;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod object;
mod string_map;
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
