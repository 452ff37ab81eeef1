//! The decode seam: turn a (decompressed) body into typed items.
//!
//! [`Decode`] is what the receiver calls; [`JsonDecoder`] is the built-in implementation with
//! `serde_json`: a JSON object is one item, a JSON array is a batch, NDJSON is one item per
//! non-blank line. An empty body (a `GET` call-out) is decoded as "absent" (JSON `null`), which
//! `()`, `Option<_>` and `serde_json::Value` accept.
//!
//! [`DecodeError`] separates what the sender must fix in the bytes (`400`, with the NDJSON line
//! or the JSON line and column) from valid JSON of the wrong shape (`422`) and from a format the
//! receiver does not take (`415`).

use http::StatusCode;
use serde::de::DeserializeOwned;

use crate::MediaType;

/// Decodes a body into items of type `T`.
///
/// `media` is `None` only for an empty body without `Content-Type`.
pub trait Decode<T>: Send + Sync + 'static {
    /// Decodes `body` (already decompressed) of media type `media` into items.
    fn decode(&self, media: Option<MediaType>, body: &[u8]) -> Result<Vec<T>, DecodeError>;
}

/// The built-in `serde_json` decoder for JSON objects, JSON arrays and NDJSON.
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

impl<T: DeserializeOwned> Decode<T> for JsonDecoder {
    fn decode(&self, media: Option<MediaType>, body: &[u8]) -> Result<Vec<T>, DecodeError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return T::deserialize(serde_json::Value::Null)
                .map(|item| vec![item])
                .map_err(|_| DecodeError::Empty);
        }
        match media {
            None => Err(DecodeError::UnsupportedMediaType),
            Some(MediaType::NdJson) => decode_ndjson(body),
            Some(MediaType::Json | MediaType::CloudEvents | MediaType::CloudEventsBatch) => {
                decode_json(body)
            }
        }
    }
}

fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<Vec<T>, DecodeError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        serde_json::from_slice::<Vec<T>>(body).map_err(|e| DecodeError::from_json(&e, None))
    } else {
        serde_json::from_slice::<T>(body)
            .map(|item| vec![item])
            .map_err(|e| DecodeError::from_json(&e, None))
    }
}

fn decode_ndjson<T: DeserializeOwned>(body: &[u8]) -> Result<Vec<T>, DecodeError> {
    let mut items = Vec::new();
    for (index, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let item = serde_json::from_slice::<T>(line)
            .map_err(|e| DecodeError::from_json(&e, Some(index + 1)))?;
        items.push(item);
    }
    if items.is_empty() {
        return Err(DecodeError::Empty);
    }
    Ok(items)
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
            Location::Json { line, column } => write!(f, "line {line} column {column}"),
            Location::NdJsonLine { line, column } => {
                write!(f, "NDJSON line {line} column {column}")
            }
        }
    }
}

/// Why a body could not be decoded, with the status class it is answered with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
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
}

impl DecodeError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            DecodeError::Malformed { .. } | DecodeError::Empty => StatusCode::BAD_REQUEST,
            DecodeError::WrongShape { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            DecodeError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// Where the error is, for malformed and wrong-shape errors.
    pub fn location(&self) -> Option<Location> {
        match self {
            DecodeError::Malformed { location, .. } | DecodeError::WrongShape { location, .. } => {
                Some(*location)
            }
            _ => None,
        }
    }

    fn from_json(e: &serde_json::Error, ndjson_line: Option<usize>) -> DecodeError {
        let location = match ndjson_line {
            Some(line) => Location::NdJsonLine {
                line,
                column: e.column(),
            },
            None => Location::Json {
                line: e.line(),
                column: e.column(),
            },
        };
        let mut message = e.to_string();
        // serde_json appends " at line L column C"; the location says it already.
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
        if message.len() > 200 {
            let mut end = 200;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        match e.classify() {
            serde_json::error::Category::Data => DecodeError::WrongShape { location, message },
            _ => DecodeError::Malformed { location, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Alert {
        subject: String,
    }

    fn dec<T: DeserializeOwned>(m: Option<MediaType>, b: &[u8]) -> Result<Vec<T>, DecodeError> {
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
