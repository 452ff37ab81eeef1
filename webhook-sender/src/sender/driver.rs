//! The driver task of one endpoint: the thin loop around the core [`Delivery`] machine
//! (STYLE item 4). It decides nothing; the machine does.
//!
//! ```text
//! loop {
//!     wait for: a finished request | events in the intake queue | machine.poll_timeout()
//!               | the shutdown signal
//!     now = clock.now()                          // the only clock read feeding the machine
//!     feed:  handle_response(finished), begin_shutdown, handle_timeout(now), push(queued)
//!     send:  poll_transmit(now) -> spawn transport.send (tokens: refresh once on 401)
//!     publish: poll_event -> receipts, lifecycle events, dead letters, counters, metrics
//! }
//! ```

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, watch};
use tokio::task::{Id as TaskId, JoinSet};
use tracing::Instrument as _;
use webhook_core::{
    AttemptError, AttemptId, AttemptResult, BatchId, Delivery, Event, Transmit, UndeliveredStage,
};

use crate::outbox::{ReadCursor, RestoredBatch};

use super::endpoint::EndpointConfig;
use super::lifecycle::{DeadLetter, LifecycleEvent, Shared, Undelivered};
use super::queue::{Closed, Drivers, Entry};
use super::receipt::{FailureReason, Outcome, Slot};
use super::registry::RemovePolicy;
use crate::token::AuthorizedSendError;
use crate::transport::{RequestTimeout, Response, ResponseFuture, SharedTransport, Transport};

/// Events moved from the intake queue per loop iteration.
const DRAIN_CHUNK: usize = 1024;

/// A callback receiving given-up events.
pub(crate) type DeadLetterHook = Arc<dyn Fn(DeadLetter) + Send + Sync>;

/// The shutdown signal: `None` while running, `Some(deadline)` once shutdown started
/// (`Some(None)`: no deadline, deliver everything).
pub(crate) type ShutdownSignal = watch::Receiver<Option<Option<tokio::time::Instant>>>;

/// A random 64-bit value (std's per-process random hasher keys; not cryptographic).
pub(crate) fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    h.finish()
}

/// What every driver of one sender shares.
pub(crate) struct Common {
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) lifecycle: broadcast::Sender<LifecycleEvent>,
    pub(crate) dead_letter: Option<DeadLetterHook>,
    pub(crate) shutdown: ShutdownSignal,
    pub(crate) drivers: Arc<Drivers>,
    /// What drivers ended with undelivered (collected by `Sender::shutdown`).
    pub(crate) undelivered: Mutex<Vec<Undelivered>>,
    /// How long a driver stays idle before it parks.
    pub(crate) park_after: Duration,
    /// The durable outbox, when the sender has one.
    pub(crate) outbox: Option<crate::outbox::Outbox>,
}

/// How given-up events leave the outbox.
#[derive(Debug)]
pub(crate) enum GaveUpAs<'a> {
    /// Into the dead letters, with the reason and the last attempt.
    Dead {
        reason: &'a FailureReason,
        last: Option<crate::outbox::AttemptInfo>,
    },
    /// Dropped by policy: no dead letter.
    Dropped,
}

