//! Configuration of one destination of a [`Sender`](crate::Sender): request building (the
//! core [`Endpoint`]), filter, batching, retries, health, breaker, limits, queue and auth token.

use std::sync::Arc;
use std::time::Duration;

use webhook_core::Encoding;
use webhook_core::Endpoint;
use webhook_core::{
    BatcherConfig, BatcherConfigError, BreakerConfig, Concurrency, Delivery, DeliveryBuilder,
    DeliveryConfigError, EventSets, HealthConfig, RateLimit, RetryPolicy, Selector, Subscription,
    SubscriptionError,
};

use super::queue::OverflowPolicy;
use crate::registry::EndpointSpec;
use crate::token::TokenProvider;
use crate::transport::SharedTransport;

/// Default intake queue capacity per endpoint (events).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;

/// Errors building an [`EndpointConfig`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointConfigError {
    /// The name is empty.
    #[error("the endpoint name is empty")]
    EmptyName,
    /// The subscription is invalid (an empty type pattern or label; event set names are
    /// checked by the sender, which holds the sets).
    #[error("invalid subscription")]
    Subscription(#[source] SubscriptionError),
    /// The batching limits do not fit the endpoint's encoding.
    #[error("invalid batcher configuration")]
    Batcher(#[source] BatcherConfigError),
    /// The batcher configuration declared an encoding other than the endpoint's (leave it out:
    /// the batcher follows the endpoint).
    #[error("the batcher encodes {batcher:?} but the endpoint declares {endpoint:?}")]
    EncodingMismatch {
        /// The batcher's encoding.
        batcher: Encoding,
        /// The endpoint's encoding.
        endpoint: Encoding,
    },
    /// A limit is out of range.
    #[error("invalid setting: {0}")]
    InvalidSetting(&'static str),
}

/// One destination: how to build its requests and how to drive deliveries to it.
///
/// ```no_run
/// use std::time::Duration;
/// use webhook_core::Endpoint;
/// use webhook_core::{HealthConfig, RetryPolicy};
/// use webhook_sender::{Concurrency, EndpointConfig, OverflowPolicy, RateLimit};
///
/// let endpoint = Endpoint::builder("https://hooks.example.com/sysdig").build()?;
/// let config = EndpointConfig::builder("siem", endpoint)
///     .filter(["policy.*", "runtime.*"])
///     .retry(RetryPolicy::svix())
///     .health(HealthConfig::default().failed_after(Duration::from_secs(15 * 60)))
///     .concurrency(Concurrency::adaptive(1, 32))
///     .rate_limit(RateLimit::new(1000, Duration::from_secs(60)))
///     .queue(50_000, OverflowPolicy::DropOldest)
///     .build()?;
/// assert_eq!(config.name(), "siem");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub(crate) name: Arc<str>,
    pub(crate) endpoint: Endpoint,
    pub(crate) subscription: Subscription,
    /// The data it was built from, when it was ([`EndpointSpec::to_config`]).
    pub(crate) spec: Option<Arc<EndpointSpec>>,
    pub(crate) paused: bool,
    pub(crate) require_test: bool,
    pub(crate) batcher: Option<BatcherConfig>,
    pub(crate) retry: RetryPolicy,
    pub(crate) health: HealthConfig,
    pub(crate) breaker: Option<BreakerConfig>,
    pub(crate) concurrency: Concurrency,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) queue_capacity: usize,
    pub(crate) overflow: OverflowPolicy,
    pub(crate) tokens: Option<TokenProvider>,
    pub(crate) transport: Option<SharedTransport>,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) jitter_seed: Option<u64>,
}

impl EndpointConfig {
    /// Starts a configuration named `name` (used in metrics, logs, receipts and lifecycle
    /// events) for `endpoint`.
    pub fn builder(name: impl Into<Arc<str>>, endpoint: Endpoint) -> EndpointConfigBuilder {
        EndpointConfigBuilder {
            name: name.into(),
            endpoint,
            subscription: Subscription::default(),
            spec: None,
            paused: false,
            require_test: false,
            batcher: None,
            retry: RetryPolicy::default(),
            health: HealthConfig::default(),
            breaker: None,
            concurrency: Concurrency::default(),
            rate_limit: None,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            overflow: OverflowPolicy::default(),
            tokens: None,
            transport: None,
            request_timeout: None,
            jitter_seed: None,
        }
    }

