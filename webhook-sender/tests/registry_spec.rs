//! The registry's data layer: `EndpointSpec` and `RegistrySnapshot` round trips, every refusal
//! typed, redaction, audit diffs and the Sysdig `local_forwarding` section.

use std::time::UNIX_EPOCH;

use webhook_core::sysdig_config::SysdigWebhookConfig;
use webhook_core::{EventSet, TimestampFormat};
use webhook_sender::registry::{
    AuthSpec, BatchingSpec, ClientCertificateSpec, ConcurrencySpec, EncodingSpec, FieldChange,
    HeaderSpec, KeySpec, OverflowSpec, QueueSpec, RateLimitSpec, RetrySpec,
};
use webhook_sender::{EndpointSpec, RegistrySnapshot, Sender, SpecError};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OLD_KEY: &str = "old-signing-key-7781";
const PASSWORD: &str = "pa55-w0rd-9931";
const TOKEN: &str = "bearer-t0ken-4410";
const HEADER_TOKEN: &str = "header-t0ken-2207";
const API_KEY: &str = "api-key-value-6650";

/// Every secret value used below, to look for in what must not show them.
fn secrets(key_pem: &str) -> Vec<String> {
    [
        WHSEC,
        OLD_KEY,
        PASSWORD,
        TOKEN,
        HEADER_TOKEN,
        API_KEY,
        key_pem,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

fn client_pem() -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["client.example".to_owned()]).unwrap();
    (ck.cert.pem(), ck.signing_key.serialize_pem())
}

/// A snapshot using every field of a spec at a non-default value.
fn full_snapshot(cert: &str, key: &str) -> RegistrySnapshot {
    let mut signed = EndpointSpec::new("acme-siem", "https://siem.acme.example/hooks");
    signed.tenant = Some("acme".into());
    signed.event_sets = vec!["policies".into()];
    signed.types = vec!["runtime.*".into()];
    signed.labels = vec!["prod".into()];
    signed.paused = true;
    signed.require_test = true;
    signed.auth = AuthSpec::Signature {
        scheme: "svix".into(),
        keys: vec![KeySpec::new(WHSEC), KeySpec::until(OLD_KEY, 1_900_000_000)],
    };
    signed.headers = vec![
        HeaderSpec::new("X-Team", "blue"),
        HeaderSpec::new("X-Api-Key", API_KEY),
    ];
    signed.encoding = EncodingSpec::Ndjson;
    signed.user_agent = Some("AcmeHooks/2.0".into());
    signed.batching = Some(BatchingSpec {
        max_events: Some(250),
        max_bytes: Some(512 * 1024),
        linger_ms: Some(200),
    });
    signed.retry = Some(RetrySpec::Exponential {
        base_ms: 500,
        factor: 2.0,
        cap_ms: 60_000,
        full_jitter: true,
        max_attempts: 6,
    });
    signed.rate_limit = Some(RateLimitSpec {
        requests: 100,
        per_secs: 60,
    });
    signed.concurrency = Some(ConcurrencySpec::Adaptive { min: 1, max: 16 });
    signed.queue = Some(QueueSpec {
        capacity: 5_000,
        overflow: OverflowSpec::DropOldest,
    });
    signed.request_timeout_ms = Some(15_000);
    signed.timestamp_format = Some(TimestampFormat::Nanoseconds);

    let mut basic = EndpointSpec::new("globex-basic", "https://hooks.globex.example/in");
    basic.auth = AuthSpec::Basic {
        username: "globex".into(),
        password: PASSWORD.into(),
    };
    basic.retry = Some(RetrySpec::Fixed {
        delays_ms: vec![0, 1_000, 5_000],
        jitter_percent: 10,
    });
    basic.concurrency = Some(ConcurrencySpec::Fixed { limit: 2 });

    let mut bearer = EndpointSpec::new("initech-bearer", "https://initech.example/hook");
    bearer.auth = AuthSpec::Bearer {
        token: TOKEN.into(),
    };
    bearer.retry = Some(RetrySpec::None);
    bearer.queue = Some(QueueSpec {
        capacity: 10,
        overflow: OverflowSpec::DropNewest,
    });

    let mut header = EndpointSpec::new("gitlab-like", "https://ci.example/hook");
    header.auth = AuthSpec::Header {
        name: "X-Gitlab-Token".into(),
        value: HEADER_TOKEN.into(),
    };
    header.retry = Some(RetrySpec::Svix);

    let mut mtls = EndpointSpec::new("mtls-inline", "https://mtls.example/hook");
    mtls.auth = AuthSpec::ClientCertificate(ClientCertificateSpec::inline(cert, key));

    let mut mtls_files = EndpointSpec::new("mtls-files", "https://mtls.example/other");
    mtls_files.auth = AuthSpec::ClientCertificate(ClientCertificateSpec::files(
        "/etc/hook/client.crt",
        "/etc/hook/client.key",
    ));

    RegistrySnapshot {
        event_sets: vec![EventSet::new("policies", ["policy", "policy.*"])],
        endpoints: vec![signed, basic, bearer, header, mtls, mtls_files],
        ..RegistrySnapshot::default()
    }
}

