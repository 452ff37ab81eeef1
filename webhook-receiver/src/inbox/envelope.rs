//! An inbox message as stored: the verified request (method, URI, headers, peer, identity,
//! times, the decoded body) in one compact JSON value, the event body the store keeps.
//!
//! The body is kept in base64 (it may be any bytes: NDJSON, a form, pretty-printed JSON), the
//! headers as `[name, value]` pairs (values that are not visible ASCII are kept in base64 with a
//! `b64:` prefix), the identity as a tagged array.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version};
use serde::{Deserialize, Serialize};
use webhook_core::Event;

use crate::auth::{Authenticated, Identity};
use crate::context::Context;
use crate::media::MediaType;

/// Why a stored message could not be read back (a record written by another program).
#[derive(Debug, thiserror::Error)]
#[error("inbox message {id}: {what}")]
pub(crate) struct BadEnvelope {
    pub(crate) id: String,
    pub(crate) what: String,
}

#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    v: u8,
    #[serde(borrow)]
    m: &'a str,
    #[serde(borrow)]
    u: std::borrow::Cow<'a, str>,
    ver: u8,
    h: Vec<(std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    /// Received at, ns since the Unix epoch.
    at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<std::borrow::Cow<'a, str>>,
    /// Signed timestamp, ns since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ts: Option<u64>,
    who: Who,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cert: Option<String>,
    b: String,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
enum Who {
    Anonymous,
    Basic {
        user: String,
    },
    Bearer,
    Header {
        name: String,
    },
    Signature {
        key: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ts: Option<u64>,
    },
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn version_code(v: Version) -> u8 {
    match v {
        Version::HTTP_09 => 9,
        Version::HTTP_10 => 10,
        Version::HTTP_2 => 20,
        Version::HTTP_3 => 30,
        _ => 11,
    }
}

fn version_of(code: u8) -> Version {
    match code {
        9 => Version::HTTP_09,
        10 => Version::HTTP_10,
        20 => Version::HTTP_2,
        30 => Version::HTTP_3,
        _ => Version::HTTP_11,
    }
}

/// The stored form of a verified request: an event with id `id`, type `subject`.
pub(crate) fn encode(cx: &Context, id: &str, subject: &str) -> Event {
    let headers = cx
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = match value.to_str() {
                Ok(v) if !v.starts_with("b64:") => std::borrow::Cow::Borrowed(v),
                _ => std::borrow::Cow::Owned(format!("b64:{}", B64.encode(value.as_bytes()))),
            };
            (std::borrow::Cow::Borrowed(name.as_str()), value)
        })
        .collect();
    let auth = cx.authenticated();
    let who = match auth.identity() {
        Identity::Anonymous => Who::Anonymous,
        Identity::Basic { user } => Who::Basic { user: user.clone() },
        Identity::Bearer => Who::Bearer,
        Identity::HeaderToken { header } => Who::Header {
            name: header.as_str().to_owned(),
        },
        Identity::Signature {
            key_index,
            id,
            timestamp,
        } => Who::Signature {
            key: *key_index,
            id: id.clone(),
            ts: *timestamp,
        },
        // Identities added later are kept as anonymous rather than refused.
        #[allow(unreachable_patterns)]
        _ => Who::Anonymous,
    };
    let envelope = Envelope {
        v: 1,
        m: cx.method().as_str(),
        u: std::borrow::Cow::Owned(cx.uri().to_string()),
        ver: version_code(cx.version()),
        h: headers,
        r: cx.remote_addr().map(|a| a.to_string()),
        at: nanos(cx.received_at()),
        id: auth.message_id.as_deref().map(std::borrow::Cow::Borrowed),
        ts: auth.timestamp().map(nanos),
        who,
        cert: cx.client_certificate().map(|c| B64.encode(c)),
        b: B64.encode(cx.body()),
    };
    // Serializing plain strings and numbers cannot fail, and the JSON is compact (no line
    // breaks: serde_json escapes them inside strings).
    let json = serde_json::to_vec(&envelope).unwrap_or_default();
    let subject = if subject.is_empty() {
        "webhook"
    } else {
        subject
    };
    Event::builder(id, subject)
        .timestamp_nanos(envelope.at)
        .json_bytes(json)
        .unwrap_or_else(|_| {
            // Unreachable for the JSON above; a record that says so beats a panic.
            Event::builder(id, subject)
                .json_bytes(&b"{\"v\":0}"[..])
                .expect("a constant compact JSON value")
        })
}

