//! Soveren event objects (the webhook body): title, sensitivity, time, category and event type,
//! the sending and receiving assets, endpoint and policy.
//!
//! Soveren renamed its categories between versions (`new_data_types`, `data_flow_changes`,
//! `policy_violations`, `others` → "Infrastructure updates", "Data at risk", "Misconfiguration",
//! "Other"); both spellings parse, as do categories and event types this crate does not know
//! ([`Category::Other`], [`EventType::Other`]). An event has no `id`: `event_link` is its only
//! unique handle. Requests are signed with HMAC-SHA-256 in `x-soveren-signature: sha256=<hex>`
//! (verification lives in the core) and sent with the `SoverenWebhook/1.0` user agent.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Timestamp;
use crate::object::json_object;

json_object! {
    /// A Soveren event.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use webhook_payloads::soveren::{Category, EventType, Sensitivity, SoverenEvent};
    /// let ev: SoverenEvent = serde_json::from_str(r#"{"title":"New sensitive data type",
    ///   "sensitivity":"High","time":"2024-03-01T10:00:00Z","category":"new_data_types",
    ///   "event_type":"new_data_type","event_link":"https://app.soveren.io/events/1"}"#)?;
    /// assert_eq!(ev.category, Some(Category::NewDataTypes));
    /// assert_eq!(ev.event_type, Some(EventType::NewDataType));
    /// assert_eq!(ev.sensitivity, Some(Sensitivity::High));
    /// assert_eq!(ev.time.as_ref().and_then(|t| t.unix_seconds()), Some(1_709_287_200));
    /// # Ok(()) }
    /// ```
    pub struct SoverenEvent {
        /// `title`.
        title "title": Option<String>,
        /// `sensitivity`: High, Medium or Low.
        sensitivity "sensitivity": Option<Sensitivity>,
        /// `time` (ISO 8601).
        time "time": Option<Timestamp>,
        /// `event_link`: the event's page, its only unique handle.
        event_link "event_link": Option<String>,
        /// `category` (old or new names).
        category "category": Option<Category>,
        /// `event_type`.
        event_type "event_type": Option<EventType>,
        /// `data_types[]`.
        data_types "data_types": Option<Vec<String>>,
        /// `event_triggered_by`: `sending` or `receiving`.
        event_triggered_by "event_triggered_by": Option<String>,
        /// `sending`: the asset that sent the data.
        sending "sending": Option<Asset>,
        /// `receiving`: the asset that received it.
        receiving "receiving": Option<Asset>,
        /// `endpoint`.
        endpoint "endpoint": Option<SoverenEndpoint>,
        /// `policy`.
        policy "policy": Option<Link>,
        /// `conflicting_assets[]`.
        conflicting_assets "conflicting_assets": Option<Vec<Link>>,
        /// `third_party_ip`.
        third_party_ip "third_party_ip": Option<String>,
        /// `user_agent`.
        user_agent "user_agent": Option<String>,
    }
}

json_object! {
    /// A sending or receiving asset.
    pub struct Asset {
        /// `link`.
        link "link": Option<String>,
        /// `name`.
        name "name": Option<String>,
        /// `namespace`.
        namespace "namespace": Option<String>,
        /// `groups[]`.
        groups "groups": Option<Vec<Link>>,
    }
}

json_object! {
    /// The `endpoint` of an event: the API endpoint the data went through. (Named apart from
    /// `webhook_core::Endpoint`, the sender's delivery target.)
    pub struct SoverenEndpoint {
        /// `link`.
        link "link": Option<String>,
        /// `url`.
        url "url": Option<String>,
        /// `hostname`.
        hostname "hostname": Option<String>,
        /// `method`, e.g. `POST`.
        method "method": Option<String>,
    }
}

json_object! {
    /// A `{name, link}` reference (policy, group, conflicting asset).
    pub struct Link {
        /// `name`.
        name "name": Option<String>,
        /// `link`.
        link "link": Option<String>,
    }
}

/// Declares a lenient string enum: documented spellings (matched case-insensitively, spaces,
/// hyphens and underscores alike), an `Other` variant keeping the text as sent.
macro_rules! lenient_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $v:ident = $canon:literal $(| $alias:literal)*, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $v, )*
            /// A value this crate does not know, as sent.
            Other(String),
        }

        impl $name {
            /// Classifies a value; never fails.
            pub fn parse(s: &str) -> Self {
                let key = fold(s);
                $(
                    if key == fold($canon) $(|| key == fold($alias))* {
                        return Self::$v;
                    }
                )*
                Self::Other(s.to_owned())
            }

            /// The documented spelling (or the text of `Other`).
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$v => $canon, )*
                    Self::Other(s) => s,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok(Self::parse(&s))
            }
        }
    };
}

