//! Splitting a body into records (one object, a JSON array, NDJSON) on random bodies: the
//! framing decision, each `decode_*` helper against `serde_json` itself, the Sysdig batch
//! readers against the generic ones, and error positions inside the body.
//!
//! Input: a selector byte (the content type), then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use webhook_payloads::{
    DecodeError, Framing, decode_array, decode_batch, decode_ndjson, decode_object, framing, sysdig,
};

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/x-ndjson"),
    Some("application/jsonl; charset=utf-8"),
];

/// An error's line and column point into the body.
fn check_position(body: &[u8], err: &DecodeError) {
    let lines = body.iter().filter(|&&b| b == b'\n').count() + 1;
    if let Some(line) = err.line() {
        assert!(line >= 1 && line <= lines, "line {line} of {lines}: {err}");
    }
    if let Some(col) = err.column() {
        assert!(col <= body.len() + 1, "column {col} past the body: {err}");
    }
}

/// The non-blank lines of an NDJSON body.
fn ndjson_lines(body: &[u8]) -> usize {
    body.split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count()
}

fuzz_target!(|data: &[u8]| {
    let Some((sel, body)) = webhook_fuzz::selector(data) else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(sel) % CONTENT_TYPES.len()];
    let f = framing(content_type, body);

    let direct = serde_json::from_slice::<Value>(body);
    match decode_object::<Value>(body) {
        Ok(v) => assert_eq!(Some(&v), direct.as_ref().ok(), "decode_object differs"),
        Err(e) => {
            check_position(body, &e);
            assert!(
                direct.is_err() || body.iter().all(u8::is_ascii_whitespace),
                "decode_object refused what serde_json reads: {e}"
            );
        }
    }
    match decode_array::<Value>(body) {
        Ok(v) => {
            let direct: Vec<Value> = serde_json::from_slice(body).expect("serde_json agrees");
            assert_eq!(v, direct, "decode_array differs");
        }
        Err(e) => check_position(body, &e),
    }
    let ndjson = decode_ndjson::<Value>(body);
    match &ndjson {
        Ok(v) => assert_eq!(v.len(), ndjson_lines(body), "one record per non-blank line"),
        Err(e) => check_position(body, e),
    }
    match decode_batch::<Value>(content_type, body) {
        Ok((framed, v)) => {
            assert_eq!(framed, f, "decode_batch framed differently");
            match f {
                Framing::Object => assert_eq!(v.len(), 1),
                Framing::Array => assert_eq!(Some(&Value::Array(v)), direct.as_ref().ok()),
                Framing::Ndjson => assert_eq!(Some(&v), ndjson.as_ref().ok()),
                _ => {}
            }
        }
        Err(e) => check_position(body, &e),
    }

    // The Sysdig readers split the same way as the generic ones.
    match sysdig::parse_batch(content_type, body) {
        Ok((framed, events)) => {
            assert_eq!(framed, f, "parse_batch framed differently");
            match f {
                Framing::Array => {
                    let n = direct.as_ref().ok().and_then(Value::as_array).map(Vec::len);
                    assert_eq!(Some(events.len()), n, "parse_batch found other records");
                }
                Framing::Ndjson => assert_eq!(events.len(), ndjson_lines(body)),
                _ => assert_eq!(events.len(), 1),
            }
        }
        Err(e) => check_position(body, &e),
    }
    match sysdig::parse_ndjson(body) {
        Ok(events) => assert_eq!(events.len(), ndjson_lines(body)),
        Err(e) => check_position(body, &e),
    }
});
