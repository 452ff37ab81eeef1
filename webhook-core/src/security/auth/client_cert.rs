//! Client certificates for mutual TLS: the configuration only (the sender's TLS layer presents
//! the certificate, the receiver's checks it). The inputs are [`PemSource`]s, the same as the
//! TLS configurations of both sides, and are decoded with `rustls-pki-types`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::{self as pki_pem, PemObject, SectionKind};
use zeroize::Zeroizing;

use super::AuthConfigError;
use crate::pem::{PemError, PemSource, wipe_if_unique};

/// A client certificate for mutual TLS: the configuration only (the sender's TLS layer presents
/// it). Built from PEM bytes (validated now) or from files (read and validated by
/// [`load`](Self::load), to which the caller passes its file reader: this crate does no I/O).
///
/// ```
/// use webhook_core::ClientCertificate;
///
/// let cert = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
/// let key = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
/// let pem = ClientCertificate::from_pem(cert.to_vec(), key.to_vec())?
///     .load(|path| std::fs::read(path))?;
/// assert!(pem.cert_chain_pem().starts_with(b"-----BEGIN CERTIFICATE-----"));
///
/// let files = ClientCertificate::from_files("/etc/hook/client.crt", "/etc/hook/client.key");
/// assert!(files.load(|p| std::fs::read(p)).is_err()); // no such files here
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientCertificate {
    cert_chain: PemSource,
    key: PemSource,
}

/// Validated PEM: a certificate chain and an unencrypted private key (zeroized on drop).
#[derive(Clone)]
pub struct ClientCertificatePem {
    cert_chain: Arc<[u8]>,
    key: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for ClientCertificatePem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificatePem")
            .field("cert_chain_len", &self.cert_chain.len())
            .field("key", &"***")
            .finish()
    }
}

impl ClientCertificatePem {
    /// Validates a certificate chain PEM (one or more `CERTIFICATE` blocks) and a private key
    /// PEM (exactly one `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block).
    ///
    /// # Errors
    /// [`AuthConfigError::Pem`] or [`AuthConfigError::EncryptedKey`].
    pub fn new(cert_chain: Vec<u8>, key: Vec<u8>) -> Result<Self, AuthConfigError> {
        Self::validated(Arc::from(cert_chain), Zeroizing::new(key))
    }

    fn validated(cert_chain: Arc<[u8]>, key: Zeroizing<Vec<u8>>) -> Result<Self, AuthConfigError> {
        let certs = blocks(&cert_chain, "certificate", &[SectionKind::Certificate])?;
        if certs == 0 {
            return Err(AuthConfigError::Pem {
                what: "certificate",
                reason: "no CERTIFICATE block",
            });
        }
        if is_encrypted(&key) {
            return Err(AuthConfigError::EncryptedKey);
        }
        let keys = blocks(
            &key,
            "private key",
            &[
                SectionKind::PrivateKey,
                SectionKind::RsaPrivateKey,
                SectionKind::EcPrivateKey,
            ],
        )?;
        if keys != 1 {
            return Err(AuthConfigError::Pem {
                what: "private key",
                reason: "expected exactly one private key block",
            });
        }
        Ok(Self { cert_chain, key })
    }

    /// The certificate chain, PEM.
    pub fn cert_chain_pem(&self) -> &[u8] {
        &self.cert_chain
    }

    /// The private key, PEM. Keep the borrow short and never log it.
    pub fn private_key_pem(&self) -> &[u8] {
        &self.key
    }
}

/// Whether a key PEM is encrypted: PKCS#8 `ENCRYPTED PRIVATE KEY`, or a legacy RFC 1421
/// `Proc-Type: 4,ENCRYPTED` header (the TLS stack needs the key in the clear).
fn is_encrypted(pem: &[u8]) -> bool {
    pem.split(|b| *b == b'\n')
        .map(<[u8]>::trim_ascii)
        .any(|line| {
            line == b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
                || (line.starts_with(b"Proc-Type:") && line.ends_with(b"ENCRYPTED"))
        })
}

/// Counts the PEM blocks of `input` (decoded by `rustls-pki-types`, decoded key bytes zeroized),
/// refusing a block of a known kind outside `allowed` and an empty block. Blocks of labels
/// unknown to `rustls-pki-types` are skipped.
fn blocks(
    input: &[u8],
    what: &'static str,
    allowed: &[SectionKind],
) -> Result<usize, AuthConfigError> {
    let err = |reason| AuthConfigError::Pem { what, reason };
    let mut count = 0;
    for block in <(SectionKind, Vec<u8>)>::pem_slice_iter(input) {
        let (kind, der) = block.map_err(|e| {
            err(match e {
                pki_pem::Error::MissingSectionEnd { .. } => "missing END line",
                pki_pem::Error::IllegalSectionStart { .. } => "malformed BEGIN line",
                pki_pem::Error::Base64Decode(_) => "body is not base64",
                pki_pem::Error::SectionTooLarge => "block too large",
                _ => "malformed PEM",
            })
        })?;
        let der = Zeroizing::new(der);
        if !allowed.contains(&kind) {
            return Err(err("unexpected block label"));
        }
        if der.is_empty() {
            return Err(err("empty block"));
        }
        count += 1;
    }
    Ok(count)
}