fn fold(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| {
            if matches!(c, ' ' | '-') {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

lenient_enum! {
    /// How sensitive the data involved is.
    pub enum Sensitivity {
        /// High.
        High = "High",
        /// Medium.
        Medium = "Medium",
        /// Low.
        Low = "Low",
    }
}

lenient_enum! {
    /// The event category (see [`SoverenEvent`] for an example); the old (`new_data_types`, ...) and new ("Data at risk", ...) names
    /// are distinct variants, so nothing is guessed about how they map.
    pub enum Category {
        /// Old: `new_data_types`.
        NewDataTypes = "new_data_types",
        /// Old: `data_flow_changes`.
        DataFlowChanges = "data_flow_changes",
        /// Old: `policy_violations`.
        PolicyViolations = "policy_violations",
        /// Old: `others`.
        Others = "others",
        /// New: "Infrastructure updates".
        InfrastructureUpdates = "Infrastructure updates",
        /// New: "Data at risk".
        DataAtRisk = "Data at risk",
        /// New: "Misconfiguration".
        Misconfiguration = "Misconfiguration",
        /// New: "Other".
        OtherCategory = "Other",
    }
}

impl Category {
    /// Whether this is one of the category names of older Soveren versions.
    pub fn is_legacy_name(&self) -> bool {
        matches!(
            self,
            Self::NewDataTypes | Self::DataFlowChanges | Self::PolicyViolations | Self::Others
        )
    }
}

lenient_enum! {
    /// The event type.
    pub enum EventType {
        /// `new_data_type`.
        NewDataType = "new_data_type",
        /// `new_internal_receiver`.
        NewInternalReceiver = "new_internal_receiver",
        /// `new_internal_sender`.
        NewInternalSender = "new_internal_sender",
        /// `updated_internal_receiver`.
        UpdatedInternalReceiver = "updated_internal_receiver",
        /// `updated_internal_sender`.
        UpdatedInternalSender = "updated_internal_sender",
        /// `new_external_receiver`.
        NewExternalReceiver = "new_external_receiver",
        /// `updated_external_receiver`.
        UpdatedExternalReceiver = "updated_external_receiver",
        /// `updated_enduser_receiver`.
        UpdatedEnduserReceiver = "updated_enduser_receiver",
        /// `updated_robot_receiver`.
        UpdatedRobotReceiver = "updated_robot_receiver",
        /// `policy_violation`.
        PolicyViolation = "policy_violation",
        /// `3rd_party_policy_violation`.
        ThirdPartyPolicyViolation = "3rd_party_policy_violation",
        /// `discovery_complete`.
        DiscoveryComplete = "discovery_complete",
        /// `custom_asset_rule_conflict`.
        CustomAssetRuleConflict = "custom_asset_rule_conflict",
        /// `email_clustered`.
        EmailClustered = "email_clustered",
        /// `anomaly_detected`.
        AnomalyDetected = "anomaly_detected",
        /// `excessive_db_access`.
        ExcessiveDbAccess = "excessive_db_access",
        /// `policy_violation_dar`.
        PolicyViolationDar = "policy_violation_dar",
    }
}

crate::object::json_via_serde!(Sensitivity, Category, EventType);
crate::fast::fast_via_serde!(Sensitivity, Category, EventType);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_names() {
        assert_eq!(Category::parse("data at risk"), Category::DataAtRisk);
        assert_eq!(Category::parse("DATA_AT_RISK"), Category::DataAtRisk);
        assert_eq!(Category::parse("Other"), Category::OtherCategory);
        assert_eq!(
            Category::parse("brand new"),
            Category::Other("brand new".into())
        );
        assert!(Category::NewDataTypes.is_legacy_name());
        assert_eq!(
            EventType::parse("3rd_party_policy_violation"),
            EventType::ThirdPartyPolicyViolation
        );
        assert_eq!(Sensitivity::parse("high"), Sensitivity::High);
        assert_eq!(Sensitivity::parse("Critical").as_str(), "Critical");
    }
}
