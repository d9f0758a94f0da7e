//! Runs over several accounts (`run --accounts FILE`) against one standalone `wts-playbook
//! sandbox` process serving several accounts (`--account NAME=TOKEN`): the right rows reach
//! the right account (each account's own state and journal), one account's 401 or exhausted
//! failure budget leaves the others complete, `kill -9` then `--resume` makes every write once
//! per account, shards are stable and complete, and their reports merge into one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{command, read_report, SandboxProcess};

/// The token of an account in these tests: long enough to be redacted, and recognisable.
pub(super) fn token(name: &str) -> String {
    format!("pn_fleet_secret_{name}_0123456789")
}

/// A `wts-playbook sandbox` process serving these accounts (`--account NAME=TOKEN`).
pub(super) struct Sandbox {
    /// Killed when the test ends.
    _process: SandboxProcess,
    pub(super) url: String,
}

impl Sandbox {
    pub(super) fn start(accounts: &[&str], extra: &[&str]) -> Sandbox {
        let mut args: Vec<String> = Vec::new();
        for a in accounts {
            args.push("--account".into());
            args.push(format!("{a}={}", token(a)));
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = SandboxProcess::start(&args);
        let url = process.url.clone();
        Sandbox {
            _process: process,
            url,
        }
    }

    /// `GET path`: the status and the JSON body.
    fn get(&self, path: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.json().await.unwrap())
        })
    }

    pub(super) fn state(&self, account: &str) -> Value {
        let (status, v) = self.get(&format!("/__sandbox/state?account={account}"));
        assert_eq!(status, 200, "{v}");
        v
    }

    /// The account's journal: (method, path, status).
    pub(super) fn journal(&self, account: &str) -> Vec<(String, String, u64)> {
        let (_, v) = self.get(&format!("/__sandbox/journal?account={account}"));
        v["entries"]
            .as_array()
            .unwrap()
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

    /// Sessions of the account that are COMPLETED, among `ids`.
    fn completed(&self, account: &str, ids: &[String]) -> BTreeSet<String> {
        let state = self.state(account);
        state["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "COMPLETED")
            .filter_map(|s| s["id"].as_str())
            .filter(|id| ids.iter().any(|i| i == id))
            .map(str::to_owned)
            .collect()
    }

    /// Messages per session of the account (only `ids`'s sessions).
    fn messages(&self, account: &str, ids: &[String]) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for m in self.state(account)["messages"].as_array().unwrap() {
            let id = m["sessionId"].as_str().unwrap();
            if ids.iter().any(|i| i == id) {
                *out.entry(id.to_owned()).or_default() += 1;
            }
        }
        out
    }
}

/// A test directory: the accounts file, the input, the playbook.
pub(super) struct Fleet {
    dir: tempfile::TempDir,
    /// Session ids per account, in row order.
    rows: BTreeMap<String, Vec<String>>,
}

