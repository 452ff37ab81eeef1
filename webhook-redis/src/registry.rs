//! The endpoint registry shared through Redis: a change made on any process reaches every
//! worker of the queue within a second.
//!
//! Opt in with [`RedisQueueConfig::shared_registry`](crate::RedisQueueConfig::shared_registry).
//!
//! # Keys
//!
//! For a queue `Q` (every key carries the hash tag `{Q}`, so they share one Redis Cluster
//! slot and one script can change them together):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `whk:{Q}:reg:endpoints` | HASH | endpoint name → [`EndpointSpec`] as JSON (secrets included) |
//! | `whk:{Q}:reg:sets` | HASH | event set name → [`EventSet`] as JSON |
//! | `whk:{Q}:reg:version` | STRING | a counter incremented by every change |
//! | `whk:{Q}:reg:changed` | pub/sub channel | the new version, published by every change |
//!
//! The registry is stored **per item**, not as one document: two processes changing two
//! different endpoints at the same moment both succeed. Every change is one script
//! (`HSET`/`HDEL` and the `INCR` of the version, atomic; a script rather than a `MULTI`
//! pipeline because a cluster's blocking connection has no pipelines), then a `PUBLISH`.
//!
//! # Writing: `save_registry`
//!
//! A [`Sender`] over the queue calls [`OutboxStore::save_registry`](webhook_sender::outbox::OutboxStore::save_registry) with its whole
//! [`RegistrySnapshot`] after every registry change (add, update, pause, resume, enable,
//! remove, event sets). The queue writes only the items that differ from the state it last
//! knew from Redis: a change applied from Redis is not written back (no echo), and a sender
//! that changes one endpoint writes that one. Only endpoints built from an [`EndpointSpec`]
//! are shared (endpoints configured in code have none and stay local).
//!
//! # Reading: the watcher
//!
//! [`SharedRegistry::watch`] starts a task that keeps a [`Sender`] in step with Redis. It is
//! woken by the pub/sub channel (a change reaches it in milliseconds) and also reads the
//! version every 250 ms, because pub/sub messages sent while its connection was down are lost.
//! When the version moved it reads both hashes and merges three ways: the state it last knew
//! from Redis (the base), Redis now, and the sender's [`snapshot`](Sender::snapshot).
//!
//! * An item that changed in Redis since the base is applied to the sender (`add_endpoint`,
//!   `update_endpoint`, `pause`, `resume`, `enable_by`, `remove_endpoint`, `upsert_event_set`,
//!   `remove_event_set`), with the actor `redis:<consumer>` in the audit trail.
//! * An item that changed only in the sender is a local change `save_registry` writes.
//!
//! # Semantics
//!
//! * **Concurrent changes of one endpoint: the last writer wins**, per endpoint (per event set).
//!   Redis orders the writes; every process converges on the last one. Changes of different
//!   endpoints never overwrite each other.
//! * **A Redis that lost the registry** (restarted without persistence, flushed, keys
//!   deleted: the version went back) is not read as "every endpoint removed": each watcher
//!   that notices writes its sender's view back (deleting nothing) and the processes
//!   converge, so a non-persistent Redis does not empty every worker.
//! * **Redis is the source of truth.** A local change that could not be written (Redis
//!   unreachable) is logged, retried by the watcher, and loses to any change of the same item
//!   made in Redis meanwhile. An item this process cannot build (a client certificate file
//!   missing on this machine, say) is logged and left as Redis has it: the process never
//!   writes its own stale view of it back.
//! * **Joining**: a process whose sender was not seeded from Redis
//!   ([`load_registry`](webhook_sender::outbox::OutboxStore::load_registry)) adds the endpoints Redis lacks and takes
//!   Redis's version of those it has; it deletes nothing.
//! * **Removal**: the process that removes an endpoint (a sender's `remove_endpoint`, or
//!   [`SharedRegistry::remove_endpoint`], `webhook endpoints rm`) deletes it from the hash and
//!   destroys its consumer group on every partition, so that what was still queued for it
//!   stops pinning the streams' memory (trimming stops at the oldest entry any group holds):
//!   **events not yet read for a removed endpoint, and its batches waiting for a retry (its
//!   retry sets), are dropped.** Every worker stops reading it
//!   within a second; what a worker already holds is settled by the watcher's
//!   [`RemovePolicy`] (default [`RemovePolicy::Deliver`]: the held batches are still sent).
//!   To deliver a backlog first, remove it with
//!   [`SharedRegistry::remove_endpoint_drained`] (`webhook endpoints rm NAME --drain 5m`),
//!   which waits until the endpoint has nothing left and drops nothing. A worker whose read finds the group gone does not create it
//!   again while the endpoint is out of the registry. (A worker that does not follow the
//!   registry but reads the same group, `webhook worker --endpoint … --name NAME`, does create
//!   it again, from the start of the stream: do not mix the two for one endpoint.)
//! * **Secrets are stored in Redis** as the spec holds them (signing keys, tokens,
//!   passwords). Protect the server: an ACL user per application limited to the `whk:*` keys,
//!   TLS or a private network, no unauthenticated access, and encrypted persistence files.
//!
//! ```no_run
//! use std::sync::Arc;
//! use webhook_redis::{RedisQueue, RedisQueueConfig, SharedRegistry};
//! use webhook_sender::Sender;
//! use webhook_sender::outbox::{Outbox, OutboxStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let cfg = RedisQueueConfig::new("redis://127.0.0.1:6379", "orders").shared_registry(true);
//! let queue = RedisQueue::connect(cfg).await?;
//! // Seed the sender with the shared registry, then follow it.
//! let seed = queue.load_registry()?.unwrap_or_default();
//! let builder = Sender::builder().outbox_open(Outbox::from_store(Arc::new(queue.clone())));
//! let sender = seed.apply(builder)?.build()?;
//! let registry = SharedRegistry::new(&queue);
//! let _watch = registry.watch(&sender)?;
//! // sender.add_endpoint(...) on this process now reaches every other worker.
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::Value;
use tokio::sync::Notify;
use webhook_core::{EventSet, EventSets};
use webhook_sender::outbox::OutboxError;
use webhook_sender::{
    EndpointConfig, EndpointSpec, RegistryError, RegistrySnapshot, RemovePolicy, Sender, SpecError,
};

use crate::RedisQueue;
use crate::members::Worker;

