//! `webhook outbox`: the durable outbox of `send --outbox DIR`, offline: `status`, `list`,
//! `show`, `redeliver` and `purge` open DIR with [`Outbox::open`] (so they refuse, with exit
//! code 7 naming the pid, while a sender holds it) and print text or `--json`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use webhook_sender::outbox::{DeadLetterEntry, Filter, Outbox, OutboxConfig, OutboxError};

use crate::error::{CliError, Exit};
use crate::parse::{self, TimeArg};
use crate::rfc3339;
use crate::style::{self, Style};

/// `outbox`: inspect and repair an outbox directory.
#[derive(Debug, Args)]
pub(crate) struct OutboxArgs {
    #[command(subcommand)]
    pub(crate) command: OutboxCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum OutboxCommand {
    /// Pending events per endpoint, backlog, oldest pending age, dead letters, saved endpoints
    /// and what opening recovered.
    Status(StatusArgs),
    /// Dead letters, one line each, oldest first.
    List(ListArgs),
    /// One dead letter: its event and its attempts.
    Show(ShowArgs),
    /// Move dead letters back to the pending events; the next `send --outbox DIR` delivers
    /// them (the next `listen --inbox DIR` handles them again).
    #[command(visible_alias = "requeue")]
    Redeliver(ChangeArgs),
    /// Delete dead letters for good.
    Purge(ChangeArgs),
}

/// `outbox status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The outbox directory (as given to `send --outbox`), or a Redis queue as
    /// `redis://HOST:PORT[/DB]#QUEUE` (see `webhook worker`; one partition unless the URL ends
    /// `?partitions=N`, before the `#`).
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,

    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `outbox list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// The outbox directory, or a Redis queue as `redis://HOST:PORT[/DB]#QUEUE`.
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,

    /// Only the dead letters of this endpoint.
    #[arg(long, value_name = "NAME")]
    pub(crate) endpoint: Option<String>,

    /// Only those given up at or after TIME (RFC 3339, or a duration back from now: 1h).
    #[arg(long, value_name = "TIME", value_parser = parse::time)]
    pub(crate) since: Option<TimeArg>,

    /// Only those given up before TIME (RFC 3339, or a duration back from now).
    #[arg(long, value_name = "TIME", value_parser = parse::time)]
    pub(crate) until: Option<TimeArg>,

    /// Show at most N.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub(crate) limit: usize,

    /// Print one JSON object per dead letter (NDJSON).
    #[arg(long)]
    pub(crate) json: bool,
}

/// `outbox show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The outbox directory, or a Redis queue as `redis://HOST:PORT[/DB]#QUEUE`.
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,

    /// The dead letter's id (first column of `outbox list`).
    #[arg(value_name = "ID")]
    pub(crate) id: u64,

    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `outbox redeliver` / `outbox purge`: which dead letters (at least one selector; the
/// conditions given all apply).
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("selector").multiple(true).required(true)
    .args(["all", "endpoint", "ids", "since", "until"])))]
pub(crate) struct ChangeArgs {
    /// The outbox directory, or a Redis queue as `redis://HOST:PORT[/DB]#QUEUE`.
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,

    /// Every dead letter.
    #[arg(long, conflicts_with_all = ["endpoint", "ids", "since", "until"])]
    pub(crate) all: bool,

    /// The dead letters of this endpoint.
    #[arg(long, value_name = "NAME")]
    pub(crate) endpoint: Option<String>,

    /// This dead letter (repeatable; ids as `outbox list` shows them).
    #[arg(long = "id", value_name = "N")]
    pub(crate) ids: Vec<u64>,

    /// Those given up at or after TIME (RFC 3339, or a duration back from now: 1h).
    #[arg(long, value_name = "TIME", value_parser = parse::time)]
    pub(crate) since: Option<TimeArg>,

