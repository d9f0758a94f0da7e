//! End-to-end tests of the sandbox over real HTTP on loopback: every route of the catalog,
//! auth, paging, faults, the rate limit and the journal. Each test starts its own sandbox.
#![expect(
    clippy::many_single_char_names,
    clippy::similar_names,
    reason = "short-lived bindings (`c` client, `v` value, `card`/`card2`) keep the route checks readable"
)]

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use wts_playbook::sandbox::{Sandbox, SandboxConfig};

const TOKEN: &str = "pn_test_token";

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(sb: &Sandbox) -> Client {
        Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            base: sb.url(),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.try_send(method, path, body)
            .await
            .expect("request failed")
    }

    async fn try_send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Result<(StatusCode, Value)> {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, v))
    }

    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.send(Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (s, v) = self.send(method.clone(), path, Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{method} {path}: {v}");
        v
    }
}

async fn start(config: SandboxConfig) -> (Sandbox, Client) {
    let sb = Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let c = Client::new(&sb);
    (sb, c)
}

fn assert_envelope(v: &Value, status: u16, key: &str) {
    assert_eq!(v["httpStatusCode"], status, "{v}");
    assert_eq!(v["error"], true, "{v}");
    assert_eq!(v["key"], key, "{v}");
    assert!(v["text"].is_string(), "{v}");
    assert!(v["date"].is_string(), "{v}");
    assert_eq!(
        v["id"]["shortValue"].as_str().unwrap(),
        &v["id"]["value"].as_str().unwrap()[..8]
    );
    assert!(v["isUnsolvableError"].is_boolean());
}

const NEW_SESSION: &str = "0f0e0d0c-0b0a-4908-8706-050403020100";

#[tokio::test]
#[allow(clippy::too_many_lines)] // TODO(issue 8): split
async fn session_routes_change_state() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let deps = c.get("/core/v1/department").await;
    let dep = deps[1]["id"].as_str().unwrap().to_owned();
    let agents = c.get("/core/v1/agent").await;
    let user = agents[0]["userId"].as_str().unwrap().to_owned();

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

    let sum = sb.summary();
    assert_eq!(sum.sessions_completed, 1);
    assert_eq!(sum.messages_sent, 3);
    assert_eq!(sum.sessions_transferred, 2);
    assert_eq!(sum.sessions_assigned, 1);
    sb.shutdown().await;
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
#[allow(clippy::too_many_lines)] // TODO(issue 8): split
async fn contact_and_quick_send_routes() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let before = sb.state().counts["contacts"];
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

