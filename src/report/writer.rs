//! The incremental report writer: the report file is written as the run goes, one item per
//! line, so a million items need no memory and a file cut short by a crash can still be read.
//!
//! In: a [`ReportHeader`], then [`ItemRecord`]s as items finish, then the outcome.
//! Out: a file that is valid JSON once [`ReportWriter::finish`] has run, laid out as
//!
//! ```text
//! {"format":1,"tool":"…",…,"settings":{…},"items":[      <- line 1: the header, ends with `"items":[`
//! {"step":"close","index":0,…}                            <- first item: no comma
//! ,{"step":"close","index":1,…}                           <- each later item: a LEADING comma
//! ],"finished_at":"…","outcome":"completed","totals":{…}} <- footer line
//! ```
//!
//! The comma separating items is written at the START of every item line after the first, so
//! each line is complete when its newline is written and every item line parses on its own
//! after stripping an optional leading `,` (`reader.rs` relies on this).
//!
//! Buffering: items go through a 64 KiB buffer that is flushed to the OS when the previous
//! flush is older than [`FLUSH_INTERVAL`], when an item closes an in-flight marker (below), on
//! [`ReportWriter::flush`] and on [`ReportWriter::finish`].
//!
//! Crash safety for non-idempotent requests: before sending one, the scheduler calls
//! [`ReportWriter::write_started`], which appends `{"step","index","key"}` to a sidecar journal
//! `<report>.inflight` and flushes it to the OS before returning (and, by default, to the disk
//! with `fdatasync`, so power loss cannot forget it either; see [`ReportWriter::set_sync_markers`]).
//! The `fdatasync` costs 0.7 to 3 ms on the development VM's disk (`examples/report_bench.rs`):
//! nothing under the API's rate limit (3 requests/s), but a ceiling of 300 to 1,400 markers/s
//! without one, lifted by
//! [`ReportWriter::write_started_batch`] (one sync per batch) or by turning sync off (sandbox).
//! A reader that finds a marker with no item record for the same step, index and key reports
//! it as in flight, and `--resume` treats it as `unknown`: never sent again automatically.
//! The sidecar is removed by `finish`, after the report itself is on disk.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::model::{ItemRecord, ItemStatus, Outcome, ReportFooter, ReportHeader, RunFacts, Totals};

/// Buffered items are pushed to the OS when the last flush is older than this.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// Size of the report's write buffer.
const BUFFER_BYTES: usize = 64 * 1024;

/// What the header line ends with; the reader looks for it.
pub(crate) const ITEMS_OPEN: &str = "\"items\":[";

/// One line of the `<report>.inflight` sidecar: a non-idempotent request about to be sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InFlight {
    pub step: String,
    pub index: u64,
    pub key: String,
    /// When the request was about to be sent (verification reads look for effects since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<jiff::Timestamp>,
}

/// A marker is the item it names (step, index, key); when it was written does not matter.
impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (&self.step, self.index, &self.key) == (&other.step, other.index, &other.key)
    }
}

impl Eq for InFlight {}

impl std::hash::Hash for InFlight {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (&self.step, self.index, &self.key).hash(state);
    }
}

/// The sidecar journal path of a report: `<report>.inflight`.
pub fn inflight_path(report: &Path) -> PathBuf {
    let mut s = report.as_os_str().to_owned();
    s.push(".inflight");
    PathBuf::from(s)
}

/// `reports/NAME-YYYYMMDDTHHMMSSZ.json` (UTC). Characters of `NAME` outside
/// `[A-Za-z0-9._-]` become `_`, so a name can never leave the `reports` directory.
pub fn default_report_path(playbook_name: &str, started_at: Timestamp) -> PathBuf {
    let name: String = playbook_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = if name.is_empty() || name.chars().all(|c| c == '.') {
        "playbook".to_owned()
    } else {
        name
    };
    let stamp = started_at.strftime("%Y%m%dT%H%M%SZ");
    PathBuf::from("reports").join(format!("{name}-{stamp}.json"))
}

