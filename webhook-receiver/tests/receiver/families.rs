//! Payload families end to end over real sockets on 127.0.0.1: the real Sysdig fixture verified
//! with a rotating key ring and routed by event type; ConnectSecure seed-002 alerts (including
//! the invalid `\ ` escape) with a header token, routed by subject; a Safous-style `GET`
//! call-out answered with a `SafousDecision`; one endpoint for every family (`DetectDecoder`).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use webhook_core::Endpoint;
use webhook_core::{
    BasicCredentials, Encoding, Event, HeaderToken, Identity, KeyRing, ReceiverAuth, Scheme,
    Secret, SenderAuth, Verifier,
};
use webhook_payloads::connectsecure::ConnectSecureAlert;
use webhook_payloads::safous::{ConnectionFacts, SafousContext, SafousDecision};
use webhook_payloads::sysdig::SysdigEvent;
use webhook_receiver::{
    ConnectSecureDecoder, Context, HandlerOutcome, Receiver, ReceiverConfig, Server, SysdigDecoder,
    handler_fn,
};

use crate::common::Log;

const FIXTURE: &str =
    include_str!("../../../fixtures/sysdig/elastic-integrations-test-sysdig.ndjson");

/// Serves `receiver` on an ephemeral loopback port until the returned sender fires.
async fn serve<T: Send + 'static>(
    receiver: Receiver<T>,
) -> (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), webhook_receiver::ServeError>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(Server::new(receiver).serve(listener, async {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

/// A tiny HTTP/1.1 client: one request on a fresh connection.
async fn send(addr: SocketAddr, req: Request<Bytes>) -> (StatusCode, Bytes) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let (mut parts, body) = req.into_parts();
    parts
        .headers
        .entry(http::header::HOST)
        .or_insert_with(|| addr.to_string().parse().expect("host"));
    let res = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
        .expect("response");
    let status = res.status();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, body)
}

fn fixture_events() -> Vec<Event> {
    FIXTURE
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("fixture JSON");
            let id = v["id"].as_str().expect("id").to_owned();
            let kind = v["type"].as_str().expect("type").to_owned();
            Event::builder(id, kind)
                .json_bytes(Bytes::copy_from_slice(line.as_bytes()))
                .expect("one-line JSON")
        })
        .collect()
}

fn sysdig_logger(
    log: &Log,
    name: &'static str,
) -> impl webhook_receiver::Handler<SysdigEvent<'static>> {
    let log = log.clone();
    handler_fn(move |e: SysdigEvent<'static>, cx: Context| {
        let log = log.clone();
        async move {
            let key = match cx.identity() {
                Identity::Signature { key_index, .. } => *key_index,
                _ => return HandlerOutcome::failed("not signature-authenticated"),
            };
            if cx.remote_addr().map(|a| a.ip().is_loopback()) != Some(true) {
                return HandlerOutcome::failed("remote address not recorded");
            }
            log.push(format!(
                "{name}:{}:{}:key{key}",
                e.event_type().unwrap_or("?"),
                e.id().unwrap_or("?")
            ));
            HandlerOutcome::Accepted
        }
    })
}

