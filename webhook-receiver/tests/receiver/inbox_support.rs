//! Helpers of the inbox tests: a served receiver, a keep-alive client, a deterministic coin.

#![allow(dead_code, unused_imports)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use webhook_core::RetryPolicy;
use webhook_receiver::inbox::{Filter, InboxConfig};
use webhook_receiver::{Context, HandlerOutcome, Receiver, Server, handler_fn};

use crate::common::{Alert, alert_json, signed, verified_config};

pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("inbox-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Fast retries for tests: 5 ms doubling to 40 ms, `attempts` attempts.
pub(crate) fn fast_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .exponential(
            Duration::from_millis(5),
            2.0,
            Duration::from_millis(40),
            true,
        )
        .max_attempts(attempts)
        .min_wait_after_throttle(Duration::ZERO)
        .build()
        .expect("policy")
}

pub(crate) struct Served {
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), webhook_receiver::ServeError>>,
}

impl Served {
    pub(crate) async fn start<T: Send + 'static>(receiver: Receiver<T>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(Server::new(receiver).serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// One keep-alive HTTP/1.1 connection.
pub(crate) struct Client {
    addr: SocketAddr,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Self { addr, sender }
    }

    pub(crate) async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> (StatusCode, http::HeaderMap, Bytes) {
        let (mut parts, body) = req.into_parts();
        parts.headers.insert(
            http::header::HOST,
            self.addr.to_string().parse().expect("host"),
        );
        self.sender.ready().await.expect("ready");
        let res = self
            .sender
            .send_request(Request::from_parts(parts, body))
            .await
            .expect("response");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        (status, headers, body)
    }
}

pub(crate) fn status_of(body: &Bytes) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    v["status"].as_str().unwrap_or_default().to_owned()
}

/// A cheap deterministic coin from an id and an attempt.
pub(crate) fn coin(id: &str, attempt: u32, salt: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    for b in id.bytes().chain(attempt.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h % 100
}
