//! The Redis Streams queue against a real `redis-server` on 127.0.0.1 (see `support`): every
//! event delivered and the stream trimmed, a dead worker's entries reclaimed, a poison entry
//! dead-lettered at its receive limit, a restart with AOF losing nothing, a restart without
//! persistence healing `NOGROUP`, the length limit's policies, dead letters redelivered,
//! entries trimmed while a dead worker held them settled.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{Recorder, Redis, RedisServer, follow, info, queue_name, redis, xlen};
use webhook_core::{BatcherConfig, Endpoint, Event, RetryPolicy};
use webhook_redis::{RedisQueue, RedisQueueConfig};
use webhook_sender::outbox::{Filter, Outbox, OutboxStore};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{EndpointConfig, OverflowPolicy, Sender};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn event(n: u64) -> Event {
    Event::builder(format!("evt_{n}"), "policy")
        .json_bytes(format!(r#"{{"n":{n}}}"#))
        .unwrap()
}

fn worker(
    queue: &RedisQueue,
    name: &str,
    url: &str,
    retry: RetryPolicy,
) -> Result<Sender, BoxError> {
    let endpoint = EndpointConfig::builder(name, Endpoint::builder(url).build()?)
        .batching(
            BatcherConfig::builder()
                .max_events(100)
                .linger(Duration::from_millis(5))
                .build()?,
        )
        .retry(retry)
        .build()?;
    Ok(Sender::builder()
        .transport_builder(
            TransportBuilder::new()
                .timeout(Duration::from_secs(5))
                .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?)),
        )
        .outbox_open(Outbox::from_store(Arc::new(queue.clone())))
        .endpoint(endpoint)
        .build()?)
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy::builder()
        .exponential(
            Duration::from_millis(20),
            2.0,
            Duration::from_millis(200),
            false,
        )
        .max_attempts(3)
        .build()
        .unwrap()
}

async fn enqueue(queue: &RedisQueue, range: std::ops::Range<u64>) {
    for n in range {
        queue.enqueue_nowait(&event(n)).unwrap();
    }
    queue.flush().await.unwrap();
}

/// A stream's length, groups and pending summary, for a failure's message.
fn stream_state(url: &str, key: &str) -> String {
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    let groups: redis::Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query(&mut c)
        .unwrap_or(redis::Value::Nil);
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(key)
        .arg("siem")
        .arg("-")
        .arg("+")
        .arg(5)
        .query(&mut c)
        .unwrap_or(redis::Value::Nil);
    format!(
        "{key}: length {}, groups {groups:?}, first pending {pending:?}",
        xlen(url, key)
    )
}

async fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_delivered_acknowledged_and_trimmed() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("deliver");
    let cfg = RedisQueueConfig::new(&url, &q).partitions(2);
    let producer = RedisQueue::connect(cfg.clone()).await?;
    enqueue(&producer, 0..3000).await;
    let rec = Recorder::start(200, Duration::ZERO).await;
    let queue = RedisQueue::connect(cfg).await?;
    let sender = worker(&queue, "siem", &rec.url(), fast_retry())?;
    assert_eq!(rec.wait_distinct(3000, Duration::from_secs(60)).await, 3000);
    // Appended while the worker runs: read as they come.
    enqueue(&producer, 3000..3500).await;
    assert_eq!(rec.wait_distinct(3500, Duration::from_secs(30)).await, 3500);
    // A generous deadline: the shutdown returns as soon as the last answer is settled, and a
    // batch cut off by the deadline would stay pending (handed back), holding the trim.
    let report = sender.shutdown(Duration::from_secs(30)).await;
    assert!(
        report.is_clean(),
        "every batch settled before the shutdown's deadline: {} undelivered",
        report.undelivered_events()
    );
    queue.close().await;
    let dup: u32 = rec
        .seen
        .lock()
        .unwrap()
        .counts
        .values()
        .map(|c| c - 1)
        .sum();
    assert_eq!(dup, 0, "one worker, no fault: no duplicate");
    // Settled by the only group: trimmed.
    let key = |p| format!("whk:{{{q}.{p}}}:s");
    assert!(
        wait_until(Duration::from_secs(30), || xlen(&url, &key(0))
            + xlen(&url, &key(1))
            == 0)
        .await,
        "the streams are trimmed once settled: {}, {}",
        stream_state(&url, &key(0)),
        stream_state(&url, &key(1))
    );
    assert_eq!(producer.stats(std::time::SystemTime::now()).pending, 0);
    producer.close().await;
    Ok(())
}

