//! Routing with webhook-core's compiled router: wildcards, case-insensitivity, first match,
//! every match, fallback, and the build errors.

use std::time::SystemTime;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use webhook_core::ReceiverAuth;
use webhook_core::RouteError;
use webhook_receiver::{
    Context, HandlerOutcome, Receiver, ReceiverBuildError, ReceiverBuilder, ReceiverConfig,
    handler_fn,
};

use crate::common::Log;

#[derive(Debug, Clone, serde::Deserialize)]
struct Event {
    r#type: String,
}

fn logging(log: &Log, name: &'static str) -> impl webhook_receiver::Handler<Event> {
    let log = log.clone();
    handler_fn(move |e: Event, _cx: Context| {
        let log = log.clone();
        async move {
            log.push(format!("{name}:{}", e.r#type));
            HandlerOutcome::Accepted
        }
    })
}

fn builder(log: &Log) -> ReceiverBuilder<Event> {
    let config = ReceiverConfig::builder()
        .auth(ReceiverAuth::None)
        .build()
        .expect("config");
    Receiver::builder(config)
        .subject(|e: &Event| Some(e.r#type.as_str()))
        .route("policy.*", logging(log, "policies"))
        .route("*.created", logging(log, "creations"))
        .route("Login Failure", logging(log, "logins"))
        .fallback(logging(log, "fallback"))
}

fn ndjson(types: &[&str]) -> Request<Full<Bytes>> {
    let body: String = types
        .iter()
        .map(|t| format!("{{\"type\":\"{t}\"}}\n"))
        .collect();
    Request::post("/hook")
        .header("content-type", "application/x-ndjson")
        .body(Full::new(Bytes::from(body)))
        .expect("request")
}

#[tokio::test]
async fn wildcards_first_match_and_fallback() {
    let log = Log::default();
    let rx = builder(&log).build().expect("receiver");
    let types = [
        "policy.runtime",
        "policy.created",
        "asset.created",
        "Login Failure",
        "login failure",
        "policy",
    ];
    let res = rx.handle_at(ndjson(&types), SystemTime::now()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        log.take(),
        [
            "policies:policy.runtime",
            "policies:policy.created",
            "creations:asset.created",
            "logins:Login Failure",
            "fallback:login failure",
            "fallback:policy",
        ]
    );
}

#[tokio::test]
async fn case_insensitive_routes() {
    let log = Log::default();
    let rx = builder(&log)
        .case_insensitive(true)
        .build()
        .expect("receiver");
    let res = rx
        .handle_at(
            ndjson(&["LOGIN FAILURE", "Policy.Kubernetes"]),
            SystemTime::now(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        log.take(),
        ["logins:LOGIN FAILURE", "policies:Policy.Kubernetes"]
    );
}

#[tokio::test]
async fn match_all_sends_an_item_to_every_matching_route() {
    let log = Log::default();
    let rx = builder(&log)
        .route("*", logging(&log, "audit"))
        .match_all()
        .build()
        .expect("receiver");
    let res = rx
        .handle_at(ndjson(&["policy.created", "other"]), SystemTime::now())
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        log.take(),
        [
            "policies:policy.created",
            "creations:policy.created",
            "audit:policy.created",
            "audit:other",
        ]
    );
}

#[tokio::test]
async fn items_without_subject_go_to_the_fallback() {
    let log = Log::default();
    let config = ReceiverConfig::builder()
        .auth(ReceiverAuth::None)
        .build()
        .expect("config");
    let rx = Receiver::builder(config)
        .route("*", logging(&log, "any"))
        .fallback(logging(&log, "fallback"))
        .build()
        .expect("receiver");
    let res = rx.handle_at(ndjson(&["x"]), SystemTime::now()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        log.take(),
        ["fallback:x"],
        "no subject function, no decoder subject"
    );
}

#[test]
fn route_errors_are_build_errors() {
    let log = Log::default();
    let err = builder(&log)
        .route("", logging(&log, "empty"))
        .build()
        .expect_err("empty pattern");
    assert_eq!(
        err,
        ReceiverBuildError::Route(RouteError::EmptyPattern { index: 3 })
    );
    let err = builder(&log)
        .route("policy.*", logging(&log, "again"))
        .build()
        .expect_err("duplicate");
    assert_eq!(
        err,
        ReceiverBuildError::DuplicateRoute {
            pattern: "policy.*".into()
        }
    );
    let config = ReceiverConfig::builder()
        .auth(ReceiverAuth::None)
        .build()
        .expect("config");
    let err = Receiver::<Event>::builder(config)
        .route("a", logging(&log, "a"))
        .build()
        .expect_err("no fallback");
    assert_eq!(err, ReceiverBuildError::NoFallback);
}
