//! Known-answer tests: the published vectors, and independently computed ones (raw `hmac`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use sha1::Sha1;
use sha2::Sha256;
#[cfg(feature = "ed25519")]
use webhook_core::ed25519::{Ed25519SigningKey, Ed25519VerifyingKey};
#[cfg(feature = "ed25519")]
use webhook_core::{Algorithm, SignatureEncoding, SignatureFormat};
use webhook_core::{KeyRing, Scheme, Secret, Signer, Verifier};

const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SW_TS: u64 = 1614265330;
const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SW_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn hmac256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.insert(*n, HeaderValue::from_str(v).unwrap());
    }
    h
}

fn sign(scheme: Scheme, ring: &KeyRing, id: &str, ts: u64, body: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    Signer::new(scheme, ring)
        .unwrap()
        .sign(id, ts, body, &mut h)
        .unwrap();
    h
}

#[test]
fn standard_webhooks_published_vector_signs_and_verifies() {
    let ring = KeyRing::single(Secret::from_whsec(SW_SECRET).unwrap());
    let h = sign(Scheme::standard_webhooks(), &ring, SW_ID, SW_TS, SW_BODY);
    assert_eq!(h["webhook-signature"], SW_SIG);
    assert_eq!(h["webhook-id"], SW_ID);
    assert_eq!(h["webhook-timestamp"], "1614265330");

    let given = headers(&[
        ("webhook-id", SW_ID),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", SW_SIG),
    ]);
    let v = Verifier::new(Scheme::standard_webhooks(), &ring).unwrap();
    let ok = v.verify(&given, SW_BODY, at(SW_TS)).unwrap();
    assert_eq!(ok.id(), Some(SW_ID));
    assert_eq!(ok.timestamp(), Some(SW_TS));
    assert_eq!(ok.key_index(), 0);
}

#[test]
fn svix_headers_carry_the_same_vector() {
    let ring = KeyRing::single(Secret::from_whsec(SW_SECRET).unwrap());
    let h = sign(Scheme::svix(), &ring, SW_ID, SW_TS, SW_BODY);
    assert_eq!(h["svix-signature"], SW_SIG);
    assert_eq!(h["svix-id"], SW_ID);
    let v = Verifier::new(Scheme::svix(), &ring).unwrap();
    assert!(v.verify(&h, SW_BODY, at(SW_TS)).is_ok());
}

#[test]
fn github_published_vector() {
    let ring = KeyRing::single(Secret::from_bytes("It's a Secret to Everybody").unwrap());
    let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let h = sign(Scheme::github(), &ring, "", 0, b"Hello, World!");
    assert_eq!(h["x-hub-signature-256"], expected);
    assert_eq!(h.len(), 1, "GitHub signs no id or timestamp");
    let given = headers(&[("x-hub-signature-256", expected)]);
    let v = Verifier::new(Scheme::github(), &ring).unwrap();
    // no timestamp: any `now` works
    assert!(v.verify(&given, b"Hello, World!", UNIX_EPOCH).is_ok());
    assert!(v.verify(&given, b"Hello, World?", UNIX_EPOCH).is_err());
}

#[test]
fn slack_published_vector() {
    // From Slack's "Verifying requests from Slack" documentation.
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    let ring = KeyRing::single(Secret::from_bytes(secret).unwrap());
    let h = sign(Scheme::slack(), &ring, "", 1531420618, body);
    assert_eq!(h["x-slack-signature"], expected);
    assert_eq!(h["x-slack-request-timestamp"], "1531420618");
    let v = Verifier::new(Scheme::slack(), &ring).unwrap();
    assert!(v.verify(&h, body, at(1531420618)).is_ok());
}

#[test]
fn stripe_against_raw_hmac() {
    let key = b"whsec_stripe_endpoint_secret";
    let body = br#"{"id":"evt_1","object":"event"}"#;
    let ts = 1_700_000_123u64;
    let mac = hex(&hmac256(key, &[b"1700000123", b".", body]));
    let ring = KeyRing::single(Secret::from_bytes(&key[..]).unwrap());
    let h = sign(Scheme::stripe(), &ring, "evt_1", ts, body);
    assert_eq!(
        h["stripe-signature"],
        format!("t=1700000123,v1={mac}").as_str()
    );
    // Stripe's own format also lists v0 entries and several v1 entries: the matching one wins.
    let given = headers(&[(
        "stripe-signature",
        &format!("t=1700000123,v1={},v1={mac},v0=abcd", "0".repeat(64)),
    )]);
    let v = Verifier::new(Scheme::stripe(), &ring).unwrap();
    let ok = v.verify(&given, body, at(ts + 5)).unwrap();
    assert_eq!(ok.timestamp(), Some(ts));
    assert_eq!(ok.id(), None);
}

