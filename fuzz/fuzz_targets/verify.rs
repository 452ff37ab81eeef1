//! Every signature scheme preset's header parsers through `Verifier::verify`, with random
//! headers and bodies; a request the preset's `Signer` signed must verify, and must not once its
//! body changed. Also the receiver's Basic, Bearer and header-token checks, `Scheme::parse_key`
//! on random key text, `SignedContent::parse` and `parse_retry_after`.
//!
//! Input: a selector byte (preset and mode), then `name: value` header lines, an empty line and
//! the body.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use webhook_core::{
    BasicCredentials, BearerToken, HeaderToken, Key, KeyRing, ReceiverAuth, Scheme, SignedContent,
    Signer, Verifier, parse_retry_after,
};

const TS: u64 = 1_700_000_000;

struct Preset {
    /// `None` for the verify-only schemes (GitHub's legacy SHA-1).
    signer: Option<Signer>,
    verifier: Verifier,
    lax: Verifier,
}

fn presets() -> &'static [Preset] {
    static PRESETS: OnceLock<Vec<Preset>> = OnceLock::new();
    PRESETS.get_or_init(|| {
        Scheme::presets()
            .into_iter()
            .map(|scheme| {
                let generated = scheme.generate_key([7; 32]).expect("a key");
                let secret: Key = scheme.parse_key(generated.secret()).expect("own secret");
                let public: Key = match generated.public_key() {
                    Some(p) => scheme.parse_key(p).expect("own public key"),
                    None => scheme.parse_key(generated.secret()).expect("own secret"),
                };
                let signing = KeyRing::single(secret);
                // Two keys: the first never matches, so every candidate is tried against both.
                let other = scheme.generate_key([9; 32]).expect("a key");
                let other: Key = match other.public_key() {
                    Some(p) => scheme.parse_key(p).expect("own public key"),
                    None => scheme.parse_key(other.secret()).expect("own secret"),
                };
                let verifying = KeyRing::single(other).with_key(public);
                Preset {
                    signer: Signer::new(scheme.clone(), &signing).ok(),
                    verifier: Verifier::new(scheme.clone(), &verifying).expect("verifier"),
                    lax: Verifier::new(scheme, &verifying)
                        .expect("verifier")
                        .ignore_timestamp(),
                }
            })
            .collect()
    })
}

fn auths() -> &'static [ReceiverAuth] {
    static AUTHS: OnceLock<Vec<ReceiverAuth>> = OnceLock::new();
    AUTHS.get_or_init(|| {
        vec![
            ReceiverAuth::Basic(BasicCredentials::new("user", "pass:word").expect("basic")),
            ReceiverAuth::Bearer(BearerToken::new("t0ken").expect("bearer")),
            ReceiverAuth::HeaderToken(HeaderToken::new("x-api-key", "s3cret").expect("token")),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((sel, rest)) = webhook_fuzz::selector(data) else {
        return;
    };
    let presets = presets();
    let preset = &presets[usize::from(sel) % presets.len()];
    let (headers, body) = webhook_fuzz::headers_and_body(rest);
    let now = UNIX_EPOCH + Duration::from_secs(TS + 5);

    // Random headers and body: any answer but a panic.
    let strict = preset.verifier.verify(&headers, body, now);
    let lax = preset.lax.verify(&headers, body, now);
    if strict.is_ok() {
        // Ignoring timestamps accepts whatever the strict verifier accepts.
        assert!(
            lax.is_ok(),
            "lax verifier refused what the strict one accepted"
        );
    }
    for auth in auths() {
        let _ = auth.check(&headers, body, now);
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = preset.verifier.scheme().parse_key(text);
        let _ = SignedContent::parse(text);
        let _ = parse_retry_after(text, now);
    }

    // Signed by the preset's signer (the message id from the first header value): verifies,
    // and a changed body does not.
    let id = headers
        .values()
        .next()
        .and_then(|v| v.to_str().ok())
        .unwrap_or("msg_1");
    let mut signed = HeaderMap::new();
    let Some(signer) = &preset.signer else {
        return;
    };
    if signer.sign(id, TS, body, &mut signed).is_ok() {
        if let Err(e) = preset.verifier.verify(&signed, body, now) {
            panic!("signed request refused: {e:?}");
        }
        let mut changed = body.to_vec();
        changed.push(b'x');
        assert!(
            preset.verifier.verify(&signed, &changed, now).is_err(),
            "a changed body verified"
        );
        // Fuzzed headers added after the signed ones (a second signature header value is
        // ignored or tried, never a panic).
        for (name, value) in &headers {
            signed.append(name.clone(), value.clone());
        }
        let _ = preset.verifier.verify(&signed, body, now);
    }
});
