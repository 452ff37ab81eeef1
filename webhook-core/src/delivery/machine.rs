//! The delivery machine of one endpoint: every decision between "an event was accepted" and "it
//! was delivered, given up or abandoned", with no I/O and no clock (quinn-proto's form).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::limit::{Bucket, Concurrency, Limiter, RateLimit};
use super::settle::{AttemptError, DisableReason, FailureReason, UndeliveredStage};
use crate::delivery::batch::{
    BatchId, BatchOutcome, Batcher, BatcherConfig, BatcherConfigError, PushError,
};
use crate::delivery::breaker::{BreakerConfig, CircuitBreaker};
use crate::delivery::encode::{Body, Encoding};
use crate::delivery::event::Event;
use crate::delivery::health::{Health, HealthConfig, HealthEvent, HealthState};
use crate::delivery::request::Endpoint;
use crate::delivery::retry::{
    AttemptOutcome, GiveUpReason, RetryDecision, RetryPolicy, RetryState, SplitMix64,
};

/// Identifies one attempt handed out by [`Delivery::poll_transmit`]; give it back to
/// [`Delivery::handle_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(u64);

impl AttemptId {
    /// The number, unique within one machine.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt-{}", self.0)
    }
}

/// A request ready to send, from [`Delivery::poll_transmit`]: signed at the wall time given,
/// with the ids that tie its answer back to the machine.
#[derive(Debug)]
#[non_exhaustive]
pub struct Transmit {
    /// The attempt; its outcome goes to [`Delivery::handle_response`].
    pub attempt_id: AttemptId,
    /// The batch (also the request's message id, e.g. `webhook-id`, stable across attempts).
    pub batch_id: BatchId,
    /// The attempt's number for this batch, from 1.
    pub attempt: u32,
    /// Events the batch carries (their ids: [`Delivery::attempt_events`]).
    pub events: usize,
    /// The request: method, URL, headers (auth, signature, custom headers, content type) and
    /// the encoded body.
    pub request: http::Request<Bytes>,
}

/// How one attempt ended, as the driver saw it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AttemptResult<'a> {
    /// A response arrived.
    Response {
        /// Its status.
        status: StatusCode,
        /// Its headers (`Retry-After`, `webhook-delivery`).
        headers: &'a HeaderMap,
    },
    /// No response: [`AttemptError::Timeout`], [`AttemptError::Connect`],
    /// [`AttemptError::Token`] (a status here is read as a connection failure) or
    /// [`AttemptError::Refused`] (given up at once).
    Failed(AttemptError),
}

/// A change of the endpoint's health or lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthChange {
    /// Healthy → failing: the first failed attempt after a success.
    Failing {
        /// When the first failure was seen.
        since: Instant,
    },
    /// No success for the health `failed_after` window.
    Failed {
        /// When the failures began.
        since: Instant,
    },
    /// A success after failures.
    Recovered {
        /// How long it was failing.
        after: Duration,
    },
    /// The endpoint stopped sending: everything it holds is given up
    /// ([`FailureReason::EndpointDisabled`], in the settlements that follow this change).
    Disabled {
        /// Why.
        reason: DisableReason,
    },
}

/// How a settlement ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settled {
    /// Acknowledged with a 2xx.
    Delivered {
        /// The 2xx status.
        status: StatusCode,
        /// Attempts made for the batch, the successful one included.
        attempts: u32,
    },
    /// Given up on (a dead letter).
    GaveUp(FailureReason),
    /// Shutdown's deadline passed first; the events are handed back.
    Abandoned(UndeliveredStage),
}

/// Events whose delivery ended, with the tags they were pushed with (in the same order).
#[derive(Debug)]
#[non_exhaustive]
pub struct Settlement<T> {
    /// The batch, when the events had left the batcher (`None` for an oversize event or
    /// events abandoned before batching).
    pub batch_id: Option<BatchId>,
    /// The events. Empty only for tags abandoned in an ordered batcher's held batches, which
    /// the batcher gives back only after their predecessors complete.
    pub events: Vec<Event>,
    /// The tags given to [`Delivery::push`], one per event (or per abandoned event).
    pub tags: Vec<T>,
    /// How it ended.
    pub outcome: Settled,
}

/// An output of [`Delivery::poll_event`].
#[derive(Debug)]
#[non_exhaustive]
pub enum DeliveryEvent<T> {
    /// A batch went out: attempt `attempt` is in flight (also returned as a [`Transmit`]).
    Sent {
        /// The attempt.
        attempt_id: AttemptId,
        /// The batch ([`Delivery::batch_tags`] lists its events' tags).
        batch_id: BatchId,
        /// The attempt number, from 1.
        attempt: u32,
    },
    /// An attempt failed and the batch will be sent again at `at`.
    RetryScheduled {
        /// The batch ([`Delivery::batch_tags`] lists its events' tags).
        batch_id: BatchId,
        /// Attempts made so far.
        attempts: u32,
        /// When the next attempt is due.
        at: Instant,
        /// The delay from the failed attempt's answer.
        delay: Duration,
        /// What went wrong.
        error: AttemptError,
    },
    /// Events reached their end: delivered, given up or abandoned. Every tag pushed comes
    /// out in exactly one settlement.
    Settled(Settlement<T>),
    /// The endpoint's health or lifecycle changed.
    Health(HealthChange),
}