#[test]
fn json_and_yaml_round_trips_keep_every_field() {
    let (cert, key) = client_pem();
    let snapshot = full_snapshot(&cert, &key);
    snapshot.validate().unwrap();

    let json = snapshot.to_json_string().unwrap();
    assert_eq!(RegistrySnapshot::from_json_str(&json).unwrap(), snapshot);
    assert!(json.contains("\"version\": 1"), "{json}");
    assert!(json.contains("\"type\": \"signature\""), "{json}");
    assert!(json.contains("\"overflow\": \"drop_oldest\""), "{json}");

    let yaml = snapshot.to_yaml_string().unwrap();
    assert_eq!(RegistrySnapshot::from_yaml_str(&yaml).unwrap(), snapshot);

    // Defaults are left out, and read back as defaults.
    let minimal = r#"{"version":1,"endpoints":[{"name":"a","url":"https://a.example/in"}]}"#;
    let read = RegistrySnapshot::from_json_str(minimal).unwrap();
    assert_eq!(
        read.endpoints[0],
        EndpointSpec::new("a", "https://a.example/in")
    );
    assert_eq!(
        serde_json::to_value(&read).unwrap(),
        serde_json::from_str::<serde_json::Value>(minimal).unwrap()
    );
    // The signature scheme defaults to Standard Webhooks.
    let spec: EndpointSpec = serde_json::from_str(
        r#"{"name":"s","url":"https://s.example/","auth":{"type":"signature","keys":[{"secret":"k"}]}}"#,
    )
    .unwrap();
    assert!(
        matches!(&spec.auth, AuthSpec::Signature { scheme, .. } if scheme == "standard-webhooks")
    );
}

#[tokio::test]
async fn a_snapshot_applies_to_a_sender() {
    let (cert, key) = client_pem();
    let mut snapshot = full_snapshot(&cert, &key);
    // The file-based certificate would be loaded by the sender's transport: leave it out here.
    snapshot.endpoints.retain(|e| e.name != "mtls-files");
    let sender = snapshot.apply(Sender::builder()).unwrap().build().unwrap();
    assert!(sender.endpoint_health("acme-siem").is_some());
    assert!(sender.endpoint_health("globex-basic").is_some());
}

