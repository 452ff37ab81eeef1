//! The segmented log behind the embedded outbox: appends with group commit, settlements,
//! batch and attempt records, recovery, the per-endpoint read cursor, and the dead-letter log.
//!
//! Everything on disk lives under the outbox directory:
//!
//! ```text
//! DIR/lock                 held (flock) by the process that has the outbox open; holds its pid
//! DIR/registry.json        the endpoint registry (endpoints, event sets, paused state)
//! DIR/log/<id>.seg         the event log: EVENT, SETTLE and BATCH frames (see frame.rs)
//! DIR/dead/<id>.seg        the dead-letter log: DEAD and REMOVED frames
//! ```
//!
//! Liveness is counted per segment: an `EVENT` routed to `k` endpoints adds `k` live pairs to
//! its segment, each `SETTLE` of one `(endpoint, seq)` removes one (a per-endpoint bitmap per
//! segment makes a repeated settlement count once). Segments are deleted from the head only,
//! once they and every older one hold nothing live: a `SETTLE` frame in a later segment may
//! settle events of an earlier one, so deleting a later segment first could revive them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use webhook_core::Event;

use super::frame::{
    self, AttemptInfo, Cursor, FRAME_HEADER, FrameWriter, HEADER_LEN, Next, SettleKind, kind,
};
use super::store::{OutboxStore, StoreFuture};
use super::{
    DeadLetterEntry, Durability, Filter, OutboxConfig, OutboxError, OutboxStats, RecoveryReport,
};
use crate::registry::RegistrySnapshot;
use crate::sender::OverflowPolicy;

/// Attempts kept per batch in the attempt log.
pub(crate) const ATTEMPT_LOG: usize = 16;
/// Bytes read per call when scanning a segment.
const READ_CHUNK: usize = 1 << 20;
/// Buffered bytes written out at once by the appender that reaches them.
const WRITE_OUT_BYTES: usize = 1 << 20;
/// How long buffered records wait at most before the sync thread writes them to the OS.
pub(crate) const WRITE_OUT_DELAY: Duration = Duration::from_millis(2);

pub(crate) fn wall_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One segment of the event log.
#[derive(Debug)]
struct Seg {
    id: u64,
    first_seq: u64,
    /// One past the last event seq written to it.
    end_seq: u64,
    /// Its length, buffered records included.
    bytes: u64,
    /// What of it is written to its file (what a reader may read of a sealed segment; the
    /// active one's is `State::active_len`).
    written: u64,
    /// Unsettled (event, endpoint) pairs.
    live: u64,
    /// Acceptance time of its first event (ms since the epoch; 0 without events).
    first_ms: u64,
    /// Per endpoint, the settled events (bit `seq - first_seq`).
    acked: HashMap<Arc<str>, Vec<u64>>,
    /// Per endpoint, its events here not settled yet (what dropping the segment removes
    /// from the pending counts, without reading it: its last records may not be written).
    unsettled: HashMap<Arc<str>, u64>,
}

impl Seg {
    /// Marks `(endpoint, seq)` settled; `true` when it was not.
    fn ack(&mut self, endpoint: &str, seq: u64) -> bool {
        let bit = (seq - self.first_seq) as usize;
        let words = match self.acked.get_mut(endpoint) {
            Some(w) => w,
            None => self.acked.entry(Arc::from(endpoint)).or_default(),
        };
        if words.len() <= bit / 64 {
            words.resize(bit / 64 + 1, 0);
        }
        let mask = 1u64 << (bit % 64);
        if words[bit / 64] & mask != 0 {
            return false;
        }
        words[bit / 64] |= mask;
        self.live = self.live.saturating_sub(1);
        if let Some(n) = self.unsettled.get_mut(endpoint) {
            *n = n.saturating_sub(1);
        }
        true
    }

    fn is_acked(&self, endpoint: &str, seq: u64) -> bool {
        let bit = (seq - self.first_seq) as usize;
        self.acked
            .get(endpoint)
            .and_then(|w| w.get(bit / 64))
            .is_some_and(|w| w & (1u64 << (bit % 64)) != 0)
    }
}

/// A batch's delivery state, kept while its events are unsettled (the attempt log).
#[derive(Debug, Clone)]
pub(crate) struct BatchMeta {
    pub(crate) seqs: Vec<u64>,
    pub(crate) event_ids: Vec<Box<str>>,
    /// Attempts made (0: the first was in flight when the record was written).
    pub(crate) attempts: u32,
    pub(crate) first_ms: u64,
    /// When the next attempt is due (ms since the epoch; 0: at once).
    pub(crate) due_ms: u64,
    pub(crate) log: VecDeque<AttemptInfo>,
}

/// A batch record ([`OutboxStore::batch`](super::OutboxStore::batch)): a batch formed
/// (`first` carries its seqs and event ids; its first attempt is about to leave) or an attempt
/// that failed (`attempt`, with the next one due at `due_ms`).
#[derive(Debug)]
#[non_exhaustive]
pub struct BatchRecord<'a> {
    /// The batch's seqs and event ids, in the record of a batch formed.
    pub first: Option<(&'a [u64], &'a [Box<str>])>,
    /// Attempts made (0 in the record of a batch formed).
    pub attempts: u32,
    /// When the first attempt was made, ms since the Unix epoch (0: unchanged).
    pub first_ms: u64,
    /// When the next attempt is due, ms since the Unix epoch (0: at once).
    pub due_ms: u64,
    /// The attempt that failed.
    pub attempt: Option<AttemptInfo>,
}

impl<'a> BatchRecord<'a> {
    /// The record of a batch formed at `first_ms`, its first attempt about to leave.
    #[must_use]
    pub fn formed(seqs: &'a [u64], event_ids: &'a [Box<str>], first_ms: u64) -> Self {
        Self {
            first: Some((seqs, event_ids)),
            attempts: 0,
            first_ms,
            due_ms: 0,
            attempt: None,
        }
    }

    /// The record of a failed attempt: `attempts` made, the next due at `due_ms`.
    #[must_use]
    pub fn retried(attempts: u32, due_ms: u64, attempt: AttemptInfo) -> Self {
        Self {
            first: None,
            attempts,
            first_ms: 0,
            due_ms,
            attempt: Some(attempt),
        }
    }
}

/// A batch a store kept across a restart, with its id, attempts and due time, ready for
/// `Delivery::restore`.
#[derive(Debug)]
#[non_exhaustive]
pub struct RestoredBatch {
    /// Its id (the `webhook-id` it was sent with).
    pub batch_id: Box<str>,
    /// Its unsettled events, with their seqs.
    pub events: Vec<(u64, Event)>,
    /// Attempts made (0: the first was in flight).
    pub attempts: u32,
    /// When the first attempt was made, ms since the Unix epoch.
    pub first_ms: u64,
    /// When the next attempt is due, ms since the Unix epoch (0: at once).
    pub due_ms: u64,
}

impl RestoredBatch {
    /// A batch handed back by a store: `attempts` made, the first at `first_ms`, the next
    /// due at `due_ms` (ms since the Unix epoch; 0: at once).
    ///
    /// ```
    /// use webhook_core::Event;
    /// use webhook_sender::outbox::RestoredBatch;
    /// let event = Event::builder("evt_1", "order.paid").json_bytes(&br#"{}"#[..])?;
    /// let b = RestoredBatch::new("msg_1".into(), vec![(1, event)], 2, 1_700_000_000_000, 0);
    /// assert_eq!((b.attempts, b.events.len()), (2, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new(
        batch_id: Box<str>,
        events: Vec<(u64, Event)>,
        attempts: u32,
        first_ms: u64,
        due_ms: u64,
    ) -> Self {
        Self {
            batch_id,
            events,
            attempts,
            first_ms,
            due_ms,
        }
    }
}

/// Where one endpoint's read is in a store, with restored batches still being gathered.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ReadCursor {
    /// The next event seq to consider.
    pub seq: u64,
    /// The store's own place (the embedded log: the segment id).
    pub segment: Option<u64>,
    /// The store's own place (the embedded log: the byte offset in the segment).
    pub offset: u64,
    /// Restored batches whose events are not all read yet, by batch id.
    pub gathering: HashMap<Box<str>, RestoredBatch>,
}

impl ReadCursor {
    /// A cursor at `seq`.
    #[must_use]
    pub fn at(seq: u64) -> Self {
        Self {
            seq,
            ..Self::default()
        }
    }

    /// What was gathered of restored batches that cannot complete any more (the rest of their
    /// events were settled or lost): handed over as they are.
    pub fn take_gathered(&mut self) -> Vec<RestoredBatch> {
        self.gathering.drain().map(|(_, r)| r).collect()
    }
}

/// What one [`read`](super::OutboxStore::read) returned.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ReadOut {
    /// Events to deliver, with their seqs.
    pub events: Vec<(u64, Event)>,
    /// Batches restored whole.
    pub batches: Vec<RestoredBatch>,
    /// Nothing more is stored past the cursor (for now).
    pub at_end: bool,
}

