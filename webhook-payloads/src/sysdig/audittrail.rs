//! The platform audit event (`type: audittrail`): who did what through Sysdig's API or UI.

use super::base::sysdig_event;
use crate::object::json_object;

sysdig_event! {
    /// A platform audit event.
    pub struct AuditTrailEvent {
        /// `content`.
        content "content": Option<AuditTrailContent>,
    }
}

json_object! {
    /// The `content` of an `audittrail` event.
    pub struct AuditTrailContent {
        /// `timestampNs`.
        timestamp_ns "timestampNs": Option<u64> [lenient],
        /// `userId`.
        user_id "userId": Option<u64> [lenient],
        /// `username`.
        username "username": Option<String>,
        /// `teamId`.
        team_id "teamId": Option<u64> [lenient],
        /// `teamName`.
        team_name "teamName": Option<String>,
        /// `requestMethod`, e.g. `POST`.
        request_method "requestMethod": Option<String>,
        /// `requestUri`.
        request_uri "requestUri": Option<String>,
        /// `userOriginIP`.
        user_origin_ip "userOriginIP": Option<String>,
        /// `queryString`.
        query_string "queryString": Option<String>,
        /// `responseStatusCode`.
        response_status_code "responseStatusCode": Option<u16> [lenient],
        /// `entityType`.
        entity_type "entityType": Option<String>,
        /// `entityId`.
        entity_id "entityId": Option<String> [lenient],
        /// `entityPayload` (any JSON; often a JSON document in a string).
        entity_payload "entityPayload": Option<serde_json::Value>,
        /// `serviceAccountId`.
        service_account_id "serviceAccountId": Option<u64> [lenient],
        /// `serviceAccountName`.
        service_account_name "serviceAccountName": Option<String>,
    }
}
