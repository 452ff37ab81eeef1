//! Endpoints as data: the runtime registry of a [`Sender`] (add, update, pause, resume, remove
//! endpoints and event sets while events flow), the routing it compiles on every change, each
//! endpoint's status, and the audit trail of changes.
//!
//! ```text
//! add / update / pause / remove ──▶ Registry (one lock, changes only)
//!                                      │ compiles
//!                                      ▼
//!                     Routes v(n+1): RouteIndex (tenant → exact type → labels)
//!                                      │ swapped in; each `Sender` handle picks it up
//! send(event) ── routes(current) ── selected endpoints ── their queues ── drivers (on demand)
//! ```
//!
//! An event is routed with the routes current when it is sent: the endpoints they select get
//! it, whatever changes afterwards; a change applies to events sent after it. An endpoint
//! removed while a concurrent `send` routed to it refuses the event at its queue
//! ([`FailureReason::EndpointRemoved`](webhook_core::FailureReason::EndpointRemoved)).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tokio::sync::mpsc;
use webhook_core::{Event, EventSet, EventSets, RouteIndex, Selector, SubscriptionError};

use super::driver;
use super::endpoint::EndpointConfig;
use super::lifecycle::{Counters, EndpointStatus, Shared};
use super::queue::{Closed, Reopen};
use super::{Inner, Sender};
use crate::registry::FieldChange;

/// What happens to the events a removed endpoint still holds (queued, buffered, waiting for a
/// retry). Attempts in flight always finish: a 2xx delivers their batch.
///
/// Under [`RemovePolicy::DeadLetter`] and [`RemovePolicy::Drop`] the events given up fail with
/// [`FailureReason::EndpointRemoved`](webhook_core::FailureReason::EndpointRemoved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum RemovePolicy {
    /// Deliver everything first (retries included, until the retry policy gives up).
    #[default]
    Deliver,
    /// Give it up at once to the dead-letter hook.
    DeadLetter,
    /// Give it up at once without dead letters (receipts still say
    /// [`FailureReason::EndpointRemoved`](webhook_core::FailureReason::EndpointRemoved); counted as dropped).
    Drop,
}

/// What [`Sender::remove_endpoint`] settled: the events the endpoint still held when it was
/// removed, by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RemoveReport {
    /// Delivered (attempts in flight, or everything under [`RemovePolicy::Deliver`]).
    pub delivered: u64,
    /// Given up through the dead-letter hook.
    pub dead_lettered: u64,
    /// Given up without a dead letter ([`RemovePolicy::Drop`]).
    pub dropped: u64,
    /// Refused at its queue: sent while it was being removed, by a `send` that had routed
    /// the event before the removal (their receipts say `EndpointRemoved`).
    pub refused: u64,
    /// The endpoint's counters when it was gone.
    pub counters: Counters,
}

/// Why a registry change was refused. Nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No endpoint (or event set) has that name.
    #[error("no endpoint or event set named {0:?}")]
    Unknown(String),
    /// An endpoint (or event set) of that name exists already.
    #[error("{0:?} exists already")]
    Duplicate(String),
    /// The subscription names an unknown event set, or an event set is invalid.
    #[error("invalid subscription")]
    Subscription(#[from] SubscriptionError),
    /// The event set is used by these endpoints.
    #[error("event set {set:?} is used by {endpoints:?}")]
    EventSetInUse {
        /// The event set.
        set: String,
        /// The endpoints subscribing to it.
        endpoints: Vec<String>,
    },
    /// The endpoint's transport (its client certificate) could not be built.
    #[error("endpoint {endpoint:?}: transport")]
    Transport {
        /// The endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: super::SenderBuildError,
    },
    /// The sender is shutting down.
    #[error("the sender is shut down")]
    ShutDown,
}

/// What an audit entry is about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditTarget {
    /// An endpoint, by name.
    Endpoint(Arc<str>),
    /// An event set, by name.
    EventSet(Arc<str>),
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// Added.
    Added,
    /// Changed (see the entry's `changes`).
    Updated,
    /// Paused.
    Paused,
    /// Resumed.
    Resumed,
    /// Enabled: an untested endpoint enabled explicitly, or a disabled one re-enabled.
    Enabled,
    /// Tested with [`Sender::test_integration`]; a pass enables an untested endpoint.
    Tested {
        /// The status answered.
        status: u16,
        /// Whether it was a 2xx.
        passed: bool,
    },
    /// Removed, with the policy for what it held.
    Removed {
        /// The policy, as text (`deliver`, `dead_letter`, `drop`).
        policy: &'static str,
    },
}

