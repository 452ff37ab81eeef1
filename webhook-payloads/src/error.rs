//! [`DecodeError`]: why a body could not be decoded, split into "not JSON" (HTTP 400) and "JSON,
//! but not the expected shape" (HTTP 422).

use http::StatusCode;

/// Why a webhook body could not be decoded.
///
/// Positions are 1-based and always refer to the whole body: for NDJSON, `line` is the body line
/// (the record's line number) and `column` the column within it; for an element of a JSON array,
/// the error inside the element is shifted to where the element sits in the body.
///
/// ```
/// use webhook_payloads::{decode_ndjson, DecodeError};
/// let err = decode_ndjson::<serde_json::Value>(b"{\"a\":1}\n{\"a\":\n").unwrap_err();
/// assert!(err.is_malformed());
/// assert_eq!(err.line(), Some(2));
/// assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body is empty or whitespace only.
    #[error("the body is empty")]
    Empty,
    /// The body is not JSON (or a NDJSON line is not): bad syntax, truncated, invalid UTF-8.
    /// Answer HTTP 400.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line in the body.
        line: usize,
        /// 1-based column in that line.
        column: usize,
        /// What the parser found.
        message: String,
    },
    /// The body is JSON but not what the payload type expects (a missing field, a string where a
    /// number belongs, an object where an array belongs). Answer HTTP 422.
    #[error("unexpected JSON shape at line {line}, column {column}: {message}")]
    Shape {
        /// 1-based line in the body.
        line: usize,
        /// 1-based column in that line (0 when the parser did not know).
        column: usize,
        /// What was expected.
        message: String,
    },
    /// A CloudEvents binary-mode request lacks a required `ce-` header or has an unreadable one.
    /// Answer HTTP 422 (400 would claim the body is bad).
    #[error("CloudEvents binary mode: header `{header}` is {problem}")]
    CloudEventHeader {
        /// The header name, lower case.
        header: &'static str,
        /// `missing` or `not valid UTF-8 after percent-decoding`.
        problem: &'static str,
    },
}

impl DecodeError {
    /// Whether the body is not JSON at all (or empty): the sender's bug, HTTP 400.
    pub fn is_malformed(&self) -> bool {
        matches!(self, Self::Empty | Self::Syntax { .. })
    }

    /// Whether the body is JSON of the wrong shape: HTTP 422.
    pub fn is_shape(&self) -> bool {
        matches!(self, Self::Shape { .. } | Self::CloudEventHeader { .. })
    }

    /// The HTTP status a receiver should answer: 400 for malformed, 422 for wrong shape.
    pub fn status(&self) -> StatusCode {
        if self.is_malformed() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    }

    /// The 1-based body line of the problem, if it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Syntax { line, .. } | Self::Shape { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The 1-based column of the problem, if it has one.
    pub fn column(&self) -> Option<usize> {
        match self {
            Self::Syntax { column, .. } | Self::Shape { column, .. } => Some(*column),
            _ => None,
        }
    }

    /// Classifies a `serde_json` error from parsing a slice that starts at 1-based body
    /// position (`line`, `column`).
    pub(crate) fn from_json_at(err: &serde_json::Error, line: usize, column: usize) -> Self {
        let (el, ec) = (err.line(), err.column());
        // serde_json reports line 0 for errors not tied to a position (custom errors).
        let (l, c) = if el == 0 {
            (line, 0)
        } else if el == 1 {
            (line, column.saturating_sub(1) + ec)
        } else {
            (line + el - 1, ec)
        };
        let mut message = err.to_string();
        if let Some(i) = message.rfind(" at line ") {
            message.truncate(i);
        }
        if err.is_data() {
            Self::Shape {
                line: l,
                column: c,
                message,
            }
        } else {
            Self::Syntax {
                line: l,
                column: c,
                message,
            }
        }
    }

    /// Classifies a `serde_json` error from parsing the whole body.
    pub(crate) fn from_json(err: &serde_json::Error) -> Self {
        Self::from_json_at(err, 1, 1)
    }
}

/// The error of [`crate::detect()`]; the same type as the decode helpers return.
pub type DetectError = DecodeError;
