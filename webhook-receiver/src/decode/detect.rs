//! [`DetectDecoder`]: one endpoint for every payload family `webhook-payloads` knows, each record
//! recognized on its own (a batch may mix families) and routed by `family.kind`.

use std::borrow::Cow;

use webhook_payloads::{Payload, detect};

use super::{BodyDecodeError, Decode};
use crate::media::MediaType;

/// Decodes any body [`webhook_payloads::detect`] recognizes (Sysdig, ConnectSecure, Soveren,
/// Falco, Alertmanager, structured CloudEvents, Standard Webhooks envelopes; other JSON as
/// [`Payload::Json`]) into owned [`Payload`]s, recognizing every record of a batch on its own.
///
/// [`subject`](Decode::subject) is `<family>.<kind>`, so routes such as `sysdig.policy`,
/// `sysdig.*`, `connectsecure.*` or `soveren.new_external_receiver` apply:
///
/// | family | subject |
/// | --- | --- |
/// | Sysdig | `sysdig.<type>` (`sysdig.policy`, `sysdig.audittrail`, `sysdig.command`, ...) |
/// | ConnectSecure | `connectsecure.<subject>`, the documented spelling when recognized (`connectsecure.Login Failure`) |
/// | Soveren | `soveren.<event_type>` |
/// | Falco | `falco.<priority>` |
/// | Alertmanager | `alertmanager.<status>` (`firing` / `resolved`) |
/// | CloudEvents | `cloudevents.<type>` |
/// | Standard Webhooks | `standard.<type>` |
/// | other JSON | `json` |
///
/// A part that is absent reads `unknown` (`soveren.unknown`). Binary-mode CloudEvents carry
/// their attributes in headers, which a [`Decode`] does not see: use a dedicated receiver for
/// them. A malformed record is reported with its NDJSON line or its JSON line and column.
///
/// ```
/// use webhook_payloads::Payload;
/// use webhook_receiver::{Decode, DetectDecoder, MediaType};
///
/// let body = concat!(
///     r#"{"id":"a","type":"policy","timestamp":1720031001639981110}"#, "\n",
///     r#"{"subject":"Login Failure","body":"Login Failure for john.doe"}"#, "\n",
/// );
/// let items = DetectDecoder.decode(Some(MediaType::NdJson), body.as_bytes())?;
/// assert!(matches!(items[0], Payload::Sysdig(_)));
/// assert_eq!(DetectDecoder.subject(&items[0]).as_deref(), Some("sysdig.policy"));
/// assert_eq!(DetectDecoder.subject(&items[1]).as_deref(), Some("connectsecure.Login Failure"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DetectDecoder;

impl Decode<Payload<'static>> for DetectDecoder {
    fn decode(
        &self,
        media: Option<MediaType>,
        body: &[u8],
    ) -> Result<Vec<Payload<'static>>, BodyDecodeError> {
        if let Some(form) = super::via_form(media, body, |m, b| self.decode(m, b)) {
            return form;
        }
        let content_type = super::content_type_of(media, body)?;
        match detect(Some(content_type), &http::HeaderMap::new(), body) {
            Ok(found) => Ok(found
                .payloads
                .into_iter()
                .map(Payload::into_owned)
                .collect()),
            Err(e) => Err(BodyDecodeError::from_payloads(
                e,
                webhook_payloads::framing(Some(content_type), body),
            )),
        }
    }

    fn subject<'a>(&self, item: &'a Payload<'static>) -> Option<Cow<'a, str>> {
        fn or_unknown(s: Option<&str>) -> &str {
            s.filter(|s| !s.is_empty()).unwrap_or("unknown")
        }
        let subject = match item {
            Payload::Sysdig(e) => format!("sysdig.{}", or_unknown(e.event_type())),
            Payload::ConnectSecure(a) => {
                let known = a.subject();
                let text = match &known {
                    webhook_payloads::connectsecure::Subject::Other(_) => a.subject.as_deref(),
                    k => Some(k.as_str()),
                };
                format!("connectsecure.{}", or_unknown(text))
            }
            Payload::Soveren(e) => format!(
                "soveren.{}",
                or_unknown(e.event_type.as_ref().map(|t| t.as_str()))
            ),
            Payload::Falco(e) => format!(
                "falco.{}",
                or_unknown(e.priority.as_ref().map(|p| p.as_str()))
            ),
            Payload::Alertmanager(p) => format!("alertmanager.{}", or_unknown(p.status.as_deref())),
            Payload::CloudEvent(e) => format!("cloudevents.{}", or_unknown(Some(&e.kind))),
            Payload::StandardWebhook(e) => format!("standard.{}", or_unknown(Some(&e.kind))),
            Payload::Json(_) => "json".to_owned(),
            // A family added to `webhook-payloads` later: its name.
            other => format!("{:?}", other.family()).to_ascii_lowercase(),
        };
        Some(Cow::Owned(subject))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_batches_route_by_family_and_kind() {
        let body = concat!(
            r#"[{"id":"a","type":"audittrail","timestamp":1},"#,
            r#"{"subject":"new  ASSETS added","body":"New asset added with ip 10.0.0.1"},"#,
            r#"{"title":"t","sensitivity":"High","category":"Data at risk","event_type":"new_external_receiver","event_link":"https://app.soveren.io/events/1"},"#,
            r#"{"rule":"Terminal shell","priority":"Warning","output":"o"},"#,
            r#"{"anything":"else"}]"#
        );
        let items = DetectDecoder
            .decode(Some(MediaType::Json), body.as_bytes())
            .unwrap();
        let subjects: Vec<_> = items
            .iter()
            .map(|i| DetectDecoder.subject(i).unwrap().into_owned())
            .collect();
        assert_eq!(
            subjects,
            [
                "sysdig.audittrail",
                "connectsecure.New Asset(s) Added",
                "soveren.new_external_receiver",
                "falco.Warning",
                "json"
            ]
        );
    }

    #[test]
    fn errors_are_typed_with_their_status() {
        assert!(matches!(
            DetectDecoder.decode(None, b" "),
            Err(BodyDecodeError::Empty)
        ));
        assert!(matches!(
            DetectDecoder.decode(None, b"{}"),
            Err(BodyDecodeError::UnsupportedMediaType)
        ));
        let err = DetectDecoder
            .decode(Some(MediaType::NdJson), b"{\"a\":1}\n{\"a\":\n")
            .unwrap_err();
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
        assert!(matches!(
            err.location(),
            Some(crate::decode::Location::NdJsonLine { line: 2, .. })
        ));
        let err = DetectDecoder
            .decode(
                Some(MediaType::Json),
                br#"[{"id":"a","type":"policy","timestamp":"x"}]"#,
            )
            .unwrap_err();
        assert_eq!(err.status(), http::StatusCode::UNPROCESSABLE_ENTITY);
    }
}
