//! The unreachable-server detector: a run against a server that is gone for good should end,
//! not grind through thousands of items that each fail after their retries.
//!
//! In: per item that gave up, whether its last try failed to connect; per HTTP answer, "the
//! server answered". Out: the moment the run should end (one `true` from [`Unreachable::failed`]).
//!
//! What holds: only items that used up their retries on connection failures count, so a server
//! that comes back within the retry window is ridden through; any answer at all (even a 500)
//! resets the count; the verdict is given once.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

#[derive(Debug)]
pub(crate) struct Unreachable {
    /// Items in a row that gave up on connection failures.
    streak: AtomicU32,
    threshold: u32,
    tripped: AtomicBool,
}

impl Unreachable {
    /// Trips after `threshold` consecutive items failed to connect (at least 1).
    pub(crate) fn new(threshold: u32) -> Unreachable {
        Unreachable {
            streak: AtomicU32::new(0),
            threshold: threshold.max(1),
            tripped: AtomicBool::new(false),
        }
    }

    /// The server answered something.
    pub(crate) fn answered(&self) {
        self.streak.store(0, Ordering::SeqCst);
    }

    /// An item gave up after its retries because it could not connect. Returns `true` once,
    /// when this makes `threshold` in a row: the caller ends the run.
    pub(crate) fn failed(&self) -> bool {
        let n = self.streak.fetch_add(1, Ordering::SeqCst) + 1;
        n >= self.threshold && !self.tripped.swap(true, Ordering::SeqCst)
    }

    pub(crate) fn threshold(&self) -> u32 {
        self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_once_after_a_streak_and_an_answer_resets_it() {
        let u = Unreachable::new(3);
        assert!(!u.failed());
        assert!(!u.failed());
        u.answered();
        assert!(!u.failed());
        assert!(!u.failed());
        assert!(u.failed(), "third in a row");
        assert!(!u.failed(), "only once");
        assert!(Unreachable::new(0).failed(), "a threshold of 0 means 1");
    }
}
