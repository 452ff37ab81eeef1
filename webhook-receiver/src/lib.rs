//! # webhook-receiver
//!
//! Receive webhooks correctly: verify the raw bytes, decode, route by subject/type, hand typed
//! payloads to handlers and answer with the status code that tells the sender what to do.
//!
//! ```text
//! request → method / media type / encoding → bounded body (413 while reading) → gzip (bounded)
//!         → authenticate raw bytes (401) → replay reservation (duplicate: 200; in flight: 409)
//!         → registration handshake (Discord PING, Slack url_verification, Zoom
//!           endpoint.url_validation: answered 200 here) → decode (400 / 422; forms as JSON)
//!         → route by subject → handlers → 200 | JSON decision | 429 | 500 (id released)
//! ```
//!
//! Build a [`ReceiverConfig`] (authentication is required: a `webhook-core`
//! [`Verifier`](webhook_core::Verifier) for any signature scheme and key ring, a
//! [`ReceiverAuth`](webhook_core::ReceiverAuth) for Basic/Bearer/header token, or [`ReceiverAuth::None`](webhook_core::ReceiverAuth::None),
//! the explicit "none"), then a [`Receiver`] with handlers routed by subject with
//! `webhook-core`'s router (wildcards, case-insensitive, fallback); serve it with `Server` (feature `server`), as a tower
//! service or `tower::VerifyLayer` (feature `tower`), or use the `axum::Webhook` extractor
//! (feature `axum`).
//!
//! | status | meaning | the sender should |
//! | --- | --- | --- |
//! | 2xx | accepted (optionally a JSON decision body), or a verified handshake answered as its provider documents; `200 {"status":"duplicate"}` when this message (its id, or its signed timestamp and body) was already acknowledged: the handlers do not run again | move on |
//! | 400 | malformed body (names the NDJSON line or JSON line/column), bad gzip | fix the request |
//! | 401 | authentication or signature failure | fix credentials |
//! | 405 | method not allowed (`Allow` lists the allowed ones) | fix the method |
//! | 409 | the same message is being handled by another request right now | retry later |
//! | 413 | body or decompressed body above the limit | send smaller batches |
//! | 415 | unsupported media type or content encoding | fix the format |
//! | 422 | valid JSON of the wrong shape | fix the payload |
//! | 429 | a handler is overloaded | retry later |
//! | 500 | a handler failed; nothing was acknowledged | retry |
//! | 503 | shutting down | retry later |
//!
//! Error bodies are `{"error": "<kind>", "detail": "..."}` and never echo secrets, signatures
//! or header values.
//!
//! ## Features
//!
//! | feature | default | provides |
//! | --- | --- | --- |
//! | `server` | yes | `Server`: hyper 1.x HTTP/1.1 on a tokio `TcpListener`, graceful shutdown, health check |
//! | `tls` | no | `Server::tls`: HTTPS and mutual TLS with rustls (`tls::ServerTls`) |
//! | `http2` | no | `Server::http2`: HTTP/2 next to HTTP/1.1 (ALPN over TLS, prior knowledge over TCP) |
//! | `tower` | no | `Service` for [`Receiver`], `tower::VerifyLayer` middleware |
//! | `axum` | no | `axum::Webhook` extractor (on `axum-core`) |
//! | `ed25519` | no | Ed25519 keys in `webhook-core` (Standard Webhooks `v1a`, Discord) |
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use webhook_core::{KeyRing, Scheme, Secret, Signer, Verifier};
//! use webhook_receiver::{handler_fn, Context, HandlerOutcome, Receiver, ReceiverConfig};
//!
//! #[derive(serde::Deserialize)]
//! struct Event { r#type: String }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ring = KeyRing::single(Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?);
//! let config = ReceiverConfig::builder()
//!     .verify(Verifier::new(Scheme::standard_webhooks(), &ring)?)
//!     .build()?;
//! let receiver = Receiver::builder(config)
//!     .subject(|e: &Event| Some(e.r#type.as_str()))
//!     .route("policy.*", handler_fn(|_e: Event, _cx: Context| async { HandlerOutcome::Accepted }))
//!     .fallback(handler_fn(|_e: Event, _cx: Context| async { HandlerOutcome::failed("unexpected type") }))
//!     .build()?;
//!
//! let body = br#"{"type":"policy.runtime"}"#;
//! let mut request = http::Request::post("/hooks").header("content-type", "application/json");
//! Signer::new(Scheme::standard_webhooks(), &ring)?
//!     .sign("msg_1", 1_700_000_000, body, request.headers_mut().ok_or("headers")?)?;
//! let request = request.body(http_body_util::Full::new(bytes::Bytes::from_static(body)))?;
//! let now = UNIX_EPOCH + Duration::from_secs(1_700_000_010);
//! assert_eq!(receiver.handle_at(request, now).await.status(), http::StatusCode::OK);
//! # Ok(())
//! # }
//! ```

mod auth;
mod body;
mod config;
mod context;
mod decode;
mod handler;
mod intake;
mod media;
mod outcome;
mod receiver;
mod rejection;
mod replay;
mod route;

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "inbox")]
pub mod inbox;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "tower")]
pub mod tower;

pub use auth::{AuthRejection, AuthRejectionKind, Authenticate, Authenticated, Identity};
pub use config::{
    DEFAULT_BODY_LIMIT, DEFAULT_REPLAY_ENTRIES, DEFAULT_REPLAY_WINDOW, MAX_BODY_LIMIT,
    ReceiverBuildError, ReceiverConfig, ReceiverConfigBuilder, SignedBody,
};
pub use context::{Context, ContextBuilder, PeerCertificate, RemoteAddr};
pub use decode::{
    BodyDecodeError, ConnectSecureDecoder, Decode, DetectDecoder, JsonDecoder, Location, RawBody,
    SysdigDecoder, SysdigDecoderAt, form_json,
};
pub use handler::{Handler, HandlerFn, handler_fn};
pub use media::MediaType;
pub use outcome::HandlerOutcome;
pub use receiver::{Receiver, ReceiverBuilder, ReceiverResponse};
pub use rejection::Rejection;
pub use replay::{ReplayCache, ReplayFuture, ReplayStore, ReplayStoreError, Replayed, Ticket};
#[cfg(feature = "http2")]
pub use server::MAX_HTTP2_STREAMS;
#[cfg(feature = "server")]
pub use server::{
    Answered, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT, ServeError, Server,
};
