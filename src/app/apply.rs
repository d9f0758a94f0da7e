//! `wts-playbook apply PLAN` (README "Plan and apply"): the plan verified (refusals exit 4,
//! nothing sent), the plan's reads run again to find what drifted, then exactly the planned
//! writes sent, on the run's own machinery (limiter, retries, report, `--resume`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::plan::{pairs, run_options, token, transport_parts};
use super::{EXIT_ABORTED, EXIT_INVALID, EXIT_OK, EXIT_REFUSED};
use crate::catalog;
use crate::cli::{ApplyArgs, LogFormat};
use crate::execute::{execute, Client, RateLimiter, RunOptions, RunResult, Transport};
use crate::planfile;
use crate::planfile::capture::{self, ApplyIndex, Capture, PlanMode};
use crate::planfile::cmd::{disk_changes, verify, Target, SANDBOX_BASE_URL};
use crate::program::{Program, StepKind};
use crate::progress::Progress;
use crate::report::{
    self, ItemRecord, ItemStatus, Outcome, PlanRef, PlaybookRef, ReportHeader, ReportLock,
    ReportWriter, RequestRecord, ResumeIndex,
};
use crate::secret::Redactor;
use crate::settings::Overrides;
use crate::validate;

/// The refusal message and exit code 4.
fn refuse(e: &planfile::Refusal) -> u8 {
    eprintln!("error: {e}\n  = note: nothing was sent");
    EXIT_REFUSED
}

/// `wts-playbook apply PLAN`.
pub(super) fn apply_cmd(args: &ApplyArgs) -> u8 {
    super::init_logging_with(args.quiet, args.verbose, args.log_format);
    // The Ctrl-C handler first: none is lost between checking the plan and sending.
    let rt = super::runtime();
    crate::execute::interrupt::listen(rt.handle());
    if args.accounts.is_some() {
        return super::fleet_plan::apply(args);
    }
    let applying = match Applying::new(args, None) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if crate::execute::interrupt::count() > 0 {
        eprintln!("error: interrupted (Ctrl-C) before the apply started; nothing was sent");
        return EXIT_ABORTED;
    }
    rt.block_on(applying.go())
}

/// What an account of `--accounts` gives its apply: its plan, token, base URL and `account.*`
/// scope, the file's every token (redacted), and its part of the joined report.
pub(super) struct ApplyAccount<'f> {
    pub(super) account: &'f crate::accounts::Account,
    pub(super) fleet: &'f crate::accounts::Fleet,
    pub(super) secrets: &'f [String],
    pub(super) plan: PathBuf,
    pub(super) part: PathBuf,
}

/// The OS locks on the report and the reports resumed, held for the whole apply.
type Locks = Vec<(PathBuf, ReportLock)>;

/// One `apply`: the verified plan, the program it holds, and the report it writes.
pub(super) struct Applying<'a> {
    args: &'a ApplyArgs,
    /// Where the writes go: `WTS_BASE_URL`, or the account's `base_url`.
    base_url: String,
    /// Whether it is one account's apply of `--accounts` (its output is its part's).
    in_fleet: bool,
    max_drift: capture::MaxDrift,
    program: Arc<Program>,
    token: String,
    redactor: Redactor,
    index: ApplyIndex,
    header: ReportHeader,
    resume: Option<ResumeIndex>,
    report_path: PathBuf,
    /// The plan file applied (locked, and marked as applied).
    plan_path: PathBuf,
    _locks: Locks,
    started_at: jiff::Timestamp,
}