    /// Those given up before TIME (RFC 3339, or a duration back from now).
    #[arg(long, value_name = "TIME", value_parser = parse::time)]
    pub(crate) until: Option<TimeArg>,

    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The CLI's face of an outbox error: a held lock gets its own exit code and names the pid.
pub(crate) fn outbox_error(e: &OutboxError, dir: &Path) -> CliError {
    match e {
        OutboxError::Locked { pid, .. } => {
            let holder =
                pid.map_or_else(|| "another process".to_owned(), |p| format!("process {p}"));
            CliError::new(
                Exit::Locked,
                format!("the outbox {} is in use by {holder}", dir.display()),
            )
            .hint(
                "a `webhook send --outbox` (or another `webhook outbox`) has it open: wait for it \
                 to finish, or stop it (Ctrl-C keeps its undelivered events in the outbox)",
            )
        }
        OutboxError::Io { .. } | OutboxError::Failed { .. } | OutboxError::Corrupt { .. } => {
            CliError::new(Exit::Io, crate::error::chain(e))
        }
        OutboxError::Full => CliError::new(Exit::Negative, e.to_string())
            .hint("deliver what it holds first (webhook send --outbox DIR), or purge dead letters"),
        other => CliError::config(crate::error::chain(other)),
    }
}

/// Opens an existing outbox (never creates one: a mistyped DIR is an error, not a new outbox).
pub(crate) fn open_existing(dir: &Path) -> Result<Outbox, CliError> {
    if let Some(url) = dir.to_str().filter(|d| is_redis(d)) {
        return open_redis(url);
    }
    if !dir.is_dir() {
        return Err(CliError::new(
            Exit::Io,
            format!("no outbox at {}: not a directory", dir.display()),
        )
        .hint("pass the directory given to `webhook send --outbox DIR`"));
    }
    Outbox::open(OutboxConfig::new(dir)).map_err(|e| outbox_error(&e, dir))
}

/// The outbox as printed: a directory, or a Redis queue's URL without its password.
fn shown(dir: &Path) -> String {
    webhook_redis::redact_url(&dir.to_string_lossy()).into_owned()
}

fn is_redis(dir: &str) -> bool {
    dir.starts_with("redis://") || dir.starts_with("rediss://")
}

/// A Redis queue, `redis[s]://HOST:PORT[/DB][?partitions=N]#QUEUE`, as an outbox (TLS files
/// from `WEBHOOK_REDIS_CA`, `WEBHOOK_REDIS_CERT`, `WEBHOOK_REDIS_KEY`). Its background
/// writer runs on a runtime of its own, kept for the rest of the process.
fn open_redis(url: &str) -> Result<Outbox, CliError> {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    let Some((server, queue)) = url.split_once('#').filter(|(_, q)| !q.is_empty()) else {
        return Err(CliError::usage(format!(
            "{url}: name the queue after a #: redis://HOST:PORT#QUEUE"
        )));
    };
    let (server, partitions) = match server.split_once("?partitions=") {
        Some((s, p)) => (
            s,
            p.parse::<u16>()
                .map_err(|_| CliError::usage(format!("{url}: partitions must be a number")))?,
        ),
        None => (server, 1),
    };
    let runtime = RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .ok()
        })
        .as_ref()
        .ok_or_else(|| CliError::new(Exit::Io, "cannot start the async runtime"))?;
    let cfg = crate::redis_cmd::RedisTlsArgs::from_env()
        .apply(webhook_redis::RedisQueueConfig::new(server, queue).partitions(partitions))?;
    let queue = runtime.block_on(crate::redis_cmd::connect(cfg))?;
    Ok(Outbox::from_store(std::sync::Arc::new(queue)))
}

