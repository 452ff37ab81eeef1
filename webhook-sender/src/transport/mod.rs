//! The HTTP transport: one request in, one response (or a typed error) out.
//!
//! The delivery engine builds an [`http::Request<Bytes>`] and hands it to a [`Transport`]; the
//! transport only carries it. Two implementations share the same behaviour and the same
//! [`TransportBuilder`]:
//!
//! | feature | type | client |
//! | --- | --- | --- |
//! | `reqwest` (default) | [`ReqwestTransport`] | reqwest 0.13 |
//! | `hyper` | `HyperTransport` | hyper 1 with the hyper-util legacy client |
//!
//! Behaviour common to both:
//!
//! - **Timeout** (default 30 s) covers the whole exchange: resolve, connect, TLS, send, response
//!   head and the capped body. A per-request override is the [`RequestTimeout`] extension.
//! - **Redirects are never followed**: a 3xx is returned as a [`Response`].
//! - **Body cap** (default 64 KiB): the response body is read up to the cap; the rest is not
//!   read (the connection is then closed rather than drained) and
//!   [`Response::is_body_truncated`] is set.
//! - **Connection reuse** through a pool per transport; clones share it. HTTP/1.1, and HTTP/2
//!   where the server offers it by ALPN over TLS.
//! - **TLS** from one [`TlsConfig`] (rustls, ring provider).
//! - **SSRF guard** from one [`SsrfPolicy`]: IP-literal hosts are checked before connecting and
//!   host names resolve through a resolver that drops refused addresses, so the check applies
//!   to the addresses actually connected to.
//! - No proxy is used (a proxy would bypass the SSRF guard).

use std::fmt;
use std::future::Future;
#[cfg(any(feature = "reqwest", feature = "hyper"))]
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
#[cfg(any(feature = "reqwest", feature = "hyper"))]
use bytes::BytesMut;
use http::{HeaderMap, StatusCode, Version};

#[cfg(any(feature = "reqwest", feature = "hyper"))]
use crate::error::BuildError;
use crate::error::TransportError;
use crate::ssrf::SsrfPolicy;
use crate::tls::TlsConfig;

#[cfg(feature = "hyper")]
mod hyper;
#[cfg(feature = "reqwest")]
mod reqwest;

#[cfg(feature = "hyper")]
pub use self::hyper::HyperTransport;
#[cfg(feature = "reqwest")]
pub use self::reqwest::ReqwestTransport;

/// Default timeout of a whole exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on the response body kept in a [`Response`].
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 64 * 1024;

/// The future returned by [`Transport::send`]: owned (`'static`), so it can be spawned.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response, TransportError>> + Send + 'static>>;

/// Sends one HTTP request and returns its response.
///
/// Object safe: share a transport as `Arc<dyn Transport>` (see [`SharedTransport`]) or clone a
/// concrete one (clones share the connection pool). The returned future does not borrow the
/// transport, so it can be moved into a spawned task.
///
/// ```no_run
/// # #[cfg(any(feature = "reqwest", feature = "hyper"))]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use bytes::Bytes;
/// use webhook_sender::transport::{Transport, TransportBuilder};
///
/// let transport = TransportBuilder::new().build()?;
/// let request = http::Request::post("https://hooks.example.com/in")
///     .header("content-type", "application/json")
///     .body(Bytes::from_static(b"[]"))?;
/// let response = transport.send(request).await?;
/// println!("{}", response.status());
/// # Ok(()) }
/// ```
pub trait Transport: Send + Sync + fmt::Debug {
    /// Sends `request` (absolute `http`/`https` URI) and returns the response, whatever its
    /// status (3xx included).
    fn send(&self, request: http::Request<Bytes>) -> ResponseFuture;
}

impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn send(&self, request: http::Request<Bytes>) -> ResponseFuture {
        (**self).send(request)
    }
}

/// A type-erased transport shared between tasks.
pub type SharedTransport = Arc<dyn Transport>;

/// A request extension overriding the transport's timeout for one request.
///
/// ```
/// use std::time::Duration;
/// use webhook_sender::transport::RequestTimeout;
/// let mut request = http::Request::get("https://example.com/").body(bytes::Bytes::new())?;
/// request.extensions_mut().insert(RequestTimeout(Duration::from_secs(5)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTimeout(pub Duration);

