//! End-to-end tests: the real `wts-playbook` binary against a sandbox started in-process by the
//! test, pointed at it with `WTS_BASE_URL` / `WTS_API_TOKEN`. Every case checks the sandbox's
//! state and request journal afterwards, not only what the binary printed.
//!
//! In: playbooks and CSVs generated into a tempdir per test. Out: assertions on the exit code,
//! the report (valid JSON), the sandbox state (`Sandbox::state`, `Sandbox::session`) and the
//! journal (`Sandbox::journal`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;
use wts_playbook::catalog::{lookup, route_of, Method, Routes, SUCCESSORS};
use wts_playbook::sandbox::{JournalEntry, Sandbox, SandboxConfig};

#[path = "e2e/hostile.rs"]
mod hostile;

/// One test's world: a tokio runtime (its worker threads serve the sandbox in the background
/// for as long as this value lives), the sandbox, and a tempdir for playbooks, CSVs, reports.
struct Env {
    rt: tokio::runtime::Runtime,
    sandbox: Option<Sandbox>,
    dir: tempfile::TempDir,
}

/// What one run of the binary did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    /// The report file's raw text, if the run wrote one.
    report_text: Option<String>,
    elapsed: Duration,
}

impl Run {
    /// The report, parsed; panics if it is missing or not valid JSON.
    fn report(&self) -> Value {
        let text = self.report_text.as_deref().unwrap_or_else(|| {
            panic!(
                "no report was written\nstdout:\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        });
        serde_json::from_str(text).unwrap_or_else(|e| panic!("the report is not valid JSON: {e}"))
    }

    fn items(&self) -> Vec<Value> {
        self.report()["items"]
            .as_array()
            .expect("report has items")
            .clone()
    }

    fn context(&self) -> String {
        format!(
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Env {
    fn new(config: SandboxConfig) -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let sandbox = rt
            .block_on(Sandbox::start("127.0.0.1:0".parse().unwrap(), config))
            .expect("sandbox starts");
        Env {
            rt,
            sandbox: Some(sandbox),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn sb(&self) -> &Sandbox {
        self.sandbox.as_ref().expect("sandbox running")
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write fixture");
        path
    }

    /// Writes a one-column CSV.
    fn csv(&self, name: &str, column: &str, values: &[String]) -> PathBuf {
        let mut text = format!("{column}\n");
        for v in values {
            text.push_str(v);
            text.push('\n');
        }
        self.write(name, &text)
    }

    /// Runs `wts-playbook run PLAYBOOK --yes -q --report R [extra]` against the sandbox.
    fn run(&self, playbook: &Path, token: Option<&str>, extra: &[&str]) -> Run {
        self.run_at(&self.sb().url(), playbook, token, extra)
    }

    fn run_at(&self, base_url: &str, playbook: &Path, token: Option<&str>, extra: &[&str]) -> Run {
        self.run_with(base_url, playbook, token, true, extra)
    }

    /// Like [`Env::run`] without `--yes` (standard input is not a terminal).
    fn run_unconfirmed(&self, playbook: &Path, token: Option<&str>, extra: &[&str]) -> Run {
        self.run_with(&self.sb().url(), playbook, token, false, extra)
    }

    fn run_with(
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
        let mut cmd = Command::cargo_bin("wts-playbook").expect("binary built");
        cmd.current_dir(self.dir.path())
            .env_remove("WTS_API_TOKEN")
            .env_remove("WTS_PLAYBOOK_LOG")
            .env("WTS_BASE_URL", base_url)
            .arg("run")
            .arg(playbook)
            .args(yes.then_some("--yes"))
            .arg("-q")
            .arg("--report")
            .arg(&report)
            .args(extra)
            .timeout(Duration::from_secs(90));
        if let Some(t) = token {
            cmd.env("WTS_API_TOKEN", t);
        }
        let started = Instant::now();
        let out = cmd.output().expect("binary runs");
        let elapsed = started.elapsed();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            report_text: std::fs::read_to_string(&report).ok(),
            elapsed,
        }
    }

    fn journal(&self) -> Vec<JournalEntry> {
        self.sb().journal()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(sb) = self.sandbox.take() {
            self.rt.block_on(sb.shutdown());
        }
    }
}

fn uuids(n: usize) -> Vec<String> {
    (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect()
}

/// Short retry backoffs, so the fault cases stay fast.
const FAST_RETRY: &str = "  retry: { attempts: 6, backoff: 50ms, max_backoff: 1s }";

/// A playbook closing every session of one CSV (`ids.csv`, column `session_id`) with `step`
/// (the `with:` lines included), with these lines added under `settings:`.
fn close_with(settings: &str, step: &str) -> String {
    format!(
        r"version: 1
name: e2e-close
inputs:
  ids:
    csv: ids.csv
    key: session_id
settings:
  timeout: 30s
{settings}
steps:
  - id: close
    for_each: inputs.ids
{step}"
    )
}

/// `close_playbook` through the raw `http` action, which knows no "already completed" answer:
/// completing a completed session is a plain failure (a 400).
fn close_http_playbook(settings: &str) -> String {
    close_with(
        settings,
        r#"    action: http
    with:
      method: PUT
      path: "/chat/v1/session/{{ row.session_id }}/complete"
      body: { stopBotInExecution: true }
"#,
    )
}

fn close_playbook(settings: &str) -> String {
    close_with(
        settings,
        r#"    action: session.complete
    with:
      session_id: "{{ row.session_id }}"
      stop_bot_in_execution: true
"#,
    )
}

/// The session id of a `PUT /chat/v1/session/{id}/complete`.
fn completed_id(e: &JournalEntry) -> Option<&str> {
    (e.method == "PUT")
        .then(|| {
            e.path
                .strip_prefix("/chat/v1/session/")?
                .strip_suffix("/complete")
        })
        .flatten()
}

/// The session id of a `POST /chat/v1/session/{id}/message`.
fn message_post_id(e: &JournalEntry) -> Option<&str> {
    (e.method == "POST")
        .then(|| {
            e.path
                .strip_prefix("/chat/v1/session/")?
                .strip_suffix("/message")
        })
        .flatten()
}

/// The run's first request doubles as the token check: nothing else was sent before it
/// was answered.
fn is_first_alone(journal: &[JournalEntry]) -> bool {
    let Some(first) = journal.iter().min_by_key(|e| e.at) else {
        return true;
    };
    let answered = first.answered_at.expect("answered");
    journal
        .iter()
        .filter(|e| e.seq != first.seq)
        .all(|e| e.at >= answered)
}

/// How many journal entries match, per session id.
fn count_by<'a>(
    journal: &'a [JournalEntry],
    pick: impl Fn(&'a JournalEntry) -> Option<&'a str>,
) -> HashMap<&'a str, usize> {
    let mut m = HashMap::new();
    for e in journal {
        if let Some(id) = pick(e) {
            *m.entry(id).or_default() += 1;
        }
    }
    m
}

fn statuses(items: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i["status"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    m
}

// ---------------------------------------------------------------------------------------------
// 1. 2,000 closes from a CSV.

#[test]
fn closes_two_thousand_sessions_from_a_csv() {
    let env = Env::new(SandboxConfig::default());
    let ids = uuids(2000);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "32"],
    );
    assert_eq!(run.code, 0, "{}", run.context());
    eprintln!("case 1: 2,000 closes in {:?}", run.elapsed);

    for id in &ids {
        let s = env.sb().session(id).expect("session exists in the sandbox");
        assert_eq!(s.status, "COMPLETED", "session {id}");
    }
    let journal = env.journal();
    let per = count_by(&journal, completed_id);
    assert_eq!(per.len(), 2000);
    for id in &ids {
        assert_eq!(per.get(id.as_str()), Some(&1), "complete calls for {id}");
    }
    assert_eq!(
        journal.len(),
        2000,
        "2,000 closes and no separate token check"
    );
    assert!(is_first_alone(&journal), "the first request is sent alone");

    let report = run.report();
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["dry_run"], false);
    let items = run.items();
    assert_eq!(items.len(), 2000);
    let keys: HashSet<&str> = items
        .iter()
        .map(|i| {
            assert_eq!(i["status"], "succeeded", "{i}");
            assert_eq!(i["step"], "close");
            i["key"].as_str().expect("key")
        })
        .collect();
    let want: HashSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(keys, want, "report keyed by session id");
    assert_eq!(report["totals"]["succeeded"], 2000);
}

// ---------------------------------------------------------------------------------------------
// 2. list (every page) then close.

#[test]
fn list_then_close_across_many_pages_skips_none() {
    let env = Env::new(SandboxConfig::default());
    let before = env.sb().state();
    let open: HashSet<String> = before
        .sessions
        .iter()
        .filter(|s| s.status == "IN_PROGRESS")
        .map(|s| s.id.clone())
        .collect();
    assert!(
        open.len() > 14,
        "the seed has several pages of IN_PROGRESS sessions ({})",
        open.len()
    );
    let pb = env.write(
        "list-close.yaml",
        r#"version: 1
name: e2e-list-close
steps:
  - id: open_sessions
    action: session.list
    paginate: all
    with:
      status: [IN_PROGRESS]
      page_size: 7
  - id: close
    action: session.complete
    for_each: steps.open_sessions.output.items
    with:
      session_id: "{{ item.id }}"
"#,
    );
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "8"],
    );
    assert_eq!(run.code, 0, "{}", run.context());

    let after = env.sb().state();
    let still_open: Vec<&str> = after
        .sessions
        .iter()
        .filter(|s| s.status == "IN_PROGRESS")
        .map(|s| s.id.as_str())
        .collect();
    assert!(still_open.is_empty(), "still IN_PROGRESS: {still_open:?}");
    let journal = env.journal();
    let per = count_by(&journal, completed_id);
    let closed: HashSet<String> = per.keys().map(|k| (*k).to_owned()).collect();
    assert_eq!(closed, open, "exactly the sessions open before the run");
    assert!(per.values().all(|n| *n == 1), "each closed once: {per:?}");
    let pages = journal
        .iter()
        .filter(|e| e.method == "GET" && e.path == "/chat/v2/session")
        .count();
    assert_eq!(pages, open.len().div_ceil(7), "one request per page");

    let items = run.items();
    let close_items = items.iter().filter(|i| i["step"] == "close").count();
    assert_eq!(close_items, open.len());
    assert_eq!(run.report()["outcome"], "completed");
}

// ---------------------------------------------------------------------------------------------
// 3. per-item pipeline: lookup by phone, then enrol in a sequence.

#[test]
fn lookup_by_phone_then_enrol_each_contact_once() {
    let env = Env::new(SandboxConfig::default());
    let state = env.sb().state();
    let sequence = state.enrolments[0].sequence_id.clone();
    let enrolled: HashSet<&str> = state
        .enrolments
        .iter()
        .filter(|e| e.sequence_id == sequence)
        .map(|e| e.contact_id.as_str())
        .collect();
    let digits = |p: &str| p.chars().filter(char::is_ascii_digit).collect::<String>();
    let mut phones: Vec<String> = state
        .contacts
        .iter()
        .filter(|c| !enrolled.contains(c.id.as_str()))
        .filter_map(|c| c.phone_number.as_deref().map(digits))
        .take(8)
        .collect();
    assert_eq!(phones.len(), 8);
    // Two phones the account has never seen: the lookup creates their contacts.
    phones.push("5521988887777".into());
    phones.push("5521988886666".into());
    env.csv("contacts.csv", "phone", &phones);
    let pb = env.write(
        "enrol.yaml",
        &format!(
            r#"version: 1
name: e2e-enrol
inputs:
  contacts:
    csv: contacts.csv
    key: phone
vars:
  sequence: {sequence}
steps:
  - id: per_contact
    for_each: inputs.contacts
    steps:
      - id: lookup
        action: contact.get_by_phone
        with:
          phone_number: "{{{{ row.phone }}}}"
      - id: enrol
        action: sequence.add_contact
        with:
          sequence_id: "{{{{ vars.sequence }}}}"
          contact_id: "{{{{ steps.lookup.output.id }}}}"
"#
        ),
    );
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "4"],
    );
    assert_eq!(run.code, 0, "{}", run.context());

