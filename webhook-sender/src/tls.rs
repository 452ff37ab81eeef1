//! TLS client configuration shared by both transports.
//!
//! [`TlsConfig`] builds one [`rustls::ClientConfig`] (with the `ring` provider) that the reqwest
//! and hyper transports both use:
//!
//! - certificate verification is **on** by default, against the Mozilla roots of the
//!   `webpki-roots` crate;
//! - extra trust anchors come from PEM bundles (bytes or files), and the built-in roots can be
//!   switched off to trust only those;
//! - a client certificate chain and private key in PEM (bytes or files) enable mutual TLS;
//! - [`TlsConfigBuilder::danger_accept_invalid_certs`] is the explicit "insecure" opt-in: any
//!   server certificate is accepted, the handshake is still TLS (signatures are still checked),
//!   and each transport built with it logs one `tracing` warning.
//!
//! ALPN offers `h2` then `http/1.1`, so HTTP/2 is used where the server supports it.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use webhook_core::pem::{self, PemError, PemSource};

/// Why a [`TlsConfig`] could not be built. Never carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM input could not be read or decoded (which one, and why; never its content).
    #[error(transparent)]
    Pem(#[from] PemError),
    /// A CA certificate was rejected as a trust anchor.
    #[error("CA certificate rejected as a trust anchor")]
    BadCaCertificate(#[source] rustls::Error),
    /// No trust anchor at all: built-in roots switched off and no CA bundle given.
    #[error("no trust anchors: built-in roots are disabled and no CA bundle was added")]
    NoTrustAnchors,
    /// rustls refused the client certificate or key (unsupported key type, mismatched pair).
    #[error("client certificate or key rejected")]
    BadClientIdentity(#[source] rustls::Error),
    /// rustls refused the protocol configuration.
    #[error("TLS configuration rejected")]
    Config(#[source] rustls::Error),
}

/// Builder of a [`TlsConfig`]; chained calls never fail, [`TlsConfigBuilder::build`] reports the
/// first problem.
#[derive(Debug, Clone)]
pub struct TlsConfigBuilder {
    builtin_roots: bool,
    ca: Vec<PemSource>,
    client_identity: Option<(PemSource, PemSource)>,
    insecure: bool,
}

/// A built TLS client configuration (cheap to clone; the rustls config is shared).
///
/// ```
/// use webhook_sender::tls::TlsConfig;
/// let tls = TlsConfig::builder().build()?; // verification on, webpki roots
/// assert!(!tls.is_insecure());
/// assert_eq!(tls.client_config().alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<rustls::ClientConfig>,
    insecure: bool,
    has_client_identity: bool,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("insecure", &self.insecure)
            .field("client_identity", &self.has_client_identity)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn alpn() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

impl TlsConfig {
    /// Starts a builder: verification on, webpki roots, no client certificate.
    #[must_use]
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder {
            builtin_roots: true,
            ca: Vec::new(),
            client_identity: None,
            insecure: false,
        }
    }

    /// The shared rustls client configuration.
    #[must_use]
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.config)
    }

    /// Whether server certificates are accepted without verification.
    #[must_use]
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// Whether a client certificate (mTLS) is configured.
    #[must_use]
    pub fn has_client_identity(&self) -> bool {
        self.has_client_identity
    }
}

impl TlsConfigBuilder {
    /// Whether to trust the built-in webpki (Mozilla) roots; on by default. Switch off to trust
    /// only the bundles added with [`add_ca_pem`](Self::add_ca_pem).
    #[must_use]
    pub fn builtin_roots(mut self, on: bool) -> Self {
        self.builtin_roots = on;
        self
    }

    /// Adds the certificates of a PEM bundle as trust anchors.
    #[must_use]
    pub fn add_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca.push(PemSource::bytes(pem));
        self
    }

    /// Adds the certificates of a PEM bundle file as trust anchors (read by `build`).
    #[must_use]
    pub fn add_ca_pem_file(mut self, path: impl AsRef<Path>) -> Self {
        self.ca.push(PemSource::file(path));
        self
    }

    /// Presents a client certificate (mTLS): a PEM certificate chain (leaf first) and a PEM
    /// private key (PKCS#8, PKCS#1 or SEC1).
    #[must_use]
    pub fn client_identity_pem(
        mut self,
        cert_chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.client_identity = Some((PemSource::bytes(cert_chain), PemSource::bytes(key)));
        self
    }

    /// Like [`client_identity_pem`](Self::client_identity_pem), reading both files at `build`.
    #[must_use]
    pub fn client_identity_pem_files(
        mut self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Self {
        self.client_identity = Some((PemSource::file(cert_chain), PemSource::file(key)));
        self
    }

    /// **Insecure**: accept any server certificate (self-signed, expired, wrong host). The
    /// connection is still TLS-encrypted but not authenticated. Off by default; each transport
    /// built with it logs a warning once.
    #[must_use]
    pub fn danger_accept_invalid_certs(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// Builds the configuration, reading files and parsing PEM.
    ///
    /// # Errors
    /// [`TlsError`] for unreadable files, malformed PEM, rejected certificates or keys, or no
    /// trust anchor at all.
    pub fn build(self) -> Result<TlsConfig, TlsError> {
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert { provider }))
        } else {
            let mut roots = RootCertStore::empty();
            if self.builtin_roots {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            for source in &self.ca {
                let pem = source.load("CA bundle", read)?;
                let certs = pem::certificates(&pem, "CA bundle")?;
                for cert in certs {
                    roots.add(cert).map_err(TlsError::BadCaCertificate)?;
                }
            }
            if roots.is_empty() {
                return Err(TlsError::NoTrustAnchors);
            }
            builder.with_root_certificates(roots)
        };
        let has_client_identity = self.client_identity.is_some();
        let mut config = match &self.client_identity {
            Some((chain, key)) => {
                let chain = chain.load("client certificate", read)?;
                let chain = pem::certificates(&chain, "client certificate")?;
                let key = pem::private_key(&key.load("client key", read)?, "client key")?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(TlsError::BadClientIdentity)?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn();
        Ok(TlsConfig {
            config: Arc::new(config),
            insecure: self.insecure,
            has_client_identity,
        })
    }
}

/// Reads a PEM file named in the configuration.
fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}