/// The context of a stored message, for run `attempt` of its handlers.
pub(crate) fn decode(event: &Event, attempt: u32) -> Result<Context, BadEnvelope> {
    let bad = |what: String| BadEnvelope {
        id: event.id().to_owned(),
        what,
    };
    let e: Envelope<'_> = serde_json::from_slice(event.body())
        .map_err(|err| bad(format!("not an envelope: {err}")))?;
    if e.v != 1 {
        return Err(bad(format!("envelope version {}", e.v)));
    }
    let method = Method::from_bytes(e.m.as_bytes()).map_err(|err| bad(err.to_string()))?;
    let uri: Uri =
        e.u.parse()
            .map_err(|err: http::uri::InvalidUri| bad(err.to_string()))?;
    let mut headers = HeaderMap::with_capacity(e.h.len());
    for (name, value) in &e.h {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|err| bad(err.to_string()))?;
        let value = match value.strip_prefix("b64:") {
            Some(b) => HeaderValue::from_bytes(&B64.decode(b).map_err(|err| bad(err.to_string()))?),
            None => HeaderValue::from_str(value),
        }
        .map_err(|err| bad(err.to_string()))?;
        headers.append(name, value);
    }
    let body = Bytes::from(B64.decode(&e.b).map_err(|err| bad(err.to_string()))?);
    let media_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(MediaType::from_content_type);
    let identity = match e.who {
        Who::Anonymous => Identity::Anonymous,
        Who::Basic { user } => Identity::Basic { user },
        Who::Bearer => Identity::Bearer,
        Who::Header { name } => Identity::HeaderToken {
            header: HeaderName::from_bytes(name.as_bytes()).map_err(|err| bad(err.to_string()))?,
        },
        Who::Signature { key, id, ts } => Identity::Signature {
            key_index: key,
            id,
            timestamp: ts,
        },
    };
    let mut auth = Authenticated::new(identity);
    if let Some(id) = e.id {
        auth = auth.with_message_id(id.into_owned());
    }
    if let Some(ts) = e.ts {
        auth = auth.with_timestamp(SystemTime::UNIX_EPOCH + Duration::from_nanos(ts));
    }
    let remote: Option<SocketAddr> = e.r.as_deref().and_then(|r| r.parse().ok());
    let mut b = Context::builder()
        .method(method)
        .uri(uri)
        .version(version_of(e.ver))
        .headers(headers)
        .body(body)
        .media_type(media_type)
        .remote_addr(remote)
        .authenticated(auth)
        .received_at(SystemTime::UNIX_EPOCH + Duration::from_nanos(e.at));
    if let Some(cert) = e.cert {
        b = b.client_certificate(Bytes::from(
            B64.decode(cert).map_err(|err| bad(err.to_string()))?,
        ));
    }
    Ok(b.build().with_attempt(attempt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_survives_the_round_trip() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("x-odd", HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        headers.append("x-two", HeaderValue::from_static("a"));
        headers.append("x-two", HeaderValue::from_static("b64:looks-encoded"));
        let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let cx = Context::builder()
            .uri(Uri::from_static("/hook?x=1"))
            .headers(headers)
            .body(Bytes::from_static(b"{\"a\":1}\n{\"b\":\"\xff\"}"))
            .media_type(Some(MediaType::Json))
            .remote_addr(Some("127.0.0.1:4000".parse().unwrap()))
            .authenticated(
                Authenticated::new(Identity::Signature {
                    key_index: 1,
                    id: Some("msg_1".into()),
                    timestamp: Some(1_700_000_000),
                })
                .with_timestamp(at),
            )
            .client_certificate(Bytes::from_static(b"0\x82der"))
            .received_at(at)
            .build();
        let event = encode(&cx, "msg_1", "policy");
        assert_eq!((event.id(), event.subject()), ("msg_1", "policy"));
        let back = decode(&event, 3).unwrap();
        assert_eq!(back.attempt(), 3);
        assert_eq!(back.body(), cx.body());
        assert_eq!(back.headers(), cx.headers());
        assert_eq!(back.uri(), cx.uri());
        assert_eq!(back.message_id(), Some("msg_1"));
        assert_eq!(back.timestamp(), Some(at));
        assert_eq!(back.received_at(), at);
        assert_eq!(back.remote_addr(), cx.remote_addr());
        assert_eq!(back.identity(), cx.identity());
        assert_eq!(back.client_certificate(), cx.client_certificate());
        assert_eq!(back.media_type(), Some(MediaType::Json));
    }

    #[test]
    fn a_foreign_record_is_a_typed_error() {
        let event = Event::builder("x", "t").json_bytes(&b"[1,2]"[..]).unwrap();
        let err = decode(&event, 1).unwrap_err();
        assert!(err.to_string().contains("not an envelope"), "{err}");
        let event = Event::builder("x", "t")
            .json_bytes(&br#"{"v":1,"m":"POST","u":"/","ver":11,"h":[],"at":0,"who":{"k":"bearer"},"b":"!!"}"#[..])
            .unwrap();
        assert!(decode(&event, 1).is_err());
    }
}