/// Errors building a [`Delivery`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryConfigError {
    /// The batcher encodes differently from the endpoint's request builder.
    #[error("the batcher encodes {batcher:?} but the endpoint declares {endpoint:?}")]
    EncodingMismatch {
        /// The batcher's encoding.
        batcher: Encoding,
        /// The endpoint's encoding.
        endpoint: Encoding,
    },
    /// The batching limits do not fit the endpoint's encoding.
    #[error("invalid batcher configuration for the endpoint's encoding")]
    Batcher(#[source] BatcherConfigError),
    /// A limit is out of range.
    #[error("invalid setting: {0}")]
    InvalidSetting(&'static str),
}

/// Builder of a [`Delivery`]; chained calls never fail, [`build`](Self::build) reports the
/// first problem.
#[derive(Debug, Clone)]
#[must_use]
pub struct DeliveryBuilder {
    endpoint: Endpoint,
    batcher: Option<BatcherConfig>,
    retry: RetryPolicy,
    health: HealthConfig,
    breaker: Option<BreakerConfig>,
    concurrency: Concurrency,
    rate_limit: Option<RateLimit>,
    jitter_seed: u64,
    run_id: u64,
}

impl DeliveryBuilder {
    /// Batching (default: [`BatcherConfig::builder`]'s defaults). The batcher encodes in the
    /// endpoint's encoding; a configuration that declared another one is refused.
    pub fn batcher(mut self, config: BatcherConfig) -> Self {
        self.batcher = Some(config);
        self
    }

    /// Retry policy (default [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Health windows (default [`HealthConfig::default`]).
    pub fn health(mut self, config: HealthConfig) -> Self {
        self.health = config;
        self
    }

    /// A circuit breaker (default none).
    pub fn breaker(mut self, config: Option<BreakerConfig>) -> Self {
        self.breaker = config;
        self
    }

    /// Requests in flight at once (default [`Concurrency::default`]).
    pub fn concurrency(mut self, concurrency: Concurrency) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// A request rate limit (default none).
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// The seed of the retry jitter (the driver draws it at random; tests fix it).
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = seed;
        self
    }

    /// This run's id, part of every batch id (`msg_<run id><sequence>`) so that ids never
    /// repeat across runs; the driver draws it at random.
    pub fn run_id(mut self, run_id: u64) -> Self {
        self.run_id = run_id;
        self
    }

    /// Builds the machine.
    ///
    /// # Errors
    /// See [`DeliveryConfigError`].
    pub fn build<T>(self) -> Result<Delivery<T>, DeliveryConfigError> {
        // The endpoint declares the encoding; the batcher follows it.
        let encoding = self.endpoint.encoding();
        let batcher = match self.batcher {
            Some(b) if b.encoding_declared() && b.encoding() != encoding => {
                return Err(DeliveryConfigError::EncodingMismatch {
                    batcher: b.encoding(),
                    endpoint: encoding,
                });
            }
            Some(b) => b.with_encoding(encoding),
            None => BatcherConfig::builder().encoding(encoding).build(),
        }
        .map_err(DeliveryConfigError::Batcher)?;
        self.concurrency
            .validate()
            .map_err(DeliveryConfigError::InvalidSetting)?;
        if let Some(limit) = self.rate_limit {
            limit
                .validate()
                .map_err(DeliveryConfigError::InvalidSetting)?;
        }
        let run_id = self.run_id;
        let pending = if batcher.partition_by_key() {
            Pending::ById(HashMap::new())
        } else {
            Pending::Fifo(VecDeque::new())
        };
        Ok(Delivery {
            max_buffered_events: batcher.max_buffered_events(),
            max_buffered_bytes: batcher.max_buffered_bytes(),
            batcher: Batcher::with_id_generator(batcher, move |seq| {
                format!("msg_{run_id:016x}{seq:08x}")
            }),
            endpoint: Arc::new(self.endpoint),
            retry: self.retry,
            health: Health::new(self.health),
            concurrency: self.concurrency,
            rate_limit: self.rate_limit,
            breaker_config: self.breaker,
            breaker: self.breaker.map(CircuitBreaker::new),
            limiter: Limiter::new(self.concurrency),
            bucket: self.rate_limit.map(Bucket::new),
            rng: SplitMix64::new(self.jitter_seed),
            pending,
            staged: None,
            formed: VecDeque::new(),
            next_batcher: None,
            retries: BTreeMap::new(),
            in_flight: HashMap::new(),
            held_events: 0,
            held_bytes: 0,
            events: VecDeque::new(),
            seq: 0,
            next_attempt: 0,
            stop: Stop::Idle,
            disabled: false,
            disable_reason: None,
            paused: false,
            removed: false,
            shutdown: None,
            abandoned: false,
        })
    }
}

/// A batch out of the batcher, until it settles.
struct Outstanding<T> {
    id: BatchId,
    /// The request builder of the settings the batch was formed under (an update applies to
    /// batches formed after it).
    endpoint: Arc<Endpoint>,
    events: Vec<Event>,
    /// Event bytes of `events` (counted against the batcher's buffer limits).
    event_bytes: usize,
    tags: Vec<T>,
    /// The encoded body; an uncompressed one is released while the batch waits for a retry
    /// (the events hold the same bytes) and encoded again when it is due.
    body: Option<Body>,
    retry: Option<RetryState>,
    last_error: Option<AttemptError>,
}

/// Why the last [`Delivery::poll_transmit`] returned `None`.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// Nothing to send now.
    Idle,
    /// Paused, disabled, retired or abandoned: nothing is sent whatever is due.
    Halted,
    /// The in-flight limit or a half-open breaker: wait for a request to finish.
    Busy,
    /// The rate limiter: wait until then.
    RateLimited(Instant),
    /// The breaker is open.
    BreakerOpen,
}

