//! The simulated API operations: one function per route, each a synchronous transformation
//! of the `World` (run under the state mutex), plus the route table that binds them.
//!
//! In: a `Req` (path params, query, JSON body). Out: a `Reply` (JSON body or none, and
//! whether the state changed) or an `ApiError` answered with the error envelope (api-notes "Errors").
//!
//! Any id a request names exists: a session, contact, card, step, panel, sequence or message
//! id seen for the first time is materialized (see the `World::*_by_id` methods), and the
//! department and user ids a request sets join the lookups. A path id exists as soon as a
//! request names it (even one then refused, as for sessions); ids in a body are materialized
//! once the body validated. Materializing is not counted in the summary, and a read that
//! materializes is still a read in the journal. Deleting what never existed (a note, an
//! enrolment) stays a 404. Files are the exception: a send's `fileId` must name a file
//! uploaded through `/core/v2/file` (api-notes "Files"), else 400.

use super::state::{phone_digits, File, PendingUpload, World, COMPANY_ID, SESSION_STATUSES};
use super::wire::{as_string, field, merge_map, page, string_list, truthy, ApiError, Reply, Req};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde_json::{json, Value};

/// A route handler.
pub(super) type Op = fn(&mut World, &Req) -> Result<Reply, ApiError>;

/// HTTP methods of the route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

/// Every API route: the 39 node routes, the documented successors (api-notes "Two route
/// families"), the `/sync` variants and the lookup routes (the ids playbooks look up).
#[allow(clippy::too_many_lines)] // the route table: one line per route
pub(super) fn table() -> Vec<(Verb, &'static str, Op)> {
    use Verb::{Delete, Get, Post, Put};
    vec![
        // contacts (core)
        (Post, "/core/v1/contact", contact_create),
        (Get, "/core/v1/contact", contact_list),
        (Get, "/core/v1/contact/custom-field", contact_custom_fields),
        (Get, "/core/v1/contact/{contact_id}", contact_get),
        (
            Get,
            "/core/v1/contact/phonenumber/{phone_number}",
            contact_get_by_phone,
        ),
        (Put, "/core/v1/contact/{contact_id}", contact_update),
        (Put, "/core/v2/contact/{contact_id}", contact_update),
        (
            Put,
            "/core/v1/contact/phonenumber/{phone_number}",
            contact_update,
        ),
        // messages (chat)
        (Get, "/chat/v1/message", message_list),
        (Get, "/chat/v1/message/{message_id}", message_get),
        (Get, "/chat/v1/message/{message_id}/status", message_status),
        (Post, "/chat/v1/message/send", quick_send),
        (Post, "/chat/v1/message/send-sync", quick_send),
        // sessions (chat)
        (
            Put,
            "/chat/v1/session/{session_id}/status",
            session_change_status,
        ),
        (
            Put,
            "/chat/v1/session/{session_id}/complete",
            session_complete,
        ),
        (Get, "/chat/v1/session", session_list),
        (Get, "/chat/v2/session", session_list),
        (Get, "/chat/v1/session/{session_id}", session_get),
        (Get, "/chat/v2/session/{session_id}", session_get),
        (Get, "/chat/v1/session/{session_id}/message", message_list),
        (Post, "/chat/v1/session/{session_id}/message", session_send),
        (
            Post,
            "/chat/v1/session/{session_id}/message/sync",
            session_send,
        ),
        (
            Put,
            "/chat/v1/session/{session_id}/transfer",
            session_transfer,
        ),
        (
            Put,
            "/chat/v1/session/{session_id}/assignee",
            session_assign,
        ),
        (Put, "/chat/v2/session/{session_id}/partial", session_update),
        // panels (crm)
        (Post, "/crm/v1/panel/card/{card_id}/note", note_create),
        (Get, "/crm/v1/panel/card/{card_id}/note", note_list),
        (
            Delete,
            "/crm/v1/panel/card/{card_id}/note/{note_id}",
            note_delete,
        ),
        (Post, "/crm/v1/panel/card", card_create),
        (Post, "/crm/v2/panel/card", card_create),
        (
            Post,
            "/crm/v1/panel/card/{card_id}/duplicate",
            card_duplicate,
        ),
        (
            Post,
            "/crm/v2/panel/card/{card_id}/duplicate",
            card_duplicate,
        ),
        (Get, "/crm/v1/panel/card", card_list),
        (Get, "/crm/v2/panel/card", card_list),
        (Get, "/crm/v1/panel", panel_list),
        (Get, "/crm/v2/panel", panel_list),
        (Get, "/crm/v1/panel/card/{card_id}", card_get),
        (Get, "/crm/v2/panel/card/{card_id}", card_get),
        (Get, "/crm/v1/panel/{panel_id}", panel_get),
        (
            Get,
            "/crm/v1/panel/{panel_id}/custom-fields",
            panel_custom_fields,
        ),
        (Put, "/crm/v1/panel/card/{card_id}", card_update),
        (Put, "/crm/v2/panel/card/{card_id}", card_update),
        (Put, "/crm/v3/panel/card/{card_id}", card_update),
        // chatbot
        (Post, "/chat/v1/chatbot/send", chatbot_send),
        // sequences
        (
            Post,
            "/chat/v1/sequence/{sequence_id}/contact",
            sequence_add,
        ),
        (
            Post,
            "/chat/v1/sequence/{sequence_id}/contact/batch",
            sequence_add_batch,
        ),
        (Get, "/chat/v1/sequence", sequence_list),
        (
            Get,
            "/chat/v1/sequence/{sequence_id}/contact",
            sequence_contacts,
        ),
        (
            Get,
            "/chat/v2/sequence/{sequence_id}/contact",
            sequence_contacts,
        ),
        (
            Delete,
            "/chat/v1/sequence/{sequence_id}/contact",
            sequence_remove,
        ),
        (
            Delete,
            "/chat/v1/sequence/{sequence_id}/contact/batch",
            sequence_remove_batch,
        ),
        // lookups: the ids and names a playbook looks up
        (Get, "/chat/v1/channel", lookup_channels),
        (Get, "/chat/v1/chatbot", lookup_chatbots),
        (Get, "/core/v1/department", lookup_departments),
        (Get, "/core/v2/department", lookup_departments),
        (Get, "/core/v1/agent", lookup_agents),
        (Get, "/core/v1/tag", lookup_tags),
        (Get, "/chat/v1/template", lookup_templates),
        // file uploads, v2 flow (api-notes "Files"); the `PUT` of the bytes is `/__sandbox/upload/{temp}`
        (Get, "/core/v2/file", file_upload_start),
        (Post, "/core/v2/file", file_upload_confirm),
    ]
}

// ---------------------------------------------------------------- helpers

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn require_uuid(req: &Req, name: &str) -> Result<String, ApiError> {
    let v = req.param(name).trim();
    uuid::Uuid::parse_str(v)
        .map(|_| v.to_ascii_lowercase())
        .map_err(|_| ApiError::validation(format!("{name} `{v}` is not a valid id")))
}

fn opt_uuid(v: Option<&Value>, name: &str) -> Result<Option<String>, ApiError> {
    match v.and_then(as_string) {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => uuid::Uuid::parse_str(s.trim())
            .map(|_| Some(s.trim().to_ascii_lowercase()))
            .map_err(|_| ApiError::validation(format!("{name} `{s}` is not a valid id"))),
    }
}

/// The lower-cased id if `v` is a valid uuid.
fn uuid_of(v: &str) -> Option<String> {
    uuid::Uuid::parse_str(v.trim())
        .ok()
        .map(|_| v.trim().to_ascii_lowercase())
}

fn opt_datetime(v: Option<&Value>, name: &str) -> Result<Option<Timestamp>, ApiError> {
    match v.and_then(as_string) {
        None => Ok(None),
        Some(s) => s
            .parse::<Timestamp>()
            .map(Some)
            .map_err(|_| ApiError::validation(format!("{name} `{s}` is not a date-time"))),
    }
}

fn opt_number(v: Option<&Value>, name: &str) -> Result<Option<f64>, ApiError> {
    match v {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::validation(format!("{name} `{s}` is not a number"))),
        Some(_) => Err(ApiError::validation(format!("{name} must be a number"))),
    }
}

