//! Re-enabling a disabled endpoint with `Sender::enable` against a real receiver on 127.0.0.1:
//! a 410 disables, the receiver is fixed, `enable` re-opens; typed errors; shutdown after it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use http::StatusCode;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::TryRecvError;
use webhook_core::Encoding;
use webhook_core::Endpoint;
use webhook_core::HealthState;
use webhook_sender::{
    AttemptError, DisableReason, EnableError, EndpointConfig, FailureReason, LifecycleEvent,
    Outcome, Sender, UndeliveredStage,
};

use super::server::{BoxError, Reply, Server};
use super::{batching, collect_dead_letters, event, ms, retry, transport};

const GONE: u8 = 0;
const FIXED: u8 = 1;
const DOWN: u8 = 2;

/// A receiver whose answer on `/in` is switched by the test: 410, 200 or 503.
async fn switchable(mode: &Arc<AtomicU8>) -> Result<Server, BoxError> {
    let mode = mode.clone();
    Server::start(move |_, _| match mode.load(Ordering::SeqCst) {
        GONE => Reply::status(410),
        FIXED => Reply::ok(),
        _ => Reply::status(503),
    })
    .await
}

fn disabled_or_enabled(rx: &mut broadcast::Receiver<LifecycleEvent>) -> Vec<&'static str> {
    let mut seen = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(LifecycleEvent::Disabled {
                endpoint,
                reason: DisableReason::Receiver { status },
            }) if &*endpoint == "hooks" && status == StatusCode::GONE => seen.push("disabled"),
            Ok(LifecycleEvent::Enabled { endpoint }) if &*endpoint == "hooks" => {
                seen.push("enabled");
            }
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
            Err(_) => return seen,
        }
    }
}

fn disabled() -> Outcome {
    Outcome::Failed {
        reason: FailureReason::EndpointDisabled,
    }
}

#[tokio::test]
async fn gone_disables_then_enable_delivers_new_events_again() -> Result<(), BoxError> {
    let mode = Arc::new(AtomicU8::new(GONE));
    let server = switchable(&mode).await?;
    let (dead, hook) = collect_dead_letters();
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .dead_letter(hook)
        .endpoint(
            EndpointConfig::builder("hooks", Endpoint::builder(server.url("/in")).build()?)
                .batching(batching(Encoding::JsonArray, ms(1), 1)?)
                .retry(retry(5, ms(10))?)
                .build()?,
        )
        .build()?;
    let mut lifecycle = sender.lifecycle();

    // The receiver answers 410: the endpoint is disabled, the event fails, later ones too.
    let first = sender.send(event(1)?).await?.await;
    assert_eq!(first.outcome("hooks"), Some(&disabled()));
    let second = sender.send(event(2)?).await?.await;
    assert_eq!(second.outcome("hooks"), Some(&disabled()));
    let h = sender.endpoint_health("hooks").ok_or("missing")?;
    assert!(matches!(h.state, HealthState::Disabled { .. }), "{h:?}");

    // The owner fixes the receiver and re-enables the endpoint: healthy at once.
    mode.store(FIXED, Ordering::SeqCst);
    sender.enable("hooks")?;
    let h = sender.endpoint_health("hooks").ok_or("missing")?;
    assert_eq!(h.state, HealthState::Healthy);
    assert_eq!(
        sender.health().first().map(|h| h.state),
        Some(HealthState::Healthy)
    );
    assert_eq!(disabled_or_enabled(&mut lifecycle), ["disabled", "enabled"]);

    // New events are delivered.
    let mut receipts = Vec::new();
    for i in 3..6 {
        receipts.push(sender.send(event(i)?).await?);
    }
    for r in receipts {
        let report = tokio::time::timeout(Duration::from_secs(10), r).await?;
        assert!(
            matches!(
                report.outcome("hooks"),
                Some(Outcome::Delivered { attempts: 1, status }) if *status == StatusCode::OK
            ),
            "{report:?}"
        );
    }
    let seen: Vec<String> = server.seen().iter().flat_map(|s| s.event_ids()).collect();
    assert_eq!(
        seen,
        ["evt_1", "evt_3", "evt_4", "evt_5"],
        "one 410 attempt; the events failed while disabled are not resurrected"
    );
    let h = sender.endpoint_health("hooks").ok_or("missing")?;
    assert_eq!(h.state, HealthState::Healthy);
    assert_eq!((h.counters.delivered, h.counters.failed), (3, 2));
    let dead = dead.lock().map(|d| d.clone()).unwrap_or_default();
    assert!(
        dead.iter()
            .any(|d| d.reason == FailureReason::EndpointDisabled
                && d.events.iter().any(|e| e.id() == "evt_1"))
    );

    // Enabling an enabled endpoint is an idempotent no-op: Ok, nothing broadcast.
    sender.enable("hooks")?;
    assert!(disabled_or_enabled(&mut lifecycle).is_empty());
    assert_eq!(
        sender.endpoint_health("hooks").map(|h| h.state),
        Some(HealthState::Healthy)
    );

    // The cycle repeats: a second 410 disables it again, a second enable re-opens it.
    mode.store(GONE, Ordering::SeqCst);
    let again = sender.send(event(6)?).await?.await;
    assert_eq!(again.outcome("hooks"), Some(&disabled()));
    mode.store(FIXED, Ordering::SeqCst);
    sender.enable("hooks")?;
    let last = sender.send(event(7)?).await?.await;
    assert!(
        last.outcome("hooks").is_some_and(Outcome::is_delivered),
        "{last:?}"
    );
    assert_eq!(disabled_or_enabled(&mut lifecycle), ["disabled", "enabled"]);

    let report = sender.shutdown(Duration::from_secs(1)).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(sender.enable("hooks"), Err(EnableError::ShutDown));
    Ok(())
}

