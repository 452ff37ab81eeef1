//! Payload detection and every typed parser on random bodies, with the hand-written fast JSON
//! reader (`webhook-payloads/src/fast.rs`) checked against `serde_json` on every input it
//! accepts (the same value, else a panic), and the serde-free JSON writers checked against
//! `serde_json`'s bytes.
//!
//! Input: a selector byte (the content type; with the high bit, header lines and an empty line
//! come before the body, for CloudEvents binary mode and the sender hints), then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_core::json::ToJson;
use webhook_payloads::sysdig::{self, SysdigEvent};
use webhook_payloads::{
    Payload, TimestampFormat, alertmanager, cloudevents, connectsecure, decode_object, detect,
    falco, soveren, standard,
};

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/x-ndjson"),
    Some("application/cloudevents+json; charset=utf-8"),
    Some("application/cloudevents-batch+json"),
    Some("text/plain"),
    Some("application/json; charset=utf-8"),
    Some("application/jsonlines"),
];

/// The serde-free writer writes `serde_json`'s bytes, and the bytes parse back to the event.
fn check_sysdig(ev: &SysdigEvent<'_>) {
    let fast = ev.to_json_vec();
    let slow = serde_json::to_vec(ev).expect("serializable");
    assert_eq!(
        String::from_utf8_lossy(&fast),
        String::from_utf8_lossy(&slow),
        "write_json and serde_json differ"
    );
    for format in [
        TimestampFormat::Seconds,
        TimestampFormat::Milliseconds,
        TimestampFormat::Microseconds,
        TimestampFormat::Nanoseconds,
    ] {
        let mut serde_bytes = Vec::new();
        ev.to_writer_with(&mut serde_bytes, format)
            .expect("serializable");
        let fast = ev.to_vec_with(format).expect("serializable");
        assert_eq!(
            String::from_utf8_lossy(&fast),
            String::from_utf8_lossy(&serde_bytes),
            "to_vec_with and to_writer_with differ at {format:?}"
        );
    }
    let again = SysdigEvent::from_slice(&fast)
        .unwrap_or_else(|e| panic!("written event does not parse back: {e}"));
    assert_eq!(&again, ev, "written event parses back different");
}

fuzz_target!(|data: &[u8]| {
    let Some((sel, rest)) = webhook_fuzz::selector(data) else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(sel & 7) % CONTENT_TYPES.len()];
    let (headers, body) = if sel & 0x80 != 0 {
        webhook_fuzz::headers_and_body(rest)
    } else {
        (http::HeaderMap::new(), rest)
    };

    // The fast reader against serde_json, on the whole body and on each line.
    if let Ok(text) = std::str::from_utf8(body) {
        webhook_payloads::fuzzing::fast_reader_agrees(text);
        if text.contains('\n') {
            for line in text.lines() {
                webhook_payloads::fuzzing::fast_reader_agrees(line);
            }
        }
        let facts = connectsecure::BodyFacts::extract(text);
        let _ = format!("{facts:?}");
        let _ = webhook_payloads::Timestamp::parse(text).unix_nanos();
    }

    // Detection, then each payload detached from the body.
    if let Ok(found) = detect(content_type, &headers, body) {
        let _ = found.family();
        for p in found.payloads {
            if let Payload::Sysdig(ev) = &p {
                check_sysdig(ev);
            }
            let _ = p.into_owned();
        }
    }

    // Each typed parser.
    if let Ok((_, events)) = sysdig::parse_batch(content_type, body) {
        for ev in &events {
            check_sysdig(ev);
            let _ = (ev.id(), ev.timestamp_ns(), ev.severity(), ev.event_type());
        }
    }
    if let Ok(ev) = SysdigEvent::from_slice(body) {
        check_sysdig(&ev);
    }
    let _ = sysdig::parse_ndjson(body);
    if let Ok(alert) = connectsecure::ConnectSecureAlert::from_slice(body) {
        let _ = (alert.subject(), alert.facts());
    }
    let _ = connectsecure::repair_invalid_escapes(body);
    let _ = decode_object::<soveren::SoverenEvent>(body);
    let _ = decode_object::<falco::FalcoEvent>(body);
    let _ = decode_object::<alertmanager::AlertmanagerPayload>(body);
    let _ = decode_object::<standard::StandardWebhook>(body);
    if let Ok(ev) = decode_object::<cloudevents::CloudEvent>(body) {
        let _ = ev.data_bytes();
    }
    if let Ok(ev) = cloudevents::CloudEvent::from_binary(&headers, body) {
        let _ = ev.data_bytes();
    }
});
