//! The batcher: groups encoded events into bounded request bodies, driven by `now`.
//!
//! Pure state machine in the quinn-proto style: no clock, no timers, no I/O. See [`Batcher`] for
//! the driving contract.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::delivery::encode::{Body, Encoding};
use crate::delivery::event::Event;

/// Longest `linger` / `group_interval` accepted (one year), so deadlines never overflow `Instant`.
const MAX_DELAY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Identifier of a batch; used as the `webhook-id` and stable across retries. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(Arc<str>);

impl BatchId {
    /// Wraps an id string.
    ///
    /// ```
    /// assert_eq!(webhook_core::BatchId::new("msg_1").as_str(), "msg_1");
    /// ```
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a batch was sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlushReason {
    /// It reached `max_events`.
    MaxEvents,
    /// Another event would have pushed it over `max_bytes` (or no event can fit any more).
    MaxBytes,
    /// Its first event waited `linger` (and the group's `group_interval` passed).
    Linger,
    /// [`Batcher::flush_all`] was called.
    Shutdown,
}

/// A sealed batch: events plus their exact encoded size. Encode it with [`Batch::encode`].
#[derive(Debug, Clone)]
pub struct Batch {
    id: BatchId,
    key: Option<Arc<str>>,
    events: Vec<Event>,
    body_bytes: usize,
    encoding: Encoding,
    reason: FlushReason,
    sealed_at: Instant,
}

impl Batch {
    /// The batch id (stable across retries: reuse it as the `webhook-id`).
    pub fn id(&self) -> &BatchId {
        &self.id
    }

    /// The partition key of the group this batch came from (`None` without partitioning or for
    /// events without a key).
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The events, in push order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Consumes the batch, returning its events (e.g. to dead-letter them).
    pub fn into_events(self) -> Vec<Event> {
        self.events
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// `true` if the batch holds no event (never the case for a batch from the batcher).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Exact length of the encoded body; never above the configured `max_bytes`.
    pub fn encoded_len(&self) -> usize {
        self.encoding
            .encoded_len(self.events.len(), self.body_bytes)
    }

    /// The encoding of the body.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Why the batch was sealed.
    pub fn reason(&self) -> FlushReason {
        self.reason
    }

    /// When it was sealed.
    pub fn sealed_at(&self) -> Instant {
        self.sealed_at
    }

    /// Encodes the body: one allocation of exactly [`Batch::encoded_len`] bytes.
    pub fn encode(&self) -> Bytes {
        match self.encoding.encode_with_len(&self.events, self.body_bytes) {
            Ok(bytes) => bytes,
            // The batcher never puts more than one event in a `Single` batch.
            Err(_) => Bytes::new(),
        }
    }

    /// Encodes the body with its content headers.
    pub fn body(&self) -> Body {
        Body {
            bytes: self.encode(),
            content_type: self.encoding.content_type(),
            content_encoding: None,
        }
    }
}

/// The final outcome of a batch, reported with [`Batcher::complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BatchOutcome {
    /// Acknowledged with a 2xx.
    Delivered,
    /// Given up (permanent failure, retries exhausted, aborted, endpoint disabled).
    Abandoned,
    /// Handed over to a store that schedules its retry elsewhere (counted in neither).
    HandedOver,
}

/// Errors building a [`BatcherConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatcherConfigError {
    /// `max_events` was zero.
    #[error("max_events must be at least 1")]
    ZeroMaxEvents,
    /// `max_bytes` cannot hold even a one-byte event in the chosen encoding.
    #[error("max_bytes {max_bytes} cannot hold any event (minimum {minimum})")]
    MaxBytesTooSmall {
        /// Configured value.
        max_bytes: usize,
        /// Smallest usable value.
        minimum: usize,
    },
    /// The buffer bounds are smaller than one batch.
    #[error(
        "buffer bounds ({max_buffered_events} events, {max_buffered_bytes} bytes) must hold at least one full batch"
    )]
    BufferSmallerThanBatch {
        /// Configured event bound.
        max_buffered_events: usize,
        /// Configured byte bound.
        max_buffered_bytes: usize,
    },
    /// `linger` or `group_interval` is longer than a year.
    #[error("linger and group_interval must not exceed one year")]
    DelayTooLong,
}

