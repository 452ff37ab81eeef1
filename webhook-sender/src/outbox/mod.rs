//! The durable outbox: every event a [`Sender`](crate::Sender) accepts is kept on disk until
//! every endpoint it was routed to has settled it (delivered, given up into the dead letters,
//! or dropped by policy), so a crash, a kill or a deploy loses nothing and a new sender over
//! the same directory delivers the rest.
//!
//! ```no_run
//! use webhook_core::{Endpoint, Event};
//! use webhook_sender::outbox::{Durability, OutboxConfig};
//! use webhook_sender::{EndpointConfig, Sender};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sender = Sender::builder()
//!     .outbox(OutboxConfig::new("/var/lib/myapp/outbox").durability(Durability::default()))
//!     .endpoint(EndpointConfig::builder("siem", Endpoint::builder("https://siem.example/in").build()?).build()?)
//!     .build()?;
//! let event = Event::builder("evt_1", "policy").json_bytes(&br#"{"a":1}"#[..])?;
//! let receipt = sender.send(event).await?; // on disk (written to the OS) when this returns
//! # drop(receipt);
//! # Ok(()) }
//! ```
//!
//! # What it guarantees
//!
//! * **At least once, per endpoint.** An event is removed only once settled at each of its
//!   endpoints. A process killed with events in flight sends those batches again after the
//!   restart, with the **same batch id** (the `webhook-id`), so receivers deduplicate; attempt
//!   counts and retry due times are kept. Unordered, like every peer (Svix, Convoy, Outpost).
//! * **Durability levels** ([`Durability`]): [`Interval`](Durability::Interval) (the default:
//!   group commit): `send` returns once the event is in the outbox's write buffer, which is
//!   written to the operating system within 2 ms (one write for all the events of those 2 ms)
//!   and synced to the disk every interval (100 ms by default). A killed process loses at
//!   most the last 2 ms of events, a power loss at most the last interval;
//!   [`Outbox::flush`] makes everything sent so far durable at once.
//!   [`Sync`](Durability::Sync): `send` returns once an `fdatasync` covered the event
//!   (concurrent sends share one write and one sync). Without an outbox the sender keeps
//!   everything in memory.
//! * **Bounded**: [`OutboxConfig::max_bytes`] with the [`OverflowPolicy`]: `Block` (the default:
//!   `send` waits for space), `DropNewest`, `DropOldest`, each drop counted. Memory stays
//!   bounded however large the backlog: endpoints hold their queue and batcher window in
//!   memory and read the rest from disk as they catch up.
//! * **Faults**: a write error (disk full) stops intake with [`OutboxError`], after cutting the
//!   partial write, so nothing stored is damaged. A torn or corrupt tail found when opening is
//!   cut, counted and reported ([`RecoveryReport`]); the store always opens.
//! * **Dead letters** stay in the outbox with their attempt log until purged or redelivered
//!   ([`Outbox::dead_letters`], [`Outbox::redeliver`], [`Outbox::purge`]).
//!
//! # Layout
//!
//! A directory holding a `lock` (the owner's pid), `registry.json` (the endpoints, event sets
//! and paused state, so a restart resumes the same endpoints; it holds their secrets and is
//! written with mode 0600), the event log `log/` and the dead-letter log `dead/`, each a series
//! of segments of checksummed records (see the crate's `outbox/frame.rs`). Segments are
//! deleted from the oldest once nothing in them is live; an endpoint that holds an old event
//! for long (a long retry) keeps the segments after it on disk until it settles.

mod frame;
pub(crate) mod log;
mod store;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use webhook_core::Event;

pub use frame::AttemptInfo;
pub(crate) use log::Log;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use log::fuzzing::{ScannedRecord, SegmentScan, scan_segment};
pub use store::{
    Appended, BatchRecord, OutboxStore, ReadCursor, ReadOut, RestoredBatch, SettleKind, StoreFuture,
};

use crate::registry::RegistrySnapshot;
use crate::sender::OverflowPolicy;

/// How durable an event is when [`Sender::send`](crate::Sender::send) returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// Group commit: `send` returns once the event is buffered; the buffer is written to the
    /// operating system within 2 ms of its first event (a killed process loses at most those
    /// 2 ms) and synced to the disk every interval (a power loss loses at most the interval).
    /// [`Outbox::flush`] makes everything sent so far durable at once.
    Interval(Duration),
    /// Synced to the disk (`fdatasync`) before `send` returns; concurrent sends share one
    /// sync.
    Sync,
}

