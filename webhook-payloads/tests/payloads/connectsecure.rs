//! ConnectSecure: every seed-002 example extracts fully; tolerant subjects; the invalid escape.

use std::net::IpAddr;

use webhook_payloads::connectsecure::{
    BodyFacts, BodySeverity, ConnectSecureAlert, MacAddr, Subject,
};
use webhook_payloads::{DecodeError, Timestamp};

use super::fixture;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn alert(name: &str) -> ConnectSecureAlert {
    ConnectSecureAlert::from_slice(&fixture(&format!("connectsecure/{name}"))).unwrap()
}

#[test]
fn new_assets_added() {
    let a = alert("new-assets-added.json");
    assert_eq!(a.subject(), Subject::NewAssetsAdded);
    assert_eq!(
        a.raw_body(),
        "New asset added with ip 192.168.1.100. Hostname server-01.example.com. Mac address 00:1B:44:11:3A:B7"
    );
    let f = a.facts();
    assert_eq!(f.ip_addresses, [ip("192.168.1.100")]);
    assert_eq!(f.ip, Some(ip("192.168.1.100")));
    assert_eq!(f.hostname.as_deref(), Some("server-01.example.com"));
    assert_eq!(f.mac, Some(MacAddr([0x00, 0x1B, 0x44, 0x11, 0x3A, 0xB7])));
    assert_eq!(
        f.mac.map(|m| m.to_string()).as_deref(),
        Some("00:1B:44:11:3A:B7")
    );
    assert_eq!(
        (f.port, f.source_ip, f.severity.as_ref()),
        (None, None, None)
    );
    assert!(f.cve_ids.is_empty() && f.company.is_none() && f.product.is_none());
    assert!(f.user_name.is_none() && f.service.is_none() && f.timestamp.is_none());
}

#[test]
fn asset_ports() {
    let a = alert("asset-ports.json");
    assert_eq!(a.subject(), Subject::AssetPorts);
    let f = a.facts();
    assert_eq!(f.port, Some(443));
    assert_eq!(f.ip, Some(ip("192.168.1.100")));
    assert_eq!(f.hostname.as_deref(), Some("server-01.example.com"));
    assert_eq!((f.mac, f.source_ip), (None, None));
    assert!(f.cve_ids.is_empty() && f.company.is_none() && f.user_name.is_none());
}

#[test]
fn critical_problems_found_with_its_invalid_escape() {
    let bytes = fixture("connectsecure/critical-problems-found.json");
    // The documented example is not valid JSON (`\ ` is no escape)...
    let strict = serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_err();
    assert!(strict.is_syntax());
    // ...and the tolerant path reads the backslash literally.
    let a = ConnectSecureAlert::from_slice(&bytes).unwrap();
    assert_eq!(a.subject(), Subject::CriticalProblemsFound);
    assert!(
        a.raw_body()
            .contains("Acme Corporation\\ Product: Apache HTTP Server.")
    );
    let f = a.facts();
    assert_eq!(f.ip, Some(ip("192.168.1.100")));
    assert_eq!(f.hostname.as_deref(), Some("server-01.example.com"));
    assert_eq!(f.company.as_deref(), Some("Acme Corporation"));
    assert_eq!(f.product.as_deref(), Some("Apache HTTP Server"));
    assert_eq!(f.cve_ids, ["CVE-2021-44228"]);
    assert_eq!(f.severity, Some(BodySeverity::Critical));
    assert_eq!((f.port, f.mac, f.source_ip), (None, None, None));
    assert!(f.user_name.is_none() && f.service.is_none() && f.timestamp.is_none());
    // Serializing writes valid JSON (an escaped backslash) that parses strictly.
    let out = serde_json::to_vec(&a).unwrap();
    assert_eq!(
        serde_json::from_slice::<ConnectSecureAlert>(&out).unwrap(),
        a
    );
}

