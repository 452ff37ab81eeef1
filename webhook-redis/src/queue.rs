//! The Redis Streams queue: an [`OutboxStore`] shared by any number of processes.
//!
//! # Layout
//!
//! A queue named `Q` with `P` partitions keeps, per partition `p`, a stream `whk:{Q.p}:s`
//! (the events) and a stream `whk:{Q.p}:dead` (the dead letters); the braces are the hash tag,
//! so every key of a partition lives in one Redis Cluster slot and the partitions spread over
//! the slots. Each endpoint is a consumer group on every partition's stream, named like the
//! endpoint; each process is one consumer, with a name of its own.
//!
//! # The life of an entry
//!
//! * `append` (a sender's `send`, [`RedisQueue::enqueue`], `webhook enqueue`) buffers the
//!   entry; one background task writes the buffer with one pipeline of `XADD`s (up to
//!   [`pipeline`](crate::RedisQueueConfig::pipeline) per round trip) and resolves
//!   [`synced`](OutboxStore::synced) once Redis answered. Partitions are filled in turn.
//! * A process delivering to an endpoint reads its group with `XREADGROUP … BLOCK` into a
//!   small buffer the endpoint's driver takes from ([`OutboxStore::feed`]); the entry is then
//!   pending for this consumer, with a lease renewed every third of the lease
//!   (`XCLAIM … JUSTID` to itself, which does not count a delivery).
//! * Settled (delivered, or given up into the dead letters, or dropped), it is acknowledged
//!   (`XACK`, pipelined with the appends). Acknowledged by every group, it is trimmed
//!   (`XTRIM MINID` up to the oldest entry some group still holds, every half second).
//! * A process that dies leaves its entries pending: once idle past the lease, another
//!   process claims them (`XAUTOCLAIM`, which counts a delivery). An entry handed out more
//!   than [`max_receives`](crate::RedisQueueConfig::max_receives) times goes to the
//!   dead-letter stream instead (a poison entry that kills its workers stops looping).
//! * Retries are scheduled in Redis. A batch whose attempt failed goes to its endpoint's
//!   retry set in one partition (`whk:{Q.p}:r:<endpoint>:due`, a sorted set scored by the
//!   due time, with the batch's events, attempts, first-attempt time and attempt log in a hash
//!   beside it), in one transaction, and only then are its stream entries acknowledged; the
//!   sender forgets it ([`OutboxStore::schedules_retries`]). No process holds a waiting retry
//!   in memory, and the process that made the attempt may die: the retry is still sent when
//!   due, by whichever process of the endpoint takes it, with the same batch id (the
//!   `webhook-id`) and the attempts counted on, so the retry policy's limits hold across
//!   processes.
//! * Taking due retries is one atomic script that any number of processes run (every quarter
//!   second, or sooner when the next due time is known): each due batch moves to the held set,
//!   scored by the end of a lease the taker renews while the batch is in flight, and goes to
//!   one taker. This replaces the "one mover holding a short lock" of other designs: there is
//!   no lock to expire or to lose with its holder, and a due batch waits at most one polling
//!   period, however many processes run. A lease that runs out (the taker died) makes the
//!   batch due again at once; a batch taken more than
//!   [`max_receives`](crate::RedisQueueConfig::max_receives) times without an attempt being
//!   recorded goes to the dead letters. A process that closes hands the retries it took back,
//!   due at once.
//!
//! # Faults
//!
//! Every background task reconnects with a backoff (the connection manager's); writes are
//! kept until Redis answers them (a Redis outage makes `synced`, and so `send`, wait). A
//! missing stream or group (`NOGROUP`: Redis restarted without persistence, or the group was
//! destroyed) is created again at once, with a warning, and read from the start.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::{RedisError, Value};
use tokio::sync::{Notify, watch};
use webhook_core::Event;
use webhook_sender::outbox::{
    Appended, AttemptInfo, BatchRecord, DeadLetterEntry, Durability, Filter, OutboxError,
    OutboxStats, OutboxStore, ReadCursor, ReadOut, RecoveryReport, RestoredBatch, SettleKind,
    StoreFuture,
};
use webhook_sender::{OverflowPolicy, RegistrySnapshot};

use crate::config::{Keys, RedisQueueConfig};
use crate::conn::{Conn, Server};
use crate::{codec, scripts};

/// What can go wrong connecting a [`RedisQueue`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisQueueError {
    /// The URL is not a Redis URL.
    #[error("not a Redis URL: {0}")]
    Url(String),
    /// The server could not be reached or refused a command.
    #[error("redis: {0}")]
    Redis(String),
    /// The server is older than Redis 6.2 (`XAUTOCLAIM`, `XTRIM MINID`).
    #[error("redis {0} is too old: 6.2 or later is needed")]
    Version(String),
}

impl From<RedisError> for RedisQueueError {
    fn from(e: RedisError) -> Self {
        Self::Redis(e.to_string())
    }
}

/// Counters of a queue's background work in this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueCounters {
    /// Entries appended (written to Redis).
    pub appended: u64,
    /// Entries handed to this process by a read.
    pub read: u64,
    /// Entries this process claimed from a worker that died or stalled.
    pub reclaimed: u64,
    /// Entries this process moved to the dead letters at the receive limit.
    pub dead_by_receives: u64,
    /// Entries acknowledged.
    pub acked: u64,
    /// Groups created again after `NOGROUP`.
    pub groups_recreated: u64,
    /// Commands that failed for want of Redis (retried).
    pub redis_errors: u64,
    /// Entries dropped at the length limit (`DropNewest`, `DropOldest`).
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    appended: AtomicU64,
    read: AtomicU64,
    reclaimed: AtomicU64,
    dead_by_receives: AtomicU64,
    acked: AtomicU64,
    groups_recreated: AtomicU64,
    redis_errors: AtomicU64,
    dropped: AtomicU64,
}

/// A write waiting for the pipeline.
#[derive(Debug)]
enum Op {
    /// A whole `XADD` (key, trim, fields), built when appended.
    Add {
        part: usize,
        cmd: redis::Cmd,
        ticket: u64,
    },
    Ack {
        part: usize,
        group: Arc<str>,
        id: String,
    },
    /// A batch waiting for a retry, into its endpoint's retry set (written before the
    /// acknowledgements of its entries).
    Park {
        part: usize,
        group: Arc<str>,
        batch: Box<str>,
        due_ms: u64,
        blob: Vec<u8>,
        events: usize,
    },
    /// A batch taken from the retry set and settled: removed.
    Unpark {
        part: usize,
        group: Arc<str>,
        batch: Box<str>,
    },
}

/// An event handed to this process.
#[derive(Debug)]
struct Held {
    part: usize,
    group: Arc<str>,
    /// Its stream entry (`None`: an event of a batch taken from the retry set).
    id: Option<String>,
    /// The event (kept to park its batch if an attempt fails).
    event: Event,
}

/// A batch this process is delivering.
#[derive(Debug, Default)]
struct BatchState {
    /// The seqs of its events.
    seqs: Vec<u64>,
    /// When its first attempt was made, ms since the Unix epoch.
    first_ms: u64,
    /// Its failed attempts, oldest first.
    log: Vec<AttemptInfo>,
    /// Taken from the retry set of this partition (leased to this process).
    taken: Option<usize>,
}

/// One endpoint's reading in this process.
#[derive(Debug)]
struct Feed {
    /// Entries read and not yet taken by the driver.
    buf: VecDeque<(u64, Event)>,
    /// Notified when `buf` grows.
    readable: Arc<Notify>,
    /// Notified when `buf` shrinks (a reader waiting for room reads again).
    room: Arc<Notify>,
    /// Batches taken from the retry set and not yet read by the driver.
    batches: VecDeque<RestoredBatch>,
    /// Which start of the feed this is: the tasks of a feed stopped and started again (an
    /// endpoint removed and added back) tell themselves apart by it.
    generation: u64,
    /// Read from Redis; `false`: asked for while its endpoint is out of the shared registry
    /// (by the driver settling what the removed endpoint held), started if it comes back.
    active: bool,
}

#[derive(Debug, Default)]
struct State {
    ops: VecDeque<Op>,
    next_ticket: u64,
    next_seq: u64,
    next_part: usize,
    /// Appends buffered and not written, per partition.
    unwritten: Vec<u64>,
    held: HashMap<u64, Held>,
    feeds: HashMap<Arc<str>, Feed>,
    feed_generation: u64,
    /// The batches this process is delivering, by endpoint and batch id.
    batches: HashMap<(Arc<str>, Box<str>), BatchState>,
}

impl State {
    /// Keeps an event handed to this process (from the stream entry `id`, or from a batch
    /// taken from the retry set); returns its seq.
    fn hold(&mut self, part: usize, group: &Arc<str>, id: Option<String>, event: &Event) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.held.insert(
            seq,
            Held {
                part,
                group: group.clone(),
                id,
                event: event.clone(),
            },
        );
        seq
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) cfg: RedisQueueConfig,
    pub(crate) keys: Keys,
    pub(crate) server: Server,
    pub(crate) conn: Conn,
    pub(crate) consumer: String,
    runtime: tokio::runtime::Handle,
    state: Mutex<State>,
    wake_writer: Notify,
    synced_tx: watch::Sender<u64>,
    /// The same position, for blocking waiters.
    synced_sync: (Mutex<u64>, Condvar),
    /// One pipeline writer at a time (the task or a blocking `sync_now`).
    writing: AtomicBool,
    space: Notify,
    pub(crate) stop: watch::Sender<bool>,
    /// Per partition: the stream's length as last seen, plus what this process appended since.
    lengths: Vec<AtomicU64>,
    /// Per partition: events waiting in its retry sets, as last seen (they count against the
    /// length limit too).
    waiting: Vec<AtomicU64>,
    /// Bumped by every pipeline answered: a length read from before it is stale.
    length_gen: AtomicU64,
    counters: Counters,
    warnings: Vec<String>,
    /// The admin calls' blocking connection.
    admin: Mutex<Option<Admin>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The shared registry's state in this process (see [`crate::registry`]).
    pub(crate) registry: crate::registry::RegistryState,
    /// The live workers and the pairs this one reads, with [`spread`](RedisQueueConfig::spread).
    pub(crate) members: Option<Arc<crate::members::Members>>,
}

