//! `webhook call`: a Safous-style call-out run by `webhook_sender::callout::Callout` —
//! templates rendered with `%param%` values, the answer evaluated by `ResponseActions`.

use std::collections::HashMap;

use clap::ArgMatches;
use webhook_core::{Condition, Decision, ParamSet, ResponseActions, ResponseFormat};
use webhook_sender::callout::{
    Basis, Callout, CalloutAuth, CalloutBuildError, CalloutError, CalloutFailure, FailMode,
};
use webhook_sender::token::{ClientCredentialsSource, TokenProvider};

use crate::cli::{CallArgs, CallMethod, DecisionArg, ResponseFormatArg};
use crate::error::{self, CliError, Exit, chain};
use crate::parse::RuleArg;
use crate::style::{Style, truncate};
use crate::target;

/// The `--allow-if` / `--deny-if` rules in command-line order (the first that holds decides).
pub(crate) fn ordered_rules(m: &ArgMatches) -> Vec<(Decision, RuleArg)> {
    let mut rules: Vec<(usize, Decision, RuleArg)> = Vec::new();
    for (id, decision) in [("allow_if", Decision::Allow), ("deny_if", Decision::Deny)] {
        if let (Some(values), Some(indices)) = (m.get_many::<RuleArg>(id), m.indices_of(id)) {
            for (v, i) in values.zip(indices) {
                rules.push((i, decision, v.clone()));
            }
        }
    }
    rules.sort_by_key(|(i, _, _)| *i);
    rules.into_iter().map(|(_, d, r)| (d, r)).collect()
}

fn condition_text(c: &Condition) -> String {
    match c {
        Condition::Equals(v) => format!("= {v:?}"),
        Condition::NotEquals(v) => format!("!= {v:?}"),
        Condition::Contains(v) => format!("contains {v:?}"),
        Condition::Exists => "exists".to_owned(),
        _ => "?".to_owned(),
    }
}

