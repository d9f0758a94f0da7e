//! The scheduler: runs a validated [`Program`] stage by stage. Per step it streams the items of
//! the fan-out, evaluates `when`, renders each request, and sends it under one rate limiter
//! shared by the whole run, with bounded concurrency, retries that know which requests are safe
//! to repeat, a failure budget and cancellation. Every finished item goes to the report at once.
//!
//! A dry run is this same pipeline with a transport that sends nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minijinja::Value as JValue;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::client::Client;
use super::rate::RateLimiter;
use super::retry::RetryCause;
use super::unreachable::Unreachable;
use super::upload::{self, Upload};
use super::verify::Verified;
use crate::catalog::{self, ActionSpec, HttpRequest};
use crate::inputs;
use crate::plan::{self, Base, SourceItem};
use crate::planfile::capture::{self as plan_capture, PlanMode};
use crate::progress::Progress;
use crate::report::{
    EventKind, ItemRecord, ItemStatus, Outcome, ReportWriter, RequestRecord, ResponseRecord,
    ResumeIndex, RunEvent, RunFacts, StepFacts, Totals, MAX_EVENTS,
};
use crate::secret::Redactor;
use crate::template::{self, Placeholder};
use crate::validate::{Program, Source, StepKind, StepPlan};

mod action;
mod items;
mod pagination;
use action::run_action;
use items::items_of;
mod record;
mod resume;
mod sender;
use pagination::{not_a_page, read_pages};
use record::{preview_step, record, FailedRows};
use resume::{carried_as_is, resumed, verify_carried_unknown};
use sender::{Sender, SYNC_SEND_TIMEOUT};

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

#[derive(Default)]
struct StepState {
    /// Items the step will run (known when it starts).
    planned_items: u64,
    totals: Totals,
    results: Vec<(u64, String, JValue)>,
    output: Option<JValue>,
    preview: Vec<String>,
    skipped_when: u64,
    first_errors: Vec<String>,
    /// Dry run: the fan-out list was a placeholder.
    open_list: bool,
    /// First item's start and last item's end, and requests sent (for the report).
    first_start: Option<jiff::Timestamp>,
    last_end: Option<jiff::Timestamp>,
    requests: u64,
    /// Failed or unknown items carried over from an earlier report: in the totals, not in the
    /// failure budget (they are not this run's failures).
    carried_fails: u64,
}

struct Shared {
    program: Arc<Program>,
    base: Base,
    transport: Transport,
    /// `None` for a preflight pass, which writes no report.
    report: Mutex<Option<ReportWriter>>,
    redactor: Redactor,
    progress: Progress,
    options: RunOptions,
    /// Stop starting new items.
    cancel: AtomicBool,
    /// Why the run was aborted, if it was.
    abort: Mutex<Option<String>>,
    /// A failure with `on_error: stop` happened.
    stopped: AtomicBool,
    states: Mutex<HashMap<String, StepState>>,
    rate_limited: AtomicU64,
    dry: bool,
    /// Set by a second Ctrl-C: in-flight items are abandoned.
    abandon: tokio::sync::watch::Sender<bool>,
    /// Flips to `true` with `cancel` (Ctrl-C, an abort, `on_error: stop`): every wait of the
    /// run (retry backoff, `Retry-After`, the rate limiter, a free slot) ends at once.
    stop: tokio::sync::watch::Sender<bool>,
    /// Ends the run when the server cannot be reached at all.
    unreachable: Unreachable,
    failed_rows: Mutex<FailedRows>,
    /// Objects of verifiable writes this run accounts for, by `verify::claim_key`: how many
    /// identical messages in a session are already some item's.
    claims: Mutex<HashMap<String, u32>>,
    /// Held by the run's first request, which doubles as the token check.
    first_request: tokio::sync::Mutex<()>,
    /// The API answered a request with something other than 401: the token works.
    token_ok: AtomicBool,
    /// The API refused the token: nothing more is sent.
    auth_refused: AtomicBool,
    /// The step whose failure budget stopped the run, for the final message.
    budget_stop: Mutex<Option<(String, crate::validate::Budget)>>,
    /// Retries and pauses for the report's timeline, and how many did not fit.
    events: Mutex<(Vec<RunEvent>, u64)>,
}

