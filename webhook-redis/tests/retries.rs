//! Retries scheduled in Redis, against a real `redis-server` on 127.0.0.1: a failed batch
//! leaves the worker for its endpoint's retry set (its stream entries acknowledged), waits
//! there until due whatever happens to the worker, and is sent by whichever worker takes it,
//! with the same batch id and the attempts counted on; a retry whose takers keep dying goes to
//! the dead letters at the receive limit.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{queue_name, redis};
use webhook_core::{BatcherConfig, Endpoint, Event, RetryPolicy};
use webhook_redis::{RedisQueue, RedisQueueConfig};
use webhook_sender::outbox::{Filter, Outbox, OutboxStore};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{EndpointConfig, Sender};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One request a [`Receiver`] saw.
#[derive(Debug, Clone)]
struct Seen {
    webhook_id: String,
    at: Instant,
    ns: Vec<u64>,
}

/// A receiver on 127.0.0.1 answering with a status that can change (0: never answers),
/// recording every request's `webhook-id`, time and `"n"` values.
struct Receiver {
    port: u16,
    status: Arc<AtomicU16>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(status: u16) -> Self {
        let status = Arc::new(AtomicU16::new(status));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (st, sn) = (status.clone(), seen.clone());
        let (port, task) = support::http_server(
            Duration::ZERO,
            Arc::new(move |r: &support::Request| {
                sn.lock().unwrap().push(Seen {
                    webhook_id: r.webhook_id.clone(),
                    at: Instant::now(),
                    ns: support::ns(&r.body),
                });
                st.load(Ordering::SeqCst)
            }),
        )
        .await;
        Self {
            port,
            status,
            seen,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/in", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests per `webhook-id`.
    fn by_id(&self) -> HashMap<String, Vec<Seen>> {
        let mut m: HashMap<String, Vec<Seen>> = HashMap::new();
        for s in self.seen() {
            m.entry(s.webhook_id.clone()).or_default().push(s);
        }
        m
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn event(n: u64) -> Event {
    Event::builder(format!("evt_{n}"), "policy")
        .json_bytes(format!(r#"{{"n":{n}}}"#))
        .unwrap()
}

/// A fixed delay between attempts, no jitter.
fn every(delay: Duration, attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .fixed(
            std::iter::once(Duration::ZERO)
                .chain(std::iter::repeat_n(delay, attempts as usize - 1))
                .collect(),
            0,
        )
        .max_attempts(attempts)
        .build()
        .unwrap()
}

fn worker(queue: &RedisQueue, url: &str, retry: RetryPolicy) -> Result<Sender, BoxError> {
    let endpoint = EndpointConfig::builder("siem", Endpoint::builder(url).build()?)
        .batching(
            BatcherConfig::builder()
                .max_events(100)
                .linger(Duration::from_millis(50))
                .build()?,
        )
        .retry(retry)
        .build()?;
    Ok(Sender::builder()
        .transport_builder(
            TransportBuilder::new()
                .timeout(Duration::from_secs(30))
                .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?)),
        )
        .outbox_open(Outbox::from_store(Arc::new(queue.clone())))
        .endpoint(endpoint)
        .build()?)
}

/// Runs a worker on a runtime of its own until `until` holds, then makes it vanish without a
/// word (its tasks dropped with the runtime, nothing handed back): a killed process, as Redis
/// sees it.
fn worker_that_dies(
    cfg: RedisQueueConfig,
    url: String,
    retry: RetryPolicy,
    until: impl Fn(&RedisQueue) -> bool + Send + 'static,
) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let q = RedisQueue::connect(cfg).await.unwrap();
            let sender = worker(&q, &url, retry).unwrap();
            let start = Instant::now();
            while !until(&q) {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "the worker never got there"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            std::mem::forget(sender);
            std::mem::forget(q);
        });
        rt.shutdown_background();
    })
    .join()
    .unwrap();
}

