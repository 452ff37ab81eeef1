//! Property tests: no parser panics on arbitrary JSON or bytes; extraction never panics on
//! arbitrary text; Sysdig timestamps survive any value and resolution.

use proptest::prelude::*;
use serde_json::{Map, Value};
use webhook_core::json::ToJson;
use webhook_payloads::alertmanager::AlertmanagerPayload;
use webhook_payloads::cloudevents::CloudEvent;
use webhook_payloads::connectsecure::{BodyFacts, ConnectSecureAlert, Subject};
use webhook_payloads::falco::FalcoEvent;
use webhook_payloads::soveren::SoverenEvent;
use webhook_payloads::standard::StandardWebhook;
use webhook_payloads::sysdig::{self, SysdigEvent};
use webhook_payloads::{DecodeError, Timestamp, TimestampFormat, decode_object, detect};

const KEYS: &[&str] = &[
    "id",
    "type",
    "timestamp",
    "content",
    "fields",
    "labels",
    "severity",
    "agentId",
    "actions",
    "policyId",
    "timestampNs",
    "eventLabels",
    "subject",
    "body",
    "specversion",
    "source",
    "data",
    "alerts",
    "groupKey",
    "rule",
    "priority",
    "output",
    "time",
    "category",
    "event_type",
    "user",
];
const TYPES: &[&str] = &[
    "policy",
    "command",
    "connection",
    "fileaccess",
    "kubernetes",
    "audittrail",
    "benchmark",
    "hostscanning",
    "x",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // Quarters are exact in binary and decimal (serde_json without `float_roundtrip` may
        // move arbitrary floats by one ulp, which is not what this test is about).
        (-4_000_000i64..4_000_000).prop_map(|q| Value::from(q as f64 / 4.0)),
        ".{0,12}".prop_map(Value::String),
        proptest::sample::select(TYPES).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    proptest::sample::select(KEYS)
                        .prop_map(String::from)
                        .boxed()
                        .prop_union(".{0,6}".boxed()),
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn status_ok(e: &DecodeError) -> bool {
    e.status().as_u16() == 400 || e.status().as_u16() == 422
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_parser_panics_on_arbitrary_json(v in json()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        match SysdigEvent::from_slice(&bytes) {
            Ok(ev) => {
                // Whatever parsed re-parses to itself, written as sent...
                let out = ev.to_json_vec();
                prop_assert_eq!(&SysdigEvent::from_slice(&out).unwrap(), &ev);
                // ...and names the same instant written in nanoseconds, read as such.
                let out = ev.to_vec_with(TimestampFormat::Nanoseconds).unwrap();
                let mut again = SysdigEvent::from_slice(&out).unwrap();
                again.set_timestamp_format(TimestampFormat::Nanoseconds);
                prop_assert_eq!(again.timestamp_ns(), ev.timestamp_ns());
                // The serde-free writer writes exactly what serde_json writes.
                prop_assert_eq!(ev.to_json_vec(), serde_json::to_vec(&ev).unwrap());
                for f in [TimestampFormat::Seconds, TimestampFormat::Microseconds] {
                    let mut via_serde = Vec::new();
                    ev.to_writer_with(&mut via_serde, f).unwrap();
                    prop_assert_eq!(ev.to_vec_with(f).unwrap(), via_serde);
                }
            }
            Err(e) => prop_assert!(e.is_shape(), "{}", e),
        }
        if let Err(e) = sysdig::parse_batch(None, &bytes) { prop_assert!(status_ok(&e)); }
        if let Err(e) = detect(None, &http::HeaderMap::new(), &bytes) { prop_assert!(e.is_shape(), "{}", e); }
        match decode_object::<SoverenEvent>(&bytes) {
            Ok(p) => prop_assert_eq!(p.to_json_vec(), serde_json::to_vec(&p).unwrap()),
            Err(e) => prop_assert!(e.is_shape()),
        }
        match decode_object::<FalcoEvent>(&bytes) {
            Ok(p) => prop_assert_eq!(p.to_json_vec(), serde_json::to_vec(&p).unwrap()),
            Err(e) => prop_assert!(e.is_shape()),
        }
        match decode_object::<AlertmanagerPayload>(&bytes) {
            Ok(p) => prop_assert_eq!(p.to_json_vec(), serde_json::to_vec(&p).unwrap()),
            Err(e) => prop_assert!(e.is_shape()),
        }
        if let Err(e) = decode_object::<CloudEvent>(&bytes) { prop_assert!(e.is_shape()); }
        if let Err(e) = decode_object::<StandardWebhook>(&bytes) { prop_assert!(e.is_shape()); }
        match ConnectSecureAlert::from_slice(&bytes) {
            Ok(a) => { let _ = a.facts(); let _ = a.subject(); }
            Err(e) => prop_assert!(e.is_shape()),
        }
        let via_serde = serde_json::from_value::<SysdigEvent<'static>>(v.clone());
        prop_assert_eq!(via_serde.is_ok(), SysdigEvent::from_slice(&bytes).is_ok());
    }

    #[test]
    fn no_parser_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Err(e) = detect(None, &http::HeaderMap::new(), &bytes) { prop_assert!(status_ok(&e)); }
        if let Err(e) = sysdig::parse_batch(Some("application/x-ndjson"), &bytes) { prop_assert!(status_ok(&e)); }
        if let Err(e) = ConnectSecureAlert::from_slice(&bytes) { prop_assert!(status_ok(&e)); }
    }

    #[test]
    fn extraction_never_panics(body in "\\PC{0,200}", mixed in "(ip |host(name)? |port |company |product: |severity: |user |service |from |CVE-2024-|2024-01-15 |10\\.0\\.0\\.1|::1|00:1b:44:11:3a:b7|[ .,:\\\\\n])*") {
        for text in [body.as_str(), mixed.as_str()] {
            let f = BodyFacts::extract(text);
            for id in &f.cve_ids { prop_assert!(id.starts_with("CVE-")); }
            if let Some(ip) = f.ip { prop_assert!(f.ip_addresses.contains(&ip)); }
            let _ = Subject::parse(text);
            let _ = Timestamp::parse(text);
        }
    }

    #[test]
    fn sysdig_timestamps_exact_at_every_resolution(ts in any::<u64>(), which in 0usize..4) {
        let format = [TimestampFormat::Seconds, TimestampFormat::Milliseconds, TimestampFormat::Microseconds, TimestampFormat::Nanoseconds][which];
        // Nanoseconds, declared: exact for every u64.
        let line = format!(r#"{{"id":"a","type":"policy","timestamp":{ts}}}"#);
        let mut ev = SysdigEvent::from_slice(line.as_bytes()).unwrap();
        ev.set_timestamp_format(TimestampFormat::Nanoseconds);
        prop_assert_eq!(ev.timestamp_ns(), Some(ts));
        let v: Value = serde_json::from_slice(&ev.to_vec_with(format).unwrap()).unwrap();
        prop_assert_eq!(v["timestamp"].as_u64(), Some(format.from_nanos(ts)));
    }

    /// Issue 18: an agent's `timestampFormat` resolution, sent as is and read without being
    /// told, gives the instant, and writes back as sent or at any resolution.
    #[test]
    fn sysdig_timestamps_at_the_senders_resolution(
        ns in 100_000_000_000_000_000u64..=18_000_000_000_000_000_000,
        sent_at in 0usize..4,
        write_at in 0usize..4,
    ) {
        let all = [TimestampFormat::Seconds, TimestampFormat::Milliseconds, TimestampFormat::Microseconds, TimestampFormat::Nanoseconds];
        let (sent_at, write_at) = (all[sent_at], all[write_at]);
        let sent = sent_at.from_nanos(ns);
        let line = format!(r#"{{"id":"a","type":"policy","timestamp":{sent}}}"#);
        let ev = SysdigEvent::from_slice(line.as_bytes()).unwrap();
        let instant = sent_at.to_nanos(sent).unwrap();
        prop_assert_eq!(ev.timestamp_ns(), Some(instant));
        prop_assert_eq!(ev.to_json_vec(), line.as_bytes());
        let v: Value = serde_json::from_slice(&ev.to_vec_with(write_at).unwrap()).unwrap();
        prop_assert_eq!(v["timestamp"].as_u64(), Some(write_at.from_nanos(instant)));
    }
}
