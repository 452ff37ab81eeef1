//! The repository's real Sysdig Secure events as the sender's core `Event`s (id and type taken
//! from each event, the bytes kept as they are), shared by the examples that forward them.

use bytes::Bytes;
use webhook_core::Event;
use webhook_payloads::sysdig::SysdigEvent;

/// The events of `fixtures/sysdig/elastic-integrations-test-sysdig.ndjson`, one per line.
pub(crate) fn fixture_events() -> Result<Vec<Event>, Box<dyn std::error::Error + Send + Sync>> {
    webhook_examples::SYSDIG_FIXTURE_NDJSON
        .lines()
        .map(|line| {
            let ev = SysdigEvent::from_slice(line.as_bytes())?;
            let id = ev.id().unwrap_or("unknown").to_owned();
            let kind = ev.event_type().unwrap_or("unknown").to_owned();
            Ok(Event::builder(id, kind).json_bytes(Bytes::copy_from_slice(line.as_bytes()))?)
        })
        .collect()
}