/// The blocking connection of the administrative calls.
struct Admin(Box<dyn redis::ConnectionLike + Send>);

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admin")
    }
}

/// A queue on Redis Streams shared by many processes: an [`OutboxStore`] that any number of
/// senders append to and any number of worker processes deliver from. Cheap to clone.
///
/// ```no_run
/// use std::sync::Arc;
/// use webhook_core::{Endpoint, Event};
/// use webhook_redis::{RedisQueue, RedisQueueConfig};
/// use webhook_sender::outbox::Outbox;
/// use webhook_sender::{EndpointConfig, Sender};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cfg = RedisQueueConfig::new("redis://127.0.0.1:6379", "orders");
/// // A producer appends (and returns once Redis has the event).
/// let queue = RedisQueue::connect(cfg.clone()).await?;
/// let event = Event::builder("evt_1", "order.paid").json_bytes(&br#"{"a":1}"#[..])?;
/// queue.enqueue(&event).await?;
/// // A worker (any number of them, in any process) delivers to one endpoint.
/// let queue = RedisQueue::connect(cfg).await?;
/// let sender = Sender::builder()
///     .outbox_open(Outbox::from_store(Arc::new(queue.clone())))
///     .endpoint(EndpointConfig::builder("siem", Endpoint::builder("https://siem.example/in").build()?).build()?)
///     .build()?;
/// // ... until told to stop:
/// sender.shutdown(std::time::Duration::from_secs(10)).await;
/// queue.close().await; // writes the last acknowledgements, hands back what it held
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RedisQueue {
    pub(crate) inner: Arc<Inner>,
}

/// The most failed attempts a batch's log keeps (the newest).
const MAX_LOG: usize = 32;

/// FNV-1a: where a batch's retry (or an event's dead letter) goes among the partitions.
fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `d` in whole milliseconds.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How often a process looks for retries that fell due (at most; sooner when the next due
/// time is known to be sooner).
const TAKE_EVERY: Duration = Duration::from_millis(250);

pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(u128::from(now_ms()) << 32 | u128::from(std::process::id()));
    h.finish()
}

fn backend(e: impl std::fmt::Display) -> OutboxError {
    OutboxError::Backend(e.to_string())
}

/// An entry's fields, as name and value pairs.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// An entry read or claimed: its id, its fields (`None`: the entry was deleted), how many times
/// it was handed out.
type Got = (String, Option<Fields>, u64);

/// The bytes of a bulk string (or a simple string).
fn bytes_of(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.clone().into_bytes()),
        _ => None,
    }
}

fn string_of(v: &Value) -> Option<String> {
    bytes_of(v).and_then(|b| String::from_utf8(b).ok())
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => string_of(other).and_then(|s| s.parse().ok()),
    }
}

pub(crate) fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        _ => &[],
    }
}

/// `XINFO GROUPS stream`: each group's fields (none when the stream does not exist).
pub(crate) async fn groups_of(conn: &mut Conn, stream: &str) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    let groups: Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(conn)
        .await
        .unwrap_or(Value::Nil);
    items(&groups).iter().map(pairs).collect()
}

/// `[k, v, k, v, ...]` (or a RESP3 map) as pairs.
pub(crate) fn pairs(v: &Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    match v {
        Value::Map(m) => m
            .iter()
            .filter_map(|(k, v)| Some((bytes_of(k)?, bytes_of(v)?)))
            .collect(),
        _ => items(v)
            .chunks(2)
            .filter_map(|c| Some((bytes_of(c.first()?)?, bytes_of(c.get(1)?)?)))
            .collect(),
    }
}

/// `[[id, [fields]], ...]`: the entries of an `XRANGE` or of one stream of an `XREADGROUP`.
fn entries(v: &Value) -> Vec<(String, Option<Fields>)> {
    items(v)
        .iter()
        .filter_map(|e| {
            let e = items(e);
            let id = string_of(e.first()?)?;
            let fields = e.get(1).filter(|f| !matches!(f, Value::Nil)).map(pairs);
            Some((id, fields))
        })
        .collect()
}

fn is_nogroup(e: &RedisError) -> bool {
    e.code() == Some("NOGROUP") || e.to_string().contains("NOGROUP")
}

impl RedisQueue {
    /// Connects (checking the server: version 6.2 or later, persistence and eviction
    /// policy, see [`warnings`](Self::warnings)) and starts the background writer and
    /// trimmer. Call inside a tokio runtime.
    ///
    /// # Errors
    /// [`RedisQueueError`] when the URL is bad, the server cannot be reached, or is too old.
    pub async fn connect(cfg: RedisQueueConfig) -> Result<Self, RedisQueueError> {
        let (server, conn, node) = Server::open(&cfg.url, cfg.tls.as_ref()).await?;
        let warnings = crate::check::server(&mut node.clone()).await?;
        for w in &warnings {
            tracing::warn!(queue = %cfg.queue, "{w}");
        }
        let consumer = cfg
            .consumer
            .clone()
            .unwrap_or_else(|| format!("{}-{:08x}", std::process::id(), random_u64() as u32));
        let parts = usize::from(cfg.partitions);
        let keys = Keys::new(&cfg.queue, cfg.partitions);
        let (stop, _) = watch::channel(false);
        let members = cfg
            .spread
            .then(|| Arc::new(crate::members::Members::new(&consumer)));
        let inner = Arc::new(Inner {
            registry: crate::registry::RegistryState::new(cfg.shared_registry),
            members: members.clone(),
            keys,
            server,
            conn,
            consumer,
            runtime: tokio::runtime::Handle::current(),
            state: Mutex::new(State {
                next_seq: 1,
                next_ticket: 1,
                unwritten: vec![0; parts],
                ..State::default()
            }),
            wake_writer: Notify::new(),
            synced_tx: watch::channel(0).0,
            synced_sync: (Mutex::new(0), Condvar::new()),
            writing: AtomicBool::new(false),
            space: Notify::new(),
            stop,
            lengths: (0..parts).map(|_| AtomicU64::new(0)).collect(),
            waiting: (0..parts).map(|_| AtomicU64::new(0)).collect(),
            length_gen: AtomicU64::new(0),
            counters: Counters::default(),
            warnings,
            admin: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            cfg,
        });
        let q = Self { inner };
        q.spawn(Self::writer(q.inner.clone()));
        for p in 0..parts {
            q.spawn(Self::maintain(q.inner.clone(), p));
        }
        if let Some(m) = members {
            q.spawn(crate::members::run(q.clone(), m));
        }
        Ok(q)
    }

    pub(crate) fn spawn(&self, f: impl Future<Output = ()> + Send + 'static) {
        let h = self.inner.runtime.spawn(f);
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(h);
    }

    /// This process's consumer name.
    #[must_use]
    pub fn consumer(&self) -> &str {
        &self.inner.consumer
    }

    /// What the startup check found: persistence off, an eviction policy that may evict the
    /// queue's keys (also logged as warnings).
    #[must_use]
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &RedisQueueConfig {
        &self.inner.cfg
    }

    /// Counters of this process's work on the queue.
    #[must_use]
    pub fn counters(&self) -> QueueCounters {
        let c = &self.inner.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        QueueCounters {
            appended: l(&c.appended),
            read: l(&c.read),
            reclaimed: l(&c.reclaimed),
            dead_by_receives: l(&c.dead_by_receives),
            acked: l(&c.acked),
            groups_recreated: l(&c.groups_recreated),
            redis_errors: l(&c.redis_errors),
            dropped: l(&c.dropped),
        }
    }

    /// Appends `event` for every group (every endpoint reading the queue) and waits until
    /// Redis has it.
    ///
    /// # Errors
    /// [`OutboxError::Full`] at the length limit under `Block` or `DropNewest`.
    pub async fn enqueue(&self, event: &Event) -> Result<(), OutboxError> {
        match self.append(&[], event, SystemTime::now())? {
            Appended::Written { ticket, .. } => self.synced(ticket).await,
            _ => Err(OutboxError::Full),
        }
    }

    /// Appends `event` without waiting (buffered; [`flush`](Self::flush) waits for every
    /// append so far). The fast path of a producer.
    ///
    /// # Errors
    /// [`OutboxError::Full`] at the length limit under `Block` or `DropNewest`.
    pub fn enqueue_nowait(&self, event: &Event) -> Result<(), OutboxError> {
        match self.append(&[], event, SystemTime::now())? {
            Appended::Written { .. } => Ok(()),
            _ => Err(OutboxError::Full),
        }
    }

