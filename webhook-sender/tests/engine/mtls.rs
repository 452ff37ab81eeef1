//! The engine builds a per-endpoint TLS transport with the endpoint's client certificate
//! (`SenderAuth::ClientCertificate`): an mTLS server accepts it, and refuses an endpoint
//! without it.

use std::time::Duration;

use webhook_core::Endpoint;
use webhook_core::{ClientCertificate, RetryPolicy, SenderAuth};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::tls::TlsConfig;
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{AttemptError, EndpointConfig, FailureReason, Outcome, Sender};

use super::server::BoxError;
use super::support::{Pki, TestServer};

#[tokio::test]
async fn client_certificate_endpoint_gets_its_own_mtls_transport() -> Result<(), BoxError> {
    let pki = Pki::new()?;
    let server = TestServer::start(Some(pki.server_config(true)?)).await?;
    let cert = ClientCertificate::from_pem(
        pki.client_cert_pem.clone().into_bytes(),
        pki.client_key_pem.clone().into_bytes(),
    )?;
    let once = RetryPolicy::builder()
        .fixed(vec![Duration::ZERO], 0)
        .build()?;
    let sender = Sender::builder()
        .transport_builder(
            TransportBuilder::new().ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?)),
        )
        .tls(
            TlsConfig::builder()
                .builtin_roots(false)
                .add_ca_pem(pki.ca_pem.clone()),
        )
        .endpoint(
            EndpointConfig::builder(
                "mtls",
                Endpoint::builder(server.url("/ok"))
                    .auth(SenderAuth::ClientCertificate(cert))
                    .build()?,
            )
            .retry(once.clone())
            .build()?,
        )
        .build()?;
    let report = sender.send(super::event(1)?).await?.await;
    assert!(report.is_delivered(), "{report:?}");
    assert_eq!(server.state.hits("/ok"), 1);
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());

    // Same server, no client certificate: the handshake fails, the batch is given up.
    let plain = TransportBuilder::new()
        .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?))
        .tls(
            TlsConfig::builder()
                .builtin_roots(false)
                .add_ca_pem(pki.ca_pem.clone())
                .build()?,
        )
        .build()?;
    let sender = Sender::builder()
        .transport(plain)
        .endpoint(
            EndpointConfig::builder("no-cert", Endpoint::builder(server.url("/ok")).build()?)
                .retry(once)
                .build()?,
        )
        .build()?;
    let report = sender.send(super::event(2)?).await?.await;
    assert_eq!(
        report.outcome("no-cert"),
        Some(&Outcome::Failed {
            reason: FailureReason::RetriesExhausted {
                attempts: 1,
                last: AttemptError::Connect
            }
        })
    );
    assert_eq!(server.state.hits("/ok"), 1);
    assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
    Ok(())
}