#[test]
fn to_config_carries_the_settings() {
    let (cert, key) = client_pem();
    let snapshot = full_snapshot(&cert, &key);
    let config = snapshot.endpoints[0].to_config().unwrap();
    assert_eq!(config.name(), "acme-siem");
    assert!(config.is_paused());
    assert!(config.requires_test());
    assert_eq!(config.subscription().tenant.as_deref(), Some("acme"));
    assert_eq!(config.subscription().event_sets, ["policies"]);
    assert_eq!(config.subscription().labels, ["prod"]);
    assert_eq!(config.endpoint().encoding(), webhook_core::Encoding::Ndjson);

    // Both keys sign while the old one is live; only the new one after it expired.
    let headers = |at: u64| {
        let ep = config.endpoint();
        let events = [webhook_core::Event::builder("e1", "policy")
            .json_bytes(&b"{}"[..])
            .unwrap()];
        let body = ep.encode(&events).unwrap();
        let at = UNIX_EPOCH + std::time::Duration::from_secs(at);
        ep.request("b1", &body, at).unwrap().headers().clone()
    };
    let before = headers(1_800_000_000);
    assert_eq!(
        before["svix-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    assert_eq!(before["x-team"], "blue");
    assert_eq!(before["user-agent"], "AcmeHooks/2.0");
    let after = headers(1_900_000_000);
    assert_eq!(
        after["svix-signature"].to_str().unwrap().split(' ').count(),
        1
    );
}

fn parse_err(json: &str) -> SpecError {
    RegistrySnapshot::from_json_str(json).unwrap_err()
}

fn config_err(spec: &EndpointSpec) -> SpecError {
    spec.to_config().unwrap_err()
}

#[test]
fn every_refusal_is_typed_and_names_the_field() {
    // Unknown fields, at every level.
    for (json, field) in [
        (r#"{"version":1,"endpionts":[]}"#, "endpionts"),
        (
            r#"{"version":1,"endpoints":[{"name":"a","url":"https://a/","urll":"x"}]}"#,
            "urll",
        ),
        (
            r#"{"version":1,"endpoints":[{"name":"a","url":"https://a/","auth":{"type":"bearer","token":"t","tokn":"x"}}]}"#,
            "tokn",
        ),
        (
            r#"{"version":1,"endpoints":[{"name":"a","url":"https://a/","batching":{"max_event":3}}]}"#,
            "max_event",
        ),
        (
            r#"{"version":1,"endpoints":[{"name":"a","url":"https://a/","auth":{"type":"digest"}}]}"#,
            "digest",
        ),
    ] {
        let err = parse_err(json);
        assert!(
            matches!(&err, SpecError::Parse { format: "JSON", message } if message.contains(field)),
            "{err}"
        );
    }
    assert!(matches!(
        RegistrySnapshot::from_yaml_str("version: 1\nendpoints: []\nextra: 1\n"),
        Err(SpecError::Parse { format: "YAML", .. })
    ));
    assert!(matches!(
        parse_err(r#"{"version":2,"endpoints":[]}"#),
        SpecError::UnsupportedVersion(2)
    ));

    // Bad URL.
    let bad_url = EndpointSpec::new("a", "ftp://a.example/in");
    assert!(matches!(
        config_err(&bad_url),
        SpecError::Url { endpoint, url, .. } if endpoint == "a" && url == "ftp://a.example/in"
    ));

    // Reserved header, and a custom header the auth writes: the endpoint builder's error.
    let mut reserved = EndpointSpec::new("a", "https://a.example/in");
    reserved.headers = vec![HeaderSpec::new("Content-Type", "text/plain")];
    let err = config_err(&reserved);
    assert!(matches!(&err, SpecError::Header { endpoint, .. } if endpoint == "a"));
    assert!(
        std::error::Error::source(&err)
            .unwrap()
            .to_string()
            .contains("Content-Type")
    );
    let mut auth_header = EndpointSpec::new("a", "https://a.example/in");
    auth_header.auth = AuthSpec::Bearer {
        token: TOKEN.into(),
    };
    auth_header.headers = vec![HeaderSpec::new("Authorization", "Bearer other")];
    assert!(matches!(config_err(&auth_header), SpecError::Header { .. }));

    // Bad secrets, never echoed.
    let mut bad_whsec = EndpointSpec::new("a", "https://a.example/in");
    bad_whsec.auth = AuthSpec::Signature {
        scheme: "standard-webhooks".into(),
        keys: vec![KeySpec::new("whsec_!!!not-base64")],
    };
    let err = config_err(&bad_whsec);
    assert!(
        matches!(&err, SpecError::Secret { field, .. } if field == "auth.keys[0].secret"),
        "{err}"
    );
    assert!(!err.to_string().contains("not-base64"));
    let mut spaced = EndpointSpec::new("a", "https://a.example/in");
    spaced.auth = AuthSpec::Bearer {
        token: "has space".into(),
    };
    let err = config_err(&spaced);
    assert!(matches!(&err, SpecError::Secret { field, .. } if field == "auth.token"));
    assert!(!err.to_string().contains("has space"));
    let mut no_keys = EndpointSpec::new("a", "https://a.example/in");
    no_keys.auth = AuthSpec::Signature {
        scheme: "standard-webhooks".into(),
        keys: vec![],
    };
    assert!(matches!(config_err(&no_keys), SpecError::Secret { .. }));
    let mut scheme = EndpointSpec::new("a", "https://a.example/in");
    scheme.auth = AuthSpec::Signature {
        scheme: "acme-sig".into(),
        keys: vec![KeySpec::new("k")],
    };
    assert!(matches!(
        config_err(&scheme),
        SpecError::UnknownScheme { scheme, known, .. } if scheme == "acme-sig" && known.contains("github")
    ));
    let mut half_cert = EndpointSpec::new("a", "https://a.example/in");
    half_cert.auth = AuthSpec::ClientCertificate(ClientCertificateSpec {
        cert_pem_file: Some("/c.pem".into()),
        ..ClientCertificateSpec::default()
    });
    assert!(matches!(
        config_err(&half_cert),
        SpecError::Setting {
            field: "auth.key_pem",
            ..
        }
    ));
    // A redacted spec cannot be applied by mistake.
    let redacted = auth_header.redacted();
    assert!(matches!(
        redacted.to_config().unwrap_err(),
        SpecError::Secret { reason, .. } if reason.contains("redaction marker")
    ));

    // Settings out of range.
    let mut zero_batch = EndpointSpec::new("a", "https://a.example/in");
    zero_batch.batching = Some(BatchingSpec {
        max_events: Some(0),
        ..BatchingSpec::default()
    });
    assert!(matches!(
        config_err(&zero_batch),
        SpecError::Setting {
            field: "batching",
            ..
        }
    ));
    let mut empty_retry = EndpointSpec::new("a", "https://a.example/in");
    empty_retry.retry = Some(RetrySpec::Fixed {
        delays_ms: vec![],
        jitter_percent: 0,
    });
    assert!(matches!(
        config_err(&empty_retry),
        SpecError::Setting { field: "retry", .. }
    ));
    let mut zero_rate = EndpointSpec::new("a", "https://a.example/in");
    zero_rate.rate_limit = Some(RateLimitSpec {
        requests: 0,
        per_secs: 1,
    });
    assert!(matches!(
        config_err(&zero_rate),
        SpecError::Setting {
            field: "rate_limit",
            ..
        }
    ));
    let mut zero_queue = EndpointSpec::new("a", "https://a.example/in");
    zero_queue.queue = Some(QueueSpec {
        capacity: 0,
        overflow: OverflowSpec::Block,
    });
    assert!(matches!(config_err(&zero_queue), SpecError::Config { .. }));

    // What an EndpointConfig cannot hold is refused, not dropped.
    let mut insecure = EndpointSpec::new("a", "https://a.example/in");
    insecure.insecure = true;
    assert!(matches!(config_err(&insecure), SpecError::Insecure { .. }));
    let mut millis = EndpointSpec::new("a", "https://a.example/in");
    millis.timestamp_format = Some(TimestampFormat::Milliseconds);
    assert!(matches!(
        config_err(&millis),
        SpecError::TimestampFormat {
            format: TimestampFormat::Milliseconds,
            ..
        }
    ));
}

#[test]
fn snapshot_level_refusals() {
    let a = EndpointSpec::new("a", "https://a.example/in");
    let dup = RegistrySnapshot {
        endpoints: vec![a.clone(), a.clone()],
        ..RegistrySnapshot::default()
    };
    assert!(matches!(dup.validate(), Err(SpecError::DuplicateEndpoint(n)) if n == "a"));

    let mut subscribed = a.clone();
    subscribed.event_sets = vec!["missing".into()];
    let unknown = RegistrySnapshot {
        endpoints: vec![subscribed],
        ..RegistrySnapshot::default()
    };
    assert!(matches!(
        unknown.validate(),
        Err(SpecError::UnknownEventSet { endpoint, event_set }) if endpoint == "a" && event_set == "missing"
    ));
    assert!(matches!(
        unknown.apply(Sender::builder()),
        Err(SpecError::UnknownEventSet { .. })
    ));

    for (sets, name) in [
        (vec![EventSet::new("", ["x"])], ""),
        (vec![EventSet::new("empty", Vec::<String>::new())], "empty"),
        (
            vec![EventSet::new("twice", ["x"]), EventSet::new("twice", ["y"])],
            "twice",
        ),
    ] {
        let bad = RegistrySnapshot {
            event_sets: sets,
            endpoints: vec![a.clone()],
            ..RegistrySnapshot::default()
        };
        assert!(
            matches!(bad.validate(), Err(SpecError::EventSet { name: n, .. }) if n == name),
            "{name}"
        );
    }
}

#[test]
fn no_secret_is_shown_by_debug_redacted_or_changes() {
    let (cert, key) = client_pem();
    let snapshot = full_snapshot(&cert, &key);
    let secrets = secrets(&key);
    let debug = format!("{snapshot:?}");
    let redacted = snapshot.redacted();
    let texts = [
        debug,
        format!("{redacted:?}"),
        redacted.to_json_string().unwrap(),
        redacted.to_yaml_string().unwrap(),
    ];
    for text in &texts {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "a secret leaked into:\n{text}");
        }
        assert!(text.contains("<redacted:sha256:"), "{text}");
    }
    // Non-secret values stay readable.
    let json = redacted.to_json_string().unwrap();
    assert!(json.contains("\"blue\""), "{json}");
    assert!(json.contains("globex"), "{json}");
    assert!(json.contains("/etc/hook/client.key"), "{json}");
    assert!(
        json.contains("BEGIN CERTIFICATE"),
        "the certificate is public: {json}"
    );

    // Changes between the full snapshot and an empty spec of the same names.
    for spec in &snapshot.endpoints {
        let bare = EndpointSpec::new(spec.name.clone(), spec.url.clone());
        for changes in [spec.changes(&bare), bare.changes(spec)] {
            assert!(!changes.is_empty());
            let text = format!("{changes:?}{}", serde_json::to_string(&changes).unwrap());
            for s in &secrets {
                assert!(!text.contains(s.as_str()), "a secret leaked into:\n{text}");
            }
        }
    }
}

fn change(field: &str, old: Option<&str>, new: Option<&str>) -> FieldChange {
    serde_json::from_value(serde_json::json!({"field": field, "old": old, "new": new})).unwrap()
}

#[test]
fn changes_on_each_kind_of_field() {
    let (cert, key) = client_pem();
    let old = full_snapshot(&cert, &key).endpoints.remove(0);
    assert!(old.changes(&old).is_empty());

    let mut new = old.clone();
    new.url = "https://siem.acme.example/v2".into();
    new.tenant = None;
    new.event_sets.push("more".into());
    new.paused = false;
    new.encoding = EncodingSpec::Json;
    new.batching.as_mut().unwrap().max_events = Some(500);
    new.rate_limit = None;
    new.concurrency = Some(ConcurrencySpec::Fixed { limit: 3 });
    new.headers = vec![
        HeaderSpec::new("x-team", "red"),
        HeaderSpec::new("X-Api-Key", API_KEY),
        HeaderSpec::new("X-New", "1"),
    ];
    let changes = old.changes(&new);
    let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "batching.max_events",
            "concurrency",
            "encoding",
            "event_sets",
            "headers.x-new",
            "headers.x-team",
            "paused",
            "rate_limit",
            "tenant",
            "url",
        ]
    );
    assert!(changes.contains(&change(
        "url",
        Some("https://siem.acme.example/hooks"),
        Some("https://siem.acme.example/v2")
    )));
    assert!(changes.contains(&change("batching.max_events", Some("250"), Some("500"))));
    assert!(changes.contains(&change("tenant", Some("acme"), None)));
    assert!(changes.contains(&change("paused", Some("true"), None)));
    assert!(changes.contains(&change("encoding", Some("ndjson"), None)));
    assert!(changes.contains(&change("headers.x-team", Some("blue"), Some("red"))));
    assert!(changes.contains(&change("headers.x-new", None, Some("1"))));
    assert!(changes.contains(&change(
        "event_sets",
        Some(r#"["policies"]"#),
        Some(r#"["policies","more"]"#)
    )));
    assert!(changes.contains(&change(
        "concurrency",
        Some(r#"{"max":16,"min":1,"type":"adaptive"}"#),
        Some(r#"{"limit":3,"type":"fixed"}"#)
    )));

    // Key rotation: the keys change, shown as markers; a secret header's value likewise.
    let mut rotated = old.clone();
    rotated.auth = AuthSpec::Signature {
        scheme: "svix".into(),
        keys: vec![KeySpec::new("brand-new-key-5521")],
    };
    rotated.headers[1].value = "api-key-rotated-1".into();
    let changes = old.changes(&rotated);
    let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["auth.keys", "headers.x-api-key"]);
    let text = serde_json::to_string(&changes).unwrap();
    assert!(!text.contains("brand-new-key-5521") && !text.contains("api-key-rotated-1"));
    assert_ne!(changes[1].old, changes[1].new, "a rotation is visible");
    assert!(
        changes[1]
            .new
            .as_deref()
            .unwrap()
            .starts_with("<redacted:sha256:")
    );

    // Another auth method: one change of the whole auth.
    let mut basic = old.clone();
    basic.auth = AuthSpec::Basic {
        username: "u".into(),
        password: PASSWORD.into(),
    };
    let changes = old.changes(&basic);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].field, "auth");
    assert!(
        changes[0]
            .new
            .as_deref()
            .unwrap()
            .contains("\"username\":\"u\"")
    );

    // Retry kinds and fields.
    let mut retry = old.clone();
    if let Some(RetrySpec::Exponential { max_attempts, .. }) = &mut retry.retry {
        *max_attempts = 9;
    }
    assert_eq!(
        old.changes(&retry),
        [change("retry.max_attempts", Some("6"), Some("9"))]
    );
    retry.retry = Some(RetrySpec::Svix);
    assert_eq!(old.changes(&retry)[0].field, "retry");
}

const TWO_INTEGRATIONS: &str = "
customerid: 0123
local_forwarding:
  enabled: true
  transmit_message_types: [POLICY_EVENTS]
  integrations:
    - type: SYSLOG
      configuration: {address: 10.0.0.1}
    - type: WEBHOOK
      channels: [SECURE_EVENTS_POLICIES]
      configuration:
        endpoint: https://siem.example.com/policies
        auth: SIGNATURE
        secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
        headers:
          - key: X-Tenant
            value: blue
    - type: WEBHOOK
      channels: [ACTIVITY_AUDIT, SECURE_EVENTS_POLICIES]
      configuration:
        endpoint: https://audit.example.com/in
        auth: BASIC_AUTH
        secret: auditor:pa55-w0rd-9931
        output: ndjson
        insecure: true
        timestampFormat: milliseconds
    - type: WEBHOOK
      configuration:
        endpoint: https://everything.example.com/in
        auth: BEARER_TOKEN
        secret: bearer-t0ken-4410
";

#[test]
fn a_sysdig_file_with_several_integrations_becomes_several_endpoints() {
    let snapshot = RegistrySnapshot::from_sysdig_yaml_str(TWO_INTEGRATIONS).unwrap();
    let names: Vec<&str> = snapshot.endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["sysdig-1", "sysdig-2", "sysdig-3"]);
    assert_eq!(
        snapshot.event_sets,
        [
            EventSet::new("SECURE_EVENTS_POLICIES", ["policy"]),
            EventSet::new(
                "ACTIVITY_AUDIT",
                ["command", "connection", "fileaccess", "kubernetes"]
            ),
        ]
    );
    let [policies, audit, everything] = &snapshot.endpoints[..] else {
        panic!("three endpoints");
    };
    assert_eq!(policies.event_sets, ["SECURE_EVENTS_POLICIES"]);
    assert_eq!(
        audit.event_sets,
        ["ACTIVITY_AUDIT", "SECURE_EVENTS_POLICIES"]
    );
    assert!(everything.event_sets.is_empty() && everything.types.is_empty());

    assert!(
        matches!(&policies.auth, AuthSpec::Signature { scheme, keys }
        if scheme == "standard-webhooks" && keys == &[KeySpec::new(WHSEC)])
    );
    assert_eq!(policies.headers, [HeaderSpec::new("X-Tenant", "blue")]);
    assert_eq!(
        audit.auth,
        AuthSpec::Basic {
            username: "auditor".into(),
            password: PASSWORD.into()
        }
    );
    assert_eq!(audit.encoding, EncodingSpec::Ndjson);
    assert!(audit.insecure);
    assert_eq!(audit.timestamp_format, Some(TimestampFormat::Milliseconds));
    assert_eq!(
        everything.auth,
        AuthSpec::Bearer {
            token: TOKEN.into()
        }
    );
    snapshot.validate().unwrap();

    // The same requests as the agent-config reading of each integration.
    let cfg = SysdigWebhookConfig::from_yaml_str(TWO_INTEGRATIONS).unwrap();
    let theirs = cfg.to_forwarding().unwrap().endpoint;
    let ours = policies.to_config().unwrap();
    let request = |ep: &webhook_core::Endpoint| {
        let events = [webhook_core::Event::builder("e", "policy")
            .json_bytes(&b"{}"[..])
            .unwrap()];
        let body = ep.encode(&events).unwrap();
        let at = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let mut headers = ep.request("b1", &body, at).unwrap().headers().clone();
        headers.remove("user-agent");
        headers
    };
    assert_eq!(request(ours.endpoint()), request(&theirs));

    // insecure and milliseconds cannot go through apply; apply_with takes charge of them.
    assert!(matches!(
        snapshot.clone().apply(Sender::builder()),
        Err(SpecError::Insecure { endpoint }) if endpoint == "sysdig-2"
    ));
    let mut seen = Vec::new();
    let _builder = snapshot
        .apply_with(Sender::builder(), |spec, builder| {
            seen.push((spec.name.clone(), spec.insecure, spec.timestamp_format));
            Ok(builder)
        })
        .unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[1],
        ("sysdig-2".into(), true, Some(TimestampFormat::Milliseconds))
    );

    // The section alone, and JSON, read the same.
    let section = RegistrySnapshot::from_sysdig_json_str(
        r#"{"integrations":[{"type":"WEBHOOK","channels":["ACTIVITY_AUDIT"],
            "configuration":{"endpoint":"https://a.example/in"}}]}"#,
    )
    .unwrap();
    assert_eq!(section.endpoints[0].event_sets, ["ACTIVITY_AUDIT"]);
}