    /// Waits until every append so far is in Redis (and every acknowledgement sent).
    ///
    /// # Errors
    /// Never at present (waits while Redis is unreachable).
    pub async fn flush(&self) -> Result<(), OutboxError> {
        let last = self.next_ticket_minus_one();
        loop {
            self.inner.wake_writer.notify_one();
            let empty = self
                .inner
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .ops
                .is_empty();
            if empty
                && *self.inner.synced_tx.borrow() >= last
                && !self.inner.writing.load(Ordering::Acquire)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn next_ticket_minus_one(&self) -> u64 {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next_ticket
            .saturating_sub(1)
    }

    /// Deletes the whole queue from Redis and returns how many keys went: each partition's
    /// stream (with its consumer groups, pending entries included), dead letters and retry
    /// sets, and the shared registry, worker heartbeats and memberships. Undelivered events
    /// are gone. Stop every other process of the queue first: a worker still running would
    /// create its groups again. This handle stays usable (an append creates the queue anew).
    ///
    /// # Errors
    /// [`RedisQueueError::Redis`] when Redis cannot be reached; keys already deleted stay
    /// deleted, and calling again finishes the job.
    pub async fn destroy(&self) -> Result<u64, RedisQueueError> {
        let keys = &self.inner.keys;
        let mut conn = self.inner.conn.clone();
        // The endpoints: the streams' groups and the registry's entries (a removed endpoint
        // may have left retry keys without a group).
        let mut names: Vec<String> = redis::cmd("HKEYS")
            .arg(&keys.reg_endpoints)
            .query_async(&mut conn)
            .await?;
        for stream in &keys.streams {
            for g in groups_of(&mut conn, stream).await {
                if let Some((_, v)) = g.into_iter().find(|(k, _)| k == b"name") {
                    names.push(String::from_utf8_lossy(&v).into_owned());
                }
            }
        }
        names.sort();
        names.dedup();
        let mut deleted = 0;
        // One DEL per partition (its keys share a slot), then one for the queue's own keys.
        for part in 0..keys.streams.len() {
            let mut del = redis::cmd("DEL");
            del.arg(&keys.streams[part]).arg(&keys.dead[part]);
            del.arg(&keys.retry(part, "").count);
            for n in &names {
                let k = keys.retry(part, n);
                del.arg(k.due).arg(k.held).arg(k.data).arg(k.meta);
            }
            deleted += del.query_async::<u64>(&mut conn).await?;
        }
        deleted += redis::cmd("DEL")
            .arg(&keys.reg_endpoints)
            .arg(&keys.reg_sets)
            .arg(&keys.reg_version)
            .arg(&keys.workers)
            .arg(&keys.members)
            .query_async::<u64>(&mut conn)
            .await?;
        Ok(deleted)
    }

    /// Stops reading, writes what is buffered, hands the entries this process still holds
    /// back to the other workers (they claim them at once, without waiting for the lease),
    /// and stops the background tasks. Call after the sender's shutdown.
    pub async fn close(&self) {
        let _ = self.inner.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.flush()).await;
        let groups: Vec<Arc<str>> = {
            let mut s = self
                .inner
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            s.held.clear();
            s.feeds
                .iter()
                .filter(|(_, f)| f.active)
                .map(|(g, _)| g.clone())
                .collect()
        };
        let mut conn = self.inner.conn.clone();
        // Retries taken and not settled: due again at once, for another process (the take
        // did not count as a receive).
        let taken: Vec<(Arc<str>, Box<str>, usize)> = {
            let mut s = self
                .inner
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            s.batches
                .drain()
                .filter_map(|((g, b), st)| Some((g, b, st.taken?)))
                .collect()
        };
        let now = now_ms();
        for (g, b, part) in &taken {
            // One transaction per batch (its keys share one slot).
            let k = self.inner.keys.retry(*part, g);
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("ZREM")
                .arg(&k.held)
                .arg(&**b)
                .cmd("ZADD")
                .arg(&k.due)
                .arg(now)
                .arg(&**b)
                .cmd("HINCRBY")
                .arg(&k.meta)
                .arg(format!("r:{b}"))
                .arg(-1);
            if let Err(e) = pipe.query_async::<Value>(&mut conn).await {
                tracing::warn!(error = %e, batch = %b, "handing back a retry held failed: it is taken again after the lease");
            }
        }
        for g in &groups {
            for key in &self.inner.keys.streams {
                let r: Result<i64, _> = scripts::RELEASE
                    .key(key)
                    .arg(&**g)
                    .arg(&self.inner.consumer)
                    .arg(86_400_000u64)
                    .invoke_async(&mut conn)
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, group = %g, "handing back the entries held failed: they are reclaimed after the lease");
                }
            }
        }
        // Left after the hand-back: the pairs' new owners claim at once what they see
        // handed back.
        crate::members::leave(self).await;
        let tasks: Vec<_> = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for t in tasks {
            t.abort();
        }
    }

    // ---- the writer --------------------------------------------------------------------

    /// Writes buffered appends and acknowledgements: up to [`WRITES_IN_FLIGHT`] pipelines at
    /// once (Redis works through one while the next is packed and sent), each settled in
    /// order, a failed one retried until Redis answers.
    async fn writer(inner: Arc<Inner>) {
        let conn = inner.conn.clone();
        let mut backoff = Duration::from_millis(50);
        let mut in_flight: VecDeque<(Flight, Meta)> = VecDeque::new();
        loop {
            while in_flight.len() < WRITES_IN_FLIGHT {
                let ops = take_ops(&inner, in_flight.len());
                if ops.is_empty() {
                    break;
                }
                let (mut writes, meta) = build_pipeline(&inner, ops);
                let c = inner.conn.clone();
                let flight = inner.runtime.spawn(async move {
                    let r = writes.run(&c).await;
                    (writes, r)
                });
                in_flight.push_back((flight, meta));
            }
            let Some((flight, meta)) = in_flight.pop_front() else {
                // (`take_ops` found nothing and cleared `writing`; nothing is in flight)
                inner.wake_writer.notified().await;
                continue;
            };
            let (mut pipe, mut r) = match flight.await {
                Ok(done) => done,
                Err(e) => {
                    // Only when the runtime shuts down (the process is ending).
                    tracing::error!(error = %e, "a redis write was cut off");
                    continue;
                }
            };
            loop {
                let why = match &r {
                    Ok(results) => {
                        written(&inner, &meta, results);
                        backoff = Duration::from_millis(50);
                        break;
                    }
                    Err(why) => why,
                };
                // What did not go through, again, later (an append Redis took before the
                // failure is appended twice: at least once).
                inner.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(retry_in = ?backoff, "{why}; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                r = pipe.run(&conn).await;
            }
        }
    }

    // ---- maintenance -------------------------------------------------------------------

    /// Every half second: trims what every group settled and refreshes the length.
    async fn maintain(inner: Arc<Inner>, part: usize) {
        let mut conn = inner.conn.clone();
        let key = inner.keys.streams[part].clone();
        let waiting_key = inner.keys.retry(part, "").count;
        loop {
            let waiting: Result<Option<i64>, _> = redis::cmd("GET")
                .arg(&waiting_key)
                .query_async(&mut conn)
                .await;
            let waiting = match waiting {
                Ok(n) => {
                    let n = u64::try_from(n.unwrap_or(0)).unwrap_or(0);
                    inner.waiting[part].store(n, Ordering::Relaxed);
                    n
                }
                Err(_) => inner.waiting[part].load(Ordering::Relaxed),
            };
            let trimmed: Result<i64, _> = scripts::TRIM.key(&key).invoke_async(&mut conn).await;
            if let Err(e) = &trimmed {
                tracing::debug!(error = %e, "trimming failed");
            }
            let seen_gen = inner.length_gen.load(Ordering::Acquire);
            let len: Result<u64, _> = redis::cmd("XLEN").arg(&key).query_async(&mut conn).await;
            if let Ok(len) = len {
                // Only with no append in flight and none answered meanwhile: one written but
                // not yet accounted for would be counted twice, one answered since is missing.
                let s = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
                if s.unwritten[part] == 0
                    && !inner.writing.load(Ordering::Acquire)
                    && inner.length_gen.load(Ordering::Acquire) == seen_gen
                {
                    inner.lengths[part].store(len, Ordering::Relaxed);
                }
                drop(s);
                if len + waiting < inner.cfg.max_len {
                    inner.space.notify_waiters();
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // ---- reading -----------------------------------------------------------------------

    /// Starts reading `group` (creating it on every partition, from the start of the stream).
    fn start_feed(&self, group: &Arc<str>) -> Arc<Notify> {
        let mut s = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = s.feeds.get(group) {
            return f.readable.clone();
        }
        let readable = Arc::new(Notify::new());
        let room = Arc::new(Notify::new());
        s.feed_generation += 1;
        let generation = s.feed_generation;
        let active = !self.inner.registry.is_stopped(group);
        s.feeds.insert(
            group.clone(),
            Feed {
                buf: VecDeque::new(),
                readable: readable.clone(),
                room: room.clone(),
                batches: VecDeque::new(),
                generation,
                active,
            },
        );
        drop(s);
        if active {
            self.spawn_feed(group, generation, &room);
        }
        readable
    }

    fn spawn_feed(&self, group: &Arc<str>, generation: u64, room: &Arc<Notify>) {
        if let Some(m) = &self.inner.members {
            m.feeds_changed();
        }
        for p in 0..usize::from(self.inner.cfg.partitions) {
            let feed = (group.clone(), generation);
            self.spawn(Self::reader(
                self.inner.clone(),
                feed.clone(),
                p,
                room.clone(),
            ));
            self.spawn(Self::reclaimer(self.inner.clone(), feed.clone(), p));
            self.spawn(Self::renewer(self.inner.clone(), feed.clone(), p));
            self.spawn(Self::taker(self.inner.clone(), feed, p));
        }
    }

    /// The endpoint of `group` is in the shared registry again: a feed asked for while it was
    /// out starts reading.
    pub(crate) fn resume_feed(&self, group: &str) {
        if !self.inner.registry.unstop(group) {
            return;
        }
        let mut s = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        s.feed_generation += 1;
        let generation = s.feed_generation;
        let Some((name, f)) = s.feeds.get_key_value(group) else {
            return;
        };
        if f.active {
            return;
        }
        let (name, room) = (name.clone(), f.room.clone());
        if let Some(f) = s.feeds.get_mut(group) {
            // A new generation: a task of the stopped one still finishing its read ends.
            f.active = true;
            f.generation = generation;
        }
        drop(s);
        self.spawn_feed(&name, generation, &room);
    }

    /// Stops reading `group` in this process (its endpoint was removed from the shared
    /// registry): its tasks end and, with spreading, its pairs are no longer this worker's.
    /// What was read stays for the driver, which settles it by the removal's policy.
    pub(crate) fn stop_feed(&self, group: &str) {
        let mut s = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.inner.registry.stop(group);
        let Some(f) = s.feeds.get_mut(group) else {
            return;
        };
        f.active = false;
        let (room, readable) = (f.room.clone(), f.readable.clone());
        drop(s);
        room.notify_waiters();
        readable.notify_waiters();
        if let Some(m) = &self.inner.members {
            m.feeds_changed();
        }
    }

    /// The groups this process reads (the endpoints fed from the queue).
    pub(crate) fn fed_groups(&self) -> Vec<Arc<str>> {
        let s = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut g: Vec<Arc<str>> = s
            .feeds
            .iter()
            .filter(|(_, f)| f.active)
            .map(|(g, _)| g.clone())
            .collect();
        g.sort();
        g
    }

    /// Reads new entries of one partition for `group` while its buffer has room (and, with
    /// spreading, while this worker owns the pair: its blocking connection is given back
    /// while it does not).
    async fn reader(inner: Arc<Inner>, feed: (Arc<str>, u64), part: usize, room: Arc<Notify>) {
        let (group, generation) = feed;
        let block = inner.cfg.block;
        let key = inner.keys.streams[part].clone();
        let mut stop = inner.stop.subscribe();
        let mut owners = inner.members.as_ref().map(|m| m.subscribe());
        let mut reading: Option<Conn> = None;
        let mut backoff = Duration::from_millis(50);
        let cap = inner.cfg.fetch * 2;
        loop {
            if *stop.borrow() || !feed_alive(&inner, &group, generation) {
                return;
            }
            if let (Some(m), Some(owners)) = (&inner.members, owners.as_mut()) {
                owners.borrow_and_update();
                if !m.owns(&group, part) {
                    reading = None;
                    tokio::select! {
                        _ = owners.changed() => {}
                        _ = stop.changed() => return,
                    }
                    continue;
                }
            }
            let conn = match &mut reading {
                Some(c) => c,
                None => {
                    let mut c = loop {
                        match inner.server.connect(block + Duration::from_secs(5)).await {
                            Ok(c) => break c,
                            Err(e) => {
                                tracing::warn!(error = %e, "connecting the reader failed; retrying");
                                tokio::time::sleep(Duration::from_millis(500)).await;
                            }
                        }
                    };
                    // Not created again for an endpoint just removed from the shared registry.
                    if crate::registry::removed_from_registry(&inner, &group).await {
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = stop.changed() => return,
                        }
                        continue;
                    }
                    create_group(&inner, &mut c, &key, &group, false).await;
                    reading.insert(c)
                }
            };
            let room_wait = room.notified();
            let len = inner
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .feeds
                .get(&group)
                .map_or(0, |f| f.buf.len());
            if len >= cap {
                let moved = async {
                    match owners.as_mut() {
                        Some(o) => drop(o.changed().await),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = room_wait => {}
                    () = moved => {}
                    _ = stop.changed() => return,
                }
                continue;
            }
            let count = inner.cfg.fetch.min(cap - len);
            let r: Result<Value, RedisError> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&*group)
                .arg(&inner.consumer)
                .arg("COUNT")
                .arg(count)
                .arg("BLOCK")
                .arg(u64::try_from(block.as_millis()).unwrap_or(1000))
                .arg("STREAMS")
                .arg(&key)
                .arg(">")
                .query_async(conn)
                .await;
            match r {
                Ok(Value::Nil) => {}
                Ok(v) => {
                    backoff = Duration::from_millis(50);
                    // [[key, [[id, fields], ...]]] (RESP2) or {key: [...]} (RESP3)
                    let streams: Vec<&Value> = match &v {
                        Value::Map(m) => m.iter().map(|(_, e)| e).collect(),
                        other => items(other)
                            .iter()
                            .filter_map(|s| items(s).get(1))
                            .collect(),
                    };
                    for s in streams {
                        let got: Vec<Got> =
                            entries(s).into_iter().map(|(i, f)| (i, f, 1)).collect();
                        inner
                            .counters
                            .read
                            .fetch_add(got.len() as u64, Ordering::Relaxed);
                        hand_out(&inner, &group, part, got);
                    }
                }
                Err(e) if is_nogroup(&e) => {
                    // Destroyed because its endpoint left the shared registry: not created
                    // again (the watcher stops this feed within a second).
                    if crate::registry::removed_from_registry(&inner, &group).await {
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = stop.changed() => return,
                        }
                        continue;
                    }
                    create_group(&inner, conn, &key, &group, true).await;
                }
                Err(e) => {
                    inner.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, retry_in = ?backoff, "reading from redis failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Claims entries idle past the lease (their worker died or stalled), dead-lettering
    /// those past the receive limit.
    async fn reclaimer(inner: Arc<Inner>, feed: (Arc<str>, u64), part: usize) {
        let (group, generation) = feed;
        let mut conn = inner.conn.clone();
        let key = inner.keys.streams[part].clone();
        let dead = inner.keys.dead[part].clone();
        let lease_ms = u64::try_from(inner.cfg.lease.as_millis()).unwrap_or(u64::MAX);
        let every = (inner.cfg.lease / 4).max(Duration::from_millis(50));
        let mut stop = inner.stop.subscribe();
        // Spreading: a worker that leaves hands its entries back (idle past any lease) before
        // it leaves, so the pairs' new owners claim them as soon as they see the change, not
        // a quarter lease later.
        let mut owners = inner.members.as_ref().map(|m| m.subscribe());
        loop {
            let moved = async {
                match owners.as_mut() {
                    Some(o) => drop(o.changed().await),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = moved => {}
                _ = stop.changed() => return,
            }
            if !feed_alive(&inner, &group, generation) {
                return;
            }
            // Spreading: the pair's owner claims what a dead worker left.
            if inner
                .members
                .as_ref()
                .is_some_and(|m| !m.owns(&group, part))
            {
                continue;
            }
            let mut start = "0-0".to_owned();
            loop {
                let r: Result<Value, RedisError> = scripts::RECLAIM
                    .key(&key)
                    .key(&dead)
                    .arg(&*group)
                    .arg(&inner.consumer)
                    .arg(lease_ms)
                    .arg(&start)
                    .arg(inner.cfg.fetch)
                    .arg(inner.cfg.max_receives)
                    .arg(now_ms())
                    .arg(random_u64() >> 12)
                    .invoke_async(&mut conn)
                    .await;
                let v = match r {
                    Ok(v) => v,
                    Err(e) => {
                        if !is_nogroup(&e) {
                            inner.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(error = %e, "reclaiming failed");
                        }
                        break;
                    }
                };
                let r = items(&v);
                let next = r
                    .first()
                    .and_then(string_of)
                    .unwrap_or_else(|| "0-0".into());
                let got: Vec<Got> = r
                    .get(1)
                    .map(items)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|e| {
                        let e = items(e);
                        let id = string_of(e.first()?)?;
                        let fields = e.get(1).map(pairs);
                        let n = e.get(2).and_then(int_of).unwrap_or(1);
                        Some((id, fields, u64::try_from(n).unwrap_or(1)))
                    })
                    .collect();
                let deadn = r.get(2).and_then(int_of).unwrap_or(0);
                if deadn > 0 {
                    inner
                        .counters
                        .dead_by_receives
                        .fetch_add(u64::try_from(deadn).unwrap_or(0), Ordering::Relaxed);
                    tracing::warn!(group = %group, entries = deadn, "entries moved to the dead letters at the receive limit");
                }
                if !got.is_empty() {
                    inner
                        .counters
                        .reclaimed
                        .fetch_add(got.len() as u64, Ordering::Relaxed);
                    tracing::info!(group = %group, entries = got.len(), "reclaimed entries from a worker that died or stalled");
                    hand_out(&inner, &group, part, got);
                }
                if next == "0-0" || next == start {
                    break;
                }
                start = next;
            }
        }
    }

    /// Renews the lease of every entry this process holds, every third of the lease.
    async fn renewer(inner: Arc<Inner>, feed: (Arc<str>, u64), part: usize) {
        let (group, generation) = feed;
        let mut conn = inner.conn.clone();
        let key = inner.keys.streams[part].clone();
        let retry = inner.keys.retry(part, &group);
        let lease_ms = millis(inner.cfg.lease);
        let every = (inner.cfg.lease / 3).max(Duration::from_millis(30));
        loop {
            tokio::time::sleep(every).await;
            if !feed_alive(&inner, &group, generation) {
                return;
            }
            let (ids, taken): (Vec<String>, Vec<Box<str>>) = {
                let s = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
                let ids = s
                    .held
                    .values()
                    .filter(|h| h.part == part && h.group == group)
                    .filter_map(|h| h.id.clone())
                    .collect();
                let taken = s
                    .batches
                    .iter()
                    .filter(|((g, _), b)| *g == group && b.taken == Some(part))
                    .map(|((_, id), _)| id.clone())
                    .collect();
                (ids, taken)
            };
            if !taken.is_empty() {
                // Only those still held (`XX`): one parked again or settled meanwhile is not.
                let until = now_ms().saturating_add(lease_ms);
                let mut cmd = redis::cmd("ZADD");
                cmd.arg(&retry.held).arg("XX");
                for b in &taken {
                    cmd.arg(until).arg(&**b);
                }
                if let Err(e) = cmd.query_async::<Value>(&mut conn).await {
                    inner.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "renewing the leases of retries failed");
                }
            }
            for chunk in ids.chunks(1000) {
                let mut call = scripts::RENEW.key(&key);
                call.arg(&*group).arg(&inner.consumer);
                for id in chunk {
                    call.arg(id);
                }
                let r: Result<i64, _> = call.invoke_async(&mut conn).await;
                if let Err(e) = r
                    && !is_nogroup(&e)
                {
                    inner.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "renewing leases failed");
                }
            }
        }
    }

    /// Takes the batches of `group`'s retry set in partition `part` that fell due, while this
    /// process holds fewer than [`fetch`](crate::RedisQueueConfig::fetch) of them. Any number
    /// of processes run this at once: the script is atomic, so each due batch goes to one of
    /// them, under a lease; a batch taken more than
    /// [`max_receives`](crate::RedisQueueConfig::max_receives) times without an attempt
    /// (its takers died) goes to the dead letters.
    async fn taker(inner: Arc<Inner>, feed: (Arc<str>, u64), part: usize) {
        let (group, generation) = feed;
        let mut conn = inner.conn.clone();
        let keys = inner.keys.retry(part, &group);
        let lease_ms = millis(inner.cfg.lease);
        let mut stop = inner.stop.subscribe();
        let mut wait = TAKE_EVERY;
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
            wait = TAKE_EVERY;
            if !feed_alive(&inner, &group, generation) {
                return;
            }
            let room = {
                let s = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
                let held = s
                    .batches
                    .iter()
                    .filter(|((g, _), b)| *g == group && b.taken.is_some())
                    .count();
                inner.cfg.fetch.saturating_sub(held)
            };
            let now = now_ms();
            let r: Result<Value, RedisError> = scripts::TAKE
                .key(&keys.due)
                .key(&keys.held)
                .key(&keys.data)
                .key(&keys.meta)
                .arg(now)
                .arg(lease_ms)
                .arg(room)
                .invoke_async(&mut conn)
                .await;
            let v = match r {
                Ok(v) => v,
                Err(e) => {
                    inner.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "taking retries failed");
                    continue;
                }
            };
            let r = items(&v);
            let got = r.first().map(items).unwrap_or_default();
            if let Some(next) = r
                .get(1)
                .and_then(string_of)
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|n| *n >= 0.0)
            {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let next = next as u64;
                wait = Duration::from_millis(next.saturating_sub(now_ms()))
                    .clamp(Duration::from_millis(5), TAKE_EVERY);
            }
            if room > 0 && got.len() >= room {
                // More may be due: look again as soon as some are settled.
                wait = Duration::from_millis(20);
            }
            let mut restored = Vec::new();
            let mut dead = Vec::new();
            let mut gone = Vec::new();
            for g in got {
                let g = items(g);
                let Some(batch) = g.first().and_then(string_of) else {
                    continue;
                };
                let receives = g.get(2).and_then(int_of).unwrap_or(1);
                match g.get(1).and_then(bytes_of).map(|b| codec::parked(&b)) {
                    Some(Ok(p)) if receives > i64::from(inner.cfg.max_receives) => {
                        dead.push((batch, p, receives));
                    }
                    Some(Ok(p)) => restored.push((batch, p)),
                    Some(Err(m)) => {
                        tracing::error!(batch = %batch, error = %m.0, "a retry that is not a batch: removed");
                        gone.push(batch);
                    }
                    None => {
                        tracing::error!(batch = %batch, "a retry without its data: removed");
                        gone.push(batch);
                    }
                }
            }
            for (batch, p, receives) in dead {
                let reason = format!(
                    "receive limit reached ({receives} receives): the retry was taken by workers that died or stalled holding it"
                );
                let mut pipe = redis::pipe();
                for e in &p.events {
                    pipe.add_command(dead_cmd(
                        &inner.keys.dead[part],
                        random_u64() >> 12,
                        &group,
                        &reason,
                        now_ms(),
                        &p.log,
                        Some(&batch),
                        e,
                    ));
                }
                match pipe.query_async::<Value>(&mut conn).await {
                    Ok(_) => {
                        inner
                            .counters
                            .dead_by_receives
                            .fetch_add(p.events.len() as u64, Ordering::Relaxed);
                        tracing::warn!(group = %group, batch = %batch, events = p.events.len(), "a retry moved to the dead letters at the receive limit");
                        gone.push(batch);
                    }
                    Err(e) => {
                        // Still held: taken again (and dead-lettered) after the lease.
                        inner.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "dead-lettering a retry failed");
                    }
                }
            }
            hand_out_parked(&inner, &group, part, restored, gone);
        }
    }

    // ---- admin (blocking) --------------------------------------------------------------

    pub(crate) fn admin<T>(
        &self,
        f: impl FnOnce(&mut dyn redis::ConnectionLike) -> redis::RedisResult<T>,
    ) -> Result<T, OutboxError> {
        let mut guard = self
            .inner
            .admin
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            *guard = Some(Admin(self.inner.server.blocking().map_err(backend)?));
        }
        let Some(Admin(conn)) = guard.as_mut() else {
            return Err(backend("no connection"));
        };
        match f(conn.as_mut()) {
            Ok(t) => Ok(t),
            Err(e) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                    *guard = None;
                }
                Err(backend(e))
            }
        }
    }

    /// Every dead letter of every partition: (partition, stream id, entry).
    fn all_dead(
        &self,
        with_event: bool,
    ) -> Result<Vec<(usize, String, DeadLetterEntry)>, OutboxError> {
        let mut out = Vec::new();
        for (p, key) in self.inner.keys.dead.iter().enumerate() {
            let v: Value =
                self.admin(|c| redis::cmd("XRANGE").arg(key).arg("-").arg("+").query(c))?;
            for (sid, fields) in entries(&v) {
                let Some(fields) = fields else { continue };
                if let Some(d) = dead_entry(&fields, with_event) {
                    out.push((p, sid, d));
                }
            }
        }
        out.sort_by_key(|(_, _, d)| d.dead_at);
        Ok(out)
    }
}