/// A worker process's death, as the queue sees it: its runtime (every task) gone without a
/// word, holding entries. Another worker claims them after the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_entries_are_reclaimed_after_the_lease() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("reclaim");
    let cfg = RedisQueueConfig::new(&url, &q).lease(Duration::from_millis(500));
    let producer = RedisQueue::connect(cfg.clone()).await?;
    enqueue(&producer, 0..200).await;
    // Worker A: reads, never answers (its receiver hangs), then dies.
    let hang = Recorder::start(200, Duration::from_secs(3600)).await;
    let url_a = hang.url();
    let cfg_a = cfg.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let qa = RedisQueue::connect(cfg_a).await.unwrap();
            let _sender = worker(&qa, "siem", &url_a, fast_retry()).unwrap();
            let read = qa.clone();
            wait_until(Duration::from_secs(10), || read.counters().read >= 200).await;
            // Held past a renewal or two, then the process "dies".
            tokio::time::sleep(Duration::from_millis(700)).await;
            std::mem::forget(_sender);
        });
        rt.shutdown_background();
    })
    .join()
    .unwrap();
    // Held by the dead worker, none settled: 200 pending for the endpoint, each counted once.
    let stats = producer.stats(std::time::SystemTime::now());
    assert_eq!(
        (stats.pending, &stats.pending_by_endpoint[..]),
        (200, &[("siem".to_owned(), 200)][..])
    );
    let rec = Recorder::start(200, Duration::ZERO).await;
    let queue = RedisQueue::connect(cfg).await?;
    let sender = worker(&queue, "siem", &rec.url(), fast_retry())?;
    assert_eq!(rec.wait_distinct(200, Duration::from_secs(30)).await, 200);
    assert!(queue.counters().reclaimed >= 200, "{:?}", queue.counters());
    sender.shutdown(Duration::from_secs(5)).await;
    queue.close().await;
    producer.close().await;
    Ok(())
}

/// An entry whose every worker dies goes to the dead-letter stream after its receive limit,
/// rather than looping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_entry_goes_to_the_dead_letters_at_its_receive_limit() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("poison");
    let cfg = RedisQueueConfig::new(&url, &q)
        .lease(Duration::from_millis(300))
        .max_receives(2);
    let producer = RedisQueue::connect(cfg.clone()).await?;
    enqueue(&producer, 0..1).await;
    let hang = Recorder::start(200, Duration::from_secs(3600)).await;
    // Two workers in turn take it and die holding it.
    for round in 0..2u64 {
        let cfg = cfg.clone();
        let u = hang.url();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let qa = RedisQueue::connect(cfg).await.unwrap();
                let s = worker(&qa, "siem", &u, fast_retry()).unwrap();
                let c = qa.clone();
                assert!(
                    wait_until(Duration::from_secs(10), || c.counters().read
                        + c.counters().reclaimed
                        >= 1)
                    .await,
                    "round {round}: the entry was handed out"
                );
                std::mem::forget(s);
            });
            rt.shutdown_background();
        })
        .join()
        .unwrap();
    }
    // A third worker finds it at its limit: dead-lettered, not delivered.
    let rec = Recorder::start(200, Duration::ZERO).await;
    let queue = RedisQueue::connect(cfg).await?;
    let sender = worker(&queue, "siem", &rec.url(), fast_retry())?;
    let dead = format!("whk:{{{q}.0}}:dead");
    // (The counter moves once the reclaimer has Redis's answer, just after the dead letter is
    // visible.)
    assert!(
        wait_until(Duration::from_secs(10), || xlen(&url, &dead) == 1
            && queue.counters().dead_by_receives == 1)
        .await,
        "{:?}",
        queue.counters()
    );
    assert_eq!(rec.distinct(), 0);
    let outbox = Outbox::from_store(Arc::new(queue.clone()));
    let listed = outbox.dead_letters(&Filter::all(), 10);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].event_id, "evt_0");
    assert!(
        listed[0].reason.contains("receive limit"),
        "{}",
        listed[0].reason
    );
    // Redriven: delivered.
    assert_eq!(outbox.redeliver(&Filter::all())?, 1);
    queue.flush().await?;
    assert_eq!(rec.wait_distinct(1, Duration::from_secs(10)).await, 1);
    assert_eq!(xlen(&url, &dead), 0);
    sender.shutdown(Duration::from_secs(5)).await;
    queue.close().await;
    producer.close().await;
    Ok(())
}

