//! `webhook test`: the "Test Integration" button, through `Sender::test_integration`; with a
//! config file of several integrations (or a registry snapshot), every one of them.

use webhook_sender::{EndpointConfig, RegistrySnapshot, Sender, TestIntegrationError};

use crate::cli::TestArgs;
use crate::error::{self, CliError, Exit, chain};
use crate::style::{Style, truncate};
use crate::target;

const NAME: &str = "endpoint";

/// Runs `test`.
pub(crate) async fn run(args: TestArgs, no_color: bool) -> Result<Exit, CliError> {
    if let Some(path) = &args.target.config {
        match target::read_config_file(path)? {
            target::ConfigFile::Sysdig(s) if s.endpoints.len() > 1 => {
                return run_many(&args, s, no_color).await;
            }
            target::ConfigFile::Registry(s) => return run_many(&args, s, no_color).await,
            _ => {}
        }
    }
    let target = target::build(&args.target)?;
    let mut endpoint =
        EndpointConfig::builder(NAME, target.endpoint.clone()).transport(target.transport.clone());
    if let Some(tokens) = target.tokens.clone() {
        endpoint = endpoint.token_provider(tokens);
    }
    let endpoint = endpoint.build().map_err(|e| CliError::config(chain(&e)))?;
    let sender = Sender::builder()
        .endpoint(endpoint)
        .build()
        .map_err(|e| CliError::config(chain(&e)))?;
    let result = sender.test_integration(NAME).await;
    let _ = sender.shutdown(std::time::Duration::ZERO).await;
    let report = match result {
        Ok(r) => r,
        Err(TestIntegrationError::Transport(e)) => return Err(error::transport(&e)),
        Err(e @ TestIntegrationError::Token(_)) => {
            return Err(CliError::network(chain(&e))
                .hint("check --token-url and the user:password in --secret"));
        }
        Err(e) => return Err(CliError::config(chain(&e))),
    };
    let s = Style::stdout(no_color);
    let status = report.status;
    let status_text = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let painted = if status.is_success() {
        s.green(&status_text)
    } else {
        s.red(&status_text)
    };
    println!(
        "{} {} → {painted} in {} ms ({})",
        s.bold("POST"),
        target.url,
        report.latency.as_millis(),
        target.auth_label
    );
    for (name, value) in &report.headers {
        println!(
            "  {}: {}",
            s.dim(name.as_str()),
            String::from_utf8_lossy(value.as_bytes())
        );
    }
    if !report.body.is_empty() {
        let shown = report.body.len().min(args.show_body);
        let text = String::from_utf8_lossy(report.body.get(..shown).unwrap_or_default());
        let cut = report.body_truncated || shown < report.body.len();
        let text = truncate(&text, args.show_body.saturating_add(1));
        if cut {
            println!("{text}…");
            println!(
                "{}",
                s.dim(&format!(
                    "(body truncated: {shown} of {}{} bytes shown)",
                    report.body.len(),
                    if report.body_truncated { "+" } else { "" }
                ))
            );
        } else {
            println!("{text}");
        }
    }
    if status.is_success() {
        Ok(Exit::Ok)
    } else {
        let hint = match status.as_u16() {
            401 | 403 => {
                "the endpoint refused the credentials: check --auth, --secret and --scheme"
            }
            404 => "check the path of --endpoint",
            413 => "the endpoint refuses the body size",
            415 => "the endpoint refuses the content type: try --output json or ndjson",
            429 | 503 => "the endpoint is overloaded or unavailable: try again later",
            _ => "see the response above",
        };
        eprintln!(
            "{}",
            CliError::new(Exit::Status, format!("the endpoint answered {status_text}")).hint(hint)
        );
        Ok(Exit::Status)
    }
}

/// Tests every endpoint of a config file, one line each; fails when any answer is not a 2xx.
async fn run_many(
    args: &TestArgs,
    snapshot: RegistrySnapshot,
    no_color: bool,
) -> Result<Exit, CliError> {
    target::refuse_one_endpoint_flags(&args.target, snapshot.endpoints.len())?;
    let endpoints: Vec<(String, String)> = snapshot
        .endpoints
        .iter()
        .map(|e| (e.name.clone(), e.url.clone()))
        .collect();
    let sender = target::registry_sender(&args.target, snapshot, |_, b| b)?;
    let s = Style::stdout(no_color);
    let mut failed = Vec::new();
    for (name, url) in &endpoints {
        match sender.test_integration(name).await {
            Ok(report) => {
                let status = report.status;
                let text = format!(
                    "{} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                );
                let painted = if status.is_success() {
                    s.green(&text)
                } else {
                    failed.push(format!("{name} answered {text}"));
                    s.red(&text)
                };
                println!(
                    "{} {name} {} → {painted} in {} ms",
                    s.bold("POST"),
                    url,
                    report.latency.as_millis()
                );
            }
            Err(e) => {
                println!("{} {name} {url} → {}", s.bold("POST"), s.red(&chain(&e)));
                failed.push(format!("{name}: {}", chain(&e)));
            }
        }
    }
    let _ = sender.shutdown(std::time::Duration::ZERO).await;
    if failed.is_empty() {
        return Ok(Exit::Ok);
    }
    eprintln!(
        "{}",
        CliError::new(
            Exit::Status,
            format!(
                "{} of {} integration(s) failed: {}",
                failed.len(),
                endpoints.len(),
                failed.join("; ")
            )
        )
        .hint("run `webhook test` with --endpoint on one of them to see its response in full")
    );
    Ok(Exit::Status)
}
