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

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::keyring::{KeyRing, KeyRingError};
use crate::sign::{Scheme, SignError, Signer};
use crate::verify::{Verifier, VerifyError};

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

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn ct_eq_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

fn sensitive(mut v: HeaderValue) -> HeaderValue {
    v.set_sensitive(true);
    v
}

/// Splits `Authorization: <scheme> <credentials>`, matching the scheme case-insensitively.
fn authorization<'h>(headers: &'h HeaderMap, scheme: &'static str) -> Result<&'h [u8], AuthError> {
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

/// HTTP Basic credentials (RFC 7617), e.g. Sysdig's `BASIC_AUTH` secret `user:password`.
///
/// ```
/// use webhook_core::{BasicCredentials, Identity, ReceiverAuth, SenderAuth};
///
/// let creds = BasicCredentials::parse("sysdig:s3cret")?;
/// let mut headers = http::HeaderMap::new();
/// SenderAuth::Basic(creds.clone()).apply("evt", 0, b"", &mut headers)?;
/// assert_eq!(headers["authorization"], "Basic c3lzZGlnOnMzY3JldA==");
///
/// let who = ReceiverAuth::Basic(creds).check(&headers, b"", std::time::SystemTime::now())?;
/// assert_eq!(who, Identity::Basic { user: "sysdig".into() });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct BasicCredentials {
    user: String,
    password: Zeroizing<String>,
    expected: [u8; 32],
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

impl BasicCredentials {
    /// Builds credentials from a user name (non-empty, no `:`, no control characters) and a
    /// password (no control characters; may contain `:` and spaces).
    ///
    /// # Errors
    /// [`AuthConfigError`] naming the field.
    pub fn new(
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<Self, AuthConfigError> {
        let user = user.into();
        let password = Zeroizing::new(password.into());
        if user.is_empty() {
            return Err(AuthConfigError::EmptyUser);
        }
        if user.contains(':') {
            return Err(AuthConfigError::InvalidCharacter { field: "user name" });
        }
        if user.chars().any(char::is_control) {
            return Err(AuthConfigError::InvalidCharacter { field: "user name" });
        }
        if password.chars().any(char::is_control) {
            return Err(AuthConfigError::InvalidCharacter { field: "password" });
        }
        let expected = digest(&[user.as_bytes(), b":", password.as_bytes()]);
        Ok(Self {
            user,
            password,
            expected,
        })
    }

    /// Parses a Sysdig-style secret `user:password`: split at the **first** `:` (user names
    /// cannot contain one), no whitespace anywhere (Sysdig: "No whitespaces").
    ///
    /// Sysdig's documentation says "semicolon character as separation" while showing
    /// `user: password`; we read it as the colon of HTTP Basic. A `;` is an ordinary character:
    /// `user;pass` (no colon) is refused with [`AuthConfigError::MissingColon`], and
    /// `user:pa;ss` has the password `pa;ss`.
    ///
    /// ```
    /// use webhook_core::{AuthConfigError, BasicCredentials};
    /// assert_eq!(BasicCredentials::parse("alice:pa:ss")?.user(), "alice");
    /// assert_eq!(BasicCredentials::parse("alice;pass").unwrap_err(), AuthConfigError::MissingColon);
    /// assert!(matches!(BasicCredentials::parse("alice: pass"), Err(AuthConfigError::Whitespace { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`AuthConfigError`].
    pub fn parse(secret: &str) -> Result<Self, AuthConfigError> {
        let (user, password) = secret
            .split_once(':')
            .ok_or(AuthConfigError::MissingColon)?;
        if user.chars().any(char::is_whitespace) {
            return Err(AuthConfigError::Whitespace { field: "user name" });
        }
        if password.chars().any(char::is_whitespace) {
            return Err(AuthConfigError::Whitespace { field: "password" });
        }
        Self::new(user, password)
    }

    /// The user name (not secret).
    pub fn user(&self) -> &str {
        &self.user
    }

    fn header_value(&self) -> Result<HeaderValue, AuthError> {
        let plain = Zeroizing::new(format!("{}:{}", self.user, self.password.as_str()));
        let mut text = Zeroizing::new(String::from("Basic "));
        STANDARD.encode_string(plain.as_bytes(), &mut text);
        HeaderValue::from_str(&text)
            .map(sensitive)
            .map_err(|_| AuthError::Malformed {
                header: AUTHORIZATION,
                reason: "credentials cannot be encoded",
            })
    }

    fn check(&self, headers: &HeaderMap) -> Result<Identity, AuthError> {
        let b64 = authorization(headers, "Basic")?;
        let decoded = Zeroizing::new(STANDARD.decode(b64).map_err(|_| AuthError::Malformed {
            header: AUTHORIZATION,
            reason: "not base64",
        })?);
        if ct_eq_digest(&digest(&[&decoded]), &self.expected) {
            Ok(Identity::Basic {
                user: self.user.clone(),
            })
        } else {
            Err(AuthError::InvalidCredentials)
        }
    }
}

fn check_token_text(
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

/// A bearer token (`Authorization: Bearer <token>`), e.g. Sysdig's `BEARER_TOKEN`.
///
/// ```
/// use webhook_core::{BearerToken, Identity, ReceiverAuth, SenderAuth};
///
/// let token = BearerToken::new("abc.def-123")?;
/// let mut headers = http::HeaderMap::new();
/// SenderAuth::Bearer(token.clone()).apply("evt", 0, b"", &mut headers)?;
/// assert_eq!(headers["authorization"], "Bearer abc.def-123");
/// assert!(headers["authorization"].is_sensitive());
/// assert_eq!(ReceiverAuth::Bearer(token).check(&headers, b"", std::time::SystemTime::now())?,
///            Identity::Bearer);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct BearerToken {
    token: Zeroizing<String>,
    expected: [u8; 32],
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(***)")
    }
}

impl BearerToken {
    /// A token of visible ASCII characters without whitespace.
    ///
    /// # Errors
    /// [`AuthConfigError`] if empty or containing whitespace or control characters.
    pub fn new(token: impl Into<String>) -> Result<Self, AuthConfigError> {
        let token = Zeroizing::new(token.into());
        check_token_text(&token, "bearer token", false)?;
        let expected = digest(&[token.as_bytes()]);
        Ok(Self { token, expected })
    }

    fn header_value(&self) -> Result<HeaderValue, AuthError> {
        let text = Zeroizing::new(format!("Bearer {}", self.token.as_str()));
        HeaderValue::from_str(&text)
            .map(sensitive)
            .map_err(|_| AuthError::Malformed {
                header: AUTHORIZATION,
                reason: "token cannot be encoded",
            })
    }

    fn check(&self, headers: &HeaderMap) -> Result<Identity, AuthError> {
        let given = authorization(headers, "Bearer")?;
        if ct_eq_digest(&digest(&[given]), &self.expected) {
            Ok(Identity::Bearer)
        } else {
            Err(AuthError::InvalidCredentials)
        }
    }
}

/// Header names a token may not use: framing and hop-by-hop headers, and the SDK's signature
/// headers. (`Authorization` is allowed: ConnectSecure users may put any scheme in it.)
const TOKEN_FORBIDDEN: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
];

