//! Scale-out on Redis: one durable queue, three workers, one leaving mid-stream, nothing lost.
//!
//! 1. The integration is data: the endpoint (a URL and its signing secret) is added to the
//!    queue's registry in Redis, and every worker picks it up within a second.
//! 2. A producer appends 3,000 events to the queue (four partitions, Redis Streams).
//! 3. Three workers deliver them, the partitions spread over the live workers; one worker shuts
//!    down mid-stream and the others take its partitions over.
//! 4. The receiver verifies each request's Standard Webhooks signature, with its replay cache
//!    in Redis (shared with any other receiver instance): a request sent again is answered
//!    `200 {"status":"duplicate"}` and not handled again.
//!
//! It needs a Redis server: `WEBHOOK_REDIS_URL` (default `redis://127.0.0.1:6379`), for
//! example `redis-server --port 6379` or `docker run -p 6379:6379 redis:7`. Run it with
//! `cargo run --example redis_workers`; it checks its own outcome and cleans up its keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpListener;
use webhook_core::{Event, KeyRing, Scheme, Secret, Verifier};
use webhook_payloads::Payload;
use webhook_receiver::{
    Context, DetectDecoder, HandlerOutcome, Receiver, ReceiverConfig, Server, handler_fn,
};
use webhook_redis::{RedisQueue, RedisQueueConfig, RedisReplayStore, SharedRegistry};
use webhook_sender::registry::{AuthSpec, KeySpec};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::{EndpointSpec, Sender, TransportBuilder};

#[path = "support/client.rs"]
mod client;

type Error = Box<dyn std::error::Error + Send + Sync>;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const EVENTS: u64 = 3_000;

/// One worker process, as it would run on its own machine: a queue connection, a sender, and
/// the registry watch that gives the sender its endpoints.
struct Worker {
    queue: RedisQueue,
    sender: Sender,
    _watch: webhook_redis::RegistryWatch,
}

