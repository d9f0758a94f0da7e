//! One function per subcommand, and the only place that maps outcomes to exit codes:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | everything succeeded (or the dry run / validation found no problem) |
//! | 1 | the run finished but some items failed |
//! | 2 | the playbook, its inputs or the command line are invalid; nothing was sent |
//! | 3 | the run was aborted (authentication refused, interrupted, failure budget exceeded) |

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::{
    Cli, Command, LogFormat, OutputFormat, ReportArgs, RunArgs, SchemaKind, ViewArgs,
};
use crate::diagnostic::{did_you_mean, render_all, Diagnostic};
use crate::execute::{execute, Client, RateLimiter, RunOptions, Transport};
use crate::playbook::{self, parse_scalar};
use crate::progress::Progress;
use crate::report::{
    self, default_report_path, Outcome, PlaybookRef, ReportHeader, ReportLock, ReportWriter,
    ResumeIndex,
};
use crate::secret::{Redactor, Secret};
use crate::validate::{self, Overrides, Program, TOKEN_VAR};
use crate::{catalog, schema, views};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_INVALID: u8 = 2;
pub const EXIT_ABORTED: u8 = 3;
/// `apply` refused the plan (changed, expired, another base URL or account, unknown format, or
/// past `--max-drift`): no write was sent.
pub const EXIT_REFUSED: u8 = 4;

/// The exit code of a finished run.
pub fn exit_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Completed => EXIT_OK,
        Outcome::Failed => EXIT_FAILED,
        Outcome::Aborted => EXIT_ABORTED,
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Validate { playbooks, routes } => validate_cmd(&playbooks, routes),
        Command::Actions { action, format } => actions_cmd(action.as_deref(), format),
        Command::Schema { which } => {
            let v = match which {
                SchemaKind::Playbook => schema::playbook_schema(),
                SchemaKind::Report => report::report_schema(),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&v).expect("schema serializes")
            );
            EXIT_OK
        }
        Command::Sandbox(args) => u8::try_from(runtime().block_on(crate::sandbox::serve_cli(args)))
            .unwrap_or(EXIT_INVALID),
        Command::Run(args) => run_cmd(&args),
        Command::Report(args) => report_cmd(&args),
        Command::Show { plan, format } => show_cmd(&plan, format),
        Command::Plan(args) => crate::planfile::cmd::plan_cmd(&args),
        Command::Apply(args) => crate::planfile::cmd::apply_cmd(&args),
    }
}

/// `show PLAN`: the plan, checked like `apply` checks it (a changed plan is refused, exit 4).
fn show_cmd(path: &Path, format: crate::planfile::ShowFormat) -> u8 {
    match crate::planfile::read(path) {
        Ok(plan) => {
            print!("{}", crate::planfile::show(&plan, format));
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_REFUSED
        }
    }
}

fn view_outputs(v: &ViewArgs) -> views::Outputs {
    views::Outputs {
        html: v.html.clone(),
        junit: v.junit.clone(),
        markdown: v.markdown.clone(),
    }
}

/// `run --html/--junit/--markdown`: the views of the finished report, listed after the summary.
/// A view that cannot be written is an error message, not a different exit code.
pub(crate) fn write_views(report_path: &Path, args: &ViewArgs) {
    let outputs = view_outputs(args);
    if outputs.is_empty() {
        return;
    }
    match views::write_all(report_path, &outputs) {
        Ok(written) => {
            for p in written {
                println!("view     {}", p.display());
            }
        }
        Err(e) => eprintln!("error: the report's views: {e}"),
    }
}

