//! `wts-playbook apply PLAN` (README "Plan and apply"): the plan verified (refusals exit 4,
//! nothing sent), the plan's reads run again to find what drifted, then exactly the planned
//! writes sent, on the run's own machinery (limiter, retries, report, `--resume`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::plan::{pairs, run_options, token, transport_parts};
use super::{EXIT_ABORTED, EXIT_INVALID, EXIT_OK, EXIT_REFUSED};
use crate::catalog;
use crate::cli::{ApplyArgs, LogFormat};
use crate::execute::{execute, RunOptions, Transport};
use crate::planfile;
use crate::planfile::capture::{self, ApplyIndex, Capture, PlanMode};
use crate::planfile::cmd::{disk_changes, verify, Target, SANDBOX_BASE_URL};
use crate::progress::Progress;
use crate::report::{
    self, ItemRecord, ItemStatus, Outcome, PlanRef, PlaybookRef, ReportHeader, ReportLock,
    ReportWriter, RequestRecord,
};
use crate::secret::Redactor;
use crate::validate::{self, Overrides, StepKind};

/// The refusal message and exit code 4.
fn refuse(e: &planfile::Refusal) -> u8 {
    eprintln!("error: {e}\n  = note: nothing was sent");
    EXIT_REFUSED
}

/// `wts-playbook apply PLAN`.
#[expect(clippy::too_many_lines, reason = "one command, read top to bottom")]
pub(super) fn apply_cmd(args: &ApplyArgs) -> u8 {
    super::init_logging_with(args.quiet, args.verbose, args.log_format);
    let max_drift = match capture::parse_max_drift(&args.max_drift) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let extra_vars = match pairs(&args.vars, "--var") {
        Ok(p) => p,
        Err(code) => return code,
    };
    // The plan first: a refused plan sends nothing, not even the token check.
    let plan = match planfile::read(&args.plan) {
        Ok(p) => p,
        Err(e) => return refuse(&e),
    };
    let sandbox_plan = plan.header.options.sandbox;
    let token = match token(sandbox_plan) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let target = Target {
        base_url: if sandbox_plan {
            SANDBOX_BASE_URL.to_owned()
        } else {
            super::base_url_setting()
        },
        token: token.clone(),
    };
    let plan = match verify(&args.plan, &target) {
        Ok(p) => p,
        Err(e) => return refuse(&e),
    };
    for w in disk_changes(&plan) {
        eprintln!("warning: {w}");
    }
    // The playbook the plan holds, with the plan's command-line choices.
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
    };
    for (k, v) in &extra_vars {
        overrides.vars.retain(|(n, _)| n != k);
        overrides
            .vars
            .push((k.clone(), crate::playbook::parse_scalar(v)));
    }
    let loaded =
        match crate::playbook::load_str(Path::new(&h.playbook.path), h.playbook.source.clone()) {
            Ok(l) => l,
            Err(diags) => return super::invalid(&diags),
        };
    let program = match validate::validate(loaded, &overrides) {
        Ok(p) => Arc::new(p),
        Err(diags) => return super::invalid(&diags),
    };
    // A secret written in the playbook is a reference in the plan's copy: it must be given.
    let missing: Vec<&String> = program
        .loaded
        .playbook
        .settings
        .secrets
        .iter()
        .zip(&program.secrets)
        .filter(|(n, _)| {
            h.options.secret_vars.contains(n) && !extra_vars.iter().any(|(k, _)| k == *n)
        })
        .map(|(n, _)| n)
        .collect();
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|n| format!("`{n}`")).collect();
        eprintln!(
            "error: secret var(s) {} are not in the plan (secrets never are): give each with --var NAME=VALUE\n  = note: nothing was sent",
            names.join(", ")
        );
        return EXIT_INVALID;
    }
    let started_at = jiff::Timestamp::now();
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| report::default_report_path(program.name(), started_at));
    let mut locks: Vec<(PathBuf, ReportLock)> = Vec::new();
    for path in std::iter::once(&report_path).chain(&args.resume) {
        let abs = report::canonical(path);
        if locks.iter().any(|(p, _)| *p == abs) {
            continue;
        }
        match ReportLock::acquire(path) {
            Ok(lock) => locks.push((abs, lock)),
            Err(e) => {
                eprintln!("error: {e}\n  = help: wait for that apply to finish (or stop it), then try again");
                return EXIT_INVALID;
            }
        }
    }
    let resumed_into_itself = args
        .resume
        .iter()
        .any(|p| report::canonical(p) == report::canonical(&report_path));
    if !args.overwrite && !resumed_into_itself && report_path.exists() {
        eprintln!(
            "error: {} exists: resume it with --resume {}, write another --report, or pass --overwrite",
            report_path.display(),
            report_path.display()
        );
        return EXIT_INVALID;
    }
    for r in &args.resume {
        match report::read_header(r) {
            Ok(rh) if rh.plan.as_ref().is_some_and(|p| p.plan_id == h.plan_id) => {}
            Ok(_) => {
                eprintln!(
                    "error: {} is not a report of an apply of plan {}\n  = note: nothing was sent",
                    r.display(),
                    h.plan_id
                );
                return EXIT_INVALID;
            }
            Err(e) => {
                eprintln!("error: cannot resume from {}: {e}", r.display());
                return EXIT_INVALID;
            }
        }
    }
    let resume = if args.resume.is_empty() {
        None
    } else {
        match super::load_resume(&args.resume, &program, false) {
            Ok(r) => Some(r),
            Err(d) => return super::invalid(&[d]),
        }
    };
    let mut secrets = program.secrets.clone();
    secrets.push(token.clone());
    let redactor = Redactor::new(secrets);
    let plan_ref = PlanRef {
        plan_id: h.plan_id.clone(),
        hash: plan.hash().to_owned(),
        path: args.plan.display().to_string(),
        planned: plan.trailer.writes,
    };
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
    header.plan = Some(plan_ref);
    if let Some(r) = &resume {
        header.logical_started_at = r.logical_started_at();
        header.resumed_from = args
            .resume
            .iter()
            .map(|p| p.display().to_string())
            .collect();
    }
    let since = header
        .logical_started_at
        .unwrap_or(started_at)
        .checked_sub(jiff::SignedDuration::from_mins(5))
        .ok();
    let planned = plan.trailer.writes;
    let mut index = ApplyIndex::new(plan);
    index.check_reads = !args.no_refresh;
    let rt = super::runtime();
    rt.block_on(async move {
        let mut sandbox = None;
        if sandbox_plan {
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
        let base_url = sandbox.as_ref().map_or_else(super::base_url_setting, crate::sandbox::Sandbox::url);
        header.base_url = Some(base_url.clone());
        let (client, limiter) = match transport_parts(&program, &base_url, &token, &redactor) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_INVALID;
            }
        };
        let done_before = |w: &planfile::PlannedWrite| {
            resume
                .as_ref()
                .is_some_and(|r| r.should_skip(&w.step, &w.key, args.retry_unknown))
        };
        // The refresh: the plan's reads again (same filters, pages), writes captured, not sent.
        if !args.no_refresh {
            let cap = Arc::new(Capture::default());
            let (fresh, _) = execute(
                program.clone(),
                Transport::Http {
                    client: client.clone(),
                    limiter: limiter.clone(),
                },
                None,
                redactor.clone(),
                Progress::new(crate::progress::Mode::Quiet),
                run_options(h_limit(&header), PlanMode::Plan(cap.clone())),
            )
            .await;
            if let Some(reason) = &fresh.abort_reason {
                eprintln!("error: the refresh stopped: {}; no write was sent", redactor.redact(reason));
                return EXIT_ABORTED;
            }
            if fresh.totals.failed + fresh.totals.unknown > 0 {
                for e in &fresh.first_errors {
                    eprintln!("  {}", redactor.redact(e));
                }
                eprintln!("error: the refresh's reads failed; no write was sent");
                return EXIT_ABORTED;
            }
            let reads = cap.reads_sent();
            let cap = Arc::try_unwrap(cap).unwrap_or_else(|_| panic!("the refresh has ended"));
            let (captured, cache) = cap.into_parts();
            let drifted = index.refresh(&captured, cache, done_before);
            let open = planned - index.plan.writes.iter().filter(|w| done_before(w)).count() as u64;
            eprintln!("refresh: {reads} read request(s); {drifted} of {open} planned write(s) drifted");
            if max_drift.exceeded(drifted, open) {
                let mut shown: Vec<(&u64, &String)> = index.drifted().iter().collect();
                shown.sort();
                for (seq, reason) in shown.iter().take(10) {
                    eprintln!("  #{seq}: {}", redactor.redact(reason));
                }
                eprintln!(
                    "error: {drifted} of {open} planned writes drifted, more than --max-drift {}: stopped before the first write\n  = help: make a new plan (or pass a larger --max-drift)",
                    args.max_drift
                );
                if let Some(sb) = sandbox {
                    sb.shutdown().await;
                }
                return EXIT_REFUSED;
            }
        }
        let index = Arc::new(index);
        let mut claimed = std::collections::HashMap::new();
        let created = ReportWriter::create_with(&report_path, &header, !sandbox_plan, |w| {
            let Some(r) = &resume else { return Ok(()) };
            let verifiable = super::verifiable_steps(&program);
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
                eprintln!("error: cannot write the report {}: {e}", report_path.display());
                return EXIT_INVALID;
            }
        };
        writer.set_sync_markers(!sandbox_plan);
        let options = RunOptions {
            failed_csv: args.failed_csv.clone(),
            resume: resume.clone(),
            retry_unknown: args.retry_unknown,
            since,
            claimed,
            ..run_options(h_limit(&header), PlanMode::Apply(index.clone()))
        };
        let progress = Progress::auto(args.quiet, args.log_format == LogFormat::Json);
        let (result, writer) = execute(
            program.clone(),
            Transport::Http { client, limiter },
            Some(writer),
            redactor.clone(),
            progress,
            options,
        )
        .await;
        let mut writer = writer.expect("the apply had a writer");
        // Planned writes the playbook no longer reached: drifted, recorded with their number.
        let mut per_step = result.per_step.clone();
        for (w, reason) in index.unreached() {
            if done_before(w) || result.abort_reason.is_some() {
                continue;
            }
            let mut rec = ItemRecord::new(w.step.clone(), 0, w.key.clone(), ItemStatus::Drifted);
            rec.seq = Some(w.seq);
            rec.reason = Some(reason);
            rec.request = Some(RequestRecord::from(&w.request()));
            if let Err(e) = writer.write_item(&rec) {
                eprintln!("error: cannot write the report {}: {e}", report_path.display());
            }
            if let Some((_, t)) = per_step.iter_mut().find(|(s, _)| *s == w.step) {
                t.add(ItemStatus::Drifted);
            }
        }
        let mut plan_totals = report::Totals::default();
        for s in program.all_steps() {
            if matches!(&s.kind, StepKind::Action { spec, .. } if !catalog::is_read(spec)) {
                if let Some((_, t)) = per_step.iter().find(|(id, _)| *id == s.id) {
                    plan_totals.merge(t);
                }
            }
        }
        // Writes the playbook reached that are not in the plan were not sent (skipped).
        plan_totals.skipped = 0;
        let finished_at = jiff::Timestamp::now();
        let mut facts = result.facts.clone();
        facts.plan_totals = Some(plan_totals);
        facts.duration_ms = u64::try_from(finished_at.duration_since(started_at).as_millis()).ok();
        facts.rate_limited = Some(result.rate_limited);
        facts.abort_reason = result.abort_reason.as_ref().map(|r| redactor.redact(r).into_owned());
        let totals = match writer.finish_with(finished_at, result.outcome, facts) {
            Ok(footer) => footer.totals,
            Err(e) => {
                eprintln!("error: cannot finish the report {}: {e}", report_path.display());
                result.totals
            }
        };
        let mut out = report::summary_text(&totals, &per_step, result.outcome, result.elapsed, &report_path);
        let t = plan_totals;
        let settled = t.succeeded + t.unchanged + t.drifted + t.failed + t.unknown;
        out.push_str(&format!(
            "plan     {} ({} planned: {} applied, {} unchanged, {} drifted, {} failed, {} unknown{})\n",
            index.plan.header.plan_id,
            planned,
            t.succeeded,
            t.unchanged,
            t.drifted,
            t.failed,
            t.unknown,
            if settled == planned { String::new() } else { format!("; {} not reached", planned.saturating_sub(settled)) }
        ));
        if let Some(reason) = &result.abort_reason {
            out.push_str(&format!("aborted: {}\n", redactor.redact(reason)));
        }
        if let Some(sb) = sandbox {
            out.push_str(&format!("\nsandbox: what changed\n{}\n", sb.summary()));
            sb.shutdown().await;
        }
        print!("{}", redactor.redact(&out));
        super::write_views(&report_path, &args.views);
        drop(locks);
        if result.outcome == Outcome::Completed {
            EXIT_OK
        } else {
            super::exit_code(result.outcome)
        }
    })
}

/// The plan's `--limit` (recorded in its settings).
fn h_limit(header: &ReportHeader) -> Option<u64> {
    header
        .settings
        .get("limit")
        .and_then(serde_json::Value::as_u64)
}
