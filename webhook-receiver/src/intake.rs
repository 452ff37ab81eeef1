//! The intake: everything a request goes through before handlers, in one place.
//!
//! ```text
//! clock (once) → method → media type → encoding → declared length → bounded body → gzip
//!              → authenticate → replay reservation → handshake (answered here) → [decode]
//! ```
//!
//! [`intake`] is the one sequence, used by every integration: the [`Receiver`](crate::Receiver)
//! (and so the built-in server), the tower `Verify` middleware and the axum extractor. It reads
//! the clock at most once per request (only when the caller gives no time), and hands back an
//! [`Intake`]: the request, its authentication and its replay [`Reservation`]. The integrations
//! then either [`decode`](Intake::decode) it into a handler [`Context`] and items (receiver,
//! axum) or pass the verified body on as a request ([`Intake::into_request`], tower).

use std::net::SocketAddr;
use std::time::SystemTime;

use bytes::Bytes;
use http::{Request, header};
use http_body::Body;

use crate::auth::Authenticated;
use crate::body::{Encoding, gunzip_limited, parse_encoding, read_limited};
use crate::config::{ReceiverConfig, SignedBody};
use crate::context::{Context, PeerCertificate, RemoteAddr};
use crate::decode::Decode;
use crate::media::MediaType;
use crate::rejection::Rejection;
use crate::replay::{Refusal, Reservation, SharedReplayCache, reserve_any};

/// A request that passed every check before decoding: limits, authentication and the replay
/// reservation (released if this is dropped before it is acknowledged).
#[derive(Debug)]
pub(crate) struct Intake<'a> {
    parts: http::request::Parts,
    /// The body after content decoding.
    body: Bytes,
    media_type: Option<MediaType>,
    authenticated: Authenticated,
    reservation: Reservation<&'a SharedReplayCache>,
    now: SystemTime,
    remote_addr: Option<SocketAddr>,
}

/// A request ready for its handlers: the context, the decoded items and the replay reservation.
#[derive(Debug)]
pub(crate) struct Verified<'a, T> {
    /// Headers, ids, raw bytes and identity.
    pub(crate) context: Context,
    /// The decoded items.
    pub(crate) items: Vec<T>,
    /// Acknowledge once every item is handled.
    pub(crate) reservation: Reservation<&'a SharedReplayCache>,
}

/// Runs the checks of `config` before the handlers: method, media type, encoding, bounded
/// body, decompression, authentication and the replay reservation, at `now` (the system clock,
/// read here once, when `None`). `remote_addr` is the peer known to the integration (the
/// built-in server), else the request's [`RemoteAddr`] extension is used.
pub(crate) async fn intake<B>(
    config: &ReceiverConfig,
    req: Request<B>,
    now: Option<SystemTime>,
    remote_addr: Option<SocketAddr>,
) -> Result<Intake<'_>, Rejection>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let now = now.unwrap_or_else(SystemTime::now);
    let result = checks(config, req, now, remote_addr).await;
    match &result {
        Err(Rejection::Handshake(reply)) => {
            tracing::debug!(
                handshake = reply.handshake().name(),
                "webhook handshake answered"
            );
        }
        Err(r) => {
            tracing::debug!(status = %r.status(), kind = r.kind(), error = %r, "webhook rejected");
        }
        Ok(_) => {}
    }
    result
}