/// The plan read and checked (refusals first: a refused plan sends nothing, not even the
/// token check), with the token it is applied with.
fn verified_plan(
    path: &Path,
    account: Option<&crate::accounts::Account>,
) -> Result<(planfile::Plan, String), u8> {
    let plan = planfile::read(path).map_err(|e| refuse(&e))?;
    let sandbox_plan = plan.header.options.sandbox;
    let (token, base_url) = match account {
        Some(a) => (
            a.token.expose().to_owned(),
            a.base_url.clone().unwrap_or_else(super::base_url_setting),
        ),
        None if sandbox_plan => (token(true)?, SANDBOX_BASE_URL.to_owned()),
        None => (token(false)?, super::base_url_setting()),
    };
    let target = Target {
        base_url,
        token: token.clone(),
    };
    let plan = verify(path, &target).map_err(|e| refuse(&e))?;
    for w in disk_changes(&plan) {
        eprintln!("warning: {w}");
    }
    Ok((plan, token))
}

/// The playbook the plan holds, with the plan's command-line choices and the `--var`s given now.
fn program_of(
    plan: &planfile::Plan,
    extra_vars: &[(String, String)],
    account: Option<&ApplyAccount<'_>>,
) -> Result<Arc<Program>, u8> {
    let h = &plan.header;
    let mut overrides = Overrides {
        concurrency: h.options.concurrency,
        rate_limit: h.options.rate_limit.clone(),
        routes: h.options.routes,
        inputs: h
            .options
            .inputs
            .iter()
            .map(|(k, v)| (k.clone(), PathBuf::from(v)))
            .collect(),
        vars: h
            .options
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        account: None,
    };
    if let Some(a) = account {
        // The account's `account.*` scope again (its input files are the plan's inputs).
        overrides.account =
            super::fleet::account_overrides(&Overrides::default(), a.account, a.fleet).account;
    }
    for (k, v) in extra_vars {
        overrides.vars.retain(|(n, _)| n != k);
        overrides
            .vars
            .push((k.clone(), crate::playbook::parse_scalar(v)));
    }
    let loaded = crate::playbook::load_str(Path::new(&h.playbook.path), h.playbook.source.clone())
        .map_err(|diags| super::invalid(&diags))?;
    let program = validate::validate(loaded, &overrides).map_err(|diags| super::invalid(&diags))?;
    // A secret given to `plan` with --var, or written in the playbook, is not in the plan.
    let missing: Vec<String> = h
        .options
        .secret_vars
        .iter()
        .filter(|n| !extra_vars.iter().any(|(k, _)| k == *n))
        .map(|n| format!("`{n}`"))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "error: secret var(s) {} are not in the plan (secrets never are): give each with --var NAME=VALUE\n  = note: nothing was sent",
            missing.join(", ")
        );
        return Err(EXIT_INVALID);
    }
    Ok(Arc::new(program))
}

/// The report's locks, the refusal to replace an existing report, and the reports resumed (of
/// an apply of this same plan only).
fn reports_of(
    args: &ApplyArgs,
    plan_path: &Path,
    program: &Program,
    plan_id: &str,
    report_path: &Path,
) -> Result<(Locks, Option<ResumeIndex>), u8> {
    let mut locks: Locks = Vec::new();
    for path in std::iter::once(report_path).chain(args.resume.iter().map(PathBuf::as_path)) {
        let abs = report::canonical(path);
        if locks.iter().any(|(p, _)| *p == abs) {
            continue;
        }
        let lock = ReportLock::acquire(path).map_err(|e| {
            eprintln!(
                "error: {e}\n  = help: wait for that apply to finish (or stop it), then try again"
            );
            EXIT_INVALID
        })?;
        locks.push((abs, lock));
    }
    // One apply of a plan at a time (the plan is locked too), and a plan runs once: a second
    // apply of it is refused unless it continues the first (`--resume`).
    let plan_lock = ReportLock::acquire(plan_path).map_err(|e| {
        eprintln!("error: {e}\n  = help: the plan is being applied by that process; wait for it to finish");
        EXIT_INVALID
    })?;
    locks.push((report::canonical(plan_path), plan_lock));
    once(args, plan_path, report_path)?;
    let into_itself = args
        .resume
        .iter()
        .any(|p| report::canonical(p) == report::canonical(report_path));
    if !args.overwrite && !into_itself && report_path.exists() {
        eprintln!(
            "error: {} exists: resume it with --resume {}, write another --report, or pass --overwrite",
            report_path.display(),
            report_path.display()
        );
        return Err(EXIT_INVALID);
    }
    for r in &args.resume {
        match report::read_header(r) {
            Ok(rh) if rh.plan.as_ref().is_some_and(|p| p.plan_id == plan_id) => {}
            Ok(_) => {
                eprintln!(
                    "error: {} is not a report of an apply of plan {plan_id}\n  = note: nothing was sent",
                    r.display()
                );
                return Err(EXIT_INVALID);
            }
            Err(e) => {
                eprintln!("error: cannot resume from {}: {e}", r.display());
                return Err(EXIT_INVALID);
            }
        }
    }
    if args.resume.is_empty() {
        return Ok((locks, None));
    }
    let resume =
        super::load_resume(&args.resume, program, false).map_err(|d| super::invalid(&[d]))?;
    Ok((locks, Some(resume)))
}

