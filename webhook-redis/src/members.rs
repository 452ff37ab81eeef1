//! Spreading the reading over the live workers
//! ([`RedisQueueConfig::spread`](crate::RedisQueueConfig::spread)).
//!
//! Without spreading, every worker holds one blocking `XREADGROUP` reader per endpoint and
//! partition: `workers × endpoints × P` readers, which is what lets one slow endpoint use
//! every worker. With it, each (endpoint, partition) pair is read by one live worker:
//! `endpoints × P` readers, whatever the number of workers.
//!
//! # Membership
//!
//! Every 500 ms each spreading worker runs one script (`HEARTBEAT`) that
//!
//! * records it as live in the ZSET `whk:{Q}:workers` (consumer → last heartbeat, in
//!   milliseconds of **Redis's** clock (`TIME`), so that the machines' clocks do not matter),
//! * records in the HASH `whk:{Q}:members` (consumer → JSON) the endpoints it serves
//!   (`groups`) and the pairs it read since the last heartbeat (`reads`, `"endpoint/partition"`:
//!   what an operator looks at to see who reads what),
//! * forgets workers silent for a minute, and
//! * answers the workers heard from in the last 3 s, with what each serves.
//!
//! A worker that closes ([`RedisQueue::close`](crate::RedisQueue::close)) leaves at once; one
//! that dies is dead for the others 3 s after its last heartbeat.
//!
//! # Ownership
//!
//! A pair `(e, p)` belongs to the live worker `w` serving `e` with the highest weight
//! `h(w, e, p)` (rendezvous, or highest-random-weight, hashing; `h` is FNV-1a 64 of the three,
//! then a 64-bit mix, the same in every process and build). Every worker computes the same
//! owners from the same member list, with no coordination; a worker joining or leaving moves
//! only the pairs it takes or had (about `pairs / workers`). Only workers serving `e` are
//! candidates, so a worker started for other endpoints never takes `e`'s pairs.
//!
//! A worker reads (`XREADGROUP`) and reclaims (`XAUTOCLAIM`) only the pairs it owns: it opens
//! a pair's reader connection when it gains the pair and gives it back when it loses it.
//! Entries it already holds finish normally (their leases are still renewed); the pending
//! entries of a dead worker are claimed by the pair's new owner once idle past the lease.
//!
//! For up to one heartbeat after a change the workers' views may differ: a pair may be read by
//! two workers (each entry still goes to one of them: a consumer group hands an entry out once)
//! or by none for a moment. Nothing is lost either way.
//!
//! Workers that do not spread may share the queue: they read every pair, as before, and are
//! not members.
//!
//! # Choosing
//!
//! Spreading is off by default because it caps an endpoint at `P` readers: one slow endpoint
//! (a receiver answering in seconds) is better served by every worker reading every
//! partition. A platform running many workers over many endpoints turns it on (and picks
//! `P` ≥ the number of workers) to keep Redis's blocked connections at `endpoints × P`.
//!
//! ```no_run
//! use webhook_redis::{RedisQueue, RedisQueueConfig, SharedRegistry};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let cfg = RedisQueueConfig::new("redis://127.0.0.1:6379", "orders")
//!     .partitions(8)
//!     .spread(true);
//! let queue = RedisQueue::connect(cfg).await?;
//! // ... a Sender over the queue delivers; this worker reads only its share:
//! println!("reading {:?}", queue.reading());
//! for w in SharedRegistry::new(&queue).workers().await? {
//!     println!("{} reads {:?}", w.consumer, w.reads);
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use redis::{Script, Value};
use tokio::sync::{Notify, watch};

use crate::RedisQueue;

/// How often a worker says it is alive.
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(500);
/// Silent this long, a worker is dead for the others.
pub(crate) const DEAD_AFTER: Duration = Duration::from_secs(3);
/// Silent this long, a worker is forgotten (its record deleted).
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// KEYS: workers ZSET, members HASH. ARGV: consumer, dead ms, forget ms, this worker's JSON.
/// Returns `{consumer, json, ...}` for every live worker.
static HEARTBEAT_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
for _, m in ipairs(gone) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('HDEL', KEYS[2], m)
end
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[2]), '+inf')
local out = {}
for _, m in ipairs(live) do
  out[#out + 1] = m
  out[#out + 1] = redis.call('HGET', KEYS[2], m) or ''
end
return out
",
    )
});

/// What a worker says of itself in `whk:{Q}:members`.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Record {
    /// The endpoints (groups) it serves.
    #[serde(default)]
    groups: Vec<String>,
    /// The pairs it reads, as `endpoint/partition`.
    #[serde(default)]
    reads: Vec<String>,
}

/// This process's membership: the pairs it owns.
#[derive(Debug)]
pub(crate) struct Members {
    consumer: String,
    owned: Mutex<HashSet<(Arc<str>, usize)>>,
    /// Bumped when `owned` (or the set of feeds) changes: readers look again.
    changed: watch::Sender<u64>,
    /// A heartbeat now (a feed started or stopped).
    wake: Notify,
}

