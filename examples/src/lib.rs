//! Shared helpers for the runnable examples in this folder (`cargo run --example <name>`).

/// The real Sysdig Secure events shipped with the repository, one JSON object per line.
///
/// ```
/// assert_eq!(webhook_examples::SYSDIG_FIXTURE_NDJSON.lines().count(), 8);
/// ```
pub const SYSDIG_FIXTURE_NDJSON: &str =
    include_str!("../../fixtures/sysdig/elastic-integrations-test-sysdig.ndjson");
