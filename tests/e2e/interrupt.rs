//! A Ctrl-C in the first instants of a real run (while its CSV is checked, during the
//! preflight, between phases) is never lost: the run ends with exit 3 and the server received
//! nothing. (Each phase once had its own handler, and a Ctrl-C between two went unseen while
//! the writes went on.)

use std::process::Stdio;
use std::time::Duration;

use crate::support::{against_std, signal, uuids, wait_exit, SandboxProcess, Served};

#[test]
fn a_ctrl_c_while_the_run_is_checked_or_planned_is_never_lost() {
    let sb = SandboxProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let ids = uuids(60_000);
    let mut csv = String::from("session_id\n");
    for id in &ids {
        csv.push_str(id);
        csv.push('\n');
    }
    std::fs::write(dir.path().join("ids.csv"), csv).unwrap();
    std::fs::write(
        dir.path().join("close.yaml"),
        "version: 1\nname: close\ninputs:\n  ids: { csv: ids.csv, key: session_id }\nsteps:\n  - id: close\n    action: session.complete\n    for_each: inputs.ids\n    with:\n      session_id: \"{{ row.session_id }}\"\n",
    )
    .unwrap();
    for (n, after) in [150u64, 300, 500].into_iter().enumerate() {
        let child = against_std(dir.path(), &sb.url(), Some("pn_x"))
            .args(["run", "close.yaml", "--yes", "-q", "--report"])
            .arg(format!("r{n}.json"))
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(after));
        assert!(signal(&child, "-INT"));
        let (code, stderr, _) = wait_exit(child, Duration::from_secs(30));
        let sent = sb.journal_rows().len();
        // Interrupted before the first request or at most a few in flight: never the run
        // going on as if nothing happened.
        assert_eq!(code, 3, "Ctrl-C after {after} ms: {stderr}");
        assert!(stderr.contains("interrupted (Ctrl-C)"), "{stderr}");
        assert!(
            sent < 1_000,
            "Ctrl-C after {after} ms: {sent} requests went on"
        );
    }
}