/// A dead letter's place and summary (the index kept in memory).
#[derive(Debug, Clone)]
struct DeadMeta {
    seg: u64,
    offset: u64,
    len: u32,
    endpoint: Arc<str>,
    event_id: Box<str>,
    subject: Box<str>,
    dead_at_ms: u64,
    reason: Box<str>,
    attempts: u32,
}

/// The dead-letter log.
#[derive(Debug)]
struct DeadLog {
    dir: PathBuf,
    active: Arc<File>,
    active_id: u64,
    active_len: u64,
    /// Per segment: live dead letters and bytes.
    segs: BTreeMap<u64, (u64, u64)>,
    index: BTreeMap<u64, DeadMeta>,
    next_id: u64,
    /// Written since the last sync (an idle dead-letter log costs no sync).
    dirty: bool,
}

/// The log's state, under one lock.
#[derive(Debug)]
struct State {
    segs: VecDeque<Seg>,
    active: Arc<File>,
    /// Bytes of the active segment written to the file (what readers may read).
    active_len: u64,
    /// Records of the active segment not yet written to the file (group commit: written by
    /// the sync thread within `WRITE_OUT_DELAY`, by an appender past `WRITE_OUT_BYTES`, before a
    /// batch's first request, or when a reader needs them). Written out of this lock, by one
    /// writer at a time ([`write_out_all`]).
    unwritten: Vec<u8>,
    /// The buffer of the last write-out, kept for the next swap.
    spare: Vec<u8>,
    /// Records of sealed segments not yet written (a roll with records still buffered), in
    /// order; the writer writes and syncs them before the active buffer.
    sealed: VecDeque<(u64, Arc<File>, Vec<u8>)>,
    next_seq: u64,
    next_seg_id: u64,
    disk_bytes: u64,
    /// Bytes written in this run (what the sync position counts).
    written: u64,
    /// The first write error: intake stops.
    failed: Option<(io::ErrorKind, String)>,
    w: FrameWriter,
    /// Unsettled (event, endpoint) pairs per endpoint.
    pending: HashMap<Arc<str>, u64>,
    /// Batches formed and not settled, per (endpoint, batch id).
    batches: HashMap<(Arc<str>, Box<str>), BatchMeta>,
    /// After a restart: per endpoint, the restored batch of each unsettled seq that had one.
    restore: HashMap<Arc<str>, HashMap<u64, Box<str>>>,
    dead: DeadLog,
    dropped: u64,
    recovery: RecoveryReport,
    commit_micros_last: u64,
    commit_count: u64,
    commit_micros_total: u64,
}

/// The sync thread's requests.
#[derive(Debug, Default)]
struct SyncReq {
    /// Highest position a `Sync` append waits for.
    wanted: u64,
    /// Records were buffered: write them out within `WRITE_OUT_DELAY`.
    dirty: bool,
    stop: bool,
}

/// What the sync thread shares with the store (never the store itself, so that dropping the
/// store releases the directory lock at once).
#[derive(Debug)]
struct SyncShared {
    req: Mutex<SyncReq>,
    cv: Condvar,
    synced_tx: tokio::sync::watch::Sender<u64>,
    /// Held by the one writer writing buffers to segment files (taken before the state lock).
    io: Mutex<()>,
}

/// The embedded store.
#[derive(Debug)]
pub(crate) struct Log {
    pub(crate) dir: PathBuf,
    cfg: OutboxConfig,
    state: Arc<Mutex<State>>,
    sync: Arc<SyncShared>,
    /// Space was freed (segments deleted).
    pub(crate) space: tokio::sync::Notify,
    _lock: File,
}

/// What [`append`](super::OutboxStore::append) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Appended {
    /// Stored at `seq`; under `Durability::Sync`, durable once `synced(ticket)` resolves.
    Written {
        /// The event's sequence number.
        seq: u64,
        /// What to wait for under `Durability::Sync`.
        ticket: u64,
    },
    /// The byte limit is reached under `Block`: wait for `space`.
    Full,
    /// The byte limit is reached under `DropNewest`: the event is dropped.
    Dropped,
}

fn io_err(op: &'static str, path: &Path, e: io::Error) -> OutboxError {
    OutboxError::Io {
        op,
        path: path.to_owned(),
        source: e,
    }
}

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016}.seg"))
}

/// Segment ids found in `dir`, ascending.
fn list_segments(dir: &Path) -> Result<Vec<u64>, OutboxError> {
    let mut ids: Vec<u64> = fs::read_dir(dir)
        .map_err(|e| io_err("list", dir, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            name.strip_suffix(".seg")?.parse().ok()
        })
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

fn new_segment(dir: &Path, id: u64, first_seq: u64) -> Result<File, OutboxError> {
    let path = seg_path(dir, id);
    let mut f = OpenOptions::new()
        .create_new(true)
        .read(true)
        .append(true)
        .open(&path)
        .map_err(|e| io_err("create", &path, e))?;
    f.write_all(&frame::header(id, first_seq))
        .map_err(|e| io_err("write", &path, e))?;
    Ok(f)
}

/// Scans one segment file frame by frame, calling `each(kind, payload, offset)`; cuts a torn
/// or corrupt tail (truncating the file) and returns `(bytes kept, bytes cut, corrupt)`.
fn scan(
    path: &Path,
    mut each: impl FnMut(u8, &[u8], u64),
) -> Result<(u64, u64, bool), OutboxError> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io_err("open", path, e))?;
    let size = f.metadata().map_err(|e| io_err("stat", path, e))?.len();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut have = 0usize;
    let mut file_pos = HEADER_LEN;
    let mut offset = HEADER_LEN; // of buf[0]
    f.seek(SeekFrom::Start(HEADER_LEN))
        .map_err(|e| io_err("seek", path, e))?;
    let mut corrupt = false;
    loop {
        // Parse what is buffered.
        let mut at = 0usize;
        let mut stop = false;
        loop {
            match frame::next_frame(&buf[at..have]) {
                Next::Frame(k, payload, total) => {
                    each(k, payload, offset + at as u64);
                    at += total;
                }
                Next::Short => break,
                Next::End => {
                    stop = true;
                    break;
                }
                Next::Corrupt => {
                    corrupt = true;
                    stop = true;
                    break;
                }
            }
        }
        let good = offset + at as u64;
        if stop || file_pos >= size {
            // `Short` at the end of the file is a torn write; `End`/`Corrupt` end the data.
            if good < size {
                f.set_len(good).map_err(|e| io_err("truncate", path, e))?;
                f.sync_data().map_err(|e| io_err("sync", path, e))?;
            }
            return Ok((good, size - good, corrupt));
        }
        // Keep the unparsed rest and read more (growing for a frame larger than the buffer).
        buf.copy_within(at..have, 0);
        have -= at;
        offset += at as u64;
        if have == buf.len() {
            let need = frame_len(&buf).unwrap_or(buf.len() * 2).max(buf.len() * 2);
            buf.resize(need, 0);
        }
        let n = f
            .read(&mut buf[have..])
            .map_err(|e| io_err("read", path, e))?;
        if n == 0 {
            file_pos = size;
        } else {
            file_pos += n as u64;
        }
        have += n;
    }
}

fn frame_len(buf: &[u8]) -> Option<usize> {
    let len = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    (len <= frame::MAX_PAYLOAD).then_some(FRAME_HEADER + len)
}

fn lock_dir(dir: &Path) -> Result<File, OutboxError> {
    let path = dir.join("lock");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| io_err("open", &path, e))?;
    // A lock this process held a moment ago may still be held by a child it is spawning (a
    // forked child shares the open file until it execs), so when the holder is this process
    // the lock is tried again for a short while.
    let mut tries = 0;
    loop {
        match f.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) => {
                let mut s = String::new();
                let _ = f.seek(SeekFrom::Start(0));
                let _ = f.read_to_string(&mut s);
                let pid: Option<u32> = s.trim().parse().ok();
                if pid == Some(std::process::id()) && tries < 20 {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(25));
                    continue;
                }
                return Err(OutboxError::Locked {
                    dir: dir.to_owned(),
                    pid,
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &path, e)),
        }
    }
    f.set_len(0).map_err(|e| io_err("write", &path, e))?;
    f.seek(SeekFrom::Start(0))
        .map_err(|e| io_err("write", &path, e))?;
    write!(f, "{}", std::process::id()).map_err(|e| io_err("write", &path, e))?;
    Ok(f)
}

