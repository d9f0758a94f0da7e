//! The report of a run over several accounts (README, "Many accounts"): each account's part is
//! an ordinary report written as the run goes (`REPORT.accounts/NAME.json`, with `account` in
//! its header); at the end they are joined into `REPORT`, every item naming its `account`, the
//! footer's `per_account` holding each part's outcome and totals. `wts-playbook report --merge`
//! joins the reports of several shards (or parts) the same way; [`split_account`] takes one
//! account's part back out of a joined report, for `--resume`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::model::{
    AccountFacts, AccountRef, ItemRecord, Outcome, ReportFooter, ReportHeader, RunFacts, Totals,
};
use super::reader::{read_header, scan_report};
use super::writer::ReportWriter;

/// The part report of `account` in a run over several accounts writing `report`.
pub(crate) fn part_path(report: &Path, account: &str) -> PathBuf {
    parts_dir(report).join(format!("{account}.json"))
}

/// The directory of a run's part reports: `REPORT.accounts/`.
pub(crate) fn parts_dir(report: &Path) -> PathBuf {
    let mut s = report.as_os_str().to_owned();
    s.push(".accounts");
    PathBuf::from(s)
}

/// The outcome of a run over several accounts: `completed` when every account completed,
/// `aborted` when every one was aborted, else `failed` (some account failed or stopped while
/// others ran to the end).
pub(crate) fn fleet_outcome(outcomes: impl IntoIterator<Item = Outcome>) -> Outcome {
    let (mut all_done, mut all_aborted, mut any) = (true, true, false);
    for o in outcomes {
        any = true;
        all_done &= o == Outcome::Completed;
        all_aborted &= o == Outcome::Aborted;
    }
    if !any || all_done {
        Outcome::Completed
    } else if all_aborted {
        Outcome::Aborted
    } else {
        Outcome::Failed
    }
}

/// What one input of a merge holds for each of its accounts.
struct Piece {
    path: PathBuf,
    header: ReportHeader,
    /// Its accounts, in order, with their base URLs.
    accounts: Vec<AccountRef>,
}

/// Each input's header and accounts; the inputs must be of one playbook, no account in two.
fn read_pieces(inputs: &[PathBuf]) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut owner: HashMap<String, PathBuf> = HashMap::new();
    for path in inputs {
        let h = read_header(path).map_err(|e| e.to_string())?;
        let accounts = match (&h.account, h.accounts.is_empty()) {
            (Some(name), _) => vec![AccountRef {
                name: name.clone(),
                base_url: h.base_url.clone(),
            }],
            (None, false) => h.accounts.clone(),
            (None, true) => {
                return Err(format!(
                    "{}: not a report of a run over several accounts (it names no account)",
                    path.display()
                ))
            }
        };
        if let Some(first) = pieces.first() {
            let first: &Piece = first;
            if first.header.playbook.name != h.playbook.name {
                return Err(format!(
                    "{} is a report of playbook `{}`, {} of `{}`: only reports of one playbook can be merged",
                    path.display(),
                    h.playbook.name,
                    first.path.display(),
                    first.header.playbook.name
                ));
            }
        }
        for a in &accounts {
            if let Some(other) = owner.insert(a.name.clone(), path.clone()) {
                return Err(format!(
                    "account `{}` is in both {} and {}: each account may come from one report only",
                    a.name,
                    other.display(),
                    path.display()
                ));
            }
        }
        pieces.push(Piece {
            path: path.clone(),
            header: h,
            accounts,
        });
    }
    Ok(pieces)
}

