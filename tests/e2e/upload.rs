//! `file_base64`: the upload flow (docs/api-notes.md, "Files") before each send.

use std::collections::HashSet;

use wts_playbook::sandbox::{JournalEntry, SandboxConfig};

use crate::support::{message_post_id, statuses, uuids, Env};

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
