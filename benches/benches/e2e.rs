//! End to end on loopback, sender and receiver sharing one 2-worker tokio runtime: typed Sysdig
//! policy events (~1 KiB) serialized, batched (NDJSON) and signed (Standard Webhooks) by the
//! `webhook-sender` engine, verified, split and deserialized into `SysdigEvent` by a
//! `webhook-receiver` server; against a naive loop POSTing one signed event per request with
//! reqwest at 16 concurrent requests to the same receiver.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::HeaderMap;
use webhook_benches::SYSDIG_FIXTURE_NDJSON;
use webhook_core::encode::Encoding;
use webhook_core::request::Endpoint;
use webhook_core::{
    BatcherConfig, Event, KeyRing, RetryPolicy, Scheme, Secret, SenderAuth, Signer, Verifier,
};
use webhook_payloads::sysdig::{self, SysdigEvent};
use webhook_receiver::{
    Context, Decode, DecodeError, MediaType, Outcome as Handled, Receiver, ReceiverConfig, Server,
    handler_fn,
};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{Concurrency, EndpointConfig, OverflowPolicy, Sender};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Events per measured iteration.
const EVENTS: usize = 20_000;

/// Typed Sysdig decoding (NDJSON, array or single object) into owned events.
struct SysdigDecoder;

impl Decode<SysdigEvent<'static>> for SysdigDecoder {
    fn decode(
        &self,
        media: Option<MediaType>,
        body: &[u8],
    ) -> Result<Vec<SysdigEvent<'static>>, DecodeError> {
        let ct = match media {
            Some(MediaType::NdJson) => Some("application/x-ndjson"),
            _ => Some("application/json"),
        };
        let (_, events) = sysdig::parse_batch(ct, body).map_err(|_| DecodeError::Empty)?;
        Ok(events.into_iter().map(SysdigEvent::into_owned).collect())
    }
}

/// Reads nothing: the sink receiver only acknowledges (to measure the sender alone).
struct Discard(Arc<AtomicU64>);

impl Decode<serde_json::Value> for Discard {
    fn decode(
        &self,
        _media: Option<MediaType>,
        body: &[u8],
    ) -> Result<Vec<serde_json::Value>, DecodeError> {
        let lines = body.iter().filter(|b| **b == b'\n').count();
        self.0.fetch_add(lines as u64, Ordering::Relaxed);
        Ok(Vec::new())
    }
}

async fn start_sink(count: Arc<AtomicU64>) -> String {
    let config = ReceiverConfig::builder()
        .auth(webhook_receiver::NoAuth)
        .body_limit(4 << 20)
        .no_replay_protection()
        .build()
        .expect("sink config");
    let receiver = Receiver::builder(config)
        .decoder(Discard(count))
        .fallback(handler_fn(|_v: serde_json::Value, _cx: Context| async {
            Handled::Accepted
        }))
        .build()
        .expect("sink");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/sink", listener.local_addr().expect("addr"));
    tokio::spawn(Server::new(receiver).serve(listener, std::future::pending()));
    url
}

/// The fixture's policy events, typed and owned.
fn policy_events() -> Vec<SysdigEvent<'static>> {
    let events: Vec<_> = sysdig::parse_ndjson(SYSDIG_FIXTURE_NDJSON.as_bytes())
        .expect("fixture parses")
        .into_iter()
        .map(SysdigEvent::into_owned)
        .filter(|e| matches!(e, SysdigEvent::Policy(_)))
        // The ~1 KiB one (the others carry 2-3 KiB of falco output).
        .filter(|e| serde_json::to_vec(e).is_ok_and(|v| v.len() < 1536))
        .collect();
    assert!(!events.is_empty(), "the fixture has policy events");
    events
}

async fn start_receiver(count: Arc<AtomicU64>) -> String {
    let verifier = Verifier::new(
        Scheme::standard_webhooks(),
        &KeyRing::single(Secret::from_whsec(WHSEC).expect("secret")),
    )
    .expect("verifier");
    let config = ReceiverConfig::builder()
        .auth(verifier)
        .body_limit(4 << 20)
        .build()
        .expect("receiver config");
    let receiver = Receiver::builder(config)
        .decoder(SysdigDecoder)
        .fallback(handler_fn(move |e: SysdigEvent<'static>, _cx: Context| {
            let count = count.clone();
            async move {
                assert!(matches!(e, SysdigEvent::Policy(_)));
                count.fetch_add(1, Ordering::Relaxed);
                Handled::Accepted
            }
        }))
        .build()
        .expect("receiver");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/sysdig", listener.local_addr().expect("addr"));
    tokio::spawn(Server::new(receiver).serve(listener, std::future::pending()));
    url
}

