//! The driver task of one endpoint: the thin loop around the core (STYLE item 4).
//!
//! ```text
//! loop {
//!     wait for: a finished request | events in the intake queue | the next core deadline
//!               | the shutdown signal
//!     now = clock.now()                          // the only clock read feeding the core
//!     feed the core: finished requests -> RetryPolicy::decide, Health, CircuitBreaker,
//!                    Batcher::complete; queued events -> Batcher::push; timers -> handle_timeout
//!     send what the core emits: due retries, then Batcher::poll_batch, while the in-flight
//!                    limit, the rate limit and the breaker allow
//!     publish: receipts, lifecycle events, dead letters, counters and metrics
//! }
//! ```
//!
//! The next deadline is the minimum of `Batcher::poll_timeout`, `Health::poll_timeout`,
//! `CircuitBreaker::poll_timeout`, the earliest retry due time and the rate limiter's next
//! token, slept on with `tokio::time::sleep_until` (so tokio's paused time drives it in tests).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use http::StatusCode;
use tokio::sync::{broadcast, watch};
use tokio::task::{Id as TaskId, JoinSet};
use tracing::Instrument as _;
use webhook_core::encode::Body;
use webhook_core::{
    AttemptOutcome, BatchId, BatchOutcome, Batcher, CircuitBreaker, Event, GiveUpReason, Health,
    HealthEvent, PushError, RetryDecision, RetryState, SplitMix64,
};

use super::endpoint::EndpointConfig;
use super::lifecycle::{
    DeadLetter, DisableReason, LifecycleEvent, Shared, Undelivered, UndeliveredStage,
};
use super::limit::{Bucket, Limiter};
use super::metrics::EndpointMetrics;
use super::queue::{Closed, Entry};
use super::receipt::{AttemptError, FailureReason, Outcome, Slot};
use crate::error::TransportError;
use crate::token::{AccessToken, TokenError};
use crate::transport::{RequestTimeout, Response, SharedTransport};

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

/// A batch out of the batcher, until its final outcome.
struct Outstanding {
    id: BatchId,
    events: Vec<Event>,
    /// Event bytes of `events` (counted against the batcher's buffer limits).
    event_bytes: usize,
    slots: Vec<Slot>,
    /// The encoded body; an uncompressed one is released while the batch waits for a retry
    /// (the events hold the same bytes) and encoded again when it is due.
    body: Option<Body>,
    retry: Option<RetryState>,
    last_error: Option<AttemptError>,
    /// The next dispatch repeats the attempt after a 401 with a fresh token.
    token_resend: bool,
    /// A token was already refreshed for the current attempt.
    token_refreshed: bool,
}

enum Failure {
    Transport(TransportError),
    Token(TokenError),
}

struct AttemptResult {
    result: Result<Response, Failure>,
    token: Option<AccessToken>,
    latency: Duration,
}

/// Why `pump` stopped sending.
enum Stop {
    /// Nothing to send now.
    Idle,
    /// The in-flight limit or a half-open breaker: wait for a request to finish.
    Busy,
    /// The rate limiter: wait until then.
    RateLimited(Instant),
    /// The breaker is open.
    BreakerOpen,
}

struct Clock;

impl Clock {
    /// The one place the driver reads time: monotonic (tokio's clock, pausable in tests) and
    /// wall-clock (signing timestamps, HTTP-date `Retry-After`).
    fn now() -> (Instant, SystemTime) {
        (tokio::time::Instant::now().into_std(), SystemTime::now())
    }
}

struct State {
    batcher: Batcher,
    health: Health,
    breaker: Option<CircuitBreaker>,
    limiter: Limiter,
    bucket: Option<Bucket>,
    rng: SplitMix64,
    intake: VecDeque<Entry>,
    /// Receipt slots of events in the batcher.
    pending: Pending,
    /// One batch taken from the batcher and waiting for permission to send.
    staged: Option<Outstanding>,
    retries: BTreeMap<(Instant, u64), Outstanding>,
    in_flight: HashMap<TaskId, Outstanding>,
    tasks: JoinSet<AttemptResult>,
    seq: u64,
    disabled: bool,
    disable_reason: Option<DisableReason>,
}

