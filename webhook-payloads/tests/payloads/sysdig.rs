//! Sysdig: the real events, documented formats, lossless round trips, timestamp resolutions.

use serde_json::Value;
use webhook_payloads::sysdig::{self, Severity, SysdigEvent};
use webhook_payloads::{DecodeError, Framing, TimestampFormat};

use super::{REAL_SYSDIG, fixture};

const REAL_TIMESTAMPS: [u64; 8] = [
    1_720_031_001_639_981_110,
    1_720_030_997_187_167_383,
    1_720_026_926_000_000_000,
    1_720_453_755_887_574_113,
    1_720_453_939_637_554_200,
    1_720_026_578_020_799_700,
    1_720_026_588_650_814_700,
    1_606_322_948_648_718_268,
];

fn variant(ev: &SysdigEvent<'_>) -> &'static str {
    match ev {
        SysdigEvent::Policy(_) => "policy",
        SysdigEvent::LegacyPolicy(_) => "legacy",
        SysdigEvent::Command(_) => "command",
        SysdigEvent::Connection(_) => "connection",
        SysdigEvent::FileAccess(_) => "fileaccess",
        SysdigEvent::Kubernetes(_) => "kubernetes",
        SysdigEvent::AuditTrail(_) => "audittrail",
        SysdigEvent::Benchmark(_) => "benchmark",
        SysdigEvent::HostScanning(_) => "hostscanning",
        SysdigEvent::Unknown(_) => "unknown",
        _ => "new variant",
    }
}

#[test]
fn every_real_line_parses_into_its_variant_with_exact_timestamps() {
    let events = sysdig::parse_ndjson(REAL_SYSDIG.as_bytes()).unwrap();
    let kinds: Vec<_> = events.iter().map(variant).collect();
    assert_eq!(
        kinds,
        [
            "policy",
            "policy",
            "policy",
            "audittrail",
            "connection",
            "command",
            "fileaccess",
            "kubernetes"
        ]
    );
    let ts: Vec<_> = events.iter().map(|e| e.timestamp_ns().unwrap()).collect();
    assert_eq!(ts, REAL_TIMESTAMPS);
    // Each line alone gives the same event as the batch, and its type is kept as sent.
    for (line, ev) in REAL_SYSDIG.lines().zip(&events) {
        assert_eq!(&SysdigEvent::from_slice(line.as_bytes()).unwrap(), ev);
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(ev.event_type(), v["type"].as_str());
        assert_eq!(ev.id(), v["id"].as_str());
    }
}

#[test]
fn real_policy_events_in_detail() {
    let events = sysdig::parse_ndjson(REAL_SYSDIG.as_bytes()).unwrap();
    let SysdigEvent::Policy(p) = &events[0] else {
        panic!("policy expected")
    };
    assert_eq!(p.id, "17dec715376910362c8c3f62a4ceda2e");
    assert_eq!(p.severity, Some(7));
    assert_eq!(p.severity_level(), Some(Severity::Info));
    assert_eq!(p.agent_id, Some(58_014_837));
    assert_eq!(p.machine_id.as_deref(), Some("42:01:0a:80:00:05"));
    assert_eq!(p.rule_name(), Some("User Management Event Detected"));
    assert_eq!(p.field("proc.pid"), Some("2140169"));
    assert_eq!(p.field("user.uid"), Some("0"));
    let content = p.content.as_ref().unwrap();
    assert_eq!(content.policy_version, Some(35));
    assert_eq!(content.policy_id, None);
    assert_eq!(content.rule_tags.as_ref().map(Vec::len), Some(11));
    assert_eq!(
        p.label("kubernetes.pod.name"),
        Some("threatgen-c65cf6446-5s8kk")
    );
    assert_eq!(p.labels.as_ref().map(|l| l.len()), Some(14));
    assert!(p.extra.is_empty() && content.extra.is_empty());

    let SysdigEvent::Policy(p) = &events[1] else {
        panic!("policy expected")
    };
    assert_eq!(p.severity_level(), Some(Severity::Medium));
    let action = &p.actions.as_ref().unwrap()[0];
    assert_eq!(action.kind.as_deref(), Some(""));
    assert_eq!(action.successful, Some(false));
    assert_eq!(action.after_event_ns, Some(30_000_000_000));
    assert_eq!(action.before_event_ns, Some(15_000_000_000));
    // The escaped quotes of the command line are decoded.
    assert!(
        p.field("proc.cmdline")
            .unwrap()
            .contains(r#"s.bind(("127.0.0.1",8080))"#)
    );

    let SysdigEvent::Policy(p) = &events[2] else {
        panic!("policy expected")
    };
    assert_eq!(p.agent_id, None);
    assert_eq!(p.source.as_deref(), Some("aws_cloudtrail"));
    assert_eq!(p.field("container.name"), Some(""));

    let SysdigEvent::Kubernetes(k) = &events[7] else {
        panic!("kubernetes expected")
    };
    assert_eq!(k.name.as_deref(), Some("nginx-76f9cf7469-k5kf7"));
    assert_eq!(k.resource, None);
}

#[test]
fn real_events_round_trip_losslessly() {
    for line in REAL_SYSDIG.lines() {
        let original: Value = serde_json::from_str(line).unwrap();
        let ev = SysdigEvent::from_slice(line.as_bytes()).unwrap();
        assert_eq!(serde_json::to_value(&ev).unwrap(), original, "{line}");
        let bytes = ev.to_vec_with(TimestampFormat::Nanoseconds).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), original);
        assert_eq!(SysdigEvent::from_slice(&bytes).unwrap(), ev);
        // The owned copy and the generic `Deserialize` path agree with the borrowed one.
        let owned: SysdigEvent<'static> = line.parse().unwrap();
        assert_eq!(owned, ev);
        let via_serde: SysdigEvent<'_> = serde_json::from_str(line).unwrap();
        assert_eq!(via_serde, ev);
    }
}

