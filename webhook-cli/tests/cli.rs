//! End-to-end tests of the `webhook` binary: real processes on 127.0.0.1 (`listen` in one,
//! `send`/`test`/`call` in another, or tiny std `TcpListener` servers), parsed output and exit
//! codes.

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_webhook"));
    c.env_remove("WEBHOOK_SECRET").env("NO_COLOR", "1");
    c
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn fixture() -> PathBuf {
    repo_file("fixtures/sysdig/elastic-integrations-test-sysdig.ndjson")
}

fn fixture_lines() -> Vec<String> {
    std::fs::read_to_string(fixture())
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn fixture_ids() -> BTreeSet<String> {
    fixture_lines()
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run webhook");
    eprintln!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("webhook-cli-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `webhook send --file FILE --endpoint URL`, signed with `SECRET` (Standard Webhooks).
fn send_signed(file: &str, url: &str) -> Command {
    let mut cmd = bin();
    cmd.args(["send", "--file", file, "--endpoint", url, "--allow-private"])
        .args(["--auth", "signature", "--secret", SECRET]);
    cmd
}

/// A `webhook listen --json --addr 127.0.0.1:0` process.
struct Listener {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Listener {
    fn start(args: &[&str]) -> Self {
        let mut child = bin()
            .args(["listen", "--addr", "127.0.0.1:0", "--json"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn listen");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (etx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = etx.send(line);
            }
        });
        let first = stderr
            .recv_timeout(Duration::from_secs(20))
            .expect("listen prints its address");
        let addr = first
            .split("://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        Self {
            child,
            addr,
            lines,
            stderr,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The next `n` JSON lines (events or refusals).
    fn json_lines(&self, n: usize) -> Vec<serde_json::Value> {
        (0..n)
            .map(|i| {
                let line = self
                    .lines
                    .recv_timeout(Duration::from_secs(20))
                    .unwrap_or_else(|_| panic!("listen printed only {i} of {n} lines"));
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
            })
            .collect()
    }

    /// Ctrl-C (SIGINT), then the exit status and the rest of stderr.
    fn interrupt(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(ok.success());
        let status = self.child.wait().unwrap();
        // The reader thread ends at EOF, after the last line.
        let rest: Vec<String> = self.stderr.iter().collect();
        (status, rest.join("\n"))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-shot HTTP/1.1 server: answers the first `n` requests with `response` and hands over
/// each request's head and body.
fn serve(n: usize, response: &'static str) -> (SocketAddr, mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..n {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let read = stream.read(&mut chunk).unwrap_or(0);
                if read == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..read]);
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < head_end + len {
                let read = stream.read(&mut chunk).unwrap_or(0);
                if read == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..read]);
            }
            let _ = stream.write_all(response.as_bytes());
            let _ = tx.send((head, buf[head_end..].to_vec()));
        }
    });
    (addr, rx)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

#[test]
fn listen_and_send_every_fixture_event_arrives_verified() {
    let listener = Listener::start(&["--secret", SECRET, "--route", "polic*=alerts"]);
    let out =
        run(send_signed(fixture().to_str().unwrap(), &listener.url()).args(["--max-events", "3"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("delivered: 8/8 event(s) in 3 request(s)"),
        "{}",
        stdout(&out)
    );

    let lines = listener.json_lines(8);
    let ids: BTreeSet<String> = lines
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, fixture_ids());
    for l in &lines {
        assert_eq!(l["kind"], "event");
        assert_eq!(l["family"], "sysdig");
        assert_eq!(l["identity"], "key #1", "{l}");
        assert!(l["message_id"].as_str().unwrap().starts_with("msg_"));
        assert!(!l["summary"].as_str().unwrap().is_empty());
        let route = if l["subject"] == "policy" {
            "alerts"
        } else {
            "-"
        };
        assert_eq!(l["route"], route, "{l}");
    }
    let (status, err) = listener.interrupt();
    assert!(status.success(), "{status:?}");
    assert!(
        err.contains("totals: 3 request(s), 3 accepted with 8 event(s), 0 refused"),
        "{err}"
    );
}

#[test]
fn send_from_stdin_streams_each_line_as_it_arrives() {
    let listener = Listener::start(&["--secret", SECRET]);
    let mut child = send_signed("-", &listener.url())
        .args(["--linger", "10ms"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines = fixture_lines();
    // Each event arrives while stdin is still open: nothing waits for the end of the input.
    for (i, line) in lines.iter().take(3).enumerate() {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let got = &listener.json_lines(1)[0];
        assert_eq!(got["kind"], "event", "event {i}: {got}");
    }
    // A bad line is skipped and reported; reading goes on.
    writeln!(stdin, "this is not json").unwrap();
    for line in &lines[3..] {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let n = lines.len();
    assert!(
        stdout(&out).contains(&format!("delivered: {n}/{n} event(s)")),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("1 input line(s) skipped"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("skipped line 4:"), "{}", stderr(&out));
    let ids: BTreeSet<String> = listener
        .json_lines(n - 3)
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), n - 3);
    let (status, err) = listener.interrupt();
    assert!(status.success());
    assert!(
        err.contains(&format!("accepted with {n} event(s), 0 refused")),
        "{err}"
    );
}

#[test]
fn wrong_secret_is_refused_with_its_reason() {
    let listener = Listener::start(&["--secret", SECRET]);
    let out = run(bin().args([
        "send",
        "-f",
        fixture().to_str().unwrap(),
        "--endpoint",
        &listener.url(),
        "--allow-private",
        "--secret",
        "not-the-secret",
        "--retries",
        "0",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("8 event(s): rejected by the endpoint with status 401"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("hint: the endpoint refused the credentials"));
    let refused = &listener.json_lines(1)[0];
    assert_eq!(refused["kind"], "refused");
    assert_eq!(refused["status"], 401);
    assert_eq!(refused["error"], "unauthorized");
    assert_eq!(refused["reason"], "no signature matches any live key");

    // An unsigned request: the reason names the missing header.
    let out = run(bin().args(["test", "--endpoint", &listener.url(), "--allow-private"]));
    assert_eq!(out.status.code(), Some(5));
    let refused = &listener.json_lines(1)[0];
    assert_eq!(refused["reason"], "missing header `webhook-signature`");
}

#[test]
fn send_to_a_closed_port_dead_letters_every_event() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = TempDir::new("dead-letter");
    let dead = dir.0.join("failed.ndjson");
    let out = run(bin().args([
        "send",
        "-f",
        fixture().to_str().unwrap(),
        "--endpoint",
        &format!("http://127.0.0.1:{port}/"),
        "--allow-private",
        "--retries",
        "1",
        "--retry-delay",
        "50ms",
        "--dead-letter",
        dead.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("NOT all delivered: 0/8"), "{text}");
    assert!(
        text.contains("retries exhausted after 2 attempts; last error: connection failed"),
        "{text}"
    );
    assert!(
        stderr(&out).contains("is the receiver running"),
        "{}",
        stderr(&out)
    );
    let written: Vec<String> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let mut expected = fixture_lines();
    let mut got = written.clone();
    expected.sort();
    got.sort();
    assert_eq!(
        got, expected,
        "the dead-letter file holds every event, byte for byte"
    );

    // Without --allow-private the SSRF guard refuses loopback before connecting.
    let out = run(bin().args(["test", "--endpoint", &format!("http://127.0.0.1:{port}/")]));
    assert_eq!(out.status.code(), Some(6));
    assert!(stderr(&out).contains("--allow-private"), "{}", stderr(&out));
}

#[test]
fn verify_explains_a_tampered_body() {
    let dir = TempDir::new("verify");
    let headers = dir.0.join("headers.txt");
    let out = run(bin().args([
        "sign",
        "--secret",
        SECRET,
        "--body",
        r#"{"test": 2432232314}"#,
        "--id",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "--timestamp",
        "1614265330",
    ]));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    );
    std::fs::write(&headers, out.stdout).unwrap();
    let verify = |body: &str, now: &str| {
        run(bin().args([
            "verify",
            "--secret",
            SECRET,
            "--headers",
            headers.to_str().unwrap(),
            "--body",
            body,
            "--now",
            now,
        ]))
    };

    let ok = verify(r#"{"test": 2432232314}"#, "1614265340");
    assert_eq!(ok.status.code(), Some(0));
    assert!(stdout(&ok).contains("10 s old, within the 300 s allowed"));
    assert!(stdout(&ok).contains("VALID: signed by key #1"));

    let tampered = verify(r#"{"test": 2432232315}"#, "1614265340");
    assert_eq!(tampered.status.code(), Some(1));
    let text = stdout(&tampered);
    assert!(
        text.contains("entry 1 (v1,g0hM9SsE+OTPJTGt/tmI…): matches none of the 1 key(s)"),
        "{text}"
    );
    assert!(
        text.contains("INVALID: no signature matches any live key"),
        "{text}"
    );
    assert!(
        text.contains("the body (20 bytes) or the id/timestamp headers were changed after signing"),
        "{text}"
    );
    assert!(!text.contains("MfKQ9r8G"), "the secret is never printed");

    let newline = verify("{\"test\": 2432232314}\n", "1614265340");
    assert_eq!(newline.status.code(), Some(1));
    assert!(stdout(&newline).contains("matches this body without its trailing newline"));

    let late = verify(r#"{"test": 2432232314}"#, "1614266000");
    assert_eq!(late.status.code(), Some(1));
    let text = stdout(&late);
    assert!(
        text.contains("670 s old, more than the 300 s allowed (skew -670 s)"),
        "{text}"
    );
    assert!(
        text.contains("the signature itself is correct (key #1)"),
        "{text}"
    );
}

#[test]
fn config_reads_the_sysdig_agent_yaml_as_is() {
    let (addr, requests) = serve(
        1,
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
    let config = repo_file("webhook-cli/examples/dragent-webhook.yaml");
    let out = run(bin().args([
        "send",
        "-f",
        fixture().to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--endpoint",
        &format!("http://{addr}/sysdig"),
        "--allow-private",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(summary["events"], 8);
    // The integration's channels (SECURE_EVENTS_POLICIES, ACTIVITY_AUDIT) do not carry the
    // `audittrail` event: it is selected by no endpoint, and not a failure.
    assert_eq!(summary["delivered"], 7);
    assert_eq!(summary["filtered"], 1);
    assert_eq!(summary["undelivered"], 0);
    assert_eq!(summary["requests"], 1);
    let (head, body) = requests.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(head.starts_with("POST /sysdig HTTP/1.1"), "{head}");
    assert_eq!(header(&head, "content-type"), Some("application/x-ndjson"));
    assert_eq!(header(&head, "x-tenant"), Some("blue"));
    let lines: Vec<serde_json::Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert!(lines.iter().all(|l| l["type"] != "audittrail"));
    assert_eq!(
        lines[0]["timestamp"], 1_720_031_001_639_u64,
        "timestampFormat: milliseconds"
    );

    // The captured request verifies with the secret from the YAML.
    let dir = TempDir::new("config");
    let body_file = dir.0.join("body");
    let head_file = dir.0.join("head");
    std::fs::write(&body_file, &body).unwrap();
    std::fs::write(&head_file, &head).unwrap();
    let out = run(bin().args([
        "verify",
        "--secret",
        SECRET,
        "--headers",
        head_file.to_str().unwrap(),
        "--file",
        body_file.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(0));

    // A misspelt key is named.
    let bad = dir.0.join("bad.yaml");
    std::fs::write(
        &bad,
        "endpoint: https://siem.example.com/hook\ntimestampformat: seconds\n",
    )
    .unwrap();
    let out = run(bin().args(["test", "--config", bad.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("timestampformat"));
    assert!(stderr(&out).contains("hint:"));
}

/// Events of every request a `serve` receiver got within a few seconds, by `type`.
fn received_types(
    requests: &mpsc::Receiver<(String, Vec<u8>)>,
    expected: usize,
) -> (Vec<String>, Vec<String>) {
    let (mut types, mut heads) = (Vec::new(), Vec::new());
    while types.len() < expected {
        let Ok((head, body)) = requests.recv_timeout(Duration::from_secs(20)) else {
            break;
        };
        let events: Vec<serde_json::Value> =
            if header(&head, "content-type") == Some("application/x-ndjson") {
                body.split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(|l| serde_json::from_slice(l).unwrap())
                    .collect()
            } else {
                serde_json::from_slice(&body).unwrap()
            };
        types.extend(
            events
                .iter()
                .map(|e| e["type"].as_str().unwrap().to_owned()),
        );
        heads.push(head);
    }
    // Nothing more arrives.
    if let Ok((head, _)) = requests.recv_timeout(Duration::from_millis(300)) {
        panic!("unexpected request: {head}");
    }
    types.sort();
    (types, heads)
}

#[test]
fn config_with_several_integrations_routes_each_channel_to_its_endpoint() {
    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    let (policies_addr, policies) = serve(10, OK);
    let (audit_addr, audit) = serve(10, OK);
    let dir = TempDir::new("integrations");
    let config = dir.0.join("dragent.yaml");
    std::fs::write(
        &config,
        format!(
            "local_forwarding:
  enabled: true
  integrations:
    - type: WEBHOOK
      channels: [SECURE_EVENTS_POLICIES]
      configuration:
        endpoint: http://{policies_addr}/policies
        auth: SIGNATURE
        secret: {SECRET}
    - type: WEBHOOK
      channels: [ACTIVITY_AUDIT]
      configuration:
        endpoint: http://{audit_addr}/audit
        auth: BEARER_TOKEN
        secret: audit-t0ken
        output: ndjson
        headers:
          - key: X-Tenant
            value: blue
"
        ),
    )
    .unwrap();
    let out = run(bin().args([
        "send",
        "-f",
        fixture().to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--allow-private",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(summary["events"], 8);
    assert_eq!(summary["delivered"], 7);
    assert_eq!(summary["filtered"], 1, "audittrail is in neither channel");
    assert_eq!(summary["undelivered"], 0);

    let mut want_policies = Vec::new();
    let mut want_audit = Vec::new();
    for line in fixture_lines() {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let kind = v["type"].as_str().unwrap().to_owned();
        match kind.as_str() {
            "policy" => want_policies.push(kind),
            "command" | "connection" | "fileaccess" | "kubernetes" => want_audit.push(kind),
            _ => {}
        }
    }
    want_policies.sort();
    want_audit.sort();
    assert!(!want_policies.is_empty() && !want_audit.is_empty());

    let (got, heads) = received_types(&policies, want_policies.len());
    assert_eq!(got, want_policies);
    assert!(heads.iter().all(|h| h.starts_with("POST /policies ")
        && header(h, "webhook-signature").is_some()
        && header(h, "content-type") == Some("application/json")));
    let (got, heads) = received_types(&audit, want_audit.len());
    assert_eq!(got, want_audit);
    assert!(heads.iter().all(|h| h.starts_with("POST /audit ")
        && header(h, "authorization") == Some("Bearer audit-t0ken")
        && header(h, "x-tenant") == Some("blue")));

    // One-endpoint flags are refused with several endpoints.
    let out = run(bin().args([
        "send",
        "-f",
        fixture().to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--endpoint",
        "http://127.0.0.1:9/x",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--endpoint"), "{}", stderr(&out));

    // A registry snapshot file (detected by its `endpoints` key).
    let (addr, requests) = serve(10, OK);
    let snapshot = dir.0.join("registry.json");
    std::fs::write(
        &snapshot,
        format!(
            r#"{{"version": 1,
                "event_sets": [{{"name": "runtime", "types": ["policy"]}}],
                "endpoints": [{{"name": "acme", "url": "http://{addr}/acme",
                                "event_sets": ["runtime"],
                                "auth": {{"type": "header", "name": "X-Acme-Token", "value": "t0k"}}}}]}}"#
        ),
    )
    .unwrap();
    let out = run(bin().args([
        "send",
        "-f",
        fixture().to_str().unwrap(),
        "--config",
        snapshot.to_str().unwrap(),
        "--allow-private",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(summary["delivered"], want_policies.len());
    let (got, heads) = received_types(&requests, want_policies.len());
    assert_eq!(got, want_policies);
    assert!(
        heads
            .iter()
            .all(|h| header(h, "x-acme-token") == Some("t0k"))
    );
}

#[test]
fn test_with_several_integrations_tests_each_one() {
    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const DOWN: &str =
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    let (up_addr, up) = serve(1, OK);
    let (down_addr, down) = serve(1, DOWN);
    let dir = TempDir::new("test-integrations");
    let config = dir.0.join("dragent.yaml");
    std::fs::write(
        &config,
        format!(
            "local_forwarding:
  integrations:
    - type: WEBHOOK
      channels: [SECURE_EVENTS_POLICIES]
      configuration:
        endpoint: http://{up_addr}/policies
        auth: SIGNATURE
        secret: {SECRET}
    - type: WEBHOOK
      channels: [ACTIVITY_AUDIT]
      configuration:
        endpoint: http://{down_addr}/audit
        auth: BEARER_TOKEN
        secret: audit-t0ken
"
        ),
    )
    .unwrap();
    let out = run(bin().args([
        "test",
        "--config",
        config.to_str().unwrap(),
        "--allow-private",
    ]));
    assert_eq!(out.status.code(), Some(5), "one integration fails");
    let text = stdout(&out);
    assert!(text.contains("/policies → 200 OK in "), "{text}");
    assert!(
        text.contains("/audit → 500 Internal Server Error in "),
        "{text}"
    );
    assert!(
        stderr(&out).contains("1 of 2 integration(s) failed"),
        "{}",
        stderr(&out)
    );
    // Each got its test event, signed or authorized as its integration says.
    let (head, body) = up.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(header(&head, "webhook-signature").is_some());
    let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(sent[0]["type"], "webhook.test");
    let (head, _) = down.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(header(&head, "authorization"), Some("Bearer audit-t0ken"));
    // A flag describing one endpoint is refused with several.
    let out = run(bin().args([
        "test",
        "--config",
        config.to_str().unwrap(),
        "--endpoint",
        "http://127.0.0.1:9/x",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--endpoint describes one endpoint"));
}

#[test]
fn test_against_a_503_endpoint() {
    let (addr, requests) = serve(
        1,
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 7\r\ncontent-type: text/plain\r\n\
         content-length: 59\r\nconnection: close\r\n\r\n\
         down for maintenance, back soon; this tail is cut off here.",
    );
    let out = run(bin().args([
        "test",
        "--endpoint",
        &format!("http://{addr}/hook"),
        "--allow-private",
        "--auth",
        "bearer",
        "--secret",
        "t0ken",
        "--show-body",
        "20",
    ]));
    assert_eq!(out.status.code(), Some(5));
    let text = stdout(&out);
    assert!(text.contains("503 Service Unavailable in "), "{text}");
    assert!(text.contains("retry-after: 7"), "{text}");
    assert!(text.contains("\ndown for maintenance…\n"), "{text}");
    assert!(
        text.contains("(body truncated: 20 of 59 bytes shown)"),
        "{text}"
    );
    assert!(stderr(&out).contains("error: the endpoint answered 503"));
    let (head, body) = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(header(&head, "authorization"), Some("Bearer t0ken"));
    let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(sent[0]["type"], "webhook.test");
}

#[test]
fn call_renders_templates_and_explains_the_decision() {
    let (addr, requests) = serve(
        2,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 42\r\n\
         connection: close\r\n\r\n{\"data\":{\"status\":\"active\",\"risk\":\"high\"}}",
    );
    let base = format!("http://{addr}/check?user=%username%");
    let call = |rules: &[&str]| {
        run(bin()
            .args([
                "call",
                "--url",
                &base,
                "-p",
                "username=ana maria",
                "--allow-private",
            ])
            .args(rules))
    };
    let allow = call(&["--allow-if", "data.status=active", "--basic", "svc:s3cret"]);
    assert_eq!(allow.status.code(), Some(0));
    assert!(stdout(&allow).contains("ALLOW: rule 1 (allow if data.status = \"active\") holds"));
    let (head, _) = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        head.starts_with("GET /check?user=ana%20maria HTTP/1.1"),
        "{head}"
    );
    assert_eq!(
        header(&head, "authorization"),
        Some("Basic c3ZjOnMzY3JldA==")
    );

    let deny = call(&["--deny-if", "data.risk=high", "--allow-if", "data.status"]);
    assert_eq!(deny.status.code(), Some(1));
    assert!(stdout(&deny).contains("DENY: rule 1 (deny if data.risk = \"high\") holds"));

    let missing = run(bin().args(["call", "--url", &base, "--allow-private"]));
    assert_eq!(missing.status.code(), Some(3));
    assert!(
        stderr(&missing).contains("username"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn help_is_written_for_newcomers() {
    let out = run(bin().arg("--help"));
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("Exit codes:"));
    for sub in ["listen", "send", "test", "sign", "verify", "call"] {
        let out = run(bin().args([sub, "--help"]));
        assert_eq!(out.status.code(), Some(0));
        let text = stdout(&out);
        assert!(text.contains("Examples:"), "{sub}");
        assert!(text.contains(&format!("webhook {sub}")), "{sub}");
    }
    let out = run(bin().args([
        "send",
        "-f",
        "x",
        "--endpoint",
        "http://h/",
        "-H",
        "Content-Type: text/plain",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is reserved"));
}

/// Certificates made with rcgen: a server CA and a leaf for 127.0.0.1, a client CA and leaf.
struct Pki {
    ca_pem: String,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: Vec<u8>,
    server_cert_pem: String,
    server_key_pem: String,
    client_ca: rustls::pki_types::CertificateDer<'static>,
    client_ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

fn issuer(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap()
}

impl Pki {
    fn new() -> Self {
        let server_ca = issuer("cli test server CA");
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&server_key, &server_ca)
            .unwrap();
        let client_ca = issuer("cli test client CA");
        let client_key = rcgen::KeyPair::generate().unwrap();
        let mut client_params =
            rcgen::CertificateParams::new(vec!["client.test".to_owned()]).unwrap();
        client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &client_ca).unwrap();
        Self {
            ca_pem: server_ca.pem(),
            server_chain: vec![server.der().clone()],
            server_key: server_key.serialize_der(),
            server_cert_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_ca: client_ca.der().clone(),
            client_ca_pem: client_ca.pem(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }

    fn server_config(&self, require_client_cert: bool) -> std::sync::Arc<rustls::ServerConfig> {
        use std::sync::Arc;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.client_ca.clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(self.server_key.clone().into());
        let mut config = builder
            .with_single_cert(self.server_chain.clone(), key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A blocking HTTPS server on 127.0.0.1 answering `200 OK` to every request whose TLS handshake
/// succeeds (failed handshakes are counted out and the next connection is served).
fn serve_tls(config: std::sync::Arc<rustls::ServerConfig>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut tcp) = stream else { return };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
            let Ok(mut conn) = rustls::ServerConnection::new(std::sync::Arc::clone(&config)) else {
                continue;
            };
            let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let complete = loop {
                match tls.read(&mut chunk) {
                    Ok(0) | Err(_) => break false,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= i + 4 + len {
                        break true;
                    }
                }
            };
            if complete {
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        }
    });
    addr
}

#[test]
fn tls_needs_the_ca_or_insecure_and_mtls_presents_the_client_certificate() {
    let pki = Pki::new();
    let dir = TempDir::new("tls");
    let ca = dir.0.join("ca.pem");
    let cert = dir.0.join("client.pem");
    let key = dir.0.join("client.key");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    std::fs::write(&cert, &pki.client_cert_pem).unwrap();
    std::fs::write(&key, &pki.client_key_pem).unwrap();
    let ca = ca.to_str().unwrap();

    let url = format!("https://{}/in", serve_tls(pki.server_config(false)));
    let test = |extra: &[&str]| {
        run(bin()
            .args(["test", "--endpoint", &url, "--allow-private"])
            .args(extra))
    };
    let untrusted = test(&[]);
    assert_eq!(untrusted.status.code(), Some(6));
    assert!(
        stderr(&untrusted).contains("TLS handshake failed"),
        "{}",
        stderr(&untrusted)
    );
    assert!(
        stderr(&untrusted).contains("--ca"),
        "{}",
        stderr(&untrusted)
    );
    assert_eq!(test(&["--ca", ca]).status.code(), Some(0));
    assert_eq!(test(&["--insecure"]).status.code(), Some(0));

    let url = format!("https://{}/in", serve_tls(pki.server_config(true)));
    let mtls = |extra: &[&str]| {
        run(bin()
            .args(["test", "--endpoint", &url, "--allow-private", "--ca", ca])
            .args(extra))
    };
    let anonymous = mtls(&[]);
    assert_eq!(anonymous.status.code(), Some(6), "no client certificate");
    assert!(
        stderr(&anonymous).contains("--cert FILE --key FILE"),
        "{}",
        stderr(&anonymous)
    );
    let ok = mtls(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(ok.status.code(), Some(0));
    assert!(stdout(&ok).contains("200 OK"));
    assert!(
        stdout(&ok).contains("client certificate"),
        "{}",
        stdout(&ok)
    );

    let missing = mtls(&[
        "--cert",
        "/nonexistent/c.pem",
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(
        stderr(&missing).contains("/nonexistent/c.pem"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn listen_serves_https_and_mutual_tls() {
    let pki = Pki::new();
    let dir = TempDir::new("listen-tls");
    let file = |name: &str, content: &str| {
        let p = dir.0.join(name);
        std::fs::write(&p, content).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let (server_cert, server_key) = (
        file("server.pem", &pki.server_cert_pem),
        file("server.key", &pki.server_key_pem),
    );
    let client_ca = file("client-ca.pem", &pki.client_ca_pem);
    let ca = file("ca.pem", &pki.ca_pem);
    let (cert, key) = (
        file("client.pem", &pki.client_cert_pem),
        file("client.key", &pki.client_key_pem),
    );

    // `listen --no-auth` over TLS (plus `extra`), and `webhook test` against it (plus its own
    // extra flags).
    let start = |extra: &[&str]| {
        let args = [
            "--no-auth",
            "--tls-cert",
            &server_cert,
            "--tls-key",
            &server_key,
        ];
        let listener = Listener::start(&[&args[..], extra].concat());
        let url = format!("https://{}/", listener.addr);
        (listener, url)
    };
    let test = |url: &str, extra: &[&str]| {
        run(bin()
            .args(["test", "--endpoint", url, "--allow-private"])
            .args(extra))
    };

    // HTTPS: the test event arrives over TLS when the sender trusts the CA.
    let (listener, url) = start(&[]);
    assert_eq!(
        test(&url, &[]).status.code(),
        Some(6),
        "server CA not trusted"
    );
    let ok = test(&url, &["--ca", &ca]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let line = &listener.json_lines(1)[0];
    assert_eq!(line["subject"], "webhook.test", "{line}");
    let (status, err) = listener.interrupt();
    assert!(status.success());
    assert!(err.contains("TLS handshake failed"), "{err}");

    // Mutual TLS: only a sender with a certificate from the client CA gets through.
    let (listener, url) = start(&["--client-ca", &client_ca]);
    let anonymous = test(&url, &["--ca", &ca]);
    assert_eq!(anonymous.status.code(), Some(6), "no client certificate");
    let ok = test(&url, &["--ca", &ca, "--cert", &cert, "--key", &key]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(listener.json_lines(1)[0]["subject"], "webhook.test");
    let (status, err) = listener.interrupt();
    assert!(status.success());
    assert!(err.contains("peer sent no certificates"), "{err}");
    assert!(err.contains("1 accepted"), "{err}");

    // A key file that is not a key: a configuration error naming the input, exit code 3.
    let out = run(bin().args([
        "listen",
        "--no-auth",
        "--addr",
        "127.0.0.1:0",
        "--tls-cert",
        &server_cert,
        "--tls-key",
        &server_cert,
    ]));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("server key"), "{}", stderr(&out));
    // --tls-key without --tls-cert is a usage error.
    let out = run(bin().args(["listen", "--no-auth", "--tls-key", &server_key]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn ctrl_c_during_send_dead_letters_what_was_not_delivered() {
    // A server that accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            match s {
                Ok(s) => held.push(s),
                Err(_) => return,
            }
        }
    });
    let dir = TempDir::new("interrupt");
    let dead = dir.0.join("left.ndjson");
    let mut child = bin()
        .args([
            "send",
            "-f",
            fixture().to_str().unwrap(),
            "--endpoint",
            &format!("http://{addr}/"),
        ])
        .args([
            "--allow-private",
            "--drain",
            "200ms",
            "--dead-letter",
            dead.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first stderr line is printed once the Ctrl-C handler is installed.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(first.starts_with("sending 8 event(s)"), "{first}");
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("8 event(s): interrupted (Ctrl-C) before it was delivered"),
        "{text}"
    );
    assert!(
        rest.contains("interrupted: delivering what is in flight"),
        "{rest}"
    );
    assert_eq!(std::fs::read_to_string(&dead).unwrap().lines().count(), 8);
}

fn raw_request(addr: SocketAddr, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn listen_prints_every_refusal_and_accepts_other_families() {
    let listener = Listener::start(&["--no-auth", "--route", "Login*=auth"]);
    let body = r#"{"subject":"Login Failure","body":"Login Failure for john.doe"}"#;
    let ok = raw_request(
        listener.addr,
        &format!(
            "POST /in HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let bad = raw_request(
        listener.addr,
        "POST /in HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 6\r\nconnection: close\r\n\r\n{\"oops",
    );
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    let get = raw_request(
        listener.addr,
        "GET /in HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(get.starts_with("HTTP/1.1 405"), "{get}");

    let lines = listener.json_lines(3);
    assert_eq!(lines[0]["kind"], "event");
    assert_eq!(lines[0]["family"], "connectsecure");
    assert_eq!(lines[0]["route"], "auth");
    assert_eq!(lines[0]["subject"], "Login Failure");
    assert_eq!(lines[0]["identity"], "anonymous");
    assert_eq!(lines[1]["status"], 400);
    assert_eq!(lines[1]["error"], "malformed");
    assert_eq!(
        lines[1]["reason"],
        "malformed body at line 1 column 6: EOF while parsing a string"
    );
    assert_eq!(lines[1]["request"], "POST /in");
    assert_eq!(lines[2]["status"], 405);
    assert_eq!(lines[2]["request"], "GET /in");
    let (status, err) = listener.interrupt();
    assert!(status.success());
    assert!(
        err.contains("3 request(s), 1 accepted with 1 event(s), 2 refused (400×1, 405×1)"),
        "{err}"
    );
}

#[path = "cli/presets.rs"]
mod presets;
#[path = "cli/relay.rs"]
mod relay;
// ---- send --outbox and `webhook outbox` ---------------------------------------------------

/// A free port on 127.0.0.1 with nothing listening (a receiver that is down).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A `webhook listen --no-auth --json` on a given port (a receiver coming back up).
fn listen_on(port: u16) -> Listener {
    let mut child = bin()
        .args(["listen", "--no-auth", "--json", "--addr"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn listen");
    let (tx, lines) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (etx, stderr) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = etx.send(line);
        }
    });
    stderr
        .recv_timeout(Duration::from_secs(20))
        .expect("listen prints its address");
    Listener {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        lines,
        stderr,
    }
}

/// `webhook outbox ARGS...` on `dir`.
fn outbox(sub: &str, dir: &Path, extra: &[&str]) -> Output {
    run(bin().args(["outbox", sub]).arg(dir).args(extra))
}

/// Reads `child`'s stderr until a line starting with `prefix`, returning every line read.
fn stderr_until(err: &mut impl std::io::BufRead, prefix: &str) -> String {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = err.read_line(&mut line).unwrap();
        assert!(n > 0, "stderr ended before {prefix:?}:\n{seen}");
        seen.push_str(&line);
        if line.starts_with(prefix) {
            return seen;
        }
    }
}

#[test]
fn send_outbox_killed_while_the_receiver_is_down_then_resumed_delivers_every_event() {
    let port = closed_port();
    let dir = TempDir::new("outbox-kill");
    let ob = dir.0.join("outbox");
    let url = format!("http://127.0.0.1:{port}/");
    // The receiver is down: every attempt fails; the events wait in the outbox, retrying.
    let mut child = bin()
        .args([
            "send",
            "-f",
            fixture().to_str().unwrap(),
            "--endpoint",
            &url,
        ])
        .args(["--allow-private", "--retry-delay", "100ms", "--outbox"])
        .arg(&ob)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    stderr_until(&mut err, "stored: every event is in the outbox");
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL: nothing runs on the way out
    let _ = child.wait();

    // Offline, the outbox shows them all pending, for the saved endpoint.
    let out = outbox("status", &ob, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let st: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(st["pending"], 8, "{st}");
    assert_eq!(st["endpoints"][0]["url"], url.as_str(), "{st}");
    assert_eq!(st["dead_letters"], 0, "{st}");

    // The receiver is back; `send --outbox DIR` without --file nor --endpoint delivers them to
    // the endpoint saved in the outbox.
    let listener = listen_on(port);
    let out = run(bin().args(["send", "--allow-private", "--outbox"]).arg(&ob));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("delivered: 8/8 event(s) held in the outbox"),
        "{}",
        stdout(&out)
    );
    let ids: BTreeSet<String> = listener
        .json_lines(8)
        .iter()
        .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids, fixture_ids(), "every id at least once");
    let out = outbox("status", &ob, &["--json"]);
    let st: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(st["pending"], 0, "{st}");
}

#[test]
fn retry_for_gives_up_after_the_window_into_the_outbox_dead_letters() {
    let port = closed_port();
    let dir = TempDir::new("outbox-retry-for");
    let ob = dir.0.join("outbox");
    let started = std::time::Instant::now();
    let out = run(bin()
        .args(["send", "-f", fixture().to_str().unwrap(), "--endpoint"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .args([
            "--allow-private",
            "--retry-for",
            "2s",
            "--retry-delay",
            "100ms",
            // Small delays: the give-up (when the next jittered attempt would fall past the
            // window) lands within 200 ms of its end, not up to a long delay before it.
            "--retry-max-delay",
            "200ms",
        ])
        .arg("--outbox")
        .arg(&ob));
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "gave up after {took:?}"
    );
    let text = stdout(&out);
    assert!(text.contains("NOT all delivered: 0/8"), "{text}");
    assert!(
        text.contains("8 event(s) given up, kept as dead letters"),
        "{text}"
    );
    let out = outbox("status", &ob, &["--json"]);
    let st: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        (st["pending"].as_u64(), st["dead_letters"].as_u64()),
        (Some(0), Some(8)),
        "{st}"
    );
}

#[test]
fn outbox_commands_list_show_redeliver_and_purge_dead_letters() {
    let (addr, _requests) = serve(
        100,
        "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
    let dir = TempDir::new("outbox-dead");
    let ob = dir.0.join("outbox");
    let out = run(bin()
        .args(["send", "-f", fixture().to_str().unwrap(), "--endpoint"])
        .arg(format!("http://{addr}/"))
        .args(["--allow-private", "--max-events", "4", "--outbox"])
        .arg(&ob));
    assert_eq!(out.status.code(), Some(1));

    let out = outbox("status", &ob, &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("dead letters  8"), "{text}");
    assert!(text.contains("pending       0"), "{text}");

    // list: one line each; filters.
    let out = outbox("list", &ob, &[]);
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 8, "{lines:?}");
    assert!(lines[0].starts_with("#1 "), "{}", lines[0]);
    assert!(
        lines[0].contains("endpoint") && lines[0].contains("400"),
        "{}",
        lines[0]
    );
    let out = outbox("list", &ob, &["--json", "--limit", "3", "--since", "1h"]);
    let json: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(json.len(), 3);
    assert!(fixture_ids().contains(json[0]["event_id"].as_str().unwrap()));
    let out = outbox("list", &ob, &["--until", "1h"]);
    assert!(
        stdout(&out).contains("no dead letters match"),
        "{}",
        stdout(&out)
    );
    let out = outbox("list", &ob, &["--endpoint", "other"]);
    assert!(stdout(&out).contains("no dead letters match"));
    let out = outbox("list", &ob, &["--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("RFC 3339"), "{}", stderr(&out));

    // show: the event and its attempts.
    let out = outbox("show", &ob, &["1", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let d: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(d["event"]["id"], d["event_id"], "{d}");
    assert_eq!(d["attempt_log"][0]["status"], 400, "{d}");
    assert!(d["attempt_log"][0]["latency_ms"].is_number(), "{d}");
    let out = outbox("show", &ob, &["1"]);
    assert!(stdout(&out).contains("event JSON:"), "{}", stdout(&out));
    let out = outbox("show", &ob, &["99"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no dead letter #99"),
        "{}",
        stderr(&out)
    );

    // redeliver: refused without a selector; by id it goes back to the pending events.
    let out = outbox("redeliver", &ob, &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = outbox("redeliver", &ob, &["--id", "1", "--id", "2"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("redelivered 2 dead letter(s)"),
        "{}",
        stdout(&out)
    );
    let out = outbox("status", &ob, &["--json"]);
    let st: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        (st["pending"].as_u64(), st["dead_letters"].as_u64()),
        (Some(2), Some(6)),
        "{st}"
    );

    // purge: refused without a selector; --endpoint takes the rest.
    assert_eq!(outbox("purge", &ob, &[]).status.code(), Some(2));
    let out = outbox("purge", &ob, &["--endpoint", "endpoint", "--json"]);
    let p: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        (p["purged"].as_u64(), p["dead_letters"].as_u64()),
        (Some(6), Some(0)),
        "{p}"
    );

    // A directory that is not an outbox is not created.
    let missing = dir.0.join("nope");
    let out = outbox("status", &missing, &[]);
    assert_eq!(out.status.code(), Some(4));
    assert!(!missing.exists());
}

#[test]
fn an_outbox_in_use_is_refused_naming_the_pid_and_ctrl_c_keeps_the_events() {
    // A server that accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            match s {
                Ok(s) => held.push(s),
                Err(_) => return,
            }
        }
    });
    let dir = TempDir::new("outbox-locked");
    let ob = dir.0.join("outbox");
    let mut child = bin()
        .args(["send", "-f", fixture().to_str().unwrap(), "--endpoint"])
        .arg(format!("http://{addr}/"))
        .args(["--allow-private", "--outbox"])
        .arg(&ob)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    stderr_until(&mut err, "stored: every event is in the outbox");
    let pid = child.id().to_string();

    for sub in ["status", "list"] {
        let out = outbox(sub, &ob, &[]);
        assert_eq!(out.status.code(), Some(7), "{sub}");
        let text = stderr(&out);
        assert!(text.contains(&format!("in use by process {pid}")), "{text}");
    }
    // A second sender over the same outbox is refused the same way.
    let out = run(bin().args(["send", "--allow-private", "--outbox"]).arg(&ob));
    assert_eq!(out.status.code(), Some(7));

    // Ctrl-C: the run stops at once and says what stays in the outbox.
    let started = std::time::Instant::now();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("8 undelivered event(s) remain in the outbox"),
        "{text}"
    );
    assert!(
        text.contains("resume with: webhook send --outbox"),
        "{text}"
    );
    assert!(
        rest.contains("undelivered events stay in the outbox"),
        "{rest}"
    );
    let out = outbox("status", &ob, &["--json"]);
    let st: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(st["pending"], 8, "{st}");
}
