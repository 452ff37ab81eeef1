//! The framework-free receiver: checks → decode → route → handlers → response.
//!
//! # Driving contract
//! Call [`Receiver::handle`] (or [`Receiver::handle_at`] with an explicit `now`) once per
//! request; it never panics on input and always returns a response. The steps, each with the
//! status it answers on failure:
//! 1. method (`405` + `Allow`), `Content-Type` (`415`), `Content-Encoding` (`415`),
//!    `Content-Length` above the limit (`413`);
//! 2. body read under the limit (`413` at the frame that crosses it), gzip decoding under the
//!    decompressed limit (`413`);
//! 3. authentication over the raw bytes (`401`);
//! 4. replay reservation of the authenticated message id (`409`);
//! 5. decoding into items (`400` malformed, `422` wrong shape);
//! 6. each item routed by its subject to a handler (or the fallback), in order; the first
//!    failure stops the batch (`500`, or `429` when overloaded) and the message id is released;
//!    when every item is acknowledged the id is recorded and the answer is `200` (or the first
//!    JSON decision body).

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::Full;
use serde::de::DeserializeOwned;

use crate::handler::{CatchPanic, ErasedHandler};
use crate::rejection::{error_response, json_response};
use crate::route::RouteTable;
use crate::{BuildError, Context, Decode, Handler, JsonDecoder, Outcome, ReceiverConfig};

type SubjectFn<T> = dyn for<'a> Fn(&'a T) -> Option<&'a str> + Send + Sync;

struct Inner<T> {
    config: ReceiverConfig,
    decoder: Box<dyn Decode<T>>,
    subject: Option<Box<SubjectFn<T>>>,
    routes: RouteTable,
    handlers: Vec<Box<dyn ErasedHandler<T>>>,
    fallback: usize,
}

