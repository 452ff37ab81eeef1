//! Routing decisions per second (issue 14): `RouteIndex::for_each_selected` over a batch of
//! 1,000 pre-built events whose fan-out is one endpoint, with
//!
//! * `one_endpoint`: one endpoint (every tenant) subscribed to the events' exact types;
//! * `10k_endpoints_exact`: 10,000 endpoints of 1,000 tenants, 10 per tenant, endpoint `m`
//!   subscribing to event set `m` of 3 exact types; each event's tenant and type select exactly
//!   one of them (the indexed path: a tenant lookup, then a type lookup);
//! * `10k_endpoints_wildcard`: the same with one wildcard pattern per endpoint (`policy.*`),
//!   which puts every endpoint of a tenant on the scan path (10 selectors checked per event);
//!   reported on its own, no goal.
//!
//! After criterion, the same three are timed alternately in 31 rounds in this process (the
//! machine is noisy) and the median ratios to `one_endpoint` are printed.
//!
//! `cargo bench -p webhook-benches --bench routing`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use webhook_core::{Event, EventSet, EventSets, RouteIndex, Selector, Subscription};

const TENANTS: usize = 1000;
const PER_TENANT: usize = 10;
const EVENTS: usize = 1000;

const CATEGORIES: [&str; PER_TENANT] = [
    "policy",
    "runtime",
    "vulnerability",
    "compliance",
    "audit",
    "login",
    "asset",
    "agent",
    "scan",
    "alert",
];

fn sets(wildcard: bool) -> EventSets {
    let mut sets = EventSets::new();
    for c in CATEGORIES {
        let types: Vec<String> = if wildcard {
            vec![format!("{c}.*")]
        } else {
            ["created", "updated", "resolved"]
                .iter()
                .map(|v| format!("{c}.{v}"))
                .collect()
        };
        sets.insert(EventSet::new(c, types)).expect("set");
    }
    sets
}

/// Event `i`: tenant `i * 7919 mod tenants` (spread over every tenant), type `{category i
/// mod 10}.created`.
fn make_events(tenants: usize) -> Vec<Event> {
    (0..EVENTS)
        .map(|i| {
            Event::builder(
                format!("evt_{i}"),
                format!("{}.created", CATEGORIES[i % 10]),
            )
            .tenant(format!("tenant-{}", i * 7919 % tenants))
            .json_bytes(&br#"{"kind":"bench"}"#[..])
            .expect("event")
        })
        .collect()
}

/// One endpoint of every tenant subscribed to every event set (all the events' types).
fn one_endpoint() -> RouteIndex<u32> {
    let sets = sets(false);
    let mut sub = Subscription::all_tenants();
    for c in CATEGORIES {
        sub = sub.event_set(c);
    }
    let selector = Arc::new(Selector::compile(&sub, &sets).expect("selector"));
    RouteIndex::build([(0u32, None, selector)])
}

/// `tenants` × 10 endpoints: endpoint `m` of tenant `t` subscribes to event set `m`.
fn many(tenants: usize, wildcard: bool) -> RouteIndex<u32> {
    let sets = sets(wildcard);
    let tenants: Vec<String> = (0..tenants).map(|t| format!("tenant-{t}")).collect();
    // One selector per endpoint, as the sender compiles them.
    let entries: Vec<(u32, usize, Arc<Selector>)> = (0..tenants.len() * PER_TENANT)
        .map(|k| {
            let (t, m) = (k / PER_TENANT, k % PER_TENANT);
            let sub = Subscription::tenant(&tenants[t]).event_set(CATEGORIES[m]);
            let selector = Selector::compile(&sub, &sets).expect("selector");
            (k as u32, t, Arc::new(selector))
        })
        .collect();
    RouteIndex::build(
        entries
            .into_iter()
            .map(|(k, t, s)| (k, Some(tenants[t].as_str()), s)),
    )
}

/// Routes the whole batch; the sum of the selected keys and their count.
fn route(index: &RouteIndex<u32>, events: &[Event]) -> (u64, usize) {
    let (mut sum, mut n) = (0u64, 0usize);
    for e in events {
        index.for_each_selected(black_box(e), |k| {
            sum += u64::from(k);
            n += 1;
        });
    }
    (sum, n)
}

fn bench(c: &mut Criterion) {
    let events = make_events(TENANTS);
    let cases = [
        ("one_endpoint", one_endpoint()),
        ("10k_endpoints_exact", many(TENANTS, false)),
        ("10k_endpoints_wildcard", many(TENANTS, true)),
    ];
    for (name, index) in &cases {
        // Fan-out one for every event.
        assert_eq!(route(index, &events).1, EVENTS, "{name}");
    }
    // The right endpoint: tenant t's endpoint m has key t * 10 + m.
    for (i, e) in events.iter().enumerate() {
        let want = (i * 7919 % TENANTS * PER_TENANT + i % 10) as u32;
        assert_eq!(cases[1].1.selected(e), [want]);
        assert_eq!(cases[2].1.selected(e), [want]);
    }

    let mut g = c.benchmark_group("routing_fanout_1");
    g.throughput(Throughput::Elements(EVENTS as u64));
    for (name, index) in &cases {
        g.bench_function(*name, |b| b.iter(|| route(index, black_box(&events))));
    }
    g.finish();

    // Alternating rounds: each case routes its batch 200 times per round. Two diagnostics
    // join them: the 10,000-endpoint index with every event of one tenant (its bucket stays
    // in cache: the cost of the lookups alone), and 100 endpoints of 10 tenants (a small
    // index, the events over its 10 tenants).
    let hot: Vec<Event> = make_events(1);
    let small_events = make_events(10);
    let runs: Vec<(&str, &RouteIndex<u32>, &[Event])> = cases
        .iter()
        .map(|(n, i)| (*n, i, events.as_slice()))
        .collect();
    let small = many(10, false);
    let runs = [
        runs,
        vec![
            ("diag_10k_exact_events_of_one_tenant", &cases[1].1, &hot[..]),
            ("diag_100_endpoints_10_tenants", &small, &small_events[..]),
        ],
    ]
    .concat();
    for (name, index, events) in &runs {
        assert_eq!(route(index, events).1, EVENTS, "{name}");
    }
    const ROUNDS: usize = 31;
    const REPEAT: usize = 200;
    let mut times = vec![Vec::with_capacity(ROUNDS); runs.len()];
    for _ in 0..ROUNDS {
        for (i, (_, index, events)) in runs.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..REPEAT {
                black_box(route(index, black_box(events)));
            }
            times[i].push(start.elapsed());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let per_sec = |d: Duration| (EVENTS * REPEAT) as f64 / d.as_secs_f64();
    for (i, (name, _, _)) in runs.iter().enumerate() {
        let mut rate: Vec<f64> = times[i].iter().map(|&d| per_sec(d)).collect();
        let mut ratio: Vec<f64> = times[0]
            .iter()
            .zip(&times[i])
            .map(|(&a, &b)| a.as_secs_f64() / b.as_secs_f64())
            .collect();
        eprintln!(
            "alternating, {ROUNDS} rounds: {name}: median {:.1} M decisions/s, median ratio to \
             one_endpoint {:.3}",
            median(&mut rate) / 1e6,
            median(&mut ratio)
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