/// A response: status, headers and the body read up to the transport's cap.
#[derive(Debug, Clone)]
pub struct Response {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
    truncated: bool,
}

impl Response {
    /// Assembles a response (for test doubles of [`Transport`]).
    ///
    /// ```
    /// use webhook_sender::transport::Response;
    /// let r = Response::new(http::StatusCode::OK, http::HeaderMap::new(), bytes::Bytes::from_static(b"ok"));
    /// assert!(r.status().is_success());
    /// assert_eq!(r.body().as_ref(), b"ok");
    /// ```
    #[must_use]
    pub fn new(status: StatusCode, headers: HeaderMap, body: Bytes) -> Self {
        Self {
            status,
            version: Version::HTTP_11,
            headers,
            body,
            truncated: false,
        }
    }

    /// The status code.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version of the exchange (`HTTP/2.0` when negotiated by ALPN).
    #[must_use]
    pub fn version(&self) -> Version {
        self.version
    }

    /// The response headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body, at most the transport's cap.
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Whether the body was longer than the cap (the rest was discarded unread).
    #[must_use]
    pub fn is_body_truncated(&self) -> bool {
        self.truncated
    }

    /// Takes the body.
    #[must_use]
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// Converts into an `http::Response` (the truncation flag is dropped).
    #[must_use]
    pub fn into_http(self) -> http::Response<Bytes> {
        let mut r = http::Response::new(self.body);
        *r.status_mut() = self.status;
        *r.version_mut() = self.version;
        *r.headers_mut() = self.headers;
        r
    }
}

/// Settings shared by both transports. Chained calls never fail; `build_*` reports problems.
///
/// ```
/// use std::time::Duration;
/// use webhook_sender::{ssrf::SsrfPolicy, tls::TlsConfig, transport::TransportBuilder};
/// let builder = TransportBuilder::new()
///     .timeout(Duration::from_secs(10))
///     .max_response_body(16 * 1024)
///     .tls(TlsConfig::builder().build()?)
///     .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?));
/// # #[cfg(any(feature = "reqwest", feature = "hyper"))] {
/// let transport = builder.build()?;
/// # drop(transport);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct TransportBuilder {
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) max_response_body: usize,
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) ssrf: SsrfPolicy,
    pub(crate) pool_idle_timeout: Duration,
    pub(crate) pool_max_idle_per_host: usize,
}

impl Default for TransportBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TransportBuilder {
    /// Defaults: 30 s timeout, 64 KiB body cap, verified TLS with webpki roots, SSRF guard on,
    /// idle connections kept 90 s, at most 32 idle connections per host.
    #[must_use]
    pub fn new() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: None,
            max_response_body: DEFAULT_MAX_RESPONSE_BODY,
            tls: None,
            ssrf: SsrfPolicy::default(),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 32,
        }
    }

    /// Timeout of a whole exchange (must be non-zero).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timeout of the TCP connect alone (default: only the overall timeout applies).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Cap on the response body kept (bytes beyond it are discarded unread).
    #[must_use]
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.max_response_body = bytes;
        self
    }

    /// The TLS configuration (default: verification on, webpki roots).
    #[must_use]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The SSRF policy (default: guard on, nothing allow-listed).
    #[must_use]
    pub fn ssrf(mut self, policy: SsrfPolicy) -> Self {
        self.ssrf = policy;
        self
    }

    /// How long an idle pooled connection is kept.
    #[must_use]
    pub fn pool_idle_timeout(mut self, idle: Duration) -> Self {
        self.pool_idle_timeout = idle;
        self
    }

    /// How many idle connections per host the pool keeps.
    #[must_use]
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    #[cfg(any(feature = "reqwest", feature = "hyper"))]
    /// Validates the settings and resolves the TLS configuration; logs the insecure warning
    /// once for the client being built.
    pub(crate) fn prepare(&self) -> Result<Prepared, BuildError> {
        if self.timeout.is_zero() {
            return Err(BuildError::InvalidSetting("timeout must be non-zero"));
        }
        if self.connect_timeout.is_some_and(|t| t.is_zero()) {
            return Err(BuildError::InvalidSetting(
                "connect timeout must be non-zero",
            ));
        }
        let tls = match &self.tls {
            Some(tls) => tls.clone(),
            None => TlsConfig::builder().build()?,
        };
        if tls.is_insecure() {
            tracing::warn!(
                "TLS certificate verification is disabled for this webhook transport: any server \
                 certificate is accepted"
            );
        }
        if !self.ssrf.is_enabled() {
            tracing::info!("SSRF guard is disabled for this webhook transport");
        }
        Ok(Prepared {
            tls,
            common: Common {
                ssrf: Arc::new(self.ssrf.clone()),
                timeout: self.timeout,
                max_response_body: self.max_response_body,
            },
        })
    }

    /// Builds the default transport of the enabled features (reqwest when enabled, else
    /// hyper), type-erased.
    ///
    /// # Errors
    /// [`BuildError`] for an invalid TLS configuration or setting.
    #[cfg(any(feature = "reqwest", feature = "hyper"))]
    pub fn build(self) -> Result<SharedTransport, BuildError> {
        #[cfg(feature = "reqwest")]
        {
            Ok(Arc::new(self.build_reqwest()?))
        }
        #[cfg(not(feature = "reqwest"))]
        {
            Ok(Arc::new(self.build_hyper()?))
        }
    }
}

