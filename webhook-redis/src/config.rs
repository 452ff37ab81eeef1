//! What a [`RedisQueue`](crate::RedisQueue) connects to and how it behaves.

use std::time::Duration;

use webhook_sender::OverflowPolicy;
use webhook_sender::outbox::Durability;

/// The configuration of a [`RedisQueue`](crate::RedisQueue).
///
/// ```
/// use std::time::Duration;
/// use webhook_redis::RedisQueueConfig;
/// use webhook_sender::OverflowPolicy;
/// let cfg = RedisQueueConfig::new("redis://127.0.0.1:6379", "orders")
///     .partitions(4)
///     .lease(Duration::from_secs(30))
///     .max_receives(5)
///     .max_len(1_000_000)
///     .overflow(OverflowPolicy::Block)
///     // the endpoints shared through Redis, the partitions spread over the live workers
///     .shared_registry(true)
///     .spread(true);
/// assert_eq!(cfg.queue_name(), "orders");
/// assert!(cfg.is_registry_shared() && cfg.is_spread());
/// ```
///
/// Its `Debug` print hides the URL's password:
///
/// ```
/// use webhook_redis::RedisQueueConfig;
/// let cfg = RedisQueueConfig::new("redis://worker:s3cret@10.0.0.5:6379", "orders");
/// let shown = format!("{cfg:?}");
/// assert!(shown.contains("worker:***@10.0.0.5") && !shown.contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RedisQueueConfig {
    pub(crate) url: String,
    pub(crate) queue: String,
    pub(crate) partitions: u16,
    pub(crate) consumer: Option<String>,
    pub(crate) lease: Duration,
    pub(crate) max_receives: u32,
    pub(crate) max_len: u64,
    pub(crate) overflow: OverflowPolicy,
    pub(crate) fetch: usize,
    pub(crate) block: Duration,
    pub(crate) batch: usize,
    pub(crate) durability: Durability,
    pub(crate) shared_registry: bool,
    pub(crate) spread: bool,
    pub(crate) replicas: Option<(u32, Duration)>,
    pub(crate) tls: Option<crate::RedisTls>,
}

impl std::fmt::Debug for RedisQueueConfig {
    // The URL's password is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueueConfig")
            .field("url", &crate::redact_url(&self.url))
            .field("queue", &self.queue)
            .field("partitions", &self.partitions)
            .field("consumer", &self.consumer)
            .field("lease", &self.lease)
            .field("max_receives", &self.max_receives)
            .field("max_len", &self.max_len)
            .field("overflow", &self.overflow)
            .field("fetch", &self.fetch)
            .field("block", &self.block)
            .field("batch", &self.batch)
            .field("durability", &self.durability)
            .field("shared_registry", &self.shared_registry)
            .field("spread", &self.spread)
            .field("replicas", &self.replicas)
            .field("tls", &self.tls)
            .finish()
    }
}

