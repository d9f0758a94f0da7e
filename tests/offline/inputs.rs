//! Integration tests of `inputs`: fixture CSVs grouped by outcome (`ok/`, `invalid/`), with the
//! rendered diagnostics snapshot-checked. Paths are relative to the crate root (the test cwd), so
//! snapshots hold no machine paths.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wts_playbook::diagnostic::Diagnostic;
use wts_playbook::inputs::{check, count_rows, open, read_header, FailedCsvWriter, InputSpec, Row};

fn fixture(name: &str) -> PathBuf {
    Path::new("tests/fixtures/csv").join(name)
}

fn spec(name: &str, key: Option<&str>) -> InputSpec {
    let spec = InputSpec::new("stale", fixture(name));
    match key {
        Some(k) => spec.with_key(k),
        None => spec,
    }
}

fn rows(spec: &InputSpec) -> Vec<Row> {
    open(spec)
        .unwrap_or_else(|d| panic!("{d}"))
        .map(|r| r.unwrap_or_else(|d| panic!("{d}")))
        .collect()
}

fn lines(rows: &[Row]) -> Vec<u64> {
    rows.iter().map(|r| r.line).collect()
}

fn keys(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| r.key.as_str()).collect()
}

/// The one problem `check` finds, also the one `open` (or iterating) reports.
fn only_problem(spec: &InputSpec) -> Diagnostic {
    let problems = check(spec, 100);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let first = match open(spec) {
        Err(d) => d,
        Ok(mut rows) => rows.find_map(Result::err).expect("a row problem"),
    };
    assert_eq!(first, problems[0]);
    problems.into_iter().next().unwrap()
}

// ---- ok ----

#[test]
fn bom_is_stripped() {
    let spec = spec("ok/bom.csv", Some("session_id"));
    let header = read_header(&spec).unwrap();
    assert_eq!(header.columns, ["session_id", "status", "ticket"]);
    assert_eq!(header.key_index, Some(0));
    let rows = rows(&spec);
    assert_eq!(keys(&rows), ["s-1", "s-2"]);
    assert_eq!(lines(&rows), [2, 3]);
    assert_eq!(rows[1].get("status"), Some("COMPLETED"));
    assert_eq!(rows[1].get("nope"), None);
    assert_eq!(rows[1].index, 1);
}

#[test]
fn semicolon_delimiter() {
    let spec = spec("ok/semicolon.csv", Some("session_id")).with_delimiter(b';');
    let rows = rows(&spec);
    assert_eq!(rows[0].get("note"), Some("a, b and c"));
    assert_eq!(rows[1].get("note"), Some("semi;colon"));
}

#[test]
fn quoted_commas_quotes_and_newlines_keep_line_numbers() {
    let spec = spec("ok/quoted.csv", Some("session_id"));
    let rows = rows(&spec);
    assert_eq!(keys(&rows), ["s-1", "s-2", "s-3", "s-4"]);
    // s-2 spans lines 3–5; a blank line 7 precedes s-4.
    assert_eq!(lines(&rows), [2, 3, 6, 8]);
    assert_eq!(rows[0].get("note"), Some("hello, world"));
    assert_eq!(
        rows[1].get("note"),
        Some("first line\nsecond line\nthird line")
    );
    assert_eq!(rows[2].get("note"), Some("he said \"hi\""));
    assert_eq!(count_rows(&spec).unwrap(), 4);
}

#[test]
fn crlf_and_blank_lines() {
    let spec = spec("ok/crlf.csv", Some("session_id"));
    let rows = rows(&spec);
    assert_eq!(keys(&rows), ["s-1", "s-2", "s-3"]);
    assert_eq!(lines(&rows), [3, 4, 7]);
    assert_eq!(rows[0].get("status"), Some("OPEN"), "no trailing \\r");
    assert_eq!(rows[1].get("status"), Some("multi\r\nline"));
    assert_eq!(
        read_header(&spec).unwrap().columns,
        ["session_id", "status"]
    );
}

#[test]
fn without_key_rows_are_numbered() {
    let spec = spec("ok/no_key.csv", None);
    let rows = rows(&spec);
    assert_eq!(keys(&rows), ["1", "2", "3"]);
    assert_eq!(lines(&rows), [2, 3, 4]);
    assert_eq!(
        rows[2].get("name"),
        Some("Carla"),
        "last line without newline"
    );
    let json = serde_json::Value::Object(rows[0].to_json());
    assert_eq!(json, serde_json::json!({"phone": "+551100", "name": "Ana"}));
}

#[test]
fn header_only_has_no_rows() {
    let spec = spec("ok/header_only.csv", Some("session_id"));
    assert!(rows(&spec).is_empty());
    assert!(check(&spec, 10).is_empty());
    assert_eq!(count_rows(&spec).unwrap(), 0);
}