#[cfg(any(feature = "reqwest", feature = "hyper"))]
pub(crate) struct Prepared {
    pub(crate) tls: TlsConfig,
    pub(crate) common: Common,
}

#[cfg(any(feature = "reqwest", feature = "hyper"))]
/// The per-request behaviour shared by both transports.
#[derive(Debug, Clone)]
pub(crate) struct Common {
    pub(crate) ssrf: Arc<SsrfPolicy>,
    pub(crate) timeout: Duration,
    pub(crate) max_response_body: usize,
}

#[cfg(any(feature = "reqwest", feature = "hyper"))]
impl Common {
    /// Checks the URI before anything is sent: absolute http(s), a host, and an IP-literal host
    /// permitted by the SSRF guard. Returns the timeout that applies.
    pub(crate) fn precheck(
        &self,
        request: &http::Request<Bytes>,
    ) -> Result<Duration, TransportError> {
        let uri = request.uri();
        match uri.scheme_str() {
            Some("http" | "https") => {}
            Some(_) => {
                return Err(TransportError::InvalidRequest(
                    "scheme must be http or https",
                ));
            }
            None => return Err(TransportError::InvalidRequest("URI must be absolute")),
        }
        let host = uri
            .host()
            .ok_or(TransportError::InvalidRequest("URI has no host"))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.ssrf
                .check(host, ip)
                .map_err(TransportError::SsrfRefused)?;
        }
        let timeout = request
            .extensions()
            .get::<RequestTimeout>()
            .map_or(self.timeout, |t| t.0);
        Ok(timeout)
    }

    /// Applies the SSRF policy to a host that is an IP literal (host names are checked by the
    /// resolver, after resolution).
    #[cfg(feature = "reqwest")]
    pub(crate) fn check_literal(&self, host: &str) -> Result<(), TransportError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => self
                .ssrf
                .check(host, ip)
                .map_err(TransportError::SsrfRefused),
            Err(_) => Ok(()),
        }
    }

    /// Runs `exchange` under `timeout`.
    pub(crate) async fn with_timeout(
        timeout: Duration,
        exchange: impl Future<Output = Result<Response, TransportError>>,
    ) -> Result<Response, TransportError> {
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout(timeout)),
        }
    }
}

#[cfg(any(feature = "reqwest", feature = "hyper"))]
/// Accumulates body chunks up to a cap without copying a lone chunk.
#[derive(Debug)]
pub(crate) struct CappedBody {
    cap: usize,
    first: Option<Bytes>,
    rest: Option<BytesMut>,
    len: usize,
    truncated: bool,
}

