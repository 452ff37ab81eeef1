//! End-to-end throughput with 10,000 endpoints of which 100 are active, against one endpoint,
//! the same total load (issue 14). Sender and receiver share one 2-worker tokio runtime on
//! loopback, as in `e2e.rs`: the same ~1 KiB typed Sysdig policy events, NDJSON batches signed
//! with Standard Webhooks, verified and parsed by the same typed receiver (one hyper server on
//! 127.0.0.1 for every endpoint).
//!
//! * `one_endpoint`: a `Sender` with one endpoint (every tenant, every type) gets N events.
//! * `100_active_of_10k`: a `Sender` with 10,000 endpoints of 1,000 tenants (10 per tenant,
//!   endpoint `m` subscribing to the exact type `policy.m`) gets the same N events, spread over
//!   the 100 endpoints of tenants 0 to 9: event `i` has tenant `i mod 10` and type
//!   `policy.(i / 10 mod 10)`, so each event selects exactly one endpoint and each of the 100
//!   gets N / 100.
//!
//! * `diag_100_endpoints_only` (diagnostic): a `Sender` with the 100 active endpoints only,
//!   which tells what spreading the load costs apart from what the 9,900 idle ones cost.
//!
//! Every endpoint has the same settings (those of `e2e.rs`'s throughput setting: 500-event
//! batches, 2 ms linger, 4 requests in flight, 50,000-event queue). Every receipt is awaited.
//! After criterion, the two are run alternately (`REGISTRY_E2E_ROUNDS`, default 9, rounds of N
//! events each) and the median ratio is printed.
//!
//! `cargo bench -p webhook-benches --bench registry_e2e`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use webhook_core::{BatcherConfig, Encoding, Endpoint, Event, RetryPolicy, Secret, SenderAuth};
use webhook_payloads::sysdig::SysdigEvent;
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{Concurrency, EndpointConfig, Sender};

#[path = "support/e2e.rs"]
mod support;

use support::{Tuning, WHSEC, policy_events, produce_with, start_receiver};

/// mimalloc, as in `e2e.rs` (`--features system-alloc`: glibc's).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Events per measured iteration.
const EVENTS: usize = 20_000;
const TENANTS: usize = 1000;
const PER_TENANT: usize = 10;
/// Tenants whose endpoints get events (10 × 10 = 100 active endpoints).
const ACTIVE_TENANTS: usize = 10;

/// One endpoint's configuration: `e2e.rs`'s SDK endpoint (NDJSON, signed, the throughput
/// setting) under `name`, optionally scoped to a tenant and one exact type.
fn endpoint(name: String, url: &str, t: Tuning, scope: Option<(usize, usize)>) -> EndpointConfig {
    let endpoint = Endpoint::builder(url)
        .encoding(Encoding::Ndjson)
        .auth(SenderAuth::signature(Secret::from_whsec(WHSEC).expect("secret")).expect("auth"))
        .build()
        .expect("endpoint");
    let retry = RetryPolicy::builder()
        .fixed(vec![Duration::ZERO, Duration::from_millis(50)], 0)
        .build()
        .expect("retry");
    let mut b = EndpointConfig::builder(name, endpoint)
        .batching(
            BatcherConfig::builder()
                .max_events(t.max_events)
                .max_bytes(t.max_bytes)
                .linger(t.linger)
                .buffer_limits(t.buffer_events, t.buffer_bytes)
                .build()
                .expect("batcher"),
        )
        .retry(retry)
        .concurrency(Concurrency::Fixed(t.in_flight))
        .queue(t.queue, t.overflow);
    if let Some((tenant, m)) = scope {
        b = b
            .tenant(format!("tenant-{tenant}"))
            .filter([format!("policy.{m}")]);
    }
    b.build().expect("endpoint config")
}

fn sender(endpoints: impl IntoIterator<Item = EndpointConfig>) -> Sender {
    let transport = TransportBuilder::new()
        .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse().expect("cidr")))
        .max_response_body(4096)
        .build()
        .expect("transport");
    let mut b = Sender::builder().transport(transport);
    for e in endpoints {
        b = b.endpoint(e);
    }
    b.build().expect("sender")
}

