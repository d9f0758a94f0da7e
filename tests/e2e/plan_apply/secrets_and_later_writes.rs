//! Plan and apply: secrets as references, kill -9 and resume, values known after apply, the
//! plan's copy of the playbook, the read budget, `show`.

use super::*;

const PARTNER_KEY: &str = "partner-key-5f1e9c";

#[test]
fn a_secret_is_a_reference_in_the_plan_and_apply_sends_its_value() {
    let sb = sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    seed(&sb, dir.path(), 5);
    let pb = greet_playbook(dir.path());
    let plan = dir.path().join("greet.plan.jsonl");
    let out = cmd(&sb)
        .env("PARTNER_KEY", PARTNER_KEY)
        .args(["plan", pb.to_str().unwrap(), "--out"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&plan).unwrap();
    for form in [PARTNER_KEY, &PARTNER_KEY.to_uppercase()] {
        assert!(!text.contains(form), "the plan holds the secret");
        assert!(!String::from_utf8_lossy(&out.stdout).contains(form));
    }
    let lines = plan_lines(&plan);
    assert_eq!(lines[0]["secrets"], serde_json::json!(["partner_key"]));
    // A value that read a secret is a reference as a whole (a filter could have changed its form).
    assert_eq!(lines[1]["body"]["text"], "[redacted]", "{}", lines[1]);
    assert_eq!(lines[1]["secret"], true);
    // Without the secret in the environment nothing is sent.
    let before = sb.journal_rows().len();
    let out = cmd(&sb)
        .args(["apply", plan.to_str().unwrap(), "-q", "--report"])
        .arg(dir.path().join("none.json"))
        .env_remove("PARTNER_KEY")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sb.journal_rows().len(), before);
    // With it, apply sends the value the templates make of it.
    let report = dir.path().join("greet.json");
    let out = cmd(&sb)
        .env("PARTNER_KEY", PARTNER_KEY)
        .args(["apply", plan.to_str().unwrap(), "-q", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = sb.get("/__sandbox/state");
    let sent: Vec<&str> = state["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["sessionId"].as_str().unwrap().starts_with(PREFIX))
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(sent.len(), 5, "{sent:?}");
    let upper = PARTNER_KEY.to_uppercase();
    assert!(
        sent.iter().all(|t| t.ends_with(&format!("code {upper}"))),
        "{sent:?}"
    );
    assert!(!std::fs::read_to_string(&report).unwrap().contains(&upper));
}

#[test]
fn kill_9_during_apply_then_resume_sends_each_write_once() {
    let sb = sandbox(&["--latency-ms", "15"]);
    let dir = tempfile::tempdir().unwrap();
    seed(&sb, dir.path(), 200);
    let pb = greet_playbook(dir.path());
    let plan = dir.path().join("greet.plan.jsonl");
    let out = cmd(&sb)
        .env("PARTNER_KEY", PARTNER_KEY)
        .args(["plan", pb.to_str().unwrap(), "-q", "--out"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = dir.path().join("first.json");
    let mut child = cmd(&sb)
        .env("PARTNER_KEY", PARTNER_KEY)
        .args(["apply", plan.to_str().unwrap(), "-q", "--report"])
        .arg(&report)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once some sends are recorded (bounded wait).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let done =
            std::fs::read_to_string(&report).map_or(0, |t| t.matches("\"step\":\"greet\"").count());
        if done >= 40 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let sent_first = sb
        .journal_rows()
        .iter()
        .filter(|(m, p, _)| m == "POST" && p.starts_with("/chat/v1/session/44444444"))
        .count();
    assert!(
        sent_first > 0 && sent_first < 200,
        "killed mid-way: {sent_first} sent"
    );
    let second = dir.path().join("second.json");
    let out = cmd(&sb)
        .env("PARTNER_KEY", PARTNER_KEY)
        .args(["apply", plan.to_str().unwrap(), "-q", "--resume"])
        .arg(&report)
        .arg("--report")
        .arg(&second)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Each planned message sent once: in the journal and in the state.
    let mut per_session: HashMap<String, usize> = HashMap::new();
    for (m, p, _) in sb.journal_rows() {
        if m == "POST" && p.starts_with(&format!("/chat/v1/session/{PREFIX}")) {
            let id = p
                .trim_start_matches("/chat/v1/session/")
                .split('/')
                .next()
                .unwrap()
                .to_owned();
            *per_session.entry(id).or_default() += 1;
        }
    }
    assert_eq!(per_session.len(), 200);
    assert!(per_session.values().all(|&n| n == 1), "{per_session:?}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&second).unwrap()).unwrap();
    let t = &v["plan_totals"];
    assert_eq!(t["succeeded"], 200, "{t}");
}

#[test]
fn values_known_after_apply_are_recorded_as_dependencies_and_resolved_by_apply() {
    let sb = sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leads.csv"),
        "lead,note\nL-1,called twice\nL-2,wants a demo\nL-3,asked for a quote\n",
    )
    .unwrap();
    let pb = dir.path().join("cards.yaml");
    std::fs::write(
        &pb,
        r#"version: 1
name: cards-with-notes
inputs:
  leads: { csv: leads.csv, key: lead }
settings: { rate_limit: "off" }
steps:
  - id: each
    for_each: inputs.leads
    steps:
      - id: card
        action: panel.create_card
        with: { step_id: 55555555-5555-4555-8555-000000000001, title: "Lead {{ row.lead }}" }
      - id: note
        action: panel.create_note_text
        with: { card_id: "{{ steps.card.output.id }}", text: "{{ row.note }}" }
"#,
    )
    .unwrap();
    let plan = dir.path().join("cards.plan.jsonl");
    let out = cmd(&sb)
        .args(["plan", pb.to_str().unwrap(), "--out"])
        .arg(&plan)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        sb.journal_rows().iter().all(|(m, _, _)| m == "GET"),
        "a plan sends no write"
    );
    let lines = plan_lines(&plan);
    assert_eq!(lines.last().unwrap()["writes"], 6);
    let notes: Vec<&Value> = lines.iter().filter(|l| l["step"] == "note").collect();
    assert_eq!(notes.len(), 3);
    for n in &notes {
        assert_eq!(
            n["path"], "/crm/v1/panel/card/<steps.card.output.id>/note",
            "{n}"
        );
        let dep = &n["depends_on"][0];
        assert_eq!(dep["value"], "steps.card.output.id");
        let card = lines
            .iter()
            .find(|l| l["step"] == "card" && l["key"] == n["key"])
            .unwrap();
        assert_eq!(dep["seq"], card["seq"], "{n}");
    }
    assert!(
        stdout.contains("known after apply: steps.card.output.id"),
        "{stdout}"
    );
    apply_cards(&sb, dir.path(), &plan);
}

/// Applies the cards-and-notes plan: each note goes to the card its own pipeline created.
fn apply_cards(sb: &SandboxProcess, dir: &Path, plan: &Path) {
    let report = dir.join("cards.json");
    let out = cmd(sb)
        .args(["apply", plan.to_str().unwrap(), "-q", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = sb.get("/__sandbox/state");
    let cards: HashMap<String, String> = state["cards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Lead L-"))
        })
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(cards.len(), 3);
    let on_new_cards: Vec<&Value> = state["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["cardId"].as_str().is_some_and(|c| cards.contains_key(c)))
        .collect();
    assert_eq!(
        on_new_cards.len(),
        3,
        "each note went to the card its pipeline created"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(v["plan_totals"]["succeeded"], 6, "{}", v["plan_totals"]);
}

#[test]
fn apply_runs_the_plans_copy_of_the_playbook_and_warns_when_the_disk_changed() {
    let sb = sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    seed(&sb, dir.path(), 10);
    let plan = make_plan(&sb, dir.path(), &[]);
    // The playbook now moves the sessions elsewhere: the plan, not the disk, is what runs.
    let pb = dir.path().join("move.yaml");
    let changed = std::fs::read_to_string(&pb).unwrap().replace(TO, FROM);
    std::fs::write(&pb, changed).unwrap();
    let before = sb.journal_rows().len();
    let (code, err, _) = apply_counting(&sb, &plan, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("has changed since the plan was made; the plan's copy is what runs"),
        "{err}"
    );
    let state = sb.get("/__sandbox/state");
    let moved = state["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"].as_str().unwrap().starts_with(PREFIX) && s["departmentId"] == TO)
        .count();
    assert_eq!(moved, 10);
    assert_eq!(writes_since(&sb, before).len(), 10);
}

#[test]
fn the_read_budget_caps_what_a_plan_reads() {
    let sb = sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    seed(&sb, dir.path(), 120);
    let pb = move_playbook(dir.path());
    let plan = dir.path().join("capped.plan.jsonl");
    let before = sb.journal_rows().len();
    let out = cmd(&sb)
        .args([
            "plan",
            pb.to_str().unwrap(),
            "-q",
            "--read-budget",
            "2",
            "--out",
        ])
        .arg(&plan)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("reads: at least 1 request(s)"), "{err}");
    assert!(
        err.contains("read budget (2 requests, --read-budget) is spent"),
        "{err}"
    );
    assert!(!plan.exists());
    assert_eq!(sb.journal_rows().len() - before, 2, "exactly the budget");
    // Below the estimate nothing is read at all.
    let out = cmd(&sb)
        .args([
            "plan",
            pb.to_str().unwrap(),
            "-q",
            "--read-budget",
            "0",
            "--out",
        ])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(sb.journal_rows().len() - before, 2);
}

#[test]
fn show_prints_a_plan_for_people_and_pull_requests_and_refuses_a_changed_one() {
    let sb = sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    seed(&sb, dir.path(), 7);
    let plan = make_plan(&sb, dir.path(), &[]);
    let show = |format: &str, path: &Path| {
        cmd(&sb)
            .args(["show", path.to_str().unwrap(), "--format", format])
            .output()
            .unwrap()
    };
    let text = String::from_utf8(show("text", &plan).stdout).unwrap();
    assert!(text.contains("writes    7"), "{text}");
    assert!(text.contains(&sb.url), "{text}");
    let md = String::from_utf8(show("markdown", &plan).stdout).unwrap();
    assert!(md.contains("| move | `session.transfer` | 7 |"), "{md}");
    let json: Value = serde_json::from_slice(&show("json", &plan).stdout).unwrap();
    assert_eq!(json["writes"].as_array().unwrap().len(), 7);
    let edited = dir.path().join("edited.plan.jsonl");
    std::fs::write(
        &edited,
        std::fs::read_to_string(&plan)
            .unwrap()
            .replacen("PUT", "GET", 1),
    )
    .unwrap();
    assert_eq!(show("text", &edited).status.code(), Some(4));
}

#[test]
fn a_secret_written_in_the_playbook_is_not_in_the_plans_copy_and_is_given_at_apply() {
    let sb = sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    seed(&sb, dir.path(), 2);
    let literal = "literal-secret-9911";
    let pb = dir.path().join("literal.yaml");
    std::fs::write(
        &pb,
        format!(
            r#"version: 1
name: literal-secret
vars:
  partner_key: {literal}
settings: {{ rate_limit: "off", secrets: [partner_key] }}
steps:
  - id: waiting
    action: session.list
    with: {{ status: [PENDING], department_id: {FROM} }}
  - id: greet
    action: session.send_text
    for_each: steps.waiting.output.items
    with: {{ session_id: "{{{{ item.id }}}}", text: "key {{{{ vars.partner_key }}}}" }}
"#
        ),
    )
    .unwrap();
    let plan = dir.path().join("literal.plan.jsonl");
    let out = cmd(&sb)
        .args(["plan", pb.to_str().unwrap(), "-q", "--out"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!std::fs::read_to_string(&plan).unwrap().contains(literal));
    let before = sb.journal_rows().len();
    let (code, err, sent) = apply_counting(&sb, &plan, &[]);
    assert_eq!((code, sent), (Some(2), 0), "{err}");
    assert!(err.contains("--var NAME=VALUE"), "{err}");
    assert_eq!(sb.journal_rows().len(), before);
    let out = cmd(&sb)
        .args(["apply", plan.to_str().unwrap(), "-q", "--var"])
        .arg(format!("partner_key={literal}"))
        .arg("--report")
        .arg(dir.path().join("literal.json"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = sb.get("/__sandbox/state");
    let with_key = state["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["text"].as_str() == Some(&format!("key {literal}")))
        .count();
    assert_eq!(with_key, 2);
}