/// A static secret header (ConnectSecure "Authentication Header Key/Value", GitLab
/// `X-Gitlab-Token`), compared in constant time.
///
/// ```
/// use webhook_core::{HeaderToken, Identity, ReceiverAuth, SenderAuth};
///
/// let token = HeaderToken::gitlab("glpat-secret")?;
/// let mut headers = http::HeaderMap::new();
/// SenderAuth::HeaderToken(token.clone()).apply("evt", 0, b"", &mut headers)?;
/// assert_eq!(headers["x-gitlab-token"], "glpat-secret");
/// let who = ReceiverAuth::HeaderToken(token).check(&headers, b"", std::time::SystemTime::now())?;
/// assert_eq!(who, Identity::HeaderToken { header: "x-gitlab-token".parse()? });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct HeaderToken {
    name: HeaderName,
    value: Zeroizing<String>,
    expected: [u8; 32],
}

impl fmt::Debug for HeaderToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderToken")
            .field("name", &self.name)
            .field("value", &"***")
            .finish()
    }
}

impl HeaderToken {
    /// A token sent as `name: value`. The value may contain inner spaces (e.g. `ApiKey xyz`)
    /// but no control characters and no surrounding whitespace.
    ///
    /// # Errors
    /// [`AuthConfigError`] for an invalid or reserved name, or an invalid value.
    pub fn new(name: &str, value: impl Into<String>) -> Result<Self, AuthConfigError> {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            AuthConfigError::InvalidHeaderName {
                name: name.to_owned(),
            }
        })?;
        if TOKEN_FORBIDDEN.contains(&header.as_str())
            || crate::sign::is_sdk_signature_header(&header)
        {
            return Err(AuthConfigError::ReservedHeaderName {
                name: name.to_owned(),
            });
        }
        let value = Zeroizing::new(value.into());
        check_token_text(&value, "header token", true)?;
        let expected = digest(&[value.as_bytes()]);
        Ok(Self {
            name: header,
            value,
            expected,
        })
    }

    /// GitLab's `X-Gitlab-Token`.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn gitlab(value: impl Into<String>) -> Result<Self, AuthConfigError> {
        Self::new("x-gitlab-token", value)
    }

    /// The header name (not secret).
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    fn header_value(&self) -> Result<HeaderValue, AuthError> {
        HeaderValue::from_str(&self.value)
            .map(sensitive)
            .map_err(|_| AuthError::Malformed {
                header: self.name.clone(),
                reason: "token cannot be encoded",
            })
    }

    fn check(&self, headers: &HeaderMap) -> Result<Identity, AuthError> {
        let given = headers
            .get(&self.name)
            .ok_or_else(|| AuthError::MissingHeader {
                header: self.name.clone(),
            })?
            .as_bytes();
        if ct_eq_digest(&digest(&[given]), &self.expected) {
            Ok(Identity::HeaderToken {
                header: self.name.clone(),
            })
        } else {
            Err(AuthError::InvalidCredentials)
        }
    }
}

