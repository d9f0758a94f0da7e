//! `plan --accounts` and `apply --accounts` (README "Many accounts", "Plan and apply") against
//! one `wts-playbook sandbox` process serving several accounts: one plan per account whose
//! counts equal that account's sandbox state; apply sends each account's planned writes to
//! that account only, each once, into one joined report; a plan swapped between two accounts
//! is refused (exit 4) and no account's journal gets a request.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::accounts::{text, Fleet, Sandbox};
use crate::support::read_report;

const FROM: &str = "33333333-3333-4333-8333-000000000001";
const TO: &str = "33333333-3333-4333-8333-000000000002";

/// `pb.yaml`: each account's rows put waiting (PENDING) in `FROM` (sessions of its own).
const SEED: &str = r#"version: 1
name: seed
inputs:
  rows: { csv: rows.csv, key: session_id }
settings: { concurrency: 4, rate_limit: "off" }
steps:
  - id: into
    action: session.transfer
    for_each: inputs.rows
    with: { session_id: "{{ row.session_id }}", new_department_id: 33333333-3333-4333-8333-000000000001 }
  - id: wait
    action: session.change_status
    for_each: inputs.rows
    with: { session_id: "{{ row.session_id }}", new_status: PENDING }
"#;

/// `move.yaml`: list the waiting sessions of `FROM`, move each to `TO` (a note naming the
/// account's var in the transfer).
const MOVE: &str = r#"version: 1
name: move-waiting
settings: { concurrency: 4, rate_limit: "off" }
steps:
  - id: waiting
    action: session.list
    paginate: all
    with:
      status: [PENDING]
      department_id: 33333333-3333-4333-8333-000000000001
      page_size: 2
  - id: move
    action: session.transfer
    for_each: steps.waiting.output.items
    with:
      session_id: "{{ item.id }}"
      new_department_id: 33333333-3333-4333-8333-000000000002
"#;

const ACCOUNTS: [(&str, usize); 3] = [("alpha", 4), ("beta", 2), ("gamma", 3)];

