//! `wts-playbook run`: load and check, lock the reports, carry over what `--resume` continues,
//! plan every item (the preflight), confirm, send, and say what happened. Each phase is a
//! function; [`run_cmd`] strings them together, and a phase that refuses returns the exit code.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::{LogFormat, RunArgs};
use crate::execute::{dry_run, execute, Client, RateLimiter, RunOptions, RunResult, Transport};
use crate::playbook::parse_scalar;
use crate::program::{Program, TOKEN_VAR};
use crate::progress::Progress;
use crate::report::{
    self, default_report_path, Outcome, PlaybookRef, ReportHeader, ReportLock, ReportWriter,
    ResumeIndex, Totals,
};
use crate::sandbox::Sandbox;
use crate::secret::{Redactor, Secret};
use crate::settings::Overrides;

use super::{
    ask, base_url_setting, check_output_paths, decide, exit_code, init_logging, invalid,
    load_and_validate, load_resume, note_claim, parse_pairs, preflight, runtime, verifiable_steps,
    write_footer, write_views, Confirm, Preflight, Writes, EXIT_ABORTED, EXIT_INVALID, EXIT_OK,
};

/// A phase's refusal: the exit code (its message is already printed).
type Refused = u8;

pub(super) fn run_cmd(args: &RunArgs) -> u8 {
    match run_phases(args) {
        Ok(code) | Err(code) => code,
    }
}

/// What loading and checking found: the run, what it resumes, `--only-class`'s keys, the
/// token, and the locks on the reports (held until the run ends).
struct Prepared<'a> {
    run: Run<'a>,
    resume: Option<ResumeIndex>,
    only_keys: Option<HashSet<String>>,
    token: Option<String>,
    _locks: Vec<(PathBuf, ReportLock)>,
}

/// Loads and checks everything a run needs before it writes anything.
fn prepare(args: &RunArgs) -> Result<Prepared<'_>, Refused> {
    init_logging(args);
    let overrides = overrides_of(args)?;
    if args.accounts.is_some() {
        // A run over several accounts has phases of its own; its exit code ends this one.
        return Err(super::fleet::run(args, &overrides));
    }
    let program = Arc::new(load_and_validate(&args.playbook, &overrides).map_err(|d| invalid(&d))?);
    let started_at = jiff::Timestamp::now();
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| default_report_path(program.name(), started_at));
    // One live run per report: held for the whole run (released by the OS if the process dies).
    let locks = lock_reports(&report_path, &args.resume)?;
    if let Err(message) = check_output_paths(&program, args, &report_path) {
        eprintln!(
            "error: {message}\n  = help: every output needs a file of its own; nothing was sent"
        );
        return Err(EXIT_INVALID);
    }
    refuse_unfinished(args, &report_path)?;
    let resume = if args.resume.is_empty() {
        None
    } else {
        Some(load_resume(&args.resume, &program, args.force).map_err(|d| invalid(&[d]))?)
    };
    let only_keys = only_keys_of(args)?;
    // Secrets: the token and every `settings.secrets` value.
    let token = token_of(args)?;
    let mut secret_values = program.secrets.clone();
    secret_values.extend(token.clone());
    let run = Run {
        args,
        redactor: Redactor::new(secret_values),
        warnings: program.warnings(),
        program,
        report_path,
        started_at,
    };
    for w in &run.warnings {
        if args.log_format == LogFormat::Json {
            tracing::warn!("{w}");
        } else {
            eprintln!("warning: {w}");
        }
    }
    Ok(Prepared {
        run,
        resume,
        only_keys,
        token,
        _locks: locks,
    })
}

