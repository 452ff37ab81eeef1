//! Response action tables over JSON and JSONP bodies.

use webhook_core::{Condition, Decision, ResponseActions, ResponseError, ResponseFormat};

fn actions() -> ResponseActions {
    ResponseActions::builder()
        .rule(
            Decision::Deny,
            "result.status",
            Condition::Equals("blocked".into()),
        )
        .rule(Decision::Deny, "result.risk", Condition::Equals("9".into()))
        .rule(
            Decision::Allow,
            "result.groups",
            Condition::Contains("vpn-users".into()),
        )
        .rule(
            Decision::Allow,
            "result.devices.0.compliant",
            Condition::Equals("true".into()),
        )
        .rule(Decision::Allow, "result.token", Condition::Exists)
        .rule(
            Decision::Deny,
            "result.mfa",
            Condition::NotEquals("ok".into()),
        )
        .default_decision(Decision::Allow)
        .build()
        .unwrap()
}

#[test]
fn rule_table() {
    let a = actions();
    let table: [(&str, Decision, Option<usize>); 9] = [
        (
            r#"{"result":{"status":"blocked","groups":["vpn-users"]}}"#,
            Decision::Deny,
            Some(0),
        ),
        (r#"{"result":{"risk":9}}"#, Decision::Deny, Some(1)),
        (r#"{"result":{"risk":9.0}}"#, Decision::Deny, Some(1)),
        (
            r#"{"result":{"groups":["staff","vpn-users"]}}"#,
            Decision::Allow,
            Some(2),
        ),
        (
            r#"{"result":{"devices":[{"compliant":true}]}}"#,
            Decision::Allow,
            Some(3),
        ),
        (r#"{"result":{"token":null}}"#, Decision::Allow, Some(4)),
        (r#"{"result":{"mfa":"ok"}}"#, Decision::Allow, None),
        (r#"{"result":{"mfa":"failed"}}"#, Decision::Deny, Some(5)),
        (
            r#"cb({"result":{"mfa":"ok","groups":"vpn-users,staff"}});"#,
            Decision::Allow,
            Some(2),
        ),
    ];
    for (body, decision, rule) in table {
        let e = a.evaluate(body.as_bytes()).unwrap();
        assert_eq!((e.decision, e.rule), (decision, rule), "{body}");
    }
    assert_eq!(a.rule_key(3), Some("result.devices.0.compliant"));
}

#[test]
fn formats_and_errors() {
    let json_only = ResponseActions::builder()
        .rule(Decision::Allow, "ok", Condition::Equals("true".into()))
        .format(ResponseFormat::Json)
        .build()
        .unwrap();
    assert!(matches!(
        json_only.evaluate(b"cb({\"ok\":true})"),
        Err(ResponseError::InvalidJson(_))
    ));
    let jsonp = ResponseActions::builder()
        .rule(Decision::Allow, "ok", Condition::Equals("true".into()))
        .format(ResponseFormat::Jsonp)
        .max_body(64)
        .build()
        .unwrap();
    assert_eq!(
        jsonp.evaluate(b"cb({\"ok\":true})").unwrap().decision,
        Decision::Allow
    );
    assert!(matches!(
        jsonp.evaluate(b"{\"ok\":true}"),
        Err(ResponseError::InvalidJsonp)
    ));
    assert!(matches!(
        jsonp.evaluate(&[b' '; 65]),
        Err(ResponseError::TooLarge { len: 65, max: 64 })
    ));
    // Default deny when nothing matches.
    assert_eq!(jsonp.evaluate(b"cb({\"ok\":false})").unwrap().rule, None);
    assert_eq!(
        jsonp.evaluate(b"cb({\"ok\":false})").unwrap().decision,
        Decision::Deny
    );
}

#[test]
fn numeric_segments_also_address_object_keys() {
    let a = ResponseActions::builder()
        .rule(Decision::Allow, "codes.200", Condition::Exists)
        .build()
        .unwrap();
    assert_eq!(
        a.evaluate(br#"{"codes":{"200":"ok"}}"#).unwrap().decision,
        Decision::Allow
    );
    assert_eq!(
        a.evaluate(br#"{"codes":[1]}"#).unwrap().decision,
        Decision::Deny
    );
}
