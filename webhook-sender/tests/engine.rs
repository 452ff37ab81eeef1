//! Integration tests of the delivery engine (`Sender`) against real HTTP servers on 127.0.0.1:
//! batching, auth headers and signatures, fault injection, overflow policies, shutdown, token
//! refresh, test integration, health, re-enabling a disabled endpoint and all-or-nothing
//! `try_send` across fan-out endpoints.
#![cfg(any(feature = "reqwest", feature = "hyper"))]

#[path = "engine/enable.rs"]
mod enable;
#[path = "engine/fanout.rs"]
mod fanout;
#[path = "engine/metrics.rs"]
mod metrics;
#[path = "engine/mtls.rs"]
mod mtls;
#[path = "engine/server.rs"]
mod server;
#[path = "engine/virtual_time.rs"]
mod virtual_time;
// The transport tests' TLS servers and rcgen PKI (only part of it is used here).
#[allow(dead_code, unreachable_pub)]
mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::StatusCode;
use sha2::Sha256;
use tokio::sync::broadcast::error::TryRecvError;
use webhook_core::Encoding;
use webhook_core::Endpoint;
use webhook_core::{
    BasicCredentials, BatcherConfig, BearerToken, Event, HealthConfig, HealthState, RetryPolicy,
    Secret as CoreSecret, SenderAuth,
};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::token::{ClientCredentialsSource, TokenProvider};
use webhook_sender::transport::{SharedTransport, TransportBuilder};
use webhook_sender::{
    AttemptError, Concurrency, DeadLetter, EndpointConfig, FailureReason, LifecycleEvent, Outcome,
    OverflowPolicy, Receipt, SendError, Sender, UndeliveredStage,
};

use server::{BoxError, Reply, Server};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn transport(timeout: Duration) -> Result<SharedTransport, BoxError> {
    Ok(TransportBuilder::new()
        .timeout(timeout)
        .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?))
        .build()?)
}

fn event(i: usize) -> Result<Event, BoxError> {
    event_with(i, "policy.created")
}

fn event_with(i: usize, subject: &str) -> Result<Event, BoxError> {
    let id = format!("evt_{i}");
    Ok(Event::builder(id.as_str(), subject)
        .serialize(&serde_json::json!({ "id": id, "type": subject, "n": i }))?)
}

/// Attempts at 0, then every `delay`, `attempts` in all.
fn retry(attempts: usize, delay: Duration) -> Result<RetryPolicy, BoxError> {
    let mut delays = vec![Duration::ZERO];
    delays.extend(std::iter::repeat_n(delay, attempts - 1));
    Ok(RetryPolicy::builder()
        .fixed(delays, 0)
        .min_wait_after_throttle(delay)
        .retry_after(true, Duration::from_secs(5))
        .build()?)
}

fn batching(
    encoding: Encoding,
    linger: Duration,
    max_events: usize,
) -> Result<BatcherConfig, BoxError> {
    Ok(BatcherConfig::builder()
        .encoding(encoding)
        .linger(linger)
        .max_events(max_events)
        .build()?)
}

async fn all(receipts: Vec<Receipt>) -> Vec<webhook_sender::DeliveryReport> {
    let mut out = Vec::with_capacity(receipts.len());
    for r in receipts {
        out.push(
            tokio::time::timeout(Duration::from_secs(10), r)
                .await
                .expect("receipt resolves"),
        );
    }
    out
}

fn collect_dead_letters() -> (
    Arc<Mutex<Vec<DeadLetter>>>,
    impl Fn(DeadLetter) + Send + Sync + 'static,
) {
    let store = Arc::new(Mutex::new(Vec::new()));
    let s = store.clone();
    (store, move |d| s.lock().unwrap().push(d))
}