impl Log {
    /// Opens (creating) the outbox at `cfg.dir`: locks it, recovers the event and dead-letter
    /// logs, and starts a new segment for this run.
    pub(crate) fn open(cfg: OutboxConfig) -> Result<Arc<Self>, OutboxError> {
        let started = Instant::now();
        let dir = cfg.dir.clone();
        fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
        let lock = lock_dir(&dir)?;
        let log_dir = dir.join("log");
        let dead_dir = dir.join("dead");
        for d in [&log_dir, &dead_dir] {
            fs::create_dir_all(d).map_err(|e| io_err("create", d, e))?;
        }
        let mut report = RecoveryReport::default();
        let mut segs: VecDeque<Seg> = VecDeque::new();
        let mut pending: HashMap<Arc<str>, u64> = HashMap::new();
        let mut batches: HashMap<(Arc<str>, Box<str>), BatchMeta> = HashMap::new();
        let mut names: HashMap<Box<str>, Arc<str>> = HashMap::new();
        let mut intern = |s: &str| -> Arc<str> {
            if let Some(a) = names.get(s) {
                return a.clone();
            }
            let a: Arc<str> = Arc::from(s);
            names.insert(s.into(), a.clone());
            a
        };
        let mut next_seq = 1u64;
        let mut next_seg_id = 1u64;
        let ids = list_segments(&log_dir)?;
        for id in ids {
            let path = seg_path(&log_dir, id);
            let mut head = [0u8; HEADER_LEN as usize];
            let read = File::open(&path)
                .and_then(|mut f| f.read_exact(&mut head))
                .ok();
            let Some((hid, first_seq)) = read.and_then(|()| frame::read_header(&head)) else {
                // A segment whose header never made it to disk (a crash while creating it) or
                // is damaged: nothing in it can be trusted.
                let size = fs::metadata(&path).map_or(0, |m| m.len());
                report.cut_bytes += size;
                report.corrupt_segments += 1;
                tracing::warn!(path = %path.display(), "outbox segment without a valid header removed");
                let _ = fs::remove_file(&path);
                continue;
            };
            if hid != id {
                report.corrupt_segments += 1;
            }
            if first_seq > next_seq && !segs.is_empty() {
                // Events between the previous segment's end and this one were cut.
                report.lost_events += first_seq - next_seq;
            }
            next_seq = next_seq.max(first_seq);
            next_seg_id = next_seg_id.max(id + 1);
            let mut seg = Seg {
                id,
                first_seq,
                end_seq: first_seq,
                bytes: 0,
                written: 0,
                live: 0,
                first_ms: 0,
                acked: HashMap::new(),
                unsettled: HashMap::new(),
            };
            let mut settles: Vec<(Arc<str>, u64)> = Vec::new();
            let mut malformed = 0u64;
            let (kept, cut, corrupt) = scan(&path, |k, payload, _| {
                let mut c = Cursor::new(payload);
                match k {
                    kind::EVENT => match frame::event_head(&mut c) {
                        Ok((seq, ms, eps)) if seq >= seg.first_seq => {
                            if seg.first_ms == 0 {
                                seg.first_ms = ms.max(1);
                            }
                            seg.end_seq = seg.end_seq.max(seq + 1);
                            seg.live += eps.len() as u64;
                            for e in eps {
                                let e = intern(e);
                                *seg.unsettled.entry(e.clone()).or_default() += 1;
                                *pending.entry(e).or_default() += 1;
                            }
                        }
                        _ => malformed += 1,
                    },
                    kind::SETTLE => match frame::settle(&mut c) {
                        Ok(s) => {
                            let ep = intern(s.endpoint);
                            if let Some(b) = s.batch {
                                batches.remove(&(ep.clone(), b.into()));
                            }
                            settles.extend(s.seqs.into_iter().map(|q| (ep.clone(), q)));
                        }
                        Err(_) => malformed += 1,
                    },
                    kind::BATCH => match read_batch(&mut c) {
                        Ok((ep, id, meta)) => {
                            let key = (intern(ep), Box::<str>::from(id));
                            merge_batch(&mut batches, key, meta);
                        }
                        Err(_) => malformed += 1,
                    },
                    _ => malformed += 1,
                }
            })?;
            report.malformed_records += malformed;
            if cut > 0 {
                report.cut_bytes += cut;
                if corrupt {
                    report.corrupt_segments += 1;
                }
                tracing::warn!(path = %path.display(), cut, corrupt, "outbox segment tail cut");
            }
            seg.bytes = kept;
            seg.written = kept;
            next_seq = next_seq.max(seg.end_seq);
            segs.push_back(seg);
            // Settlements apply to this or any earlier segment.
            for (ep, seq) in settles {
                if let Some(s) = find_seg(&mut segs, seq)
                    && s.ack(&ep, seq)
                    && let Some(p) = pending.get_mut(&ep)
                {
                    *p = p.saturating_sub(1);
                }
            }
        }
        pending.retain(|_, n| *n > 0);
        // Batches whose events are all settled are over.
        batches.retain(|(ep, _), b| {
            b.seqs
                .iter()
                .any(|&q| find_seg_ref(&segs, q).is_some_and(|s| !s.is_acked(ep, q)))
        });
        let mut restore: HashMap<Arc<str>, HashMap<u64, Box<str>>> = HashMap::new();
        for ((ep, id), b) in &batches {
            let m = restore.entry(ep.clone()).or_default();
            for &q in &b.seqs {
                m.insert(q, id.clone());
            }
        }
        // This run writes to a new segment.
        let active = new_segment(&log_dir, next_seg_id, next_seq)?;
        segs.push_back(Seg {
            id: next_seg_id,
            first_seq: next_seq,
            end_seq: next_seq,
            bytes: HEADER_LEN,
            written: HEADER_LEN,
            live: 0,
            first_ms: 0,
            acked: HashMap::new(),
            unsettled: HashMap::new(),
        });
        let disk_bytes = segs.iter().map(|s| s.bytes).sum();
        let dead = DeadLog::open(&dead_dir, &mut report)?;
        report.pending = pending.values().sum();
        report.segments = segs.len();
        report.took = started.elapsed();
        let mut state = State {
            segs,
            active: Arc::new(active),
            active_len: HEADER_LEN,
            unwritten: Vec::with_capacity(WRITE_OUT_BYTES),
            spare: Vec::new(),
            sealed: VecDeque::new(),
            next_seq,
            next_seg_id: next_seg_id + 1,
            disk_bytes,
            written: 0,
            failed: None,
            w: FrameWriter::default(),
            pending,
            batches,
            restore,
            dead,
            dropped: 0,
            recovery: report.clone(),
            commit_micros_last: 0,
            commit_count: 0,
            commit_micros_total: 0,
        };
        state.delete_settled(&log_dir);
        if report.cut_bytes > 0 || report.corrupt_segments > 0 || report.lost_events > 0 {
            tracing::warn!(?report, "outbox recovered with damage cut");
        } else {
            tracing::info!(
                pending = report.pending,
                took_ms = report.took.as_millis() as u64,
                "outbox opened"
            );
        }
        let (synced_tx, _) = tokio::sync::watch::channel(0);
        let state = Arc::new(Mutex::new(state));
        let sync = Arc::new(SyncShared {
            req: Mutex::new(SyncReq::default()),
            cv: Condvar::new(),
            synced_tx,
            io: Mutex::new(()),
        });
        let (st, sy, durability, log_dir) =
            (state.clone(), sync.clone(), cfg.durability, dir.join("log"));
        std::thread::Builder::new()
            .name("webhook-outbox-sync".into())
            .spawn(move || sync_loop(&st, &sy, durability, &log_dir))
            .map_err(|e| io_err("spawn", &dir, e))?;
        Ok(Arc::new(Self {
            dir,
            cfg,
            state,
            sync,
            space: tokio::sync::Notify::new(),
            _lock: lock,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// The recovery report of this open.
    pub(crate) fn recovery(&self) -> RecoveryReport {
        self.lock().recovery.clone()
    }

    /// Endpoints with unsettled events, and how many (after a restart: what to resume).
    pub(crate) fn pending_endpoints(&self) -> Vec<(Arc<str>, u64)> {
        self.lock()
            .pending
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// The first seq of the oldest segment (where a resuming reader starts).
    pub(crate) fn first_seq(&self) -> u64 {
        self.lock().segs.front().map_or(1, |s| s.first_seq)
    }

    /// One past the last seq written.
    pub(crate) fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// Appends one event routed to `endpoints` (written out by the sync thread within
    /// `WRITE_OUT_DELAY`, or at once past `WRITE_OUT_BYTES`).
    pub(crate) fn append(
        &self,
        endpoints: &[&str],
        event: &Event,
        wall: SystemTime,
    ) -> Result<Appended, OutboxError> {
        self.append_then(endpoints, event, wall, false)
    }

    /// Appends one event and writes what is buffered out before returning (no wake-up of the
    /// sync thread: a caller that answers only once its record survives a killed process).
    pub(crate) fn append_written(
        &self,
        endpoints: &[&str],
        event: &Event,
        wall: SystemTime,
    ) -> Result<Appended, OutboxError> {
        self.append_then(endpoints, event, wall, true)
    }

    fn append_then(
        &self,
        endpoints: &[&str],
        event: &Event,
        wall: SystemTime,
        write_now: bool,
    ) -> Result<Appended, OutboxError> {
        let mut st = self.lock();
        if let Some((kind, msg)) = &st.failed {
            return Err(OutboxError::Failed {
                kind: *kind,
                message: msg.clone(),
            });
        }
        let ms = wall_ms(wall);
        let seq = st.next_seq;
        let len = FrameWriter::event_record_len(endpoints, event) as u64;
        if st.disk_bytes + len > self.cfg.max_bytes {
            match self.cfg.overflow {
                OverflowPolicy::DropNewest => {
                    st.dropped += endpoints.len() as u64;
                    return Ok(Appended::Dropped);
                }
                OverflowPolicy::DropOldest => {
                    while st.disk_bytes + len > self.cfg.max_bytes && st.segs.len() > 1 {
                        st.drop_oldest(&self.log_dir());
                    }
                    if st.disk_bytes + len > self.cfg.max_bytes && st.logical_len() > HEADER_LEN {
                        // Only the active segment is left: seal it and drop it.
                        st.roll(&self.log_dir(), seq)?;
                        st.drop_oldest(&self.log_dir());
                    }
                    self.space.notify_waiters();
                }
                _ => return Ok(Appended::Full),
            }
        }
        if st.logical_len() + len > self.cfg.segment_bytes && st.logical_len() > HEADER_LEN {
            st.roll(&self.log_dir(), seq)?;
        }
        // Encoded straight into the write buffer (one copy of the body).
        let was_empty = st.unwritten.is_empty();
        let mut w = FrameWriter::over(std::mem::take(&mut st.unwritten));
        w.event_record(seq, ms, endpoints, event);
        st.unwritten = w.buf;
        st.buffered(len);
        let full = st.unwritten.len() >= WRITE_OUT_BYTES;
        st.next_seq += 1;
        let seg = st.segs.back_mut().expect("the active segment");
        if seg.first_ms == 0 {
            seg.first_ms = ms.max(1);
        }
        seg.end_seq = seq + 1;
        seg.live += endpoints.len() as u64;
        for e in endpoints {
            let key = match st.pending.get_key_value(*e) {
                Some((k, _)) => k.clone(),
                None => Arc::from(*e),
            };
            *st.pending.entry(key.clone()).or_default() += 1;
            let seg = st.segs.back_mut().expect("the active segment");
            match seg.unsettled.get_mut(*e) {
                Some(n) => *n += 1,
                None => {
                    seg.unsettled.insert(key, 1);
                }
            }
        }
        let pos = st.written;
        drop(st);
        if full || write_now {
            // Written by this appender, out of the lock: others keep appending meanwhile.
            self.write_out()?;
        } else if was_empty && self.cfg.durability != Durability::Sync {
            // Under `Sync` the caller's wait for its sync wakes the thread.
            self.kick();
        }
        Ok(Appended::Written { seq, ticket: pos })
    }

    /// Waits until everything up to `pos` is synced (`Durability::Sync`).
    pub(crate) async fn synced(&self, pos: u64) -> Result<(), OutboxError> {
        {
            let mut req = self.sync.req.lock().unwrap_or_else(PoisonError::into_inner);
            req.wanted = req.wanted.max(pos);
        }
        self.sync.cv.notify_one();
        let mut rx = self.sync.synced_tx.subscribe();
        let _ = rx.wait_for(|&p| p >= pos).await;
        if let Some((kind, msg)) = self.lock().failed.clone() {
            return Err(OutboxError::Failed { kind, message: msg });
        }
        Ok(())
    }

    /// Writes buffered records to the operating system now.
    pub(crate) fn write_out(&self) -> Result<(), OutboxError> {
        write_out_all(&self.state, &self.sync.io, &self.log_dir())
    }

    /// Wakes the sync thread: records were buffered.
    fn kick(&self) {
        self.sync
            .req
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dirty = true;
        self.sync.cv.notify_one();
    }

    /// Records that `seqs` settled at `endpoint` (written; synced with the next commit).
    pub(crate) fn settle(
        &self,
        endpoint: &str,
        how: SettleKind,
        batch: Option<&str>,
        seqs: &[u64],
    ) {
        if seqs.is_empty() {
            return;
        }
        let mut st = self.lock();
        if let Some(b) = batch {
            st.batches
                .retain(|(ep, id), _| !(&**ep == endpoint && &**id == b));
        }
        let mut w = std::mem::take(&mut st.w);
        w.buf.clear();
        w.settle_record(endpoint, how, batch, seqs);
        let hint = st.write(&w.buf);
        st.w = w;
        let hint = match hint {
            Ok(h) => h,
            // Not recorded: the events are delivered again after a restart (never lost).
            Err(e) => {
                tracing::error!(error = %e, endpoint, "outbox settlement not written");
                Hint::None
            }
        };
        let mut n = 0;
        for &q in seqs {
            if let Some(s) = find_seg(&mut st.segs, q)
                && s.ack(endpoint, q)
            {
                n += 1;
            }
        }
        if let Some(p) = st.pending.get_mut(endpoint) {
            *p = p.saturating_sub(n);
            if *p == 0 {
                st.pending.remove(endpoint);
            }
        }
        let freed = st.delete_settled(&self.log_dir());
        drop(st);
        if freed {
            self.space.notify_waiters();
        }
        self.act_on(hint);
    }

    /// Records a batch formed (first attempt in flight) or retried.
    pub(crate) fn batch(&self, endpoint: &str, batch_id: &str, rec: BatchRecord<'_>) {
        let BatchRecord {
            first,
            attempts,
            first_ms,
            due_ms,
            attempt,
        } = rec;
        let mut st = self.lock();
        let mut w = std::mem::take(&mut st.w);
        w.buf.clear();
        w.begin(kind::BATCH);
        w.str(endpoint);
        w.str(batch_id);
        w.u32(attempts);
        w.u64(first_ms);
        w.u64(due_ms);
        match &attempt {
            Some(a) => {
                w.u8(1);
                w.attempt(a);
            }
            None => w.u8(0),
        }
        match first {
            Some((seqs, ids)) => {
                w.seqs(seqs);
                w.u32(ids.len() as u32);
                for id in ids {
                    w.str(id);
                }
            }
            None => {
                w.seqs(&[]);
                w.u32(0);
            }
        }
        w.end();
        let hint = st.write(&w.buf);
        st.w = w;
        let hint = match hint {
            // A batch's first record is written out before its request leaves: a restart must
            // send it again under the same id.
            Ok(_) if first.is_some() => Hint::Now,
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, endpoint, "outbox batch record not written");
                Hint::None
            }
        };
        let meta = BatchMeta {
            seqs: first.map(|(s, _)| s.to_vec()).unwrap_or_default(),
            event_ids: first.map(|(_, i)| i.to_vec()).unwrap_or_default(),
            attempts,
            first_ms,
            due_ms,
            log: attempt.into_iter().collect(),
        };
        let key = (Arc::from(endpoint), Box::<str>::from(batch_id));
        merge_batch(&mut st.batches, key, meta);
        drop(st);
        self.act_on(hint);
    }

    /// Writes out now, or wakes the sync thread to, as a buffered write asked.
    fn act_on(&self, hint: Hint) {
        match hint {
            Hint::Now => {
                if let Err(e) = self.write_out() {
                    tracing::error!(error = %e, "outbox write-out failed");
                }
            }
            Hint::Kick => self.kick(),
            Hint::None => {}
        }
    }

    /// The attempt log of the batches holding `event_id`: `(endpoint, batch id, attempts)`.
    pub(crate) fn attempts_of(
        &self,
        event_id: &str,
    ) -> Vec<(Arc<str>, Box<str>, Vec<AttemptInfo>)> {
        let st = self.lock();
        st.batches
            .iter()
            .filter(|(_, b)| b.event_ids.iter().any(|i| &**i == event_id))
            .map(|((ep, id), b)| (ep.clone(), id.clone(), b.log.iter().cloned().collect()))
            .collect()
    }

    /// The attempt log of one batch, for a dead letter.
    pub(crate) fn batch_log(&self, endpoint: &str, batch_id: &str) -> Vec<AttemptInfo> {
        let st = self.lock();
        st.batches
            .iter()
            .find(|((ep, id), _)| &**ep == endpoint && &**id == batch_id)
            .map(|(_, b)| b.log.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Reads, for `endpoint`, up to `max` unsettled events past `cur` (and the restored
    /// batches they complete).
    ///
    /// Events past seq `until` are left unread (`at_end`): the sender reads only what it
    /// handed to the outbox reader, never an event whose placement is still under way.
    pub(crate) fn read(
        &self,
        endpoint: &str,
        cur: &mut ReadCursor,
        max: usize,
        until: u64,
    ) -> Result<ReadOut, OutboxError> {
        let mut out = ReadOut::default();
        let dir = self.log_dir();
        let mut found = 0usize;
        let mut waited_for_writer = false;
        loop {
            // Where to read: the segment holding the cursor, and how far it is written.
            let (seg_id, limit, active, complete) = {
                let st = self.lock();
                // What the reader needs may still be buffered (a sealed segment's last records,
                // or the active one's): written out first, out of the lock.
                if !st.sealed.is_empty()
                    || (!st.unwritten.is_empty()
                        && cur.segment == st.segs.back().map(|b| b.id)
                        && cur.offset >= st.active_len)
                {
                    drop(st);
                    self.write_out()?;
                    continue;
                }
                let pick = match cur.segment {
                    Some(id) => st.segs.iter().find(|s| s.id == id),
                    None => None,
                };
                let seg = match pick {
                    Some(s) => s,
                    None => {
                        // Start (or the segment was dropped): the first segment that can hold
                        // seqs at or past the cursor.
                        let Some(s) = st.segs.iter().find(|s| {
                            s.end_seq > cur.seq || s.id == st.segs.back().map_or(0, |b| b.id)
                        }) else {
                            out.at_end = true;
                            return Ok(out);
                        };
                        cur.segment = Some(s.id);
                        cur.offset = HEADER_LEN;
                        s
                    }
                };
                let active = st.segs.back().is_some_and(|b| b.id == seg.id);
                // Only what is written: a sealed segment's last records may still be on their
                // way to its file (read concurrently, a half-written frame looks corrupt).
                let limit = if active { st.active_len } else { seg.written };
                let complete = active || seg.written >= seg.bytes;
                (seg.id, limit, active, complete)
            };
            if cur.offset >= limit {
                if active {
                    out.at_end = true;
                    return Ok(out);
                }
                if !complete {
                    // The rest of this sealed segment is being written: wait for the writer.
                    if waited_for_writer {
                        return Ok(out);
                    }
                    waited_for_writer = true;
                    self.write_out()?;
                    continue;
                }
                self.next_segment(cur);
                continue;
            }
            let path = seg_path(&dir, seg_id);
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Dropped meanwhile (settled, or `DropOldest`): start again from the
                    // segments left. Still listed, the file was removed behind the store's
                    // back (the directory deleted): an error, never a spin.
                    if self.lock().segs.iter().any(|s| s.id == seg_id) {
                        return Err(io_err("open", &path, e));
                    }
                    cur.segment = None;
                    continue;
                }
                Err(e) => return Err(io_err("open", &path, e)),
            };
            let want = ((limit - cur.offset) as usize).min(READ_CHUNK);
            let mut buf = vec![0u8; want];
            let n =
                read_at_most(&file, &mut buf, cur.offset).map_err(|e| io_err("read", &path, e))?;
            buf.truncate(n);
            let mut at = 0usize;
            let mut candidates: Vec<(u64, Event)> = Vec::new();
            let mut damaged = false;
            let mut past = false;
            loop {
                match frame::next_frame(&buf[at..]) {
                    Next::Frame(k, payload, total) => {
                        if k == kind::EVENT {
                            let mut c = Cursor::new(payload);
                            if let Ok((seq, _, eps)) = frame::event_head(&mut c) {
                                if seq > until {
                                    past = true;
                                    break;
                                }
                                if seq >= cur.seq && eps.contains(&endpoint) {
                                    match c.event() {
                                        Ok(e) => candidates.push((seq, e)),
                                        Err(_) => tracing::warn!(
                                            seq,
                                            "outbox event record unreadable; skipped"
                                        ),
                                    }
                                }
                                cur.seq = cur.seq.max(seq + 1);
                            }
                        }
                        at += total;
                        if candidates.len() + found >= max {
                            break;
                        }
                    }
                    Next::Short if at == 0 && buf.len() == want && want == READ_CHUNK => {
                        // A frame larger than the chunk: read it whole.
                        let need = frame_len(&buf).unwrap_or(0);
                        if need == 0 || (need as u64) > limit - cur.offset {
                            damaged = true;
                            break;
                        }
                        buf.resize(need, 0);
                        let n = read_at_most(&file, &mut buf, cur.offset)
                            .map_err(|e| io_err("read", &path, e))?;
                        buf.truncate(n);
                        if n < need {
                            damaged = true;
                            break;
                        }
                    }
                    Next::Short | Next::End => break,
                    Next::Corrupt => {
                        damaged = true;
                        break;
                    }
                }
            }
            cur.offset += at as u64;
            if past {
                out.at_end = true;
            }
            if damaged {
                tracing::error!(path = %path.display(), offset = cur.offset, "outbox segment damaged; the rest of it is skipped");
                self.lock().recovery.corrupt_segments += 1;
                if active {
                    out.at_end = true;
                    return Ok(out);
                }
                self.next_segment(cur);
            }
            // Keep what is still unsettled; gather restored batches.
            {
                let mut st = self.lock();
                let st = &mut *st;
                for (seq, event) in candidates {
                    let settled =
                        find_seg_ref(&st.segs, seq).is_none_or(|s| s.is_acked(endpoint, seq));
                    if settled {
                        continue;
                    }
                    found += 1;
                    let batch = st.restore.get_mut(endpoint).and_then(|m| m.remove(&seq));
                    let Some(batch_id) = batch else {
                        out.events.push((seq, event));
                        continue;
                    };
                    let meta = st
                        .batches
                        .iter()
                        .find(|((ep, id), _)| &**ep == endpoint && *id == batch_id)
                        .map(|(_, b)| b.clone());
                    let Some(meta) = meta else {
                        out.events.push((seq, event));
                        continue;
                    };
                    let r =
                        cur.gathering
                            .entry(batch_id.clone())
                            .or_insert_with(|| RestoredBatch {
                                batch_id: batch_id.clone(),
                                events: Vec::new(),
                                attempts: meta.attempts,
                                first_ms: meta.first_ms,
                                due_ms: meta.due_ms,
                            });
                    r.events.push((seq, event));
                    // Complete once none of its seqs is left to read.
                    let left = st
                        .restore
                        .get(endpoint)
                        .is_some_and(|m| meta.seqs.iter().any(|q| m.contains_key(q)));
                    if !left && let Some(done) = cur.gathering.remove(&batch_id) {
                        out.batches.push(done);
                    }
                }
            }
            if past || found >= max || at == 0 && !damaged {
                if at == 0 && cur.offset < limit && !damaged && !past {
                    // Nothing parsable yet (a frame being written): come back later.
                    out.at_end = active;
                }
                return Ok(out);
            }
        }
    }

    fn next_segment(&self, cur: &mut ReadCursor) {
        let st = self.lock();
        let next = cur
            .segment
            .and_then(|id| st.segs.iter().find(|s| s.id > id))
            .map(|s| (s.id, s.first_seq));
        match next {
            Some((id, first)) => {
                cur.segment = Some(id);
                cur.offset = HEADER_LEN;
                cur.seq = cur.seq.max(first);
            }
            None => cur.segment = None,
        }
        // Batches whose remaining events are gone (cut) are handed over as they are.
    }

    // ---- dead letters ---------------------------------------------------------------------

    /// Writes a dead letter (before the settlement that removes the event from the log).
    pub(crate) fn dead_letter(
        &self,
        endpoint: &str,
        event: &Event,
        reason: &str,
        batch: Option<&str>,
        attempts: &[AttemptInfo],
        wall: SystemTime,
    ) -> Result<u64, OutboxError> {
        let mut st = self.lock();
        let st = &mut *st;
        let d = &mut st.dead;
        let id = d.next_id;
        let mut w = FrameWriter::default();
        w.begin(kind::DEAD);
        w.u64(id);
        w.str(endpoint);
        w.u64(wall_ms(wall));
        w.str(reason);
        w.opt_str(batch);
        let kept = &attempts[attempts.len().saturating_sub(ATTEMPT_LOG)..];
        w.u16(kept.len() as u16);
        for a in kept {
            w.attempt(a);
        }
        w.event(event);
        w.end();
        if d.active_len + w.buf.len() as u64 > self.cfg.segment_bytes && d.active_len > HEADER_LEN {
            d.roll()?;
        }
        let offset = d.active_len;
        let path = seg_path(&d.dir, d.active_id);
        d.active
            .as_ref()
            .write_all(&w.buf)
            .map_err(|e| io_err("write", &path, e))?;
        d.active_len += w.buf.len() as u64;
        d.dirty = true;
        d.next_id += 1;
        let e = d.segs.entry(d.active_id).or_insert((0, 0));
        e.0 += 1;
        e.1 += w.buf.len() as u64;
        d.index.insert(
            id,
            DeadMeta {
                seg: d.active_id,
                offset,
                len: w.buf.len() as u32,
                endpoint: Arc::from(endpoint),
                event_id: event.id().into(),
                subject: event.subject().into(),
                dead_at_ms: wall_ms(wall),
                reason: reason.into(),
                attempts: kept.len() as u32,
            },
        );
        Ok(id)
    }

    /// Dead letters matching `filter`, oldest first, at most `limit`.
    pub(crate) fn dead_letters(&self, filter: &Filter, limit: usize) -> Vec<DeadLetterEntry> {
        let st = self.lock();
        st.dead
            .index
            .iter()
            .filter(|(id, m)| filter.matches(**id, m.endpoint.as_ref(), &m.event_id, m.dead_at_ms))
            .take(limit)
            .map(|(id, m)| DeadLetterEntry {
                id: *id,
                endpoint: m.endpoint.to_string(),
                event_id: m.event_id.to_string(),
                subject: m.subject.to_string(),
                dead_at: UNIX_EPOCH + Duration::from_millis(m.dead_at_ms),
                reason: m.reason.to_string(),
                attempts: Vec::new(),
                batch_id: None,
                event: None,
                attempt_count: m.attempts,
            })
            .collect()
    }

    /// One dead letter in full: its event and attempts.
    pub(crate) fn dead_letter_full(&self, id: u64) -> Result<Option<DeadLetterEntry>, OutboxError> {
        let (meta, path) = {
            let st = self.lock();
            let Some(m) = st.dead.index.get(&id).cloned() else {
                return Ok(None);
            };
            let path = seg_path(&st.dead.dir, m.seg);
            (m, path)
        };
        let file = File::open(&path).map_err(|e| io_err("open", &path, e))?;
        let mut buf = vec![0u8; meta.len as usize];
        file.read_exact_at(&mut buf, meta.offset)
            .map_err(|e| io_err("read", &path, e))?;
        let Next::Frame(kind::DEAD, payload, _) = frame::next_frame(&buf) else {
            return Err(OutboxError::Corrupt { path });
        };
        let d = read_dead(payload).map_err(|_| OutboxError::Corrupt { path: path.clone() })?;
        Ok(Some(DeadLetterEntry {
            id,
            endpoint: d.endpoint,
            event_id: d.event.id().to_owned(),
            subject: d.event.subject().to_owned(),
            dead_at: UNIX_EPOCH + Duration::from_millis(d.dead_at_ms),
            reason: d.reason,
            attempt_count: d.attempts.len() as u32,
            attempts: d.attempts,
            batch_id: d.batch,
            event: Some(d.event),
        }))
    }

    /// Removes dead letters (purged, or redelivered once their events are appended again).
    pub(crate) fn remove_dead(&self, ids: &[u64]) -> Result<usize, OutboxError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut st = self.lock();
        let d = &mut st.dead;
        let mut w = FrameWriter::default();
        w.begin(kind::REMOVED);
        w.seqs(ids);
        w.end();
        let path = seg_path(&d.dir, d.active_id);
        d.active
            .as_ref()
            .write_all(&w.buf)
            .map_err(|e| io_err("write", &path, e))?;
        d.active_len += w.buf.len() as u64;
        d.dirty = true;
        let mut n = 0;
        for id in ids {
            if let Some(m) = d.index.remove(id) {
                n += 1;
                if let Some(s) = d.segs.get_mut(&m.seg) {
                    s.0 = s.0.saturating_sub(1);
                }
            }
        }
        d.delete_settled();
        Ok(n)
    }

    /// Counters and gauges.
    pub(crate) fn stats(&self, now: SystemTime) -> OutboxStats {
        let st = self.lock();
        let oldest = st
            .segs
            .iter()
            .find(|s| s.live > 0 && s.first_ms > 0)
            .map(|s| Duration::from_millis(wall_ms(now).saturating_sub(s.first_ms)));
        OutboxStats {
            pending: st.pending.values().sum(),
            pending_by_endpoint: st
                .pending
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            backlog_bytes: st.disk_bytes,
            segments: st.segs.len(),
            oldest_pending_age: oldest,
            dead_letters: st.dead.index.len() as u64,
            dead_letter_bytes: st.dead.segs.values().map(|s| s.1).sum(),
            dropped: st.dropped,
            commit_latency_last: Duration::from_micros(st.commit_micros_last),
            commit_latency_mean: Duration::from_micros(
                st.commit_micros_total
                    .checked_div(st.commit_count)
                    .unwrap_or(0),
            ),
            commits: st.commit_count,
            failed: st.failed.as_ref().map(|(_, m)| m.clone()),
            recovery: st.recovery.clone(),
        }
    }

    /// Syncs everything now (shutdown).
    pub(crate) fn flush(&self) -> Result<(), OutboxError> {
        self.write_out()?;
        let (active, dead) = {
            let mut st = self.lock();
            let dead = std::mem::take(&mut st.dead.dirty).then(|| st.dead.active.clone());
            (st.active.clone(), dead)
        };
        active
            .sync_data()
            .and_then(|()| dead.map_or(Ok(()), |d| d.sync_data()))
            .map_err(|e| io_err("sync", &self.dir, e))
    }
}

impl Log {
    /// The registry saved next to the log (`registry.json`).
    pub(crate) fn load_registry(&self) -> Result<Option<RegistrySnapshot>, OutboxError> {
        let path = self.dir.join("registry.json");
        match fs::read_to_string(&path) {
            Ok(s) => RegistrySnapshot::from_json_str(&s)
                .map(Some)
                .map_err(|e| OutboxError::Registry(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(OutboxError::Registry(format!("{}: {e}", path.display()))),
        }
    }

    /// Saves the registry atomically: a new file (mode 0600: it holds secrets), synced, renamed
    /// over the old.
    pub(crate) fn save_registry(&self, snapshot: &RegistrySnapshot) -> Result<(), OutboxError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let json = snapshot
            .to_json_string()
            .map_err(|e| OutboxError::Registry(e.to_string()))?;
        let path = self.dir.join("registry.json");
        let tmp = self.dir.join("registry.json.new");
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_err("write", &tmp, e))?;
        f.write_all(json.as_bytes())
            .map_err(|e| io_err("write", &tmp, e))?;
        f.sync_data().map_err(|e| io_err("sync", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_err("rename", &tmp, e))?;
        Ok(())
    }
}

impl OutboxStore for Log {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }
    fn durability(&self) -> Durability {
        self.cfg.durability
    }
    fn append(
        &self,
        endpoints: &[&str],
        event: &Event,
        at: SystemTime,
    ) -> Result<Appended, OutboxError> {
        Self::append(self, endpoints, event, at)
    }
    fn synced(&self, ticket: u64) -> StoreFuture<'_, Result<(), OutboxError>> {
        Box::pin(Self::synced(self, ticket))
    }
    fn sync_now(&self) -> Result<(), OutboxError> {
        Self::flush(self)
    }
    fn write_out(&self) -> Result<(), OutboxError> {
        Self::write_out(self)
    }
    fn append_written(
        &self,
        endpoints: &[&str],
        event: &Event,
        at: SystemTime,
    ) -> Result<Appended, OutboxError> {
        Self::append_written(self, endpoints, event, at)
    }
    fn space(&self) -> &tokio::sync::Notify {
        &self.space
    }
    fn read(
        &self,
        endpoint: &str,
        cursor: &mut ReadCursor,
        max: usize,
        until: u64,
    ) -> Result<ReadOut, OutboxError> {
        Self::read(self, endpoint, cursor, max, until)
    }
    fn batch(&self, endpoint: &str, batch_id: &str, record: BatchRecord<'_>) {
        Self::batch(self, endpoint, batch_id, record);
    }
    fn batch_log(&self, endpoint: &str, batch_id: &str) -> Vec<AttemptInfo> {
        Self::batch_log(self, endpoint, batch_id)
    }
    fn settle(&self, endpoint: &str, how: SettleKind, batch: Option<&str>, seqs: &[u64]) {
        Self::settle(self, endpoint, how, batch, seqs);
    }
    fn dead_letter(
        &self,
        endpoint: &str,
        event: &Event,
        reason: &str,
        batch: Option<&str>,
        attempts: &[AttemptInfo],
        at: SystemTime,
    ) -> Result<u64, OutboxError> {
        Self::dead_letter(self, endpoint, event, reason, batch, attempts, at)
    }
    fn pending_endpoints(&self) -> Vec<(Arc<str>, u64)> {
        Self::pending_endpoints(self)
    }
    fn first_seq(&self) -> u64 {
        Self::first_seq(self)
    }
    fn next_seq(&self) -> u64 {
        Self::next_seq(self)
    }
    fn stats(&self, now: SystemTime) -> OutboxStats {
        Self::stats(self, now)
    }
    fn recovery(&self) -> RecoveryReport {
        Self::recovery(self)
    }
    fn dead_letters(&self, filter: &Filter, limit: usize) -> Vec<DeadLetterEntry> {
        Self::dead_letters(self, filter, limit)
    }
    fn dead_letter_entry(&self, id: u64) -> Result<Option<DeadLetterEntry>, OutboxError> {
        Self::dead_letter_full(self, id)
    }
    fn remove_dead(&self, ids: &[u64]) -> Result<usize, OutboxError> {
        Self::remove_dead(self, ids)
    }
    fn attempts_of(&self, event_id: &str) -> Vec<(Arc<str>, Box<str>, Vec<AttemptInfo>)> {
        Self::attempts_of(self, event_id)
    }
    fn load_registry(&self) -> Result<Option<RegistrySnapshot>, OutboxError> {
        Self::load_registry(self)
    }
    fn save_registry(&self, snapshot: &RegistrySnapshot) -> Result<(), OutboxError> {
        Self::save_registry(self, snapshot)
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = self.flush();
        self.sync
            .req
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stop = true;
        self.sync.cv.notify_all();
    }
}

/// `pread` until `buf` is full or the file ends; the bytes read.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn find_seg(segs: &mut VecDeque<Seg>, seq: u64) -> Option<&mut Seg> {
    let i = segs.partition_point(|s| s.end_seq <= seq);
    segs.get_mut(i)
        .filter(|s| s.first_seq <= seq && seq < s.end_seq)
}

fn find_seg_ref(segs: &VecDeque<Seg>, seq: u64) -> Option<&Seg> {
    let i = segs.partition_point(|s| s.end_seq <= seq);
    segs.get(i)
        .filter(|s| s.first_seq <= seq && seq < s.end_seq)
}

fn read_batch<'a>(c: &mut Cursor<'a>) -> Result<(&'a str, &'a str, BatchMeta), frame::Malformed> {
    let ep = c.str()?;
    let id = c.str()?;
    let attempts = c.u32()?;
    let first_ms = c.u64()?;
    let due_ms = c.u64()?;
    let attempt = match c.u8()? {
        1 => Some(c.attempt()?),
        _ => None,
    };
    let seqs = c.seqs()?;
    let n = c.u32()?;
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(Box::<str>::from(c.str()?));
    }
    Ok((
        ep,
        id,
        BatchMeta {
            seqs,
            event_ids: ids,
            attempts,
            first_ms,
            due_ms,
            log: attempt.into_iter().collect(),
        },
    ))
}

