//! Deterministic driver tests on tokio's paused clock with an in-process transport: linger,
//! retry schedule, rate limit and circuit breaker timings asserted to the millisecond.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use tokio::time::Instant;
use webhook_core::Encoding;
use webhook_core::Endpoint;
use webhook_core::{BatcherConfig, BreakerConfig, Event, RetryPolicy, Secret, SenderAuth};
use webhook_sender::transport::{Response, ResponseFuture, SharedTransport, Transport};
use webhook_sender::{Concurrency, EndpointConfig, Outcome, RateLimit, Sender};

use super::server::BoxError;

/// Answers every request at once with the next scripted status (the last one repeats) and
/// records when each request arrived.
#[derive(Debug)]
struct Scripted {
    statuses: Vec<u16>,
    log: Mutex<Vec<(Instant, Option<String>)>>,
    bodies: Mutex<Vec<Bytes>>,
}

impl Scripted {
    fn new(statuses: &[u16]) -> Arc<Self> {
        Arc::new(Self {
            statuses: statuses.to_vec(),
            log: Mutex::new(Vec::new()),
            bodies: Mutex::new(Vec::new()),
        })
    }

    fn times(&self, t0: Instant) -> Vec<Duration> {
        self.log
            .lock()
            .map(|l| l.iter().map(|(t, _)| *t - t0).collect())
            .unwrap_or_default()
    }

    fn ids(&self) -> Vec<Option<String>> {
        self.log
            .lock()
            .map(|l| l.iter().map(|(_, id)| id.clone()).collect())
            .unwrap_or_default()
    }
}

impl Transport for Scripted {
    fn send(&self, request: http::Request<Bytes>) -> ResponseFuture {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let n = log.len();
        let id = request
            .headers()
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        log.push((Instant::now(), id));
        if let Ok(mut b) = self.bodies.lock() {
            b.push(request.body().clone());
        }
        let code = self
            .statuses
            .get(n)
            .or(self.statuses.last())
            .copied()
            .unwrap_or(200);
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
        Box::pin(async move { Ok(Response::new(status, HeaderMap::new(), Bytes::new())) })
    }
}

fn ev(i: usize) -> Result<Event, BoxError> {
    Ok(Event::builder(format!("e{i}"), "t").json_bytes(format!("{{\"id\":\"e{i}\"}}"))?)
}