impl Members {
    pub(crate) fn new(consumer: &str) -> Self {
        Self {
            consumer: consumer.to_owned(),
            owned: Mutex::new(HashSet::new()),
            changed: watch::channel(0).0,
            wake: Notify::new(),
        }
    }

    /// Whether this worker reads `(group, part)`.
    pub(crate) fn owns(&self, group: &str, part: usize) -> bool {
        self.owned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|(g, p)| *p == part && &**g == group)
    }

    /// Notified (by its `changed`) when the pairs owned change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// A feed started or stopped: heartbeat now, and readers look again.
    pub(crate) fn feeds_changed(&self) {
        self.wake.notify_one();
        self.changed.send_modify(|v| *v += 1);
    }

    fn set_owned(&self, owned: HashSet<(Arc<str>, usize)>) {
        let mut cur = self.owned.lock().unwrap_or_else(PoisonError::into_inner);
        if *cur == owned {
            return;
        }
        let mut gained: Vec<String> = owned
            .difference(&cur)
            .map(|(g, p)| format!("{g}/{p}"))
            .collect();
        let mut lost: Vec<String> = cur
            .difference(&owned)
            .map(|(g, p)| format!("{g}/{p}"))
            .collect();
        gained.sort();
        lost.sort();
        *cur = owned;
        drop(cur);
        tracing::info!(consumer = %self.consumer, ?gained, ?lost, "pairs read by this worker changed");
        self.changed.send_modify(|v| *v += 1);
    }

    fn reads(&self) -> Vec<String> {
        let mut r: Vec<String> = self
            .owned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(g, p)| format!("{g}/{p}"))
            .collect();
        r.sort();
        r
    }
}

impl RedisQueue {
    /// With [`spread`](crate::RedisQueueConfig::spread): the (endpoint, partition) pairs this
    /// worker reads now, sorted; `None` without spreading (every worker reads every pair).
    #[must_use]
    pub fn reading(&self) -> Option<Vec<(String, u16)>> {
        let m = self.inner.members.as_ref()?;
        let mut pairs: Vec<(String, u16)> = m
            .owned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(g, p)| (g.to_string(), u16::try_from(*p).unwrap_or(u16::MAX)))
            .collect();
        pairs.sort();
        Some(pairs)
    }
}

/// The weight of `worker` for the pair `(group, part)`: FNV-1a 64 of the three, mixed
/// (splitmix64's finalizer), so that close names spread well. Stable across processes.
pub(crate) fn weight(worker: &str, group: &str, part: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator no name byte sequence can fake (0xff is not in UTF-8).
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    eat(worker.as_bytes());
    eat(group.as_bytes());
    eat(&(part as u64).to_le_bytes());
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The owner of `(group, part)` among `live` (worker → the groups it serves): the candidate
/// with the highest [`weight`] (ties, which do not happen in practice, to the smaller name).
pub(crate) fn owner<'a>(
    live: &'a BTreeMap<String, BTreeSet<String>>,
    group: &str,
    part: usize,
) -> Option<&'a str> {
    live.iter()
        .filter(|(_, groups)| groups.contains(group))
        .map(|(w, _)| (weight(w, group, part), w.as_str()))
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(a.1)))
        .map(|(_, w)| w)
}

