//! Secrets never appear: the token and every `settings.secrets` value are searched for in every
//! byte the binary prints and every file it writes, in every mode (validate, dry run, sandbox
//! run, real run with failures and retries, verbose and JSON logs, a refused token).

use std::path::Path;

use assert_cmd::Command;
use wts_playbook::sandbox::{Sandbox, SandboxConfig};

const TOKEN: &str = "pn_live_TOKEN_4f9c2b7e1d";
const SECRET: &str = "s3cr3t-partner-key-8812";

/// A sandbox served from its own runtime for the test's duration.
struct Served {
    url: String,
    rt: tokio::runtime::Runtime,
}

impl Served {
    fn get(&self, path: &str) -> String {
        let url = format!("{}{path}", self.url);
        self.rt
            .block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
    }
}

fn serve(config: SandboxConfig) -> Served {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sb: Sandbox = rt
        .block_on(Sandbox::start("127.0.0.1:0".parse().unwrap(), config))
        .unwrap();
    let url = sb.url();
    // Keep the sandbox alive as long as the runtime.
    rt.spawn(async move {
        let _keep = sb;
        std::future::pending::<()>().await;
    });
    Served { url, rt }
}

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
fn assert_clean(what: &str, out: &std::process::Output, dir: &Path) {
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
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

fn bin(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("wts-playbook").unwrap();
    c.current_dir(dir)
        .env("WTS_API_TOKEN", TOKEN)
        .env("PARTNER_KEY", SECRET)
        .env_remove("WTS_BASE_URL");
    c
}

#[test]
#[allow(clippy::too_many_lines)] // TODO(issue 8): split
fn secrets_never_appear_in_any_mode() {
    let dir = tempfile::tempdir().unwrap();
    let pb = write_playbook(dir.path());

    let out = bin(dir.path())
        .args(["validate"])
        .arg(&pb)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_clean("validate", &out, dir.path());

    // Dry run over good rows: the preview shows the rendered text, redacted.
    let out = bin(dir.path())
        .args(["run", "--dry-run", "-vv", "--report", "dry.json"])
        .arg(&pb)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("key=[redacted]"),
        "{out:?}"
    );
    assert_clean("dry run", &out, dir.path());

    // A row that cannot be planned: reported (redacted) by the dry run and by the real run's
    // preflight, which sends nothing.
    for (mode, report) in [
        ("--dry-run", "dry-bad.json"),
        ("--sandbox", "preflight.json"),
    ] {
        let out = bin(dir.path())
            .args([
                "run",
                mode,
                "--yes",
                "-vv",
                "--report",
                report,
                "--input",
                "rows=bad.csv",
            ])
            .arg(&pb)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_clean(mode, &out, dir.path());
    }

    // The built-in sandbox.
    let out = bin(dir.path())
        .args([
            "run",
            "--sandbox",
            "--yes",
            "-vvv",
            "--report",
            "sandbox.json",
        ])
        .arg(&pb)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_clean("sandbox run", &out, dir.path());

    // A real run (against a local sandbox with faults, so errors and retries are logged), JSON logs.
    let served = serve(SandboxConfig {
        token: Some(TOKEN.into()),
        fail_rate: 0.3,
        seed: 7,
        ..SandboxConfig::default()
    });
    let out = bin(dir.path())
        .env("WTS_BASE_URL", &served.url)
        .args([
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
        ])
        .arg(&pb)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(1 | 0)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for view in ["real.html", "real.xml", "real.md"] {
        assert!(dir.path().join(view).is_file(), "{view} was written");
    }
    assert_clean("real run", &out, dir.path());
    // The views rendered again from the report, by the `report` subcommand.
    let out = bin(dir.path())
        .args([
            "report",
            "real.json",
            "--html",
            "again.html",
            "--junit",
            "again.xml",
        ])
        .args(["--markdown", "again.md"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_clean("report views", &out, dir.path());
    // The secret was really sent: only the output is redacted.
    let journal = served.get("/__sandbox/journal");
    assert!(
        journal.contains(SECRET),
        "the request carried the secret value"
    );

    // A refused token: the error names the problem, not the token.
    let refusing = serve(SandboxConfig {
        token: Some("another-token-entirely".into()),
        ..SandboxConfig::default()
    });
    let out = bin(dir.path())
        .env("WTS_BASE_URL", &refusing.url)
        .args(["run", "--yes", "-vvv", "--report", "refused.json"])
        .arg(&pb)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{out:?}"
    );
    assert_clean("refused token", &out, dir.path());
}