#[test]
fn sysdig_refusals_are_typed() {
    let unknown = RegistrySnapshot::from_sysdig_yaml_str(
        "integrations:\n  - type: WEBHOOK\n    channels: [SECURE_AUDIT]\n    configuration: {endpoint: 'https://a/'}\n",
    );
    assert!(matches!(
        unknown,
        Err(SpecError::UnknownChannel { integration, channel })
            if integration == "sysdig-1" && channel == "SECURE_AUDIT"
    ));
    let none = RegistrySnapshot::from_sysdig_yaml_str(
        "local_forwarding:\n  integrations:\n    - type: SYSLOG\n      configuration: {}\n",
    );
    assert!(matches!(none, Err(SpecError::Sysdig { .. })), "{none:?}");
    let missing_secret = RegistrySnapshot::from_sysdig_yaml_str(
        "integrations:\n  - type: WEBHOOK\n    configuration: {endpoint: 'https://a/', auth: BEARER_TOKEN}\n",
    );
    assert!(matches!(missing_secret, Err(SpecError::Sysdig { .. })));
    let reserved = RegistrySnapshot::from_sysdig_yaml_str(
        "integrations:\n  - type: WEBHOOK\n    configuration:\n      endpoint: 'https://a/'\n      headers: [{key: Host, value: x}]\n",
    );
    let err = reserved.unwrap_err();
    assert!(matches!(&err, SpecError::Sysdig { integration, .. } if integration == "sysdig-1"));
    assert!(
        std::error::Error::source(&err)
            .unwrap()
            .to_string()
            .contains("Host")
    );
}

