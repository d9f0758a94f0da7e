//! Progress display, a consumer of the scheduler's per-item events: indicatif bars per step on a
//! terminal (done/total, rate, ETA, failures), plain periodic lines otherwise, one JSON object
//! per line with `--log-format json` (the same shape as the JSON logs), nothing with `-q`.
//! Everything goes to stderr; stdout stays for data and the summary. A line is printed only when
//! its counts changed since the last one, so the final line never repeats.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Bars,
    Lines,
    /// One JSON event per line (`--log-format json`).
    Json,
    Quiet,
}

/// Where lines and events go (stderr, or a buffer in tests).
type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

/// When the last line was printed, and the counts (done, failed, 429s) it showed.
type LastLine = (Instant, Option<(u64, u64, u64)>);

/// The run's progress display.
#[derive(Clone)]
pub(crate) struct Progress {
    mode: Mode,
    multi: Option<MultiProgress>,
    steps: Arc<Mutex<Vec<StepBar>>>,
    every: Duration,
    sink: Sink,
}

/// One step's progress.
#[derive(Clone)]
pub(crate) struct StepBar {
    id: Arc<str>,
    total: u64,
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    rate_limited: Arc<AtomicU64>,
    started: Instant,
    /// When the last line was printed, and the counts it showed.
    last_line: Arc<Mutex<LastLine>>,
    bar: Option<ProgressBar>,
    mode: Mode,
    every: Duration,
    sink: Sink,
}

const LINE_EVERY: Duration = Duration::from_secs(2);

impl Progress {
    pub(crate) fn new(mode: Mode) -> Progress {
        Progress::with_sink(mode, LINE_EVERY, Box::new(std::io::stderr()))
    }

    /// A display writing its lines (not bars) to `sink`, a line at most every `every`.
    pub(crate) fn with_sink(mode: Mode, every: Duration, sink: Box<dyn Write + Send>) -> Progress {
        let multi = (mode == Mode::Bars)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        if multi.is_some() {
            // The bars own the terminal: every other line for stderr goes above them.
            crate::output::set_bars(multi.clone());
        }
        Progress {
            mode,
            multi,
            steps: Arc::default(),
            every,
            sink: Arc::new(Mutex::new(sink)),
        }
    }

    /// Bars on a terminal, lines otherwise; JSON events when the logs are JSON.
    pub(crate) fn auto(quiet: bool, json: bool) -> Progress {
        use std::io::IsTerminal;
        Progress::new(if quiet {
            Mode::Quiet
        } else if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        })
    }

    fn step(&self, id: &str, total: u64) -> StepBar {
        let bar = self.multi.as_ref().map(|m| {
            let b = m.add(ProgressBar::new(total));
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:>14} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(id.to_owned());
            b
        });
        let sb = StepBar {
            id: id.into(),
            total,
            done: Arc::default(),
            failed: Arc::default(),
            rate_limited: Arc::default(),
            started: Instant::now(),
            last_line: Arc::new(Mutex::new((Instant::now(), None))),
            bar,
            mode: self.mode,
            every: self.every,
            sink: self.sink.clone(),
        };
        self.steps.lock().expect("steps").push(sb.clone());
        sb
    }

    /// A step starts with `total` items: its bar, or its lines.
    pub(crate) fn step_started(&self, id: &str, total: u64) {
        self.step(id, total);
    }

    /// One more item of step `id` is done.
    pub(crate) fn inc(&self, id: &str) {
        self.with_bar(id, StepBar::inc);
    }

    /// Step `id` has finished: its bar stays, complete, or its last line is printed.
    pub(crate) fn step_finished(&self, id: &str) {
        self.with_bar(id, StepBar::finish);
    }

    /// A line for the operator, printed above the bars (`crate::output` redraws them below).
    pub(crate) fn notice(&self, message: &str) {
        if self.mode != Mode::Json {
            eprintln!("{message}");
        }
    }

    /// `f` on step `id`'s bar (the latest one of that id); nothing in quiet mode.
    fn with_bar(&self, id: &str, f: impl FnOnce(&StepBar)) {
        if self.mode == Mode::Quiet {
            return;
        }
        let steps = self.steps.lock().expect("steps");
        if let Some(sb) = steps.iter().rev().find(|s| &*s.id == id) {
            f(sb);
        }
    }

    /// A failed item (counted on its step's bar).
    pub(crate) fn failure(&self, step: &str) {
        self.count(step, |sb| &sb.failed);
    }

    /// A 429 answer (the run slows down).
    pub(crate) fn rate_limited(&self, step: &str) {
        self.count(step, |sb| &sb.rate_limited);
    }

    /// A long wait (a retry after a 429, …): `message` says what for and until when. Shown on
    /// the step's bar, or as a line.
    pub(crate) fn waiting(&self, step: &str, message: &str) {
        let steps = self.steps.lock().expect("steps");
        let Some(sb) = steps.iter().find(|s| &*s.id == step) else {
            return;
        };
        match (&sb.bar, self.mode) {
            (Some(b), _) => b.set_message(format!("{} · {message}", sb.counters())),
            (None, Mode::Lines) => eprintln!("{step}: {message}"),
            _ => {}
        }
    }

    fn count(&self, step: &str, counter: impl Fn(&StepBar) -> &AtomicU64) {
        let steps = self.steps.lock().expect("steps");
        if let Some(sb) = steps.iter().find(|s| &*s.id == step) {
            counter(sb).fetch_add(1, Ordering::Relaxed);
            if let Some(b) = &sb.bar {
                b.set_message(sb.counters());
            }
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
            crate::output::set_bars(None);
        }
    }
}

