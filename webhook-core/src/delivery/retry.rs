//! Retry policy: what an attempt's outcome means and when to try again. Pure, driven by `now`.
//!
//! [`Verdict::classify`] maps an [`AttemptOutcome`] to success, retryable, permanent,
//! disable-endpoint or abort-message. [`RetryPolicy::decide`] turns a verdict into the next
//! attempt instant or a reason to give up, using a [`Schedule`] (Svix-like fixed delays with
//! ±20 % jitter, or exponential with full jitter), attempt and elapsed-time limits, `Retry-After`
//! (seconds or HTTP-date, clamped) and a minimum wait after a timeout or 429. Jitter draws from
//! an injected [`JitterRng`]; [`SplitMix64`] is a small seedable default.

use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, StatusCode};

/// The header a receiver uses to steer delivery (`disable` or `abort-message`).
pub const WEBHOOK_DELIVERY_HEADER: &str = "webhook-delivery";

/// Source of randomness for jitter. Not used for anything security-relevant.
pub trait JitterRng {
    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64;

    /// A uniform value in `0..=max` (multiply-shift; bias below 2^-64 per draw, fine for jitter).
    fn below_inclusive(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            return self.next_u64();
        }
        ((u128::from(self.next_u64()) * (u128::from(max) + 1)) >> 64) as u64
    }
}

impl<R: JitterRng + ?Sized> JitterRng for &mut R {
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }
}

/// SplitMix64: a tiny, fast, seedable generator for jitter and tests. **Not cryptographic.**
///
/// ```
/// use webhook_core::{JitterRng, SplitMix64};
/// let mut a = SplitMix64::new(42);
/// let mut b = SplitMix64::new(42);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.below_inclusive(10) <= 10);
/// ```
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator from a seed (any value, including 0).
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }
}

impl JitterRng for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// What happened to one delivery attempt.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum AttemptOutcome<'a> {
    /// A response arrived.
    Response {
        /// Its status.
        status: StatusCode,
        /// Its headers (`Retry-After`, `webhook-delivery`).
        headers: &'a HeaderMap,
    },
    /// No connection could be made (DNS, refused, TLS handshake, reset before a response).
    ConnectError,
    /// The request timed out.
    Timeout,
}

/// The meaning of an attempt's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// 2xx: delivered (a batch is acknowledged as a whole).
    Success,
    /// 408, 429, 5xx except 501, connection error, timeout.
    Retryable,
    /// 3xx (redirects are not followed), 501 and other 4xx: retrying will not help.
    Permanent,
    /// 410 Gone or `webhook-delivery: disable`: stop sending to this endpoint.
    DisableEndpoint,
    /// `webhook-delivery: abort-message`: drop this message, keep the endpoint.
    AbortMessage,
}