/// Applies a batch record: the first carries the seqs, later ones the attempts.
fn merge_batch(
    batches: &mut HashMap<(Arc<str>, Box<str>), BatchMeta>,
    key: (Arc<str>, Box<str>),
    meta: BatchMeta,
) {
    match batches.get_mut(&key) {
        Some(b) => {
            if !meta.seqs.is_empty() {
                b.seqs = meta.seqs;
                b.event_ids = meta.event_ids;
            }
            b.attempts = b.attempts.max(meta.attempts);
            if b.first_ms == 0 {
                b.first_ms = meta.first_ms;
            }
            b.due_ms = meta.due_ms;
            for a in meta.log {
                if b.log.len() == ATTEMPT_LOG {
                    b.log.pop_front();
                }
                b.log.push_back(a);
            }
        }
        None => {
            batches.insert(key, meta);
        }
    }
}

struct DeadRecord {
    id: u64,
    endpoint: String,
    dead_at_ms: u64,
    reason: String,
    batch: Option<String>,
    attempts: Vec<AttemptInfo>,
    event: Event,
}

fn read_dead(payload: &[u8]) -> Result<DeadRecord, frame::Malformed> {
    let mut c = Cursor::new(payload);
    let id = c.u64()?;
    let endpoint = c.str()?.to_owned();
    let dead_at_ms = c.u64()?;
    let reason = c.str()?.to_owned();
    let batch = c.opt_str()?.map(str::to_owned);
    let n = c.u16()?;
    let attempts = (0..n).map(|_| c.attempt()).collect::<Result<_, _>>()?;
    let event = c.event()?;
    Ok(DeadRecord {
        id,
        endpoint,
        dead_at_ms,
        reason,
        batch,
        attempts,
        event,
    })
}

