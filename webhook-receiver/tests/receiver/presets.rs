//! Every authentication preset of webhook-core behind the receiver: a request signed (or
//! authenticated) by core's `Signer`/`SenderAuth` is accepted, a tampered one is refused `401`
//! without echoing the signature; key rotation; replay; the replay window covers the tolerance.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use webhook_core::ed25519::Ed25519SigningKey;
use webhook_core::{
    BasicCredentials, BearerToken, HeaderToken, Identity, KeyRing, ReceiverAuth, Scheme, Secret,
    SenderAuth, Signer, Verifier,
};
use webhook_receiver::{
    Authenticate, Context, HandlerOutcome, Receiver, ReceiverConfig, handler_fn,
};

use crate::common::{Log, body_json};

const TS: u64 = 1_700_000_000;
const BODY: &str = r#"{"type":"invoice.paid","data":{"id":"in_1","amount":4200}}"#;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A receiver of JSON values that logs the identity it saw.
fn receiver(auth: impl Authenticate, log: &Log) -> Receiver<serde_json::Value> {
    let log = log.clone();
    Receiver::builder(
        ReceiverConfig::builder()
            .auth(auth)
            .build()
            .expect("config"),
    )
    .fallback(handler_fn(move |_v: serde_json::Value, cx: Context| {
        let log = log.clone();
        async move {
            log.push(format!("{:?}", cx.identity()));
            HandlerOutcome::Accepted
        }
    }))
    .build()
    .expect("receiver")
}

fn request(headers: &HeaderMap, body: &str) -> Request<Full<Bytes>> {
    let mut req = Request::post("/hook")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .expect("request");
    for (k, v) in headers {
        req.headers_mut().insert(k.clone(), v.clone());
    }
    req
}

/// Signs `BODY` with `signer` as message `id` at `TS`.
fn sign(signer: &Signer, id: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    signer.sign(id, TS, BODY.as_bytes(), &mut h).expect("sign");
    h
}

