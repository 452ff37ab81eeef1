//! The delivery machine driven without tokio, in virtual time (quinn-proto's `Pair` harness is
//! the model): a scripted endpoint answers each request after a fixed latency, and the harness
//! jumps to the next wakeup (a machine deadline or an answer's arrival).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;
use webhook_core::{
    AttemptError, AttemptId, AttemptResult, BatcherConfig, BreakerConfig, Concurrency, Delivery,
    DeliveryEvent, DisableReason, Encoding, Endpoint, Event, FailureReason, HealthChange,
    HealthConfig, RateLimit, RetryPolicy, Settled, UndeliveredStage,
};

use super::vtime::Clock;

type BoxError = Box<dyn std::error::Error>;

/// What the scripted endpoint does with one request.
#[derive(Debug, Clone)]
enum Answer {
    Status(u16),
    StatusWith(u16, &'static str, &'static str),
    Reset,
    Timeout,
}

/// One request the endpoint saw.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    uri: String,
    batch_id: String,
    attempt: u32,
    events: Vec<String>,
    keys: Vec<Option<String>>,
}

/// The machine, a virtual clock and a scripted endpoint.
struct Harness {
    machine: Delivery<u64>,
    clock: Clock,
    latency: Duration,
    script: Box<dyn FnMut(&Seen) -> Answer>,
    /// Answers on their way back, by arrival time.
    arriving: BTreeMap<(Instant, u64), (AttemptId, Answer)>,
    seq: u64,
    seen: Vec<Seen>,
    outputs: Vec<(Instant, DeliveryEvent<u64>)>,
    max_in_flight: usize,
    next_tag: u64,
}

fn wall() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn endpoint() -> Result<Endpoint, BoxError> {
    Ok(Endpoint::builder("https://hooks.example.com/in")
        .encoding(Encoding::JsonArray)
        .build()?)
}

fn batching(linger_ms: u64, max_events: usize) -> Result<BatcherConfig, BoxError> {
    Ok(BatcherConfig::builder()
        .encoding(Encoding::JsonArray)
        .linger(Duration::from_millis(linger_ms))
        .max_events(max_events)
        .build()?)
}

/// Fixed delays between attempts (the schedule's first entry is the first attempt's, at
/// once), no jitter: retry times are exact.
fn fixed(delays_s: &[u64]) -> Result<RetryPolicy, BoxError> {
    Ok(RetryPolicy::builder()
        .fixed(
            std::iter::once(0)
                .chain(delays_s.iter().copied())
                .map(Duration::from_secs)
                .collect(),
            0,
        )
        .max_attempts(delays_s.len() as u32 + 1)
        .min_wait_after_throttle(Duration::ZERO)
        .build()?)
}

fn event(i: u64) -> Result<Event, BoxError> {
    Ok(Event::builder(format!("evt_{i}"), "policy").json_bytes(format!("{{\"n\":{i}}}"))?)
}

impl Harness {
    fn new(
        machine: Delivery<u64>,
        latency: Duration,
        script: impl FnMut(&Seen) -> Answer + 'static,
    ) -> Self {
        Self {
            machine,
            clock: Clock::new(),
            latency,
            script: Box::new(script),
            arriving: BTreeMap::new(),
            seq: 0,
            seen: Vec::new(),
            outputs: Vec::new(),
            max_in_flight: 0,
            next_tag: 0,
        }
    }

    /// Pushes `event` with the next tag (its number) at the current time.
    fn push(&mut self, event: Event) -> u64 {
        let tag = self.next_tag;
        self.next_tag += 1;
        let now = self.clock.now();
        assert!(self.machine.push(event, tag, now).is_ok(), "machine full");
        self.drain();
        tag
    }

