//! Call-outs (Safous "Rules (Custom)"): a synchronous GET or POST whose URL, headers and body
//! are templated from `%param%` values, sent with Basic or OAuth2 authentication within a
//! timeout, and whose JSON or JSONP answer is turned into allow or deny by response actions.
//!
//! Two levels:
//!
//! * [`Callout`] is the whole rule: built once (templates compiled, unknown parameters refused,
//!   response actions set, a [`FailMode`] for when no answer can be had), then
//!   [`Callout::decide`] per access request with that request's parameters (for example
//!   `webhook_payloads::safous::SafousContext`). It always returns a [`CalloutDecision`]:
//!   a timeout, an unreachable endpoint, a non-2xx status, an unreadable answer or a value that
//!   cannot be rendered decide by the fail mode, and say so.
//! * [`send_callout`] only carries a prepared request (auth, timeout, one token refresh).
//!
//! With OAuth2, a `401` answer invalidates the token that was sent and the call-out is retried
//! once with a fresh token.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use webhook_core::{
    Decision, ParamSet, RenderError, ResponseActions, ResponseError, Template, TemplateContext,
    TemplateError, TemplateParams,
};
use zeroize::Zeroizing;

use crate::error::TransportError;
use crate::token::{AuthorizedSendError, Credential, TokenError, TokenProvider};
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
        CalloutAuth::OAuth2(tokens) => tokens.send(transport, request).await.map_err(|e| match e {
            AuthorizedSendError::Token(e) => CalloutError::Token(e),
            AuthorizedSendError::Transport(e) => CalloutError::Transport(e),
        }),
    }
}

/// What a [`Callout`] decides when it gets no usable answer: a timeout, an unreachable
/// endpoint, a non-2xx status, an answer that is not JSON/JSONP, or a parameter value that cannot
/// be rendered into the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailMode {
    /// Deny (the default: a policy check that cannot run does not grant access).
    #[default]
    Closed,
    /// Allow (availability over enforcement).
    Open,
}

impl FailMode {
    fn decision(self) -> Decision {
        match self {
            Self::Closed => Decision::Deny,
            Self::Open => Decision::Allow,
        }
    }
}

/// A call-out rule: method, templated URL, headers and body, auth, response actions, timeout
/// and fail mode. Build it once with [`Callout::get`] or [`Callout::post`], decide many times.
///
/// ```no_run
/// # #[cfg(any(feature = "reqwest", feature = "hyper"))]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::collections::HashMap;
/// use webhook_core::{Condition, Decision, ResponseActions};
/// use webhook_sender::callout::{Callout, CalloutAuth, FailMode};
/// use webhook_sender::transport::TransportBuilder;
///
/// let rule = Callout::post("https://policy.example.com/check?user=%username%")
///     .header("X-Device", "%device_id%")
///     .body(r#"{"user": "%username%", "ip": "%remote_ip%"}"#)
///     .auth(CalloutAuth::basic("safous", "s3cret"))
///     .actions(
///         ResponseActions::builder()
///             .rule(Decision::Allow, "result.access", Condition::Equals("granted".into()))
///             .build()?,
///     )
///     .fail_mode(FailMode::Closed)
///     .build()?;
///
/// let transport = TransportBuilder::new().build()?;
/// let params: HashMap<String, String> = [("username", "alice"), ("remote_ip", "198.51.100.7"),
///     ("device_id", "dev-42")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
/// let decision = rule.decide(&*transport, &params).await;
/// println!("{:?} because {:?}", decision.decision, decision.basis);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Callout {
    method: Method,
    url: Template,
    headers: Vec<(HeaderName, Template)>,
    body: Option<Template>,
    auth: CalloutAuth,
    actions: ResponseActions,
    timeout: Duration,
    fail: FailMode,
}

/// Builder of a [`Callout`]; [`build`](Self::build) reports the first problem.
#[derive(Debug)]
#[must_use]
pub struct CalloutBuilder {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    params: ParamSet,
    auth: CalloutAuth,
    actions: Option<ResponseActions>,
    timeout: Duration,
    fail: FailMode,
}

impl Callout {
    /// A `GET` call-out to the URL template `url` (headers templated too; no body).
    pub fn get(url: impl Into<String>) -> CalloutBuilder {
        CalloutBuilder::new(Method::GET, url.into())
    }

