//! `enqueue` and `worker`: a queue on Redis Streams shared by many processes (the
//! `webhook-redis` crate). `enqueue` appends events and exits; any number of `worker`
//! processes deliver them, to one endpoint each or (`--registry`) to every endpoint of the
//! queue's shared registry, as one consumer group per endpoint.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use webhook_core::{BatcherConfig, Concurrency, RetryPolicy, TimestampFormat};
use webhook_redis::{RedisQueue, RedisQueueConfig, SharedRegistry};
use webhook_sender::outbox::{Outbox, OutboxError};
use webhook_sender::registry::AuthSpec;
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{
    AuditAction, AuditTarget, EndpointConfig, EndpointSpec, OverflowPolicy, Sender, SpecError,
};

use crate::cli::TargetArgs;
use crate::error::{CliError, Exit, chain};
use crate::parse;

pub(crate) const ENQUEUE_HELP: &str = "\
Append events to a queue on Redis Streams and exit once Redis has every one of them. Any number
of `webhook worker` processes deliver them (each endpoint reads the whole queue as one consumer
group; the workers of one endpoint share its events).

Example:
  webhook enqueue --redis redis://127.0.0.1:6379 --queue orders --file events.ndjson";

pub(crate) const WORKER_HELP: &str = "\
Deliver the events of a queue on Redis Streams to one endpoint until SIGTERM or Ctrl-C, then
finish the requests in flight (for at most --drain), hand what it still holds back to the other
workers and exit. Run as many as needed, on any machine: the workers of one endpoint (one
consumer group, named by --name) share its events; a worker that dies leaves its events to the
others after --lease; an event handed out more than --max-receives times goes to the queue's
dead letters (see `webhook outbox list --redis URL --queue NAME`).

With --registry the worker delivers to every endpoint of the queue's shared registry instead
(kept in Redis, changed with `webhook endpoints` or by any sender sharing it): endpoints added,
changed, paused, resumed or removed later are picked up within a second, and each change is
printed. The transport flags (--allow-private, --ca, --cert/--key, --insecure, --timeout) apply
to every endpoint; the batching, retry and concurrency flags to those whose spec has none.

With --spread the workers started with it share the endpoints' partitions instead of each
reading all of them: every (endpoint, partition) pair is read by one live worker (rendezvous
hashing), and the pairs of a worker that stops or dies move to the others within about 3 s
(what it held is reclaimed after --lease). That cuts Redis's blocked readers from
workers x endpoints x partitions to endpoints x partitions; without it, many workers can
share one slow endpoint's partition. Use --partitions >= the number of workers.

Examples:
  webhook worker --redis redis://127.0.0.1:6379 --queue orders \\
      --endpoint https://siem.example/in --secret whsec_...

  webhook endpoints --redis redis://127.0.0.1:6379 --queue orders add siem https://siem.example/in \\
      --secret whsec_...
  webhook worker --redis redis://127.0.0.1:6379 --queue orders --partitions 8 --registry --spread";

/// Where the queue is: shared by `enqueue`, `worker` and `outbox`.
#[derive(Debug, Clone, Args)]
pub(crate) struct QueueArgs {
    /// The Redis server (redis://HOST:PORT[/DB]).
    #[arg(long, value_name = "URL", env = "WEBHOOK_REDIS_URL")]
    pub(crate) redis: Option<String>,

    /// The queue's name.
    #[arg(long, value_name = "NAME", requires = "redis")]
    pub(crate) queue: Option<String>,

    /// Streams the queue is split into (every process of a queue must use the same number;
    /// the first to connect records it).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) partitions: u16,

    /// Count an append (and a retry or dead letter a worker writes) as done only once N
    /// replicas of its primary hold it (Redis WAIT, up to --replicas-timeout per try): what
    /// `enqueue` reports written then survives a failover. While a primary has fewer than N
    /// replicas in sync, its writes wait.
    #[arg(long, value_name = "N")]
    pub(crate) replicas: Option<u32>,

    /// How long one WAIT for --replicas lasts before the write is tried again.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::parse::duration, requires = "replicas")]
    pub(crate) replicas_timeout: Duration,

    #[command(flatten)]
    pub(crate) tls: RedisTlsArgs,
}

