//! PEM inputs of TLS configurations, shared by the sender's client TLS and the receiver's
//! server TLS: where a certificate or key comes from (bytes, or a file read through the
//! caller's reader: this crate does no I/O), and its decoding into DER with
//! `rustls-pki-types` (always built: [`ClientCertificate`](crate::ClientCertificate) uses it too).
//!
//! Errors name the input (`"CA bundle"`, `"server key"`, ...) and never carry its content.
//!
//! ```
//! use webhook_core::pem::{self, PemError, PemSource};
//!
//! let source = PemSource::bytes("no PEM here");
//! let text = source.load("CA bundle", |p| std::fs::read(p))?;
//! assert!(matches!(
//!     pem::certificates(&text, "CA bundle"),
//!     Err(PemError::Empty { what: "CA bundle", .. })
//! ));
//! let missing = PemSource::file("/nonexistent/ca.pem").load("CA bundle", |p| std::fs::read(p));
//! assert!(matches!(missing, Err(PemError::ReadFile { .. })));
//! # Ok::<(), PemError>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a PEM input could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// A PEM file could not be read.
    #[error("cannot read {what} file {path}")]
    ReadFile {
        /// Which input (`"CA bundle"`, `"client certificate"`, `"server key"`, ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A PEM input is malformed.
    #[error("invalid PEM in {what}: {reason}")]
    InvalidPem {
        /// Which input.
        what: &'static str,
        /// The parser's reason (never the content).
        reason: String,
    },
    /// A PEM input holds no item of the expected kind (no `CERTIFICATE`, no private key).
    #[error("no {expected} found in {what}")]
    Empty {
        /// Which input.
        what: &'static str,
        /// What was looked for.
        expected: &'static str,
    },
}

/// Where a PEM input comes from: bytes given now, or a file read when the configuration is
/// built. `Debug` shows the length or the path, never the content; the bytes are zeroized when
/// the last clone is dropped (they may be a private key).
#[derive(Clone)]
pub enum PemSource {
    /// PEM bytes.
    Bytes(Arc<[u8]>),
    /// A PEM file.
    File(PathBuf),
}

impl PemSource {
    /// PEM bytes.
    pub fn bytes(pem: impl Into<Vec<u8>>) -> Self {
        Self::Bytes(Arc::from(pem.into()))
    }

    /// A PEM file, read by [`load`](Self::load).
    pub fn file(path: impl AsRef<Path>) -> Self {
        Self::File(path.as_ref().to_owned())
    }

    /// The PEM text, reading a file through `read` (e.g. `std::fs::read`); `what` names the
    /// input in errors.
    ///
    /// # Errors
    /// [`PemError::ReadFile`] when `read` fails.
    pub fn load(
        &self,
        what: &'static str,
        read: impl FnOnce(&Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<Arc<[u8]>, PemError> {
        match self {
            Self::Bytes(b) => Ok(Arc::clone(b)),
            Self::File(path) => read(path)
                .map(Arc::from)
                .map_err(|source| PemError::ReadFile {
                    what,
                    path: path.clone(),
                    source,
                }),
        }
    }
}

impl Drop for PemSource {
    fn drop(&mut self) {
        if let Self::Bytes(bytes) = self {
            wipe_if_unique(bytes);
        }
    }
}

/// Zeroizes `bytes` when no other reference to them exists (PEM that may hold a private key).
pub(crate) fn wipe_if_unique(bytes: &mut Arc<[u8]>) {
    if let Some(bytes) = Arc::get_mut(bytes) {
        zeroize::Zeroize::zeroize(bytes);
    }
}

impl fmt::Debug for PemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "Pem({} bytes)", b.len()),
            Self::File(p) => write!(f, "PemFile({})", p.display()),
        }
    }
}

/// Every `CERTIFICATE` of `pem` (other sections are skipped), at least one.
///
/// # Errors
/// [`PemError::InvalidPem`] for a malformed section, [`PemError::Empty`] without a certificate.
pub fn certificates(
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemError::InvalidPem {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(PemError::Empty {
            what,
            expected: "CERTIFICATE",
        });
    }
    Ok(certs)
}

/// The first private key of `pem` (PKCS#8, PKCS#1 or SEC1, unencrypted).
///
/// # Errors
/// [`PemError::Empty`] without a key, [`PemError::InvalidPem`] for a malformed section.
pub fn private_key(pem: &[u8], what: &'static str) -> Result<PrivateKeyDer<'static>, PemError> {
    use rustls_pki_types::pem::Error;
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        Error::NoItemsFound => PemError::Empty {
            what,
            expected: "PRIVATE KEY",
        },
        // The pem error may quote a section label but never key bytes.
        other => PemError::InvalidPem {
            what,
            reason: other.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n";

    #[test]
    fn certificates_skip_other_sections_and_keys_are_found_among_them() {
        let both = format!("{KEY}{CERT}{CERT}");
        assert_eq!(certificates(both.as_bytes(), "bundle").unwrap().len(), 2);
        assert!(matches!(
            private_key(both.as_bytes(), "key").unwrap(),
            PrivateKeyDer::Pkcs8(_)
        ));
    }

    #[test]
    fn errors_name_the_input_and_never_show_the_content() {
        let broken = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        let err = certificates(broken.as_bytes(), "CA bundle").unwrap_err();
        assert!(
            matches!(
                err,
                PemError::InvalidPem {
                    what: "CA bundle",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.to_string().contains("not base64"), "{err}");
        assert!(matches!(
            certificates(KEY.as_bytes(), "CA bundle"),
            Err(PemError::Empty {
                expected: "CERTIFICATE",
                ..
            })
        ));
        assert!(matches!(
            private_key(CERT.as_bytes(), "server key"),
            Err(PemError::Empty {
                what: "server key",
                expected: "PRIVATE KEY"
            })
        ));
        let mut only = Arc::from(KEY.as_bytes());
        wipe_if_unique(&mut only);
        assert!(only.iter().all(|b| *b == 0), "a unique PEM buffer is wiped");
        let secret = PemSource::bytes(KEY);
        assert_eq!(format!("{secret:?}"), format!("Pem({} bytes)", KEY.len()));
        let err = PemSource::file("/nonexistent/k.pem")
            .load("server key", |p| std::fs::read(p))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("server key file /nonexistent/k.pem"),
            "{err}"
        );
    }
}
