//! Session, contact, quick-send and panel routes.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wts_playbook::sandbox::{Sandbox, SandboxConfig};

use super::{assert_envelope, start, Client, NEW_SESSION};

#[tokio::test]
async fn session_routes_change_state() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let deps = c.get("/core/v1/department").await;
    let dep = deps[1]["id"].as_str().unwrap().to_owned();
    let agents = c.get("/core/v1/agent").await;
    let user = agents[0]["userId"].as_str().unwrap().to_owned();

    session_get_complete_and_change_status(&sb, &c).await;

    // transfer (department, then user) and assign.
    let path = format!("/chat/v1/session/{NEW_SESSION}/transfer");
    let v = c
        .ok(
            Method::PUT,
            &path,
            json!({"newDepartmentId": dep, "type": "DEPARTMENT"}),
        )
        .await;
    assert_eq!(v["departmentId"], dep.as_str());
    let v = c
        .ok(
            Method::PUT,
            &path,
            json!({"newDepartmentId": dep, "newUserId": user, "type": "USER"}),
        )
        .await;
    assert_eq!(v["userId"], user.as_str());
    let other = agents[1]["userId"].as_str().unwrap();
    let v = c
        .ok(
            Method::PUT,
            &format!("/chat/v1/session/{NEW_SESSION}/assignee"),
            json!({"userId": other}),
        )
        .await;
    assert_eq!(v["userId"], other);

    // partial update: listed + omitted clears; unlisted values are ignored.
    let v = c
        .ok(
            Method::PUT,
            &format!("/chat/v2/session/{NEW_SESSION}/partial"),
            json!({"fields": ["UserId", "Metadata"], "departmentId": null, "number": "X-1", "metadata": {"a": 1}}),
        )
        .await;
    assert!(v["userId"].is_null());
    assert_eq!(v["departmentId"], dep.as_str());
    assert_eq!(v["metadata"], json!({"a": 1}));
    assert_ne!(v["number"], "X-1");
    let (st, _) = c
        .send(
            Method::PUT,
            &format!("/chat/v2/session/{NEW_SESSION}/partial"),
            Some(json!({"number": "1"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    session_sends(&c).await;

    let sum = sb.summary();
    assert_eq!(sum.sessions_completed, 1);
    assert_eq!(sum.messages_sent, 3);
    assert_eq!(sum.sessions_transferred, 2);
    assert_eq!(sum.sessions_assigned, 1);
    sb.shutdown().await;
}

/// `session.get` materializes an unseen id; `session.complete` (twice) and `change_status`.
async fn session_get_complete_and_change_status(sb: &Sandbox, c: &Client) {
    // session.get materializes an unseen id as an open session (v1 and v2).
    let s = c.get(&format!("/chat/v1/session/{NEW_SESSION}")).await;
    assert_eq!(s["status"], "IN_PROGRESS");
    let s2 = c
        .get(&format!(
            "/chat/v2/session/{NEW_SESSION}?includeDetails=ContactDetails"
        ))
        .await;
    assert_eq!(s2["type"], "INDIVIDUAL");
    assert!(s2["contactDetails"]["id"].is_string());

    // session.complete → COMPLETED + endAt; again → 400.
    let done = c
        .ok(
            Method::PUT,
            &format!("/chat/v1/session/{NEW_SESSION}/complete"),
            json!({"reactivateOnNewMessage": false}),
        )
        .await;
    assert_eq!(done["status"], "COMPLETED");
    assert!(done["endAt"].is_string());
    let snap = sb.session(NEW_SESSION).unwrap();
    assert_eq!(snap.status, "COMPLETED");
    assert!(snap.end_at.is_some());
    let (st, err) = c
        .send(
            Method::PUT,
            &format!("/chat/v1/session/{NEW_SESSION}/complete"),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_envelope(&err, 400, "ERROR_SESSION_ALREADY_COMPLETED");
    // change_status; UNDEFINED rejected.
    let path = format!("/chat/v1/session/{NEW_SESSION}/status");
    let v = c
        .ok(Method::PUT, &path, json!({"newStatus": "PENDING"}))
        .await;
    assert_eq!(v["status"], "PENDING");
    assert!(v["endAt"].is_null());
    let (st, err) = c
        .send(Method::PUT, &path, Some(json!({"newStatus": "UNDEFINED"})))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_envelope(&err, 400, "ERROR_VALIDATION");
}

/// Sends into the session (async, sync, templated) and the message reads.
async fn session_sends(c: &Client) {
    // session sends, async and sync; the listing sees both.
    let q = c
        .ok(
            Method::POST,
            &format!("/chat/v1/session/{NEW_SESSION}/message"),
            json!({"text": "oi"}),
        )
        .await;
    assert_eq!(q["status"], "PROCESSING");
    assert_eq!(q["sessionId"], NEW_SESSION);
    let m = c
        .ok(
            Method::POST,
            &format!("/chat/v1/session/{NEW_SESSION}/message/sync"),
            json!({"fileUrl": "https://x/y.pdf"}),
        )
        .await;
    assert_eq!(m["status"], "SENT");
    assert_eq!(m["type"], "DOCUMENT");
    let tpl = c
        .get("/chat/v1/template?ChannelId=&IncludeDetails=Params")
        .await;
    let with_params = tpl["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["params"].as_array().unwrap().len() == 2)
        .unwrap();
    let (st, _) = c
        .send(
            Method::POST,
            &format!("/chat/v1/session/{NEW_SESSION}/message"),
            Some(json!({"templateId": with_params["id"]})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "missing template parameters");
    c.ok(
        Method::POST,
        &format!("/chat/v1/session/{NEW_SESSION}/message"),
        json!({"templateId": with_params["id"], "parameters": {"1": "Ana", "2": "77"}}),
    )
    .await;
    let list = c
        .get(&format!("/chat/v1/message?SessionId={NEW_SESSION}"))
        .await;
    assert_eq!(list["totalItems"], 3);
    let st = c
        .get(&format!(
            "/chat/v1/message/{}/status",
            q["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(st["status"], "SENT");
    let msg = c
        .get(&format!("/chat/v1/message/{}", m["id"].as_str().unwrap()))
        .await;
    assert_eq!(msg["sessionId"], NEW_SESSION);
    // A message id never seen is a message already sent (see unseen_messages_...).
    let unseen = c.get(&format!("/chat/v1/message/{NEW_SESSION}")).await;
    assert_eq!(unseen["status"], "SENT");
}

/// The sandbox's documented choice (the API's answer is unconfirmed): a message into a
/// COMPLETED session is accepted and stored; the session stays COMPLETED.
#[tokio::test]
async fn a_message_into_a_completed_session_is_accepted() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let closed = "33333333-3333-4333-8333-000000000001";
    c.ok(
        Method::PUT,
        &format!("/chat/v1/session/{closed}/complete"),
        json!({}),
    )
    .await;
    let sent = c
        .ok(
            Method::POST,
            &format!("/chat/v1/session/{closed}/message"),
            json!({"text": "after the close"}),
        )
        .await;
    assert_eq!(sent["status"], "PROCESSING");
    assert_eq!(sb.session(closed).unwrap().status, "COMPLETED");
}

#[tokio::test]
async fn session_list_filters_and_paging() {
    let (sb, c) = start(SandboxConfig::default()).await;
    // Iterating every page yields every seeded session exactly once, in a stable order.
    let mut seen = Vec::new();
    let mut page = 1;
    loop {
        let p = c
            .get(&format!("/chat/v1/session?PageNumber={page}&PageSize=7"))
            .await;
        assert_eq!(p["pageSize"], 7);
        seen.extend(
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned()),
        );
        if p["hasMorePages"] != true {
            assert_eq!(p["totalItems"], 120);
            assert_eq!(p["totalPages"], 18);
            break;
        }
        page += 1;
        assert!(page < 50);
    }
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (120, 120));
    let again = c.get("/chat/v2/session?pagesize=100").await;
    assert_eq!(again["items"][0]["id"], seen[0].as_str());
    assert_eq!(again["hasMorePages"], true);
    let d = c.get("/chat/v1/session").await;
    assert_eq!(
        (d["pageNumber"].as_u64(), d["pageSize"].as_u64()),
        (Some(1), Some(15))
    );

    for bad in ["PageSize=0", "PageSize=101", "PageNumber=0", "PageSize=x"] {
        let (st, err) = c
            .send(Method::GET, &format!("/chat/v1/session?{bad}"), None)
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
        assert_envelope(&err, 400, "ERROR_VALIDATION");
    }

    // Filters: repeated Status[], DepartmentId, UserId, ContactId.
    let state = sb.state();
    let want = state
        .sessions
        .iter()
        .filter(|s| s.status == "PENDING" || s.status == "HIDDEN")
        .count();
    let p = c
        .get("/chat/v1/session?Status[]=PENDING&Status[]=HIDDEN&PageSize=100")
        .await;
    assert_eq!(
        usize::try_from(p["totalItems"].as_u64().unwrap()).unwrap(),
        want
    );
    assert!(p["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "PENDING" || s["status"] == "HIDDEN"));
    let dep = state.sessions[0].department_id.clone().unwrap();
    let p = c
        .get(&format!("/chat/v1/session?DepartmentId={dep}&PageSize=100"))
        .await;
    assert_eq!(p["totalItems"], 40);
    let contact = &state.sessions[3].contact_id;
    let p = c
        .get(&format!("/chat/v1/session?ContactId={contact}"))
        .await;
    assert_eq!(p["totalItems"], 2);
    let user = state
        .sessions
        .iter()
        .find_map(|s| s.user_id.clone())
        .unwrap();
    let p = c
        .get(&format!("/chat/v1/session?UserId={user}&PageSize=100"))
        .await;
    assert!(p["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["userId"] == user.as_str()));
    assert!(p["totalItems"].as_u64().unwrap() >= 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn contact_and_quick_send_routes() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let before = sb.state().counts["contacts"];
    let id = contact_list_and_create(&c).await;

    let got = c.get(&format!("/core/v1/contact/{id}")).await;
    assert_eq!(got["name"], "José");
    let by_phone = c
        .get("/core/v1/contact/phonenumber/%2B55%7C11988887777")
        .await;
    assert_eq!(by_phone["id"], id.as_str());

    // update: listed+omitted clears, unlisted ignored (v1 and v2 routes).
    let v = c
        .ok(
            Method::PUT,
            &format!("/core/v1/contact/{id}"),
            json!({"fields": ["Email", "Annotation"], "annotation": "nota", "name": "ignored"}),
        )
        .await;
    assert_eq!(v["annotation"], "nota");
    assert_eq!(v["name"], "José");
    let v = c
        .ok(
            Method::PUT,
            &format!("/core/v2/contact/{id}"),
            json!({"fields": ["Annotation", "Metadata"], "metadata": {"k": null, "n": 2}}),
        )
        .await;
    assert!(v["annotation"].is_null());
    assert_eq!(v["metadata"], json!({"n": 2}));

    quick_sends(&sb, &c).await;

    assert_eq!(sb.state().counts["contacts"], before + 2);
    let sum = sb.summary();
    assert_eq!(
        (
            sum.contacts_created,
            sum.contacts_updated,
            sum.messages_sent
        ),
        (2, 4, 4)
    );
    sb.shutdown().await;
}

/// `contact.list` by status and `contact.create` with its options; the created contact's id.
async fn contact_list_and_create(c: &Client) -> String {
    let list = c.get("/core/v1/contact?PageSize=100").await;
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["status"] == "ACTIVE"));
    let archived = c.get("/core/v1/contact?Status=ARCHIVED").await;
    assert!(archived["totalItems"].as_u64().unwrap() >= 1);

    let created = c
        .ok(
            Method::POST,
            "/core/v1/contact",
            json!({"name": "Zé", "phonenumber": "5511988887777", "metadata": {"k": "v"}}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["phoneNumber"], "+55|11988887777");
    let (st, err) = c
        .send(
            Method::POST,
            "/core/v1/contact",
            Some(json!({"phoneNumber": "5511988887777"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_envelope(&err, 400, "ERROR_CONTACT_ALREADY_EXISTS");
    let same = c
        .ok(
            Method::POST,
            "/core/v1/contact",
            json!({"phoneNumber": "5511988887777", "name": "X", "options": {"getIfExists": true}}),
        )
        .await;
    assert_eq!(
        (same["id"].as_str(), same["name"].as_str()),
        (Some(id.as_str()), Some("Zé"))
    );
    let up = c
        .ok(
            Method::POST,
            "/core/v1/contact",
            json!({"phoneNumber": "5511988887777", "name": "José", "options": {"upsert": true}}),
        )
        .await;
    assert_eq!(
        (up["id"].as_str(), up["name"].as_str()),
        (Some(id.as_str()), Some("José"))
    );
    let (st, _) = c
        .send(
            Method::POST,
            "/core/v1/contact",
            Some(json!({"email": "nope"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    id
}

/// Quick sends to an unknown phone: the contact, the open session, its reuse and replacement.
async fn quick_sends(sb: &Sandbox, c: &Client) {
    // Quick sends to an unknown phone create the contact and an open session.
    let q = c
        .ok(
            Method::POST,
            "/chat/v1/message/send",
            json!({"to": "5521977776666", "from": "x", "body": {"text": "olá"}}),
        )
        .await;
    assert_eq!(q["status"], "PROCESSING");
    let sid = q["sessionId"].as_str().unwrap().to_owned();
    let s = c.get(&format!("/chat/v1/session/{sid}")).await;
    assert_ne!(s["status"], "COMPLETED");
    let contact = c.get("/core/v1/contact/phonenumber/5521977776666").await;
    assert_eq!(s["contactId"], contact["id"]);
    // A second send reuses the open session; force_start_session opens a new one.
    let m = c
        .ok(
            Method::POST,
            "/chat/v1/message/send-sync",
            json!({"to": "5521977776666", "body": {"text": "2"}}),
        )
        .await;
    assert_eq!(
        (m["sessionId"].as_str(), m["status"].as_str()),
        (Some(sid.as_str()), Some("SENT"))
    );
    let f = c
        .ok(Method::POST, "/chat/v1/message/send", json!({"to": "5521977776666", "body": {"fileUrl": "https://f/a.png"}, "options": {"forceStartSession": true}}))
        .await;
    assert_ne!(f["sessionId"], sid.as_str());
    assert_eq!(sb.session(&sid).unwrap().status, "COMPLETED");
    let tpl = c.get("/chat/v1/template?ApprovedOnly=true").await["items"][1]["id"].clone();
    let t = c
        .ok(
            Method::POST,
            "/chat/v1/message/send",
            json!({"to": "5521977776666", "body": {"templateId": tpl}}),
        )
        .await;
    assert_eq!(t["sessionId"], f["sessionId"]);
    let by_phone = c
        .ok(
            Method::PUT,
            "/core/v1/contact/phonenumber/5521977776666",
            json!({"fields": ["Name"], "name": "Novo"}),
        )
        .await;
    assert_eq!(by_phone["name"], "Novo");
    let (st, _) = c
        .send(
            Method::POST,
            "/chat/v1/message/send",
            Some(json!({"to": "55", "body": {}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn panel_routes() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let (s0, s1, cid) = panels_and_card_creation(&c).await;

    // Update: move with position 0 and archived false (falsy values are real values).
    let v = c
        .ok(Method::PUT, &format!("/crm/v1/panel/card/{cid}"), json!({"fields": ["StepId", "Position", "Archived"], "stepId": s1, "position": 0, "archived": false}))
        .await;
    assert_eq!(
        (
            v["stepId"].as_str(),
            v["position"].as_f64(),
            v["archived"].as_bool()
        ),
        (Some(s1.as_str()), Some(0.0), Some(false))
    );
    let v = c
        .ok(
            Method::PUT,
            &format!("/crm/v2/panel/card/{cid}"),
            json!({"fields": ["Archived"], "archived": true}),
        )
        .await;
    assert_eq!(v["status"], "ARCHIVED");
    let v = c
        .ok(
            Method::PUT,
            &format!("/crm/v3/panel/card/{cid}"),
            json!({"fields": ["Status", "MonetaryAmount"], "status": "WON"}),
        )
        .await;
    assert_eq!(v["status"], "WON");
    assert!(v["monetaryAmount"].is_null());
    let got = c.get(&format!("/crm/v1/panel/card/{cid}")).await;
    assert_eq!(got["stepId"], s1.as_str());
    let got2 = c.get(&format!("/crm/v2/panel/card/{cid}")).await;
    assert_eq!(got2["status"], "WON");

    // Duplicate (v1, v2), archiving the original.
    let dup = c
        .ok(
            Method::POST,
            &format!("/crm/v1/panel/card/{cid}/duplicate"),
            json!({"copyToStepId": s0, "options": {"archiveOriginalCard": true}}),
        )
        .await;
    assert_eq!(dup["stepId"], s0.as_str());
    assert_ne!(dup["id"], cid.as_str());
    assert_eq!(
        c.get(&format!("/crm/v2/panel/card/{cid}")).await["status"],
        "ARCHIVED"
    );
    let dup2 = c
        .ok(
            Method::POST,
            &format!("/crm/v2/panel/card/{cid}/duplicate"),
            json!({}),
        )
        .await;
    assert_eq!(dup2["stepId"], s1.as_str());

    card_notes(&c, &cid).await;

    let sum = sb.summary();
    assert_eq!(
        (sum.cards_created, sum.cards_updated, sum.cards_duplicated),
        (2, 3, 2)
    );
    assert_eq!((sum.notes_created, sum.notes_deleted), (2, 1));
    sb.shutdown().await;
}

/// Panels, steps, custom fields and card listings; two cards created (v1, v2) in the first
/// step. Returns the first two steps' ids and the v1 card's id.
async fn panels_and_card_creation(c: &Client) -> (String, String, String) {
    let panels = c.get("/crm/v1/panel").await;
    assert_eq!(panels["totalItems"], 2);
    let v2 = c.get("/crm/v2/panel?Type=SALES").await;
    assert_eq!(v2["totalItems"], 1);
    let pid = panels["items"][0]["id"].as_str().unwrap().to_owned();
    let panel = c
        .get(&format!(
            "/crm/v1/panel/{pid}?IncludeDetails=Steps&IncludeDetails=Cards"
        ))
        .await;
    let steps = panel["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    assert!(steps[0]["cards"]["items"].is_array());
    let (s0, s1) = (
        steps[0]["id"].as_str().unwrap().to_owned(),
        steps[1]["id"].as_str().unwrap().to_owned(),
    );
    let fields = c.get(&format!("/crm/v1/panel/{pid}/custom-fields")).await;
    assert!(fields.is_array());

    let cards = c
        .get(&format!("/crm/v1/panel/card?PanelId={pid}&StepId={s0}"))
        .await;
    let in_s0 = cards["totalItems"].as_u64().unwrap();
    let (st, _) = c.send(Method::GET, "/crm/v1/panel/card", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "PanelId is required");

    let card = c
        .ok(
            Method::POST,
            "/crm/v1/panel/card",
            json!({"stepId": s0, "title": "Novo", "monetaryAmount": 10}),
        )
        .await;
    let cid = card["id"].as_str().unwrap().to_owned();
    assert_eq!(card["archived"], false);
    let card2 = c
        .ok(
            Method::POST,
            "/crm/v2/panel/card",
            json!({"stepId": s0, "title": "V2"}),
        )
        .await;
    assert_eq!(card2["status"], "OPEN");
    assert!(card2.get("archived").is_none());
    let (st, _) = c
        .send(
            Method::POST,
            "/crm/v1/panel/card",
            Some(json!({"title": "no step"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let cards = c
        .get(&format!("/crm/v2/panel/card?PanelId={pid}&StepId={s0}"))
        .await;
    assert_eq!(cards["totalItems"].as_u64().unwrap(), in_s0 + 2);
    (s0, s1, cid)
}

/// Notes on the card: text and file notes, a delete and a second delete (404); an unseen card.
async fn card_notes(c: &Client, cid: &str) {
    // Notes.
    let n1 = c
        .ok(
            Method::POST,
            &format!("/crm/v1/panel/card/{cid}/note"),
            json!({"text": "anotação"}),
        )
        .await;
    c.ok(
        Method::POST,
        &format!("/crm/v1/panel/card/{cid}/note"),
        json!({"fileUrls": ["https://x/a.pdf"]}),
    )
    .await;
    let (st, _) = c
        .send(
            Method::POST,
            &format!("/crm/v1/panel/card/{cid}/note"),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let notes = c.get(&format!("/crm/v1/panel/card/{cid}/note")).await;
    assert_eq!(notes["totalItems"], 2);
    let nid = n1["id"].as_str().unwrap();
    let (st, body) = c
        .send(
            Method::DELETE,
            &format!("/crm/v1/panel/card/{cid}/note/{nid}"),
            None,
        )
        .await;
    assert_eq!((st, body), (StatusCode::OK, Value::Null));
    let (st, err) = c
        .send(
            Method::DELETE,
            &format!("/crm/v1/panel/card/{cid}/note/{nid}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_envelope(&err, 404, "ERROR_NOT_FOUND");
    assert_eq!(
        c.get(&format!("/crm/v1/panel/card/{cid}/note")).await["totalItems"],
        1
    );
    // An unseen card id is a card (see unseen_cards_steps_and_panels_materialize).
    let unseen = c.get(&format!("/crm/v1/panel/card/{NEW_SESSION}")).await;
    assert_eq!(unseen["id"], NEW_SESSION);
}
