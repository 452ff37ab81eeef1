//! The inbox (feature `inbox`): answer a provider at once, process durably.
//!
//! A [`Receiver`](crate::Receiver) built with [`ReceiverBuilder::build_inbox`](crate::ReceiverBuilder::build_inbox)
//! verifies and decodes a request as always, then, instead of running the handlers inside the
//! request, stores the verified message in a durable inbox and answers `200
//! {"status":"queued"}` as soon as it is stored. A task runs the handlers from the inbox, with
//! their own retry policy and backoff; a message whose handlers keep failing becomes a dead
//! letter, which [`Inbox::dead_letters`], [`Inbox::requeue`] and [`Inbox::purge`] (and the CLI's
//! `webhook inbox` commands) inspect, requeue and delete.
//!
//! The store is the sender's embedded outbox log ([`webhook_sender::outbox`]): the same
//! segmented, checksummed, crash-recovered files, with one consumer, `inbox`.
//!
//! # Semantics
//!
//! * **Answered means stored.** A `2xx` is sent only once the message is in the log and
//!   written to the operating system (it survives a killed process) under
//!   [`Durability::Interval`], or synced to the disk (it survives a power loss) under
//!   [`Durability::Sync`]. The interval's sync bounds what a power loss can take.
//! * **At least once.** The handlers of a stored message run until they all succeed, or the
//!   retry policy gives up (then it is a dead letter). A crash while they run, or between their
//!   success and the record of it (written within ~2 ms), runs them again after the restart:
//!   handlers must be idempotent; [`Context::attempt`](crate::Context::attempt) says which run
//!   it is, counted across restarts.
//! * **Exactly one recorded success per id.** A message is stored once per id: a provider's
//!   retry of an id already stored (pending, processed or dead-lettered, within the
//!   deduplication window) is answered `200 {"status":"duplicate"}` and not stored again; a
//!   copy arriving while the first is being stored is answered `409` (the provider retries).
//!   The id is the authenticated message id (`webhook-id` and the like), else the digest of the
//!   signed timestamp and body; messages without either are never deduplicated. The ids are kept
//!   on disk (`DIR/seen`) for [`InboxConfig::dedupe_window`], at most
//!   [`InboxConfig::dedupe_capacity`] of them (the oldest forgotten first).
//! * **Order.** Unordered by default (up to [`InboxConfig::concurrency`] messages at once).
//!   With [`InboxConfig::order_by`], messages with the same key run one at a time in the order
//!   they were stored, a retry holding back the later ones of its key.
//! * **Bounds.** At [`InboxConfig::max_bytes`] the inbox answers `503` with `Retry-After`
//!   (the provider retries later) and stores nothing; what it accepted is never dropped.
//!   At most [`InboxConfig::max_in_flight`] messages are held in memory; the rest wait on disk.
//! * **Refusals are unchanged.** Authentication, limits and decoding are checked before the
//!   message is stored, with the same answers as without an inbox (`401`, `413`, `400`,
//!   `422`, ...): nothing that would be refused is ever stored. Handler decisions
//!   ([`HandlerOutcome::Respond`](crate::HandlerOutcome::Respond)) are not sent back: the answer
//!   is given before the handlers run.
//!
//! # Metrics
//! `webhook_inbox_accepted_total`, `webhook_inbox_duplicates_total`,
//! `webhook_inbox_refused_total` (full or failed store), `webhook_inbox_succeeded_total`,
//! `webhook_inbox_retries_total`, `webhook_inbox_dead_letters_total` (counters);
//! `webhook_inbox_depth` (messages stored, not yet settled), `webhook_inbox_oldest_age_seconds`,
//! `webhook_inbox_dead_letters` (held) (gauges, refreshed every second);
//! `webhook_inbox_handler_seconds` (histogram of one run of a message's handlers). The same
//! figures are in [`Inbox::stats`].

mod envelope;
mod seen;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use tokio::sync::Notify;
use webhook_core::RetryPolicy;
use webhook_sender::outbox::{Appended, Outbox, OutboxConfig, OutboxStore, ReadCursor};
pub use webhook_sender::outbox::{DeadLetterEntry, Durability, Filter, OutboxError};

use crate::config::ReceiverBuildError;
use crate::context::Context;
use crate::rejection::{error_response, json_response};
use crate::replay::{Reservation, SharedReplayCache};

pub(crate) use worker::spawn;

/// The consumer name of inbox messages in the store (what `webhook outbox` shows as the
/// endpoint).
pub const INBOX_ENDPOINT: &str = "inbox";

