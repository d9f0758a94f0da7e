//! A plan runs once; a `when` that reads a write's answer is planned, not dropped; a key names
//! one planned write.

use super::*;

#[test]
fn a_plan_is_applied_once_and_a_second_apply_sends_nothing() {
    let sb = sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    seed(&sb, dir.path(), 5);
    let plan = make_plan(&sb, dir.path(), &[]);
    let (code, err, sent) = apply_counting(&sb, &plan, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(sent > 0);
    let (code, err, sent) = apply_counting(&sb, &plan, &[]);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("a plan runs once"), "{err}");
    assert_eq!(sent, 0, "the second apply sends nothing");
}

const CONDITIONAL: &str = r#"version: 1
name: conditional
vars:
  names: [ann, bob]
steps:
  - id: mk
    for_each: vars.names
    steps:
      - id: c
        action: contact.create
        with: { name: "{{ item }}" }
      - id: u
        action: contact.update
        when: "steps.c.output.name == 'ann'"
        with: { contact_id: "{{ steps.c.output.id }}", annotation: "x" }
"#;

#[test]
fn a_when_that_reads_a_writes_answer_is_planned_and_decided_at_apply() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("conditional.yaml");
    std::fs::write(&pb, CONDITIONAL).unwrap();
    let plan = dir.path().join("c.plan.jsonl");
    let out = crate::support::command()
        .current_dir(dir.path())
        .args(["plan", "conditional.yaml", "--sandbox", "-q", "--out"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let updates = plan_lines(&plan)
        .iter()
        .filter(|l| l["action"] == "contact.update")
        .count();
    assert_eq!(updates, 2, "both conditional updates are in the plan");
    let report = dir.path().join("c.report.json");
    let out = crate::support::command()
        .current_dir(dir.path())
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
    let items = report_items(&report);
    let sent: Vec<&Value> = items
        .iter()
        .filter(|i| i["step"] == "u" && i["status"] == "succeeded")
        .collect();
    assert_eq!(
        sent.len(),
        1,
        "only ann's update is sent, as `run` would: {items:?}"
    );
}

#[test]
fn two_planned_writes_with_one_key_are_refused_and_no_plan_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("dup.yaml");
    std::fs::write(
        &pb,
        r#"version: 1
name: dup
vars:
  items:
    - { id: "bbbbbbbb-0000-4000-8000-000000000001" }
    - { id: "bbbbbbbb-0000-4000-8000-000000000001" }
steps:
  - id: mk
    action: contact.create
    for_each: vars.items
    with: { name: "x{{ item.id }}" }
"#,
    )
    .unwrap();
    let plan = dir.path().join("dup.plan.jsonl");
    let out = crate::support::command()
        .current_dir(dir.path())
        .args(["plan", "dup.yaml", "--sandbox", "-q", "--out"])
        .arg(&plan)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("names two planned writes"), "{err}");
    assert!(!plan.exists());
}

#[test]
fn without_the_refresh_a_changed_row_behind_a_secret_is_still_drifted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "id,cid,msg\nr1,5e2b3a4c-0000-4000-8000-000000000001,hello\nr2,5e2b3a4c-0000-4000-8000-000000000002,bye\n").unwrap();
    std::fs::write(
        dir.path().join("note.yaml"),
        r#"version: 1
name: note
inputs:
  rows: { csv: in.csv, key: id }
vars:
  key: ""
settings:
  secrets: [key]
steps:
  - id: note
    action: contact.update
    for_each: inputs.rows
    with:
      contact_id: "{{ row.cid }}"
      annotation: "{{ row.msg }} sig={{ vars.key }}"
"#,
    )
    .unwrap();
    let plan = dir.path().join("n.plan.jsonl");
    let out = crate::support::command()
        .current_dir(dir.path())
        .args([
            "plan",
            "note.yaml",
            "--sandbox",
            "-q",
            "--var",
            "key=s3cr3t-k3y",
            "--out",
        ])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        dir.path().join("in.csv"),
        "id,cid,msg\nr1,5e2b3a4c-0000-4000-8000-000000000001,WIRE MONEY TO X\nr2,5e2b3a4c-0000-4000-8000-000000000002,bye\n",
    )
    .unwrap();
    let report = dir.path().join("n.report.json");
    let out = crate::support::command()
        .current_dir(dir.path())
        .args([
            "apply",
            plan.to_str().unwrap(),
            "-q",
            "--no-refresh",
            "--var",
            "key=s3cr3t-k3y",
            "--report",
        ])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let items = report_items(&report);
    let status = |key: &str| {
        items
            .iter()
            .find(|i| i["step"] == "note" && i["key"] == key)
            .map(|i| i["status"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(status("r1").as_deref(), Some("drifted"), "{items:?}");
    assert_eq!(status("r2").as_deref(), Some("succeeded"), "{items:?}");
}

#[test]
fn a_plan_that_is_not_a_regular_file_is_never_read() {
    let out = crate::support::command()
        .args(["show", "/dev/zero"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}
