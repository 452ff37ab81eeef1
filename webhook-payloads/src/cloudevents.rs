//! CloudEvents 1.0: the JSON event format and its HTTP binding: structured mode
//! (`application/cloudevents+json`), batched mode (`application/cloudevents-batch+json`) and
//! binary mode (attributes in `ce-` headers, data in the body).

use base64::Engine as _;
use http::HeaderMap;
use serde_json::Value;

use crate::DecodeError;
use crate::Timestamp;
use crate::object::json_object;

/// The structured-mode media type.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";
/// The batched-mode media type.
pub const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";

json_object! {
    /// A CloudEvent. Extension attributes are the members of `extra`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use webhook_payloads::cloudevents::CloudEvent;
    /// let ev: CloudEvent = serde_json::from_str(r#"{"specversion":"1.0","id":"A234-1234-1234",
    ///   "source":"/mycontext","type":"com.example.someevent","time":"2018-04-05T17:31:00Z",
    ///   "comexampleextension1":"value","datacontenttype":"application/json","data":{"a":1}}"#)?;
    /// assert_eq!(ev.kind, "com.example.someevent");
    /// assert_eq!(ev.extension("comexampleextension1"), Some(&serde_json::json!("value")));
    /// # Ok(()) }
    /// ```
    pub struct CloudEvent {
        /// `specversion` (`1.0`).
        specversion "specversion": String,
        /// `id`: unique per `source`.
        id "id": String,
        /// `source` (URI reference).
        source "source": String,
        /// `type`.
        kind "type": String,
        /// `datacontenttype`.
        datacontenttype "datacontenttype": Option<String>,
        /// `dataschema`.
        dataschema "dataschema": Option<String>,
        /// `subject`.
        subject "subject": Option<String>,
        /// `time` (RFC 3339).
        time "time": Option<Timestamp>,
        /// `data` (JSON data, or text as a JSON string).
        data "data": Option<Value>,
        /// `data_base64` (binary data).
        data_base64 "data_base64": Option<String>,
    }
}

impl CloudEvent {
    /// An extension attribute.
    pub fn extension(&self, name: &str) -> Option<&Value> {
        self.extra.get(name)
    }

    /// `data_base64` decoded; `None` when absent or not valid base64.
    pub fn data_bytes(&self) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(self.data_base64.as_deref()?)
            .ok()
    }

    /// Reads a binary-mode event: attributes from `ce-` headers (percent-decoded), the
    /// `Content-Type` as `datacontenttype`, the body as data (JSON media types and a missing
    /// content type → `data` parsed as JSON; `text/*` → `data` as a JSON string; anything else
    /// → `data_base64`).
    ///
    /// # Errors
    ///
    /// [`DecodeError::CloudEventHeader`] when `ce-specversion`, `ce-id`, `ce-source` or `ce-type`
    /// is missing or a `ce-` value is not UTF-8; [`DecodeError::Syntax`] when a JSON body is
    /// not JSON.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http::{HeaderMap, HeaderValue};
    /// use webhook_payloads::cloudevents::CloudEvent;
    /// let mut h = HeaderMap::new();
    /// h.insert("ce-specversion", HeaderValue::from_static("1.0"));
    /// h.insert("ce-id", HeaderValue::from_static("1"));
    /// h.insert("ce-source", HeaderValue::from_static("/sensors/t%C3%BCr"));
    /// h.insert("ce-type", HeaderValue::from_static("com.example.opened"));
    /// h.insert("content-type", HeaderValue::from_static("application/json"));
    /// let ev = CloudEvent::from_binary(&h, br#"{"open":true}"#)?;
    /// assert_eq!(ev.source, "/sensors/tür");
    /// assert_eq!(ev.data, Some(serde_json::json!({"open": true})));
    /// # Ok(()) }
    /// ```
    pub fn from_binary(headers: &HeaderMap, body: &[u8]) -> Result<Self, DecodeError> {
        let required = |name: &'static str| -> Result<String, DecodeError> {
            header_text(headers, name)?.ok_or(DecodeError::CloudEventHeader {
                header: name,
                problem: "missing",
            })
        };
        let specversion = required("ce-specversion")?;
        let id = required("ce-id")?;
        let source = required("ce-source")?;
        let kind = required("ce-type")?;
        let datacontenttype = headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let mut extra = serde_json::Map::new();
        let (mut dataschema, mut subject, mut time) = (None, None, None);
        for (name, value) in headers {
            let Some(attr) = name.as_str().strip_prefix("ce-") else {
                continue;
            };
            let Some(text) = percent_decode(value.as_bytes()) else {
                return Err(DecodeError::CloudEventHeader {
                    header: "ce-*",
                    problem: "not valid UTF-8 after percent-decoding",
                });
            };
            match attr {
                "specversion" | "id" | "source" | "type" => {}
                "dataschema" => dataschema = Some(text),
                "subject" => subject = Some(text),
                "time" => time = Some(Timestamp::parse(text)),
                _ => {
                    extra.insert(attr.to_owned(), Value::String(text));
                }
            }
        }
        let (data, data_base64) = if body.is_empty() {
            (None, None)
        } else if datacontenttype.as_deref().is_none_or(is_json_media_type) {
            let v: Value =
                crate::decode::from_json(body).map_err(|e| DecodeError::from_json(&e))?;
            (Some(v), None)
        } else if datacontenttype
            .as_deref()
            .is_some_and(|c| c.trim_start().to_ascii_lowercase().starts_with("text/"))
            && let Ok(s) = std::str::from_utf8(body)
        {
            (Some(Value::String(s.to_owned())), None)
        } else {
            (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(body)),
            )
        };
        Ok(Self {
            specversion,
            id,
            source,
            kind,
            datacontenttype,
            dataschema,
            subject,
            time,
            data,
            data_base64,
            extra,
        })
    }
}

