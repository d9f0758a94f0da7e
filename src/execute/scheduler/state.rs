//! The run's shared state: what every step and item task sees (the program, the transport,
//! the displays, cancellation and the abort reason, the per-step counts), and an item's result
//! before it becomes a report line.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minijinja::Value as JValue;
use serde_json::Value;

use crate::catalog::HttpRequest;
use crate::execute::events::{Displays, Event};
use crate::execute::failed_rows::FailedRows;
use crate::execute::retry::RetryCause;
use crate::execute::unreachable::Unreachable;
use crate::plan::{Base, SourceItem};
use crate::program::{Program, StepKind, StepPlan};
use crate::progress::Progress;
use crate::report::{EventKind, ItemStatus, ReportWriter, RunEvent, Totals};
use crate::secret::Redactor;
use crate::template::{self};

use super::{RunOptions, Transport, INTERRUPTED};

#[derive(Default)]
pub(super) struct StepState {
    /// Items the step will run (known when it starts).
    pub(super) planned_items: u64,
    pub(super) totals: Totals,
    pub(super) results: Vec<(u64, String, JValue)>,
    pub(super) output: Option<JValue>,
    pub(super) preview: Vec<String>,
    pub(super) skipped_when: u64,
    pub(super) first_errors: Vec<String>,
    /// Dry run: the fan-out list was a placeholder.
    pub(super) open_list: bool,
    /// First item's start and last item's end, and requests sent (for the report).
    pub(super) first_start: Option<jiff::Timestamp>,
    pub(super) last_end: Option<jiff::Timestamp>,
    pub(super) requests: u64,
    /// Failed or unknown items carried over from an earlier report: in the totals, not in the
    /// failure budget (they are not this run's failures).
    pub(super) carried_fails: u64,
}

pub(super) struct Shared {
    pub(super) program: Arc<Program>,
    pub(super) base: Base,
    pub(super) transport: Transport,
    /// The consumers of the run's events (report, failed CSV, timeline, progress).
    pub(super) displays: Displays,
    pub(super) redactor: Redactor,
    pub(super) options: RunOptions,
    /// Stop starting new items.
    pub(super) cancel: AtomicBool,
    /// Why the run was aborted, if it was.
    pub(super) abort: Mutex<Option<String>>,
    /// A failure with `on_error: stop` happened.
    pub(super) stopped: AtomicBool,
    pub(super) states: Mutex<HashMap<String, StepState>>,
    pub(super) rate_limited: AtomicU64,
    pub(super) dry: bool,
    /// Set by a second Ctrl-C: in-flight items are abandoned.
    pub(super) abandon: tokio::sync::watch::Sender<bool>,
    /// Flips to `true` with `cancel` (Ctrl-C, an abort, `on_error: stop`): every wait of the
    /// run (retry backoff, `Retry-After`, the rate limiter, a free slot) ends at once.
    pub(super) stop: tokio::sync::watch::Sender<bool>,
    /// Ends the run when the server cannot be reached at all.
    pub(super) unreachable: Unreachable,
    /// Objects of verifiable writes this run accounts for, by `verify::claim_key`: how many
    /// identical messages in a session are already some item's.
    pub(super) claims: Mutex<HashMap<String, u32>>,
    /// Held by the run's first request, which doubles as the token check.
    pub(super) first_request: tokio::sync::Mutex<()>,
    /// The API answered a request with something other than 401: the token works.
    pub(super) token_ok: AtomicBool,
    /// The API refused the token: nothing more is sent.
    pub(super) auth_refused: AtomicBool,
    /// The step whose failure budget stopped the run, for the final message.
    pub(super) budget_stop: Mutex<Option<(String, crate::settings::Budget)>>,
    /// The steps whose `when` reads a write's answer (which a plan does not have).
    pub(super) when_reads_write: std::collections::HashSet<String>,
}

impl Shared {
    /// The state of a run of `program` that has not started.
    pub(super) fn new(
        program: Arc<Program>,
        transport: Transport,
        report: Option<ReportWriter>,
        redactor: Redactor,
        progress: Progress,
        mut options: RunOptions,
    ) -> Shared {
        let claimed = std::mem::take(&mut options.claimed);
        let observers = std::mem::take(&mut options.observers);
        let dry = matches!(transport, Transport::Dry);
        let failed_csv = if dry {
            None
        } else {
            options.failed_csv.clone()
        };
        let states = program
            .all_steps()
            .into_iter()
            .map(|s| (s.id.clone(), StepState::default()))
            .collect();
        let displays = {
            let mut d = Displays::new(
                program.clone(),
                report,
                FailedRows::new(failed_csv),
                progress,
            );
            for o in observers {
                d.attach(o);
            }
            d
        };
        let base = Base::new(&program);
        let when_reads_write = program
            .all_steps()
            .into_iter()
            .filter(|s| when_reads_a_write(&program, s))
            .map(|s| s.id.clone())
            .collect();
        let unreachable = Unreachable::new(program.settings.unreachable_after);
        Shared {
            base,
            program,
            transport,
            displays,
            redactor,
            options,
            cancel: AtomicBool::new(false),
            abort: Mutex::new(None),
            stopped: AtomicBool::new(false),
            states: Mutex::new(states),
            rate_limited: AtomicU64::new(0),
            dry,
            abandon: tokio::sync::watch::channel(false).0,
            stop: tokio::sync::watch::channel(false).0,
            unreachable,
            claims: Mutex::new(claimed),
            first_request: tokio::sync::Mutex::new(()),
            token_ok: AtomicBool::new(false),
            auth_refused: AtomicBool::new(false),
            budget_stop: Mutex::new(None),
            when_reads_write,
        }
    }

