//! The SDK's durable outbox (`webhook_sender::outbox`, a hand-written segmented log) side by
//! side with redb and fjall in the outbox's shape, in one run with alternating rounds.
//!
//! Per round, per group size (1,024 and 64 events per durable commit), per engine in an order
//! rotated each round (SDK, redb, fjall, raw disk; then redb, fjall, raw disk, SDK; …):
//!
//! 1. **Append** (in a child process of this binary, a fresh directory): N events of a 1,024-byte
//!    JSON body, one durable commit per group:
//!    * SDK: `Outbox::append(&["siem"], &event)` (buffered by the outbox, written out at 1 MiB or
//!      within 2 ms), `Outbox::flush()` (write out + fdatasync) after each group
//!      (`Durability::Sync`);
//!    * redb: one write transaction per group, `Durability::Immediate`, key = seq (u64);
//!    * fjall: one `WriteBatch` per group, then `Database::persist(PersistMode::SyncData)`;
//!    * raw disk: the same records concatenated, one `write` per group (~1 MiB or ~64 KiB) and
//!      one `fdatasync` after it: the physical limit for this commit size.
//!
//!    The crates store a record holding what the SDK's frame holds (wall-clock ms, endpoint
//!    names, event id, type, timestamp, body), encoded in the timed loop, as the SDK does. The
//!    child then exits without closing the store (`process::exit`: no destructors), which
//!    leaves the files as a `kill -9` after the last commit would.
//!
//!    Reported: events/s, and the CPU time (user + system, all threads, from `getrusage`) of the
//!    append phase per event, which the disk's bimodal latency does not move much.
//! 2. **Reopen after the kill** (this process): open + the number of pending events (SDK:
//!    `Outbox::open` + `recovery().pending`; redb: `Database::create` + `len()`; fjall:
//!    `Database::open` + `Keyspace::len()`), checked against N.
//! 3. **Close** (drop) and **reopen after a clean close**, timed the same way.
//!
//! The settle/delete phase is not measured here: the SDK has no public settle API without a
//! sender; settlement is measured end to end, with delivery, in the SDK's own benches (the
//! workspace's `webhook-benches`, issue 15).
//!
//! ```sh
//! cargo run --release --manifest-path benches/store-compare/Cargo.toml -- --rounds 5
//! ```
//! Options: `--rounds R` (5), `--events N` (65,536), `--groups 1024,64`, `--dir D` (a
//! directory on the filesystem to measure; default: the temp directory).

use std::fs::{self, File};
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redb::{ReadableDatabase as _, ReadableTableMetadata as _};
use webhook_core::Event;
use webhook_sender::outbox::{Durability, Outbox, OutboxConfig};

const ENDPOINT: &str = "siem";
const BODY_LEN: usize = 1_024;
const REDB_TABLE: redb::TableDefinition<'static, u64, &[u8]> = redb::TableDefinition::new("outbox");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Sdk,
    Redb,
    Fjall,
    Raw,
}

impl Engine {
    /// The rotation's base order.
    const ALL: [Self; 4] = [Self::Sdk, Self::Redb, Self::Fjall, Self::Raw];

    fn name(self) -> &'static str {
        match self {
            Self::Sdk => "sdk",
            Self::Redb => "redb",
            Self::Fjall => "fjall",
            Self::Raw => "raw",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Sdk => "SDK outbox (hand-written log)",
            Self::Redb => "redb 5 (Durability::Immediate)",
            Self::Fjall => "fjall 3 (batch + persist(SyncData))",
            Self::Raw => "raw disk: one write + one fdatasync per group",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == s)
    }
}

// ---- the events ------------------------------------------------------------------------------