/// Chooses the ordering key of a message.
pub type OrderKeyFn = dyn Fn(&Context) -> Option<String> + Send + Sync;

/// Where an inbox lives and how it processes.
///
/// ```
/// use std::time::Duration;
/// use webhook_receiver::inbox::{Durability, InboxConfig};
/// let config = InboxConfig::new("/var/lib/app/inbox")
///     .durability(Durability::Sync)
///     .max_bytes(256 << 20)
///     .concurrency(8)
///     .order_by(|cx| cx.headers().get("x-tenant").and_then(|v| v.to_str().ok()).map(str::to_owned));
/// assert_eq!(config.dir().to_str(), Some("/var/lib/app/inbox"));
/// ```
#[derive(Clone)]
pub struct InboxConfig {
    dir: PathBuf,
    durability: Durability,
    max_bytes: u64,
    segment_bytes: Option<u64>,
    retry: RetryPolicy,
    concurrency: usize,
    max_in_flight: usize,
    order_by: Option<Arc<OrderKeyFn>>,
    dedupe_window: Duration,
    dedupe_capacity: usize,
    retry_after_full: Duration,
}

impl std::fmt::Debug for InboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxConfig")
            .field("dir", &self.dir)
            .field("durability", &self.durability)
            .field("max_bytes", &self.max_bytes)
            .field("retry", &self.retry)
            .field("concurrency", &self.concurrency)
            .field("max_in_flight", &self.max_in_flight)
            .field("ordered", &self.order_by.is_some())
            .field("dedupe_window", &self.dedupe_window)
            .field("dedupe_capacity", &self.dedupe_capacity)
            .finish_non_exhaustive()
    }
}

/// The default retry policy of inbox handlers: exponential from 1 s, doubling, at most 5 min
/// apart, full jitter, 12 attempts (about 20 minutes), then a dead letter.
pub fn default_retry_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .exponential(Duration::from_secs(1), 2.0, Duration::from_secs(300), true)
        .max_attempts(12)
        .retry_after(true, Duration::from_secs(3600))
        .min_wait_after_throttle(Duration::ZERO)
        .build()
        .unwrap_or_else(|_| RetryPolicy::svix())
}

impl InboxConfig {
    /// An inbox in `dir` (created when missing): [`Durability::default`] (written to the
    /// operating system before answering, synced every 100 ms), 1 GiB, the
    /// [`default_retry_policy`], 16 messages at once, 4096 in memory, ids kept 72 hours (at most
    /// 1,000,000), `Retry-After: 10` when full.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            durability: Durability::default(),
            max_bytes: 1 << 30,
            segment_bytes: None,
            retry: default_retry_policy(),
            concurrency: 16,
            max_in_flight: 4096,
            order_by: None,
            dedupe_window: Duration::from_secs(72 * 3600),
            dedupe_capacity: 1_000_000,
            retry_after_full: Duration::from_secs(10),
        }
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How durable a message is when it is answered (see the module's semantics).
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The most bytes the inbox's log may hold (at least 1 MiB); past it requests are answered
    /// `503` with `Retry-After`.
    #[must_use]
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes.max(1 << 20);
        self
    }

    /// The log's segment size (64 KiB to 1 GiB; default 64 MiB): space comes back a segment at
    /// a time.
    #[must_use]
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = Some(bytes);
        self
    }

    /// The retry policy of the handlers (a failed or overloaded run is a retryable `500` or
    /// `429`; `Retry-After` of [`HandlerOutcome::Overloaded`](crate::HandlerOutcome::Overloaded)
    /// is honoured).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How many messages' handlers run at once (at least 1).
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// How many messages are held in memory at most, running or waiting for a retry (at
    /// least 1; the rest wait on disk).
    #[must_use]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Processes messages with the same key one at a time, in the order they were stored
    /// (`None`: no ordering for that message).
    #[must_use]
    pub fn order_by<F>(mut self, key: F) -> Self
    where
        F: Fn(&Context) -> Option<String> + Send + Sync + 'static,
    {
        self.order_by = Some(Arc::new(key));
        self
    }

    /// How long an id is remembered for deduplication (from when it was received).
    #[must_use]
    pub fn dedupe_window(mut self, window: Duration) -> Self {
        self.dedupe_window = window;
        self
    }

    /// How many ids are remembered at most (at least 1).
    #[must_use]
    pub fn dedupe_capacity(mut self, n: usize) -> Self {
        self.dedupe_capacity = n.max(1);
        self
    }

    /// The `Retry-After` sent with a `503` when the inbox is full.
    #[must_use]
    pub fn retry_after_when_full(mut self, after: Duration) -> Self {
        self.retry_after_full = after;
        self
    }
}

