//! Sysdig's "client certificate" authentication end to end: a receiver that serves HTTPS and
//! accepts only senders whose certificate a client CA issued (mutual TLS), and the SDK's sender
//! presenting such a certificate.
//!
//! The example makes its own PKI with rcgen (a server CA with a certificate for 127.0.0.1, a
//! client CA with a certificate for the forwarding agent), starts the receiver on 127.0.0.1 with
//! a health check, forwards the real Sysdig events of
//! `fixtures/sysdig/elastic-integrations-test-sysdig.ndjson` batched as NDJSON, prints what each
//! handler received with the HTTP version the sender chose by ALPN and the fingerprint of the
//! verified client certificate, and then shows that a sender without a certificate is turned
//! away at the TLS handshake.
//!
//! `cargo run -p webhook-examples --example receive_mtls`

#[path = "support/sysdig.rs"]
mod sysdig;

use std::error::Error;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use sha2::{Digest as _, Sha256};
use webhook_core::Endpoint;
use webhook_core::ReceiverAuth;
use webhook_core::{BatcherConfig, ClientCertificate, Encoding, SenderAuth};
use webhook_payloads::sysdig::SysdigEvent;
use webhook_receiver::tls::ServerTls;
use webhook_receiver::{
    Context, HandlerOutcome, Receiver, ReceiverConfig, Server, SysdigDecoder, handler_fn,
};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::tls::TlsConfig;
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{EndpointConfig, Sender};

type BoxError = Box<dyn Error + Send + Sync>;

/// A CA that can issue certificates.
fn ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, BoxError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    Ok(CertifiedIssuer::self_signed(params, KeyPair::generate()?)?)
}

/// A certificate (PEM) and its key (PEM) issued by `issuer` for `names`.
fn issue(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    client: bool,
) -> Result<(String, String), BoxError> {
    let key = KeyPair::generate()?;
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
    if client {
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    }
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The first bytes of a certificate's SHA-256 fingerprint, as hex.
fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The SDK's sender to `url`, trusting `server_ca`. With `identity`, the endpoint
/// authenticates the way Sysdig's "client certificate" option does: `SenderAuth::ClientCertificate`
/// (no header; the sender builds that endpoint a TLS transport presenting the certificate).
fn sender(
    url: &str,
    server_ca: &str,
    identity: Option<&(String, String)>,
) -> Result<Sender, BoxError> {
    let trust = || {
        TlsConfig::builder()
            .builtin_roots(false)
            .add_ca_pem(server_ca.to_owned())
    };
    let auth = match identity {
        Some((cert, key)) => SenderAuth::ClientCertificate(ClientCertificate::from_pem(
            cert.clone().into_bytes(),
            key.clone().into_bytes(),
        )?),
        None => SenderAuth::None,
    };
    let endpoint = Endpoint::builder(url)
        .encoding(Encoding::Ndjson)
        .auth(auth)
        .build()?;
    Ok(Sender::builder()
        .transport_builder(
            TransportBuilder::new()
                // The receiver is on loopback: allowed explicitly (the SSRF guard refuses it
                // otherwise).
                .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?))
                .tls(trust().build()?),
        )
        // The base of the client-certificate endpoints' TLS: the same trust.
        .tls(trust())
        .endpoint(
            EndpointConfig::builder("sysdig-mtls", endpoint)
                .batching(
                    BatcherConfig::builder()
                        .linger(Duration::from_millis(20))
                        .build()?,
                )
                .build()?,
        )
        .build()?)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server_ca = ca("example server CA")?;
    let client_ca = ca("example client CA")?;
    let server_identity = issue(&server_ca, &["127.0.0.1", "localhost"], false)?;
    let agent = issue(&client_ca, &["sysdig-agent.example"], true)?;

    // The receiver: HTTPS, and only clients with a certificate from the client CA.
    let tls = ServerTls::builder(server_identity.0.clone(), server_identity.1.clone())
        .client_ca_pem(client_ca.pem())
        .build()?;
    let receiver = Receiver::with_decoder(
        ReceiverConfig::builder().auth(ReceiverAuth::None).build()?,
        SysdigDecoder,
    )
    .fallback(handler_fn(
        |ev: SysdigEvent<'static>, cx: Context| async move {
            let cert = cx
                .client_certificate()
                .map_or("none".to_owned(), fingerprint);
            println!(
                "  received  {:<12} {}  ({:?}, client certificate sha256 {cert}…)",
                ev.event_type().unwrap_or("?"),
                ev.id().unwrap_or("?"),
                cx.version(),
            );
            HandlerOutcome::Accepted
        },
    ))
    .build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::new(receiver)
            .tls(tls)
            .http2(true)
            .health_check("/healthz")
            .serve(listener, async {
                let _ = stopped.await;
            }),
    );
    let url = format!("https://{addr}/sysdig");
    println!(
        "receiver  {url} (HTTP/2 and HTTP/1.1; mutual TLS: client CA \"example client CA\"; health at /healthz)"
    );

    // The agent, with its certificate.
    let with_cert = sender(&url, &server_ca.pem(), Some(&agent))?;
    let events = sysdig::fixture_events()?;
    println!(
        "sender    {} Sysdig events, presenting the agent's certificate",
        events.len()
    );
    let mut receipts = Vec::new();
    for ev in events {
        receipts.push(with_cert.send(ev).await?);
    }
    let mut delivered = 0;
    for r in receipts {
        if r.await.is_delivered() {
            delivered += 1;
        }
    }
    let report = with_cert.shutdown(Duration::from_secs(5)).await;
    println!(
        "delivered {delivered} event(s); shutdown clean: {}",
        report.is_clean()
    );

    // Somebody without a certificate: refused before any HTTP is read.
    let without = sender(&url, &server_ca.pem(), None)?;
    match without.test_integration("sysdig-mtls").await {
        Ok(r) => return Err(format!("a client without certificate got {}", r.status).into()),
        Err(e) => {
            let mut reason = e.to_string();
            let mut source = e.source();
            while let Some(cause) = source {
                reason.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            println!("no cert   refused (the server requires a client certificate): {reason}");
        }
    }
    let _ = without.shutdown(Duration::from_secs(1)).await;

    let _ = stop.send(());
    server.await??;
    if delivered != 8 {
        return Err(format!("expected 8 events delivered, got {delivered}").into());
    }
    Ok(())
}
