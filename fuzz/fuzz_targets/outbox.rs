//! The durable outbox's recovery reader on random segment files (torn and corrupt segments):
//! the header, then frame by frame with each payload decoded as its kind (event, settlement,
//! batch, dead letter, removal), the torn or corrupt tail cut.
//!
//! Checked: the frames read are contiguous from the header to the cut point, kept + cut is the
//! file's size, the file is truncated to the cut point, and reading the recovered file again
//! finds the same records and nothing more to cut.
//!
//! Input: the segment file's bytes.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use webhook_sender::outbox::scan_segment;

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        base.join(format!("webhook-fuzz-outbox-{}.seg", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    std::fs::write(path, data).expect("write the segment");
    let first = scan_segment(path).expect("scan");
    if first.header.is_none() {
        assert!(first.records.is_empty());
        return;
    }
    let size = data.len() as u64;
    assert_eq!(first.kept + first.cut, size, "kept + cut is the size");
    assert!(first.kept >= 24, "the header is kept");
    let mut at = 24;
    for r in &first.records {
        assert_eq!(r.offset, at, "frames are contiguous");
        at += r.len;
    }
    assert_eq!(at, first.kept, "the cut is where the last frame ends");
    if first.corrupt {
        assert!(first.cut > 0, "corruption is cut");
    }
    let len = std::fs::metadata(path).expect("stat").len();
    assert_eq!(len, first.kept, "the file is truncated at the cut");
    let again = scan_segment(path).expect("scan again");
    assert_eq!(
        again.records, first.records,
        "the recovered file reads the same"
    );
    assert_eq!(
        (again.kept, again.cut),
        (first.kept, 0),
        "nothing more to cut"
    );
});
