//! Tests over real sockets on 127.0.0.1: the built-in `Server`, streaming oversize bodies,
//! graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use webhook_receiver::{
    Context, HandlerOutcome, Receiver, ReceiverConfig, ServeError, Server, handler_fn,
};

use crate::common::{Alert, Log, alert_json, signature_headers, verified_config, verifier};

fn receiver(log: &Log) -> Receiver<Alert> {
    let log = log.clone();
    Receiver::builder(verified_config())
        .fallback(handler_fn(move |a: Alert, cx: Context| {
            let log = log.clone();
            async move {
                let ip = cx.remote_addr().map(|a| a.ip().to_string());
                log.push(format!("{}:{}", a.subject, ip.unwrap_or_default()));
                HandlerOutcome::Accepted
            }
        }))
        .build()
        .expect("receiver")
}

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = l.local_addr().expect("local addr");
    (l, addr)
}

/// The tests' receiver served by `Server` on a fresh loopback port until `stop` is sent.
async fn serve(
    log: &Log,
) -> (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), ServeError>>,
) {
    let (l, addr) = listener().await;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(Server::new(receiver(log)).serve(l, async {
        let _ = stop_rx.await;
    }));
    (addr, stop_tx, server)
}

/// Sends a raw HTTP/1.1 request and reads the response until the server closes.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn post(id: &str, body: &str) -> Vec<u8> {
    signed_request(id, "application/json", body)
}

/// A signed `POST /hook` of `body` as `content_type`, closing the connection after it.
fn signed_request(id: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /hook HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         content-type: {content_type}\r\ncontent-length: {}\r\n{}\r\n{}",
        body.len(),
        signature_headers(id, body.as_bytes()),
        body
    )
    .into_bytes()
}

