//! `webhook listen`: a receiver on a socket that prints what arrives.
//!
//! It runs on the SDK's own `Server` and `Receiver` (HTTP/1.1, optionally HTTP/2, TLS and mutual
//! TLS; limits, gzip, authentication over the raw bytes, replay protection, decoding; draining
//! on Ctrl-C); this module adds the payload families (`detect()`), route labels (the core
//! `Router`, wildcards allowed), and printing: every event, and every refusal with its detailed
//! reason (the typed cause the server's response observer sees), failed TLS handshakes, and the
//! totals on exit.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::json;
use tokio::net::TcpListener;
use webhook_core::RetryPolicy;
use webhook_core::{
    BasicCredentials, BearerToken, HeaderToken, ReceiverAuth, Router, Tolerance, Verifier,
};
use webhook_receiver::inbox::{Durability, InboxConfig, InboxError};
use webhook_receiver::tls::ServerTls;
use webhook_receiver::{
    Answered, BodyDecodeError, Context, Decode, HandlerOutcome, Identity, Location, MediaType,
    RawBody, Receiver, ReceiverBuildError, ReceiverConfig, Rejection, ServeError, Server,
    handler_fn,
};

use crate::cli::{DurabilityArg, ListenArgs};
use crate::error::{CliError, Exit, chain};
use crate::keys;
use crate::style::{Style, clock, truncate};
use crate::summary::{EventView, view};

/// Decodes a body into the printable facts of each event, via `webhook_payloads::detect`.
struct DetectDecoder;

impl Decode<EventView> for DetectDecoder {
    fn decode(
        &self,
        media: Option<MediaType>,
        body: &[u8],
    ) -> Result<Vec<EventView>, BodyDecodeError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(BodyDecodeError::Empty);
        }
        // A form (Slack slash command, GitHub's form content type): the JSON it carries.
        if media == Some(MediaType::Form) {
            let json = webhook_receiver::form_json(body)?;
            return self.decode(Some(MediaType::Json), &json);
        }
        let ct = media.map(MediaType::as_str);
        match webhook_payloads::detect(ct, &http::HeaderMap::new(), body) {
            Ok(found) => Ok(found.payloads.iter().map(view).collect()),
            Err(e) => {
                let location = Location::Json {
                    line: e.line().unwrap_or(1),
                    column: e.column().unwrap_or(0),
                };
                let message = match &e {
                    webhook_payloads::DecodeError::Syntax { message, .. }
                    | webhook_payloads::DecodeError::Shape { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                Err(if e.is_malformed() {
                    BodyDecodeError::Malformed { location, message }
                } else {
                    BodyDecodeError::WrongShape { location, message }
                })
            }
        }
    }
}

/// Counters printed on exit.
#[derive(Default)]
struct Totals {
    requests: AtomicU64,
    accepted: AtomicU64,
    handshakes: AtomicU64,
    events: AtomicU64,
    refused: Mutex<BTreeMap<u16, u64>>,
}

/// Where and how lines are printed.
struct Printer {
    json: bool,
    style: Style,
}

