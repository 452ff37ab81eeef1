//! Shared inputs for the benchmarks in `benches/benches/` and the interop tests in
//! `benches/tests/`.

/// The real Sysdig Secure events shipped with the repository, one JSON object per line.
///
/// ```
/// assert_eq!(webhook_benches::SYSDIG_FIXTURE_NDJSON.lines().count(), 8);
/// ```
pub const SYSDIG_FIXTURE_NDJSON: &str =
    include_str!("../../fixtures/sysdig/elastic-integrations-test-sysdig.ndjson");