#[cfg(any(feature = "reqwest", feature = "hyper"))]
impl CappedBody {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            first: None,
            rest: None,
            len: 0,
            truncated: false,
        }
    }

    /// Adds a chunk; returns `false` once the cap is reached and reading should stop.
    pub(crate) fn push(&mut self, mut chunk: Bytes) -> bool {
        let room = self.cap - self.len;
        if chunk.len() > room {
            chunk.truncate(room);
            self.truncated = true;
        }
        self.len += chunk.len();
        if !chunk.is_empty() {
            match (&mut self.first, &mut self.rest) {
                (None, _) => self.first = Some(chunk),
                (Some(first), rest) => {
                    let buf = rest.get_or_insert_with(|| {
                        let mut b = BytesMut::with_capacity(first.len() + chunk.len());
                        b.extend_from_slice(first);
                        b
                    });
                    buf.extend_from_slice(&chunk);
                }
            }
        }
        !self.truncated
    }

    pub(crate) fn finish(self) -> (Bytes, bool) {
        let body = match (self.first, self.rest) {
            (_, Some(rest)) => rest.freeze(),
            (Some(first), None) => first,
            (None, None) => Bytes::new(),
        };
        (body, self.truncated)
    }

    pub(crate) fn into_response(
        self,
        status: StatusCode,
        version: Version,
        headers: HeaderMap,
    ) -> Response {
        let (body, truncated) = self.finish();
        Response {
            status,
            version,
            headers,
            body,
            truncated,
        }
    }
}

// The tests exercise the plumbing shared by the built-in transports.
#[cfg(all(test, any(feature = "reqwest", feature = "hyper")))]
mod tests {
    use super::*;

    #[test]
    fn capped_body_keeps_a_lone_chunk_without_copy() {
        let chunk = Bytes::from_static(b"hello");
        let mut body = CappedBody::new(10);
        assert!(body.push(chunk.clone()));
        let (out, truncated) = body.finish();
        assert_eq!(out.as_ptr(), chunk.as_ptr());
        assert!(!truncated);
    }

    #[test]
    fn capped_body_truncates_at_the_cap() {
        let mut body = CappedBody::new(8);
        assert!(body.push(Bytes::from_static(b"abcde")));
        assert!(!body.push(Bytes::from_static(b"fghij")));
        let (out, truncated) = body.finish();
        assert_eq!(out.as_ref(), b"abcdefgh");
        assert!(truncated);
    }

    #[test]
    fn exactly_the_cap_is_not_truncated_until_more_arrives() {
        let mut body = CappedBody::new(4);
        assert!(body.push(Bytes::from_static(b"abcd")));
        assert!(body.push(Bytes::new()));
        let (out, truncated) = body.finish();
        assert_eq!(out.as_ref(), b"abcd");
        assert!(!truncated);
        let mut body = CappedBody::new(4);
        assert!(body.push(Bytes::from_static(b"abcd")));
        assert!(!body.push(Bytes::from_static(b"e")));
        let (out, truncated) = body.finish();
        assert_eq!(out.as_ref(), b"abcd");
        assert!(truncated);
    }

    #[test]
    fn precheck_refuses_bad_uris_and_private_literals() -> Result<(), Box<dyn std::error::Error>> {
        let common = Common {
            ssrf: Arc::new(SsrfPolicy::default()),
            timeout: DEFAULT_TIMEOUT,
            max_response_body: 1,
        };
        let req = |uri: &str| http::Request::get(uri).body(Bytes::new());
        assert!(matches!(
            common.precheck(&req("/relative")?),
            Err(TransportError::InvalidRequest(_))
        ));
        assert!(matches!(
            common.precheck(&req("ftp://x/")?),
            Err(TransportError::InvalidRequest(_))
        ));
        assert!(
            common
                .precheck(&req("http://10.0.0.1/")?)
                .is_err_and(|e| e.is_refused_by_ssrf_guard())
        );
        assert!(
            common
                .precheck(&req("http://[::1]:8080/")?)
                .is_err_and(|e| e.is_refused_by_ssrf_guard())
        );
        assert_eq!(
            common.precheck(&req("https://example.com/")?)?,
            DEFAULT_TIMEOUT
        );
        let mut r = req("https://example.com/")?;
        r.extensions_mut()
            .insert(RequestTimeout(Duration::from_secs(1)));
        assert_eq!(common.precheck(&r)?, Duration::from_secs(1));
        Ok(())
    }
}
