//! Reports people look at: an HTML page, `JUnit` XML for CI and Markdown for pull requests, all
//! rendered from a finished (or cut-short) JSON report.
//!
//! In: the report file ([`View::load`] streams it once, keeping a compact row per item and
//! none of the request or response bodies). Out: [`html::render`], [`junit::render`] and
//! [`markdown::render`], each a pure function of the [`View`]. The report is already redacted
//! by the runner; nothing here reads secrets, the environment or the inputs.
//!
//! Statuses are handled as text: a status this version does not know (a newer runner's) is
//! counted and shown like the others, never an error.

pub(crate) mod html;
pub(crate) mod junit;
pub(crate) mod markdown;
mod timeline;

use timeline::timeline;
pub(crate) use timeline::Timeline;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use jiff::Timestamp;
use serde_json::Value;

use crate::api_error::ApiError;
use crate::report::{
    scan_report, ItemRecord, ItemStatus, ReportFooter, ReportHeader, ReportReadError,
};

/// Statuses in display order; any other status a report holds follows them.
pub(crate) const STATUS_ORDER: [&str; 6] = [
    "succeeded",
    "failed",
    "unknown",
    "skipped",
    "unchanged",
    "planned",
];

/// How many sample keys an error class keeps.
pub(crate) const SAMPLE_KEYS: usize = 5;

/// Distinct messages counted per class at most (beyond that: "many").
const MAX_DISTINCT: usize = 1000;

/// One item, reduced to what the views show.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// Index into [`View::steps`].
    pub step: usize,
    pub index: u64,
    pub key: String,
    /// Index into [`View::statuses`].
    pub status: usize,
    pub attempts: u32,
    pub duration_ms: u64,
    /// Milliseconds after the run's start, when the report has the item's start time.
    pub start_ms: Option<i64>,
    pub http: Option<u16>,
    /// Index into [`View::classes`] for a failed or unknown item.
    pub class: Option<usize>,
    pub line: Option<u64>,
    /// The item's error when it differs from its class's message, or its skip reason.
    pub note: Option<String>,
}

/// Failed or unknown items with the same HTTP status, API error key and error kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ErrorClass {
    pub http: Option<u16>,
    /// The API's machine code (`ERROR_SESSION_ALREADY_COMPLETED`), when it sent one.
    pub api_key: Option<String>,
    /// Ours: `api_refused`, `retries_exhausted`, `outcome_unknown`, `not_sent`, `transport`.
    pub kind: &'static str,
    pub count: u64,
    /// Steps whose items are in the class, in first-seen order.
    pub steps: Vec<String>,
    pub sample_keys: Vec<String>,
    /// The first item's exact error message.
    pub message: String,
    /// Different messages seen (at most [`MAX_DISTINCT`] are counted).
    pub distinct_messages: usize,
    /// Items of the class that are `unknown` (they need `--retry-unknown`).
    pub unknown: u64,
    seen_messages: HashSet<String>,
}

impl ErrorClass {
    /// `400 · ERROR_SESSION_ALREADY_COMPLETED · api_refused`.
    pub(crate) fn label(&self) -> String {
        let mut parts = Vec::new();
        if let Some(h) = self.http {
            parts.push(h.to_string());
        }
        if let Some(k) = &self.api_key {
            parts.push(k.clone());
        }
        parts.push(self.kind.to_owned());
        parts.join(" · ")
    }
}

/// One step's figures.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepView {
    pub id: String,
    /// Counts by status (keys as in [`View::statuses`]).
    pub counts: IndexMap<String, u64>,
    pub duration_ms: u64,
    /// Requests sent (retries included).
    pub requests: u64,
}

impl StepView {
    /// Requests per second over the step's duration (0 when it took no time).
    #[expect(clippy::cast_precision_loss, reason = "display only")]
    pub(crate) fn rate(&self) -> f64 {
        if self.duration_ms == 0 {
            0.0
        } else {
            self.requests as f64 * 1000.0 / self.duration_ms as f64
        }
    }
}

