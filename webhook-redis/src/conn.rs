//! One Redis server or a Redis Cluster, behind the same connections.
//!
//! [`Server::open`] asks the node it is given whether cluster mode is on (`INFO cluster`);
//! if so it connects with redis-rs's cluster client, which learns the slot map from that
//! node, routes each command to the shard owning its key's slot and follows `MOVED`/`ASK`
//! redirects. Every command and script of this crate names keys of one hash tag (one
//! partition), so each goes to one shard; only pipelines need care (see
//! [`Server::is_cluster`]): a cluster pipeline must stay within one slot.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::queue::RedisQueueError;

/// Where the data lives: one server, or a cluster reached through one of its nodes.
#[derive(Clone)]
pub(crate) enum Server {
    Node(redis::Client),
    Cluster {
        url: String,
        tls: Option<crate::RedisTls>,
        client: Box<ClusterClient>,
        /// The node given (pub/sub: a message published on any node of a cluster reaches
        /// the subscribers of every node).
        node: redis::Client,
    },
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Node(_) => "Server::Node",
            Self::Cluster { .. } => "Server::Cluster",
        })
    }
}

/// An async connection to either (cheap to clone; reconnects by itself).
#[derive(Clone)]
pub(crate) enum Conn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Node(_) => "Conn::Node",
            Self::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

fn manager_config(response_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_secs(2))
        .set_number_of_retries(usize::MAX)
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
}

/// The answer time of ordinary commands.
const RESPONSE: Duration = Duration::from_secs(10);

impl Server {
    /// The server at `url`: a cluster when that node says cluster mode is on. The first
    /// connection is bounded (5 s); later ones reconnect for ever. Also returns a connection
    /// to the node itself (server-wide questions: `INFO`, `CONFIG GET`).
    pub(crate) async fn open(
        url: &str,
        tls: Option<&crate::RedisTls>,
    ) -> Result<(Self, Conn, Conn), RedisQueueError> {
        let client = crate::tls::client(url, tls)?;
        crate::tls::probe(url, &client).await?;
        let first = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new_with_config(client.clone(), manager_config(RESPONSE)),
        )
        .await
        .map_err(|_| {
            RedisQueueError::Redis(format!("{}: no answer within 5 s", crate::redact_url(url)))
        })??;
        let info: String = redis::cmd("INFO")
            .arg("cluster")
            .query_async(&mut first.clone())
            .await?;
        if !info.lines().any(|l| l.trim() == "cluster_enabled:1") {
            return Ok((
                Self::Node(client),
                Conn::Node(first.clone()),
                Conn::Node(first),
            ));
        }
        let server = Self::Cluster {
            url: url.to_owned(),
            tls: tls.cloned(),
            client: Box::new(cluster_client(url, tls, RESPONSE)?),
            node: client,
        };
        let conn = server.connect(RESPONSE).await?;
        Ok((server, conn, Conn::Node(first)))
    }

    /// A client of one node, for pub/sub.
    pub(crate) fn node(&self) -> &redis::Client {
        match self {
            Self::Node(c) | Self::Cluster { node: c, .. } => c,
        }
    }

    /// Whether this is a cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster { .. })
    }

    /// A connection of its own (a blocking reader's), answering within `response_timeout`.
    pub(crate) async fn connect(
        &self,
        response_timeout: Duration,
    ) -> Result<Conn, RedisQueueError> {
        Ok(match self {
            Self::Node(client) => Conn::Node(
                ConnectionManager::new_with_config(
                    client.clone(),
                    manager_config(response_timeout),
                )
                .await?,
            ),
            Self::Cluster {
                url, client, tls, ..
            } => {
                let c = if response_timeout == RESPONSE {
                    (**client).clone()
                } else {
                    cluster_client(url, tls.as_ref(), response_timeout)?
                };
                Conn::Cluster(c.get_async_connection().await?)
            }
        })
    }

    /// A blocking connection (the administrative calls).
    pub(crate) fn blocking(&self) -> redis::RedisResult<Box<dyn redis::ConnectionLike + Send>> {
        Ok(match self {
            Self::Node(client) => {
                let c = client.get_connection_with_timeout(Duration::from_secs(2))?;
                c.set_read_timeout(Some(RESPONSE))?;
                Box::new(c)
            }
            Self::Cluster { client, .. } => Box::new(client.get_connection()?),
        })
    }
}

fn cluster_client(
    url: &str,
    tls: Option<&crate::RedisTls>,
    response_timeout: Duration,
) -> Result<ClusterClient, RedisQueueError> {
    Ok(crate::tls::cluster_builder(url, tls)
        .response_timeout(response_timeout)
        .connection_timeout(Duration::from_secs(2))
        .build()?)
}