/// Receives webhooks whose payload items are of type `T`.
///
/// Cheap to clone; clones share the configuration, handlers and replay cache.
///
/// ```
/// use webhook_receiver::{handler_fn, Context, NoAuth, Outcome, Receiver, ReceiverConfig};
///
/// #[derive(serde::Deserialize)]
/// struct Alert { subject: String, body: String }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ReceiverConfig::builder().auth(NoAuth).build()?;
/// let receiver = Receiver::builder(config)
///     .subject(|a: &Alert| Some(a.subject.as_str()))
///     .route("Login Failure", handler_fn(|a: Alert, _cx: Context| async move {
///         let _ = a.body;
///         Outcome::Accepted
///     }))
///     .fallback(handler_fn(|_a: Alert, _cx: Context| async { Outcome::Accepted }))
///     .build()?;
///
/// let req = http::Request::post("/hook")
///     .header("content-type", "application/json")
///     .body(http_body_util::Full::new(bytes::Bytes::from_static(
///         br#"{"subject":"Login Failure","body":"john.doe"}"#,
///     )))?;
/// let res = receiver.handle(req).await;
/// assert_eq!(res.status(), http::StatusCode::OK);
/// # Ok(())
/// # }
/// ```
pub struct Receiver<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("config", &self.inner.config)
            .field("handlers", &self.inner.handlers.len())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Receiver`]: setters never fail, [`build`](Self::build) reports the first problem.
pub struct ReceiverBuilder<T> {
    config: ReceiverConfig,
    decoder: Box<dyn Decode<T>>,
    subject: Option<Box<SubjectFn<T>>>,
    routes: Vec<(String, usize)>,
    handlers: Vec<Box<dyn ErasedHandler<T>>>,
    fallback: Option<usize>,
}

impl<T> std::fmt::Debug for ReceiverBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverBuilder")
            .field("config", &self.config)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + Send + 'static> Receiver<T> {
    /// A builder using `config` and the built-in [`JsonDecoder`].
    pub fn builder(config: ReceiverConfig) -> ReceiverBuilder<T> {
        ReceiverBuilder {
            config,
            decoder: Box::new(JsonDecoder),
            subject: None,
            routes: Vec::new(),
            handlers: Vec::new(),
            fallback: None,
        }
    }
}

impl<T: Send + 'static> ReceiverBuilder<T> {
    /// Replaces the decoder (the decode seam).
    #[must_use]
    pub fn decoder(mut self, decoder: impl Decode<T>) -> Self {
        self.decoder = Box::new(decoder);
        self
    }

    /// How to read the routing subject/type of an item (without it, every item goes to the
    /// fallback).
    #[must_use]
    pub fn subject<F>(mut self, f: F) -> Self
    where
        F: for<'a> Fn(&'a T) -> Option<&'a str> + Send + Sync + 'static,
    {
        self.subject = Some(Box::new(f));
        self
    }

    /// Routes items whose subject is exactly `subject` to `handler`.
    #[must_use]
    pub fn route(mut self, subject: impl Into<String>, handler: impl Handler<T>) -> Self {
        self.handlers.push(Box::new(handler));
        self.routes.push((subject.into(), self.handlers.len() - 1));
        self
    }

    /// The handler for items without a subject or whose subject matches no route (required).
    #[must_use]
    pub fn fallback(mut self, handler: impl Handler<T>) -> Self {
        self.handlers.push(Box::new(handler));
        self.fallback = Some(self.handlers.len() - 1);
        self
    }

    /// Validates and builds the receiver.
    pub fn build(self) -> Result<Receiver<T>, BuildError> {
        let fallback = self.fallback.ok_or(BuildError::NoFallback)?;
        let routes = RouteTable::new(self.routes)?;
        Ok(Receiver {
            inner: Arc::new(Inner {
                config: self.config,
                decoder: self.decoder,
                subject: self.subject,
                routes,
                handlers: self.handlers,
                fallback,
            }),
        })
    }
}

impl<T: Send + 'static> Receiver<T> {
    /// The configuration.
    pub fn config(&self) -> &ReceiverConfig {
        &self.inner.config
    }

    /// Handles a request now (reads the system clock once).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.handle_at(req, SystemTime::now()).await
    }

    /// Handles a request as at time `now`.
    pub async fn handle_at<B>(&self, req: Request<B>, now: SystemTime) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let intake = match self.inner.config.intake(req, now).await {
            Ok(i) => i,
            Err(r) => {
                tracing::debug!(status = %r.status(), kind = r.kind(), "webhook rejected");
                return r.into_response();
            }
        };
        let (cx, ticket) = intake.into_context();
        let items = match self.inner.decoder.decode(cx.media_type(), cx.body()) {
            Ok(items) => items,
            Err(e) => {
                tracing::debug!(error = %e, "webhook body not decodable");
                return crate::Rejection::Decode(e).into_response();
            }
        };
        let mut decision: Option<(StatusCode, Bytes)> = None;
        for (index, item) in items.into_iter().enumerate() {
            let target = self
                .inner
                .subject
                .as_ref()
                .and_then(|f| f(&item))
                .and_then(|s| self.inner.routes.lookup(s))
                .unwrap_or(self.inner.fallback);
            let Some(handler) = self.inner.handlers.get(target) else {
                return handler_failed(&cx, index, "no handler");
            };
            match CatchPanic::new(handler.call(item, cx.clone())).await {
                Outcome::Accepted => {}
                Outcome::Respond { status, body } => {
                    if !status.is_success() {
                        return handler_failed(&cx, index, "non-2xx decision status");
                    }
                    if decision.is_none() {
                        decision = Some((status, body));
                    }
                }
                Outcome::Overloaded { retry_after } => {
                    tracing::debug!(message_id = cx.message_id(), index, "handler overloaded");
                    let mut res = error_response(
                        StatusCode::TOO_MANY_REQUESTS,
                        "overloaded",
                        "the receiver is overloaded; retry later",
                    );
                    if let Some(after) = retry_after {
                        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                        res.headers_mut()
                            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                    }
                    return res;
                }
                Outcome::Failed { reason } => return handler_failed(&cx, index, &reason),
            }
        }
        ticket.acknowledge();
        match decision {
            Some((status, body)) => json_response(status, body),
            None => {
                let mut res = Response::new(Full::new(Bytes::new()));
                *res.status_mut() = StatusCode::OK;
                res
            }
        }
    }
}

fn handler_failed(cx: &Context, index: usize, reason: &str) -> Response<Full<Bytes>> {
    tracing::warn!(
        message_id = cx.message_id(),
        index,
        reason,
        "webhook handler failed"
    );
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "handler_failed",
        "the event was not processed; retry",
    )
}

/// The response type of the receiver's integrations.
pub type ReceiverResponse = Response<Full<Bytes>>;