    let after = env.sb().state();
    let journal = env.journal();
    let enrol_path = format!("/chat/v1/sequence/{sequence}/contact");
    for phone in &phones {
        let contact = after
            .contacts
            .iter()
            .find(|c| c.phone_number.as_deref().map(digits).as_deref() == Some(phone.as_str()))
            .unwrap_or_else(|| panic!("a contact has phone {phone}"));
        let enrolments = after
            .enrolments
            .iter()
            .filter(|e| e.sequence_id == sequence && e.contact_id == contact.id)
            .count();
        assert_eq!(enrolments, 1, "contact of {phone} enrolled once");
        let posts = journal
            .iter()
            .filter(|e| e.method == "POST" && e.path == enrol_path)
            .filter(|e| e.body["contactId"] == contact.id.as_str())
            .count();
        assert_eq!(posts, 1, "one enrol request for the contact of {phone}");
        let lookups = journal
            .iter()
            .filter(|e| e.path == format!("/core/v1/contact/phonenumber/{phone}"))
            .count();
        assert_eq!(lookups, 1, "one lookup of {phone}");
    }
    let enrol_posts = journal
        .iter()
        .filter(|e| e.method == "POST" && e.path == enrol_path)
        .count();
    assert_eq!(enrol_posts, phones.len(), "no other enrol request");
    let counts = statuses(&run.items());
    assert_eq!(
        counts.get("succeeded"),
        Some(&(2 * phones.len())),
        "{counts:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. a parallel group: closing sessions while sending texts.

#[test]
fn parallel_group_closes_and_sends_at_the_same_time() {
    let env = Env::new(SandboxConfig {
        latency_ms: 3,
        ..SandboxConfig::default()
    });
    let to_close = uuids(40);
    let to_tell = uuids(40);
    env.csv("close.csv", "session_id", &to_close);
    env.csv("tell.csv", "session_id", &to_tell);
    let pb = env.write(
        "parallel.yaml",
        r#"version: 1
name: e2e-parallel
inputs:
  close:
    csv: close.csv
    key: session_id
  tell:
    csv: tell.csv
    key: session_id
settings:
  concurrency: 2
steps:
  - parallel:
      - id: close
        action: session.complete
        for_each: inputs.close
        with:
          session_id: "{{ row.session_id }}"
      - id: tell
        action: session.send_text
        for_each: inputs.tell
        with:
          session_id: "{{ row.session_id }}"
          text: "e2e parallel hello"
"#,
    );
    let run = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(run.code, 0, "{}", run.context());

    for id in &to_close {
        assert_eq!(env.sb().session(id).unwrap().status, "COMPLETED", "{id}");
    }
    let state = env.sb().state();
    let mut sent: HashMap<&str, usize> = HashMap::new();
    for m in &state.messages {
        if m.text.as_deref() == Some("e2e parallel hello") {
            *sent.entry(m.session_id.as_str()).or_default() += 1;
        }
    }
    for id in &to_tell {
        assert_eq!(sent.get(id.as_str()), Some(&1), "one message in {id}");
    }
    assert_eq!(sent.len(), to_tell.len());
    // Both steps were in flight together: their requests interleave in the journal.
    let journal = env.journal();
    let first_send = journal
        .iter()
        .position(|e| message_post_id(e).is_some())
        .unwrap();
    let last_close = journal
        .iter()
        .rposition(|e| completed_id(e).is_some())
        .unwrap();
    let first_close = journal
        .iter()
        .position(|e| completed_id(e).is_some())
        .unwrap();
    let last_send = journal
        .iter()
        .rposition(|e| message_post_id(e).is_some())
        .unwrap();
    assert!(
        first_send < last_close && first_close < last_send,
        "the two steps ran at the same time"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. authentication refused.

const RIGHT_TOKEN: &str = "pn-right-e2e-7f3a";
const WRONG_TOKEN: &str = "pn-wrong-e2e-91c2";

#[test]
fn refused_token_aborts_before_any_change() {
    let env = Env::new(SandboxConfig {
        token: Some(RIGHT_TOKEN.into()),
        ..SandboxConfig::default()
    });
    let ids = uuids(20);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run(
        &pb,
        Some(WRONG_TOKEN),
        &["--rate-limit", "off", "--markdown", "refused.md"],
    );
    assert_eq!(run.code, 3, "{}", run.context());
    // The views are written for a run stopped before its first item too.
    let md = std::fs::read_to_string(env.dir.path().join("refused.md")).expect("markdown");
    assert!(md.contains("**Aborted:** authentication refused"), "{md}");
    assert!(!md.contains(WRONG_TOKEN));

    let journal = env.journal();
    assert_eq!(
        journal.len(),
        1,
        "only the first request, the token check: {journal:?}"
    );
    assert_eq!(journal[0].status, 401);
    assert!(journal.iter().all(|e| !e.state_changed));
    assert_eq!(env.sb().summary().sessions_completed, 0);

    assert!(!run.stdout.contains(WRONG_TOKEN), "token in stdout");
    assert!(!run.stderr.contains(WRONG_TOKEN), "token in stderr");
    // The remaining expectations are collected so one run shows every one that fails.
    let mut problems = Vec::new();
    if !run.stderr.to_lowercase().contains("authentication") {
        problems.push(format!(
            "the error does not say that authentication was refused: {:?}",
            run.stderr
        ));
    }
    // A report is written for every run, aborted ones included.
    match &run.report_text {
        None => problems.push("no report was written for the aborted run".to_owned()),
        Some(text) => {
            assert!(!text.contains(WRONG_TOKEN), "token in the report");
            let report: Value = serde_json::from_str(text).expect("the report is valid JSON");
            if report["outcome"] != "aborted" {
                problems.push(format!(
                    "report outcome {} (want aborted)",
                    report["outcome"]
                ));
            }
            let reason = report["abort_reason"].as_str().unwrap_or("");
            if !reason.contains("authentication refused") {
                problems.push(format!("report abort_reason {reason:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// What the test proxy in front of the sandbox does.
#[derive(Clone, Copy)]
enum ProxyMode {
    /// Forward the first N requests as they are, then replace the bearer token with a revoked
    /// one: the token check passes, later requests get 401.
    RevokeAfter(usize),
    /// Answer the first N requests with a 429 (API error envelope) itself; forward the rest.
    ThrottleFirst(usize),
}

/// Starts a proxy in front of `upstream` on the env's runtime; returns its base URL.
fn start_proxy(env: &Env, upstream: String, mode: ProxyMode) -> String {
    use axum::body::{to_bytes, Body};
    use axum::extract::{Request, State};
    use axum::response::Response;

    #[derive(Clone)]
    struct Proxy {
        upstream: String,
        mode: ProxyMode,
        seen: Arc<AtomicUsize>,
        http: reqwest::Client,
    }

    async fn forward(State(p): State<Proxy>, req: Request) -> Response {
        let n = p.seen.fetch_add(1, Ordering::SeqCst);
        if matches!(p.mode, ProxyMode::ThrottleFirst(k) if n < k) {
            let body = serde_json::json!({
                "httpStatusCode": 429, "error": true, "key": "ERROR_TOO_MANY_REQUESTS",
                "text": "Limite de requisições excedido", "isUnsolvableError": false,
            });
            return Response::builder()
                .status(429)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
        }
        let (parts, body) = req.into_parts();
        let bytes = to_bytes(body, 1 << 24).await.unwrap_or_default();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", axum::http::uri::PathAndQuery::as_str);
        let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap();
        let mut rb = p
            .http
            .request(method, format!("{}{path}", p.upstream))
            .body(bytes.to_vec());
        if let Some(ct) = parts.headers.get("content-type") {
            rb = rb.header("content-type", ct.as_bytes());
        }
        let auth = if matches!(p.mode, ProxyMode::RevokeAfter(k) if n >= k) {
            "Bearer revoked-e2e".to_owned()
        } else {
            parts
                .headers
                .get("authorization")
                .map(|v| v.to_str().unwrap_or_default().to_owned())
                .unwrap_or_default()
        };
        rb = rb.header("authorization", auth);
        let resp = rb.send().await.expect("upstream answers");
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    }

    let proxy = Proxy {
        upstream,
        mode,
        seen: Arc::new(AtomicUsize::new(0)),
        http: reqwest::Client::new(),
    };
    let router = axum::Router::new().fallback(forward).with_state(proxy);
    let listener = env
        .rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    env.rt.spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

#[test]
fn token_revoked_mid_run_aborts_at_the_first_401() {
    let env = Env::new(SandboxConfig {
        token: Some(RIGHT_TOKEN.into()),
        ..SandboxConfig::default()
    });
    let proxy = start_proxy(&env, env.sb().url(), ProxyMode::RevokeAfter(1));
    let ids = uuids(30);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run_at(
        &proxy,
        &pb,
        Some(RIGHT_TOKEN),
        &["--rate-limit", "off", "--concurrency", "2"],
    );
    assert_eq!(run.code, 3, "{}", run.context());

    let journal = env.journal();
    assert!(journal[0].status == 200 && is_first_alone(&journal));
    let refused = journal.iter().filter(|e| e.status == 401).count();
    assert!(refused >= 1);
    assert!(
        journal.len() <= 1 + 2,
        "no request started after the first 401 (concurrency 2): {} requests",
        journal.len()
    );
    // The first request (which doubled as the token check) went through; nothing after the 401.
    assert_eq!(journal.iter().filter(|e| e.state_changed).count(), 1);
    assert_eq!(env.sb().summary().sessions_completed, 1);
    assert!(
        format!("{}{}", run.stdout, run.stderr)
            .to_lowercase()
            .contains("authentication"),
        "{}",
        run.context()
    );
    let text = run.report_text.clone().unwrap_or_default();
    assert!(!text.contains(RIGHT_TOKEN), "token in the report");
    assert!(!run.stdout.contains(RIGHT_TOKEN) && !run.stderr.contains(RIGHT_TOKEN));
    let report = run.report();
    assert_eq!(report["outcome"], "aborted");
    let not_succeeded = run
        .items()
        .iter()
        .filter(|i| i["status"] != "succeeded")
        .count();
    assert!(not_succeeded >= 1);
}

/// A 429 on the token check is the account being busy, not a refused token: the README says
/// 429s are always retried, and the check is a GET.
#[test]
fn throttled_token_check_is_retried_not_fatal() {
    let env = Env::new(SandboxConfig::default());
    let proxy = start_proxy(&env, env.sb().url(), ProxyMode::ThrottleFirst(1));
    let ids = uuids(10);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run_at(&proxy, &pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(
        run.code,
        0,
        "a 429 on the token check aborted the run\n{}",
        run.context()
    );
    for id in &ids {
        assert_eq!(env.sb().session(id).unwrap().status, "COMPLETED", "{id}");
    }
    assert_eq!(run.report()["outcome"], "completed");
}

// ---------------------------------------------------------------------------------------------
// 6. the server's rate limit.

fn rate_limited_sandbox() -> Env {
    Env::new(SandboxConfig {
        rate_limit: vec![(20, Duration::from_secs(1))],
        ..SandboxConfig::default()
    })
}

#[test]
fn server_rate_limit_is_retried_and_slows_the_run() {
    let env = rate_limited_sandbox();
    let ids = uuids(100);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(""));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "8"],
    );
    eprintln!(
        "case 6a: 100 closes at a 20/s server, runner off: {:?}",
        run.elapsed
    );
    assert_eq!(run.code, 0, "{}", run.context());
    for id in &ids {
        assert_eq!(env.sb().session(id).unwrap().status, "COMPLETED", "{id}");
    }
    let journal = env.journal();
    let throttled = journal.iter().filter(|e| e.status == 429).count();
    assert!(throttled > 0, "the server answered 429");
    let per = count_by(&journal, |e| {
        (e.status == 200).then(|| completed_id(e)).flatten()
    });
    assert_eq!(per.len(), 100);
    assert!(per.values().all(|n| *n == 1));
    assert!(run.stdout.contains("rate limited"), "{}", run.context());
    let counts = statuses(&run.items());
    assert_eq!(counts.get("succeeded"), Some(&100), "{counts:?}");
    // 101 requests at 20 per second: at least 4 s.
    assert!(
        run.elapsed >= Duration::from_millis(3900),
        "{:?}",
        run.elapsed
    );
}

/// The report's run facts against what the sandbox saw: the base URL, each item's start and
/// line, the step's and the run's duration, the 429s with their retries and pauses; and the
/// views written at the end of the run say the same.
#[test]
fn report_records_times_429s_retries_and_pauses_the_sandbox_saw() {
    let env = rate_limited_sandbox();
    let ids = uuids(60);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let html = env.dir.path().join("run.html");
    let md = env.dir.path().join("run.md");
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &[
            "--rate-limit",
            "off",
            "--concurrency",
            "8",
            "--html",
            "run.html",
            "--markdown",
            "run.md",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.context());
    let report = run.report();
    assert_eq!(report["base_url"], env.sb().url());

    let journal = env.journal();
    let closes: Vec<&JournalEntry> = journal
        .iter()
        .filter(|e| completed_id(e).is_some())
        .collect();
    let throttled = closes.iter().filter(|e| e.status == 429).count() as u64;
    assert!(throttled > 0, "the sandbox answered 429");
    assert_eq!(report["rate_limited"], throttled, "429s counted");
    let events = report["events"].as_array().expect("events");
    let kind = |k: &str| {
        events
            .iter()
            .filter(|e| e["kind"] == k && e["status"] == 429)
            .count() as u64
    };
    assert_eq!(kind("retry"), throttled, "one retry per 429");
    assert_eq!(kind("pause"), throttled, "each 429 paused the run");
    assert!(events
        .iter()
        .all(|e| e["step"] == "close" && e["wait_ms"].as_u64().is_some()));

    let started: jiff::Timestamp = report["started_at"].as_str().unwrap().parse().unwrap();
    let finished: jiff::Timestamp = report["finished_at"].as_str().unwrap().parse().unwrap();
    let run_ms = report["duration_ms"].as_u64().expect("run duration");
    // 61 requests and the retries at 20 per second: well over two seconds.
    assert!(run_ms >= 2000, "{run_ms}");
    assert!(
        run_ms <= u64::try_from(run.elapsed.as_millis()).unwrap(),
        "{run_ms} vs {:?}",
        run.elapsed
    );
    for item in run.items() {
        let at: jiff::Timestamp = item["started_at"]
            .as_str()
            .expect("start time")
            .parse()
            .unwrap();
        assert!(
            at >= started && at <= finished + jiff::SignedDuration::from_secs(1),
            "{item}"
        );
        let index = item["index"].as_u64().unwrap();
        assert_eq!(item["line"], index + 2, "the CSV line of row {index}");
    }
    let steps = report["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0]["id"], "close");
    assert_eq!(
        steps[0]["requests"],
        closes.len() as u64,
        "requests the sandbox got"
    );
    assert_eq!(steps[0]["totals"]["succeeded"], 60);
    let step_ms = steps[0]["duration_ms"].as_u64().unwrap();
    assert!(
        step_ms >= 2000 && step_ms <= run_ms,
        "{step_ms} of {run_ms}"
    );

    // The views, written at the end of the run, agree.
    let md = std::fs::read_to_string(md).expect("markdown written");
    assert!(md.contains(&format!("{throttled}× 429")), "{md}");
    assert!(
        md.contains(&format!("against `{}`", env.sb().url())),
        "{md}"
    );
    let html = std::fs::read_to_string(html).expect("html written");
    assert!(
        html.contains(&format!("\"rate_limited\":{throttled}")),
        "the page's data"
    );
}

/// Items of a step that runs over an earlier step's results keep their CSV row's line.
#[test]
fn items_from_an_earlier_steps_list_keep_their_csv_line() {
    let env = Env::new(SandboxConfig::default());
    let ids = uuids(5);
    env.csv("ids.csv", "session_id", &ids);
    let mut playbook = close_playbook("");
    playbook.push_str(
        r#"  - id: tell
    action: session.send_text
    for_each: steps.close.succeeded
    with:
      session_id: "{{ row.session_id }}"
      text: closed
"#,
    );
    let pb = env.write("close.yaml", &playbook);
    let run = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(run.code, 0, "{}", run.context());
    let journal = env.journal();
    let sent = count_by(&journal, message_post_id);
    assert_eq!(sent.len(), 5, "every session was told");
    let items = run.items();
    let line_of = |step: &str, key: &str| {
        items
            .iter()
            .find(|i| i["step"] == step && i["key"] == key)
            .map(|i| i["line"].clone())
    };
    for (row, id) in ids.iter().enumerate() {
        assert_eq!(line_of("close", id), Some(Value::from(row + 2)), "{id}");
        assert_eq!(line_of("tell", id), line_of("close", id), "{id}");
    }
}

#[test]
fn runner_rate_limit_avoids_every_429() {
    let env = rate_limited_sandbox();
    let ids = uuids(100);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "20/s", "--concurrency", "8"],
    );
    eprintln!(
        "case 6b: 100 closes at a 20/s server, runner 20/s: {:?}",
        run.elapsed
    );
    assert_eq!(run.code, 0, "{}", run.context());
    let journal = env.journal();
    // For each 429: how long before it (at the server) the 20th-latest admitted request arrived.
    let mut admitted: Vec<jiff::Timestamp> = Vec::new();
    let mut throttled = Vec::new();
    let mut by_arrival: Vec<&JournalEntry> = journal.iter().collect();
    by_arrival.sort_by_key(|e| e.at);
    for e in by_arrival {
        if e.status == 429 {
            let gap = admitted.len().checked_sub(20).map_or("?".to_owned(), |i| {
                let ms = (e.at - admitted[i])
                    .total(jiff::Unit::Millisecond)
                    .unwrap_or(f64::NAN);
                format!("{ms:.1}")
            });
            throttled.push(format!(
                "seq {}: the 20th admitted request before it arrived {gap} ms earlier",
                e.seq
            ));
        } else {
            admitted.push(e.at);
        }
    }
    assert!(
        throttled.is_empty(),
        "the runner, limited to the server's own 20/s, still got {} 429s: {throttled:?}",
        throttled.len()
    );
    for id in &ids {
        assert_eq!(env.sb().session(id).unwrap().status, "COMPLETED", "{id}");
    }
    assert!(!run.stdout.contains("rate limited"), "{}", run.context());
}

// ---------------------------------------------------------------------------------------------
// 7. injected 5xx.

#[test]
fn injected_5xx_before_the_change_are_retried_for_idempotent_closes() {
    let env = Env::new(SandboxConfig {
        fail_rate: 0.05,
        seed: 7,
        ..SandboxConfig::default()
    });
    let ids = uuids(400);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "16"],
    );
    assert_eq!(run.code, 0, "{}", run.context());
    let journal = env.journal();
    let faults = journal
        .iter()
        .filter(|e| e.fault.as_deref() == Some("fail_before"))
        .count();
    assert!(faults > 0, "some 5xx were injected");
    for id in &ids {
        assert_eq!(env.sb().session(id).unwrap().status, "COMPLETED", "{id}");
    }
    let changed = count_by(&journal, |e| {
        e.state_changed.then(|| completed_id(e)).flatten()
    });
    assert_eq!(changed.len(), 400);
    assert!(changed.values().all(|n| *n == 1));
    let counts = statuses(&run.items());
    assert_eq!(counts.get("succeeded"), Some(&400), "{counts:?}");
    assert_eq!(run.report()["outcome"], "completed");
}

#[test]
fn injected_5xx_after_a_send_are_verified_never_resent() {
    let env = Env::new(SandboxConfig {
        fail_after_rate: 0.05,
        seed: 11,
        ..SandboxConfig::default()
    });
    let ids = uuids(300);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write(
        "send.yaml",
        r#"version: 1
name: e2e-send
inputs:
  ids:
    csv: ids.csv
    key: session_id
settings:
  retry: { attempts: 6, backoff: 50ms, max_backoff: 1s }
steps:
  - id: tell
    action: session.send_text
    for_each: inputs.ids
    with:
      session_id: "{{ row.session_id }}"
      text: "e2e once only"
"#,
    );
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "16"],
    );
    assert_eq!(run.code, 0, "{}", run.context());

    let journal = env.journal();
    let posts = count_by(&journal, message_post_id);
    assert_eq!(posts.len(), 300);
    let resent: Vec<_> = posts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(resent.is_empty(), "sent more than once: {resent:?}");
    let state = env.sb().state();
    let mut per_session: HashMap<&str, usize> = HashMap::new();
    for m in &state.messages {
        if m.text.as_deref() == Some("e2e once only") {
            *per_session.entry(m.session_id.as_str()).or_default() += 1;
        }
    }
    assert!(per_session.values().all(|n| *n == 1), "a duplicate message");
    assert_eq!(per_session.len(), 300);

    let faulted: HashSet<&str> = journal
        .iter()
        .filter(|e| e.fault.as_deref() == Some("fail_after"))
        .filter_map(message_post_id)
        .collect();
    assert!(!faulted.is_empty(), "some sends were faulted");
    // Each faulted send was verified with a read of the session's messages: succeeded, with
    // the message found as evidence, and never sent twice.
    let items = run.items();
    let verified: HashSet<&str> = items
        .iter()
        .filter(|i| i["status"] == "succeeded" && i["evidence"].is_object())
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(verified, faulted, "exactly the faulted sends were verified");
    for i in items.iter().filter(|i| i["evidence"].is_object()) {
        assert_eq!(i["evidence"]["text"], "e2e once only");
    }
    let counts = statuses(&items);
    assert_eq!(counts.get("succeeded").copied(), Some(300), "{counts:?}");
    let reads = journal
        .iter()
        .filter(|e| e.method == "GET" && e.path.ends_with("/message"))
        .count();
    assert!(reads >= faulted.len(), "one verification read per fault");
    let report = run.report();
    assert_eq!(report["totals"]["unknown"], 0);
    assert_eq!(report["outcome"], "completed");
}

// ---------------------------------------------------------------------------------------------
// 8. dry run.

#[test]
fn dry_run_sends_nothing_and_needs_no_token() {
    let env = Env::new(SandboxConfig::default());
    let ids = uuids(25);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run(&pb, None, &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.context());
    assert!(env.journal().is_empty(), "the dry run sent requests");
    assert_eq!(env.sb().summary().requests, 0);
    let report = run.report();
    assert_eq!(report["dry_run"], true);
    let counts = statuses(&run.items());
    assert_eq!(counts.get("planned"), Some(&25), "{counts:?}");
    assert!(run.stdout.contains("dry run"), "{}", run.context());
}

// ---------------------------------------------------------------------------------------------
// 9. --limit.

#[test]
fn limit_five_changes_exactly_five() {
    let env = Env::new(SandboxConfig::default());
    let ids = uuids(50);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--limit", "5"],
    );
    assert_eq!(run.code, 0, "{}", run.context());
    let completed: Vec<&String> = ids
        .iter()
        .filter(|id| {
            env.sb()
                .session(id)
                .is_some_and(|s| s.status == "COMPLETED")
        })
        .collect();
    assert_eq!(completed.len(), 5, "{completed:?}");
    assert_eq!(env.sb().summary().sessions_completed, 5);
    let journal = env.journal();
    assert_eq!(journal.iter().filter(|e| e.state_changed).count(), 5);
    assert_eq!(journal.len(), 5, "five closes, no separate token check");
    assert_eq!(run.items().len(), 5);
}

// ---------------------------------------------------------------------------------------------
// 10. on_error: stop and the failure budget.

/// The ids of sessions the sandbox seeded as COMPLETED: completing them again is a 400.
fn already_completed(env: &Env, n: usize) -> Vec<String> {
    let ids: Vec<String> = env
        .sb()
        .state()
        .sessions
        .iter()
        .filter(|s| s.status == "COMPLETED")
        .map(|s| s.id.clone())
        .take(n)
        .collect();
    assert_eq!(ids.len(), n, "the seed has {n} completed sessions");
    ids
}

#[test]
fn failure_budget_aborts_the_run_early() {
    let env = Env::new(SandboxConfig::default());
    let ids = already_completed(&env, 20);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_http_playbook("  max_failures: 2"));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "2"],
    );
    assert_eq!(run.code, 3, "{}", run.context());
    let closes = env
        .journal()
        .iter()
        .filter(|e| completed_id(e).is_some())
        .count();
    assert!(
        (3..ids.len()).contains(&closes),
        "stopped early after the budget: {closes} of {} sent",
        ids.len()
    );
    let report = run.report();
    assert_eq!(report["outcome"], "aborted");
    assert!(
        report["abort_reason"]
            .as_str()
            .is_some_and(|r| r.contains("failure budget")),
        "{}",
        report["abort_reason"]
    );
    let failed = run
        .items()
        .iter()
        .filter(|i| i["status"] == "failed")
        .count();
    assert!(failed >= 3, "{failed}");
    assert!(
        run.stdout.contains("failure budget"),
        "the summary says why: {}",
        run.context()
    );
}