    /// A `POST` call-out to the URL template `url` (headers and a JSON body templated).
    pub fn post(url: impl Into<String>) -> CalloutBuilder {
        CalloutBuilder::new(Method::POST, url.into())
    }

    /// The fail mode.
    pub fn fail_mode(&self) -> FailMode {
        self.fail
    }

    /// Renders the request for `params` (without auth): what [`decide`](Self::decide) sends.
    ///
    /// # Errors
    /// [`CalloutFailure::Render`] if a value is missing or would break its context (CR/LF in a
    /// header), [`CalloutFailure::InvalidUrl`] if the rendered URL is not absolute.
    pub fn request<P: TemplateParams + ?Sized>(
        &self,
        params: &P,
    ) -> Result<http::Request<Bytes>, CalloutFailure> {
        let url = self.url.render(params).map_err(CalloutFailure::Render)?;
        let body = match &self.body {
            Some(t) => Bytes::from(t.render(params).map_err(CalloutFailure::Render)?),
            None => Bytes::new(),
        };
        let mut request = http::Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = url
            .parse::<http::Uri>()
            .ok()
            .filter(|u| u.scheme().is_some() && u.host().is_some())
            .ok_or(CalloutFailure::InvalidUrl)?;
        if self.body.is_some() {
            request
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for (name, template) in &self.headers {
            let value = template.render(params).map_err(CalloutFailure::Render)?;
            // The header template refuses CR/LF/NUL; other bytes are valid header values.
            let value = HeaderValue::from_str(&value).map_err(|_| CalloutFailure::InvalidHeader)?;
            request.headers_mut().append(name.clone(), value);
        }
        Ok(request)
    }

    /// Runs the call-out for one access request and decides. Never fails: when no usable
    /// answer can be had, the [`FailMode`] decides and [`CalloutDecision::basis`] says why.
    pub async fn decide<P: TemplateParams + ?Sized>(
        &self,
        transport: &dyn Transport,
        params: &P,
    ) -> CalloutDecision {
        let started = tokio::time::Instant::now();
        let failed = |failure, status, body| CalloutDecision {
            decision: self.fail.decision(),
            basis: Basis::Failed(failure),
            status,
            latency: started.elapsed(),
            body,
        };
        let request = match self.request(params) {
            Ok(r) => r,
            Err(f) => return failed(f, None, Bytes::new()),
        };
        let response = match send_callout(transport, request, &self.auth, self.timeout).await {
            Ok(r) => r,
            Err(e) => return failed(CalloutFailure::Call(e), None, Bytes::new()),
        };
        let status = response.status();
        let body = response.into_body();
        if !status.is_success() {
            return failed(CalloutFailure::Status(status), Some(status), body);
        }
        match self.actions.evaluate(&body) {
            Ok(evaluation) => CalloutDecision {
                decision: evaluation.decision,
                basis: evaluation.rule.map_or(Basis::Default, Basis::Rule),
                status: Some(status),
                latency: started.elapsed(),
                body,
            },
            Err(e) => failed(CalloutFailure::Response(e), Some(status), body),
        }
    }
}

impl CalloutBuilder {
    fn new(method: Method, url: String) -> Self {
        Self {
            method,
            url,
            headers: Vec::new(),
            body: None,
            params: ParamSet::safous(),
            auth: CalloutAuth::None,
            actions: None,
            timeout: DEFAULT_CALLOUT_TIMEOUT,
            fail: FailMode::default(),
        }
    }

    /// Adds a header whose value is a template.
    pub fn header(mut self, name: impl Into<String>, value_template: impl Into<String>) -> Self {
        self.headers.push((name.into(), value_template.into()));
        self
    }

    /// The JSON body template (`POST` only); values are JSON-escaped where they are inserted.
    pub fn body(mut self, template: impl Into<String>) -> Self {
        self.body = Some(template.into());
        self
    }

    /// The parameters templates may use (default: the Safous list, plus `%headers.Name%`).
    pub fn params(mut self, params: ParamSet) -> Self {
        self.params = params;
        self
    }

    /// Authentication (default none).
    pub fn auth(mut self, auth: CalloutAuth) -> Self {
        self.auth = auth;
        self
    }

    /// The response actions that turn the answer into allow or deny (required).
    pub fn actions(mut self, actions: ResponseActions) -> Self {
        self.actions = Some(actions);
        self
    }