/// A Sysdig-policy-like JSON body of exactly `BODY_LEN` bytes.
fn body(i: usize, ts_ns: u64) -> Vec<u8> {
    let head = format!(
        concat!(
            r#"{{"id":"{:016x}","type":"policy","timestamp":{},"hostname":"ip-10-0-{}-{}.ec2.internal","#,
            r#""severity":{},"policy":{{"id":{},"name":"Terminal shell in container","origin":"Secure UI"}},"#,
            r#""rule":"Terminal shell in container","labels":{{"kubernetes.namespace.name":"payments","#,
            r#""kubernetes.pod.name":"api-7d9f8b6c5d-{:05}","container.image.repo":"registry.example.com/payments/api","#,
            r#""container.id":"3f2a9c1e{:04x}"}},"output":""#
        ),
        0x5f3a_0000_0000_0000u64 + i as u64,
        ts_ns,
        i % 250,
        (i * 7) % 250,
        i % 8,
        40 + i % 16,
        i % 100_000,
        i % 0xffff,
    );
    let tail = r#""}"#;
    let text = "A shell was spawned in a container with an attached terminal (user=root \
                user_loginuid=-1 process=bash parent=runc cmdline=bash -il terminal=34816 \
                container_id=3f2a9c1e image=registry.example.com/payments/api:1.42.0) ";
    let fill = BODY_LEN - head.len() - tail.len();
    let mut b = Vec::with_capacity(BODY_LEN);
    b.extend_from_slice(head.as_bytes());
    b.extend(text.bytes().cycle().take(fill));
    b.extend_from_slice(tail.as_bytes());
    assert_eq!(b.len(), BODY_LEN);
    b
}

fn events(n: usize) -> Vec<Event> {
    let t0 = 1_765_000_000_000_000_000u64;
    (0..n)
        .map(|i| {
            let ts = t0 + i as u64 * 1_000;
            Event::builder(format!("evt_{i:08}"), "policy")
                .timestamp_nanos(ts)
                .json_bytes(body(i, ts))
                .expect("a valid JSON body")
        })
        .collect()
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u16).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// The record the crates store for one event: what the SDK's frame holds, minus its length and
/// checksum (the crates keep their own).
fn encode(buf: &mut Vec<u8>, endpoints: &[&str], e: &Event) {
    buf.extend_from_slice(&wall_ms().to_le_bytes());
    buf.extend_from_slice(&(endpoints.len() as u16).to_le_bytes());
    for ep in endpoints {
        put_str(buf, ep);
    }
    put_str(buf, e.id());
    put_str(buf, e.subject());
    buf.extend_from_slice(&e.timestamp_nanos().to_le_bytes());
    buf.extend_from_slice(&(e.body().len() as u32).to_le_bytes());
    buf.extend_from_slice(e.body());
}

// ---- the child: append, then exit as a kill would --------------------------------------------

struct Appended {
    open: Duration,
    append: Duration,
    /// CPU time (user + system, all threads) of the append phase.
    cpu: Duration,
    commits: u64,
}

/// CPU time (user + system) of this process so far, all threads (finished ones included).
fn cpu_time() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer it is given.
    let ru = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()), 0);
        ru.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn sdk_append(dir: &Path, evs: &[Event], group: usize) -> Appended {
    let t = Instant::now();
    let outbox = Outbox::open(OutboxConfig::new(dir).durability(Durability::Sync)).expect("open");
    let open = t.elapsed();
    let mut commits = 0;
    let cpu0 = cpu_time();
    let t = Instant::now();
    for (i, e) in evs.iter().enumerate() {
        outbox.append(&[ENDPOINT], e).expect("append");
        if (i + 1) % group == 0 || i + 1 == evs.len() {
            outbox.flush().expect("flush");
            commits += 1;
        }
    }
    let append = t.elapsed();
    let cpu = cpu_time() - cpu0;
    assert_eq!(outbox.stats().pending, evs.len() as u64);
    std::mem::forget(outbox);
    Appended {
        open,
        append,
        cpu,
        commits,
    }
}

fn redb_append(dir: &Path, evs: &[Event], group: usize) -> Appended {
    let t = Instant::now();
    let db = redb::Database::create(dir.join("outbox.redb")).expect("open");
    let open = t.elapsed();
    let mut commits = 0;
    let mut buf = Vec::with_capacity(BODY_LEN + 128);
    let mut seq = 1u64;
    let cpu0 = cpu_time();
    let t = Instant::now();
    for chunk in evs.chunks(group) {
        let mut tx = db.begin_write().expect("begin");
        tx.set_durability(redb::Durability::Immediate)
            .expect("durability");
        {
            let mut table = tx.open_table(REDB_TABLE).expect("table");
            for e in chunk {
                buf.clear();
                encode(&mut buf, &[ENDPOINT], e);
                table.insert(seq, buf.as_slice()).expect("insert");
                seq += 1;
            }
        }
        tx.commit().expect("commit");
        commits += 1;
    }
    let append = t.elapsed();
    let cpu = cpu_time() - cpu0;
    std::mem::forget(db);
    Appended {
        open,
        append,
        cpu,
        commits,
    }
}

