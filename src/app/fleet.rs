//! Runs over several accounts (`--accounts FILE`, README "Many accounts"): the fleet run
//! and `wts-playbook report --merge`.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fleet_view::{spawn_display, summary_table, Tally};
use super::run::Run;
use super::{
    ask, base_url_setting, decide, exit_code, invalid, load_and_validate, load_resume, preflight,
    runtime, write_views, Confirm, Preflight, Writes, EXIT_ABORTED,
};
use super::{EXIT_INVALID, EXIT_OK};
use crate::accounts::{check_split, Account, Fleet, Shard};
use crate::cli::RunArgs;
use crate::diagnostic::Diagnostic;
use crate::execute::{execute, Client, RateLimiter, RunOptions, RunResult, Transport};
use crate::program::Program;
use crate::progress::Progress;
use crate::report::{
    self, default_report_path, AccountRef, Outcome, PlaybookRef, ReportHeader, ReportLock,
    ReportWriter, ResumeIndex,
};
use crate::secret::Redactor;
use crate::settings::{AccountScope, Overrides};

/// `wts-playbook report --merge OUT REPORT...`: joins the reports, then writes the views of
/// OUT that were asked for. 0 written, 2 a report that cannot be joined.
pub(super) fn merge_cmd(reports: &[PathBuf], out: &Path, views: &crate::views::Outputs) -> u8 {
    if let Some(p) = reports
        .iter()
        .find(|p| crate::report::canonical(p) == crate::report::canonical(out))
    {
        eprintln!(
            "error: --merge {} would overwrite the report {} it reads",
            out.display(),
            p.display()
        );
        return EXIT_INVALID;
    }
    let footer = match crate::report::merge(reports, out, None) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "error: --merge: {e}\n  = help: nothing was written to {}",
                out.display()
            );
            let _ = std::fs::remove_file(out);
            return EXIT_INVALID;
        }
    };
    let t = footer.totals;
    eprintln!(
        "merged {} report(s), {} account(s), into {}: {} ({} succeeded, {} unchanged, {} failed, {} unknown, {} skipped)",
        reports.len(),
        footer.per_account.len(),
        out.display(),
        footer.outcome.as_str(),
        t.succeeded,
        t.unchanged,
        t.failed,
        t.unknown,
        t.skipped
    );
    if views.is_empty() {
        return EXIT_OK;
    }
    super::views_cmd(out, views)
}

/// One account's share of a fleet run, ready to send.
struct Member {
    account: Account,
    program: Arc<Program>,
    part: PathBuf,
    resume: Option<ResumeIndex>,
    base_url: String,
}

/// What one account's run left.
pub(super) struct Finished {
    pub(super) name: String,
    pub(super) result: RunResult,
    pub(super) totals: report::Totals,
}

/// `run --accounts FILE`: the playbook once per account, side by side, into one report.
pub(super) fn run(args: &RunArgs, overrides: &Overrides) -> u8 {
    match prepare(args, overrides) {
        Ok(Some(p)) => {
            let code = runtime().block_on(run_members(
                args,
                p.members,
                &p.redactor,
                &p.report_path,
                p.started_at,
                p.shard,
            ));
            drop(p.locks);
            code
        }
        Ok(None) => EXIT_OK,
        Err(code) => code,
    }
}

/// `validate PLAYBOOK --accounts FILE`: the accounts file, then the playbook once per account
/// (its vars, inputs, split rows, every row planned); no token is read. 0 or 2.
pub(super) fn validate(playbook: &Path, accounts: &Path, overrides: &Overrides) -> u8 {
    let placeholder = |_: &str| Some("validate-reads-no-token".to_owned());
    let fleet = match Fleet::load(accounts, placeholder) {
        Ok(f) => f,
        Err(d) => return invalid(&d),
    };
    let programs = match programs_of(playbook, overrides, &fleet) {
        Ok(p) => p,
        Err(code) => return code,
    };
    for (account, program) in fleet.accounts.iter().zip(&programs) {
        let redactor = Redactor::new(program.secrets.clone());
        if let Preflight::Unplannable(message) = preflight(program, None, &redactor, None) {
            eprintln!(
                "error: {}: account `{}`: {}",
                playbook.display(),
                account.name,
                redactor.redact(&message)
            );
            return EXIT_INVALID;
        }
    }
    let rows: u64 = programs
        .iter()
        .map(|p| p.inputs.values().map(|i| i.rows).sum::<u64>())
        .sum();
    println!(
        "ok: {} ({} accounts, {} steps, {} input rows in all)",
        playbook.display(),
        programs.len(),
        programs[0].all_steps().len(),
        rows
    );
    EXIT_OK
}