/// Event `i`: the `i`-th typed event serialized, tenant `i mod 10`, type `policy.(i / 10 mod
/// 10)` (the same events for both senders).
fn event(i: usize, typed: &[SysdigEvent<'static>]) -> Event {
    let e = &typed[i % typed.len()];
    let m = i / ACTIVE_TENANTS % PER_TENANT;
    Event::builder(format!("evt_{i}"), format!("policy.{m}"))
        .tenant(format!("tenant-{}", i % ACTIVE_TENANTS))
        .json(e)
        .expect("serialize")
}

/// Runs `iters` rounds of `EVENTS` through `sender`, checks the receiver got them all.
async fn timed(
    sender: &Sender,
    typed: &Arc<Vec<SysdigEvent<'static>>>,
    received: &AtomicU64,
    iters: u64,
) -> Duration {
    let before = received.load(Ordering::Relaxed);
    let start = Instant::now();
    for _ in 0..iters {
        produce_with(sender, typed, EVENTS, event).await;
    }
    let elapsed = start.elapsed();
    assert_eq!(
        received.load(Ordering::Relaxed) - before,
        iters * EVENTS as u64
    );
    elapsed
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let typed = Arc::new(policy_events());
    let received = Arc::new(AtomicU64::new(0));
    let url = rt.block_on(start_receiver(received.clone()));
    let tuning = Tuning::throughput();
    let (one, many, hundred) = {
        let _rt = rt.enter();
        let one = sender([endpoint("bench".into(), &url, tuning, None)]);
        let started = Instant::now();
        let many = sender((0..TENANTS * PER_TENANT).map(|k| {
            let (t, m) = (k / PER_TENANT, k % PER_TENANT);
            endpoint(
                format!("tenant-{t}/endpoint-{m}"),
                &url,
                tuning,
                Some((t, m)),
            )
        }));
        eprintln!(
            "built a sender of {} endpoints in {:.2} s",
            TENANTS * PER_TENANT,
            started.elapsed().as_secs_f64()
        );
        // Diagnostic: the 100 active endpoints alone (what spreading the load costs, without
        // the 9,900 idle endpoints).
        let hundred = sender((0..ACTIVE_TENANTS * PER_TENANT).map(|k| {
            let (t, m) = (k / PER_TENANT, k % PER_TENANT);
            endpoint(
                format!("tenant-{t}/endpoint-{m}"),
                &url,
                tuning,
                Some((t, m)),
            )
        }));
        (one, many, hundred)
    };

    // Correctness before timing: every event selects one endpoint, 100 endpoints in all,
    // N / 100 events each.
    rt.block_on(async {
        timed(&one, &typed, &received, 1).await;
        timed(&many, &typed, &received, 1).await;
        timed(&hundred, &typed, &received, 1).await;
    });
    let active: Vec<_> = many
        .health()
        .into_iter()
        .filter(|h| h.counters.delivered > 0)
        .collect();
    assert_eq!(active.len(), ACTIVE_TENANTS * PER_TENANT);
    assert!(
        active
            .iter()
            .all(|h| h.counters.delivered == (EVENTS / active.len()) as u64)
    );
    let requests = |s: &Sender| -> u64 { s.health().iter().map(|h| h.counters.requests).sum() };
    eprintln!(
        "one round of {EVENTS} events: {} requests to one endpoint, {} to 100 of 10,000 \
         endpoints, {} to 100 endpoints alone",
        requests(&one),
        requests(&many),
        requests(&hundred)
    );

    let mut g = c.benchmark_group("e2e_registry");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(10);
    g.bench_function("one_endpoint", |b| {
        b.iter_custom(|iters| rt.block_on(timed(&one, &typed, &received, iters)));
    });
    g.bench_function("100_active_of_10k", |b| {
        b.iter_custom(|iters| rt.block_on(timed(&many, &typed, &received, iters)));
    });
    g.bench_function("diag_100_endpoints_only", |b| {
        b.iter_custom(|iters| rt.block_on(timed(&hundred, &typed, &received, iters)));
    });
    g.finish();

    // Alternating rounds (the machine is noisy).
    let rounds = std::env::var("REGISTRY_E2E_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9);
    let (mut a, mut b, mut d, mut ratio, mut ratio_d) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let ta = rt.block_on(timed(&one, &typed, &received, 1));
        let tb = rt.block_on(timed(&many, &typed, &received, 1));
        let td = rt.block_on(timed(&hundred, &typed, &received, 1));
        a.push(EVENTS as f64 / ta.as_secs_f64());
        b.push(EVENTS as f64 / tb.as_secs_f64());
        d.push(EVENTS as f64 / td.as_secs_f64());
        ratio.push(ta.as_secs_f64() / tb.as_secs_f64());
        ratio_d.push(ta.as_secs_f64() / td.as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    eprintln!(
        "alternating, {rounds} rounds of {EVENTS}: one_endpoint median {:.0} events/s, \
         100_active_of_10k median {:.0} events/s, median ratio {:.3}; \
         diag_100_endpoints_only median {:.0} events/s, median ratio {:.3}",
        median(&mut a),
        median(&mut b),
        median(&mut ratio),
        median(&mut d),
        median(&mut ratio_d)
    );
    rt.block_on(async {
        assert!(one.shutdown(Duration::from_secs(5)).await.is_clean());
        assert!(many.shutdown(Duration::from_secs(5)).await.is_clean());
        assert!(hundred.shutdown(Duration::from_secs(5)).await.is_clean());
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