impl Shared {
    fn abort(&self, reason: String) {
        let mut a = self.abort.lock().expect("abort lock");
        if a.is_none() {
            tracing::warn!("{}", self.redactor.redact(&reason));
            *a = Some(reason);
        }
        self.halt();
    }

    /// Start no new item, and end every wait.
    fn halt(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.stop.send_replace(true);
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// `fut`'s output, or `None` if the run stops first (or has stopped already).
    async fn unless_stopped<T>(&self, fut: impl std::future::Future<Output = T>) -> Option<T> {
        let mut stop = self.stop.subscribe();
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => None,
            v = fut => Some(v),
        }
    }
    /// Records a retry (and, after a 429, the run's pause) for the report's timeline.
    fn event(
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
        let mut events = self.events.lock().expect("events");
        for kind in kinds {
            push_capped(
                &mut events,
                RunEvent {
                    at,
                    kind,
                    step: step.id.clone(),
                    key: self.redactor.redact(&si.key).into_owned(),
                    status,
                    cause: cause_name.to_owned(),
                    wait_ms: millis_std(wait),
                },
            );
        }
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

fn millis(d: jiff::SignedDuration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(0)
}

fn millis_std(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A finished item before it becomes a report line.
struct Done {
    status: ItemStatus,
    attempts: u32,
    request: Option<HttpRequest>,
    response: Option<(u16, Option<Value>)>,
    error: Option<String>,
    reason: Option<String>,
    output: JValue,
    started: Instant,
    /// Rendered values that read a secret (`step.secret_params`): redacted as a whole.
    secret_values: Vec<String>,
    /// Carried over from an earlier report by `--resume`: already in this run's report.
    carried: bool,
    /// What a verification read found (an unknown outcome resolved).
    evidence: Option<Value>,
}

impl Done {
    fn new(status: ItemStatus, started: Instant) -> Done {
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
    fn into_read(self) -> Result<Value, String> {
        if self.status == ItemStatus::Succeeded {
            Ok(template::to_json(&self.output))
        } else {
            Err(self
                .error
                .unwrap_or_else(|| self.status.as_str().to_owned()))
        }
    }

    fn failed(error: String, started: Instant) -> Done {
        Done {
            error: Some(error),
            ..Done::new(ItemStatus::Failed, started)
        }
    }
}

/// Runs the program. The report writer is already created; it is finished here.
pub(crate) async fn execute(
    program: Arc<Program>,
    transport: Transport,
    report: Option<ReportWriter>,
    redactor: Redactor,
    progress: Progress,
    mut options: RunOptions,
) -> (RunResult, Option<ReportWriter>) {
    let claimed = std::mem::take(&mut options.claimed);
    let started = Instant::now();
    let dry = matches!(transport, Transport::Dry);
    let failed_csv = if dry {
        None
    } else {
        options.failed_csv.clone()
    };
    let shared = Arc::new(Shared {
        base: Base::new(&program),
        program: program.clone(),
        transport,
        report: Mutex::new(report),
        redactor,
        progress,
        options,
        cancel: AtomicBool::new(false),
        abort: Mutex::new(None),
        stopped: AtomicBool::new(false),
        states: Mutex::new(HashMap::new()),
        rate_limited: AtomicU64::new(0),
        dry,
        abandon: tokio::sync::watch::channel(false).0,
        stop: tokio::sync::watch::channel(false).0,
        unreachable: Unreachable::new(program.settings.unreachable_after),
        failed_rows: Mutex::new(FailedRows::new(failed_csv)),
        claims: Mutex::new(claimed),
        first_request: tokio::sync::Mutex::new(()),
        token_ok: AtomicBool::new(false),
        auth_refused: AtomicBool::new(false),
        budget_stop: Mutex::new(None),
        events: Mutex::new((Vec::new(), 0)),
    });
    for s in program.all_steps() {
        shared
            .states
            .lock()
            .expect("states")
            .insert(s.id.clone(), StepState::default());
    }

    // Ctrl-C: stop starting new items, let in-flight ones finish.
    let sh = shared.clone();
    let ctrlc = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            sh.abort("interrupted (Ctrl-C): no new items started; in-flight items finished".into());
            eprintln!("interrupted: finishing the items in flight (Ctrl-C again to abandon them)");
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("second Ctrl-C: abandoning in-flight items (reported as unknown)");
                sh.abandon.send_replace(true);
            }
        }
    });