/// Validated batcher configuration; build with [`BatcherConfig::builder`].
///
/// ```
/// use std::time::Duration;
/// use webhook_core::{BatcherConfig, Encoding};
/// let config = BatcherConfig::builder()
///     .encoding(Encoding::Ndjson)
///     .max_events(500)
///     .max_bytes(1 << 20)
///     .linger(Duration::from_millis(250))
///     .build()?;
/// assert_eq!(config.max_events(), 500);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatcherConfig {
    encoding: Encoding,
    /// Whether `encoding` was declared; an undeclared one follows the endpoint's in a
    /// [`Delivery`](crate::Delivery) machine.
    encoding_declared: bool,
    max_events: usize,
    max_bytes: usize,
    linger: Duration,
    group_interval: Duration,
    partition_by_key: bool,
    ordered: bool,
    max_buffered_events: usize,
    max_buffered_bytes: usize,
    id_prefix: Box<str>,
    first_sequence: u64,
}

impl BatcherConfig {
    /// A builder with the defaults: JSON array, 1000 events, 1 MiB, linger 1 s, no grouping,
    /// unordered, buffer 10 000 events / 16 MiB, ids `batch_0`, `batch_1`, ...
    pub fn builder() -> BatcherConfigBuilder {
        BatcherConfigBuilder {
            config: Self {
                encoding: Encoding::JsonArray,
                encoding_declared: false,
                max_events: 1000,
                max_bytes: 1 << 20,
                linger: Duration::from_secs(1),
                group_interval: Duration::ZERO,
                partition_by_key: false,
                ordered: false,
                max_buffered_events: 10_000,
                max_buffered_bytes: 16 << 20,
                id_prefix: "batch_".into(),
                first_sequence: 0,
            },
        }
    }

    /// Body encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }
    /// Whether the encoding was declared with [`BatcherConfigBuilder::encoding`]. An endpoint's
    /// batcher needs none: the [`Delivery`](crate::Delivery) machine gives it the endpoint's
    /// (the one place the encoding is declared), and refuses a declared one that differs.
    pub fn encoding_declared(&self) -> bool {
        self.encoding_declared
    }
    /// This configuration in `encoding`, validated again (the limits depend on it).
    ///
    /// # Errors
    /// As [`BatcherConfigBuilder::build`].
    pub fn with_encoding(self, encoding: Encoding) -> Result<Self, BatcherConfigError> {
        BatcherConfigBuilder { config: self }
            .encoding(encoding)
            .build()
    }
    /// Effective maximum events per batch (1 for [`Encoding::Single`]).
    pub fn max_events(&self) -> usize {
        self.max_events.min(self.encoding.max_events())
    }
    /// Maximum encoded body size.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
    /// How long the first event of a batch may wait (Alertmanager's `group_wait`).
    pub fn linger(&self) -> Duration {
        self.linger
    }
    /// Minimum spacing of time-triggered batches of one group.
    pub fn group_interval(&self) -> Duration {
        self.group_interval
    }
    /// Whether batches are partitioned by [`Event::partition_key`].
    pub fn partition_by_key(&self) -> bool {
        self.partition_by_key
    }
    /// Whether a group's next batch waits for the previous one's [`Batcher::complete`].
    pub fn ordered(&self) -> bool {
        self.ordered
    }
    /// Bound on events held by the batcher.
    pub fn max_buffered_events(&self) -> usize {
        self.max_buffered_events
    }
    /// Bound on event bytes held by the batcher.
    pub fn max_buffered_bytes(&self) -> usize {
        self.max_buffered_bytes
    }
}

