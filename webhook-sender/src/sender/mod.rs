//! The delivery engine: [`Sender`] routes each event to the endpoints whose subscription
//! selects it, and each endpoint's driver task delivers it.
//!
//! ```text
//!               routes (compiled on every registry change: tenant → exact type → labels)
//! send(event) ─┬─ endpoint 1's queue ─▶ driver 1 (on demand) ─ Delivery machine ─▶ transport
//!              └─ endpoint 2's queue ─▶ driver 2 ...
//! add / update / pause / resume / remove (at runtime) ─▶ registry ─▶ new routes, drivers told
//! ```
//!
//! Endpoints are data ([`registry`](crate::registry) for their serializable form): the
//! application adds, changes, tests, pauses and removes them while events flow
//! ([`Sender::add_endpoint`], [`Sender::update_endpoint`], [`Sender::pause`],
//! [`Sender::remove_endpoint`], event sets with [`Sender::upsert_event_set`]), reads each one's
//! [`EndpointStatus`] and an [`AuditStream`] of every change, and saves the whole registry with
//! [`Sender::snapshot`]. An event is routed with the registry as it is when the event is sent.
//!
//! Each endpoint has a bounded intake queue with an [`OverflowPolicy`], and a driver task (see
//! the `driver` module docs) that feeds the core [`Delivery`](webhook_core::Delivery) machine
//! with time read in one place and sends what it emits. A driver starts when an event is queued
//! for an endpoint that has none, and parks after [`SenderBuilder::park_after`] of idleness:
//! an idle endpoint holds no task and no buffer (it keeps its machine only when that holds
//! state a fresh one would not: failing health, a disabled endpoint, limits in use). Every
//! event gets a [`Receipt`] that resolves to its outcome at every endpoint that selected it.
//!
//! An endpoint disabled by its receiver (410 Gone, `webhook-delivery: disable`) or by its health
//! window fails the events sent to it until [`Sender::enable`] re-opens it.
//!
//! Memory is bounded per endpoint: the queue holds at most its capacity in events, the driver
//! takes at most one chunk of 1024 more from it, and the batcher's buffer limits
//! ([`BatcherConfig::buffer_limits`](webhook_core::BatcherConfig)) bound the events it holds
//! *including* the batches out for delivery or waiting for a retry; a waiting batch keeps its
//! events only (its uncompressed body is encoded again when the retry is due). When an
//! endpoint is down, the queue fills and its overflow policy applies.

mod audit_diff;
mod driver;
mod endpoint;
mod error;
mod lifecycle;
pub mod metrics;
mod publish;
mod queue;
mod receipt;
mod registry;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, watch};
use webhook_core::Event;

pub use self::endpoint::{
    DEFAULT_QUEUE_CAPACITY, EndpointConfig, EndpointConfigBuilder, EndpointConfigError,
};
pub use self::error::{EnableError, SendError, SenderBuildError, TestIntegrationError};
pub use self::lifecycle::{
    Counters, DeadLetter, DisableReason, EndpointHealth, EndpointState, EndpointStatus, LastError,
    LifecycleEvent, ShutdownReport, TEST_BODY_LIMIT, TestReport, Undelivered, UndeliveredStage,
};
pub use self::queue::OverflowPolicy;
pub use self::receipt::{
    AttemptError, DeliveryReport, EndpointOutcome, FailureReason, Outcome, Receipt,
};
pub use self::registry::{
    AuditAction, AuditEntry, AuditStream, AuditTarget, RegistryError, RemovePolicy, RemoveReport,
};
pub use webhook_core::{Concurrency, RateLimit};

use self::driver::{Common, DeadLetterHook};
use self::lifecycle::Shared;
use self::queue::{Closed, Drivers, Entry, Locked, Offer};
use self::receipt::{Slot, Tracker};
use self::registry::{Audit, Registry, Routes};
use crate::tls::TlsConfigBuilder;
use crate::token::AuthorizedSendError;
use crate::transport::{RequestTimeout, SharedTransport, TransportBuilder};

/// Capacity of the lifecycle broadcast channel by default.
pub const DEFAULT_LIFECYCLE_CAPACITY: usize = 1024;

/// How long an endpoint's driver task stays idle before it parks, by default.
pub const DEFAULT_PARK_AFTER: Duration = Duration::from_secs(1);

/// Builds the transports of endpoints added at build time and at runtime.
struct TransportFactory {
    default: Mutex<Option<SharedTransport>>,
    builder: TransportBuilder,
    tls: Option<TlsConfigBuilder>,
}

