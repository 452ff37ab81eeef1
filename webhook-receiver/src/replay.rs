//! A bounded in-memory cache of seen message ids, for replay protection.
//!
//! Pure state: time is passed in, nothing reads the clock.
//!
//! # Driving contract
//! For each authenticated message id:
//! 1. [`ReplayCache::begin`] when the request is authenticated: refuses an id that is
//!    already acknowledged or currently in flight, otherwise reserves it;
//! 2. then exactly one of [`ReplayCache::commit`] (the request was acknowledged: the id is
//!    remembered for the window) or [`ReplayCache::abort`] (a handler failed: the reservation is
//!    dropped, so the sender's retry is accepted).
//!
//! Entries expire `window` after they were reserved, or `window` after the message's signed
//! timestamp when that is later (a sender clock running ahead, see [`ReplayCache::begin_signed`]);
//! choose a window at least as long as the authenticator's timestamp tolerance, so an id is
//! remembered for as long as its signature would be accepted. At most `max_entries` ids are held; when
//! full, the oldest entry is evicted (the cache stays bounded under a flood of distinct ids, at
//! the cost of forgetting the oldest ids early).
//!
//! Ids are not stored: each is reduced to a 128-bit key made of two independent SipHash values
//! under random keys chosen when the cache is created (so senders cannot aim at collisions; two
//! different ids share a key with probability about 2^-128 per pair). The cache therefore
//! allocates nothing per id, its memory is fixed by `max_entries`, and a lookup never chases a
//! pointer to an old id's bytes.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::auth::Authenticated;

/// A future a [`ReplayStore`] returns (object safe).
pub type ReplayFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a [`ReplayStore`] refused a reservation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayStoreError {
    /// The key is held: seen, or in flight at another receiver.
    #[error(transparent)]
    Replayed(#[from] Replayed),
    /// The store could not be asked (a server down): the request is refused with `503`
    /// ([`Rejection::ReplayStoreUnavailable`](crate::Rejection::ReplayStoreUnavailable)) rather
    /// than accepted unchecked. A store that prefers to accept (fail open) answers `Ok`.
    #[error("the replay store is unavailable: {0}")]
    Unavailable(String),
}

/// A replay cache shared by several receiver instances (behind a load balancer): a replay
/// sent to any of them is refused once any of them saw the message. The in-memory
/// [`ReplayCache`] serves one process; the `webhook-redis` crate's `RedisReplayStore` is one
/// shared implementation. Set it with
/// [`ReceiverConfigBuilder::replay_store`](crate::ReceiverConfigBuilder::replay_store).
///
/// # Contract
///
/// Keys are digests of signed material (the message id, or the signed digest when there is
/// no id), given as hex strings. For each request:
/// 1. [`reserve`](Self::reserve) atomically claims `key` as in flight for `processing` (a
///    receiver that dies mid-request releases it by expiry), or refuses it with
///    [`Replayed`] (`in_flight` when not yet committed);
/// 2. then exactly one of [`commit`](Self::commit) (acknowledged: held for `ttl`; awaited
///    before the answer leaves, so a replay that follows the answer finds the key seen), or
///    [`commit_background`](Self::commit_background) (the same from synchronous code: the
///    axum extractor's [`Ticket`]), or [`abort`](Self::abort) (a handler failed: released,
///    so the sender's retry is accepted; from `Drop`, completed in the background).
pub trait ReplayStore: Send + Sync + std::fmt::Debug {
    /// Claims `key` as in flight for `processing`, or refuses it.
    fn reserve<'a>(
        &'a self,
        key: &'a str,
        processing: Duration,
    ) -> ReplayFuture<'a, Result<(), ReplayStoreError>>;

    /// Marks a reserved `key` as acknowledged, held for `ttl`. A failure is the store's to
    /// log: the key stays in flight until its processing time ends.
    fn commit<'a>(&'a self, key: &'a str, ttl: Duration) -> ReplayFuture<'a, ()>;

    /// [`commit`](Self::commit) from synchronous code, completed in the background.
    fn commit_background(&self, key: String, ttl: Duration);

    /// Releases a reserved `key` that was not acknowledged.
    fn abort(&self, key: String);
}

