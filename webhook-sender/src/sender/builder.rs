//! Building a [`Sender`]: [`SenderBuilder`], and the transports of endpoints added at build
//! time and at runtime.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::driver::{Common, DeadLetterHook};
use super::endpoint::EndpointConfig;
use super::lifecycle::Shared;
use super::queue::Drivers;
use super::registry::{Audit, Registry, Routes};
use super::{
    DEFAULT_LIFECYCLE_CAPACITY, DEFAULT_PARK_AFTER, DeadLetter, Inner, Sender, SenderBuildError,
};
use crate::tls::TlsConfigBuilder;
use crate::transport::{SharedTransport, TransportBuilder};

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
    outbox: Option<OutboxSource>,
}

/// Where a sender's outbox comes from.
#[derive(Debug)]
enum OutboxSource {
    /// The embedded log, opened at build.
    Config(crate::outbox::OutboxConfig),
    /// An outbox already open (any store).
    Open(crate::outbox::Outbox),
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

/// Builds the transports of endpoints added at build time and at runtime.
pub(crate) struct TransportFactory {
    default: Mutex<Option<SharedTransport>>,
    builder: TransportBuilder,
    tls: Option<TlsConfigBuilder>,
}

impl TransportFactory {
    /// The endpoint's own transport, one with its client certificate, or the shared default.
    pub(crate) fn transport_for(
        &self,
        cfg: &EndpointConfig,
    ) -> Result<SharedTransport, SenderBuildError> {
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
            outbox: None,
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
    /// ([`EndpointConfigBuilder::event_set`](super::EndpointConfigBuilder::event_set)).
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

    /// Keeps every accepted event in a durable outbox at `config`'s directory until each
    /// endpoint it was routed to settled it (see [`outbox`](crate::outbox)): a crash or a
    /// restart loses nothing, and a sender built over the same directory first delivers what
    /// is left, with the same batch ids. The endpoint registry is saved there too: endpoints
    /// built from an [`EndpointSpec`](crate::EndpointSpec) that this builder does not name are
    /// restored from it (with their event sets and paused state). An event held for an
    /// endpoint that exists no more becomes a dead letter.
    ///
    /// With an outbox, an endpoint's queue is a window in memory: when it is full, events
    /// stay on disk and the endpoint reads them as it catches up, and the outbox's byte limit
    /// and overflow policy apply instead of the queue's.
    pub fn outbox(mut self, config: crate::outbox::OutboxConfig) -> Self {
        self.outbox = Some(OutboxSource::Config(config));
        self
    }

    /// As [`outbox`](Self::outbox), with an outbox already open: the embedded one
    /// ([`Outbox::open`](crate::outbox::Outbox::open)) or any other
    /// [`OutboxStore`](crate::outbox::OutboxStore) ([`Outbox::from_store`](crate::outbox::Outbox::from_store)).
    pub fn outbox_open(mut self, outbox: crate::outbox::Outbox) -> Self {
        self.outbox = Some(OutboxSource::Open(outbox));
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
        let outbox = match self.outbox {
            Some(OutboxSource::Config(cfg)) => {
                Some(crate::outbox::Outbox::open(cfg).map_err(SenderBuildError::Outbox)?)
            }
            Some(OutboxSource::Open(outbox)) => Some(outbox),
            None => None,
        };
        let mut endpoints = self.endpoints;
        let mut event_sets = self.event_sets;
        if let Some(saved) = outbox
            .as_ref()
            .map(crate::outbox::Outbox::registry)
            .transpose()
            .map_err(SenderBuildError::Outbox)?
            .flatten()
        {
            // What the application gives now wins; the rest comes back as it was saved.
            for set in saved.event_sets {
                if !event_sets.iter().any(|s| s.name == set.name) {
                    event_sets.push(set);
                }
            }
            for spec in saved.endpoints {
                if endpoints.iter().any(|e| *e.name == *spec.name) {
                    continue;
                }
                match spec.to_config() {
                    Ok(cfg) => endpoints.push(cfg),
                    Err(e) => {
                        tracing::warn!(endpoint = %spec.name, error = %e, "saved endpoint not restored");
                    }
                }
            }
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
            outbox: outbox.clone(),
        });
        let mut registry = Registry::default();
        for set in event_sets {
            let name = set.name.clone();
            registry
                .event_sets
                .insert(set)
                .map_err(|e| SenderBuildError::EventSet { name, source: e })?;
        }
        for cfg in endpoints {
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
            if common.outbox.is_some() {
                shared.queue.set_durable();
            }
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
        if outbox.is_some() {
            inner.resume_outbox();
        }
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
