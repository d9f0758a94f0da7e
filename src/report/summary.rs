//! The final human summary printed on stdout at the end of a run.
//!
//! In: the run's totals, the totals of each step in playbook order, the outcome, the elapsed
//! time and the report path. Out: a plain, aligned text table (no colours, no trailing
//! spaces) ending with a newline. A dry run shows `planned` and `skipped`; a real run shows
//! `succeeded`, `failed`, `skipped` and `unknown` (and `planned` only if some item has it).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::model::{ItemStatus, Outcome, Totals};

/// The end-of-run summary: a table with one line per step and a total line, then the
/// outcome with the elapsed time, a warning when items are `unknown`, and the report path.
pub fn summary_text(
    totals: &Totals,
    per_step: &[(String, Totals)],
    outcome: Outcome,
    elapsed: Duration,
    report_path: &Path,
) -> String {
    let columns = columns(totals, per_step);
    let mut rows: Vec<(&str, &Totals)> = per_step.iter().map(|(s, t)| (s.as_str(), t)).collect();
    rows.push(("total", totals));

    let name_width = rows
        .iter()
        .map(|(s, _)| s.chars().count())
        .chain([4])
        .max()
        .unwrap_or(4);
    let widths: Vec<usize> = columns
        .iter()
        .map(|&c| {
            rows.iter()
                .map(|(_, t)| t.get(c).to_string().len())
                .chain([c.as_str().len()])
                .max()
                .unwrap_or(0)
        })
        .collect();

    let mut out = String::new();
    let mut line = format!("{:<name_width$}", "step");
    for (&c, &w) in columns.iter().zip(&widths) {
        let _ = write!(line, "  {:>w$}", c.as_str());
    }
    out.push_str(line.trim_end());
    out.push('\n');
    for (name, t) in &rows {
        let mut line = format!("{name:<name_width$}");
        for (&c, &w) in columns.iter().zip(&widths) {
            let _ = write!(line, "  {:>w$}", t.get(c));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "outcome  {} in {}",
        outcome.as_str(),
        format_elapsed(elapsed)
    );
    if totals.unknown > 0 {
        let _ = writeln!(
            out,
            "unknown  {} item{} may or may not have happened; --resume verifies them where a read can tell, else skips them unless --retry-unknown",
            totals.unknown,
            if totals.unknown == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(out, "report   {}", report_path.display());
    out
}

/// Which status columns the table shows.
fn columns(totals: &Totals, per_step: &[(String, Totals)]) -> Vec<ItemStatus> {
    let any = |s: ItemStatus| totals.get(s) > 0 || per_step.iter().any(|(_, t)| t.get(s) > 0);
    let dry_run = any(ItemStatus::Planned)
        && !any(ItemStatus::Succeeded)
        && !any(ItemStatus::Failed)
        && !any(ItemStatus::Unknown);
    if dry_run {
        return vec![ItemStatus::Planned, ItemStatus::Skipped];
    }
    let mut cols = Vec::with_capacity(5);
    if any(ItemStatus::Planned) {
        cols.push(ItemStatus::Planned);
    }
    cols.push(ItemStatus::Succeeded);
    if any(ItemStatus::Unchanged) {
        cols.push(ItemStatus::Unchanged);
    }
    if any(ItemStatus::Drifted) {
        cols.push(ItemStatus::Drifted);
    }
    cols.extend([ItemStatus::Failed, ItemStatus::Skipped, ItemStatus::Unknown]);
    cols
}

/// `850ms`, `4.2s`, `2m 05s`, `1h 02m 03s`.
fn format_elapsed(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        format!("{}ms", d.as_millis())
    } else if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!(
            "{}h {:02}m {:02}s",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(planned: u64, succeeded: u64, failed: u64, skipped: u64, unknown: u64) -> Totals {
        Totals {
            planned,
            succeeded,
            failed,
            skipped,
            unknown,
            unchanged: 0,
            drifted: 0,
        }
    }

    #[test]
    fn real_run_summary() {
        let steps = vec![
            ("close".to_owned(), t(0, 9_870, 12, 118, 0)),
            ("tell_customer".to_owned(), t(0, 9_868, 0, 0, 2)),
        ];
        let text = summary_text(
            &t(0, 19_738, 12, 118, 2),
            &steps,
            Outcome::Failed,
            Duration::from_secs(3 * 3600 + 2 * 60 + 5),
            Path::new("reports/close-stale-sessions-20261125T100000Z.json"),
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn dry_run_summary() {
        let steps = vec![("close".to_owned(), t(998, 0, 0, 2, 0))];
        let text = summary_text(
            &t(998, 0, 0, 2, 0),
            &steps,
            Outcome::Completed,
            Duration::from_millis(412),
            Path::new("reports/close-20261125T100000Z.json"),
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn elapsed_formats() {
        assert_eq!(format_elapsed(Duration::from_millis(850)), "850ms");
        assert_eq!(format_elapsed(Duration::from_millis(4_200)), "4.2s");
        assert_eq!(format_elapsed(Duration::from_secs(125)), "2m 05s");
        assert_eq!(format_elapsed(Duration::from_secs(3723)), "1h 02m 03s");
    }
}
