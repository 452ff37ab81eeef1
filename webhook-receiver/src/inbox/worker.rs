//! The processor: reads stored messages from the log and runs their handlers, with retries,
//! per-key order, dead letters and settlement.
//!
//! One task reads (never more than `max_in_flight` messages held), and one task per held
//! message runs its handlers (at most `concurrency` runs at once) until it settles. Messages
//! are taken from the log in seq order; after a restart the log hands back the attempt count
//! and due time recorded for each message that had failed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderValue, StatusCode};
use tokio::sync::{Semaphore, mpsc};
use webhook_core::{AttemptOutcome, Event, RetryDecision, RetryState, SplitMix64};
use webhook_sender::outbox::{AttemptInfo, BatchRecord, ReadCursor, SettleKind};

use super::{INBOX_ENDPOINT, Shared, envelope, ms};
use crate::context::Context;
use crate::receiver::{Dispatched, Receiver, WeakReceiver};

/// A message taken from the log.
struct Job {
    seq: u64,
    event: Event,
    /// Attempts already made (restored after a restart).
    attempts: u32,
    /// First attempt, ms since the epoch (0: none yet).
    first_ms: u64,
    /// Next attempt due, ms since the epoch (0: now).
    due_ms: u64,
    /// The batch recorded for it (after a failure).
    batch: Option<Box<str>>,
    /// Its ordering key.
    key: Option<String>,
    cx: Option<Context>,
    /// The items decoded at intake (`Vec<T>`), for the first run of a message from memory.
    items: Option<Box<dyn std::any::Any + Send>>,
}

/// Starts the processor of `receiver`'s inbox on the current runtime.
pub(crate) fn spawn<T: Send + 'static>(receiver: &Receiver<T>, shared: Arc<Shared>) {
    let weak = receiver.downgrade();
    tokio::spawn(read_loop(weak, shared));
}

/// How a message's task ended.
enum Done {
    /// Its handlers succeeded: the reader records it (with the others done meanwhile, after
    /// one write of the id journal).
    Succeeded {
        seq: u64,
        batch: Option<Box<str>>,
        key: Option<String>,
    },
    /// Settled by the task (a dead letter) or left for the next open (a close).
    Ended { key: Option<String> },
}