/// Given up at the endpoint (a 400): kept in the dead-letter stream with its attempts,
/// listed, purged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_up_events_are_dead_letters_that_can_be_purged() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("dead");
    let cfg = RedisQueueConfig::new(&url, &q);
    let queue = RedisQueue::connect(cfg).await?;
    enqueue(&queue, 0..5).await;
    let rec = Recorder::start(400, Duration::ZERO).await;
    let sender = worker(&queue, "siem", &rec.url(), fast_retry())?;
    let outbox = Outbox::from_store(Arc::new(queue.clone()));
    assert!(
        wait_until(Duration::from_secs(20), || outbox
            .dead_letters(&Filter::all(), 100)
            .len()
            == 5)
        .await
    );
    let one = outbox.dead_letters(&Filter::all().event_ids(["evt_3"]), 10);
    let full = outbox.dead_letter(one[0].id)?.expect("kept");
    assert_eq!(full.event.as_ref().map(Event::id), Some("evt_3"));
    assert!(!full.attempts.is_empty());
    assert_eq!(outbox.purge(&Filter::all())?, 5);
    assert!(outbox.dead_letters(&Filter::all(), 100).is_empty());
    sender.shutdown(Duration::from_secs(5)).await;
    queue.close().await;
    Ok(())
}

/// Redis killed (SIGKILL) and restarted mid-run with AOF (`appendfsync always`): nothing
/// appended before or after is lost; the workers reconnect by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_with_aof_loses_nothing() -> Result<(), BoxError> {
    let Some(mut server) = RedisServer::start(true) else {
        return Ok(());
    };
    let url = server.url();
    let q = queue_name("restart");
    // A read whose answer is lost with the connection leaves entries pending for a worker that
    // never got them: claimed after the lease (short here).
    let cfg = RedisQueueConfig::new(&url, &q).lease(Duration::from_secs(2));
    let producer = RedisQueue::connect(cfg.clone()).await?;
    let rec = Recorder::start(200, Duration::from_millis(2)).await;
    let queue = RedisQueue::connect(cfg).await?;
    let sender = worker(&queue, "siem", &rec.url(), fast_retry())?;
    enqueue(&producer, 0..3000).await;
    rec.wait_distinct(500, Duration::from_secs(30)).await;
    server.restart();
    enqueue(&producer, 3000..4000).await;
    let got = rec.wait_distinct(4000, Duration::from_secs(60)).await;
    let missing: Vec<u64> = {
        let seen = rec.seen.lock().unwrap();
        (0..4000)
            .filter(|n| !seen.counts.contains_key(n))
            .take(20)
            .collect()
    };
    assert_eq!(
        got,
        4000,
        "missing {missing:?}; worker {:?}; producer {:?}; stream {}",
        queue.counters(),
        producer.counters(),
        xlen(&url, &format!("whk:{{{q}.0}}:s"))
    );
    sender.shutdown(Duration::from_secs(5)).await;
    queue.close().await;
    producer.close().await;
    Ok(())
}