/// The `fields` list of a partial update, upper-cased for comparison.
fn fields_of(req: &Req) -> Result<Vec<String>, ApiError> {
    let fields: Vec<String> = string_list(req.field("fields"))
        .into_iter()
        .map(|f| f.to_ascii_uppercase())
        .collect();
    if fields.is_empty() {
        return Err(ApiError::validation(
            "fields must list at least one attribute to update",
        ));
    }
    Ok(fields)
}

fn listed(fields: &[String], name: &str) -> bool {
    fields.iter().any(|f| f.eq_ignore_ascii_case(name))
}

fn status_in(value: &str, allowed: &[&str], name: &str) -> Result<String, ApiError> {
    let up = value.to_ascii_uppercase();
    if allowed.contains(&up.as_str()) {
        Ok(up)
    } else {
        Err(ApiError::validation(format!(
            "{name} `{value}` must be one of {}",
            allowed.join(", ")
        )))
    }
}

// ---------------------------------------------------------------- sessions

/// A session as JSON, with the `*Details` members `IncludeDetails` asks for.
fn session_json(w: &World, id: &str, req: &Req) -> Value {
    let Some(s) = w.sessions.get(id) else {
        return Value::Null;
    };
    let mut v = to_value(s);
    let q = &req.query;
    if q.detail("ContactDetails") {
        if let Some(c) = w.contacts.get(&s.contact_id) {
            v["contactDetails"] = json!({
                "id": c.id, "name": c.name, "pictureUrl": c.picture_url, "phonenumber": c.phone_number,
                "instagram": c.instagram, "phonenumberFormatted": c.phone_number_formatted,
                "tagsId": c.tag_ids, "tagsName": c.tag_names, "status": c.status,
            });
        }
    }
    if q.detail("AgentDetails") {
        if let Some(uid) = &s.user_id {
            v["agentDetails"] = w
                .agents
                .iter()
                .find(|a| a["userId"] == uid.as_str())
                .cloned()
                .unwrap_or(Value::Null);
        }
    }
    if q.detail("DepartmentsDetails") {
        if let Some(did) = &s.department_id {
            v["departmentDetails"] = w
                .departments
                .iter()
                .find(|d| d["id"] == did.as_str())
                .cloned()
                .unwrap_or(Value::Null);
        }
    }
    if q.detail("ChannelDetails") {
        if let Some(ch) = w.channels.iter().find(|c| c["id"] == s.channel_id.as_str()) {
            v["channelDetails"] = ch["identity"].clone();
        }
    }
    v
}

fn session_reply(w: &World, id: &str, req: &Req) -> Result<Reply, ApiError> {
    Reply::changed(session_json(w, id, req))
}

/// A session as a read route of `req`'s version answers it: `type` only from v2 on.
fn session_read_json(w: &World, id: &str, req: &Req) -> Value {
    let mut v = session_json(w, id, req);
    if req.version < 2 {
        if let Some(obj) = v.as_object_mut() {
            obj.remove("type");
        }
    }
    v
}

fn session_get(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let id = require_uuid(req, "session_id")?;
    w.session_mut(&id);
    Reply::read(session_read_json(w, &id, req))
}

fn session_list(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let q = &req.query;
    let statuses: Vec<String> = q
        .all("Status")
        .iter()
        .map(|s| s.to_ascii_uppercase())
        .collect();
    let channels = q.all("ChannelsId");
    let department = q.get("DepartmentId");
    let user = q.get("UserId");
    let contact = q.get("ContactId");
    // `Type` and `Metadata` are v2 filters; the v1 route ignores them.
    let kind = q.get("Type").filter(|_| req.version >= 2);
    let metadata = match q.get("Metadata").filter(|_| req.version >= 2) {
        None => None,
        Some(m) => Some(
            serde_json::from_str::<serde_json::Map<String, Value>>(m).map_err(|_| {
                ApiError::validation(format!("Metadata `{m}` is not a JSON object"))
            })?,
        ),
    };
    // A department or user a filter names exists (in the lookups), with no sessions yet.
    if let Some(d) = department.and_then(uuid_of) {
        w.ensure_department(&d);
    }
    if let Some(u) = user.and_then(uuid_of) {
        w.ensure_agent(&u, None);
    }
    let items = w
        .sessions
        .values()
        .filter(|s| statuses.is_empty() || statuses.contains(&s.status))
        .filter(|s| channels.is_empty() || channels.contains(&s.channel_id))
        .filter(|s| department.is_none_or(|d| s.department_id.as_deref() == Some(d)))
        .filter(|s| user.is_none_or(|u| s.user_id.as_deref() == Some(u)))
        .filter(|s| contact.is_none_or(|c| s.contact_id == c))
        .filter(|s| kind.is_none_or(|k| s.kind.eq_ignore_ascii_case(k)))
        .filter(|s| {
            metadata
                .as_ref()
                .is_none_or(|m| m.iter().all(|(k, v)| s.metadata.get(k) == Some(v)))
        })
        .map(|s| s.id.clone())
        .collect::<Vec<_>>();
    let items = items
        .iter()
        .map(|id| session_read_json(w, id, req))
        .collect();
    Reply::read(page(items, q)?)
}

fn session_complete(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let id = require_uuid(req, "session_id")?;
    if w.session_mut(&id).status == "COMPLETED" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERROR_SESSION_ALREADY_COMPLETED",
            "A sessão já está concluída",
        ));
    }
    w.complete(&id);
    let reactivate = req.field("reactivateOnNewMessage").is_some_and(truthy);
    let s = w.session_mut(&id);
    s.reactivate_on_new_message = reactivate;
    if req.field("stopBotInExecution").is_some_and(truthy) {
        s.bot_id = None;
    }
    session_reply(w, &id, req)
}

fn session_change_status(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let id = require_uuid(req, "session_id")?;
    let status = req
        .str("newStatus")
        .ok_or_else(|| ApiError::validation("newStatus is required"))?;
    let status = status_in(&status, &SESSION_STATUSES, "newStatus")?;
    let now = w.now();
    w.session_mut(&id);
    set_session_status(w, &id, &status, now);
    if req.flag_at(&["options", "stopBotInExecution"]) {
        w.sessions[&id].bot_id = None;
    }
    w.summary.sessions_status_changed += 1;
    session_reply(w, &id, req)
}

fn set_session_status(w: &mut World, id: &str, status: &str, now: Timestamp) {
    let s = &mut w.sessions[id];
    if status == "COMPLETED" && s.status != "COMPLETED" {
        s.end_at = Some(now);
    } else if status != "COMPLETED" {
        s.end_at = None;
    }
    status.clone_into(&mut s.status);
    s.updated_at = now;
}

fn session_transfer(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let id = require_uuid(req, "session_id")?;
    let dep = opt_uuid(req.field("newDepartmentId"), "newDepartmentId")?;
    let user = opt_uuid(req.field("newUserId"), "newUserId")?;
    let kind = match req.str("type") {
        Some(t) => status_in(&t, &["DEPARTMENT", "USER"], "type")?,
        None if user.is_some() => "USER".into(),
        None => "DEPARTMENT".into(),
    };
    if kind == "USER" && user.is_none() {
        return Err(ApiError::validation(
            "newUserId is required for a USER transfer",
        ));
    }
    if kind == "DEPARTMENT" && dep.is_none() {
        return Err(ApiError::validation(
            "newDepartmentId is required for a DEPARTMENT transfer",
        ));
    }
    if let Some(u) = &user {
        w.ensure_agent(u, dep.as_deref());
    } else if let Some(d) = &dep {
        w.ensure_department(d);
    }
    let now = w.now();
    let s = w.session_mut(&id);
    if let Some(d) = dep {
        s.department_id = Some(d);
    }
    if kind == "USER" {
        s.user_id = user;
    }
    s.updated_at = now;
    w.summary.sessions_transferred += 1;
    session_reply(w, &id, req)
}

fn session_assign(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let id = require_uuid(req, "session_id")?;
    let user = opt_uuid(req.field("userId"), "userId")?
        .ok_or_else(|| ApiError::validation("userId is required"))?;
    w.ensure_agent(&user, None);
    let now = w.now();
    let s = w.session_mut(&id);
    s.user_id = Some(user);
    s.updated_at = now;
    w.summary.sessions_assigned += 1;
    session_reply(w, &id, req)
}

