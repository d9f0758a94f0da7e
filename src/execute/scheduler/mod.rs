//! The scheduler: runs a validated [`Program`] stage by stage. Per step it takes the items of
//! the fan-out from the plan stage (`crate::plan`: item sources, contexts, `when`, rendering),
//! and sends them under one rate limiter shared by the whole run, with bounded concurrency, a
//! failure budget and cancellation (Ctrl-C). What happens goes out as events
//! (`super::events`) to the report, the failed CSV and the progress display.
//!
//! A dry run is this same pipeline with a transport that sends nothing, driven by [`dry_run`]
//! on the calling thread without an async runtime.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use minijinja::Value as JValue;
use tokio::sync::Semaphore;

use super::client::Client;
use super::events::{Event, Observer};
use super::rate::RateLimiter;
use super::upload::{self, Upload};
use super::verify::Verified;
use crate::catalog::{self, ActionSpec, HttpRequest};
use crate::plan::{self, SourceItem};
use crate::planfile::capture::{self as plan_capture, PlanMode};
use crate::program::{Program, StepKind, StepPlan};
use crate::progress::Progress;
use crate::report::{
    ItemRecord, ItemStatus, Outcome, ReportWriter, RequestRecord, ResponseRecord, ResumeIndex,
    RunFacts, StepFacts, Totals,
};
use crate::secret::Redactor;
use crate::template::{self, Placeholder};

mod action;
mod exchange;
mod item;
mod pagination;
mod record;
mod resume;
mod sender;
mod state;
use item::process_item;
use pagination::{not_a_page, read_pages};
use plan::StepsView;
use record::{preview_step, record};
use resume::verify_carried_unknown;
use sender::{Sender, SYNC_SEND_TIMEOUT};
use state::{millis, Done, Shared, StepState};

/// How requests leave the process.
pub(crate) enum Transport {
    /// Dry run: nothing is sent.
    Dry,
    Http {
        client: Client,
        limiter: RateLimiter,
    },
}