/// A client certificate for mutual TLS: the configuration only (the sender's TLS layer presents
/// it). Built from PEM bytes (validated now) or from file paths (read and validated by
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
pub enum ClientCertificate {
    /// PEM bytes, already validated.
    Pem(ClientCertificatePem),
    /// Paths to the PEM files, read by [`load`](Self::load).
    Files {
        /// The certificate chain (leaf first).
        cert: PathBuf,
        /// The private key (PKCS#8, PKCS#1 or SEC1, unencrypted).
        key: PathBuf,
    },
}

/// Validated PEM: a certificate chain and an unencrypted private key (zeroized on drop).
#[derive(Clone)]
pub struct ClientCertificatePem {
    cert_chain: Vec<u8>,
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
        let key = Zeroizing::new(key);
        let certs = pem_blocks(&cert_chain, "certificate")?;
        if certs == 0 {
            return Err(AuthConfigError::Pem {
                what: "certificate",
                reason: "no CERTIFICATE block",
            });
        }
        let keys = pem_blocks(&key, "private key")?;
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

/// Counts the PEM blocks of `input`, checking labels, matching END lines and base64 bodies.
fn pem_blocks(input: &[u8], what: &'static str) -> Result<usize, AuthConfigError> {
    let err = |reason| AuthConfigError::Pem { what, reason };
    let text = std::str::from_utf8(input).map_err(|_| err("not UTF-8 text"))?;
    let mut count = 0;
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let allowed: &[&str] = if what == "certificate" {
            &["CERTIFICATE"]
        } else {
            &["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"]
        };
        if what != "certificate" && label == "ENCRYPTED PRIVATE KEY" {
            return Err(AuthConfigError::EncryptedKey);
        }
        if !allowed.contains(&label) {
            return Err(err("unexpected block label"));
        }
        let mut body = Zeroizing::new(String::new());
        let mut ended = false;
        for inner in lines.by_ref() {
            if let Some(end) = inner
                .strip_prefix("-----END ")
                .and_then(|l| l.strip_suffix("-----"))
            {
                if end != label {
                    return Err(err("END label does not match BEGIN"));
                }
                ended = true;
                break;
            }
            if inner.contains(':') {
                // RFC 1421 headers (Proc-Type: 4,ENCRYPTED ...) mean a legacy encrypted key.
                if what != "certificate" {
                    return Err(AuthConfigError::EncryptedKey);
                }
                return Err(err("unexpected header line"));
            }
            body.push_str(inner);
        }
        if !ended {
            return Err(err("missing END line"));
        }
        let decoded = Zeroizing::new(
            STANDARD
                .decode(body.as_bytes())
                .map_err(|_| err("body is not base64"))?,
        );
        if decoded.is_empty() {
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
        ClientCertificatePem::new(cert_chain, key).map(ClientCertificate::Pem)
    }

    /// From file paths, read and validated by [`load`](Self::load).
    pub fn from_files(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        ClientCertificate::Files {
            cert: cert.into(),
            key: key.into(),
        }
    }

    /// The validated PEM, reading files through `read` (e.g. `std::fs::read`) when needed.
    ///
    /// # Errors
    /// [`AuthConfigError::Io`] if a file cannot be read, or a PEM validation error.
    pub fn load(
        &self,
        mut read: impl FnMut(&Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<ClientCertificatePem, AuthConfigError> {
        match self {
            ClientCertificate::Pem(p) => Ok(p.clone()),
            ClientCertificate::Files { cert, key } => {
                let io = |path: &Path, e: std::io::Error| AuthConfigError::Io {
                    path: path.to_owned(),
                    kind: e.kind(),
                };
                let cert_bytes = read(cert).map_err(|e| io(cert, e))?;
                let key_bytes = read(key).map_err(|e| io(key, e))?;
                ClientCertificatePem::new(cert_bytes, key_bytes)
            }
        }
    }
}

/// How a sender authenticates its requests.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SenderAuth {
    /// No authentication.
    None,
    /// HTTP Basic.
    Basic(BasicCredentials),
    /// Bearer token.
    Bearer(BearerToken),
    /// Static secret header.
    HeaderToken(HeaderToken),
    /// Signature headers of a scheme.
    Signature(Signer),
    /// Mutual TLS: no header; the sender's TLS layer presents the certificate.
    ClientCertificate(ClientCertificate),
}

impl SenderAuth {
    /// Sysdig-style `SIGNATURE` auth with the default scheme, Standard Webhooks, and one key.
    ///
    /// ```
    /// use webhook_core::{Secret, SenderAuth};
    /// let auth = SenderAuth::signature(Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?)?;
    /// let mut headers = http::HeaderMap::new();
    /// auth.apply("msg_1", 1_700_000_000, b"[]", &mut headers)?;
    /// assert!(headers.contains_key("webhook-signature"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`KeyRingError`] (cannot happen for an HMAC secret with the default scheme; kept for
    /// symmetry with [`signature_with`](Self::signature_with)).
    pub fn signature(secret: crate::Secret) -> Result<Self, KeyRingError> {
        Self::signature_with(Scheme::standard_webhooks(), &KeyRing::single(secret))
    }

    /// `SIGNATURE` auth with any scheme and key ring.
    ///
    /// # Errors
    /// [`KeyRingError`] if the keys do not fit the scheme.
    pub fn signature_with(scheme: Scheme, ring: &KeyRing) -> Result<Self, KeyRingError> {
        Signer::new(scheme, ring).map(SenderAuth::Signature)
    }

    /// Writes the authentication headers of one attempt (`id`, `timestamp_secs` and `body` are
    /// used by [`SenderAuth::Signature`] only).
    ///
    /// # Errors
    /// [`AuthError::Sign`] if signing fails.
    pub fn apply(
        &self,
        id: &str,
        timestamp_secs: u64,
        body: &[u8],
        headers: &mut HeaderMap,
    ) -> Result<(), AuthError> {
        match self {
            SenderAuth::None | SenderAuth::ClientCertificate(_) => {}
            SenderAuth::Basic(c) => {
                headers.insert(AUTHORIZATION, c.header_value()?);
            }
            SenderAuth::Bearer(t) => {
                headers.insert(AUTHORIZATION, t.header_value()?);
            }
            SenderAuth::HeaderToken(t) => {
                headers.insert(t.name.clone(), t.header_value()?);
            }
            SenderAuth::Signature(s) => s.sign(id, timestamp_secs, body, headers)?,
        }
        Ok(())
    }

    /// The client certificate, for the sender's TLS configuration.
    pub fn client_certificate(&self) -> Option<&ClientCertificate> {
        match self {
            SenderAuth::ClientCertificate(c) => Some(c),
            _ => None,
        }
    }

    /// The headers this method writes (to reserve them against custom headers).
    pub fn header_names(&self) -> Vec<HeaderName> {
        match self {
            SenderAuth::None | SenderAuth::ClientCertificate(_) => Vec::new(),
            SenderAuth::Basic(_) | SenderAuth::Bearer(_) => vec![AUTHORIZATION],
            SenderAuth::HeaderToken(t) => vec![t.name.clone()],
            SenderAuth::Signature(s) => s.scheme().headers().cloned().collect(),
        }
    }
}

/// How a receiver authenticates requests. (Client certificates are checked by the receiver's
/// TLS layer, not here.)
#[derive(Clone, Debug)]
#[non_exhaustive]
// Built once per receiver; boxing the verifier would only add an indirection per request.
#[allow(clippy::large_enum_variant)]
pub enum ReceiverAuth {
    /// Accept every request.
    None,
    /// HTTP Basic.
    Basic(BasicCredentials),
    /// Bearer token.
    Bearer(BearerToken),
    /// Static secret header.
    HeaderToken(HeaderToken),
    /// Signature verification.
    Signature(Verifier),
}

/// Who a request was authenticated as, for handler context.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// No authentication configured.
    Anonymous,
    /// Basic auth: the user name.
    Basic {
        /// The user name.
        user: String,
    },
    /// A valid bearer token.
    Bearer,
    /// A valid static header token.
    HeaderToken {
        /// The header that carried it.
        header: HeaderName,
    },
    /// A valid signature.
    Signature {
        /// Index in the key ring of the key that matched.
        key_index: usize,
        /// The message id, for schemes that carry one.
        id: Option<String>,
        /// The signed timestamp, for schemes that carry one.
        timestamp: Option<u64>,
    },
}

impl ReceiverAuth {
    /// Sysdig-style `SIGNATURE` auth with the default scheme, Standard Webhooks.
    ///
    /// # Errors
    /// [`KeyRingError`] (cannot happen for an HMAC secret with the default scheme).
    pub fn signature(secret: crate::Secret) -> Result<Self, KeyRingError> {
        Verifier::new(Scheme::standard_webhooks(), &KeyRing::single(secret))
            .map(ReceiverAuth::Signature)
    }