fn session_update(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let id = require_uuid(req, "session_id")?;
    let fields = fields_of(req)?;
    // Validate everything before touching the state.
    let status = match req.str("status") {
        Some(s) if listed(&fields, "Status") => Some(status_in(&s, &SESSION_STATUSES, "status")?),
        _ => None,
    };
    let end_at = opt_datetime(req.field("endAt"), "endAt")?;
    let user = opt_uuid(req.field("userId"), "userId")?;
    let dep = opt_uuid(req.field("departmentId"), "departmentId")?;
    if listed(&fields, "Status") && status.is_none() {
        return Err(ApiError::validation("status cannot be cleared"));
    }
    if listed(&fields, "DepartmentId") {
        if let Some(d) = &dep {
            w.ensure_department(d);
        }
    }
    if listed(&fields, "UserId") {
        if let Some(u) = &user {
            w.ensure_agent(u, None);
        }
    }
    let now = w.now();
    w.session_mut(&id);
    if let Some(st) = status {
        set_session_status(w, &id, &st, now);
    }
    let s = &mut w.sessions[&id];
    if listed(&fields, "EndAt") {
        s.end_at = end_at;
    }
    if listed(&fields, "UserId") {
        s.user_id = user;
    }
    if listed(&fields, "DepartmentId") {
        s.department_id = dep;
    }
    if listed(&fields, "Number") {
        s.number = req.str("number");
    }
    if listed(&fields, "Metadata") {
        match req.field("metadata") {
            Some(m) => merge_map(&mut s.metadata, m),
            None => s.metadata.clear(),
        }
    }
    if listed(&fields, "Classification") {
        s.classification = req.field("classification").map(|c| {
            json!({
                "id": null,
                "category": field(c, "category").cloned().unwrap_or(json!("UNDEFINED")),
                "categoryDescription": field(c, "description").cloned(),
                "amount": field(c, "amount").cloned(),
                "categoryName": field(c, "category").cloned(),
            })
        });
    }
    s.updated_at = now;
    w.summary.sessions_updated += 1;
    session_reply(w, &id, req)
}

// ---------------------------------------------------------------- messages

/// The message content of a send body (flat for session sends, under `body` for quick sends).
struct Content {
    text: Option<String>,
    file_url: Option<String>,
    file_id: Option<String>,
    template_id: Option<String>,
    parameters: Option<Value>,
    ref_id: Option<String>,
}

fn content(w: &World, body: &Value) -> Result<Content, ApiError> {
    let s = |n: &str| field(body, n).and_then(as_string);
    let c = Content {
        text: s("text"),
        file_url: s("fileUrl"),
        file_id: s("fileId").map(|id| id.trim().to_ascii_lowercase()),
        template_id: s("templateId"),
        parameters: field(body, "parameters").cloned(),
        ref_id: s("refId"),
    };
    if c.text.is_none() && c.file_url.is_none() && c.file_id.is_none() && c.template_id.is_none() {
        return Err(ApiError::validation(
            "the message needs text, fileUrl, fileId or templateId",
        ));
    }
    if c.file_url.is_some() && c.file_id.is_some() {
        return Err(ApiError::validation("send fileUrl or fileId, not both"));
    }
    if let Some(id) = &c.file_id {
        if !w.files.contains_key(&id.trim().to_ascii_lowercase()) {
            return Err(ApiError::validation(format!(
                "fileId {id}: no uploaded file has this id (upload it with /core/v2/file)"
            )));
        }
    }
    if let Some(t) = &c.template_id {
        if let Some(tpl) = w.templates.iter().find(|x| x["id"] == t.as_str()) {
            let given = c.parameters.as_ref().and_then(Value::as_object);
            for p in tpl["params"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or_default();
                if !given.is_some_and(|g| g.contains_key(name)) {
                    return Err(ApiError::validation(format!(
                        "template parameter `{name}` is required"
                    )));
                }
            }
        }
    }
    Ok(c)
}

/// Stores an outgoing message and answers `QuickMessage` (async) or `Message` (sync).
fn store_message(
    w: &mut World,
    session_id: &str,
    c: Content,
    sync: bool,
    sender: Option<String>,
) -> Value {
    let now = w.now();
    let mut m = w.blank_message(now, session_id);
    m.kind = match (&c.file_url, &c.file_id, &c.template_id) {
        (Some(_), _, _) | (_, Some(_), _) => "DOCUMENT".into(),
        _ => "TEXT".into(),
    };
    m.text.clone_from(&c.text);
    m.file_url = c.file_url;
    m.file_id = c.file_id;
    m.template_id = c.template_id;
    m.parameters = c.parameters;
    m.ref_id = c.ref_id;
    m.sender_id = sender;
    m.status = if sync { "SENT" } else { "PROCESSING" }.into();
    let s = w.session_mut(session_id);
    s.last_message_text.clone_from(&m.text);
    s.last_message_out = Some(now);
    s.last_interaction_date = Some(now);
    s.updated_at = now;
    w.summary.messages_sent += 1;
    let out = if sync {
        to_value(&m)
    } else {
        json!({
            "id": m.id, "createdAt": m.created_at, "updatedAt": m.updated_at, "sessionId": m.session_id,
            "senderId": m.sender_id, "status": "PROCESSING",
            "statusUrl": format!("/chat/v1/message/{}/status", m.id), "failureReason": null,
        })
    };
    w.messages.insert(m.id.clone(), m);
    out
}

fn is_sync(req: &Req) -> bool {
    req.path.ends_with("/sync") || req.path.ends_with("/send-sync")
}

fn quick_send(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let to = req
        .str("to")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::validation("to is required"))?;
    let body = req.field("body").cloned().unwrap_or(Value::Null);
    let c = content(w, &body)?;
    let dep = opt_uuid(req.field_at(&["department", "id"]), "department.id")?;
    let user = opt_uuid(req.field_at(&["user", "id"]), "user.id")?;
    let bot = req.str("botKey").or_else(|| req.str("botId"));
    if let Some(u) = &user {
        w.ensure_agent(u, dep.as_deref());
    } else if let Some(d) = &dep {
        w.ensure_department(d);
    }
    let contact = w.contact_for_recipient(&to);
    let session = match w.open_session_of(&contact) {
        Some(open) if req.flag_at(&["options", "forceStartSession"]) => {
            w.complete(&open);
            None
        }
        other => other,
    };
    let session = if let Some(s) = session {
        s
    } else {
        let id = w.open_session(&contact);
        let hidden = req.flag_at(&["options", "hiddenSession"]);
        let enable_bot = req.flag_at(&["options", "enableBot"]);
        let s = &mut w.sessions[&id];
        s.department_id = dep;
        s.status = if hidden {
            "HIDDEN"
        } else if user.is_some() {
            "IN_PROGRESS"
        } else {
            "PENDING"
        }
        .into();
        s.user_id = user;
        if enable_bot {
            s.bot_id = bot;
        }
        id
    };
    Reply::changed(store_message(w, &session, c, is_sync(req), None))
}

fn session_send(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let id = require_uuid(req, "session_id")?;
    let c = content(w, &req.body)?;
    w.session_mut(&id);
    Reply::changed(store_message(w, &id, c, is_sync(req), None))
}

fn message_list(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let session = match req.params.get("session_id") {
        Some(_) => require_uuid(req, "session_id")?,
        None => req
            .query
            .get("SessionId")
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| ApiError::validation("SessionId is required"))?,
    };
    if uuid_of(&session).is_some() {
        w.session_mut(&session);
    }
    let items = w
        .messages
        .values()
        .filter(|m| m.session_id == session)
        .map(to_value)
        .collect();
    Reply::read(page(items, &req.query)?)
}

/// An async message leaves PROCESSING the first time anyone looks at it; an unseen id is a
/// message already sent.
fn settle_message(w: &mut World, req: &Req) -> Result<String, ApiError> {
    let id = require_uuid(req, "message_id")?;
    let now = w.now();
    let m = w.message_by_id(&id);
    if m.status == "PROCESSING" {
        m.status = "SENT".into();
        m.updated_at = now;
    }
    Ok(id)
}

