//! HTTPS for the built-in [`Server`](crate::Server): a server certificate, and optionally
//! client certificates (mutual TLS, the way Sysdig's "client certificate" authentication
//! connects).
//!
//! [`ServerTls`] holds one [`rustls::ServerConfig`] (with the `ring` provider, TLS 1.2 and 1.3,
//! ALPN `http/1.1`, and `h2` first on a server with `Server::http2` on):
//!
//! - the server's certificate chain and private key come from PEM (bytes or files);
//! - [`ServerTlsBuilder::client_ca_pem`] turns on mutual TLS: every client must present a
//!   certificate issued by one of those CAs, or the handshake fails before any HTTP is read;
//!   [`ServerTlsBuilder::client_auth_optional`] also admits clients without one;
//! - the verified client certificate reaches handlers as
//!   [`Context::client_certificate`](crate::Context::client_certificate) (its DER bytes);
//! - a ready [`rustls::ServerConfig`] can be used as is ([`ServerTls::from_config`]).
//!
//! The server gives a TLS handshake the header read timeout
//! ([`Server::header_read_timeout`](crate::Server::header_read_timeout)); a client that fails
//! the handshake, or speaks plain HTTP to the TLS port, is disconnected without affecting other
//! connections.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use webhook_core::pem::{self, PemError, PemSource};

/// Why a [`ServerTls`] could not be built. Never carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerTlsError {
    /// A PEM input could not be read or decoded (which one, and why; never its content).
    #[error(transparent)]
    Pem(#[from] PemError),
    /// A client CA certificate was rejected as a trust anchor, or the client verifier could not
    /// be built from them.
    #[error("client CA rejected")]
    BadClientCa(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// rustls refused the server certificate or key (unsupported key type, mismatched pair).
    #[error("server certificate or key rejected")]
    BadServerIdentity(#[source] rustls::Error),
    /// rustls refused the protocol configuration.
    #[error("TLS configuration rejected")]
    Config(#[source] rustls::Error),
}

/// Builder of a [`ServerTls`]; chained calls never fail, [`ServerTlsBuilder::build`] reports the
/// first problem.
#[derive(Debug, Clone)]
pub struct ServerTlsBuilder {
    chain: PemSource,
    key: PemSource,
    client_cas: Vec<PemSource>,
    client_auth_optional: bool,
}

/// The TLS side of a [`Server`](crate::Server): cheap to clone (the rustls config is shared).
///
/// ```
/// use webhook_receiver::tls::ServerTls;
///
/// let key = rcgen::KeyPair::generate()?;
/// let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.self_signed(&key)?;
/// let tls = ServerTls::builder(cert.pem(), key.serialize_pem()).build()?;
/// assert_eq!(tls.config().alpn_protocols, vec![b"http/1.1".to_vec()]);
/// assert!(!tls.requires_client_certificate());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    client_auth: ClientAuth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    None,
    Optional,
    Required,
    /// A caller's own config: whatever it says.
    External,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// A builder with the server's certificate chain (leaf first) and private key, both PEM.
    pub fn builder(
        cert_chain_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> ServerTlsBuilder {
        ServerTlsBuilder {
            chain: PemSource::bytes(cert_chain_pem),
            key: PemSource::bytes(key_pem),
            client_cas: Vec::new(),
            client_auth_optional: false,
        }
    }

    /// Like [`builder`](Self::builder), reading both PEM files at
    /// [`build`](ServerTlsBuilder::build).
    pub fn builder_from_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> ServerTlsBuilder {
        ServerTlsBuilder {
            chain: PemSource::file(cert_chain),
            key: PemSource::file(key),
            client_cas: Vec::new(),
            client_auth_optional: false,
        }
    }

    /// A ready rustls configuration, used as is: its ALPN list should offer `http/1.1`, and
    /// `h2` only for a server with `Server::http2` on (feature `http2`; the server does not
    /// change it).
    pub fn from_config(config: Arc<rustls::ServerConfig>) -> Self {
        Self {
            config,
            client_auth: ClientAuth::External,
        }
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<rustls::ServerConfig> {
        &self.config
    }

    /// Whether the handshake refuses clients without a certificate from the client CAs
    /// (`false` for a configuration given to [`from_config`](Self::from_config)).
    pub fn requires_client_certificate(&self) -> bool {
        self.client_auth == ClientAuth::Required
    }

    /// The server side of a TLS handshake on `stream`, within `timeout` (a client that connects
    /// and never finishes it must not hold the connection): the encrypted stream and the client
    /// certificate (DER) it verified, if the client presented one. The built-in
    /// [`Server`](crate::Server) uses it; so can an accept loop of your own.
    ///
    /// # Errors
    /// The handshake's I/O or TLS error, or [`std::io::ErrorKind::TimedOut`].
    pub async fn accept<IO>(
        &self,
        stream: IO,
        timeout: std::time::Duration,
    ) -> std::io::Result<(tokio_rustls::server::TlsStream<IO>, Option<bytes::Bytes>)>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&self.config));
        let stream = tokio::time::timeout(timeout, acceptor.accept(stream))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
            })??;
        let certificate = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(<[_]>::first)
            .map(|der| bytes::Bytes::copy_from_slice(der.as_ref()));
        Ok((stream, certificate))
    }
}

