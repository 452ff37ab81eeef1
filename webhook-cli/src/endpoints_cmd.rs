//! `endpoints`: the endpoint registry a queue shares through Redis (the `webhook-redis`
//! crate's `SharedRegistry`): list it with the live workers, add, remove, pause and resume
//! endpoints. Every `webhook worker --registry` of the queue applies a change within a second.

use clap::{Args, Subcommand};
use webhook_redis::{RegistrySyncError, SharedRegistry};

use crate::cli::TargetArgs;
use crate::error::{CliError, Exit, chain};
use crate::redis_cmd::QueueArgs;

pub(crate) const ENDPOINTS_HELP: &str = "\
List and change the endpoints a queue on Redis Streams shares through Redis: every
`webhook worker --registry` of the queue (and every sender sharing its registry) applies a
change within a second. Stored per endpoint, so changes of different endpoints made at the
same time never overwrite each other; two changes of one endpoint: the last one wins.

`add` takes the endpoint's settings as `webhook send` does (--auth, --secret, --scheme,
--header, --output, --config); transport settings (--allow-private, --ca, --cert/--key,
--timeout) are the workers' own flags. `rm` destroys the endpoint's consumer groups and retry
sets: events not yet read for it, and batches waiting for a retry, are dropped (what a worker
holds is still delivered); `rm --drain 5m` waits until it has nothing left and drops nothing.

Secrets (signing keys, tokens, passwords) are stored in Redis as given: protect the server
with an ACL user, TLS or a private network. `list` never prints them.

Examples:
  webhook endpoints --redis redis://127.0.0.1:6379 --queue orders add siem https://siem.example/in \\
      --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
  webhook endpoints --redis redis://127.0.0.1:6379 --queue orders pause siem
  webhook endpoints --redis redis://127.0.0.1:6379 --queue orders list
  webhook endpoints --redis redis://127.0.0.1:6379 --queue orders rm siem --drain 5m";

/// `endpoints`.
#[derive(Debug, Args)]
pub(crate) struct EndpointsArgs {
    #[command(flatten)]
    pub(crate) queue: QueueArgs,

    #[command(subcommand)]
    pub(crate) command: EndpointsCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EndpointsCommand {
    /// The shared endpoints (secrets redacted), and the live workers started with --spread
    /// with the (endpoint/partition) pairs each reads.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Add an endpoint (replace one with --replace).
    Add(Box<AddArgs>),
    /// Remove an endpoint: its consumer groups and retry sets are destroyed (events not read
    /// yet, and batches waiting for a retry, are dropped).
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Pause an endpoint on every worker (its events wait in the queue).
    Pause(NameArgs),
    /// Resume a paused endpoint on every worker.
    Resume(NameArgs),
}

/// `endpoints list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `endpoints rm|pause|resume`.
#[derive(Debug, Args)]
pub(crate) struct NameArgs {
    /// The endpoint's name (its consumer group).
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
}

/// `endpoints rm`.
#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// The endpoint's name (its consumer group).
    #[arg(value_name = "NAME")]
    pub(crate) name: String,

    /// Wait until the endpoint has nothing left (every event appended so far delivered or
    /// given up, no retry waiting) and remove it then, dropping nothing; give up after
    /// DURATION (exit 1, the endpoint stays).
    #[arg(long, value_name = "DURATION", value_parser = crate::parse::duration)]
    pub(crate) drain: Option<std::time::Duration>,
}

/// `endpoints add`.
#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// The endpoint's name (its consumer group; letters, digits, `.`, `_`, `-`).
    #[arg(value_name = "NAME")]
    pub(crate) name: String,

    /// The webhook URL (or --endpoint URL, or --config FILE).
    #[arg(value_name = "URL")]
    pub(crate) url: Option<String>,

    #[command(flatten)]
    pub(crate) target: TargetArgs,

    /// Replace the endpoint if it exists.
    #[arg(long)]
    pub(crate) replace: bool,

    /// Add it paused.
    #[arg(long)]
    pub(crate) paused: bool,

    /// Only events of this type (repeatable; `*` wildcards) [default: every type].
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) types: Vec<String>,

    /// Only events carrying this label (repeatable).
    #[arg(long = "label", value_name = "LABEL")]
    pub(crate) labels: Vec<String>,

    /// Only events of this tenant.
    #[arg(long, value_name = "TENANT")]
    pub(crate) tenant: Option<String>,
}

fn registry_error(e: &RegistrySyncError) -> CliError {
    let text = chain(e);
    match e {
        RegistrySyncError::Redis(_) => {
            CliError::network(text).hint("is redis-server running at --redis URL?")
        }
        RegistrySyncError::Unknown(_) => {
            CliError::usage(text).hint("`webhook endpoints ... list` shows the endpoints")
        }
        RegistrySyncError::Duplicate(_) => {
            CliError::usage(text).hint("pass --replace to replace it")
        }
        RegistrySyncError::NotDrained { .. } => CliError::new(Exit::Negative, text).hint(
            "it stays and keeps delivering: try again with a longer --drain, pause the \
             producers' events for it, or rm without --drain to drop what is left",
        ),
        _ => CliError::config(text),
    }
}

/// A name that is a valid consumer group and safe in messages and keys.
fn check_name(name: &str) -> Result<(), CliError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "endpoint name {name:?}: use 1 to 200 letters, digits, '.', '_' or '-'"
        )))
    }
}

