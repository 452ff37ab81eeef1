//! What `listen` shows of one received event: family, id, subject/type and a one-line summary,
//! taken from the typed payloads of `webhook-payloads`.

use serde_json::Value;
use webhook_payloads::{Family, Payload};

/// The printable facts of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventView {
    pub(crate) family: &'static str,
    pub(crate) id: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) summary: String,
}

/// Deserializing an `EventView` classifies one JSON value with `detect()` (the receiver's
/// default decoder path; `listen` uses its own decoder that classifies whole bodies).
impl<'de> serde::Deserialize<'de> for EventView {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let bytes = serde_json::to_vec(&value).map_err(serde::de::Error::custom)?;
        let found = webhook_payloads::detect(None, &http::HeaderMap::new(), &bytes)
            .map_err(serde::de::Error::custom)?;
        found
            .payloads
            .first()
            .map(view)
            .ok_or_else(|| serde::de::Error::custom("no event"))
    }
}

pub(crate) fn family_name(f: Family) -> &'static str {
    match f {
        Family::Sysdig => "sysdig",
        Family::ConnectSecure => "connectsecure",
        Family::Soveren => "soveren",
        Family::Falco => "falco",
        Family::Alertmanager => "alertmanager",
        Family::CloudEvents => "cloudevents",
        Family::StandardWebhooks => "standard-webhooks",
        _ => "json",
    }
}

fn join<'a>(parts: impl IntoIterator<Item = Option<&'a str>>, sep: &str) -> String {
    parts
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(sep)
}

fn json_summary(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            for key in [
                "message",
                "title",
                "summary",
                "description",
                "name",
                "output",
            ] {
                if let Some(Value::String(s)) = map.get(key) {
                    return s.clone();
                }
            }
            let keys: Vec<&str> = map.keys().take(6).map(String::as_str).collect();
            format!("{{{}}}", keys.join(", "))
        }
        other => other.to_string(),
    }
}

fn str_field<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| v.get(*k).and_then(Value::as_str))
}

/// Facts of one payload.
pub(crate) fn view(p: &Payload<'_>) -> EventView {
    let family = family_name(p.family());
    let (id, subject, summary) = match p {
        Payload::Sysdig(e) => (
            e.id().map(str::to_owned),
            e.event_type().map(str::to_owned),
            e.summary(),
        ),
        Payload::ConnectSecure(a) => {
            let body = a.raw_body().lines().next().unwrap_or_default().to_owned();
            (None, Some(a.subject().as_str().to_owned()), body)
        }
        Payload::Soveren(s) => (
            None,
            s.event_type.as_ref().map(|t| t.as_str().to_owned()),
            join(
                [
                    s.sensitivity.as_ref().map(|x| x.as_str()),
                    s.title.as_deref(),
                ],
                " ",
            ),
        ),
        Payload::Falco(f) => (
            f.uuid.clone(),
            f.rule.clone(),
            join(
                [f.priority.as_ref().map(|x| x.as_str()), f.output.as_deref()],
                " ",
            ),
        ),
        Payload::Alertmanager(a) => {
            let name = a.common_labels.as_ref().and_then(|l| l.get("alertname"));
            (
                a.group_key.clone(),
                a.status.clone(),
                format!(
                    "{} alert(s){}",
                    a.alerts.len(),
                    name.map(|n| format!(": {n}")).unwrap_or_default()
                ),
            )
        }
        Payload::CloudEvent(c) => (
            Some(c.id.clone()),
            Some(c.kind.clone()),
            join([Some(c.source.as_str()), c.subject.as_deref()], " "),
        ),
        Payload::StandardWebhook(s) => (
            str_field(&s.data, &["id"]).map(str::to_owned),
            Some(s.kind.clone()),
            json_summary(&s.data),
        ),
        Payload::Json(v) => (
            str_field(v, &["id", "uuid", "event_id"]).map(str::to_owned),
            str_field(v, &["type", "subject", "event_type", "event"]).map(str::to_owned),
            json_summary(v),
        ),
        _ => (None, None, String::new()),
    };
    EventView {
        family,
        id,
        subject,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(body: &[u8]) -> EventView {
        let found = webhook_payloads::detect(None, &http::HeaderMap::new(), body).unwrap();
        view(&found.payloads[0])
    }

    #[test]
    fn every_fixture_event_gets_id_type_and_summary() {
        let body = include_bytes!("../../fixtures/sysdig/elastic-integrations-test-sysdig.ndjson");
        let found = webhook_payloads::detect(None, &http::HeaderMap::new(), body).unwrap();
        assert_eq!(found.payloads.len(), 8);
        for p in &found.payloads {
            let v = view(p);
            assert_eq!(v.family, "sysdig");
            assert_eq!(v.id.as_deref().map(str::len), Some(32));
            assert!(v.subject.is_some());
            assert!(!v.summary.is_empty());
        }
        let first = view(&found.payloads[0]);
        assert!(
            first.summary.contains("User Management Event Detected"),
            "{}",
            first.summary
        );
    }

    #[test]
    fn other_families() {
        let cs = one(br#"{"subject":"Login Failure","body":"Login Failure for john.doe\nmore"}"#);
        assert_eq!(cs.family, "connectsecure");
        assert_eq!(cs.subject.as_deref(), Some("Login Failure"));
        assert_eq!(cs.summary, "Login Failure for john.doe");
        let j = one(br#"{"id":"e1","type":"thing.created","name":"x"}"#);
        assert_eq!(
            (j.id.as_deref(), j.subject.as_deref()),
            (Some("e1"), Some("thing.created"))
        );
    }
}