/// Why an inbox receiver could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InboxError {
    /// The receiver itself (routes, fallback).
    #[error(transparent)]
    Build(#[from] ReceiverBuildError),
    /// The inbox's store could not be opened (another process holds it:
    /// [`OutboxError::Locked`]; or an I/O error).
    #[error(transparent)]
    Store(#[from] OutboxError),
    /// The deduplication journal could not be opened.
    #[error("the inbox's id journal {path}: {source}")]
    Journal {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A stored message could not be read back as a request.
    #[error("{0}")]
    Message(String),
    /// No Tokio runtime to run the handlers on: build inside one.
    #[error("an inbox receiver must be built inside a Tokio runtime (it spawns its processor)")]
    NoRuntime,
}

/// The inbox's counters and gauges.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxStats {
    /// Messages stored and not yet settled (processed or dead-lettered).
    pub depth: u64,
    /// Of those, held in memory by the processor (running, or waiting for a retry).
    pub in_flight: u64,
    /// Age of the oldest part of the log holding an unsettled message.
    pub oldest_age: Option<Duration>,
    /// Messages stored since open.
    pub accepted: u64,
    /// Copies of a stored id answered `duplicate` since open.
    pub duplicates: u64,
    /// Requests answered `503` (full, or the store failing) since open.
    pub refused: u64,
    /// Messages whose handlers all succeeded since open (one record each).
    pub succeeded: u64,
    /// Handler runs that failed and were scheduled again since open.
    pub retries: u64,
    /// Messages given up (dead-lettered) since open.
    pub dead_lettered: u64,
    /// Dead letters held.
    pub dead_letters: u64,
    /// Ids remembered for deduplication.
    pub remembered_ids: u64,
    /// Bytes of the log on disk.
    pub backlog_bytes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    /// Messages taken from the log and not yet settled.
    pub(crate) in_flight: AtomicU64,
    /// Handler runs in progress.
    pub(crate) running: AtomicU64,
    /// Unique ids of messages without one.
    pub(crate) anonymous: AtomicU64,
}

/// A message handed to the processor from memory: no read back, no decoding.
#[derive(Debug)]
pub(crate) struct Fresh {
    pub(crate) seq: u64,
    pub(crate) event: webhook_core::Event,
    pub(crate) cx: Context,
    /// The items decoded at intake (a `Vec<T>`), for the first run.
    pub(crate) items: Box<dyn std::any::Any + Send>,
}

/// Which stored messages the processor reads back from the log: the seqs `from..=until`
/// (while `spilled`). Every message is either handed over from memory or in that range, never
/// both: the choice is made under this lock in seq order (the append happens under it too).
#[derive(Debug, Default)]
pub(crate) struct Feed {
    pub(crate) spilled: bool,
    pub(crate) from: u64,
    pub(crate) until: u64,
    /// A new range began (the reader moves its cursor to `from`).
    pub(crate) restart: bool,
}

impl Feed {
    /// Seqs `first..=last` go by the log.
    pub(crate) fn spill(&mut self, first: u64, last: u64) {
        if !self.spilled {
            self.spilled = true;
            self.from = first;
            self.restart = true;
        }
        self.until = self.until.max(last);
    }
}

/// What the intake and the processor share.
pub(crate) struct Shared {
    pub(crate) outbox: Outbox,
    pub(crate) store: Arc<dyn OutboxStore>,
    pub(crate) seen: Mutex<seen::SeenSet>,
    pub(crate) config: InboxConfig,
    /// Wakes the processor (messages left on disk, a requeue, a close).
    pub(crate) wake: Notify,
    /// How stored messages reach the processor: from memory, or read back from the log.
    pub(crate) feed: Mutex<Feed>,
    /// Messages handed over from memory (bounded: when full, they are read back instead).
    pub(crate) fresh_tx: tokio::sync::mpsc::Sender<Fresh>,
    /// The processor's end of `fresh_tx` (taken when it starts).
    pub(crate) fresh_rx: Mutex<Option<tokio::sync::mpsc::Receiver<Fresh>>>,
    /// Wakes [`Inbox::idle`] waiters when a message settles.
    pub(crate) settled: Notify,
    pub(crate) closed: AtomicBool,
    /// Set when runs in progress are to be dropped (after a close's grace period, or when the
    /// last receiver is gone); waiting tasks watch it.
    pub(crate) cancel: tokio::sync::watch::Sender<bool>,
    /// The processor's read task has ended.
    pub(crate) reader_done: AtomicBool,
    pub(crate) counters: Counters,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("location", &self.store.location())
            .finish_non_exhaustive()
    }
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Shared {
    pub(crate) fn seen(&self) -> std::sync::MutexGuard<'_, seen::SeenSet> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the id journal's new entries (before messages are settled: an id is on disk
    /// before its message can leave the log).
    pub(crate) fn write_ids(&self) {
        if let Err(e) = self.seen().write() {
            tracing::warn!(error = %e, "inbox: writing the id journal failed");
        }
    }
}

/// Opens the inbox of `config`: the store, the id journal, and the ids of the messages the
/// log still holds.
pub(crate) fn open(config: InboxConfig) -> Result<Arc<Shared>, InboxError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(InboxError::NoRuntime);
    }
    let mut oc = OutboxConfig::new(&config.dir)
        .durability(config.durability)
        .max_bytes(config.max_bytes);
    if let Some(s) = config.segment_bytes {
        oc = oc.segment_bytes(s);
    }
    let outbox = Outbox::open(oc)?;
    let store = outbox.store();
    let now = ms(SystemTime::now());
    let path = config.dir.join("seen");
    let mut seen = seen::SeenSet::open(&path, config.dedupe_capacity, now).map_err(|source| {
        InboxError::Journal {
            path: path.clone(),
            source,
        }
    })?;
    // Messages in the log are held whatever the journal says (its tail may not have been
    // written before a crash).
    let window = u64::try_from(config.dedupe_window.as_millis()).unwrap_or(u64::MAX);
    let mut cursor = ReadCursor::at(store.first_seq());
    loop {
        let out = store.read(INBOX_ENDPOINT, &mut cursor, 4096, u64::MAX)?;
        let n = out.events.len() + out.batches.len();
        let events = out
            .events
            .iter()
            .chain(out.batches.iter().flat_map(|b| b.events.iter()));
        for (_, event) in events {
            let at = event.timestamp_nanos() / 1_000_000;
            seen.held(seen::key(event.id()), at.saturating_add(window));
        }
        if out.at_end || n == 0 {
            break;
        }
    }
    seen.write()
        .map_err(|source| InboxError::Journal { path, source })?;
    // What the log holds at open is read back; what arrives from now on comes from memory.
    let mut feed = Feed::default();
    if store.next_seq() > store.first_seq() {
        feed.spill(store.first_seq(), store.next_seq() - 1);
    }
    let (fresh_tx, fresh_rx) = tokio::sync::mpsc::channel(config.max_in_flight);
    Ok(Arc::new(Shared {
        feed: Mutex::new(feed),
        fresh_tx,
        fresh_rx: Mutex::new(Some(fresh_rx)),
        outbox,
        store,
        seen: Mutex::new(seen),
        config,
        wake: Notify::new(),
        settled: Notify::new(),
        closed: AtomicBool::new(false),
        cancel: tokio::sync::watch::Sender::new(false),
        reader_done: AtomicBool::new(false),
        counters: Counters::default(),
    }))
}

