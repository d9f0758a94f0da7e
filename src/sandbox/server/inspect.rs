//! The `/__sandbox/` routes: inspection (state, summary, journal, one session, reset; each
//! `?account=NAME` when the sandbox serves several accounts) and the upload URL the v2 file
//! flow hands out. No auth, never faulted; only the upload is journaled.

use super::{error_response, json_response, lock, reset, snapshot, App, MAX_BODY};
use crate::sandbox::journal::JournalEntry;
use crate::sandbox::wire::{ApiError, Query};
use axum::body::to_bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;

pub(super) async fn inspect_state(State(app): State<Arc<App>>, req: Request) -> Response {
    let account = match app.named(req.uri().query()) {
        Ok(a) => a,
        Err(resp) => return *resp,
    };
    let snap = snapshot(&lock(&account.world));
    json_response(
        StatusCode::OK,
        &serde_json::to_value(snap).unwrap_or(Value::Null),
    )
}

pub(super) async fn inspect_summary(State(app): State<Arc<App>>, req: Request) -> Response {
    let account = match app.named(req.uri().query()) {
        Ok(a) => a,
        Err(resp) => return *resp,
    };
    let s = lock(&account.world).summary.clone();
    let changes: serde_json::Map<String, Value> = s
        .changes()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_owned(), json!(n)))
        .collect();
    let mut v = serde_json::to_value(&s).unwrap_or(Value::Null);
    v["changes"] = Value::Object(changes);
    v["text"] = json!(s.to_string());
    json_response(StatusCode::OK, &v)
}

pub(super) async fn inspect_journal(State(app): State<Arc<App>>, req: Request) -> Response {
    let account = match app.named(req.uri().query()) {
        Ok(a) => a,
        Err(resp) => return *resp,
    };
    let q = Query::parse(req.uri().query());
    let since = q.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    let limit = q
        .get("limit")
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    let journal = &account.journal;
    let entries = journal.entries(since, limit);
    json_response(
        StatusCode::OK,
        &json!({ "total": journal.total(), "capacity": journal.capacity(), "entries": entries }),
    )
}

pub(super) async fn inspect_session(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let account = match app.named(req.uri().query()) {
        Ok(a) => a,
        Err(resp) => return *resp,
    };
    match lock(&account.world).sessions.get(&id.to_ascii_lowercase()) {
        Some(s) => json_response(
            StatusCode::OK,
            &serde_json::to_value(s).unwrap_or(Value::Null),
        ),
        None => error_response(&ApiError::not_found("Sessão", &id)),
    }
}

/// `PUT /__sandbox/upload/{temp}`: the pre-signed storage URL of the upload flow (api-notes "Files"). Like
/// S3, it needs no token; unlike S3, it refuses one (400), to prove the runner sends none.
/// Journaled, but neither rate limited nor faulted (the storage host is not the API).
pub(super) async fn upload_bytes(
    State(app): State<Arc<App>>,
    Path(temp): Path<String>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let mut entry = JournalEntry {
        seq: 0,
        at: jiff::Timestamp::now(),
        answered_at: None,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        body: json!({ "bytes": bytes.len() }),
        status: 0,
        state_changed: false,
        fault: None,
    };
    // The upload belongs to the account that started it (the first one if none did).
    let temp = temp.to_ascii_lowercase();
    let account = app
        .accounts
        .iter()
        .find(|a| lock(&a.world).uploads.contains_key(&temp))
        .unwrap_or(&app.accounts[0]);
    let result = {
        let mut w = lock(&account.world);
        w.summary.requests += 1;
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if parts.headers.contains_key(header::AUTHORIZATION) {
            Err(ApiError::validation(
                "the upload URL is pre-signed: send no Authorization header",
            ))
        } else if let Some(p) = w.uploads.get_mut(&temp) {
            p.uploaded = Some((u64::try_from(bytes.len()).unwrap_or(u64::MAX), content_type));
            Ok(())
        } else {
            Err(ApiError::not_found("Upload", &temp))
        }
    };
    let resp = match result {
        // Nothing visible changes until the upload is confirmed.
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => error_response(&e),
    };
    entry.status = resp.status().as_u16();
    account.journal.record(entry);
    resp
}

pub(super) async fn inspect_reset(State(app): State<Arc<App>>) -> Response {
    reset(&app);
    json_response(
        StatusCode::OK,
        &json!({ "reset": true, "seed": app.config.seed }),
    )
}