#[test]
fn login_failure() {
    let a = alert("login-failure.json");
    assert_eq!(a.subject(), Subject::LoginFailure);
    let f = a.facts();
    assert_eq!(f.user_name.as_deref(), Some("john.doe"));
    assert_eq!(f.source_ip, Some(ip("203.0.113.10")));
    assert_eq!(f.ip_addresses, [ip("203.0.113.10")]);
    assert_eq!(f.ip, None, "the only address is the source");
    assert_eq!(f.service.as_deref(), Some("AzureAD"));
    let ts = f.timestamp.as_ref().unwrap();
    assert_eq!(ts.as_str(), "2024-01-15 10:30:00 UTC");
    assert_eq!(ts.unix_seconds(), Some(1_705_314_600));
    assert!(f.hostname.is_none() && f.port.is_none() && f.company.is_none());
}

#[test]
fn multiline_unicode_body_and_unknown_fields() {
    let a = alert("multiline-unicode.json");
    assert_eq!(a.subject(), Subject::CriticalVulnerabilitiesFound);
    assert_eq!(a.extra["event_set"], "Problems");
    let f = a.facts();
    assert_eq!(f.company.as_deref(), Some("Müller & Söhne AG"));
    assert_eq!(f.ip, Some(ip("2001:db8::10")));
    assert_eq!(f.hostname.as_deref(), Some("fs-01.müller.example"));
    assert_eq!(f.product.as_deref(), Some("OpenSSL 3.0.1"));
    assert_eq!(f.cve_ids, ["CVE-2022-3602", "CVE-2022-3786"]);
    assert_eq!(f.severity, Some(BodySeverity::High));
    let round = serde_json::to_value(&a).unwrap();
    assert_eq!(
        round,
        serde_json::from_slice::<serde_json::Value>(&fixture(
            "connectsecure/multiline-unicode.json"
        ))
        .unwrap()
    );
}

#[test]
fn subjects_match_tolerantly() {
    for s in [
        "New Asset(s) Added",
        "new asset(s) added",
        "NEW  ASSETS  ADDED",
        " New Asset Added ",
    ] {
        assert_eq!(Subject::parse(s), Subject::NewAssetsAdded, "{s}");
    }
    assert_eq!(
        Subject::parse("critical-vulnerabilities-found"),
        Subject::CriticalVulnerabilitiesFound
    );
    assert_eq!(
        Subject::parse("CISA Vulnerabilities Found"),
        Subject::CisaVulnerabilitiesFound
    );
    assert_eq!(
        Subject::parse("New Open Port Discovered (Probe Scan)"),
        Subject::NewOpenPortDiscovered
    );
    assert_eq!(
        Subject::parse("Server Agent Went Down"),
        Subject::ServerAgentWentDown
    );
    assert_eq!(
        Subject::parse("Entra ID Audit"),
        Subject::Other("Entra ID Audit".into())
    );
    assert_eq!(Subject::NewAssetsAdded.to_string(), "New Asset(s) Added");
}

#[test]
fn partial_and_odd_bodies_do_not_fail() {
    let f = BodyFacts::extract("");
    assert_eq!(f, BodyFacts::default());
    let f = BodyFacts::extract("Severity: Severe; port 99999; hostname ???; CVE-21-1; user");
    assert_eq!(f.severity, Some(BodySeverity::Other("Severe".into())));
    assert_eq!((f.port, f.hostname.as_deref()), (None, None));
    assert!(f.cve_ids.is_empty() && f.user_name.is_none());
    let a = ConnectSecureAlert::from_slice(br#"{"subject":"Login Failure"}"#).unwrap();
    assert_eq!(a.raw_body(), "");
    assert_eq!(a.facts(), BodyFacts::default());
    // Still malformed after repair: the original syntax error, HTTP 400.
    let err = ConnectSecureAlert::from_slice(br#"{"subject":"x","body":"a\ b"#).unwrap_err();
    assert!(matches!(err, DecodeError::Syntax { line: 1, .. }), "{err}");
    let t = Timestamp::parse("2024-01-15 10:30:00 UTC");
    assert!(t.is_valid());
}