fn run_phases(args: &RunArgs) -> Result<u8, Refused> {
    // A dry run sends nothing and waits for nothing: it runs on this thread, with no runtime.
    // A real run's Ctrl-C handler is installed first, so no Ctrl-C is lost between phases.
    let rt = (!args.dry_run).then(runtime);
    if let Some(rt) = &rt {
        crate::execute::interrupt::listen(rt.handle());
    }
    let Prepared {
        run,
        resume,
        only_keys,
        token,
        _locks,
    } = prepare(args)?;
    if crate::execute::interrupt::count() > 0 {
        eprintln!("error: interrupted (Ctrl-C) before the run started; nothing was sent");
        return Err(EXIT_ABORTED);
    }
    let started_at = run.started_at;
    let mut header = run.header(resume.as_ref());
    // Verification reads look for effects since the logical run began, less a margin for the
    // server's clock.
    let since = header
        .logical_started_at
        .unwrap_or(started_at)
        .checked_sub(jiff::SignedDuration::from_mins(5))
        .ok();
    // The in-process sandbox starts first, so the report's header can name its URL.
    let sandbox = match &rt {
        Some(rt) if args.sandbox => Some(rt.block_on(super::start_sandbox())?),
        _ => None,
    };
    header.base_url = match &sandbox {
        Some(sb) => Some(sb.url()),
        // A dry run of a sandbox rehearsal starts no sandbox: there is no URL to name.
        None if args.sandbox => None,
        None => Some(base_url_setting()),
    };
    let (writer, claimed) = run.create_report(&header, resume.as_ref())?;

    let mut planned = Writes::default();
    if rt.is_some() {
        planned = match run.preflight(resume.clone()) {
            Ok(w) => w,
            Err((message, code)) => return Ok(run.stop_early(writer, &message, code)),
        };
        // Without a terminal on standard input nobody can answer the prompt: a large run
        // needs --yes, before anything is sent.
        let target = sandbox.as_ref().map_or_else(base_url_setting, Sandbox::url);
        if let Confirm::Refuse(message) =
            decide(&planned, args.yes, std::io::stdin().is_terminal(), &target)
        {
            return Ok(run.stop_early(writer, &message, EXIT_INVALID));
        }
    }
    let transport = if args.dry_run {
        None
    } else {
        match run.transport(sandbox.as_ref(), token, &planned) {
            Ok(t) => Some(t),
            Err((message, code)) => return Ok(run.stop_early(writer, &message, code)),
        }
    };
    let options = RunOptions {
        failed_csv: args.failed_csv.clone(),
        limit: args.limit,
        resume,
        retry_unknown: args.retry_unknown,
        preview: 3,
        since,
        only_keys,
        claimed,
        observers: Vec::new(),
        plan_mode: None,
        interrupt: None,
    };
    let progress = Progress::auto(args.quiet, args.log_format == LogFormat::Json);
    let (program, redactor) = (run.program.clone(), run.redactor.clone());
    let (result, writer) = match (&rt, transport) {
        (Some(rt), Some(transport)) => rt.block_on(execute(
            program,
            transport,
            Some(writer),
            redactor,
            progress,
            options,
        )),
        _ => dry_run(program, Some(writer), redactor, progress, options),
    };
    Ok(run.conclude(
        writer.expect("the run had a writer"),
        &result,
        sandbox,
        rt.as_ref(),
    ))
}

/// `--input`, `--var`, `--concurrency`, `--rate-limit`, `--routes` over the playbook's own.
fn overrides_of(args: &RunArgs) -> Result<Overrides, Refused> {
    let mut overrides = Overrides {
        concurrency: args.concurrency,
        rate_limit: args.rate_limit.clone(),
        routes: args.routes,
        ..Overrides::default()
    };
    let inputs = parse_pairs(&args.inputs, "--input").map_err(|d| invalid(&[d]))?;
    overrides.inputs = inputs
        .into_iter()
        .map(|(k, v)| (k, PathBuf::from(v)))
        .collect();
    let vars = parse_pairs(&args.vars, "--var").map_err(|d| invalid(&[d]))?;
    overrides.vars = vars
        .into_iter()
        .map(|(k, v)| (k, parse_scalar(&v)))
        .collect();
    if args.sandbox && args.rate_limit.is_none() {
        // The built-in sandbox has no limit unless asked; don't pace a rehearsal at 3/s.
        overrides.rate_limit = Some("off".into());
    }
    Ok(overrides)
}

