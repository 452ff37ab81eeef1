//! Circuit breaker: stop hammering an endpoint that mostly fails, probe it after a cool-down.
//!
//! Closed → open when, over a sliding `window`, at least `min_requests` outcomes were recorded
//! and the failure ratio reached `failure_percent` (Convoy: 70 % over ≥ 10). Open → half-open
//! after `cool_down`; in half-open up to `half_open_probes` requests are allowed; a probe success
//! closes the breaker (window reset), a probe failure re-opens it for another cool-down.
//!
//! The window is kept in 10 buckets, so memory is constant whatever the request rate.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const BUCKETS: u32 = 10;

/// Errors building a [`BreakerConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BreakerConfigError {
    /// `failure_percent` must be in 1..=100.
    #[error("failure_percent must be between 1 and 100")]
    BadPercent,
    /// `window` must be at least 10 ns and `min_requests` and `half_open_probes` at least 1.
    #[error("window, min_requests and half_open_probes must be non-zero")]
    Zero,
}

/// Circuit breaker thresholds.
///
/// ```
/// use std::time::Duration;
/// use webhook_core::BreakerConfig;
/// let c = BreakerConfig::new(Duration::from_secs(60), 10, 70, Duration::from_secs(30), 1)?;
/// assert_eq!(c, BreakerConfig::default());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    window: Duration,
    min_requests: u32,
    failure_percent: u8,
    cool_down: Duration,
    half_open_probes: u32,
}

impl Default for BreakerConfig {
    /// Convoy-like: 70 % failures over at least 10 requests in 60 s, 30 s cool-down, 1 probe.
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            min_requests: 10,
            failure_percent: 70,
            cool_down: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }
}

impl BreakerConfig {
    /// Validated thresholds.
    ///
    /// # Errors
    /// See [`BreakerConfigError`].
    pub fn new(
        window: Duration,
        min_requests: u32,
        failure_percent: u8,
        cool_down: Duration,
        half_open_probes: u32,
    ) -> Result<Self, BreakerConfigError> {
        if failure_percent == 0 || failure_percent > 100 {
            return Err(BreakerConfigError::BadPercent);
        }
        if window < Duration::from_nanos(u64::from(BUCKETS))
            || min_requests == 0
            || half_open_probes == 0
        {
            return Err(BreakerConfigError::Zero);
        }
        Ok(Self {
            window,
            min_requests,
            failure_percent,
            cool_down,
            half_open_probes,
        })
    }
}

/// Breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests are refused until `until`.
    Open {
        /// End of the cool-down.
        until: Instant,
    },
    /// Probing: a limited number of requests may go.
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: Instant,
    ok: u32,
    failed: u32,
}