impl Verdict {
    /// Classifies an attempt outcome.
    ///
    /// A 2xx is always [`Verdict::Success`]. Otherwise the `webhook-delivery` header
    /// (`disable`, `abort-message`; case-insensitive) takes precedence over the status.
    ///
    /// ```
    /// use http::{HeaderMap, StatusCode};
    /// use webhook_core::{AttemptOutcome, Verdict};
    /// let headers = HeaderMap::new();
    /// let r = |s: u16| AttemptOutcome::Response { status: StatusCode::from_u16(s).unwrap(), headers: &headers };
    /// assert_eq!(Verdict::classify(&r(204)), Verdict::Success);
    /// assert_eq!(Verdict::classify(&r(503)), Verdict::Retryable);
    /// assert_eq!(Verdict::classify(&r(501)), Verdict::Permanent);
    /// assert_eq!(Verdict::classify(&r(410)), Verdict::DisableEndpoint);
    /// assert_eq!(Verdict::classify(&AttemptOutcome::Timeout), Verdict::Retryable);
    /// ```
    pub fn classify(outcome: &AttemptOutcome<'_>) -> Self {
        match *outcome {
            AttemptOutcome::ConnectError | AttemptOutcome::Timeout => Self::Retryable,
            AttemptOutcome::Response { status, headers } => {
                if status.is_success() {
                    return Self::Success;
                }
                for value in headers.get_all(WEBHOOK_DELIVERY_HEADER) {
                    let v = value.as_bytes();
                    if v.eq_ignore_ascii_case(b"disable") {
                        return Self::DisableEndpoint;
                    }
                    if v.eq_ignore_ascii_case(b"abort-message") {
                        return Self::AbortMessage;
                    }
                }
                match status.as_u16() {
                    410 => Self::DisableEndpoint,
                    408 | 429 => Self::Retryable,
                    501 => Self::Permanent,
                    500..=599 => Self::Retryable,
                    _ => Self::Permanent,
                }
            }
        }
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (relative to wall-clock `now`).
///
/// A date in the past gives zero. Returns `None` for anything unparseable.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use webhook_core::parse_retry_after;
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
/// assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Saturate absurd values; the policy clamps them anyway.
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// When attempts happen.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Schedule {
    /// Attempt `i` happens `delays[i]` after attempt `i-1` failed (`delays[0]`, normally zero,
    /// is the first attempt), each delay jittered by ±`jitter_percent` %.
    Fixed {
        /// Delays before each attempt.
        delays: Vec<Duration>,
        /// Jitter as a percentage of each delay (Svix: 20).
        jitter_percent: u8,
    },
    /// Retry `n` (1-based) waits `min(cap, base * factor^(n-1))`, with full jitter
    /// (uniform in `0..=delay`) when `full_jitter` is set.
    Exponential {
        /// First retry delay.
        base: Duration,
        /// Growth factor (≥ 1, finite).
        factor: f64,
        /// Largest delay.
        cap: Duration,
        /// Uniform jitter over `0..=delay`.
        full_jitter: bool,
    },
}

impl Schedule {
    /// The Svix schedule: 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, ±20 % jitter.
    pub fn svix() -> Self {
        const M: u64 = 60;
        const H: u64 = 3600;
        Self::Fixed {
            delays: [0, 5, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H, 10 * H]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            jitter_percent: 20,
        }
    }

    /// Unjittered delay before retry number `retry` (1-based), `None` past a fixed schedule.
    fn nominal(&self, retry: u32) -> Option<Duration> {
        match self {
            Self::Fixed { delays, .. } => delays.get(retry as usize).copied(),
            Self::Exponential {
                base, factor, cap, ..
            } => {
                let exp = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
                let secs = base.as_secs_f64() * factor.powi(exp);
                Some(Duration::try_from_secs_f64(secs).map_or(*cap, |d| d.min(*cap)))
            }
        }
    }

    fn jittered(&self, delay: Duration, rng: &mut dyn JitterRng) -> Duration {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        match self {
            Self::Fixed { jitter_percent, .. } => {
                let span = u64::try_from(u128::from(nanos) * u128::from(*jitter_percent) / 100)
                    .unwrap_or(u64::MAX);
                if span == 0 {
                    return delay;
                }
                let draw = rng.below_inclusive(span.saturating_mul(2));
                // nanos - span + draw, within [nanos - span, nanos + span].
                Duration::from_nanos((nanos - span).saturating_add(draw))
            }
            Self::Exponential { full_jitter, .. } => {
                if *full_jitter {
                    Duration::from_nanos(rng.below_inclusive(nanos))
                } else {
                    delay
                }
            }
        }
    }

    fn attempts(&self) -> u32 {
        match self {
            Self::Fixed { delays, .. } => u32::try_from(delays.len()).unwrap_or(u32::MAX),
            Self::Exponential { .. } => u32::MAX,
        }
    }
}

/// Errors building a [`RetryPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetryPolicyError {
    /// A fixed schedule with no delay at all.
    #[error("a fixed schedule needs at least one entry (the first attempt)")]
    EmptySchedule,
    /// Jitter above 100 %.
    #[error("jitter_percent must be at most 100")]
    JitterTooLarge,
    /// Exponential factor below 1, NaN or infinite.
    #[error("exponential factor must be finite and at least 1")]
    BadFactor,
    /// `max_attempts` of zero.
    #[error("max_attempts must be at least 1")]
    ZeroAttempts,
}

/// Per-message retry state: when the first attempt happened and how many were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryState {
    first_attempt_at: Instant,
    attempts: u32,
}

impl RetryState {
    /// State after the first attempt, made at `now`.
    pub const fn new(now: Instant) -> Self {
        Self {
            first_attempt_at: now,
            attempts: 1,
        }
    }

    /// Attempts made so far.
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// When the first attempt was made.
    pub const fn first_attempt_at(&self) -> Instant {
        self.first_attempt_at
    }