/// Options of one run.
pub(crate) struct RunOptions {
    /// Only the first N items of each fan-out.
    pub limit: Option<u64>,
    /// Items already done in an earlier run.
    pub resume: Option<ResumeIndex>,
    pub retry_unknown: bool,
    /// How many requests per step the dry-run preview shows.
    pub preview: usize,
    /// Where to write the failed and unknown items' input rows (`--failed-csv`).
    pub failed_csv: Option<PathBuf>,
    /// Verification reads look for effects since then: the start of the logical run (the
    /// first of a chain of resumed runs), less a margin for clock skew.
    pub since: Option<jiff::Timestamp>,
    /// Messages earlier runs of a resumed run sent, by `verify::claim_key` (see `claims`).
    pub claimed: HashMap<String, u32>,
    /// `--only-class`: only the rows with these keys run; every other row is left as the
    /// earlier report has it (its carried records still flow on to later steps).
    pub only_keys: Option<HashSet<String>>,
    /// `plan` (reads sent, writes captured) or `apply` (only planned writes sent).
    pub(crate) plan_mode: Option<PlanMode>,
    /// More consumers of the run's events, beside the report, failed CSV and progress.
    pub observers: Vec<Arc<dyn Observer>>,
    /// Set from outside (a Ctrl-C seen by the caller): the run stops as if interrupted. A dry
    /// run, which has no runtime to watch for Ctrl-C itself, is stopped this way.
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// What a run did.
#[derive(Debug)]
pub(crate) struct RunResult {
    pub outcome: Outcome,
    pub totals: Totals,
    pub per_step: Vec<(String, Totals)>,
    /// Why the run was aborted (authentication, interruption, failure budget).
    pub abort_reason: Option<String>,
    /// The dry run's preview text.
    pub preview: String,
    /// The first few errors of each step (a real run), `STEP: [KEY] error`.
    pub first_errors: Vec<String>,
    pub elapsed: Duration,
    pub rate_limited: u64,
    /// Why `--failed-csv` could not be written, if it could not.
    pub failed_csv_error: Option<String>,
    /// Dry run: steps whose list comes from a step that did not run (one representative item
    /// was planned; the real count is known only while running).
    pub open_lists: Vec<String>,
    /// Per-step figures and the retry/pause events, for the report's footer.
    pub facts: RunFacts,
}

pub(super) const INTERRUPTED: &str =
    "interrupted (Ctrl-C): no new items started; in-flight items finished";

/// The dry run: [`execute`] with the transport that sends nothing, driven on the calling thread
/// with no async runtime. It is the same pipeline as a real run (fan-outs, `when`, rendering,
/// requests, `--resume`, `--limit`), so what it shows is what a run would send; with nothing to
/// wait for, its future completes in one poll.
pub(crate) fn dry_run(
    program: Arc<Program>,
    report: Option<ReportWriter>,
    redactor: Redactor,
    progress: Progress,
    options: RunOptions,
) -> (RunResult, Option<ReportWriter>) {
    let run = std::pin::pin!(execute(
        program,
        Transport::Dry,
        report,
        redactor,
        progress,
        options
    ));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::future::Future::poll(run, &mut cx) {
        std::task::Poll::Ready(done) => done,
        std::task::Poll::Pending => unreachable!("a dry run waits for nothing"),
    }
}

/// Runs the program. The report writer is already created; it is finished here.
pub(crate) async fn execute(
    program: Arc<Program>,
    transport: Transport,
    report: Option<ReportWriter>,
    redactor: Redactor,
    progress: Progress,
    options: RunOptions,
) -> (RunResult, Option<ReportWriter>) {
    let started = Instant::now();
    let dry = matches!(transport, Transport::Dry);
    let shared = Arc::new(Shared::new(
        program.clone(),
        transport,
        report,
        redactor,
        progress,
        options,
    ));

    // Ctrl-C: stop starting new items, let in-flight ones finish. (A dry run has no runtime;
    // its caller watches, through `options.interrupt`.)
    let sh = shared.clone();
    let ctrlc = (!dry).then(|| {
        tokio::spawn(async move {
            super::interrupt::wait_for(1).await;
            sh.abort(INTERRUPTED.into());
            sh.emit(&Event::Notice(
                "interrupted: finishing the items in flight (Ctrl-C again to abandon them)",
            ));
            super::interrupt::wait_for(2).await;
            sh.emit(&Event::Notice(
                "second Ctrl-C: abandoning in-flight items (reported as unknown)",
            ));
            sh.abandon.send_replace(true);
        })
    });

    // Shared with the stage's templates, not copied per stage (that made 20,000 steps
    // quadratic): the stage's view is dropped before the next publish, so adding copies nothing.
    let mut steps_map: Arc<BTreeMap<String, JValue>> = Arc::default();
    for stage in &program.stages {
        if shared.cancelled() {
            break;
        }
        let steps_value = JValue::from_object(StepsView(steps_map.clone()));
        let futures: Vec<_> = stage
            .steps()
            .iter()
            .map(|s| run_step(shared.clone(), Arc::new(s.clone()), steps_value.clone()))
            .collect();
        if dry {
            // Nothing is sent: the stage's steps one after the other, on this thread.
            for f in futures {
                f.await;
            }
        } else {
            futures_join(futures).await;
        }
        drop(steps_value);
        for s in stage.steps() {
            publish(&shared, s, Arc::make_mut(&mut steps_map));
        }
    }
    if let Some(ctrlc) = ctrlc {
        ctrlc.abort();
        let _ = ctrlc.await;
    }

    let shared = Arc::try_unwrap(shared).unwrap_or_else(|_| panic!("all item tasks have finished"));
    result_of(shared, &program, started)
}

/// What the run did, from its final state: outcome, totals per step, abort reason (the failure
/// budget's counted as the summary counts), the preview, the timeline; and the report writer.
fn result_of(
    shared: Shared,
    program: &Program,
    started: Instant,
) -> (RunResult, Option<ReportWriter>) {
    let dry = shared.dry;
    let mut per_step = Vec::new();
    let mut totals = Totals::default();
    let mut preview = String::new();
    let mut first_errors = Vec::new();
    let mut open_lists = Vec::new();
    let mut facts = RunFacts::default();
    let states = shared.states.into_inner().expect("states");
    for s in program.all_steps() {
        let st = &states[&s.id];
        if st.open_list {
            open_lists.push(s.id.clone());
        }
        totals.merge(&st.totals);
        if matches!(s.kind, StepKind::Action { .. }) {
            per_step.push((s.id.clone(), st.totals));
            let duration_ms = match (st.first_start, st.last_end) {
                (Some(a), Some(b)) => millis(b.duration_since(a)),
                _ => 0,
            };
            facts.steps.push(StepFacts {
                id: s.id.clone(),
                started_at: st.first_start,
                duration_ms,
                requests: st.requests,
                totals: st.totals,
            });
        }
        if dry {
            preview.push_str(&preview_step(s, st));
        }
        first_errors.extend(st.first_errors.iter().map(|e| format!("{}: {e}", s.id)));
    }
    let mut abort_reason = shared.abort.into_inner().expect("abort");
    // The failure budget's message counts what the summary table counts: the step's items as
    // the run ended (in-flight items finished after the budget was passed).
    if let (Some(reason), Some((id, budget))) = (
        abort_reason.as_mut(),
        shared.budget_stop.into_inner().expect("budget"),
    ) {
        if reason.starts_with("failure budget exceeded") {
            let t = states[&id].totals;
            let planned = states[&id].planned_items.max(t.total());
            *reason = format!(
                "failure budget exceeded: {} of {planned} items of step `{id}` failed or have an unknown outcome (max_failures {budget})",
                t.failed + t.unknown
            );
        }
    }
    let outcome = if abort_reason.is_some() {
        Outcome::Aborted
    } else if totals.failed > 0 || totals.unknown > 0 || shared.stopped.load(Ordering::SeqCst) {
        Outcome::Failed
    } else {
        Outcome::Completed
    };
    let (report, failed_csv_error, (events, events_dropped)) = shared.displays.finish();
    facts.events = events;
    facts.events_dropped = events_dropped;
    let result = RunResult {
        outcome,
        totals,
        per_step,
        abort_reason,
        preview,
        first_errors,
        elapsed: started.elapsed(),
        rate_limited: shared.rate_limited.load(Ordering::Relaxed),
        failed_csv_error,
        facts,
        open_lists,
    };
    (result, report)
}

async fn futures_join<F: std::future::Future<Output = ()> + Send + 'static>(futures: Vec<F>) {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    for h in handles {
        if let Err(e) = h.await {
            tracing::error!("a step task failed: {e}");
        }
    }
}

