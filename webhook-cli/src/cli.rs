//! The command line: every subcommand, flag and help text (clap derive).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::keys::SchemeName;
use crate::parse::{self, HeaderArg, RuleArg};

const ABOUT: &str =
    "Listen for, send, test, sign, verify and call webhooks, and make keys, from a terminal.";

const LONG_ABOUT: &str = "\
Listen for, send, test, sign, verify and call webhooks, and make keys, from a terminal.

A two-terminal tour (see `webhook <command> --help` for every option):

  # terminal 1: receive and verify Standard Webhooks signatures
  webhook listen --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

  # terminal 2: replay a file of Sysdig events at it, signed with the same secret
  webhook send --file fixtures/sysdig/elastic-integrations-test-sysdig.ndjson \\
      --endpoint http://127.0.0.1:8080/ --allow-private \\
      --auth signature --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

Secrets can also come from the WEBHOOK_SECRET environment variable, which keeps them out of
your shell history and the process list. Nothing this tool prints contains a secret, except
the new key `webhook keygen` was asked to make.

Secrets are read the way each --scheme's sender hands them out: Stripe, GitHub, Slack, Zoom,
Shopify and Soveren use the text as typed (Stripe's whsec_... included); Standard Webhooks and
Svix decode whsec_<base64> (padded or not); standard-webhooks-v1a and discord take Ed25519 keys
(whsk_... to sign; whpk_... or the 64-hex-digit public key to verify).";

/// `webhook`: the command-line face of the webhook SDK.
#[derive(Debug, Parser)]
#[command(
    name = "webhook",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_long_help = crate::error::EXIT_CODES_HELP,
    propagate_version = true
)]
pub(crate) struct Cli {
    /// Never use colors (also: the NO_COLOR environment variable). Colors are only used when
    /// the output is a terminal.
    #[arg(long, global = true)]
    pub(crate) no_color: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a receiver and print every verified event (and every refused request).
    #[command(long_about = LISTEN_HELP, after_long_help = crate::error::EXIT_CODES_HELP)]
    Listen(ListenArgs),
    /// Send events from a file (NDJSON or a JSON array) to an endpoint, with batching,
    /// signing and retries.
    #[command(long_about = SEND_HELP, after_long_help = crate::error::EXIT_CODES_HELP)]
    Send(SendArgs),
    /// Send one test event ("Test Integration") and show status, latency, headers and body.
    #[command(long_about = TEST_HELP, after_long_help = crate::error::EXIT_CODES_HELP)]
    Test(TestArgs),
    /// Compute the signature headers of a body.
    #[command(long_about = SIGN_HELP, after_long_help = crate::error::EXIT_CODES_HELP)]
    Sign(SignArgs),
    /// Check the signature of a body and explain exactly why it fails.
    #[command(long_about = VERIFY_HELP, after_long_help = crate::error::EXIT_CODES_HELP)]
    Verify(VerifyArgs),
    /// Make a templated call-out (Safous webhook rule) and print allow or deny, and why.
    #[command(long_about = CALL_HELP, after_long_help = crate::error::EXIT_CODES_HELP)]
    Call(CallArgs),
    /// Make a new secret (whsec_) or Ed25519 key pair (whsk_/whpk_) for a scheme, or print the
    /// public key of a secret one.
    #[command(long_about = KEYGEN_HELP, after_long_help = crate::error::EXIT_CODES_HELP)]
    Keygen(KeygenArgs),
    /// Inspect a `send --outbox` or `listen --inbox` directory offline: status, dead letters,
    /// redelivery (requeue), purge.
    #[command(long_about = OUTBOX_HELP, after_long_help = crate::error::EXIT_CODES_HELP, visible_alias = "inbox")]
    Outbox(crate::outbox_cmd::OutboxArgs),

    /// Append events to a queue on Redis Streams, for `webhook worker`s to deliver.
    #[command(long_about = crate::redis_cmd::ENQUEUE_HELP, after_long_help = crate::error::EXIT_CODES_HELP)]
    Enqueue(crate::redis_cmd::EnqueueArgs),

    /// Deliver a Redis Streams queue's events to one endpoint (or, with --registry, to every
    /// endpoint of its shared registry), beside any number of other workers.
    #[command(long_about = crate::redis_cmd::WORKER_HELP, after_long_help = crate::error::EXIT_CODES_HELP)]
    Worker(crate::redis_cmd::WorkerArgs),

    /// List, add, remove, pause and resume the endpoints a Redis queue's workers share
    /// (`worker --registry` picks a change up within a second).
    #[command(long_about = crate::endpoints_cmd::ENDPOINTS_HELP, after_long_help = crate::error::EXIT_CODES_HELP)]
    Endpoints(crate::endpoints_cmd::EndpointsArgs),
}

const LISTEN_HELP: &str = "\
Run a webhook receiver on --addr and print each verified event: payload family (sysdig,
connectsecure, soveren, falco, alertmanager, cloudevents, standard-webhooks, json), route
label, id, subject/type and a one-line summary. Refused requests are printed with their status
and the precise reason (missing header, no signature matches, timestamp too old, ...); the
sender only gets a generic answer.

Choose exactly one authentication: --secret (signatures, with --scheme), --token-header,
--basic, --bearer, or --no-auth (explicit). Without any of them, the WEBHOOK_SECRET
environment variable is taken as --secret.

Registration handshakes are answered as each provider documents, only after the request's
signature verified: Discord's PING ({\"type\":1}), Slack's url_verification (its challenge),
Zoom's endpoint.url_validation (plainToken and its HMAC). Form bodies
(application/x-www-form-urlencoded: Slack slash commands and interactivity, GitHub's form
content type) are verified over the raw bytes and shown as the JSON they carry.