    /// State restored from a store: `attempts` made (at least 1), the first at
    /// `first_attempt_at` (a durable outbox keeps both across restarts).
    ///
    /// ```
    /// use std::time::Instant;
    /// let t0 = Instant::now();
    /// let state = webhook_core::RetryState::resumed(t0, 3);
    /// assert_eq!((state.attempts(), state.first_attempt_at()), (3, t0));
    /// ```
    pub const fn resumed(first_attempt_at: Instant, attempts: u32) -> Self {
        Self {
            first_attempt_at,
            attempts: if attempts == 0 { 1 } else { attempts },
        }
    }

    /// Records that the scheduled retry was made.
    pub fn record_attempt(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
    }
}

/// Why retries stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// The outcome is permanent (3xx, 4xx other than 408/429/410, 501).
    Permanent,
    /// The receiver asked to abort this message.
    Aborted,
    /// The endpoint must be disabled (410 or `webhook-delivery: disable`).
    EndpointDisabled,
    /// `max_attempts` were made.
    AttemptsExhausted,
    /// The next attempt would fall after `max_elapsed` since the first.
    ElapsedExhausted,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryDecision {
    /// Delivered.
    Delivered,
    /// Try again at `at` (`delay` after `now`).
    RetryAt {
        /// When.
        at: Instant,
        /// Delay from `now`.
        delay: Duration,
    },
    /// Stop.
    GiveUp(GiveUpReason),
}

/// A pure retry policy; build with [`RetryPolicy::builder`] or take [`RetryPolicy::svix`].
///
/// ```
/// use std::time::{Duration, Instant, SystemTime};
/// use http::{HeaderMap, StatusCode};
/// use webhook_core::{AttemptOutcome, RetryDecision, RetryPolicy, RetryState, SplitMix64};
/// let policy = RetryPolicy::svix();
/// let mut rng = SplitMix64::new(7);
/// let t0 = Instant::now();
/// let state = RetryState::new(t0);
/// let headers = HeaderMap::new();
/// let outcome = AttemptOutcome::Response { status: StatusCode::BAD_GATEWAY, headers: &headers };
/// match policy.decide(&state, &outcome, t0, SystemTime::UNIX_EPOCH, &mut rng) {
///     RetryDecision::RetryAt { delay, .. } => {
///         assert!(delay >= Duration::from_secs(4) && delay <= Duration::from_secs(6));
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    schedule: Schedule,
    max_attempts: u32,
    max_elapsed: Option<Duration>,
    max_retry_after: Duration,
    honour_retry_after: bool,
    min_wait_after_throttle: Duration,
}

impl RetryPolicy {
    /// Svix's policy: [`Schedule::svix`], 8 attempts, at least 60 s after a timeout or 429,
    /// `Retry-After` honoured up to 1 hour.
    pub fn svix() -> Self {
        Self {
            schedule: Schedule::svix(),
            max_attempts: 8,
            max_elapsed: None,
            max_retry_after: Duration::from_secs(3600),
            honour_retry_after: true,
            min_wait_after_throttle: Duration::from_secs(60),
        }
    }

    /// A builder starting from [`RetryPolicy::svix`].
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            policy: Self::svix(),
            max_attempts_set: false,
        }
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Maximum number of attempts, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Decides what follows an attempt.
    ///
    /// `now` is the monotonic time the outcome was observed; `wall_now` is only used to resolve
    /// an HTTP-date `Retry-After`. The returned delay is
    /// `max(jittered schedule delay, min wait after timeout/429, clamped Retry-After)`.
    pub fn decide(
        &self,
        state: &RetryState,
        outcome: &AttemptOutcome<'_>,
        now: Instant,
        wall_now: SystemTime,
        rng: &mut dyn JitterRng,
    ) -> RetryDecision {
        let verdict = Verdict::classify(outcome);
        match verdict {
            Verdict::Success => return RetryDecision::Delivered,
            Verdict::Permanent => return RetryDecision::GiveUp(GiveUpReason::Permanent),
            Verdict::AbortMessage => return RetryDecision::GiveUp(GiveUpReason::Aborted),
            Verdict::DisableEndpoint => {
                return RetryDecision::GiveUp(GiveUpReason::EndpointDisabled);
            }
            Verdict::Retryable => {}
        }
        if state.attempts >= self.max_attempts {
            return RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted);
        }
        let Some(nominal) = self.schedule.nominal(state.attempts) else {
            return RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted);
        };
        let mut delay = self.schedule.jittered(nominal, rng);
        let throttled = match outcome {
            AttemptOutcome::Timeout => true,
            AttemptOutcome::Response { status, .. } => *status == StatusCode::TOO_MANY_REQUESTS,
            AttemptOutcome::ConnectError => false,
        };
        if throttled {
            delay = delay.max(self.min_wait_after_throttle);
        }
        if self.honour_retry_after
            && let AttemptOutcome::Response { headers, .. } = outcome
        {
            let after = headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, wall_now));
            if let Some(after) = after {
                delay = delay.max(after.min(self.max_retry_after));
            }
        }
        let Some(at) = now.checked_add(delay) else {
            return RetryDecision::GiveUp(GiveUpReason::ElapsedExhausted);
        };
        if let Some(max) = self.max_elapsed
            && at.saturating_duration_since(state.first_attempt_at) > max
        {
            return RetryDecision::GiveUp(GiveUpReason::ElapsedExhausted);
        }
        RetryDecision::RetryAt { at, delay }
    }
}

