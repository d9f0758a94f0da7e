//! The schemas: the checked-in copies are what `wts-playbook schema ...` prints, the examples
//! match them, and the playbook schema flags what an editor should flag.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::cli::{root, run, yaml_files};

// Schemas: the checked-in copies are what `wts-playbook schema …` prints, and the examples
// match the playbook schema.

fn schema_file(which: &str) -> PathBuf {
    root().join(format!("schemas/{which}.schema.json"))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("schema serializes") + "\n"
}

fn assert_schema_current(which: &str, generated: &Value) {
    let path = schema_file(which);
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == pretty(generated),
        "schemas/{which}.schema.json is out of date; regenerate it with\n    \
         cargo run -- schema {which} > schemas/{which}.schema.json"
    );
}

#[test]
fn checked_in_playbook_schema_is_current() {
    assert_schema_current("playbook", &wts_playbook::schema::playbook_schema());
}

#[test]
fn checked_in_report_schema_is_current() {
    assert_schema_current("report", &wts_playbook::report::report_schema());
}

#[test]
fn schema_command_prints_the_checked_in_files() {
    for which in ["playbook", "report"] {
        let out = run(&["schema", which]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let checked_in = std::fs::read_to_string(schema_file(which)).expect("schema file");
        assert!(
            out.stdout == checked_in,
            "`wts-playbook schema {which}` differs from schemas/{which}.schema.json; regenerate \
             it with\n    cargo run -- schema {which} > schemas/{which}.schema.json"
        );
    }
}

pub(super) fn load_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(super) fn playbook_schema_file() -> Value {
    load_json(&schema_file("playbook"))
}

pub(super) fn report_schema_file() -> Value {
    load_json(&schema_file("report"))
}

pub(super) fn yaml_to_json(text: &str) -> Value {
    serde_yaml::from_str(text).expect("YAML parses into JSON values")
}

#[test]
fn every_example_playbook_matches_the_schema_and_points_at_it() {
    let schema = playbook_schema_file();
    for name in yaml_files("playbooks") {
        let path = root().join(format!("playbooks/{name}.yaml"));
        let text = std::fs::read_to_string(&path).expect("playbook");
        let first = text.lines().next().unwrap_or("");
        let rel = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{name}: first line is not the schema modeline: {first}"));
        let target = path.parent().expect("dir").join(rel);
        assert_eq!(
            target
                .canonicalize()
                .unwrap_or_else(|e| panic!("{name}: {rel}: {e}")),
            schema_file("playbook").canonicalize().expect("schema"),
            "{name}: the modeline does not point at schemas/playbook.schema.json"
        );
        let errors = schema_errors(&schema, &yaml_to_json(&text));
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[test]
fn the_schema_catches_a_wrong_with_key_an_unknown_action_and_a_wrong_value() {
    let schema = playbook_schema_file();
    let base = std::fs::read_to_string(root().join("playbooks/close-stale-sessions.yaml"))
        .expect("playbook");
    let cases = [
        (
            "reactivate_on_new_message:",
            "reactivate_on_new_mesage:",
            "reactivate_on_new_mesage",
        ),
        (
            "action: session.complete",
            "action: session.compete",
            "action",
        ),
        ("concurrency: 8", "concurrency: many", "concurrency"),
        ("on_error: continue", "on_error: carry_on", "on_error"),
        (
            "    for_each: inputs.stale",
            "    for_eahc: inputs.stale",
            "for_eahc",
        ),
    ];
    for (from, to, named) in cases {
        assert!(base.contains(from), "{from}");
        let broken = base.replacen(from, to, 1);
        let errors = schema_errors(&schema, &yaml_to_json(&broken));
        assert!(
            errors.iter().any(|e| e.contains(named)),
            "{to}: expected an error naming `{named}`, got {errors:#?}"
        );
    }
    // Missing required parameter.
    let broken = base.replacen("      session_id: \"{{ row.session_id }}\"\n", "", 1);
    let errors = schema_errors(&schema, &yaml_to_json(&broken));
    assert!(
        errors
            .iter()
            .any(|e| e.contains("\"session_id\" is a required property")),
        "{errors:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The playbook schema as an editor sees it, checked with a JSON Schema library (`jsonschema`,
// draft 2020-12 as schemars emits it). `format` is only an annotation here, as it is for
// yaml-language-server (it does not check `uuid`): what an editor flags must be a pattern.

/// The schema's errors for `value`, each as `PATH: MESSAGE`.
pub(super) fn schema_errors(schema: &Value, value: &Value) -> Vec<String> {
    let validator = jsonschema::options()
        .should_validate_formats(false)
        .build(schema)
        .expect("the schema compiles");
    validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_schema_flags_what_an_editor_should_flag() {
    let schema = playbook_schema_file();
    let base = std::fs::read_to_string(root().join("playbooks/close-stale-sessions.yaml"))
        .expect("playbook");
    assert!(schema_errors(&schema, &yaml_to_json(&base)).is_empty());
    let list = "version: 1\nname: x\nsteps:\n  - id: open\n    action: session.list\n    paginate: all\n    with: { page_size: 100 }\n";
    assert!(
        schema_errors(&schema, &yaml_to_json(list)).is_empty(),
        "{list}"
    );
    let cases = [
        (
            base.as_str(),
            "session_id: \"{{ row.session_id }}\"",
            "session_id: not-a-uuid",
            "/steps/0/with/session_id",
        ),
        (
            base.as_str(),
            "  - id: close",
            "  - id: Bad-Id",
            "/steps/1/id",
        ),
        (
            base.as_str(),
            "max_failures: 5%",
            "max_failures: lots",
            "/settings/max_failures",
        ),
        (
            base.as_str(),
            "action: session.complete",
            "action: null",
            "/steps/1/action",
        ),
        (
            list,
            "paginate: all",
            "paginate: everything",
            "/steps/0/paginate",
        ),
        (
            list,
            "page_size: 100",
            "page_size: 500",
            "/steps/0/with/page_size",
        ),
    ];
    for (text, from, to, at) in cases {
        assert!(text.contains(from), "{from}");
        let broken = text.replacen(from, to, 1);
        let errors = schema_errors(&schema, &yaml_to_json(&broken));
        assert!(
            errors.iter().any(|e| e.starts_with(&format!("{at}:"))),
            "{to}: expected an error at {at}, got {errors:#?}"
        );
    }
    // Each action offers its own summary, and `null` is not one of them.
    let choices = schema
        .pointer("/$defs/Step/properties/action/oneOf")
        .and_then(Value::as_array)
        .expect("action choices");
    assert_eq!(choices.len(), 40, "39 actions + http");
    let complete = choices
        .iter()
        .find(|c| c["const"] == "session.complete")
        .expect("session.complete");
    let summary = wts_playbook::catalog::lookup("session.complete")
        .expect("in the catalog")
        .summary;
    assert_eq!(complete["description"], summary);
    assert!(choices.iter().all(|c| !c["const"].is_null()));
    // `paginate` names `all`, not only "integer | null".
    let paginate = schema
        .pointer("/$defs/Step/properties/paginate")
        .expect("paginate");
    assert!(paginate.to_string().contains("\"all\""), "{paginate}");
    // `with:` is titled by its action (an editor labels the object by it, not by the root).
    let with = complete_with(&schema);
    assert_eq!(with["title"], "session.complete parameters");
}

fn complete_with(schema: &Value) -> &Value {
    schema
        .pointer("/$defs/Step/allOf")
        .and_then(Value::as_array)
        .and_then(|all| {
            all.iter().find(|c| {
                c.pointer("/if/properties/action/const") == Some(&Value::from("session.complete"))
            })
        })
        .and_then(|c| c.pointer("/then/properties/with"))
        .expect("session.complete's with")
}

#[test]
fn json_logs_carry_progress_as_json_events_once_per_step() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = dir.path().join("r.json");
    let out = run(&[
        "run",
        "playbooks/close-stale-sessions.yaml",
        "--sandbox",
        "--yes",
        "--log-format",
        "json",
        "--report",
        report.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events: Vec<Value> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for step in ["close", "tell"] {
        let finished: Vec<&Value> = events
            .iter()
            .filter(|e| e["fields"]["step"] == step && e["fields"]["message"] == "step finished")
            .collect();
        assert_eq!(finished.len(), 1, "{step}: {events:#?}");
        assert_eq!(
            finished[0]["fields"]["done"],
            finished[0]["fields"]["total"]
        );
    }
}