fn queued(status: &'static str, id: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "status": status, "id": id }).to_string();
    json_response(StatusCode::OK, Bytes::from(body))
}

impl Shared {
    /// Stores a verified message and answers: the intake side of inbox mode.
    pub(crate) async fn accept(
        &self,
        cx: Context,
        subject: Option<&str>,
        items: Box<dyn std::any::Any + Send>,
        ticket: Reservation<&SharedReplayCache>,
    ) -> Response<Full<Bytes>> {
        let received = cx.received_at();
        let auth = cx.authenticated();
        let id: Option<String> = match (auth.message_id(), auth.replay_digest.as_ref()) {
            (Some(id), _) => Some(id.to_owned()),
            (None, Some(d)) => Some(format!("sig_{}", hex(&d[..16]))),
            (None, None) => None,
        };
        let key = id.as_deref().map(seen::key);
        if let Some(k) = key {
            match self.seen().begin(k, ms(received)) {
                seen::Seen::Fresh => {}
                seen::Seen::Held => {
                    self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("webhook_inbox_duplicates_total").increment(1);
                    ticket.acknowledge();
                    return queued("duplicate", id.as_deref().unwrap_or_default());
                }
                seen::Seen::InFlight => {
                    return error_response(
                        StatusCode::CONFLICT,
                        "in_flight",
                        "this message id is being stored; retry",
                    );
                }
            }
        }
        let id = id.unwrap_or_else(|| {
            let n = self.counters.anonymous.fetch_add(1, Ordering::Relaxed);
            format!("in_{:x}_{n}", received_nanos(received))
        });
        let event = envelope::encode(&cx, &id, subject.unwrap_or_default());
        let appended = {
            // The append and the choice of how the processor gets the message, in seq order.
            let mut feed = self.feed.lock().unwrap_or_else(PoisonError::into_inner);
            // Under `Interval`, written out with the append (the answer means the message
            // survives a killed process); under `Sync`, synced below.
            let appended = match self.config.durability {
                Durability::Sync => self.store.append(&[INBOX_ENDPOINT], &event, received),
                _ => self
                    .store
                    .append_written(&[INBOX_ENDPOINT], &event, received),
            };
            if let Ok(Appended::Written { seq, .. }) = &appended {
                let seq = *seq;
                let handed = !feed.spilled
                    && self
                        .fresh_tx
                        .try_send(Fresh {
                            seq,
                            event,
                            cx: cx.clone(),
                            items,
                        })
                        .is_ok();
                if !handed {
                    feed.spill(seq, seq);
                    self.wake.notify_one();
                }
            }
            appended
        };
        let stored = match appended {
            Ok(Appended::Written { ticket: t, .. }) => match self.config.durability {
                Durability::Sync => self.store.synced(t).await,
                _ => Ok(()),
            }
            .map(|()| true),
            Ok(_) => Ok(false),
            Err(e) => Err(e),
        };
        match stored {
            Ok(true) => {
                if let Some(k) = key {
                    let window =
                        u64::try_from(self.config.dedupe_window.as_millis()).unwrap_or(u64::MAX);
                    self.seen().commit(k, ms(received).saturating_add(window));
                }
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("webhook_inbox_accepted_total").increment(1);
                ticket.acknowledge();
                queued("queued", &id)
            }
            Ok(false) => {
                self.refuse(key);
                let mut res = error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "inbox_full",
                    "the inbox is full; retry later",
                );
                let after = self.config.retry_after_full;
                let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
                res
            }
            Err(e) => {
                tracing::error!(error = %e, "inbox: storing a message failed");
                self.refuse(key);
                let mut res = error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "inbox_unavailable",
                    "the message could not be stored; retry later",
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(30u64));
                res
            }
        }
    }

    fn refuse(&self, key: Option<u128>) {
        if let Some(k) = key {
            self.seen().abort(k);
        }
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("webhook_inbox_refused_total").increment(1);
    }
}