impl Default for Durability {
    /// [`Durability::Interval`] of 100 ms.
    fn default() -> Self {
        Self::Interval(Duration::from_millis(100))
    }
}

/// Where the outbox lives and how it behaves.
///
/// ```
/// use webhook_sender::outbox::{Durability, OutboxConfig};
/// use webhook_sender::OverflowPolicy;
/// let cfg = OutboxConfig::new("/tmp/outbox")
///     .durability(Durability::Sync)
///     .max_bytes(1 << 30)
///     .overflow(OverflowPolicy::DropOldest);
/// assert_eq!(cfg.dir().to_str(), Some("/tmp/outbox"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConfig {
    pub(crate) dir: PathBuf,
    pub(crate) durability: Durability,
    pub(crate) max_bytes: u64,
    pub(crate) overflow: OverflowPolicy,
    pub(crate) segment_bytes: u64,
}

impl OutboxConfig {
    /// An outbox in `dir` (created when missing): [`Durability::default`], 1 GiB, `Block`,
    /// 64 MiB segments.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            durability: Durability::default(),
            max_bytes: 1 << 30,
            overflow: OverflowPolicy::Block,
            segment_bytes: 64 << 20,
        }
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The durability level.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The most bytes the event log may hold on disk (at least 1 MiB).
    #[must_use]
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes.max(1 << 20);
        self
    }

    /// What `send` does when the log is at `max_bytes`: `Block` waits for space (`try_send`
    /// says `Full`), `DropNewest` drops the event being sent, `DropOldest` deletes the oldest
    /// segment. Drops are counted ([`OutboxStats::dropped`]). Under `DropOldest`, events an
    /// endpoint already holds in memory (its queue and batcher window) when their segment is
    /// dropped are still delivered, and counted as dropped too.
    #[must_use]
    pub fn overflow(mut self, policy: OverflowPolicy) -> Self {
        self.overflow = policy;
        self
    }

    /// The size at which a segment is sealed and a new one started (64 KiB to 1 GiB; space
    /// comes back a segment at a time).
    #[must_use]
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes.clamp(64 << 10, 1 << 30);
        self
    }
}

/// Errors of the outbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// Another process (or another outbox in this one) has the directory open.
    #[error("the outbox {dir} is in use by {}", pid.map_or_else(|| "another process".to_owned(), |p| format!("process {p}")))]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// The holder's pid, as it wrote it.
        pid: Option<u32>,
    },
    /// An I/O operation failed.
    #[error("outbox {op} failed on {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An earlier write failed (a full disk, say): intake stopped; what was stored is intact.
    /// Open the outbox again once the cause is fixed.
    #[error("the outbox stopped accepting events after a write failed: {message}")]
    Failed {
        /// The error's kind.
        kind: std::io::ErrorKind,
        /// The error.
        message: String,
    },
    /// A record could not be read back.
    #[error("a record in {path} is damaged")]
    Corrupt {
        /// The segment.
        path: PathBuf,
    },
    /// The registry file could not be read or written.
    #[error("the outbox registry file: {0}")]
    Registry(String),
    /// The event log is at its byte limit (redelivering more dead letters would exceed it).
    #[error("the outbox is full")]
    Full,
    /// A store other than the embedded log failed (a server that cannot be reached, say).
    #[error("the outbox's store: {0}")]
    Backend(String),
}

/// What opening the outbox found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Unsettled (event, endpoint) pairs to deliver.
    pub pending: u64,
    /// Segments of the event log.
    pub segments: usize,
    /// Bytes cut from torn or corrupt tails.
    pub cut_bytes: u64,
    /// Segments found damaged (a bad checksum, a bad header).
    pub corrupt_segments: u64,
    /// Records whose checksum held but whose content did not decode (skipped).
    pub malformed_records: u64,
    /// Events known lost to damage (gaps in the event sequence).
    pub lost_events: u64,
    /// How long opening took.
    pub took: Duration,
}