/// One change of the registry: when, by whom (as the caller said), what, and which fields.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct AuditEntry {
    /// Sequence number, from 1, without gaps.
    pub seq: u64,
    /// When (wall clock).
    pub at: SystemTime,
    /// Who, as given by the caller.
    pub actor: Arc<str>,
    /// On what.
    pub target: AuditTarget,
    /// What.
    pub action: AuditAction,
    /// The fields added, changed or removed (secrets redacted).
    pub changes: Vec<FieldChange>,
}

/// The audit trail from the moment of [`Sender::audit`]: every entry, in order, none lost
/// (each subscriber has its own unbounded channel; changes are rare next to events).
#[derive(Debug)]
pub struct AuditStream {
    rx: mpsc::UnboundedReceiver<AuditEntry>,
}

impl AuditStream {
    /// The next entry; `None` once the sender is gone.
    pub async fn recv(&mut self) -> Option<AuditEntry> {
        self.rx.recv().await
    }

    /// The next entry if one is ready.
    pub fn try_recv(&mut self) -> Option<AuditEntry> {
        self.rx.try_recv().ok()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Audit {
    subscribers: Mutex<(u64, Vec<mpsc::UnboundedSender<AuditEntry>>)>,
}

impl Audit {
    fn subscribe(&self) -> AuditStream {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().1.push(tx);
        AuditStream { rx }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Vec<mpsc::UnboundedSender<AuditEntry>>)> {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn record(
        &self,
        actor: &str,
        target: AuditTarget,
        action: AuditAction,
        changes: Vec<FieldChange>,
    ) {
        let mut subs = self.lock();
        subs.0 += 1;
        let entry = AuditEntry {
            seq: subs.0,
            at: SystemTime::now(),
            actor: Arc::from(actor),
            target,
            action,
            changes,
        };
        tracing::info!(seq = entry.seq, actor, target = ?entry.target, action = ?entry.action, "registry change");
        subs.1.retain(|tx| tx.send(entry.clone()).is_ok());
    }
}

/// One endpoint in the registry.
struct Registered {
    shared: Arc<Shared>,
    tenant: Option<Arc<str>>,
    selector: Arc<Selector>,
    /// Receives events: tested (or not required to be) and not being removed.
    routed: bool,
}

/// The registry's state; changed under one lock, never on the event path.
#[derive(Default)]
pub(crate) struct Registry {
    /// By key, which grows with every add: the order endpoints were added.
    entries: BTreeMap<u32, Registered>,
    names: HashMap<Arc<str>, u32>,
    next_key: u32,
    pub(crate) event_sets: EventSets,
}

/// The routing compiled from the registry: immutable, replaced on every change.
pub(crate) struct Routes {
    pub(crate) version: u64,
    index: RouteIndex<u32>,
    /// The routed endpoints in the order they were added (positions are the index's keys).
    pub(crate) endpoints: Vec<Arc<Shared>>,
}

impl Routes {
    pub(crate) fn empty() -> Self {
        Self {
            version: 0,
            index: RouteIndex::default(),
            endpoints: Vec::new(),
        }
    }

    /// The positions of the endpoints selecting `event`, ascending (the order endpoints were
    /// added, and the lock order of multi-queue offers).
    pub(crate) fn pick(&self, event: &Event) -> Picks {
        let mut picks = Picks::default();
        self.index.for_each_selected(event, |k| picks.push(k));
        picks.as_mut_slice().sort_unstable();
        picks
    }
}

/// Selected positions: inline up to four, so routing allocates nothing in the common case.
#[derive(Debug, Default)]
pub(crate) struct Picks {
    len: usize,
    inline: [u32; 4],
    spill: Vec<u32>,
}

impl Picks {
    fn push(&mut self, k: u32) {
        if self.spill.is_empty() && self.len < self.inline.len() {
            self.inline[self.len] = k;
            self.len += 1;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline[..self.len]);
            }
            self.spill.push(k);
        }
    }

    fn as_mut_slice(&mut self) -> &mut [u32] {
        if self.spill.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.spill
        }
    }