/// Writes one run's report incrementally. Dropping it without [`finish`](Self::finish) leaves
/// a report without footer (read back as truncated), which is what a crash leaves too.
#[derive(Debug)]
pub struct ReportWriter {
    path: PathBuf,
    out: BufWriter<File>,
    items: u64,
    totals: Totals,
    last_flush: Instant,
    sidecar_path: PathBuf,
    sidecar: Option<File>,
    sync_markers: bool,
    /// Markers written and not yet closed by an item record (bounded by the concurrency).
    open: HashSet<InFlight>,
    /// Records carried over from earlier reports that no record of this run has superseded:
    /// step → key → status. The footer's totals count one status per (step, key).
    carried: HashMap<String, HashMap<String, ItemStatus>>,
    /// The report of a run over several accounts: the totals and per-account facts its
    /// footer has (the sum of its parts', not a count of its lines).
    fleet: Option<(
        Totals,
        std::collections::BTreeMap<String, super::model::AccountFacts>,
    )>,
}

impl ReportWriter {
    /// Creates (or replaces) the report at `path`, creating parent directories, and writes
    /// and flushes the header line. A stale `<path>.inflight` from an earlier run is removed.
    pub fn create(path: &Path, header: &ReportHeader) -> io::Result<Self> {
        Self::create_with(path, header, false, |_| Ok(()))
    }

    /// [`create`](Self::create) for a resumed run: `carry` writes the records carried over
    /// from the earlier reports ([`write_carried`](Self::write_carried)) right after the header.
    /// The file is built beside `path` and renamed into place only once it holds the header
    /// and every carried record (synced to disk first when `durable`), so a crash at any
    /// instant leaves at `path` either the earlier file or a complete account, never a report
    /// that has forgotten what the earlier runs did.
    pub fn create_with(
        path: &Path,
        header: &ReportHeader,
        durable: bool,
        carry: impl FnOnce(&mut ReportWriter) -> io::Result<()>,
    ) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let sidecar_path = inflight_path(path);
        let building = {
            let mut s = path.as_os_str().to_owned();
            s.push(".building");
            PathBuf::from(s)
        };
        let file = File::create(&building)?;
        let mut out = BufWriter::with_capacity(BUFFER_BYTES, file);
        let mut head = serde_json::to_vec(header).map_err(io::Error::other)?;
        // `{…}` → `{…,"items":[`: the header object stays open for the items array.
        debug_assert_eq!(head.last(), Some(&b'}'));
        head.pop();
        head.push(b',');
        head.extend_from_slice(ITEMS_OPEN.as_bytes());
        head.push(b'\n');
        out.write_all(&head)?;
        let mut writer = ReportWriter {
            path: path.to_owned(),
            out,
            items: 0,
            totals: Totals::default(),
            last_flush: Instant::now(),
            sidecar_path,
            sidecar: None,
            sync_markers: true,
            open: HashSet::new(),
            carried: HashMap::new(),
            fleet: None,
        };
        let built = carry(&mut writer).and_then(|()| writer.out.flush());
        let built = built.and_then(|()| {
            if durable {
                writer.out.get_ref().sync_data()?;
            }
            fs::rename(&building, path)?;
            if durable {
                sync_parent_dir(path)?;
            }
            Ok(())
        });
        if let Err(e) = built {
            let _ = fs::remove_file(&building);
            return Err(e);
        }
        match fs::remove_file(&writer.sidecar_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        writer.last_flush = Instant::now();
        Ok(writer)
    }

    /// Writes a record carried over from an earlier report (`carried` set). A later
    /// [`write_item`](Self::write_item) of the same step and key supersedes it in the totals.
    pub fn write_carried(&mut self, item: &ItemRecord) -> io::Result<()> {
        self.write_line(item)?;
        if let Some(old) = self
            .carried
            .entry(item.step.clone())
            .or_default()
            .insert(item.key.clone(), item.status)
        {
            self.totals.remove(old);
        }
        Ok(())
    }

    /// Whether [`write_started`](Self::write_started) also forces the marker to disk
    /// (`fdatasync`, default on). Off, a marker survives `kill -9` but not power loss; turn it
    /// off only where durability does not matter (sandbox, benchmarks).
    pub fn set_sync_markers(&mut self, sync: bool) {
        self.sync_markers = sync;
    }

    /// The report's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counts of the items written so far; the footer uses these.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Number of items written so far.
    pub fn items_written(&self) -> u64 {
        self.items
    }

    /// Markers written by `write_started` that no item record has closed yet.
    pub fn in_flight(&self) -> impl Iterator<Item = &InFlight> {
        self.open.iter()
    }