/// The outbox's counters and gauges (also exported as metrics: `webhook_outbox_backlog_events`,
/// `webhook_outbox_backlog_bytes`, `webhook_outbox_dead_letters`, `webhook_outbox_commit_seconds`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxStats {
    /// Unsettled (event, endpoint) pairs.
    pub pending: u64,
    /// The same, per endpoint.
    pub pending_by_endpoint: Vec<(String, u64)>,
    /// Bytes of the event log on disk.
    pub backlog_bytes: u64,
    /// Segments of the event log.
    pub segments: usize,
    /// Age of the oldest segment holding an unsettled event (its first event's age).
    pub oldest_pending_age: Option<Duration>,
    /// Dead letters held.
    pub dead_letters: u64,
    /// Bytes of the dead-letter log.
    pub dead_letter_bytes: u64,
    /// (event, endpoint) pairs dropped by the byte limit's policy since open.
    pub dropped: u64,
    /// Duration of the last sync.
    pub commit_latency_last: Duration,
    /// Mean duration of the syncs since open.
    pub commit_latency_mean: Duration,
    /// Syncs since open.
    pub commits: u64,
    /// The write error that stopped intake, if any.
    pub failed: Option<String>,
    /// What opening found.
    pub recovery: RecoveryReport,
}

impl OutboxStats {
    /// Empty stats (no event, no dead letter), for a store to fill in.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            pending: 0,
            pending_by_endpoint: Vec::new(),
            backlog_bytes: 0,
            segments: 0,
            oldest_pending_age: None,
            dead_letters: 0,
            dead_letter_bytes: 0,
            dropped: 0,
            commit_latency_last: Duration::ZERO,
            commit_latency_mean: Duration::ZERO,
            commits: 0,
            failed: None,
            recovery: RecoveryReport::default(),
        }
    }
}

/// A dead letter: an event given up at one endpoint, with its attempts.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DeadLetterEntry {
    /// Its id in the outbox (for [`Filter::ids`]).
    pub id: u64,
    /// The endpoint that gave it up.
    pub endpoint: String,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub subject: String,
    /// When it was given up.
    pub dead_at: SystemTime,
    /// Why.
    pub reason: String,
    /// Attempts recorded (the last 16), in [`Outbox::dead_letter`] only.
    pub attempts: Vec<AttemptInfo>,
    /// How many attempts are recorded.
    pub attempt_count: u32,
    /// The batch (its `webhook-id`), in [`Outbox::dead_letter`] only.
    pub batch_id: Option<String>,
    /// The event, in [`Outbox::dead_letter`] only.
    pub event: Option<Event>,
}

/// Which dead letters an operation applies to: all of the conditions set.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use webhook_sender::outbox::Filter;
/// let recent = Filter::all()
///     .endpoint("siem")
///     .since(SystemTime::now() - Duration::from_secs(3600));
/// # drop(recent);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    endpoint: Option<String>,
    ids: Option<Vec<u64>>,
    event_ids: Option<Vec<String>>,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
}

impl DeadLetterEntry {
    /// A summary (no attempts, batch or event), for a store to fill in.
    #[must_use]
    pub fn new(
        id: u64,
        endpoint: impl Into<String>,
        event_id: impl Into<String>,
        subject: impl Into<String>,
        dead_at: SystemTime,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            id,
            endpoint: endpoint.into(),
            event_id: event_id.into(),
            subject: subject.into(),
            dead_at,
            reason: reason.into(),
            attempts: Vec::new(),
            attempt_count: 0,
            batch_id: None,
            event: None,
        }
    }
}

impl Filter {
    /// Whether a dead letter matches (for stores other than the embedded log).
    #[must_use]
    pub fn accepts(&self, id: u64, endpoint: &str, event_id: &str, dead_at: SystemTime) -> bool {
        self.matches(id, endpoint, event_id, log::wall_ms(dead_at))
    }

    /// Every dead letter.
    #[must_use]
    pub fn all() -> Self {
        Self::default()
    }
    /// Only the endpoint named `name`.
    #[must_use]
    pub fn endpoint(mut self, name: impl Into<String>) -> Self {
        self.endpoint = Some(name.into());
        self
    }
    /// Only these dead-letter ids.
    #[must_use]
    pub fn ids(mut self, ids: impl IntoIterator<Item = u64>) -> Self {
        self.ids = Some(ids.into_iter().collect());
        self
    }
    /// Only these event ids.
    #[must_use]
    pub fn event_ids<S: Into<String>>(mut self, ids: impl IntoIterator<Item = S>) -> Self {
        self.event_ids = Some(ids.into_iter().map(Into::into).collect());
        self
    }
    /// Only those given up at or after `t`.
    #[must_use]
    pub fn since(mut self, t: SystemTime) -> Self {
        self.since = Some(t);
        self
    }
    /// Only those given up before `t`.
    #[must_use]
    pub fn until(mut self, t: SystemTime) -> Self {
        self.until = Some(t);
        self
    }

