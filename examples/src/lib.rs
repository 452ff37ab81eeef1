//! Shared helpers for the runnable examples in this folder (`cargo run --example <name>`).

/// The real Sysdig Secure events shipped with the repository, one JSON object per line.
///
/// ```
/// assert_eq!(webhook_examples::SYSDIG_FIXTURE_NDJSON.lines().count(), 8);
/// ```
pub const SYSDIG_FIXTURE_NDJSON: &str =
    include_str!("../../fixtures/sysdig/elastic-integrations-test-sysdig.ndjson");

/// ConnectSecure alert samples (`{subject, body}`, as its documentation shows them), from the
/// repository's `fixtures/`.
///
/// ```
/// assert_eq!(webhook_examples::CONNECTSECURE_SAMPLES.len(), 3);
/// ```
pub const CONNECTSECURE_SAMPLES: &[&str] = &[
    include_str!("../../fixtures/connectsecure/login-failure.json"),
    include_str!("../../fixtures/connectsecure/asset-ports.json"),
    include_str!("../../fixtures/connectsecure/new-assets-added.json"),
];

/// Soveren event samples (the current and the older field names), from the repository's
/// `fixtures/`.
///
/// ```
/// assert_eq!(webhook_examples::SOVEREN_SAMPLES.len(), 2);
/// ```
pub const SOVEREN_SAMPLES: &[&str] = &[
    include_str!("../../fixtures/soveren/event-new.json"),
    include_str!("../../fixtures/soveren/event-old.json"),
];