impl State {
    /// Events and event bytes of the batches out of the batcher (staged, in flight, retrying).
    fn held(&self) -> (usize, usize) {
        self.staged
            .iter()
            .chain(self.in_flight.values())
            .chain(self.retries.values())
            .fold((0, 0), |(e, b), o| (e + o.events.len(), b + o.event_bytes))
    }
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
        let run_id = random_u64();
        let batcher = Batcher::with_id_generator(cfg.batcher.clone(), move |seq| {
            format!("msg_{run_id:016x}{seq:08x}")
        });
        let mut st = State {
            batcher,
            health: webhook_core::Health::new(cfg.health),
            breaker: cfg.breaker.map(CircuitBreaker::new),
            limiter: Limiter::new(cfg.concurrency),
            bucket: cfg.rate_limit.map(Bucket::new),
            rng: SplitMix64::new(cfg.jitter_seed.unwrap_or_else(random_u64)),
            intake: VecDeque::new(),
            pending: if cfg.batcher.partition_by_key() {
                Pending::ById(HashMap::new())
            } else {
                Pending::Fifo(VecDeque::new())
            },
            staged: None,
            retries: BTreeMap::new(),
            in_flight: HashMap::new(),
            tasks: JoinSet::new(),
            seq: 0,
            disabled: false,
            disable_reason: None,
        };
        let metrics = self.shared.metrics.clone();
        let mut shutting_down = false;
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut wake: Option<Instant> = None;
        let mut finished: Vec<(TaskId, AttemptResult)> = Vec::new();
        let mut panicked: Vec<TaskId> = Vec::new();