/// A session already COMPLETED answers `ERROR_SESSION_ALREADY_COMPLETED`: `unchanged`, not a
/// failure (the budget of 2 is not touched), not among `steps.close.succeeded`, and readable
/// as `steps.close.unchanged`.
#[test]
fn already_completed_sessions_are_unchanged_not_failures() {
    let env = Env::new(SandboxConfig::default());
    let done = already_completed(&env, 6);
    let open = uuids(4);
    let ids: Vec<String> = done.iter().chain(&open).cloned().collect();
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write(
        "close.yaml",
        r#"version: 1
name: e2e-unchanged
inputs:
  ids: { csv: ids.csv, key: session_id }
settings: { max_failures: 2 }
steps:
  - id: close
    action: session.complete
    for_each: inputs.ids
    with: { session_id: "{{ row.session_id }}" }
  - id: tell_closed
    action: session.send_text
    for_each: steps.close.succeeded
    with: { session_id: "{{ row.session_id }}", text: "closed now" }
  - id: tell_already
    action: session.send_text
    for_each: steps.close.unchanged
    with: { session_id: "{{ row.session_id }}", text: "was already closed" }
"#,
    );
    let run = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(run.code, 0, "{}", run.context());
    let report = run.report();
    assert_eq!(report["totals"]["unchanged"], 6, "{}", report["totals"]);
    assert_eq!(report["totals"]["failed"], 0);
    assert!(run.stdout.contains("unchanged"), "{}", run.context());
    let state = env.sb().state();
    let to = |text: &str| -> HashSet<String> {
        state
            .messages
            .iter()
            .filter(|m| m.text.as_deref() == Some(text))
            .map(|m| m.session_id.clone())
            .collect()
    };
    assert_eq!(to("closed now"), open.iter().cloned().collect());
    assert_eq!(to("was already closed"), done.iter().cloned().collect());
    for i in run.items().iter().filter(|i| i["status"] == "unchanged") {
        assert!(i["reason"]
            .as_str()
            .unwrap()
            .contains("ERROR_SESSION_ALREADY_COMPLETED"));
    }
}