/// The delivery machine of one endpoint.
///
/// It owns the [`Batcher`], the [`RetryPolicy`] and its jitter RNG, the [`Health`] tracker,
/// the optional [`CircuitBreaker`], the concurrency and rate limits, and the endpoint's
/// request builder (its one [`Encoding`] and gzip setting). It performs no I/O and never
/// reads the clock; a driver feeds it inputs and carries out its outputs. Every event pushed
/// comes out in exactly one [`Settlement`] (or is taken back with
/// [`hand_over`](Self::hand_over)), so a store can persist an event's whole life from
/// [`poll_event`](Self::poll_event) alone: accepted (`push` returned `Ok`), in flight
/// ([`DeliveryEvent::Sent`]), waiting for a retry ([`DeliveryEvent::RetryScheduled`]),
/// delivered, given up or abandoned ([`DeliveryEvent::Settled`]).
///
/// `T` is the caller's tag for one event (a receipt slot, an outbox record id); the machine
/// carries it and hands it back in the event's settlement.
///
/// # Driving contract
///
/// **Inputs** (each may create outputs):
/// - [`push`](Self::push)`(event, tag, now)`: accept an event; `Err` hands it back when the
///   buffer limits are reached (push it again after outputs freed room);
/// - [`handle_response`](Self::handle_response)`(attempt, result, now, wall)`: the outcome of
///   a [`Transmit`];
/// - [`handle_timeout`](Self::handle_timeout)`(now)`: call at [`poll_timeout`](Self::poll_timeout)
///   or later (calling it early is harmless);
/// - [`enable`](Self::enable)`(now)`: re-open a disabled endpoint;
/// - [`begin_shutdown`](Self::begin_shutdown)`(deadline)`: seal every batch, deliver what is
///   held until the deadline, then abandon the rest.
///
/// **Outputs**, to drain after every input, in this order:
/// 1. [`poll_transmit`](Self::poll_transmit)`(now, wall)` until `None`: requests to send,
///    while the in-flight limit, rate limit and breaker allow;
/// 2. [`poll_event`](Self::poll_event) until `None`: settlements, retries, health changes, in
///    the order they happened;
/// 3. [`poll_timeout`](Self::poll_timeout): when to call `handle_timeout` next (valid once
///    `poll_transmit` returned `None`).
///
/// **Getters**: [`buffered_events`](Self::buffered_events), [`in_flight`](Self::in_flight),
/// [`retrying`](Self::retrying), [`limit`](Self::limit), [`health`](Self::health),
/// [`is_idle`](Self::is_idle), [`is_abandoned`](Self::is_abandoned),
/// [`attempt_events`](Self::attempt_events), [`batch_tags`](Self::batch_tags).
///
/// `now` must never go backwards; `wall` is only used to sign requests (their timestamp) and
/// to read HTTP-date `Retry-After` values.
///
/// ```
/// use std::time::{Duration, Instant, SystemTime};
/// use http::{HeaderMap, StatusCode};
/// use webhook_core::{AttemptResult, Delivery, DeliveryEvent, Endpoint, Event, Settled};
///
/// let endpoint = Endpoint::builder("https://hooks.example.com/in").build()?;
/// let mut machine = Delivery::builder(endpoint).jitter_seed(7).build::<u32>()?;
/// let t0 = Instant::now();
/// let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let event = Event::builder("evt_1", "policy").json_bytes(&br#"{"a":1}"#[..])?;
/// machine.push(event, 1, t0).map_err(|_| "full")?;
///
/// // Nothing goes out before the linger (default 1 s) ...
/// assert!(machine.poll_transmit(t0, wall).is_none());
/// let at = machine.poll_timeout().ok_or("a deadline")?;
/// machine.handle_timeout(at);
/// // ... then one signed request carrying the event.
/// let transmit = machine.poll_transmit(at, wall).ok_or("a request")?;
/// assert_eq!(transmit.attempt, 1);
/// assert_eq!(machine.attempt_events(transmit.attempt_id).map(|e| e[0].id()), Some("evt_1"));
///
/// // A 503 schedules a retry; a 200 then settles the event.
/// let headers = HeaderMap::new();
/// let answer = |status| AttemptResult::Response { status, headers: &headers };
/// machine.handle_response(transmit.attempt_id, answer(StatusCode::SERVICE_UNAVAILABLE), at, wall);
/// let retry_at = machine.poll_timeout().ok_or("a retry")?;
/// machine.handle_timeout(retry_at);
/// let again = machine.poll_transmit(retry_at, wall).ok_or("a retry")?;
/// assert_eq!((again.attempt, again.batch_id == transmit.batch_id), (2, true));
/// machine.handle_response(again.attempt_id, answer(StatusCode::OK), retry_at, wall);
/// let settled = std::iter::from_fn(|| machine.poll_event())
///     .find_map(|e| match e { DeliveryEvent::Settled(s) => Some(s), _ => None })
///     .ok_or("settled")?;
/// assert_eq!(settled.tags, vec![1]);
/// assert_eq!(settled.outcome, Settled::Delivered { status: StatusCode::OK, attempts: 2 });
/// assert!(machine.is_idle());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Delivery<T> {
    endpoint: Arc<Endpoint>,
    batcher: Batcher,
    max_buffered_events: usize,
    max_buffered_bytes: usize,
    retry: RetryPolicy,
    health: Health,
    breaker_config: Option<BreakerConfig>,
    breaker: Option<CircuitBreaker>,
    concurrency: Concurrency,
    limiter: Limiter,
    rate_limit: Option<RateLimit>,
    bucket: Option<Bucket>,
    rng: SplitMix64,
    /// Tags of the events inside the batcher.
    pending: Pending<T>,
    /// One batch taken from the batcher and waiting for permission to send.
    staged: Option<Outstanding<T>>,
    /// Batches sealed by an update (formed under the settings before it), sent before new ones.
    formed: VecDeque<Outstanding<T>>,
    /// A new batcher waiting for the old one to hand out the batches it holds back (ordered
    /// mode), with its tag queue.
    next_batcher: Option<(Batcher, Pending<T>)>,
    retries: BTreeMap<(Instant, u64), Outstanding<T>>,
    in_flight: HashMap<AttemptId, Outstanding<T>>,
    /// Events and event bytes of the batches out of the batcher (staged, in flight, retrying).
    held_events: usize,
    held_bytes: usize,
    events: VecDeque<DeliveryEvent<T>>,
    seq: u64,
    next_attempt: u64,
    stop: Stop,
    disabled: bool,
    disable_reason: Option<DisableReason>,
    /// Paused by the caller: nothing is sent; events are accepted up to the buffer limits.
    paused: bool,
    /// Retired by the caller ([`Delivery::retire`]).
    removed: bool,
    /// `Some(deadline)` once shutdown began (`Some(None)`: no deadline).
    shutdown: Option<Option<Instant>>,
    abandoned: bool,
}

impl<T> fmt::Debug for Delivery<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("endpoint", &self.endpoint)
            .field("buffered", &self.batcher.buffered_events())
            .field("in_flight", &self.in_flight.len())
            .field("retrying", &self.retries.len())
            .field("health", &self.health.state())
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// What `push` hands back when the machine is full: the event and its tag, untouched.
#[derive(Debug)]
#[non_exhaustive]
pub struct Full<T> {
    /// The event.
    pub event: Event,
    /// Its tag.
    pub tag: T,
}