/// `1.5 KiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// `2h 5m`, `3m 12s`, `4.2 s`, `120 ms`.
pub(crate) fn age(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 86_400 {
        format!("{}d {}h", s / 86_400, s % 86_400 / 3600)
    } else if s >= 3600 {
        format!("{}h {}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m {}s", s / 60, s % 60)
    } else if s >= 1 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

fn filter(
    endpoint: Option<&String>,
    ids: &[u64],
    since: Option<TimeArg>,
    until: Option<TimeArg>,
    now: SystemTime,
) -> Filter {
    let mut f = Filter::all();
    if let Some(e) = endpoint {
        f = f.endpoint(e.clone());
    }
    if !ids.is_empty() {
        f = f.ids(ids.iter().copied());
    }
    if let Some(t) = since {
        f = f.since(t.resolve(now));
    }
    if let Some(t) = until {
        f = f.until(t.resolve(now));
    }
    f
}

fn entry_json(d: &DeadLetterEntry) -> Value {
    json!({
        "id": d.id,
        "endpoint": d.endpoint,
        "event_id": d.event_id,
        "type": d.subject,
        "dead_at": rfc3339::format(d.dead_at),
        "reason": d.reason,
        "attempts": d.attempt_count,
    })
}

/// Runs `outbox`.
pub(crate) fn run(args: OutboxArgs, no_color: bool) -> Result<Exit, CliError> {
    let s = Style::stdout(no_color);
    let now = SystemTime::now();
    match args.command {
        OutboxCommand::Status(a) => status(&a, s),
        OutboxCommand::List(a) => {
            let outbox = open_existing(&a.dir)?;
            let f = filter(a.endpoint.as_ref(), &[], a.since, a.until, now);
            let entries = outbox.dead_letters(&f, a.limit);
            for d in &entries {
                if a.json {
                    println!("{}", entry_json(d));
                } else {
                    println!(
                        "{}  {}  {}  {}  {}  {} attempt(s)  {}",
                        s.bold(&format!("#{}", d.id)),
                        rfc3339::format(d.dead_at),
                        s.cyan(&d.endpoint),
                        d.event_id,
                        d.subject,
                        d.attempt_count,
                        s.red(&style::truncate(&d.reason, 160))
                    );
                }
            }
            if !a.json && entries.is_empty() {
                println!("no dead letters match");
            }
            Ok(Exit::Ok)
        }
        OutboxCommand::Show(a) => show(&a, s),
        OutboxCommand::Redeliver(a) => change(&a, s, now, true),
        OutboxCommand::Purge(a) => change(&a, s, now, false),
    }
}

fn status(a: &StatusArgs, s: Style) -> Result<Exit, CliError> {
    let outbox = open_existing(&a.dir)?;
    let st = outbox.stats();
    let saved = outbox.registry().map_err(|e| outbox_error(&e, &a.dir))?;
    let r = &st.recovery;
    if a.json {
        let endpoints: Vec<Value> = saved
            .iter()
            .flat_map(|snap| &snap.endpoints)
            .map(|e| json!({"name": e.name, "url": e.url, "auth": e.auth.kind(), "paused": e.paused}))
            .collect();
        let line = json!({
            "dir": shown(&a.dir),
            "pending": st.pending,
            "pending_by_endpoint": st.pending_by_endpoint.iter().map(|(n, c)| (n.clone(), *c)).collect::<std::collections::BTreeMap<_, _>>(),
            "backlog_bytes": st.backlog_bytes,
            "segments": st.segments,
            "oldest_pending_seconds": st.oldest_pending_age.map(|d| d.as_secs_f64()),
            "dead_letters": st.dead_letters,
            "dead_letter_bytes": st.dead_letter_bytes,
            "failed": st.failed,
            "endpoints": endpoints,
            "recovery": {
                "pending": r.pending,
                "segments": r.segments,
                "cut_bytes": r.cut_bytes,
                "corrupt_segments": r.corrupt_segments,
                "malformed_records": r.malformed_records,
                "lost_events": r.lost_events,
                "seconds": r.took.as_secs_f64(),
            },
        });
        println!("{line}");
        return Ok(Exit::Ok);
    }
    println!("{} {}", s.bold("outbox"), shown(&a.dir));
    let per: Vec<String> = st
        .pending_by_endpoint
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name}: {n}"))
        .collect();
    let pending = if st.pending == 0 {
        s.green("0")
    } else {
        s.yellow(&st.pending.to_string())
    };
    println!(
        "  pending       {pending} event(s){}",
        if per.is_empty() {
            String::new()
        } else {
            format!(" ({})", per.join(", "))
        }
    );
    println!(
        "  backlog       {} in {} segment(s){}",
        bytes(st.backlog_bytes),
        st.segments,
        st.oldest_pending_age
            .map(|d| format!(", oldest pending {} ago", age(d)))
            .unwrap_or_default()
    );
    let dead = if st.dead_letters == 0 {
        s.green("0")
    } else {
        s.red(&st.dead_letters.to_string())
    };
    println!(
        "  dead letters  {dead} ({}){}",
        bytes(st.dead_letter_bytes),
        if st.dead_letters > 0 {
            format!("  see: webhook outbox list {}", shown(&a.dir))
        } else {
            String::new()
        }
    );
    match &saved {
        Some(snap) if !snap.endpoints.is_empty() => {
            println!("  endpoints     {}", crate::target::describe(snap));
        }
        _ => println!("  endpoints     none saved (pass --endpoint or --config to send)"),
    }
    let damage =
        r.cut_bytes > 0 || r.corrupt_segments > 0 || r.malformed_records > 0 || r.lost_events > 0;
    let recovered = format!(
        "{} pending in {} segment(s), opened in {}; cut {} byte(s), {} corrupt segment(s), \
         {} malformed record(s), {} event(s) lost",
        r.pending,
        r.segments,
        age(r.took),
        r.cut_bytes,
        r.corrupt_segments,
        r.malformed_records,
        r.lost_events
    );
    println!(
        "  recovery      {}",
        if damage {
            s.yellow(&recovered)
        } else {
            recovered
        }
    );
    if let Some(f) = &st.failed {
        println!("  {} intake stopped after a write failed: {f}", s.red("✗"));
    }
    if st.pending > 0 {
        println!(
            "  deliver what it holds: webhook send --outbox {}",
            shown(&a.dir)
        );
    }
    Ok(Exit::Ok)
}