/// Makes a finished step visible to later templates.
fn publish(shared: &Shared, step: &StepPlan, steps_map: &mut BTreeMap<String, JValue>) {
    let mut states = shared.states.lock().expect("states");
    // The kept results of a step, in item order.
    let mut take = |id: &str| {
        let st = states.get_mut(id).expect("state exists");
        let mut r = std::mem::take(&mut st.results);
        r.sort_by_key(|(i, _, _)| *i);
        let output = st.output.take();
        (
            Arc::new(r.into_iter().map(|(_, s, v)| (s, v)).collect::<Vec<_>>()),
            output,
        )
    };
    let (results, output) = take(&step.id);
    // Only a step without fan-out has one `output`.
    let output = (!step.fans_out()).then(|| output.unwrap_or_else(|| JValue::from(())));
    steps_map.insert(step.id.clone(), plan::step_value(output, Some(&results)));
    if let StepKind::Pipeline(children) = &step.kind {
        for c in children {
            // A nested step's results are one per item of the parent.
            let (results, _) = take(&c.id);
            steps_map.insert(c.id.clone(), plan::step_value(None, Some(&results)));
        }
    }
}

/// Notes a step's planned items (its nested steps run once per item too) and says it started.
fn start_step(shared: &Shared, step: &StepPlan, total: u64, open_list: bool) {
    {
        let mut states = shared.states.lock().expect("states");
        states.get_mut(&step.id).expect("state").open_list |= open_list;
        let nested = match &step.kind {
            StepKind::Pipeline(children) => children.iter().map(|c| c.id.as_str()).collect(),
            StepKind::Action { .. } => Vec::new(),
        };
        for id in std::iter::once(step.id.as_str()).chain(nested) {
            states.get_mut(id).expect("state").planned_items = total;
        }
    }
    tracing::info!(step = %step.id, items = total, "step started");
}

