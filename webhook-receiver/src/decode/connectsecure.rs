//! [`ConnectSecureDecoder`]: ConnectSecure `{"subject", "body"}` alerts (seed 002), tolerant of
//! the invalid `\ ` escape in the vendor's own documentation, routed by canonical subject.

use std::borrow::Cow;

use webhook_payloads::Framing;
use webhook_payloads::connectsecure::{ConnectSecureAlert, Subject, repair_invalid_escapes};

use super::{BodyDecodeError, Decode, absent};
use crate::media::MediaType;

/// Decodes ConnectSecure alerts: one object (what ConnectSecure sends), a JSON array or NDJSON.
///
/// A body that is not valid JSON is parsed strictly first and, only on a syntax error, once
/// more after [`repair_invalid_escapes`] turned each invalid `\X` inside a string into a
/// literal backslash; if that fails too, the strict parse's error is answered (`400`).
///
/// [`subject`](Decode::subject) is the canonical name of the alert's [`Subject`]
/// (`"New Asset(s) Added"` also for `new assets added`), or the subject as sent for subjects
/// the SDK does not know, so routes written with the documented names match tolerantly.
///
/// ```
/// use webhook_receiver::{ConnectSecureDecoder, Decode, MediaType};
///
/// let body = br#"{"subject": "Critical Problems Found",
///   "body": "Critical vulnerabilities detected in company Acme Corporation\ Product: Apache HTTP Server"}"#;
/// let alerts = ConnectSecureDecoder.decode(Some(MediaType::Json), body)?;
/// assert!(alerts[0].raw_body().contains(r"Corporation\ Product"));
/// assert_eq!(ConnectSecureDecoder.subject(&alerts[0]).as_deref(), Some("Critical Problems Found"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectSecureDecoder;

fn strict_then_repaired<R>(
    body: &[u8],
    parse: impl Fn(&[u8]) -> Result<R, webhook_payloads::DecodeError>,
) -> Result<R, webhook_payloads::DecodeError> {
    match parse(body) {
        Err(e) if e.is_malformed() && body.contains(&b'\\') => {
            parse(&repair_invalid_escapes(body)).map_err(|_| e)
        }
        other => other,
    }
}

impl Decode<ConnectSecureAlert> for ConnectSecureDecoder {
    fn decode(
        &self,
        media: Option<MediaType>,
        body: &[u8],
    ) -> Result<Vec<ConnectSecureAlert>, BodyDecodeError> {
        if let Some(absent) = absent(body) {
            return absent;
        }
        if let Some(form) = super::via_form(media, body, |m, b| self.decode(m, b)) {
            return form;
        }
        let framing = match media {
            None => return Err(BodyDecodeError::UnsupportedMediaType),
            Some(MediaType::NdJson) => Framing::Ndjson,
            Some(_) => webhook_payloads::framing(None, body),
        };
        let decoded = match framing {
            Framing::Ndjson => strict_then_repaired(body, webhook_payloads::decode_ndjson),
            Framing::Array => strict_then_repaired(body, webhook_payloads::decode_array),
            _ => ConnectSecureAlert::from_slice(body).map(|a| vec![a]),
        };
        decoded.map_err(|e| BodyDecodeError::from_payloads(e, framing))
    }

    fn subject<'a>(&self, item: &'a ConnectSecureAlert) -> Option<Cow<'a, str>> {
        let raw = item.subject.as_deref()?;
        Some(match Subject::parse(raw) {
            Subject::Other(_) => Cow::Borrowed(raw),
            known => Cow::Owned(known.as_str().to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerant_in_every_framing() {
        let one = br#"{"subject":"Asset Ports","body":"a\ b"}"#;
        let d = ConnectSecureDecoder;
        assert_eq!(d.decode(Some(MediaType::Json), one).unwrap().len(), 1);
        let arr = br#"[{"subject":"Asset Ports","body":"a\ b"},{"subject":"x","body":"y"}]"#;
        assert_eq!(d.decode(Some(MediaType::Json), arr).unwrap().len(), 2);
        let nd = b"{\"subject\":\"Asset Ports\",\"body\":\"a\\ b\"}\n{\"subject\":\"x\",\"body\":\"y\"}\n";
        let items = d.decode(Some(MediaType::NdJson), nd).unwrap();
        assert_eq!(items[0].raw_body(), "a\\ b");
    }

    #[test]
    fn still_malformed_keeps_the_strict_error() {
        let err = ConnectSecureDecoder
            .decode(Some(MediaType::Json), br#"{"subject":"a\ b", oops}"#)
            .unwrap_err();
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
        let err = ConnectSecureDecoder
            .decode(
                Some(MediaType::NdJson),
                b"{\"subject\":\"a\",\"body\":\"b\"}\n{\"subject\":\"\\ \" oops}\n",
            )
            .unwrap_err();
        assert!(matches!(
            err.location(),
            Some(crate::decode::Location::NdJsonLine { line: 2, .. })
        ));
    }

    #[test]
    fn subjects_are_canonical_or_as_sent() {
        let d = ConnectSecureDecoder;
        let a = ConnectSecureAlert::new("new  ASSETS added", "x");
        assert_eq!(d.subject(&a).as_deref(), Some("New Asset(s) Added"));
        let a = ConnectSecureAlert::new("Coffee Ready", "x");
        assert_eq!(d.subject(&a).as_deref(), Some("Coffee Ready"));
        let unit = d.decode(None, b"");
        assert!(unit.is_err(), "an alert needs a body");
    }
}
