//! The sandbox stopped mid-run (never restarted: the run ends, unreachable, resumable; restarted
//! within the retry window: ridden through), and closed stdout or stderr.

use std::net::SocketAddr;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use wts_playbook::sandbox::{Sandbox, SandboxConfig};

use crate::support::{completed_id, uuids, wait_exit, wait_for_lines, Env};

use super::close_playbook;

use super::hostile::{list_playbook, list_then_close, sigint, spawn_run, the_error};

// 3. The sandbox stopped mid-run: never restarted → the run ends, unreachable, resumable;
//    restarted within the retry window → ridden through. Issue 11 item 4: the base URL is named.

#[test]
fn a_sandbox_that_never_comes_back_ends_the_run_as_unreachable() {
    let mut env = Env::new(SandboxConfig {
        latency_ms: 5,
        ..SandboxConfig::default()
    });
    let url = env.sb().url();
    let ids = uuids(400);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write(
        "close.yaml",
        &close_playbook(
            "  concurrency: 2\n  unreachable_after: 4\n  retry: { attempts: 2, backoff: 10ms, max_backoff: 20ms }",
        ),
    );
    let report = env.dir.path().join("gone.json");
    let report_path = report.clone();
    let child = spawn_run(&env, &url, &pb, &report, &[]);
    wait_for_lines(&report, 20);
    let sb = env.sandbox.take().unwrap();
    // Counted once the requests in flight at shutdown have been answered.
    let done_before = env
        .rt
        .block_on(sb.shutdown_with_journal())
        .iter()
        .filter(|e| completed_id(e).is_some())
        .count();
    let (code, stderr, took) = wait_exit(child, Duration::from_secs(20));
    assert_eq!(code, 3, "{stderr}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["outcome"], "aborted");
    let items = report["items"].as_array().unwrap();
    let failed = items.iter().filter(|i| i["status"] == "failed").count();
    assert!(
        (4..=8).contains(&failed),
        "stops after 4 in a row (and the ones in flight): {failed}"
    );
    assert!(items.len() < ids.len(), "no new items started");
    assert!(done_before > 0);
    let abort = format!("the server at {url} is unreachable");
    assert!(stderr.contains(&abort), "{stderr}");
    let err = items.iter().find(|i| i["status"] == "failed").unwrap()["error"]
        .as_str()
        .unwrap();
    assert!(err.contains(&url) && err.contains("WTS_BASE_URL"), "{err}");

    // Once the server is back, `--resume` finishes the job: the failed items were never sent,
    // and nothing done before is done again.
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let back = env
        .rt
        .block_on(Sandbox::start(addr, SandboxConfig::default()))
        .expect("the sandbox restarts on the same port");
    env.sandbox = Some(back);
    let resumed = env.run(
        &pb,
        Some("pn_x"),
        &["--resume", report_path.to_str().unwrap()],
    );
    assert_eq!(resumed.code, 0, "{}", resumed.context());
    let second = env
        .journal()
        .iter()
        .filter(|e| completed_id(e).is_some())
        .count();
    assert_eq!(
        second + done_before,
        ids.len(),
        "each session completed once"
    );
}

#[test]
fn a_sandbox_restarted_within_the_retry_window_is_ridden_through() {
    let mut env = Env::new(SandboxConfig {
        latency_ms: 5,
        ..SandboxConfig::default()
    });
    let url = env.sb().url();
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let ids = uuids(150);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write(
        "close.yaml",
        &close_playbook(
            "  concurrency: 2\n  unreachable_after: 2\n  retry: { attempts: 8, backoff: 200ms, max_backoff: 400ms }",
        ),
    );
    let report = env.dir.path().join("back.json");
    let child = spawn_run(&env, &url, &pb, &report, &["-q"]);
    wait_for_lines(&report, 20);
    let first = env.sandbox.take().unwrap();
    let mut done: Vec<String> = first
        .journal()
        .iter()
        .filter_map(|e| completed_id(e).map(str::to_owned))
        .collect();
    env.rt.block_on(first.shutdown());
    std::thread::sleep(Duration::from_millis(400));
    let second = env
        .rt
        .block_on(Sandbox::start(addr, SandboxConfig::default()))
        .expect("the sandbox restarts on the same port");
    env.sandbox = Some(second);
    let (code, stderr, _) = wait_exit(child, Duration::from_secs(30));
    assert_eq!(code, 0, "{stderr}");
    done.extend(
        env.journal()
            .iter()
            .filter_map(|e| completed_id(e).map(str::to_owned)),
    );
    let mut done_set: Vec<&String> = done.iter().collect();
    done_set.sort();
    done_set.dedup();
    // The journal snapshot of the first sandbox misses what it answered while shutting down
    // (at most the requests in flight, `concurrency: 2`).
    assert!(
        done_set.len() + 2 >= ids.len(),
        "{} of {}",
        done_set.len(),
        ids.len()
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["totals"]["succeeded"], ids.len());
}

#[test]
fn ctrl_c_ends_the_first_requests_retries() {
    let env = Env::new(SandboxConfig::default());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pb = env.write(
        "list.yaml",
        &list_then_close("", "").replace(
            "attempts: 2, backoff: 10ms, max_backoff: 20ms",
            "attempts: 6, backoff: 5s, max_backoff: 5s",
        ),
    );
    let report = env.dir.path().join("check.json");
    let child = spawn_run(
        &env,
        &format!("http://127.0.0.1:{port}"),
        &pb,
        &report,
        &["-q"],
    );
    std::thread::sleep(Duration::from_millis(700));
    sigint(&child);
    let (code, stderr, took) = wait_exit(child, Duration::from_secs(10));
    assert_eq!(code, 3, "{stderr}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["outcome"], "aborted");
}

#[test]
fn validating_many_steps_stays_linear() {
    // 6,000 chained steps: a copy of every earlier step per step (quadratic) took ~20 s here.
    let env = Env::new(SandboxConfig::default());
    let mut text = String::from("version: 1\nname: many\nsteps:\n");
    for i in 0..6000 {
        text.push_str(&format!(
            "  - id: s{i}\n    action: session.send_text\n    with:\n      session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6\n      text: \"{{{{ steps.s{}.output.id }}}}\"\n",
            i.max(1) - 1
        ));
    }
    let text = text.replacen("{{ steps.s0.output.id }}", "first", 1);
    env.write("many.yaml", &text);
    let started = Instant::now();
    let out = assert_cmd::Command::cargo_bin("wts-playbook")
        .unwrap()
        .current_dir(env.dir.path())
        .args(["validate", "many.yaml"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("6000 steps"));
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_refused_connection_names_the_base_url_and_a_bad_url_is_invalid_input() {
    let env = Env::new(SandboxConfig::default());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let pb = list_playbook(&env, "", "");
    let run = env.run_at(&url, &pb, Some("pn_x"), &[]);
    assert_eq!(run.code, 1, "{}", run.context());
    let err = the_error(&run.items(), "open");
    let hint = format!("the server at {url} could not be reached; WTS_BASE_URL sets it");
    assert!(err.contains(&hint), "{err}");
    assert!(
        run.stdout.contains(&hint),
        "the summary's first errors: {}",
        run.stdout
    );
    for bad in ["htp://api.wts.chat", "api.wts.chat", "https://"] {
        let run = env.run_at(bad, &pb, Some("pn_x"), &[]);
        assert_eq!(run.code, 2, "{bad}: {}", run.context());
        assert!(run.stderr.contains("WTS_BASE_URL"), "{}", run.stderr);
        assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Closed stdout or stderr: not a crash; the run finishes, the report is whole.

fn closed_pipe_run(env: &Env, close_stdout: bool) {
    let ids = uuids(30);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook("  concurrency: 4"));
    let report = env.dir.path().join(format!("pipe-{close_stdout}.json"));
    let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("wts-playbook"));
    cmd.current_dir(env.dir.path())
        .env_remove("WTS_PLAYBOOK_LOG")
        .env("WTS_BASE_URL", env.sb().url())
        .env("WTS_API_TOKEN", "pn_pipe")
        .args(["run", pb.to_str().unwrap(), "--yes", "-v", "--report"])
        .arg(&report)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // The reading end goes away before the process writes anything.
    if close_stdout {
        drop(child.stdout.take());
    } else {
        drop(child.stderr.take());
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "closed stdout: {close_stdout}");
    let text = std::fs::read_to_string(&report).unwrap();
    let report: Value = serde_json::from_str(&text).expect("the report is whole");
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["totals"]["succeeded"], 30);
    assert!(!env
        .dir
        .path()
        .join(format!("pipe-{close_stdout}.json.inflight"))
        .exists());
}

#[test]
fn a_closed_stdout_or_stderr_is_not_a_crash() {
    let env = Env::new(SandboxConfig::default());
    closed_pipe_run(&env, true);
    closed_pipe_run(&env, false);
    let done = env
        .journal()
        .iter()
        .filter(|e| completed_id(e).is_some())
        .count();
    assert_eq!(done, 60);
    // `validate … | true`
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("wts-playbook"))
        .current_dir(env.dir.path())
        .args(["validate", "close.yaml", "close.yaml", "close.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
