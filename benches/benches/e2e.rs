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
    AuthError, Authenticate, Authenticated, Context, Decode, DecodeError, Identity, MediaType,
    Outcome as Handled, Receiver, ReceiverConfig, Server, handler_fn,
};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{Concurrency, EndpointConfig, OverflowPolicy, Sender};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Events per measured iteration.
const EVENTS: usize = 20_000;

/// Standard Webhooks verification with the core verifier.
struct StandardWebhooks(Verifier);

impl Authenticate for StandardWebhooks {
    fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Authenticated, AuthError> {
        let verified = self
            .0
            .verify(headers, body, now)
            .map_err(|_| AuthError::Invalid)?;
        let mut auth = Authenticated::new(Identity::key("bench"));
        if let Some(id) = verified.id() {
            auth = auth.with_message_id(id);
        }
        Ok(auth)
    }
}

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
        .auth(StandardWebhooks(verifier))
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
    let size = serialize(0, &typed).len();
    eprintln!("event size: {size} bytes");
    let received = Arc::new(AtomicU64::new(0));
    let url = rt.block_on(start_receiver(received.clone()));

    let sender = rt.block_on(async {
        let transport = TransportBuilder::new()
            .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse().expect("cidr")))
            .max_response_body(4096)
            .build()
            .expect("transport");
        let endpoint = Endpoint::builder(&url)
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
    });

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
                    let mut receipts = Vec::with_capacity(EVENTS);
                    for i in 0..EVENTS {
                        receipts.push(sender.send(serialize(i, &typed)).await.expect("send"));
                    }
                    for r in receipts {
                        assert!(r.await.is_delivered());
                    }
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
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
