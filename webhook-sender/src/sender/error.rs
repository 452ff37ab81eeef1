//! Errors of the delivery engine: building a sender, sending, re-enabling an endpoint, testing
//! an integration.

use webhook_core::AuthConfigError;
use webhook_core::Event;

use crate::error::{BuildError, TransportError};
use crate::token::TokenError;

/// Errors building a [`Sender`](crate::Sender).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SenderBuildError {
    /// `build` was called outside a tokio runtime (the driver tasks need one).
    #[error("Sender::builder().build() must be called inside a tokio runtime")]
    NoRuntime,
    /// Two endpoints share a name.
    #[error("two endpoints are named {0:?}")]
    DuplicateEndpoint(String),
    /// A transport could not be built (TLS configuration, settings).
    #[error("the transport could not be built")]
    Transport(#[source] BuildError),
    /// An endpoint's client certificate could not be read or is invalid.
    #[error("the client certificate of endpoint {endpoint:?} is unusable")]
    ClientCertificate {
        /// The endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: AuthConfigError,
    },
    /// No transport feature is enabled and no transport was given.
    #[error("no transport: enable the `reqwest` or `hyper` feature or pass one")]
    NoTransport,
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    InvalidSetting(&'static str),
    /// The outbox could not be opened (in use by another process, unusable directory).
    #[error("the outbox could not be opened")]
    Outbox(#[source] crate::outbox::OutboxError),
    /// An event set is invalid or given twice.
    #[error("event set {name:?} is refused")]
    EventSet {
        /// The set.
        name: String,
        /// Why.
        #[source]
        source: webhook_core::SubscriptionError,
    },
    /// An endpoint's subscription names an unknown event set (or is invalid).
    #[error("the subscription of endpoint {endpoint:?} is refused")]
    Subscription {
        /// The endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: webhook_core::SubscriptionError,
    },
}

/// Errors of [`Sender::send`](crate::Sender::send) and
/// [`Sender::try_send`](crate::Sender::try_send); the event is handed back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The sender is shutting down (or was shut down).
    #[error("the sender is shut down")]
    Closed(Event),
    /// `try_send`: the queue of a selecting endpoint under the `Block` policy is full; the
    /// event was queued for no endpoint (retry later, or `send` to wait for room).
    #[error("the endpoint queue is full")]
    Full(Event),
    /// The outbox could not store the event (a write failed: intake stopped); it was queued
    /// for no endpoint.
    #[error("the outbox could not store the event")]
    Outbox(Event, #[source] Box<crate::outbox::OutboxError>),
}

impl SendError {
    /// The event that was not queued.
    #[must_use]
    pub fn into_event(self) -> Event {
        match self {
            Self::Closed(e) | Self::Full(e) | Self::Outbox(e, _) => e,
        }
    }
}

/// Errors of [`Sender::enable`](crate::Sender::enable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnableError {
    /// No endpoint has that name (see [`Sender::endpoints`](crate::Sender::endpoints)).
    #[error("no endpoint named {0:?}")]
    UnknownEndpoint(String),
    /// [`Sender::shutdown`](crate::Sender::shutdown) started: endpoints are not re-enabled
    /// any more; build a new sender.
    #[error("the sender is shut down")]
    ShutDown,
}

/// Errors of [`Sender::test_integration`](crate::Sender::test_integration). A non-2xx answer
/// is not an error: it is reported in the [`TestReport`](crate::TestReport).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestIntegrationError {
    /// No endpoint has that name.
    #[error("no endpoint named {0:?}")]
    UnknownEndpoint(String),
    /// The test event could not be encoded.
    #[error("the test event could not be encoded: {0}")]
    Encode(String),
    /// The endpoint's request builder refused the request.
    #[error("the request could not be built: {0}")]
    Request(String),
    /// The bearer token could not be fetched.
    #[error("the token could not be fetched")]
    Token(#[from] TokenError),
    /// No response (timeout, connection, TLS, SSRF guard).
    #[error("the request failed")]
    Transport(#[from] TransportError),
}
