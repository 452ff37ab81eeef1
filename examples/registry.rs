//! Endpoints as data: a vendor's "integrations" page driving a running sender.
//!
//! The application keeps its customers' webhook integrations in its own database and changes
//! them while events flow, the way Sysdig, ConnectSecure, Soveren and Safous let their users
//! do from a settings page:
//!
//! 1. the registry is loaded from a saved snapshot (JSON): event sets, and one endpoint per
//!    customer (tenant), one of them waiting for a passing test before it is enabled;
//! 2. "Test Integration" enables it; events for both tenants are routed by tenant and event set;
//! 3. a secret is rotated (both keys sign until the old one expires), an endpoint is paused
//!    and resumed, another removed after delivering what it held;
//! 4. the status of each endpoint and the audit trail of every change (secrets redacted) are
//!    printed, and the registry is saved again.
//!
//! Run it with `cargo run --example registry`; it checks its own outcome.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use webhook_core::{Event, KeyRing, Scheme, Secret, Verifier};
use webhook_payloads::Payload;
use webhook_receiver::{
    Context, DetectDecoder, HandlerOutcome, Receiver, ReceiverConfig, Server, handler_fn,
};
use webhook_sender::registry::{AuthSpec, KeySpec};
use webhook_sender::ssrf::{Cidr, SsrfPolicy};
use webhook_sender::{AuditTarget, RegistrySnapshot, RemovePolicy, Sender, TransportBuilder};

type Error = Box<dyn std::error::Error + Send + Sync>;

const ACME_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const GLOBEX_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const GLOBEX_ROTATED: &str = "whsec_plJ3nmyCDGBKInavdOK15jsl0A7BfDyW";

