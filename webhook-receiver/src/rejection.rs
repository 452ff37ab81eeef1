//! Why the receiver refused a request, and the response that tells the sender what to do.
//!
//! Each [`Rejection`] maps to one status code and a small JSON body
//! `{"error": "<kind>", "detail": "..."}`. Bodies never echo secrets, signatures or header
//! values.

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;

use webhook_core::HandshakeReply;

use crate::auth::AuthRejection;
use crate::decode::BodyDecodeError;

/// A request the receiver refused (or, for a registration [handshake](Self::Handshake),
/// answered) before (or instead of) running handlers.
///
/// Its [`Display`](std::fmt::Display) and [`source`](std::error::Error::source) chain carry the
/// detailed cause (for an authentication failure, the `webhook-core` error behind the
/// [`AuthRejection`]); the response body shows only the [`kind`](Self::kind) and a generic
/// detail. The response made by [`into_response`](Self::into_response) carries the rejection in
/// its extensions, where [`Rejection::of`] finds it (for logs and operator tools, never for the
/// client).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The method is not allowed (`405`, with an `Allow` header).
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The allowed methods.
        allowed: Vec<Method>,
    },
    /// The `Content-Type` is missing (for a non-empty body) or not accepted (`415`).
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The `Content-Encoding` is not supported or not enabled (`415`).
    #[error("unsupported content encoding")]
    UnsupportedEncoding,
    /// The body claims gzip but is not valid gzip (`400`).
    #[error("body is not valid for its content encoding")]
    BadEncoding,
    /// The body (as sent) exceeds the limit (`413`).
    #[error("body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The configured body limit in bytes.
        limit: usize,
    },
    /// The decompressed body exceeds the limit (`413`).
    #[error("decompressed body larger than {limit} bytes")]
    DecompressedTooLarge {
        /// The configured decompressed-size limit in bytes.
        limit: usize,
    },
    /// The `Content-Length` header is not a number (`400`).
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Reading the body failed (the connection broke or the framing was invalid) (`400`).
    #[error("reading the request body failed")]
    BodyRead,
    /// Authentication failed (`401`).
    #[error(transparent)]
    Unauthorized(#[from] AuthRejection),
    /// The message id is being processed by another request right now (`409`: the sender
    /// retries later).
    #[error("message already received")]
    Replayed,
    /// The message id was already acknowledged (`200`, with `{"status":"duplicate"}`): the
    /// handlers do not run again. A sender that sends a message again with the same id (its
    /// answer was lost, or it restarted from a durable outbox) learns it is delivered and
    /// stops; answering an error would make it retry or give up on a delivered message.
    #[error("message already acknowledged")]
    Duplicate,
    /// The body could not be decoded (`400`, `415` or `422`, see [`BodyDecodeError::status`]).
    #[error(transparent)]
    Decode(#[from] BodyDecodeError),
    /// The receiver is shutting down (`503`).
    #[error("shutting down")]
    ShuttingDown,
    /// The shared replay store could not be asked (`503`: the sender retries later), rather
    /// than the message being accepted unchecked (see
    /// [`ReplayStore`](crate::ReplayStore)).
    #[error("the replay store is unavailable: {0}")]
    ReplayStoreUnavailable(String),
    /// Not a refusal: the verified request is a provider's registration handshake (Discord's
    /// PING, Slack's `url_verification`, Zoom's `endpoint.url_validation`), answered `200` with
    /// the [`HandshakeReply`] instead of running handlers. Its message id is recorded as seen.
    #[error("answered the {} handshake", .0.handshake().name())]
    Handshake(HandshakeReply),
}

impl Rejection {
    /// The status code this rejection is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType | Self::UnsupportedEncoding => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::BadEncoding | Self::BodyRead | Self::InvalidContentLength => {
                StatusCode::BAD_REQUEST
            }
            Self::PayloadTooLarge { .. } | Self::DecompressedTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Replayed => StatusCode::CONFLICT,
            Self::Duplicate => StatusCode::OK,
            Self::Decode(e) => e.status(),
            Self::ShuttingDown | Self::ReplayStoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Handshake(_) => StatusCode::OK,
        }
    }

    /// The machine-readable kind shown as `"error"` in the response body.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::UnsupportedEncoding => "unsupported_encoding",
            Self::BadEncoding => "bad_encoding",
            Self::PayloadTooLarge { .. } | Self::DecompressedTooLarge { .. } => "payload_too_large",
            Self::BodyRead => "body_read_failed",
            Self::InvalidContentLength => "invalid_content_length",
            Self::Unauthorized(_) => "unauthorized",
            Self::Replayed => "replayed",
            Self::Duplicate => "duplicate",
            Self::Decode(BodyDecodeError::WrongShape { .. }) => "unprocessable",
            Self::Decode(BodyDecodeError::UnsupportedMediaType) => "unsupported_media_type",
            Self::Decode(_) => "malformed",
            Self::ShuttingDown => "shutting_down",
            Self::ReplayStoreUnavailable(_) => "replay_store_unavailable",
            Self::Handshake(_) => "handshake",
        }
    }

    /// The rejection a response of the receiver (or of the tower middleware, the axum extractor
    /// or the server) answers, if it is one: the typed cause, in the response extensions.
    ///
    /// ```
    /// use webhook_receiver::Rejection;
    ///
    /// let res = Rejection::Replayed.into_response();
    /// assert!(matches!(Rejection::of(&res), Some(Rejection::Replayed)));
    /// ```
    pub fn of<B>(response: &Response<B>) -> Option<&Self> {
        response.extensions().get::<Self>()
    }

    /// The response for this rejection: its status, a JSON body with the [`kind`](Self::kind)
    /// and a detail without secrets, and the rejection itself in the extensions
    /// ([`Rejection::of`]).
    ///
    /// ```
    /// use webhook_receiver::Rejection;
    ///
    /// let res = Rejection::Replayed.into_response();
    /// assert_eq!(res.status(), http::StatusCode::CONFLICT);
    /// // An acknowledged message sent again is answered 200 (the handlers do not run again).
    /// assert_eq!(Rejection::Duplicate.into_response().status(), http::StatusCode::OK);
    /// ```
    pub fn into_response(self) -> Response<Full<Bytes>> {
        if let Self::Handshake(reply) = &self {
            let mut res = Response::new(Full::new(Bytes::from(reply.body().to_vec())));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(reply.content_type()),
            );
            res.extensions_mut().insert(self);
            return res;
        }
        let detail = match &self {
            Self::Unauthorized(e) => e.reason().to_owned(),
            other => other.to_string(),
        };
        let mut res = match self {
            Self::Duplicate => json_response(
                StatusCode::OK,
                Bytes::from_static(
                    br#"{"status":"duplicate","detail":"message already acknowledged"}"#,
                ),
            ),
            _ => error_response(self.status(), self.kind(), &detail),
        };
        match &self {
            Self::MethodNotAllowed { allowed } => {
                let allow = allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Ok(v) = HeaderValue::from_str(&allow) {
                    res.headers_mut().insert(header::ALLOW, v);
                }
            }
            Self::ShuttingDown => {
                res.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Self::PayloadTooLarge { .. } | Self::BodyRead | Self::InvalidContentLength => {
                // The rest of the body is not read: the connection cannot be reused.
                res.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        res.extensions_mut().insert(self);
        res
    }
}

#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    detail: &'a str,
}