/// Everything checked and locked, nothing sent yet.
struct Prepared {
    members: Vec<Member>,
    redactor: Redactor,
    report_path: PathBuf,
    started_at: jiff::Timestamp,
    shard: Option<Shard>,
    locks: Vec<ReportLock>,
    /// Holds the accounts' parts taken out of a joined report for `--resume`.
    _scratch: tempfile::TempDir,
}

/// The accounts file, the shard, one program per account, the locks and what each account
/// resumes. `Ok(None)`: the shard has no account.
fn prepare(args: &RunArgs, overrides: &Overrides) -> Result<Option<Prepared>, u8> {
    let Some(accounts_path) = &args.accounts else {
        return Err(EXIT_INVALID);
    };
    // A dry run sends nothing: it needs no token (a placeholder stands in for a missing one).
    let Some((fleet, all_tokens, shard)) =
        fleet_of(accounts_path, args.shard.as_deref(), args.dry_run)?
    else {
        return Ok(None);
    };
    let programs = programs_of(&args.playbook, overrides, &fleet)?;
    let first = Arc::clone(&programs[0]);
    let mut secrets = first.secrets.clone();
    secrets.extend(all_tokens);
    let started_at = jiff::Timestamp::now();
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| default_report_path(first.name(), started_at));
    let locks = lock_all(args, &fleet, &report_path)?;
    let scratch = tempfile::tempdir().map_err(|e| {
        eprintln!("error: cannot make a temporary directory: {e}");
        EXIT_INVALID
    })?;
    let mut members = Vec::new();
    for (account, program) in fleet.accounts.iter().zip(programs) {
        members.push(member(
            args,
            account,
            program,
            &report_path,
            scratch.path(),
        )?);
    }
    if !args.resume.is_empty() && members.iter().all(|m| m.resume.is_none()) {
        eprintln!(
            "error: --resume: no record of any account of {} in {}\n  = help: resume the report of a run over these accounts",
            accounts_path.display(),
            args.resume
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Err(EXIT_INVALID);
    }
    Ok(Some(Prepared {
        members,
        redactor: Redactor::new(secrets),
        report_path,
        started_at,
        shard,
        locks,
        _scratch: scratch,
    }))
}

/// A fleet in its shard: its accounts, every token of the file, the shard.
pub(super) type Sharded = (Fleet, Vec<String>, Option<Shard>);

/// The accounts file's accounts in the shard, every token of the file (secrets whatever the
/// shard) and the shard; `Ok(None)`: the shard has no account. `placeholder`: a missing token
/// stands in (for what sends nothing).
pub(super) fn fleet_of(
    accounts_path: &Path,
    shard: Option<&str>,
    placeholder: bool,
) -> Result<Option<Sharded>, u8> {
    let shard = shard.map(str::parse::<Shard>).transpose().map_err(|e| {
        eprintln!("error: --shard: {e}");
        EXIT_INVALID
    })?;
    let lookup = |v: &str| {
        std::env::var(v)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .or_else(|| placeholder.then(|| "dry-run-no-token".to_owned()))
    };
    let fleet = Fleet::load(accounts_path, lookup).map_err(|d| invalid(&d))?;
    let all_tokens = fleet.tokens();
    let fleet = match shard {
        Some(s) => fleet.only_shard(s),
        None => fleet,
    };
    if fleet.accounts.is_empty() {
        eprintln!(
            "--shard {}: none of the {} account(s) of {} falls in this shard; nothing to do",
            shard.map_or_else(String::new, |s| s.to_string()),
            fleet.all_names.len(),
            accounts_path.display()
        );
        return Ok(None);
    }
    Ok(Some((fleet, all_tokens, shard)))
}

/// The run's overrides for one account: its own input files and its `account.*` scope.
pub(super) fn account_overrides(
    overrides: &Overrides,
    account: &Account,
    fleet: &Fleet,
) -> Overrides {
    let mut o = overrides.clone();
    for (name, path) in &account.inputs {
        o.inputs.retain(|(n, _)| n != name);
        o.inputs.push((name.clone(), path.clone()));
    }
    o.account = Some(AccountScope {
        name: account.name.clone(),
        value: account.template_value(),
        token_envs: fleet.token_envs.clone(),
    });
    o
}