impl State {
    /// The active segment's length, buffered records included.
    fn logical_len(&self) -> u64 {
        self.active_len + self.unwritten.len() as u64
    }

    /// Buffers records for the active segment; says what the caller must do once it released
    /// the lock: write out (past `WRITE_OUT_BYTES`) or wake the sync thread (the buffer was
    /// empty).
    fn write(&mut self, buf: &[u8]) -> Result<Hint, OutboxError> {
        if let Some((kind, message)) = &self.failed {
            return Err(OutboxError::Failed {
                kind: *kind,
                message: message.clone(),
            });
        }
        let was_empty = self.unwritten.is_empty();
        self.unwritten.extend_from_slice(buf);
        self.buffered(buf.len() as u64);
        Ok(if self.unwritten.len() >= WRITE_OUT_BYTES {
            Hint::Now
        } else if was_empty {
            Hint::Kick
        } else {
            Hint::None
        })
    }

    /// Accounts `len` bytes just added to the write buffer.
    fn buffered(&mut self, len: u64) {
        self.disk_bytes += len;
        self.written += len;
        let logical = self.logical_len();
        if let Some(s) = self.segs.back_mut() {
            s.bytes = logical;
        }
    }

    /// Seals the active segment and starts a new one at `first_seq`. The sealed segment's
    /// buffered records are queued for the writer, which writes and syncs them first.
    fn roll(&mut self, dir: &Path, first_seq: u64) -> Result<(), OutboxError> {
        let id = self.next_seg_id;
        let old = self.segs.back().map_or(0, |s| s.id);
        let written = self.active_len;
        if let Some(s) = self.segs.back_mut() {
            s.written = written;
        }
        let rest = std::mem::take(&mut self.unwritten);
        self.sealed.push_back((old, self.active.clone(), rest));
        let f = new_segment(dir, id, first_seq).inspect_err(|e| {
            if let OutboxError::Io { source, .. } = e {
                self.failed = Some((source.kind(), source.to_string()));
            }
        })?;
        self.next_seg_id += 1;
        self.active = Arc::new(f);
        self.active_len = HEADER_LEN;
        self.disk_bytes += HEADER_LEN;
        self.segs.push_back(Seg {
            id,
            first_seq,
            end_seq: first_seq,
            bytes: HEADER_LEN,
            written: HEADER_LEN,
            live: 0,
            first_ms: 0,
            acked: HashMap::new(),
            unsettled: HashMap::new(),
        });
        Ok(())
    }