/// The sandbox and the test directory, every account's rows seeded waiting in `FROM`.
fn seeded() -> (Sandbox, Fleet) {
    let sandbox = Sandbox::start(&["alpha", "beta", "gamma"], &[]);
    let fleet = Fleet::new(&ACCOUNTS, SEED);
    let out = fleet.run(&sandbox, &["-q", "--report", "seed.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::write(fleet.path("move.yaml"), MOVE).unwrap();
    (sandbox, fleet)
}

/// The account's sessions in `department`, with `status` if given.
fn sessions_in(
    sandbox: &Sandbox,
    account: &str,
    department: &str,
    status: Option<&str>,
) -> BTreeSet<String> {
    sandbox.state(account)["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["departmentId"] == department)
        .filter(|s| status.is_none_or(|st| s["status"] == st))
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect()
}

fn plan_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `plan move.yaml --accounts accounts.csv --out plans`: every account planned, each plan's
/// writes exactly its waiting sessions; only reads sent.
fn plan_all(sandbox: &Sandbox, fleet: &Fleet) {
    let before: Vec<usize> = ACCOUNTS
        .iter()
        .map(|(a, _)| sandbox.journal(a).len())
        .collect();
    let out = fleet
        .binary(sandbox)
        .args([
            "plan",
            "move.yaml",
            "--accounts",
            "accounts.csv",
            "--out",
            "plans",
        ])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("total: 9 write(s) planned"), "{all}");
    for ((a, n), since) in ACCOUNTS.iter().zip(before) {
        assert!(all.contains(&format!("{a}: {n} write(s) planned")), "{all}");
        let during: Vec<_> = sandbox.journal(a).split_off(since);
        assert!(
            !during.is_empty() && during.iter().all(|(m, _, _)| m == "GET"),
            "{a}: {during:?}"
        );
        let lines = plan_lines(&fleet.path(&format!("plans/{a}.plan.jsonl")));
        let waiting = sessions_in(sandbox, a, FROM, Some("PENDING"));
        assert_eq!(waiting.len(), *n, "{a}");
        let trailer = lines.last().unwrap();
        assert_eq!(trailer["writes"], *n as u64, "{a}");
        let keys: BTreeSet<String> = lines
            .iter()
            .filter(|l| l["type"] == "write")
            .map(|l| l["key"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(keys, waiting, "{a}");
        assert_eq!(lines[0]["base_url"], sandbox.url.as_str(), "{a}");
        // No token in any plan.
        let raw = std::fs::read_to_string(fleet.path(&format!("plans/{a}.plan.jsonl"))).unwrap();
        assert!(!raw.contains("pn_fleet_secret"), "{a}");
    }
    assert!(!all.contains("pn_fleet_secret"), "{all}");
}

#[test]
fn each_account_is_planned_and_applied_to_itself_only_once() {
    let (sandbox, fleet) = seeded();
    plan_all(&sandbox, &fleet);
    let before: Vec<usize> = ACCOUNTS
        .iter()
        .map(|(a, _)| sandbox.journal(a).len())
        .collect();
    let out = fleet
        .binary(&sandbox)
        .args([
            "apply",
            "plans",
            "--accounts",
            "accounts.csv",
            "--report",
            "applied.json",
        ])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains("pn_fleet_secret"), "{all}");
    for ((a, n), since) in ACCOUNTS.iter().zip(before) {
        let mine = fleet.ids(a);
        // Each of its sessions moved, by one transfer each, and nothing else written.
        let writes: Vec<(String, String, u64)> = sandbox
            .journal(a)
            .split_off(since)
            .into_iter()
            .filter(|(m, _, _)| m != "GET")
            .collect();
        assert_eq!(writes.len(), *n, "{a}: {writes:?}");
        for id in &mine {
            let hits = writes
                .iter()
                .filter(|(_, p, _)| p.contains(id.as_str()))
                .count();
            assert_eq!(hits, 1, "{a}: {id}: {writes:?}");
        }
        assert_eq!(
            sessions_in(&sandbox, a, TO, None),
            mine.iter().cloned().collect(),
            "{a}"
        );
        assert!(sessions_in(&sandbox, a, FROM, None).is_empty(), "{a}");
    }
    // One joined report: every item names its account and is one of its sessions.
    let report = read_report(&fleet.path("applied.json"));
    let items: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["step"] == "move")
        .collect();
    assert_eq!(items.len(), 9);
    for i in items {
        assert_eq!(i["status"], "succeeded", "{i}");
        let a = i["account"].as_str().unwrap();
        assert!(fleet.ids(a).iter().any(|id| i["key"] == id.as_str()), "{i}");
    }
    assert_eq!(report["outcome"], "completed");
    for (a, n) in ACCOUNTS {
        // Its listing (read again) and its transfers.
        let succeeded = &report["per_account"][a]["totals"]["succeeded"];
        assert_eq!(*succeeded, n as u64 + 1, "{a}");
        let part = read_report(&fleet.path(&format!("applied.json.accounts/{a}.json")));
        assert_eq!(part["account"], a);
        assert_eq!(part["plan"]["planned"], n as u64);
    }
}

#[test]
fn a_plan_swapped_between_accounts_is_refused_and_nothing_is_sent() {
    let (sandbox, fleet) = seeded();
    plan_all(&sandbox, &fleet);
    let (a, b) = (
        fleet.path("plans/alpha.plan.jsonl"),
        fleet.path("plans/beta.plan.jsonl"),
    );
    let tmp = fleet.path("plans/swap");
    std::fs::rename(&a, &tmp).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(&tmp, &b).unwrap();
    let before: Vec<usize> = ACCOUNTS
        .iter()
        .map(|(a, _)| sandbox.journal(a).len())
        .collect();
    let out = fleet
        .binary(&sandbox)
        .args([
            "apply",
            "plans",
            "--accounts",
            "accounts.csv",
            "--report",
            "applied.json",
        ])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(4), "{all}");
    assert!(all.contains("account `alpha`"), "{all}");
    assert!(all.contains("nothing was sent"), "{all}");
    assert!(!all.contains("pn_fleet_secret"), "{all}");
    // Not one request to any account, not even the token check.
    for ((a, n), since) in ACCOUNTS.iter().zip(before) {
        assert_eq!(sandbox.journal(a).len(), since, "{a}");
        assert_eq!(
            sessions_in(&sandbox, a, FROM, Some("PENDING")).len(),
            *n,
            "{a}"
        );
    }
    assert!(!fleet.path("applied.json").exists());
}

#[test]
fn resume_with_accounts_is_refused() {
    let out = crate::support::command()
        .args([
            "apply",
            "plans",
            "--accounts",
            "a.csv",
            "--resume",
            "r.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--resume"), "{}", text(&out));
}

#[test]
fn one_accounts_failed_plan_keeps_the_others_and_shards_cover_every_account_once() {
    let (sandbox, fleet) = seeded();
    // gamma's token is refused (401): its plan is aborted, the others are written.
    let out = fleet
        .binary(&sandbox)
        .env("TOKEN_GAMMA", "pn_fleet_secret_wrong_0123456789")
        .args([
            "plan",
            "move.yaml",
            "--accounts",
            "accounts.csv",
            "--out",
            "plans",
        ])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("gamma: no plan written (exit 3)"), "{all}");
    assert!(all.contains("total: 6 write(s) planned"), "{all}");
    assert!(!all.contains("pn_fleet_secret"), "{all}");
    assert!(!fleet.path("plans/gamma.plan.jsonl").exists());
    for (a, n) in &ACCOUNTS[..2] {
        let lines = plan_lines(&fleet.path(&format!("plans/{a}.plan.jsonl")));
        assert_eq!(lines.last().unwrap()["writes"], *n as u64, "{a}");
    }
    // The shards 1/2 and 2/2 plan every account exactly once between them.
    let mut planned = Vec::new();
    for shard in ["1/2", "2/2"] {
        let dir = format!("shard-{}", &shard[..1]);
        let out = fleet
            .binary(&sandbox)
            .args([
                "plan",
                "move.yaml",
                "--accounts",
                "accounts.csv",
                "--shard",
                shard,
            ])
            .args(["--out", &dir])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        if let Ok(entries) = std::fs::read_dir(fleet.path(&dir)) {
            for e in entries {
                planned.push(e.unwrap().file_name().to_string_lossy().into_owned());
            }
        }
    }
    planned.sort();
    assert_eq!(
        planned,
        ["alpha.plan.jsonl", "beta.plan.jsonl", "gamma.plan.jsonl"]
    );
}

