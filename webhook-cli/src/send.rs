//! `webhook send`: replay a file of events at an endpoint through the SDK's delivery engine
//! (`webhook_sender::Sender`: batching, signing, retries), with a progress bar on a terminal,
//! a summary, a dead-letter file and an exit code that says whether everything arrived.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use webhook_core::{BatcherConfig, Event, RetryPolicy};
use webhook_sender::{
    AttemptError, Concurrency, EndpointConfig, FailureReason, Outcome, Receipt, Sender,
};

use crate::cli::SendArgs;
use crate::error::{CliError, Exit, chain};
use crate::events;
use crate::style::Style;
use crate::target;

/// The endpoint's name inside the sender (one endpoint per run).
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

fn progress(total: u64, enabled: bool) -> Option<ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} done · {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// Runs `send`.
pub(crate) async fn run(args: SendArgs, no_color: bool) -> Result<Exit, CliError> {
    let target = target::build(&args.target)?;
    let input = events::read_input(&args.file)?;
    let all = events::parse(&input, target.timestamp_format)?;
    drop(input);
    let total = all.len();

    let batching = BatcherConfig::builder()
        .encoding(target.endpoint.encoding())
        .max_events(args.max_events)
        .max_bytes(args.max_bytes)
        .linger(args.linger)
        .build()
        .map_err(|e| CliError::config(format!("batching: {e}")))?;
    let mut endpoint = EndpointConfig::builder(NAME, target.endpoint.clone())
        .batching(batching)
        .retry(retry_policy(&args)?)
        .concurrency(Concurrency::Fixed(args.concurrency.max(1)))
        .transport(target.transport.clone());
    if let Some(tokens) = target.tokens.clone() {
        endpoint = endpoint.token_provider(tokens);
    }
    let endpoint = endpoint.build().map_err(|e| CliError::config(chain(&e)))?;
    let sender = Sender::builder()
        .endpoint(endpoint)
        .build()
        .map_err(|e| CliError::config(chain(&e)))?;

    let interrupt = crate::signal::interrupt()
        .map_err(|e| CliError::io("cannot install the Ctrl-C handler", &e))?;
    let err_style = Style::stderr(no_color);
    eprintln!(
        "{} {total} event(s) from {} to {} (auth: {}; up to {} per request)",
        err_style.bold("sending"),
        args.file.display(),
        target.url,
        target.auth_label,
        args.max_events
    );

    // Ctrl-C: stop reading, let the engine deliver for --drain, then fail the rest.
    let interrupted = Arc::new(AtomicBool::new(false));
    let ctrl_c = {
        let interrupted = Arc::clone(&interrupted);
        let sender = sender.clone();
        let drain = args.drain;
        tokio::spawn(async move {
            interrupt.await;
            interrupted.store(true, Ordering::SeqCst);
            eprintln!("interrupted: delivering what is in flight for up to {drain:?}...");
            let _ = sender.shutdown(drain).await;
        })
    };

    let bar = progress(total as u64, !args.no_progress);
    let ticker = bar.as_ref().map(|bar| {
        let bar = bar.clone();
        let sender = sender.clone();
        let started = Instant::now();
        tokio::spawn(async move {
            loop {
                if let Some(h) = sender.endpoint_health(NAME) {
                    let c = h.counters;
                    let secs = started.elapsed().as_secs_f64().max(0.001);
                    bar.set_position(c.delivered + c.failed);
                    bar.set_message(format!(
                        "read {total} · delivered {} · retrying {} · failed {} · {:.0} events/s",
                        c.delivered,
                        h.retrying,
                        c.failed,
                        c.delivered as f64 / secs
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });

    let started = Instant::now();
    let mut receipts: Vec<(Event, Receipt)> = Vec::with_capacity(total);
    let mut unsent: Vec<Event> = Vec::new();
    let mut iter = all.into_iter();
    for ev in iter.by_ref() {
        if interrupted.load(Ordering::SeqCst) {
            unsent.push(ev);
            break;
        }
        match sender.send(ev.clone()).await {
            Ok(r) => receipts.push((ev, r)),
            Err(e) => {
                unsent.push(e.into_event());
                break;
            }
        }
    }
    unsent.extend(iter);

    let mut delivered = 0usize;
    let mut attempts_max = 0u32;
    let mut failed: Vec<(Event, FailureReason)> = Vec::new();
    for (ev, receipt) in receipts {
        let report = receipt.await;
        match report.outcome(NAME) {
            Some(Outcome::Delivered { attempts, .. }) => {
                delivered += 1;
                attempts_max = attempts_max.max(*attempts);
            }
            Some(Outcome::Failed { reason }) => failed.push((ev, reason.clone())),
            Some(Outcome::Dropped) => failed.push((ev, FailureReason::Shutdown)),
            _ => failed.push((ev, FailureReason::SenderStopped)),
        }
    }
    let elapsed = started.elapsed();
    let _ = sender.shutdown(args.drain).await;
    ctrl_c.abort();
    if let Some(t) = ticker {
        t.abort();
    }
    let counters = sender.endpoint_health(NAME).map(|h| h.counters);
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
            "requests": requests,
            "retries": counters.map_or(0, |c| c.retries),
            "seconds": elapsed.as_secs_f64(),
            "failures": reasons,
            "dead_letter": dead_lettered.as_ref().map(|(p, n)| json!({"file": p.display().to_string(), "events": n})),
            "interrupted": interrupted.load(Ordering::SeqCst),
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
        for (reason, n) in &reasons {
            println!("  {} {n} event(s): {reason}", s.red("✗"));
        }
        if let Some((path, n)) = &dead_lettered {
            println!(
                "  {n} undelivered event(s) written to {} (resend: webhook send --file {} ...)",
                path.display(),
                path.display()
            );
        }
    }
    if undelivered == 0 {
        return Ok(Exit::Ok);
    }
    let failures: Vec<FailureReason> = failed.into_iter().map(|(_, r)| r).collect();
    if let Some(h) = hint_for(&failures) {
        eprintln!("hint: {h}");
    }
    if dead_lettered.is_none() {
        eprintln!("hint: pass --dead-letter FILE to keep undelivered events for a later resend");
    }
    Ok(Exit::Negative)
}