        loop {
            // ---- wait ------------------------------------------------------------------
            let sleep_at = match (wake, deadline) {
                (Some(w), Some(d)) => Some(tokio::time::Instant::from_std(w).min(d)),
                (Some(w), None) => Some(tokio::time::Instant::from_std(w)),
                (None, d) => d,
            };
            // Also while disabled: `Sender::enable` wakes the driver through the queue.
            let want_input = st.intake.is_empty();
            tokio::select! {
                biased;
                Some(done) = st.tasks.join_next_with_id(), if !st.tasks.is_empty() => {
                    match done {
                        Ok((id, r)) => finished.push((id, r)),
                        Err(e) => panicked.push(e.id()),
                    }
                }
                changed = self.shutdown.changed(), if !shutting_down => {
                    shutting_down = true;
                    deadline = match changed {
                        Ok(()) => self.shutdown.borrow().flatten(),
                        // Every `Sender` handle is gone: deliver what is pending, no deadline.
                        Err(_) => None,
                    };
                    let left = self.shared.queue.close(Closed::Shutdown, false);
                    debug_assert!(left.is_empty());
                }
                () = self.shared.queue.readable.notified(), if want_input => {}
                () = sleep_until_opt(sleep_at), if sleep_at.is_some() => {}
            }
            while let Some(done) = st.tasks.try_join_next_with_id() {
                match done {
                    Ok((id, r)) => finished.push((id, r)),
                    Err(e) => panicked.push(e.id()),
                }
            }

            // ---- now: the only clock read ----------------------------------------------
            let (now, wall) = Clock::now();

            // ---- feed the core ------------------------------------------------------------
            if self.shared.take_enable_request() {
                self.enable(&mut st, now);
            }
            for (id, result) in finished.drain(..) {
                if let Some(o) = st.in_flight.remove(&id) {
                    self.complete(&mut st, &metrics, o, Some(result), now, wall);
                }
            }
            for id in panicked.drain(..) {
                if let Some(o) = st.in_flight.remove(&id) {
                    tracing::error!(batch_id = %o.id, "delivery task panicked; retrying the batch");
                    self.complete(&mut st, &metrics, o, None, now, wall);
                }
            }
            st.health.handle_timeout(now);
            if let Some(b) = st.breaker.as_mut() {
                b.handle_timeout(now);
            }
            self.health_events(&mut st, now);

            // ---- send what the core emits (refilling the batcher as sending frees it) ------
            let mut stop;
            loop {
                if !st.disabled {
                    self.intake(&mut st, now);
                }
                if shutting_down {
                    st.batcher.flush_all(now);
                }
                st.batcher.handle_timeout(now);
                let before = st.in_flight.len();
                stop = self.pump(&mut st, &metrics, now, wall);
                if st.intake.is_empty() || st.in_flight.len() == before {
                    break;
                }
            }
            self.health_events(&mut st, now);

            // ---- publish ----------------------------------------------------------------------
            let queued = self.shared.queue.len();
            let buffered = st.batcher.buffered_events() + st.intake.len();
            self.shared.buffered.store(buffered, Ordering::Relaxed);
            self.shared
                .in_flight
                .store(st.in_flight.len(), Ordering::Relaxed);
            self.shared
                .retrying
                .store(st.retries.len(), Ordering::Relaxed);
            self.shared
                .limit
                .store(st.limiter.limit(), Ordering::Relaxed);
            self.shared.set_state(st.health.state());
            metrics.queue_depth.set((queued + buffered) as f64);
            metrics.in_flight.set(st.in_flight.len() as f64);

            // ---- next deadline ------------------------------------------------------------
            wake = [
                st.batcher.poll_timeout(),
                st.health.poll_timeout(),
                st.breaker.as_ref().and_then(CircuitBreaker::poll_timeout),
            ]
            .into_iter()
            .flatten()
            .chain(match stop {
                Stop::Idle => st.retries.keys().next().map(|&(at, _)| at),
                Stop::RateLimited(at) => Some(at),
                Stop::Busy | Stop::BreakerOpen => None,
            })
            .min();

            // ---- done? ------------------------------------------------------------------------
            let idle = st.in_flight.is_empty()
                && st.retries.is_empty()
                && st.staged.is_none()
                && st.intake.is_empty()
                && st.batcher.buffered_events() == 0;
            if shutting_down && idle && queued == 0 {
                metrics.queue_depth.set(0.0);
                return Vec::new();
            }
            // Past the deadline, or nothing left but retries due after it: return the rest.
            let only_late_retries = idle_but_retries(&st, queued)
                && deadline
                    .zip(st.retries.keys().next())
                    .is_some_and(|(d, &(at, _))| tokio::time::Instant::from_std(at) > d);
            if let Some(d) = deadline
                && (tokio::time::Instant::from_std(now) >= d || only_late_retries)
            {
                return self.abandon(&mut st, now).await;
            }
        }
    }

    /// Moves queued events into the batcher while it has room.
    ///
    /// The batcher's buffer limits bound everything the driver holds: the batches taken out
    /// for delivery (staged, in flight, awaiting a retry) count against them too, so while an
    /// endpoint is down the events stay in the intake queue, whose overflow policy applies.
    fn intake(&self, st: &mut State, now: Instant) {
        let (held_events, held_bytes) = st.held();
        let max_events = self.cfg.batcher.max_buffered_events();
        let max_bytes = self.cfg.batcher.max_buffered_bytes();
        loop {
            if st.intake.is_empty()
                && self.shared.queue.drain_into(&mut st.intake, DRAIN_CHUNK) == 0
            {
                return;
            }
            while let Some(entry) = st.intake.pop_front() {
                if held_events > 0
                    && (st.batcher.buffered_events() + held_events >= max_events
                        || st.batcher.buffered_bytes() + held_bytes + entry.event.len() > max_bytes)
                {
                    st.intake.push_front(entry);
                    return;
                }
                let Entry { event, slot } = entry;
                let id = st.pending.key(&event);
                match st.batcher.push(event, now) {
                    Ok(()) => st.pending.push(id, slot),
                    Err(PushError::Full { event, .. }) => {
                        st.intake.push_front(Entry { event, slot });
                        return;
                    }
                    Err(err) => {
                        let event = err.into_event();
                        tracing::warn!(event_id = %event.id(), "event larger than the batch byte limit; not sent");
                        self.fail_events(vec![event], vec![slot], None, FailureReason::Oversize);
                    }
                }
            }
        }
    }

    fn take_batch(&self, st: &mut State, now: Instant) -> Option<Outstanding> {
        let batch = st.batcher.poll_batch(now)?;
        // Encoded once per batch (and gzip-compressed when the endpoint says so); every attempt
        // reuses the bytes.
        let body = match self.cfg.endpoint.gzip() {
            None => batch.body(),
            Some(_) => match self.cfg.endpoint.encode(batch.events()) {
                Ok(body) => body,
                Err(err) => {
                    tracing::warn!(batch_id = %batch.id(), error = %err, "gzip failed; sending uncompressed");
                    batch.body()
                }
            },
        };
        let id = batch.id().clone();
        let events = batch.into_events();
        let event_bytes = events.iter().map(Event::len).sum();
        let slots = st.pending.take(&events);
        Some(Outstanding {
            id,
            events,
            event_bytes,
            slots,
            body: Some(body),
            retry: None,
            last_error: None,
            token_resend: false,
            token_refreshed: false,
        })
    }

    /// Sends due retries and new batches while the limits allow.
    fn pump(
        &self,
        st: &mut State,
        metrics: &EndpointMetrics,
        now: Instant,
        wall: SystemTime,
    ) -> Stop {
        if st.disabled {
            // A batch that came back while disabled (a 401 resend): the queue stays as
            // `Sender::enable` may have just reopened it.
            self.fail_batches(st, now);
            return Stop::Idle;
        }
        loop {
            if st.in_flight.len() >= st.limiter.limit() {
                return Stop::Busy;
            }
            let due = st.retries.keys().next().is_some_and(|&(at, _)| at <= now);
            if !due && st.staged.is_none() {
                st.staged = self.take_batch(st, now);
                if st.staged.is_none() {
                    return Stop::Idle;
                }
            }
            let resend = due && st.retries.values().next().is_some_and(|o| o.token_resend);
            if !resend {
                if let Some(bucket) = st.bucket.as_mut()
                    && let Err(at) = bucket.try_take(now)
                {
                    return Stop::RateLimited(at);
                }
                if let Some(b) = st.breaker.as_mut()
                    && !b.try_acquire(now)
                {
                    // The token taken above is spent; the breaker will reopen the flow later.
                    return if b.poll_timeout().is_some() {
                        Stop::BreakerOpen
                    } else {
                        Stop::Busy
                    };
                }
            }
            let next = if due {
                st.retries.pop_first().map(|(_, o)| o)
            } else {
                st.staged.take()
            };
            let Some(o) = next else {
                return Stop::Idle;
            };
            self.dispatch(st, metrics, o, now, wall);
        }
    }

    fn dispatch(
        &self,
        st: &mut State,
        metrics: &EndpointMetrics,
        mut o: Outstanding,
        now: Instant,
        wall: SystemTime,
    ) {
        if o.token_resend {
            o.token_resend = false;
        } else {
            o.token_refreshed = false;
            match o.retry.as_mut() {
                Some(state) => state.record_attempt(),
                None => o.retry = Some(RetryState::new(now)),
            }
        }
        let attempt = o.retry.map_or(1, |s| s.attempts());
        let body = match o.body.as_ref() {
            Some(body) => Ok(body),
            None => match Body::encode(self.cfg.batcher.encoding(), &o.events) {
                Ok(body) => Ok(&*o.body.insert(body)),
                Err(err) => Err(err.to_string()),
            },
        };
        let built = body.and_then(|body| {
            self.cfg
                .endpoint
                .request(o.id.as_str(), body, wall)
                .map_err(|e| e.to_string())
        });
        let mut request = match built {
            Ok(r) => r,
            Err(err) => {
                tracing::error!(batch_id = %o.id, error = %err, "request could not be built");
                let reason = FailureReason::Request(err);
                if let Some(b) = st.breaker.as_mut() {
                    // Release the permit taken for this request.
                    b.record_success(now);
                }
                self.give_up(st, o, reason);
                return;
            }
        };
        if let Some(t) = self.cfg.request_timeout {
            request.extensions_mut().insert(RequestTimeout(t));
        }
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        metrics.requests.increment(1);
        if attempt == 1 && !o.token_refreshed {
            metrics.batch_size.record(o.events.len() as f64);
        }
        let transport = self.transport.clone();
        let tokens = self.cfg.tokens.clone();
        let span = tracing::debug_span!(
            "webhook_attempt",
            endpoint = %self.cfg.name,
            batch_id = %o.id,
            attempt,
            events = o.events.len(),
        );
        let task = async move {
            let started = tokio::time::Instant::now();
            let mut token = None;
            if let Some(tokens) = tokens {
                match tokens.authorize(&mut request).await {
                    Ok(t) => token = Some(t),
                    Err(e) => {
                        return AttemptResult {
                            result: Err(Failure::Token(e)),
                            token: None,
                            latency: started.elapsed(),
                        };
                    }
                }
            }
            let result = transport.send(request).await.map_err(Failure::Transport);
            AttemptResult {
                result,
                token,
                latency: started.elapsed(),
            }
        }
        .instrument(span);
        let handle = st.tasks.spawn(task);
        st.in_flight.insert(handle.id(), o);
    }

    /// Feeds one finished attempt to the core (`None`: the task panicked).
    fn complete(
        &self,
        st: &mut State,
        metrics: &EndpointMetrics,
        mut o: Outstanding,
        result: Option<AttemptResult>,
        now: Instant,
        wall: SystemTime,
    ) {
        let attempt = o.retry.map_or(1, |s| s.attempts());
        let (outcome, error, status, token) = match &result {
            Some(r) => {
                metrics.latency.record(r.latency.as_secs_f64());
                match &r.result {
                    Ok(resp) => (
                        AttemptOutcome::Response {
                            status: resp.status(),
                            headers: resp.headers(),
                        },
                        AttemptError::Status(resp.status()),
                        Some(resp.status()),
                        r.token.clone(),
                    ),
                    Err(Failure::Transport(e)) if e.is_timeout() => {
                        (AttemptOutcome::Timeout, AttemptError::Timeout, None, None)
                    }
                    Err(Failure::Transport(e)) => {
                        tracing::debug!(batch_id = %o.id, attempt, error = %e, "attempt failed");
                        (
                            AttemptOutcome::ConnectError,
                            AttemptError::Connect,
                            None,
                            None,
                        )
                    }
                    Err(Failure::Token(e)) => {
                        tracing::warn!(batch_id = %o.id, attempt, error = %e, "token fetch failed");
                        (
                            AttemptOutcome::ConnectError,
                            AttemptError::Token,
                            None,
                            None,
                        )
                    }
                }
            }
            None => (
                AttemptOutcome::ConnectError,
                AttemptError::Connect,
                None,
                None,
            ),
        };
        tracing::debug!(
            batch_id = %o.id,
            attempt,
            status = status.map(|s| s.as_u16()),
            "attempt finished"
        );

        // A 401 with a fetched token: refresh it and repeat the attempt at once, once.
        if status == Some(StatusCode::UNAUTHORIZED)
            && !o.token_refreshed
            && let (Some(tokens), Some(token)) = (self.cfg.tokens.as_ref(), token.as_ref())
        {
            tracing::debug!(batch_id = %o.id, attempt, "401: refreshing the token and resending");
            tokens.invalidate_if_current(token);
            o.token_refreshed = true;
            o.token_resend = true;
            // The breaker permit of this attempt carries over to the resend.
            st.seq += 1;
            st.retries.insert((now, st.seq), o);
            return;
        }

        if st.disabled {
            if let Some(status) = status.filter(StatusCode::is_success) {
                self.succeed(st, metrics, o, status, now);
            } else {
                self.give_up(st, o, FailureReason::EndpointDisabled);
            }
            return;
        }

        let state = o.retry.unwrap_or_else(|| RetryState::new(now));
        let decision = self
            .cfg
            .retry
            .decide(&state, &outcome, now, wall, &mut st.rng);
        match decision {
            RetryDecision::Delivered => {
                let status = status.unwrap_or(StatusCode::OK);
                st.health.on_success(now);
                if let Some(b) = st.breaker.as_mut() {
                    b.record_success(now);
                }
                st.limiter.on_success();
                self.succeed(st, metrics, o, status, now);
            }
            RetryDecision::RetryAt { at, delay } => {
                st.health.on_failure(now);
                if let Some(b) = st.breaker.as_mut() {
                    b.record_failure(now);
                }
                st.limiter.on_throttle();
                self.shared.retries.fetch_add(1, Ordering::Relaxed);
                metrics.retried.increment(1);
                tracing::debug!(batch_id = %o.id, attempt, delay_ms = delay.as_millis() as u64, error = %error, "retry scheduled");
                o.last_error = Some(error);
                if self.cfg.endpoint.gzip().is_none() {
                    o.body = None;
                }
                st.seq += 1;
                st.retries.insert((at, st.seq), o);
            }
            RetryDecision::GiveUp(why) => {
                let status = status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                if why != GiveUpReason::Aborted {
                    st.health.on_failure(now);
                }
                if let Some(b) = st.breaker.as_mut() {
                    b.record_failure(now);
                }
                let reason = match why {
                    GiveUpReason::Permanent => FailureReason::Rejected { status },
                    GiveUpReason::Aborted => FailureReason::Aborted { status },
                    GiveUpReason::EndpointDisabled => FailureReason::EndpointDisabled,
                    _ => FailureReason::RetriesExhausted {
                        attempts: state.attempts(),
                        last: error,
                    },
                };
                tracing::warn!(batch_id = %o.id, attempt, reason = %reason, "giving up on batch");
                self.give_up(st, o, reason);
                if why == GiveUpReason::EndpointDisabled {
                    self.disable(st, DisableReason::Receiver { status }, now);
                }
            }
            _ => {
                let reason = FailureReason::RetriesExhausted {
                    attempts: state.attempts(),
                    last: error,
                };
                self.give_up(st, o, reason);
            }
        }
    }

    fn succeed(
        &self,
        st: &mut State,
        metrics: &EndpointMetrics,
        o: Outstanding,
        status: StatusCode,
        _now: Instant,
    ) {
        let attempts = o.retry.map_or(1, |s| s.attempts());
        let n = o.events.len() as u64;
        for slot in o.slots {
            slot.resolve(Outcome::Delivered { attempts, status });
        }
        self.shared.delivered.fetch_add(n, Ordering::Relaxed);
        self.shared
            .batches_delivered
            .fetch_add(1, Ordering::Relaxed);
        metrics.sent.increment(n);
        // Unknown ids are only possible outside ordered mode, where `complete` only counts.
        let _ = st.batcher.complete(&o.id, BatchOutcome::Delivered);
    }

    /// Fails a batch: receipts, counters, dead letter, lifecycle, batcher.
    fn give_up(&self, st: &mut State, o: Outstanding, reason: FailureReason) {
        let _ = st.batcher.complete(&o.id, BatchOutcome::Abandoned);
        let _ = self.lifecycle.send(LifecycleEvent::Exhausted {
            endpoint: self.cfg.name.clone(),
            batch_id: o.id.clone(),
            events: o.events.len(),
            reason: reason.clone(),
        });
        self.fail_events(o.events, o.slots, Some(o.id), reason);
    }

    fn fail_events(
        &self,
        events: Vec<Event>,
        slots: Vec<Slot>,
        batch_id: Option<BatchId>,
        reason: FailureReason,
    ) {
        let n = events.len() as u64;
        for slot in slots {
            slot.resolve(Outcome::Failed {
                reason: reason.clone(),
            });
        }
        self.shared.failed.fetch_add(n, Ordering::Relaxed);
        self.shared.metrics.failed.increment(n);
        if let Some(hook) = &self.dead_letter {
            hook(DeadLetter {
                endpoint: self.cfg.name.clone(),
                batch_id,
                events,
                reason,
            });
        }
    }

    /// Disables the endpoint and fails everything it holds that is not in flight.
    fn disable(&self, st: &mut State, reason: DisableReason, now: Instant) {
        if st.disabled {
            return;
        }
        st.disabled = true;
        st.disable_reason = Some(reason);
        st.health.disable(now);
        tracing::warn!(reason = ?reason, "endpoint disabled");
        // `health_events` announces it and fails what the endpoint holds.
        self.health_events(st, now);
    }

    /// `Sender::enable` reopened the queue: health and breaker start afresh. The lifecycle
    /// event was broadcast by `Sender::enable` (so it follows `Disabled` and precedes any
    /// later event of this driver).
    fn enable(&self, st: &mut State, now: Instant) {
        if !st.disabled {
            return;
        }
        st.disabled = false;
        st.disable_reason = None;
        st.health.enable(now);
        st.breaker = self.cfg.breaker.map(CircuitBreaker::new);
        tracing::debug!("endpoint re-enabled: health and circuit breaker reset");
    }

    /// On disabling: closes the queue and fails everything held that is not in flight.
    fn fail_all_held(&self, st: &mut State, now: Instant) {
        let queued = self.shared.queue.close(Closed::Disabled, true);
        let mut events = Vec::new();
        let mut slots = Vec::new();
        for Entry { event, slot } in st.intake.drain(..).chain(queued) {
            events.push(event);
            slots.push(slot);
        }
        if !events.is_empty() {
            self.fail_events(events, slots, None, FailureReason::EndpointDisabled);
        }
        self.fail_batches(st, now);
    }

    /// Fails the batches the driver holds (buffered, staged, waiting for a retry).
    fn fail_batches(&self, st: &mut State, now: Instant) {
        st.batcher.flush_all(now);
        while let Some(o) = self.take_batch(st, now) {
            self.give_up(st, o, FailureReason::EndpointDisabled);
        }
        if let Some(o) = st.staged.take() {
            self.give_up(st, o, FailureReason::EndpointDisabled);
        }
        while let Some((_, o)) = st.retries.pop_first() {
            self.give_up(st, o, FailureReason::EndpointDisabled);
        }
    }

    fn health_events(&self, st: &mut State, now: Instant) {
        while let Some(ev) = st.health.poll_event() {
            let endpoint = self.cfg.name.clone();
            let event = match ev {
                HealthEvent::Failing { since } => {
                    tracing::warn!("endpoint failing");
                    LifecycleEvent::Failing { endpoint, since }
                }
                HealthEvent::Exhausted { since, .. } => {
                    tracing::error!("endpoint failed: no success within the failure window");
                    LifecycleEvent::Failed { endpoint, since }
                }
                HealthEvent::Recovered { after } => {
                    tracing::info!(after_ms = after.as_millis() as u64, "endpoint recovered");
                    LifecycleEvent::Recovered { endpoint, after }
                }
                HealthEvent::Disabled { .. } => {
                    let reason = st
                        .disable_reason
                        .take()
                        .unwrap_or(DisableReason::HealthWindow);
                    let _ = self
                        .lifecycle
                        .send(LifecycleEvent::Disabled { endpoint, reason });
                    if !st.disabled {
                        st.disabled = true;
                        tracing::warn!(reason = ?reason, "endpoint disabled");
                    }
                    // Announced first, then what it held fails.
                    self.fail_all_held(st, now);
                    continue;
                }
                // Announced by `Sender::enable`.
                HealthEvent::Enabled { .. } => continue,
                _ => continue,
            };
            let _ = self.lifecycle.send(event);
        }
    }

    /// The shutdown deadline passed: cancel requests and return everything undelivered.
    async fn abandon(&self, st: &mut State, now: Instant) -> Vec<Undelivered> {
        st.tasks.abort_all();
        while st.tasks.join_next().await.is_some() {}
        let name = &self.cfg.name;
        let mut out = Vec::new();
        let mut push = |events: Vec<Event>, slots: Vec<Slot>, stage: UndeliveredStage| {
            for slot in slots {
                slot.resolve(Outcome::Failed {
                    reason: FailureReason::Shutdown,
                });
            }
            if !events.is_empty() {
                out.push(Undelivered {
                    endpoint: name.clone(),
                    events,
                    stage,
                });
            }
        };
        for (_, o) in st.in_flight.drain() {
            push(o.events, o.slots, UndeliveredStage::InFlight);
        }
        for (_, o) in std::mem::take(&mut st.retries) {
            let stage = match o.last_error.clone() {
                Some(last) => UndeliveredStage::RetryPending { last },
                None => UndeliveredStage::NotSent,
            };
            push(o.events, o.slots, stage);
        }
        if let Some(o) = st.staged.take() {
            push(o.events, o.slots, UndeliveredStage::NotSent);
        }
        st.batcher.flush_all(now);
        while let Some(batch) = st.batcher.poll_batch(now) {
            let events = batch.into_events();
            let slots = st.pending.take(&events);
            push(events, slots, UndeliveredStage::NotSent);
        }
        // Ordered mode may hold batches behind ones that never completed; and any slot left.
        for s in st.pending.drain() {
            s.resolve(Outcome::Failed {
                reason: FailureReason::Shutdown,
            });
        }
        let queued = self.shared.queue.close(Closed::Shutdown, true);
        let (mut events, mut slots) = (Vec::new(), Vec::new());
        for Entry { event, slot } in st.intake.drain(..).chain(queued) {
            events.push(event);
            slots.push(slot);
        }
        push(events, slots, UndeliveredStage::NotSent);
        self.shared.in_flight.store(0, Ordering::Relaxed);
        self.shared.retrying.store(0, Ordering::Relaxed);
        self.shared.buffered.store(0, Ordering::Relaxed);
        out
    }
}