#[tokio::test]
async fn server_accepts_signed_request_with_remote_addr() {
    let log = Log::default();
    let (addr, stop_tx, server) = serve(&log).await;
    let res = raw(addr, &post("s1", &alert_json("Asset Ports", "443"))).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    let res = raw(addr, &post("s1", &alert_json("Asset Ports", "443"))).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(res.contains(r#""status":"duplicate""#), "{res}");
    assert_eq!(log.take(), vec!["Asset Ports:127.0.0.1"]);
    let _ = stop_tx.send(());
    server.await.expect("join").expect("clean shutdown");
}

/// A signed NDJSON request of `records` alerts, close to the default 1 MiB body limit.
fn large_batch(id: &str, records: usize) -> Vec<u8> {
    let filler = "x".repeat(930);
    let body: String = (0..records)
        .map(|i| format!("{}\n", alert_json(&format!("a{i}"), &filler)))
        .collect();
    signed_request(id, "application/x-ndjson", &body)
}

#[tokio::test]
async fn large_bodies_arrive_whole_in_one_write_or_in_many_pieces() {
    // The server's read buffer holds a whole body of the limit, so a request written at once
    // usually reaches the handler as one piece (no copy); one trickled in small writes arrives
    // in many pieces and is put back together. Both verify and deliver every record.
    let log = Log::default();
    let (addr, stop_tx, server) = serve(&log).await;
    let records = 1000;
    let whole = large_batch("big-1", records);
    assert!(whole.len() > 900 * 1024 && whole.len() < 1024 * 1024);
    let res = raw(addr, &whole).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert_eq!(log.take().len(), records);

    let pieces = large_batch("big-2", records);
    let mut s = TcpStream::connect(addr).await.expect("connect");
    for piece in pieces.chunks(7 * 1024 + 3) {
        s.write_all(piece).await.expect("write");
        s.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let res = String::from_utf8_lossy(&out);
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    let seen = log.take();
    assert_eq!(seen.len(), records);
    assert!(seen[0].starts_with("a0:") && seen[records - 1].starts_with("a999:"));

    let _ = stop_tx.send(());
    server.await.expect("join").expect("clean shutdown");
}

#[tokio::test]
async fn a_capped_read_buffer_still_takes_whole_large_bodies() {
    // The smallest read buffer: the ~950 KB body arrives in many pieces and is put together.
    let log = Log::default();
    let (l, addr) = listener().await;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::new(receiver(&log))
            .read_buffer_limit(0)
            .serve(l, async {
                let _ = stop_rx.await;
            }),
    );
    let res = raw(addr, &large_batch("capped-1", 1000)).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert_eq!(log.take().len(), 1000);
    let _ = stop_tx.send(());
    server.await.expect("join").expect("clean shutdown");
}

/// Streams a chunked body far above the limit; the server answers 413 and stops reading.
async fn stream_oversize(addr: SocketAddr) -> (String, usize) {
    let s = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        let head = "POST /hook HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                    transfer-encoding: chunked\r\n\r\n";
        let mut written = 0usize;
        if wr.write_all(head.as_bytes()).await.is_err() {
            return written;
        }
        let chunk = vec![b' '; 64 * 1024];
        let framed = [b"10000\r\n".as_slice(), &chunk, b"\r\n"].concat();
        for _ in 0..(256 * 16) {
            // 256 MiB in total, far more than socket buffers can absorb.
            if wr.write_all(&framed).await.is_err() {
                break;
            }
            written += chunk.len();
        }
        written
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let written = writer.await.expect("writer");
    (String::from_utf8_lossy(&out).into_owned(), written)
}

#[tokio::test]
async fn oversize_chunked_body_is_refused_before_buffering() {
    // Our own hyper connection so the test can count the bytes the receiver pulled.
    let log = Log::default();
    let rx = receiver(&log);
    let pulled = Arc::new(AtomicUsize::new(0));
    let (l, addr) = listener().await;
    let counter = Arc::clone(&pulled);
    let server = tokio::spawn(async move {
        let (stream, _) = l.accept().await.expect("accept");
        let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
            let rx = rx.clone();
            let counter = Arc::clone(&counter);
            async move {
                let req = req.map(|b| {
                    b.map_frame(move |f| {
                        if let Some(d) = f.data_ref() {
                            counter.fetch_add(d.len(), Ordering::SeqCst);
                        }
                        f
                    })
                });
                Ok::<_, Infallible>(rx.handle(req).await)
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), svc)
            .await;
    });
    let (res, written) = stream_oversize(addr).await;
    assert!(res.starts_with("HTTP/1.1 413"), "{res}");
    assert!(res.contains("payload_too_large"), "{res}");
    let pulled = pulled.load(Ordering::SeqCst);
    assert!(pulled > 1024 * 1024, "read up to the limit: {pulled}");
    assert!(
        pulled < 1024 * 1024 + 256 * 1024,
        "server pulled {pulled} bytes; the limit is 1 MiB"
    );
    assert!(
        written < 256 * 1024 * 1024,
        "the client could not send it all"
    );
    server.await.expect("server task");
    assert!(log.take().is_empty());
}

#[tokio::test]
async fn server_refuses_oversize_stream_and_big_content_length() {
    let log = Log::default();
    let (addr, stop_tx, server) = serve(&log).await;
    let (res, written) = stream_oversize(addr).await;
    assert!(res.starts_with("HTTP/1.1 413"), "{res}");
    assert!(written < 256 * 1024 * 1024, "the server stopped reading");

    // A declared Content-Length above the limit: refused from the headers alone.
    let head = "POST /hook HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                content-length: 104857600\r\n\r\n";
    let res = raw(addr, head.as_bytes()).await;
    assert!(res.starts_with("HTTP/1.1 413"), "{res}");
    let _ = stop_tx.send(());
    server.await.expect("join").expect("clean shutdown");
}

#[tokio::test]
async fn shutdown_finishes_in_flight_and_answers_503_to_new_requests() {
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (s, r) = (Arc::clone(&started), Arc::clone(&release));
    let rx: Receiver<Alert> = Receiver::builder(
        ReceiverConfig::builder()
            .verify(verifier())
            .build()
            .expect("config"),
    )
    .fallback(handler_fn(move |_a: Alert, _cx: Context| {
        let (s, r) = (Arc::clone(&s), Arc::clone(&r));
        async move {
            s.notify_one();
            r.notified().await;
            HandlerOutcome::Accepted
        }
    }))
    .build()
    .expect("receiver");
    let (l, addr) = listener().await;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::new(rx)
            .shutdown_timeout(Duration::from_secs(10))
            .health_check("/healthz")
            .serve(l, async {
                let _ = stop_rx.await;
            }),
    );
    let in_flight =
        tokio::spawn(
            async move { raw(addr, &post("slow", &alert_json("Asset Ports", "1"))).await },
        );
    started.notified().await;
    let probe = raw(addr, HEALTH_GET).await;
    assert!(probe.starts_with("HTTP/1.1 200"), "{probe}");
    let _ = stop_tx.send(());
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Draining: the probe says so, and new requests are turned away.
    let probe = raw(addr, HEALTH_GET).await;
    assert!(probe.starts_with("HTTP/1.1 503"), "{probe}");
    assert!(probe.ends_with("draining\n"), "{probe}");
    let late = raw(addr, &post("late", &alert_json("Asset Ports", "2"))).await;
    assert!(late.starts_with("HTTP/1.1 503"), "{late}");
    assert!(late.to_ascii_lowercase().contains("retry-after"), "{late}");
    assert!(
        !server.is_finished(),
        "still draining the in-flight request"
    );

    release.notify_one();
    let done = in_flight.await.expect("in-flight task");
    assert!(done.starts_with("HTTP/1.1 200"), "{done}");
    server.await.expect("join").expect("clean shutdown");
}

