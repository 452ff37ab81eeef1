//! Where `send` and `test` deliver, and how: the flags, optionally on top of a Sysdig
//! agent-local `WEBHOOK` configuration file, turned into the core `Endpoint` (URL, auth, custom
//! headers, encoding), a transport (TLS, mTLS, CA, SSRF guard, timeout) and an optional token
//! provider.

use std::path::Path;

use webhook_core::Encoding;
use webhook_core::sysdig_config::{SysdigAuth, SysdigOutput, SysdigWebhookConfig};
use webhook_core::{BasicCredentials, BearerToken, HeaderToken, SenderAuth, TimestampFormat};
use webhook_core::{Endpoint, EndpointError};
use webhook_sender::outbox::{OutboxConfig, OutboxError};
use webhook_sender::registry::{AuthSpec, EncodingSpec, HeaderSpec, KeySpec};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::tls::TlsConfig;
use webhook_sender::token::{AuthUrlSource, TokenProvider};
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{
    EndpointConfigBuilder, EndpointSpec, RegistrySnapshot, Sender, SenderBuildError,
    SharedTransport, SpecError,
};

use crate::cli::{AuthKind, OutputFormat, TargetArgs, TimestampArg};
use crate::error::{CliError, chain};
use crate::keys::{self, SchemeName};
use crate::parse::{self, HeaderArg};

/// Everything needed to deliver to one endpoint.
pub(crate) struct Target {
    pub(crate) endpoint: Endpoint,
    pub(crate) transport: SharedTransport,
    pub(crate) tokens: Option<TokenProvider>,
    /// Rewrite Sysdig `timestamp`s at this resolution (`None`: as read).
    pub(crate) timestamp_format: Option<TimestampFormat>,
    pub(crate) url: String,
    pub(crate) auth_label: String,
}

/// The settings after merging the config file and the flags.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) url: String,
    pub(crate) auth: Option<AuthKind>,
    pub(crate) secret: Option<String>,
    pub(crate) insecure: bool,
    pub(crate) headers: Vec<HeaderArg>,
    pub(crate) output: Option<OutputFormat>,
    pub(crate) timestamp: Option<TimestampArg>,
}

fn ts_arg(t: TimestampFormat) -> TimestampArg {
    match t {
        TimestampFormat::Seconds => TimestampArg::Seconds,
        TimestampFormat::Milliseconds => TimestampArg::Milliseconds,
        TimestampFormat::Microseconds => TimestampArg::Microseconds,
        TimestampFormat::Nanoseconds => TimestampArg::Nanoseconds,
    }
}

pub(crate) fn payload_ts(t: TimestampArg) -> TimestampFormat {
    match t {
        TimestampArg::Seconds => TimestampFormat::Seconds,
        TimestampArg::Milliseconds => TimestampFormat::Milliseconds,
        TimestampArg::Microseconds => TimestampFormat::Microseconds,
        TimestampArg::Nanoseconds => TimestampFormat::Nanoseconds,
    }
}

/// Reads a Sysdig agent-local WEBHOOK configuration (YAML, or JSON for `.json` files).
pub(crate) fn read_config(path: &Path) -> Result<SysdigWebhookConfig, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::io(format!("cannot read config {}", path.display()), &e))?;
    let parsed = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        SysdigWebhookConfig::from_json_str(&text)
    } else {
        SysdigWebhookConfig::from_yaml_str(&text)
    };
    parsed.map_err(|e| {
        CliError::config(format!("config {}: {e}", path.display())).hint(
            "expected the Sysdig WEBHOOK configuration: endpoint, secret, insecure, auth \
             (BASIC_AUTH, BEARER_TOKEN, SIGNATURE), headers [{key, value}], output (json, ndjson), \
             timestampFormat",
        )
    })
}

/// What a `--config` file holds beyond one `WEBHOOK` mapping.
#[derive(Debug)]
pub(crate) enum ConfigFile {
    /// A bare `WEBHOOK` mapping or one integration entry: [`settings`] reads it.
    Single,
    /// A `local_forwarding` section (or an agent configuration holding one): every `WEBHOOK`
    /// integration, its channels as event sets.
    Sysdig(RegistrySnapshot),
    /// A registry snapshot (detected by its `endpoints` key).
    Registry(RegistrySnapshot),
}

