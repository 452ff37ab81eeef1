//! Parsing a ~1 MiB NDJSON batch of the real Sysdig fixture events into typed
//! `webhook_payloads::sysdig::SysdigEvent`s versus into `serde_json::Value`, in the same run;
//! and writing the typed events back with `serde_json` versus the SDK's `ToJson`.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use webhook_benches::SYSDIG_FIXTURE_NDJSON;
use webhook_core::json::ToJson;
use webhook_payloads::sysdig::{self, SysdigEvent};

/// The fixture repeated to about 1 MiB.
fn batch() -> String {
    let mut s = String::with_capacity(1 << 20 | 4096);
    while s.len() < 1 << 20 {
        s.push_str(SYSDIG_FIXTURE_NDJSON);
        if !s.ends_with('\n') {
            s.push('\n');
        }
    }
    s
}

/// The fastest plain-`serde_json` way to read NDJSON into `Value`s: its stream deserializer
/// (no line splitting at all).
fn parse_value(body: &[u8]) -> Vec<Value> {
    serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("fixture lines are JSON")
}

fn bench(c: &mut Criterion) {
    let body = batch();
    let lines = body.lines().count();

    // Correctness before timing: same records, exact timestamps, the right variants.
    let typed = sysdig::parse_ndjson(body.as_bytes()).expect("typed parse");
    let values = parse_value(body.as_bytes());
    assert_eq!(typed.len(), lines);
    assert_eq!(values.len(), lines);
    for (t, v) in typed.iter().zip(&values) {
        assert_eq!(t.timestamp_ns(), v["timestamp"].as_u64());
        assert_eq!(t.event_type(), v["type"].as_str());
        assert!(!matches!(t, SysdigEvent::Unknown(_)));
    }
    assert_eq!(typed[0].timestamp_ns(), Some(1_720_031_001_639_981_110));

    let mut g = c.benchmark_group("sysdig_ndjson_1mib");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("typed", |b| {
        b.iter(|| sysdig::parse_ndjson(black_box(body.as_bytes())).map(|v| v.len()))
    });
    g.bench_function("typed_owned", |b| {
        b.iter(|| {
            sysdig::parse_ndjson(black_box(body.as_bytes()))
                .map(|v| v.into_iter().map(SysdigEvent::into_owned).count())
        })
    });
    g.bench_function("value", |b| {
        b.iter(|| parse_value(black_box(body.as_bytes())).len())
    });
    g.finish();

    // The other direction: the same events written back as NDJSON, with serde_json and with
    // the SDK's serde-free writer (`ToJson`, what `EventBuilder::json` uses).
    let mut g = c.benchmark_group("sysdig_write_1mib");
    g.throughput(Throughput::Bytes(body.len() as u64));
    let mut out = Vec::with_capacity(body.len() + 4096);
    g.bench_function("serde_json", |b| {
        b.iter(|| {
            out.clear();
            for ev in &typed {
                serde_json::to_writer(&mut out, ev).expect("write");
                out.push(b'\n');
            }
            out.len()
        })
    });
    g.bench_function("to_json", |b| {
        b.iter(|| {
            out.clear();
            for ev in &typed {
                ev.write_json(&mut out);
                out.push(b'\n');
            }
            out.len()
        })
    });
    out.clear();
    for ev in &typed {
        ev.write_json(&mut out);
        out.push(b'\n');
    }
    let mut via_serde = Vec::new();
    for ev in &typed {
        serde_json::to_writer(&mut via_serde, ev).expect("write");
        via_serde.push(b'\n');
    }
    assert_eq!(out, via_serde, "the two writers agree");
    g.finish();

    // The shape of the end-to-end bench: one request body of 500 copies of the ~1 KiB policy
    // event, split and parsed into borrowing typed events as the receiver's handler does.
    let policy = SYSDIG_FIXTURE_NDJSON
        .lines()
        .find(|l| l.len() < 1536 && l.contains(r#""type":"policy""#))
        .expect("a ~1 KiB policy event");
    let request: String = std::iter::repeat_n(policy, 500)
        .map(|l| format!("{l}\n"))
        .collect();
    let (_, events) =
        sysdig::parse_batch(Some("application/x-ndjson"), request.as_bytes()).expect("parses");
    assert_eq!(events.len(), 500);
    assert!(events.iter().all(|e| matches!(e, SysdigEvent::Policy(_))));
    let mut g = c.benchmark_group("sysdig_policy_request_500");
    g.throughput(Throughput::Bytes(request.len() as u64));
    g.bench_function("typed_parse_batch", |b| {
        b.iter(|| {
            sysdig::parse_batch(Some("application/x-ndjson"), black_box(request.as_bytes()))
                .map(|(_, v)| v.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