/// The heartbeat loop: until the queue closes.
pub(crate) async fn run(queue: RedisQueue, members: Arc<Members>) {
    let inner = &queue.inner;
    let parts = usize::from(inner.cfg.partitions);
    let mut conn = inner.conn.clone();
    let mut stop = inner.stop.subscribe();
    let dead_ms = u64::try_from(DEAD_AFTER.as_millis()).unwrap_or(3000);
    let forget_ms = u64::try_from(FORGET_AFTER.as_millis()).unwrap_or(60_000);
    loop {
        if *stop.borrow() {
            return;
        }
        let groups: Vec<Arc<str>> = queue.fed_groups();
        let me = Record {
            groups: groups.iter().map(|g| g.to_string()).collect(),
            reads: members.reads(),
        };
        let json = serde_json::to_string(&me).unwrap_or_default();
        let r: Result<Value, redis::RedisError> = HEARTBEAT_SCRIPT
            .key(&inner.keys.workers)
            .key(&inner.keys.members)
            .arg(&members.consumer)
            .arg(dead_ms)
            .arg(forget_ms)
            .arg(&json)
            .invoke_async(&mut conn)
            .await;
        match r {
            Ok(v) => {
                let mut live: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
                let items = match &v {
                    Value::Array(a) => a.as_slice(),
                    _ => &[],
                };
                for pair in items.chunks(2) {
                    let (Some(name), Some(rec)) =
                        (pair.first().and_then(text), pair.get(1).and_then(text))
                    else {
                        continue;
                    };
                    let rec: Record = serde_json::from_str(&rec).unwrap_or_default();
                    live.insert(name, rec.groups.into_iter().collect());
                }
                // This worker serves what it feeds now, whatever the answer says.
                live.insert(
                    members.consumer.clone(),
                    groups.iter().map(|g| g.to_string()).collect(),
                );
                let mut owned = HashSet::new();
                for g in &groups {
                    for p in 0..parts {
                        if owner(&live, g, p) == Some(members.consumer.as_str()) {
                            owned.insert((g.clone(), p));
                        }
                    }
                }
                members.set_owned(owned);
            }
            Err(e) => {
                // Kept as it was: the others see this worker dead after 3 s and take its
                // pairs; it reads them meanwhile (two readers of a pair lose nothing).
                tracing::warn!(error = %e, "the worker heartbeat failed; retrying");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(HEARTBEAT) => {}
            () = members.wake.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// Leaves at once (the others take this worker's pairs at their next heartbeat).
pub(crate) async fn leave(queue: &RedisQueue) {
    let inner = &queue.inner;
    let Some(m) = &inner.members else {
        return;
    };
    m.set_owned(HashSet::new());
    let mut conn = inner.conn.clone();
    let r: Result<Value, redis::RedisError> = redis::pipe()
        .cmd("ZREM")
        .arg(&inner.keys.workers)
        .arg(&m.consumer)
        .cmd("HDEL")
        .arg(&inner.keys.members)
        .arg(&m.consumer)
        .query_async(&mut conn)
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "leaving the workers failed: the others take over after 3 s");
    }
}

/// A live spreading worker, as it said in its last heartbeat
/// ([`SharedRegistry::workers`](crate::SharedRegistry::workers)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Worker {
    /// Its consumer name.
    pub consumer: String,
    /// The endpoints it serves.
    pub endpoints: Vec<String>,
    /// The pairs it reads, as `endpoint/partition`.
    pub reads: Vec<String>,
}

/// The live spreading workers of a queue and the pairs each reads, as they last said
/// (heartbeats of the last 3 s).
pub(crate) async fn live(queue: &RedisQueue) -> Result<Vec<Worker>, redis::RedisError> {
    let inner = &queue.inner;
    let mut conn = inner.conn.clone();
    let t: Vec<u64> = redis::cmd("TIME").query_async(&mut conn).await?;
    let now = t.first().copied().unwrap_or(0) * 1000 + t.get(1).copied().unwrap_or(0) / 1000;
    let dead_ms = u64::try_from(DEAD_AFTER.as_millis()).unwrap_or(3000);
    let names: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(&inner.keys.workers)
        .arg(now.saturating_sub(dead_ms))
        .arg("+inf")
        .query_async(&mut conn)
        .await?;
    let mut out = Vec::new();
    for n in names {
        let rec: Option<String> = redis::cmd("HGET")
            .arg(&inner.keys.members)
            .arg(&n)
            .query_async(&mut conn)
            .await?;
        let rec: Record = rec
            .and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or_default();
        out.push(Worker {
            consumer: n,
            endpoints: rec.groups,
            reads: rec.reads,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(workers: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        workers
            .iter()
            .map(|(w, g)| ((*w).to_owned(), g.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    }

    #[test]
    fn every_pair_has_one_owner_and_a_leaving_worker_moves_only_its_pairs() {
        let three = live(&[("a", &["x", "y"]), ("b", &["x", "y"]), ("c", &["x", "y"])]);
        let two = live(&[("a", &["x", "y"]), ("b", &["x", "y"])]);
        let mut per: BTreeMap<&str, usize> = BTreeMap::new();
        for g in ["x", "y"] {
            for p in 0..64 {
                let o3 = owner(&three, g, p).unwrap();
                *per.entry(o3).or_default() += 1;
                let o2 = owner(&two, g, p).unwrap();
                if o3 != "c" {
                    assert_eq!(o2, o3, "a pair of a survivor stays where it is");
                }
            }
        }
        // 128 pairs over 3 workers: none starves.
        assert!(per.values().all(|&n| n > 20), "{per:?}");
    }

    #[test]
    fn only_workers_serving_an_endpoint_own_its_pairs() {
        let l = live(&[("a", &["x"]), ("b", &["y"])]);
        for p in 0..16 {
            assert_eq!(owner(&l, "x", p), Some("a"));
            assert_eq!(owner(&l, "y", p), Some("b"));
            assert_eq!(owner(&l, "z", p), None);
        }
    }

    #[test]
    fn weights_are_stable() {
        // A function of the names alone (no per-process random state).
        assert_eq!(weight("w1", "siem", 0), weight("w1", "siem", 0));
        assert_ne!(weight("w1", "siem", 0), weight("w1", "siem", 1));
        assert_ne!(weight("w1", "siem", 0), weight("w2", "siem", 0));
        assert_ne!(weight("ab", "c", 0), weight("a", "bc", 0));
    }
}