#[test]
fn each_account_is_planned_and_verified_at_its_own_base_url() {
    let (sandbox, fleet) = seeded();
    let file = |name: &str, alpha_url: &str| {
        let mut csv = String::from("name,token_env,base_url,region\n");
        for (a, _) in ACCOUNTS {
            let url = if a == "alpha" {
                alpha_url
            } else {
                &sandbox.url
            };
            csv.push_str(&format!("{a},TOKEN_{},{url},r\n", a.to_uppercase()));
        }
        std::fs::write(fleet.path(name), csv).unwrap();
    };
    file("urls.csv", &sandbox.url);
    file("elsewhere.csv", "http://127.0.0.1:9");
    // WTS_BASE_URL points nowhere: every account is read at its own `base_url`.
    let out = fleet
        .binary(&sandbox)
        .env("WTS_BASE_URL", "http://127.0.0.1:9")
        .args([
            "plan",
            "move.yaml",
            "--accounts",
            "urls.csv",
            "--out",
            "plans",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let header = &plan_lines(&fleet.path("plans/alpha.plan.jsonl"))[0];
    assert_eq!(header["base_url"], sandbox.url.as_str());
    // alpha's plan is for the sandbox, not for the base URL the file now gives alpha.
    let before: Vec<usize> = ACCOUNTS
        .iter()
        .map(|(a, _)| sandbox.journal(a).len())
        .collect();
    let out = fleet
        .binary(&sandbox)
        .args([
            "apply",
            "plans",
            "--accounts",
            "elsewhere.csv",
            "--report",
            "r.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("account `alpha`"), "{}", text(&out));
    for ((a, _), since) in ACCOUNTS.iter().zip(before) {
        assert_eq!(sandbox.journal(a).len(), since, "{a}");
    }
}