    /// Deletes head segments that hold nothing live (never the active one); `true` when one
    /// was deleted.
    fn delete_settled(&mut self, dir: &Path) -> bool {
        let mut any = false;
        while self.segs.len() > 1 && self.segs.front().is_some_and(|s| s.live == 0) {
            let Some(s) = self.segs.pop_front() else {
                break;
            };
            self.disk_bytes = self.disk_bytes.saturating_sub(s.bytes);
            let _ = fs::remove_file(seg_path(dir, s.id));
            any = true;
        }
        any
    }

    /// Drops the oldest segment whatever it holds (`DropOldest`): its unsettled pairs count
    /// as dropped.
    fn drop_oldest(&mut self, dir: &Path) {
        if self.segs.len() <= 1 {
            return;
        }
        let Some(s) = self.segs.pop_front() else {
            return;
        };
        self.dropped += s.live;
        if s.live > 0 {
            tracing::warn!(
                segment = s.id,
                events = s.live,
                "outbox full: oldest events dropped"
            );
            for (e, n) in &s.unsettled {
                if let Some(p) = self.pending.get_mut(e) {
                    *p = p.saturating_sub(*n);
                    if *p == 0 {
                        self.pending.remove(e);
                    }
                }
            }
            for m in self.restore.values_mut() {
                m.retain(|&q, _| q >= s.end_seq);
            }
        }
        self.disk_bytes = self.disk_bytes.saturating_sub(s.bytes);
        let _ = fs::remove_file(seg_path(dir, s.id));
    }
}

