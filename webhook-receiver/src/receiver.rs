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
    /// Inbox mode: where verified messages are stored before their handlers run.
    #[cfg(feature = "inbox")]
    inbox: Option<crate::inbox::Gate>,
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
        self.assemble(
            #[cfg(feature = "inbox")]
            None,
        )
    }

    /// Builds the receiver in inbox mode (feature `inbox`): each verified request is stored in
    /// the inbox of `config` and answered at once; the handlers run from the inbox on the
    /// current Tokio runtime, with retries and dead letters. See [`crate::inbox`] for the
    /// semantics.
    ///
    /// ```
    /// use webhook_core::ReceiverAuth;
    /// use webhook_receiver::inbox::InboxConfig;
    /// use webhook_receiver::{handler_fn, Context, HandlerOutcome, Receiver, ReceiverConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = std::env::temp_dir().join(format!("inbox-doc-{}", std::process::id()));
    /// let config = ReceiverConfig::builder().auth(ReceiverAuth::None).build()?;
    /// let receiver = Receiver::<serde_json::Value>::builder(config)
    ///     .fallback(handler_fn(|_v: serde_json::Value, _cx: Context| async { HandlerOutcome::Accepted }))
    ///     .build_inbox(InboxConfig::new(&dir))?;
    /// let req = http::Request::post("/hook")
    ///     .header("content-type", "application/json")
    ///     .body(http_body_util::Full::new(bytes::Bytes::from_static(br#"{"a":1}"#)))?;
    /// let res = receiver.handle(req).await;
    /// assert_eq!(res.status(), http::StatusCode::OK); // stored, not yet handled
    /// let inbox = receiver.inbox().expect("inbox mode");
    /// inbox.idle().await; // handled
    /// assert_eq!(inbox.stats().succeeded, 1);
    /// # drop(receiver);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`InboxError::Build`](crate::inbox::InboxError::Build) as [`build`](Self::build);
    /// [`InboxError::Store`](crate::inbox::InboxError::Store) when the inbox cannot be opened
    /// (another process holds it, an I/O error); [`InboxError::NoRuntime`](crate::inbox::InboxError::NoRuntime)
    /// outside a Tokio runtime.
    #[cfg(feature = "inbox")]
    pub fn build_inbox(
        self,
        config: crate::inbox::InboxConfig,
    ) -> Result<Receiver<T>, crate::inbox::InboxError> {
        // Validate the receiver before opening (and locking) the store.
        if self.fallback.is_none() {
            return Err(ReceiverBuildError::NoFallback.into());
        }
        let shared = crate::inbox::open(config)?;
        let receiver = self.assemble(Some(crate::inbox::Gate(shared.clone())))?;
        crate::inbox::spawn(&receiver, shared);
        Ok(receiver)
    }

    fn assemble(
        self,
        #[cfg(feature = "inbox")] inbox: Option<crate::inbox::Gate>,
    ) -> Result<Receiver<T>, ReceiverBuildError> {
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
                #[cfg(feature = "inbox")]
                inbox,
            }),
        })
    }
}

