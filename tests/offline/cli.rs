//! The command line end to end, on the real binary with the crate root as current directory (so
//! paths in messages are relative and snapshots hold no machine paths).
//!
//! In: the fixtures under `tests/fixtures/invalid/` (one problem per playbook, each snapshot-
//! checked as rendered on stderr), the example playbooks under `playbooks/`, and the checked-in
//! schemas under `schemas/`. Out: exit codes, stdout/stderr, dry-run reports in temp dirs.
//! Nothing here uses the network: `validate` and `run --dry-run` never send.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

use crate::support::{cmd, Run};

use super::schema::{report_schema_file, schema_errors};

pub(super) const INVALID: &str = "tests/fixtures/invalid";

/// The binary, run from the crate root, without a token in its environment.
pub(super) fn bin() -> Command {
    cmd(root())
}

pub(super) type Out = Run;

pub(super) fn run(args: &[&str]) -> Out {
    run_cmd(bin().args(args))
}

pub(super) fn run_cmd(cmd: &mut Command) -> Out {
    Run::of(cmd)
}

pub(super) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `NAME.yaml` files directly in `dir` (relative to the crate root), sorted.
pub(super) fn yaml_files(dir: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            p.file_stem()
                .expect("file name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// Invalid playbooks: validate exits 2 with the diagnostics on stderr (snapshot), nothing on
// stdout; a dry run exits 2 too and writes no report.

/// Checks one invalid fixture and returns its rendered diagnostics.
fn check_invalid(name: &str) -> String {
    let path = format!("{INVALID}/{name}.yaml");
    let v = run(&["validate", &path]);
    assert_eq!(v.code, 2, "validate {path}\n{}", v.stderr);
    assert_eq!(v.stdout, "", "validate {path} printed on stdout");
    assert!(
        v.stderr.ends_with("nothing was sent\n"),
        "validate {path}: {}",
        v.stderr
    );
    assert!(
        v.stderr.contains(&format!("--> {INVALID}/")),
        "validate {path} names no file: {}",
        v.stderr
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let report = dir.path().join("report.json");
    let d = run(&[
        "run",
        &path,
        "--dry-run",
        "--report",
        report.to_str().expect("utf-8 temp path"),
    ]);
    assert_eq!(d.code, 2, "run --dry-run {path}\n{}", d.stderr);
    assert!(!report.exists(), "run --dry-run {path} wrote a report");
    assert_eq!(
        d.stderr, v.stderr,
        "run --dry-run {path} reports differently"
    );
    v.stderr
}

macro_rules! invalid_fixtures {
    ($($name:ident),* $(,)?) => {
        const INVALID_FIXTURES: &[&str] = &[$(stringify!($name)),*];
        mod invalid {
            $(
                #[test]
                fn $name() {
                    let stderr = super::check_invalid(stringify!($name));
                    insta::assert_snapshot!(stringify!($name), stderr);
                }
            )*
        }
    };
}

invalid_fixtures!(
    bad_routes,
    csv_bad_utf8,
    csv_dup_key,
    csv_empty,
    csv_missing,
    csv_no_key,
    csv_ragged,
    duplicate_id,
    empty,
    env_token,
    later_step,
    missing_param,
    needs_var,
    other_family_param,
    paginate_non_list,
    playbook_bad_utf8,
    several_problems,
    tab_indent,
    template_syntax,
    undefined_variable,
    unknown_action,
    unknown_input,
    unknown_param,
    unknown_top_key,
    wrong_type,
    yaml_syntax,
);

#[test]
fn every_invalid_fixture_has_a_test() {
    assert_eq!(
        yaml_files(INVALID),
        INVALID_FIXTURES,
        "add the new fixture to `invalid_fixtures!` in tests/offline/cli.rs"
    );
}

#[test]
fn several_problems_are_reported_at_once_in_file_order() {
    let v = run(&["validate", &format!("{INVALID}/several_problems.yaml")]);
    assert_eq!(v.code, 2);
    let positions: Vec<&str> = v
        .stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("--> "))
        .collect();
    assert_eq!(
        positions,
        [
            "tests/fixtures/invalid/several_problems.yaml:10:19",
            "tests/fixtures/invalid/several_problems.yaml:11:7",
            "tests/fixtures/invalid/several_problems.yaml:13:13",
        ]
    );
    assert!(v.stderr.contains("no column `sesion_id`"), "{}", v.stderr);
    assert!(
        v.stderr.contains("unknown parameter `stop_bot`"),
        "{}",
        v.stderr
    );
    assert!(
        v.stderr.contains("unknown action `session.send_txt`"),
        "{}",
        v.stderr
    );
    assert!(
        v.stderr.ends_with("3 problems found; nothing was sent\n"),
        "{}",
        v.stderr
    );
}

#[test]
fn wrong_values_are_named_where_they_are_and_hide_no_other_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("many.yaml");
    std::fs::write(
        &path,
        "version: 1\nname: many\nsettings: { max_failures: lots, concurrency: many }\nsteps:\n  - id: list\n    action: session.list\n    paginate: everything\n  - id: close\n    action: session.complete\n    for_each: steps.list.output.items\n    on_error: carry_on\n    with:\n      session_id: \"{{ item.id }}\"\n      reactivate: true\n  - id: tell\n    action: session.send_txt\n    for_each: steps.close.succeeded\n    with:\n      session_id: \"{{ item.row.session_id }}\"\n",
    )
    .expect("playbook written");
    let out = run(&["validate", path.to_str().expect("utf-8")]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let file = path.display().to_string();
    for (at, message) in [
        ("3:27", "invalid `max_failures`: expected a count (`10`) or a percentage of the step's items (`5%`), got `lots`"),
        ("3:46", "invalid `concurrency`: expected a whole number ≥ 1, got `many`"),
        ("7:15", "invalid `paginate`: expected `all` or a page count (a whole number ≥ 1), got `everything`"),
        ("11:15", "invalid `on_error`: expected `continue` or `stop`, got `carry_on`"),
        ("14:7", "unknown parameter `reactivate` for `session.complete`"),
        ("16:13", "unknown action `session.send_txt`"),
    ] {
        let pos = out
            .stderr
            .find(&format!("error: {message}\n  --> {file}:{at}\n"));
        assert!(pos.is_some(), "{message} at {at}:\n{}", out.stderr);
    }
    assert!(out.stderr.contains("6 problems found"), "{}", out.stderr);
    assert!(!out.stderr.contains("untagged"), "{}", out.stderr);
    // Durations and rate limits name their field too.
    std::fs::write(
        &path,
        "version: 1\nname: many\nsettings: { timeout: 5x, rate_limit: fast }\nsteps:\n  - id: a\n    action: session.list\n    retry: { backoff: soon }\n",
    )
    .expect("playbook written");
    let out = run(&["validate", path.to_str().expect("utf-8")]);
    for message in [
        "error: invalid `timeout`: `5x`",
        "error: invalid `rate_limit`: `fast`",
        "error: invalid `backoff`: `soon`",
    ] {
        assert!(out.stderr.contains(message), "{message}:\n{}", out.stderr);
    }
}

#[test]
fn validate_checks_every_file_and_fails_if_any_is_invalid() {
    let v = run(&[
        "validate",
        "playbooks/close-stale-sessions.yaml",
        &format!("{INVALID}/unknown_action.yaml"),
    ]);
    assert_eq!(v.code, 2);
    assert!(
        v.stdout
            .starts_with("ok: playbooks/close-stale-sessions.yaml"),
        "{}",
        v.stdout
    );
    assert!(
        v.stderr.contains("unknown action `session.compete`"),
        "{}",
        v.stderr
    );
}

#[test]
fn a_missing_playbook_is_invalid() {
    let v = run(&["validate", "tests/fixtures/nope.yaml"]);
    assert_eq!(v.code, 2);
    assert!(
        v.stderr.contains("error: cannot read playbook: ")
            && v.stderr.contains("--> tests/fixtures/nope.yaml\n"),
        "{}",
        v.stderr
    );
}

/// Runs a dry run with extra arguments; returns the output and the report (if written).
pub(super) fn dry_run(playbook: &str, extra: &[&str]) -> (Out, Option<Value>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = dir.path().join("report.json");
    let mut args = vec![
        "run",
        playbook,
        "--dry-run",
        "--report",
        report.to_str().expect("utf-8 temp path"),
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    let doc = report.exists().then(|| {
        let text = std::fs::read_to_string(&report).expect("report readable");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("report of {playbook}: {e}\n{text}"))
    });
    (out, doc)
}

#[test]
fn a_var_on_the_command_line_defines_an_undefined_var() {
    let playbook = format!("{INVALID}/needs_var.yaml");
    let (out, report) = dry_run(
        &playbook,
        &["--var", "department=c6f87718-6d76-407e-881e-d162ae2eb154"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = report.expect("a report");
    assert_eq!(
        report["items"][0]["request"]["body"]["newDepartmentId"],
        "c6f87718-6d76-407e-881e-d162ae2eb154",
        "{report:#}"
    );
    // A malformed --var is a command-line error.
    let (out, report) = dry_run(&playbook, &["--var", "department"]);
    assert_eq!(out.code, 2);
    assert!(report.is_none());
    assert!(
        out.stderr.contains("--var department: expected NAME=VALUE"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_var_the_playbook_does_not_declare_is_refused_with_a_did_you_mean() {
    let (out, report) = dry_run(
        "playbooks/close-stale-sessions.yaml",
        &["--var", "goodby=See you"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(report.is_none(), "nothing is planned");
    assert!(
        out.stderr.contains(
            "--var goodby=…: the playbook has no var `goodby` (the value would be ignored)"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `goodbye`"),
        "{}",
        out.stderr
    );
    // A declared one is taken.
    let (out, report) = dry_run(
        "playbooks/close-stale-sessions.yaml",
        &["--var", "goodbye=See you"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = report.expect("a report");
    let texts: Vec<&Value> = report["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i.pointer("/request/body/text"))
        .collect();
    assert!(
        !texts.is_empty() && texts.iter().all(|t| *t == "See you"),
        "{texts:?}"
    );
}

#[test]
fn an_input_on_the_command_line_replaces_the_csv() {
    // csv_missing.yaml names a file that does not exist; --input points it at one that does.
    let playbook = format!("{INVALID}/csv_missing.yaml");
    let (out, report) = dry_run(
        &playbook,
        &["--input", &format!("s={INVALID}/data/good.csv")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = report.expect("a report");
    assert_eq!(report["totals"]["planned"], 1, "{report:#}");
    assert_eq!(
        report["items"][0]["key"], "11111111-1111-4111-8111-111111111111",
        "{report:#}"
    );

    // A replacement that is itself invalid is reported at its own path.
    let (out, report) = dry_run(
        &playbook,
        &["--input", &format!("s={INVALID}/data/no_key.csv")],
    );
    assert_eq!(out.code, 2);
    assert!(report.is_none());
    assert!(
        out.stderr
            .contains("--> tests/fixtures/invalid/data/no_key.csv:1"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unknown_input_name_on_the_command_line_is_an_error() {
    let (out, report) = dry_run(
        "playbooks/close-stale-sessions.yaml",
        &["--input", &format!("stael={INVALID}/data/good.csv")],
    );
    assert_eq!(out.code, 2);
    assert!(report.is_none(), "no report for an invalid command line");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("--input stael=…: the playbook has no input `stael`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `stale`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_token_stays_out_of_templates_even_when_set() {
    let token = "pn_secret_token_value_123";
    let out = run_cmd(bin().env("WTS_API_TOKEN", token).args([
        "run",
        "--dry-run",
        &format!("{INVALID}/env_token.yaml"),
    ]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("`env.WTS_API_TOKEN` is not available to templates"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains(token) && !out.stderr.contains(token));
}

#[test]
fn a_csv_value_of_the_wrong_type_fails_the_dry_run_naming_row_and_parameter() {
    let playbook = format!("{INVALID}/rows/bad_bool.yaml");
    let expected_row = "row 2 (line 3, key 22222222-2222-4222-8222-222222222222): parameter \
                        `reactivate_on_new_message`";
    // Validation plans every row too (nothing sent), and names the row.
    let v = run(&["validate", &playbook]);
    assert_eq!(v.code, 2, "{}", v.stderr);
    assert!(v.stderr.contains(expected_row), "{}", v.stderr);
    // So does a real run's preflight, before anything is sent.
    let dir = tempfile::tempdir().expect("temp dir");
    let report = dir.path().join("r.json");
    let r = run(&[
        "run",
        &playbook,
        "--sandbox",
        "--yes",
        "--report",
        report.to_str().expect("utf-8"),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(expected_row) && r.stderr.contains("nothing was sent"),
        "{}",
        r.stderr
    );

    let (out, report) = dry_run(&playbook, &[]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let expected = "row 2 (line 3, key 22222222-2222-4222-8222-222222222222): parameter \
                    `reactivate_on_new_message`: expected a bool (true/false/yes/no/1/0), got \"maybe\"";
    assert!(
        out.stdout.contains(expected),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let report = report.expect("the dry run reports what it planned");
    assert_eq!(report["dry_run"], true);
    let failed: Vec<&Value> = report["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{report:#}");
    assert_eq!(failed[0]["error"], expected);
    assert_eq!(report["totals"]["planned"], 2);
}

// ---------------------------------------------------------------------------------------------
// The example playbooks: valid, and their dry runs plan every item.

#[test]
fn every_example_playbook_validates_and_dry_runs() {
    let names = yaml_files("playbooks");
    assert!(names.len() >= 5, "{names:?}");
    for name in names {
        let path = format!("playbooks/{name}.yaml");
        let v = run(&["validate", &path]);
        assert_eq!(v.code, 0, "validate {path}\n{}", v.stderr);
        assert!(
            v.stdout.starts_with(&format!("ok: {path} (")),
            "{}",
            v.stdout
        );

        let (out, report) = dry_run(&path, &["--quiet"]);
        assert_eq!(
            out.code, 0,
            "dry run {path}\n{}\n{}",
            out.stdout, out.stderr
        );
        assert!(
            out.stdout.starts_with("dry run: nothing was sent\n"),
            "{}",
            out.stdout
        );
        let report = report.unwrap_or_else(|| panic!("dry run {path} wrote no report"));
        assert_eq!(report["dry_run"], true, "{path}");
        assert_eq!(report["outcome"], "completed", "{path}");
        assert_eq!(report["playbook"]["path"], path.as_str());
        let items = report["items"].as_array().expect("items");
        assert!(!items.is_empty(), "{path}: no items");
        for item in items {
            let status = item["status"].as_str().unwrap_or("");
            assert!(
                status == "planned" || status == "skipped",
                "{path}: item {item}"
            );
            if status == "planned" {
                assert!(item["request"]["path"].is_string(), "{path}: item {item}");
            }
        }
        let errors = schema_errors(&report_schema_file(), &report);
        assert!(errors.is_empty(), "{path}: report vs schema: {errors:#?}");
    }
}

/// Each example rehearses cleanly against the built-in sandbox: every item succeeds, and the
/// summary says what changed.
#[test]
fn every_example_playbook_runs_against_the_sandbox() {
    for name in yaml_files("playbooks") {
        let path = format!("playbooks/{name}.yaml");
        let dir = tempfile::tempdir().expect("temp dir");
        let report = dir.path().join("report.json");
        let out = run(&[
            "run",
            &path,
            "--sandbox",
            "--yes",
            "-q",
            "--report",
            report.to_str().expect("utf-8"),
        ]);
        assert_eq!(out.code, 0, "{path}\n{}\n{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("sandbox: what changed"),
            "{}",
            out.stdout
        );
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
        assert_eq!(doc["outcome"], "completed", "{path}");
        assert!(
            doc["totals"]["succeeded"].as_u64().unwrap_or(0) > 0,
            "{path}: {doc}"
        );
        assert_eq!(doc["totals"]["failed"], 0, "{path}");
    }
}

// ---------------------------------------------------------------------------------------------
// actions, --help

#[test]
fn actions_lists_the_catalog() {
    let out = run(&["actions"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("ACTION"), "{}", lines[0]);
    assert_eq!(
        lines.len(),
        1 + 39 + 1,
        "header + 39 actions + http\n{}",
        out.stdout
    );
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no `{name}` line in\n{}", out.stdout))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("session.complete")[..4],
        [
            "session.complete",
            "PUT",
            "/chat/v1/session/{session_id}/complete",
            "yes"
        ]
    );
    assert_eq!(
        row("contact.create")[..4],
        ["contact.create", "POST", "/core/v1/contact", "no"]
    );
    assert_eq!(row("http")[..2], ["http", "any"]);
    assert_eq!(
        lines.last().and_then(|l| l.split_whitespace().next()),
        Some("http")
    );
}

#[test]
fn actions_describes_one_action() {
    let out = run(&["actions", "session.complete"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("route:      PUT /chat/v1/session/{session_id}/complete"),
        "{}",
        out.stdout
    );
    for param in [
        "session_id",
        "reactivate_on_new_message",
        "stop_bot_in_execution",
    ] {
        assert!(
            out.stdout.lines().any(|l| l.starts_with(param)),
            "no `{param}` in\n{}",
            out.stdout
        );
    }
}

#[test]
fn actions_fit_80_columns_off_a_terminal_and_speak_json() {
    let out = run(&["actions", "message.send_file"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let widest = out
        .stdout
        .lines()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    assert!(widest <= 80, "{widest} columns:\n{}", out.stdout);
    assert!(out.stdout.contains("\noutput:\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("runner: read by wts-playbook itself"),
        "{}",
        out.stdout
    );
    let out = run(&["actions", "contact.get_by_phone", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["name"], "contact.get_by_phone");
    assert_eq!(v["output"]["object"], "Contact");
    assert!(v["output"]["fields"]
        .as_array()
        .expect("fields")
        .contains(&Value::from("id")));
    let out = run(&["actions", "--format", "json"]);
    let all: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(all.as_array().map(Vec::len), Some(40));
}

#[test]
fn an_unknown_action_gets_a_did_you_mean() {
    let out = run(&["actions", "sesion.complete"]);
    assert_eq!(out.code, 2);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "error: unknown action `sesion.complete`\n  = help: did you mean `session.complete`?\n"
    );
}

#[test]
fn every_subcommand_has_help() {
    let top = run(&["--help"]);
    assert_eq!(top.code, 0);
    for sub in ["run", "validate", "actions", "schema", "sandbox", "report"] {
        assert!(
            top.stdout.contains(&format!("\n  {sub} ")),
            "`{sub}` not in\n{}",
            top.stdout
        );
        let out = run(&[sub, "--help"]);
        assert_eq!(out.code, 0, "{sub} --help: {}", out.stderr);
        assert!(
            out.stdout.contains(&format!("Usage: wts-playbook {sub}")),
            "{sub} --help:\n{}",
            out.stdout
        );
    }
    let run_help = run(&["run", "--help"]).stdout;
    for flag in [
        "--dry-run",
        "--input <NAME=PATH>",
        "--var <KEY=VALUE>",
        "--report",
        "--concurrency",
        "--rate-limit <SPEC>",
        "--sandbox",
        "--limit <N>",
        "--resume <REPORT>",
        "--yes",
        "--quiet",
        "--verbose",
        "--log-format",
        "--html <PATH>",
        "--junit <PATH>",
        "--markdown <PATH>",
    ] {
        assert!(run_help.contains(flag), "run --help lacks {flag}");
    }
    let report_help = run(&["report", "--help"]).stdout;
    for flag in [
        "<REPORT>",
        "--html <PATH>",
        "--junit <PATH>",
        "--markdown <PATH>",
    ] {
        assert!(report_help.contains(flag), "report --help lacks {flag}");
    }
}

#[test]
fn a_bad_command_line_exits_2() {
    assert_eq!(run(&[]).code, 2);
    assert_eq!(run(&["validate"]).code, 2);
    assert_eq!(run(&["schema", "nope"]).code, 2);
    assert_eq!(run(&["run", "x.yaml", "--concurrency", "many"]).code, 2);
}
