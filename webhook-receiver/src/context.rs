//! What a handler knows about the request besides its payload.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri, Version};

use crate::auth::{Authenticated, Identity};
use crate::media::MediaType;

/// The remote address of a connection, as a request extension.
///
/// The built-in server inserts it; behind tower or axum, insert it yourself (for example from
/// axum's `ConnectInfo`) and the receiver puts it in the [`Context`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// The client certificate (DER) a TLS connection verified, as a request extension.
///
/// The built-in server with mutual TLS (feature `tls`) inserts it; behind another TLS terminator,
/// insert it yourself and the receiver puts it in the [`Context`]
/// ([`Context::client_certificate`]). Only insert a certificate your TLS layer verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate(pub Bytes);

#[derive(Debug, Clone)]
struct Inner {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
    media_type: Option<MediaType>,
    remote_addr: Option<SocketAddr>,
    client_certificate: Option<Bytes>,
    auth: Authenticated,
    received_at: SystemTime,
    /// The run of the handlers (1 unless an inbox retries).
    attempt: u32,
}

/// The request around a payload: headers, ids, raw bytes, remote address and identity.
///
/// Cheap to clone (shared); all items of one batch share one context.
///
/// ```
/// use webhook_receiver::{Context, Identity};
///
/// let cx = Context::builder()
///     .body(bytes::Bytes::from_static(b"{}"))
///     .message_id("msg_1")
///     .identity(Identity::Basic { user: "sysdig".into() })
///     .build();
/// assert_eq!(cx.message_id(), Some("msg_1"));
/// assert_eq!(&cx.body()[..], b"{}");
/// ```
#[derive(Debug, Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

impl Context {
    /// Builds a context in one step (the receiver's hot path: no builder moves).
    pub(crate) fn from_request(
        parts: http::request::Parts,
        body: Bytes,
        media_type: Option<MediaType>,
        remote_addr: Option<SocketAddr>,
        client_certificate: Option<Bytes>,
        auth: Authenticated,
        received_at: SystemTime,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                method: parts.method,
                uri: parts.uri,
                version: parts.version,
                headers: parts.headers,
                body,
                media_type,
                remote_addr,
                client_certificate,
                auth,
                received_at,
                attempt: 1,
            }),
        }
    }

    /// The authentication result (the inbox keys deduplication on it).
    #[cfg(feature = "inbox")]
    pub(crate) fn authenticated(&self) -> &Authenticated {
        &self.inner.auth
    }

    /// The same context for run number `attempt` of an inbox message.
    #[cfg(feature = "inbox")]
    pub(crate) fn with_attempt(&self, attempt: u32) -> Self {
        let mut inner = (*self.inner).clone();
        inner.attempt = attempt;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// A builder, for tests of handlers and for integrations.
    pub fn builder() -> ContextBuilder {
        ContextBuilder {
            inner: Inner {
                method: Method::POST,
                uri: Uri::from_static("/"),
                version: Version::HTTP_11,
                headers: HeaderMap::new(),
                body: Bytes::new(),
                media_type: None,
                remote_addr: None,
                client_certificate: None,
                auth: Authenticated::new(Identity::Anonymous),
                received_at: SystemTime::UNIX_EPOCH,
                attempt: 1,
            },
        }
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.inner.method
    }

    /// The request URI (path and query, as received).
    pub fn uri(&self) -> &Uri {
        &self.inner.uri
    }

    /// The HTTP version the request came with (HTTP/2 when the server speaks it and the client
    /// chose it).
    pub fn version(&self) -> Version {
        self.inner.version
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The whole body after content decoding (gzip), as received: keep it for traceability.
    pub fn body(&self) -> &Bytes {
        &self.inner.body
    }

    /// The media type of the body (`None` for an empty body without `Content-Type`).
    pub fn media_type(&self) -> Option<MediaType> {
        self.inner.media_type
    }

    /// The peer address, when the integration knows it.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr
    }

    /// The client certificate (DER) the connection's TLS handshake verified: with the server's
    /// mutual TLS (feature `tls`), or a [`PeerCertificate`] extension inserted by another TLS
    /// layer. `None` without TLS or when the client presented none.
    ///
    /// ```
    /// use webhook_receiver::Context;
    ///
    /// let cx = Context::builder().client_certificate(bytes::Bytes::from_static(b"0\x82")).build();
    /// assert_eq!(cx.client_certificate(), Some(&b"0\x82"[..]));
    /// assert_eq!(Context::builder().build().client_certificate(), None);
    /// ```
    pub fn client_certificate(&self) -> Option<&[u8]> {
        self.inner.client_certificate.as_deref()
    }

    /// Who authenticated the request.
    pub fn identity(&self) -> &Identity {
        self.inner.auth.identity()
    }

    /// The authenticated message id, if the authentication scheme carries one.
    pub fn message_id(&self) -> Option<&str> {
        self.inner.auth.message_id()
    }

    /// The authenticated timestamp, if the authentication scheme carries one.
    pub fn timestamp(&self) -> Option<SystemTime> {
        self.inner.auth.timestamp()
    }

    /// When the receiver accepted the request (the `now` it was processed with).
    pub fn received_at(&self) -> SystemTime {
        self.inner.received_at
    }

    /// Which run of the handlers this is: `1` for a request handled as it arrives, and for an
    /// inbox message (feature `inbox`) the attempt number, counted across restarts. Handlers run
    /// at least once per message; one that sees `attempt() > 1` may want to check what an
    /// earlier run already did.
    ///
    /// ```
    /// assert_eq!(webhook_receiver::Context::builder().build().attempt(), 1);
    /// ```
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }
}

