//! The inbox's deduplication set: the message ids it holds or has held, for a window, kept on
//! disk so a restart still recognises a provider's retry.
//!
//! Each id is reduced to 128 bits of its SHA-256 (stable across restarts, unlike a keyed
//! hash; an id is chosen by an authenticated sender, so collisions are not theirs to aim at).
//! The journal `seen` is a sequence of 24-byte entries: the key and the expiry (ms since the
//! Unix epoch), little-endian. Entries are appended in batches (before the messages they name
//! can be settled, so an id is on disk before its message can leave the event log: after a
//! crash an id is either in the journal or its message is still in the log) and the file is
//! rewritten with the live entries once it holds more than twice as many as are live.
//!
//! States: an id being stored is *in flight* (a concurrent copy is answered `409`, so the
//! provider retries it later: if the store then fails, nothing was acknowledged twice); once
//! stored it is *held* until it expires.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

const ENTRY: usize = 24;

/// The key of a message id.
pub(crate) fn key(id: &str) -> u128 {
    let digest = Sha256::digest(id.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(k)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Not seen: now reserved (in flight).
    Fresh,
    /// Being stored by another request.
    InFlight,
    /// Stored already.
    Held,
}

#[derive(Debug)]
pub(crate) struct SeenSet {
    path: PathBuf,
    file: File,
    /// key → (expires ms, stored).
    map: HashMap<u128, (u64, bool)>,
    /// Stored keys in order of insertion, with their expiry (for expiry and the bound).
    order: VecDeque<(u128, u64)>,
    capacity: usize,
    /// Entries not yet written.
    unwritten: Vec<u8>,
    /// Entries in the file.
    in_file: u64,
}

impl SeenSet {
    /// Opens (creating) the journal at `path`, keeping what has not expired at `now_ms`.
    pub(crate) fn open(path: &Path, capacity: usize, now_ms: u64) -> io::Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut set = Self {
            path: path.to_owned(),
            file,
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            unwritten: Vec::new(),
            in_file: 0,
        };
        // A torn last entry (a crash mid-write) is ignored; the rewrite below drops it.
        for chunk in bytes.chunks_exact(ENTRY) {
            let k = u128::from_le_bytes(chunk[..16].try_into().unwrap_or([0; 16]));
            let exp = u64::from_le_bytes(chunk[16..].try_into().unwrap_or([0; 8]));
            if exp > now_ms {
                set.remember(k, exp);
            }
        }
        set.in_file = (bytes.len() / ENTRY) as u64;
        if bytes.len() % ENTRY != 0 || set.in_file > 2 * set.order.len() as u64 + 1024 {
            set.rewrite()?;
        }
        Ok(set)
    }

    fn remember(&mut self, k: u128, exp: u64) {
        if self.map.insert(k, (exp, true)).is_none() {
            self.order.push_back((k, exp));
            while self.order.len() > self.capacity {
                if let Some((old, _)) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    /// Looks `k` up at `now_ms`, reserving it when fresh.
    pub(crate) fn begin(&mut self, k: u128, now_ms: u64) -> Seen {
        self.expire(now_ms);
        match self.map.get(&k) {
            Some((_, true)) => Seen::Held,
            Some((_, false)) => Seen::InFlight,
            None => {
                self.map.insert(k, (u64::MAX, false));
                Seen::Fresh
            }
        }
    }

    /// The reservation of `k` ended without storing the message.
    pub(crate) fn abort(&mut self, k: u128) {
        if let Some((_, false)) = self.map.get(&k) {
            self.map.remove(&k);
        }
    }

    /// `k` is stored until `exp_ms`; its entry is written with the next [`write`](Self::write).
    pub(crate) fn commit(&mut self, k: u128, exp_ms: u64) {
        self.map.remove(&k);
        self.remember(k, exp_ms);
        self.unwritten.extend_from_slice(&k.to_le_bytes());
        self.unwritten.extend_from_slice(&exp_ms.to_le_bytes());
    }

    /// Adds a key found in the event log at open (a message stored before a crash whose
    /// journal entry may not have been written).
    pub(crate) fn held(&mut self, k: u128, exp_ms: u64) {
        if !self.map.contains_key(&k) {
            self.commit(k, exp_ms);
        }
    }

    fn expire(&mut self, now_ms: u64) {
        while let Some(&(k, exp)) = self.order.front() {
            if exp > now_ms {
                break;
            }
            self.order.pop_front();
            if let Some((e, true)) = self.map.get(&k)
                && *e == exp
            {
                self.map.remove(&k);
            }
        }
    }

    /// Writes the entries not yet written (one `write`), rewriting the file when it has
    /// grown to more than twice the live entries.
    pub(crate) fn write(&mut self) -> io::Result<()> {
        if self.unwritten.is_empty() {
            return Ok(());
        }
        if self.in_file > 2 * self.order.len() as u64 + 65_536 {
            return self.rewrite();
        }
        self.file.write_all(&self.unwritten)?;
        self.in_file += (self.unwritten.len() / ENTRY) as u64;
        self.unwritten.clear();
        Ok(())
    }

    /// Syncs the journal.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.write()?;
        self.file.sync_data()
    }

    /// Replaces the file with the live entries (a temporary file renamed over it).
    fn rewrite(&mut self) -> io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut out = Vec::with_capacity(self.order.len() * ENTRY);
        for (k, exp) in &self.order {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&exp.to_le_bytes());
        }
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&out)?;
            f.sync_data()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        self.file = OpenOptions::new()
            .append(true)
            .read(true)
            .open(&self.path)?;
        self.in_file = self.order.len() as u64;
        self.unwritten.clear();
        Ok(())
    }

    /// Ids held.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("inbox-seen-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn states_and_reopen() {
        let d = dir("states");
        let path = d.join("seen");
        let mut s = SeenSet::open(&path, 100, 0).unwrap();
        let (a, b) = (key("a"), key("b"));
        assert_eq!(s.begin(a, 10), Seen::Fresh);
        assert_eq!(s.begin(a, 10), Seen::InFlight);
        s.abort(a);
        assert_eq!(s.begin(a, 10), Seen::Fresh);
        s.commit(a, 1_000);
        assert_eq!(s.begin(a, 20), Seen::Held);
        assert_eq!(s.begin(b, 20), Seen::Fresh);
        s.commit(b, 50);
        s.write().unwrap();
        drop(s);
        // Reopened: `a` held, `b` expired, a torn tail ignored.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&[1, 2, 3])
            .unwrap();
        let mut s = SeenSet::open(&path, 100, 100).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s.begin(a, 100), Seen::Held);
        assert_eq!(s.begin(b, 100), Seen::Fresh);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), ENTRY as u64);
        // Expiry in memory.
        assert_eq!(s.begin(a, 1_000), Seen::Fresh);
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn bounded_and_compacted() {
        let d = dir("bounded");
        let path = d.join("seen");
        let mut s = SeenSet::open(&path, 10, 0).unwrap();
        for i in 0..100_000u32 {
            let k = key(&i.to_string());
            assert_eq!(s.begin(k, 1), Seen::Fresh);
            s.commit(k, 10_000);
            if i % 1000 == 999 {
                s.write().unwrap();
            }
        }
        assert_eq!(s.len(), 10);
        assert!(std::fs::metadata(&path).unwrap().len() < 80_000 * ENTRY as u64);
        drop(s);
        let mut s = SeenSet::open(&path, 10, 0).unwrap();
        assert_eq!(s.begin(key("99999"), 2), Seen::Held);
        assert_eq!(s.begin(key("0"), 2), Seen::Fresh);
        std::fs::remove_dir_all(&d).ok();
    }
}
