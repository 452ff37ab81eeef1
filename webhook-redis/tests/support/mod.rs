//! Test support shared by webhook-redis's and webhook-cli's Redis tests: a real `redis-server`
//! on a free loopback port, and a recording HTTP receiver.
//!
//! The tests find a server through `WEBHOOK_TEST_REDIS_URL` (CI sets it); without it a test
//! starts its own `redis-server` when the binary exists, else prints a notice and passes,
//! except under `CI=true` or `WEBHOOK_TEST_REDIS_REQUIRED=1` (which `.ci/run` sets), where a
//! missing Redis fails. Tests that restart Redis always start their own server: the
//! `redis-server` on `PATH`, or the binary `WEBHOOK_TEST_REDIS_SERVER` names (`.ci/run` points
//! it at each Redis version it tests, so that these tests run on that version too).
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The `redis-server` binary tests start: `WEBHOOK_TEST_REDIS_SERVER`, else the one on `PATH`.
pub fn server_binary() -> String {
    std::env::var("WEBHOOK_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

/// A free loopback port.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` this test started (stopped on drop).
pub struct RedisServer {
    pub port: u16,
    pub dir: PathBuf,
    aof: bool,
    child: Option<Child>,
}

/// Whether the `redis-server` binary `bin` runs. Missing, a test is skipped with a notice,
/// except under `CI=true` or `WEBHOOK_TEST_REDIS_REQUIRED=1`, where it fails.
pub fn runnable(bin: &str) -> bool {
    if Command::new(bin).arg("--version").output().is_ok() {
        return true;
    }
    let required = std::env::var("CI").as_deref() == Ok("true")
        || std::env::var("WEBHOOK_TEST_REDIS_REQUIRED").as_deref() == Ok("1");
    assert!(
        !required,
        "{bin} is missing and CI=true (or WEBHOOK_TEST_REDIS_REQUIRED=1): \
         install redis-server (Debian package)"
    );
    eprintln!("notice: {bin} not found; test skipped (install redis-server)");
    false
}

impl RedisServer {
    /// Starts one on a free port in a fresh directory; `None` when `redis-server` is missing
    /// (a failure under `CI=true`).
    pub fn start(aof: bool) -> Option<Self> {
        if !runnable(&server_binary()) {
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "webhook-redis-test-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = Self {
            port: free_port(),
            dir,
            aof,
            child: None,
        };
        s.spawn();
        Some(s)
    }

    fn spawn(&mut self) {
        let child = Command::new(server_binary())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", self.dir.to_str().unwrap()])
            .args(["--appendonly", if self.aof { "yes" } else { "no" }])
            .args(["--appendfsync", "always", "--save", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        wait_ping(&self.url());
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL) and starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_ping(url: &str) {
    let client = redis::Client::open(url).unwrap();
    let start = Instant::now();
    loop {
        if let Ok(mut c) = client.get_connection()
            && redis::cmd("PING").query::<String>(&mut c).is_ok()
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "redis did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The server of a test: the shared one (`WEBHOOK_TEST_REDIS_URL`) or one of its own.
pub enum Redis {
    Shared(String),
    Own(RedisServer),
}

impl Redis {
    pub fn url(&self) -> String {
        match self {
            Self::Shared(u) => u.clone(),
            Self::Own(s) => s.url(),
        }
    }
}

/// The shared server, or a server of the test's own; `None`: skipped (notice printed).
pub fn redis() -> Option<Redis> {
    if let Ok(url) = std::env::var("WEBHOOK_TEST_REDIS_URL") {
        return Some(Redis::Shared(url));
    }
    RedisServer::start(true).map(Redis::Own)
}

/// A queue name unique to this test run.
pub fn queue_name(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "t-{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// What a [`Recorder`] saw.
#[derive(Default)]
pub struct Seen {
    /// Per `"n"` value: how many times it arrived.
    pub counts: HashMap<u64, u32>,
    pub requests: u64,
}

/// A recording HTTP/1.1 receiver on 127.0.0.1: answers every request with `status` after
/// `delay`, counting the `"n"` field of every JSON object in the body.
pub struct Recorder {
    pub port: u16,
    pub seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    pub async fn start(status: u16, delay: Duration) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s2 = seen.clone();
        let (port, task) = http_server(
            delay,
            Arc::new(move |r: &Request| {
                let mut s = s2.lock().unwrap();
                s.requests += 1;
                for n in ns(&r.body) {
                    *s.counts.entry(n).or_default() += 1;
                }
                status
            }),
        )
        .await;
        Self { port, seen, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/in", self.port)
    }

    pub fn distinct(&self) -> usize {
        self.seen.lock().unwrap().counts.len()
    }

    /// Waits until `n` distinct values arrived (or the timeout).
    pub async fn wait_distinct(&self, n: usize, timeout: Duration) -> usize {
        let start = Instant::now();
        loop {
            let d = self.distinct();
            if d >= n || start.elapsed() > timeout {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request a test server got.
pub struct Request {
    /// Its `webhook-id` header (empty without one).
    pub webhook_id: String,
    pub body: Vec<u8>,
}

/// What a test server answers a request: the status (0: never answers, the connection hangs).
pub type Handler = Arc<dyn Fn(&Request) -> u16 + Send + Sync>;

/// An HTTP/1.1 server on 127.0.0.1 (keep-alive, `content-length` bodies) answering every
/// request with what `handler` says after `delay`; its port and its accept task (abort it to
/// stop).
pub async fn http_server(delay: Duration, handler: Handler) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve_conn(sock, delay, handler.clone()));
        }
    });
    (port, task)
}

async fn serve_conn(mut sock: tokio::net::TcpStream, delay: Duration, handler: Handler) {
    let mut buf = Vec::new();
    let mut tmp = vec![0u8; 64 * 1024];
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            match sock.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
        };
        let len: usize = header("content-length:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let webhook_id = header("webhook-id:").unwrap_or_default();
        while buf.len() < head_end + len {
            match sock.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
        let body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let status = handler(&Request { webhook_id, body });
        if status == 0 {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        let resp =
            format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n");
        if sock.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Every `"n"` number in a JSON body (an object, an array, or NDJSON lines).
pub fn ns(body: &[u8]) -> Vec<u64> {
    fn walk(v: &serde_json::Value, out: &mut Vec<u64>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(n) = m.get("n").and_then(serde_json::Value::as_u64) {
                    out.push(n);
                }
                for v in m.values() {
                    if v.is_object() || v.is_array() {
                        walk(v, out);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        walk(&v, &mut out);
    } else {
        for line in body.split(|&b| b == b'\n') {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) {
                walk(&v, &mut out);
            }
        }
    }
    out
}

/// `INFO section` of the server at `url`.
pub fn info(url: &str, section: &str) -> String {
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    redis::cmd("INFO").arg(section).query(&mut c).unwrap()
}

/// Makes `replica` follow `primary` and waits until it is in sync.
pub fn follow(replica: &RedisServer, primary: &RedisServer) {
    // (no 5 s wait for more replicas before a full sync)
    let mut p = redis::Client::open(primary.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("repl-diskless-sync-delay")
        .arg(0)
        .query(&mut p)
        .unwrap();
    let mut c = redis::Client::open(replica.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port)
        .query(&mut c)
        .unwrap();
    let start = Instant::now();
    while !info(&replica.url(), "replication").contains("master_link_status:up")
        || !info(&primary.url(), "replication").contains("connected_slaves:1")
    {
        assert!(start.elapsed() < Duration::from_secs(20), "never in sync");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `XLEN key` on the server at `url`.
pub fn xlen(url: &str, key: &str) -> u64 {
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    redis::cmd("XLEN").arg(key).query(&mut c).unwrap()
}