fn conn(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

fn zcard(url: &str, key: &str) -> u64 {
    redis::cmd("ZCARD").arg(key).query(&mut conn(url)).unwrap()
}

/// Entries of the stream pending for the group (handed to a worker, not acknowledged).
fn pending(url: &str, stream: &str) -> u64 {
    let v: redis::Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg("siem")
        .query(&mut conn(url))
        .unwrap();
    match v {
        redis::Value::Array(a) => match a.first() {
            Some(redis::Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        },
        _ => 0,
    }
}

async fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// A batch that failed waits in Redis, not in the worker: the worker dies, the retry is sent
/// when due (not before) by another worker, with the same batch id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_waits_in_redis_through_its_workers_death_and_is_sent_when_due()
-> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("retry-due");
    let cfg = RedisQueueConfig::new(&url, &q).lease(Duration::from_millis(500));
    let producer = RedisQueue::connect(cfg.clone()).await?;
    for n in 0..10 {
        producer.enqueue_nowait(&event(n))?;
    }
    producer.flush().await?;
    let rx = Receiver::start(503).await;
    let delay = Duration::from_secs(3);
    let due_key = format!("whk:{{{q}.0}}:r:siem:due");
    let stream = format!("whk:{{{q}.0}}:s");
    // Worker A: one attempt (503), the batch parked in Redis; then it dies.
    let (u, k, st) = (url.clone(), due_key.clone(), stream.clone());
    worker_that_dies(cfg.clone(), rx.url(), every(delay, 5), move |_| {
        zcard(&u, &k) == 1 && pending(&u, &st) == 0
    });
    let first = rx.seen();
    assert_eq!(first.len(), 1, "one attempt before the retry: {first:?}");
    let mut first_ns = first[0].ns.clone();
    first_ns.sort_unstable();
    assert_eq!(first_ns, (0..10).collect::<Vec<_>>());
    // Nothing holds it but Redis: the stream's entries are acknowledged, the stats count it.
    assert_eq!(pending(&url, &stream), 0);
    // (Once the acknowledged entries are trimmed: Redis 6.2 has no `lag` to tell them apart.)
    assert!(
        wait_until(Duration::from_secs(5), || producer
            .stats(std::time::SystemTime::now())
            .pending
            == 10)
        .await,
        "{}",
        producer.stats(std::time::SystemTime::now()).pending
    );
    rx.status.store(200, Ordering::SeqCst);
    // Worker B takes it when due.
    let queue = RedisQueue::connect(cfg).await?;
    let sender = worker(&queue, &rx.url(), every(delay, 5))?;
    assert!(
        wait_until(Duration::from_secs(15), || rx.seen().len() == 2).await,
        "the retry was sent: {:?}",
        rx.seen()
    );
    let seen = rx.seen();
    let waited = seen[1].at - seen[0].at;
    assert!(
        waited >= delay - Duration::from_millis(100),
        "sent when due, not at once: after {waited:?}"
    );
    assert!(
        waited < delay + Duration::from_secs(3),
        "sent late: {waited:?}"
    );
    assert_eq!(seen[1].webhook_id, seen[0].webhook_id, "the same batch id");
    assert_eq!(rx.by_id().len(), 1);
    // Delivered: gone from the retry set.
    assert!(wait_until(Duration::from_secs(5), || zcard(&url, &due_key) == 0).await);
    let held = format!("whk:{{{q}.0}}:r:siem:held");
    assert!(wait_until(Duration::from_secs(5), || zcard(&url, &held) == 0).await);
    assert!(
        wait_until(Duration::from_secs(5), || producer
            .stats(std::time::SystemTime::now())
            .pending
            == 0)
        .await
    );
    sender.shutdown(Duration::from_secs(5)).await;
    queue.close().await;
    producer.close().await;
    Ok(())
}

/// The attempts are counted on across workers: each worker makes one attempt and dies; the
/// third, the last the policy allows, gives the batch up into the dead letters with the
/// three attempts in its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_count_on_across_workers_until_the_policy_gives_up() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("retry-count");
    let cfg = RedisQueueConfig::new(&url, &q).lease(Duration::from_millis(500));
    let producer = RedisQueue::connect(cfg.clone()).await?;
    producer.enqueue(&event(7)).await?;
    let rx = Receiver::start(503).await;
    let policy = every(Duration::from_millis(300), 3);
    let due = format!("whk:{{{q}.0}}:r:siem:due");
    let held = format!("whk:{{{q}.0}}:r:siem:held");
    for attempts in 1..=2usize {
        let (seen, u, d, h) = (rx.seen.clone(), url.clone(), due.clone(), held.clone());
        worker_that_dies(cfg.clone(), rx.url(), policy.clone(), move |_| {
            // Its attempt made and the batch parked again (waiting, held by none).
            seen.lock().unwrap().len() == attempts && zcard(&u, &d) == 1 && zcard(&u, &h) == 0
        });
    }
    let queue = RedisQueue::connect(cfg).await?;
    let sender = worker(&queue, &rx.url(), policy)?;
    let outbox = Outbox::from_store(Arc::new(queue.clone()));
    assert!(
        wait_until(Duration::from_secs(15), || outbox
            .dead_letters(&Filter::all(), 10)
            .len()
            == 1)
        .await,
        "given up after the third attempt: {:?}",
        rx.seen()
    );
    let seen = rx.seen();
    assert_eq!(seen.len(), 3, "three attempts in all, one per worker");
    assert!(seen.iter().all(|s| s.webhook_id == seen[0].webhook_id));
    let dl = outbox.dead_letters(&Filter::all(), 10);
    let full = outbox.dead_letter(dl[0].id)?.expect("kept");
    assert_eq!(full.event.as_ref().map(Event::id), Some("evt_7"));
    assert_eq!(full.attempts.len(), 3, "{:?}", full.attempts);
    assert!(full.attempts.iter().all(|a| a.status == Some(503)));
    assert!(
        wait_until(Duration::from_secs(5), || queue
            .stats(std::time::SystemTime::now())
            .pending
            == 0)
        .await
    );
    sender.shutdown(Duration::from_secs(5)).await;
    queue.close().await;
    producer.close().await;
    Ok(())
}

