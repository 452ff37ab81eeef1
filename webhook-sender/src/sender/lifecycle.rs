//! What a sender reports about its endpoints: lifecycle events, health snapshots, dead
//! letters, the shutdown report and the test-integration report.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use tokio::sync::Notify;
use webhook_core::{BatchId, Delivery, Event, HealthState};

use super::endpoint::EndpointConfig;
use super::metrics::EndpointMetrics;
use super::queue::{Drivers, Queue};
use super::receipt::{FailureReason, Slot};
use super::registry::RemovePolicy;
use crate::transport::SharedTransport;

/// A change in an endpoint's life, broadcast to [`Sender::lifecycle`](crate::Sender::lifecycle)
/// subscribers. Slow subscribers lose the oldest events (tokio `broadcast` semantics); the
/// counters in [`EndpointHealth`] are exact.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LifecycleEvent {
    /// Healthy → failing: the first failed attempt after a success.
    Failing {
        /// The endpoint.
        endpoint: Arc<str>,
        /// When the first failure was seen.
        since: Instant,
    },
    /// No success for the endpoint's `failed_after` window (Soveren shows "failed").
    Failed {
        /// The endpoint.
        endpoint: Arc<str>,
        /// First failure.
        since: Instant,
    },
    /// Failing or failed → healthy.
    Recovered {
        /// The endpoint.
        endpoint: Arc<str>,
        /// How long it had been failing.
        after: Duration,
    },
    /// The endpoint is disabled; its queued events, and every event sent to it until
    /// [`Sender::enable`](crate::Sender::enable), fail with
    /// [`FailureReason::EndpointDisabled`].
    Disabled {
        /// The endpoint.
        endpoint: Arc<str>,
        /// Why.
        reason: DisableReason,
    },
    /// A disabled endpoint was re-enabled by [`Sender::enable`](crate::Sender::enable): it
    /// accepts events again and its health is reset to healthy. Always follows the
    /// [`Disabled`](Self::Disabled) event it undoes.
    Enabled {
        /// The endpoint.
        endpoint: Arc<str>,
    },
    /// A batch was given up on and handed to the dead-letter hook.
    Exhausted {
        /// The endpoint.
        endpoint: Arc<str>,
        /// The batch (its `webhook-id`).
        batch_id: BatchId,
        /// Events in it.
        events: usize,
        /// Why.
        reason: FailureReason,
    },
    /// An event was dropped by the overflow policy.
    Dropped {
        /// The endpoint.
        endpoint: Arc<str>,
        /// The dropped event's id.
        event_id: Arc<str>,
    },
}

pub use webhook_core::{DisableReason, UndeliveredStage};

/// Counters of one endpoint since the sender started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Events acknowledged with a 2xx.
    pub delivered: u64,
    /// Events given up on (rejected, exhausted, aborted, disabled, oversize).
    pub failed: u64,
    /// Events dropped by the overflow policy, or by a removal under
    /// [`RemovePolicy::Drop`](crate::RemovePolicy::Drop).
    pub dropped: u64,
    /// Requests sent (every attempt).
    pub requests: u64,
    /// Attempts scheduled for a retry.
    pub retries: u64,
    /// Batches acknowledged.
    pub batches_delivered: u64,
}

/// A snapshot of one endpoint, from [`Sender::health`](crate::Sender::health).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EndpointHealth {
    /// The endpoint's name.
    pub endpoint: Arc<str>,
    /// Healthy, failing since, failed since, or disabled at.
    pub state: HealthState,
    /// Events waiting in the intake queue.
    pub queued: usize,
    /// Events buffered in the batcher (not yet sent).
    pub buffered: usize,
    /// Requests in flight.
    pub in_flight: usize,
    /// Batches waiting for a retry.
    pub retrying: usize,
    /// The current in-flight limit (changes under adaptive concurrency).
    pub concurrency_limit: usize,
    /// Counters.
    pub counters: Counters,
}

/// Events the sender gave up on, handed to the dead-letter hook
/// ([`SenderBuilder::dead_letter`](crate::SenderBuilder::dead_letter)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The endpoint.
    pub endpoint: Arc<str>,
    /// The batch id (the `webhook-id` that was sent).
    pub batch_id: Option<BatchId>,
    /// The events, in batch order.
    pub events: Vec<Event>,
    /// Why they were given up on.
    pub reason: FailureReason,
}

/// Events not delivered by [`Sender::shutdown`](crate::Sender::shutdown).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Undelivered {
    /// The endpoint.
    pub endpoint: Arc<str>,
    /// The events.
    pub events: Vec<Event>,
    /// Where they were when the deadline passed.
    pub stage: UndeliveredStage,
}