/// A key of [`ReplayStore`]: the hex SHA-256 of the message id (or of the signed digest, in a
/// separate space).
pub(crate) fn shared_key(authenticated: &Authenticated) -> Option<String> {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    match (
        authenticated.message_id(),
        authenticated.replay_digest.as_ref(),
    ) {
        (Some(id), _) => {
            h.update(b"id\0");
            h.update(id.as_bytes());
        }
        (None, Some(d)) => {
            h.update(b"digest\0");
            h.update(d);
        }
        (None, None) => return None,
    }
    Some(
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    )
}

/// How long an in-flight reservation holds in a shared store before it expires by itself (a
/// receiver that died mid-request): at most the window.
pub(crate) const PROCESSING_TTL: Duration = Duration::from_secs(60);

/// Why a reservation was refused.
#[derive(Debug)]
pub(crate) enum Refusal {
    Replayed(Replayed),
    Unavailable(String),
}

/// The 128-bit key of a message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct IdKey(u128);

/// Hashes an [`IdKey`] by taking its low bits: the key is already a keyed hash.
#[derive(Default)]
struct IdKeyHasher(u64);

impl Hasher for IdKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u128(&mut self, v: u128) {
        // Truncation intended: the low 64 bits of a keyed hash.
        self.0 = v as u64;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    InFlight,
    Seen,
}

#[derive(Debug)]
struct Queued {
    seq: u64,
    expires: SystemTime,
    key: IdKey,
}

#[derive(Debug)]
struct Entry {
    expires: SystemTime,
    seq: u64,
    state: State,
}

/// A bounded, expiring set of seen message ids.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use webhook_receiver::ReplayCache;
///
/// let mut cache = ReplayCache::new(Duration::from_secs(300), 10_000);
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// cache.begin("msg_1", now)?;
/// cache.commit("msg_1", now);
/// assert!(cache.begin("msg_1", now + Duration::from_secs(1)).is_err());
/// // After the window the id may be delivered again.
/// assert!(cache.begin("msg_1", now + Duration::from_secs(301)).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ReplayCache {
    window: Duration,
    max_entries: usize,
    hashers: (RandomState, RandomState),
    entries: HashMap<IdKey, Entry, BuildHasherDefault<IdKeyHasher>>,
    /// Insertion order with each entry's expiry, so the sweep looks at the map only for
    /// entries that have expired.
    order: VecDeque<Queued>,
    next_seq: u64,
}

/// The message id was already acknowledged, or is being processed right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message id already seen")]
#[non_exhaustive]
pub struct Replayed {
    /// `true` when the earlier delivery is still in flight (not yet acknowledged).
    pub in_flight: bool,
}

impl Replayed {
    /// A refusal (for [`ReplayStore`] implementations): `in_flight` when the earlier delivery
    /// is not yet acknowledged.
    #[must_use]
    pub fn new(in_flight: bool) -> Self {
        Self { in_flight }
    }
}

impl ReplayCache {
    /// A cache remembering ids for `window`, holding at most `max_entries` (at least 1).
    pub fn new(window: Duration, max_entries: usize) -> Self {
        Self {
            window,
            max_entries: max_entries.max(1),
            hashers: (RandomState::new(), RandomState::new()),
            entries: HashMap::default(),
            order: VecDeque::new(),
            next_seq: 0,
        }
    }

    /// Reserves `id` at `now`, or refuses it if it is seen or in flight within the window.
    pub fn begin(&mut self, id: &str, now: SystemTime) -> Result<(), Replayed> {
        self.begin_signed(id, None, now)
    }

