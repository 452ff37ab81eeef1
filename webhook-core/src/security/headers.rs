//! User-defined custom headers, validated when the configuration is built.
//!
//! Senders let users add headers (Sysdig "Custom Headers", Safous "Headers", Sysdig agent
//! `headers:`). Some headers must stay under the SDK's control, so [`CustomHeadersBuilder::build`]
//! refuses, case-insensitively:
//!
//! * the reserved list of `delivery.md` (Authorization, Host, Content-Encoding, Content-Length,
//!   Content-Type, User-Agent, Connection, Keep-Alive, Proxy-Authenticate, Proxy-Authorization,
//!   WWW-Authenticate, Accept-Encoding) and the other hop-by-hop headers (TE, Trailer,
//!   Transfer-Encoding, Upgrade, Proxy-Connection);
//! * every header the SDK sets itself: the id, timestamp and signature headers of all presets,
//!   and the whole `webhook-*` and `svix-*` families; plus any name added with
//!   [`CustomHeadersBuilder::reserve`] / [`CustomHeadersBuilder::reserve_scheme`] (e.g. a static
//!   auth token header or a custom scheme's headers);
//! * invalid names, and values containing CR, LF or NUL (header injection) or other control
//!   characters.
//!
//! Each error names the offending header.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::Scheme;
use crate::security::scheme::is_sdk_signature_header;

const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
];

/// Whether `name` (any case) is reserved: listed in [`CustomHeaders::RESERVED_HEADERS`], or a header the SDK
/// sets itself (any preset's signature/id/timestamp header, `webhook-*`, `svix-*`).
///
/// ```
/// use webhook_core::is_reserved_header;
/// assert!(is_reserved_header("Content-Type"));
/// assert!(is_reserved_header("Webhook-Signature"));
/// assert!(is_reserved_header("X-Hub-Signature-256"));
/// assert!(!is_reserved_header("X-Tenant"));
/// ```
pub fn is_reserved_header(name: &str) -> bool {
    match HeaderName::from_bytes(name.as_bytes()) {
        Ok(n) => RESERVED_HEADERS.contains(&n.as_str()) || is_sdk_signature_header(&n),
        Err(_) => false,
    }
}

/// Why custom headers were refused. Every variant names the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The name is not a valid HTTP header name (empty, spaces, separators, control bytes).
    #[error("invalid header name {name:?}")]
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// The header is reserved for the SDK or the HTTP layer.
    #[error("header {name:?} is reserved and cannot be set as a custom header")]
    Reserved {
        /// The name as given.
        name: String,
    },
    /// The value contains CR, LF or NUL.
    #[error("the value of header {name:?} contains {character}")]
    ForbiddenCharacter {
        /// The header name.
        name: String,
        /// `"CR"`, `"LF"` or `"NUL"`.
        character: &'static str,
    },
    /// The value contains another control character (only visible characters, spaces, tabs
    /// and bytes >= 0x80 are allowed).
    #[error("the value of header {name:?} contains a control character")]
    InvalidValue {
        /// The header name.
        name: String,
    },
}

/// A validated list of custom headers. Several values for one name are kept, in order.
///
/// # What is refused
///
/// Senders let users add headers (Sysdig "Custom Headers", Safous "Headers", Sysdig agent
/// `headers:`). Some headers must stay under the SDK's control, so [`CustomHeadersBuilder::build`]
/// refuses, case-insensitively:
///
/// * the reserved list of `delivery.md` (Authorization, Host, Content-Encoding, Content-Length,
///   Content-Type, User-Agent, Connection, Keep-Alive, Proxy-Authenticate, Proxy-Authorization,
///   WWW-Authenticate, Accept-Encoding) and the other hop-by-hop headers (TE, Trailer,
///   Transfer-Encoding, Upgrade, Proxy-Connection);
/// * every header the SDK sets itself: the id, timestamp and signature headers of all presets,
///   and the whole `webhook-*` and `svix-*` families; plus any name added with
///   [`CustomHeadersBuilder::reserve`] / [`CustomHeadersBuilder::reserve_scheme`] (e.g. a static
///   auth token header or a custom scheme's headers);
/// * invalid names, and values containing CR, LF or NUL (header injection) or other control
///   characters.
///
/// Each error names the offending header.
///
/// ```
/// use webhook_core::{CustomHeaders, HeaderError};
///
/// let custom = CustomHeaders::builder()
///     .header("X-Tenant", "acme")
///     .header("X-Env", "prod")
///     .build()?;
/// let mut headers = http::HeaderMap::new();
/// custom.apply_to(&mut headers);
/// assert_eq!(headers["x-tenant"], "acme");
///
/// let err = CustomHeaders::builder().header("Content-Type", "text/plain").build().unwrap_err();
/// assert_eq!(err, HeaderError::Reserved { name: "Content-Type".into() });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomHeaders {
    entries: Vec<(HeaderName, HeaderValue)>,
}

