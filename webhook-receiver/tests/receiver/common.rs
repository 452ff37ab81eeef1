//! Shared helpers: a tiny Standard-Webhooks-style HMAC authenticator, payloads, requests.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use sha2::Sha256;
use webhook_receiver::{AuthError, Authenticate, Authenticated, Identity};

pub(crate) const SECRET: &[u8] = b"test-secret-key-0123456789";
pub(crate) const TOLERANCE: Duration = Duration::from_secs(300);

/// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64 HMAC-SHA256(id.ts.body)>`.
pub(crate) struct TestHmac;

fn mac(id: &str, ts: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    m.update(id.as_bytes());
    m.update(b".");
    m.update(ts.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

impl Authenticate for TestHmac {
    fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Authenticated, AuthError> {
        let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        let (Some(id), Some(ts), Some(sigs)) = (
            get("webhook-id"),
            get("webhook-timestamp"),
            get("webhook-signature"),
        ) else {
            return Err(AuthError::Missing);
        };
        let secs: u64 = ts.parse().map_err(|_| AuthError::Malformed)?;
        let at = UNIX_EPOCH + Duration::from_secs(secs);
        let skew = now.duration_since(at).unwrap_or_else(|e| e.duration());
        if skew > TOLERANCE {
            return Err(AuthError::Expired);
        }
        for entry in sigs.split(' ') {
            let Some(b64) = entry.strip_prefix("v1,") else {
                continue;
            };
            let Ok(sig) = STANDARD.decode(b64) else {
                continue;
            };
            if mac(id, ts, body).verify_slice(&sig).is_ok() {
                return Ok(Authenticated::new(Identity::key("k1"))
                    .with_message_id(id)
                    .with_timestamp(at));
            }
        }
        Err(AuthError::Invalid)
    }
}

pub(crate) fn now() -> SystemTime {
    SystemTime::now()
}

pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A signed POST request for `body` with message id `id`, signed now.
pub(crate) fn signed(id: &str, content_type: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    signed_at(id, content_type, body, unix(now()))
}

/// A POST request for `body` with message id `id`, signed with timestamp `ts` (unix seconds).
pub(crate) fn signed_at(
    id: &str,
    content_type: &str,
    body: impl Into<Bytes>,
    ts: u64,
) -> Request<Full<Bytes>> {
    let body = body.into();
    let ts = ts.to_string();
    let sig = STANDARD.encode(mac(id, &ts, &body).finalize().into_bytes());
    Request::post("/hook")
        .header("content-type", content_type)
        .header("webhook-id", id)
        .header("webhook-timestamp", ts)
        .header("webhook-signature", format!("v1,{sig}"))
        .body(Full::new(body))
        .expect("valid request")
}

/// Signature headers for `body` (for raw socket requests).
pub(crate) fn signature_headers(id: &str, body: &[u8]) -> String {
    let ts = unix(now()).to_string();
    let sig = STANDARD.encode(mac(id, &ts, body).finalize().into_bytes());
    format!("webhook-id: {id}\r\nwebhook-timestamp: {ts}\r\nwebhook-signature: v1,{sig}\r\n")
}

/// The ConnectSecure payload (seed 002).
#[derive(Debug, Clone, serde::Deserialize, PartialEq)]
pub(crate) struct Alert {
    pub(crate) subject: String,
    pub(crate) body: String,
}

pub(crate) fn alert_json(subject: &str, body: &str) -> String {
    serde_json::json!({ "subject": subject, "body": body }).to_string()
}

/// A shared log of what handlers saw.
#[derive(Clone, Default)]
pub(crate) struct Log(pub Arc<Mutex<Vec<String>>>);

impl Log {
    pub(crate) fn push(&self, s: impl Into<String>) {
        self.0.lock().expect("log lock").push(s.into());
    }
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("log lock"))
    }
}

pub(crate) async fn body_json<B>(res: Response<B>) -> (http::StatusCode, serde_json::Value)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let v = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    (status, v)
}