/// What [`Sender::shutdown`](crate::Sender::shutdown) could not deliver.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Undelivered events, grouped as they were held.
    pub undelivered: Vec<Undelivered>,
}

impl ShutdownReport {
    /// Number of undelivered events.
    #[must_use]
    pub fn undelivered_events(&self) -> usize {
        self.undelivered.iter().map(|u| u.events.len()).sum()
    }

    /// `true` when everything was delivered (or given up on through the dead-letter hook).
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.undelivered.is_empty()
    }
}

/// The answer to [`Sender::test_integration`](crate::Sender::test_integration).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TestReport {
    /// The status (a 2xx means the integration works: Soveren shows "200 OK").
    pub status: StatusCode,
    /// Time from sending the request to reading the (capped) response.
    pub latency: Duration,
    /// Response headers.
    pub headers: HeaderMap,
    /// The response body, at most [`TEST_BODY_LIMIT`] bytes.
    pub body: Bytes,
    /// Whether the body was cut.
    pub body_truncated: bool,
}

impl TestReport {
    /// `true` for a 2xx.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }
}

/// Bytes of response body kept in a [`TestReport`].
pub const TEST_BODY_LIMIT: usize = 4096;

/// State of one endpoint shared between its driver and the `Sender` handles.
pub(crate) struct Shared {
    pub(crate) name: Arc<str>,
    pub(crate) queue: Queue,
    pub(crate) delivered: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) dropped: AtomicU64,
    /// Events handed to the dead-letter hook.
    pub(crate) dead_lettered: AtomicU64,
    /// Events refused at the queue after the endpoint was removed (routed by a send that
    /// raced the removal).
    pub(crate) refused: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) batches_delivered: AtomicU64,
    pub(crate) buffered: AtomicUsize,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) retrying: AtomicUsize,
    pub(crate) limit: AtomicUsize,
    /// Bumped by every change the driver must look at (configuration, pause, removal,
    /// re-enable); the driver compares it with the last one it applied.
    pub(crate) control: AtomicU64,
    state: Mutex<Published>,
    /// The machine of a parked driver that was not at rest (failing, disabled, ...), with the
    /// configuration revision it runs.
    pub(crate) parked: Mutex<Option<(Box<Delivery<Slot>>, u64)>>,
    /// Notified when the driver of a removed endpoint has settled everything.
    pub(crate) retired: Notify,
    /// Wakes the driver when the registry changed something (pause, resume, update, enable,
    /// removal), whatever it is waiting for.
    pub(crate) controlled: Notify,
    pub(crate) metrics: EndpointMetrics,
}

/// What the registry and the driver share under one lock: the configuration, the endpoint's
/// phase, its health as published by the driver, and the last success and error.
pub(crate) struct Published {
    pub(crate) cfg: Arc<EndpointConfig>,
    pub(crate) transport: SharedTransport,
    /// Revision of `cfg` (bumped by every update).
    pub(crate) revision: u64,
    pub(crate) health: HealthState,
    pub(crate) enable_requested: bool,
    pub(crate) untested: bool,
    pub(crate) paused: bool,
    pub(crate) removal: Option<RemovePolicy>,
    pub(crate) retired: bool,
    pub(crate) last_success: Option<SystemTime>,
    pub(crate) last_error: Option<LastError>,
}

impl Shared {
    pub(crate) fn new(
        cfg: Arc<EndpointConfig>,
        transport: SharedTransport,
        drivers: Arc<Drivers>,
    ) -> Self {
        let name = cfg.name.clone();
        Self {
            queue: Queue::new(cfg.queue_capacity, cfg.overflow, drivers),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            batches_delivered: AtomicU64::new(0),
            buffered: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            retrying: AtomicUsize::new(0),
            limit: AtomicUsize::new(cfg.concurrency.initial()),
            control: AtomicU64::new(0),
            state: Mutex::new(Published {
                health: HealthState::Healthy,
                enable_requested: false,
                untested: cfg.require_test,
                paused: cfg.paused,
                removal: None,
                retired: false,
                last_success: None,
                last_error: None,
                revision: 0,
                transport,
                cfg,
            }),
            parked: Mutex::new(None),
            retired: Notify::new(),
            controlled: Notify::new(),
            metrics: EndpointMetrics::new(&name),
            name,
        }
    }

    pub(crate) fn published(&self) -> std::sync::MutexGuard<'_, Published> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells the driver to look at the published state again (and wakes it).
    pub(crate) fn poke(&self) {
        self.control.fetch_add(1, Ordering::AcqRel);
        self.controlled.notify_one();
    }