/// One program per account (its vars, its own input files, the rows of a split input), every
/// problem of any of them reported once; then each split input's rows must name accounts of
/// the file.
pub(super) fn programs_of(
    playbook: &Path,
    overrides: &Overrides,
    fleet: &Fleet,
) -> Result<Vec<Arc<Program>>, u8> {
    let mut programs = Vec::new();
    let mut diags: Vec<Diagnostic> = Vec::new();
    for account in &fleet.accounts {
        let o = account_overrides(overrides, account, fleet);
        match load_and_validate(playbook, &o) {
            Ok(p) => programs.push(Arc::new(p)),
            Err(ds) => {
                for d in ds {
                    if !diags.contains(&d) {
                        diags.push(d);
                    }
                }
            }
        }
    }
    if !diags.is_empty() {
        return Err(invalid(&diags));
    }
    let mut checked = std::collections::HashSet::new();
    for p in &programs {
        for info in p.inputs.values() {
            let mut spec = info.spec.clone();
            spec.only = None;
            if checked.insert(spec.path.clone()) {
                if let Err(ds) = check_split(&spec, &fleet.all_names, 20) {
                    diags.extend(ds);
                }
            }
        }
    }
    if diags.is_empty() {
        Ok(programs)
    } else {
        Err(invalid(&diags))
    }
}

/// Locks the joined report, every account's part, and every report resumed (and its parts).
fn lock_all(args: &RunArgs, fleet: &Fleet, report_path: &Path) -> Result<Vec<ReportLock>, u8> {
    let mut paths: Vec<PathBuf> = vec![report_path.to_path_buf()];
    for r in std::iter::once(report_path).chain(args.resume.iter().map(PathBuf::as_path)) {
        if r != report_path {
            paths.push(r.to_path_buf());
        }
        paths.extend(fleet.accounts.iter().map(|a| report::part_path(r, &a.name)));
    }
    let mut locks = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in &paths {
        if !seen.insert(report::canonical(p)) {
            continue;
        }
        match ReportLock::acquire(p) {
            Ok(l) => locks.push(l),
            Err(e) => {
                eprintln!("error: {e}\n  = help: wait for that run to finish (or stop it), then try again");
                return Err(EXIT_INVALID);
            }
        }
    }
    Ok(locks)
}

/// One account's share: what it resumes (its part of each resumed report) and its part of
/// this run's report, which must not be an unfinished run's unless resumed.
fn member(
    args: &RunArgs,
    account: &Account,
    program: Arc<Program>,
    report_path: &Path,
    scratch: &Path,
) -> Result<Member, u8> {
    let mut sources = Vec::new();
    for r in &args.resume {
        let part = report::part_path(r, &account.name);
        if part.is_file() {
            sources.push(part);
        } else if r.is_file() {
            let out = scratch.join(format!("{}-{}.json", sources.len(), account.name));
            match report::split_account(r, &account.name, &out) {
                Ok(true) => sources.push(out),
                Ok(false) => {}
                Err(e) => {
                    eprintln!("error: --resume {}: {e}", r.display());
                    return Err(EXIT_INVALID);
                }
            }
        }
    }
    let resume = if sources.is_empty() {
        None
    } else {
        Some(load_resume(&sources, &program, args.force).map_err(|d| invalid(&[d]))?)
    };
    // Replacing the part of an interrupted run would forget what it did.
    let part = report::part_path(report_path, &account.name);
    if !args.dry_run && !args.overwrite && part.is_file() && !sources.contains(&part) {
        let unfinished = report::scan_report(&part, |_| {})
            .map_or(true, |s| s.truncated || !s.in_flight.is_empty());
        if unfinished {
            eprintln!(
                "error: {} is the report of a run that did not finish: replacing it would forget what that run did\n  = help: continue it with --resume {}, write another --report, or pass --overwrite",
                part.display(),
                report_path.display()
            );
            return Err(EXIT_INVALID);
        }
    }
    Ok(Member {
        base_url: account.base_url.clone().unwrap_or_else(base_url_setting),
        part,
        account: account.clone(),
        program,
        resume,
    })
}