    /// Like [`begin`](Self::begin) for a message with a signed `timestamp`: the id is kept until
    /// `window` after the later of `now` and `timestamp`.
    pub fn begin_signed(
        &mut self,
        id: &str,
        timestamp: Option<SystemTime>,
        now: SystemTime,
    ) -> Result<(), Replayed> {
        self.begin_key(self.key(id), timestamp, now)
    }

    /// The key of `id` in this cache.
    pub(crate) fn key(&self, id: &str) -> IdKey {
        let hi = self.hashers.0.hash_one(id);
        let lo = self.hashers.1.hash_one(id);
        IdKey((u128::from(hi) << 64) | u128::from(lo))
    }

    /// The key of a binary replay key (a digest), in a space apart from string ids.
    pub(crate) fn key_bytes(&self, bytes: &[u8]) -> IdKey {
        let hi = self.hashers.0.hash_one(bytes);
        let lo = self.hashers.1.hash_one(bytes);
        IdKey((u128::from(hi) << 64) | u128::from(lo))
    }

    /// [`begin_signed`](Self::begin_signed) by key.
    pub(crate) fn begin_key(
        &mut self,
        key: IdKey,
        timestamp: Option<SystemTime>,
        now: SystemTime,
    ) -> Result<(), Replayed> {
        self.expire(now);
        if self.entries.len() >= self.max_entries && !self.entries.contains_key(&key) {
            while self.entries.len() >= self.max_entries {
                if !self.evict_oldest() {
                    break;
                }
            }
        }
        let seq = self.next_seq;
        let expires = {
            let from = timestamp.map_or(now, |t| t.max(now));
            from.checked_add(self.window).unwrap_or(from)
        };
        let fresh = Entry {
            expires,
            seq,
            state: State::InFlight,
        };
        // One probe of the map: refuse a live id, else (re)insert it.
        match self.entries.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let e = o.get();
                if e.expires > now {
                    return Err(Replayed {
                        in_flight: e.state == State::InFlight,
                    });
                }
                o.insert(fresh);
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(fresh);
            }
        }
        self.next_seq += 1;
        self.order.push_back(Queued { seq, expires, key });
        Ok(())
    }

    /// Marks a reserved `id` as acknowledged: it is refused until its window ends. (`now` is
    /// kept for symmetry; expired entries are swept by [`begin`](Self::begin).)
    pub fn commit(&mut self, id: &str, now: SystemTime) {
        self.commit_key(self.key(id), now);
    }

    /// [`commit`](Self::commit) by key.
    pub(crate) fn commit_key(&mut self, key: IdKey, now: SystemTime) {
        let _ = now;
        if let Some(e) = self.entries.get_mut(&key) {
            e.state = State::Seen;
        }
    }

    /// Drops the reservation of `id` (its handler failed), so a retry is accepted.
    pub fn abort(&mut self, id: &str) {
        self.abort_key(self.key(id));
    }

    /// [`abort`](Self::abort) by key.
    pub(crate) fn abort_key(&mut self, key: IdKey) {
        if self
            .entries
            .get(&key)
            .is_some_and(|e| e.state == State::InFlight)
        {
            self.entries.remove(&key);
        }
    }

    /// Whether `id` is currently remembered (seen or in flight) at `now`.
    pub fn contains(&self, id: &str, now: SystemTime) -> bool {
        self.entries
            .get(&self.key(id))
            .is_some_and(|e| e.expires > now)
    }

    /// Number of ids held (including expired ones not yet swept).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops expired entries from the front of the insertion order.
    fn expire(&mut self, now: SystemTime) {
        while let Some(front) = self.order.front() {
            if front.expires > now {
                break;
            }
            if self
                .entries
                .get(&front.key)
                .is_some_and(|e| e.seq == front.seq)
            {
                self.entries.remove(&front.key);
            }
            // Otherwise a stale queue item (aborted, or the id was re-inserted later).
            self.order.pop_front();
        }
        // Bound the order queue if many aborted reservations left stale items behind.
        if self.order.len() > self.max_entries.saturating_mul(2) {
            let entries = &self.entries;
            self.order
                .retain(|q| entries.get(&q.key).is_some_and(|e| e.seq == q.seq));
        }
    }

    /// Evicts the oldest live entry; `false` if there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some(q) = self.order.pop_front() {
            if self.entries.get(&q.key).is_some_and(|e| e.seq == q.seq) {
                self.entries.remove(&q.key);
                return true;
            }
        }
        false
    }
}

