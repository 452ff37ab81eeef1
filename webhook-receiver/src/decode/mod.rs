//! The decode seam: turn a (decompressed) body into typed items, and name each item's subject.
//!
//! [`Decode`] is what the receiver calls. [`JsonDecoder`], the default, uses `webhook-payloads`'
//! decode helpers: a JSON object is one item, a JSON array is a batch, NDJSON is one item per
//! non-blank line (by `Content-Type`, or detected in an `application/json` body whose first line
//! is a complete JSON value followed by more lines). An empty body (a `GET` call-out) is decoded
//! as "absent" (JSON `null`), which `()`, `Option<_>` and `serde_json::Value` accept.
//! Ready-made decoders for payload families: [`ConnectSecureDecoder`] (tolerant of the invalid
//! `\ ` escape in ConnectSecure's documentation, routed by canonical subject),
//! [`SysdigDecoder`] (routed by event `type`) and [`DetectDecoder`] (every family, each record
//! recognized on its own, routed by `family.kind`). [`RawBody`] hands the whole verified body to one
//! handler call without copying it, for handlers that parse it themselves with a borrowing
//! parser (the fastest path for large batches).
//!
//! Form bodies (`application/x-www-form-urlencoded`: Slack slash commands and interactivity,
//! GitHub's form content type) are read by every built-in decoder as the JSON [`form_json`]
//! makes of them (the `payload` field, or the fields as an object); [`RawBody`] hands them over
//! as received.
//!
//! [`BodyDecodeError`] separates what the sender must fix in the bytes (`400`, with the NDJSON line
//! or the JSON line and column) from valid JSON of the wrong shape (`422`) and from a format the
//! receiver does not take (`415`).

mod connectsecure;
mod detect;
mod form;
mod raw;
mod sysdig;

use std::borrow::Cow;

use bytes::Bytes;
use http::StatusCode;
use serde::de::DeserializeOwned;
use webhook_payloads::Framing;

use crate::media::MediaType;

pub use connectsecure::ConnectSecureDecoder;
pub use detect::DetectDecoder;
pub use form::form_json;
pub use raw::RawBody;
pub use sysdig::{SysdigDecoder, SysdigDecoderAt};

/// Decodes a body into items of type `T`, and names the routing subject of an item.
///
/// `media` is `None` only for an empty body without `Content-Type`.
///
/// ```
/// use std::borrow::Cow;
/// use webhook_receiver::{Decode, BodyDecodeError, MediaType};
///
/// /// One item per body line, routed by its first word.
/// struct Lines;
///
/// impl Decode<String> for Lines {
///     fn decode(&self, _media: Option<MediaType>, body: &[u8]) -> Result<Vec<String>, BodyDecodeError> {
///         let text = std::str::from_utf8(body)
///             .map_err(|e| BodyDecodeError::Invalid { message: e.to_string() })?;
///         Ok(text.lines().map(str::to_owned).collect())
///     }
///
///     fn subject<'a>(&self, item: &'a String) -> Option<Cow<'a, str>> {
///         item.split(' ').next().map(Cow::Borrowed)
///     }
/// }
///
/// let items = Lines.decode(Some(MediaType::Json), b"deploy api\nrollback web")?;
/// assert_eq!(Lines.subject(&items[1]).as_deref(), Some("rollback"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Decode<T>: Send + Sync + 'static {
    /// Decodes `body` (already decompressed) of media type `media` into items.
    fn decode(&self, media: Option<MediaType>, body: &[u8]) -> Result<Vec<T>, BodyDecodeError>;

    /// [`decode`](Self::decode) given the body as shared bytes, which is what the receiver
    /// calls: items may hold slices of the body without copying it (see [`RawBody`]). The
    /// default calls `decode`.
    fn decode_shared(
        &self,
        media: Option<MediaType>,
        body: &Bytes,
    ) -> Result<Vec<T>, BodyDecodeError> {
        self.decode(media, body)
    }

    /// The routing subject/type of `item` (default: none, so items go to the fallback unless
    /// the receiver builder sets a subject function).
    fn subject<'a>(&self, item: &'a T) -> Option<Cow<'a, str>> {
        let _ = item;
        None
    }
}

/// The default decoder for any `DeserializeOwned` type: JSON objects, JSON arrays and NDJSON,
/// with `webhook-payloads`' decode helpers.
///
/// ```
/// use webhook_receiver::{Decode, JsonDecoder, MediaType};
///
/// #[derive(serde::Deserialize)]
/// struct Alert { subject: String }
///
/// let items: Vec<Alert> =
///     JsonDecoder.decode(Some(MediaType::NdJson), b"{\"subject\":\"a\"}\n{\"subject\":\"b\"}\n")?;
/// assert_eq!(items.len(), 2);
/// assert_eq!(items[1].subject, "b");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonDecoder;