/// The views' per-class command re-runs just that class's rows: `--resume REPORT --only-class
/// CLASS` sends again the rows whose newest record is of the class, and leaves every other
/// row as the report has it.
#[test]
fn only_class_reruns_just_the_rows_of_one_error_class() {
    let env = Env::new(SandboxConfig::default());
    let done = already_completed(&env, 3);
    let lost = uuids(2);
    let mut text = String::from("session_id,route\n");
    for id in &done {
        text.push_str(&format!("{id},/chat/v1/session/{id}/complete\n"));
    }
    for id in &lost {
        text.push_str(&format!("{id},/chat/v1/nowhere/{id}\n"));
    }
    env.write("ids.csv", &text);
    let pb = env.write(
        "http.yaml",
        r#"version: 1
name: e2e-classes
inputs:
  ids: { csv: ids.csv, key: session_id }
steps:
  - id: put
    action: http
    for_each: inputs.ids
    with: { method: PUT, path: "{{ row.route }}", body: {} }
"#,
    );
    let first = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(first.code, 1, "{}", first.context());
    let report_path = env.dir.path().join("first.json");
    std::fs::write(&report_path, first.report_text.as_deref().unwrap()).unwrap();
    // The HTML view names the class command.
    let html = env.dir.path().join("first.html");
    let out = Command::cargo_bin("wts-playbook")
        .unwrap()
        .args([
            "report",
            report_path.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .contains("--only-class"));

    let before = env.journal().len();
    let class = "404 · ERROR_NOT_FOUND · api_refused";
    let again = env.run(
        &pb,
        Some("pn_e2e"),
        &[
            "--rate-limit",
            "off",
            "--resume",
            report_path.to_str().unwrap(),
            "--only-class",
            class,
        ],
    );
    assert_eq!(again.code, 1, "{}", again.context());
    let sent: Vec<String> = env.journal()[before..]
        .iter()
        .map(|e| e.path.clone())
        .collect();
    let mut want: Vec<String> = lost
        .iter()
        .map(|id| format!("/chat/v1/nowhere/{id}"))
        .collect();
    let mut got = sent.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "only the class's rows were sent again");
    // The other class's rows are left as the report had them: carried, failed.
    let items = again.items();
    for id in &done {
        let recs: Vec<&Value> = items.iter().filter(|i| i["key"] == id.as_str()).collect();
        assert_eq!(recs.len(), 1, "{id}");
        assert_eq!(recs[0]["carried"], true);
        assert_eq!(recs[0]["status"], "failed");
    }
    // A class no row has is refused.
    let none = env.run(
        &pb,
        Some("pn_e2e"),
        &[
            "--resume",
            report_path.to_str().unwrap(),
            "--only-class",
            "500 · nope",
        ],
    );
    assert_eq!(none.code, 2, "{}", none.context());
}