    pub(crate) fn as_slice(&self) -> &[u32] {
        if self.spill.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }
}

impl Registry {
    fn lookup(&self, name: &str) -> Option<&Registered> {
        self.names.get(name).and_then(|k| self.entries.get(k))
    }

    fn lookup_mut(&mut self, name: &str) -> Option<&mut Registered> {
        let k = self.names.get(name)?;
        self.entries.get_mut(k)
    }

    /// Compiles the routes of the routed endpoints.
    fn routes(&self, version: u64) -> Routes {
        let routed: Vec<&Registered> = self.entries.values().filter(|r| r.routed).collect();
        let index = RouteIndex::build(routed.iter().enumerate().map(|(pos, r)| {
            let tenant = r.tenant.as_deref();
            (pos as u32, tenant, Arc::clone(&r.selector))
        }));
        Routes {
            version,
            index,
            endpoints: routed.iter().map(|r| Arc::clone(&r.shared)).collect(),
        }
    }

    /// Every endpoint, in the order added.
    pub(crate) fn shared(&self) -> impl Iterator<Item = &Arc<Shared>> {
        self.entries.values().map(|r| &r.shared)
    }

    pub(crate) fn find(&self, name: &str) -> Option<&Arc<Shared>> {
        self.lookup(name).map(|r| &r.shared)
    }

    /// Adds an endpoint (build time and runtime).
    pub(crate) fn insert(
        &mut self,
        shared: Arc<Shared>,
        selector: Selector,
    ) -> Result<(), RegistryError> {
        if self.names.contains_key(&shared.name) {
            return Err(RegistryError::Duplicate(shared.name.to_string()));
        }
        let (routed, tenant) = {
            let p = shared.published();
            (
                !p.untested,
                p.cfg.subscription.tenant.as_deref().map(Arc::from),
            )
        };
        let key = self.next_key;
        self.next_key += 1;
        self.names.insert(shared.name.clone(), key);
        self.entries.insert(
            key,
            Registered {
                shared,
                tenant,
                selector: Arc::new(selector),
                routed,
            },
        );
        Ok(())
    }
}

impl Inner {
    pub(crate) fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The registry as data (see [`Sender::snapshot`]).
    pub(crate) fn snapshot(&self) -> crate::RegistrySnapshot {
        let registry = self.registry();
        let endpoints = registry
            .shared()
            .filter_map(|s| {
                let p = s.published();
                let mut spec = p.cfg.spec.as_deref()?.clone();
                spec.paused = p.paused;
                spec.require_test = p.untested;
                Some(spec)
            })
            .collect();
        crate::RegistrySnapshot {
            version: crate::registry::FORMAT_VERSION,
            event_sets: registry.event_sets.iter().cloned().collect(),
            endpoints,
        }
    }

    /// Saves the registry with the outbox (after every change), so a restart resumes the same
    /// endpoints.
    pub(crate) fn persist_registry(&self) {
        let Some(outbox) = &self.common.outbox else {
            return;
        };
        if let Err(e) = outbox.save_registry(&self.snapshot()) {
            tracing::error!(error = %e, "the registry could not be saved with the outbox");
        }
    }