/// A circuit breaker for one endpoint.
///
/// # Driving contract
/// Before sending, ask [`try_acquire(now)`](CircuitBreaker::try_acquire); if it returns `true`,
/// send and report exactly one of [`record_success(now)`](CircuitBreaker::record_success) or
/// [`record_failure(now)`](CircuitBreaker::record_failure). When open,
/// [`poll_timeout()`](CircuitBreaker::poll_timeout) tells when probing may start.
///
/// ```
/// use std::time::{Duration, Instant};
/// use webhook_core::{BreakerConfig, BreakerState, CircuitBreaker};
/// let mut b = CircuitBreaker::new(BreakerConfig::default());
/// let t0 = Instant::now();
/// for _ in 0..10 {
///     assert!(b.try_acquire(t0));
///     b.record_failure(t0);
/// }
/// assert_eq!(b.state(), BreakerState::Open { until: t0 + Duration::from_secs(30) });
/// assert!(!b.try_acquire(t0));
/// let t1 = t0 + Duration::from_secs(30);
/// assert!(b.try_acquire(t1)); // half-open probe
/// b.record_success(t1);
/// assert_eq!(b.state(), BreakerState::Closed);
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: BreakerState,
    buckets: VecDeque<Bucket>,
    probes_out: u32,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: BreakerState::Closed,
            buckets: VecDeque::with_capacity(BUCKETS as usize + 1),
            probes_out: 0,
        }
    }

    /// The state as of the last input.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether a request may be sent at `now`; in half-open this reserves a probe slot.
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        self.handle_timeout(now);
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open { .. } => false,
            BreakerState::HalfOpen => {
                if self.probes_out < self.config.half_open_probes {
                    self.probes_out += 1;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Moves open → half-open once the cool-down has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let BreakerState::Open { until } = self.state
            && until <= now
        {
            self.state = BreakerState::HalfOpen;
            self.probes_out = 0;
        }
    }

    /// When an open breaker will start probing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            BreakerState::Open { until } => Some(until),
            BreakerState::Closed | BreakerState::HalfOpen => None,
        }
    }

    /// Reports a successful request.
    pub fn record_success(&mut self, now: Instant) {
        match self.state {
            BreakerState::HalfOpen => {
                self.state = BreakerState::Closed;
                self.buckets.clear();
                self.probes_out = 0;
            }
            BreakerState::Closed => self.bucket(now).ok += 1,
            BreakerState::Open { .. } => {}
        }
    }

    /// Reports a failed request (retryable or not).
    pub fn record_failure(&mut self, now: Instant) {
        match self.state {
            BreakerState::HalfOpen => self.open(now),
            BreakerState::Closed => {
                self.bucket(now).failed += 1;
                let (ok, failed) = self.buckets.iter().fold((0u64, 0u64), |(o, f), b| {
                    (o + u64::from(b.ok), f + u64::from(b.failed))
                });
                let total = ok + failed;
                if total >= u64::from(self.config.min_requests)
                    && failed * 100 >= total * u64::from(self.config.failure_percent)
                {
                    self.open(now);
                }
            }
            BreakerState::Open { .. } => {}
        }
    }

    /// Failure ratio in percent over the current window (0 when empty).
    pub fn failure_percent(&self, now: Instant) -> u8 {
        let horizon = now.checked_sub(self.config.window);
        let (ok, failed) = self
            .buckets
            .iter()
            .filter(|b| horizon.is_none_or(|h| b.start > h))
            .fold((0u64, 0u64), |(o, f), b| {
                (o + u64::from(b.ok), f + u64::from(b.failed))
            });
        (failed * 100)
            .checked_div(ok + failed)
            .map_or(0, |p| u8::try_from(p).unwrap_or(100))
    }

    fn open(&mut self, now: Instant) {
        let until = now.checked_add(self.config.cool_down).unwrap_or(now);
        self.state = BreakerState::Open { until };
        self.probes_out = 0;
        self.buckets.clear();
    }

    /// The bucket for `now`, after dropping buckets that left the window.
    fn bucket(&mut self, now: Instant) -> &mut Bucket {
        let width = self.config.window / BUCKETS;
        if let Some(horizon) = now.checked_sub(self.config.window) {
            while self.buckets.front().is_some_and(|b| b.start <= horizon) {
                self.buckets.pop_front();
            }
        }
        let fresh = self
            .buckets
            .back()
            .is_none_or(|b| now.saturating_duration_since(b.start) >= width);
        if fresh {
            if self.buckets.len() > BUCKETS as usize {
                self.buckets.pop_front();
            }
            self.buckets.push_back(Bucket {
                start: now,
                ok: 0,
                failed: 0,
            });
        }
        let idx = self.buckets.len() - 1;
        &mut self.buckets[idx]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_failures_leave_the_window() {
        let mut b = CircuitBreaker::new(BreakerConfig::default());
        let t0 = Instant::now();
        for _ in 0..9 {
            b.record_failure(t0);
        }
        assert_eq!(b.failure_percent(t0), 100);
        // 61 s later the 9 failures are gone: one more failure does not open.
        let t1 = t0 + Duration::from_secs(61);
        b.record_failure(t1);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.buckets.len() <= BUCKETS as usize + 1);
    }

    #[test]
    fn config_errors() {
        let d = Duration::from_secs(1);
        assert_eq!(
            BreakerConfig::new(d, 1, 0, d, 1),
            Err(BreakerConfigError::BadPercent)
        );
        assert_eq!(
            BreakerConfig::new(d, 1, 101, d, 1),
            Err(BreakerConfigError::BadPercent)
        );
        assert_eq!(
            BreakerConfig::new(d, 0, 50, d, 1),
            Err(BreakerConfigError::Zero)
        );
        assert_eq!(
            BreakerConfig::new(Duration::ZERO, 1, 50, d, 1),
            Err(BreakerConfigError::Zero)
        );
    }
}
