//! A hyper 1.x HTTP/1.1 server for a [`Receiver`] (HTTPS with feature `tls`, HTTP/2 with feature
//! `http2`), with graceful shutdown and an optional health check path.
//!
//! # Reading
//! A connection's read buffer may grow to hold one whole body of the receiver's
//! [`body_limit`](crate::ReceiverConfigBuilder::body_limit) and its head (between hyper's
//! default of about 400 KiB and 16 MiB), so that a request written at once reaches the receiver
//! as one piece, used without copying; [`Server::read_buffer_limit`] caps it.
//!
//! # Shutdown
//! When the shutdown future completes:
//! 1. new work is refused: requests that arrive from then on (on new or open connections) are
//!    answered `503 Service Unavailable` with `Retry-After` and `Connection: close`, so senders
//!    retry later instead of seeing connection errors;
//! 2. requests already in flight run to completion and are answered normally; idle connections
//!    are closed;
//! 3. when every connection open at shutdown has finished, the listener is closed and
//!    [`Server::serve`] returns `Ok(())`; if that takes longer than the shutdown timeout, the
//!    remaining connections are aborted and it returns [`ServeError::ShutdownTimedOut`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::receiver::Receiver;
use crate::rejection::Rejection;

/// Default time allowed for in-flight requests to finish after shutdown starts: 30 s.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time allowed for a client to send the request headers: 30 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why serving ended with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// In-flight requests did not finish within the shutdown timeout; their connections were
    /// aborted.
    #[error("shutdown timed out; {aborted} connection(s) aborted")]
    ShutdownTimedOut {
        /// How many connections were aborted.
        aborted: usize,
    },
}

/// One request the server answered, as the observer of [`Server::on_response`] sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Answered<'a> {
    /// The address of the peer.
    pub peer: SocketAddr,
    /// The request method.
    pub method: &'a http::Method,
    /// The request URI.
    pub uri: &'a http::Uri,
    /// The response about to be sent.
    pub response: &'a http::Response<http_body_util::Full<bytes::Bytes>>,
}

impl Answered<'_> {
    /// Why the request was refused, if it was: the typed cause the response carries in its
    /// extensions (see [`Rejection::of`]), with its detailed source (never shown to the client).
    pub fn rejection(&self) -> Option<&Rejection> {
        Rejection::of(self.response)
    }
}

type ResponseObserver = dyn Fn(&Answered<'_>) + Send + Sync;
#[cfg(feature = "tls")]
type TlsErrorObserver = dyn Fn(SocketAddr, &std::io::Error) + Send + Sync;

/// The observers of a server (none by default: then the request path does no extra work).
#[derive(Clone, Default)]
struct Observers {
    response: Option<Arc<ResponseObserver>>,
    #[cfg(feature = "tls")]
    tls_error: Option<Arc<TlsErrorObserver>>,
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Observers");
        d.field("response", &self.response.is_some());
        #[cfg(feature = "tls")]
        d.field("tls_error", &self.tls_error.is_some());
        d.finish()
    }
}

/// Serves a [`Receiver`] over HTTP/1.1 on a [`TcpListener`].
///
/// ```
/// use webhook_receiver::{handler_fn, Context, HandlerOutcome, Receiver, ReceiverConfig, Server};
/// use webhook_core::ReceiverAuth;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ReceiverConfig::builder().auth(ReceiverAuth::None).build()?;
/// let receiver = Receiver::builder(config)
///     .fallback(handler_fn(|_v: serde_json::Value, _cx: Context| async { HandlerOutcome::Accepted }))
///     .build()?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let server = tokio::spawn(Server::new(receiver).serve(listener, async {
///     let _ = stopped.await; // e.g. tokio::signal::ctrl_c()
/// }));
/// stop.send(()).ok();
/// server.await??;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Server<T> {
    receiver: Receiver<T>,
    shutdown_timeout: Duration,
    header_read_timeout: Duration,
    read_buffer: Option<usize>,
    health: Option<Arc<str>>,
    #[cfg(feature = "http2")]
    http2: bool,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ServerTls>,
    observers: Observers,
}