fn session_id(account: &str, i: usize) -> String {
    // A UUID-shaped id that names its account (the sandbox accepts any id it is given).
    let a = account
        .bytes()
        .fold(0_u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    format!("f1ee7000-0000-4000-8000-{:04x}{i:08}", a & 0xffff)
}

impl Fleet {
    /// `per_account` rows per account, all in one CSV split by its `account` column.
    pub(super) fn new(accounts: &[(&str, usize)], step: &str) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("session_id,account\n");
        let mut rows = BTreeMap::new();
        // Interleaved, so a split really has to pick its rows.
        let most = accounts.iter().map(|(_, n)| *n).max().unwrap_or(0);
        for i in 0..most {
            for (a, n) in accounts {
                if i < *n {
                    let id = session_id(a, i);
                    csv.push_str(&format!("{id},{a}\n"));
                    rows.entry((*a).to_owned())
                        .or_insert_with(Vec::new)
                        .push(id);
                }
            }
        }
        std::fs::write(dir.path().join("rows.csv"), csv).unwrap();
        let mut accounts_csv = String::from("name,token_env,region\n");
        for (a, _) in accounts {
            accounts_csv.push_str(&format!("{a},TOKEN_{},region-of-{a}\n", a.to_uppercase()));
        }
        std::fs::write(dir.path().join("accounts.csv"), accounts_csv).unwrap();
        std::fs::write(dir.path().join("pb.yaml"), step).unwrap();
        Fleet { dir, rows }
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(super) fn ids(&self, account: &str) -> Vec<String> {
        self.rows.get(account).cloned().unwrap_or_default()
    }

    fn command(&self, sandbox: &Sandbox, args: &[&str]) -> Command {
        let mut c = self.binary(sandbox);
        c.args(["run", "pb.yaml", "--accounts", "accounts.csv", "--yes"])
            .args(args);
        c
    }

    /// The binary in the test directory, pointed at the sandbox, every account's token set.
    pub(super) fn binary(&self, sandbox: &Sandbox) -> Command {
        let mut c = command();
        c.current_dir(self.dir.path())
            .env("WTS_BASE_URL", &sandbox.url)
            .env_remove("WTS_API_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for a in self.rows.keys() {
            c.env(format!("TOKEN_{}", a.to_uppercase()), token(a));
        }
        c
    }

    pub(super) fn run(&self, sandbox: &Sandbox, args: &[&str]) -> Output {
        self.command(sandbox, args).output().unwrap()
    }
}

pub(super) fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const COMPLETE: &str = r#"version: 1
name: close-per-account
inputs:
  rows: { csv: rows.csv, key: session_id }
settings: { concurrency: 4, rate_limit: "off" }
steps:
  - id: tell
    action: session.send_text
    for_each: inputs.rows
    with:
      session_id: "{{ row.session_id }}"
      text: "Closed by {{ account.name }} ({{ account.region }})"
  - id: close
    action: session.complete
    for_each: steps.tell.succeeded
    with:
      session_id: "{{ row.session_id }}"
"#;

#[test]
fn each_account_gets_its_own_rows_and_vars() {
    let accounts = [("alpha", 5), ("beta", 3), ("gamma", 2)];
    let sandbox = Sandbox::start(&["alpha", "beta", "gamma"], &[]);
    let fleet = Fleet::new(&accounts, COMPLETE);
    let out = fleet.run(&sandbox, &["--report", "fleet.json"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    for (a, n) in accounts {
        let mine = fleet.ids(a);
        assert_eq!(sandbox.completed(a, &mine).len(), n, "{a}");
        // The message names its own account and that account's var.
        let state = sandbox.state(a);
        let texts: BTreeSet<&str> = state["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| mine.iter().any(|i| m["sessionId"] == i.as_str()))
            .filter_map(|m| m["text"].as_str().or_else(|| m["body"].as_str()))
            .collect();
        assert_eq!(
            texts,
            BTreeSet::from([format!("Closed by {a} (region-of-{a})").as_str()]),
            "{a}"
        );
        // No other account's row reached it: its writes are exactly its own rows'.
        let writes = sandbox
            .journal(a)
            .into_iter()
            .filter(|(m, _, _)| m != "GET")
            .count();
        assert_eq!(writes, 2 * n, "{a}");
        for (other, _) in accounts.iter().filter(|(o, _)| *o != a) {
            assert!(sandbox.completed(a, &fleet.ids(other)).is_empty());
        }
    }
    // One report: every item names its account, totals per account.
    let report = read_report(&fleet.path("fleet.json"));
    let items = report["items"].as_array().unwrap();
    assert_eq!(items.len(), 2 * 10);
    for i in items {
        let a = i["account"].as_str().unwrap();
        assert!(fleet.ids(a).iter().any(|id| i["key"] == id.as_str()), "{i}");
    }
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["totals"]["succeeded"], 20);
    assert_eq!(report["per_account"]["beta"]["totals"]["succeeded"], 6);
    // The steps' figures add up every account's (for the views of the joined report).
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["id"], "tell");
    assert_eq!(steps[0]["totals"]["succeeded"], 10);
    assert_eq!(steps[1]["requests"], 10);
    let names: Vec<&str> = report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);
    // Each account's part is an ordinary report of its own.
    let part = read_report(&fleet.path("fleet.json.accounts/gamma.json"));
    assert_eq!(part["account"], "gamma");
    assert_eq!(part["totals"]["succeeded"], 4);
    // The summary has a line per account and a total; no token anywhere.
    for a in ["alpha", "beta", "gamma", "total"] {
        assert!(all.lines().any(|l| l.starts_with(a)), "{all}");
    }
    let raw = std::fs::read_to_string(fleet.path("fleet.json")).unwrap();
    for a in ["alpha", "beta", "gamma"] {
        assert!(!raw.contains(&token(a)) && !all.contains(&token(a)));
    }
}

#[test]
fn a_refused_token_stops_that_account_only() {
    // The sandbox does not know beta's token: its first request is a 401.
    let sandbox = Sandbox::start(&["alpha", "gamma"], &[]);
    let fleet = Fleet::new(&[("alpha", 4), ("beta", 4), ("gamma", 4)], COMPLETE);
    let out = fleet.run(&sandbox, &["--report", "fleet.json"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    for a in ["alpha", "gamma"] {
        assert_eq!(sandbox.completed(a, &fleet.ids(a)).len(), 4, "{a}");
    }
    let report = read_report(&fleet.path("fleet.json"));
    assert_eq!(report["outcome"], "failed");
    assert_eq!(report["per_account"]["beta"]["outcome"], "aborted");
    assert_eq!(report["per_account"]["alpha"]["outcome"], "completed");
    let reason = report["per_account"]["beta"]["abort_reason"]
        .as_str()
        .unwrap();
    assert!(
        reason.contains("401") || reason.contains("auth"),
        "{reason}"
    );
    assert!(!all.contains(&token("beta")), "{all}");
}

#[test]
fn an_exhausted_budget_stops_that_account_only() {
    // --strict: an unknown session is a 404. Alpha and gamma close sessions their accounts
    // have; beta's rows name sessions its account does not have.
    let sandbox = Sandbox::start(&["alpha", "beta", "gamma"], &["--strict"]);
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("session_id,account\n");
    let mut mine: HashMap<&str, Vec<String>> = HashMap::new();
    for a in ["alpha", "gamma"] {
        let state = sandbox.state(a);
        let open: Vec<String> = state["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] != "COMPLETED")
            .filter_map(|s| s["id"].as_str().map(str::to_owned))
            .take(6)
            .collect();
        assert_eq!(open.len(), 6);
        for id in &open {
            csv.push_str(&format!("{id},{a}\n"));
        }
        mine.insert(a, open);
    }
    for i in 0..6 {
        csv.push_str(&format!("{},beta\n", session_id("beta", i)));
    }
    std::fs::write(dir.path().join("rows.csv"), csv).unwrap();
    std::fs::write(
        dir.path().join("accounts.csv"),
        "name,token_env\nalpha,TOKEN_ALPHA\nbeta,TOKEN_BETA\ngamma,TOKEN_GAMMA\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pb.yaml"),
        r#"version: 1
name: close-strict
inputs:
  rows: { csv: rows.csv, key: session_id }
settings: { concurrency: 1, rate_limit: "off", max_failures: 1 }
steps:
  - id: close
    action: session.complete
    for_each: inputs.rows
    with:
      session_id: "{{ row.session_id }}"
"#,
    )
    .unwrap();
    let out = command()
        .current_dir(dir.path())
        .env("WTS_BASE_URL", &sandbox.url)
        .env("TOKEN_ALPHA", token("alpha"))
        .env("TOKEN_BETA", token("beta"))
        .env("TOKEN_GAMMA", token("gamma"))
        .args([
            "run",
            "pb.yaml",
            "--accounts",
            "accounts.csv",
            "--yes",
            "--report",
            "r.json",
        ])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    for a in ["alpha", "gamma"] {
        assert_eq!(sandbox.completed(a, &mine[a]).len(), 6, "{a}");
    }
    let report = read_report(&dir.path().join("r.json"));
    assert_eq!(report["per_account"]["beta"]["outcome"], "aborted");
    assert_eq!(report["per_account"]["alpha"]["outcome"], "completed");
    assert_eq!(report["per_account"]["gamma"]["totals"]["succeeded"], 6);
    // Beta stopped at its budget: two failures, not six attempts.
    let beta_writes = sandbox
        .journal("beta")
        .into_iter()
        .filter(|(m, _, _)| m != "GET")
        .count();
    assert!(beta_writes <= 2, "{beta_writes}");
}

#[test]
fn kill_9_then_resume_writes_once_per_account() {
    let sandbox = Sandbox::start(&["alpha", "beta", "gamma"], &["--latency-ms", "5"]);
    let n = 120;
    let fleet = Fleet::new(&[("alpha", n), ("beta", n), ("gamma", n)], COMPLETE);
    let mut child = fleet
        .command(&sandbox, &["--report", "first.json", "-q"])
        .spawn()
        .unwrap();
    // Wait (bounded) until every account has sent something, then SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ["alpha", "beta", "gamma"]
        .iter()
        .any(|a| sandbox.journal(a).len() < 20)
    {
        assert!(Instant::now() < deadline, "the run did not progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!fleet.path("first.json").exists(), "killed before the end");
    let before: usize = ["alpha", "beta", "gamma"]
        .iter()
        .map(|a| sandbox.messages(a, &fleet.ids(a)).len())
        .sum();
    assert!(before < 3 * n, "killed before the end ({before} sent)");
    // Running again into the same report without --resume would forget what was sent.
    let again = fleet.run(&sandbox, &["--report", "first.json"]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("did not finish"), "{}", text(&again));
    let out = fleet.run(
        &sandbox,
        &["--resume", "first.json", "--report", "second.json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for a in ["alpha", "beta", "gamma"] {
        let ids = fleet.ids(a);
        let messages = sandbox.messages(a, &ids);
        assert_eq!(messages.len(), n, "{a}: every session told");
        assert!(messages.values().all(|&c| c == 1), "{a}: told twice");
        assert_eq!(sandbox.completed(a, &ids).len(), n, "{a}");
        // Every write once: one message POST and one complete per session.
        let mut per_path: HashMap<String, usize> = HashMap::new();
        for (m, p, status) in sandbox.journal(a) {
            if m != "GET" && status < 300 {
                *per_path.entry(format!("{m} {p}")).or_default() += 1;
            }
        }
        assert!(per_path.values().all(|&c| c == 1), "{a}: {per_path:?}");
    }
    let report = read_report(&fleet.path("second.json"));
    assert_eq!(report["totals"]["succeeded"], 3 * 2 * n);
}

#[test]
fn shards_cover_every_account_once_and_merge() {
    let names = ["a1", "a2", "a3", "a4", "a5", "a6", "a7"];
    let sandbox = Sandbox::start(&names, &[]);
    let fleet = Fleet::new(&names.map(|n| (n, 2)), COMPLETE);
    let mut seen: Vec<String> = Vec::new();
    let mut reports = Vec::new();
    for i in 1..=3 {
        let shard = format!("{i}/3");
        let report = format!("shard-{i}.json");
        let out = fleet.run(&sandbox, &["--shard", &shard, "--report", &report]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        if !fleet.path(&report).exists() {
            continue; // a shard with no account writes no report
        }
        let r = read_report(&fleet.path(&report));
        assert_eq!(r["shard"], shard.as_str());
        for a in r["accounts"].as_array().unwrap() {
            seen.push(a["name"].as_str().unwrap().to_owned());
        }
        reports.push(report);
        // The same shard is the same accounts, every time (a dry run sends nothing).
        let again = fleet.run(
            &sandbox,
            &["--shard", &shard, "--dry-run", "--report", "dry.json"],
        );
        assert_eq!(again.status.code(), Some(0), "{}", text(&again));
        let d = read_report(&fleet.path("dry.json"));
        assert_eq!(d["accounts"], r["accounts"]);
        assert_eq!(
            d["per_account"].as_object().unwrap().len(),
            r["accounts"].as_array().unwrap().len()
        );
    }
    seen.sort();
    assert_eq!(seen, names, "every account in exactly one shard");
    for a in names {
        assert_eq!(sandbox.completed(a, &fleet.ids(a)).len(), 2, "{a}");
    }
    // The shards' reports merge into one.
    let out = command()
        .current_dir(fleet.dir.path())
        .args(["report", "--merge", "all.json"])
        .args(&reports)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let all = read_report(&fleet.path("all.json"));
    assert_eq!(all["accounts"].as_array().unwrap().len(), names.len());
    assert_eq!(all["per_account"].as_object().unwrap().len(), names.len());
    assert_eq!(all["totals"]["succeeded"], 2 * 2 * names.len());
    assert_eq!(all["items"].as_array().unwrap().len(), 2 * 2 * names.len());
    assert_eq!(all["merged_from"].as_array().unwrap().len(), reports.len());
    // Merging a report with itself is refused (an account in two inputs).
    let out = command()
        .current_dir(fleet.dir.path())
        .args(["report", "--merge", "twice.json", &reports[0], &reports[0]])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("is in both"), "{}", text(&out));
}

#[test]
fn a_bad_accounts_file_or_split_sends_nothing() {
    let sandbox = Sandbox::start(&["alpha", "beta"], &[]);
    let fleet = Fleet::new(&[("alpha", 2), ("beta", 2)], COMPLETE);
    // A missing token variable: exit 2 naming the file, line and column; nothing sent.
    let out = fleet
        .command(&sandbox, &[])
        .env_remove("TOKEN_BETA")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out);
    assert!(
        err.contains("accounts.csv:3:6") && err.contains("`TOKEN_BETA` is not set"),
        "{err}"
    );
    // A row for an account the file does not list.
    let mut rows = std::fs::read_to_string(fleet.path("rows.csv")).unwrap();
    rows.push_str("f1ee7000-0000-4000-8000-999999999999,omega\n");
    std::fs::write(fleet.path("rows.csv"), rows).unwrap();
    let out = fleet.run(&sandbox, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out);
    assert!(
        err.contains("rows.csv:6:38") && err.contains("account `omega`"),
        "{err}"
    );
    // A template reading a column the accounts file does not have.
    std::fs::write(fleet.path("rows.csv"), "session_id,account\nx1,alpha\n").unwrap();
    std::fs::write(
        fleet.path("pb.yaml"),
        COMPLETE.replace("account.region", "account.regoin"),
    )
    .unwrap();
    let out = fleet.run(&sandbox, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("did you mean"), "{}", text(&out));
    // A dry run needs no token.
    std::fs::write(fleet.path("pb.yaml"), COMPLETE).unwrap();
    std::fs::write(
        fleet.path("rows.csv"),
        format!("session_id,account\n{},alpha\n", session_id("alpha", 0)),
    )
    .unwrap();
    let out = fleet
        .command(&sandbox, &["--dry-run", "--report", "dry.json"])
        .env_remove("TOKEN_ALPHA")
        .env_remove("TOKEN_BETA")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for a in ["alpha", "beta"] {
        assert!(sandbox.journal(a).is_empty(), "{a}: nothing sent");
    }
}

#[test]
fn the_sandbox_keeps_each_account_apart() {
    let sandbox = Sandbox::start(&["alpha", "beta"], &[]);
    let (a, b) = (sandbox.state("alpha"), sandbox.state("beta"));
    // Seeded per account: same shape, different ids.
    assert_eq!(a["counts"]["sessions"], b["counts"]["sessions"]);
    assert_ne!(a["sessions"][0]["id"], b["sessions"][0]["id"]);
    // Several accounts: inspection names one.
    let (status, v) = sandbox.get("/__sandbox/state");
    assert_eq!(status, 400);
    assert_eq!(v["accounts"], serde_json::json!(["alpha", "beta"]));
    assert_eq!(sandbox.get("/__sandbox/journal?account=zeta").0, 404);
}

#[test]
fn an_unreachable_server_stops_that_account_only() {
    let sandbox = Sandbox::start(&["alpha", "beta"], &[]);
    let fleet = Fleet::new(
        &[("alpha", 4), ("beta", 4)],
        &COMPLETE.replace(
            "settings: { concurrency: 4, rate_limit: \"off\" }",
            "settings: { concurrency: 1, rate_limit: \"off\", unreachable_after: 2, retry: { attempts: 1 } }",
        ),
    );
    // Beta's own base URL: a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    std::fs::write(
        fleet.path("accounts.csv"),
        format!("name,token_env,region,base_url\nalpha,TOKEN_ALPHA,s,\nbeta,TOKEN_BETA,n,http://127.0.0.1:{port}\n"),
    )
    .unwrap();
    let out = fleet.run(&sandbox, &["--report", "r.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(sandbox.completed("alpha", &fleet.ids("alpha")).len(), 4);
    let report = read_report(&fleet.path("r.json"));
    assert_eq!(report["per_account"]["beta"]["outcome"], "aborted");
    let reason = report["per_account"]["beta"]["abort_reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason}");
    assert_eq!(report["per_account"]["alpha"]["outcome"], "completed");
}

#[test]
fn stop_all_stops_every_account_when_one_is_aborted() {
    // Beta's token is refused at once; alpha and gamma are still sending (20 ms a request).
    let sandbox = Sandbox::start(&["alpha", "gamma"], &["--latency-ms", "20"]);
    let fleet = Fleet::new(
        &[("alpha", 40), ("beta", 40), ("gamma", 40)],
        &COMPLETE.replace(
            "settings: { concurrency: 4, rate_limit: \"off\" }",
            "settings: { concurrency: 1, rate_limit: \"off\", on_account_failure: stop_all }",
        ),
    );
    let out = fleet.run(&sandbox, &["--report", "r.json"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    let report = read_report(&fleet.path("r.json"));
    assert_eq!(report["outcome"], "aborted");
    for a in ["alpha", "gamma"] {
        let facts = &report["per_account"][a];
        assert_eq!(facts["outcome"], "aborted", "{a}");
        let reason = facts["abort_reason"].as_str().unwrap();
        assert!(reason.contains("account `beta` was aborted"), "{reason}");
        assert!(
            sandbox.completed(a, &fleet.ids(a)).len() < 40,
            "{a} stopped early"
        );
    }
}

#[test]
fn validate_checks_the_playbook_for_every_account() {
    let fleet = Fleet::new(&[("alpha", 2), ("beta", 1)], COMPLETE);
    let validate = |pb: &str| {
        command()
            .current_dir(fleet.dir.path())
            .args(["validate", pb, "--accounts", "accounts.csv"])
            .output()
            .unwrap()
    };
    // No token is needed; each account's split rows are counted.
    let out = validate("pb.yaml");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("(2 accounts, 2 steps, 3 input rows in all)"),
        "{}",
        text(&out)
    );
    // Without the accounts file, `account.*` is an error that says what to do.
    let out = command()
        .current_dir(fleet.dir.path())
        .args(["validate", "pb.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--accounts FILE"), "{}", text(&out));
    std::fs::write(
        fleet.path("typo.yaml"),
        COMPLETE.replace("account.region", "account.regoin"),
    )
    .unwrap();
    let out = validate("typo.yaml");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no column `regoin`"), "{}", text(&out));
}
