//! The reqwest transport (feature `reqwest`, on by default).

use std::sync::Arc;

use bytes::Bytes;

use super::{CappedBody, Common, Response, ResponseFuture, Transport, TransportBuilder};
use crate::error::{BuildError, TransportError};
use crate::ssrf::SsrfPolicy;

/// A [`Transport`] on a reqwest [`Client`](::reqwest::Client): rustls (ring) with the shared
/// [`TlsConfig`](crate::tls::TlsConfig), the SSRF guard as its DNS resolver, no redirects, no
/// proxy. Clones share the connection pool.
///
/// ```
/// use webhook_sender::transport::{ReqwestTransport, TransportBuilder};
/// let transport: ReqwestTransport = TransportBuilder::new().build_reqwest()?;
/// # drop(transport);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: ::reqwest::Client,
    common: Common,
}

impl TransportBuilder {
    /// Builds a [`ReqwestTransport`].
    ///
    /// # Errors
    /// [`BuildError`] for an invalid TLS configuration or setting, or when reqwest refuses the
    /// configuration.
    pub fn build_reqwest(self) -> Result<ReqwestTransport, BuildError> {
        let prepared = self.prepare()?;
        let tls: rustls::ClientConfig = (*prepared.tls.client_config()).clone();
        let mut builder = ::reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(::reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(SsrfResolver {
                policy: Arc::clone(&prepared.common.ssrf),
            })
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .tcp_nodelay(true);
        if let Some(connect) = self.connect_timeout {
            builder = builder.connect_timeout(connect);
        }
        let client = builder
            .build()
            .map_err(|e| BuildError::Client(Box::new(e.without_url())))?;
        Ok(ReqwestTransport {
            client,
            common: prepared.common,
        })
    }
}

impl ReqwestTransport {
    /// A builder with the default settings (same as [`TransportBuilder::new`]).
    #[must_use]
    pub fn builder() -> TransportBuilder {
        TransportBuilder::new()
    }
}

impl Transport for ReqwestTransport {
    fn send(&self, request: http::Request<Bytes>) -> ResponseFuture {
        let client = self.client.clone();
        let common = self.common.clone();
        Box::pin(async move {
            let timeout = common.precheck(&request)?;
            let request = ::reqwest::Request::try_from(request)
                .map_err(|_| TransportError::InvalidRequest("request not accepted by reqwest"))?;
            // reqwest re-parses the URL (WHATWG rules), which turns hosts such as `2130706433`
            // or `0x7f.1` into IP literals that never reach the resolver: check the result.
            common.check_literal(request.url().host_str().unwrap_or_default())?;
            Common::with_timeout(timeout, exchange(client, request, common.max_response_body)).await
        })
    }
}

async fn exchange(
    client: ::reqwest::Client,
    request: ::reqwest::Request,
    cap: usize,
) -> Result<Response, TransportError> {
    let mut response = client.execute(request).await.map_err(classify)?;
    let status = response.status();
    let version = response.version();
    let headers = std::mem::take(response.headers_mut());
    let mut body = CappedBody::new(cap);
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| TransportError::Body(Box::new(e.without_url())))?
    {
        if !body.push(chunk) {
            // Stop reading: the rest is discarded unread and the connection is not reused.
            break;
        }
    }
    Ok(body.into_response(status, version, headers))
}

fn classify(err: ::reqwest::Error) -> TransportError {
    let connect = err.is_connect();
    TransportError::classify(Box::new(err.without_url()), connect)
}

/// reqwest DNS resolver that applies the SSRF policy to every resolved address.
#[derive(Debug)]
struct SsrfResolver {
    policy: Arc<SsrfPolicy>,
}

impl ::reqwest::dns::Resolve for SsrfResolver {
    fn resolve(&self, name: ::reqwest::dns::Name) -> ::reqwest::dns::Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = policy.resolve(&host, 0).await?;
            let addrs: ::reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}
