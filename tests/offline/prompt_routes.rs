//! The confirmation prompt on a real terminal, and the route families (`settings.routes`,
//! `--routes`).

use assert_cmd::Command;
use serde_json::Value;

use super::cli::{dry_run, root, run, INVALID};

// The confirmation prompt, on a real terminal (util-linux `script` provides the pty).

#[test]
fn a_terminal_is_asked_before_changing_more_than_ten_objects() {
    let bin = assert_cmd::cargo::cargo_bin("wts-playbook");
    // Standard input decides, not stdout: piped through `tee`, the run still asks.
    for (answer, code, outcome, pipe) in [
        ("n", 3, "aborted", ""),
        ("y", 0, "completed", " | tee /dev/null"),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let report = dir.path().join("r.json");
        let command = format!(
            "{} run playbooks/close-stale-sessions.yaml --sandbox -q --report {}{pipe}",
            bin.display(),
            report.display()
        );
        let mut child = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(root())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("util-linux script runs");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            writeln!(stdin, "{answer}").expect("answer written");
        }
        let out = child.wait_with_output().expect("finished");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{answer}: {text}");
        // Exactly the planned writes, per action, and where they go.
        assert!(
            text.contains("This run will change 20 object(s) at http://127.0.0.1:"),
            "{text}"
        );
        assert!(
            text.contains("10  session.complete   (step `close`)"),
            "{text}"
        );
        assert!(
            text.contains("10  session.send_text  (step `tell`)"),
            "{text}"
        );
        assert!(text.contains("Proceed? [y/N]"), "{text}");
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
        assert_eq!(doc["outcome"], outcome, "{answer}");
    }
    // --yes never asks.
    let dir = tempfile::tempdir().expect("temp dir");
    let report = dir.path().join("r.json");
    let command = format!(
        "{} run playbooks/close-stale-sessions.yaml --sandbox --yes -q --report {}",
        bin.display(),
        report.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(root())
        .output()
        .expect("util-linux script runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Proceed?"));
}

/// `actions NAME` lists the outcome rules the runner applies: "already in the requested state"
/// answers and verification reads.
#[test]
fn actions_lists_unchanged_answers_and_verification() {
    let out = Command::cargo_bin("wts-playbook")
        .unwrap()
        .args(["actions", "session.complete"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ERROR_SESSION_ALREADY_COMPLETED") && text.contains("unchanged"),
        "{text}"
    );
    let out = Command::cargo_bin("wts-playbook")
        .unwrap()
        .args(["actions", "session.send_text"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("verified by listing the session's messages"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Route families (`settings.routes`, `--routes`).

const CARDS_PLAYBOOK: &str = "version: 1
name: cards
steps:
  - id: cards
    action: panel.list_cards
    with: { panel_id: 11111111-1111-4111-8111-111111111111, page_size: 5 }
  - id: session
    action: session.get
    routes: node
    with: { session_id: 22222222-2222-4222-8222-222222222222 }
";

fn planned_paths(doc: &Value) -> Vec<(String, String)> {
    doc["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["step"].as_str().unwrap_or_default().to_owned(),
                // Without the query string.
                i["request"]["path"]
                    .as_str()
                    .unwrap_or_default()
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_dry_run_previews_the_chosen_route_family_and_the_report_records_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pb = dir.path().join("cards.yaml");
    std::fs::write(&pb, CARDS_PLAYBOOK).expect("write playbook");
    let pb = pb.to_str().expect("utf-8 temp path");

    // Default: documented; the step's own `routes: node` wins.
    let (out, doc) = dry_run(pb, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = doc.expect("a report");
    assert_eq!(doc["settings"]["routes"], "documented");
    assert_eq!(
        doc["settings"]["step_routes"],
        serde_json::json!({"session": "node"})
    );
    assert_eq!(
        planned_paths(&doc),
        [
            ("cards".to_owned(), "/crm/v2/panel/card".to_owned()),
            (
                "session".to_owned(),
                "/chat/v1/session/22222222-2222-4222-8222-222222222222".to_owned()
            ),
        ]
    );
    assert!(
        out.stdout.contains("GET /crm/v2/panel/card?"),
        "{}",
        out.stdout
    );

    // `--routes node` for the run.
    let (out, doc) = dry_run(pb, &["--routes", "node"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = doc.expect("a report");
    assert_eq!(doc["settings"]["routes"], "node");
    assert_eq!(doc["settings"]["step_routes"], serde_json::json!({}));
    assert_eq!(planned_paths(&doc)[0].1, "/crm/v1/panel/card");
    assert!(
        out.stdout.contains("GET /crm/v1/panel/card?"),
        "{}",
        out.stdout
    );

    // A bad value on the command line is a usage error.
    assert_eq!(run(&["run", pb, "--dry-run", "--routes", "v2"]).code, 2);
}

#[test]
fn validate_takes_the_route_family_from_the_command_line() {
    let path = format!("{INVALID}/other_family_param.yaml");
    let node = run(&["validate", "--routes", "node", &path]);
    assert_eq!(node.code, 2);
    // Under `--routes node` the first step's `include_archived` is fine; the second step
    // pins `routes: node` itself, so its `status` is still refused.
    assert!(!node.stderr.contains("include_archived"), "{}", node.stderr);
    assert!(node
        .stderr
        .contains("parameter `status` exists only with `routes: documented`"));
    assert!(node.stderr.contains("1 problem found"));
}

#[test]
fn actions_shows_both_route_families() {
    let out = run(&["actions", "panel.update_card"]);
    assert_eq!(out.code, 0);
    assert!(out
        .stdout
        .contains("route:      PUT /crm/v3/panel/card/{card_id}  (routes: documented)"));
    assert!(out
        .stdout
        .contains("node route: PUT /crm/v1/panel/card/{card_id}  (routes: node)"));
    assert!(out.stdout.contains("[routes: node only]"));
    assert!(out.stdout.contains("[routes: documented only]"));
    let out = run(&["actions"]);
    assert!(out.stdout.contains("/chat/v2/session *"), "{}", out.stdout);
}

/// A wrongly typed value of any setting (the newer ones too) is named at its field and hides
/// none of the other problems.
#[test]
fn every_setting_with_a_wrong_value_is_reported_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pb = dir.path().join("v.yaml");
    std::fs::write(
        &pb,
        "version: 1\nname: v\nsettings: { concurrency: 0, max_failures: lots, max_pages: -1, max_items: many, unreachable_after: 2.5, max_retry_wait: [1], max_response_size: 8XB, routes: nodes }\nsteps:\n  - id: a\n    action: session.get\n    with: { session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6 }\n",
    )
    .expect("write");
    let out = run(&["validate", pb.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    for field in [
        "concurrency",
        "max_failures",
        "max_pages",
        "max_items",
        "unreachable_after",
        "max_retry_wait",
        "8XB",
        "nodes",
    ] {
        assert!(
            out.stderr.contains(field),
            "{field} not reported:\n{}",
            out.stderr
        );
    }
    assert!(out.stderr.contains("8 problems found"), "{}", out.stderr);
}
