//! Verification rules: error reasons, rotation, tolerance edges, multi-signature headers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use webhook_core::{
    KeyRing, KeyRingError, Scheme, Secret, Signer, TimestampCheck, Tolerance, Verifier, VerifyError,
};

const TS: u64 = 1_700_000_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn secret(b: u8) -> Secret {
    Secret::from_bytes(vec![b; 32]).unwrap()
}

fn signed(ring: &KeyRing, ts: u64, body: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    Signer::new(Scheme::standard_webhooks(), ring)
        .unwrap()
        .sign("msg_1", ts, body, &mut h)
        .unwrap();
    h
}

fn verifier(ring: &KeyRing) -> Verifier {
    Verifier::new(Scheme::standard_webhooks(), ring).unwrap()
}

#[test]
fn rotation_old_key_verifies_until_expiry_not_after() {
    let expiry = at(TS + 1000);
    let old = secret(1);
    let new = secret(2);
    // The sender still signs with the old key only.
    let h_old = signed(&KeyRing::single(old.clone()), TS + 999, b"e");
    let h_new = signed(&KeyRing::single(new.clone()), TS + 1000, b"e");
    let receiver = KeyRing::new().with_key_until(old, expiry).with_key(new);
    let v = verifier(&receiver);
    let ok = v.verify(&h_old, b"e", at(TS + 999)).unwrap();
    assert_eq!(ok.key_index(), 0);
    // at the expiry instant the old key is dead
    assert_eq!(
        v.verify(&h_old, b"e", at(TS + 1000)),
        Err(VerifyError::NoMatchingSignature)
    );
    assert_eq!(
        v.verify(&h_new, b"e", at(TS + 1000)).unwrap().key_index(),
        1
    );
    // a ring whose every key expired says so
    let dead = KeyRing::new().with_key_until(secret(1), expiry);
    assert_eq!(
        verifier(&dead).verify(&h_old, b"e", at(TS + 1000)),
        Err(VerifyError::NoLiveKey)
    );
}

#[test]
fn signer_uses_keys_live_at_the_signing_timestamp() {
    let ring = KeyRing::new()
        .with_key_until(secret(1), at(TS))
        .with_key(secret(2));
    let before = signed(&ring, TS - 1, b"e");
    let after = signed(&ring, TS, b"e");
    let count = |h: &HeaderMap| h["webhook-signature"].to_str().unwrap().split(' ').count();
    assert_eq!(count(&before), 2);
    assert_eq!(count(&after), 1);
}

#[test]
fn tolerance_edges_are_inclusive_at_300_seconds() {
    let ring = KeyRing::single(secret(3));
    let h = signed(&ring, TS, b"x");
    let v = verifier(&ring);
    assert_eq!(
        v.timestamp_check(),
        TimestampCheck::Enforce(Tolerance::DEFAULT)
    );
    assert!(v.verify(&h, b"x", at(TS + 300)).is_ok());
    assert_eq!(
        v.verify(&h, b"x", at(TS + 301)),
        Err(VerifyError::TooOld {
            age_secs: 301,
            tolerance_secs: 300
        })
    );
    assert!(v.verify(&h, b"x", at(TS - 300)).is_ok());
    assert_eq!(
        v.verify(&h, b"x", at(TS - 301)),
        Err(VerifyError::InFuture {
            ahead_secs: 301,
            tolerance_secs: 300
        })
    );
    // `now` is truncated to whole seconds: 300.999 s is still 300 s.
    let almost = at(TS + 300) + Duration::from_millis(999);
    assert!(v.verify(&h, b"x", almost).is_ok());
    assert!(v.verify(&h, b"x", at(TS + 301)).unwrap_err().is_timestamp());
}

