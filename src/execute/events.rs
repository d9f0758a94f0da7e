//! Events out, displays in: the executor says what happened (a step started, an item is about
//! to be sent or has finished, a retry, a wait, a notice for the operator) and the consumers of
//! those events do the rest: the report writer (the in-flight journal and a line per item), the
//! `--failed-csv` file, the timeline of retries and pauses, and the progress display, which owns
//! the terminal. More observers (a plan file, a fleet's totals) attach with [`Displays::attach`].
//!
//! An observer that cannot keep up with what it must record (the report cannot be written)
//! answers `Err`: the executor aborts the run, and a send that was not yet journaled is not made.

use std::sync::{Arc, Mutex};

use super::failed_rows::FailedRows;
use crate::plan::SourceItem;
use crate::program::{Program, StepPlan};
use crate::progress::Progress;
use crate::report::{ItemRecord, ReportWriter, RunEvent, MAX_EVENTS};

/// What happened, as the executor says it.
pub(crate) enum Event<'a> {
    /// A step starts; it will run `items` items.
    StepStarted { step: &'a str, items: u64 },
    /// A request that is not safe to repeat is about to be sent (its first attempt): journaled
    /// first, so an interruption leaves it `unknown`, not forgotten.
    Sending {
        step: &'a str,
        index: u64,
        key: &'a str,
    },
    /// An item finished: its report line (redacted). `carried`: an earlier report's record,
    /// already in this run's report.
    ItemFinished {
        step: &'a StepPlan,
        source: &'a SourceItem,
        record: &'a ItemRecord,
        carried: bool,
    },
    /// One item of a top-level step is done (its nested steps included).
    Progressed { step: &'a str },
    /// A step's last item is done.
    StepFinished { step: &'a str },
    /// A retry, or the run's pause after a 429, for the timeline.
    Retry(&'a RunEvent),
    /// A 429 answer.
    RateLimited { step: &'a str },
    /// A long wait, said to the operator.
    Waiting { step: &'a str, message: &'a str },
    /// A line for the operator (Ctrl-C).
    Notice(&'a str),
}

/// A consumer of the executor's events.
pub(crate) trait Observer: Send + Sync {
    /// `Err` aborts the run with the message.
    fn on(&self, event: &Event<'_>) -> Result<(), String>;
}

/// The run's consumers of events: the built-in ones, and any attached.
pub(crate) struct Displays {
    /// `None` for a pass that writes no report (the preflight, a dry run).
    report: Mutex<Option<ReportWriter>>,
    failed_rows: Mutex<FailedRows>,
    /// Retries and pauses for the report's timeline, and how many did not fit.
    timeline: Mutex<(Vec<RunEvent>, u64)>,
    progress: Progress,
    attached: Vec<Arc<dyn Observer>>,
    program: Arc<Program>,
}

impl Displays {
    pub(crate) fn new(
        program: Arc<Program>,
        report: Option<ReportWriter>,
        failed_rows: FailedRows,
        progress: Progress,
    ) -> Displays {
        Displays {
            report: Mutex::new(report),
            failed_rows: Mutex::new(failed_rows),
            timeline: Mutex::new((Vec::new(), 0)),
            progress,
            attached: Vec::new(),
            program,
        }
    }

    /// Adds an observer; it sees every event after the built-in ones.
    pub(crate) fn attach(&mut self, observer: Arc<dyn Observer>) {
        self.attached.push(observer);
    }

    /// Hands `event` to every consumer; the first `Err` is returned (the others still see it).
    pub(crate) fn emit(&self, event: &Event<'_>) -> Result<(), String> {
        let mut first = self.builtin(event);
        for o in &self.attached {
            if let Err(e) = o.on(event) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn builtin(&self, event: &Event<'_>) -> Option<String> {
        match *event {
            Event::StepStarted { step, items } => self.progress.step_started(step, items),
            Event::Sending { step, index, key } => {
                let mut report = self.report.lock().expect("report");
                if let Some(r) = report.as_mut() {
                    if let Err(e) = r.write_started(step, index, key) {
                        return Some(format!("cannot write the report: {e}"));
                    }
                }
            }
            Event::ItemFinished {
                step,
                source,
                record,
                carried,
            } => {
                let mut error = None;
                if !carried {
                    let mut report = self.report.lock().expect("report");
                    if let Some(Err(e)) = report.as_mut().map(|r| r.write_item(record)) {
                        error = Some(format!("cannot write the report: {e}"));
                    }
                }
                if record.status.is_failure() {
                    self.failed_rows.lock().expect("failed rows").write(
                        &self.program,
                        source,
                        record.status.as_str(),
                        record.error.as_deref().unwrap_or(""),
                    );
                    self.progress.failure(&step.id);
                }
                return error;
            }
            Event::Progressed { step } => self.progress.inc(step),
            Event::StepFinished { step } => self.progress.step_finished(step),
            Event::Retry(e) => {
                let mut timeline = self.timeline.lock().expect("timeline");
                push_capped(&mut timeline, e.clone());
            }
            Event::RateLimited { step } => self.progress.rate_limited(step),
            Event::Waiting { step, message } => self.progress.waiting(step, message),
            Event::Notice(message) => self.progress.notice(message),
        }
        None
    }

    /// Ends the displays: the report writer back (to finish it), the `--failed-csv` file's first
    /// error, and the timeline (sorted) with how many events did not fit.
    pub(crate) fn finish(self) -> (Option<ReportWriter>, Option<String>, (Vec<RunEvent>, u64)) {
        self.progress.finish();
        let failed = self
            .failed_rows
            .into_inner()
            .expect("failed rows")
            .finish(&self.program);
        let (mut events, dropped) = self.timeline.into_inner().expect("timeline");
        events.sort_by_key(|e| e.at);
        (
            self.report.into_inner().expect("report"),
            failed,
            (events, dropped),
        )
    }
}

/// Keeps at most [`MAX_EVENTS`] events; counts the rest.
fn push_capped(events: &mut (Vec<RunEvent>, u64), event: RunEvent) {
    if events.0.len() < MAX_EVENTS {
        events.0.push(event);
    } else {
        events.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::EventKind;

    #[test]
    fn events_are_capped_and_the_rest_counted() {
        let event = RunEvent {
            at: jiff::Timestamp::UNIX_EPOCH,
            kind: EventKind::Retry,
            step: "close".into(),
            key: "k".into(),
            status: Some(429),
            cause: "rate_limited".into(),
            wait_ms: 1,
        };
        let mut events = (Vec::new(), 0);
        for _ in 0..MAX_EVENTS + 5 {
            push_capped(&mut events, event.clone());
        }
        assert_eq!(events.0.len(), MAX_EVENTS);
        assert_eq!(events.1, 5);
    }
}
