//! Soveren, Falco, Alertmanager, CloudEvents and Standard Webhooks on documented examples.

use serde_json::Value;
use webhook_payloads::alertmanager::AlertmanagerPayload;
use webhook_payloads::cloudevents::CloudEvent;
use webhook_payloads::falco::{FalcoEvent, Priority};
use webhook_payloads::soveren::{Category, EventType, Sensitivity, SoverenEvent};
use webhook_payloads::standard::StandardWebhook;
use webhook_payloads::{decode_array, decode_object};

use super::fixture;

/// parse → serialize gives back the document (unknown fields included).
fn lossless<T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug>(
    path: &str,
) -> T {
    let bytes = fixture(path);
    let parsed: T = decode_object(&bytes).unwrap();
    let original: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), original, "{path}");
    let again: T = serde_json::from_value(original).unwrap();
    assert_eq!(again, parsed);
    parsed
}

#[test]
fn soveren_new_names() {
    let ev: SoverenEvent = lossless("soveren/event-new.json");
    assert_eq!(ev.category, Some(Category::DataAtRisk));
    assert!(!ev.category.as_ref().unwrap().is_legacy_name());
    assert_eq!(ev.event_type, Some(EventType::NewExternalReceiver));
    assert_eq!(ev.sensitivity, Some(Sensitivity::High));
    assert_eq!(
        ev.time.as_ref().unwrap().unix_nanos(),
        Some(1_709_288_130_123_456_000)
    );
    assert_eq!(ev.data_types.as_ref().map(Vec::len), Some(3));
    let sending = ev.sending.as_ref().unwrap();
    assert_eq!(sending.namespace.as_deref(), Some("shop"));
    assert_eq!(
        sending.groups.as_ref().unwrap()[0].name.as_deref(),
        Some("Payments")
    );
    let endpoint = ev.endpoint.as_ref().unwrap();
    assert_eq!(
        (endpoint.method.as_deref(), endpoint.hostname.as_deref()),
        (Some("POST"), Some("api.analytics.example"))
    );
    assert_eq!(
        ev.policy.as_ref().unwrap().name.as_deref(),
        Some("No card data to third parties")
    );
    assert_eq!(
        ev.conflicting_assets.as_ref().unwrap()[0].name.as_deref(),
        Some("legacy-tracker")
    );
    assert_eq!(ev.third_party_ip.as_deref(), Some("198.51.100.23"));
    assert_eq!(ev.extra["risk_score"], 87);
}

#[test]
fn soveren_old_names_and_unknown_values() {
    let ev: SoverenEvent = lossless("soveren/event-old.json");
    assert_eq!(ev.category, Some(Category::NewDataTypes));
    assert!(ev.category.as_ref().unwrap().is_legacy_name());
    assert_eq!(ev.event_type, Some(EventType::NewDataType));
    assert_eq!(
        ev.time.as_ref().unwrap().unix_seconds(),
        Some(1_686_549_600)
    );
    let ev: SoverenEvent = serde_json::from_str(
        r#"{"category":"Shadow AI","event_type":"llm_prompt_leak","sensitivity":"Extreme","time":"last tuesday"}"#,
    )
    .unwrap();
    assert_eq!(ev.category, Some(Category::Other("Shadow AI".into())));
    assert_eq!(
        ev.event_type,
        Some(EventType::Other("llm_prompt_leak".into()))
    );
    assert_eq!(ev.sensitivity, Some(Sensitivity::Other("Extreme".into())));
    assert!(!ev.time.as_ref().unwrap().is_valid());
    let out = serde_json::to_value(&ev).unwrap();
    assert_eq!(out["category"], "Shadow AI");
    assert_eq!(out["time"], "last tuesday");
}

#[test]
fn falcosidekick_event() {
    let ev: FalcoEvent = lossless("falco/falcosidekick.json");
    assert_eq!(ev.priority, Some(Priority::Warning));
    assert_eq!(ev.rule.as_deref(), Some("Read sensitive file untrusted"));
    assert_eq!(
        ev.time.as_ref().unwrap().unix_nanos(),
        Some(1_720_031_001_639_981_110)
    );
    assert_eq!(
        ev.output_field("evt.time").as_deref(),
        Some("1720031001639981110")
    );
    assert_eq!(ev.output_field("user.loginuid").as_deref(), Some("-1"));
    assert_eq!(ev.output_field("k8s.ns.name"), None);
    assert_eq!(ev.tags.as_ref().map(Vec::len), Some(3));
    assert_eq!(Priority::parse("informational"), Priority::Informational);
    assert_eq!(Priority::parse("Loud"), Priority::Other("Loud".into()));
}

#[test]
fn alertmanager_v4() {
    let p: AlertmanagerPayload = lossless("alertmanager/v4.json");
    assert_eq!(p.version.as_deref(), Some("4"));
    assert!(p.is_firing());
    assert_eq!(p.truncated_alerts, Some(0));
    assert_eq!(p.alerts.len(), 2);
    let a = &p.alerts[0];
    assert_eq!(a.labels["instance"], "node-1:9100");
    assert_eq!(
        a.starts_at.as_ref().unwrap().unix_nanos(),
        Some(1_720_031_001_639_000_000)
    );
    let zero = a.ends_at.as_ref().unwrap();
    assert_eq!(
        (zero.unix_seconds(), zero.unix_nanos()),
        (Some(-62_135_596_800), None)
    );
    assert_eq!(p.alerts[1].status.as_deref(), Some("resolved"));
    assert_eq!(p.common_labels.as_ref().unwrap()["severity"], "critical");
}

#[test]
fn cloudevents_structured_and_batch() {
    let ev: CloudEvent = lossless("cloudevents/structured.json");
    assert_eq!(ev.id, "A234-1234-1234");
    assert_eq!(ev.kind, "com.github.pull_request.opened");
    assert_eq!(ev.subject.as_deref(), Some("123"));
    assert_eq!(ev.extension("comexampleothervalue"), Some(&Value::from(5)));
    assert_eq!(ev.data, Some(Value::String("<much wow=\"xml\"/>".into())));
    let batch: Vec<CloudEvent> = decode_array(&fixture("cloudevents/batch.json")).unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0].data.as_ref().unwrap()["appinfoB"], 123);
    assert_eq!(batch[1].data_bytes(), Some(vec![0, 1, 2, 3, 4]));
    let missing = decode_object::<CloudEvent>(br#"{"specversion":"1.0","source":"/s","type":"t"}"#)
        .unwrap_err();
    assert!(
        missing.is_shape() && missing.to_string().contains("`id`"),
        "{missing}"
    );
}

#[test]
fn standard_webhooks_envelope() {
    let ev: StandardWebhook = lossless("standard/envelope.json");
    assert_eq!(ev.kind, "contact.created");
    assert_eq!(ev.timestamp.unix_nanos(), Some(1_667_507_170_344_522_000));
    assert_eq!(ev.data["email"], "john@example.com");
}