impl Printer {
    fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) must not kill the receiver mid-request.
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    fn event(&self, ev: &EventView, route: &str, cx: &Context) {
        if self.json {
            let identity = identity_text(cx.identity());
            let line = json!({
                "kind": "event",
                "family": ev.family,
                "route": route,
                "id": ev.id,
                "subject": ev.subject,
                "summary": ev.summary,
                "message_id": cx.message_id(),
                "identity": identity,
                "remote": cx.remote_addr().map(|a| a.to_string()),
            });
            self.line(&line.to_string());
            return;
        }
        let s = self.style;
        self.line(&format!(
            "{} {} {:<13} {:<10} {} {} {}",
            s.dim(&clock(SystemTime::now())),
            s.green("✓"),
            s.cyan(ev.family),
            s.bold(route),
            ev.id.as_deref().unwrap_or("-"),
            s.yellow(ev.subject.as_deref().unwrap_or("-")),
            truncate(&ev.summary, 160),
        ));
    }

    fn forwarded(&self, result: &crate::relay::Forwarded, cx: &Context) {
        let id = cx.message_id().unwrap_or("-");
        let s = self.style;
        match result {
            crate::relay::Forwarded::Ok { status, took } => {
                if self.json {
                    let line = json!({
                        "kind": "forwarded",
                        "message_id": cx.message_id(),
                        "status": status,
                        "attempt": cx.attempt(),
                        "ms": took.as_secs_f64() * 1e3,
                    });
                    self.line(&line.to_string());
                    return;
                }
                self.line(&format!(
                    "{} {} {id} → {status} in {:.1} ms{}",
                    s.dim(&clock(SystemTime::now())),
                    s.green("✓ forwarded"),
                    took.as_secs_f64() * 1e3,
                    if cx.attempt() > 1 {
                        format!(" (attempt {})", cx.attempt())
                    } else {
                        String::new()
                    }
                ));
            }
            crate::relay::Forwarded::Failed { reason, took } => {
                if self.json {
                    let line = json!({
                        "kind": "forward_failed",
                        "message_id": cx.message_id(),
                        "reason": reason,
                        "attempt": cx.attempt(),
                        "ms": took.as_secs_f64() * 1e3,
                    });
                    self.line(&line.to_string());
                    return;
                }
                self.line(&format!(
                    "{} {} {id} attempt {}: {reason} (retrying)",
                    s.dim(&clock(SystemTime::now())),
                    s.yellow("↻ forward failed"),
                    cx.attempt(),
                ));
            }
        }
    }

    fn handshake(&self, name: &str, peer: SocketAddr, what: &str) {
        if self.json {
            let line = json!({
                "kind": "handshake",
                "handshake": name,
                "remote": peer.to_string(),
                "request": what,
            });
            self.line(&line.to_string());
            return;
        }
        let s = self.style;
        self.line(&format!(
            "{} {} {name} answered ({what} from {peer})",
            s.dim(&clock(SystemTime::now())),
            s.green("↔ handshake"),
        ));
    }

    fn refused(&self, status: u16, kind: &str, reason: &str, peer: SocketAddr, what: &str) {
        if self.json {
            let line = json!({
                "kind": "refused",
                "status": status,
                "error": kind,
                "reason": reason,
                "remote": peer.to_string(),
                "request": what,
            });
            self.line(&line.to_string());
            return;
        }
        let s = self.style;
        self.line(&format!(
            "{} {} {} {kind}: {reason} ({what} from {peer})",
            s.dim(&clock(SystemTime::now())),
            s.red("✗ refused"),
            s.red(&status.to_string()),
        ));
    }
}

fn identity_text(id: &Identity) -> String {
    match id {
        Identity::Anonymous => "anonymous".to_owned(),
        Identity::Signature { key_index, .. } => format!("key #{}", key_index + 1),
        Identity::Basic { user } => format!("user {user}"),
        Identity::HeaderToken { header } => format!("token in {header}"),
        Identity::Bearer => "bearer token".to_owned(),
        _ => "authenticated".to_owned(),
    }
}

/// Fills `--secret` from `WEBHOOK_SECRET` when no authentication flag was given (flags win,
/// so a secret exported for `send` does not get in the way of `listen --bearer`).
fn apply_env_secret(args: &mut ListenArgs, env: Option<String>) -> Result<(), CliError> {
    let chosen = !args.secrets.is_empty()
        || args.token_header.is_some()
        || args.basic.is_some()
        || args.bearer.is_some()
        || args.no_auth;
    if chosen {
        return Ok(());
    }
    match env.filter(|s| !s.is_empty()) {
        Some(secret) => {
            args.secrets.push(secret);
            Ok(())
        }
        None => Err(CliError::usage(
            "choose how requests authenticate: --secret, --token-header, --basic, --bearer or --no-auth",
        )
        .hint("--no-auth accepts every request; WEBHOOK_SECRET can hold the signing secret")),
    }
}