/// Builds a [`Context`].
#[derive(Debug)]
pub struct ContextBuilder {
    inner: Inner,
}

impl ContextBuilder {
    /// Sets the method.
    #[must_use]
    pub fn method(mut self, method: Method) -> Self {
        self.inner.method = method;
        self
    }

    /// Sets the URI.
    #[must_use]
    pub fn uri(mut self, uri: Uri) -> Self {
        self.inner.uri = uri;
        self
    }

    /// Sets the HTTP version.
    #[must_use]
    pub fn version(mut self, version: Version) -> Self {
        self.inner.version = version;
        self
    }

    /// Sets the headers.
    #[must_use]
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.inner.headers = headers;
        self
    }

    /// Sets the (decoded) body bytes.
    #[must_use]
    pub fn body(mut self, body: Bytes) -> Self {
        self.inner.body = body;
        self
    }

    /// Sets the media type.
    #[must_use]
    pub fn media_type(mut self, media_type: Option<MediaType>) -> Self {
        self.inner.media_type = media_type;
        self
    }

    /// Sets the remote address.
    #[must_use]
    pub fn remote_addr(mut self, addr: Option<SocketAddr>) -> Self {
        self.inner.remote_addr = addr;
        self
    }

    /// Sets the verified client certificate (DER).
    #[must_use]
    pub fn client_certificate(mut self, der: Bytes) -> Self {
        self.inner.client_certificate = Some(der);
        self
    }

    /// Sets the identity.
    #[must_use]
    pub fn identity(mut self, identity: Identity) -> Self {
        self.inner.auth.identity = identity;
        self
    }

    /// Sets the message id.
    #[must_use]
    pub fn message_id(mut self, id: impl Into<String>) -> Self {
        self.inner.auth.message_id = Some(id.into());
        self
    }

    /// Sets the authenticated timestamp.
    #[must_use]
    pub fn timestamp(mut self, timestamp: SystemTime) -> Self {
        self.inner.auth.timestamp = Some(timestamp);
        self
    }

    /// Sets identity, message id and timestamp from an authentication result.
    #[must_use]
    pub fn authenticated(mut self, auth: Authenticated) -> Self {
        self.inner.auth = auth;
        self
    }

    /// Sets when the request was received.
    #[must_use]
    pub fn received_at(mut self, at: SystemTime) -> Self {
        self.inner.received_at = at;
        self
    }

    /// Builds the context.
    pub fn build(self) -> Context {
        Context {
            inner: Arc::new(self.inner),
        }
    }
}