/// TLS settings for a `rediss://` server (which alone encrypts and verifies the server
/// against the system's roots).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct RedisTlsArgs {
    /// Verify a rediss:// server against this CA (PEM) instead of the system's roots.
    #[arg(long, value_name = "FILE", env = "WEBHOOK_REDIS_CA")]
    pub(crate) redis_ca: Option<PathBuf>,

    /// Present this client certificate (PEM) to a server that requires one
    /// (tls-auth-clients yes); with --redis-key.
    #[arg(
        long,
        value_name = "FILE",
        env = "WEBHOOK_REDIS_CERT",
        requires = "redis_key"
    )]
    pub(crate) redis_cert: Option<PathBuf>,

    /// The client certificate's key (PEM).
    #[arg(
        long,
        value_name = "FILE",
        env = "WEBHOOK_REDIS_KEY",
        requires = "redis_cert"
    )]
    pub(crate) redis_key: Option<PathBuf>,
}

impl RedisTlsArgs {
    /// The same settings from the environment alone (`webhook outbox`, whose queue is one
    /// argument).
    pub(crate) fn from_env() -> Self {
        let var = |k: &str| std::env::var_os(k).map(PathBuf::from);
        Self {
            redis_ca: var("WEBHOOK_REDIS_CA"),
            redis_cert: var("WEBHOOK_REDIS_CERT"),
            redis_key: var("WEBHOOK_REDIS_KEY"),
        }
    }

    /// The files read, if any was named.
    pub(crate) fn tls(&self) -> Result<Option<webhook_redis::RedisTls>, CliError> {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|e| CliError::usage(format!("{}: {e}", p.display())))
        };
        let mut tls = webhook_redis::RedisTls::new();
        let mut any = false;
        if let Some(ca) = &self.redis_ca {
            tls = tls.root_ca_pem(read(ca)?);
            any = true;
        }
        match (&self.redis_cert, &self.redis_key) {
            (Some(cert), Some(key)) => {
                tls = tls.client_cert_pem(read(cert)?, read(key)?);
                any = true;
            }
            (None, None) => {}
            _ => {
                return Err(CliError::usage(
                    "name both WEBHOOK_REDIS_CERT and WEBHOOK_REDIS_KEY, or neither",
                ));
            }
        }
        Ok(any.then_some(tls))
    }

    /// `cfg` with these settings.
    pub(crate) fn apply(&self, cfg: RedisQueueConfig) -> Result<RedisQueueConfig, CliError> {
        Ok(match self.tls()? {
            Some(t) => cfg.tls(t),
            None => cfg,
        })
    }
}

impl QueueArgs {
    pub(crate) fn config(&self) -> Result<RedisQueueConfig, CliError> {
        let (Some(url), Some(queue)) = (&self.redis, &self.queue) else {
            return Err(CliError::usage("pass --redis URL and --queue NAME"));
        };
        let cfg = self
            .tls
            .apply(RedisQueueConfig::new(url, queue).partitions(self.partitions))?;
        Ok(match self.replicas {
            Some(n) => cfg.replicas(n, self.replicas_timeout),
            None => cfg,
        })
    }
}

/// `listen --replay-redis`: a replay cache shared with other receivers.
#[derive(Debug, Clone, Args)]
pub(crate) struct ReplayRedisArgs {
    /// Share the replay cache with every receiver pointed at this Redis server
    /// (redis://HOST:PORT[/DB]): a replay sent to any of them is refused once any of them saw
    /// the message. When Redis cannot be reached, requests are refused with 503 (see
    /// --replay-fail-open).
    #[arg(long, value_name = "URL")]
    pub(crate) replay_redis: Option<String>,

    /// The prefix of the shared cache's keys (receivers that share ids use the same).
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "whk:replay:",
        requires = "replay_redis"
    )]
    pub(crate) replay_prefix: String,

    /// When Redis cannot be reached, accept requests unchecked (a warning each time) rather
    /// than refuse them with 503.
    #[arg(long, requires = "replay_redis")]
    pub(crate) replay_fail_open: bool,

    #[command(flatten)]
    pub(crate) tls: RedisTlsArgs,
}

/// The shared replay store of `listen --replay-redis`, if asked for.
pub(crate) async fn replay_store(
    a: &ReplayRedisArgs,
) -> Result<Option<Arc<dyn webhook_receiver::ReplayStore>>, CliError> {
    let Some(url) = &a.replay_redis else {
        return Ok(None);
    };
    let store = match a.tls.tls()? {
        Some(tls) => {
            webhook_redis::RedisReplayStore::connect_tls(url, a.replay_prefix.clone(), &tls).await
        }
        None => webhook_redis::RedisReplayStore::connect(url, a.replay_prefix.clone()).await,
    }
    .map_err(|e| redis_error(&e))?
    .fail_mode(if a.replay_fail_open {
        webhook_redis::ReplayFailMode::Open
    } else {
        webhook_redis::ReplayFailMode::Closed
    });
    Ok(Some(Arc::new(store)))
}