#[tokio::test]
async fn batches_by_time_proximity_as_json_array_and_ndjson() -> Result<(), BoxError> {
    let server = Server::start(|_, _| Reply::ok()).await?;
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(
            EndpointConfig::builder("array", Endpoint::builder(server.url("/array")).build()?)
                .batching(batching(Encoding::JsonArray, ms(100), 1000)?)
                .build()?,
        )
        .endpoint(
            EndpointConfig::builder(
                "ndjson",
                Endpoint::builder(server.url("/ndjson"))
                    .encoding(Encoding::Ndjson)
                    .build()?,
            )
            .batching(batching(Encoding::Ndjson, ms(100), 1000)?)
            .build()?,
        )
        .build()?;
    let mut receipts = Vec::new();
    for i in 0..50 {
        receipts.push(sender.send(event(i)?).await?);
    }
    for report in all(receipts).await {
        assert!(report.is_delivered(), "{report:?}");
        for o in report.outcomes() {
            assert!(
                matches!(o.outcome, Outcome::Delivered { attempts: 1, status } if status == StatusCode::OK)
            );
        }
    }
    let seen = server.seen();
    for (path, ctype) in [
        ("/array", "application/json"),
        ("/ndjson", "application/x-ndjson"),
    ] {
        let reqs: Vec<_> = seen.iter().filter(|s| s.path == path).collect();
        assert!(
            !reqs.is_empty() && reqs.len() <= 2,
            "{path}: {} requests for 50 events",
            reqs.len()
        );
        let ids: Vec<String> = reqs.iter().flat_map(|s| s.event_ids()).collect();
        assert_eq!(ids.len(), 50, "{path}");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 50);
        for r in &reqs {
            assert_eq!(r.header("content-type"), Some(ctype));
            assert!(
                r.header("user-agent")
                    .is_some_and(|u| u.starts_with("webhook-sdk/"))
            );
        }
        if path == "/array" {
            assert!(serde_json::from_slice::<Vec<serde_json::Value>>(&reqs[0].body).is_ok());
        } else {
            assert!(reqs[0].body.ends_with(b"\n"));
        }
    }
    let health = sender.endpoint_health("array").ok_or("no such endpoint")?;
    assert_eq!(health.counters.delivered, 50);
    assert!(health.counters.batches_delivered <= 2);
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test]
async fn auth_headers_signature_and_filters() -> Result<(), BoxError> {
    let server = Server::start(|_, _| Reply::ok()).await?;
    let ep = |path: &str, auth: SenderAuth| -> Result<Endpoint, BoxError> {
        Ok(Endpoint::builder(server.url(path))
            .auth(auth)
            .header("x-tenant", "acme")
            .build()?)
    };
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(
            EndpointConfig::builder(
                "basic",
                ep(
                    "/basic",
                    SenderAuth::Basic(BasicCredentials::new("user", "p:ss")?),
                )?,
            )
            .batching(batching(Encoding::JsonArray, ms(20), 100)?)
            .build()?,
        )
        .endpoint(
            EndpointConfig::builder(
                "bearer",
                ep("/bearer", SenderAuth::Bearer(BearerToken::new("t0ken")?))?,
            )
            .batching(batching(Encoding::JsonArray, ms(20), 100)?)
            .build()?,
        )
        .endpoint(
            EndpointConfig::builder(
                "signed",
                ep(
                    "/signed",
                    SenderAuth::signature(CoreSecret::from_whsec(WHSEC)?)?,
                )?,
            )
            .batching(batching(Encoding::JsonArray, ms(20), 100)?)
            .filter(["policy.*"])
            .build()?,
        )
        .build()?;
    let a = sender.send(event_with(1, "policy.created")?).await?;
    let b = sender.send(event_with(2, "audit.login")?).await?;
    let (a, b) = (a.await, b.await);
    assert!(a.is_delivered());
    // An endpoint whose subscription does not select the event is not in its report.
    assert_eq!(b.outcome("signed"), None);
    assert!(
        b.is_delivered(),
        "endpoints not selecting the event do not count against delivery"
    );

    let seen = server.seen();
    let basic = seen
        .iter()
        .find(|s| s.path == "/basic")
        .ok_or("no basic request")?;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("user:p:ss")
    );
    assert_eq!(basic.header("authorization"), Some(expected.as_str()));
    assert_eq!(basic.header("x-tenant"), Some("acme"));
    let bearer = seen
        .iter()
        .find(|s| s.path == "/bearer")
        .ok_or("no bearer request")?;
    assert_eq!(bearer.header("authorization"), Some("Bearer t0ken"));

    let signed: Vec<_> = seen.iter().filter(|s| s.path == "/signed").collect();
    assert_eq!(signed.len(), 1, "the filter keeps audit.login away");
    let s = signed[0];
    assert_eq!(s.event_ids(), ["evt_1"]);
    let id = s.header("webhook-id").ok_or("no webhook-id")?;
    let ts = s.header("webhook-timestamp").ok_or("no timestamp")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    assert!(
        now.abs_diff(ts.parse()?) <= 5,
        "signing timestamp is the attempt time"
    );
    let key =
        base64::engine::general_purpose::STANDARD.decode(WHSEC.trim_start_matches("whsec_"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)?;
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&s.body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    let sig = s.header("webhook-signature").ok_or("no signature")?;
    assert!(sig.split(' ').any(|v| v == expected), "signature verifies");
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test]
async fn fault_injection_delivers_every_event_at_least_once() -> Result<(), BoxError> {
    // A deterministic mix: 30 % 503, resets, answers slower than the timeout, 429 with
    // Retry-After: 0, and successes.
    let server = Server::start(|n, _| match n % 10 {
        0 | 3 | 6 => Reply::status(503),
        1 => Reply::Reset,
        4 => Reply::Slow(ms(400), StatusCode::OK),
        8 => Reply::Status(
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", "0".into())],
            String::new(),
        ),
        _ => Reply::ok(),
    })
    .await?;
    let (dead, hook) = collect_dead_letters();
    let sender = Sender::builder()
        .transport(transport(ms(150))?)
        .dead_letter(hook)
        .endpoint(
            EndpointConfig::builder("flaky", Endpoint::builder(server.url("/in")).build()?)
                .batching(
                    BatcherConfig::builder()
                        .linger(ms(5))
                        .max_events(7)
                        .partition_by_key(true)
                        .build()?,
                )
                .retry(retry(30, ms(10))?)
                .concurrency(Concurrency::adaptive(1, 8))
                .jitter_seed(7)
                .build()?,
        )
        .build()?;
    let n = 200;
    let mut receipts = Vec::new();
    for i in 0..n {
        // Three partition keys: batches of different groups interleave.
        let id = format!("evt_{i}");
        let e = Event::builder(id.as_str(), "policy.created")
            .partition_key(format!("k{}", i % 3))
            .serialize(&serde_json::json!({ "id": id, "n": i }))?;
        receipts.push(sender.send(e).await?);
    }
    let reports = all(receipts).await;
    let mut retried = 0;
    for r in &reports {
        match r.outcome("flaky") {
            Some(Outcome::Delivered { attempts, .. }) => retried += usize::from(*attempts > 1),
            other => panic!("not delivered: {other:?}"),
        }
    }
    assert!(retried > 0, "faults forced retries");
    let delivered: HashSet<String> = server
        .seen()
        .iter()
        .filter(|s| s.path == "/in")
        .flat_map(|s| s.event_ids())
        .collect();
    for i in 0..n {
        assert!(
            delivered.contains(&format!("evt_{i}")),
            "evt_{i} reached the server"
        );
    }
    assert!(dead.lock().unwrap().is_empty());
    let h = sender.endpoint_health("flaky").ok_or("missing")?;
    assert_eq!(h.counters.delivered, n as u64);
    assert!(h.counters.retries > 0);
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test]
async fn retry_after_is_honoured_and_the_batch_id_is_stable() -> Result<(), BoxError> {
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply::Status(
                StatusCode::TOO_MANY_REQUESTS,
                vec![("retry-after", "1".into())],
                String::new(),
            )
        } else {
            Reply::ok()
        }
    })
    .await?;
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(
            EndpointConfig::builder(
                "throttled",
                Endpoint::builder(server.url("/in"))
                    .auth(SenderAuth::signature(CoreSecret::from_whsec(WHSEC)?)?)
                    .build()?,
            )
            .batching(batching(Encoding::JsonArray, ms(1), 10)?)
            .retry(retry(3, ms(10))?)
            .build()?,
        )
        .build()?;
    let report = sender.send(event(1)?).await?.await;
    assert!(matches!(
        report.outcome("throttled"),
        Some(Outcome::Delivered { attempts: 2, .. })
    ));
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1].at - seen[0].at >= ms(950),
        "waited for Retry-After: {:?}",
        seen[1].at - seen[0].at
    );
    assert_eq!(seen[0].header("webhook-id"), seen[1].header("webhook-id"));
    assert!(
        seen[0]
            .header("webhook-id")
            .is_some_and(|id| id.starts_with("msg_"))
    );
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_abort_fails_one_batch() -> Result<(), BoxError> {
    let server = Server::start(|_, seen| match seen.path.as_str() {
        "/gone" => Reply::status(410),
        _ if seen.event_ids().contains(&"evt_1".to_owned()) => Reply::Status(
            StatusCode::BAD_REQUEST,
            vec![("webhook-delivery", "abort-message".into())],
            String::new(),
        ),
        _ => Reply::ok(),
    })
    .await?;
    let (dead, hook) = collect_dead_letters();
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .dead_letter(hook)
        .endpoint(
            EndpointConfig::builder("gone", Endpoint::builder(server.url("/gone")).build()?)
                .batching(batching(Encoding::JsonArray, ms(1), 1)?)
                .retry(retry(5, ms(10))?)
                .build()?,
        )
        .endpoint(
            EndpointConfig::builder("picky", Endpoint::builder(server.url("/picky")).build()?)
                .batching(batching(Encoding::JsonArray, ms(1), 1)?)
                .retry(retry(5, ms(10))?)
                .build()?,
        )
        .build()?;
    let mut lifecycle = sender.lifecycle();
    let first = sender.send(event(1)?).await?.await;
    assert_eq!(
        first.outcome("gone"),
        Some(&Outcome::Failed {
            reason: FailureReason::EndpointDisabled
        })
    );
    assert!(matches!(
        first.outcome("picky"),
        Some(Outcome::Failed {
            reason: FailureReason::Aborted { .. }
        })
    ));
    let second = sender.send(event(2)?).await?.await;
    assert_eq!(
        second.outcome("gone"),
        Some(&Outcome::Failed {
            reason: FailureReason::EndpointDisabled
        })
    );
    assert!(
        second.outcome("picky").is_some_and(Outcome::is_delivered),
        "abort keeps the endpoint"
    );
    let gone = sender.endpoint_health("gone").ok_or("missing")?;
    assert!(matches!(gone.state, HealthState::Disabled { .. }));
    assert_eq!(
        server.seen().iter().filter(|s| s.path == "/gone").count(),
        1,
        "no retry after 410"
    );
    let mut disabled = false;
    loop {
        match lifecycle.try_recv() {
            Ok(LifecycleEvent::Disabled { endpoint, .. }) => disabled |= &*endpoint == "gone",
            Ok(_) => {}
            Err(TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    assert!(disabled, "a Disabled lifecycle event was broadcast");
    let dead = dead.lock().unwrap().clone();
    assert!(
        dead.iter()
            .any(|d| &*d.endpoint == "gone" && d.reason == FailureReason::EndpointDisabled)
    );
    assert!(
        dead.iter()
            .any(|d| &*d.endpoint == "picky" && matches!(d.reason, FailureReason::Aborted { .. }))
    );
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test]
async fn exhausted_retries_go_to_the_dead_letter_hook() -> Result<(), BoxError> {
    let server = Server::start(|_, _| Reply::status(503)).await?;
    let (dead, hook) = collect_dead_letters();
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .dead_letter(hook)
        .endpoint(
            EndpointConfig::builder("down", Endpoint::builder(server.url("/in")).build()?)
                .batching(batching(Encoding::JsonArray, ms(5), 10)?)
                .retry(retry(3, ms(10))?)
                .build()?,
        )
        .build()?;
    let mut lifecycle = sender.lifecycle();
    let receipts = vec![sender.send(event(1)?).await?, sender.send(event(2)?).await?];
    for r in all(receipts).await {
        assert_eq!(
            r.outcome("down"),
            Some(&Outcome::Failed {
                reason: FailureReason::RetriesExhausted {
                    attempts: 3,
                    last: AttemptError::Status(StatusCode::SERVICE_UNAVAILABLE)
                }
            })
        );
    }
    assert_eq!(server.requests(), 3);
    let dead = dead.lock().unwrap().clone();
    assert_eq!(dead.len(), 1);
    let ids: Vec<&str> = dead[0].events.iter().map(Event::id).collect();
    assert_eq!(ids, ["evt_1", "evt_2"]);
    let mut saw = (false, false);
    while let Ok(ev) = lifecycle.try_recv() {
        match ev {
            LifecycleEvent::Failing { .. } => saw.0 = true,
            LifecycleEvent::Exhausted { events, .. } => saw.1 = events == 2,
            _ => {}
        }
    }
    assert_eq!(saw, (true, true));
    assert_eq!(
        sender
            .endpoint_health("down")
            .ok_or("missing")?
            .counters
            .failed,
        2
    );
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}

/// An endpoint that holds requests for a long time, so everything queues up behind one batch.
async fn stuck_sender(policy: OverflowPolicy, server: &Server) -> Result<Sender, BoxError> {
    Ok(Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(
            EndpointConfig::builder("stuck", Endpoint::builder(server.url("/in")).build()?)
                .batching(
                    BatcherConfig::builder()
                        .linger(Duration::ZERO)
                        .max_events(1)
                        .buffer_limits(1, 1 << 20)
                        .build()?,
                )
                .concurrency(Concurrency::Fixed(1))
                .queue(3, policy)
                .build()?,
        )
        .build()?)
}

#[tokio::test]
async fn drop_policies_count_and_report_drops_and_shutdown_returns_the_rest() -> Result<(), BoxError>
{
    let server = Server::start(|_, _| Reply::Slow(Duration::from_secs(3), StatusCode::OK)).await?;
    for policy in [OverflowPolicy::DropNewest, OverflowPolicy::DropOldest] {
        let sender = stuck_sender(policy, &server).await?;
        let mut lifecycle = sender.lifecycle();
        let mut receipts = Vec::new();
        // One in flight, one in the batcher, three queued: wait until the first is out.
        receipts.push(sender.send(event(0)?).await?);
        tokio::time::timeout(Duration::from_secs(2), async {
            while sender
                .endpoint_health("stuck")
                .is_some_and(|h| h.in_flight == 0)
            {
                tokio::time::sleep(ms(5)).await;
            }
        })
        .await?;
        for i in 1..20 {
            // try_send never waits; the drop policies make room or drop.
            receipts.push(sender.try_send(event(i)?)?);
        }
        let report = sender.shutdown(ms(200)).await;
        let reports = all(receipts).await;
        let dropped: Vec<usize> = reports
            .iter()
            .enumerate()
            .filter(|(_, r)| r.outcome("stuck") == Some(&Outcome::Dropped))
            .map(|(i, _)| i)
            .collect();
        let health = sender.endpoint_health("stuck").ok_or("missing")?;
        assert_eq!(health.counters.dropped, dropped.len() as u64, "{policy:?}");
        assert!(dropped.len() >= 14, "{policy:?}: {dropped:?}");
        match policy {
            OverflowPolicy::DropNewest => assert!(dropped.iter().all(|&i| i >= 3), "{dropped:?}"),
            _ => assert!(dropped.iter().all(|&i| i <= 16), "{dropped:?}"),
        }
        let mut broadcast = 0;
        while let Ok(ev) = lifecycle.try_recv() {
            broadcast += usize::from(matches!(ev, LifecycleEvent::Dropped { .. }));
        }
        assert_eq!(broadcast, dropped.len());
        // Whatever was not dropped comes back from shutdown, and its receipt says so.
        let returned: HashSet<String> = report
            .undelivered
            .iter()
            .flat_map(|u| u.events.iter().map(|e| e.id().to_owned()))
            .collect();
        assert_eq!(
            returned.len() + dropped.len(),
            20,
            "{policy:?}: {returned:?}"
        );
        assert!(
            report
                .undelivered
                .iter()
                .any(|u| u.stage == UndeliveredStage::InFlight)
        );
        for (i, r) in reports.iter().enumerate() {
            if !dropped.contains(&i) {
                assert!(returned.contains(&format!("evt_{i}")));
                assert_eq!(
                    r.outcome("stuck"),
                    Some(&Outcome::Failed {
                        reason: FailureReason::Shutdown
                    })
                );
            }
        }
        assert!(matches!(
            sender.send(event(99)?).await,
            Err(SendError::Closed(_))
        ));
    }
    Ok(())
}

#[tokio::test]
async fn block_policy_waits_and_try_send_reports_full() -> Result<(), BoxError> {
    let release = Arc::new(AtomicUsize::new(0));
    let r = release.clone();
    let server = Server::start(move |_, _| {
        if r.load(Ordering::SeqCst) == 0 {
            Reply::Slow(ms(300), StatusCode::OK)
        } else {
            Reply::ok()
        }
    })
    .await?;
    let sender = stuck_sender(OverflowPolicy::Block, &server).await?;
    let mut receipts = vec![sender.send(event(0)?).await?];
    tokio::time::timeout(Duration::from_secs(2), async {
        while sender
            .endpoint_health("stuck")
            .is_some_and(|h| h.in_flight == 0)
        {
            tokio::time::sleep(ms(5)).await;
        }
    })
    .await?;
    let mut full = None;
    for i in 1..10 {
        match sender.try_send(event(i)?) {
            Ok(r) => receipts.push(r),
            Err(SendError::Full(e)) => {
                full = Some(e);
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let full = full.ok_or("try_send never reported a full queue")?;
    release.store(1, Ordering::SeqCst);
    // `send` waits for room instead.
    receipts.push(sender.send(full).await?);
    for r in all(receipts).await {
        assert!(r.is_delivered(), "{r:?}");
    }
    assert_eq!(
        sender
            .endpoint_health("stuck")
            .ok_or("missing")?
            .counters
            .dropped,
        0
    );
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}

/// A batch still lingering when shutdown begins is sealed and sent at once, and shutdown
/// returns as soon as it is answered. (The driver used to close its queue on every round once
/// shutting down; the close woke the driver itself, which then spun without yielding, and the
/// attempt it had spawned, waiting in the worker's LIFO slot, never ran: shutdown waited for
/// its deadline and reported the batch undelivered.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lingering_batch_is_sent_at_shutdown_without_waiting_for_the_deadline()
-> Result<(), BoxError> {
    let server = Server::start(|_, _| Reply::ok()).await?;
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(
            EndpointConfig::builder("hooks", Endpoint::builder(server.url("/in")).build()?)
                .batching(batching(
                    Encoding::JsonArray,
                    Duration::from_secs(30),
                    1000,
                )?)
                .build()?,
        )
        .build()?;
    let mut receipts = Vec::new();
    for i in 0..100 {
        receipts.push(sender.send(event(i)?).await?);
    }
    tokio::time::sleep(ms(50)).await;
    assert_eq!(server.requests(), 0, "lingering");
    let started = tokio::time::Instant::now();
    let report = sender.shutdown(Duration::from_secs(10)).await;
    assert!(
        report.is_clean(),
        "{} undelivered",
        report.undelivered_events()
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "sent at once, not at the deadline: {:?}",
        started.elapsed()
    );
    assert_eq!(server.requests(), 1);
    assert_eq!(server.seen()[0].event_ids().len(), 100);
    for r in all(receipts).await {
        assert!(r.is_delivered());
    }
    Ok(())
}

#[tokio::test]
async fn shutdown_returns_events_waiting_for_a_retry() -> Result<(), BoxError> {
    let server = Server::start(|_, _| Reply::status(503)).await?;
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(
            EndpointConfig::builder("down", Endpoint::builder(server.url("/in")).build()?)
                .batching(batching(Encoding::JsonArray, ms(1), 100)?)
                .retry(retry(10, Duration::from_secs(5))?)
                .build()?,
        )
        .build()?;
    let receipt = sender.send(event(1)?).await?;
    tokio::time::timeout(Duration::from_secs(2), async {
        while sender
            .endpoint_health("down")
            .is_some_and(|h| h.retrying == 0)
        {
            tokio::time::sleep(ms(5)).await;
        }
    })
    .await?;
    let started = tokio::time::Instant::now();
    let report = sender.shutdown(Duration::from_secs(2)).await;
    assert!(
        started.elapsed() < ms(500),
        "a retry due after the deadline is returned at once"
    );
    assert_eq!(report.undelivered_events(), 1);
    assert_eq!(
        report.undelivered[0].stage,
        UndeliveredStage::RetryPending {
            last: AttemptError::Status(StatusCode::SERVICE_UNAVAILABLE)
        }
    );
    assert_eq!(
        receipt.await.outcome("down"),
        Some(&Outcome::Failed {
            reason: FailureReason::Shutdown
        })
    );
    Ok(())
}

#[tokio::test]
async fn batches_awaiting_retries_count_against_the_buffer_limits() -> Result<(), BoxError> {
    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let u = up.clone();
    let server = Server::start(move |_, _| {
        if u.load(Ordering::SeqCst) {
            Reply::ok()
        } else {
            Reply::status(503)
        }
    })
    .await?;
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(
            EndpointConfig::builder(
                "down",
                Endpoint::builder(server.url("/in"))
                    .encoding(Encoding::Ndjson)
                    .build()?,
            )
            .batching(
                BatcherConfig::builder()
                    .encoding(Encoding::Ndjson)
                    .linger(ms(1))
                    .max_events(10)
                    .buffer_limits(20, 1 << 20)
                    .build()?,
            )
            .retry(retry(1000, ms(20))?)
            .queue(30, OverflowPolicy::DropOldest)
            .build()?,
        )
        .build()?;
    let mut receipts = Vec::new();
    for i in 0..200 {
        receipts.push(sender.try_send(event(i)?)?);
        if i % 10 == 9 {
            tokio::time::sleep(ms(5)).await;
        }
    }
    tokio::time::sleep(ms(100)).await;
    let h = sender.endpoint_health("down").ok_or("endpoint")?;
    // Held: at most 20 events in batches out for delivery or retry, plus the batcher's; the
    // rest waits in the queue (30) or was dropped by its policy, counted.
    assert!(
        (h.retrying + h.in_flight) * 10 <= 20,
        "batches held beyond the buffer limits: {h:?}"
    );
    assert_eq!(h.queued, 30);
    assert!(h.counters.dropped > 0, "{h:?}");
    up.store(true, Ordering::SeqCst);
    let reports = all(receipts).await;
    let delivered = reports.iter().filter(|r| r.is_delivered()).count();
    let dropped = reports
        .iter()
        .filter(|r| r.outcome("down") == Some(&Outcome::Dropped))
        .count();
    assert_eq!(delivered + dropped, 200);
    assert_eq!(
        dropped as u64,
        sender
            .endpoint_health("down")
            .ok_or("endpoint")?
            .counters
            .dropped
    );
    assert!(
        dropped >= 200 - 30 - 20 - 10,
        "only the bounded part was kept: {dropped}"
    );
    // A released body is encoded again for its retry: every delivered event is in a body, and
    // every body is well-formed NDJSON.
    let mut ids = HashSet::new();
    for seen in server.seen() {
        for line in seen.body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line)?;
            ids.insert(v["id"].as_str().ok_or("id")?.to_owned());
        }
    }
    for (i, r) in reports.iter().enumerate() {
        if r.is_delivered() {
            assert!(ids.contains(&format!("evt_{i}")), "evt_{i} delivered");
        }
    }
    Ok(())
}

#[tokio::test]
async fn oauth2_token_is_fetched_once_reused_and_refreshed_once_on_401() -> Result<(), BoxError> {
    let issued = Arc::new(AtomicUsize::new(0));
    let deliveries = Arc::new(AtomicUsize::new(0));
    let (i2, d2) = (issued.clone(), deliveries.clone());
    let server = Server::start(move |_, seen| {
        if seen.path == "/token" {
            let n = i2.fetch_add(1, Ordering::SeqCst) + 1;
            let body = serde_json::json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600});
            return Reply::Status(StatusCode::OK, vec![("content-type", "application/json".into())], body.to_string());
        }
        // The first token is revoked after three deliveries.
        let current = format!("Bearer tok-{}", i2.load(Ordering::SeqCst));
        let n = d2.fetch_add(1, Ordering::SeqCst);
        match seen.header("authorization") {
            Some(a) if a == current && !(n >= 3 && a == "Bearer tok-1") => Reply::ok(),
            _ => Reply::status(401),
        }
    })
    .await?;
    let t = transport(Duration::from_secs(5))?;
    let tokens = TokenProvider::builder(ClientCredentialsSource::new(
        server.url("/token"),
        "client",
        "secret",
    ))
    .build(t.clone())?;
    let sender = Sender::builder()
        .transport(t)
        .endpoint(
            EndpointConfig::builder("oauth", Endpoint::builder(server.url("/in")).build()?)
                .batching(batching(Encoding::JsonArray, ms(1), 1)?)
                .concurrency(Concurrency::Fixed(1))
                .retry(retry(3, Duration::from_secs(5))?)
                .token_provider(tokens.clone())
                .build()?,
        )
        .build()?;
    for i in 0..6 {
        let report = sender.send(event(i)?).await?.await;
        assert!(
            matches!(
                report.outcome("oauth"),
                Some(Outcome::Delivered { attempts: 1, .. })
            ),
            "event {i}: the 401 is retried at once with a fresh token, not counted: {report:?}"
        );
    }
    assert_eq!(tokens.fetch_count(), 2, "fetched once, refreshed once");
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    let h = sender.endpoint_health("oauth").ok_or("missing")?;
    assert_eq!(h.counters.retries, 0);
    assert_eq!(h.state, HealthState::Healthy);
    assert_eq!(h.counters.requests, 7, "six deliveries and one resend");
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test]
async fn test_integration_reports_status_latency_and_response() -> Result<(), BoxError> {
    let server = Server::start(|_, seen| match seen.path.as_str() {
        "/ok" => Reply::Status(
            StatusCode::OK,
            vec![("x-reply", "yes".into())],
            "x".repeat(10_000),
        ),
        _ => Reply::status(503),
    })
    .await?;
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(
            EndpointConfig::builder(
                "ok",
                Endpoint::builder(server.url("/ok"))
                    .auth(SenderAuth::signature(CoreSecret::from_whsec(WHSEC)?)?)
                    .build()?,
            )
            .build()?,
        )
        .endpoint(
            EndpointConfig::builder("down", Endpoint::builder(server.url("/down")).build()?)
                .build()?,
        )
        .build()?;
    let ok = sender.test_integration("ok").await?;
    assert!(ok.is_success());
    assert_eq!(
        ok.headers.get("x-reply").map(|v| v.as_bytes()),
        Some(&b"yes"[..])
    );
    assert_eq!(ok.body.len(), webhook_sender::sender::TEST_BODY_LIMIT);
    assert!(ok.body_truncated);
    assert!(ok.latency < Duration::from_secs(5));
    let down = sender.test_integration("down").await?;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!down.is_success());
    assert!(matches!(
        sender.test_integration("nope").await,
        Err(webhook_sender::TestIntegrationError::UnknownEndpoint(_))
    ));
    let seen = server.seen();
    let test = seen
        .iter()
        .find(|s| s.path == "/ok")
        .ok_or("no test request")?;
    assert!(
        test.header("webhook-signature").is_some(),
        "signed like real deliveries"
    );
    let body: Vec<serde_json::Value> = serde_json::from_slice(&test.body)?;
    assert_eq!(body[0]["type"], "webhook.test");
    // A test does not touch health.
    assert_eq!(
        sender.endpoint_health("down").ok_or("missing")?.state,
        HealthState::Healthy
    );
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test]
async fn health_turns_failed_then_recovers() -> Result<(), BoxError> {
    let up = Arc::new(AtomicUsize::new(0));
    let u = up.clone();
    let server = Server::start(move |_, _| {
        if u.load(Ordering::SeqCst) == 1 {
            Reply::ok()
        } else {
            Reply::status(503)
        }
    })
    .await?;
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(
            EndpointConfig::builder("flappy", Endpoint::builder(server.url("/in")).build()?)
                .batching(batching(Encoding::JsonArray, ms(1), 10)?)
                .retry(retry(100, ms(50))?)
                .health(HealthConfig::default().failed_after(ms(300)))
                .build()?,
        )
        .build()?;
    let mut lifecycle = sender.lifecycle();
    let receipt = sender.send(event(1)?).await?;
    let failed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match lifecycle.recv().await {
                Ok(LifecycleEvent::Failed { .. }) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await?;
    assert!(failed);
    let h = sender.endpoint_health("flappy").ok_or("missing")?;
    assert!(matches!(h.state, HealthState::Failed { .. }), "{h:?}");
    assert!(h.retrying == 1 || h.in_flight == 1);
    up.store(1, Ordering::SeqCst);
    let report = receipt.await;
    assert!(report.is_delivered());
    let recovered = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Ok(LifecycleEvent::Recovered { after, .. }) = lifecycle.recv().await {
                return after >= ms(300);
            }
        }
    })
    .await?;
    assert!(recovered);
    assert_eq!(
        sender.endpoint_health("flappy").ok_or("missing")?.state,
        HealthState::Healthy
    );
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test]
async fn builder_errors_are_typed() -> Result<(), BoxError> {
    // No endpoint is fine: they are added at runtime.
    let empty = Sender::builder().build()?;
    assert!(empty.endpoints().is_empty());
    assert!(matches!(
        Sender::builder().park_after(Duration::ZERO).build(),
        Err(webhook_sender::SenderBuildError::InvalidSetting(_))
    ));
    let ep = Endpoint::builder("http://127.0.0.1:9/in").build()?;
    let mismatch = EndpointConfig::builder("e", ep.clone())
        .batching(
            BatcherConfig::builder()
                .encoding(Encoding::Ndjson)
                .build()?,
        )
        .build();
    assert!(matches!(
        mismatch,
        Err(webhook_sender::EndpointConfigError::EncodingMismatch { .. })
    ));
    assert!(
        EndpointConfig::builder("e", ep.clone())
            .concurrency(Concurrency::Fixed(0))
            .build()
            .is_err()
    );
    assert!(EndpointConfig::builder("", ep.clone()).build().is_err());
    let dup = Sender::builder()
        .transport(transport(Duration::from_secs(1))?)
        .endpoint(EndpointConfig::builder("e", ep.clone()).build()?)
        .endpoint(EndpointConfig::builder("e", ep).build()?)
        .build();
    assert!(matches!(
        dup,
        Err(webhook_sender::SenderBuildError::DuplicateEndpoint(_))
    ));
    Ok(())
}

#[cfg(feature = "gzip")]
#[tokio::test]
async fn gzip_endpoints_send_compressed_batches() -> Result<(), BoxError> {
    let server = Server::start(|_, _| Reply::ok()).await?;
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(
            EndpointConfig::builder(
                "gz",
                Endpoint::builder(server.url("/gz"))
                    .encoding(Encoding::Ndjson)
                    .gzip(Some(6))
                    .build()?,
            )
            .batching(batching(Encoding::Ndjson, ms(20), 100)?)
            .build()?,
        )
        .build()?;
    let mut receipts = Vec::new();
    for i in 0..20 {
        receipts.push(sender.send(event(i)?).await?);
    }
    for r in all(receipts).await {
        assert!(r.is_delivered());
    }
    let seen = server.seen();
    assert!(!seen.is_empty());
    for s in &seen {
        assert_eq!(s.header("content-encoding"), Some("gzip"));
        assert_eq!(s.header("content-type"), Some("application/x-ndjson"));
        assert!(s.body.starts_with(&[0x1f, 0x8b]), "gzip magic");
    }
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}