/// Whether the feed of `group` started as `generation` is still on.
fn feed_alive(inner: &Inner, group: &str, generation: u64) -> bool {
    inner
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .feeds
        .get(group)
        .is_some_and(|f| f.active && f.generation == generation)
}

/// Creates `group` on `key` (with the stream), reading from the start.
async fn create_group(inner: &Inner, conn: &mut Conn, key: &str, group: &str, missing: bool) {
    let r: Result<Value, RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match r {
        Ok(_) if missing => {
            inner
                .counters
                .groups_recreated
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                stream = key,
                group,
                "the consumer group was missing (NOGROUP: redis restarted without persistence, or the group was destroyed): created again, reading from the start of the stream"
            );
        }
        Ok(_) => {}
        Err(e) if e.code() == Some("BUSYGROUP") || e.to_string().contains("BUSYGROUP") => {}
        Err(e) => {
            inner.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, stream = key, group, "creating the consumer group failed");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Hands read or claimed entries to the endpoint's buffer (those not routed to it, or not
/// readable, are acknowledged at once).
fn hand_out(inner: &Inner, group: &Arc<str>, part: usize, got: Vec<Got>) {
    if got.is_empty() {
        return;
    }
    let mut s = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
    let mut added = 0;
    let mut acks = 0;
    for (id, fields, _receives) in got {
        let routed = fields.as_ref().is_some_and(|f| {
            codec::field(f, "to")
                .is_none_or(|to| to.split(|&b| b == b'\n').any(|n| n == group.as_bytes()))
        });
        let event = match fields.as_deref().map(codec::event) {
            Some(Ok(e)) if routed => Some(e),
            Some(Err(m)) => {
                tracing::error!(entry = %id, error = %m.0, "an entry that is not an event: acknowledged and skipped");
                None
            }
            _ => None,
        };
        let Some(event) = event else {
            s.ops.push_back(Op::Ack {
                part,
                group: group.clone(),
                id,
            });
            acks += 1;
            continue;
        };
        let seq = s.hold(part, group, Some(id), &event);
        if let Some(f) = s.feeds.get_mut(group) {
            f.buf.push_back((seq, event));
            added += 1;
        }
    }
    let readable = s.feeds.get(group).map(|f| f.readable.clone());
    drop(s);
    if added > 0
        && let Some(r) = readable
    {
        r.notify_one();
    }
    if acks > 0 {
        inner.wake_writer.notify_one();
    }
}

/// Hands batches taken from the retry set to the endpoint's buffer (they come back to the
/// driver as restored batches, sent at once with their id and attempts), and removes those
/// that are `gone`.
fn hand_out_parked(
    inner: &Inner,
    group: &Arc<str>,
    part: usize,
    taken: Vec<(String, codec::Parked)>,
    gone: Vec<String>,
) {
    if taken.is_empty() && gone.is_empty() {
        return;
    }
    let mut s = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
    for batch in gone {
        s.ops.push_back(Op::Unpark {
            part,
            group: group.clone(),
            batch: batch.into(),
        });
    }
    let mut added = false;
    for (batch, p) in taken {
        let mut events = Vec::with_capacity(p.events.len());
        let mut seqs = Vec::with_capacity(p.events.len());
        for event in p.events {
            let seq = s.hold(part, group, None, &event);
            seqs.push(seq);
            events.push((seq, event));
        }
        let log = p
            .log
            .into_iter()
            .map(|(at, status, latency, error)| attempt_info(at, status, latency, error))
            .collect();
        let batch: Box<str> = batch.into();
        s.batches.insert(
            (group.clone(), batch.clone()),
            BatchState {
                seqs,
                first_ms: p.first_ms,
                log,
                taken: Some(part),
            },
        );
        if let Some(f) = s.feeds.get_mut(group) {
            f.batches
                .push_back(RestoredBatch::new(batch, events, p.attempts, p.first_ms, 0));
            added = true;
        }
    }
    let readable = s.feeds.get(group).map(|f| f.readable.clone());
    drop(s);
    if added && let Some(r) = readable {
        r.notify_one();
    }
    inner.wake_writer.notify_one();
}

/// The `XADD` of one dead letter.
#[allow(clippy::too_many_arguments)]
fn dead_cmd(
    key: &str,
    id: u64,
    group: &str,
    reason: &str,
    at_ms: u64,
    attempts: &[(u64, Option<u16>, u64, String)],
    batch: Option<&str>,
    event: &Event,
) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(key)
        .arg("*")
        .arg("dl")
        .arg(id)
        .arg("group")
        .arg(group)
        .arg("reason")
        .arg(reason)
        .arg("dead_at")
        .arg(at_ms)
        .arg("attempts")
        .arg(serde_json::to_vec(attempts).unwrap_or_else(|_| b"[]".to_vec()));
    if let Some(b) = batch {
        cmd.arg("batch").arg(b);
    }
    codec::add_args(&mut cmd, event);
    cmd
}

