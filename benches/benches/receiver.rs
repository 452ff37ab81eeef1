//! Requests per second of verified single-event webhooks (Standard Webhooks, 1 KiB JSON body)
//! through the receiver's hyper server, against a bare hyper server that only reads the body
//! and answers `200`, in the same run: both on 127.0.0.1, both with the same HTTP/1.1 settings
//! (`TCP_NODELAY`, a header-read timeout), driven by a keep-alive hyper client over
//! [`CONNECTIONS`] concurrent connections sending [`BATCH`] requests per iteration. Every server
//! gets the same signed requests (the same bytes on the wire); only the receiver looks at the
//! signature headers.
//!
//! The receiver does everything a production endpoint does per request: bounded body read,
//! HMAC-SHA256 verification of the raw bytes, timestamp check, replay-cache reservation and
//! commit of a unique `webhook-id`, typed decoding, routing by `type`, the handler, response.
//!
//! Run: `cargo bench -p webhook-benches --bench receiver -- --warm-up-time 1 --measurement-time 3`
//!
//! After the criterion groups, the bench runs both servers in alternating rounds and prints the
//! requests per second of each and the ratio (the goal is at least 85 % of the bare server).
//!
//! The same rounds include the verified receiver in inbox mode (issue 17: every request stored
//! in the embedded log and answered at once, the handler run from the log): its request rate
//! against the direct verified receiver's (goal ≥ 0.7×), and its sustained rate (answering and
//! then handling everything it stored). Then both serve a handler that takes 20 ms, and the
//! bench prints the response times (p50, p99, max) of each.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use webhook_core::{KeyRing, Scheme, Secret, Signer, Verifier};
use webhook_receiver::inbox::{Inbox, InboxConfig};
use webhook_receiver::{Context, HandlerOutcome, Receiver, ReceiverConfig, Server, handler_fn};

/// Concurrent keep-alive connections.
const CONNECTIONS: usize = 16;
/// Requests per measured iteration.
const BATCH: usize = 1_600;
/// The body size of one event.
const BODY_LEN: usize = 1024;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// One Standard Webhooks event as a handler decodes it: typed, with the fields it uses (serde
/// skips the others without allocating), not `serde_json::Value`.
#[derive(serde::Deserialize)]
struct Alert {
    r#type: String,
    #[allow(dead_code)]
    timestamp: String,
    data: AlertData,
}

#[derive(serde::Deserialize)]
struct AlertData {
    rule: String,
    #[allow(dead_code)]
    priority: String,
}

/// A single JSON event of exactly `BODY_LEN` bytes: a Standard Webhooks envelope around a
/// Falco-style alert whose `output` fills the rest.
fn event_body() -> Bytes {
    let head = r#"{"type":"policy.runtime","timestamp":"2024-07-03T18:23:21.639981110Z","data":{"rule":"Terminal shell in container","priority":"Warning","hostname":"node-1","output":""#;
    let tail = r#""}}"#;
    let mut s = String::from(head);
    let filler =
        "A shell was spawned in a container with an attached terminal (user=root container=nginx) ";
    while s.len() + tail.len() < BODY_LEN {
        let room = BODY_LEN - tail.len() - s.len();
        s.push_str(filler.get(..room.min(filler.len())).unwrap_or(""));
    }
    s.push_str(tail);
    assert_eq!(s.len(), BODY_LEN);
    Bytes::from(s)
}

fn ring() -> KeyRing {
    KeyRing::single(Secret::from_whsec(SECRET).expect("secret"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The same `http1` settings for both servers: the receiver's `Server` defaults.
fn http1() -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(webhook_receiver::DEFAULT_HEADER_READ_TIMEOUT);
    b
}

/// A bare hyper server: reads the whole body, answers `200`.
async fn bare_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let body = req.into_body().collect().await?.to_bytes();
                    std::hint::black_box(body);
                    Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::new())))
                });
                let _ = http1().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    addr
}

/// The handler of routed events: checks the event and its context, shares no state (a shared
/// counter would add cross-core traffic that is the bench's, not the receiver's). Correctness
/// is checked by the client: every response must be `200`, which the receiver only answers
/// when the handler accepted (unrouted events go to a failing fallback, answered `500`).
struct Accept;

impl webhook_receiver::Handler<Alert> for Accept {
    async fn handle(&self, a: Alert, cx: Context) -> HandlerOutcome {
        if a.data.rule.is_empty() || cx.message_id().is_none() {
            return HandlerOutcome::failed("unexpected event");
        }
        HandlerOutcome::Accepted
    }
}

/// The receiver: Standard Webhooks verification, replay protection, typed decoding, routing.
fn receiver() -> Receiver<Alert> {
    receiver_builder(Accept).build().expect("receiver")
}