    pub(crate) fn matches(&self, id: u64, endpoint: &str, event_id: &str, dead_ms: u64) -> bool {
        self.endpoint.as_deref().is_none_or(|e| e == endpoint)
            && self.ids.as_ref().is_none_or(|v| v.contains(&id))
            && self
                .event_ids
                .as_ref()
                .is_none_or(|v| v.iter().any(|e| e == event_id))
            && self.since.is_none_or(|t| dead_ms >= log::wall_ms(t))
            && self.until.is_none_or(|t| dead_ms < log::wall_ms(t))
    }
}

/// Tells a running sender that events were appended for an endpoint (a redelivery).
pub(crate) type Appended_ = Arc<dyn Fn(&str, u64) + Send + Sync>;

/// An open outbox: status, dead letters and redelivery. A [`Sender`](crate::Sender) built with
/// one exposes it ([`Sender::outbox`](crate::Sender::outbox)); [`Outbox::open`] opens the
/// embedded one without a sender (the CLI's `webhook outbox`), and then no sender may use it
/// meanwhile. Any [`OutboxStore`] is one with [`Outbox::from_store`]. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    pub(crate) store: Arc<dyn OutboxStore>,
    pub(crate) appended: Arc<Mutex<Option<Appended_>>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("location", &self.store.location())
            .finish()
    }
}

impl Outbox {
    /// Opens (creating) the outbox, recovering what a crash left.
    ///
    /// ```
    /// use webhook_sender::outbox::{Outbox, OutboxConfig, OutboxError};
    /// let dir = std::env::temp_dir().join(format!("outbox-doc-{}", std::process::id()));
    /// let outbox = Outbox::open(OutboxConfig::new(&dir))?;
    /// assert_eq!(outbox.stats().pending, 0);
    /// // A second open of the same directory is refused while the first is open.
    /// assert!(matches!(Outbox::open(OutboxConfig::new(&dir)), Err(OutboxError::Locked { .. })));
    /// drop(outbox);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), OutboxError>(())
    /// ```
    ///
    /// # Errors
    /// [`OutboxError::Locked`] when another process has it open; [`OutboxError::Io`] when the
    /// directory cannot be used.
    pub fn open(config: OutboxConfig) -> Result<Self, OutboxError> {
        let log: Arc<dyn OutboxStore> = Log::open(config)?;
        Ok(Self::from_store(log))
    }

