//! The durable outbox, measured against what it costs and against the disk (issue 15), in one
//! run:
//!
//! * `e2e/…`: the typed e2e of `e2e.rs` (~1 KiB Sysdig policy events, NDJSON batches signed
//!   with Standard Webhooks, verified and parsed by the SDK's receiver on loopback) with the
//!   durable outbox at its default durability (`Durability::Interval(100 ms)`: every event
//!   written to the OS before `send` returns) against the in-memory sender. Goal ≥ 0.75×.
//! * `append/…`: the store's append throughput (1 KiB events, `Outbox::append`, one `flush`
//!   (fdatasync) per 1,024 events) against this disk's raw limit measured in the same run: the
//!   same bytes written sequentially in 1 MiB `write`s with one `fdatasync` per 1 MiB. Goal ≥ 0.8×.
//! * `synced/…`: `Durability::Sync` (every `send` waits for the fdatasync that covers it) with
//!   one producer, and with 64 concurrent producers sharing syncs (group commit), against the
//!   disk's raw 1 KiB `write` + `fdatasync` rate.
//!
//! `cargo bench -p webhook-benches --bench outbox`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use webhook_core::Event;
use webhook_sender::outbox::{Durability, Outbox, OutboxConfig};

#[path = "support/e2e.rs"]
mod support;

use support::{Tuning, policy_events, produce, sdk_sender_with, start_receiver};

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Events per measured e2e iteration.
const EVENTS: usize = 20_000;
/// Events per append iteration, and per durable commit.
const APPEND_EVENTS: usize = 16_384;
const GROUP: usize = 1_024;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "webhook-bench-outbox-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A 1 KiB JSON event.
fn kib_event(i: usize) -> Event {
    let pad = "x".repeat(1_000);
    Event::builder(format!("evt_{i}"), "policy")
        .json_bytes(format!(r#"{{"i":{i},"pad":"{pad}"}}"#))
        .expect("event")
}

/// The default durable outbox (`OUTBOX_SYNC_MS` overrides the sync interval, to see what the
/// syncs cost).
fn durable_config(dir: &std::path::Path) -> OutboxConfig {
    let cfg = OutboxConfig::new(dir);
    match std::env::var("OUTBOX_SYNC_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(ms) => cfg.durability(Durability::Interval(Duration::from_millis(ms))),
        None => cfg,
    }
}

fn e2e(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let typed = Arc::new(policy_events());
    let received = Arc::new(AtomicU64::new(0));
    let url = rt.block_on(start_receiver(received.clone()));
    let tuning = Tuning::throughput();
    let dir = scratch("e2e");
    let (memory, durable) = {
        let _rt = rt.enter();
        (
            sdk_sender_with(&url, tuning, None),
            sdk_sender_with(&url, tuning, Some(durable_config(&dir))),
        )
    };
    let mut g = c.benchmark_group("outbox_e2e_sysdig_policy");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(10);
    for (name, sender) in [("in_memory", &memory), ("durable_outbox_default", &durable)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let before = received.load(Ordering::Relaxed);
                    let start = Instant::now();
                    for _ in 0..iters {
                        produce(sender, &typed, EVENTS).await;
                    }
                    let elapsed = start.elapsed();
                    assert_eq!(
                        received.load(Ordering::Relaxed) - before,
                        iters * EVENTS as u64
                    );
                    elapsed
                })
            })
        });
    }
    g.finish();
    rt.block_on(async {
        assert!(memory.shutdown(Duration::from_secs(5)).await.is_clean());
        assert!(durable.shutdown(Duration::from_secs(5)).await.is_clean());
        let stats = durable.outbox().expect("outbox").stats();
        assert_eq!(stats.pending, 0);
        eprintln!(
            "durable e2e: {} syncs, mean sync {:?}",
            stats.commits, stats.commit_latency_mean
        );
    });
    drop(durable);
    let _ = std::fs::remove_dir_all(&dir);
}

fn append(c: &mut Criterion) {
    let events: Vec<Event> = (0..APPEND_EVENTS).map(kib_event).collect();
    let mut g = c.benchmark_group("outbox_append_1kib");
    g.throughput(Throughput::Elements(APPEND_EVENTS as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    let dir = scratch("append");
    // Large segments and limit: the measurement is appends, not rotation.
    let outbox = Outbox::open(
        OutboxConfig::new(&dir)
            .segment_bytes(1 << 30)
            .max_bytes(64 << 30),
    )
    .expect("open");
    g.bench_function("store_append_flush_per_1024", |b| {
        b.iter(|| {
            for chunk in events.chunks(GROUP) {
                for e in chunk {
                    outbox.append(&["siem"], e).expect("append");
                }
                outbox.flush().expect("flush");
            }
        });
    });
    drop(outbox);
    let _ = std::fs::remove_dir_all(&dir);
    // The same bytes (the frames are ~1.1 KiB: 1,024 B of body, the event's id and type, the
    // endpoint, a 9-byte frame header), written raw.
    let frame = 1_060usize;
    let chunk = vec![0x5au8; frame * GROUP];
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("raw");
    g.bench_function("raw_write_1mib_fdatasync_per_1mib", |b| {
        b.iter(|| {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .expect("raw file");
            for _ in 0..APPEND_EVENTS / GROUP {
                f.write_all(&chunk).expect("write");
                f.sync_data().expect("fdatasync");
            }
        });
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn synced(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let mut g = c.benchmark_group("outbox_synced_per_send");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    let dir = scratch("synced");
    let url = rt.block_on(start_receiver(Arc::new(AtomicU64::new(0))));
    // Delivered as it goes (the receiver acknowledges): the outbox stays small however many
    // iterations criterion runs (a paused endpoint filled the 1 GiB limit and `send` waited for
    // space, as `Block` says).
    let sender = {
        let _rt = rt.enter();
        sdk_sender_with(
            &url,
            Tuning::throughput(),
            Some(OutboxConfig::new(&dir).durability(Durability::Sync)),
        )
    };
    let sequential = 256usize;
    g.throughput(Throughput::Elements(sequential as u64));
    g.bench_function("sync_one_producer", |b| {
        b.iter(|| {
            rt.block_on(async {
                for i in 0..sequential {
                    drop(sender.send(kib_event(i)).await.expect("send"));
                }
            });
        });
    });
    let concurrent = 64usize;
    let per = 32usize;
    g.throughput(Throughput::Elements((concurrent * per) as u64));
    g.bench_function("sync_64_producers_group_commit", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut tasks = Vec::new();
                for p in 0..concurrent {
                    let s = sender.clone();
                    tasks.push(tokio::spawn(async move {
                        for i in 0..per {
                            drop(s.send(kib_event(p * per + i)).await.expect("send"));
                        }
                    }));
                }
                for t in tasks {
                    t.await.expect("producer");
                }
            });
        });
    });
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("raw");
    let one = vec![0x5au8; 1_060];
    g.throughput(Throughput::Elements(sequential as u64));
    g.bench_function("raw_write_1kib_fdatasync_each", |b| {
        b.iter(|| {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .expect("raw file");
            for _ in 0..sequential {
                f.write_all(&one).expect("write");
                f.sync_data().expect("fdatasync");
            }
        });
    });
    g.finish();
    rt.block_on(async {
        sender.shutdown(Duration::ZERO).await;
    });
    drop(sender);
    let _ = std::fs::remove_dir_all(&dir);
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    e2e(c, &rt);
    append(c);
    synced(c, &rt);
}

criterion_group!(benches, bench);
criterion_main!(benches);
