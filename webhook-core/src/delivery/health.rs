//! Endpoint health: healthy → failing → failed (→ disabled), driven by outcomes and `now`.
//!
//! An endpoint becomes *failing* at its first failure after a success, *failed* when no attempt
//! has succeeded for `failed_after` (default 15 minutes, as Soveren shows a webhook "failed"),
//! optionally *disabled* after `disable_after` (Svix: 5 days), and *healthy* again on the next
//! success. The caller observes transitions with [`Health::poll_event`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Pending lifecycle events kept when the caller does not poll (oldest are dropped beyond).
const MAX_PENDING_EVENTS: usize = 16;

/// Health thresholds.
///
/// ```
/// use std::time::Duration;
/// use webhook_core::HealthConfig;
/// let c = HealthConfig::default().disable_after(Some(Duration::from_secs(5 * 24 * 3600)));
/// assert_eq!(c.failed_after_duration(), Duration::from_secs(15 * 60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthConfig {
    failed_after: Duration,
    disable_after: Option<Duration>,
}

impl Default for HealthConfig {
    /// Failed after 15 minutes without success, never disabled automatically.
    fn default() -> Self {
        Self {
            failed_after: Duration::from_secs(15 * 60),
            disable_after: None,
        }
    }
}

impl HealthConfig {
    /// Svix-like: failed after 15 minutes, disabled after 5 days without success.
    pub fn svix() -> Self {
        Self::default().disable_after(Some(Duration::from_secs(5 * 24 * 3600)))
    }

    /// Time without success after which the endpoint is failed.
    #[must_use]
    pub fn failed_after(mut self, window: Duration) -> Self {
        self.failed_after = window;
        self
    }

    /// Time without success after which the endpoint is disabled (`None`: never).
    /// A value below `failed_after` is raised to it.
    #[must_use]
    pub fn disable_after(mut self, window: Option<Duration>) -> Self {
        self.disable_after = window;
        self
    }

    /// The failed window.
    pub fn failed_after_duration(&self) -> Duration {
        self.failed_after
    }

    /// The disable window.
    pub fn disable_after_duration(&self) -> Option<Duration> {
        self.disable_after.map(|d| d.max(self.failed_after))
    }
}

/// The state of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthState {
    /// The last attempt succeeded (or none was made).
    Healthy,
    /// Failing since the first failure after the last success.
    Failing {
        /// First failure.
        since: Instant,
    },
    /// No success for at least `failed_after`.
    Failed {
        /// First failure.
        since: Instant,
    },
    /// Disabled (after `disable_after`, a 410, `webhook-delivery: disable`, or by the caller);
    /// only [`Health::enable`] leaves this state.
    Disabled {
        /// When it was disabled.
        at: Instant,
    },
}

/// A lifecycle transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthEvent {
    /// Healthy → failing.
    Failing {
        /// First failure.
        since: Instant,
    },
    /// The failure window is exhausted: failing → failed.
    Exhausted {
        /// First failure.
        since: Instant,
        /// When the window ran out (`since + failed_after`).
        at: Instant,
    },
    /// Failing or failed → healthy.
    Recovered {
        /// How long it had been failing.
        after: Duration,
    },
    /// The endpoint is disabled.
    Disabled {
        /// When.
        at: Instant,
    },
    /// Disabled → healthy, by [`Health::enable`].
    Enabled {
        /// When.
        at: Instant,
    },
}

/// Health tracker of one endpoint.
///
/// # Driving contract
/// - Inputs: [`on_success(now)`](Health::on_success), [`on_failure(now)`](Health::on_failure),
///   [`disable(now)`](Health::disable) (on a disable verdict), [`enable(now)`](Health::enable),
///   [`handle_timeout(now)`](Health::handle_timeout) when [`poll_timeout`](Health::poll_timeout)
///   is reached.
/// - Outputs: [`poll_event()`](Health::poll_event) until `None` after every input;
///   [`poll_timeout()`](Health::poll_timeout) re-read after every input.
///
/// ```
/// use std::time::{Duration, Instant};
/// use webhook_core::{Health, HealthConfig, HealthEvent, HealthState};
/// let mut h = Health::new(HealthConfig::default());
/// let t0 = Instant::now();
/// h.on_failure(t0);
/// assert_eq!(h.poll_event(), Some(HealthEvent::Failing { since: t0 }));
/// let at = h.poll_timeout().ok_or("no timer")?;
/// assert_eq!(at, t0 + Duration::from_secs(900));
/// h.handle_timeout(at);
/// assert_eq!(h.state(), HealthState::Failed { since: t0 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Health {
    config: HealthConfig,
    state: HealthState,
    events: VecDeque<HealthEvent>,
    dropped_events: u64,
}

