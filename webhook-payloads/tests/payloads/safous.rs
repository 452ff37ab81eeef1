//! Safous: every `%param%` of seed 004 from a request and connection facts, with a real
//! certificate whose thumbprints were computed independently with `openssl x509 -fingerprint`.

use webhook_core::Decision;
use webhook_payloads::safous::{ConnectionFacts, SafousContext, SafousDecision};

use super::fixture;

const SHA1: &str = "1956ee9acb3754b759881989422bbf5d7382a8b0";
const SHA256: &str = "ba8dbe62a7bf46254349a3546d2e806aac0ccb2807db0cf35c8b3b22496f2109";

fn context() -> SafousContext {
    let req = http::Request::post("https://wiki.corp.internal:8443/login")
        .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
        .header("Accept-Language", "fr-CH, fr;q=0.9")
        .header("Authorization", "Bearer eyJhbGciOi")
        .body(b"ignored".to_vec())
        .unwrap();
    let (parts, _body) = req.into_parts();
    let facts = ConnectionFacts::new("2001:db8::7".parse().unwrap())
        .username("alice@example.com")
        .client_certificate(
            fixture("safous-client-cert.der"),
            "CN=alice.example.com,O=Example",
            ["alice.example.com", "alice@example.com"],
        )
        .device_id("DEV-0042")
        .groups(["1001", "1002"])
        .group_names(["Engineering", "VPN Users"]);
    SafousContext::from_parts(&parts, facts)
}

#[test]
fn every_seed_parameter() {
    let ctx = context();
    let sha1 = SHA1.to_owned();
    let p = |n: &str| ctx.param(n).map(|v| v.into_owned());
    assert_eq!(p("username").as_deref(), Some("alice@example.com"));
    assert_eq!(
        p("internal_addr").as_deref(),
        Some("wiki.corp.internal:8443")
    );
    assert_eq!(
        p("user_agent").as_deref(),
        Some("Mozilla/5.0 (X11; Linux x86_64)")
    );
    assert_eq!(p("remote_ip").as_deref(), Some("2001:db8::7"));
    assert_eq!(p("cert_thumbprint"), Some(sha1.clone()));
    assert_eq!(p("cert_thumbprint_upper"), Some(sha1.to_uppercase()));
    assert_eq!(p("cert_thumbprint_256").as_deref(), Some(SHA256));
    assert_eq!(p("cert_thumbprint_256_upper"), Some(SHA256.to_uppercase()));
    assert_eq!(
        p("cert_name").as_deref(),
        Some("CN=alice.example.com,O=Example")
    );
    assert_eq!(
        p("cert_alt_name").as_deref(),
        Some("alice.example.com,alice@example.com")
    );
    assert_eq!(p("device_id").as_deref(), Some("DEV-0042"));
    assert_eq!(p("groups").as_deref(), Some("1001,1002"));
    assert_eq!(p("group_names").as_deref(), Some("Engineering,VPN Users"));
    assert_eq!(
        p("headers.Accept-Language").as_deref(),
        Some("fr-CH, fr;q=0.9")
    );
    assert_eq!(
        p("headers.accept-language").as_deref(),
        Some("fr-CH, fr;q=0.9")
    );
    assert_eq!(
        p("%headers.AUTHORIZATION%").as_deref(),
        Some("Bearer eyJhbGciOi")
    );
    assert_eq!(p("headers.X-Missing"), None);
    assert_eq!(p("not_a_param"), None);
}

#[test]
fn templates_render_and_host_header_fallback() {
    let ctx = context();
    let template = webhook_core::Template::build(
        webhook_core::TemplateContext::JsonBody,
        r#"{"user":"%username%","ip":"%remote_ip%","tp":"%cert_thumbprint_256%","lang":"%headers.Accept-Language%"}"#,
    )
    .unwrap();
    let body = template.render(&ctx).unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["user"], "alice@example.com");
    assert_eq!(v["tp"], SHA256);
    assert_eq!(v["lang"], "fr-CH, fr;q=0.9");

    let req = http::Request::get("/app")
        .header("host", "app.internal:8080")
        .body(())
        .unwrap();
    let ctx = SafousContext::from_request(&req, ConnectionFacts::new("192.0.2.1".parse().unwrap()));
    assert_eq!(
        ctx.param("internal_addr").as_deref(),
        Some("app.internal:8080")
    );
    assert_eq!(ctx.param("cert_thumbprint"), None);
    assert_eq!(ctx.param("username"), None);
    let ctx = SafousContext::from_request(
        &req,
        ConnectionFacts::new("192.0.2.1".parse().unwrap()).internal_addr("10.0.0.5:80"),
    );
    assert_eq!(ctx.param("internal_addr").as_deref(), Some("10.0.0.5:80"));
}

#[test]
fn decisions_serialize() {
    let allow = SafousDecision::allow();
    assert_eq!(allow.to_json(), r#"{"decision":"allow","allowed":true}"#);
    let deny = SafousDecision::deny("device DEV-0042 not compliant");
    let v: serde_json::Value = serde_json::from_str(&deny.to_json()).unwrap();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["allowed"], false);
    assert_eq!(v["reason"], "device DEV-0042 not compliant");
    let back: SafousDecision = serde_json::from_value(v).unwrap();
    assert_eq!(back.decision, Decision::Deny);
    assert_eq!(
        allow.with_reason("ok").to_jsonp("jQuery_123.cb").unwrap(),
        r#"jQuery_123.cb({"decision":"allow","allowed":true,"reason":"ok"});"#
    );
}
