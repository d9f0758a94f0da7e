//! The dry run, `--limit`, `on_error: stop` and the failure budget.

use std::collections::HashSet;

use assert_cmd::Command;
use serde_json::Value;
use wts_playbook::sandbox::SandboxConfig;

use crate::support::{completed_id, statuses, uuids, Env};

use super::{close_http_playbook, close_playbook, FAST_RETRY};

// 8. dry run.

#[test]
fn dry_run_sends_nothing_and_needs_no_token() {
    let env = Env::new(SandboxConfig::default());
    let ids = uuids(25);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run(&pb, None, &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.context());
    assert!(env.journal().is_empty(), "the dry run sent requests");
    assert_eq!(env.sb().summary().requests, 0);
    let report = run.report();
    assert_eq!(report["dry_run"], true);
    let counts = statuses(&run.items());
    assert_eq!(counts.get("planned"), Some(&25), "{counts:?}");
    assert!(run.stdout.contains("dry run"), "{}", run.context());
}

// ---------------------------------------------------------------------------------------------
// 9. --limit.

#[test]
fn limit_five_changes_exactly_five() {
    let env = Env::new(SandboxConfig::default());
    let ids = uuids(50);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--limit", "5"],
    );
    assert_eq!(run.code, 0, "{}", run.context());
    let completed: Vec<&String> = ids
        .iter()
        .filter(|id| {
            env.sb()
                .session(id)
                .is_some_and(|s| s.status == "COMPLETED")
        })
        .collect();
    assert_eq!(completed.len(), 5, "{completed:?}");
    assert_eq!(env.sb().summary().sessions_completed, 5);
    let journal = env.journal();
    assert_eq!(journal.iter().filter(|e| e.state_changed).count(), 5);
    assert_eq!(journal.len(), 5, "five closes, no separate token check");
    assert_eq!(run.items().len(), 5);
}

// ---------------------------------------------------------------------------------------------
// 10. on_error: stop and the failure budget.

/// The ids of sessions the sandbox seeded as COMPLETED: completing them again is a 400.
pub(super) fn already_completed(env: &Env, n: usize) -> Vec<String> {
    let ids: Vec<String> = env
        .sb()
        .state()
        .sessions
        .iter()
        .filter(|s| s.status == "COMPLETED")
        .map(|s| s.id.clone())
        .take(n)
        .collect();
    assert_eq!(ids.len(), n, "the seed has {n} completed sessions");
    ids
}

#[test]
fn failure_budget_aborts_the_run_early() {
    let env = Env::new(SandboxConfig::default());
    let ids = already_completed(&env, 20);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_http_playbook("  max_failures: 2"));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "2"],
    );
    assert_eq!(run.code, 3, "{}", run.context());
    let closes = env
        .journal()
        .iter()
        .filter(|e| completed_id(e).is_some())
        .count();
    assert!(
        (3..ids.len()).contains(&closes),
        "stopped early after the budget: {closes} of {} sent",
        ids.len()
    );
    let report = run.report();
    assert_eq!(report["outcome"], "aborted");
    assert!(
        report["abort_reason"]
            .as_str()
            .is_some_and(|r| r.contains("failure budget")),
        "{}",
        report["abort_reason"]
    );
    let failed = run
        .items()
        .iter()
        .filter(|i| i["status"] == "failed")
        .count();
    assert!(failed >= 3, "{failed}");
    assert!(
        run.stdout.contains("failure budget"),
        "the summary says why: {}",
        run.context()
    );
}

/// A session already COMPLETED answers `ERROR_SESSION_ALREADY_COMPLETED`: `unchanged`, not a
/// failure (the budget of 2 is not touched), not among `steps.close.succeeded`, and readable
/// as `steps.close.unchanged`.
#[test]
fn already_completed_sessions_are_unchanged_not_failures() {
    let env = Env::new(SandboxConfig::default());
    let done = already_completed(&env, 6);
    let open = uuids(4);
    let ids: Vec<String> = done.iter().chain(&open).cloned().collect();
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write(
        "close.yaml",
        r#"version: 1
name: e2e-unchanged
inputs:
  ids: { csv: ids.csv, key: session_id }
settings: { max_failures: 2 }
steps:
  - id: close
    action: session.complete
    for_each: inputs.ids
    with: { session_id: "{{ row.session_id }}" }
  - id: tell_closed
    action: session.send_text
    for_each: steps.close.succeeded
    with: { session_id: "{{ row.session_id }}", text: "closed now" }
  - id: tell_already
    action: session.send_text
    for_each: steps.close.unchanged
    with: { session_id: "{{ row.session_id }}", text: "was already closed" }
"#,
    );
    let run = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(run.code, 0, "{}", run.context());
    let report = run.report();
    assert_eq!(report["totals"]["unchanged"], 6, "{}", report["totals"]);
    assert_eq!(report["totals"]["failed"], 0);
    assert!(run.stdout.contains("unchanged"), "{}", run.context());
    let state = env.sb().state();
    let to = |text: &str| -> HashSet<String> {
        state
            .messages
            .iter()
            .filter(|m| m.text.as_deref() == Some(text))
            .map(|m| m.session_id.clone())
            .collect()
    };
    assert_eq!(to("closed now"), open.iter().cloned().collect());
    assert_eq!(to("was already closed"), done.iter().cloned().collect());
    for i in run.items().iter().filter(|i| i["status"] == "unchanged") {
        assert!(i["reason"]
            .as_str()
            .unwrap()
            .contains("ERROR_SESSION_ALREADY_COMPLETED"));
    }
}

