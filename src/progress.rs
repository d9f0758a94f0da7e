//! Progress display, a consumer of the scheduler's per-item events: indicatif bars per step on a
//! terminal (done/total, rate, ETA, failures), plain periodic lines otherwise, nothing with `-q`.
//! Everything goes to stderr; stdout stays for data and the summary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines,
    Quiet,
}

/// The run's progress display.
#[derive(Clone)]
pub struct Progress {
    mode: Mode,
    multi: Option<MultiProgress>,
    steps: Arc<Mutex<Vec<StepBar>>>,
}

/// One step's progress.
#[derive(Clone)]
pub struct StepBar {
    id: Arc<str>,
    total: u64,
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    rate_limited: Arc<AtomicU64>,
    started: Instant,
    last_line: Arc<Mutex<Instant>>,
    bar: Option<ProgressBar>,
    mode: Mode,
}

const LINE_EVERY: Duration = Duration::from_secs(2);

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        let multi = (mode == Mode::Bars)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress {
            mode,
            multi,
            steps: Arc::default(),
        }
    }

    /// Bars on a terminal, lines otherwise.
    pub fn auto(quiet: bool) -> Progress {
        use std::io::IsTerminal;
        Progress::new(if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        })
    }

    pub fn step(&self, id: &str, total: u64) -> StepBar {
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
            last_line: Arc::new(Mutex::new(Instant::now())),
            bar,
            mode: self.mode,
        };
        self.steps.lock().expect("steps").push(sb.clone());
        sb
    }

    /// A failed item (counted on its step's bar).
    pub fn failure(&self, step: &str) {
        self.count(step, |sb| &sb.failed);
    }

    /// A 429 answer (the run slows down).
    pub fn rate_limited(&self, step: &str) {
        self.count(step, |sb| &sb.rate_limited);
    }

    /// A long wait (a retry after a 429, …): `message` says what for and until when. Shown on
    /// the step's bar, or as a line.
    pub fn waiting(&self, step: &str, message: &str) {
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

    pub fn finish(&self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

impl StepBar {
    pub fn inc(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match (&self.bar, self.mode) {
            (Some(b), _) => b.inc(1),
            (None, Mode::Lines) => {
                let mut last = self.last_line.lock().expect("last line");
                if last.elapsed() >= LINE_EVERY {
                    *last = Instant::now();
                    eprintln!("{}", self.line(done));
                }
            }
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

    fn line(&self, done: u64) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        #[expect(clippy::cast_precision_loss, reason = "display only")]
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 && done < self.total {
            #[expect(clippy::cast_precision_loss, reason = "display only")]
            let left = (self.total - done) as f64 / rate;
            format!(
                ", ETA {}",
                crate::duration::format_duration(Duration::from_secs_f64(left.round()))
            )
        } else {
            String::new()
        };
        format!(
            "{}: {done}/{} done, {} failed, {}× 429, {rate:.1}/s{eta}",
            self.id,
            self.total,
            self.failed.load(Ordering::Relaxed),
            self.rate_limited.load(Ordering::Relaxed),
        )
    }

    pub fn finish(&self) {
        match (&self.bar, self.mode) {
            (Some(b), _) => b.finish(),
            (None, Mode::Lines) => eprintln!("{}", self.line(self.done.load(Ordering::Relaxed))),
            _ => {}
        }
    }
}
