//! `plan PLAYBOOK --accounts FILE --out DIR` and `apply DIR --accounts FILE` (README "Many
//! accounts", "Plan and apply"): one single-account plan per account, each applied with its
//! own account's token and base URL, side by side, into one joined report.

use std::path::{Path, PathBuf};

use super::apply::{ApplyAccount, Applying};
use super::fleet::{fleet_of, programs_of};
use super::plan::{overrides_of, plan_one, PlanAccount};
use super::{write_views, EXIT_ABORTED, EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::cli::{ApplyArgs, PlanArgs};
use crate::report::{self, PlaybookRef, ReportHeader, ReportLock};

/// The fleet's exit code from its accounts' codes: the code they all share (0 all ok, 3 all
/// aborted), else 1 (some failed or stopped while others ran).
fn fleet_code(codes: &[u8]) -> u8 {
    match codes.split_first() {
        Some((first, rest)) if rest.iter().all(|c| c == first) => *first,
        Some(_) => EXIT_FAILED,
        None => EXIT_OK,
    }
}

/// An account's plan in the plans directory.
pub(super) fn plan_path(dir: &Path, account: &str) -> PathBuf {
    dir.join(format!("{account}.plan.jsonl"))
}

/// `plan PLAYBOOK --accounts FILE [--shard I/N] [--out DIR]`: every account's playbook checked
/// first (nothing sent on a problem), then one plan per account, one after the other, each
/// made as a single plan is with that account's token, base URL, vars and inputs.
pub(super) fn plan(args: &PlanArgs) -> u8 {
    let Some(accounts_path) = &args.accounts else {
        return EXIT_INVALID;
    };
    let (fleet, tokens) = match fleet_of(accounts_path, args.shard.as_deref(), false) {
        Ok(Some((fleet, tokens, _))) => (fleet, tokens),
        Ok(None) => return EXIT_OK,
        Err(code) => return code,
    };
    let overrides = match overrides_of(args) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let programs = match programs_of(&args.playbook, &overrides, &fleet) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let dir = args.out.clone().unwrap_or_else(|| {
        let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
        PathBuf::from("plans").join(format!("{}-{stamp}", programs[0].name()))
    });
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!(
            "error: cannot make the plans directory {}: {e}",
            dir.display()
        );
        return EXIT_INVALID;
    }
    let (mut codes, mut writes, mut reads, mut written) = (Vec::new(), 0, 0, 0);
    for account in &fleet.accounts {
        let out = plan_path(&dir, &account.name);
        // An older plan of this account must not outlive a failed planning.
        let _ = std::fs::remove_file(&out);
        eprintln!("account `{}`: planning", account.name);
        let one = PlanAccount {
            account,
            fleet: &fleet,
            secrets: &tokens,
            out,
        };
        let (code, counts) = plan_one(args, Some(&one));
        if let Some((w, r)) = counts {
            (writes, reads, written) = (writes + w, reads + r, written + 1);
        } else {
            println!("{}: no plan written (exit {code})", account.name);
        }
        codes.push(code);
    }
    println!(
        "total: {writes} write(s) planned, {reads} read request(s); {written} of {} account(s) planned into {}/",
        fleet.accounts.len(),
        dir.display()
    );
    if written > 0 {
        println!(
            "apply them with: wts-playbook apply {} --accounts {}",
            dir.display(),
            accounts_path.display()
        );
    }
    fleet_code(&codes)
}