/// `wts-playbook report REPORT --html/--junit/--markdown`: 0 written, 2 bad report or no view.
fn report_cmd(args: &ReportArgs) -> u8 {
    let outputs = view_outputs(&args.views);
    if outputs.is_empty() {
        eprintln!("error: nothing to write\n  = help: pass --html PATH, --junit PATH and/or --markdown PATH");
        return EXIT_INVALID;
    }
    match views::write_all(&args.report, &outputs) {
        Ok(written) => {
            for p in written {
                eprintln!("wrote {}", p.display());
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_INVALID
        }
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// What planning every item (a dry run with no report) found.
enum Preflight {
    /// Every item can be planned; the writes the run will make.
    Ok(Writes),
    Interrupted(String),
    /// Items whose request cannot be built (a CSV value of the wrong type, …): the message.
    Unplannable(String),
}

/// Plans every item the run will send: `limit` and, with `--resume`, what it skips, as the run
/// will (so the writes counted for the confirmation are exactly the run's).
async fn preflight(
    program: &Arc<Program>,
    limit: Option<u64>,
    redactor: &Redactor,
    resume: Option<(ResumeIndex, bool)>,
) -> Preflight {
    let (resume, retry_unknown) = resume.map_or((None, false), |(r, u)| (Some(r), u));
    let options = RunOptions {
        failed_csv: None,
        limit,
        resume,
        retry_unknown,
        preview: 0,
        since: None,
        only_keys: None,
        plan_mode: None,
        claimed: std::collections::HashMap::new(),
    };
    let progress = Progress::new(crate::progress::Mode::Quiet);
    let (pre, _) = execute(
        program.clone(),
        Transport::Dry,
        None,
        redactor.clone(),
        progress,
        options,
    )
    .await;
    if let Some(reason) = pre.abort_reason {
        return Preflight::Interrupted(reason);
    }
    if pre.totals.failed == 0 {
        return Preflight::Ok(Writes::planned(program, &pre));
    }
    let mut message = format!(
        "{} item(s) cannot be planned (`run --dry-run` shows every request)",
        pre.totals.failed
    );
    for e in &pre.first_errors {
        message.push_str(&format!("\n  {e}"));
    }
    Preflight::Unplannable(message)
}

fn validate_cmd(paths: &[PathBuf], routes: Option<catalog::Routes>) -> u8 {
    let mut code = EXIT_OK;
    let overrides = Overrides {
        routes,
        ..Overrides::default()
    };
    for path in paths {
        match load_and_validate(path, &overrides) {
            Ok(program) => {
                // Every row's values too: the requests are planned (nothing is sent).
                let program = Arc::new(program);
                let redactor = Redactor::new(program.secrets.clone());
                if let Preflight::Unplannable(message) =
                    runtime().block_on(preflight(&program, None, &redactor, None))
                {
                    eprintln!("error: {}: {}", path.display(), redactor.redact(&message));
                    code = EXIT_INVALID;
                    continue;
                }
                for w in program.warnings() {
                    eprintln!("warning: {}: {w}", path.display());
                }
                let rows: u64 = program.inputs.values().map(|i| i.rows).sum();
                println!(
                    "ok: {} ({} steps, {} input rows)",
                    path.display(),
                    program.all_steps().len(),
                    rows
                );
            }
            Err(diags) => {
                eprint!("{}", render_all(&diags));
                code = EXIT_INVALID;
            }
        }
    }
    code
}

fn actions_cmd(action: Option<&str>, format: OutputFormat) -> u8 {
    let json = |v: &serde_json::Value| {
        println!(
            "{}",
            serde_json::to_string_pretty(v).expect("JSON serializes")
        );
    };
    match action {
        None => {
            match format {
                OutputFormat::Text => {
                    // On a terminal, fitted to it; piped, the full table (one line per action).
                    let width = if std::io::stdout().is_terminal() {
                        textwrap::termwidth()
                    } else {
                        usize::MAX
                    };
                    print!("{}", catalog::list_for_width(width));
                }
                OutputFormat::Json => json(&catalog::list_json()),
            }
            EXIT_OK
        }
        Some(name) => {
            if let Some(spec) = catalog::lookup(name) {
                match format {
                    OutputFormat::Text => print!("{}", catalog::describe(spec)),
                    OutputFormat::Json => json(&catalog::describe_json(spec)),
                }
                EXIT_OK
            } else {
                let hint = did_you_mean(name, catalog::names())
                    .unwrap_or_else(|| "`wts-playbook actions` lists them".into());
                eprintln!("error: unknown action `{name}`\n  = help: {hint}");
                EXIT_INVALID
            }
        }
    }
}

/// Loads and validates a playbook with command-line overrides. Every problem comes back at
/// once: a wrong value found while loading does not stop the checks of the rest of the file.
pub fn load_and_validate(path: &Path, overrides: &Overrides) -> Result<Program, Vec<Diagnostic>> {
    let (loaded, mut diags) = playbook::load_partial_file(path);
    let Some(loaded) = loaded else {
        return Err(diags);
    };
    if diags.is_empty() {
        return validate::validate(loaded, overrides);
    }
    if let Err(more) = validate::validate(loaded, overrides) {
        // The later checks' problems, less any at a position already reported.
        for d in more {
            if !diags
                .iter()
                .any(|e| e.file == d.file && e.line == d.line && e.column == d.column)
            {
                diags.push(d);
            }
        }
        diags.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    }
    Err(diags)
}

pub(crate) fn parse_pairs(
    args: &[String],
    flag: &str,
) -> Result<Vec<(String, String)>, Diagnostic> {
    args.iter()
        .map(|a| {
            a.split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                .ok_or_else(|| {
                    Diagnostic::file(
                        Path::new("<command line>"),
                        format!("{flag} {a}: expected NAME=VALUE"),
                    )
                })
        })
        .collect()
}

fn init_logging(args: &RunArgs) {
    init_logging_with(args.quiet, args.verbose, args.log_format);
}

/// Logging to stderr at the level `-q` / `-v` choose, as text or JSON.
pub(crate) fn init_logging_with(quiet: bool, verbose: u8, log_format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("WTS_PLAYBOOK_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("wts_playbook={level}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Its report of a failed write goes to stderr with `eprintln!`, which panics when stderr
        // is closed (`2>&-`, a reader gone): a closed stderr is not a crash.
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if log_format == LogFormat::Json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn run_cmd(args: &RunArgs) -> u8 {
    init_logging(args);
    let mut overrides = Overrides {
        concurrency: args.concurrency,
        rate_limit: args.rate_limit.clone(),
        routes: args.routes,
        ..Overrides::default()
    };
    match parse_pairs(&args.inputs, "--input") {
        Ok(p) => overrides.inputs = p.into_iter().map(|(k, v)| (k, PathBuf::from(v))).collect(),
        Err(d) => return invalid(&[d]),
    }
    match parse_pairs(&args.vars, "--var") {
        Ok(p) => overrides.vars = p.into_iter().map(|(k, v)| (k, parse_scalar(&v))).collect(),
        Err(d) => return invalid(&[d]),
    }
    if args.sandbox && args.rate_limit.is_none() {
        // The built-in sandbox has no limit unless asked; don't pace a rehearsal at 3/s.
        overrides.rate_limit = Some("off".into());
    }
    let program = match load_and_validate(&args.playbook, &overrides) {
        Ok(p) => Arc::new(p),
        Err(diags) => return invalid(&diags),
    };
    let started_at = jiff::Timestamp::now();
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| default_report_path(program.name(), started_at));
    // One live run per report: this run's report and every report it continues are locked
    // for the whole run (released by the OS if the process dies).
    let mut locks: Vec<(PathBuf, ReportLock)> = Vec::new();
    for path in std::iter::once(&report_path).chain(&args.resume) {
        let abs = report::canonical(path);
        if locks.iter().any(|(p, _)| *p == abs) {
            continue;
        }
        match ReportLock::acquire(path) {
            Ok(lock) => locks.push((abs, lock)),
            Err(e) => {
                eprintln!("error: {e}\n  = help: wait for that run to finish (or stop it), then try again");
                return EXIT_INVALID;
            }
        }
    }
    if let Err(message) = check_output_paths(&program, args, &report_path) {
        eprintln!(
            "error: {message}\n  = help: every output needs a file of its own; nothing was sent"
        );
        return EXIT_INVALID;
    }
    // Replacing the report of an interrupted run would forget what it did: resume it instead.
    if !args.dry_run && !args.overwrite && report_path.exists() {
        let target = report::canonical(&report_path);
        let resumed = args.resume.iter().any(|p| report::canonical(p) == target);
        // Read only when it is not resumed (resuming it carries everything over anyway).
        let unfinished = || {
            report::read_header(&report_path).is_ok()
                && report::scan_report(&report_path, |_| {})
                    .map_or(true, |s| s.truncated || !s.in_flight.is_empty())
        };
        if !resumed && unfinished() {
            eprintln!(
                "error: {} is the report of a run that did not finish: replacing it would forget what that run did\n  = help: continue it with --resume {}, write another --report, or pass --overwrite",
                report_path.display(),
                report_path.display()
            );
            return EXIT_INVALID;
        }
    }
    let resume = if args.resume.is_empty() {
        None
    } else {
        match load_resume(&args.resume, &program, args.force) {
            Ok(r) => Some(r),
            Err(d) => return invalid(&[d]),
        }
    };
    let only_keys = match &args.only_class {
        None => None,
        Some(class) => match crate::views::keys_of_class(&args.resume, class) {
            Ok(keys) if keys.is_empty() => {
                eprintln!("error: --only-class {class}: no row of the resumed report(s) is of that class\n  = help: the HTML and Markdown views list the classes (`wts-playbook report REPORT --markdown -`)");
                return EXIT_INVALID;
            }
            Ok(keys) => {
                eprintln!("--only-class: {} row(s) of class {class} run again; every other row is left as it is", keys.len());
                Some(keys)
            }
            Err(e) => {
                eprintln!("error: --only-class: {e}");
                return EXIT_INVALID;
            }
        },
    };

    // Secrets: the token and every `settings.secrets` value.
    let token = if args.sandbox || args.dry_run {
        std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty())
    } else {
        match std::env::var(TOKEN_VAR) {
            Ok(t) if !t.trim().is_empty() => Some(t),
            _ => {
                eprintln!("error: {TOKEN_VAR} is not set\n  = help: export {TOKEN_VAR}=pn_… (or use --dry-run, or --sandbox to rehearse)");
                return EXIT_INVALID;
            }
        }
    };
    let mut secret_values = program.secrets.clone();
    secret_values.extend(token.clone());
    let redactor = Redactor::new(secret_values);

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
    let warnings = program.warnings();
    for w in &warnings {
        if args.log_format == LogFormat::Json {
            tracing::warn!("{w}");
        } else {
            eprintln!("warning: {w}");
        }
    }
    let mut header = ReportHeader::new(
        uuid::Uuid::new_v4().to_string(),
        PlaybookRef {
            name: program.name().to_owned(),
            path: program.loaded.path.display().to_string(),
            sha256: program.loaded.sha256.clone(),
        },
        args.dry_run,
        started_at,
        settings,
    );
    header.warnings.clone_from(&warnings);
    if let Some(r) = &resume {
        header.logical_started_at = r.logical_started_at();
        header.resumed_from = args
            .resume
            .iter()
            .map(|p| p.display().to_string())
            .collect();
    }
    // Verification reads look for effects since the logical run began, less a margin for the
    // server's clock.
    let since = header
        .logical_started_at
        .unwrap_or(started_at)
        .checked_sub(jiff::SignedDuration::from_mins(5))
        .ok();
    let rt = runtime();
    rt.block_on(async move {
        // The in-process sandbox starts first, so the report's header can name its URL.
        let mut sandbox = None;
        if args.sandbox && !args.dry_run {
            match crate::sandbox::Sandbox::start(
                "127.0.0.1:0".parse().expect("loopback address"),
                crate::sandbox::SandboxConfig::default(),
            )
            .await
            {
                Ok(s) => sandbox = Some(s),
                Err(e) => {
                    eprintln!("error: cannot start the sandbox: {e}");
                    return EXIT_ABORTED;
                }
            }
        }
        header.base_url = match &sandbox {
            Some(sb) => Some(sb.url()),
            // A dry run of a sandbox rehearsal starts no sandbox: there is no URL to name.
            None if args.sandbox => None,
            None => Some(
                std::env::var("WTS_BASE_URL").unwrap_or_else(|_| "https://api.wts.chat".into()),
            ),
        };

        // A resumed run's report holds everything carried over before its first request; the
        // messages its succeeded sends put in sessions are counted as accounted for.
        let mut claimed = std::collections::HashMap::new();
        let created = ReportWriter::create_with(&report_path, &header, !args.sandbox, |w| {
            let Some(r) = &resume else { return Ok(()) };
            let verifiable = verifiable_steps(&program);
            r.carry_into(|item| {
                note_claim(&verifiable, item, &mut claimed);
                w.write_carried(item)
            })
            .map(|_| ())
            .map_err(std::io::Error::other)
        });
        let writer = match created {
            Ok(mut w) => {
                // Against the in-process sandbox a power loss loses the sandbox too.
                w.set_sync_markers(!args.sandbox);
                w
            }
            Err(e) => {
                eprintln!(
                    "error: cannot write the report {}: {e}",
                    report_path.display()
                );
                return EXIT_INVALID;
            }
        };
        // A run that stops before its first item still leaves a report, outcome aborted.
        let stop_early = |writer: ReportWriter, message: String, code: u8| {
            let message = redactor.redact(&message).into_owned();
            if args.log_format == LogFormat::Json {
                tracing::error!("{message}");
            } else {
                eprintln!("error: {message}");
            }
            let finished_at = jiff::Timestamp::now();
            let facts = report::RunFacts {
                duration_ms: u64::try_from(finished_at.duration_since(started_at).as_millis()).ok(),
                abort_reason: Some(message),
                ..report::RunFacts::default()
            };
            if let Err(e) = writer.finish_with(finished_at, Outcome::Aborted, facts) {
                eprintln!(
                    "error: cannot finish the report {}: {e}",
                    report_path.display()
                );
            }
            println!("outcome  aborted\nreport   {}", report_path.display());
            write_views(&report_path, &args.views);
            code
        };
        let abort_early =
            |writer: ReportWriter, message: String| stop_early(writer, message, EXIT_ABORTED);
        let mut planned = Writes::default();
        if !args.dry_run {
            // Preflight: plan every item first (the dry run's pipeline, nothing written); a value
            // that cannot be converted stops the run before anything is sent.
            let resumed = resume.clone().map(|r| (r, args.retry_unknown));
            match preflight(&program, args.limit, &redactor, resumed).await {
                Preflight::Ok(w) => planned = w,
                Preflight::Interrupted(reason) => return stop_early(writer, reason, EXIT_ABORTED),
                Preflight::Unplannable(message) => {
                    return stop_early(writer, format!("{message}; nothing was sent"), EXIT_INVALID)
                }
            }
            // Without a terminal on standard input nobody can answer the prompt: a large run
            // needs --yes, before anything is sent.
            let target = match &sandbox {
                Some(sb) => sb.url(),
                None => base_url_setting(),
            };
            if let Confirm::Refuse(message) =
                decide(&planned, args.yes, std::io::stdin().is_terminal(), &target)
            {
                return stop_early(writer, message, EXIT_INVALID);
            }
        }
        let transport = if args.dry_run {
            Transport::Dry
        } else {
            let (base_url, token) = if let Some(sb) = &sandbox {
                (sb.url(), "sandbox-token".to_owned())
            } else {
                (base_url_setting(), token.clone().unwrap_or_default())
            };
            let client = match Client::new(&base_url, &Secret::new(token), program.settings.timeout)
            {
                Ok(c) => c
                    .with_max_body(program.settings.max_response_size)
                    .with_redactor(redactor.clone()),
                // A bad URL is bad input: nothing was sent.
                Err(e) => {
                    return stop_early(
                        writer,
                        format!("WTS_BASE_URL: {e}; nothing was sent"),
                        EXIT_INVALID,
                    )
                }
            };
            // No separate token check: the run's first request is sent alone and doubles as
            // one (a 401 aborts before anything else is sent).
            let limiter = RateLimiter::new(program.settings.rate_limit.clone());
            if let Confirm::Ask(question) = decide(
                &planned,
                args.yes,
                std::io::stdin().is_terminal(),
                &base_url,
            ) {
                if !ask(&question) {
                    return abort_early(writer, "not confirmed; nothing was changed".into());
                }
            }
            Transport::Http { client, limiter }
        };
        let options = RunOptions {
            failed_csv: args.failed_csv.clone(),
            limit: args.limit,
            resume,
            retry_unknown: args.retry_unknown,
            preview: 3,
            since,
            only_keys,
            plan_mode: None,
            claimed,
        };
        let progress = Progress::auto(args.quiet, args.log_format == LogFormat::Json);
        let (result, writer) = execute(
            program.clone(),
            transport,
            Some(writer),
            redactor.clone(),
            progress,
            options,
        )
        .await;
        let footer_outcome = result.outcome;
        let finished_at = jiff::Timestamp::now();
        let mut facts = result.facts.clone();
        facts.duration_ms = u64::try_from(finished_at.duration_since(started_at).as_millis()).ok();
        facts.rate_limited = (!args.dry_run).then_some(result.rate_limited);
        facts.abort_reason = result
            .abort_reason
            .as_ref()
            .map(|r| redactor.redact(r).into_owned());
        let finished =
            writer
                .expect("the run had a writer")
                .finish_with(finished_at, footer_outcome, facts);
        // The report's totals also count the sends abandoned in flight (a second Ctrl-C).
        let totals = match finished {
            Ok(footer) => footer.totals,
            Err(e) => {
                eprintln!(
                    "error: cannot finish the report {}: {e}",
                    report_path.display()
                );
                result.totals
            }
        };
        let mut out = String::new();
        if args.dry_run {
            out.push_str("dry run: nothing was sent\n\n");
            out.push_str(&redactor.redact(&result.preview));
            out.push('\n');
        }
        out.push_str(&report::summary_text(
            &totals,
            &result.per_step,
            result.outcome,
            result.elapsed,
            &report_path,
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
        for w in &warnings {
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
        if let Some(sb) = sandbox {
            out.push_str(&format!("\nsandbox: what changed\n{}\n", sb.summary()));
            sb.shutdown().await;
        }
        print!("{}", redactor.redact(&out));
        write_views(&report_path, &args.views);
        let _ = std::io::stdout().flush();
        if args.dry_run {
            // A dry run whose items could not be planned found invalid input.
            return if totals.failed > 0 {
                EXIT_INVALID
            } else {
                EXIT_OK
            };
        }
        exit_code(result.outcome)
    })
}

pub(crate) fn invalid(diags: &[Diagnostic]) -> u8 {
    eprint!("{}", render_all(diags));
    EXIT_INVALID
}

/// Every file the run writes (the report, `--failed-csv`, the views) must be distinct from the
/// others and from every file it reads (the playbook, its inputs, the resumed reports): one
/// would overwrite the other. Checked before anything is sent.
fn check_output_paths(program: &Program, args: &RunArgs, report: &Path) -> Result<(), String> {
    let mut outputs: Vec<(&str, PathBuf)> = vec![("--report", report.to_path_buf())];
    if let Some(p) = &args.failed_csv {
        outputs.push(("--failed-csv", p.clone()));
    }
    for (flag, p) in [
        ("--html", &args.views.html),
        ("--junit", &args.views.junit),
        ("--markdown", &args.views.markdown),
    ] {
        if let Some(p) = p.as_ref().filter(|p| p.as_os_str() != "-") {
            outputs.push((flag, p.clone()));
        }
    }
    let mut inputs: Vec<(String, PathBuf)> =
        vec![("the playbook".into(), program.loaded.path.clone())];
    for (name, info) in &program.inputs {
        inputs.push((format!("input `{name}`"), info.spec.path.clone()));
    }
    for p in &args.resume {
        inputs.push(("--resume".into(), p.clone()));
    }
    for (i, (flag, out)) in outputs.iter().enumerate() {
        let real = report::canonical(out);
        if let Some((other, _)) = outputs[..i]
            .iter()
            .find(|(_, o)| report::canonical(o) == real)
        {
            return Err(format!("{flag} {} is also {other}", out.display()));
        }
        // A report may be written over a report it resumes (the carried records are read first).
        if let Some((what, _)) = inputs.iter().find(|(what, p)| {
            report::canonical(p) == real && !(*flag == "--report" && what == "--resume")
        }) {
            return Err(format!("{flag} {} would overwrite {what}", out.display()));
        }
    }
    Ok(())
}

/// A carried `succeeded` send of a verifiable action: one identical message in its session is
/// that item's, not one a verification may take for another's.
pub(crate) fn note_claim(
    verifiable: &std::collections::HashMap<String, (catalog::Verify, catalog::Routes)>,
    item: &report::ItemRecord,
    claimed: &mut std::collections::HashMap<String, u32>,
) {
    if item.status != report::ItemStatus::Succeeded {
        return;
    }
    let (Some(&(how, routes)), Some(rec)) = (verifiable.get(&item.step), &item.request) else {
        return;
    };
    if let Some(k) = crate::execute::verify::claim_key_of_record(how, rec, routes) {
        *claimed.entry(k).or_default() += 1;
    }
}

/// The steps whose action a read can verify: step id → (how, route family).
pub(crate) fn verifiable_steps(
    program: &Program,
) -> std::collections::HashMap<String, (catalog::Verify, catalog::Routes)> {
    program
        .all_steps()
        .into_iter()
        .filter_map(|s| match &s.kind {
            validate::StepKind::Action { spec, .. } => catalog::outcomes(spec)
                .verify
                .map(|how| (s.id.clone(), (how, s.settings.routes))),
            validate::StepKind::Pipeline(_) => None,
        })
        .collect()
}

pub(crate) fn load_resume(
    paths: &[PathBuf],
    program: &Program,
    force: bool,
) -> Result<ResumeIndex, Diagnostic> {
    for path in paths {
        // A FIFO or a device would block or never end: only regular files are reports.
        if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            return Err(Diagnostic::file(
                path,
                "cannot resume from this: not a regular file (a report is a JSON file)".to_owned(),
            ));
        }
    }
    let (index, scans) = ResumeIndex::from_paths(paths).map_err(|e| {
        Diagnostic::file(
            Path::new("--resume"),
            format!("cannot resume from this report: {e}"),
        )
    })?;
    for (path, scan) in paths.iter().zip(&scans) {
        let theirs = &scan.header.playbook;
        if theirs.name != program.name() && !force {
            return Err(Diagnostic::file(
                path,
                format!(
                    "this report is of playbook `{}` ({}), not `{}`",
                    theirs.name,
                    theirs.path,
                    program.name()
                ),
            )
            .with_hint("pass --force to resume from it anyway"));
        }
        if theirs.sha256 != program.loaded.sha256 {
            eprintln!(
                "note: {} has changed since {} was written; items are matched by step and key",
                program.loaded.path.display(),
                path.display()
            );
        }
    }
    // Items are matched by step id: a report with steps the playbook no longer has (a step
    // renamed) would send those items again under the new name.
    let known: std::collections::HashSet<&str> =
        program.all_steps().iter().map(|s| s.id.as_str()).collect();
    let strangers: Vec<&str> = index.steps().filter(|s| !known.contains(s)).collect();
    if !strangers.is_empty() && !force {
        return Err(Diagnostic::file(
            &paths[0],
            format!(
                "the report has items of step(s) {} that the playbook does not have (renamed?): their items would be sent again under the new name",
                strangers.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
            ),
        )
        .with_hint("rename the step back, or pass --force to resume anyway"));
    }
    let unknown = index.unknown();
    if !unknown.is_empty() {
        eprintln!(
            "{} item(s) had an unknown outcome in the earlier report(s); each is verified where the catalog can, else listed and not sent again:",
            unknown.len(),
        );
        for (step, key) in unknown.iter().take(20) {
            eprintln!("  {step} {key}");
        }
        if unknown.len() > 20 {
            eprintln!(
                "  … and {} more (all are in the report)",
                unknown.len() - 20
            );
        }
    }
    Ok(index)
}

/// `WTS_BASE_URL`, or the API's address.
pub(crate) fn base_url_setting() -> String {
    std::env::var("WTS_BASE_URL").unwrap_or_else(|_| "https://api.wts.chat".into())
}

/// A run that changes more objects than this asks first (or needs `--yes`).
pub const CONFIRM_ABOVE: u64 = 10;

/// The writes of one step, as the preflight planned them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StepWrites {
    step: String,
    action: &'static str,
    /// Items planned (not skipped by `when`).
    count: u64,
    /// The fan-out list comes from a step that has not run: its length is known only then.
    open_list: bool,
}

/// Every state-changing request a run will send, per step (from the preflight).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Writes {
    steps: Vec<StepWrites>,
}

impl Writes {
    fn planned(program: &Program, pre: &crate::execute::RunResult) -> Writes {
        let mut steps = Vec::new();
        let planned = |id: &str| {
            pre.per_step
                .iter()
                .find(|(s, _)| s == id)
                .map_or(0, |(_, t)| t.planned)
        };
        let open = |id: &str| pre.open_lists.iter().any(|s| s == id);
        let mut add = |s: &validate::StepPlan, open_list: bool| {
            if let validate::StepKind::Action { spec, .. } = &s.kind {
                if s.changes_state() {
                    steps.push(StepWrites {
                        step: s.id.clone(),
                        action: spec.name,
                        count: planned(&s.id),
                        open_list,
                    });
                }
            }
        };
        for stage in &program.stages {
            for s in stage.steps() {
                add(s, open(&s.id));
                if let validate::StepKind::Pipeline(children) = &s.kind {
                    for c in children {
                        add(c, open(&s.id));
                    }
                }
            }
        }
        Writes { steps }
    }

    /// The writes whose number is known (every step but those over an open list).
    fn total(&self) -> u64 {
        self.steps
            .iter()
            .filter(|s| !s.open_list)
            .map(|s| s.count)
            .sum()
    }

    fn open(&self) -> bool {
        self.steps.iter().any(|s| s.open_list && s.count > 0)
    }

    /// "20 objects at URL", then one line per step.
    fn text(&self, target: &str) -> String {
        let mut out = if self.open() && self.total() == 0 {
            format!("This run will change an unknown number of objects at {target}:\n")
        } else if self.open() {
            format!(
                "This run will change an unknown number of objects (at least {}) at {target}:\n",
                self.total()
            )
        } else {
            format!(
                "This run will change {} object(s) at {target}:\n",
                self.total()
            )
        };
        let width = self.steps.iter().map(|s| s.action.len()).max().unwrap_or(0);
        for s in self.steps.iter().filter(|s| s.count > 0) {
            let count = if s.open_list {
                "?".to_owned()
            } else {
                s.count.to_string()
            };
            let note = if s.open_list {
                ", one per item of a list known only while running"
            } else {
                ""
            };
            out.push_str(&format!(
                "  {count:>6}  {:<width$}  (step `{}`{note})\n",
                s.action, s.step
            ));
        }
        out
    }
}

/// What to do before the first change.
#[derive(Debug, PartialEq, Eq)]
enum Confirm {
    Proceed,
    /// Ask this question on the terminal.
    Ask(String),
    /// Nobody can be asked: stop, exit 2, with this message.
    Refuse(String),
}

/// More than [`CONFIRM_ABOVE`] changes (or an unknown number) need a yes: from `--yes`, or from
/// a person at the terminal on standard input. Where stdout or stderr go does not matter.
fn decide(writes: &Writes, yes: bool, stdin_is_terminal: bool, target: &str) -> Confirm {
    if yes || (writes.total() <= CONFIRM_ABOVE && !writes.open()) {
        return Confirm::Proceed;
    }
    let text = writes.text(target);
    if stdin_is_terminal {
        Confirm::Ask(format!("{text}Proceed? [y/N] "))
    } else {
        Confirm::Refuse(format!(
            "{text}standard input is not a terminal, so nobody can confirm: pass --yes to run it; nothing was sent"
        ))
    }
}

/// Asks on the terminal (`/dev/tty` where there is one, else stderr); true on `y` or `yes`.
fn ask(question: &str) -> bool {
    if let Ok(mut tty) = std::fs::OpenOptions::new().write(true).open("/dev/tty") {
        let _ = tty.write_all(question.as_bytes());
        let _ = tty.flush();
    } else {
        eprint!("{question}");
        let _ = std::io::stderr().flush();
    }
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok()
        && matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(counts: &[(&'static str, u64, bool)]) -> Writes {
        Writes {
            steps: counts
                .iter()
                .enumerate()
                .map(|(i, (action, count, open_list))| StepWrites {
                    step: format!("s{i}"),
                    action,
                    count: *count,
                    open_list: *open_list,
                })
                .collect(),
        }
    }

    #[test]
    fn the_prompt_counts_the_planned_writes_per_action_and_names_the_target() {
        let w = writes(&[
            ("session.complete", 4000, false),
            ("session.send_text", 3990, false),
        ]);
        let Confirm::Ask(q) = decide(&w, false, true, "https://api.wts.chat") else {
            panic!("a terminal is asked");
        };
        assert_eq!(
            q,
            "This run will change 7990 object(s) at https://api.wts.chat:\n    \
             4000  session.complete   (step `s0`)\n    3990  session.send_text  (step `s1`)\n\
             Proceed? [y/N] "
        );
    }

    #[test]
    fn without_a_terminal_a_large_run_needs_yes() {
        let w = writes(&[("session.complete", 11, false)]);
        let Confirm::Refuse(m) = decide(&w, false, false, "http://127.0.0.1:9") else {
            panic!("refused");
        };
        assert!(m.contains("pass --yes"), "{m}");
        assert!(m.contains("11 object(s) at http://127.0.0.1:9"), "{m}");
        assert_eq!(decide(&w, true, false, "x"), Confirm::Proceed);
        // Ten changes or fewer go ahead unasked.
        let w = writes(&[
            ("session.complete", 6, false),
            ("session.send_text", 4, false),
        ]);
        assert_eq!(decide(&w, false, false, "x"), Confirm::Proceed);
        // A list known only while running may be any length: ask.
        let w = writes(&[("session.transfer", 1, true)]);
        let Confirm::Ask(q) = decide(&w, false, true, "x") else {
            panic!("asked");
        };
        assert!(
            q.starts_with("This run will change an unknown number of objects at x:\n"),
            "{q}"
        );
        let w = writes(&[
            ("session.transfer", 1, true),
            ("session.complete", 12, false),
        ]);
        let Confirm::Ask(q) = decide(&w, false, true, "x") else {
            panic!("asked");
        };
        assert!(q.contains("unknown number of objects (at least 12)"), "{q}");
        assert!(q.contains("?  session.transfer"), "{q}");
    }
}