fn message_get(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let id = settle_message(w, req)?;
    Reply::read(to_value(&w.messages[&id]))
}

fn message_status(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let id = settle_message(w, req)?;
    let m = &w.messages[&id];
    Reply::read(json!({
        "id": m.id, "createdAt": m.created_at, "updatedAt": m.updated_at,
        "sessionId": m.session_id, "status": m.status, "failureReason": m.failed_reason,
    }))
}

// ---------------------------------------------------------------- contacts

fn contact_json(w: &World, id: &str) -> Value {
    let mut v = w.contacts.get(id).map_or(Value::Null, to_value);
    if let Some(c) = w.contacts.get(id) {
        v["portfolioNames"] = json!([]);
        v["nameWhatsapp"] = json!(c.name);
    }
    v
}

fn contact_list(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let status = req
        .query
        .get("Status")
        .unwrap_or("ACTIVE")
        .to_ascii_uppercase();
    let items = w
        .contacts
        .values()
        .filter(|c| c.status == status)
        .map(|c| contact_json(w, &c.id))
        .collect();
    Reply::read(page(items, &req.query)?)
}

fn contact_get(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let id = require_uuid(req, "contact_id")?;
    w.contact_by_id(&id);
    Reply::read(contact_json(w, &id))
}

fn contact_get_by_phone(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let phone = req.param("phone_number");
    if phone_digits(phone).is_empty() {
        return Err(ApiError::validation(format!(
            "`{phone}` is not a phone number"
        )));
    }
    let id = w.contact_by_phone(phone);
    Reply::read(contact_json(w, &id))
}

fn valid_email(e: &str) -> bool {
    let mut parts = e.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(u), Some(d), None) if !u.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.'))
}

/// Applies contact attributes from the body. `only`: the attributes allowed to change
/// (`None` = every supplied one); `clear`: listed attributes without a value are cleared.
#[allow(clippy::too_many_lines)] // TODO(issue 8): split
fn apply_contact(
    w: &mut World,
    id: &str,
    req: &Req,
    only: Option<&[String]>,
    clear: bool,
) -> Result<(), ApiError> {
    let allowed = |name: &str| only.is_none_or(|f| listed(f, name));
    let touch = |name: &str, present: bool| allowed(name) && (present || (clear && only.is_some()));
    if let Some(e) = req.str("email") {
        if !valid_email(&e) {
            return Err(ApiError::validation(format!("email `{e}` is not valid")));
        }
    }
    if let Some(s) = req.str("status") {
        status_in(&s, &["ACTIVE", "ARCHIVED", "BLOCKED"], "status")?;
    }
    let tag_ids = string_list(req.field("tagIds"));
    let tag_names = string_list(req.field("tagNames"));
    let (tags_given, tags): (bool, Vec<(String, String)>) = if !tag_ids.is_empty() {
        (
            true,
            tag_ids
                .iter()
                .map(|t| {
                    let name = w
                        .tags
                        .iter()
                        .find(|x| x["id"] == t.as_str())
                        .and_then(|x| x["name"].as_str())
                        .unwrap_or_default()
                        .to_owned();
                    (t.clone(), name)
                })
                .collect(),
        )
    } else if !tag_names.is_empty() {
        (
            true,
            tag_names
                .iter()
                .map(|n| {
                    let id = w
                        .tags
                        .iter()
                        .find(|x| {
                            x["name"]
                                .as_str()
                                .is_some_and(|m| m.eq_ignore_ascii_case(n))
                        })
                        .and_then(|x| x["id"].as_str())
                        .unwrap_or_default()
                        .to_owned();
                    (id, n.clone())
                })
                .collect(),
        )
    } else {
        (
            req.field("tagIds").is_some() || req.field("tagNames").is_some(),
            Vec::new(),
        )
    };
    let op = req
        .field_at(&["options", "tagsOperation"])
        .or_else(|| req.field_at(&["options", "upsertTagOperation"]))
        .and_then(as_string)
        .unwrap_or_else(|| {
            if only.is_some() {
                "InsertIfNotExists".into()
            } else {
                "ReplaceAll".into()
            }
        })
        .to_ascii_uppercase();
    let phone = req.str("phoneNumber");
    if touch("PhoneNumber", phone.is_some()) {
        w.set_phone(id, phone.as_deref().unwrap_or(""));
    }
    let now = w.now();
    let c = &mut w.contacts[id];
    let text = |name: &str, key: &str, slot: &mut Option<String>| {
        let v = req.str(key);
        if touch(name, v.is_some()) {
            *slot = v;
        }
    };
    text("Name", "name", &mut c.name);
    text("Email", "email", &mut c.email);
    text("Instagram", "instagram", &mut c.instagram);
    text("Annotation", "annotation", &mut c.annotation);
    text("PictureUrl", "pictureUrl", &mut c.picture_url);
    if touch("Status", req.field("status").is_some()) {
        c.status = req
            .str("status")
            .map_or_else(|| "ACTIVE".into(), |s| s.to_ascii_uppercase());
    }
    if touch("Tags", tags_given) {
        match op.as_str() {
            "DELETEIFEXISTS" => {
                let drop: Vec<&String> = tags.iter().map(|(i, _)| i).collect();
                let keep: Vec<(String, String)> = c
                    .tag_ids
                    .iter()
                    .cloned()
                    .zip(c.tag_names.iter().cloned())
                    .filter(|(i, _)| !drop.contains(&i))
                    .collect();
                c.tag_ids = keep.iter().map(|(i, _)| i.clone()).collect();
                c.tag_names = keep.into_iter().map(|(_, n)| n).collect();
            }
            "INSERTIFNOTEXISTS" => {
                for (i, n) in tags {
                    if !c.tag_ids.contains(&i) {
                        c.tag_ids.push(i);
                        c.tag_names.push(n);
                    }
                }
            }
            _ => {
                c.tag_ids = tags.iter().map(|(i, _)| i.clone()).collect();
                c.tag_names = tags.into_iter().map(|(_, n)| n).collect();
            }
        }
    }
    if touch("Portfolio", req.field("portfolioIds").is_some()) {
        c.portfolio_ids = string_list(req.field("portfolioIds"));
    }
    if touch("SequenceIds", req.field("sequenceIds").is_some()) {
        c.sequence_ids = string_list(req.field("sequenceIds"));
    }
    if touch("CustomFields", req.field("customFields").is_some()) {
        match req.field("customFields") {
            Some(m) => merge_map(&mut c.custom_fields, m),
            None => c.custom_fields.clear(),
        }
    }
    if touch("Metadata", req.field("metadata").is_some()) {
        match req.field("metadata") {
            Some(m) => merge_map(&mut c.metadata, m),
            None => c.metadata.clear(),
        }
    }
    if touch("Utm", req.field("utm").is_some()) {
        match req.field("utm") {
            Some(m) => merge_map(&mut c.utm, m),
            None => c.utm.clear(),
        }
    }
    c.updated_at = now;
    let seqs = c.sequence_ids.clone();
    for seq in seqs.iter().filter_map(|s| uuid_of(s)) {
        w.sequence_by_id(&seq);
        w.enrol(now, &seq, id, "API");
    }
    Ok(())
}

fn contact_create(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let phone = req
        .str("phoneNumber")
        .filter(|p| !phone_digits(p).is_empty());
    let email = req.str("email");
    let instagram = req.str("instagram");
    let existing = phone
        .as_deref()
        .and_then(|p| w.phones.get(&phone_digits(p)).cloned())
        .or_else(|| {
            email.as_deref().and_then(|e| {
                w.contacts
                    .values()
                    .find(|c| {
                        c.email
                            .as_deref()
                            .is_some_and(|x| x.eq_ignore_ascii_case(e))
                    })
                    .map(|c| c.id.clone())
            })
        })
        .or_else(|| {
            instagram.as_deref().and_then(|i| {
                let i = i.trim_start_matches('@');
                w.contacts
                    .values()
                    .find(|c| {
                        c.instagram
                            .as_deref()
                            .is_some_and(|x| x.eq_ignore_ascii_case(i))
                    })
                    .map(|c| c.id.clone())
            })
        });
    if let Some(id) = existing {
        if req.flag_at(&["options", "getIfExists"]) {
            return Reply::read(contact_json(w, &id));
        }
        if req.flag_at(&["options", "upsert"]) {
            let only = string_list(req.field_at(&["options", "upsertFields"]));
            apply_contact(
                w,
                &id,
                req,
                (!only.is_empty()).then_some(only.as_slice()),
                false,
            )?;
            w.summary.contacts_updated += 1;
            return Reply::changed(contact_json(w, &id));
        }
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERROR_CONTACT_ALREADY_EXISTS",
            "Já existe um contato com esses dados",
        ));
    }
    if let Some(e) = &email {
        if !valid_email(e) {
            return Err(ApiError::validation(format!("email `{e}` is not valid")));
        }
    }
    let id = w.create_contact(None, None);
    if let Err(e) = apply_contact(w, &id, req, None, false) {
        w.contacts.shift_remove(&id);
        w.summary.contacts_created -= 1;
        return Err(e);
    }
    Reply::changed(contact_json(w, &id))
}