impl Common {
    /// Moves given-up events into the outbox's dead letters (or drops them), then settles
    /// them there. Events without a seq (not in the outbox) are skipped.
    pub(crate) fn outbox_gave_up(
        &self,
        endpoint: &str,
        batch: Option<&BatchId>,
        events: &[Event],
        seqs: &[u64],
        how: GaveUpAs<'_>,
    ) {
        let Some(outbox) = &self.outbox else { return };
        let log = &outbox.store;
        let batch = batch.map(BatchId::as_str);
        let mut settled = Vec::with_capacity(seqs.len());
        match how {
            GaveUpAs::Dead { reason, last } => {
                let mut attempts = batch
                    .map(|b| log.batch_log(endpoint, b))
                    .unwrap_or_default();
                attempts.extend(last);
                let reason = reason.to_string();
                let wall = SystemTime::now();
                for (event, &seq) in events.iter().zip(seqs) {
                    if seq == 0 {
                        continue;
                    }
                    match log.dead_letter(endpoint, event, &reason, batch, &attempts, wall) {
                        Ok(_) => settled.push(seq),
                        // Left unsettled: delivered again after a restart rather than lost.
                        Err(e) => {
                            tracing::error!(error = %e, "dead letter not written to the outbox")
                        }
                    }
                }
                log.settle(
                    endpoint,
                    crate::outbox::SettleKind::DeadLettered,
                    batch,
                    &settled,
                );
            }
            GaveUpAs::Dropped => {
                settled.extend(seqs.iter().copied().filter(|&q| q != 0));
                log.settle(
                    endpoint,
                    crate::outbox::SettleKind::Dropped,
                    batch,
                    &settled,
                );
            }
        }
    }
}

impl std::fmt::Debug for Common {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Common")
            .field("drivers", &self.drivers)
            .field("park_after", &self.park_after)
            .finish_non_exhaustive()
    }
}

/// Spawns the driver of `shared` (the caller won the queue's `ensure_driver` or an offer's
/// `Spawn`: it is counted as running already).
pub(crate) fn spawn(common: &Arc<Common>, shared: &Arc<Shared>) {
    let (cfg, transport) = {
        let p = shared.published();
        (p.cfg.clone(), p.transport.clone())
    };
    let driver = Driver {
        common: common.clone(),
        shared: shared.clone(),
        cfg,
        transport,
        revision: None,
        removal: None,
        shutdown: common.shutdown.clone(),
        cursor: None,
        answers: HashMap::new(),
        feed: None,
    };
    common.runtime.spawn(driver.run());
}

/// One endpoint's driver task; started on demand, parked when idle.
pub(crate) struct Driver {
    pub(crate) common: Arc<Common>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) cfg: Arc<EndpointConfig>,
    pub(crate) transport: SharedTransport,
    /// The configuration revision the machine runs (`None`: not built yet).
    revision: Option<u64>,
    /// The removal applied to the machine.
    pub(crate) removal: Option<RemovePolicy>,
    shutdown: ShutdownSignal,
    /// The outbox read position while catching up, with the queue's spill epoch it serves.
    cursor: Option<(u64, ReadCursor)>,
    /// The last answer per batch (status, latency), for the outbox's attempt log.
    pub(crate) answers: HashMap<BatchId, (Option<u16>, Duration)>,
    /// Over a shared store: what it notifies when more may be readable (`None` once shutdown
    /// began: nothing more is read).
    feed: Option<Arc<tokio::sync::Notify>>,
}

/// What a request task returns.
struct Finished {
    result: Result<Response, AttemptError>,
    latency: Duration,
}

/// The one place the driver reads time: monotonic (tokio's clock, pausable in tests) and
/// wall-clock (signing timestamps, HTTP-date `Retry-After`).
fn now() -> (Instant, SystemTime) {
    (tokio::time::Instant::now().into_std(), SystemTime::now())
}

/// Ends the driver's accounting however the task ends (a panic included).
struct Running {
    /// Released before the driver counts as ended, so that once `shutdown` returns nothing
    /// of the sender (its outbox's directory lock included) is held by a driver.
    common: Option<Arc<Common>>,
    shared: Arc<Shared>,
    parked: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.parked {
            self.shared.queue.driver_ended();
            // A removal waits for this, however the driver ended (deadline, panic).
            let mut p = self.shared.published();
            if p.removal.is_some() && !p.retired {
                p.retired = true;
                drop(p);
                self.shared.retired.notify_waiters();
            }
        }
        if let Some(common) = self.common.take() {
            let drivers = Arc::clone(&common.drivers);
            drop(common);
            drivers.ended();
        }
    }
}

/// How a run ended.
enum End {
    /// Parked while idle; a later event starts a new driver.
    Parked,
    /// Shutdown, the last handle dropped, or the endpoint removed: for good.
    Finished,
}

