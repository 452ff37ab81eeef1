//! Property tests: the batcher never exceeds its limits and never loses or duplicates an event;
//! the router agrees with a reference glob matcher and never panics; templates never panic and
//! always escape.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;
use webhook_core::{
    BatchOutcome, Batcher, BatcherConfig, Encoding, MatchMode, PushError, Router, Template,
    TemplateContext,
};

use crate::batch::event;
use crate::vtime::Clock;

#[derive(Debug, Clone)]
enum Op {
    Push {
        len: usize,
        key: Option<u8>,
        dt_ms: u64,
    },
    Timeout,
    Poll,
    CompleteOldest,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (2usize..120, proptest::option::of(0u8..4), 0u64..400)
            .prop_map(|(len, key, dt_ms)| Op::Push { len, key, dt_ms }),
        1 => Just(Op::Timeout),
        2 => Just(Op::Poll),
        1 => Just(Op::CompleteOldest),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn batcher_respects_limits_and_loses_nothing(
        ops in proptest::collection::vec(op(), 1..200),
        max_events in 1usize..8,
        max_bytes in 40usize..400,
        ndjson in any::<bool>(),
        partition in any::<bool>(),
        ordered in any::<bool>(),
        interval_ms in 0u64..2000,
    ) {
        let encoding = if ndjson { Encoding::Ndjson } else { Encoding::JsonArray };
        let builder = if partition {
            BatcherConfig::builder().grouping(Duration::from_millis(500), Duration::from_millis(interval_ms))
        } else {
            BatcherConfig::builder().linger(Duration::from_millis(500))
        };
        let cfg = builder
            .encoding(encoding)
            .max_events(max_events)
            .max_bytes(max_bytes)
            .ordered(ordered)
            .buffer_limits(max_events.max(20), max_bytes.max(1500))
            .build()
            .unwrap();
        let mut b = Batcher::new(cfg.clone());
        let mut clock = Clock::new();
        let mut accepted: HashSet<String> = HashSet::new();
        let mut seen: Vec<String> = Vec::new();
        let mut outstanding = std::collections::VecDeque::new();
        let mut next_id = 0u32;
        let mut keys: HashMap<String, Option<String>> = HashMap::new();

        let check = |batch: webhook_core::Batch, seen: &mut Vec<String>| {
            assert!(!batch.is_empty());
            assert!(batch.len() <= max_events, "{} > {max_events}", batch.len());
            let body = batch.encode();
            assert_eq!(body.len(), batch.encoded_len());
            assert!(body.len() <= max_bytes, "{} > {max_bytes}", body.len());
            if encoding == Encoding::JsonArray {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v.as_array().map(Vec::len), Some(batch.len()));
            } else {
                assert_eq!(body.iter().filter(|&&c| c == b'\n').count(), batch.len());
            }
            seen.extend(batch.events().iter().map(|e| e.id().to_owned()));
            batch.id().clone()
        };

