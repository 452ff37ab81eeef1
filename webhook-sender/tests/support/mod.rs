//! Test servers on 127.0.0.1: a hyper HTTP/1.1 + HTTP/2 server (plain, TLS, or mTLS with
//! rcgen-made certificates) with a few routes, and a server that accepts and never answers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Credentials the token routes accept.
pub(crate) const CLIENT_ID: &str = "client-1";
pub(crate) const CLIENT_SECRET: &str = "s3cret:with/odd chars";
pub(crate) const USERNAME: &str = "alice";
pub(crate) const PASSWORD: &str = "wonder\"land";

/// Certificates for one test: a server CA and a leaf for 127.0.0.1/localhost, and a client CA
/// with a client leaf.
pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
    client_ca: CertificateDer<'static>,
    pub(crate) client_cert_pem: String,
    pub(crate) client_key_pem: String,
}

fn ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, BoxError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    Ok(CertifiedIssuer::self_signed(params, KeyPair::generate()?)?)
}

impl Pki {
    pub(crate) fn new() -> Result<Self, BoxError> {
        Self::for_names(&["localhost", "127.0.0.1"])
    }

    /// Like `new`, with a server certificate for other names.
    pub(crate) fn for_names(names: &[&str]) -> Result<Self, BoxError> {
        let server_ca = ca("test server CA")?;
        let server_key = KeyPair::generate()?;
        let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let server = CertificateParams::new(sans)?.signed_by(&server_key, &server_ca)?;
        let client_ca = ca("test client CA")?;
        let client_key = KeyPair::generate()?;
        let mut client_params = CertificateParams::new(vec!["client.test".to_owned()])?;
        client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &client_ca)?;
        Ok(Self {
            ca_pem: server_ca.pem(),
            server_chain: vec![server.der().clone()],
            server_key: server_key.serialize_der(),
            client_ca: client_ca.der().clone(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
        })
    }

    /// A server TLS config (ALPN h2, http/1.1), optionally requiring a client certificate
    /// issued by the client CA.
    pub(crate) fn server_config(
        &self,
        require_client_cert: bool,
    ) -> Result<Arc<rustls::ServerConfig>, BoxError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.client_ca.clone())?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let mut config = builder.with_single_cert(self.server_chain.clone(), key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// What the server saw and how it behaves.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) connections: AtomicUsize,
    pub(crate) tls_failures: AtomicUsize,
    pub(crate) token_fetches: AtomicUsize,
    hits: Mutex<HashMap<String, usize>>,
    current_token: Mutex<Option<String>>,
    pub(crate) token_delay_ms: AtomicUsize,
    pub(crate) revoked: AtomicBool,
}

impl State {
    pub(crate) fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .map(|h| h.get(path).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) state: Arc<State>,
    https: bool,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// `http(s)://127.0.0.1:<port><path>`
    pub(crate) fn url(&self, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    pub(crate) async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Result<Self, BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let https = tls.is_some();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let st = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                st.connections.fetch_add(1, Ordering::SeqCst);
                let st = Arc::clone(&st);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let for_service = Arc::clone(&st);
                    let service = service_fn(move |req| handle(Arc::clone(&for_service), req));
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => {
                                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                            }
                            Err(_) => {
                                st.tls_failures.fetch_add(1, Ordering::SeqCst);
                            }
                        },
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Ok(Self {
            addr,
            state,
            https,
            task,
        })
    }
}

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = respond(status, value.to_string());
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    r
}

async fn handle(
    st: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if let Ok(mut hits) = st.hits.lock() {
        *hits.entry(path.clone()).or_default() += 1;
    }
    let version = format!("{:?}", req.version());
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let response = match path.as_str() {
        "/ok" => {
            let mut r = respond(StatusCode::OK, "ok");
            if let Ok(v) = http::HeaderValue::try_from(version) {
                r.headers_mut().insert("x-seen-version", v);
            }
            r
        }
        "/redirect" => {
            let mut r = respond(StatusCode::FOUND, "moved");
            r.headers_mut()
                .insert("location", http::HeaderValue::from_static("/ok"));
            r
        }
        "/big" => respond(StatusCode::OK, vec![b'x'; 1024 * 1024]),
        "/echo-auth" => respond(StatusCode::OK, auth.unwrap_or_default()),
        "/oauth/token" => {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    form(CLIENT_ID),
                    form(CLIENT_SECRET)
                ))
            );
            let form_ok = content_type == "application/x-www-form-urlencoded"
                && body.as_ref() == b"grant_type=client_credentials&scope=hooks";
            if auth.as_deref() != Some(expected.as_str()) || !form_ok {
                json(
                    StatusCode::UNAUTHORIZED,
                    serde_json::json!({"error": "invalid_client"}),
                )
            } else {
                let delay = st.token_delay_ms.load(Ordering::SeqCst) as u64;
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let token = issue(&st, "tok");
                json(
                    StatusCode::OK,
                    serde_json::json!({"access_token": token, "token_type": "bearer", "expires_in": 3600}),
                )
            }
        }
        "/login" => {
            let creds: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if content_type == "application/json"
                && creds == serde_json::json!({"username": USERNAME, "password": PASSWORD})
            {
                let token = issue(&st, "login");
                json(StatusCode::OK, serde_json::json!({"token": token}))
            } else {
                json(
                    StatusCode::UNAUTHORIZED,
                    serde_json::json!({"error": "bad credentials"}),
                )
            }
        }
        "/protected" => {
            let current = st.current_token.lock().ok().and_then(|t| t.clone());
            let valid = !st.revoked.load(Ordering::SeqCst)
                && current.is_some_and(|t| auth.as_deref() == Some(format!("Bearer {t}").as_str()));
            if valid {
                respond(StatusCode::OK, "granted")
            } else {
                respond(StatusCode::UNAUTHORIZED, "")
            }
        }
        _ => respond(StatusCode::NOT_FOUND, ""),
    };
    Ok(response)
}

fn issue(st: &State, prefix: &str) -> String {
    let n = st.token_fetches.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("{prefix}-{n}");
    if let Ok(mut current) = st.current_token.lock() {
        *current = Some(token.clone());
    }
    st.revoked.store(false, Ordering::SeqCst);
    token
}

fn form(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'*')
        .remove(b'-')
        .remove(b'.')
        .remove(b'_');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// Accepts connections and never answers (holds them open until dropped).
pub(crate) struct SilentServer {
    pub(crate) addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SilentServer {
    pub(crate) async fn start() -> Result<Self, BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Ok(Self { addr, task })
    }
}

/// A loopback port with nothing listening.
pub(crate) async fn closed_port() -> Result<SocketAddr, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    drop(listener);
    Ok(addr)
}
