//! Reading a report back (for `--resume` and for tests), tolerant of a file cut short anywhere.
//!
//! In: the path of a report written by [`ReportWriter`](super::ReportWriter), finished or not,
//! and its `<report>.inflight` sidecar if one is left. Out: the header, the items, the footer
//! if the run got that far, and the non-idempotent requests that were in flight when the
//! writer stopped ([`ReadReport`]), or a compact [`ResumeIndex`] of each item's last status.
//!
//! What is tolerated and what is an error:
//! - the header (line 1) must be complete: an empty file, a non-JSON first line, or a header
//!   cut short is an error naming the file and line 1 (nothing can be resumed from it);
//! - each later line is an item (an optional leading `,` stripped) or the footer (`],…}`);
//! - the LAST line may be malformed (half-written by a crash, or zero-filled by power loss):
//!   it is dropped and reported in `partial_line`; a malformed line followed by any other
//!   content is an error naming its line number;
//! - no footer means the run did not finish: `truncated` is set;
//! - a report reformatted as ordinary JSON (say, by `jq`) is read as one document instead.
//!
//! In-flight markers: a sidecar line `{"step","index","key"}` with no item record of the same
//! step, index and key is a request that may or may not have happened; it is returned in
//! `in_flight`, and [`ResumeIndex`] counts it as `unknown`. The sidecar gets the same
//! last-line tolerance as the report.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::model::{ItemRecord, ItemStatus, Report, ReportFooter, ReportHeader, Totals, FORMAT};
use super::writer::{inflight_path, InFlight, ITEMS_OPEN};

/// Why a report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportReadError {
    #[error("cannot read report {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: the report is empty", path.display())]
    Empty { path: PathBuf },
    #[error("{}:{line}: {what}: {reason}", path.display())]
    Malformed {
        path: PathBuf,
        line: u64,
        what: &'static str,
        reason: String,
    },
    #[error("{}: report format {found} is not supported (this tool reads format {FORMAT})", path.display())]
    UnsupportedFormat { path: PathBuf, found: u32 },
}

/// A report as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadReport {
    pub header: ReportHeader,
    /// The complete item lines, in file order.
    pub items: Vec<ItemRecord>,
    /// `None` when the run did not get to write it.
    pub footer: Option<ReportFooter>,
    /// The footer is missing: the run was cut short.
    pub truncated: bool,
    /// Line number of a half-written last line that was dropped.
    pub partial_line: Option<u64>,
    /// Non-idempotent requests started with no item record: their result is unknown.
    pub in_flight: Vec<InFlight>,
}

/// What [`scan_report`] returns besides the items it hands to its callback.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportScan {
    pub header: ReportHeader,
    pub items: u64,
    pub footer: Option<ReportFooter>,
    pub truncated: bool,
    pub partial_line: Option<u64>,
    pub in_flight: Vec<InFlight>,
}

/// Reads a whole report into memory (items included: about 1 GB for a million items with
/// request bodies). For large reports prefer [`scan_report`] or [`ResumeIndex::from_path`],
/// which stream.
pub fn read_report(path: &Path) -> Result<ReadReport, ReportReadError> {
    let mut items = Vec::new();
    let scan = scan_report(path, |item| items.push(item))?;
    Ok(ReadReport {
        header: scan.header,
        items,
        footer: scan.footer,
        truncated: scan.truncated,
        partial_line: scan.partial_line,
        in_flight: scan.in_flight,
    })
}

