//! Integration tests of the I/O layer against real servers on 127.0.0.1: both transports,
//! TLS and mTLS with rcgen certificates, the SSRF guard, redirects, timeouts, the body cap,
//! token-fetching auth and call-outs.
#![cfg(any(feature = "reqwest", feature = "hyper"))]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{StatusCode, Version};
use webhook_sender::callout::{Basis, Callout, CalloutAuth, CalloutError, send_callout};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::tls::TlsConfig;
use webhook_sender::token::{AuthUrlSource, ClientCredentialsSource, TokenError, TokenProvider};
use webhook_sender::transport::{RequestTimeout, SharedTransport, TransportBuilder};

use support::{BoxError, Pki, SilentServer, TestServer};

type TestResult = Result<(), BoxError>;

/// The SSRF policy tests use: loopback IPv4 re-opened.
fn loopback() -> SsrfPolicy {
    SsrfPolicy::default().allow("127.0.0.0/8".parse().expect("valid CIDR"))
}

fn local() -> TransportBuilder {
    TransportBuilder::new().ssrf(loopback())
}

/// The same settings built into every available transport.
#[allow(
    clippy::vec_init_then_push,
    reason = "the pushes depend on the enabled features"
)]
fn each(builder: TransportBuilder) -> Result<Vec<(&'static str, SharedTransport)>, BoxError> {
    let mut all: Vec<(&'static str, SharedTransport)> = Vec::new();
    #[cfg(feature = "reqwest")]
    all.push(("reqwest", Arc::new(builder.clone().build_reqwest()?)));
    #[cfg(feature = "hyper")]
    all.push(("hyper", Arc::new(builder.clone().build_hyper()?)));
    let _ = builder;
    Ok(all)
}

fn get(url: &str) -> Result<http::Request<Bytes>, http::Error> {
    http::Request::get(url).body(Bytes::new())
}

#[tokio::test]
async fn plain_http_reuses_one_connection() -> TestResult {
    for (name, transport) in each(local())? {
        let server = TestServer::start(None).await?;
        for _ in 0..5 {
            let response = transport.send(get(&server.url("/ok"))?).await?;
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            assert_eq!(response.body().as_ref(), b"ok", "{name}");
            assert_eq!(response.version(), Version::HTTP_11, "{name}");
            assert!(!response.is_body_truncated());
            // An HTTP/1.1 connection returns to the pool from a background task once the
            // response is complete; give it a moment, as a sender between batches would.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            server.state.connections.load(Ordering::SeqCst),
            1,
            "{name}: pooled connection"
        );
    }
    Ok(())
}

#[tokio::test]
async fn redirects_are_returned_not_followed() -> TestResult {
    for (name, transport) in each(local())? {
        let server = TestServer::start(None).await?;
        let response = transport.send(get(&server.url("/redirect"))?).await?;
        assert_eq!(response.status(), StatusCode::FOUND, "{name}");
        assert_eq!(response.headers()["location"], "/ok");
        assert_eq!(response.body().as_ref(), b"moved");
        assert_eq!(server.state.hits("/redirect"), 1);
        assert_eq!(server.state.hits("/ok"), 0, "{name} followed the redirect");
    }
    Ok(())
}

#[tokio::test]
async fn response_body_is_capped() -> TestResult {
    for (name, transport) in each(local().max_response_body(1000))? {
        let server = TestServer::start(None).await?;
        let response = transport.send(get(&server.url("/big"))?).await?;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body().len(), 1000, "{name}");
        assert!(response.body().iter().all(|&b| b == b'x'));
        assert!(response.is_body_truncated(), "{name}");
        let small = transport.send(get(&server.url("/ok"))?).await?;
        assert_eq!(small.body().as_ref(), b"ok");
        assert!(!small.is_body_truncated());
    }
    Ok(())
}

