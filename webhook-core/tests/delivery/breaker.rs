//! Circuit breaker: open at 70 % over at least 10 requests, half-open probe, close.

use std::time::{Duration, Instant};

use webhook_core::{BreakerConfig, BreakerState, CircuitBreaker};

fn record(b: &mut CircuitBreaker, now: Instant, ok: usize, failed: usize) {
    for _ in 0..ok {
        assert!(b.try_acquire(now));
        b.record_success(now);
    }
    for _ in 0..failed {
        assert!(b.try_acquire(now));
        b.record_failure(now);
    }
}

#[test]
fn opens_at_seventy_percent_over_ten() {
    let t0 = Instant::now();
    let mut b = CircuitBreaker::new(BreakerConfig::default());
    record(&mut b, t0, 4, 6); // 60 %
    assert_eq!(b.state(), BreakerState::Closed);

    let mut b = CircuitBreaker::new(BreakerConfig::default());
    record(&mut b, t0, 0, 9); // 100 % but only 9 requests
    assert_eq!(b.state(), BreakerState::Closed);
    b.record_failure(t0);
    assert_eq!(
        b.state(),
        BreakerState::Open {
            until: t0 + Duration::from_secs(30)
        }
    );

    let mut b = CircuitBreaker::new(BreakerConfig::default());
    record(&mut b, t0, 3, 7); // exactly 70 %
    assert!(matches!(b.state(), BreakerState::Open { .. }));
}

#[test]
fn half_open_probe_then_close_or_reopen() {
    let cfg =
        BreakerConfig::new(Duration::from_secs(60), 10, 70, Duration::from_secs(30), 1).unwrap();
    let mut b = CircuitBreaker::new(cfg);
    let t0 = Instant::now();
    record(&mut b, t0, 0, 10);
    assert!(!b.try_acquire(t0 + Duration::from_secs(29)));
    let t1 = b.poll_timeout().unwrap();
    assert_eq!(t1, t0 + Duration::from_secs(30));
    assert!(b.try_acquire(t1), "one probe");
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(!b.try_acquire(t1), "only one probe at a time");
    b.record_failure(t1);
    assert_eq!(
        b.state(),
        BreakerState::Open {
            until: t1 + Duration::from_secs(30)
        }
    );

    let t2 = t1 + Duration::from_secs(30);
    b.handle_timeout(t2);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(b.try_acquire(t2));
    b.record_success(t2);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.failure_percent(t2), 0, "window reset on close");
    assert!(b.try_acquire(t2));
}
