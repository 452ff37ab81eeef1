//! [`SysdigDecoder`]: Sysdig Secure event batches (JSON array, NDJSON or one object), with
//! `webhook-payloads`' fast borrowing parser, routed by event `type`.

use std::borrow::Cow;

use webhook_payloads::TimestampFormat;
use webhook_payloads::sysdig::{SysdigEvent, parse_batch};

use super::{BodyDecodeError, Decode};
use crate::media::MediaType;

/// Decodes Sysdig Secure events with [`parse_batch`] (each event then detached from the body
/// with [`SysdigEvent::into_owned`]); [`subject`](Decode::subject) is the event `type`
/// (`policy`, `audittrail`, `command`, `connection`, `fileaccess`, `kubernetes`, ...), so routes
/// such as `policy` or `*access` apply. A malformed event is reported with its NDJSON line or
/// its JSON line and column.
///
/// ```
/// use webhook_payloads::sysdig::SysdigEvent;
/// use webhook_receiver::{Decode, MediaType, SysdigDecoder};
///
/// let body = b"{\"id\":\"a\",\"type\":\"command\",\"timestamp\":1720026578020799700}\n\
///              {\"id\":\"b\",\"type\":\"policy\",\"timestamp\":1720026578020799701}\n";
/// let events = SysdigDecoder.decode(Some(MediaType::NdJson), body)?;
/// assert!(matches!(events[0], SysdigEvent::Command(_)));
/// assert_eq!(SysdigDecoder.subject(&events[1]).as_deref(), Some("policy"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Timestamps: an agent with `timestampFormat: seconds|milliseconds|microseconds` sends
/// `timestamp` at that resolution. This decoder reads the resolution from each value's
/// magnitude (right from 1973 to the year 5138, see
/// [`SysdigTimestamp`](webhook_payloads::sysdig::SysdigTimestamp));
/// [`SysdigDecoder::with_timestamp_format`] declares it instead.
#[derive(Debug, Clone, Copy, Default)]
pub struct SysdigDecoder;

impl SysdigDecoder {
    /// A decoder that declares every event's `timestamp` to be at `format` (the sender's
    /// `timestampFormat`), instead of reading the resolution from the magnitude.
    ///
    /// ```
    /// use webhook_payloads::TimestampFormat;
    /// use webhook_receiver::{Decode, MediaType, SysdigDecoder};
    ///
    /// let body = br#"[{"id":"a","type":"command","timestamp":90000}]"#; // 90 s, in ms
    /// let events = SysdigDecoder.decode(Some(MediaType::Json), body)?;
    /// assert_eq!(events[0].timestamp_ns(), Some(90_000 * 1_000_000_000)); // read as seconds
    /// let events = SysdigDecoder::with_timestamp_format(TimestampFormat::Milliseconds)
    ///     .decode(Some(MediaType::Json), body)?;
    /// assert_eq!(events[0].timestamp_ns(), Some(90 * 1_000_000_000));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_timestamp_format(format: TimestampFormat) -> SysdigDecoderAt {
        SysdigDecoderAt { format }
    }
}

/// [`SysdigDecoder`] with a declared timestamp resolution
/// ([`SysdigDecoder::with_timestamp_format`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysdigDecoderAt {
    format: TimestampFormat,
}

impl SysdigDecoderAt {
    /// The declared resolution.
    pub fn timestamp_format(&self) -> TimestampFormat {
        self.format
    }
}

fn decode_events(
    media: Option<MediaType>,
    body: &[u8],
    format: Option<TimestampFormat>,
) -> Result<Vec<SysdigEvent<'static>>, BodyDecodeError> {
    if let Some(form) = super::via_form(media, body, |m, b| decode_events(m, b, format)) {
        return form;
    }
    let content_type = super::content_type_of(media, body)?;
    match parse_batch(Some(content_type), body) {
        Ok((_, events)) => Ok(events
            .into_iter()
            .map(|e| {
                let mut e = e.into_owned();
                if let Some(f) = format {
                    e.set_timestamp_format(f);
                }
                e
            })
            .collect()),
        Err(e) => Err(BodyDecodeError::from_payloads(
            e,
            webhook_payloads::framing(Some(content_type), body),
        )),
    }
}

impl Decode<SysdigEvent<'static>> for SysdigDecoder {
    fn decode(
        &self,
        media: Option<MediaType>,
        body: &[u8],
    ) -> Result<Vec<SysdigEvent<'static>>, BodyDecodeError> {
        decode_events(media, body, None)
    }

    fn subject<'a>(&self, item: &'a SysdigEvent<'static>) -> Option<Cow<'a, str>> {
        item.event_type().map(Cow::Borrowed)
    }
}

impl Decode<SysdigEvent<'static>> for SysdigDecoderAt {
    fn decode(
        &self,
        media: Option<MediaType>,
        body: &[u8],
    ) -> Result<Vec<SysdigEvent<'static>>, BodyDecodeError> {
        decode_events(media, body, Some(self.format))
    }

    fn subject<'a>(&self, item: &'a SysdigEvent<'static>) -> Option<Cow<'a, str>> {
        item.event_type().map(Cow::Borrowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_and_errors() {
        let body = br#"[{"id":"a","type":"connection","timestamp":1},{"id":"b","type":"new-kind","timestamp":2}]"#;
        let ev = SysdigDecoder.decode(Some(MediaType::Json), body).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(SysdigDecoder.subject(&ev[1]).as_deref(), Some("new-kind"));
        let err = SysdigDecoder
            .decode(
                Some(MediaType::NdJson),
                b"{\"id\":\"a\",\"type\":\"command\",\"timestamp\":1}\n{\"id\":\n",
            )
            .unwrap_err();
        assert!(matches!(
            err.location(),
            Some(crate::decode::Location::NdJsonLine { line: 2, .. })
        ));
        let err = SysdigDecoder
            .decode(Some(MediaType::Json), br#"[{"type":"command"}]"#)
            .unwrap_err();
        assert_eq!(err.status(), http::StatusCode::UNPROCESSABLE_ENTITY);
        assert!(matches!(
            SysdigDecoder.decode(None, b""),
            Err(BodyDecodeError::Empty)
        ));
    }
}
