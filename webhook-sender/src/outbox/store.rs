//! The store trait behind the outbox: what a [`Sender`](crate::Sender) needs of a backend that
//! keeps events until they are settled. The embedded segmented log implements it
//! ([`Outbox::open`](super::Outbox::open)); other backends (a shared queue on a server) plug in
//! with [`Outbox::from_store`](super::Outbox::from_store).
//!
//! The contract is on [`OutboxStore`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use webhook_core::Event;

pub use super::frame::SettleKind;
pub use super::log::{Appended, BatchRecord, ReadCursor, ReadOut, RestoredBatch};
use super::{
    AttemptInfo, DeadLetterEntry, Durability, Filter, OutboxError, OutboxStats, RecoveryReport,
};
use crate::registry::RegistrySnapshot;

/// A future a store returns (object safe).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A backend of the outbox: what a sender needs of a store that keeps events until they are
/// settled.
///
/// # Contract
///
/// * **Intake**: [`append`](OutboxStore::append) stores one event with the names of the
///   endpoints it was routed to and gives it a sequence number (`seq`), increasing in the order
///   of appends; it is as durable as [`durability`](OutboxStore::durability) says once
///   [`synced`](OutboxStore::synced) resolves for its ticket (`Durability::Sync`), or at once
///   otherwise. At the byte limit it answers [`Appended::Full`] (the sender waits for
///   [`space`](OutboxStore::space)) or [`Appended::Dropped`], as its overflow policy says.
/// * **Delivery**: a sender hands events to an endpoint from memory; what it could not (a
///   full queue, a restart) it [`read`](OutboxStore::read)s back for that endpoint, in seq
///   order, never past `until`. Before a batch's first request it records the batch
///   ([`batch`](OutboxStore::batch) with its seqs and event ids), after each failed attempt
///   the attempt and the next due time, and when the batch ends it
///   [`settle`](OutboxStore::settle)s its seqs at the endpoint (dead letters are written
///   first with [`dead_letter`](OutboxStore::dead_letter)). An event is removed once settled
///   at every endpoint it was routed to. After a restart, `read` returns the batches that were
///   formed, with their ids, attempts and due times, as [`RestoredBatch`]es.
/// * **Never lost**: whatever happens between two calls (a crash), an appended event is either
///   read back for each of its endpoints not settled, or was settled. Reads may repeat an
///   event whose settlement was not stored (at least once).
///
/// ```
/// use std::sync::Arc;
/// use webhook_sender::outbox::{Outbox, OutboxConfig, OutboxStore};
/// // The embedded log is one: open it, or wrap any store as an `Outbox`.
/// let dir = std::env::temp_dir().join(format!("outbox-store-doc-{}", std::process::id()));
/// let outbox = Outbox::open(OutboxConfig::new(&dir))?;
/// let store: Arc<dyn OutboxStore> = outbox.store();
/// assert_eq!(store.stats(std::time::SystemTime::now()).pending, 0);
/// let same = Outbox::from_store(store);
/// # drop((outbox, same));
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), webhook_sender::outbox::OutboxError>(())
/// ```
pub trait OutboxStore: Send + Sync + std::fmt::Debug {
    /// Where it keeps events (a directory, a server), for messages.
    fn location(&self) -> String;

    /// How durable an appended event is.
    fn durability(&self) -> Durability;

    /// Stores `event` for `endpoints`.
    ///
    /// # Errors
    /// The error that stopped intake (a failed write).
    fn append(
        &self,
        endpoints: &[&str],
        event: &Event,
        at: SystemTime,
    ) -> Result<Appended, OutboxError>;

    /// [`append`](OutboxStore::append), then [`write_out`](OutboxStore::write_out) of
    /// everything buffered: the event survives a killed process when this returns (a receiver's
    /// inbox answers only then). A store may do both at once (the embedded log writes out
    /// without waking its writer thread).
    ///
    /// # Errors
    /// The error that stopped intake, or the write error.
    fn append_written(
        &self,
        endpoints: &[&str],
        event: &Event,
        at: SystemTime,
    ) -> Result<Appended, OutboxError> {
        let appended = self.append(endpoints, event, at)?;
        if let Appended::Written { .. } = appended {
            self.write_out()?;
        }
        Ok(appended)
    }

    /// Resolves once the append with this ticket is synced.
    fn synced(&self, ticket: u64) -> StoreFuture<'_, Result<(), OutboxError>>;

    /// Syncs everything appended so far, blocking.
    ///
    /// # Errors
    /// The write or sync error.
    fn sync_now(&self) -> Result<(), OutboxError>;

    /// Hands what is buffered to the operating system (survives a killed process).
    ///
    /// # Errors
    /// The write error.
    fn write_out(&self) -> Result<(), OutboxError>;