/// Issue 18: a snapshot's secrets are read as the scheme's senders hand them out: Stripe's
/// `whsec_...` endpoint secret is the literal HMAC key, Standard Webhooks' is base64.
#[test]
fn signature_keys_are_read_by_their_scheme() {
    use webhook_core::{KeyRing, Scheme, Secret, Verifier};
    let spec = |scheme: &str, secret: &str| {
        let json = format!(
            r#"{{"version":1,"endpoints":[{{"name":"a","url":"https://a.example/in",
                "auth":{{"type":"signature","scheme":"{scheme}","keys":[{{"secret":"{secret}"}}]}}}}]}}"#
        );
        RegistrySnapshot::from_json_str(&json).unwrap().endpoints[0]
            .to_config()
            .unwrap()
    };
    let at = UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    let request = |config: &webhook_sender::EndpointConfig| {
        let ep = config.endpoint();
        let events = [webhook_core::Event::builder("e1", "invoice.paid")
            .json_bytes(&b"{}"[..])
            .unwrap()];
        let body = ep.encode(&events).unwrap();
        let req = ep.request("b1", &body, at).unwrap();
        (req.headers().clone(), body)
    };
    let (headers, body) = request(&spec("stripe", "whsec_test"));
    let literal = KeyRing::single(Secret::from_bytes("whsec_test").unwrap());
    Verifier::new(Scheme::stripe(), &literal)
        .unwrap()
        .verify(&headers, &body.bytes, at)
        .unwrap();
    let (headers, body) = request(&spec("standard-webhooks", WHSEC));
    let decoded = KeyRing::single(Secret::from_whsec(WHSEC).unwrap());
    Verifier::new(Scheme::standard_webhooks(), &decoded)
        .unwrap()
        .verify(&headers, &body.bytes, at)
        .unwrap();
    // An Ed25519 public key is no HMAC secret: refused by field.
    let json = r#"{"version":1,"endpoints":[{"name":"a","url":"https://a.example/in",
        "auth":{"type":"signature","scheme":"github","keys":[{"secret":"whpk_AAAA"}]}}]}"#;
    let err = config_err(&RegistrySnapshot::from_json_str(json).unwrap().endpoints[0]);
    assert!(err.to_string().contains("auth.keys[0].secret"), "{err}");
}
