//! The axum extractor, through an axum `Router`.

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::ServiceExt;
use webhook_receiver::ReceiverConfig;
use webhook_receiver::axum::Webhook;

use crate::common::{Alert, alert_json, body_json, signed, verifier};

async fn handle(hook: Webhook<Alert>) -> (StatusCode, String) {
    let subjects: Vec<_> = hook.items.iter().map(|a| a.subject.clone()).collect();
    let id = hook.context.message_id().unwrap_or_default().to_owned();
    hook.acknowledge();
    (StatusCode::OK, format!("{id}:{}", subjects.join(",")))
}

fn app() -> Router {
    let config = ReceiverConfig::builder()
        .verify(verifier())
        .build()
        .expect("config");
    Router::new()
        .route("/hook", post(handle))
        .with_state(config)
}

fn to_axum(req: Request<Full<Bytes>>) -> Request<axum::body::Body> {
    req.map(axum::body::Body::new)
}

#[tokio::test]
async fn extractor_verifies_then_deserializes() {
    let app = app();
    let batch = format!(
        "[{},{}]",
        alert_json("Login Failure", "a"),
        alert_json("Asset Ports", "b")
    );
    let res = app
        .clone()
        .oneshot(to_axum(signed("ax1", "application/json", batch.clone())))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], b"ax1:Login Failure,Asset Ports");

    // Acknowledged: sent again, the extractor answers 200 as a duplicate; the handler does not
    // run.
    let res = app
        .oneshot(to_axum(signed("ax1", "application/json", batch)))
        .await
        .expect("infallible");
    let (status, json) = body_json(res).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["status"], "duplicate");
}

#[tokio::test]
async fn extractor_rejections_are_responses() {
    let app = app();
    let mut bad = signed("ax2", "application/json", alert_json("a", "b"));
    bad.headers_mut()
        .insert("webhook-signature", "v1,Zm9v".parse().expect("header"));
    let (status, json) = body_json(app.clone().oneshot(to_axum(bad)).await.expect("ok")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"], "unauthorized");

    let big = "x".repeat(2 * 1024 * 1024);
    let res = app
        .clone()
        .oneshot(to_axum(signed(
            "ax3",
            "application/json",
            alert_json("a", &big),
        )))
        .await
        .expect("ok");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let (status, _) = body_json(
        app.oneshot(to_axum(signed("ax4", "application/json", r#"{"x":1}"#)))
            .await
            .expect("ok"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn extractor_with_a_family_decoder_names_subjects() {
    use webhook_payloads::sysdig::SysdigEvent;
    use webhook_receiver::SysdigDecoder;

    async fn sysdig(hook: Webhook<SysdigEvent<'static>, SysdigDecoder>) -> String {
        let types: Vec<String> = hook
            .items
            .iter()
            .filter_map(|e| hook.subject(e).map(|s| s.into_owned()))
            .collect();
        hook.acknowledge();
        types.join(",")
    }
    let config = ReceiverConfig::builder()
        .verify(verifier())
        .build()
        .expect("config");
    let app = Router::new()
        .route("/sysdig", post(sysdig))
        .with_state(config);
    let body = "{\"id\":\"a\",\"type\":\"policy\",\"timestamp\":1720031001639981110}\n\
                {\"id\":\"b\",\"type\":\"audittrail\",\"timestamp\":1720031001639981111}\n";
    let req = signed("ax-sysdig", "application/x-ndjson", body);
    let (parts, b) = req.into_parts();
    let mut req = Request::from_parts(parts, b);
    *req.uri_mut() = "/sysdig".parse().expect("uri");
    let res = app.clone().oneshot(to_axum(req)).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], b"policy,audittrail");

    // A malformed NDJSON line is refused by the extractor with its line number.
    let mut req = signed(
        "ax-sysdig-2",
        "application/x-ndjson",
        "{\"id\":\"a\",\"type\":\"policy\",\"timestamp\":1}\n{oops\n",
    );
    *req.uri_mut() = "/sysdig".parse().expect("uri");
    let (status, json) = body_json(app.oneshot(to_axum(req)).await.expect("ok")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json["detail"]
            .as_str()
            .unwrap_or("")
            .contains("NDJSON line 2"),
        "{json}"
    );
}
