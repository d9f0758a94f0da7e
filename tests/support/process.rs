//! Running the binary: a clean environment, pointed at a server, its output captured, spawned
//! runs signalled and waited for (bounded).

use std::io::Read as _;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a run given to [`Run::of`] may take before `assert_cmd` kills it.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// The binary, inheriting no `WTS_*` variable (token, base URL, log filter).
pub(crate) fn command() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wts-playbook"));
    c.env_remove("WTS_API_TOKEN")
        .env_remove("WTS_BASE_URL")
        .env_remove("WTS_PLAYBOOK_LOG");
    c
}

/// [`command`] as an `assert_cmd` command, run in `dir`, killed after 90 s.
pub(crate) fn cmd(dir: &Path) -> assert_cmd::Command {
    let mut c = command();
    c.current_dir(dir);
    let mut c = assert_cmd::Command::from_std(c);
    c.timeout(RUN_TIMEOUT);
    c
}

/// [`command`] run in `dir` against the server at `base_url`, with `token` if given.
pub(crate) fn against_std(
    dir: &Path,
    base_url: &str,
    token: Option<&str>,
) -> std::process::Command {
    let mut c = command();
    c.current_dir(dir).env("WTS_BASE_URL", base_url);
    if let Some(t) = token {
        c.env("WTS_API_TOKEN", t);
    }
    c
}

/// [`against_std`] as an `assert_cmd` command, killed after 90 s.
pub(crate) fn against(dir: &Path, base_url: &str, token: Option<&str>) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::from_std(against_std(dir, base_url, token));
    c.timeout(RUN_TIMEOUT);
    c
}

/// What one run of the binary did.
#[derive(Debug)]
pub(crate) struct Run {
    /// The exit code; -1 when killed by a signal.
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// The report file's raw text, if the run wrote one (see [`Run::with_report`]).
    pub(crate) report_text: Option<String>,
    pub(crate) elapsed: Duration,
}

impl Run {
    /// Runs `cmd` to its end and captures what it did.
    pub(crate) fn of(cmd: &mut assert_cmd::Command) -> Run {
        let started = Instant::now();
        let out = cmd.output().expect("the binary runs");
        let elapsed = started.elapsed();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            report_text: None,
            elapsed,
        }
    }

    /// Reads the report the run wrote at `path` (none if there is no such file).
    pub(crate) fn with_report(mut self, path: &Path) -> Run {
        self.report_text = std::fs::read_to_string(path).ok();
        self
    }

    /// The report, parsed; panics if it is missing or not valid JSON.
    pub(crate) fn report(&self) -> Value {
        let text = self.report_text.as_deref().unwrap_or_else(|| {
            panic!(
                "no report was written\nstdout:\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        });
        serde_json::from_str(text).unwrap_or_else(|e| panic!("the report is not valid JSON: {e}"))
    }

    pub(crate) fn items(&self) -> Vec<Value> {
        self.report()["items"]
            .as_array()
            .expect("report has items")
            .clone()
    }

    pub(crate) fn context(&self) -> String {
        format!(
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Sends `sig` (`"-INT"`, `"-KILL"`, ...) to a spawned run; whether `kill` succeeded.
pub(crate) fn signal(child: &Child, sig: &str) -> bool {
    std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success()
}

/// Waits for the child (at most 60 s); its exit code (`None`: killed by a signal).
pub(crate) fn finish(mut child: Child) -> Option<i32> {
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

/// Waits for the child (spawned with its stderr piped) to exit, at most `within`; its exit code,
/// its stderr and how long it took.
pub(crate) fn wait_exit(mut child: Child, within: Duration) -> (i32, String, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.code().unwrap_or(-1), stderr, started.elapsed());
        }
        if started.elapsed() > within {
            let _ = child.kill();
            panic!("the run did not end within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until `cond` holds (at most 20 s).
pub(crate) fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
