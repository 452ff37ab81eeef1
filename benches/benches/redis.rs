//! Scale-out on Redis (issue 16), in one run against a `redis-server` this bench starts on a
//! free loopback port (AOF on, `appendfsync everysec`, Redis's default):
//!
//! 1. **Enqueue against Redis's ceiling**: `redis-benchmark` pipelining `XADD`s of the same
//!    entry size as the SDK's (its ceiling on this machine), against the SDK's
//!    `RedisQueue::enqueue_nowait` + `flush` of the same events (goal ≥ 0.5×); then the
//!    price of `replicas(1, …)`: the same enqueue into a primary with a replica, each write
//!    round waiting for it or not (`WEBHOOK_BENCH_REDIS=replicas` runs this alone).
//! 2. **Workers against a slow receiver**: a receiver that takes 20 ms per request; 1, 2 and 4
//!    `webhook worker` processes (the release binary: `cargo build --release -p webhook-cli`
//!    first, or `WEBHOOK_BIN`) deliver the same queue (goal: ×1.8 from 1 to 2, ×3 from 1 to 4).
//! 3. **Typed e2e through Redis against the in-memory sender** (criterion): `e2e.rs`'s typed
//!    pipeline, with the sender's events going through a Redis queue (a producer sender and a
//!    worker sender in this process) against the same sender in memory; `send` returning once
//!    Redis has the event (`Durability::Sync`, the default) or once buffered.
//!
//! `cargo build --release -p webhook-cli && cargo bench -p webhook-benches --bench redis`

#![allow(missing_docs)]
// `criterion_group!` generates an undocumented public function.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use webhook_core::Event;
use webhook_redis::{RedisQueue, RedisQueueConfig};
use webhook_sender::Sender;
use webhook_sender::outbox::{Durability, Outbox};

#[path = "support/e2e.rs"]
mod support;

#[path = "../../webhook-redis/tests/support/mod.rs"]
mod redis_support;

use redis_support::{Recorder, RedisServer};
use support::{Tuning, policy_events, sdk_sender_on, sdk_sender_with, serialize, start_receiver};

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ENQUEUE_EVENTS: usize = 200_000;
const SLOW_EVENTS: u64 = 20_000;
const E2E_EVENTS: usize = 20_000;

