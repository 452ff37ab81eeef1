//! Errors of the tower services.
//!
//! Refused requests are not errors: both services answer them with a status code and a JSON
//! body (see [`Rejection`](crate::Rejection)). The [`Receiver`](crate::Receiver) service never
//! fails (`Infallible`); [`Verify`](super::Verify) passes its inner service's errors through.

/// The error type request bodies may have (`B::Error: Into<BoxError>`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