impl TransportFactory {
    /// The endpoint's own transport, one with its client certificate, or the shared default.
    fn transport_for(&self, cfg: &EndpointConfig) -> Result<SharedTransport, SenderBuildError> {
        match (&cfg.transport, cfg.endpoint.auth().client_certificate()) {
            (Some(t), _) => Ok(t.clone()),
            (None, Some(cert)) => {
                let pem = cert.load(|path| std::fs::read(path)).map_err(|e| {
                    SenderBuildError::ClientCertificate {
                        endpoint: cfg.name.to_string(),
                        source: e,
                    }
                })?;
                let tls = self
                    .tls
                    .clone()
                    .unwrap_or_else(crate::tls::TlsConfig::builder)
                    .client_identity_pem(pem.cert_chain_pem(), pem.private_key_pem())
                    .build()
                    .map_err(|e| SenderBuildError::Transport(e.into()))?;
                build_transport(self.builder.clone().tls(tls))
            }
            (None, None) => {
                let mut default = self.default.lock().unwrap_or_else(PoisonError::into_inner);
                match &*default {
                    Some(t) => Ok(t.clone()),
                    None => {
                        let t = build_transport(self.builder.clone())?;
                        *default = Some(t.clone());
                        Ok(t)
                    }
                }
            }
        }
    }
}

struct Inner {
    common: Arc<Common>,
    registry: Mutex<Registry>,
    routes: RwLock<Arc<Routes>>,
    /// The version of `routes`, read by every handle before it routes an event.
    version: AtomicU64,
    factory: TransportFactory,
    audit: Audit,
    shutdown: watch::Sender<Option<Option<tokio::time::Instant>>>,
    closed: AtomicBool,
}

/// The async delivery engine. Cheap to clone: clones share the endpoints and their tasks (each
/// keeps its own copy of the endpoint names); give each sending task its own clone.
///
/// Build one with [`Sender::builder`] inside a tokio runtime. Dropping the last handle without
/// [`shutdown`](Sender::shutdown) stops intake and lets the driver tasks deliver what they hold
/// in the background (retries included) while the runtime lives.
///
/// ```no_run
/// use std::time::Duration;
/// use webhook_core::Endpoint;
/// use webhook_core::Event;
/// use webhook_sender::{EndpointConfig, Sender};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let endpoint = Endpoint::builder("https://hooks.example.com/in").build()?;
/// let sender = Sender::builder()
///     .endpoint(EndpointConfig::builder("primary", endpoint).build()?)
///     .build()?;
/// let event = Event::builder("evt_1", "policy.created").json_bytes(&br#"{"a":1}"#[..])?;
/// let receipt = sender.send(event).await?;
/// let report = receipt.await;
/// assert!(report.is_delivered());
/// let leftovers = sender.shutdown(Duration::from_secs(5)).await;
/// assert!(leftovers.is_clean());
/// # Ok(()) }
/// ```
pub struct Sender {
    inner: Arc<Inner>,
    /// This handle's copy of the current routes: one uncontended lock and one atomic read per
    /// event, the shared lock only when the registry changed.
    routes: Mutex<Arc<Routes>>,
}

impl Clone for Sender {
    /// Another handle on the same endpoints and tasks.
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            routes: Mutex::new(self.inner.current_routes()),
        }
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("routed_endpoints", &self.current().endpoints.len())
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

/// Builder of a [`Sender`]; chained calls never fail, [`build`](Self::build) reports the first
/// problem.
#[must_use]
pub struct SenderBuilder {
    endpoints: Vec<EndpointConfig>,
    event_sets: Vec<webhook_core::EventSet>,
    transport: Option<SharedTransport>,
    transport_builder: TransportBuilder,
    tls: Option<TlsConfigBuilder>,
    dead_letter: Option<DeadLetterHook>,
    lifecycle_capacity: usize,
    park_after: Duration,
}