fn build_auth(args: &ListenArgs) -> Result<ReceiverAuth, CliError> {
    if !args.secrets.is_empty() {
        let ring = keys::key_ring(&args.secrets, args.scheme)?;
        let verifier = Verifier::new(args.scheme.scheme(), &ring)
            .map_err(CliError::config)?
            .with_tolerance(Tolerance::symmetric(args.tolerance));
        return Ok(ReceiverAuth::Signature(verifier));
    }
    if let Some(h) = &args.token_header {
        return HeaderToken::new(&h.name, h.value.clone())
            .map(ReceiverAuth::HeaderToken)
            .map_err(|e| CliError::config(format!("--token-header: {e}")));
    }
    if let Some(b) = &args.basic {
        return BasicCredentials::parse(b)
            .map(ReceiverAuth::Basic)
            .map_err(|e| CliError::config(format!("--basic: {e}")));
    }
    if let Some(t) = &args.bearer {
        return BearerToken::new(t.clone())
            .map(ReceiverAuth::Bearer)
            .map_err(|e| CliError::config(format!("--bearer: {e}")));
    }
    Ok(ReceiverAuth::None)
}

fn auth_label(args: &ListenArgs) -> String {
    if !args.secrets.is_empty() {
        format!(
            "{} signatures, {} key(s)",
            args.scheme.scheme().name(),
            args.secrets.len()
        )
    } else if let Some(h) = &args.token_header {
        format!("static token in {}", h.name)
    } else if args.basic.is_some() {
        "HTTP Basic".to_owned()
    } else if args.bearer.is_some() {
        "Bearer token".to_owned()
    } else {
        "NONE (every request accepted)".to_owned()
    }
}

/// Runs until Ctrl-C (or `stop` resolves, in tests), then prints totals.
pub(crate) async fn run(mut args: ListenArgs, no_color: bool) -> Result<Exit, CliError> {
    apply_env_secret(&mut args, std::env::var("WEBHOOK_SECRET").ok())?;
    let auth = build_auth(&args)?;
    let mut router = Router::builder();
    for (pattern, label) in &args.routes {
        router = router.route(pattern.clone(), label.clone());
    }
    let router = Arc::new(
        router
            .build()
            .map_err(|e| CliError::config(format!("--route: {e}")))?,
    );
    let mut config = ReceiverConfig::builder()
        .auth(auth)
        .body_limit(args.max_body);
    if let Some(store) = crate::redis_cmd::replay_store(&args.replay_redis).await? {
        config = config.replay_store(store);
    }
    let config = config
        .build()
        .map_err(|e| CliError::config(format!("receiver: {e}")))?;
    let printer = Arc::new(Printer {
        json: args.json,
        style: Style::stdout(no_color),
    });
    let totals = Arc::new(Totals::default());
    let forwarder = crate::relay::Forwarder::new(&args)?.map(Arc::new);
    let inbox_config = inbox_config(&args);
    let print_events = {
        let printer = Arc::clone(&printer);
        let totals = Arc::clone(&totals);
        move |ev: EventView, cx: Context| {
            let label = ev
                .subject
                .as_deref()
                .and_then(|s| router.first(s))
                .map_or("-", String::as_str)
                .to_owned();
            printer.event(&ev, &label, &cx);
            totals.events.fetch_add(1, Ordering::Relaxed);
            async { HandlerOutcome::Accepted }
        }
    };
    let build_error = |e: ReceiverBuildError| CliError::config(format!("receiver: {e}"));
    match (inbox_config, forwarder) {
        (None, _) => {
            let receiver = Receiver::<EventView>::builder(config)
                .decoder(DetectDecoder)
                .fallback(handler_fn(print_events))
                .build()
                .map_err(build_error)?;
            serve(receiver, args, printer, totals, no_color, None).await
        }
        (Some(inbox), None) => {
            let dir = args.inbox.clone().unwrap_or_default();
            let receiver = Receiver::<EventView>::builder(config)
                .decoder(DetectDecoder)
                .fallback(handler_fn(print_events))
                .build_inbox(inbox)
                .map_err(|e| inbox_error(e, &dir))?;
            serve(receiver, args, printer, totals, no_color, None).await
        }
        (Some(inbox), Some(forwarder)) => {
            let dir = args.inbox.clone().unwrap_or_default();
            let forward = {
                let printer = Arc::clone(&printer);
                let totals = Arc::clone(&totals);
                let forwarder = Arc::clone(&forwarder);
                move |body: Bytes, cx: Context| {
                    let (printer, totals, forwarder) = (
                        Arc::clone(&printer),
                        Arc::clone(&totals),
                        Arc::clone(&forwarder),
                    );
                    async move {
                        let result = forwarder.forward(body, &cx).await;
                        if matches!(result, crate::relay::Forwarded::Ok { .. }) {
                            totals.events.fetch_add(1, Ordering::Relaxed);
                        }
                        printer.forwarded(&result, &cx);
                        result.outcome()
                    }
                }
            };
            let receiver = Receiver::<Bytes>::with_decoder(config, RawBody)
                .fallback(handler_fn(forward))
                .build_inbox(inbox)
                .map_err(|e| inbox_error(e, &dir))?;
            serve(receiver, args, printer, totals, no_color, Some(forwarder)).await
        }
    }
}

