//! Scale-out on Redis: many webhook sender workers sharing one durable queue, and one replay
//! cache for many receivers.
//!
//! * [`RedisQueue`]: a queue on Redis Streams, an
//!   [`OutboxStore`](webhook_sender::outbox::OutboxStore) any number of processes append to
//!   and deliver from. Each endpoint is a consumer group; each process a consumer; an entry is
//!   acknowledged once settled; a process that dies leaves its entries to be reclaimed after
//!   a lease; an entry handed out too often goes to the dead letters. See the module
//!   [`queue`] for the design, and the README's "Scale-out on Redis" section for the
//!   `webhook enqueue` / `webhook worker` commands.
//! * [`RedisReplayStore`]: a replay cache shared by every receiver instance
//!   (`SET key NX PX`), behind webhook-receiver's
//!   [`ReplayStore`](webhook_receiver::ReplayStore) seam.
//!
//! * [`SpooledQueue`]: a local outbox in front of a queue, so that a producer buffers on disk
//!   while Redis is unreachable instead of failing.
//! * [`SharedRegistry`]: the endpoint registry of a queue kept in Redis, so that a change made
//!   on any process reaches every worker within a second (module [`registry`]); with
//!   [`RedisQueueConfig::spread`], the (endpoint, partition) pairs are spread over the live
//!   workers and move when one dies (module [`members`]).
//!
//! Works with Redis 6.2 to 8 (CI runs the tests against Redis 6.2.14, 7.0.15 and 8.2.3;
//! [`RedisQueue::connect`] refuses a server older than 6.2), on one server or a Redis Cluster:
//! given the address of a cluster node, it uses redis-rs's cluster client (each partition's
//! keys share one hash tag, so every command and script runs on one shard; see [`cluster`]).
//! With [`RedisQueueConfig::replicas`], a write counts as done only once replicas hold it, so a
//! failover loses nothing a producer was told is written. `rediss://` URLs speak TLS
//! (rustls), with [`RedisTls`] for a private CA and client certificates. A separate crate keeps the `redis`
//! dependency away from users who do not want it.

mod check;
mod codec;
mod config;
mod conn;
#[doc = include_str!("../CLUSTER.md")]
pub mod cluster {}
pub mod members;
pub mod queue;
pub mod registry;
mod replay;
mod scripts;
mod spool;
mod tls;

pub use config::RedisQueueConfig;
pub use members::Worker;
pub use queue::{QueueCounters, RedisQueue, RedisQueueError};
pub use registry::{EndpointBuilder, RegistrySyncError, RegistryWatch, SharedRegistry};
pub use replay::{RedisReplayStore, ReplayFailMode};
pub use spool::SpooledQueue;
pub use tls::{RedisTls, redact_url};