fn contact_update(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let fields = fields_of(req)?;
    let id = if req.params.contains_key("phone_number") {
        let phone = req.param("phone_number");
        if phone_digits(phone).is_empty() {
            return Err(ApiError::validation(format!(
                "`{phone}` is not a phone number"
            )));
        }
        w.contact_by_phone(phone)
    } else {
        let id = require_uuid(req, "contact_id")?;
        w.contact_by_id(&id);
        id
    };
    apply_contact(w, &id, req, Some(&fields), true)?;
    w.summary.contacts_updated += 1;
    Reply::changed(contact_json(w, &id))
}

fn contact_custom_fields(w: &mut World, _req: &Req) -> Result<Reply, ApiError> {
    Reply::read(Value::Array(w.contact_custom_fields.clone()))
}

// ---------------------------------------------------------------- panels and cards

fn card_json(w: &World, id: &str, version: u8) -> Value {
    let Some(c) = w.cards.get(id) else {
        return Value::Null;
    };
    let mut v = to_value(c);
    let step = w.steps.get(&c.step_id);
    v["panelTitle"] = json!(w.panels.get(&c.panel_id).map(|p| p.title.clone()));
    v["stepTitle"] = json!(step.map(|s| s.title.clone()));
    v["stepPhase"] = json!(match step {
        Some(s) if s.is_initial => "INITIAL",
        Some(s) if s.is_final => "FINAL",
        _ => "NONE",
    });
    v["isOverdue"] = json!(c.due_date.is_some_and(|d| d < Timestamp::now()));
    v["responsibleUser"] = c.responsible_user_id.as_ref().map_or(Value::Null, |u| {
        let name = w
            .agents
            .iter()
            .find(|a| a["userId"] == u.as_str())
            .map(|a| a["name"].clone());
        json!({ "id": u, "name": name })
    });
    v["contacts"] = c
        .contact_ids
        .iter()
        .map(|cid| json!({ "id": cid, "name": w.contacts.get(cid).and_then(|x| x.name.clone()) }))
        .collect();
    let obj = v.as_object_mut().expect("card serializes to an object");
    if version <= 1 {
        obj.insert("archived".into(), json!(c.status == "ARCHIVED"));
        obj.remove("status");
        obj.remove("lostReasonId");
    } else {
        let lost = c
            .lost_reason_id
            .as_ref()
            .map(|l| json!({ "id": l, "name": null }));
        obj.insert("lostReason".into(), lost.unwrap_or(Value::Null));
    }
    v
}

/// The path's card, materialized if unseen (see `World::card_by_id`).
fn card_id(w: &mut World, req: &Req) -> Result<String, ApiError> {
    let id = require_uuid(req, "card_id")?;
    w.card_by_id(&id);
    Ok(id)
}

fn card_create(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let step = opt_uuid(req.field("stepId"), "stepId")?
        .ok_or_else(|| ApiError::validation("stepId is required"))?;
    let title = req.str("title").unwrap_or_default();
    if title.trim().is_empty() || title.chars().count() > 500 {
        return Err(ApiError::validation("title must have 1 to 500 characters"));
    }
    // An unseen step becomes a step of the first seeded panel.
    let home = w.home_panel();
    w.ensure_step(&step, &home);
    let all: Vec<String> = [
        "Description",
        "MonetaryAmount",
        "Position",
        "ResponsibleUserId",
        "ContactIds",
        "TagIds",
        "DueDate",
        "SessionId",
        "CustomFields",
        "Metadata",
    ]
    .iter()
    .map(|s| s.to_ascii_uppercase())
    .collect();
    let now = w.now();
    let card = w.new_card(now, &step, title);
    let id = card.id.clone();
    w.cards.insert(id.clone(), card);
    if let Err(e) = apply_card(w, &id, req, &all, false) {
        w.cards.shift_remove(&id);
        return Err(e);
    }
    w.summary.cards_created += 1;
    Reply::changed(card_json(w, &id, req.version))
}

/// Applies the listed card attributes. `clear`: a listed attribute without a value is cleared.
#[allow(clippy::too_many_lines)] // TODO(issue 8): split
fn apply_card(
    w: &mut World,
    id: &str,
    req: &Req,
    fields: &[String],
    clear: bool,
) -> Result<(), ApiError> {
    let has = |name: &str, key: &str| listed(fields, name) && (clear || req.field(key).is_some());
    let step = opt_uuid(req.field("stepId"), "stepId")?;
    let position = opt_number(req.field("position"), "position")?;
    if position.is_some_and(|p| p < 0.0) {
        return Err(ApiError::validation("position must be ≥ 0"));
    }
    let amount = opt_number(req.field("monetaryAmount"), "monetaryAmount")?;
    let due = opt_datetime(req.field("dueDate"), "dueDate")?;
    let responsible = opt_uuid(req.field("responsibleUserId"), "responsibleUserId")?;
    let session = opt_uuid(req.field("sessionId"), "sessionId")?;
    let status = match req.str("status") {
        Some(s) => Some(status_in(
            &s,
            &["OPEN", "WON", "LOST", "ARCHIVED"],
            "status",
        )?),
        None => None,
    };
    let lost_reason = opt_uuid(req.field("lostReasonId"), "lostReasonId")?;
    if let Some(t) = req.str("title") {
        if listed(fields, "Title") && (t.trim().is_empty() || t.chars().count() > 500) {
            return Err(ApiError::validation("title must have 1 to 500 characters"));
        }
    }
    // Everything is valid: materialize what the body names, then apply.
    let new_step = match step {
        Some(s) if listed(fields, "StepId") => {
            let own_panel = w.cards[id].panel_id.clone();
            let panel = w.ensure_step(&s, &own_panel);
            Some((s, panel))
        }
        _ => None,
    };
    if has("ResponsibleUserId", "responsibleUserId") {
        if let Some(u) = &responsible {
            w.ensure_agent(u, None);
        }
    }
    if has("SessionId", "sessionId") {
        if let Some(s) = &session {
            w.session_mut(s);
        }
    }
    if has("ContactIds", "contactIds") {
        for c in string_list(req.field("contactIds"))
            .iter()
            .filter_map(|c| uuid_of(c))
        {
            w.contact_by_id(&c);
        }
    }
    let now = w.now();
    let c = &mut w.cards[id];
    if let Some((s, p)) = new_step {
        c.step_id = s;
        c.panel_id = p;
    }
    if has("Title", "title") {
        if let Some(t) = req.str("title") {
            c.title = t;
        }
    }
    if has("Description", "description") {
        c.description = req.str("description");
    }
    if has("Position", "position") {
        c.position = position.unwrap_or(0.0);
    }
    if has("MonetaryAmount", "monetaryAmount") {
        c.monetary_amount = amount;
    }
    if has("DueDate", "dueDate") {
        c.due_date = due;
    }
    if has("ResponsibleUserId", "responsibleUserId") {
        c.responsible_user_id = responsible;
    }
    if has("SessionId", "sessionId") {
        c.session_id = session;
    }
    if has("ContactIds", "contactIds") {
        c.contact_ids = string_list(req.field("contactIds"));
    }
    if has("TagIds", "tagIds") || (listed(fields, "TagIds") && req.field("tagNames").is_some()) {
        c.tag_ids = string_list(req.field("tagIds"));
    }
    if has("CustomFields", "customFields") {
        match req.field("customFields") {
            Some(m) => merge_map(&mut c.custom_fields, m),
            None => c.custom_fields.clear(),
        }
    }
    if has("Metadata", "metadata") {
        match req.field("metadata") {
            Some(m) => merge_map(&mut c.metadata, m),
            None => c.metadata.clear(),
        }
    }
    if has("Archived", "archived") {
        let archived = req.field("archived").is_some_and(truthy);
        if archived {
            c.status = "ARCHIVED".into();
        } else if c.status == "ARCHIVED" {
            c.status = "OPEN".into();
        }
    }
    if listed(fields, "Status") {
        if let Some(s) = status {
            c.status = s;
            c.lost_reason_id = lost_reason;
        }
    }
    c.updated_at = now;
    Ok(())
}

