//! End-to-end load checks that criterion cannot express (a plain binary, `harness = false`):
//! the peak memory of the sender while its receiver is down for 10 s under a bounded queue,
//! the maximum sustained throughput, and the enqueue-to-delivered latency percentiles at half
//! of that maximum, with the latency setting (250-event batches, 8 in flight, 2 ms linger). Sender and
//! receiver share one 2-worker tokio runtime on loopback, as in `e2e.rs`.
//!
//! `cargo bench -p webhook-benches --bench e2e_load` (`E2E_OUTAGE_SECS`, default 10,
//! `E2E_LATENCY_RATE`, default half the measured maximum, `E2E_LATENCY_MAX_EVENTS`, default
//! 250, and `E2E_LATENCY_IN_FLIGHT`, default 8, override the phases; `E2E_SKIP_MEMORY` and
//! `E2E_SKIP_LATENCY` skip a phase).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use webhook_payloads::sysdig::SysdigEvent;
use webhook_receiver::Server;
use webhook_sender::{OverflowPolicy, Sender};

#[path = "support/e2e.rs"]
mod support;

/// mimalloc, as in `e2e.rs` (`--features system-alloc`: glibc's).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use support::{Tuning, policy_events, produce, sdk_sender, serialize, typed_receiver};

const MIB: f64 = (1 << 20) as f64;

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("status field")
}

/// Resets the peak RSS (`VmHWM`) to the current RSS (Linux `clear_refs` value 5).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Offers `rate` events/s for `duration` from one task in 1 ms ticks, without waiting for
/// receipts (they resolve on their own; dropping a receipt does not cancel delivery).
async fn offer(
    sender: &Sender,
    typed: &[SysdigEvent<'static>],
    first: usize,
    rate: usize,
    duration: Duration,
) -> usize {
    let per_tick = rate / 1000;
    let ticks = duration.as_millis() as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n = first;
    for _ in 0..ticks {
        tick.tick().await;
        for _ in 0..per_tick {
            drop(sender.try_send(serialize(n, typed)).expect("try_send"));
            n += 1;
        }
    }
    n - first
}

/// Peak memory with the receiver down for `outage` while events keep arriving.
fn memory_phase(rt: &tokio::runtime::Runtime, typed: &Arc<Vec<SysdigEvent<'static>>>) {
    let outage = Duration::from_secs(env_usize("E2E_OUTAGE_SECS").unwrap_or(10) as u64);
    let rate = 50_000;
    let event_size = serialize(0, typed).len();
    let queue = env_usize("E2E_QUEUE").unwrap_or(20_000);
    let buffer_events = env_usize("E2E_BUFFER_EVENTS").unwrap_or(20_000);
    let tuning = Tuning {
        queue,
        overflow: OverflowPolicy::DropOldest,
        buffer_events,
        buffer_bytes: (buffer_events * 1258).max(4 << 20),
        patient: true,
        ..Tuning::throughput()
    };
    // What the sender may hold: the intake queue, one drained chunk in the driver, and the
    // batcher's buffer (which also bounds the batches out for delivery or awaiting a retry).
    let bound = tuning.queue * event_size + 1024 * event_size + tuning.buffer_bytes;

    let received = Arc::new(AtomicU64::new(0));
    let (addr, mut stop) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = Server::new(typed_receiver(received.clone()))
            .shutdown_timeout(Duration::from_secs(2))
            .serve(listener, async {
                let _ = rx.await;
            });
        (addr, Some((tx, tokio::spawn(server))))
    });
    let url = format!("http://{addr}/sysdig");
    let sender = {
        let _rt = rt.enter();
        sdk_sender(&url, tuning)
    };

    let report = rt.block_on(async {
        // Steady state first (pools, buffers and the allocator warm), then the outage.
        let mut offered = offer(&sender, typed, 0, rate, Duration::from_secs(2)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let baseline = proc_status_bytes("VmRSS");
        let reset = reset_peak_rss();
        if let Some((tx, server)) = stop.take() {
            let _ = tx.send(());
            let _ = server.await.expect("server task");
        }
        let down_at = Instant::now();
        offered += offer(&sender, typed, offered, rate, outage).await;
        let during = sender.endpoint_health("bench").expect("endpoint");
        let peak_down = proc_status_bytes("VmHWM");
        // Back up on the same address.
        let listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
        let down_for = down_at.elapsed();
        tokio::spawn(
            Server::new(typed_receiver(received.clone())).serve(listener, std::future::pending()),
        );
        offered += offer(&sender, typed, offered, rate, Duration::from_secs(3)).await;
        let shutdown = sender.shutdown(Duration::from_secs(60)).await;
        let peak = proc_status_bytes("VmHWM");
        let c = sender.endpoint_health("bench").expect("endpoint").counters;
        (
            offered, baseline, reset, peak_down, peak, during, down_for, shutdown, c,
        )
    });
    let (offered, baseline, reset, peak_down, peak, during, down_for, shutdown, c) = report;
    assert!(reset, "VmHWM could not be reset (/proc/self/clear_refs)");
    assert!(shutdown.is_clean(), "everything kept was delivered");
    assert_eq!(
        c.delivered + c.dropped + c.failed,
        offered as u64,
        "every event is delivered, dropped (counted) or failed"
    );
    assert_eq!(c.failed, 0);
    assert!(received.load(Ordering::Relaxed) >= c.delivered);
    let grown = peak_down.saturating_sub(baseline);
    let limit = bound as u64 + (32 << 20);
    println!(
        "memory, receiver down {:.1} s at {rate} events/s offered ({event_size} B events, queue \
         {} events DropOldest, batcher buffer {} events / {} MiB): RSS before {:.1} MiB, peak \
         while down {:.1} MiB, growth {:.1} MiB; sender bound {:.1} MiB + 32 MiB = {:.1} MiB -> {}",
        down_for.as_secs_f64(),
        tuning.queue,
        tuning.buffer_events,
        tuning.buffer_bytes >> 20,
        baseline as f64 / MIB,
        peak_down as f64 / MIB,
        grown as f64 / MIB,
        bound as f64 / MIB,
        limit as f64 / MIB,
        if grown <= limit { "OK" } else { "EXCEEDED" }
    );
    println!(
        "  peak including the 3 s recovery (receiver back: its request bodies and typed events \
         count too, same process): {:.1} MiB, growth {:.1} MiB",
        peak as f64 / MIB,
        peak.saturating_sub(baseline) as f64 / MIB
    );
    println!(
        "  at the end of the outage: queued {}, buffered {}, in flight {}, retrying {}; totals: \
         offered {offered}, delivered {}, dropped {} (counted), failed {}",
        during.queued,
        during.buffered,
        during.in_flight,
        during.retrying,
        c.delivered,
        c.dropped,
        c.failed
    );
}