async fn read_loop<T: Send + 'static>(weak: WeakReceiver<T>, shared: Arc<Shared>) {
    let store = shared.store.clone();
    let sem = Arc::new(Semaphore::new(shared.config.concurrency));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let Some(mut fresh_rx) = shared
        .fresh_rx
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    else {
        return;
    };
    let mut cursor = ReadCursor::at(store.first_seq());
    let mut held = 0usize;
    // Keys with a message running or waiting, and the later messages of each.
    let mut busy: HashSet<String> = HashSet::new();
    let mut waiting: HashMap<String, VecDeque<Job>> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let max = shared.config.max_in_flight;
    let admit = |job: Job,
                 held: &mut usize,
                 busy: &mut HashSet<String>,
                 waiting: &mut HashMap<String, VecDeque<Job>>| {
        *held += 1;
        shared.counters.in_flight.fetch_add(1, Ordering::AcqRel);
        match job.key.clone() {
            Some(k) if busy.contains(&k) => waiting.entry(k).or_default().push_back(job),
            Some(k) => {
                busy.insert(k);
                start(&weak, &shared, &sem, &done_tx, job);
            }
            None => start(&weak, &shared, &sem, &done_tx, job),
        }
    };
    loop {
        if shared.closed.load(Ordering::Acquire) || !weak.alive() {
            break;
        }
        // Messages left on disk (no room in memory when they came, a requeue, a restart).
        let (spilled, until) = {
            let mut feed = shared
                .feed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if feed.restart {
                feed.restart = false;
                cursor = ReadCursor::at(feed.from);
            }
            (feed.spilled, feed.until)
        };
        if spilled {
            while held < max {
                let room = (max - held).min(512);
                let out = match store.read(INBOX_ENDPOINT, &mut cursor, room, until) {
                    Ok(out) => out,
                    Err(e) => {
                        tracing::warn!(error = %e, "inbox: reading the log failed; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                };
                let n = out.events.len() + out.batches.len();
                let mut jobs: Vec<Job> = out
                    .events
                    .into_iter()
                    .map(|(seq, event)| Job::stored(seq, event))
                    .collect();
                for b in out.batches {
                    for (seq, event) in b.events {
                        let mut job = Job::stored(seq, event);
                        job.attempts = b.attempts;
                        job.first_ms = b.first_ms;
                        job.due_ms = b.due_ms;
                        job.batch = Some(b.batch_id.clone());
                        jobs.push(job);
                    }
                }
                jobs.sort_by_key(|j| j.seq);
                for mut job in jobs {
                    match envelope::decode(&job.event, job.attempts + 1) {
                        Ok(cx) => {
                            if let Some(order_by) = &shared.config.order_by {
                                job.key = order_by(&cx);
                            }
                            job.cx = Some(cx);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "inbox: a stored message is unreadable");
                        }
                    }
                    admit(job, &mut held, &mut busy, &mut waiting);
                }
                if out.at_end || n == 0 || cursor.seq > until {
                    break;
                }
            }
            // Caught up with the range: what is stored from now on comes from memory.
            let mut feed = shared
                .feed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !feed.restart && cursor.seq > feed.until {
                feed.spilled = false;
            }
        }
        tokio::select! {
            fresh = fresh_rx.recv(), if held < max => {
                let mut next = fresh;
                while let Some(f) = next {
                    let mut job = Job::stored(f.seq, f.event);
                    if let Some(order_by) = &shared.config.order_by {
                        job.key = order_by(&f.cx);
                    }
                    job.cx = Some(f.cx);
                    job.items = Some(f.items);
                    admit(job, &mut held, &mut busy, &mut waiting);
                    next = if held < max { fresh_rx.try_recv().ok() } else { None };
                }
            }
            () = shared.wake.notified() => {}
            done = done_rx.recv() => {
                let mut next = done;
                let mut succeeded: Vec<(u64, Option<Box<str>>)> = Vec::new();
                let mut freed: Vec<Option<String>> = Vec::new();
                while let Some(d) = next {
                    match d {
                        Done::Succeeded { seq, batch, key } => {
                            succeeded.push((seq, batch));
                            freed.push(key);
                        }
                        Done::Ended { key } => freed.push(key),
                    }
                    next = done_rx.try_recv().ok();
                }
                if !succeeded.is_empty() {
                    // The ids are on disk before their messages can leave the log.
                    shared.write_ids();
                    let plain: Vec<u64> = succeeded
                        .iter()
                        .filter(|(_, b)| b.is_none())
                        .map(|(q, _)| *q)
                        .collect();
                    if !plain.is_empty() {
                        store.settle(INBOX_ENDPOINT, SettleKind::Delivered, None, &plain);
                    }
                    for (seq, batch) in succeeded.iter().filter(|(_, b)| b.is_some()) {
                        store.settle(INBOX_ENDPOINT, SettleKind::Delivered, batch.as_deref(), &[*seq]);
                    }
                    let n = succeeded.len() as u64;
                    shared.counters.succeeded.fetch_add(n, Ordering::Relaxed);
                    metrics::counter!("webhook_inbox_succeeded_total").increment(n);
                }
                for key in freed {
                    held -= 1;
                    shared.counters.in_flight.fetch_sub(1, Ordering::AcqRel);
                    if let Some(k) = key {
                        match waiting.get_mut(&k).and_then(VecDeque::pop_front) {
                            Some(job) => start(&weak, &shared, &sem, &done_tx, job),
                            None => {
                                waiting.remove(&k);
                                busy.remove(&k);
                            }
                        }
                    }
                }
                shared.settled.notify_waiters();
            }
            _ = tick.tick() => {
                shared.write_ids();
                let s = store.stats(SystemTime::now());
                metrics::gauge!("webhook_inbox_depth").set(s.pending as f64);
                metrics::gauge!("webhook_inbox_oldest_age_seconds")
                    .set(s.oldest_pending_age.map_or(0.0, |d| d.as_secs_f64()));
                metrics::gauge!("webhook_inbox_dead_letters").set(s.dead_letters as f64);
            }
        }
    }
    // Closing: messages parked behind their key never started; tasks that end from now on
    // find the channel closed and account for themselves; successes already reported are
    // recorded.
    let parked: usize = waiting.values().map(VecDeque::len).sum();
    shared
        .counters
        .in_flight
        .fetch_sub(parked as u64, Ordering::AcqRel);
    done_rx.close();
    shared.write_ids();
    while let Ok(d) = done_rx.try_recv() {
        if let Done::Succeeded { seq, batch, .. } = d {
            store.settle(
                INBOX_ENDPOINT,
                SettleKind::Delivered,
                batch.as_deref(),
                &[seq],
            );
            shared.counters.succeeded.fetch_add(1, Ordering::Relaxed);
        }
        shared.counters.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
    shared.settled.notify_waiters();
    shared.reader_done.store(true, Ordering::Release);
}

impl Job {
    fn stored(seq: u64, event: Event) -> Self {
        Self {
            seq,
            event,
            attempts: 0,
            first_ms: 0,
            due_ms: 0,
            batch: None,
            key: None,
            cx: None,
            items: None,
        }
    }
}

fn start<T: Send + 'static>(
    weak: &WeakReceiver<T>,
    shared: &Arc<Shared>,
    sem: &Arc<Semaphore>,
    done: &mpsc::UnboundedSender<Done>,
    job: Job,
) {
    let (weak, shared, sem, done) = (weak.clone(), shared.clone(), sem.clone(), done.clone());
    tokio::spawn(async move {
        let key = job.key.clone();
        let outcome = match process(&weak, &shared, &sem, job).await {
            Some((seq, batch)) => Done::Succeeded { seq, batch, key },
            None => Done::Ended { key },
        };
        if done.send(outcome).is_err() {
            // The reader is gone (a close): nothing to record; the message runs again after
            // the next open.
            shared.counters.in_flight.fetch_sub(1, Ordering::AcqRel);
            shared.settled.notify_waiters();
        }
    });
}

fn wall(ms_since_epoch: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms_since_epoch)
}