#[tokio::test]
async fn silent_server_times_out() -> TestResult {
    let silent = SilentServer::start().await?;
    let url = format!("http://{}/", silent.addr);
    for (name, transport) in each(local().timeout(Duration::from_millis(300)))? {
        let started = tokio::time::Instant::now();
        let err = transport.send(get(&url)?).await.expect_err("no answer");
        assert!(err.is_timeout(), "{name}: {err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        // A per-request override.
        let mut request = get(&url)?;
        request
            .extensions_mut()
            .insert(RequestTimeout(Duration::from_millis(50)));
        let err = transport.send(request).await.expect_err("no answer");
        assert!(
            matches!(err, webhook_sender::TransportError::Timeout(d) if d == Duration::from_millis(50)),
            "{name}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() -> TestResult {
    let addr = support::closed_port().await?;
    for (name, transport) in each(local())? {
        let err = transport
            .send(get(&format!("http://{addr}/"))?)
            .await
            .expect_err("closed");
        assert!(err.is_connect(), "{name}: {err:?}");
        assert!(!err.is_timeout() && !err.is_tls() && !err.is_refused_by_ssrf_guard());
    }
    Ok(())
}

#[tokio::test]
async fn ssrf_guard_refuses_private_literals_before_connecting() -> TestResult {
    let server = TestServer::start(None).await?;
    let port = server.addr.port();
    // Refused before any connection: nothing is ever sent to these addresses.
    let urls = [
        format!("http://127.0.0.1:{port}/ok"),
        "http://10.0.0.1:9/".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        format!("http://[::1]:{port}/ok"),
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
        "https://192.168.0.1/".to_owned(),
        // Numeric host spellings that URL parsers or the system resolver read as 127.0.0.1.
        format!("http://2130706433:{port}/ok"),
        format!("http://0x7f.0.0.1:{port}/ok"),
        format!("http://127.1:{port}/ok"),
    ];
    for (name, transport) in each(TransportBuilder::new())? {
        for url in &urls {
            let err = transport.send(get(url)?).await.expect_err("refused");
            assert!(err.is_refused_by_ssrf_guard(), "{name} {url}: {err:?}");
            assert!(
                !err.to_string().contains("/ok"),
                "error must not carry the URL"
            );
        }
    }
    assert_eq!(server.state.connections.load(Ordering::SeqCst), 0);
    // The allow-list re-opens loopback IPv4 (and its IPv4-mapped form), nothing else.
    for (name, transport) in each(local())? {
        let ok = transport
            .send(get(&format!("http://127.0.0.1:{port}/ok"))?)
            .await?;
        assert_eq!(ok.status(), StatusCode::OK, "{name}");
        let err = transport
            .send(get("http://10.0.0.1:9/")?)
            .await
            .expect_err("refused");
        assert!(err.is_refused_by_ssrf_guard(), "{name}");
        let err = transport
            .send(get(&format!("http://[::1]:{port}/"))?)
            .await
            .expect_err("refused");
        assert!(err.is_refused_by_ssrf_guard(), "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn ssrf_guard_applies_after_dns_resolution() -> TestResult {
    let server = TestServer::start(None).await?;
    let url = format!("http://localhost:{}/ok", server.addr.port());
    for (name, transport) in each(TransportBuilder::new())? {
        let err = transport
            .send(get(&url)?)
            .await
            .expect_err("localhost is loopback");
        assert!(err.is_refused_by_ssrf_guard(), "{name}: {err:?}");
        let violation = err.ssrf_violation().expect("details");
        assert_eq!(violation.host, "localhost");
        assert!(violation.addr.is_loopback());
    }
    assert_eq!(
        server.state.connections.load(Ordering::SeqCst),
        0,
        "refused before connecting"
    );
    for (name, transport) in each(local())? {
        let response = transport.send(get(&url)?).await?;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
    }
    // The explicit switch for local use.
    for (name, transport) in each(TransportBuilder::new().ssrf(SsrfPolicy::disabled()))? {
        assert_eq!(
            transport.send(get(&url)?).await?.status(),
            StatusCode::OK,
            "{name}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn untrusted_certificate_is_refused_by_default() -> TestResult {
    let pki = Pki::new()?;
    let server = TestServer::start(Some(pki.server_config(false)?)).await?;
    for (name, transport) in each(local())? {
        let err = transport
            .send(get(&server.url("/ok"))?)
            .await
            .expect_err("unknown CA");
        assert!(err.is_tls(), "{name}: {err:?}");
    }
    assert_eq!(server.state.hits("/ok"), 0);
    Ok(())
}

#[tokio::test]
async fn custom_ca_is_trusted_from_bytes_and_file() -> TestResult {
    let pki = Pki::new()?;
    let server = TestServer::start(Some(pki.server_config(false)?)).await?;
    let dir = std::env::temp_dir().join(format!("webhook-sender-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem)?;
    let configs = [
        TlsConfig::builder()
            .add_ca_pem(pki.ca_pem.clone())
            .build()?,
        TlsConfig::builder()
            .builtin_roots(false)
            .add_ca_pem_file(&ca_file)
            .build()?,
    ];
    for tls in configs {
        for (name, transport) in each(local().tls(tls))? {
            let response = transport.send(get(&server.url("/ok"))?).await?;
            assert_eq!(response.status(), StatusCode::OK, "{name}");
        }
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn certificate_for_another_name_is_refused_even_with_its_ca() -> TestResult {
    let pki = Pki::for_names(&["other.test"])?;
    let server = TestServer::start(Some(pki.server_config(false)?)).await?;
    let tls = TlsConfig::builder()
        .add_ca_pem(pki.ca_pem.clone())
        .build()?;
    for (name, transport) in each(local().tls(tls))? {
        let err = transport
            .send(get(&server.url("/ok"))?)
            .await
            .expect_err("name mismatch");
        assert!(err.is_tls(), "{name}: {err:?}");
    }
    assert_eq!(server.state.hits("/ok"), 0);
    Ok(())
}

#[tokio::test]
async fn insecure_accepts_any_certificate_and_warns_once_per_client() -> TestResult {
    let pki = Pki::new()?;
    let server = TestServer::start(Some(pki.server_config(false)?)).await?;
    let tls = TlsConfig::builder()
        .danger_accept_invalid_certs(true)
        .build()?;
    let counter = Arc::new(WarnCounter::default());
    let transports =
        tracing::subscriber::with_default(Arc::clone(&counter), || each(local().tls(tls)))?;
    assert_eq!(
        counter.warnings.load(Ordering::SeqCst),
        transports.len(),
        "one warning per client"
    );
    for (name, transport) in &transports {
        for _ in 0..3 {
            let response = transport.send(get(&server.url("/ok"))?).await?;
            assert_eq!(response.status(), StatusCode::OK, "{name}");
        }
    }
    let quiet = Arc::new(WarnCounter::default());
    tracing::subscriber::with_default(Arc::clone(&quiet), || each(local()))?;
    assert_eq!(quiet.warnings.load(Ordering::SeqCst), 0);
    Ok(())
}

#[tokio::test]
async fn http2_is_negotiated_over_tls() -> TestResult {
    let pki = Pki::new()?;
    let server = TestServer::start(Some(pki.server_config(false)?)).await?;
    let tls = TlsConfig::builder()
        .add_ca_pem(pki.ca_pem.clone())
        .build()?;
    for (name, transport) in each(local().tls(tls))? {
        for _ in 0..3 {
            let response = transport.send(get(&server.url("/ok"))?).await?;
            assert_eq!(response.version(), Version::HTTP_2, "{name}");
            assert_eq!(response.headers()["x-seen-version"], "HTTP/2.0", "{name}");
        }
    }
    assert_eq!(
        server.state.connections.load(Ordering::SeqCst),
        each(local())?.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_from_tasks_multiplex_one_http2_connection() -> TestResult {
    let pki = Pki::new()?;
    let tls = TlsConfig::builder()
        .add_ca_pem(pki.ca_pem.clone())
        .build()?;
    for (name, transport) in each(local().tls(tls))? {
        let server = TestServer::start(Some(pki.server_config(false)?)).await?;
        let url = server.url("/ok");
        // Warm the pool, then 50 concurrent requests from spawned tasks.
        transport.send(get(&url)?).await?;
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let transport = Arc::clone(&transport);
                let request = get(&url);
                tokio::spawn(async move { transport.send(request?).await.map_err(BoxError::from) })
            })
            .collect();
        for task in tasks {
            let response = task.await??;
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            assert_eq!(response.version(), Version::HTTP_2, "{name}");
        }
        assert_eq!(server.state.hits("/ok"), 51, "{name}");
        assert_eq!(
            server.state.connections.load(Ordering::SeqCst),
            1,
            "{name}: one multiplexed connection"
        );
    }
    Ok(())
}

#[tokio::test]
async fn mtls_requires_the_client_certificate() -> TestResult {
    let pki = Pki::new()?;
    let server = TestServer::start(Some(pki.server_config(true)?)).await?;
    let without = TlsConfig::builder()
        .add_ca_pem(pki.ca_pem.clone())
        .build()?;
    for (name, transport) in each(local().tls(without))? {
        let err = transport
            .send(get(&server.url("/ok"))?)
            .await
            .expect_err("no client cert");
        assert!(err.is_tls(), "{name}: {err:?}");
    }
    assert_eq!(server.state.hits("/ok"), 0);
    let with = TlsConfig::builder()
        .add_ca_pem(pki.ca_pem.clone())
        .client_identity_pem(pki.client_cert_pem.clone(), pki.client_key_pem.clone())
        .build()?;
    for (name, transport) in each(local().tls(with))? {
        let response = transport.send(get(&server.url("/ok"))?).await?;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
    }
    assert_eq!(server.state.hits("/ok"), each(local())?.len());
    Ok(())
}

fn oauth(server: &TestServer, transport: &SharedTransport) -> Result<TokenProvider, BoxError> {
    let source = ClientCredentialsSource::new(
        server.url("/oauth/token"),
        support::CLIENT_ID,
        support::CLIENT_SECRET,
    )
    .scope("hooks");
    Ok(TokenProvider::builder(source).build(transport.clone())?)
}

#[tokio::test]
async fn oauth2_token_is_fetched_once_reused_and_refreshed() -> TestResult {
    for (name, transport) in each(local())? {
        let server = TestServer::start(None).await?;
        let tokens = oauth(&server, &transport)?;
        for _ in 0..20 {
            let mut request = get(&server.url("/protected"))?;
            tokens.authorize(&mut request).await?;
            let response = transport.send(request).await?;
            assert_eq!(response.status(), StatusCode::OK, "{name}");
        }
        assert_eq!(
            server.state.token_fetches.load(Ordering::SeqCst),
            1,
            "{name}"
        );
        assert_eq!(tokens.fetch_count(), 1);

        tokens.invalidate();
        assert_eq!(tokens.token().await?.expose(), "tok-2", "{name}");
        assert_eq!(server.state.token_fetches.load(Ordering::SeqCst), 2);

        // The endpoint revokes the token: the engine's 401 path refreshes once and succeeds.
        server.state.revoked.store(true, Ordering::SeqCst);
        let mut request = get(&server.url("/protected"))?;
        let sent_with = tokens.authorize(&mut request).await?;
        assert_eq!(
            transport.send(request).await?.status(),
            StatusCode::UNAUTHORIZED
        );
        tokens.invalidate_if_current(&sent_with);
        tokens.invalidate_if_current(&sent_with); // a second 401 with the same token: no extra fetch
        let mut retry = get(&server.url("/protected"))?;
        tokens.authorize(&mut retry).await?;
        assert_eq!(
            transport.send(retry).await?.status(),
            StatusCode::OK,
            "{name}"
        );
        assert_eq!(
            server.state.token_fetches.load(Ordering::SeqCst),
            3,
            "{name}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_token_requests_are_coalesced() -> TestResult {
    for (name, transport) in each(local())? {
        let server = TestServer::start(None).await?;
        server.state.token_delay_ms.store(200, Ordering::SeqCst);
        let tokens = oauth(&server, &transport)?;
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let tokens = tokens.clone();
                tokio::spawn(async move { tokens.token().await.map(|t| t.expose().to_owned()) })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await??, "tok-1", "{name}");
        }
        assert_eq!(
            server.state.token_fetches.load(Ordering::SeqCst),
            1,
            "{name}: one fetch for 32 callers"
        );
    }
    Ok(())
}

#[tokio::test]
async fn oauth2_wrong_secret_is_rejected() -> TestResult {
    for (name, transport) in each(local())? {
        let server = TestServer::start(None).await?;
        let source =
            ClientCredentialsSource::new(server.url("/oauth/token"), support::CLIENT_ID, "wrong")
                .scope("hooks");
        let tokens = TokenProvider::builder(source).build(transport.clone())?;
        let err = tokens.token().await.expect_err("wrong secret");
        assert!(
            matches!(&err, TokenError::Rejected { status, error: Some(e) } if *status == StatusCode::UNAUTHORIZED && e == "invalid_client"),
            "{name}: {err:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn auth_url_with_username_and_password() -> TestResult {
    for (name, transport) in each(local())? {
        let server = TestServer::start(None).await?;
        let source = AuthUrlSource::new(server.url("/login"), support::USERNAME, support::PASSWORD);
        let tokens = TokenProvider::builder(source).build(transport.clone())?;
        for _ in 0..5 {
            let mut request = get(&server.url("/protected"))?;
            tokens.authorize(&mut request).await?;
            assert_eq!(
                transport.send(request).await?.status(),
                StatusCode::OK,
                "{name}"
            );
        }
        assert_eq!(
            server.state.token_fetches.load(Ordering::SeqCst),
            1,
            "{name}"
        );
        let bad = AuthUrlSource::new(server.url("/login"), support::USERNAME, "nope");
        let err = TokenProvider::builder(bad)
            .build(transport.clone())?
            .token()
            .await
            .expect_err("bad password");
        assert!(
            matches!(err, TokenError::Rejected { status, .. } if status == StatusCode::UNAUTHORIZED),
            "{name}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn token_fetch_goes_through_the_ssrf_guard() -> TestResult {
    let server = TestServer::start(None).await?;
    for (name, transport) in each(TransportBuilder::new())? {
        let tokens = oauth(&server, &transport)?;
        let err = tokens.token().await.expect_err("loopback refused");
        assert!(
            matches!(&err, TokenError::Transport(e) if e.is_refused_by_ssrf_guard()),
            "{name}: {err:?}"
        );
    }
    assert_eq!(server.state.connections.load(Ordering::SeqCst), 0);
    Ok(())
}

#[tokio::test]
async fn templated_callout_decides_over_a_real_socket() -> TestResult {
    use std::collections::HashMap;
    use webhook_core::{Condition, Decision, ParamSet, ResponseActions};

    for (name, transport) in each(local())? {
        let server = TestServer::start(None).await?;
        // The test server's /login answers {"token": ...} to the right JSON credentials and 401
        // otherwise: a policy endpoint that grants by returning a token.
        let rule = Callout::post(server.url("/login"))
            .params(ParamSet::safous().with("password"))
            .body(r#"{"username": "%username%", "password": "%password%"}"#)
            .actions(
                ResponseActions::builder()
                    .rule(Decision::Allow, "token", Condition::Exists)
                    .build()?,
            )
            .timeout(Duration::from_secs(5))
            .build()?;
        let mut params: HashMap<String, String> = HashMap::new();
        params.insert("username".into(), support::USERNAME.into());
        // The password has a `"`: the body template JSON-escapes it.
        params.insert("password".into(), support::PASSWORD.into());
        let granted = rule.decide(&*transport, &params).await;
        assert_eq!(
            granted.decision,
            Decision::Allow,
            "{name}: {:?}",
            granted.basis
        );
        assert!(matches!(granted.basis, Basis::Rule(0)), "{name}");

        params.insert("password".into(), "wrong".into());
        let refused = rule.decide(&*transport, &params).await;
        assert_eq!(refused.decision, Decision::Deny, "{name}");
        assert_eq!(refused.status, Some(StatusCode::UNAUTHORIZED), "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn callouts_with_basic_and_oauth2() -> TestResult {
    for (name, transport) in each(local())? {
        let server = TestServer::start(None).await?;
        let timeout = Duration::from_secs(5);

        let basic = CalloutAuth::basic("Aladdin", "open sesame");
        let request =
            http::Request::post(server.url("/echo-auth")).body(Bytes::from_static(b"{\"u\":1}"))?;
        let response = send_callout(&*transport, request, &basic, timeout).await?;
        assert_eq!(
            response.body().as_ref(),
            b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            "{name}"
        );

        let tokens = oauth(&server, &transport)?;
        let oauth2 = CalloutAuth::OAuth2(tokens.clone());
        let response = send_callout(
            &*transport,
            get(&server.url("/protected"))?,
            &oauth2,
            timeout,
        )
        .await?;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        // Token revoked by the endpoint: one refresh and a retry inside the call-out.
        server.state.revoked.store(true, Ordering::SeqCst);
        let response = send_callout(
            &*transport,
            get(&server.url("/protected"))?,
            &oauth2,
            timeout,
        )
        .await?;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_eq!(server.state.token_fetches.load(Ordering::SeqCst), 2);

        let put = http::Request::put(server.url("/ok")).body(Bytes::new())?;
        let err = send_callout(&*transport, put, &CalloutAuth::None, timeout)
            .await
            .expect_err("PUT");
        assert!(matches!(err, CalloutError::UnsupportedMethod(_)), "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn callout_timeout() -> TestResult {
    let silent = SilentServer::start().await?;
    for (name, transport) in each(local())? {
        let request = get(&format!("http://{}/check", silent.addr))?;
        let started = tokio::time::Instant::now();
        let err = send_callout(
            &*transport,
            request,
            &CalloutAuth::None,
            Duration::from_millis(200),
        )
        .await
        .expect_err("silent");
        assert!(err.is_timeout(), "{name}: {err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    Ok(())
}

/// A minimal `tracing` subscriber counting WARN events.
#[derive(Default)]
struct WarnCounter {
    warnings: AtomicUsize,
}

impl tracing::Subscriber for WarnCounter {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            self.warnings.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