impl Default for BatcherConfig {
    fn default() -> Self {
        Self::builder().config
    }
}

/// Builder for [`BatcherConfig`]: setters are infallible, [`BatcherConfigBuilder::build`] reports
/// the first problem.
#[derive(Debug, Clone)]
#[must_use]
pub struct BatcherConfigBuilder {
    config: BatcherConfig,
}

impl BatcherConfigBuilder {
    /// Body encoding (default JSON array). Only for a batcher used on its own: an endpoint's
    /// batcher follows the encoding declared on its [`Endpoint`](crate::Endpoint).
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.config.encoding = encoding;
        self.config.encoding_declared = true;
        self
    }
    /// Maximum events per batch (default 1000; forced to 1 by [`Encoding::Single`]).
    pub fn max_events(mut self, n: usize) -> Self {
        self.config.max_events = n;
        self
    }
    /// Maximum encoded body bytes (default 1 MiB). A batch never exceeds it.
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.config.max_bytes = n;
        self
    }
    /// Time the first event of a batch may wait (default 1 s).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.config.linger = linger;
        self
    }
    /// Alertmanager-style grouping: partition by key, first batch of a group after `group_wait`,
    /// following time-triggered batches of that group at least `group_interval` apart.
    pub fn grouping(mut self, group_wait: Duration, group_interval: Duration) -> Self {
        self.config.partition_by_key = true;
        self.config.linger = group_wait;
        self.config.group_interval = group_interval;
        self
    }
    /// Partition batches by [`Event::partition_key`] (default off).
    pub fn partition_by_key(mut self, on: bool) -> Self {
        self.config.partition_by_key = on;
        self
    }
    /// Per-group ordering: a group's next batch is held until [`Batcher::complete`] reports the
    /// previous one (default off). Without partitioning there is one group.
    pub fn ordered(mut self, on: bool) -> Self {
        self.config.ordered = on;
        self
    }
    /// Bounds on what the batcher holds (default 10 000 events, 16 MiB); beyond them
    /// [`Batcher::push`] refuses with [`PushError::Full`].
    pub fn buffer_limits(mut self, max_events: usize, max_bytes: usize) -> Self {
        self.config.max_buffered_events = max_events;
        self.config.max_buffered_bytes = max_bytes;
        self
    }
    /// Batch ids are `prefix` followed by a counter starting at `first_sequence`
    /// (default `batch_` and 0). Use a prefix unique per process run for global uniqueness.
    pub fn batch_ids(mut self, prefix: impl Into<Box<str>>, first_sequence: u64) -> Self {
        self.config.id_prefix = prefix.into();
        self.config.first_sequence = first_sequence;
        self
    }

    /// Validates and returns the configuration.
    ///
    /// # Errors
    /// The first invalid setting, see [`BatcherConfigError`].
    pub fn build(self) -> Result<BatcherConfig, BatcherConfigError> {
        let c = self.config;
        if c.max_events == 0 {
            return Err(BatcherConfigError::ZeroMaxEvents);
        }
        let minimum = c.encoding.encoded_len(1, 1);
        if c.max_bytes < minimum {
            return Err(BatcherConfigError::MaxBytesTooSmall {
                max_bytes: c.max_bytes,
                minimum,
            });
        }
        if c.max_buffered_events < c.max_events.min(c.encoding.max_events())
            || c.max_buffered_bytes < c.max_bytes
        {
            return Err(BatcherConfigError::BufferSmallerThanBatch {
                max_buffered_events: c.max_buffered_events,
                max_buffered_bytes: c.max_buffered_bytes,
            });
        }
        if c.linger > MAX_DELAY || c.group_interval > MAX_DELAY {
            return Err(BatcherConfigError::DelayTooLong);
        }
        Ok(c)
    }
}

