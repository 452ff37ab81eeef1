//! Receive Sysdig Secure event batches verified with a key ring during a key rotation, routed by
//! event `type`.
//!
//! Sysdig's `SIGNATURE` authentication is not published, so the SDK uses Standard Webhooks
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`). The receiver's ring holds the new
//! key, the old key until an expiry (senders switch in between) and a retired key that has
//! already expired. The example sends itself the real events of
//! `fixtures/sysdig/elastic-integrations-test-sysdig.ndjson` as NDJSON signed with the old key,
//! as a JSON array signed with the new key, the same batch again (a replay: `200`, a duplicate, not handled again), and a batch
//! signed with the retired key (`401`), printing what each handler received.
//!
//! `cargo run -p webhook-examples --example receive_sysdig`

#[path = "support/client.rs"]
mod client;
#[path = "support/sysdig.rs"]
mod sysdig;

use std::error::Error;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use webhook_core::Endpoint;
use webhook_core::{Encoding, Identity, KeyRing, Scheme, Secret, SenderAuth, Verifier};
use webhook_payloads::sysdig::SysdigEvent;
use webhook_receiver::{
    Context, Handler, HandlerOutcome, Receiver, ReceiverConfig, Server, SysdigDecoder, handler_fn,
};

/// Prints an event with the key that verified its batch.
fn printer(route: &'static str) -> impl Handler<SysdigEvent<'static>> {
    handler_fn(move |ev: SysdigEvent<'static>, cx: Context| async move {
        let key = match cx.identity() {
            Identity::Signature { key_index, .. } => format!("key #{key_index}"),
            other => format!("{other:?}"),
        };
        println!(
            "[{route}] batch={} type={} id={} severity={:?} ({key})",
            cx.message_id().unwrap_or("-"),
            ev.event_type().unwrap_or("?"),
            ev.id().unwrap_or("?"),
            ev.severity(),
        );
        HandlerOutcome::Accepted
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let now = SystemTime::now();
    let new_key = Secret::from_whsec("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")?;
    let old_key = Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
    let retired = Secret::from_bytes("a key retired last quarter")?;
    let ring = KeyRing::new()
        .with_key(new_key.clone())
        .with_key_until(old_key.clone(), now + Duration::from_secs(24 * 3600))
        .with_key_until(retired.clone(), now - Duration::from_secs(1));

    let config = ReceiverConfig::builder()
        .verify(Verifier::new(Scheme::standard_webhooks(), &ring)?)
        .build()?;
    println!("replay window: {:?}", config.replay_window());
    let receiver = Receiver::with_decoder(config, SysdigDecoder)
        .route("policy", printer("runtime policy"))
        .route("audittrail", printer("platform audit"))
        .route("*access", printer("file access"))
        .fallback(printer("activity audit"))
        .build()?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(Server::new(receiver).serve(listener, async {
        let _ = stopped.await;
    }));
    println!("Sysdig receiver on http://{addr}/sysdig");

    let endpoint =
        |key: Secret, encoding: Encoding| -> Result<Endpoint, Box<dyn Error + Send + Sync>> {
            Ok(Endpoint::builder(format!("http://{addr}/sysdig"))
                .auth(SenderAuth::signature_with(
                    Scheme::standard_webhooks(),
                    &KeyRing::single(key),
                )?)
                .encoding(encoding)
                .build()?)
        };
    let events = sysdig::fixture_events()?;

    println!("batch 1: NDJSON signed with the old key (accepted until its expiry)");
    let ep = endpoint(old_key, Encoding::Ndjson)?;
    let body = ep.encode(&events)?;
    let (status, _) = client::send(addr, ep.request("batch_1", &body, now)?).await?;
    client::expect("batch 1", status, StatusCode::OK)?;

    println!("batch 2: JSON array signed with the new key");
    let ep = endpoint(new_key, Encoding::JsonArray)?;
    let body = ep.encode(&events)?;
    let (status, _) = client::send(addr, ep.request("batch_2", &body, now)?).await?;
    client::expect("batch 2", status, StatusCode::OK)?;

    println!("batch 2 again: a replay, answered 200 as a duplicate and not handled again");
    let (status, _) = client::send(addr, ep.request("batch_2", &body, now)?).await?;
    client::expect("replayed batch 2", status, StatusCode::OK)?;

    println!("batch 3: signed with the retired key");
    let ep = endpoint(retired, Encoding::Ndjson)?;
    let body = ep.encode(&events)?;
    let (status, res) = client::send(addr, ep.request("batch_3", &body, now)?).await?;
    client::expect("batch 3", status, StatusCode::UNAUTHORIZED)?;
    println!("    {}", String::from_utf8_lossy(&res));

    let _ = stop.send(());
    server.await??;
    Ok(())
}
