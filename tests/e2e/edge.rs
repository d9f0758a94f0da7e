//! Runs that continue correctly: edge cases found by an adversarial test.

use super::budget::already_completed;
use std::path::PathBuf;
use std::time::Duration;

use wts_playbook::sandbox::SandboxConfig;

use crate::support::{uuids, Env};

use super::{close_playbook, FAST_RETRY};

// Runs that continue correctly: edge cases found by an adversarial test.

fn send_rows_playbook(env: &Env, text: &str, extra_settings: &str) -> PathBuf {
    env.write(
        "send.yaml",
        &format!(
            r#"version: 1
name: e2e-send-rows
inputs:
  rows: {{ csv: rows.csv, key: k }}
settings:
  retry: {{ attempts: 2, backoff: 10ms, max_backoff: 20ms }}
{extra_settings}
steps:
  - id: send
    action: session.send_text
    for_each: inputs.rows
    with:
      session_id: "{{{{ row.session_id }}}}"
      text: "{text}"
"#
        ),
    )
}

/// Two rows send the same text into the same session; drops lose some of them before the
/// server applies them. Verification must not take one row's message for the other's: every
/// item the report calls succeeded has a message of its own on the server.
#[test]
fn verification_does_not_take_another_items_identical_message_for_its_own() {
    let env = Env::new(SandboxConfig {
        drop_rate: 0.3,
        seed: 7,
        ..SandboxConfig::default()
    });
    let sessions = uuids(60);
    let mut text = String::from("k,session_id\n");
    for (i, s) in sessions.iter().enumerate() {
        text.push_str(&format!("a{i},{s}\nb{i},{s}\n"));
    }
    env.write("rows.csv", &text);
    let pb = send_rows_playbook(&env, "Reminder", "");
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "1"],
    );
    let succeeded = run
        .items()
        .iter()
        .filter(|i| i["status"] == "succeeded")
        .count();
    let messages = env
        .sb()
        .state()
        .messages
        .iter()
        .filter(|m| m.text.as_deref() == Some("Reminder"))
        .count();
    assert_eq!(
        messages,
        succeeded,
        "each succeeded item has its own message on the server\n{}",
        run.context()
    );
    assert!(messages <= 120, "never more than one message per row");
}

/// An earlier run that finished (a canary) never left an unrecorded attempt: a session it never
/// touched that is already completed is `unchanged` on resume, as in a fresh run.
#[test]
fn already_completed_rows_a_finished_canary_never_touched_stay_unchanged() {
    let env = Env::new(SandboxConfig::default());
    let open = uuids(3);
    let done = already_completed(&env, 3);
    let ids: Vec<String> = open.iter().chain(&done).cloned().collect();
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let canary = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--limit", "2"],
    );
    assert_eq!(canary.code, 0, "{}", canary.context());
    let path = env.dir.path().join("canary.json");
    std::fs::write(&path, canary.report_text.as_deref().unwrap()).unwrap();
    let full = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--resume", path.to_str().unwrap()],
    );
    assert_eq!(full.code, 0, "{}", full.context());
    for i in full.items() {
        let key = i["key"].as_str().unwrap();
        if done.iter().any(|d| d == key) {
            assert_eq!(i["status"], "unchanged", "{i}");
        }
    }
}

