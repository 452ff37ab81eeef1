//! Tests through `tower::ServiceExt::oneshot` on the `Receiver` service and `VerifyLayer`.

use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::Full;
use tower::ServiceExt;
use webhook_core::ReceiverAuth;
use webhook_receiver::tower::VerifyLayer;
use webhook_receiver::{
    Authenticated, Context, HandlerOutcome, Identity, Receiver, ReceiverConfig, handler_fn,
};

use crate::common::{Alert, Log, alert_json, body_json, signed, verifier};

fn config() -> ReceiverConfig {
    ReceiverConfig::builder()
        .verify(verifier())
        .build()
        .expect("valid config")
}

/// Routes ConnectSecure alerts by subject; "Critical Problems Found" fails while `fail` is set.
fn alert_receiver(config: ReceiverConfig, log: &Log, fail: &Arc<AtomicBool>) -> Receiver<Alert> {
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let fail = Arc::clone(fail);
    Receiver::builder(config)
        .subject(|a: &Alert| Some(a.subject.as_str()))
        .route(
            "Login Failure",
            handler_fn(move |a: Alert, cx: Context| {
                let log = l1.clone();
                async move {
                    log.push(format!("login:{}:{:?}", a.body, cx.message_id()));
                    HandlerOutcome::Accepted
                }
            }),
        )
        .route(
            "Critical Problems Found",
            handler_fn(move |a: Alert, _cx: Context| {
                let log = l2.clone();
                let fail = Arc::clone(&fail);
                async move {
                    if fail.load(Ordering::SeqCst) {
                        return HandlerOutcome::failed("database unavailable");
                    }
                    log.push(format!("critical:{}", a.body));
                    HandlerOutcome::Accepted
                }
            }),
        )
        .route(
            "Overload",
            handler_fn(|_a: Alert, _cx: Context| async {
                HandlerOutcome::overloaded(Some(Duration::from_millis(1500)))
            }),
        )
        .fallback(handler_fn(move |a: Alert, _cx: Context| {
            let log = l3.clone();
            async move {
                log.push(format!("other:{}", a.subject));
                HandlerOutcome::Accepted
            }
        }))
        .build()
        .expect("valid receiver")
}

fn setup() -> (Receiver<Alert>, Log, Arc<AtomicBool>) {
    let log = Log::default();
    let fail = Arc::new(AtomicBool::new(false));
    (alert_receiver(config(), &log, &fail), log, fail)
}

#[tokio::test]
async fn accepted_single_object_reaches_routed_handler() {
    let (rx, log, _) = setup();
    let req = signed(
        "msg_1",
        "application/json",
        alert_json("Login Failure", "john"),
    );
    let res = rx.oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(log.take(), vec!["login:john:Some(\"msg_1\")"]);
}

#[tokio::test]
async fn auth_failure_is_401_without_echoing_the_signature() {
    let (rx, log, _) = setup();
    let mut req = signed(
        "msg_1",
        "application/json",
        alert_json("Login Failure", "x"),
    );
    req.headers_mut().insert(
        "webhook-signature",
        "v1,AAAAsecretish".parse().expect("header"),
    );
    let (status, body) = body_json(rx.clone().oneshot(req).await.expect("infallible")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized");
    assert!(!body.to_string().contains("AAAAsecretish"));

    let req = Request::post("/hook")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(alert_json("Login Failure", "x"))))
        .expect("request");
    let (status, body) = body_json(rx.oneshot(req).await.expect("infallible")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "credentials or signature missing");
    assert!(log.take().is_empty());
}

