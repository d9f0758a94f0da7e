//! What a run reads and writes beside its playbook: the output paths it must not mix up, and
//! the reports `--resume` continues (checked against the playbook, and what their sends claim).

use std::path::{Path, PathBuf};

use crate::cli::RunArgs;
use crate::diagnostic::Diagnostic;
use crate::program::{self, Program};
use crate::report::{self, ResumeIndex};

use super::catalog;

/// Every file the run writes (the report, `--failed-csv`, the views) must be distinct from the
/// others and from every file it reads (the playbook, its inputs, the resumed reports): one
/// would overwrite the other. Checked before anything is sent.
pub(super) fn check_output_paths(
    program: &Program,
    args: &RunArgs,
    report: &Path,
) -> Result<(), String> {
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
pub(super) fn note_claim(
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
pub(super) fn verifiable_steps(
    program: &Program,
) -> std::collections::HashMap<String, (catalog::Verify, catalog::Routes)> {
    program
        .all_steps()
        .into_iter()
        .filter_map(|s| match &s.kind {
            program::StepKind::Action { spec, .. } => catalog::outcomes(spec)
                .verify
                .map(|how| (s.id.clone(), (how, s.settings.routes))),
            program::StepKind::Pipeline(_) => None,
        })
        .collect()
}

pub(super) fn load_resume(
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