    /// An outbox over any store (a backend other than the embedded log).
    #[must_use]
    pub fn from_store(store: Arc<dyn OutboxStore>) -> Self {
        Self {
            store,
            appended: Arc::new(Mutex::new(None)),
        }
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> Arc<dyn OutboxStore> {
        self.store.clone()
    }

    /// Where it keeps events (the embedded log: its directory).
    #[must_use]
    pub fn location(&self) -> String {
        self.store.location()
    }

    /// Counters and gauges.
    #[must_use]
    pub fn stats(&self) -> OutboxStats {
        self.store.stats(SystemTime::now())
    }

    /// What opening found.
    #[must_use]
    pub fn recovery(&self) -> RecoveryReport {
        self.store.recovery()
    }

    /// Dead letters matching `filter`, oldest first, at most `limit` (summaries: use
    /// [`dead_letter`](Self::dead_letter) for the event and its attempts).
    #[must_use]
    pub fn dead_letters(&self, filter: &Filter, limit: usize) -> Vec<DeadLetterEntry> {
        self.store.dead_letters(filter, limit)
    }

    /// One dead letter with its event and attempt log.
    ///
    /// # Errors
    /// [`OutboxError::Io`] or [`OutboxError::Corrupt`] when it cannot be read.
    pub fn dead_letter(&self, id: u64) -> Result<Option<DeadLetterEntry>, OutboxError> {
        self.store.dead_letter_entry(id)
    }

    /// The attempt log of an event still waiting for delivery: `(endpoint, batch id, attempts)`
    /// per endpoint that tried it.
    #[must_use]
    pub fn attempts(&self, event_id: &str) -> Vec<(String, String, Vec<AttemptInfo>)> {
        self.store
            .attempts_of(event_id)
            .into_iter()
            .map(|(e, b, a)| (e.to_string(), b.to_string(), a))
            .collect()
    }

    /// Delivers the matching dead letters again: each is appended to the event log for its
    /// endpoint (a running sender picks it up at once; otherwise the next sender over this
    /// outbox does) and leaves the dead letters. Returns how many.
    ///
    /// # Errors
    /// [`OutboxError::Full`] when the log's byte limit is reached (those redelivered so far
    /// stay redelivered), or an I/O error.
    pub fn redeliver(&self, filter: &Filter) -> Result<usize, OutboxError> {
        let ids: Vec<u64> = self
            .store
            .dead_letters(filter, usize::MAX)
            .iter()
            .map(|d| d.id)
            .collect();
        let mut done = 0;
        let notify = self
            .appended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for id in ids {
            let Some(d) = self.store.dead_letter_entry(id)? else {
                continue;
            };
            let Some(event) = d.event else { continue };
            match self
                .store
                .append(&[&d.endpoint], &event, SystemTime::now())?
            {
                Appended::Written { seq, .. } => {
                    self.store.remove_dead(&[id])?;
                    if let Some(n) = &notify {
                        n(&d.endpoint, seq);
                    }
                    done += 1;
                }
                Appended::Full | Appended::Dropped => return Err(OutboxError::Full),
            }
        }
        Ok(done)
    }

    /// Stores `event` for the endpoints named in `endpoints` without a sender (a producer
    /// that only enqueues; the next sender over this outbox delivers it). Returns its seq.
    /// Buffered like a sender's events (see [`Durability`]); durable once
    /// [`flush`](Self::flush) returns.
    ///
    /// ```
    /// use webhook_core::Event;
    /// use webhook_sender::outbox::{Outbox, OutboxConfig};
    /// let dir = std::env::temp_dir().join(format!("outbox-append-doc-{}", std::process::id()));
    /// let outbox = Outbox::open(OutboxConfig::new(&dir))?;
    /// let event = Event::builder("evt_1", "policy").json_bytes(&br#"{"a":1}"#[..])?;
    /// outbox.append(&["siem"], &event)?;
    /// outbox.flush()?;
    /// assert_eq!(outbox.stats().pending, 1);
    /// # drop(outbox);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`OutboxError::Full`] at the byte limit (whatever the overflow policy: nothing waits
    /// here), or the write error that stopped intake.
    pub fn append(&self, endpoints: &[&str], event: &Event) -> Result<u64, OutboxError> {
        match self.store.append(endpoints, event, SystemTime::now())? {
            Appended::Written { seq, .. } => {
                let notify = self
                    .appended
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                if let Some(n) = notify {
                    for e in endpoints {
                        n(e, seq);
                    }
                }
                Ok(seq)
            }
            Appended::Full | Appended::Dropped => Err(OutboxError::Full),
        }
    }

    /// Deletes the matching dead letters for good. Returns how many.
    ///
    /// # Errors
    /// An I/O error writing the removal.
    pub fn purge(&self, filter: &Filter) -> Result<usize, OutboxError> {
        let ids: Vec<u64> = self
            .store
            .dead_letters(filter, usize::MAX)
            .iter()
            .map(|d| d.id)
            .collect();
        self.store.remove_dead(&ids)
    }

    /// The registry saved with the outbox (by the sender that last used it), if any.
    ///
    /// # Errors
    /// [`OutboxError::Registry`] when it exists but cannot be read.
    pub fn registry(&self) -> Result<Option<RegistrySnapshot>, OutboxError> {
        self.store.load_registry()
    }

    /// Saves the registry.
    pub(crate) fn save_registry(&self, snapshot: &RegistrySnapshot) -> Result<(), OutboxError> {
        self.store.save_registry(snapshot)
    }

    /// Writes what is buffered to the operating system, without syncing: everything sent or
    /// appended so far survives a killed process (not a power loss) once this returns. One
    /// `write` call; cheap next to [`flush`](Self::flush).
    ///
    /// # Errors
    /// The write error that stopped intake.
    pub fn write_out(&self) -> Result<(), OutboxError> {
        self.store.write_out()
    }

    /// Writes out what is buffered and syncs it (`fdatasync`): everything sent or appended
    /// so far survives a crash or a power loss once this returns. Blocks for the sync.
    ///
    /// # Errors
    /// An I/O error.
    pub fn flush(&self) -> Result<(), OutboxError> {
        self.store.sync_now()
    }
}