/// Locks this run's report and every report it continues.
fn lock_reports(
    report_path: &Path,
    resumed: &[PathBuf],
) -> Result<Vec<(PathBuf, ReportLock)>, Refused> {
    let mut locks: Vec<(PathBuf, ReportLock)> = Vec::new();
    for path in std::iter::once(report_path).chain(resumed.iter().map(PathBuf::as_path)) {
        let abs = report::canonical(path);
        if locks.iter().any(|(p, _)| *p == abs) {
            continue;
        }
        match ReportLock::acquire(path) {
            Ok(lock) => locks.push((abs, lock)),
            Err(e) => {
                eprintln!("error: {e}\n  = help: wait for that run to finish (or stop it), then try again");
                return Err(EXIT_INVALID);
            }
        }
    }
    Ok(locks)
}

/// Replacing the report of an interrupted run would forget what it did: resume it instead.
fn refuse_unfinished(args: &RunArgs, report_path: &Path) -> Result<(), Refused> {
    if args.dry_run || args.overwrite || !report_path.exists() {
        return Ok(());
    }
    let target = report::canonical(report_path);
    let resumed = args.resume.iter().any(|p| report::canonical(p) == target);
    // Read only when it is not resumed (resuming it carries everything over anyway).
    let unfinished = || {
        report::read_header(report_path).is_ok()
            && report::scan_report(report_path, |_| {})
                .map_or(true, |s| s.truncated || !s.in_flight.is_empty())
    };
    if !resumed && unfinished() {
        eprintln!(
            "error: {} is the report of a run that did not finish: replacing it would forget what that run did\n  = help: continue it with --resume {}, write another --report, or pass --overwrite",
            report_path.display(),
            report_path.display()
        );
        return Err(EXIT_INVALID);
    }
    Ok(())
}

/// `--only-class`: the keys of the resumed reports' rows of that class.
fn only_keys_of(args: &RunArgs) -> Result<Option<HashSet<String>>, Refused> {
    let Some(class) = &args.only_class else {
        return Ok(None);
    };
    match crate::views::keys_of_class(&args.resume, class) {
        Ok(keys) if keys.is_empty() => {
            eprintln!("error: --only-class {class}: no row of the resumed report(s) is of that class\n  = help: the HTML and Markdown views list the classes (`wts-playbook report REPORT --markdown -`)");
            Err(EXIT_INVALID)
        }
        Ok(keys) => {
            eprintln!("--only-class: {} row(s) of class {class} run again; every other row is left as it is", keys.len());
            Ok(Some(keys))
        }
        Err(e) => {
            eprintln!("error: --only-class: {e}");
            Err(EXIT_INVALID)
        }
    }
}

/// The token: required for a real run, optional (and still redacted) otherwise.
fn token_of(args: &RunArgs) -> Result<Option<String>, Refused> {
    if args.sandbox || args.dry_run {
        return Ok(std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty()));
    }
    match std::env::var(TOKEN_VAR) {
        Ok(t) if !t.trim().is_empty() => Ok(Some(t)),
        _ => {
            eprintln!("error: {TOKEN_VAR} is not set\n  = help: export {TOKEN_VAR}=pn_… (or use --dry-run, or --sandbox to rehearse)");
            Err(EXIT_INVALID)
        }
    }
}

/// What every phase after loading shares.
pub(super) struct Run<'a> {
    pub(super) args: &'a RunArgs,
    pub(super) program: Arc<Program>,
    pub(super) redactor: Redactor,
    pub(super) warnings: Vec<String>,
    pub(super) report_path: PathBuf,
    pub(super) started_at: jiff::Timestamp,
}