/// The failure budget's message counts what the summary table counts.
#[test]
fn the_abort_message_counts_what_the_table_counts() {
    let env = Env::new(SandboxConfig {
        latency_ms: 20,
        ..SandboxConfig::default()
    });
    let ids = already_completed(&env, 12);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_http_playbook("  max_failures: 5%"));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "4"],
    );
    assert_eq!(run.code, 3, "{}", run.context());
    let failed = run
        .items()
        .iter()
        .filter(|i| i["status"] == "failed")
        .count();
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("aborted: failure budget"))
        .unwrap_or_else(|| panic!("{}", run.context()));
    assert!(
        line.contains(&format!(": {failed} of 12 items of step `close`")),
        "{line} (the table shows {failed} failed)\n{}",
        run.context()
    );
    let table = run
        .stdout
        .lines()
        .find(|l| l.starts_with("close "))
        .unwrap();
    let cols: Vec<&str> = table.split_whitespace().collect();
    assert_eq!(cols[2], failed.to_string(), "{table}");
}

#[test]
fn on_error_stop_ends_the_run_at_the_first_failure() {
    let env = Env::new(SandboxConfig::default());
    let ids = already_completed(&env, 20);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_http_playbook("  on_error: stop"));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "1"],
    );
    // Stopping on an error is not one of the aborts of exit 3: the run failed (exit 1).
    assert_eq!(run.code, 1, "{}", run.context());
    let closes = env
        .journal()
        .iter()
        .filter(|e| completed_id(e).is_some())
        .count();
    assert_eq!(
        closes, 1,
        "concurrency 1: nothing sent after the first failure"
    );
    let report = run.report();
    assert_eq!(report["outcome"], "failed");
    assert_eq!(run.items().len(), 1);
    assert_eq!(report["totals"]["failed"], 1, "{}", report["totals"]);
}

// ---------------------------------------------------------------------------------------------
// `file_base64`: the upload flow (docs/api-notes.md, "Files") before each send.

/// `session.send_file` over `files.csv` (`session_id`, `name`, `data`), one request at a time.
const UPLOAD_PLAYBOOK: &str = r#"version: 1
name: e2e-upload
inputs:
  files:
    csv: files.csv
    key: session_id
settings:
  timeout: 30s
  concurrency: 1
  retry: { attempts: 3, backoff: 50ms, max_backoff: 1s }
steps:
  - id: send
    action: session.send_file
    for_each: inputs.files
    with:
      session_id: "{{ row.session_id }}"
      file_base64: "{{ row.data }}"
      file_name: "{{ row.name }}"
"#;

/// Writes `files.csv` from `(name, base64)` pairs; returns the session ids, in row order.
fn upload_csv(env: &Env, rows: &[(&str, &str)]) -> Vec<String> {
    let ids = uuids(rows.len());
    let mut text = String::from("session_id,name,data\n");
    for (id, (name, data)) in ids.iter().zip(rows) {
        text.push_str(&format!("{id},{name},{data}\n"));
    }
    env.write("files.csv", &text);
    ids
}

/// The journal's entries, as `METHOD path-prefix`.
fn upload_shape(journal: &[JournalEntry]) -> Vec<String> {
    journal
        .iter()
        .map(|e| {
            let path = if e.path.starts_with("/__sandbox/upload/") {
                "/__sandbox/upload/*"
            } else if message_post_id(e).is_some() {
                "/chat/v1/session/*/message"
            } else {
                e.path.as_str()
            };
            format!("{} {path}", e.method)
        })
        .collect()
}

const UPLOAD_FLOW: [&str; 4] = [
    "GET /core/v2/file",
    "PUT /__sandbox/upload/*",
    "POST /core/v2/file",
    "POST /chat/v1/session/*/message",
];

#[test]
fn file_base64_is_uploaded_before_each_send() {
    let env = Env::new(SandboxConfig::default());
    let rows = [
        ("a.txt", "aGVsbG8="),        // "hello"
        ("b.txt", "aGVsbG8gd29ybGQ"), // "hello world", unpadded
        ("c.bin", "AAECAwQFBgc="),    // 8 bytes
    ];
    let ids = upload_csv(&env, &rows);
    let pb = env.write("upload.yaml", UPLOAD_PLAYBOOK);
    let run = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(run.code, 0, "{}", run.context());

    let state = env.sb().state();
    let files: Vec<(&str, u64)> = state
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.size))
        .collect();
    assert_eq!(files, [("a.txt", 5), ("b.txt", 11), ("c.bin", 8)]);
    assert_eq!(state.files[0].mime_type, "text/plain");
    assert_eq!(state.files[2].mime_type, "application/octet-stream");
    let file_ids: HashSet<&str> = state.files.iter().map(|f| f.id.as_str()).collect();
    for id in &ids {
        let sent: Vec<_> = state
            .messages
            .iter()
            .filter(|m| &m.session_id == id)
            .collect();
        assert_eq!(sent.len(), 1, "session {id}");
        let fid = sent[0]
            .file_id
            .as_deref()
            .expect("the message has a fileId");
        assert!(file_ids.contains(fid), "{fid} is not an uploaded file");
    }
    assert_eq!(env.sb().summary().files_uploaded, 3);

    // GET, PUT, POST, then the send, for each row; in row order (concurrency 1).
    let journal = env.journal();
    let shape = upload_shape(&journal);
    assert_eq!(shape, UPLOAD_FLOW.repeat(3), "{shape:#?}");
    assert!(journal.iter().all(|e| e.status == 200), "{journal:#?}");
    // Each send carries the file its own upload confirmed.
    let sends: Vec<&JournalEntry> = journal
        .iter()
        .filter(|e| message_post_id(e).is_some())
        .collect();
    for (send, (file, id)) in sends.iter().zip(state.files.iter().zip(&ids)) {
        assert_eq!(message_post_id(send), Some(id.as_str()));
        assert_eq!(send.body["fileId"], file.id.as_str());
    }
    // The report's request is the send, with the uploaded id.
    let items = run.items();
    assert_eq!(statuses(&items).get("succeeded"), Some(&3));
    for (item, file) in items.iter().zip(&state.files) {
        assert_eq!(item["request"]["method"], "POST", "{item}");
        assert_eq!(
            item["request"]["body"]["fileId"],
            file.id.as_str(),
            "{item}"
        );
    }
}