/// A ~1 KiB event (the same as the outbox bench's).
fn kib_event(i: usize) -> Event {
    let pad = "x".repeat(1_000);
    Event::builder(format!("evt_{i}"), "policy")
        .json_bytes(format!(r#"{{"n":{i},"pad":"{pad}"}}"#))
        .expect("event")
}

/// The server of the run: AOF on, fsync every second (Redis's default).
fn server() -> RedisServer {
    let s = RedisServer::start(true).expect("redis-server must be installed for this bench");
    let ok = Command::new("redis-cli")
        .args([
            "-p",
            &s.port.to_string(),
            "config",
            "set",
            "appendfsync",
            "everysec",
        ])
        .output()
        .expect("redis-cli");
    assert!(ok.status.success());
    s
}

/// 1: `redis-benchmark`'s pipelined XADD of the same entry, then the SDK's enqueue.
fn enqueue_against_ceiling(rt: &tokio::runtime::Runtime, s: &RedisServer) {
    let e = kib_event(123_456);
    let pad = "x".repeat(1_000);
    let body = format!(r#"{{"n":123456,"pad":"{pad}"}}"#);
    let ts = e.timestamp_nanos().to_string();
    let mut ceiling = Vec::new();
    for (clients, pipeline) in [("1", "64"), ("8", "64")] {
        let out = Command::new("redis-benchmark")
            .args(["-p", &s.port.to_string(), "-q", "--csv", "-n", "200000"])
            .args(["-c", clients, "-P", pipeline])
            .args([
                "XADD",
                "whk:{ceiling}:s",
                "*",
                "id",
                "evt_123456",
                "sub",
                "policy",
                "ts",
                &ts,
                "body",
                &body,
            ])
            .output()
            .expect("redis-benchmark");
        let text = String::from_utf8_lossy(&out.stdout);
        // "XADD ...","<rps>",...
        let rps: f64 = text
            .lines()
            .last()
            .and_then(|l| l.split("\",\"").nth(1))
            .and_then(|v| v.trim_matches('"').parse().ok())
            .unwrap_or_else(|| panic!("redis-benchmark output: {text}"));
        eprintln!("redis-benchmark XADD, {clients} client(s), pipeline {pipeline}: {rps:.0}/s");
        ceiling.push(rps);
    }
    let _ = Command::new("redis-cli")
        .args(["-p", &s.port.to_string(), "del", "whk:{ceiling}:s"])
        .output();
    let events: Vec<Event> = (0..ENQUEUE_EVENTS).map(kib_event).collect();
    let url = s.url();
    for round in 0..3 {
        let rate = rt.block_on(async {
            let q = RedisQueue::connect(
                RedisQueueConfig::new(&url, format!("enq{round}")).max_len(10_000_000),
            )
            .await
            .expect("connect");
            let start = Instant::now();
            for e in &events {
                q.enqueue_nowait(e).expect("enqueue");
            }
            q.flush().await.expect("flush");
            let took = start.elapsed();
            assert_eq!(q.counters().appended, ENQUEUE_EVENTS as u64);
            q.close().await;
            ENQUEUE_EVENTS as f64 / took.as_secs_f64()
        });
        let best = ceiling.iter().copied().fold(0.0, f64::max);
        eprintln!(
            "SDK enqueue round {round}: {rate:.0} events/s = {:.2}x the 1-client ceiling, {:.2}x the best",
            rate / ceiling[0],
            rate / best
        );
        let key = format!("whk:{{enq{round}.0}}:s");
        let bytes: f64 = redis_cli(s, &["memory", "usage", &key, "samples", "0"])
            .trim()
            .parse()
            .unwrap_or(0.0);
        eprintln!(
            "  memory: {:.0} bytes per entry ({} entries of a {} B body)",
            bytes / ENQUEUE_EVENTS as f64,
            ENQUEUE_EVENTS,
            events[0].body().len()
        );
        let _ = redis_cli(s, &["del", &key]);
    }
}

fn webhook_bin() -> String {
    std::env::var("WEBHOOK_BIN").unwrap_or_else(|_| {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/webhook");
        assert!(
            std::path::Path::new(p).exists(),
            "build the worker first: cargo build --release -p webhook-cli (or set WEBHOOK_BIN)"
        );
        p.to_owned()
    })
}

fn worker(bin: &str, url: &str, queue: &str, endpoint: &str) -> Child {
    Command::new(bin)
        .args([
            "worker",
            "--redis",
            url,
            "--queue",
            queue,
            "--endpoint",
            endpoint,
        ])
        .args(["--allow-private", "--name", "slow"])
        .args([
            "--max-events",
            "20",
            "--concurrency",
            "2",
            "--linger",
            "1ms",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("webhook worker")
}

/// 2: 1, 2, 4 worker processes against a receiver taking 20 ms per request.
fn workers_against_slow_receiver(rt: &tokio::runtime::Runtime, s: &RedisServer) {
    let bin = webhook_bin();
    let url = s.url();
    let mut rates = Vec::new();
    for n in [1usize, 2, 4] {
        let rate = rt.block_on(async {
            let queue = format!("slow{n}");
            let q = RedisQueue::connect(RedisQueueConfig::new(&url, &queue))
                .await
                .expect("connect");
            for i in 0..SLOW_EVENTS {
                q.enqueue_nowait(&kib_event(i as usize)).expect("enqueue");
            }
            q.flush().await.expect("flush");
            q.close().await;
            let rec = Recorder::start(200, Duration::from_millis(20)).await;
            let start = Instant::now();
            let mut ws: Vec<Child> = (0..n).map(|_| worker(&bin, &url, &queue, &rec.url())).collect();
            let got = rec
                .wait_distinct(SLOW_EVENTS as usize, Duration::from_secs(300))
                .await;
            let took = start.elapsed();
            for w in &mut ws {
                let _ = Command::new("kill").args(["-TERM", &w.id().to_string()]).status();
            }
            for w in &mut ws {
                let _ = w.wait();
            }
            assert_eq!(got, SLOW_EVENTS as usize);
            let requests = rec.seen.lock().expect("seen").requests;
            eprintln!(
                "{n} worker(s), receiver 20 ms/request: {SLOW_EVENTS} events in {took:.2?} ({requests} requests)"
            );
            SLOW_EVENTS as f64 / took.as_secs_f64()
        });
        rates.push(rate);
    }
    eprintln!(
        "workers 1/2/4: {:.0} / {:.0} / {:.0} events/s; x{:.2} from 1 to 2, x{:.2} from 1 to 4",
        rates[0],
        rates[1],
        rates[2],
        rates[1] / rates[0],
        rates[2] / rates[0]
    );
}

/// 3: the typed e2e through Redis against in memory.
fn e2e(c: &mut Criterion, rt: &tokio::runtime::Runtime, s: &RedisServer) {
    let typed = Arc::new(policy_events());
    let received = Arc::new(AtomicU64::new(0));
    let url = rt.block_on(start_receiver(received.clone()));
    let tuning = Tuning::throughput();
    let redis_url = s.url();
    let (memory, producers, worker) = {
        let _rt = rt.enter();
        let queue = |d: Durability| {
            let cfg = RedisQueueConfig::new(&redis_url, "e2e")
                .fetch(2_000)
                .durability(d);
            rt.block_on(async { RedisQueue::connect(cfg).await.expect("connect") })
        };
        let on = |q: RedisQueue| {
            sdk_sender_on(
                &url,
                tuning,
                Sender::builder().outbox_open(Outbox::from_store(Arc::new(q))),
            )
        };
        let producers = [
            ("through_redis_sync", on(queue(Durability::Sync))),
            (
                "through_redis_buffered",
                on(queue(Durability::Interval(Duration::from_millis(1)))),
            ),
        ];
        let worker = on(queue(Durability::Sync));
        (sdk_sender_with(&url, tuning, None), producers, worker)
    };
    let mut g = c.benchmark_group("redis_e2e_sysdig_policy");
    g.throughput(Throughput::Elements(E2E_EVENTS as u64));
    g.sample_size(10);
    g.bench_function("in_memory", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let before = received.load(Ordering::Relaxed);
                let start = Instant::now();
                for _ in 0..iters {
                    support::produce(&memory, &typed, E2E_EVENTS).await;
                }
                let elapsed = start.elapsed();
                assert_eq!(
                    received.load(Ordering::Relaxed) - before,
                    iters * E2E_EVENTS as u64
                );
                elapsed
            })
        })
    });
    for (name, producer) in &producers {
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let before = received.load(Ordering::Relaxed);
                    let target = before + iters * E2E_EVENTS as u64;
                    let start = Instant::now();
                    for _ in 0..iters {
                        // Sent into Redis by 2 producer tasks, delivered by the worker sender.
                        let mut tasks = Vec::new();
                        for p in 0..support::PRODUCERS {
                            let (sender, typed) = (producer.clone(), typed.clone());
                            tasks.push(tokio::spawn(async move {
                                let share = E2E_EVENTS / support::PRODUCERS;
                                for i in p * share..(p + 1) * share {
                                    let r = sender.send(serialize(i, &typed)).await.expect("send");
                                    drop(r);
                                }
                            }));
                        }
                        for t in tasks {
                            t.await.expect("producer");
                        }
                    }
                    while received.load(Ordering::Relaxed) < target {
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    }
                    let elapsed = start.elapsed();
                    assert_eq!(received.load(Ordering::Relaxed), target, "each event once");
                    elapsed
                })
            })
        });
    }
    g.finish();
    rt.block_on(async {
        assert!(memory.shutdown(Duration::from_secs(5)).await.is_clean());
        for (_, p) in &producers {
            let _ = p.shutdown(Duration::from_secs(5)).await;
        }
        let _ = worker.shutdown(Duration::from_secs(5)).await;
    });
}

