//! Per-endpoint request limits: in-flight concurrency (fixed or adaptive AIMD) and an optional
//! token-bucket rate limit. Pure state driven by `now`; the [`Delivery`](super::Delivery)
//! machine owns one of each.

use std::time::{Duration, Instant};

/// How many requests one endpoint may have in flight.
///
/// ```
/// use webhook_core::Concurrency;
/// let fixed = Concurrency::Fixed(8);
/// let adaptive = Concurrency::adaptive(1, 64);
/// assert_ne!(fixed, adaptive);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Concurrency {
    /// Exactly this many (at least 1).
    Fixed(usize),
    /// Additive increase, multiplicative decrease (like TCP and Vector's adaptive
    /// concurrency): start at `initial`, add one after a full window of successes, halve on a
    /// throttling outcome (429, 408, 5xx, timeout, connection error); stay within `min..=max`.
    Adaptive {
        /// Lower bound (at least 1).
        min: usize,
        /// Starting limit.
        initial: usize,
        /// Upper bound.
        max: usize,
    },
}

impl Default for Concurrency {
    /// `Fixed(4)`.
    fn default() -> Self {
        Self::Fixed(4)
    }
}

impl Concurrency {
    /// Adaptive between `min` and `max`, starting at `min`.
    #[must_use]
    pub fn adaptive(min: usize, max: usize) -> Self {
        Self::Adaptive {
            min,
            initial: min,
            max,
        }
    }

    /// The limit requests start with.
    #[must_use]
    pub fn initial(self) -> usize {
        match self {
            Self::Fixed(n) => n.max(1),
            Self::Adaptive { initial, .. } => initial.max(1),
        }
    }

    /// Checks the bounds (`Fixed(0)` or `min > max` are refused).
    ///
    /// # Errors
    /// A message naming the broken bound.
    pub fn validate(self) -> Result<(), &'static str> {
        match self {
            Self::Fixed(0) => Err("concurrency must be at least 1"),
            Self::Adaptive { min, initial, max }
                if min == 0 || max < min || initial < min || initial > max =>
            {
                Err("adaptive concurrency needs 1 <= min <= initial <= max")
            }
            _ => Ok(()),
        }
    }
}

/// The live limit of an endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Limiter {
    mode: Concurrency,
    limit: usize,
    successes: usize,
}

impl Limiter {
    pub(crate) fn new(mode: Concurrency) -> Self {
        Self {
            limit: mode.initial(),
            mode,
            successes: 0,
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn on_success(&mut self) {
        if let Concurrency::Adaptive { max, .. } = self.mode {
            self.successes += 1;
            if self.successes >= self.limit {
                self.successes = 0;
                self.limit = (self.limit + 1).min(max);
            }
        }
    }

    pub(crate) fn on_throttle(&mut self) {
        if let Concurrency::Adaptive { min, .. } = self.mode {
            self.successes = 0;
            self.limit = (self.limit / 2).max(min).max(1);
        }
    }
}

/// A token-bucket rate limit on requests (Convoy: 1000 per 60 s by default).
///
/// ```
/// use std::time::Duration;
/// use webhook_core::RateLimit;
/// let limit = RateLimit::new(1000, Duration::from_secs(60)); // burst = 1000
/// assert_eq!(limit.burst(), 1000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    requests: u32,
    per: Duration,
    burst: u32,
}

impl RateLimit {
    /// `requests` per `per`, with a burst of `requests`.
    #[must_use]
    pub fn new(requests: u32, per: Duration) -> Self {
        Self {
            requests,
            per,
            burst: requests,
        }
    }

    /// Sets the bucket size (requests allowed back to back after a quiet period).
    #[must_use]
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// The bucket size.
    #[must_use]
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Checks that requests, period and burst are non-zero.
    ///
    /// # Errors
    /// A message naming the zero setting.
    pub fn validate(self) -> Result<(), &'static str> {
        if self.requests == 0 || self.per.is_zero() || self.burst == 0 {
            Err("rate limit needs non-zero requests, period and burst")
        } else {
            Ok(())
        }
    }
}

/// Token bucket state.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    interval: Duration,
    burst: u32,
    tokens: u32,
    last: Option<Instant>,
}

impl Bucket {
    /// Whether the bucket would be full at `now` (a fresh one would behave the same).
    pub(crate) fn is_full_at(&self, now: Instant) -> bool {
        match self.last {
            None => true,
            Some(last) => {
                self.tokens >= self.burst
                    || now.saturating_duration_since(last)
                        >= self.interval.saturating_mul(self.burst - self.tokens)
            }
        }
    }

    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            interval: limit.per / limit.requests.max(1),
            burst: limit.burst.max(1),
            tokens: limit.burst.max(1),
            last: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        let Some(last) = self.last else {
            self.last = Some(now);
            return;
        };
        if self.interval.is_zero() {
            self.tokens = self.burst;
            self.last = Some(now);
            return;
        }
        let elapsed = now.saturating_duration_since(last);
        let n = elapsed.as_nanos() / self.interval.as_nanos().max(1);
        if n == 0 {
            return;
        }
        let add = u32::try_from(n).unwrap_or(u32::MAX);
        self.tokens = self.tokens.saturating_add(add).min(self.burst);
        // Keep the fractional remainder so the long-run rate is exact.
        let used = self.interval.saturating_mul(add);
        self.last = Some(if self.tokens == self.burst {
            now
        } else {
            last + used
        });
    }

    /// Takes a token, or tells when the next one is available.
    pub(crate) fn try_take(&mut self, now: Instant) -> Result<(), Instant> {
        self.refill(now);
        if self.tokens > 0 {
            self.tokens -= 1;
            return Ok(());
        }
        let last = self.last.unwrap_or(now);
        Err(last + self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aimd_grows_and_halves() {
        let mut l = Limiter::new(Concurrency::adaptive(1, 8));
        assert_eq!(l.limit(), 1);
        l.on_success();
        assert_eq!(l.limit(), 2);
        l.on_success();
        l.on_success();
        assert_eq!(l.limit(), 3);
        for _ in 0..100 {
            l.on_success();
        }
        assert_eq!(l.limit(), 8);
        l.on_throttle();
        assert_eq!(l.limit(), 4);
        l.on_throttle();
        l.on_throttle();
        l.on_throttle();
        assert_eq!(l.limit(), 1);
        let mut f = Limiter::new(Concurrency::Fixed(3));
        f.on_throttle();
        assert_eq!(f.limit(), 3);
        assert!(Concurrency::Fixed(0).validate().is_err());
        assert!(Concurrency::adaptive(4, 2).validate().is_err());
    }

    #[test]
    fn bucket_rate_and_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(RateLimit::new(10, Duration::from_secs(1)).with_burst(2));
        assert!(b.try_take(t0).is_ok());
        assert!(b.try_take(t0).is_ok());
        let next = b.try_take(t0).unwrap_err();
        assert_eq!(next, t0 + Duration::from_millis(100));
        assert!(b.try_take(next).is_ok());
        assert!(b.try_take(next).is_err());
        // 1 s later the bucket is full again (burst 2), not 10.
        let later = next + Duration::from_secs(1);
        assert!(b.try_take(later).is_ok());
        assert!(b.try_take(later).is_ok());
        assert!(b.try_take(later).is_err());
        assert!(
            RateLimit::new(0, Duration::from_secs(1))
                .validate()
                .is_err()
        );
    }
}
