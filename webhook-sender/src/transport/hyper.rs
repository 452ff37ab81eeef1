//! The hyper transport (feature `hyper`): hyper 1 with the hyper-util legacy client.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::{CappedBody, Common, Response, ResponseFuture, Transport, TransportBuilder};
use crate::error::{BuildError, TransportError};
use crate::ssrf::{ResolveError, SsrfPolicy};

type Connector = hyper_rustls::HttpsConnector<HttpConnector<SsrfResolver>>;

/// A [`Transport`] on the hyper-util legacy [`Client`]: hyper-rustls with the shared
/// [`TlsConfig`](crate::tls::TlsConfig) (ALPN `h2`, `http/1.1`), the SSRF guard as its
/// resolver, no redirects (hyper never follows them), no proxy. Clones share the pool.
///
/// ```
/// use webhook_sender::transport::{HyperTransport, TransportBuilder};
/// let transport: HyperTransport = TransportBuilder::new().build_hyper()?;
/// # drop(transport);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct HyperTransport {
    client: Client<Connector, Full<Bytes>>,
    common: Common,
}

impl TransportBuilder {
    /// Builds a [`HyperTransport`].
    ///
    /// # Errors
    /// [`BuildError`] for an invalid TLS configuration or setting.
    pub fn build_hyper(self) -> Result<HyperTransport, BuildError> {
        let prepared = self.prepare()?;
        let mut http = HttpConnector::new_with_resolver(SsrfResolver {
            policy: Arc::clone(&prepared.common.ssrf),
        });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(self.connect_timeout);
        let mut tls: rustls::ClientConfig = (*prepared.tls.client_config()).clone();
        // hyper-rustls sets ALPN itself (h2, http/1.1) from the enabled versions.
        tls.alpn_protocols.clear();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(HyperTransport {
            client,
            common: prepared.common,
        })
    }
}

impl HyperTransport {
    /// A builder with the default settings (same as [`TransportBuilder::new`]).
    #[must_use]
    pub fn builder() -> TransportBuilder {
        TransportBuilder::new()
    }
}

impl Transport for HyperTransport {
    fn send(&self, request: http::Request<Bytes>) -> ResponseFuture {
        let client = self.client.clone();
        let common = self.common.clone();
        Box::pin(async move {
            let timeout = common.precheck(&request)?;
            let request = request.map(Full::new);
            Common::with_timeout(timeout, exchange(client, request, common.max_response_body)).await
        })
    }
}

async fn exchange(
    client: Client<Connector, Full<Bytes>>,
    request: http::Request<Full<Bytes>>,
    cap: usize,
) -> Result<Response, TransportError> {
    let response = client.request(request).await.map_err(|e| {
        let connect = e.is_connect();
        TransportError::classify(Box::new(e), connect)
    })?;
    let (parts, mut incoming) = response.into_parts();
    let mut body = CappedBody::new(cap);
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| TransportError::Body(Box::new(e)))?;
        if let Ok(chunk) = frame.into_data()
            && !body.push(chunk)
        {
            // Stop reading: the rest is discarded unread and the connection is not reused.
            break;
        }
    }
    Ok(body.into_response(parts.status, parts.version, parts.headers))
}

/// hyper-util resolver that applies the SSRF policy to every resolved address.
#[derive(Debug, Clone)]
struct SsrfResolver {
    policy: Arc<SsrfPolicy>,
}

impl tower_service::Service<Name> for SsrfResolver {
    type Response = std::vec::IntoIter<std::net::SocketAddr>;
    type Error = ResolveError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ResolveError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ResolveError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let addrs = policy.resolve(name.as_str(), 0).await?;
            Ok(addrs.into_iter())
        })
    }
}