/// Runs `call`.
pub(crate) async fn run(
    args: CallArgs,
    rules: Vec<(Decision, RuleArg)>,
    no_color: bool,
) -> Result<Exit, CliError> {
    let mut params = ParamSet::safous();
    for (name, _) in &args.params {
        if !name.starts_with("headers.") {
            params = params.with(name.clone());
        }
    }
    let values: HashMap<String, String> = args.params.iter().cloned().collect();

    let transport = target::transport(
        args.insecure,
        args.ca.as_deref(),
        None,
        args.allow_private,
        args.timeout,
    )?;
    let auth = match (&args.basic, &args.oauth_token_url) {
        (Some(b), _) => {
            let (user, pass) = b
                .split_once(':')
                .ok_or_else(|| CliError::config("--basic must be user:password"))?;
            CalloutAuth::basic(user, pass.to_owned())
        }
        (None, Some(token_url)) => {
            let id = args.client_id.clone().unwrap_or_default();
            let secret = args.client_secret.clone().unwrap_or_default();
            let source = ClientCredentialsSource::new(token_url.clone(), id, secret);
            let provider = TokenProvider::builder(source)
                .build(transport.clone())
                .map_err(|e| CliError::config(format!("--oauth-token-url: {e}")))?;
            CalloutAuth::OAuth2(provider)
        }
        (None, None) => CalloutAuth::None,
    };
    let mut actions = ResponseActions::builder()
        .default_decision(match args.default {
            DecisionArg::Allow => Decision::Allow,
            DecisionArg::Deny => Decision::Deny,
        })
        .format(match args.response_format {
            ResponseFormatArg::Auto => ResponseFormat::Auto,
            ResponseFormatArg::Json => ResponseFormat::Json,
            ResponseFormatArg::Jsonp => ResponseFormat::Jsonp,
        });
    for (decision, rule) in &rules {
        actions = actions.rule(*decision, rule.key.clone(), rule.condition.clone());
    }
    let actions = actions
        .build()
        .map_err(|e| CliError::config(format!("rule {e}")))?;

    // The rule, as the library runs it: templates compiled (unknown parameters refused), auth,
    // response actions; fail closed, so no answer never allows.
    let mut callout = match args.method {
        CallMethod::Get => Callout::get(args.url.clone()),
        CallMethod::Post => Callout::post(args.url.clone()),
    }
    .params(params)
    .auth(auth)
    .actions(actions)
    .timeout(args.timeout)
    .fail_mode(FailMode::Closed);
    if let Some(src) = &args.body {
        if args.method == CallMethod::Get {
            return Err(CliError::usage(
                "--body needs --method post (a GET call-out has no body)",
            ));
        }
        callout = callout.body(src.clone());
    }
    for h in &args.headers {
        callout = callout.header(h.name.clone(), h.value.clone());
    }
    let callout = callout.build().map_err(|e| match e {
        CalloutBuildError::Template { part, source } => {
            let part = match part.as_str() {
                "url" => "--url".to_owned(),
                "body" => "--body".to_owned(),
                header => header.to_owned(),
            };
            CliError::config(format!("{part}: {source}")).hint(
                "placeholders are %name% with a known parameter or one given with --param; %% is a literal %",
            )
        }
        other => CliError::config(chain(&other)),
    })?;
    // Rendered once up front for the report (and to fail with a clear message before sending).
    let request = callout.request(&values).map_err(|e| match e {
        CalloutFailure::InvalidUrl => CliError::config("the rendered URL is invalid")
            .hint("the URL must be absolute: https://host/path?query"),
        other => CliError::config(chain(&other)).hint("give the value with --param name=value"),
    })?;
    let (method, url) = (request.method().clone(), request.uri().to_string());

    let decided = callout.decide(&*transport, &values).await;
    let status = match (&decided.basis, decided.status) {
        (Basis::Failed(CalloutFailure::Call(e)), _) => {
            return Err(match e {
                CalloutError::Transport(t) => error::transport(t),
                e if e.is_timeout() => {
                    CliError::network(chain(e)).hint("raise --timeout or check the endpoint")
                }
                e @ CalloutError::Token(_) => CliError::network(chain(e))
                    .hint("check --oauth-token-url, --client-id and --client-secret"),
                e => CliError::config(chain(e)),
            });
        }
        (Basis::Failed(other @ (CalloutFailure::Render(_) | CalloutFailure::InvalidHeader)), _) => {
            return Err(CliError::config(chain(other)));
        }
        (_, Some(status)) => status,
        (basis, None) => return Err(CliError::config(format!("no answer: {basis:?}"))),
    };
    let s = Style::stdout(no_color);
    println!(
        "{method} {url} → {} {} in {} ms",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        decided.latency.as_millis()
    );
    if !decided.body.is_empty() {
        println!(
            "  {}",
            s.dim(&truncate(&String::from_utf8_lossy(&decided.body), 200))
        );
    }
    let word = match decided.decision {
        Decision::Allow => s.green("ALLOW"),
        Decision::Deny => s.red("DENY"),
    };
    let why = match &decided.basis {
        Basis::Failed(CalloutFailure::Status(_)) => {
            println!(
                "{word}: the endpoint answered {} (a non-2xx answer never allows)",
                status.as_u16()
            );
            return Ok(Exit::Status);
        }
        Basis::Failed(e) => format!("the answer cannot be evaluated: {e}"),
        Basis::Rule(i) => match rules.get(*i) {
            Some((d, r)) => format!(
                "rule {} ({} if {} {}) holds",
                i + 1,
                if *d == Decision::Allow {
                    "allow"
                } else {
                    "deny"
                },
                r.key,
                condition_text(&r.condition)
            ),
            None => format!("rule {} holds", i + 1),
        },
        _ if rules.is_empty() => "no rules given; the default decides".to_owned(),
        _ => format!(
            "none of the {} rule(s) holds; the default decides",
            rules.len()
        ),
    };
    println!("{word}: {why}");
    Ok(match decided.decision {
        Decision::Allow => Exit::Ok,
        Decision::Deny => Exit::Negative,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory as _, FromArgMatches as _};

    #[test]
    fn rules_keep_command_line_order() {
        let m = crate::cli::Cli::command()
            .try_get_matches_from([
                "webhook",
                "call",
                "--url",
                "https://h/",
                "--deny-if",
                "a=1",
                "--allow-if",
                "b",
                "--deny-if",
                "c~x",
            ])
            .unwrap();
        let _ = crate::cli::Cli::from_arg_matches(&m).unwrap();
        let rules = ordered_rules(m.subcommand_matches("call").unwrap());
        let keys: Vec<(Decision, &str)> = rules.iter().map(|(d, r)| (*d, r.key.as_str())).collect();
        assert_eq!(
            keys,
            [
                (Decision::Deny, "a"),
                (Decision::Allow, "b"),
                (Decision::Deny, "c")
            ]
        );
    }
}
