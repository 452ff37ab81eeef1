//! The durable outbox against real receivers on 127.0.0.1 (issue 15):
//!
//! * a restart delivers what the previous sender left, with the same batch ids (`webhook-id`);
//! * a backlog far larger than the queue waits on disk and is delivered exactly once;
//! * dead letters keep their attempts and can be listed, inspected, redelivered and purged;
//! * the registry is saved with the outbox and restored;
//! * two opens of one directory: the second is refused, naming the holder's pid;
//! * a torn tail and a corrupt record are cut, counted and reported, and the store opens;
//! * a write error (a file-size limit in a child process) stops intake with a typed error and
//!   damages nothing;
//! * crash test: a child sender is killed with SIGKILL at 20 random moments while it forwards
//!   100,000 events; every id arrives, duplicates bounded by what was in flight.

#[path = "engine/server.rs"]
#[allow(
    dead_code,
    reason = "shared with the engine tests, which use all of it"
)]
mod server;

#[path = "support/recorder.rs"]
#[allow(dead_code, reason = "shared with the engine tests")]
mod recorder;

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use server::{BoxError, Reply, Server};
use webhook_core::{BatcherConfig, Endpoint, Event, RetryPolicy};
use webhook_sender::outbox::{
    Appended, AttemptInfo, BatchRecord, Filter, Outbox, OutboxConfig, OutboxError, OutboxStore,
    ReadCursor, ReadOut, SettleKind, StoreFuture,
};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{
    EndpointConfig, EndpointSpec, FailureReason, Outcome, OverflowPolicy, SendError, Sender,
    SenderBuilder,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "webhook-outbox-test-{}-{name}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn builder() -> Result<SenderBuilder, BoxError> {
    Ok(Sender::builder()
        .transport_builder(
            TransportBuilder::new()
                .timeout(Duration::from_secs(5))
                .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?)),
        )
        .park_after(ms(50)))
}

