//! Encoding batches of real Sysdig events (NDJSON and JSON array) against raw HMAC-SHA256 over
//! the same bytes: the goal is that encoding costs no more than hashing, so that encoding plus
//! signing runs at no less than half the throughput of raw HMAC.
//!
//! `encode_sign_*` is the whole per-batch work of a sender: encode with the endpoint's encoding
//! and build the signed request of one attempt (Standard Webhooks headers, custom header, user
//! agent) with `webhook_core::Endpoint`.
//!
//! Run: `cargo bench -p webhook-benches --bench encode -- --warm-up-time 1 --measurement-time 3`

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{Duration, UNIX_EPOCH};

use webhook_core::{
    Batcher, BatcherConfig, Encoding, Endpoint, Event, KeyRing, Scheme, Secret, SenderAuth,
    Verifier,
};

type HmacSha256 = Hmac<Sha256>;

/// The fixture events, each encoded once (as the SDK does when an event is created).
fn fixture_events() -> Vec<Event> {
    webhook_benches::SYSDIG_FIXTURE_NDJSON
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            Event::builder(format!("evt_{i}"), "policy")
                .json_bytes(line.as_bytes().to_vec())
                .expect("fixture line is one JSON value")
        })
        .collect()
}

/// `count` events cycling through the fixture.
fn batch_of(events: &[Event], count: usize) -> Vec<Event> {
    events.iter().cycle().take(count).cloned().collect()
}

/// How many fixture events make an NDJSON body of about `bytes`.
fn count_for_bytes(events: &[Event], bytes: usize) -> usize {
    let avg = events.iter().map(|e| e.len() + 1).sum::<usize>() / events.len();
    bytes / avg
}

fn hmac(key: &[u8], body: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

fn bench_encode(c: &mut Criterion) {
    let events = fixture_events();
    assert_eq!(events.len(), 8);
    let key = b"whsec_benchmark_key_0123456789abcdef";
    let sizes = [
        ("100_events", 100),
        ("1MiB", count_for_bytes(&events, 1 << 20)),
    ];

    for (label, count) in sizes {
        let batch = batch_of(&events, count);
        let ndjson = Encoding::Ndjson.encode(&batch).expect("encode");
        let array = Encoding::JsonArray.encode(&batch).expect("encode");
        // Correctness: the bodies are what they claim to be.
        assert_eq!(ndjson.iter().filter(|&&b| b == b'\n').count(), count);
        let parsed: Vec<serde_json::Value> = serde_json::from_slice(&array).expect("JSON array");
        assert_eq!(parsed.len(), count);
        assert_eq!(parsed[0]["id"], "17dec715376910362c8c3f62a4ceda2e");

        // The sender's endpoints, signing with Standard Webhooks.
        let ring = KeyRing::single(Secret::from_bytes(key.to_vec()).expect("key"));
        let endpoint = |encoding| {
            Endpoint::builder("https://siem.example.com/hooks/sysdig")
                .auth(SenderAuth::signature_with(Scheme::standard_webhooks(), &ring).expect("auth"))
                .header("X-Tenant", "bench")
                .encoding(encoding)
                .build()
                .expect("endpoint")
        };
        let ndjson_endpoint = endpoint(Encoding::Ndjson);
        let array_endpoint = endpoint(Encoding::JsonArray);
        let at = UNIX_EPOCH + Duration::from_secs(1_720_031_001);
        // Correctness: the signed request verifies, over exactly the encoded bytes.
        for ep in [&ndjson_endpoint, &array_endpoint] {
            let body = ep.encode(&batch).expect("encode");
            let request = ep.request("batch_0", &body, at).expect("request");
            Verifier::new(Scheme::standard_webhooks(), &ring)
                .expect("verifier")
                .verify(request.headers(), request.body(), at)
                .expect("signed request verifies");
        }

        let mut group = c.benchmark_group(format!("encode_{label}"));
        group.throughput(Throughput::Bytes(ndjson.len() as u64));
        group.bench_function(BenchmarkId::new("ndjson", count), |b| {
            b.iter(|| Encoding::Ndjson.encode(black_box(&batch)).expect("encode"))
        });
        group.bench_function(BenchmarkId::new("hmac_sha256_raw_ndjson", count), |b| {
            b.iter(|| hmac(key, black_box(&ndjson)))
        });
        group.bench_function(BenchmarkId::new("encode_sign_ndjson", count), |b| {
            b.iter(|| {
                let body = ndjson_endpoint.encode(black_box(&batch)).expect("encode");
                ndjson_endpoint
                    .request("batch_0", &body, at)
                    .expect("request")
            })
        });
        group.throughput(Throughput::Bytes(array.len() as u64));
        group.bench_function(BenchmarkId::new("json_array", count), |b| {
            b.iter(|| {
                Encoding::JsonArray
                    .encode(black_box(&batch))
                    .expect("encode")
            })
        });
        group.bench_function(BenchmarkId::new("hmac_sha256_raw_json_array", count), |b| {
            b.iter(|| hmac(key, black_box(&array)))
        });
        group.bench_function(BenchmarkId::new("encode_sign_json_array", count), |b| {
            b.iter(|| {
                let body = array_endpoint.encode(black_box(&batch)).expect("encode");
                array_endpoint
                    .request("batch_0", &body, at)
                    .expect("request")
            })
        });
        // The whole batching path: push every event, seal, encode.
        group.bench_function(
            BenchmarkId::new("batcher_push_poll_encode_array", count),
            |b| {
                let config = BatcherConfig::builder()
                    .max_events(count)
                    .max_bytes(array.len())
                    .buffer_limits(count, array.len())
                    .build()
                    .expect("config");
                b.iter(|| {
                    let now = Instant::now();
                    let mut batcher = Batcher::new(config.clone());
                    for e in &batch {
                        batcher.push(e.clone(), now).expect("fits");
                    }
                    let out = batcher.poll_batch(now).expect("full batch");
                    assert_eq!(out.len(), count);
                    out.encode()
                })
            },
        );
        group.finish();
    }
}

criterion_group!(benches, bench_encode);
criterion_main!(benches);