/// The replay cache of a built configuration, shared by its clones and by the [`Ticket`]s it
/// hands out.
pub(crate) type SharedReplayCache = Arc<Mutex<ReplayCache>>;

/// A reservation in a shared store.
#[derive(Debug)]
struct SharedHeld {
    store: Arc<dyn ReplayStore>,
    key: String,
    ttl: Duration,
}

/// Reserves the replay key of `authenticated` in the shared `store` when there is one (held
/// for `window` past the later of `now` and the signed timestamp once acknowledged), else in
/// `cache`.
pub(crate) async fn reserve_any<'a>(
    cache: Option<&'a SharedReplayCache>,
    store: Option<(&Arc<dyn ReplayStore>, Duration)>,
    authenticated: &Authenticated,
    now: SystemTime,
) -> Result<Reservation<&'a SharedReplayCache>, Refusal> {
    let Some((store, window)) = store else {
        return reserve(cache, authenticated, now).map_err(Refusal::Replayed);
    };
    let Some(key) = shared_key(authenticated) else {
        return Ok(Reservation::none(now));
    };
    let ahead = authenticated
        .timestamp()
        .and_then(|t| t.duration_since(now).ok())
        .unwrap_or_default();
    let ttl = window.saturating_add(ahead);
    match store.reserve(&key, PROCESSING_TTL.min(ttl)).await {
        Ok(()) => Ok(Reservation {
            held: None,
            shared: Some(SharedHeld {
                store: Arc::clone(store),
                key,
                ttl,
            }),
            now,
        }),
        Err(ReplayStoreError::Replayed(r)) => Err(Refusal::Replayed(r)),
        Err(ReplayStoreError::Unavailable(e)) => Err(Refusal::Unavailable(e)),
    }
}

/// Reserves the replay key of `authenticated` (its message id, else its signed digest) in
/// `cache` at `now`; without a cache or a key there is nothing to reserve.
pub(crate) fn reserve<'a>(
    cache: Option<&'a SharedReplayCache>,
    authenticated: &Authenticated,
    now: SystemTime,
) -> Result<Reservation<&'a SharedReplayCache>, Replayed> {
    let Some(shared) = cache else {
        return Ok(Reservation::none(now));
    };
    let digest = authenticated.replay_digest.as_ref();
    let id = authenticated.message_id();
    if id.is_none() && digest.is_none() {
        return Ok(Reservation::none(now));
    }
    let mut locked = shared.lock().unwrap_or_else(PoisonError::into_inner);
    let key = match (id, digest) {
        (Some(id), _) => locked.key(id),
        (None, Some(d)) => locked.key_bytes(d),
        (None, None) => return Ok(Reservation::none(now)),
    };
    locked.begin_key(key, authenticated.timestamp(), now)?;
    Ok(Reservation {
        held: Some((shared, key)),
        shared: None,
        now,
    })
}

/// A replay reservation over a borrowed (the receiver's own path, which then touches no shared
/// reference count) or owned ([`Ticket`]) cache: [`acknowledge`](Self::acknowledge) records the
/// key as seen, dropping it without acknowledging releases the key.
#[derive(Debug)]
pub(crate) struct Reservation<C: Borrow<SharedReplayCache>> {
    held: Option<(C, IdKey)>,
    shared: Option<SharedHeld>,
    now: SystemTime,
}

impl<C: Borrow<SharedReplayCache>> Reservation<C> {
    /// Nothing reserved (no replay protection, or nothing to key on).
    fn none(now: SystemTime) -> Self {
        Self {
            held: None,
            shared: None,
            now,
        }
    }

