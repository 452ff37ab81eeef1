//! Memory per idle endpoint of a `Sender` holding 1,000 and 10,000 endpoints (issue 14; a plain
//! binary, `harness = false`: RSS is not a criterion measurement).
//!
//! Each size runs in a fresh child process (so RSS freed by an earlier size cannot be reused):
//! a 2-worker tokio runtime, a local acknowledge-only receiver on 127.0.0.1, a warm-up sender
//! on the same transport (its connection pool and the receiver's connections are fixed costs,
//! paid before the baseline), then a `Sender` with no endpoint, measured; N endpoints of N / 10
//! tenants added with `add_endpoint` (10 per tenant, endpoint `m` subscribing to the shared
//! event set `m` of 3 exact types, half of them signing with their own `whsec` secret), measured
//! again; then one event per endpoint (so every driver starts), every receipt awaited, the
//! `park_after` of 200 ms waited until `running_drivers() == 0`, the same once more, and measured
//! a third time 2 s later (the connections of the burst closed).
//!
//! Memory is reported twice: the resident set (`/proc/self/statm` resident pages times the
//! page size from the auxiliary vector) and the live heap bytes counted by a global allocator
//! wrapping the system allocator (`cap`: allocated minus freed; less noisy than RSS).
//!
//! `cargo bench -p webhook-benches --bench registry_memory` (`REGISTRY_MEMORY_SIZES`, default
//! `1000,10000`, picks the sizes; a size ending in `u`, as `10000u`, adds the endpoints untested
//! (registered, not routed) and stops there, which tells the route index's share apart;
//! `REGISTRY_MEMORY_WAVE`, default 1000, is how many events are sent before their receipts are
//! awaited).

use std::alloc::System;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use base64::Engine as _;
use cap::Cap;
use webhook_core::{BatcherConfig, Encoding, Endpoint, Event, EventSet, Secret, SenderAuth};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::transport::{SharedTransport, TransportBuilder};
use webhook_sender::{EndpointConfig, OverflowPolicy, Sender};

#[path = "support/e2e.rs"]
mod support;

/// The system allocator, counting the bytes live (allocated minus freed). `cap` wraps it (the
/// workspace forbids `unsafe_code`, which a `GlobalAlloc` impl needs); no limit is set.
#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

/// Tenants have 10 endpoints each.
const PER_TENANT: usize = 10;

/// The shared event sets: endpoint `m` of every tenant subscribes to set `m`.
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

/// The page size from the auxiliary vector (`AT_PAGESZ`).
fn page_size() -> u64 {
    let auxv = std::fs::read("/proc/self/auxv").expect("/proc/self/auxv");
    auxv.chunks_exact(16)
        .map(|c| {
            let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().expect("8 bytes"));
            (word(&c[..8]), word(&c[8..]))
        })
        .find_map(|(key, value)| (key == 6).then_some(value))
        .expect("AT_PAGESZ")
}

/// Resident bytes (`/proc/self/statm`'s second field times the page size).
fn rss(page: u64) -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("resident pages");
    pages * page
}

fn heap() -> i64 {
    ALLOC.allocated() as i64
}

#[derive(Clone, Copy)]
struct Sample {
    rss: u64,
    heap: i64,
}

fn sample(page: u64) -> Sample {
    Sample {
        rss: rss(page),
        heap: heap(),
    }
}

/// A `whsec_` secret of 24 bytes derived from `i` (each endpoint its own).
fn whsec(i: usize) -> String {
    let mut bytes = [0u8; 24];
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in &mut bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn batching() -> BatcherConfig {
    BatcherConfig::builder()
        .max_events(100)
        .max_bytes(1 << 20)
        .linger(Duration::from_millis(2))
        .build()
        .expect("batcher")
}

/// Endpoint `m` of tenant `t`: NDJSON batches to `base/hooks/tenant-t/endpoint-m`, event set
/// `m`, a signing secret of its own on every other endpoint; `untested`: requiring a test
/// first (registered, not routed: a diagnostic telling the route index's cost apart).
fn endpoint(base: &str, t: usize, m: usize, untested: bool) -> EndpointConfig {
    let i = t * PER_TENANT + m;
    let mut url = Endpoint::builder(format!("{base}/hooks/tenant-{t}/endpoint-{m}"))
        .encoding(Encoding::Ndjson);
    if i.is_multiple_of(2) {
        let secret = Secret::from_whsec(&whsec(i)).expect("secret");
        url = url.auth(SenderAuth::signature(secret).expect("auth"));
    }
    EndpointConfig::builder(
        format!("tenant-{t}/endpoint-{m}"),
        url.build().expect("endpoint"),
    )
    .tenant(format!("tenant-{t}"))
    .event_set(CATEGORIES[m])
    .batching(batching())
    .queue(10_000, OverflowPolicy::DropOldest)
    .require_test(untested)
    .build()
    .expect("endpoint config")
}

/// `REGISTRY_MEMORY_UNROUTED=1`: endpoints are added untested (not in the routes) and the
/// run stops after adding them.
fn unrouted() -> bool {
    std::env::var_os("REGISTRY_MEMORY_UNROUTED").is_some()
}

fn event_sets() -> impl Iterator<Item = EventSet> {
    CATEGORIES.iter().map(|c| {
        EventSet::new(
            *c,
            [
                format!("{c}.created"),
                format!("{c}.updated"),
                format!("{c}.resolved"),
            ],
        )
    })
}

/// The event selecting endpoint `m` of tenant `t` only.
fn event(n: usize, t: usize, m: usize) -> Event {
    Event::builder(format!("evt_{n}"), format!("{}.created", CATEGORIES[m]))
        .tenant(format!("tenant-{t}"))
        .json_bytes(&br#"{"kind":"bench","severity":3}"#[..])
        .expect("event")
}

fn transport() -> SharedTransport {
    TransportBuilder::new()
        .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse().expect("cidr")))
        .max_response_body(4096)
        .build()
        .expect("transport")
}