/// A retry whose takers die before answering (a poison batch) is taken again after each
/// lease, and goes to the dead letters once taken more than the receive limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_whose_takers_keep_dying_goes_to_the_dead_letters() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("retry-poison");
    let cfg = RedisQueueConfig::new(&url, &q)
        .lease(Duration::from_millis(300))
        .max_receives(2);
    let producer = RedisQueue::connect(cfg.clone()).await?;
    producer.enqueue(&event(1)).await?;
    let rx = Receiver::start(503).await;
    let policy = every(Duration::from_millis(100), 10);
    let (u, due) = (url.clone(), format!("whk:{{{q}.0}}:r:siem:due"));
    let held = format!("whk:{{{q}.0}}:r:siem:held");
    worker_that_dies(cfg.clone(), rx.url(), policy.clone(), move |_| {
        zcard(&u, &due) == 1
    });
    // Now it hangs: each taker sends the retry and dies waiting.
    rx.status.store(0, Ordering::SeqCst);
    for round in 2..=3usize {
        let (seen, u, h) = (rx.seen.clone(), url.clone(), held.clone());
        worker_that_dies(cfg.clone(), rx.url(), policy.clone(), move |_| {
            seen.lock().unwrap().len() == round && zcard(&u, &h) == 1
        });
    }
    rx.status.store(200, Ordering::SeqCst);
    let queue = RedisQueue::connect(cfg).await?;
    let sender = worker(&queue, &rx.url(), policy)?;
    let outbox = Outbox::from_store(Arc::new(queue.clone()));
    // (The counter moves once the taker has Redis's answer, just after the dead letter is
    // visible.)
    assert!(
        wait_until(Duration::from_secs(10), || outbox
            .dead_letters(&Filter::all(), 10)
            .len()
            == 1
            && queue.counters().dead_by_receives == 1)
        .await,
        "{:?}",
        queue.counters()
    );
    let dl = &outbox.dead_letters(&Filter::all(), 10)[0];
    assert_eq!(dl.event_id, "evt_1");
    assert!(dl.reason.contains("receive limit"), "{}", dl.reason);
    assert_eq!(rx.seen().len(), 3, "not sent again once dead-lettered");
    assert_eq!(
        zcard(&url, &held) + zcard(&url, &format!("whk:{{{q}.0}}:r:siem:due")),
        0
    );
    // Redriven: delivered.
    assert_eq!(outbox.redeliver(&Filter::all())?, 1);
    queue.flush().await?;
    assert!(wait_until(Duration::from_secs(10), || rx.seen().len() == 4).await);
    sender.shutdown(Duration::from_secs(5)).await;
    queue.close().await;
    producer.close().await;
    Ok(())
}

