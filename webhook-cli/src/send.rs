//! `webhook send`: replay a file of events at an endpoint through the SDK's delivery engine
//! (`webhook_sender::Sender`: batching, signing, retries), with a progress bar on a terminal,
//! a summary, a dead-letter file and an exit code that says whether everything arrived.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use webhook_core::{BatcherConfig, Event, RetryPolicy, TimestampFormat};
use webhook_sender::{
    AttemptError, Concurrency, Counters, EndpointConfig, FailureReason, Outcome, Receipt,
    RegistrySnapshot, Sender,
};

use crate::cli::SendArgs;
use crate::error::{CliError, Exit, chain};
use crate::events;
use crate::style::Style;
use crate::target;

/// The endpoint's name inside the sender when the flags (or a single `WEBHOOK` mapping)
/// describe one endpoint.
const NAME: &str = "endpoint";

/// Builds the retry policy from the flags: exponential with full jitter, `retries` after the
/// first attempt; the wait after a 429/timeout is the first delay (not the engine's 60 s
/// default, which suits a daemon more than a terminal).
pub(crate) fn retry_policy(args: &SendArgs) -> Result<RetryPolicy, CliError> {
    RetryPolicy::builder()
        .exponential(
            args.retry_delay,
            2.0,
            args.retry_max_delay.max(args.retry_delay),
            true,
        )
        .max_attempts(args.retries.saturating_add(1))
        .min_wait_after_throttle(args.retry_delay)
        .retry_after(true, args.retry_max_delay.max(args.retry_delay))
        .build()
        .map_err(|e| CliError::config(format!("retry settings: {e}")))
}

fn reason_text(reason: &FailureReason, interrupted: bool) -> String {
    match reason {
        FailureReason::Shutdown if interrupted => {
            "interrupted (Ctrl-C) before it was delivered".to_owned()
        }
        other => other.to_string(),
    }
}

fn hint_for(failures: &[FailureReason]) -> Option<&'static str> {
    failures.iter().find_map(|r| match r {
        FailureReason::RetriesExhausted {
            last: AttemptError::Connect,
            ..
        } => Some(
            "no connection could be made: is the receiver running at that address? \
             (private/loopback addresses also need --allow-private)",
        ),
        FailureReason::RetriesExhausted {
            last: AttemptError::Status(s),
            ..
        } if s.as_u16() == 401 || s.as_u16() == 403 => {
            Some("the endpoint refused the credentials: check --auth, --secret and --scheme")
        }
        FailureReason::Rejected { status } if status.as_u16() == 401 || status.as_u16() == 403 => {
            Some("the endpoint refused the credentials: check --auth, --secret and --scheme")
        }
        FailureReason::Rejected { status } if status.as_u16() == 413 => {
            Some("the endpoint refused the body size: lower --max-events or --max-bytes")
        }
        FailureReason::Oversize => Some("an event is larger than --max-bytes: raise it"),
        _ => None,
    })
}

/// A bar over `total` events, or a counter when the total is not known (stdin).
fn progress(total: Option<u64>, enabled: bool) -> Option<ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} done · {msg}"
    } else {
        "{spinner} [{elapsed_precise}] {pos} done · {msg}"
    };
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// Events of a file, parsed (and checked) before anything is sent, or of stdin as they
/// arrive (a pipe may never end).
enum Source {
    File(std::vec::IntoIter<Event>),
    Stream(tokio::sync::mpsc::Receiver<Result<Event, CliError>>),
}

/// Events waiting between the stdin reader and the sender.
const STREAM_BUFFER: usize = 1024;

/// What the receipts said.
#[derive(Default)]
struct Tally {
    delivered: usize,
    /// Selected by no endpoint (outside every integration's channels).
    filtered: usize,
    attempts_max: u32,
    failed: Vec<(Event, FailureReason)>,
}