/// The length limit's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OverflowArg {
    /// Wait for room.
    Block,
    /// Drop the event being appended.
    DropNewest,
    /// Trim the oldest entries.
    DropOldest,
}

/// `enqueue`.
#[derive(Debug, Args)]
pub(crate) struct EnqueueArgs {
    #[command(flatten)]
    pub(crate) queue: QueueArgs,

    /// Events: NDJSON or one JSON array.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub(crate) file: PathBuf,

    /// Most entries one partition may hold.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub(crate) max_len: u64,

    /// What to do at --max-len.
    #[arg(long, value_enum, default_value = "block")]
    pub(crate) overflow: OverflowArg,

    /// Keep the events in this local outbox directory first (created when missing) and
    /// forward them to Redis from there: with Redis unreachable they wait on disk instead of
    /// failing, and the next `enqueue --spool DIR` forwards what is left first.
    #[arg(long, value_name = "DIR")]
    pub(crate) spool: Option<PathBuf>,

    /// With --spool: how long to keep forwarding before exiting (what is left stays spooled).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse::duration, requires = "spool")]
    pub(crate) forward_for: Duration,

    /// Print the summary as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `worker`.
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    pub(crate) queue: QueueArgs,

    #[command(flatten)]
    pub(crate) target: TargetArgs,

    /// The endpoint's consumer group [default: derived from the URL, e.g.
    /// `siem.example-in`]. Workers of one endpoint must use the same name.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,

    /// This worker's consumer name [default: pid-random].
    #[arg(long, value_name = "NAME")]
    pub(crate) consumer: Option<String>,

    /// How long an event handed to this worker stays its own without a renewal (renewed
    /// every third of it while the worker lives).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse::duration)]
    pub(crate) lease: Duration,

    /// Times an event may be handed out before it goes to the dead letters.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub(crate) max_receives: u32,

    /// Most events in one request.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub(crate) max_events: usize,

    /// Largest request body.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse::size)]
    pub(crate) max_bytes: usize,

    /// How long a batch waits for more events before it is sent.
    #[arg(long, value_name = "DURATION", default_value = "20ms", value_parser = parse::duration)]
    pub(crate) linger: Duration,

    /// Keep retrying a failed delivery for this long, then give it up into the dead letters.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse::duration)]
    pub(crate) retry_for: Duration,

    /// Also give up after this many retries [default: no limit within --retry-for].
    #[arg(long, value_name = "N")]
    pub(crate) retries: Option<u32>,

    /// First retry delay (doubles each time, with jitter).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse::duration)]
    pub(crate) retry_delay: Duration,

    /// Longest delay between retries.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse::duration)]
    pub(crate) retry_max_delay: Duration,

    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub(crate) concurrency: usize,

    /// How long to wait for requests in flight after SIGTERM or Ctrl-C.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse::duration)]
    pub(crate) drain: Duration,

    /// Deliver to every endpoint of the queue's shared registry (see `webhook endpoints`) and
    /// follow its changes, instead of one endpoint given by --endpoint/--config.
    #[arg(long, conflicts_with = "name")]
    pub(crate) registry: bool,

    /// Share the endpoints' partitions with the other workers started with --spread: each
    /// (endpoint, partition) is read by one live worker, and moves when a worker stops or dies.
    #[arg(long)]
    pub(crate) spread: bool,

    /// Print the summary as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn redis_error(e: &webhook_redis::RedisQueueError) -> CliError {
    CliError::network(format!("redis: {}", chain(e)))
        .hint("is redis-server running at --redis URL?")
}

/// Connects, printing the server check's warnings.
pub(crate) async fn connect(cfg: RedisQueueConfig) -> Result<RedisQueue, CliError> {
    let q = RedisQueue::connect(cfg)
        .await
        .map_err(|e| redis_error(&e))?;
    for w in q.warnings() {
        eprintln!("warning: {w}");
    }
    Ok(q)
}