    /// Records the reserved key as seen, waiting for a shared store to have it (so a replay
    /// that follows the answer is refused as a duplicate).
    pub(crate) async fn acknowledge_async(mut self) {
        if let Some(s) = self.shared.take() {
            s.store.commit(&s.key, s.ttl).await;
        }
        self.acknowledge();
    }

    /// Records the reserved key as seen (a shared store: in the background).
    pub(crate) fn acknowledge(mut self) {
        if let Some(s) = self.shared.take() {
            s.store.commit_background(s.key, s.ttl);
        }
        if let Some((cache, key)) = self.held.take() {
            let mut cache = cache
                .borrow()
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            cache.commit_key(key, self.now);
        }
    }
}

impl Reservation<&SharedReplayCache> {
    #[cfg(feature = "axum")]
    /// The same reservation, owning a reference to the cache (for a [`Ticket`] that outlives
    /// the configuration it came from).
    pub(crate) fn into_owned(mut self) -> Reservation<SharedReplayCache> {
        Reservation {
            held: self.held.take().map(|(c, k)| (Arc::clone(c), k)),
            shared: self.shared.take(),
            now: self.now,
        }
    }
}

impl<C: Borrow<SharedReplayCache>> Drop for Reservation<C> {
    fn drop(&mut self) {
        if let Some(s) = self.shared.take() {
            s.store.abort(s.key);
        }
        if let Some((cache, key)) = self.held.take() {
            let mut cache = cache
                .borrow()
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            cache.abort_key(key);
        }
    }
}

/// A replay reservation: [`acknowledge`](Ticket::acknowledge) records the message id as seen;
/// dropping it without acknowledging releases the id so the sender's retry is accepted.
#[derive(Debug)]
pub struct Ticket {
    inner: Reservation<SharedReplayCache>,
}

impl Ticket {
    #[cfg(feature = "axum")]
    pub(crate) fn new(inner: Reservation<SharedReplayCache>) -> Self {
        Self { inner }
    }

