//! The run report end to end: write → parse as one JSON document and check it against the
//! generated JSON Schema; read back reports cut short at every byte; the in-flight journal;
//! the `--resume` index.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use wts_playbook::catalog::Method;
use wts_playbook::report::{
    inflight_path, read_report, report_schema, EventKind, ItemRecord, ItemRef, ItemStatus, Outcome,
    PlaybookRef, ReadReport, Report, ReportHeader, ReportReadError, ReportWriter, RequestRecord,
    ResponseRecord, ResumeIndex, RunEvent, RunFacts, StepFacts, Totals,
};

fn header() -> ReportHeader {
    ReportHeader::new(
        "0b7e4d2c-run",
        PlaybookRef {
            name: "close-stale-sessions".into(),
            path: "playbooks/close.yaml".into(),
            sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        },
        false,
        "2026-11-25T10:00:00Z".parse().unwrap(),
        json!({"concurrency": 8, "rate_limit": "api", "retry": {"attempts": 5}}),
    )
}

/// A varied set of items: every optional field, every status, unicode, escapes.
fn items() -> Vec<ItemRecord> {
    let mut ok = ItemRecord::new("close", 0, "9f1c", ItemStatus::Succeeded);
    ok.attempts = 1;
    ok.duration_ms = 212;
    ok.line = Some(2);
    ok.request = Some(RequestRecord {
        method: Method::Put,
        path: "/chat/v1/session/9f1c/complete".into(),
        body: Some(json!({"reactivateOnNewMessage": false, "stopBotInExecution": true})),
    });
    ok.response = Some(ResponseRecord {
        status: 200,
        body: None,
    });

    let mut bad = ItemRecord::new("close", 1, "77ab", ItemStatus::Failed);
    bad.attempts = 1;
    bad.duration_ms = 95;
    bad.line = Some(3);
    bad.request = Some(RequestRecord {
        method: Method::Put,
        path: "/chat/v1/session/77ab/complete?x=a%20b".into(),
        body: None,
    });
    bad.response = Some(ResponseRecord {
        status: 400,
        body: Some(json!({"key": "session.completed", "text": "Sessão já concluída\n\"quoted\""})),
    });
    bad.error = Some("400 Bad Request: Sessão já concluída".into());

    let mut skip = ItemRecord::new("close", 2, "line-4", ItemStatus::Skipped);
    skip.reason = Some("when is false".into());

    let mut unk = ItemRecord::new("tell", 0, "9f1c", ItemStatus::Unknown);
    unk.attempts = 1;
    unk.duration_ms = 30_000;
    unk.error = Some("timeout after 30s; not retried (not idempotent)".into());
    unk.parent = Some(ItemRef {
        step: "close".into(),
        index: 0,
    });
    unk.request = Some(RequestRecord {
        method: Method::Post,
        path: "/chat/v1/message/send".into(),
        body: Some(json!({"text": "Olá 👋", "sessionId": "9f1c"})),
    });

    let mut dry = ItemRecord::new("lookup", 0, "+5511999990000", ItemStatus::Planned);
    dry.output = Some(json!({"id": "<steps.lookup.output.id>"}));
    vec![ok, bad, skip, unk, dry]
}

