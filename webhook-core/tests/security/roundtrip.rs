//! Sign → verify for every preset, with one and two keys, over text and binary bodies.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
#[cfg(feature = "ed25519")]
use webhook_core::ed25519::Ed25519SigningKey;
#[cfg(feature = "ed25519")]
use webhook_core::{Algorithm, Key};
use webhook_core::{KeyRing, Scheme, Secret, SignatureFormat, Signer, Verifier, VerifyError};

const TS: u64 = 1_700_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(TS)
}

/// Two keys of the right kind for `scheme`: (signing ring, verifying ring).
fn rings(scheme: &Scheme, n: usize) -> (KeyRing, KeyRing) {
    let mut sign = KeyRing::new();
    let mut verify = KeyRing::new();
    for i in 0..n {
        let byte = u8::try_from(i).unwrap() + 1;
        match scheme.algorithm() {
            #[cfg(feature = "ed25519")]
            Algorithm::Ed25519 => {
                let k = Ed25519SigningKey::from_seed([byte; 32]);
                verify.push(Key::from(k.verifying_key()), None);
                sign.push(k, None);
            }
            _ => {
                let s = Secret::from_bytes(vec![byte; 32]).unwrap();
                sign.push(s.clone(), None);
                verify.push(s, None);
            }
        }
    }
    (sign, verify)
}

fn signing_presets() -> impl Iterator<Item = Scheme> {
    Scheme::presets()
        .into_iter()
        .filter(|s| s.algorithm().can_sign())
}

fn bodies() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        br#"[{"rule":"Terminal shell in container"}]"#.to_vec(),
        vec![0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28], // not UTF-8
        (0..=255u8).cycle().take(70_000).collect(),
    ]
}

#[test]
fn every_preset_round_trips() {
    let mut count = 0;
    for scheme in signing_presets() {
        for body in bodies() {
            let (sign_ring, verify_ring) = rings(&scheme, 1);
            let mut h = HeaderMap::new();
            Signer::new(scheme.clone(), &sign_ring)
                .unwrap()
                .sign("msg_2x", TS, &body, &mut h)
                .unwrap();
            assert_eq!(h.len(), scheme.headers().count(), "{}", scheme.name());
            let v = Verifier::new(scheme.clone(), &verify_ring).unwrap();
            let ok = v
                .verify(&h, &body, now())
                .unwrap_or_else(|e| panic!("{}: {e}", scheme.name()));
            assert_eq!(ok.key_index(), 0);
            let expect_id = scheme.id_header().map(|_| "msg_2x");
            assert_eq!(ok.id(), expect_id, "{}", scheme.name());
            let has_ts = scheme.signed_content().uses_timestamp();
            assert_eq!(ok.timestamp(), has_ts.then_some(TS), "{}", scheme.name());
            // the other verifier of the same scheme with an unrelated key refuses it
            let (_, other) = rings(&scheme, 3);
            let other = Verifier::new(
                scheme.clone(),
                &KeyRing::single(other.iter().nth(2).unwrap().key().clone()),
            )
            .unwrap();
            assert!(matches!(
                other.verify(&h, &body, now()),
                Err(VerifyError::NoMatchingSignature)
            ));
            count += 1;
        }
    }
    let expected_presets = if cfg!(feature = "ed25519") { 10 } else { 8 };
    assert_eq!(count, expected_presets * bodies().len());
}

#[test]
fn list_formats_sign_with_every_key_and_verify_with_any() {
    for scheme in signing_presets() {
        let (sign_ring, verify_ring) = rings(&scheme, 2);
        let mut h = HeaderMap::new();
        Signer::new(scheme.clone(), &sign_ring)
            .unwrap()
            .sign("m", TS, b"body", &mut h)
            .unwrap();
        let value = h[scheme.signature_header()].to_str().unwrap().to_owned();
        let entries = value.matches(scheme.prefix()).count();
        match scheme.format() {
            SignatureFormat::Single => {}
            _ => assert_eq!(entries, 2, "{}: {value}", scheme.name()),
        }
        // A receiver holding only the second key still accepts (rotation on the receiver side).
        let second = verify_ring.iter().nth(1).unwrap().key().clone();
        let only_second = KeyRing::single(second);
        let v = Verifier::new(scheme.clone(), &only_second).unwrap();
        let r = v.verify(&h, b"body", now());
        match scheme.format() {
            SignatureFormat::Single => assert!(r.is_err(), "single format carries key 0 only"),
            _ => assert_eq!(r.unwrap().key_index(), 0, "{}", scheme.name()),
        }
        // The full ring reports the first key that matched.
        let v = Verifier::new(scheme.clone(), &verify_ring).unwrap();
        assert_eq!(v.verify(&h, b"body", now()).unwrap().key_index(), 0);
    }
}

#[cfg(feature = "ed25519")]
#[test]
fn v1_and_v1a_share_one_header() {
    let secret = Secret::from_bytes(vec![9u8; 32]).unwrap();
    let ed = Ed25519SigningKey::from_seed([8u8; 32]);
    let mut h = HeaderMap::new();
    let v1 = Signer::new(
        Scheme::standard_webhooks(),
        &KeyRing::single(secret.clone()),
    )
    .unwrap();
    let v1a = Signer::new(
        Scheme::standard_webhooks_v1a(),
        &KeyRing::single(ed.clone()),
    )
    .unwrap();
    let a = v1.signature("m", TS, b"x").unwrap();
    let b = v1a.signature("m", TS, b"x").unwrap();
    v1.sign("m", TS, b"x", &mut h).unwrap();
    h.insert(
        "webhook-signature",
        format!("{} {}", b.to_str().unwrap(), a.to_str().unwrap())
            .parse()
            .unwrap(),
    );
    let ok1 = Verifier::new(Scheme::standard_webhooks(), &KeyRing::single(secret)).unwrap();
    assert!(ok1.verify(&h, b"x", now()).is_ok());
    let ok2 = Verifier::new(
        Scheme::standard_webhooks_v1a(),
        &KeyRing::single(ed.verifying_key()),
    )
    .unwrap();
    assert!(ok2.verify(&h, b"x", now()).is_ok());
    // whsk_/whpk_ text forms load into the same keys
    let parsed = Ed25519SigningKey::from_whsk(&ed.to_whsk()).unwrap();
    assert_eq!(parsed.verifying_key(), ed.verifying_key());
}
