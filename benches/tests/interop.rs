//! Interop with the reference Rust implementations, `standardwebhooks` 1.x and `svix` 2.x:
//! their signatures are verified by ours, ours by theirs.

use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use webhook_core::{KeyRing, Scheme, Secret, Signer, Verifier, VerifyError};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn ring() -> KeyRing {
    KeyRing::single(Secret::from_whsec(SECRET).expect("valid secret"))
}

fn bodies() -> Vec<Vec<u8>> {
    let sysdig = webhook_benches::SYSDIG_FIXTURE_NDJSON;
    let mut v: Vec<Vec<u8>> = sysdig.lines().map(|l| l.as_bytes().to_vec()).collect();
    v.push(format!("[{}]", sysdig.lines().collect::<Vec<_>>().join(",")).into_bytes());
    v.push(Vec::new());
    v.push("ünïcødé ✓".as_bytes().to_vec());
    v
}

/// Headers carrying a peer's `v1,<b64>` signature.
fn peer_headers(id_name: &'static str, prefix: &str, ts: u64, signature: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(id_name, HeaderValue::from_static(ID));
    h.insert(
        http::HeaderName::from_bytes(format!("{prefix}-timestamp").as_bytes()).expect("name"),
        HeaderValue::from(ts),
    );
    h.insert(
        http::HeaderName::from_bytes(format!("{prefix}-signature").as_bytes()).expect("name"),
        HeaderValue::from_str(signature).expect("ascii"),
    );
    h
}

#[test]
fn standardwebhooks_signatures_verify_with_ours() {
    let peer = standardwebhooks::Webhook::new(SECRET).expect("peer secret");
    let ours = Verifier::new(Scheme::standard_webhooks(), &ring()).expect("verifier");
    let ts = now_secs();
    for body in bodies() {
        let sig = peer
            .sign(ID, i64::try_from(ts).expect("fits"), &body)
            .expect("peer signs UTF-8");
        let h = peer_headers("webhook-id", "webhook", ts, &sig);
        let ok = ours
            .verify(&h, &body, SystemTime::now())
            .expect("ours accepts peer's");
        assert_eq!(ok.id(), Some(ID));
        let mut tampered = body.clone();
        tampered.push(b' ');
        assert_eq!(
            ours.verify(&h, &tampered, SystemTime::now()).map(|_| ()),
            Err(VerifyError::NoMatchingSignature)
        );
    }
}

#[test]
fn our_signatures_verify_with_standardwebhooks() {
    let peer = standardwebhooks::Webhook::new(SECRET).expect("peer secret");
    // Two keys: the peer holds only the first and must find its entry in our list.
    let ring = ring().with_key(Secret::from_bytes(vec![1u8; 32]).expect("secret"));
    let signer = Signer::new(Scheme::standard_webhooks(), &ring).expect("signer");
    for body in bodies() {
        let mut h = HeaderMap::new();
        signer.sign(ID, now_secs(), &body, &mut h).expect("sign");
        assert_eq!(
            h["webhook-signature"]
                .to_str()
                .expect("ascii")
                .split(' ')
                .count(),
            2
        );
        peer.verify(&body, &h).expect("peer accepts ours");
        assert!(peer.verify(b"other", &h).is_err());
    }
}

#[test]
fn binary_bodies_are_ours_alone() {
    // The peers refuse non-UTF-8 bodies outright (documented limitation); we sign and verify them.
    let body = [0xffu8, 0x00, 0xc3, 0x28];
    let peer = standardwebhooks::Webhook::new(SECRET).expect("peer secret");
    assert!(peer.sign(ID, 1, &body).is_err());
    let mut h = HeaderMap::new();
    let ts = now_secs();
    Signer::new(Scheme::standard_webhooks(), &ring())
        .expect("signer")
        .sign(ID, ts, &body, &mut h)
        .expect("sign");
    assert!(
        Verifier::new(Scheme::standard_webhooks(), &ring())
            .expect("verifier")
            .verify(&h, &body, SystemTime::now())
            .is_ok()
    );
}

mod svix_peer {
    use super::*;

    #[test]
    fn svix_signatures_verify_with_ours_both_header_families() {
        let peer = svix::webhooks::Webhook::new(SECRET).expect("peer secret");
        let ts = now_secs();
        for body in bodies() {
            let sig = peer
                .sign(ID, i64::try_from(ts).expect("fits"), &body)
                .expect("peer signs");
            let svix_h = peer_headers("svix-id", "svix", ts, &sig);
            Verifier::new(Scheme::svix(), &ring())
                .expect("verifier")
                .verify(&svix_h, &body, SystemTime::now())
                .expect("svix-* headers");
            let sw_h = peer_headers("webhook-id", "webhook", ts, &sig);
            Verifier::new(Scheme::standard_webhooks(), &ring())
                .expect("verifier")
                .verify(&sw_h, &body, SystemTime::now())
                .expect("webhook-* headers");
        }
    }

    #[test]
    fn our_signatures_verify_with_svix() {
        let peer = svix::webhooks::Webhook::new(SECRET).expect("peer secret");
        for scheme in [Scheme::svix(), Scheme::standard_webhooks()] {
            let signer = Signer::new(scheme, &ring()).expect("signer");
            for body in bodies() {
                let mut h = HeaderMap::new();
                signer.sign(ID, now_secs(), &body, &mut h).expect("sign");
                peer.verify(&body, &h).expect("svix accepts ours");
            }
        }
    }
}