fn write_report(path: &Path, items: &[ItemRecord], outcome: Outcome) {
    let mut w = ReportWriter::create(path, &header()).unwrap();
    for item in items {
        w.write_item(item).unwrap();
    }
    w.finish("2026-11-25T10:52:10Z".parse().unwrap(), outcome)
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// A small structural JSON Schema checker for the subset schemars emits: $ref into $defs,
// type, required, properties (and no undeclared keys), items, enum, const, anyOf/oneOf.

fn check(schema: &Value, root: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{at}: schema `false` rejects everything"));
        }
        return;
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("local $ref");
        check(&root["$defs"][name], root, value, at, errors);
    }
    if let Some(ty) = obj.get("type") {
        let types: Vec<&str> = match ty {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_u64() || value.is_i64(),
            "number" => value.is_number(),
            other => panic!("unexpected type {other}"),
        });
        if !ok {
            errors.push(format!("{at}: {value} is not of type {ty}"));
            return;
        }
    }
    if let Some(e) = obj.get("enum").and_then(Value::as_array) {
        if !e.contains(value) {
            errors.push(format!("{at}: {value} not in {e:?}"));
        }
    }
    if let Some(c) = obj.get("const") {
        if c != value {
            errors.push(format!("{at}: {value} != const {c}"));
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = obj.get(key).and_then(Value::as_array) {
            let matching = alts
                .iter()
                .filter(|s| {
                    let mut e = Vec::new();
                    check(s, root, value, at, &mut e);
                    e.is_empty()
                })
                .count();
            if matching == 0 || (key == "oneOf" && matching > 1) {
                errors.push(format!("{at}: {value} matches {matching} of {key}"));
            }
        }
    }
    let is_object_schema = obj.contains_key("properties") || obj.contains_key("required");
    if let (Some(map), true) = (value.as_object(), is_object_schema) {
        for req in obj
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let req = req.as_str().unwrap();
            if !map.contains_key(req) {
                errors.push(format!("{at}: missing required key `{req}`"));
            }
        }
        let props = obj.get("properties").and_then(Value::as_object);
        for (k, v) in map {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(s, root, v, &format!("{at}.{k}"), errors),
                None => errors.push(format!("{at}: key `{k}` is not in the schema")),
            }
        }
    }
    if let (Some(arr), Some(item_schema)) = (value.as_array(), obj.get("items")) {
        for (i, v) in arr.iter().enumerate() {
            check(item_schema, root, v, &format!("{at}[{i}]"), errors);
        }
    }
}

fn schema_errors(doc: &Value) -> Vec<String> {
    let schema = report_schema();
    let mut errors = Vec::new();
    check(&schema, &schema, doc, "$", &mut errors);
    errors
}

#[test]
fn finished_report_is_one_json_document_matching_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reports/r.json");
    write_report(&path, &items(), Outcome::Failed);
    let text = fs::read_to_string(&path).unwrap();

    let report: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(report.header, header());
    assert_eq!(report.items, items());
    assert_eq!(report.footer.outcome, Outcome::Failed);
    assert_eq!(
        report.footer.totals,
        Totals {
            planned: 1,
            succeeded: 1,
            failed: 1,
            skipped: 1,
            unknown: 1,
            unchanged: 0,
            drifted: 0,
        }
    );

    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(schema_errors(&doc), Vec::<String>::new());
    // The contract's field order at the top level.
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "format",
            "tool",
            "run_id",
            "playbook",
            "dry_run",
            "started_at",
            "settings",
            "items",
            "finished_at",
            "outcome",
            "totals"
        ]
    );
    assert_eq!(doc["started_at"], "2026-11-25T10:00:00Z");
    assert_eq!(doc["items"][0]["request"]["method"], "PUT");
}

/// The run facts (issue 11): the base URL in the header, each item's start, and in the footer
/// the durations, 429s, retry and pause events and the abort reason; schema-valid and read
/// back unchanged.
#[test]
fn run_facts_are_written_schema_valid_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    let mut h = header();
    h.base_url = Some("https://api.wts.chat".into());
    let mut items = items();
    items[0].started_at = Some("2026-11-25T10:00:00.250Z".parse().unwrap());
    let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    let facts = RunFacts {
        duration_ms: Some(3_130_000),
        rate_limited: Some(1),
        abort_reason: Some("failure budget exceeded".into()),
        steps: vec![StepFacts {
            id: "close".into(),
            started_at: Some(at("2026-11-25T10:00:00.250Z")),
            duration_ms: 1200,
            requests: 3,
            totals: Totals {
                succeeded: 1,
                failed: 1,
                skipped: 1,
                ..Totals::default()
            },
        }],
        events: vec![
            RunEvent {
                at: at("2026-11-25T10:00:00.500Z"),
                kind: EventKind::Retry,
                step: "close".into(),
                key: "77ab".into(),
                status: Some(429),
                cause: "rate_limited".into(),
                wait_ms: 1000,
            },
            RunEvent {
                at: at("2026-11-25T10:00:00.500Z"),
                kind: EventKind::Pause,
                step: "close".into(),
                key: "77ab".into(),
                status: Some(429),
                cause: "rate_limited".into(),
                wait_ms: 1000,
            },
        ],
        events_dropped: 0,
        plan_totals: None,
    };
    let mut w = ReportWriter::create(&path, &h).unwrap();
    for item in &items {
        w.write_item(item).unwrap();
    }
    w.finish_with(at("2026-11-25T10:52:10Z"), Outcome::Aborted, facts.clone())
        .unwrap();
    let text = fs::read_to_string(&path).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(schema_errors(&doc), Vec::<String>::new());
    assert_eq!(doc["base_url"], "https://api.wts.chat");
    assert_eq!(doc["items"][0]["started_at"], "2026-11-25T10:00:00.250Z");
    assert_eq!(doc["duration_ms"], 3_130_000);
    assert_eq!(doc["rate_limited"], 1);
    assert_eq!(doc["abort_reason"], "failure budget exceeded");
    assert_eq!(doc["steps"][0]["started_at"], "2026-11-25T10:00:00.250Z");
    assert_eq!(doc["events"][1]["kind"], "pause");
    assert!(doc.get("events_dropped").is_none(), "zero is left out");
    let back = read_report(&path).unwrap();
    assert_eq!(back.header, h);
    assert_eq!(back.items, items);
    assert_eq!(back.footer.unwrap().run, facts);
}

