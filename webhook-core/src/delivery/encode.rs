//! Batch body encodings: JSON array, NDJSON, or one object per request, plus optional gzip.
//!
//! Encoding a batch never re-serializes an event: the body is the concatenation of the events'
//! already-encoded bytes with the framing of the [`Encoding`], written into one buffer allocated
//! at its exact final size ([`Encoding::encoded_len`] is known before any byte is copied). The
//! batcher uses the same arithmetic to guarantee that a batch never exceeds its byte limit.

use bytes::{BufMut, Bytes, BytesMut};

use crate::delivery::event::Event;

/// Errors encoding a body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// [`Encoding::Single`] was asked to encode a number of events other than one.
    #[error("the one-object-per-request encoding needs exactly one event, got {count}")]
    NotSingle {
        /// Number of events supplied.
        count: usize,
    },
    /// gzip compression failed.
    #[cfg(feature = "gzip")]
    #[error("gzip compression failed: {0}")]
    Gzip(#[source] std::io::Error),
}

/// How a batch of events becomes one HTTP body.
///
/// ```
/// use webhook_core::{Encoding, Event};
/// let events = [
///     Event::builder("1", "t").json_bytes(&b"{\"a\":1}"[..])?,
///     Event::builder("2", "t").json_bytes(&b"{\"a\":2}"[..])?,
/// ];
/// assert_eq!(&Encoding::JsonArray.encode(&events)?[..], b"[{\"a\":1},{\"a\":2}]");
/// assert_eq!(&Encoding::Ndjson.encode(&events)?[..], b"{\"a\":1}\n{\"a\":2}\n");
/// assert_eq!(Encoding::Ndjson.content_type(), "application/x-ndjson");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// `[e1,e2,...]`, `application/json` (Sysdig's default, `output: json`).
    #[default]
    JsonArray,
    /// `e1\ne2\n...` (every line terminated), `application/x-ndjson` (`output: ndjson`).
    Ndjson,
    /// One event per request, the body is the event itself, `application/json` (Svix, Falco).
    Single,
}

impl Encoding {
    /// The `Content-Type` of bodies in this encoding.
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::JsonArray | Self::Single => "application/json",
            Self::Ndjson => "application/x-ndjson",
        }
    }

    /// Maximum number of events one body can hold (`1` for [`Encoding::Single`]).
    pub const fn max_events(self) -> usize {
        match self {
            Self::Single => 1,
            Self::JsonArray | Self::Ndjson => usize::MAX,
        }
    }

    /// Exact encoded length of `count` events whose bodies total `body_bytes` bytes.
    ///
    /// ```
    /// use webhook_core::Encoding;
    /// assert_eq!(Encoding::JsonArray.encoded_len(0, 0), 2); // []
    /// assert_eq!(Encoding::JsonArray.encoded_len(3, 30), 34); // [ + 30 + 2 commas + ]
    /// assert_eq!(Encoding::Ndjson.encoded_len(3, 30), 33);
    /// ```
    pub const fn encoded_len(self, count: usize, body_bytes: usize) -> usize {
        match self {
            Self::JsonArray => {
                // '[' + ']' + (count - 1) commas.
                body_bytes
                    .saturating_add(2)
                    .saturating_add(count.saturating_sub(1))
            }
            Self::Ndjson => body_bytes.saturating_add(count),
            Self::Single => body_bytes,
        }
    }

    /// Encodes events into one body, allocating exactly once.
    ///
    /// # Errors
    /// [`EncodeError::NotSingle`] when [`Encoding::Single`] gets other than one event.
    pub fn encode(self, events: &[Event]) -> Result<Bytes, EncodeError> {
        let body_bytes = events.iter().map(Event::len).sum();
        self.encode_with_len(events, body_bytes)
    }

    pub(crate) fn encode_with_len(
        self,
        events: &[Event],
        body_bytes: usize,
    ) -> Result<Bytes, EncodeError> {
        match self {
            Self::Single => match events {
                [one] => Ok(one.body().clone()),
                _ => Err(EncodeError::NotSingle {
                    count: events.len(),
                }),
            },
            Self::JsonArray => {
                let mut buf = BytesMut::with_capacity(self.encoded_len(events.len(), body_bytes));
                buf.put_u8(b'[');
                let mut first = true;
                for event in events {
                    if !first {
                        buf.put_u8(b',');
                    }
                    first = false;
                    buf.extend_from_slice(event.body());
                }
                buf.put_u8(b']');
                Ok(buf.freeze())
            }
            Self::Ndjson => {
                let mut buf = BytesMut::with_capacity(self.encoded_len(events.len(), body_bytes));
                for event in events {
                    buf.extend_from_slice(event.body());
                    buf.put_u8(b'\n');
                }
                Ok(buf.freeze())
            }
        }
    }
}

