//! `listen --forward URL`: one forwarding attempt of a stored request, the handler an inbox
//! runs (and retries) for every message.
//!
//! The request forwarded carries the body as received (after gzip decoding) with its content
//! type, `webhook-id` (the provider's message id, else one derived from the receive time, the
//! same on every attempt), the relay's `User-Agent`, the --forward-header headers, and the
//! forward's own authentication (a signature over the body made at each attempt).

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use webhook_core::{Body, Endpoint};
use webhook_receiver::{Context, HandlerOutcome, MediaType};
use webhook_sender::SharedTransport;

use crate::cli::{ListenArgs, TargetArgs};
use crate::error::CliError;
use crate::target;

/// What a forwarding attempt came to, for the printer.
pub(crate) enum Forwarded {
    /// A 2xx.
    Ok { status: u16, took: Duration },
    /// Anything else: the inbox retries.
    Failed { reason: String, took: Duration },
}

/// The forward target.
pub(crate) struct Forwarder {
    endpoint: Endpoint,
    transport: SharedTransport,
    pub(crate) url: String,
    pub(crate) auth_label: String,
}

impl Forwarder {
    /// Builds the forward target from the `--forward*` flags (the same endpoint and transport
    /// building as `send`; loopback and private addresses allowed, link-local never).
    pub(crate) fn new(args: &ListenArgs) -> Result<Option<Self>, CliError> {
        let Some(url) = &args.forward else {
            return Ok(None);
        };
        let target_args = TargetArgs {
            endpoint: Some(url.clone()),
            config: None,
            output: None,
            timestamp_format: None,
            auth: args.forward_auth,
            secret: args.forward_secret.clone(),
            scheme: args.forward_scheme,
            token_url: None,
            headers: args.forward_headers.clone(),
            insecure: args.forward_insecure,
            cert: None,
            key: None,
            ca: None,
            allow_private: true,
            timeout: args.forward_timeout,
        };
        let t = target::build(&target_args).map_err(|e| e.prefixed("--forward"))?;
        Ok(Some(Self {
            endpoint: t.endpoint,
            transport: t.transport,
            url: t.url,
            auth_label: t.auth_label,
        }))
    }

    /// One attempt: forwards `body` of the request in `cx`.
    pub(crate) async fn forward(&self, body: Bytes, cx: &Context) -> Forwarded {
        let started = Instant::now();
        let id = match cx.message_id() {
            Some(id) => id.to_owned(),
            None => {
                let ns = cx
                    .received_at()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                format!("relay_{ns:x}")
            }
        };
        let content_type = cx
            .media_type()
            .map_or("application/json", MediaType::as_str);
        let body = Body {
            bytes: body,
            content_type,
            content_encoding: None,
        };
        let request = match self.endpoint.request(&id, &body, SystemTime::now()) {
            Ok(r) => r,
            Err(e) => {
                return Forwarded::Failed {
                    reason: format!("cannot build the request: {e}"),
                    took: started.elapsed(),
                };
            }
        };
        match self.transport.send(request).await {
            Ok(res) if res.status().is_success() => Forwarded::Ok {
                status: res.status().as_u16(),
                took: started.elapsed(),
            },
            Ok(res) => Forwarded::Failed {
                reason: format!("answered {}", res.status()),
                took: started.elapsed(),
            },
            Err(e) => Forwarded::Failed {
                reason: crate::error::chain(&e),
                took: started.elapsed(),
            },
        }
    }
}

impl Forwarded {
    /// The handler outcome: a failure is retried by the inbox.
    pub(crate) fn outcome(&self) -> HandlerOutcome {
        match self {
            Self::Ok { .. } => HandlerOutcome::Accepted,
            Self::Failed { reason, .. } => HandlerOutcome::failed(reason.clone()),
        }
    }
}
