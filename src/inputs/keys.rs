//! Duplicate-key detection in constant memory per row.
//!
//! In: each valid row's key bytes and its record index. Out: the line where the same key was
//! first used, or nothing. Only a 64-bit hash of each key is kept (hash → record index); on a
//! hash hit the first record is re-read from the file (a seek to the nearest of the checkpoints
//! kept every [`CHECKPOINT_EVERY`] records, then at most that many records read) and its key
//! compared byte for byte, so a hash collision never reports a false duplicate. Keys that did
//! collide, or were confirmed duplicated, are then kept exactly (rare: those are errors).

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::io;
use std::path::{Path, PathBuf};

use csv::Position;

use super::source::Source;

/// One checkpoint (a seek position) per this many records.
const CHECKPOINT_EVERY: u64 = 1024;

/// The map's keys are already hashes: use them as they are.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(super) struct KeySet {
    hasher: RandomState,
    /// Hash of a key → index of the record that used it first.
    first: HashMap<u64, u64, BuildHasherDefault<PassThrough>>,
    /// Seek position of record `k * CHECKPOINT_EVERY`.
    checkpoints: Vec<Position>,
    /// Keys known exactly (collided or duplicated) → line of first use.
    exact: HashMap<Box<[u8]>, u64>,
    verifier: Option<Source>,
    path: PathBuf,
    delimiter: u8,
    key_index: usize,
}

impl KeySet {
    /// `expected_rows` sizes the table up front (0 if unknown), so that it never holds an old
    /// and a new copy during a resize.
    pub(super) fn new(path: &Path, delimiter: u8, key_index: usize, expected_rows: usize) -> Self {
        KeySet {
            hasher: RandomState::new(),
            first: HashMap::with_capacity_and_hasher(expected_rows, BuildHasherDefault::default()),
            checkpoints: Vec::new(),
            exact: HashMap::new(),
            verifier: None,
            path: path.to_path_buf(),
            delimiter,
            key_index,
        }
    }

    /// Must be called for every data record (valid or not), in order, before `insert`.
    pub(super) fn note_record(&mut self, index: u64, seek: &Position) {
        if index.is_multiple_of(CHECKPOINT_EVERY) {
            debug_assert_eq!(self.checkpoints.len() as u64, index / CHECKPOINT_EVERY);
            self.checkpoints.push(seek.clone());
        }
    }

    /// Records `key` as used by record `index` on `line`; the first line of an earlier use.
    pub(super) fn insert(&mut self, key: &[u8], index: u64, line: u64) -> io::Result<Option<u64>> {
        let hash = self.hasher.hash_one(key);
        let first_index = match self.first.entry(hash) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(index);
                return Ok(None);
            }
            std::collections::hash_map::Entry::Occupied(o) => *o.get(),
        };
        if let Some(&first_line) = self.exact.get(key) {
            return Ok(Some(first_line));
        }
        let (first_key, first_line) = self.reread(first_index)?;
        if first_key == key {
            self.exact.insert(key.into(), first_line);
            Ok(Some(first_line))
        } else {
            // A genuine hash collision: remember this key exactly from now on.
            self.exact.insert(key.into(), line);
            Ok(None)
        }
    }

    /// The key and line of record `index`, read again from the file.
    fn reread(&mut self, index: u64) -> io::Result<(Vec<u8>, u64)> {
        let checkpoint = usize::try_from(index / CHECKPOINT_EVERY).unwrap_or(usize::MAX);
        let pos = self
            .checkpoints
            .get(checkpoint)
            .cloned()
            .ok_or_else(|| io::Error::other("duplicate-key checkpoint missing"))?;
        let source = if let Some(source) = &mut self.verifier {
            source
        } else {
            let opened = Source::open(&self.path, self.delimiter).map_err(|e| match e {
                super::source::OpenError::Io(e) => e,
                _ => io::Error::other("the file disappeared while it was read"),
            })?;
            self.verifier.insert(opened)
        };
        source.seek(pos)?;
        let mut at = None;
        for _ in 0..=index % CHECKPOINT_EVERY {
            at = source.next_record()?;
        }
        let at = at.ok_or_else(|| io::Error::other("the file changed while it was read"))?;
        Ok((source.field(self.key_index).to_vec(), at.line))
    }

    /// Approximate heap bytes held (for tests and the benchmark).
    pub(super) fn heap_bytes(&self) -> usize {
        self.first.capacity() * 17 + self.checkpoints.capacity() * std::mem::size_of::<Position>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collision_is_not_a_duplicate() {
        // Force every key onto one hash by giving two different keys the same `first` entry.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.csv");
        std::fs::write(&path, "id\naaa\nbbb\nbbb\naaa\n").unwrap();
        let mut set = KeySet::new(&path, b',', 0, 0);
        let mut source = Source::open(&path, b',').ok().unwrap();
        source.next_record().unwrap(); // header
        let mut found = Vec::new();
        for index in 0..4u64 {
            let at = source.next_record().unwrap().unwrap();
            set.note_record(index, &at.seek);
            let key = source.field(0).to_vec();
            // Simulate a collision: pretend every key hashes like the first one.
            if index > 0 {
                let h = set.hasher.hash_one(b"aaa".as_slice());
                let hk = set.hasher.hash_one(key.as_slice());
                if let Some(&i) = set.first.get(&h) {
                    set.first.insert(hk, i);
                }
            }
            found.push(set.insert(&key, index, at.line).unwrap());
        }
        // Line 3 (`bbb`) collides with line 2 (`aaa`) but is not a duplicate; line 4 repeats
        // line 3's key, line 5 repeats line 2's.
        assert_eq!(found, vec![None, None, Some(3), Some(2)]);
    }
}
