//! The whole receiver pipeline from an `http::Request` (no sockets): method, media type,
//! bounded body, bounded gzip, authentication, decoding and routing, for each decoder (JSON,
//! detection, Sysdig, ConnectSecure, raw bytes), unauthenticated and behind a Standard Webhooks
//! verifier (the harness signs the request then).
//!
//! Checked: every answer is one of the documented statuses, an error answer has a JSON body,
//! and the bytes a raw-body handler receives are the request body, gunzipped (compared with
//! `flate2`'s own decoder) when it was sent with `Content-Encoding: gzip`.
//!
//! Input: a selector byte (decoder, gzip by the harness, signed, method), then `name: value`
//! header lines, an empty line and the body.
#![no_main]

use std::io::{Read, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use webhook_core::{KeyRing, ReceiverAuth, Scheme, Secret, Signer, Verifier};
use webhook_receiver::{
    ConnectSecureDecoder, Context, DetectDecoder, HandlerOutcome, JsonDecoder, RawBody, Receiver,
    ReceiverConfig, SysdigDecoder, handler_fn,
};

const TS: u64 = 1_700_000_000;
const LIMIT: usize = 1 << 16;

fn ring() -> KeyRing {
    KeyRing::single(Secret::from_bytes(&b"fuzz-secret-0123456789abcdef"[..]).expect("secret"))
}

fn config(signed: bool) -> ReceiverConfig {
    let b = ReceiverConfig::builder()
        .body_limit(LIMIT)
        .decompressed_limit(LIMIT)
        .gzip(true)
        .no_replay_protection();
    let b = if signed {
        b.verify(Verifier::new(Scheme::standard_webhooks(), &ring()).expect("verifier"))
    } else {
        b.auth(ReceiverAuth::None)
    };
    b.build().expect("config")
}

/// What the raw-body handler last received.
static SEEN: Mutex<Option<Bytes>> = Mutex::new(None);

struct Receivers {
    json: Receiver<serde_json::Value>,
    detect: Receiver<webhook_payloads::Payload<'static>>,
    sysdig: Receiver<webhook_payloads::sysdig::SysdigEvent<'static>>,
    connectsecure: Receiver<webhook_payloads::connectsecure::ConnectSecureAlert>,
    raw: Receiver<Bytes>,
}

fn accept<T: Send + 'static>() -> impl webhook_receiver::Handler<T> {
    handler_fn(|_item: T, _cx: Context| async { HandlerOutcome::Accepted })
}

fn receivers(signed: bool) -> &'static Receivers {
    static PLAIN: OnceLock<Receivers> = OnceLock::new();
    static SIGNED: OnceLock<Receivers> = OnceLock::new();
    let cell = if signed { &SIGNED } else { &PLAIN };
    cell.get_or_init(|| Receivers {
        json: Receiver::with_decoder(config(signed), JsonDecoder)
            .fallback(accept())
            .build()
            .expect("receiver"),
        detect: Receiver::with_decoder(config(signed), DetectDecoder)
            .fallback(accept())
            .build()
            .expect("receiver"),
        sysdig: Receiver::with_decoder(config(signed), SysdigDecoder)
            .fallback(accept())
            .build()
            .expect("receiver"),
        connectsecure: Receiver::with_decoder(config(signed), ConnectSecureDecoder)
            .fallback(accept())
            .build()
            .expect("receiver"),
        raw: Receiver::with_decoder(config(signed), RawBody)
            .fallback(handler_fn(|body: Bytes, _cx: Context| async move {
                *SEEN.lock().expect("lock") = Some(body);
                HandlerOutcome::Accepted
            }))
            .build()
            .expect("receiver"),
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("in memory");
    e.finish().expect("in memory")
}

/// `flate2`'s own reading of a gzip body, up to one byte past the limit.
fn gunzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .take(LIMIT as u64 + 1)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

async fn answer(res: Response<Full<Bytes>>) -> (StatusCode, Bytes) {
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .expect("full body")
        .to_bytes();
    (status, body)
}

fuzz_target!(|data: &[u8]| {
    let Some((sel, rest)) = webhook_fuzz::selector(data) else {
        return;
    };
    let (headers, body) = webhook_fuzz::headers_and_body(rest);
    let harness_gzip = sel & 0x08 != 0;
    let signed = sel & 0x10 != 0;
    let method = match (sel >> 5) & 3 {
        0 | 3 => Method::POST,
        1 => Method::PUT,
        _ => Method::GET,
    };
    let body = if harness_gzip {
        Bytes::from(gzip(body))
    } else {
        Bytes::copy_from_slice(body)
    };
    let mut req = Request::builder()
        .method(method)
        .uri("/hook")
        .body(Full::new(body.clone()))
        .expect("request");
    *req.headers_mut() = headers;
    if harness_gzip {
        req.headers_mut().insert(
            http::header::CONTENT_ENCODING,
            http::HeaderValue::from_static("gzip"),
        );
    }
    if signed {
        // Signed over the bytes as sent (compressed, when compressed).
        let _ = Signer::new(Scheme::standard_webhooks(), &ring())
            .expect("signer")
            .sign("msg_fuzz", TS, &body, req.headers_mut());
    }
    let gzipped = {
        let mut values = req.headers().get_all(http::header::CONTENT_ENCODING).iter();
        let one = values.next().and_then(|v| v.to_str().ok()).map(str::trim);
        values.next().is_none()
            && one
                .is_some_and(|v| v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip"))
    };
    let rx = receivers(signed);
    let now = UNIX_EPOCH + Duration::from_secs(TS + 1);
    *SEEN.lock().expect("lock") = None;
    let (status, answer_body) = runtime().block_on(async {
        match sel & 7 {
            0 | 5 => answer(rx.json.handle_at(req, now).await).await,
            1 | 6 => answer(rx.detect.handle_at(req, now).await).await,
            2 | 7 => answer(rx.sysdig.handle_at(req, now).await).await,
            3 => answer(rx.connectsecure.handle_at(req, now).await).await,
            _ => answer(rx.raw.handle_at(req, now).await).await,
        }
    });
    assert!(
        matches!(
            status.as_u16(),
            200 | 400 | 401 | 405 | 409 | 413 | 415 | 422 | 429 | 500 | 503
        ),
        "undocumented status {status}"
    );
    if !status.is_success() && !answer_body.is_empty() {
        let v: serde_json::Value = serde_json::from_slice(&answer_body)
            .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {answer_body:?}"));
        assert!(v.get("error").is_some(), "error body without `error`: {v}");
    }
    let error = serde_json::from_slice::<serde_json::Value>(&answer_body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned));
    if sel & 7 == 4 && gzipped && !body.is_empty() && error.as_deref() == Some("bad_encoding") {
        // Bad encoding: flate2 cannot read it either.
        assert!(
            gunzip(&body).is_none(),
            "a gzip body flate2 reads was refused"
        );
    }
    if let Some(seen) = SEEN.lock().expect("lock").take() {
        assert_eq!(status, StatusCode::OK);
        if gzipped && body.is_empty() {
            // An empty body is empty in any coding (the receiver does not gunzip it).
            assert!(seen.is_empty(), "an empty gzip body became {seen:?}");
        } else if gzipped {
            let reference = gunzip(&body).expect("flate2 reads what the receiver accepted");
            assert_eq!(
                seen[..],
                reference[..],
                "gunzipped body differs from flate2's"
            );
        } else {
            assert_eq!(seen, body, "raw body differs from the request body");
        }
    }
});