impl RedisQueueConfig {
    /// The queue `queue` on the server at `url` (`redis://[:password@]host:port[/db]`, or
    /// `rediss://` for TLS, see [`tls`](Self::tls)): 1 partition, a 30 s lease, 5 receives, 1,000,000 entries per
    /// partition under `Block`, reads of up to 256 entries.
    pub fn new(url: impl Into<String>, queue: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            queue: queue.into(),
            partitions: 1,
            consumer: None,
            lease: Duration::from_secs(30),
            max_receives: 5,
            max_len: 1_000_000,
            overflow: OverflowPolicy::Block,
            fetch: 256,
            block: Duration::from_secs(1),
            batch: 4096,
            durability: Durability::Sync,
            shared_registry: false,
            spread: false,
            replicas: None,
            tls: None,
        }
    }

    /// The queue's name.
    #[must_use]
    pub fn queue_name(&self) -> &str {
        &self.queue
    }

    /// The server's URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Streams the queue is split into (1 to 1024), each with its own hash tag, so that a
    /// Redis Cluster spreads them over its shards. Every process of a queue must use the same
    /// number.
    #[must_use]
    pub fn partitions(mut self, n: u16) -> Self {
        self.partitions = n.clamp(1, 1024);
        self
    }

    /// This process's consumer name (unique per process; default: `pid-<random>`).
    #[must_use]
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = Some(name.into());
        self
    }

    /// How long an entry handed to a worker stays its own without a renewal (at least
    /// 100 ms): the worker renews the lease of everything it holds every third of it, so only
    /// a worker that died or stalled loses its entries, which another reclaims.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(100));
        self
    }

    /// How many times an entry may be handed out (read once, reclaimed after each worker
    /// that held it died) before it goes to the dead-letter stream (at least 1).
    #[must_use]
    pub fn max_receives(mut self, n: u32) -> Self {
        self.max_receives = n.max(1);
        self
    }

    /// The most events one partition may hold (at least 1,000): its stream's entries plus the
    /// events waiting in its retry sets. What `send` does at the limit: `Block` waits for
    /// settled entries to be trimmed, `DropNewest` drops the event being sent, `DropOldest`
    /// trims the oldest entries of the stream (counted as dropped; waiting retries are kept).
    #[must_use]
    pub fn max_len(mut self, n: u64) -> Self {
        self.max_len = n.max(1000);
        self
    }

    /// The policy at [`max_len`](Self::max_len).
    #[must_use]
    pub fn overflow(mut self, policy: OverflowPolicy) -> Self {
        self.overflow = policy;
        self
    }

    /// The most entries one read takes (1 to 10,000).
    #[must_use]
    pub fn fetch(mut self, n: usize) -> Self {
        self.fetch = n.clamp(1, 10_000);
        self
    }

    /// How long a read waits on the server for new entries (10 ms to 10 s).
    #[must_use]
    pub fn block(mut self, d: Duration) -> Self {
        self.block = d.clamp(Duration::from_millis(10), Duration::from_secs(10));
        self
    }

    /// When a sender's `send` over this queue returns: [`Durability::Sync`] (the default)
    /// once Redis answered the append (concurrent sends share one pipeline); any
    /// [`Durability::Interval`] at once, the append written by the background writer within
    /// its next round trip (a process killed in between loses what was buffered). Either way
    /// Redis's own persistence (AOF, `appendfsync`) decides what survives a crash of Redis.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Share the endpoint registry of a [`Sender`](webhook_sender::Sender) over this queue
    /// through Redis (off by default): [`OutboxStore::save_registry`] writes this process's
    /// registry changes there, [`OutboxStore::load_registry`] reads the shared registry (to
    /// seed a sender), and [`SharedRegistry::watch`](crate::SharedRegistry::watch) applies the
    /// changes of every other process to a sender within a second. See the module
    /// [`registry`](crate::registry). Off, each process keeps its own endpoints (`load_registry`
    /// answers `None`, `save_registry` does nothing).
    ///
    /// [`OutboxStore::save_registry`]: webhook_sender::outbox::OutboxStore::save_registry
    /// [`OutboxStore::load_registry`]: webhook_sender::outbox::OutboxStore::load_registry
    #[must_use]
    pub fn shared_registry(mut self, on: bool) -> Self {
        self.shared_registry = on;
        self
    }

    /// Spread the reading over the live workers (off by default): each (endpoint, partition)
    /// pair is read by one live worker, chosen by rendezvous hashing over the workers that
    /// serve the endpoint, and moves when a worker joins, leaves or dies (heartbeats every
    /// 500 ms, dead after 3 s). Off, every worker reads every pair (what lets one slow endpoint
    /// use many workers). Every worker of a queue should use the same setting; see the module
    /// [`members`](crate::members).
    #[must_use]
    pub fn spread(mut self, on: bool) -> Self {
        self.spread = on;
        self
    }

    /// Confirm a write only once `n` replicas of its primary hold it (off by default): every
    /// write round (appends, retry-set changes, acknowledgements) ends with `WAIT n timeout`
    /// on its shard, and a round that `n` replicas did not acknowledge within `timeout` is
    /// sent again whole, like a round Redis did not answer (an append in it may be appended
    /// twice: at least once). So a `send` confirmed under [`Durability::Sync`], and anything
    /// [`flush`](crate::RedisQueue::flush) waited for, survives the loss of its primary
    /// once a replica that held it is promoted. Without it, Redis replicates asynchronously
    /// and a failover loses the last writes the primary confirmed.
    ///
    /// The price: each round waits for a replica's acknowledgement (a loopback round trip
    /// here), and while a shard has fewer than `n` replicas in sync, its writes wait (the
    /// writes buffered count against [`max_len`](Self::max_len), so the producer meets the
    /// overflow policy), as a Kafka producer with `acks=all` waits for its in-sync replicas. `n` is at
    /// least 1; `timeout` is 10 ms to 60 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use webhook_redis::RedisQueueConfig;
    /// let cfg = RedisQueueConfig::new("redis://127.0.0.1:7000", "orders")
    ///     .replicas(1, Duration::from_secs(1));
    /// assert_eq!(cfg.replicas_required(), Some((1, Duration::from_secs(1))));
    /// ```
    #[must_use]
    pub fn replicas(mut self, n: u32, timeout: Duration) -> Self {
        self.replicas = Some((
            n.max(1),
            timeout.clamp(Duration::from_millis(10), Duration::from_secs(60)),
        ));
        self
    }

    /// A private CA and/or a client certificate for a `rediss://` URL (which alone encrypts
    /// and verifies the server against the system's roots). Connecting with this set and a
    /// `redis://` URL is refused ([`RedisQueueError::Url`](crate::RedisQueueError::Url)).
    #[must_use]
    pub fn tls(mut self, tls: crate::RedisTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The TLS settings ([`tls`](Self::tls)), if any.
    #[must_use]
    pub fn tls_config(&self) -> Option<&crate::RedisTls> {
        self.tls.as_ref()
    }

    /// The replicas a write waits for ([`replicas`](Self::replicas)), if any.
    #[must_use]
    pub fn replicas_required(&self) -> Option<(u32, Duration)> {
        self.replicas
    }

    /// Whether the registry is shared ([`shared_registry`](Self::shared_registry)).
    #[must_use]
    pub fn is_registry_shared(&self) -> bool {
        self.shared_registry
    }

    /// Whether reading is spread over the workers ([`spread`](Self::spread)).
    #[must_use]
    pub fn is_spread(&self) -> bool {
        self.spread
    }

    /// The most writes sent in one pipeline (1 to 100,000).
    #[must_use]
    pub fn pipeline(mut self, n: usize) -> Self {
        self.batch = n.clamp(1, 100_000);
        self
    }
}