#[tokio::test]
async fn enable_errors_and_shutdown_after_a_re_enable_returns_the_undelivered()
-> Result<(), BoxError> {
    let mode = Arc::new(AtomicU8::new(GONE));
    let server = switchable(&mode).await?;
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(
            EndpointConfig::builder("hooks", Endpoint::builder(server.url("/in")).build()?)
                .batching(batching(Encoding::JsonArray, ms(1), 1)?)
                .retry(retry(10, Duration::from_secs(5))?)
                .build()?,
        )
        .build()?;
    let err = sender
        .enable("nope")
        .err()
        .ok_or("unknown endpoint accepted")?;
    assert_eq!(err, EnableError::UnknownEndpoint("nope".into()));
    assert_eq!(err.to_string(), r#"no endpoint named "nope""#);

    let first = sender.send(event(1)?).await?.await;
    assert_eq!(first.outcome("hooks"), Some(&disabled()));
    sender.enable("hooks")?;

    // After the re-enable the receiver is down: the event waits for a retry, and shutdown
    // returns it.
    mode.store(DOWN, Ordering::SeqCst);
    let receipt = sender.send(event(2)?).await?;
    tokio::time::timeout(Duration::from_secs(5), async {
        while sender
            .endpoint_health("hooks")
            .is_some_and(|h| h.retrying == 0)
        {
            tokio::time::sleep(ms(5)).await;
        }
    })
    .await?;
    let h = sender.endpoint_health("hooks").ok_or("missing")?;
    assert!(matches!(h.state, HealthState::Failing { .. }), "{h:?}");
    let report = tokio::time::timeout(
        Duration::from_secs(5),
        sender.shutdown(Duration::from_secs(1)),
    )
    .await?;
    assert_eq!(report.undelivered_events(), 1);
    let undelivered = report.undelivered.first().ok_or("no undelivered")?;
    assert_eq!(&*undelivered.endpoint, "hooks");
    assert_eq!(
        undelivered.events.first().map(|e| e.id().to_owned()),
        Some("evt_2".to_owned())
    );
    assert_eq!(
        undelivered.stage,
        UndeliveredStage::RetryPending {
            last: AttemptError::Status(StatusCode::SERVICE_UNAVAILABLE)
        }
    );
    assert_eq!(
        receipt.await.outcome("hooks"),
        Some(&Outcome::Failed {
            reason: FailureReason::Shutdown
        })
    );

    // After shutdown: the typed error, for a known endpoint; unknown names still say so.
    let err = sender
        .enable("hooks")
        .err()
        .ok_or("enabled after shutdown")?;
    assert_eq!(err, EnableError::ShutDown);
    assert_eq!(
        sender.enable("nope"),
        Err(EnableError::UnknownEndpoint("nope".into()))
    );
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test]
async fn a_disabled_endpoint_shuts_down_cleanly_without_enable() -> Result<(), BoxError> {
    // Its driver task stays parked while disabled; shutdown still ends it at once.
    let mode = Arc::new(AtomicU8::new(GONE));
    let server = switchable(&mode).await?;
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(
            EndpointConfig::builder("hooks", Endpoint::builder(server.url("/in")).build()?)
                .batching(batching(Encoding::JsonArray, ms(1), 1)?)
                .build()?,
        )
        .build()?;
    let first = sender.send(event(1)?).await?.await;
    assert_eq!(first.outcome("hooks"), Some(&disabled()));
    let started = tokio::time::Instant::now();
    let report = sender.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no wait for the deadline"
    );
    assert_eq!(sender.enable("hooks"), Err(EnableError::ShutDown));
    Ok(())
}
