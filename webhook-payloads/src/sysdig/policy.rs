//! The runtime policy event (`type: policy`, current format): envelope, `actions[]` and
//! `content` with the rule, its output and its `fields`.

use std::borrow::Cow;

use super::StringMap;

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
        actions "actions": Option<Vec<Action<'a>>>,
        /// `content`: the rule that matched.
        content "content": Option<PolicyContent<'a>>,
    }
}

impl PolicyEvent<'_> {
    /// The value of `content.fields[key]` (`proc.name`, `container.name`, ...).
    pub fn field(&self, key: &str) -> Option<&str> {
        self.content.as_ref()?.fields.as_ref()?.get(key)
    }

    /// `content.ruleName`.
    pub fn rule_name(&self) -> Option<&str> {
        self.content.as_ref()?.rule_name.as_deref()
    }
}

json_object! {
    /// The `content` of a policy event.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use webhook_payloads::sysdig::PolicyContent;
    /// let c: PolicyContent<'_> = serde_json::from_str(
    ///     r#"{"ruleName":"r","fields":{"proc.pid":"42"},"policyVersion":"3","newField":1}"#)?;
    /// assert_eq!(c.policy_version, Some(3));
    /// assert_eq!(c.fields.as_ref().and_then(|f| f.get("proc.pid")), Some("42"));
    /// assert_eq!(c.extra["newField"], 1);
    /// # Ok(()) }
    /// ```
    pub struct PolicyContent<'a> {
        /// `policyId` (often absent).
        policy_id "policyId": Option<u64> [lenient],
        /// `ruleName`.
        rule_name "ruleName": Option<Cow<'a, str>> [borrow],
        /// `ruleType`, e.g. `RULE_TYPE_FALCO`.
        rule_type "ruleType": Option<Cow<'a, str>> [borrow],
        /// `ruleSubtype`.
        rule_subtype "ruleSubtype": Option<Cow<'a, str>> [borrow],
        /// `ruleTags[]`: MITRE, NIST, ... tags.
        rule_tags "ruleTags": Option<Vec<Cow<'a, str>>> [borrow],
        /// `output`: the rule's formatted message.
        output "output": Option<Cow<'a, str>> [borrow],
        /// `fields`: the rule's output fields; numbers arrive as strings (and are kept so).
        fields "fields": Option<StringMap<'a>> [borrow],
        /// `policyVersion`.
        policy_version "policyVersion": Option<u64> [lenient],
        /// `policyOrigin`, e.g. `Sysdig`.
        policy_origin "policyOrigin": Option<Cow<'a, str>> [borrow],
        /// `falsePositive`.
        false_positive "falsePositive": Option<bool>,
        /// `matchedOnDefault`.
        matched_on_default "matchedOnDefault": Option<bool>,
        /// `baselineId`.
        baseline_id "baselineId": Option<Cow<'a, str>> [borrow],
    }
}

json_object! {
    /// One element of `actions[]` (and of the legacy `actionResults[]`).
    pub struct Action<'a> {
        /// `type`, e.g. `POLICY_ACTION_CAPTURE`; may be empty.
        kind "type": Option<Cow<'a, str>> [borrow],
        /// `successful`.
        successful "successful": Option<bool>,
        /// `errMsg`.
        err_msg "errMsg": Option<Cow<'a, str>> [borrow],
        /// `token` (capture id).
        token "token": Option<Cow<'a, str>> [borrow],
        /// `afterEventNs`: capture length after the event.
        after_event_ns "afterEventNs": Option<u64> [lenient],
        /// `beforeEventNs`: capture length before the event.
        before_event_ns "beforeEventNs": Option<u64> [lenient],
    }
}
