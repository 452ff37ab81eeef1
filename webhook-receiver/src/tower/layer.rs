//! The [`VerifyLayer`].

use tower_layer::Layer;

use super::Verify;
use crate::config::ReceiverConfig;

/// Applies [`Verify`] (the receiver's checks) to an inner service.
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tower::{ServiceBuilder, ServiceExt};
/// use webhook_receiver::{ReceiverConfig, tower::VerifyLayer};
/// use webhook_core::ReceiverAuth;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ReceiverConfig::builder().auth(ReceiverAuth::None).build()?;
/// let svc = ServiceBuilder::new()
///     .layer(VerifyLayer::new(config))
///     .service(tower::service_fn(|req: http::Request<Bytes>| async move {
///         // The body is verified, bounded and decompressed.
///         Ok::<_, Infallible>(http::Response::new(Full::new(req.into_body())))
///     }));
/// let req = http::Request::post("/")
///     .header("content-type", "application/json")
///     .body(Full::new(Bytes::from_static(b"{}")))?;
/// let res = svc.oneshot(req).await?;
/// assert_eq!(res.status(), http::StatusCode::OK);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    config: ReceiverConfig,
}

impl VerifyLayer {
    /// A layer running the checks of `config`.
    pub fn new(config: ReceiverConfig) -> Self {
        Self { config }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = Verify<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Verify::new(inner, self.config.clone())
    }
}
