//! Runs you can trust, against a standalone `wts-playbook sandbox` process: `kill -9` in the
//! middle of thousands of sends then `--resume` (no customer gets a message twice), Ctrl-C then
//! `--resume` (no item done twice), faults after commit on sends (never a duplicate) and on
//! completes (retried to success), and bad resume reports (clear errors, never a panic).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    against, against_std, read_report, signal, wait_for_lines, Run, SandboxProcess, Served,
};

pub(super) const TOKEN: &str = "resume-test-token";

/// A standalone sandbox accepting only [`TOKEN`].
pub(super) fn start(extra: &[&str]) -> SandboxProcess {
    let mut args = vec!["--token", TOKEN];
    args.extend_from_slice(extra);
    SandboxProcess::start(&args)
}

/// Messages per session id of this test's sessions (not the seeded ones), from the state.
fn messages_per_session(sandbox: &SandboxProcess) -> HashMap<String, usize> {
    let state = sandbox.state();
    let mut out = HashMap::new();
    for m in state["messages"].as_array().unwrap() {
        let id = m["sessionId"].as_str().unwrap();
        if id.starts_with(TEST_PREFIX) {
            *out.entry(id.to_owned()).or_default() += 1;
        }
    }
    out
}

pub(super) const TEST_PREFIX: &str = "22222222-2222-4222-8222-";

pub(super) fn uuid(i: usize) -> String {
    format!("{TEST_PREFIX}{i:012}")
}

fn send_playbook(dir: &Path, n: usize) -> PathBuf {
    let mut csv = String::from("session_id,name\n");
    for i in 0..n {
        csv.push_str(&format!("{},Customer {i}\n", uuid(i)));
    }
    std::fs::write(dir.join("recipients.csv"), csv).unwrap();
    let pb = dir.join("send.yaml");
    std::fs::write(
        &pb,
        r#"version: 1
name: tell-everyone
inputs:
  people: { csv: recipients.csv, key: session_id }
settings: { concurrency: 16, rate_limit: "off" }
steps:
  - id: tell
    action: session.send_text
    for_each: inputs.people
    with:
      session_id: "{{ row.session_id }}"
      text: "Hello {{ row.name }}"
"#,
    )
    .unwrap();
    pb
}