/// Accepted when intact; 401 with a body that does not echo the signature when the body, or
/// the signature, is tampered with.
async fn accepted_then_tampered(name: &str, auth: impl Authenticate, headers: HeaderMap) {
    let log = Log::default();
    let rx = receiver(auth, &log);
    let now = at(TS + 1);
    let res = rx.handle_at(request(&headers, BODY), now).await;
    assert_eq!(res.status(), StatusCode::OK, "{name}: intact request");
    assert_eq!(log.take().len(), 1, "{name}");

    let tampered = BODY.replace("4200", "4201");
    let (status, json) = body_json(rx.handle_at(request(&headers, &tampered), now).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: tampered body");
    assert_eq!(json["error"], "unauthorized", "{name}");
    let text = json.to_string();
    for (_, v) in &headers {
        let v = v.to_str().expect("ASCII");
        if v.len() > 20 {
            assert!(
                !text.contains(v),
                "{name}: the response echoes a header value"
            );
        }
    }

    // Flip one character of the signature header value.
    let mut forged = headers.clone();
    let sig_name = headers
        .keys()
        .find(|k| {
            let k = k.as_str();
            k.contains("signature") || k.contains("hmac") || k == "x-signature-ed25519"
        })
        .cloned()
        .expect("a signature header");
    let mut sig = forged[&sig_name].to_str().expect("ASCII").to_owned();
    let last = sig.pop().expect("non-empty");
    sig.push(if last == '0' || last == 'A' { '1' } else { '0' });
    forged.insert(sig_name, sig.parse().expect("header"));
    let status = rx.handle_at(request(&forged, BODY), now).await.status();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: forged signature");
    assert!(log.take().is_empty(), "{name}: no handler ran");
}

#[tokio::test]
async fn every_hmac_preset_accepts_signed_and_refuses_tampered() {
    let ring = KeyRing::single(Secret::from_bytes("preset test secret 0123").expect("secret"));
    let schemes = [
        Scheme::standard_webhooks(),
        Scheme::svix(),
        Scheme::soveren(),
        Scheme::github(),
        Scheme::stripe(),
        Scheme::slack(),
        Scheme::zoom(),
        Scheme::shopify(),
    ];
    for scheme in schemes {
        let name = scheme.name().to_owned();
        let signer = Signer::new(scheme.clone(), &ring).expect("signer");
        let verifier = Verifier::new(scheme, &ring).expect("verifier");
        accepted_then_tampered(&name, verifier, sign(&signer, "msg_preset")).await;
    }
}

#[tokio::test]
async fn github_legacy_sha1_is_verified() {
    use hmac::{Hmac, Mac};
    let secret = b"legacy secret";
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("any length");
    mac.update(BODY.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut h = HeaderMap::new();
    h.insert(
        "x-hub-signature",
        format!("sha1={hex}").parse().expect("header"),
    );
    let ring = KeyRing::single(Secret::from_bytes(secret).expect("secret"));
    let verifier = Verifier::new(Scheme::github_legacy_sha1(), &ring).expect("verifier");
    accepted_then_tampered("github-sha1", verifier, h).await;
}

#[tokio::test]
async fn ed25519_presets_v1a_and_discord() {
    let key = Ed25519SigningKey::from_seed([7u8; 32]);
    let public = KeyRing::single(key.verifying_key());
    for scheme in [Scheme::standard_webhooks_v1a(), Scheme::discord()] {
        let name = scheme.name().to_owned();
        let signer = Signer::new(scheme.clone(), &KeyRing::single(key.clone())).expect("signer");
        let verifier = Verifier::new(scheme, &public).expect("verifier");
        accepted_then_tampered(&name, verifier, sign(&signer, "msg_ed")).await;
    }
}

#[tokio::test]
async fn basic_bearer_and_header_token() {
    let basic = BasicCredentials::parse("sysdig:s3cret-pass").expect("basic");
    let bearer = BearerToken::new("tok.abc-123").expect("bearer");
    let token = HeaderToken::new("x-connectsecure-key", "cs-shared-value").expect("token");
    let cases = [
        (
            "basic",
            SenderAuth::Basic(basic.clone()),
            ReceiverAuth::Basic(basic),
        ),
        (
            "bearer",
            SenderAuth::Bearer(bearer.clone()),
            ReceiverAuth::Bearer(bearer),
        ),
        (
            "token",
            SenderAuth::HeaderToken(token.clone()),
            ReceiverAuth::HeaderToken(token),
        ),
    ];
    for (name, sender, auth) in cases {
        let log = Log::default();
        let rx = receiver(auth, &log);
        let mut h = HeaderMap::new();
        sender
            .apply("m", TS, BODY.as_bytes(), &mut h)
            .expect("apply");
        let res = rx.handle_at(request(&h, BODY), at(TS)).await;
        assert_eq!(res.status(), StatusCode::OK, "{name}");
        let seen = log.take();
        assert_eq!(seen.len(), 1, "{name}");
        if name == "basic" {
            assert!(seen[0].contains("sysdig"), "{seen:?}");
            assert!(
                !seen[0].contains("s3cret"),
                "identity never holds the password"
            );
        }

        // The credential with one character changed.
        let (hname, value) = h.iter().next().expect("one header");
        let mut wrong = value.to_str().expect("ASCII").to_owned();
        wrong.pop();
        wrong.push('X');
        let mut bad = HeaderMap::new();
        bad.insert(hname.clone(), wrong.parse().expect("header"));
        let (status, json) = body_json(rx.handle_at(request(&bad, BODY), at(TS)).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(
            !json.to_string().contains(&wrong),
            "{name}: echoed credential"
        );
        let (status, json) =
            body_json(rx.handle_at(request(&HeaderMap::new(), BODY), at(TS)).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(json["detail"], "credentials or signature missing", "{name}");
        assert!(log.take().is_empty());
    }
}

#[tokio::test]
async fn config_shortcuts_for_core_auth() {
    let basic = BasicCredentials::new("u", "p").expect("basic");
    let cfg = ReceiverConfig::builder()
        .basic(basic.clone())
        .build()
        .expect("cfg");
    let rx: Receiver<serde_json::Value> = Receiver::builder(cfg)
        .fallback(handler_fn(
            |_v: serde_json::Value, cx: Context| async move {
                match cx.identity() {
                    Identity::Basic { user } if user == "u" => HandlerOutcome::Accepted,
                    other => HandlerOutcome::failed(format!("unexpected identity {other:?}")),
                }
            },
        ))
        .build()
        .expect("receiver");
    let mut h = HeaderMap::new();
    SenderAuth::Basic(basic)
        .apply("m", TS, b"", &mut h)
        .expect("apply");
    assert_eq!(
        rx.handle_at(request(&h, BODY), at(TS)).await.status(),
        StatusCode::OK
    );
    for cfg in [
        ReceiverConfig::builder().bearer(BearerToken::new("t").expect("t")),
        ReceiverConfig::builder().header_token(HeaderToken::gitlab("g").expect("g")),
    ] {
        assert!(cfg.build().is_ok());
    }
}

#[tokio::test]
async fn rotation_old_key_until_expiry_new_key_always() {
    let old = Secret::from_bytes("old key 000000000000").expect("old");
    let new = Secret::from_bytes("new key 111111111111").expect("new");
    let expiry = at(TS + 60);
    // The receiver's ring: new key first, old key accepted strictly before `expiry`.
    let ring = KeyRing::new()
        .with_key(new.clone())
        .with_key_until(old.clone(), expiry);
    let verifier = Verifier::new(Scheme::standard_webhooks(), &ring).expect("verifier");
    let log = Log::default();
    let rx = receiver(verifier, &log);

    let old_signer =
        Signer::new(Scheme::standard_webhooks(), &KeyRing::single(old)).expect("old signer");
    let new_signer =
        Signer::new(Scheme::standard_webhooks(), &KeyRing::single(new)).expect("new signer");
    let signed_at = |signer: &Signer, id: &str, ts: u64| {
        let mut h = HeaderMap::new();
        signer.sign(id, ts, BODY.as_bytes(), &mut h).expect("sign");
        request(&h, BODY)
    };

    let res = rx
        .handle_at(signed_at(&old_signer, "r1", TS + 59), at(TS + 59))
        .await;
    assert_eq!(res.status(), StatusCode::OK, "old key before expiry");
    let res = rx
        .handle_at(signed_at(&old_signer, "r2", TS + 60), at(TS + 60))
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "old key at expiry");
    let res = rx
        .handle_at(signed_at(&new_signer, "r3", TS + 61), at(TS + 61))
        .await;
    assert_eq!(res.status(), StatusCode::OK, "new key");
    let seen = log.take();
    assert!(seen[0].contains("key_index: 1"), "{seen:?}");
    assert!(seen[1].contains("key_index: 0"), "{seen:?}");

    // A sender signing with both keys during the overlap is accepted once by either.
    let both = Signer::new(Scheme::standard_webhooks(), &ring).expect("both");
    let res = rx.handle_at(signed_at(&both, "r4", TS), at(TS)).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_replay_is_a_duplicate_for_the_whole_tolerance_window() {
    let ring = crate::common::ring();
    let rx = receiver(
        Verifier::new(Scheme::standard_webhooks(), &ring).expect("verifier"),
        &Log::default(),
    );
    let signer = Signer::new(Scheme::standard_webhooks(), &ring).expect("signer");
    let send = || request(&sign(&signer, "replayed"), BODY);
    // First accepted at the earliest instant the signature is valid...
    assert_eq!(
        rx.handle_at(send(), at(TS - 300)).await.status(),
        StatusCode::OK
    );
    // ... a replay at the latest valid instant is still recognised: answered 200 as a
    // duplicate, not handled again.
    let (status, json) = body_json(rx.handle_at(send(), at(TS + 300)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["status"], "duplicate");
    // After the tolerance the signature itself is refused.
    assert_eq!(
        rx.handle_at(send(), at(TS + 301)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn expired_key_ring_is_401_with_a_generic_reason() {
    let ring = KeyRing::new().with_key_until(Secret::from_bytes("k").expect("k"), at(TS - 1));
    let signer = Signer::new(
        Scheme::standard_webhooks(),
        &KeyRing::single(Secret::from_bytes("k").expect("k")),
    )
    .expect("signer");
    let rx = receiver(
        Verifier::new(Scheme::standard_webhooks(), &ring).expect("verifier"),
        &Log::default(),
    );
    let (status, json) = body_json(
        rx.handle_at(request(&sign(&signer, "x"), BODY), at(TS))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["detail"], "credentials or signature invalid");
}

#[tokio::test]
async fn schemes_without_message_id_recognise_exact_replays_by_signed_content() {
    let ring = KeyRing::single(Secret::from_bytes("replay key secret 0123").expect("secret"));
    for scheme in [Scheme::stripe(), Scheme::slack(), Scheme::zoom()] {
        let name = scheme.name().to_owned();
        let signer = Signer::new(scheme.clone(), &ring).expect("signer");
        let rx = receiver(
            Verifier::new(scheme, &ring).expect("verifier"),
            &Log::default(),
        );
        let at_ts = |ts: u64| {
            let mut h = HeaderMap::new();
            signer.sign("", ts, BODY.as_bytes(), &mut h).expect("sign");
            request(&h, BODY)
        };
        let now = at(TS + 5);
        assert_eq!(
            rx.handle_at(at_ts(TS), now).await.status(),
            StatusCode::OK,
            "{name}"
        );
        let (status, json) = body_json(rx.handle_at(at_ts(TS), now).await).await;
        assert_eq!(status, StatusCode::OK, "{name}: exact replay");
        assert_eq!(json["status"], "duplicate");
        // The sender's retry is signed afresh: a new timestamp, a new message.
        assert_eq!(
            rx.handle_at(at_ts(TS + 1), now).await.status(),
            StatusCode::OK,
            "{name}: re-signed retry"
        );
    }
    // Stripe: a replay that drops one of two signatures is still the same signed content.
    let two = KeyRing::new()
        .with_key(Secret::from_bytes("stripe key one").expect("k1"))
        .with_key(Secret::from_bytes("stripe key two").expect("k2"));
    let signer = Signer::new(Scheme::stripe(), &two).expect("signer");
    let rx = receiver(
        Verifier::new(Scheme::stripe(), &two).expect("verifier"),
        &Log::default(),
    );
    let mut h = HeaderMap::new();
    signer.sign("", TS, BODY.as_bytes(), &mut h).expect("sign");
    assert_eq!(
        rx.handle_at(request(&h, BODY), at(TS)).await.status(),
        StatusCode::OK
    );
    let full = h["stripe-signature"].to_str().expect("ASCII").to_owned();
    let stripped = full
        .rsplit_once(",v1=")
        .map(|(head, _)| head)
        .expect("two entries");
    h.insert("stripe-signature", stripped.parse().expect("header"));
    let (status, json) = body_json(rx.handle_at(request(&h, BODY), at(TS)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["status"], "duplicate");
}

#[tokio::test]
async fn schemes_without_timestamp_or_id_have_no_replay_key() {
    // GitHub signs only the body: identical deliveries cannot be told from replays, so the
    // receiver does not refuse them (dedupe on the payload's own id in the handler).
    let ring = KeyRing::single(Secret::from_bytes("github secret").expect("secret"));
    let signer = Signer::new(Scheme::github(), &ring).expect("signer");
    let rx = receiver(
        Verifier::new(Scheme::github(), &ring).expect("verifier"),
        &Log::default(),
    );
    let h = sign(&signer, "");
    for _ in 0..2 {
        assert_eq!(
            rx.handle_at(request(&h, BODY), at(TS)).await.status(),
            StatusCode::OK
        );
    }
}