#[test]
fn real_events_as_a_json_array() {
    let body = format!("[{}]", REAL_SYSDIG.lines().collect::<Vec<_>>().join(",\n"));
    let (framing, events) = sysdig::parse_batch(None, body.as_bytes()).unwrap();
    assert_eq!(framing, Framing::Array);
    assert_eq!(
        events,
        sysdig::parse_ndjson(REAL_SYSDIG.as_bytes()).unwrap()
    );
    let mut out = Vec::new();
    sysdig::write_array(&events, &mut out, TimestampFormat::Nanoseconds).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&out).unwrap(),
        serde_json::from_str::<Value>(&body).unwrap()
    );
    let mut nd = Vec::new();
    sysdig::write_ndjson(&events, &mut nd, TimestampFormat::Nanoseconds).unwrap();
    assert_eq!(sysdig::parse_ndjson(&nd).unwrap(), events);
}

#[test]
fn timestamp_written_at_every_resolution() {
    let line = REAL_SYSDIG.lines().next().unwrap();
    let ev = SysdigEvent::from_slice(line.as_bytes()).unwrap();
    let original: Value = serde_json::from_str(line).unwrap();
    for (format, want) in [
        (TimestampFormat::Seconds, 1_720_031_001_u64),
        (TimestampFormat::Milliseconds, 1_720_031_001_639),
        (TimestampFormat::Microseconds, 1_720_031_001_639_981),
        (TimestampFormat::Nanoseconds, 1_720_031_001_639_981_110),
    ] {
        let mut v: Value = serde_json::from_slice(&ev.to_vec_with(format).unwrap()).unwrap();
        assert_eq!(v["timestamp"].as_u64(), Some(want), "{format}");
        v["timestamp"] = original["timestamp"].clone();
        assert_eq!(v, original, "only the timestamp changes");
        assert_eq!(
            format.to_nanos(want).map(|n| format.from_nanos(n)),
            Some(want)
        );
    }
}