Press Ctrl-C (or send SIGTERM) to stop: requests in flight finish, then totals are printed.

Inbox and relay: with --inbox DIR each verified request is stored durably and answered at once
(200 {\"status\":\"queued\"}; 503 with Retry-After when DIR is full; a provider's retry of an id
already stored is answered 200 \"duplicate\" and stored once). Printing, or forwarding with
--forward URL, runs from the inbox with retries (exponential, --retry-delay to
--retry-max-delay, for --retry-for), then the message becomes a dead letter (`webhook inbox
list DIR`). With --forward the receiver is a durable relay: it verifies what the provider
sends, answers at once, and forwards the body (re-signed with --forward-auth/--forward-secret/
--forward-scheme when given) to a local service. Killing it loses nothing it answered 2xx: the
next `webhook listen --inbox DIR ...` forwards what is left.

Examples:
  # Standard Webhooks / Sysdig SIGNATURE (the default scheme)
  webhook listen --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

  # GitHub, two secrets during a rotation, on another port
  webhook listen --addr 127.0.0.1:9000 --scheme github --secret old-secret --secret new-secret

  # Slack (signing secret), Zoom (secret token), Discord (the application's public key):
  # their URL checks are answered
  webhook listen --scheme slack --secret 8f742231b10e8888abcd99yyyzzz85a5
  webhook listen --scheme discord --secret \"$DISCORD_PUBLIC_KEY\"   # 64 hex digits

  # ConnectSecure-style static header, label events by subject, NDJSON for jq
  webhook listen --token-header 'X-Api-Key:s3cr3t' \\
      --route 'Critical*=vulns' --route 'Login*=auth' --json | jq 'select(.kind == \"event\")'

  # Sysdig BASIC_AUTH / BEARER_TOKEN
  webhook listen --basic user:password
  webhook listen --bearer my-token

  # A durable relay: verify GitHub's signature, answer at once, forward to a local service
  # re-signed with Standard Webhooks
  webhook listen --scheme github --secret gh-secret --inbox ./inbox \
      --forward http://127.0.0.1:3000/hooks --forward-secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

  # HTTPS, and mutual TLS: only senders with a certificate from client-ca.pem get through
  webhook listen --no-auth --tls-cert server.pem --tls-key server.key --client-ca client-ca.pem";

const SEND_HELP: &str = "\
Send events from --file (NDJSON or one JSON array; `-` streams stdin, each line sent as it
arrives) to --endpoint, batched
by time proximity (--max-events, --max-bytes, --linger) into JSON arrays (--output json) or
NDJSON (--output ndjson), authenticated with --auth, retried on failure.

All endpoint options can come from --config FILE instead: the Sysdig agent-local WEBHOOK
configuration as is (the bare mapping, an integration entry, or a whole local_forwarding
document; YAML or JSON). Flags given on the command line override the file. Each WEBHOOK
integration of a local_forwarding document is an endpoint receiving its channels' events
(SECURE_EVENTS_POLICIES: policy; ACTIVITY_AUDIT: command, connection, fileaccess, kubernetes);
a registry snapshot file (with an `endpoints` key) sends to each of its endpoints. With
several endpoints, --endpoint, --auth, --secret, --header, --output and --token-url are
refused; events no endpoint selects are counted as filtered.

Each event's id is its `id` field (else its position in the file) and its subject is its
`type` (else `subject`, `event_type`, else `event`). Sysdig events get their `timestamp`
rewritten at --timestamp-format (default: as in the file).

Failed attempts are retried with exponential backoff (--retry-delay, doubling up to
--retry-max-delay, with jitter; a Retry-After answer is honoured) for --retry-for (default
15 minutes, the window after which Soveren marks an endpoint failed), then given up.

With --outbox DIR every event is stored in DIR (a durable outbox) before it is sent and stays
there until delivered: Ctrl-C, a kill or a crash loses nothing, and the next
`webhook send --outbox DIR` (with or without a new --file) first delivers everything DIR still
holds, then waits until DIR is empty or the retry window ends. Without --endpoint/--config it
sends to the endpoints saved in DIR by the earlier run (transport flags such as
--allow-private, --ca and --timeout are not saved: pass them again). Events given up become
dead letters in DIR: see `webhook outbox --help` to list, show, redeliver or purge them.

On a terminal a progress bar shows events read, delivered, retrying, failed and events/s.
The run ends with a summary; the exit code is 1 if any event was not delivered. Without
--outbox, --dead-letter FILE receives those events as NDJSON, ready for a later
`webhook send --file`, and Ctrl-C stops reading, waits up to --drain for deliveries in
flight, then gives up the rest. With --outbox, Ctrl-C (or SIGTERM) stores the rest of the
file, waits at most 2 s for requests in flight, and leaves every undelivered event in DIR.

Private and local addresses (127.0.0.1, 10.x, ...) are refused unless --allow-private.

Examples:
  # Replay the Sysdig fixture at a local listener, signed (Standard Webhooks)
  webhook send -f fixtures/sysdig/elastic-integrations-test-sysdig.ndjson \\
      --endpoint http://127.0.0.1:8080/ --allow-private \\
      --auth signature --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

  # Everything from the Sysdig agent configuration
  webhook send -f events.ndjson --config dragent-webhook.yaml --dead-letter failed.ndjson

  # Basic auth, NDJSON, millisecond timestamps, a custom header, a private CA
  webhook send -f events.json --endpoint https://siem.example.com/in \\
      --auth basic --secret user:password --output ndjson --timestamp-format milliseconds \\
      --header 'X-Tenant: blue' --ca ca.pem

  # mTLS with a client certificate
  webhook send -f events.ndjson --endpoint https://siem.example.com/in --cert client.pem --key client.key

  # Durable: survive Ctrl-C, kills and crashes; run again later to deliver what is left
  webhook send -f events.ndjson --endpoint https://siem.example.com/in --outbox ./outbox
  webhook send --outbox ./outbox
  webhook outbox status ./outbox";

const OUTBOX_HELP: &str = "\
Inspect and repair the durable outbox of `webhook send --outbox DIR`, or the inbox of
`webhook listen --inbox DIR` (`webhook inbox ...` is the same command; an inbox's messages
belong to the endpoint `inbox`), offline: these commands open DIR themselves, so they refuse
(exit code 7, naming the pid) while a `send` or a `listen` uses it.

  status DIR      pending events per endpoint, backlog bytes and segments, age of the oldest
                  pending event, dead letters, the saved endpoints, what opening recovered
  list DIR        dead letters, one line each (id, time, endpoint, event id, type, attempts,
                  reason); --endpoint, --since, --until, --limit
  show DIR ID     one dead letter: its event (JSON) and its attempts (time, status, latency,
                  error)
  redeliver DIR   move dead letters back to the pending events (the next
                  `webhook send --outbox DIR` delivers them); needs a selector: --all,
                  --endpoint NAME, --id N (repeatable), --since/--until TIME
  purge DIR       delete dead letters for good; same selectors

TIME is RFC 3339 (2024-05-01T12:00:00Z) or a duration back from now (90s, 15m, 1h).

Examples:
  webhook outbox status ./outbox
  webhook outbox list ./outbox --endpoint endpoint --since 1h
  webhook outbox show ./outbox 3
  webhook outbox redeliver ./outbox --all && webhook send --outbox ./outbox
  webhook outbox purge ./outbox --until 2024-05-01T00:00:00Z
  webhook inbox list ./inbox
  webhook inbox requeue ./inbox --all   # the next `webhook listen --inbox ./inbox` runs them";

const TEST_HELP: &str = "\
The \"Test Integration\" button: send one test event
({\"type\":\"webhook.test\",\"id\":...,\"timestamp\":...}) with the same options as `send`
(endpoint, auth, headers, TLS, --config) and print the status, latency, response headers and
the body (truncated). No retries. Exit code 0 for a 2xx answer, 5 for any other status, 6 when
there is no answer. A --config file with several WEBHOOK integrations (or a registry snapshot)
tests every one of them, one line each; exit code 5 when any fails.

Examples:
  webhook test --endpoint https://siem.example.com/in --auth bearer --secret my-token
  webhook test --config dragent-webhook.yaml
  webhook test --endpoint http://127.0.0.1:8080/ --allow-private --auth signature --secret s3cr3t";

const SIGN_HELP: &str = "\
Compute the signature headers a sender using --scheme would send with --body (or --file) and
print them as `name: value` lines, ready for curl -H (or as JSON with --json). The id and
timestamp default to a random id and the current time.

Examples:
  webhook sign --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw --body '{\"test\": 2432232314}' \\
      --id msg_p5jXN8AQM9LWM0D4loKWxJek --timestamp 1614265330
  webhook sign --scheme github --secret \"It's a Secret to Everybody\" --body 'Hello, World!'
  webhook sign --scheme stripe --secret whsec_test --file payload.json > headers.txt

Stripe signs with its endpoint secret as the literal key (whsec_... included); Standard
Webhooks and Svix with the bytes of its base64. --id is signed by standard-webhooks, svix and
standard-webhooks-v1a only, --timestamp by every scheme but github, shopify and soveren; a
warning says when one is given for a scheme that does not sign it.";

const VERIFY_HELP: &str = "\
Check a body (--body or --file) against signature headers (-H 'name: value', repeatable, or
--headers FILE with one `name: value` per line, as printed by `webhook sign` or `curl -D`) and
explain the verdict: which header is missing or malformed, which signature entry matched which
key (by position, never the secret), how far the timestamp is from now (in seconds) and the
allowed window, and, when nothing matches, whether the body was changed after signing.
Without --scheme, the scheme is the one whose signature header is present (stripe-signature:
stripe, x-hub-signature-256: github, ...), else standard-webhooks. Exit code 0 when valid, 1
when not.

Examples:
  webhook sign --secret s3cr3t --body '{\"a\":1}' > headers.txt
  webhook verify --secret s3cr3t --headers headers.txt --body '{\"a\":1}'     # valid
  webhook verify --secret s3cr3t --headers headers.txt --body '{\"a\":2}'     # explains why not
  webhook verify --scheme github --secret \"It's a Secret to Everybody\" --body 'Hello, World!' \\
      -H 'X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17'";

const CALL_HELP: &str = "\
A Safous-style webhook rule: render --url, --header values and the --body template with
%param% placeholders from --param name=value (and %headers.Name% from --param
headers.Name=value), send it (GET, or POST with a body), then evaluate response actions in
the order given: --allow-if / --deny-if KEY=VALUE (equals), KEY!=VALUE, KEY~VALUE (contains)
or KEY (exists), KEY a dotted path into the JSON (or JSONP) answer such as data.user.groups.0.
The first rule that holds decides; otherwise --default (deny). A non-2xx answer is a deny.

Known parameters: username, internal_addr, user_agent, remote_ip, cert_thumbprint,
cert_thumbprint_upper, cert_thumbprint_256, cert_thumbprint_256_upper, cert_name,
cert_alt_name, device_id, groups, group_names, headers.NAME, and any name given with --param.

Examples:
  webhook call --url 'https://policy.example.com/check?user=%username%' \\
      --param username=alice --allow-if status=active

  webhook call --method POST --url https://policy.example.com/check \\
      --body '{\"user\":\"%username%\",\"ip\":\"%remote_ip%\"}' \\
      --param username=alice --param remote_ip=203.0.113.7 \\
      --basic svc:s3cret --deny-if data.risk=high --allow-if data.user.groups~vpn

Exit code 0 for allow, 1 for deny, 5 when the endpoint answered non-2xx, 6 without answer.";

const KEYGEN_HELP: &str = "\
Make a new key for --scheme from the operating system's random generator and print it: a
shared secret whsec_<base64 of 24 bytes> for the HMAC schemes (Standard Webhooks and Svix read
the decoded bytes, the others the whole text), or an Ed25519 pair for standard-webhooks-v1a and
discord: the secret key whsk_... (signs) and the public key as whpk_... and as 64 hex digits
(verifies; Discord's form). --public-of prints the public key of a whsk_ secret key.

The output is a secret: store it, do not paste it into tickets or logs.

Examples:
  webhook keygen                                   # whsec_... for Standard Webhooks
  webhook keygen --scheme discord --json
  webhook keygen --public-of whsk_...              # or `-` to read the key from stdin
  webhook listen --scheme standard-webhooks-v1a --secret \"$(webhook keygen --scheme standard-webhooks-v1a --json | jq -r .public_key)\"";

/// `listen`: run a receiver.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("auth").multiple(false)
    .args(["secrets", "token_header", "basic", "bearer", "no_auth"])))]
