//! `detect()`: the family and framing of every fixture, hints from headers, error typing.

use http::{HeaderMap, HeaderValue, StatusCode};
use webhook_payloads::sysdig::SysdigEvent;
use webhook_payloads::{DecodeError, Family, Framing, Payload, decode_batch, detect};

use super::{REAL_SYSDIG, fixture};

fn none() -> HeaderMap {
    HeaderMap::new()
}

#[test]
fn every_fixture_is_recognized() {
    for (path, ct, family, framing, n) in [
        ("sysdig/batch.json", None, Family::Sysdig, Framing::Array, 2),
        (
            "sysdig/legacy-policy.json",
            Some("application/json"),
            Family::Sysdig,
            Framing::Object,
            1,
        ),
        (
            "sysdig/activity.ndjson",
            Some("application/x-ndjson"),
            Family::Sysdig,
            Framing::Ndjson,
            7,
        ),
        (
            "connectsecure/asset-ports.json",
            None,
            Family::ConnectSecure,
            Framing::Object,
            1,
        ),
        (
            "connectsecure/critical-problems-found.json",
            None,
            Family::ConnectSecure,
            Framing::Object,
            1,
        ),
        (
            "soveren/event-new.json",
            None,
            Family::Soveren,
            Framing::Object,
            1,
        ),
        (
            "soveren/event-old.json",
            None,
            Family::Soveren,
            Framing::Object,
            1,
        ),
        (
            "falco/falcosidekick.json",
            None,
            Family::Falco,
            Framing::Object,
            1,
        ),
        (
            "alertmanager/v4.json",
            None,
            Family::Alertmanager,
            Framing::Object,
            1,
        ),
        (
            "cloudevents/structured.json",
            None,
            Family::CloudEvents,
            Framing::Object,
            1,
        ),
        (
            "cloudevents/batch.json",
            None,
            Family::CloudEvents,
            Framing::Array,
            2,
        ),
        (
            "standard/envelope.json",
            None,
            Family::StandardWebhooks,
            Framing::Object,
            1,
        ),
    ] {
        let body = fixture(path);
        let d = detect(ct, &none(), &body).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(d.family(), Some(family), "{path}");
        assert_eq!((d.framing, d.payloads.len()), (framing, n), "{path}");
    }
}