#[test]
fn documented_batch_with_unknown_fields_and_types() {
    let body = fixture("sysdig/batch.json");
    let (framing, events) = sysdig::parse_batch(Some("application/json"), &body).unwrap();
    assert_eq!(framing, Framing::Array);
    let SysdigEvent::Policy(p) = &events[0] else {
        panic!("policy expected")
    };
    assert_eq!(p.timestamp, u64::MAX);
    assert_eq!(p.severity_level(), Some(Severity::High), "\"2\" read as 2");
    assert_eq!(p.agent_id, Some(58_014_837));
    let c = p.content.as_ref().unwrap();
    assert_eq!(c.policy_version, Some(7));
    assert_eq!(c.policy_id, Some(10012));
    assert_eq!(p.field("fd.name"), Some("/etc/\"quoted\""));
    assert_eq!(p.field("proc.pid"), Some("2140169"));
    assert_eq!(p.field("evt.res"), Some("true"));
    assert_eq!(p.field("gone"), None);
    assert!(c.output.as_deref().unwrap().contains("/etc/été"));
    assert_eq!(p.extra["zoneIds"], serde_json::json!(["zone-1"]));
    assert_eq!(
        c.extra["policyNotificationChannelIds"],
        serde_json::json!([41, 42])
    );
    assert_eq!(
        p.actions.as_ref().unwrap()[0].extra["futureAction"]["retries"],
        2
    );

    let SysdigEvent::Unknown(raw) = &events[1] else {
        panic!("unknown expected")
    };
    assert_eq!(raw["timestamp"].as_u64(), Some(1_720_453_939_637_554_200));
    assert_eq!(events[1].event_type(), Some("vulnmanagement"));
    assert_eq!(events[1].timestamp_ns(), Some(1_720_453_939_637_554_200));
    assert_eq!(raw["content"]["vulnerabilities"][0]["cvss"], 9.8);

    // parse → serialize → parse loses nothing, unknown fields and types included.
    let mut out = Vec::new();
    sysdig::write_array(&events, &mut out, TimestampFormat::Nanoseconds).unwrap();
    let (_, again) = sysdig::parse_batch(None, &out).unwrap();
    assert_eq!(again, events);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("\"timestamp\":18446744073709551615"));
    assert!(text.contains("policyNotificationChannelIds") && text.contains("futureAction"));
}

#[test]
fn legacy_policy_event() {
    let body = fixture("sysdig/legacy-policy.json");
    let ev = SysdigEvent::from_slice(&body).unwrap();
    let SysdigEvent::LegacyPolicy(p) = &ev else {
        panic!("legacy expected, got {ev:?}")
    };
    assert_eq!(p.timestamp_us, Some(1_606_322_948_648_718));
    assert_eq!(p.timestamp_ns(), Some(1_606_322_948_648_718_268));
    assert_eq!(ev.timestamp_ns(), Some(1_606_322_948_648_718_268));
    assert_eq!(p.policy_id, Some(1_002_385));
    assert_eq!(p.severity_level(), Some(Severity::Medium));
    assert_eq!(p.field("proc.pid"), Some("28342"));
    assert_eq!(p.label("kubernetes.namespace.name"), Some("nginx"));
    let r = &p.action_results.as_ref().unwrap()[0];
    assert_eq!(r.kind.as_deref(), Some("POLICY_ACTION_CAPTURE"));
    assert_eq!(r.after_event_ns, Some(20_000_000_000));
    assert!(p.extra.is_empty());
    let original: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(serde_json::to_value(&ev).unwrap(), original);
    let ms: Value =
        serde_json::from_slice(&ev.to_vec_with(TimestampFormat::Milliseconds).unwrap()).unwrap();
    assert_eq!(ms["timestamp"].as_u64(), Some(1_606_322_948_648));
    assert_eq!(ms["timestampNs"].as_u64(), Some(1_606_322_948_648_718_268));
    // Legacy without `type`, and the generic path, agree.
    let mut no_type = original.clone();
    no_type.as_object_mut().unwrap().remove("type");
    let bytes = serde_json::to_vec(&no_type).unwrap();
    assert!(matches!(
        SysdigEvent::from_slice(&bytes).unwrap(),
        SysdigEvent::LegacyPolicy(_)
    ));
    assert_eq!(SysdigEvent::from_value(original).unwrap(), ev);
}