    pub(super) fn abort(&self, reason: String) {
        let mut a = self.abort.lock().expect("abort lock");
        if a.is_none() {
            tracing::warn!("{}", self.redactor.redact(&reason));
            *a = Some(reason);
        }
        self.halt();
    }

    /// Start no new item, and end every wait.
    pub(super) fn halt(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.stop.send_replace(true);
    }

    /// Hands `event` to the displays; one that cannot record it aborts the run. `false` then.
    pub(super) fn emit(&self, event: &Event<'_>) -> bool {
        match self.displays.emit(event) {
            Ok(()) => true,
            Err(e) => {
                self.abort(e);
                false
            }
        }
    }

    pub(super) fn cancelled(&self) -> bool {
        let stop_asked = crate::execute::interrupt::count() > 0
            || self
                .options
                .interrupt
                .as_ref()
                .is_some_and(|i| i.load(Ordering::Relaxed));
        if stop_asked && !self.cancel.load(Ordering::SeqCst) {
            self.abort(INTERRUPTED.into());
        }
        self.cancel.load(Ordering::SeqCst)
    }

    /// `fut`'s output, or `None` if the run stops first (or has stopped already).
    pub(super) async fn unless_stopped<T>(
        &self,
        fut: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        let mut stop = self.stop.subscribe();
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => None,
            v = fut => Some(v),
        }
    }
    /// Records a retry (and, after a 429, the run's pause) for the report's timeline.
    pub(super) fn event(
        &self,
        step: &StepPlan,
        si: &SourceItem,
        cause: RetryCause,
        result: &Result<crate::execute::ApiResponse, crate::execute::TransportError>,
        wait: Duration,
    ) {
        let at = jiff::Timestamp::now();
        let status = result.as_ref().ok().map(|r| r.status);
        let cause_name = match cause {
            RetryCause::RateLimited => "rate_limited",
            RetryCause::NotSent => "not_sent",
            RetryCause::ServerError => "server_error",
            RetryCause::Timeout => "timeout",
            RetryCause::Broken => "connection_broken",
            RetryCause::NotJson => "not_json",
        };
        let mut kinds = vec![EventKind::Retry];
        if cause.pauses_limiter() {
            kinds.push(EventKind::Pause);
        }
        for kind in kinds {
            self.emit(&Event::Retry(&RunEvent {
                at,
                kind,
                step: step.id.clone(),
                key: self.redactor.redact(&si.key).into_owned(),
                status,
                cause: cause_name.to_owned(),
                wait_ms: millis_std(wait),
            }));
        }
    }
}

pub(super) fn millis(d: jiff::SignedDuration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(0)
}

pub(super) fn millis_std(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A finished item before it becomes a report line.
pub(super) struct Done {
    pub(super) status: ItemStatus,
    pub(super) attempts: u32,
    pub(super) request: Option<HttpRequest>,
    pub(super) response: Option<(u16, Option<Value>)>,
    pub(super) error: Option<String>,
    pub(super) reason: Option<String>,
    pub(super) output: JValue,
    pub(super) started: Instant,
    /// Rendered values that read a secret (`step.secret_params`): redacted as a whole.
    pub(super) secret_values: Vec<String>,
    /// Carried over from an earlier report by `--resume`: already in this run's report.
    pub(super) carried: bool,
    /// What a verification read found (an unknown outcome resolved).
    pub(super) evidence: Option<Value>,
}

impl Done {
    pub(super) fn new(status: ItemStatus, started: Instant) -> Done {
        Done {
            status,
            attempts: 0,
            request: None,
            response: None,
            error: None,
            reason: None,
            output: JValue::from(()),
            started,
            secret_values: Vec::new(),
            carried: false,
            evidence: None,
        }
    }

    /// A read's answer: the JSON body, or why there is none.
    pub(super) fn into_read(self) -> Result<Value, String> {
        if self.status == ItemStatus::Succeeded {
            Ok(template::to_json(&self.output))
        } else {
            Err(self
                .error
                .unwrap_or_else(|| self.status.as_str().to_owned()))
        }
    }

    pub(super) fn failed(error: String, started: Instant) -> Done {
        Done {
            error: Some(error),
            ..Done::new(ItemStatus::Failed, started)
        }
    }
}

/// Whether `step`'s `when` reads the output of a step that writes (whose answer a plan does
/// not have): a pipeline, or an action the catalog does not class as a read.
pub(super) fn when_reads_a_write(program: &crate::program::Program, step: &StepPlan) -> bool {
    let Some(when) = &step.when else {
        return false;
    };
    let steps = program.all_steps();
    when.variables()
        .iter()
        .filter_map(|v| v.strip_prefix("steps.")?.split('.').next())
        .any(|id| {
            steps.iter().any(|s| {
                s.id == id
                    && match &s.kind {
                        StepKind::Action { spec, .. } => !crate::catalog::is_read(spec),
                        StepKind::Pipeline(_) => true,
                    }
            })
        })
}
