//! Shared setup of the end-to-end benches (`e2e.rs`, `e2e_load.rs`): the typed Sysdig policy
//! events, the verifying and typed-decoding receiver, the acknowledge-only sink, the SDK sender
//! and the producer tasks.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use webhook_benches::SYSDIG_FIXTURE_NDJSON;
use webhook_core::Encoding;
use webhook_core::Endpoint;
use webhook_core::{
    BatcherConfig, Event, KeyRing, RetryPolicy, Scheme, Secret, SenderAuth, Verifier,
};
use webhook_payloads::sysdig::{self, SysdigEvent};
use webhook_receiver::{
    BodyDecodeError, Context, Decode, HandlerOutcome as Handled, MediaType, RawBody, Receiver,
    ReceiverConfig, Server, SysdigDecoder, handler_fn,
};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{Concurrency, EndpointConfig, OverflowPolicy, Sender};

pub const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Request body limit of the receivers (above the sender's `max_bytes`).
pub const BODY_LIMIT: usize = 8 << 20;

/// Reads nothing: the sink receiver only counts lines and acknowledges (the sender alone).
pub struct Discard(pub Arc<AtomicU64>);

impl Decode<serde_json::Value> for Discard {
    fn decode(
        &self,
        _media: Option<MediaType>,
        body: &[u8],
    ) -> Result<Vec<serde_json::Value>, BodyDecodeError> {
        // Counted in chunks of 255 with a byte accumulator (vectorizes).
        let lines: u64 = body
            .chunks(255)
            .map(|c| u64::from(c.iter().fold(0u8, |n, &b| n + u8::from(b == b'\n'))))
            .sum();
        self.0.fetch_add(lines, Ordering::Relaxed);
        Ok(Vec::new())
    }
}

/// Starts the acknowledge-only sink; returns its URL.
pub async fn start_sink(count: Arc<AtomicU64>) -> String {
    let config = ReceiverConfig::builder()
        .auth(webhook_core::ReceiverAuth::None)
        .body_limit(BODY_LIMIT)
        .no_replay_protection()
        .build()
        .expect("sink config");
    let receiver = Receiver::builder(config)
        .decoder(Discard(count))
        .fallback(handler_fn(|_v: serde_json::Value, _cx: Context| async {
            Handled::Accepted
        }))
        .build()
        .expect("sink");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/sink", listener.local_addr().expect("addr"));
    tokio::spawn(Server::new(receiver).serve(listener, std::future::pending()));
    url
}

/// The fixture's policy events, typed and owned.
pub fn policy_events() -> Vec<SysdigEvent<'static>> {
    let events: Vec<_> = sysdig::parse_ndjson(SYSDIG_FIXTURE_NDJSON.as_bytes())
        .expect("fixture parses")
        .into_iter()
        .map(SysdigEvent::into_owned)
        .filter(|e| matches!(e, SysdigEvent::Policy(_)))
        // The ~1 KiB one (the others carry 2-3 KiB of falco output).
        .filter(|e| serde_json::to_vec(e).is_ok_and(|v| v.len() < 1536))
        .collect();
    assert!(!events.is_empty(), "the fixture has policy events");
    events
}

fn verifying_config() -> ReceiverConfig {
    let verifier = Verifier::new(
        Scheme::standard_webhooks(),
        &KeyRing::single(Secret::from_whsec(WHSEC).expect("secret")),
    )
    .expect("verifier");
    ReceiverConfig::builder()
        .auth(verifier)
        .body_limit(BODY_LIMIT)
        .build()
        .expect("receiver config")
}

/// The receiver of the benches: verifies the signature (and the replay window), then one
/// handler call per request splits the batch and deserializes every event into the typed
/// `SysdigEvent`, borrowing its strings from the shared body (`RawBody` + `parse_batch`).
pub fn typed_receiver(count: Arc<AtomicU64>) -> Receiver<Bytes> {
    Receiver::with_decoder(verifying_config(), RawBody)
        .fallback(handler_fn(move |body: Bytes, cx: Context| {
            let count = count.clone();
            async move {
                let ct = match cx.media_type() {
                    Some(MediaType::NdJson) => "application/x-ndjson",
                    _ => "application/json",
                };
                match sysdig::parse_batch(Some(ct), &body) {
                    Ok((_, events)) => {
                        assert!(events.iter().all(|e| matches!(e, SysdigEvent::Policy(_))));
                        count.fetch_add(events.len() as u64, Ordering::Relaxed);
                        Handled::Accepted
                    }
                    Err(e) => Handled::failed(e.to_string()),
                }
            }
        }))
        .build()
        .expect("receiver")
}

