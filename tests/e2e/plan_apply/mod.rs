//! Plan and apply (README "Plan and apply"), against a standalone sandbox process whose state
//! and journal are checked afterwards: a list-driven plan over many pages counts exactly the
//! sandbox's sessions; sessions changed between plan and apply are `drifted` and nothing
//! outside the plan is sent; a changed, expired or foreign plan is refused with exit 4 and zero
//! requests; `kill -9` during apply then `--resume` changes each session once; a secret var
//! never reaches the plan file and apply still sends it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{against_std, SandboxProcess, Served};

const TOKEN: &str = "plan-apply-token";

fn sandbox(extra: &[&str]) -> SandboxProcess {
    let mut args = vec!["--token", TOKEN];
    args.extend_from_slice(extra);
    SandboxProcess::start(&args)
}

/// The binary, pointed at the sandbox with its token.
fn cmd(sb: &SandboxProcess) -> std::process::Command {
    against_std(Path::new("."), &sb.url, Some(TOKEN))
}

/// The department the test's sessions wait in (fresh: no seeded session is in it).
const FROM: &str = "33333333-3333-4333-8333-000000000001";
const TO: &str = "33333333-3333-4333-8333-000000000002";
const PREFIX: &str = "44444444-4444-4444-8444-";

fn session(i: usize) -> String {
    format!("{PREFIX}{i:012}")
}