/// The content type to parse `body` as: an error for a body without one (empty: nothing to
/// decode; otherwise: an unsupported media type).
pub(crate) fn content_type_of(
    media: Option<MediaType>,
    body: &[u8],
) -> Result<&'static str, BodyDecodeError> {
    match media {
        None if body.iter().all(u8::is_ascii_whitespace) => Err(BodyDecodeError::Empty),
        None => Err(BodyDecodeError::UnsupportedMediaType),
        Some(m) => Ok(m.as_str()),
    }
}

/// An empty (or blank) body decoded as JSON `null`: `Some(Ok(..))` when `T` accepts it.
pub(crate) fn absent<T: DeserializeOwned>(body: &[u8]) -> Option<Result<Vec<T>, BodyDecodeError>> {
    body.iter().all(u8::is_ascii_whitespace).then(|| {
        T::deserialize(serde_json::Value::Null)
            .map(|item| vec![item])
            .map_err(|_| BodyDecodeError::Empty)
    })
}

/// Decodes a form body as the JSON it stands for ([`form_json`]) with `decode`; `None` for
/// other media types.
pub(crate) fn via_form<T>(
    media: Option<MediaType>,
    body: &[u8],
    decode: impl FnOnce(Option<MediaType>, &[u8]) -> Result<Vec<T>, BodyDecodeError>,
) -> Option<Result<Vec<T>, BodyDecodeError>> {
    (media == Some(MediaType::Form) && !body.iter().all(u8::is_ascii_whitespace)).then(|| {
        let json = form_json(body)?;
        decode(Some(MediaType::Json), &json)
    })
}

impl<T: DeserializeOwned> Decode<T> for JsonDecoder {
    fn decode(&self, media: Option<MediaType>, body: &[u8]) -> Result<Vec<T>, BodyDecodeError> {
        if let Some(absent) = absent(body) {
            return absent;
        }
        if let Some(form) = via_form(media, body, |m, b| self.decode(m, b)) {
            return form;
        }
        let framing = match media {
            None => return Err(BodyDecodeError::UnsupportedMediaType),
            Some(MediaType::NdJson) => Framing::Ndjson,
            Some(MediaType::Json) => match body.trim_ascii_start().first() {
                Some(b'[') => Framing::Array,
                // The common case, one object, is parsed straight away; only a body that is
                // not one JSON value is examined for NDJSON framing.
                _ => match webhook_payloads::decode_object(body) {
                    Ok(item) => return Ok(vec![item]),
                    Err(e) => match webhook_payloads::framing(None, body) {
                        Framing::Ndjson => Framing::Ndjson,
                        other => return Err(BodyDecodeError::from_payloads(e, other)),
                    },
                },
            },
            Some(MediaType::Form) => Framing::Object,
            Some(MediaType::CloudEvents | MediaType::CloudEventsBatch) => {
                if body.trim_ascii_start().first() == Some(&b'[') {
                    Framing::Array
                } else {
                    Framing::Object
                }
            }
        };
        let decoded = match framing {
            Framing::Ndjson => webhook_payloads::decode_ndjson(body),
            Framing::Array => webhook_payloads::decode_array(body),
            _ => webhook_payloads::decode_object(body).map(|item| vec![item]),
        };
        decoded.map_err(|e| BodyDecodeError::from_payloads(e, framing))
    }
}

/// Where in the body a decode error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// Line and column (1-based) in a JSON document.
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A line (1-based) of an NDJSON body, and the column within it.
    NdJsonLine {
        /// 1-based line number in the body.
        line: usize,
        /// 1-based column within the line.
        column: usize,
    },
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Json { line, column } => write!(f, "line {line} column {column}"),
            Self::NdJsonLine { line, column } => {
                write!(f, "NDJSON line {line} column {column}")
            }
        }
    }
}

/// Why a body could not be decoded, with the status class it is answered with.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BodyDecodeError {
    /// Not valid JSON (`400`): syntax error or truncated input at `location`.
    #[error("malformed body at {location}: {message}")]
    Malformed {
        /// Where the error is.
        location: Location,
        /// What is wrong (from the JSON parser, without position).
        message: String,
    },
    /// Valid JSON that is not the expected shape (`422`).
    #[error("unexpected payload shape at {location}: {message}")]
    WrongShape {
        /// Where the error is.
        location: Location,
        /// What is wrong (for example a missing field).
        message: String,
    },
    /// The body is empty (or only blank NDJSON lines) but the payload type needs content (`400`).
    #[error("the body is empty")]
    Empty,
    /// The body has no or an unsupported media type (`415`).
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// A form body (`application/x-www-form-urlencoded`) that is not a valid form: a bad
    /// `%` escape, text that is not UTF-8, a field given twice (`400`).
    #[error("malformed form body: {message}")]
    Form {
        /// What is wrong.
        message: String,
    },
    /// The payload is not acceptable for a reason without a position (`422`), for example a
    /// missing CloudEvents attribute.
    #[error("invalid payload: {message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
}