    // Shared with the stage's templates, not copied per stage (that made 20,000 steps
    // quadratic): the stage's view is dropped before the next publish, so adding copies nothing.
    let mut steps_map: Arc<BTreeMap<String, JValue>> = Arc::default();
    for stage in &program.stages {
        if shared.cancelled() {
            break;
        }
        let steps_value = JValue::from_object(StepsView(steps_map.clone()));
        let mut futures: Vec<_> = stage
            .steps()
            .iter()
            .map(|s| run_step(shared.clone(), Arc::new(s.clone()), steps_value.clone()))
            .collect();
        if dry && futures.len() == 1 {
            // Nothing is sent: no task (and no thread hand-off) per stage.
            futures.pop().expect("one step").await;
        } else {
            futures_join(futures).await;
        }
        drop(steps_value);
        for s in stage.steps() {
            publish(&shared, s, Arc::make_mut(&mut steps_map));
        }
    }
    ctrlc.abort();
    let _ = ctrlc.await;

    let shared = Arc::try_unwrap(shared).unwrap_or_else(|_| panic!("all item tasks have finished"));
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
    shared.progress.finish();
    let result = RunResult {
        outcome,
        totals,
        per_step,
        abort_reason,
        preview,
        first_errors,
        elapsed: started.elapsed(),
        rate_limited: shared.rate_limited.load(Ordering::Relaxed),
        failed_csv_error: shared
            .failed_rows
            .into_inner()
            .expect("failed rows")
            .finish(&program),
        facts: {
            let (mut events, dropped) = shared.events.into_inner().expect("events");
            events.sort_by_key(|e| e.at);
            facts.events = events;
            facts.events_dropped = dropped;
            facts
        },
        open_lists,
    };
    (result, shared.report.into_inner().expect("report"))
}

async fn futures_join<F: std::future::Future<Output = ()> + Send + 'static>(futures: Vec<F>) {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    for h in handles {
        if let Err(e) = h.await {
            tracing::error!("a step task failed: {e}");
        }
    }
}

/// `steps` in templates: the finished steps, by id.
#[derive(Debug)]
struct StepsView(Arc<BTreeMap<String, JValue>>);