    /// After the outbox opened: every endpoint with events held reads them back; events held
    /// for endpoints that are not configured become dead letters; redeliveries reach the
    /// endpoints at once; the registry is saved.
    pub(crate) fn resume_outbox(self: &Arc<Self>) {
        let Some(outbox) = &self.common.outbox else {
            return;
        };
        let weak = Arc::downgrade(self);
        *outbox
            .appended
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(move |endpoint, seq| {
            if let Some(inner) = weak.upgrade() {
                inner.read_back(endpoint, seq, seq);
            }
        }));
        if outbox.store.is_shared() {
            // A shared queue: every endpoint reads it from the start, whatever was appended.
            let endpoints: Vec<Arc<Shared>> = self.registry().shared().cloned().collect();
            for shared in endpoints {
                self.feed(&shared);
            }
        }
        let first = outbox.store.first_seq();
        let last = outbox.store.next_seq().saturating_sub(1);
        for (name, n) in outbox.store.pending_endpoints() {
            if self.read_back(&name, first, last) {
                tracing::info!(endpoint = %name, events = n, "resuming delivery from the outbox");
            } else {
                self.orphaned(outbox, &name, first);
            }
        }
        self.persist_registry();
    }

    /// Over a shared queue: makes the endpoint's driver run, reading the queue continuously.
    pub(crate) fn feed(&self, shared: &Arc<Shared>) {
        let shared_store = self
            .common
            .outbox
            .as_ref()
            .is_some_and(|o| o.store.is_shared());
        if shared_store && shared.queue.ensure_driver() {
            driver::spawn(&self.common, shared);
        }
    }

    /// Makes the endpoint read events `from..=max` from the outbox; `false` when there is no
    /// such endpoint.
    fn read_back(&self, endpoint: &str, from: u64, max: u64) -> bool {
        let shared = self.registry().find(endpoint).cloned();
        let Some(shared) = shared else {
            return false;
        };
        if shared.queue.spill_from(from, max) {
            driver::spawn(&self.common, &shared);
        }
        true
    }

    /// Events the outbox holds for an endpoint that is not configured: dead letters (the
    /// application can redeliver them once the endpoint exists again).
    fn orphaned(&self, outbox: &crate::outbox::Outbox, endpoint: &str, first: u64) {
        let mut cursor = crate::outbox::ReadCursor::at(first);
        let reason = webhook_core::FailureReason::EndpointRemoved;
        let mut n = 0usize;
        loop {
            let out = match outbox.store.read(endpoint, &mut cursor, 1024, u64::MAX) {
                Ok(out) => out,
                Err(e) => {
                    tracing::error!(error = %e, endpoint, "reading the outbox failed");
                    return;
                }
            };
            let mut all = out.events;
            for b in out.batches {
                all.extend(b.events);
            }
            if out.at_end {
                for b in cursor.take_gathered() {
                    all.extend(b.events);
                }
            }
            if all.is_empty() && out.at_end {
                break;
            }
            let (seqs, events): (Vec<u64>, Vec<Event>) = all.into_iter().unzip();
            n += events.len();
            self.common.outbox_gave_up(
                endpoint,
                None,
                &events,
                &seqs,
                driver::GaveUpAs::Dead {
                    reason: &reason,
                    last: None,
                },
            );
            if out.at_end {
                break;
            }
        }
        tracing::warn!(
            endpoint,
            events = n,
            "the outbox held events for an endpoint that is not configured: moved to the dead letters"
        );
    }

    /// The registry changed (the caller holds its lock): the routes are compiled again by the
    /// next `send` (so a burst of changes, such as loading 10,000 endpoints one by one,
    /// compiles them once), and every `send` from now on sees the change.
    pub(crate) fn publish_routes(&self, _registry: &Registry) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// The routes of the current registry, compiled now if a change came since the last.
    pub(crate) fn current_routes(&self) -> Arc<Routes> {
        let built = self
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if built.version == self.version.load(Ordering::Acquire) {
            return built;
        }
        let registry = self.registry();
        // Changes bump the version under the registry lock: this one is consistent with it.
        let version = self.version.load(Ordering::Acquire);
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        if routes.version != version {
            *routes = Arc::new(registry.routes(version));
        }
        Arc::clone(&routes)
    }

    fn check_open(&self) -> Result<(), RegistryError> {
        if self.closed.load(Ordering::Acquire) {
            Err(RegistryError::ShutDown)
        } else {
            Ok(())
        }
    }

    fn transport(
        &self,
        cfg: &EndpointConfig,
    ) -> Result<crate::transport::SharedTransport, RegistryError> {
        self.factory
            .transport_for(cfg)
            .map_err(|source| RegistryError::Transport {
                endpoint: cfg.name.to_string(),
                source,
            })
    }

    fn endpoint_changed(&self, name: &Arc<str>, action: AuditAction, actor: &str) {
        self.audit.record(
            actor,
            AuditTarget::Endpoint(name.clone()),
            action,
            Vec::new(),
        );
        self.persist_registry();
    }
}

