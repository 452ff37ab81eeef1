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
//! 6. each item routed by its subject (the builder's subject function, else the decoder's
//!    [`Decode::subject`]) with `webhook-core`'s compiled router (exact and `*` patterns, first
//!    match or, with [`ReceiverBuilder::match_all`], every match; then the fallback), in order;
//!    the first failure stops the batch (`500`, or `429` when overloaded) and the message id is
//!    released; when every item is acknowledged the id is recorded and the answer is `200` (or
//!    the first JSON decision body).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::Full;
use serde::de::DeserializeOwned;

use crate::config::{ReceiverBuildError, ReceiverConfig};
use crate::context::Context;
use crate::decode::{Decode, JsonDecoder};
use crate::handler::{CatchPanic, ErasedHandler, Handler};
use crate::intake::{Verified, intake};
use crate::outcome::HandlerOutcome;
use crate::rejection::{error_response, json_response};
use crate::route::Routes;
use webhook_core::MatchMode;

type SubjectFn<T> = dyn for<'a> Fn(&'a T) -> Option<&'a str> + Send + Sync;

struct Inner<T> {
    config: ReceiverConfig,
    decoder: Box<dyn Decode<T>>,
    subject: Option<Box<SubjectFn<T>>>,
    routes: Routes,
    handlers: Vec<Box<dyn ErasedHandler<T>>>,
    /// Set in all-match mode: copies an item for every matching handler but the last.
    clone: Option<fn(&T) -> T>,
}

/// Receives webhooks whose payload items are of type `T`.
///
/// Cheap to clone; clones share the configuration, handlers and replay cache.
///
/// ```
/// use webhook_receiver::{handler_fn, Context, HandlerOutcome, Receiver, ReceiverConfig};
/// use webhook_core::ReceiverAuth;
///
/// #[derive(serde::Deserialize)]
/// struct Alert { subject: String, body: String }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ReceiverConfig::builder().auth(ReceiverAuth::None).build()?;
/// let receiver = Receiver::builder(config)
///     .subject(|a: &Alert| Some(a.subject.as_str()))
///     .route("Login Failure", handler_fn(|a: Alert, _cx: Context| async move {
///         let _ = a.body;
///         HandlerOutcome::Accepted
///     }))
///     .fallback(handler_fn(|_a: Alert, _cx: Context| async { HandlerOutcome::Accepted }))
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
        Self {
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
    case_insensitive: bool,
    clone: Option<fn(&T) -> T>,
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
        Self::with_decoder(config, JsonDecoder)
    }
}

impl<T: Send + 'static> Receiver<T> {
    /// A builder using `config` and `decoder` (for item types that are not
    /// `DeserializeOwned`, or a payload family's decoder such as
    /// [`SysdigDecoder`](crate::SysdigDecoder)).
    ///
    /// ```
    /// use webhook_payloads::sysdig::SysdigEvent;
    /// use webhook_receiver::{handler_fn, Context, HandlerOutcome, Receiver, ReceiverConfig, SysdigDecoder};
    /// use webhook_core::ReceiverAuth;
    ///
    /// let receiver = Receiver::with_decoder(ReceiverConfig::builder().auth(ReceiverAuth::None).build()?, SysdigDecoder)
    ///     .route("policy", handler_fn(|_e: SysdigEvent<'static>, _cx: Context| async { HandlerOutcome::Accepted }))
    ///     .fallback(handler_fn(|_e: SysdigEvent<'static>, _cx: Context| async { HandlerOutcome::Accepted }))
    ///     .build()?;
    /// # let _ = receiver;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_decoder(config: ReceiverConfig, decoder: impl Decode<T>) -> ReceiverBuilder<T> {
        ReceiverBuilder {
            config,
            decoder: Box::new(decoder),
            subject: None,
            routes: Vec::new(),
            handlers: Vec::new(),
            fallback: None,
            case_insensitive: false,
            clone: None,
        }
    }
}

impl<T: Clone + Send + 'static> ReceiverBuilder<T> {
    /// Sends each item to every route that matches (in the order the routes were added)
    /// instead of only the first; the fallback still gets items no route matches. Items are
    /// cloned for every handler but the last. A failure of any handler fails the request.
    #[must_use]
    pub fn match_all(mut self) -> Self {
        self.clone = Some(T::clone);
        self
    }
}

