//! tower integration (feature `tower`): the [`Receiver`] as a
//! [`tower_service::Service`], and [`VerifyLayer`], a middleware that runs the checks before the
//! handlers and passes the verified, decoded `Request<Bytes>` to an inner service.
//!
//! Laid out like `tower::timeout`: the service here, the layer in `layer.rs`, the response
//! futures in `future.rs`, the error types in `error.rs`.

mod error;
mod future;
mod layer;

use std::convert::Infallible;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{Either, Full};
use tower_service::Service;

pub use error::BoxError;
pub use future::{ReceiverFuture, VerifyFuture};
pub use layer::VerifyLayer;

use crate::config::ReceiverConfig;
use crate::intake::intake;
use crate::receiver::Receiver;

impl<T, B> Service<Request<B>> for Receiver<T>
where
    T: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ReceiverFuture;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let receiver = self.clone();
        ReceiverFuture::new(async move { Ok(receiver.handle(req).await) })
    }
}

/// Middleware made by [`VerifyLayer`]: method, media type, encoding, body limit, gzip,
/// authentication and replay checks, then the inner service with the decoded body.
///
/// The inner service receives a `Request<Bytes>` (the body after content decoding) with the
/// [`Authenticated`](crate::Authenticated) result in its extensions. When it answers with a
/// 2xx status, the message id is recorded as seen; otherwise (or if it errors) the id is
/// released so the sender's retry is accepted. Refused requests are answered by the middleware
/// itself (the `Right` side of the response body).
#[derive(Debug, Clone)]
pub struct Verify<S> {
    inner: S,
    config: ReceiverConfig,
}

impl<S> Verify<S> {
    /// Wraps `inner` with the checks of `config`.
    pub fn new(inner: S, config: ReceiverConfig) -> Self {
        Self { inner, config }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, ResBody> Service<Request<B>> for Verify<S>
where
    S: Service<Request<Bytes>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Either<ResBody, Full<Bytes>>>;
    type Error = S::Error;
    type Future = VerifyFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // Use the service that was driven to readiness; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        VerifyFuture::new(async move {
            let (req, ticket) = match intake(&config, req, None, None).await {
                Ok(intake) => intake.into_request(),
                Err(rejection) => return Ok(rejection.into_response().map(Either::Right)),
            };
            let res = inner.call(req).await?;
            if res.status().is_success() {
                // Synchronous (a shared store commits in the background): the inner
                // service's response body need not be `Send`.
                ticket.acknowledge();
            }
            Ok(res.map(Either::Left))
        })
    }
}