/// Receipt slots of the events inside the batcher. Without key partitioning the batcher emits
/// events in push order, so a FIFO suffices; with it, groups interleave and slots are found by
/// event id (FIFO among equal ids).
enum Pending {
    Fifo(VecDeque<Slot>),
    ById(HashMap<Box<str>, VecDeque<Slot>>),
}

impl Pending {
    fn key(&self, event: &Event) -> Option<Box<str>> {
        match self {
            Pending::Fifo(_) => None,
            Pending::ById(_) => Some(event.id().into()),
        }
    }

    fn push(&mut self, key: Option<Box<str>>, slot: Slot) {
        match (self, key) {
            (Pending::Fifo(q), _) => q.push_back(slot),
            (Pending::ById(m), Some(k)) => m.entry(k).or_default().push_back(slot),
            // `key` returns `Some` for `ById`; a missing key drops (= fails) the slot loudly.
            (Pending::ById(_), None) => drop(slot),
        }
    }

    /// The slots of `events`, a batch just taken from the batcher.
    fn take(&mut self, events: &[Event]) -> Vec<Slot> {
        match self {
            Pending::Fifo(q) => {
                let n = events.len().min(q.len());
                q.drain(..n).collect()
            }
            Pending::ById(m) => {
                let mut slots = Vec::with_capacity(events.len());
                for e in events {
                    if let Some(q) = m.get_mut(e.id()) {
                        if let Some(s) = q.pop_front() {
                            slots.push(s);
                        }
                        if q.is_empty() {
                            m.remove(e.id());
                        }
                    }
                }
                slots
            }
        }
    }

    fn drain(&mut self) -> Vec<Slot> {
        match self {
            Pending::Fifo(q) => q.drain(..).collect(),
            Pending::ById(m) => m.drain().flat_map(|(_, q)| q).collect(),
        }
    }
}

fn idle_but_retries(st: &State, queued: usize) -> bool {
    queued == 0
        && st.in_flight.is_empty()
        && st.staged.is_none()
        && st.intake.is_empty()
        && st.batcher.buffered_events() == 0
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