/// Bad base64 in a row is a value that cannot be converted: the real run's preflight (the dry
/// run's pipeline) names the row and stops before anything is sent, like any such value.
#[test]
fn invalid_base64_is_refused_before_anything_is_sent() {
    let env = Env::new(SandboxConfig::default());
    let rows = [
        ("a.txt", "aGVsbG8="),
        ("b.txt", "not*base64!"),
        ("c.txt", "d29ybGQ="),
    ];
    let ids = upload_csv(&env, &rows);
    let pb = env.write("upload.yaml", UPLOAD_PLAYBOOK);
    let run = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(run.code, 2, "{}", run.context());
    assert!(
        run.stderr
            .contains(&format!("row 2 (line 3, key {})", ids[1]))
            && run.stderr.contains("`file_base64`: invalid base64")
            && run.stderr.contains("nothing was sent"),
        "{}",
        run.context()
    );
    assert!(
        upload_shape(&env.journal()).is_empty(),
        "something was sent"
    );
    assert!(env.sb().state().files.is_empty());

    // The dry run shows the same: that item failed, the others planned.
    let run = env.run(&pb, None, &["--dry-run"]);
    let items = run.items();
    let counts = statuses(&items);
    assert_eq!(counts.get("planned"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("failed"), Some(&1), "{counts:?}");
    let failed = items.iter().find(|i| i["status"] == "failed").unwrap();
    assert_eq!(failed["key"], ids[1].as_str());
    assert!(failed["error"]
        .as_str()
        .unwrap()
        .starts_with("row 2 (line 3,"));
}

#[test]
fn dry_run_shows_the_upload_placeholder_and_sends_nothing() {
    let env = Env::new(SandboxConfig::default());
    upload_csv(&env, &[("invoice.pdf", "JVBERi0xLjQ="), ("b.txt", "aGk=")]);
    let pb = env.write("upload.yaml", UPLOAD_PLAYBOOK);
    let run = env.run(&pb, None, &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.context());
    assert!(env.journal().is_empty(), "the dry run sent requests");
    assert_eq!(env.sb().summary().requests, 0);
    let items = run.items();
    assert_eq!(statuses(&items).get("planned"), Some(&2));
    assert_eq!(
        items[0]["request"]["body"]["fileId"],
        "<upload of invoice.pdf>"
    );
    assert_eq!(items[1]["request"]["body"]["fileId"], "<upload of b.txt>");

    // A `file_base64` from an earlier step's output: the dry run has no output to decode.
    let pb = env.write(
        "chained.yaml",
        &format!(
            r#"version: 1
name: e2e-upload-chained
steps:
  - id: fetch
    action: session.get
    with:
      session_id: {id}
  - id: send
    action: session.send_file
    with:
      session_id: {id}
      file_base64: "{{{{ steps.fetch.output.id }}}}"
      file_name: scan.png
"#,
            id = uuids(1)[0]
        ),
    );
    let run = env.run(&pb, None, &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.context());
    let items = run.items();
    assert_eq!(statuses(&items).get("planned"), Some(&2));
    assert_eq!(
        items[1]["request"]["body"]["fileId"],
        "<upload of scan.png>"
    );
    assert!(env.journal().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Issue 11: the confirmation, header-only inputs.

#[test]
fn without_a_terminal_a_large_run_needs_yes_and_sends_nothing() {
    let env = Env::new(SandboxConfig::default());
    let ids = uuids(11);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(""));
    let run = env.run_unconfirmed(&pb, Some("t"), &[]);
    assert_eq!(run.code, 2, "{}", run.context());
    assert!(
        run.stderr
            .contains("This run will change 11 object(s) at http://127.0.0.1:"),
        "{}",
        run.context()
    );
    assert!(
        run.stderr.contains("11  session.complete  (step `close`)"),
        "{}",
        run.context()
    );
    assert!(run.stderr.contains("pass --yes"), "{}", run.context());
    assert!(
        env.journal().is_empty(),
        "nothing is sent, not even the token check"
    );
    // With JSON logs the refusal is a JSON log line too.
    let run = env.run_unconfirmed(&pb, Some("t"), &["--log-format", "json"]);
    assert_eq!(run.code, 2, "{}", run.context());
    let line: Value =
        serde_json::from_str(run.stderr.trim()).unwrap_or_else(|e| panic!("{e}: {}", run.stderr));
    assert_eq!(line["level"], "ERROR", "{line}");
    assert!(
        line["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("pass --yes"),
        "{line}"
    );
    // Ten changes or fewer need no --yes.
    env.csv("ids.csv", "session_id", &ids[..10]);
    let run = env.run_unconfirmed(&pb, Some("t"), &[]);
    assert_eq!(run.code, 0, "{}", run.context());
    assert_eq!(env.journal().iter().filter_map(completed_id).count(), 10);
}

#[test]
fn a_header_only_csv_is_a_warning_in_the_summary_and_the_report() {
    let env = Env::new(SandboxConfig::default());
    env.csv("ids.csv", "session_id", &[]);
    let pb = env.write("close.yaml", &close_playbook(""));
    let run = env.run(&pb, Some("t"), &[]);
    assert_eq!(run.code, 0, "{}", run.context());
    let warning = "ids.csv) has a header but no rows: step `close` runs no item";
    assert!(
        run.stdout.contains("warning: input `ids` ("),
        "{}",
        run.context()
    );
    assert!(run.stdout.contains(warning), "{}", run.context());
    let report = run.report();
    let warnings = report["warnings"]
        .as_array()
        .expect("warnings in the report");
    assert_eq!(warnings.len(), 1, "{report}");
    assert!(warnings[0].as_str().unwrap().ends_with(warning), "{report}");
    assert!(
        env.journal().iter().all(|e| e.method == "GET"),
        "no change sent"
    );
}

#[test]
fn an_undefined_value_names_the_var_the_path_and_what_is_there() {
    let env = Env::new(SandboxConfig::default());
    let ids = uuids(2);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write(
        "undef.yaml",
        &format!(
            r#"version: 1
name: e2e-undefined
inputs:
  ids: {{ csv: ids.csv, key: session_id }}
vars:
  hello: "Your case {{{{ steps.look.output.numbr }}}} is open"
steps:
  - id: look
    action: session.get
    with: {{ session_id: "{}" }}
  - id: tell
    action: session.send_text
    for_each: inputs.ids
    with:
      session_id: "{{{{ row.session_id }}}}"
      text: "{{{{ vars.hello }}}}"
"#,
            ids[0]
        ),
    );
    let run = env.run(&pb, Some("t"), &[]);
    assert_eq!(run.code, 1, "{}", run.context());
    let failed: Vec<Value> = run
        .items()
        .into_iter()
        .filter(|i| i["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 2, "{}", run.context());
    for item in &failed {
        let error = item["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(
                "`vars.hello` (read by this step): `steps.look.output.numbr` is undefined \
                 (did you mean `number`?): `steps.look.output` has "
            ),
            "{error}"
        );
        assert!(
            error.contains(", id, "),
            "the available fields are listed: {error}"
        );
    }
    assert!(
        env.journal().iter().all(|e| e.method == "GET"),
        "nothing was sent"
    );
}

#[test]
fn the_confirmation_counts_only_what_a_resume_will_send() {
    let env = Env::new(SandboxConfig::default());
    let ids = uuids(14);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(""));
    // A canary: the first 5 sessions.
    let first = env.run(&pb, Some("t"), &["--limit", "5"]);
    assert_eq!(first.code, 0, "{}", first.context());
    let earlier = env.write(
        "first.json",
        first.report_text.as_deref().expect("a report"),
    );
    // 14 planned, 5 done before: the 9 left need no --yes.
    let run = env.run_unconfirmed(&pb, Some("t"), &["--resume", earlier.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.context());
    let journal = env.journal();
    let mut closed: Vec<&str> = journal.iter().filter_map(completed_id).collect();
    closed.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(closed, expected, "each session closed once");
}

/// A playbook running each of the 39 actions once, in an order where every step finds what it
/// needs (ids from the seeded lookups and from earlier steps' outputs). `family_card_update`
/// holds the lines of `panel.update_card` that only one route family has. Two more steps: a
/// second card read after the update, and a `shape` note whose text shows what the outputs
/// held (the card's `status`/`archived`, the session's `type`), to be read back from the
/// sandbox.
fn all_actions_playbook(env: &Env, family_card_update: &str, session: &str) -> String {
    let l = env.sb().state().lookups;
    let panel = &l.panels[0];
    let (dep, agent, seq) = (&l.departments[0].id, &l.agents[0].id, &l.sequences[0].id);
    let template = &l
        .templates
        .iter()
        .find(|t| t.name == "lembrete")
        .expect("the seeded template without parameters")
        .id;
    let bot = l.chatbots[0]
        .key
        .clone()
        .expect("seeded chatbots have a key");
    let (step0, step1) = (&panel.steps[0].id, &panel.steps[1].id);
    let panel = &panel.id;
    format!(
        r#"version: 1
name: all-actions
steps:
  - {{ id: c_create, action: contact.create, with: {{ name: Ana, phone_number: "5511988887777" }} }}
  - {{ id: c_list, action: contact.list, with: {{ page_size: 5 }} }}
  - {{ id: c_get, action: contact.get, with: {{ contact_id: "{{{{ steps.c_create.output.id }}}}" }} }}
  - {{ id: c_phone, action: contact.get_by_phone, with: {{ phone_number: "5511988887777" }} }}
  - {{ id: c_update, action: contact.update, with: {{ contact_id: "{{{{ steps.c_create.output.id }}}}", name: Ana Maria }} }}
  - {{ id: m_text, action: message.send_text, with: {{ to: "5511988887777", text: hello }} }}
  - {{ id: m_file, action: message.send_file, with: {{ to: "5511988887777", file_url: "https://example.com/a.pdf" }} }}
  - {{ id: m_tpl, action: message.send_template, with: {{ to: "5511988887777", template_id: "{template}" }} }}
  - {{ id: m_list, action: message.list, with: {{ session_id: "{session}" }} }}
  - {{ id: m_get, action: message.get, with: {{ message_id: "{{{{ steps.m_text.output.id }}}}" }} }}
  - {{ id: m_status, action: message.get_status, with: {{ message_id: "{{{{ steps.m_text.output.id }}}}" }} }}
  - {{ id: s_list, action: session.list, with: {{ page_size: 3 }} }}
  - {{ id: s_get, action: session.get, with: {{ session_id: "{session}" }} }}
  - {{ id: s_status, action: session.change_status, with: {{ session_id: "{session}", new_status: PENDING }} }}
  - {{ id: s_text, action: session.send_text, with: {{ session_id: "{session}", text: hi }} }}
  - {{ id: s_file, action: session.send_file, with: {{ session_id: "{session}", file_url: "https://example.com/b.pdf" }} }}
  - {{ id: s_tpl, action: session.send_template, with: {{ session_id: "{session}", template_id: "{template}" }} }}
  - {{ id: s_transfer, action: session.transfer, with: {{ session_id: "{session}", new_department_id: "{dep}" }} }}
  - {{ id: s_assign, action: session.assign, with: {{ session_id: "{session}", user_id: "{agent}" }} }}
  - {{ id: s_update, action: session.update, with: {{ session_id: "{session}", number: "T-1" }} }}
  - {{ id: s_complete, action: session.complete, with: {{ session_id: "{session}" }} }}
  - {{ id: p_list, action: panel.list }}
  - {{ id: p_get, action: panel.get, with: {{ panel_id: "{panel}", include_details: [Steps] }} }}
  - {{ id: p_card, action: panel.create_card, with: {{ step_id: "{step0}", title: Deal }} }}
  - {{ id: p_cards, action: panel.list_cards, with: {{ panel_id: "{panel}" }} }}
  - {{ id: p_get_card, action: panel.get_card, with: {{ card_id: "{{{{ steps.p_card.output.id }}}}" }} }}
  - id: p_update
    action: panel.update_card
    with:
      card_id: "{{{{ steps.p_card.output.id }}}}"
      step_id: "{step1}"
{family_card_update}
  - {{ id: p_read, action: panel.get_card, with: {{ card_id: "{{{{ steps.p_card.output.id }}}}" }} }}
  - {{ id: p_dup, action: panel.duplicate_card, with: {{ card_id: "{{{{ steps.p_card.output.id }}}}" }} }}
  - {{ id: p_note, action: panel.create_note_text, with: {{ card_id: "{{{{ steps.p_card.output.id }}}}", text: called }} }}
  - {{ id: p_note_file, action: panel.create_note_file, with: {{ card_id: "{{{{ steps.p_card.output.id }}}}", file_urls: ["https://example.com/c.pdf"] }} }}
  - {{ id: p_notes, action: panel.list_notes, with: {{ card_id: "{{{{ steps.p_card.output.id }}}}" }} }}
  - {{ id: p_del_note, action: panel.delete_note, with: {{ card_id: "{{{{ steps.p_card.output.id }}}}", note_id: "{{{{ steps.p_note.output.id }}}}" }} }}
  - {{ id: bot, action: chatbot.send, with: {{ bot_key: "{bot}", to: "5511988887777" }} }}
  - {{ id: q_list, action: sequence.list }}
  - {{ id: q_add, action: sequence.add_contact, with: {{ sequence_id: "{seq}", contact_id: "{{{{ steps.c_create.output.id }}}}" }} }}
  - {{ id: q_adds, action: sequence.add_contacts, with: {{ sequence_id: "{seq}", phone_numbers: ["5511977776666"] }} }}
  - {{ id: q_contacts, action: sequence.list_contacts, with: {{ sequence_id: "{seq}" }} }}
  - {{ id: q_remove, action: sequence.remove_contact, with: {{ sequence_id: "{seq}", contact_id: "{{{{ steps.c_create.output.id }}}}" }} }}
  - {{ id: q_removes, action: sequence.remove_contacts, with: {{ sequence_id: "{seq}", phone_numbers: ["5511977776666"] }} }}
  - id: shape
    action: panel.create_note_text
    with:
      card_id: "{{{{ steps.p_card.output.id }}}}"
      text: "status={{{{ steps.p_read.output.status is defined and steps.p_read.output.status }}}} archived={{{{ steps.p_read.output.archived is defined and steps.p_read.output.archived }}}} type={{{{ steps.s_get.output.type is defined and steps.s_get.output.type }}}}"
"#
    )
}

/// Runs the 39 actions under one route family against a fresh sandbox and checks what the
/// sandbox saw and holds. Returns the shape note's text and the journal of catalog requests.
fn run_all_actions(routes: &str) -> (String, Vec<JournalEntry>, Env) {
    let env = Env::new(SandboxConfig::default());
    let session = env
        .sb()
        .state()
        .sessions
        .iter()
        .find(|s| s.status != "COMPLETED")
        .expect("an open seeded session")
        .id
        .clone();
    let family_lines = if routes == "documented" {
        "      status: WON\n      lost_reason_id: null"
    } else {
        "      archived: true"
    };
    let pb = env.write(
        "all.yaml",
        &all_actions_playbook(&env, family_lines, &session),
    );
    let extra: &[&str] = if routes == "documented" {
        &[] // the default
    } else {
        &["--routes", routes]
    };
    let run = env.run(&pb, Some("pn_test"), extra);
    assert_eq!(run.code, 0, "{}", run.context());
    let report = run.report();
    assert_eq!(
        report["settings"]["routes"], routes,
        "the header records the family"
    );
    let items = run.items();
    let steps: HashSet<&str> = items.iter().filter_map(|i| i["step"].as_str()).collect();
    assert_eq!(
        steps.len(),
        41,
        "every step ran once (39 actions, a card read, a note)"
    );
    for i in &items {
        assert_eq!(i["status"], "succeeded", "{i}");
    }
    // The sandbox's state: every change landed.
    let st = env.sb().state();
    let s = env.sb().session(&session).expect("the session");
    assert_eq!(s.status, "COMPLETED");
    assert_eq!(s.number.as_deref(), Some("T-1"));
    let contact = st
        .contacts
        .iter()
        .find(|c| {
            c.phone_number
                .as_deref()
                .is_some_and(|p| p.ends_with("988887777"))
        })
        .expect("the created contact");
    assert_eq!(contact.name.as_deref(), Some("Ana Maria"));
    let card = st
        .cards
        .iter()
        .find(|c| c.title == "Deal")
        .expect("the card");
    let panel = &st.lookups.panels[0];
    assert_eq!(card.step_id, panel.steps[1].id, "moved");
    assert_eq!(
        st.cards.iter().filter(|c| c.title == "Deal").count(),
        2,
        "duplicated"
    );
    let notes: Vec<_> = st.notes.iter().filter(|n| n.card_id == card.id).collect();
    assert_eq!(
        notes.len(),
        2,
        "two notes created, one deleted, the shape note"
    );
    assert!(
        !st.enrolments.iter().any(|e| e.contact_id == contact.id),
        "enrolled, then removed"
    );
    // No separate token check: every request is one of the 41 the playbook sends.
    let journal: Vec<JournalEntry> = env.journal();
    assert_eq!(journal.len(), 41);
    let shape = st
        .notes
        .iter()
        .find(|n| n.text.as_deref().is_some_and(|t| t.starts_with("status=")))
        .and_then(|n| n.text.clone())
        .expect("the shape note");
    (shape, journal, env)
}

/// Whether a journal entry is a request to `template` (its `{placeholders}` match any segment).
fn is_route(e: &JournalEntry, method: Method, template: &str) -> bool {
    let have: Vec<&str> = e.path.split('/').collect();
    let want: Vec<&str> = template.split('/').collect();
    e.method == method.as_str()
        && have.len() == want.len()
        && have
            .iter()
            .zip(&want)
            .all(|(h, w)| w.starts_with('{') || h == w)
}

/// Under one family, each of the ten actions with two routes called its family's route and
/// never the other's; returns how many requests went to the family's own routes.
fn assert_family_routes(journal: &[JournalEntry], routes: Routes) -> usize {
    let mut own = 0;
    for s in &SUCCESSORS {
        let base = lookup(s.action).expect("catalog action");
        let (m, mine) = route_of(base, routes);
        let (_, theirs) = route_of(base, routes.other());
        let hits = journal.iter().filter(|e| is_route(e, m, mine)).count();
        assert!(hits >= 1, "{}: no {m} {mine} under {routes}", s.action);
        assert!(
            !journal.iter().any(|e| is_route(e, m, theirs)),
            "{}: {m} {theirs} sent under {routes}",
            s.action
        );
        own += hits;
    }
    own
}

#[test]
fn all_39_actions_run_under_the_documented_routes() {
    let (shape, journal, env) = run_all_actions("documented");
    // contact.update, session.list/get, the 6 card and panel reads and writes (two card reads)
    // and sequence.list_contacts.
    assert_eq!(assert_family_routes(&journal, Routes::Documented), 11);
    // v2/v3 shapes, as the playbook saw them: the card has `status`, no `archived`; the
    // session carries `type`.
    assert_eq!(shape, "status=WON archived=False type=INDIVIDUAL");
    let st = env.sb().state();
    let deal = st.cards.iter().find(|c| c.title == "Deal").unwrap();
    assert_eq!(deal.status, "WON");
}

#[test]
fn all_39_actions_run_under_the_node_routes() {
    let (shape, journal, env) = run_all_actions("node");
    assert_eq!(assert_family_routes(&journal, Routes::Node), 11);
    // v1 shapes, as the playbook saw them: the card has `archived`, no `status`; the session
    // has no `type`.
    assert_eq!(shape, "status=False archived=True type=False");
    let st = env.sb().state();
    let deal = st.cards.iter().find(|c| c.title == "Deal").unwrap();
    assert_eq!(deal.status, "ARCHIVED");
}

// ---------------------------------------------------------------------------------------------
// Runs that continue correctly: edge cases found by an adversarial test.

fn send_rows_playbook(env: &Env, text: &str, extra_settings: &str) -> PathBuf {
    env.write(
        "send.yaml",
        &format!(
            r#"version: 1
name: e2e-send-rows
inputs:
  rows: {{ csv: rows.csv, key: k }}
settings:
  retry: {{ attempts: 2, backoff: 10ms, max_backoff: 20ms }}
{extra_settings}
steps:
  - id: send
    action: session.send_text
    for_each: inputs.rows
    with:
      session_id: "{{{{ row.session_id }}}}"
      text: "{text}"
"#
        ),
    )
}

/// Two rows send the same text into the same session; drops lose some of them before the
/// server applies them. Verification must not take one row's message for the other's: every
/// item the report calls succeeded has a message of its own on the server.
#[test]
fn verification_does_not_take_another_items_identical_message_for_its_own() {
    let env = Env::new(SandboxConfig {
        drop_rate: 0.3,
        seed: 7,
        ..SandboxConfig::default()
    });
    let sessions = uuids(60);
    let mut text = String::from("k,session_id\n");
    for (i, s) in sessions.iter().enumerate() {
        text.push_str(&format!("a{i},{s}\nb{i},{s}\n"));
    }
    env.write("rows.csv", &text);
    let pb = send_rows_playbook(&env, "Reminder", "");
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "1"],
    );
    let succeeded = run
        .items()
        .iter()
        .filter(|i| i["status"] == "succeeded")
        .count();
    let messages = env
        .sb()
        .state()
        .messages
        .iter()
        .filter(|m| m.text.as_deref() == Some("Reminder"))
        .count();
    assert_eq!(
        messages,
        succeeded,
        "each succeeded item has its own message on the server\n{}",
        run.context()
    );
    assert!(messages <= 120, "never more than one message per row");
}

/// An earlier run that finished (a canary) never left an unrecorded attempt: a session it never
/// touched that is already completed is `unchanged` on resume, as in a fresh run.
#[test]
fn already_completed_rows_a_finished_canary_never_touched_stay_unchanged() {
    let env = Env::new(SandboxConfig::default());
    let open = uuids(3);
    let done = already_completed(&env, 3);
    let ids: Vec<String> = open.iter().chain(&done).cloned().collect();
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let canary = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--limit", "2"],
    );
    assert_eq!(canary.code, 0, "{}", canary.context());
    let path = env.dir.path().join("canary.json");
    std::fs::write(&path, canary.report_text.as_deref().unwrap()).unwrap();
    let full = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--resume", path.to_str().unwrap()],
    );
    assert_eq!(full.code, 0, "{}", full.context());
    for i in full.items() {
        let key = i["key"].as_str().unwrap();
        if done.iter().any(|d| d == key) {
            assert_eq!(i["status"], "unchanged", "{i}");
        }
    }
}

