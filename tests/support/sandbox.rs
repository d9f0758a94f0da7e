//! Sandboxes for the tests: in the test process ([`Env`], [`start_sandbox`]) or as a standalone
//! `wts-playbook sandbox` process ([`SandboxProcess`]), and their state and journal over HTTP
//! ([`Served`]).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use serde_json::Value;
use wts_playbook::sandbox::{JournalEntry, Sandbox, SandboxConfig};

use super::process::{against, command, Run};

/// Starts an in-process sandbox on a free loopback port.
pub(crate) async fn start_sandbox(config: SandboxConfig) -> Sandbox {
    Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("sandbox starts")
}

/// A sandbox reachable over HTTP: its state and journal, read as a client would.
pub(crate) trait Served {
    /// The base URL, `http://127.0.0.1:PORT`.
    fn url(&self) -> String;

    /// `GET path` (no token needed for `/__sandbox/...`), the body as text.
    fn get_text(&self, path: &str) -> String {
        let url = format!("{}{path}", self.url());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
    }

    /// `GET path`, the body as JSON.
    fn get(&self, path: &str) -> Value {
        serde_json::from_str(&self.get_text(path)).unwrap()
    }

    /// `/__sandbox/state`.
    fn state(&self) -> Value {
        self.get("/__sandbox/state")
    }

    /// `/__sandbox/journal`, every entry: (method, path, status).
    fn journal_rows(&self) -> Vec<(String, String, u64)> {
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

/// One test's world: a tokio runtime (its worker threads serve the sandbox in the background
/// for as long as this value lives), the sandbox, and a tempdir for playbooks, CSVs, reports.
pub(crate) struct Env {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) sandbox: Option<Sandbox>,
    pub(crate) dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new(config: SandboxConfig) -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let sandbox = rt.block_on(start_sandbox(config));
        Env {
            rt,
            sandbox: Some(sandbox),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub(crate) fn sb(&self) -> &Sandbox {
        self.sandbox.as_ref().expect("sandbox running")
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write fixture");
        path
    }

    /// Writes a one-column CSV.
    pub(crate) fn csv(&self, name: &str, column: &str, values: &[String]) -> PathBuf {
        let mut text = format!("{column}\n");
        for v in values {
            text.push_str(v);
            text.push('\n');
        }
        self.write(name, &text)
    }

    /// Runs `wts-playbook run PLAYBOOK --yes -q --report R [extra]` against the sandbox.
    pub(crate) fn run(&self, playbook: &Path, token: Option<&str>, extra: &[&str]) -> Run {
        self.run_at(&self.sb().url(), playbook, token, extra)
    }

    pub(crate) fn run_at(
        &self,
        base_url: &str,
        playbook: &Path,
        token: Option<&str>,
        extra: &[&str],
    ) -> Run {
        self.run_with(base_url, playbook, token, true, extra)
    }

    /// Like [`Env::run`] without `--yes` (standard input is not a terminal).
    pub(crate) fn run_unconfirmed(
        &self,
        playbook: &Path,
        token: Option<&str>,
        extra: &[&str],
    ) -> Run {
        self.run_with(&self.sb().url(), playbook, token, false, extra)
    }

    pub(crate) fn run_with(
        &self,
        base_url: &str,
        playbook: &Path,
        token: Option<&str>,
        yes: bool,
        extra: &[&str],
    ) -> Run {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let report = self.dir.path().join(format!(
            "report-{}.json",
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        Run::of(
            against(self.dir.path(), base_url, token)
                .arg("run")
                .arg(playbook)
                .args(yes.then_some("--yes"))
                .arg("-q")
                .arg("--report")
                .arg(&report)
                .args(extra),
        )
        .with_report(&report)
    }

    /// The sandbox's journal, read in process.
    pub(crate) fn journal(&self) -> Vec<JournalEntry> {
        self.sb().journal()
    }
}

impl Served for Env {
    fn url(&self) -> String {
        self.sb().url()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(sb) = self.sandbox.take() {
            self.rt.block_on(sb.shutdown());
        }
    }
}

/// `wts-playbook sandbox --listen 127.0.0.1:0 ARGS` with its output as given.
fn sandbox_child(args: &[&str], stdout: Stdio, stderr: Stdio) -> Child {
    command()
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("the sandbox process starts")
}

/// A standalone sandbox process; killed on drop.
pub(crate) struct SandboxProcess {
    child: Child,
    pub(crate) url: String,
}

impl SandboxProcess {
    /// Starts `wts-playbook sandbox --listen 127.0.0.1:0 ARGS` and waits for its
    /// `listening on URL` line.
    pub(crate) fn start(args: &[&str]) -> SandboxProcess {
        let mut child = sandbox_child(args, Stdio::piped(), Stdio::null());
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
}

impl Served for SandboxProcess {
    fn url(&self) -> String {
        self.url.clone()
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `wts-playbook sandbox --listen 127.0.0.1:0 ARGS` and reads its stderr, at most
/// `max_lines` lines and 20 s, up to and including the first line `last` accepts; then kills it.
pub(crate) fn sandbox_stderr(
    args: &[&str],
    max_lines: usize,
    last: fn(&str) -> bool,
) -> Result<String, RecvTimeoutError> {
    let mut child = sandbox_child(args, Stdio::null(), Stdio::piped());
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().take(max_lines) {
            let Ok(line) = line else { break };
            let done = last(&line);
            text += &line;
            text.push('\n');
            if done {
                break;
            }
        }
        let _ = tx.send(text);
    });
    let text = rx.recv_timeout(Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    text
}
