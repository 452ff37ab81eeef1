//! `Sender::try_send` across fan-out endpoints against real receivers on 127.0.0.1: all or
//! nothing for `Block` endpoints (a full one hands the event back, queued nowhere), the drop
//! policies applied as before next to a `Block` endpoint, and no event ever reaching only one
//! of two `Block` endpoints under concurrent senders while the drivers drain.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::StatusCode;
use tokio::sync::broadcast;
use webhook_core::BatcherConfig;
use webhook_core::Endpoint;
use webhook_sender::{
    Concurrency, EndpointConfig, EndpointHealth, LifecycleEvent, Outcome, OverflowPolicy,
    SendError, Sender,
};

use super::server::{BoxError, Reply, Server};
use super::{all, event, ms, transport};

/// One event per batch, one batch in the batcher, one request at a time: with a receiver that
/// holds requests, the queue of `capacity` fills after `capacity + 2` events.
fn endpoint(
    name: &str,
    server: &Server,
    capacity: usize,
    policy: OverflowPolicy,
) -> Result<EndpointConfig, BoxError> {
    Ok(
        EndpointConfig::builder(name, Endpoint::builder(server.url("/in")).build()?)
            .batching(
                BatcherConfig::builder()
                    .linger(Duration::ZERO)
                    .max_events(1)
                    .buffer_limits(1, 1 << 20)
                    .build()?,
            )
            .concurrency(Concurrency::Fixed(1))
            .queue(capacity, policy)
            .build()?,
    )
}

/// A receiver that holds every request for 2 s until `open`, then answers at once.
async fn gated(open: &Arc<AtomicBool>) -> Result<Server, BoxError> {
    let open = open.clone();
    Server::start(move |_, _| {
        if open.load(Ordering::SeqCst) {
            Reply::ok()
        } else {
            Reply::Slow(Duration::from_secs(2), StatusCode::OK)
        }
    })
    .await
}

fn health(sender: &Sender, name: &str) -> Result<EndpointHealth, BoxError> {
    Ok(sender.endpoint_health(name).ok_or("unknown endpoint")?)
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> Result<(), BoxError> {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !done() {
            tokio::time::sleep(ms(5)).await;
        }
    })
    .await
    .map_err(|_| format!("timed out waiting for {what}"))?;
    Ok(())
}

fn ids_seen(server: &Server) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for id in server.seen().iter().flat_map(|s| s.event_ids()) {
        *ids.entry(id).or_insert(0) += 1;
    }
    ids
}

fn drops(rx: &mut broadcast::Receiver<LifecycleEvent>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if let LifecycleEvent::Dropped { endpoint, event_id } = ev {
            out.push((endpoint.to_string(), event_id.to_string()));
        }
    }
    out
}