/// Failed and unknown items carried over from an earlier report are not this run's failures:
/// they do not count against `max_failures`, even once a new failure happens.
#[test]
fn carried_unknowns_stay_out_of_the_failure_budget() {
    let first = Env::new(SandboxConfig {
        fail_after_rate: 0.5,
        seed: 3,
        ..SandboxConfig::default()
    });
    let mut text = String::from("k,phone\n");
    for i in 0..20 {
        text.push_str(&format!("r{i},5511900000{i:03}\n"));
    }
    first.write("rows.csv", &text);
    let body = r#"version: 1
name: e2e-quick
inputs:
  rows: { csv: rows.csv, key: k }
settings: { max_failures: 3 }
steps:
  - id: send
    action: message.send_text
    for_each: inputs.rows
    with: { to: "{{ row.phone }}", text: "hello" }
"#;
    // The first run has no budget: it goes through every row.
    let pb = first.write(
        "quick.yaml",
        &body.replace("settings: { max_failures: 3 }\n", ""),
    );
    let run1 = first.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "1"],
    );
    let carried_unknown = run1.report()["totals"]["unknown"].as_u64().unwrap();
    assert!(carried_unknown > 3, "{}", run1.context());
    let report1 = first.dir.path().join("r1.json");
    std::fs::write(&report1, run1.report_text.as_deref().unwrap()).unwrap();

    // The same rows plus two new ones, against a server that fails every send (unknown).
    let second = Env::new(SandboxConfig {
        fail_rate: 1.0,
        seed: 3,
        ..SandboxConfig::default()
    });
    text.push_str("r20,5511900000020\nr21,5511900000021\n");
    second.write("rows.csv", &text);
    let pb = second.write("quick.yaml", body);
    let run2 = second.run(
        &pb,
        Some("pn_e2e"),
        &[
            "--rate-limit",
            "off",
            "--concurrency",
            "1",
            "--resume",
            report1.to_str().unwrap(),
        ],
    );
    assert_eq!(
        run2.code,
        1,
        "not aborted by the carried unknowns\n{}",
        run2.context()
    );
    assert_eq!(run2.report()["outcome"], "failed");
    let sent = second
        .journal()
        .iter()
        .filter(|e| e.method == "POST")
        .count();
    assert!(sent <= 4, "only the two new rows were sent: {sent}");
}