/// Redis restarted without persistence: the stream and its group are gone; the worker does
/// not loop on `NOGROUP` (svix#1844): it creates the group again and delivers what comes next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nogroup_after_a_restart_without_persistence_heals() -> Result<(), BoxError> {
    let Some(mut server) = RedisServer::start(false) else {
        return Ok(());
    };
    let url = server.url();
    let q = queue_name("nogroup");
    let cfg = RedisQueueConfig::new(&url, &q);
    let producer = RedisQueue::connect(cfg.clone()).await?;
    assert!(
        producer
            .warnings()
            .iter()
            .any(|w| w.contains("persistence is off")),
        "{:?}",
        producer.warnings()
    );
    let rec = Recorder::start(200, Duration::ZERO).await;
    let queue = RedisQueue::connect(cfg).await?;
    let sender = worker(&queue, "siem", &rec.url(), fast_retry())?;
    enqueue(&producer, 0..100).await;
    assert_eq!(rec.wait_distinct(100, Duration::from_secs(20)).await, 100);
    server.restart();
    enqueue(&producer, 100..200).await;
    assert_eq!(rec.wait_distinct(200, Duration::from_secs(30)).await, 200);
    assert!(
        queue.counters().groups_recreated >= 1,
        "{:?}",
        queue.counters()
    );
    sender.shutdown(Duration::from_secs(5)).await;
    queue.close().await;
    producer.close().await;
    Ok(())
}

/// The length limit: `DropNewest` refuses past it, `DropOldest` trims the oldest, `Block`
/// reports full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_length_limit_applies_its_policy() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    for (policy, name) in [
        (OverflowPolicy::DropNewest, "newest"),
        (OverflowPolicy::DropOldest, "oldest"),
        (OverflowPolicy::Block, "block"),
    ] {
        let q = queue_name(name);
        let cfg = RedisQueueConfig::new(&url, &q)
            .max_len(1000)
            .overflow(policy);
        let queue = RedisQueue::connect(cfg).await?;
        let mut refused = 0;
        for n in 0..1500 {
            if queue.enqueue_nowait(&event(n)).is_err() {
                refused += 1;
            }
        }
        queue.flush().await?;
        let len = xlen(&url, &format!("whk:{{{q}.0}}:s"));
        match policy {
            OverflowPolicy::DropOldest => {
                assert_eq!((refused, len), (0, 1000));
                assert_eq!(queue.counters().dropped, 500, "{:?}", queue.counters());
            }
            _ => assert_eq!((refused, len), (500, 1000), "{name}"),
        }
        queue.close().await;
    }
    Ok(())
}

