//! A local outbox in front of a [`RedisQueue`]: a producer appends to the embedded outbox on
//! disk, and a forwarder moves what it holds into Redis, settling each event locally only once
//! Redis has it. A Redis outage then means events buffered on disk (up to the outbox's byte
//! limit), not errors; a producer killed meanwhile forwards the rest when opened again (at
//! least once: an event forwarded just before a kill may be forwarded twice).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use webhook_core::Event;
use webhook_sender::outbox::{
    Outbox, OutboxConfig, OutboxError, OutboxStore, ReadCursor, SettleKind,
};

use crate::{RedisQueue, RedisQueueConfig};

/// The name events are kept under in the local outbox.
const SPOOL: &str = "redis";

/// A Redis queue with a local outbox in front (see the module doc).
///
/// ```no_run
/// use std::time::Duration;
/// use webhook_core::Event;
/// use webhook_redis::{RedisQueueConfig, SpooledQueue};
/// use webhook_sender::outbox::OutboxConfig;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let spool = SpooledQueue::open(
///     OutboxConfig::new("/var/lib/app/spool"),
///     RedisQueueConfig::new("redis://127.0.0.1:6379", "orders"),
/// )?;
/// let event = Event::builder("evt_1", "order.paid").json_bytes(&br#"{"a":1}"#[..])?;
/// spool.enqueue(&event)?; // on disk: Redis may be down
/// let left = spool.drain(Duration::from_secs(10)).await; // forwarded while Redis answers
/// spool.close().await;
/// # drop(left);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SpooledQueue {
    local: Outbox,
    forwarded: Arc<AtomicU64>,
    stop: tokio::sync::watch::Sender<bool>,
    task: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl SpooledQueue {
    /// Opens (creating) the local outbox and starts the forwarder, which connects to Redis in
    /// the background and keeps trying while it cannot. Call inside a tokio runtime.
    ///
    /// # Errors
    /// The local outbox's ([`OutboxError::Locked`] when another process has it open).
    pub fn open(local: OutboxConfig, queue: RedisQueueConfig) -> Result<Self, OutboxError> {
        let local = Outbox::open(local)?;
        let forwarded = Arc::new(AtomicU64::new(0));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(forward(local.store(), queue, forwarded.clone(), stop_rx));
        Ok(Self {
            local,
            forwarded,
            stop,
            task: Arc::new(std::sync::Mutex::new(Some(task))),
        })
    }

    /// Appends `event` to the local outbox (for every group reading the queue), as durable as
    /// the outbox's `Durability` says.
    ///
    /// # Errors
    /// [`OutboxError::Full`] at the outbox's byte limit, or the write error that stopped it.
    pub fn enqueue(&self, event: &Event) -> Result<(), OutboxError> {
        self.local.append(&[SPOOL], event).map(|_| ())
    }

    /// Events held locally, not yet in Redis.
    #[must_use]
    pub fn spooled(&self) -> u64 {
        self.local.stats().pending
    }

    /// Events forwarded to Redis by this process.
    #[must_use]
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }

    /// Waits until everything spooled is in Redis, or `timeout`; returns what is left.
    pub async fn drain(&self, timeout: Duration) -> u64 {
        let _ = self.local.write_out();
        let start = Instant::now();
        loop {
            let left = self.spooled();
            if left == 0 || start.elapsed() >= timeout {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the forwarder and syncs the local outbox (what is left is forwarded by the next
    /// `open` of the same directory).
    pub async fn close(&self) {
        let _ = self.stop.send(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = task {
            let _ = t.await;
        }
        if let Err(e) = self.local.flush() {
            tracing::error!(error = %e, "syncing the spool failed");
        }
    }
}

/// Moves what the local outbox holds into Redis, settling it locally once Redis has it.
async fn forward(
    store: Arc<dyn OutboxStore>,
    cfg: RedisQueueConfig,
    forwarded: Arc<AtomicU64>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let queue = loop {
        let connected = tokio::select! {
            r = RedisQueue::connect(cfg.clone()) => r,
            _ = stop.changed() => return,
        };
        match connected {
            Ok(q) => break q,
            Err(e) => {
                tracing::warn!(error = %e, "the spool cannot reach redis yet; events stay on disk");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    };
    let mut cursor = ReadCursor::at(store.first_seq());
    loop {
        if *stop.borrow() {
            break;
        }
        let until = store.next_seq().saturating_sub(1);
        let out = match store.read(SPOOL, &mut cursor, 4096, until) {
            Ok(out) => out,
            Err(e) => {
                tracing::error!(error = %e, "reading the spool failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut events = out.events;
        for b in out.batches {
            events.extend(b.events);
        }
        if events.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
                _ = stop.changed() => break,
            }
            continue;
        }
        let mut seqs = Vec::with_capacity(events.len());
        for (seq, event) in &events {
            loop {
                match queue.enqueue_nowait(event) {
                    Ok(()) => break,
                    Err(OutboxError::Full) => {
                        // The queue's length limit: wait for room (what is spooled waits too).
                        let space = OutboxStore::space(&queue).notified();
                        let _ = tokio::time::timeout(Duration::from_millis(500), space).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "forwarding from the spool failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            seqs.push(*seq);
        }
        // Waits through a Redis outage (the writer retries): settled only once Redis has them.
        // Stopped meanwhile, they stay spooled (and may be forwarded twice: at least once).
        let flushed = tokio::select! {
            r = queue.flush() => r.is_ok(),
            _ = stop.changed() => false,
        };
        if flushed {
            // Counted before they leave the spool: `drain` may return as soon as the spool is
            // empty, and the caller then reads `forwarded`.
            forwarded.fetch_add(seqs.len() as u64, Ordering::Relaxed);
            store.settle(SPOOL, SettleKind::Delivered, None, &seqs);
        }
    }
    queue.close().await;
}