impl Run<'_> {
    /// The report's header: the playbook, the settings the run uses, what it resumes.
    pub(super) fn header(&self, resume: Option<&ResumeIndex>) -> ReportHeader {
        let (args, program) = (self.args, &self.program);
        let settings = serde_json::json!({
            "concurrency": program.settings.concurrency,
            "rate_limit": program.settings.rate_limit_text,
            "routes": program.settings.routes,
            "step_routes": program
                .all_steps()
                .into_iter()
                .filter(|s| s.settings.routes != program.settings.routes)
                .map(|s| (s.id.clone(), serde_json::json!(s.settings.routes)))
                .collect::<serde_json::Map<_, _>>(),
            "retry": program.settings.retry,
            "timeout": crate::duration::format_duration(program.settings.timeout),
            "on_error": program.settings.on_error,
            "max_failures": program.settings.max_failures.map(|b| b.to_string()),
            "limit": args.limit,
            "sandbox": args.sandbox,
            "resume": args.resume.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        });
        let mut header = ReportHeader::new(
            uuid::Uuid::new_v4().to_string(),
            PlaybookRef {
                name: program.name().to_owned(),
                path: program.loaded.path.display().to_string(),
                sha256: program.loaded.sha256.clone(),
            },
            args.dry_run,
            self.started_at,
            settings,
        );
        header.warnings.clone_from(&self.warnings);
        if let Some(r) = resume {
            header.logical_started_at = r.logical_started_at();
            header.resumed_from = args
                .resume
                .iter()
                .map(|p| p.display().to_string())
                .collect();
        }
        header
    }

    /// Creates the report with every record carried over from the resumed reports, before the
    /// first request; the messages their succeeded sends put in sessions are counted as
    /// accounted for.
    pub(super) fn create_report(
        &self,
        header: &ReportHeader,
        resume: Option<&ResumeIndex>,
    ) -> Result<(ReportWriter, HashMap<String, u32>), Refused> {
        let mut claimed = HashMap::new();
        let created =
            ReportWriter::create_with(&self.report_path, header, !self.args.sandbox, |w| {
                let Some(r) = resume else { return Ok(()) };
                let verifiable = verifiable_steps(&self.program);
                r.carry_into(|item| {
                    note_claim(&verifiable, item, &mut claimed);
                    w.write_carried(item)
                })
                .map(|_| ())
                .map_err(std::io::Error::other)
            });
        match created {
            Ok(mut w) => {
                // Against the in-process sandbox a power loss loses the sandbox too.
                w.set_sync_markers(!self.args.sandbox);
                Ok((w, claimed))
            }
            Err(e) => {
                eprintln!(
                    "error: cannot write the report {}: {e}",
                    self.report_path.display()
                );
                Err(EXIT_INVALID)
            }
        }
    }

    /// Plans every item first (the dry run's pipeline, nothing written): a value that cannot
    /// be converted stops the run before anything is sent. Ctrl-C stops it too.
    fn preflight(&self, resume: Option<ResumeIndex>) -> Result<Writes, (String, u8)> {
        let resumed = resume.map(|r| (r, self.args.retry_unknown));
        // A Ctrl-C (counted by `execute::interrupt`, installed before loading) stops it.
        let found = preflight(&self.program, self.args.limit, &self.redactor, resumed);
        match found {
            Preflight::Ok(w) => Ok(w),
            Preflight::Interrupted(reason) => Err((reason, EXIT_ABORTED)),
            Preflight::Unplannable(message) => {
                Err((format!("{message}; nothing was sent"), EXIT_INVALID))
            }
        }
    }

    /// The client and the run's limiter, once the operator confirmed (or `--yes`).
    fn transport(
        &self,
        sandbox: Option<&Sandbox>,
        token: Option<String>,
        planned: &Writes,
    ) -> Result<Transport, (String, u8)> {
        let (base_url, token) = match sandbox {
            Some(sb) => (sb.url(), "sandbox-token".to_owned()),
            None => (base_url_setting(), token.unwrap_or_default()),
        };
        let settings = &self.program.settings;
        let client = Client::new(&base_url, &Secret::new(token), settings.timeout)
            .map_err(|e| {
                // A bad URL is bad input: nothing was sent.
                (format!("WTS_BASE_URL: {e}; nothing was sent"), EXIT_INVALID)
            })?
            .with_max_body(settings.max_response_size)
            .with_redactor(self.redactor.clone());
        // No separate token check: the run's first request is sent alone and doubles as one
        // (a 401 aborts before anything else is sent).
        let limiter = RateLimiter::new(settings.rate_limit.clone());
        if let Confirm::Ask(question) = decide(
            planned,
            self.args.yes,
            std::io::stdin().is_terminal(),
            &base_url,
        ) {
            if !ask(&question) {
                return Err(("not confirmed; nothing was changed".into(), EXIT_ABORTED));
            }
        }
        Ok(Transport::Http { client, limiter })
    }

    /// After the run: the report's footer, the end-of-run text, the sandbox's summary, the
    /// views; the exit code.
    fn conclude(
        &self,
        writer: ReportWriter,
        result: &RunResult,
        sandbox: Option<Sandbox>,
        rt: Option<&tokio::runtime::Runtime>,
    ) -> u8 {
        let totals = self.finish_report(writer, result);
        let mut out = self.summary(result, &totals);
        if let Some(sb) = sandbox {
            out.push_str(&format!("\nsandbox: what changed\n{}\n", sb.summary()));
            if let Some(rt) = rt {
                rt.block_on(sb.shutdown());
            }
        }
        print!("{}", self.redactor.redact(&out));
        write_views(&self.report_path, &self.args.views);
        let _ = std::io::stdout().flush();
        if self.args.dry_run {
            // A dry run whose items could not be planned found invalid input.
            return if totals.failed > 0 {
                EXIT_INVALID
            } else {
                EXIT_OK
            };
        }
        exit_code(result.outcome)
    }

    /// A run that stops before its first item still leaves a report, outcome aborted.
    fn stop_early(&self, writer: ReportWriter, message: &str, code: u8) -> u8 {
        let message = self.redactor.redact(message).into_owned();
        if self.args.log_format == LogFormat::Json {
            tracing::error!("{message}");
        } else {
            eprintln!("error: {message}");
        }
        let finished_at = jiff::Timestamp::now();
        let facts = report::RunFacts {
            duration_ms: u64::try_from(finished_at.duration_since(self.started_at).as_millis())
                .ok(),
            abort_reason: Some(message),
            ..report::RunFacts::default()
        };
        write_footer(
            writer,
            finished_at,
            Outcome::Aborted,
            facts,
            &self.report_path,
        );
        println!("outcome  aborted\nreport   {}", self.report_path.display());
        write_views(&self.report_path, &self.args.views);
        code
    }

    /// Writes the report's footer; the totals it counts (the sends abandoned in flight by a
    /// second Ctrl-C included).
    pub(super) fn finish_report(&self, writer: ReportWriter, result: &RunResult) -> Totals {
        let finished_at = jiff::Timestamp::now();
        let mut facts = result.facts.clone();
        facts.duration_ms =
            u64::try_from(finished_at.duration_since(self.started_at).as_millis()).ok();
        facts.rate_limited = (!self.args.dry_run).then_some(result.rate_limited);
        facts.abort_reason = result
            .abort_reason
            .as_ref()
            .map(|r| self.redactor.redact(r).into_owned());
        write_footer(
            writer,
            finished_at,
            result.outcome,
            facts,
            &self.report_path,
        )
        .unwrap_or(result.totals)
    }

    /// The end-of-run text: the dry run's preview, the summary table, the first errors, the
    /// abort reason, warnings, 429s and the failed rows' file.
    fn summary(&self, result: &RunResult, totals: &Totals) -> String {
        let (args, redactor) = (self.args, &self.redactor);
        let mut out = String::new();
        if args.dry_run {
            out.push_str("dry run: nothing was sent\n\n");
            out.push_str(&redactor.redact(&result.preview));
            out.push('\n');
        }
        out.push_str(&report::summary_text(
            totals,
            &result.per_step,
            result.outcome,
            result.elapsed,
            &self.report_path,
        ));
        if !args.dry_run && !result.first_errors.is_empty() {
            out.push_str("\nfirst errors (all of them are in the report):\n");
            for e in &result.first_errors {
                out.push_str(&format!("  {e}\n"));
            }
        }
        if let Some(reason) = &result.abort_reason {
            out.push_str(&format!("aborted: {}\n", redactor.redact(reason)));
            eprintln!("error: {}", redactor.redact(reason));
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        if result.rate_limited > 0 {
            out.push_str(&format!(
                "rate limited: {} responses were 429 and retried\n",
                result.rate_limited
            ));
        }
        if let Some(path) = &args.failed_csv {
            if let Some(e) = &result.failed_csv_error {
                out.push_str(&format!(
                    "failed rows: could not write {}: {e}\n",
                    path.display()
                ));
            } else if totals.failed + totals.unknown > 0 {
                out.push_str(&format!("failed rows: {}\n", path.display()));
            } else if !args.dry_run {
                out.push_str(&format!(
                    "failed rows: none ({} has the header only)\n",
                    path.display()
                ));
            }
        }
        out
    }
}
