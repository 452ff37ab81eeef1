//! HTTP Basic credentials (RFC 7617): Sysdig's `BASIC_AUTH` and Safous.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use zeroize::Zeroizing;

use super::{AuthConfigError, AuthError, Identity, authorization, ct_eq_digest, digest, sensitive};

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

    pub(super) fn header_value(&self) -> Result<HeaderValue, AuthError> {
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

    pub(super) fn check(&self, headers: &HeaderMap) -> Result<Identity, AuthError> {
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::ReceiverAuth;

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
}