pub(crate) struct ListenArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: SocketAddr,

    /// Signature scheme checked with --secret.
    #[arg(long, value_enum, default_value = "standard-webhooks")]
    pub(crate) scheme: SchemeName,

    /// Signing secret (repeat for rotation: any may match), as --scheme's sender shows it (see
    /// `webhook --help`). Without any authentication flag, the WEBHOOK_SECRET environment
    /// variable is used.
    #[arg(long = "secret", value_name = "SECRET")]
    pub(crate) secrets: Vec<String>,

    /// Accept requests carrying this static header token (ConnectSecure, GitLab).
    #[arg(long, value_name = "NAME:VALUE", value_parser = parse::any_header)]
    pub(crate) token_header: Option<HeaderArg>,

    /// Accept HTTP Basic credentials `user:password` (Sysdig BASIC_AUTH).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub(crate) basic: Option<String>,

    /// Accept `Authorization: Bearer TOKEN` (Sysdig BEARER_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    pub(crate) bearer: Option<String>,

    /// Accept every request without authentication (explicit choice).
    #[arg(long)]
    pub(crate) no_auth: bool,

    /// Largest request body accepted (larger: 413).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse::size)]
    pub(crate) max_body: usize,

    /// Label events whose subject/type matches PATTERN (`*` wildcards); first match wins.
    #[arg(long = "route", value_name = "PATTERN=LABEL", value_parser = parse::route)]
    pub(crate) routes: Vec<(String, String)>,

    /// Accepted signature age / clock skew, either way (signature schemes with a timestamp).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse::duration)]
    pub(crate) tolerance: Duration,

    /// Print one JSON object per line (events and refusals) instead of text.
    #[arg(long)]
    pub(crate) json: bool,

    /// How long Ctrl-C waits for requests in flight.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse::duration)]
    pub(crate) drain: Duration,

    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,

    /// Private key (PEM, unencrypted) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,

    /// Mutual TLS: require a client certificate issued by a CA of this bundle (PEM); needs
    /// --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) client_ca: Option<PathBuf>,

    /// Also serve HTTP/2 (by ALPN over TLS, by prior knowledge over plain TCP), next to HTTP/1.1.
    #[arg(long)]
    pub(crate) http2: bool,

    /// Store every verified request in this durable inbox directory (created when missing)
    /// and answer it at once (`200 {"status":"queued"}`); printing (or --forward) runs from
    /// the inbox, with retries. Killing the process loses nothing that was answered: the next
    /// `listen --inbox DIR` goes on. Dead letters: `webhook inbox --help`.
    #[arg(long, value_name = "DIR", help_heading = "Inbox and relay")]
    pub(crate) inbox: Option<PathBuf>,

    /// Relay: forward each verified request (its body and content type) to this URL, from the
    /// inbox, retrying until it answers 2xx (loopback and private addresses allowed: it is the
    /// operator's own service). Needs --inbox.
    #[arg(
        long,
        value_name = "URL",
        requires = "inbox",
        help_heading = "Inbox and relay"
    )]
    pub(crate) forward: Option<String>,

    /// How forwarded requests authenticate [default: none, or `signature` when only
    /// --forward-secret is given]: re-signed with the forward's own scheme and secret.
    #[arg(
        long,
        value_enum,
        requires = "forward",
        help_heading = "Inbox and relay"
    )]
    pub(crate) forward_auth: Option<AuthKind>,

    /// The secret for --forward-auth (forms as for `send --auth`).
    #[arg(
        long,
        value_name = "SECRET",
        env = "WEBHOOK_FORWARD_SECRET",
        hide_env_values = true,
        requires = "forward",
        help_heading = "Inbox and relay"
    )]
    pub(crate) forward_secret: Option<String>,

    /// Signature scheme of --forward-auth signature.
    #[arg(
        long,
        value_enum,
        default_value = "standard-webhooks",
        help_heading = "Inbox and relay"
    )]
    pub(crate) forward_scheme: SchemeName,

    /// Extra header on forwarded requests (repeatable; reserved headers refused).
    #[arg(long = "forward-header", value_name = "NAME:VALUE", value_parser = parse::custom_header, help_heading = "Inbox and relay")]
    pub(crate) forward_headers: Vec<HeaderArg>,

    /// Timeout of one forwarded request.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse::duration, help_heading = "Inbox and relay")]
    pub(crate) forward_timeout: Duration,

    /// Do not verify the forward target's TLS certificate (testing only).
    #[arg(long, requires = "forward", help_heading = "Inbox and relay")]
    pub(crate) forward_insecure: bool,

    /// Keep retrying a message's handling (printing or forwarding) for this long, then make
    /// it a dead letter in the inbox.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse::duration, help_heading = "Inbox and relay")]
    pub(crate) retry_for: Duration,

    /// First retry delay (doubles each time, with full jitter).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse::duration, help_heading = "Inbox and relay")]
    pub(crate) retry_delay: Duration,

    /// Longest delay between retries.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse::duration, help_heading = "Inbox and relay")]
    pub(crate) retry_max_delay: Duration,

    /// Messages handled (forwarded) at once.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 8,
        help_heading = "Inbox and relay"
    )]
    pub(crate) concurrency: usize,

    /// How durable a request is in the inbox before it is answered.
    #[arg(
        long,
        value_enum,
        default_value = "interval",
        requires = "inbox",
        help_heading = "Inbox and relay"
    )]
    pub(crate) durability: DurabilityArg,

    /// Most bytes the inbox may hold; past it requests are answered 503 with Retry-After.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse::size, requires = "inbox", help_heading = "Inbox and relay")]
    pub(crate) inbox_max_bytes: usize,

    #[command(flatten)]
    pub(crate) replay_redis: crate::redis_cmd::ReplayRedisArgs,
}