impl<T: Send + 'static> Server<T> {
    /// A server for `receiver` with the default timeouts.
    pub fn new(receiver: Receiver<T>) -> Self {
        Self {
            receiver,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            read_buffer: None,
            health: None,
            #[cfg(feature = "http2")]
            http2: false,
            #[cfg(feature = "tls")]
            tls: None,
            observers: Observers::default(),
        }
    }

    /// Calls `observer` with every answer to a webhook request (accepted or refused, including
    /// the `503` of a draining server; not the health check), after the receiver made it and
    /// before it is sent: for access logs and operator tools. A refusal carries its typed cause
    /// ([`Answered::rejection`]), whose source chain holds the detail the client is not shown
    /// (for example which signature header was missing). The observer runs on the request's
    /// task: keep it short.
    ///
    /// ```
    /// use webhook_core::ReceiverAuth;
    /// use webhook_receiver::{handler_fn, Context, HandlerOutcome, Receiver, ReceiverConfig, Server};
    ///
    /// let config = ReceiverConfig::builder().auth(ReceiverAuth::None).build()?;
    /// let receiver = Receiver::builder(config)
    ///     .fallback(handler_fn(|_v: serde_json::Value, _cx: Context| async { HandlerOutcome::Accepted }))
    ///     .build()?;
    /// let server = Server::new(receiver).on_response(|a| {
    ///     if let Some(r) = a.rejection() {
    ///         eprintln!("{} {} from {}: {r}", a.response.status(), a.uri.path(), a.peer);
    ///     }
    /// });
    /// # let _ = server;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn on_response<F>(mut self, observer: F) -> Self
    where
        F: Fn(&Answered<'_>) + Send + Sync + 'static,
    {
        self.observers.response = Some(Arc::new(observer));
        self
    }

    /// Calls `observer` with the peer and the error of every failed TLS handshake (a client that
    /// does not trust the certificate, presents none under mutual TLS, speaks plain HTTP or
    /// times out); the connection is then closed. Feature `tls`.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn on_tls_error<F>(mut self, observer: F) -> Self
    where
        F: Fn(SocketAddr, &std::io::Error) + Send + Sync + 'static,
    {
        self.observers.tls_error = Some(Arc::new(observer));
        self
    }

    /// Also serves HTTP/2: over TLS when the client picks it by ALPN (`h2` is offered before
    /// `http/1.1`, unless the TLS configuration came ready-made from
    /// [`ServerTls::from_config`](crate::tls::ServerTls::from_config)), over plain TCP when the
    /// client speaks it from the start (prior knowledge). HTTP/1.1 clients are served as before.
    /// A connection carries at most [`MAX_HTTP2_STREAMS`] requests at once, each buffering up to
    /// the body limit. Shutdown sends `GOAWAY` and lets the streams in flight finish. Feature
    /// `http2`.
    ///
    /// ```
    /// use webhook_receiver::{handler_fn, Context, HandlerOutcome, Receiver, ReceiverConfig, Server};
    /// use webhook_core::ReceiverAuth;
    ///
    /// let config = ReceiverConfig::builder().auth(ReceiverAuth::None).build()?;
    /// let receiver = Receiver::builder(config)
    ///     .fallback(handler_fn(|_v: serde_json::Value, _cx: Context| async { HandlerOutcome::Accepted }))
    ///     .build()?;
    /// let server = Server::new(receiver).http2(true);
    /// # let _ = server;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "http2")]
    #[must_use]
    pub fn http2(mut self, on: bool) -> Self {
        self.http2 = on;
        self
    }

    /// Answers `GET` and `HEAD` on `path` itself, without authentication: `200 ok` while
    /// serving, `503 draining` once shutdown has begun, so that a load balancer's or
    /// Kubernetes' probe stops sending traffic before the server goes away. Other methods on
    /// `path` reach the receiver as usual.
    ///
    /// ```
    /// use webhook_receiver::{handler_fn, Context, HandlerOutcome, Receiver, ReceiverConfig, Server};
    /// use webhook_core::ReceiverAuth;
    ///
    /// let config = ReceiverConfig::builder().auth(ReceiverAuth::None).build()?;
    /// let receiver = Receiver::builder(config)
    ///     .fallback(handler_fn(|_v: serde_json::Value, _cx: Context| async { HandlerOutcome::Accepted }))
    ///     .build()?;
    /// let server = Server::new(receiver).health_check("/healthz");
    /// # let _ = server;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn health_check(mut self, path: impl Into<String>) -> Self {
        self.health = Some(Arc::from(path.into()));
        self
    }

    /// Serves HTTPS: every connection completes a TLS handshake (within the
    /// [header read timeout](Self::header_read_timeout)) before HTTP, with mutual TLS when
    /// `tls` has client CAs. Feature `tls`.
    ///
    /// ```
    /// use webhook_receiver::tls::ServerTls;
    /// use webhook_receiver::{handler_fn, Context, HandlerOutcome, Receiver, ReceiverConfig, Server};
    /// use webhook_core::ReceiverAuth;
    ///
    /// let key = rcgen::KeyPair::generate()?;
    /// let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.self_signed(&key)?;
    /// let config = ReceiverConfig::builder().auth(ReceiverAuth::None).build()?;
    /// let receiver = Receiver::builder(config)
    ///     .fallback(handler_fn(|_v: serde_json::Value, _cx: Context| async { HandlerOutcome::Accepted }))
    ///     .build()?;
    /// let server = Server::new(receiver).tls(ServerTls::builder(cert.pem(), key.serialize_pem()).build()?);
    /// # let _ = server;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, tls: crate::tls::ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The most a connection's read buffer may grow to (at least 8 KiB). By default it holds one
    /// whole body of the receiver's body limit and its head, between 400 KiB and 16 MiB, so a
    /// request written at once is used without a copy. A connection keeps the buffer it grew
    /// while it stays open: a server holding many keep-alive connections from senders of large
    /// batches can cap it here, and bodies then arrive in pieces that are copied into one.
    ///
    /// ```
    /// use webhook_receiver::{handler_fn, Context, HandlerOutcome, Receiver, ReceiverConfig, Server};
    /// use webhook_core::ReceiverAuth;
    ///
    /// let config = ReceiverConfig::builder().auth(ReceiverAuth::None).body_limit(8 << 20).build()?;
    /// let receiver = Receiver::builder(config)
    ///     .fallback(handler_fn(|_v: serde_json::Value, _cx: Context| async { HandlerOutcome::Accepted }))
    ///     .build()?;
    /// // 8 MiB bodies accepted; no connection buffers more than 256 KiB of them at a time.
    /// let server = Server::new(receiver).read_buffer_limit(256 << 10);
    /// # let _ = server;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn read_buffer_limit(mut self, bytes: usize) -> Self {
        self.read_buffer = Some(bytes.max(MIN_READ_BUFFER));
        self
    }

    /// How long in-flight requests may run after shutdown starts.
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How long a client may take to send the request headers (slow-client protection).
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Accepts connections until `shutdown` completes, then shuts down gracefully.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let this = self.prepared();
        let draining = Arc::new(AtomicBool::new(false));
        // One stop signal per open connection: a oneshot is polled without touching state
        // shared with other connections (a shared watch channel would take a common lock on
        // every wake-up of every connection).
        let mut stops: HashMap<tokio::task::Id, oneshot::Sender<()>> = HashMap::new();
        let mut active: JoinSet<()> = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let (stop_tx, stop_rx) = oneshot::channel();
                        let handle =
                            active.spawn(this.connection(stream, peer, &draining, Some(stop_rx)));
                        stops.insert(handle.id(), stop_tx);
                    }
                    Err(e) => accept_error(e).await,
                },
                Some(joined) = active.join_next_with_id(), if !active.is_empty() => {
                    let id = match joined {
                        Ok((id, ())) => id,
                        Err(e) => e.id(),
                    };
                    stops.remove(&id);
                }
            }
        }

        tracing::debug!(connections = active.len(), "webhook server draining");
        draining.store(true, Ordering::SeqCst);
        for (_, stop) in stops.drain() {
            let _ = stop.send(());
        }
        let mut late: JoinSet<()> = JoinSet::new();
        let deadline = tokio::time::sleep(this.shutdown_timeout);
        let mut deadline = std::pin::pin!(deadline);
        let result = loop {
            tokio::select! {
                joined = active.join_next() => if joined.is_none() { break Ok(()) },
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        late.spawn(this.connection(stream, peer, &draining, None));
                    }
                    Err(e) => accept_error(e).await,
                },
                Some(_) = late.join_next(), if !late.is_empty() => {}
                () = &mut deadline => {
                    let aborted = active.len();
                    active.abort_all();
                    break Err(ServeError::ShutdownTimedOut { aborted });
                }
            }
        };
        drop(listener);
        late.abort_all();
        result
    }

    /// The server as it serves: with HTTP/2 on, its TLS configuration offers `h2` by ALPN.
    fn prepared(self) -> Self {
        #[cfg(all(feature = "tls", feature = "http2"))]
        if self.http2 {
            let mut this = self;
            this.tls = this.tls.map(|t| t.offering_h2());
            return this;
        }
        self
    }

    fn connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        draining: &Arc<AtomicBool>,
        stop: Option<oneshot::Receiver<()>>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let http = Http {
            receiver: self.receiver.clone(),
            draining: Arc::clone(draining),
            health: self.health.clone(),
            #[cfg(feature = "http2")]
            http2: self.http2,
            peer,
            observer: self.observers.response.clone(),
            header_read_timeout: self.header_read_timeout,
            read_buffer: self
                .read_buffer
                .unwrap_or_else(|| read_buffer_limit(self.receiver.config().body_limit())),
        };
        #[cfg(feature = "tls")]
        let tls = self.tls.clone();
        #[cfg(feature = "tls")]
        let tls_error = self.observers.tls_error.clone();
        async move {
            let _ = stream.set_nodelay(true);
            #[cfg(feature = "tls")]
            if let Some(tls) = tls {
                // The handshake gets the header read timeout.
                match tls.accept(stream, http.header_read_timeout).await {
                    Ok((stream, certificate)) => {
                        return http.serve(TokioIo::new(stream), certificate, stop).await;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, %peer, "TLS handshake failed");
                        if let Some(observer) = tls_error {
                            observer(peer, &e);
                        }
                        return;
                    }
                }
            }
            http.serve(TokioIo::new(stream), None, stop).await;
        }
    }
}