/// Streams a report: calls `on_item` for each complete item line, in order, holding only one
/// line in memory. Never panics, whatever the bytes.
pub fn scan_report(
    path: &Path,
    mut on_item: impl FnMut(ItemRecord),
) -> Result<ReportScan, ReportReadError> {
    let io_err = |source| ReportReadError::Io {
        path: path.to_owned(),
        source,
    };
    let mut markers = read_sidecar(&inflight_path(path))?;
    let (mut reader, mut buf) = open_report(path)?;
    let Some(header) = header_line(path, &buf)? else {
        return read_whole_document(path, &buf, reader, markers, on_item);
    };

    let mut line_no = 1u64;
    let mut items = 0u64;
    let mut footer: Option<ReportFooter> = None;
    // A malformed line is forgiven only if nothing but blank lines follows it.
    let mut pending: Option<(u64, &'static str, String)> = None;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(io_err)? == 0 {
            break;
        }
        line_no += 1;
        let line = trim(&buf);
        if line.is_empty() {
            continue;
        }
        if let Some((n, what, reason)) = pending.take() {
            return Err(malformed(path, n, what, reason));
        }
        if footer.is_some() {
            return Err(malformed(
                path,
                line_no,
                "unexpected content after the footer",
                String::new(),
            ));
        }
        if let Some(rest) = line.strip_prefix(b"]") {
            match parse_footer(rest) {
                Ok(f) => footer = Some(f),
                Err(reason) => pending = Some((line_no, "bad report footer", reason)),
            }
            continue;
        }
        let body = line.strip_prefix(b",").unwrap_or(line);
        match serde_json::from_slice::<ItemRecord>(body) {
            Ok(item) => {
                markers.close(&item);
                items += 1;
                on_item(item);
            }
            Err(e) => pending = Some((line_no, "bad item line", e.to_string())),
        }
    }
    Ok(ReportScan {
        header,
        items,
        truncated: footer.is_none(),
        footer,
        partial_line: pending.map(|(n, _, _)| n),
        in_flight: markers.into_open(),
    })
}

/// The first line is not our header line: maybe the report was reformatted as plain JSON.
fn read_whole_document(
    path: &Path,
    first: &[u8],
    rest: impl Read,
    mut markers: Markers,
    mut on_item: impl FnMut(ItemRecord),
) -> Result<ReportScan, ReportReadError> {
    let doc: Report = match serde_json::from_reader(first.chain(rest)) {
        Ok(doc) => doc,
        Err(e) if e.is_io() => {
            return Err(ReportReadError::Io {
                path: path.to_owned(),
                source: e.into(),
            })
        }
        Err(e) => {
            let reason = if trim(first).starts_with(b"{\"format\"") {
                format!("the header line is cut short or malformed ({e})")
            } else {
                format!("not a wts-playbook report ({e})")
            };
            return Err(malformed(path, 1, "bad report header", reason));
        }
    };
    check_format(path, &doc.header)?;
    let items = doc.items.len() as u64;
    for item in doc.items {
        markers.close(&item);
        on_item(item);
    }
    Ok(ReportScan {
        header: doc.header,
        items,
        footer: Some(doc.footer),
        truncated: false,
        partial_line: None,
        in_flight: markers.into_open(),
    })
}

/// `{…,` (the header line minus `"items":[`) → the header object.
fn parse_header(head: &[u8]) -> Result<ReportHeader, String> {
    let Some(fields) = head.strip_suffix(b",") else {
        return Err("expected `,\"items\":[` at the end of line 1".to_owned());
    };
    let mut obj = Vec::with_capacity(fields.len() + 1);
    obj.extend_from_slice(fields);
    obj.push(b'}');
    serde_json::from_slice(&obj).map_err(|e| e.to_string())
}

/// `,"finished_at":…}` (the footer line minus its `]`) → the footer object.
fn parse_footer(rest: &[u8]) -> Result<ReportFooter, String> {
    let Some(fields) = trim(rest).strip_prefix(b",") else {
        return Err("expected `],` at the start of the footer".to_owned());
    };
    let mut obj = Vec::with_capacity(fields.len() + 1);
    obj.push(b'{');
    obj.extend_from_slice(fields);
    serde_json::from_slice(&obj).map_err(|e| e.to_string())
}

fn check_format(path: &Path, header: &ReportHeader) -> Result<(), ReportReadError> {
    if header.format == FORMAT {
        Ok(())
    } else {
        Err(ReportReadError::UnsupportedFormat {
            path: path.to_owned(),
            found: header.format,
        })
    }
}

fn malformed(path: &Path, line: u64, what: &'static str, reason: String) -> ReportReadError {
    ReportReadError::Malformed {
        path: path.to_owned(),
        line,
        what,
        reason,
    }
}