/// `webhook enqueue`.
pub(crate) async fn enqueue(args: EnqueueArgs) -> Result<Exit, CliError> {
    let input = crate::events::read_input(&args.file)?;
    let events = crate::events::parse(&input, None)?;
    let policy = match args.overflow {
        OverflowArg::Block => OverflowPolicy::Block,
        OverflowArg::DropNewest => OverflowPolicy::DropNewest,
        OverflowArg::DropOldest => OverflowPolicy::DropOldest,
    };
    let cfg = args.queue.config()?.max_len(args.max_len).overflow(policy);
    if let Some(dir) = &args.spool {
        return enqueue_spooled(&args, dir, cfg, &events).await;
    }
    let queue = connect(cfg).await?;
    let started = std::time::Instant::now();
    let mut dropped = 0u64;
    for e in &events {
        loop {
            match queue.enqueue_nowait(e) {
                Ok(()) => break,
                Err(OutboxError::Full) if policy == OverflowPolicy::Block => {
                    let space = webhook_sender::outbox::OutboxStore::space(&queue);
                    let _ =
                        tokio::time::timeout(Duration::from_millis(500), space.notified()).await;
                }
                Err(OutboxError::Full) => {
                    dropped += 1;
                    break;
                }
                Err(other) => return Err(CliError::network(chain(&other))),
            }
        }
    }
    queue
        .flush()
        .await
        .map_err(|e| CliError::network(chain(&e)))?;
    let took = started.elapsed();
    queue.close().await;
    let n = events.len() as u64 - dropped;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "enqueued": n,
                "dropped": dropped,
                "queue": args.queue.queue,
                "seconds": took.as_secs_f64(),
            })
        );
    } else {
        println!(
            "enqueued {n} event(s) to queue {} in {:.2}s{}",
            args.queue.queue.as_deref().unwrap_or_default(),
            took.as_secs_f64(),
            if dropped > 0 {
                format!(" ({dropped} dropped at --max-len)")
            } else {
                String::new()
            }
        );
    }
    Ok(if dropped > 0 {
        Exit::Negative
    } else {
        Exit::Ok
    })
}

/// `enqueue --spool DIR`: to disk first, then forwarded for at most `--forward-for`.
async fn enqueue_spooled(
    args: &EnqueueArgs,
    dir: &std::path::Path,
    cfg: RedisQueueConfig,
    events: &[webhook_core::Event],
) -> Result<Exit, CliError> {
    let spool =
        webhook_redis::SpooledQueue::open(webhook_sender::outbox::OutboxConfig::new(dir), cfg)
            .map_err(|e| crate::outbox_cmd::outbox_error(&e, dir))?;
    let before = spool.spooled();
    for e in events {
        spool
            .enqueue(e)
            .map_err(|e| crate::outbox_cmd::outbox_error(&e, dir))?;
    }
    let left = spool.drain(args.forward_for).await;
    let forwarded = spool.forwarded();
    spool.close().await;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "spooled": events.len(),
                "held_before": before,
                "forwarded": forwarded,
                "left_in_spool": left,
                "queue": args.queue.queue,
            })
        );
    } else {
        println!(
            "spooled {} event(s) in {}; {forwarded} forwarded to queue {}{}",
            events.len(),
            dir.display(),
            args.queue.queue.as_deref().unwrap_or_default(),
            if left > 0 {
                format!("; {left} still spooled (redis unreachable?): run again to forward them")
            } else {
                String::new()
            }
        );
    }
    Ok(if left > 0 { Exit::Negative } else { Exit::Ok })
}

/// A consumer group name from an endpoint URL: host, port and path, with every other
/// character a `-`.
pub(crate) fn name_from_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let mut out = String::new();
    for c in rest.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_owned();
    if out.is_empty() {
        "endpoint".to_owned()
    } else {
        out
    }
}

fn retry_policy(a: &WorkerArgs) -> Result<RetryPolicy, CliError> {
    crate::send::retry_window(a.retry_delay, a.retry_max_delay, a.retry_for, a.retries)
}

/// The queue settings of a worker.
fn worker_config(args: &WorkerArgs) -> Result<RedisQueueConfig, CliError> {
    let mut cfg = args
        .queue
        .config()?
        .lease(args.lease)
        .max_receives(args.max_receives)
        .spread(args.spread)
        .shared_registry(args.registry)
        // Whole batches per read: a read of 64 for batches of 20 would leave a batch of 4.
        .fetch(
            args.max_events
                .max(1)
                .saturating_mul(args.concurrency.max(1))
                .saturating_mul(2),
        );
    if let Some(c) = &args.consumer {
        cfg = cfg.consumer(c);
    }
    Ok(cfg)
}