    /// Appends one item line. Buffered; flushed to the OS when the last flush is older than
    /// [`FLUSH_INTERVAL`], or at once when the item closes an in-flight marker.
    pub fn write_item(&mut self, item: &ItemRecord) -> io::Result<()> {
        self.write_line(item)?;
        if !self.carried.is_empty() {
            if let Some(old) = self
                .carried
                .get_mut(&item.step)
                .and_then(|keys| keys.remove(&item.key))
            {
                self.totals.remove(old);
            }
        }
        let closes_marker = !self.open.is_empty()
            && self.open.remove(&InFlight {
                step: item.step.clone(),
                index: item.index,
                key: item.key.clone(),
                at: None,
            });
        if closes_marker || self.last_flush.elapsed() >= FLUSH_INTERVAL {
            self.flush()?;
        }
        Ok(())
    }

    fn write_line(&mut self, item: &ItemRecord) -> io::Result<()> {
        if self.items > 0 {
            self.out.write_all(b",")?;
        }
        serde_json::to_writer(&mut self.out, item).map_err(io::Error::other)?;
        self.out.write_all(b"\n")?;
        self.items += 1;
        self.totals.add(item.status);
        Ok(())
    }

    /// A run over several accounts: the footer's totals are `totals` and its `accounts` these.
    pub(crate) fn set_fleet(
        &mut self,
        totals: Totals,
        accounts: std::collections::BTreeMap<String, super::model::AccountFacts>,
    ) {
        self.fleet = Some((totals, accounts));
    }

    /// Pushes buffered items to the OS (survives the process dying, not power loss).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Records that a non-idempotent request for this item is about to be sent. Returns once
    /// the marker is in the OS (and on disk, unless [`set_sync_markers`](Self::set_sync_markers)
    /// turned that off): call it BEFORE sending.
    pub fn write_started(&mut self, step: &str, index: u64, key: &str) -> io::Result<()> {
        self.write_started_batch(&[InFlight {
            step: step.to_owned(),
            index,
            key: key.to_owned(),
            at: Some(Timestamp::now()),
        }])
    }

    /// [`write_started`](Self::write_started) for several requests at once: one `write` and
    /// one `fdatasync` for the whole batch (group commit), for a scheduler that starts
    /// several non-idempotent requests together with no rate limit.
    pub fn write_started_batch(&mut self, markers: &[InFlight]) -> io::Result<()> {
        if markers.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::with_capacity(markers.len() * 96);
        for marker in markers {
            serde_json::to_writer(&mut lines, marker).map_err(io::Error::other)?;
            lines.push(b'\n');
        }
        let sync = self.sync_markers;
        let sidecar = self.sidecar()?;
        // One unbuffered write: the markers reach the OS before we return.
        sidecar.write_all(&lines)?;
        if sync {
            sidecar.sync_data()?;
        }
        self.open.extend(markers.iter().cloned());
        Ok(())
    }

    /// The open sidecar, opened on first use. Opening it first makes sure the report's
    /// header (and items so far) and the sidecar's directory entry are durable too, or power
    /// loss could keep a marker whose report is gone.
    fn sidecar(&mut self) -> io::Result<&mut File> {
        if self.sidecar.is_none() {
            self.flush()?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.sidecar_path)?;
            if self.sync_markers {
                self.out.get_ref().sync_data()?;
                sync_parent_dir(&self.sidecar_path)?;
            }
            self.sidecar = Some(file);
        }
        Ok(self.sidecar.as_mut().expect("opened above"))
    }

    /// Ends the report: any marker still open is recorded as an `unknown` item (a request
    /// that started and never got a record may have happened), the footer is written with
    /// the writer's own totals, the file is synced to disk, and only then is the sidecar
    /// removed. The finished file is one valid JSON document.
    pub fn finish(self, finished_at: Timestamp, outcome: Outcome) -> io::Result<ReportFooter> {
        self.finish_with(finished_at, outcome, RunFacts::default())
    }

    /// [`finish`](Self::finish) with the run's measurements in the footer.
    pub fn finish_with(
        mut self,
        finished_at: Timestamp,
        outcome: Outcome,
        run: RunFacts,
    ) -> io::Result<ReportFooter> {
        let mut leftover: Vec<InFlight> = self.open.drain().collect();
        leftover.sort_by(|a, b| (&a.step, a.index).cmp(&(&b.step, b.index)));
        for m in leftover {
            let mut item = ItemRecord::new(m.step, m.index, m.key, ItemStatus::Unknown);
            item.attempts = 1;
            item.error = Some("request started but no result was recorded".to_owned());
            self.write_item(&item)?;
        }
        let footer = ReportFooter {
            finished_at,
            outcome,
            totals: self.fleet.as_ref().map_or(self.totals, |f| f.0),
            run,
            per_account: self.fleet.take().map(|f| f.1).unwrap_or_default(),
        };
        let mut tail = serde_json::to_vec(&footer).map_err(io::Error::other)?;
        // `{…}` → `],…}`: close the items array, then the footer's fields close the document.
        tail[0] = b',';
        self.out.write_all(b"]")?;
        self.out.write_all(&tail)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        if self.sidecar.take().is_some() {
            fs::remove_file(&self.sidecar_path)?;
        }
        Ok(footer)
    }
}

