//! # webhook-payloads
//!
//! Typed payloads of the webhook senders this SDK's users meet: Sysdig Secure, ConnectSecure,
//! Soveren, Safous, Falco/Falcosidekick, Alertmanager, CloudEvents and Standard Webhooks.