const HEALTH_GET: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";

#[tokio::test]
async fn the_health_check_answers_probes_without_auth_and_nothing_else() {
    let log = Log::default();
    let (l, addr) = listener().await;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(Server::new(receiver(&log)).health_check("/healthz").serve(
        l,
        async {
            let _ = stop_rx.await;
        },
    ));
    let get = raw(addr, HEALTH_GET).await;
    assert!(get.starts_with("HTTP/1.1 200"), "{get}");
    assert!(get.ends_with("\r\n\r\nok\n"), "{get}");
    assert!(
        get.to_ascii_lowercase().contains("cache-control: no-store"),
        "{get}"
    );
    let head = raw(
        addr,
        b"HEAD /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "no body: {head}");
    // Only that path, only GET and HEAD: everything else is the receiver's, with its checks.
    let other = raw(
        addr,
        b"GET /healthz/x HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(other.starts_with("HTTP/1.1 405"), "{other}");
    let unsigned = raw(
        addr,
        b"POST /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
          content-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
    )
    .await;
    assert!(unsigned.starts_with("HTTP/1.1 401"), "{unsigned}");
    let signed = raw(addr, &post("h1", &alert_json("Asset Ports", "443"))).await;
    assert!(signed.starts_with("HTTP/1.1 200"), "{signed}");
    assert_eq!(log.take(), vec!["Asset Ports:127.0.0.1"]);
    let _ = stop_tx.send(());
    server.await.expect("join").expect("clean shutdown");
}

#[tokio::test]
async fn shutdown_is_bounded_by_its_timeout() {
    let started = Arc::new(Notify::new());
    let s = Arc::clone(&started);
    let rx: Receiver<Alert> = Receiver::builder(
        ReceiverConfig::builder()
            .verify(verifier())
            .build()
            .expect("config"),
    )
    .fallback(handler_fn(move |_a: Alert, _cx: Context| {
        let s = Arc::clone(&s);
        async move {
            s.notify_one();
            std::future::pending::<()>().await;
            HandlerOutcome::Accepted
        }
    }))
    .build()
    .expect("receiver");
    let (l, addr) = listener().await;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::new(rx)
            .shutdown_timeout(Duration::from_millis(200))
            .serve(l, async {
                let _ = stop_rx.await;
            }),
    );
    let stuck =
        tokio::spawn(
            async move { raw(addr, &post("stuck", &alert_json("Asset Ports", "1"))).await },
        );
    started.notified().await;
    let _ = stop_tx.send(());
    let result = server.await.expect("join");
    assert!(
        matches!(result, Err(ServeError::ShutdownTimedOut { aborted: 1 })),
        "{result:?}"
    );
    // The aborted connection is closed without a response.
    assert_eq!(stuck.await.expect("client task"), "");
}