#[cfg(unix)]
fn sync_parent_dir(path: &Path) -> io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

#[cfg(not(unix))]
fn sync_parent_dir(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{PlaybookRef, Report};

    fn header() -> ReportHeader {
        ReportHeader::new(
            "run-1",
            PlaybookRef {
                name: "close".into(),
                path: "close.yaml".into(),
                sha256: "ab".into(),
            },
            false,
            "2026-11-25T10:00:00Z".parse().unwrap(),
            serde_json::json!({"concurrency": 8}),
        )
    }

    #[test]
    fn default_path_is_name_and_utc_stamp() {
        let ts: Timestamp = "2026-11-25T10:00:07Z".parse().unwrap();
        assert_eq!(
            default_report_path("close-stale-sessions", ts),
            Path::new("reports/close-stale-sessions-20261125T100007Z.json")
        );
        assert_eq!(
            default_report_path("../etc/x y", ts),
            Path::new("reports/.._etc_x_y-20261125T100007Z.json")
        );
        assert_eq!(
            default_report_path("..", ts),
            Path::new("reports/playbook-20261125T100007Z.json")
        );
    }

    #[test]
    fn empty_report_is_valid_json_with_the_documented_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/r.json");
        let w = ReportWriter::create(&path, &header()).unwrap();
        w.finish("2026-11-25T10:01:00Z".parse().unwrap(), Outcome::Completed)
            .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with(r#"{"format":1,"#) && lines[0].ends_with(r#""items":["#));
        assert_eq!(
            lines[1],
            r#"],"finished_at":"2026-11-25T10:01:00Z","outcome":"completed","totals":{"planned":0,"succeeded":0,"failed":0,"skipped":0,"unknown":0,"unchanged":0}}"#
        );
        let r: Report = serde_json::from_str(&text).unwrap();
        assert!(r.items.is_empty());
        assert_eq!(r.header, header());
    }

    #[test]
    fn items_after_the_first_start_with_a_comma_and_totals_follow_items() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let mut w = ReportWriter::create(&path, &header()).unwrap();
        w.write_item(&ItemRecord::new("close", 0, "a", ItemStatus::Succeeded))
            .unwrap();
        w.write_item(&ItemRecord::new("close", 1, "b", ItemStatus::Failed))
            .unwrap();
        w.write_item(&ItemRecord::new("close", 2, "c", ItemStatus::Succeeded))
            .unwrap();
        assert_eq!(w.items_written(), 3);
        let footer = w
            .finish("2026-11-25T10:01:00Z".parse().unwrap(), Outcome::Failed)
            .unwrap();
        assert_eq!(
            footer.totals,
            Totals {
                succeeded: 2,
                failed: 1,
                ..Totals::default()
            }
        );
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with(r#"{"step":"close","index":0"#));
        assert!(lines[2].starts_with(r#",{"step":"close","index":1"#));
        assert!(lines[3].starts_with(r#",{"step":"close","index":2"#));
        let r: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(r.items.len(), 3);
        assert_eq!(r.footer.totals, footer.totals);
    }

    #[test]
    fn sidecar_markers_are_flushed_at_once_and_removed_by_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let side = inflight_path(&path);
        fs::write(&side, "stale\n").unwrap();
        let mut w = ReportWriter::create(&path, &header()).unwrap();
        assert!(!side.exists(), "a stale sidecar is removed on create");
        w.set_sync_markers(false);
        w.write_started("tell", 4, "k4").unwrap();
        // Visible to another reader right away, without any flush call.
        let journal = fs::read_to_string(&side).unwrap();
        assert!(
            journal.starts_with("{\"step\":\"tell\",\"index\":4,\"key\":\"k4\",\"at\":\"")
                && journal.ends_with("\"}\n")
                && journal.lines().count() == 1,
            "{journal}"
        );
        assert_eq!(w.in_flight().count(), 1);
        w.write_item(&ItemRecord::new("tell", 4, "k4", ItemStatus::Succeeded))
            .unwrap();
        assert_eq!(w.in_flight().count(), 0);
        // Closing a marker flushes the report at once.
        assert!(fs::read_to_string(&path).unwrap().contains(r#""key":"k4""#));
        w.finish(Timestamp::now(), Outcome::Completed).unwrap();
        assert!(!side.exists());
    }

    #[test]
    fn a_batch_of_markers_is_one_write_and_all_stay_open_until_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let mut w = ReportWriter::create(&path, &header()).unwrap();
        w.set_sync_markers(false);
        w.write_started_batch(&[]).unwrap();
        assert!(
            !inflight_path(&path).exists(),
            "no sidecar until a marker is written"
        );
        let batch: Vec<InFlight> = (0..3)
            .map(|i| InFlight {
                step: "tell".into(),
                index: i,
                key: format!("k{i}"),
                at: None,
            })
            .collect();
        w.write_started_batch(&batch).unwrap();
        let journal = fs::read_to_string(inflight_path(&path)).unwrap();
        assert_eq!(journal.lines().count(), 3);
        assert_eq!(w.in_flight().count(), 3);
        w.write_item(&ItemRecord::new("tell", 1, "k1", ItemStatus::Failed))
            .unwrap();
        // Same index, other key: not the same item, the marker stays open.
        w.write_item(&ItemRecord::new("tell", 2, "other", ItemStatus::Failed))
            .unwrap();
        let mut open: Vec<u64> = w.in_flight().map(|m| m.index).collect();
        open.sort_unstable();
        assert_eq!(open, [0, 2]);
    }

    #[test]
    fn carried_records_come_first_and_a_later_record_of_the_key_supersedes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        fs::write(&path, "the earlier report, same path\n").unwrap();
        fs::write(inflight_path(&path), "stale\n").unwrap();
        let mut carried = ItemRecord::new("tell", 0, "a", ItemStatus::Unknown);
        carried.carried = true;
        let mut w = ReportWriter::create_with(&path, &header(), true, |w| {
            w.write_carried(&carried)?;
            let mut b = ItemRecord::new("tell", 1, "b", ItemStatus::Succeeded);
            b.carried = true;
            w.write_carried(&b)
        })
        .unwrap();
        assert!(!inflight_path(&path).exists(), "stale sidecar removed");
        assert!(
            !dir.path().join("r.json.building").exists(),
            "renamed into place"
        );
        // In place, carried records included, before anything else is written.
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains(r#""carried":true"#));
        // This run verifies `a`: its record supersedes the carried one in the totals.
        w.write_item(&ItemRecord::new("tell", 0, "a", ItemStatus::Succeeded))
            .unwrap();
        let footer = w.finish(Timestamp::now(), Outcome::Completed).unwrap();
        assert_eq!(
            footer.totals,
            Totals {
                succeeded: 2,
                ..Totals::default()
            }
        );
    }

    #[test]
    fn a_failed_carry_leaves_the_earlier_file_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        fs::write(&path, "earlier\n").unwrap();
        let err = ReportWriter::create_with(&path, &header(), false, |_| {
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(fs::read_to_string(&path).unwrap(), "earlier\n");
        assert!(!dir.path().join("r.json.building").exists());
    }

    #[test]
    fn finish_records_markers_left_open_as_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let mut w = ReportWriter::create(&path, &header()).unwrap();
        w.write_started("tell", 7, "k7").unwrap();
        let footer = w.finish(Timestamp::now(), Outcome::Aborted).unwrap();
        assert_eq!(footer.totals.unknown, 1);
        let r: Report = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(r.items[0].status, ItemStatus::Unknown);
        assert_eq!((r.items[0].step.as_str(), r.items[0].index), ("tell", 7));
    }
}