fn card_update(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let id = card_id(w, req)?;
    let fields = fields_of(req)?;
    apply_card(w, &id, req, &fields, true)?;
    w.summary.cards_updated += 1;
    Reply::changed(card_json(w, &id, req.version))
}

fn card_duplicate(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let id = card_id(w, req)?;
    let target = opt_uuid(req.field("copyToStepId"), "copyToStepId")?;
    if let Some(t) = &target {
        // An unseen target step becomes a step of the original card's panel.
        let own_panel = w.cards[&id].panel_id.clone();
        w.ensure_step(t, &own_panel);
    }
    let parts: Vec<String> = string_list(req.field_at(&["options", "fields"]))
        .into_iter()
        .map(|f| f.to_ascii_uppercase())
        .collect();
    let all = parts.is_empty() || parts.iter().any(|p| p == "ALL");
    let copy = |name: &str| all || listed(&parts, name);
    let original = w.cards[&id].clone();
    let step = target.unwrap_or_else(|| original.step_id.clone());
    let now = w.now();
    let mut card = w.new_card(now, &step, original.title.clone());
    card.description.clone_from(&original.description);
    if copy("MonetaryAmount") || copy("Amount") {
        card.monetary_amount = original.monetary_amount;
    }
    if copy("Contacts") {
        card.contact_ids.clone_from(&original.contact_ids);
    }
    if copy("CustomFields") {
        card.custom_fields.clone_from(&original.custom_fields);
    }
    if copy("DueDate") {
        card.due_date = original.due_date;
    }
    if copy("ResponsibleUser") {
        card.responsible_user_id
            .clone_from(&original.responsible_user_id);
    }
    if copy("Tags") {
        card.tag_ids.clone_from(&original.tag_ids);
    }
    card.metadata.clone_from(&original.metadata);
    card.session_id.clone_from(&original.session_id);
    let new_id = card.id.clone();
    w.cards.insert(new_id.clone(), card);
    if copy("Notes") {
        let notes: Vec<_> = w
            .notes
            .values()
            .filter(|n| n.card_id == id)
            .cloned()
            .collect();
        for n in notes {
            let at = w.now();
            let copy = w.new_note(at, &new_id, n.text, n.file_urls);
            w.notes.insert(copy.id.clone(), copy);
        }
    }
    if req.flag_at(&["options", "archiveOriginalCard"]) {
        let c = &mut w.cards[&id];
        c.status = "ARCHIVED".into();
        c.updated_at = now;
    }
    w.summary.cards_duplicated += 1;
    Reply::changed(card_json(w, &new_id, req.version))
}

fn card_get(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let id = card_id(w, req)?;
    Reply::read(card_json(w, &id, req.version))
}

fn card_list(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let q = &req.query;
    let panel = q
        .get("PanelId")
        .ok_or_else(|| ApiError::validation("PanelId is required"))?;
    let panel = uuid_of(panel)
        .ok_or_else(|| ApiError::validation(format!("PanelId `{panel}` is not a valid id")))?;
    w.panel_by_id(&panel);
    let step = q.get("StepId").map(str::to_ascii_lowercase);
    let contact = q.get("ContactId");
    let responsible = q.get("ResponsibleUserId");
    let text = q.get("TextFilter").map(str::to_lowercase);
    // v1 knows `IncludeArchived`, v2 `Statuses`; each route ignores the other's filter.
    let statuses: Vec<String> = q
        .all("Statuses")
        .iter()
        .filter(|_| req.version >= 2)
        .map(|s| s.to_ascii_uppercase())
        .collect();
    let include_archived = req.version < 2 && q.flag("IncludeArchived");
    let items = w
        .cards
        .values()
        .filter(|c| c.panel_id == panel)
        .filter(|c| step.as_ref().is_none_or(|s| c.step_id == *s))
        .filter(|c| contact.is_none_or(|x| c.contact_ids.iter().any(|i| i == x)))
        .filter(|c| responsible.is_none_or(|r| c.responsible_user_id.as_deref() == Some(r)))
        .filter(|c| {
            text.as_ref().is_none_or(|t| {
                c.title.to_lowercase().contains(t)
                    || c.description
                        .as_deref()
                        .is_some_and(|d| d.to_lowercase().contains(t))
            })
        })
        .filter(|c| {
            if statuses.is_empty() {
                include_archived || c.status != "ARCHIVED"
            } else {
                statuses.contains(&c.status)
            }
        })
        .map(|c| card_json(w, &c.id, req.version))
        .collect();
    Reply::read(page(items, q)?)
}

fn panel_json(w: &World, id: &str, req: &Req) -> Value {
    let Some(panel) = w.panels.get(id) else {
        return Value::Null;
    };
    let q = &req.query;
    let steps: Vec<_> = w
        .steps
        .values()
        .filter(|step| step.panel_id == panel.id)
        .collect();
    let mut out = json!({
        "id": panel.id, "createdAt": panel.created_at, "updatedAt": panel.updated_at, "companyId": super::state::COMPANY_ID,
        "archived": panel.archived, "scope": "COMPANY", "departmentIds": [], "userId": null, "title": panel.title,
        "description": panel.description, "key": panel.key, "type": panel.kind, "autoLossDays": null,
        "stepTitles": steps.iter().map(|step| step.title.clone()).collect::<Vec<_>>(),
        "overdueCardCount": 0,
    });
    if q.detail("Tags") {
        out["tags"] = json!(panel.tags);
    }
    if q.detail("Steps") || q.detail("Cards") || q.detail("StepsCardCount") {
        out["steps"] = steps
            .iter()
            .map(|step| {
                let cards: Vec<Value> = w
                    .cards
                    .values()
                    .filter(|card| card.step_id == step.id && card.status != "ARCHIVED")
                    .map(|card| card_json(w, &card.id, 1))
                    .collect();
                let mut sv = to_value(*step);
                sv["cardCount"] = json!(cards.len());
                sv["overdueCardCount"] = json!(0);
                sv["monetaryAmount"] = json!(w.cards.values().filter(|card| card.step_id == step.id).filter_map(|card| card.monetary_amount).sum::<f64>());
                if q.detail("Cards") {
                    let n = cards.len();
                    sv["cards"] = json!({
                        "pageNumber": 1, "pageSize": n.max(1), "orderBy": null, "orderDirection": "ASCENDING",
                        "items": cards, "totalItems": n, "totalPages": 1, "hasMorePages": false,
                    });
                }
                sv
            })
            .collect();
    }
    out
}

fn panel_list(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let title = req.query.get("Title").map(str::to_lowercase);
    // `Type` is a v2 filter; the v1 route ignores it.
    let kind = req.query.get("Type").filter(|_| req.version >= 2);
    let items = w
        .panels
        .values()
        .filter(|p| {
            title
                .as_ref()
                .is_none_or(|t| p.title.to_lowercase().contains(t))
        })
        .filter(|p| kind.is_none_or(|k| p.kind.eq_ignore_ascii_case(k)))
        .map(|p| panel_json(w, &p.id, req))
        .collect();
    Reply::read(page(items, &req.query)?)
}

/// The path's panel, materialized if unseen (see `World::panel_by_id`).
fn panel_id(w: &mut World, req: &Req) -> Result<String, ApiError> {
    let id = require_uuid(req, "panel_id")?;
    w.panel_by_id(&id);
    Ok(id)
}

fn panel_get(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let id = panel_id(w, req)?;
    Reply::read(panel_json(w, &id, req))
}