    /// The name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The request builder.
    #[must_use]
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The core delivery machine's builder with this endpoint's settings (the driver adds the
    /// jitter seed and run id).
    pub(crate) fn delivery(&self) -> DeliveryBuilder {
        let builder = Delivery::builder(self.endpoint.clone());
        match &self.batcher {
            Some(batcher) => builder.batcher(batcher.clone()),
            None => builder,
        }
        .retry(self.retry.clone())
        .health(self.health)
        .breaker(self.breaker)
        .concurrency(self.concurrency)
        .rate_limit(self.rate_limit)
    }

    /// What the endpoint receives: tenant, event sets, types and labels.
    #[must_use]
    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    /// Compiles the subscription against `sets`.
    pub(crate) fn selector(&self, sets: &EventSets) -> Result<Selector, SubscriptionError> {
        Selector::compile(&self.subscription, sets)
    }

    /// The [`EndpointSpec`] this configuration was built from (`None` when built in code):
    /// what [`Sender::snapshot`](crate::Sender::snapshot) saves and the audit trail compares.
    #[must_use]
    pub fn spec(&self) -> Option<&EndpointSpec> {
        self.spec.as_deref()
    }

    /// Whether the endpoint starts paused ([`EndpointConfigBuilder::paused`]).
    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Whether the endpoint waits for a passing test before it receives events
    /// ([`EndpointConfigBuilder::require_test`]).
    #[must_use]
    pub fn requires_test(&self) -> bool {
        self.require_test
    }
}

/// Builder of [`EndpointConfig`]; chained calls never fail, [`build`](Self::build) reports the
/// first problem.
#[derive(Debug, Clone)]
#[must_use]
pub struct EndpointConfigBuilder {
    name: Arc<str>,
    endpoint: Endpoint,
    subscription: Subscription,
    spec: Option<Arc<EndpointSpec>>,
    paused: bool,
    require_test: bool,
    batcher: Option<BatcherConfig>,
    retry: RetryPolicy,
    health: HealthConfig,
    breaker: Option<BreakerConfig>,
    concurrency: Concurrency,
    rate_limit: Option<RateLimit>,
    queue_capacity: usize,
    overflow: OverflowPolicy,
    tokens: Option<TokenProvider>,
    transport: Option<SharedTransport>,
    request_timeout: Option<Duration>,
    jitter_seed: Option<u64>,
}

impl EndpointConfigBuilder {
    /// Sends only events whose subject matches one of `patterns` (core [`Router`](webhook_core::Router) patterns:
    /// exact or `*` wildcards; Sysdig "Data to Send"). Calling it again adds patterns. Without
    /// a filter every event is sent.
    pub fn filter<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subscription
            .types
            .extend(patterns.into_iter().map(Into::into));
        self
    }

    /// The whole subscription at once (tenant, event sets, types, labels), replacing what
    /// [`filter`](Self::filter), [`tenant`](Self::tenant), [`event_set`](Self::event_set) and
    /// [`labels`](Self::labels) set.
    pub fn subscription(mut self, subscription: Subscription) -> Self {
        self.subscription = subscription;
        self
    }

    /// Remembers the data this configuration is built from (done by
    /// [`EndpointSpec::config_builder`]).
    pub(crate) fn spec(mut self, spec: EndpointSpec) -> Self {
        self.spec = Some(Arc::new(spec));
        self
    }