fn received_nanos(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The request an inbox message holds (a dead letter's event, read offline with
/// [`Outbox::open`](webhook_sender::outbox::Outbox::open) for instance): method, URI, headers,
/// the body as received, identity and times, as its handlers see them.
///
/// ```
/// let event = webhook_core::Event::builder("x", "t").json_bytes(&b"[1]"[..])?;
/// assert!(webhook_receiver::inbox::stored_request(&event).is_err()); // not an inbox message
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`InboxError::Message`] when the event is not an inbox message.
pub fn stored_request(event: &webhook_core::Event) -> Result<Context, InboxError> {
    envelope::decode(event, 1).map_err(|e| InboxError::Message(e.to_string()))
}

/// The receiver's hold on its inbox: dropping the last receiver stops the processor.
#[derive(Debug)]
pub(crate) struct Gate(pub(crate) Arc<Shared>);

impl std::ops::Deref for Gate {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        // No receiver left (and so no handler running: a run holds one): stop the processor
        // and the tasks waiting for a retry, so the store is released once the last `Inbox`
        // handle is dropped.
        self.0.closed.store(true, Ordering::Release);
        self.0.cancel.send_replace(true);
        self.0.wake.notify_one();
        self.0.write_ids();
    }
}

/// An open inbox: status, dead letters, requeue and purge. Cheap to clone; get it from
/// [`Receiver::inbox`](crate::Receiver::inbox).
#[derive(Clone, Debug)]
pub struct Inbox {
    pub(crate) shared: Arc<Shared>,
}

impl Inbox {
    /// Where it keeps messages.
    #[must_use]
    pub fn location(&self) -> String {
        self.shared.store.location()
    }