/// Reads `path` as a registry snapshot, a Sysdig `local_forwarding` document, or (left to
/// [`settings`]) a single `WEBHOOK` configuration. YAML, or JSON for `.json` files.
pub(crate) fn read_config_file(path: &Path) -> Result<ConfigFile, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::io(format!("cannot read config {}", path.display()), &e))?;
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let value: serde_json::Value = if json {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())
    }
    .map_err(|e| CliError::config(format!("config {}: {e}", path.display())))?;
    let refused = |e: SpecError| {
        CliError::config(format!("config {}: {}", path.display(), chain(&e))).hint(
            "expected a registry snapshot (version, event_sets, endpoints) or the Sysdig \
             agent's local_forwarding section",
        )
    };
    if value.get("endpoints").is_some() {
        let snapshot = if json {
            RegistrySnapshot::from_json_str(&text)
        } else {
            RegistrySnapshot::from_yaml_str(&text)
        };
        return snapshot.map(ConfigFile::Registry).map_err(refused);
    }
    let section = value.get("local_forwarding").unwrap_or(&value);
    if section.get("integrations").is_some() {
        let snapshot = if json {
            RegistrySnapshot::from_sysdig_json_str(&text)
        } else {
            RegistrySnapshot::from_sysdig_yaml_str(&text)
        };
        return snapshot.map(ConfigFile::Sysdig).map_err(refused);
    }
    Ok(ConfigFile::Single)
}

/// The first flag given that describes one endpoint (`--endpoint`, `--auth`, `--secret`,
/// `--header`, `--output`, `--token-url`).
pub(crate) fn one_endpoint_flag(t: &TargetArgs) -> Option<&'static str> {
    [
        ("--endpoint", t.endpoint.is_some()),
        ("--auth", t.auth.is_some()),
        ("--secret", t.secret.is_some()),
        ("--header", !t.headers.is_empty()),
        ("--output", t.output.is_some()),
        ("--token-url", t.token_url.is_some()),
    ]
    .into_iter()
    .find_map(|(flag, set)| set.then_some(flag))
}

/// Refuses the flags that describe one endpoint when the config file holds `n`.
pub(crate) fn refuse_one_endpoint_flags(t: &TargetArgs, n: usize) -> Result<(), CliError> {
    match one_endpoint_flag(t) {
        Some(flag) => Err(CliError::usage(format!(
            "{flag} describes one endpoint, but the config file holds {n} endpoint(s)"
        ))
        .hint("set it in the config file, or use one endpoint with --endpoint and no --config")),
        None => Ok(()),
    }
}