/// Entries a dead worker held, then trimmed from the stream by `DropOldest`: reclaimed as gone
/// (acknowledged), not left pending forever. Redis 6.2's `XAUTOCLAIM` answers a nil without
/// the id for such an entry and keeps it pending; left there, the oldest pending entry would
/// hold back the trimming of everything after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_trimmed_while_a_dead_worker_held_them_are_settled() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("trimheld");
    let cfg = RedisQueueConfig::new(&url, &q)
        .lease(Duration::from_millis(300))
        .max_len(1000)
        .overflow(OverflowPolicy::DropOldest);
    let producer = RedisQueue::connect(cfg.clone()).await?;
    enqueue(&producer, 0..1000).await;
    // Worker A reads at least the 500 oldest (a group reads in stream order), never answers,
    // dies holding them.
    let hang = Recorder::start(200, Duration::from_secs(3600)).await;
    let url_a = hang.url();
    let cfg_a = cfg.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let qa = RedisQueue::connect(cfg_a).await.unwrap();
            let s = worker(&qa, "siem", &url_a, fast_retry()).unwrap();
            let read = qa.clone();
            assert!(
                wait_until(Duration::from_secs(10), || read.counters().read >= 500).await,
                "worker A read the entries"
            );
            std::mem::forget(s);
        });
        rt.shutdown_background();
    })
    .join()
    .unwrap();
    // 500 more: the oldest 500, held by A, are trimmed from the stream and still pending.
    enqueue(&producer, 1000..1500).await;
    let key = format!("whk:{{{q}.0}}:s");
    assert_eq!(xlen(&url, &key), 1000, "{:?}", producer.counters());
    // The appends of one producer reach the stream in any order (pipelines in flight at once):
    // the ones kept are read back.
    let kept: std::collections::HashSet<u64> = {
        let mut c = redis::Client::open(url.as_str())?.get_connection()?;
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .query(&mut c)?;
        entries
            .iter()
            .filter_map(|(_, f)| f.iter().find(|(k, _)| k == "id"))
            .filter_map(|(_, v)| v.strip_prefix("evt_")?.parse().ok())
            .collect()
    };
    assert_eq!(kept.len(), 1000);
    let rec = Recorder::start(200, Duration::ZERO).await;
    let queue = RedisQueue::connect(cfg).await?;
    let sender = worker(&queue, "siem", &rec.url(), fast_retry())?;
    assert_eq!(rec.wait_distinct(1000, Duration::from_secs(30)).await, 1000);
    let trimmed: Vec<u64> = {
        let seen = rec.seen.lock().unwrap();
        let mut v: Vec<u64> = seen
            .counts
            .keys()
            .copied()
            .filter(|n| !kept.contains(n))
            .collect();
        v.sort_unstable();
        v
    };
    assert!(
        trimmed.is_empty(),
        "trimmed entries delivered: {trimmed:?}; {:?}",
        queue.counters()
    );
    let pending = |url: &str| -> u64 {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        let v: redis::Value = redis::cmd("XPENDING")
            .arg(&key)
            .arg("siem")
            .query(&mut c)
            .unwrap();
        match v {
            redis::Value::Array(a) => match a.first() {
                Some(redis::Value::Int(n)) => u64::try_from(*n).unwrap(),
                other => panic!("XPENDING: {other:?}"),
            },
            other => panic!("XPENDING: {other:?}"),
        }
    };
    assert!(
        wait_until(Duration::from_secs(10), || pending(&url) == 0
            && xlen(&url, &key) == 0)
        .await,
        "nothing left pending ({}) and the stream trimmed ({})",
        pending(&url),
        xlen(&url, &key)
    );
    sender.shutdown(Duration::from_secs(5)).await;
    queue.close().await;
    producer.close().await;
    Ok(())
}

/// Unused (keeps the shared-server helper referenced when every test starts its own).
#[allow(dead_code)]
fn _uses(r: Redis) -> String {
    r.url()
}

