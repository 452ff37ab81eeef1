//! Quickstart: a sender forwards real Sysdig Secure events, ConnectSecure alerts and Soveren
//! events to one verifying receiver on 127.0.0.1, which routes each by family and type.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! What happens, end to end, in one process:
//!
//! 1. A **receiver** listens on 127.0.0.1 (a free port). It verifies Standard Webhooks
//!    signatures over the raw bytes with a key ring, refuses replays, recognizes each record of a
//!    batch (`DetectDecoder`: Sysdig, ConnectSecure, Soveren, ...) and routes it by
//!    `family.kind`: Sysdig runtime policy events, Sysdig platform audit, Sysdig activity audit,
//!    ConnectSecure alerts (by subject) and Soveren events each go to their own handler.
//! 2. A **sender** with three endpoints (one per integration, each with a subject filter) reads
//!    the eight real events of `fixtures/sysdig/` and the ConnectSecure and Soveren samples,
//!    groups each integration's events by time proximity into a batch (a JSON array, as Sysdig
//!    sends), signs each attempt and delivers it, retrying if needed. Every event gets a receipt.
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
use webhook_payloads::Payload;
use webhook_payloads::connectsecure::ConnectSecureAlert;
use webhook_payloads::soveren::SoverenEvent;
use webhook_payloads::sysdig::SysdigEvent;
use webhook_receiver::{
    Context, DetectDecoder, HandlerOutcome, Receiver, ReceiverConfig, Server, handler_fn,
};
use webhook_sender::outbox::OutboxConfig;
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
    let receiver = Receiver::with_decoder(config, DetectDecoder)
        .route("sysdig.policy", route(&routed.policy, "runtime policy"))
        .route(
            "sysdig.audittrail",
            route(&routed.platform_audit, "platform audit"),
        )
        .route("sysdig.*", route(&routed.activity_audit, "activity audit"))
        .route(
            "connectsecure.*",
            route(&routed.connectsecure, "connectsecure"),
        )
        .route("soveren.*", route(&routed.soveren, "soveren"))
        .fallback(route(&routed.other, "other"))
        .build()?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_receiver, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(Server::new(receiver).serve(listener, async {
        let _ = stopped.await;
    }));
    let base = format!("http://{addr}/hooks");
    println!("webhook-sdk quickstart");
    println!("  receiver  {base}/{{sysdig,connectsecure,soveren}}");
    println!(
        "            verifies Standard Webhooks signatures (key ring of 1), routes by family.type"
    );

    // ---- Sender: events → batcher → signed request → transport → receipts -------------
    // One endpoint per integration, each taking the events whose subject its filter matches.
    // The SSRF guard refuses loopback by default; this demo delivers to 127.0.0.1 on purpose.
    let loopback: Cidr = "127.0.0.0/8".parse()?;
    // The durable outbox (embedded, no server): every event is on disk until delivered, so a
    // crash or a restart loses nothing. A temporary directory here; an application gives a
    // directory of its own and a restart delivers what is left there.
    let outbox_dir =
        std::env::temp_dir().join(format!("webhook-quickstart-{}", std::process::id()));
    let mut builder = Sender::builder()
        .transport_builder(TransportBuilder::new().ssrf(SsrfPolicy::default().allow(loopback)))
        .outbox(OutboxConfig::new(&outbox_dir));
    for name in INTEGRATIONS {
        let endpoint = Endpoint::builder(format!("{base}/{name}"))
            .auth(SenderAuth::signature_with(
                Scheme::standard_webhooks(),
                &ring,
            )?)
            .encoding(Encoding::JsonArray)
            .build()?;
        let batching = BatcherConfig::builder()
            .max_events(100)
            .linger(Duration::from_millis(50))
            .build()?;
        builder = builder.endpoint(
            EndpointConfig::builder(name, endpoint)
                .filter([format!("{name}.*")])
                .batching(batching)
                .build()?,
        );
    }
    let sender = builder.build()?;

    let events = sample_events()?;
    println!(
        "  sender    {} events: 8 real Sysdig Secure events (fixtures/sysdig/), {} ConnectSecure \
         and {} Soveren samples; batched per integration as JSON arrays, signed",
        events.len(),
        webhook_examples::CONNECTSECURE_SAMPLES.len(),
        webhook_examples::SOVEREN_SAMPLES.len(),
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
    let (mut batches, mut requests, mut retries) = (0, 0, 0);
    for health in sender.health() {
        batches += health.counters.batches_delivered;
        requests += health.counters.requests;
        retries += health.counters.retries;
    }

    // ---- A forged request: signed with a key the receiver does not hold -----------------
    let forged = forged_request(addr).await?;
    println!();
    println!("  forged    a request signed with another key → {forged}");

    // ---- Shut down: the sender flushes what it holds, the receiver drains in-flight work -
    let report = sender.shutdown(Duration::from_secs(5)).await;
    let held = sender.outbox().map_or(0, |o| o.stats().pending);
    drop(sender);
    std::fs::remove_dir_all(&outbox_dir)?;
    let _ = stop_receiver.send(());
    server.await??;

    println!();
    println!("summary");
    println!(
        "  sender    {delivered}/{total} events delivered in {batches} batch(es), {requests} request(s), {retries} retr(ies); {} undelivered at shutdown, {held} held in the outbox",
        report.undelivered.len()
    );
    println!(
        "  receiver  routed {} Sysdig runtime policy, {} platform audit, {} activity audit, {} ConnectSecure, {} Soveren, {} other; forged request refused",
        routed.policy.load(Ordering::Relaxed),
        routed.platform_audit.load(Ordering::Relaxed),
        routed.activity_audit.load(Ordering::Relaxed),
        routed.connectsecure.load(Ordering::Relaxed),
        routed.soveren.load(Ordering::Relaxed),
        routed.other.load(Ordering::Relaxed),
    );
    Ok(())
}