#[test]
fn the_schema_checker_catches_drift() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    write_report(&path, &items(), Outcome::Completed);
    let good: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();

    let mut missing = good.clone();
    missing["items"][1]
        .as_object_mut()
        .unwrap()
        .remove("attempts");
    assert!(schema_errors(&missing)
        .iter()
        .any(|e| e.contains("missing required key `attempts`")));

    let mut bad_status = good.clone();
    bad_status["items"][0]["status"] = json!("done");
    assert!(!schema_errors(&bad_status).is_empty());

    let mut extra = good;
    extra["totals"]["lost"] = json!(0);
    assert!(schema_errors(&extra).iter().any(|e| e.contains("`lost`")));
}

// ---------------------------------------------------------------------------------------------
// Truncation and garbage: never a panic, and what is read is a prefix of what was written.

fn read_bytes(path: &Path, bytes: &[u8]) -> Result<ReadReport, ReportReadError> {
    // A fresh file each time: truncating one in place makes ext4 flush it (auto_da_alloc),
    // which is a thousand times slower than this test needs.
    let _ = fs::remove_file(path);
    fs::write(path, bytes).unwrap();
    read_report(path)
}

#[test]
fn every_prefix_of_a_report_reads_a_prefix_of_its_items() {
    let dir = tempfile::tempdir().unwrap();
    let full_path = dir.path().join("full.json");
    let all = items();
    write_report(&full_path, &all, Outcome::Completed);
    let full = fs::read(&full_path).unwrap();
    let header_end = full.iter().position(|&b| b == b'\n').unwrap(); // header line, sans newline
    let cut = dir.path().join("cut.json");

    let mut last_count = 0;
    for len in 0..=full.len() {
        let result = read_bytes(&cut, &full[..len]);
        if len < header_end {
            let err = result.expect_err("a cut header cannot be read");
            let msg = err.to_string();
            assert!(msg.contains("cut.json"), "{msg}");
            if len > 0 {
                assert!(msg.contains(":1:"), "{msg}");
            }
            continue;
        }
        let r = result.unwrap_or_else(|e| panic!("prefix of {len} bytes: {e}"));
        assert_eq!(r.header, header());
        assert!(r.items.len() <= all.len());
        assert_eq!(r.items[..], all[..r.items.len()], "prefix of {len} bytes");
        assert!(
            r.items.len() >= last_count,
            "items never disappear as the file grows"
        );
        last_count = r.items.len();
        assert_eq!(r.truncated, r.footer.is_none());
        // A cut exactly at the end of a line loses nothing.
        if full[len - 1] == b'\n' || len == header_end {
            assert_eq!(r.partial_line, None, "prefix of {len} bytes");
        }
        if len == full.len() {
            assert!(!r.truncated);
            assert_eq!(r.items, all);
        }
    }
    assert_eq!(last_count, all.len());
}