impl Default for RetryPolicy {
    /// [`RetryPolicy::svix`]: retries by time, not by a handful of attempts. Eight attempts
    /// spread over about 27.6 hours (0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, ±20 %),
    /// `Retry-After` honoured up to an hour, at least a minute after a timeout or a 429; then
    /// the batch is given up (a dead letter, kept in the sender's outbox when it has one). An
    /// endpoint down for a deploy or an afternoon loses nothing. For a fixed window (the CLI's
    /// `--retry-for`, 15 minutes by default, when Soveren marks an endpoint failed), build an
    /// exponential schedule with [`RetryPolicyBuilder::max_elapsed`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use webhook_core::RetryPolicy;
    /// let window = RetryPolicy::builder()
    ///     .exponential(Duration::from_secs(1), 2.0, Duration::from_secs(60), true)
    ///     .max_attempts(u32::MAX)
    ///     .max_elapsed(Duration::from_secs(15 * 60))
    ///     .build()?;
    /// assert_eq!(RetryPolicy::default().max_attempts(), 8);
    /// # drop(window);
    /// # Ok::<(), webhook_core::RetryPolicyError>(())
    /// ```
    fn default() -> Self {
        Self::svix()
    }
}

/// Builder for [`RetryPolicy`]; [`RetryPolicyBuilder::build`] reports the first problem.
///
/// ```
/// use std::time::Duration;
/// use webhook_core::RetryPolicy;
/// let policy = RetryPolicy::builder()
///     .exponential(Duration::from_secs(1), 2.0, Duration::from_secs(30), true)
///     .max_attempts(10)
///     .max_elapsed(Duration::from_secs(600))
///     .build()?;
/// assert_eq!(policy.max_attempts(), 10);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RetryPolicyBuilder {
    policy: RetryPolicy,
    max_attempts_set: bool,
}

impl RetryPolicyBuilder {
    /// A fixed schedule (see [`Schedule::Fixed`]); `max_attempts` defaults to its length.
    pub fn fixed(mut self, delays: Vec<Duration>, jitter_percent: u8) -> Self {
        self.policy.schedule = Schedule::Fixed {
            delays,
            jitter_percent,
        };
        self
    }

    /// An exponential schedule (see [`Schedule::Exponential`]); set `max_attempts` and/or
    /// `max_elapsed`, otherwise retries are unbounded.
    pub fn exponential(
        mut self,
        base: Duration,
        factor: f64,
        cap: Duration,
        full_jitter: bool,
    ) -> Self {
        self.policy.schedule = Schedule::Exponential {
            base,
            factor,
            cap,
            full_jitter,
        };
        self
    }