    /// Checks a request's headers (and body, for signatures) at `now`.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use webhook_core::{AuthError, BearerToken, ReceiverAuth};
    ///
    /// let auth = ReceiverAuth::Bearer(BearerToken::new("t0ken")?);
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("authorization", "Bearer wrong".parse()?);
    /// assert_eq!(auth.check(&headers, b"", SystemTime::now()), Err(AuthError::InvalidCredentials));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`AuthError`] with the reason.
    pub fn check(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Identity, AuthError> {
        match self {
            ReceiverAuth::None => Ok(Identity::Anonymous),
            ReceiverAuth::Basic(c) => c.check(headers),
            ReceiverAuth::Bearer(t) => t.check(headers),
            ReceiverAuth::HeaderToken(t) => t.check(headers),
            ReceiverAuth::Signature(v) => {
                let ok = v.verify(headers, body, now)?;
                Ok(Identity::Signature {
                    key_index: ok.key_index(),
                    id: ok.id().map(str::to_owned),
                    timestamp: ok.timestamp(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_parsing_rules() {
        assert_eq!(
            BasicCredentials::parse("nocolon").unwrap_err(),
            AuthConfigError::MissingColon
        );
        assert_eq!(
            BasicCredentials::parse(":pw").unwrap_err(),
            AuthConfigError::EmptyUser
        );
        let c = BasicCredentials::parse("u:p;w:x").unwrap();
        assert_eq!(c.user(), "u");
        assert_eq!(c.password.as_str(), "p;w:x");
        assert!(BasicCredentials::new("u", "with space").is_ok());
        assert!(BasicCredentials::new("u:x", "p").is_err());
        assert!(BasicCredentials::new("u", "p\n").is_err());
        assert!(!format!("{c:?}").contains("p;w"));
    }

    #[test]
    fn basic_check_refuses_everything_else() {
        let c = BasicCredentials::new("alice", "pw").unwrap();
        let auth = ReceiverAuth::Basic(c);
        let now = SystemTime::UNIX_EPOCH;
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            auth.check(&h, b"", now)
        };
        let b64 = |s: &str| STANDARD.encode(s);
        assert!(with(&format!("Basic {}", b64("alice:pw"))).is_ok());
        assert!(with(&format!("basic  {}", b64("alice:pw"))).is_ok());
        assert_eq!(
            with(&format!("Basic {}", b64("alice:pW"))),
            Err(AuthError::InvalidCredentials)
        );
        assert_eq!(
            with(&format!("Basic {}", b64("bob:pw"))),
            Err(AuthError::InvalidCredentials)
        );
        assert_eq!(
            with("Bearer x"),
            Err(AuthError::WrongScheme { expected: "Basic" })
        );
        assert_eq!(
            with("Basic"),
            Err(AuthError::WrongScheme { expected: "Basic" })
        );
        assert!(matches!(
            with("Basic ***"),
            Err(AuthError::Malformed { .. })
        ));
        assert_eq!(
            auth.check(&HeaderMap::new(), b"", now),
            Err(AuthError::MissingHeader {
                header: AUTHORIZATION
            })
        );
    }

    #[test]
    fn token_rules() {
        assert!(BearerToken::new("").is_err());
        assert!(BearerToken::new("a b").is_err());
        assert!(BearerToken::new("a\u{7}").is_err());
        assert!(HeaderToken::new("Authorization", "ApiKey xyz").is_ok());
        assert!(HeaderToken::new("x-t", " lead").is_err());
        assert!(matches!(
            HeaderToken::new("Content-Length", "1"),
            Err(AuthConfigError::ReservedHeaderName { .. })
        ));
        assert!(matches!(
            HeaderToken::new("webhook-signature", "1"),
            Err(AuthConfigError::ReservedHeaderName { .. })
        ));
        assert!(matches!(
            HeaderToken::new("bad name", "1"),
            Err(AuthConfigError::InvalidHeaderName { .. })
        ));
        let t = HeaderToken::new("X-Api-Key", "k1").unwrap();
        let auth = ReceiverAuth::HeaderToken(t);
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("k2"));
        assert_eq!(
            auth.check(&h, b"", SystemTime::UNIX_EPOCH),
            Err(AuthError::InvalidCredentials)
        );
    }

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