/// How often the watcher reads the version (besides being woken by pub/sub).
const POLL: Duration = Duration::from_millis(250);
/// How often items that could not be applied are tried again.
const RETRY: Duration = Duration::from_secs(5);

/// Why a shared registry operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrySyncError {
    /// Redis could not be reached or refused a command.
    #[error("redis: {0}")]
    Redis(String),
    /// The queue was connected without
    /// [`shared_registry(true)`](crate::RedisQueueConfig::shared_registry).
    #[error(
        "the queue does not share its registry: connect it with RedisQueueConfig::shared_registry(true)"
    )]
    NotShared,
    /// An endpoint spec or event set is invalid.
    #[error("invalid registry item")]
    Spec(#[from] SpecError),
    /// No endpoint (or event set) of that name in the shared registry.
    #[error("no endpoint or event set named {0:?} in the shared registry")]
    Unknown(String),
    /// An endpoint of that name is in the shared registry already.
    #[error("{0:?} is in the shared registry already")]
    Duplicate(String),
    /// The endpoint names an event set the shared registry does not have.
    #[error(
        "endpoint {endpoint:?} names the event set {event_set:?}, which the shared registry does not have"
    )]
    UnknownEventSet {
        /// The endpoint.
        endpoint: String,
        /// The event set.
        event_set: String,
    },
    /// [`SharedRegistry::remove_endpoint_drained`]'s timeout passed with this left (the
    /// endpoint was not removed).
    #[error(
        "endpoint {endpoint:?} is not drained ({pending} events pending, {retrying} batches waiting for a retry{}): not removed",
        if *unread { ", entries not read yet" } else { "" }
    )]
    NotDrained {
        /// The endpoint.
        endpoint: String,
        /// Entries handed to a worker and not settled.
        pending: u64,
        /// Batches waiting in its retry sets.
        retrying: u64,
        /// Entries its group has not read yet.
        unread: bool,
    },
    /// The event set is used by these endpoints.
    #[error("event set {set:?} is used by {endpoints:?}")]
    EventSetInUse {
        /// The event set.
        set: String,
        /// The endpoints subscribing to it.
        endpoints: Vec<String>,
    },
    /// An item in Redis is not valid JSON of its kind (written by hand?).
    #[error("{key} {field:?} in redis is not valid: {message}")]
    Corrupt {
        /// The hash.
        key: String,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl From<redis::RedisError> for RegistrySyncError {
    fn from(e: redis::RedisError) -> Self {
        Self::Redis(e.to_string())
    }
}

/// An item of the registry; event sets sort first (endpoints name them).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Set(String),
    Endpoint(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Set(EventSet),
    Endpoint(Box<EndpointSpec>),
}

type Items = BTreeMap<Key, Item>;

fn items_of(s: &RegistrySnapshot) -> Items {
    let mut m = Items::new();
    for set in &s.event_sets {
        m.insert(Key::Set(set.name.clone()), Item::Set(set.clone()));
    }
    for e in &s.endpoints {
        m.insert(
            Key::Endpoint(e.name.clone()),
            Item::Endpoint(Box::new(e.clone())),
        );
    }
    m
}

fn snapshot_of(items: &Items) -> RegistrySnapshot {
    let mut s = RegistrySnapshot::default();
    for item in items.values() {
        match item {
            Item::Set(set) => s.event_sets.push(set.clone()),
            Item::Endpoint(e) => s.endpoints.push((**e).clone()),
        }
    }
    s
}

/// Whether the sender's `local` item is what Redis's `remote` says. `require_test` cannot be
/// set again on an endpoint that passed its test: a remote `true` against a local `false` is
/// the same.
fn same(remote: Option<&Item>, local: Option<&Item>) -> bool {
    match (remote, local) {
        (Some(Item::Endpoint(r)), Some(Item::Endpoint(l))) => {
            r == l
                || (r.require_test && !l.require_test && {
                    let mut r = r.clone();
                    r.require_test = false;
                    r == *l
                })
        }
        (r, l) => r == l,
    }
}

/// The shared registry's state in one process.
#[derive(Debug)]
pub(crate) struct RegistryState {
    enabled: bool,
    sync: Mutex<SyncState>,
    /// Endpoint names this process saw in the shared registry (a group destroyed for one of
    /// them is not created again while it is out of the registry).
    seen: Mutex<HashSet<String>>,
    /// Endpoints removed from the shared registry whose feeds this process stopped: not
    /// started again (by the driver settling what it held) until the endpoint comes back.
    stopped: Mutex<HashSet<String>>,
}

#[derive(Debug, Default)]
struct SyncState {
    /// The state last known from Redis (`None`: not read yet).
    remote: Option<Items>,
    /// Its version.
    version: i64,
    /// Items the watcher is applying to the sender, or could not: `save` leaves them alone.
    held: HashSet<Key>,
    /// Items of Redis the sender has not been seen to have: `save` does not delete them.
    unconfirmed: HashSet<Key>,
    /// Writes made: a watcher's read that overlapped one is read again.
    writes: u64,
    /// A save failed: the watcher saves again.
    dirty: bool,
}

impl RegistryState {
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            sync: Mutex::new(SyncState::default()),
            seen: Mutex::new(HashSet::new()),
            stopped: Mutex::new(HashSet::new()),
        }
    }

    fn stopped(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.stopped.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_stopped(&self, group: &str) -> bool {
        self.enabled && self.stopped().contains(group)
    }

    pub(crate) fn stop(&self, group: &str) {
        if self.enabled {
            self.stopped().insert(group.to_owned());
        }
    }

    /// `true` when it was stopped.
    pub(crate) fn unstop(&self, group: &str) -> bool {
        self.stopped().remove(group)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SyncState> {
        self.sync.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn saw(&self, items: &Items) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        for k in items.keys() {
            if let Key::Endpoint(n) = k {
                seen.insert(n.clone());
            }
        }
    }
}

// ---- reading and writing Redis ---------------------------------------------------------

/// The version and both hashes, read at once: a script (one command, so that the blocking
/// connection of a cluster, which has no pipelines, routes it to the registry's shard).
const FETCH: &str = r#"
return {redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
"#;

fn fetch_cmd(queue: &RedisQueue) -> redis::Cmd {
    let k = &queue.inner.keys;
    let mut c = redis::cmd("EVAL");
    c.arg(FETCH)
        .arg(3)
        .arg(&k.reg_version)
        .arg(&k.reg_endpoints)
        .arg(&k.reg_sets);
    c
}

/// The answer of [`fetch_cmd`]: the version and both hashes.
type Raw = (Option<i64>, Vec<(String, String)>, Vec<(String, String)>);

/// The version and the items; items that do not parse are left out (and named).
type Fetched = (i64, Items, Vec<RegistrySyncError>);

fn parse_fetch(queue: &RedisQueue, (version, endpoints, sets): Raw) -> Fetched {
    let k = &queue.inner.keys;
    let mut items = Items::new();
    let mut bad = Vec::new();
    let corrupt = |key: &str, field: &str, message: String| RegistrySyncError::Corrupt {
        key: key.to_owned(),
        field: field.to_owned(),
        message,
    };
    for (name, json) in endpoints {
        match serde_json::from_str::<EndpointSpec>(&json) {
            Ok(spec) if spec.name == name => {
                items.insert(Key::Endpoint(name), Item::Endpoint(Box::new(spec)));
            }
            Ok(spec) => bad.push(corrupt(
                &k.reg_endpoints,
                &name,
                format!("the spec is named {:?}", spec.name),
            )),
            Err(e) => bad.push(corrupt(&k.reg_endpoints, &name, e.to_string())),
        }
    }
    for (name, json) in sets {
        match serde_json::from_str::<EventSet>(&json) {
            Ok(set) if set.name == name => {
                items.insert(Key::Set(name), Item::Set(set));
            }
            Ok(set) => bad.push(corrupt(
                &k.reg_sets,
                &name,
                format!("the set is named {:?}", set.name),
            )),
            Err(e) => bad.push(corrupt(&k.reg_sets, &name, e.to_string())),
        }
    }
    (version.unwrap_or(0), items, bad)
}

fn fetch_blocking(queue: &RedisQueue) -> Result<Fetched, OutboxError> {
    let cmd = fetch_cmd(queue);
    let raw = queue.admin(|c| cmd.query(c))?;
    Ok(parse_fetch(queue, raw))
}

async fn fetch_async(queue: &RedisQueue) -> Result<Fetched, RegistrySyncError> {
    let mut conn = queue.inner.conn.clone();
    let raw = fetch_cmd(queue).query_async(&mut conn).await?;
    Ok(parse_fetch(queue, raw))
}

fn json_of(item: &Item) -> String {
    match item {
        Item::Endpoint(e) => serde_json::to_string(e),
        Item::Set(s) => serde_json::to_string(s),
    }
    .unwrap_or_default()
}

/// The changes and the `INCR` of the version, atomic: a script (one command, see [`FETCH`]).
/// ARGV: triples of what (`e` endpoint, `s` event set), field, JSON (empty: removed).
const WRITE: &str = r#"
for i = 1, #ARGV, 3 do
  local hash = KEYS[2]
  if ARGV[i] == 's' then hash = KEYS[3] end
  if ARGV[i + 2] == '' then
    redis.call('HDEL', hash, ARGV[i + 1])
  else
    redis.call('HSET', hash, ARGV[i + 1], ARGV[i + 2])
  end
end
return redis.call('INCR', KEYS[1])
"#;

/// The changes and the version's `INCR` in one script; answers the new version.
fn write_cmd(queue: &RedisQueue, changes: &[(Key, Option<Item>)]) -> redis::Cmd {
    let k = &queue.inner.keys;
    let mut c = redis::cmd("EVAL");
    c.arg(WRITE)
        .arg(3)
        .arg(&k.reg_version)
        .arg(&k.reg_endpoints)
        .arg(&k.reg_sets);
    for (key, item) in changes {
        let (what, field) = match key {
            Key::Endpoint(n) => ("e", n),
            Key::Set(n) => ("s", n),
        };
        c.arg(what)
            .arg(field)
            .arg(item.as_ref().map(json_of).unwrap_or_default());
    }
    c
}

fn publish_pipe(queue: &RedisQueue, version: i64) -> redis::Cmd {
    let mut c = redis::cmd("PUBLISH");
    c.arg(&queue.inner.keys.reg_channel).arg(version);
    c
}

/// Per partition: `XGROUP DESTROY` of `group`, and its retry set dropped (the partition's
/// count of waiting events follows). Single commands (a cluster's blocking connection has no
/// pipelines); errors (no such stream) are the caller's to ignore.
fn destroy_cmds(queue: &RedisQueue, group: &str) -> Vec<redis::Cmd> {
    let keys = &queue.inner.keys;
    let mut out = Vec::new();
    for (part, s) in keys.streams.iter().enumerate() {
        let mut d = redis::cmd("XGROUP");
        d.arg("DESTROY").arg(s).arg(group);
        out.push(d);
        let k = keys.retry(part, group);
        let mut r = redis::cmd("EVAL");
        r.arg(crate::scripts::DROP_RETRIES)
            .arg(5)
            .arg(&k.due)
            .arg(&k.held)
            .arg(&k.data)
            .arg(&k.meta)
            .arg(&k.count);
        out.push(r);
    }
    out
}

// ---- the store's hooks -----------------------------------------------------------------

/// [`OutboxStore::load_registry`]: the shared registry (`None` when not shared).
pub(crate) fn load(queue: &RedisQueue) -> Result<Option<RegistrySnapshot>, OutboxError> {
    let st = &queue.inner.registry;
    if !st.enabled {
        return Ok(None);
    }
    let (version, remote, bad) = fetch_blocking(queue)?;
    for b in &bad {
        tracing::warn!(error = %b, "a shared registry item was skipped");
    }
    st.saw(&remote);
    let snapshot = snapshot_of(&remote);
    let mut g = st.lock();
    g.unconfirmed = remote.keys().cloned().collect();
    g.remote = Some(remote);
    g.version = version;
    Ok(Some(snapshot))
}

/// [`OutboxStore::save_registry`]: writes what the sender changed (nothing when not shared).
pub(crate) fn save(queue: &RedisQueue, snapshot: &RegistrySnapshot) -> Result<(), OutboxError> {
    let st = &queue.inner.registry;
    if !st.enabled {
        return Ok(());
    }
    let cur = items_of(snapshot);
    let mut g = st.lock();
    let r = save_locked(queue, &mut g, &cur);
    g.dirty = r.is_err();
    drop(g);
    let (written, removed) = r?;
    for name in written {
        queue.resume_feed(&name);
    }
    for name in removed {
        // Stop reading it here; the others stop when they see it gone, and do not create the
        // group again (see `removed_from_registry`).
        queue.stop_feed(&name);
        for cmd in destroy_cmds(queue, &name) {
            if let Err(e) = queue.admin(|c| cmd.query::<Value>(c)) {
                // (A partition never written to has no stream, hence no group.)
                tracing::debug!(error = %e, endpoint = %name, "destroying the removed endpoint's consumer group");
            }
        }
    }
    Ok(())
}

/// The endpoints a save wrote, and those it removed.
type Saved = (Vec<String>, Vec<String>);

/// The writes of `save` under the lock.
fn save_locked(queue: &RedisQueue, g: &mut SyncState, cur: &Items) -> Result<Saved, OutboxError> {
    if g.remote.is_none() {
        // Joining: Redis's version wins for the items both have; nothing is deleted.
        let (version, remote, _) = fetch_blocking(queue)?;
        queue.inner.registry.saw(&remote);
        g.unconfirmed = remote.keys().cloned().collect();
        for (k, item) in cur {
            if remote.get(k).is_some_and(|r| !same(Some(r), Some(item))) {
                g.held.insert(k.clone());
            }
        }
        g.remote = Some(remote);
        g.version = version;
    }
    let Some(remote) = g.remote.as_ref() else {
        return Ok(Saved::default());
    };
    let keys: BTreeSet<&Key> = cur.keys().chain(remote.keys()).collect();
    let mut changes: Vec<(Key, Option<Item>)> = Vec::new();
    let mut confirmed = Vec::new();
    for k in keys {
        if g.held.contains(k) {
            continue;
        }
        match (cur.get(k), remote.get(k)) {
            (Some(c), Some(r)) if same(Some(r), Some(c)) => confirmed.push(k.clone()),
            (Some(c), _) => changes.push((k.clone(), Some(c.clone()))),
            (None, Some(_)) if g.unconfirmed.contains(k) => {}
            (None, Some(_)) => changes.push((k.clone(), None)),
            (None, None) => {}
        }
    }
    for k in confirmed {
        g.unconfirmed.remove(&k);
    }
    if changes.is_empty() {
        return Ok(Saved::default());
    }
    let cmd = write_cmd(queue, &changes);
    let version: i64 = queue.admin(|c| cmd.query(c))?;
    let publish = publish_pipe(queue, version);
    if let Err(e) = queue.admin(|c| publish.query::<Value>(c)) {
        // The others see the version within their next poll.
        tracing::debug!(error = %e, "announcing a registry change failed");
    }
    g.writes += 1;
    if version == g.version + 1 {
        g.version = version;
    }
    let (mut written, mut removed) = Saved::default();
    let remote = g.remote.get_or_insert_with(Items::new);
    for (k, item) in changes {
        match item {
            Some(item) => {
                if let Key::Endpoint(n) = &k {
                    written.push(n.clone());
                    queue
                        .inner
                        .registry
                        .seen
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(n.clone());
                }
                remote.insert(k, item);
            }
            None => {
                remote.remove(&k);
                if let Key::Endpoint(n) = k {
                    removed.push(n);
                }
            }
        }
    }
    tracing::debug!(version, "registry changes written to redis");
    Ok((written, removed))
}

/// The reader's question on `NOGROUP`: was `group` an endpoint of the shared registry that is
/// no longer in it (its group destroyed on purpose)?
pub(crate) async fn removed_from_registry(inner: &crate::queue::Inner, group: &str) -> bool {
    if !inner.registry.enabled
        || !inner
            .registry
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(group)
    {
        return false;
    }
    let mut conn = inner.conn.clone();
    let r: Result<bool, _> = redis::cmd("HEXISTS")
        .arg(&inner.keys.reg_endpoints)
        .arg(group)
        .query_async(&mut conn)
        .await;
    // Unknown (Redis unreachable): not created now; asked again at the next read.
    r.map_or(true, |exists| !exists)
}

// ---- the public handle -----------------------------------------------------------------

/// Builds an endpoint's configuration from its spec (see [`SharedRegistry::endpoint_builder`]).
pub type EndpointBuilder =
    Arc<dyn Fn(&EndpointSpec) -> Result<EndpointConfig, SpecError> + Send + Sync>;

/// The shared registry of a queue: read and change it directly (what `webhook endpoints`
/// does), and keep a [`Sender`] in step with it ([`watch`](Self::watch)). See the module
/// docs for the keys and the semantics.
///
/// ```no_run
/// use webhook_redis::{RedisQueue, RedisQueueConfig, SharedRegistry};
/// use webhook_sender::EndpointSpec;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let queue = RedisQueue::connect(RedisQueueConfig::new("redis://127.0.0.1:6379", "orders")).await?;
/// let registry = SharedRegistry::new(&queue);
/// registry.add_endpoint(EndpointSpec::new("siem", "https://siem.example/in")).await?;
/// registry.set_paused("siem", true).await?;
/// for spec in registry.snapshot().await?.endpoints {
///     println!("{} {} paused={}", spec.name, spec.url, spec.paused);
/// }
/// registry.remove_endpoint("siem").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SharedRegistry {
    queue: RedisQueue,
    policy: RemovePolicy,
    build: EndpointBuilder,
}

/// What an endpoint has left ([`SharedRegistry::remove_endpoint_drained`]).
#[derive(Debug, Default)]
struct Left {
    pending: u64,
    retrying: u64,
    unread: bool,
}

impl Left {
    fn is_empty(&self) -> bool {
        self.pending == 0 && self.retrying == 0 && !self.unread
    }
}

impl std::fmt::Debug for SharedRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRegistry")
            .field("queue", &self.queue.config().queue_name())
            .field("remove_policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl SharedRegistry {
    /// The shared registry of `queue`'s queue.
    #[must_use]
    pub fn new(queue: &RedisQueue) -> Self {
        Self {
            queue: queue.clone(),
            policy: RemovePolicy::Deliver,
            build: Arc::new(EndpointSpec::to_config),
        }
    }

    /// What a watched sender does with the events it holds for an endpoint removed from the
    /// shared registry (default [`RemovePolicy::Deliver`]). Events not yet read are dropped
    /// with the endpoint's consumer group whatever the policy.
    #[must_use]
    pub fn remove_policy(mut self, policy: RemovePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How a watched sender builds an endpoint from its spec (default
    /// [`EndpointSpec::to_config`]): add what data cannot hold, such as a transport (see
    /// [`RegistrySnapshot::apply_with`]).
    #[must_use]
    pub fn endpoint_builder(
        mut self,
        build: impl Fn(&EndpointSpec) -> Result<EndpointConfig, SpecError> + Send + Sync + 'static,
    ) -> Self {
        self.build = Arc::new(build);
        self
    }

    /// The shared registry now: event sets and endpoints, by name. Items that are not valid
    /// are left out (and logged).
    ///
    /// # Errors
    /// [`RegistrySyncError::Redis`].
    pub async fn snapshot(&self) -> Result<RegistrySnapshot, RegistrySyncError> {
        let (_, items, bad) = fetch_async(&self.queue).await?;
        for b in &bad {
            tracing::warn!(error = %b, "a shared registry item was skipped");
        }
        Ok(snapshot_of(&items))
    }

    /// The registry's version (incremented by every change).
    ///
    /// # Errors
    /// [`RegistrySyncError::Redis`].
    pub async fn version(&self) -> Result<i64, RegistrySyncError> {
        let mut conn = self.queue.inner.conn.clone();
        let v: Option<i64> = redis::cmd("GET")
            .arg(&self.queue.inner.keys.reg_version)
            .query_async(&mut conn)
            .await?;
        Ok(v.unwrap_or(0))
    }

    async fn check(&self, spec: &EndpointSpec) -> Result<(), RegistrySyncError> {
        spec.build(spec.config_builder()?)?;
        if !spec.event_sets.is_empty() {
            let snap = self.snapshot().await?;
            if let Some(missing) = spec
                .event_sets
                .iter()
                .find(|n| !snap.event_sets.iter().any(|s| &s.name == *n))
            {
                return Err(RegistrySyncError::UnknownEventSet {
                    endpoint: spec.name.clone(),
                    event_set: missing.clone(),
                });
            }
        }
        Ok(())
    }

    async fn write(
        &self,
        changes: &[(Key, Option<Item>)],
        only_if: Option<(&str, bool)>,
    ) -> Result<bool, RegistrySyncError> {
        let mut conn = self.queue.inner.conn.clone();
        let k = &self.queue.inner.keys;
        // The condition (HSETNX for an add, HDEL's count for a remove) is in the same MULTI.
        let mut p = redis::pipe();
        p.atomic();
        let mut conditional = false;
        for (key, item) in changes {
            let (hash, field) = match key {
                Key::Endpoint(n) => (&k.reg_endpoints, n),
                Key::Set(n) => (&k.reg_sets, n),
            };
            match (item, only_if) {
                (Some(item), Some((f, true))) if f == field => {
                    p.cmd("HSETNX").arg(hash).arg(field).arg(json_of(item));
                    conditional = true;
                }
                (None, Some((f, false))) if f == field => {
                    p.cmd("HDEL").arg(hash).arg(field);
                    conditional = true;
                }
                (Some(item), _) => {
                    p.cmd("HSET")
                        .arg(hash)
                        .arg(field)
                        .arg(json_of(item))
                        .ignore();
                }
                (None, _) => {
                    p.cmd("HDEL").arg(hash).arg(field).ignore();
                }
            }
        }
        p.cmd("INCR").arg(&k.reg_version);
        let (ok, version) = if conditional {
            let (n, v): (i64, i64) = p.query_async(&mut conn).await?;
            (n > 0, v)
        } else {
            let (v,): (i64,) = p.query_async(&mut conn).await?;
            (true, v)
        };
        let _: Result<Value, _> = publish_pipe(&self.queue, version)
            .query_async(&mut conn)
            .await;
        Ok(ok)
    }

    /// Adds an endpoint to the shared registry; every watching worker adds it within a second.
    ///
    /// # Errors
    /// [`RegistrySyncError::Duplicate`] when the name is taken, [`RegistrySyncError::Spec`]
    /// for a spec that cannot be built, [`RegistrySyncError::UnknownEventSet`],
    /// [`RegistrySyncError::Redis`].
    pub async fn add_endpoint(&self, spec: EndpointSpec) -> Result<(), RegistrySyncError> {
        self.check(&spec).await?;
        let name = spec.name.clone();
        let added = self
            .write(
                &[(
                    Key::Endpoint(name.clone()),
                    Some(Item::Endpoint(Box::new(spec))),
                )],
                Some((&name, true)),
            )
            .await?;
        if added {
            Ok(())
        } else {
            Err(RegistrySyncError::Duplicate(name))
        }
    }

    /// Adds an endpoint or replaces the one of the same name (last writer wins).
    ///
    /// # Errors
    /// As [`add_endpoint`](Self::add_endpoint), without `Duplicate`.
    pub async fn put_endpoint(&self, spec: EndpointSpec) -> Result<(), RegistrySyncError> {
        self.check(&spec).await?;
        self.write(
            &[(
                Key::Endpoint(spec.name.clone()),
                Some(Item::Endpoint(Box::new(spec))),
            )],
            None,
        )
        .await?;
        Ok(())
    }

    /// Removes an endpoint and destroys its consumer groups (what was queued for it and not
    /// read yet is dropped; see the module docs).
    ///
    /// # Errors
    /// [`RegistrySyncError::Unknown`], [`RegistrySyncError::Redis`].
    pub async fn remove_endpoint(&self, name: &str) -> Result<(), RegistrySyncError> {
        let removed = self
            .write(
                &[(Key::Endpoint(name.to_owned()), None)],
                Some((name, false)),
            )
            .await?;
        if !removed {
            return Err(RegistrySyncError::Unknown(name.to_owned()));
        }
        self.queue.stop_feed(name);
        let mut conn = self.queue.inner.conn.clone();
        for cmd in destroy_cmds(&self.queue, name) {
            let _: Result<Value, _> = cmd.query_async(&mut conn).await;
        }
        Ok(())
    }

    /// Removes an endpoint once it has nothing left to deliver: every entry appended so far
    /// read by its group and settled (nothing pending), and no batch waiting in its retry
    /// sets. Then as [`remove_endpoint`](Self::remove_endpoint); nothing is dropped. Checked
    /// every 100 ms; while producers keep appending, the endpoint keeps receiving, so under
    /// a steady stream pause the producers' events for it first (or accept what
    /// `remove_endpoint` drops).
    ///
    /// # Errors
    /// [`RegistrySyncError::NotDrained`] when `timeout` passes first (the endpoint stays, and
    /// keeps delivering), [`RegistrySyncError::Unknown`], [`RegistrySyncError::Redis`].
    pub async fn remove_endpoint_drained(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<(), RegistrySyncError> {
        let started = Instant::now();
        loop {
            if !self
                .snapshot()
                .await?
                .endpoints
                .iter()
                .any(|e| e.name == name)
            {
                return Err(RegistrySyncError::Unknown(name.to_owned()));
            }
            let left = self.left(name).await?;
            if left.is_empty() {
                return self.remove_endpoint(name).await;
            }
            if started.elapsed() >= timeout {
                return Err(RegistrySyncError::NotDrained {
                    endpoint: name.to_owned(),
                    pending: left.pending,
                    retrying: left.retrying,
                    unread: left.unread,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What `name` has left in every partition. The streams are read first, then the retry
    /// sets: a failed batch moves from the one to the other (parked, then acknowledged), and
    /// its retry set may be another partition's, so a batch seen in neither place has been
    /// settled, not missed in between.
    async fn left(&self, name: &str) -> Result<Left, RegistrySyncError> {
        let inner = &self.queue.inner;
        let mut conn = inner.conn.clone();
        let redis_err = |e: redis::RedisError| RegistrySyncError::Redis(e.to_string());
        let mut left = Left::default();
        for stream in &inner.keys.streams {
            let len: u64 = redis::cmd("XLEN")
                .arg(stream)
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            if len == 0 {
                continue;
            }
            let group = crate::queue::groups_of(&mut conn, stream)
                .await
                .into_iter()
                .find(|g| g.iter().any(|(k, v)| k == b"name" && v == name.as_bytes()));
            let Some(group) = group else {
                // Entries no worker of the endpoint has read yet (its group is created, from
                // the start of the stream, by the first reader).
                left.unread = true;
                continue;
            };
            let field = |k: &[u8]| {
                group
                    .iter()
                    .find(|(f, _)| f == k)
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default()
            };
            left.pending += field(b"pending").parse::<u64>().unwrap_or(0);
            // Caught up: its last delivered entry is the stream's last (Redis 6.2 has no
            // `lag`, so the ids are compared).
            let info: Value = redis::cmd("XINFO")
                .arg("STREAM")
                .arg(stream)
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            let last = crate::queue::pairs(&info)
                .into_iter()
                .find(|(k, _)| k == b"last-generated-id")
                .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_default();
            if field(b"last-delivered-id") != last {
                left.unread = true;
            }
        }
        for part in 0..inner.keys.streams.len() {
            let r = inner.keys.retry(part, name);
            // Atomic: a batch whose lease ran out moves from held back to due.
            let (due, held): (u64, u64) = redis::pipe()
                .atomic()
                .cmd("ZCARD")
                .arg(&r.due)
                .cmd("ZCARD")
                .arg(&r.held)
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            left.retrying += due + held;
        }
        Ok(left)
    }

    /// Pauses (or resumes) an endpoint on every worker.
    ///
    /// # Errors
    /// [`RegistrySyncError::Unknown`], [`RegistrySyncError::Redis`],
    /// [`RegistrySyncError::Corrupt`].
    pub async fn set_paused(&self, name: &str, paused: bool) -> Result<(), RegistrySyncError> {
        let mut conn = self.queue.inner.conn.clone();
        let k = &self.queue.inner.keys;
        let json: Option<String> = redis::cmd("HGET")
            .arg(&k.reg_endpoints)
            .arg(name)
            .query_async(&mut conn)
            .await?;
        let json = json.ok_or_else(|| RegistrySyncError::Unknown(name.to_owned()))?;
        let mut spec: EndpointSpec =
            serde_json::from_str(&json).map_err(|e| RegistrySyncError::Corrupt {
                key: k.reg_endpoints.clone(),
                field: name.to_owned(),
                message: e.to_string(),
            })?;
        if spec.paused == paused {
            return Ok(());
        }
        spec.paused = paused;
        self.write(
            &[(
                Key::Endpoint(name.to_owned()),
                Some(Item::Endpoint(Box::new(spec))),
            )],
            None,
        )
        .await?;
        Ok(())
    }

    /// Adds or replaces an event set.
    ///
    /// # Errors
    /// [`RegistrySyncError::Spec`] for an invalid set, [`RegistrySyncError::Redis`].
    pub async fn put_event_set(&self, set: EventSet) -> Result<(), RegistrySyncError> {
        EventSets::new()
            .insert(set.clone())
            .map_err(|source| SpecError::EventSet {
                name: set.name.clone(),
                source,
            })?;
        self.write(&[(Key::Set(set.name.clone()), Some(Item::Set(set)))], None)
            .await?;
        Ok(())
    }

    /// Removes an event set no endpoint uses.
    ///
    /// # Errors
    /// [`RegistrySyncError::EventSetInUse`], [`RegistrySyncError::Unknown`],
    /// [`RegistrySyncError::Redis`].
    pub async fn remove_event_set(&self, name: &str) -> Result<(), RegistrySyncError> {
        let snap = self.snapshot().await?;
        let users: Vec<String> = snap
            .endpoints
            .iter()
            .filter(|e| e.event_sets.iter().any(|s| s == name))
            .map(|e| e.name.clone())
            .collect();
        if !users.is_empty() {
            return Err(RegistrySyncError::EventSetInUse {
                set: name.to_owned(),
                endpoints: users,
            });
        }
        if !snap.event_sets.iter().any(|s| s.name == name) {
            return Err(RegistrySyncError::Unknown(name.to_owned()));
        }
        self.write(&[(Key::Set(name.to_owned()), None)], None)
            .await?;
        Ok(())
    }

    /// The live spreading workers of the queue and the pairs each reads
    /// ([`RedisQueueConfig::spread`](crate::RedisQueueConfig::spread)).
    ///
    /// # Errors
    /// [`RegistrySyncError::Redis`].
    pub async fn workers(&self) -> Result<Vec<Worker>, RegistrySyncError> {
        Ok(crate::members::live(&self.queue).await?)
    }

    /// Keeps `sender` in step with the shared registry until the queue is closed, the sender
    /// shut down, or the returned handle dropped: every change made in Redis (by any process)
    /// is applied to it within a second, the first ones at once. The sender should be built
    /// over this queue (its own changes are then written to Redis by `save_registry`). The
    /// watcher holds a handle on the sender: drop the [`RegistryWatch`] (or shut the sender
    /// down, or close the queue) to end it.
    ///
    /// # Errors
    /// [`RegistrySyncError::NotShared`] when the queue was connected without
    /// [`shared_registry(true)`](crate::RedisQueueConfig::shared_registry).
    pub fn watch(&self, sender: &Sender) -> Result<RegistryWatch, RegistrySyncError> {
        if !self.queue.inner.registry.enabled {
            return Err(RegistrySyncError::NotShared);
        }
        let shared = Arc::new(WatchShared::default());
        let task = tokio::spawn(watch_loop(self.clone(), sender.clone(), shared.clone()));
        Ok(RegistryWatch { task, shared })
    }
}

#[derive(Debug, Default)]
struct WatchShared {
    applied: AtomicU64,
    restored: AtomicU64,
    failed: AtomicU64,
    syncs: AtomicU64,
    version: AtomicU64,
    kick: Notify,
    last_error: Mutex<Option<String>>,
}

/// A running [`SharedRegistry::watch`]; stops when dropped.
#[derive(Debug)]
pub struct RegistryWatch {
    task: tokio::task::JoinHandle<()>,
    shared: Arc<WatchShared>,
}

impl RegistryWatch {
    /// Changes applied to the sender so far.
    #[must_use]
    pub fn applied(&self) -> u64 {
        self.shared.applied.load(Ordering::Relaxed)
    }

    /// Changes that could not be applied (logged; tried again every 5 s).
    #[must_use]
    pub fn failed(&self) -> u64 {
        self.shared.failed.load(Ordering::Relaxed)
    }

    /// Times the sender was compared with Redis (the first sync makes it 1).
    #[must_use]
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// Times this process wrote its view back to a Redis that had lost the registry (its
    /// version went back).
    #[must_use]
    pub fn restored(&self) -> u64 {
        self.shared.restored.load(Ordering::Relaxed)
    }

    /// The registry version the sender was last brought to.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.shared.version.load(Ordering::Relaxed)
    }

    /// The last change that could not be applied, and why.
    #[must_use]
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until the sender was compared with Redis at least once (the seeding).
    pub async fn synced(&self) {
        while self.syncs() == 0 && !self.task.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops watching.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for RegistryWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn subscribe(queue: &RedisQueue) -> Result<redis::aio::PubSubStream, redis::RedisError> {
    let mut ps = queue.inner.server.node().get_async_pubsub().await?;
    ps.subscribe(&queue.inner.keys.reg_channel).await?;
    Ok(ps.into_on_message())
}

async fn next_message(ps: &mut Option<redis::aio::PubSubStream>) -> bool {
    use futures_core::Stream;
    match ps {
        Some(s) => std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx))
            .await
            .is_some(),
        None => std::future::pending().await,
    }
}

async fn watch_loop(reg: SharedRegistry, sender: Sender, w: Arc<WatchShared>) {
    let queue = reg.queue.clone();
    let mut stop = queue.inner.stop.subscribe();
    let mut pubsub = None;
    let mut next_subscribe = Instant::now();
    let mut last_sync: Option<Instant> = None;
    let mut conn = queue.inner.conn.clone();
    let mut force = true;
    loop {
        if *stop.borrow() {
            return;
        }
        if pubsub.is_none() && Instant::now() >= next_subscribe {
            match tokio::time::timeout(Duration::from_secs(2), subscribe(&queue)).await {
                Ok(Ok(s)) => {
                    pubsub = Some(s);
                    // Changes announced while unsubscribed: the version tells.
                    force = true;
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "subscribing to registry changes failed; polling");
                    next_subscribe = Instant::now() + Duration::from_secs(2);
                }
                Err(_) => next_subscribe = Instant::now() + Duration::from_secs(2),
            }
        }
        if !force {
            tokio::select! {
                got = next_message(&mut pubsub) => {
                    if !got {
                        pubsub = None;
                    }
                }
                () = tokio::time::sleep(POLL) => {}
                () = w.kick.notified() => force = true,
                _ = stop.changed() => return,
            }
        }
        let dirty = queue.inner.registry.lock().dirty;
        if dirty {
            let (q, s) = (queue.clone(), sender.snapshot());
            let _ = tokio::task::spawn_blocking(move || save(&q, &s)).await;
        }
        let version: Result<Option<i64>, _> = redis::cmd("GET")
            .arg(&queue.inner.keys.reg_version)
            .query_async(&mut conn)
            .await;
        let Ok(version) = version else {
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => return,
            }
            continue;
        };
        let (known, held) = {
            let g = queue.inner.registry.lock();
            (g.remote.as_ref().map(|_| g.version), !g.held.is_empty())
        };
        let retry = held && last_sync.is_none_or(|t| t.elapsed() >= RETRY);
        if !force && !retry && known == Some(version.unwrap_or(0)) {
            continue;
        }
        force = false;
        match sync(&reg, &sender, &w).await {
            Ok(true) => last_sync = Some(Instant::now()),
            Ok(false) => force = true,
            Err(SyncEnd::ShutDown) => return,
            Err(SyncEnd::Redis(e)) => {
                tracing::debug!(error = %e, "reading the shared registry failed; retrying");
            }
        }
    }
}

enum SyncEnd {
    ShutDown,
    Redis(RegistrySyncError),
}

/// One comparison of the sender with Redis; `Ok(false)`: a local write overlapped the read
/// (read again).
async fn sync(
    reg: &SharedRegistry,
    sender: &Sender,
    w: &Arc<WatchShared>,
) -> Result<bool, SyncEnd> {
    let queue = &reg.queue;
    let st = &queue.inner.registry;
    let writes = st.lock().writes;
    let local = items_of(&sender.snapshot());
    let (version, fetched, bad) = fetch_async(queue).await.map_err(SyncEnd::Redis)?;
    let bad_keys: HashSet<Key> = bad
        .iter()
        .filter_map(|b| match b {
            RegistrySyncError::Corrupt { key, field, .. } if *key == queue.inner.keys.reg_sets => {
                Some(Key::Set(field.clone()))
            }
            RegistrySyncError::Corrupt { field, .. } => Some(Key::Endpoint(field.clone())),
            _ => None,
        })
        .collect();
    for k in fetched.keys() {
        if let Key::Endpoint(n) = k {
            queue.resume_feed(n);
        }
    }
    let mut todo: Vec<(Key, Option<Item>, Option<Item>)> = Vec::new();
    let mut lost = false;
    {
        let mut g = st.lock();
        if g.writes != writes {
            return Ok(false);
        }
        st.saw(&fetched);
        if g.remote.is_some() && version < g.version {
            // The version went back: Redis lost the registry (restarted without persistence,
            // flushed, its keys deleted). Not "everything was removed": this process writes
            // its view back (every process that notices does; they agree), deleting nothing.
            tracing::warn!(
                known = g.version,
                version,
                "the shared registry in redis went back (lost?): writing this process's view back"
            );
            g.unconfirmed = fetched.keys().cloned().collect();
            g.held.clear();
            g.remote = Some(fetched);
            g.version = version;
            lost = true;
        } else {
            let base = g.remote.take();
            let keys: BTreeSet<Key> = fetched
                .keys()
                .chain(local.keys())
                .chain(base.iter().flat_map(|b| b.keys()))
                .chain(g.held.iter())
                .cloned()
                .collect();
            for k in keys {
                if bad_keys.contains(&k) {
                    continue;
                }
                let (t, l) = (fetched.get(&k), local.get(&k));
                if same(t, l) {
                    g.held.remove(&k);
                    g.unconfirmed.remove(&k);
                    continue;
                }
                let changed_in_redis = base.as_ref().is_none_or(|b| b.get(&k) != t)
                    || g.unconfirmed.contains(&k)
                    || g.held.contains(&k);
                if changed_in_redis {
                    g.held.insert(k.clone());
                    todo.push((k, t.cloned(), l.cloned()));
                }
                // Otherwise a change of this process not written yet: `save` writes it.
            }
            g.remote = Some(fetched);
            g.version = version;
        }
    }
    if lost {
        let (q, snap) = (queue.clone(), sender.snapshot());
        let saved = tokio::task::spawn_blocking(move || save(&q, &snap)).await;
        if !matches!(saved, Ok(Ok(()))) {
            st.lock().dirty = true;
        }
        w.restored.fetch_add(1, Ordering::Relaxed);
        return Ok(false);
    }
    w.version
        .store(u64::try_from(version).unwrap_or(0), Ordering::Relaxed);
    // Event sets before the endpoints naming them; removals of sets last.
    todo.sort_by_key(|(k, t, _)| match (k, t) {
        (Key::Set(_), Some(_)) => 0,
        (Key::Endpoint(_), Some(_)) => 1,
        (Key::Endpoint(_), None) => 2,
        (Key::Set(_), None) => 3,
    });
    let actor = format!("redis:{}", queue.consumer());
    for (k, t, l) in todo {
        match apply(reg, sender, w, &actor, &k, t, l) {
            Ok(()) => {
                w.applied.fetch_add(1, Ordering::Relaxed);
            }
            Err(Failure::ShutDown) => return Err(SyncEnd::ShutDown),
            Err(Failure::Other(why)) => {
                w.failed.fetch_add(1, Ordering::Relaxed);
                let msg = format!("{k:?}: {why}");
                let mut last = w.last_error.lock().unwrap_or_else(PoisonError::into_inner);
                if last.as_deref() != Some(msg.as_str()) {
                    tracing::error!(item = ?k, error = %why, "a shared registry change could not be applied here; left as redis has it");
                    *last = Some(msg);
                }
            }
        }
    }
    // What now matches is no longer held.
    let local = items_of(&sender.snapshot());
    {
        let mut g = st.lock();
        let remote = g.remote.clone().unwrap_or_default();
        let held: Vec<Key> = g.held.iter().cloned().collect();
        for k in held {
            if same(remote.get(&k), local.get(&k)) {
                g.held.remove(&k);
                g.unconfirmed.remove(&k);
            }
        }
    }
    w.syncs.fetch_add(1, Ordering::Relaxed);
    Ok(true)
}

enum Failure {
    ShutDown,
    Other(String),
}

impl From<RegistryError> for Failure {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::ShutDown => Self::ShutDown,
            other => Self::Other(error_chain(&other)),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Applies Redis's `remote` version of `k` to the sender (which has `local`).
fn apply(
    reg: &SharedRegistry,
    sender: &Sender,
    w: &Arc<WatchShared>,
    actor: &str,
    k: &Key,
    remote: Option<Item>,
    local: Option<Item>,
) -> Result<(), Failure> {
    match (k, remote, local) {
        (_, Some(Item::Set(set)), _) => sender.upsert_event_set(set, actor)?,
        (Key::Set(name), None, _) => sender.remove_event_set(name, actor)?,
        (_, Some(Item::Endpoint(spec)), None) => {
            let cfg = (reg.build)(&spec).map_err(|e| Failure::Other(error_chain(&e)))?;
            sender.add_endpoint(cfg, actor)?;
        }
        (_, Some(Item::Endpoint(spec)), Some(Item::Endpoint(have))) => {
            let state_only = {
                let mut a = spec.clone();
                a.paused = have.paused;
                a.require_test = have.require_test;
                a == have
            };
            if !state_only {
                let cfg = (reg.build)(&spec).map_err(|e| Failure::Other(error_chain(&e)))?;
                sender.update_endpoint(cfg, actor)?;
            }
            if spec.paused != have.paused {
                if spec.paused {
                    sender.pause(&spec.name, actor)?;
                } else {
                    sender.resume(&spec.name, actor)?;
                }
            }
            if !spec.require_test && have.require_test {
                sender.enable_by(&spec.name, actor).map_err(|e| match e {
                    webhook_sender::EnableError::ShutDown => Failure::ShutDown,
                    other => Failure::Other(error_chain(&other)),
                })?;
            }
        }
        (Key::Endpoint(name), None, _) => {
            // Stop reading it now; what the sender holds is settled by the policy in the
            // background, then the watcher looks again.
            reg.queue.stop_feed(name);
            let (sender, name, actor, policy) =
                (sender.clone(), name.clone(), actor.to_owned(), reg.policy);
            let w = Arc::clone(w);
            tokio::spawn(async move {
                match sender.remove_endpoint(&name, policy, &actor).await {
                    Ok(report) => {
                        tracing::info!(endpoint = %name, ?report, "endpoint removed from the shared registry")
                    }
                    Err(e) => {
                        tracing::debug!(endpoint = %name, error = %e, "removing the endpoint")
                    }
                }
                w.kick.notify_one();
            });
        }
        _ => {}
    }
    Ok(())
}