async fn run_step(shared: Arc<Shared>, step: Arc<StepPlan>, steps: JValue) {
    let plan::Fanout {
        items,
        total,
        open_list,
    } = match plan::items_of(&shared.program, &shared.base, &step, &steps) {
        Ok(x) => x,
        Err(e) => {
            let done = Done::failed(e, Instant::now());
            record(&shared, &step, &SourceItem::single(), done, None);
            return;
        }
    };
    let total = shared.options.limit.map_or(total, |l| total.min(l));
    start_step(&shared, &step, total, open_list);
    shared.emit(&Event::StepStarted {
        step: &step.id,
        items: total,
    });
    let semaphore = Arc::new(Semaphore::new(step.settings.concurrency as usize));
    let step_limiter = step
        .settings
        .rate_limit
        .clone()
        .map(|r| RateLimiter::new(Some(r)));
    let mut tasks = tokio::task::JoinSet::new();
    for (n, item) in items.enumerate() {
        if shared.cancelled() || shared.options.limit.is_some_and(|l| n as u64 >= l) {
            break;
        }
        let mut si = match item {
            Ok(si) => si,
            Err(e) => {
                // Inputs were checked before the run; a problem here means the file changed.
                shared.abort(format!("input changed during the run: {e}"));
                break;
            }
        };
        if !shared.redactor.is_empty() {
            // A key holding a secret is reported (and resumed) by its redacted form.
            si.key = shared.redactor.redact(&si.key).into_owned();
        }
        if shared.dry {
            // Nothing is sent: plan inline, in order.
            process_item(&shared, &step, si, &steps, None).await;
            shared.emit(&Event::Progressed { step: &step.id });
            continue;
        }
        // Waiting for a free slot ends when the run stops (a second Ctrl-C must not wait for
        // an in-flight request to finish first).
        let Some(permit) = shared
            .unless_stopped(semaphore.clone().acquire_owned())
            .await
        else {
            break;
        };
        let permit = permit.expect("semaphore open");
        if shared.cancelled() {
            break;
        }
        let (sh, st, steps, lim) = (
            shared.clone(),
            step.clone(),
            steps.clone(),
            step_limiter.clone(),
        );
        tasks.spawn(async move {
            process_item(&sh, &st, si, &steps, lim.as_ref()).await;
            sh.emit(&Event::Progressed { step: &st.id });
            drop(permit);
        });
        // Reap finished tasks so the set stays small on long fan-outs.
        while tasks.try_join_next().is_some() {}
    }
    let mut abandon = shared.abandon.subscribe();
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            () = async { drop(abandon.wait_for(|a| *a).await) } => {
                // In-flight sends that may have reached the server stay open in the in-flight
                // journal; finishing the report turns them into `unknown` items.
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
    shared.emit(&Event::StepFinished { step: &step.id });
    if let Some(st) = shared.states.lock().expect("states").get(&step.id) {
        let t = st.totals;
        tracing::info!(
            step = %step.id,
            succeeded = t.succeeded,
            failed = t.failed,
            skipped = t.skipped,
            unknown = t.unknown,
            planned = t.planned,
            "step finished"
        );
    }
}