fn sender(transport: &SharedTransport) -> Sender {
    let mut b = Sender::builder()
        .transport(transport.clone())
        .park_after(Duration::from_millis(200));
    for set in event_sets() {
        b = b.event_set(set);
    }
    b.build().expect("sender")
}

/// Sends one event to each of `endpoints` (tenant, index) in waves of `wave`, awaiting every
/// receipt; returns the most drivers seen running.
async fn touch(sender: &Sender, endpoints: &[(usize, usize)], wave: usize) -> usize {
    let mut peak = 0;
    let mut n = 0;
    for chunk in endpoints.chunks(wave) {
        let mut receipts = Vec::with_capacity(chunk.len());
        for &(t, m) in chunk {
            receipts.push(sender.send(event(n, t, m)).await.expect("send"));
            n += 1;
        }
        peak = peak.max(sender.running_drivers());
        for r in receipts {
            let outcome = r.await;
            assert!(outcome.is_delivered(), "{outcome:?}");
        }
    }
    peak
}

/// Waits until every driver parked.
async fn parked(sender: &Sender) -> Duration {
    let start = Instant::now();
    while sender.running_drivers() > 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "drivers park");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// RSS and heap growth from `a` to `b` per endpoint.
fn per_endpoint(a: Sample, b: Sample, endpoints: usize) -> (f64, f64) {
    (
        (b.rss as f64 - a.rss as f64) / endpoints as f64,
        (b.heap - a.heap) as f64 / endpoints as f64,
    )
}