fn show(a: &ShowArgs, s: Style) -> Result<Exit, CliError> {
    let outbox = open_existing(&a.dir)?;
    let d = outbox
        .dead_letter(a.id)
        .map_err(|e| outbox_error(&e, &a.dir))?
        .ok_or_else(|| {
            CliError::new(
                Exit::Negative,
                format!("no dead letter #{} in {}", a.id, shown(&a.dir)),
            )
            .hint(format!(
                "list them with: webhook outbox list {}",
                shown(&a.dir)
            ))
        })?;
    let event: Value = d
        .event
        .as_ref()
        .map(|e| {
            serde_json::from_slice(e.body())
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(e.body()).into_owned()))
        })
        .unwrap_or(Value::Null);
    // An inbox message: the request it holds, not its stored envelope.
    let event = match d.event.as_ref() {
        Some(e) if d.endpoint == webhook_receiver::inbox::INBOX_ENDPOINT => {
            webhook_receiver::inbox::stored_request(e).map_or(event, |cx| request_json(&cx))
        }
        _ => event,
    };
    if a.json {
        let mut line = entry_json(&d);
        if let Some(obj) = line.as_object_mut() {
            obj.insert("batch_id".into(), json!(d.batch_id));
            obj.insert("event".into(), event);
            obj.insert(
                "attempt_log".into(),
                d.attempts
                    .iter()
                    .map(|at| {
                        json!({
                            "at": rfc3339::format_ms(at.at_ms),
                            "status": at.status,
                            "latency_ms": at.latency.as_secs_f64() * 1000.0,
                            "error": at.error,
                        })
                    })
                    .collect::<Value>(),
            );
        }
        println!("{line}");
        return Ok(Exit::Ok);
    }
    println!(
        "{} {}",
        s.bold(&format!("dead letter #{}", d.id)),
        s.dim(&shown(&a.dir))
    );
    println!("  endpoint  {}", s.cyan(&d.endpoint));
    println!("  event     {} ({})", d.event_id, d.subject);
    if let Some(b) = &d.batch_id {
        println!("  batch     {b} (its webhook-id)");
    }
    println!("  given up  {}", rfc3339::format(d.dead_at));
    println!("  reason    {}", s.red(&d.reason));
    println!(
        "  attempts  {}{}",
        d.attempt_count,
        if d.attempts.len() < d.attempt_count as usize {
            format!(" (the last {} kept)", d.attempts.len())
        } else {
            String::new()
        }
    );
    for (i, at) in d.attempts.iter().enumerate() {
        let status = at
            .status
            .map_or_else(|| "---".to_owned(), |c| c.to_string());
        println!(
            "    {:>2}  {}  {}  {:>8}  {}",
            i + 1,
            rfc3339::format_ms(at.at_ms),
            if at.status.is_some_and(|c| (200..300).contains(&c)) {
                s.green(&status)
            } else {
                s.red(&status)
            },
            age(at.latency),
            if at.error.is_empty() { "ok" } else { &at.error }
        );
    }
    println!("  event JSON:");
    let pretty = serde_json::to_string_pretty(&event).unwrap_or_else(|_| event.to_string());
    for line in pretty.lines() {
        println!("    {line}");
    }
    Ok(Exit::Ok)
}