    /// Sends what the machine emits and records its events.
    fn drain(&mut self) {
        let now = self.clock.now();
        while let Some(t) = self.machine.poll_transmit(now, wall()) {
            let events = self
                .machine
                .attempt_events(t.attempt_id)
                .map(|e| e.iter().map(|e| e.id().to_owned()).collect::<Vec<_>>())
                .unwrap_or_default();
            let keys = self
                .machine
                .attempt_events(t.attempt_id)
                .map(|e| {
                    e.iter()
                        .map(|e| e.partition_key().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(events.len(), t.events);
            assert_eq!(
                t.request.headers()["webhook-id"],
                t.batch_id.as_str(),
                "the message id is the batch id"
            );
            let seen = Seen {
                at: now,
                uri: t.request.uri().to_string(),
                batch_id: t.batch_id.as_str().to_owned(),
                attempt: t.attempt,
                events,
                keys,
            };
            let answer = (self.script)(&seen);
            self.seen.push(seen);
            self.seq += 1;
            self.arriving
                .insert((now + self.latency, self.seq), (t.attempt_id, answer));
        }
        self.max_in_flight = self.max_in_flight.max(self.machine.in_flight());
        while let Some(e) = self.machine.poll_event() {
            self.outputs.push((now, e));
        }
    }

    /// Runs until nothing is left to do or `limit` of virtual time passed.
    fn run(&mut self, limit: Duration) {
        self.drain();
        loop {
            let next_answer = self.arriving.keys().next().map(|&(at, _)| at);
            let next = [self.machine.poll_timeout(), next_answer]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { return };
            if next > self.clock.at(limit) {
                return;
            }
            self.clock.set(next.max(self.clock.now()));
            let now = self.clock.now();
            while let Some(entry) = self.arriving.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let (attempt, answer) = entry.remove();
                let mut headers = HeaderMap::new();
                let result = match answer {
                    Answer::Status(s) => AttemptResult::Response {
                        status: StatusCode::from_u16(s).expect("status"),
                        headers: &headers,
                    },
                    Answer::StatusWith(s, name, value) => {
                        headers.insert(name, HeaderValue::from_static(value));
                        AttemptResult::Response {
                            status: StatusCode::from_u16(s).expect("status"),
                            headers: &headers,
                        }
                    }
                    Answer::Reset => AttemptResult::Failed(AttemptError::Connect),
                    Answer::Timeout => AttemptResult::Failed(AttemptError::Timeout),
                };
                self.machine.handle_response(attempt, result, now, wall());
            }
            self.machine.handle_timeout(now);
            self.drain();
        }
    }

    /// Every settlement: (time, tags, outcome).
    fn settled(&self) -> Vec<(Instant, Vec<u64>, Settled)> {
        self.outputs
            .iter()
            .filter_map(|(at, e)| match e {
                DeliveryEvent::Settled(s) => Some((*at, s.tags.clone(), s.outcome.clone())),
                _ => None,
            })
            .collect()
    }

    fn health(&self) -> Vec<HealthChange> {
        self.outputs
            .iter()
            .filter_map(|(_, e)| match e {
                DeliveryEvent::Health(h) => Some(*h),
                _ => None,
            })
            .collect()
    }

    /// Asserts every pushed tag settled exactly once; returns the outcome per tag.
    fn settled_once(&self) -> HashMap<u64, Settled> {
        let mut by_tag = HashMap::new();
        for (_, tags, outcome) in self.settled() {
            for tag in tags {
                assert!(
                    by_tag.insert(tag, outcome.clone()).is_none(),
                    "tag {tag} settled twice"
                );
            }
        }
        assert_eq!(by_tag.len() as u64, self.next_tag, "every tag settles");
        by_tag
    }
}

fn machine(
    batcher: BatcherConfig,
    retry: RetryPolicy,
) -> Result<webhook_core::DeliveryBuilder, BoxError> {
    Ok(Delivery::builder(endpoint()?)
        .batcher(batcher)
        .retry(retry)
        .jitter_seed(1))
}

#[test]
fn events_pushed_within_the_linger_go_out_as_one_batch_at_its_end() -> Result<(), BoxError> {
    let m = machine(batching(200, 100)?, fixed(&[5])?)?.build()?;
    let mut h = Harness::new(m, Duration::from_millis(10), |_| Answer::Status(200));
    let t0 = h.clock.now();
    h.push(event(0)?);
    h.clock.set(h.clock.ms(50));
    h.push(event(1)?);
    h.clock.set(h.clock.ms(120));
    h.push(event(2)?);
    assert!(h.seen.is_empty(), "nothing before the linger");
    h.run(Duration::from_secs(10));
    assert_eq!(h.seen.len(), 1);
    assert_eq!(h.seen[0].at, t0 + Duration::from_millis(200));
    assert_eq!(h.seen[0].events, ["evt_0", "evt_1", "evt_2"]);
    let by_tag = h.settled_once();
    for tag in 0..3 {
        assert_eq!(
            by_tag[&tag],
            Settled::Delivered {
                status: StatusCode::OK,
                attempts: 1
            }
        );
    }
    assert!(h.machine.is_idle());
    Ok(())
}

#[test]
fn a_full_batch_goes_out_at_once() -> Result<(), BoxError> {
    let m = machine(batching(1_000, 2)?, fixed(&[5])?)?.build()?;
    let mut h = Harness::new(m, Duration::from_millis(10), |_| Answer::Status(204));
    h.push(event(0)?);
    h.push(event(1)?);
    assert_eq!(h.seen.len(), 1, "max_events reached: sent without waiting");
    assert_eq!(h.seen[0].at, h.clock.ms(0));
    h.run(Duration::from_secs(5));
    h.settled_once();
    Ok(())
}

#[test]
fn a_503_is_retried_after_5_s_with_the_same_batch_id() -> Result<(), BoxError> {
    let m = machine(batching(0, 10)?, fixed(&[5, 10])?)?.build()?;
    let mut h = Harness::new(m, Duration::from_millis(20), |s| {
        Answer::Status(if s.attempt < 3 { 503 } else { 200 })
    });
    h.push(event(0)?);
    h.run(Duration::from_secs(60));
    let at: Vec<Duration> = h.seen.iter().map(|s| s.at - h.clock.ms(0)).collect();
    // Sent at 0; the 503 arrives at 20 ms; retry 5 s later; then 10 s after the second answer.
    assert_eq!(
        at,
        [
            Duration::ZERO,
            Duration::from_millis(5_020),
            Duration::from_millis(15_040)
        ]
    );
    assert!(h.seen.iter().all(|s| s.batch_id == h.seen[0].batch_id));
    assert_eq!(
        h.seen.iter().map(|s| s.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let retries: Vec<(u32, AttemptError)> = h
        .outputs
        .iter()
        .filter_map(|(_, e)| match e {
            DeliveryEvent::RetryScheduled {
                attempts, error, ..
            } => Some((*attempts, error.clone())),
            _ => None,
        })
        .collect();
    let unavailable = AttemptError::Status(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retries, [(1, unavailable.clone()), (2, unavailable)]);
    assert_eq!(
        h.settled_once()[&0],
        Settled::Delivered {
            status: StatusCode::OK,
            attempts: 3
        }
    );
    // Failing after the first 503, recovered at the success.
    let health = h.health();
    assert!(
        matches!(health[0], HealthChange::Failing { .. }),
        "{health:?}"
    );
    assert!(
        matches!(health[1], HealthChange::Recovered { .. }),
        "{health:?}"
    );
    Ok(())
}

#[test]
fn retry_after_on_a_429_is_honoured() -> Result<(), BoxError> {
    let m = machine(batching(0, 10)?, fixed(&[1, 1])?)?.build()?;
    let mut h = Harness::new(m, Duration::ZERO, |s| {
        if s.attempt == 1 {
            Answer::StatusWith(429, "retry-after", "30")
        } else {
            Answer::Status(200)
        }
    });
    h.push(event(0)?);
    h.run(Duration::from_secs(120));
    assert_eq!(h.seen.len(), 2);
    assert_eq!(h.seen[1].at - h.seen[0].at, Duration::from_secs(30));
    Ok(())
}

#[test]
fn gives_up_after_max_attempts_with_the_last_error() -> Result<(), BoxError> {
    let m = machine(batching(0, 10)?, fixed(&[1, 2])?)?.build()?;
    let mut h = Harness::new(m, Duration::from_millis(5), |s| match s.attempt {
        1 => Answer::Reset,
        2 => Answer::Status(502),
        _ => Answer::Timeout,
    });
    h.push(event(0)?);
    h.push(event(1)?);
    h.run(Duration::from_secs(60));
    assert_eq!(h.seen.len(), 6, "two batches of one, three attempts each");
    let by_tag = h.settled_once();
    let exhausted = Settled::GaveUp(FailureReason::RetriesExhausted {
        attempts: 3,
        last: AttemptError::Timeout,
    });
    assert_eq!(by_tag[&0], exhausted);
    assert_eq!(by_tag[&1], exhausted);
    assert!(h.machine.is_idle());
    Ok(())
}

#[test]
fn permanent_and_abort_answers_give_up_at_once() -> Result<(), BoxError> {
    let m = machine(batching(0, 1)?, fixed(&[1, 1])?)?.build()?;
    let mut h = Harness::new(m, Duration::ZERO, |s| {
        if s.events[0] == "evt_0" {
            Answer::Status(400)
        } else {
            Answer::StatusWith(500, "webhook-delivery", "abort-message")
        }
    });
    h.push(event(0)?);
    h.push(event(1)?);
    h.run(Duration::from_secs(10));
    assert_eq!(h.seen.len(), 2, "no retry");
    let by_tag = h.settled_once();
    assert_eq!(
        by_tag[&0],
        Settled::GaveUp(FailureReason::Rejected {
            status: StatusCode::BAD_REQUEST
        })
    );
    assert_eq!(
        by_tag[&1],
        Settled::GaveUp(FailureReason::Aborted {
            status: StatusCode::INTERNAL_SERVER_ERROR
        })
    );
    Ok(())
}

#[test]
fn a_410_disables_the_endpoint_and_enable_reopens_it() -> Result<(), BoxError> {
    let m = machine(batching(0, 1)?, fixed(&[1])?)?
        .concurrency(Concurrency::Fixed(1))
        .build()?;
    let mut gone = true;
    let mut h = Harness::new(m, Duration::from_millis(10), move |s| {
        if s.events[0] == "evt_3" {
            gone = false;
        }
        Answer::Status(if gone { 410 } else { 200 })
    });
    h.push(event(0)?);
    h.push(event(1)?); // waits behind the in-flight limit
    h.run(Duration::from_secs(5));
    assert!(h.machine.is_disabled());
    assert_eq!(h.seen.len(), 1, "nothing sent after the 410");
    assert_eq!(
        h.health().last(),
        Some(&HealthChange::Disabled {
            reason: DisableReason::Receiver {
                status: StatusCode::GONE
            }
        })
    );
    // While disabled a push settles at once.
    h.push(event(2)?);
    let by_tag = h.settled_once();
    for tag in 0..3 {
        assert_eq!(
            by_tag[&tag],
            Settled::GaveUp(FailureReason::EndpointDisabled),
            "tag {tag}"
        );
    }
    // The Disabled change comes before the settlements of what was held.
    let order: Vec<&str> = h
        .outputs
        .iter()
        .filter_map(|(_, e)| match e {
            DeliveryEvent::Health(HealthChange::Disabled { .. }) => Some("disabled"),
            DeliveryEvent::Settled(_) => Some("settled"),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["settled", "disabled", "settled", "settled"]);

    let now = h.clock.now();
    h.machine.enable(now);
    assert!(!h.machine.is_disabled());
    h.push(event(3)?);
    h.run(Duration::from_secs(10));
    assert_eq!(
        h.settled_once()[&3],
        Settled::Delivered {
            status: StatusCode::OK,
            attempts: 1
        }
    );
    Ok(())
}

#[test]
fn the_webhook_delivery_disable_header_disables_too() -> Result<(), BoxError> {
    let m = machine(batching(0, 1)?, fixed(&[1])?)?.build()?;
    let mut h = Harness::new(m, Duration::ZERO, |_| {
        Answer::StatusWith(503, "webhook-delivery", "disable")
    });
    h.push(event(0)?);
    h.run(Duration::from_secs(5));
    assert!(h.machine.is_disabled());
    assert_eq!(
        h.settled_once()[&0],
        Settled::GaveUp(FailureReason::EndpointDisabled)
    );
    Ok(())
}

#[test]
fn health_turns_failed_after_its_window_and_disables_after_the_next() -> Result<(), BoxError> {
    let health = HealthConfig::default()
        .failed_after(Duration::from_secs(60))
        .disable_after(Some(Duration::from_secs(120)));
    let every_10_s = Duration::from_secs(10);
    let retry = RetryPolicy::builder()
        .exponential(every_10_s, 1.0, every_10_s, false)
        .max_attempts(1_000)
        .build()?;
    let m = machine(batching(0, 10)?, retry)?.health(health).build()?;
    let mut h = Harness::new(m, Duration::ZERO, |_| Answer::Status(500));
    h.push(event(0)?);
    h.run(Duration::from_secs(600));
    let changes = h.health();
    assert!(
        matches!(
            changes.as_slice(),
            [
                HealthChange::Failing { .. },
                HealthChange::Failed { .. },
                HealthChange::Disabled {
                    reason: DisableReason::HealthWindow
                }
            ]
        ),
        "{changes:?}"
    );
    let failed_at = h
        .outputs
        .iter()
        .find_map(|(at, e)| match e {
            DeliveryEvent::Health(HealthChange::Failed { since }) => Some(*at - *since),
            _ => None,
        })
        .ok_or("failed")?;
    assert_eq!(failed_at, Duration::from_secs(60));
    assert_eq!(
        h.settled_once()[&0],
        Settled::GaveUp(FailureReason::EndpointDisabled)
    );
    Ok(())
}

#[test]
fn an_open_breaker_sends_nothing_until_its_cool_down_ends() -> Result<(), BoxError> {
    let breaker = BreakerConfig::new(Duration::from_secs(60), 4, 50, Duration::from_secs(30), 1)?;
    let retry = RetryPolicy::builder()
        .fixed(vec![Duration::ZERO, Duration::from_secs(1)], 0)
        .max_attempts(100)
        .build()?;
    let m = machine(batching(0, 1)?, retry)?
        .breaker(Some(breaker))
        .concurrency(Concurrency::Fixed(8))
        .build()?;
    let mut h = Harness::new(m, Duration::from_millis(10), |_| Answer::Status(503));
    for i in 0..4 {
        h.push(event(i)?);
    }
    h.run(Duration::from_secs(20));
    // Four failures open the breaker: nothing more is sent during the 30 s cool-down.
    let first_four: Vec<Instant> = h.seen.iter().map(|s| s.at).collect();
    assert_eq!(first_four.len(), 4, "{:?}", h.seen);
    h.run(Duration::from_secs(31));
    assert_eq!(h.seen.len(), 5, "one half-open probe after the cool-down");
    assert!(h.seen[4].at >= h.clock.ms(30_010));
    Ok(())
}

#[test]
fn the_in_flight_limit_and_the_rate_limit_hold() -> Result<(), BoxError> {
    let m = machine(batching(0, 1)?, fixed(&[1])?)?
        .concurrency(Concurrency::Fixed(2))
        .rate_limit(Some(
            RateLimit::new(10, Duration::from_secs(1)).with_burst(1),
        ))
        .build()?;
    let mut h = Harness::new(m, Duration::from_millis(500), |_| Answer::Status(200));
    for i in 0..6 {
        h.push(event(i)?);
    }
    h.run(Duration::from_secs(10));
    assert!(h.max_in_flight <= 2, "max in flight {}", h.max_in_flight);
    for pair in h.seen.windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_millis(100));
    }
    assert_eq!(h.seen.len(), 6);
    h.settled_once();
    Ok(())
}

#[test]
fn ordered_keys_are_delivered_in_order_one_batch_at_a_time() -> Result<(), BoxError> {
    let batcher = BatcherConfig::builder()
        .encoding(Encoding::JsonArray)
        .linger(Duration::ZERO)
        .max_events(1)
        .partition_by_key(true)
        .ordered(true)
        .build()?;
    let m = machine(batcher, fixed(&[1, 1, 1])?)?
        .concurrency(Concurrency::Fixed(8))
        .build()?;
    // Every first attempt of a batch fails: order must still hold per key.
    let mut h = Harness::new(m, Duration::from_millis(50), |s| {
        Answer::Status(if s.attempt == 1 { 503 } else { 200 })
    });
    for i in 0..9 {
        let key = ["a", "b", "c"][i as usize % 3];
        let event = Event::builder(format!("evt_{i}"), "policy")
            .partition_key(key)
            .json_bytes(format!("{{\"n\":{i}}}"))?;
        h.push(event);
    }
    h.run(Duration::from_secs(60));
    h.settled_once();
    for key in ["a", "b", "c"] {
        let delivered: Vec<&str> = h
            .seen
            .iter()
            .filter(|s| s.keys[0].as_deref() == Some(key) && s.attempt == 2)
            .map(|s| s.events[0].as_str())
            .collect();
        let mut sorted = delivered.clone();
        sorted.sort_by_key(|id| id[4..].parse::<u32>().unwrap_or(0));
        assert_eq!(delivered, sorted, "key {key}");
        assert_eq!(delivered.len(), 3);
    }
    // Keys interleave: more than one request in flight at once.
    assert!(h.max_in_flight > 1);
    Ok(())
}

#[test]
fn shutdown_sends_what_is_buffered_then_abandons_at_the_deadline() -> Result<(), BoxError> {
    let m = machine(batching(60_000, 100)?, fixed(&[100])?)?
        .concurrency(Concurrency::Fixed(1))
        .build()?;
    // The first batch fails and waits 100 s for a retry; the second hangs for 10 s.
    let mut h = Harness::new(m, Duration::from_secs(10), |s| {
        Answer::Status(if s.events[0] == "evt_0" { 503 } else { 200 })
    });
    h.push(event(0)?);
    let now = h.clock.now();
    h.machine
        .begin_shutdown(Some(now + Duration::from_secs(15)));
    h.machine.handle_timeout(now);
    h.drain();
    assert_eq!(h.seen.len(), 1, "the linger is cut short by shutdown");
    // While the first is in flight, two more: the in-flight limit (1) holds them back, in
    // one batch.
    h.clock.set(h.clock.ms(5_000));
    h.push(event(1)?);
    h.push(event(2)?);
    // At 10 s the 503 schedules a retry at 110 s and the second batch goes out (its answer
    // due at 20 s); the deadline at 15 s abandons all three.
    h.run(Duration::from_secs(200));
    assert!(h.machine.is_abandoned());
    assert_eq!(h.machine.poll_timeout(), None);
    let by_tag = h.settled_once();
    assert_eq!(
        by_tag[&0],
        Settled::Abandoned(UndeliveredStage::RetryPending {
            last: AttemptError::Status(StatusCode::SERVICE_UNAVAILABLE)
        })
    );
    assert_eq!(by_tag[&1], Settled::Abandoned(UndeliveredStage::InFlight));
    assert_eq!(by_tag[&2], Settled::Abandoned(UndeliveredStage::InFlight));
    assert_eq!(h.seen[1].events, ["evt_1", "evt_2"]);
    // Abandoned at the deadline, not later.
    let abandoned_at = h
        .settled()
        .iter()
        .find(|(_, _, o)| matches!(o, Settled::Abandoned(_)))
        .map(|(at, _, _)| *at)
        .ok_or("abandoned")?;
    assert_eq!(abandoned_at, h.clock.ms(15_000));
    Ok(())
}

#[test]
fn shutdown_without_retries_due_before_the_deadline_ends_at_once() -> Result<(), BoxError> {
    let m = machine(batching(0, 100)?, fixed(&[3_600])?)?.build()?;
    let mut h = Harness::new(m, Duration::from_millis(10), |_| Answer::Status(503));
    h.push(event(0)?);
    h.run(Duration::from_secs(1));
    let now = h.clock.now();
    h.machine
        .begin_shutdown(Some(now + Duration::from_secs(60)));
    h.machine.handle_timeout(now);
    h.drain();
    assert!(
        h.machine.is_abandoned(),
        "the only retry is due after the deadline"
    );
    assert!(matches!(
        h.settled_once()[&0],
        Settled::Abandoned(UndeliveredStage::RetryPending { .. })
    ));
    Ok(())
}

#[test]
fn an_oversize_event_settles_at_once_and_a_full_machine_hands_events_back() -> Result<(), BoxError>
{
    let batcher = BatcherConfig::builder()
        .encoding(Encoding::JsonArray)
        .linger(Duration::ZERO)
        .max_events(1)
        .max_bytes(64)
        .buffer_limits(2, 1 << 20)
        .build()?;
    let m = machine(batcher, fixed(&[1])?)?
        .concurrency(Concurrency::Fixed(1))
        .build()?;
    let mut h = Harness::new(m, Duration::from_secs(1), |_| Answer::Status(200));
    let big = Event::builder("big", "policy").json_bytes(format!("\"{}\"", "x".repeat(100)))?;
    h.push(big);
    assert_eq!(
        h.settled()[0].2,
        Settled::GaveUp(FailureReason::Oversize),
        "settled on push"
    );
    h.push(event(1)?); // in flight
    h.push(event(2)?); // buffered
    let now = h.clock.now();
    let full = h.machine.push(event(3)?, 99, now);
    let Err(full) = full else {
        return Err("a full machine refuses".into());
    };
    assert_eq!((full.event.id(), full.tag), ("evt_3", 99));
    h.run(Duration::from_secs(5));
    assert!(h.machine.push(event(3)?, 3, h.clock.now()).is_ok());
    h.next_tag = 4;
    h.run(Duration::from_secs(5));
    h.settled_once();
    Ok(())
}

#[test]
fn a_request_that_cannot_be_built_is_given_up_not_sent() -> Result<(), BoxError> {
    // A GET endpoint cannot carry a body.
    let endpoint = Endpoint::builder("https://hooks.example.com/in")
        .method(http::Method::GET)
        .build()?;
    let m = Delivery::builder(endpoint)
        .batcher(batching(0, 10)?)
        .build::<u64>()?;
    let mut h = Harness::new(m, Duration::ZERO, |_| Answer::Status(200));
    h.push(event(0)?);
    h.run(Duration::from_secs(1));
    assert!(h.seen.is_empty());
    assert!(matches!(
        h.settled_once()[&0],
        Settled::GaveUp(FailureReason::Request(_))
    ));
    Ok(())
}

#[test]
fn a_batcher_encoding_other_than_the_endpoints_is_refused() -> Result<(), BoxError> {
    let ndjson = BatcherConfig::builder()
        .encoding(Encoding::Ndjson)
        .build()?;
    let err = Delivery::builder(endpoint()?)
        .batcher(ndjson)
        .build::<u64>()
        .err()
        .ok_or("refused")?;
    assert!(err.to_string().contains("Ndjson"), "{err}");
    Ok(())
}

/// One scripted answer, chosen by a property test.
fn endpoint_at(url: &str) -> Result<Endpoint, BoxError> {
    Ok(Endpoint::builder(url)
        .encoding(Encoding::JsonArray)
        .build()?)
}

#[test]
fn an_update_applies_to_batches_formed_after_it() -> Result<(), BoxError> {
    let m = Delivery::builder(endpoint_at("https://old.example.com/in")?)
        .batcher(batching(200, 100)?)
        .retry(fixed(&[5, 5])?)
        .jitter_seed(1)
        .build()?;
    // The first request fails once: its retry comes after the update.
    let mut h = Harness::new(m, Duration::from_millis(10), |s: &Seen| {
        if s.events == ["evt_0"] && s.attempt == 1 {
            Answer::Status(503)
        } else {
            Answer::Status(200)
        }
    });
    h.push(event(0)?);
    h.run(Duration::from_millis(300));
    // Buffered (not yet a batch) when the update comes: sealed under the old settings.
    h.push(event(1)?);
    h.push(event(2)?);
    let now = h.clock.now();
    let new = Delivery::builder(endpoint_at("https://new.example.com/in")?)
        .batcher(batching(50, 100)?)
        .retry(fixed(&[1])?)
        .run_id(2);
    h.machine.update(new, now)?;
    h.drain();
    h.push(event(3)?);
    h.run(Duration::from_secs(20));
    let sent: Vec<(Vec<String>, &str, u32)> = h
        .seen
        .iter()
        .map(|s| (s.events.clone(), s.uri.as_str(), s.attempt))
        .collect();
    let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        sent,
        [
            (ids(&["evt_0"]), "https://old.example.com/in", 1),
            (ids(&["evt_1", "evt_2"]), "https://old.example.com/in", 1),
            (ids(&["evt_3"]), "https://new.example.com/in", 1),
            // The retry of a batch formed before the update keeps its URL.
            (ids(&["evt_0"]), "https://old.example.com/in", 2),
        ]
    );
    // Batch ids never repeat across the update (a new run id).
    let mut batch_ids: Vec<&str> = h
        .seen
        .iter()
        .filter(|s| s.attempt == 1)
        .map(|s| s.batch_id.as_str())
        .collect();
    batch_ids.sort_unstable();
    batch_ids.dedup();
    assert_eq!(batch_ids.len(), 3);
    let outcomes = h.settled_once();
    assert!(
        outcomes
            .values()
            .all(|o| matches!(o, Settled::Delivered { .. }))
    );
    // An invalid update is refused and changes nothing.
    let bad = Delivery::builder(endpoint_at("https://x.example.com/in")?)
        .rate_limit(Some(RateLimit::new(0, Duration::from_secs(1))));
    assert!(h.machine.update(bad, now).is_err());
    assert_eq!(h.machine.endpoint().url(), "https://new.example.com/in");
    Ok(())
}

#[test]
fn a_paused_machine_sends_nothing_retries_wait_and_resume_sends_it_all() -> Result<(), BoxError> {
    let m = machine(batching(10, 100)?, fixed(&[5])?)?.build()?;
    let mut h = Harness::new(m, Duration::from_millis(10), |s: &Seen| {
        if s.attempt == 1 && s.events == ["evt_0"] {
            Answer::Status(503)
        } else {
            Answer::Status(200)
        }
    });
    h.push(event(0)?);
    h.run(Duration::from_millis(100));
    assert_eq!(h.machine.retrying(), 1);
    h.machine.set_paused(true);
    assert!(h.machine.is_paused());
    h.push(event(1)?);
    // Past the retry's time and the linger: nothing is sent, and the harness is not woken
    // in a loop (no deadline in the past).
    h.run(Duration::from_secs(60));
    assert_eq!(h.seen.len(), 1);
    assert!(h.machine.poll_timeout().is_none_or(|t| t > h.clock.now()));
    h.machine.set_paused(false);
    h.run(Duration::from_secs(60));
    assert_eq!(h.seen.len(), 3);
    assert!(
        h.settled_once()
            .values()
            .all(|o| matches!(o, Settled::Delivered { .. }))
    );
    // Shutdown abandons what a paused machine holds at once.
    h.machine.set_paused(true);
    h.push(event(2)?);
    h.machine.begin_shutdown(None);
    let now = h.clock.now();
    h.machine.handle_timeout(now);
    h.drain();
    assert!(h.machine.is_abandoned());
    assert!(matches!(
        h.settled_once().get(&2),
        Some(Settled::Abandoned(UndeliveredStage::NotSent))
    ));
    Ok(())
}

#[test]
fn retire_gives_up_what_is_held_and_lets_the_attempt_in_flight_finish() -> Result<(), BoxError> {
    for answer in [200, 503] {
        let m = machine(batching(0, 1)?, fixed(&[5])?)?
            .concurrency(Concurrency::Fixed(1))
            .build()?;
        let mut h = Harness::new(m, Duration::from_millis(100), move |_| {
            Answer::Status(answer)
        });
        for i in 0..3 {
            h.push(event(i)?);
        }
        assert_eq!(h.machine.in_flight(), 1);
        let now = h.clock.now();
        h.machine.retire(now);
        h.drain();
        // The two not sent are given up at once; the one in flight finishes.
        let removed = Settled::GaveUp(FailureReason::EndpointRemoved);
        let early: Vec<u64> = h.settled().into_iter().flat_map(|(_, t, _)| t).collect();
        assert_eq!(early, [1, 2]);
        h.run(Duration::from_secs(60));
        h.push(event(3)?);
        let outcomes = h.settled_once();
        let first = if answer == 200 {
            Settled::Delivered {
                status: StatusCode::OK,
                attempts: 1,
            }
        } else {
            removed.clone()
        };
        assert_eq!(outcomes[&0], first, "never retried after retire");
        assert!([1, 2, 3].iter().all(|t| outcomes[t] == removed));
        assert_eq!(h.seen.len(), 1);
        assert!(h.machine.is_idle());
    }
    Ok(())
}

#[test]
fn at_rest_means_a_fresh_machine_would_behave_the_same() -> Result<(), BoxError> {
    let m = machine(batching(0, 1)?, fixed(&[1])?)?
        .breaker(Some(BreakerConfig::default()))
        .rate_limit(Some(RateLimit::new(10, Duration::from_secs(1))))
        .build()?;
    let mut fail = true;
    let mut h = Harness::new(m, Duration::from_millis(10), move |_| {
        let a = if fail {
            Answer::Status(503)
        } else {
            Answer::Status(200)
        };
        fail = false;
        a
    });
    assert!(h.machine.is_at_rest(h.clock.now()));
    h.push(event(0)?);
    assert!(!h.machine.is_at_rest(h.clock.now()), "holds an event");
    h.run(Duration::from_millis(500));
    assert!(!h.machine.is_at_rest(h.clock.now()), "failing, a retry due");
    h.run(Duration::from_secs(10));
    // Recovered; the bucket refills within a tenth of a second.
    assert!(h.machine.is_idle());
    assert_eq!(h.machine.health(), webhook_core::HealthState::Healthy);
    assert!(
        !h.machine.is_at_rest(h.clock.now()),
        "a token was just taken"
    );
    h.clock.set(h.clock.now() + Duration::from_millis(100));
    assert!(h.machine.is_at_rest(h.clock.now()));
    h.machine.set_paused(true);
    assert!(
        !h.machine.is_at_rest(h.clock.now()),
        "paused is state to keep"
    );
    Ok(())
}

#[test]
fn a_second_shutdown_may_only_bring_the_deadline_forward() -> Result<(), BoxError> {
    let m = machine(batching(0, 1)?, fixed(&[100, 100, 100, 100])?)?.build()?;
    let mut h = Harness::new(m, Duration::from_millis(10), |_| Answer::Status(503));
    h.push(event(0)?);
    h.run(Duration::from_millis(100));
    let t0 = h.clock.now();
    h.machine.begin_shutdown(None);
    h.machine
        .begin_shutdown(Some(t0 + Duration::from_secs(300)));
    h.machine
        .begin_shutdown(Some(t0 + Duration::from_secs(500)));
    h.machine.begin_shutdown(None);
    // Attempts at 0, 100 and 200 s; the next would come after the 300 s deadline, so the batch
    // is abandoned then and there (with a 500 s deadline, 300 and 400 would be tried too).
    h.run(Duration::from_secs(1000));
    assert!(h.machine.is_abandoned());
    assert_eq!(h.seen.len(), 3);
    let settled = h.settled();
    assert_eq!(settled.len(), 1);
    assert!(matches!(settled[0].2, Settled::Abandoned(_)));
    assert!(settled[0].0 < t0 + Duration::from_secs(300));
    Ok(())
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => Just(Answer::Status(200)),
        2 => Just(Answer::Status(503)),
        1 => Just(Answer::Status(400)),
        1 => Just(Answer::StatusWith(429, "retry-after", "2")),
        1 => Just(Answer::Reset),
        1 => Just(Answer::Timeout),
        1 => Just(Answer::StatusWith(500, "webhook-delivery", "abort-message")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Under random answers, pushes and a shutdown, every event ends delivered, given up or
    /// abandoned, exactly once, and the counts add up.
    #[test]
    fn every_event_settles_exactly_once(
        answers in proptest::collection::vec(answer(), 1..40),
        pushes in proptest::collection::vec((0u64..3_000, 1usize..6), 1..25),
        limit in 1usize..4,
        max_events in 1usize..5,
        deadline_s in 0u64..120,
        latency_ms in 0u64..3_000,
    ) {
        let retry = RetryPolicy::builder()
            .exponential(Duration::from_secs(1), 2.0, Duration::from_secs(30), true)
            .max_attempts(5)
            .min_wait_after_throttle(Duration::ZERO)
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let batcher = BatcherConfig::builder()
            .encoding(Encoding::JsonArray)
            .linger(Duration::from_millis(100))
            .max_events(max_events)
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let m = Delivery::builder(endpoint().map_err(|e| TestCaseError::fail(e.to_string()))?)
            .batcher(batcher)
            .retry(retry)
            .concurrency(Concurrency::Fixed(limit))
            .jitter_seed(deadline_s)
            .build::<u64>()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut n = 0usize;
        let mut h = Harness::new(m, Duration::from_millis(latency_ms), move |_| {
            n += 1;
            answers[n % answers.len()].clone()
        });
        let mut pushed = 0u64;
        for (gap_ms, count) in pushes {
            let next = h.clock.now() + Duration::from_millis(gap_ms);
            h.run(next - h.clock.ms(0));
            h.clock.set(next);
            for _ in 0..count {
                let now = h.clock.now();
                let tag = h.next_tag;
                let e = Event::builder(format!("evt_{tag}"), "policy")
                    .json_bytes(format!("{{\"n\":{tag}}}"))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                if h.machine.push(e, tag, now).is_ok() {
                    h.next_tag += 1;
                    pushed += 1;
                }
                h.drain();
            }
        }
        let now = h.clock.now();
        h.machine.begin_shutdown(Some(now + Duration::from_secs(deadline_s)));
        h.machine.handle_timeout(now);
        h.run(h.clock.elapsed() + Duration::from_secs(deadline_s + 60));
        prop_assert!(h.machine.is_idle() || h.machine.is_abandoned());
        let by_tag = h.settled_once();
        prop_assert_eq!(by_tag.len() as u64, pushed);
        let delivered = by_tag.values().filter(|o| matches!(o, Settled::Delivered { .. })).count();
        let gave_up = by_tag.values().filter(|o| matches!(o, Settled::GaveUp(_))).count();
        let abandoned = by_tag.values().filter(|o| matches!(o, Settled::Abandoned(_))).count();
        prop_assert_eq!(delivered + gave_up + abandoned, pushed as usize);
        prop_assert!(h.max_in_flight <= limit);
        // A delivered event's batch got a 2xx: the attempts recorded match the requests seen.
        for (tag, outcome) in &by_tag {
            if let Settled::Delivered { attempts, .. } = outcome {
                let id = format!("evt_{tag}");
                let tries = h.seen.iter().filter(|s| s.events.contains(&id)).count();
                prop_assert_eq!(tries, *attempts as usize);
            }
        }
    }
}

#[test]
fn a_batch_handed_over_leaves_without_a_settlement_and_releases_its_key() -> Result<(), BoxError> {
    let batcher = BatcherConfig::builder()
        .linger(Duration::ZERO)
        .max_events(1)
        .partition_by_key(true)
        .ordered(true)
        .build()?;
    let mut m = machine(batcher, fixed(&[60])?)?
        .concurrency(Concurrency::Fixed(8))
        .build::<u32>()?;
    let t0 = Instant::now();
    for i in 0..2u32 {
        let e = Event::builder(format!("evt_{i}"), "policy")
            .partition_key("a")
            .json_bytes(format!("{{\"n\":{i}}}"))?;
        m.push(e, i, t0).map_err(|_| "full")?;
    }
    m.handle_timeout(t0);
    let first = m.poll_transmit(t0, wall()).ok_or("the first batch")?;
    // Ordered: the second waits behind the first.
    assert!(m.poll_transmit(t0, wall()).is_none());
    let headers = HeaderMap::new();
    let busy = AttemptResult::Response {
        status: StatusCode::SERVICE_UNAVAILABLE,
        headers: &headers,
    };
    m.handle_response(first.attempt_id, busy, t0, wall());
    assert_eq!(m.retrying(), 1);
    // Unknown, or not waiting for a retry: nothing happens.
    assert!(
        m.hand_over(&webhook_core::BatchId::new("msg_unknown"))
            .is_none()
    );
    let (events, tags) = m.hand_over(&first.batch_id).ok_or("waiting")?;
    assert_eq!((events[0].id(), tags), ("evt_0", vec![0]));
    assert!(m.hand_over(&first.batch_id).is_none(), "handed over once");
    assert_eq!(m.retrying(), 0);
    // The key is free: the second batch goes.
    let second = m.poll_transmit(t0, wall()).ok_or("the second batch")?;
    assert_eq!(
        m.attempt_events(second.attempt_id).map(|e| e[0].id()),
        Some("evt_1")
    );
    let ok = AttemptResult::Response {
        status: StatusCode::OK,
        headers: &headers,
    };
    m.handle_response(second.attempt_id, ok, t0, wall());
    let settled: Vec<Vec<u32>> = std::iter::from_fn(|| m.poll_event())
        .filter_map(|e| match e {
            DeliveryEvent::Settled(s) => Some(s.tags),
            _ => None,
        })
        .collect();
    assert_eq!(settled, vec![vec![1]], "only the second settles");
    assert!(m.is_idle());
    // Brought back, it is sent again with its id and attempts counted on.
    m.restore(first.batch_id.clone(), events, vec![0], 1, t0, t0);
    let again = m.poll_transmit(t0, wall()).ok_or("restored")?;
    assert_eq!((again.batch_id, again.attempt), (first.batch_id, 2));
    Ok(())
}