/// An encoded request body with its content headers.
///
/// ```
/// use webhook_core::{Body, Encoding, Event};
/// let e = Event::builder("1", "t").json_bytes(&b"{}"[..])?;
/// let body = Body::encode(Encoding::JsonArray, std::slice::from_ref(&e))?;
/// assert_eq!((body.content_type, body.content_encoding), ("application/json", None));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The bytes to send.
    pub bytes: Bytes,
    /// `Content-Type` value.
    pub content_type: &'static str,
    /// `Content-Encoding` value, `Some("gzip")` when compressed.
    pub content_encoding: Option<&'static str>,
}

impl Body {
    /// Encodes events without compression.
    ///
    /// # Errors
    /// See [`Encoding::encode`].
    pub fn encode(encoding: Encoding, events: &[Event]) -> Result<Self, EncodeError> {
        Ok(Self {
            bytes: encoding.encode(events)?,
            content_type: encoding.content_type(),
            content_encoding: None,
        })
    }

    /// Compresses the body with gzip at `level` (0–9, clamped) unless it already is.
    ///
    /// Byte limits (the batcher's `max_bytes`) apply to the uncompressed body, so they bound the
    /// compressed body as well.
    ///
    /// ```
    /// # #[cfg(feature = "gzip")] {
    /// use webhook_core::{Body, Encoding, Event};
    /// let e = Event::builder("1", "t").json_bytes(&b"{}"[..])?;
    /// let body = Body::encode(Encoding::Ndjson, &[e])?.gzip(6)?;
    /// assert_eq!(body.content_encoding, Some("gzip"));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`EncodeError::Gzip`] if the compressor fails.
    #[cfg(feature = "gzip")]
    #[cfg_attr(docsrs, doc(cfg(feature = "gzip")))]
    pub fn gzip(self, level: u32) -> Result<Self, EncodeError> {
        use std::io::Write as _;
        if self.content_encoding.is_some() {
            return Ok(self);
        }
        let out = Vec::with_capacity(self.bytes.len() / 4 + 64);
        let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::new(level.min(9)));
        enc.write_all(&self.bytes).map_err(EncodeError::Gzip)?;
        let out = enc.finish().map_err(EncodeError::Gzip)?;
        Ok(Self {
            bytes: Bytes::from(out),
            content_type: self.content_type,
            content_encoding: Some("gzip"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(body: &'static [u8]) -> Event {
        Event::builder("i", "s").json_bytes(body).unwrap()
    }

    #[test]
    fn lengths_match_encoding() {
        let events = [ev(b"1"), ev(b"{\"x\":[1,2]}"), ev(b"\"s\"")];
        for enc in [Encoding::JsonArray, Encoding::Ndjson] {
            for n in 0..=events.len() {
                let body = enc.encode(&events[..n]).unwrap();
                let sum: usize = events[..n].iter().map(Event::len).sum();
                assert_eq!(body.len(), enc.encoded_len(n, sum), "{enc:?} {n}");
            }
        }
        let parsed: serde_json::Value =
            serde_json::from_slice(&Encoding::JsonArray.encode(&events).unwrap()).unwrap();
        assert_eq!(parsed.as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn single_needs_one() {
        assert!(matches!(
            Encoding::Single.encode(&[]),
            Err(EncodeError::NotSingle { count: 0 })
        ));
        assert_eq!(&Encoding::Single.encode(&[ev(b"{}")]).unwrap()[..], b"{}");
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn gzip_round_trip() {
        use std::io::Read as _;
        let body = Body::encode(Encoding::Ndjson, &[ev(b"{\"a\":1}"), ev(b"2")]).unwrap();
        let plain = body.bytes.clone();
        let gz = body.gzip(6).unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz.bytes[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, plain);
        // Idempotent.
        assert_eq!(gz.clone().gzip(6).unwrap(), gz);
    }
}
