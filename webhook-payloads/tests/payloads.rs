//! Integration tests of `webhook-payloads`: every family on fixtures written after its
//! documentation, the real Sysdig events of the repository, detection, and property tests.

#[path = "payloads/connectsecure.rs"]
mod connectsecure;
#[path = "payloads/detect.rs"]
mod detect;
#[path = "payloads/others.rs"]
mod others;
#[path = "payloads/props.rs"]
mod props;
#[path = "payloads/safous.rs"]
mod safous;
#[path = "payloads/sysdig.rs"]
mod sysdig;

/// A file of the repository's `fixtures/`.
fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/../fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The real Sysdig events shipped with the repository.
const REAL_SYSDIG: &str =
    include_str!("../../fixtures/sysdig/elastic-integrations-test-sysdig.ndjson");