fn receiver_builder<H: webhook_receiver::Handler<Alert>>(
    handler: H,
) -> webhook_receiver::ReceiverBuilder<Alert> {
    let verifier = Verifier::new(Scheme::standard_webhooks(), &ring()).expect("verifier");
    let config = ReceiverConfig::builder()
        .verify(verifier)
        .build()
        .expect("config");
    Receiver::builder(config)
        .subject(|a: &Alert| Some(a.r#type.as_str()))
        .route("policy.*", handler)
        .fallback(handler_fn(|_a: Alert, _cx: Context| async {
            HandlerOutcome::failed("unrouted")
        }))
}

/// A fresh inbox directory for this process.
fn inbox_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("webhook-bench-inbox-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The verified receiver in inbox mode behind the receiver's `Server` (inside a runtime).
fn serve_on<T: Send + 'static>(receiver: Receiver<T>, listener: TcpListener) {
    tokio::spawn(Server::new(receiver).serve(listener, std::future::pending()));
}

/// [`receiver`] with `handler`, directly or in inbox mode, served on 127.0.0.1.
async fn server_with<H: webhook_receiver::Handler<Alert>>(
    handler: H,
    inbox: Option<&str>,
) -> (SocketAddr, Option<Inbox>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let builder = receiver_builder(handler);
    let receiver = match inbox {
        Some(name) => builder
            .build_inbox(InboxConfig::new(inbox_dir(name)))
            .expect("inbox receiver"),
        None => builder.build().expect("receiver"),
    };
    let handle = receiver.inbox();
    serve_on(receiver, listener);
    (addr, handle)
}

/// A handler that takes 20 ms (a database write, a call to another service).
struct Slow;

impl webhook_receiver::Handler<Alert> for Slow {
    async fn handle(&self, _a: Alert, _cx: Context) -> HandlerOutcome {
        tokio::time::sleep(Duration::from_millis(20)).await;
        HandlerOutcome::Accepted
    }
}

/// [`receiver`] behind the receiver's own hyper `Server`.
async fn receiver_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(Server::new(receiver()).serve(listener, std::future::pending()));
    addr
}

/// A receiver with no authentication, no replay protection and items ignored: the cost of the
/// framework itself, between the bare server and the verified receiver.
fn plain_receiver() -> Receiver<serde::de::IgnoredAny> {
    let config = ReceiverConfig::builder()
        .auth(webhook_core::ReceiverAuth::None)
        .no_replay_protection()
        .build()
        .expect("config");
    Receiver::builder(config)
        .fallback(handler_fn(|_: serde::de::IgnoredAny, _cx: Context| async {
            HandlerOutcome::Accepted
        }))
        .build()
        .expect("receiver")
}

/// [`plain_receiver`] behind the receiver's `Server`.
async fn plain_receiver_server() -> SocketAddr {
    let receiver = plain_receiver();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(Server::new(receiver).serve(listener, std::future::pending()));
    addr
}

/// `CONNECTIONS` keep-alive client connections to one server.
struct Clients {
    senders: Vec<SendRequest<Full<Bytes>>>,
}

impl Clients {
    async fn connect(addr: SocketAddr) -> Self {
        let mut senders = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            senders.push(sender);
        }
        Self { senders }
    }

    /// Sends every request (split over the connections), asserting `200` for each.
    async fn drive(&mut self, requests: Vec<Request<Full<Bytes>>>) {
        let _ = self.drive_timed(requests).await;
    }
}

