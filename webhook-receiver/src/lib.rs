//! # webhook-receiver
//!
//! Receive webhooks correctly: verify the raw bytes, decode, route by subject/type, hand typed
//! payloads to handlers and answer with the status code that tells the sender what to do.
//!
//! ```text
//! request → method / media type / encoding → bounded body (413 while reading) → gzip (bounded)
//!         → authenticate raw bytes (401) → replay reservation (409) → decode (400 / 422)
//!         → route by subject → handlers → 200 | JSON decision | 429 | 500 (id released)
//! ```
//!
//! Build a [`ReceiverConfig`] (authentication is required: [`NoAuth`] is the explicit "none"),
//! then a [`Receiver`] with handlers; serve it with `Server` (feature `server`), as a tower
//! service or `tower::VerifyLayer` (feature `tower`), or use the `axum::Webhook` extractor
//! (feature `axum`).
//!
//! | status | meaning | the sender should |
//! | --- | --- | --- |
//! | 2xx | accepted (optionally a JSON decision body) | move on |
//! | 400 | malformed body (names the NDJSON line or JSON line/column), bad gzip | fix the request |
//! | 401 | authentication or signature failure | fix credentials |
//! | 405 | method not allowed (`Allow` lists the allowed ones) | fix the method |
//! | 409 | replay: this message id was already acknowledged | nothing (it was received) |
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
//! | `server` | yes | `Server`: hyper 1.x HTTP/1.1 on a tokio `TcpListener`, graceful shutdown |
//! | `tower` | no | `Service` for [`Receiver`], `tower::VerifyLayer` middleware |
//! | `axum` | no | `axum::Webhook` extractor (on `axum-core`) |

mod auth;
mod body;
mod config;
mod context;
mod decode;
mod handler;
mod media;
mod outcome;
mod receiver;
mod rejection;
mod replay;
mod route;

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "tower")]
pub mod tower;

pub use auth::{AuthError, Authenticate, Authenticated, Identity, NoAuth};
pub use config::{
    BuildError, DEFAULT_BODY_LIMIT, DEFAULT_REPLAY_ENTRIES, DEFAULT_REPLAY_WINDOW, MAX_BODY_LIMIT,
    ReceiverConfig, ReceiverConfigBuilder, SignedBody, Ticket,
};
pub use context::{Context, ContextBuilder, RemoteAddr};
pub use decode::{Decode, DecodeError, JsonDecoder, Location};
pub use handler::{Handler, HandlerFn, handler_fn};
pub use media::MediaType;
pub use outcome::Outcome;
pub use receiver::{Receiver, ReceiverBuilder, ReceiverResponse};
pub use rejection::Rejection;
pub use replay::{ReplayCache, Replayed};
#[cfg(feature = "server")]
pub use server::{DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT, ServeError, Server};