#[tokio::test]
async fn sysdig_fixture_verified_with_a_rotating_key_ring_and_routed_by_type() {
    let now = SystemTime::now();
    let new = Secret::from_bytes("sysdig new key 2026").expect("new");
    let current_old = Secret::from_bytes("sysdig old key 2025").expect("old");
    let retired = Secret::from_bytes("sysdig retired key 2024").expect("retired");
    let ring = KeyRing::new()
        .with_key(new.clone())
        .with_key_until(current_old.clone(), now + Duration::from_secs(3600))
        .with_key_until(retired.clone(), now - Duration::from_secs(1));
    let config = ReceiverConfig::builder()
        .verify(Verifier::new(Scheme::standard_webhooks(), &ring).expect("verifier"))
        .build()
        .expect("config");
    let log = Log::default();
    let rx = Receiver::with_decoder(config, SysdigDecoder)
        .route("policy", sysdig_logger(&log, "policies"))
        .route("audittrail", sysdig_logger(&log, "audit"))
        .route("*access", sysdig_logger(&log, "files"))
        .fallback(sysdig_logger(&log, "activity"))
        .build()
        .expect("receiver");
    let (addr, stop, server) = serve(rx).await;

    let endpoint = |key: Secret, encoding: Encoding| {
        Endpoint::builder(format!("http://{addr}/hook"))
            .auth(
                SenderAuth::signature_with(Scheme::standard_webhooks(), &KeyRing::single(key))
                    .expect("signer"),
            )
            .encoding(encoding)
            .build()
            .expect("endpoint")
    };
    let events = fixture_events();

    // Sysdig still signs with the old key (accepted until its expiry), as NDJSON.
    let ep = endpoint(current_old, Encoding::Ndjson);
    let body = ep.encode(&events).expect("encode");
    let (status, _) = send(addr, ep.request("batch_1", &body, now).expect("req")).await;
    assert_eq!(status, StatusCode::OK);
    let seen = log.take();
    assert_eq!(seen.len(), 8, "{seen:?}");
    assert_eq!(
        seen.iter()
            .filter(|s| s.starts_with("policies:policy:"))
            .count(),
        3
    );
    assert!(seen.iter().all(|s| s.ends_with(":key1")), "{seen:?}");
    assert!(seen.iter().any(|s| s.starts_with("audit:audittrail:")));
    assert!(seen.iter().any(|s| s.starts_with("files:fileaccess:")));
    assert!(seen.iter().any(|s| s.starts_with("activity:command:")));
    assert!(seen.iter().any(|s| s.starts_with("activity:connection:")));
    assert!(
        seen.contains(&"policies:policy:17dec715376910362c8c3f62a4ceda2e:key1".to_owned()),
        "{seen:?}"
    );

    // After rotation: the new key, as a JSON array (Sysdig's default).
    let ep = endpoint(new, Encoding::JsonArray);
    let body = ep.encode(&events).expect("encode");
    let (status, _) = send(addr, ep.request("batch_2", &body, now).expect("req")).await;
    assert_eq!(status, StatusCode::OK);
    let seen = log.take();
    assert_eq!(seen.len(), 8);
    assert!(seen.iter().all(|s| s.ends_with(":key0")), "{seen:?}");

    // The same batch again: a duplicate, answered 200 and not handled again.
    let (status, body) = send(addr, ep.request("batch_2", &body, now).expect("req")).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert!(log.take().is_empty());

    // The retired key is refused.
    let ep = endpoint(retired, Encoding::Ndjson);
    let body = ep.encode(&events).expect("encode");
    let (status, _) = send(addr, ep.request("batch_3", &body, now).expect("req")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(log.take().is_empty());

    let _ = stop.send(());
    server.await.expect("join").expect("clean shutdown");
}

/// The four example alerts of ConnectSecure's payload guide (seed 002), as documented; the
/// third contains `\ `, an invalid JSON escape.
const SEED_002: [&str; 4] = [
    r#"{
"subject": "New Asset(s) Added",
"body": "New asset added with ip 192.168.1.100. Hostname server-01.example.com. Mac address 00:1B:44:11:3A:B7"
}"#,
    r#"{
"subject": "Asset Ports",
"body": "Open Port 443 Discovered for Asset 192.168.1.100, hostname server-01.example.com"
}"#,
    r#"{
"subject": "Critical Problems Found",
"body": "Critical vulnerabilities detected for asset with IP 192.168.1.100, hostname server-01.example.com in company Acme Corporation\ Product: Apache HTTP Server. VUL ID: CVE-2021-44228. Severity: Critical"
}"#,
    r#"{
