//! Bearer tokens (`Authorization: Bearer <token>`): Sysdig's `BEARER_TOKEN`.

use std::fmt;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use zeroize::Zeroizing;

use super::{
    AuthConfigError, AuthError, Identity, authorization, check_token_text, ct_eq_digest, digest,
    sensitive,
};

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

    pub(super) fn header_value(&self) -> Result<HeaderValue, AuthError> {
        let text = Zeroizing::new(format!("Bearer {}", self.token.as_str()));
        HeaderValue::from_str(&text)
            .map(sensitive)
            .map_err(|_| AuthError::Malformed {
                header: AUTHORIZATION,
                reason: "token cannot be encoded",
            })
    }

    pub(super) fn check(&self, headers: &HeaderMap) -> Result<Identity, AuthError> {
        let given = authorization(headers, "Bearer")?;
        if ct_eq_digest(&digest(&[given]), &self.expected) {
            Ok(Identity::Bearer)
        } else {
            Err(AuthError::InvalidCredentials)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_rules() {
        assert!(BearerToken::new("").is_err());
        assert!(BearerToken::new("a b").is_err());
        assert!(BearerToken::new("a\u{7}").is_err());
    }
}