impl Health {
    /// A healthy endpoint.
    pub fn new(config: HealthConfig) -> Self {
        Self {
            config,
            state: HealthState::Healthy,
            events: VecDeque::new(),
            dropped_events: 0,
        }
    }

    /// New thresholds; the state and its history are kept (the new windows apply from the
    /// next input).
    pub fn set_config(&mut self, config: HealthConfig) {
        self.config = config;
    }

    /// The current state (as of the last input).
    pub fn state(&self) -> HealthState {
        self.state
    }

    /// `true` unless disabled: whether the caller may keep sending.
    pub fn is_enabled(&self) -> bool {
        !matches!(self.state, HealthState::Disabled { .. })
    }

    /// Lifecycle events dropped because more than 16 were pending.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// An attempt succeeded at `now`.
    pub fn on_success(&mut self, now: Instant) {
        self.handle_timeout(now);
        match self.state {
            HealthState::Failing { since } | HealthState::Failed { since } => {
                self.state = HealthState::Healthy;
                self.emit(HealthEvent::Recovered {
                    after: now.saturating_duration_since(since),
                });
            }
            HealthState::Healthy | HealthState::Disabled { .. } => {}
        }
    }

    /// An attempt failed at `now` (any non-success verdict).
    pub fn on_failure(&mut self, now: Instant) {
        if self.state == HealthState::Healthy {
            self.state = HealthState::Failing { since: now };
            self.emit(HealthEvent::Failing { since: now });
        }
        self.handle_timeout(now);
    }

    /// Disables the endpoint now (410, `webhook-delivery: disable`, or an operator).
    pub fn disable(&mut self, now: Instant) {
        if self.is_enabled() {
            self.state = HealthState::Disabled { at: now };
            self.emit(HealthEvent::Disabled { at: now });
        }
    }

    /// Re-enables a disabled endpoint at `now` (an operator fixed the receiver): it becomes
    /// [`HealthState::Healthy`] with no failure history, so the `failed_after` and
    /// `disable_after` windows start again from the next failure, and
    /// [`HealthEvent::Enabled`] is emitted. Returns whether it was disabled; on an enabled
    /// endpoint it does nothing (failing or failed state is kept: only a success clears it).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use webhook_core::{Health, HealthConfig, HealthEvent, HealthState};
    /// let mut h = Health::new(HealthConfig::default());
    /// let t0 = Instant::now();
    /// h.disable(t0);
    /// assert_eq!(h.poll_event(), Some(HealthEvent::Disabled { at: t0 }));
    /// let t1 = t0 + Duration::from_secs(60);
    /// assert!(h.enable(t1));
    /// assert_eq!(h.state(), HealthState::Healthy);
    /// assert_eq!(h.poll_event(), Some(HealthEvent::Enabled { at: t1 }));
    /// assert!(!h.enable(t1), "already enabled: a no-op");
    /// assert_eq!(h.poll_event(), None);
    /// ```
    pub fn enable(&mut self, now: Instant) -> bool {
        if self.is_enabled() {
            return false;
        }
        self.state = HealthState::Healthy;
        self.emit(HealthEvent::Enabled { at: now });
        true
    }

