//! Secrets never appear: the token and every `settings.secrets` value are searched for in every
//! byte the binary prints and every file it writes, in every mode (validate, dry run, sandbox
//! run, real run with failures and retries, verbose and JSON logs, a refused token).

use std::path::Path;

use wts_playbook::sandbox::SandboxConfig;

use crate::support::{against, cmd, Env, Run, Served};

const TOKEN: &str = "pn_live_TOKEN_4f9c2b7e1d";
const SECRET: &str = "s3cr3t-partner-key-8812";

fn write_playbook(dir: &Path) -> std::path::PathBuf {
    std::fs::write(
        dir.join("rows.csv"),
        "session_id,ticket\n\
         11111111-1111-4111-8111-000000000001,T-1\n\
         11111111-1111-4111-8111-000000000002,T-2\n",
    )
    .unwrap();
    // A row whose id cannot be converted.
    std::fs::write(dir.join("bad.csv"), "session_id,ticket\nnot-a-uuid,T-3\n").unwrap();
    let pb = dir.join("secret.yaml");
    std::fs::write(
        &pb,
        r#"version: 1
name: secret-test
inputs:
  rows: { csv: rows.csv, key: session_id }
vars:
  partner_key: "{{ env.PARTNER_KEY }}"
settings:
  secrets: [partner_key]
  retry: { attempts: 2, backoff: 10ms, max_backoff: 20ms }
  rate_limit: "off"
steps:
  - id: tell
    action: session.send_text
    for_each: inputs.rows
    with:
      session_id: "{{ row.session_id }}"
      text: "ticket {{ row.ticket }} key={{ vars.partner_key }} token-echo"
  - id: fetch
    action: http
    with:
      method: GET
      path: "/core/v1/tag"
      query: { key: "{{ vars.partner_key }}" }
"#,
    )
    .unwrap();
    pb
}

/// Every file below `dir`, and the captured output, must be free of both secrets.
fn assert_clean(what: &str, out: &Run, dir: &Path) {
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(!text.contains(TOKEN), "{what}: token in {name}:\n{text}");
        assert!(!text.contains(SECRET), "{what}: secret in {name}:\n{text}");
    }
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(TOKEN),
            "{what}: token in {}",
            entry.display()
        );
        assert!(
            !text.contains(SECRET),
            "{what}: secret in {}:\n{text}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The binary in `dir` with the token and the secret in its environment, against `base_url`
/// (none: no base URL), run to its end with `ARGS [PLAYBOOK]`.
fn run_in(dir: &Path, base_url: Option<&str>, args: &[&str], pb: Option<&Path>) -> Run {
    let mut c = if let Some(url) = base_url {
        against(dir, url, Some(TOKEN))
    } else {
        let mut c = cmd(dir);
        c.env("WTS_API_TOKEN", TOKEN);
        c
    };
    Run::of(c.env("PARTNER_KEY", SECRET).args(args).args(pb))
}

#[test]
fn secrets_never_appear_in_any_mode() {
    let dir = tempfile::tempdir().unwrap();
    let pb = write_playbook(dir.path());
    let run = |base_url: Option<&str>, args: &[&str]| run_in(dir.path(), base_url, args, Some(&pb));

    let out = run(None, &["validate"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_clean("validate", &out, dir.path());

    // Dry run over good rows: the preview shows the rendered text, redacted.
    let out = run(None, &["run", "--dry-run", "-vv", "--report", "dry.json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("key=[redacted]"), "{out:?}");
    assert_clean("dry run", &out, dir.path());

    // A row that cannot be planned: reported (redacted) by the dry run and by the real run's
    // preflight, which sends nothing.
    for (mode, report) in [
        ("--dry-run", "dry-bad.json"),
        ("--sandbox", "preflight.json"),
    ] {
        let out = run(
            None,
            &[
                "run",
                mode,
                "--yes",
                "-vv",
                "--report",
                report,
                "--input",
                "rows=bad.csv",
            ],
        );
        assert_eq!(out.code, 2, "{mode}: {}", out.stderr);
        assert_clean(mode, &out, dir.path());
    }

    // The built-in sandbox.
    let out = run(
        None,
        &[
            "run",
            "--sandbox",
            "--yes",
            "-vvv",
            "--report",
            "sandbox.json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_clean("sandbox run", &out, dir.path());

    real_run_and_report_views(&dir, &pb);

    // A refused token: the error names the problem, not the token.
    let refusing = Env::new(SandboxConfig {
        token: Some("another-token-entirely".into()),
        ..SandboxConfig::default()
    });
    let out = run(
        Some(&refusing.url()),
        &["run", "--yes", "-vvv", "--report", "refused.json"],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("401"), "{out:?}");
    assert_clean("refused token", &out, dir.path());
}

/// A real run against a local sandbox with faults (errors and retries logged, JSON logs, every
/// view written), then the views rendered again by `report`; the secret was really sent.
fn real_run_and_report_views(dir: &tempfile::TempDir, pb: &Path) {
    let run = |base_url: Option<&str>, args: &[&str]| run_in(dir.path(), base_url, args, Some(pb));
    // A real run (against a local sandbox with faults, so errors and retries are logged), JSON logs.
    let served = Env::new(SandboxConfig {
        token: Some(TOKEN.into()),
        fail_rate: 0.3,
        seed: 7,
        ..SandboxConfig::default()
    });
    let out = run(
        Some(&served.url()),
        &[
            "run",
            "--yes",
            "-vvv",
            "--log-format",
            "json",
            "--report",
            "real.json",
            "--failed-csv",
            "failed.csv",
            "--html",
            "real.html",
            "--junit",
            "real.xml",
            "--markdown",
            "real.md",
        ],
    );
    assert!(matches!(out.code, 1 | 0), "{}", out.stderr);
    for view in ["real.html", "real.xml", "real.md"] {
        assert!(dir.path().join(view).is_file(), "{view} was written");
    }
    assert_clean("real run", &out, dir.path());
    // The views rendered again from the report, by the `report` subcommand.
    let out = run_in(
        dir.path(),
        None,
        &[
            "report",
            "real.json",
            "--html",
            "again.html",
            "--junit",
            "again.xml",
            "--markdown",
            "again.md",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_clean("report views", &out, dir.path());
    // The secret was really sent: only the output is redacted.
    let journal = served.get_text("/__sandbox/journal");
    assert!(
        journal.contains(SECRET),
        "the request carried the secret value"
    );
}