    /// The endpoint belongs to `tenant` and receives that tenant's events only (default: every
    /// tenant's, and those without a tenant).
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.subscription.tenant = Some(tenant.into());
        self
    }

    /// Subscribes to the sender's event set named `name` (ConnectSecure event sets, Sysdig
    /// channels); the set must exist when the endpoint is added.
    pub fn event_set(mut self, name: impl Into<String>) -> Self {
        self.subscription.event_sets.push(name.into());
        self
    }

    /// Receives only events carrying one of `labels` (Svix channels). Calling it again adds
    /// labels.
    pub fn labels<I, S>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subscription
            .labels
            .extend(labels.into_iter().map(Into::into));
        self
    }

    /// Starts paused: events it selects wait in its queue until
    /// [`Sender::resume`](crate::Sender::resume).
    pub fn paused(mut self, paused: bool) -> Self {
        self.paused = paused;
        self
    }

    /// Sysdig's rule: the endpoint starts *untested* and receives nothing until
    /// [`Sender::test_integration`](crate::Sender::test_integration) gets a 2xx from it or it
    /// is enabled explicitly ([`Sender::enable`](crate::Sender::enable)).
    pub fn require_test(mut self, require: bool) -> Self {
        self.require_test = require;
        self
    }

    /// Batching (default: [`BatcherConfig::default`]). The batcher encodes in the endpoint's
    /// encoding, declared once on the [`Endpoint`]; leave the batcher's unset (one declared
    /// differently is refused by [`build`](Self::build)). Its buffer limits also count the batches out for delivery or
    /// waiting for a retry, so they bound what the endpoint holds beyond its queue.
    pub fn batching(mut self, config: BatcherConfig) -> Self {
        self.batcher = Some(config);
        self
    }

    /// Retry policy (default: [`RetryPolicy::svix`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Health thresholds (default: failed after 15 minutes, never disabled automatically).
    pub fn health(mut self, config: HealthConfig) -> Self {
        self.health = config;
        self
    }

    /// A circuit breaker (default: none).
    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = Some(config);
        self
    }

    /// In-flight request limit (default: `Fixed(4)`).
    pub fn concurrency(mut self, concurrency: Concurrency) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// A request rate limit (default: none).
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Intake queue capacity in events (default [`DEFAULT_QUEUE_CAPACITY`]) and what happens
    /// when it is full (default [`OverflowPolicy::Block`]).
    pub fn queue(mut self, capacity: usize, overflow: OverflowPolicy) -> Self {
        self.queue_capacity = capacity;
        self.overflow = overflow;
        self
    }

    /// Fetch a bearer token (authentication URL or OAuth2 client credentials) for every
    /// delivery; a `401` invalidates it and the attempt is repeated once at once before it
    /// counts as a failure. Overrides an `Authorization` header set by the endpoint's auth.
    pub fn token_provider(mut self, tokens: TokenProvider) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// A transport for this endpoint only (default: the sender's).
    pub fn transport(mut self, transport: SharedTransport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// A per-request timeout overriding the transport's (Svix allows 1–30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Seed of the jitter generator (default: derived from the clock; set it for reproducible
    /// retry timings in tests).
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    /// See [`EndpointConfigError`].
    pub fn build(self) -> Result<EndpointConfig, EndpointConfigError> {
        if self.name.is_empty() {
            return Err(EndpointConfigError::EmptyName);
        }
        // Patterns and labels now; event set names when the sender adds it.
        let unchecked = Subscription {
            event_sets: Vec::new(),
            ..self.subscription.clone()
        };
        Selector::compile(&unchecked, &EventSets::new())
            .map_err(EndpointConfigError::Subscription)?;
        if self.queue_capacity == 0 {
            return Err(EndpointConfigError::InvalidSetting(
                "queue capacity must be at least 1",
            ));
        }
        if self.request_timeout.is_some_and(|t| t.is_zero()) {
            return Err(EndpointConfigError::InvalidSetting(
                "request timeout must be non-zero",
            ));
        }
        let config = EndpointConfig {
            name: self.name,
            endpoint: self.endpoint,
            subscription: self.subscription,
            spec: self.spec,
            paused: self.paused,
            require_test: self.require_test,
            batcher: self.batcher,
            retry: self.retry,
            health: self.health,
            breaker: self.breaker,
            concurrency: self.concurrency,
            rate_limit: self.rate_limit,
            queue_capacity: self.queue_capacity,
            overflow: self.overflow,
            tokens: self.tokens,
            transport: self.transport,
            request_timeout: self.request_timeout,
            jitter_seed: self.jitter_seed,
        };
        // The delivery machine's own checks: batching for the endpoint's encoding, limits.
        config.delivery().build::<()>().map_err(|e| match e {
            DeliveryConfigError::EncodingMismatch { batcher, endpoint } => {
                EndpointConfigError::EncodingMismatch { batcher, endpoint }
            }
            DeliveryConfigError::Batcher(e) => EndpointConfigError::Batcher(e),
            DeliveryConfigError::InvalidSetting(s) => EndpointConfigError::InvalidSetting(s),
            _ => EndpointConfigError::InvalidSetting("delivery configuration"),
        })?;
        Ok(config)
    }
}