/// Joins reports of one playbook into `out`: part reports (one account each) and reports of
/// runs over several accounts (shards), no account in two of them. `header` is the joined
/// report's header (its `accounts` are filled in); `None` takes the first input's, noting the
/// inputs in `merged_from`. Returns the footer written.
pub(crate) fn merge(
    inputs: &[PathBuf],
    out: &Path,
    header: Option<ReportHeader>,
) -> Result<ReportFooter, String> {
    let pieces = read_pieces(inputs)?;
    let Some(first) = pieces.first() else {
        return Err("nothing to merge".into());
    };
    let mut header = header.unwrap_or_else(|| {
        let mut h = first.header.clone();
        h.run_id = uuid::Uuid::new_v4().to_string();
        h.merged_from = inputs.iter().map(|p| p.display().to_string()).collect();
        h.started_at = pieces
            .iter()
            .map(|p| p.header.started_at)
            .min()
            .unwrap_or(h.started_at);
        h.shard = None;
        h.resumed_from = Vec::new();
        h
    });
    header.account = None;
    header.base_url = None;
    header.accounts = pieces.iter().flat_map(|p| p.accounts.clone()).collect();
    let mut writer = ReportWriter::create(out, &header)
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    writer.set_sync_markers(false);
    let mut facts: BTreeMap<String, AccountFacts> = BTreeMap::new();
    let mut finished_at: Option<Timestamp> = None;
    let mut rate_limited = 0;
    let mut any_rate = false;
    // Every account's steps and timeline, for the views of the joined report.
    let mut steps: Vec<crate::report::StepFacts> = Vec::new();
    let mut events: Vec<crate::report::RunEvent> = Vec::new();
    let mut events_dropped = 0;
    for piece in &pieces {
        // Newest record per (account, step, key), for a report cut short (no footer).
        let mut newest: HashMap<(String, String, String), crate::report::ItemStatus> =
            HashMap::new();
        let mut write_error = None;
        let own = piece.header.account.clone();
        let scan = scan_report(&piece.path, |mut item: ItemRecord| {
            if item.account.is_none() {
                item.account.clone_from(&own);
            }
            newest.insert(
                (
                    item.account.clone().unwrap_or_default(),
                    item.step.clone(),
                    item.key.clone(),
                ),
                item.status,
            );
            if write_error.is_none() {
                write_error = writer.write_item(&item).err();
            }
        })
        .map_err(|e| e.to_string())?;
        if let Some(e) = write_error {
            return Err(format!("cannot write {}: {e}", out.display()));
        }
        if let Some(f) = &scan.footer {
            add_steps(&mut steps, &f.run.steps);
            events.extend(f.run.events.iter().cloned());
            events_dropped += f.run.events_dropped;
            finished_at = finished_at.max(Some(f.finished_at));
            if let Some(n) = f.run.rate_limited {
                rate_limited += n;
                any_rate = true;
            }
        }
        facts.extend(piece_facts(piece, scan.footer.as_ref(), &newest));
    }
    let mut totals = Totals::default();
    for f in facts.values() {
        totals.merge(&f.totals);
    }
    let outcome = fleet_outcome(facts.values().map(|f| f.outcome));
    let finished_at = finished_at.unwrap_or_else(Timestamp::now);
    let aborted: Vec<String> = facts
        .iter()
        .filter(|(_, f)| f.outcome == Outcome::Aborted)
        .map(|(n, f)| format!("{n}: {}", f.abort_reason.as_deref().unwrap_or("aborted")))
        .collect();
    let run = RunFacts {
        duration_ms: u64::try_from(finished_at.duration_since(header.started_at).as_millis()).ok(),
        rate_limited: any_rate.then_some(rate_limited),
        abort_reason: (outcome == Outcome::Aborted).then(|| aborted.join("; ")),
        steps,
        events: {
            events.sort_by_key(|e| e.at);
            let over = events.len().saturating_sub(crate::report::MAX_EVENTS);
            events_dropped += over as u64;
            events.truncate(crate::report::MAX_EVENTS);
            events
        },
        events_dropped,
        ..RunFacts::default()
    };
    writer.set_fleet(totals, facts);
    writer
        .finish_with(finished_at, outcome, run)
        .map_err(|e| format!("cannot finish {}: {e}", out.display()))
}

