//! Requests: one delivery attempt of an encoded batch, as an `http::Request<Bytes>`.
//!
//! An [`Endpoint`] is everything a sender knows about where and how to deliver: URL, method,
//! authentication (Basic, Bearer, a static token header, a signature scheme, or a client
//! certificate for the TLS layer), custom headers (validated once, when the endpoint is built),
//! user agent and body encoding. [`Endpoint::request`] turns an encoded [`Body`] into the request
//! of one attempt; the transport only carries it (STYLE item 3: return data, not actions).
//!
//! Two rules of delivery live here:
//!
//! * the batch id is the message id (`webhook-id`, or the scheme's own id header) and is the
//!   same on every retry, so receivers can deduplicate;
//! * the signing timestamp is the attempt time, passed in by the caller: a retry hours later is
//!   signed afresh and is not refused as too old.
//!
//! The signature covers the body bytes exactly as sent: when the body is gzip-compressed, the
//! compressed bytes. A receiver can therefore authenticate a request before it spends anything
//! on decompression.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT};
use http::{HeaderName, HeaderValue, Method, Uri};

use crate::delivery::encode::{Body, Encoding};
use crate::{AuthError, SenderAuth};
use crate::{CustomHeaders, HeaderError};

/// The user agent sent when none is configured: `webhook-sdk/<version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("webhook-sdk/", env!("CARGO_PKG_VERSION"));

/// The idempotency header written when the authentication scheme writes no id header of its
/// own (Standard Webhooks' `webhook-id`).
pub const ID_HEADER: HeaderName = HeaderName::from_static("webhook-id");

/// Where and how a sender delivers: URL, method, auth, custom headers, user agent, encoding.
///
/// Built once with [`Endpoint::builder`], which reports the first configuration problem; then
/// [`request`](Self::request) is infallible but for signing.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use webhook_core::{Body, Encoding, Event, Secret, SenderAuth};
/// use webhook_core::Endpoint;
///
/// let secret = Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let endpoint = Endpoint::builder("https://siem.example.com/hooks/sysdig")
///     .auth(SenderAuth::signature(secret)?)
///     .header("X-Tenant", "blue")
///     .encoding(Encoding::Ndjson)
///     .build()?;
///
/// let event = Event::builder("e1", "policy").json_bytes(&br#"{"id":"e1"}"#[..])?;
/// let body = Body::encode(endpoint.encoding(), &[event])?;
/// let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let request = endpoint.request("batch_0", &body, at)?;
///
/// assert_eq!(request.method(), http::Method::POST);
/// assert_eq!(request.headers()["content-type"], "application/x-ndjson");
/// assert_eq!(request.headers()["webhook-id"], "batch_0");
/// assert_eq!(request.headers()["webhook-timestamp"], "1700000000");
/// assert_eq!(request.headers()["x-tenant"], "blue");
/// assert!(request.headers()["webhook-signature"].to_str()?.starts_with("v1,"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Endpoint {
    url: Uri,
    method: Method,
    auth: SenderAuth,
    headers: CustomHeaders,
    user_agent: HeaderValue,
    encoding: Encoding,
    gzip: Option<u32>,
    writes_id: bool,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `SenderAuth` and `CustomHeaders` redact their own secrets; custom header values may
        // carry tokens too, so only their names are shown.
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("auth", &self.auth)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("user_agent", &self.user_agent)
            .field("encoding", &self.encoding)
            .field("gzip", &self.gzip)
            .finish()
    }
}

impl Endpoint {
    /// Starts building an endpoint that delivers to `url` (absolute `http`/`https`).
    pub fn builder(url: impl AsRef<str>) -> EndpointBuilder {
        EndpointBuilder {
            url: url.as_ref().to_owned(),
            method: Method::POST,
            auth: SenderAuth::None,
            headers: Vec::new(),
            user_agent: None,
            encoding: Encoding::default(),
            gzip: None,
        }
    }

    /// The URL requests go to.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// The HTTP method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// How requests are authenticated (its [`SenderAuth::client_certificate`] is for the TLS
    /// layer).
    pub fn auth(&self) -> &SenderAuth {
        &self.auth
    }

    /// How batches are encoded for this endpoint.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The gzip level bodies are compressed with, if any.
    pub fn gzip(&self) -> Option<u32> {
        self.gzip
    }