impl std::fmt::Debug for SenderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderBuilder")
            .field("endpoints", &self.endpoints.len())
            .field("transport", &self.transport.is_some())
            .field("dead_letter", &self.dead_letter.is_some())
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// Starts a builder.
    pub fn builder() -> SenderBuilder {
        SenderBuilder {
            endpoints: Vec::new(),
            event_sets: Vec::new(),
            transport: None,
            transport_builder: TransportBuilder::new(),
            tls: None,
            dead_letter: None,
            lifecycle_capacity: DEFAULT_LIFECYCLE_CAPACITY,
            park_after: DEFAULT_PARK_AFTER,
        }
    }

    /// This handle's routes, refreshed when the registry changed.
    fn current(&self) -> Arc<Routes> {
        let mut cached = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if cached.version != self.inner.version.load(Ordering::Acquire) {
            *cached = self.inner.current_routes();
        }
        Arc::clone(&cached)
    }

    /// Queues `event` for every endpoint whose filter selects its subject, waiting for space
    /// in full queues under [`OverflowPolicy::Block`] (the drop policies never wait).
    ///
    /// # Errors
    /// [`SendError::Closed`] after [`shutdown`](Self::shutdown) started.
    pub async fn send(&self, event: Event) -> Result<Receipt, SendError> {
        let Some(Routed {
            routes,
            picks,
            tracker,
            receipt,
        }) = self.route(&event)
        else {
            return Err(SendError::Closed(event));
        };
        let picks = picks.as_slice();
        let mut event = Some(event);
        let mut accepted = false;
        for (slot, &pos) in picks.iter().enumerate() {
            let ep = &routes.endpoints[pos as usize];
            // The last selecting endpoint takes the event, the others a copy.
            let copy = if slot + 1 == picks.len() {
                event.take()
            } else {
                event.clone()
            };
            let Some(copy) = copy else { break };
            let mut entry = Entry {
                event: copy,
                slot: Slot::new(tracker.clone(), slot),
            };
            // While there is room, no waiter is registered (a lock and an unlink per event).
            entry = match self.place(ep, entry, accepted)? {
                Placed::Done => {
                    accepted = true;
                    continue;
                }
                Placed::Full(e) => e,
            };
            loop {
                let notified = ep.queue.writable().notified();
                let mut notified = std::pin::pin!(notified);
                // Registered before offering, so space made in between is not missed.
                notified.as_mut().enable();
                match self.place(ep, entry, accepted)? {
                    Placed::Done => break,
                    Placed::Full(e) => {
                        entry = e;
                        notified.await;
                    }
                }
            }
            accepted = true;
        }
        Ok(receipt)
    }

    /// Like [`send`](Self::send) without waiting, and all or nothing for the endpoints under
    /// [`OverflowPolicy::Block`]: the event is queued for every selecting endpoint, or for
    /// none.
    ///
    /// When it is queued, each selecting endpoint applies its policy as `send` does: a full
    /// [`OverflowPolicy::DropNewest`] or [`OverflowPolicy::DropOldest`] queue drops an event
    /// ([`Outcome::Dropped`], counted and broadcast) and a disabled endpoint fails it
    /// ([`FailureReason::EndpointDisabled`]). Every selected queue is checked and offered to
    /// under its lock, all locks held at once, so concurrent senders and the endpoint drivers
    /// never see the event on some `Block` endpoints only. With one selecting endpoint this
    /// costs what [`send`](Self::send) costs when there is room.
    ///
    /// ```no_run
    /// use webhook_core::Event;
    /// use webhook_core::Endpoint;
    /// use webhook_sender::{EndpointConfig, OverflowPolicy, SendError, Sender};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let endpoint = |name: &str, url: &str| -> Result<EndpointConfig, Box<dyn std::error::Error>> {
    ///     Ok(EndpointConfig::builder(name, Endpoint::builder(url).build()?)
    ///         .queue(1024, OverflowPolicy::Block)
    ///         .build()?)
    /// };
    /// let sender = Sender::builder()
    ///     .endpoint(endpoint("siem", "https://siem.example.com/in")?)
    ///     .endpoint(endpoint("archive", "https://archive.example.com/in")?)
    ///     .build()?;
    /// let event = Event::builder("evt_1", "policy.created").json_bytes(&br#"{"a":1}"#[..])?;
    /// match sender.try_send(event) {
    ///     Ok(receipt) => drop(receipt), // queued for both endpoints
    ///     Err(SendError::Full(event)) => {
    ///         // Queued for neither: wait for room at both with `send`.
    ///         let _receipt = sender.send(event).await?;
    ///     }
    ///     Err(e) => return Err(e.into()),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`SendError::Closed`] after shutdown started; [`SendError::Full`] when the queue of any
    /// selecting endpoint under [`OverflowPolicy::Block`] is full. Either way the event is
    /// handed back intact, queued nowhere, and no counter, metric or lifecycle event of any
    /// endpoint changed.
    pub fn try_send(&self, event: Event) -> Result<Receipt, SendError> {
        let Some(Routed {
            routes,
            picks,
            tracker,
            receipt,
        }) = self.route(&event)
        else {
            return Err(SendError::Closed(event));
        };
        let picks = picks.as_slice();
        match picks {
            [] => Ok(receipt),
            [only] => {
                // One selecting endpoint: one offer (one lock).
                let entry = Entry {
                    event,
                    slot: Slot::new(tracker, 0),
                };
                let ep = &routes.endpoints[*only as usize];
                if let Placed::Full(Entry { event, slot }) = self.place(ep, entry, false)? {
                    // Nobody holds the receipt: resolving this slot is not observable.
                    slot.resolve(Outcome::Dropped);
                    return Err(SendError::Full(event));
                }
                Ok(receipt)
            }
            many => {
                self.try_send_all(&routes, many, event, tracker)?;
                Ok(receipt)
            }
        }
    }

    /// [`try_send`](Self::try_send) to the selecting endpoints at `picks` (at least two,
    /// ascending).
    fn try_send_all(
        &self,
        routes: &Routes,
        picks: &[u32],
        event: Event,
        tracker: Arc<Tracker>,
    ) -> Result<(), SendError> {
        // Copies first, without any lock held; the original goes to the last lane.
        let last = picks.len() - 1;
        let mut lanes: Vec<Lane<'_>> = picks
            .iter()
            .enumerate()
            .map(|(slot, &pos)| Lane {
                slot,
                ep: &routes.endpoints[pos as usize],
                event: (slot != last).then(|| event.clone()),
                queue: None,
                offer: None,
            })
            .collect();
        // Every lock in the order endpoints were added (the only place holding two queue
        // locks; every version of the routes keeps that order).
        for lane in &mut lanes {
            lane.queue = Some(lane.ep.queue.lock_for_offer());
        }
        let locked = || lanes.iter().filter_map(|l| l.queue.as_ref());
        let refused = if locked().any(|q| q.is_shut_down()) {
            Some(SendError::Closed as fn(Event) -> SendError)
        } else if locked().any(|q| q.is_full()) {
            Some(SendError::Full as fn(Event) -> SendError)
        } else {
            None
        };
        if let Some(refused) = refused {
            self.unlock_all(&mut lanes);
            return Err(refused(event));
        }
        let mut event = Some(event);
        // Every lane has its lock and exactly one event (a copy, or the original for the
        // last), so each gets an offer and a slot.
        for lane in &mut lanes {
            let (Some(queue), Some(event)) = (
                lane.queue.as_mut(),
                lane.event.take().or_else(|| event.take()),
            ) else {
                continue;
            };
            lane.offer = Some(queue.offer(Entry {
                event,
                slot: Slot::new(tracker.clone(), lane.slot),
            }));
        }
        self.unlock_all(&mut lanes);
        // Outcomes (drops, disabled endpoints) only once every lock is released.
        for lane in lanes {
            let Some(offer) = lane.offer else { continue };
            // Every `Block` queue had room and none was shut down, under the same locks as
            // the offers: `Full` cannot happen; were it to, the event is dropped, not lost.
            if let Placed::Full(e) = self.settle(lane.ep, offer, true)? {
                self.dropped(lane.ep, e);
            }
        }
        Ok(())
    }

    /// Releases every lane's lock, waking (or spawning) the drivers that need it.
    fn unlock_all(&self, lanes: &mut [Lane<'_>]) {
        for lane in lanes {
            if let Some(queue) = lane.queue.take()
                && queue.unlock()
            {
                driver::spawn(&self.inner.common, lane.ep);
            }
        }
    }

    /// Routes `event` with this handle's current routes: the selecting endpoints, and the
    /// receipt with one slot each. `None` once shutdown started.
    fn route(&self, event: &Event) -> Option<Routed> {
        if self.inner.closed.load(Ordering::Acquire) {
            return None;
        }
        let routes = self.current();
        let picks = routes.pick(event);
        let tracker = Tracker::new(
            picks
                .as_slice()
                .iter()
                .map(|&p| routes.endpoints[p as usize].name.clone()),
        );
        let receipt = Receipt::new(tracker.clone());
        Some(Routed {
            routes,
            picks,
            tracker,
            receipt,
        })
    }

    /// Offers one endpoint's entry; `Full` only under `Block`.
    fn place(&self, ep: &Arc<Shared>, entry: Entry, accepted: bool) -> Result<Placed, SendError> {
        let (offer, spawn) = ep.queue.offer(entry);
        if spawn {
            driver::spawn(&self.inner.common, ep);
        }
        self.settle(ep, offer, accepted)
    }

    /// Acts on an offer's result (drops, disabled or removed endpoint, shutdown); `accepted`
    /// says whether an earlier endpoint took the event (then a shutdown fails this slot only).
    fn settle(&self, ep: &Shared, offer: Offer, accepted: bool) -> Result<Placed, SendError> {
        match offer {
            Offer::Queued(None) => {}
            Offer::Queued(Some(old)) => self.dropped(ep, old),
            Offer::DroppedNewest(e) => self.dropped(ep, e),
            Offer::Full(e) => return Ok(Placed::Full(e)),
            Offer::Closed(e, closed @ (Closed::Disabled | Closed::Removed)) => {
                ep.failed.fetch_add(1, Ordering::Relaxed);
                ep.metrics.failed.increment(1);
                let reason = if closed == Closed::Removed {
                    ep.refused.fetch_add(1, Ordering::Relaxed);
                    FailureReason::EndpointRemoved
                } else {
                    FailureReason::EndpointDisabled
                };
                e.slot.resolve(Outcome::Failed { reason });
            }
            Offer::Closed(e, Closed::Shutdown) => {
                let Entry { event, slot } = e;
                slot.resolve(Outcome::Failed {
                    reason: FailureReason::Shutdown,
                });
                if !accepted {
                    return Err(SendError::Closed(event));
                }
            }
        }
        Ok(Placed::Done)
    }

    fn dropped(&self, ep: &Shared, entry: Entry) {
        let Entry { event, slot } = entry;
        slot.resolve(Outcome::Dropped);
        ep.dropped.fetch_add(1, Ordering::Relaxed);
        ep.metrics.dropped.increment(1);
        tracing::debug!(endpoint = %ep.name, event_id = %event.id(), "event dropped by the overflow policy");
        let _ = self.inner.common.lifecycle.send(LifecycleEvent::Dropped {
            endpoint: ep.name.clone(),
            event_id: Arc::from(event.id()),
        });
    }

    /// The endpoint names, in the order they were added.
    #[must_use]
    pub fn endpoints(&self) -> Vec<Arc<str>> {
        self.inner
            .registry()
            .shared()
            .map(|s| s.name.clone())
            .collect()
    }

    /// A health snapshot of every endpoint.
    #[must_use]
    pub fn health(&self) -> Vec<EndpointHealth> {
        let all: Vec<Arc<Shared>> = self.inner.registry().shared().cloned().collect();
        all.iter().map(|e| e.snapshot()).collect()
    }

    /// A health snapshot of the endpoint named `endpoint`.
    #[must_use]
    pub fn endpoint_health(&self, endpoint: &str) -> Option<EndpointHealth> {
        self.find(endpoint).map(|e| e.snapshot())
    }

    /// Subscribes to lifecycle events (failing, failed, recovered, disabled, enabled,
    /// exhausted, dropped) from now on.
    #[must_use]
    pub fn lifecycle(&self) -> broadcast::Receiver<LifecycleEvent> {
        self.inner.common.lifecycle.subscribe()
    }

    /// Re-enables the endpoint named `endpoint` after it was disabled (a 410 Gone, a
    /// `webhook-delivery: disable` answer, or the health `disable_after` window), typically
    /// once its owner fixed the receiver (check it first with
    /// [`test_integration`](Self::test_integration), like Sysdig's "Test Integration").
    ///
    /// When this returns, the endpoint's queue accepts events again (a [`send`](Self::send)
    /// right after it is delivered), its [`health`](Self::health) shows
    /// [`HealthState::Healthy`](webhook_core::HealthState::Healthy), and
    /// [`LifecycleEvent::Enabled`] has been broadcast (after the `Disabled` it undoes). The
    /// endpoint's driver task then resets its health tracker (no failure history: the
    /// `failed_after`/`disable_after` windows start from the next failure) and its circuit
    /// breaker, and delivers as before; counters keep counting.
    ///
    /// Design: a disabled endpoint keeps its driver task, parked (no timer, no request) on
    /// its closed queue, so re-enabling only wakes it: requests that were in flight when it
    /// was disabled finish on the same task, the in-flight and rate limits stay exact, and no
    /// second task ever drains the same queue.
    ///
    /// Events that failed while the endpoint was disabled stay failed: their receipts and the
    /// dead-letter hook already reported [`FailureReason::EndpointDisabled`], and they are not
    /// resurrected.
    ///
    /// Idempotent: enabling an endpoint that is not disabled returns `Ok(())` and changes
    /// nothing (no event is broadcast; a failing endpoint stays failing).
    ///
    /// # Errors
    /// [`EnableError::UnknownEndpoint`] when no endpoint has that name;
    /// [`EnableError::ShutDown`] once [`shutdown`](Self::shutdown) started.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::time::Duration;
    /// use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    /// use webhook_core::{Endpoint, Event, HealthState};
    /// use webhook_sender::ssrf::SsrfPolicy;
    /// use webhook_sender::transport::TransportBuilder;
    /// use webhook_sender::{
    ///     EnableError, EndpointConfig, FailureReason, LifecycleEvent, Outcome, Sender,
    /// };
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A receiver on 127.0.0.1 answering 410 Gone until it is fixed, then 200.
    /// let fixed = Arc::new(AtomicBool::new(false));
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let url = format!("http://{}/in", listener.local_addr()?);
    /// let f = fixed.clone();
    /// tokio::spawn(async move {
    ///     while let Ok((mut conn, _)) = listener.accept().await {
    ///         let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
    ///         // Read the whole request (headers, then `content-length` bytes of body).
    ///         while let Ok(n @ 1..) = conn.read(&mut chunk).await {
    ///             buf.extend_from_slice(&chunk[..n]);
    ///             let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    ///             if let Some(end) = text.find("\r\n\r\n") {
    ///                 let len = text.lines().find_map(|l| l.strip_prefix("content-length:"))
    ///                     .and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(0);
    ///                 if buf.len() >= end + 4 + len { break; }
    ///             }
    ///         }
    ///         let status = if f.load(Ordering::SeqCst) { "200 OK" } else { "410 Gone" };
    ///         let head = "content-length: 0\r\nconnection: close\r\n\r\n";
    ///         let _ = conn.write_all(format!("HTTP/1.1 {status}\r\n{head}").as_bytes()).await;
    ///     }
    /// });
    ///
    /// let sender = Sender::builder()
    ///     .transport_builder(
    ///         TransportBuilder::new().ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?)),
    ///     )
    ///     .endpoint(EndpointConfig::builder("primary", Endpoint::builder(url).build()?).build()?)
    ///     .build()?;
    /// let mut lifecycle = sender.lifecycle();
    /// let event = |id: &str| Event::builder(id, "policy.created").json_bytes(&br#"{"a":1}"#[..]);
    ///
    /// // 410 Gone: the endpoint is disabled and the event fails.
    /// let report = sender.send(event("evt_1")?).await?.await;
    /// let disabled = Outcome::Failed { reason: FailureReason::EndpointDisabled };
    /// assert_eq!(report.outcome("primary"), Some(&disabled));
    /// // (After the batch's `Exhausted` event.)
    /// while !matches!(lifecycle.recv().await?, LifecycleEvent::Disabled { .. }) {}
    ///
    /// // The receiver is fixed: re-enable, and new events are delivered.
    /// fixed.store(true, Ordering::SeqCst);
    /// sender.enable("primary")?;
    /// assert!(matches!(lifecycle.recv().await?, LifecycleEvent::Enabled { .. }));
    /// assert_eq!(sender.endpoint_health("primary").map(|h| h.state), Some(HealthState::Healthy));
    /// assert!(sender.send(event("evt_2")?).await?.await.is_delivered());
    ///
    /// // Not disabled: an idempotent no-op. Unknown names and a shut-down sender: typed errors.
    /// sender.enable("primary")?;
    /// assert_eq!(sender.enable("nope"), Err(EnableError::UnknownEndpoint("nope".into())));
    /// assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    /// assert_eq!(sender.enable("primary"), Err(EnableError::ShutDown));
    /// # Ok(()) }
    /// ```
    pub fn enable(&self, endpoint: &str) -> Result<(), EnableError> {
        self.enable_by(endpoint, "application")
    }

    fn find(&self, endpoint: &str) -> Option<Arc<Shared>> {
        self.inner.registry().find(endpoint).cloned()
    }

    /// Sends a test event to the endpoint named `endpoint` (Sysdig "Test Integration",
    /// Soveren "send test event") and reports status, latency and the response.
    ///
    /// The event is `{"type":"webhook.test","id":...,"timestamp":...,"endpoint":...}`, encoded
    /// like real deliveries (a one-element JSON array for a JSON-array endpoint), through the
    /// endpoint's request builder (auth, signature with the current time, custom headers) and
    /// token provider (refreshed once on a 401), over the endpoint's transport. It bypasses
    /// the queue, retries and health: the answer is returned whatever its status.
    ///
    /// # Errors
    /// See [`TestIntegrationError`].
    pub async fn test_integration(
        &self,
        endpoint: &str,
    ) -> Result<TestReport, TestIntegrationError> {
        let shared = self
            .find(endpoint)
            .ok_or_else(|| TestIntegrationError::UnknownEndpoint(endpoint.to_owned()))?;
        let (cfg, transport) = {
            let p = shared.published();
            (p.cfg.clone(), p.transport.clone())
        };
        let ep = TestTarget {
            cfg: &cfg,
            transport: &transport,
        };
        let wall = SystemTime::now();
        let secs = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let id = format!("test_{:016x}", driver::random_u64());
        let payload = serde_json::json!({
            "type": "webhook.test",
            "id": id,
            "timestamp": secs,
            "endpoint": &*ep.cfg.name,
        });
        let event = Event::builder(id.as_str(), "webhook.test")
            .serialize(&payload)
            .map_err(|e| TestIntegrationError::Encode(e.to_string()))?;
        // Encoded as real deliveries are: the endpoint's encoding, and gzip when it compresses.
        let body = ep
            .cfg
            .endpoint
            .encode(std::slice::from_ref(&event))
            .map_err(|e| TestIntegrationError::Encode(e.to_string()))?;
        let mut request = ep
            .cfg
            .endpoint
            .request(&id, &body, wall)
            .map_err(|e| TestIntegrationError::Request(e.to_string()))?;
        if let Some(t) = ep.cfg.request_timeout {
            request.extensions_mut().insert(RequestTimeout(t));
        }
        let started = tokio::time::Instant::now();
        let response = match &ep.cfg.tokens {
            Some(tokens) => tokens
                .send(ep.transport, request)
                .await
                .map_err(|e| match e {
                    AuthorizedSendError::Token(e) => TestIntegrationError::Token(e),
                    AuthorizedSendError::Transport(e) => TestIntegrationError::Transport(e),
                })?,
            None => ep.transport.send(request).await?,
        };
        let latency = started.elapsed();
        let status = response.status();
        let headers = response.headers().clone();
        let full = response.body();
        let body_truncated = response.is_body_truncated() || full.len() > TEST_BODY_LIMIT;
        let body = full.slice(..full.len().min(TEST_BODY_LIMIT));
        tracing::info!(endpoint = %ep.cfg.name, status = status.as_u16(), latency_ms = latency.as_millis() as u64, "test integration");
        // Sysdig's rule: a passing test enables an untested endpoint.
        if status.is_success() {
            self.mark_tested(&shared);
        }
        self.inner.audit.record(
            "test_integration",
            AuditTarget::Endpoint(shared.name.clone()),
            AuditAction::Tested {
                status: status.as_u16(),
                passed: status.is_success(),
            },
            Vec::new(),
        );
        Ok(TestReport {
            status,
            latency,
            headers,
            body,
            body_truncated,
        })
    }

    /// Stops intake, flushes every batcher, keeps delivering (retries included) until
    /// `deadline` has passed, then cancels what is in flight and returns every event that was
    /// not delivered. Their receipts resolve to [`FailureReason::Shutdown`]. Events given up
    /// before (dead-lettered) are not repeated here. A second call returns an empty report.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let inner = &*self.inner;
        inner.closed.store(true, Ordering::Release);
        let until = tokio::time::Instant::now() + deadline;
        let all: Vec<Arc<Shared>> = inner.registry().shared().cloned().collect();
        for ep in &all {
            ep.queue.close(Closed::Shutdown, false);
        }
        inner.shutdown.send_replace(Some(Some(until)));
        inner.common.drivers.all_ended().await;
        let undelivered = std::mem::take(
            &mut *inner
                .common
                .undelivered
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let report = ShutdownReport { undelivered };
        tracing::info!(
            undelivered = report.undelivered_events(),
            "sender shut down"
        );
        report
    }
}

