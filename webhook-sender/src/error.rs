//! Errors of the I/O layer: sending a request ([`TransportError`]) and building a transport
//! ([`BuildError`]).
//!
//! Neither ever carries a secret: no URL (its path or query may hold a token), no header value,
//! no body. Underlying errors are kept as sources for diagnostics.

use std::error::Error as StdError;
#[cfg(any(feature = "reqwest", feature = "hyper"))]
use std::io;
use std::time::Duration;

#[cfg(any(feature = "reqwest", feature = "hyper"))]
use crate::ssrf::ResolveError;
use crate::ssrf::SsrfViolation;
use crate::tls::TlsError;

pub(crate) type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a request could not be completed. Use the predicates (`is_timeout()`, ...) rather than
/// matching, so new variants do not break callers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The whole exchange (connect, send, response head and capped body) exceeded the timeout.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// The SSRF guard refused the destination before any connection was made.
    #[error(transparent)]
    SsrfRefused(SsrfViolation),
    /// The host name could not be resolved.
    #[error("DNS lookup failed")]
    Dns(#[source] BoxError),
    /// No TCP connection could be established (refused, unreachable, connect timeout).
    #[error("connection failed")]
    Connect(#[source] BoxError),
    /// The TLS handshake failed (untrusted or invalid certificate, client certificate
    /// required, protocol mismatch).
    #[error("TLS handshake failed")]
    Tls(#[source] BoxError),
    /// The request cannot be sent as given (not an absolute `http`/`https` URI, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The HTTP exchange failed after connecting (connection reset, protocol error).
    #[error("HTTP exchange failed")]
    Http(#[source] BoxError),
    /// Reading the response body failed.
    #[error("reading the response body failed")]
    Body(#[source] BoxError),
}

impl TransportError {
    /// The exchange exceeded its timeout.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }

    /// No connection could be established (includes DNS failures, like reqwest).
    #[must_use]
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::Dns(_))
    }

    /// The host name could not be resolved.
    #[must_use]
    pub fn is_dns(&self) -> bool {
        matches!(self, Self::Dns(_))
    }

    /// The TLS handshake failed.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    /// The SSRF guard refused the destination.
    #[must_use]
    pub fn is_refused_by_ssrf_guard(&self) -> bool {
        matches!(self, Self::SsrfRefused(_))
    }

    /// The refusal details when the SSRF guard refused the destination.
    #[must_use]
    pub fn ssrf_violation(&self) -> Option<&SsrfViolation> {
        match self {
            Self::SsrfRefused(v) => Some(v),
            _ => None,
        }
    }

    /// Whether retrying later may succeed (everything but SSRF refusals and invalid requests).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::SsrfRefused(_) | Self::InvalidRequest(_))
    }

    #[cfg(any(feature = "reqwest", feature = "hyper"))]
    /// Classifies an error of an HTTP client by walking its source chain (stepping into
    /// `io::Error` payloads, which `source()` skips). `connect_hint` says whether the client
    /// itself reported a connection-phase error.
    pub(crate) fn classify(err: BoxError, connect_hint: bool) -> Self {
        let mut tls = false;
        let mut dns = false;
        let mut connect = connect_hint;
        for link in chain(&*err) {
            if let Some(v) = link.downcast_ref::<SsrfViolation>() {
                return Self::SsrfRefused(v.clone());
            }
            match link.downcast_ref::<ResolveError>() {
                Some(ResolveError::Ssrf(v)) => return Self::SsrfRefused(v.clone()),
                Some(_) => dns = true,
                None => {}
            }
            if link.downcast_ref::<rustls::Error>().is_some() {
                tls = true;
            }
            if let Some(io) = link.downcast_ref::<io::Error>() {
                if io.kind() == io::ErrorKind::InvalidData && is_stringified_tls_error(io) {
                    tls = true;
                }
                if matches!(
                    io.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::HostUnreachable
                        | io::ErrorKind::NetworkUnreachable
                        | io::ErrorKind::AddrNotAvailable
                ) {
                    connect = true;
                }
            }
        }
        if tls {
            Self::Tls(err)
        } else if dns {
            Self::Dns(err)
        } else if connect {
            Self::Connect(err)
        } else {
            Self::Http(err)
        }
    }
}

#[cfg(any(feature = "reqwest", feature = "hyper"))]
/// HTTP/2 (the `h2` crate) re-creates I/O errors from their message, so a rustls error that
/// arrives after the handshake (a TLS 1.3 server rejecting the client certificate sends its
/// alert then) reaches us as text. Recognise rustls' messages for peer-caused failures.
fn is_stringified_tls_error(io: &io::Error) -> bool {
    const RUSTLS_MESSAGES: [&str; 5] = [
        "received fatal alert: ",
        "invalid peer certificate: ",
        "peer is incompatible: ",
        "peer misbehaved: ",
        "peer sent no certificates",
    ];
    io.get_ref()
        .filter(|inner| inner.downcast_ref::<rustls::Error>().is_none())
        .map(ToString::to_string)
        .is_some_and(|msg| RUSTLS_MESSAGES.iter().any(|m| msg.starts_with(m)))
}

#[cfg(any(feature = "reqwest", feature = "hyper"))]
/// The source chain of an error, stepping into the payload of `io::Error`s.
fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    let mut next: Option<&'a (dyn StdError + 'static)> = Some(err);
    std::iter::from_fn(move || {
        let cur = next?;
        next = match cur.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => cur.source(),
        };
        Some(cur)
    })
}

/// Why a transport could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The TLS configuration is invalid.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A setting is out of range.
    #[error("invalid transport setting: {0}")]
    InvalidSetting(&'static str),
    /// The HTTP client library refused the configuration.
    #[error("HTTP client could not be built")]
    Client(#[source] BoxError),
}

// The tests exercise `classify`, which only the built-in transports use.
#[cfg(all(test, any(feature = "reqwest", feature = "hyper")))]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn classify_walks_into_io_payloads() {
        let tls: BoxError = Box::new(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        assert!(TransportError::classify(tls, true).is_tls());

        let refused: BoxError = Box::new(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(TransportError::classify(refused, false).is_connect());

        let violation = SsrfViolation {
            host: "h".into(),
            addr: IpAddr::from([10, 0, 0, 1]),
            range: "private 10.0.0.0/8",
        };
        let ssrf: BoxError = Box::new(io::Error::other(ResolveError::Ssrf(violation.clone())));
        let err = TransportError::classify(ssrf, true);
        assert!(err.is_refused_by_ssrf_guard());
        assert_eq!(err.ssrf_violation(), Some(&violation));
        assert!(!err.is_transient());

        let alert: BoxError = Box::new(io::Error::new(
            io::ErrorKind::InvalidData,
            "received fatal alert: CertificateRequired",
        ));
        assert!(TransportError::classify(alert, false).is_tls());

        let other: BoxError = "reset".into();
        let err = TransportError::classify(other, false);
        assert!(matches!(err, TransportError::Http(_)));
        assert!(err.is_transient());
    }
}