/// [`Batcher::push`] refused an event; the event is handed back, nothing is lost.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The event alone encodes larger than `max_bytes`: it can never be sent in this
    /// configuration (it is not truncated).
    #[error("event {} encodes to {encoded_len} bytes, above the body limit of {max_bytes}", .event.id())]
    Oversize {
        /// The refused event.
        event: Event,
        /// Its encoded size as a one-event body.
        encoded_len: usize,
        /// The configured limit.
        max_bytes: usize,
    },
    /// The buffer bound is reached (backpressure): retry after draining batches.
    #[error("batcher full ({buffered_events} events, {buffered_bytes} bytes buffered)")]
    Full {
        /// The refused event.
        event: Event,
        /// Events currently held.
        buffered_events: usize,
        /// Event bytes currently held.
        buffered_bytes: usize,
    },
}

impl PushError {
    /// Returns the refused event.
    pub fn into_event(self) -> Event {
        match self {
            Self::Oversize { event, .. } | Self::Full { event, .. } => event,
        }
    }

    /// `true` for backpressure (worth retrying later), `false` for an event that can never fit.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full { .. })
    }
}

/// [`Batcher::complete`] was given an id it is not waiting for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompleteError {
    /// The id is not an in-flight batch of an ordered batcher (unknown or already completed).
    #[error("batch {0} is not in flight")]
    UnknownBatch(BatchId),
}

/// Counters of a [`Batcher`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatcherStats {
    /// Events accepted by `push`.
    pub pushed_events: u64,
    /// Events refused as oversize.
    pub oversize_events: u64,
    /// Pushes refused for backpressure.
    pub full_rejections: u64,
    /// Batches returned by `poll_batch`.
    pub emitted_batches: u64,
    /// Events in those batches.
    pub emitted_events: u64,
    /// Batches reported delivered.
    pub delivered_batches: u64,
    /// Batches reported abandoned.
    pub abandoned_batches: u64,
}

#[derive(Debug)]
struct Group {
    key: Option<Arc<str>>,
    open: Vec<Event>,
    open_bytes: usize,
    last_emit: Option<Instant>,
    deadline: Option<Instant>,
    idle_at: Option<Instant>,
    held: VecDeque<Batch>,
    in_flight: Option<BatchId>,
}

impl Group {
    fn new(key: Option<Arc<str>>) -> Self {
        Self {
            key,
            open: Vec::new(),
            open_bytes: 0,
            last_emit: None,
            deadline: None,
            idle_at: None,
            held: VecDeque::new(),
            in_flight: None,
        }
    }

    fn is_idle(&self) -> bool {
        self.open.is_empty() && self.held.is_empty() && self.in_flight.is_none()
    }
}

type IdGenerator = Box<dyn FnMut(u64) -> String + Send>;

