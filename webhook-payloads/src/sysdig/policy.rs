//! The runtime policy event (`type: policy`, current format): envelope, `actions[]` and
//! `content` with the rule, its output and its `fields`.

use std::collections::BTreeMap;

use super::base::sysdig_event;
use crate::object::json_object;

sysdig_event! {
    /// A runtime policy event in the current format.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use webhook_payloads::sysdig::{SysdigEvent, Severity};
    /// let ev: SysdigEvent = r#"{"id":"17dec715376910362c8c3f62a4ceda2e","type":"policy",
    ///   "timestamp":1720031001639981110,"severity":5,
    ///   "content":{"ruleName":"Terminal shell","fields":{"proc.pid":"42"}}}"#.parse()?;
    /// let SysdigEvent::Policy(p) = ev else { panic!("not a policy event") };
    /// assert_eq!(p.timestamp, 1_720_031_001_639_981_110);
    /// assert_eq!(p.severity_level(), Some(Severity::Medium));
    /// assert_eq!(p.field("proc.pid"), Some("42"));
    /// # Ok(()) }
    /// ```
    pub struct PolicyEvent {
        /// `actions[]`: what the policy's actions did (captures, kills, ...).
        actions "actions": Option<Vec<Action>>,
        /// `content`: the rule that matched.
        content "content": Option<PolicyContent>,
    }
}

impl PolicyEvent {
    /// The value of `content.fields[key]` (`proc.name`, `container.name`, ...).
    pub fn field(&self, key: &str) -> Option<&str> {
        self.content
            .as_ref()?
            .fields
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    /// `content.ruleName`.
    pub fn rule_name(&self) -> Option<&str> {
        self.content.as_ref()?.rule_name.as_deref()
    }
}

json_object! {
    /// The `content` of a policy event.
    pub struct PolicyContent {
        /// `policyId` (often absent).
        policy_id "policyId": Option<u64> [lenient],
        /// `ruleName`.
        rule_name "ruleName": Option<String>,
        /// `ruleType`, e.g. `RULE_TYPE_FALCO`.
        rule_type "ruleType": Option<String>,
        /// `ruleSubtype`.
        rule_subtype "ruleSubtype": Option<String>,
        /// `ruleTags[]`: MITRE, NIST, ... tags.
        rule_tags "ruleTags": Option<Vec<String>>,
        /// `output`: the rule's formatted message.
        output "output": Option<String>,
        /// `fields`: the rule's output fields; numbers arrive as strings (and are kept so).
        fields "fields": Option<BTreeMap<String, String>> [lenient],
        /// `policyVersion`.
        policy_version "policyVersion": Option<u64> [lenient],
        /// `policyOrigin`, e.g. `Sysdig`.
        policy_origin "policyOrigin": Option<String>,
        /// `falsePositive`.
        false_positive "falsePositive": Option<bool>,
        /// `matchedOnDefault`.
        matched_on_default "matchedOnDefault": Option<bool>,
        /// `baselineId`.
        baseline_id "baselineId": Option<String>,
    }
}

json_object! {
    /// One element of `actions[]` (and of the legacy `actionResults[]`).
    pub struct Action {
        /// `type`, e.g. `POLICY_ACTION_CAPTURE`; may be empty.
        kind "type": Option<String>,
        /// `successful`.
        successful "successful": Option<bool>,
        /// `errMsg`.
        err_msg "errMsg": Option<String>,
        /// `token` (capture id).
        token "token": Option<String>,
        /// `afterEventNs`: capture length after the event.
        after_event_ns "afterEventNs": Option<u64> [lenient],
        /// `beforeEventNs`: capture length before the event.
        before_event_ns "beforeEventNs": Option<u64> [lenient],
    }
}