"subject": "Login Failure",
"body": "Login Failure for john.doe With IPAddress 203.0.113.10 on service AzureAD at 2024-01-15 10:30:00 UTC"
}"#,
];

fn alert_logger(
    log: &Log,
    name: &'static str,
) -> impl webhook_receiver::Handler<ConnectSecureAlert> {
    let log = log.clone();
    handler_fn(move |a: ConnectSecureAlert, cx: Context| {
        let log = log.clone();
        async move {
            if !matches!(cx.identity(), Identity::HeaderToken { .. }) {
                return HandlerOutcome::failed("not token-authenticated");
            }
            let f = a.facts();
            let fact = match name {
                "assets" => f.mac.map(|m| m.to_string()),
                "ports" => f.port.map(|p| p.to_string()),
                "critical" => f
                    .cve_ids
                    .first()
                    .cloned()
                    .zip(f.product)
                    .map(|(c, p)| format!("{c}/{p}")),
                _ => f.user_name,
            };
            log.push(format!("{name}:{}", fact.unwrap_or_default()));
            HandlerOutcome::Accepted
        }
    })
}

#[tokio::test]
async fn connectsecure_seed_alerts_routed_by_subject_with_a_header_token() {
    let token = HeaderToken::new("X-CS-Webhook-Key", "cs-4f1c9a7e-shared").expect("token");
    let config = ReceiverConfig::builder()
        .header_token(token.clone())
        .build()
        .expect("config");
    let log = Log::default();
    let rx = Receiver::with_decoder(config, ConnectSecureDecoder)
        .case_insensitive(true)
        .route("New Asset(s) Added", alert_logger(&log, "assets"))
        .route("Asset Ports", alert_logger(&log, "ports"))
        .route("Critical *", alert_logger(&log, "critical"))
        .route("Login Failure", alert_logger(&log, "logins"))
        .fallback(alert_logger(&log, "other"))
        .build()
        .expect("receiver");
    let (addr, stop, server) = serve(rx).await;

    let request = |body: &str, auth: &SenderAuth| {
        let mut req = Request::post(format!("http://{addr}/webhooks/connectsecure"))
            .header("content-type", "application/json")
            .body(Bytes::copy_from_slice(body.as_bytes()))
            .expect("request");
        auth.apply("", 0, body.as_bytes(), req.headers_mut())
            .expect("auth");
        req
    };
    let auth = SenderAuth::HeaderToken(token);
    for body in SEED_002 {
        let (status, res) = send(addr, request(body, &auth)).await;
        assert_eq!(status, StatusCode::OK, "{body}: {res:?}");
    }
    assert_eq!(
        log.take(),
        [
            "assets:00:1B:44:11:3A:B7",
            "ports:443",
            "critical:CVE-2021-44228/Apache HTTP Server",
            "logins:john.doe",
        ]
    );

    // A tolerant subject ("new assets added") still reaches the documented route.
    let body = r#"{"subject":"new  ASSETS added","body":"Mac address 00:1B:44:11:3A:B8"}"#;
    assert_eq!(send(addr, request(body, &auth)).await.0, StatusCode::OK);
    assert_eq!(log.take(), ["assets:00:1B:44:11:3A:B8"]);

    // Wrong or missing token: 401, nothing handled.
    let wrong =
        SenderAuth::HeaderToken(HeaderToken::new("X-CS-Webhook-Key", "cs-guess").expect("token"));
    let (status, res) = send(addr, request(SEED_002[0], &wrong)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!String::from_utf8_lossy(&res).contains("cs-guess"));
    assert_eq!(
        send(addr, request(SEED_002[0], &SenderAuth::None)).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Still malformed after the escape repair: 400 naming the position.
    let (status, res) = send(addr, request("{\"subject\": \"x\\ y\",\n oops}", &auth)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8_lossy(&res).contains("malformed body at line 1 column 16"),
        "{res:?}"
    );
    assert!(log.take().is_empty());

    let _ = stop.send(());
    server.await.expect("join").expect("clean shutdown");
}

#[tokio::test]
async fn safous_get_call_out_is_answered_with_a_decision() {
    let creds = BasicCredentials::new("safous", "ztna-callout-pw").expect("basic");
    let config = ReceiverConfig::builder()
        .auth(ReceiverAuth::Basic(creds.clone()))
        .methods([Method::GET])
        .build()
        .expect("config");
    let rx = Receiver::builder(config)
        .fallback(handler_fn(|_none: (), cx: Context| async move {
            let header = |n: &str| cx.headers().get(n).and_then(|v| v.to_str().ok());
            let decision = match (header("x-safous-user"), header("x-safous-groups")) {
                (Some(_), Some(groups)) if groups.split(',').any(|g| g == "Admins") => {
                    SafousDecision::allow()
                }
                (Some(user), _) => SafousDecision::deny(format!("{user} is not an admin")),
                _ => SafousDecision::deny("no user"),
            };
            HandlerOutcome::json(&decision)
        }))
        .build()
        .expect("receiver");
    let (addr, stop, server) = serve(rx).await;

    // What Safous does: render the rule's header templates from the client's access request.
    let call_out = |user: &str, groups: &[&str]| {
        let client = Request::get("https://intranet.example.internal/")
            .header("user-agent", "Mozilla/5.0")
            .body(())
            .expect("client request");
        let facts = ConnectionFacts::new("198.51.100.7".parse().expect("ip"))
            .username(user)
            .group_names(groups.iter().copied());
        let cx = SafousContext::from_request(&client, facts);
        // Safous templates the call-out's headers from its parameters: the core's header
        // templates do that (and refuse values that would inject CR/LF).
        let render = |template: &str| {
            webhook_core::Template::build(webhook_core::TemplateContext::Header, template)
                .expect("template")
                .render(&cx)
                .expect("rendered")
        };
        let mut req = Request::get(format!("http://{addr}/safous/decide"))
            .header("x-safous-user", render("%username%"))
            .header("x-safous-groups", render("%group_names%"))
            .header("x-safous-ip", render("%remote_ip%"))
            .body(Bytes::new())
            .expect("call-out");
        let mut auth = HeaderMap::new();
        SenderAuth::Basic(creds.clone())
            .apply("", 0, b"", &mut auth)
            .expect("basic");
        req.headers_mut().extend(auth);
        req
    };
    let (status, body) = send(addr, call_out("alice", &["Admins", "Ops"])).await;
    assert_eq!(status, StatusCode::OK);
    let d: SafousDecision = serde_json::from_slice(&body).expect("decision JSON");
    assert_eq!(d, SafousDecision::allow());
    let (status, body) = send(addr, call_out("bob", &["Ops"])).await;
    assert_eq!(status, StatusCode::OK);
    let d: SafousDecision = serde_json::from_slice(&body).expect("decision JSON");
    assert_eq!(d, SafousDecision::deny("bob is not an admin"));

    // POST is not part of this call-out endpoint; no credentials is 401.
    let mut post = call_out("alice", &["Admins"]);
    *post.method_mut() = Method::POST;
    assert_eq!(send(addr, post).await.0, StatusCode::METHOD_NOT_ALLOWED);
    let mut anon = call_out("alice", &["Admins"]);
    anon.headers_mut().remove("authorization");
    assert_eq!(send(addr, anon).await.0, StatusCode::UNAUTHORIZED);

    let _ = stop.send(());
    server.await.expect("join").expect("clean shutdown");
}

/// One endpoint for every family: a signed JSON array mixing the real Sysdig events, a
/// ConnectSecure alert and a Soveren event, each record recognized on its own and routed by
/// `family.kind`; a record of the wrong shape refuses the whole batch with 422 and nothing is
/// handled.
#[tokio::test]
async fn detect_decoder_routes_a_mixed_batch_by_family_and_kind() {
    use webhook_payloads::Payload;
    use webhook_receiver::{Decode, DetectDecoder};

    let now = SystemTime::now();
    let ring = KeyRing::single(Secret::from_bytes("one key for every integration").expect("key"));
    let config = ReceiverConfig::builder()
        .verify(Verifier::new(Scheme::standard_webhooks(), &ring).expect("verifier"))
        .build()
        .expect("config");
    let log = Log::default();
    let logger = |name: &'static str| {
        let log = log.clone();
        handler_fn(move |item: Payload<'static>, cx: Context| {
            let log = log.clone();
            async move {
                let subject = DetectDecoder
                    .subject(&item)
                    .map(std::borrow::Cow::into_owned)
                    .unwrap_or_default();
                assert!(cx.message_id().is_some());
                log.push(format!("{name}:{subject}"));
                HandlerOutcome::Accepted
            }
        })
    };
    let rx = Receiver::with_decoder(config, DetectDecoder)
        .route("sysdig.policy", logger("policies"))
        .route("sysdig.*", logger("sysdig"))
        .route("connectsecure.*", logger("alerts"))
        .route("soveren.*", logger("privacy"))
        .fallback(logger("other"))
        .build()
        .expect("receiver");
    let (addr, stop, server) = serve(rx).await;

    let mut events = fixture_events();
    let alert = ConnectSecureAlert::new(
        "Login Failure",
        "Login Failure for john.doe With IPAddress 203.0.113.10 on service AzureAD",
    );
    events.push(Event::builder("cs-1", "alert").json(&alert).expect("alert"));
    events.push(
        Event::builder("sv-1", "soveren")
            .json_bytes(Bytes::from_static(
                br#"{"title":"New data type detected","sensitivity":"Medium","category":"new_data_types","event_type":"new_data_type","event_link":"https://app.soveren.io/events/1b2c"}"#,
            ))
            .expect("soveren"),
    );
    events.push(
        Event::builder("x-1", "x")
            .json_bytes(Bytes::from_static(br#"{"something":"else"}"#))
            .expect("other"),
    );
    let ep = Endpoint::builder(format!("http://{addr}/hooks"))
        .auth(SenderAuth::signature_with(Scheme::standard_webhooks(), &ring).expect("signer"))
        .encoding(Encoding::JsonArray)
        .build()
        .expect("endpoint");
    let body = ep.encode(&events).expect("encode");
    let (status, answer) = send(addr, ep.request("mixed_1", &body, now).expect("req")).await;
    assert_eq!(status, StatusCode::OK, "{answer:?}");
    let seen = log.take();
    assert_eq!(seen.len(), 11, "{seen:?}");
    assert_eq!(
        seen.iter()
            .filter(|s| *s == "policies:sysdig.policy")
            .count(),
        3
    );
    for expected in [
        "sysdig:sysdig.audittrail",
        "sysdig:sysdig.command",
        "sysdig:sysdig.kubernetes",
        "alerts:connectsecure.Login Failure",
        "privacy:soveren.new_data_type",
        "other:json",
    ] {
        assert!(
            seen.iter().any(|s| s == expected),
            "{expected} not in {seen:?}"
        );
    }

    // A Sysdig record whose timestamp is text: the batch is refused, nothing handled.
    let bad = vec![
        Event::builder("cs-2", "alert").json(&alert).expect("alert"),
        Event::builder("bad", "policy")
            .json_bytes(Bytes::from_static(
                br#"{"id":"bad","type":"policy","timestamp":"yesterday"}"#,
            ))
            .expect("bad"),
    ];
    let body = ep.encode(&bad).expect("encode");
    let (status, _) = send(addr, ep.request("mixed_2", &body, now).expect("req")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(log.take().is_empty());

    let _ = stop.send(());
    server.await.expect("join").expect("clean shutdown");
}