/// Groups events into batches bounded in events and encoded bytes.
///
/// # Driving contract
///
/// The batcher never reads the clock: every input carries `now` (a monotonic [`Instant`]).
///
/// **Inputs**
/// - [`push(event, now)`](Batcher::push): add an event. Refused with [`PushError::Oversize`] if
///   it alone exceeds `max_bytes`, or [`PushError::Full`] (backpressure) when the buffer bound is
///   reached; both hand the event back.
/// - [`handle_timeout(now)`](Batcher::handle_timeout): call when the instant from
///   [`poll_timeout`](Batcher::poll_timeout) is reached (calling it early or late is harmless).
/// - [`complete(id, outcome)`](Batcher::complete): with `ordered`, report a batch's final
///   outcome (after all retries) to release its group's next batch.
/// - [`flush_all(now)`](Batcher::flush_all): on shutdown, seal every partial batch now.
///
/// **Outputs**
/// - [`poll_batch(now)`](Batcher::poll_batch): call in a loop until `None` after *every* input;
///   each returned [`Batch`] is ready to send.
/// - [`poll_timeout()`](Batcher::poll_timeout): the next instant at which
///   `handle_timeout` must be called; re-read it after every input.
///
/// **Emission rules.** A batch is sealed when it reaches `max_events`; when the next event would
/// make its encoding exceed `max_bytes` (measured after encoding, framing included, so a batch
/// never exceeds it); or when its first event has waited `linger` and at least `group_interval`
/// passed since the group's previous batch. Size-triggered seals ignore `group_interval`
/// (the body and memory bounds win). With `ordered`, a group has at most one batch out; later
/// ones are held (and still count against the buffer bounds) until `complete`.
///
/// Events count against the buffer bounds from `push` until `poll_batch` returns their batch.
///
/// ```
/// use std::time::{Duration, Instant};
/// use webhook_core::{Batcher, BatcherConfig, Event, FlushReason};
/// let mut batcher = Batcher::new(BatcherConfig::builder().linger(Duration::from_secs(1)).build()?);
/// let t0 = Instant::now(); // the driver's clock; the core never reads it
/// batcher.push(Event::builder("1", "t").json_bytes(&b"{}"[..])?, t0)?;
/// assert!(batcher.poll_batch(t0).is_none());
/// let wake = batcher.poll_timeout().ok_or("no timer")?;
/// assert_eq!(wake, t0 + Duration::from_secs(1));
/// batcher.handle_timeout(wake);
/// let batch = batcher.poll_batch(wake).ok_or("no batch")?;
/// assert_eq!((batch.len(), batch.reason()), (1, FlushReason::Linger));
/// assert_eq!(&batch.encode()[..], b"[{}]");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Batcher {
    config: BatcherConfig,
    max_events: usize,
    slots: Vec<Option<Group>>,
    free: Vec<usize>,
    index: HashMap<Arc<str>, usize>,
    timers: BTreeSet<(Instant, usize)>,
    idle: BTreeSet<(Instant, usize)>,
    ready: VecDeque<Batch>,
    in_flight: HashMap<BatchId, usize>,
    buffered_events: usize,
    buffered_bytes: usize,
    next_sequence: u64,
    id_generator: Option<IdGenerator>,
    stats: BatcherStats,
}