    /// The timeout of the whole call-out, token fetch included (default
    /// [`DEFAULT_CALLOUT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What to decide without a usable answer (default [`FailMode::Closed`]).
    pub fn fail_mode(mut self, fail: FailMode) -> Self {
        self.fail = fail;
        self
    }

    /// Compiles the templates and checks the rule.
    ///
    /// # Errors
    /// [`CalloutBuildError`] naming the part at fault.
    pub fn build(self) -> Result<Callout, CalloutBuildError> {
        let compile = |ctx, src: &str, part: &str| {
            webhook_core::TemplateBuilder::new(ctx)
                .params(self.params.clone())
                .build(src)
                .map_err(|source| CalloutBuildError::Template {
                    part: part.to_owned(),
                    source,
                })
        };
        let url = compile(TemplateContext::Url, &self.url, "url")?;
        let mut headers = Vec::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| CalloutBuildError::HeaderName(name.clone()))?;
            if header == AUTHORIZATION && !matches!(self.auth, CalloutAuth::None) {
                return Err(CalloutBuildError::HeaderName(name.clone()));
            }
            headers.push((header, compile(TemplateContext::Header, value, name)?));
        }
        let body = match (&self.body, &self.method) {
            (Some(_), m) if m == Method::GET => return Err(CalloutBuildError::BodyWithGet),
            (Some(src), _) => Some(compile(TemplateContext::JsonBody, src, "body")?),
            (None, _) => None,
        };
        if self.timeout.is_zero() {
            return Err(CalloutBuildError::ZeroTimeout);
        }
        let actions = self.actions.ok_or(CalloutBuildError::NoResponseActions)?;
        Ok(Callout {
            method: self.method,
            url,
            headers,
            body,
            auth: self.auth,
            actions,
            timeout: self.timeout,
            fail: self.fail,
        })
    }
}

/// Why a [`Callout`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalloutBuildError {
    /// A template is invalid (unknown parameter, `%` misuse, a placeholder outside a JSON
    /// string, ...).
    #[error("call-out {part}: {source}")]
    Template {
        /// `url`, `body` or the header name.
        part: String,
        /// What is wrong.
        #[source]
        source: TemplateError,
    },
    /// A header name is invalid, or is `Authorization` while the call-out has its own auth.
    #[error("call-out header {0:?} is invalid or reserved for the call-out's auth")]
    HeaderName(String),
    /// A `GET` call-out was given a body.
    #[error("a GET call-out has no body")]
    BodyWithGet,
    /// No response actions: nothing could ever decide.
    #[error("a call-out needs response actions")]
    NoResponseActions,
    /// The timeout is zero.
    #[error("a call-out timeout must be non-zero")]
    ZeroTimeout,
}

/// The outcome of [`Callout::decide`].
#[derive(Debug)]
#[non_exhaustive]
pub struct CalloutDecision {
    /// Allow or deny.
    pub decision: Decision,
    /// Why.
    pub basis: Basis,
    /// The answer's status, when there was one.
    pub status: Option<StatusCode>,
    /// How long the call-out took.
    pub latency: Duration,
    /// The answer's body as received (capped by the transport); empty without an answer.
    pub body: Bytes,
}

/// Why a [`CalloutDecision`] went the way it did.
#[derive(Debug)]
#[non_exhaustive]
pub enum Basis {
    /// The response action at this index held.
    Rule(usize),
    /// No response action held: the default decision of the actions.
    Default,
    /// No usable answer: the [`FailMode`] decided.
    Failed(CalloutFailure),
}