impl<T: Send + 'static> Receiver<T> {
    /// The configuration.
    pub fn config(&self) -> &ReceiverConfig {
        &self.inner.config
    }

    /// The inbox, in inbox mode ([`ReceiverBuilder::build_inbox`]).
    #[cfg(feature = "inbox")]
    pub fn inbox(&self) -> Option<crate::inbox::Inbox> {
        self.inner.inbox.as_ref().map(|g| crate::inbox::Inbox {
            shared: g.0.clone(),
        })
    }

    /// A handle that does not keep the receiver alive (the inbox's processor).
    #[cfg(feature = "inbox")]
    pub(crate) fn downgrade(&self) -> WeakReceiver<T> {
        WeakReceiver(Arc::downgrade(&self.inner))
    }

    /// The items the decoder makes of a context's body.
    #[cfg(feature = "inbox")]
    pub(crate) fn decode_items(
        &self,
        cx: &Context,
    ) -> Result<Vec<T>, crate::decode::BodyDecodeError> {
        self.inner.decoder.decode_shared(cx.media_type(), cx.body())
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
        #[cfg(feature = "inbox")]
        if let Some(inbox) = &inner.inbox {
            let subject = items
                .first()
                .and_then(|item| self.subject_of(item).map(Cow::into_owned));
            // The items decoded here go to the first run (no second decoding).
            return inbox
                .accept(cx, subject.as_deref(), Box::new(items), ticket)
                .await;
        }
        match self.dispatch(items, &cx).await {
            Dispatched::Done(decision) => {
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
            Dispatched::Failed { index, reason } => handler_failed(&cx, index, &reason),
            Dispatched::Overloaded { retry_after } => {
                tracing::debug!(message_id = cx.message_id(), "handler overloaded");
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
                res
            }
        }
    }

    /// The routing subject of `item`: the builder's subject function, else the decoder's.
    fn subject_of<'a>(&'a self, item: &'a T) -> Option<Cow<'a, str>> {
        match &self.inner.subject {
            Some(f) => f(item).map(Cow::Borrowed),
            None => self.inner.decoder.subject(item),
        }
    }

    /// Runs the handlers of every item, in order; the first failure stops the rest.
    pub(crate) async fn dispatch(&self, items: Vec<T>, cx: &Context) -> Dispatched {
        let inner = &*self.inner;
        let mut decision: Option<(StatusCode, Bytes)> = None;
        for (index, item) in items.into_iter().enumerate() {
            let mut more: Vec<usize> = Vec::new();
            let first = {
                let subject = self.subject_of(&item);
                let mut targets = inner.routes.targets(subject.as_deref());
                let first = targets.next();
                if inner.clone.is_some() {
                    more.extend(targets);
                }
                first
            };
            let Some(first) = first else {
                return Dispatched::failed(index, "no handler");
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
                        None => return Dispatched::failed(index, "item already consumed"),
                    },
                };
                let Some(handler) = inner.handlers.get(target) else {
                    return Dispatched::failed(index, "no handler");
                };
                match CatchPanic::new(handler.call(this, cx.clone())).await {
                    HandlerOutcome::Accepted => {}
                    HandlerOutcome::Respond { status, body } => {
                        if !status.is_success() {
                            return Dispatched::failed(index, "non-2xx decision status");
                        }
                        if decision.is_none() {
                            decision = Some((status, body));
                        }
                    }
                    HandlerOutcome::Overloaded { retry_after } => {
                        return Dispatched::Overloaded { retry_after };
                    }
                    HandlerOutcome::Failed { reason } => {
                        return Dispatched::Failed {
                            index,
                            reason: reason.into_owned(),
                        };
                    }
                }
            }
        }
        Dispatched::Done(decision)
    }
}

/// A [`Receiver`] that does not keep it alive.
#[cfg(feature = "inbox")]
pub(crate) struct WeakReceiver<T>(std::sync::Weak<Inner<T>>);

#[cfg(feature = "inbox")]
impl<T> Clone for WeakReceiver<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

#[cfg(feature = "inbox")]
impl<T> WeakReceiver<T> {
    pub(crate) fn upgrade(&self) -> Option<Receiver<T>> {
        self.0.upgrade().map(|inner| Receiver { inner })
    }

    pub(crate) fn alive(&self) -> bool {
        self.0.strong_count() > 0
    }
}

/// How running the handlers of one message ended.
#[derive(Debug)]
pub(crate) enum Dispatched {
    /// Every item acknowledged; the first JSON decision, if any.
    Done(Option<(StatusCode, Bytes)>),
    /// Item `index` failed.
    Failed { index: usize, reason: String },
    /// A handler asked for a later retry.
    Overloaded {
        retry_after: Option<std::time::Duration>,
    },
}

impl Dispatched {
    fn failed(index: usize, reason: &str) -> Self {
        Self::Failed {
            index,
            reason: reason.to_owned(),
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