/// What one input says of each of its accounts: its footer's figures, or, for a report cut
/// short, its newest records counted and the account taken as aborted.
fn piece_facts(
    piece: &Piece,
    footer: Option<&ReportFooter>,
    newest: &HashMap<(String, String, String), crate::report::ItemStatus>,
) -> BTreeMap<String, AccountFacts> {
    let mut facts = BTreeMap::new();
    match (footer, &piece.header.account) {
        (Some(f), Some(name)) => {
            facts.insert(
                name.clone(),
                AccountFacts {
                    outcome: f.outcome,
                    totals: f.totals,
                    abort_reason: f.run.abort_reason.clone(),
                    rate_limited: f.run.rate_limited,
                    duration_ms: f.run.duration_ms,
                },
            );
        }
        (Some(f), None) => facts.extend(f.per_account.clone()),
        (None, _) => {
            for a in &piece.accounts {
                let mut totals = Totals::default();
                for ((acct, _, _), status) in newest {
                    if *acct == a.name {
                        totals.add(*status);
                    }
                }
                facts.insert(
                    a.name.clone(),
                    AccountFacts {
                        outcome: Outcome::Aborted,
                        totals,
                        abort_reason: Some(format!(
                            "{} was cut short (no footer): resume it",
                            piece.path.display()
                        )),
                        rate_limited: None,
                        duration_ms: None,
                    },
                );
            }
        }
    }
    facts
}

