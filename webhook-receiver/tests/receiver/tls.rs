//! HTTPS and mutual TLS on the built-in `Server`, with certificates made by the test (rcgen):
//! the SDK's own sender delivers signed batches over mTLS and handlers see the client
//! certificate; clients without a certificate, with one from another CA, speaking plain HTTP,
//! or stalling the handshake are turned away without affecting other connections.

use std::net::SocketAddr;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use webhook_core::Encoding;
use webhook_core::Endpoint;
use webhook_core::pem::PemError;
use webhook_core::{BatcherConfig, Event, Secret, SenderAuth};
use webhook_receiver::tls::{ServerTls, ServerTlsError};
use webhook_receiver::{Context, HandlerOutcome, Receiver, ServeError, Server, handler_fn};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::tls::TlsConfig;
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{EndpointConfig, Sender};

use crate::common::{Log, SECRET, alert_json, verified_config};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

/// A leaf signed by `issuer`: a server certificate for 127.0.0.1 and localhost, or a client
/// certificate. Returns (certificate PEM, certificate DER, key PEM).
fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>, client: bool) -> (String, Vec<u8>, String) {
    let key = KeyPair::generate().expect("key");
    let names = if client {
        vec!["sender.test".to_owned()]
    } else {
        vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
    };
    let mut params = CertificateParams::new(names).expect("params");
    if client {
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    }
    let cert = params.signed_by(&key, issuer).expect("leaf");
    (cert.pem(), cert.der().to_vec(), key.serialize_pem())
}

/// Server and client PKI of one test, and a second client CA nobody trusts.
struct Pki {
    server_ca: String,
    server: (String, String),
    client_ca: String,
    client: (String, Vec<u8>, String),
    rogue_client: (String, Vec<u8>, String),
}

impl Pki {
    fn new() -> Self {
        let server_ca = ca("receiver test server CA");
        let (cert, _, key) = leaf(&server_ca, false);
        let client_ca = ca("receiver test client CA");
        let rogue_ca = ca("somebody else's client CA");
        Self {
            server_ca: server_ca.pem(),
            server: (cert, key),
            client_ca: client_ca.pem(),
            client: leaf(&client_ca, true),
            rogue_client: leaf(&rogue_ca, true),
        }
    }

    /// The server side: mutual TLS against the client CA (optional or required), or none.
    fn server_tls(&self, client_auth: Option<bool>) -> ServerTls {
        let builder = ServerTls::builder(self.server.0.clone(), self.server.1.clone());
        match client_auth {
            None => builder,
            Some(optional) => builder
                .client_ca_pem(self.client_ca.clone())
                .client_auth_optional(optional),
        }
        .build()
        .expect("server TLS")
    }

    /// The sender's side: trusts the server CA only, presents `identity` if any.
    fn client_tls(&self, identity: Option<&(String, Vec<u8>, String)>) -> TlsConfig {
        let builder = TlsConfig::builder()
            .builtin_roots(false)
            .add_ca_pem(self.server_ca.clone());
        match identity {
            Some((cert, _, key)) => builder.client_identity_pem(cert.clone(), key.clone()),
            None => builder,
        }
        .build()
        .expect("client TLS")
    }
}

/// Verifies Standard Webhooks signatures; logs each payload's subject (or the test event's
/// type) and whether (and which) client certificate the handler saw.
fn receiver(log: &Log, client_der: Vec<u8>) -> Receiver<serde_json::Value> {
    let log = log.clone();
    Receiver::builder(verified_config())
        .fallback(handler_fn(move |v: serde_json::Value, cx: Context| {
            let (log, client_der) = (log.clone(), client_der.clone());
            async move {
                let cert = match cx.client_certificate() {
                    None => "none",
                    Some(der) if der == client_der.as_slice() => "client",
                    Some(_) => "other",
                };
                let subject = v
                    .get("subject")
                    .or_else(|| v.get("type"))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("?");
                log.push(format!("{subject}:{cert}"));
                HandlerOutcome::Accepted
            }
        }))
        .build()
        .expect("receiver")
}

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Running {
    fn url(&self) -> String {
        format!("https://{}/hook", self.addr)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.expect("join").expect("clean shutdown");
    }
}

async fn serve(server: Server<serde_json::Value>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    Running { addr, stop, server }
}

/// The SDK's sender to `url` over `tls`: NDJSON batches signed with the tests' secret.
fn sender(url: &str, tls: TlsConfig) -> Sender {
    let transport = TransportBuilder::new()
        .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse().expect("cidr")))
        .tls(tls)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("transport");
    let endpoint = Endpoint::builder(url)
        .encoding(Encoding::Ndjson)
        .auth(SenderAuth::signature(Secret::from_bytes(SECRET).expect("secret")).expect("auth"))
        .build()
        .expect("endpoint");
    Sender::builder()
        .transport(transport)
        .endpoint(
            EndpointConfig::builder("https", endpoint)
                .batching(
                    BatcherConfig::builder()
                        .encoding(Encoding::Ndjson)
                        .linger(Duration::from_millis(5))
                        .build()
                        .expect("batcher"),
                )
                .build()
                .expect("endpoint config"),
        )
        .build()
        .expect("sender")
}

