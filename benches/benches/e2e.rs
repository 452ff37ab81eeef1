//! End to end on loopback, sender and receiver sharing one 2-worker tokio runtime: typed Sysdig
//! policy events (~1 KiB) serialized, batched (NDJSON) and signed (Standard Webhooks) by the
//! `webhook-sender` engine, verified, split and deserialized into `SysdigEvent` by a
//! `webhook-receiver` server (one handler call per request parsing the shared body with the
//! borrowing typed parser; a second receiver takes owned events one handler call each); against
//! a naive loop POSTing one signed event per request with reqwest at 16 concurrent requests to
//! the same receiver. The sender alone against an acknowledge-only sink is measured too.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::HeaderMap;
use webhook_core::json::ToJson;
use webhook_core::{KeyRing, Scheme, Secret, Signer};

#[path = "support/e2e.rs"]
mod support;

use support::{
    PRODUCERS, Tuning, WHSEC, policy_events, produce, sdk_sender, serialize, start_owned_receiver,
    start_receiver, start_sink,
};

/// mimalloc, as a high-throughput service would choose (`--features system-alloc`: glibc's).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Message ids of the naive loop's requests.
static NAIVE_ID: AtomicU64 = AtomicU64::new(0);

/// Events per measured iteration.
const EVENTS: usize = 20_000;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let typed = policy_events();
    let shared_typed = Arc::new(typed.clone());
    let size = serialize(0, &typed).len();
    eprintln!("event size: {size} bytes");
    let received = Arc::new(AtomicU64::new(0));
    let url = rt.block_on(start_receiver(received.clone()));

    let tuning = Tuning::throughput();
    eprintln!(
        "sender: max_events {}, max_bytes {} KiB, linger {:?}, {} in flight, {PRODUCERS} producer tasks",
        tuning.max_events,
        tuning.max_bytes >> 10,
        tuning.linger,
        tuning.in_flight
    );
    let sender = {
        let _rt = rt.enter();
        sdk_sender(&url, tuning)
    };
    let owned_received = Arc::new(AtomicU64::new(0));
    let owned_url = rt.block_on(start_owned_receiver(owned_received.clone()));
    let owned_sender = {
        let _rt = rt.enter();
        sdk_sender(&owned_url, tuning)
    };
    let sunk = Arc::new(AtomicU64::new(0));
    let sink_url = rt.block_on(start_sink(sunk.clone()));
    let sink_sender = {
        let _rt = rt.enter();
        sdk_sender(&sink_url, tuning)
    };

    // Correctness before timing: one batch arrives verified and typed.
    rt.block_on(async {
        let before = received.load(Ordering::Relaxed);
        let mut receipts = Vec::new();
        for i in 0..100 {
            receipts.push(sender.send(serialize(i, &typed)).await.expect("send"));
        }
        for r in receipts {
            assert!(r.await.is_delivered());
        }
        assert_eq!(received.load(Ordering::Relaxed) - before, 100);
    });

    let mut g = c.benchmark_group("e2e_sysdig_policy");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(10);
    g.bench_function("sdk_batched_signed_typed", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let before = received.load(Ordering::Relaxed);
                let start = Instant::now();
                for _ in 0..iters {
                    produce(&sender, &shared_typed, EVENTS).await;
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

    g.bench_function("sdk_batched_signed_owned_per_item", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let before = owned_received.load(Ordering::Relaxed);
                let start = Instant::now();
                for _ in 0..iters {
                    produce(&owned_sender, &shared_typed, EVENTS).await;
                }
                let elapsed = start.elapsed();
                assert_eq!(
                    owned_received.load(Ordering::Relaxed) - before,
                    iters * EVENTS as u64
                );
                elapsed
            })
        })
    });

    g.bench_function("sdk_sender_only_ack_sink", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let before = sunk.load(Ordering::Relaxed);
                let start = Instant::now();
                for _ in 0..iters {
                    produce(&sink_sender, &shared_typed, EVENTS).await;
                }
                let elapsed = start.elapsed();
                assert_eq!(sunk.load(Ordering::Relaxed) - before, iters * EVENTS as u64);
                elapsed
            })
        })
    });

    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(32)
        .build()
        .expect("client");
    let signer = Arc::new(
        Signer::new(
            Scheme::standard_webhooks(),
            &KeyRing::single(Secret::from_whsec(WHSEC).expect("secret")),
        )
        .expect("signer"),
    );
    let typed = Arc::new(typed);
    let naive_events = EVENTS / 4;
    g.throughput(Throughput::Elements(naive_events as u64));
    g.bench_function("naive_reqwest_16_concurrent", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let before = received.load(Ordering::Relaxed);
                let start = Instant::now();
                for _ in 0..iters {
                    let next = Arc::new(AtomicU64::new(0));
                    let mut tasks = Vec::new();
                    for _ in 0..16 {
                        let (client, url, signer, typed, next) = (
                            client.clone(),
                            url.clone(),
                            signer.clone(),
                            typed.clone(),
                            next.clone(),
                        );
                        tasks.push(tokio::spawn(async move {
                            loop {
                                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                                if i >= naive_events {
                                    break;
                                }
                                // The same serde-free writer as the SDK run.
                                let body = Bytes::from(typed[i % typed.len()].to_json_vec());
                                // Unique for the whole process (the receiver rejects a replayed id with 409).
                                let id =
                                    format!("naive_{}", NAIVE_ID.fetch_add(1, Ordering::Relaxed));
                                let ts = SystemTime::now()
                                    .duration_since(SystemTime::UNIX_EPOCH)
                                    .map_or(0, |d| d.as_secs());
                                let mut headers = HeaderMap::new();
                                signer.sign(&id, ts, &body, &mut headers).expect("sign");
                                let r = client
                                    .post(&url)
                                    .headers(headers)
                                    .header("content-type", "application/json")
                                    .body(body)
                                    .send()
                                    .await
                                    .expect("post");
                                let status = r.status();
                                assert!(
                                    status.is_success(),
                                    "{status}: {}",
                                    r.text().await.unwrap_or_default()
                                );
                            }
                        }));
                    }
                    for t in tasks {
                        t.await.expect("task");
                    }
                }
                let elapsed = start.elapsed();
                assert_eq!(
                    received.load(Ordering::Relaxed) - before,
                    iters * naive_events as u64
                );
                elapsed
            })
        })
    });
    g.finish();
    rt.block_on(async {
        assert!(sender.shutdown(Duration::from_secs(5)).await.is_clean());
        assert!(
            owned_sender
                .shutdown(Duration::from_secs(5))
                .await
                .is_clean()
        );
        assert!(
            sink_sender
                .shutdown(Duration::from_secs(5))
                .await
                .is_clean()
        );
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