async fn sdk_sender(url: &str) -> Sender {
    let transport = TransportBuilder::new()
        .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse().expect("cidr")))
        .max_response_body(4096)
        .build()
        .expect("transport");
    let endpoint = Endpoint::builder(url)
        .encoding(Encoding::Ndjson)
        .auth(SenderAuth::signature(Secret::from_whsec(WHSEC).expect("secret")).expect("auth"))
        .build()
        .expect("endpoint");
    Sender::builder()
        .transport(transport)
        .endpoint(
            EndpointConfig::builder("bench", endpoint)
                .batching(
                    BatcherConfig::builder()
                        .encoding(Encoding::Ndjson)
                        .max_events(1000)
                        .max_bytes(2 << 20)
                        .linger(Duration::from_millis(2))
                        .buffer_limits(50_000, 64 << 20)
                        .build()
                        .expect("batcher"),
                )
                .retry(
                    RetryPolicy::builder()
                        .fixed(vec![Duration::ZERO, Duration::from_millis(50)], 0)
                        .build()
                        .expect("retry"),
                )
                .concurrency(Concurrency::Fixed(4))
                .queue(50_000, OverflowPolicy::Block)
                .build()
                .expect("endpoint config"),
        )
        .build()
        .expect("sender")
}

/// Producer tasks on the runtime (an application sends from several tasks): each serializes
/// and sends its share of `EVENTS` events, then awaits its receipts.
const PRODUCERS: usize = 2;

async fn produce(sender: &Sender, typed: &Arc<Vec<SysdigEvent<'static>>>) {
    let mut tasks = Vec::with_capacity(PRODUCERS);
    for p in 0..PRODUCERS {
        let (sender, typed) = (sender.clone(), typed.clone());
        tasks.push(tokio::spawn(async move {
            let share = EVENTS / PRODUCERS;
            let mut receipts = Vec::with_capacity(share);
            for i in p * share..(p + 1) * share {
                receipts.push(sender.send(serialize(i, &typed)).await.expect("send"));
            }
            for r in receipts {
                assert!(r.await.is_delivered());
            }
        }));
    }
    for t in tasks {
        t.await.expect("producer");
    }
}

fn serialize(i: usize, typed: &[SysdigEvent<'static>]) -> Event {
    let e = &typed[i % typed.len()];
    Event::builder(format!("evt_{i}"), "policy")
        .serialize(e)
        .expect("serialize")
}

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

    let sender = rt.block_on(sdk_sender(&url));
    let sunk = Arc::new(AtomicU64::new(0));
    let sink_url = rt.block_on(start_sink(sunk.clone()));
    let sink_sender = rt.block_on(sdk_sender(&sink_url));

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

    // Latency at a fixed offered load: enqueue-to-delivered (receipt resolved) percentiles.
    rt.block_on(async {
        let rate = std::env::var("E2E_LATENCY_RATE")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(50_000);
        let per_tick = rate / 1000;
        let samples = Arc::new(std::sync::Mutex::new(Vec::with_capacity(rate)));
        let mut waiters = Vec::with_capacity(rate);
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for t in 0..1000 {
            tick.tick().await;
            for i in 0..per_tick {
                let enqueued = Instant::now();
                let receipt = sender
                    .send(serialize(t * per_tick + i, &typed))
                    .await
                    .expect("send");
                let samples = samples.clone();
                waiters.push(tokio::spawn(async move {
                    assert!(receipt.await.is_delivered());
                    let us = enqueued.elapsed().as_micros() as u64;
                    samples.lock().expect("samples").push(us);
                }));
            }
        }
        for w in waiters {
            w.await.expect("waiter");
        }
        let mut v = samples.lock().expect("samples").clone();
        v.sort_unstable();
        let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
        eprintln!(
            "latency at {rate} events/s offered (linger 2 ms): p50 {} us, p99 {} us, max {} us",
            p(0.5),
            p(0.99),
            p(1.0)
        );
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
                    produce(&sender, &shared_typed).await;
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

    g.bench_function("sdk_sender_only_ack_sink", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let before = sunk.load(Ordering::Relaxed);
                let start = Instant::now();
                for _ in 0..iters {
                    produce(&sink_sender, &shared_typed).await;
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
                                let body = Bytes::from(
                                    serde_json::to_vec(&typed[i % typed.len()]).expect("json"),
                                );
                                let id = format!("naive_{i}_{}", start.elapsed().as_nanos());
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
                                assert!(r.status().is_success());
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
            sink_sender
                .shutdown(Duration::from_secs(5))
                .await
                .is_clean()
        );
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
