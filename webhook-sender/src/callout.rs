//! Call-outs: send a prepared GET or POST request (Safous "Rules (Custom)") with Basic or OAuth2
//! authentication and a timeout, and return the response for evaluation.
//!
//! Templating the request and evaluating the response into allow/deny belong to
//! `webhook-core`; this module only carries the request. With OAuth2, a `401` answer
//! invalidates the token that was sent and the call-out is retried once with a fresh token.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, StatusCode};
use zeroize::Zeroizing;

use crate::error::TransportError;
use crate::token::{Credential, TokenError, TokenProvider};
use crate::transport::{RequestTimeout, Response, Transport};

/// Default timeout of a call-out (token fetch included).
pub const DEFAULT_CALLOUT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a call-out authenticates.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum CalloutAuth {
    /// No `Authorization` header is added.
    #[default]
    None,
    /// HTTP Basic (RFC 7617).
    Basic {
        /// The user name (must not contain `:`).
        username: String,
        /// The password.
        password: Credential,
    },
    /// A bearer token from an OAuth2 (or authentication-URL) [`TokenProvider`].
    OAuth2(TokenProvider),
}

impl CalloutAuth {
    /// HTTP Basic credentials.
    ///
    /// ```
    /// use webhook_sender::callout::CalloutAuth;
    /// let auth = CalloutAuth::basic("svc", "s3cret");
    /// assert!(!format!("{auth:?}").contains("s3cret"));
    /// ```
    #[must_use]
    pub fn basic(username: impl Into<String>, password: impl Into<Credential>) -> Self {
        Self::Basic {
            username: username.into(),
            password: password.into(),
        }
    }
}

/// Why a call-out produced no response. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalloutError {
    /// Only `GET` and `POST` call-outs are supported.
    #[error("call-out method must be GET or POST, not {0}")]
    UnsupportedMethod(Method),
    /// The Basic credentials cannot be sent (colon in the user name, control characters).
    #[error("call-out Basic credentials cannot be sent")]
    InvalidCredentials,
    /// The call-out (token fetch included) exceeded its timeout.
    #[error("call-out timed out after {0:?}")]
    Timeout(Duration),
    /// No token could be obtained for OAuth2.
    #[error("call-out token fetch failed")]
    Token(#[source] TokenError),
    /// The request failed.
    #[error("call-out request failed")]
    Transport(#[source] TransportError),
}

impl CalloutError {
    /// Whether the call-out timed out (directly or in the transport).
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Timeout(_) => true,
            Self::Transport(e) => e.is_timeout(),
            _ => false,
        }
    }
}

/// Sends a prepared call-out `request` (GET or POST, absolute URL) through `transport`, adding
/// `Authorization` from `auth` (replacing any present), within `timeout` (token fetch
/// included). Returns the response whatever its status; with [`CalloutAuth::OAuth2`] a `401`
/// is retried once with a fresh token.
///
/// # Errors
/// [`CalloutError`] for an unsupported method, unusable credentials, a timeout, a failed token
/// fetch or a transport failure.
///
/// ```no_run
/// # #[cfg(any(feature = "reqwest", feature = "hyper"))]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use webhook_sender::callout::{send_callout, CalloutAuth};
/// use webhook_sender::transport::TransportBuilder;
///
/// let transport = TransportBuilder::new().build()?;
/// let request = http::Request::get("https://policy.example.com/check?user=alice").body(bytes::Bytes::new())?;
/// let auth = CalloutAuth::basic("svc", "s3cret");
/// let response = send_callout(&transport, request, &auth, Duration::from_secs(5)).await?;
/// let allow = response.status().is_success();
/// # let _ = allow;
/// # Ok(()) }
/// ```
pub async fn send_callout(
    transport: &dyn Transport,
    request: http::Request<Bytes>,
    auth: &CalloutAuth,
    timeout: Duration,
) -> Result<Response, CalloutError> {
    if request.method() != Method::GET && request.method() != Method::POST {
        return Err(CalloutError::UnsupportedMethod(request.method().clone()));
    }
    match tokio::time::timeout(timeout, run(transport, request, auth, timeout)).await {
        Ok(result) => result,
        Err(_) => Err(CalloutError::Timeout(timeout)),
    }
}

async fn run(
    transport: &dyn Transport,
    mut request: http::Request<Bytes>,
    auth: &CalloutAuth,
    timeout: Duration,
) -> Result<Response, CalloutError> {
    request.extensions_mut().insert(RequestTimeout(timeout));
    match auth {
        CalloutAuth::None => transport
            .send(request)
            .await
            .map_err(CalloutError::Transport),
        CalloutAuth::Basic { username, password } => {
            let value = basic_header(username, password)?;
            request.headers_mut().insert(AUTHORIZATION, value);
            transport
                .send(request)
                .await
                .map_err(CalloutError::Transport)
        }
        CalloutAuth::OAuth2(tokens) => {
            let retry = copy_request(&request);
            let sent_with = tokens
                .authorize(&mut request)
                .await
                .map_err(CalloutError::Token)?;
            let response = transport
                .send(request)
                .await
                .map_err(CalloutError::Transport)?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            tracing::debug!("call-out answered 401: refreshing the token once");
            tokens.invalidate_if_current(&sent_with);
            let mut retry = retry;
            tokens
                .authorize(&mut retry)
                .await
                .map_err(CalloutError::Token)?;
            transport.send(retry).await.map_err(CalloutError::Transport)
        }
    }
}

fn copy_request(request: &http::Request<Bytes>) -> http::Request<Bytes> {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    if let Some(t) = request.extensions().get::<RequestTimeout>() {
        copy.extensions_mut().insert(*t);
    }
    copy
}

fn basic_header(username: &str, password: &Credential) -> Result<HeaderValue, CalloutError> {
    if username.contains(':')
        || username.chars().any(char::is_control)
        || password.expose().chars().any(char::is_control)
    {
        return Err(CalloutError::InvalidCredentials);
    }
    let plain = Zeroizing::new(format!("{username}:{}", password.expose()));
    let encoded =
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(plain.as_bytes()));
    let mut value = HeaderValue::try_from(format!("Basic {}", encoded.as_str()))
        .map_err(|_| CalloutError::InvalidCredentials)?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_encodes_and_validates() -> Result<(), CalloutError> {
        let v = basic_header("Aladdin", &Credential::new("open sesame"))?;
        assert_eq!(v, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(v.is_sensitive());
        assert!(matches!(
            basic_header("a:b", &Credential::new("p")),
            Err(CalloutError::InvalidCredentials)
        ));
        assert!(matches!(
            basic_header("a", &Credential::new("p\r\n")),
            Err(CalloutError::InvalidCredentials)
        ));
        Ok(())
    }

    #[test]
    fn copy_keeps_everything_needed_for_a_retry() -> Result<(), http::Error> {
        let mut req = http::Request::post("https://x.test/a?b=c")
            .header("x-k", "v")
            .body(Bytes::from_static(b"{}"))?;
        req.extensions_mut()
            .insert(RequestTimeout(Duration::from_secs(2)));
        let copy = copy_request(&req);
        assert_eq!(copy.method(), Method::POST);
        assert_eq!(copy.uri(), req.uri());
        assert_eq!(copy.headers(), req.headers());
        assert_eq!(copy.body(), req.body());
        assert_eq!(
            copy.extensions().get::<RequestTimeout>(),
            Some(&RequestTimeout(Duration::from_secs(2)))
        );
        Ok(())
    }
}
