//! `webhook send`: replay a file of events at an endpoint through the SDK's delivery engine
//! (`webhook_sender::Sender`: batching, signing, retries), with a progress bar on a terminal,
//! a summary, and an exit code that says whether everything arrived. Undelivered events go to
//! a dead-letter file, or, with `--outbox DIR`, stay in a durable outbox that the next
//! `send --outbox DIR` delivers first.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use webhook_core::{BatcherConfig, Event, RetryPolicy, TimestampFormat};
use webhook_sender::outbox::{Durability, Outbox, OutboxConfig};
use webhook_sender::{
    AttemptError, Concurrency, Counters, EndpointConfig, FailureReason, Outcome, Receipt,
    RegistrySnapshot, SendError, Sender,
};

use crate::cli::{DurabilityArg, SendArgs};
use crate::error::{CliError, Exit, chain};
use crate::events;
use crate::outbox_cmd;
use crate::style::Style;
use crate::target;

/// The endpoint's name inside the sender when the flags (or a single `WEBHOOK` mapping)
/// describe one endpoint.
const NAME: &str = "endpoint";

/// How long Ctrl-C waits for requests in flight when an outbox keeps the rest.
const OUTBOX_GRACE: Duration = Duration::from_secs(2);

/// Builds the retry policy from the flags: retry for a time window, not a number of attempts.
/// Exponential backoff with full jitter from `--retry-delay` doubling up to
/// `--retry-max-delay`, until the next attempt would fall more than `--retry-for` after the
/// first (then the event is given up), or after `--retries` retries when given. A
/// `Retry-After` answer is honoured up to the whole window; the wait after a 429/timeout is
/// the first delay (not the engine's 60 s default, which suits a daemon more than a terminal).
pub(crate) fn retry_policy(args: &SendArgs) -> Result<RetryPolicy, CliError> {
    retry_window(
        args.retry_delay,
        args.retry_max_delay,
        args.retry_for,
        args.retries,
    )
}