fn event(i: usize) -> Result<Event, BoxError> {
    Ok(
        Event::builder(format!("evt_{i}"), "policy")
            .json_bytes(format!(r#"{{"id":"evt_{i}"}}"#))?,
    )
}

fn fast_retry() -> Result<RetryPolicy, BoxError> {
    Ok(RetryPolicy::builder()
        .exponential(ms(20), 2.0, ms(200), false)
        .max_attempts(1_000)
        .min_wait_after_throttle(ms(20))
        .retry_after(true, ms(200))
        .build()?)
}

fn endpoint(
    name: &str,
    url: &str,
    max_events: usize,
    queue: usize,
) -> Result<EndpointConfig, BoxError> {
    Ok(
        EndpointConfig::builder(name, Endpoint::builder(url).build()?)
            .batching(
                BatcherConfig::builder()
                    .max_events(max_events)
                    .linger(ms(5))
                    .build()?,
            )
            .retry(fast_retry()?)
            .queue(queue, OverflowPolicy::Block)
            .build()?,
    )
}

/// Every event id the server received, with how many times.
fn received(server: &Server) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for s in server.seen() {
        for id in s.event_ids() {
            *seen.entry(id).or_insert(0) += 1;
        }
    }
    seen
}

/// Polls `done` until it holds.
async fn wait_for(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
) -> Result<(), BoxError> {
    let until = Instant::now() + timeout;
    while !done() {
        if Instant::now() > until {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(ms(10)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_delivers_what_was_left_with_the_same_batch_ids() -> Result<(), BoxError> {
    let dir = tempdir("restart");
    let down = Arc::new(AtomicBool::new(true));
    let d = down.clone();
    let server = Server::start(move |_, _| {
        if d.load(Ordering::SeqCst) {
            Reply::status(503)
        } else {
            Reply::ok()
        }
    })
    .await?;
    let url = server.url("/in");
    let first_ids: HashMap<String, String>;
    {
        let sender = builder()?
            .outbox(OutboxConfig::new(&dir))
            .endpoint(endpoint("siem", &url, 10, 1024)?)
            .build()?;
        for i in 0..50 {
            drop(sender.send(event(i)?).await?);
        }
        // Every batch tried at least once (and failing).
        wait_for("every batch tried", Duration::from_secs(10), || {
            received(&server).len() == 50
        })
        .await?;
        first_ids = server
            .seen()
            .iter()
            .flat_map(|s| {
                let id = s.header("webhook-id").unwrap_or_default().to_owned();
                s.event_ids().into_iter().map(move |e| (e, id.clone()))
            })
            .collect();
        let report = sender.shutdown(Duration::ZERO).await;
        assert!(!report.is_clean(), "events were left undelivered");
        let outbox = sender.outbox().ok_or("an outbox")?;
        assert_eq!(outbox.stats().pending, 50, "all 50 still held");
    }
    // A new sender over the same directory, with no endpoint given: the registry is restored
    // only for spec-built endpoints, so give it again.
    down.store(false, Ordering::SeqCst);
    let before = server.requests();
    let sender = builder()?
        .outbox(OutboxConfig::new(&dir))
        .endpoint(endpoint("siem", &url, 10, 1024)?)
        .build()?;
    let outbox = sender.outbox().ok_or("an outbox")?.clone();
    wait_for("everything delivered", Duration::from_secs(10), || {
        outbox.stats().pending == 0
    })
    .await?;
    let after: Vec<_> = server.seen().into_iter().skip(before).collect();
    let mut delivered = HashSet::new();
    for s in &after {
        let id = s.header("webhook-id").unwrap_or_default();
        for e in s.event_ids() {
            // The same webhook-id as before the restart, for the same events.
            assert_eq!(first_ids.get(&e).map(String::as_str), Some(id), "event {e}");
            delivered.insert(e);
        }
    }
    assert_eq!(delivered.len(), 50);
    assert!(
        outbox.stats().backlog_bytes < 4096,
        "settled segments deleted: {:?}",
        outbox.stats()
    );
    sender.shutdown(Duration::from_secs(5)).await;
    drop(sender);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_larger_than_the_queue_waits_on_disk_and_is_delivered_once()
-> Result<(), BoxError> {
    let dir = tempdir("backlog");
    let server = Server::start(|_, _| Reply::ok()).await?;
    let sender = builder()?
        .outbox(OutboxConfig::new(&dir).segment_bytes(256 << 10))
        .endpoint(endpoint("siem", &server.url("/in"), 100, 64)?)
        .build()?;
    sender.pause("siem", "test")?;
    let n = 20_000;
    let mut receipts = Vec::new();
    for i in 0..n {
        let r = sender.send(event(i)?).await?;
        // Keep one receipt in a hundred: spilled events still resolve them.
        if i % 100 == 0 {
            receipts.push(r);
        }
    }
    let outbox = sender.outbox().ok_or("an outbox")?.clone();
    assert_eq!(outbox.stats().pending, n as u64);
    assert!(outbox.stats().segments > 3, "the backlog spans segments");
    sender.resume("siem", "test")?;
    for r in receipts {
        let report = match tokio::time::timeout(Duration::from_secs(30), r).await {
            Ok(r) => r,
            Err(_) => {
                return Err(format!(
                    "receipt timed out: {:?}, received {}",
                    outbox.stats(),
                    received(&server).len()
                )
                .into());
            }
        };
        assert!(report.is_delivered(), "{report:?}");
    }
    wait_for("backlog delivered", Duration::from_secs(30), || {
        outbox.stats().pending == 0
    })
    .await?;
    let seen = received(&server);
    assert_eq!(seen.len(), n);
    assert!(seen.values().all(|&c| c == 1), "no event delivered twice");
    assert_eq!(outbox.stats().segments, 1, "every settled segment deleted");
    sender.shutdown(Duration::from_secs(5)).await;
    drop(sender);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_kept_with_their_attempts_and_can_be_redelivered() -> Result<(), BoxError>
{
    let dir = tempdir("dead");
    let reject = Arc::new(AtomicBool::new(true));
    let r = reject.clone();
    let server = Server::start(move |_, _| {
        if r.load(Ordering::SeqCst) {
            Reply::status(400)
        } else {
            Reply::ok()
        }
    })
    .await?;
    let url = server.url("/in");
    let sender = builder()?
        .outbox(OutboxConfig::new(&dir))
        .endpoint(endpoint("siem", &url, 1, 64)?)
        .build()?;
    let mut receipts = Vec::new();
    for i in 0..5 {
        receipts.push(sender.send(event(i)?).await?);
    }
    for r in receipts {
        let report = r.await;
        assert!(matches!(
            report.outcome("siem"),
            Some(Outcome::Failed {
                reason: FailureReason::Rejected { .. }
            })
        ));
    }
    let outbox = sender.outbox().ok_or("an outbox")?.clone();
    assert_eq!(outbox.stats().pending, 0);
    let dead = outbox.dead_letters(&Filter::all(), 100);
    assert_eq!(dead.len(), 5);
    assert!(dead.iter().all(|d| d.endpoint == "siem"));
    let first = outbox.dead_letters(&Filter::all().event_ids(["evt_0"]), 1);
    let one = outbox
        .dead_letter(first.first().ok_or("evt_0 dead-lettered")?.id)?
        .ok_or("the dead letter")?;
    assert_eq!(one.event.as_ref().map(Event::id), Some("evt_0"));
    assert_eq!(one.attempts.len(), 1);
    assert_eq!(one.attempts[0].status, Some(400));
    assert!(one.reason.contains("400"), "{}", one.reason);
    // Inspect by event id; purge one; redeliver the rest once the receiver accepts them.
    assert_eq!(
        outbox
            .dead_letters(&Filter::all().event_ids(["evt_3"]), 10)
            .len(),
        1
    );
    assert_eq!(outbox.purge(&Filter::all().event_ids(["evt_4"]))?, 1);
    reject.store(false, Ordering::SeqCst);
    assert_eq!(outbox.redeliver(&Filter::all().endpoint("siem"))?, 4);
    wait_for("redelivered", Duration::from_secs(10), || {
        let seen = server.seen();
        let ok: HashSet<String> = seen
            .iter()
            .skip(5)
            .flat_map(server::Seen::event_ids)
            .collect();
        ok.len() == 4
    })
    .await?;
    assert!(outbox.dead_letters(&Filter::all(), 10).is_empty());
    sender.shutdown(Duration::from_secs(5)).await;
    drop((sender, outbox));
    // Dead letters survive a restart (none left here, but the log reopens clean).
    let reopened = Outbox::open(OutboxConfig::new(&dir))?;
    assert_eq!(reopened.stats().dead_letters, 0);
    drop(reopened);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_is_saved_with_the_outbox_and_restored() -> Result<(), BoxError> {
    let dir = tempdir("registry");
    let server = Server::start(|_, _| Reply::ok()).await?;
    {
        let sender = builder()?.outbox(OutboxConfig::new(&dir)).build()?;
        let mut spec = EndpointSpec::new("from-spec", server.url("/in"));
        spec.paused = false;
        sender.add_endpoint(spec.to_config()?, "alice")?;
        sender.pause("from-spec", "alice")?;
        drop(sender.send(event(1)?).await?);
        sender.shutdown(Duration::ZERO).await;
    }
    let saved = Outbox::open(OutboxConfig::new(&dir))?
        .registry()?
        .ok_or("saved")?;
    assert_eq!(saved.endpoints.len(), 1);
    assert!(saved.endpoints[0].paused);
    // A new sender with no endpoint given restores it, paused, with its event held.
    let sender = builder()?.outbox(OutboxConfig::new(&dir)).build()?;
    assert_eq!(sender.endpoints(), vec![Arc::<str>::from("from-spec")]);
    let outbox = sender.outbox().ok_or("an outbox")?.clone();
    assert_eq!(outbox.stats().pending, 1);
    sender.resume("from-spec", "bob")?;
    wait_for("delivered after resume", Duration::from_secs(10), || {
        outbox.stats().pending == 0
    })
    .await?;
    assert_eq!(received(&server).len(), 1);
    sender.shutdown(Duration::from_secs(5)).await;
    drop(sender);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_an_endpoint_no_longer_configured_become_dead_letters() -> Result<(), BoxError> {
    let dir = tempdir("orphan");
    {
        let sender = builder()?
            .outbox(OutboxConfig::new(&dir))
            .endpoint(endpoint("gone", "http://127.0.0.1:9/in", 10, 64)?)
            .build()?;
        sender.pause("gone", "t")?;
        for i in 0..3 {
            drop(sender.send(event(i)?).await?);
        }
        sender.shutdown(Duration::ZERO).await;
    }
    let sender = builder()?.outbox(OutboxConfig::new(&dir)).build()?;
    let outbox = sender.outbox().ok_or("an outbox")?;
    assert_eq!(outbox.stats().pending, 0);
    let dead = outbox.dead_letters(&Filter::all().endpoint("gone"), 10);
    assert_eq!(dead.len(), 3);
    drop(sender);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn a_second_open_is_refused_naming_the_holder() -> Result<(), BoxError> {
    let dir = tempdir("lock");
    let first = Outbox::open(OutboxConfig::new(&dir))?;
    match Outbox::open(OutboxConfig::new(&dir)) {
        Err(e @ OutboxError::Locked { pid, .. }) => {
            assert_eq!(pid, Some(std::process::id()));
            assert!(
                e.to_string()
                    .contains(&format!("process {}", std::process::id())),
                "{e}"
            );
        }
        other => return Err(format!("expected Locked, got {other:?}").into()),
    }
    drop(first);
    // Released with the first.
    drop(Outbox::open(OutboxConfig::new(&dir))?);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Fills an outbox with `n` events for a paused endpoint and closes it.
async fn fill(dir: &Path, n: usize) -> Result<(), BoxError> {
    let sender = builder()?
        .outbox(OutboxConfig::new(dir))
        .endpoint(endpoint("siem", "http://127.0.0.1:9/in", 10, 4096)?)
        .build()?;
    sender.pause("siem", "t")?;
    for i in 0..n {
        drop(sender.send(event(i)?).await?);
    }
    sender.shutdown(Duration::ZERO).await;
    Ok(())
}

fn segments(dir: &Path) -> Result<Vec<PathBuf>, BoxError> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    v.sort();
    Ok(v)
}

/// The segment holding events, and its length.
fn fullest(dir: &Path) -> Result<(PathBuf, u64), BoxError> {
    let mut best = (PathBuf::new(), 0);
    for p in segments(dir)? {
        let len = std::fs::metadata(&p)?.len();
        if len > best.1 {
            best = (p, len);
        }
    }
    Ok(best)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_cut_counted_and_the_store_opens() -> Result<(), BoxError> {
    let dir = tempdir("torn");
    fill(&dir, 10).await?;
    let (seg, len) = fullest(&dir)?;
    // The last record cut mid-write, as a crash during the write leaves it.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)?
        .set_len(len - 7)?;
    let outbox = Outbox::open(OutboxConfig::new(&dir))?;
    let report = outbox.recovery();
    assert!(report.cut_bytes > 0, "{report:?}");
    assert_eq!(
        report.pending, 9,
        "the torn event is cut, the nine before it kept"
    );
    drop(outbox);
    // Opening again finds nothing more to cut.
    let outbox = Outbox::open(OutboxConfig::new(&dir))?;
    assert_eq!(outbox.recovery().cut_bytes, 0);
    assert_eq!(outbox.recovery().pending, 9);
    drop(outbox);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_record_is_detected_by_checksum_and_cut() -> Result<(), BoxError> {
    let dir = tempdir("corrupt");
    fill(&dir, 10).await?;
    let (seg, len) = fullest(&dir)?;
    // Flip one byte in the middle of the segment (inside some record's payload).
    let mut bytes = std::fs::read(&seg)?;
    let at = (24 + len as usize) / 2;
    bytes[at] ^= 0x55;
    std::fs::write(&seg, &bytes)?;
    let outbox = Outbox::open(OutboxConfig::new(&dir))?;
    let report = outbox.recovery();
    assert_eq!(report.corrupt_segments, 1, "{report:?}");
    assert!(report.cut_bytes > 0);
    assert!(report.pending < 10 && report.pending >= 3, "{report:?}");
    drop(outbox);
    // What was kept is delivered by a sender opened over it.
    let server = Server::start(|_, _| Reply::ok()).await?;
    let sender = builder()?
        .outbox(OutboxConfig::new(&dir))
        .endpoint(endpoint("siem", &server.url("/in"), 10, 64)?)
        .build()?;
    let outbox = sender.outbox().ok_or("an outbox")?.clone();
    wait_for("kept events delivered", Duration::from_secs(10), || {
        outbox.stats().pending == 0
    })
    .await?;
    assert_eq!(received(&server).len() as u64, report.pending);
    drop(sender);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_limit_applies_its_overflow_policy() -> Result<(), BoxError> {
    let dir = tempdir("limit");
    let sender = builder()?
        .outbox(
            OutboxConfig::new(&dir)
                .max_bytes(1 << 20)
                .segment_bytes(64 << 10)
                .overflow(OverflowPolicy::DropNewest),
        )
        .endpoint(endpoint("siem", "http://127.0.0.1:9/in", 10, 64)?)
        .build()?;
    sender.pause("siem", "t")?;
    let mut dropped = 0;
    for i in 0..40_000 {
        let r = sender.send(event(i)?).await?;
        if matches!(
            r.try_report().and_then(|r| r.outcome("siem").cloned()),
            Some(Outcome::Dropped)
        ) {
            dropped += 1;
        }
    }
    let stats = sender.outbox().ok_or("an outbox")?.stats();
    assert!(stats.backlog_bytes <= 1 << 20, "{stats:?}");
    assert!(
        dropped > 0 && stats.dropped == dropped,
        "{dropped} {stats:?}"
    );
    assert_eq!(stats.pending + dropped, 40_000);
    // Block: try_send says Full at the limit, and nothing is lost.
    sender.shutdown(Duration::ZERO).await;
    drop(sender);
    std::fs::remove_dir_all(&dir)?;
    let dir = tempdir("limit-block");
    let sender = builder()?
        .outbox(
            OutboxConfig::new(&dir)
                .max_bytes(1 << 20)
                .segment_bytes(64 << 10),
        )
        .endpoint(endpoint("siem", "http://127.0.0.1:9/in", 10, 64)?)
        .build()?;
    sender.pause("siem", "t")?;
    let mut full = false;
    for i in 0..40_000 {
        match sender.try_send(event(i)?) {
            Ok(_) => {}
            Err(SendError::Full(_)) => {
                full = true;
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    assert!(full, "the limit was reached");
    sender.shutdown(Duration::ZERO).await;
    drop(sender);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

// ---- processes: a write error, and kills --------------------------------------------------

/// The child side of the process tests: runs only when `OUTBOX_CHILD` is set.
#[test]
fn outbox_child() -> Result<(), BoxError> {
    let Ok(mode) = std::env::var("OUTBOX_CHILD") else {
        return Ok(());
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(child(&mode))
}

async fn child(mode: &str) -> Result<(), BoxError> {
    let dir = PathBuf::from(std::env::var("OUTBOX_DIR")?);
    let url = std::env::var("OUTBOX_URL")?;
    let total: usize = std::env::var("OUTBOX_TOTAL")?.parse()?;
    let progress = dir.with_extension("progress");
    // Resume after the last id the outbox accepted (written after `send` returned).
    let start = std::fs::read_to_string(&progress)
        .ok()
        .and_then(|s| {
            // Whole lines only: a kill may cut the last one short.
            s.split_inclusive('\n')
                .filter_map(|l| l.strip_suffix('\n')?.parse::<usize>().ok())
                .max()
        })
        .map_or(0, |n| n + 1);
    let sender = builder()?
        .outbox(OutboxConfig::new(&dir).segment_bytes(1 << 20))
        .endpoint(endpoint("siem", &url, 50, 2_000)?)
        .build()?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&progress)?;
    let outbox = sender.outbox().ok_or("an outbox")?.clone();
    for i in start..total {
        let flushed = match sender.send(event(i)?).await {
            // Written out before it is noted (a kill loses nothing written; the sync thread
            // syncs every 100 ms), so after a kill the producer resumes where it stopped.
            Ok(r) => {
                drop(r);
                outbox.write_out().map(|()| true)
            }
            Err(SendError::Outbox(_, e)) => Err(*e),
            Err(e) => return Err(e.into()),
        };
        match flushed {
            // One `write` per line: `writeln!` writes the number and the newline apart, and a
            // kill between them would glue this line to the next run's first.
            Ok(true) => log.write_all(format!("{i}\n").as_bytes())?,
            Ok(false) => {}
            Err(e) if mode == "fill" => {
                // The expected write error: report it and stop.
                println!("OUTBOX_ERROR {e}");
                std::process::exit(3);
            }
            Err(e) => return Err(e.into()),
        }
    }
    while outbox.stats().pending > 0 {
        tokio::time::sleep(ms(20)).await;
    }
    sender.shutdown(Duration::from_secs(5)).await;
    println!("OUTBOX_DONE");
    Ok(())
}

fn spawn_child(
    mode: &str,
    dir: &Path,
    url: &str,
    total: usize,
    fsize_kib: Option<u64>,
) -> std::io::Result<std::process::Child> {
    let exe = std::env::current_exe()?;
    let mut cmd = match fsize_kib {
        // A file-size limit makes writes past it fail (EFBIG), with SIGXFSZ ignored: a real
        // I/O error from the kernel, as a full disk gives.
        Some(kib) => {
            let mut c = std::process::Command::new("bash");
            c.arg("-c")
                .arg(format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" \"$@\""))
                .arg(exe);
            c
        }
        None => std::process::Command::new(exe),
    };
    cmd.args(["outbox_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("OUTBOX_CHILD", mode)
        .env("OUTBOX_DIR", dir)
        .env("OUTBOX_URL", url)
        .env("OUTBOX_TOTAL", total.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_error_stops_intake_and_damages_nothing() -> Result<(), BoxError> {
    let dir = tempdir("efbig");
    let server = Server::start(|_, _| Reply::status(503)).await?;
    // 256 KiB per file: the second segment cannot grow past it.
    let child = spawn_child("fill", &dir, &server.url("/in"), 1_000_000, Some(256))?;
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("OUTBOX_ERROR"), "{stdout}");
    let accepted: usize = std::fs::read_to_string(dir.with_extension("progress"))?
        .lines()
        .filter_map(|l| l.parse::<usize>().ok())
        .max()
        .map_or(0, |n| n + 1);
    // Everything accepted is there, undamaged.
    let outbox = Outbox::open(OutboxConfig::new(&dir))?;
    let r = outbox.recovery();
    assert_eq!(r.corrupt_segments, 0, "{r:?}");
    assert!(r.pending >= accepted as u64, "{} < {accepted}", r.pending);
    drop(outbox);
    std::fs::remove_dir_all(&dir)?;
    let _ = std::fs::remove_file(dir.with_extension("progress"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_twenty_times_with_sigkill_and_every_event_arrives() -> Result<(), BoxError> {
    let total: usize = std::env::var("OUTBOX_CRASH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempdir("crash");
    // A receiver that fails one request in five (503 with Retry-After, or a reset), so kills
    // land during retries and backoffs too.
    let delivered: Arc<std::sync::Mutex<HashMap<String, usize>>> = Arc::default();
    let d = delivered.clone();
    let server = Server::start(move |n, seen| match n % 10 {
        3 => Reply::Status(
            http::StatusCode::SERVICE_UNAVAILABLE,
            vec![("retry-after", "0".into())],
            String::new(),
        ),
        7 => Reply::Reset,
        _ => {
            if let Ok(mut d) = d.lock() {
                for id in seen.event_ids() {
                    *d.entry(id).or_insert(0) += 1;
                }
            }
            Reply::ok()
        }
    })
    .await?;
    let received = |_: &Server| delivered.lock().map(|d| d.clone()).unwrap_or_default();
    let url = server.url("/in");
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut kills = 0;
    for round in 0..20u64 {
        let mut child = spawn_child("crash", &dir, &url, total, None)?;
        // Kill points spread over the stream: once the receiver has about round/21 of the
        // events, after a random few milliseconds more (intake, requests, retry backoffs).
        let target = total * (round as usize + 1) / 21;
        let until = Instant::now() + Duration::from_secs(60);
        while received(&server).len() < target && Instant::now() < until {
            if child.try_wait()?.is_some() {
                break;
            }
            tokio::time::sleep(ms(2)).await;
        }
        tokio::time::sleep(ms(next() % 40)).await;
        if child.try_wait()?.is_none() {
            child.kill()?; // SIGKILL
            kills += 1;
        }
        child.wait()?;
        // A kill may tear the last write (cut at the next open), never corrupt a record.
        let report = Outbox::open(OutboxConfig::new(&dir))?.recovery();
        assert_eq!(report.corrupt_segments, 0, "{report:?}");
        eprintln!(
            "round {round}: {} of {total} ids received; the outbox held {} (torn tail cut: {} bytes)",
            received(&server).len(),
            report.pending,
            report.cut_bytes,
        );
    }
    assert!(kills >= 18, "only {kills} kills landed while the child ran");
    // A last run to completion.
    let child = spawn_child("crash", &dir, &url, total, None)?;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let seen = received(&server);
    let missing: Vec<usize> = (0..total)
        .filter(|i| !seen.contains_key(&format!("evt_{i}")))
        .collect();
    assert!(
        missing.is_empty(),
        "{} ids never arrived, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let duplicates: usize = seen.values().map(|&c| c - 1).sum();
    // At a kill, what can be sent again is what was in flight: at most the concurrency
    // limit's batches (default adaptive limit, at most 64 here) of 50 events (a request the
    // receiver answered before the kill but whose settlement was not yet written counts too),
    // plus the one event the producer may send again (killed between `send` and its note).
    let bound = kills * (64 * 50 + 1);
    eprintln!("{kills} kills, {total} events, {duplicates} duplicates (bound {bound})");
    assert!(duplicates <= bound, "{duplicates} duplicates > {bound}");
    std::fs::remove_dir_all(&dir)?;
    let _ = std::fs::remove_file(dir.with_extension("progress"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_the_ssrf_guard_refuses_is_given_up_at_once() -> Result<(), BoxError> {
    let dir = tempdir("ssrf");
    let server = Server::start(|_, _| Reply::ok()).await?;
    // Loopback is not allowed here: every attempt would be refused the same way.
    let sender = Sender::builder()
        .transport_builder(TransportBuilder::new().timeout(Duration::from_secs(5)))
        .outbox(OutboxConfig::new(&dir))
        .endpoint(endpoint("siem", &server.url("/in"), 10, 64)?)
        .build()?;
    let started = Instant::now();
    let report = sender.send(event(1)?).await?.await;
    assert!(started.elapsed() < Duration::from_secs(5), "not retried");
    assert!(
        matches!(
            report.outcome("siem"),
            Some(Outcome::Failed {
                reason: FailureReason::Request(_)
            })
        ),
        "{report:?}"
    );
    let outbox = sender.outbox().ok_or("an outbox")?.clone();
    let dead = outbox.dead_letters(&Filter::all(), 10);
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.contains("SSRF guard"), "{}", dead[0].reason);
    assert_eq!(server.requests(), 0);
    sender.shutdown(Duration::from_secs(5)).await;
    drop((sender, outbox));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_exports_backlog_age_commit_and_dead_letter_metrics() -> Result<(), BoxError> {
    // The sync thread records them: a process-wide recorder (this test binary's only one).
    let recorder: &'static recorder::TestRecorder = Box::leak(Box::default());
    metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
    let dir = tempdir("metrics");
    let sender = builder()?
        .outbox(OutboxConfig::new(&dir))
        .endpoint(endpoint("siem", "http://127.0.0.1:9/in", 10, 64)?)
        .build()?;
    sender.pause("siem", "t")?;
    for i in 0..100 {
        drop(sender.send(event(i)?).await?);
    }
    wait_for("the gauges", Duration::from_secs(10), || {
        recorder.gauge("webhook_outbox_backlog_events{}") == Some(100.0)
    })
    .await?;
    assert!(
        recorder
            .gauge("webhook_outbox_backlog_bytes{}")
            .unwrap_or(0.0)
            > 1_000.0
    );
    assert!(
        recorder
            .gauge("webhook_outbox_oldest_pending_seconds{}")
            .is_some()
    );
    assert_eq!(recorder.gauge("webhook_outbox_dead_letters{}"), Some(0.0));
    assert!(
        !recorder
            .histogram("webhook_outbox_commit_seconds{}")
            .is_empty()
    );
    sender.shutdown(Duration::ZERO).await;
    drop(sender);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A store of its own, in front of the embedded one: counts what the sender asks of it.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn OutboxStore>,
    appends: std::sync::atomic::AtomicUsize,
    settled: std::sync::atomic::AtomicUsize,
    batches: std::sync::atomic::AtomicUsize,
}

impl OutboxStore for Counting {
    fn location(&self) -> String {
        format!("counting({})", self.inner.location())
    }
    fn durability(&self) -> webhook_sender::outbox::Durability {
        self.inner.durability()
    }
    fn append(
        &self,
        endpoints: &[&str],
        event: &Event,
        at: std::time::SystemTime,
    ) -> Result<Appended, OutboxError> {
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.inner.append(endpoints, event, at)
    }
    fn synced(&self, ticket: u64) -> StoreFuture<'_, Result<(), OutboxError>> {
        self.inner.synced(ticket)
    }
    fn sync_now(&self) -> Result<(), OutboxError> {
        self.inner.sync_now()
    }
    fn write_out(&self) -> Result<(), OutboxError> {
        self.inner.write_out()
    }
    fn space(&self) -> &tokio::sync::Notify {
        self.inner.space()
    }
    fn read(
        &self,
        endpoint: &str,
        cursor: &mut ReadCursor,
        max: usize,
        until: u64,
    ) -> Result<ReadOut, OutboxError> {
        self.inner.read(endpoint, cursor, max, until)
    }
    fn batch(&self, endpoint: &str, batch_id: &str, record: BatchRecord<'_>) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.inner.batch(endpoint, batch_id, record);
    }
    fn batch_log(&self, endpoint: &str, batch_id: &str) -> Vec<AttemptInfo> {
        self.inner.batch_log(endpoint, batch_id)
    }
    fn settle(&self, endpoint: &str, how: SettleKind, batch: Option<&str>, seqs: &[u64]) {
        self.settled.fetch_add(seqs.len(), Ordering::Relaxed);
        self.inner.settle(endpoint, how, batch, seqs);
    }
    fn dead_letter(
        &self,
        endpoint: &str,
        event: &Event,
        reason: &str,
        batch: Option<&str>,
        attempts: &[AttemptInfo],
        at: std::time::SystemTime,
    ) -> Result<u64, OutboxError> {
        self.inner
            .dead_letter(endpoint, event, reason, batch, attempts, at)
    }
    fn pending_endpoints(&self) -> Vec<(Arc<str>, u64)> {
        self.inner.pending_endpoints()
    }
    fn first_seq(&self) -> u64 {
        self.inner.first_seq()
    }
    fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }
    fn stats(&self, now: std::time::SystemTime) -> webhook_sender::outbox::OutboxStats {
        self.inner.stats(now)
    }
    fn recovery(&self) -> webhook_sender::outbox::RecoveryReport {
        self.inner.recovery()
    }
    fn dead_letters(
        &self,
        filter: &Filter,
        limit: usize,
    ) -> Vec<webhook_sender::outbox::DeadLetterEntry> {
        self.inner.dead_letters(filter, limit)
    }
    fn dead_letter_entry(
        &self,
        id: u64,
    ) -> Result<Option<webhook_sender::outbox::DeadLetterEntry>, OutboxError> {
        self.inner.dead_letter_entry(id)
    }
    fn remove_dead(&self, ids: &[u64]) -> Result<usize, OutboxError> {
        self.inner.remove_dead(ids)
    }
    fn attempts_of(&self, event_id: &str) -> Vec<(Arc<str>, Box<str>, Vec<AttemptInfo>)> {
        self.inner.attempts_of(event_id)
    }
    fn load_registry(&self) -> Result<Option<webhook_sender::RegistrySnapshot>, OutboxError> {
        self.inner.load_registry()
    }
    fn save_registry(
        &self,
        snapshot: &webhook_sender::RegistrySnapshot,
    ) -> Result<(), OutboxError> {
        self.inner.save_registry(snapshot)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_store_plugs_in_behind_the_trait() -> Result<(), BoxError> {
    let dir = tempdir("store");
    let server = Server::start(|_, _| Reply::ok()).await?;
    let store = Arc::new(Counting {
        inner: Outbox::open(OutboxConfig::new(&dir))?.store(),
        appends: Default::default(),
        settled: Default::default(),
        batches: Default::default(),
    });
    let sender = builder()?
        .outbox_open(Outbox::from_store(store.clone()))
        .endpoint(endpoint("siem", &server.url("/in"), 10, 64)?)
        .build()?;
    let mut receipts = Vec::new();
    for i in 0..100 {
        receipts.push(sender.send(event(i)?).await?);
    }
    for r in receipts {
        assert!(r.await.is_delivered());
    }
    let outbox = sender.outbox().ok_or("an outbox")?.clone();
    assert!(outbox.location().starts_with("counting("));
    wait_for("settled", Duration::from_secs(10), || {
        store.settled.load(Ordering::Relaxed) == 100
    })
    .await?;
    assert_eq!(store.appends.load(Ordering::Relaxed), 100);
    assert!(store.batches.load(Ordering::Relaxed) >= 10);
    assert_eq!(outbox.stats().pending, 0);
    sender.shutdown(Duration::from_secs(5)).await;
    drop((sender, outbox, store));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_oldest_keeps_the_newest_within_the_limit_and_counts_the_rest() -> Result<(), BoxError>
{
    let dir = tempdir("drop-oldest");
    let server = Server::start(|_, _| Reply::ok()).await?;
    let sender = builder()?
        .outbox(
            OutboxConfig::new(&dir)
                .max_bytes(1 << 20)
                .segment_bytes(64 << 10)
                .overflow(OverflowPolicy::DropOldest),
        )
        // A small queue: what does not fit waits on disk, where the limit applies.
        .endpoint(endpoint("siem", &server.url("/in"), 10, 16)?)
        .build()?;
    sender.pause("siem", "t")?;
    let n = 40_000;
    for i in 0..n {
        drop(sender.send(event(i)?).await?);
    }
    let outbox = sender.outbox().ok_or("an outbox")?.clone();
    let stats = outbox.stats();
    assert!(stats.backlog_bytes <= 1 << 20, "{stats:?}");
    assert!(stats.dropped > 0, "{stats:?}");
    assert_eq!(stats.pending + stats.dropped, n as u64, "{stats:?}");
    sender.resume("siem", "t")?;
    let newest = format!("evt_{}", n - 1);
    wait_for("the newest delivered", Duration::from_secs(30), || {
        received(&server).contains_key(&newest)
            && sender
                .status("siem")
                .is_some_and(|s| s.queued == 0 && s.buffered == 0 && s.in_flight == 0)
    })
    .await?;
    let seen = received(&server);
    // The newest event arrived; what arrived is at most what was kept plus what the paused
    // endpoint already held in memory when the oldest were dropped from disk (its batcher
    // buffer, 10,000 by default, its queue of 16 and one read of 1,024): those copies are
    // delivered anyway, as the outbox's documentation says.
    assert!(
        (seen.len() as u64) <= n as u64 - stats.dropped + 10_000 + 16 + 1_024,
        "{} arrived, {} dropped",
        seen.len(),
        stats.dropped
    );
    wait_for("nothing left", Duration::from_secs(30), || {
        outbox.stats().pending == 0
    })
    .await?;
    sender.shutdown(Duration::from_secs(5)).await;
    drop((sender, outbox));
    // Nothing kept was left behind: a reopen finds nothing pending.
    let reopened = Outbox::open(OutboxConfig::new(&dir))?;
    assert_eq!(reopened.recovery().pending, 0, "{:?}", reopened.recovery());
    drop(reopened);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_read_back_through_small_segments_is_delivered_whole() -> Result<(), BoxError> {
    // Small segments roll while the endpoint reads them back: a reader must never read a
    // sealed segment's records while they are being written (a half-written frame looks
    // corrupt, and the rest of the segment was skipped: found here, 4 to 1,232 of 40,000).
    let dir = tempdir("small-segments");
    let server = Server::start(|_, _| Reply::ok()).await?;
    let sender = builder()?
        .outbox(OutboxConfig::new(&dir).segment_bytes(64 << 10))
        .endpoint(endpoint("siem", &server.url("/in"), 10, 16)?)
        .build()?;
    sender.pause("siem", "t")?;
    let n = 40_000;
    for i in 0..n {
        drop(sender.send(event(i)?).await?);
    }
    sender.resume("siem", "t")?;
    let outbox = sender.outbox().ok_or("an outbox")?.clone();
    // (2.4-2.7 s alone here; a liveness bound, generous for a loaded CI machine running the
    // file's other tests beside it: one CI run spent more than 30 s here)
    wait_for("the backlog delivered", Duration::from_secs(90), || {
        outbox.stats().pending == 0
    })
    .await?;
    let seen = received(&server);
    assert_eq!(seen.len(), n);
    assert_eq!(outbox.stats().recovery.corrupt_segments, 0);
    sender.shutdown(Duration::from_secs(5)).await;
    drop((sender, outbox));
    let reopened = Outbox::open(OutboxConfig::new(&dir))?;
    assert_eq!(reopened.recovery().pending, 0, "{:?}", reopened.recovery());
    drop(reopened);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A directory deleted behind the store's back: a read answers an error, it never spins.
#[test]
fn a_read_after_the_directory_vanished_is_an_error_not_a_spin() -> Result<(), BoxError> {
    let dir = tempdir("vanished");
    let outbox = Outbox::open(OutboxConfig::new(&dir))?;
    outbox.append(&["e"], &event(1)?)?;
    outbox.write_out()?;
    std::fs::remove_dir_all(&dir)?;
    let store = outbox.store();
    let mut cursor = ReadCursor::at(store.first_seq());
    let read = store.read("e", &mut cursor, 10, u64::MAX);
    assert!(
        matches!(read, Err(OutboxError::Io { .. })),
        "a typed I/O error: {read:?}"
    );
    Ok(())
}