/// The saved registry, as the application would keep it (`{base}` is the receiver's URL).
const SAVED: &str = r#"{
  "version": 1,
  "event_sets": [
    { "name": "security-alerts", "types": ["alert.login_failure", "alert.malware"] },
    { "name": "scans", "types": ["scan.*"] }
  ],
  "endpoints": [
    {
      "name": "acme-siem", "url": "{base}/acme", "tenant": "acme",
      "event_sets": ["security-alerts"], "require_test": true,
      "auth": { "type": "signature", "keys": [{ "secret": "ACME_SECRET" }] },
      "batching": { "max_events": 100, "linger_ms": 20 }
    },
    {
      "name": "globex-soar", "url": "{base}/globex", "tenant": "globex",
      "event_sets": ["security-alerts", "scans"],
      "auth": { "type": "signature", "keys": [{ "secret": "GLOBEX_SECRET" }] },
      "batching": { "max_events": 100, "linger_ms": 20 }
    }
  ]
}"#;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // ---- a receiver on 127.0.0.1 verifying every key the endpoints sign with ------------
    let ring = KeyRing::new()
        .with_key(Secret::from_whsec(ACME_SECRET)?)
        .with_key(Secret::from_whsec(GLOBEX_SECRET)?)
        .with_key(Secret::from_whsec(GLOBEX_ROTATED)?);
    let received = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let r = received.clone();
    let config = ReceiverConfig::builder()
        .verify(Verifier::new(Scheme::standard_webhooks(), &ring)?)
        .build()?;
    let receiver = Receiver::with_decoder(config, DetectDecoder)
        .fallback(handler_fn(move |item: Payload<'static>, cx: Context| {
            // The customers' events (the test event of "Test Integration" is not counted).
            if let Payload::ConnectSecure(a) = &item {
                let subject = a.subject.clone().unwrap_or_default();
                let path = cx.uri().path().to_owned();
                r.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((path, subject));
            }
            async { HandlerOutcome::Accepted }
        }))
        .build()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/hooks", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(Server::new(receiver).serve(listener, async {
        let _ = stopped.await;
    }));
    println!("webhook-sdk registry example: endpoints as data");
    println!("  receiver  {base}/{{acme,globex}} (verifies Standard Webhooks signatures)");

    // ---- 1. load the saved registry ----------------------------------------------------
    let saved = SAVED
        .replace("{base}", &base)
        .replace("ACME_SECRET", ACME_SECRET)
        .replace("GLOBEX_SECRET", GLOBEX_SECRET);
    let snapshot = RegistrySnapshot::from_json_str(&saved)?;
    let loopback: Cidr = "127.0.0.0/8".parse()?;
    let sender = snapshot
        .apply(Sender::builder().transport_builder(
            TransportBuilder::new().ssrf(SsrfPolicy::default().allow(loopback)),
        ))?
        .build()?;
    let mut audit = sender.audit();
    print_status(&sender, "loaded");

    // ---- 2. test, enable, route -------------------------------------------------------
    let test = sender.test_integration("acme-siem").await?;
    println!(
        "  test      acme-siem answered {} in {} ms: enabled",
        test.status,
        test.latency.as_millis()
    );
    let events = [
        ("acme", "alert.login_failure", "Login Failure"),
        ("acme", "scan.done", "Scan Done"), // acme does not subscribe to scans
        ("globex", "alert.malware", "Malware"),
        ("globex", "scan.done", "Scan Done"),
        ("initech", "alert.malware", "Malware"), // no endpoint for this tenant
    ];
    let mut n = 0;
    let mut send = async |tenant: &str, kind: &str, subject: &str| -> Result<usize, Error> {
        n += 1;
        let body = serde_json::json!({ "subject": subject, "body": format!("{tenant} event {n}") });
        let event = Event::builder(format!("evt_{n}"), kind)
            .tenant(tenant)
            .serialize(&body)?;
        Ok(sender.send(event).await?.await.outcomes().len())
    };
    let mut routed = Vec::new();
    for (tenant, kind, subject) in events {
        routed.push(send(tenant, kind, subject).await?);
    }
    println!(
        "  routed    {events:?}\n            to {routed:?} endpoint(s) each",
        events = events.map(|e| (e.0, e.1))
    );

    // ---- 3. rotate, pause, resume, remove ----------------------------------------------
    let mut globex = sender
        .snapshot()
        .endpoints
        .into_iter()
        .find(|e| e.name == "globex-soar")
        .ok_or("globex-soar")?;
    let old_until = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 24 * 3600;
    globex.auth = AuthSpec::Signature {
        scheme: "standard-webhooks".into(),
        keys: vec![
            KeySpec::new(GLOBEX_ROTATED),
            KeySpec::until(GLOBEX_SECRET, old_until),
        ],
    };
    sender.update_endpoint(globex.to_config()?, "alice@vendor")?;
    let after_rotation = send("globex", "alert.malware", "Malware").await?;
    sender.pause("globex-soar", "bob@vendor")?;
    let held = tokio::spawn({
        let sender = sender.clone();
        async move {
            let event = Event::builder("evt_held", "scan.failed")
                .tenant("globex")
                .serialize(&serde_json::json!({ "subject": "Scan Failed", "body": "held" }))?;
            Ok::<_, Error>(sender.send(event).await?.await)
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    print_status(&sender, "paused");
    sender.resume("globex-soar", "bob@vendor")?;
    let held = held.await??;
    let removed = sender
        .remove_endpoint("acme-siem", RemovePolicy::Deliver, "carol@vendor")
        .await?;
    println!(
        "  removed   acme-siem: {} delivered, {} dead-lettered, {} dropped while it was removed",
        removed.delivered, removed.dead_lettered, removed.dropped
    );
    print_status(&sender, "now");

    // ---- 4. the audit trail and the saved registry --------------------------------------
    println!("  audit");
    let mut entries = Vec::new();
    while let Some(e) = audit.try_recv() {
        let fields: Vec<String> = e
            .changes
            .iter()
            .map(|c| {
                format!(
                    "{}: {} → {}",
                    c.field,
                    c.old.as_deref().unwrap_or("-"),
                    c.new.as_deref().unwrap_or("-")
                )
            })
            .collect();
        let target = match &e.target {
            AuditTarget::Endpoint(name) => format!("endpoint {name}"),
            AuditTarget::EventSet(name) => format!("event set {name}"),
            other => format!("{other:?}"),
        };
        println!(
            "    #{} {:<16} {:<21} {:?} {}",
            e.seq,
            e.actor,
            target,
            e.action,
            fields.join("; ")
        );
        entries.push(e);
    }
    let saved_again = sender.snapshot();
    println!(
        "  saved     {} event sets, {} endpoint(s); redacted for display:",
        saved_again.event_sets.len(),
        saved_again.endpoints.len()
    );
    for line in saved_again
        .redacted()
        .to_json_string()?
        .lines()
        .filter(|l| l.contains("secret"))
    {
        println!("           {}", line.trim());
    }

    // ---- check -----------------------------------------------------------------------
    assert!(sender.shutdown(Duration::from_secs(5)).await.is_clean());
    let _ = stop.send(());
    server.await??;
    let got = received.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let at = |path: &str| got.iter().filter(|(p, _)| p.ends_with(path)).count();
    let audit_text = serde_json::to_string(&entries)?;
    let ok = test.is_success()
        && routed == [1, 0, 1, 1, 0]
        && after_rotation == 1
        && held.is_delivered()
        && at("/acme") == 1
        && at("/globex") == 4
        && entries.len() == 5
        && [ACME_SECRET, GLOBEX_SECRET, GLOBEX_ROTATED]
            .iter()
            .all(|s| !audit_text.contains(&s[6..]));
    println!(
        "summary   acme got {} event(s), globex {}; {} audit entries, no secret in them: {}",
        at("/acme"),
        at("/globex"),
        entries.len(),
        if ok { "ok" } else { "UNEXPECTED" }
    );
    if ok {
        Ok(())
    } else {
        Err("unexpected outcome".into())
    }
}

fn print_status(sender: &Sender, when: &str) {
    for s in sender.statuses() {
        println!(
            "  status    {when:<7} {:<12} tenant {:<7} {:?}, {} delivered, {} queued",
            s.endpoint,
            s.tenant.as_deref().unwrap_or("*"),
            s.state,
            s.counters.delivered,
            s.queued + s.buffered,
        );
    }
}