/// Whether a media type is JSON (`application/json` or any `+json` suffix).
pub(crate) fn is_json_media_type(ct: &str) -> bool {
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json") || essence == "text/json"
}

/// The media type essence (lower case, parameters dropped).
pub(crate) fn essence(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn header_text(headers: &HeaderMap, name: &'static str) -> Result<Option<String>, DecodeError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => percent_decode(v.as_bytes())
            .map(Some)
            .ok_or(DecodeError::CloudEventHeader {
                header: name,
                problem: "not valid UTF-8 after percent-decoding",
            }),
    }
}

/// Decodes `%XX` escapes (an invalid escape is kept literally), then UTF-8.
fn percent_decode(bytes: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let Some(h) = bytes.get(i + 1..i + 3)
            && let Ok(s) = std::str::from_utf8(h)
            && let Ok(v) = u8::from_str_radix(s, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Whether the headers carry a binary-mode CloudEvent (`ce-specversion` present).
pub(crate) fn is_binary_mode(headers: &HeaderMap) -> bool {
    headers.contains_key("ce-specversion")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn percent() {
        assert_eq!(percent_decode(b"a%20b%").as_deref(), Some("a b%"));
        assert_eq!(percent_decode(b"%zz%C3%A9").as_deref(), Some("%zzé"));
        assert_eq!(percent_decode(b"%FF"), None);
    }

    #[test]
    fn binary_missing_header_and_bytes() {
        let mut h = HeaderMap::new();
        h.insert("ce-specversion", HeaderValue::from_static("1.0"));
        h.insert("ce-id", HeaderValue::from_static("1"));
        h.insert("ce-source", HeaderValue::from_static("/s"));
        let err = CloudEvent::from_binary(&h, b"").unwrap_err();
        assert!(matches!(
            err,
            DecodeError::CloudEventHeader {
                header: "ce-type",
                ..
            }
        ));
        assert_eq!(err.status(), http::StatusCode::UNPROCESSABLE_ENTITY);
        h.insert("ce-type", HeaderValue::from_static("t"));
        h.insert("ce-traceparent", HeaderValue::from_static("00-ab-cd-01"));
        h.insert(
            "content-type",
            HeaderValue::from_static("application/octet-stream"),
        );
        let ev = CloudEvent::from_binary(&h, &[0, 159, 146, 150]).unwrap();
        assert_eq!(ev.data_bytes(), Some(vec![0, 159, 146, 150]));
        assert_eq!(
            ev.extension("traceparent"),
            Some(&Value::String("00-ab-cd-01".into()))
        );
        h.insert(
            "content-type",
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        let ev = CloudEvent::from_binary(&h, "héllo".as_bytes()).unwrap();
        assert_eq!(ev.data, Some(Value::String("héllo".into())));
    }
}