impl fmt::Debug for Batcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batcher")
            .field("config", &self.config)
            .field("groups", &self.index.len())
            .field("ready", &self.ready.len())
            .field("buffered_events", &self.buffered_events)
            .field("buffered_bytes", &self.buffered_bytes)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Batcher {
    /// A batcher with ids `prefix + counter` from the configuration.
    pub fn new(config: BatcherConfig) -> Self {
        Self {
            max_events: config.max_events(),
            next_sequence: config.first_sequence,
            config,
            slots: vec![Some(Group::new(None))],
            free: Vec::new(),
            index: HashMap::new(),
            timers: BTreeSet::new(),
            idle: BTreeSet::new(),
            ready: VecDeque::new(),
            in_flight: HashMap::new(),
            buffered_events: 0,
            buffered_bytes: 0,
            id_generator: None,
            stats: BatcherStats::default(),
        }
    }

    /// A batcher whose batch ids come from `generator(sequence)` (deterministic for a
    /// deterministic generator).
    ///
    /// ```
    /// use webhook_core::{Batcher, BatcherConfig};
    /// let b = Batcher::with_id_generator(BatcherConfig::default(), |n| format!("msg_{n:08}"));
    /// assert!(b.is_empty());
    /// ```
    pub fn with_id_generator(
        config: BatcherConfig,
        generator: impl FnMut(u64) -> String + Send + 'static,
    ) -> Self {
        let mut b = Self::new(config);
        b.id_generator = Some(Box::new(generator));
        b
    }

    /// The configuration.
    pub fn config(&self) -> &BatcherConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> BatcherStats {
        self.stats
    }

    /// Events held (open, sealed or held for ordering), not yet returned by `poll_batch`.
    pub fn buffered_events(&self) -> usize {
        self.buffered_events
    }

    /// Event bytes held.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// `true` when nothing is buffered and no ordered batch is awaiting `complete`.
    pub fn is_empty(&self) -> bool {
        self.buffered_events == 0 && self.in_flight.is_empty()
    }

    /// Number of batches currently awaiting [`Batcher::complete`] (ordered mode).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Adds an event.
    ///
    /// # Errors
    /// [`PushError::Oversize`] if the event alone encodes above `max_bytes`;
    /// [`PushError::Full`] if the buffer bound is reached. Both return the event.
    pub fn push(&mut self, event: Event, now: Instant) -> Result<(), PushError> {
        let enc = self.config.encoding;
        let len = event.len();
        let single = enc.encoded_len(1, len);
        if single > self.config.max_bytes {
            self.stats.oversize_events += 1;
            return Err(PushError::Oversize {
                event,
                encoded_len: single,
                max_bytes: self.config.max_bytes,
            });
        }
        if self.buffered_events >= self.config.max_buffered_events
            || self.buffered_bytes.saturating_add(len) > self.config.max_buffered_bytes
        {
            self.stats.full_rejections += 1;
            return Err(PushError::Full {
                event,
                buffered_events: self.buffered_events,
                buffered_bytes: self.buffered_bytes,
            });
        }
        let slot = self.slot_for(event.partition_key());
        let Some(group) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return Err(PushError::Full {
                event,
                buffered_events: self.buffered_events,
                buffered_bytes: self.buffered_bytes,
            });
        };
        // A deadline that already passed seals the old batch first (late handle_timeout).
        let expired = group.deadline.is_some_and(|d| d <= now);
        let overflow = !group.open.is_empty()
            && enc.encoded_len(group.open.len() + 1, group.open_bytes + len)
                > self.config.max_bytes;
        let mut slot = slot;
        if expired || overflow {
            let reason = if expired {
                FlushReason::Linger
            } else {
                FlushReason::MaxBytes
            };
            self.seal(slot, reason, now);
            // Sealing may have forgotten an idle keyed group: look it up (or re-create it) again.
            slot = self.slot_for(event.partition_key());
        }
        let linger = self.config.linger;
        let interval = self.config.group_interval;
        let Some(group) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            // Unreachable: `slot_for` always returns an occupied slot. Refuse rather than lose.
            return Err(PushError::Full {
                event,
                buffered_events: self.buffered_events,
                buffered_bytes: self.buffered_bytes,
            });
        };
        let was_empty = group.open.is_empty();
        group.open.push(event);
        group.open_bytes += len;
        self.buffered_events += 1;
        self.buffered_bytes += len;
        self.stats.pushed_events += 1;
        if was_empty {
            if let Some(at) = group.idle_at.take() {
                self.idle.remove(&(at, slot));
            }
            let mut deadline = now.checked_add(linger).unwrap_or(now);
            if let Some(next) = group.last_emit.and_then(|t| t.checked_add(interval)) {
                deadline = deadline.max(next);
            }
            group.deadline = Some(deadline);
            self.timers.insert((deadline, slot));
        }
        let count = group.open.len();
        let full_bytes = enc.encoded_len(count + 1, group.open_bytes + 1) > self.config.max_bytes;
        if count >= self.max_events {
            self.seal(slot, FlushReason::MaxEvents, now);
        } else if full_bytes {
            self.seal(slot, FlushReason::MaxBytes, now);
        }
        Ok(())
    }

    /// Seals every batch whose deadline is at or before `now`, and forgets idle groups.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, slot)) = self.timers.first() {
            if at > now {
                break;
            }
            self.seal(slot, FlushReason::Linger, now);
        }
        while let Some(&(at, slot)) = self.idle.first() {
            if at > now {
                break;
            }
            self.idle.remove(&(at, slot));
            self.remove_if_idle(slot);
        }
    }

    /// The next instant at which [`Batcher::handle_timeout`] must be called, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, _)| at)
    }

    /// The next batch ready to send; handles expired deadlines first. Poll until `None`.
    pub fn poll_batch(&mut self, now: Instant) -> Option<Batch> {
        self.handle_timeout(now);
        let batch = self.ready.pop_front()?;
        self.buffered_events -= batch.events.len();
        self.buffered_bytes -= batch.body_bytes;
        self.stats.emitted_batches += 1;
        self.stats.emitted_events += batch.events.len() as u64;
        Some(batch)
    }

    /// Seals every non-empty batch now (shutdown). Then drain with `poll_batch`; with `ordered`,
    /// batches held behind an in-flight batch come out after its `complete`.
    pub fn flush_all(&mut self, now: Instant) {
        for slot in 0..self.slots.len() {
            let has_open = self
                .slots
                .get(slot)
                .and_then(Option::as_ref)
                .is_some_and(|g| !g.open.is_empty());
            if has_open {
                self.seal(slot, FlushReason::Shutdown, now);
            }
        }
    }

    /// Reports the final outcome of a batch. With `ordered`, this releases the group's next
    /// batch; without it, it only updates [`BatcherStats`].
    ///
    /// # Errors
    /// [`CompleteError::UnknownBatch`] in ordered mode if `id` is not in flight.
    pub fn complete(&mut self, id: &BatchId, outcome: BatchOutcome) -> Result<(), CompleteError> {
        if self.config.ordered {
            let Some(slot) = self.in_flight.remove(id) else {
                return Err(CompleteError::UnknownBatch(id.clone()));
            };
            if let Some(group) = self.slots.get_mut(slot).and_then(Option::as_mut) {
                group.in_flight = None;
                if let Some(next) = group.held.pop_front() {
                    group.in_flight = Some(next.id.clone());
                    self.in_flight.insert(next.id.clone(), slot);
                    self.ready.push_back(next);
                }
            }
            self.after_activity(slot);
        }
        match outcome {
            BatchOutcome::Delivered => self.stats.delivered_batches += 1,
            BatchOutcome::Abandoned => self.stats.abandoned_batches += 1,
            BatchOutcome::HandedOver => {}
        }
        Ok(())
    }

    fn slot_for(&mut self, key: Option<&str>) -> usize {
        let Some(key) = key.filter(|_| self.config.partition_by_key) else {
            return 0;
        };
        if let Some(&slot) = self.index.get(key) {
            return slot;
        }
        let key: Arc<str> = Arc::from(key);
        let group = Group::new(Some(key.clone()));
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(s) = self.slots.get_mut(slot) {
                    *s = Some(group);
                }
                slot
            }
            None => {
                self.slots.push(Some(group));
                self.slots.len() - 1
            }
        };
        self.index.insert(key, slot);
        slot
    }

    fn next_id(&mut self) -> BatchId {
        let seq = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        match &mut self.id_generator {
            Some(generator) => BatchId::new(generator(seq)),
            None => BatchId::new(format!("{}{seq}", self.config.id_prefix)),
        }
    }

    fn seal(&mut self, slot: usize, reason: FlushReason, now: Instant) {
        let has_open = self
            .slots
            .get(slot)
            .and_then(Option::as_ref)
            .is_some_and(|g| !g.open.is_empty());
        // Only a non-empty batch consumes an id, so ids stay dense and deterministic.
        let id = has_open.then(|| self.next_id());
        let ordered = self.config.ordered;
        let encoding = self.config.encoding;
        let Some(group) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if let Some(at) = group.deadline.take() {
            self.timers.remove(&(at, slot));
        }
        let Some(id) = id else {
            return;
        };
        let batch = Batch {
            id,
            key: group.key.clone(),
            events: std::mem::take(&mut group.open),
            body_bytes: std::mem::take(&mut group.open_bytes),
            encoding,
            reason,
            sealed_at: now,
        };
        group.last_emit = Some(now);
        if ordered {
            if group.in_flight.is_none() {
                group.in_flight = Some(batch.id.clone());
                self.in_flight.insert(batch.id.clone(), slot);
                self.ready.push_back(batch);
            } else {
                group.held.push_back(batch);
            }
        } else {
            self.ready.push_back(batch);
        }
        self.after_activity(slot);
    }

    /// Schedules forgetting a keyed group once it is idle and its `group_interval` has passed.
    fn after_activity(&mut self, slot: usize) {
        if slot == 0 {
            return;
        }
        let interval = self.config.group_interval;
        let Some(group) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if !group.is_idle() {
            return;
        }
        let forget_at = group.last_emit.and_then(|t| t.checked_add(interval));
        match forget_at {
            Some(at) if !interval.is_zero() => {
                if let Some(old) = group.idle_at.replace(at) {
                    self.idle.remove(&(old, slot));
                }
                self.idle.insert((at, slot));
            }
            _ => self.remove_if_idle(slot),
        }
    }

    fn remove_if_idle(&mut self, slot: usize) {
        let Some(entry) = self.slots.get_mut(slot) else {
            return;
        };
        if slot == 0 || !entry.as_ref().is_some_and(Group::is_idle) {
            return;
        }
        if let Some(group) = entry.take() {
            if let Some(at) = group.idle_at {
                self.idle.remove(&(at, slot));
            }
            if let Some(key) = group.key {
                self.index.remove(&key);
            }
            self.free.push(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, key: Option<&str>) -> Event {
        let b = Event::builder(id, "t");
        let b = match key {
            Some(k) => b.partition_key(k),
            None => b,
        };
        b.json_bytes(&b"{}"[..]).unwrap()
    }

    #[test]
    fn config_errors() {
        assert_eq!(
            BatcherConfig::builder().max_events(0).build(),
            Err(BatcherConfigError::ZeroMaxEvents)
        );
        assert!(matches!(
            BatcherConfig::builder().max_bytes(2).build(),
            Err(BatcherConfigError::MaxBytesTooSmall { minimum: 3, .. })
        ));
        assert!(matches!(
            BatcherConfig::builder().buffer_limits(10, 1 << 30).build(),
            Err(BatcherConfigError::BufferSmallerThanBatch { .. })
        ));
        assert_eq!(
            BatcherConfig::builder().linger(MAX_DELAY * 2).build(),
            Err(BatcherConfigError::DelayTooLong)
        );
        let single = BatcherConfig::builder()
            .encoding(Encoding::Single)
            .build()
            .unwrap();
        assert_eq!(single.max_events(), 1);
    }

    #[test]
    fn idle_keyed_groups_are_forgotten() {
        let cfg = BatcherConfig::builder()
            .grouping(Duration::from_secs(1), Duration::from_secs(10))
            .build()
            .unwrap();
        let mut b = Batcher::new(cfg);
        let t0 = Instant::now();
        b.push(ev("1", Some("a")), t0).unwrap();
        assert_eq!(b.index.len(), 1);
        let t1 = t0 + Duration::from_secs(1);
        assert!(b.poll_batch(t1).is_some());
        assert_eq!(b.index.len(), 1, "kept until group_interval passes");
        b.handle_timeout(t1 + Duration::from_secs(10));
        assert_eq!(b.index.len(), 0);
        assert_eq!(b.free, vec![1]);
        // The slot is reused.
        b.push(ev("2", Some("b")), t1 + Duration::from_secs(11))
            .unwrap();
        assert_eq!(b.index.get("b"), Some(&1));
    }

    #[test]
    fn unordered_complete_counts() {
        let mut b = Batcher::new(BatcherConfig::default());
        b.complete(&BatchId::new("x"), BatchOutcome::Delivered)
            .unwrap();
        assert_eq!(b.stats().delivered_batches, 1);
        let mut o = Batcher::new(BatcherConfig::builder().ordered(true).build().unwrap());
        assert_eq!(
            o.complete(&BatchId::new("x"), BatchOutcome::Abandoned),
            Err(CompleteError::UnknownBatch(BatchId::new("x")))
        );
    }
}