/// An attempt log as stored: (at ms, status, latency ms, error).
fn log_tuples(attempts: &[AttemptInfo]) -> Vec<(u64, Option<u16>, u64, String)> {
    attempts
        .iter()
        .map(|a| (a.at_ms, a.status, millis(a.latency), a.error.clone()))
        .collect()
}

/// Takes up to a pipeline's worth of buffered ops; `flying` pipelines are still on their way.
fn take_ops(inner: &Inner, flying: usize) -> Vec<Op> {
    let mut s = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
    let n = s.ops.len().min(inner.cfg.batch);
    // Marked under the lock that empties the buffer: `flush` never sees the ops gone and no
    // write under way in between.
    inner.writing.store(n > 0 || flying > 0, Ordering::Release);
    s.ops.drain(..n).collect()
}

/// Pipelines written at once.
const WRITES_IN_FLIGHT: usize = 2;

/// A pipeline on its way, handed back with its answer (to be sent again if it failed).
type Flight = tokio::task::JoinHandle<(Writes, Result<Vec<redis::RedisResult<Value>>, String>)>;

/// What a pipeline holds, for [`written`].
#[derive(Debug, Default)]
struct Meta {
    /// Appends per partition.
    adds: Vec<u64>,
    last_ticket: u64,
    acks: u64,
}