/// Everything the three views need, from one pass over the report.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub report_path: PathBuf,
    pub header: ReportHeader,
    pub footer: Option<ReportFooter>,
    /// The report has no footer: the run was cut short (or is still going).
    pub truncated: bool,
    /// Requests started with no record (after a crash): unknown.
    pub in_flight: usize,
    pub statuses: Vec<String>,
    /// Counts by status over all items.
    pub counts: IndexMap<String, u64>,
    pub steps: Vec<StepView>,
    pub classes: Vec<ErrorClass>,
    pub rows: Vec<Row>,
    pub timeline: Timeline,
    /// Wall-clock duration of the run (footer, else from the items).
    pub duration_ms: u64,
}

impl View {
    /// Reads the report at `path` (streaming) and builds the view.
    pub(crate) fn load(path: &Path) -> Result<View, ReportReadError> {
        let mut b = Builder::default();
        let scan = scan_report(path, |item| b.add(&item))?;
        // A request started with no record is unknown, as `--resume` counts it.
        for m in &scan.in_flight {
            let mut item = ItemRecord::new(&m.step, m.index, &m.key, ItemStatus::Unknown);
            item.attempts = 1;
            item.error = Some("request started but no result was recorded".to_owned());
            b.add(&item);
        }
        let mut view = b.finish(path, scan.header, scan.footer, scan.truncated);
        view.in_flight = scan.in_flight.len();
        Ok(view)
    }