#[test]
fn tolerance_is_set_separately_and_can_be_ignored() {
    let ring = KeyRing::single(secret(3));
    let h = signed(&ring, TS, b"x");
    let v = verifier(&ring).with_tolerance(Tolerance {
        past: Duration::from_secs(10),
        future: Duration::from_secs(0),
    });
    assert!(v.verify(&h, b"x", at(TS + 10)).is_ok());
    assert!(v.verify(&h, b"x", at(TS + 11)).is_err());
    assert!(v.verify(&h, b"x", at(TS)).is_ok());
    assert!(matches!(
        v.verify(&h, b"x", at(TS - 1)),
        Err(VerifyError::InFuture { .. })
    ));
    let ignore = v.ignore_timestamp();
    assert!(ignore.verify(&h, b"x", UNIX_EPOCH).is_ok());
    assert!(ignore.verify(&h, b"x", at(u64::MAX / 4)).is_ok());
    // ignoring the window does not ignore the signature over the timestamp
    let mut h2 = h.clone();
    h2.insert("webhook-timestamp", HeaderValue::from(TS + 1));
    assert_eq!(
        ignore.verify(&h2, b"x", at(TS)),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn every_reason_has_its_variant() {
    let ring = KeyRing::single(secret(4));
    let v = verifier(&ring);
    let good = signed(&ring, TS, b"b");
    let name = |s: &'static str| HeaderName::from_static(s);
    let with = |n: &'static str, val: &str| {
        let mut h = good.clone();
        h.insert(n, HeaderValue::from_str(val).unwrap());
        v.verify(&h, b"b", at(TS)).map(|_| ())
    };
    let without = |n: &'static str| {
        let mut h = good.clone();
        h.remove(n);
        v.verify(&h, b"b", at(TS)).map(|_| ())
    };
    for n in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        assert_eq!(
            without(n),
            Err(VerifyError::MissingHeader { header: name(n) })
        );
    }
    for bad in [
        "",
        "-1",
        "1.5",
        "17e8",
        " 1700000000",
        "99999999999999999999",
    ] {
        assert!(
            matches!(
                with("webhook-timestamp", bad),
                Err(VerifyError::MalformedHeader { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        with("webhook-id", ""),
        Err(VerifyError::MalformedHeader { .. })
    ));
    assert!(matches!(
        with("webhook-signature", ""),
        Err(VerifyError::MalformedHeader { .. })
    ));
    assert_eq!(
        with("webhook-signature", "v2,AAAA"),
        Err(VerifyError::UnsupportedVersion {
            header: name("webhook-signature")
        })
    );
    assert!(matches!(
        with("webhook-signature", "v1,not-base64!"),
        Err(VerifyError::MalformedHeader { .. })
    ));
    assert!(matches!(
        with("webhook-signature", "v1,AAAA"), // valid base64, wrong length
        Err(VerifyError::MalformedHeader { .. })
    ));
    let zeros = format!("v1,{}", "A".repeat(43) + "=");
    assert_eq!(
        with("webhook-signature", &zeros),
        Err(VerifyError::NoMatchingSignature)
    );
    // a garbage entry does not hide a good one, in any position
    let sig = good["webhook-signature"].to_str().unwrap().to_owned();
    assert!(with("webhook-signature", &format!("v1,@@@ v2,x {sig}")).is_ok());
    assert!(with("webhook-signature", &format!("{sig} v1,@@@")).is_ok());
    assert!(with("webhook-signature", &format!("{zeros}  {sig}")).is_ok());
    // display never leaks anything but the header name and reason
    let e = without("webhook-id").unwrap_err();
    assert_eq!(e.to_string(), "missing header `webhook-id`");
}

#[test]
fn hex_signatures_must_be_lowercase() {
    let ring = KeyRing::single(secret(5));
    let mut h = HeaderMap::new();
    Signer::new(Scheme::github(), &ring)
        .unwrap()
        .sign("", 0, b"b", &mut h)
        .unwrap();
    let v = Verifier::new(Scheme::github(), &ring).unwrap();
    assert!(v.verify(&h, b"b", UNIX_EPOCH).is_ok());
    let upper = h["x-hub-signature-256"]
        .to_str()
        .unwrap()
        .replace("sha256=", "")
        .to_ascii_uppercase();
    h.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&format!("sha256={upper}")).unwrap(),
    );
    assert!(matches!(
        v.verify(&h, b"b", UNIX_EPOCH),
        Err(VerifyError::MalformedHeader { .. })
    ));
    h.insert("x-hub-signature-256", HeaderValue::from_static("sha1=abcd"));
    assert!(matches!(
        v.verify(&h, b"b", UNIX_EPOCH),
        Err(VerifyError::UnsupportedVersion { .. })
    ));
}