/// The same with the SDK's `SysdigDecoder`: each event detached from the body (owned) and
/// handed to its own handler call.
pub fn owned_receiver(count: Arc<AtomicU64>) -> Receiver<SysdigEvent<'static>> {
    Receiver::with_decoder(verifying_config(), SysdigDecoder)
        .fallback(handler_fn(move |e: SysdigEvent<'static>, _cx: Context| {
            let count = count.clone();
            async move {
                assert!(matches!(e, SysdigEvent::Policy(_)));
                count.fetch_add(1, Ordering::Relaxed);
                Handled::Accepted
            }
        }))
        .build()
        .expect("receiver")
}

async fn serve<T: Send + 'static>(receiver: Receiver<T>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/sysdig", listener.local_addr().expect("addr"));
    tokio::spawn(Server::new(receiver).serve(listener, std::future::pending()));
    url
}

/// Starts the typed (borrowing) receiver on a fresh port; returns its URL.
pub async fn start_receiver(count: Arc<AtomicU64>) -> String {
    serve(typed_receiver(count)).await
}

/// Starts the owned-events receiver on a fresh port; returns its URL.
pub async fn start_owned_receiver(count: Arc<AtomicU64>) -> String {
    serve(owned_receiver(count)).await
}

/// Batching and queue settings of the SDK sender in the benches.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    pub max_events: usize,
    pub max_bytes: usize,
    pub linger: Duration,
    pub in_flight: usize,
    /// Events the intake queue holds.
    pub queue: usize,
    pub overflow: OverflowPolicy,
    /// Events and bytes the batcher may hold (waiting and in flight).
    pub buffer_events: usize,
    pub buffer_bytes: usize,
    /// Retries keep going (receiver down) instead of failing fast.
    pub patient: bool,
}

/// A number from the environment, or `default`.
fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Tuning {
    /// The throughput setting: large batches, short linger, several requests in flight.
    ///
    /// `E2E_MAX_EVENTS` overrides the batch size of 500 events, `E2E_IN_FLIGHT` the 4 requests
    /// in flight, `E2E_LINGER_US` the 2 ms linger. 500 events (~585 KB) measured faster than
    /// 250 or 1000 on the 2-core machine.
    pub fn throughput() -> Self {
        Self {
            linger: Duration::from_micros(env_or("E2E_LINGER_US", 2000) as u64),
            in_flight: env_or("E2E_IN_FLIGHT", 4),
            queue: 50_000,
            overflow: OverflowPolicy::Block,
            buffer_events: 50_000,
            buffer_bytes: 64 << 20,
            patient: false,
            ..Self::batch_limits(env_or("E2E_MAX_EVENTS", 500))
        }
    }

    /// The latency setting: the throughput setting with batches of at most 250 events
    /// (`E2E_LATENCY_MAX_EVENTS`), so that a closed batch is signed, sent, verified and parsed
    /// in half the time, and 8 requests in flight (`E2E_LATENCY_IN_FLIGHT`), so that a burst
    /// does not queue behind the ones already out; the linger is unchanged.
    pub fn latency() -> Self {
        let limits = Self::batch_limits(env_or("E2E_LATENCY_MAX_EVENTS", 250));
        Self {
            max_events: limits.max_events,
            max_bytes: limits.max_bytes,
            in_flight: env_or("E2E_LATENCY_IN_FLIGHT", 8),
            ..Self::throughput()
        }
    }

    /// `max_events` and its byte limit (2 KiB per event, at least 1 MiB); the rest zero.
    fn batch_limits(max_events: usize) -> Self {
        Self {
            max_events,
            max_bytes: (max_events * 2048).max(1 << 20),
            linger: Duration::ZERO,
            in_flight: 0,
            queue: 0,
            overflow: OverflowPolicy::Block,
            buffer_events: 0,
            buffer_bytes: 0,
            patient: false,
        }
    }
}