/// Strips ASCII whitespace (and the newline) at both ends.
fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// In-flight markers from the sidecar, indexed by item index so that closing one per item
/// read costs a hash lookup and no allocation.
#[derive(Debug, Default)]
struct Markers {
    /// First-seen order, for a stable output.
    order: Vec<InFlight>,
    by_index: HashMap<u64, Vec<usize>>,
    closed: Vec<bool>,
}

impl Markers {
    fn add(&mut self, m: InFlight) {
        let slots = self.by_index.entry(m.index).or_default();
        if slots.iter().any(|&i| self.order[i] == m) {
            return;
        }
        slots.push(self.order.len());
        self.order.push(m);
        self.closed.push(false);
    }

    fn close(&mut self, item: &ItemRecord) {
        if let Some(slots) = self.by_index.get(&item.index) {
            for &i in slots {
                let m = &self.order[i];
                if m.step == item.step && m.key == item.key {
                    self.closed[i] = true;
                }
            }
        }
    }

    fn into_open(self) -> Vec<InFlight> {
        self.order
            .into_iter()
            .zip(self.closed)
            .filter_map(|(m, closed)| (!closed).then_some(m))
            .collect()
    }
}

fn read_sidecar(path: &Path) -> Result<Markers, ReportReadError> {
    let mut markers = Markers::default();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(markers),
        Err(source) => {
            return Err(ReportReadError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut pending: Option<(u64, String)> = None;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| ReportReadError::Io {
                path: path.to_owned(),
                source,
            })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let line = trim(&buf);
        if line.is_empty() {
            continue;
        }
        if let Some((n, reason)) = pending.take() {
            return Err(malformed(path, n, "bad in-flight marker", reason));
        }
        match serde_json::from_slice::<InFlight>(line) {
            Ok(m) => markers.add(m),
            Err(e) => pending = Some((line_no, e.to_string())),
        }
    }
    Ok(markers)
}

/// The last record of every (step, key) in one or more reports, for `--resume`.
///
/// Later records win over earlier ones with the same step and key, and a later report (by its
/// start time) wins over an earlier one; a request left in flight (sidecar marker, no item
/// record) counts as `unknown` whatever came before it.
///
/// Memory: one map per step, one entry per distinct key (the key's heap copy, its status, where
/// its last record is, and the recorded output if any). Measured with `examples/report_bench.rs`:
/// about 150 MB peak RSS for a million 40-character keys. Requests and bodies are not kept:
/// [`ResumeIndex::carry_into`] reads the last records again from the files.
#[derive(Debug, Clone, Default)]
pub struct ResumeIndex {
    steps: HashMap<String, HashMap<String, Entry>>,
    /// The reports indexed, in the order they were read (oldest first).
    sources: Vec<Source>,
}

/// What an index knows of one (step, key).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub status: ItemStatus,
    /// The item's index in its fan-out, as last recorded.
    pub index: u64,
    /// The recorded output (see `ItemRecord::output`).
    pub output: Option<Value>,
    /// The output was needed but too large to be recorded.
    pub output_omitted: bool,
    /// When its (last) attempt started, as recorded (or as its in-flight marker says).
    pub started_at: Option<jiff::Timestamp>,
    /// Where the last record is: (source number, item ordinal in that file); `None` for an
    /// in-flight marker without a record.
    at: Option<(usize, u64)>,
}

/// A report the index was built from.
#[derive(Debug, Clone)]
struct Source {
    path: PathBuf,
    header: ReportHeader,
    truncated: bool,
}

impl ResumeIndex {
    /// Indexes a report already in memory.
    pub fn from_report(report: &ReadReport) -> Self {
        let mut index = ResumeIndex::default();
        for (n, item) in report.items.iter().enumerate() {
            index.record(item, Some((0, n as u64)));
        }
        index.add_in_flight(&report.in_flight);
        index
    }

    /// Reads and indexes a report in one pass without keeping its items. Also returns the
    /// scan result (header, footer, in-flight list) so the caller can list unknown items.
    pub fn from_path(path: &Path) -> Result<(Self, ReportScan), ReportReadError> {
        let (index, mut scans) = Self::from_paths(&[path.to_owned()])?;
        Ok((index, scans.remove(0)))
    }

