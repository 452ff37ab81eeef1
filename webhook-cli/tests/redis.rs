//! `webhook enqueue` and `webhook worker` against a real `redis-server` on 127.0.0.1 (see
//! webhook-redis's `tests/support`): three worker processes deliver 100,000 events to a
//! recording receiver while one is killed with SIGKILL and Redis itself is killed and
//! restarted (AOF); every event arrives at least once, duplicates counted.

#[path = "../../webhook-redis/tests/support/mod.rs"]
mod support;
#[path = "../../webhook-redis/tests/support/tls.rs"]
mod tls_support;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Recorder, RedisServer, follow, queue_name, xlen};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_webhook"))
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("webhook-cli-redis-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn events_file(dir: &std::path::Path, n: u64) -> PathBuf {
    let path = dir.join("events.ndjson");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..n {
        writeln!(f, r#"{{"id":"evt_{i}","type":"load","n":{i}}}"#).unwrap();
    }
    f.flush().unwrap();
    path
}

fn worker(url: &str, queue: &str, endpoint: &str, lease: &str) -> Child {
    bin()
        .args([
            "worker",
            "--redis",
            url,
            "--queue",
            queue,
            "--endpoint",
            endpoint,
        ])
        .args(["--allow-private", "--name", "rec", "--lease", lease])
        .args([
            "--max-events",
            "200",
            "--linger",
            "5ms",
            "--concurrency",
            "4",
        ])
        .args([
            "--retry-delay",
            "50ms",
            "--retry-max-delay",
            "500ms",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

fn enqueue(url: &str, queue: &str, file: &std::path::Path) {
    let out = bin()
        .args([
            "enqueue", "--redis", url, "--queue", queue, "--json", "--file",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_one_killed_and_a_redis_restart_deliver_every_event() {
    let Some(mut server) = RedisServer::start(true) else {
        return;
    };
    let url = server.url();
    let queue = queue_name("cli3");
    let dir = tempdir("three");
    const N: u64 = 100_000;
    let file = events_file(&dir, N);
    let rec = Recorder::start(200, Duration::ZERO).await;
    let started = Instant::now();
    enqueue(&url, &queue, &file);
    let enqueued = started.elapsed();
    let mut workers: Vec<Child> = (0..3)
        .map(|_| worker(&url, &queue, &rec.url(), "2s"))
        .collect();
    // Mid-stream: one worker killed outright, holding entries.
    rec.wait_distinct(15_000, Duration::from_secs(120)).await;
    let mut killed = workers.remove(0);
    killed.kill().unwrap();
    killed.wait().unwrap();
    // Then Redis itself, killed and restarted from its AOF.
    rec.wait_distinct(40_000, Duration::from_secs(120)).await;
    server.restart();
    let got = rec
        .wait_distinct(N as usize, Duration::from_secs(240))
        .await;
    let took = started.elapsed();
    for w in &workers {
        sigterm(w);
    }
    let mut summaries = Vec::new();
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success());
        summaries.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let (dups, requests) = {
        let s = rec.seen.lock().unwrap();
        (
            s.counts.values().map(|c| u64::from(c - 1)).sum::<u64>(),
            s.requests,
        )
    };
    eprintln!(
        "100k through 3 workers (one SIGKILLed, redis restarted): {got} distinct, {dups} duplicates, {requests} requests, enqueue {enqueued:?}, total {took:?}; {summaries:?}"
    );
    assert_eq!(got, N as usize, "every event arrives at least once");
    let reclaimed: u64 = summaries
        .iter()
        .filter_map(|s| serde_json::from_str::<serde_json::Value>(s.trim()).ok())
        .filter_map(|v| v["reclaimed"].as_u64())
        .sum();
    assert!(
        reclaimed > 0,
        "the killed worker's entries were reclaimed: {summaries:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Given up at the endpoint (a 400), the events are the queue's dead letters: `webhook outbox`
/// lists, shows and redelivers them on the Redis queue as on a directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_commands_work_on_a_redis_queue() {
    let Some(r) = support::redis() else { return };
    let url = r.url();
    let queue = queue_name("cliout");
    let dir = tempdir("outbox");
    let file = events_file(&dir, 3);
    enqueue(&url, &queue, &file);
    let refuse = Recorder::start(400, Duration::ZERO).await;
    let w = worker(&url, &queue, &refuse.url(), "30s");
    let target = format!("{url}#{queue}");
    let start = Instant::now();
    loop {
        let out = run_ok(bin().args(["outbox", "list", &target, "--json"]));
        if out.lines().count() == 3 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "dead letters: {out}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sigterm(&w);
    assert!(w.wait_with_output().unwrap().status.success());
    let status = run_ok(bin().args(["outbox", "status", &target, "--json"]));
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["dead_letters"], 3, "{status}");
    let first: serde_json::Value = serde_json::from_str(
        run_ok(bin().args(["outbox", "list", &target, "--json"]))
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let id = first["id"].as_u64().unwrap().to_string();
    let shown = run_ok(bin().args(["outbox", "show", &target, &id]));
    assert!(shown.contains("400"), "{shown}");
    let redone = run_ok(bin().args(["outbox", "redeliver", &target, "--all", "--json"]));
    assert!(redone.contains("\"redelivered\":3"), "{redone}");
    let rec = Recorder::start(200, Duration::ZERO).await;
    let w = worker(&url, &queue, &rec.url(), "30s");
    assert_eq!(rec.wait_distinct(3, Duration::from_secs(30)).await, 3);
    sigterm(&w);
    assert!(w.wait_with_output().unwrap().status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Accepts one request, answers 200, hands over its bytes.
fn capture_one() -> (String, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::Read as _;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = Vec::new();
        let mut tmp = [0u8; 8192];
        loop {
            let n = s.read(&mut tmp).unwrap();
            buf.extend_from_slice(&tmp[..n]);
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..p]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= p + 4 + len || n == 0 {
                    break;
                }
            }
        }
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        buf
    });
    (url, h)
}

/// A child process killed when dropped (a failing assertion leaves none behind).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `webhook listen` prints its address on the first stderr line; returns (child, addr).
fn listen(redis: &str) -> (Killed, String) {
    use std::io::BufRead as _;
    let mut child = bin()
        .args([
            "listen",
            "--addr",
            "127.0.0.1:0",
            "--json",
            "--secret",
            SECRET,
        ])
        .args(["--replay-redis", redis])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .split("://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .trim()
        .to_owned();
    (Killed(child), addr)
}

fn replay_to(addr: &str, request: &[u8]) -> String {
    use std::io::Read as _;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    // One request per connection.
    let text =
        String::from_utf8_lossy(request).replace("\r\n\r\n", "\r\nconnection: close\r\n\r\n");
    let request = text.replacen("connection: keep-alive\r\n", "", 1);
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Two `webhook listen --replay-redis` processes: a signed request captured once and sent to
/// each is processed by the first and refused by the second.
#[test]
fn listen_replay_redis_shares_the_replay_cache() {
    let Some(r) = support::redis() else { return };
    let url = r.url();
    let dir = tempdir("listen");
    let file = events_file(&dir, 1);
    let (capture, captured) = capture_one();
    let out = bin()
        .args([
            "send",
            "--endpoint",
            &capture,
            "--allow-private",
            "--auth",
            "signature",
        ])
        .args(["--secret", SECRET, "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let request = captured.join().unwrap();
    let (_a, addr_a) = listen(&url);
    let (_b, addr_b) = listen(&url);
    let first = replay_to(&addr_a, &request);
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(!first.contains("duplicate"), "{first}");
    let second = replay_to(&addr_b, &request);
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(
        second.contains(r#""status":"duplicate""#),
        "the other instance refuses it: {second}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `enqueue --spool DIR` with Redis down keeps the events on disk (exit 1, "still spooled");
/// the next run, with Redis back, forwards them first.
#[test]
fn enqueue_spool_waits_on_disk_while_redis_is_down() {
    let Some(mut server) = RedisServer::start(true) else {
        return;
    };
    let url = server.url();
    let queue = queue_name("clispool");
    let dir = tempdir("spool");
    let file = events_file(&dir, 50);
    let spool = dir.join("spool");
    server.kill();
    let out = bin()
        .args([
            "enqueue",
            "--redis",
            &url,
            "--queue",
            &queue,
            "--forward-for",
            "300ms",
            "--json",
        ])
        .arg("--spool")
        .arg(&spool)
        .arg("--file")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["left_in_spool"], 50, "{v}");
    server.restart();
    let out = bin()
        .args(["enqueue", "--redis", &url, "--queue", &queue, "--json"])
        .arg("--spool")
        .arg(&spool)
        .arg("--file")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["forwarded"].as_u64(), v["left_in_spool"].as_u64()),
        (Some(100), Some(0)),
        "{v}"
    );
    assert_eq!(xlen(&url, &format!("whk:{{{queue}.0}}:s")), 100);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `enqueue --replicas 1`: with no replica in sync the command does not report the events
/// written (it is still waiting after 1.5 s); once a replica follows the server, it returns
/// and the replica holds every event.
#[test]
fn enqueue_replicas_waits_for_a_replica() {
    let Some(primary) = RedisServer::start(true) else {
        return;
    };
    let Some(replica) = RedisServer::start(false) else {
        return;
    };
    let url = primary.url();
    let queue = queue_name("clireplicas");
    let dir = tempdir("replicas");
    let file = events_file(&dir, 20);
    let enqueue = || {
        bin()
            .args(["enqueue", "--redis", &url, "--queue", &queue, "--json"])
            .args(["--replicas", "1", "--replicas-timeout", "100ms", "--file"])
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut waiting = enqueue();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "no replica: still waiting"
    );
    follow(&replica, &primary);
    let out = waiting.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        xlen(&replica.url(), &format!("whk:{{{queue}.0}}:s")),
        20,
        "the replica holds each event once"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Redis commands over mutual TLS: `enqueue` with `--redis-ca`, `--redis-cert` and
/// `--redis-key`, then `outbox status` on the `rediss://` queue with the same files from
/// `WEBHOOK_REDIS_CA`, `WEBHOOK_REDIS_CERT` and `WEBHOOK_REDIS_KEY`; without the client
/// certificate, `enqueue` fails with the server's reason.
#[test]
fn redis_commands_work_over_mutual_tls() {
    let Some(redis) = tls_support::TlsRedis::start() else {
        return;
    };
    let dir = tempdir("tls");
    let file = events_file(&dir, 7);
    let pem = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (ca, cert, key) = (
        pem("ca.pem", &redis.ca_pem),
        pem("client.pem", &redis.client.0),
        pem("client.key", &redis.client.1),
    );
    let queue = queue_name("clitls");
    let url = redis.url();
    run_ok(
        bin()
            .args(["enqueue", "--redis", &url, "--queue", &queue, "--json"])
            .arg("--redis-ca")
            .arg(&ca)
            .arg("--redis-cert")
            .arg(&cert)
            .arg("--redis-key")
            .arg(&key)
            .arg("--file")
            .arg(&file),
    );
    let status = run_ok(
        bin()
            .args(["outbox", "status", &format!("{url}#{queue}"), "--json"])
            .env("WEBHOOK_REDIS_CA", &ca)
            .env("WEBHOOK_REDIS_CERT", &cert)
            .env("WEBHOOK_REDIS_KEY", &key),
    );
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    // (no endpoint reads the queue yet: nothing pending, the entries are its backlog)
    assert!(v["backlog_bytes"].as_u64().unwrap() > 0, "{status}");
    let out = bin()
        .args(["enqueue", "--redis", &url, "--queue", &queue])
        .arg("--redis-ca")
        .arg(&ca)
        .arg("--file")
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("CertificateRequired"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Redis password given in the URL is never printed: `webhook outbox status` on
/// `redis://:PASSWORD@HOST#QUEUE` shows `:***@`, and a wrong password's error neither.
#[test]
fn a_redis_password_is_never_printed() {
    let Some(server) = RedisServer::start(false) else {
        return;
    };
    let mut c = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("pa55word")
        .query(&mut c)
        .unwrap();
    let queue = queue_name("clipass");
    let target = format!("redis://:pa55word@127.0.0.1:{}#{queue}", server.port);
    let out = run_ok(bin().args(["outbox", "status", &target]));
    assert!(out.contains(":***@127.0.0.1"), "{out}");
    assert!(!out.contains("pa55word"), "{out}");
    let json = run_ok(bin().args(["outbox", "status", &target, "--json"]));
    assert!(!json.contains("pa55word"), "{json}");
    let wrong = bin()
        .args(["outbox", "status"])
        .arg(format!("redis://:n0tit@127.0.0.1:{}#{queue}", server.port))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success());
    assert!(!err.contains("n0tit"), "{err}");
    assert!(err.contains("***"), "{err}");
}
