//! Readers of what a run left behind: the report file and the sandbox's request journal.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use wts_playbook::sandbox::JournalEntry;

/// `n` fresh random UUIDs.
pub(crate) fn uuids(n: usize) -> Vec<String> {
    (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect()
}

/// The report at `path`, parsed; panics if it is missing or not JSON.
pub(crate) fn read_report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// How many lines the report at `path` holds so far (0 if there is none yet).
pub(crate) fn report_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

/// Waits (at most 20 s) until the report holds at least `n` lines.
pub(crate) fn wait_for_lines(path: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while report_lines(path) < n {
        assert!(Instant::now() < deadline, "the run did not progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Report items counted per status.
pub(crate) fn statuses(items: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i["status"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    m
}

/// The session id of a `PUT /chat/v1/session/{id}/complete`.
pub(crate) fn completed_id(e: &JournalEntry) -> Option<&str> {
    (e.method == "PUT")
        .then(|| {
            e.path
                .strip_prefix("/chat/v1/session/")?
                .strip_suffix("/complete")
        })
        .flatten()
}

/// The session id of a `POST /chat/v1/session/{id}/message`.
pub(crate) fn message_post_id(e: &JournalEntry) -> Option<&str> {
    (e.method == "POST")
        .then(|| {
            e.path
                .strip_prefix("/chat/v1/session/")?
                .strip_suffix("/message")
        })
        .flatten()
}

/// How many journal entries match, per object id (`pick` names the id an entry is about).
pub(crate) fn count_by<'a>(
    journal: &'a [JournalEntry],
    pick: impl Fn(&'a JournalEntry) -> Option<&'a str>,
) -> HashMap<&'a str, usize> {
    let mut m = HashMap::new();
    for e in journal {
        if let Some(id) = pick(e) {
            *m.entry(id).or_default() += 1;
        }
    }
    m
}