    /// Indexes several reports of one logical run (`--resume` given several times). They are
    /// read oldest first by their `started_at` (ties in the order given), so the newest
    /// record of a key wins. The scans come back in the order given.
    pub fn from_paths(paths: &[PathBuf]) -> Result<(Self, Vec<ReportScan>), ReportReadError> {
        let mut order: Vec<(usize, jiff::Timestamp)> = Vec::with_capacity(paths.len());
        for (i, p) in paths.iter().enumerate() {
            order.push((i, read_header(p)?.started_at));
        }
        order.sort_by_key(|&(i, ts)| (ts, i));
        let mut index = ResumeIndex::default();
        let mut scans: Vec<Option<ReportScan>> = vec![None; paths.len()];
        for (i, _) in order {
            let source = index.sources.len();
            let mut n = 0u64;
            let scan = scan_report(&paths[i], |item| {
                index.record(&item, Some((source, n)));
                n += 1;
            })?;
            index.add_in_flight(&scan.in_flight);
            index.sources.push(Source {
                path: paths[i].clone(),
                header: scan.header.clone(),
                truncated: scan.truncated,
            });
            scans[i] = Some(scan);
        }
        Ok((index, scans.into_iter().map(|s| s.expect("read")).collect()))
    }

    fn record(&mut self, item: &ItemRecord, at: Option<(usize, u64)>) {
        let entry = Entry {
            status: item.status,
            index: item.index,
            output: item.output.clone(),
            output_omitted: item.output_omitted,
            started_at: item.started_at,
            at,
        };
        let keys = match self.steps.get_mut(&item.step) {
            Some(keys) => keys,
            None => self.steps.entry(item.step.clone()).or_default(),
        };
        match keys.get_mut(&item.key) {
            Some(slot) => *slot = entry,
            None => {
                keys.insert(item.key.clone(), entry);
            }
        }
    }

    fn add_in_flight(&mut self, in_flight: &[InFlight]) {
        for m in in_flight {
            let mut item = ItemRecord::new(&m.step, m.index, &m.key, ItemStatus::Unknown);
            item.attempts = 1;
            item.started_at = m.at;
            self.record(&item, None);
        }
    }

    /// The step ids the reports have items of.
    pub fn steps(&self) -> impl Iterator<Item = &str> {
        self.steps.keys().map(String::as_str)
    }

    /// Whether one of the reports was cut short (no footer): its run may have sent requests it
    /// never recorded (retry-safe ones leave no in-flight marker).
    pub fn any_cut_short(&self) -> bool {
        self.sources.iter().any(|s| s.truncated)
    }

    /// The last recorded status of this step's item with this key.
    pub fn status_of(&self, step: &str, key: &str) -> Option<ItemStatus> {
        self.entry(step, key).map(|e| e.status)
    }

    /// Everything known of this step's item with this key.
    pub fn entry(&self, step: &str, key: &str) -> Option<&Entry> {
        self.steps.get(step)?.get(key)
    }

    /// `--resume` semantics (README, "How a run behaves": Resume): skip what succeeded, was unchanged or was
    /// skipped, and what is `unknown` unless `retry_unknown`; run everything else (failed,
    /// absent).
    pub fn should_skip(&self, step: &str, key: &str, retry_unknown: bool) -> bool {
        match self.status_of(step, key) {
            Some(
                ItemStatus::Succeeded
                | ItemStatus::Skipped
                | ItemStatus::Unchanged
                | ItemStatus::Drifted,
            ) => true,
            Some(ItemStatus::Unknown) => !retry_unknown,
            Some(ItemStatus::Failed | ItemStatus::Planned) | None => false,
        }
    }

    /// When the logical run started: the earliest start among the reports read (and the
    /// reports they continued).
    pub fn logical_started_at(&self) -> Option<jiff::Timestamp> {
        self.sources
            .iter()
            .map(|s| s.header.logical_started_at.unwrap_or(s.header.started_at))
            .min()
    }

