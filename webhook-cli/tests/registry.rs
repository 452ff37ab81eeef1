//! `webhook worker --registry [--spread]` and `webhook endpoints` against a real
//! `redis-server` on 127.0.0.1 (see webhook-redis's `tests/support`), with real processes:
//!
//! * three spreading workers divide 2 endpoints x 4 partitions among themselves (each pair
//!   read by exactly one, as they report and as Redis's consumer activity shows); one is
//!   SIGKILLed holding entries, its pairs move to the survivors within seconds, and every
//!   event still arrives at both recording receivers;
//! * an endpoint added with `webhook endpoints add` reaches running workers (which then
//!   deliver to it), and pause, resume and rm follow.

#[path = "../../webhook-redis/tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Recorder, queue_name};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_webhook"))
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "webhook-cli-registry-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn events_file(dir: &Path, name: &str, range: std::ops::Range<u64>) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in range {
        writeln!(f, r#"{{"id":"evt_{i}","type":"load","n":{i}}}"#).unwrap();
    }
    f.flush().unwrap();
    path
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

fn endpoints(url: &str, queue: &str, rest: &[&str]) -> String {
    run_ok(
        bin()
            .args(["endpoints", "--redis", url, "--queue", queue])
            .args(["--partitions", "4"])
            .args(rest),
    )
}

fn enqueue(url: &str, queue: &str, file: &Path) {
    run_ok(
        bin()
            .args(["enqueue", "--redis", url, "--queue", queue])
            .args(["--partitions", "4", "--json", "--file"])
            .arg(file),
    );
}

/// A worker process: killed when dropped; its stderr lines, with when they came.
struct Worker {
    child: Child,
    consumer: String,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Worker {
    fn start(url: &str, queue: &str, consumer: &str, extra: &[&str]) -> Self {
        let mut child = bin()
            .args(["worker", "--redis", url, "--queue", queue])
            .args(["--partitions", "4", "--registry", "--allow-private"])
            .args(["--consumer", consumer, "--lease", "2s"])
            .args(["--max-events", "50", "--linger", "5ms"])
            .args(["--retry-delay", "50ms", "--retry-max-delay", "500ms"])
            .args(["--json"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().unwrap();
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { return };
                l2.lock().unwrap().push((Instant::now(), line));
            }
        });
        Self {
            child,
            consumer: consumer.to_owned(),
            lines,
        }
    }