#[test]
fn real_sysdig_ndjson_without_content_type() {
    let d = detect(None, &none(), REAL_SYSDIG.as_bytes()).unwrap();
    assert_eq!(d.framing, Framing::Ndjson);
    assert_eq!(d.family(), Some(Family::Sysdig));
    let ts: Vec<_> = d
        .payloads
        .iter()
        .map(|p| match p {
            Payload::Sysdig(e) => e.timestamp_ns().unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ts[0], 1_720_031_001_639_981_110);
    assert_eq!(ts[7], 1_606_322_948_648_718_268);
    let owned: Vec<Payload<'static>> = d.payloads.into_iter().map(Payload::into_owned).collect();
    assert!(matches!(
        &owned[3],
        Payload::Sysdig(SysdigEvent::AuditTrail(_))
    ));
}

#[test]
fn content_types_and_headers_decide_first() {
    let structured = fixture("cloudevents/structured.json");
    let d = detect(
        Some("application/cloudevents+json; charset=utf-8"),
        &none(),
        &structured,
    )
    .unwrap();
    assert_eq!(d.family(), Some(Family::CloudEvents));
    let batch = fixture("cloudevents/batch.json");
    let d = detect(Some("application/cloudevents-batch+json"), &none(), &batch).unwrap();
    assert_eq!((d.framing, d.payloads.len()), (Framing::Array, 2));
    // A structured CloudEvent lacking `id` is the wrong shape.
    let err = detect(
        Some("application/cloudevents+json"),
        &none(),
        br#"{"specversion":"1.0"}"#,
    )
    .unwrap_err();
    assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let mut h = HeaderMap::new();
    for (k, v) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "42"),
        ("ce-source", "/s"),
        ("ce-type", "t.u"),
        ("ce-time", "2018-04-05T17:31:00Z"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    h.insert("content-type", HeaderValue::from_static("application/json"));
    let d = detect(None, &h, br#"{"x":1}"#).unwrap();
    let Payload::CloudEvent(ev) = &d.payloads[0] else {
        panic!("cloudevent expected")
    };
    assert_eq!(ev.id, "42");
    assert_eq!(
        ev.time.as_ref().unwrap().unix_seconds(),
        Some(1_522_949_460)
    );
    assert_eq!(ev.data.as_ref().unwrap()["x"], 1);
    h.remove("ce-source");
    let err = detect(None, &h, b"{}").unwrap_err();
    assert!(matches!(
        err,
        DecodeError::CloudEventHeader {
            header: "ce-source",
            ..
        }
    ));

    // Soveren's user agent makes a sparse object a Soveren event.
    let mut h = HeaderMap::new();
    h.insert("user-agent", HeaderValue::from_static("SoverenWebhook/1.0"));
    let d = detect(None, &h, br#"{"title":"test event"}"#).unwrap();
    assert_eq!(d.family(), Some(Family::Soveren));
    assert_eq!(
        detect(None, &none(), br#"{"title":"test event"}"#)
            .unwrap()
            .family(),
        Some(Family::Json)
    );
}

#[test]
fn raw_json_and_mixed_arrays() {
    let d = detect(None, &none(), b"42").unwrap();
    assert_eq!(d.payloads, [Payload::Json(42.into())]);
    let d = detect(None, &none(), br#"[{"subject":"Login Failure","body":"x"}, {"id":"a","type":"command","timestamp":1}, [1]]"#).unwrap();
    let fams: Vec<_> = d.payloads.iter().map(Payload::family).collect();
    assert_eq!(fams, [Family::ConnectSecure, Family::Sysdig, Family::Json]);
    assert_eq!(d.family(), None);
}

#[test]
fn errors_map_to_400_and_422() {
    assert!(matches!(
        detect(None, &none(), b"  "),
        Err(DecodeError::Empty)
    ));
    let err = detect(None, &none(), b"{\n  \"a\": 1,\n  \"b\" 2\n}").unwrap_err();
    assert_eq!(
        (err.status(), err.line(), err.column()),
        (StatusCode::BAD_REQUEST, Some(3), Some(7))
    );
    let nd = b"{\"id\":\"a\",\"type\":\"command\",\"timestamp\":1}\n{\"id\":\"b\",\"type\":\"command\",\"timestamp\":2}\n{\"id\":\"c\",\n";
    let err = detect(None, &none(), nd).unwrap_err();
    assert_eq!(
        (err.status(), err.line()),
        (StatusCode::BAD_REQUEST, Some(3))
    );
    let shape = br#"{"id":"a","type":"policy","timestamp":"yesterday"}"#;
    let err = detect(None, &none(), shape).unwrap_err();
    assert_eq!(
        (err.status(), err.line()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some(1))
    );
    assert!(err.column().unwrap() > 30, "{err}");
}

#[test]
fn generic_helpers_share_the_error_typing() {
    #[derive(Debug, serde::Deserialize)]
    struct Row {
        n: u8,
    }
    let (f, rows) = decode_batch::<Row>(None, b"{\"n\":1}\n{\"n\":2}\n").unwrap();
    assert_eq!(
        (f, rows.iter().map(|r| r.n).sum::<u8>()),
        (Framing::Ndjson, 3)
    );
    let err =
        decode_batch::<Row>(Some("application/x-ndjson"), b"{\"n\":1}\n{\"n\":300}\n").unwrap_err();
    assert!(err.is_shape() && err.line() == Some(2), "{err}");
    let err = decode_batch::<Row>(None, b"[{\"n\":1},{\"n\":").unwrap_err();
    assert!(err.is_malformed(), "{err}");
}