impl BodyDecodeError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Malformed { .. } | Self::Empty | Self::Form { .. } => StatusCode::BAD_REQUEST,
            Self::WrongShape { .. } | Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// Where the error is, for malformed and wrong-shape errors.
    pub fn location(&self) -> Option<Location> {
        match self {
            Self::Malformed { location, .. } | Self::WrongShape { location, .. } => Some(*location),
            _ => None,
        }
    }

    /// Converts a `webhook-payloads` decode error of a body with `framing`: positions name the
    /// NDJSON line for NDJSON bodies, the JSON line and column otherwise.
    ///
    /// ```
    /// use webhook_payloads::Framing;
    /// use webhook_receiver::{BodyDecodeError, Location};
    ///
    /// let e = webhook_payloads::decode_ndjson::<serde_json::Value>(b"{}\n{oops}\n").unwrap_err();
    /// let e = BodyDecodeError::from_payloads(e, Framing::Ndjson);
    /// assert!(matches!(e.location(), Some(Location::NdJsonLine { line: 2, .. })));
    /// assert_eq!(e.status(), http::StatusCode::BAD_REQUEST);
    /// ```
    pub fn from_payloads(e: webhook_payloads::DecodeError, framing: Framing) -> Self {
        use webhook_payloads::DecodeError as P;
        let location = |line, column| match framing {
            Framing::Ndjson => Location::NdJsonLine { line, column },
            _ => Location::Json { line, column },
        };
        match e {
            P::Empty => Self::Empty,
            P::Syntax {
                line,
                column,
                message,
            } => Self::Malformed {
                location: location(line, column),
                message: clip(message),
            },
            P::Shape {
                line,
                column,
                message,
            } => Self::WrongShape {
                location: location(line, column),
                message: clip(message),
            },
            other => Self::Invalid {
                message: clip(other.to_string()),
            },
        }
    }
}

/// Caps a parser message at 200 bytes (it may quote the body).
fn clip(mut message: String) -> String {
    if message.len() > 200 {
        let mut end = 200;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Alert {
        subject: String,
    }

    fn dec<T: DeserializeOwned>(m: Option<MediaType>, b: &[u8]) -> Result<Vec<T>, BodyDecodeError> {
        JsonDecoder.decode(m, b)
    }

    #[test]
    fn object_array_and_ndjson() {
        let one: Vec<Alert> = dec(Some(MediaType::Json), br#"{"subject":"a"}"#).unwrap();
        assert_eq!(
            one,
            vec![Alert {
                subject: "a".into()
            }]
        );
        let arr: Vec<Alert> = dec(
            Some(MediaType::Json),
            br#" [{"subject":"a"},{"subject":"b"}]"#,
        )
        .unwrap();
        assert_eq!(arr.len(), 2);
        let nd: Vec<Alert> = dec(
            Some(MediaType::NdJson),
            b"{\"subject\":\"a\"}\r\n\n{\"subject\":\"b\"}",
        )
        .unwrap();
        assert_eq!(nd.len(), 2);
    }

    #[test]
    fn ndjson_malformed_line_is_named() {
        let err = dec::<Alert>(
            Some(MediaType::NdJson),
            b"{\"subject\":\"a\"}\n{\"subject\":\"b\"}\n{\"subject\": oops}\n",
        )
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(matches!(
            err.location(),
            Some(Location::NdJsonLine { line: 3, .. })
        ));
        assert!(err.to_string().contains("NDJSON line 3"), "{err}");
    }

    #[test]
    fn wrong_shape_is_422_with_position() {
        let err = dec::<Alert>(Some(MediaType::Json), b"{\n\"title\": 1}").unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(matches!(
            err.location(),
            Some(Location::Json { line: 2, .. })
        ));
    }

    #[test]
    fn json_syntax_error_is_400_with_line_and_column() {
        let err = dec::<Alert>(Some(MediaType::Json), b"{\"subject\":\n  ,}").unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(matches!(
            err.location(),
            Some(Location::Json { line: 2, column: 3 })
        ));
    }

    #[test]
    fn ndjson_detected_in_json_body_and_cloudevents_batch() {
        let nd: Vec<Alert> = dec(
            Some(MediaType::Json),
            b"{\"subject\":\"a\"}\n{\"subject\":\"b\"}\n",
        )
        .unwrap();
        assert_eq!(nd.len(), 2);
        let ce: Vec<Alert> =
            dec(Some(MediaType::CloudEventsBatch), br#"[{"subject":"a"}]"#).unwrap();
        assert_eq!(ce.len(), 1);
        let err = dec::<Alert>(Some(MediaType::CloudEvents), br#"{"subject":1}"#).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn long_messages_are_clipped() {
        assert_eq!(clip("é".repeat(150)).len(), 200);
        assert_eq!(clip("abc".into()), "abc");
    }

    #[test]
    fn empty_body_is_absent_payload() {
        let unit: Vec<()> = dec(None, b"").unwrap();
        assert_eq!(unit.len(), 1);
        let opt: Vec<Option<Alert>> = dec(None, b"").unwrap();
        assert_eq!(opt, vec![None]);
        let err = dec::<Alert>(None, b"").unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn body_without_media_type_is_415() {
        let err = dec::<Alert>(None, b"{}").unwrap_err();
        assert_eq!(err.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
