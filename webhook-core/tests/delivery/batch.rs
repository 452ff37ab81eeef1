//! Batcher in virtual time: linger, size bounds, oversize, backpressure, grouping, ordering,
//! shutdown.

use std::time::Duration;

use webhook_core::{
    BatchOutcome, Batcher, BatcherConfig, CompleteError, Encoding, Event, FlushReason, PushError,
};

use crate::vtime::{Clock, drain, step};

/// An event whose body is exactly `len` bytes (a JSON string), with an optional key.
pub(crate) fn event(id: &str, key: Option<&str>, len: usize) -> Event {
    assert!(len >= 2);
    let body = format!("\"{}\"", "x".repeat(len - 2));
    let b = Event::builder(id, "policy.runtime");
    let b = match key {
        Some(k) => b.partition_key(k),
        None => b,
    };
    b.json_bytes(body).expect("valid JSON")
}

fn ids(batch: &webhook_core::Batch) -> Vec<&str> {
    batch.events().iter().map(Event::id).collect()
}

#[test]
fn flushes_exactly_at_linger() {
    let cfg = BatcherConfig::builder()
        .linger(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut b = Batcher::new(cfg);
    let mut clock = Clock::new();
    b.push(event("a", None, 10), clock.now()).unwrap();
    clock.set(clock.ms(300));
    b.push(event("b", None, 10), clock.now()).unwrap();
    // The linger counts from the first event, not the last.
    assert_eq!(b.poll_timeout(), Some(clock.ms(1000)));
    clock.set(clock.ms(999));
    assert!(
        drain(&mut b, &clock).is_empty(),
        "nothing before the linger"
    );
    let batches = step(&mut b, &mut clock).unwrap();
    assert_eq!(clock.elapsed(), Duration::from_secs(1));
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].reason(), FlushReason::Linger);
    assert_eq!(ids(&batches[0]), ["a", "b"]);
    assert_eq!(batches[0].sealed_at(), clock.ms(1000));
    assert_eq!(b.poll_timeout(), None);
    assert!(b.is_empty());
}

#[test]
fn late_push_after_deadline_does_not_join_the_expired_batch() {
    let mut b = Batcher::new(
        BatcherConfig::builder()
            .linger(Duration::from_secs(1))
            .build()
            .unwrap(),
    );
    let clock = Clock::new();
    b.push(event("a", None, 4), clock.now()).unwrap();
    // The driver was late: it pushes at 1.5 s before calling handle_timeout.
    b.push(event("b", None, 4), clock.ms(1500)).unwrap();
    let first = b.poll_batch(clock.ms(1500)).unwrap();
    assert_eq!(ids(&first), ["a"]);
    assert_eq!(b.poll_timeout(), Some(clock.ms(2500)));
}

#[test]
fn flushes_at_max_events_immediately() {
    let cfg = BatcherConfig::builder().max_events(3).build().unwrap();
    let mut b = Batcher::new(cfg);
    let clock = Clock::new();
    for id in ["1", "2", "3", "4"] {
        b.push(event(id, None, 8), clock.now()).unwrap();
    }
    let batches = drain(&mut b, &clock);
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].reason(), FlushReason::MaxEvents);
    assert_eq!(ids(&batches[0]), ["1", "2", "3"]);
    // "4" waits for its own linger.
    assert_eq!(b.poll_timeout(), Some(clock.ms(1000)));
    assert_eq!(b.buffered_events(), 1);
}

#[test]
fn flushes_at_max_bytes_after_encoding() {
    // JSON array of n 10-byte events: 10n + (n - 1) + 2 bytes. Three events: 34 bytes.
    let cfg = BatcherConfig::builder().max_bytes(34).build().unwrap();
    let mut b = Batcher::new(cfg);
    let clock = Clock::new();
    for id in ["1", "2", "3"] {
        b.push(event(id, None, 10), clock.now()).unwrap();
    }
    let full = drain(&mut b, &clock);
    assert_eq!(full.len(), 1, "exactly full: sealed without waiting");
    assert_eq!(full[0].reason(), FlushReason::MaxBytes);
    assert_eq!(full[0].encoded_len(), 34);
    assert_eq!(full[0].encode().len(), 34);

    // With 40 bytes the 4th event (45 bytes total) starts a new batch.
    let cfg = BatcherConfig::builder().max_bytes(40).build().unwrap();
    let mut b = Batcher::new(cfg);
    for id in ["1", "2", "3", "4"] {
        b.push(event(id, None, 10), clock.now()).unwrap();
    }
    let out = drain(&mut b, &clock);
    assert_eq!(out.len(), 1);
    assert_eq!(ids(&out[0]), ["1", "2", "3"]);
    assert_eq!(out[0].reason(), FlushReason::MaxBytes);
    assert!(out[0].encode().len() <= 40);

    // NDJSON framing: n 10-byte events are 11n bytes.
    let cfg = BatcherConfig::builder()
        .encoding(Encoding::Ndjson)
        .max_bytes(33)
        .build()
        .unwrap();
    let mut b = Batcher::new(cfg);
    for id in ["1", "2", "3"] {
        b.push(event(id, None, 10), clock.now()).unwrap();
    }
    let out = drain(&mut b, &clock);
    assert_eq!(out[0].encode().len(), 33);
    assert_eq!(out[0].encoding().content_type(), "application/x-ndjson");
}

