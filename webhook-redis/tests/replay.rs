//! Two receivers sharing one replay cache on a real `redis-server`: a replay sent to the other
//! instance is refused (409 while the first delivery is in flight, 200 "duplicate" without
//! running the handler once it was acknowledged, as the receiver's contract says); with
//! Redis gone, requests are refused with 503 (fail closed) or accepted (fail open).

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webhook_core::{KeyRing, Scheme, Secret, Signer, Verifier};
use webhook_receiver::{Context, HandlerOutcome, Receiver, ReceiverConfig, Server, handler_fn};
use webhook_redis::{RedisReplayStore, ReplayFailMode};

const SECRET: &[u8] = b"test-secret-key-0123456789";

fn ring() -> KeyRing {
    KeyRing::single(Secret::from_bytes(SECRET).unwrap())
}

#[derive(serde::Deserialize)]
struct Msg {
    slow: bool,
}

/// A receiver on a real socket sharing `store`; counts handler runs.
async fn receiver(store: RedisReplayStore, runs: Arc<AtomicUsize>) -> SocketAddr {
    let config = ReceiverConfig::builder()
        .verify(Verifier::new(Scheme::standard_webhooks(), &ring()).unwrap())
        .replay_store(Arc::new(store))
        .build()
        .unwrap();
    let receiver = Receiver::<Msg>::builder(config)
        .fallback(handler_fn(move |m: Msg, _cx: Context| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                if m.slow {
                    tokio::time::sleep(Duration::from_millis(800)).await;
                }
                HandlerOutcome::Accepted
            }
        }))
        .build()
        .unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(Server::new(receiver).serve(l, std::future::pending::<()>()));
    addr
}

fn signed(id: &str, body: &str) -> Vec<u8> {
    let mut h = http::HeaderMap::new();
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Signer::new(Scheme::standard_webhooks(), &ring())
        .unwrap()
        .sign(id, ts, body.as_bytes(), &mut h)
        .unwrap();
    let headers: String = h
        .iter()
        .map(|(k, v)| format!("{k}: {}\r\n", v.to_str().unwrap()))
        .collect();
    format!(
        "POST /hook HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n{headers}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn status(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_receivers_sharing_the_cache_refuse_a_replay_sent_to_the_other() {
    let Some(mut server) = RedisServer::start(true) else {
        return;
    };
    let url = server.url();
    let prefix = format!("whk:replay:t{}:", std::process::id());
    let runs = Arc::new(AtomicUsize::new(0));
    let a = receiver(
        RedisReplayStore::connect(&url, &prefix).await.unwrap(),
        runs.clone(),
    )
    .await;
    let b = receiver(
        RedisReplayStore::connect(&url, &prefix).await.unwrap(),
        runs.clone(),
    )
    .await;

    // A replay of an acknowledged message, sent to the other instance: not processed again.
    let req = signed("msg_1", r#"{"slow":false}"#);
    assert_eq!(status(a, &req).await.0, 200);
    let (code, text) = status(b, &req).await;
    assert_eq!(code, 200, "{text}");
    assert!(text.contains(r#""status":"duplicate""#), "{text}");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran once");

    // A replay while the first delivery is in flight at A: 409 at B.
    let slow = signed("msg_2", r#"{"slow":true}"#);
    let first = tokio::spawn(async move { status(a, &slow).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, text) = status(b, &signed("msg_2", r#"{"slow":true}"#)).await;
    assert_eq!(code, 409, "{text}");
    assert_eq!(first.await.unwrap().0, 200);
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    // A fresh message is accepted by either.
    assert_eq!(
        status(b, &signed("msg_3", r#"{"slow":false}"#)).await.0,
        200
    );

    // Redis gone: fail closed answers 503 (the sender retries), fail open accepts.
    let open = receiver(
        RedisReplayStore::connect(&url, &prefix)
            .await
            .unwrap()
            .fail_mode(ReplayFailMode::Open),
        runs.clone(),
    )
    .await;
    server.kill();
    let (code, text) = status(a, &signed("msg_4", r#"{"slow":false}"#)).await;
    assert_eq!(code, 503, "{text}");
    assert!(text.contains("replay_store_unavailable"), "{text}");
    assert_eq!(
        status(open, &signed("msg_5", r#"{"slow":false}"#)).await.0,
        200
    );
}