/// With a spool (a local outbox in front), a producer keeps enqueueing while Redis is down:
/// the events wait on disk, reach Redis once it is back, and a producer killed meanwhile
/// forwards the rest when it opens the spool again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_buffers_on_disk_while_redis_is_down() -> Result<(), BoxError> {
    use webhook_redis::SpooledQueue;
    use webhook_sender::outbox::OutboxConfig;
    let Some(mut server) = RedisServer::start(true) else {
        return Ok(());
    };
    let url = server.url();
    let q = queue_name("spool");
    let dir = std::env::temp_dir().join(format!("webhook-redis-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    server.kill();
    // Redis down: appends succeed, on disk.
    let spool = SpooledQueue::open(OutboxConfig::new(&dir), RedisQueueConfig::new(&url, &q))?;
    for n in 0..1000 {
        spool.enqueue(&event(n))?;
    }
    assert_eq!(
        spool.drain(Duration::from_millis(300)).await,
        1000,
        "held while Redis is down"
    );
    // Closed (a producer that exits) and opened again, Redis still down: nothing lost.
    spool.close().await;
    drop(spool);
    let spool = SpooledQueue::open(OutboxConfig::new(&dir), RedisQueueConfig::new(&url, &q))?;
    for n in 1000..1500 {
        spool.enqueue(&event(n))?;
    }
    server.restart();
    assert_eq!(
        spool.drain(Duration::from_secs(30)).await,
        0,
        "forwarded once Redis is back"
    );
    assert_eq!(xlen(&url, &format!("whk:{{{q}.0}}:s")), 1500);
    let rec = Recorder::start(200, Duration::ZERO).await;
    let queue = RedisQueue::connect(RedisQueueConfig::new(&url, &q)).await?;
    let sender = worker(&queue, "siem", &rec.url(), fast_retry())?;
    assert_eq!(rec.wait_distinct(1500, Duration::from_secs(30)).await, 1500);
    sender.shutdown(Duration::from_secs(5)).await;
    queue.close().await;
    spool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// With `replicas(1, …)`: a flush returns once a replica acknowledged the appends. With the
/// replica down it keeps waiting (the producer is never told an append is safe when only the
/// primary holds it); once the replica is back it returns, and the appends the primary took
/// meanwhile were not appended again at every try (the stream holds each event once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_wait_for_a_replica_and_are_not_appended_twice_meanwhile() -> Result<(), BoxError> {
    let Some(primary) = RedisServer::start(true) else {
        return Ok(());
    };
    let Some(mut replica) = RedisServer::start(false) else {
        return Ok(());
    };
    follow(&replica, &primary);
    let q = queue_name("replicas");
    let cfg = RedisQueueConfig::new(primary.url(), &q).replicas(1, Duration::from_millis(200));
    let queue = RedisQueue::connect(cfg).await?;
    for n in 0..100 {
        queue.enqueue_nowait(&event(n))?;
    }
    tokio::time::timeout(Duration::from_secs(10), queue.flush()).await??;
    let key = format!("whk:{{{q}.0}}:s");
    let replica_url = replica.url();
    assert_eq!(
        xlen(&replica_url, &key),
        100,
        "flushed: the replica holds them"
    );

    replica.kill();
    let start = std::time::Instant::now();
    while !info(&primary.url(), "replication").contains("connected_slaves:0") {
        assert!(start.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(20));
    }
    for n in 100..200 {
        queue.enqueue_nowait(&event(n))?;
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), queue.flush())
            .await
            .is_err(),
        "no replica: the flush waits"
    );
    let errors = queue.counters().redis_errors;
    assert!(errors >= 2, "short rounds tried again: {errors}");
    // The rounds under way went in on the primary (later ones wait their turn).
    let taken = xlen(&primary.url(), &key);
    assert!(
        (101..=200).contains(&taken),
        "the primary took some: {taken}"
    );

    replica.restart();
    follow(&replica, &primary);
    tokio::time::timeout(Duration::from_secs(10), queue.flush()).await??;
    assert_eq!(
        xlen(&primary.url(), &key),
        200,
        "each event appended once, however many tries"
    );
    assert_eq!(xlen(&replica_url, &key), 200);
    queue.close().await;
    Ok(())
}

/// Redis with authentication: an ACL user confined to the queue's keys and channels
/// (`~whk:*`, `&whk:*`) and the replay cache's prefix runs everything (appends, a worker whose
/// endpoint comes from the shared registry, its pub/sub announcement, spreading heartbeats, the
/// replay cache). A wrong password and a missing one are named at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_confined_to_the_queue_keys_runs_everything() -> Result<(), BoxError> {
    let Some(server) = RedisServer::start(false) else {
        return Ok(());
    };
    {
        let mut c = redis::Client::open(server.url())?.get_connection()?;
        let _: () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg("worker")
            .arg("on")
            .arg(">s3cret")
            .arg("~whk:*")
            .arg("~rx:*")
            // (Redis 6.2's users start with every channel: reset first)
            .arg("resetchannels")
            .arg("&whk:*")
            .arg("+@all")
            .arg("-@dangerous")
            .arg("+info")
            .query(&mut c)?;
        let _: () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg("default")
            .arg("off")
            .query(&mut c)?;
    }
    let url = format!("redis://worker:s3cret@127.0.0.1:{}", server.port);
    let q = queue_name("acl");
    let cfg = RedisQueueConfig::new(&url, &q)
        .partitions(2)
        .shared_registry(true)
        .spread(true);
    let admin = RedisQueue::connect(cfg.clone()).await?;
    let rec = Recorder::start(200, Duration::ZERO).await;
    let queue = RedisQueue::connect(cfg).await?;
    let sender = Sender::builder()
        .transport_builder(
            TransportBuilder::new().ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?)),
        )
        .outbox_open(Outbox::from_store(Arc::new(queue.clone())))
        .build()?;
    let watch = webhook_redis::SharedRegistry::new(&queue).watch(&sender)?;
    webhook_redis::SharedRegistry::new(&admin)
        .add_endpoint(webhook_sender::EndpointSpec::new("siem", rec.url()))
        .await?;
    let started = std::time::Instant::now();
    while sender.status("siem").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the registry change arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    enqueue(&admin, 0..300).await;
    assert_eq!(rec.wait_distinct(300, Duration::from_secs(30)).await, 300);
    assert!(sender.shutdown(Duration::from_secs(30)).await.is_clean());
    drop(watch);
    queue.close().await;
    admin.close().await;

    let replay = webhook_redis::RedisReplayStore::connect(&url, "rx:").await?;
    let key = format!("{:064x}", 7);
    webhook_receiver::ReplayStore::reserve(&replay, &key, Duration::from_secs(30))
        .await
        .map_err(|e| format!("{e:?}"))?;

    // Wrong or missing credentials: named at once.
    for (bad, says) in [
        (
            format!("redis://worker:wrong@127.0.0.1:{}", server.port),
            "WRONGPASS",
        ),
        (server.url(), "NOAUTH"),
    ] {
        let started = std::time::Instant::now();
        let e = RedisQueue::connect(RedisQueueConfig::new(&bad, &q))
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains(says) || e.to_lowercase().contains("auth"),
            "{bad}: {e}"
        );
        assert!(started.elapsed() < Duration::from_secs(4), "{e}");
        assert!(!e.contains("wrong"), "the password is not shown: {e}");
        eprintln!("{e}");
    }
    Ok(())
}