#[tokio::test]
async fn a_duplicate_is_answered_200_but_accepted_again_after_a_handler_failure() {
    let (rx, log, fail) = setup();
    let body = alert_json("Critical Problems Found", "CVE-2021-44228");
    fail.store(true, Ordering::SeqCst);
    let res = rx
        .clone()
        .oneshot(signed("msg_r", "application/json", body.clone()))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // The failed delivery was not recorded: the retry is accepted.
    fail.store(false, Ordering::SeqCst);
    let res = rx
        .clone()
        .oneshot(signed("msg_r", "application/json", body.clone()))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    // Now it is a duplicate: answered 200, not handled again.
    let (status, json) = body_json(
        rx.oneshot(signed("msg_r", "application/json", body))
            .await
            .expect("infallible"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["status"], "duplicate");
    assert_eq!(log.take(), vec!["critical:CVE-2021-44228"]);
}

#[tokio::test]
async fn failing_handler_in_a_batch_answers_500_and_acknowledges_nothing() {
    let (rx, log, fail) = setup();
    let batch = format!(
        "[{},{},{}]",
        alert_json("Login Failure", "a"),
        alert_json("Critical Problems Found", "b"),
        alert_json("Asset Ports", "c")
    );
    fail.store(true, Ordering::SeqCst);
    let (status, json) = body_json(
        rx.clone()
            .oneshot(signed("msg_b", "application/json", batch.clone()))
            .await
            .expect("infallible"),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(json["error"], "handler_failed");
    assert!(!json.to_string().contains("database"), "reason is not sent");
    // The batch stopped at the failing item; the id was not recorded.
    assert_eq!(log.take(), vec!["login:a:Some(\"msg_b\")"]);
    fail.store(false, Ordering::SeqCst);
    let res = rx
        .oneshot(signed("msg_b", "application/json", batch))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        log.take(),
        vec!["login:a:Some(\"msg_b\")", "critical:b", "other:Asset Ports"]
    );
}

#[tokio::test]
async fn mixed_ndjson_batch_is_routed_to_different_handlers() {
    let (rx, log, _) = setup();
    let nd = format!(
        "{}\n{}\r\n\n{}\n",
        alert_json("Asset Ports", "443"),
        alert_json("Login Failure", "jane"),
        alert_json("Critical Problems Found", "cve")
    );
    let res = rx
        .oneshot(signed("msg_nd", "application/x-ndjson", nd))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        log.take(),
        vec![
            "other:Asset Ports",
            "login:jane:Some(\"msg_nd\")",
            "critical:cve"
        ]
    );
}

#[tokio::test]
async fn cloudevents_media_types_are_accepted() {
    let (rx, log, _) = setup();
    let res = rx
        .clone()
        .oneshot(signed(
            "ce1",
            "application/cloudevents+json",
            alert_json("Asset Ports", "1"),
        ))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    let res = rx
        .oneshot(signed(
            "ce2",
            "application/cloudevents-batch+json",
            format!("[{}]", alert_json("Asset Ports", "2")),
        ))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(log.take(), vec!["other:Asset Ports", "other:Asset Ports"]);
}