async fn run_members(
    args: &RunArgs,
    members: Vec<Member>,
    redactor: &Redactor,
    report_path: &Path,
    started_at: jiff::Timestamp,
    shard: Option<Shard>,
) -> u8 {
    // Preflight every account (nothing sent), then one confirmation for the whole fleet.
    if let Err(code) = confirm(args, &members, redactor) {
        return code;
    }
    let accounts: Vec<AccountRef> = members
        .iter()
        .map(|m| AccountRef {
            name: m.account.name.clone(),
            base_url: Some(m.base_url.clone()),
        })
        .collect();
    // Each account: its part report, its own client, limiter and token check; a flag that
    // stops it (`on_account_failure: stop_all`) and the tally its progress line shows.
    let stop_all = members.first().is_some_and(|m| {
        m.program.settings.on_account_failure == crate::playbook::OnAccountFailure::StopAll
    });
    let mut flags: Vec<Arc<std::sync::atomic::AtomicBool>> = Vec::new();
    // The account whose abort stopped the others (set before their flags).
    let stopper: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let mut tallies: Vec<(String, Arc<Tally>)> = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut runs: Vec<Run<'_>> = Vec::new();
    for m in members {
        let tally = Arc::new(Tally::default());
        tallies.push((m.account.name.clone(), tally.clone()));
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        flags.push(flag.clone());
        let (run, transport, writer, options) =
            match launch(args, m, redactor, started_at, shard, tally, flag) {
                Ok(l) => l,
                Err(code) => return code,
            };
        let program = Arc::clone(&run.program);
        runs.push(run);
        let redactor = redactor.clone();
        let index = runs.len() - 1;
        tasks.spawn(async move {
            let progress = Progress::new(crate::progress::Mode::Quiet);
            let (result, writer) = execute(
                program,
                transport,
                Some(writer),
                redactor,
                progress,
                options,
            )
            .await;
            (index, result, writer)
        });
    }
    let (stop_display, display_stop) = tokio::sync::watch::channel(false);
    let display = (std::io::stderr().is_terminal()
        && !args.quiet
        && args.log_format == crate::cli::LogFormat::Text)
        .then(|| spawn_display(tallies, display_stop));
    let mut finished: Vec<Finished> = Vec::new();
    // `stop_all`: the first account aborted (by its own cause) stops the others.
    while let Some(done) = tasks.join_next().await {
        let (index, mut result, writer) = match done {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: an account's run failed: {e}");
                continue;
            }
        };
        let name = accounts[index].name.clone();
        if result.outcome == Outcome::Aborted {
            if let Some(first) = stopper.get() {
                result.abort_reason = Some(format!(
                    "stopped because account `{first}` was aborted (settings.on_account_failure: stop_all)"
                ));
            } else if stop_all && stopper.set(name.clone()).is_ok() {
                for flag in &flags {
                    flag.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        let totals = match writer {
            Some(w) => runs[index].finish_report(w, &result),
            None => result.totals,
        };
        finished.push(Finished {
            name,
            result,
            totals,
        });
    }
    let _ = stop_display.send(true);
    if let Some(d) = display {
        let _ = d.await;
    }

    let order: HashMap<&str, usize> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.name.as_str(), i))
        .collect();
    finished.sort_by_key(|f| order.get(f.name.as_str()).copied().unwrap_or(usize::MAX));
    conclude(args, &finished, redactor, report_path, started_at, shard)
}

/// Plans every account's items (nothing sent), then asks once for the whole fleet.
fn confirm(args: &RunArgs, members: &[Member], redactor: &Redactor) -> Result<(), u8> {
    if args.dry_run {
        return Ok(());
    }
    let mut planned = Writes::default();
    for m in members {
        let resumed = m.resume.clone().map(|r| (r, args.retry_unknown));
        match preflight(&m.program, args.limit, redactor, resumed) {
            Preflight::Ok(w) => planned.add(w),
            Preflight::Interrupted(reason) => {
                eprintln!("error: {reason}");
                return Err(EXIT_ABORTED);
            }
            Preflight::Unplannable(message) => {
                eprintln!(
                    "error: account `{}`: {}; nothing was sent",
                    m.account.name,
                    redactor.redact(&message)
                );
                return Err(EXIT_INVALID);
            }
        }
    }
    let target = format!("{} account(s)", members.len());
    match decide(&planned, args.yes, std::io::stdin().is_terminal(), &target) {
        Confirm::Proceed => {}
        Confirm::Refuse(message) => {
            eprintln!("error: {message}");
            return Err(EXIT_INVALID);
        }
        Confirm::Ask(question) => {
            if !ask(&question) {
                eprintln!("error: not confirmed; nothing was changed");
                return Err(EXIT_ABORTED);
            }
        }
    }
    Ok(())
}

/// What one account's execution needs, its part report created (records carried over).
type Launch<'a> = (Run<'a>, Transport, ReportWriter, RunOptions);