fn fjall_append(dir: &Path, evs: &[Event], group: usize) -> Appended {
    let t = Instant::now();
    let db = fjall::Database::builder(dir.join("fjall"))
        .open()
        .expect("open");
    let ks = db
        .keyspace("outbox", fjall::KeyspaceCreateOptions::default)
        .expect("keyspace");
    let open = t.elapsed();
    let mut commits = 0;
    let mut buf = Vec::with_capacity(BODY_LEN + 128);
    let mut seq = 1u64;
    let cpu0 = cpu_time();
    let t = Instant::now();
    for chunk in evs.chunks(group) {
        let mut batch = db.batch();
        for e in chunk {
            buf.clear();
            encode(&mut buf, &[ENDPOINT], e);
            batch.insert(&ks, seq.to_be_bytes(), buf.as_slice());
            seq += 1;
        }
        batch.commit().expect("commit");
        db.persist(fjall::PersistMode::SyncData).expect("persist");
        commits += 1;
    }
    let append = t.elapsed();
    let cpu = cpu_time() - cpu0;
    std::mem::forget(ks);
    std::mem::forget(db);
    Appended {
        open,
        append,
        cpu,
        commits,
    }
}

fn raw_append(dir: &Path, evs: &[Event], group: usize) -> Appended {
    let t = Instant::now();
    let mut f = File::create(dir.join("raw.log")).expect("create");
    let open = t.elapsed();
    let mut commits = 0;
    let mut chunk_buf = Vec::with_capacity(group * (BODY_LEN + 128));
    let cpu0 = cpu_time();
    let t = Instant::now();
    for chunk in evs.chunks(group) {
        chunk_buf.clear();
        for e in chunk {
            encode(&mut chunk_buf, &[ENDPOINT], e);
        }
        f.write_all(&chunk_buf).expect("write");
        f.sync_data().expect("fdatasync");
        commits += 1;
    }
    let append = t.elapsed();
    let cpu = cpu_time() - cpu0;
    Appended {
        open,
        append,
        cpu,
        commits,
    }
}

fn child(engine: Engine, group: usize, dir: &Path, n: usize) -> ! {
    let evs = events(n);
    let r = match engine {
        Engine::Sdk => sdk_append(dir, &evs, group),
        Engine::Redb => redb_append(dir, &evs, group),
        Engine::Fjall => fjall_append(dir, &evs, group),
        Engine::Raw => raw_append(dir, &evs, group),
    };
    println!(
        "RESULT {} {} {} {}",
        r.open.as_nanos(),
        r.append.as_nanos(),
        r.commits,
        r.cpu.as_nanos()
    );
    let _ = std::io::stdout().flush();
    // No destructors: the store is left as a kill right after the last commit leaves it.
    std::process::exit(0);
}

// ---- the parent: reopen, close, reopen --------------------------------------------------------

/// An open store, held to be dropped (the close is timed).
#[allow(dead_code)]
enum Store {
    Sdk(Outbox),
    Redb(redb::Database),
    Fjall(fjall::Database, fjall::Keyspace),
}

/// Opens the store and counts what is pending (what a restart must find before resuming).
fn open_count(engine: Engine, dir: &Path) -> (Store, u64, Duration) {
    let t = Instant::now();
    let (store, n) = match engine {
        Engine::Sdk => {
            let o = Outbox::open(OutboxConfig::new(dir).durability(Durability::Sync))
                .expect("reopen sdk");
            let n = o.recovery().pending;
            (Store::Sdk(o), n)
        }
        Engine::Redb => {
            let db = redb::Database::create(dir.join("outbox.redb")).expect("reopen redb");
            let n = {
                let rx = db.begin_read().expect("read");
                let t = rx.open_table(REDB_TABLE).expect("table");
                t.len().expect("len")
            };
            (Store::Redb(db), n)
        }
        Engine::Fjall => {
            let db = fjall::Database::builder(dir.join("fjall"))
                .open()
                .expect("reopen fjall");
            let ks = db
                .keyspace("outbox", fjall::KeyspaceCreateOptions::default)
                .expect("keyspace");
            let n = ks.len().expect("len") as u64;
            (Store::Fjall(db, ks), n)
        }
        Engine::Raw => unreachable!("the raw file is not reopened"),
    };
    (store, n, t.elapsed())
}