/// Payload format (Sysdig `output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// One JSON array of events per request.
    Json,
    /// Newline-delimited JSON, one event per line.
    Ndjson,
}

/// Resolution of the `timestamp` field (Sysdig `timestampFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TimestampArg {
    /// Whole seconds.
    Seconds,
    /// Milliseconds.
    Milliseconds,
    /// Microseconds.
    Microseconds,
    /// Nanoseconds.
    Nanoseconds,
}

/// How requests authenticate (Sysdig `auth`, plus static tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AuthKind {
    /// No authentication.
    None,
    /// HTTP Basic; --secret is `user:password`.
    Basic,
    /// `Authorization: Bearer <--secret>`.
    Bearer,
    /// Signature headers of --scheme keyed with --secret.
    Signature,
    /// A static header token, --secret `NAME:VALUE`; or, with --token-url, a bearer token
    /// fetched from that authentication URL with --secret `user:password`.
    Token,
}

/// Where to send and how: shared by `send`, `test`, `worker` and `endpoints add`.
#[derive(Debug, Clone, Args)]
pub(crate) struct TargetArgs {
    /// The webhook URL (http:// or https://).
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint: Option<String>,

    /// Read the endpoint settings from a Sysdig agent-local WEBHOOK configuration (YAML or
    /// JSON, as is); command-line flags override it. For `send`, a local_forwarding section
    /// with several WEBHOOK integrations sends to each, routed by its channels, and a registry
    /// snapshot (a file with an `endpoints` key) to each of its endpoints; `test` uses the first
    /// integration.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Payload format [default: json].
    #[arg(long, value_enum)]
    pub(crate) output: Option<OutputFormat>,

