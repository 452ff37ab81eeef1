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
mod builder;
mod driver;
mod endpoint;
mod error;
mod fanout;
mod lifecycle;
pub mod metrics;
mod probe;
mod publish;
mod queue;
mod receipt;
mod registry;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

pub use self::builder::SenderBuilder;
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

use self::builder::TransportFactory;
use self::driver::Common;
use self::lifecycle::Shared;
use self::queue::Closed;
use self::registry::{Audit, Registry, Routes};

/// Capacity of the lifecycle broadcast channel by default.
pub const DEFAULT_LIFECYCLE_CAPACITY: usize = 1024;

/// How long an endpoint's driver task stays idle before it parks, by default.
pub const DEFAULT_PARK_AFTER: Duration = Duration::from_secs(1);

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

impl Sender {
    /// This handle's routes, refreshed when the registry changed.
    fn current(&self) -> Arc<Routes> {
        let mut cached = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if cached.version != self.inner.version.load(Ordering::Acquire) {
            *cached = self.inner.current_routes();
        }
        Arc::clone(&cached)
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

impl Drop for Inner {
    fn drop(&mut self) {
        for ep in self.registry().shared() {
            ep.queue.close(Closed::Shutdown, false);
        }
    }
}
