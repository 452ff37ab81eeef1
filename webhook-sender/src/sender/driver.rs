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
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, watch};
use tokio::task::{Id as TaskId, JoinSet};
use tracing::Instrument as _;
use webhook_core::{AttemptError, AttemptId, AttemptResult, Delivery, Transmit, UndeliveredStage};

use super::endpoint::EndpointConfig;
use super::lifecycle::{DeadLetter, LifecycleEvent, Shared, Undelivered};
use super::queue::{Closed, Entry};
use super::receipt::{FailureReason, Outcome, Slot};
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

/// Everything a driver needs; built by the `Sender` builder.
pub(crate) struct Driver {
    pub(crate) cfg: Arc<EndpointConfig>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) transport: SharedTransport,
    pub(crate) lifecycle: broadcast::Sender<LifecycleEvent>,
    pub(crate) dead_letter: Option<DeadLetterHook>,
    pub(crate) shutdown: ShutdownSignal,
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

impl Driver {
    /// Runs until shutdown, returning what could not be delivered.
    ///
    /// A disabled endpoint's task stays alive, parked on its closed queue (no timer, no
    /// request), until [`Sender::enable`](crate::Sender::enable) asks it to reset its health
    /// or shutdown stops it: requests that were in flight when it was disabled still complete
    /// on it, and an ordered batcher's state survives a re-enable.
    pub(crate) async fn run(self) -> Vec<Undelivered> {
        let span = tracing::info_span!("webhook_endpoint", endpoint = %self.cfg.name);
        self.run_inner().instrument(span).await
    }

    async fn run_inner(mut self) -> Vec<Undelivered> {
        let cfg = self.cfg.clone();
        let built = cfg
            .delivery()
            .jitter_seed(cfg.jitter_seed.unwrap_or_else(random_u64))
            .run_id(random_u64())
            .build::<Slot>();
        let mut machine = match built {
            Ok(m) => m,
            Err(err) => {
                // `EndpointConfig::build` validated the same settings; unreachable in practice.
                tracing::error!(error = %err, "endpoint configuration refused by the delivery machine");
                return Vec::new();
            }
        };
        let mut intake: VecDeque<Entry> = VecDeque::new();
        let mut tasks: JoinSet<Finished> = JoinSet::new();
        let mut attempts: HashMap<TaskId, AttemptId> = HashMap::new();
        let mut out = Vec::new();
        let mut shutting_down = false;
        let mut deadline = None;
        let mut finished: Vec<(TaskId, Option<Finished>)> = Vec::new();

        loop {
            // ---- wait ------------------------------------------------------------------
            let wake = machine.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                biased;
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
                    self.shared.queue.close(Closed::Shutdown, false);
                }
                () = self.shared.queue.readable.notified(), if intake.is_empty() => {}
                () = sleep_until_opt(wake), if wake.is_some() => {}
            }
            while let Some(done) = tasks.try_join_next_with_id() {
                finished.push(match done {
                    Ok((id, r)) => (id, Some(r)),
                    Err(e) => (e.id(), None),
                });
            }

            // ---- now: the only clock read ----------------------------------------------
            let (now, wall) = now();

            // ---- feed the machine ------------------------------------------------------
            if self.shared.take_enable_request() {
                machine.enable(now);
                tracing::debug!("endpoint re-enabled: health and circuit breaker reset");
            }
            for (task, result) in finished.drain(..) {
                let Some(attempt) = attempts.remove(&task) else {
                    continue;
                };
                let result = match result {
                    Some(r) => {
                        self.shared.metrics.latency.record(r.latency.as_secs_f64());
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
            if shutting_down {
                machine.begin_shutdown(deadline.map(tokio::time::Instant::into_std));
            }
            machine.handle_timeout(now);
            self.publish(&mut machine, &mut intake, &mut out);

            // ---- send what the machine emits, refilling it as sending frees room -------
            loop {
                let before = machine.in_flight();
                if !machine.is_disabled() {
                    self.intake(&mut machine, &mut intake, now);
                }
                while let Some(t) = machine.poll_transmit(now, wall) {
                    let attempt = t.attempt_id;
                    let task = tasks.spawn(self.attempt(t));
                    attempts.insert(task.id(), attempt);
                }
                self.publish(&mut machine, &mut intake, &mut out);
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
                return self.abandon(intake, out);
            }
            if shutting_down && machine.is_idle() && intake.is_empty() && queued == 0 {
                metrics.queue_depth.set(0.0);
                return out;
            }
        }
    }

    /// Moves queued events into the machine while it has room.
    fn intake(&self, machine: &mut Delivery<Slot>, intake: &mut VecDeque<Entry>, now: Instant) {
        loop {
            if intake.is_empty() && self.shared.queue.drain_into(intake, DRAIN_CHUNK) == 0 {
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
            endpoint = %self.cfg.name,
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
                endpoint: self.cfg.name.clone(),
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
    } else {
        tracing::debug!(error = %e, "attempt failed");
        AttemptError::Connect
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