/// Awaits receipts as they come (in sending order), so that a stream of any length keeps only
/// the events still on their way and the failed ones.
fn collect_receipts(
    mut receipts: tokio::sync::mpsc::UnboundedReceiver<(Event, Receipt)>,
) -> tokio::task::JoinHandle<Tally> {
    tokio::spawn(async move {
        let mut t = Tally::default();
        while let Some((ev, receipt)) = receipts.recv().await {
            let report = receipt.await;
            // Delivered when every endpoint that selected it delivered it.
            let mut failure = None;
            let mut delivered_somewhere = false;
            for o in report.outcomes() {
                match &o.outcome {
                    Outcome::Delivered { attempts, .. } => {
                        delivered_somewhere = true;
                        t.attempts_max = t.attempts_max.max(*attempts);
                    }
                    Outcome::Failed { reason } => {
                        failure.get_or_insert_with(|| reason.clone());
                    }
                    Outcome::Dropped => {
                        failure.get_or_insert(FailureReason::Shutdown);
                    }
                    _ => {
                        failure.get_or_insert(FailureReason::SenderStopped);
                    }
                }
            }
            match failure {
                Some(reason) => t.failed.push((ev, reason)),
                None if delivered_somewhere => t.delivered += 1,
                // No endpoint's subscription selected it.
                None => t.filtered += 1,
            }
        }
        t
    })
}

/// The sender of one run and what to say about it.
struct Plan {
    sender: Sender,
    /// The endpoints' names inside the sender.
    names: Vec<String>,
    /// Rewrite Sysdig `timestamp`s at this resolution (`None`: as read).
    timestamp_format: Option<TimestampFormat>,
    /// `<url> (auth: ...)`, or the list of endpoints.
    destination: String,
}

fn batching(args: &SendArgs) -> Result<BatcherConfig, CliError> {
    BatcherConfig::builder()
        .max_events(args.max_events)
        .max_bytes(args.max_bytes)
        .linger(args.linger)
        .build()
        .map_err(|e| CliError::config(format!("batching: {e}")))
}

/// One endpoint from the flags, on top of a single `WEBHOOK` configuration if any; with a
/// one-integration `local_forwarding` file, that integration's channels as event sets.
fn single_plan(args: &SendArgs, sysdig: Option<RegistrySnapshot>) -> Result<Plan, CliError> {
    let target = target::build(&args.target)?;
    let mut endpoint = EndpointConfig::builder(NAME, target.endpoint.clone())
        .batching(batching(args)?)
        .retry(retry_policy(args)?)
        .concurrency(Concurrency::Fixed(args.concurrency.max(1)))
        .transport(target.transport.clone());
    if let Some(tokens) = target.tokens.clone() {
        endpoint = endpoint.token_provider(tokens);
    }
    let mut sender = Sender::builder();
    if let Some(snapshot) = sysdig {
        if let Some(spec) = snapshot.endpoints.first() {
            endpoint = endpoint.subscription(spec.subscription());
        }
        for set in snapshot.event_sets {
            sender = sender.event_set(set);
        }
    }
    let endpoint = endpoint.build().map_err(|e| CliError::config(chain(&e)))?;
    let sender = sender
        .endpoint(endpoint)
        .build()
        .map_err(|e| CliError::config(chain(&e)))?;
    Ok(Plan {
        sender,
        names: vec![NAME.to_owned()],
        timestamp_format: target.timestamp_format,
        destination: format!("{} (auth: {})", target.url, target.auth_label),
    })
}

/// Every endpoint of a registry snapshot or of a `local_forwarding` section with several
/// `WEBHOOK` integrations. The flags that describe one endpoint are refused; the transport,
/// batching, retry and concurrency flags apply to every endpoint (a snapshot's own batching,
/// retry and concurrency win).
fn registry_plan(args: &SendArgs, snapshot: RegistrySnapshot) -> Result<Plan, CliError> {
    let t = &args.target;
    target::refuse_one_endpoint_flags(t, snapshot.endpoints.len())?;
    // The events are read (and their timestamps rewritten) once for every endpoint.
    let timestamp_format = match t.timestamp_format {
        Some(arg) => Some(target::payload_ts(arg)),
        None => {
            let mut formats: Vec<Option<TimestampFormat>> = Vec::new();
            for spec in &snapshot.endpoints {
                if !formats.contains(&spec.timestamp_format) {
                    formats.push(spec.timestamp_format);
                }
            }
            if formats.len() > 1 {
                return Err(CliError::config(
                    "the endpoints of the config file ask for different timestamp formats; \
                     `send` rewrites the events once for all of them",
                )
                .hint("pass --timestamp-format, or send to each integration separately"));
            }
            formats.into_iter().flatten().next()
        }
    };
    let batching = batching(args)?;
    let retry = retry_policy(args)?;
    let names: Vec<String> = snapshot.endpoints.iter().map(|e| e.name.clone()).collect();
    let destination = target::describe(&snapshot);
    let sender = target::registry_sender(t, snapshot, |spec, mut b| {
        if spec.batching.is_none() {
            b = b.batching(batching.clone());
        }
        if spec.retry.is_none() {
            b = b.retry(retry.clone());
        }
        if spec.concurrency.is_none() {
            b = b.concurrency(Concurrency::Fixed(args.concurrency.max(1)));
        }
        b
    })?;
    Ok(Plan {
        sender,
        names,
        timestamp_format,
        destination,
    })
}

