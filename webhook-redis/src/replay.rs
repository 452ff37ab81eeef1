//! A replay cache shared by every receiver instance, on Redis: the receiver's
//! [`ReplayStore`] as one `SET key NX PX` per request.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use webhook_receiver::{ReplayFuture, ReplayStore, ReplayStoreError, Replayed};

use crate::conn::Conn;
use crate::queue::RedisQueueError;

/// What a receiver does when Redis cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReplayFailMode {
    /// Refuse the request with `503` (the sender retries later): no message is accepted
    /// unchecked. The default.
    #[default]
    Closed,
    /// Accept the request unchecked (a warning is logged): availability over replay
    /// protection while Redis is down.
    Open,
}

/// A [`ReplayStore`] on Redis, shared by every receiver pointed at the same server and
/// prefix. A reservation is `SET <prefix><key> p NX PX <processing>` (in flight), an
/// acknowledgement `SET <prefix><key> s PX <ttl>` (seen), an abort deletes a key still in
/// flight. Keys are hex SHA-256 digests of the signed message id (never the id itself).
///
/// ```no_run
/// use std::sync::Arc;
/// use webhook_core::Verifier;
/// use webhook_receiver::ReceiverConfig;
/// use webhook_redis::RedisReplayStore;
///
/// # async fn run(verifier: Verifier) -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisReplayStore::connect("redis://127.0.0.1:6379", "whk:replay:orders:").await?;
/// let config = ReceiverConfig::builder()
///     .auth(verifier)
///     .replay_store(Arc::new(store))
///     .build()?;
/// # drop(config);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisReplayStore {
    conn: Conn,
    prefix: String,
    fail: ReplayFailMode,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("prefix", &self.prefix)
            .field("fail", &self.fail)
            .finish_non_exhaustive()
    }
}

impl RedisReplayStore {
    /// Connects to `url`; keys start with `prefix` (give each set of receivers that share
    /// ids its own). Call inside a tokio runtime. Commands time out after 500 ms.
    ///
    /// # Errors
    /// When the URL is bad or the server cannot be reached.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, RedisQueueError> {
        Self::open(url, prefix.into(), None).await
    }

    /// [`connect`](Self::connect) to a `rediss://` URL with a private CA and/or a client
    /// certificate.
    ///
    /// # Errors
    /// When the URL is bad (or not `rediss://`) or the server cannot be reached (a
    /// certificate it does not accept, or one it presents that `tls` does not trust).
    pub async fn connect_tls(
        url: &str,
        prefix: impl Into<String>,
        tls: &crate::RedisTls,
    ) -> Result<Self, RedisQueueError> {
        Self::open(url, prefix.into(), Some(tls)).await
    }

    async fn open(
        url: &str,
        prefix: String,
        tls: Option<&crate::RedisTls>,
    ) -> Result<Self, RedisQueueError> {
        let client = crate::tls::client(url, tls)?;
        crate::tls::probe(url, &client).await?;
        let cfg = ConnectionManagerConfig::new()
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1))
            .set_number_of_retries(1)
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)));
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new_with_config(client, cfg),
        )
        .await
        .map_err(|_| {
            RedisQueueError::Redis(format!("{}: no answer within 5 s", crate::redact_url(url)))
        })??;
        let info: String = redis::cmd("INFO")
            .arg("cluster")
            .query_async(&mut conn.clone())
            .await?;
        let conn = if info.lines().any(|l| l.trim() == "cluster_enabled:1") {
            // A Redis Cluster: each key goes to the shard of its slot.
            let client = crate::tls::cluster_builder(url, tls)
                .connection_timeout(Duration::from_millis(500))
                .response_timeout(Duration::from_millis(500))
                .retries(1)
                .build()?;
            Conn::Cluster(client.get_async_connection().await?)
        } else {
            Conn::Node(conn)
        };
        Ok(Self {
            conn,
            prefix,
            fail: ReplayFailMode::Closed,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// What to do when Redis cannot be asked (default [`ReplayFailMode::Closed`]: `503`).
    #[must_use]
    pub fn fail_mode(mut self, mode: ReplayFailMode) -> Self {
        self.fail = mode;
        self
    }

    fn ms(d: Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    }
}

static RESERVE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('SET', KEYS[1], 'p', 'NX', 'PX', ARGV[1]) then return 0 end
if redis.call('GET', KEYS[1]) == 'p' then return 1 end
return 2
",
    )
});

static ABORT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == 'p' then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

impl ReplayStore for RedisReplayStore {
    fn reserve<'a>(
        &'a self,
        key: &'a str,
        processing: Duration,
    ) -> ReplayFuture<'a, Result<(), ReplayStoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let r: redis::RedisResult<i64> = RESERVE
                .key(format!("{}{key}", self.prefix))
                .arg(Self::ms(processing))
                .invoke_async(&mut conn)
                .await;
            match r {
                Ok(0) => Ok(()),
                Ok(n) => Err(ReplayStoreError::Replayed(replayed(n == 1))),
                Err(e) => match self.fail {
                    ReplayFailMode::Closed => Err(ReplayStoreError::Unavailable(e.to_string())),
                    ReplayFailMode::Open => {
                        tracing::warn!(error = %e, "the replay store is unavailable: request accepted unchecked (fail open)");
                        Ok(())
                    }
                },
            }
        })
    }

    fn commit<'a>(&'a self, key: &'a str, ttl: Duration) -> ReplayFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let r: redis::RedisResult<()> = redis::cmd("SET")
                .arg(format!("{}{key}", self.prefix))
                .arg("s")
                .arg("PX")
                .arg(Self::ms(ttl))
                .query_async(&mut conn)
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "recording a message as seen in the replay store failed");
            }
        })
    }

    fn commit_background(&self, key: String, ttl: Duration) {
        let store = self.clone();
        self.runtime
            .spawn(async move { store.commit(&key, ttl).await });
    }

    fn abort(&self, key: String) {
        let mut conn = self.conn.clone();
        let key = format!("{}{key}", self.prefix);
        self.runtime.spawn(async move {
            let r: redis::RedisResult<i64> = ABORT.key(&key).invoke_async(&mut conn).await;
            if let Err(e) = r {
                tracing::debug!(error = %e, "releasing a replay reservation failed (it expires by itself)");
            }
        });
    }
}

fn replayed(in_flight: bool) -> Replayed {
    Replayed::new(in_flight)
}
