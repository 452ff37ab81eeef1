//! Reading events for `send`: a file or stdin holding NDJSON or one JSON array, each record
//! becoming a core `Event` (id from `id`, subject from `type`/`subject`/`event_type`/`event`),
//! with Sysdig `timestamp`s rewritten at the requested resolution.

use std::io::Read as _;
use std::path::Path;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use webhook_core::Event;
use webhook_payloads::TimestampFormat;
use webhook_payloads::sysdig::SysdigEvent;

use crate::error::{CliError, Exit};

/// Reads the whole input (`-`: stdin).
pub(crate) fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| CliError::io("cannot read stdin", &e))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| CliError::io(format!("cannot read {}", path.display()), &e))
}

/// The fields that name an event.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default, rename = "type")]
    kind: Option<Value>,
    #[serde(default)]
    subject: Option<Value>,
    #[serde(default)]
    event_type: Option<Value>,
    #[serde(default)]
    event: Option<Value>,
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn bad_input(what: String) -> CliError {
    CliError::new(Exit::Config, what)
        .hint("the input must be NDJSON (one JSON object per line) or one JSON array of objects")
}

/// One record (its bytes, 1-based position) into an event.
fn record(bytes: &[u8], position: usize, ts: Option<TimestampFormat>) -> Result<Event, CliError> {
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| bad_input(format!("record {position}: {e}")))?;
    let id = text(probe.id.as_ref()).unwrap_or_else(|| format!("event-{position}"));
    let subject = text(probe.kind.as_ref())
        .or_else(|| text(probe.subject.as_ref()))
        .or_else(|| text(probe.event_type.as_ref()))
        .or_else(|| text(probe.event.as_ref()))
        .unwrap_or_else(|| "event".to_owned());
    let mut builder = Event::builder(id, subject);
    let mut body: Option<Vec<u8>> = None;
    if let Ok(ev) = SysdigEvent::from_slice(bytes)
        && !matches!(ev, SysdigEvent::Unknown(_))
    {
        if let Some(ns) = ev.timestamp_ns() {
            builder = builder.timestamp_nanos(ns);
        }
        if let Some(format) = ts {
            body = Some(
                ev.to_vec_with(format)
                    .map_err(|e| bad_input(format!("record {position}: {e}")))?,
            );
        }
    }
    let body = match body {
        Some(b) => Bytes::from(b),
        // Pretty-printed array elements: re-encode compactly (an event is one line).
        None if bytes.iter().any(|b| *b == b'\n' || *b == b'\r') => {
            let v: Value = serde_json::from_slice(bytes)
                .map_err(|e| bad_input(format!("record {position}: {e}")))?;
            Bytes::from(v.to_string())
        }
        None => Bytes::copy_from_slice(bytes),
    };
    builder
        .json_bytes(body)
        .map_err(|e| bad_input(format!("record {position}: {e}")))
}

/// Parses NDJSON or a JSON array into events.
pub(crate) fn parse(input: &[u8], ts: Option<TimestampFormat>) -> Result<Vec<Event>, CliError> {
    let first = input.iter().find(|b| !b.is_ascii_whitespace());
    let mut events = Vec::new();
    match first {
        None => return Err(bad_input("the input holds no event".to_owned())),
        Some(b'[') => {
            let records: Vec<&serde_json::value::RawValue> = serde_json::from_slice(input)
                .map_err(|e| bad_input(format!("the JSON array is invalid: {e}")))?;
            for (i, r) in records.iter().enumerate() {
                events.push(record(r.get().as_bytes(), i + 1, ts)?);
            }
        }
        Some(_) => {
            for (i, line) in input.split(|b| *b == b'\n').enumerate() {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                events.push(record(line, i + 1, ts).map_err(|mut e| {
                    e.cause = format!("line {}", e.cause.trim_start_matches("record "));
                    e
                })?);
            }
        }
    }
    if events.is_empty() {
        return Err(bad_input("the input holds no event".to_owned()));
    }
    Ok(events)
}

/// Writes events as NDJSON (dead letters), one body per line.
pub(crate) fn write_ndjson<'a>(
    path: &Path,
    events: impl IntoIterator<Item = &'a Event>,
) -> Result<usize, CliError> {
    use std::io::Write as _;
    let file = std::fs::File::create(path)
        .map_err(|e| CliError::io(format!("cannot create {}", path.display()), &e))?;
    let mut out = std::io::BufWriter::new(file);
    let mut n = 0;
    for ev in events {
        out.write_all(ev.body())
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| CliError::io(format!("cannot write {}", path.display()), &e))?;
        n += 1;
    }
    out.flush()
        .map_err(|e| CliError::io(format!("cannot write {}", path.display()), &e))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &[u8] =
        include_bytes!("../../fixtures/sysdig/elastic-integrations-test-sysdig.ndjson");

    #[test]
    fn fixture_events_keep_ids_types_and_bytes() {
        let events = parse(FIXTURE, None).unwrap();
        assert_eq!(events.len(), 8);
        assert_eq!(events[0].id(), "17dec715376910362c8c3f62a4ceda2e");
        assert_eq!(events[0].subject(), "policy");
        let first_line = FIXTURE.split(|b| *b == b'\n').next().unwrap();
        assert_eq!(&events[0].body()[..], first_line);
    }

    #[test]
    fn timestamps_are_rewritten_for_sysdig_events() {
        let events = parse(FIXTURE, Some(TimestampFormat::Milliseconds)).unwrap();
        let v: Value = serde_json::from_slice(events[0].body()).unwrap();
        assert_eq!(v["timestamp"], 1_720_031_001_639_u64);
    }

    #[test]
    fn arrays_and_pretty_printing() {
        let events = parse(
            b"[\n {\"subject\": \"Login Failure\",\n  \"body\": \"x\"},\n {\"id\": 7}\n]",
            None,
        )
        .unwrap();
        assert_eq!(events[0].subject(), "Login Failure");
        assert_eq!(events[0].id(), "event-1");
        assert!(!events[0].body().contains(&b'\n'));
        assert_eq!(events[1].id(), "7");
        assert_eq!(events[1].subject(), "event");
    }

    #[test]
    fn bad_input_names_the_line() {
        let err = parse(b"{\"id\":\"a\"}\n{oops}\n", None).unwrap_err();
        assert!(err.cause.starts_with("line 2"), "{}", err.cause);
        assert!(parse(b"  \n", None).is_err());
        assert!(parse(b"[]", None).is_err());
    }
}