impl ClientCertificate {
    /// From PEM bytes, validated now.
    ///
    /// # Errors
    /// As [`ClientCertificatePem::new`].
    pub fn from_pem(cert_chain: Vec<u8>, key: Vec<u8>) -> Result<Self, AuthConfigError> {
        let pem = ClientCertificatePem::new(cert_chain, key)?;
        Ok(Self {
            cert_chain: PemSource::Bytes(pem.cert_chain),
            key: PemSource::bytes(pem.key.to_vec()),
        })
    }

    /// From file paths, read and validated by [`load`](Self::load).
    pub fn from_files(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self::from_sources(PemSource::file(cert.into()), PemSource::file(key.into()))
    }

    /// From any two PEM sources (bytes or files, as the TLS configurations take them),
    /// validated by [`load`](Self::load).
    pub fn from_sources(cert_chain: PemSource, key: PemSource) -> Self {
        Self { cert_chain, key }
    }

    /// The certificate chain's source.
    pub fn cert_chain_source(&self) -> &PemSource {
        &self.cert_chain
    }

    /// The private key's source (`Debug` never shows its content).
    pub fn key_source(&self) -> &PemSource {
        &self.key
    }

    /// The validated PEM, reading files through `read` (e.g. `std::fs::read`) when needed.
    ///
    /// # Errors
    /// [`AuthConfigError::Io`] if a file cannot be read, or a PEM validation error.
    pub fn load(
        &self,
        mut read: impl FnMut(&Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<ClientCertificatePem, AuthConfigError> {
        let io = |e: PemError| match e {
            PemError::ReadFile { path, source, .. } => AuthConfigError::Io {
                path,
                kind: source.kind(),
            },
            // `load` only reads; decoding is `ClientCertificatePem`'s.
            _ => AuthConfigError::Pem {
                what: "certificate",
                reason: "unreadable",
            },
        };
        let cert_chain = self
            .cert_chain
            .load("client certificate", &mut read)
            .map_err(io)?;
        let mut key = self.key.load("client key", &mut read).map_err(io)?;
        let pem = ClientCertificatePem::validated(cert_chain, Zeroizing::new(key.to_vec()));
        wipe_if_unique(&mut key);
        pem
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use http::HeaderMap;

    use super::*;
    use crate::SenderAuth;

    const CERT: &str =
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
    const KEY: &str =
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";

    #[test]
    fn pem_validation() {
        let ok = ClientCertificate::from_pem(format!("{CERT}{CERT}").into(), KEY.into());
        assert!(ok.is_ok());
        let err = |c: &str, k: &str| ClientCertificate::from_pem(c.into(), k.into()).unwrap_err();
        assert!(matches!(
            err("", KEY),
            AuthConfigError::Pem {
                what: "certificate",
                ..
            }
        ));
        assert!(matches!(
            err(KEY, KEY),
            AuthConfigError::Pem {
                what: "certificate",
                ..
            }
        ));
        assert!(matches!(
            err(CERT, CERT),
            AuthConfigError::Pem {
                what: "private key",
                ..
            }
        ));
        assert!(matches!(
            err(CERT, &format!("{KEY}{KEY}")),
            AuthConfigError::Pem {
                what: "private key",
                ..
            }
        ));
        assert_eq!(
            err(
                CERT,
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
            ),
            AuthConfigError::EncryptedKey
        );
        assert_eq!(
            err(
                CERT,
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----\n"
            ),
            AuthConfigError::EncryptedKey
        );
        assert!(matches!(
            err(
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                KEY
            ),
            AuthConfigError::Pem {
                reason: "body is not base64",
                ..
            }
        ));
        assert!(matches!(
            err("-----BEGIN CERTIFICATE-----\nAAAA\n", KEY),
            AuthConfigError::Pem {
                reason: "missing END line",
                ..
            }
        ));
    }

    #[test]
    fn files_are_read_through_the_callback() {
        let files = ClientCertificate::from_files("c.pem", "k.pem");
        let pem = files
            .load(|p| {
                Ok(if p == Path::new("c.pem") { CERT } else { KEY }
                    .as_bytes()
                    .to_vec())
            })
            .unwrap();
        assert_eq!(pem.private_key_pem(), KEY.as_bytes());
        assert!(!format!("{pem:?}").contains("MC4C"));
        let err = files
            .load(|_| Err(std::io::Error::from(std::io::ErrorKind::NotFound)))
            .unwrap_err();
        assert_eq!(
            err,
            AuthConfigError::Io {
                path: "c.pem".into(),
                kind: std::io::ErrorKind::NotFound
            }
        );
        let auth = SenderAuth::ClientCertificate(files);
        assert!(auth.client_certificate().is_some());
        assert!(auth.header_names().is_empty());
        let mut h = HeaderMap::new();
        auth.apply("i", 0, b"", &mut h).unwrap();
        assert!(h.is_empty());
    }
}