/// The integrations: endpoint names, URL paths and subject prefixes.
const INTEGRATIONS: [&str; 3] = ["sysdig", "connectsecure", "soveren"];

/// How many events each route received.
#[derive(Default)]
struct RoutedCounts {
    policy: Arc<AtomicUsize>,
    platform_audit: Arc<AtomicUsize>,
    activity_audit: Arc<AtomicUsize>,
    connectsecure: Arc<AtomicUsize>,
    soveren: Arc<AtomicUsize>,
    other: Arc<AtomicUsize>,
}

/// A handler that counts what it receives and prints one line per item.
fn route(
    count: &Arc<AtomicUsize>,
    name: &'static str,
) -> impl webhook_receiver::Handler<Payload<'static>> {
    let count = count.clone();
    handler_fn(move |item: Payload<'static>, cx: Context| {
        count.fetch_add(1, Ordering::Relaxed);
        print_routed(name, &item, &cx);
        async { HandlerOutcome::Accepted }
    })
}

fn print_routed(route: &str, item: &Payload<'_>, cx: &Context) {
    let (kind, id, mut summary) = match item {
        Payload::Sysdig(e) => (
            e.event_type().unwrap_or("?").to_owned(),
            e.id().unwrap_or("?").to_owned(),
            e.summary(),
        ),
        Payload::ConnectSecure(a) => {
            let facts = a.facts();
            let mut found = Vec::new();
            if let Some(ip) = facts.ip {
                found.push(format!("ip {ip}"));
            }
            if let Some(host) = &facts.hostname {
                found.push(format!("host {host}"));
            }
            if let Some(user) = &facts.user_name {
                found.push(format!("user {user}"));
            }
            if let Some(ip) = facts.source_ip {
                found.push(format!("from {ip}"));
            }
            if let Some(port) = facts.port {
                found.push(format!("port {port}"));
            }
            (
                "alert".to_owned(),
                a.subject().as_str().to_owned(),
                found.join(", "),
            )
        }
        Payload::Soveren(e) => (
            e.event_type.as_ref().map_or("?", |t| t.as_str()).to_owned(),
            e.sensitivity
                .as_ref()
                .map_or("?", |s| s.as_str())
                .to_owned(),
            e.title.clone().unwrap_or_default(),
        ),
        other => (
            format!("{:?}", other.family()),
            "-".to_owned(),
            String::new(),
        ),
    };
    if summary.chars().count() > 60 {
        summary = summary.chars().take(59).collect::<String>() + "…";
    }
    println!(
        "  routed    {route:<15} {kind:<22} {id:<32}  {summary}  (batch {})",
        cx.message_id().unwrap_or("-"),
    );
}

/// The events the sender forwards, each as the sender's `Event` with a `family.kind` subject:
/// the Sysdig events with their own JSON bytes (never re-serialized), their id and timestamp;
/// the ConnectSecure and Soveren samples parsed into their typed payloads and written compactly
/// (`EventBuilder::json`).
fn sample_events() -> Result<Vec<Event>, Error> {
    let mut events = Vec::new();
    for line in webhook_examples::SYSDIG_FIXTURE_NDJSON.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = SysdigEvent::from_slice(line.as_bytes())?;
        let event = Event::builder(
            parsed.id().unwrap_or_default(),
            format!("sysdig.{}", parsed.event_type().unwrap_or("unknown")),
        )
        .timestamp_nanos(parsed.timestamp_ns().unwrap_or_default())
        .json_bytes(Bytes::copy_from_slice(line.as_bytes()))?;
        events.push(event);
    }
    for (i, sample) in webhook_examples::CONNECTSECURE_SAMPLES.iter().enumerate() {
        let alert = ConnectSecureAlert::from_slice(sample.as_bytes())?;
        let subject = format!("connectsecure.{}", alert.subject().as_str());
        events.push(Event::builder(format!("cs-{}", i + 1), subject).json(&alert)?);
    }
    for (i, sample) in webhook_examples::SOVEREN_SAMPLES.iter().enumerate() {
        let event: SoverenEvent = serde_json::from_str(sample)?;
        let kind = event.event_type.as_ref().map_or("unknown", |t| t.as_str());
        let subject = format!("soveren.{kind}");
        events.push(Event::builder(format!("soveren-{}", i + 1), subject).json(&event)?);
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
