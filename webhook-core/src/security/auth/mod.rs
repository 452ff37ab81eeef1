//! Authentication methods, sender side and receiver side.
//!
//! | method | sender ([`SenderAuth::apply`]) | receiver ([`ReceiverAuth::check`]) | identity |
//! | --- | --- | --- | --- |
//! | None | nothing | accepts | [`Identity::Anonymous`] |
//! | Basic (Sysdig `BASIC_AUTH`, Safous) | `Authorization: Basic base64(user:password)` | constant-time | [`Identity::Basic`] (user name) |
//! | Bearer (Sysdig `BEARER_TOKEN`) | `Authorization: Bearer <token>` | constant-time | [`Identity::Bearer`] |
//! | Static header token (ConnectSecure, GitLab) | `<name>: <value>` | constant-time | [`Identity::HeaderToken`] |
//! | Signature (Sysdig `SIGNATURE`) | the scheme's headers ([`Signer`]) | [`Verifier`] | [`Identity::Signature`] (key index, id, timestamp) |
//! | Client certificate (Sysdig, mTLS) | configuration only: the sender's TLS layer presents it | the receiver's TLS layer | — |
//!
//! Sysdig does not publish how its `SIGNATURE` is computed, so [`SenderAuth::signature`] and
//! [`ReceiverAuth::signature`] default to Standard Webhooks; any [`Scheme`] can be used instead.
//!
//! Constant time: credentials are compared as SHA-256 digests with `subtle`, so neither the
//! position of the first difference nor the length of the expected secret leaks through timing.
//! Header values that carry credentials are marked sensitive (never indexed by HTTP/2 HPACK).
//!
//! One file per method: [`basic`], [`bearer`], [`header_token`], [`client_cert`]; the sender's
//! and receiver's choice of method in [`sender`] and [`receiver`]; the errors and the
//! constant-time helpers they share here.

mod basic;
mod bearer;
mod client_cert;
mod header_token;
mod receiver;
mod sender;

pub use basic::BasicCredentials;
pub use bearer::BearerToken;
pub use client_cert::{ClientCertificate, ClientCertificatePem};
pub use header_token::HeaderToken;
pub use receiver::{Identity, ReceiverAuth};
pub use sender::SenderAuth;

use std::path::PathBuf;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{SignError, VerifyError};

/// Why an auth configuration is invalid. Never contains a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthConfigError {
    /// A Basic secret has no `:` between user and password. Sysdig's documentation says
    /// "semicolon as separation" but shows `user:password`; a `;` is **not** a separator.
    #[error("expected `user:password` (a `;` is not a separator)")]
    MissingColon,
    /// The user name is empty.
    #[error("the user name is empty")]
    EmptyUser,
    /// A token or password is empty.
    #[error("the {field} is empty")]
    Empty {
        /// Which field.
        field: &'static str,
    },
    /// A field contains whitespace where none is allowed (Sysdig: "no whitespaces").
    #[error("the {field} contains whitespace")]
    Whitespace {
        /// Which field.
        field: &'static str,
    },
    /// A field contains a control character or a character not allowed in a header.
    #[error("the {field} contains a character that cannot be sent in a header")]
    InvalidCharacter {
        /// Which field.
        field: &'static str,
    },
    /// The token header name is not a valid HTTP header name.
    #[error("invalid header name {name:?}")]
    InvalidHeaderName {
        /// The name as given.
        name: String,
    },
    /// The token header name is one the HTTP layer or the SDK controls.
    #[error("header {name:?} cannot carry a token")]
    ReservedHeaderName {
        /// The name as given.
        name: String,
    },
    /// A PEM input is not what it should be.
    #[error("invalid {what} PEM: {reason}")]
    Pem {
        /// `"certificate"` or `"private key"`.
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The private key is encrypted; decrypt it first (the TLS stack needs it in the clear).
    #[error("the private key is encrypted (ENCRYPTED PRIVATE KEY); provide it decrypted")]
    EncryptedKey,
    /// A certificate or key file could not be read.
    #[error("cannot read {path:?}: {kind}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error kind.
        kind: std::io::ErrorKind,
    },
}

/// Why a request was refused (receiver side) or could not be authenticated (sender side).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The credential header is absent.
    #[error("missing header `{header}`")]
    MissingHeader {
        /// The header.
        header: HeaderName,
    },
    /// The `Authorization` header uses another scheme (e.g. `Bearer` where `Basic` is expected).
    #[error("`Authorization` does not use the `{expected}` scheme")]
    WrongScheme {
        /// The expected scheme.
        expected: &'static str,
    },
    /// The credential header cannot be parsed.
    #[error("malformed header `{header}`: {reason}")]
    Malformed {
        /// The header.
        header: HeaderName,
        /// What is wrong.
        reason: &'static str,
    },
    /// The credentials do not match.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Signature verification failed.
    #[error(transparent)]
    Signature(#[from] VerifyError),
    /// Signing failed (sender side).
    #[error(transparent)]
    Sign(#[from] SignError),
}

pub(super) fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

pub(super) fn ct_eq_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

pub(super) fn sensitive(mut v: HeaderValue) -> HeaderValue {
    v.set_sensitive(true);
    v
}

/// Splits `Authorization: <scheme> <credentials>`, matching the scheme case-insensitively.
pub(super) fn authorization<'h>(
    headers: &'h HeaderMap,
    scheme: &'static str,
) -> Result<&'h [u8], AuthError> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or(AuthError::MissingHeader {
            header: AUTHORIZATION,
        })?
        .as_bytes();
    let space = value
        .iter()
        .position(|b| *b == b' ')
        .ok_or(AuthError::WrongScheme { expected: scheme })?;
    let (name, rest) = value.split_at(space);
    if !name.eq_ignore_ascii_case(scheme.as_bytes()) {
        return Err(AuthError::WrongScheme { expected: scheme });
    }
    Ok(rest.trim_ascii())
}

pub(super) fn check_token_text(
    token: &str,
    field: &'static str,
    spaces_ok: bool,
) -> Result<(), AuthConfigError> {
    if token.is_empty() {
        return Err(AuthConfigError::Empty { field });
    }
    if !spaces_ok && token.bytes().any(|b| b == b' ' || b == b'\t') {
        return Err(AuthConfigError::Whitespace { field });
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c == ' ' || c == '\t');
    if edge(token.chars().next()) || edge(token.chars().last()) {
        return Err(AuthConfigError::Whitespace { field });
    }
    if token
        .bytes()
        .any(|b| !(b == b'\t' || (0x20..0x7f).contains(&b)))
    {
        return Err(AuthConfigError::InvalidCharacter { field });
    }
    Ok(())
}