fn config(
    name: &str,
    linger: Duration,
    max_events: usize,
    retry: RetryPolicy,
) -> Result<webhook_sender::EndpointConfigBuilder, BoxError> {
    let auth = SenderAuth::signature(Secret::from_whsec(super::WHSEC)?)?;
    Ok(EndpointConfig::builder(
        name,
        Endpoint::builder("http://127.0.0.1:1/in")
            .auth(auth)
            .build()?,
    )
    .batching(
        BatcherConfig::builder()
            .encoding(Encoding::JsonArray)
            .linger(linger)
            .max_events(max_events)
            .build()?,
    )
    .retry(retry)
    .jitter_seed(1))
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test(start_paused = true)]
async fn flushed_at_linger_and_retried_on_schedule() -> Result<(), BoxError> {
    let transport = Scripted::new(&[503, 503, 200]);
    let shared: SharedTransport = transport.clone();
    let retry = RetryPolicy::builder()
        .fixed(vec![Duration::ZERO, secs(5), secs(30)], 0)
        .build()?;
    let sender = Sender::builder()
        .transport(shared)
        .endpoint(config("e", secs(1), 100, retry)?.build()?)
        .build()?;
    let t0 = Instant::now();
    let receipts = vec![sender.send(ev(1)?).await?, sender.send(ev(2)?).await?];
    for r in receipts {
        assert!(matches!(
            r.await.outcome("e"),
            Some(Outcome::Delivered { attempts: 3, .. })
        ));
    }
    assert_eq!(transport.times(t0), [secs(1), secs(6), secs(36)]);
    let ids = transport.ids();
    assert!(
        ids.iter().all(|id| id.is_some() && *id == ids[0]),
        "one webhook-id across retries"
    );
    assert!(sender.shutdown(secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn rate_limit_spaces_requests() -> Result<(), BoxError> {
    let transport = Scripted::new(&[200]);
    let shared: SharedTransport = transport.clone();
    let sender = Sender::builder()
        .transport(shared)
        .endpoint(
            config("e", Duration::ZERO, 1, RetryPolicy::svix())?
                .rate_limit(RateLimit::new(2, secs(1)).with_burst(1))
                .concurrency(Concurrency::Fixed(8))
                .build()?,
        )
        .build()?;
    let t0 = Instant::now();
    let mut receipts = Vec::new();
    for i in 0..4 {
        receipts.push(sender.send(ev(i)?).await?);
    }
    for r in receipts {
        assert!(r.await.is_delivered());
    }
    let ms = Duration::from_millis;
    assert_eq!(transport.times(t0), [ms(0), ms(500), ms(1000), ms(1500)]);
    assert!(sender.shutdown(secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn open_breaker_holds_requests_for_the_cool_down() -> Result<(), BoxError> {
    let transport = Scripted::new(&[503, 503, 200]);
    let shared: SharedTransport = transport.clone();
    let retry = RetryPolicy::builder()
        .fixed(vec![Duration::ZERO, secs(1), secs(1)], 0)
        .build()?;
    let breaker = BreakerConfig::new(secs(60), 2, 50, secs(10), 1)?;
    let sender = Sender::builder()
        .transport(shared)
        .endpoint(
            config("e", Duration::ZERO, 1, retry)?
                .breaker(breaker)
                .build()?,
        )
        .build()?;
    let t0 = Instant::now();
    let report = sender.send(ev(1)?).await?.await;
    assert!(matches!(
        report.outcome("e"),
        Some(Outcome::Delivered { attempts: 3, .. })
    ));
    // Attempt 2 at 1 s trips the breaker (2 of 2 failed); attempt 3 is due at 2 s but waits
    // for the half-open probe at 1 s + 10 s.
    assert_eq!(transport.times(t0), [secs(0), secs(1), secs(11)]);
    assert!(sender.shutdown(secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn health_window_disables_the_endpoint() -> Result<(), BoxError> {
    use webhook_core::{HealthConfig, HealthState};
    use webhook_sender::{DisableReason, FailureReason, LifecycleEvent};

    let transport = Scripted::new(&[503]);
    let shared: SharedTransport = transport.clone();
    let mut delays = vec![Duration::ZERO];
    delays.extend(std::iter::repeat_n(secs(1), 20));
    let retry = RetryPolicy::builder().fixed(delays, 0).build()?;
    let sender = Sender::builder()
        .transport(shared)
        .endpoint(
            config("e", Duration::ZERO, 10, retry)?
                .health(
                    HealthConfig::default()
                        .failed_after(secs(3))
                        .disable_after(Some(secs(5))),
                )
                .build()?,
        )
        .build()?;
    let mut lifecycle = sender.lifecycle();
    let t0 = Instant::now();
    let report = sender.send(ev(1)?).await?.await;
    assert_eq!(
        report.outcome("e"),
        Some(&Outcome::Failed {
            reason: FailureReason::EndpointDisabled
        })
    );
    // Failing at 0 s, failed at 3 s, disabled at 5 s, before the retry due then.
    assert_eq!(
        transport.times(t0),
        [secs(0), secs(1), secs(2), secs(3), secs(4)]
    );
    let mut seen = Vec::new();
    while let Ok(ev) = lifecycle.try_recv() {
        match ev {
            LifecycleEvent::Failing { .. } => seen.push("failing"),
            LifecycleEvent::Failed { .. } => seen.push("failed"),
            LifecycleEvent::Disabled {
                reason: DisableReason::HealthWindow,
                ..
            } => seen.push("disabled"),
            LifecycleEvent::Exhausted { .. } => seen.push("exhausted"),
            _ => {}
        }
    }
    assert_eq!(seen, ["failing", "failed", "disabled", "exhausted"]);
    let h = sender.endpoint_health("e").ok_or("missing")?;
    assert!(matches!(h.state, HealthState::Disabled { .. }));
    let later = sender.send(ev(2)?).await?.await;
    assert_eq!(
        later.outcome("e"),
        Some(&Outcome::Failed {
            reason: FailureReason::EndpointDisabled
        })
    );
    assert!(sender.shutdown(secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn enable_after_the_health_window_restarts_the_windows() -> Result<(), BoxError> {
    use webhook_core::{HealthConfig, HealthState};
    use webhook_sender::{DisableReason, LifecycleEvent};

    // Five 503s disable it at 5 s (as above); after `enable` one more 503, then 200s.
    let transport = Scripted::new(&[503, 503, 503, 503, 503, 503, 200]);
    let shared: SharedTransport = transport.clone();
    let mut delays = vec![Duration::ZERO];
    delays.extend(std::iter::repeat_n(secs(1), 20));
    let retry = RetryPolicy::builder().fixed(delays, 0).build()?;
    let sender = Sender::builder()
        .transport(shared)
        .endpoint(
            config("e", Duration::ZERO, 10, retry)?
                .health(
                    HealthConfig::default()
                        .failed_after(secs(3))
                        .disable_after(Some(secs(5))),
                )
                .build()?,
        )
        .build()?;
    let mut lifecycle = sender.lifecycle();
    let t0 = Instant::now();
    let first = sender.send(ev(1)?).await?.await;
    assert!(!first.is_delivered());
    assert!(matches!(
        sender.endpoint_health("e").map(|h| h.state),
        Some(HealthState::Disabled { .. })
    ));

    // Parked while disabled: no request, no timer firing.
    tokio::time::sleep(secs(60)).await;
    assert_eq!(transport.times(t0).len(), 5);

    sender.enable("e")?;
    assert_eq!(
        sender.endpoint_health("e").map(|h| h.state),
        Some(HealthState::Healthy)
    );
    let t1 = Instant::now();
    let report = sender.send(ev(2)?).await?.await;
    // Without the reset, a failure 60 s after the first one would disable it at once; now the
    // 3 s / 5 s windows start again at this failure and the retry 1 s later succeeds.
    assert!(
        matches!(
            report.outcome("e"),
            Some(Outcome::Delivered { attempts: 2, .. })
        ),
        "{report:?}"
    );
    let times = transport.times(t0);
    assert_eq!(times.get(5..), Some(&[t1 - t0, t1 - t0 + secs(1)][..]));
    let mut seen = Vec::new();
    while let Ok(ev) = lifecycle.try_recv() {
        match ev {
            LifecycleEvent::Failing { .. } => seen.push("failing"),
            LifecycleEvent::Failed { .. } => seen.push("failed"),
            LifecycleEvent::Disabled {
                reason: DisableReason::HealthWindow,
                ..
            } => seen.push("disabled"),
            LifecycleEvent::Enabled { .. } => seen.push("enabled"),
            LifecycleEvent::Recovered { after, .. } => {
                assert_eq!(after, secs(1));
                seen.push("recovered");
            }
            _ => {}
        }
    }
    assert_eq!(
        seen,
        [
            "failing",
            "failed",
            "disabled",
            "enabled",
            "failing",
            "recovered"
        ]
    );
    let h = sender.endpoint_health("e").ok_or("missing")?;
    assert_eq!(h.state, HealthState::Healthy);
    assert_eq!((h.counters.delivered, h.counters.failed), (1, 1));
    assert!(sender.shutdown(secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn ordered_keys_wait_for_the_previous_batch() -> Result<(), BoxError> {
    let transport = Scripted::new(&[503, 200]);
    let shared: SharedTransport = transport.clone();
    let retry = RetryPolicy::builder()
        .fixed(vec![Duration::ZERO, secs(2)], 0)
        .build()?;
    let sender = Sender::builder()
        .transport(shared)
        .endpoint(
            config("e", Duration::ZERO, 1, retry)?
                .batching(
                    BatcherConfig::builder()
                        .linger(Duration::ZERO)
                        .max_events(1)
                        .partition_by_key(true)
                        .ordered(true)
                        .build()?,
                )
                .concurrency(Concurrency::Fixed(4))
                .build()?,
        )
        .build()?;
    let keyed = |i: usize, key: &str| -> Result<Event, BoxError> {
        Ok(Event::builder(format!("e{i}"), "t")
            .partition_key(key)
            .json_bytes(format!("{{\"id\":\"e{i}\"}}"))?)
    };
    let t0 = Instant::now();
    let a1 = sender.send(keyed(1, "a")?).await?;
    let a2 = sender.send(keyed(2, "a")?).await?;
    let b1 = sender.send(keyed(3, "b")?).await?;
    for r in [a1, a2, b1] {
        assert!(r.await.is_delivered());
    }
    let bodies: Vec<String> = transport
        .bodies
        .lock()
        .map(|b| {
            b.iter()
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .collect()
        })
        .unwrap_or_default();
    // e1 fails at 0 s and is retried at 2 s; e2 (same key) waits for it; e3 (key b) does not.
    assert_eq!(bodies.len(), 4);
    assert!(
        bodies[0].contains("e1") && bodies[1].contains("e3"),
        "{bodies:?}"
    );
    assert!(
        bodies[2].contains("e1") && bodies[3].contains("e2"),
        "{bodies:?}"
    );
    assert_eq!(transport.times(t0), [secs(0), secs(0), secs(2), secs(2)]);
    assert!(sender.shutdown(secs(1)).await.is_clean());
    Ok(())
}