fn plan(args: &SendArgs) -> Result<Plan, CliError> {
    let file = match &args.target.config {
        Some(path) => target::read_config_file(path)?,
        None => target::ConfigFile::Single,
    };
    match file {
        target::ConfigFile::Single => single_plan(args, None),
        target::ConfigFile::Sysdig(s) if s.endpoints.len() == 1 => single_plan(args, Some(s)),
        target::ConfigFile::Sysdig(s) | target::ConfigFile::Registry(s) => registry_plan(args, s),
    }
}

/// The counters of every endpoint, added up, and the batches waiting for a retry.
fn totals(sender: &Sender, names: &[String]) -> Option<(Counters, usize)> {
    let mut all: Option<(Counters, usize)> = None;
    for h in names.iter().filter_map(|n| sender.endpoint_health(n)) {
        let (c, retrying) = all.get_or_insert((Counters::default(), 0));
        let e = h.counters;
        c.delivered += e.delivered;
        c.failed += e.failed;
        c.dropped += e.dropped;
        c.requests += e.requests;
        c.retries += e.retries;
        c.batches_delivered += e.batches_delivered;
        *retrying += h.retrying;
    }
    all
}

/// Runs `send`.
pub(crate) async fn run(args: SendArgs, no_color: bool) -> Result<Exit, CliError> {
    let Plan {
        sender,
        names,
        timestamp_format,
        destination,
    } = plan(&args)?;
    let streaming = args.file.as_os_str() == "-";
    let (mut source, known_total) = if streaming {
        let rx = events::stream(std::io::stdin(), timestamp_format, STREAM_BUFFER);
        (Source::Stream(rx), None)
    } else {
        let input = events::read_input(&args.file)?;
        let all = events::parse(&input, timestamp_format)?;
        let n = all.len();
        (Source::File(all.into_iter()), Some(n))
    };

    let interrupt = crate::signal::interrupt()
        .map_err(|e| CliError::io("cannot install the Ctrl-C handler", &e))?;
    let err_style = Style::stderr(no_color);
    let what = match known_total {
        Some(n) => format!("{n} event(s) from {}", args.file.display()),
        None => "events from stdin as they arrive".to_owned(),
    };
    eprintln!(
        "{} {what} to {destination} (up to {} per request)",
        err_style.bold("sending"),
        args.max_events
    );

    // Ctrl-C: stop reading, let the engine deliver for --drain, then fail the rest.
    let interrupted = Arc::new(AtomicBool::new(false));
    let stop_reading = Arc::new(tokio::sync::Notify::new());
    let ctrl_c = {
        let (interrupted, stop_reading) = (Arc::clone(&interrupted), Arc::clone(&stop_reading));
        let sender = sender.clone();
        let drain = args.drain;
        tokio::spawn(async move {
            interrupt.await;
            interrupted.store(true, Ordering::SeqCst);
            stop_reading.notify_one();
            eprintln!("interrupted: delivering what is in flight for up to {drain:?}...");
            let _ = sender.shutdown(drain).await;
        })
    };

    let read = Arc::new(AtomicU64::new(0));
    let bar = progress(known_total.map(|n| n as u64), !args.no_progress);
    let ticker = bar.as_ref().map(|bar| {
        let (bar, sender, read) = (bar.clone(), sender.clone(), Arc::clone(&read));
        let names = names.clone();
        let started = Instant::now();
        tokio::spawn(async move {
            loop {
                if let Some((c, retrying)) = totals(&sender, &names) {
                    let secs = started.elapsed().as_secs_f64().max(0.001);
                    bar.set_position(c.delivered + c.failed);
                    bar.set_message(format!(
                        "read {} · delivered {} · retrying {} · failed {} · {:.0} events/s",
                        read.load(Ordering::Relaxed),
                        c.delivered,
                        retrying,
                        c.failed,
                        c.delivered as f64 / secs
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });

    let started = Instant::now();
    let (receipts, pending) = tokio::sync::mpsc::unbounded_channel();
    let collector = collect_receipts(pending);
    let mut unsent: Vec<Event> = Vec::new();
    let mut invalid = 0usize;
    loop {
        let next = match &mut source {
            Source::File(events) => events.next().map(Ok),
            Source::Stream(rx) => tokio::select! {
                biased;
                () = stop_reading.notified() => None,
                item = rx.recv() => item,
            },
        };
        let ev = match next {
            None => break,
            Some(Ok(ev)) => ev,
            Some(Err(e)) => {
                // Only a stream hands over bad lines: report, skip, go on reading.
                invalid += 1;
                eprintln!("{} {}", err_style.red("skipped"), e.cause);
                continue;
            }
        };
        read.fetch_add(1, Ordering::Relaxed);
        if interrupted.load(Ordering::SeqCst) {
            unsent.push(ev);
            break;
        }
        match sender.send(ev.clone()).await {
            Ok(r) => {
                let _ = receipts.send((ev, r));
            }
            Err(e) => {
                unsent.push(e.into_event());
                break;
            }
        }
    }
    if let Source::File(rest) = source {
        unsent.extend(rest);
    }
    drop(receipts);
    let Tally {
        delivered,
        filtered,
        attempts_max,
        failed,
    } = collector
        .await
        .map_err(|e| CliError::new(Exit::Io, format!("receipt collector failed: {e}")))?;
    let total = delivered + filtered + failed.len() + unsent.len();
    let elapsed = started.elapsed();
    let _ = sender.shutdown(args.drain).await;
    ctrl_c.abort();
    if let Some(t) = ticker {
        t.abort();
    }
    let counters = totals(&sender, &names).map(|(c, _)| c);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for (_, r) in &failed {
        *reasons
            .entry(reason_text(r, interrupted.load(Ordering::SeqCst)))
            .or_default() += 1;
    }
    if !unsent.is_empty() {
        *reasons
            .entry("not sent (interrupted)".to_owned())
            .or_default() += unsent.len();
    }
    if invalid > 0 {
        reasons.insert(
            "input line(s) skipped: not a JSON event".to_owned(),
            invalid,
        );
    }
    let undelivered = failed.len() + unsent.len();
    let dead_lettered = match (&args.dead_letter, undelivered) {
        (Some(path), n) if n > 0 => Some((
            path,
            events::write_ndjson(path, failed.iter().map(|(e, _)| e).chain(unsent.iter()))?,
        )),
        _ => None,
    };

    let secs = elapsed.as_secs_f64().max(0.001);
    let requests = counters.map_or(0, |c| c.requests);
    if args.json {
        let line = json!({
            "events": total,
            "delivered": delivered,
            "undelivered": undelivered,
            "filtered": filtered,
            "requests": requests,
            "retries": counters.map_or(0, |c| c.retries),
            "seconds": elapsed.as_secs_f64(),
            "failures": reasons,
            "dead_letter": dead_lettered.as_ref().map(|(p, n)| json!({"file": p.display().to_string(), "events": n})),
            "interrupted": interrupted.load(Ordering::SeqCst),
            "invalid_lines": invalid,
        });
        println!("{line}");
    } else {
        let s = Style::stdout(no_color);
        let head = if undelivered == 0 {
            s.green("delivered")
        } else {
            s.red("NOT all delivered")
        };
        println!(
            "{head}: {delivered}/{total} event(s) in {requests} request(s), {:.2} s, {:.0} events/s{}",
            secs,
            delivered as f64 / secs,
            if attempts_max > 1 {
                format!(" (some after {attempts_max} attempts)")
            } else {
                String::new()
            }
        );
        if filtered > 0 {
            println!(
                "  {filtered} event(s) selected by no endpoint (outside its channels/event sets)"
            );
        }
        for (reason, n) in &reasons {
            if reason.starts_with("input line") {
                println!("  {} {n} {reason}", s.red("✗"));
            } else {
                println!("  {} {n} event(s): {reason}", s.red("✗"));
            }
        }
        if let Some((path, n)) = &dead_lettered {
            println!(
                "  {n} undelivered event(s) written to {} (resend: webhook send --file {} ...)",
                path.display(),
                path.display()
            );
        }
    }
    if undelivered == 0 && invalid == 0 {
        return Ok(Exit::Ok);
    }
    let failures: Vec<FailureReason> = failed.into_iter().map(|(_, r)| r).collect();
    if let Some(h) = hint_for(&failures) {
        eprintln!("hint: {h}");
    }
    if dead_lettered.is_none() && undelivered > 0 {
        eprintln!("hint: pass --dead-letter FILE to keep undelivered events for a later resend");
    }
    Ok(Exit::Negative)
}
