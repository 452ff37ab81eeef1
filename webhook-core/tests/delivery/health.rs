//! Endpoint health in virtual time: failed at exactly 15 minutes, recovery, disable.

use std::time::{Duration, Instant};

use webhook_core::{Health, HealthConfig, HealthEvent, HealthState};

fn events(h: &mut Health) -> Vec<HealthEvent> {
    std::iter::from_fn(|| h.poll_event()).collect()
}

#[test]
fn turns_failed_at_exactly_fifteen_minutes_and_recovers() {
    let mut h = Health::new(HealthConfig::default());
    let t0 = Instant::now();
    h.on_success(t0);
    assert!(events(&mut h).is_empty());
    h.on_failure(t0);
    assert_eq!(events(&mut h), [HealthEvent::Failing { since: t0 }]);
    // More failures keep the original start.
    for m in [1, 5, 14] {
        h.on_failure(t0 + Duration::from_secs(m * 60));
    }
    let fifteen = t0 + Duration::from_secs(15 * 60);
    h.handle_timeout(fifteen - Duration::from_nanos(1));
    assert_eq!(h.state(), HealthState::Failing { since: t0 });
    assert_eq!(h.poll_timeout(), Some(fifteen));
    h.handle_timeout(fifteen);
    assert_eq!(h.state(), HealthState::Failed { since: t0 });
    assert_eq!(
        events(&mut h),
        [HealthEvent::Exhausted {
            since: t0,
            at: fifteen
        }]
    );
    assert_eq!(h.poll_timeout(), None, "no automatic disable by default");

    let t1 = t0 + Duration::from_secs(20 * 60);
    h.on_success(t1);
    assert_eq!(h.state(), HealthState::Healthy);
    assert_eq!(
        events(&mut h),
        [HealthEvent::Recovered {
            after: Duration::from_secs(20 * 60)
        }]
    );
}

#[test]
fn recovers_before_the_window_without_failing() {
    let mut h = Health::new(HealthConfig::default().failed_after(Duration::from_secs(60)));
    let t0 = Instant::now();
    h.on_failure(t0);
    h.on_success(t0 + Duration::from_secs(59));
    assert_eq!(
        events(&mut h),
        [
            HealthEvent::Failing { since: t0 },
            HealthEvent::Recovered {
                after: Duration::from_secs(59)
            }
        ]
    );
    h.handle_timeout(t0 + Duration::from_secs(3600));
    assert_eq!(h.state(), HealthState::Healthy);
}

#[test]
fn svix_disables_after_five_days() {
    let mut h = Health::new(HealthConfig::svix());
    let t0 = Instant::now();
    h.on_failure(t0);
    let fifteen = h.poll_timeout().unwrap();
    h.handle_timeout(fifteen);
    let five_days = t0 + Duration::from_secs(5 * 24 * 3600);
    assert_eq!(h.poll_timeout(), Some(five_days));
    h.handle_timeout(five_days);
    assert_eq!(h.state(), HealthState::Disabled { at: five_days });
    assert!(!h.is_enabled());
    let ev = events(&mut h);
    assert_eq!(ev.last(), Some(&HealthEvent::Disabled { at: five_days }));
}

#[test]
fn disable_verdict_and_reenable() {
    let mut h = Health::new(HealthConfig::default());
    let t0 = Instant::now();
    h.disable(t0);
    h.disable(t0 + Duration::from_secs(1));
    assert_eq!(events(&mut h), [HealthEvent::Disabled { at: t0 }]);
    let t2 = t0 + Duration::from_secs(2);
    assert!(h.enable(t2));
    assert!(h.is_enabled());
    assert_eq!(h.state(), HealthState::Healthy);
    assert_eq!(events(&mut h), [HealthEvent::Enabled { at: t2 }]);
}