impl Driver {
    /// Runs until the endpoint is idle for the park delay, shutdown, or its removal is
    /// settled. What could not be delivered goes to the sender's shutdown report.
    async fn run(self) {
        let span = tracing::info_span!("webhook_endpoint", endpoint = %self.shared.name);
        let mut running = Running {
            common: Some(self.common.clone()),
            shared: self.shared.clone(),
            parked: false,
        };
        let (end, out) = self.run_inner().instrument(span).await;
        if !out.is_empty()
            && let Some(common) = &running.common
        {
            common
                .undelivered
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(out);
        }
        running.parked = matches!(end, End::Parked);
    }

    /// The machine a parked driver kept, or a new one.
    fn machine(&mut self) -> Option<Box<Delivery<Slot>>> {
        let parked = self
            .shared
            .parked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((machine, revision)) = parked {
            self.revision = Some(revision);
            return Some(machine);
        }
        let built = self
            .cfg
            .delivery()
            .jitter_seed(self.cfg.jitter_seed.unwrap_or_else(random_u64))
            .run_id(random_u64())
            .build::<Slot>();
        match built {
            Ok(m) => Some(Box::new(m)),
            Err(err) => {
                // `EndpointConfig::build` validated the same settings; unreachable in practice.
                tracing::error!(error = %err, "endpoint configuration refused by the delivery machine");
                None
            }
        }
    }

    /// Applies what the registry changed: configuration, re-enable, pause, removal.
    fn apply_control(&mut self, machine: &mut Delivery<Slot>, now: Instant) {
        let (update, enable, paused, removal) = {
            let mut p = self.shared.published();
            let update = (self.revision != Some(p.revision)).then(|| {
                self.cfg = p.cfg.clone();
                self.transport = p.transport.clone();
                p.revision
            });
            let enable = std::mem::take(&mut p.enable_requested);
            (update, enable, p.paused, p.removal)
        };
        if let Some(revision) = update {
            // A machine built from the current configuration has nothing to update.
            if self.revision.is_some() {
                let settings = self
                    .cfg
                    .delivery()
                    .jitter_seed(random_u64())
                    .run_id(random_u64());
                if let Err(err) = machine.update(settings, now) {
                    tracing::error!(error = %err, "endpoint update refused by the delivery machine");
                }
                tracing::info!(revision, "endpoint configuration updated");
            }
            self.revision = Some(revision);
        }
        if enable {
            machine.enable(now);
            tracing::debug!("endpoint re-enabled: health and circuit breaker reset");
        }
        match (self.removal, removal) {
            (None, Some(policy)) => {
                self.removal = Some(policy);
                match policy {
                    RemovePolicy::Deliver => {
                        machine.set_paused(false);
                        machine.begin_shutdown(None);
                    }
                    _ => machine.retire(now),
                }
            }
            (None, None) => machine.set_paused(paused),
            _ => {}
        }
    }