/// The keys of one queue. Every key of a partition carries the hash tag `{<queue>.<p>}`.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) streams: Vec<String>,
    pub(crate) dead: Vec<String>,
    tags: Vec<String>,
    /// HASH endpoint name → [`EndpointSpec`](webhook_sender::EndpointSpec) JSON.
    pub(crate) reg_endpoints: String,
    /// HASH event set name → [`EventSet`](webhook_core::EventSet) JSON.
    pub(crate) reg_sets: String,
    /// STRING: the registry's version, incremented by every change.
    pub(crate) reg_version: String,
    /// The pub/sub channel a change is announced on (the new version).
    pub(crate) reg_channel: String,
    /// ZSET consumer → last heartbeat (ms, Redis's clock).
    pub(crate) workers: String,
    /// HASH consumer → the endpoints it serves and the pairs it reads (JSON).
    pub(crate) members: String,
}

/// The keys of one endpoint's retries in one partition: the batches waiting for their due
/// time, those handed to a process (scored by the end of its lease), their data, and their
/// event and receive counts.
#[derive(Debug, Clone)]
pub(crate) struct RetryKeys {
    pub(crate) due: String,
    pub(crate) held: String,
    pub(crate) data: String,
    pub(crate) meta: String,
    /// Events waiting in every endpoint's retry set of the partition (they count against
    /// its length limit).
    pub(crate) count: String,
}

impl Keys {
    pub(crate) fn new(queue: &str, partitions: u16) -> Self {
        let tags: Vec<String> = (0..partitions)
            .map(|p| format!("whk:{{{queue}.{p}}}"))
            .collect();
        Self {
            streams: tags.iter().map(|t| format!("{t}:s")).collect(),
            dead: tags.iter().map(|t| format!("{t}:dead")).collect(),
            tags,
            reg_endpoints: format!("whk:{{{queue}}}:reg:endpoints"),
            reg_sets: format!("whk:{{{queue}}}:reg:sets"),
            reg_version: format!("whk:{{{queue}}}:reg:version"),
            reg_channel: format!("whk:{{{queue}}}:reg:changed"),
            workers: format!("whk:{{{queue}}}:workers"),
            members: format!("whk:{{{queue}}}:members"),
        }
    }

    /// `group`'s retry keys in partition `part` (`whk:{<queue>.<p>}:r:<group>:due`, ...).
    pub(crate) fn retry(&self, part: usize, group: &str) -> RetryKeys {
        let t = &self.tags[part];
        RetryKeys {
            due: format!("{t}:r:{group}:due"),
            held: format!("{t}:r:{group}:held"),
            data: format!("{t}:r:{group}:data"),
            meta: format!("{t}:r:{group}:meta"),
            count: format!("{t}:r:events"),
        }
    }
}