#[tokio::test]
async fn try_send_hands_the_event_back_when_a_later_block_endpoint_is_full() -> Result<(), BoxError>
{
    let first_rx = Server::start(|_, _| Reply::ok()).await?;
    let open = Arc::new(AtomicBool::new(false));
    let second_rx = gated(&open).await?;
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(endpoint("first", &first_rx, 2, OverflowPolicy::Block)?)
        .endpoint(endpoint("second", &second_rx, 2, OverflowPolicy::Block)?)
        .build()?;
    let mut lifecycle = sender.lifecycle();
    let mut receipts = vec![sender.send(event(0)?).await?];
    wait_for("the second endpoint's first request", || {
        sender
            .endpoint_health("second")
            .is_some_and(|h| h.in_flight == 1)
    })
    .await?;

    // The first endpoint always has room; the second fills: in flight, batcher, 2 queued.
    let mut full = None;
    for i in 1..20 {
        match sender.try_send(event(i)?) {
            Ok(r) => receipts.push(r),
            Err(SendError::Full(e)) => {
                full = Some(e);
                break;
            }
            Err(e) => return Err(e.into()),
        }
        // Lets the driver take what it takes (one chunk beyond its batcher) before the next.
        tokio::time::sleep(ms(20)).await;
    }
    let full = full.ok_or("try_send never reported a full queue")?;
    // Handed back intact: the very event that was offered.
    let full_id = format!("evt_{}", receipts.len());
    assert_eq!(full.id(), full_id);
    assert_eq!(full.body(), event(receipts.len())?.body());
    let accepted = receipts.len() as u64;
    assert!(accepted >= 3, "{accepted}");

    // The first endpoint delivers what it took and was offered nothing more.
    wait_for("the first endpoint to deliver what it took", || {
        sender
            .endpoint_health("first")
            .is_some_and(|h| h.counters.delivered == accepted)
    })
    .await?;
    tokio::time::sleep(ms(100)).await;
    let first = health(&sender, "first")?;
    assert_eq!((first.queued, first.buffered, first.in_flight), (0, 0, 0));
    assert_eq!(first.counters.delivered, accepted);
    assert_eq!((first.counters.dropped, first.counters.failed), (0, 0));
    let second = health(&sender, "second")?;
    assert_eq!(second.queued, 2);
    assert_eq!(second.counters.dropped, 0);

    // Still full: handed back again, and no endpoint's counters or queue moved.
    let full = match sender.try_send(full) {
        Err(SendError::Full(e)) => e,
        Err(e) => return Err(e.into()),
        Ok(_) => return Err("the second queue had room".into()),
    };
    let (first_after, second_after) = (health(&sender, "first")?, health(&sender, "second")?);
    assert_eq!(first_after.counters, first.counters);
    assert_eq!(first_after.queued, 0);
    assert_eq!(second_after.counters, second.counters);
    assert_eq!(second_after.queued, 2);
    assert!(!ids_seen(&first_rx).contains_key(&full_id));
    assert_eq!(drops(&mut lifecycle), Vec::new());

    // Once the second receiver answers, room is made and the same event goes to both.
    open.store(true, Ordering::SeqCst);
    let mut full = Some(full);
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = full.take() {
            match sender.try_send(e) {
                Ok(r) => receipts.push(r),
                Err(SendError::Full(e)) => {
                    full = Some(e);
                    tokio::time::sleep(ms(10)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await?;
    for r in all(receipts).await {
        assert!(r.is_delivered(), "{r:?}");
    }
    let (first_ids, second_ids) = (ids_seen(&first_rx), ids_seen(&second_rx));
    assert_eq!(first_ids.get(&full_id), Some(&1));
    assert_eq!(second_ids.get(&full_id), Some(&1));
    assert_eq!(first_ids.len() as u64, accepted + 1);
    assert_eq!(second_ids.len() as u64, accepted + 1);
    assert_eq!(drops(&mut lifecycle), Vec::new());
    for name in ["first", "second"] {
        assert_eq!(health(&sender, name)?.counters.dropped, 0);
    }
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test]
async fn a_full_drop_newest_endpoint_drops_while_the_block_endpoint_takes_the_event()
-> Result<(), BoxError> {
    let block_rx = Server::start(|_, _| Reply::ok()).await?;
    let open = Arc::new(AtomicBool::new(false));
    let drop_rx = gated(&open).await?;
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(endpoint("block", &block_rx, 2, OverflowPolicy::Block)?)
        .endpoint(endpoint("drop", &drop_rx, 2, OverflowPolicy::DropNewest)?)
        .build()?;
    let mut lifecycle = sender.lifecycle();
    let mut receipts = vec![sender.send(event(0)?).await?];
    wait_for("the drop endpoint's first request", || {
        sender
            .endpoint_health("drop")
            .is_some_and(|h| h.in_flight == 1)
    })
    .await?;
    for i in 1..12 {
        // Never `Full`: the only full queue drops instead.
        receipts.push(sender.try_send(event(i)?)?);
        tokio::time::sleep(ms(20)).await;
    }
    open.store(true, Ordering::SeqCst);
    let reports = all(receipts).await;
    let mut dropped = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        assert!(
            r.outcome("block").is_some_and(Outcome::is_delivered),
            "{r:?}"
        );
        match r.outcome("drop") {
            Some(Outcome::Dropped) => dropped.push(format!("evt_{i}")),
            Some(o) => assert!(o.is_delivered(), "{r:?}"),
            None => return Err("missing outcome".into()),
        }
    }
    // One in flight, what the driver holds and two queued; the rest was dropped, newest
    // first: a run up to the last event.
    assert!(dropped.len() >= 7, "{dropped:?}");
    assert_eq!(
        dropped,
        (12 - dropped.len()..12)
            .map(|i| format!("evt_{i}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        health(&sender, "drop")?.counters.dropped,
        dropped.len() as u64
    );
    assert_eq!(health(&sender, "block")?.counters.dropped, 0);
    assert_eq!(health(&sender, "block")?.counters.delivered, 12);
    let broadcast: Vec<String> = drops(&mut lifecycle)
        .into_iter()
        .map(|(endpoint, id)| {
            assert_eq!(endpoint, "drop");
            id
        })
        .collect();
    assert_eq!(broadcast, dropped);
    let drop_ids = ids_seen(&drop_rx);
    assert!(dropped.iter().all(|id| !drop_ids.contains_key(id)));
    assert_eq!(ids_seen(&block_rx).len(), 12);
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_try_sends_reach_both_block_endpoints_or_neither() -> Result<(), BoxError> {
    const TASKS: usize = 8;
    const PER_TASK: usize = 150;
    let fast = Server::start(|_, _| Reply::ok()).await?;
    let slow = Server::start(|_, _| Reply::Slow(ms(1), StatusCode::OK)).await?;
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(endpoint("fast", &fast, 2, OverflowPolicy::Block)?)
        .endpoint(endpoint("slow", &slow, 1, OverflowPolicy::Block)?)
        .build()?;
    let mut lifecycle = sender.lifecycle();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            let (mut accepted, mut refused) = (Vec::new(), Vec::new());
            for i in t * PER_TASK..(t + 1) * PER_TASK {
                let event = event(i).map_err(|e| e.to_string())?;
                match sender.try_send(event) {
                    Ok(r) => accepted.push((format!("evt_{i}"), r)),
                    Err(SendError::Full(e)) => {
                        assert_eq!(e.id(), format!("evt_{i}"));
                        refused.push(e.id().to_owned());
                    }
                    Err(e) => return Err(e.to_string()),
                }
                // About one event per millisecond per task: the drivers drain meanwhile.
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            Ok::<_, String>((accepted, refused))
        }));
    }
    let (mut accepted, mut refused) = (Vec::new(), HashSet::new());
    for t in tasks {
        let (a, r) = t.await??;
        accepted.extend(a);
        refused.extend(r);
    }
    assert!(!refused.is_empty(), "no try_send found a full queue");
    assert!(!accepted.is_empty(), "no try_send found room");
    assert_eq!(accepted.len() + refused.len(), TASKS * PER_TASK);
    let (ids, receipts): (Vec<String>, Vec<_>) = accepted.into_iter().unzip();
    for r in all(receipts).await {
        assert!(r.is_delivered(), "{r:?}");
    }
    let accepted: HashSet<String> = ids.into_iter().collect();
    // Both receivers saw exactly the accepted events, once each; the refused ones nowhere.
    for server in [&fast, &slow] {
        let seen = ids_seen(server);
        assert!(seen.values().all(|&n| n == 1));
        let seen: HashSet<String> = seen.into_keys().collect();
        assert_eq!(seen, accepted);
        assert!(seen.is_disjoint(&refused));
    }
    assert_eq!(drops(&mut lifecycle), Vec::new());
    for name in ["fast", "slow"] {
        wait_for("the delivered counters", || {
            sender
                .endpoint_health(name)
                .is_some_and(|h| h.counters.delivered == accepted.len() as u64)
        })
        .await?;
        assert_eq!(health(&sender, name)?.counters.dropped, 0);
    }
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}

#[tokio::test]
async fn clones_report_every_endpoint_by_name_and_outlive_the_original() -> Result<(), BoxError> {
    // Each handle keeps its own copy of the endpoint names (no shared counter touched per
    // event): reports made through clones, from several tasks, name the endpoints the same way.
    let a = Server::start(|_, _| Reply::ok()).await?;
    let b = Server::start(|_, _| Reply::ok()).await?;
    let sender = Sender::builder()
        .transport(transport(Duration::from_secs(5))?)
        .endpoint(endpoint("alpha", &a, 100, OverflowPolicy::Block)?)
        .endpoint(endpoint("beta", &b, 100, OverflowPolicy::Block)?)
        .build()?;
    let mut tasks = Vec::new();
    for t in 0..3 {
        let clone = sender.clone();
        tasks.push(tokio::spawn(async move {
            let mut names = Vec::new();
            for i in 0..5 {
                let report = clone.send(event(t * 100 + i)?).await?.await;
                assert!(report.is_delivered(), "{report:?}");
                let seen: Vec<String> = report
                    .outcomes()
                    .iter()
                    .map(|o| o.endpoint.to_string())
                    .collect();
                names.push(seen);
            }
            Ok::<_, BoxError>((clone, names))
        }));
    }
    let mut survivor = None;
    for task in tasks {
        let (clone, names) = task.await??;
        assert!(names.iter().all(|n| n == &["alpha", "beta"]), "{names:?}");
        assert_eq!(clone.endpoints(), sender.endpoints());
        survivor = Some(clone);
    }
    drop(sender);
    let survivor = survivor.ok_or("no clone")?;
    let report = survivor.send(event(999)?).await?.await;
    assert!(report.is_delivered());
    assert_eq!(report.outcomes()[1].endpoint.as_ref(), "beta");
    assert!(survivor.shutdown(Duration::from_secs(5)).await.is_clean());
    assert_eq!((ids_seen(&a).len(), ids_seen(&b).len()), (16, 16));
    Ok(())
}
