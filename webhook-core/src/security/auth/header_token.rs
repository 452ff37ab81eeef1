//! Static secret headers: ConnectSecure's "Authentication Header Key/Value", GitLab's
//! `X-Gitlab-Token`.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};
use zeroize::Zeroizing;

use super::{
    AuthConfigError, AuthError, Identity, check_token_text, ct_eq_digest, digest, sensitive,
};

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
            || crate::security::scheme::is_sdk_signature_header(&header)
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

    pub(super) fn header_value(&self) -> Result<HeaderValue, AuthError> {
        HeaderValue::from_str(&self.value)
            .map(sensitive)
            .map_err(|_| AuthError::Malformed {
                header: self.name.clone(),
                reason: "token cannot be encoded",
            })
    }

    pub(super) fn check(&self, headers: &HeaderMap) -> Result<Identity, AuthError> {
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::ReceiverAuth;

    #[test]
    fn header_token_rules() {
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
}