/// The SDK sender: NDJSON batches signed with Standard Webhooks, over the reqwest transport.
pub fn sdk_sender(url: &str, t: Tuning) -> Sender {
    sdk_sender_with(url, t, None)
}

/// [`sdk_sender`] with a durable outbox when `outbox` is given.
pub fn sdk_sender_with(
    url: &str,
    t: Tuning,
    outbox: Option<webhook_sender::outbox::OutboxConfig>,
) -> Sender {
    let builder = match outbox {
        Some(o) => Sender::builder().outbox(o),
        None => Sender::builder(),
    };
    sdk_sender_on(url, t, builder)
}

/// [`sdk_sender`] built on `builder` (an outbox already chosen, such as a Redis queue).
pub fn sdk_sender_on(url: &str, t: Tuning, builder: webhook_sender::SenderBuilder) -> Sender {
    let transport = TransportBuilder::new()
        .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse().expect("cidr")))
        .max_response_body(4096)
        .build()
        .expect("transport");
    let endpoint = Endpoint::builder(url)
        .encoding(Encoding::Ndjson)
        .auth(SenderAuth::signature(Secret::from_whsec(WHSEC).expect("secret")).expect("auth"))
        .build()
        .expect("endpoint");
    let retry = if t.patient {
        RetryPolicy::builder()
            .exponential(
                Duration::from_millis(50),
                2.0,
                Duration::from_millis(500),
                false,
            )
            .max_attempts(1000)
            .max_elapsed(Duration::from_secs(120))
            .build()
    } else {
        RetryPolicy::builder()
            .fixed(vec![Duration::ZERO, Duration::from_millis(50)], 0)
            .build()
    }
    .expect("retry");
    builder
        .transport(transport)
        .endpoint(
            EndpointConfig::builder("bench", endpoint)
                .batching(
                    BatcherConfig::builder()
                        .max_events(t.max_events)
                        .max_bytes(t.max_bytes)
                        .linger(t.linger)
                        .buffer_limits(t.buffer_events, t.buffer_bytes)
                        .build()
                        .expect("batcher"),
                )
                .retry(retry)
                .concurrency(Concurrency::Fixed(t.in_flight))
                .queue(t.queue, t.overflow)
                .build()
                .expect("endpoint config"),
        )
        .build()
        .expect("sender")
}

/// Serializes the `i`-th event (typed → JSON bytes, as an application would), with the SDK's
/// serde-free writer (`EventBuilder::json`; the bytes `serde_json` would write).
pub fn serialize(i: usize, typed: &[SysdigEvent<'static>]) -> Event {
    let e = &typed[i % typed.len()];
    Event::builder(format!("evt_{i}"), "policy")
        .json(e)
        .expect("serialize")
}

/// Producer tasks on the runtime (an application sends from several tasks).
pub const PRODUCERS: usize = 2;

/// Each producer serializes and sends its share of `events`, then awaits its receipts.
pub async fn produce(sender: &Sender, typed: &Arc<Vec<SysdigEvent<'static>>>, events: usize) {
    produce_with(sender, typed, events, serialize).await;
}

/// [`produce`] with event `i` made by `make`.
pub async fn produce_with(
    sender: &Sender,
    typed: &Arc<Vec<SysdigEvent<'static>>>,
    events: usize,
    make: fn(usize, &[SysdigEvent<'static>]) -> Event,
) {
    let mut tasks = Vec::with_capacity(PRODUCERS);
    for p in 0..PRODUCERS {
        let (sender, typed) = (sender.clone(), typed.clone());
        tasks.push(tokio::spawn(async move {
            let share = events / PRODUCERS;
            let mut receipts = Vec::with_capacity(share);
            for i in p * share..(p + 1) * share {
                receipts.push(sender.send(make(i, &typed)).await.expect("send"));
            }
            for r in receipts {
                assert!(r.await.is_delivered());
            }
        }));
    }
    for t in tasks {
        t.await.expect("producer");
    }
}
