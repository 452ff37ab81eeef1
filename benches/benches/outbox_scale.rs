//! The durable outbox at scale (issue 15), printed rather than sampled (each phase writes
//! gigabytes):
//!
//! * **reopen**: an outbox holding 1,000,000 pending 1 KiB events is closed and opened again;
//!   the time to open (recovery: every segment read and checksummed) is printed, with the page
//!   cache warm, and cold when the process may drop the caches (root). Goal ≤ 3 s.
//! * **memory**: a sender with an outbox whose endpoint is paused is sent a 2 GiB backlog of
//!   1 KiB events; the process's resident memory (VmRSS) is printed before and after, against
//!   the bound: the endpoint's queue (capacity × event) plus its batcher buffer, plus 64 MiB.
//!
//! `cargo bench -p webhook-benches --bench outbox_scale`
//! (`OUTBOX_SCALE_EVENTS`, `OUTBOX_SCALE_BACKLOG_MIB` shrink it.)

#![allow(missing_docs)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use webhook_core::{BatcherConfig, Endpoint, Event};
use webhook_sender::outbox::{Outbox, OutboxConfig};
use webhook_sender::{EndpointConfig, OverflowPolicy, Sender};

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("webhook-bench-scale-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn kib_event(i: usize, pad: &str) -> Event {
    Event::builder(format!("evt_{i}"), "policy")
        .json_bytes(format!(r#"{{"i":{i},"pad":"{pad}"}}"#))
        .expect("event")
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn drop_caches() -> bool {
    // Dirty pages first, then the clean ones; only root may.
    let _ = std::process::Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn reopen() {
    let n = env_or("OUTBOX_SCALE_EVENTS", 1_000_000);
    let dir = scratch("reopen");
    let pad = "x".repeat(1_000);
    let started = Instant::now();
    {
        let outbox = Outbox::open(OutboxConfig::new(&dir).max_bytes(8 << 30)).expect("open");
        for i in 0..n {
            outbox
                .append(&["siem"], &kib_event(i, &pad))
                .expect("append");
        }
        outbox.flush().expect("flush");
        let s = outbox.stats();
        println!(
            "reopen: wrote {n} events ({} MiB in {} segments) in {:.1} s",
            s.backlog_bytes >> 20,
            s.segments,
            started.elapsed().as_secs_f64()
        );
    }
    for round in 0..3 {
        let t = Instant::now();
        let outbox = Outbox::open(OutboxConfig::new(&dir).max_bytes(8 << 30)).expect("reopen");
        let took = t.elapsed();
        let r = outbox.recovery();
        assert_eq!(r.pending, n as u64);
        println!(
            "reopen (page cache warm), round {round}: {:.3} s for {} pending events (goal ≤ 3 s)",
            took.as_secs_f64(),
            r.pending
        );
    }
    if drop_caches() {
        let t = Instant::now();
        let outbox = Outbox::open(OutboxConfig::new(&dir).max_bytes(8 << 30)).expect("reopen");
        let took = t.elapsed();
        assert_eq!(outbox.recovery().pending, n as u64);
        println!(
            "reopen (page cache dropped): {:.3} s (goal ≤ 3 s)",
            took.as_secs_f64()
        );
    } else {
        println!("reopen (cold): not measured (dropping the page cache needs root)");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn memory(rt: &tokio::runtime::Runtime) {
    let backlog_mib = env_or("OUTBOX_SCALE_BACKLOG_MIB", 2_048);
    let dir = scratch("memory");
    let pad = "x".repeat(1_000);
    let queue = 10_000usize;
    let buffer_events = 10_000usize;
    let event_bytes = kib_event(0, &pad).len();
    let before = rss_mib();
    let (events, after, stats) = rt.block_on(async {
        let endpoint = Endpoint::builder("http://127.0.0.1:9/in")
            .build()
            .expect("endpoint");
        let sender = Sender::builder()
            .outbox(
                OutboxConfig::new(&dir)
                    .max_bytes((backlog_mib as u64 + 256) << 20)
                    .segment_bytes(64 << 20),
            )
            .endpoint(
                EndpointConfig::builder("siem", endpoint)
                    .paused(true)
                    .queue(queue, OverflowPolicy::Block)
                    .batching(
                        BatcherConfig::builder()
                            .max_events(500)
                            .buffer_limits(buffer_events, 64 << 20)
                            .build()
                            .expect("batcher"),
                    )
                    .build()
                    .expect("config"),
            )
            .build()
            .expect("sender");
        let mut i = 0usize;
        let started = Instant::now();
        loop {
            let s = sender.outbox().expect("outbox").stats();
            if s.backlog_bytes >= (backlog_mib as u64) << 20 {
                break;
            }
            for _ in 0..10_000 {
                drop(sender.send(kib_event(i, &pad)).await.expect("send"));
                i += 1;
            }
        }
        let stats = sender.outbox().expect("outbox").stats();
        println!(
            "memory: {i} events ({} MiB on disk) sent in {:.1} s to a paused endpoint",
            stats.backlog_bytes >> 20,
            started.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss_mib();
        sender.shutdown(Duration::ZERO).await;
        (i, after, stats)
    });
    let bound_mib = ((queue + buffer_events) * event_bytes) as f64 / (1024.0 * 1024.0) + 64.0;
    println!(
        "memory: RSS {before:.1} MiB before, {after:.1} MiB with {events} events ({} MiB) on disk: \
         growth {:.1} MiB; bound = queue {queue} + batcher buffer {buffer_events} events × {event_bytes} B + 64 MiB = {bound_mib:.1} MiB: {}",
        stats.backlog_bytes >> 20,
        after - before,
        if after - before <= bound_mib {
            "met"
        } else {
            "MISSED"
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    memory(&rt);
    reopen();
}
