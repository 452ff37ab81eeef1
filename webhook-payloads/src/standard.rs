//! The Standard Webhooks envelope: `{"type": "a.b", "timestamp": ISO-8601, "data": {...}}`.
//! (The `webhook-id`/`webhook-timestamp`/`webhook-signature` headers are verified by the core.)

use crate::Timestamp;
use crate::object::json_object;

json_object! {
    /// A Standard Webhooks event.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use webhook_payloads::standard::StandardWebhook;
    /// let ev: StandardWebhook = serde_json::from_str(r#"{"type":"invoice.paid",
    ///   "timestamp":"2024-07-03T18:23:21Z","data":{"id":"inv_1"}}"#)?;
    /// assert_eq!(ev.kind, "invoice.paid");
    /// assert_eq!(ev.timestamp.unix_seconds(), Some(1_720_031_001));
    /// assert_eq!(ev.data["id"], "inv_1");
    /// # Ok(()) }
    /// ```
    pub struct StandardWebhook {
        /// `type`: a dotted event type, e.g. `invoice.paid`.
        kind "type": String,
        /// `timestamp`: when the event happened (ISO 8601).
        timestamp "timestamp": Timestamp,
        /// `data`: the event's payload.
        data "data": serde_json::Value,
    }
}
