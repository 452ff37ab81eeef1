//! How an event's delivery ends, and why: the vocabulary of the [`Delivery`](super::Delivery)
//! machine's settlement outputs, shared by every driver and store (the sender's receipts, dead
//! letters and shutdown report are built from it).

use http::StatusCode;

/// Why an event was not delivered to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FailureReason {
    /// The endpoint answered with a status that retrying cannot fix (3xx, 4xx other than
    /// 408/410/429, 501).
    #[error("rejected by the endpoint with status {status}")]
    Rejected {
        /// The status.
        status: StatusCode,
    },
    /// The endpoint answered `webhook-delivery: abort-message` for this batch.
    #[error("the endpoint asked to abort this message (status {status})")]
    Aborted {
        /// The status of that answer.
        status: StatusCode,
    },
    /// The endpoint is disabled (410 Gone, `webhook-delivery: disable`, or its health
    /// `disable_after` window ran out); events queued for it fail with this reason.
    #[error("the endpoint is disabled")]
    EndpointDisabled,
    /// The endpoint was removed with a policy that does not deliver what it held first (the
    /// events it held but had not sent, and the batches whose attempt in flight then failed).
    #[error("the endpoint was removed")]
    EndpointRemoved,
    /// The retry policy gave up (attempts or elapsed time exhausted).
    #[error("retries exhausted after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The outcome of the last attempt.
        last: AttemptError,
    },
    /// The event alone encodes above the endpoint's `max_bytes`.
    #[error("the event is larger than the endpoint's batch byte limit")]
    Oversize,
    /// The request could not be built (for example a signing failure); not retried.
    #[error("the request could not be built: {0}")]
    Request(String),
    /// Shutdown's deadline passed before the event was delivered (the sender also lists it in
    /// its shutdown report).
    #[error("the sender shut down before the event was delivered")]
    Shutdown,
    /// The driver stopped unexpectedly (a panic or a dropped runtime).
    #[error("the sender stopped before the event was delivered")]
    SenderStopped,
}

/// The outcome of one failed attempt (the last one, in [`FailureReason::RetriesExhausted`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttemptError {
    /// A non-2xx response.
    #[error("status {0}")]
    Status(StatusCode),
    /// The request timed out.
    #[error("timeout")]
    Timeout,
    /// No response: DNS, connect, TLS, reset, or the SSRF guard refused the address.
    #[error("connection failed")]
    Connect,
    /// The bearer token could not be fetched from the authentication URL.
    #[error("token fetch failed")]
    Token,
    /// The request was refused before it left and would be refused again (the SSRF guard
    /// refused the address): given up at once, never retried.
    #[error("refused by the SSRF guard before sending (a private, loopback or metadata address)")]
    Refused,
}

/// Why an endpoint was disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisableReason {
    /// It answered 410 Gone or `webhook-delivery: disable`.
    Receiver {
        /// The status of that answer.
        status: StatusCode,
    },
    /// Nothing succeeded for the health `disable_after` window.
    HealthWindow,
}

/// Where undelivered events were when shutdown's deadline passed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UndeliveredStage {
    /// Never sent (queued or batched; or the endpoint was already disabled).
    NotSent,
    /// A request was in flight and was cancelled at the deadline.
    InFlight,
    /// Waiting for a retry after a failed attempt.
    RetryPending {
        /// The last attempt's error.
        last: AttemptError,
    },
}
