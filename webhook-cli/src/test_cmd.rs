//! `webhook test`: the "Test Integration" button, through `Sender::test_integration`.

use webhook_sender::{EndpointConfig, Sender, TestIntegrationError};

use crate::cli::TestArgs;
use crate::error::{self, CliError, Exit, chain};
use crate::style::{Style, truncate};
use crate::target;

const NAME: &str = "endpoint";

/// Runs `test`.
pub(crate) async fn run(args: TestArgs, no_color: bool) -> Result<Exit, CliError> {
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