#[test]
fn stripe_timestamp_entry_rules() {
    let ring = KeyRing::single(secret(6));
    let v = Verifier::new(Scheme::stripe(), &ring).unwrap();
    let mut h = HeaderMap::new();
    Signer::new(Scheme::stripe(), &ring)
        .unwrap()
        .sign("", TS, b"b", &mut h)
        .unwrap();
    assert!(v.verify(&h, b"b", at(TS)).is_ok());
    let sig = h["stripe-signature"].to_str().unwrap().to_owned();
    let v1 = sig.split(',').nth(1).unwrap().to_owned();
    let check = |value: &str| {
        let mut h = HeaderMap::new();
        h.insert("stripe-signature", HeaderValue::from_str(value).unwrap());
        v.verify(&h, b"b", at(TS)).map(|_| ())
    };
    assert!(
        check(&format!("{v1},t={TS}")).is_ok(),
        "order does not matter"
    );
    assert!(
        check(&format!("t={TS}, {v1}")).is_ok(),
        "spaces after commas"
    );
    assert!(matches!(
        check(&v1),
        Err(VerifyError::MalformedHeader { .. })
    ));
    assert!(matches!(
        check(&format!("t={TS},t={TS},{v1}")),
        Err(VerifyError::MalformedHeader { .. })
    ));
    assert!(matches!(
        check(&format!("t={},{v1}", TS + 1)),
        Err(VerifyError::NoMatchingSignature)
    ));
}

#[test]
fn ring_and_scheme_mismatches_are_typed() {
    assert_eq!(
        Verifier::new(Scheme::github(), &KeyRing::new()).unwrap_err(),
        KeyRingError::Empty
    );
    assert!(matches!(
        Signer::new(Scheme::github_legacy_sha1(), &KeyRing::single(secret(1))),
        Err(KeyRingError::VerifyOnlyAlgorithm { .. })
    ));
    #[cfg(feature = "ed25519")]
    {
        use webhook_core::ed25519::Ed25519SigningKey;
        let public = Ed25519SigningKey::from_seed([1; 32]).verifying_key();
        assert!(matches!(
            Signer::new(Scheme::discord(), &KeyRing::single(public)),
            Err(KeyRingError::WrongKeyKind { index: 0, .. })
        ));
        assert!(matches!(
            Verifier::new(Scheme::discord(), &KeyRing::single(secret(1))),
            Err(KeyRingError::WrongKeyKind { index: 0, .. })
        ));
        assert!(matches!(
            Verifier::new(
                Scheme::github(),
                &KeyRing::new().with_key(secret(1)).with_key(public)
            ),
            Err(KeyRingError::WrongKeyKind { index: 1, .. })
        ));
    }
}

#[test]
fn verify_works_with_only_a_header_map() {
    // A receiver that has no `http::request::Parts` (e.g. a queue consumer) builds the map itself.
    let ring = KeyRing::single(secret(7));
    let h = signed(&ring, TS, b"q");
    let mut rebuilt = HeaderMap::new();
    for (k, val) in &h {
        rebuilt.append(k.clone(), val.clone());
    }
    assert!(verifier(&ring).verify(&rebuilt, b"q", at(TS)).is_ok());
}