impl Clients {
    /// Sends every request (split over the connections); the response time of each.
    async fn drive_timed(&mut self, requests: Vec<Request<Full<Bytes>>>) -> Vec<Duration> {
        let mut per_conn: Vec<Vec<Request<Full<Bytes>>>> =
            (0..CONNECTIONS).map(|_| Vec::new()).collect();
        for (i, r) in requests.into_iter().enumerate() {
            per_conn[i % CONNECTIONS].push(r);
        }
        let mut tasks = Vec::with_capacity(CONNECTIONS);
        for (sender, reqs) in self.senders.drain(..).zip(per_conn) {
            tasks.push(tokio::spawn(async move {
                let mut sender = sender;
                let mut took = Vec::with_capacity(reqs.len());
                for req in reqs {
                    let start = Instant::now();
                    sender.ready().await.expect("connection ready");
                    let res = sender.send_request(req).await.expect("response");
                    assert_eq!(res.status(), StatusCode::OK, "every request answered 200");
                    let _ = res.into_body().collect().await.expect("response body");
                    took.push(start.elapsed());
                }
                (sender, took)
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            let (sender, took) = t.await.expect("client task");
            self.senders.push(sender);
            all.extend(took);
        }
        all
    }
}

/// Builds the requests of one batch (outside the timed section).
struct Requests {
    body: Bytes,
    signer: Signer,
    next_id: AtomicU64,
}

impl Requests {
    fn new() -> Self {
        Self {
            body: event_body(),
            signer: Signer::new(Scheme::standard_webhooks(), &ring()).expect("signer"),
            next_id: AtomicU64::new(0),
        }
    }

    /// `n` signed requests, each with a unique `webhook-id` (replay protection is on).
    fn signed(&self, n: usize) -> Vec<Request<Full<Bytes>>> {
        let ts = unix_now();
        (0..n)
            .map(|_| {
                let id = format!("msg_{:016}", self.next_id.fetch_add(1, Ordering::Relaxed));
                let mut req = self.plain_one();
                self.signer
                    .sign(&id, ts, &self.body, req.headers_mut())
                    .expect("sign");
                req
            })
            .collect()
    }

    fn plain_one(&self) -> Request<Full<Bytes>> {
        Request::post("/hook")
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .body(Full::new(self.body.clone()))
            .expect("request")
    }
}

struct Setup {
    rt: Runtime,
    bare: Clients,
    plain: Clients,
    verified: Clients,
    inbox: Clients,
    inbox_handle: Inbox,
    requests: Requests,
}

impl Setup {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (bare, plain, verified, (inbox, inbox_handle)) = rt.block_on(async {
            let bare = Clients::connect(bare_server().await).await;
            let plain = Clients::connect(plain_receiver_server().await).await;
            let verified = Clients::connect(receiver_server().await).await;
            let (addr, handle) = server_with(Accept, Some("rate")).await;
            let inbox = Clients::connect(addr).await;
            (bare, plain, verified, (inbox, handle.expect("inbox mode")))
        });
        Self {
            rt,
            bare,
            plain,
            verified,
            inbox,
            inbox_handle,
            requests: Requests::new(),
        }
    }

    /// The inbox receiver: the time to answer `n` requests, then the time until everything it
    /// stored was handled.
    fn run_inbox(&mut self, n: usize) -> (Duration, Duration) {
        let reqs = self.requests.signed(n);
        let start = Instant::now();
        self.rt.block_on(self.inbox.drive(reqs));
        let answered = start.elapsed();
        let handle = self.inbox_handle.clone();
        self.rt.block_on(handle.idle());
        (answered, start.elapsed() - answered)
    }

    fn run_bare(&mut self, n: usize) -> Duration {
        let reqs = self.requests.signed(n);
        let start = Instant::now();
        self.rt.block_on(self.bare.drive(reqs));
        start.elapsed()
    }

    fn run_plain(&mut self, n: usize) -> Duration {
        let reqs = self.requests.signed(n);
        let start = Instant::now();
        self.rt.block_on(self.plain.drive(reqs));
        start.elapsed()
    }

    fn run_verified(&mut self, n: usize) -> Duration {
        let reqs = self.requests.signed(n);
        let start = Instant::now();
        self.rt.block_on(self.verified.drive(reqs));
        start.elapsed()
    }
}

fn bench(c: &mut Criterion) {
    let mut setup = Setup::new();
    let mut g = c.benchmark_group("receiver_1KiB_16conn");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    g.bench_function("bare_hyper", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| setup.run_bare(BATCH)).sum())
    });
    g.bench_function("verified_receiver", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| setup.run_verified(BATCH)).sum())
    });
    g.finish();

    // The pipeline without sockets: `Receiver::handle` on one request, the same without
    // authentication, replay protection or typed decoding, and the signature verification
    // alone.
    let mut g = c.benchmark_group("receiver_1KiB_in_process");
    g.throughput(Throughput::Elements(1));
    let rx = receiver();
    let requests = Requests::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    g.bench_function("handle", |b| {
        b.iter_batched(
            || requests.signed(1).pop().expect("one request"),
            |req| {
                let res = rt.block_on(rx.handle(req));
                assert_eq!(res.status(), StatusCode::OK);
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let plain = plain_receiver();
    g.bench_function("handle_without_auth", |b| {
        b.iter_batched(
            || requests.signed(1).pop().expect("one request"),
            |req| {
                let res = rt.block_on(plain.handle(req));
                assert_eq!(res.status(), StatusCode::OK);
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let verifier = Verifier::new(Scheme::standard_webhooks(), &ring()).expect("verifier");
    let req = requests.signed(1).pop().expect("one request");
    let now = SystemTime::now();
    g.bench_function("verify_only", |b| {
        b.iter(|| {
            verifier
                .verify(req.headers(), &requests.body, now)
                .expect("valid")
                .key_index()
        })
    });
    g.finish();
}

/// Interleaved rounds of the three servers (the order rotates every round, so load from other
/// processes hits all of them alike); prints requests per second of each and the ratios, over
/// all rounds and as the median of the per-round ratios.
fn compare() {
    let mut setup = Setup::new();
    let rounds = 25;
    let n = 2 * BATCH;
    setup.run_bare(BATCH);
    setup.run_plain(BATCH);
    setup.run_verified(BATCH);
    setup.run_inbox(BATCH);
    let mut totals = [Duration::ZERO; 4];
    let mut drained = Duration::ZERO;
    let mut ratios = Vec::with_capacity(rounds);
    let mut inbox_ratios = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let mut this = [Duration::ZERO; 4];
        for k in 0..4 {
            let which = (round + k) % 4;
            this[which] = match which {
                0 => setup.run_bare(n),
                1 => setup.run_plain(n),
                2 => setup.run_verified(n),
                _ => {
                    let (answered, drain) = setup.run_inbox(n);
                    drained += drain;
                    answered
                }
            };
        }
        for (t, d) in totals.iter_mut().zip(this) {
            *t += d;
        }
        ratios.push(this[0].as_secs_f64() / this[2].as_secs_f64());
        inbox_ratios.push(this[2].as_secs_f64() / this[3].as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    inbox_ratios.sort_by(f64::total_cmp);
    let median = ratios[rounds / 2];
    let inbox_median = inbox_ratios[rounds / 2];
    let total = (rounds * n) as f64;
    let sustained = total / (totals[3] + drained).as_secs_f64();
    let [bare, plain, verified, inbox] = totals.map(|d| total / d.as_secs_f64());
    println!(
        "receiver throughput ({CONNECTIONS} connections, {BODY_LEN} B bodies, {rounds} rounds of \
         {n} requests): bare hyper {bare:.0} req/s; receiver without auth {plain:.0} req/s \
         ({:.1} %); verified receiver {verified:.0} req/s ({:.1} % of bare; median of \
         per-round ratios {:.1} %)",
        100.0 * plain / bare,
        100.0 * verified / bare,
        100.0 * median
    );
    println!(
        "inbox mode (same rounds): verified receiver with the inbox {inbox:.0} req/s answered = \
         {:.2}x the direct verified receiver (median of per-round ratios {:.2}x; goal >= 0.7x); \
         sustained, answering then handling all it stored: {sustained:.0} req/s ({:.2}x)",
        inbox / verified,
        inbox_median,
        sustained / verified
    );
    let stats = setup.inbox_handle.stats();
    assert_eq!(
        stats.succeeded, stats.accepted,
        "every stored message handled"
    );
    assert_eq!(stats.depth, 0);
}

/// Response times with a handler that takes 20 ms, directly and in inbox mode (the same
/// requests, 16 connections, alternating rounds).
fn slow_handler_latency() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let requests = Requests::new();
    let (mut direct, mut inbox, handle) = rt.block_on(async {
        let (a, _) = server_with(Slow, None).await;
        let (b, h) = server_with(Slow, Some("slow")).await;
        (
            Clients::connect(a).await,
            Clients::connect(b).await,
            h.expect("inbox"),
        )
    });
    let (mut d, mut i) = (Vec::new(), Vec::new());
    for round in 0..6 {
        let (first, second) = if round % 2 == 0 {
            (&mut direct, &mut inbox)
        } else {
            (&mut inbox, &mut direct)
        };
        let a = rt.block_on(first.drive_timed(requests.signed(CONNECTIONS * 25)));
        let b = rt.block_on(second.drive_timed(requests.signed(CONNECTIONS * 25)));
        let (da, ib) = if round % 2 == 0 { (a, b) } else { (b, a) };
        d.extend(da);
        i.extend(ib);
        rt.block_on(handle.idle());
    }
    let pct = |v: &mut Vec<Duration>, p: usize| {
        v.sort();
        v[(v.len() * p / 100).min(v.len() - 1)]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "response times with a 20 ms handler ({CONNECTIONS} connections, {} requests each): \
         direct p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; inbox p50 {:.2} ms, p99 {:.2} ms, \
         max {:.2} ms",
        d.len(),
        ms(pct(&mut d, 50)),
        ms(pct(&mut d, 99)),
        ms(pct(&mut d, 100)),
        ms(pct(&mut i, 50)),
        ms(pct(&mut i, 99)),
        ms(pct(&mut i, 100)),
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `WEBHOOK_BENCH_NO_COMPARE=1` skips the alternating rounds (e.g. when profiling a group).
    if std::env::args().any(|a| a == "--bench")
        && std::env::var_os("WEBHOOK_BENCH_NO_COMPARE").is_none()
    {
        compare();
        slow_handler_latency();
        for name in ["rate", "slow"] {
            let _ = std::fs::remove_dir_all(inbox_dir(name));
        }
    }
}
