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
                if let Some(event) = line_event(line, i + 1, ts) {
                    events.push(event?);
                }
            }
        }
    }
    if events.is_empty() {
        return Err(bad_input("the input holds no event".to_owned()));
    }
    Ok(events)
}

/// One NDJSON line (1-based `number`, with or without its line ending) into an event; `None`
/// for a blank line.
fn line_event(
    line: &[u8],
    number: usize,
    ts: Option<TimestampFormat>,
) -> Option<Result<Event, CliError>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(record(line, number, ts).map_err(|mut e| {
        e.cause = format!("line {}", e.cause.trim_start_matches("record "));
        e
    }))
}

/// Reads events from `input` as they arrive, on a thread of its own: NDJSON line by line (an
/// invalid line is handed over as its error, and reading goes on), or, when the input starts
/// with `[`, one JSON array read whole. At most `buffer` events wait in the channel, so a
/// fast input waits for the sender. Reading stops at the end of the input, on a read error
/// (handed over), or when the receiver is dropped.
pub(crate) fn stream(
    input: impl std::io::Read + Send + 'static,
    ts: Option<TimestampFormat>,
    buffer: usize,
) -> tokio::sync::mpsc::Receiver<Result<Event, CliError>> {
    use std::io::BufRead as _;
    let (tx, rx) = tokio::sync::mpsc::channel(buffer.max(1));
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(input);
        let mut line = Vec::new();
        let mut number = 0;
        let mut started = false;
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => number += 1,
                Err(e) => {
                    let _ = tx.blocking_send(Err(CliError::io("cannot read the input", &e)));
                    return;
                }
            }
            if !started {
                let first = line.iter().find(|b| !b.is_ascii_whitespace());
                started = first.is_some();
                // The first record opens an array: read it whole.
                if first == Some(&b'[') {
                    if let Err(e) = reader.read_to_end(&mut line) {
                        let _ = tx.blocking_send(Err(CliError::io("cannot read the input", &e)));
                        return;
                    }
                    let items = match parse(&line, ts) {
                        Ok(events) => events.into_iter().map(Ok).collect(),
                        Err(e) => vec![Err(e)],
                    };
                    for item in items {
                        if tx.blocking_send(item).is_err() {
                            return;
                        }
                    }
                    return;
                }
            }
            if let Some(item) = line_event(&line, number, ts)
                && tx.blocking_send(item).is_err()
            {
                return;
            }
        }
    });
    rx
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

    /// A reader fed by a channel: blocks until the test writes the next piece.
    struct Pipe(std::sync::mpsc::Receiver<Vec<u8>>, Vec<u8>);

    impl std::io::Read for Pipe {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.1.is_empty() {
                match self.0.recv() {
                    Ok(piece) => self.1 = piece,
                    Err(_) => return Ok(0),
                }
            }
            let n = out.len().min(self.1.len());
            out[..n].copy_from_slice(&self.1[..n]);
            self.1.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn stream_hands_over_each_line_as_it_arrives_and_skips_past_bad_ones() {
        let (write, pipe) = std::sync::mpsc::channel::<Vec<u8>>();
        let mut rx = stream(Pipe(pipe, Vec::new()), None, 4);
        write
            .send(b"\n{\"id\":\"a\",\"type\":\"x\"}\n".to_vec())
            .unwrap();
        // Received while the input is still open.
        let a = rx.blocking_recv().unwrap().unwrap();
        assert_eq!((a.id(), a.subject()), ("a", "x"));
        write
            .send(b"{\"id\":\"b\",\"type\":\"y\"}\r\nnot json\n".to_vec())
            .unwrap();
        assert_eq!(rx.blocking_recv().unwrap().unwrap().id(), "b");
        let bad = rx.blocking_recv().unwrap().unwrap_err();
        assert!(bad.cause.starts_with("line 4:"), "{}", bad.cause);
        // The last line may lack its newline.
        write.send(b"{\"id\":\"c\"}".to_vec()).unwrap();
        drop(write);
        assert_eq!(rx.blocking_recv().unwrap().unwrap().id(), "c");
        assert!(rx.blocking_recv().is_none());
    }

    #[test]
    fn stream_reads_an_array_whole() {
        let input = b"\n  [\n {\"id\":\"a\"},\n {\"id\":\"b\"}\n]\n".to_vec();
        let mut rx = stream(std::io::Cursor::new(input), None, 1);
        let ids: Vec<String> = std::iter::from_fn(|| rx.blocking_recv())
            .map(|r| r.unwrap().id().to_owned())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        let mut rx = stream(std::io::Cursor::new(b"[{\"id\":".to_vec()), None, 1);
        assert!(rx.blocking_recv().unwrap().is_err());
        assert!(rx.blocking_recv().is_none());
    }

    #[test]
    fn bad_input_names_the_line() {
        let err = parse(b"{\"id\":\"a\"}\n{oops}\n", None).unwrap_err();
        assert!(err.cause.starts_with("line 2"), "{}", err.cause);
        assert!(parse(b"  \n", None).is_err());
        assert!(parse(b"[]", None).is_err());
    }
}