#[test]
fn corrupting_any_byte_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let full_path = dir.path().join("full.json");
    let all = items();
    write_report(&full_path, &all, Outcome::Completed);
    let full = fs::read(&full_path).unwrap();
    let bad = dir.path().join("bad.json");
    for pos in 0..full.len() {
        for byte in [0xff, 0x00, b'\n', b'"', b'}', b','] {
            let mut bytes = full.clone();
            bytes[pos] = byte;
            // One changed byte can alter at most one item and never add one.
            if let Ok(r) = read_bytes(&bad, &bytes) {
                assert!(r.items.len() <= all.len(), "byte {pos} = {byte:#x}");
                let changed = r.items.iter().zip(&all).filter(|(a, b)| a != b).count();
                assert!(
                    changed <= 1,
                    "byte {pos} = {byte:#x}: {changed} items changed"
                );
            }
        }
    }
}

#[test]
fn garbage_invalid_utf8_and_empty_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.json");

    let err = read_bytes(&p, b"").unwrap_err();
    assert!(matches!(err, ReportReadError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("g.json: the report is empty"));

    for garbage in [
        &b"\xff\xfe\x00garbage\n\x80\x81"[..],
        b"hello world\n",
        b"[1,2,3]",
        b"{\"format\":1,",
    ] {
        let err = read_bytes(&p, garbage).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("g.json:1: bad report header"), "{msg}");
    }

    let missing = read_report(&dir.path().join("nope.json")).unwrap_err();
    assert!(matches!(missing, ReportReadError::Io { .. }));
    assert!(missing.to_string().contains("nope.json"));

    // Deterministic pseudo-random garbage after a valid header.
    let good = dir.path().join("good.json");
    write_report(&good, &items(), Outcome::Completed);
    let text = fs::read(&good).unwrap();
    let head_len = text.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..200 {
        let mut bytes = text[..head_len].to_vec();
        for _ in 0..=round % 50 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.push(state.to_le_bytes()[3]);
        }
        // Whatever the garbage, reading returns (Ok or Err) without panicking, and an Ok
        // result never invents items out of noise longer than a line.
        if let Ok(r) = read_bytes(&p, &bytes) {
            assert!(r.items.len() <= 1, "{:?}", r.items);
        }
    }
}

#[test]
fn a_malformed_line_in_the_middle_is_an_error_naming_it_but_a_bad_last_line_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    write_report(&path, &items(), Outcome::Completed);
    let text = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();

    // Line 3 (the second item) broken, more follows: error naming line 3.
    let mut broken = lines.clone();
    broken[2] = ",{\"step\":\"close\",\"ind\u{fffd}".to_owned();
    let err = read_bytes(&path, broken.join("\n").as_bytes()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, ReportReadError::Malformed { line: 3, .. }),
        "{msg}"
    );
    assert!(msg.contains("r.json:3: bad item line"), "{msg}");

    // Invalid UTF-8 in the middle: also an error naming the line.
    let mut bytes = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if i == 2 {
            bytes.extend_from_slice(b",{\"step\":\"\xff\"}");
        } else {
            bytes.extend_from_slice(l.as_bytes());
        }
        bytes.push(b'\n');
    }
    assert!(matches!(
        read_bytes(&path, &bytes).unwrap_err(),
        ReportReadError::Malformed { line: 3, .. }
    ));

    // No footer, last line zero-filled (power loss): dropped, report truncated.
    lines.pop();
    let mut bytes = lines.join("\n").into_bytes();
    bytes.extend_from_slice(b"\n\0\0\0\0\0\0\0\0");
    let r = read_bytes(&path, &bytes).unwrap();
    assert_eq!(r.items, items());
    assert!(r.truncated);
    assert_eq!(r.partial_line, Some(lines.len() as u64 + 1));

    // Content after the footer is an error.
    let mut after = text.clone();
    after.push_str(",{\"step\":\"x\"}\n");
    let err = read_bytes(&path, after.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("after the footer"), "{err}");
}