fn batching_of(args: &WorkerArgs) -> Result<BatcherConfig, CliError> {
    BatcherConfig::builder()
        .max_events(args.max_events)
        .max_bytes(args.max_bytes)
        .linger(args.linger)
        .build()
        .map_err(|e| CliError::config(format!("batching: {e}")))
}

/// `webhook worker`.
pub(crate) async fn worker(args: WorkerArgs) -> Result<Exit, CliError> {
    let interrupt = crate::signal::interrupt()
        .map_err(|e| CliError::io("cannot listen for SIGTERM/Ctrl-C", &e))?;
    if args.registry {
        return registry_worker(args, interrupt).await;
    }
    let target = crate::target::build(&args.target)?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| name_from_url(&target.url));
    let queue = connect(worker_config(&args)?).await?;
    let batching = batching_of(&args)?;
    let mut endpoint = EndpointConfig::builder(name.as_str(), target.endpoint.clone())
        .batching(batching)
        .retry(retry_policy(&args)?)
        .concurrency(Concurrency::Fixed(args.concurrency.max(1)))
        .transport(target.transport.clone());
    if let Some(tokens) = target.tokens.clone() {
        endpoint = endpoint.token_provider(tokens);
    }
    let endpoint = endpoint.build().map_err(|e| CliError::config(chain(&e)))?;
    let sender = Sender::builder()
        .outbox_open(Outbox::from_store(Arc::new(queue.clone())))
        .endpoint(endpoint)
        .build()
        .map_err(|e| crate::target::build_error(&e))?;
    eprintln!(
        "worker {} delivering queue {} to {} as group {name} ({}); SIGTERM or Ctrl-C to stop",
        queue.consumer(),
        args.queue.queue.as_deref().unwrap_or_default(),
        target.url,
        target.auth_label,
    );
    let printer = print_reading(&queue);
    interrupt.await;
    printer.abort();
    finish(&args, &sender, &queue, &name).await
}