/// One size, in this process; prints one result line.
fn run(endpoints: usize) {
    let page = page_size();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tenants = endpoints / PER_TENANT;
    let all: Vec<(usize, usize)> = (0..tenants)
        .flat_map(|t| (0..PER_TENANT).map(move |m| (t, m)))
        .collect();
    let (base, transport) = rt.block_on(async {
        let sunk = Arc::new(AtomicU64::new(0));
        let url = support::start_sink(sunk).await;
        let base = url.trim_end_matches("/sink").to_owned();
        (base, transport())
    });

    // Warm-up: the transport's pool and the receiver's connections, the runtime's and the
    // allocator's fixed costs, on a separate sender of 100 endpoints.
    rt.block_on(async {
        let warm = {
            let s = sender(&transport);
            for &(t, m) in &all[..100] {
                s.add_endpoint(endpoint(&base, t, m, false), "bench")
                    .expect("add");
            }
            s
        };
        touch(&warm, &all[..100], 100).await;
        touch(&warm, &all[..100], 100).await;
        parked(&warm).await;
        assert!(warm.shutdown(Duration::from_secs(5)).await.is_clean());
    });
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });

    let _guard = rt.enter();
    let sender = sender(&transport);
    let empty = sample(page);
    // The configurations are built first: the application holds them before adding them.
    let configs: Vec<EndpointConfig> = all
        .iter()
        .map(|&(t, m)| endpoint(&base, t, m, unrouted()))
        .collect();
    let with_configs = sample(page);
    let started = Instant::now();
    for cfg in configs {
        sender.add_endpoint(cfg, "bench").expect("add");
    }
    let add_time = started.elapsed();
    let added = sample(page);
    // The latency of one more add (and of updating it back out of the routes is not measured).
    let one = Instant::now();
    sender
        .add_endpoint(endpoint(&base, tenants, 0, unrouted()), "bench")
        .expect("add");
    let one_add = one.elapsed();
    let after_one = sample(page);
    assert_eq!(sender.endpoints().len(), endpoints + 1);
    assert_eq!(sender.running_drivers(), 0, "no driver before any event");

    if unrouted() {
        let (rss, heap) = per_endpoint(empty, added, endpoints);
        println!(
            "| {endpoints} unrouted (require_test) | {tenants} | {rss:.0} | {heap:.0} | - | - | - | - | {:.2} s | - |",
            add_time.as_secs_f64()
        );
        return;
    }
    let wave = std::env::var("REGISTRY_MEMORY_WAVE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let (peak, park_wait, touch_time) = rt.block_on(async {
        let started = Instant::now();
        let peak = touch(&sender, &all, wave).await;
        let touch_time = started.elapsed();
        (peak, parked(&sender).await, touch_time)
    });
    let used = sample(page);
    // Once more: what a second use adds (nothing if the first one's residue is not per use).
    rt.block_on(async {
        touch(&sender, &all, wave).await;
        parked(&sender).await;
    });
    let used_twice = sample(page);
    // And 2 s later (connections closed by either side meanwhile are released).
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(2)).await });
    let settled = sample(page);
    let delivered: u64 = sender.health().iter().map(|h| h.counters.delivered).sum();
    assert_eq!(
        delivered,
        2 * endpoints as u64,
        "two events delivered per endpoint"
    );

    let per = |a: Sample, b: Sample| per_endpoint(a, b, endpoints);
    let (cfg_rss, cfg_heap) = per(empty, with_configs);
    let (idle_rss, idle_heap) = per(empty, added);
    // The table's "after use": two uses, parked, and 2 s for the connections to close.
    let (used_rss, used_heap) = per(empty, settled);
    let (_, first_heap) = per(empty, used);
    let (_, twice_heap) = per(empty, used_twice);
    println!(
        "| {endpoints} | {tenants} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} s | {:.2} s, peak {peak} drivers, parked {:.2} s later |",
        idle_rss,
        idle_heap,
        used_rss,
        used_heap,
        cfg_rss,
        cfg_heap,
        add_time.as_secs_f64(),
        touch_time.as_secs_f64(),
        park_wait.as_secs_f64(),
    );
    eprintln!(
        "  {endpoints} endpoints: RSS empty sender {:.1} MiB, after adding {:.1} MiB, after use and park (first) {:.1} MiB; heap {:.1} / {:.1} / {:.1} MiB; \
         heap per endpoint right after the first use and park {first_heap:.0} B, after a second {twice_heap:.0} B, 2 s later {used_heap:.0} B; one more add_endpoint at {endpoints}: {:.1} ms, heap {} B; waves of {wave} events",
        empty.rss as f64 / 1048576.0,
        added.rss as f64 / 1048576.0,
        used.rss as f64 / 1048576.0,
        empty.heap as f64 / 1048576.0,
        added.heap as f64 / 1048576.0,
        used.heap as f64 / 1048576.0,
        one_add.as_secs_f64() * 1e3,
        after_one.heap - added.heap,
    );
    assert!(
        rt.block_on(sender.shutdown(Duration::from_secs(10)))
            .is_clean()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs nothing here.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if let Some(n) = std::env::var("REGISTRY_MEMORY_CHILD")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        run(n);
        return;
    }
    let sizes = std::env::var("REGISTRY_MEMORY_SIZES").unwrap_or_else(|_| "1000,10000".into());
    // Inline sizes that every endpoint pays whether it is used or not (diagnostics): its
    // configuration, and the delivery machine (the sender's per-endpoint state keeps room for
    // a parked one inline).
    println!(
        "inline sizes: EndpointConfig {} B, Endpoint {} B, Delivery<_> {} B",
        size_of::<EndpointConfig>(),
        size_of::<Endpoint>(),
        size_of::<webhook_core::Delivery<(Arc<()>, usize)>>(),
    );
    println!(
        "memory per endpoint (bytes), each size in a fresh process, system allocator; idle = \
         added, no event yet; after use = one event delivered to each, twice, drivers parked \
         (park_after 200 ms), then 2 s for connections to close; configs = the EndpointConfig \
         values alone, before adding"
    );
    println!(
        "| endpoints | tenants | RSS / idle endpoint | heap / idle endpoint | RSS / endpoint after use | heap / endpoint after use | RSS / config | heap / config | add_endpoint x N | one event each |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let exe = std::env::current_exe().expect("current exe");
    for n in sizes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let status = std::process::Command::new(&exe)
            .arg("--bench")
            .env("REGISTRY_MEMORY_CHILD", n.trim_end_matches('u'))
            // `10000u`: the unrouted diagnostic.
            .env(
                if n.ends_with('u') {
                    "REGISTRY_MEMORY_UNROUTED"
                } else {
                    "REGISTRY_MEMORY_UNROUTED_OFF"
                },
                "1",
            )
            .status()
            .expect("child");
        assert!(status.success(), "size {n}: {status}");
    }
}