    /// Resolution of Sysdig events' `timestamp` [default: as in the input].
    #[arg(long, value_enum)]
    pub(crate) timestamp_format: Option<TimestampArg>,

    /// Authentication method [default: none, or `signature` when only --secret is given].
    #[arg(long, value_enum)]
    pub(crate) auth: Option<AuthKind>,

    /// The secret for --auth (see there for its form).
    #[arg(
        long,
        value_name = "SECRET",
        env = "WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub(crate) secret: Option<String>,

    /// Signature scheme for --auth signature.
    #[arg(long, value_enum, default_value = "standard-webhooks")]
    pub(crate) scheme: SchemeName,

    /// With --auth token: fetch a bearer token from this authentication URL (POST
    /// {"username","password"} from --secret user:password).
    #[arg(long, value_name = "URL")]
    pub(crate) token_url: Option<String>,

    /// Extra header (repeatable). Reserved headers (Authorization, Content-Type, Host,
    /// User-Agent, signature headers...) are refused.
    #[arg(long = "header", short = 'H', value_name = "NAME:VALUE", value_parser = parse::custom_header)]
    pub(crate) headers: Vec<HeaderArg>,

    /// Do not verify the server's TLS certificate (testing only).
    #[arg(long)]
    pub(crate) insecure: bool,

    /// Client certificate chain (PEM) for mutual TLS; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub(crate) cert: Option<PathBuf>,

    /// Client private key (PEM, unencrypted) for mutual TLS; needs --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub(crate) key: Option<PathBuf>,

    /// Trust this CA bundle (PEM) in addition to the built-in roots.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,

    /// Allow loopback (127.0.0.0/8, ::1) and private (10.0.0.0/8, 172.16.0.0/12,
    /// 192.168.0.0/16, fc00::/7) destinations, for local receivers and tests. Link-local
    /// addresses (169.254.0.0/16, fe80::/10), where cloud metadata services such as
    /// 169.254.169.254 answer, and the other special ranges stay blocked.
    #[arg(long)]
    pub(crate) allow_private: bool,

    /// Timeout of one request.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse::duration)]
    pub(crate) timeout: Duration,
}

/// How durable `send --outbox` makes each event before sending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DurabilityArg {
    /// Written to the operating system at once (a killed process loses nothing), synced to
    /// the disk every 100 ms (a power loss loses at most that).
    Interval,
    /// Synced to the disk before the event is sent (slower; concurrent events share a sync).
    Sync,
}