/// `webhook endpoints`.
pub(crate) async fn run(args: EndpointsArgs) -> Result<Exit, CliError> {
    if let EndpointsCommand::Add(a) = &args.command {
        check_name(&a.name)?;
    }
    let queue = crate::redis_cmd::connect(args.queue.config()?).await?;
    let registry = SharedRegistry::new(&queue);
    let r = command(&registry, &args).await;
    queue.close().await;
    r
}

async fn command(registry: &SharedRegistry, args: &EndpointsArgs) -> Result<Exit, CliError> {
    let q = args.queue.queue.as_deref().unwrap_or_default();
    match &args.command {
        EndpointsCommand::List(a) => list(registry, a.json).await,
        EndpointsCommand::Add(a) => {
            let mut target = a.target.clone();
            match (&a.url, &target.endpoint) {
                (Some(_), Some(_)) => {
                    return Err(CliError::usage(
                        "give the URL once: as URL or as --endpoint",
                    ));
                }
                (Some(u), None) => target.endpoint = Some(u.clone()),
                _ => {}
            }
            for (flag, set) in [
                ("--ca", target.ca.is_some()),
                ("--cert", target.cert.is_some()),
                ("--allow-private", target.allow_private),
            ] {
                if set {
                    return Err(CliError::usage(format!(
                        "{flag} is a transport setting: give it to the workers (`webhook worker --registry {flag} ...`)"
                    )));
                }
            }
            let settings = crate::target::settings(&target)?;
            if settings.url.is_empty() {
                return Err(CliError::usage(
                    "no URL: pass it after the name (or --endpoint URL, --config FILE)",
                ));
            }
            let Some(mut spec) = crate::target::spec(&target, &a.name)? else {
                return Err(CliError::config(
                    "these settings cannot be shared: a token fetched from --token-url, an \
                     Ed25519 signing key, or an --auth secret of the wrong form",
                )
                .hint("share an endpoint with signature, bearer, basic or header authentication"));
            };
            spec.paused = a.paused;
            spec.types.clone_from(&a.types);
            spec.labels.clone_from(&a.labels);
            spec.tenant.clone_from(&a.tenant);
            let name = spec.name.clone();
            let url = spec.url.clone();
            if a.replace {
                registry.put_endpoint(spec).await
            } else {
                registry.add_endpoint(spec).await
            }
            .map_err(|e| registry_error(&e))?;
            println!(
                "{} endpoint {name} ({url}) in queue {q}'s shared registry",
                if a.replace { "put" } else { "added" }
            );
            Ok(Exit::Ok)
        }
        EndpointsCommand::Rm(a) => {
            if let Some(wait) = a.drain {
                registry
                    .remove_endpoint_drained(&a.name, wait)
                    .await
                    .map_err(|e| registry_error(&e))?;
                println!(
                    "removed endpoint {} from queue {q}'s shared registry once drained (nothing dropped)",
                    a.name
                );
                return Ok(Exit::Ok);
            }
            registry
                .remove_endpoint(&a.name)
                .await
                .map_err(|e| registry_error(&e))?;
            println!(
                "removed endpoint {} from queue {q}'s shared registry (its unread events and waiting retries are dropped)",
                a.name
            );
            Ok(Exit::Ok)
        }
        EndpointsCommand::Pause(a) | EndpointsCommand::Resume(a) => {
            let pause = matches!(args.command, EndpointsCommand::Pause(_));
            registry
                .set_paused(&a.name, pause)
                .await
                .map_err(|e| registry_error(&e))?;
            println!(
                "{} endpoint {} on every worker of queue {q}",
                if pause { "paused" } else { "resumed" },
                a.name
            );
            Ok(Exit::Ok)
        }
    }
}

async fn list(registry: &SharedRegistry, json: bool) -> Result<Exit, CliError> {
    let snapshot = registry
        .snapshot()
        .await
        .map_err(|e| registry_error(&e))?
        .redacted();
    let version = registry.version().await.map_err(|e| registry_error(&e))?;
    let workers = registry.workers().await.map_err(|e| registry_error(&e))?;
    if json {
        let workers: Vec<serde_json::Value> = workers
            .iter()
            .map(|w| {
                serde_json::json!({
                    "consumer": w.consumer,
                    "endpoints": w.endpoints,
                    "reads": w.reads,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "version": version,
                "event_sets": snapshot.event_sets,
                "endpoints": snapshot.endpoints,
                "workers": workers,
            })
        );
        return Ok(Exit::Ok);
    }
    if snapshot.endpoints.is_empty() {
        println!("no shared endpoint (version {version})");
    }
    for e in &snapshot.endpoints {
        println!(
            "{}  {}  auth: {}{}",
            e.name,
            e.url,
            e.auth.kind(),
            if e.paused { "  (paused)" } else { "" }
        );
    }
    for s in &snapshot.event_sets {
        println!("event set {}: {}", s.name, s.types.join(", "));
    }
    for w in &workers {
        println!(
            "worker {} reads {}",
            w.consumer,
            if w.reads.is_empty() {
                "nothing".to_owned()
            } else {
                w.reads.join(" ")
            }
        );
    }
    Ok(Exit::Ok)
}