#[test]
fn limit_is_taking_n() {
    let spec = spec("ok/quoted.csv", Some("session_id"));
    let first: Vec<Row> = open(&spec).unwrap().take(2).map(Result::unwrap).collect();
    assert_eq!(keys(&first), ["s-1", "s-2"]);
}

#[test]
fn rows_render_in_templates() {
    let spec = spec("ok/quoted.csv", Some("session_id"));
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let tmpl = env
        .template_from_str("{{ row.session_id }}:{{ row['phone'] }}")
        .unwrap();
    let out: Vec<String> = open(&spec)
        .unwrap()
        .map(|r| {
            let row = Arc::new(r.unwrap()).into_value();
            tmpl.render(minijinja::context! { row }).unwrap()
        })
        .collect();
    assert_eq!(out[0], "s-1:+551100");
    assert_eq!(out.len(), 4);
}

// ---- invalid: the file ----

#[test]
fn missing_file() {
    let d = only_problem(&spec("invalid/does_not_exist.csv", None));
    assert_eq!(d.file, fixture("invalid/does_not_exist.csv"));
    assert_eq!(d.line, 0);
    assert_eq!(d.message, "input `stale`: file not found");
    insta::assert_snapshot!(d.render());
}

#[test]
fn directory_is_unreadable() {
    let d = only_problem(&spec("invalid", None));
    assert_eq!(d.message, "input `stale`: is a directory, not a CSV file");
    insta::assert_snapshot!(d.render());
}

#[test]
fn empty_file() {
    let d = only_problem(&spec("invalid/empty.csv", None));
    assert_eq!(
        (d.line, d.message.as_str()),
        (0, "input `stale`: the file is empty")
    );
    insta::assert_snapshot!(d.render());
}

#[test]
fn bom_and_blank_lines_only_is_empty() {
    let d = only_problem(&spec("invalid/bom_only.csv", None));
    assert_eq!(d.message, "input `stale`: the file is empty");
}

// ---- invalid: the header ----

#[test]
fn duplicate_column() {
    let d = only_problem(&spec("invalid/duplicate_column.csv", None));
    assert_eq!((d.line, d.column), (1, 19));
    assert_eq!(
        d.message,
        "column `status` appears twice in the header (columns 2 and 3)"
    );
    insta::assert_snapshot!(d.render());
}

#[test]
fn empty_column_name() {
    let d = only_problem(&spec("invalid/empty_column.csv", None));
    assert_eq!((d.line, d.column), (1, 12));
    assert_eq!(d.message, "column 2 of the header has no name");
    insta::assert_snapshot!(d.render());
}

#[test]
fn missing_key_column() {
    let spec = spec("invalid/missing_key.csv", Some("session_id"));
    let d = only_problem(&spec);
    assert_eq!(d.file, fixture("invalid/missing_key.csv"));
    assert_eq!(d.line, 1);
    assert_eq!(
        d.message,
        "input `stale`: key column `session_id` is not in the header"
    );
    assert!(d
        .hint
        .as_deref()
        .unwrap()
        .starts_with("did you mean `sesion_id`?"));
    assert_eq!(read_header(&spec).unwrap_err(), d);
    insta::assert_snapshot!(d.render());
}

// ---- invalid: rows ----

#[test]
fn duplicate_keys_name_both_lines() {
    let problems = check(&spec("invalid/duplicate_key.csv", Some("session_id")), 100);
    let found: Vec<(usize, usize, &str)> = problems
        .iter()
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (7, 1, "key `def` on line 7 was already used on line 3"),
            (8, 1, "key `abc` on line 8 was already used on line 2"),
        ]
    );
    insta::assert_snapshot!(problems[0].render());
}

#[test]
fn ragged_rows() {
    let spec = spec("invalid/ragged.csv", Some("session_id"));
    let problems = check(&spec, 100);
    let found: Vec<(usize, usize, &str)> = problems
        .iter()
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (3, 14, "line 3 has 4 fields, the header has 3"),
            (6, 9, "line 6 has 2 fields, the header has 3"),
        ]
    );
    insta::assert_snapshot!("ragged_too_many", problems[0].render());
    insta::assert_snapshot!("ragged_too_few", problems[1].render());
    // The good rows still stream, with their lines.
    let good: Vec<u64> = open(&spec)
        .unwrap()
        .filter_map(Result::ok)
        .map(|r| r.line)
        .collect();
    assert_eq!(good, [2, 4]);
}

#[test]
fn invalid_utf8() {
    let d = only_problem(&spec("invalid/bad_utf8.csv", Some("session_id")));
    assert_eq!((d.line, d.column), (3, 12));
    assert_eq!(d.message, "line 3 is not valid UTF-8 (column `name`)");
    insta::assert_snapshot!(d.render());
}