/// The inbox of `--inbox DIR`, if any.
fn inbox_config(args: &ListenArgs) -> Option<InboxConfig> {
    let dir = args.inbox.as_ref()?;
    let retry = RetryPolicy::builder()
        .exponential(
            args.retry_delay,
            2.0,
            args.retry_max_delay.max(args.retry_delay),
            true,
        )
        .max_attempts(u32::MAX)
        .max_elapsed(args.retry_for)
        .retry_after(true, args.retry_max_delay.max(args.retry_delay))
        .min_wait_after_throttle(Duration::ZERO)
        .build()
        .unwrap_or_else(|_| webhook_receiver::inbox::default_retry_policy());
    let durability = match args.durability {
        DurabilityArg::Interval => Durability::default(),
        DurabilityArg::Sync => Durability::Sync,
    };
    Some(
        InboxConfig::new(dir)
            .durability(durability)
            .max_bytes(args.inbox_max_bytes as u64)
            .retry(retry)
            .concurrency(args.concurrency.max(1)),
    )
}

fn inbox_error(e: InboxError, dir: &std::path::Path) -> CliError {
    match e {
        InboxError::Store(o) => crate::outbox_cmd::outbox_error(&o, dir).hint(
            "a `webhook listen --inbox` (or a `webhook inbox` command) has it open: stop it, \
             or use another directory",
        ),
        InboxError::Build(b) => CliError::config(format!("receiver: {b}")),
        other => CliError::new(Exit::Io, chain(&other)),
    }
}

