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

    // Acknowledged: a replay is refused by the extractor's rejection.
    let res = app
        .oneshot(to_axum(signed("ax1", "application/json", batch)))
        .await
        .expect("infallible");
    let (status, json) = body_json(res).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(json["error"], "replayed");
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