    /// Counts of the last statuses, one per (step, key).
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for keys in self.steps.values() {
            for e in keys.values() {
                t.add(e.status);
            }
        }
        t
    }

    /// Number of distinct (step, key) pairs.
    pub fn len(&self) -> usize {
        self.steps.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every (step, key) whose last status is `unknown`, sorted: the list `--resume` prints.
    pub fn unknown(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = self
            .steps
            .iter()
            .flat_map(|(step, keys)| {
                keys.iter()
                    .filter(|(_, e)| e.status == ItemStatus::Unknown)
                    .map(move |(key, _)| (step.as_str(), key.as_str()))
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Hands the last record of every (step, key) to `write`, each marked `carried`: the
    /// records a resumed run's report starts with, so that it is a complete account of the
    /// logical run before its first request. Reads the reports again (streaming); an in-flight
    /// marker without a record becomes an `unknown` record.
    pub fn carry_into(
        &self,
        mut write: impl FnMut(&ItemRecord) -> io::Result<()>,
    ) -> Result<u64, CarryError> {
        let mut written = 0u64;
        let mut failure: Option<io::Error> = None;
        for (source, src) in self.sources.iter().enumerate() {
            let mut n = 0u64;
            scan_report(&src.path, |mut item| {
                let ordinal = n;
                n += 1;
                if failure.is_some() {
                    return;
                }
                // A dry run's `planned` items say nothing about what happened: not carried.
                let last = item.status != ItemStatus::Planned
                    && self
                        .entry(&item.step, &item.key)
                        .is_some_and(|e| e.at == Some((source, ordinal)));
                if !last {
                    return;
                }
                item.carried = true;
                if let Err(e) = write(&item) {
                    failure = Some(e);
                } else {
                    written += 1;
                }
            })
            .map_err(CarryError::Read)?;
            if let Some(e) = failure.take() {
                return Err(CarryError::Write(e));
            }
        }
        let mut markers: Vec<(&str, u64, &str)> = self
            .steps
            .iter()
            .flat_map(|(step, keys)| {
                keys.iter()
                    .filter(|(_, e)| e.at.is_none())
                    .map(move |(key, e)| (step.as_str(), e.index, key.as_str()))
            })
            .collect();
        markers.sort_unstable();
        for (step, index, key) in markers {
            let mut item = ItemRecord::new(step, index, key, ItemStatus::Unknown);
            item.attempts = 1;
            item.carried = true;
            item.error =
                Some("an earlier run started this request and recorded no result".to_owned());
            write(&item).map_err(CarryError::Write)?;
            written += 1;
        }
        Ok(written)
    }
}

/// Why [`ResumeIndex::carry_into`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CarryError {
    #[error("{0}")]
    Read(ReportReadError),
    #[error("cannot write the carried-over items: {0}")]
    Write(io::Error),
}

/// The header of a report, read from its first line (or, for a report reformatted as one JSON
/// document, from the whole document).
pub fn read_header(path: &Path) -> Result<ReportHeader, ReportReadError> {
    let (reader, first) = open_report(path)?;
    if let Some(header) = header_line(path, &first)? {
        return Ok(header);
    }
    drop(reader);
    Ok(scan_report(path, |_| {})?.header)
}

/// Opens a report and reads its first line (an empty file is an error).
fn open_report(path: &Path) -> Result<(BufReader<File>, Vec<u8>), ReportReadError> {
    let io_err = |source| ReportReadError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut buf = Vec::new();
    if reader.read_until(b'\n', &mut buf).map_err(io_err)? == 0 {
        return Err(ReportReadError::Empty {
            path: path.to_owned(),
        });
    }
    Ok((reader, buf))
}

/// The header of a report's first line in the streamed layout (`{…,"items":[`); `None` when
/// the line is not in that layout (a report reformatted as one document, or not a report).
fn header_line(path: &Path, line: &[u8]) -> Result<Option<ReportHeader>, ReportReadError> {
    let Some(head) = trim(line).strip_suffix(ITEMS_OPEN.as_bytes()) else {
        return Ok(None);
    };
    let header =
        parse_header(head).map_err(|reason| malformed(path, 1, "bad report header", reason))?;
    check_format(path, &header)?;
    Ok(Some(header))
}