impl<T: Send + 'static> ReceiverBuilder<T> {
    /// Replaces the decoder (the decode seam).
    #[must_use]
    pub fn decoder(mut self, decoder: impl Decode<T>) -> Self {
        self.decoder = Box::new(decoder);
        self
    }

    /// Matches route patterns ignoring ASCII case (default: exact case).
    #[must_use]
    pub fn case_insensitive(mut self, on: bool) -> Self {
        self.case_insensitive = on;
        self
    }

    /// How to read the routing subject/type of an item, overriding the decoder's
    /// [`Decode::subject`] (without either, every item goes to the fallback).
    #[must_use]
    pub fn subject<F>(mut self, f: F) -> Self
    where
        F: for<'a> Fn(&'a T) -> Option<&'a str> + Send + Sync + 'static,
    {
        self.subject = Some(Box::new(f));
        self
    }

    /// Routes items whose subject matches `pattern` to `handler`: literal text where `*`
    /// matches any run of characters (`policy.*`, `*.created`, `*`). Routes are tried in the
    /// order they are added; the first match wins (see [`match_all`](Self::match_all)).
    #[must_use]
    pub fn route(mut self, pattern: impl Into<String>, handler: impl Handler<T>) -> Self {
        self.handlers.push(Box::new(handler));
        self.routes.push((pattern.into(), self.handlers.len() - 1));
        self
    }

    /// The handler for items without a subject or whose subject matches no route (required).
    #[must_use]
    pub fn fallback(mut self, handler: impl Handler<T>) -> Self {
        self.handlers.push(Box::new(handler));
        self.fallback = Some(self.handlers.len() - 1);
        self
    }

    /// Validates and builds the receiver: a fallback is required, route patterns must be
    /// non-empty ([`ReceiverBuildError::Route`]) and distinct ([`ReceiverBuildError::DuplicateRoute`]).
    pub fn build(self) -> Result<Receiver<T>, ReceiverBuildError> {
        let fallback = self.fallback.ok_or(ReceiverBuildError::NoFallback)?;
        let mode = if self.clone.is_some() {
            MatchMode::All
        } else {
            MatchMode::First
        };
        let routes = Routes::new(self.routes, self.case_insensitive, mode, fallback)?;
        Ok(Receiver {
            inner: Arc::new(Inner {
                config: self.config,
                decoder: self.decoder,
                subject: self.subject,
                routes,
                handlers: self.handlers,
                clone: self.clone,
            }),
        })
    }
}

impl<T: Send + 'static> Receiver<T> {
    /// The configuration.
    pub fn config(&self) -> &ReceiverConfig {
        &self.inner.config
    }

    /// Handles a request now (the intake reads the system clock once).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.handle_from(req, None, None).await
    }

    /// Handles a request as at time `now`.
    pub async fn handle_at<B>(&self, req: Request<B>, now: SystemTime) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.handle_from(req, Some(now), None).await
    }

    /// [`handle_at`](Self::handle_at) at `now` (the system clock when `None`), with the peer
    /// address known to the integration (the built-in server), without going through request
    /// extensions.
    pub(crate) async fn handle_from<B>(
        &self,
        req: Request<B>,
        now: Option<SystemTime>,
        remote_addr: Option<std::net::SocketAddr>,
    ) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let inner = &*self.inner;
        let verified = match intake(&inner.config, req, now, remote_addr).await {
            Ok(intake) => intake.decode(&*inner.decoder),
            Err(r) => Err(r),
        };
        let Verified {
            context: cx,
            items,
            reservation: ticket,
        } = match verified {
            Ok(v) => v,
            Err(r) => return r.into_response(),
        };
        let mut decision: Option<(StatusCode, Bytes)> = None;
        for (index, item) in items.into_iter().enumerate() {
            let mut more: Vec<usize> = Vec::new();
            let first = {
                let subject: Option<Cow<'_, str>> = match &inner.subject {
                    Some(f) => f(&item).map(Cow::Borrowed),
                    None => inner.decoder.subject(&item),
                };
                let mut targets = inner.routes.targets(subject.as_deref());
                let first = targets.next();
                if inner.clone.is_some() {
                    more.extend(targets);
                }
                first
            };
            let Some(first) = first else {
                return handler_failed(&cx, index, "no handler");
            };
            let mut item = Some(item);
            for (n, target) in std::iter::once(first)
                .chain(more.iter().copied())
                .enumerate()
            {
                let this = match (n < more.len(), inner.clone, item.as_ref()) {
                    (true, Some(clone), Some(it)) => clone(it),
                    _ => match item.take() {
                        Some(it) => it,
                        None => return handler_failed(&cx, index, "item already consumed"),
                    },
                };
                if let Err(res) = self.run(target, this, &cx, index, &mut decision).await {
                    return res;
                }
            }
        }
        ticket.acknowledge_async().await;
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

impl<T: Send + 'static> Receiver<T> {
    /// Runs handler `target` on `item`; `Err` is the response that ends the request.
    async fn run(
        &self,
        target: usize,
        item: T,
        cx: &Context,
        index: usize,
        decision: &mut Option<(StatusCode, Bytes)>,
    ) -> Result<(), Response<Full<Bytes>>> {
        let Some(handler) = self.inner.handlers.get(target) else {
            return Err(handler_failed(cx, index, "no handler"));
        };
        match CatchPanic::new(handler.call(item, cx.clone())).await {
            HandlerOutcome::Accepted => Ok(()),
            HandlerOutcome::Respond { status, body } => {
                if !status.is_success() {
                    return Err(handler_failed(cx, index, "non-2xx decision status"));
                }
                if decision.is_none() {
                    *decision = Some((status, body));
                }
                Ok(())
            }
            HandlerOutcome::Overloaded { retry_after } => {
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
                Err(res)
            }
            HandlerOutcome::Failed { reason } => Err(handler_failed(cx, index, &reason)),
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