/// Bytes allocated on disk under `p` (not apparent sizes: fjall's journal is preallocated).
fn dir_bytes(p: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(p) else { return 0 };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.blocks() * 512),
            Err(_) => 0,
        })
        .sum()
}

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    /// Events per second of the append phase.
    rate: f64,
    /// CPU time of the append phase per event, µs (all threads, user + system).
    cpu_us: f64,
    commits: u64,
    bytes: u64,
    /// Reopen after the kill: open + pending count.
    crash_reopen: Duration,
    /// Drop of the reopened store.
    close: Duration,
    /// Reopen after that clean close.
    clean_reopen: Duration,
    ok: bool,
}

fn run_one(engine: Engine, group: usize, base: &Path, n: usize, tag: &str) -> Sample {
    let dir = base.join(format!("{tag}-{}-{group}", engine.name()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .args([
            "--child",
            engine.name(),
            &group.to_string(),
            dir.to_str().expect("utf-8 dir"),
            &n.to_string(),
        ])
        .output()
        .expect("spawn child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "child {} failed: {}\n{}",
                engine.name(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let f: Vec<u128> = line
        .split_whitespace()
        .map(|x| x.parse().expect("number"))
        .collect();
    let append = Duration::from_nanos(f[1] as u64);
    let mut s = Sample {
        rate: n as f64 / append.as_secs_f64(),
        cpu_us: f[3] as f64 / 1e3 / n as f64,
        commits: f[2] as u64,
        bytes: dir_bytes(&dir),
        ok: true,
        ..Sample::default()
    };
    if engine != Engine::Raw {
        let (store, pending, took) = open_count(engine, &dir);
        s.crash_reopen = took;
        if pending != n as u64 {
            eprintln!(
                "!! {} group {group}: {pending} pending after the kill, expected {n}",
                engine.name()
            );
            s.ok = false;
        }
        let t = Instant::now();
        drop(store);
        s.close = t.elapsed();
        let (store, pending, took) = open_count(engine, &dir);
        s.clean_reopen = took;
        if pending != n as u64 {
            eprintln!(
                "!! {} group {group}: {pending} pending after a clean close, expected {n}",
                engine.name()
            );
            s.ok = false;
        }
        drop(store);
    }
    let _ = fs::remove_dir_all(&dir);
    s
}

// ---- statistics and report ------------------------------------------------------------------

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}

fn k(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else {
        format!("{:.0}k", x / 1e3)
    }
}

fn ms(d: f64) -> String {
    format!("{:.0}", d * 1e3)
}

fn usage() -> ! {
    eprintln!("usage: store-compare [--rounds R] [--events N] [--groups 1024,64] [--dir D]");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let engine = Engine::parse(&args[1]).expect("engine");
        let group: usize = args[2].parse().expect("group");
        let n: usize = args[4].parse().expect("events");
        child(engine, group, Path::new(&args[3]), n);
    }
    let mut rounds = 5usize;
    let mut n = 65_536usize;
    let mut groups = vec![1_024usize, 64];
    let mut base_dir = std::env::temp_dir();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_else(|| usage());
        match args[i].as_str() {
            "--rounds" => rounds = v.parse().unwrap_or_else(|_| usage()),
            "--events" => n = v.parse().unwrap_or_else(|_| usage()),
            "--groups" => {
                groups = v
                    .split(',')
                    .map(|g| g.parse().unwrap_or_else(|_| usage()))
                    .collect();
            }
            "--dir" => base_dir = PathBuf::from(v),
            _ => usage(),
        }
        i += 2;
    }
    assert!(rounds > 0 && n > 0 && !groups.is_empty() && groups.iter().all(|&g| g > 0));
    let base = base_dir.join(format!("store-compare-{}", std::process::id()));
    fs::create_dir_all(&base).expect("base dir");

    let record = {
        let mut b = Vec::new();
        encode(&mut b, &[ENDPOINT], &events(1)[0]);
        b.len()
    };
    println!(
        "store-compare: {n} events of a {BODY_LEN}-byte JSON body ({record}-byte record), \
         groups {groups:?}, {rounds} rounds, under {}",
        base.display()
    );
    println!(
        "crates: redb 5 and fjall 3 (versions: benches/store-compare/Cargo.lock); \
         order rotated each round; each append runs in a child process that exits without \
         closing (as a kill would)"
    );

    // samples[group index][engine index][round]
    let mut samples = vec![vec![Vec::<Sample>::new(); Engine::ALL.len()]; groups.len()];
    for r in 0..rounds {
        for (gi, &group) in groups.iter().enumerate() {
            let mut order = Engine::ALL;
            order.rotate_left(r % Engine::ALL.len());
            let mut line = format!("round {} group {group:>5}:", r + 1);
            for e in order {
                let s = run_one(e, group, &base, n, &format!("r{r}"));
                line += &format!(
                    "  {} {}/s{}",
                    e.name(),
                    k(s.rate),
                    if s.ok { "" } else { " (MISMATCH)" }
                );
                samples[gi][e as usize].push(s);
            }
            println!("{line}");
        }
    }
    let _ = fs::remove_dir_all(&base);

    for (gi, &group) in groups.iter().enumerate() {
        let sdk = &samples[gi][Engine::Sdk as usize];
        let mib = (group * record) as f64 / (1 << 20) as f64;
        println!();
        println!(
            "### group {group} events per durable commit (~{mib:.2} MiB): append, medians of {rounds} rounds"
        );
        println!();
        println!(
            "| engine | events/s (median) | min–max | MB/s | CPU µs/event | commits | allocated on disk after | reopen after kill, ms | close, ms | reopen after close, ms |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for e in Engine::ALL {
            let v = &samples[gi][e as usize];
            let rates: Vec<f64> = v.iter().map(|s| s.rate).collect();
            let (lo, hi) = min_max(&rates);
            let med = median(rates);
            let bytes = median(v.iter().map(|s| s.bytes as f64).collect());
            let cpu = median(v.iter().map(|s| s.cpu_us).collect());
            let (cr, cl, rr) = if e == Engine::Raw {
                ("–".to_owned(), "–".to_owned(), "–".to_owned())
            } else {
                (
                    ms(median(
                        v.iter().map(|s| s.crash_reopen.as_secs_f64()).collect(),
                    )),
                    ms(median(v.iter().map(|s| s.close.as_secs_f64()).collect())),
                    ms(median(
                        v.iter().map(|s| s.clean_reopen.as_secs_f64()).collect(),
                    )),
                )
            };
            println!(
                "| {} | **{}** | {}–{} | {:.0} | {cpu:.2} | {} | {:.1} MiB | {cr} | {cl} | {rr} |",
                e.label(),
                k(med),
                k(lo),
                k(hi),
                med * record as f64 / 1e6,
                v[0].commits,
                bytes / (1 << 20) as f64,
            );
        }
        println!();
        println!("| round | SDK/redb | SDK/fjall | SDK/raw disk |");
        println!("| --- | --- | --- | --- |");
        let ratio = |e: Engine, r: usize| sdk[r].rate / samples[gi][e as usize][r].rate;
        let mut cols = [Vec::new(), Vec::new(), Vec::new()];
        for r in 0..rounds {
            let x = [
                ratio(Engine::Redb, r),
                ratio(Engine::Fjall, r),
                ratio(Engine::Raw, r),
            ];
            println!("| {} | {:.2}× | {:.2}× | {:.2}× |", r + 1, x[0], x[1], x[2]);
            for (c, v) in cols.iter_mut().zip(x) {
                c.push(v);
            }
        }
        let [a, b, c] = cols.map(median);
        println!("| **median** | **{a:.2}×** | **{b:.2}×** | **{c:.2}×** |");
        let bad: usize = samples[gi].iter().flatten().filter(|s| !s.ok).count();
        if bad > 0 {
            println!("\n{bad} runs reopened with a pending count other than {n} (see stderr)");
        }
    }
}
