//! Issue 18: providers' registration handshakes and form bodies, behind the presets that need
//! them. Discord's PING, Slack's `url_verification` and Zoom's `endpoint.url_validation` are
//! answered as each provider documents, only after the signature verified (an unsigned or
//! tampered handshake is `401` and echoes nothing), through `Receiver::handle_at`, the built-in
//! server on a real socket, tower's `VerifyLayer` and the axum extractor; form bodies (Slack slash
//! commands and interactivity, GitHub's form content type) are verified over their raw bytes and
//! decoded.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::Mac;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use webhook_core::ed25519::Ed25519SigningKey;
use webhook_core::{Handshake, KeyRing, Scheme, Signer, Verifier};
use webhook_receiver::{Context, HandlerOutcome, Receiver, ReceiverConfig, Rejection, handler_fn};

use crate::common::Log;

const TS: u64 = 1_700_000_000;
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const ZOOM_SECRET: &str = "zoom-secret-token";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn ring(scheme: &Scheme, texts: &[&str]) -> KeyRing {
    texts.iter().fold(KeyRing::new(), |r, t| {
        r.with_key(scheme.parse_key(t).expect("a key of the scheme"))
    })
}

/// A JSON-value receiver for `scheme` with `keys`, logging what its handler sees.
fn receiver(
    scheme: Scheme,
    keys: &KeyRing,
    handshakes: bool,
    log: &Log,
) -> Receiver<serde_json::Value> {
    let log = log.clone();
    let config = ReceiverConfig::builder()
        .verify(Verifier::new(scheme, keys).expect("keys fit"))
        .handshakes(handshakes)
        .build()
        .expect("config");
    Receiver::builder(config)
        .fallback(handler_fn(move |v: serde_json::Value, _cx: Context| {
            let log = log.clone();
            async move {
                log.push(v.to_string());
                HandlerOutcome::Accepted
            }
        }))
        .build()
        .expect("receiver")
}

fn request(content_type: &str, headers: &HeaderMap, body: &[u8]) -> Request<Full<Bytes>> {
    let mut req = Request::post("/hook")
        .header("content-type", content_type)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    req.headers_mut().extend(headers.clone());
    req
}

fn signed(scheme: &Scheme, keys: &KeyRing, body: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    Signer::new(scheme.clone(), keys)
        .expect("signing key")
        .sign("", TS, body, &mut h)
        .expect("signs");
    h
}

async fn answer(
    rx: &Receiver<serde_json::Value>,
    req: Request<Full<Bytes>>,
) -> (StatusCode, String, Option<String>) {
    let res = rx.handle_at(req, at(TS + 5)).await;
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ASCII").to_owned());
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8(body.to_vec()).expect("UTF-8"), ct)
}