/// `PLAN.applied`: written before an apply of the plan sends anything; names its report.
fn applied_marker(plan: &Path) -> PathBuf {
    let mut name = plan.as_os_str().to_owned();
    name.push(".applied");
    PathBuf::from(name)
}

/// A plan is applied once: refused (exit 4, nothing sent) when it was applied before, unless
/// this apply continues that one (`--resume`); otherwise marked as applied now.
fn once(args: &ApplyArgs, plan_path: &Path, report_path: &Path) -> Result<(), u8> {
    let marker = applied_marker(plan_path);
    if let Ok(earlier) = std::fs::read_to_string(&marker) {
        if args.resume.is_empty() {
            eprintln!(
                "error: plan {} was applied before ({}): a plan runs once; nothing was sent\n  = help: continue an interrupted apply with --resume REPORT, or make a new plan",
                plan_path.display(),
                earlier.trim()
            );
            return Err(EXIT_REFUSED);
        }
        return Ok(());
    }
    let note = format!(
        "report {} at {}\n",
        report_path.display(),
        jiff::Timestamp::now()
    );
    std::fs::write(&marker, note).map_err(|e| {
        eprintln!(
            "error: cannot mark the plan as applied ({}): {e}; nothing was sent",
            marker.display()
        );
        EXIT_INVALID
    })
}