    /// The driver publishes its health state (ignored while a re-enable is pending).
    pub(crate) fn set_state(&self, state: HealthState) {
        let mut p = self.published();
        if !p.enable_requested {
            p.health = state;
        }
    }

    /// `Sender::enable`, after reopening the queue: shows the endpoint healthy and asks the
    /// driver to reset its health (the caller wakes it).
    pub(crate) fn request_enable(&self) {
        let mut p = self.published();
        p.health = HealthState::Healthy;
        p.enable_requested = true;
    }

    pub(crate) fn snapshot(&self) -> EndpointHealth {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EndpointHealth {
            endpoint: self.name.clone(),
            state: self.published().health,
            queued: self.queue.len(),
            buffered: self.buffered.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            retrying: self.retrying.load(Ordering::Relaxed),
            concurrency_limit: self.limit.load(Ordering::Relaxed),
            counters: Counters {
                delivered: r(&self.delivered),
                failed: r(&self.failed),
                dropped: r(&self.dropped),
                requests: r(&self.requests),
                retries: r(&self.retries),
                batches_delivered: r(&self.batches_delivered),
            },
        }
    }

    /// The endpoint's status as the application shows it ([`EndpointStatus`]).
    pub(crate) fn status(&self, now: Instant, wall: SystemTime) -> EndpointStatus {
        let health = self.snapshot();
        let p = self.published();
        let at = |since: Instant| {
            wall.checked_sub(now.saturating_duration_since(since))
                .unwrap_or(wall)
        };
        let state = if p.removal.is_some() {
            EndpointState::Removing
        } else if p.untested {
            EndpointState::Untested
        } else if let HealthState::Disabled { .. } = p.health {
            EndpointState::Disabled
        } else if p.paused {
            EndpointState::Paused
        } else {
            match p.health {
                HealthState::Failing { since } => EndpointState::Failing { since: at(since) },
                HealthState::Failed { since } => EndpointState::Failed { since: at(since) },
                _ => EndpointState::Connected,
            }
        };
        EndpointStatus {
            endpoint: self.name.clone(),
            tenant: p.cfg.subscription.tenant.as_deref().map(Arc::from),
            state,
            revision: p.revision,
            last_success: p.last_success,
            last_error: p.last_error.clone(),
            queued: health.queued,
            buffered: health.buffered,
            in_flight: health.in_flight,
            retrying: health.retrying,
            counters: health.counters,
        }
    }
}

/// What an endpoint is doing, as the seed products' settings pages show it (Soveren's
/// connected/failed, Sysdig's untested integration, ConnectSecure's "Error Sending Request").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointState {
    /// Added with [`require_test`](crate::EndpointConfigBuilder::require_test): receives
    /// nothing until a test passes or it is enabled explicitly.
    Untested,
    /// Delivering (or idle) without failure.
    Connected,
    /// Attempts fail since then (retries go on).
    Failing {
        /// The first failure.
        since: SystemTime,
    },
    /// No success within the endpoint's `failed_after` window (Soveren's 15 minutes).
    Failed {
        /// The first failure.
        since: SystemTime,
    },
    /// Paused: events wait in its queue.
    Paused,
    /// Disabled by its receiver (410, `webhook-delivery: disable`) or its health window; see
    /// [`Sender::enable`](crate::Sender::enable).
    Disabled,
    /// Being removed: settling what it held.
    Removing,
}

/// The last error seen at an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LastError {
    /// When.
    pub at: SystemTime,
    /// What (an HTTP status, a timeout, a connection error, or why events were given up).
    pub error: String,
}

/// One endpoint's status, from [`Sender::status`](crate::Sender::status).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStatus {
    /// The endpoint's name.
    pub endpoint: Arc<str>,
    /// Its tenant (`None`: every tenant).
    pub tenant: Option<Arc<str>>,
    /// Untested, connected, failing since, failed since, paused, disabled or removing.
    pub state: EndpointState,
    /// Configuration revision (0 when added; each update adds one).
    pub revision: u64,
    /// The last delivery acknowledged.
    pub last_success: Option<SystemTime>,
    /// The last failure (attempt or given-up events).
    pub last_error: Option<LastError>,
    /// Events in its queue.
    pub queued: usize,
    /// Events in its batcher.
    pub buffered: usize,
    /// Requests in flight.
    pub in_flight: usize,
    /// Batches waiting for a retry.
    pub retrying: usize,
    /// Counters since it was added.
    pub counters: Counters,
}