    async fn run_inner(mut self) -> (End, Vec<Undelivered>) {
        let mut out = Vec::new();
        let Some(mut machine) = self.machine() else {
            return (End::Finished, out);
        };
        let mut intake: VecDeque<Entry> = VecDeque::new();
        let mut tasks: JoinSet<Finished> = JoinSet::new();
        let mut attempts: HashMap<TaskId, (AttemptId, BatchId)> = HashMap::new();
        let mut shutting_down = false;
        let mut shutdown_begun = false;
        let mut deadline = None;
        let mut finished: Vec<(TaskId, Option<Finished>)> = Vec::new();
        let mut control_seen = None;
        let mut idle_since: Option<tokio::time::Instant> = None;
        let mut first = true;
        self.feed = self
            .common
            .outbox
            .as_ref()
            .and_then(|o| o.store.feed(&self.shared.name));
        // Shutdown may have begun before this driver started.
        if self.shutdown.has_changed().is_err() || self.shutdown.borrow().is_some() {
            shutting_down = true;
            deadline = self.shutdown.borrow().flatten();
        }

        loop {
            // ---- wait ------------------------------------------------------------------
            let wake = machine.poll_timeout().map(tokio::time::Instant::from_std);
            let park_at = idle_since.map(|t| t + self.common.park_after);
            let feed = self.feed.clone();
            tokio::select! {
                biased;
                // A new driver runs a first round at once: it was spawned for work in hand.
                () = std::future::ready(()), if first => {}
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    finished.push(match done {
                        Ok((id, r)) => (id, Some(r)),
                        Err(e) => (e.id(), None),
                    });
                }
                changed = self.shutdown.changed(), if !shutting_down => {
                    shutting_down = true;
                    // `Err`: every `Sender` handle is gone: deliver what is pending, no deadline.
                    if changed.is_ok() {
                        deadline = self.shutdown.borrow().flatten();
                    }
                }
                () = self.shared.queue.readable.notified(), if intake.is_empty() => {}
                () = notified_opt(feed.as_deref()), if intake.is_empty() && feed.is_some() => {}
                () = self.shared.controlled.notified() => {}
                () = sleep_until_opt(wake), if wake.is_some() => {}
                () = sleep_until_opt(park_at), if park_at.is_some() => {}
            }
            first = false;
            while let Some(done) = tasks.try_join_next_with_id() {
                finished.push(match done {
                    Ok((id, r)) => (id, Some(r)),
                    Err(e) => (e.id(), None),
                });
            }

            // ---- now: the only clock read ----------------------------------------------
            let (now, wall) = now();

            // ---- feed the machine ------------------------------------------------------
            let control = self.shared.control.load(Ordering::Acquire);
            if control_seen != Some(control) {
                control_seen = Some(control);
                self.apply_control(&mut machine, now);
            }
            for (task, result) in finished.drain(..) {
                let Some((attempt, batch)) = attempts.remove(&task) else {
                    continue;
                };
                let result = match result {
                    Some(r) => {
                        self.shared.metrics.latency.record(r.latency.as_secs_f64());
                        if self.common.outbox.is_some() {
                            let status = r.result.as_ref().ok().map(|r| r.status().as_u16());
                            self.answers.insert(batch, (status, r.latency));
                        }
                        r.result
                    }
                    None => {
                        tracing::error!(%attempt, "delivery task panicked; retrying the batch");
                        Err(AttemptError::Connect)
                    }
                };
                let answer = match &result {
                    Ok(resp) => AttemptResult::Response {
                        status: resp.status(),
                        headers: resp.headers(),
                    },
                    Err(e) => AttemptResult::Failed(e.clone()),
                };
                machine.handle_response(attempt, answer, now, wall);
            }
            if shutting_down && !shutdown_begun {
                // Once: closing the queue wakes its readers (this loop among them), so doing
                // it on every round would spin the loop without yielding, and an attempt
                // spawned meanwhile (in this worker's LIFO slot) would never run.
                shutdown_begun = true;
                // A shared store keeps what was not read for the other processes.
                self.feed = None;
                self.shared.queue.close(Closed::Shutdown, false);
                machine.begin_shutdown(deadline.map(tokio::time::Instant::into_std));
            }
            machine.handle_timeout(now);
            self.publish(&mut machine, &mut intake, &mut out, wall);

            // ---- send what the machine emits, refilling it as sending frees room -------
            loop {
                let before = machine.in_flight();
                if !machine.is_disabled() {
                    self.intake(&mut machine, &mut intake, now);
                }
                while let Some(t) = machine.poll_transmit(now, wall) {
                    if t.attempt == 1 {
                        self.record_batch(&machine, &t, wall);
                    }
                    let ids = (t.attempt_id, t.batch_id.clone());
                    let task = tasks.spawn(self.attempt(t));
                    attempts.insert(task.id(), ids);
                }
                self.publish(&mut machine, &mut intake, &mut out, wall);
                if intake.is_empty() || machine.in_flight() == before {
                    break;
                }
            }

            // ---- publish the state -----------------------------------------------------
            let queued = self.shared.queue.len();
            let buffered = machine.buffered_events() + intake.len();
            self.shared.buffered.store(buffered, Ordering::Relaxed);
            self.shared
                .in_flight
                .store(machine.in_flight(), Ordering::Relaxed);
            self.shared
                .retrying
                .store(machine.retrying(), Ordering::Relaxed);
            self.shared.limit.store(machine.limit(), Ordering::Relaxed);
            self.shared.set_state(machine.health());
            let metrics = &self.shared.metrics;
            metrics.queue_depth.set((queued + buffered) as f64);
            metrics.in_flight.set(machine.in_flight() as f64);

            // ---- done? -----------------------------------------------------------------
            if machine.is_abandoned() {
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                return (End::Finished, self.abandon(intake, out));
            }
            let drained = machine.is_idle()
                && intake.is_empty()
                && queued == 0
                && tasks.is_empty()
                && !self.shared.queue.is_spilling();
            if drained && (shutting_down || self.removal.is_some()) {
                metrics.queue_depth.set(0.0);
                return (End::Finished, out);
            }
            // Over a shared store the driver keeps reading until shutdown: it never parks.
            if drained && machine.poll_timeout().is_none() && self.feed.is_none() {
                let t = *idle_since.get_or_insert_with(tokio::time::Instant::now);
                if tokio::time::Instant::now() >= t + self.common.park_after {
                    match self.park(machine, now) {
                        Ok(()) => return (End::Parked, out),
                        Err(m) => {
                            machine = m;
                            idle_since = None;
                        }
                    }
                }
            } else {
                idle_since = None;
            }
        }
    }

    /// Parks: keeps the machine when it is not at rest (failing, disabled, limits in use),
    /// drops it otherwise; gives it back when events arrived meanwhile.
    fn park(&self, machine: Box<Delivery<Slot>>, now: Instant) -> Result<(), Box<Delivery<Slot>>> {
        let keep = !machine.is_at_rest(now);
        let revision = self.revision.unwrap_or(0);
        let mut machine = Some(machine);
        let parked = self.shared.queue.try_park(|| {
            if keep {
                *self
                    .shared
                    .parked
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) =
                    machine.take().map(|m| (m, revision));
            } else {
                machine = None;
            }
        });
        match machine {
            Some(m) if !parked => Err(m),
            _ => {
                tracing::debug!(kept_state = keep, "endpoint idle: driver parked");
                Ok(())
            }
        }
    }

    /// Moves queued events into the machine while it has room; once the queue is empty,
    /// reads what the outbox holds for this endpoint (a restart's backlog, spilled events).
    fn intake(&mut self, machine: &mut Delivery<Slot>, intake: &mut VecDeque<Entry>, now: Instant) {
        loop {
            if intake.is_empty()
                && self.shared.queue.drain_into(intake, DRAIN_CHUNK) == 0
                && !self.read_outbox(machine, intake, now)
            {
                return;
            }
            while let Some(Entry { event, slot }) = intake.pop_front() {
                if let Err(full) = machine.push(event, slot, now) {
                    let (event, slot) = (full.event, full.tag);
                    intake.push_front(Entry { event, slot });
                    return;
                }
            }
        }
    }

    /// Reads the next events the outbox holds for this endpoint into `intake` (and restores
    /// the batches a restart kept); `false` when nothing was read.
    fn read_outbox(
        &mut self,
        machine: &mut Delivery<Slot>,
        intake: &mut VecDeque<Entry>,
        now: Instant,
    ) -> bool {
        let Some(outbox) = self.common.outbox.clone() else {
            return false;
        };
        if outbox.store.is_shared() {
            return self.read_shared(&outbox, machine, intake, now);
        }
        let Some(spill) = self.shared.queue.spill() else {
            self.cursor = None;
            return false;
        };
        if self.cursor.as_ref().is_none_or(|(e, _)| *e != spill.epoch) {
            self.cursor = Some((spill.epoch, ReadCursor::at(spill.next)));
        }
        let Some((_, cursor)) = self.cursor.as_mut() else {
            return false;
        };
        let out = match outbox
            .store
            .read(&self.shared.name, cursor, DRAIN_CHUNK, spill.max)
        {
            Ok(out) => out,
            Err(e) => {
                tracing::error!(error = %e, "reading the outbox failed; retrying on the next wake");
                return false;
            }
        };
        let seqs: Vec<u64> = out.events.iter().map(|(q, _)| *q).collect();
        let (slots, ended) =
            self.shared
                .queue
                .advance_spill(spill.epoch, cursor.seq, out.at_end, &seqs);
        let mut batches = out.batches;
        if ended {
            batches.extend(cursor.take_gathered());
            self.cursor = None;
        }
        let read = !out.events.is_empty() || !batches.is_empty();
        for ((seq, event), slot) in out.events.into_iter().zip(slots) {
            let slot = slot.unwrap_or_else(|| Slot::detached(seq));
            intake.push_back(Entry { event, slot });
        }
        for b in batches {
            restore(machine, b, now);
        }
        read
    }

    /// [`read_outbox`](Self::read_outbox) over a shared store: what it handed to this process
    /// (nothing once shutdown began).
    fn read_shared(
        &mut self,
        outbox: &crate::outbox::Outbox,
        machine: &mut Delivery<Slot>,
        intake: &mut VecDeque<Entry>,
        now: Instant,
    ) -> bool {
        if self.feed.is_none() {
            return false;
        }
        let (_, cursor) = self.cursor.get_or_insert_with(|| (0, ReadCursor::at(0)));
        let out = match outbox
            .store
            .read(&self.shared.name, cursor, DRAIN_CHUNK, u64::MAX)
        {
            Ok(out) => out,
            Err(e) => {
                tracing::error!(error = %e, "reading the shared queue failed; retrying on the next wake");
                return false;
            }
        };
        let read = !out.events.is_empty() || !out.batches.is_empty();
        for (seq, event) in out.events {
            intake.push_back(Entry {
                event,
                slot: Slot::detached(seq),
            });
        }
        for b in out.batches {
            restore(machine, b, now);
        }
        read
    }

    /// Writes a batch's id and events to the outbox before its first request leaves, so a
    /// restart sends the same batch with the same id (receivers see a duplicate, not new
    /// events).
    fn record_batch(&self, machine: &Delivery<Slot>, t: &Transmit, wall: SystemTime) {
        let Some(outbox) = &self.common.outbox else {
            return;
        };
        let seqs: Vec<u64> = machine
            .batch_tags(&t.batch_id)
            .map(|tags| tags.iter().map(Slot::seq).collect())
            .unwrap_or_default();
        if seqs.iter().all(|&q| q == 0) {
            return;
        }
        let ids: Vec<Box<str>> = machine
            .attempt_events(t.attempt_id)
            .map(|e| e.iter().map(|e| e.id().into()).collect())
            .unwrap_or_default();
        outbox.store.batch(
            &self.shared.name,
            t.batch_id.as_str(),
            crate::outbox::BatchRecord {
                first: Some((&seqs, &ids)),
                attempts: 0,
                first_ms: crate::outbox::log::wall_ms(wall),
                due_ms: 0,
                attempt: None,
            },
        );
    }

    /// The request task of one transmit.
    fn attempt(&self, t: Transmit) -> impl Future<Output = Finished> + Send + 'static {
        let Transmit {
            attempt_id: _,
            batch_id,
            attempt,
            events,
            mut request,
            ..
        } = t;
        if let Some(timeout) = self.cfg.request_timeout {
            request.extensions_mut().insert(RequestTimeout(timeout));
        }
        if attempt == 1 {
            self.shared.metrics.batch_size.record(events as f64);
        }
        let transport = Counted {
            inner: self.transport.clone(),
            shared: self.shared.clone(),
        };
        let tokens = self.cfg.tokens.clone();
        let span = tracing::debug_span!(
            "webhook_attempt",
            endpoint = %self.shared.name,
            batch_id = %batch_id,
            attempt,
            events,
        );
        async move {
            let started = tokio::time::Instant::now();
            let result = match tokens {
                Some(tokens) => tokens.send(&transport, request).await.map_err(|e| match e {
                    AuthorizedSendError::Token(e) => {
                        tracing::warn!(error = %e, "token fetch failed");
                        AttemptError::Token
                    }
                    AuthorizedSendError::Transport(e) => transport_error(&e),
                }),
                None => transport
                    .send(request)
                    .await
                    .map_err(|e| transport_error(&e)),
            };
            tracing::debug!(
                status = result.as_ref().ok().map(|r| r.status().as_u16()),
                "attempt finished"
            );
            Finished {
                result,
                latency: started.elapsed(),
            }
        }
        .instrument(span)
    }

    /// Shutdown's deadline passed and the machine handed back what it held: add what is still
    /// queued and return it all.
    fn abandon(&self, intake: VecDeque<Entry>, mut out: Vec<Undelivered>) -> Vec<Undelivered> {
        let queued = self.shared.queue.close(Closed::Shutdown, true);
        let mut events = Vec::new();
        for Entry { event, slot } in intake.into_iter().chain(queued) {
            slot.resolve(Outcome::Failed {
                reason: FailureReason::Shutdown,
            });
            events.push(event);
        }
        if !events.is_empty() {
            out.push(Undelivered {
                endpoint: self.shared.name.clone(),
                events,
                stage: UndeliveredStage::NotSent,
            });
        }
        self.shared.in_flight.store(0, Ordering::Relaxed);
        self.shared.retrying.store(0, Ordering::Relaxed);
        self.shared.buffered.store(0, Ordering::Relaxed);
        out
    }
}

