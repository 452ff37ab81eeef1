//! Quickstart: a sender forwards real Sysdig Secure events to a verifying receiver on 127.0.0.1.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! What happens, end to end, in one process:
//!
//! 1. A **receiver** listens on 127.0.0.1 (a free port). It verifies Standard Webhooks
//!    signatures over the raw bytes with a key ring, refuses replays, decodes Sysdig batches
//!    into typed events and routes them by event `type`: runtime policy events, platform audit
//!    events, and (fallback) activity-audit events each go to their own handler.
//! 2. A **sender** reads the eight real events of `fixtures/sysdig/`, groups them by time
//!    proximity into a batch (a JSON array, as Sysdig sends), signs each attempt and delivers it,
//!    retrying if needed. Every event gets a receipt.
//! 3. A request signed with the **wrong key** is sent too, to show it refused with 401.
//! 4. Both sides shut down gracefully and print what they did.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use webhook_core::{
    BatcherConfig, Encoding, Endpoint, Event, KeyRing, Scheme, Secret, SenderAuth, Signer, Verifier,
};
use webhook_payloads::sysdig::SysdigEvent;
use webhook_receiver::{
    Context, Outcome, Receiver, ReceiverConfig, Server, SysdigDecoder, handler_fn,
};
use webhook_sender::ssrf::{Cidr, SsrfPolicy};
use webhook_sender::{EndpointConfig, Sender, TransportBuilder};

/// The secret both sides share, in Standard Webhooks form (the signature scheme Svix and others
/// use). A real deployment reads it from its configuration or a secret store.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let ring = KeyRing::single(Secret::from_whsec(SECRET)?);

    // ---- Receiver: verify → decode → route → handler -----------------------------------
    let routed = Arc::new(RoutedCounts::default());
    let config = ReceiverConfig::builder()
        .verify(Verifier::new(Scheme::standard_webhooks(), &ring)?)
        .build()?;
    let receiver = Receiver::builder(config)
        .decoder(SysdigDecoder)
        .route("policy", {
            let routed = routed.clone();
            handler_fn(move |event: SysdigEvent<'static>, cx: Context| {
                routed.policy.fetch_add(1, Ordering::Relaxed);
                print_routed("runtime policy", &event, &cx);
                async { Outcome::Accepted }
            })
        })
        .route("audittrail", {
            let routed = routed.clone();
            handler_fn(move |event: SysdigEvent<'static>, cx: Context| {
                routed.platform_audit.fetch_add(1, Ordering::Relaxed);
                print_routed("platform audit", &event, &cx);
                async { Outcome::Accepted }
            })
        })
        .fallback({
            let routed = routed.clone();
            handler_fn(move |event: SysdigEvent<'static>, cx: Context| {
                routed.activity_audit.fetch_add(1, Ordering::Relaxed);
                print_routed("activity audit", &event, &cx);
                async { Outcome::Accepted }
            })
        })
        .build()?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_receiver, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(Server::new(receiver).serve(listener, async {
        let _ = stopped.await;
    }));
    let url = format!("http://{addr}/hooks/sysdig");
    println!("webhook-sdk quickstart");
    println!("  receiver  {url}");
    println!(
        "            verifies Standard Webhooks signatures (key ring of 1), routes by event type"
    );

    // ---- Sender: events → batcher → signed request → transport → receipts -------------
    let endpoint = Endpoint::builder(&url)
        .auth(SenderAuth::signature_with(
            Scheme::standard_webhooks(),
            &ring,
        )?)
        .encoding(Encoding::JsonArray)
        .build()?;
    let batching = BatcherConfig::builder()
        .encoding(Encoding::JsonArray)
        .max_events(100)
        .linger(Duration::from_millis(50))
        .build()?;
    // The SSRF guard refuses loopback by default; this demo delivers to 127.0.0.1 on purpose.
    let loopback: Cidr = "127.0.0.0/8".parse()?;
    let sender = Sender::builder()
        .transport_builder(TransportBuilder::new().ssrf(SsrfPolicy::default().allow(loopback)))
        .endpoint(
            EndpointConfig::builder("sysdig-siem", endpoint)
                .batching(batching)
                .build()?,
        )
        .build()?;

    let events = fixture_events()?;
    println!(
        "  sender    {} real Sysdig Secure events from fixtures/sysdig/, batched as a JSON array, signed",
        events.len()
    );
    println!();

    let mut receipts = Vec::with_capacity(events.len());
    for event in events {
        receipts.push(sender.send(event).await?);
    }
    let total = receipts.len();
    let mut delivered = 0;
    for receipt in receipts {
        // A receipt resolves once its event is delivered, or given up on with a reason.
        let report = receipt.await;
        if report.is_delivered() {
            delivered += 1;
        } else {
            println!("  failed    {:?}", report.outcomes());
        }
    }
    let counters = sender
        .endpoint_health("sysdig-siem")
        .map(|h| h.counters)
        .unwrap_or_default();

    // ---- A forged request: signed with a key the receiver does not hold -----------------
    let forged = forged_request(addr).await?;
    println!();
    println!("  forged    a request signed with another key → {forged}");

    // ---- Shut down: the sender flushes what it holds, the receiver drains in-flight work -
    let report = sender.shutdown(Duration::from_secs(5)).await;
    let _ = stop_receiver.send(());
    server.await??;

    println!();
    println!("summary");
    println!(
        "  sender    {delivered}/{total} events delivered in {} batch(es), {} request(s), {} retr(ies); {} undelivered at shutdown",
        counters.batches_delivered,
        counters.requests,
        counters.retries,
        report.undelivered.len()
    );
    println!(
        "  receiver  routed {} runtime policy, {} platform audit, {} activity audit event(s); forged request refused",
        routed.policy.load(Ordering::Relaxed),
        routed.platform_audit.load(Ordering::Relaxed),
        routed.activity_audit.load(Ordering::Relaxed),
    );
    Ok(())
}