/// The retry policy of `send` and `worker` from their `--retry-*` flags (see
/// [`retry_policy`]).
pub(crate) fn retry_window(
    delay: Duration,
    max_delay: Duration,
    retry_for: Duration,
    retries: Option<u32>,
) -> Result<RetryPolicy, CliError> {
    let max_delay = max_delay.max(delay);
    RetryPolicy::builder()
        .exponential(delay, 2.0, max_delay, true)
        .max_elapsed(retry_for)
        .max_attempts(retries.map_or(u32::MAX, |n| n.saturating_add(1)))
        .min_wait_after_throttle(delay)
        .retry_after(true, retry_for.max(max_delay))
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
        FailureReason::Request(why) if why.contains("SSRF guard") => Some(
            "the address is private or loopback: add --allow-private to send there (link-local \
             and metadata addresses stay blocked)",
        ),
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
    /// Deliveries (event, endpoint) the receipts reported.
    delivered_pairs: u64,
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
                        t.delivered_pairs += 1;
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

/// The outbox of a run, and what it held when the run began.
struct Durable {
    dir: PathBuf,
    config: OutboxConfig,
    /// The endpoints saved with it by an earlier run.
    saved: Option<RegistrySnapshot>,
    /// Events held per endpoint.
    held: Vec<(String, u64)>,
    /// Events held, all endpoints.
    held_total: u64,
    /// Dead letters held.
    dead_before: u64,
}

impl Durable {
    /// Opens the outbox once to learn what it holds and which endpoints it saved, then closes
    /// it for the sender to open (a sender over it turns events held for an endpoint it does
    /// not configure into dead letters, so [`check_held`] looks first).
    fn open(args: &SendArgs, dir: &Path) -> Result<Self, CliError> {
        let durability = match args.durability {
            DurabilityArg::Interval => Durability::default(),
            DurabilityArg::Sync => Durability::Sync,
        };
        let config = OutboxConfig::new(dir)
            .durability(durability)
            .max_bytes(u64::try_from(args.outbox_max_bytes).unwrap_or(u64::MAX));
        let outbox = Outbox::open(config.clone()).map_err(|e| outbox_cmd::outbox_error(&e, dir))?;
        let stats = outbox.stats();
        let saved = outbox
            .registry()
            .map_err(|e| outbox_cmd::outbox_error(&e, dir))?;
        drop(outbox);
        Ok(Self {
            dir: dir.to_owned(),
            config,
            saved,
            held: stats
                .pending_by_endpoint
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect(),
            held_total: stats.pending,
            dead_before: stats.dead_letters,
        })
    }

    fn saved_names(&self) -> Vec<&str> {
        self.saved
            .iter()
            .flat_map(|s| &s.endpoints)
            .map(|e| e.name.as_str())
            .collect()
    }
}

/// Refuses a run whose endpoints (`names`) leave out an endpoint the outbox saved (a sender
/// over it would resume that endpoint and send it this run's events too) or one it holds
/// events for (they would become dead letters).
fn check_held(d: &Durable, names: &[String]) -> Result<(), CliError> {
    let known = |n: &str| names.iter().any(|m| m == n);
    let dir = d.dir.display();
    let hint = format!(
        "pass the same --endpoint/--config as the earlier run, or neither (to resume the \
         endpoints saved in {dir}), or use another --outbox directory"
    );
    let held: Vec<String> = d
        .held
        .iter()
        .filter(|(n, _)| !known(n))
        .map(|(n, c)| format!("{c} for {n:?}"))
        .collect();
    if !held.is_empty() {
        return Err(CliError::usage(format!(
            "the outbox {dir} holds event(s) for endpoints this run does not configure ({})",
            held.join(", ")
        ))
        .hint(hint));
    }
    let other: Vec<&str> = d.saved_names().into_iter().filter(|n| !known(n)).collect();
    if !other.is_empty() {
        return Err(CliError::usage(format!(
            "the outbox {dir} belongs to endpoint(s) {}: this run would send to them too",
            other.join(", ")
        ))
        .hint(hint));
    }
    Ok(())
}

/// One endpoint from the flags, on top of a single `WEBHOOK` configuration if any; with a
/// one-integration `local_forwarding` file, that integration's channels as event sets. With
/// an outbox, the endpoint is built from its [`EndpointSpec`](webhook_sender::EndpointSpec)
/// when the flags fit one, so that the outbox saves it for a later run without flags.
fn single_plan(
    args: &SendArgs,
    sysdig: Option<RegistrySnapshot>,
    durable: Option<&Durable>,
) -> Result<Plan, CliError> {
    let target = target::build(&args.target)?;
    if let Some(d) = durable {
        check_held(d, &[NAME.to_owned()])?;
    }
    let spec = match durable {
        Some(_) => target::spec(&args.target, NAME)?,
        None => None,
    };
    let subscription = sysdig
        .as_ref()
        .and_then(|s| s.endpoints.first())
        .map(webhook_sender::EndpointSpec::subscription);
    let mut endpoint = match spec {
        Some(mut spec) => {
            if let Some(sub) = &subscription {
                spec.tenant.clone_from(&sub.tenant);
                spec.event_sets.clone_from(&sub.event_sets);
                spec.types.clone_from(&sub.types);
                spec.labels.clone_from(&sub.labels);
            }
            spec.config_builder()
                .map_err(|e| CliError::config(chain(&e)))?
        }
        None => {
            let mut b = EndpointConfig::builder(NAME, target.endpoint.clone());
            if let Some(sub) = subscription {
                b = b.subscription(sub);
            }
            b
        }
    }
    .batching(batching(args)?)
    .retry(retry_policy(args)?)
    .concurrency(Concurrency::Fixed(args.concurrency.max(1)))
    .transport(target.transport.clone());
    if let Some(tokens) = target.tokens.clone() {
        endpoint = endpoint.token_provider(tokens);
    }
    let mut sender = Sender::builder();
    if let Some(snapshot) = sysdig {
        for set in snapshot.event_sets {
            sender = sender.event_set(set);
        }
    }
    if let Some(d) = durable {
        sender = sender.outbox(d.config.clone());
    }
    let endpoint = endpoint.build().map_err(|e| CliError::config(chain(&e)))?;
    let sender = sender
        .endpoint(endpoint)
        .build()
        .map_err(|e| target::build_error(&e))?;
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
fn registry_plan(
    args: &SendArgs,
    snapshot: RegistrySnapshot,
    durable: Option<&Durable>,
) -> Result<Plan, CliError> {
    let t = &args.target;
    target::refuse_one_endpoint_flags(t, snapshot.endpoints.len())?;
    if let Some(d) = durable {
        let names: Vec<String> = snapshot.endpoints.iter().map(|e| e.name.clone()).collect();
        check_held(d, &names)?;
    }
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
    let outbox = durable.map(|d| d.config.clone());
    let sender = target::registry_sender_with(t, snapshot, outbox, |spec, mut b| {
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

fn plan(args: &SendArgs, durable: Option<&Durable>) -> Result<Plan, CliError> {
    let t = &args.target;
    if let Some(d) = durable
        && t.endpoint.is_none()
        && t.config.is_none()
    {
        // Resume the endpoints saved with the outbox.
        return match d.saved.clone().filter(|s| !s.endpoints.is_empty()) {
            Some(saved) => registry_plan(args, saved, durable),
            None => Err(CliError::usage(format!(
                "no endpoint: pass --endpoint URL or --config FILE (the outbox {} has no saved \
                 endpoints)",
                d.dir.display()
            ))
            .hint(
                "endpoints given with --token-url or an Ed25519 key are not saved: pass them \
                 again on each run",
            )),
        };
    }
    let file = match &t.config {
        Some(path) => target::read_config_file(path)?,
        None => target::ConfigFile::Single,
    };
    match file {
        target::ConfigFile::Single => single_plan(args, None, durable),
        target::ConfigFile::Sysdig(s) if s.endpoints.len() == 1 => {
            single_plan(args, Some(s), durable)
        }
        target::ConfigFile::Sysdig(s) | target::ConfigFile::Registry(s) => {
            registry_plan(args, s, durable)
        }
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

/// What an outbox holds at the end of a run.
struct Left {
    dir: PathBuf,
    held_at_start: u64,
    /// Events still held (to deliver on the next run).
    remaining: u64,
    remaining_by_endpoint: Vec<(String, u64)>,
    /// Dead letters added by this run, and held in all.
    dead_new: u64,
    dead_total: u64,
}

impl Left {
    fn json(&self, held_delivered: u64) -> serde_json::Value {
        json!({
            "dir": self.dir.display().to_string(),
            "held_at_start": self.held_at_start,
            "held_delivered": held_delivered,
            "remaining": self.remaining,
            "remaining_by_endpoint": self.remaining_by_endpoint.iter().cloned().collect::<BTreeMap<_, _>>(),
            "dead_letters_new": self.dead_new,
            "dead_letters": self.dead_total,
        })
    }
}

/// Waits until the outbox holds nothing more to deliver, the run is interrupted, or
/// `deadline` passes (an endpoint that never settles: paused, or a window longer than
/// expected). `true` when the outbox is empty.
async fn drain_outbox(outbox: &Outbox, interrupted: &AtomicBool, deadline: Instant) -> bool {
    loop {
        if outbox.stats().pending == 0 {
            return true;
        }
        if interrupted.load(Ordering::SeqCst) || Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `send`.
pub(crate) async fn run(args: SendArgs, no_color: bool) -> Result<Exit, CliError> {
    let durable = match &args.outbox {
        Some(dir) => Some(Durable::open(&args, dir)?),
        None => None,
    };
    let Plan {
        sender,
        names,
        timestamp_format,
        destination,
    } = plan(&args, durable.as_ref())?;
    let (mut source, known_total) = match &args.file {
        None => (Source::File(Vec::new().into_iter()), Some(0)),
        Some(file) if file.as_os_str() == "-" => {
            let rx = events::stream(std::io::stdin(), timestamp_format, STREAM_BUFFER);
            (Source::Stream(rx), None)
        }
        Some(file) => {
            let input = events::read_input(file)?;
            let all = events::parse(&input, timestamp_format)?;
            let n = all.len();
            (Source::File(all.into_iter()), Some(n))
        }
    };
    let streaming = matches!(source, Source::Stream(_));

    let interrupt = crate::signal::interrupt()
        .map_err(|e| CliError::io("cannot install the Ctrl-C handler", &e))?;
    let err_style = Style::stderr(no_color);
    let held = durable.as_ref().map_or(0, |d| d.held_total);
    match (&args.file, known_total) {
        (None, _) => eprintln!(
            "{} {held} event(s) held in the outbox {} to {destination}",
            err_style.bold("delivering"),
            args.outbox
                .as_deref()
                .map(Path::display)
                .map(|d| d.to_string())
                .unwrap_or_default()
        ),
        (Some(file), Some(n)) => eprintln!(
            "{} {n} event(s) from {} to {destination} (up to {} per request)",
            err_style.bold("sending"),
            file.display(),
            args.max_events
        ),
        (Some(_), None) => eprintln!(
            "{} events from stdin as they arrive to {destination} (up to {} per request)",
            err_style.bold("sending"),
            args.max_events
        ),
    }
    if let Some(d) = durable
        .as_ref()
        .filter(|d| d.held_total > 0 && args.file.is_some())
    {
        let per: Vec<String> = d.held.iter().map(|(n, c)| format!("{n}: {c}")).collect();
        eprintln!(
            "{} {} event(s) held in the outbox {} from an earlier run ({})",
            err_style.bold("resuming"),
            d.held_total,
            d.dir.display(),
            per.join(", ")
        );
    }

    // Ctrl-C: stop reading, let the engine deliver for --drain, then give up the rest. With an
    // outbox, the rest of a file is stored first, requests in flight get a short grace, and
    // what is not delivered stays in the outbox.
    let grace = if durable.is_some() {
        args.drain.min(OUTBOX_GRACE)
    } else {
        args.drain
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    let stop_reading = Arc::new(tokio::sync::Notify::new());
    let input_done = Arc::new(tokio::sync::Notify::new());
    let ctrl_c = {
        let (interrupted, stop_reading) = (Arc::clone(&interrupted), Arc::clone(&stop_reading));
        let input_done = Arc::clone(&input_done);
        let sender = sender.clone();
        let dir = args.outbox.clone();
        tokio::spawn(async move {
            interrupt.await;
            interrupted.store(true, Ordering::SeqCst);
            stop_reading.notify_one();
            match dir {
                Some(dir) => {
                    eprintln!(
                        "interrupted: stopping (a file's remaining events are stored first); \
                         undelivered events stay in the outbox {}",
                        dir.display()
                    );
                    input_done.notified().await;
                }
                None => {
                    eprintln!("interrupted: delivering what is in flight for up to {grace:?}...");
                }
            }
            let _ = sender.shutdown(grace).await;
        })
    };

    let read = Arc::new(AtomicU64::new(0));
    let bar = progress(known_total.map(|n| n as u64 + held), !args.no_progress);
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
    let mut store_error: Option<String> = None;
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
        let stopping = interrupted.load(Ordering::SeqCst);
        if stopping && (durable.is_none() || streaming) {
            unsent.push(ev);
            break;
        }
        // Once interrupted, storing the rest of a file in the outbox may not wait for room.
        let sent = if stopping {
            tokio::time::timeout(OUTBOX_GRACE, sender.send(ev.clone()))
                .await
                .unwrap_or_else(|_| Err(SendError::Full(ev.clone())))
        } else {
            sender.send(ev.clone()).await
        };
        match sent {
            Ok(r) => {
                let _ = receipts.send((ev, r));
            }
            Err(e) => {
                if let SendError::Outbox(_, cause) = &e {
                    store_error = Some(chain(cause.as_ref()));
                }
                unsent.push(e.into_event());
                break;
            }
        }
    }
    if let Source::File(rest) = source {
        unsent.extend(rest);
    }
    input_done.notify_one();
    if let Some(d) = &durable
        && known_total.is_some_and(|n| n > 0)
        && unsent.is_empty()
        && !interrupted.load(Ordering::SeqCst)
    {
        eprintln!(
            "stored: every event is in the outbox {}; Ctrl-C or a kill keeps what is not \
             delivered there (resume: webhook send --outbox {})",
            d.dir.display(),
            d.dir.display()
        );
    }
    drop(receipts);
    let Tally {
        delivered,
        delivered_pairs,
        filtered,
        attempts_max,
        failed,
    } = collector
        .await
        .map_err(|e| CliError::new(Exit::Io, format!("receipt collector failed: {e}")))?;
    // With an outbox, also wait for what it held from an earlier run; the retry window bounds
    // each event, this deadline a run that cannot settle (a paused endpoint, say).
    let mut drained = true;
    if let Some(outbox) = sender.outbox() {
        let deadline = Instant::now() + args.retry_for + args.target.timeout + args.drain;
        drained = drain_outbox(outbox, &interrupted, deadline).await;
    }
    let total = delivered + filtered + failed.len() + unsent.len();
    let elapsed = started.elapsed();
    let _ = sender
        .shutdown(if drained { args.drain } else { grace })
        .await;
    ctrl_c.abort();
    if let Some(t) = ticker {
        t.abort();
    }
    let counters = totals(&sender, &names).map(|(c, _)| c);
    let left = sender.outbox().zip(durable.as_ref()).map(|(outbox, d)| {
        let st = outbox.stats();
        Left {
            dir: d.dir.clone(),
            held_at_start: d.held_total,
            remaining: st.pending,
            remaining_by_endpoint: st
                .pending_by_endpoint
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect(),
            dead_new: st.dead_letters.saturating_sub(d.dead_before),
            dead_total: st.dead_letters,
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let was_interrupted = interrupted.load(Ordering::SeqCst);

    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for (_, r) in &failed {
        let text = match r {
            FailureReason::Shutdown if left.is_some() => {
                "not delivered before the run stopped: kept in the outbox".to_owned()
            }
            other => reason_text(other, was_interrupted),
        };
        *reasons.entry(text).or_default() += 1;
    }
    if !unsent.is_empty() {
        let text = match (&store_error, left.is_some()) {
            (Some(e), _) => format!("not stored in the outbox ({e})"),
            (None, true) => "not sent nor stored (interrupted)".to_owned(),
            (None, false) => "not sent (interrupted)".to_owned(),
        };
        *reasons.entry(text).or_default() += unsent.len();
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
    // Deliveries of events the outbox held from an earlier run (every endpoint's count).
    let held_delivered = counters
        .map_or(0, |c| c.delivered)
        .saturating_sub(delivered_pairs);

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
            "outbox": left.as_ref().map(|l| l.json(held_delivered)),
            "interrupted": was_interrupted,
            "invalid_lines": invalid,
        });
        println!("{line}");
    } else {
        let s = Style::stdout(no_color);
        let all_done = undelivered == 0
            && left
                .as_ref()
                .is_none_or(|l| l.remaining == 0 && l.dead_new == 0);
        let head = if all_done {
            s.green("delivered")
        } else {
            s.red("NOT all delivered")
        };
        let attempts_note = if attempts_max > 1 {
            format!(" (some after {attempts_max} attempts)")
        } else {
            String::new()
        };
        if args.file.is_none() {
            println!(
                "{head}: {held_delivered}/{held} event(s) held in the outbox, in {requests} \
                 request(s), {secs:.2} s{attempts_note}"
            );
        } else {
            println!(
                "{head}: {delivered}/{total} event(s) in {requests} request(s), {:.2} s, {:.0} events/s{attempts_note}",
                secs,
                delivered as f64 / secs,
            );
            if held > 0 {
                println!(
                    "  {held_delivered}/{held} event(s) held in the outbox from an earlier run delivered"
                );
            }
        }
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
        if let Some(l) = &left {
            let dir = l.dir.display();
            if l.remaining > 0 {
                let per: Vec<String> = l
                    .remaining_by_endpoint
                    .iter()
                    .map(|(n, c)| format!("{n}: {c}"))
                    .collect();
                println!(
                    "  {} {} undelivered event(s) remain in the outbox {dir} ({}); resume with: \
                     webhook send --outbox {dir}",
                    s.yellow("⏸"),
                    l.remaining,
                    per.join(", ")
                );
            }
            if l.dead_new > 0 {
                println!(
                    "  {} {} event(s) given up, kept as dead letters in {dir} ({} in all): \
                     webhook outbox list {dir}",
                    s.red("✗"),
                    l.dead_new,
                    l.dead_total
                );
            }
        }
    }
    let outbox_clean = left
        .as_ref()
        .is_none_or(|l| l.remaining == 0 && l.dead_new == 0);
    if undelivered == 0 && invalid == 0 && outbox_clean {
        return Ok(Exit::Ok);
    }
    let failures: Vec<FailureReason> = failed.into_iter().map(|(_, r)| r).collect();
    if let Some(h) = hint_for(&failures) {
        eprintln!("hint: {h}");
    }
    if dead_lettered.is_none() && left.is_none() && undelivered > 0 {
        eprintln!(
            "hint: pass --outbox DIR to keep undelivered events and deliver them on the next run \
             (or --dead-letter FILE to write them to a file)"
        );
    }
    Ok(Exit::Negative)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use clap::Parser as _;
    use webhook_core::{AttemptOutcome, RetryDecision, RetryState, SplitMix64};

    use super::*;
    use crate::cli::{Cli, Command};

    fn send_args(extra: &[&str]) -> SendArgs {
        let cli = Cli::try_parse_from(
            ["webhook", "send", "-f", "x", "--endpoint", "http://h/"]
                .iter()
                .chain(extra),
        )
        .unwrap();
        match cli.command {
            Command::Send(s) => s,
            _ => unreachable!(),
        }
    }

    fn decide(policy: &RetryPolicy, attempts: u32, after: Duration) -> RetryDecision {
        let t0 = Instant::now();
        let state = RetryState::resumed(t0, attempts);
        let mut rng = SplitMix64::new(1);
        policy.decide(
            &state,
            &AttemptOutcome::ConnectError,
            t0 + after,
            SystemTime::now(),
            &mut rng,
        )
    }

    #[test]
    fn the_default_policy_retries_for_fifteen_minutes_not_a_few_attempts() {
        let policy = retry_policy(&send_args(&[])).unwrap();
        // Still retrying after 200 attempts and 14 minutes...
        assert!(matches!(
            decide(&policy, 200, Duration::from_secs(14 * 60)),
            RetryDecision::RetryAt { .. }
        ));
        // ...given up once the next attempt would fall after the 15-minute window.
        assert!(matches!(
            decide(&policy, 201, Duration::from_secs(15 * 60)),
            RetryDecision::GiveUp(_)
        ));
        // --retries still caps the attempts; --retry-for moves the window.
        let capped = retry_policy(&send_args(&["--retries", "1"])).unwrap();
        assert_eq!(capped.max_attempts(), 2);
        let short = retry_policy(&send_args(&["--retry-for", "2s"])).unwrap();
        assert!(matches!(
            decide(&short, 3, Duration::from_secs(2)),
            RetryDecision::GiveUp(_)
        ));
    }
}
