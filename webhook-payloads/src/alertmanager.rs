//! The Prometheus Alertmanager webhook payload (`version: "4"`).

use std::collections::BTreeMap;

use crate::Timestamp;
use crate::object::json_object;

json_object! {
    /// An Alertmanager webhook notification: a group of alerts.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use webhook_payloads::alertmanager::AlertmanagerPayload;
    /// let p: AlertmanagerPayload = serde_json::from_str(r#"{"version":"4","groupKey":"{}:{}",
    ///   "truncatedAlerts":0,"status":"firing","receiver":"sdk","groupLabels":{},
    ///   "commonLabels":{"alertname":"Down"},"commonAnnotations":{},"externalURL":"http://am:9093",
    ///   "alerts":[{"status":"firing","labels":{"alertname":"Down"},"annotations":{},
    ///   "startsAt":"2024-07-03T18:23:21Z","endsAt":"0001-01-01T00:00:00Z",
    ///   "generatorURL":"http://prom:9090/graph","fingerprint":"c4d7a3f9e1b2a0d8"}]}"#)?;
    /// assert!(p.is_firing());
    /// assert_eq!(p.alerts[0].labels.get("alertname").map(String::as_str), Some("Down"));
    /// assert!(p.alerts[0].ends_at.as_ref().is_some_and(|t| t.unix_nanos().is_none()));
    /// # Ok(()) }
    /// ```
    pub struct AlertmanagerPayload {
        /// `version` (`"4"`).
        version "version": Option<String>,
        /// `groupKey`: identifies the group of alerts (for deduplication).
        group_key "groupKey": Option<String>,
        /// `truncatedAlerts`: how many alerts were left out by `max_alerts`.
        truncated_alerts "truncatedAlerts": Option<u64> [lenient],
        /// `status`: `firing` or `resolved`.
        status "status": Option<String>,
        /// `receiver`.
        receiver "receiver": Option<String>,
        /// `groupLabels`.
        group_labels "groupLabels": Option<BTreeMap<String, String>> [lenient],
        /// `commonLabels`.
        common_labels "commonLabels": Option<BTreeMap<String, String>> [lenient],
        /// `commonAnnotations`.
        common_annotations "commonAnnotations": Option<BTreeMap<String, String>> [lenient],
        /// `externalURL`.
        external_url "externalURL": Option<String>,
        /// `alerts[]`.
        alerts "alerts": Vec<Alert>,
    }
}

crate::object::required!(Vec<Alert>);

impl AlertmanagerPayload {
    /// Whether `status` is `firing`.
    pub fn is_firing(&self) -> bool {
        self.status.as_deref() == Some("firing")
    }
}

json_object! {
    /// One alert of an Alertmanager notification.
    pub struct Alert {
        /// `status`: `firing` or `resolved`.
        status "status": Option<String>,
        /// `labels`.
        labels "labels": BTreeMap<String, String> [lenient],
        /// `annotations`.
        annotations "annotations": Option<BTreeMap<String, String>> [lenient],
        /// `startsAt`.
        starts_at "startsAt": Option<Timestamp>,
        /// `endsAt` (`0001-01-01T00:00:00Z` while firing).
        ends_at "endsAt": Option<Timestamp>,
        /// `generatorURL`.
        generator_url "generatorURL": Option<String>,
        /// `fingerprint`.
        fingerprint "fingerprint": Option<String>,
    }
}

crate::object::required!(BTreeMap<String, String>);