fn panel_custom_fields(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let id = panel_id(w, req)?;
    Reply::read(json!(w.panels[&id].custom_fields))
}

fn note_json(w: &World, id: &str) -> Value {
    let Some(n) = w.notes.get(id) else {
        return Value::Null;
    };
    let files: Vec<Value> = n
        .file_urls
        .iter()
        .map(|u| json!({ "id": null, "name": u.rsplit('/').next(), "publicUrl": u }))
        .collect();
    json!({
        "id": n.id, "createdAt": n.created_at, "updatedAt": n.updated_at, "companyId": n.company_id,
        "panelId": n.panel_id, "cardId": n.card_id, "userId": n.user_id, "text": n.text,
        "files": files, "isFromPublicApi": n.is_from_public_api,
    })
}

fn note_create(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let card = card_id(w, req)?;
    let text = req.str("text");
    let urls = string_list(req.field("fileUrls"));
    if text.is_none() && urls.is_empty() {
        return Err(ApiError::validation("a note needs text or fileUrls"));
    }
    if text.as_ref().is_some_and(|t| t.chars().count() > 8000) {
        return Err(ApiError::validation(
            "text must have at most 8000 characters",
        ));
    }
    if urls.len() > 3 {
        return Err(ApiError::validation("at most 3 fileUrls"));
    }
    let now = w.now();
    let note = w.new_note(now, &card, text, urls);
    let id = note.id.clone();
    w.notes.insert(id.clone(), note);
    w.summary.notes_created += 1;
    Reply::changed(note_json(w, &id))
}

fn note_list(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let card = card_id(w, req)?;
    let items = w
        .notes
        .values()
        .filter(|n| n.card_id == card)
        .map(|n| note_json(w, &n.id))
        .collect();
    Reply::read(page(items, &req.query)?)
}

/// Deletes a note of a card. The card is materialized like any named id, but a note the card
/// does not have is a 404 `ERROR_NOT_FOUND`: deleting something that never existed names no
/// new object, and the real API answers an error there too (a retried delete sees it).
/// Removing a contact a sequence does not have is a 404 for the same reason.
fn note_delete(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let card = card_id(w, req)?;
    let note = require_uuid(req, "note_id")?;
    match w.notes.get(&note) {
        Some(n) if n.card_id == card => {
            w.notes.shift_remove(&note);
            w.summary.notes_deleted += 1;
            Reply::empty()
        }
        _ => Err(ApiError::not_found("Anotação", &note)),
    }
}

// ---------------------------------------------------------------- chatbot

fn chatbot_send(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let bot = req
        .str("botKey")
        .or_else(|| req.str("botId"))
        .ok_or_else(|| ApiError::validation("botKey or botId is required"))?;
    let bot_id = w
        .chatbots
        .iter()
        .find(|b| b["key"] == bot.as_str() || b["id"] == bot.as_str())
        .and_then(|b| b["id"].as_str().map(str::to_owned))
        .unwrap_or(bot);
    let session = opt_uuid(req.field("sessionId"), "sessionId")?;
    let to = req.str("to").filter(|t| !t.trim().is_empty());
    let id = match (session, to) {
        (Some(s), _) => {
            w.session_mut(&s);
            s
        }
        (None, Some(to)) => {
            let contact = w.contact_for_recipient(&to);
            if let Some(c) = req.field("contactMetadata") {
                merge_map(&mut w.contacts[&contact].metadata, c);
            }
            let open = w.open_session_of(&contact);
            if let Some(open) = &open {
                let busy = w.sessions[open].bot_id.is_some();
                if req.flag_at(&["options", "skipIfInProgress"])
                    || (busy && req.flag_at(&["options", "skipIfBotInExecution"]))
                {
                    return Reply::read(session_json(w, open, req));
                }
            }
            match open {
                Some(open) if !req.flag_at(&["options", "forceStartSession"]) => open,
                other => {
                    if let Some(open) = other {
                        w.complete(&open);
                    }
                    let id = w.open_session(&contact);
                    w.sessions[&id].status = if req.flag_at(&["options", "hiddenSession"]) {
                        "HIDDEN"
                    } else {
                        "STARTED"
                    }
                    .into();
                    id
                }
            }
        }
        (None, None) => return Err(ApiError::validation("sessionId or to is required")),
    };
    if w.sessions[&id].bot_id.is_some() && req.flag_at(&["options", "skipIfBotInExecution"]) {
        return Reply::read(session_json(w, &id, req));
    }
    let now = w.now();
    let s = &mut w.sessions[&id];
    s.bot_id = Some(bot_id);
    s.updated_at = now;
    if let Some(m) = req.field("sessionMetadata") {
        merge_map(&mut s.metadata, m);
    }
    w.summary.chatbots_started += 1;
    session_reply(w, &id, req)
}

// ---------------------------------------------------------------- sequences

/// The path's sequence, materialized if unseen (see `World::sequence_by_id`).
fn sequence_id(w: &mut World, req: &Req) -> Result<String, ApiError> {
    let id = require_uuid(req, "sequence_id")?;
    w.sequence_by_id(&id);
    Ok(id)
}

fn enrolment_json(w: &World, id: &str) -> Value {
    let Some(e) = w.enrolments.get(id) else {
        return Value::Null;
    };
    let c = w.contacts.get(&e.contact_id);
    json!({
        "id": e.id, "active": e.active, "createdAt": e.created_at, "updatedAt": e.updated_at,
        "companyId": super::state::COMPANY_ID, "sequenceId": e.sequence_id, "contactId": e.contact_id,
        "contactName": c.and_then(|c| c.name.clone()), "origin": e.origin, "addedByUserId": null,
        "addedByChatbotId": null, "lastAddedAt": e.last_added_at,
        "contactDetails": c.map(|c| json!({
            "id": c.id, "name": c.name, "phonenumber": c.phone_number,
            "phonenumberFormatted": c.phone_number_formatted, "instagram": c.instagram,
            "email": c.email, "pictureUrl": c.picture_url,
        })),
    })
}

/// The contacts a sequence body names (`contactId`/`phoneNumber` or their batch lists).
fn named_contacts(
    w: &mut World,
    req: &Req,
    batch: bool,
    create: bool,
) -> Result<Vec<String>, ApiError> {
    let (ids, phones) = if batch {
        (
            string_list(req.field("contactIds")),
            string_list(req.field("phoneNumbers")),
        )
    } else {
        (
            req.str("contactId").into_iter().collect(),
            req.str("phoneNumber").into_iter().collect::<Vec<_>>(),
        )
    };
    if ids.is_empty() && phones.is_empty() {
        return Err(ApiError::validation(if batch {
            "contactIds or phoneNumbers must be non-empty"
        } else {
            "contactId or phoneNumber is required"
        }));
    }
    let mut out = Vec::new();
    for id in ids {
        let id = uuid::Uuid::parse_str(id.trim())
            .map_err(|_| ApiError::validation(format!("contactId `{id}` is not a valid id")))?
            .to_string();
        if create {
            w.contact_by_id(&id);
        }
        out.push(id);
    }
    for p in phones {
        if phone_digits(&p).is_empty() {
            return Err(ApiError::validation(format!("`{p}` is not a phone number")));
        }
        if create {
            out.push(w.contact_for_recipient(&p));
        } else if let Some(id) = w.phones.get(&phone_digits(&p)) {
            out.push(id.clone());
        }
    }
    Ok(out)
}

fn sequence_add(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let seq = sequence_id(w, req)?;
    let contacts = named_contacts(w, req, false, true)?;
    let now = w.now();
    let id = w.enrol(now, &seq, &contacts[0], "API");
    w.summary.enrolments_added += 1;
    Reply::changed(enrolment_json(w, &id))
}

fn sequence_add_batch(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let seq = sequence_id(w, req)?;
    let contacts = named_contacts(w, req, true, true)?;
    let now = w.now();
    let mut items = Vec::new();
    for c in contacts {
        let id = w.enrol(now, &seq, &c, "API");
        w.summary.enrolments_added += 1;
        items.push(enrolment_json(w, &id));
    }
    let n = items.len();
    Reply::changed(json!({
        "pageNumber": 1, "pageSize": n.max(1), "orderBy": null, "orderDirection": "ASCENDING",
        "items": items, "totalItems": n, "totalPages": 1, "hasMorePages": false,
    }))
}

