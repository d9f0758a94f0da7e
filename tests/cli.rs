//! The command line end to end, on the real binary with the crate root as current directory (so
//! paths in messages are relative and snapshots hold no machine paths).
//!
//! In: the fixtures under `tests/fixtures/invalid/` (one problem per playbook, each snapshot-
//! checked as rendered on stderr), the example playbooks under `playbooks/`, and the checked-in
//! schemas under `schemas/`. Out: exit codes, stdout/stderr, dry-run reports in temp dirs.
//! Nothing here uses the network: `validate` and `run --dry-run` never send.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

const INVALID: &str = "tests/fixtures/invalid";

/// The binary, run from the crate root, without a token in its environment.
fn bin() -> Command {
    let mut cmd = Command::cargo_bin("wts-playbook").expect("the binary is built");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("WTS_API_TOKEN")
        .env_remove("WTS_BASE_URL")
        .env_remove("WTS_PLAYBOOK_LOG");
    cmd
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Out {
    run_cmd(bin().args(args))
}

fn run_cmd(cmd: &mut Command) -> Out {
    let out = cmd.output().expect("the binary runs");
    Out {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `NAME.yaml` files directly in `dir` (relative to the crate root), sorted.
fn yaml_files(dir: &str) -> Vec<String> {
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
        "add the new fixture to `invalid_fixtures!` in tests/cli.rs"
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
fn dry_run(playbook: &str, extra: &[&str]) -> (Out, Option<Value>) {
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

// ---------------------------------------------------------------------------------------------
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

fn load_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn playbook_schema_file() -> Value {
    load_json(&schema_file("playbook"))
}

fn report_schema_file() -> Value {
    load_json(&schema_file("report"))
}

fn yaml_to_json(text: &str) -> Value {
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
fn schema_errors(schema: &Value, value: &Value) -> Vec<String> {
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

// ---------------------------------------------------------------------------------------------
// The confirmation prompt, on a real terminal (util-linux `script` provides the pty).

#[test]
fn a_terminal_is_asked_before_changing_more_than_ten_objects() {
    let bin = assert_cmd::cargo::cargo_bin("wts-playbook");
    // Standard input decides, not stdout: piped through `tee`, the run still asks.
    for (answer, code, outcome, pipe) in [
        ("n", 3, "aborted", ""),
        ("y", 0, "completed", " | tee /dev/null"),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let report = dir.path().join("r.json");
        let command = format!(
            "{} run playbooks/close-stale-sessions.yaml --sandbox -q --report {}{pipe}",
            bin.display(),
            report.display()
        );
        let mut child = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(root())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("util-linux script runs");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            writeln!(stdin, "{answer}").expect("answer written");
        }
        let out = child.wait_with_output().expect("finished");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{answer}: {text}");
        // Exactly the planned writes, per action, and where they go.
        assert!(
            text.contains("This run will change 20 object(s) at http://127.0.0.1:"),
            "{text}"
        );
        assert!(
            text.contains("10  session.complete   (step `close`)"),
            "{text}"
        );
        assert!(
            text.contains("10  session.send_text  (step `tell`)"),
            "{text}"
        );
        assert!(text.contains("Proceed? [y/N]"), "{text}");
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
        assert_eq!(doc["outcome"], outcome, "{answer}");
    }
    // --yes never asks.
    let dir = tempfile::tempdir().expect("temp dir");
    let report = dir.path().join("r.json");
    let command = format!(
        "{} run playbooks/close-stale-sessions.yaml --sandbox --yes -q --report {}",
        bin.display(),
        report.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(root())
        .output()
        .expect("util-linux script runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Proceed?"));
}

/// `actions NAME` lists the outcome rules the runner applies: "already in the requested state"
/// answers and verification reads.
#[test]
fn actions_lists_unchanged_answers_and_verification() {
    let out = Command::cargo_bin("wts-playbook")
        .unwrap()
        .args(["actions", "session.complete"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ERROR_SESSION_ALREADY_COMPLETED") && text.contains("unchanged"),
        "{text}"
    );
    let out = Command::cargo_bin("wts-playbook")
        .unwrap()
        .args(["actions", "session.send_text"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("verified by listing the session's messages"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Route families (`settings.routes`, `--routes`).

const CARDS_PLAYBOOK: &str = "version: 1
name: cards
steps:
  - id: cards
    action: panel.list_cards
    with: { panel_id: 11111111-1111-4111-8111-111111111111, page_size: 5 }
  - id: session
    action: session.get
    routes: node
    with: { session_id: 22222222-2222-4222-8222-222222222222 }
";

fn planned_paths(doc: &Value) -> Vec<(String, String)> {
    doc["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["step"].as_str().unwrap_or_default().to_owned(),
                // Without the query string.
                i["request"]["path"]
                    .as_str()
                    .unwrap_or_default()
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_dry_run_previews_the_chosen_route_family_and_the_report_records_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pb = dir.path().join("cards.yaml");
    std::fs::write(&pb, CARDS_PLAYBOOK).expect("write playbook");
    let pb = pb.to_str().expect("utf-8 temp path");

    // Default: documented; the step's own `routes: node` wins.
    let (out, doc) = dry_run(pb, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = doc.expect("a report");
    assert_eq!(doc["settings"]["routes"], "documented");
    assert_eq!(
        doc["settings"]["step_routes"],
        serde_json::json!({"session": "node"})
    );
    assert_eq!(
        planned_paths(&doc),
        [
            ("cards".to_owned(), "/crm/v2/panel/card".to_owned()),
            (
                "session".to_owned(),
                "/chat/v1/session/22222222-2222-4222-8222-222222222222".to_owned()
            ),
        ]
    );
    assert!(
        out.stdout.contains("GET /crm/v2/panel/card?"),
        "{}",
        out.stdout
    );

    // `--routes node` for the run.
    let (out, doc) = dry_run(pb, &["--routes", "node"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = doc.expect("a report");
    assert_eq!(doc["settings"]["routes"], "node");
    assert_eq!(doc["settings"]["step_routes"], serde_json::json!({}));
    assert_eq!(planned_paths(&doc)[0].1, "/crm/v1/panel/card");
    assert!(
        out.stdout.contains("GET /crm/v1/panel/card?"),
        "{}",
        out.stdout
    );

    // A bad value on the command line is a usage error.
    assert_eq!(run(&["run", pb, "--dry-run", "--routes", "v2"]).code, 2);
}

#[test]
fn validate_takes_the_route_family_from_the_command_line() {
    let path = format!("{INVALID}/other_family_param.yaml");
    let node = run(&["validate", "--routes", "node", &path]);
    assert_eq!(node.code, 2);
    // Under `--routes node` the first step's `include_archived` is fine; the second step
    // pins `routes: node` itself, so its `status` is still refused.
    assert!(!node.stderr.contains("include_archived"), "{}", node.stderr);
    assert!(node
        .stderr
        .contains("parameter `status` exists only with `routes: documented`"));
    assert!(node.stderr.contains("1 problem found"));
}

#[test]
fn actions_shows_both_route_families() {
    let out = run(&["actions", "panel.update_card"]);
    assert_eq!(out.code, 0);
    assert!(out
        .stdout
        .contains("route:      PUT /crm/v3/panel/card/{card_id}  (routes: documented)"));
    assert!(out
        .stdout
        .contains("node route: PUT /crm/v1/panel/card/{card_id}  (routes: node)"));
    assert!(out.stdout.contains("[routes: node only]"));
    assert!(out.stdout.contains("[routes: documented only]"));
    let out = run(&["actions"]);
    assert!(out.stdout.contains("/chat/v2/session *"), "{}", out.stdout);
}

/// A wrongly typed value of any setting (the newer ones too) is named at its field and hides
/// none of the other problems.
#[test]
fn every_setting_with_a_wrong_value_is_reported_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pb = dir.path().join("v.yaml");
    std::fs::write(
        &pb,
        "version: 1\nname: v\nsettings: { concurrency: 0, max_failures: lots, max_pages: -1, max_items: many, unreachable_after: 2.5, max_retry_wait: [1], max_response_size: 8XB, routes: nodes }\nsteps:\n  - id: a\n    action: session.get\n    with: { session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6 }\n",
    )
    .expect("write");
    let out = run(&["validate", pb.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    for field in [
        "concurrency",
        "max_failures",
        "max_pages",
        "max_items",
        "unreachable_after",
        "max_retry_wait",
        "8XB",
        "nodes",
    ] {
        assert!(
            out.stderr.contains(field),
            "{field} not reported:\n{}",
            out.stderr
        );
    }
    assert!(out.stderr.contains("8 problems found"), "{}", out.stderr);
}
