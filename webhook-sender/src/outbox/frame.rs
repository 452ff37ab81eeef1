//! The on-disk format: segment headers and checksummed record frames.
//!
//! ```text
//! segment  = header frame*
//! header   = magic "WHOUTBX1" (8) | segment id u64 LE | first event seq u64 LE     (24 bytes)
//! frame    = len u32 LE | crc32 u32 LE | kind u8 | payload (len bytes)
//!            crc32 (IEEE, crc32fast) covers kind and payload
//! ```
//!
//! A frame never spans segments. Reading stops at the first frame that is zeros (the end), too
//! short for its length (a torn write) or whose checksum differs (corruption); the reader
//! reports which, and where, so recovery can cut the segment there.
//!
//! Strings are `u16 length | UTF-8`, byte strings `u32 length | bytes`, integers little endian.

use std::time::Duration;

use bytes::Bytes;
use webhook_core::Event;

/// Segment magic and format version.
pub(crate) const MAGIC: &[u8; 8] = b"WHOUTBX1";
/// Bytes of a segment header.
pub(crate) const HEADER_LEN: u64 = 24;
/// Bytes of a frame header (len, crc, kind).
pub(crate) const FRAME_HEADER: usize = 9;
/// Largest payload accepted when reading (a larger length is a torn or corrupt frame).
pub(crate) const MAX_PAYLOAD: usize = 256 << 20;

/// Record kinds.
pub(crate) mod kind {
    /// An accepted event with the endpoints it was routed to.
    pub(crate) const EVENT: u8 = 1;
    /// Events settled at one endpoint.
    pub(crate) const SETTLE: u8 = 2;
    /// A batch formed or retried at one endpoint (its id, attempts, next due time).
    pub(crate) const BATCH: u8 = 3;
    /// A dead letter (in the dead-letter log).
    pub(crate) const DEAD: u8 = 4;
    /// Dead letters removed (purged or redelivered; in the dead-letter log).
    pub(crate) const REMOVED: u8 = 5;
}

/// How events settled at an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettleKind {
    /// Acknowledged with a 2xx.
    Delivered = 1,
    /// Given up; a dead letter was written first.
    DeadLettered = 2,
    /// Dropped by policy (overflow, removal under `Drop`).
    Dropped = 3,
}

impl SettleKind {
    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Delivered),
            2 => Some(Self::DeadLettered),
            3 => Some(Self::Dropped),
            _ => None,
        }
    }
}

/// One attempt, as the attempt log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptInfo {
    /// When the attempt's answer (or failure) was seen, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// How long the attempt took.
    pub latency: Duration,
    /// What went wrong (empty for a success).
    pub error: String,
}

/// A decoding failure: the frame or payload is not what it claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

// ---- writing ------------------------------------------------------------------------------

/// Appends frames to a buffer.
#[derive(Debug, Default)]
pub(crate) struct FrameWriter {
    pub(crate) buf: Vec<u8>,
    start: usize,
}

impl FrameWriter {
    /// A writer appending frames to `buf` (what it holds stays).
    pub(crate) fn over(buf: Vec<u8>) -> Self {
        Self { buf, start: 0 }
    }

    /// Starts a frame of `kind`.
    pub(crate) fn begin(&mut self, kind: u8) {
        self.start = self.buf.len();
        self.buf.extend_from_slice(&[0; FRAME_HEADER]);
        self.buf[self.start + 8] = kind;
    }

    /// Ends the frame: writes its length and checksum.
    pub(crate) fn end(&mut self) {
        let s = self.start;
        let len = (self.buf.len() - s - FRAME_HEADER) as u32;
        let crc = crc32fast::hash(&self.buf[s + 8..]);
        self.buf[s..s + 4].copy_from_slice(&len.to_le_bytes());
        self.buf[s + 4..s + 8].copy_from_slice(&crc.to_le_bytes());
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// A string, cut at 65,535 bytes on a character boundary.
    pub(crate) fn str(&mut self, s: &str) {
        let mut end = s.len().min(u16::MAX as usize);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u16(end as u16);
        self.buf.extend_from_slice(&s.as_bytes()[..end]);
    }
    pub(crate) fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.buf.extend_from_slice(b);
    }
    pub(crate) fn seqs(&mut self, seqs: &[u64]) {
        self.u32(seqs.len() as u32);
        for &s in seqs {
            self.u64(s);
        }
    }
    pub(crate) fn event(&mut self, e: &Event) {
        self.str(e.id());
        self.str(e.subject());
        self.u64(e.timestamp_nanos());
        self.opt_str(e.partition_key());
        self.opt_str(e.tenant());
        let labels = e.labels();
        self.u16(labels.len().min(u16::MAX as usize) as u16);
        for l in labels.iter().take(u16::MAX as usize) {
            self.str(l);
        }
        self.bytes(e.body());
    }
    pub(crate) fn attempt(&mut self, a: &AttemptInfo) {
        self.u64(a.at_ms);
        self.u16(a.status.unwrap_or(0));
        self.u64(u64::try_from(a.latency.as_micros()).unwrap_or(u64::MAX));
        self.str(&a.error);
    }