/// The configuration and transport `test_integration` uses.
struct TestTarget<'a> {
    cfg: &'a EndpointConfig,
    transport: &'a SharedTransport,
}

/// An event routed by [`Sender::route`].
struct Routed {
    routes: Arc<Routes>,
    picks: registry::Picks,
    tracker: Arc<Tracker>,
    receipt: Receipt,
}

enum Placed {
    Done,
    Full(Entry),
}

/// One selecting endpoint of a multi-endpoint [`Sender::try_send`].
struct Lane<'a> {
    /// Its slot in the receipt.
    slot: usize,
    ep: &'a Arc<Shared>,
    /// Its copy of the event (`None` for the last lane, which takes the original).
    event: Option<Event>,
    /// Its queue, locked from the check until every offer is made.
    queue: Option<Locked<'a>>,
    /// What its queue answered.
    offer: Option<Offer>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for ep in self.registry().shared() {
            ep.queue.close(Closed::Shutdown, false);
        }
    }
}

impl SenderBuilder {
    /// Adds an endpoint (fan-out: every event goes to every endpoint whose subscription
    /// selects it). More can be added, changed and removed while the sender runs
    /// ([`Sender::add_endpoint`]).
    pub fn endpoint(mut self, config: EndpointConfig) -> Self {
        self.endpoints.push(config);
        self
    }

