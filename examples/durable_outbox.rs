//! A sender with a durable outbox is killed mid-stream and restarted: nothing is lost.
//!
//! ```sh
//! cargo run --example durable_outbox
//! ```
//!
//! 1. A verifying **receiver** listens on 127.0.0.1 and records every event id it handles.
//! 2. This program starts **itself as a child process**: a sender with an outbox in a
//!    temporary directory that forwards 20,000 events, signed with Standard Webhooks, in
//!    batches of 100.
//! 3. Once about a third has arrived, the child is **killed with SIGKILL** (no shutdown, no
//!    flush: what a crash or an OOM kill does).
//! 4. The child is started again over the same directory. It first delivers what the outbox
//!    still holds (the batches that were in flight go out again with the **same `webhook-id`**,
//!    so the receiver answers them as duplicates and does not handle them twice), then sends
//!    the events it had not produced yet.
//! 5. Every event has arrived: the program checks it and exits non-zero otherwise.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use webhook_core::{
    BatcherConfig, Encoding, Endpoint, Event, KeyRing, Scheme, Secret, SenderAuth, Verifier,
};
use webhook_payloads::Payload;
use webhook_receiver::{
    Context, DetectDecoder, HandlerOutcome, Receiver, ReceiverConfig, Server, handler_fn,
};
use webhook_sender::outbox::OutboxConfig;
use webhook_sender::ssrf::{Cidr, SsrfPolicy};
use webhook_sender::{EndpointConfig, Sender, TransportBuilder};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const EVENTS: usize = 20_000;
const CHILD: &str = "DURABLE_OUTBOX_CHILD";

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match std::env::var_os(CHILD) {
        Some(dir) => rt.block_on(child(PathBuf::from(dir))),
        None => rt.block_on(parent()),
    }
}

/// The receiver and the supervisor: start, kill, restart, check.
async fn parent() -> Result<(), Error> {
    let ring = KeyRing::single(Secret::from_whsec(SECRET)?);
    let handled: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let h = handled.clone();
    let receiver = Receiver::with_decoder(
        ReceiverConfig::builder()
            .verify(Verifier::new(Scheme::standard_webhooks(), &ring)?)
            .build()?,
        DetectDecoder,
    )
    .fallback(handler_fn(move |item: Payload<'static>, _cx: Context| {
        if let Payload::Json(v) = &item
            && let Some(id) = v.get("id").and_then(|i| i.as_str())
            && let Ok(mut h) = h.lock()
        {
            *h.entry(id.to_owned()).or_insert(0) += 1;
        }
        async { HandlerOutcome::Accepted }
    }))
    .build()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/in", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(Server::new(receiver).serve(listener, async {
        let _ = stopped.await;
    }));
    let count = || handled.lock().map_or(0, |h| h.len());

    let dir = std::env::temp_dir().join(format!("webhook-durable-outbox-{}", std::process::id()));
    println!("webhook-sdk durable outbox");
    println!("  receiver  {url} (Standard Webhooks, duplicates answered 200 and not handled)");
    println!("  outbox    {}", dir.display());

    // First run: killed with SIGKILL once about a third has arrived.
    let mut child = start(&dir, &url)?;
    let until = Instant::now() + Duration::from_secs(60);
    while count() < EVENTS / 3 && Instant::now() < until && child.try_wait()?.is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill()?; // SIGKILL
    child.wait()?;
    let at_kill = count();
    println!("  run 1     killed with SIGKILL after {at_kill} of {EVENTS} events arrived");

    // Second run over the same directory: what was left, then the rest.
    let started = Instant::now();
    let child = start(&dir, &url)?;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let report = String::from_utf8_lossy(&out.stdout);
    for line in report.lines() {
        println!("  run 2     {line}");
    }
    if !out.status.success() {
        return Err(format!("the restarted sender failed: {}", out.status).into());
    }
    println!(
        "  run 2     finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let _ = stop.send(());
    server.await??;
    let handled = handled.lock().map(|h| h.clone()).unwrap_or_default();
    let missing = (0..EVENTS)
        .filter(|i| !handled.contains_key(&format!("evt_{i}")))
        .count();
    let twice = handled.values().filter(|&&n| n > 1).count();
    std::fs::remove_dir_all(&dir)?;
    let _ = std::fs::remove_file(dir.with_extension("progress"));
    println!();
    println!("summary");
    println!(
        "  {}/{EVENTS} events delivered across a SIGKILL; {missing} missing; {twice} handled twice",
        handled.len()
    );
    println!(
        "  (batches in flight at the kill went out again with their webhook-id and were answered as \
         duplicates; an event is handled twice only when the kill fell between `send` and this \
         producer noting it: at most one)"
    );
    if twice > 1 {
        return Err(format!("{twice} events handled twice").into());
    }
    if missing > 0 {
        return Err(format!("{missing} events were lost").into());
    }
    Ok(())
}