#[test]
fn empty_key() {
    let d = only_problem(&spec("invalid/empty_key.csv", Some("session_id")));
    assert_eq!((d.line, d.column), (3, 1));
    assert_eq!(d.message, "line 3 has an empty key (column `session_id`)");
    insta::assert_snapshot!(d.render());
}

#[test]
fn check_stops_at_max_problems() {
    let spec = spec("invalid/duplicate_key.csv", Some("session_id"));
    assert_eq!(check(&spec, 1).len(), 1);
}

// ---- duplicate keys far apart (checkpoint re-read) ----

#[test]
fn duplicate_key_across_many_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let mut text = String::from("id,v\n");
    for i in 0..5000 {
        text.push_str(&format!("k{i},\"x\ny\"\n"));
    }
    text.push_str("k4321,again\n");
    std::fs::write(&path, text).unwrap();
    let problems = check(&InputSpec::new("big", &path).with_key("id"), 10);
    let messages: Vec<&str> = problems.iter().map(|d| d.message.as_str()).collect();
    // Each data row spans two lines: row i starts on line 2 + 2i.
    assert_eq!(
        messages,
        ["key `k4321` on line 10002 was already used on line 8644"]
    );
}

// ---- failed-rows CSV round trip ----

#[test]
fn failed_csv_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("failed.csv");
    let input = spec("ok/quoted.csv", Some("session_id"));
    let header = read_header(&input).unwrap();
    let mut writer = FailedCsvWriter::create(&out, &header, b',').unwrap();
    assert_eq!(
        writer.columns(),
        ["session_id", "note", "phone", "_status", "_error"]
    );
    let source = rows(&input);
    writer
        .write(&source[1], "failed", "400 Bad Request: \"nope\", really")
        .unwrap();
    writer
        .write(&source[2], "unknown", "timeout\nafter 30s")
        .unwrap();
    // Flushed as written: readable before `finish`.
    let back = rows(&InputSpec::new("failed", &out).with_key("session_id"));
    writer.finish().unwrap();
    assert_eq!(keys(&back), ["s-2", "s-3"]);
    assert_eq!(back[0].get("note"), source[1].get("note"));
    assert_eq!(
        back[0].get("_error"),
        Some("400 Bad Request: \"nope\", really")
    );
    assert_eq!(back[1].get("note"), Some("he said \"hi\""));
    assert_eq!(back[1].get("_status"), Some("unknown"));
    assert_eq!(back[1].get("_error"), Some("timeout\nafter 30s"));
    assert_eq!(lines(&back), [2, 5]);
    let bytes = std::fs::read(&out).unwrap();
    assert!(!bytes.starts_with(b"\xef\xbb\xbf"));
}

#[test]
fn failed_csv_adds_fixed_columns_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("failed.csv");
    // An input with its own `status` column: the added columns keep their fixed names.
    let header = read_header(&spec("ok/bom.csv", None)).unwrap();
    let writer = FailedCsvWriter::create(&out, &header, b',').unwrap();
    assert_eq!(
        writer.columns(),
        ["session_id", "status", "ticket", "_status", "_error"]
    );
    writer.finish().unwrap();
    assert!(check(&InputSpec::new("failed", &out), 10).is_empty());
    // Fed back as the input, a failed-rows CSV keeps its columns: `_status`/`_error` are
    // overwritten, not added a second time.
    let first = dir.path().join("first.csv");
    std::fs::write(
        &first,
        "session_id,note,_status,_error\ns-1,hi,failed,400 old\n",
    )
    .unwrap();
    let input = InputSpec::new("again", &first).with_key("session_id");
    let header = read_header(&input).unwrap();
    let mut writer = FailedCsvWriter::create(&out, &header, b',').unwrap();
    assert_eq!(
        writer.columns(),
        ["session_id", "note", "_status", "_error"]
    );
    writer
        .write(&rows(&input)[0], "unknown", "timeout")
        .unwrap();
    writer.finish().unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "session_id,note,_status,_error\ns-1,hi,unknown,timeout\n"
    );
}

#[test]
fn wrong_delimiter_is_suggested() {
    let problems = check(&spec("ok/semicolon.csv", Some("session_id")), 100);
    assert_eq!(problems[0].line, 1);
    assert_eq!(
        problems[0].hint.as_deref(),
        Some("the header is read as one column `session_id;status;note`: is the delimiter `;`? (set `delimiter:`)")
    );
}

#[test]
fn rows_move_across_threads() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<wts_playbook::inputs::Rows>();
    assert_send::<Arc<Row>>();
    assert_send::<FailedCsvWriter>();
}