/// `send`: forward events from a file.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("destination").multiple(true).required(true)
    .args(["endpoint", "config", "outbox"])))]
pub(crate) struct SendArgs {
    /// Events to send: NDJSON or one JSON array, checked whole first; `-` streams stdin (each
    /// line is sent as it arrives; a bad line is reported and skipped). Optional with
    /// --outbox: without it, the run delivers what the outbox holds.
    #[arg(
        long,
        short = 'f',
        value_name = "FILE",
        required_unless_present = "outbox"
    )]
    pub(crate) file: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) target: TargetArgs,

    /// Most events in one request.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub(crate) max_events: usize,

    /// Largest request body.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse::size)]
    pub(crate) max_bytes: usize,

    /// How long a batch waits for more events before it is sent.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = parse::duration)]
    pub(crate) linger: Duration,

    /// Keep retrying a failed delivery for this long after its first attempt (exponential
    /// backoff, Retry-After honoured), then give it up (into the outbox's dead letters with
    /// --outbox). 15 minutes is the window after which Soveren marks an endpoint failed.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse::duration)]
    pub(crate) retry_for: Duration,

    /// Also give up after this many retries (0: no retry) [default: no limit within
    /// --retry-for].
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

    /// Write events that were not delivered to this file (NDJSON). Not with --outbox, which
    /// keeps them itself.
    #[arg(long, value_name = "FILE", conflicts_with = "outbox")]
    pub(crate) dead_letter: Option<PathBuf>,

    /// Keep every event in this durable outbox directory (created when missing) until it is
    /// delivered; first deliver what it still holds from an earlier run. See
    /// `webhook outbox --help`.
    #[arg(long, value_name = "DIR")]
    pub(crate) outbox: Option<PathBuf>,

    /// How durable an event is in the outbox before it is sent.
    #[arg(long, value_enum, default_value = "interval", requires = "outbox")]
    pub(crate) durability: DurabilityArg,

    /// Most bytes the outbox's event log may hold; reading the input waits for room beyond it.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse::size, requires = "outbox")]
    pub(crate) outbox_max_bytes: usize,

    /// How long to wait for deliveries in flight after Ctrl-C or when a run cannot finish
    /// (with --outbox, at most 2 s after Ctrl-C: the rest stays in the outbox).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse::duration)]
    pub(crate) drain: Duration,

    /// Never show a progress bar (it only shows on a terminal anyway).
    #[arg(long)]
    pub(crate) no_progress: bool,

    /// Print the summary as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `test`: one test event.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("destination").multiple(true).required(true)
    .args(["endpoint", "config"])))]
pub(crate) struct TestArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,

    /// Show at most this many bytes of the response body.
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub(crate) show_body: usize,
}

/// The body for `sign` / `verify`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct BodyArgs {
    /// The body, given inline (bytes exactly as typed).
    #[arg(long, value_name = "TEXT")]
    pub(crate) body: Option<String>,

    /// Read the body from FILE (`-`: stdin), byte for byte.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
}

/// `sign`: compute signature headers.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// Signature scheme.
    #[arg(long, value_enum, default_value = "standard-webhooks")]
    pub(crate) scheme: SchemeName,

    /// Signing secret, as --scheme's sender shows it (repeat: one signature per key for list
    /// schemes).
    #[arg(
        long = "secret",
        value_name = "SECRET",
        env = "WEBHOOK_SECRET",
        hide_env_values = true,
        required = true
    )]
    pub(crate) secrets: Vec<String>,

    #[command(flatten)]
    pub(crate) body: BodyArgs,

    /// Message id for schemes that sign one [default: random msg_...].
    #[arg(long)]
    pub(crate) id: Option<String>,

    /// Signing time in unix seconds [default: now].
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub(crate) timestamp: Option<u64>,

    /// Print a JSON object instead of `name: value` lines.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `verify`: check and explain.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Signature scheme [default: the one whose signature header is present, else
    /// standard-webhooks].
    #[arg(long, value_enum)]
    pub(crate) scheme: Option<SchemeName>,

    /// Secret(s) to try (repeat for rotation).
    #[arg(
        long = "secret",
        value_name = "SECRET",
        env = "WEBHOOK_SECRET",
        hide_env_values = true,
        required = true
    )]
    pub(crate) secrets: Vec<String>,

    #[command(flatten)]
    pub(crate) body: BodyArgs,

    /// A received header (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE", value_parser = parse::any_header)]
    pub(crate) headers: Vec<HeaderArg>,

    /// Read received headers from FILE, one `name: value` per line (HTTP request and status
    /// lines and blank lines are skipped, so a captured request head works as is).
    #[arg(long = "headers", value_name = "FILE")]
    pub(crate) headers_file: Option<PathBuf>,

    /// Verify as if now were this unix time [default: now].
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub(crate) now: Option<u64>,

    /// Accepted timestamp distance, either way.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse::duration)]
    pub(crate) tolerance: Duration,

    /// Do not check the timestamp (e.g. for a captured old request).
    #[arg(long)]
    pub(crate) ignore_timestamp: bool,
}

/// `keygen`: make a key.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// The scheme the key is for.
    #[arg(long, value_enum, default_value = "standard-webhooks")]
    pub(crate) scheme: SchemeName,

    /// Print the public key of this Ed25519 secret key (whsk_...; `-` reads it from stdin)
    /// instead of making a new key.
    #[arg(long, value_name = "WHSK", conflicts_with = "scheme")]
    pub(crate) public_of: Option<String>,

    /// Print a JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