/// `run --yes -q ARGS` against the sandbox in `dir`, to add the playbook and spawn.
pub(super) fn run(dir: &Path, sandbox: &SandboxProcess, args: &[&str]) -> Command {
    let mut c = against_std(dir, &sandbox.url, Some(TOKEN));
    c.args(["run", "--yes", "-q"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// `run --yes -q ARGS PLAYBOOK` against the sandbox in `dir`, to its end.
pub(super) fn run_to_end(dir: &Path, sandbox: &SandboxProcess, pb: &Path, args: &[&str]) -> Run {
    Run::of(
        against(dir, &sandbox.url, Some(TOKEN))
            .args(["run", "--yes", "-q"])
            .args(args)
            .arg(pb),
    )
}

/// `run --resume FROM --report dir/TO` of the playbook; asserts exit 0 and returns the new
/// report with the run's stderr.
fn resume(
    dir: &Path,
    sandbox: &SandboxProcess,
    pb: &Path,
    from: &Path,
    to: &str,
) -> (Value, String) {
    let report = dir.join(to);
    let out = run_to_end(
        dir,
        sandbox,
        pb,
        &[
            "--resume",
            from.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    let stderr = out.stderr.clone();
    assert_eq!(Some(out.code), Some(0), "{stderr}");
    (read_report(&report), stderr)
}

#[test]
fn kill_9_then_resume_sends_each_message_at_most_once() {
    let sandbox = start(&["--latency-ms", "4", "--jitter-ms", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let n = 3000;
    let pb = send_playbook(dir.path(), n);
    let first = dir.path().join("first.json");

    let mut child = run(dir.path(), &sandbox, &["--report", first.to_str().unwrap()])
        .arg(&pb)
        .spawn()
        .unwrap();
    wait_for_lines(&first, 300);
    child.kill().unwrap(); // SIGKILL: no chance to finish the report
    child.wait().unwrap();
    let sent_before = messages_per_session(&sandbox);
    assert!(
        sent_before.len() < n,
        "killed before the end ({} sent)",
        sent_before.len()
    );

    let (second, stderr) = resume(dir.path(), &sandbox, &pb, &first, "second.json");
    let report = second;
    let items = report["items"].as_array().unwrap();
    let unknown: Vec<&str> = items
        .iter()
        .filter(|i| i["reason"].as_str().is_some_and(|r| r.contains("unknown")))
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    // The unknown ones are listed on stderr.
    for key in &unknown {
        assert!(
            stderr.contains(key),
            "unknown item {key} not listed:\n{stderr}"
        );
    }
    let per_session = messages_per_session(&sandbox);
    for i in 0..n {
        let id = uuid(i);
        let count = per_session.get(&id).copied().unwrap_or(0);
        assert!(count <= 1, "{id} got {count} messages");
        if count == 0 {
            assert!(
                unknown.contains(&id.as_str()),
                "{id} got no message and is not listed as unknown"
            );
        }
    }
    let delivered = per_session.values().sum::<usize>();
    assert!(
        delivered + unknown.len() >= n,
        "delivered {delivered}, unknown {}",
        unknown.len()
    );
    // Nothing that succeeded in the first run was sent again.
    for (id, count) in &sent_before {
        assert_eq!(per_session.get(id), Some(count), "{id} was sent again");
    }
}

#[test]
fn ctrl_c_then_resume_finishes_with_no_item_done_twice() {
    let sandbox = start(&["--latency-ms", "5"]);
    let dir = tempfile::tempdir().unwrap();
    let n = 1500;
    let pb = send_playbook(dir.path(), n);
    let first = dir.path().join("first.json");
    let child = run(dir.path(), &sandbox, &["--report", first.to_str().unwrap()])
        .arg(&pb)
        .spawn()
        .unwrap();
    wait_for_lines(&first, 200);
    assert!(signal(&child, "-INT"));
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The report is complete, valid JSON, with no unknown items (in-flight ones finished).
    let report = read_report(&first);
    assert_eq!(report["outcome"], "aborted");
    assert_eq!(report["totals"]["unknown"], 0);
    let done_first = report["totals"]["succeeded"].as_u64().unwrap();
    assert!(done_first > 0 && done_first < n as u64);
    let recorded_first = report["items"].as_array().unwrap().len() as u64;

    let (report, _) = resume(dir.path(), &sandbox, &pb, &first, "second.json");
    // The resumed report counts the whole logical run: what it carried over and what it sent.
    assert_eq!(report["totals"]["succeeded"].as_u64().unwrap(), n as u64);
    let carried = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["carried"] == true)
        .count() as u64;
    // Every record of the interrupted run is carried (items interrupted before sending are
    // recorded as not sent, and sent now).
    assert_eq!(carried, recorded_first);
    let per_session = messages_per_session(&sandbox);
    assert_eq!(per_session.len(), n);
    assert!(
        per_session.values().all(|c| *c == 1),
        "a message was sent twice"
    );
}

#[test]
fn faults_after_commit_never_duplicate_sends_and_completes_are_retried() {
    let sandbox = start(&[
        "--fail-after-rate",
        "0.1",
        "--drop-after-rate",
        "0.05",
        "--seed",
        "11",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let n = 400;
    let pb = send_playbook(dir.path(), n);
    let report_path = dir.path().join("sends.json");
    let out = run_to_end(
        dir.path(),
        &sandbox,
        &pb,
        &["--report", report_path.to_str().unwrap()],
    );
    // Every send whose answer was lost is verified with a read of the session's messages.
    assert_eq!(
        Some(out.code),
        Some(0),
        "verified sends make the run complete: {}",
        &out.stdout
    );
    let report = read_report(&report_path);
    assert_eq!(report["totals"]["unknown"], 0);
    let verified = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["evidence"].is_object())
        .count();
    assert!(verified > 0, "faults were injected and verified");
    assert!(
        messages_per_session(&sandbox).values().all(|c| *c == 1),
        "no duplicate message"
    );
    let sends = sandbox
        .journal_rows()
        .iter()
        .filter(|(m, p, _)| m == "POST" && p.ends_with("/message"))
        .count();
    assert_eq!(sends, n, "each send went out exactly once");

    completes_are_retried_to_success(&dir, &sandbox, n);
}

/// Completes of the `n` sessions against the same faulty sandbox: every one ends COMPLETED,
/// some through an "already completed" answer to a retry, verified with v2 reads only.
fn completes_are_retried_to_success(dir: &tempfile::TempDir, sandbox: &SandboxProcess, n: usize) {
    // Completes are retry-safe: the same faults end in success for every session.
    std::fs::write(
        dir.path().join("close.yaml"),
        r#"version: 1
name: close-all
inputs:
  people: { csv: recipients.csv, key: session_id }
settings: { concurrency: 16, rate_limit: "off", retry: { attempts: 8, backoff: 5ms, max_backoff: 50ms } }
steps:
  - id: close
    action: session.complete
    for_each: inputs.people
    with: { session_id: "{{ row.session_id }}" }
"#,
    )
    .unwrap();
    let out = run_to_end(
        dir.path(),
        sandbox,
        Path::new("close.yaml"),
        &["--report", "close.json"],
    );
    assert_eq!(Some(out.code), Some(0), "{}", &out.stdout);
    let state = sandbox.get("/__sandbox/state");
    for i in 0..n {
        let id = uuid(i);
        let s = state["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id.as_str())
            .unwrap();
        assert_eq!(s["status"], "COMPLETED", "{id}");
    }
    // A retried complete answered "already completed" is its own earlier attempt that worked.
    let closes = read_report(&dir.path().join("close.json"));
    let worked = closes["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| {
            i["status"] == "succeeded"
                && i["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("an earlier attempt of this run worked"))
        })
        .count();
    assert!(
        worked > 0,
        "some completes were retried after a fault after commit"
    );
    // Any other 4xx on a retried complete is checked with a read of the documented route
    // family (the default): `GET /chat/v2/session/{id}`, never the legacy v1 read.
    let reads: Vec<String> = sandbox
        .journal_rows()
        .into_iter()
        .filter(|(m, p, _)| {
            m == "GET"
                && p.starts_with("/chat/v")
                && p.contains("/session/")
                && !p.ends_with("/message") // verification reads of sends
        })
        .map(|(_, p, _)| p)
        .collect();
    assert!(
        reads.iter().all(|p| p.starts_with("/chat/v2/session/")),
        "{reads:?}"
    );
}

#[test]
fn bad_resume_reports_are_clear_errors() {
    let sandbox = start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let pb = send_playbook(dir.path(), 3);
    let cases: [(&str, &[u8], &str); 4] = [
        ("not-json.json", b"hello, this is not a report\n", "cannot resume"),
        ("empty.json", b"", "cannot resume"),
        ("binary.json", b"\xff\xfe\x00garbage", "cannot resume"),
        (
            "other.json",
            br#"{"format":1,"tool":"wts-playbook 0.1.0","run_id":"x","playbook":{"name":"another","path":"a.yaml","sha256":"00"},"dry_run":false,"started_at":"2026-11-25T10:00:00Z","settings":{},"items":[
"#,
            "not `tell-everyone`",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = run_to_end(
            dir.path(),
            &sandbox,
            &pb,
            &["--resume", path.to_str().unwrap()],
        );
        let stderr = &out.stderr;
        assert_eq!(Some(out.code), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
    assert!(sandbox.journal_rows().is_empty(), "nothing was sent");

    // A report truncated in the middle of a line is a correct partial read.
    let full = dir.path().join("full.json");
    let out = run_to_end(
        dir.path(),
        &sandbox,
        &pb,
        &["--report", full.to_str().unwrap()],
    );
    assert_eq!(Some(out.code), Some(0));
    let text = std::fs::read_to_string(&full).unwrap();
    let cut = text.lines().take(3).collect::<Vec<_>>().join("\n"); // header + 2 items
    let cut = format!("{cut}\n{}", &text.lines().nth(3).unwrap()[..10]); // half a line
    let truncated = dir.path().join("truncated.json");
    std::fs::write(&truncated, cut).unwrap();
    let before = messages_per_session(&sandbox).len();
    let (report, _) = resume(dir.path(), &sandbox, &pb, &truncated, "after.json");
    // Two items were in the cut report, so one send is left; the new report is the account of
    // the whole logical run: the two carried over and the one sent.
    assert_eq!(report["totals"]["succeeded"], 3, "{report}");
    assert_eq!(report["totals"]["skipped"], 0);
    let carried = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["carried"] == true)
        .count();
    assert_eq!(carried, 2, "{report}");
    assert_eq!(messages_per_session(&sandbox).len(), before);
}

#[test]
fn failed_csv_feeds_straight_back_as_the_input() {
    let sandbox = start(&["--fail-rate", "0.3", "--seed", "5"]);
    let dir = tempfile::tempdir().unwrap();
    let n = 60;
    send_playbook(dir.path(), n); // writes recipients.csv
    let close = |attempts: u32| {
        format!(
            r#"version: 1
name: close-all
inputs:
  people: {{ csv: recipients.csv, key: session_id }}
settings: {{ concurrency: 8, rate_limit: "off", retry: {{ attempts: {attempts}, backoff: 5ms, max_backoff: 20ms }} }}
steps:
  - id: close
    action: session.complete
    for_each: inputs.people
    with: {{ session_id: "{{{{ row.session_id }}}}" }}
"#
        )
    };
    std::fs::write(dir.path().join("once.yaml"), close(1)).unwrap();
    std::fs::write(dir.path().join("patient.yaml"), close(10)).unwrap();

    let out = run_to_end(
        dir.path(),
        &sandbox,
        Path::new("once.yaml"),
        &["--report", "first.json", "--failed-csv", "failed.csv"],
    );
    assert_eq!(Some(out.code), Some(1), "{}", &out.stdout);
    let first = read_report(&dir.path().join("first.json"));
    let failed_keys: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "failed")
        .map(|i| i["key"].as_str().unwrap().to_owned())
        .collect();
    assert!(!failed_keys.is_empty());
    let csv = std::fs::read_to_string(dir.path().join("failed.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("session_id,name,_status,_error"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), failed_keys.len());
    for key in &failed_keys {
        let row = rows
            .iter()
            .find(|r| r.starts_with(key.as_str()))
            .expect("failed row present");
        assert!(
            row.contains(",failed,gave up after 1 attempts: 50"),
            "{row}"
        );
    }

    // Fed straight back: exactly the failed rows run again, and now succeed. A stale
    // failed-rows file from an earlier run is replaced by the header only (nothing failed).
    std::fs::write(dir.path().join("again.csv"), csv.clone()).unwrap();
    let out = run_to_end(
        dir.path(),
        &sandbox,
        Path::new("patient.yaml"),
        &[
            "--report",
            "second.json",
            "--input",
            "people=failed.csv",
            "--failed-csv",
            "again.csv",
        ],
    );
    assert_eq!(Some(out.code), Some(0), "{}", &out.stdout);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("again.csv")).unwrap(),
        "session_id,name,_status,_error\n",
        "the columns of a fed-back file are not added twice"
    );
    assert!(
        &out.stdout
            .contains("failed rows: none (again.csv has the header only)"),
        "{}",
        &out.stdout
    );
    let second = read_report(&dir.path().join("second.json"));
    let mut keys: Vec<&str> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    keys.sort_unstable();
    let mut expected: Vec<&str> = failed_keys.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(keys, expected);
    let state = sandbox.get("/__sandbox/state");
    let completed = state["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["id"].as_str().unwrap().starts_with(TEST_PREFIX) && s["status"] == "COMPLETED"
        })
        .count();
    assert_eq!(completed, n);
}

#[test]
fn a_second_ctrl_c_abandons_in_flight_sends_as_unknown() {
    // Slow answers: when the run is interrupted, 16 sends are in flight.
    let sandbox = start(&["--latency-ms", "800"]);
    let dir = tempfile::tempdir().unwrap();
    let n = 48;
    let pb = send_playbook(dir.path(), n);
    let first = dir.path().join("first.json");
    let child = run(dir.path(), &sandbox, &["--report", first.to_str().unwrap()])
        .arg(&pb)
        .spawn()
        .unwrap();
    // Wait until the first sends are marked in flight (the sidecar journal exists).
    let inflight = dir.path().join("first.json.inflight");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&inflight).map_or(0, |s| s.lines().count()) < 16 {
        assert!(Instant::now() < deadline, "no send started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    for _ in 0..2 {
        assert!(Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success());
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(&first);
    assert_eq!(report["outcome"], "aborted");
    let unknown = report["totals"]["unknown"].as_u64().unwrap();
    assert!(unknown >= 1, "abandoned sends are unknown: {report}");
    assert!(
        !inflight.exists(),
        "the in-flight journal is folded into the report"
    );

    // Resume: the unknown ones are verified (a read of each session's messages: the abandoned
    // sends landed, so they are succeeded, not sent again); everything else is sent once.
    std::thread::sleep(Duration::from_millis(900)); // let the abandoned requests land
    let (second, _) = resume(dir.path(), &sandbox, &pb, &first, "second.json");
    let per_session = messages_per_session(&sandbox);
    assert!(
        per_session.values().all(|c| *c == 1),
        "a message was sent twice"
    );
    assert_eq!(per_session.len(), n, "every customer got the message");
    assert_eq!(second["totals"]["succeeded"].as_u64().unwrap(), n as u64);
    assert_eq!(second["totals"]["unknown"], 0);
    let verified = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["evidence"].is_object())
        .count() as u64;
    // The ones the read found are succeeded with evidence; the others had not landed (the
    // server dropped them with the connection) and were sent once.
    assert!(verified <= unknown, "{verified} verified of {unknown}");
}