#[tokio::test]
#[allow(clippy::too_many_lines)] // TODO(issue 8): split
async fn panel_routes() {
    let (sb, c) = start(SandboxConfig::default()).await;
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

    let sum = sb.summary();
    assert_eq!(
        (sum.cards_created, sum.cards_updated, sum.cards_duplicated),
        (2, 3, 2)
    );
    assert_eq!((sum.notes_created, sum.notes_deleted), (2, 1));
    sb.shutdown().await;
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // TODO(issue 8): split
async fn chatbot_and_sequence_routes() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let bots = c.get("/chat/v1/chatbot?Types=Automation").await;
    assert_eq!(bots["totalItems"], 2);
    let key = bots["items"][0]["key"].as_str().unwrap().to_owned();
    let s = c
        .ok(
            Method::POST,
            "/chat/v1/chatbot/send",
            json!({"botKey": key, "to": "5531911112222", "sessionMetadata": {"a": 1}}),
        )
        .await;
    assert_eq!(s["status"], "STARTED");
    assert_eq!(s["metadata"], json!({"a": 1}));
    assert!(s["botId"].is_string());
    let s2 = c
        .ok(
            Method::POST,
            "/chat/v1/chatbot/send",
            json!({"botId": "b", "sessionId": NEW_SESSION}),
        )
        .await;
    assert_eq!(s2["id"], NEW_SESSION);
    let (st, _) = c
        .send(
            Method::POST,
            "/chat/v1/chatbot/send",
            Some(json!({"to": "55"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let seqs = c.get("/chat/v1/sequence").await;
    assert_eq!(seqs["totalItems"], 3);
    let seq = seqs["items"][1]["id"].as_str().unwrap().to_owned();
    let contact = c.get("/core/v1/contact?PageSize=1").await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let e = c
        .ok(
            Method::POST,
            &format!("/chat/v1/sequence/{seq}/contact"),
            json!({"contactId": contact}),
        )
        .await;
    assert_eq!(
        (e["sequenceId"].as_str(), e["contactId"].as_str()),
        (Some(seq.as_str()), Some(contact.as_str()))
    );
    c.ok(
        Method::POST,
        &format!("/chat/v1/sequence/{seq}/contact"),
        json!({"phoneNumber": "5541900001111"}),
    )
    .await;
    let batch = c
        .ok(
            Method::POST,
            &format!("/chat/v1/sequence/{seq}/contact/batch"),
            json!({"phoneNumbers": ["5541900002222", "5541900003333"]}),
        )
        .await;
    assert_eq!(batch["totalItems"], 2);
    let (st, _) = c
        .send(
            Method::POST,
            &format!("/chat/v1/sequence/{seq}/contact/batch"),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        c.get(&format!("/chat/v1/sequence/{seq}/contact")).await["totalItems"],
        4
    );
    let filtered = c
        .get(&format!(
            "/chat/v2/sequence/{seq}/contact?ContactId={contact}"
        ))
        .await;
    assert_eq!(filtered["totalItems"], 1);
    assert_eq!(
        c.get(&format!("/chat/v1/sequence?ContactId={contact}"))
            .await["totalItems"],
        2
    );

    let (st, body) = c
        .send(
            Method::DELETE,
            &format!("/chat/v1/sequence/{seq}/contact"),
            Some(json!({"contactId": contact})),
        )
        .await;
    assert_eq!((st, body), (StatusCode::OK, Value::Null));
    let (st, _) = c
        .send(
            Method::DELETE,
            &format!("/chat/v1/sequence/{seq}/contact"),
            Some(json!({"contactId": contact})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = c
        .send(
            Method::DELETE,
            &format!("/chat/v1/sequence/{seq}/contact/batch"),
            Some(json!({"phoneNumbers": ["5541900002222", "5541900003333"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        c.get(&format!("/chat/v2/sequence/{seq}/contact")).await["totalItems"],
        1
    );
    // An unseen sequence id is an empty sequence.
    let unseen = c
        .get(&format!("/chat/v1/sequence/{NEW_SESSION}/contact"))
        .await;
    assert_eq!(unseen["totalItems"], 0);

    let sum = sb.summary();
    assert_eq!(
        (
            sum.chatbots_started,
            sum.enrolments_added,
            sum.enrolments_removed
        ),
        (2, 4, 3)
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn lookups_auth_and_paths() {
    let (sb, c) = start(SandboxConfig {
        token: Some(TOKEN.into()),
        ..SandboxConfig::default()
    })
    .await;
    for path in [
        "/chat/v1/channel",
        "/core/v1/department",
        "/core/v2/department",
        "/core/v1/agent",
        "/core/v1/tag",
        "/core/v1/contact/custom-field",
    ] {
        assert!(!c.get(path).await.as_array().unwrap().is_empty(), "{path}");
    }
    for path in ["/chat/v1/chatbot", "/chat/v1/template"] {
        assert!(
            c.get(path).await["totalItems"].as_u64().unwrap() > 0,
            "{path}"
        );
    }
    // Missing, malformed and wrong tokens: 401 envelope, even on unknown routes.
    let url = format!("{}/chat/v1/channel", sb.url());
    let http = reqwest::Client::new();
    for rb in [
        http.get(&url),
        http.get(&url).bearer_auth("wrong"),
        http.get(&url).header("Authorization", TOKEN),
        http.get(format!("{}/nowhere", sb.url())),
    ] {
        let resp = rb.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_envelope(&resp.json().await.unwrap(), 401, "ERROR_UNAUTHORIZED");
    }
    let (st, err) = c.send(Method::GET, "/v1/channel", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_envelope(&err, 400, "ERROR_BAD_REQUEST");
    let (st, _) = c.send(Method::GET, "/chat/v1/nothing", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let resp = http
        .put(format!(
            "{}/chat/v1/session/{NEW_SESSION}/complete",
            sb.url()
        ))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        sb.session(NEW_SESSION).is_none(),
        "bad JSON changes nothing"
    );
    assert_eq!(sb.summary().unauthorized, 4);

    // Non-loopback addresses are refused.
    let err = Sandbox::start("0.0.0.0:0".parse().unwrap(), SandboxConfig::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    sb.shutdown().await;
}

#[tokio::test]
async fn journal_and_inspection() {
    let (sb, c) = start(SandboxConfig::default()).await;
    c.ok(
        Method::PUT,
        &format!("/chat/v1/session/{NEW_SESSION}/complete"),
        json!({}),
    )
    .await;
    c.get("/core/v1/tag").await;
    let _ = c
        .send(
            Method::PUT,
            &format!("/chat/v1/session/{NEW_SESSION}/complete"),
            Some(json!({})),
        )
        .await;
    let j: Value = reqwest::get(format!("{}/__sandbox/journal", sb.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = j["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["seq"], 1);
    assert_eq!(entries[0]["method"], "PUT");
    assert_eq!(entries[0]["stateChanged"], true);
    assert_eq!(entries[0]["body"], json!({}));
    assert_eq!(
        (
            entries[1]["status"].as_u64(),
            entries[1]["stateChanged"].as_bool()
        ),
        (Some(200), Some(false))
    );
    assert_eq!(entries[2]["status"], 400);
    assert_eq!(sb.journal().len(), 3);

    let s: Value = reqwest::get(format!("{}/__sandbox/sessions/{NEW_SESSION}", sb.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["status"], "COMPLETED");
    let state: Value = reqwest::get(format!("{}/__sandbox/state", sb.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["counts"]["sessions"], 121);
    assert_eq!(state["counts"]["contacts"], 60);
    let summary: Value = reqwest::get(format!("{}/__sandbox/summary", sb.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["sessionsCompleted"], 1);
    assert_eq!(summary["changes"]["sessions completed"], 1);
    assert!(summary["text"]
        .as_str()
        .unwrap()
        .contains("sessions completed: 1"));
    let r = reqwest::Client::new()
        .post(format!("{}/__sandbox/reset", sb.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(sb.session(NEW_SESSION).is_none());
    assert!(sb.journal().is_empty());
    sb.shutdown().await;
}

#[tokio::test]
async fn fault_kinds() {
    let complete = |c: &Client| {
        let path = format!("/chat/v1/session/{NEW_SESSION}/complete");
        let c = Client {
            http: c.http.clone(),
            base: c.base.clone(),
        };
        async move { c.try_send(Method::PUT, &path, Some(json!({}))).await }
    };
    // fail before: 5xx envelope, state untouched.
    let (sb, c) = start(SandboxConfig {
        fail_rate: 1.0,
        ..SandboxConfig::default()
    })
    .await;
    let (st, err) = complete(&c).await.unwrap();
    assert!(st.is_server_error());
    assert_eq!(err["httpStatusCode"], st.as_u16());
    assert!(sb.session(NEW_SESSION).is_none());
    assert_eq!(sb.journal()[0].fault.as_deref(), Some("fail_before"));
    // Inspection is never faulted.
    assert_eq!(
        reqwest::get(format!("{}/__sandbox/summary", sb.url()))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    sb.shutdown().await;

    // fail after: 503, state changed.
    let (sb, c) = start(SandboxConfig {
        fail_after_rate: 1.0,
        ..SandboxConfig::default()
    })
    .await;
    let (st, err) = complete(&c).await.unwrap();
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    assert_envelope(&err, 503, "ERROR_SERVICE_UNAVAILABLE");
    assert_eq!(sb.session(NEW_SESSION).unwrap().status, "COMPLETED");
    let e = &sb.journal()[0];
    assert!(e.state_changed);
    assert_eq!(e.fault.as_deref(), Some("fail_after"));
    sb.shutdown().await;

    // drop before: transport error, state untouched.
    let (sb, c) = start(SandboxConfig {
        drop_rate: 1.0,
        ..SandboxConfig::default()
    })
    .await;
    assert!(complete(&c).await.is_err());
    assert!(sb.session(NEW_SESSION).is_none());
    assert_eq!(sb.journal()[0].status, 0);
    sb.shutdown().await;

    // drop after: transport error, state changed.
    let (sb, c) = start(SandboxConfig {
        drop_after_rate: 1.0,
        ..SandboxConfig::default()
    })
    .await;
    assert!(complete(&c).await.is_err());
    assert_eq!(sb.session(NEW_SESSION).unwrap().status, "COMPLETED");
    assert_eq!(sb.journal()[0].fault.as_deref(), Some("drop_after"));
    assert_eq!(sb.summary().faults_injected, 1);
    sb.shutdown().await;

    // latency is applied.
    let (sb, c) = start(SandboxConfig {
        latency_ms: 60,
        jitter_ms: 20,
        ..SandboxConfig::default()
    })
    .await;
    let t = std::time::Instant::now();
    c.get("/core/v1/tag").await;
    assert!(t.elapsed() >= Duration::from_millis(60));
    sb.shutdown().await;
}

#[tokio::test]
async fn rate_limit_windows() {
    let (sb, c) = start(SandboxConfig {
        rate_limit: vec![(5, Duration::from_millis(400))],
        retry_after: true,
        ..SandboxConfig::default()
    })
    .await;
    for _ in 0..5 {
        c.get("/core/v1/tag").await;
    }
    let resp = c
        .http
        .get(format!("{}/core/v1/tag", c.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_envelope(&resp.json().await.unwrap(), 429, "ERROR_TOO_MANY_REQUESTS");
    // Another token has its own windows.
    let other = c
        .http
        .get(format!("{}/core/v1/tag", c.base))
        .bearer_auth("other")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(420)).await;
    c.get("/core/v1/tag").await;
    assert_eq!(sb.summary().rate_limited, 1);
    assert_eq!(
        sb.journal()
            .iter()
            .filter(|e| e.fault.as_deref() == Some("rate_limited"))
            .count(),
        1
    );
    sb.shutdown().await;
}

// ---------------------------------------------------------------- unseen ids

const CARD_A: &str = "c0000000-0000-4000-8000-00000000000a";
const CARD_B: &str = "c0000000-0000-4000-8000-00000000000b";
const CARD_C: &str = "c0000000-0000-4000-8000-00000000000c";
const STEP_X: &str = "5e000000-0000-4000-8000-0000000000e1";
const STEP_Y: &str = "5e000000-0000-4000-8000-0000000000e2";
const PANEL_P: &str = "9a000000-0000-4000-8000-0000000000f1";
const PANEL_Q: &str = "9a000000-0000-4000-8000-0000000000f2";

async fn inspect_state(sb: &Sandbox) -> Value {
    reqwest::get(format!("{}/__sandbox/state", sb.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn state_lists_seeded_lookup_ids() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let state = inspect_state(&sb).await;
    let l = &state["lookups"];
    assert_eq!(
        ids(&l["departments"]),
        ids(&c.get("/core/v1/department").await)
    );
    let agents: Vec<String> = c
        .get("/core/v1/agent")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["userId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids(&l["agents"]), agents);
    assert_eq!(
        ids(&l["sequences"]),
        ids(&c.get("/chat/v1/sequence").await["items"])
    );
    assert_eq!(
        ids(&l["templates"]),
        ids(&c.get("/chat/v1/template").await["items"])
    );
    assert_eq!(ids(&l["channels"]), ids(&c.get("/chat/v1/channel").await));
    let bots = c.get("/chat/v1/chatbot").await;
    assert_eq!(ids(&l["chatbots"]), ids(&bots["items"]));
    assert_eq!(l["chatbots"][0]["key"], bots["items"][0]["key"]);
    assert_eq!(ids(&l["tags"]), ids(&c.get("/core/v1/tag").await));
    // Panels with their steps in position order, as `panel.get` shows them.
    let panels = l["panels"].as_array().unwrap();
    assert_eq!(panels.len(), 2);
    for p in panels {
        let pid = p["id"].as_str().unwrap();
        let got = c
            .get(&format!("/crm/v1/panel/{pid}?IncludeDetails=Steps"))
            .await;
        assert_eq!(p["title"], got["title"]);
        assert_eq!(ids(&p["steps"]), ids(&got["steps"]));
    }
    assert_eq!(panels[0]["steps"][0]["name"], "Prospecção");
    // The in-process snapshot says the same; the seed decides every id.
    let snap = sb.state();
    assert_eq!(serde_json::to_value(&snap.lookups).unwrap(), *l);
    let (other, _) = start(SandboxConfig::default()).await;
    assert_eq!(other.state().lookups, snap.lookups);
    let (third, _) = start(SandboxConfig {
        seed: 7,
        ..SandboxConfig::default()
    })
    .await;
    assert_ne!(third.state().lookups.departments, snap.lookups.departments);
    // The CLI banner names the first ids.
    let brief = snap.lookups.brief();
    assert!(brief.starts_with("seeded ids"), "{brief}");
    for id in [
        &snap.lookups.departments[0].id,
        &snap.lookups.agents[0].id,
        &snap.lookups.sequences[0].id,
        &snap.lookups.panels[0].id,
        &snap.lookups.panels[0].steps[0].id,
        &snap.lookups.templates[0].id,
        &snap.lookups.channels[0].id,
    ] {
        assert!(brief.contains(id.as_str()), "{id} missing from\n{brief}");
    }
    for s in [sb, other, third] {
        s.shutdown().await;
    }
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // TODO(issue 8): split
async fn unseen_cards_steps_and_panels_materialize() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let before = inspect_state(&sb).await;
    let home = before["lookups"]["panels"][0].clone();
    let home_id = home["id"].as_str().unwrap().to_owned();
    let (s0, s1) = (
        home["steps"][0]["id"].as_str().unwrap().to_owned(),
        home["steps"][1]["id"].as_str().unwrap().to_owned(),
    );

    // A card named for the first time sits in the first seeded panel's first step.
    let a = c.get(&format!("/crm/v2/panel/card/{CARD_A}")).await;
    assert_eq!(
        (
            a["id"].as_str(),
            a["title"].as_str(),
            a["panelId"].as_str(),
            a["stepId"].as_str(),
            a["status"].as_str(),
        ),
        (
            Some(CARD_A),
            Some("Card c0000000"),
            Some(home_id.as_str()),
            Some(s0.as_str()),
            Some("OPEN")
        )
    );
    assert_eq!(a["stepPhase"], "INITIAL");

    // update_card on an unseen card: created, then moved to the known step.
    let b = c
        .ok(
            Method::PUT,
            &format!("/crm/v3/panel/card/{CARD_B}"),
            json!({"fields": ["StepId"], "stepId": s1}),
        )
        .await;
    assert_eq!(
        (b["stepId"].as_str(), b["title"].as_str()),
        (Some(s1.as_str()), Some("Card c0000000"))
    );
    // ... and to an unknown step: it becomes the last step of the card's panel.
    let b = c
        .ok(
            Method::PUT,
            &format!("/crm/v1/panel/card/{CARD_B}"),
            json!({"fields": ["StepId"], "stepId": STEP_X.to_uppercase()}),
        )
        .await;
    assert_eq!(
        (b["stepId"].as_str(), b["panelId"].as_str()),
        (Some(STEP_X), Some(home_id.as_str()))
    );
    assert_eq!(b["stepTitle"], "Step 5e000000");
    let panel = c
        .get(&format!("/crm/v1/panel/{home_id}?IncludeDetails=Steps"))
        .await;
    let steps = panel["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    assert_eq!(steps[4]["id"], STEP_X);
    assert_eq!(steps[4]["cardCount"], 1);

    // Notes on an unseen card create it; deleting a note that never existed is a 404.
    let n = c
        .ok(
            Method::POST,
            &format!("/crm/v1/panel/card/{CARD_C}/note"),
            json!({"text": "from the CSV export"}),
        )
        .await;
    assert_eq!(n["cardId"], CARD_C);
    assert_eq!(n["panelId"], home_id.as_str());
    assert_eq!(
        c.get(&format!("/crm/v1/panel/card/{CARD_C}/note")).await["totalItems"],
        1
    );
    let (st, err) = c
        .send(
            Method::DELETE,
            &format!("/crm/v1/panel/card/{CARD_C}/note/{NEW_SESSION}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_envelope(&err, 404, "ERROR_NOT_FOUND");

    // Duplicating into an unknown step: a step of the original card's panel.
    let dup = c
        .ok(
            Method::POST,
            &format!("/crm/v2/panel/card/{CARD_A}/duplicate"),
            json!({"copyToStepId": STEP_Y}),
        )
        .await;
    assert_eq!(
        (dup["stepId"].as_str(), dup["panelId"].as_str()),
        (Some(STEP_Y), Some(home_id.as_str()))
    );
    // Creating a card in an unknown step: a step of the first seeded panel.
    let created = c
        .ok(
            Method::POST,
            "/crm/v2/panel/card",
            json!({"stepId": "5e000000-0000-4000-8000-0000000000e3", "title": "T"}),
        )
        .await;
    assert_eq!(created["panelId"], home_id.as_str());

    // A panel named for the first time has 3 steps; listing its cards creates it too.
    let p = c
        .get(&format!("/crm/v1/panel/{PANEL_P}?IncludeDetails=Steps"))
        .await;
    assert_eq!(p["title"], "Panel 9a000000");
    let titles: Vec<&str> = p["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Step 1", "Step 2", "Step 3"]);
    assert_eq!(
        c.get(&format!("/crm/v1/panel/{PANEL_P}/custom-fields"))
            .await,
        json!([])
    );
    let listed = c
        .get(&format!("/crm/v2/panel/card?PanelId={PANEL_Q}"))
        .await;
    assert_eq!(listed["totalItems"], 0);
    assert_eq!(c.get("/crm/v1/panel").await["totalItems"], 4);
    let (st, _) = c
        .send(Method::GET, "/crm/v1/panel/card?PanelId=nope", None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Cards go into the new panel's steps like any other.
    let p_step = p["steps"][1]["id"].as_str().unwrap();
    c.ok(
        Method::POST,
        "/crm/v1/panel/card",
        json!({"stepId": p_step, "title": "in P"}),
    )
    .await;
    let in_p = c
        .get(&format!("/crm/v1/panel/card?PanelId={PANEL_P}"))
        .await;
    assert_eq!(in_p["totalItems"], 1);
    assert_eq!(in_p["items"][0]["key"], "P9A000000-1");

    // Materializing is not a change; the operations on the objects are.
    let sum = sb.summary();
    assert_eq!(
        (
            sum.cards_created,
            sum.cards_updated,
            sum.cards_duplicated,
            sum.notes_created
        ),
        (2, 2, 1, 1)
    );
    let after = inspect_state(&sb).await;
    let count = |v: &Value, k: &str| v["counts"][k].as_u64().unwrap();
    assert_eq!(count(&after, "cards"), count(&before, "cards") + 3 + 1 + 2);
    assert_eq!(count(&after, "panels"), 4);
    assert_eq!(count(&after, "steps"), count(&before, "steps") + 3 + 6);
    let lookups_home = &after["lookups"]["panels"][0]["steps"];
    assert_eq!(lookups_home.as_array().unwrap().len(), 7);
    // A GET that materializes is journaled as a read.
    let first = &sb.journal()[0];
    assert!(first.path.ends_with(CARD_A) && !first.state_changed);

    // Derived ids depend on the seed and the id only, not on what came before.
    let (fresh, c2) = start(SandboxConfig::default()).await;
    let p2 = c2
        .get(&format!("/crm/v1/panel/{PANEL_P}?IncludeDetails=Steps"))
        .await;
    assert_eq!(ids(&p2["steps"]), ids(&p["steps"]));
    sb.shutdown().await;
    fresh.shutdown().await;
}

const SEQ_S: &str = "5eb00000-0000-4000-8000-000000000001";
const SEQ_T: &str = "5eb00000-0000-4000-8000-000000000002";
const MSG_M: &str = "3e500000-0000-4000-8000-000000000001";
const MSG_N: &str = "3e500000-0000-4000-8000-000000000002";
const DEP_D: &str = "de900000-0000-4000-8000-000000000001";
const DEP_E: &str = "de900000-0000-4000-8000-000000000002";
const USER_U: &str = "05e00000-0000-4000-8000-000000000001";
const USER_V: &str = "05e00000-0000-4000-8000-000000000002";
const USER_W: &str = "05e00000-0000-4000-8000-000000000003";

#[tokio::test]
#[allow(clippy::too_many_lines)] // TODO(issue 8): split
async fn unseen_sequences_messages_departments_and_users_materialize() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let contact = c.get("/core/v1/contact?PageSize=1").await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // sequence.add_contact to a sequence id from vars.
    let e = c
        .ok(
            Method::POST,
            &format!("/chat/v1/sequence/{SEQ_S}/contact"),
            json!({"contactId": contact}),
        )
        .await;
    assert_eq!(e["sequenceId"], SEQ_S);
    let seqs = c.get("/chat/v1/sequence?Name=Sequence 5eb").await;
    assert_eq!(seqs["totalItems"], 1);
    let s = &seqs["items"][0];
    assert_eq!(
        (
            s["name"].as_str(),
            s["active"].as_bool(),
            s["enabled"].as_bool(),
            s["contactExecutingCount"].as_u64()
        ),
        (Some("Sequence 5eb00000"), Some(true), Some(true), Some(1))
    );
    assert_eq!(
        c.get(&format!("/chat/v2/sequence/{SEQ_S}/contact")).await["totalItems"],
        1
    );
    let (st, _) = c
        .send(
            Method::DELETE,
            &format!("/chat/v1/sequence/{SEQ_S}/contact"),
            Some(json!({"contactId": contact})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // Batch add to another unseen sequence; removing a contact it never had is a 404.
    c.ok(
        Method::POST,
        &format!("/chat/v1/sequence/{SEQ_T}/contact/batch"),
        json!({"phoneNumbers": ["5541900004444"]}),
    )
    .await;
    let (st, _) = c
        .send(
            Method::DELETE,
            &format!("/chat/v1/sequence/{SEQ_T}/contact"),
            Some(json!({"contactId": contact})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(c.get("/chat/v1/sequence").await["totalItems"], 5);
    // contact.update naming a sequence enrols the contact in it.
    c.ok(
        Method::PUT,
        &format!("/core/v1/contact/{contact}"),
        json!({"fields": ["SequenceIds"], "sequenceIds": ["5eb00000-0000-4000-8000-000000000003"]}),
    )
    .await;
    assert_eq!(c.get("/chat/v1/sequence").await["totalItems"], 6);

    // A message id never seen: a sent message in a new session.
    let m = c.get(&format!("/chat/v1/message/{MSG_M}")).await;
    assert_eq!(
        (
            m["id"].as_str(),
            m["status"].as_str(),
            m["direction"].as_str()
        ),
        (Some(MSG_M), Some("SENT"), Some("FROM_HUB"))
    );
    let sid = m["sessionId"].as_str().unwrap().to_owned();
    let session = c.get(&format!("/chat/v1/session/{sid}")).await;
    assert_eq!(session["status"], "IN_PROGRESS");
    assert_eq!(
        c.get(&format!("/chat/v1/session/{sid}/message")).await["totalItems"],
        1
    );
    let st = c.get(&format!("/chat/v1/message/{MSG_N}/status")).await;
    assert_eq!(
        (st["id"].as_str(), st["status"].as_str()),
        (Some(MSG_N), Some("SENT"))
    );
    assert_ne!(st["sessionId"], sid.as_str());
    assert_eq!(
        c.get(&format!("/chat/v1/message/{MSG_M}")).await["sessionId"],
        sid.as_str()
    );

    // Department and user ids from a CSV: accepted, then listed by the lookups.
    let deps_before = c.get("/core/v1/department").await.as_array().unwrap().len();
    let agents_before = c.get("/core/v1/agent").await.as_array().unwrap().len();
    c.ok(
        Method::PUT,
        &format!("/chat/v1/session/{NEW_SESSION}/transfer"),
        json!({"type": "USER", "newDepartmentId": DEP_D, "newUserId": USER_U}),
    )
    .await;
    c.ok(
        Method::PUT,
        &format!("/chat/v1/session/{NEW_SESSION}/assignee"),
        json!({"userId": USER_V}),
    )
    .await;
    c.ok(
        Method::PUT,
        &format!("/chat/v2/session/{NEW_SESSION}/partial"),
        json!({"fields": ["DepartmentId"], "departmentId": DEP_E}),
    )
    .await;
    let home_step = sb.state().lookups.panels[0].steps[0].id.clone();
    let card = c
        .ok(
            Method::POST,
            "/crm/v1/panel/card",
            json!({"stepId": home_step, "title": "owned", "responsibleUserId": USER_W}),
        )
        .await;
    assert_eq!(card["responsibleUser"]["name"], "Agent 05e00000");
    let deps = c.get("/core/v1/department").await;
    let deps = deps.as_array().unwrap();
    assert_eq!(deps.len(), deps_before + 2);
    assert_eq!(deps[deps_before]["id"], DEP_D);
    assert_eq!(deps[deps_before]["name"], "Department de900000");
    assert_eq!(deps[deps_before + 1]["id"], DEP_E);
    let agents = c.get("/core/v1/agent").await;
    let agents = agents.as_array().unwrap();
    assert_eq!(agents.len(), agents_before + 3);
    let u = &agents[agents_before];
    assert_eq!(
        (u["userId"].as_str(), u["name"].as_str()),
        (Some(USER_U), Some("Agent 05e00000"))
    );
    assert_eq!(u["departments"], json!([{"departmentId": DEP_D}]));
    assert_eq!(agents[agents_before + 1]["userId"], USER_V);
    assert_eq!(agents[agents_before + 2]["userId"], USER_W);
    let s = c
        .get(&format!(
            "/chat/v1/session/{NEW_SESSION}?IncludeDetails=AgentDetails&IncludeDetails=DepartmentsDetails"
        ))
        .await;
    assert_eq!(s["agentDetails"]["userId"], USER_V);
    assert_eq!(s["departmentDetails"]["id"], DEP_E);
    // message.send_quick with a department and a user; card contacts and sessions.
    let q = c
        .ok(
            Method::POST,
            "/chat/v1/message/send-sync",
            json!({"to": "5541900005555", "body": {"text": "oi"},
                   "department": {"id": "de900000-0000-4000-8000-000000000003"},
                   "user": {"id": "05e00000-0000-4000-8000-000000000004"}}),
        )
        .await;
    let qs = c
        .get(&format!(
            "/chat/v1/session/{}?IncludeDetails=AgentDetails",
            q["sessionId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        qs["agentDetails"]["departments"],
        json!([{"departmentId": "de900000-0000-4000-8000-000000000003"}])
    );
    let unseen_contact = "c0c00000-0000-4000-8000-000000000001";
    let moved = c
        .ok(
            Method::PUT,
            &format!("/crm/v2/panel/card/{}", card["id"].as_str().unwrap()),
            json!({"fields": ["ContactIds", "SessionId"], "contactIds": [unseen_contact], "sessionId": NEW_SESSION}),
        )
        .await;
    assert_eq!(moved["contacts"][0]["name"], "Contato c0c00000");
    assert_eq!(
        c.get(&format!("/core/v1/contact/{unseen_contact}")).await["id"],
        unseen_contact
    );

    // A department a session.list filter names is listed too (it has no sessions yet).
    let filtered = c
        .get("/chat/v1/session?DepartmentId=de900000-0000-4000-8000-000000000004")
        .await;
    assert_eq!(filtered["totalItems"], 0);

    // Naming a known id again adds nothing.
    c.ok(
        Method::PUT,
        &format!("/chat/v1/session/{NEW_SESSION}/transfer"),
        json!({"newDepartmentId": DEP_D}),
    )
    .await;
    let state = inspect_state(&sb).await;
    assert_eq!(
        state["lookups"]["departments"].as_array().unwrap().len(),
        deps_before + 4
    );
    assert_eq!(state["lookups"]["agents"][agents_before]["id"], USER_U);
    assert_eq!(state["lookups"]["sequences"][3]["id"], SEQ_S);

    // Only the operations count, not the objects they brought into existence.
    let sum = sb.summary();
    assert_eq!(
        (
            sum.enrolments_added,
            sum.enrolments_removed,
            sum.messages_sent,
            sum.sessions_created,
            sum.sessions_transferred,
            sum.sessions_assigned,
            sum.sessions_updated,
            sum.cards_created,
            sum.cards_updated,
            sum.contacts_updated
        ),
        (2, 1, 1, 1, 2, 1, 1, 1, 1, 1)
    );
    sb.shutdown().await;
}

#[test]
fn sandbox_command_prints_seeded_ids() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_wts-playbook"))
        .args(["sandbox", "--listen", "127.0.0.1:0", "--seed", "42"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().take(40) {
            let Ok(line) = line else { break };
            let done = line.contains("any other id");
            text += &line;
            text.push('\n');
            if done {
                break;
            }
        }
        let _ = tx.send(text);
    });
    let text = rx.recv_timeout(Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
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
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
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
        let mut child = Command::new(env!("CARGO_BIN_EXE_wts-playbook"))
            .args(["sandbox", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines().take(60) {
                let Ok(line) = line else { break };
                let done = line.starts_with("mode:");
                text += &line;
                text.push('\n');
                if done {
                    break;
                }
            }
            let _ = tx.send(text);
        });
        let text = rx.recv_timeout(Duration::from_secs(20));
        let _ = child.kill();
        let _ = child.wait();
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