impl Delivery<()> {
    /// Starts a builder for deliveries to `endpoint`.
    pub fn builder(endpoint: Endpoint) -> DeliveryBuilder {
        DeliveryBuilder {
            endpoint,
            batcher: None,
            retry: RetryPolicy::default(),
            health: HealthConfig::default(),
            breaker: None,
            concurrency: Concurrency::default(),
            rate_limit: None,
            jitter_seed: 0x5eed,
            run_id: 0,
        }
    }
}

impl<T> Delivery<T> {
    // ---- inputs ---------------------------------------------------------------------------

    /// Accepts an event with its tag.
    ///
    /// The batcher's buffer limits bound everything the machine holds: batches out for
    /// delivery or awaiting a retry count against them too, so while the endpoint is down the
    /// events wait with the caller (whose queue applies its overflow policy).
    ///
    /// An event that alone encodes above the batch byte limit is accepted and settles at once
    /// as given up ([`FailureReason::Oversize`]); on a disabled endpoint, as
    /// [`FailureReason::EndpointDisabled`]; after shutdown abandoned what was left, as
    /// [`Settled::Abandoned`].
    ///
    /// # Errors
    /// [`Full`], with the event and tag, when the buffer limits are reached.
    pub fn push(&mut self, event: Event, tag: T, now: Instant) -> Result<(), Full<T>> {
        if self.abandoned {
            let outcome = Settled::Abandoned(UndeliveredStage::NotSent);
            self.settle(None, vec![event], vec![tag], outcome);
            return Ok(());
        }
        if self.disabled || self.removed {
            let outcome = Settled::GaveUp(self.refusal());
            self.settle(None, vec![event], vec![tag], outcome);
            return Ok(());
        }
        if self.held_events > 0
            && (self.batcher.buffered_events() + self.held_events >= self.max_buffered_events
                || self.batcher.buffered_bytes() + self.held_bytes + event.len()
                    > self.max_buffered_bytes)
        {
            return Err(Full { event, tag });
        }
        let key = self.pending.key(&event);
        match self.batcher.push(event, now) {
            Ok(()) => {
                self.pending.push(key, tag);
                Ok(())
            }
            Err(PushError::Full { event, .. }) => Err(Full { event, tag }),
            Err(err) => {
                let event = err.into_event();
                self.settle(
                    None,
                    vec![event],
                    vec![tag],
                    Settled::GaveUp(FailureReason::Oversize),
                );
                Ok(())
            }
        }
    }

    /// Feeds the outcome of an attempt. An unknown id (an attempt abandoned at shutdown, or
    /// answered twice) is ignored.
    ///
    /// The retry policy decides: delivered, retry at a time, or give up; health, breaker and
    /// the adaptive concurrency limit learn from it. A 410 or `webhook-delivery: disable`
    /// disables the endpoint ([`HealthChange::Disabled`], then everything held settles as
    /// given up). While disabled, a success still delivers its batch; anything else gives it
    /// up.
    pub fn handle_response(
        &mut self,
        attempt: AttemptId,
        result: AttemptResult<'_>,
        now: Instant,
        wall: SystemTime,
    ) {
        let Some(mut o) = self.in_flight.remove(&attempt) else {
            return;
        };
        let (outcome, error, status) = match result {
            AttemptResult::Response { status, headers } => (
                AttemptOutcome::Response { status, headers },
                AttemptError::Status(status),
                Some(status),
            ),
            AttemptResult::Failed(AttemptError::Timeout) => {
                (AttemptOutcome::Timeout, AttemptError::Timeout, None)
            }
            AttemptResult::Failed(AttemptError::Refused) => {
                // Sending again would be refused again: given up now.
                self.health.on_failure(now);
                if let Some(b) = self.breaker.as_mut() {
                    b.record_failure(now);
                }
                self.give_up(o, FailureReason::Request(AttemptError::Refused.to_string()));
                self.health_events(now);
                return;
            }
            AttemptResult::Failed(e) => (AttemptOutcome::ConnectError, e, None),
        };
        if self.disabled || self.removed {
            match status.filter(StatusCode::is_success) {
                Some(status) => self.succeed(o, status),
                None => {
                    let reason = self.refusal();
                    self.give_up(o, reason);
                }
            }
            self.fail_held(now);
            return;
        }
        let state = o.retry.unwrap_or_else(|| RetryState::new(now));
        match self
            .retry
            .decide(&state, &outcome, now, wall, &mut self.rng)
        {
            RetryDecision::Delivered => {
                self.health.on_success(now);
                if let Some(b) = self.breaker.as_mut() {
                    b.record_success(now);
                }
                self.limiter.on_success();
                self.succeed(o, status.unwrap_or(StatusCode::OK));
            }
            RetryDecision::RetryAt { at, delay } => {
                self.health.on_failure(now);
                if let Some(b) = self.breaker.as_mut() {
                    b.record_failure(now);
                }
                self.limiter.on_throttle();
                o.last_error = Some(error.clone());
                if o.endpoint.gzip().is_none() {
                    o.body = None;
                }
                self.events.push_back(DeliveryEvent::RetryScheduled {
                    batch_id: o.id.clone(),
                    attempts: state.attempts(),
                    at,
                    delay,
                    error,
                });
                self.seq += 1;
                self.retries.insert((at, self.seq), o);
            }
            RetryDecision::GiveUp(why) => {
                let status = status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                if why != GiveUpReason::Aborted {
                    self.health.on_failure(now);
                }
                if let Some(b) = self.breaker.as_mut() {
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
                self.give_up(o, reason);
                if why == GiveUpReason::EndpointDisabled {
                    self.disable(DisableReason::Receiver { status }, now);
                }
            }
        }
        self.health_events(now);
    }

    /// Advances timers: batch lingers, health windows, the breaker's cool-down, retries due,
    /// and shutdown's deadline (past it, everything held settles as
    /// [`Settled::Abandoned`] and in-flight attempts are forgotten: cancel them).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.health.handle_timeout(now);
        if let Some(b) = self.breaker.as_mut() {
            b.handle_timeout(now);
        }
        self.health_events(now);
        if let Some(deadline) = self.shutdown {
            if self.abandoned {
                return;
            }
            self.batcher.flush_all(now);
            // Past the deadline, or nothing left but retries due after it, or paused (nothing
            // may be sent): abandon.
            let only_late_retries = self.in_flight.is_empty()
                && self.staged.is_none()
                && self.formed.is_empty()
                && self.batcher.buffered_events() == 0
                && deadline
                    .zip(self.retries.keys().next())
                    .is_some_and(|(d, &(at, _))| at > d);
            if deadline.is_some_and(|d| now >= d) || only_late_retries || self.paused {
                self.abandon(now);
                return;
            }
        }
        self.batcher.handle_timeout(now);
    }