async fn checks<B>(
    config: &ReceiverConfig,
    req: Request<B>,
    now: SystemTime,
    remote_addr: Option<SocketAddr>,
) -> Result<Intake<'_>, Rejection>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    if !config.methods().contains(&parts.method) {
        return Err(Rejection::MethodNotAllowed {
            allowed: config.methods().to_vec(),
        });
    }
    let media_type = match parts.headers.get(header::CONTENT_TYPE) {
        None => None,
        Some(v) => match MediaType::from_content_type(v) {
            Some(m) if config.media_types().contains(&m) => Some(m),
            _ => return Err(Rejection::UnsupportedMediaType),
        },
    };
    let encoding = match parse_encoding(&parts.headers) {
        Some(Encoding::Gzip) if !config.gzip() => return Err(Rejection::UnsupportedEncoding),
        Some(e) => e,
        None => return Err(Rejection::UnsupportedEncoding),
    };
    let body_limit = config.body_limit();
    if let Some(len) = parts.headers.get(header::CONTENT_LENGTH) {
        let declared = len.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok());
        match declared {
            Some(n) if n > body_limit as u64 => {
                return Err(Rejection::PayloadTooLarge { limit: body_limit });
            }
            Some(_) => {}
            None => return Err(Rejection::InvalidContentLength),
        }
    }
    let wire = read_limited(body, body_limit).await?;
    let decompressed_limit = config.decompressed_limit();
    let decode = |wire: &Bytes| match encoding {
        Encoding::Identity => Ok(wire.clone()),
        Encoding::Gzip if wire.is_empty() => Ok(Bytes::new()),
        Encoding::Gzip => gunzip_limited(wire, decompressed_limit),
    };
    let auth = config.authenticator();
    let (decoded, authenticated) = match config.signed_body() {
        SignedBody::AsReceived => {
            let a = auth.authenticate(&parts.headers, &wire, now)?;
            (decode(&wire)?, a)
        }
        SignedBody::Decoded => {
            let d = decode(&wire)?;
            let a = auth.authenticate(&parts.headers, &d, now)?;
            (d, a)
        }
    };
    drop(wire);
    if media_type.is_none() && !decoded.is_empty() {
        return Err(Rejection::UnsupportedMediaType);
    }
    let reservation = reserve_any(
        config.replay_cache(),
        config.replay_store(),
        &authenticated,
        now,
    )
    .await
    .map_err(|r| match r {
        Refusal::Replayed(r) if r.in_flight => Rejection::Replayed,
        Refusal::Replayed(_) => Rejection::Duplicate,
        Refusal::Unavailable(e) => Rejection::ReplayStoreUnavailable(e),
    })?;
    if config.handshakes()
        && let Some(reply) = auth.handshake(&authenticated, &decoded)
    {
        // Answered here, for every integration; the handshake counts as received.
        reservation.acknowledge_async().await;
        return Err(Rejection::Handshake(reply));
    }
    Ok(Intake {
        parts,
        body: decoded,
        media_type,
        authenticated,
        reservation,
        now,
        remote_addr,
    })
}

impl<'a> Intake<'a> {
    /// The handler context (peer address and client certificate taken from the integration or
    /// the request extensions) and the items `decoder` makes of the body; a body that does not
    /// decode is refused (the reservation is released).
    pub(crate) fn decode<T, D>(self, decoder: &D) -> Result<Verified<'a, T>, Rejection>
    where
        D: Decode<T> + ?Sized,
    {
        let Intake {
            mut parts,
            body,
            media_type,
            authenticated,
            reservation,
            now,
            remote_addr,
        } = self;
        let remote_addr = remote_addr.or_else(|| parts.extensions.get::<RemoteAddr>().map(|r| r.0));
        let client_certificate = parts.extensions.remove::<PeerCertificate>().map(|c| c.0);
        let context = Context::from_request(
            parts,
            body,
            media_type,
            remote_addr,
            client_certificate,
            authenticated,
            now,
        );
        match decoder.decode_shared(context.media_type(), context.body()) {
            Ok(items) => Ok(Verified {
                context,
                items,
                reservation,
            }),
            Err(e) => {
                tracing::debug!(error = %e, "webhook body not decodable");
                Err(Rejection::Decode(e))
            }
        }
    }

    /// The verified request with its decoded body and the [`Authenticated`] result in its
    /// extensions (for a middleware's inner service), and the replay reservation.
    #[cfg(feature = "tower")]
    pub(crate) fn into_request(self) -> (Request<Bytes>, Reservation<&'a SharedReplayCache>) {
        let mut parts = self.parts;
        parts.extensions.insert(self.authenticated);
        (Request::from_parts(parts, self.body), self.reservation)
    }
}