impl minijinja::value::Object for StepsView {
    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        self.0.get(key.as_str()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(
            self.0.keys().map(|k| JValue::from(k.as_str())).collect(),
        )
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

async fn run_step(shared: Arc<Shared>, step: Arc<StepPlan>, steps: JValue) {
    let (items, total) = match items_of(&shared, &step, &steps) {
        Ok(x) => x,
        Err(e) => {
            let done = Done::failed(e, Instant::now());
            record(&shared, &step, &SourceItem::single(), done, None);
            return;
        }
    };
    let total = shared.options.limit.map_or(total, |l| total.min(l));
    {
        // Nested steps run once per item of their parent.
        let mut states = shared.states.lock().expect("states");
        let nested = match &step.kind {
            StepKind::Pipeline(children) => children.iter().map(|c| c.id.as_str()).collect(),
            StepKind::Action { .. } => Vec::new(),
        };
        for id in std::iter::once(step.id.as_str()).chain(nested) {
            states.get_mut(id).expect("state").planned_items = total;
        }
    }
    tracing::info!(step = %step.id, items = total, "step started");
    let bar = shared.progress.step(&step.id, total);
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
            bar.inc();
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
        let (sh, st, steps, bar, lim) = (
            shared.clone(),
            step.clone(),
            steps.clone(),
            bar.clone(),
            step_limiter.clone(),
        );
        tasks.spawn(async move {
            process_item(&sh, &st, si, &steps, lim.as_ref()).await;
            bar.inc();
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
    bar.finish();
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

async fn process_item(
    shared: &Shared,
    step: &StepPlan,
    si: SourceItem,
    steps: &JValue,
    step_limiter: Option<&RateLimiter>,
) {
    let started = Instant::now();
    if let Some(only) = &shared.options.only_keys {
        if !only.contains(&si.key) {
            // Not selected: nothing is sent or recorded; an earlier record flows on as it is.
            if let Some(done) = carried_as_is(shared, step, &si, started) {
                record(shared, step, &si, done, None);
            }
            return;
        }
    }
    // Resume: skip what an earlier run finished.
    if let StepKind::Action { .. } = step.kind {
        if let Some(done) = resumed(shared, step, &si, started) {
            record(shared, step, &si, done, None);
            return;
        }
    }
    let ctx = match plan::context(&shared.program, &shared.base, step, &si, steps) {
        Ok(c) => c,
        Err(e) => {
            record(
                shared,
                step,
                &si,
                Done::failed(describe_item(&si, &e), started),
                None,
            );
            return;
        }
    };
    if let Some(skip) = check_when(shared, step, &si, &ctx, started) {
        record(shared, step, &si, skip, None);
        return;
    }
    match &step.kind {
        StepKind::Action { spec, with } => {
            let done = run_action(shared, step, spec, with, &si, &ctx, step_limiter).await;
            record(shared, step, &si, done, None);
        }
        StepKind::Pipeline(children) => {
            let mut overlay: BTreeMap<String, JValue> = steps
                .try_iter()
                .map(|keys| {
                    keys.filter_map(|k| steps.get_item(&k).ok().map(|v| (k.to_string(), v)))
                        .collect()
                })
                .unwrap_or_default();
            let mut all_ok = true;
            let mut last_output = JValue::from(());
            for child in children {
                if shared.cancelled() && !shared.dry {
                    all_ok = false;
                    break;
                }
                let started = Instant::now();
                let child_steps = JValue::from(overlay.clone());
                if let Some(done) = resumed(shared, child, &si, started) {
                    // Done in an earlier run: its recorded output goes on to the next steps.
                    let ok = matches!(
                        done.status,
                        ItemStatus::Succeeded | ItemStatus::Unchanged | ItemStatus::Skipped
                    );
                    overlay.insert(
                        child.id.clone(),
                        plan::step_value(Some(done.output.clone()), None),
                    );
                    if done.status != ItemStatus::Skipped {
                        last_output = done.output.clone();
                    }
                    record(shared, child, &si, done, Some(&step.id));
                    if !ok {
                        all_ok = false;
                        break;
                    }
                    continue;
                }
                let cctx =
                    match plan::context(&shared.program, &shared.base, child, &si, &child_steps) {
                        Ok(c) => c,
                        Err(e) => {
                            record(
                                shared,
                                child,
                                &si,
                                Done::failed(describe_item(&si, &e), started),
                                Some(&step.id),
                            );
                            all_ok = false;
                            break;
                        }
                    };
                if let Some(skip) = check_when(shared, child, &si, &cctx, started) {
                    overlay.insert(
                        child.id.clone(),
                        plan::step_value(Some(JValue::from(())), None),
                    );
                    record(shared, child, &si, skip, Some(&step.id));
                    continue;
                }
                let StepKind::Action { spec, with } = &child.kind else {
                    continue;
                };
                let done = run_action(shared, child, spec, with, &si, &cctx, step_limiter).await;
                let ok = matches!(
                    done.status,
                    ItemStatus::Succeeded | ItemStatus::Planned | ItemStatus::Unchanged
                );
                overlay.insert(
                    child.id.clone(),
                    plan::step_value(Some(done.output.clone()), None),
                );
                last_output = done.output.clone();
                record(shared, child, &si, done, Some(&step.id));
                if !ok {
                    // A failed nested step ends this item's pipeline.
                    all_ok = false;
                    break;
                }
            }
            // The pipeline's own result (for `steps.PARENT.succeeded` later); not a report line.
            let status = if !all_ok {
                "failed"
            } else if shared.dry {
                "planned"
            } else {
                "succeeded"
            };
            if step.keep_results {
                let v = plan::result_value(&si, status, &last_output, None);
                shared
                    .states
                    .lock()
                    .expect("states")
                    .get_mut(&step.id)
                    .expect("state")
                    .results
                    .push((si.index, status.into(), v));
            }
        }
    }
}

fn check_when(
    shared: &Shared,
    step: &StepPlan,
    si: &SourceItem,
    ctx: &JValue,
    started: Instant,
) -> Option<Done> {
    let when = step.when.as_ref()?;
    if shared.dry && step.when_reads_steps {
        return None; // depends on outputs a dry run does not have: planned as if true
    }
    match when.eval(ctx) {
        Ok(v) if v.is_true() => None,
        Ok(_) => {
            if let Some(PlanMode::Apply(ix)) = &shared.options.plan_mode {
                if let Some((_, reason)) = ix.when_false(&step.id, &si.key, when.source) {
                    return Some(Done {
                        reason: Some(reason),
                        ..Done::new(ItemStatus::Drifted, started)
                    });
                }
            }
            shared
                .states
                .lock()
                .expect("states")
                .get_mut(&step.id)
                .expect("state")
                .skipped_when += 1;
            Some(Done {
                reason: Some(format!("when: {} is false", when.source)),
                ..Done::new(ItemStatus::Skipped, started)
            })
        }
        Err(e) => Some(Done::failed(
            describe_item(
                si,
                &format!(
                    "when: {}",
                    template::describe_in(&e, &when.variables(), ctx)
                ),
            ),
            started,
        )),
    }
}

fn describe_item(si: &SourceItem, e: &str) -> String {
    match si.line {
        Some(line) => format!("row {} (line {line}, key {}): {e}", si.index + 1, si.key),
        None => e.to_owned(),
    }
}

/// Waits at least this long are said in the log and the progress display.
const WAIT_NOTICE: Duration = Duration::from_secs(1);

/// Says what a retry waits for and until when (the log, and the progress display), when the wait
/// is long enough to be noticed or a server-requested wait was capped.
fn announce_wait(
    shared: &Shared,
    step: &StepPlan,
    cause: RetryCause,
    asked: Option<Duration>,
    max_wait: Duration,
    wait: Duration,
) {
    let was_capped = asked.is_some_and(|a| a > max_wait);
    if wait < WAIT_NOTICE && !was_capped {
        return;
    }
    let f = crate::duration::format_duration;
    let what = match cause {
        RetryCause::RateLimited => "rate limited (429)",
        RetryCause::NotSent => "cannot connect",
        RetryCause::ServerError => "server error",
        RetryCause::Timeout => "timed out",
        RetryCause::Broken => "connection broken",
        RetryCause::NotJson => "answer not JSON",
    };
    let until = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::MAX))
        .map_or_else(
            |_| "later".to_owned(),
            |t| t.strftime("%H:%M:%S UTC").to_string(),
        );
    let mut message = format!("{what}: waiting {} until {until} before retrying", f(wait));
    if let Some(a) = asked {
        message.push_str(&format!(" (the server asked for {}", f(a)));
        if was_capped {
            message.push_str(&format!(
                ", capped by settings.max_retry_wait {}",
                f(max_wait)
            ));
        }
        message.push(')');
    }
    message.push_str("; Ctrl-C ends the wait");
    tracing::warn!(step = %step.id, "{message}");
    shared.progress.waiting(&step.id, &message);
}

/// A fast RNG for backoff jitter, seeded from the thread's.
fn jitter_rng() -> rand::rngs::SmallRng {
    use rand::SeedableRng;
    rand::rngs::SmallRng::from_rng(&mut rand::rng())
}

#[cfg(test)]
mod run_event_tests {
    use super::*;

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
