//! HTTP/2 on the built-in `Server` (feature `http2`): prior knowledge over plain TCP with many
//! requests multiplexed on one connection, HTTP/1.1 still served next to it, and a graceful
//! shutdown that lets streams in flight finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{StatusCode, Version};
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use webhook_receiver::{Context, HandlerOutcome, Receiver, ServeError, Server, handler_fn};

use crate::common::{Alert, Log, alert_json, signed, verified_config};

/// Logs `subject:version` of each alert; waits for `gate` first when one is given.
fn receiver(log: &Log, gate: Option<(Arc<Notify>, Arc<Notify>)>) -> Receiver<Alert> {
    let log = log.clone();
    Receiver::builder(verified_config())
        .fallback(handler_fn(move |a: Alert, cx: Context| {
            let (log, gate) = (log.clone(), gate.clone());
            async move {
                if let Some((started, release)) = gate {
                    started.notify_one();
                    release.notified().await;
                }
                log.push(format!("{}:{:?}", a.subject, cx.version()));
                HandlerOutcome::Accepted
            }
        }))
        .build()
        .expect("receiver")
}

async fn serve(
    rx: Receiver<Alert>,
) -> (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), ServeError>>,
) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::new(rx)
            .http2(true)
            .shutdown_timeout(Duration::from_secs(10))
            .serve(l, async {
                let _ = stop_rx.await;
            }),
    );
    (addr, stop_tx, server)
}

/// An HTTP/2 client connection (prior knowledge) to `addr`.
async fn h2(
    addr: SocketAddr,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    send
}

fn request(
    addr: SocketAddr,
    id: &str,
    subject: &str,
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    request_with_body(addr, id, alert_json(subject, "443"))
}

#[tokio::test]
async fn prior_knowledge_h2_multiplexes_requests_and_http1_still_works() {
    let log = Log::default();
    let (addr, stop, server) = serve(receiver(&log, None)).await;
    let send = h2(addr).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut send = send.clone();
        let req = request(addr, &format!("h2_{i}"), &format!("Asset {i}"));
        tasks.push(tokio::spawn(async move {
            let res = send.send_request(req).await.expect("response");
            let version = res.version();
            let status = res.status();
            let _ = res.into_body().collect().await.expect("body");
            (status, version)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), (StatusCode::OK, Version::HTTP_2));
    }
    // The same id again on the same connection: a duplicate, answered 200, not handled.
    let res = send
        .clone()
        .send_request(request(addr, "h2_0", "Asset 0"))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    let mut seen = log.take();
    seen.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("Asset {i}:HTTP/2.0")).collect();
    expected.sort();
    assert_eq!(seen, expected);

    // HTTP/1.1 on the same server.
    let body = alert_json("Plain", "80");
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /hook HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n",
        body.len(),
        crate::common::signature_headers("h1_0", body.as_bytes())
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    tcp.write_all(body.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out).await;
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(log.take(), vec!["Plain:HTTP/1.1"]);

    let _ = stop.send(());
    server.await.expect("join").expect("clean shutdown");
}

#[tokio::test]
async fn shutdown_lets_h2_streams_in_flight_finish() {
    let log = Log::default();
    let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (addr, stop, server) = serve(receiver(
        &log,
        Some((Arc::clone(&started), Arc::clone(&release))),
    ))
    .await;
    let mut send = h2(addr).await;
    let req = request(addr, "slow", "Slow");
    let in_flight = tokio::spawn(async move { send.send_request(req).await.map(|r| r.status()) });
    started.notified().await;
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!server.is_finished(), "still draining the stream in flight");
    release.notify_one();
    let status = in_flight.await.expect("task").expect("response");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(log.take(), vec!["Slow:HTTP/2.0"]);
    server.await.expect("join").expect("clean shutdown");
}

#[tokio::test]
async fn an_oversize_h2_body_gets_413_and_the_connection_goes_on() {
    let log = Log::default();
    let (addr, stop, server) = serve(receiver(&log, None)).await;
    let send = h2(addr).await;
    // 2 MiB, above the default 1 MiB limit: refused with 413 without being buffered whole.
    let big = alert_json("Big", &"x".repeat(2 << 20));
    let res = send
        .clone()
        .send_request(request_with_body(addr, "big", big))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A malformed body on another stream: 400, with the reason.
    let res = send
        .clone()
        .send_request(request_with_body(addr, "bad", "{\"subject\":".to_owned()))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // The connection still carries a good request.
    let res = send
        .clone()
        .send_request(request(addr, "after", "After"))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(log.take(), vec!["After:HTTP/2.0"]);
    let _ = stop.send(());
    server.await.expect("join").expect("clean shutdown");
}

fn request_with_body(
    addr: SocketAddr,
    id: &str,
    body: String,
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    let mut req = signed(id, "application/json", body);
    *req.uri_mut() = format!("http://{addr}/hook").parse().expect("uri");
    req
}