    /// Re-opens a disabled endpoint: health and circuit breaker start afresh. Does nothing
    /// when it is not disabled.
    pub fn enable(&mut self, now: Instant) {
        if !self.disabled {
            return;
        }
        self.disabled = false;
        self.disable_reason = None;
        self.health.enable(now);
        // The `Enabled` health event is the caller's to announce (it re-opened its intake).
        while self.health.poll_event().is_some() {}
        self.breaker = self.breaker_config.map(CircuitBreaker::new);
    }

    /// Begins shutdown: every batch is sealed now and sent; retries continue until
    /// `deadline` (`None`: no deadline), after which what is left settles as
    /// [`Settled::Abandoned`]. A second call may only bring the deadline forward.
    pub fn begin_shutdown(&mut self, deadline: Option<Instant>) {
        // A later call may only bring the deadline forward.
        self.shutdown = match (self.shutdown, deadline) {
            (None, d) | (Some(None), d @ Some(_)) => Some(d),
            (Some(Some(old)), Some(new)) => Some(Some(old.min(new))),
            (keep, None) => keep,
        };
    }

    /// Pauses or resumes sending. While paused nothing is sent (retries that fall due wait),
    /// events are still accepted up to the buffer limits, and attempts in flight finish and
    /// settle as usual. Shutdown abandons what a paused machine holds at once.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        if !paused && matches!(self.stop, Stop::Halted) {
            self.stop = Stop::Idle;
        }
    }

    /// `true` while paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Retires the machine (its endpoint is removed without delivering first): everything it
    /// holds but has not sent settles now as given up with [`FailureReason::EndpointRemoved`];
    /// attempts in flight finish (a 2xx delivers their batch, anything else gives it up with
    /// the same reason, never a retry), and later pushes are given up at once. The machine
    /// is finished when [`is_idle`](Self::is_idle).
    pub fn retire(&mut self, now: Instant) {
        if self.removed {
            return;
        }
        self.removed = true;
        self.fail_held(now);
    }

    /// New settings ([`Delivery::builder`]'s, with a **new** `run_id` so batch ids never
    /// repeat), applied without losing or repeating anything:
    ///
    /// * the events buffered in the batcher are sealed into batches under the old settings;
    ///   batches already formed (sealed, waiting for a retry, in flight) keep the request
    ///   builder they were formed with (URL, auth and secrets, headers, encoding), so only
    ///   batches formed after the update use the new one;
    /// * the retry policy, health windows and buffer limits apply from now on to every
    ///   decision (health keeps its state); the circuit breaker, concurrency and rate limit are
    ///   replaced, starting afresh, only when they changed;
    /// * under an ordered batcher that still holds batches back behind ones out for delivery,
    ///   the new batcher takes over when the old one has handed them all out.
    ///
    /// # Errors
    /// What [`DeliveryBuilder::build`] refuses; the machine is then unchanged.
    pub fn update(
        &mut self,
        settings: DeliveryBuilder,
        now: Instant,
    ) -> Result<(), DeliveryConfigError> {
        let health = settings.health;
        let fresh = settings.build::<T>()?;
        self.seal_all(now);
        let Self {
            endpoint,
            batcher,
            max_buffered_events,
            max_buffered_bytes,
            retry,
            breaker_config,
            breaker,
            concurrency,
            limiter,
            rate_limit,
            bucket,
            pending,
            ..
        } = fresh;
        self.endpoint = endpoint;
        if self.batcher.is_empty() && self.pending.is_empty() {
            self.batcher = batcher;
            self.pending = pending;
            self.next_batcher = None;
        } else {
            self.next_batcher = Some((batcher, pending));
        }
        self.max_buffered_events = max_buffered_events;
        self.max_buffered_bytes = max_buffered_bytes;
        self.retry = retry;
        self.health.set_config(health);
        if breaker_config != self.breaker_config {
            self.breaker_config = breaker_config;
            self.breaker = breaker;
        }
        if concurrency != self.concurrency {
            self.concurrency = concurrency;
            self.limiter = limiter;
        }
        if rate_limit != self.rate_limit {
            self.rate_limit = rate_limit;
            self.bucket = bucket;
        }
        Ok(())
    }

    /// `true` when a machine built afresh from the same settings would behave the same: nothing
    /// held, healthy, not disabled, paused or retired, the breaker closed (or none), the
    /// concurrency limit at its start and the rate-limit bucket full. A driver may then drop
    /// the machine while its endpoint is idle, and build a new one when events come.
    pub fn is_at_rest(&self, now: Instant) -> bool {
        self.is_idle()
            && self.events.is_empty()
            && self.health.state() == HealthState::Healthy
            && !self.disabled
            && !self.paused
            && !self.removed
            && self.shutdown.is_none()
            && self
                .breaker
                .as_ref()
                .is_none_or(|b| b.state() == crate::delivery::breaker::BreakerState::Closed)
            && self.limiter.limit() == self.concurrency.initial()
            && self.bucket.as_ref().is_none_or(|b| b.is_full_at(now))
    }

    /// Takes back a batch a store kept across a restart, to be sent again at `due` with the
    /// same batch id (the `webhook-id`, so receivers deduplicate), under the current request
    /// settings. `attempts` were made (at least one), the first at `first_attempt_at`; the
    /// retry policy counts on from there (its attempt and elapsed limits included).
    ///
    /// The events count against the buffer limits like pushed ones, but are never refused:
    /// a restart hands back what it held before. Each tag comes out in one settlement, as for
    /// [`push`](Self::push).
    ///
    /// ```
    /// use std::time::{Duration, Instant, SystemTime};
    /// use webhook_core::{BatchId, Delivery, Endpoint, Event};
    ///
    /// let endpoint = Endpoint::builder("https://hooks.example.com/in").build()?;
    /// let mut machine = Delivery::builder(endpoint).build::<u32>()?;
    /// let t0 = Instant::now();
    /// let event = Event::builder("evt_1", "policy").json_bytes(&br#"{"a":1}"#[..])?;
    /// let due = t0 + Duration::from_secs(5);
    /// machine.restore(BatchId::new("msg_kept"), vec![event], vec![7], 2, t0, due);
    /// assert!(machine.poll_transmit(t0, SystemTime::now()).is_none());
    /// let t = machine.poll_transmit(due, SystemTime::now()).ok_or("due")?;
    /// assert_eq!((t.batch_id.as_str(), t.attempt), ("msg_kept", 3));
    /// assert_eq!(t.request.headers()["webhook-id"], "msg_kept");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn restore(
        &mut self,
        batch_id: BatchId,
        events: Vec<Event>,
        tags: Vec<T>,
        attempts: u32,
        first_attempt_at: Instant,
        due: Instant,
    ) {
        if events.is_empty() {
            return;
        }
        let event_bytes = events.iter().map(Event::len).sum();
        self.held_events += events.len();
        self.held_bytes += event_bytes;
        let o = Outstanding {
            id: batch_id,
            endpoint: Arc::clone(&self.endpoint),
            events,
            event_bytes,
            tags,
            body: None,
            retry: Some(RetryState::resumed(first_attempt_at, attempts)),
            last_error: None,
        };
        if self.removed || self.disabled {
            let reason = self.refusal();
            self.give_up(o, reason);
            return;
        }
        self.seq += 1;
        self.retries.insert((due, self.seq), o);
    }

    /// Hands a batch waiting for a retry over to the caller, which keeps it until it is due
    /// (a queue shared by many processes schedules retries on its server, so that any of them
    /// sends the retry and none holds it in memory meanwhile). The batch leaves the machine
    /// without a settlement: its events and tags are returned instead, in its order, and no
    /// longer count against the buffer limits. An ordered batcher stops holding later
    /// batches of its key back behind it. When the caller brings it back, it is
    /// [`restore`](Self::restore)d with its id and attempts.
    ///
    /// `None` (and nothing changes) when no batch with that id waits for a retry: in flight,
    /// staged or unknown batches are not handed over.
    ///
    /// ```
    /// use std::time::{Duration, Instant, SystemTime};
    /// use http::{HeaderMap, StatusCode};
    /// use webhook_core::{AttemptResult, Delivery, DeliveryEvent, Endpoint, Event};
    ///
    /// let endpoint = Endpoint::builder("https://hooks.example.com/in").build()?;
    /// let mut machine = Delivery::builder(endpoint).build::<u32>()?;
    /// let t0 = Instant::now();
    /// let wall = SystemTime::now();
    /// let event = Event::builder("evt_1", "policy").json_bytes(&br#"{"a":1}"#[..])?;
    /// machine.push(event, 7, t0).map_err(|_| "full")?;
    /// let at = machine.poll_timeout().ok_or("linger")?;
    /// machine.handle_timeout(at);
    /// let t = machine.poll_transmit(at, wall).ok_or("a request")?;
    /// let headers = HeaderMap::new();
    /// let busy = AttemptResult::Response { status: StatusCode::SERVICE_UNAVAILABLE, headers: &headers };
    /// machine.handle_response(t.attempt_id, busy, at, wall);
    /// assert_eq!(machine.retrying(), 1);
    /// let (events, tags) = machine.hand_over(&t.batch_id).ok_or("waiting")?;
    /// assert_eq!((events[0].id(), tags), ("evt_1", vec![7]));
    /// assert!(machine.is_idle());
    /// // No settlement: the events are the caller's now.
    /// assert!(std::iter::from_fn(|| machine.poll_event())
    ///     .all(|e| !matches!(e, DeliveryEvent::Settled(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hand_over(&mut self, batch: &BatchId) -> Option<(Vec<Event>, Vec<T>)> {
        let key = self
            .retries
            .iter()
            .find(|(_, o)| &o.id == batch)
            .map(|(k, _)| *k)?;
        let o = self.retries.remove(&key)?;
        self.release(&o);
        // An ordered batcher releases what it held back behind this batch.
        let _ = self.batcher.complete(&o.id, BatchOutcome::HandedOver);
        Some((o.events, o.tags))
    }

    // ---- outputs --------------------------------------------------------------------------

    /// The next request to send, while the in-flight limit, the rate limit and the breaker
    /// allow: due retries first, then new batches. `None` also records why, for
    /// [`poll_timeout`](Self::poll_timeout).
    pub fn poll_transmit(&mut self, now: Instant, wall: SystemTime) -> Option<Transmit> {
        loop {
            if self.disabled || self.abandoned || self.paused || self.removed {
                self.stop = Stop::Halted;
                return None;
            }
            if self.in_flight.len() >= self.limiter.limit() {
                self.stop = Stop::Busy;
                return None;
            }
            let due = self.retries.keys().next().is_some_and(|&(at, _)| at <= now);
            if !due && self.staged.is_none() {
                if self.shutdown.is_some() {
                    self.batcher.flush_all(now);
                }
                self.staged = match self.formed.pop_front() {
                    Some(o) => Some(o),
                    None => self.take_batch(now),
                };
                if self.staged.is_none() {
                    self.stop = Stop::Idle;
                    return None;
                }
            }
            if let Some(bucket) = self.bucket.as_mut()
                && let Err(at) = bucket.try_take(now)
            {
                self.stop = Stop::RateLimited(at);
                return None;
            }
            if let Some(b) = self.breaker.as_mut()
                && !b.try_acquire(now)
            {
                // The token taken above is spent; the breaker will reopen the flow later.
                self.stop = if b.poll_timeout().is_some() {
                    Stop::BreakerOpen
                } else {
                    Stop::Busy
                };
                return None;
            }
            let next = if due {
                self.retries.pop_first().map(|(_, o)| o)
            } else {
                self.staged.take()
            };
            let Some(o) = next else {
                self.stop = Stop::Idle;
                return None;
            };
            if let Some(transmit) = self.dispatch(o, now, wall) {
                return Some(transmit);
            }
        }
    }

    /// The next output event; poll until `None` after every input.
    pub fn poll_event(&mut self) -> Option<DeliveryEvent<T>> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if ever: the
    /// earliest of the batch lingers, health windows, breaker cool-down, the next retry or
    /// rate-limit token (unless the in-flight limit holds everything back), and shutdown's
    /// deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.abandoned {
            return None;
        }
        let waiting = match self.stop {
            Stop::Idle => self.retries.keys().next().map(|&(at, _)| at),
            Stop::RateLimited(at) => Some(at),
            Stop::Busy | Stop::BreakerOpen | Stop::Halted => None,
        };
        [
            self.batcher.poll_timeout(),
            self.health.poll_timeout(),
            self.breaker.as_ref().and_then(CircuitBreaker::poll_timeout),
            waiting,
            self.shutdown.flatten(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- getters --------------------------------------------------------------------------

    /// Events in the batcher, not yet in a batch taken for sending.
    pub fn buffered_events(&self) -> usize {
        self.batcher.buffered_events()
    }

    /// Attempts in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Batches waiting for a retry.
    pub fn retrying(&self) -> usize {
        self.retries.len()
    }

    /// The current in-flight limit (moves under [`Concurrency::Adaptive`]).
    pub fn limit(&self) -> usize {
        self.limiter.limit()
    }

    /// The endpoint's health.
    pub fn health(&self) -> HealthState {
        self.health.state()
    }

    /// `true` while disabled (until [`enable`](Self::enable)).
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// `true` when nothing is held: no buffered event, batch, retry or attempt in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
            && self.retries.is_empty()
            && self.staged.is_none()
            && self.formed.is_empty()
            && self.batcher.buffered_events() == 0
            && self.pending.is_empty()
            && self.next_batcher.is_none()
    }

    /// `true` once shutdown's deadline abandoned what was left: the machine is finished.
    pub fn is_abandoned(&self) -> bool {
        self.abandoned
    }

    /// The events an attempt in flight carries.
    pub fn attempt_events(&self, attempt: AttemptId) -> Option<&[Event]> {
        self.in_flight.get(&attempt).map(|o| o.events.as_slice())
    }

    /// The tags of a batch held (in flight, waiting for a retry, or staged).
    pub fn batch_tags(&self, batch: &BatchId) -> Option<&[T]> {
        self.in_flight
            .values()
            .chain(self.retries.values())
            .chain(self.staged.iter())
            .chain(self.formed.iter())
            .find(|o| &o.id == batch)
            .map(|o| o.tags.as_slice())
    }

    /// The request builder.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    // ---- internals ------------------------------------------------------------------------

    fn take_batch(&mut self, now: Instant) -> Option<Outstanding<T>> {
        let batch = match self.batcher.poll_batch(now) {
            Some(batch) => batch,
            None => {
                // An update's batcher takes over once the old one holds nothing back.
                if self.batcher.is_empty()
                    && self.pending.is_empty()
                    && let Some((batcher, pending)) = self.next_batcher.take()
                {
                    self.batcher = batcher;
                    self.pending = pending;
                }
                return None;
            }
        };
        // Encoded once per batch (and compressed when the endpoint says so); every attempt
        // reuses the bytes.
        let body = match self.endpoint.gzip() {
            None => batch.body(),
            Some(_) => self
                .endpoint
                .encode(batch.events())
                .unwrap_or_else(|_| batch.body()),
        };
        let id = batch.id().clone();
        let events = batch.into_events();
        let event_bytes = events.iter().map(Event::len).sum();
        let tags = self.pending.take(&events);
        self.held_events += events.len();
        self.held_bytes += event_bytes;
        Some(Outstanding {
            id,
            endpoint: Arc::clone(&self.endpoint),
            events,
            event_bytes,
            tags,
            body: Some(body),
            retry: None,
            last_error: None,
        })
    }

    fn dispatch(
        &mut self,
        mut o: Outstanding<T>,
        now: Instant,
        wall: SystemTime,
    ) -> Option<Transmit> {
        match o.retry.as_mut() {
            Some(state) => state.record_attempt(),
            None => o.retry = Some(RetryState::new(now)),
        }
        let attempt = o.retry.map_or(1, |s| s.attempts());
        let body = match o.body.as_ref() {
            Some(body) => Ok(body),
            None => match Body::encode(o.endpoint.encoding(), &o.events) {
                Ok(body) => Ok(&*o.body.insert(body)),
                Err(err) => Err(err.to_string()),
            },
        };
        let built = body.and_then(|body| {
            o.endpoint
                .request(o.id.as_str(), body, wall)
                .map_err(|e| e.to_string())
        });
        let request = match built {
            Ok(r) => r,
            Err(err) => {
                if let Some(b) = self.breaker.as_mut() {
                    // Release the permit taken for this request.
                    b.record_success(now);
                }
                self.give_up(o, FailureReason::Request(err));
                return None;
            }
        };
        self.next_attempt += 1;
        let attempt_id = AttemptId(self.next_attempt);
        let transmit = Transmit {
            attempt_id,
            batch_id: o.id.clone(),
            attempt,
            events: o.events.len(),
            request,
        };
        self.events.push_back(DeliveryEvent::Sent {
            attempt_id,
            batch_id: o.id.clone(),
            attempt,
        });
        self.in_flight.insert(attempt_id, o);
        Some(transmit)
    }

    fn release(&mut self, o: &Outstanding<T>) {
        self.held_events -= o.events.len();
        self.held_bytes -= o.event_bytes;
    }

    fn succeed(&mut self, o: Outstanding<T>, status: StatusCode) {
        self.release(&o);
        let attempts = o.retry.map_or(1, |s| s.attempts());
        // Unknown ids are only possible outside ordered mode, where `complete` only counts.
        let _ = self.batcher.complete(&o.id, BatchOutcome::Delivered);
        self.settle(
            Some(o.id),
            o.events,
            o.tags,
            Settled::Delivered { status, attempts },
        );
    }

    fn give_up(&mut self, o: Outstanding<T>, reason: FailureReason) {
        self.release(&o);
        let _ = self.batcher.complete(&o.id, BatchOutcome::Abandoned);
        self.settle(Some(o.id), o.events, o.tags, Settled::GaveUp(reason));
    }

    fn settle(
        &mut self,
        batch_id: Option<BatchId>,
        events: Vec<Event>,
        tags: Vec<T>,
        outcome: Settled,
    ) {
        self.events.push_back(DeliveryEvent::Settled(Settlement {
            batch_id,
            events,
            tags,
            outcome,
        }));
    }

    fn disable(&mut self, reason: DisableReason, now: Instant) {
        if self.disabled {
            return;
        }
        self.disable_reason = Some(reason);
        self.health.disable(now);
        self.health_events(now);
    }

    /// Translates the health tracker's events; a disable gives up everything held.
    fn health_events(&mut self, now: Instant) {
        while let Some(ev) = self.health.poll_event() {
            let change = match ev {
                HealthEvent::Failing { since } => HealthChange::Failing { since },
                HealthEvent::Exhausted { since, .. } => HealthChange::Failed { since },
                HealthEvent::Recovered { after } => HealthChange::Recovered { after },
                HealthEvent::Disabled { .. } => {
                    let reason = self
                        .disable_reason
                        .take()
                        .unwrap_or(DisableReason::HealthWindow);
                    self.disabled = true;
                    // Announced first, then what it held fails.
                    self.events
                        .push_back(DeliveryEvent::Health(HealthChange::Disabled { reason }));
                    self.fail_held(now);
                    continue;
                }
                _ => continue,
            };
            self.events.push_back(DeliveryEvent::Health(change));
        }
    }

    /// Gives up the batches held (buffered, staged, formed, waiting for a retry), not those in
    /// flight.
    fn fail_held(&mut self, now: Instant) {
        let reason = self.refusal();
        // Giving a batch up completes it, which may release batches an ordered batcher held
        // back behind it: seal and give up again until nothing more comes out. Batches held
        // back behind attempts in flight come out when those finish (`handle_response`).
        loop {
            self.seal_all(now);
            if self.formed.is_empty() && self.staged.is_none() && self.retries.is_empty() {
                return;
            }
            while let Some(o) = self.formed.pop_front() {
                self.give_up(o, reason.clone());
            }
            if let Some(o) = self.staged.take() {
                self.give_up(o, reason.clone());
            }
            while let Some((_, o)) = self.retries.pop_first() {
                self.give_up(o, reason.clone());
            }
        }
    }

    /// Seals everything the batcher holds and moves the batches it hands out to `formed`.
    fn seal_all(&mut self, now: Instant) {
        self.batcher.flush_all(now);
        while let Some(o) = self.take_batch(now) {
            self.formed.push_back(o);
        }
    }

    /// Why events are refused: retired or disabled.
    fn refusal(&self) -> FailureReason {
        if self.removed {
            FailureReason::EndpointRemoved
        } else {
            FailureReason::EndpointDisabled
        }
    }

    /// Shutdown's deadline passed: everything held settles as abandoned.
    fn abandon(&mut self, now: Instant) {
        self.abandoned = true;
        let mut in_flight: Vec<_> = self.in_flight.drain().collect();
        in_flight.sort_by_key(|(id, _)| *id);
        for (_, o) in in_flight {
            self.release(&o);
            self.settle(
                Some(o.id),
                o.events,
                o.tags,
                Settled::Abandoned(UndeliveredStage::InFlight),
            );
        }
        for (_, o) in std::mem::take(&mut self.retries) {
            self.release(&o);
            let stage = match o.last_error {
                Some(last) => UndeliveredStage::RetryPending { last },
                None => UndeliveredStage::NotSent,
            };
            self.settle(Some(o.id), o.events, o.tags, Settled::Abandoned(stage));
        }
        for o in self
            .staged
            .take()
            .into_iter()
            .chain(std::mem::take(&mut self.formed))
        {
            self.release(&o);
            self.settle(
                Some(o.id),
                o.events,
                o.tags,
                Settled::Abandoned(UndeliveredStage::NotSent),
            );
        }
        self.batcher.flush_all(now);
        while let Some(batch) = self.batcher.poll_batch(now) {
            let id = batch.id().clone();
            let events = batch.into_events();
            let tags = self.pending.take(&events);
            self.settle(
                Some(id),
                events,
                tags,
                Settled::Abandoned(UndeliveredStage::NotSent),
            );
        }
        // An ordered batcher may hold batches behind ones that never completed.
        let left = self.pending.drain();
        if !left.is_empty() {
            self.settle(
                None,
                Vec::new(),
                left,
                Settled::Abandoned(UndeliveredStage::NotSent),
            );
        }
    }
}