/// What one connection's HTTP side needs.
struct Http<T> {
    receiver: Receiver<T>,
    draining: Arc<AtomicBool>,
    health: Option<Arc<str>>,
    #[cfg(feature = "http2")]
    http2: bool,
    peer: SocketAddr,
    observer: Option<Arc<ResponseObserver>>,
    header_read_timeout: Duration,
    read_buffer: usize,
}

impl<T: Send + 'static> Http<T> {
    /// Serves HTTP/1.1 on `io` until the client closes, or gracefully once `stop` fires (no stop:
    /// accepted while draining, every request is answered 503). `certificate` is the client
    /// certificate the TLS handshake verified.
    async fn serve<I>(
        self,
        io: I,
        certificate: Option<bytes::Bytes>,
        stop: Option<oneshot::Receiver<()>>,
    ) where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let Self {
            receiver,
            draining,
            health,
            #[cfg(feature = "http2")]
            http2,
            peer,
            observer,
            header_read_timeout,
            read_buffer,
        } = self;
        // Per-connection state behind a per-connection `Arc`: each request clones only this
        // reference count, which no other connection touches (no cache-line ping-pong between
        // cores on the receiver's shared one).
        let state = Arc::new((receiver, draining, certificate, health, observer));
        let service = service_fn(move |mut req: http::Request<Incoming>| {
            let state = Arc::clone(&state);
            async move {
                let (receiver, draining, certificate, health, observer) = &*state;
                if let Some(path) = health
                    && req.uri().path() == &**path
                    && (req.method() == http::Method::GET || req.method() == http::Method::HEAD)
                {
                    let serving = !draining.load(Ordering::Relaxed);
                    return Ok(health_response(serving, req.method() == http::Method::HEAD));
                }
                // Only with an observer: what it is told about the request.
                let seen = observer
                    .as_ref()
                    .map(|o| (o, req.method().clone(), req.uri().clone()));
                let res = if draining.load(Ordering::Relaxed) {
                    Rejection::ShuttingDown.into_response()
                } else {
                    if let Some(der) = certificate {
                        req.extensions_mut()
                            .insert(crate::context::PeerCertificate(der.clone()));
                    }
                    // The peer address goes straight into the context (no extension map); the
                    // intake reads the clock.
                    receiver.handle_from(req, None, Some(peer)).await
                };
                if let Some((observer, method, uri)) = seen {
                    observer(&Answered {
                        peer,
                        method: &method,
                        uri: &uri,
                        response: &res,
                    });
                }
                Ok::<_, Infallible>(res)
            }
        });
        #[cfg(feature = "http2")]
        if http2 {
            let mut builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            builder
                .http1()
                .max_buf_size(read_buffer)
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(MAX_HTTP2_STREAMS);
            let conn = builder.serve_connection(io, service);
            return drive(conn, stop, peer).await;
        }
        let conn = http1::Builder::new()
            .max_buf_size(read_buffer)
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(io, service);
        drive(conn, stop, peer).await;
    }
}