    /// When a stderr line containing `text` came (after `since`).
    fn saw(&self, text: &str, since: Instant) -> Option<Instant> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|(t, l)| *t >= since && l.contains(text))
            .map(|(t, _)| *t)
    }

    fn stderr(&self) -> String {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            use std::io::Read as _;
            let _ = o.read_to_string(&mut out);
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{}: {}", self.consumer, self.stderr());
        out
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// consumer → the pairs it says it reads, for the live spreading workers.
fn reads(url: &str, queue: &str) -> BTreeMap<String, BTreeSet<String>> {
    let out = endpoints(url, queue, &["list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["consumer"].as_str().unwrap().to_owned(),
                w["reads"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

/// Every pair read by exactly one of exactly `workers`.
fn divided(
    r: &BTreeMap<String, BTreeSet<String>>,
    workers: &[&str],
    pairs: &BTreeSet<String>,
) -> bool {
    let names: BTreeSet<&str> = r.keys().map(String::as_str).collect();
    if names != workers.iter().copied().collect() {
        return false;
    }
    let total: usize = r.values().map(BTreeSet::len).sum();
    let union: BTreeSet<&String> = r.values().flatten().collect();
    total == pairs.len() && union.len() == pairs.len() && union.into_iter().eq(pairs.iter())
}

/// Connections whose last command was `XREADGROUP`: the queue's readers.
fn readers(url: &str) -> usize {
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
    list.lines()
        .filter(|l| l.contains(" cmd=xreadgroup"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_workers_divide_the_pairs_and_take_over_those_of_a_killed_one() {
    // A server of its own: its reader connections are this test's alone.
    let Some(server) = support::RedisServer::start(false) else {
        return;
    };
    let url = server.url();
    let queue = queue_name("spread");
    let dir = tempdir("spread");
    // Slow receivers (30 ms a request), so that the killed worker dies holding entries.
    let recs = [
        Recorder::start(200, Duration::from_millis(30)).await,
        Recorder::start(200, Duration::from_millis(30)).await,
    ];
    for (i, rec) in recs.iter().enumerate() {
        endpoints(&url, &queue, &["add", &format!("e{i}"), &rec.url()]);
    }
    let pairs: BTreeSet<String> = (0..2)
        .flat_map(|e| (0..4).map(move |p| format!("e{e}/{p}")))
        .collect();
    let names = ["w0", "w1", "w2"];
    let mut workers: Vec<Worker> = names
        .iter()
        .map(|n| Worker::start(&url, &queue, n, &["--spread"]))
        .collect();

    // Divided: each of the 8 pairs read by exactly one worker.
    let start = Instant::now();
    let mut last = BTreeMap::new();
    while !divided(&last, &names, &pairs) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not divided: {last:?}\n{}",
            workers[0].stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = reads(&url, &queue);
    }
    eprintln!("divided after {:?}: {last:?}", start.elapsed());
    // And Redis agrees: one reader connection per pair (8), not one per worker and pair (24).
    let start = Instant::now();
    while readers(&url) != pairs.len() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{} reader connections for {} pairs",
            readers(&url),
            pairs.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = reads(&url, &queue);
    assert_eq!(now, last, "stable");
    assert_eq!(readers(&url), pairs.len(), "one reader per pair");

    // Events flow; one worker is killed outright while they do.
    const N: u64 = 2000;
    enqueue(&url, &queue, &events_file(&dir, "a.ndjson", 0..N));
    recs[0].wait_distinct(300, Duration::from_secs(60)).await;
    let victim = workers.remove(0);
    let killed_pairs = now[&victim.consumer].clone();
    let mut victim = victim;
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let killed_at = Instant::now();
    let survivors = ["w1", "w2"];
    let mut last = BTreeMap::new();
    while !divided(&last, &survivors, &pairs) {
        assert!(
            killed_at.elapsed() < Duration::from_secs(15),
            "not taken over: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = reads(&url, &queue);
    }
    let takeover = killed_at.elapsed();
    let start = Instant::now();
    while readers(&url) != pairs.len() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "after the kill: {} reader connections for {} pairs",
            readers(&url),
            pairs.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The survivors' own pairs did not move (rendezvous hashing moves only the dead's).
    for (w, its) in &now {
        if let Some(after) = last.get(w) {
            assert!(
                its.is_subset(after),
                "{w} kept its pairs: {its:?} -> {after:?}"
            );
        }
    }
    // When each survivor printed that it reads the dead worker's pairs.
    let printed: Vec<Duration> = workers
        .iter()
        .filter_map(|w| {
            w.saw("reading", killed_at)
                .map(|t| t.duration_since(killed_at))
        })
        .collect();
    enqueue(&url, &queue, &events_file(&dir, "b.ndjson", N..2 * N));
    let mut delivered_after = Vec::new();
    for rec in &recs {
        let got = rec
            .wait_distinct(2 * N as usize, Duration::from_secs(60))
            .await;
        assert_eq!(got, 2 * N as usize, "every event arrives at least once");
        delivered_after.push(killed_at.elapsed());
    }
    let dups: Vec<u64> = recs
        .iter()
        .map(|r| {
            r.seen
                .lock()
                .unwrap()
                .counts
                .values()
                .map(|c| u64::from(c - 1))
                .sum()
        })
        .collect();
    // A worker that stops (SIGTERM) leaves at once: the last one reads every pair within a
    // heartbeat or two, not after the 3 s of a death.
    let mut workers = workers.into_iter();
    let (first, last_one) = (workers.next().unwrap(), workers.next().unwrap());
    let stopping = Instant::now();
    let mut summaries = vec![first.stop()];
    let alone = [last_one.consumer.as_str()];
    let mut seen = BTreeMap::new();
    while !divided(&seen, &alone, &pairs) {
        assert!(
            stopping.elapsed() < Duration::from_secs(10),
            "not taken over after a stop: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        seen = reads(&url, &queue);
    }
    let handover = stopping.elapsed();
    summaries.push(last_one.stop());
    let reclaimed: u64 = summaries
        .iter()
        .filter_map(|s| serde_json::from_str::<serde_json::Value>(s.trim()).ok())
        .map(|v| v["reclaimed"].as_u64().unwrap_or(0))
        .sum();
    eprintln!(
        "spread: killed {} reading {killed_pairs:?}; pairs taken over in {takeover:?} (survivors printed it after {printed:?}); all {} events at both receivers {delivered_after:?} after the kill; duplicates {dups:?}; reclaimed {reclaimed}; after a SIGTERM (including its drain) the last worker read every pair in {handover:?}",
        victim.consumer,
        2 * N
    );
    assert!(
        takeover < Duration::from_secs(6),
        "taken over within a few seconds: {takeover:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_added_with_the_cli_reaches_running_workers() {
    let Some(r) = support::redis() else { return };
    let url = r.url();
    let queue = queue_name("cliadd");
    let dir = tempdir("cliadd");
    let spawned = Instant::now();
    let workers: Vec<Worker> = ["a", "b"]
        .iter()
        .map(|n| Worker::start(&url, &queue, n, &[]))
        .collect();
    // Both running, with an empty registry.
    let start = Instant::now();
    while !workers.iter().all(|w| w.saw("SIGTERM", spawned).is_some()) {
        assert!(start.elapsed() < Duration::from_secs(20), "workers start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rec = Recorder::start(200, Duration::ZERO).await;
    let mut times = Vec::new();
    let step =
        |what: &str, args: &[&str], line: &str, times: &mut Vec<(String, Duration, Duration)>| {
            let before = Instant::now();
            endpoints(&url, &queue, args);
            let exited = Instant::now();
            loop {
                let seen: Vec<Option<Instant>> =
                    workers.iter().map(|w| w.saw(line, before)).collect();
                if seen.iter().all(Option::is_some) {
                    // From the command's start (it connects, writes, closes and exits) to the
                    // last worker printing the change; and past the command's exit.
                    let latest = seen.into_iter().flatten().max().unwrap();
                    times.push((
                        what.to_owned(),
                        latest.duration_since(before),
                        latest.saturating_duration_since(exited),
                    ));
                    return;
                }
                assert!(
                    exited.elapsed() < Duration::from_secs(1),
                    "{what}: not on every worker within 1 s: {}",
                    workers[0].stderr()
                );
                std::thread::sleep(Duration::from_millis(2));
            }
        };
    step(
        "add",
        &[
            "add",
            "late",
            &rec.url(),
            "--secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ],
        "endpoint late added",
        &mut times,
    );
    enqueue(&url, &queue, &events_file(&dir, "a.ndjson", 0..100));
    assert_eq!(rec.wait_distinct(100, Duration::from_secs(30)).await, 100);

    step(
        "pause",
        &["pause", "late"],
        "endpoint late paused",
        &mut times,
    );
    enqueue(&url, &queue, &events_file(&dir, "b.ndjson", 100..150));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rec.distinct(), 100, "nothing delivered while paused");
    step(
        "resume",
        &["resume", "late"],
        "endpoint late resumed",
        &mut times,
    );
    assert_eq!(rec.wait_distinct(150, Duration::from_secs(30)).await, 150);

    step("rm", &["rm", "late"], "endpoint late removed", &mut times);
    let listed = endpoints(&url, &queue, &["list"]);
    assert!(listed.contains("no shared endpoint"), "{listed}");
    eprintln!(
        "`webhook endpoints` to every running worker (from the command's start, past its exit): {times:?}"
    );
    for w in workers {
        w.stop();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_endpoints_input_is_refused_with_its_exit_code() {
    let Some(r) = support::redis() else { return };
    let url = r.url();
    let queue = queue_name("clibad");
    let code = |args: &[&str]| {
        bin()
            .args(["endpoints", "--redis", &url, "--queue", &queue])
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(code(&["add", "bad name", "http://127.0.0.1:9/"]), Some(2));
    assert_eq!(code(&["add", "x", "not a url"]), Some(3));
    assert_eq!(code(&["add", "x"]), Some(2));
    assert_eq!(
        code(&["add", "x", "http://127.0.0.1:9/", "--allow-private"]),
        Some(2)
    );
    assert_eq!(code(&["pause", "nope"]), Some(2));
    assert_eq!(code(&["rm", "nope"]), Some(2));
    assert_eq!(code(&["add", "x", "http://127.0.0.1:9/"]), Some(0));
    assert_eq!(code(&["add", "x", "http://127.0.0.1:9/"]), Some(2));
    assert_eq!(
        code(&["add", "x", "http://127.0.0.1:9/", "--replace"]),
        Some(0)
    );
    // An event no worker has read: `rm --drain` gives up (exit 1) and leaves the endpoint.
    let dir = tempdir("clibad");
    enqueue(&url, &queue, &events_file(&dir, "one.ndjson", 0..1));
    assert_eq!(code(&["rm", "x", "--drain", "300ms"]), Some(1));
    assert!(
        String::from_utf8_lossy(
            &bin()
                .args(["endpoints", "--redis", &url, "--queue", &queue, "list"])
                .output()
                .unwrap()
                .stdout
        )
        .contains("x "),
        "still there"
    );
    assert_eq!(code(&["rm", "nope", "--drain", "1s"]), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
    // --registry with endpoint flags is a usage error.
    let out = bin()
        .args(["worker", "--redis", &url, "--queue", &queue, "--registry"])
        .args(["--endpoint", "http://127.0.0.1:9/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--registry"));
}