/// How many events each route received.
#[derive(Default)]
struct RoutedCounts {
    policy: AtomicUsize,
    platform_audit: AtomicUsize,
    activity_audit: AtomicUsize,
}

fn print_routed(route: &str, event: &SysdigEvent<'_>, cx: &Context) {
    let mut summary = event.summary();
    if summary.chars().count() > 72 {
        summary = summary.chars().take(71).collect::<String>() + "…";
    }
    println!(
        "  routed    {route:<15} {:<11} {}  batch {}  {summary}",
        event.event_type().unwrap_or("?"),
        event.id().unwrap_or("?"),
        cx.message_id().unwrap_or("-"),
    );
}

/// The real Sysdig events shipped with the repository, each as the sender's `Event`: its own
/// JSON bytes (never re-serialized), its id, its type as subject, its timestamp.
fn fixture_events() -> Result<Vec<Event>, Error> {
    let mut events = Vec::new();
    for line in webhook_examples::SYSDIG_FIXTURE_NDJSON.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = SysdigEvent::from_slice(line.as_bytes())?;
        let event = Event::builder(
            parsed.id().unwrap_or_default(),
            parsed.event_type().unwrap_or("unknown"),
        )
        .timestamp_nanos(parsed.timestamp_ns().unwrap_or_default())
        .json_bytes(Bytes::copy_from_slice(line.as_bytes()))?;
        events.push(event);
    }
    Ok(events)
}

/// Sends one event signed with a key the receiver does not know; returns the answer's status
/// line and error body.
async fn forged_request(addr: SocketAddr) -> Result<String, Error> {
    let attacker = KeyRing::single(Secret::from_bytes("not the shared secret")?);
    let body = Bytes::from_static(br#"[{"id":"forged","type":"policy","timestamp":1}]"#);
    let mut request = http::Request::post(format!("http://{addr}/hooks/sysdig"))
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs();
    Signer::new(Scheme::standard_webhooks(), &attacker)?.sign(
        "msg_forged",
        now,
        &body,
        request.headers_mut(),
    )?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(format!("{status} {}", String::from_utf8_lossy(&body)))
}
