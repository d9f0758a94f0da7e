//! Runs you can trust, against a standalone `wts-playbook sandbox` process: `kill -9` in the
//! middle of thousands of sends then `--resume` (no customer gets a message twice), Ctrl-C then
//! `--resume` (no item done twice), faults after commit on sends (never a duplicate) and on
//! completes (retried to success), and bad resume reports (clear errors, never a panic).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "resume-test-token";

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("wts-playbook")
}

/// A standalone sandbox process; killed on drop.
struct SandboxProcess {
    child: Child,
    url: String,
}

impl SandboxProcess {
    fn start(extra: &[&str]) -> SandboxProcess {
        let mut child = Command::new(bin())
            .args(["sandbox", "--listen", "127.0.0.1:0", "--token", TOKEN])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("listening line")
            .to_owned();
        SandboxProcess { child, url }
    }

    fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.url);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
    }

    /// Messages per session id of this test's sessions (not the seeded ones), from the state.
    fn messages_per_session(&self) -> HashMap<String, usize> {
        let state = self.get("/__sandbox/state");
        let mut out = HashMap::new();
        for m in state["messages"].as_array().unwrap() {
            let id = m["sessionId"].as_str().unwrap();
            if id.starts_with(TEST_PREFIX) {
                *out.entry(id.to_owned()).or_default() += 1;
            }
        }
        out
    }

    /// Journal entries: (method, path, status).
    fn journal(&self) -> Vec<(String, String, u64)> {
        let j = self.get("/__sandbox/journal?limit=1000000");
        let entries = j
            .as_array()
            .cloned()
            .or_else(|| j["entries"].as_array().cloned())
            .unwrap();
        entries
            .iter()
            .map(|e| {
                (
                    e["method"].as_str().unwrap().to_owned(),
                    e["path"].as_str().unwrap().to_owned(),
                    e["status"].as_u64().unwrap(),
                )
            })
            .collect()
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TEST_PREFIX: &str = "22222222-2222-4222-8222-";

fn uuid(i: usize) -> String {
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

fn run(dir: &Path, sandbox: &SandboxProcess, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.current_dir(dir)
        .env("WTS_BASE_URL", &sandbox.url)
        .env("WTS_API_TOKEN", TOKEN)
        .args(["run", "--yes", "-q"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
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
    let out = run(
        dir,
        sandbox,
        &[
            "--resume",
            from.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    )
    .arg(pb)
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    (read_report(&report), stderr)
}

fn report_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

/// Waits (bounded) until the report holds at least `n` lines.
fn wait_for_lines(path: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while report_lines(path) < n {
        assert!(Instant::now() < deadline, "the run did not progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn kill_9_then_resume_sends_each_message_at_most_once() {
    let sandbox = SandboxProcess::start(&["--latency-ms", "4", "--jitter-ms", "2"]);
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
    let sent_before = sandbox.messages_per_session();
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
    let per_session = sandbox.messages_per_session();
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
    let sandbox = SandboxProcess::start(&["--latency-ms", "5"]);
    let dir = tempfile::tempdir().unwrap();
    let n = 1500;
    let pb = send_playbook(dir.path(), n);
    let first = dir.path().join("first.json");
    let child = run(dir.path(), &sandbox, &["--report", first.to_str().unwrap()])
        .arg(&pb)
        .spawn()
        .unwrap();
    wait_for_lines(&first, 200);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
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
    let per_session = sandbox.messages_per_session();
    assert_eq!(per_session.len(), n);
    assert!(
        per_session.values().all(|c| *c == 1),
        "a message was sent twice"
    );
}

#[test]
#[allow(clippy::too_many_lines)] // TODO(issue 8): split
fn faults_after_commit_never_duplicate_sends_and_completes_are_retried() {
    let sandbox = SandboxProcess::start(&[
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
    let out = run(
        dir.path(),
        &sandbox,
        &["--report", report_path.to_str().unwrap()],
    )
    .arg(&pb)
    .output()
    .unwrap();
    // Every send whose answer was lost is verified with a read of the session's messages.
    assert_eq!(
        out.status.code(),
        Some(0),
        "verified sends make the run complete: {}",
        String::from_utf8_lossy(&out.stdout)
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
        sandbox.messages_per_session().values().all(|c| *c == 1),
        "no duplicate message"
    );
    let sends = sandbox
        .journal()
        .iter()
        .filter(|(m, p, _)| m == "POST" && p.ends_with("/message"))
        .count();
    assert_eq!(sends, n, "each send went out exactly once");

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
    let out = run(dir.path(), &sandbox, &["--report", "close.json"])
        .arg("close.yaml")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
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
        .journal()
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
    let sandbox = SandboxProcess::start(&[]);
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
        let out = run(dir.path(), &sandbox, &["--resume", path.to_str().unwrap()])
            .arg(&pb)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
    assert!(sandbox.journal().is_empty(), "nothing was sent");

    // A report truncated in the middle of a line is a correct partial read.
    let full = dir.path().join("full.json");
    let out = run(dir.path(), &sandbox, &["--report", full.to_str().unwrap()])
        .arg(&pb)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(&full).unwrap();
    let cut = text.lines().take(3).collect::<Vec<_>>().join("\n"); // header + 2 items
    let cut = format!("{cut}\n{}", &text.lines().nth(3).unwrap()[..10]); // half a line
    let truncated = dir.path().join("truncated.json");
    std::fs::write(&truncated, cut).unwrap();
    let before = sandbox.messages_per_session().len();
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
    assert_eq!(sandbox.messages_per_session().len(), before);
}

#[test]
#[allow(clippy::too_many_lines)] // TODO(issue 8): split
fn failed_csv_feeds_straight_back_as_the_input() {
    let sandbox = SandboxProcess::start(&["--fail-rate", "0.3", "--seed", "5"]);
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

    let out = run(
        dir.path(),
        &sandbox,
        &["--report", "first.json", "--failed-csv", "failed.csv"],
    )
    .arg("once.yaml")
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
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
    let out = run(
        dir.path(),
        &sandbox,
        &[
            "--report",
            "second.json",
            "--input",
            "people=failed.csv",
            "--failed-csv",
            "again.csv",
        ],
    )
    .arg("patient.yaml")
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("again.csv")).unwrap(),
        "session_id,name,_status,_error\n",
        "the columns of a fed-back file are not added twice"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("failed rows: none (again.csv has the header only)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
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
    let sandbox = SandboxProcess::start(&["--latency-ms", "800"]);
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
    let per_session = sandbox.messages_per_session();
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

// ---------------------------------------------------------------------------------------------
// Runs that continue correctly: a two-step job (tell, then close over `steps.tell.succeeded`)
// interrupted at many instants, resume chains, live reports, the README's canary flow, faults
// after commit, and a per-item pipeline. Every case counts what the SERVER received.

/// The two-step job of the README: tell each customer, then close the sessions told.
fn tell_then_close(dir: &Path, n: usize, concurrency: usize) -> PathBuf {
    let mut csv = String::from("session_id,name\n");
    for i in 0..n {
        csv.push_str(&format!("{},Customer {i}\n", uuid(i)));
    }
    std::fs::write(dir.join("recipients.csv"), csv).unwrap();
    let pb = dir.join("tell-close.yaml");
    std::fs::write(
        &pb,
        format!(
            r#"version: 1
name: tell-then-close
inputs:
  people: {{ csv: recipients.csv, key: session_id }}
settings: {{ concurrency: {concurrency}, rate_limit: "off", max_failures: 5% }}
steps:
  - id: tell
    action: session.send_text
    for_each: inputs.people
    with:
      session_id: "{{{{ row.session_id }}}}"
      text: "Goodbye {{{{ row.name }}}}"
  - id: close
    action: session.complete
    for_each: steps.tell.succeeded
    with:
      session_id: "{{{{ row.session_id }}}}"
      stop_bot_in_execution: true
"#
        ),
    )
    .unwrap();
    pb
}

/// How a run is interrupted.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Kill,
    CtrlC,
}

fn signal(child: &Child, stop: Stop) {
    let sig = match stop {
        Stop::Kill => "-KILL",
        Stop::CtrlC => "-INT",
    };
    let _ = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
}

/// Starts `run --report TO [--resume FROM...]` of `pb`.
fn spawn(dir: &Path, sandbox: &SandboxProcess, pb: &Path, to: &Path, from: &[&Path]) -> Child {
    let mut args = vec!["--report".to_owned(), to.to_str().unwrap().to_owned()];
    for f in from {
        args.push("--resume".into());
        args.push(f.to_str().unwrap().to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(dir, sandbox, &args).arg(pb).spawn().unwrap()
}

/// Waits for the child (bounded); returns its exit code (`None`: killed by a signal).
fn finish(mut child: Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run did not end");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What the sandbox holds for this test's sessions: messages per session, completed sessions.
fn server_view(sandbox: &SandboxProcess, text_prefix: &str) -> (HashMap<String, usize>, usize) {
    let state = sandbox.get("/__sandbox/state");
    let mut messages = HashMap::new();
    for m in state["messages"].as_array().unwrap() {
        let id = m["sessionId"].as_str().unwrap();
        if id.starts_with(TEST_PREFIX)
            && m["text"]
                .as_str()
                .is_some_and(|t| t.starts_with(text_prefix))
        {
            *messages.entry(id.to_owned()).or_default() += 1;
        }
    }
    let completed = state["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["id"].as_str().is_some_and(|i| i.starts_with(TEST_PREFIX))
                && s["status"] == "COMPLETED"
        })
        .count();
    (messages, completed)
}

/// The end state every interrupted-and-resumed two-step job must reach: each customer told
/// exactly once, each session COMPLETED, and the last report a complete account.
fn assert_done_once(sandbox: &SandboxProcess, n: usize, last: &Path) {
    let (messages, completed) = server_view(sandbox, "Goodbye ");
    let twice: Vec<_> = messages.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "customers told twice: {twice:?}");
    assert_eq!(messages.len(), n, "every customer told");
    assert_eq!(completed, n, "every session COMPLETED");
    let report = read_report(last);
    assert_eq!(report["outcome"], "completed", "{}", report["totals"]);
    assert_eq!(
        report["totals"]["succeeded"].as_u64(),
        Some(2 * n as u64),
        "{}",
        report["totals"]
    );
    assert_eq!(report["totals"]["unknown"], 0);
    assert_eq!(report["totals"]["failed"], 0);
}

/// Interrupts a run once the report has `after` more lines than it started with.
fn interrupt_after(child: &Child, report: &Path, base: usize, after: usize, stop: Stop) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while report_lines(report) < base + after {
        assert!(Instant::now() < deadline, "the run did not progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    signal(child, stop);
}

#[test]
fn two_step_job_interrupted_and_resumed_in_a_chain_tells_and_closes_each_once() {
    for (case, stops) in [
        // (instant as report lines past the carried ones, how), one per run of the chain
        (
            "kill, ctrl-c, kill",
            [(300, Stop::Kill), (1800, Stop::CtrlC), (900, Stop::Kill)],
        ),
        (
            "ctrl-c, kill, ctrl-c",
            [(1200, Stop::CtrlC), (150, Stop::Kill), (1500, Stop::CtrlC)],
        ),
    ] {
        let sandbox = SandboxProcess::start(&["--latency-ms", "2", "--jitter-ms", "2"]);
        let dir = tempfile::tempdir().unwrap();
        let n = 2000;
        let pb = tell_then_close(dir.path(), n, 16);
        let mut newest: Option<PathBuf> = None;
        for (k, (after, stop)) in stops.into_iter().enumerate() {
            let to = dir.path().join(format!("r{k}.json"));
            let from: Vec<&Path> = newest.iter().map(PathBuf::as_path).collect();
            let child = spawn(dir.path(), &sandbox, &pb, &to, &from);
            // The resumed report starts with the carried records: count past them.
            let base = newest.as_ref().map_or(1, |p| report_lines(p));
            interrupt_after(&child, &to, base, after, stop);
            let code = finish(child);
            match stop {
                Stop::CtrlC => assert_eq!(code, Some(3), "{case}: run {k}"),
                Stop::Kill => assert_eq!(code, None, "{case}: run {k}"),
            }
            newest = Some(to);
        }
        let last = dir.path().join("last.json");
        let child = spawn(
            dir.path(),
            &sandbox,
            &pb,
            &last,
            &[newest.as_deref().unwrap()],
        );
        assert_eq!(finish(child), Some(0), "{case}: the last resume completes");
        assert_done_once(&sandbox, n, &last);
        // Resuming the finished chain once more sends nothing.
        let posts_before = sandbox.journal().len();
        let again = dir.path().join("again.json");
        let child = spawn(dir.path(), &sandbox, &pb, &again, &[&last]);
        assert_eq!(finish(child), Some(0), "{case}");
        let sent: Vec<_> = sandbox.journal()[posts_before..]
            .iter()
            .filter(|(m, _, _)| m != "GET")
            .cloned()
            .collect();
        assert!(
            sent.is_empty(),
            "{case}: a finished run resumed sent {sent:?}"
        );
    }
}

#[test]
fn a_resumed_run_killed_in_its_first_milliseconds_leaves_a_complete_newest_report() {
    let sandbox = SandboxProcess::start(&["--latency-ms", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let n = 2000;
    let pb = tell_then_close(dir.path(), n, 16);
    let first = dir.path().join("r0.json");
    let child = spawn(dir.path(), &sandbox, &pb, &first, &[]);
    interrupt_after(&child, &first, 1, 1500, Stop::Kill);
    finish(child);
    let mut newest = first;
    // Killed 10, 50 and 100 ms into the resumed run: counted from its start, and from the
    // moment its report is in place (its first requests; a debug build takes longer than
    // 100 ms to validate and plan before that).
    let instants = [
        (10u64, false),
        (10, true),
        (50, true),
        (100, true),
        (50, false),
        (0, true),
    ];
    for (k, (ms, from_report)) in instants.into_iter().enumerate() {
        let to = dir.path().join(format!("early{k}.json"));
        let child = spawn(dir.path(), &sandbox, &pb, &to, &[&newest]);
        if from_report {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !to.exists() {
                assert!(
                    Instant::now() < deadline,
                    "the resumed run never wrote its report"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        std::thread::sleep(Duration::from_millis(ms));
        signal(&child, Stop::Kill);
        finish(child);
        // The newest report is the one the killed run left, if it got to put one in place
        // (it appears only once it holds everything carried over).
        eprintln!("killed after {ms} ms: report in place: {}", to.exists());
        if to.exists() {
            newest = to;
        }
    }
    let last = dir.path().join("last.json");
    let child = spawn(dir.path(), &sandbox, &pb, &last, &[&newest]);
    assert_eq!(finish(child), Some(0));
    assert_done_once(&sandbox, n, &last);
}

#[test]
fn a_report_belongs_to_one_live_run() {
    let sandbox = SandboxProcess::start(&["--latency-ms", "40"]);
    let dir = tempfile::tempdir().unwrap();
    let n = 200;
    let pb = tell_then_close(dir.path(), n, 2);
    let first = dir.path().join("live.json");
    let child = spawn(dir.path(), &sandbox, &pb, &first, &[]);
    wait_for_lines(&first, 4);
    let pid = child.id().to_string();
    // A resume of the live report, and a second run writing the same report: both refused.
    for args in [
        vec![
            "--resume",
            first.to_str().unwrap(),
            "--report",
            "other.json",
        ],
        vec!["--report", first.to_str().unwrap()],
    ] {
        let out = run(dir.path(), &sandbox, &args).arg(&pb).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("in use") && stderr.contains(&pid),
            "{args:?}: {stderr}"
        );
    }
    signal(&child, Stop::CtrlC);
    assert_eq!(finish(child), Some(3));
    // Only the live run sent anything: its report accounts for every message.
    let report = read_report(&first);
    let told = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["step"] == "tell" && i["status"] == "succeeded")
        .count();
    let (messages, _) = server_view(&sandbox, "Goodbye ");
    assert!(messages.values().all(|c| *c == 1));
    assert_eq!(messages.len(), told);
    // Once that run has ended, its report can be resumed (no lock is left behind).
    let next = dir.path().join("next.json");
    let child = spawn(dir.path(), &sandbox, &pb, &next, &[&first]);
    assert_eq!(finish(child), Some(0));
    assert_done_once(&sandbox, n, &next);
}

#[test]
fn the_readme_canary_flow_works_command_by_command() {
    let sandbox = SandboxProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let n = 300;
    let pb = tell_then_close(dir.path(), n, 8);
    let cmd = |args: &[&str]| {
        let out = run(dir.path(), &sandbox, args).arg(&pb).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // 1. The canary: five customers told, their five sessions closed.
    let (code, out) = cmd(&["--limit", "5", "--report", "reports/canary.json"]);
    assert_eq!(code, Some(0), "{out}");
    let (messages, completed) = server_view(&sandbox, "Goodbye ");
    assert_eq!((messages.len(), completed), (5, 5));
    // 2. The full run resumes the canary's report: the rest, once each.
    let (code, out) = cmd(&[
        "--resume",
        "reports/canary.json",
        "--report",
        "reports/full.json",
        "--failed-csv",
        "failed.csv",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert_done_once(&sandbox, n, &dir.path().join("reports/full.json"));
    // 3. Resuming the full run's report (as after an interruption) sends nothing more.
    let before = sandbox.journal().len();
    let (code, out) = cmd(&[
        "--resume",
        "reports/full.json",
        "--report",
        "reports/full-2.json",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(sandbox.journal()[before..]
        .iter()
        .all(|(m, _, _)| m == "GET"));
    // A full run that does NOT resume meets the canary's closed sessions: `unchanged`, not
    // failures, and not among `steps.close.succeeded`.
    let (code, out) = cmd(&["--report", "reports/fresh.json"]);
    // The messages go out again (a fresh run is a new run: that is why the README resumes).
    assert_eq!(code, Some(0), "{out}");
    let fresh = read_report(&dir.path().join("reports/fresh.json"));
    assert_eq!(
        fresh["totals"]["unchanged"].as_u64(),
        Some(n as u64),
        "{}",
        fresh["totals"]
    );
    assert_eq!(fresh["totals"]["failed"], 0);
    assert!(out.contains("unchanged"), "the summary shows them: {out}");
}

#[test]
fn faults_after_commit_on_sends_are_verified_never_duplicated() {
    let sandbox = SandboxProcess::start(&[
        "--fail-after-rate",
        "0.02",
        "--drop-after-rate",
        "0.01",
        "--seed",
        "7",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let n = 2000;
    let pb = tell_then_close(dir.path(), n, 16);
    let report_path = dir.path().join("faults.json");
    let child = spawn(dir.path(), &sandbox, &pb, &report_path, &[]);
    let code = finish(child);
    let report = read_report(&report_path);
    let items = report["items"].as_array().unwrap();
    let verified = items
        .iter()
        .filter(|i| i["step"] == "tell" && i["evidence"].is_object())
        .count();
    let unknown = items
        .iter()
        .filter(|i| i["step"] == "tell" && i["status"] == "unknown")
        .count();
    eprintln!(
        "faults after commit: {verified} verified, {unknown} left unknown ({}% resolved)",
        verified * 100 / (verified + unknown).max(1)
    );
    assert!(verified > 0, "faults were injected");
    // At least 95 % of the unknown outcomes resolved by verification.
    assert!(
        verified * 100 >= 95 * (verified + unknown),
        "{verified} verified, {unknown} unknown"
    );
    let (messages, _) = server_view(&sandbox, "Goodbye ");
    assert!(messages.values().all(|c| *c == 1), "a duplicate message");
    if unknown == 0 {
        assert_eq!(code, Some(0));
        assert_done_once(&sandbox, n, &report_path);
    }
}

#[test]
fn a_per_item_pipeline_interrupted_between_its_steps_resumes_where_it_stopped() {
    let sandbox = SandboxProcess::start(&["--latency-ms", "3"]);
    let dir = tempfile::tempdir().unwrap();
    let n = 600;
    let mut csv = String::from("phone\n");
    for i in 0..n {
        csv.push_str(&format!("+55119{i:08}\n"));
    }
    std::fs::write(dir.path().join("phones.csv"), csv).unwrap();
    let seq = "16c66fef-3afd-41d8-b864-70eefcc99e4d";
    let pb = dir.path().join("enrol.yaml");
    std::fs::write(
        &pb,
        format!(
            r#"version: 1
name: enrol
inputs:
  people: {{ csv: phones.csv, key: phone }}
settings: {{ concurrency: 8, rate_limit: "off" }}
steps:
  - id: per_contact
    for_each: inputs.people
    steps:
      - id: lookup
        action: contact.get_by_phone
        with: {{ phone_number: "{{{{ row.phone }}}}" }}
      - id: enrol
        action: sequence.add_contact
        with:
          sequence_id: "{seq}"
          contact_id: "{{{{ steps.lookup.output.id }}}}"
"#
        ),
    )
    .unwrap();
    let first = dir.path().join("p0.json");
    let child = spawn(dir.path(), &sandbox, &pb, &first, &[]);
    interrupt_after(&child, &first, 1, 500, Stop::Kill);
    finish(child);
    let second = dir.path().join("p1.json");
    let child = spawn(dir.path(), &sandbox, &pb, &second, &[&first]);
    assert_eq!(finish(child), Some(0));
    // Each contact was enrolled by exactly one request that changed state.
    let j = sandbox.get("/__sandbox/journal?limit=1000000");
    let entries = j
        .as_array()
        .cloned()
        .or_else(|| j["entries"].as_array().cloned())
        .unwrap();
    let mut adds: HashMap<String, usize> = HashMap::new();
    for e in &entries {
        if e["method"] == "POST"
            && e["path"] == format!("/chat/v1/sequence/{seq}/contact")
            && e["stateChanged"] == true
        {
            *adds
                .entry(e["body"]["contactId"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    assert_eq!(adds.len(), n, "every contact enrolled");
    assert!(adds.values().all(|c| *c == 1), "a contact enrolled twice");
    let report = read_report(&second);
    assert_eq!(
        report["totals"]["succeeded"].as_u64(),
        Some(2 * n as u64),
        "{}",
        report["totals"]
    );
}

/// Running the same resume command again after it was interrupted would rebuild its report
/// from the older one and forget what the interrupted resume sent: refused; resuming the
/// interrupted report itself continues correctly.
#[test]
fn an_interrupted_report_is_never_replaced_by_a_rerun_of_the_same_command() {
    let sandbox = SandboxProcess::start(&["--latency-ms", "3"]);
    let dir = tempfile::tempdir().unwrap();
    let n = 1000;
    let pb = tell_then_close(dir.path(), n, 8);
    let r1 = dir.path().join("r1.json");
    let child = spawn(dir.path(), &sandbox, &pb, &r1, &[]);
    interrupt_after(&child, &r1, 1, 300, Stop::Kill);
    finish(child);
    let r2 = dir.path().join("r2.json");
    let child = spawn(dir.path(), &sandbox, &pb, &r2, &[&r1]);
    let base = report_lines(&r1);
    interrupt_after(&child, &r2, base, 200, Stop::Kill);
    finish(child);
    // The same command again: refused, nothing sent.
    let before = sandbox.journal().len();
    let out = run(
        dir.path(),
        &sandbox,
        &[
            "--resume",
            r1.to_str().unwrap(),
            "--report",
            r2.to_str().unwrap(),
        ],
    )
    .arg(&pb)
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("did not finish") && stderr.contains("--resume"),
        "{stderr}"
    );
    assert_eq!(sandbox.journal().len(), before, "nothing was sent");
    // Resuming the interrupted report (into itself) finishes the job, once each.
    let child = spawn(dir.path(), &sandbox, &pb, &r2, &[&r2]);
    assert_eq!(finish(child), Some(0));
    assert_done_once(&sandbox, n, &r2);
}