impl<'a> Applying<'a> {
    pub(super) fn new(
        args: &'a ApplyArgs,
        account: Option<&ApplyAccount<'_>>,
    ) -> Result<Applying<'a>, u8> {
        let max_drift = capture::parse_max_drift(&args.max_drift).map_err(|e| {
            eprintln!("error: {e}");
            EXIT_INVALID
        })?;
        let extra_vars = pairs(&args.vars, "--var")?;
        let plan_path = account.map_or(args.plan.as_path(), |a| a.plan.as_path());
        let (plan, token) = verified_plan(plan_path, account.map(|a| a.account))?;
        let program = program_of(&plan, &extra_vars, account)?;
        let started_at = jiff::Timestamp::now();
        let report_path = account
            .map(|a| a.part.clone())
            .or_else(|| args.report.clone())
            .unwrap_or_else(|| report::default_report_path(program.name(), started_at));
        let (locks, resume) = reports_of(
            args,
            plan_path,
            &program,
            &plan.header.plan_id,
            &report_path,
        )?;
        let mut secrets = program.secrets.clone();
        secrets.push(token.clone());
        secrets.extend(account.iter().flat_map(|a| a.secrets.iter().cloned()));
        let base_url = match account {
            Some(a) => a
                .account
                .base_url
                .clone()
                .unwrap_or_else(super::base_url_setting),
            None => super::base_url_setting(),
        };
        let h = &plan.header;
        let mut header = ReportHeader::new(
            uuid::Uuid::new_v4().to_string(),
            PlaybookRef {
                name: program.name().to_owned(),
                path: h.playbook.path.clone(),
                sha256: h.playbook.sha256.clone(),
            },
            false,
            started_at,
            h.settings.clone(),
        );
        header.plan = Some(PlanRef {
            plan_id: h.plan_id.clone(),
            hash: plan.hash().to_owned(),
            path: plan_path.display().to_string(),
            planned: plan.trailer.writes,
        });
        if let Some(r) = &resume {
            header.logical_started_at = r.logical_started_at();
            header.resumed_from = args
                .resume
                .iter()
                .map(|p| p.display().to_string())
                .collect();
        }
        header.account = account.map(|a| a.account.name.clone());
        // The fields each write's `when` and templates read are compared with the plan's, with
        // or without the refresh: a value that read a secret matches any rendering (it is a
        // hole in the plan), so the fields are what shows a changed row behind it.
        let index = ApplyIndex::new(plan);
        Ok(Applying {
            args,
            base_url,
            in_fleet: account.is_some(),
            max_drift,
            program,
            token,
            redactor: Redactor::new(secrets),
            index,
            header,
            resume,
            report_path,
            plan_path: plan_path.to_path_buf(),
            _locks: locks,
            started_at,
        })
    }

    /// Whether an earlier apply (`--resume`) already finished this write.
    fn done_before(&self, w: &planfile::PlannedWrite) -> bool {
        self.resume
            .as_ref()
            .is_some_and(|r| r.should_skip(&w.step, &w.key, self.args.retry_unknown))
    }

    fn limit(&self) -> Option<u64> {
        self.header
            .settings
            .get("limit")
            .and_then(serde_json::Value::as_u64)
    }

    pub(super) async fn go(mut self) -> u8 {
        let sandbox_plan = self.index.plan.header.options.sandbox;
        let sandbox = if sandbox_plan {
            match super::start_sandbox().await {
                Ok(s) => Some(s),
                Err(code) => return code,
            }
        } else {
            None
        };
        let base_url = sandbox
            .as_ref()
            .map_or_else(|| self.base_url.clone(), crate::sandbox::Sandbox::url);
        self.header.base_url = Some(base_url.clone());
        let (client, limiter) =
            match transport_parts(&self.program, &base_url, &self.token, &self.redactor) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_INVALID;
                }
            };
        if !self.args.no_refresh {
            if let Err(code) = self.refresh(&client, &limiter).await {
                if let Some(sb) = sandbox {
                    sb.shutdown().await;
                }
                return code;
            }
        }
        let (redactor, report_path, views) = (
            self.redactor.clone(),
            self.report_path.clone(),
            self.args.views.clone(),
        );
        let (in_fleet, name) = (self.in_fleet, self.header.account.clone());
        let (code, mut out) = Box::pin(self.send(Transport::Http { client, limiter })).await;
        if let Some(sb) = sandbox {
            out.push_str(&format!("\nsandbox: what changed\n{}\n", sb.summary()));
            sb.shutdown().await;
        }
        if let Some(name) = name.filter(|_| in_fleet) {
            out = format!("account {name}:\n{out}");
        }
        print!("{}", redactor.redact(&out));
        if !in_fleet {
            super::write_views(&report_path, &views);
        }
        code
    }

    /// The refresh: the plan's reads again (same filters, pages), writes captured, not sent;
    /// what drifted is marked, and past `--max-drift` nothing is written (exit 4).
    async fn refresh(&mut self, client: &Client, limiter: &RateLimiter) -> Result<(), u8> {
        let redactor = &self.redactor;
        let cap = Arc::new(Capture::default());
        let (fresh, _) = execute(
            self.program.clone(),
            Transport::Http {
                client: client.clone(),
                limiter: limiter.clone(),
            },
            None,
            redactor.clone(),
            Progress::new(crate::progress::Mode::Quiet),
            run_options(self.limit(), PlanMode::Plan(cap.clone())),
        )
        .await;
        if let Some(reason) = &fresh.abort_reason {
            eprintln!(
                "error: the refresh stopped: {}; no write was sent",
                redactor.redact(reason)
            );
            return Err(EXIT_ABORTED);
        }
        if fresh.totals.failed + fresh.totals.unknown > 0 {
            for e in &fresh.first_errors {
                eprintln!("  {}", redactor.redact(e));
            }
            eprintln!("error: the refresh's reads failed; no write was sent");
            return Err(EXIT_ABORTED);
        }
        let reads = cap.reads_sent();
        let cap = Arc::try_unwrap(cap).unwrap_or_else(|_| panic!("the refresh has ended"));
        let (captured, cache) = cap.into_parts();
        let done: std::collections::HashSet<u64> = self
            .index
            .plan
            .writes
            .iter()
            .filter(|w| self.done_before(w))
            .map(|w| w.seq)
            .collect();
        let drifted = self
            .index
            .refresh(&captured, cache, |w| done.contains(&w.seq));
        let open = self.index.plan.trailer.writes - done.len() as u64;
        eprintln!("refresh: {reads} read request(s); {drifted} of {open} planned write(s) drifted");
        if !self.max_drift.exceeded(drifted, open) {
            return Ok(());
        }
        let mut shown: Vec<(&u64, &String)> = self.index.drifted().iter().collect();
        shown.sort();
        for (seq, reason) in shown.iter().take(10) {
            eprintln!("  #{seq}: {}", self.redactor.redact(reason));
        }
        eprintln!(
            "error: {drifted} of {open} planned writes drifted, more than --max-drift {}: stopped before the first write\n  = help: make a new plan (or pass a larger --max-drift)",
            self.args.max_drift
        );
        // Nothing was written: the plan may still be applied (with a larger --max-drift).
        if self.args.resume.is_empty() {
            let _ = std::fs::remove_file(applied_marker(&self.plan_path));
        }
        Err(EXIT_REFUSED)
    }

    /// The writes, exactly as planned, into the report; the exit code and the summary.
    async fn send(self, transport: Transport) -> (u8, String) {
        let sandbox_plan = self.index.plan.header.options.sandbox;
        let mut claimed = std::collections::HashMap::new();
        let created =
            ReportWriter::create_with(&self.report_path, &self.header, !sandbox_plan, |w| {
                let Some(r) = &self.resume else {
                    return Ok(());
                };
                let verifiable = super::verifiable_steps(&self.program);
                r.carry_into(|item| {
                    super::note_claim(&verifiable, item, &mut claimed);
                    w.write_carried(item)
                })
                .map(|_| ())
                .map_err(std::io::Error::other)
            });
        let mut writer = match created {
            Ok(w) => w,
            Err(e) => {
                eprintln!(
                    "error: cannot write the report {}: {e}",
                    self.report_path.display()
                );
                return (EXIT_INVALID, String::new());
            }
        };
        writer.set_sync_markers(!sandbox_plan);
        let since = self
            .header
            .logical_started_at
            .unwrap_or(self.started_at)
            .checked_sub(jiff::SignedDuration::from_mins(5))
            .ok();
        let index = Arc::new(self.index);
        let options = RunOptions {
            failed_csv: self.args.failed_csv.clone(),
            resume: self.resume.clone(),
            retry_unknown: self.args.retry_unknown,
            since,
            claimed,
            ..run_options(
                self.header
                    .settings
                    .get("limit")
                    .and_then(serde_json::Value::as_u64),
                PlanMode::Apply(index.clone()),
            )
        };
        let progress = Progress::auto(self.args.quiet, self.args.log_format == LogFormat::Json);
        let (result, writer) = execute(
            self.program.clone(),
            transport,
            Some(writer),
            self.redactor.clone(),
            progress,
            options,
        )
        .await;
        let writer = writer.expect("the apply had a writer");
        let finish = Finish {
            program: &self.program,
            index: &index,
            resume: self.resume.as_ref(),
            retry_unknown: self.args.retry_unknown,
            redactor: &self.redactor,
            report_path: &self.report_path,
            started_at: self.started_at,
        };
        finish.finish(writer, &result)
    }
}

