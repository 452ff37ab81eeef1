//! The outbox's segment reader for the fuzz targets in `fuzz/` (feature `fuzzing`): not a
//! stable API.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::{read_batch, read_dead, scan};
use crate::outbox::OutboxError;
use crate::outbox::frame::{self, Cursor, FRAME_HEADER, HEADER_LEN, kind};

/// One record read by [`scan_segment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedRecord {
    /// The record kind byte.
    pub kind: u8,
    /// Offset of the frame in the file.
    pub offset: u64,
    /// Bytes of the frame (header and payload).
    pub len: u64,
    /// Whether the payload decoded as its kind (recovery counts the others as malformed).
    pub decoded: bool,
}

/// What [`scan_segment`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// The segment header `(id, first_seq)`; `None`: recovery removes the file unread.
    pub header: Option<(u64, u64)>,
    /// Bytes kept (the file is truncated to this length).
    pub kept: u64,
    /// Bytes cut (a torn or corrupt tail).
    pub cut: u64,
    /// Whether the cut was a corruption (not a torn write or the zeros past the end).
    pub corrupt: bool,
    /// The records, in file order.
    pub records: Vec<ScannedRecord>,
}

/// Reads the segment file at `path` the way recovery does: its header, then frame by frame,
/// decoding each payload as its kind, truncating a torn or corrupt tail.
///
/// # Errors
///
/// The file cannot be read or truncated.
pub fn scan_segment(path: &Path) -> Result<SegmentScan, OutboxError> {
    let mut head = [0u8; HEADER_LEN as usize];
    let header = File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .ok()
        .and_then(|()| frame::read_header(&head));
    if header.is_none() {
        return Ok(SegmentScan {
            header,
            kept: 0,
            cut: std::fs::metadata(path).map_or(0, |m| m.len()),
            corrupt: true,
            records: Vec::new(),
        });
    }
    let mut records = Vec::new();
    let (kept, cut, corrupt) = scan(path, |kind, payload, offset| {
        records.push(ScannedRecord {
            kind,
            offset,
            len: (payload.len() + FRAME_HEADER) as u64,
            decoded: decodes(kind, payload),
        });
    })?;
    Ok(SegmentScan {
        header,
        kept,
        cut,
        corrupt,
        records,
    })
}

/// Decodes a payload with the reader of its kind (the event log's and the dead-letter log's).
fn decodes(k: u8, payload: &[u8]) -> bool {
    let mut c = Cursor::new(payload);
    match k {
        kind::EVENT => frame::event_head(&mut c).and_then(|_| c.event()).is_ok(),
        kind::SETTLE => frame::settle(&mut c).is_ok(),
        kind::BATCH => read_batch(&mut c).is_ok(),
        kind::DEAD => read_dead(payload).is_ok(),
        kind::REMOVED => c.seqs().is_ok(),
        _ => false,
    }
}
