//! The sandbox command, file uploads, strict mode, the banner, and both route families over
//! one state.

use super::materialize::inspect_state;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wts_playbook::sandbox::SandboxConfig;

use crate::support::sandbox_stderr;

use super::{assert_envelope, start, NEW_SESSION, TOKEN};

#[test]
fn sandbox_command_prints_seeded_ids() {
    let text = sandbox_stderr(&["--seed", "42"], 40, |line| line.contains("any other id"));
    let text = text.expect("no seeded ids on stderr within 20 s");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lookups = rt.block_on(async {
        let (sb, _) = start(SandboxConfig::default()).await;
        let l = sb.state().lookups;
        sb.shutdown().await;
        l
    });
    assert_eq!(text, lookups.brief());
    assert!(text.contains(&lookups.departments[0].id), "{text}");
    assert!(text.contains(&lookups.panels[0].steps[0].id), "{text}");
}

/// `PUT` to an absolute upload URL, with or without a token.
async fn put_bytes(url: &str, bytes: &[u8], mime: &str, token: bool) -> (StatusCode, Value) {
    let mut rb = reqwest::Client::new()
        .put(url)
        .header("content-type", mime)
        .body(bytes.to_vec());
    if token {
        rb = rb.bearer_auth(TOKEN);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn file_upload_flow_and_sends_by_file_id() {
    let (sb, c) = start(SandboxConfig::default()).await;
    // 1. Start: the upload URL is this sandbox's.
    let started = c
        .get("/core/v2/file?Type=UNDEFINED&Name=invoice.pdf&MimeType=application%2Fpdf")
        .await;
    let temp = started["tempFileId"].as_str().unwrap().to_owned();
    let url = started["urlUpload"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("{}/__sandbox/upload/{temp}", sb.url()));
    // Confirming before the bytes arrived is refused.
    let (s, v) = c
        .send(
            Method::POST,
            "/core/v2/file",
            Some(json!({"tempFileId": temp})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // 2. The bytes: a token on the pre-signed URL is refused, none is accepted.
    let (s, v) = put_bytes(&url, b"%PDF-1.4 hello", "application/pdf", true).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["text"].as_str().unwrap().contains("Authorization"), "{v}");
    let (s, _) = put_bytes(&url, b"%PDF-1.4 hello", "application/pdf", false).await;
    assert_eq!(s, StatusCode::OK);
    // 3. Confirm: the File; a second confirmation answers the same file.
    let file = c
        .ok(Method::POST, "/core/v2/file", json!({"tempFileId": temp}))
        .await;
    let id = file["id"].as_str().unwrap().to_owned();
    assert_eq!(file["name"], "invoice.pdf");
    assert_eq!(file["extension"], "pdf");
    assert_eq!(file["mimeType"], "application/pdf");
    assert_eq!(file["type"], "PDF", "UNDEFINED is detected");
    assert_eq!(file["size"], 14);
    assert!(file["key"].as_str().unwrap().ends_with("/invoice.pdf"));
    let again = c
        .ok(Method::POST, "/core/v2/file", json!({"tempFileId": temp}))
        .await;
    assert_eq!(again["id"], id.as_str());

    // Sends: an uploaded fileId is recorded on the message; an unknown one is a 400.
    let sent = c
        .ok(
            Method::POST,
            &format!("/chat/v1/session/{NEW_SESSION}/message/sync"),
            json!({"fileId": id}),
        )
        .await;
    assert_eq!(sent["fileId"], id.as_str());
    let (s, v) = c
        .send(
            Method::POST,
            "/chat/v1/message/send",
            Some(json!({"to": "5511999990000", "body": {"fileId": NEW_SESSION}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_envelope(&v, 400, "ERROR_VALIDATION");

    let state = inspect_state(&sb).await;
    assert_eq!(
        state["files"],
        json!([{"id": id, "name": "invoice.pdf", "size": 14, "mimeType": "application/pdf"}])
    );
    assert_eq!(state["counts"]["files"], 1);
    assert_eq!(sb.summary().files_uploaded, 1);
    assert!(sb.summary().to_string().contains("files uploaded: 1"));
    // The PUTs are journaled with the API's requests.
    let puts: Vec<u16> = sb
        .journal()
        .iter()
        .filter(|e| e.method == "PUT" && e.path.starts_with("/__sandbox/upload/"))
        .map(|e| e.status)
        .collect();
    assert_eq!(puts, [400, 200]);
}

#[tokio::test]
async fn file_upload_refuses_bad_starts_and_unknown_temp_ids() {
    let (sb, c) = start(SandboxConfig::default()).await;
    for query in ["Name=a.pdf", "Type=PDF", "Type=PICTURE&Name=a.png"] {
        let (s, v) = c
            .send(Method::GET, &format!("/core/v2/file?{query}"), None)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert_envelope(&v, 400, "ERROR_VALIDATION");
    }
    // Auth is required to start and to confirm.
    let resp = reqwest::get(format!("{}/core/v2/file?Type=PDF&Name=a.pdf", sb.url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (s, v) = c
        .send(
            Method::POST,
            "/core/v2/file",
            Some(json!({"tempFileId": NEW_SESSION})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["text"].as_str().unwrap().contains("unknown"), "{v}");
    let (s, _) = c.send(Method::POST, "/core/v2/file", Some(json!({}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Bytes to an upload URL never handed out.
    let (s, _) = put_bytes(
        &format!("{}/__sandbox/upload/{NEW_SESSION}", sb.url()),
        b"x",
        "text/plain",
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(inspect_state(&sb).await["files"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn strict_mode_answers_unknown_ids_and_phones_with_404_and_changes_nothing() {
    let (sb, c) = start(SandboxConfig {
        strict: true,
        ..SandboxConfig::default()
    })
    .await;
    let before = c.get("/__sandbox/state").await;
    for (method, path, body) in [
        (
            Method::PUT,
            format!("/chat/v1/session/{NEW_SESSION}/complete"),
            json!({}),
        ),
        (
            Method::GET,
            format!("/chat/v1/session/{NEW_SESSION}"),
            Value::Null,
        ),
        (
            Method::GET,
            "/core/v1/contact/phonenumber/5511900000000".to_owned(),
            Value::Null,
        ),
        (
            Method::GET,
            format!("/core/v1/contact/{NEW_SESSION}"),
            Value::Null,
        ),
    ] {
        let (status, v) = c.send(method.clone(), &path, Some(body)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {v}");
        assert_envelope(&v, 404, "ERROR_NOT_FOUND");
    }
    // An existing session moved to a department the account does not have: 404 too.
    let session = before["sessions"][0]["id"].as_str().unwrap().to_owned();
    let (status, v) = c
        .send(
            Method::PUT,
            &format!("/chat/v1/session/{session}/transfer"),
            Some(json!({"type": "DEPARTMENT", "newDepartmentId": NEW_SESSION})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let after = c.get("/__sandbox/state").await;
    assert_eq!(
        before["sessions"], after["sessions"],
        "nothing was created or changed"
    );
    assert_eq!(before["contacts"], after["contacts"]);
    // What exists still works.
    c.ok(
        Method::PUT,
        &format!("/chat/v1/session/{session}/complete"),
        json!({}),
    )
    .await;
    let phone = before["contacts"][0]["phoneNumber"]
        .as_str()
        .expect("seeded contacts have a phone")
        .replace(['+', '|'], "");
    let (status, v) = c
        .send(
            Method::GET,
            &format!("/core/v1/contact/phonenumber/{phone}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{phone}: {v}");
    sb.shutdown().await;
}

#[test]
fn the_sandbox_banner_names_the_token_and_the_mode() {
    for (args, token, mode) in [
        (
            &["--token", "pn_rehearsal"][..],
            "token: only `pn_rehearsal` (export WTS_API_TOKEN=pn_rehearsal)",
            "mode:  lenient: unknown ids are created on first use (--strict makes them a 404)",
        ),
        (
            &["--strict"][..],
            "token: any bearer token (--token T accepts only T)",
            "mode:  strict: an unknown id or phone number is a 404, as on a real account",
        ),
    ] {
        let text = sandbox_stderr(args, 60, |line| line.starts_with("mode:"));
        let text = text.expect("a banner within 20 s");
        assert!(text.contains(token), "{text}");
        assert!(text.contains(mode), "{text}");
    }
}

/// Both route families over one state: what one family writes the other reads, each answers in
/// its own shape, honours only its own filters, and refuses with the same error envelope.
#[tokio::test]
async fn both_route_families_share_the_state_and_the_envelopes() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let lookups = sb.state().lookups;
    let panel = &lookups.panels[0];
    let (pid, step) = (panel.id.clone(), panel.steps[0].id.clone());

    // A card created through v1, archived through v1, read through v2 (and back).
    let card = c
        .ok(
            Method::POST,
            "/crm/v1/panel/card",
            json!({"stepId": step, "title": "Shared"}),
        )
        .await;
    let cid = card["id"].as_str().unwrap().to_owned();
    c.ok(
        Method::PUT,
        &format!("/crm/v1/panel/card/{cid}"),
        json!({"fields": ["Archived"], "archived": true}),
    )
    .await;
    let v2 = c.get(&format!("/crm/v2/panel/card/{cid}")).await;
    assert_eq!(
        (v2["status"].as_str(), v2.get("archived")),
        (Some("ARCHIVED"), None)
    );
    assert!(v2.get("lostReason").is_some());
    let v1 = c.get(&format!("/crm/v1/panel/card/{cid}")).await;
    assert_eq!(
        (v1["archived"].as_bool(), v1.get("status")),
        (Some(true), None)
    );

    // Each card list honours its own family's filter and ignores the other's.
    let has = |page: &Value| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == cid.as_str())
    };
    let q = format!("PanelId={pid}");
    assert!(has(&c
        .get(&format!("/crm/v1/panel/card?{q}&IncludeArchived=true"))
        .await));
    assert!(!has(&c
        .get(&format!("/crm/v1/panel/card?{q}&Statuses=ARCHIVED"))
        .await));
    assert!(has(&c
        .get(&format!("/crm/v2/panel/card?{q}&Statuses=ARCHIVED"))
        .await));
    assert!(!has(&c
        .get(&format!("/crm/v2/panel/card?{q}&IncludeArchived=true"))
        .await));

    // Sessions: `type` and the `Type` filter are v2's.
    let s = &sb.state().sessions[0];
    let v1 = c.get(&format!("/chat/v1/session/{}", s.id)).await;
    let v2 = c.get(&format!("/chat/v2/session/{}", s.id)).await;
    assert!(v1.get("type").is_none());
    assert_eq!(v2["type"], "INDIVIDUAL");
    assert_eq!(v1["status"], v2["status"]);
    let groups_v2 = c.get("/chat/v2/session?Type=GROUP&PageSize=100").await;
    let all_v1 = c.get("/chat/v1/session?Type=GROUP&PageSize=100").await;
    assert_eq!(groups_v2["totalItems"], 0, "the seed has no group sessions");
    assert!(
        all_v1["totalItems"].as_u64().unwrap() > 0,
        "v1 ignores Type"
    );
    for key in [
        "pageNumber",
        "pageSize",
        "items",
        "totalItems",
        "totalPages",
        "hasMorePages",
    ] {
        assert!(
            groups_v2.get(key).is_some() && all_v1.get(key).is_some(),
            "{key}"
        );
    }

    // The same error, in the same envelope, from either family.
    let (s1, e1) = c
        .send(Method::GET, "/crm/v1/panel/card/not-an-id", None)
        .await;
    let (s2, e2) = c
        .send(Method::GET, "/crm/v2/panel/card/not-an-id", None)
        .await;
    assert_eq!((s1, s2), (StatusCode::BAD_REQUEST, StatusCode::BAD_REQUEST));
    assert_eq!((&e1["key"], &e1["text"]), (&e2["key"], &e2["text"]));
    assert!(e1["id"]["shortValue"].is_string() && e2["id"]["shortValue"].is_string());
    sb.shutdown().await;
}
