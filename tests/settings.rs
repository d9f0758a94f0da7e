//! How settings resolve, end to end: a step's own `rate_limit` is enforced on top of the run's
//! shared limiter, never instead of it (README, "How a run behaves": "Settings and what
//! overrides what"). The real binary against the sandbox over loopback; the sandbox's journal
//! says when each request arrived.
//!
//! TODO(issue 8): move onto the shared test-support module once it is on main.

use std::time::Duration;

use assert_cmd::Command;
use wts_playbook::sandbox::{JournalEntry, Sandbox, SandboxConfig};

/// Runs a playbook closing `n` sessions with `settings` and the step's `step_settings`, and
/// returns the arrival times (ms since the first) of the closes the sandbox saw.
fn close_arrivals(n: usize, settings: &str, step_settings: &str) -> Vec<f64> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let sandbox = rt
        .block_on(Sandbox::start(
            "127.0.0.1:0".parse().unwrap(),
            SandboxConfig::default(),
        ))
        .expect("sandbox starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut csv = String::from("session_id\n");
    for _ in 0..n {
        csv.push_str(&uuid::Uuid::new_v4().to_string());
        csv.push('\n');
    }
    std::fs::write(dir.path().join("ids.csv"), csv).expect("csv");
    let playbook = format!(
        "version: 1\nname: limits\ninputs:\n  ids: {{ csv: ids.csv, key: session_id }}\n\
         settings: {settings}\nsteps:\n  - id: close\n    action: session.complete\n    \
         for_each: inputs.ids\n{step_settings}    with:\n      session_id: \"{{{{ row.session_id }}}}\"\n"
    );
    std::fs::write(dir.path().join("p.yaml"), playbook).expect("playbook");
    let out = Command::cargo_bin("wts-playbook")
        .expect("binary built")
        .current_dir(dir.path())
        .env_remove("WTS_PLAYBOOK_LOG")
        .env("WTS_API_TOKEN", "pn_settings")
        .env("WTS_BASE_URL", sandbox.url())
        .args(["run", "p.yaml", "--yes", "-q", "--report", "r.json"])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("binary runs");
    let journal: Vec<JournalEntry> = sandbox.journal();
    rt.block_on(sandbox.shutdown());
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut at: Vec<jiff::Timestamp> = journal
        .iter()
        .filter(|e| e.method == "PUT" && e.path.ends_with("/complete") && e.status == 200)
        .map(|e| e.at)
        .collect();
    at.sort();
    assert_eq!(at.len(), n, "every session closed once: {journal:#?}");
    at.iter()
        .map(|t| (*t - at[0]).total(jiff::Unit::Millisecond).expect("ms"))
        .collect()
}

/// The shortest time any `count + 1` consecutive arrivals took: under a `count/window` limit it
/// is at least the window.
fn tightest(arrivals: &[f64], count: usize) -> f64 {
    arrivals
        .windows(count + 1)
        .map(|w| w[count] - w[0])
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn a_steps_rate_limit_applies_on_top_of_the_runs_and_the_runs_still_binds() {
    // The step's own limit is the tighter: it binds, though the run's would allow more.
    let a = close_arrivals(
        9,
        "{ concurrency: 8, rate_limit: 100/s }",
        "    rate_limit: 2/200ms\n",
    );
    assert!(tightest(&a, 2) >= 199.0, "2/200ms not kept: {a:?}");
    // The run's limit is the tighter: a step with a looser limit of its own does not escape it.
    let b = close_arrivals(
        9,
        "{ concurrency: 8, rate_limit: 3/300ms }",
        "    rate_limit: 100/s\n",
    );
    assert!(tightest(&b, 3) >= 299.0, "3/300ms not kept: {b:?}");
}