    /// Encodes events for this endpoint: its [`Encoding`], then gzip when configured. Encode once
    /// per batch and reuse the body for every attempt.
    ///
    /// # Errors
    /// [`crate::EncodeError`] if the encoding refuses the events (several events for
    /// [`Encoding::Single`]) or compression fails.
    pub fn encode(&self, events: &[crate::Event]) -> Result<Body, crate::EncodeError> {
        let body = Body::encode(self.encoding, events)?;
        self.compress(body)
    }

    #[cfg(feature = "gzip")]
    fn compress(&self, body: Body) -> Result<Body, crate::EncodeError> {
        match self.gzip {
            Some(level) => body.gzip(level),
            None => Ok(body),
        }
    }

    #[cfg(not(feature = "gzip"))]
    fn compress(&self, body: Body) -> Result<Body, crate::EncodeError> {
        Ok(body)
    }

    /// The request of one delivery attempt.
    ///
    /// `id` is the batch (message) id, the same on every retry; `attempt_time` is the wall-clock
    /// time of this attempt and becomes the signing timestamp. Headers are written in this
    /// order, later ones winning: custom headers, `User-Agent`, `Content-Type`,
    /// `Content-Encoding`, `webhook-id` (unless the scheme writes its own id header), then the
    /// authentication headers.
    ///
    /// # Errors
    /// [`RequestError::Auth`] if signing fails (an id that cannot be a header value, no live
    /// key at `attempt_time`); [`RequestError::BodyWithGet`] for a non-empty body on a `GET`
    /// endpoint.
    pub fn request(
        &self,
        id: &str,
        body: &Body,
        attempt_time: SystemTime,
    ) -> Result<http::Request<Bytes>, RequestError> {
        if self.method == Method::GET && !body.bytes.is_empty() {
            return Err(RequestError::BodyWithGet);
        }
        let mut request = http::Request::new(body.bytes.clone());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.url.clone();
        let headers = request.headers_mut();
        headers.reserve(self.headers.len() + 8);
        self.headers.apply_to(headers);
        headers.insert(USER_AGENT, self.user_agent.clone());
        if !body.bytes.is_empty() || self.method != Method::GET {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(body.content_type));
        }
        if let Some(encoding) = body.content_encoding {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        if !self.writes_id {
            let value = HeaderValue::from_str(id).map_err(|_| RequestError::InvalidId)?;
            headers.insert(ID_HEADER, value);
        }
        let ts = attempt_time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.auth.apply(id, ts, &body.bytes, headers)?;
        Ok(request)
    }
}

/// Builder of an [`Endpoint`]; every setter is infallible and [`build`](Self::build) reports
/// the first problem (STYLE item 6).
#[derive(Debug)]
#[must_use]
pub struct EndpointBuilder {
    url: String,
    method: Method,
    auth: SenderAuth,
    headers: Vec<(String, Vec<u8>)>,
    user_agent: Option<String>,
    encoding: Encoding,
    gzip: Option<u32>,
}

impl EndpointBuilder {
    /// The HTTP method: `POST` (default), `PUT`, or `GET` (no body: pings and call-outs).
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Authentication (default [`SenderAuth::None`]).
    pub fn auth(mut self, auth: SenderAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Adds a custom header; checked by [`build`](Self::build) against the reserved list, the
    /// SDK's own headers and this endpoint's auth headers.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The `User-Agent` (default [`DEFAULT_USER_AGENT`]; Soveren sends `SoverenWebhook/1.0`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// How batches are encoded (default JSON array, as Sysdig).
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Compresses bodies with gzip at `level` (0–9; needs the `gzip` feature); `None` (default)
    /// sends them uncompressed.
    pub fn gzip(mut self, level: Option<u32>) -> Self {
        self.gzip = level;
        self
    }

    /// Validates everything and builds the endpoint.
    ///
    /// # Errors
    /// The first problem found, as an [`EndpointError`].
    pub fn build(self) -> Result<Endpoint, EndpointError> {
        let url = parse_url(&self.url)?;
        if !matches!(self.method, Method::POST | Method::PUT | Method::GET) {
            return Err(EndpointError::Method(self.method));
        }
        let user_agent = match self.user_agent {
            None => HeaderValue::from_static(DEFAULT_USER_AGENT),
            Some(ua) => HeaderValue::from_str(&ua).map_err(|_| EndpointError::UserAgent)?,
        };
        match self.gzip {
            Some(level) if level > 9 => return Err(EndpointError::GzipLevel(level)),
            Some(_) if !cfg!(feature = "gzip") => return Err(EndpointError::GzipDisabled),
            _ => {}
        }
        let mut headers = CustomHeaders::builder();
        for name in self.auth.header_names() {
            headers = headers.reserve(name.as_str());
        }
        for (name, value) in self.headers {
            headers = headers.header(name, value);
        }
        let headers = headers.build()?;
        let writes_id = match &self.auth {
            SenderAuth::Signature(signer) => signer.scheme().id_header().is_some(),
            _ => false,
        };
        Ok(Endpoint {
            url,
            method: self.method,
            auth: self.auth,
            headers,
            user_agent,
            encoding: self.encoding,
            gzip: self.gzip,
            writes_id,
        })
    }
}

/// Checks that `url` is an absolute `http`/`https` URL with a host.
pub(crate) fn parse_url(url: &str) -> Result<Uri, EndpointError> {
    let bad = |reason| EndpointError::Url {
        url: url.to_owned(),
        reason,
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => return Err(bad("scheme must be http or https")),
        None => return Err(bad("missing scheme (https://)")),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => Ok(uri),
        _ => Err(bad("missing host")),
    }
}

/// Why an [`Endpoint`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The URL is not an absolute `http`/`https` URL with a host.
    #[error("endpoint URL {url:?} is invalid: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Only `POST`, `PUT` and `GET` are supported.
    #[error("method {0} is not supported: use POST, PUT or GET")]
    Method(Method),
    /// The user agent is not a valid header value.
    #[error("user agent is not a valid header value")]
    UserAgent,
    /// A custom header is refused (reserved, invalid name, CR/LF/NUL in the value).
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// gzip levels are 0–9.
    #[error("gzip level {0} is out of range 0-9")]
    GzipLevel(u32),
    /// gzip was asked for but the `gzip` feature is off.
    #[error("gzip needs the `gzip` feature of webhook-core")]
    GzipDisabled,
}

