//! End-to-end tests: the real `wts-playbook` binary against a sandbox over loopback HTTP, either
//! started in-process by the test (`support::Env`) or as a standalone `wts-playbook sandbox`
//! process (`support::SandboxProcess`, for runs that are killed and resumed), pointed at it with
//! `WTS_BASE_URL` / `WTS_API_TOKEN`. Every case checks the sandbox's state and request journal
//! afterwards, not only what the binary printed; the hostile cases use a misbehaving server
//! (`support::Hostile`).
//!
//! In: playbooks and CSVs generated into a tempdir per test. Out: assertions on the exit code,
//! the report (valid JSON), the sandbox state and the journal.

#[path = "../support/mod.rs"]
mod support;

mod accounts;
mod accounts_plan;
mod all_actions;
mod auth;
mod budget;
mod edge;
mod hostile;
mod interrupt;
mod odd_inputs;
mod plan_apply;
mod rate;
mod resume;
mod resume_chain;
mod run;
mod secrets;
mod settings;
mod unreachable;
mod upload;

use wts_playbook::sandbox::JournalEntry;

/// Short retry backoffs, so the fault cases stay fast.
const FAST_RETRY: &str = "  retry: { attempts: 6, backoff: 50ms, max_backoff: 1s }";

/// A playbook closing every session of one CSV (`ids.csv`, column `session_id`) with `step`
/// (the `with:` lines included), with these lines added under `settings:`.
fn close_with(settings: &str, step: &str) -> String {
    format!(
        r"version: 1
name: e2e-close
inputs:
  ids:
    csv: ids.csv
    key: session_id
settings:
  timeout: 30s
{settings}
steps:
  - id: close
    for_each: inputs.ids
{step}"
    )
}

/// `close_playbook` through the raw `http` action, which knows no "already completed" answer:
/// completing a completed session is a plain failure (a 400).
fn close_http_playbook(settings: &str) -> String {
    close_with(
        settings,
        r#"    action: http
    with:
      method: PUT
      path: "/chat/v1/session/{{ row.session_id }}/complete"
      body: { stopBotInExecution: true }
"#,
    )
}

fn close_playbook(settings: &str) -> String {
    close_with(
        settings,
        r#"    action: session.complete
    with:
      session_id: "{{ row.session_id }}"
      stop_bot_in_execution: true
"#,
    )
}

/// The run's first request doubles as the token check: nothing else was sent before it
/// was answered.
fn is_first_alone(journal: &[JournalEntry]) -> bool {
    let Some(first) = journal.iter().min_by_key(|e| e.at) else {
        return true;
    };
    let answered = first.answered_at.expect("answered");
    journal
        .iter()
        .filter(|e| e.seq != first.seq)
        .all(|e| e.at >= answered)
}