impl CustomHeaders {
    /// Headers nobody may set through custom headers (lowercase), besides the SDK's own
    /// signature, id and timestamp headers.
    pub const RESERVED_HEADERS: &'static [&'static str] = RESERVED_HEADERS;

    /// Starts a builder.
    pub fn builder() -> CustomHeadersBuilder {
        CustomHeadersBuilder::default()
    }

    /// The headers, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.entries.iter().map(|(n, v)| (n, v))
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the headers to `headers` (existing values of other names are untouched).
    pub fn apply_to(&self, headers: &mut HeaderMap) {
        for (n, v) in &self.entries {
            headers.append(n.clone(), v.clone());
        }
    }
}

/// Builder of [`CustomHeaders`]: chaining is infallible, [`build`](Self::build) reports the
/// first problem.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct CustomHeadersBuilder {
    pending: Vec<(String, Vec<u8>)>,
    extra_reserved: Vec<String>,
}

impl CustomHeadersBuilder {
    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.pending.push((name.into(), value.into()));
        self
    }

    /// Reserves one more name (e.g. the header of a static token auth).
    pub fn reserve(mut self, name: impl Into<String>) -> Self {
        self.extra_reserved.push(name.into().to_ascii_lowercase());
        self
    }

    /// Reserves every header `scheme` writes (for custom schemes).
    pub fn reserve_scheme(mut self, scheme: &Scheme) -> Self {
        self.extra_reserved
            .extend(scheme.headers().map(|h| h.as_str().to_owned()));
        self
    }

    /// Validates every header.
    ///
    /// # Errors
    /// The first [`HeaderError`], naming the header.
    pub fn build(self) -> Result<CustomHeaders, HeaderError> {
        let mut entries = Vec::with_capacity(self.pending.len());
        for (name, value) in self.pending {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HeaderError::InvalidName { name: name.clone() })?;
            if is_reserved_header(header.as_str())
                || self.extra_reserved.iter().any(|r| r == header.as_str())
            {
                return Err(HeaderError::Reserved { name });
            }
            for (byte, character) in [(b'\r', "CR"), (b'\n', "LF"), (0u8, "NUL")] {
                if value.contains(&byte) {
                    return Err(HeaderError::ForbiddenCharacter { name, character });
                }
            }
            let value = HeaderValue::from_bytes(&value)
                .map_err(|_| HeaderError::InvalidValue { name: name.clone() })?;
            entries.push((header, value));
        }
        Ok(CustomHeaders { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: &str) -> Result<CustomHeaders, HeaderError> {
        CustomHeaders::builder().header(name, value).build()
    }

    #[test]
    fn reserved_names_are_refused_in_any_case() {
        for name in RESERVED_HEADERS
            .iter()
            .copied()
            .chain(crate::security::scheme::PRESET_HEADERS.iter().copied())
            .chain(["WEBHOOK-Anything", "Svix-Whatever", "AUTHORIZATION", "Te"])
        {
            let upper = name.to_ascii_uppercase();
            assert_eq!(
                one(&upper, "x"),
                Err(HeaderError::Reserved {
                    name: upper.clone()
                }),
                "{name}"
            );
        }
    }

    #[test]
    fn bad_names_and_values() {
        assert_eq!(
            one("bad name", "x"),
            Err(HeaderError::InvalidName {
                name: "bad name".into()
            })
        );
        assert!(matches!(one("", "x"), Err(HeaderError::InvalidName { .. })));
        assert!(matches!(
            one("x-a\r\n", "x"),
            Err(HeaderError::InvalidName { .. })
        ));
        for (v, c) in [("a\rb", "CR"), ("a\nb", "LF"), ("a\0b", "NUL")] {
            assert_eq!(
                one("X-A", v),
                Err(HeaderError::ForbiddenCharacter {
                    name: "X-A".into(),
                    character: c
                })
            );
        }
        assert_eq!(
            one("X-A", "a\x07"),
            Err(HeaderError::InvalidValue { name: "X-A".into() })
        );
        assert!(one("X-A", "tab\tand space and ütf8").is_ok());
    }

    #[test]
    fn extra_reservations_and_first_error() {
        let err = CustomHeaders::builder()
            .reserve("X-Gitlab-Token")
            .header("x-ok", "1")
            .header("x-gitlab-token", "2")
            .header("bad name", "3")
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            HeaderError::Reserved {
                name: "x-gitlab-token".into()
            }
        );
        let custom = Scheme::builder("c")
            .algorithm(crate::Algorithm::HmacSha256)
            .signature_header("x-custom-sig")
            .build()
            .unwrap();
        assert!(
            CustomHeaders::builder()
                .reserve_scheme(&custom)
                .header("X-Custom-Sig", "v")
                .build()
                .is_err()
        );
        let ok = CustomHeaders::builder()
            .header("x-multi", "1")
            .header("x-multi", "2")
            .build()
            .unwrap();
        let mut h = HeaderMap::new();
        ok.apply_to(&mut h);
        assert_eq!(h.get_all("x-multi").iter().count(), 2);
        assert_eq!(ok.len(), 2);
        assert_eq!(ok.iter().count(), 2);
    }
}