/// Runs one message's handlers until they succeed (`Some`: its seq and recorded batch, for
/// the reader to settle), it is dead-lettered, or the inbox closes (`None`).
async fn process<T: Send + 'static>(
    weak: &WeakReceiver<T>,
    shared: &Shared,
    sem: &Semaphore,
    job: Job,
) -> Option<(u64, Option<Box<str>>)> {
    let store = &*shared.store;
    let Job {
        seq,
        event,
        mut attempts,
        first_ms,
        due_ms,
        batch,
        cx,
        mut items,
        ..
    } = job;
    let batch_id: Box<str> = batch
        .clone()
        .unwrap_or_else(|| format!("inbox-{seq}").into_boxed_str());
    let mut recorded = batch.is_some();
    let mut log: Vec<AttemptInfo> = if recorded {
        store.batch_log(INBOX_ENDPOINT, &batch_id)
    } else {
        Vec::new()
    };
    let Some(cx) = cx else {
        give_up(
            shared,
            seq,
            &event,
            &batch_id,
            recorded,
            &log,
            "the stored message is unreadable",
        );
        return None;
    };
    // The first attempt's time, on this process's monotonic clock.
    let now_wall = SystemTime::now();
    let mut first = if first_ms == 0 {
        None
    } else {
        let ago = now_wall.duration_since(wall(first_ms)).unwrap_or_default();
        Some(Instant::now().checked_sub(ago).unwrap_or_else(Instant::now))
    };
    let mut due = if due_ms > 0 {
        wall(due_ms).duration_since(now_wall).unwrap_or_default()
    } else {
        Duration::ZERO
    };
    let mut rng = SplitMix64::new(seq ^ (ms(now_wall) << 20));
    let mut cancel = shared.cancel.subscribe();
    loop {
        if !due.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(due) => {}
                _ = cancel.wait_for(|c| *c) => return None,
            }
        }
        if shared.closed.load(Ordering::Acquire) {
            return None;
        }
        let _permit = tokio::select! {
            p = sem.acquire() => match p {
                Ok(p) => p,
                Err(_) => return None,
            },
            _ = cancel.wait_for(|c| *c) => return None,
        };
        let receiver = weak.upgrade()?;
        if shared.closed.load(Ordering::Acquire) {
            return None;
        }
        shared.counters.running.fetch_add(1, Ordering::AcqRel);
        attempts += 1;
        let started = Instant::now();
        let started_ms = ms(SystemTime::now());
        let first_at = *first.get_or_insert(started);
        let first_ms = if first_ms == 0 { started_ms } else { first_ms };
        let run_cx = cx.with_attempt(attempts);
        let decoded = match items.take().map(|b| b.downcast::<Vec<T>>()) {
            Some(Ok(items)) => Ok(*items),
            _ => receiver.decode_items(&run_cx),
        };
        let result = match decoded {
            Ok(items) => {
                tokio::select! {
                    r = receiver.dispatch(items, &run_cx) => Some(r),
                    _ = cancel.wait_for(|c| *c) => None,
                }
            }
            Err(e) => Some(Dispatched::Failed {
                index: 0,
                reason: format!("the stored body no longer decodes: {e}"),
            }),
        };
        drop(receiver);
        let Some(result) = result else {
            // Cut short by a close: left unsettled, it runs again after the next open.
            shared.counters.running.fetch_sub(1, Ordering::AcqRel);
            return None;
        };
        let latency = started.elapsed();
        shared.counters.running.fetch_sub(1, Ordering::AcqRel);
        metrics::histogram!("webhook_inbox_handler_seconds").record(latency.as_secs_f64());
        let (status, retry_after, reason) = match result {
            Dispatched::Done(_) => {
                return Some((seq, recorded.then_some(batch_id)));
            }
            Dispatched::Failed { index, reason } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                format!("item {index}: {reason}"),
            ),
            Dispatched::Overloaded { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                retry_after,
                "overloaded".to_owned(),
            ),
        };
        let info = AttemptInfo {
            at_ms: ms(SystemTime::now()),
            status: Some(status.as_u16()),
            latency,
            error: reason.clone(),
        };
        log.push(info.clone());
        let mut headers = HeaderMap::new();
        if let Some(after) = retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        let state = RetryState::resumed(first_at, attempts);
        let outcome = AttemptOutcome::Response {
            status,
            headers: &headers,
        };
        let decision = shared.config.retry.decide(
            &state,
            &outcome,
            Instant::now(),
            SystemTime::now(),
            &mut rng,
        );
        match decision {
            RetryDecision::RetryAt { delay, .. } => {
                if !recorded {
                    let seqs = [seq];
                    let ids = [Box::<str>::from(event.id())];
                    store.batch(
                        INBOX_ENDPOINT,
                        &batch_id,
                        BatchRecord::formed(&seqs, &ids, first_ms),
                    );
                    recorded = true;
                }
                let due_at = ms(SystemTime::now() + delay);
                store.batch(
                    INBOX_ENDPOINT,
                    &batch_id,
                    BatchRecord::retried(attempts, due_at, info),
                );
                shared.counters.retries.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("webhook_inbox_retries_total").increment(1);
                tracing::debug!(message = event.id(), attempts, ?delay, %reason, "inbox: handler failed; retrying");
                due = delay;
            }
            RetryDecision::GiveUp(why) => {
                let text = format!("{reason} (gave up: {why:?} after {attempts} attempts)");
                give_up(shared, seq, &event, &batch_id, recorded, &log, &text);
                return None;
            }
            _ => {
                // `Delivered` cannot follow a failure; treat anything else as a give-up.
                give_up(shared, seq, &event, &batch_id, recorded, &log, &reason);
                return None;
            }
        }
    }
}

/// Keeps the message as a dead letter and settles it.
fn give_up(
    shared: &Shared,
    seq: u64,
    event: &Event,
    batch_id: &str,
    recorded: bool,
    log: &[AttemptInfo],
    reason: &str,
) {
    let store = &*shared.store;
    shared.write_ids();
    match store.dead_letter(
        INBOX_ENDPOINT,
        event,
        reason,
        Some(batch_id),
        log,
        SystemTime::now(),
    ) {
        Ok(_) => {
            store.settle(
                INBOX_ENDPOINT,
                SettleKind::DeadLettered,
                recorded.then_some(batch_id),
                &[seq],
            );
            shared
                .counters
                .dead_lettered
                .fetch_add(1, Ordering::Relaxed);
            metrics::counter!("webhook_inbox_dead_letters_total").increment(1);
            tracing::warn!(message = event.id(), reason, "inbox: message dead-lettered");
        }
        Err(e) => {
            // Left unsettled: it runs again after the next open.
            tracing::error!(error = %e, message = event.id(), "inbox: writing a dead letter failed");
        }
    }
}