/// Prints the pairs this worker reads whenever they change (with --spread).
fn print_reading(queue: &RedisQueue) -> tokio::task::JoinHandle<()> {
    let queue = queue.clone();
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let now = queue.reading();
            if now.is_some() && now != last {
                let pairs: Vec<String> = now
                    .iter()
                    .flatten()
                    .map(|(g, p)| format!("{g}/{p}"))
                    .collect();
                eprintln!(
                    "reading {} pair(s): {}",
                    pairs.len(),
                    if pairs.is_empty() {
                        "none".to_owned()
                    } else {
                        pairs.join(" ")
                    }
                );
                last = now;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Refuses the flags that describe one endpoint (with --registry the endpoints come from
/// Redis).
fn refuse_endpoint_flags(t: &TargetArgs) -> Result<(), CliError> {
    let flag = crate::target::one_endpoint_flag(t)
        .or_else(|| t.config.is_some().then_some("--config"))
        .or_else(|| t.timestamp_format.is_some().then_some("--timestamp-format"));
    match flag {
        Some(flag) => Err(CliError::usage(format!(
            "{flag} describes one endpoint, but --registry delivers to the endpoints of the shared registry"
        ))
        .hint("change an endpoint with `webhook endpoints add NAME URL --replace ...`, or drop --registry")),
        None => Ok(()),
    }
}

/// `webhook worker --registry`: every endpoint of the shared registry, followed.
async fn registry_worker(
    args: WorkerArgs,
    interrupt: impl Future<Output = ()>,
) -> Result<Exit, CliError> {
    let t = &args.target;
    refuse_endpoint_flags(t)?;
    let queue = connect(worker_config(&args)?).await?;
    let cert = match (&t.cert, &t.key) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        _ => None,
    };
    let verifying = crate::target::transport(
        t.insecure,
        t.ca.as_deref(),
        cert,
        t.allow_private,
        t.timeout,
    )?;
    let insecure =
        crate::target::transport(true, t.ca.as_deref(), cert, t.allow_private, t.timeout)?;
    let batching = batching_of(&args)?;
    let retry = retry_policy(&args)?;
    let concurrency = Concurrency::Fixed(args.concurrency.max(1));
    // What data cannot hold comes from the flags: the transport, and the batching, retry and
    // concurrency of a spec that has none.
    let build = move |spec: &EndpointSpec| -> Result<EndpointConfig, SpecError> {
        match spec.timestamp_format {
            None | Some(TimestampFormat::Nanoseconds) => {}
            Some(format) => {
                return Err(SpecError::TimestampFormat {
                    endpoint: spec.name.clone(),
                    format,
                });
            }
        }
        let mtls = matches!(spec.auth, AuthSpec::ClientCertificate(_));
        let mut b = spec.config_builder()?;
        match (spec.insecure, mtls) {
            (true, true) => {
                return Err(SpecError::Insecure {
                    endpoint: spec.name.clone(),
                });
            }
            (true, false) => b = b.transport(insecure.clone()),
            // mTLS endpoints get a transport of their own presenting their certificate.
            (false, true) => {}
            (false, false) => b = b.transport(verifying.clone()),
        }
        if spec.batching.is_none() {
            b = b.batching(batching.clone());
        }
        if spec.retry.is_none() {
            b = b.retry(retry.clone());
        }
        if spec.concurrency.is_none() {
            b = b.concurrency(concurrency);
        }
        spec.build(b)
    };
    let sender = Sender::builder()
        .transport_builder(
            TransportBuilder::new()
                .ssrf(crate::target::ssrf_policy(t.allow_private))
                .timeout(t.timeout),
        )
        .outbox_open(Outbox::from_store(Arc::new(queue.clone())))
        .build()
        .map_err(|e| crate::target::build_error(&e))?;
    let mut audit = sender.audit();
    let watch = SharedRegistry::new(&queue)
        .endpoint_builder(build)
        .watch(&sender)
        .map_err(|e| CliError::config(chain(&e)))?;
    let _ = tokio::time::timeout(Duration::from_secs(5), watch.synced()).await;
    let names: Vec<String> = sender
        .statuses()
        .iter()
        .map(|s| s.endpoint.to_string())
        .collect();
    eprintln!(
        "worker {} delivering queue {} to the shared registry's {} endpoint(s){}{}; SIGTERM or Ctrl-C to stop",
        queue.consumer(),
        args.queue.queue.as_deref().unwrap_or_default(),
        names.len(),
        if names.is_empty() {
            String::new()
        } else {
            format!(": {}", names.join(", "))
        },
        if args.spread { ", spreading" } else { "" },
    );
    let changes = tokio::spawn(async move {
        while let Some(e) = audit.recv().await {
            let target = match &e.target {
                AuditTarget::Endpoint(n) => format!("endpoint {n}"),
                AuditTarget::EventSet(n) => format!("event set {n}"),
                _ => "registry".to_owned(),
            };
            let action = match &e.action {
                AuditAction::Removed { .. } => "removed".to_owned(),
                other => format!("{other:?}").to_lowercase(),
            };
            eprintln!("registry: {target} {action} (by {})", e.actor);
        }
    });
    let printer = print_reading(&queue);
    interrupt.await;
    printer.abort();
    changes.abort();
    drop(watch);
    finish(&args, &sender, &queue, "registry").await
}

/// Stops (after SIGTERM or Ctrl-C) and prints the summary.
async fn finish(
    args: &WorkerArgs,
    sender: &Sender,
    queue: &RedisQueue,
    name: &str,
) -> Result<Exit, CliError> {
    eprintln!(
        "stopping: finishing the requests in flight (at most {:?})",
        args.drain
    );
    let report = sender.shutdown(args.drain).await;
    queue.close().await;
    let c = queue.counters();
    let delivered: u64 = sender.health().iter().map(|h| h.counters.delivered).sum();
    let undelivered = report.undelivered_events();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "consumer": queue.consumer(),
                "group": name,
                "delivered": delivered,
                "read": c.read,
                "reclaimed": c.reclaimed,
                "dead_by_receives": c.dead_by_receives,
                "handed_back": undelivered,
                "groups_recreated": c.groups_recreated,
                "redis_errors": c.redis_errors,
            })
        );
    } else {
        println!(
            "worker {}: {delivered} event(s) delivered, {} read, {} reclaimed from dead workers, {} dead-lettered at the receive limit, {undelivered} handed back",
            queue.consumer(),
            c.read,
            c.reclaimed,
            c.dead_by_receives,
        );
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_derive_from_the_url() {
        assert_eq!(
            name_from_url("https://siem.example/in?x=1"),
            "siem.example-in"
        );
        assert_eq!(
            name_from_url("http://127.0.0.1:8080/hooks/a"),
            "127.0.0.1-8080-hooks-a"
        );
        assert_eq!(name_from_url("http://"), "endpoint");
    }
}
