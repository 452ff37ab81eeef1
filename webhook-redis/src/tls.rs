//! TLS to Redis: a `rediss://` URL encrypts the connection and verifies the server against the
//! system's roots; [`RedisTls`] adds a private CA (a self-managed Redis) and a client
//! certificate (Redis's `tls-auth-clients yes`, mutual TLS). rustls, the TLS library the
//! sender already uses: no OpenSSL.

use std::fmt;

use redis::{ClientTlsConfig, TlsCertificates};

use crate::RedisQueueError;

/// What a `rediss://` connection trusts and presents, beyond the system's roots.
///
/// ```
/// use webhook_redis::{RedisQueueConfig, RedisTls};
/// let ca = b"-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n".to_vec();
/// let tls = RedisTls::new().root_ca_pem(ca);
/// let cfg = RedisQueueConfig::new("rediss://redis.internal:6380", "orders").tls(tls);
/// assert!(cfg.tls_config().is_some_and(|t| t.has_root_ca() && !t.has_client_cert()));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    root_ca: Option<Vec<u8>>,
    client: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for RedisTls {
    // The key is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTls")
            .field("root_ca", &self.root_ca.as_ref().map(|c| c.len()))
            .field("client_cert", &self.client.is_some())
            .finish()
    }
}

impl RedisTls {
    /// The system's roots, no client certificate (what `rediss://` does alone).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Trust only the CA certificates of this PEM bundle (a private CA), not the system's.
    #[must_use]
    pub fn root_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_ca = Some(pem.into());
        self
    }

    /// Present this certificate chain and key (PEM) to a server that asks for one (mutual
    /// TLS, `tls-auth-clients yes`).
    #[must_use]
    pub fn client_cert_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.client = Some((cert.into(), key.into()));
        self
    }

    /// Whether a private CA is set.
    #[must_use]
    pub fn has_root_ca(&self) -> bool {
        self.root_ca.is_some()
    }

    /// Whether a client certificate is set.
    #[must_use]
    pub fn has_client_cert(&self) -> bool {
        self.client.is_some()
    }

    pub(crate) fn certificates(&self) -> TlsCertificates {
        TlsCertificates {
            client_tls: self.client.as_ref().map(|(cert, key)| ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.clone(),
            }),
            root_cert: self.root_ca.clone(),
        }
    }
}

/// A client of the node at `url`, with `tls`'s certificates when given (the URL must then be
/// `rediss://`).
pub(crate) fn client(url: &str, tls: Option<&RedisTls>) -> Result<redis::Client, RedisQueueError> {
    let bad = |e: redis::RedisError| RedisQueueError::Url(format!("{}: {e}", redact_url(url)));
    match tls {
        None => redis::Client::open(url).map_err(bad),
        Some(t) => {
            if !url.starts_with("rediss://") {
                return Err(RedisQueueError::Url(format!(
                    "{}: TLS settings need a rediss:// URL",
                    redact_url(url)
                )));
            }
            redis::Client::build_with_tls(url, t.certificates()).map_err(bad)
        }
    }
}

/// A cluster client builder seeded with `url`, with `tls`'s certificates when given.
pub(crate) fn cluster_builder(
    url: &str,
    tls: Option<&RedisTls>,
) -> redis::cluster::ClusterClientBuilder {
    let b = redis::cluster::ClusterClient::builder(vec![url]);
    match tls {
        Some(t) => b.certs(t.certificates()),
        None => b,
    }
}

/// One connection to `client`'s node within 5 s, to name what is wrong before the
/// reconnecting manager takes over (which retries until its own deadline and would only say
/// that no answer came): a refused connection, a TLS handshake the server or this side
/// rejected (an untrusted certificate, a missing client certificate), a password refused.
pub(crate) async fn probe(url: &str, client: &redis::Client) -> Result<(), RedisQueueError> {
    let url = redact_url(url);
    match tokio::time::timeout(
        std::time::Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    {
        Ok(Ok(mut c)) => {
            // (the handshake of a TLS server that wants a client certificate ends at the
            // first command)
            redis::cmd("PING")
                .query_async::<()>(&mut c)
                .await
                .map_err(|e| RedisQueueError::Redis(format!("{url}: {e}")))
        }
        Ok(Err(e)) => Err(RedisQueueError::Redis(format!("{url}: {e}"))),
        Err(_) => Err(RedisQueueError::Redis(format!(
            "{url}: no answer within 5 s"
        ))),
    }
}

/// `url` with its password replaced by `***` (`redis://user:***@host:6379`), for messages and
/// logs: an error, a status line or a `Debug` print never shows a Redis password.
///
/// ```
/// use webhook_redis::redact_url;
/// assert_eq!(redact_url("redis://worker:s3cret@10.0.0.5:6379/0"), "redis://worker:***@10.0.0.5:6379/0");
/// assert_eq!(redact_url("rediss://:s3cret@cache.internal:6380"), "rediss://:***@cache.internal:6380");
/// assert_eq!(redact_url("redis://127.0.0.1:6379#orders"), "redis://127.0.0.1:6379#orders");
/// ```
#[must_use]
pub fn redact_url(url: &str) -> std::borrow::Cow<'_, str> {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.into();
    };
    let rest = &url[start..];
    let authority = rest.find(['/', '?', '#']).map_or(rest, |end| &rest[..end]);
    let Some(at) = authority.rfind('@') else {
        return url.into();
    };
    let user = authority[..at].split_once(':').map(|(u, _)| u);
    let shown = match user {
        Some(u) => format!("{u}:***"),
        None => "***".to_owned(),
    };
    format!("{}{shown}{}", &url[..start], &rest[at..]).into()
}