    /// `completed`, `failed`, `aborted`, or `incomplete` for a report without footer.
    pub(crate) fn outcome(&self) -> &'static str {
        match &self.footer {
            Some(f) => f.outcome.as_str(),
            None => "incomplete",
        }
    }

    /// `dry run` or `run`.
    pub(crate) fn mode(&self) -> &'static str {
        if self.header.dry_run {
            "dry run"
        } else {
            "run"
        }
    }

    /// The count of one status.
    pub(crate) fn count(&self, status: &str) -> u64 {
        self.counts.get(status).copied().unwrap_or(0)
    }

    pub(crate) fn total_items(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The command that runs again the failed items (and, when some are unknown, those too):
    /// `--resume` skips everything that succeeded or was skipped.
    pub(crate) fn rerun_command(&self, with_unknown: bool) -> String {
        let mut cmd = format!(
            "wts-playbook run {} --resume {}",
            shell_quote(&self.header.playbook.path),
            shell_quote(&self.report_path.display().to_string())
        );
        if with_unknown {
            cmd.push_str(" --retry-unknown");
        }
        cmd
    }

    /// The command for one error class: `--resume` with `--only-class` runs again just the
    /// rows whose newest record is of this class (`--retry-unknown` added when the class has
    /// unknown items); every other row is left as the report has it.
    pub(crate) fn class_command(&self, class: &ErrorClass) -> String {
        format!(
            "{} --only-class {}",
            self.rerun_command(class.unknown > 0),
            shell_quote(&class.label())
        )
    }

    /// Routes the run used, when the report records them (`settings.routes`).
    pub(crate) fn routes(&self) -> Option<String> {
        self.header.settings.get("routes").map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// `'text'` when the text holds anything a shell would interpret; the text otherwise.
pub(crate) fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The error class label of a failed or unknown item (`400 · ERROR_X · api_refused`), the
/// one the views group by and `run --only-class` selects; `None` for other statuses.
pub(crate) fn class_label(item: &ItemRecord) -> Option<String> {
    if !matches!(item.status, ItemStatus::Failed | ItemStatus::Unknown) {
        return None;
    }
    let http = item
        .response
        .as_ref()
        .map(|r| r.status)
        .filter(|h| *h >= 300);
    let api_key = item
        .response
        .as_ref()
        .filter(|r| r.status >= 300)
        .and_then(|r| {
            ApiError::from_response(r.status, r.body.as_ref().unwrap_or(&Value::Null)).key
        });
    let class = ErrorClass {
        http,
        api_key,
        kind: error_kind(item),
        count: 0,
        steps: Vec::new(),
        sample_keys: Vec::new(),
        message: String::new(),
        distinct_messages: 0,
        unknown: 0,
        seen_messages: HashSet::new(),
    };
    Some(class.label())
}

/// The row keys whose newest record in these reports (oldest report first) is of the error
/// class `label`: what `run --resume … --only-class LABEL` runs again.
pub(crate) fn keys_of_class(
    reports: &[PathBuf],
    label: &str,
) -> Result<HashSet<String>, ReportReadError> {
    let mut order: Vec<(Timestamp, usize)> = Vec::with_capacity(reports.len());
    for (i, p) in reports.iter().enumerate() {
        order.push((crate::report::read_header(p)?.started_at, i));
    }
    order.sort();
    // step → key → in the class (the newest record of that step and key decides).
    let mut last: HashMap<(String, String), bool> = HashMap::new();
    for (_, i) in order {
        scan_report(&reports[i], |item| {
            let hit = class_label(&item).is_some_and(|l| l == label);
            last.insert((item.step, item.key), hit);
        })?;
    }
    Ok(last
        .into_iter()
        .filter_map(|((_, key), hit)| hit.then_some(key))
        .collect())
}

/// Our error kind of a failed or unknown item.
fn error_kind(item: &ItemRecord) -> &'static str {
    let error = item.error.as_deref().unwrap_or("");
    if item.status.as_str() == "unknown" {
        "outcome_unknown"
    } else if error.starts_with("gave up after") {
        "retries_exhausted"
    } else if item.response.as_ref().is_some_and(|r| r.status >= 300) {
        "api_refused"
    } else if item.request.is_none() {
        "not_sent"
    } else {
        "transport"
    }
}

#[derive(Default)]
struct Builder {
    statuses: Vec<String>,
    status_index: HashMap<String, usize>,
    steps: Vec<StepView>,
    step_index: HashMap<String, usize>,
    step_span: Vec<(Option<i64>, Option<i64>)>,
    classes: Vec<ErrorClass>,
    class_index: HashMap<(Option<u16>, Option<String>, &'static str), usize>,
    /// Items with their absolute start (ms since the epoch), resolved in `finish`.
    rows: Vec<(Row, Option<i64>)>,
}

impl Builder {
    fn status(&mut self, s: &str) -> usize {
        if let Some(&i) = self.status_index.get(s) {
            return i;
        }
        self.statuses.push(s.to_owned());
        self.status_index
            .insert(s.to_owned(), self.statuses.len() - 1);
        self.statuses.len() - 1
    }

    fn step(&mut self, id: &str) -> usize {
        if let Some(&i) = self.step_index.get(id) {
            return i;
        }
        self.steps.push(StepView {
            id: id.to_owned(),
            counts: IndexMap::new(),
            duration_ms: 0,
            requests: 0,
        });
        self.step_span.push((None, None));
        self.step_index.insert(id.to_owned(), self.steps.len() - 1);
        self.steps.len() - 1
    }

    fn add(&mut self, item: &ItemRecord) {
        let status_text = item.status.as_str();
        let status = self.status(status_text);
        let step = self.step(&item.step);
        let sv = &mut self.steps[step];
        *sv.counts.entry(status_text.to_owned()).or_default() += 1;
        sv.requests += u64::from(item.attempts);
        let start = item.started_at.map(Timestamp::as_millisecond);
        if let Some(s) = start {
            let end = s + i64::try_from(item.duration_ms).unwrap_or(0);
            let span = &mut self.step_span[step];
            span.0 = Some(span.0.map_or(s, |a| a.min(s)));
            span.1 = Some(span.1.map_or(end, |b| b.max(end)));
        }
        let http = item.response.as_ref().map(|r| r.status);
        let mut class = None;
        let mut note = item.reason.clone();
        if matches!(status_text, "failed" | "unknown") {
            let api_key = item
                .response
                .as_ref()
                .filter(|r| r.status >= 300)
                .and_then(|r| {
                    ApiError::from_response(r.status, r.body.as_ref().unwrap_or(&Value::Null)).key
                });
            let kind = error_kind(item);
            let message = item.error.clone().unwrap_or_default();
            let id = (http.filter(|h| *h >= 300), api_key, kind);
            let ci = if let Some(&ci) = self.class_index.get(&id) {
                ci
            } else {
                self.classes.push(ErrorClass {
                    http: id.0,
                    api_key: id.1.clone(),
                    kind,
                    count: 0,
                    steps: Vec::new(),
                    sample_keys: Vec::new(),
                    message: message.clone(),
                    distinct_messages: 0,
                    unknown: 0,
                    seen_messages: HashSet::new(),
                });
                self.class_index.insert(id, self.classes.len() - 1);
                self.classes.len() - 1
            };
            let c = &mut self.classes[ci];
            c.count += 1;
            if status_text == "unknown" {
                c.unknown += 1;
            }
            if !c.steps.contains(&item.step) {
                c.steps.push(item.step.clone());
            }
            if c.sample_keys.len() < SAMPLE_KEYS {
                c.sample_keys.push(item.key.clone());
            }
            if c.seen_messages.len() < MAX_DISTINCT && c.seen_messages.insert(message.clone()) {
                c.distinct_messages += 1;
            }
            note = (message != c.message).then_some(message);
            class = Some(ci);
        }
        self.rows.push((
            Row {
                step,
                index: item.index,
                key: item.key.clone(),
                status,
                attempts: item.attempts,
                duration_ms: item.duration_ms,
                start_ms: None,
                http,
                class,
                line: item.line,
                note,
            },
            start,
        ));
    }

    fn finish(
        mut self,
        path: &Path,
        header: ReportHeader,
        footer: Option<ReportFooter>,
        truncated: bool,
    ) -> View {
        // Times are drawn from the first request (the header's start is in whole seconds).
        let t0 = self
            .rows
            .iter()
            .filter_map(|(_, s)| *s)
            .min()
            .unwrap_or_else(|| header.started_at.as_millisecond());
        // Steps in the footer's (playbook) order first, with its figures.
        if let Some(f) = &footer {
            for sf in &f.run.steps {
                let i = self.step(&sf.id);
                self.steps[i].duration_ms = sf.duration_ms;
                self.steps[i].requests = self.steps[i].requests.max(sf.requests);
            }
        }
        for (sv, span) in self.steps.iter_mut().zip(&self.step_span) {
            if sv.duration_ms == 0 {
                if let (Some(a), Some(b)) = span {
                    sv.duration_ms = u64::try_from(b - a).unwrap_or(0);
                }
            }
        }
        let mut order: Vec<usize> = (0..self.steps.len()).collect();
        if let Some(f) = &footer {
            let pos = |id: &str| f.run.steps.iter().position(|s| s.id == id);
            order.sort_by_key(|&i| pos(&self.steps[i].id).unwrap_or(usize::MAX));
        }
        let mut step_remap = vec![0; self.steps.len()];
        for (new, &old) in order.iter().enumerate() {
            step_remap[old] = new;
        }
        let steps: Vec<StepView> = order.iter().map(|&i| self.steps[i].clone()).collect();

        // Statuses in display order.
        let mut statuses: Vec<String> = STATUS_ORDER
            .iter()
            .filter(|s| self.status_index.contains_key(**s))
            .map(|s| (*s).to_owned())
            .collect();
        let mut others: Vec<&String> = self
            .statuses
            .iter()
            .filter(|s| !STATUS_ORDER.contains(&s.as_str()))
            .collect();
        others.sort();
        statuses.extend(others.into_iter().cloned());
        let status_remap: Vec<usize> = self
            .statuses
            .iter()
            .map(|s| statuses.iter().position(|t| t == s).expect("present"))
            .collect();

        let steps: Vec<StepView> = steps
            .into_iter()
            .map(|mut s| {
                s.counts = statuses
                    .iter()
                    .filter_map(|k| s.counts.get(k).map(|n| (k.clone(), *n)))
                    .collect();
                s
            })
            .collect();

        // Classes by count, largest first.
        let mut corder: Vec<usize> = (0..self.classes.len()).collect();
        corder.sort_by_key(|&i| std::cmp::Reverse(self.classes[i].count));
        let mut class_remap = vec![0; self.classes.len()];
        for (new, &old) in corder.iter().enumerate() {
            class_remap[old] = new;
        }
        let classes: Vec<ErrorClass> = corder.iter().map(|&i| self.classes[i].clone()).collect();

        let mut counts: IndexMap<String, u64> = statuses.iter().map(|s| (s.clone(), 0)).collect();
        let mut last_end = t0;
        let rows: Vec<Row> = self
            .rows
            .into_iter()
            .map(|(mut r, start)| {
                r.step = step_remap[r.step];
                r.status = status_remap[r.status];
                r.class = r.class.map(|c| class_remap[c]);
                r.start_ms = start.map(|s| s - t0);
                if let Some(s) = start {
                    last_end = last_end.max(s + i64::try_from(r.duration_ms).unwrap_or(0));
                }
                *counts.get_mut(&statuses[r.status]).expect("status") += 1;
                r
            })
            .collect();
        let duration_ms = footer
            .as_ref()
            .and_then(|f| f.run.duration_ms)
            .unwrap_or_else(|| u64::try_from(last_end - t0).unwrap_or(0));
        let timeline = timeline(t0, &header, footer.as_ref(), &rows, duration_ms);
        View {
            report_path: path.to_owned(),
            header,
            footer,
            truncated,
            in_flight: 0,
            statuses,
            counts,
            steps,
            classes,
            rows,
            timeline,
            duration_ms,
        }
    }
}

/// `1h 02m`, `3m 12s`, `4.2s`, `850ms`.
pub(crate) fn format_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{}h {:02}m", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// Where the views go; `-` is standard output.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outputs {
    pub html: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
}

impl Outputs {
    pub(crate) fn is_empty(&self) -> bool {
        self.html.is_none() && self.junit.is_none() && self.markdown.is_none()
    }
}

/// One view's renderer.
type Render = fn(&View) -> Vec<u8>;

/// Renders every requested view of the report at `report`; returns the paths written, or the
/// first error (as a message naming the file).
pub(crate) fn write_all(report: &Path, outputs: &Outputs) -> Result<Vec<PathBuf>, String> {
    let report_real = std::fs::canonicalize(report).ok();
    for path in [&outputs.html, &outputs.junit, &outputs.markdown]
        .into_iter()
        .flatten()
    {
        if report_real.is_some() && std::fs::canonicalize(path).ok() == report_real {
            return Err(format!(
                "{} is the report itself: choose another file for the view",
                path.display()
            ));
        }
    }
    let view = View::load(report).map_err(|e| e.to_string())?;
    let mut written = Vec::new();
    let jobs: [(&Option<PathBuf>, Render); 3] = [
        (&outputs.html, |v| html::render(v).into_bytes()),
        (&outputs.junit, junit::render),
        (&outputs.markdown, |v| markdown::render(v).into_bytes()),
    ];
    for (path, render) in jobs {
        let Some(path) = path else { continue };
        let bytes = render(&view);
        if path.as_os_str() == "-" {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot write to standard output: {e}"))?;
            continue;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path.clone());
    }
    Ok(written)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn shell_quote_leaves_plain_paths_and_quotes_the_rest() {
        assert_eq!(shell_quote("playbooks/a.yaml"), "playbooks/a.yaml");
        assert_eq!(shell_quote("my file.yaml"), "'my file.yaml'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    use crate::report::{RequestRecord, ResponseRecord};

    fn item(status: ItemStatus, http: Option<u16>, error: &str, sent: bool) -> ItemRecord {
        let mut it = ItemRecord::new("close", 0, "k", status);
        it.error = Some(error.into());
        it.response = http.map(|status| ResponseRecord { status, body: None });
        it.request = sent.then(|| RequestRecord {
            method: crate::catalog::Method::Put,
            path: "/x".into(),
            body: None,
        });
        it
    }

    #[test]
    fn error_kinds_tell_refusals_from_exhausted_retries_unknowns_and_unsent() {
        let f = ItemStatus::Failed;
        assert_eq!(
            error_kind(&item(f, Some(400), "400 Bad Request", true)),
            "api_refused"
        );
        assert_eq!(
            error_kind(&item(f, Some(429), "gave up after 20 attempts: 429", true)),
            "retries_exhausted"
        );
        assert_eq!(
            error_kind(&item(
                ItemStatus::Unknown,
                Some(502),
                "outcome unknown",
                true
            )),
            "outcome_unknown"
        );
        assert_eq!(
            error_kind(&item(f, None, "row 3: not a uuid", false)),
            "not_sent"
        );
        assert_eq!(
            error_kind(&item(f, None, "connection reset", true)),
            "transport"
        );
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(format_ms(850), "850ms");
        assert_eq!(format_ms(4_230), "4.2s");
        assert_eq!(format_ms(192_000), "3m 12s");
        assert_eq!(format_ms(3_720_000), "1h 02m");
    }
}