fn unenrol(w: &mut World, seq: &str, contacts: &[String]) -> usize {
    let before = w.enrolments.len();
    w.enrolments
        .retain(|_, e| !(e.sequence_id == seq && contacts.contains(&e.contact_id)));
    let removed = before - w.enrolments.len();
    w.summary.enrolments_removed += removed as u64;
    removed
}

fn sequence_remove(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let seq = sequence_id(w, req)?;
    let contacts = named_contacts(w, req, false, false)?;
    if unenrol(w, &seq, &contacts) == 0 {
        return Err(ApiError::not_found("Contato na sequência", &seq));
    }
    Reply::empty()
}

fn sequence_remove_batch(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let seq = sequence_id(w, req)?;
    let contacts = named_contacts(w, req, true, false)?;
    let removed = unenrol(w, &seq, &contacts);
    Ok(Reply {
        body: None,
        changed: removed > 0,
    })
}

fn sequence_list(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let name = req.query.get("Name").map(str::to_lowercase);
    let contact = req.query.get("ContactId");
    let items = w
        .sequences
        .values()
        .filter(|s| {
            name.as_ref()
                .is_none_or(|n| s.name.to_lowercase().contains(n))
        })
        .filter(|s| {
            contact.is_none_or(|c| {
                w.enrolments
                    .values()
                    .any(|e| e.sequence_id == s.id && e.contact_id == c)
            })
        })
        .map(|s| {
            let count = w
                .enrolments
                .values()
                .filter(|e| e.sequence_id == s.id && e.active)
                .count();
            let mut v = to_value(s);
            v["companyId"] = json!(super::state::COMPANY_ID);
            v["contactExecutingCount"] = json!(count);
            v
        })
        .collect();
    Reply::read(page(items, &req.query)?)
}

fn sequence_contacts(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let seq = sequence_id(w, req)?;
    let q = &req.query;
    let name = q.get("Name").map(str::to_lowercase);
    let contact = q.get("ContactId");
    let phone = q.get("PhoneNumber").map(phone_digits);
    let items = w
        .enrolments
        .values()
        .filter(|e| e.sequence_id == seq)
        .filter(|e| contact.is_none_or(|c| e.contact_id == c))
        .filter(|e| {
            let c = w.contacts.get(&e.contact_id);
            name.as_ref().is_none_or(|n| {
                c.and_then(|c| c.name.as_ref())
                    .is_some_and(|x| x.to_lowercase().contains(n))
            }) && phone.as_ref().is_none_or(|p| {
                c.and_then(|c| c.phone_number.as_deref())
                    .is_some_and(|x| phone_digits(x) == *p)
            })
        })
        .map(|e| enrolment_json(w, &e.id))
        .collect();
    Reply::read(page(items, q)?)
}

// ---------------------------------------------------------------- lookups

fn lookup_channels(w: &mut World, _req: &Req) -> Result<Reply, ApiError> {
    Reply::read(json!(w.channels))
}

fn lookup_departments(w: &mut World, _req: &Req) -> Result<Reply, ApiError> {
    Reply::read(json!(w.departments))
}

fn lookup_agents(w: &mut World, _req: &Req) -> Result<Reply, ApiError> {
    Reply::read(json!(w.agents))
}

fn lookup_tags(w: &mut World, _req: &Req) -> Result<Reply, ApiError> {
    Reply::read(json!(w.tags))
}

fn lookup_chatbots(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let q = &req.query;
    let name = q.get("Name").map(str::to_lowercase);
    let types = q.all("Types");
    let items = w
        .chatbots
        .iter()
        .filter(|b| {
            name.as_ref().is_none_or(|n| {
                b["name"]
                    .as_str()
                    .is_some_and(|x| x.to_lowercase().contains(n))
            })
        })
        .filter(|b| {
            types.is_empty()
                || types.iter().any(|t| {
                    b["type"]
                        .as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(t))
                })
        })
        .cloned()
        .collect();
    Reply::read(page(items, q)?)
}

fn lookup_templates(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let q = &req.query;
    let channel = q.get("ChannelId");
    let name = q.get("Name").map(str::to_lowercase);
    let approved = q.flag("ApprovedOnly");
    let items = w
        .templates
        .iter()
        .filter(|t| channel.is_none_or(|c| t["channelId"] == c))
        .filter(|t| {
            name.as_ref().is_none_or(|n| {
                t["name"]
                    .as_str()
                    .is_some_and(|x| x.to_lowercase().contains(n))
            })
        })
        .filter(|t| !approved || t["status"] == "Approved")
        .cloned()
        .collect();
    Reply::read(page(items, q)?)
}

// ---------------------------------------------------------------- files (api-notes "Files")

/// File types of the upload flow: the catalog's.
const FILE_TYPES: &[&str] = crate::catalog::FILE_TYPE;

/// `GET /core/v2/file?Type=..&Name=..[&MimeType=..]` → `{tempFileId, urlUpload}`. A read for
/// the summary (nothing visible changes); the upload URL is this sandbox's
/// `/__sandbox/upload/{tempFileId}`.
fn file_upload_start(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let kind = req
        .query
        .get("Type")
        .ok_or_else(|| ApiError::validation("Type is required"))?;
    let kind = FILE_TYPES
        .iter()
        .find(|t| t.eq_ignore_ascii_case(kind.trim()))
        .ok_or_else(|| {
            ApiError::validation(format!(
                "Type `{kind}` is not one of {}",
                FILE_TYPES.join(", ")
            ))
        })?;
    let name = req
        .query
        .get("Name")
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::validation("Name is required"))?
        .to_owned();
    let mime_type = req
        .query
        .get("MimeType")
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    let temp = w.derived_id("temp-file", &w.uploads.len().to_string());
    w.uploads.insert(
        temp.clone(),
        PendingUpload {
            name,
            kind: (*kind).to_owned(),
            mime_type,
            uploaded: None,
            file_id: None,
        },
    );
    let url = format!("{}/__sandbox/upload/{temp}", w.origin);
    Reply::read(json!({ "tempFileId": temp, "urlUpload": url }))
}

/// The type the server detects for `UNDEFINED`, from the MIME type.
fn detected_type(mime: &str) -> &'static str {
    let mime = mime.to_ascii_lowercase();
    if mime.starts_with("image/") {
        "IMAGE"
    } else if mime.starts_with("audio/") {
        "AUDIO"
    } else if mime.starts_with("video/") {
        "VIDEO"
    } else if mime == "application/pdf" {
        "PDF"
    } else {
        "DOCUMENT"
    }
}

/// `POST /core/v2/file` `{tempFileId}` → the File. The temporary id must have been uploaded;
/// confirming it again answers the same file (a retried confirmation creates nothing).
fn file_upload_confirm(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let temp = req
        .str("tempFileId")
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::validation("tempFileId is required"))?;
    let pending = w
        .uploads
        .get(&temp)
        .cloned()
        .ok_or_else(|| ApiError::validation(format!("tempFileId {temp} is unknown")))?;
    if let Some(id) = &pending.file_id {
        let file = w.files.get(id).map_or(Value::Null, to_value);
        return Reply::read(file);
    }
    let Some((size, content_type)) = pending.uploaded else {
        return Err(ApiError::validation(format!(
            "tempFileId {temp}: nothing was uploaded to its urlUpload"
        )));
    };
    let mime_type = pending
        .mime_type
        .or(content_type)
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let kind = if pending.kind == "UNDEFINED" {
        detected_type(&mime_type).to_owned()
    } else {
        pending.kind
    };
    let extension = pending
        .name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let id = w.new_id();
    let file = File {
        id: id.clone(),
        created_at: w.now(),
        company_id: COMPANY_ID.to_owned(),
        key: format!("{COMPANY_ID}/{id}/{}", pending.name),
        name: pending.name,
        extension,
        mime_type,
        kind,
        size,
    };
    let body = to_value(&file);
    w.files.insert(id.clone(), file);
    if let Some(p) = w.uploads.get_mut(&temp) {
        p.file_id = Some(id);
    }
    w.summary.files_uploaded += 1;
    Reply::changed(body)
}