fn zoom_hmac(secret: &str, text: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(text.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn slack_url_verification_is_answered_with_its_challenge_only_when_signed() {
    let log = Log::default();
    let keys = ring(&Scheme::slack(), &[SLACK_SECRET]);
    let rx = receiver(Scheme::slack(), &keys, true, &log);
    let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let h = signed(&Scheme::slack(), &keys, body);
    let (status, text, ct) = answer(&rx, request("application/json", &h, body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        v,
        serde_json::json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );
    assert!(log.take().is_empty(), "a handshake never reaches handlers");

    // Signed with another secret: 401, and the challenge is not echoed.
    let other = ring(&Scheme::slack(), &["not the signing secret"]);
    let h = signed(&Scheme::slack(), &other, body);
    let (status, text, _) = answer(&rx, request("application/json", &h, body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!text.contains("3eZbrw1"), "{text}");

    // An ordinary event still goes to the handlers.
    let event = br#"{"type":"event_callback","event":{"type":"app_mention"}}"#;
    let h = signed(&Scheme::slack(), &keys, event);
    let (status, _, _) = answer(&rx, request("application/json", &h, event)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(log.take().len(), 1);
}

#[tokio::test]
async fn zoom_url_validation_is_keyed_with_the_key_that_verified() {
    let log = Log::default();
    // Rotation: the old token first, Zoom signs with the new one.
    let keys = ring(&Scheme::zoom(), &["old-token", ZOOM_SECRET]);
    let rx = receiver(Scheme::zoom(), &keys, true, &log);
    let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let zoom = ring(&Scheme::zoom(), &[ZOOM_SECRET]);
    let h = signed(&Scheme::zoom(), &zoom, body);
    let (status, text, _) = answer(&rx, request("application/json; charset=utf-8", &h, body)).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
    assert_eq!(
        v["encryptedToken"],
        zoom_hmac(ZOOM_SECRET, "qgg8vlvZRS6UYooatFL8Aw")
    );
    assert!(log.take().is_empty());

    // Tampered after signing: refused.
    let tampered = String::from_utf8_lossy(body).replace("qgg8", "AAAA");
    let (status, text, _) = answer(&rx, request("application/json", &h, tampered.as_bytes())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!text.contains("encryptedToken"));
}

#[tokio::test]
async fn discord_ping_is_answered_with_a_pong() {
    let log = Log::default();
    let key = Ed25519SigningKey::from_seed([9u8; 32]);
    let public = ring(&Scheme::discord(), &[&key.verifying_key().to_hex()]);
    let rx = receiver(Scheme::discord(), &public, true, &log);
    let body = br#"{"application_id":"1","id":"2","token":"t","type":1,"version":1}"#;
    let h = signed(&Scheme::discord(), &KeyRing::single(key.clone()), body);
    let (status, text, _) = answer(&rx, request("application/json", &h, body)).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, r#"{"type":1}"#));

    // Discord checks that endpoints refuse bad signatures: a PING signed by another key.
    let forger = KeyRing::single(Ed25519SigningKey::from_seed([1u8; 32]));
    let h = signed(&Scheme::discord(), &forger, body);
    let (status, _, _) = answer(&rx, request("application/json", &h, body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // An application command (type 2) goes to the handlers.
    let command = br#"{"type":2,"data":{"name":"hello"}}"#;
    let h = signed(&Scheme::discord(), &KeyRing::single(key), command);
    let (status, _, _) = answer(&rx, request("application/json", &h, command)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(log.take(), [r#"{"data":{"name":"hello"},"type":2}"#]);
}

#[tokio::test]
async fn handshakes_can_be_handed_to_handlers_instead() {
    let log = Log::default();
    let keys = ring(&Scheme::slack(), &[SLACK_SECRET]);
    let rx = receiver(Scheme::slack(), &keys, false, &log);
    let body = br#"{"challenge":"c","type":"url_verification"}"#;
    let h = signed(&Scheme::slack(), &keys, body);
    let (status, text, _) = answer(&rx, request("application/json", &h, body)).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, ""));
    assert_eq!(log.take().len(), 1);
    // Schemes without a handshake never answer one.
    assert_eq!(Scheme::github().handshake(), None);
    assert_eq!(Scheme::stripe().handshake(), None);
    assert_eq!(Scheme::discord().handshake(), Some(Handshake::DiscordPing));
}

#[tokio::test]
async fn the_handshake_answer_carries_its_rejection_for_operators() {
    let log = Log::default();
    let keys = ring(&Scheme::slack(), &[SLACK_SECRET]);
    let rx = receiver(Scheme::slack(), &keys, true, &log);
    let body = br#"{"challenge":"c","type":"url_verification"}"#;
    let res = rx
        .handle_at(
            request(
                "application/json",
                &signed(&Scheme::slack(), &keys, body),
                body,
            ),
            at(TS),
        )
        .await;
    assert!(matches!(
        Rejection::of(&res),
        Some(Rejection::Handshake(r)) if r.handshake() == Handshake::SlackUrlVerification
    ));
}

#[tokio::test]
async fn slack_slash_commands_and_interactivity_forms_are_verified_and_decoded() {
    let log = Log::default();
    let keys = ring(&Scheme::slack(), &[SLACK_SECRET]);
    let rx = receiver(Scheme::slack(), &keys, true, &log);
    let form = b"token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&command=%2Fweather&text=94070&user_name=Steve+Jobs";
    let h = signed(&Scheme::slack(), &keys, form);
    let (status, _, _) = answer(&rx, request("application/x-www-form-urlencoded", &h, form)).await;
    assert_eq!(status, StatusCode::OK);
    let seen: serde_json::Value = serde_json::from_str(&log.take()[0]).expect("JSON");
    assert_eq!(seen["command"], "/weather");
    assert_eq!(seen["user_name"], "Steve Jobs");

    let interactive =
        b"payload=%7B%22type%22%3A%22block_actions%22%2C%22user%22%3A%7B%22id%22%3A%22U1%22%7D%7D";
    let h = signed(&Scheme::slack(), &keys, interactive);
    let (status, _, _) = answer(
        &rx,
        request("application/x-www-form-urlencoded", &h, interactive),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        log.take(),
        [r#"{"type":"block_actions","user":{"id":"U1"}}"#]
    );

    // The signature covers the raw form: one changed byte is 401.
    let (status, _, _) = answer(
        &rx,
        request(
            "application/x-www-form-urlencoded",
            &h,
            &interactive[..interactive.len() - 3],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A signed but malformed form is 400, never a panic.
    let bad = b"text=%zz";
    let h = signed(&Scheme::slack(), &keys, bad);
    let (status, text, _) =
        answer(&rx, request("application/x-www-form-urlencoded", &h, bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(log.take().is_empty());
}

#[tokio::test]
async fn github_form_content_type_is_verified_and_decoded() {
    let log = Log::default();
    let keys = ring(&Scheme::github(), &["It's a Secret to Everybody"]);
    let rx = receiver(Scheme::github(), &keys, true, &log);
    let form = b"payload=%7B%22zen%22%3A%22Keep+it+logically+awesome.%22%2C%22hook_id%22%3A1%7D";
    let h = signed(&Scheme::github(), &keys, form);
    let (status, _, _) = answer(&rx, request("application/x-www-form-urlencoded", &h, form)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        log.take(),
        [r#"{"hook_id":1,"zen":"Keep it logically awesome."}"#]
    );
}

/// Over a real socket: the built-in server answers the Zoom validation.
#[cfg(feature = "server")]
#[tokio::test]
async fn the_server_answers_a_handshake_on_a_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let log = Log::default();
    let keys = ring(&Scheme::zoom(), &[ZOOM_SECRET]);
    let rx = receiver(Scheme::zoom(), &keys, true, &log);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(webhook_receiver::Server::new(rx).serve(listener, async {
        let _ = stopped.await;
    }));
    let body = r#"{"payload":{"plainToken":"abc"},"event":"endpoint.url_validation"}"#;
    let mut h = HeaderMap::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    Signer::new(Scheme::zoom(), &keys)
        .expect("key")
        .sign("", now, body.as_bytes(), &mut h)
        .expect("signs");
    let headers: String = h
        .iter()
        .map(|(k, v)| format!("{k}: {}\r\n", v.to_str().expect("ASCII")))
        .collect();
    let raw = format!(
        "POST /zoom HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{headers}\r\n{body}",
        body.len()
    );
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(raw.as_bytes()).await.expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let expected = format!(r#""encryptedToken":"{}""#, zoom_hmac(ZOOM_SECRET, "abc"));
    assert!(out.contains(&expected), "{out}");
    let _ = stop.send(());
    server.await.expect("join").expect("served");
}

/// tower's `VerifyLayer` answers the handshake itself; the inner service is not called.
#[cfg(feature = "tower")]
#[tokio::test]
async fn the_verify_layer_answers_a_handshake() {
    use tower::{ServiceBuilder, ServiceExt};
    use webhook_receiver::tower::VerifyLayer;
    let keys = ring(&Scheme::slack(), &[SLACK_SECRET]);
    let config = ReceiverConfig::builder()
        .verify(Verifier::new(Scheme::slack(), &keys).expect("keys"))
        .build()
        .expect("config");
    let svc = ServiceBuilder::new()
        .layer(VerifyLayer::new(config))
        .service_fn(|_req: Request<Bytes>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
                b"inner",
            ))))
        });
    let body = br#"{"challenge":"xyz","type":"url_verification"}"#;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let mut h = HeaderMap::new();
    Signer::new(Scheme::slack(), &keys)
        .expect("key")
        .sign("", now, body, &mut h)
        .expect("signs");
    let res = svc
        .oneshot(request("application/json", &h, body))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&text[..], br#"{"challenge":"xyz"}"#);
}

/// The axum extractor answers the handshake as its rejection response.
#[cfg(feature = "axum")]
#[tokio::test]
async fn the_axum_extractor_answers_a_handshake() {
    use axum::routing::post;
    use tower::ServiceExt;
    use webhook_receiver::axum::Webhook;
    async fn handle(hook: Webhook<serde_json::Value>) -> &'static str {
        hook.acknowledge();
        "handler"
    }
    let key = Ed25519SigningKey::from_seed([4u8; 32]);
    let config = ReceiverConfig::builder()
        .verify(
            Verifier::new(Scheme::discord(), &KeyRing::single(key.verifying_key())).expect("key"),
        )
        .build()
        .expect("config");
    let app = axum::Router::new()
        .route("/hook", post(handle))
        .with_state(config);
    let body = br#"{"type":1}"#;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let mut h = HeaderMap::new();
    Signer::new(Scheme::discord(), &KeyRing::single(key))
        .expect("key")
        .sign("", now, body, &mut h)
        .expect("signs");
    let res = app
        .oneshot(request("application/json", &h, body).map(axum::body::Body::new))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&text[..], br#"{"type":1}"#);
}
