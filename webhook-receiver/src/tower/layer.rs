//! The [`VerifyLayer`].

use tower_layer::Layer;

use super::Verify;
use crate::ReceiverConfig;

/// Applies [`Verify`] (the receiver's checks) to an inner service.
///
/// ```
/// use tower_layer::Layer;
/// use webhook_receiver::{NoAuth, ReceiverConfig, tower::VerifyLayer};
///
/// let config = ReceiverConfig::builder().auth(NoAuth).build()?;
/// let layer = VerifyLayer::new(config);
/// let _svc = layer.layer(tower_service_stub());
/// # fn tower_service_stub() -> () {}
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    config: ReceiverConfig,
}

impl VerifyLayer {
    /// A layer running the checks of `config`.
    pub fn new(config: ReceiverConfig) -> Self {
        VerifyLayer { config }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = Verify<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Verify::new(inner, self.config.clone())
    }
}