    /// Notified when space is freed (a sender waiting at the byte limit looks again).
    fn space(&self) -> &tokio::sync::Notify;

    /// Up to `max` unsettled events for `endpoint` past `cursor` (none past seq `until`), and
    /// the restored batches they complete.
    ///
    /// # Errors
    /// A read error (the sender tries again later).
    fn read(
        &self,
        endpoint: &str,
        cursor: &mut ReadCursor,
        max: usize,
        until: u64,
    ) -> Result<ReadOut, OutboxError>;

    /// Records a batch formed (`record.first`) or an attempt that failed.
    fn batch(&self, endpoint: &str, batch_id: &str, record: BatchRecord<'_>);

    /// The attempts recorded for a batch.
    fn batch_log(&self, endpoint: &str, batch_id: &str) -> Vec<AttemptInfo>;

    /// Records that `seqs` settled at `endpoint`.
    fn settle(&self, endpoint: &str, how: SettleKind, batch: Option<&str>, seqs: &[u64]);

    /// Keeps a given-up event as a dead letter; returns its id.
    ///
    /// # Errors
    /// The write error (the event then stays unsettled: delivered again after a restart).
    fn dead_letter(
        &self,
        endpoint: &str,
        event: &Event,
        reason: &str,
        batch: Option<&str>,
        attempts: &[AttemptInfo],
        at: SystemTime,
    ) -> Result<u64, OutboxError>;

    /// Endpoints with unsettled events, and how many.
    fn pending_endpoints(&self) -> Vec<(Arc<str>, u64)>;

    /// The oldest seq still held (where a resuming reader starts).
    fn first_seq(&self) -> u64;

    /// One past the newest seq appended.
    fn next_seq(&self) -> u64;

    /// Counters and gauges.
    fn stats(&self, now: SystemTime) -> OutboxStats;

    /// What opening found.
    fn recovery(&self) -> RecoveryReport;

    /// Dead letters matching `filter`, oldest first (summaries).
    fn dead_letters(&self, filter: &Filter, limit: usize) -> Vec<DeadLetterEntry>;

    /// One dead letter with its event and attempts.
    ///
    /// # Errors
    /// A read error, or a damaged record.
    fn dead_letter_entry(&self, id: u64) -> Result<Option<DeadLetterEntry>, OutboxError>;

    /// Removes dead letters; returns how many were there.
    ///
    /// # Errors
    /// The write error.
    fn remove_dead(&self, ids: &[u64]) -> Result<usize, OutboxError>;

    /// The attempt log of the pending batches holding `event_id`.
    fn attempts_of(&self, event_id: &str) -> Vec<(Arc<str>, Box<str>, Vec<AttemptInfo>)>;

    /// The registry saved with the store.
    ///
    /// # Errors
    /// When it exists but cannot be read.
    fn load_registry(&self) -> Result<Option<RegistrySnapshot>, OutboxError>;

    /// Saves the registry.
    ///
    /// # Errors
    /// When it cannot be written.
    fn save_registry(&self, snapshot: &RegistrySnapshot) -> Result<(), OutboxError>;

    /// Whether the store is shared by several processes (a queue on a server, such as the
    /// Redis Streams store of the `webhook-redis` crate): events may be appended by any of
    /// them, and the events of an endpoint are handed out among every process delivering to
    /// it. A sender over a shared store does not queue the events it sends in memory (the
    /// process that reads one delivers it; the receipt resolves as
    /// [`Outcome::Enqueued`](crate::Outcome::Enqueued)); its endpoints read the store
    /// continuously ([`feed`](OutboxStore::feed)). `false` by default (the embedded log: one
    /// process owns it).
    fn is_shared(&self) -> bool {
        false
    }

    /// Whether the store keeps a batch waiting for a retry itself: after recording a failed
    /// attempt with [`batch`](OutboxStore::batch) (its attempts and due time), the sender
    /// forgets the batch, and the store hands it back through [`read`](OutboxStore::read) as
    /// a [`RestoredBatch`] once it is due, to this process or another. A shared queue does
    /// this so that retries are scheduled on its server: they survive the process that made
    /// the attempt, and no process holds them in memory while they wait. The store then finds
    /// the batch's events from the seqs of its [`BatchRecord::formed`] record. `false` by
    /// default.
    fn schedules_retries(&self) -> bool {
        false
    }

    /// For a shared store: starts handing out the events of `endpoint` to this process (the
    /// first call) and returns what is notified when more may be readable with
    /// [`read`](OutboxStore::read) (a shared store's `read` ignores the cursor's place and
    /// `until`: it returns what was handed to this process and not read yet). `None` by
    /// default.
    fn feed(&self, _endpoint: &str) -> Option<Arc<tokio::sync::Notify>> {
        None
    }
}