fn start(dir: &Path, url: &str) -> std::io::Result<std::process::Child> {
    std::process::Command::new(std::env::current_exe()?)
        .env(CHILD, dir)
        .env("DURABLE_OUTBOX_URL", url)
        .stdout(std::process::Stdio::piped())
        .spawn()
}

/// The sender: resumes from the outbox, then produces what it had not produced yet.
async fn child(dir: PathBuf) -> Result<(), Error> {
    let url = std::env::var("DURABLE_OUTBOX_URL")?;
    let ring = KeyRing::single(Secret::from_whsec(SECRET)?);
    let loopback: Cidr = "127.0.0.0/8".parse()?;
    let sender = Sender::builder()
        .transport_builder(TransportBuilder::new().ssrf(SsrfPolicy::default().allow(loopback)))
        .outbox(OutboxConfig::new(&dir))
        .endpoint(
            EndpointConfig::builder(
                "siem",
                Endpoint::builder(url)
                    .auth(SenderAuth::signature_with(
                        Scheme::standard_webhooks(),
                        &ring,
                    )?)
                    .encoding(Encoding::Ndjson)
                    .build()?,
            )
            .batching(
                BatcherConfig::builder()
                    .max_events(100)
                    .linger(Duration::from_millis(5))
                    .build()?,
            )
            .build()?,
        )
        .build()?;
    let outbox = sender.outbox().ok_or("an outbox")?.clone();
    let held = outbox.recovery().pending;
    if held > 0 {
        println!("the outbox held {held} undelivered events: delivering them first");
    }
    // What this producer already handed to the outbox (written after `send` returned).
    let progress = dir.with_extension("progress");
    let start = std::fs::read_to_string(&progress)
        .ok()
        .and_then(|s| {
            // Whole lines only: a kill may cut the last one short.
            s.split_inclusive('\n')
                .filter_map(|l| l.strip_suffix('\n')?.parse::<usize>().ok())
                .max()
        })
        .map_or(0, |n| n + 1);
    if start > 0 {
        println!("producing from event {start} on");
    }
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&progress)?;
    for i in start..EVENTS {
        let event = Event::builder(format!("evt_{i}"), "alert")
            .json_bytes(format!(r#"{{"id":"evt_{i}","n":{i}}}"#))?;
        drop(sender.send(event).await?);
        // Group commit writes events out within 2 ms; this producer writes each out at once
        // (one `write`, no sync: a kill loses nothing, a power loss may) before it notes how
        // far it got, so after a kill it resumes exactly where it stopped.
        outbox.write_out()?;
        // One `write` per line (`writeln!` may split it, and a kill in between would glue
        // this line to the next run's first).
        log.write_all(format!("{i}\n").as_bytes())?;
    }
    while outbox.stats().pending > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report = sender.shutdown(Duration::from_secs(5)).await;
    println!(
        "every event delivered; {} undelivered at shutdown; outbox now holds {}",
        report.undelivered_events(),
        outbox.stats().pending
    );
    Ok(())
}