    /// Counters and gauges.
    #[must_use]
    pub fn stats(&self) -> InboxStats {
        let s = self.shared.store.stats(SystemTime::now());
        let c = &self.shared.counters;
        InboxStats {
            depth: s.pending,
            in_flight: c.in_flight.load(Ordering::Relaxed),
            oldest_age: s.oldest_pending_age,
            accepted: c.accepted.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            succeeded: c.succeeded.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            dead_letters: s.dead_letters,
            remembered_ids: self.shared.seen().len() as u64,
            backlog_bytes: s.backlog_bytes,
        }
    }

    /// Dead letters matching `filter`, oldest first, at most `limit` (summaries; the event's id
    /// is the message id).
    #[must_use]
    pub fn dead_letters(&self, filter: &Filter, limit: usize) -> Vec<DeadLetterEntry> {
        self.shared.outbox.dead_letters(filter, limit)
    }

    /// One dead letter with its attempts and the stored message.
    ///
    /// # Errors
    /// [`OutboxError::Io`] or [`OutboxError::Corrupt`] when it cannot be read.
    pub fn dead_letter(&self, id: u64) -> Result<Option<DeadLetterEntry>, OutboxError> {
        self.shared.outbox.dead_letter(id)
    }

    /// The request a dead letter holds, as its handlers saw it (headers, raw body, identity).
    ///
    /// # Errors
    /// [`InboxError::Store`] when it cannot be read, [`InboxError::Message`] when it is not an
    /// inbox message.
    pub fn dead_letter_context(&self, id: u64) -> Result<Option<Context>, InboxError> {
        let Some(entry) = self.shared.outbox.dead_letter(id)? else {
            return Ok(None);
        };
        let Some(event) = entry.event else {
            return Ok(None);
        };
        envelope::decode(&event, entry.attempt_count)
            .map(Some)
            .map_err(|e| InboxError::Message(e.to_string()))
    }

    /// Puts the matching dead letters back in the inbox: their handlers run again (with a new
    /// attempt count). Returns how many.
    ///
    /// # Errors
    /// [`OutboxError::Full`] at the byte limit (those requeued so far stay requeued), or an
    /// I/O error.
    pub fn requeue(&self, filter: &Filter) -> Result<usize, OutboxError> {
        let shared = &self.shared;
        let mut feed = shared.feed.lock().unwrap_or_else(PoisonError::into_inner);
        let before = shared.store.next_seq();
        let n = shared.outbox.redeliver(filter);
        let after = shared.store.next_seq();
        if after > before {
            // Appended by the store: read back like messages that found no room in memory.
            feed.spill(before, after - 1);
        }
        drop(feed);
        shared.wake.notify_one();
        n
    }

    /// Deletes the matching dead letters for good. Returns how many.
    ///
    /// # Errors
    /// An I/O error writing the removal.
    pub fn purge(&self, filter: &Filter) -> Result<usize, OutboxError> {
        self.shared.outbox.purge(filter)
    }

    /// Resolves once every stored message is settled (processed or dead-lettered) and no
    /// handler runs: for tests and for a graceful stop that wants an empty inbox.
    pub async fn idle(&self) {
        loop {
            let settled = self.shared.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            let c = &self.shared.counters;
            if self.shared.store.stats(SystemTime::now()).pending == 0
                && c.in_flight.load(Ordering::Acquire) == 0
            {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), settled).await;
        }
    }

    /// Stops processing: no new handler run starts, runs in progress are given up to
    /// `timeout` to end (then dropped, unsettled), and what is written is synced. Messages not
    /// settled stay in the inbox for the next open (a run cut short runs again then). Returns
    /// once the processor's tasks have ended. Requests still being answered keep being stored.
    pub async fn close(&self, timeout: Duration) {
        let shared = &self.shared;
        shared.closed.store(true, Ordering::Release);
        shared.wake.notify_one();
        let deadline = tokio::time::Instant::now() + timeout;
        while shared.counters.running.load(Ordering::Acquire) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shared.cancel.send_replace(true);
        while !(shared.reader_done.load(Ordering::Acquire)
            && shared.counters.in_flight.load(Ordering::Acquire) == 0)
        {
            shared.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.flush();
    }

    /// Writes and syncs the log and the id journal.
    pub fn flush(&self) {
        if let Err(e) = self.shared.seen().sync() {
            tracing::warn!(error = %e, "inbox: syncing the id journal failed");
        }
        if let Err(e) = self.shared.outbox.flush() {
            tracing::warn!(error = %e, "inbox: syncing the log failed");
        }
    }
}
