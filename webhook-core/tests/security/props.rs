//! Property tests: no input panics the verifier, and any single-bit change is refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
#[cfg(feature = "ed25519")]
use webhook_core::Key;
#[cfg(feature = "ed25519")]
use webhook_core::ed25519::Ed25519SigningKey;
use webhook_core::{Algorithm, KeyRing, Scheme, Secret, Signer, TimestampSource, Verifier};

const TS: u64 = 1_700_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(TS)
}

fn keys(scheme: &Scheme) -> (KeyRing, KeyRing) {
    match scheme.algorithm() {
        #[cfg(feature = "ed25519")]
        Algorithm::Ed25519 => {
            let k = Ed25519SigningKey::from_seed([5u8; 32]);
            (
                KeyRing::single(k.clone()),
                KeyRing::single(Key::from(k.verifying_key())),
            )
        }
        _ => {
            let s = Secret::from_bytes(vec![7u8; 32]).unwrap();
            (KeyRing::single(s.clone()), KeyRing::single(s))
        }
    }
}

fn verifiers() -> Vec<Verifier> {
    Scheme::presets()
        .into_iter()
        .map(|s| {
            let (_, v) = keys(&s);
            Verifier::new(s, &v).unwrap()
        })
        .collect()
}

const NAMES: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "stripe-signature",
    "x-hub-signature-256",
    "x-hub-signature",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-zm-signature",
    "x-zm-request-timestamp",
    "x-shopify-hmac-sha256",
    "x-soveren-signature",
    "x-signature-ed25519",
    "x-signature-timestamp",
];

/// Header values that look like signatures often enough to reach the deep code paths.
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "(v1,|v1a,|v0=|sha256=|sha1=|t=[0-9]{0,12},v1=|)[A-Za-z0-9+/=, ]{0,140}"
            .prop_map(String::into_bytes),
        "[0-9]{0,25}".prop_map(String::into_bytes),
        "(v1,[A-Za-z0-9+/]{43}= ?){1,4}".prop_map(String::into_bytes),
        "(t=[0-9]{10},)?(v1=[0-9a-f]{64},?){0,3}".prop_map(String::into_bytes),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(usize, Vec<u8>)>> {
    proptest::collection::vec((0..NAMES.len(), value()), 0..8)
}

fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if !out.is_empty() {
        let bit = bit % (out.len() * 8);
        out[bit / 8] ^= 1 << (bit % 8);
    }
    out
}

fn sign(scheme: &Scheme, id: &str, body: &[u8]) -> HeaderMap {
    let (s, _) = keys(scheme);
    let mut h = HeaderMap::new();
    Signer::new(scheme.clone(), &s)
        .unwrap()
        .sign(id, TS, body, &mut h)
        .unwrap();
    h
}

/// Replaces header `name` with `bytes` flipped at `bit`; `None` if HTTP cannot carry it.
fn flipped(h: &HeaderMap, name: &HeaderName, bit: usize) -> Option<HeaderMap> {
    let value = HeaderValue::from_bytes(&flip(h.get(name)?.as_bytes(), bit)).ok()?;
    let mut out = h.clone();
    out.insert(name.clone(), value);
    Some(out)
}

fn check_flips(scheme: &Scheme, id: &str, body: &[u8], bit: usize) -> Result<(), TestCaseError> {
    let (_, vr) = keys(scheme);
    let v = Verifier::new(scheme.clone(), &vr).unwrap();
    let h = sign(scheme, id, body);
    prop_assert!(v.verify(&h, body, now()).is_ok(), "{}", scheme.name());
    if !body.is_empty() {
        prop_assert!(v.verify(&h, &flip(body, bit), now()).is_err());
    }
    let mut names: Vec<&HeaderName> = vec![scheme.signature_header()];
    names.extend(scheme.id_header());
    if let TimestampSource::Header(t) = scheme.timestamp_source() {
        names.push(t);
    }
    for name in names {
        if let Some(bad) = flipped(&h, name, bit) {
            prop_assert!(
                v.verify(&bad, body, now()).is_err(),
                "{}: flip of {} bit {} accepted",
                scheme.name(),
                name,
                bit
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn verify_never_panics(hs in headers(), body in proptest::collection::vec(any::<u8>(), 0..300), secs in any::<u64>()) {
        let mut map = HeaderMap::new();
        for (i, v) in hs {
            if let Ok(v) = HeaderValue::from_bytes(&v) {
                map.append(NAMES[i], v);
            }
        }
        let now = UNIX_EPOCH.checked_add(Duration::from_secs(secs)).unwrap_or(UNIX_EPOCH);
        for v in verifiers() {
            let _ = v.verify(&map, &body, now);
            let _ = v.clone().ignore_timestamp().verify(&map, &body, now);
        }
    }

    #[test]
    fn any_single_bit_flip_fails_hmac(
        id in "[A-Za-z0-9_-]{1,40}",
        body in proptest::collection::vec(any::<u8>(), 0..512),
        bit in any::<usize>(),
    ) {
        for scheme in Scheme::presets().iter().filter(|s| s.algorithm() == Algorithm::HmacSha256) {
            check_flips(scheme, &id, &body, bit)?;
        }
    }
}

#[cfg(feature = "ed25519")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_single_bit_flip_fails_ed25519(
        id in "[A-Za-z0-9_-]{1,40}",
        body in proptest::collection::vec(any::<u8>(), 0..128),
        bit in any::<usize>(),
    ) {
        for scheme in [Scheme::standard_webhooks_v1a(), Scheme::discord()] {
            check_flips(&scheme, &id, &body, bit)?;
        }
    }
}

#[test]
fn every_bit_of_the_standard_webhooks_vector_matters() {
    // Exhaustive over the signature header of the published vector.
    let ring =
        KeyRing::single(Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap());
    let v = Verifier::new(Scheme::standard_webhooks(), &ring).unwrap();
    let body = br#"{"test": 2432232314}"#;
    let mut h = HeaderMap::new();
    h.insert(
        "webhook-id",
        HeaderValue::from_static("msg_p5jXN8AQM9LWM0D4loKWxJek"),
    );
    h.insert("webhook-timestamp", HeaderValue::from_static("1614265330"));
    h.insert(
        "webhook-signature",
        HeaderValue::from_static("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    );
    let now = UNIX_EPOCH + Duration::from_secs(1614265330);
    assert!(v.verify(&h, body, now).is_ok());
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let name = HeaderName::from_static(name);
        let len = h[&name].len();
        for bit in 0..len * 8 {
            if let Some(bad) = flipped(&h, &name, bit) {
                assert!(v.verify(&bad, body, now).is_err(), "{name} bit {bit}");
            }
        }
    }
    for bit in 0..body.len() * 8 {
        assert!(v.verify(&h, &flip(body, bit), now).is_err());
    }
}
