//! The preflight: every item the run will send planned first (nothing sent), so that a value
//! that cannot be converted stops the run before its first request, and the confirmation counts
//! exactly the writes the run will make.

use std::io::Write;
use std::sync::Arc;

use crate::execute::{dry_run, RunOptions};
use crate::program::{self, Program};
use crate::progress::Progress;
use crate::report::ResumeIndex;
use crate::secret::Redactor;

/// What planning every item (a dry run with no report) found.
pub(super) enum Preflight {
    /// Every item can be planned; the writes the run will make.
    Ok(Writes),
    Interrupted(String),
    /// Items whose request cannot be built (a CSV value of the wrong type, …): the message.
    Unplannable(String),
}

/// Plans every item the run will send: `limit` and, with `--resume`, what it skips, as the run
/// will (so the writes counted for the confirmation are exactly the run's). Synchronous (no
/// runtime); a Ctrl-C (counted by `execute::interrupt` once a real run installed its handler)
/// stops it.
pub(super) fn preflight(
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
        claimed: std::collections::HashMap::new(),
        observers: Vec::new(),
        plan_mode: None,
        interrupt: None,
    };
    let progress = Progress::new(crate::progress::Mode::Quiet);
    let (pre, _) = dry_run(program.clone(), None, redactor.clone(), progress, options);
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

/// A run that changes more objects than this asks first (or needs `--yes`).
pub(super) const CONFIRM_ABOVE: u64 = 10;

/// The writes of one step, as the preflight planned them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StepWrites {
    step: String,
    action: &'static str,
    /// Items planned (not skipped by `when`).
    count: u64,
    /// The fan-out list comes from a step that has not run: its length is known only then.
    open_list: bool,
}

/// Every state-changing request a run will send, per step (from the preflight).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Writes {
    steps: Vec<StepWrites>,
}

impl Writes {
    /// Adds another account's writes, step by step.
    pub(super) fn add(&mut self, other: Writes) {
        for w in other.steps {
            if let Some(s) = self.steps.iter_mut().find(|s| s.step == w.step) {
                s.count += w.count;
                s.open_list |= w.open_list;
            } else {
                self.steps.push(w);
            }
        }
    }

    fn planned(program: &Program, pre: &crate::execute::RunResult) -> Writes {
        let mut steps = Vec::new();
        let planned = |id: &str| {
            pre.per_step
                .iter()
                .find(|(s, _)| s == id)
                .map_or(0, |(_, t)| t.planned)
        };
        let open = |id: &str| pre.open_lists.iter().any(|s| s == id);
        let mut add = |s: &program::StepPlan, open_list: bool| {
            if let program::StepKind::Action { spec, .. } = &s.kind {
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
                if let program::StepKind::Pipeline(children) = &s.kind {
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
pub(super) enum Confirm {
    Proceed,
    /// Ask this question on the terminal.
    Ask(String),
    /// Nobody can be asked: stop, exit 2, with this message.
    Refuse(String),
}

/// More than [`CONFIRM_ABOVE`] changes (or an unknown number) need a yes: from `--yes`, or from
/// a person at the terminal on standard input. Where stdout or stderr go does not matter.
pub(super) fn decide(writes: &Writes, yes: bool, stdin_is_terminal: bool, target: &str) -> Confirm {
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
pub(super) fn ask(question: &str) -> bool {
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
