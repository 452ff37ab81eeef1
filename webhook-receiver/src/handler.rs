//! Handlers: async functions of a typed payload and its [`Context`].

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use crate::context::Context;
use crate::outcome::HandlerOutcome;

/// Handles one decoded payload of type `T`.
///
/// Implement it on your type, or wrap an async closure with [`handler_fn`]. A handler that
/// panics is treated as [`HandlerOutcome::Failed`] (`500`, nothing acknowledged).
///
/// ```
/// use webhook_receiver::{Context, Handler, HandlerOutcome};
///
/// #[derive(serde::Deserialize)]
/// struct Alert { subject: String, body: String }
///
/// struct Store;
///
/// impl Handler<Alert> for Store {
///     async fn handle(&self, alert: Alert, cx: Context) -> HandlerOutcome {
///         let _ = (alert.subject, alert.body, cx.message_id());
///         HandlerOutcome::Accepted
///     }
/// }
/// ```
pub trait Handler<T>: Send + Sync + 'static {
    /// Handles `item`; the returned [`HandlerOutcome`] decides the response.
    fn handle(&self, item: T, cx: Context) -> impl Future<Output = HandlerOutcome> + Send;
}

/// A [`Handler`] made from an async function or closure; see [`handler_fn`].
#[derive(Debug, Clone, Copy)]
pub struct HandlerFn<F>(F);

/// Wraps `f(item, context) -> impl Future<Output = HandlerOutcome>` as a [`Handler`].
///
/// ```
/// use webhook_receiver::{handler_fn, Context, Handler, HandlerOutcome};
///
/// let h = handler_fn(|n: u32, _cx: Context| async move {
///     if n > 0 { HandlerOutcome::Accepted } else { HandlerOutcome::failed("zero") }
/// });
/// # fn is_handler<H: Handler<u32>>(_: &H) {}
/// # is_handler(&h);
/// ```
pub fn handler_fn<T, F, Fut>(f: F) -> HandlerFn<F>
where
    F: Fn(T, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerOutcome> + Send,
{
    HandlerFn(f)
}

impl<T, F, Fut> Handler<T> for HandlerFn<F>
where
    F: Fn(T, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerOutcome> + Send,
{
    fn handle(&self, item: T, cx: Context) -> impl Future<Output = HandlerOutcome> + Send {
        (self.0)(item, cx)
    }
}

pub(crate) type BoxFuture<'a, O> = Pin<Box<dyn Future<Output = O> + Send + 'a>>;

/// The object-safe form of [`Handler`], so a receiver can hold several.
pub(crate) trait ErasedHandler<T>: Send + Sync + 'static {
    fn call(&self, item: T, cx: Context) -> BoxFuture<'_, HandlerOutcome>;
}

impl<T: Send + 'static, H: Handler<T>> ErasedHandler<T> for H {
    fn call(&self, item: T, cx: Context) -> BoxFuture<'_, HandlerOutcome> {
        // `handle` itself runs at the first poll, inside `CatchPanic`.
        Box::pin(async move { self.handle(item, cx).await })
    }
}

/// Runs a handler future, turning a panic into [`HandlerOutcome::Failed`] (answered `500`, so the
/// sender retries and the message id is released) instead of tearing down the connection.
pub(crate) struct CatchPanic<'a> {
    inner: BoxFuture<'a, HandlerOutcome>,
}

impl<'a> CatchPanic<'a> {
    pub(crate) fn new(inner: BoxFuture<'a, HandlerOutcome>) -> Self {
        CatchPanic { inner }
    }
}

impl Future for CatchPanic<'_> {
    type Output = HandlerOutcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<HandlerOutcome> {
        let inner = &mut self.inner;
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(_) => Poll::Ready(HandlerOutcome::failed("handler panicked")),
        }
    }
}