/// The commands of one write round. On one server, one pipeline: the appends (whose answers
/// come first), then the retry-set changes, then the acknowledgements; a round that parks a
/// batch sends its acknowledgements in a second pipeline once the first went through (a batch
/// is in its retry set before its entries leave the stream). On a cluster, where a pipeline must stay within
/// one slot, one pipeline per partition: those of the appends and retry-set changes first, all
/// at once, then (once every one of them went through) those of the acknowledgements; the
/// answers are put back in the same order. A pipeline that went through is not sent again
/// when another of its round failed: one shard down does not append the others' events twice
/// per retry.
#[derive(Debug, Clone)]
enum Writes {
    One(Box<Piece>),
    Split { first: Vec<Piece>, then: Vec<Piece> },
}

/// One pipeline of a round, and its answers once it went through.
#[derive(Debug, Clone)]
struct Piece {
    pipe: redis::Pipeline,
    /// How many of its first commands are appends. An error in any command fails the
    /// pipeline (sent again), but for a `NOGROUP` acknowledgement (its group was destroyed:
    /// nothing to acknowledge): a retry-set change or an acknowledgement that met a
    /// redirection, a `TRYAGAIN` while its slot migrates or a dropped connection must not be
    /// taken as done (a batch whose move into its retry set failed would be acknowledged
    /// out of the stream: lost).
    appends: usize,
    /// Ends with `WAIT n timeout` ([`RedisQueueConfig::replicas`]): its last answer must be
    /// at least `n`.
    wait: Option<(u32, Duration)>,
    answers: Option<Vec<redis::RedisResult<Value>>>,
    /// Its appends went in but too few replicas acknowledged them: the answers, kept, and what
    /// to ask before sending it all again.
    short: Option<(Vec<redis::RedisResult<Value>>, redis::Pipeline)>,
}

impl Piece {
    fn new(mut pipe: redis::Pipeline, appends: usize, replicas: Option<(u32, Duration)>) -> Self {
        if let Some((n, timeout)) = replicas {
            // WAIT names no key: it goes with the pipeline, to its slot's primary.
            wait_cmd(&mut pipe, n, timeout);
        }
        Self {
            pipe,
            appends,
            wait: replicas,
            answers: None,
            short: None,
        }
    }

    /// Sends the pipeline unless it already went through; `Err` says why it must go again.
    ///
    /// A pipeline whose appends went in while too few replicas acknowledged them is not sent
    /// again at once (that would append them twice at every try while a shard lacks its
    /// replicas): the next try asks whether the last entry it appended to each stream is
    /// still there, with a new `WAIT`. Still there and acknowledged: done. Gone (the primary
    /// that took them was lost before a replica had them): the whole pipeline goes again.
    async fn run(&mut self, mut conn: Conn) -> Result<(), String> {
        if self.answers.is_some() {
            return Ok(());
        }
        if let Some((kept, probe)) = self.short.take() {
            let got: Vec<redis::RedisResult<Value>> = probe
                .query_async(&mut conn)
                .await
                .map_err(|e| format!("asking the replicas again failed: {e}"))?;
            let (wait, ranges) = got.split_last().unwrap_or((&Ok(Value::Nil), &[]));
            let present = ranges
                .iter()
                .all(|r| matches!(r, Ok(v) if !items(v).is_empty()));
            if present {
                if let Err(why) = self.replicated(wait) {
                    self.short = Some((kept, probe));
                    return Err(why);
                }
                self.answers = Some(kept);
                return Ok(());
            }
            tracing::warn!(
                "appends a primary took before a replica acknowledged them are gone (a failover): appending them again"
            );
        }
        let answers: Vec<redis::RedisResult<Value>> = self
            .pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("writing to redis failed: {e}"))?;
        if let Some(e) = answers
            .iter()
            .take(self.appends)
            .find_map(|r| r.as_ref().err())
        {
            return Err(format!("redis refused an append: {e}"));
        }
        let last = answers
            .len()
            .saturating_sub(usize::from(self.wait.is_some()));
        if let Some(e) = answers[self.appends.min(last)..last]
            .iter()
            .filter_map(|r| r.as_ref().err())
            .find(|e| !is_nogroup(e))
        {
            return Err(format!("redis refused a write: {e}"));
        }
        let wait = answers.last().unwrap_or(&Ok(Value::Nil));
        if let Err(why) = self.replicated(wait) {
            if let (true, Some((n, timeout))) = (self.appends > 0, self.wait) {
                let probe = self.probe(&answers, n, timeout);
                self.short = Some((answers, probe));
            }
            return Err(why);
        }
        self.answers = Some(answers);
        Ok(())
    }

    /// Whether `wait`, the answer to the pipeline's `WAIT`, counts enough replicas.
    fn replicated(&self, wait: &redis::RedisResult<Value>) -> Result<(), String> {
        let Some((need, _)) = self.wait else {
            return Ok(());
        };
        match wait {
            Ok(Value::Int(got)) if *got >= i64::from(need) => Ok(()),
            Ok(Value::Int(got)) => Err(format!(
                "{got} of {need} replicas acknowledged a write round in time"
            )),
            Err(e) => Err(format!("waiting for the replicas failed: {e}")),
            Ok(other) => Err(format!("an unexpected answer to WAIT: {other:?}")),
        }
    }

    /// `XRANGE key id id` for the last entry the pipeline appended to each stream (a stream
    /// that holds it holds the ones before: replication keeps the order), then `WAIT`.
    fn probe(
        &self,
        answers: &[redis::RedisResult<Value>],
        n: u32,
        timeout: Duration,
    ) -> redis::Pipeline {
        let mut last: Vec<(Vec<u8>, String)> = Vec::new();
        for (cmd, answer) in self.pipe.cmd_iter().take(self.appends).zip(answers) {
            let key = match cmd.args_iter().nth(1) {
                Some(redis::Arg::Simple(k)) => k.to_vec(),
                _ => continue,
            };
            let id = match answer {
                Ok(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                Ok(Value::SimpleString(s)) => s.clone(),
                _ => continue,
            };
            match last.iter_mut().find(|(k, _)| *k == key) {
                Some(e) => e.1 = id,
                None => last.push((key, id)),
            }
        }
        let mut p = redis::pipe();
        p.ignore_errors();
        for (key, id) in &last {
            p.cmd("XRANGE").arg(key).arg(id).arg(id);
        }
        wait_cmd(&mut p, n, timeout);
        p
    }
}

fn wait_cmd(p: &mut redis::Pipeline, n: u32, timeout: Duration) {
    p.cmd("WAIT")
        .arg(n)
        .arg(u64::try_from(timeout.as_millis()).unwrap_or(60_000));
}

impl Writes {
    /// Sends what of the round has not gone through yet. `Ok` with every answer, in order,
    /// once all of it has; `Err` says why a part must be sent again (call again).
    async fn run(&mut self, conn: &Conn) -> Result<Vec<redis::RedisResult<Value>>, String> {
        match self {
            Self::One(p) => {
                p.run(conn.clone()).await?;
                Ok(p.answers.take().unwrap_or_default())
            }
            Self::Split { first, then } => {
                for phase in [&mut *first, &mut *then] {
                    let mut set = tokio::task::JoinSet::new();
                    for (i, p) in phase.iter().enumerate() {
                        if p.answers.is_some() {
                            continue;
                        }
                        let (mut p, c) = (p.clone(), conn.clone());
                        set.spawn(async move {
                            let r = p.run(c).await;
                            (i, p, r)
                        });
                    }
                    let mut failed = None;
                    for (i, p, r) in set.join_all().await {
                        match r {
                            Ok(()) => phase[i] = p,
                            Err(why) => failed = Some(why),
                        }
                    }
                    if let Some(why) = failed {
                        return Err(why);
                    }
                }
                Ok(first
                    .iter_mut()
                    .chain(then.iter_mut())
                    .flat_map(|p| p.answers.take().unwrap_or_default())
                    .collect())
            }
        }
    }
}

/// An `EVAL` of one of the retry-set scripts on `k`'s five keys, its arguments to follow.
fn retry_call<'a>(
    p: &'a mut redis::Pipeline,
    script: &str,
    k: &crate::config::RetryKeys,
) -> &'a mut redis::Pipeline {
    p.cmd("EVAL")
        .arg(script)
        .arg(5)
        .arg(&k.due)
        .arg(&k.held)
        .arg(&k.data)
        .arg(&k.meta)
        .arg(&k.count)
}

/// `WAIT` on a blocking connection, after a write made outside the writer's rounds: an error
/// unless `need` replicas acknowledged it within `timeout` (the caller's write stands on the
/// primary; the caller answers the error, and a repeat of the write is at least once).
fn replicated(
    c: &mut dyn redis::ConnectionLike,
    need: u32,
    timeout: Duration,
) -> redis::RedisResult<()> {
    let got: i64 = redis::cmd("WAIT")
        .arg(need)
        .arg(u64::try_from(timeout.as_millis()).unwrap_or(60_000))
        .query(c)?;
    if got >= i64::from(need) {
        Ok(())
    } else {
        Err(RedisError::from((
            redis::ErrorKind::Io,
            "too few replicas acknowledged the write",
            format!("{got} of {need} in time"),
        )))
    }
}

