//! The same receivers in axum, with the `Webhook` extractor: it buffers the raw body under the
//! limit, authenticates those exact bytes, reserves the message id against replays and only then
//! decodes. Three routes, each with its own `ReceiverConfig` as state:
//!
//! * `POST /connectsecure`: ConnectSecure alerts, header token, routed by subject in the handler;
//! * `POST /sysdig`: Sysdig batches verified with a key ring (Standard Webhooks);
//! * `GET /safous/decide`: a Safous decision call-out with Basic authentication.
//!
//! Runs standalone on 127.0.0.1 with `axum::serve`, sends itself a few requests, prints what the
//! handlers received and exits.
//!
//! `cargo run -p webhook-examples --example axum_receiver`

#[path = "support/client.rs"]
mod client;

use std::error::Error;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{Request, StatusCode};
use webhook_core::Endpoint;
use webhook_core::{
    BasicCredentials, Encoding, Event, HeaderToken, KeyRing, Scheme, Secret, SenderAuth, Verifier,
};
use webhook_payloads::connectsecure::ConnectSecureAlert;
use webhook_payloads::safous::SafousDecision;
use webhook_payloads::sysdig::SysdigEvent;
use webhook_receiver::axum::Webhook;
use webhook_receiver::{ConnectSecureDecoder, ReceiverConfig, SysdigDecoder};

async fn connectsecure(hook: Webhook<ConnectSecureAlert, ConnectSecureDecoder>) -> StatusCode {
    for alert in &hook.items {
        let subject = hook.subject(alert).unwrap_or_default();
        let facts = alert.facts();
        match &*subject {
            "Login Failure" => println!(
                "[axum connectsecure] login failure: user={:?} from={:?}",
                facts.user_name, facts.source_ip
            ),
            s if s.starts_with("Critical") => println!(
                "[axum connectsecure] {s}: {:?} in {:?}",
                facts.cve_ids, facts.product
            ),
            other => println!("[axum connectsecure] {other}: host={:?}", facts.hostname),
        }
    }
    // Acknowledge once the alerts are safely handled: the id is then answered as a duplicate.
    hook.acknowledge();
    StatusCode::OK
}

async fn sysdig(hook: Webhook<SysdigEvent<'static>, SysdigDecoder>) -> StatusCode {
    println!(
        "[axum sysdig] batch {} with {} events ({:?})",
        hook.context.message_id().unwrap_or("-"),
        hook.items.len(),
        hook.items
            .iter()
            .map(|e| e.event_type().unwrap_or("?"))
            .collect::<Vec<_>>()
    );
    hook.acknowledge();
    StatusCode::OK
}

async fn safous(hook: Webhook<()>) -> Json<SafousDecision> {
    let user = hook
        .context
        .headers()
        .get("x-safous-user")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let decision = if user == "alice" {
        SafousDecision::allow()
    } else {
        SafousDecision::deny(format!("{user} may not access this application"))
    };
    println!("[axum safous] {user} -> {:?}", decision.decision);
    hook.acknowledge();
    Json(decision)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let token = HeaderToken::new("X-CS-Webhook-Key", "cs-example-shared-secret")?;
    let sysdig_key = Secret::from_whsec("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")?;
    let old_key = Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
    let ring = KeyRing::new()
        .with_key(sysdig_key.clone())
        .with_key_until(old_key, SystemTime::now() + Duration::from_secs(3600));
    let basic = BasicCredentials::new("safous-rule", "ztna-callout-password")?;

    let cs_config = ReceiverConfig::builder()
        .header_token(token.clone())
        .build()?;
    let sysdig_config = ReceiverConfig::builder()
        .verify(Verifier::new(Scheme::standard_webhooks(), &ring)?)
        .body_limit(25 * 1024 * 1024)
        .build()?;
    let safous_config = ReceiverConfig::builder()
        .basic(basic.clone())
        .methods([http::Method::GET])
        .build()?;
    let app = axum::Router::new()
        .route("/connectsecure", post(connectsecure))
        .with_state(cs_config)
        .merge(
            axum::Router::new()
                .route("/sysdig", post(sysdig))
                .with_state(sysdig_config),
        )
        .merge(
            axum::Router::new()
                .route("/safous/decide", get(safous))
                .with_state(safous_config),
        );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    println!("axum receiver on http://{addr}");

    // ConnectSecure: two documented alerts, the second with the invalid `\ ` escape.
    let alerts = [
        r#"{"subject": "Login Failure", "body": "Login Failure for john.doe With IPAddress 203.0.113.10 on service AzureAD at 2024-01-15 10:30:00 UTC"}"#,
        r#"{"subject": "Critical Problems Found", "body": "Critical vulnerabilities detected for asset with IP 192.168.1.100 in company Acme Corporation\ Product: Apache HTTP Server. VUL ID: CVE-2021-44228. Severity: Critical"}"#,
    ];
    for body in alerts {
        let mut req = Request::post(format!("http://{addr}/connectsecure"))
            .header("content-type", "application/json")
            .body(Bytes::copy_from_slice(body.as_bytes()))?;
        SenderAuth::HeaderToken(token.clone()).apply("", 0, body.as_bytes(), req.headers_mut())?;
        let (status, _) = client::send(addr, req).await?;
        client::expect("connectsecure alert", status, StatusCode::OK)?;
    }

    // Sysdig: the real fixture events as one signed NDJSON batch, then its replay.
    let events = webhook_examples::SYSDIG_FIXTURE_NDJSON
        .lines()
        .enumerate()
        .map(|(i, line)| {
            Event::builder(format!("e{i}"), "sysdig")
                .json_bytes(Bytes::copy_from_slice(line.as_bytes()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let endpoint = Endpoint::builder(format!("http://{addr}/sysdig"))
        .auth(SenderAuth::signature_with(
            Scheme::standard_webhooks(),
            &KeyRing::single(sysdig_key),
        )?)
        .encoding(Encoding::Ndjson)
        .build()?;
    let body = endpoint.encode(&events)?;
    let (status, _) =
        client::send(addr, endpoint.request("batch_1", &body, SystemTime::now())?).await?;
    client::expect("sysdig batch", status, StatusCode::OK)?;
    let (status, res) =
        client::send(addr, endpoint.request("batch_1", &body, SystemTime::now())?).await?;
    // Acknowledged already: answered 200 as a duplicate, the handler does not run again.
    client::expect("sysdig replay", status, StatusCode::OK)?;
    println!("    {}", String::from_utf8_lossy(&res));

    // Safous: a GET call-out without body.
    for user in ["alice", "bob"] {
        let mut req = Request::get(format!("http://{addr}/safous/decide"))
            .header("x-safous-user", user)
            .body(Bytes::new())?;
        SenderAuth::Basic(basic.clone()).apply("", 0, b"", req.headers_mut())?;
        let (status, body) = client::send(addr, req).await?;
        client::expect(user, status, StatusCode::OK)?;
        println!("    {}", String::from_utf8_lossy(&body));
    }

    let _ = stop.send(());
    server.await??;
    Ok(())
}
