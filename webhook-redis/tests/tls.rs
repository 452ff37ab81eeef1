//! TLS to Redis against a real `redis-server` on 127.0.0.1 serving TLS only (`--port 0
//! --tls-port`), with certificates made here (rcgen): a private CA, the server's certificate,
//! and a client certificate the server requires (`--tls-auth-clients yes`). The queue delivers
//! through it and the replay cache refuses a replay through it; a missing client certificate,
//! an untrusted server, TLS settings on a `redis://` URL and a plain connection to the TLS
//! port are clear errors, not hangs or panics.

mod support;
#[path = "support/tls.rs"]
mod tls_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Recorder, queue_name};
use tls_support::{TlsRedis, ca};
use webhook_core::{BatcherConfig, Endpoint, Event};
use webhook_receiver::ReplayStore;
use webhook_redis::{RedisQueue, RedisQueueConfig, RedisQueueError, RedisReplayStore, RedisTls};
use webhook_sender::outbox::Outbox;
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{EndpointConfig, Sender};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_and_the_replay_cache_work_over_mutual_tls() -> Result<(), BoxError> {
    let Some(redis) = TlsRedis::start() else {
        return Ok(());
    };
    let cfg = RedisQueueConfig::new(redis.url(), queue_name("tls"))
        .partitions(2)
        .tls(redis.tls());
    let producer = RedisQueue::connect(cfg.clone()).await?;
    for n in 0..500 {
        producer.enqueue_nowait(
            &Event::builder(format!("evt_{n}"), "policy").json_bytes(format!(r#"{{"n":{n}}}"#))?,
        )?;
    }
    producer.flush().await?;
    let rec = Recorder::start(200, Duration::ZERO).await;
    let queue = RedisQueue::connect(cfg).await?;
    let endpoint = EndpointConfig::builder("siem", Endpoint::builder(rec.url()).build()?)
        .batching(
            BatcherConfig::builder()
                .max_events(50)
                .linger(Duration::from_millis(5))
                .build()?,
        )
        .build()?;
    let sender = Sender::builder()
        .transport_builder(
            TransportBuilder::new().ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?)),
        )
        .outbox_open(Outbox::from_store(Arc::new(queue.clone())))
        .endpoint(endpoint)
        .build()?;
    assert_eq!(rec.wait_distinct(500, Duration::from_secs(30)).await, 500);
    let report = sender.shutdown(Duration::from_secs(30)).await;
    assert!(report.is_clean());
    queue.close().await;
    producer.close().await;

    // Two receivers' replay caches over TLS: the second refuses what the first saw.
    let a = RedisReplayStore::connect_tls(&redis.url(), "rx:", &redis.tls()).await?;
    let b = RedisReplayStore::connect_tls(&redis.url(), "rx:", &redis.tls()).await?;
    let key = format!("{:064x}", 42);
    a.reserve(&key, Duration::from_secs(30))
        .await
        .map_err(|e| format!("{e:?}"))?;
    a.commit(&key, Duration::from_secs(60)).await;
    assert!(
        b.reserve(&key, Duration::from_secs(30)).await.is_err(),
        "a replay"
    );
    Ok(())
}

/// Each wrong setting is a typed error within the connect timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tls_settings_are_clear_errors() -> Result<(), BoxError> {
    let Some(redis) = TlsRedis::start() else {
        return Ok(());
    };
    let connect = |url: String, tls: Option<RedisTls>| async move {
        let mut cfg = RedisQueueConfig::new(url, "tls-errors");
        if let Some(t) = tls {
            cfg = cfg.tls(t);
        }
        let started = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(20), RedisQueue::connect(cfg))
            .await
            .expect("an answer, not a hang");
        (r.err(), started.elapsed())
    };
    // No client certificate: the server closes the handshake.
    let (e, took) = connect(
        redis.url(),
        Some(RedisTls::new().root_ca_pem(redis.ca_pem.clone())),
    )
    .await;
    eprintln!("no client certificate: {e:?} after {took:?}");
    assert!(
        format!("{e:?}").contains("CertificateRequired"),
        "the cause is named: {e:?}"
    );
    assert!(
        matches!(e, Some(RedisQueueError::Redis(_))),
        "{e:?} after {took:?}"
    );
    // A server certificate from a CA not trusted.
    let other = ca("another CA");
    let (e, took) = connect(
        redis.url(),
        Some(
            RedisTls::new()
                .root_ca_pem(other.pem())
                .client_cert_pem(redis.client.0.clone(), redis.client.1.clone()),
        ),
    )
    .await;
    eprintln!("untrusted server: {e:?} after {took:?}");
    assert!(
        format!("{e:?}").contains("UnknownIssuer"),
        "the cause is named: {e:?}"
    );
    assert!(
        took < Duration::from_secs(4),
        "at once, not at the deadline"
    );
    assert!(matches!(e, Some(RedisQueueError::Redis(_))), "{e:?}");
    // TLS settings on a redis:// URL.
    let (e, _) = connect(
        format!("redis://127.0.0.1:{}", redis.port),
        Some(redis.tls()),
    )
    .await;
    assert!(
        matches!(&e, Some(RedisQueueError::Url(m)) if m.contains("rediss://")),
        "{e:?}"
    );
    // Plain text to the TLS port.
    let (e, took) = connect(format!("redis://127.0.0.1:{}", redis.port), None).await;
    eprintln!("plain text to the TLS port: {e:?} after {took:?}");
    assert!(matches!(e, Some(RedisQueueError::Redis(_))), "{e:?}");
    // And the replay cache the same way.
    let r = RedisReplayStore::connect_tls(
        &redis.url(),
        "rx:",
        &RedisTls::new().root_ca_pem(redis.ca_pem.clone()),
    )
    .await;
    assert!(matches!(r, Err(RedisQueueError::Redis(_))));
    Ok(())
}