fn build_pipeline(inner: &Inner, ops: Vec<Op>) -> (Writes, Meta) {
    let parts = inner.keys.streams.len();
    let cluster = inner.server.is_cluster();
    // One server: everything goes to the pipeline of "partition" 0.
    let at = |part: usize| if cluster { part } else { 0 };
    let pipe = || {
        let mut p = redis::pipe();
        p.ignore_errors();
        p
    };
    let mut adds: Vec<redis::Pipeline> = (0..parts).map(|_| pipe()).collect();
    let mut retries: Vec<redis::Pipeline> = (0..parts).map(|_| pipe()).collect();
    let mut meta = Meta {
        adds: vec![0; parts],
        ..Meta::default()
    };
    let mut acks: HashMap<(usize, Arc<str>), Vec<String>> = HashMap::new();
    let mut parked = vec![false; parts];
    let mut any_park = false;
    for op in ops {
        match op {
            Op::Add { part, cmd, ticket } => {
                adds[at(part)].add_command(cmd);
                meta.adds[part] += 1;
                meta.last_ticket = meta.last_ticket.max(ticket);
            }
            Op::Ack { part, group, id } => {
                acks.entry((part, group)).or_default().push(id);
                meta.acks += 1;
            }
            Op::Park {
                part,
                group,
                batch,
                due_ms,
                blob,
                events,
            } => {
                // A script each (atomic): a batch is never out of both sets, and the
                // partition's count of waiting events stays true.
                let k = inner.keys.retry(part, &group);
                retry_call(&mut retries[at(part)], scripts::PARK, &k)
                    .arg(&*batch)
                    .arg(due_ms)
                    .arg(blob)
                    .arg(events);
                parked[at(part)] = true;
                any_park = true;
            }
            Op::Unpark { part, group, batch } => {
                let k = inner.keys.retry(part, &group);
                retry_call(&mut retries[at(part)], scripts::UNPARK, &k).arg(&*batch);
                parked[at(part)] = true;
            }
        }
    }
    if !cluster {
        // The appends stay where they are (not copied); the rest follows them.
        let mut one = std::mem::replace(&mut adds[0], pipe());
        if parked[0] {
            for c in retries[0].cmd_iter() {
                one.add_command(c.clone());
            }
        }
        let appends = usize::try_from(meta.adds.iter().sum::<u64>()).unwrap_or(usize::MAX);
        // A round of acknowledgements alone does not wait for replicas: one lost with its
        // primary delivers its entry again, as one that waits past the lease would.
        let wait = inner.cfg.replicas.filter(|_| appends > 0 || parked[0]);
        // A pipeline is not a transaction: an acknowledgement after a batch's move into its
        // retry set would run even if the move failed, and the batch would be lost. A round
        // that parks sends its acknowledgements once the rest went through.
        let mut then = pipe();
        let ack_target = if any_park { &mut then } else { &mut one };
        for ((part, group), ids) in acks {
            let c = ack_target
                .cmd("XACK")
                .arg(&inner.keys.streams[part])
                .arg(&*group);
            for id in ids {
                c.arg(id);
            }
        }
        if any_park {
            return (
                Writes::Split {
                    first: vec![Piece::new(one, appends, wait)],
                    then: vec![Piece::new(then, 0, None)],
                },
                meta,
            );
        }
        return (Writes::One(Box::new(Piece::new(one, appends, wait))), meta);
    }
    let mut ack_pipes: Vec<redis::Pipeline> = (0..parts).map(|_| pipe()).collect();
    let mut acked = vec![false; parts];
    for ((part, group), ids) in acks {
        let c = ack_pipes[part]
            .cmd("XACK")
            .arg(&inner.keys.streams[part])
            .arg(&*group);
        for id in ids {
            c.arg(id);
        }
        acked[part] = true;
    }
    let replicas = inner.cfg.replicas;
    let first: Vec<Piece> = adds
        .into_iter()
        .zip(&meta.adds)
        .filter(|(_, n)| **n > 0)
        .map(|(p, n)| Piece::new(p, usize::try_from(*n).unwrap_or(usize::MAX), replicas))
        .chain(
            retries
                .into_iter()
                .zip(parked)
                .filter(|(_, used)| *used)
                .map(|(p, _)| Piece::new(p, 0, replicas)),
        )
        .collect();
    let then: Vec<Piece> = ack_pipes
        .into_iter()
        .zip(acked)
        .filter(|(_, used)| *used)
        .map(|(p, _)| Piece::new(p, 0, None))
        .collect();
    (Writes::Split { first, then }, meta)
}

/// A pipeline was answered: counts, lengths, tickets.
fn written(inner: &Inner, meta: &Meta, results: &[redis::RedisResult<Value>]) {
    let errors: Vec<&RedisError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    for e in errors.iter().take(3) {
        if !is_nogroup(e) {
            tracing::warn!(error = %e, "a redis command failed");
        }
    }
    {
        // Moved from "unwritten" to the length under the state lock, so that an appender
        // never sees them in neither or in both.
        let mut s = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
        for (p, n) in meta.adds.iter().enumerate() {
            if *n > 0 {
                inner.lengths[p].fetch_add(*n, Ordering::Relaxed);
                s.unwritten[p] = s.unwritten[p].saturating_sub(*n);
            }
        }
        inner.length_gen.fetch_add(1, Ordering::AcqRel);
    }
    inner
        .counters
        .appended
        .fetch_add(meta.adds.iter().sum(), Ordering::Relaxed);
    inner.counters.acked.fetch_add(meta.acks, Ordering::Relaxed);
    let last_ticket = meta.last_ticket;
    if last_ticket > 0 {
        inner.synced_tx.send_if_modified(|t| {
            let changed = last_ticket > *t;
            *t = (*t).max(last_ticket);
            changed
        });
        let (m, cv) = &inner.synced_sync;
        let mut g = m.lock().unwrap_or_else(PoisonError::into_inner);
        *g = (*g).max(last_ticket);
        cv.notify_all();
    }
}

/// A dead-letter stream entry as a [`DeadLetterEntry`].
fn dead_entry(fields: &[(Vec<u8>, Vec<u8>)], with_event: bool) -> Option<DeadLetterEntry> {
    let text = |n: &str| codec::field(fields, n).map(|v| String::from_utf8_lossy(v).into_owned());
    let id: u64 = text("dl")?.parse().ok()?;
    let group = text("group")?;
    let at: u64 = text("dead_at").and_then(|t| t.parse().ok()).unwrap_or(0);
    let mut d = DeadLetterEntry::new(
        id,
        group,
        text("id").unwrap_or_default(),
        text("sub").unwrap_or_default(),
        UNIX_EPOCH + Duration::from_millis(at),
        text("reason").unwrap_or_default(),
    );
    let attempts: Vec<AttemptInfo> = codec::field(fields, "attempts")
        .and_then(|a| serde_json::from_slice::<Vec<(u64, Option<u16>, u64, String)>>(a).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(at_ms, status, latency_ms, error)| attempt_info(at_ms, status, latency_ms, error))
        .collect();
    d.attempt_count = u32::try_from(attempts.len()).unwrap_or(u32::MAX);
    if with_event {
        d.attempts = attempts;
        d.batch_id = text("batch");
        d.event = codec::event(fields).ok();
    }
    Some(d)
}

fn attempt_info(at_ms: u64, status: Option<u16>, latency_ms: u64, error: String) -> AttemptInfo {
    AttemptInfo {
        at_ms,
        status,
        latency: Duration::from_millis(latency_ms),
        error,
    }
}

impl OutboxStore for RedisQueue {
    fn location(&self) -> String {
        format!(
            "{} queue {}",
            crate::redact_url(&self.inner.cfg.url),
            self.inner.cfg.queue
        )
    }

    fn durability(&self) -> Durability {
        self.inner.cfg.durability
    }

    fn append(
        &self,
        endpoints: &[&str],
        event: &Event,
        _at: SystemTime,
    ) -> Result<Appended, OutboxError> {
        let inner = &self.inner;
        let mut s = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
        let parts = inner.keys.streams.len();
        let part = s.next_part % parts;
        s.next_part = s.next_part.wrapping_add(1);
        // Retries waiting in the partition's retry sets count: a down endpoint moves its
        // events there, and the limit bounds the partition's memory, not the stream's alone.
        let waiting = inner.waiting[part].load(Ordering::Relaxed);
        let len = inner.lengths[part].load(Ordering::Relaxed) + s.unwritten[part] + waiting;
        let full = len >= inner.cfg.max_len;
        let trim = match (full, inner.cfg.overflow) {
            (false, _) => false,
            (true, OverflowPolicy::DropNewest) => {
                inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(Appended::Dropped);
            }
            (true, OverflowPolicy::DropOldest) => {
                inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
                true
            }
            (true, _) => return Ok(Appended::Full),
        };
        let ticket = s.next_ticket;
        s.next_ticket += 1;
        let seq = s.next_seq;
        s.next_seq += 1;
        s.unwritten[part] += 1;
        // Sized once: the fields, the key and the trim, without growing as they are added.
        let key = &inner.keys.streams[part];
        let mut cmd = redis::Cmd::with_capacity(
            20,
            key.len() + event.len() + event.id().len() + event.subject().len() + 96,
        );
        cmd.arg("XADD").arg(key);
        if trim {
            // The stream keeps what the limit leaves beside the waiting retries.
            let keep = inner.cfg.max_len.saturating_sub(waiting).max(1);
            cmd.arg("MAXLEN").arg("=").arg(keep);
        }
        cmd.arg("*");
        codec::add_args(&mut cmd, event);
        if !endpoints.is_empty() {
            cmd.arg("to").arg(endpoints.join("\n"));
        }
        let wake = s.ops.is_empty() || s.ops.len() >= inner.cfg.batch;
        s.ops.push_back(Op::Add { part, cmd, ticket });
        drop(s);
        if wake {
            inner.wake_writer.notify_one();
        }
        Ok(Appended::Written { seq, ticket })
    }