#[test]
fn activity_and_platform_events() {
    let body = fixture("sysdig/activity.ndjson");
    let (framing, events) = sysdig::parse_batch(None, &body).unwrap();
    assert_eq!(framing, Framing::Ndjson);
    let kinds: Vec<_> = events.iter().map(variant).collect();
    assert_eq!(
        kinds,
        [
            "command",
            "connection",
            "fileaccess",
            "kubernetes",
            "audittrail",
            "benchmark",
            "hostscanning"
        ]
    );
    let SysdigEvent::Command(c) = &events[0] else {
        unreachable!()
    };
    assert_eq!(c.timestamp, 1_720_026_578_020_799_701);
    assert_eq!(c.cmdline.as_deref(), Some("bash -c cat /etc/shadow"));
    assert_eq!(
        (c.pid, c.ppid, c.uid, c.tty),
        (Some(48211), Some(48190), Some(0), Some(34816))
    );
    assert_eq!(c.user_login_uid, Some(-1));
    assert_eq!(c.username.as_deref(), Some("root"));
    let SysdigEvent::Connection(c) = &events[1] else {
        unreachable!()
    };
    assert_eq!(c.client_ip(), Some("10.8.0.17".parse().unwrap()));
    assert_eq!(c.server_ip(), Some("142.250.72.14".parse().unwrap()));
    assert_eq!((c.client_port, c.server_port), (Some(51234), Some(443)));
    assert_eq!(c.l4_protocol.as_deref(), Some("tcp"));
    assert_eq!(
        c.dns_domains.as_deref().map(|d| d[0].as_ref()),
        Some("www.google.com")
    );
    let SysdigEvent::FileAccess(f) = &events[2] else {
        unreachable!()
    };
    assert_eq!(f.filename.as_deref(), Some("/etc/passwd"));
    assert_eq!(f.permissions.as_deref(), Some("w"));
    let SysdigEvent::Kubernetes(k) = &events[3] else {
        unreachable!()
    };
    assert_eq!(k.sub_resource.as_deref(), Some("exec"));
    let user = k.user.as_ref().unwrap();
    assert_eq!(user.username.as_deref(), Some("system:admin"));
    assert_eq!(user.groups.as_ref().map(Vec::len), Some(2));
    assert_eq!(k.args.as_ref().unwrap().container.as_deref(), Some("nginx"));
    let SysdigEvent::AuditTrail(a) = &events[4] else {
        unreachable!()
    };
    let content = a.content.as_ref().unwrap();
    assert_eq!(content.timestamp_ns, Some(1_720_453_755_887_574_114));
    assert_eq!(content.user_id, Some(40123));
    assert_eq!(content.request_method.as_deref(), Some("PUT"));
    assert_eq!(content.response_status_code, Some(200));
    assert_eq!(
        content.entity_payload,
        Some(Value::String("{\"enabled\":false}".into()))
    );
    assert_eq!(a.severity_level(), Some(Severity::High));
    let SysdigEvent::Benchmark(b) = &events[5] else {
        unreachable!()
    };
    assert_eq!(b.content_u64("passCount"), Some(97));
    assert_eq!(b.content_u64("failCount"), Some(12));
    assert_eq!(b.content_str("taskName"), Some("cis-k8s-weekly"));
    let SysdigEvent::HostScanning(h) = &events[6] else {
        unreachable!()
    };
    assert_eq!(h.content_str("hostname"), Some("gke-node-1"));
    for (line, ev) in std::str::from_utf8(&body).unwrap().lines().zip(&events) {
        let original: Value = serde_json::from_str(line).unwrap();
        assert_eq!(serde_json::to_value(ev).unwrap(), original);
    }
}