/// Maximum sustained throughput, then the latency percentiles at half of it, both with the
/// latency setting (250-event batches; the throughput setting's maximum is `e2e.rs`'s).
fn latency_phase(rt: &tokio::runtime::Runtime, typed: &Arc<Vec<SysdigEvent<'static>>>) {
    let received = Arc::new(AtomicU64::new(0));
    let tuning = Tuning::latency();
    let sender = rt.block_on(async {
        let url = support::start_receiver(received.clone()).await;
        sdk_sender(&url, tuning)
    });
    const ROUND: usize = 40_000;
    let mut best = 0.0f64;
    for _ in 0..4 {
        let start = Instant::now();
        rt.block_on(produce(&sender, typed, ROUND));
        best = best.max(ROUND as f64 / start.elapsed().as_secs_f64());
    }
    println!(
        "max sustained with {}-event batches, {} in flight (best of 4 rounds of {ROUND}): {best:.0} events/s",
        tuning.max_events, tuning.in_flight
    );

    let rate = env_usize("E2E_LATENCY_RATE").unwrap_or((best / 2.0) as usize / 1000 * 1000);
    let seconds = 3;
    let mut samples = rt.block_on(async {
        let per_tick = rate / 1000;
        let mut waiters = Vec::with_capacity(seconds * 1000);
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut n = 0;
        for _ in 0..seconds * 1000 {
            tick.tick().await;
            let mut pending = Vec::with_capacity(per_tick);
            for _ in 0..per_tick {
                let enqueued = Instant::now();
                let receipt = sender.send(serialize(n, typed)).await.expect("send");
                pending.push((enqueued, receipt));
                n += 1;
            }
            // One waiter per tick, awaiting in order: a receipt is timed when it and every
            // earlier one of its tick resolved, so the figure can only be pessimistic.
            waiters.push(tokio::spawn(async move {
                let mut us = Vec::with_capacity(pending.len());
                for (enqueued, receipt) in pending {
                    assert!(receipt.await.is_delivered());
                    us.push(enqueued.elapsed().as_micros() as u64);
                }
                us
            }));
        }
        let mut all = Vec::with_capacity(n);
        for w in waiters {
            all.extend(w.await.expect("waiter"));
        }
        all
    });
    samples.sort_unstable();
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    let goal = tuning.linger.as_micros() as u64 + 5_000;
    println!(
        "latency at {rate} events/s offered for {seconds} s (linger {:?}, {} events): p50 {} us, \
         p99 {} us, p99.9 {} us, max {} us; p99 <= linger + 5 ms ({goal} us): {}",
        tuning.linger,
        samples.len(),
        p(0.5),
        p(0.99),
        p(0.999),
        p(1.0),
        if p(0.99) <= goal { "OK" } else { "EXCEEDED" }
    );
    assert!(
        rt.block_on(sender.shutdown(Duration::from_secs(5)))
            .is_clean()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs nothing here.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let typed = Arc::new(policy_events());
    println!(
        "event size: {} bytes; 2 worker threads shared by sender and receiver",
        serialize(0, &typed).len()
    );
    if std::env::var_os("E2E_SKIP_MEMORY").is_none() {
        memory_phase(&rt, &typed);
    }
    if std::env::var_os("E2E_SKIP_LATENCY").is_none() {
        latency_phase(&rt, &typed);
    }
}