impl ServerTls {
    /// The same configuration offering `h2` before `http/1.1` by ALPN (a configuration given to
    /// [`from_config`](Self::from_config) is kept as it is).
    #[cfg(feature = "http2")]
    pub(crate) fn offering_h2(self) -> Self {
        if self.client_auth == ClientAuth::External {
            return self;
        }
        let mut config = (*self.config).clone();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self {
            config: Arc::new(config),
            client_auth: self.client_auth,
        }
    }
}

impl ServerTlsBuilder {
    /// Mutual TLS: clients must present a certificate issued by a CA of this PEM bundle (may be
    /// called several times; the CAs add up).
    #[must_use]
    pub fn client_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.client_cas.push(PemSource::bytes(pem));
        self
    }

    /// Like [`client_ca_pem`](Self::client_ca_pem), reading the file at `build`.
    #[must_use]
    pub fn client_ca_pem_file(mut self, path: impl AsRef<Path>) -> Self {
        self.client_cas.push(PemSource::file(path));
        self
    }

    /// With client CAs: also admit clients that present no certificate (a certificate that is
    /// presented must still verify). Handlers tell them apart by
    /// [`Context::client_certificate`](crate::Context::client_certificate).
    #[must_use]
    pub fn client_auth_optional(mut self, optional: bool) -> Self {
        self.client_auth_optional = optional;
        self
    }

    /// Reads and checks everything.
    ///
    /// # Errors
    /// [`ServerTlsError`] for unreadable files, malformed or empty PEM, a rejected client CA, or a
    /// certificate and key rustls refuses (for example a key that does not match).
    pub fn build(self) -> Result<ServerTls, ServerTlsError> {
        let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
        let chain = self.chain.load("server certificate", read)?;
        let chain = pem::certificates(&chain, "server certificate")?;
        let key = pem::private_key(&self.key.load("server key", read)?, "server key")?;
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(ServerTlsError::Config)?;
        let (builder, client_auth) = if self.client_cas.is_empty() {
            (builder.with_no_client_auth(), ClientAuth::None)
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for source in &self.client_cas {
                let bundle = source.load("client CA bundle", read)?;
                for cert in pem::certificates(&bundle, "client CA bundle")? {
                    roots
                        .add(cert)
                        .map_err(|e| ServerTlsError::BadClientCa(Box::new(e)))?;
                }
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let (verifier, mode) = if self.client_auth_optional {
                (verifier.allow_unauthenticated(), ClientAuth::Optional)
            } else {
                (verifier, ClientAuth::Required)
            };
            let verifier = verifier
                .build()
                .map_err(|e| ServerTlsError::BadClientCa(Box::new(e)))?;
            (builder.with_client_cert_verifier(verifier), mode)
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(ServerTlsError::BadServerIdentity)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            client_auth,
        })
    }
}

/// Reads a PEM file named in the configuration.
fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}