impl DeadLog {
    fn open(dir: &Path, report: &mut RecoveryReport) -> Result<Self, OutboxError> {
        let mut segs = BTreeMap::new();
        let mut index: BTreeMap<u64, DeadMeta> = BTreeMap::new();
        let mut next_id = 1u64;
        let mut next_seg = 1u64;
        for id in list_segments(dir)? {
            next_seg = next_seg.max(id + 1);
            let path = seg_path(dir, id);
            let mut head = [0u8; HEADER_LEN as usize];
            let ok = File::open(&path)
                .and_then(|mut f| f.read_exact(&mut head))
                .ok()
                .and_then(|()| frame::read_header(&head))
                .is_some();
            if !ok {
                report.corrupt_segments += 1;
                let _ = fs::remove_file(&path);
                continue;
            }
            let mut removed: Vec<u64> = Vec::new();
            let mut bytes = 0u64;
            let (_, cut, corrupt) = scan(&path, |k, payload, offset| match k {
                kind::DEAD => {
                    if let Ok(d) = read_dead(payload) {
                        next_id = next_id.max(d.id + 1);
                        bytes += (payload.len() + FRAME_HEADER) as u64;
                        index.insert(
                            d.id,
                            DeadMeta {
                                seg: id,
                                offset,
                                len: (payload.len() + FRAME_HEADER) as u32,
                                endpoint: Arc::from(d.endpoint.as_str()),
                                event_id: d.event.id().into(),
                                subject: d.event.subject().into(),
                                dead_at_ms: d.dead_at_ms,
                                reason: d.reason.into(),
                                attempts: d.attempts.len() as u32,
                            },
                        );
                    } else {
                        report.malformed_records += 1;
                    }
                }
                kind::REMOVED => {
                    if let Ok(ids) = Cursor::new(payload).seqs() {
                        removed.extend(ids);
                    }
                }
                _ => report.malformed_records += 1,
            })?;
            if cut > 0 {
                report.cut_bytes += cut;
                report.corrupt_segments += u64::from(corrupt);
            }
            for r in removed {
                index.remove(&r);
            }
            segs.insert(id, (0u64, bytes));
        }
        for m in index.values() {
            if let Some(s) = segs.get_mut(&m.seg) {
                s.0 += 1;
            }
        }
        let active = new_segment(dir, next_seg, next_id)?;
        segs.insert(next_seg, (0, 0));
        let mut d = Self {
            dir: dir.to_owned(),
            active: Arc::new(active),
            active_id: next_seg,
            active_len: HEADER_LEN,
            segs,
            index,
            next_id,
            dirty: false,
        };
        d.delete_settled();
        Ok(d)
    }