    /// Records the message id as seen (no-op without replay protection or message id).
    pub fn acknowledge(self) {
        self.inner.acknowledge();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + s)
    }

    #[test]
    fn committed_id_is_refused_within_window_then_expires() {
        let mut c = ReplayCache::new(Duration::from_secs(10), 100);
        c.begin("a", t(0)).unwrap();
        c.commit("a", t(0));
        assert_eq!(c.begin("a", t(9)), Err(Replayed { in_flight: false }));
        assert!(c.begin("a", t(10)).is_ok());
    }

    #[test]
    fn signed_timestamp_ahead_of_now_extends_the_window() {
        let mut c = ReplayCache::new(Duration::from_secs(10), 100);
        c.begin_signed("a", Some(t(8)), t(0)).unwrap();
        c.commit("a", t(0));
        assert!(c.begin("a", t(17)).is_err(), "kept until t(8) + 10");
        assert!(c.begin("a", t(18)).is_ok());
        // A timestamp in the past does not shorten it.
        c.begin_signed("b", Some(t(0)), t(5)).unwrap();
        assert!(c.contains("b", t(14)));
    }

    #[test]
    fn in_flight_id_is_refused_and_abort_releases_it() {
        let mut c = ReplayCache::new(Duration::from_secs(10), 100);
        c.begin("a", t(0)).unwrap();
        assert_eq!(c.begin("a", t(1)), Err(Replayed { in_flight: true }));
        c.abort("a");
        assert!(!c.contains("a", t(1)));
        assert!(c.begin("a", t(1)).is_ok());
    }

    #[test]
    fn abort_does_not_forget_a_committed_id() {
        let mut c = ReplayCache::new(Duration::from_secs(10), 100);
        c.begin("a", t(0)).unwrap();
        c.commit("a", t(0));
        c.abort("a");
        assert!(c.contains("a", t(1)));
    }

    #[test]
    fn bounded_evicts_oldest() {
        let mut c = ReplayCache::new(Duration::from_secs(1000), 3);
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            c.begin(id, t(i as u64)).unwrap();
            c.commit(id, t(i as u64));
        }
        assert_eq!(c.len(), 3);
        assert!(!c.contains("a", t(5)));
        assert!(c.contains("b", t(5)));
        assert!(c.contains("d", t(5)));
    }

    #[test]
    fn expired_entries_are_swept() {
        let mut c = ReplayCache::new(Duration::from_secs(5), 100);
        for i in 0..50 {
            let id = format!("m{i}");
            c.begin(&id, t(0)).unwrap();
            c.commit(&id, t(0));
        }
        c.begin("late", t(6)).unwrap();
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn many_aborts_keep_order_queue_bounded() {
        let mut c = ReplayCache::new(Duration::from_secs(5), 4);
        for i in 0..1000 {
            let id = format!("m{i}");
            c.begin(&id, t(0)).unwrap();
            c.abort(&id);
        }
        assert!(c.order.len() <= 9, "{}", c.order.len());
        assert!(c.is_empty());
    }

    #[test]
    fn under_bound_pressure_it_forgets_but_never_refuses_wrongly() {
        // 40 ids held at most out of 300 in use: a refusal must still be one the unbounded
        // model makes (forgetting is allowed, inventing a replay is not).
        let window = Duration::from_secs(30);
        let mut c = ReplayCache::new(window, 40);
        let mut model: HashMap<u64, (SystemTime, bool)> = Default::default();
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        for step in 0..50_000u64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let n = rng % 300;
            let at = t(step / 50);
            let id = format!("id{n}");
            match c.begin(&id, at) {
                Ok(()) => {
                    model.insert(n, (at + window, false));
                    if rng & 1 == 0 {
                        c.commit(&id, at);
                        model.insert(n, (at + window, true));
                    }
                }
                Err(Replayed { in_flight }) => {
                    let &(exp, seen) = model.get(&n).expect("refused an id never reserved");
                    assert!(exp > at, "refused an expired id");
                    assert_eq!(in_flight, !seen);
                }
            }
            assert!(c.len() <= 40);
        }
    }

    #[test]
    fn agrees_with_a_plain_map_under_random_operations() {
        use std::collections::HashMap;
        // (expires, seen) per id, with the same rules, and no bound pressure.
        let mut model: HashMap<String, (SystemTime, bool)> = HashMap::new();
        let window = Duration::from_secs(30);
        let mut c = ReplayCache::new(window, 1_000_000);
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut now = 0u64;
        for _ in 0..50_000 {
            let r = next();
            let id = format!("id{}", r % 300);
            now += (r >> 20) % 3;
            let at = t(now);
            match (r >> 8) % 4 {
                0 | 1 => {
                    let signed = ((r >> 12) % 3 == 0).then(|| t(now + (r >> 16) % 20));
                    let expected = match model.get(&id) {
                        Some(&(exp, seen)) if exp > at => Err(Replayed { in_flight: !seen }),
                        _ => Ok(()),
                    };
                    assert_eq!(c.begin_signed(&id, signed, at), expected, "{id} at {now}");
                    if expected.is_ok() {
                        let from = signed.map_or(at, |s| s.max(at));
                        model.insert(id, (from + window, false));
                    }
                }
                2 => {
                    c.commit(&id, at);
                    if let Some(e) = model.get_mut(&id) {
                        e.1 = true;
                    }
                }
                _ => {
                    c.abort(&id);
                    if model.get(&id).is_some_and(|e| !e.1) {
                        model.remove(&id);
                    }
                }
            }
            let probe = format!("id{}", next() % 300);
            let held = model.get(&probe).is_some_and(|e| e.0 > at);
            assert_eq!(c.contains(&probe, at), held, "{probe} at {now}");
        }
    }
}