/// The endpoint's transport, counting every request sent (a token refresh's resend too).
struct Counted {
    inner: SharedTransport,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted")
            .field("inner", &self.inner)
            .finish()
    }
}

impl Transport for Counted {
    fn send(&self, request: http::Request<bytes::Bytes>) -> ResponseFuture {
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        self.shared.metrics.requests.increment(1);
        self.inner.send(request)
    }
}

fn transport_error(e: &crate::error::TransportError) -> AttemptError {
    if e.is_timeout() {
        AttemptError::Timeout
    } else if e.is_refused_by_ssrf_guard() {
        tracing::warn!(error = %e, "the SSRF guard refused the endpoint's address: given up, not retried");
        AttemptError::Refused
    } else {
        tracing::debug!(error = %e, "attempt failed");
        AttemptError::Connect
    }
}

/// Hands a batch the outbox kept across a restart back to the machine, with its batch id,
/// attempts and due time (wall-clock times mapped onto this run's monotonic clock).
fn restore(machine: &mut Delivery<Slot>, b: RestoredBatch, now: Instant) {
    let wall_now = crate::outbox::log::wall_ms(SystemTime::now());
    let since_first = Duration::from_millis(wall_now.saturating_sub(b.first_ms));
    let first_at = if b.first_ms == 0 {
        now
    } else {
        now.checked_sub(since_first).unwrap_or(now)
    };
    let due = now + Duration::from_millis(b.due_ms.saturating_sub(wall_now));
    let (events, tags): (Vec<Event>, Vec<Slot>) = b
        .events
        .into_iter()
        .map(|(seq, e)| (e, Slot::detached(seq)))
        .unzip();
    tracing::debug!(batch_id = %b.batch_id, attempts = b.attempts, events = events.len(), "batch restored from the outbox");
    machine.restore(
        BatchId::new(b.batch_id),
        events,
        tags,
        b.attempts.max(1),
        first_at,
        due,
    );
}

async fn notified_opt(notify: Option<&tokio::sync::Notify>) {
    match notify {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
