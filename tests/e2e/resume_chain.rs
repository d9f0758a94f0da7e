//! Runs that continue correctly: a two-step job interrupted at many instants and resumed in a
//! chain, live reports, the README's canary flow, faults after commit, a per-item pipeline.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::support::{finish, read_report, report_lines, wait_for_lines, SandboxProcess, Served};

use super::resume::{run, run_to_end, start, uuid, TEST_PREFIX};

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

fn stop_run(child: &Child, stop: Stop) {
    let sig = match stop {
        Stop::Kill => "-KILL",
        Stop::CtrlC => "-INT",
    };
    let _ = crate::support::signal(child, sig);
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
    stop_run(child, stop);
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
        let sandbox = start(&["--latency-ms", "2", "--jitter-ms", "2"]);
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
        let posts_before = sandbox.journal_rows().len();
        let again = dir.path().join("again.json");
        let child = spawn(dir.path(), &sandbox, &pb, &again, &[&last]);
        assert_eq!(finish(child), Some(0), "{case}");
        let sent: Vec<_> = sandbox.journal_rows()[posts_before..]
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
    let sandbox = start(&["--latency-ms", "2"]);
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
        stop_run(&child, Stop::Kill);
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
    let sandbox = start(&["--latency-ms", "40"]);
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
        let out = run_to_end(dir.path(), &sandbox, &pb, &args);
        let stderr = &out.stderr;
        assert_eq!(Some(out.code), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("in use") && stderr.contains(&pid),
            "{args:?}: {stderr}"
        );
    }
    stop_run(&child, Stop::CtrlC);
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
    let sandbox = start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let n = 300;
    let pb = tell_then_close(dir.path(), n, 8);
    let cmd = |args: &[&str]| {
        let out = run_to_end(dir.path(), &sandbox, &pb, args);
        (Some(out.code), out.stdout.clone())
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
    let before = sandbox.journal_rows().len();
    let (code, out) = cmd(&[
        "--resume",
        "reports/full.json",
        "--report",
        "reports/full-2.json",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(sandbox.journal_rows()[before..]
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
    let sandbox = start(&[
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
    let sandbox = start(&["--latency-ms", "3"]);
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
    let sandbox = start(&["--latency-ms", "3"]);
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
    let before = sandbox.journal_rows().len();
    let out = run_to_end(
        dir.path(),
        &sandbox,
        &pb,
        &[
            "--resume",
            r1.to_str().unwrap(),
            "--report",
            r2.to_str().unwrap(),
        ],
    );
    let stderr = &out.stderr;
    assert_eq!(Some(out.code), Some(2), "{stderr}");
    assert!(
        stderr.contains("did not finish") && stderr.contains("--resume"),
        "{stderr}"
    );
    assert_eq!(sandbox.journal_rows().len(), before, "nothing was sent");
    // Resuming the interrupted report (into itself) finishes the job, once each.
    let child = spawn(dir.path(), &sandbox, &pb, &r2, &[&r2]);
    assert_eq!(finish(child), Some(0));
    assert_done_once(&sandbox, n, &r2);
}