/// Tags of the events inside the batcher. Without key partitioning the batcher emits events in
/// push order, so a FIFO suffices; with it, groups interleave and tags are found by event id
/// (FIFO among equal ids).
enum Pending<T> {
    Fifo(VecDeque<T>),
    ById(HashMap<Box<str>, VecDeque<T>>),
}

impl<T> Pending<T> {
    fn key(&self, event: &Event) -> Option<Box<str>> {
        match self {
            Self::Fifo(_) => None,
            Self::ById(_) => Some(event.id().into()),
        }
    }

    fn push(&mut self, key: Option<Box<str>>, tag: T) {
        match (self, key) {
            (Self::Fifo(q), _) => q.push_back(tag),
            (Self::ById(m), Some(k)) => m.entry(k).or_default().push_back(tag),
            // `key` returns `Some` for `ById`.
            (Self::ById(m), None) => m.entry(Box::from("")).or_default().push_back(tag),
        }
    }

    /// The tags of `events`, a batch just taken from the batcher.
    fn take(&mut self, events: &[Event]) -> Vec<T> {
        match self {
            Self::Fifo(q) => {
                let n = events.len().min(q.len());
                q.drain(..n).collect()
            }
            Self::ById(m) => {
                let mut tags = Vec::with_capacity(events.len());
                for e in events {
                    if let Some(q) = m.get_mut(e.id()) {
                        if let Some(t) = q.pop_front() {
                            tags.push(t);
                        }
                        if q.is_empty() {
                            m.remove(e.id());
                        }
                    }
                }
                tags
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Self::Fifo(q) => q.is_empty(),
            Self::ById(m) => m.is_empty(),
        }
    }

    fn drain(&mut self) -> Vec<T> {
        match self {
            Self::Fifo(q) => q.drain(..).collect(),
            Self::ById(m) => m.drain().flat_map(|(_, q)| q).collect(),
        }
    }
}