    /// Maximum attempts, the first included.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.policy.max_attempts = n;
        self.max_attempts_set = true;
        self
    }

    /// Give up when the next attempt would be later than this after the first attempt.
    pub fn max_elapsed(mut self, max: Duration) -> Self {
        self.policy.max_elapsed = Some(max);
        self
    }

    /// Honour `Retry-After` (default on), clamped to `max` (default 1 h).
    pub fn retry_after(mut self, honour: bool, max: Duration) -> Self {
        self.policy.honour_retry_after = honour;
        self.policy.max_retry_after = max;
        self
    }

    /// Minimum wait after a timeout or a 429 (default 60 s).
    pub fn min_wait_after_throttle(mut self, min: Duration) -> Self {
        self.policy.min_wait_after_throttle = min;
        self
    }

    /// Validates and returns the policy.
    ///
    /// # Errors
    /// See [`RetryPolicyError`].
    pub fn build(self) -> Result<RetryPolicy, RetryPolicyError> {
        let mut p = self.policy;
        match &p.schedule {
            Schedule::Fixed {
                delays,
                jitter_percent,
            } => {
                if delays.is_empty() {
                    return Err(RetryPolicyError::EmptySchedule);
                }
                if *jitter_percent > 100 {
                    return Err(RetryPolicyError::JitterTooLarge);
                }
            }
            Schedule::Exponential { factor, .. } => {
                if !factor.is_finite() || *factor < 1.0 {
                    return Err(RetryPolicyError::BadFactor);
                }
            }
        }
        if !self.max_attempts_set {
            p.max_attempts = p.schedule.attempts();
        }
        if p.max_attempts == 0 {
            return Err(RetryPolicyError::ZeroAttempts);
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let mut h = HeaderMap::new();
        let cases: &[(u16, Verdict)] = &[
            (200, Verdict::Success),
            (299, Verdict::Success),
            (301, Verdict::Permanent),
            (304, Verdict::Permanent),
            (400, Verdict::Permanent),
            (401, Verdict::Permanent),
            (404, Verdict::Permanent),
            (408, Verdict::Retryable),
            (410, Verdict::DisableEndpoint),
            (429, Verdict::Retryable),
            (500, Verdict::Retryable),
            (501, Verdict::Permanent),
            (502, Verdict::Retryable),
            (599, Verdict::Retryable),
        ];
        for &(s, v) in cases {
            let o = AttemptOutcome::Response {
                status: StatusCode::from_u16(s).unwrap(),
                headers: &h,
            };
            assert_eq!(Verdict::classify(&o), v, "{s}");
        }
        assert_eq!(
            Verdict::classify(&AttemptOutcome::ConnectError),
            Verdict::Retryable
        );
        h.insert(WEBHOOK_DELIVERY_HEADER, "Disable".parse().unwrap());
        let o = AttemptOutcome::Response {
            status: StatusCode::BAD_REQUEST,
            headers: &h,
        };
        assert_eq!(Verdict::classify(&o), Verdict::DisableEndpoint);
        h.insert(WEBHOOK_DELIVERY_HEADER, "abort-message".parse().unwrap());
        let o = AttemptOutcome::Response {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers: &h,
        };
        assert_eq!(Verdict::classify(&o), Verdict::AbortMessage);
        let ok = AttemptOutcome::Response {
            status: StatusCode::OK,
            headers: &h,
        };
        assert_eq!(Verdict::classify(&ok), Verdict::Success);
    }

    #[test]
    fn builder_errors() {
        assert_eq!(
            RetryPolicy::builder().fixed(vec![], 0).build(),
            Err(RetryPolicyError::EmptySchedule)
        );
        assert_eq!(
            RetryPolicy::builder()
                .fixed(vec![Duration::ZERO], 101)
                .build(),
            Err(RetryPolicyError::JitterTooLarge)
        );
        for f in [0.5, f64::NAN, f64::INFINITY] {
            assert_eq!(
                RetryPolicy::builder()
                    .exponential(Duration::from_secs(1), f, Duration::from_secs(2), false)
                    .build(),
                Err(RetryPolicyError::BadFactor)
            );
        }
        assert_eq!(
            RetryPolicy::builder().max_attempts(0).build(),
            Err(RetryPolicyError::ZeroAttempts)
        );
    }

    #[test]
    fn exponential_caps_without_overflow() {
        let s = Schedule::Exponential {
            base: Duration::from_millis(500),
            factor: 1.5,
            cap: Duration::from_secs(60),
            full_jitter: false,
        };
        assert_eq!(s.nominal(1), Some(Duration::from_millis(500)));
        assert_eq!(s.nominal(2), Some(Duration::from_millis(750)));
        assert_eq!(s.nominal(u32::MAX), Some(Duration::from_secs(60)));
    }

    #[test]
    fn retry_after_edge_cases() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }
}