fn alert(i: usize) -> Event {
    Event::builder(format!("tls_{i}"), "alert")
        .json_bytes(alert_json(&format!("Asset {i}"), "443").into_bytes())
        .expect("event")
}

#[tokio::test]
async fn sdk_sender_delivers_over_mutual_tls_and_handlers_see_the_client_certificate() -> TestResult
{
    let pki = Pki::new();
    let log = Log::default();
    let running =
        serve(Server::new(receiver(&log, pki.client.1.clone())).tls(pki.server_tls(Some(false))))
            .await;
    let sender = sender(&running.url(), pki.client_tls(Some(&pki.client)));
    let report = sender.test_integration("https").await?;
    assert!(report.is_success(), "{report:?}");
    let mut receipts = Vec::new();
    for i in 0..5 {
        receipts.push(sender.send(alert(i)).await?);
    }
    for r in receipts {
        assert!(r.await.is_delivered());
    }
    assert!(sender.shutdown(Duration::from_secs(5)).await.is_clean());
    let mut seen = log.take();
    seen.sort();
    // The test event and the five alerts, each with the verified client certificate.
    let mut expected: Vec<String> = (0..5).map(|i| format!("Asset {i}:client")).collect();
    expected.push("webhook.test:client".to_owned());
    assert_eq!(seen, expected);
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn required_client_certificate_refuses_anonymous_and_foreign_clients() -> TestResult {
    let pki = Pki::new();
    let log = Log::default();
    let running =
        serve(Server::new(receiver(&log, pki.client.1.clone())).tls(pki.server_tls(Some(false))))
            .await;
    for identity in [None, Some(&pki.rogue_client)] {
        let sender = sender(&running.url(), pki.client_tls(identity));
        let err = sender
            .test_integration("https")
            .await
            .expect_err("the handshake refuses the client");
        assert!(
            !err.to_string().is_empty(),
            "a transport error that says what failed"
        );
        assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    }
    assert!(log.take().is_empty(), "no request reached a handler");
    // The server still serves a client with the right certificate.
    let sender = sender(&running.url(), pki.client_tls(Some(&pki.client)));
    let receipt = sender.send(alert(7)).await?;
    assert!(receipt.await.is_delivered());
    assert!(sender.shutdown(Duration::from_secs(5)).await.is_clean());
    assert_eq!(log.take(), vec!["Asset 7:client"]);
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn optional_client_auth_admits_clients_without_a_certificate() -> TestResult {
    let pki = Pki::new();
    let log = Log::default();
    let running =
        serve(Server::new(receiver(&log, pki.client.1.clone())).tls(pki.server_tls(Some(true))))
            .await;
    for (i, identity) in [(0, None), (1, Some(&pki.client))] {
        let sender = sender(&running.url(), pki.client_tls(identity));
        assert!(sender.send(alert(i)).await?.await.is_delivered());
        assert!(sender.shutdown(Duration::from_secs(5)).await.is_clean());
    }
    // A certificate that is presented must still verify.
    let sender = sender(&running.url(), pki.client_tls(Some(&pki.rogue_client)));
    assert!(sender.test_integration("https").await.is_err());
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    assert_eq!(log.take(), vec!["Asset 0:none", "Asset 1:client"]);
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn plain_http_and_stalled_handshakes_are_dropped_while_others_are_served() -> TestResult {
    let pki = Pki::new();
    let log = Log::default();
    let running = serve(
        Server::new(receiver(&log, Vec::new()))
            .tls(pki.server_tls(None))
            .header_read_timeout(Duration::from_millis(300)),
    )
    .await;
    // Plain HTTP to the TLS port: no HTTP answer, the connection is closed.
    let mut plain = TcpStream::connect(running.addr).await?;
    plain
        .write_all(b"POST /hook HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2\r\n\r\n{}")
        .await?;
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server closes the plain connection");
    assert!(
        !out.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    // A client that connects and never starts the handshake is closed after the header read
    // timeout.
    let mut stalled = TcpStream::connect(running.addr).await?;
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "stalled handshake closed: {closed:?}"
    );
    // Meanwhile a TLS client (no client certificate configured on this server) is served.
    let sender = sender(&running.url(), pki.client_tls(None));
    assert!(sender.send(alert(3)).await?.await.is_delivered());
    assert!(sender.shutdown(Duration::from_secs(5)).await.is_clean());
    assert_eq!(log.take(), vec!["Asset 3:none"]);
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_server_is_refused_by_the_client() -> TestResult {
    let pki = Pki::new();
    let other = Pki::new();
    let log = Log::default();
    let running = serve(Server::new(receiver(&log, Vec::new())).tls(pki.server_tls(None))).await;
    // The sender trusts another CA: its verification refuses the server's certificate.
    let sender = sender(&running.url(), other.client_tls(None));
    assert!(sender.test_integration("https").await.is_err());
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    assert!(log.take().is_empty());
    running.stop().await;
    Ok(())
}

#[cfg(feature = "http2")]
#[tokio::test]
async fn with_http2_on_the_sdk_sender_picks_h2_by_alpn() -> TestResult {
    let pki = Pki::new();
    let versions = Log::default();
    let seen = versions.clone();
    let rx = Receiver::builder(verified_config())
        .fallback(handler_fn(move |_v: serde_json::Value, cx: Context| {
            let seen = seen.clone();
            async move {
                seen.push(format!("{:?}", cx.version()));
                HandlerOutcome::Accepted
            }
        }))
        .build()?;
    let running = serve(Server::new(rx).tls(pki.server_tls(Some(false))).http2(true)).await;
    let h2_sender = sender(&running.url(), pki.client_tls(Some(&pki.client)));
    assert!(h2_sender.send(alert(1)).await?.await.is_delivered());
    assert!(h2_sender.shutdown(Duration::from_secs(5)).await.is_clean());
    assert_eq!(versions.take(), vec!["HTTP/2.0"]);
    // Without `http2(true)` the same sender falls back to HTTP/1.1.
    let running_h1 =
        serve(Server::new(receiver(&Log::default(), Vec::new())).tls(pki.server_tls(None))).await;
    let sender = sender(&running_h1.url(), pki.client_tls(None));
    assert!(sender.test_integration("https").await?.is_success());
    assert!(sender.shutdown(Duration::from_secs(5)).await.is_clean());
    running_h1.stop().await;
    running.stop().await;
    Ok(())
}

#[test]
fn bad_certificates_and_keys_are_typed_errors() {
    let pki = Pki::new();
    let (cert, key) = pki.server.clone();
    let cases: Vec<(&str, Result<ServerTls, ServerTlsError>)> = vec![
        (
            "empty certificate",
            ServerTls::builder("", key.clone()).build(),
        ),
        (
            "key where the certificate goes",
            ServerTls::builder(key.clone(), key.clone()).build(),
        ),
        ("empty key", ServerTls::builder(cert.clone(), "").build()),
        (
            "broken certificate PEM",
            ServerTls::builder(
                "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
                key.clone(),
            )
            .build(),
        ),
        (
            "key of another certificate",
            ServerTls::builder(cert.clone(), pki.client.2.clone()).build(),
        ),
        (
            "empty client CA bundle",
            ServerTls::builder(cert.clone(), key.clone())
                .client_ca_pem("")
                .build(),
        ),
        (
            "missing file",
            ServerTls::builder_from_files("/nonexistent/server.crt", "/nonexistent/server.key")
                .build(),
        ),
    ];
    for (name, result) in cases {
        let err = result.expect_err(name);
        let ok = match name {
            "empty certificate" | "key where the certificate goes" => matches!(
                err,
                ServerTlsError::Pem(PemError::Empty {
                    what: "server certificate",
                    ..
                })
            ),
            "empty key" => matches!(
                err,
                ServerTlsError::Pem(PemError::Empty {
                    what: "server key",
                    ..
                })
            ),
            "broken certificate PEM" => matches!(
                err,
                ServerTlsError::Pem(PemError::InvalidPem {
                    what: "server certificate",
                    ..
                })
            ),
            "key of another certificate" => matches!(err, ServerTlsError::BadServerIdentity(_)),
            "empty client CA bundle" => matches!(
                err,
                ServerTlsError::Pem(PemError::Empty {
                    what: "client CA bundle",
                    ..
                })
            ),
            _ => matches!(
                err,
                ServerTlsError::Pem(PemError::ReadFile {
                    what: "server certificate",
                    ..
                })
            ),
        };
        assert!(ok, "{name}: {err:?}");
        // Never any key material in the message.
        let secret_line = key.lines().nth(1).expect("a base64 line");
        assert!(
            !err.to_string().contains(secret_line) && !format!("{err:?}").contains(secret_line),
            "{name}: {err}"
        );
    }
    // Files work like bytes.
    let dir = std::env::temp_dir().join(format!("webhook-receiver-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (c, k, ca) = (dir.join("s.crt"), dir.join("s.key"), dir.join("ca.crt"));
    std::fs::write(&c, &cert).expect("write");
    std::fs::write(&k, &key).expect("write");
    std::fs::write(&ca, &pki.client_ca).expect("write");
    let tls = ServerTls::builder_from_files(&c, &k)
        .client_ca_pem_file(&ca)
        .build()
        .expect("from files");
    assert!(tls.requires_client_certificate());
    let _ = std::fs::remove_dir_all(&dir);
}