#[tokio::test]
async fn malformed_ndjson_line_is_400_naming_the_line() {
    let (rx, log, _) = setup();
    let nd = format!(
        "{}\n{}\n{{\"subject\": \"x\", \"body\": oops}}\n",
        alert_json("Asset Ports", "1"),
        alert_json("Asset Ports", "2")
    );
    let (status, json) = body_json(
        rx.oneshot(signed("msg_bad", "application/x-ndjson", nd))
            .await
            .expect("infallible"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["error"], "malformed");
    let detail = json["detail"].as_str().expect("detail");
    assert!(detail.contains("NDJSON line 3"), "{detail}");
    assert!(
        log.take().is_empty(),
        "nothing handled before decoding succeeds"
    );
}

#[tokio::test]
async fn malformed_json_names_line_and_column() {
    let (rx, _, _) = setup();
    let (status, json) = body_json(
        rx.oneshot(signed("m", "application/json", "{\n  \"subject\": ,\n}"))
            .await
            .expect("infallible"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json["detail"]
            .as_str()
            .expect("detail")
            .contains("line 2 column 14"),
        "{json}"
    );
}

#[tokio::test]
async fn wrong_shape_is_422() {
    let (rx, _, _) = setup();
    let (status, json) = body_json(
        rx.oneshot(signed(
            "m",
            "application/json",
            r#"{"title": "no subject"}"#,
        ))
        .await
        .expect("infallible"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json["error"], "unprocessable");
    assert!(
        json["detail"]
            .as_str()
            .expect("detail")
            .contains("missing field")
    );
}

#[tokio::test]
async fn method_not_allowed_is_405_with_allow() {
    let (rx, _, _) = setup();
    let req = Request::put("/hook")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let res = rx.oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "POST");
}

#[tokio::test]
async fn unsupported_media_type_and_encoding_are_415() {
    let (rx, _, _) = setup();
    let (status, json) = body_json(
        rx.clone()
            .oneshot(signed("m", "text/plain", "hello"))
            .await
            .expect("infallible"),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(json["error"], "unsupported_media_type");

    let mut req = signed("m", "application/json", alert_json("a", "b"));
    req.headers_mut()
        .insert("content-encoding", "br".parse().expect("header"));
    let (status, json) = body_json(rx.clone().oneshot(req).await.expect("infallible")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(json["error"], "unsupported_encoding");

    // A body without Content-Type.
    let mut req = signed("m", "application/json", alert_json("a", "b"));
    req.headers_mut().remove("content-type");
    let res = rx.oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn overloaded_handler_is_429_with_retry_after() {
    let (rx, _, _) = setup();
    let res = rx
        .clone()
        .oneshot(signed(
            "m429",
            "application/json",
            alert_json("Overload", "x"),
        ))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "2");
    // Not acknowledged: the retry is not a replay.
    let res = rx
        .oneshot(signed(
            "m429",
            "application/json",
            alert_json("Overload", "x"),
        ))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2_encoder();
    e.write_all(data).expect("in-memory write");
    e.finish().expect("in-memory finish")
}

fn flate2_encoder() -> flate2::write::GzEncoder<Vec<u8>> {
    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best())
}

#[tokio::test]
async fn gzip_body_is_decoded_and_signature_covers_the_bytes_as_received() {
    let (rx, log, _) = setup();
    let z = gzip(alert_json("Login Failure", "zipped").as_bytes());
    let mut req = signed("mz", "application/json", z);
    req.headers_mut()
        .insert("content-encoding", "gzip".parse().expect("header"));
    let res = rx.oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(log.take(), vec!["login:zipped:Some(\"mz\")"]);
}

#[tokio::test]
async fn gzip_bomb_is_413() {
    let (rx, log, _) = setup();
    let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024, "compressed to {} bytes", bomb.len());
    let mut req = signed("mbomb", "application/json", bomb);
    req.headers_mut()
        .insert("content-encoding", "gzip".parse().expect("header"));
    let (status, json) = body_json(rx.oneshot(req).await.expect("infallible")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        json["detail"]
            .as_str()
            .expect("detail")
            .contains("decompressed body larger than 1048576"),
        "{json}"
    );
    assert!(log.take().is_empty());
}

#[tokio::test]
async fn gzip_disabled_is_415() {
    let log = Log::default();
    let fail = Arc::new(AtomicBool::new(false));
    let cfg = ReceiverConfig::builder()
        .verify(verifier())
        .gzip(false)
        .build()
        .expect("config");
    let rx = alert_receiver(cfg, &log, &fail);
    let mut req = signed("m", "application/json", gzip(b"{}"));
    req.headers_mut()
        .insert("content-encoding", "gzip".parse().expect("header"));
    let res = rx.oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

/// A body yielding `total` bytes in 64 KiB frames, counting what was pulled, whose size hint
/// claims `claimed` bytes (a lying or missing Content-Length).
struct CountingBody {
    remaining: usize,
    pulled: Arc<AtomicUsize>,
    claimed: Option<u64>,
}

impl http_body::Body for CountingBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(64 * 1024);
        self.remaining -= n;
        self.pulled.fetch_add(n, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b' '; n])))))
    }

    fn size_hint(&self) -> SizeHint {
        match self.claimed {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[tokio::test]
async fn lying_or_missing_content_length_is_still_bounded() {
    let (rx, _, _) = setup();
    for claimed in [Some(10), None] {
        let pulled = Arc::new(AtomicUsize::new(0));
        let body = CountingBody {
            remaining: 64 * 1024 * 1024,
            pulled: Arc::clone(&pulled),
            claimed,
        };
        let mut req = Request::post("/hook")
            .header("content-type", "application/json")
            .body(body)
            .expect("request");
        if claimed.is_some() {
            req.headers_mut()
                .insert("content-length", "10".parse().expect("header"));
        }
        let res = rx.clone().oneshot(req).await.expect("infallible");
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let pulled = pulled.load(Ordering::SeqCst);
        assert!(
            pulled <= 1024 * 1024 + 64 * 1024,
            "pulled {pulled} bytes of 64 MiB"
        );
    }
}

#[tokio::test]
async fn declared_content_length_above_limit_is_refused_without_reading() {
    let (rx, _, _) = setup();
    let pulled = Arc::new(AtomicUsize::new(0));
    let body = CountingBody {
        remaining: 2 * 1024 * 1024,
        pulled: Arc::clone(&pulled),
        claimed: None,
    };
    let req = Request::post("/hook")
        .header("content-type", "application/json")
        .header("content-length", (2 * 1024 * 1024).to_string())
        .body(body)
        .expect("request");
    let res = rx.oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(pulled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn large_limit_accepts_large_bodies() {
    let log = Log::default();
    let fail = Arc::new(AtomicBool::new(false));
    let cfg = ReceiverConfig::builder()
        .verify(verifier())
        .body_limit(32 * 1024 * 1024)
        .build()
        .expect("config");
    let rx = alert_receiver(cfg, &log, &fail);
    let big = "x".repeat(20 * 1024 * 1024);
    let res = rx
        .oneshot(signed(
            "big",
            "application/json",
            alert_json("Asset Ports", &big),
        ))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
}

/// Safous-style decision call-out: a GET without a body, Basic-like identity in headers.
#[tokio::test]
async fn get_call_out_answers_a_json_decision() {
    let cfg = ReceiverConfig::builder()
        .auth(ReceiverAuth::None)
        .methods([Method::GET, Method::POST])
        .build()
        .expect("config");
    let rx: Receiver<Option<serde_json::Value>> = Receiver::builder(cfg)
        .fallback(handler_fn(
            |_payload: Option<serde_json::Value>, cx: Context| async move {
                let user = cx
                    .headers()
                    .get("x-safous-user")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let decision = if user == "alice" { "allow" } else { "deny" };
                HandlerOutcome::json(&serde_json::json!({ "decision": decision }))
            },
        ))
        .build()
        .expect("receiver");
    for (user, want) in [("alice", "allow"), ("mallory", "deny")] {
        let req = Request::get("/decide?app=crm")
            .header("x-safous-user", user)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let res = rx.clone().oneshot(req).await.expect("infallible");
        assert_eq!(res.headers()["content-type"], "application/json");
        let (status, json) = body_json(res).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["decision"], want);
    }
}

#[tokio::test]
async fn verify_layer_passes_decoded_request_and_records_only_on_success() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let inner = tower::service_fn(move |req: Request<Bytes>| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            let auth = req
                .extensions()
                .get::<Authenticated>()
                .expect("authenticated extension");
            assert!(matches!(
                auth.identity(),
                Identity::Signature { key_index: 0, .. }
            ));
            assert_eq!(auth.message_id(), Some("mv"));
            let status = if n == 0 {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::ACCEPTED
            };
            let mut res = http::Response::new(Full::new(req.into_body()));
            *res.status_mut() = status;
            Ok::<_, Infallible>(res)
        }
    });
    let svc = tower::ServiceBuilder::new()
        .layer(VerifyLayer::new(config()))
        .service(inner);
    let body = alert_json("Login Failure", "v");
    let send = |svc: webhook_receiver::tower::Verify<_>| {
        svc.oneshot(signed("mv", "application/json", body.clone()))
    };
    assert_eq!(
        send(svc.clone()).await.expect("ok").status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        send(svc.clone()).await.expect("ok").status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        send(svc.clone()).await.expect("ok").status(),
        StatusCode::OK
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let mut bad = signed("mv2", "application/json", body.clone());
    bad.headers_mut().remove("webhook-signature");
    assert_eq!(
        svc.oneshot(bad).await.expect("ok").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn signed_body_decoded_verifies_the_decompressed_bytes() {
    let log = Log::default();
    let fail = Arc::new(AtomicBool::new(false));
    let cfg = ReceiverConfig::builder()
        .verify(verifier())
        .signed_body(webhook_receiver::SignedBody::Decoded)
        .build()
        .expect("config");
    let rx = alert_receiver(cfg, &log, &fail);
    let plain = alert_json("Login Failure", "signed-plain");
    // Signed over the plain bytes, sent compressed.
    let req = signed("md", "application/json", plain.clone());
    let (parts, _) = req.into_parts();
    let mut req = Request::from_parts(parts, Full::new(Bytes::from(gzip(plain.as_bytes()))));
    req.headers_mut()
        .insert("content-encoding", "gzip".parse().expect("header"));
    let res = rx.clone().oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(log.take(), vec!["login:signed-plain:Some(\"md\")"]);

    // Signed over the compressed bytes: refused in this mode.
    let mut req = signed("md2", "application/json", gzip(plain.as_bytes()));
    req.headers_mut()
        .insert("content-encoding", "gzip".parse().expect("header"));
    let res = rx.oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn raw_body_hands_the_verified_batch_to_one_borrowing_handler() {
    const FIXTURE: &str =
        include_str!("../../../fixtures/sysdig/elastic-integrations-test-sysdig.ndjson");
    let seen = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&seen);
    let receiver = Receiver::with_decoder(config(), webhook_receiver::RawBody)
        .fallback(handler_fn(move |body: Bytes, cx: Context| {
            let s = Arc::clone(&s);
            async move {
                // The handler gets the request's own bytes (shared, not copied) and parses
                // them with the borrowing typed parser.
                assert_eq!(body.as_ptr(), cx.body().as_ptr());
                match webhook_payloads::sysdig::parse_ndjson(&body) {
                    Ok(events) => {
                        s.fetch_add(events.len(), Ordering::SeqCst);
                        HandlerOutcome::Accepted
                    }
                    Err(e) => HandlerOutcome::failed(e.to_string()),
                }
            }
        }))
        .build()
        .expect("receiver");
    let res = receiver
        .clone()
        .oneshot(signed("msg_raw", "application/x-ndjson", FIXTURE))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(seen.load(Ordering::SeqCst), FIXTURE.lines().count());
    // A body the handler cannot parse fails the request (the sender retries it).
    let res = receiver
        .oneshot(signed("msg_raw_bad", "application/x-ndjson", "{\"id\":\n"))
        .await
        .expect("infallible");
    assert!(res.status().is_server_error());
}
