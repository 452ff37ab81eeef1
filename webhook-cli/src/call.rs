//! `webhook call`: a Safous-style call-out — templates rendered with `%param%` values, the
//! request sent with `callout::send_callout`, the answer evaluated by `ResponseActions`.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use clap::ArgMatches;
use http::{HeaderName, HeaderValue, Method};
use webhook_core::{
    Condition, Decision, ParamSet, ResponseActions, ResponseFormat, Template, TemplateContext,
};
use webhook_sender::callout::{CalloutAuth, CalloutError, send_callout};
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

fn template(
    ctx: TemplateContext,
    params: &ParamSet,
    src: &str,
    what: &str,
) -> Result<Template, CliError> {
    webhook_core::TemplateBuilder::new(ctx)
        .params(params.clone())
        .build(src)
        .map_err(|e| {
            CliError::config(format!("{what}: {e}"))
                .hint("placeholders are %name% with a known parameter or one given with --param; %% is a literal %")
        })
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
    let render = |t: &Template, what: &str| {
        t.render(&values).map_err(|e| {
            CliError::config(format!("{what}: {e}")).hint("give the value with --param name=value")
        })
    };

    let url = render(
        &template(TemplateContext::Url, &params, &args.url, "--url")?,
        "--url",
    )?;
    let method = match args.method {
        CallMethod::Get => Method::GET,
        CallMethod::Post => Method::POST,
    };
    let body = match (&args.body, args.method) {
        (Some(_), CallMethod::Get) => {
            return Err(CliError::usage(
                "--body needs --method post (a GET call-out has no body)",
            ));
        }
        (Some(src), CallMethod::Post) => Bytes::from(render(
            &template(TemplateContext::JsonBody, &params, src, "--body")?,
            "--body",
        )?),
        (None, _) => Bytes::new(),
    };
    let mut request = http::Request::builder()
        .method(method.clone())
        .uri(&url)
        .body(body.clone())
        .map_err(|e| {
            CliError::config(format!("the rendered URL {url:?} is invalid: {e}"))
                .hint("the URL must be absolute: https://host/path?query")
        })?;
    if !body.is_empty() {
        request.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    for h in &args.headers {
        let value = render(
            &template(TemplateContext::Header, &params, &h.value, &h.name)?,
            &h.name,
        )?;
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| CliError::config(format!("invalid header name {:?}", h.name)))?;
        let value = HeaderValue::from_str(&value)
            .map_err(|_| CliError::config(format!("the value of {} cannot be sent", h.name)))?;
        request.headers_mut().insert(name, value);
    }

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

    let started = Instant::now();
    let response = match send_callout(&*transport, request, &auth, args.timeout).await {
        Ok(r) => r,
        Err(CalloutError::Transport(e)) => return Err(error::transport(&e)),
        Err(e) if e.is_timeout() => {
            return Err(CliError::network(chain(&e)).hint("raise --timeout or check the endpoint"));
        }
        Err(e @ CalloutError::Token(_)) => {
            return Err(CliError::network(chain(&e))
                .hint("check --oauth-token-url, --client-id and --client-secret"));
        }
        Err(e) => return Err(CliError::config(chain(&e))),
    };
    let latency = started.elapsed();
    let s = Style::stdout(no_color);
    let status = response.status();
    println!(
        "{method} {url} → {} {} in {} ms",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        latency.as_millis()
    );
    if !response.body().is_empty() {
        println!(
            "  {}",
            s.dim(&truncate(&String::from_utf8_lossy(response.body()), 200))
        );
    }
    if !status.is_success() {
        println!(
            "{}: the endpoint answered {} (a non-2xx answer never allows)",
            s.red("DENY"),
            status.as_u16()
        );
        return Ok(Exit::Status);
    }
    match actions.evaluate(response.body()) {
        Ok(eval) => {
            let word = match eval.decision {
                Decision::Allow => s.green("ALLOW"),
                Decision::Deny => s.red("DENY"),
            };
            let why = match eval.rule.and_then(|i| rules.get(i).map(|r| (i, r))) {
                Some((i, (d, r))) => format!(
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
                None if rules.is_empty() => "no rules given; the default decides".to_owned(),
                None => format!(
                    "none of the {} rule(s) holds; the default decides",
                    rules.len()
                ),
            };
            println!("{word}: {why}");
            Ok(match eval.decision {
                Decision::Allow => Exit::Ok,
                Decision::Deny => Exit::Negative,
            })
        }
        Err(e) => {
            println!("{}: the answer cannot be evaluated: {e}", s.red("DENY"));
            Ok(Exit::Negative)
        }
    }
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
