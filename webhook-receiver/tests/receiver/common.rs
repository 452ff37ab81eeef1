//! Shared helpers: the Standard Webhooks key ring and verifier of webhook-core, requests signed
//! with core's `Signer`, payloads, a log of what handlers saw.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use webhook_core::{KeyRing, Scheme, Secret, Signer, Verifier};

pub(crate) const SECRET: &[u8] = b"test-secret-key-0123456789";

/// The receiver's key ring: one HMAC key.
pub(crate) fn ring() -> KeyRing {
    KeyRing::single(Secret::from_bytes(SECRET).expect("valid secret"))
}

/// A Standard Webhooks verifier over [`ring`] with the default 300 s tolerance.
pub(crate) fn verifier() -> Verifier {
    Verifier::new(Scheme::standard_webhooks(), &ring()).expect("HMAC key fits")
}

/// A receiver configuration verifying with [`verifier`], the other settings default.
pub(crate) fn verified_config() -> webhook_receiver::ReceiverConfig {
    webhook_receiver::ReceiverConfig::builder()
        .verify(verifier())
        .build()
        .expect("config")
}

fn signer() -> Signer {
    Signer::new(Scheme::standard_webhooks(), &ring()).expect("HMAC key fits")
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
    let mut req = Request::post("/hook")
        .header("content-type", content_type)
        .body(Full::new(body.clone()))
        .expect("valid request");
    signer()
        .sign(id, ts, &body, req.headers_mut())
        .expect("signable");
    req
}

/// Signature headers for `body` (for raw socket requests), signed now.
pub(crate) fn signature_headers(id: &str, body: &[u8]) -> String {
    let mut h = http::HeaderMap::new();
    signer()
        .sign(id, unix(now()), body, &mut h)
        .expect("signable");
    h.iter()
        .map(|(k, v)| format!("{k}: {}\r\n", v.to_str().expect("ASCII")))
        .collect()
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