/// HTTP method of a call-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CallMethod {
    /// GET (no body).
    Get,
    /// POST with --body.
    Post,
}

/// Decision when no rule holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DecisionArg {
    /// Allow.
    Allow,
    /// Deny.
    Deny,
}

/// Response format for the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ResponseFormatArg {
    /// JSON or JSONP, detected.
    Auto,
    /// JSON.
    Json,
    /// JSONP (`callback({...})`).
    Jsonp,
}

/// `call`: a templated call-out.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// URL template, e.g. `https://policy.example.com/check?user=%username%`.
    #[arg(long, value_name = "TEMPLATE")]
    pub(crate) url: String,

    /// HTTP method.
    #[arg(long, value_enum, default_value = "get")]
    pub(crate) method: CallMethod,

    /// Header template (repeatable), e.g. 'X-User: %username%'.
    #[arg(long = "header", short = 'H', value_name = "NAME:TEMPLATE", value_parser = parse::custom_header)]
    pub(crate) headers: Vec<HeaderArg>,

    /// JSON body template for POST; placeholders inside JSON strings.
    #[arg(long, value_name = "TEMPLATE")]
    pub(crate) body: Option<String>,

    /// A parameter value (repeatable): `username=alice`, `headers.Accept-Language=fr`.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse::param)]
    pub(crate) params: Vec<(String, String)>,

    /// Allow when the rule holds: KEY=VALUE, KEY!=VALUE, KEY~VALUE (contains) or KEY (exists).
    #[arg(long, value_name = "RULE", value_parser = parse::rule)]
    pub(crate) allow_if: Vec<RuleArg>,

    /// Deny when the rule holds (same forms as --allow-if).
    #[arg(long, value_name = "RULE", value_parser = parse::rule)]
    pub(crate) deny_if: Vec<RuleArg>,

    /// Decision when no rule holds.
    #[arg(long, value_enum, default_value = "deny")]
    pub(crate) default: DecisionArg,

    /// How to read the response.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) response_format: ResponseFormatArg,

    /// HTTP Basic credentials `user:password`.
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "WEBHOOK_CALL_BASIC",
        hide_env_values = true
    )]
    pub(crate) basic: Option<String>,

    /// OAuth2 client-credentials token URL (with --client-id and --client-secret).
    #[arg(long, value_name = "URL", requires_all = ["client_id", "client_secret"], conflicts_with = "basic")]
    pub(crate) oauth_token_url: Option<String>,

    /// OAuth2 client id.
    #[arg(long, value_name = "ID", requires = "oauth_token_url")]
    pub(crate) client_id: Option<String>,

    /// OAuth2 client secret.
    #[arg(
        long,
        value_name = "SECRET",
        env = "WEBHOOK_CLIENT_SECRET",
        hide_env_values = true,
        requires = "oauth_token_url"
    )]
    pub(crate) client_secret: Option<String>,

    /// Allow loopback (127.0.0.0/8, ::1) and private (10.0.0.0/8, 172.16.0.0/12,
    /// 192.168.0.0/16, fc00::/7) destinations. Link-local addresses (169.254.0.0/16,
    /// fe80::/10), where cloud metadata services such as 169.254.169.254 answer, and the other
    /// special ranges stay blocked.
    #[arg(long)]
    pub(crate) allow_private: bool,

    /// Do not verify the server's TLS certificate (testing only).
    #[arg(long)]
    pub(crate) insecure: bool,

    /// Trust this CA bundle (PEM) in addition to the built-in roots.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,

    /// Timeout of the call-out (token fetch included).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse::duration)]
    pub(crate) timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("webhook").chain(args.iter().copied()))
    }

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_has_examples_and_exit_codes() {
        let mut cmd = Cli::command();
        for sub in cmd.get_subcommands_mut() {
            let long = sub
                .get_long_about()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(
                long.contains("webhook "),
                "{} has no example",
                sub.get_name()
            );
            let help = sub.render_long_help().to_string();
            assert!(help.contains("Exit codes:"), "{}", sub.get_name());
        }
    }

    #[test]
    fn send_refuses_reserved_headers_clearly() {
        let err = parse(&[
            "send",
            "-f",
            "x.ndjson",
            "--endpoint",
            "https://h/x",
            "--header",
            "Authorization: Bearer t",
        ])
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("reserved"), "{text}");
        assert!(text.contains("Authorization"), "{text}");
        let ok = parse(&[
            "send",
            "-f",
            "x.ndjson",
            "--endpoint",
            "https://h/x",
            "-H",
            "X-Tenant: blue",
            "-H",
            "X-B:c",
        ])
        .unwrap();
        let Command::Send(s) = ok.command else {
            panic!()
        };
        assert_eq!(s.target.headers.len(), 2);
        assert_eq!(s.target.headers[0].value, "blue");
    }

    #[test]
    fn send_needs_endpoint_or_config() {
        assert!(parse(&["send", "-f", "x"]).is_err());
        assert!(parse(&["send", "-f", "x", "--config", "c.yaml"]).is_ok());
        assert!(parse(&["send", "-f", "x", "--endpoint", "http://h/"]).is_ok());
        assert!(parse(&["test"]).is_err());
        assert!(parse(&["test", "--config", "c.yaml"]).is_ok());
    }

    #[test]
    fn send_with_an_outbox_needs_no_file_nor_endpoint() {
        // Without --outbox, --file is required.
        assert!(parse(&["send", "--endpoint", "http://h/"]).is_err());
        let cli = parse(&["send", "--outbox", "dir"]).unwrap();
        let Command::Send(s) = cli.command else {
            panic!()
        };
        assert_eq!(s.file, None);
        assert_eq!(s.durability, DurabilityArg::Interval);
        assert_eq!(s.outbox_max_bytes, 1 << 30);
        let cli = parse(&[
            "send",
            "--outbox",
            "dir",
            "--durability",
            "sync",
            "--outbox-max-bytes",
            "64MiB",
        ])
        .unwrap();
        let Command::Send(s) = cli.command else {
            panic!()
        };
        assert_eq!(s.durability, DurabilityArg::Sync);
        assert_eq!(s.outbox_max_bytes, 64 << 20);
        // The file-based dead letters are for runs without an outbox only.
        let err = parse(&[
            "send",
            "--outbox",
            "dir",
            "-f",
            "x",
            "--dead-letter",
            "d.ndjson",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("--dead-letter"), "{err}");
        // Outbox settings without an outbox are refused, not ignored.
        assert!(
            parse(&[
                "send",
                "-f",
                "x",
                "--endpoint",
                "http://h/",
                "--durability",
                "sync"
            ])
            .is_err()
        );
    }

    #[test]
    fn retries_are_bounded_by_time_by_default() {
        let cli = parse(&["send", "-f", "x", "--endpoint", "http://h/"]).unwrap();
        let Command::Send(s) = cli.command else {
            panic!()
        };
        assert_eq!(s.retry_for, Duration::from_secs(15 * 60));
        assert_eq!(s.retries, None);
        let help = Cli::command()
            .find_subcommand_mut("send")
            .map(|c| c.render_long_help().to_string())
            .unwrap_or_default();
        assert!(help.contains("--retry-for"), "{help}");
        assert!(help.contains("[default: 15m]"), "{help}");
    }

    #[test]
    fn cert_and_key_go_together() {
        assert!(parse(&["test", "--endpoint", "https://h/", "--cert", "c.pem"]).is_err());
        assert!(
            parse(&[
                "test",
                "--endpoint",
                "https://h/",
                "--cert",
                "c.pem",
                "--key",
                "k.pem"
            ])
            .is_ok()
        );
    }

    #[test]
    fn send_values_parse() {
        let cli = parse(&[
            "send",
            "-f",
            "-",
            "--endpoint",
            "http://h/",
            "--output",
            "ndjson",
            "--timestamp-format",
            "milliseconds",
            "--auth",
            "basic",
            "--secret",
            "u:p",
            "--max-events",
            "5",
            "--max-bytes",
            "64KiB",
            "--linger",
            "50ms",
            "--retries",
            "0",
        ])
        .unwrap();
        let Command::Send(s) = cli.command else {
            panic!()
        };
        assert_eq!(s.target.output, Some(OutputFormat::Ndjson));
        assert_eq!(s.target.timestamp_format, Some(TimestampArg::Milliseconds));
        assert_eq!(s.target.auth, Some(AuthKind::Basic));
        assert_eq!(s.max_bytes, 64 * 1024);
        assert_eq!(s.linger, Duration::from_millis(50));
        assert_eq!(s.retries, Some(0));
        assert!(
            parse(&[
                "send",
                "-f",
                "x",
                "--endpoint",
                "http://h/",
                "--output",
                "xml"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "send",
                "-f",
                "x",
                "--endpoint",
                "http://h/",
                "--linger",
                "soon"
            ])
            .is_err()
        );
    }

    #[test]
    fn listen_needs_exactly_one_auth() {
        // No auth flag parses (WEBHOOK_SECRET may supply the secret); `listen::run` refuses
        // it when the variable is not set either (see listen::tests).
        assert!(parse(&["listen"]).is_ok());
        assert!(parse(&["listen", "--no-auth"]).is_ok());
        assert!(parse(&["listen", "--no-auth", "--bearer", "t"]).is_err());
        let cli = parse(&[
            "listen", "--scheme", "github", "--secret", "a", "--secret", "b",
        ])
        .unwrap();
        let Command::Listen(l) = cli.command else {
            panic!()
        };
        assert_eq!(l.secrets, ["a", "b"]);
        assert_eq!(l.scheme, SchemeName::Github);
        assert!(parse(&["listen", "--scheme", "nope", "--secret", "a"]).is_err());
        let cli = parse(&[
            "listen",
            "--no-auth",
            "--route",
            "policy=alerts",
            "--max-body",
            "25MiB",
        ])
        .unwrap();
        let Command::Listen(l) = cli.command else {
            panic!()
        };
        assert_eq!(l.routes, [("policy".to_owned(), "alerts".to_owned())]);
        assert_eq!(l.max_body, 25 << 20);
    }

    #[test]
    fn sign_and_verify_need_a_body_source() {
        assert!(parse(&["sign", "--secret", "s"]).is_err());
        assert!(parse(&["sign", "--secret", "s", "--body", "{}", "--file", "x"]).is_err());
        assert!(parse(&["sign", "--secret", "s", "--body", "{}"]).is_ok());
        assert!(
            parse(&[
                "verify",
                "--secret",
                "s",
                "--body",
                "{}",
                "-H",
                "webhook-id: x"
            ])
            .is_ok()
        );
    }

    #[test]
    fn call_rules_parse() {
        let cli = parse(&[
            "call",
            "--url",
            "https://h/?u=%username%",
            "-p",
            "username=a",
            "--allow-if",
            "a=b",
            "--deny-if",
            "c",
        ])
        .unwrap();
        let Command::Call(c) = cli.command else {
            panic!()
        };
        assert_eq!(c.allow_if.len(), 1);
        assert_eq!(c.deny_if[0].condition, webhook_core::Condition::Exists);
        assert!(parse(&["call", "--url", "u", "--client-id", "x"]).is_err());
    }
}