#[test]
fn reformatted_reports_are_read_as_one_document_and_other_formats_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    write_report(&path, &items(), Outcome::Completed);
    let doc: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();

    let pretty = serde_json::to_string_pretty(&doc).unwrap();
    let r = read_bytes(&path, pretty.as_bytes()).unwrap();
    assert_eq!(r.items, items());
    assert!(!r.truncated);

    let text = serde_json::to_string(&doc)
        .unwrap()
        .replacen("\"format\":1", "\"format\":2", 1);
    let err = read_bytes(&path, text.as_bytes()).unwrap_err();
    assert!(
        matches!(err, ReportReadError::UnsupportedFormat { found: 2, .. }),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// In-flight journal and resume.

fn crashed_run(dir: &Path) -> PathBuf {
    let path = dir.join("crash.json");
    let mut w = ReportWriter::create(&path, &header()).unwrap();
    w.set_sync_markers(false);
    w.write_item(&ItemRecord::new("close", 0, "a", ItemStatus::Succeeded))
        .unwrap();
    w.flush().unwrap();
    // Three sends start; one finishes (its record is flushed at once since it closes a marker).
    for (i, key) in (0u64..).zip(["a", "b", "c"]) {
        w.write_started("tell", i, key).unwrap();
    }
    w.write_item(&ItemRecord::new("tell", 0, "a", ItemStatus::Succeeded))
        .unwrap();
    // An idempotent item still in the write buffer when the process dies: lost.
    w.write_item(&ItemRecord::new("close", 1, "z", ItemStatus::Succeeded))
        .unwrap();
    // kill -9: no destructor runs, buffered bytes never reach the file.
    std::mem::forget(w);
    path
}

fn ids(items: impl IntoIterator<Item = (String, u64, String)>) -> Vec<(String, u64, String)> {
    items.into_iter().collect()
}

fn triple(step: &str, index: u64, key: &str) -> (String, u64, String) {
    (step.to_owned(), index, key.to_owned())
}

#[test]
fn markers_without_a_final_record_are_in_flight_and_resume_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = crashed_run(dir.path());
    assert!(inflight_path(&path).exists());

    let r = read_report(&path).unwrap();
    assert!(r.truncated);
    assert_eq!(
        ids(r.items.iter().map(|i| triple(&i.step, i.index, &i.key))),
        [triple("close", 0, "a"), triple("tell", 0, "a")]
    );
    assert_eq!(
        ids(r.in_flight.iter().map(|m| triple(&m.step, m.index, &m.key))),
        [triple("tell", 1, "b"), triple("tell", 2, "c")]
    );

    let index = ResumeIndex::from_report(&r);
    assert_eq!(index.status_of("tell", "a"), Some(ItemStatus::Succeeded));
    assert_eq!(index.status_of("tell", "b"), Some(ItemStatus::Unknown));
    assert_eq!(index.status_of("tell", "c"), Some(ItemStatus::Unknown));
    assert_eq!(
        index.status_of("close", "z"),
        None,
        "lost from the buffer: runs again"
    );
    assert!(index.should_skip("tell", "b", false));
    assert!(!index.should_skip("tell", "b", true));
    assert_eq!(index.unknown(), [("tell", "b"), ("tell", "c")]);

    let (streamed, scan) = ResumeIndex::from_path(&path).unwrap();
    assert_eq!(scan.items, 2);
    assert_eq!(scan.in_flight, r.in_flight);
    assert_eq!(streamed.totals(), index.totals());
    assert_eq!(
        streamed.totals(),
        Totals {
            succeeded: 2,
            unknown: 2,
            ..Totals::default()
        }
    );
}

#[test]
fn a_half_written_marker_is_dropped_and_finish_removes_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = crashed_run(dir.path());
    let side = inflight_path(&path);
    let mut journal = fs::read(&side).unwrap();
    journal.extend_from_slice(b"{\"step\":\"tell\",\"ind");
    fs::write(&side, &journal).unwrap();
    assert_eq!(read_report(&path).unwrap().in_flight.len(), 2);

    // A broken marker followed by another is an error naming the journal and line.
    journal.extend_from_slice(b"\n{\"step\":\"tell\",\"index\":9,\"key\":\"q\"}\n");
    fs::write(&side, &journal).unwrap();
    let msg = read_report(&path).unwrap_err().to_string();
    assert!(
        msg.contains("crash.json.inflight:4: bad in-flight marker"),
        "{msg}"
    );

    // A finished run leaves no journal, and nothing in flight.
    let done = dir.path().join("done.json");
    let mut w = ReportWriter::create(&done, &header()).unwrap();
    w.write_started("tell", 0, "a").unwrap();
    w.write_item(&ItemRecord::new("tell", 0, "a", ItemStatus::Succeeded))
        .unwrap();
    w.finish("2026-11-25T10:52:10Z".parse().unwrap(), Outcome::Completed)
        .unwrap();
    assert!(!inflight_path(&done).exists());
    let r = read_report(&done).unwrap();
    assert!(r.in_flight.is_empty() && !r.truncated);
}

