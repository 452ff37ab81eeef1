//! Auth methods end to end: the sender's headers are accepted by the receiver's check, and
//! anything else is refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use webhook_core::{
    AuthError, BasicCredentials, BearerToken, CustomHeaders, HeaderToken, Identity, KeyRing,
    ReceiverAuth, Scheme, Secret, SenderAuth, VerifyError,
};

const TS: u64 = 1_700_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(TS)
}

fn round_trip(
    sender: &SenderAuth,
    receiver: &ReceiverAuth,
    body: &[u8],
) -> Result<Identity, AuthError> {
    let mut h = HeaderMap::new();
    sender.apply("evt_1", TS, body, &mut h)?;
    receiver.check(&h, body, now())
}

#[test]
fn sysdig_basic_bearer_signature() {
    let basic = BasicCredentials::parse("sysdig:pa55word").unwrap();
    assert_eq!(
        round_trip(
            &SenderAuth::Basic(basic.clone()),
            &ReceiverAuth::Basic(basic),
            b"[]"
        ),
        Ok(Identity::Basic {
            user: "sysdig".into()
        })
    );
    let other = BasicCredentials::parse("sysdig:other").unwrap();
    assert_eq!(
        round_trip(
            &SenderAuth::Basic(other),
            &ReceiverAuth::Basic(BasicCredentials::parse("sysdig:pa55word").unwrap()),
            b"[]"
        ),
        Err(AuthError::InvalidCredentials)
    );

    let bearer = BearerToken::new("eyJhbGciOi.J9").unwrap();
    assert_eq!(
        round_trip(
            &SenderAuth::Bearer(bearer.clone()),
            &ReceiverAuth::Bearer(bearer),
            b""
        ),
        Ok(Identity::Bearer)
    );

    let secret = Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let who = round_trip(
        &SenderAuth::signature(secret.clone()).unwrap(),
        &ReceiverAuth::signature(secret.clone()).unwrap(),
        b"[{\"x\":1}]",
    )
    .unwrap();
    assert_eq!(
        who,
        Identity::Signature {
            key_index: 0,
            id: Some("evt_1".into()),
            timestamp: Some(TS)
        }
    );
    // a tampered body fails with the verifier's reason
    let mut h = HeaderMap::new();
    SenderAuth::signature(secret.clone())
        .unwrap()
        .apply("evt_1", TS, b"a", &mut h)
        .unwrap();
    assert_eq!(
        ReceiverAuth::signature(secret)
            .unwrap()
            .check(&h, b"b", now()),
        Err(AuthError::Signature(VerifyError::NoMatchingSignature))
    );
}

#[test]
fn signature_auth_takes_any_scheme() {
    let ring = KeyRing::single(Secret::from_bytes("shpss_123").unwrap());
    let sender = SenderAuth::signature_with(Scheme::shopify(), &ring).unwrap();
    let receiver =
        ReceiverAuth::Signature(webhook_core::Verifier::new(Scheme::shopify(), &ring).unwrap());
    assert_eq!(
        sender.header_names(),
        vec![http::HeaderName::from_static("x-shopify-hmac-sha256")]
    );
    assert!(matches!(
        round_trip(&sender, &receiver, b"{}"),
        Ok(Identity::Signature {
            id: None,
            timestamp: None,
            ..
        })
    ));
}

#[test]
fn connectsecure_and_gitlab_tokens() {
    let cs = HeaderToken::new("X-Auth-Key", "cs-value-123").unwrap();
    assert_eq!(
        round_trip(
            &SenderAuth::HeaderToken(cs.clone()),
            &ReceiverAuth::HeaderToken(cs.clone()),
            b""
        ),
        Ok(Identity::HeaderToken {
            header: "x-auth-key".parse().unwrap()
        })
    );
    let mut h = HeaderMap::new();
    assert!(matches!(
        ReceiverAuth::HeaderToken(cs.clone()).check(&h, b"", now()),
        Err(AuthError::MissingHeader { .. })
    ));
    h.insert("x-auth-key", HeaderValue::from_static("cs-value-12"));
    assert_eq!(
        ReceiverAuth::HeaderToken(cs).check(&h, b"", now()),
        Err(AuthError::InvalidCredentials)
    );
    let gl = HeaderToken::gitlab("tok").unwrap();
    assert_eq!(gl.name().as_str(), "x-gitlab-token");
    // the token header is then reserved against custom headers
    let custom = CustomHeaders::builder()
        .reserve(gl.name().as_str())
        .header("X-Gitlab-Token", "override")
        .build();
    assert!(custom.is_err());
}

#[test]
fn none_and_secrets_stay_out_of_debug() {
    assert_eq!(
        round_trip(&SenderAuth::None, &ReceiverAuth::None, b""),
        Ok(Identity::Anonymous)
    );
    let all = format!(
        "{:?} {:?} {:?} {:?}",
        SenderAuth::Basic(BasicCredentials::parse("u:topsecret1").unwrap()),
        SenderAuth::Bearer(BearerToken::new("topsecret2").unwrap()),
        SenderAuth::HeaderToken(HeaderToken::new("x-k", "topsecret3").unwrap()),
        SenderAuth::signature(Secret::from_bytes("topsecret4").unwrap()).unwrap(),
    );
    assert!(!all.contains("topsecret"), "{all}");
}
