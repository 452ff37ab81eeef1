//! Router tables: exact, wildcard, case-insensitive, first/all-match, fallback.

use webhook_core::{MatchMode, RouteError, Router};

#[test]
fn routing_table() {
    let router = Router::builder()
        .route("policy", "policy-exact")
        .route("policy.*", "policy-any")
        .route("*.created", "created")
        .route("New Asset(s) Added", "assets")
        .fallback("other")
        .build()
        .unwrap();
    let table = [
        ("policy", "policy-exact"),
        ("policy.runtime", "policy-any"),
        ("policy.created", "policy-any"), // first match wins
        ("asset.created", "created"),
        ("New Asset(s) Added", "assets"),
        ("new asset(s) added", "other"), // case-sensitive by default
        ("Policy", "other"),
        ("", "other"),
        ("policy\r\n.x", "other"),
    ];
    for (subject, want) in table {
        assert_eq!(router.first(subject), Some(&want), "{subject:?}");
        assert_eq!(
            router.matches(subject).copied().collect::<Vec<_>>(),
            [want],
            "{subject:?}"
        );
    }
}

#[test]
fn all_match_and_case_insensitive() {
    let router = Router::builder()
        .route("Critical *", 1)
        .route("*Vulnerabilities Found", 2)
        .route("*", 3)
        .mode(MatchMode::All)
        .case_insensitive(true)
        .build()
        .unwrap();
    let all = |s| router.matches(s).copied().collect::<Vec<_>>();
    assert_eq!(all("critical vulnerabilities found"), [1, 2, 3]);
    assert_eq!(all("CISA Vulnerabilities Found"), [2, 3]);
    assert_eq!(all("Login Failure"), [3]);
}

#[test]
fn no_match_without_fallback() {
    let router: Router<u8> = Router::builder().route("a.*", 1).build().unwrap();
    assert_eq!(router.first("b"), None);
    assert_eq!(router.matches("b").count(), 0);
    assert!(!router.is_match("b"));
    assert!(router.is_match("a.b"));
    let all: Router<u8> = Router::builder()
        .route("a", 1)
        .mode(MatchMode::All)
        .fallback(9)
        .build()
        .unwrap();
    assert_eq!(
        all.matches("a").copied().collect::<Vec<_>>(),
        [1],
        "fallback only when nothing matched"
    );
    assert_eq!(all.matches("b").copied().collect::<Vec<_>>(), [9]);
}

#[test]
fn outbound_filter_for_sysdig_data_to_send() {
    let send = Router::builder()
        .route("policy", ())
        .route("audittrail", ())
        .build()
        .unwrap();
    let types = [
        "policy",
        "command",
        "connection",
        "fileaccess",
        "kubernetes",
        "audittrail",
    ];
    let kept: Vec<_> = types.into_iter().filter(|t| send.is_match(t)).collect();
    assert_eq!(kept, ["policy", "audittrail"]);
}

#[test]
fn empty_pattern_is_rejected() {
    assert_eq!(
        Router::<()>::builder()
            .route("", ())
            .build()
            .map(|r| r.len()),
        Err(RouteError::EmptyPattern { index: 0 })
    );
}
