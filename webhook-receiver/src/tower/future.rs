//! Response futures of the tower services.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

type ReceiverOutput = Result<Response<Full<Bytes>>, Infallible>;

/// The response future of the [`Receiver`](crate::Receiver) service.
pub struct ReceiverFuture {
    inner: Pin<Box<dyn Future<Output = ReceiverOutput> + Send>>,
}

impl ReceiverFuture {
    pub(crate) fn new(f: impl Future<Output = ReceiverOutput> + Send + 'static) -> Self {
        Self { inner: Box::pin(f) }
    }
}

impl Future for ReceiverFuture {
    type Output = ReceiverOutput;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ReceiverFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverFuture").finish_non_exhaustive()
    }
}

/// The response future of the [`Verify`](super::Verify) middleware.
pub struct VerifyFuture<R, E> {
    inner: Pin<Box<dyn Future<Output = Result<R, E>> + Send>>,
}

impl<R, E> VerifyFuture<R, E> {
    pub(crate) fn new(f: impl Future<Output = Result<R, E>> + Send + 'static) -> Self {
        Self { inner: Box::pin(f) }
    }
}

impl<R, E> Future for VerifyFuture<R, E> {
    type Output = Result<R, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<R, E> fmt::Debug for VerifyFuture<R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyFuture").finish_non_exhaustive()
    }
}
