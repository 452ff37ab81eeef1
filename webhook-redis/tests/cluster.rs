//! The queue and the replay cache on a real three-shard Redis Cluster (three `redis-server`
//! processes in cluster mode on 127.0.0.1, slots assigned and nodes met by the test): the
//! partitions spread over the shards, every event is delivered through retries and dead
//! letters, the streams are trimmed, and two replay caches share their keys.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use webhook_core::{BatcherConfig, Endpoint, Event, RetryPolicy};
use webhook_receiver::ReplayStore;
use webhook_redis::{RedisQueue, RedisQueueConfig, RedisReplayStore};
use webhook_sender::outbox::{Filter, Outbox, OutboxStore};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{EndpointConfig, Sender};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Three primaries in cluster mode, 5461/5461/5462 slots, and `replicas` replicas of each
/// (nodes `3 + r * 3 + i` replicate primary `i`); stopped on drop.
struct Cluster {
    bin: String,
    ports: Vec<u16>,
    dirs: Vec<PathBuf>,
    children: Vec<Option<Child>>,
}

impl Cluster {
    /// `None` when `redis-server` is missing (a failure under `CI=true`).
    fn start() -> Option<Self> {
        Self::with_replicas(0)
    }

    fn with_replicas(replicas: usize) -> Option<Self> {
        let bin =
            std::env::var("WEBHOOK_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        if !support::runnable(&bin) {
            return None;
        }
        let mut c = Self {
            bin,
            ports: Vec::new(),
            dirs: Vec::new(),
            children: Vec::new(),
        };
        let nodes = 3 * (1 + replicas);
        for _ in 0..nodes {
            let port = support::free_port();
            let dir = std::env::temp_dir().join(format!(
                "webhook-redis-cluster-{}-{port}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            c.ports.push(port);
            c.dirs.push(dir);
            c.children.push(None);
            c.spawn(c.ports.len() - 1);
        }
        let conns: Vec<redis::Connection> = c.ports.iter().map(|p| connect(*p)).collect();
        for (i, mut conn) in conns.into_iter().enumerate() {
            if i < 3 {
                let (from, to) = (i * 16384 / 3, (i + 1) * 16384 / 3);
                let mut add = redis::cmd("CLUSTER");
                add.arg("ADDSLOTS");
                for slot in from..to {
                    add.arg(slot);
                }
                let _: () = add.query(&mut conn).unwrap();
            }
            if i > 0 {
                let mut first = connect(c.ports[0]);
                let _: () = redis::cmd("CLUSTER")
                    .arg("MEET")
                    .arg("127.0.0.1")
                    .arg(c.ports[i])
                    .query(&mut first)
                    .unwrap();
            }
        }
        let start = Instant::now();
        let known = format!("cluster_known_nodes:{nodes}");
        while !c.ports.iter().all(|p| {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query(&mut connect(*p))
                .unwrap_or_default();
            info.contains("cluster_state:ok") && info.contains(&known)
        }) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the cluster never formed"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // The replicas follow their primaries once every node knows them all.
        for i in 3..nodes {
            let primary: String = redis::cmd("CLUSTER")
                .arg("MYID")
                .query(&mut connect(c.ports[i % 3]))
                .unwrap();
            let mut replicated = false;
            while !replicated {
                replicated = redis::cmd("CLUSTER")
                    .arg("REPLICATE")
                    .arg(&primary)
                    .query::<()>(&mut connect(c.ports[i]))
                    .is_ok();
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "node {i} never replicated"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Every node agrees on the slot map (CLUSTER SLOTS lists the three ranges, each with
        // its replicas), and every replica is in sync.
        while !c.ports.iter().all(|p| {
            redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query::<Vec<Vec<redis::Value>>>(&mut connect(*p))
                .is_ok_and(|s| s.len() == 3 && s.iter().all(|r| r.len() == 3 + replicas))
        }) || !(3..nodes).all(|i| c.in_sync(i))
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the slot map never spread"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(c)
    }

    /// Starts node `i` (again, on its port and directory: it keeps its `nodes.conf`).
    fn spawn(&mut self, i: usize) {
        let child = Command::new(&self.bin)
            .args(["--port", &self.ports[i].to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", self.dirs[i].to_str().unwrap()])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args(["--cluster-node-timeout", "2000"])
            .args(["--appendonly", "yes", "--save", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.children[i] = Some(child);
    }

    /// SIGKILLs node `i`.
    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Moves the slot of `key` from the primary holding it to primary `(from + 1) % 3`, the
    /// way `redis-cli --cluster reshard` does: the slot marked importing and migrating, its
    /// keys moved in small `MIGRATE`s (with a pause between, so clients meet the migration),
    /// then assigned on every node. Returns (from, to). The primaries must be nodes 0 to 2.
    fn move_slot_of(&self, key: &str) -> (usize, usize) {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut connect(self.ports[0]))
            .unwrap();
        let from = usize::from(slot) * 3 / 16384;
        let to = (from + 1) % 3;
        let id = |i: usize| -> String {
            redis::cmd("CLUSTER")
                .arg("MYID")
                .query(&mut connect(self.ports[i]))
                .unwrap()
        };
        let (src, dst) = (id(from), id(to));
        let setslot = |node: usize, how: &str, arg: &str| {
            let _: () = redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg(how)
                .arg(arg)
                .query(&mut connect(self.ports[node]))
                .unwrap();
        };
        setslot(to, "IMPORTING", &src);
        setslot(from, "MIGRATING", &dst);
        let mut c = connect(self.ports[from]);
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(1)
                .query(&mut c)
                .unwrap();
            if keys.is_empty() {
                break;
            }
            let _: redis::Value = redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(self.ports[to])
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys)
                .query(&mut c)
                .unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        for node in [to, from, (from + 2) % 3] {
            setslot(node, "NODE", &dst);
        }
        (from, to)
    }

    /// Node `i`'s `INFO replication` says it is a replica whose link to its primary is up.
    fn in_sync(&self, i: usize) -> bool {
        redis::cmd("INFO")
            .arg("replication")
            .query::<String>(&mut connect(self.ports[i]))
            .is_ok_and(|s| s.contains("role:slave") && s.contains("master_link_status:up"))
    }

    /// Node `i` is a primary serving slots.
    fn is_primary(&self, i: usize) -> bool {
        redis::cmd("INFO")
            .arg("replication")
            .query::<String>(&mut connect(self.ports[i]))
            .is_ok_and(|s| s.contains("role:master"))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.ports[1])
    }

    /// Keys named `pattern` on each node.
    fn keys_per_node(&self, pattern: &str) -> Vec<usize> {
        self.ports
            .iter()
            .map(|p| {
                redis::cmd("KEYS")
                    .arg(pattern)
                    .query::<Vec<String>>(&mut connect(*p))
                    .unwrap()
                    .len()
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().filter_map(Option::take) {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn connect(port: u16) -> redis::Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let start = Instant::now();
    loop {
        if let Ok(c) = client.get_connection() {
            return c;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "redis did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Answers 400 to a batch holding an event whose `n` is a multiple of 500 (given up), 503
/// to the first attempt of every other batch (a retry through the retry set), then 200;
/// records what was delivered.
#[derive(Default)]
struct Seen {
    attempts: HashMap<String, u32>,
    delivered: HashMap<u64, u32>,
}

async fn receiver(seen: Arc<Mutex<Seen>>) -> (String, tokio::task::JoinHandle<()>) {
    let (port, task) = support::http_server(
        Duration::ZERO,
        Arc::new(move |r: &support::Request| {
            let ns = support::ns(&r.body);
            let mut s = seen.lock().unwrap();
            let a = s.attempts.entry(r.webhook_id.clone()).or_default();
            *a += 1;
            if ns.iter().any(|n| n % 500 == 0) {
                400
            } else if *a == 1 {
                503
            } else {
                for n in ns {
                    *s.delivered.entry(n).or_default() += 1;
                }
                200
            }
        }),
    )
    .await;
    (format!("http://127.0.0.1:{port}/in"), task)
}

fn worker(queue: &RedisQueue, url: &str) -> Result<Sender, BoxError> {
    let retry = RetryPolicy::builder()
        .fixed(
            vec![
                Duration::ZERO,
                Duration::from_millis(200),
                Duration::from_millis(200),
            ],
            0,
        )
        .build()?;
    let endpoint = EndpointConfig::builder("siem", Endpoint::builder(url).build()?)
        .batching(
            BatcherConfig::builder()
                .max_events(20)
                .linger(Duration::from_millis(5))
                .build()?,
        )
        .retry(retry)
        .build()?;
    Ok(Sender::builder()
        .transport_builder(
            TransportBuilder::new()
                .timeout(Duration::from_secs(10))
                .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?)),
        )
        .outbox_open(Outbox::from_store(Arc::new(queue.clone())))
        .endpoint(endpoint)
        .build()?)
}

async fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_spreads_over_three_shards_and_delivers_everything() -> Result<(), BoxError> {
    let Some(cluster) = Cluster::start() else {
        return Ok(());
    };
    const N: u64 = 3000;
    let cfg = RedisQueueConfig::new(cluster.url(), "orders")
        .partitions(6)
        .lease(Duration::from_secs(2));
    let producer = RedisQueue::connect(cfg.clone()).await?;
    for n in 1..=N {
        producer.enqueue_nowait(
            &Event::builder(format!("evt_{n}"), "policy").json_bytes(format!(r#"{{"n":{n}}}"#))?,
        )?;
    }
    producer.flush().await?;
    // The six partitions' streams live on every shard, none on one alone.
    let streams = cluster.keys_per_node("whk:{orders.*}:s");
    assert_eq!(streams.iter().sum::<usize>(), 6, "{streams:?}");
    assert!(
        streams.iter().all(|&n| n > 0),
        "spread over the shards: {streams:?}"
    );
    assert_eq!(
        producer.stats(std::time::SystemTime::now()).pending,
        0,
        "no group yet"
    );

    let seen = Arc::new(Mutex::new(Seen::default()));
    let (url, _server) = receiver(seen.clone()).await;
    let (qa, qb) = (
        RedisQueue::connect(cfg.clone()).await?,
        RedisQueue::connect(cfg.clone()).await?,
    );
    let (sa, sb) = (worker(&qa, &url)?, worker(&qb, &url)?);
    let outbox = Outbox::from_store(Arc::new(producer.clone()));
    let done = wait_until(Duration::from_secs(90), || {
        let delivered = seen.lock().unwrap().delivered.len() as u64;
        let dead: u64 = outbox.dead_letters(&Filter::all(), 10_000).len() as u64;
        delivered + dead >= N
    })
    .await;
    let delivered: HashSet<u64> = seen.lock().unwrap().delivered.keys().copied().collect();
    let dead = outbox.dead_letters(&Filter::all(), 10_000);
    assert!(
        done,
        "delivered {} + dead {} of {N}",
        delivered.len(),
        dead.len()
    );
    // Each event delivered or dead-lettered, never both; the given-up batches are those
    // holding a multiple of 500.
    let dead_ns: HashSet<u64> = dead
        .iter()
        .map(|d| d.event_id.trim_start_matches("evt_").parse().unwrap())
        .collect();
    assert!(delivered.is_disjoint(&dead_ns));
    assert_eq!(delivered.len() + dead_ns.len(), N as usize);
    for m in (500..=N).step_by(500) {
        assert!(dead_ns.contains(&m), "evt_{m} given up");
    }
    // Every delivered batch went through one retry (503 first): the retry sets worked.
    let retried = seen
        .lock()
        .unwrap()
        .attempts
        .values()
        .filter(|&&a| a >= 2)
        .count();
    assert!(retried > 0);
    sa.shutdown(Duration::from_secs(5)).await;
    sb.shutdown(Duration::from_secs(5)).await;
    qa.close().await;
    qb.close().await;
    // Settled by the only group: the streams are trimmed, the retry sets are empty.
    let key = |p: usize| format!("whk:{{orders.{p}}}:s");
    let mut any = redis::cluster::ClusterClient::new(vec![cluster.url()])?.get_connection()?;
    let emptied = wait_until(Duration::from_secs(10), || {
        (0..6).all(|p| {
            redis::cmd("XLEN")
                .arg(key(p))
                .query::<u64>(&mut any)
                .unwrap_or(1)
                == 0
        })
    })
    .await;
    assert!(emptied, "trimmed on every shard");
    assert_eq!(
        cluster
            .keys_per_node("whk:{orders.*}:r:siem:due")
            .iter()
            .sum::<usize>(),
        0
    );
    // Dead letters are listed from every shard and purged.
    assert_eq!(outbox.purge(&Filter::all())?, dead.len());
    assert_eq!(producer.stats(std::time::SystemTime::now()).pending, 0);
    producer.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replay_caches_share_their_keys_across_the_shards() -> Result<(), BoxError> {
    let Some(cluster) = Cluster::start() else {
        return Ok(());
    };
    let a = RedisReplayStore::connect(&cluster.url(), "rx").await?;
    let b =
        RedisReplayStore::connect(&format!("redis://127.0.0.1:{}", cluster.ports[2]), "rx").await?;
    let keys: Vec<String> = (0..30).map(|i| format!("{i:064x}")).collect();
    for k in &keys {
        a.reserve(k, Duration::from_secs(30))
            .await
            .map_err(|e| format!("{e:?}"))?;
        a.commit(k, Duration::from_secs(60)).await;
    }
    for k in &keys {
        assert!(
            b.reserve(k, Duration::from_secs(30)).await.is_err(),
            "{k} seen by the other"
        );
    }
    // The keys landed on more than one shard.
    let per = cluster.keys_per_node("rx*");
    assert_eq!(per.iter().sum::<usize>(), 30, "{per:?}");
    assert!(per.iter().filter(|&&n| n > 0).count() >= 2, "{per:?}");
    Ok(())
}

/// The shared registry on a cluster: its keys share the queue's tag (one slot, one shard),
/// and a change made through one node reaches a sender connected through another within a
/// second (the announcement is published cluster-wide; the version poll backs it up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_registry_works_across_the_shards() -> Result<(), BoxError> {
    let Some(cluster) = Cluster::start() else {
        return Ok(());
    };
    let cfg = |port: u16| {
        RedisQueueConfig::new(format!("redis://127.0.0.1:{port}"), "reg")
            .partitions(3)
            .shared_registry(true)
    };
    let queue = RedisQueue::connect(cfg(cluster.ports[0])).await?;
    let sender = Sender::builder()
        .outbox_open(Outbox::from_store(Arc::new(queue.clone())))
        .build()?;
    let watch = webhook_redis::SharedRegistry::new(&queue).watch(&sender)?;
    tokio::time::timeout(Duration::from_secs(5), watch.synced()).await?;
    let admin = RedisQueue::connect(cfg(cluster.ports[2])).await?;
    let started = Instant::now();
    webhook_redis::SharedRegistry::new(&admin)
        .add_endpoint(webhook_sender::EndpointSpec::new(
            "siem",
            "http://127.0.0.1:9/in",
        ))
        .await?;
    assert!(
        wait_until(Duration::from_secs(1), || sender.status("siem").is_some()).await,
        "not seen within a second"
    );
    eprintln!("seen after {:?}", started.elapsed());
    // Every registry key on one shard.
    let per = cluster.keys_per_node("whk:{reg}:reg:*");
    assert_eq!(per.iter().filter(|&&n| n > 0).count(), 1, "{per:?}");
    sender.shutdown(Duration::from_secs(2)).await;
    queue.close().await;
    admin.close().await;
    drop(watch);
    Ok(())
}

/// A producer appending `n` events (`evt_<rename(i)>`, `{"n": rename(i)}`) in chunks of a
/// hundred, a `flush` after each, 40 ms apart; `confirmed` counts the events flushed.
struct Producing {
    confirmed: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Producing {
    fn start(producer: &RedisQueue, n: u64, rename: fn(u64) -> u64) -> Self {
        let confirmed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (producer, c) = (producer.clone(), confirmed.clone());
        let task = tokio::spawn(async move {
            for chunk in 0..n / 100 {
                for i in chunk * 100 + 1..=(chunk + 1) * 100 {
                    let n = rename(i);
                    producer
                        .enqueue_nowait(
                            &Event::builder(format!("evt_{n}"), "policy")
                                .json_bytes(format!(r#"{{"n":{n}}}"#))
                                .unwrap(),
                        )
                        .unwrap();
                }
                producer.flush().await.unwrap();
                c.store((chunk + 1) * 100, std::sync::atomic::Ordering::Release);
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        });
        Self { confirmed, task }
    }

    /// Waits (up to a minute) until `n` events are confirmed.
    async fn at_least(&self, n: u64) -> bool {
        let c = self.confirmed.clone();
        wait_until(Duration::from_secs(60), move || {
            c.load(std::sync::atomic::Ordering::Acquire) >= n
        })
        .await
    }

    /// Waits (up to two minutes) until every event is confirmed.
    async fn finished(self) -> Result<(), BoxError> {
        Ok(tokio::time::timeout(Duration::from_secs(120), self.task).await??)
    }
}

/// Nothing stays pending (what was delivered is settled, a lost acknowledgement's entry
/// delivered again and acknowledged); then the workers and queues close.
async fn settled_and_closed(producer: &RedisQueue, workers: [(Sender, RedisQueue); 2]) {
    let outbox = Outbox::from_store(Arc::new(producer.clone()));
    assert!(
        wait_until(Duration::from_secs(30), || outbox.stats().pending == 0).await,
        "still pending: {}",
        outbox.stats().pending
    );
    for (s, q) in workers {
        s.shutdown(Duration::from_secs(5)).await;
        q.close().await;
    }
    producer.close().await;
}

/// No event the producer was told is written is lost to a failover, with
/// [`RedisQueueConfig::replicas`]: every write round waits for a replica of its shard. While a
/// producer appends (a `flush` after every hundred events) and two workers deliver, one shard
/// fails over gracefully (`CLUSTER FAILOVER` on its replica) and another's primary is
/// SIGKILLed (the cluster promotes its replica after the node timeout; the killed node, started
/// again, comes back as the new primary's replica). Every event arrives; duplicates (entries
/// whose acknowledgement was lost with the primary, delivered again after the lease) are
/// counted, and nothing stays pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failovers_lose_no_confirmed_event() -> Result<(), BoxError> {
    let Some(mut cluster) = Cluster::with_replicas(1) else {
        return Ok(());
    };
    const N: u64 = 6000;
    // Seeded through shard 1's primary, which stays up.
    let cfg = RedisQueueConfig::new(cluster.url(), "fo")
        .partitions(6)
        .lease(Duration::from_secs(2))
        .replicas(1, Duration::from_secs(1));
    let delivered: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let d = delivered.clone();
    let (port, _server) = support::http_server(
        Duration::ZERO,
        Arc::new(move |r: &support::Request| {
            let mut d = d.lock().unwrap();
            for n in support::ns(&r.body) {
                *d.entry(n).or_default() += 1;
            }
            200
        }),
    )
    .await;
    let url = format!("http://127.0.0.1:{port}/in");
    let (qa, qb) = (
        RedisQueue::connect(cfg.clone()).await?,
        RedisQueue::connect(cfg.clone()).await?,
    );
    let (sa, sb) = (worker(&qa, &url)?, worker(&qb, &url)?);

    let producer = RedisQueue::connect(cfg.clone()).await?;
    let produce = Producing::start(&producer, N, |n| n);
    let confirmed = produce.confirmed.clone();

    // Shard 2: a graceful failover to its replica (node 5); the old primary follows it.
    assert!(produce.at_least(1000).await);
    let _: () = redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query(&mut connect(cluster.ports[5]))?;
    assert!(
        wait_until(Duration::from_secs(20), || cluster.is_primary(5)
            && cluster.in_sync(2))
        .await,
        "shard 2 failed over"
    );
    eprintln!(
        "shard 2 failed over at {} confirmed",
        confirmed.load(std::sync::atomic::Ordering::Acquire)
    );

    // Shard 0: its primary killed; the cluster promotes node 3; node 0 comes back as its
    // replica (until then, shard 0's writes wait for a replica).
    assert!(produce.at_least(3000).await);
    let killed_at = confirmed.load(std::sync::atomic::Ordering::Acquire);
    cluster.kill(0);
    let promoted = Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || cluster.is_primary(3)).await,
        "shard 0's replica promoted"
    );
    eprintln!(
        "shard 0's primary killed at {killed_at} confirmed; replica promoted after {:?}",
        promoted.elapsed()
    );
    cluster.spawn(0);
    assert!(
        wait_until(Duration::from_secs(30), || cluster.in_sync(0)).await,
        "the killed node rejoined as a replica"
    );

    produce.finished().await?;
    let all = wait_until(Duration::from_secs(120), || {
        delivered.lock().unwrap().len() as u64 == N
    })
    .await;
    let (got, dups) = {
        let d = delivered.lock().unwrap();
        (d.len(), d.values().map(|c| u64::from(c - 1)).sum::<u64>())
    };
    eprintln!("delivered {got} of {N}, {dups} duplicates");
    {
        let d = delivered.lock().unwrap();
        let mut by = std::collections::BTreeMap::new();
        for (n, c) in d.iter() {
            if *c > 1 {
                *by.entry(n / 250 * 250).or_insert(0) += c - 1;
            }
        }
        eprintln!("duplicates by range: {by:?}");
    }
    assert!(all, "every confirmed event delivered: {got} of {N}");
    // What was delivered is settled: nothing stays pending (a lost acknowledgement's entry
    // is delivered again and acknowledged on the new primary).
    settled_and_closed(&producer, [(sa, qa), (sb, qb)]).await;
    Ok(())
}

/// Resharding while workers run: the slot of one partition moves to another shard (its keys
/// migrated one by one under `IMPORTING`/`MIGRATING`, then the slot assigned) while a producer
/// appends and two workers deliver through retries (the receiver answers 503 to each batch's
/// first attempt, so the partition's retry set is in use while it moves). Every event
/// arrives, and nothing stays pending or parked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_moves_to_another_shard_while_workers_run() -> Result<(), BoxError> {
    let Some(cluster) = Cluster::start() else {
        return Ok(());
    };
    const N: u64 = 4000;
    let cfg = RedisQueueConfig::new(cluster.url(), "rs")
        .partitions(3)
        .lease(Duration::from_secs(2));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (url, _server) = receiver(seen.clone()).await;
    let (qa, qb) = (
        RedisQueue::connect(cfg.clone()).await?,
        RedisQueue::connect(cfg.clone()).await?,
    );
    let (sa, sb) = (worker(&qa, &url)?, worker(&qb, &url)?);
    let producer = RedisQueue::connect(cfg.clone()).await?;
    // (no multiple of 500: the receiver would give those up)
    let rename = |n: u64| if n.is_multiple_of(500) { n * 10 + 1 } else { n };
    let produce = Producing::start(&producer, N, rename);
    assert!(produce.at_least(1000).await);
    let key = "whk:{rs.0}:s";
    let moving = Instant::now();
    let (from, to) = tokio::task::block_in_place(|| cluster.move_slot_of(key));
    eprintln!(
        "partition 0 moved from shard {from} to shard {to} in {:?}",
        moving.elapsed()
    );
    produce.finished().await?;
    let all = wait_until(Duration::from_secs(30), || {
        seen.lock().unwrap().delivered.len() as u64 == N
    })
    .await;
    let (got, dups) = {
        let s = seen.lock().unwrap();
        (
            s.delivered.len(),
            s.delivered.values().map(|c| u64::from(c - 1)).sum::<u64>(),
        )
    };
    eprintln!("delivered {got} of {N}, {dups} duplicates");
    if !all {
        let mut any = redis::cluster::ClusterClient::new(vec![cluster.url()])?.get_connection()?;
        for p in 0..3 {
            let s = format!("whk:{{rs.{p}}}:s");
            let len: u64 = redis::cmd("XLEN").arg(&s).query(&mut any)?;
            let groups: redis::Value = redis::cmd("XINFO").arg("GROUPS").arg(&s).query(&mut any)?;
            let due: u64 = redis::cmd("ZCARD")
                .arg(format!("whk:{{rs.{p}}}:r:siem:due"))
                .query(&mut any)?;
            let held: u64 = redis::cmd("ZCARD")
                .arg(format!("whk:{{rs.{p}}}:r:siem:held"))
                .query(&mut any)?;
            let dead: u64 = redis::cmd("XLEN")
                .arg(format!("whk:{{rs.{p}}}:dead"))
                .query(&mut any)
                .unwrap_or(0);
            eprintln!(
                "partition {p}: len {len} due {due} held {held} dead {dead} groups {groups:?}"
            );
        }
        let s = seen.lock().unwrap();
        let missing: Vec<u64> = (1..=N)
            .map(rename)
            .filter(|n| !s.delivered.contains_key(n))
            .collect();
        eprintln!(
            "missing {} e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(40)]
        );
        eprintln!(
            "counters a {:?} b {:?} p {:?}",
            qa.counters(),
            qb.counters(),
            producer.counters()
        );
    }
    assert!(all, "every event delivered: {got} of {N}");
    settled_and_closed(&producer, [(sa, qa), (sb, qb)]).await;
    Ok(())
}
