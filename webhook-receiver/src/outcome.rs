//! What a handler answers, and how it maps to the response.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;

/// The result of handling one payload.
///
/// | outcome | status | the sender should |
/// | --- | --- | --- |
/// | [`Accepted`](HandlerOutcome::Accepted) | `200` (empty body) | move on |
/// | [`Respond`](HandlerOutcome::Respond) | the given 2xx, JSON body | read the decision |
/// | [`Overloaded`](HandlerOutcome::Overloaded) | `429` (+ `Retry-After`) | retry later |
/// | [`Failed`](HandlerOutcome::Failed) | `500` | retry (the event is not lost) |
///
/// In a batch, items are handled in order and the first non-accepted outcome stops the batch:
/// `Failed` answers `500`, `Overloaded` answers `429`, and nothing is acknowledged (the message
/// id is not recorded), so the sender's retry of the whole request is accepted. Handlers of a
/// batch should therefore be idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandlerOutcome {
    /// Handled; answer `200 OK` without a body.
    Accepted,
    /// Handled; answer with this 2xx status and JSON body (decision call-outs).
    Respond {
        /// A 2xx status.
        status: StatusCode,
        /// A JSON document.
        body: Bytes,
    },
    /// The handler cannot take more work now; answer `429`.
    Overloaded {
        /// Sent as `Retry-After` (whole seconds) when set.
        retry_after: Option<Duration>,
    },
    /// The handler failed; answer `500` so the sender retries. The reason is logged, never sent.
    Failed {
        /// Why (for logs only).
        reason: Cow<'static, str>,
    },
}

impl HandlerOutcome {
    /// `200 OK` with a JSON body serialized from `value` (`Failed` if it cannot be serialized).
    ///
    /// ```
    /// use webhook_receiver::HandlerOutcome;
    ///
    /// let o = HandlerOutcome::json(&serde_json::json!({"decision": "allow"}));
    /// assert!(matches!(o, HandlerOutcome::Respond { status, .. } if status == http::StatusCode::OK));
    /// ```
    pub fn json<S: serde::Serialize + ?Sized>(value: &S) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::Respond {
                status: StatusCode::OK,
                body: Bytes::from(body),
            },
            Err(e) => Self::Failed {
                reason: Cow::Owned(format!("response serialization failed: {e}")),
            },
        }
    }

    /// A handler failure with a reason for the logs.
    pub fn failed(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Failed {
            reason: reason.into(),
        }
    }

    /// Overloaded, asking the sender to retry after `after`.
    pub fn overloaded(retry_after: Option<Duration>) -> Self {
        Self::Overloaded { retry_after }
    }

    /// Whether this outcome acknowledges the payload.
    pub fn is_acknowledged(&self) -> bool {
        matches!(self, Self::Accepted | Self::Respond { .. })
    }
}

impl<E: std::fmt::Display> From<Result<(), E>> for HandlerOutcome {
    /// `Ok(())` is accepted; `Err(e)` is a failure logged with `e`.
    fn from(r: Result<(), E>) -> Self {
        match r {
            Ok(()) => Self::Accepted,
            Err(e) => Self::failed(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged() {
        assert!(HandlerOutcome::Accepted.is_acknowledged());
        assert!(HandlerOutcome::json(&1).is_acknowledged());
        assert!(!HandlerOutcome::failed("x").is_acknowledged());
        assert!(!HandlerOutcome::overloaded(None).is_acknowledged());
    }

    #[test]
    fn from_result() {
        assert_eq!(
            HandlerOutcome::from(Ok::<(), String>(())),
            HandlerOutcome::Accepted
        );
        assert!(matches!(
            HandlerOutcome::from(Err::<(), _>("db down")),
            HandlerOutcome::Failed { reason } if reason == "db down"
        ));
    }
}