fn redis_cli(s: &RedisServer, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &s.port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Redis's own CPU time per event over the worker runs (every command the SDK sent: appends,
/// reads, acknowledgements, lease renewals, reclaim checks, trims), from `INFO commandstats`:
/// the per-shard figure the Redis Cluster sizing in `webhook-redis/CLUSTER.md` starts from.
fn redis_cost(s: &RedisServer, events: u64) {
    let stats = redis_cli(s, &["info", "commandstats"]);
    let mut total = 0.0;
    let mut rows = Vec::new();
    for line in stats.lines() {
        // cmdstat_xadd:calls=...,usec=...,usec_per_call=...
        let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let field = |k: &str| {
            rest.split(',')
                .find_map(|kv| kv.strip_prefix(k))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let (calls, usec) = (field("calls="), field("usec="));
        total += usec;
        rows.push((usec, name.to_owned(), calls));
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (usec, name, calls) in rows.iter().take(8) {
        eprintln!(
            "  {name}: {calls:.0} calls, {usec:.0} µs ({:.2} µs/event)",
            usec / events as f64
        );
    }
    let per = total / events as f64;
    eprintln!(
        "redis CPU per event (enqueue + deliver + ack + trim): {per:.2} µs → one shard's core saturates at ~{:.0} events/s",
        1e6 / per
    );
}

/// 1b: the price of `replicas(1, …)`: the same enqueue into a primary that has a replica,
/// each write round waiting for it (`WAIT 1`) or not, in alternating rounds.
fn enqueue_with_replica(rt: &tokio::runtime::Runtime, s: &RedisServer) {
    let replica = RedisServer::start(false).expect("redis-server");
    redis_support::follow(&replica, s);
    let events: Vec<Event> = (0..ENQUEUE_EVENTS / 2).map(kib_event).collect();
    let url = s.url();
    let mut rates = [Vec::new(), Vec::new()];
    for round in 0..6 {
        let waits = round % 2 == 1;
        let rate = rt.block_on(async {
            let mut cfg = RedisQueueConfig::new(&url, format!("rep{round}")).max_len(10_000_000);
            if waits {
                cfg = cfg.replicas(1, Duration::from_secs(1));
            }
            let q = RedisQueue::connect(cfg).await.expect("connect");
            let start = Instant::now();
            for e in &events {
                q.enqueue_nowait(e).expect("enqueue");
            }
            q.flush().await.expect("flush");
            let took = start.elapsed();
            q.close().await;
            events.len() as f64 / took.as_secs_f64()
        });
        eprintln!(
            "enqueue into a primary with a replica, round {round}, {}: {rate:.0} events/s",
            if waits { "WAIT 1 per round" } else { "no WAIT" }
        );
        rates[usize::from(waits)].push(rate);
        let _ = redis_cli(s, &["del", &format!("whk:{{rep{round}.0}}:s")]);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (plain, waited) = (median(&mut rates[0]), median(&mut rates[1]));
    eprintln!(
        "replicas(1): {waited:.0} events/s against {plain:.0} without = {:.2}x (medians of 3 alternated rounds)",
        waited / plain
    );
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let s = server();
    // `WEBHOOK_BENCH_REDIS=enqueue` or `=workers`: that step alone (to compare builds of one
    // path, run alternately).
    let only = std::env::var("WEBHOOK_BENCH_REDIS").ok();
    if only.as_deref() == Some("replicas") {
        enqueue_with_replica(&rt, &s);
        return;
    }
    if only.as_deref() != Some("workers") {
        enqueue_against_ceiling(&rt, &s);
        enqueue_with_replica(&rt, &s);
    }
    if only.as_deref() == Some("enqueue") {
        return;
    }
    redis_cli(&s, &["config", "resetstat"]);
    workers_against_slow_receiver(&rt, &s);
    if only.as_deref() == Some("workers") {
        return;
    }
    redis_cost(&s, 3 * SLOW_EVENTS);
    e2e(c, &rt, &s);
}

criterion_group!(benches, bench);
criterion_main!(benches);