/// Streams one HTTP/2 connection may carry at once (each request may buffer a body up to the
/// receiver's body limit).
#[cfg(feature = "http2")]
pub const MAX_HTTP2_STREAMS: u32 = 32;

/// A connection that can be asked to finish what it has and close.
trait Graceful: Future {
    fn graceful(self: std::pin::Pin<&mut Self>);
}

impl<I, S> Graceful for http1::Connection<I, S>
where
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S::ResBody: http_body::Body + 'static,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

#[cfg(feature = "http2")]
impl<I, S, B> Graceful
    for hyper_util::server::conn::auto::Connection<'_, I, S, hyper_util::rt::TokioExecutor>
where
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    fn graceful(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Runs a connection until the client closes, or gracefully once `stop` fires (no stop:
/// accepted while draining, every request is answered 503 and the connection then closes).
async fn drive<C, E>(conn: C, stop: Option<oneshot::Receiver<()>>, peer: SocketAddr)
where
    C: Graceful<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    let result = match stop {
        None => conn.as_mut().await,
        Some(stop) => tokio::select! {
            biased;
            r = conn.as_mut() => r,
            _ = stop => {
                conn.as_mut().graceful();
                conn.as_mut().await
            }
        },
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, %peer, "webhook connection ended with an error");
    }
}