    /// The exact length of the `EVENT` frame [`event_record`](Self::event_record) writes.
    pub(crate) fn event_record_len(endpoints: &[&str], e: &Event) -> usize {
        let s = |t: &str| 2 + t.len().min(u16::MAX as usize);
        let opt = |t: Option<&str>| 1 + t.map_or(0, s);
        FRAME_HEADER
            + 8
            + 8
            + 2
            + endpoints.iter().map(|n| s(n)).sum::<usize>()
            + s(e.id())
            + s(e.subject())
            + 8
            + opt(e.partition_key())
            + opt(e.tenant())
            + 2
            + e.labels()
                .iter()
                .take(u16::MAX as usize)
                .map(|l| s(l))
                .sum::<usize>()
            + 4
            + e.body().len()
    }

    /// An `EVENT` frame.
    pub(crate) fn event_record(&mut self, seq: u64, wall_ms: u64, endpoints: &[&str], e: &Event) {
        self.begin(kind::EVENT);
        self.u64(seq);
        self.u64(wall_ms);
        self.u16(endpoints.len() as u16);
        for name in endpoints {
            self.str(name);
        }
        self.event(e);
        self.end();
    }

    /// A `SETTLE` frame.
    pub(crate) fn settle_record(
        &mut self,
        endpoint: &str,
        how: SettleKind,
        batch: Option<&str>,
        seqs: &[u64],
    ) {
        self.begin(kind::SETTLE);
        self.str(endpoint);
        self.u8(how as u8);
        self.opt_str(batch);
        self.seqs(seqs);
        self.end();
    }
}

// ---- reading ------------------------------------------------------------------------------

/// Reads a payload field by field.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(n).ok_or(Malformed)?;
        let s = self.buf.get(self.pos..end).ok_or(Malformed)?;
        self.pos = end;
        Ok(s)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, Malformed> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().map_err(|_| Malformed)?,
        ))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| Malformed)?,
        ))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| Malformed)?,
        ))
    }
    pub(crate) fn str(&mut self) -> Result<&'a str, Malformed> {
        let n = self.u16()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| Malformed)
    }
    pub(crate) fn opt_str(&mut self) -> Result<Option<&'a str>, Malformed> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            _ => Err(Malformed),
        }
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub(crate) fn seqs(&mut self) -> Result<Vec<u64>, Malformed> {
        let n = self.u32()? as usize;
        if n > (self.buf.len() - self.pos) / 8 {
            return Err(Malformed);
        }
        (0..n).map(|_| self.u64()).collect()
    }
    /// An event; its body is validated as one compact JSON value.
    pub(crate) fn event(&mut self) -> Result<Event, Malformed> {
        let id = self.str()?;
        let subject = self.str()?;
        let ts = self.u64()?;
        let key = self.opt_str()?;
        let tenant = self.opt_str()?;
        let nlabels = self.u16()?;
        let mut b = Event::builder(id, subject).timestamp_nanos(ts);
        if let Some(k) = key {
            b = b.partition_key(k);
        }
        if let Some(t) = tenant {
            b = b.tenant(t);
        }
        for _ in 0..nlabels {
            b = b.label(self.str()?);
        }
        let body = Bytes::copy_from_slice(self.bytes()?);
        b.json_bytes(body).map_err(|_| Malformed)
    }
    pub(crate) fn attempt(&mut self) -> Result<AttemptInfo, Malformed> {
        Ok(AttemptInfo {
            at_ms: self.u64()?,
            status: Some(self.u16()?).filter(|&s| s != 0),
            latency: Duration::from_micros(self.u64()?),
            error: self.str()?.to_owned(),
        })
    }
}

/// The head of an `EVENT` payload: its seq, acceptance time and endpoints; the cursor is then
/// at the event.
pub(crate) fn event_head<'a>(c: &mut Cursor<'a>) -> Result<(u64, u64, Vec<&'a str>), Malformed> {
    let seq = c.u64()?;
    let wall_ms = c.u64()?;
    let n = c.u16()?;
    let endpoints = (0..n).map(|_| c.str()).collect::<Result<_, _>>()?;
    Ok((seq, wall_ms, endpoints))
}