    /// Applies the time-based transitions due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let HealthState::Failing { since } = self.state
            && let Some(at) = since.checked_add(self.config.failed_after)
            && at <= now
        {
            self.state = HealthState::Failed { since };
            self.emit(HealthEvent::Exhausted { since, at });
        }
        if let HealthState::Failed { since } = self.state
            && let Some(at) = self.disable_deadline(since)
            && at <= now
        {
            self.state = HealthState::Disabled { at };
            self.emit(HealthEvent::Disabled { at });
        }
    }

    /// When the next time-based transition is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            HealthState::Failing { since } => since.checked_add(self.config.failed_after),
            HealthState::Failed { since } => self.disable_deadline(since),
            HealthState::Healthy | HealthState::Disabled { .. } => None,
        }
    }

    /// The next lifecycle event, oldest first.
    pub fn poll_event(&mut self) -> Option<HealthEvent> {
        self.events.pop_front()
    }

    fn disable_deadline(&self, since: Instant) -> Option<Instant> {
        self.config
            .disable_after_duration()
            .and_then(|d| since.checked_add(d))
    }

    fn emit(&mut self, event: HealthEvent) {
        if self.events.len() >= MAX_PENDING_EVENTS {
            self.events.pop_front();
            self.dropped_events += 1;
        }
        self.events.push_back(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_failure_jumps_straight_to_failed_and_disabled() {
        let mut h = Health::new(HealthConfig::svix());
        let t0 = Instant::now();
        h.on_failure(t0);
        h.on_failure(t0 + Duration::from_secs(6 * 24 * 3600));
        assert!(matches!(h.state(), HealthState::Disabled { .. }));
        let events: Vec<_> = std::iter::from_fn(|| h.poll_event()).collect();
        assert_eq!(events.len(), 3);
        assert!(
            matches!(events[2], HealthEvent::Disabled { at } if at == t0 + Duration::from_secs(5 * 24 * 3600))
        );
        // Success does not re-enable.
        h.on_success(t0 + Duration::from_secs(7 * 24 * 3600));
        assert!(!h.is_enabled());
        let t8 = t0 + Duration::from_secs(8 * 24 * 3600);
        assert!(h.enable(t8));
        assert_eq!(h.state(), HealthState::Healthy);
    }

    #[test]
    fn enable_resets_the_windows_in_virtual_time() {
        let cfg = HealthConfig::default()
            .failed_after(Duration::from_secs(10))
            .disable_after(Some(Duration::from_secs(30)));
        let mut h = Health::new(cfg);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        h.on_failure(at(0));
        h.handle_timeout(at(30));
        assert_eq!(h.state(), HealthState::Disabled { at: at(30) });
        assert_eq!(h.poll_timeout(), None);
        while h.poll_event().is_some() {}

        assert!(h.enable(at(100)));
        assert!(h.is_enabled());
        assert_eq!(h.poll_event(), Some(HealthEvent::Enabled { at: at(100) }));
        assert_eq!(h.poll_event(), None);
        assert_eq!(h.poll_timeout(), None, "healthy: no timer");
        // No failure history survives: the windows start from the next failure.
        h.on_failure(at(101));
        assert_eq!(
            h.poll_event(),
            Some(HealthEvent::Failing { since: at(101) })
        );
        assert_eq!(h.poll_timeout(), Some(at(111)));
        h.handle_timeout(at(110));
        assert_eq!(h.state(), HealthState::Failing { since: at(101) });
        h.handle_timeout(at(131));
        assert_eq!(h.state(), HealthState::Disabled { at: at(131) });
        // A success after enabling recovers normally.
        assert!(h.enable(at(140)));
        h.on_failure(at(141));
        h.on_success(at(142));
        assert_eq!(h.state(), HealthState::Healthy);
        let events: Vec<_> = std::iter::from_fn(|| h.poll_event()).collect();
        assert_eq!(
            events.last(),
            Some(&HealthEvent::Recovered {
                after: Duration::from_secs(1)
            })
        );
    }

    #[test]
    fn enable_on_an_enabled_endpoint_is_a_no_op() {
        let mut h = Health::new(HealthConfig::default());
        let t0 = Instant::now();
        assert!(!h.enable(t0));
        h.on_failure(t0);
        assert!(!h.enable(t0 + Duration::from_secs(1)));
        assert_eq!(h.state(), HealthState::Failing { since: t0 });
        assert_eq!(h.poll_event(), Some(HealthEvent::Failing { since: t0 }));
        assert_eq!(h.poll_event(), None);
    }

    #[test]
    fn event_queue_is_bounded() {
        let mut h = Health::new(HealthConfig::default());
        let t0 = Instant::now();
        for i in 0..20u64 {
            h.on_failure(t0 + Duration::from_secs(i));
            h.on_success(t0 + Duration::from_secs(i));
        }
        assert_eq!(h.dropped_events(), 24);
        assert_eq!(std::iter::from_fn(|| h.poll_event()).count(), 16);
    }
}