/// The "insecure" verifier: any certificate is accepted, handshake signatures are still checked
/// (so the peer must hold the key of the certificate it sent).
#[derive(Debug)]
struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_verifies_with_webpki_roots() -> Result<(), TlsError> {
        let tls = TlsConfig::builder().build()?;
        assert!(!tls.is_insecure());
        assert!(!tls.has_client_identity());
        assert_eq!(tls.client_config().alpn_protocols, alpn());
        Ok(())
    }

    #[test]
    fn garbage_ca_is_a_typed_error() {
        let err = TlsConfig::builder().add_ca_pem("not pem at all").build();
        assert!(
            matches!(
                err,
                Err(TlsError::Pem(PemError::Empty {
                    what: "CA bundle",
                    ..
                }))
            ),
            "{err:?}"
        );
        let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let err = TlsConfig::builder().add_ca_pem(broken).build();
        assert!(
            matches!(err, Err(TlsError::Pem(PemError::InvalidPem { .. }))),
            "{err:?}"
        );
    }

    #[test]
    fn missing_file_is_a_typed_error() {
        let err = TlsConfig::builder()
            .add_ca_pem_file("/nonexistent/ca.pem")
            .build();
        assert!(
            matches!(
                err,
                Err(TlsError::Pem(PemError::ReadFile {
                    what: "CA bundle",
                    ..
                }))
            ),
            "{err:?}"
        );
        let err = TlsConfig::builder()
            .client_identity_pem_files("/nonexistent/c.pem", "/nonexistent/k.pem")
            .build();
        assert!(
            matches!(err, Err(TlsError::Pem(PemError::ReadFile { .. }))),
            "{err:?}"
        );
    }

    #[test]
    fn no_roots_at_all_is_refused() {
        let err = TlsConfig::builder().builtin_roots(false).build();
        assert!(matches!(err, Err(TlsError::NoTrustAnchors)), "{err:?}");
    }

    #[test]
    fn client_identity_errors_are_typed() -> Result<(), Box<dyn std::error::Error>> {
        let key = rcgen::KeyPair::generate()?;
        let cert = rcgen::CertificateParams::new(vec!["client".to_owned()])?.self_signed(&key)?;
        let ok = TlsConfig::builder()
            .client_identity_pem(cert.pem(), key.serialize_pem())
            .build()?;
        assert!(ok.has_client_identity());
        let err = TlsConfig::builder()
            .client_identity_pem(cert.pem(), "no key here")
            .build();
        assert!(
            matches!(
                err,
                Err(TlsError::Pem(PemError::Empty {
                    what: "client key",
                    ..
                }))
            ),
            "{err:?}"
        );
        let other = rcgen::KeyPair::generate()?;
        let err = TlsConfig::builder()
            .client_identity_pem(cert.pem(), other.serialize_pem())
            .build();
        assert!(
            matches!(err, Err(TlsError::BadClientIdentity(_))),
            "{err:?}"
        );
        // Errors never echo the key.
        let msg = format!("{err:?}");
        assert!(!msg.contains("PRIVATE KEY"));
        Ok(())
    }

    #[test]
    fn pem_files_are_read_at_build() -> Result<(), Box<dyn std::error::Error>> {
        let key = rcgen::KeyPair::generate()?;
        let cert = rcgen::CertificateParams::new(vec!["client".to_owned()])?.self_signed(&key)?;
        let dir = std::env::temp_dir().join(format!("webhook-sender-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (cert_file, key_file) = (dir.join("client.pem"), dir.join("client.key"));
        std::fs::write(&cert_file, cert.pem())?;
        std::fs::write(&key_file, key.serialize_pem())?;
        let tls = TlsConfig::builder()
            .builtin_roots(false)
            .add_ca_pem_file(&cert_file)
            .client_identity_pem_files(&cert_file, &key_file)
            .build()?;
        assert!(tls.has_client_identity());
        assert!(tls.client_config().client_auth_cert_resolver.has_certs());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn insecure_is_explicit() -> Result<(), TlsError> {
        let tls = TlsConfig::builder()
            .danger_accept_invalid_certs(true)
            .build()?;
        assert!(tls.is_insecure());
        assert_eq!(
            format!("{tls:?}"),
            "TlsConfig { insecure: true, client_identity: false, .. }"
        );
        Ok(())
    }
}