/// Why the request of one attempt could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The id cannot be sent as a header value.
    #[error("batch id is not a valid header value")]
    InvalidId,
    /// A `GET` endpoint was given a non-empty body.
    #[error("a GET endpoint sends no body")]
    BodyWithGet,
    /// Authentication headers could not be produced (signing failed).
    #[error(transparent)]
    Auth(#[from] AuthError),
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Event, HeaderToken, KeyRing, Scheme, Secret, Verifier};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn body(encoding: Encoding) -> Body {
        let events = [
            Event::builder("a", "policy")
                .json_bytes(&br#"{"id":"a"}"#[..])
                .unwrap(),
            Event::builder("b", "policy")
                .json_bytes(&br#"{"id":"b"}"#[..])
                .unwrap(),
        ];
        Body::encode(encoding, &events).unwrap()
    }

    #[test]
    fn defaults_and_idempotency_header() {
        let ep = Endpoint::builder("http://127.0.0.1:9/in").build().unwrap();
        let req = ep
            .request("batch_7", &body(Encoding::JsonArray), at(5))
            .unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), "http://127.0.0.1:9/in");
        assert_eq!(req.headers()[USER_AGENT], DEFAULT_USER_AGENT);
        assert_eq!(req.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(req.headers()["webhook-id"], "batch_7");
        assert_eq!(req.body().as_ref(), br#"[{"id":"a"},{"id":"b"}]"#);
        assert!(req.headers().get(CONTENT_ENCODING).is_none());
    }

    #[test]
    fn signature_uses_attempt_time_and_stable_id_and_verifies() {
        let secret = Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let ring = KeyRing::single(secret);
        let ep = Endpoint::builder("https://h.example/in")
            .auth(SenderAuth::signature_with(Scheme::standard_webhooks(), &ring).unwrap())
            .encoding(Encoding::Ndjson)
            .build()
            .unwrap();
        let b = body(Encoding::Ndjson);
        let first = ep.request("batch_1", &b, at(1_000)).unwrap();
        let retry = ep.request("batch_1", &b, at(9_000)).unwrap();
        assert_eq!(first.headers()["webhook-id"], retry.headers()["webhook-id"]);
        assert_eq!(first.headers()["webhook-timestamp"], "1000");
        assert_eq!(retry.headers()["webhook-timestamp"], "9000");
        let verifier = Verifier::new(Scheme::standard_webhooks(), &ring).unwrap();
        // A retry hours later verifies at its own attempt time, not at the first one's.
        verifier
            .verify(retry.headers(), retry.body(), at(9_010))
            .unwrap();
        assert!(
            verifier
                .verify(first.headers(), first.body(), at(9_010))
                .is_err()
        );
    }

    #[test]
    fn scheme_with_its_own_id_header_gets_no_webhook_id() {
        let ring = KeyRing::single(Secret::from_bytes("k").unwrap());
        let ep = Endpoint::builder("https://h.example/in")
            .auth(SenderAuth::signature_with(Scheme::svix(), &ring).unwrap())
            .build()
            .unwrap();
        let req = ep.request("m1", &body(Encoding::JsonArray), at(1)).unwrap();
        assert_eq!(req.headers()["svix-id"], "m1");
        assert!(req.headers().get("webhook-id").is_none());
    }

    #[test]
    fn custom_headers_are_checked_against_reserved_and_auth_headers() {
        let reserved = Endpoint::builder("https://h/in")
            .header("Authorization", "x")
            .build();
        assert!(matches!(
            reserved,
            Err(EndpointError::Header(HeaderError::Reserved { name })) if name == "Authorization"
        ));
        let token = HeaderToken::new("X-Auth-Key", "s3cret").unwrap();
        let clash = Endpoint::builder("https://h/in")
            .auth(SenderAuth::HeaderToken(token))
            .header("x-auth-key", "other")
            .build();
        assert!(matches!(
            clash,
            Err(EndpointError::Header(HeaderError::Reserved { .. }))
        ));
        let crlf = Endpoint::builder("https://h/in")
            .header("X-Evil", "a\r\nInjected: 1")
            .build();
        assert!(matches!(
            crlf,
            Err(EndpointError::Header(
                HeaderError::ForbiddenCharacter { .. }
            ))
        ));
        let ok = Endpoint::builder("https://h/in")
            .header("X-Tenant", "blue")
            .user_agent("SoverenWebhook/1.0")
            .build()
            .unwrap();
        let req = ok.request("i", &body(Encoding::JsonArray), at(1)).unwrap();
        assert_eq!(req.headers()["x-tenant"], "blue");
        assert_eq!(req.headers()[USER_AGENT], "SoverenWebhook/1.0");
    }

    #[test]
    fn builder_errors() {
        for (url, reason) in [
            ("siem.example.com:443", "missing scheme (https://)"),
            ("siem.example.com/in", "not a URL"),
            ("ftp://h/in", "scheme must be http or https"),
            ("https:///in", "not a URL"),
            ("not a url", "not a URL"),
            ("", "not a URL"),
        ] {
            match Endpoint::builder(url).build() {
                Err(EndpointError::Url { reason: r, .. }) => assert_eq!(r, reason, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        assert!(matches!(
            Endpoint::builder("https://h/in")
                .method(Method::DELETE)
                .build(),
            Err(EndpointError::Method(_))
        ));
        assert!(matches!(
            Endpoint::builder("https://h/in").user_agent("a\nb").build(),
            Err(EndpointError::UserAgent)
        ));
        assert!(matches!(
            Endpoint::builder("https://h/in").gzip(Some(10)).build(),
            Err(EndpointError::GzipLevel(10))
        ));
    }

    #[test]
    fn get_sends_no_body_and_invalid_ids_are_refused() {
        let ep = Endpoint::builder("https://h/check")
            .method(Method::GET)
            .build()
            .unwrap();
        assert!(matches!(
            ep.request("i", &body(Encoding::JsonArray), at(1)),
            Err(RequestError::BodyWithGet)
        ));
        let empty = Body {
            bytes: Bytes::new(),
            content_type: "application/json",
            content_encoding: None,
        };
        let req = ep.request("i", &empty, at(1)).unwrap();
        assert!(req.headers().get(CONTENT_TYPE).is_none());
        let post = Endpoint::builder("https://h/in").build().unwrap();
        assert!(matches!(
            post.request("bad\nid", &body(Encoding::JsonArray), at(1)),
            Err(RequestError::InvalidId)
        ));
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn gzip_body_is_signed_as_sent() {
        let ring = KeyRing::single(Secret::from_bytes("k").unwrap());
        let ep = Endpoint::builder("https://h/in")
            .auth(SenderAuth::signature_with(Scheme::standard_webhooks(), &ring).unwrap())
            .gzip(Some(6))
            .build()
            .unwrap();
        let events = [Event::builder("a", "t")
            .json_bytes(&br#"{"id":"a"}"#[..])
            .unwrap()];
        let b = ep.encode(&events).unwrap();
        let req = ep.request("m", &b, at(100)).unwrap();
        assert_eq!(req.headers()[CONTENT_ENCODING], "gzip");
        assert_eq!(&req.body()[..2], &[0x1f, 0x8b]);
        Verifier::new(Scheme::standard_webhooks(), &ring)
            .unwrap()
            .verify(req.headers(), req.body(), at(100))
            .unwrap();
    }
}