    /// Adds an event set endpoints can subscribe to by name
    /// ([`EndpointConfigBuilder::event_set`]).
    pub fn event_set(mut self, set: webhook_core::EventSet) -> Self {
        self.event_sets.push(set);
        self
    }

    /// The transport of every endpoint that does not set its own (default: one built from
    /// [`transport_builder`](Self::transport_builder)). Endpoints with a client certificate
    /// still get their own transport built from the transport builder.
    pub fn transport(mut self, transport: SharedTransport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Settings of the transports the sender builds (timeouts, SSRF policy, TLS, pool).
    pub fn transport_builder(mut self, builder: TransportBuilder) -> Self {
        self.transport_builder = builder;
        self
    }

    /// The base TLS settings (custom CA, insecure) for endpoints authenticating with a client
    /// certificate ([`SenderAuth::ClientCertificate`](webhook_core::SenderAuth)); the
    /// endpoint's certificate is added to it. Default: verification with the webpki roots.
    pub fn tls(mut self, tls: TlsConfigBuilder) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Called with every batch or event given up on (retries exhausted, rejected, aborted,
    /// endpoint disabled, oversize). Runs on the endpoint's driver task: keep it short
    /// (e.g. send to a channel).
    pub fn dead_letter(mut self, hook: impl Fn(DeadLetter) + Send + Sync + 'static) -> Self {
        self.dead_letter = Some(Arc::new(hook));
        self
    }

    /// How long an endpoint's driver task stays idle (nothing queued, held or due) before it
    /// parks (default [`DEFAULT_PARK_AFTER`]): an idle endpoint then holds no task and no
    /// buffer, and its next event starts a driver again.
    pub fn park_after(mut self, idle: Duration) -> Self {
        self.park_after = idle;
        self
    }

    /// Capacity of the lifecycle broadcast channel (default [`DEFAULT_LIFECYCLE_CAPACITY`]).
    pub fn lifecycle_capacity(mut self, capacity: usize) -> Self {
        self.lifecycle_capacity = capacity;
        self
    }

    /// Builds the transports and spawns one driver task per endpoint on the current tokio
    /// runtime.
    ///
    /// # Errors
    /// See [`SenderBuildError`].
    pub fn build(self) -> Result<Sender, SenderBuildError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| SenderBuildError::NoRuntime)?;
        if self.lifecycle_capacity == 0 {
            return Err(SenderBuildError::InvalidSetting(
                "lifecycle capacity must be at least 1",
            ));
        }
        if self.park_after.is_zero() {
            return Err(SenderBuildError::InvalidSetting(
                "park_after must be non-zero",
            ));
        }
        let factory = TransportFactory {
            default: Mutex::new(self.transport.clone()),
            builder: self.transport_builder,
            tls: self.tls,
        };
        let (lifecycle, _) = broadcast::channel(self.lifecycle_capacity);
        let (shutdown, shutdown_rx) = watch::channel(None);
        let common = Arc::new(Common {
            runtime,
            lifecycle,
            dead_letter: self.dead_letter,
            shutdown: shutdown_rx,
            drivers: Arc::new(Drivers::default()),
            undelivered: Mutex::new(Vec::new()),
            park_after: self.park_after,
        });
        let mut registry = Registry::default();
        for set in self.event_sets {
            let name = set.name.clone();
            registry
                .event_sets
                .insert(set)
                .map_err(|e| SenderBuildError::EventSet { name, source: e })?;
        }
        for cfg in self.endpoints {
            let transport = factory.transport_for(&cfg)?;
            let selector =
                cfg.selector(&registry.event_sets)
                    .map_err(|e| SenderBuildError::Subscription {
                        endpoint: cfg.name.to_string(),
                        source: e,
                    })?;
            let shared = Arc::new(Shared::new(
                Arc::new(cfg),
                transport,
                Arc::clone(&common.drivers),
            ));
            let name = shared.name.to_string();
            registry
                .insert(shared, selector)
                .map_err(|_| SenderBuildError::DuplicateEndpoint(name))?;
        }
        let inner = Arc::new(Inner {
            common,
            registry: Mutex::new(Registry::default()),
            routes: RwLock::new(Arc::new(Routes::empty())),
            version: AtomicU64::new(0),
            factory,
            audit: Audit::default(),
            shutdown,
            closed: AtomicBool::new(false),
        });
        inner.publish_routes(&registry);
        *inner.registry() = registry;
        Ok(Sender {
            routes: Mutex::new(inner.current_routes()),
            inner,
        })
    }
}

#[cfg(any(feature = "reqwest", feature = "hyper"))]
fn build_transport(builder: TransportBuilder) -> Result<SharedTransport, SenderBuildError> {
    builder.build().map_err(SenderBuildError::Transport)
}

#[cfg(not(any(feature = "reqwest", feature = "hyper")))]
fn build_transport(_builder: TransportBuilder) -> Result<SharedTransport, SenderBuildError> {
    Err(SenderBuildError::NoTransport)
}