    fn roll(&mut self) -> Result<(), OutboxError> {
        self.active
            .sync_data()
            .map_err(|e| io_err("sync", &self.dir, e))?;
        let id = self.active_id + 1;
        self.active = Arc::new(new_segment(&self.dir, id, self.next_id)?);
        self.active_id = id;
        self.active_len = HEADER_LEN;
        self.segs.insert(id, (0, 0));
        Ok(())
    }

    /// Deletes head segments without live dead letters (never the active one).
    fn delete_settled(&mut self) {
        while let Some((&id, &(live, _))) = self.segs.first_key_value() {
            if id == self.active_id || live > 0 {
                break;
            }
            self.segs.remove(&id);
            let _ = fs::remove_file(seg_path(&self.dir, id));
        }
    }
}

/// What a caller must do once it released the state lock after buffering records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hint {
    /// Nothing: the sync thread was woken already.
    None,
    /// Wake the sync thread (the buffer was empty).
    Kick,
    /// Write out now (past `WRITE_OUT_BYTES`, or a batch's first record).
    Now,
}

/// Writes every buffered record to its segment file, in order, out of the state lock: the
/// buffers of sealed segments first (each synced once written: nothing writes to it again),
/// then the active segment's. One writer at a time (`io`, taken before the state lock), so
/// appenders only wait for the lock while a buffer is swapped, never for the disk. A failure
/// cuts the partial write (nothing written before is damaged), keeps the records in memory,
/// and stops intake.
fn write_out_all(state: &Mutex<State>, io: &Mutex<()>, dir: &Path) -> Result<(), OutboxError> {
    let _io = io.lock().unwrap_or_else(PoisonError::into_inner);
    let lock = || state.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let (seg, file, buf, sealed, base) = {
            let mut st = lock();
            if let Some((kind, message)) = &st.failed {
                return Err(OutboxError::Failed {
                    kind: *kind,
                    message: message.clone(),
                });
            }
            if let Some((seg, file, buf)) = st.sealed.pop_front() {
                (seg, file, buf, true, None)
            } else if st.unwritten.is_empty() {
                return Ok(());
            } else {
                let spare = std::mem::take(&mut st.spare);
                let buf = std::mem::replace(&mut st.unwritten, spare);
                let seg = st.segs.back().map_or(0, |s| s.id);
                (seg, st.active.clone(), buf, false, Some(st.active_len))
            }
        };
        let path = seg_path(dir, seg);
        let result = file
            .as_ref()
            .write_all(&buf)
            .and_then(|()| if sealed { file.sync_data() } else { Ok(()) });
        let mut st = lock();
        match result {
            Ok(()) => {
                let active = st.segs.back().map_or(0, |s| s.id);
                if active == seg {
                    if let Some(base) = base {
                        st.active_len = base + buf.len() as u64;
                    }
                } else if let Some(s) = st.segs.iter_mut().find(|s| s.id == seg) {
                    // A sealed segment's records (or the active buffer of a segment sealed
                    // while they were written): readable now.
                    s.written += buf.len() as u64;
                }
                if base.is_some() {
                    let mut buf = buf;
                    buf.clear();
                    st.spare = buf;
                }
            }
            Err(e) => {
                if let Some(base) = base {
                    // Cut what part of the buffer reached the file; keep the records.
                    let _ = file.set_len(base);
                    let mut rest = buf;
                    rest.extend_from_slice(&st.unwritten);
                    st.unwritten = rest;
                }
                st.failed = Some((e.kind(), e.to_string()));
                tracing::error!(error = %e, path = %path.display(), "outbox write failed; intake stopped");
                return Err(io_err("write", &path, e));
            }
        }
    }
}

/// The sync thread: group commit. Writes buffered records out within `WRITE_OUT_DELAY` of
/// the first one, and syncs when an append waits for it (`Durability::Sync`) or when the
/// interval passed with unsynced writes (`Durability::Interval`); ends when the store is
/// dropped.
fn sync_loop(state: &Mutex<State>, sync: &SyncShared, durability: Durability, dir: &Path) {
    let interval = match durability {
        Durability::Interval(d) => d,
        Durability::Sync => Duration::from_millis(200),
    };
    let lock = || state.lock().unwrap_or_else(PoisonError::into_inner);
    let mut synced = 0u64;
    let mut last_sync = Instant::now();
    loop {
        let (wanted, dirty) = {
            let req = sync.req.lock().unwrap_or_else(PoisonError::into_inner);
            let (mut req, _) = sync
                .cv
                .wait_timeout_while(req, interval, |r| !r.stop && r.wanted <= synced && !r.dirty)
                .unwrap_or_else(PoisonError::into_inner);
            if req.stop {
                return;
            }
            let dirty = std::mem::take(&mut req.dirty);
            (req.wanted, dirty)
        };
        let wanted = if dirty && wanted <= synced {
            // Let more records gather (one write for all of them), unless a `Sync` append
            // starts waiting meanwhile.
            let req = sync.req.lock().unwrap_or_else(PoisonError::into_inner);
            let (req, _) = sync
                .cv
                .wait_timeout_while(req, WRITE_OUT_DELAY, |r| !r.stop && r.wanted <= synced)
                .unwrap_or_else(PoisonError::into_inner);
            req.wanted
        } else {
            wanted
        };
        if let Err(e) = write_out_all(state, &sync.io, dir) {
            tracing::error!(error = %e, "outbox write-out failed");
        }
        let (active, dead, pos) = {
            let st = lock();
            // Written up to here (records buffered since, or of a segment sealed since, wait
            // for the next round).
            let pending: u64 = st.unwritten.len() as u64
                + st.sealed
                    .iter()
                    .map(|(_, _, b)| b.len() as u64)
                    .sum::<u64>();
            let pos = st.written - pending;
            (st.active.clone(), st.dead.dirty, pos)
        };
        let due = wanted > synced || last_sync.elapsed() >= interval;
        if (pos > synced || dead) && due {
            let dead = {
                let mut st = lock();
                std::mem::take(&mut st.dead.dirty).then(|| st.dead.active.clone())
            };
            let t = Instant::now();
            let r = active
                .sync_data()
                .and_then(|()| dead.map_or(Ok(()), |d| d.sync_data()));
            last_sync = Instant::now();
            let micros = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
            let mut st = lock();
            match r {
                Ok(()) => {
                    st.commit_micros_last = micros;
                    st.commit_micros_total += micros;
                    st.commit_count += 1;
                    metrics::histogram!("webhook_outbox_commit_seconds")
                        .record(micros as f64 / 1e6);
                }
                Err(e) => {
                    tracing::error!(error = %e, "outbox sync failed; intake stopped");
                    st.failed = Some((e.kind(), e.to_string()));
                }
            }
            metrics::gauge!("webhook_outbox_backlog_bytes").set(st.disk_bytes as f64);
            metrics::gauge!("webhook_outbox_backlog_events")
                .set(st.pending.values().sum::<u64>() as f64);
            metrics::gauge!("webhook_outbox_dead_letters").set(st.dead.index.len() as f64);
            let oldest = st
                .segs
                .iter()
                .find(|s| s.live > 0 && s.first_ms > 0)
                .map_or(0, |s| wall_ms(SystemTime::now()).saturating_sub(s.first_ms));
            metrics::gauge!("webhook_outbox_oldest_pending_seconds").set(oldest as f64 / 1e3);
            drop(st);
            synced = pos;
            // Waiters check for a failure after waking.
            sync.synced_tx.send_replace(synced);
        }
    }
}

/// The segment reader, for the fuzz targets (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzzing;
