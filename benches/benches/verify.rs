//! Verify and sign a Standard Webhooks message (1 KiB and 64 KiB bodies), side by side:
//! webhook-core, `svix::webhooks::Webhook` 2.x, `standardwebhooks::Webhook` 1.x, and the floor,
//! raw `hmac` + `sha2` over the same bytes (`new_from_slice(key)` + update(id . ts . body) +
//! finalize, per iteration).
//!
//! Run: `cargo bench -p webhook-benches --bench verify -- --warm-up-time 1 --measurement-time 3`
//!

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use webhook_core::{KeyRing, Scheme, Secret, Signer, Verifier};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";

/// A JSON-ish, valid UTF-8 body of exactly `len` bytes (the peers only accept UTF-8).
fn body(len: usize) -> Vec<u8> {
    let mut b = br#"{"events":["#.to_vec();
    let filler = br#"{"rule":"Terminal shell in container","priority":"warning"},"#;
    while b.len() + filler.len() + 2 <= len {
        b.extend_from_slice(filler);
    }
    while b.len() + 2 < len {
        b.push(b' ');
    }
    b.extend_from_slice(b"]}");
    b.truncate(len);
    b
}

fn raw_hmac(key: &[u8], id: &[u8], ts: &[u8], body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(id);
    mac.update(b".");
    mac.update(ts);
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

fn bench(c: &mut Criterion) {
    let secret = Secret::from_whsec(SECRET).expect("valid secret");
    let key = secret.expose_secret().to_vec();
    let ring = KeyRing::single(secret);
    let signer = Signer::new(Scheme::standard_webhooks(), &ring).expect("signer");
    let verifier = Verifier::new(Scheme::standard_webhooks(), &ring).expect("verifier");
    let svix = svix::webhooks::Webhook::new(SECRET).expect("svix secret");
    let stdwh = standardwebhooks::Webhook::new(SECRET).expect("standardwebhooks secret");

    for size in [1024usize, 64 * 1024] {
        let body = body(size);
        assert_eq!(body.len(), size);
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let ts_text = ts.to_string();
        let mut headers = HeaderMap::new();
        signer.sign(MSG_ID, ts, &body, &mut headers).expect("sign");

        // Correctness first: all four agree, and each accepts the others' signature.
        let raw = raw_hmac(&key, MSG_ID.as_bytes(), ts_text.as_bytes(), &body);
        let expected = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        assert_eq!(headers["webhook-signature"], expected.as_str());
        let ts_i64 = i64::try_from(ts).expect("timestamp fits i64");
        assert_eq!(
            svix.sign(MSG_ID, ts_i64, &body).expect("svix sign"),
            expected
        );
        assert_eq!(
            stdwh.sign(MSG_ID, ts_i64, &body).expect("stdwh sign"),
            expected
        );
        svix.verify(&body, &headers).expect("svix verifies ours");
        stdwh
            .verify(&body, &headers)
            .expect("standardwebhooks verifies ours");
        let ok = verifier
            .verify(&headers, &body, SystemTime::now())
            .expect("we verify");
        assert_eq!(ok.id(), Some(MSG_ID));
        let mut tampered = body.clone();
        tampered[size / 2] ^= 1;
        assert!(
            verifier
                .verify(&headers, &tampered, SystemTime::now())
                .is_err()
        );

        let label = if size == 1024 { "1KiB" } else { "64KiB" };
        let mut g = c.benchmark_group(format!("verify/{label}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::from_parameter("webhook-core"), |b| {
            b.iter(|| {
                let ok = verifier.verify(black_box(&headers), black_box(&body), SystemTime::now());
                assert!(ok.is_ok());
                ok.map(|v| v.key_index()).unwrap_or(usize::MAX)
            })
        });
        // The same call with `now` read once outside the loop: the verifier's own cost, without
        // the clock read that the peers (and the line above) pay per message.
        let fixed_now = SystemTime::now();
        g.bench_function(BenchmarkId::from_parameter("webhook-core-fixed-now"), |b| {
            b.iter(|| {
                let ok =
                    verifier.verify(black_box(&headers), black_box(&body), black_box(fixed_now));
                assert!(ok.is_ok());
                ok.map(|v| v.key_index()).unwrap_or(usize::MAX)
            })
        });
        g.bench_function(BenchmarkId::from_parameter("svix"), |b| {
            b.iter(|| {
                let ok = svix.verify(black_box(&body), black_box(&headers));
                assert!(ok.is_ok());
            })
        });
        g.bench_function(BenchmarkId::from_parameter("standardwebhooks"), |b| {
            b.iter(|| {
                let ok = stdwh.verify(black_box(&body), black_box(&headers));
                assert!(ok.is_ok());
            })
        });
        g.bench_function(BenchmarkId::from_parameter("raw-hmac-sha2"), |b| {
            b.iter(|| {
                let tag = raw_hmac(
                    black_box(&key),
                    black_box(MSG_ID.as_bytes()),
                    black_box(ts_text.as_bytes()),
                    black_box(&body),
                );
                assert_eq!(tag, raw);
                tag
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("sign/{label}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::from_parameter("webhook-core"), |b| {
            let mut out = HeaderMap::with_capacity(4);
            b.iter(|| {
                signer
                    .sign(black_box(MSG_ID), black_box(ts), black_box(&body), &mut out)
                    .expect("sign");
                assert_eq!(out["webhook-signature"], expected.as_str());
            })
        });
        g.bench_function(BenchmarkId::from_parameter("svix"), |b| {
            b.iter(|| {
                let s = svix
                    .sign(black_box(MSG_ID), black_box(ts_i64), black_box(&body))
                    .expect("sign");
                assert_eq!(s.len(), expected.len());
                s
            })
        });
        g.bench_function(BenchmarkId::from_parameter("standardwebhooks"), |b| {
            b.iter(|| {
                let s = stdwh
                    .sign(black_box(MSG_ID), black_box(ts_i64), black_box(&body))
                    .expect("sign");
                assert_eq!(s.len(), expected.len());
                s
            })
        });
        g.bench_function(BenchmarkId::from_parameter("raw-hmac-sha2"), |b| {
            b.iter(|| {
                raw_hmac(
                    black_box(&key),
                    black_box(MSG_ID.as_bytes()),
                    black_box(ts_text.as_bytes()),
                    black_box(&body),
                )
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