async fn worker(cfg: &RedisQueueConfig, name: &str) -> Result<Worker, Error> {
    let queue = RedisQueue::connect(cfg.clone().consumer(name)).await?;
    let sender = Sender::builder()
        .transport_builder(
            TransportBuilder::new().ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?)),
        )
        .outbox_open(webhook_sender::outbox::Outbox::from_store(Arc::new(
            queue.clone(),
        )))
        .build()?;
    let watch = SharedRegistry::new(&queue).watch(&sender)?;
    Ok(Worker {
        queue,
        sender,
        _watch: watch,
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("WEBHOOK_REDIS_URL")
        .or_else(|_| std::env::var("WEBHOOK_TEST_REDIS_URL"))
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let name = format!("example-{}", std::process::id());
    let cfg = RedisQueueConfig::new(&url, &name)
        .partitions(4)
        .shared_registry(true)
        .spread(true);
    let producer = match RedisQueue::connect(cfg.clone()).await {
        Ok(q) => q,
        Err(e) => {
            eprintln!(
                "no Redis to run on: {e}\n\
                 start one (`redis-server --port 6379`, or `docker run -p 6379:6379 redis:7`) \
                 or set WEBHOOK_REDIS_URL"
            );
            std::process::exit(2);
        }
    };
    println!(
        "webhook-sdk on Redis: queue {name} at {}",
        webhook_redis::redact_url(&url)
    );

    // ---- the receiver: signatures verified, replays refused across instances -----------
    let ring = KeyRing::new().with_key(Secret::from_whsec(SECRET)?);
    let replay = RedisReplayStore::connect(&url, format!("{name}:replay:")).await?;
    let config = ReceiverConfig::builder()
        .verify(Verifier::new(Scheme::standard_webhooks(), &ring)?)
        .replay_store(Arc::new(replay))
        .build()?;
    let seen: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let last = Arc::new(Mutex::new(None::<(http::HeaderMap, Bytes)>));
    let (s, l) = (seen.clone(), last.clone());
    let receiver = Receiver::with_decoder(config, DetectDecoder)
        .fallback(handler_fn(move |item: Payload<'static>, cx: Context| {
            if let Payload::Json(v) = &item
                && let Some(n) = v["n"].as_u64()
            {
                *s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(n)
                    .or_default() += 1;
                *l.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((cx.headers().clone(), cx.body().clone()));
            }
            async { HandlerOutcome::Accepted }
        }))
        .build()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(Server::new(receiver).serve(listener, async {
        let _ = stopped.await;
    }));
    println!("  receiver  http://{addr}/siem (Standard Webhooks, replay cache in Redis)");

    // ---- 1. the integration, added as data ----------------------------------------------
    let workers = [
        worker(&cfg, "worker-a").await?,
        worker(&cfg, "worker-b").await?,
        worker(&cfg, "worker-c").await?,
    ];
    let mut spec = EndpointSpec::new("siem", format!("http://{addr}/siem"));
    spec.auth = AuthSpec::Signature {
        scheme: "standard-webhooks".into(),
        keys: vec![KeySpec::new(SECRET)],
    };
    let registry = SharedRegistry::new(&producer);
    registry.add_endpoint(spec).await?;
    let started = Instant::now();
    while workers.iter().any(|w| w.sender.status("siem").is_none()) {
        if started.elapsed() > Duration::from_secs(5) {
            return Err("the workers never saw the endpoint".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "  registry  endpoint siem added; all 3 workers have it after {} ms",
        started.elapsed().as_millis()
    );

    // ---- 2. the producer -----------------------------------------------------------------
    let started = Instant::now();
    for n in 0..EVENTS {
        producer.enqueue_nowait(
            &Event::builder(format!("evt_{n}"), "policy.alert")
                .serialize(&serde_json::json!({ "n": n, "rule": "Terminal shell in container" }))?,
        )?;
    }
    producer.flush().await?;
    println!(
        "  producer  {EVENTS} events appended in {} ms",
        started.elapsed().as_millis()
    );

    // ---- 3. one worker leaves mid-stream ------------------------------------------------
    let count = || seen.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
    let started = Instant::now();
    while count() < EVENTS / 3 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let [a, b, c] = workers;
    let left_at = count();
    let left_after = started.elapsed();
    let report = c.sender.shutdown(Duration::from_secs(10)).await;
    c.queue.close().await;
    println!(
        "  worker-c  shut down after {left_at} events had arrived ({} ms in; {} events it held handed back)",
        left_after.as_millis(),
        report.undelivered_events()
    );
    while count() < EVENTS && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    let (distinct, duplicates) = {
        let s = seen.lock().unwrap_or_else(|e| e.into_inner());
        (
            s.len() as u64,
            s.values().map(|c| u64::from(c - 1)).sum::<u64>(),
        )
    };
    println!(
        "  delivered {distinct} of {EVENTS} distinct events in {} ms, {duplicates} duplicates",
        took.as_millis()
    );

    // ---- 4. a replay is refused -----------------------------------------------------------
    let (headers, body) = last
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or("no request recorded")?;
    let mut again = http::Request::post("/siem").body(body)?;
    *again.headers_mut() = headers;
    let (status, answer) = client::send(addr, again).await?;
    let answer = String::from_utf8_lossy(&answer);
    let handled_again = seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .map(|c| u64::from(c - 1))
        .sum::<u64>()
        > duplicates;
    println!("  replay    the last request sent again: {answer} (handled again: {handled_again})");
    client::expect("a replay", status, http::StatusCode::OK)?;

    // ---- check and clean up ----------------------------------------------------------------
    for w in [a, b] {
        w.sender.shutdown(Duration::from_secs(10)).await;
        w.queue.close().await;
    }
    let stats = webhook_sender::outbox::Outbox::from_store(Arc::new(producer.clone())).stats();
    println!(
        "  queue     {} pending, {} dead letters",
        stats.pending, stats.dead_letters
    );
    registry.remove_endpoint("siem").await?;
    let deleted = producer.destroy().await?;
    println!("  cleanup   the endpoint removed, the queue destroyed ({deleted} keys)");
    producer.close().await;
    let _ = stop.send(());
    server.await??;
    // A replay is answered 200 (the sender must not retry it) and not handled again.
    let ok = distinct == EVENTS
        && status == http::StatusCode::OK
        && answer.contains("duplicate")
        && !handled_again
        && stats.pending == 0;
    if !ok {
        return Err("unexpected outcome (see above)".into());
    }
    println!("ok: every event delivered once or more, the replay refused");
    Ok(())
}