/// A worker that stops cleanly hands the retries it took back: due at once for the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_worker_hands_back_the_retries_it_took() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("retry-close");
    let cfg = RedisQueueConfig::new(&url, &q).lease(Duration::from_secs(30));
    let producer = RedisQueue::connect(cfg.clone()).await?;
    producer.enqueue(&event(3)).await?;
    let rx = Receiver::start(503).await;
    let policy = every(Duration::from_millis(200), 10);
    let held = format!("whk:{{{q}.0}}:r:siem:held");
    let a = RedisQueue::connect(cfg.clone()).await?;
    let sender = worker(&a, &rx.url(), policy.clone())?;
    // Taken (held) and in flight when the worker stops.
    assert!(wait_until(Duration::from_secs(10), || rx.seen().len() >= 2).await);
    rx.status.store(0, Ordering::SeqCst);
    let n = rx.seen().len();
    assert!(
        wait_until(Duration::from_secs(10), || rx.seen().len() == n + 1
            && zcard(&url, &held) == 1)
        .await
    );
    sender.shutdown(Duration::from_millis(200)).await;
    a.close().await;
    assert_eq!(zcard(&url, &held), 0, "handed back");
    rx.status.store(200, Ordering::SeqCst);
    let b = RedisQueue::connect(cfg).await?;
    let sender = worker(&b, &rx.url(), policy)?;
    let started = Instant::now();
    assert!(wait_until(Duration::from_secs(10), || rx.seen().len() == n + 2).await);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "taken at once, not after the 30 s lease"
    );
    sender.shutdown(Duration::from_secs(5)).await;
    b.close().await;
    producer.close().await;
    Ok(())
}