/// Failed and unknown items carried over from an earlier report are not this run's failures:
/// they do not count against `max_failures`, even once a new failure happens.
#[test]
fn carried_unknowns_stay_out_of_the_failure_budget() {
    let first = Env::new(SandboxConfig {
        fail_after_rate: 0.5,
        seed: 3,
        ..SandboxConfig::default()
    });
    let mut text = String::from("k,phone\n");
    for i in 0..20 {
        text.push_str(&format!("r{i},5511900000{i:03}\n"));
    }
    first.write("rows.csv", &text);
    let body = r#"version: 1
name: e2e-quick
inputs:
  rows: { csv: rows.csv, key: k }
settings: { max_failures: 3 }
steps:
  - id: send
    action: message.send_text
    for_each: inputs.rows
    with: { to: "{{ row.phone }}", text: "hello" }
"#;
    // The first run has no budget: it goes through every row.
    let pb = first.write(
        "quick.yaml",
        &body.replace("settings: { max_failures: 3 }\n", ""),
    );
    let run1 = first.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "1"],
    );
    let carried_unknown = run1.report()["totals"]["unknown"].as_u64().unwrap();
    assert!(carried_unknown > 3, "{}", run1.context());
    let report1 = first.dir.path().join("r1.json");
    std::fs::write(&report1, run1.report_text.as_deref().unwrap()).unwrap();

    // The same rows plus two new ones, against a server that fails every send (unknown).
    let second = Env::new(SandboxConfig {
        fail_rate: 1.0,
        seed: 3,
        ..SandboxConfig::default()
    });
    text.push_str("r20,5511900000020\nr21,5511900000021\n");
    second.write("rows.csv", &text);
    let pb = second.write("quick.yaml", body);
    let run2 = second.run(
        &pb,
        Some("pn_e2e"),
        &[
            "--rate-limit",
            "off",
            "--concurrency",
            "1",
            "--resume",
            report1.to_str().unwrap(),
        ],
    );
    assert_eq!(
        run2.code,
        1,
        "not aborted by the carried unknowns\n{}",
        run2.context()
    );
    assert_eq!(run2.report()["outcome"], "failed");
    let sent = second
        .journal()
        .iter()
        .filter(|e| e.method == "POST")
        .count();
    assert!(sent <= 4, "only the two new rows were sent: {sent}");
}

/// A resume of a report whose steps the playbook no longer has (a step renamed) is refused:
/// items are matched by step, so they would be sent again under the new name.
#[test]
fn a_resume_naming_steps_the_playbook_lacks_is_refused() {
    let env = Env::new(SandboxConfig::default());
    let sessions = uuids(4);
    let mut text = String::from("k,session_id\n");
    for (i, s) in sessions.iter().enumerate() {
        text.push_str(&format!("a{i},{s}\n"));
    }
    env.write("rows.csv", &text);
    let pb = send_rows_playbook(&env, "Hi", "");
    let run1 = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(run1.code, 0, "{}", run1.context());
    let report1 = env.dir.path().join("r1.json");
    std::fs::write(&report1, run1.report_text.as_deref().unwrap()).unwrap();
    let renamed = std::fs::read_to_string(&pb)
        .unwrap()
        .replace("id: send", "id: notify");
    std::fs::write(&pb, renamed).unwrap();
    let before = env.journal().len();
    let run2 = env.run(
        &pb,
        Some("pn_e2e"),
        &["--resume", report1.to_str().unwrap()],
    );
    assert_eq!(run2.code, 2, "{}", run2.context());
    assert!(
        run2.stderr.contains("`send`") && run2.stderr.contains("--force"),
        "{}",
        run2.stderr
    );
    assert_eq!(env.journal().len(), before, "nothing was sent");
}

/// `--resume` of something that is not a regular file (a FIFO would block forever) is refused.
#[cfg(unix)]
#[test]
fn a_resume_of_a_fifo_is_refused() {
    let env = Env::new(SandboxConfig::default());
    env.csv("ids.csv", "session_id", &uuids(2));
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let fifo = env.dir.path().join("fifo.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let run = env.run(&pb, Some("pn_e2e"), &["--resume", fifo.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.context());
    assert!(run.stderr.contains("not a regular file"), "{}", run.stderr);
    assert!(run.elapsed < Duration::from_secs(20));
}

/// On resume, the messages the earlier run's succeeded sends put in a session count as theirs:
/// an `unknown` row with the same session and text is not verified by another row's message.
#[test]
fn a_resumed_verification_does_not_take_an_earlier_rows_message_for_its_own() {
    let env = Env::new(SandboxConfig::default());
    let sessions = uuids(5);
    let mut first = String::from("k,session_id\n");
    for (i, s) in sessions.iter().enumerate() {
        first.push_str(&format!("a{i},{s}\n"));
    }
    env.write("rows.csv", &first);
    let pb = send_rows_playbook(&env, "Reminder", "");
    let run1 = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(run1.code, 0, "{}", run1.context());
    let report1 = env.dir.path().join("r1.json");
    std::fs::write(&report1, run1.report_text.as_deref().unwrap()).unwrap();
    // The b rows (same sessions, same text) were in flight when the run died: unknown.
    let mut all = first.clone();
    let mut markers = String::new();
    for (i, s) in sessions.iter().enumerate() {
        all.push_str(&format!("b{i},{s}\n"));
        markers.push_str(&format!(
            "{{\"step\":\"send\",\"index\":{},\"key\":\"b{i}\"}}\n",
            5 + i
        ));
    }
    env.write("rows.csv", &all);
    std::fs::write(env.dir.path().join("r1.json.inflight"), markers).unwrap();
    let run2 = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--resume", report1.to_str().unwrap()],
    );
    assert_eq!(run2.code, 0, "{}", run2.context());
    // Each b row was found not sent (its session's one message is a's) and sent once.
    let state = env.sb().state();
    for s in &sessions {
        let n = state
            .messages
            .iter()
            .filter(|m| m.session_id == *s && m.text.as_deref() == Some("Reminder"))
            .count();
        assert_eq!(n, 2, "session {s}: one message per row");
    }
    assert!(run2
        .items()
        .iter()
        .filter(|i| i["key"].as_str().unwrap().starts_with('b') && i["carried"] != true)
        .all(|i| i["status"] == "succeeded" && i["evidence"].is_null()));
}

