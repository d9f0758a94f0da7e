//! `wts-playbook run`: load and check, lock the reports, carry over what `--resume` continues,
//! plan every item (the preflight), confirm, send, and say what happened.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::cli::{LogFormat, RunArgs};
use crate::execute::{dry_run, execute, Client, RateLimiter, RunOptions, Transport};
use crate::playbook::parse_scalar;
use crate::progress::Progress;
use crate::report::{
    self, default_report_path, Outcome, PlaybookRef, ReportHeader, ReportLock, ReportWriter,
};
use crate::secret::{Redactor, Secret};
use crate::validate::{Overrides, TOKEN_VAR};

use super::{
    ask, base_url_setting, check_output_paths, decide, exit_code, init_logging, invalid,
    load_and_validate, load_resume, note_claim, parse_pairs, preflight, runtime, verifiable_steps,
    write_views, Confirm, Preflight, Writes, EXIT_ABORTED, EXIT_INVALID, EXIT_OK,
};

pub(super) fn run_cmd(args: &RunArgs) -> u8 {
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
    // A dry run sends nothing and waits for nothing: it runs on this thread, with no runtime.
    let rt = (!args.dry_run).then(runtime);
    {
        // The in-process sandbox starts first, so the report's header can name its URL.
        let mut sandbox = None;
        if args.sandbox && !args.dry_run {
            let rt = rt.as_ref().expect("a real run has a runtime");
            match rt.block_on(crate::sandbox::Sandbox::start(
                "127.0.0.1:0".parse().expect("loopback address"),
                crate::sandbox::SandboxConfig::default(),
            )) {
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
            // Ctrl-C during the preflight stops it (and the run) before anything is sent.
            let rt = rt.as_ref().expect("a real run has a runtime");
            let interrupt = Arc::new(AtomicBool::new(false));
            let seen = interrupt.clone();
            let watch = rt.spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    seen.store(true, Ordering::Relaxed);
                }
            });
            let found = preflight(&program, args.limit, &redactor, resumed, Some(interrupt));
            watch.abort();
            match found {
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
            Transport::Dry // sent by `dry_run`, not by `execute`
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
            claimed,
            observers: Vec::new(),
            plan_mode: None,
            interrupt: None,
        };
        let progress = Progress::auto(args.quiet, args.log_format == LogFormat::Json);
        let (result, writer) = match &rt {
            Some(rt) => rt.block_on(execute(
                program.clone(),
                transport,
                Some(writer),
                redactor.clone(),
                progress,
                options,
            )),
            None => dry_run(
                program.clone(),
                Some(writer),
                redactor.clone(),
                progress,
                options,
            ),
        };
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
            if let Some(rt) = &rt {
                rt.block_on(sb.shutdown());
            }
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
    }
}
