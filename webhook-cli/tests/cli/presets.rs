//! Issue 18 from a terminal: secrets read as each provider hands them out (the `sign --help`
//! Stripe example as written), `keygen`, one numbering of keys, scheme detection in `verify`,
//! warnings for flags a scheme does not sign, and `listen` answering handshakes and reading
//! form bodies over a real socket.

use std::time::{SystemTime, UNIX_EPOCH};

use webhook_core::{KeyRing, Scheme, Secret, Signer};

use super::{Listener, TempDir, bin, raw_request, run, stderr, stdout};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// `name: value` lines into (name, value) pairs.
fn header_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn the_sign_help_stripe_example_works_as_written_with_the_literal_key() {
    let help = stdout(&run(bin().args(["sign", "--help"])));
    let example =
        "webhook sign --scheme stripe --secret whsec_test --file payload.json > headers.txt";
    assert!(help.contains(example), "{help}");
    let dir = TempDir::new("stripe-example");
    let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    std::fs::write(dir.0.join("payload.json"), body).unwrap();
    let out = run(bin()
        .current_dir(&dir.0)
        .args([
            "sign",
            "--scheme",
            "stripe",
            "--secret",
            "whsec_test",
            "--file",
            "payload.json",
        ])
        .args(["--timestamp", "1700000000"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Stripe HMACs with the whole text `whsec_test` as the key.
    let mut expected = http::HeaderMap::new();
    Signer::new(
        Scheme::stripe(),
        &KeyRing::single(Secret::from_bytes("whsec_test").unwrap()),
    )
    .unwrap()
    .sign("", 1_700_000_000, body, &mut expected)
    .unwrap();
    assert_eq!(
        stdout(&out).trim(),
        format!(
            "stripe-signature: {}",
            expected["stripe-signature"].to_str().unwrap()
        )
    );
    // And the headers verify, the scheme detected from `stripe-signature`.
    std::fs::write(dir.0.join("headers.txt"), stdout(&out)).unwrap();
    let out = run(bin()
        .current_dir(&dir.0)
        .args([
            "verify",
            "--secret",
            "whsec_test",
            "--headers",
            "headers.txt",
        ])
        .args(["--file", "payload.json", "--now", "1700000001"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("scheme stripe, detected from the stripe-signature header"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn verify_names_the_scheme_whose_headers_are_present() {
    let out = run(bin().args([
        "verify",
        "--scheme",
        "standard-webhooks",
        "--secret",
        "s",
        "--body",
        "{}",
        "-H",
        "Stripe-Signature: t=1,v1=00",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("but a `stripe-signature` header: it was signed with the stripe scheme; pass --scheme stripe"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn keygen_makes_keys_the_other_commands_read() {
    // HMAC: one whsec_ line that signs and verifies.
    let out = run(bin().arg("keygen"));
    assert_eq!(out.status.code(), Some(0));
    let secret = stdout(&out).trim().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 38,
        "{secret}"
    );
    assert_ne!(
        secret,
        stdout(&run(bin().arg("keygen"))).trim(),
        "random each time"
    );
    let signed = run(bin().args(["sign", "--secret", &secret, "--body", "{}"]));
    let mut verify = bin();
    verify.args(["verify", "--secret", &secret, "--body", "{}"]);
    for (k, v) in header_lines(&stdout(&signed)) {
        verify.args(["-H", &format!("{k}: {v}")]);
    }
    assert_eq!(run(&mut verify).status.code(), Some(0));

    // Ed25519 for Discord: whsk_ signs, the hex public key verifies, --public-of agrees.
    let out = run(bin().args(["keygen", "--scheme", "discord", "--json"]));
    let made: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let whsk = made["secret"].as_str().unwrap();
    let hex = made["public_key_hex"].as_str().unwrap();
    assert!(whsk.starts_with("whsk_") && hex.len() == 64, "{made}");
    let public = run(bin().args(["keygen", "--public-of", whsk, "--json"]));
    let public: serde_json::Value = serde_json::from_str(&stdout(&public)).unwrap();
    assert_eq!(public["public_key"], made["public_key"]);
    assert_eq!(public["public_key_hex"], made["public_key_hex"]);
    let signed = run(bin().args([
        "sign",
        "--scheme",
        "discord",
        "--secret",
        whsk,
        "--body",
        r#"{"type":1}"#,
    ]));
    assert_eq!(signed.status.code(), Some(0), "{}", stderr(&signed));
    let mut verify = bin();
    verify.args(["verify", "--secret", hex, "--body", r#"{"type":1}"#]);
    for (k, v) in header_lines(&stdout(&signed)) {
        verify.args(["-H", &format!("{k}: {v}")]);
    }
    let out = run(&mut verify);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("scheme discord, detected"),
        "{}",
        stdout(&out)
    );

    // Bad input is a typed error with a hint, never the key.
    let out = run(bin().args(["keygen", "--public-of", "whsec_notakey"]));
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("hint:"));
    assert!(!stderr(&out).contains("notakey"));
    let help = stdout(&run(bin().args(["keygen", "--help"])));
    assert!(help.contains("Examples:") && help.contains("Exit codes:"));
}

#[test]
fn key_messages_number_keys_from_one_and_refuse_keys_of_another_kind() {
    let out = run(bin().args(["keygen", "--scheme", "discord", "--json"]));
    let made: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let whpk = made["public_key"].as_str().unwrap();
    // A public key cannot sign: "key #1 is an Ed25519 verifying key", as verify numbers keys.
    let out = run(bin().args([
        "sign", "--scheme", "discord", "--secret", whpk, "--body", "x",
    ]));
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("key #1 is an Ed25519 verifying key"),
        "{}",
        stderr(&out)
    );
    // An Ed25519 key for an HMAC scheme, a shared secret for an Ed25519 one: refused, with a hint.
    let out = run(bin().args([
        "sign", "--scheme", "github", "--secret", whpk, "--body", "x",
    ]));
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("cannot be a key of the github scheme"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("hint:"));
    let out = run(bin().args([
        "sign",
        "--scheme",
        "discord",
        "--secret",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "--body",
        "x",
    ]));
    assert_eq!(out.status.code(), Some(3));
    assert!(!stderr(&out).contains("MfKQ9r8"), "never the secret");
    // Unpadded Standard Webhooks secrets are read like the padded ones.
    let padded = run(bin().args([
        "sign",
        "--secret",
        "whsec_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
        "--body",
        "x",
        "--id",
        "m",
        "--timestamp",
        "1",
    ]));
    let unpadded = run(bin().args([
        "sign",
        "--secret",
        "whsec_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc",
        "--body",
        "x",
        "--id",
        "m",
        "--timestamp",
        "1",
    ]));
    assert_eq!(padded.status.code(), Some(0));
    assert_eq!(stdout(&padded), stdout(&unpadded));
}

#[test]
fn sign_warns_about_flags_the_scheme_does_not_sign() {
    let out = run(bin().args([
        "sign",
        "--scheme",
        "github",
        "--secret",
        "s",
        "--body",
        "x",
        "--id",
        "m",
        "--timestamp",
        "5",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("warning: --id is ignored: the github scheme does not sign a message id"),
        "{err}"
    );
    assert!(err.contains("warning: --timestamp is ignored"), "{err}");
    let out = run(bin().args([
        "sign",
        "--secret",
        "s",
        "--body",
        "x",
        "--id",
        "m",
        "--timestamp",
        "5",
    ]));
    assert!(!stderr(&out).contains("warning"));
}

#[test]
fn allow_private_says_what_it_allows_and_what_stays_blocked() {
    for sub in ["send", "test", "call"] {
        let help = stdout(&run(bin().args([sub, "--help"])));
        let text = help.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            text.contains("Allow loopback (127.0.0.0/8, ::1) and private"),
            "{sub}: {text}"
        );
        assert!(text.contains("169.254.169.254"), "{sub}");
        assert!(text.contains("stay blocked"), "{sub}");
    }
}

/// `listen --scheme slack` answers Slack's URL check over a real socket once signed, refuses an
/// unsigned one, and prints slash commands sent as forms.
#[test]
fn listen_answers_handshakes_and_reads_forms() {
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let listener = Listener::start(&["--scheme", "slack", "--secret", secret]);
    let keys = KeyRing::single(Scheme::slack().parse_key(secret).unwrap());
    let post = |content_type: &str, body: &str, signed: bool| {
        let mut h = http::HeaderMap::new();
        if signed {
            Signer::new(Scheme::slack(), &keys)
                .unwrap()
                .sign("", now(), body.as_bytes(), &mut h)
                .unwrap();
        }
        let head: String = h
            .iter()
            .map(|(k, v)| format!("{k}: {}\r\n", v.to_str().unwrap()))
            .collect();
        raw_request(
            listener.addr,
            &format!(
                "POST /slack HTTP/1.1\r\nhost: x\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n{head}\r\n{body}",
                body.len()
            ),
        )
    };
    let check = r#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV","type":"url_verification"}"#;
    let unsigned = post("application/json", check, false);
    assert!(unsigned.starts_with("HTTP/1.1 401"), "{unsigned}");
    assert!(!unsigned.contains("3eZbrw1aBm2rZgRNFdxV"));
    let answered = post("application/json", check, true);
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(
        answered.ends_with(r#"{"challenge":"3eZbrw1aBm2rZgRNFdxV"}"#),
        "{answered}"
    );
    let slash = "command=%2Fweather&text=94070&user_name=Steve";
    let ok = post("application/x-www-form-urlencoded", slash, true);
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");

    let lines = listener.json_lines(3);
    assert_eq!(lines[0]["status"], 401);
    assert_eq!(lines[1]["kind"], "handshake");
    assert_eq!(lines[1]["handshake"], "slack-url-verification");
    assert_eq!(lines[2]["kind"], "event");
    assert_eq!(lines[2]["family"], "json");
    let (status, err) = listener.interrupt();
    assert!(status.success());
    assert!(err.contains("1 handshake(s) answered"), "{err}");
}
