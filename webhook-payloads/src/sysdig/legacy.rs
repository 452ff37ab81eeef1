//! The deprecated (legacy) runtime policy event: flat `policyId`, `actionResults`, `fields` and
//! `eventLabels` as `[{key, value}]` lists, `timestamp` in microseconds plus `timestampNs`.

use std::borrow::Cow;

use crate::TimestampFormat;
use crate::object::json_object;

use super::Action;

json_object! {
    /// A runtime policy event in the deprecated legacy format.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use webhook_payloads::sysdig::SysdigEvent;
    /// let ev: SysdigEvent = r#"{"id":"a","type":"policy","timestamp":1606322948648718,
    ///   "timestampNs":1606322948648718268,"policyId":12,
    ///   "fields":[{"key":"proc.name","value":"bash"}]}"#.parse()?;
    /// let SysdigEvent::LegacyPolicy(p) = ev else { panic!("not legacy") };
    /// assert_eq!(p.timestamp_ns(), Some(1_606_322_948_648_718_268));
    /// assert_eq!(p.field("proc.name"), Some("bash"));
    /// # Ok(()) }
    /// ```
    pub struct LegacyPolicyEvent<'a> {
        /// `id`.
        id "id": Cow<'a, str> [borrow],
        /// `type` (`policy` when present).
        kind "type": Option<Cow<'a, str>> [borrow],
        /// `timestamp`: microseconds since the Unix epoch.
        timestamp_us "timestamp": Option<u64> [lenient] => write_us,
        /// `timestampNs`: nanoseconds since the Unix epoch.
        timestamp_nanos "timestampNs": Option<u64> [lenient],
        /// `originator`.
        originator "originator": Option<Cow<'a, str>> [borrow],
        /// `category`.
        category "category": Option<Cow<'a, str>> [borrow],
        /// `source`.
        source "source": Option<Cow<'a, str>> [borrow],
        /// `name`: the policy name.
        name "name": Option<Cow<'a, str>> [borrow],
        /// `description`.
        description "description": Option<Cow<'a, str>> [borrow],
        /// `severity` 0–7.
        severity "severity": Option<u64> [lenient],
        /// `agentId`.
        agent_id "agentId": Option<u64> [lenient],
        /// `containerId`.
        container_id "containerId": Option<Cow<'a, str>> [borrow],
        /// `machineId`.
        machine_id "machineId": Option<Cow<'a, str>> [borrow],
        /// `hostMac`.
        host_mac "hostMac": Option<Cow<'a, str>> [borrow],
        /// `policyId`.
        policy_id "policyId": Option<u64> [lenient],
        /// `actionResults[]`.
        action_results "actionResults": Option<Vec<Action<'a>>>,
        /// `output`.
        output "output": Option<Cow<'a, str>> [borrow],
        /// `ruleType`.
        rule_type "ruleType": Option<Cow<'a, str>> [borrow],
        /// `ruleSubtype`.
        rule_subtype "ruleSubtype": Option<Cow<'a, str>> [borrow],
        /// `matchedOnDefault`.
        matched_on_default "matchedOnDefault": Option<bool>,
        /// `fields`: `[{key, value}]`.
        fields "fields": Option<Vec<KeyValue>>,
        /// `eventLabels`: `[{key, value}]`.
        event_labels "eventLabels": Option<Vec<KeyValue>>,
        /// `falsePositive`.
        false_positive "falsePositive": Option<bool>,
        /// `baselineId`.
        baseline_id "baselineId": Option<Cow<'a, str>> [borrow],
        /// `isAggregated`.
        is_aggregated "isAggregated": Option<bool>,
    }
}

/// Writes the microsecond `timestamp` as received, or converted to `format`.
fn write_us(us: &Option<u64>, format: Option<TimestampFormat>) -> Option<u64> {
    match format {
        None => *us,
        Some(f) => us
            .and_then(|us| TimestampFormat::Microseconds.to_nanos(us))
            .map(|ns| f.from_nanos(ns)),
    }
}

json_object! {
    /// A `{key, value}` pair of the legacy `fields` and `eventLabels` lists.
    pub struct KeyValue {
        /// `key`.
        key "key": String,
        /// `value` (numbers and booleans are read as their text).
        value "value": Option<String> [lenient],
    }
}

impl LegacyPolicyEvent<'_> {
    /// The instant in nanoseconds: `timestampNs`, else `timestamp` (µs) × 1000.
    pub fn timestamp_ns(&self) -> Option<u64> {
        self.timestamp_nanos
            .or_else(|| self.timestamp_us.and_then(|us| us.checked_mul(1000)))
    }

    /// The severity level of [`Self::severity`].
    pub fn severity_level(&self) -> Option<super::Severity> {
        self.severity.and_then(super::Severity::from_number)
    }

    /// The value of the first `fields` entry named `key`.
    pub fn field(&self, key: &str) -> Option<&str> {
        lookup(self.fields.as_deref(), key)
    }

    /// The value of the first `eventLabels` entry named `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        lookup(self.event_labels.as_deref(), key)
    }
}

fn lookup<'a>(list: Option<&'a [KeyValue]>, key: &str) -> Option<&'a str> {
    list?.iter().find(|kv| kv.key == key)?.value.as_deref()
}