/// One account's part report, its own client, limiter and token check (its first request),
/// the tally its progress line shows and the flag that stops it.
fn launch<'a>(
    args: &'a RunArgs,
    m: Member,
    redactor: &Redactor,
    started_at: jiff::Timestamp,
    shard: Option<Shard>,
    tally: Arc<Tally>,
    flag: Arc<std::sync::atomic::AtomicBool>,
) -> Result<Launch<'a>, u8> {
    // The part report: the single run's header and carry-over, naming its account.
    let run = Run {
        args,
        program: Arc::clone(&m.program),
        redactor: redactor.clone(),
        warnings: m.program.warnings(),
        report_path: m.part.clone(),
        started_at,
    };
    let mut header = run.header(m.resume.as_ref());
    header.account = Some(m.account.name.clone());
    header.base_url = Some(m.base_url.clone());
    header.shard = shard.map(|s| s.to_string());
    let since = header
        .logical_started_at
        .unwrap_or(started_at)
        .checked_sub(jiff::SignedDuration::from_mins(5))
        .ok();
    let (writer, claimed) = run.create_report(&header, m.resume.as_ref())?;
    let transport = if args.dry_run {
        Transport::Dry
    } else {
        match Client::new(&m.base_url, &m.account.token, m.program.settings.timeout) {
            Ok(c) => Transport::Http {
                client: c
                    .with_max_body(m.program.settings.max_response_size)
                    .with_redactor(redactor.clone()),
                limiter: RateLimiter::new(m.program.settings.rate_limit.clone()),
            },
            Err(e) => {
                eprintln!(
                    "error: account `{}`: base_url: {e}; nothing was sent",
                    m.account.name
                );
                return Err(EXIT_INVALID);
            }
        }
    };
    let options = RunOptions {
        failed_csv: None,
        limit: args.limit,
        resume: m.resume,
        retry_unknown: args.retry_unknown,
        preview: 3,
        since,
        only_keys: None,
        claimed,
        observers: vec![tally as Arc<dyn crate::execute::events::Observer>],
        interrupt: Some(flag),
        plan_mode: None,
    };
    Ok((run, transport, writer, options))
}

/// Joins the parts into the run's report, prints the summary table, writes the views; the
/// exit code.
fn conclude(
    args: &RunArgs,
    finished: &[Finished],
    redactor: &Redactor,
    report_path: &Path,
    started_at: jiff::Timestamp,
    shard: Option<Shard>,
) -> u8 {
    // The joined report: every part's items, each naming its account.
    if finished.is_empty() {
        eprintln!("error: no account's run finished");
        return EXIT_ABORTED;
    }
    let mut header = ReportHeader::new(
        uuid::Uuid::new_v4().to_string(),
        PlaybookRef {
            name: String::new(),
            path: String::new(),
            sha256: String::new(),
        },
        args.dry_run,
        started_at,
        serde_json::Value::Null,
    );
    let parts: Vec<PathBuf> = finished
        .iter()
        .map(|f| report::part_path(report_path, &f.name))
        .collect();
    if let Ok(h) = report::read_header(&parts[0]) {
        header.playbook = h.playbook;
        header.settings = h.settings;
        header.warnings = h.warnings;
        header.logical_started_at = h.logical_started_at;
        header.resumed_from = h.resumed_from;
    }
    header.shard = shard.map(|s| s.to_string());
    let footer = match report::merge(&parts, report_path, Some(header)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "error: cannot join the accounts' reports into {}: {e}",
                report_path.display()
            );
            return EXIT_ABORTED;
        }
    };
    let elapsed = jiff::Timestamp::now()
        .duration_since(started_at)
        .unsigned_abs();
    let mut out = String::new();
    if args.dry_run {
        out.push_str("dry run: nothing was sent\n\n");
    }
    out.push_str(&summary_table(finished, &footer));
    out.push_str(&format!(
        "outcome  {}\nduration {:.1}s\nreport   {}\nparts    {}/\n",
        footer.outcome.as_str(),
        elapsed.as_secs_f64(),
        report_path.display(),
        report::parts_dir(report_path).display()
    ));
    let rate_limited: u64 = finished.iter().map(|f| f.result.rate_limited).sum();
    if rate_limited > 0 {
        out.push_str(&format!(
            "rate limited: {rate_limited} responses were 429 and retried\n"
        ));
    }
    for f in finished {
        if let Some(reason) = &f.result.abort_reason {
            out.push_str(&format!(
                "aborted: {}: {}\n",
                f.name,
                redactor.redact(reason)
            ));
        }
        for e in f.result.first_errors.iter().take(3) {
            out.push_str(&format!("  {}: {}\n", f.name, redactor.redact(e)));
        }
    }
    print!("{}", redactor.redact(&out));
    write_views(report_path, &args.views);
    if args.dry_run {
        return if footer.totals.failed > 0 {
            EXIT_INVALID
        } else {
            EXIT_OK
        };
    }
    exit_code(footer.outcome)
}