/// The answer of the health check path: `200 ok` while serving, `503 draining` during shutdown
/// (with `Connection: close`, so probes reconnect to another instance); no body for `HEAD`.
fn health_response(
    serving: bool,
    head: bool,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let (status, text) = if serving {
        (http::StatusCode::OK, "ok\n")
    } else {
        (http::StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    };
    let body = if head { "" } else { text };
    let mut res = http::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(
        body.as_bytes(),
    )));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    if !serving {
        headers.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    res
}

/// The smallest read buffer hyper accepts.
const MIN_READ_BUFFER: usize = 8192;
/// hyper's default bound on a connection's read buffer (about 400 KiB).
const DEFAULT_READ_BUFFER: usize = 8192 + 4096 * 100;
/// The largest read buffer a connection may grow to: 16 MiB.
const MAX_READ_BUFFER: usize = 16 << 20;
/// Room for the request head and some pipelining on top of one body.
const HEAD_ROOM: usize = 64 << 10;

/// How large a connection's read buffer may grow: one whole body of the configured limit plus
/// its head (within 400 KiB and 16 MiB). hyper hands the body over in the pieces its reads
/// returned; when one read can take the whole request, the body arrives as one piece and is
/// used as is, where several pieces must be copied into one buffer (1.5–2 % of the CPU of the
/// end-to-end bench at 585 KB per request). The buffer grows only as reads fill it (hyper's
/// adaptive strategy), and the body is buffered whole anyway, so this does not raise what one
/// connection can make the receiver hold; it also bounds the request head, as before.
fn read_buffer_limit(body_limit: usize) -> usize {
    body_limit
        .saturating_add(HEAD_ROOM)
        .clamp(DEFAULT_READ_BUFFER, MAX_READ_BUFFER)
}

async fn accept_error(e: std::io::Error) {
    // Typically out of file descriptors: back off instead of spinning.
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_buffer_holds_one_body_within_bounds() {
        // Small limits keep hyper's default; the default 1 MiB limit and the benches' 8 MiB fit
        // whole with their head; larger limits stop at 16 MiB.
        assert_eq!(read_buffer_limit(0), DEFAULT_READ_BUFFER);
        assert_eq!(read_buffer_limit(64 << 10), DEFAULT_READ_BUFFER);
        assert_eq!(read_buffer_limit(1 << 20), (1 << 20) + HEAD_ROOM);
        assert_eq!(read_buffer_limit(8 << 20), (8 << 20) + HEAD_ROOM);
        assert_eq!(read_buffer_limit(500 << 20), MAX_READ_BUFFER);
        assert_eq!(read_buffer_limit(usize::MAX), MAX_READ_BUFFER);
    }
}