#[test]
fn oversize_event_is_a_clear_error_and_is_returned() {
    let cfg = BatcherConfig::builder().max_bytes(20).build().unwrap();
    let mut b = Batcher::new(cfg);
    let clock = Clock::new();
    // 19 bytes + brackets = 21 > 20.
    let err = b.push(event("big", None, 19), clock.now()).unwrap_err();
    assert!(!err.is_full());
    assert!(err.to_string().contains("21 bytes"), "{err}");
    match err {
        PushError::Oversize {
            event,
            encoded_len,
            max_bytes,
        } => {
            assert_eq!((event.id(), encoded_len, max_bytes), ("big", 21, 20));
            assert_eq!(event.len(), 19, "returned intact, not truncated");
        }
        other => panic!("unexpected {other:?}"),
    }
    // 18 bytes fit exactly.
    b.push(event("fits", None, 18), clock.now()).unwrap();
    assert_eq!(b.stats().oversize_events, 1);
    assert_eq!(b.stats().pushed_events, 1);
}

#[test]
fn backpressure_refuses_and_returns_the_event() {
    let cfg = BatcherConfig::builder()
        .max_events(2)
        .buffer_limits(4, 1 << 20)
        .build()
        .unwrap();
    let mut b = Batcher::new(cfg);
    let clock = Clock::new();
    for i in 0..4 {
        b.push(event(&i.to_string(), None, 4), clock.now()).unwrap();
    }
    let err = b.push(event("5", None, 4), clock.now()).unwrap_err();
    assert!(err.is_full());
    let back = err.into_event();
    assert_eq!(back.id(), "5");
    assert_eq!(b.stats().full_rejections, 1);
    // Draining frees room.
    assert_eq!(drain(&mut b, &clock).len(), 2);
    b.push(back, clock.now()).unwrap();

    // Byte bound.
    let cfg = BatcherConfig::builder()
        .max_bytes(100)
        .buffer_limits(1000, 100)
        .build()
        .unwrap();
    let mut b = Batcher::new(cfg);
    b.push(event("a", None, 60), clock.now()).unwrap();
    assert!(
        b.push(event("b", None, 41), clock.now())
            .unwrap_err()
            .is_full()
    );
    b.push(event("c", None, 40), clock.now()).unwrap();
}

#[test]
fn grouping_like_alertmanager() {
    let cfg = BatcherConfig::builder()
        .grouping(Duration::from_secs(30), Duration::from_secs(300))
        .build()
        .unwrap();
    let mut b = Batcher::new(cfg);
    let mut clock = Clock::new();
    b.push(event("a1", Some("A"), 4), clock.now()).unwrap();
    clock.set(clock.ms(10_000));
    b.push(event("b1", Some("B"), 4), clock.now()).unwrap();
    clock.set(clock.ms(20_000));
    b.push(event("a2", Some("A"), 4), clock.now()).unwrap();

    let first = step(&mut b, &mut clock).unwrap();
    assert_eq!(clock.elapsed(), Duration::from_secs(30), "group_wait of A");
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].key(), ids(&first[0])),
        (Some("A"), vec!["a1", "a2"])
    );
    let second = step(&mut b, &mut clock).unwrap();
    assert_eq!(clock.elapsed(), Duration::from_secs(40), "group_wait of B");
    assert_eq!((second[0].key(), ids(&second[0])), (Some("B"), vec!["b1"]));

    // A new alert of A at 60 s waits for A's group_interval (30 s + 300 s).
    clock.set(clock.ms(60_000));
    b.push(event("a3", Some("A"), 4), clock.now()).unwrap();
    assert_eq!(b.poll_timeout(), Some(clock.ms(330_000)));
    let third = step(&mut b, &mut clock).unwrap();
    assert_eq!(clock.elapsed(), Duration::from_secs(330));
    assert_eq!(ids(&third[0]), ["a3"]);
}

#[test]
fn events_without_key_share_one_group() {
    let cfg = BatcherConfig::builder()
        .partition_by_key(true)
        .build()
        .unwrap();
    let mut b = Batcher::new(cfg);
    let mut clock = Clock::new();
    b.push(event("1", None, 4), clock.now()).unwrap();
    b.push(event("2", Some("k"), 4), clock.now()).unwrap();
    b.push(event("3", None, 4), clock.now()).unwrap();
    let out = step(&mut b, &mut clock).unwrap();
    let mut got: Vec<_> = out.iter().map(|x| (x.key(), ids(x))).collect();
    got.sort();
    assert_eq!(got, vec![(None, vec!["1", "3"]), (Some("k"), vec!["2"])]);
}

