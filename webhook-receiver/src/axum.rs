//! axum integration (feature `axum`): the [`Webhook`] extractor.
//!
//! Like axum's own `Json`, it buffers the raw body (under the configured limit, refusing an
//! oversize body before buffering it), then authenticates those exact bytes through the
//! configured [`Authenticate`](crate::Authenticate), checks replay, and only then deserializes.
//! The state must provide a [`ReceiverConfig`] (`ReceiverConfig: FromRef<S>`; a
//! `ReceiverConfig` itself works as the state).
//!
//! The body is decoded by `D` (default [`JsonDecoder`]: `webhook-payloads`' JSON object, array
//! and NDJSON helpers); use [`ConnectSecureDecoder`](crate::ConnectSecureDecoder) or
//! [`SysdigDecoder`](crate::SysdigDecoder) for those families, e.g.
//! `Webhook<SysdigEvent<'static>, SysdigDecoder>`.
//!
//! Replay protection: the message id is reserved during extraction; call
//! [`Webhook::acknowledge`] once the event is safely handled. Dropping the `Webhook` without
//! acknowledging releases the id, so the sender's retry is accepted.

use axum_core::extract::{FromRef, FromRequest, Request};
use axum_core::response::{IntoResponse, Response};

use crate::config::ReceiverConfig;
use crate::context::Context;
use crate::decode::{Decode, JsonDecoder};
use crate::intake::intake;
use crate::rejection::Rejection;
use crate::replay::Ticket;

/// A verified, decoded webhook: its items, context and replay ticket.
///
/// ```
/// use axum_core::extract::FromRequest;
/// use webhook_receiver::{ReceiverConfig, axum::Webhook};
/// use webhook_core::ReceiverAuth;
///
/// #[derive(serde::Deserialize)]
/// struct Alert { subject: String }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ReceiverConfig::builder().auth(ReceiverAuth::None).build()?;
/// let req = http::Request::post("/")
///     .header("content-type", "application/json")
///     .body(axum_core::body::Body::from(r#"{"subject":"Asset Ports"}"#))?;
/// let hook = Webhook::<Alert>::from_request(req, &config).await.map_err(|r| r.0)?;
/// assert_eq!(hook.items[0].subject, "Asset Ports");
/// hook.acknowledge();
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Webhook<T, D = JsonDecoder> {
    /// The decoded items (one for an object, several for a batch).
    pub items: Vec<T>,
    /// Headers, ids, raw bytes and identity.
    pub context: Context,
    ticket: Ticket,
    decoder: D,
}

impl<T, D: Decode<T>> Webhook<T, D> {
    /// The routing subject of an item, as the decoder names it (for example the Sysdig event
    /// `type` or the canonical ConnectSecure subject).
    pub fn subject<'a>(&self, item: &'a T) -> Option<std::borrow::Cow<'a, str>> {
        self.decoder.subject(item)
    }
}

impl<T, D> Webhook<T, D> {
    /// Records the message id as seen (call after the event is safely handled).
    pub fn acknowledge(self) {
        self.ticket.acknowledge();
    }
}

/// Why the [`Webhook`] extractor refused the request; answers with the receiver's status code
/// and JSON error body.
#[derive(Debug)]
pub struct WebhookRejection(pub Rejection);

impl std::fmt::Display for WebhookRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for WebhookRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        self.0.into_response().map(axum_core::body::Body::new)
    }
}

impl<S, T, D> FromRequest<S> for Webhook<T, D>
where
    S: Send + Sync,
    ReceiverConfig: FromRef<S>,
    T: Send,
    D: Decode<T> + Default,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let config = ReceiverConfig::from_ref(state);
        let decoder = D::default();
        let verified = intake(&config, req, None, None)
            .await
            .and_then(|intake| intake.decode(&decoder))
            .map_err(WebhookRejection)?;
        Ok(Self {
            items: verified.items,
            context: verified.context,
            ticket: Ticket::new(verified.reservation.into_owned()),
            decoder,
        })
    }
}