/// A decoded `SETTLE` payload.
pub(crate) struct Settle<'a> {
    pub(crate) endpoint: &'a str,
    /// How they settled (kept for `webhook outbox` dumps; recovery only needs that they did).
    #[cfg_attr(not(test), allow(dead_code, reason = "read by tests and dumps"))]
    pub(crate) how: SettleKind,
    pub(crate) batch: Option<&'a str>,
    pub(crate) seqs: Vec<u64>,
}

pub(crate) fn settle<'a>(c: &mut Cursor<'a>) -> Result<Settle<'a>, Malformed> {
    Ok(Settle {
        endpoint: c.str()?,
        how: SettleKind::from_u8(c.u8()?).ok_or(Malformed)?,
        batch: c.opt_str()?,
        seqs: c.seqs()?,
    })
}

/// What a frame read from a buffer turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next<'a> {
    /// A whole frame with a good checksum: its kind, payload and total length.
    Frame(u8, &'a [u8], usize),
    /// The buffer ends before the frame does (read more, or a torn tail at the file's end).
    Short,
    /// Zeros: the end of the written data.
    End,
    /// The checksum differs or the length is impossible.
    Corrupt,
}

/// Reads the frame at the start of `buf`.
pub(crate) fn next_frame(buf: &[u8]) -> Next<'_> {
    if buf.len() < FRAME_HEADER {
        return if buf.iter().all(|&b| b == 0) {
            if buf.is_empty() {
                Next::Short
            } else {
                Next::End
            }
        } else {
            Next::Short
        };
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len == 0 && crc == 0 && buf[8] == 0 {
        return Next::End;
    }
    if len > MAX_PAYLOAD {
        return Next::Corrupt;
    }
    let total = FRAME_HEADER + len;
    if buf.len() < total {
        return Next::Short;
    }
    if crc32fast::hash(&buf[8..total]) != crc {
        return Next::Corrupt;
    }
    Next::Frame(buf[8], &buf[FRAME_HEADER..total], total)
}

/// A segment header.
pub(crate) fn header(id: u64, first_seq: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&id.to_le_bytes());
    h[16..24].copy_from_slice(&first_seq.to_le_bytes());
    h
}

/// Reads a segment header: `(id, first_seq)`.
pub(crate) fn read_header(buf: &[u8]) -> Option<(u64, u64)> {
    if buf.len() < HEADER_LEN as usize || &buf[..8] != MAGIC {
        return None;
    }
    let id = u64::from_le_bytes(buf[8..16].try_into().ok()?);
    let first = u64::from_le_bytes(buf[16..24].try_into().ok()?);
    Some((id, first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> Event {
        Event::builder("evt_1", "policy.runtime")
            .timestamp_nanos(42)
            .partition_key("host")
            .tenant("acme")
            .label("eu")
            .json_bytes(&br#"{"a":1}"#[..])
            .unwrap()
    }

    #[test]
    fn event_frames_round_trip_and_detect_damage() {
        let mut w = FrameWriter::default();
        w.event_record(7, 1_000, &["siem", "archive"], &ev());
        let buf = w.buf.clone();
        assert_eq!(
            FrameWriter::event_record_len(&["siem", "archive"], &ev()),
            buf.len()
        );
        let Next::Frame(k, payload, total) = next_frame(&buf) else {
            panic!("a frame")
        };
        assert_eq!((k, total), (kind::EVENT, buf.len()));
        let mut c = Cursor::new(payload);
        let (seq, wall, eps) = event_head(&mut c).unwrap();
        assert_eq!((seq, wall, eps), (7, 1_000, vec!["siem", "archive"]));
        assert_eq!(c.event().unwrap(), ev());
        // Torn: every proper prefix is short (or zeros), never a frame.
        for cut in 1..buf.len() {
            assert!(matches!(next_frame(&buf[..cut]), Next::Short | Next::End));
        }
        // Any flipped byte past the length is caught by the checksum.
        for i in 4..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert_eq!(next_frame(&bad), Next::Corrupt, "byte {i}");
        }
        assert_eq!(next_frame(&[0; 32]), Next::End);
    }

    #[test]
    fn settle_frames_round_trip() {
        let mut w = FrameWriter::default();
        w.settle_record("siem", SettleKind::DeadLettered, Some("msg_1"), &[3, 9]);
        let Next::Frame(k, payload, _) = next_frame(&w.buf) else {
            panic!("a frame")
        };
        assert_eq!(k, kind::SETTLE);
        let s = settle(&mut Cursor::new(payload)).unwrap();
        assert_eq!(
            (s.endpoint, s.how, s.batch, s.seqs),
            ("siem", SettleKind::DeadLettered, Some("msg_1"), vec![3, 9])
        );
        // A payload claiming more seqs than it holds is refused, not allocated.
        let mut c = Cursor::new(&[0xff, 0xff, 0xff, 0x7f]);
        assert_eq!(c.seqs(), Err(Malformed));
    }
}
