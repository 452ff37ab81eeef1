//! Retry policy: Svix schedule with seeded jitter, exponential full jitter, Retry-After in both
//! forms, throttling minimum, limits, and a virtual-time retry loop.

use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderValue, StatusCode};
use webhook_core::{
    AttemptOutcome, GiveUpReason, RetryDecision, RetryPolicy, RetryState, SplitMix64,
};

const SVIX_SECS: [u64; 8] = [0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000];

fn wall() -> SystemTime {
    // Wed, 21 Oct 2015 07:28:00 GMT
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480)
}

fn response(status: u16, headers: &HeaderMap) -> AttemptOutcome<'_> {
    AttemptOutcome::Response {
        status: StatusCode::from_u16(status).unwrap(),
        headers,
    }
}

fn delay_of(d: RetryDecision) -> Duration {
    match d {
        RetryDecision::RetryAt { delay, .. } => delay,
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[test]
fn svix_jitter_stays_within_twenty_percent() {
    let policy = RetryPolicy::svix();
    let empty = HeaderMap::new();
    let t0 = Instant::now();
    for seed in 0..200 {
        let mut rng = SplitMix64::new(seed);
        let mut state = RetryState::new(t0);
        let mut now = t0;
        for nominal in &SVIX_SECS[1..] {
            let decision = policy.decide(&state, &response(500, &empty), now, wall(), &mut rng);
            let d = delay_of(decision);
            let nominal = Duration::from_secs(*nominal);
            assert!(
                d >= nominal.mul_f64(0.8) && d <= nominal.mul_f64(1.2),
                "seed {seed}: {d:?} vs {nominal:?}"
            );
            now += d;
            state.record_attempt();
        }
        assert_eq!(state.attempts(), 8);
        assert_eq!(
            policy.decide(&state, &response(500, &empty), now, wall(), &mut rng),
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
    }
}

#[test]
fn jitter_is_deterministic_per_seed_and_spreads() {
    let policy = RetryPolicy::svix();
    let empty = HeaderMap::new();
    let t0 = Instant::now();
    let state = RetryState::new(t0);
    let draw = |seed| {
        delay_of(policy.decide(
            &state,
            &response(502, &empty),
            t0,
            wall(),
            &mut SplitMix64::new(seed),
        ))
    };
    assert_eq!(draw(9), draw(9));
    let all: Vec<Duration> = (0..1000).map(draw).collect();
    let min = all.iter().min().unwrap();
    let max = all.iter().max().unwrap();
    assert!(
        *min < Duration::from_millis(4200) && *max > Duration::from_millis(5800),
        "{min:?}..{max:?}"
    );
}

#[test]
fn exponential_full_jitter_within_bounds() {
    let policy = RetryPolicy::builder()
        .exponential(Duration::from_secs(1), 2.0, Duration::from_secs(30), true)
        .max_attempts(20)
        .min_wait_after_throttle(Duration::ZERO)
        .build()
        .unwrap();
    let t0 = Instant::now();
    let mut rng = SplitMix64::new(3);
    let mut state = RetryState::new(t0);
    for retry in 1..20u32 {
        let cap = Duration::from_secs((1u64 << (retry - 1).min(10)).min(30));
        for _ in 0..50 {
            let d = delay_of(policy.decide(
                &state,
                &AttemptOutcome::ConnectError,
                t0,
                wall(),
                &mut rng,
            ));
            assert!(d <= cap, "retry {retry}: {d:?} > {cap:?}");
        }
        state.record_attempt();
    }
    assert_eq!(
        policy.decide(&state, &AttemptOutcome::ConnectError, t0, wall(), &mut rng),
        RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
    );
}

#[test]
fn retry_after_seconds_and_http_date_are_honoured_and_clamped() {
    let policy = RetryPolicy::builder()
        .retry_after(true, Duration::from_secs(3600))
        .build()
        .unwrap();
    let t0 = Instant::now();
    let state = RetryState::new(t0);
    let mut rng = SplitMix64::new(1);

    let mut h = HeaderMap::new();
    h.insert("retry-after", HeaderValue::from_static("120"));
    let d = delay_of(policy.decide(&state, &response(503, &h), t0, wall(), &mut rng));
    assert_eq!(d, Duration::from_secs(120));

    h.insert(
        "retry-after",
        HeaderValue::from_static("Wed, 21 Oct 2015 07:38:00 GMT"),
    );
    let d = delay_of(policy.decide(&state, &response(503, &h), t0, wall(), &mut rng));
    assert_eq!(d, Duration::from_secs(600));

    h.insert("retry-after", HeaderValue::from_static("86400"));
    let d = delay_of(policy.decide(&state, &response(503, &h), t0, wall(), &mut rng));
    assert_eq!(d, Duration::from_secs(3600), "clamped");

    // A Retry-After shorter than the schedule does not shorten it.
    h.insert("retry-after", HeaderValue::from_static("1"));
    let d = delay_of(policy.decide(&state, &response(503, &h), t0, wall(), &mut rng));
    assert!(d >= Duration::from_secs(4));

    // Garbage is ignored.
    h.insert("retry-after", HeaderValue::from_static("tomorrow"));
    let d = delay_of(policy.decide(&state, &response(503, &h), t0, wall(), &mut rng));
    assert!(d <= Duration::from_secs(6));

    let ignore = RetryPolicy::builder()
        .retry_after(false, Duration::from_secs(3600))
        .build()
        .unwrap();
    h.insert("retry-after", HeaderValue::from_static("120"));
    let d = delay_of(ignore.decide(&state, &response(503, &h), t0, wall(), &mut rng));
    assert!(d <= Duration::from_secs(6));
}

#[test]
fn minimum_wait_after_timeout_or_429() {
    let policy = RetryPolicy::svix();
    let empty = HeaderMap::new();
    let t0 = Instant::now();
    let state = RetryState::new(t0);
    let mut rng = SplitMix64::new(5);
    let d = delay_of(policy.decide(&state, &response(429, &empty), t0, wall(), &mut rng));
    assert_eq!(d, Duration::from_secs(60));
    let d = delay_of(policy.decide(&state, &AttemptOutcome::Timeout, t0, wall(), &mut rng));
    assert_eq!(d, Duration::from_secs(60));
    let d = delay_of(policy.decide(&state, &AttemptOutcome::ConnectError, t0, wall(), &mut rng));
    assert!(d < Duration::from_secs(7));
}

#[test]
fn terminal_verdicts() {
    let policy = RetryPolicy::svix();
    let t0 = Instant::now();
    let state = RetryState::new(t0);
    let mut rng = SplitMix64::new(0);
    let mut h = HeaderMap::new();
    let table = [
        (200, RetryDecision::Delivered),
        (302, RetryDecision::GiveUp(GiveUpReason::Permanent)),
        (400, RetryDecision::GiveUp(GiveUpReason::Permanent)),
        (410, RetryDecision::GiveUp(GiveUpReason::EndpointDisabled)),
        (501, RetryDecision::GiveUp(GiveUpReason::Permanent)),
    ];
    for (status, want) in table {
        assert_eq!(
            policy.decide(&state, &response(status, &h), t0, wall(), &mut rng),
            want,
            "{status}"
        );
    }
    h.insert(
        "webhook-delivery",
        HeaderValue::from_static("abort-message"),
    );
    assert_eq!(
        policy.decide(&state, &response(500, &h), t0, wall(), &mut rng),
        RetryDecision::GiveUp(GiveUpReason::Aborted)
    );
    h.insert("webhook-delivery", HeaderValue::from_static("disable"));
    assert_eq!(
        policy.decide(&state, &response(500, &h), t0, wall(), &mut rng),
        RetryDecision::GiveUp(GiveUpReason::EndpointDisabled)
    );
}

#[test]
fn elapsed_limit_gives_up() {
    let policy = RetryPolicy::builder()
        .fixed(
            vec![
                Duration::ZERO,
                Duration::from_secs(10),
                Duration::from_secs(100),
            ],
            0,
        )
        .max_elapsed(Duration::from_secs(60))
        .build()
        .unwrap();
    let empty = HeaderMap::new();
    let t0 = Instant::now();
    let mut state = RetryState::new(t0);
    let mut rng = SplitMix64::new(0);
    let d = policy.decide(&state, &response(500, &empty), t0, wall(), &mut rng);
    assert_eq!(
        d,
        RetryDecision::RetryAt {
            at: t0 + Duration::from_secs(10),
            delay: Duration::from_secs(10)
        }
    );
    state.record_attempt();
    let t1 = t0 + Duration::from_secs(10);
    assert_eq!(
        policy.decide(&state, &response(500, &empty), t1, wall(), &mut rng),
        RetryDecision::GiveUp(GiveUpReason::ElapsedExhausted)
    );
}

#[test]
fn virtual_time_retry_loop_follows_the_schedule() {
    // A receiver that fails twice then succeeds; no jitter so the times are exact.
    let policy = RetryPolicy::builder()
        .fixed(
            SVIX_SECS.iter().map(|s| Duration::from_secs(*s)).collect(),
            0,
        )
        .build()
        .unwrap();
    let empty = HeaderMap::new();
    let t0 = Instant::now();
    let mut rng = SplitMix64::new(0);
    let mut now = t0;
    let mut state = RetryState::new(now);
    let mut attempts_at = vec![now - t0];
    let statuses = [500, 503, 200];
    let mut i = 0;
    loop {
        match policy.decide(
            &state,
            &response(statuses[i], &empty),
            now,
            wall(),
            &mut rng,
        ) {
            RetryDecision::RetryAt { at, .. } => {
                now = at; // jump, no sleeping
                state.record_attempt();
                attempts_at.push(now - t0);
                i += 1;
            }
            RetryDecision::Delivered => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        attempts_at,
        [
            Duration::ZERO,
            Duration::from_secs(5),
            Duration::from_secs(305)
        ]
    );
}
