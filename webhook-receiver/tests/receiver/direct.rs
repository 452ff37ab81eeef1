//! Tests through `Receiver::handle_at` with an explicit `now` (no integration feature needed).

use std::time::{Duration, UNIX_EPOCH};

use http::StatusCode;
use webhook_receiver::{Context, HandlerOutcome, Identity, Receiver, ReceiverConfig, handler_fn};

use crate::common::{
    Alert, Log, alert_json, body_json, signature_headers, signed_at, verified_config, verifier,
};

const TS: u64 = 1_700_000_000;

fn receiver(log: &Log) -> Receiver<Alert> {
    let log = log.clone();
    Receiver::builder(verified_config())
        .fallback(handler_fn(move |a: Alert, cx: Context| {
            let log = log.clone();
            async move {
                assert!(matches!(
                    cx.identity(),
                    Identity::Signature { key_index: 0, .. }
                ));
                assert_eq!(cx.timestamp(), Some(UNIX_EPOCH + Duration::from_secs(TS)));
                log.push(a.subject);
                HandlerOutcome::Accepted
            }
        }))
        .build()
        .expect("receiver")
}

#[tokio::test]
async fn both_tolerance_edges() {
    let log = Log::default();
    let rx = receiver(&log);
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
    let cases = [
        ("late-ok", TS + 300, StatusCode::OK),
        ("late-bad", TS + 301, StatusCode::UNAUTHORIZED),
        ("early-ok", TS - 300, StatusCode::OK),
        ("early-bad", TS - 301, StatusCode::UNAUTHORIZED),
    ];
    for (id, now, want) in cases {
        let req = signed_at(id, "application/json", alert_json(id, "x"), TS);
        let (status, json) = body_json(rx.handle_at(req, at(now)).await).await;
        assert_eq!(status, want, "{id}");
        if want == StatusCode::UNAUTHORIZED {
            assert_eq!(json["detail"], "timestamp outside the tolerance window");
        }
    }
    assert_eq!(log.take(), vec!["late-ok", "early-ok"]);
}

#[test]
fn signature_headers_are_well_formed() {
    let h = signature_headers("id", b"{}");
    assert!(h.contains("webhook-signature: v1,"));
    assert!(h.ends_with("\r\n"));
}

#[tokio::test]
async fn handle_uses_the_current_time() {
    let rx: Receiver<Alert> = Receiver::builder(
        ReceiverConfig::builder()
            .verify(verifier())
            .build()
            .expect("config"),
    )
    .fallback(handler_fn(|_a: Alert, cx: Context| async move {
        let age = std::time::SystemTime::now()
            .duration_since(cx.received_at())
            .unwrap_or_default();
        if age < Duration::from_secs(60) {
            HandlerOutcome::Accepted
        } else {
            HandlerOutcome::failed("received_at is not now")
        }
    }))
    .build()
    .expect("receiver");
    let req = crate::common::signed("now", "application/json", alert_json("a", "b"));
    assert_eq!(rx.handle(req).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn panicking_handler_is_500_and_the_retry_is_accepted() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&calls);
    let rx: Receiver<Alert> = Receiver::builder(
        ReceiverConfig::builder()
            .verify(verifier())
            .build()
            .expect("config"),
    )
    .fallback(handler_fn(move |_a: Alert, _cx: Context| {
        let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            assert!(n > 0, "first delivery panics");
            HandlerOutcome::Accepted
        }
    }))
    .build()
    .expect("receiver");
    let now = UNIX_EPOCH + Duration::from_secs(TS);
    let send = || signed_at("panic", "application/json", alert_json("a", "b"), TS);
    let (status, json) = body_json(rx.handle_at(send(), now).await).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(json["error"], "handler_failed");
    assert_eq!(rx.handle_at(send(), now).await.status(), StatusCode::OK);
    // Acknowledged: sent again, it is answered 200 as a duplicate and not handled again.
    let (status, json) = body_json(rx.handle_at(send(), now).await).await;
    assert_eq!(
        (status, &json["status"]),
        (StatusCode::OK, &"duplicate".into())
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn invalid_content_length_is_400() {
    let log = Log::default();
    let rx = receiver(&log);
    let mut req = signed_at("cl", "application/json", alert_json("a", "b"), TS);
    req.headers_mut()
        .insert("content-length", "12abc".parse().expect("header"));
    let (status, json) = body_json(
        rx.handle_at(req, UNIX_EPOCH + Duration::from_secs(TS))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["error"], "invalid_content_length");
    assert!(log.take().is_empty());
}