impl Sender {
    /// Adds an endpoint while events flow; events sent from now on are routed to it (unless it
    /// [requires a test](crate::EndpointConfigBuilder::require_test) first). `actor` names
    /// who made the change in the audit trail.
    ///
    /// ```
    /// use webhook_core::{Endpoint, EventSet};
    /// use webhook_sender::{
    ///     AuditAction, EndpointConfig, EndpointState, RegistryError, RemovePolicy, Sender,
    /// };
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sender = Sender::builder()
    ///     .event_set(EventSet::new("vulnerabilities", ["vulnerability.*"]))
    ///     .build()?;
    /// let mut audit = sender.audit();
    ///
    /// // A customer's integration: their tenant, their event set, enabled after a test.
    /// let endpoint = Endpoint::builder("https://siem.acme.example/hooks").build()?;
    /// let config = EndpointConfig::builder("acme-siem", endpoint)
    ///     .tenant("acme")
    ///     .event_set("vulnerabilities")
    ///     .require_test(true)
    ///     .build()?;
    /// sender.add_endpoint(config, "alice@vendor")?;
    /// assert_eq!(sender.status("acme-siem").map(|s| s.state), Some(EndpointState::Untested));
    ///
    /// sender.enable_by("acme-siem", "alice@vendor")?; // or a passing test_integration
    /// sender.pause("acme-siem", "bob@vendor")?;
    /// assert_eq!(sender.status("acme-siem").map(|s| s.state), Some(EndpointState::Paused));
    /// assert!(matches!(sender.resume("nope", "bob@vendor"), Err(RegistryError::Unknown(_))));
    ///
    /// let report = sender.remove_endpoint("acme-siem", RemovePolicy::DeadLetter, "bob@vendor").await?;
    /// assert_eq!(report.dead_lettered, 0);
    /// let actions: Vec<AuditAction> = std::iter::from_fn(|| audit.try_recv()).map(|e| e.action).collect();
    /// assert_eq!(actions.len(), 4); // added, enabled, paused, removed
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`RegistryError::Duplicate`] when the name is taken, [`RegistryError::Subscription`]
    /// for an unknown event set, [`RegistryError::Transport`] when its client certificate
    /// cannot be loaded, [`RegistryError::ShutDown`].
    pub fn add_endpoint(&self, config: EndpointConfig, actor: &str) -> Result<(), RegistryError> {
        let inner = &*self.inner;
        inner.check_open()?;
        let transport = inner.transport(&config)?;
        let changes = super::audit_diff::added(&config);
        let mut registry = inner.registry();
        if registry.names.contains_key(&config.name) {
            return Err(RegistryError::Duplicate(config.name.to_string()));
        }
        let selector = config.selector(&registry.event_sets)?;
        let shared = Arc::new(Shared::new(
            Arc::new(config),
            transport,
            Arc::clone(&inner.common.drivers),
        ));
        if inner.common.outbox.is_some() {
            shared.queue.set_durable();
        }
        let name = shared.name.clone();
        let feed = shared.clone();
        registry.insert(shared, selector)?;
        inner.publish_routes(&registry);
        drop(registry);
        inner.feed(&feed);
        inner.audit.record(
            actor,
            AuditTarget::Endpoint(name),
            AuditAction::Added,
            changes,
        );
        inner.persist_registry();
        Ok(())
    }

    /// Replaces the configuration of the endpoint named like `config` (URL, auth and
    /// secrets, headers, subscription, batching, retry, limits, queue). Events sent from now
    /// on are routed by the new subscription; batches formed from now on use the new request
    /// settings, while those already formed, waiting for a retry or in flight keep theirs:
    /// nothing queued or in flight is lost or sent twice. Its state (paused, untested,
    /// health, counters) is kept; `config`'s `paused` and `require_test` are ignored.
    ///
    /// Secret rotation: give the new signing key beside the old one with an expiry
    /// ([`KeyRing::with_key_until`](webhook_core::KeyRing::with_key_until)); both sign until
    /// the old one expires.
    ///
    /// # Errors
    /// [`RegistryError::Unknown`], [`RegistryError::Subscription`],
    /// [`RegistryError::Transport`], [`RegistryError::ShutDown`].
    pub fn update_endpoint(
        &self,
        config: EndpointConfig,
        actor: &str,
    ) -> Result<(), RegistryError> {
        let inner = &*self.inner;
        inner.check_open()?;
        let transport = inner.transport(&config)?;
        let mut registry = inner.registry();
        let selector = config.selector(&registry.event_sets)?;
        let entry = registry
            .lookup_mut(&config.name)
            .ok_or_else(|| RegistryError::Unknown(config.name.to_string()))?;
        let shared = Arc::clone(&entry.shared);
        entry.selector = Arc::new(selector);
        entry.tenant = config.subscription.tenant.as_deref().map(Arc::from);
        let changes = {
            let mut p = shared.published();
            let changes = super::audit_diff::changed(&p.cfg, &config);
            shared
                .queue
                .set_limits(config.queue_capacity, config.overflow);
            p.cfg = Arc::new(config);
            p.transport = transport;
            p.revision += 1;
            changes
        };
        inner.publish_routes(&registry);
        drop(registry);
        shared.poke();
        inner.audit.record(
            actor,
            AuditTarget::Endpoint(shared.name.clone()),
            AuditAction::Updated,
            changes,
        );
        inner.persist_registry();
        Ok(())
    }

    /// Pauses an endpoint: nothing is sent to it (attempts in flight finish); the events it
    /// selects wait in its batcher and queue (whose overflow policy applies when full) until
    /// [`resume`](Self::resume). Pausing a paused endpoint changes nothing.
    ///
    /// # Errors
    /// [`RegistryError::Unknown`], [`RegistryError::ShutDown`].
    pub fn pause(&self, endpoint: &str, actor: &str) -> Result<(), RegistryError> {
        self.set_paused(endpoint, true, actor)
    }

    /// Resumes a paused endpoint: what waited is sent. Resuming an endpoint that is not paused
    /// changes nothing.
    ///
    /// # Errors
    /// [`RegistryError::Unknown`], [`RegistryError::ShutDown`].
    pub fn resume(&self, endpoint: &str, actor: &str) -> Result<(), RegistryError> {
        self.set_paused(endpoint, false, actor)
    }

    fn set_paused(&self, endpoint: &str, paused: bool, actor: &str) -> Result<(), RegistryError> {
        let inner = &*self.inner;
        inner.check_open()?;
        let shared = inner
            .registry()
            .find(endpoint)
            .cloned()
            .ok_or_else(|| RegistryError::Unknown(endpoint.to_owned()))?;
        if std::mem::replace(&mut shared.published().paused, paused) == paused {
            return Ok(());
        }
        shared.poke();
        if !paused && shared.queue.len() > 0 && shared.queue.ensure_driver() {
            driver::spawn(&inner.common, &shared);
        }
        let action = if paused {
            AuditAction::Paused
        } else {
            AuditAction::Resumed
        };
        inner.endpoint_changed(&shared.name, action, actor);
        Ok(())
    }

    /// Removes an endpoint: events sent from now on are not routed to it, and what it holds is
    /// settled by `policy` (attempts in flight finish first). Returns once everything it held
    /// is settled, with the count of each outcome. Receipts of its events resolve as usual.
    ///
    /// # Errors
    /// [`RegistryError::Unknown`].
    pub async fn remove_endpoint(
        &self,
        endpoint: &str,
        policy: RemovePolicy,
        actor: &str,
    ) -> Result<RemoveReport, RegistryError> {
        let inner = &*self.inner;
        let shared = {
            let mut registry = inner.registry();
            let key = registry
                .names
                .remove(endpoint)
                .ok_or_else(|| RegistryError::Unknown(endpoint.to_owned()))?;
            let entry = registry.entries.remove(&key);
            inner.publish_routes(&registry);
            match entry {
                Some(e) => e.shared,
                None => return Err(RegistryError::Unknown(endpoint.to_owned())),
            }
        };
        let before = shared.snapshot().counters;
        let counted = |s: &Shared| {
            (
                s.dead_lettered.load(Ordering::Relaxed),
                s.refused.load(Ordering::Relaxed),
            )
        };
        let (dead_before, refused_before) = counted(&shared);
        shared.published().removal = Some(policy);
        shared.queue.close(Closed::Removed, false);
        shared.poke();
        if shared.queue.ensure_driver() {
            driver::spawn(&inner.common, &shared);
        }
        let policy_name = match policy {
            RemovePolicy::Deliver => "deliver",
            RemovePolicy::DeadLetter => "dead_letter",
            RemovePolicy::Drop => "drop",
        };
        inner.endpoint_changed(
            &shared.name,
            AuditAction::Removed {
                policy: policy_name,
            },
            actor,
        );
        loop {
            let retired = shared.retired.notified();
            let mut retired = std::pin::pin!(retired);
            retired.as_mut().enable();
            if shared.published().retired {
                break;
            }
            retired.await;
        }
        let after = shared.snapshot().counters;
        let (dead_after, refused_after) = counted(&shared);
        Ok(RemoveReport {
            delivered: after.delivered - before.delivered,
            dead_lettered: dead_after - dead_before,
            dropped: after.dropped - before.dropped,
            refused: refused_after - refused_before,
            counters: after,
        })
    }

    /// Enables an endpoint: one waiting for a passing test
    /// ([`require_test`](crate::EndpointConfigBuilder::require_test)) starts receiving
    /// events, and a disabled one is re-enabled as [`enable`](Self::enable) describes.
    /// Enabling an enabled endpoint changes nothing.
    ///
    /// # Errors
    /// [`super::EnableError`].
    pub fn enable_by(&self, endpoint: &str, actor: &str) -> Result<(), super::EnableError> {
        let inner = &*self.inner;
        let shared = inner
            .registry()
            .find(endpoint)
            .cloned()
            .ok_or_else(|| super::EnableError::UnknownEndpoint(endpoint.to_owned()))?;
        if inner.closed.load(Ordering::Acquire) {
            return Err(super::EnableError::ShutDown);
        }
        let mut changed = self.mark_tested(&shared);
        match shared.queue.reopen() {
            Reopen::ShutDown => return Err(super::EnableError::ShutDown),
            Reopen::WasOpen => {
                tracing::debug!(endpoint = %shared.name, "enable: endpoint not disabled");
            }
            Reopen::Reopened => {
                tracing::info!(endpoint = %shared.name, "endpoint re-enabled");
                // Broadcast before the driver learns of it: until then it stays disabled and
                // sends nothing, so no later event of its own can overtake this one.
                let _ = inner.common.lifecycle.send(super::LifecycleEvent::Enabled {
                    endpoint: shared.name.clone(),
                });
                shared.request_enable();
                shared.poke();
                if shared.queue.ensure_driver() {
                    driver::spawn(&inner.common, &shared);
                }
                changed = true;
            }
        }
        if changed {
            inner.endpoint_changed(&shared.name, AuditAction::Enabled, actor);
        }
        Ok(())
    }

    /// An untested endpoint passed its test or was enabled: route events to it. `true` when
    /// it was untested.
    pub(crate) fn mark_tested(&self, shared: &Arc<Shared>) -> bool {
        if !std::mem::replace(&mut shared.published().untested, false) {
            return false;
        }
        let inner = &*self.inner;
        let mut registry = inner.registry();
        if let Some(entry) = registry.lookup_mut(&shared.name) {
            entry.routed = true;
        }
        inner.publish_routes(&registry);
        true
    }

    /// Adds or replaces an event set; the endpoints subscribing to it select by its new
    /// patterns from the next event on.
    ///
    /// # Errors
    /// [`RegistryError::Subscription`] for an invalid set, [`RegistryError::ShutDown`].
    pub fn upsert_event_set(&self, set: EventSet, actor: &str) -> Result<(), RegistryError> {
        let inner = &*self.inner;
        inner.check_open()?;
        let name: Arc<str> = Arc::from(set.name.as_str());
        let new_types = set.types.join(", ");
        let mut registry = inner.registry();
        let old = registry.event_sets.upsert(set)?;
        let sets = registry.event_sets.clone();
        for entry in registry.entries.values_mut() {
            let cfg = entry.shared.published().cfg.clone();
            if cfg.subscription.uses_event_set(&name) {
                entry.selector = Arc::new(cfg.selector(&sets)?);
            }
        }
        inner.publish_routes(&registry);
        drop(registry);
        let action = if old.is_some() {
            AuditAction::Updated
        } else {
            AuditAction::Added
        };
        let changes = vec![FieldChange::new(
            "types",
            old.map(|o| o.types.join(", ")),
            Some(new_types),
        )];
        inner
            .audit
            .record(actor, AuditTarget::EventSet(name), action, changes);
        inner.persist_registry();
        Ok(())
    }

    /// Removes an event set no endpoint uses.
    ///
    /// # Errors
    /// [`RegistryError::EventSetInUse`], [`RegistryError::Unknown`].
    pub fn remove_event_set(&self, name: &str, actor: &str) -> Result<(), RegistryError> {
        let inner = &*self.inner;
        let mut registry = inner.registry();
        let users: Vec<String> = registry
            .entries
            .values()
            .filter(|e| e.shared.published().cfg.subscription.uses_event_set(name))
            .map(|e| e.shared.name.to_string())
            .collect();
        if !users.is_empty() {
            return Err(RegistryError::EventSetInUse {
                set: name.to_owned(),
                endpoints: users,
            });
        }
        let old = registry
            .event_sets
            .remove(name)
            .ok_or_else(|| RegistryError::Unknown(name.to_owned()))?;
        drop(registry);
        inner.audit.record(
            actor,
            AuditTarget::EventSet(Arc::from(name)),
            AuditAction::Removed { policy: "unused" },
            vec![FieldChange::new("types", Some(old.types.join(", ")), None)],
        );
        inner.persist_registry();
        Ok(())
    }

    /// The event sets.
    #[must_use]
    pub fn event_sets(&self) -> Vec<EventSet> {
        self.inner.registry().event_sets.iter().cloned().collect()
    }

    /// The status of the endpoint named `endpoint`.
    #[must_use]
    pub fn status(&self, endpoint: &str) -> Option<EndpointStatus> {
        let shared = self.inner.registry().find(endpoint).cloned()?;
        let (now, wall) = (std::time::Instant::now(), SystemTime::now());
        Some(shared.status(now, wall))
    }

    /// Every endpoint's status, in the order they were added.
    #[must_use]
    pub fn statuses(&self) -> Vec<EndpointStatus> {
        let all: Vec<Arc<Shared>> = self.inner.registry().shared().cloned().collect();
        let (now, wall) = (std::time::Instant::now(), SystemTime::now());
        all.iter().map(|s| s.status(now, wall)).collect()
    }

    /// The registry as data, to persist and load again
    /// ([`RegistrySnapshot::apply`](crate::RegistrySnapshot::apply)): the event sets and every
    /// endpoint built from an [`EndpointSpec`](crate::EndpointSpec), with its current state
    /// (`paused`, and `require_test` while it is untested). Endpoints configured in code have
    /// no spec and are not in it ([`EndpointConfig::spec`]); secrets are in it (use
    /// [`RegistrySnapshot::redacted`](crate::RegistrySnapshot::redacted) to show it).
    #[must_use]
    pub fn snapshot(&self) -> crate::RegistrySnapshot {
        self.inner.snapshot()
    }

    /// The audit trail from now on: every registry change, in order.
    #[must_use]
    pub fn audit(&self) -> AuditStream {
        self.inner.audit.subscribe()
    }

    /// The configuration of the endpoint named `endpoint`.
    #[must_use]
    pub fn endpoint_config(&self, endpoint: &str) -> Option<Arc<EndpointConfig>> {
        let shared = self.inner.registry().find(endpoint).cloned()?;
        let cfg = shared.published().cfg.clone();
        Some(cfg)
    }

    /// The durable outbox, when the sender was built with one
    /// ([`SenderBuilder::outbox`](crate::SenderBuilder::outbox)): its status, dead letters and
    /// redelivery.
    #[must_use]
    pub fn outbox(&self) -> Option<&crate::outbox::Outbox> {
        self.inner.common.outbox.as_ref()
    }

    /// Driver tasks running now (endpoints with work in hand; idle ones hold none).
    #[must_use]
    pub fn running_drivers(&self) -> usize {
        self.inner.common.drivers.running()
    }
}
