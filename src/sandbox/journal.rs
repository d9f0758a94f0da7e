//! The request journal: every API request the sandbox answered (or dropped), in completion
//! order, in a ring buffer of bounded capacity (`SandboxConfig::journal_capacity`, default
//! 1,000,000; the oldest entries go first). Inspection routes are not journaled.
//!
//! In: one `JournalEntry` per request. Out: snapshots for `/__sandbox/journal` and tests.

use super::faults::lock;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Mutex;

/// One API request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    /// 1-based, increasing in completion order; never reused, even after a ring overflow.
    pub seq: u64,
    /// When the request was received.
    pub at: jiff::Timestamp,
    /// When it was answered (or dropped).
    #[serde(default)]
    pub answered_at: Option<jiff::Timestamp>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The JSON body (or the raw text if it was not JSON; `null` if empty).
    pub body: Value,
    /// HTTP status answered; 0 when the connection was dropped without an answer.
    pub status: u16,
    pub state_changed: bool,
    /// `fail_before`, `drop_before`, `fail_after`, `drop_after`, `rate_limited`, or none.
    pub fault: Option<String>,
}

#[derive(Debug)]
pub(super) struct Journal {
    capacity: usize,
    inner: Mutex<(u64, VecDeque<JournalEntry>)>,
}

impl Journal {
    pub(super) fn new(capacity: usize) -> Journal {
        Journal {
            capacity,
            inner: Mutex::new((0, VecDeque::new())),
        }
    }

    /// Appends an entry, assigning its `seq`.
    pub(super) fn record(&self, mut entry: JournalEntry) {
        let mut inner = lock(&self.inner);
        inner.0 += 1;
        entry.seq = inner.0;
        if self.capacity == 0 {
            return;
        }
        if inner.1.len() >= self.capacity {
            inner.1.pop_front();
        }
        inner.1.push_back(entry);
    }

    /// Entries with `seq > since`, at most `limit`.
    pub(super) fn entries(&self, since: u64, limit: usize) -> Vec<JournalEntry> {
        lock(&self.inner)
            .1
            .iter()
            .filter(|e| e.seq > since)
            .take(limit)
            .cloned()
            .collect()
    }

    /// Total requests recorded (including those the ring has dropped).
    pub(super) fn total(&self) -> u64 {
        lock(&self.inner).0
    }

    pub(super) fn clear(&self) {
        *lock(&self.inner) = (0, VecDeque::new());
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> JournalEntry {
        JournalEntry {
            seq: 0,
            at: jiff::Timestamp::UNIX_EPOCH,
            answered_at: None,
            method: "GET".into(),
            path: "/x".into(),
            query: None,
            body: Value::Null,
            status: 200,
            state_changed: false,
            fault: None,
        }
    }

    #[test]
    fn ring_keeps_newest() {
        let j = Journal::new(3);
        for _ in 0..5 {
            j.record(entry());
        }
        let seqs: Vec<u64> = j.entries(0, usize::MAX).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![3, 4, 5]);
        assert_eq!(j.total(), 5);
        assert_eq!(j.entries(4, 10).len(), 1);
    }
}