/// What an apply does once its writes are sent.
struct Finish<'a> {
    program: &'a Program,
    index: &'a ApplyIndex,
    resume: Option<&'a ResumeIndex>,
    retry_unknown: bool,
    redactor: &'a Redactor,
    report_path: &'a Path,
    started_at: jiff::Timestamp,
}

impl Finish<'_> {
    /// Planned writes the playbook no longer reached are recorded `drifted` with their number;
    /// the footer gets the plan's totals; the summary says how they reconcile.
    fn finish(&self, mut writer: ReportWriter, result: &RunResult) -> (u8, String) {
        let mut per_step = result.per_step.clone();
        for (w, reason) in self.index.unreached() {
            let done = self
                .resume
                .is_some_and(|r| r.should_skip(&w.step, &w.key, self.retry_unknown));
            if done || result.abort_reason.is_some() {
                continue;
            }
            let mut rec = ItemRecord::new(w.step.clone(), 0, w.key.clone(), ItemStatus::Drifted);
            rec.seq = Some(w.seq);
            rec.reason = Some(reason);
            rec.request = Some(RequestRecord::from(&w.request()));
            if let Err(e) = writer.write_item(&rec) {
                eprintln!(
                    "error: cannot write the report {}: {e}",
                    self.report_path.display()
                );
            }
            if let Some((_, t)) = per_step.iter_mut().find(|(s, _)| *s == w.step) {
                t.add(ItemStatus::Drifted);
            }
        }
        let mut plan_totals = report::Totals::default();
        for s in self.program.all_steps() {
            if matches!(&s.kind, StepKind::Action { spec, .. } if !catalog::is_read(spec)) {
                if let Some((_, t)) = per_step.iter().find(|(id, _)| *id == s.id) {
                    plan_totals.merge(t);
                }
            }
        }
        // Writes the playbook reached that are not in the plan were not sent (skipped); the
        // totals reconcile with the plan's count: applied + unchanged + drifted + failed +
        // unknown = planned.
        plan_totals.skipped = 0;
        plan_totals.planned = self.index.plan.trailer.writes;
        let finished_at = jiff::Timestamp::now();
        let mut facts = result.facts.clone();
        facts.plan_totals = Some(plan_totals);
        facts.duration_ms =
            u64::try_from(finished_at.duration_since(self.started_at).as_millis()).ok();
        facts.rate_limited = Some(result.rate_limited);
        facts.abort_reason = result
            .abort_reason
            .as_ref()
            .map(|r| self.redactor.redact(r).into_owned());
        let totals =
            super::write_footer(writer, finished_at, result.outcome, facts, self.report_path)
                .unwrap_or(result.totals);
        let mut out = report::summary_text(
            &totals,
            &per_step,
            result.outcome,
            result.elapsed,
            self.report_path,
        );
        out.push_str(&reconciled(self.index, &plan_totals));
        if let Some(reason) = &result.abort_reason {
            out.push_str(&format!("aborted: {}\n", self.redactor.redact(reason)));
        }
        let code = if result.outcome == Outcome::Completed {
            EXIT_OK
        } else {
            super::exit_code(result.outcome)
        };
        (code, out)
    }
}

/// `plan ID (N planned: … applied, … drifted, …)`.
fn reconciled(index: &ApplyIndex, t: &report::Totals) -> String {
    let planned = index.plan.trailer.writes;
    let settled = t.succeeded + t.unchanged + t.drifted + t.failed + t.unknown;
    let rest = if settled == planned {
        String::new()
    } else {
        format!("; {} not reached", planned.saturating_sub(settled))
    };
    format!(
        "plan     {} ({planned} planned: {} applied, {} unchanged, {} drifted, {} failed, {} unknown{rest})\n",
        index.plan.header.plan_id, t.succeeded, t.unchanged, t.drifted, t.failed, t.unknown
    )
}