impl StepBar {
    pub(crate) fn inc(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
        match (&self.bar, self.mode) {
            (Some(b), _) => b.inc(1),
            (None, Mode::Lines | Mode::Json) => self.print(false),
            _ => {}
        }
    }

    fn counters(&self) -> String {
        let failed = self.failed.load(Ordering::Relaxed);
        let limited = self.rate_limited.load(Ordering::Relaxed);
        match (failed, limited) {
            (0, 0) => String::new(),
            (f, 0) => format!("{f} failed"),
            (0, l) => format!("{l}× 429"),
            (f, l) => format!("{f} failed, {l}× 429"),
        }
    }

    /// Prints a line (or event) if `every` has passed, or always when `last`, unless the counts
    /// are those of the line printed before.
    fn print(&self, last: bool) {
        let counts = (
            self.done.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.rate_limited.load(Ordering::Relaxed),
        );
        let mut prev = self.last_line.lock().expect("last line");
        if prev.1 == Some(counts) || (!last && prev.0.elapsed() < self.every) {
            return;
        }
        *prev = (Instant::now(), Some(counts));
        let text = if self.mode == Mode::Json {
            self.event(counts, last)
        } else {
            self.line(counts)
        };
        let mut sink = self.sink.lock().expect("progress sink");
        let _ = writeln!(sink, "{text}");
        let _ = sink.flush();
    }

    fn rate_and_eta(&self, done: u64) -> (f64, Option<Duration>) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        #[expect(clippy::cast_precision_loss, reason = "display only")]
        let rate = done as f64 / secs;
        let eta = (rate > 0.0 && done < self.total).then(|| {
            #[expect(clippy::cast_precision_loss, reason = "display only")]
            let left = (self.total - done) as f64 / rate;
            Duration::from_secs_f64(left.round())
        });
        (rate, eta)
    }

    fn line(&self, (done, failed, limited): (u64, u64, u64)) -> String {
        let (rate, eta) = self.rate_and_eta(done);
        let eta = eta.map_or_else(String::new, |d| {
            format!(", ETA {}", crate::duration::format_duration(d))
        });
        format!(
            "{}: {done}/{} done, {failed} failed, {limited}× 429, {rate:.1}/s{eta}",
            self.id, self.total,
        )
    }

    /// The shape of a `tracing` JSON log line, so one `jq` filter reads both.
    fn event(&self, (done, failed, limited): (u64, u64, u64), last: bool) -> String {
        let (rate, eta) = self.rate_and_eta(done);
        serde_json::json!({
            "timestamp": jiff::Timestamp::now().to_string(),
            "level": "INFO",
            "fields": {
                "message": if last { "step finished" } else { "progress" },
                "step": &*self.id,
                "done": done,
                "total": self.total,
                "failed": failed,
                "rate_limited": limited,
                "per_second": (rate * 10.0).round() / 10.0,
                "eta_seconds": eta.map(|d| d.as_secs()),
            },
            "target": "wts_playbook::progress",
        })
        .to_string()
    }

    pub(crate) fn finish(&self) {
        match (&self.bar, self.mode) {
            (Some(b), _) => b.finish(),
            (None, Mode::Lines | Mode::Json) => self.print(true),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test reads back.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    #[test]
    fn the_last_line_is_printed_once() {
        let buf = Buf::default();
        let p = Progress::with_sink(Mode::Lines, Duration::ZERO, Box::new(buf.clone()));
        let bar = p.step("close", 2);
        bar.inc();
        bar.inc();
        bar.finish();
        let lines = buf.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("close: 1/2 done, 0 failed"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("close: 2/2 done, 0 failed"),
            "{lines:?}"
        );
    }

    #[test]
    fn json_mode_prints_json_events_only() {
        let buf = Buf::default();
        let p = Progress::with_sink(Mode::Json, Duration::from_secs(3600), Box::new(buf.clone()));
        let bar = p.step("tell", 3);
        for _ in 0..3 {
            bar.inc();
        }
        p.failure("tell");
        bar.finish();
        let lines = buf.lines();
        assert_eq!(lines.len(), 1, "one event at the end: {lines:?}");
        let v: serde_json::Value = serde_json::from_str(&lines[0]).expect("JSON");
        assert_eq!(v["fields"]["message"], "step finished");
        assert_eq!(v["fields"]["step"], "tell");
        assert_eq!(v["fields"]["done"], 3);
        assert_eq!(v["fields"]["total"], 3);
        assert_eq!(v["fields"]["failed"], 1);
        assert_eq!(v["target"], "wts_playbook::progress");
    }
}