#[test]
fn errors_are_typed_and_positioned() {
    // A malformed third line: 400, line 3.
    let body = b"{\"id\":\"a\",\"type\":\"command\",\"timestamp\":1}\n\n{\"id\":\"b\",\n";
    let err = sysdig::parse_ndjson(body).unwrap_err();
    assert!(err.is_malformed(), "{err}");
    assert_eq!(err.line(), Some(3));
    // A well-formed line of the wrong shape: 422, line 2, column inside that line.
    let body = b"{\"id\":\"a\",\"type\":\"command\",\"timestamp\":1}\n{\"id\":\"b\",\"type\":\"policy\",\"timestamp\":\"soon\"}\n";
    let err = sysdig::parse_ndjson(body).unwrap_err();
    assert!(matches!(err, DecodeError::Shape { line: 2, .. }), "{err}");
    assert_eq!(err.status(), http::StatusCode::UNPROCESSABLE_ENTITY);
    // In an array, the position is where the bad element sits in the body.
    let body = b"[\n {\"id\":\"a\",\"type\":\"command\",\"timestamp\":1},\n {\"id\":\"b\",\"type\":\"command\"}\n]";
    let err = sysdig::parse_batch(None, body).unwrap_err();
    assert!(matches!(err, DecodeError::Shape { line: 3, .. }), "{err}");
    assert!(err.to_string().contains("timestamp"), "{err}");
    // A negative or fractional timestamp is not a timestamp.
    for bad in [
        &br#"{"id":"a","type":"policy","timestamp":-1}"#[..],
        br#"{"id":"a","type":"policy","timestamp":1.5}"#,
    ] {
        assert!(SysdigEvent::from_slice(bad).unwrap_err().is_shape());
    }
    // No `type`: kept as unknown, not an error.
    assert!(matches!(
        SysdigEvent::from_slice(br#"{"id":"x"}"#).unwrap(),
        SysdigEvent::Unknown(_)
    ));
    assert!(matches!(
        sysdig::parse_ndjson(b"\n \n"),
        Err(DecodeError::Empty)
    ));
}

#[test]
fn escaped_keys_take_the_slow_path() {
    let ev =
        SysdigEvent::from_slice(br#"{"i\u0064":"a","\u0074ype":"comm\u0061nd","timestamp":7}"#)
            .unwrap();
    let SysdigEvent::Command(c) = ev else {
        panic!("command expected")
    };
    assert_eq!((c.id.as_ref(), c.timestamp.value()), ("a", 7));
}

/// Found by the arbitrary-JSON property on a fresh seed: a legacy-only key whose value is `null`
/// made an event "legacy", but absent fields are not written back, so the round trip turned it
/// into an unknown event. A `null` marker no longer counts.
#[test]
fn null_legacy_markers_do_not_make_an_event_legacy() {
    for body in [
        r#"{"id":"","policyId":null}"#,
        r#"{"id":"a","type":"policy","timestamp":1,"timestampNs":null,"eventLabels":null}"#,
        r#"{"id":"a","actionResults":null}"#,
    ] {
        let ev = SysdigEvent::from_slice(body.as_bytes()).unwrap();
        assert_ne!(variant(&ev), "legacy", "{body}");
        let out = serde_json::to_vec(&ev).unwrap();
        assert_eq!(SysdigEvent::from_slice(&out).unwrap(), ev, "{body}");
        let via_value: SysdigEvent<'static> = serde_json::from_str(body).unwrap();
        assert_eq!(variant(&via_value), variant(&ev), "{body}");
    }
    // A non-null marker still selects the legacy format.
    let legacy = SysdigEvent::from_slice(br#"{"id":"a","policyId":7}"#).unwrap();
    assert_eq!(variant(&legacy), "legacy");
}

#[test]
fn serde_free_writer_matches_serde_json_on_every_fixture_event() {
    use webhook_core::json::ToJson;
    let mut bodies = vec![REAL_SYSDIG.as_bytes().to_vec()];
    for f in [
        "sysdig/activity.ndjson",
        "sysdig/batch.json",
        "sysdig/legacy-policy.json",
    ] {
        bodies.push(fixture(f));
    }
    let mut checked = 0;
    for body in &bodies {
        let (_, events) = sysdig::parse_batch(None, body).unwrap();
        for ev in &events {
            assert_eq!(ev.to_json_vec(), serde_json::to_vec(ev).unwrap());
            for f in [
                TimestampFormat::Seconds,
                TimestampFormat::Milliseconds,
                TimestampFormat::Microseconds,
                TimestampFormat::Nanoseconds,
            ] {
                let mut via_serde = Vec::new();
                ev.to_writer_with(&mut via_serde, f).unwrap();
                assert_eq!(ev.to_vec_with(f).unwrap(), via_serde);
            }
            // The event the sender carries holds exactly these bytes.
            let event = webhook_core::Event::builder("e", "policy")
                .json(ev)
                .unwrap();
            assert_eq!(event.body()[..], serde_json::to_vec(ev).unwrap()[..]);
            checked += 1;
        }
    }
    assert!(checked >= 12, "{checked}");
}

#[test]
fn payload_types_escape_line_breaks_by_construction() {
    use webhook_core::json::ToJson;
    // `EventBuilder::json` skips its line-break scan for these (and runs it in debug builds).
    const {
        assert!(SysdigEvent::ESCAPES_LINE_BREAKS);
        assert!(sysdig::PolicyEvent::ESCAPES_LINE_BREAKS);
        assert!(webhook_payloads::connectsecure::ConnectSecureAlert::ESCAPES_LINE_BREAKS);
        assert!(webhook_payloads::soveren::SoverenEvent::ESCAPES_LINE_BREAKS);
        assert!(webhook_payloads::falco::FalcoEvent::ESCAPES_LINE_BREAKS);
        assert!(webhook_payloads::alertmanager::AlertmanagerPayload::ESCAPES_LINE_BREAKS);
    }
    let ev = SysdigEvent::from_slice(
        br#"{"id":"a","type":"command","timestamp":1,"cmdline":"two\nlines\r\n"}"#,
    )
    .unwrap();
    let body = ev.to_json_vec();
    assert!(!body.contains(&b'\n') && !body.contains(&b'\r'));
    let event = webhook_core::Event::builder("a", "command")
        .json(&ev)
        .unwrap();
    assert_eq!(event.body()[..], body[..]);
}

/// Fuzz finding (`fuzz/` target `payloads`): an object that repeats `type` was dispatched by
/// the first one and kept the last one in its `type` field, so a `connection` variant said
/// `audittrail` and read back as an audit-trail event once written. The last `type` decides, as
/// `serde_json` reads it: the variant and `event_type()` agree, and a round trip keeps both.
#[test]
fn a_repeated_type_is_read_as_its_last_value_everywhere() {
    let body = br#"{"id":"17e047be24848be2ae63efba47ac8870","type":"connection","timestamp":1720453939637554201,"clientPort":51234,"type":"audittrail","timestamp":1720453755887574114,"content":{"userId":40123}}"#;
    let ev = SysdigEvent::from_slice(body).unwrap();
    assert_eq!(variant(&ev), "audittrail");
    assert_eq!(ev.event_type(), Some("audittrail"));
    assert_eq!(ev.timestamp_ns(), Some(1_720_453_755_887_574_114));
    let written = serde_json::to_vec(&ev).unwrap();
    assert_eq!(SysdigEvent::from_slice(&written).unwrap(), ev);
    // Both ways round: the last `type` also wins over a first one of another variant.
    let body = br#"{"id":"a","type":"audittrail","timestamp":1,"type":"command","cmdline":"ls"}"#;
    let ev = SysdigEvent::from_slice(body).unwrap();
    assert_eq!(variant(&ev), "command");
    assert_eq!(ev.event_type(), Some("command"));
    // A batch reads each record the same way.
    let batch = [&b"["[..], body, b"]"].concat();
    let (_, events) = sysdig::parse_batch(None, &batch).unwrap();
    assert_eq!(events, vec![ev]);
}