/// Events waiting in the retry sets count against the partition's length limit: with the
/// endpoint down, the stream empties into the retry set, and the producer is still held at
/// the limit (memory in Redis stays bounded); once the retries are delivered, it may go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_retries_count_against_the_length_limit() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("retry-limit");
    let cfg = RedisQueueConfig::new(&url, &q).max_len(1000);
    let producer = RedisQueue::connect(cfg.clone()).await?;
    for n in 0..1000 {
        producer.enqueue_nowait(&event(n))?;
    }
    producer.flush().await?;
    let rx = Receiver::start(503).await;
    let queue = RedisQueue::connect(cfg).await?;
    let sender = worker(&queue, &rx.url(), every(Duration::from_secs(2), 10))?;
    let stream = format!("whk:{{{q}.0}}:s");
    let count = format!("whk:{{{q}.0}}:r:events");
    let waiting = |url: &str| -> u64 {
        redis::cmd("GET")
            .arg(&count)
            .query::<Option<u64>>(&mut conn(url))
            .unwrap()
            .unwrap_or(0)
    };
    let xlen = |url: &str| -> u64 {
        redis::cmd("XLEN")
            .arg(&stream)
            .query(&mut conn(url))
            .unwrap()
    };
    // Every event attempted once and parked; the stream trimmed behind them.
    assert!(
        wait_until(Duration::from_secs(15), || waiting(&url) == 1000
            && xlen(&url) == 0)
        .await,
        "waiting {} stream {}",
        waiting(&url),
        xlen(&url)
    );
    tokio::time::sleep(Duration::from_millis(700)).await; // the producer's view refreshes
    assert!(
        matches!(
            producer.enqueue_nowait(&event(1000)),
            Err(webhook_sender::outbox::OutboxError::Full)
        ),
        "held at the limit by the waiting retries"
    );
    rx.status.store(200, Ordering::SeqCst);
    assert!(
        wait_until(Duration::from_secs(15), || waiting(&url) == 0).await,
        "the retries delivered: {} left",
        waiting(&url)
    );
    // Settled by delivery: no dead letter, nothing pending.
    let outbox = Outbox::from_store(Arc::new(queue.clone()));
    assert!(outbox.dead_letters(&Filter::all(), 10).is_empty());
    assert_eq!(queue.stats(std::time::SystemTime::now()).pending, 0);
    tokio::time::sleep(Duration::from_millis(700)).await;
    producer.enqueue(&event(1000)).await?;
    assert!(
        wait_until(Duration::from_secs(10), || rx
            .seen()
            .iter()
            .any(|s| s.ns == [1000]))
        .await
    );
    sender.shutdown(Duration::from_secs(5)).await;
    queue.close().await;
    producer.close().await;
    Ok(())
}

/// A batch Redis refuses to park (its retry set's key holds a value of another type, so the
/// script fails with `WRONGTYPE`) is not acknowledged out of the stream: the worker keeps
/// trying the move (its entries stay pending for it) and, once the key is fixed, parks it and
/// sends the retry. Nothing is lost to a failed write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_redis_refuses_to_park_stays_in_the_stream() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("park-refused");
    let cfg = RedisQueueConfig::new(&url, &q);
    let due_key = format!("whk:{{{q}.0}}:r:siem:due");
    let stream = format!("whk:{{{q}.0}}:s");
    let _: () = redis::cmd("SET")
        .arg(&due_key)
        .arg("not a sorted set")
        .query(&mut conn(&url))?;
    let queue = RedisQueue::connect(cfg).await?;
    for n in 0..5 {
        queue.enqueue_nowait(&event(n))?;
    }
    queue.flush().await?;
    let rx = Receiver::start(503).await;
    let sender = worker(&queue, &rx.url(), every(Duration::from_millis(300), 5))?;
    assert!(wait_until(Duration::from_secs(10), || rx.seen().len() == 1).await);
    // The park keeps failing: the entries stay pending, none is acknowledged.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        pending(&url, &stream),
        5,
        "not acknowledged while not parked"
    );
    assert_eq!(queue.counters().acked, 0);
    assert!(
        queue.counters().redis_errors >= 2,
        "the move was tried again"
    );
    // Fixed: parked, then sent again when due.
    let _: () = redis::cmd("DEL").arg(&due_key).query(&mut conn(&url))?;
    rx.status.store(200, Ordering::SeqCst);
    assert!(
        wait_until(Duration::from_secs(10), || rx.seen().len() == 2).await,
        "the retry was sent: {:?}",
        rx.seen()
    );
    let seen = rx.seen();
    assert_eq!(seen[1].webhook_id, seen[0].webhook_id, "the same batch");
    assert_eq!(seen[1].ns.len(), 5);
    assert!(wait_until(Duration::from_secs(5), || pending(&url, &stream) == 0).await);
    sender.shutdown(Duration::from_secs(5)).await;
    queue.close().await;
    Ok(())
}