/// Puts `n` PENDING sessions in `FROM`, through the API (the binary itself, `run`).
fn seed(sb: &SandboxProcess, dir: &Path, n: usize) {
    let mut csv = String::from("session_id\n");
    for i in 0..n {
        csv.push_str(&session(i));
        csv.push('\n');
    }
    std::fs::write(dir.join("seed.csv"), csv).unwrap();
    let pb = dir.join("seed.yaml");
    std::fs::write(
        &pb,
        format!(
            r#"version: 1
name: seed
inputs:
  s: {{ csv: seed.csv, key: session_id }}
settings: {{ concurrency: 16, rate_limit: "off" }}
steps:
  - id: into
    action: session.transfer
    for_each: inputs.s
    with: {{ session_id: "{{{{ row.session_id }}}}", new_department_id: {FROM} }}
  - id: wait
    action: session.change_status
    for_each: inputs.s
    with: {{ session_id: "{{{{ row.session_id }}}}", new_status: PENDING }}
"#
        ),
    )
    .unwrap();
    let out = cmd(sb)
        .args(["run", pb.to_str().unwrap(), "--yes", "-q", "--report"])
        .arg(dir.join("seed-report.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sets sessions' status through the API (a change someone made between plan and apply).
fn set_status(sb: &SandboxProcess, dir: &Path, ids: &[String], status: &str) {
    let csv: String = std::iter::once("session_id".to_owned())
        .chain(ids.iter().cloned())
        .map(|l| l + "\n")
        .collect();
    let name = format!("change-{status}");
    std::fs::write(dir.join(format!("{name}.csv")), csv).unwrap();
    let pb = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &pb,
        format!(
            r#"version: 1
name: {name}
inputs:
  s: {{ csv: {name}.csv, key: session_id }}
settings: {{ rate_limit: "off" }}
steps:
  - id: set
    action: session.change_status
    for_each: inputs.s
    with: {{ session_id: "{{{{ row.session_id }}}}", new_status: {status} }}
"#
        ),
    )
    .unwrap();
    let out = cmd(sb)
        .args(["run", pb.to_str().unwrap(), "--yes", "-q", "--report"])
        .arg(dir.join(format!("{name}-report.json")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// List the sessions waiting (or being served) in `FROM`, move the waiting ones to `TO`.
fn move_playbook(dir: &Path) -> PathBuf {
    let pb = dir.join("move.yaml");
    std::fs::write(
        &pb,
        format!(
            r#"version: 1
name: move-waiting
vars:
  from: {FROM}
  to: {TO}
settings: {{ concurrency: 8, rate_limit: "off" }}
steps:
  - id: waiting
    action: session.list
    paginate: all
    with:
      status: [PENDING, IN_PROGRESS]
      department_id: "{{{{ vars.from }}}}"
      page_size: 50
  - id: move
    action: session.transfer
    for_each: steps.waiting.output.items
    when: item.status == "PENDING"
    with:
      session_id: "{{{{ item.id }}}}"
      new_department_id: "{{{{ vars.to }}}}"
"#
        ),
    )
    .unwrap();
    pb
}

fn plan_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn report_items(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["items"].as_array().unwrap().clone()
}

/// Journal entries after `since`: (method, path).
fn writes_since(sb: &SandboxProcess, since: usize) -> Vec<(String, String)> {
    sb.journal_rows()
        .into_iter()
        .skip(since)
        .filter(|(m, _, _)| m != "GET")
        .map(|(m, p, _)| (m, p))
        .collect()
}

#[test]
fn a_list_driven_plan_counts_the_sandbox_and_apply_skips_exactly_the_drifted() {
    let sb = sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    seed(&sb, dir.path(), 300);
    let (plan, lines, planned) = plan_300(&sb, dir.path());

    // 10 % changed between plan and apply: 15 taken by an agent (still listed, field read by
    // `when` changed), 15 completed (gone from the listing).
    let taken: Vec<String> = (0..15).map(session).collect();
    let closed: Vec<String> = (100..115).map(session).collect();
    set_status(&sb, dir.path(), &taken, "IN_PROGRESS");
    set_status(&sb, dir.path(), &closed, "COMPLETED");
    let expected: std::collections::BTreeSet<&String> = taken.iter().chain(&closed).collect();
    apply_300(&sb, dir.path(), &plan, &lines, &planned, &expected);
}

/// The plan of 300 waiting sessions over six pages: its lines and the keys it plans.
fn plan_300(
    sb: &SandboxProcess,
    dir: &Path,
) -> (PathBuf, Vec<Value>, std::collections::BTreeSet<String>) {
    let pb = move_playbook(dir);
    let plan = dir.join("move.plan.jsonl");
    let before = sb.journal_rows().len();
    let out = cmd(sb)
        .args(["plan", pb.to_str().unwrap(), "--out"])
        .arg(&plan)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The plan read every page (300 / 50 = 6) and sent no write.
    let during = sb.journal_rows().split_off(before);
    assert_eq!(during.len(), 6, "{during:?}");
    assert!(during.iter().all(|(m, _, _)| m == "GET"));
    assert!(stdout.contains("move"), "{stdout}");
    assert!(stdout.contains("300"), "{stdout}");
    assert!(stdout.contains(&sb.url), "{stdout}");
    let lines = plan_lines(&plan);
    assert_eq!(lines[0]["type"], "header");
    assert_eq!(lines.len(), 302);
    let trailer = &lines[301];
    assert_eq!(trailer["writes"], 300);
    assert_eq!(trailer["actions"]["session.transfer"], 300);
    // Counts equal the sandbox's state: every PENDING session of the department, once.
    let state = sb.get("/__sandbox/state");
    let pending: std::collections::BTreeSet<String> = state["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["departmentId"] == FROM && s["status"] == "PENDING")
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let planned: std::collections::BTreeSet<String> = lines[1..301]
        .iter()
        .map(|w| w["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(planned, pending);
    assert_eq!(lines[1]["source"]["step"], "waiting");
    assert_eq!(lines[1]["reads"]["item.status"], "PENDING");
    (plan, lines, planned)
}

/// Applies the plan of 300 after `expected` drifted: exactly those are `drifted`, the rest
/// applied once each, and the report reconciles with the plan.
fn apply_300(
    sb: &SandboxProcess,
    dir: &Path,
    plan: &Path,
    lines: &[Value],
    planned: &std::collections::BTreeSet<String>,
    expected: &std::collections::BTreeSet<&String>,
) {
    let trailer = &lines[301];
    let before = sb.journal_rows().len();
    let report = dir.join("apply.json");
    let out = cmd(sb)
        .args(["apply", plan.to_str().unwrap(), "-q", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let items = report_items(&report);
    let status_of: HashMap<String, String> = items
        .iter()
        .filter(|i| i["step"] == "move")
        .map(|i| {
            (
                i["key"].as_str().unwrap().to_owned(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let drifted: std::collections::BTreeSet<&String> = status_of
        .iter()
        .filter(|(_, s)| *s == "drifted")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(&drifted, expected);
    assert_eq!(
        status_of.values().filter(|s| *s == "succeeded").count(),
        270
    );
    assert!(items
        .iter()
        .filter(|i| i["step"] == "move")
        .all(|i| i["seq"].is_u64()));
    // The journal: exactly the 270 planned, undrifted transfers, each once, nothing else.
    let writes = writes_since(sb, before);
    assert_eq!(writes.len(), 270, "{writes:?}");
    let mut per_session: HashMap<String, usize> = HashMap::new();
    for (m, p) in &writes {
        assert_eq!(m, "PUT");
        let id = p
            .trim_start_matches("/chat/v1/session/")
            .trim_end_matches("/transfer");
        assert!(planned.contains(id), "{p} is not in the plan");
        assert!(!expected.contains(&id.to_owned()), "{p} drifted");
        *per_session.entry(id.to_owned()).or_default() += 1;
    }
    assert!(per_session.values().all(|&n| n == 1));
    // The report names the plan; its totals reconcile with the plan's count.
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(v["plan"]["plan_id"], lines[0]["plan_id"]);
    assert_eq!(v["plan"]["hash"], trailer["chain"]);
    assert_eq!(v["plan"]["planned"], 300);
    let t = &v["plan_totals"];
    assert_eq!(t["succeeded"], 270, "{t}");
    assert_eq!(t["drifted"], 30, "{t}");
    let sum = ["succeeded", "unchanged", "drifted", "failed", "unknown"]
        .iter()
        .map(|k| t[k].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert_eq!(sum, 300, "{t}");
}

/// Makes a plan of `move_playbook` over `n` sessions; returns its path.
fn make_plan(sb: &SandboxProcess, dir: &Path, extra: &[&str]) -> PathBuf {
    let pb = move_playbook(dir);
    let plan = dir.join(format!("move-{}.plan.jsonl", extra.len()));
    let out = cmd(sb)
        .args(["plan", pb.to_str().unwrap(), "-q", "--out"])
        .arg(&plan)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    plan
}

/// Runs `apply` and says its exit code, stderr and how many requests the sandbox saw.
fn apply_counting(
    sb: &SandboxProcess,
    plan: &Path,
    env: &[(&str, &str)],
) -> (Option<i32>, String, usize) {
    let before = sb.journal_rows().len();
    let mut cmd = cmd(sb);
    cmd.args(["apply", plan.to_str().unwrap(), "-q", "--report"])
        .arg(plan.with_extension("report.json"))
        .arg("--overwrite");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let sent = sb.journal_rows().len() - before;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        sent,
    )
}

#[test]
fn a_changed_expired_foreign_or_unknown_plan_is_refused_with_exit_4_and_no_request() {
    let sb = sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    seed(&sb, dir.path(), 20);
    let plan = make_plan(&sb, dir.path(), &[]);
    let text = std::fs::read_to_string(&plan).unwrap();

    // One byte of one write changed (another department).
    let edited = dir.path().join("edited.plan.jsonl");
    let at = text.find(TO).unwrap();
    let mut bytes = text.clone().into_bytes();
    bytes[at] = if bytes[at] == b'3' { b'4' } else { b'3' };
    std::fs::write(&edited, &bytes).unwrap();
    let (code, err, sent) = apply_counting(&sb, &edited, &[]);
    assert_eq!((code, sent), (Some(4), 0), "{err}");
    assert!(err.contains("has changed since it was made"), "{err}");

    // Another token: another account.
    let (code, err, sent) = apply_counting(&sb, &plan, &[("WTS_API_TOKEN", "someone-elses-token")]);
    assert_eq!((code, sent), (Some(4), 0), "{err}");
    assert!(err.contains("another account"), "{err}");
    assert!(!err.contains("someone-elses-token"), "{err}");

    // Another base URL.
    let (code, err, sent) = apply_counting(&sb, &plan, &[("WTS_BASE_URL", "http://127.0.0.1:9")]);
    assert_eq!((code, sent), (Some(4), 0), "{err}");
    assert!(err.contains("was made for"), "{err}");

    // A format this build does not know.
    let future = dir.path().join("future.plan.jsonl");
    std::fs::write(
        &future,
        text.replacen("wts-playbook-plan/1", "wts-playbook-plan/2", 1),
    )
    .unwrap();
    let (code, err, sent) = apply_counting(&sb, &future, &[]);
    assert_eq!((code, sent), (Some(4), 0), "{err}");
    assert!(err.contains("format"), "{err}");

    // Expired.
    let short = make_plan(&sb, dir.path(), &["--expires-in", "50ms"]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let (code, err, sent) = apply_counting(&sb, &short, &[]);
    assert_eq!((code, sent), (Some(4), 0), "{err}");
    assert!(err.contains("expired"), "{err}");

    // The untouched plan still applies (so the refusals above were the plan's, not the setup's).
    let (code, err, sent) = apply_counting(&sb, &plan, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(sent, 1 + 20, "one listing page, twenty transfers: {err}");
}

#[test]
fn past_max_drift_apply_stops_before_the_first_write() {
    let sb = sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    seed(&sb, dir.path(), 20);
    let plan = make_plan(&sb, dir.path(), &[]);
    // 3 of 20 (15 %) taken by agents.
    set_status(
        &sb,
        dir.path(),
        &(0..3).map(session).collect::<Vec<_>>(),
        "IN_PROGRESS",
    );
    let before = sb.journal_rows().len();
    let (code, err, _) = apply_counting(&sb, &plan, &[]);
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains("3 of 20 planned writes drifted, more than --max-drift 10%"),
        "{err}"
    );
    assert!(writes_since(&sb, before).is_empty());
    // --no-refresh skips the check: no stop, yet the drifted writes are still never sent.
    let out = cmd(&sb)
        .args([
            "apply",
            plan.to_str().unwrap(),
            "-q",
            "--no-refresh",
            "--report",
        ])
        .arg(dir.path().join("no-refresh.json"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let writes = writes_since(&sb, before);
    assert_eq!(writes.len(), 17, "{writes:?}");
    assert!(writes
        .iter()
        .all(|(_, p)| !(0..3).any(|i| p.contains(&session(i)))));
    let items = report_items(&dir.path().join("no-refresh.json"));
    assert_eq!(items.iter().filter(|i| i["status"] == "drifted").count(), 3);
}

/// Sends a message into every waiting session of `FROM` (a write that must never repeat).
fn greet_playbook(dir: &Path) -> PathBuf {
    let pb = dir.join("greet.yaml");
    std::fs::write(
        &pb,
        format!(
            r#"version: 1
name: greet-waiting
vars:
  partner_key: "{{{{ env.PARTNER_KEY }}}}"
settings: {{ concurrency: 8, rate_limit: "off", secrets: [partner_key] }}
steps:
  - id: waiting
    action: session.list
    paginate: all
    with: {{ status: [PENDING], department_id: {FROM}, page_size: 50 }}
  - id: greet
    action: session.send_text
    for_each: steps.waiting.output.items
    with:
      session_id: "{{{{ item.id }}}}"
      text: "Hello {{{{ item.id[:8] }}}}, code {{{{ vars.partner_key | upper }}}}"
"#
        ),
    )
    .unwrap();
    pb
}

mod once;
mod secrets_and_later_writes;
