//! Receive ConnectSecure alerts (seed 002) routed by subject, authenticated with ConnectSecure's
//! "Authentication Header Key/Value" (a static header token, compared in constant time).
//!
//! Runs standalone on 127.0.0.1: starts the receiver, sends itself the four documented example
//! alerts (one of them contains the invalid JSON escape `\ ` from ConnectSecure's own guide,
//! which the ConnectSecure decoder repairs), one alert with a wrong token, prints what the
//! handlers received and exits.
//!
//! `cargo run -p webhook-examples --example receive_connectsecure`

#[path = "support/client.rs"]
mod client;

use std::error::Error;

use bytes::Bytes;
use http::{Request, StatusCode};
use webhook_core::{HeaderToken, SenderAuth};
use webhook_payloads::connectsecure::ConnectSecureAlert;
use webhook_receiver::{
    ConnectSecureDecoder, Context, Handler, HandlerOutcome, Receiver, ReceiverConfig, Server,
    handler_fn,
};

/// The alerts of ConnectSecure's payload guide, byte for byte (note `Corporation\ Product`).
const ALERTS: [&str; 4] = [
    r#"{"subject": "New Asset(s) Added", "body": "New asset added with ip 192.168.1.100. Hostname server-01.example.com. Mac address 00:1B:44:11:3A:B7"}"#,
    r#"{"subject": "Asset Ports", "body": "Open Port 443 Discovered for Asset 192.168.1.100, hostname server-01.example.com"}"#,
    r#"{"subject": "Critical Problems Found", "body": "Critical vulnerabilities detected for asset with IP 192.168.1.100, hostname server-01.example.com in company Acme Corporation\ Product: Apache HTTP Server. VUL ID: CVE-2021-44228. Severity: Critical"}"#,
    r#"{"subject": "Login Failure", "body": "Login Failure for john.doe With IPAddress 203.0.113.10 on service AzureAD at 2024-01-15 10:30:00 UTC"}"#,
];

/// Prints an alert and the facts found in its body.
fn printer(route: &'static str) -> impl Handler<ConnectSecureAlert> {
    handler_fn(move |alert: ConnectSecureAlert, cx: Context| async move {
        let f = alert.facts();
        println!(
            "[{route}] subject={:?} from={:?}",
            alert.subject.as_deref().unwrap_or(""),
            cx.remote_addr()
        );
        println!(
            "    ip={:?} host={:?} port={:?} company={:?} product={:?} cves={:?} user={:?}",
            f.ip, f.hostname, f.port, f.company, f.product, f.cve_ids, f.user_name
        );
        HandlerOutcome::Accepted
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    // What you enter in ConnectSecure as "Authentication Header Key" and "Value".
    let token = HeaderToken::new("X-CS-Webhook-Key", "cs-example-shared-secret")?;

    let config = ReceiverConfig::builder()
        .header_token(token.clone())
        .build()?;
    let receiver = Receiver::with_decoder(config, ConnectSecureDecoder)
        .case_insensitive(true)
        .route("New Asset(s) Added", printer("assets"))
        .route("Asset Ports", printer("ports"))
        .route("Critical *", printer("critical"))
        .route("Login Failure", printer("logins"))
        .fallback(printer("other"))
        .build()?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(Server::new(receiver).serve(listener, async {
        let _ = stopped.await;
    }));
    println!("ConnectSecure receiver on http://{addr}/webhooks/connectsecure");

    // What ConnectSecure sends: POST, JSON, the token header.
    let post =
        |body: &str, auth: &SenderAuth| -> Result<Request<Bytes>, Box<dyn Error + Send + Sync>> {
            let mut req = Request::post(format!("http://{addr}/webhooks/connectsecure"))
                .header("content-type", "application/json")
                .body(Bytes::copy_from_slice(body.as_bytes()))?;
            auth.apply("", 0, body.as_bytes(), req.headers_mut())?;
            Ok(req)
        };
    let auth = SenderAuth::HeaderToken(token);
    for alert in ALERTS {
        let (status, _) = client::send(addr, post(alert, &auth)?).await?;
        client::expect("alert", status, StatusCode::OK)?;
    }

    let wrong = SenderAuth::HeaderToken(HeaderToken::new("X-CS-Webhook-Key", "guess")?);
    let (status, body) = client::send(addr, post(ALERTS[0], &wrong)?).await?;
    client::expect("wrong token", status, StatusCode::UNAUTHORIZED)?;
    println!("    {}", String::from_utf8_lossy(&body));

    let _ = stop.send(());
    server.await??;
    Ok(())
}