#[test]
fn resume_index_later_records_win_and_skip_rules_follow_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    let recs = vec![
        ItemRecord::new("close", 0, "a", ItemStatus::Failed),
        ItemRecord::new("close", 1, "b", ItemStatus::Succeeded),
        ItemRecord::new("close", 2, "c", ItemStatus::Skipped),
        ItemRecord::new("close", 3, "d", ItemStatus::Unknown),
        ItemRecord::new("close", 4, "e", ItemStatus::Planned),
        // Same key again later (a duplicate row): the later record wins.
        ItemRecord::new("close", 5, "a", ItemStatus::Succeeded),
        // Same key, other step: independent.
        ItemRecord::new("tell", 0, "a", ItemStatus::Failed),
    ];
    write_report(&path, &recs, Outcome::Completed);
    let (index, _) = ResumeIndex::from_path(&path).unwrap();
    assert_eq!(index.len(), 6);
    assert_eq!(index.status_of("close", "a"), Some(ItemStatus::Succeeded));
    assert_eq!(index.status_of("tell", "a"), Some(ItemStatus::Failed));
    assert_eq!(index.status_of("close", "zz"), None);
    assert_eq!(index.status_of("nope", "a"), None);

    let skip = |k: &str, retry: bool| index.should_skip("close", k, retry);
    assert!(skip("a", false) && skip("b", false) && skip("c", false));
    assert!(skip("d", false) && !skip("d", true));
    assert!(!skip("e", false), "planned (a dry run) is not done");
    assert!(!index.should_skip("tell", "a", false), "failed runs again");
    assert!(!skip("new", false));
    assert_eq!(
        index.totals(),
        Totals {
            planned: 1,
            succeeded: 2,
            failed: 1,
            skipped: 1,
            unknown: 1,
            unchanged: 0,
            drifted: 0,
        }
    );
}

/// Several `--resume` reports: read oldest first by `started_at` whatever the order given, so
/// the newest record of a key wins; records of both are carried, one per key, in-flight
/// markers as `unknown`; and the logical run starts at the earliest start.
#[test]
fn several_resume_reports_newest_record_wins_and_all_are_carried() {
    let dir = tempfile::tempdir().unwrap();
    let older = dir.path().join("canary.json");
    let newer = dir.path().join("full.json");
    write_report(
        &older,
        &[
            ItemRecord::new("tell", 0, "a", ItemStatus::Succeeded),
            ItemRecord::new("tell", 1, "b", ItemStatus::Failed),
        ],
        Outcome::Completed,
    );
    let mut h = header();
    h.started_at = "2026-11-25T11:00:00Z".parse().unwrap();
    let mut w = ReportWriter::create(&newer, &h).unwrap();
    w.write_item(&ItemRecord::new("tell", 1, "b", ItemStatus::Succeeded))
        .unwrap();
    w.write_started("tell", 2, "c").unwrap();
    drop(w); // killed: no footer, a marker left in flight

    let (index, scans) = ResumeIndex::from_paths(&[newer.clone(), older.clone()]).unwrap();
    assert_eq!(scans.len(), 2);
    assert_eq!(index.status_of("tell", "a"), Some(ItemStatus::Succeeded));
    assert_eq!(index.status_of("tell", "b"), Some(ItemStatus::Succeeded));
    assert_eq!(index.status_of("tell", "c"), Some(ItemStatus::Unknown));
    assert_eq!(
        index.logical_started_at(),
        Some("2026-11-25T10:00:00Z".parse().unwrap())
    );
    let mut carried = Vec::new();
    let n = index
        .carry_into(|item| {
            carried.push(item.clone());
            Ok(())
        })
        .unwrap();
    assert_eq!(n, 3);
    let got: Vec<(&str, ItemStatus, bool)> = carried
        .iter()
        .map(|i| (i.key.as_str(), i.status, i.carried))
        .collect();
    assert_eq!(
        got,
        [
            ("a", ItemStatus::Succeeded, true),
            ("b", ItemStatus::Succeeded, true),
            ("c", ItemStatus::Unknown, true),
        ]
    );
}