/// `destroy` deletes every key of a queue (streams with their groups, dead letters, retry
/// sets, the shared registry, heartbeats) and nothing else; a second call finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_deletes_every_key_of_the_queue_and_nothing_else() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("destroy");
    let other = queue_name("destroy-other");
    let cfg = RedisQueueConfig::new(&url, &q)
        .partitions(2)
        .shared_registry(true)
        .spread(true);
    let keep = RedisQueue::connect(RedisQueueConfig::new(&url, &other)).await?;
    enqueue(&keep, 0..5).await;
    let queue = RedisQueue::connect(cfg).await?;
    let registry = webhook_redis::SharedRegistry::new(&queue);
    // One endpoint that gives up (dead letters), one whose batch waits in a retry set.
    let refuse = Recorder::start(400, Duration::ZERO).await;
    let busy = Recorder::start(503, Duration::ZERO).await;
    registry
        .add_endpoint(webhook_sender::EndpointSpec::new("refused", refuse.url()))
        .await?;
    registry
        .add_endpoint(webhook_sender::EndpointSpec::new("busy", busy.url()))
        .await?;
    let sender = Sender::builder()
        .transport_builder(
            TransportBuilder::new().ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?)),
        )
        .outbox_open(Outbox::from_store(Arc::new(queue.clone())))
        .build()?;
    let watch = webhook_redis::SharedRegistry::new(&queue).watch(&sender)?;
    tokio::time::timeout(Duration::from_secs(5), watch.synced()).await?;
    enqueue(&queue, 0..20).await;
    let mut c = redis::Client::open(url.as_str())?.get_connection()?;
    let mut keys =
        |pattern: String| -> Vec<String> { redis::cmd("KEYS").arg(pattern).query(&mut c).unwrap() };
    let start = std::time::Instant::now();
    while keys(format!("whk:{{{q}.*}}:dead")).is_empty()
        || keys(format!("whk:{{{q}.*}}:r:busy:due")).is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "dead letters and a waiting retry: {:?}",
            keys(format!("*{q}*"))
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(watch);
    sender.shutdown(Duration::from_secs(5)).await;
    queue.close().await;
    let before = keys(format!("*{q}*"));
    eprintln!("{before:?}");
    let deleted = queue.destroy().await?;
    assert_eq!(deleted as usize, before.len(), "{before:?}");
    assert_eq!(keys(format!("*{q}*")), Vec::<String>::new());
    assert_eq!(queue.destroy().await?, 0);
    // The other queue is untouched.
    assert_eq!(xlen(&url, &format!("whk:{{{other}.0}}:s")), 5);
    keep.close().await;
    Ok(())
}