/// A parameter that reads a secret and a row's key (an `http` body with both): only the
/// secret's parts are redacted, keys stay intact, every in-flight marker is closed by its
/// record, and a resume sends nothing again.
#[test]
fn a_secret_beside_the_key_in_a_body_never_changes_the_key() {
    let env = Env::new(SandboxConfig::default());
    let sessions = uuids(3);
    env.csv("ids.csv", "session_id", &sessions);
    let pb = env.write(
        "red.yaml",
        r#"version: 1
name: e2e-red
inputs: { s: { csv: ids.csv, key: session_id } }
vars: { api_key: "SUPERSECRETVALUE42" }
settings: { secrets: [api_key] }
steps:
  - id: tell
    action: http
    for_each: inputs.s
    with:
      method: POST
      path: "/chat/v1/session/{{ row.session_id }}/message"
      body: { text: "hi", ref: "{{ vars.api_key }}", sid: "{{ row.session_id }}" }
"#,
    );
    let run1 = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(run1.code, 0, "{}", run1.context());
    let text = run1.report_text.clone().unwrap();
    assert!(!text.contains("SUPERSECRETVALUE42"));
    let report = run1.report();
    assert_eq!(report["totals"]["succeeded"], 3, "{}", report["totals"]);
    assert_eq!(report["totals"]["unknown"], 0);
    for i in run1.items() {
        assert!(sessions.iter().any(|s| i["key"] == s.as_str()), "{i}");
    }
    let report1 = env.dir.path().join("r1.json");
    std::fs::write(&report1, &text).unwrap();
    let run2 = env.run(
        &pb,
        Some("pn_e2e"),
        &["--resume", report1.to_str().unwrap()],
    );
    assert_eq!(run2.code, 0, "{}", run2.context());
    let posts = env.journal().iter().filter(|e| e.method == "POST").count();
    assert_eq!(posts, 3, "each message sent once");
}

/// Two outputs on one file, or an output over an input, is refused before anything is sent.
#[test]
fn an_output_over_another_output_or_an_input_is_refused_before_sending() {
    let env = Env::new(SandboxConfig::default());
    env.csv("ids.csv", "session_id", &uuids(3));
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let same = env.dir.path().join("same.json");
    let same = same.to_str().unwrap();
    for extra in [
        vec!["--failed-csv", same, "--html", same],
        vec!["--markdown", "ids.csv"],
        vec!["--html", "close.yaml"],
    ] {
        let run = env.run_at(&env.sb().url(), &pb, Some("pn_e2e"), &extra);
        assert_eq!(run.code, 2, "{extra:?}: {}", run.context());
        assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
    }
    assert!(env.journal().is_empty(), "nothing was sent");
    assert!(std::fs::read_to_string(env.dir.path().join("ids.csv"))
        .unwrap()
        .starts_with("session_id"));
}