/// The views' per-class command re-runs just that class's rows: `--resume REPORT --only-class
/// CLASS` sends again the rows whose newest record is of the class, and leaves every other
/// row as the report has it.
#[test]
fn only_class_reruns_just_the_rows_of_one_error_class() {
    let env = Env::new(SandboxConfig::default());
    let done = already_completed(&env, 3);
    let lost = uuids(2);
    let mut text = String::from("session_id,route\n");
    for id in &done {
        text.push_str(&format!("{id},/chat/v1/session/{id}/complete\n"));
    }
    for id in &lost {
        text.push_str(&format!("{id},/chat/v1/nowhere/{id}\n"));
    }
    env.write("ids.csv", &text);
    let pb = env.write(
        "http.yaml",
        r#"version: 1
name: e2e-classes
inputs:
  ids: { csv: ids.csv, key: session_id }
steps:
  - id: put
    action: http
    for_each: inputs.ids
    with: { method: PUT, path: "{{ row.route }}", body: {} }
"#,
    );
    let first = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(first.code, 1, "{}", first.context());
    let report_path = env.dir.path().join("first.json");
    std::fs::write(&report_path, first.report_text.as_deref().unwrap()).unwrap();
    // The HTML view names the class command.
    let html = env.dir.path().join("first.html");
    let out = Command::cargo_bin("wts-playbook")
        .unwrap()
        .args([
            "report",
            report_path.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .contains("--only-class"));

    let before = env.journal().len();
    let class = "404 · ERROR_NOT_FOUND · api_refused";
    let again = env.run(
        &pb,
        Some("pn_e2e"),
        &[
            "--rate-limit",
            "off",
            "--resume",
            report_path.to_str().unwrap(),
            "--only-class",
            class,
        ],
    );
    assert_eq!(again.code, 1, "{}", again.context());
    let sent: Vec<String> = env.journal()[before..]
        .iter()
        .map(|e| e.path.clone())
        .collect();
    let mut want: Vec<String> = lost
        .iter()
        .map(|id| format!("/chat/v1/nowhere/{id}"))
        .collect();
    let mut got = sent.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "only the class's rows were sent again");
    // The other class's rows are left as the report had them: carried, failed.
    let items = again.items();
    for id in &done {
        let recs: Vec<&Value> = items.iter().filter(|i| i["key"] == id.as_str()).collect();
        assert_eq!(recs.len(), 1, "{id}");
        assert_eq!(recs[0]["carried"], true);
        assert_eq!(recs[0]["status"], "failed");
    }
    // A class no row has is refused.
    let none = env.run(
        &pb,
        Some("pn_e2e"),
        &[
            "--resume",
            report_path.to_str().unwrap(),
            "--only-class",
            "500 · nope",
        ],
    );
    assert_eq!(none.code, 2, "{}", none.context());
}

/// The failure budget's message counts what the summary table counts.
#[test]
fn the_abort_message_counts_what_the_table_counts() {
    let env = Env::new(SandboxConfig {
        latency_ms: 20,
        ..SandboxConfig::default()
    });
    let ids = already_completed(&env, 12);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_http_playbook("  max_failures: 5%"));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "4"],
    );
    assert_eq!(run.code, 3, "{}", run.context());
    let failed = run
        .items()
        .iter()
        .filter(|i| i["status"] == "failed")
        .count();
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("aborted: failure budget"))
        .unwrap_or_else(|| panic!("{}", run.context()));
    assert!(
        line.contains(&format!(": {failed} of 12 items of step `close`")),
        "{line} (the table shows {failed} failed)\n{}",
        run.context()
    );
    let table = run
        .stdout
        .lines()
        .find(|l| l.starts_with("close "))
        .unwrap();
    let cols: Vec<&str> = table.split_whitespace().collect();
    assert_eq!(cols[2], failed.to_string(), "{table}");
}

#[test]
fn on_error_stop_ends_the_run_at_the_first_failure() {
    let env = Env::new(SandboxConfig::default());
    let ids = already_completed(&env, 20);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_http_playbook("  on_error: stop"));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "1"],
    );
    // Stopping on an error is not one of the aborts of exit 3: the run failed (exit 1).
    assert_eq!(run.code, 1, "{}", run.context());
    let closes = env
        .journal()
        .iter()
        .filter(|e| completed_id(e).is_some())
        .count();
    assert_eq!(
        closes, 1,
        "concurrency 1: nothing sent after the first failure"
    );
    let report = run.report();
    assert_eq!(report["outcome"], "failed");
    assert_eq!(run.items().len(), 1);
    assert_eq!(report["totals"]["failed"], 1, "{}", report["totals"]);
}