/// A `{"error": kind, "detail": detail}` JSON response.
pub(crate) fn error_response(
    status: StatusCode,
    kind: &str,
    detail: &str,
) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&ErrorBody {
        error: kind,
        detail,
    })
    .unwrap_or_default();
    json_response(status, Bytes::from(body))
}

/// A response with a JSON body.
pub(crate) fn json_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthRejectionKind;
    use http_body_util::BodyExt;

    fn body(res: Response<Full<Bytes>>) -> serde_json::Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt.block_on(res.into_body().collect()).unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn statuses_and_kinds() {
        let cases = [
            (Rejection::UnsupportedEncoding, 415, "unsupported_encoding"),
            (
                Rejection::PayloadTooLarge { limit: 1 },
                413,
                "payload_too_large",
            ),
            (Rejection::Replayed, 409, "replayed"),
            (Rejection::ShuttingDown, 503, "shutting_down"),
            (
                Rejection::Unauthorized(AuthRejectionKind::Invalid.into()),
                401,
                "unauthorized",
            ),
        ];
        for (r, status, kind) in cases {
            assert_eq!(r.status().as_u16(), status);
            assert_eq!(r.kind(), kind);
        }
    }

    #[test]
    fn method_not_allowed_sets_allow() {
        let res = Rejection::MethodNotAllowed {
            allowed: vec![Method::POST, Method::GET],
        }
        .into_response();
        assert_eq!(res.headers()[header::ALLOW], "POST, GET");
        assert_eq!(body(res)["error"], "method_not_allowed");
    }

    #[test]
    fn the_response_carries_the_typed_cause() {
        use std::error::Error as _;
        let core = webhook_core::AuthError::InvalidCredentials;
        let res = Rejection::Unauthorized(AuthRejection::from(core.clone())).into_response();
        let Some(Rejection::Unauthorized(e)) = Rejection::of(&res) else {
            panic!("no rejection in the extensions");
        };
        assert_eq!(e.core(), Some(&core));
        assert_eq!(
            Rejection::of(&res)
                .and_then(|r| r.source())
                .map(|s| s.to_string()),
            Some("invalid credentials".to_owned())
        );
        assert!(Rejection::of(&Response::new(())).is_none());
    }

    #[test]
    fn auth_detail_is_generic() {
        let res = Rejection::Unauthorized(AuthRejection::other("key=hunter2")).into_response();
        let v = body(res);
        assert_eq!(v["detail"], "authentication failed");
        assert!(!v.to_string().contains("hunter2"));
    }
}