        for op in ops {
            match op {
                Op::Push { len, key, dt_ms } => {
                    clock.set(clock.now() + Duration::from_millis(dt_ms));
                    let id = next_id.to_string();
                    next_id += 1;
                    let key = key.map(|k| format!("k{k}"));
                    keys.insert(id.clone(), key.clone());
                    match b.push(event(&id, key.as_deref(), len), clock.now()) {
                        Ok(()) => { accepted.insert(id); }
                        Err(PushError::Oversize { event, encoded_len, .. }) => {
                            prop_assert_eq!(event.id(), id.as_str());
                            prop_assert!(encoded_len > max_bytes);
                        }
                        Err(PushError::Full { event, .. }) => prop_assert_eq!(event.id(), id.as_str()),
                        Err(other) => panic!("{other:?}"),
                    }
                }
                Op::Timeout => {
                    if let Some(t) = b.poll_timeout() {
                        clock.set(t.max(clock.now()));
                        b.handle_timeout(clock.now());
                    }
                }
                Op::Poll => {
                    while let Some(batch) = b.poll_batch(clock.now()) {
                        outstanding.push_back(check(batch, &mut seen));
                    }
                }
                Op::CompleteOldest => {
                    if let Some(id) = outstanding.pop_front() {
                        b.complete(&id, BatchOutcome::Delivered).unwrap();
                    }
                }
            }
        }
        // Shutdown: flush, drain, completing as we go so ordered groups release everything.
        b.flush_all(clock.now());
        loop {
            while let Some(batch) = b.poll_batch(clock.now()) {
                outstanding.push_back(check(batch, &mut seen));
            }
            match outstanding.pop_front() {
                Some(id) => b.complete(&id, BatchOutcome::Delivered).unwrap(),
                None => break,
            }
        }
        prop_assert!(b.is_empty());
        prop_assert_eq!(b.poll_timeout(), None);
        // Per key (or overall without partitioning), events come out in push order.
        let mut last: HashMap<Option<String>, u32> = HashMap::new();
        for id in &seen {
            let n: u32 = id.parse().unwrap();
            let group = if partition { keys.get(id).cloned().flatten() } else { None };
            if let Some(prev) = last.insert(group, n) {
                prop_assert!(prev < n, "order broken: {} after {}", n, prev);
            }
        }
        let unique: HashSet<String> = seen.iter().cloned().collect();
        prop_assert_eq!(unique.len(), seen.len(), "an event came out twice");
        prop_assert_eq!(unique, accepted, "an event was lost");
    }
}

/// Reference glob matcher (recursive, obviously correct, exponential but inputs are tiny).
fn glob(p: &[u8], s: &[u8], ci: bool) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..], ci)),
        Some((c, rest)) => s.split_first().is_some_and(|(d, srest)| {
            (if ci {
                c.eq_ignore_ascii_case(d)
            } else {
                c == d
            }) && glob(rest, srest, ci)
        }),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn router_agrees_with_reference(
        pattern in "[ab.*A]{1,8}",
        subject in "[ab.AB]{0,10}",
        ci in any::<bool>(),
    ) {
        let router = Router::builder().route(pattern.clone(), ()).case_insensitive(ci).build().unwrap();
        prop_assert_eq!(router.is_match(&subject), glob(pattern.as_bytes(), subject.as_bytes(), ci));
    }

    #[test]
    fn router_never_panics(patterns in proptest::collection::vec(".{0,12}", 0..6), subject in ".{0,24}") {
        if let Ok(router) = Router::builder()
            .mode(MatchMode::All)
            .case_insensitive(true)
            .fallback(usize::MAX)
            .build()
            .and_then(|_| {
                patterns.iter().enumerate().fold(Router::builder().mode(MatchMode::All), |b, (i, p)| b.route(p.clone(), i)).build()
            })
        {
            let _ = router.first(&subject);
            prop_assert!(router.matches(&subject).count() <= patterns.len());
        }
    }

    #[test]
    fn template_build_never_panics(src in ".{0,64}", ctx in 0u8..3) {
        let ctx = [TemplateContext::Url, TemplateContext::Header, TemplateContext::JsonBody][ctx as usize];
        if let Ok(t) = Template::build(ctx, &src) {
            let _ = t.render(&HashMap::<String, String>::new());
        }
    }

    #[test]
    fn template_values_are_always_contained(value in ".{0,40}") {
        let values: HashMap<String, String> = [("username".to_owned(), value.clone())].into();
        let json = Template::build(TemplateContext::JsonBody, r#"{"u":"%username%"}"#).unwrap();
        let out = json.render(&values).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        prop_assert_eq!(parsed["u"].as_str(), Some(value.as_str()));

        let url = Template::build(TemplateContext::Url, "https://h/p?u=%username%").unwrap();
        let out = url.render(&values).unwrap();
        let encoded = out.strip_prefix("https://h/p?u=").unwrap();
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        let decoded = percent_decode(encoded);
        prop_assert_eq!(decoded, value.as_bytes().to_vec());

        let header = Template::build(TemplateContext::Header, "x %username%").unwrap();
        match header.render(&values) {
            Ok(h) => {
                prop_assert!(!h.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0));
                prop_assert!(http::HeaderValue::from_bytes(h.as_bytes()).is_ok());
            }
            Err(_) => prop_assert!(value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)),
        }
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}