#[test]
fn per_key_ordering_holds_the_next_batch_until_complete() {
    let cfg = BatcherConfig::builder()
        .partition_by_key(true)
        .ordered(true)
        .max_events(1)
        .build()
        .unwrap();
    let mut b = Batcher::new(cfg);
    let clock = Clock::new();
    for (id, key) in [("a1", "A"), ("a2", "A"), ("b1", "B"), ("a3", "A")] {
        b.push(event(id, Some(key), 4), clock.now()).unwrap();
    }
    let out = drain(&mut b, &clock);
    assert_eq!(out.iter().flat_map(ids).collect::<Vec<_>>(), ["a1", "b1"]);
    assert_eq!(b.in_flight(), 2);
    assert_eq!(
        b.buffered_events(),
        2,
        "held batches still count against the bounds"
    );

    b.complete(out[0].id(), BatchOutcome::Delivered).unwrap();
    let next = drain(&mut b, &clock);
    assert_eq!(next.iter().flat_map(ids).collect::<Vec<_>>(), ["a2"]);
    assert_eq!(
        b.complete(out[0].id(), BatchOutcome::Delivered),
        Err(CompleteError::UnknownBatch(out[0].id().clone()))
    );
    // An abandoned batch also releases the next one.
    b.complete(next[0].id(), BatchOutcome::Abandoned).unwrap();
    let last = drain(&mut b, &clock);
    assert_eq!(last.iter().flat_map(ids).collect::<Vec<_>>(), ["a3"]);
    b.complete(last[0].id(), BatchOutcome::Delivered).unwrap();
    b.complete(out[1].id(), BatchOutcome::Delivered).unwrap();
    assert!(b.is_empty());
    assert_eq!(b.stats().delivered_batches, 3);
    assert_eq!(b.stats().abandoned_batches, 1);
}

#[test]
fn shutdown_flushes_everything() {
    let cfg = BatcherConfig::builder()
        .grouping(Duration::from_secs(30), Duration::from_secs(300))
        .build()
        .unwrap();
    let mut b = Batcher::new(cfg);
    let clock = Clock::new();
    for (id, key) in [("1", "A"), ("2", "B"), ("3", "C"), ("4", "A")] {
        b.push(event(id, Some(key), 4), clock.now()).unwrap();
    }
    b.flush_all(clock.now());
    let out = drain(&mut b, &clock);
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|x| x.reason() == FlushReason::Shutdown));
    assert_eq!(out.iter().map(|x| x.len()).sum::<usize>(), 4);
    assert!(b.is_empty());
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn batch_ids_are_deterministic() {
    let clock = Clock::new();
    let cfg = BatcherConfig::builder()
        .max_events(1)
        .batch_ids("msg_run7_", 100)
        .build()
        .unwrap();
    let mut b = Batcher::new(cfg.clone());
    for i in 0..3 {
        b.push(event(&i.to_string(), None, 4), clock.now()).unwrap();
    }
    let got: Vec<String> = drain(&mut b, &clock)
        .iter()
        .map(|x| x.id().to_string())
        .collect();
    assert_eq!(got, ["msg_run7_100", "msg_run7_101", "msg_run7_102"]);

    let mut b = Batcher::with_id_generator(cfg, |n| format!("msg_{n:04}"));
    b.push(event("x", None, 4), clock.now()).unwrap();
    assert_eq!(b.poll_batch(clock.now()).unwrap().id().as_str(), "msg_0100");
}

#[test]
fn single_encoding_sends_one_object_per_request() {
    let cfg = BatcherConfig::builder()
        .encoding(Encoding::Single)
        .build()
        .unwrap();
    let mut b = Batcher::new(cfg);
    let clock = Clock::new();
    b.push(event("1", None, 5), clock.now()).unwrap();
    b.push(event("2", None, 5), clock.now()).unwrap();
    let out = drain(&mut b, &clock);
    assert_eq!(out.len(), 2);
    assert_eq!(&out[0].encode()[..], b"\"xxx\"");
    assert_eq!(out[0].body().content_type, "application/json");
}

#[test]
fn size_seal_of_a_keyed_group_keeps_the_next_event() {
    // Regression found by the property test: sealing an idle keyed group used to forget the
    // group before the triggering event was added.
    let cfg = BatcherConfig::builder()
        .encoding(Encoding::Ndjson)
        .partition_by_key(true)
        .max_events(2)
        .max_bytes(64)
        .build()
        .unwrap();
    let mut b = Batcher::new(cfg);
    let clock = Clock::new();
    b.push(event("0", Some("k"), 14), clock.now()).unwrap();
    // 63 + newline = 64 bytes: does not fit with "0", and fills its own batch exactly.
    b.push(event("1", Some("k"), 63), clock.now()).unwrap();
    let out = drain(&mut b, &clock);
    let got: Vec<_> = out
        .iter()
        .map(|x| (ids(x), x.reason(), x.encode().len()))
        .collect();
    assert_eq!(
        got,
        [
            (vec!["0"], FlushReason::MaxBytes, 15),
            (vec!["1"], FlushReason::MaxBytes, 64)
        ]
    );
    assert!(b.is_empty());
}