/// Adds one account's step figures to the run's: per step, the earliest start, the longest
/// duration, and the requests and totals summed.
fn add_steps(all: &mut Vec<crate::report::StepFacts>, more: &[crate::report::StepFacts]) {
    for s in more {
        if let Some(t) = all.iter_mut().find(|t| t.id == s.id) {
            t.started_at = match (t.started_at, s.started_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            t.duration_ms = t.duration_ms.max(s.duration_ms);
            t.requests += s.requests;
            t.totals.merge(&s.totals);
        } else {
            all.push(s.clone());
        }
    }
}

/// Writes the records of `account` in `report` (a report of a run over several accounts) as a
/// part report at `out`, for `--resume`. `Ok(false)`: the report has no such account.
pub(crate) fn split_account(report: &Path, account: &str, out: &Path) -> Result<bool, String> {
    let h = read_header(report).map_err(|e| e.to_string())?;
    if h.account.as_deref() == Some(account) {
        std::fs::copy(report, out).map_err(|e| format!("cannot copy {}: {e}", report.display()))?;
        return Ok(true);
    }
    if !h.accounts.iter().any(|a| a.name == account) {
        return Ok(false);
    }
    let mut part = h.clone();
    part.accounts = Vec::new();
    part.account = Some(account.to_owned());
    part.base_url = h
        .accounts
        .iter()
        .find(|a| a.name == account)
        .and_then(|a| a.base_url.clone());
    let mut writer = ReportWriter::create(out, &part)
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    writer.set_sync_markers(false);
    let mut write_error = None;
    let scan = scan_report(report, |mut item| {
        if item.account.as_deref() == Some(account) && write_error.is_none() {
            item.account = None;
            write_error = writer.write_item(&item).err();
        }
    })
    .map_err(|e| e.to_string())?;
    if let Some(e) = write_error {
        return Err(format!("cannot write {}: {e}", out.display()));
    }
    // A part whose run was cut short stays cut short (no footer): its items are all there is.
    if let Some(f) = scan
        .footer
        .as_ref()
        .and_then(|f| f.per_account.get(account))
    {
        let footer = scan.footer.as_ref().map(|f| f.finished_at);
        let run = RunFacts {
            duration_ms: f.duration_ms,
            rate_limited: f.rate_limited,
            abort_reason: f.abort_reason.clone(),
            ..RunFacts::default()
        };
        writer
            .finish_with(footer.unwrap_or_else(Timestamp::now), f.outcome, run)
            .map_err(|e| format!("cannot finish {}: {e}", out.display()))?;
    } else {
        writer.flush().map_err(|e| e.to_string())?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ItemStatus, PlaybookRef};

    fn header(account: Option<&str>) -> ReportHeader {
        let mut h = ReportHeader::new(
            "run",
            PlaybookRef {
                name: "pb".into(),
                path: "pb.yaml".into(),
                sha256: "00".into(),
            },
            false,
            "2026-12-01T10:00:00Z".parse().unwrap(),
            serde_json::json!({}),
        );
        h.account = account.map(str::to_owned);
        h
    }

    fn part(dir: &Path, account: &str, statuses: &[ItemStatus], finish: bool) -> PathBuf {
        let p = dir.join(format!("{account}.json"));
        let mut w = ReportWriter::create(&p, &header(Some(account))).unwrap();
        for (i, s) in statuses.iter().enumerate() {
            w.write_item(&ItemRecord::new("close", i as u64, format!("k{i}"), *s))
                .unwrap();
        }
        if finish {
            let outcome = if statuses.contains(&ItemStatus::Failed) {
                Outcome::Failed
            } else {
                Outcome::Completed
            };
            w.finish("2026-12-01T10:01:00Z".parse().unwrap(), outcome)
                .unwrap();
        } else {
            w.flush().unwrap();
        }
        p
    }

    #[test]
    fn merging_parts_names_every_item_and_totals_each_account() {
        let dir = tempfile::tempdir().unwrap();
        let pa = part(dir.path(), "a", &[ItemStatus::Succeeded; 3], true);
        let pb = part(
            dir.path(),
            "b",
            &[ItemStatus::Succeeded, ItemStatus::Failed],
            true,
        );
        let pc = part(dir.path(), "c", &[ItemStatus::Succeeded], false);
        let out = dir.path().join("all.json");
        let footer = merge(&[pa.clone(), pb, pc], &out, None).unwrap();
        assert_eq!(footer.totals.succeeded, 5);
        assert_eq!(footer.totals.failed, 1);
        assert_eq!(footer.outcome, Outcome::Failed);
        assert_eq!(footer.per_account["a"].outcome, Outcome::Completed);
        assert_eq!(footer.per_account["b"].totals.failed, 1);
        assert_eq!(footer.per_account["c"].outcome, Outcome::Aborted);
        let read = crate::report::read_report(&out).unwrap();
        assert_eq!(read.items.len(), 6);
        assert!(read.items.iter().all(|i| i.account.is_some()));
        let names: Vec<&str> = read
            .header
            .accounts
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(read.header.merged_from.len(), 3);
        // Merging the merged report with another account's part: a shard merge.
        let pd = part(dir.path(), "d", &[ItemStatus::Succeeded], true);
        let all = dir.path().join("all2.json");
        let footer = merge(&[out.clone(), pd], &all, None).unwrap();
        assert_eq!(footer.per_account.len(), 4);
        assert_eq!(footer.totals.succeeded, 6);
        // An account in two inputs is refused.
        let e = merge(&[out.clone(), pa], &dir.path().join("x.json"), None).unwrap_err();
        assert!(e.contains("account `a` is in both"), "{e}");
        // One account's part taken back out.
        let back = dir.path().join("b-back.json");
        assert!(split_account(&all, "b", &back).unwrap());
        let read = crate::report::read_report(&back).unwrap();
        assert_eq!(read.header.account.as_deref(), Some("b"));
        assert_eq!(read.items.len(), 2);
        assert_eq!(read.footer.unwrap().totals.failed, 1);
        assert!(!split_account(&all, "zz", &back).unwrap());
    }

    #[test]
    fn the_fleet_outcome() {
        use Outcome::{Aborted, Completed, Failed};
        assert_eq!(fleet_outcome([Completed, Completed]), Completed);
        assert_eq!(fleet_outcome([Completed, Aborted]), Failed);
        assert_eq!(fleet_outcome([Completed, Failed]), Failed);
        assert_eq!(fleet_outcome([Aborted, Aborted]), Aborted);
        assert_eq!(
            part_path(Path::new("r/x.json"), "a"),
            Path::new("r/x.json.accounts/a.json")
        );
    }
}