    fn synced(&self, ticket: u64) -> StoreFuture<'_, Result<(), OutboxError>> {
        let mut rx = self.inner.synced_tx.subscribe();
        self.inner.wake_writer.notify_one();
        Box::pin(async move {
            rx.wait_for(|t| *t >= ticket)
                .await
                .map(|_| ())
                .map_err(|_| backend("the queue was closed"))
        })
    }

    fn sync_now(&self) -> Result<(), OutboxError> {
        if tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
        {
            // The writer runs on the runtime this would block: it could never answer.
            return Err(backend(
                "a blocking sync of a Redis queue from a current-thread runtime would wait for \
                 itself: await RedisQueue::flush instead",
            ));
        }
        let last = self.next_ticket_minus_one();
        self.inner.wake_writer.notify_one();
        let (m, cv) = &self.inner.synced_sync;
        let mut g = m.lock().unwrap_or_else(PoisonError::into_inner);
        while *g < last {
            let (ng, timeout) = cv
                .wait_timeout(g, Duration::from_secs(30))
                .unwrap_or_else(PoisonError::into_inner);
            g = ng;
            if timeout.timed_out() && *g < last {
                return Err(backend("redis did not answer the writes within 30 s"));
            }
        }
        Ok(())
    }

    fn write_out(&self) -> Result<(), OutboxError> {
        self.inner.wake_writer.notify_one();
        Ok(())
    }

    fn space(&self) -> &Notify {
        &self.inner.space
    }

    fn read(
        &self,
        endpoint: &str,
        _cursor: &mut ReadCursor,
        max: usize,
        _until: u64,
    ) -> Result<ReadOut, OutboxError> {
        let mut s = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut out = ReadOut::default();
        let Some(f) = s.feeds.get_mut(endpoint) else {
            out.at_end = true;
            return Ok(out);
        };
        out.batches.extend(f.batches.drain(..));
        let n = f.buf.len().min(max);
        out.events.extend(f.buf.drain(..n));
        out.at_end = f.buf.is_empty();
        if n > 0 {
            f.room.notify_one();
        }
        Ok(out)
    }

    fn batch(&self, endpoint: &str, batch_id: &str, record: BatchRecord<'_>) {
        let inner = &self.inner;
        let mut s = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (Arc::<str>::from(endpoint), Box::<str>::from(batch_id));
        let st = s.batches.entry(key.clone()).or_default();
        if let Some((seqs, _)) = record.first {
            st.seqs = seqs.to_vec();
            st.first_ms = record.first_ms;
        }
        let Some(a) = record.attempt else {
            return;
        };
        st.log.push(a);
        if st.log.len() > MAX_LOG {
            st.log.remove(0);
        }
        // A failed attempt: the batch goes to the endpoint's retry set, due at `due_ms` (the
        // sender hands it over and forgets it). Its stream entries are acknowledged after.
        let Some(st) = s.batches.remove(&key) else {
            return;
        };
        let mut events = Vec::with_capacity(st.seqs.len());
        let mut acks = Vec::new();
        for q in &st.seqs {
            if let Some(h) = s.held.remove(q) {
                events.push(h.event);
                if let Some(id) = h.id {
                    acks.push(Op::Ack {
                        part: h.part,
                        group: h.group,
                        id,
                    });
                }
            }
        }
        if events.is_empty() {
            tracing::warn!(
                batch = batch_id,
                "a retry of events this process no longer holds: not parked (they are handed out again)"
            );
            return;
        }
        let part = st.taken.unwrap_or_else(|| {
            usize::try_from(fnv(batch_id.as_bytes())).unwrap_or(0) % inner.keys.streams.len()
        });
        let first_ms = match st.first_ms {
            0 => st.log.first().map_or_else(now_ms, |a| a.at_ms),
            t => t,
        };
        let n = events.len();
        let blob = codec::park(&codec::Parked {
            attempts: record.attempts,
            first_ms,
            due_ms: record.due_ms,
            log: log_tuples(&st.log),
            events,
        });
        s.ops.push_back(Op::Park {
            part,
            group: key.0,
            batch: key.1,
            due_ms: record.due_ms,
            blob,
            events: n,
        });
        s.ops.extend(acks);
        drop(s);
        inner.wake_writer.notify_one();
    }

    fn batch_log(&self, endpoint: &str, batch_id: &str) -> Vec<AttemptInfo> {
        let s = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        s.batches
            .get(&(Arc::<str>::from(endpoint), Box::<str>::from(batch_id)))
            .map(|b| b.log.clone())
            .unwrap_or_default()
    }

    fn settle(&self, endpoint: &str, _how: SettleKind, batch: Option<&str>, seqs: &[u64]) {
        let mut s = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut n = 0;
        if let Some(b) = batch {
            let key = (Arc::<str>::from(endpoint), Box::<str>::from(b));
            if let Some(BatchState {
                taken: Some(part), ..
            }) = s.batches.remove(&key)
            {
                s.ops.push_back(Op::Unpark {
                    part,
                    group: key.0,
                    batch: key.1,
                });
                n += 1;
            }
        }
        for q in seqs {
            if let Some(Held {
                part,
                group,
                id: Some(id),
                ..
            }) = s.held.remove(q)
            {
                s.ops.push_back(Op::Ack { part, group, id });
                n += 1;
            }
        }
        drop(s);
        if n > 0 {
            self.inner.wake_writer.notify_one();
        }
    }

    fn dead_letter(
        &self,
        endpoint: &str,
        event: &Event,
        reason: &str,
        batch: Option<&str>,
        attempts: &[AttemptInfo],
        at: SystemTime,
    ) -> Result<u64, OutboxError> {
        let id = random_u64() >> 12;
        let part =
            usize::try_from(fnv(event.id().as_bytes())).unwrap_or(0) % self.inner.keys.dead.len();
        let at_ms = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
        let cmd = dead_cmd(
            &self.inner.keys.dead[part],
            id,
            endpoint,
            reason,
            at_ms,
            &log_tuples(attempts),
            batch,
            event,
        );
        let replicas = self.inner.cfg.replicas;
        self.admin(|c| {
            cmd.query::<Value>(c)?;
            match replicas {
                Some((need, timeout)) => replicated(c, need, timeout),
                None => Ok(()),
            }
        })?;
        Ok(id)
    }

    fn pending_endpoints(&self) -> Vec<(Arc<str>, u64)> {
        Vec::new()
    }

    fn first_seq(&self) -> u64 {
        1
    }

    fn next_seq(&self) -> u64 {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next_seq
    }

    fn stats(&self, _now: SystemTime) -> OutboxStats {
        let mut st = OutboxStats::empty();
        let mut by: HashMap<String, u64> = HashMap::new();
        for (p, key) in self.inner.keys.streams.iter().enumerate() {
            let r = self.admin(|c| {
                let len: u64 = redis::cmd("XLEN").arg(key).query(c)?;
                let groups: Value = redis::cmd("XINFO")
                    .arg("GROUPS")
                    .arg(key)
                    .query(c)
                    .unwrap_or(Value::Nil);
                let mem: Option<u64> = redis::cmd("MEMORY")
                    .arg("USAGE")
                    .arg(key)
                    .query(c)
                    .unwrap_or(None);
                let dead: u64 = redis::cmd("XLEN").arg(&self.inner.keys.dead[p]).query(c)?;
                let dead_mem: Option<u64> = redis::cmd("MEMORY")
                    .arg("USAGE")
                    .arg(&self.inner.keys.dead[p])
                    .query(c)
                    .unwrap_or(None);
                Ok((len, groups, mem, dead, dead_mem))
            });
            let Ok((len, groups, mem, dead, dead_mem)) = r else {
                st.failed = r.err().map(|e| e.to_string());
                return st;
            };
            st.segments += 1;
            st.backlog_bytes += mem.unwrap_or(0);
            st.dead_letters += dead;
            st.dead_letter_bytes += dead_mem.unwrap_or(0);
            for g in items(&groups) {
                let m: HashMap<String, Value> = match g {
                    Value::Map(m) => m
                        .iter()
                        .filter_map(|(k, v)| Some((string_of(k)?, v.clone())))
                        .collect(),
                    _ => items(g)
                        .chunks(2)
                        .filter_map(|c| Some((string_of(c.first()?)?, c.get(1)?.clone())))
                        .collect(),
                };
                let Some(name) = m.get("name").and_then(string_of) else {
                    continue;
                };
                let pending = m.get("pending").and_then(int_of).unwrap_or(0);
                // `lag` (7.0+): entries not yet read. Unknown (Redis 6.2, or 7.0+ after some
                // deletions) → the stream's entries the group does not hold pending (an upper
                // bound: some may be settled by it and kept for another group); the whole
                // length would count each pending entry twice.
                let lag = m.get("lag").and_then(int_of).unwrap_or_else(|| {
                    i64::try_from(len)
                        .unwrap_or(i64::MAX)
                        .saturating_sub(pending)
                        .max(0)
                });
                // Batches waiting in its retry set (their entries left the stream).
                let meta = self.inner.keys.retry(p, &name).meta;
                let waiting: u64 = self
                    .admin(|c| redis::cmd("HGETALL").arg(&meta).query::<Value>(c))
                    .map(|v| {
                        pairs(&v)
                            .into_iter()
                            .filter(|(k, _)| k.starts_with(b"n:"))
                            .filter_map(|(_, n)| std::str::from_utf8(&n).ok()?.parse::<u64>().ok())
                            .sum()
                    })
                    .unwrap_or(0);
                *by.entry(name).or_default() += u64::try_from(pending + lag).unwrap_or(0) + waiting;
            }
        }
        let mut by: Vec<(String, u64)> = by.into_iter().collect();
        by.sort();
        st.pending = by.iter().map(|(_, n)| n).sum();
        st.pending_by_endpoint = by;
        st.dropped = self.inner.counters.dropped.load(Ordering::Relaxed);
        st
    }

    fn recovery(&self) -> RecoveryReport {
        RecoveryReport::default()
    }

    fn dead_letters(&self, filter: &Filter, limit: usize) -> Vec<DeadLetterEntry> {
        match self.all_dead(false) {
            Ok(all) => all
                .into_iter()
                .map(|(_, _, d)| d)
                .filter(|d| filter.accepts(d.id, &d.endpoint, &d.event_id, d.dead_at))
                .take(limit)
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "listing the dead letters failed");
                Vec::new()
            }
        }
    }

    fn dead_letter_entry(&self, id: u64) -> Result<Option<DeadLetterEntry>, OutboxError> {
        Ok(self
            .all_dead(true)?
            .into_iter()
            .map(|(_, _, d)| d)
            .find(|d| d.id == id))
    }

    fn remove_dead(&self, ids: &[u64]) -> Result<usize, OutboxError> {
        let all = self.all_dead(false)?;
        let mut n = 0;
        for (p, sid, d) in all {
            if ids.contains(&d.id) {
                let key = &self.inner.keys.dead[p];
                let k: u64 = self.admin(|c| redis::cmd("XDEL").arg(key).arg(&sid).query(c))?;
                n += usize::try_from(k).unwrap_or(0);
            }
        }
        Ok(n)
    }

    fn attempts_of(&self, event_id: &str) -> Vec<(Arc<str>, Box<str>, Vec<AttemptInfo>)> {
        let _ = event_id;
        Vec::new()
    }

    fn load_registry(&self) -> Result<Option<RegistrySnapshot>, OutboxError> {
        // Without `shared_registry`, each worker process has its own endpoints: `None`.
        crate::registry::load(self)
    }

    fn save_registry(&self, snapshot: &RegistrySnapshot) -> Result<(), OutboxError> {
        // Without `shared_registry`, nothing is written.
        crate::registry::save(self, snapshot)
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn schedules_retries(&self) -> bool {
        true
    }

    fn feed(&self, endpoint: &str) -> Option<Arc<Notify>> {
        Some(self.start_feed(&Arc::from(endpoint)))
    }
}