/// Why a call-out produced no usable answer. Never carries a secret or a parameter value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalloutFailure {
    /// A parameter is missing or its value would break its context.
    #[error("call-out request could not be rendered: {0}")]
    Render(#[source] RenderError),
    /// The rendered URL is not an absolute URL.
    #[error("rendered call-out URL is not absolute")]
    InvalidUrl,
    /// A rendered header value cannot be sent.
    #[error("rendered call-out header cannot be sent")]
    InvalidHeader,
    /// Sending failed (timeout, connection, TLS, token, ...).
    #[error(transparent)]
    Call(CalloutError),
    /// The endpoint answered with a non-2xx status.
    #[error("call-out endpoint answered {0}")]
    Status(StatusCode),
    /// The answer is not JSON/JSONP (or too large) for the response actions.
    #[error("call-out answer unreadable: {0}")]
    Response(#[source] ResponseError),
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

    mod rules {
        use std::collections::HashMap;
        use std::sync::{Arc, Mutex};

        use http::HeaderMap;
        use webhook_core::{Condition, Decision, ResponseActions};

        use super::super::*;
        use crate::transport::{ResponseFuture, Transport};

        /// An in-process transport: records each request, answers as programmed.
        #[derive(Debug, Clone)]
        struct Scripted {
            /// `None`: never answers.
            answer: Option<(StatusCode, &'static str)>,
            seen: Arc<Mutex<Vec<http::Request<Bytes>>>>,
        }

        impl Scripted {
            fn answering(status: StatusCode, body: &'static str) -> Self {
                Self {
                    answer: Some((status, body)),
                    seen: Arc::default(),
                }
            }

            /// Never answers (the call-out's timeout must fire).
            fn silent() -> Self {
                Self {
                    answer: None,
                    seen: Arc::default(),
                }
            }

            fn last(&self) -> http::Request<Bytes> {
                let seen = self.seen.lock().unwrap();
                let r = seen.last().expect("a request was sent");
                let mut copy = http::Request::new(r.body().clone());
                *copy.method_mut() = r.method().clone();
                *copy.uri_mut() = r.uri().clone();
                *copy.headers_mut() = r.headers().clone();
                copy
            }
        }

        impl Transport for Scripted {
            fn send(&self, request: http::Request<Bytes>) -> ResponseFuture {
                self.seen.lock().unwrap().push(request);
                let answer = self.answer;
                Box::pin(async move {
                    match answer {
                        Some((status, body)) => Ok(Response::new(
                            status,
                            HeaderMap::new(),
                            Bytes::from_static(body.as_bytes()),
                        )),
                        None => std::future::pending().await,
                    }
                })
            }
        }

        fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        }

        fn actions() -> ResponseActions {
            ResponseActions::builder()
                .rule(
                    Decision::Deny,
                    "result.blocked",
                    Condition::Equals("true".into()),
                )
                .rule(
                    Decision::Allow,
                    "result.access",
                    Condition::Equals("granted".into()),
                )
                .build()
                .unwrap()
        }

        fn rule() -> Callout {
            Callout::post("https://policy.example.com/check?user=%username%")
                .header("X-Device", "%device_id%")
                .body(r#"{"user":"%username%","ip":"%remote_ip%"}"#)
                .auth(CalloutAuth::basic("safous", "s3cret"))
                .actions(actions())
                .build()
                .unwrap()
        }

        #[tokio::test]
        async fn renders_escapes_authenticates_and_decides_by_rule() {
            let t = Scripted::answering(StatusCode::OK, r#"{"result":{"access":"granted"}}"#);
            let p = params(&[
                ("username", "al ice\"\u{e9}"),
                ("remote_ip", "198.51.100.7"),
                ("device_id", "dev-42"),
            ]);
            let d = rule().decide(&t, &p).await;
            assert_eq!(d.decision, Decision::Allow);
            assert!(matches!(d.basis, Basis::Rule(1)), "{:?}", d.basis);
            assert_eq!(d.status, Some(StatusCode::OK));
            let sent = t.last();
            assert_eq!(sent.method(), Method::POST);
            assert_eq!(
                sent.uri(),
                "https://policy.example.com/check?user=al%20ice%22%C3%A9"
            );
            assert_eq!(sent.headers()["x-device"], "dev-42");
            assert_eq!(sent.headers()["content-type"], "application/json");
            assert_eq!(
                sent.headers()["authorization"],
                "Basic c2Fmb3VzOnMzY3JldA=="
            );
            // The quote is escaped: the body is JSON with exactly the two keys.
            let body: serde_json::Value = serde_json::from_slice(sent.body()).unwrap();
            assert_eq!(body["user"], "al ice\"\u{e9}");
            assert_eq!(body.as_object().unwrap().len(), 2);
        }

        #[tokio::test]
        async fn default_decision_when_no_rule_holds_and_jsonp() {
            let t = Scripted::answering(StatusCode::OK, r#"cb({"result":{"access":"pending"}})"#);
            let p = params(&[
                ("username", "bob"),
                ("remote_ip", "1.2.3.4"),
                ("device_id", "d"),
            ]);
            let d = rule().decide(&t, &p).await;
            assert_eq!(d.decision, Decision::Deny);
            assert!(matches!(d.basis, Basis::Default));
        }

        #[tokio::test]
        async fn failures_decide_by_fail_mode() {
            let p = params(&[
                ("username", "bob"),
                ("remote_ip", "1.2.3.4"),
                ("device_id", "d"),
            ]);
            let open = |t| {
                Callout::get("https://policy.example.com/check?u=%username%")
                    .actions(actions())
                    .timeout(Duration::from_millis(50))
                    .fail_mode(FailMode::Open)
                    .build()
                    .map(|c| (c, t))
                    .unwrap()
            };
            // Non-2xx: no answer to evaluate.
            let (c, t) = open(Scripted::answering(StatusCode::SERVICE_UNAVAILABLE, "down"));
            let d = c.decide(&t, &p).await;
            assert_eq!(d.decision, Decision::Allow);
            assert!(matches!(
                d.basis,
                Basis::Failed(CalloutFailure::Status(StatusCode::SERVICE_UNAVAILABLE))
            ));
            // Not JSON.
            let (c, t) = open(Scripted::answering(StatusCode::OK, "<html>"));
            let d = c.decide(&t, &p).await;
            assert!(matches!(
                d.basis,
                Basis::Failed(CalloutFailure::Response(_))
            ));
            // Timeout.
            let (c, t) = open(Scripted::silent());
            let d = c.decide(&t, &p).await;
            assert!(
                matches!(&d.basis, Basis::Failed(CalloutFailure::Call(e)) if e.is_timeout()),
                "{:?}",
                d.basis
            );
            // Fail closed denies the same timeout.
            let closed = Callout::get("https://policy.example.com/check")
                .actions(actions())
                .timeout(Duration::from_millis(50))
                .build()
                .unwrap();
            assert_eq!(closed.fail_mode(), FailMode::Closed);
            let d = closed.decide(&Scripted::silent(), &p).await;
            assert_eq!(d.decision, Decision::Deny);
        }

        #[tokio::test]
        async fn header_injection_and_missing_values_never_reach_the_wire() {
            let t = Scripted::answering(StatusCode::OK, r#"{"result":{"access":"granted"}}"#);
            let evil = params(&[
                ("username", "bob"),
                ("remote_ip", "1.2.3.4"),
                ("device_id", "d\r\nX-Admin: 1"),
            ]);
            let d = rule().decide(&t, &evil).await;
            assert_eq!(d.decision, Decision::Deny);
            assert!(matches!(d.basis, Basis::Failed(CalloutFailure::Render(_))));
            let missing = params(&[("username", "bob")]);
            let d = rule().decide(&t, &missing).await;
            assert!(matches!(d.basis, Basis::Failed(CalloutFailure::Render(_))));
            assert!(t.seen.lock().unwrap().is_empty(), "nothing was sent");
        }

        #[test]
        fn build_errors_name_the_part() {
            let unknown = Callout::get("https://h/%nope%").actions(actions()).build();
            assert!(
                matches!(&unknown, Err(CalloutBuildError::Template { part, .. }) if part == "url")
            );
            assert!(matches!(
                Callout::get("https://h/")
                    .body("{}")
                    .actions(actions())
                    .build(),
                Err(CalloutBuildError::BodyWithGet)
            ));
            assert!(matches!(
                Callout::get("https://h/").build(),
                Err(CalloutBuildError::NoResponseActions)
            ));
            assert!(matches!(
                Callout::get("https://h/")
                    .header("bad header", "x")
                    .actions(actions())
                    .build(),
                Err(CalloutBuildError::HeaderName(_))
            ));
            assert!(matches!(
                Callout::get("https://h/")
                    .header("Authorization", "x")
                    .auth(CalloutAuth::basic("u", "p"))
                    .actions(actions())
                    .build(),
                Err(CalloutBuildError::HeaderName(_))
            ));
            assert!(matches!(
                Callout::post("https://h/")
                    .body(r#"{"a": %username%}"#)
                    .actions(actions())
                    .build(),
                Err(CalloutBuildError::Template { .. })
            ));
        }
    }
}