/// A stored request as JSON: method, URI, headers, peer, times, and the body (JSON when it
/// is, else text).
fn request_json(cx: &webhook_receiver::Context) -> Value {
    let headers: serde_json::Map<String, Value> = cx
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
    let body = serde_json::from_slice::<Value>(cx.body())
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(cx.body()).into_owned()));
    json!({
        "method": cx.method().as_str(),
        "uri": cx.uri().to_string(),
        "message_id": cx.message_id(),
        "received_at": rfc3339::format(cx.received_at()),
        "remote": cx.remote_addr().map(|r| r.to_string()),
        "headers": headers,
        "body": body,
    })
}

fn change(a: &ChangeArgs, s: Style, now: SystemTime, redeliver: bool) -> Result<Exit, CliError> {
    let outbox = open_existing(&a.dir)?;
    let f = filter(a.endpoint.as_ref(), &a.ids, a.since, a.until, now);
    let done = if redeliver {
        outbox.redeliver(&f)
    } else {
        outbox.purge(&f)
    }
    .map_err(|e| outbox_error(&e, &a.dir))?;
    outbox.flush().map_err(|e| outbox_error(&e, &a.dir))?;
    let verb = if redeliver { "redelivered" } else { "purged" };
    if a.json {
        println!(
            "{}",
            json!({ verb: done, "dead_letters": outbox.stats().dead_letters })
        );
        return Ok(Exit::Ok);
    }
    if done == 0 {
        println!("no dead letters match: nothing {verb}");
    } else if redeliver {
        println!(
            "{} {done} dead letter(s): back among the pending events; deliver them with: \
             {} {}",
            s.green(verb),
            if a.dir.to_str().is_some_and(is_redis) {
                "webhook worker --redis URL --queue NAME, as"
            } else {
                "webhook send --outbox"
            },
            shown(&a.dir)
        );
    } else {
        println!("{} {done} dead letter(s)", s.green(verb));
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages_read_well() {
        assert_eq!(bytes(10), "10 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(age(Duration::from_millis(120)), "120 ms");
        assert_eq!(age(Duration::from_millis(4200)), "4.2 s");
        assert_eq!(age(Duration::from_secs(192)), "3m 12s");
        assert_eq!(age(Duration::from_secs(7500)), "2h 5m");
        assert_eq!(age(Duration::from_secs(90_000)), "1d 1h");
    }

    #[test]
    fn a_held_lock_names_the_pid_with_its_own_exit_code() {
        let e = OutboxError::Locked {
            dir: PathBuf::from("/x"),
            pid: Some(42),
        };
        let cli = outbox_error(&e, Path::new("/x"));
        assert_eq!(cli.exit, Exit::Locked);
        assert!(cli.cause.contains("process 42"), "{}", cli.cause);
    }

    #[test]
    fn a_missing_directory_is_not_created() {
        let dir =
            std::env::temp_dir().join(format!("webhook-cli-no-outbox-{}", std::process::id()));
        let err = open_existing(&dir).unwrap_err();
        assert_eq!(err.exit, Exit::Io);
        assert!(!dir.exists());
    }
}
