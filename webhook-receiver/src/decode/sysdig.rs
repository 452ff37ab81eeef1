//! [`SysdigDecoder`]: Sysdig Secure event batches (JSON array, NDJSON or one object), with
//! `webhook-payloads`' fast borrowing parser, routed by event `type`.

use std::borrow::Cow;

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
#[derive(Debug, Clone, Copy, Default)]
pub struct SysdigDecoder;

impl Decode<SysdigEvent<'static>> for SysdigDecoder {
    fn decode(
        &self,
        media: Option<MediaType>,
        body: &[u8],
    ) -> Result<Vec<SysdigEvent<'static>>, BodyDecodeError> {
        let content_type = super::content_type_of(media, body)?;
        match parse_batch(Some(content_type), body) {
            Ok((_, events)) => Ok(events.into_iter().map(SysdigEvent::into_owned).collect()),
            Err(e) => Err(BodyDecodeError::from_payloads(
                e,
                webhook_payloads::framing(Some(content_type), body),
            )),
        }
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