#[test]
fn zoom_soveren_shopify_against_raw_hmac() {
    let key = b"zoom-secret-token";
    let body = br#"{"event":"meeting.started"}"#;
    let ring = KeyRing::single(Secret::from_bytes(&key[..]).unwrap());

    let zoom = hex(&hmac256(key, &[b"v0:", b"1700000000", b":", body]));
    let h = sign(Scheme::zoom(), &ring, "", 1_700_000_000, body);
    assert_eq!(h["x-zm-signature"], format!("v0={zoom}").as_str());
    assert_eq!(h["x-zm-request-timestamp"], "1700000000");

    let soveren = hex(&hmac256(key, &[body]));
    let h = sign(Scheme::soveren(), &ring, "", 0, body);
    assert_eq!(
        h["x-soveren-signature"],
        format!("sha256={soveren}").as_str()
    );

    let shopify = STANDARD.encode(hmac256(key, &[body]));
    let h = sign(Scheme::shopify(), &ring, "", 0, body);
    assert_eq!(h["x-shopify-hmac-sha256"], shopify.as_str());
}

#[test]
fn soveren_seed_example_shape() {
    // Seed 003 shows `x-soveren-signature: sha256=46f45c56...`: 64 lowercase hex digits.
    let ring = KeyRing::single(Secret::from_bytes("token").unwrap());
    let h = sign(Scheme::soveren(), &ring, "", 0, b"{}");
    let v = h["x-soveren-signature"].to_str().unwrap();
    let hexpart = v.strip_prefix("sha256=").unwrap();
    assert_eq!(hexpart.len(), 64);
    assert!(
        hexpart
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
}

#[test]
fn github_legacy_sha1_verifies() {
    let key = b"legacy";
    let body = b"payload";
    let mut m = Hmac::<Sha1>::new_from_slice(key).unwrap();
    m.update(body);
    let sig = format!("sha1={}", hex(&m.finalize().into_bytes()));
    let ring = KeyRing::single(Secret::from_bytes(&key[..]).unwrap());
    let v = Verifier::new(Scheme::github_legacy_sha1(), &ring).unwrap();
    assert!(
        v.verify(&headers(&[("x-hub-signature", &sig)]), body, UNIX_EPOCH)
            .is_ok()
    );
}

#[cfg(feature = "ed25519")]
#[test]
fn ed25519_rfc8032_vector_through_a_custom_scheme() {
    // RFC 8032 section 7.1, TEST 1 (empty message).
    let seed: [u8; 32] = hex_to("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    let public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let sig = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
    let scheme = Scheme::builder("rfc8032")
        .algorithm(Algorithm::Ed25519)
        .signed_content("{body}")
        .encoding(SignatureEncoding::Hex)
        .signature_header("x-signature")
        .format(SignatureFormat::Single)
        .build()
        .unwrap();
    let key = Ed25519SigningKey::from_seed(seed);
    assert_eq!(key.verifying_key().to_hex(), public);
    let h = sign(scheme.clone(), &KeyRing::single(key), "", 0, b"");
    assert_eq!(h["x-signature"], sig);
    let receiver = KeyRing::single(Ed25519VerifyingKey::from_hex(public).unwrap());
    let v = Verifier::new(scheme, &receiver).unwrap();
    assert!(v.verify(&h, b"", UNIX_EPOCH).is_ok());
    assert!(v.verify(&h, b"x", UNIX_EPOCH).is_err());
}

#[cfg(feature = "ed25519")]
#[test]
fn discord_signs_ts_then_body() {
    use ed25519_dalek::{Signature, Verifier as _};
    let key = Ed25519SigningKey::from_seed([42u8; 32]);
    let body = br#"{"type":1}"#;
    let h = sign(
        Scheme::discord(),
        &KeyRing::single(key.clone()),
        "",
        1_700_000_000,
        body,
    );
    let sig_hex = h["x-signature-ed25519"].to_str().unwrap();
    let sig: [u8; 64] = hex_to(sig_hex);
    let mut msg = b"1700000000".to_vec();
    msg.extend_from_slice(body);
    let vk = ed25519_dalek::VerifyingKey::from_bytes(key.verifying_key().as_bytes()).unwrap();
    vk.verify(&msg, &Signature::from_bytes(&sig)).unwrap();
}

#[cfg(feature = "ed25519")]
fn hex_to<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}