/// `apply DIR --accounts FILE [--shard I/N]`: every account's plan verified against that
/// account (any refusal: exit 4, nothing sent to any account), then the accounts applied side
/// by side, each into its part, joined into the report.
pub(super) fn apply(args: &ApplyArgs) -> u8 {
    let Some(accounts_path) = &args.accounts else {
        return EXIT_INVALID;
    };
    let (fleet, tokens, shard) = match fleet_of(accounts_path, args.shard.as_deref(), false) {
        Ok(Some(f)) => f,
        Ok(None) => return EXIT_OK,
        Err(code) => return code,
    };
    let started_at = jiff::Timestamp::now();
    let report_path = args.report.clone().unwrap_or_else(|| {
        let name = args
            .plan
            .file_name()
            .map_or_else(|| "apply".to_owned(), |n| n.to_string_lossy().into_owned());
        report::default_report_path(&name, started_at)
    });
    let _lock = match ReportLock::acquire(&report_path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "error: {e}\n  = help: wait for that apply to finish (or stop it), then try again"
            );
            return EXIT_INVALID;
        }
    };
    if !args.overwrite && report_path.exists() {
        eprintln!(
            "error: {} exists: write another --report, or pass --overwrite",
            report_path.display()
        );
        return EXIT_INVALID;
    }
    let members: Vec<ApplyAccount<'_>> = fleet
        .accounts
        .iter()
        .map(|account| ApplyAccount {
            account,
            fleet: &fleet,
            secrets: &tokens,
            plan: plan_path(&args.plan, &account.name),
            part: report::part_path(&report_path, &account.name),
        })
        .collect();
    // Every plan verified (and every part locked) before the first request to any account.
    let mut applyings = Vec::new();
    for m in &members {
        match Applying::new(args, Some(m)) {
            Ok(a) => applyings.push(a),
            Err(code) => {
                eprintln!(
                    "error: account `{}`: its plan {} cannot be applied; nothing was sent to any account",
                    m.account.name,
                    m.plan.display()
                );
                return code;
            }
        }
    }
    let codes: Vec<u8> = std::thread::scope(|s| {
        let handles: Vec<_> = applyings
            .into_iter()
            .map(|a| s.spawn(move || super::runtime().block_on(a.go())))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(EXIT_ABORTED))
            .collect()
    });
    let shard = shard.map(|s| s.to_string());
    match join(&report_path, &members, &codes, started_at, shard) {
        Ok(()) => {
            write_views(&report_path, &args.views);
            fleet_code(&codes)
        }
        Err(code) => code,
    }
}

/// The accounts' parts joined into the report (an account stopped before its first write has
/// none), and a line per account plus the total.
fn join(
    report_path: &Path,
    members: &[ApplyAccount<'_>],
    codes: &[u8],
    started_at: jiff::Timestamp,
    shard: Option<String>,
) -> Result<(), u8> {
    let parts: Vec<PathBuf> = members
        .iter()
        .map(|m| m.part.clone())
        .filter(|p| p.is_file())
        .collect();
    let mut out = String::new();
    for (m, code) in members.iter().zip(codes) {
        if !m.part.is_file() {
            out.push_str(&format!(
                "{}: no write sent (exit {code})\n",
                m.account.name
            ));
        }
    }
    if parts.is_empty() {
        print!("{out}");
        eprintln!("error: no account's apply wrote a report");
        return Err(fleet_code(codes).max(EXIT_ABORTED));
    }
    let mut header = ReportHeader::new(
        uuid::Uuid::new_v4().to_string(),
        PlaybookRef {
            name: String::new(),
            path: String::new(),
            sha256: String::new(),
        },
        false,
        started_at,
        serde_json::Value::Null,
    );
    if let Ok(h) = report::read_header(&parts[0]) {
        header.playbook = h.playbook;
        header.settings = h.settings;
        header.warnings = h.warnings;
    }
    header.shard = shard;
    let footer = match report::merge(&parts, report_path, Some(header)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "error: cannot join the accounts' reports into {}: {e}",
                report_path.display()
            );
            return Err(EXIT_ABORTED);
        }
    };
    for (name, a) in &footer.per_account {
        let t = &a.totals;
        out.push_str(&format!(
            "{name}: {} ({} applied, {} unchanged, {} drifted, {} failed, {} unknown)\n",
            a.outcome.as_str(),
            t.succeeded,
            t.unchanged,
            t.drifted,
            t.failed,
            t.unknown
        ));
    }
    let t = &footer.totals;
    out.push_str(&format!(
        "total: {} ({} applied, {} unchanged, {} drifted, {} failed, {} unknown)\nreport   {}\nparts    {}/\n",
        footer.outcome.as_str(),
        t.succeeded,
        t.unchanged,
        t.drifted,
        t.failed,
        t.unknown,
        report_path.display(),
        report::parts_dir(report_path).display()
    ));
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_code_is_the_shared_code_else_one() {
        assert_eq!(fleet_code(&[0, 0]), EXIT_OK);
        assert_eq!(fleet_code(&[3, 3, 3]), EXIT_ABORTED);
        assert_eq!(fleet_code(&[0, 3]), EXIT_FAILED);
        assert_eq!(fleet_code(&[0, 1]), EXIT_FAILED);
        assert_eq!(fleet_code(&[]), EXIT_OK);
    }

    #[test]
    fn plans_are_named_by_account() {
        assert_eq!(
            plan_path(Path::new("plans/x"), "clinic-a"),
            PathBuf::from("plans/x/clinic-a.plan.jsonl")
        );
    }
}
