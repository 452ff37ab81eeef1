//! A Safous-style decision endpoint: Safous ZTNA calls a webhook rule (here `GET`, no body,
//! Basic authentication) while it evaluates an access request, with headers templated from
//! `%username%`, `%group_names%`, `%remote_ip%`, ...; the endpoint answers quickly with a JSON
//! decision that an "API response action" checks (`decision` = `allow`).
//!
//! Runs standalone on 127.0.0.1: renders the call-outs Safous would send for two users with
//! `SafousContext`, prints the decisions and exits.
//!
//! `cargo run -p webhook-examples --example safous_decision`

#[path = "support/client.rs"]
mod client;

use std::error::Error;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use webhook_core::{BasicCredentials, SenderAuth, Template, TemplateContext};
use webhook_payloads::safous::{ConnectionFacts, SafousContext, SafousDecision};
use webhook_receiver::{Context, HandlerOutcome, Receiver, ReceiverConfig, Server, handler_fn};

/// The decision: admins from outside the blocked network are allowed.
fn decide(cx: &Context) -> SafousDecision {
    let header = |n: &str| cx.headers().get(n).and_then(|v| v.to_str().ok());
    let user = header("x-safous-user").unwrap_or("");
    let admin = header("x-safous-groups").is_some_and(|g| g.split(',').any(|g| g == "Admins"));
    let blocked = header("x-safous-ip").is_some_and(|ip| ip.starts_with("203.0.113."));
    match (admin, blocked) {
        (true, false) => SafousDecision::allow().with_reason(format!("{user} is an admin")),
        (_, true) => SafousDecision::deny("connection from a blocked network"),
        (false, false) => SafousDecision::deny(format!("{user} is not in Admins")),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    // The rule's Authentication: Basic, username and password.
    let creds = BasicCredentials::new("safous-rule", "ztna-callout-password")?;
    let config = ReceiverConfig::builder()
        .basic(creds.clone())
        .methods([Method::GET, Method::POST])
        .build()?;
    // `()` items: a GET call-out has no body (an empty body decodes as JSON `null`).
    let receiver = Receiver::builder(config)
        .fallback(handler_fn(|_: (), cx: Context| async move {
            let d = decide(&cx);
            println!("[decision] {} {} -> {:?}", cx.method(), cx.uri(), d);
            HandlerOutcome::json(&d)
        }))
        .build()?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(Server::new(receiver).serve(listener, async {
        let _ = stopped.await;
    }));
    println!("decision endpoint on http://{addr}/safous/decide");

    // The rule's header templates, as an administrator enters them in Safous (compiled once
    // with webhook-core's templates, which refuse values that cannot go into a header).
    let headers = [
        (
            "x-safous-user",
            Template::build(TemplateContext::Header, "%username%")?,
        ),
        (
            "x-safous-groups",
            Template::build(TemplateContext::Header, "%group_names%")?,
        ),
        (
            "x-safous-ip",
            Template::build(TemplateContext::Header, "%remote_ip%")?,
        ),
        (
            "x-safous-agent",
            Template::build(TemplateContext::Header, "%user_agent%")?,
        ),
    ];
    // What Safous sends for a client's access request: the templates rendered from the request
    // and the connection.
    let call_out = |user: &str,
                    groups: &[&str],
                    ip: &str|
     -> Result<Request<Bytes>, Box<dyn Error + Send + Sync>> {
        let client_request = Request::get("https://intranet.example.internal/")
            .header("user-agent", "Mozilla/5.0")
            .body(())?;
        let facts = ConnectionFacts::new(ip.parse()?)
            .username(user)
            .group_names(groups.iter().copied());
        let sc = SafousContext::from_request(&client_request, facts);
        let mut req = Request::get(format!("http://{addr}/safous/decide")).body(Bytes::new())?;
        for (name, template) in &headers {
            req.headers_mut()
                .insert(*name, template.render(&sc)?.parse()?);
        }
        SenderAuth::Basic(creds.clone()).apply("", 0, b"", req.headers_mut())?;
        Ok(req)
    };

    for (user, groups, ip) in [
        ("alice", &["Admins", "Ops"][..], "198.51.100.7"),
        ("bob", &["Ops"][..], "198.51.100.8"),
        ("carol", &["Admins"][..], "203.0.113.9"),
    ] {
        let (status, body) = client::send(addr, call_out(user, groups, ip)?).await?;
        client::expect(user, status, StatusCode::OK)?;
        let decision: SafousDecision = serde_json::from_slice(&body)?;
        println!("    {user}: {}", String::from_utf8_lossy(&body));
        if (user == "alice") != decision.allowed {
            return Err(format!("unexpected decision for {user}").into());
        }
    }

    let mut anonymous = call_out("mallory", &["Admins"], "198.51.100.9")?;
    anonymous.headers_mut().remove("authorization");
    let (status, _) = client::send(addr, anonymous).await?;
    client::expect(
        "call-out without credentials",
        status,
        StatusCode::UNAUTHORIZED,
    )?;

    let _ = stop.send(());
    server.await??;
    Ok(())
}