/// `name (url, auth: kind)` for every endpoint of `snapshot`.
pub(crate) fn describe(snapshot: &RegistrySnapshot) -> String {
    snapshot
        .endpoints
        .iter()
        .map(|e| format!("{} ({}, auth: {})", e.name, e.url, e.auth.kind()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A sender with every endpoint of `snapshot`: the transport flags (TLS, SSRF, timeout) apply to
/// all; an endpoint marked `insecure` gets a transport that skips certificate verification, and
/// one with a client certificate its own; `extra` adds settings to each endpoint.
pub(crate) fn registry_sender(
    t: &TargetArgs,
    snapshot: RegistrySnapshot,
    extra: impl FnMut(&EndpointSpec, EndpointConfigBuilder) -> EndpointConfigBuilder,
) -> Result<Sender, CliError> {
    registry_sender_with(t, snapshot, None, extra)
}

/// [`registry_sender`], keeping its events in a durable outbox when `outbox` is given.
pub(crate) fn registry_sender_with(
    t: &TargetArgs,
    snapshot: RegistrySnapshot,
    outbox: Option<OutboxConfig>,
    mut extra: impl FnMut(&EndpointSpec, EndpointConfigBuilder) -> EndpointConfigBuilder,
) -> Result<Sender, CliError> {
    let cert = match (&t.cert, &t.key) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        _ => None,
    };
    let verifying = transport(
        t.insecure,
        t.ca.as_deref(),
        cert,
        t.allow_private,
        t.timeout,
    )?;
    let mut insecure = None;
    let mut sender = Sender::builder().transport_builder(
        TransportBuilder::new()
            .ssrf(ssrf_policy(t.allow_private))
            .timeout(t.timeout),
    );
    if let Some(cfg) = outbox {
        sender = sender.outbox(cfg);
    }
    let mut transport_error = None;
    let sender = snapshot.apply_with(sender, |spec, mut b| {
        let mtls = matches!(spec.auth, AuthSpec::ClientCertificate(_));
        if spec.insecure && !t.insecure {
            if mtls {
                return Err(SpecError::Insecure {
                    endpoint: spec.name.clone(),
                });
            }
            if insecure.is_none() {
                match transport(true, t.ca.as_deref(), cert, t.allow_private, t.timeout) {
                    Ok(tr) => insecure = Some(tr),
                    Err(e) => {
                        transport_error = Some(e);
                        return Err(SpecError::Insecure {
                            endpoint: spec.name.clone(),
                        });
                    }
                }
            }
            if let Some(tr) = &insecure {
                b = b.transport(tr.clone());
            }
        } else if !mtls {
            // mTLS endpoints get a transport of their own presenting their certificate.
            b = b.transport(verifying.clone());
        }
        Ok(extra(spec, b))
    });
    match (sender, transport_error) {
        (_, Some(e)) => Err(e),
        (Err(e), None) => Err(CliError::config(chain(&e))),
        (Ok(b), None) => b.build().map_err(|e| build_error(&e)),
    }
}

/// A sender that could not be built; an outbox held by another process keeps its exit code.
pub(crate) fn build_error(e: &SenderBuildError) -> CliError {
    match e {
        SenderBuildError::Outbox(o) => match o {
            OutboxError::Locked { dir, .. } => crate::outbox_cmd::outbox_error(o, dir),
            _ => CliError::config(chain(e)),
        },
        _ => CliError::config(chain(e)),
    }
}

/// The flags' one endpoint as an [`EndpointSpec`] named `name`, so that a sender with an
/// outbox saves it there and a later `send --outbox DIR` without endpoint flags resumes it.
/// `None` when the flags hold what a spec cannot: a token fetched from --token-url, or an
/// Ed25519 signing key. Transport settings (--ca, --cert/--key, --allow-private, --timeout)
/// are not part of it: they are given again on each run.
pub(crate) fn spec(args: &TargetArgs, name: &str) -> Result<Option<EndpointSpec>, CliError> {
    let s = settings(args)?;
    let mut spec = EndpointSpec::new(name, s.url.clone());
    let secret = s.secret.clone().unwrap_or_default();
    spec.auth = match s.auth.unwrap_or(AuthKind::None) {
        AuthKind::None => AuthSpec::None,
        AuthKind::Basic => match secret.split_once(':') {
            Some((user, password)) => AuthSpec::Basic {
                username: user.to_owned(),
                password: password.to_owned(),
            },
            None => return Ok(None),
        },
        AuthKind::Bearer => AuthSpec::Bearer { token: secret },
        AuthKind::Signature
            if matches!(
                args.scheme,
                SchemeName::StandardWebhooksV1a | SchemeName::Discord
            ) =>
        {
            return Ok(None);
        }
        AuthKind::Signature => AuthSpec::Signature {
            scheme: args.scheme.scheme().name().to_owned(),
            keys: vec![KeySpec::new(secret)],
        },
        AuthKind::Token if args.token_url.is_some() => return Ok(None),
        AuthKind::Token => match secret.split_once(':') {
            Some((n, v)) => AuthSpec::Header {
                name: n.trim().to_owned(),
                value: v.trim().to_owned(),
            },
            None => return Ok(None),
        },
    };
    spec.headers = s
        .headers
        .iter()
        .map(|h| HeaderSpec::new(h.name.clone(), h.value.clone()))
        .collect();
    spec.encoding = match s.output.unwrap_or(OutputFormat::Json) {
        OutputFormat::Json => EncodingSpec::Json,
        OutputFormat::Ndjson => EncodingSpec::Ndjson,
    };
    spec.insecure = s.insecure;
    spec.timestamp_format = s.timestamp.map(payload_ts);
    Ok(Some(spec))
}

/// Merges the config file (if any) with the flags; flags win.
pub(crate) fn settings(args: &TargetArgs) -> Result<Settings, CliError> {
    let mut s = Settings::default();
    if let Some(path) = &args.config {
        let cfg = read_config(path)?;
        s.url = cfg.endpoint.clone();
        s.auth = cfg.auth.map(|a| match a {
            SysdigAuth::BasicAuth => AuthKind::Basic,
            SysdigAuth::BearerToken => AuthKind::Bearer,
            _ => AuthKind::Signature,
        });
        s.secret = cfg.secret.clone();
        s.insecure = cfg.insecure;
        for h in &cfg.headers {
            let arg = parse::custom_header(&format!("{}:{}", h.key, h.value))
                .map_err(|e| CliError::config(format!("config {}: {e}", path.display())))?;
            s.headers.push(arg);
        }
        s.output = Some(match cfg.output {
            SysdigOutput::Ndjson => OutputFormat::Ndjson,
            _ => OutputFormat::Json,
        });
        s.timestamp = Some(ts_arg(cfg.timestamp_format));
    }
    if let Some(url) = &args.endpoint {
        s.url = url.clone();
    }
    if args.auth.is_some() {
        s.auth = args.auth;
    }
    if args.secret.is_some() {
        s.secret = args.secret.clone();
    }
    s.insecure |= args.insecure;
    s.headers.extend(args.headers.iter().cloned());
    if args.output.is_some() {
        s.output = args.output;
    }
    if args.timestamp_format.is_some() {
        s.timestamp = args.timestamp_format;
    }
    if s.auth.is_none() && s.secret.is_some() {
        s.auth = Some(AuthKind::Signature);
    }
    Ok(s)
}

/// The SSRF policy: the guard stays on; `--allow-private` re-opens loopback and private ranges
/// (never link-local, where cloud metadata services live).
pub(crate) fn ssrf_policy(allow_private: bool) -> SsrfPolicy {
    let mut policy = SsrfPolicy::default();
    if allow_private {
        for net in [
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fc00::/7",
        ] {
            if let Ok(cidr) = net.parse() {
                policy = policy.allow(cidr);
            }
        }
    }
    policy
}

/// Builds the transport: TLS (CA, client certificate, insecure), SSRF guard, timeout.
pub(crate) fn transport(
    insecure: bool,
    ca: Option<&Path>,
    cert: Option<(&Path, &Path)>,
    allow_private: bool,
    timeout: std::time::Duration,
) -> Result<SharedTransport, CliError> {
    let mut tls = TlsConfig::builder().danger_accept_invalid_certs(insecure);
    if let Some(ca) = ca {
        tls = tls.add_ca_pem_file(ca);
    }
    if let Some((cert, key)) = cert {
        tls = tls.client_identity_pem_files(cert, key);
    }
    let tls = tls.build().map_err(|e| {
        CliError::config(chain(&e))
            .hint("certificates and keys must be PEM files (the key unencrypted)")
    })?;
    TransportBuilder::new()
        .tls(tls)
        .ssrf(ssrf_policy(allow_private))
        .timeout(timeout)
        .build()
        .map_err(|e| CliError::config(chain(&e)))
}

fn need_secret(kind: &str, form: &str) -> CliError {
    CliError::config(format!("--auth {kind} needs --secret {form}"))
        .hint("pass --secret or set the WEBHOOK_SECRET environment variable")
}

/// Builds the target from the flags (and config file).
pub(crate) fn build(args: &TargetArgs) -> Result<Target, CliError> {
    let s = settings(args)?;
    if s.url.is_empty() {
        return Err(CliError::usage(
            "no endpoint: pass --endpoint URL or --config FILE",
        ));
    }
    let cert = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        _ => None,
    };
    let transport = transport(
        s.insecure,
        args.ca.as_deref(),
        cert,
        args.allow_private,
        args.timeout,
    )?;
    let secret = s.secret.as_deref();
    let mut tokens = None;
    let (auth, mut auth_label) = match s.auth.unwrap_or(AuthKind::None) {
        AuthKind::None => (SenderAuth::None, "none".to_owned()),
        AuthKind::Basic => {
            let secret = secret.ok_or_else(|| need_secret("basic", "user:password"))?;
            let c = BasicCredentials::parse(secret)
                .map_err(|e| CliError::config(format!("Basic secret refused: {e}")))?;
            let label = format!("Basic (user {})", c.user());
            (SenderAuth::Basic(c), label)
        }
        AuthKind::Bearer => {
            let secret = secret.ok_or_else(|| need_secret("bearer", "TOKEN"))?;
            let t = BearerToken::new(secret)
                .map_err(|e| CliError::config(format!("Bearer token refused: {e}")))?;
            (SenderAuth::Bearer(t), "Bearer token".to_owned())
        }
        AuthKind::Signature => {
            let secret = secret.ok_or_else(|| need_secret("signature", "SECRET"))?;
            let ring = keys::key_ring(&[secret.to_owned()], args.scheme)?;
            let scheme = args.scheme.scheme();
            let label = format!("{} signature", scheme.name());
            let auth = SenderAuth::signature_with(scheme, &ring).map_err(CliError::config)?;
            (auth, label)
        }
        AuthKind::Token => match &args.token_url {
            Some(url) => {
                let secret =
                    secret.ok_or_else(|| need_secret("token --token-url URL", "user:password"))?;
                let (user, pass) = secret.split_once(':').ok_or_else(|| {
                    CliError::config("with --token-url, --secret must be user:password")
                })?;
                let source = AuthUrlSource::new(url.clone(), user, pass.to_owned());
                let provider = TokenProvider::builder(source)
                    .build(transport.clone())
                    .map_err(|e| CliError::config(format!("--token-url: {e}")))?;
                tokens = Some(provider);
                (SenderAuth::None, format!("bearer token fetched from {url}"))
            }
            None => {
                let secret = secret.ok_or_else(|| need_secret("token", "NAME:VALUE"))?;
                let (name, value) = secret.split_once(':').ok_or_else(|| {
                    CliError::config(
                        "--auth token needs --secret NAME:VALUE (the header and its token)",
                    )
                    .hint("or --token-url URL with --secret user:password to fetch a token")
                })?;
                let t = HeaderToken::new(name.trim(), value.trim().to_owned())
                    .map_err(|e| CliError::config(format!("token header refused: {e}")))?;
                let label = format!("static token in {}", t.name());
                (SenderAuth::HeaderToken(t), label)
            }
        },
    };
    if cert.is_some() {
        auth_label = if auth_label == "none" {
            "client certificate".to_owned()
        } else {
            format!("{auth_label} + client certificate")
        };
    }
    let encoding = match s.output.unwrap_or(OutputFormat::Json) {
        OutputFormat::Json => Encoding::JsonArray,
        OutputFormat::Ndjson => Encoding::Ndjson,
    };
    let mut builder = Endpoint::builder(&s.url).auth(auth).encoding(encoding);
    for h in &s.headers {
        builder = builder.header(h.name.clone(), h.value.clone());
    }
    let endpoint = builder.build().map_err(|e| match e {
        EndpointError::Url { .. } => CliError::config(e.to_string())
            .hint("the endpoint must be an absolute http:// or https:// URL with a host"),
        other => CliError::config(other.to_string()),
    })?;
    Ok(Target {
        endpoint,
        transport,
        tokens,
        timestamp_format: s.timestamp.map(payload_ts),
        url: s.url,
        auth_label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn target_args(extra: &[&str]) -> TargetArgs {
        let cli = crate::cli::Cli::try_parse_from(
            ["webhook", "test"]
                .iter()
                .copied()
                .chain(extra.iter().copied()),
        )
        .unwrap();
        match cli.command {
            crate::cli::Command::Test(t) => t.target,
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_override_the_config_file() {
        let dir = std::env::temp_dir().join(format!("webhook-cli-target-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dragent.yaml");
        std::fs::write(
            &path,
            "endpoint: https://siem.example.com/hook\nauth: BASIC_AUTH\nsecret: u:p\n\
             headers:\n  - key: X-Tenant\n    value: blue\noutput: ndjson\ntimestampFormat: seconds\n",
        )
        .unwrap();
        let cfg = path.to_str().unwrap();
        let s = settings(&target_args(&["--config", cfg])).unwrap();
        assert_eq!(s.url, "https://siem.example.com/hook");
        assert_eq!(s.auth, Some(AuthKind::Basic));
        assert_eq!(s.output, Some(OutputFormat::Ndjson));
        assert_eq!(s.timestamp, Some(TimestampArg::Seconds));
        assert_eq!(s.headers[0].name, "X-Tenant");
        let s = settings(&target_args(&[
            "--config",
            cfg,
            "--endpoint",
            "http://127.0.0.1:1/",
            "--output",
            "json",
            "-H",
            "X-B: 1",
        ]))
        .unwrap();
        assert_eq!(s.url, "http://127.0.0.1:1/");
        assert_eq!(s.output, Some(OutputFormat::Json));
        assert_eq!(s.headers.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_config_is_a_config_error_with_a_hint() {
        let dir = std::env::temp_dir().join(format!("webhook-cli-badcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.yaml");
        std::fs::write(&path, "endpoint: https://h/x\ntimestampformat: seconds\n").unwrap();
        let err = settings(&target_args(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert_eq!(err.exit, crate::error::Exit::Config);
        assert!(err.cause.contains("timestampformat"), "{}", err.cause);
        assert!(err.hint.is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secret_alone_means_signature_and_missing_secret_is_explained() {
        let s = settings(&target_args(&["--endpoint", "https://h/", "--secret", "k"])).unwrap();
        assert_eq!(s.auth, Some(AuthKind::Signature));
        if std::env::var_os("WEBHOOK_SECRET").is_none() {
            let err = build(&target_args(&[
                "--endpoint",
                "https://h/",
                "--auth",
                "basic",
            ]))
            .err()
            .unwrap();
            assert!(
                err.cause.contains("--secret user:password"),
                "{}",
                err.cause
            );
        }
    }

    #[test]
    fn allow_private_opens_loopback_but_not_metadata() {
        let p = ssrf_policy(true);
        assert!(p.check("h", "127.0.0.1".parse().unwrap()).is_ok());
        assert!(p.check("h", "169.254.169.254".parse().unwrap()).is_err());
        assert!(
            ssrf_policy(false)
                .check("h", "127.0.0.1".parse().unwrap())
                .is_err()
        );
    }
}