/// Serves `receiver` until Ctrl-C, then closes its inbox (if any) and prints the totals.
async fn serve<T: Send + 'static>(
    receiver: Receiver<T>,
    args: ListenArgs,
    printer: Arc<Printer>,
    totals: Arc<Totals>,
    no_color: bool,
    forwarder: Option<Arc<crate::relay::Forwarder>>,
) -> Result<Exit, CliError> {
    let inbox = receiver.inbox();
    let tls = server_tls(&args)?;
    let listener = TcpListener::bind(args.addr).await.map_err(|e| {
        let err = CliError::io(format!("cannot listen on {}", args.addr), &e);
        if e.kind() == std::io::ErrorKind::AddrInUse {
            err.hint("another process uses that port; pick another with --addr 127.0.0.1:PORT (0: any free port)")
        } else {
            err
        }
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::io("cannot read the listening address", &e))?;
    let ctrl_c = crate::signal::interrupt()
        .map_err(|e| CliError::io("cannot install the Ctrl-C handler", &e))?;
    let err_style = Style::stderr(no_color);
    eprintln!(
        "{} on {}://{local}/ ({}{}; body limit {} bytes). Ctrl-C to stop.",
        err_style.bold("listening"),
        if tls.is_some() { "https" } else { "http" },
        auth_label(&args),
        match (&tls, &args.client_ca) {
            (None, _) => "",
            (Some(_), None) => "; TLS",
            (Some(_), Some(_)) => "; mutual TLS",
        },
        args.max_body
    );
    if let Some(inbox) = &inbox {
        let stats = inbox.stats();
        eprintln!(
            "{} {} ({} message(s) held from before, {} dead letter(s))",
            err_style.bold("inbox"),
            inbox.location(),
            stats.depth,
            stats.dead_letters,
        );
    }
    if let Some(f) = &forwarder {
        eprintln!(
            "{} to {} ({})",
            err_style.bold("forwarding"),
            f.url,
            f.auth_label
        );
    }

    let observed = {
        let printer = Arc::clone(&printer);
        let totals = Arc::clone(&totals);
        move |a: &Answered<'_>| observe(&printer, &totals, a)
    };
    let mut server = Server::new(receiver)
        .shutdown_timeout(args.drain)
        .header_read_timeout(HEADER_TIMEOUT)
        .on_response(observed)
        .on_tls_error(|peer, e| eprintln!("TLS handshake failed from {peer}: {e}"));
    if args.http2 {
        server = server.http2(true);
    }
    if let Some(tls) = tls {
        server = server.tls(tls);
    }
    let shutdown = async {
        ctrl_c.await;
        eprintln!("stopping: finishing the requests in flight...");
    };
    if let Err(e) = server.serve(listener, shutdown).await {
        match e {
            ServeError::ShutdownTimedOut { aborted } => eprintln!(
                "drain timed out after {:?}; aborting {aborted} connection(s)",
                args.drain
            ),
            other => eprintln!("{other}"),
        }
    }
    print_totals(&totals, err_style);
    if let Some(inbox) = inbox {
        // Handling in progress gets a moment; the rest stays in the inbox for the next run.
        inbox.close(Duration::from_secs(2)).await;
        let s = inbox.stats();
        eprintln!(
            "{}: {} stored, {} handled, {} retried, {} dead-lettered; {} left in {}{}",
            err_style.bold("inbox"),
            s.accepted,
            s.succeeded,
            s.retries,
            s.dead_lettered,
            s.depth,
            inbox.location(),
            if s.depth > 0 {
                " (the next `webhook listen --inbox` with the same directory goes on)"
            } else {
                ""
            }
        );
    }
    Ok(Exit::Ok)
}

/// Counts an answer and prints a refusal with its detailed reason.
fn observe(printer: &Printer, totals: &Totals, a: &Answered<'_>) {
    totals.requests.fetch_add(1, Ordering::Relaxed);
    let status = a.response.status();
    if let Some(Rejection::Handshake(reply)) = a.rejection() {
        totals.handshakes.fetch_add(1, Ordering::Relaxed);
        let what = format!("{} {}", a.method, a.uri.path());
        printer.handshake(reply.handshake().name(), a.peer, &what);
        return;
    }
    if status.is_success() {
        totals.accepted.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let (kind, reason) = match a.rejection() {
        Some(r) => (r.kind(), refusal_reason(r)),
        None => (
            "error",
            status.canonical_reason().unwrap_or("no detail").to_owned(),
        ),
    };
    *totals
        .refused
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(status.as_u16())
        .or_default() += 1;
    let what = format!("{} {}", a.method, a.uri.path());
    printer.refused(status.as_u16(), kind, &reason, a.peer, &what);
}

/// The operator's reason for a refusal: the detailed cause (for an authentication failure the
/// core error: `missing header `webhook-signature``, `the message is 512 s old, ...`; never a
/// secret or a signature), which the client is not shown.
fn refusal_reason(r: &Rejection) -> String {
    match r {
        Rejection::Unauthorized(e) => {
            std::error::Error::source(e).map_or_else(|| e.to_string(), ToString::to_string)
        }
        other => other.to_string(),
    }
}

fn print_totals(t: &Totals, s: Style) {
    let refused = t.refused.lock().unwrap_or_else(PoisonError::into_inner);
    let refused_n: u64 = refused.values().sum();
    let by_status = refused
        .iter()
        .map(|(k, v)| format!("{k}×{v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let handshakes = t.handshakes.load(Ordering::Relaxed);
    eprintln!(
        "{}: {} request(s), {} accepted with {} event(s), {}{} refused{}",
        s.bold("totals"),
        t.requests.load(Ordering::Relaxed),
        t.accepted.load(Ordering::Relaxed),
        t.events.load(Ordering::Relaxed),
        if handshakes == 0 {
            String::new()
        } else {
            format!("{handshakes} handshake(s) answered, ")
        },
        refused_n,
        if by_status.is_empty() {
            String::new()
        } else {
            format!(" ({by_status})")
        }
    );
}

/// The TLS side of `--tls-cert`/`--tls-key` (and `--client-ca`), if given.
fn server_tls(args: &ListenArgs) -> Result<Option<ServerTls>, CliError> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let mut builder = ServerTls::builder_from_files(cert, key);
    if let Some(ca) = &args.client_ca {
        builder = builder.client_ca_pem_file(ca);
    }
    let tls = builder
        .build()
        .map_err(|e| CliError::config(format!("TLS: {}", chain(&e))))?;
    Ok(Some(tls))
}

/// Time a client has to finish the TLS handshake, and then to send the request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn listen_args(extra: &[&str]) -> ListenArgs {
        let cli = crate::cli::Cli::try_parse_from(
            ["webhook", "listen"]
                .iter()
                .copied()
                .chain(extra.iter().copied()),
        )
        .unwrap();
        match cli.command {
            crate::cli::Command::Listen(l) => l,
            _ => unreachable!(),
        }
    }

    #[test]
    fn env_secret_only_when_no_auth_flag() {
        let mut a = listen_args(&[]);
        apply_env_secret(&mut a, Some("from-env".into())).unwrap();
        assert_eq!(a.secrets, ["from-env"]);

        let mut a = listen_args(&["--bearer", "t"]);
        apply_env_secret(&mut a, Some("from-env".into())).unwrap();
        assert!(a.secrets.is_empty());
        assert!(matches!(build_auth(&a), Ok(ReceiverAuth::Bearer(_))));

        let mut a = listen_args(&[]);
        let err = apply_env_secret(&mut a, None).unwrap_err();
        assert_eq!(err.exit, Exit::Usage);
        assert!(err.hint.unwrap().contains("--no-auth"));
    }

    #[test]
    fn refusals_print_the_core_reason() {
        use webhook_core::Signer;
        use webhook_receiver::{AuthRejectionKind, Authenticate};

        let ring = keys::key_ring(&["k1".into()], keys::SchemeName::StandardWebhooks).unwrap();
        let signer = Signer::new(webhook_core::Scheme::standard_webhooks(), &ring).unwrap();
        let mut headers = http::HeaderMap::new();
        signer.sign("msg_1", 1_000, b"{}", &mut headers).unwrap();
        let auth = ReceiverAuth::Signature(
            Verifier::new(webhook_core::Scheme::standard_webhooks(), &ring).unwrap(),
        );
        let ok = auth
            .authenticate(&headers, b"{}", keys::from_unix_secs(1_010))
            .unwrap();
        assert_eq!(ok.message_id(), Some("msg_1"));
        assert!(matches!(
            ok.identity(),
            Identity::Signature { key_index: 0, .. }
        ));

        let err = auth
            .authenticate(&headers, b"{}", keys::from_unix_secs(2_000))
            .unwrap_err();
        assert_eq!(err.kind(), AuthRejectionKind::Expired);
        assert_eq!(
            refusal_reason(&Rejection::Unauthorized(err)),
            "the message is 1000 s old, more than the 300 s allowed"
        );
        assert_eq!(
            refusal_reason(&Rejection::Decode(BodyDecodeError::Empty)),
            "the body is empty"
        );
    }

    #[test]
    fn forms_are_decoded_as_the_json_they_carry() {
        let d = DetectDecoder;
        let ok = d
            .decode(Some(MediaType::Form), b"command=%2Fdeploy&text=api")
            .unwrap();
        assert_eq!(ok.len(), 1);
        assert!(matches!(
            d.decode(Some(MediaType::Form), b"text=%zz"),
            Err(BodyDecodeError::Form { .. })
        ));
    }

    #[test]
    fn decoder_maps_errors_to_statuses() {
        let d = DetectDecoder;
        assert!(matches!(
            d.decode(Some(MediaType::Json), b"  "),
            Err(BodyDecodeError::Empty)
        ));
        assert!(matches!(
            d.decode(Some(MediaType::Json), b"{\"a\":"),
            Err(BodyDecodeError::Malformed { .. })
        ));
        let ok = d
            .decode(
                Some(MediaType::NdJson),
                b"{\"id\":\"1\",\"type\":\"x\"}\n{\"id\":\"2\"}\n",
            )
            .unwrap();
        assert_eq!(ok.len(), 2);
    }
}