/// A resume of a report whose steps the playbook no longer has (a step renamed) is refused:
/// items are matched by step, so they would be sent again under the new name.
#[test]
fn a_resume_naming_steps_the_playbook_lacks_is_refused() {
    let env = Env::new(SandboxConfig::default());
    let sessions = uuids(4);
    let mut text = String::from("k,session_id\n");
    for (i, s) in sessions.iter().enumerate() {
        text.push_str(&format!("a{i},{s}\n"));
    }
    env.write("rows.csv", &text);
    let pb = send_rows_playbook(&env, "Hi", "");
    let run1 = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(run1.code, 0, "{}", run1.context());
    let report1 = env.dir.path().join("r1.json");
    std::fs::write(&report1, run1.report_text.as_deref().unwrap()).unwrap();
    let renamed = std::fs::read_to_string(&pb)
        .unwrap()
        .replace("id: send", "id: notify");
    std::fs::write(&pb, renamed).unwrap();
    let before = env.journal().len();
    let run2 = env.run(
        &pb,
        Some("pn_e2e"),
        &["--resume", report1.to_str().unwrap()],
    );
    assert_eq!(run2.code, 2, "{}", run2.context());
    assert!(
        run2.stderr.contains("`send`") && run2.stderr.contains("--force"),
        "{}",
        run2.stderr
    );
    assert_eq!(env.journal().len(), before, "nothing was sent");
}

/// `--resume` of something that is not a regular file (a FIFO would block forever) is refused.
#[cfg(unix)]
#[test]
fn a_resume_of_a_fifo_is_refused() {
    let env = Env::new(SandboxConfig::default());
    env.csv("ids.csv", "session_id", &uuids(2));
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let fifo = env.dir.path().join("fifo.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let run = env.run(&pb, Some("pn_e2e"), &["--resume", fifo.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.context());
    assert!(run.stderr.contains("not a regular file"), "{}", run.stderr);
    assert!(run.elapsed < Duration::from_secs(20));
}

/// On resume, the messages the earlier run's succeeded sends put in a session count as theirs:
/// an `unknown` row with the same session and text is not verified by another row's message.
#[test]
fn a_resumed_verification_does_not_take_an_earlier_rows_message_for_its_own() {
    let env = Env::new(SandboxConfig::default());
    let sessions = uuids(5);
    let mut first = String::from("k,session_id\n");
    for (i, s) in sessions.iter().enumerate() {
        first.push_str(&format!("a{i},{s}\n"));
    }
    env.write("rows.csv", &first);
    let pb = send_rows_playbook(&env, "Reminder", "");
    let run1 = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(run1.code, 0, "{}", run1.context());
    let report1 = env.dir.path().join("r1.json");
    std::fs::write(&report1, run1.report_text.as_deref().unwrap()).unwrap();
    // The b rows (same sessions, same text) were in flight when the run died: unknown.
    let mut all = first.clone();
    let mut markers = String::new();
    for (i, s) in sessions.iter().enumerate() {
        all.push_str(&format!("b{i},{s}\n"));
        markers.push_str(&format!(
            "{{\"step\":\"send\",\"index\":{},\"key\":\"b{i}\"}}\n",
            5 + i
        ));
    }
    env.write("rows.csv", &all);
    std::fs::write(env.dir.path().join("r1.json.inflight"), markers).unwrap();
    let run2 = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--resume", report1.to_str().unwrap()],
    );
    assert_eq!(run2.code, 0, "{}", run2.context());
    // Each b row was found not sent (its session's one message is a's) and sent once.
    let state = env.sb().state();
    for s in &sessions {
        let n = state
            .messages
            .iter()
            .filter(|m| m.session_id == *s && m.text.as_deref() == Some("Reminder"))
            .count();
        assert_eq!(n, 2, "session {s}: one message per row");
    }
    assert!(run2
        .items()
        .iter()
        .filter(|i| i["key"].as_str().unwrap().starts_with('b') && i["carried"] != true)
        .all(|i| i["status"] == "succeeded" && i["evidence"].is_null()));
}

/// A parameter that reads a secret and a row's key (an `http` body with both): only the
/// secret's parts are redacted, keys stay intact, every in-flight marker is closed by its
/// record, and a resume sends nothing again.
#[test]
fn a_secret_beside_the_key_in_a_body_never_changes_the_key() {
    let env = Env::new(SandboxConfig::default());
    let sessions = uuids(3);
    env.csv("ids.csv", "session_id", &sessions);
    let pb = env.write(
        "red.yaml",
        r#"version: 1
name: e2e-red
inputs: { s: { csv: ids.csv, key: session_id } }
vars: { api_key: "SUPERSECRETVALUE42" }
settings: { secrets: [api_key] }
steps:
  - id: tell
    action: http
    for_each: inputs.s
    with:
      method: POST
      path: "/chat/v1/session/{{ row.session_id }}/message"
      body: { text: "hi", ref: "{{ vars.api_key }}", sid: "{{ row.session_id }}" }
"#,
    );
    let run1 = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(run1.code, 0, "{}", run1.context());
    let text = run1.report_text.clone().unwrap();
    assert!(!text.contains("SUPERSECRETVALUE42"));
    let report = run1.report();
    assert_eq!(report["totals"]["succeeded"], 3, "{}", report["totals"]);
    assert_eq!(report["totals"]["unknown"], 0);
    for i in run1.items() {
        assert!(sessions.iter().any(|s| i["key"] == s.as_str()), "{i}");
    }
    let report1 = env.dir.path().join("r1.json");
    std::fs::write(&report1, &text).unwrap();
    let run2 = env.run(
        &pb,
        Some("pn_e2e"),
        &["--resume", report1.to_str().unwrap()],
    );
    assert_eq!(run2.code, 0, "{}", run2.context());
    let posts = env.journal().iter().filter(|e| e.method == "POST").count();
    assert_eq!(posts, 3, "each message sent once");
}

/// Two outputs on one file, or an output over an input, is refused before anything is sent.
#[test]
fn an_output_over_another_output_or_an_input_is_refused_before_sending() {
    let env = Env::new(SandboxConfig::default());
    env.csv("ids.csv", "session_id", &uuids(3));
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let same = env.dir.path().join("same.json");
    let same = same.to_str().unwrap();
    for extra in [
        vec!["--failed-csv", same, "--html", same],
        vec!["--markdown", "ids.csv"],
        vec!["--html", "close.yaml"],
    ] {
        let run = env.run_at(&env.sb().url(), &pb, Some("pn_e2e"), &extra);
        assert_eq!(run.code, 2, "{extra:?}: {}", run.context());
        assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
    }
    assert!(env.journal().is_empty(), "nothing was sent");
    assert!(std::fs::read_to_string(env.dir.path().join("ids.csv"))
        .unwrap()
        .starts_with("session_id"));
}
