//! Seeded lookup ids in the state, and unseen ids materialized on first use.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wts_playbook::sandbox::{Sandbox, SandboxConfig};

use super::{assert_envelope, start, Client, NEW_SESSION};

const CARD_A: &str = "c0000000-0000-4000-8000-00000000000a";
const CARD_B: &str = "c0000000-0000-4000-8000-00000000000b";
const CARD_C: &str = "c0000000-0000-4000-8000-00000000000c";
const STEP_X: &str = "5e000000-0000-4000-8000-0000000000e1";
const STEP_Y: &str = "5e000000-0000-4000-8000-0000000000e2";
const PANEL_P: &str = "9a000000-0000-4000-8000-0000000000f1";
const PANEL_Q: &str = "9a000000-0000-4000-8000-0000000000f2";

pub(super) async fn inspect_state(sb: &Sandbox) -> Value {
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

/// The first seeded panel's id and its first two steps' ids.
struct HomeIds {
    id: String,
    s0: String,
    s1: String,
}

#[tokio::test]
async fn unseen_cards_steps_and_panels_materialize() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let before = inspect_state(&sb).await;
    let home = before["lookups"]["panels"][0].clone();
    let home_id = home["id"].as_str().unwrap().to_owned();
    let (s0, s1) = (
        home["steps"][0]["id"].as_str().unwrap().to_owned(),
        home["steps"][1]["id"].as_str().unwrap().to_owned(),
    );
    let home_ids = HomeIds {
        id: home_id,
        s0,
        s1,
    };
    unseen_cards_and_steps(&c, &home_ids).await;
    unseen_notes_duplicates_and_creations(&c, &home_ids).await;
    let p = unseen_panels(&c).await;

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

/// Unseen cards read and updated land in the home panel; an unknown step becomes its last.
async fn unseen_cards_and_steps(c: &Client, home_ids: &HomeIds) {
    let HomeIds {
        id: home_id,
        s0,
        s1,
    } = home_ids;
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
}

/// Notes on, duplicates into and cards created in unseen objects: all in the home panel.
async fn unseen_notes_duplicates_and_creations(c: &Client, home_ids: &HomeIds) {
    let home_id = &home_ids.id;
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
}

/// An unseen panel and its three steps; returns the panel as `panel.get` showed it.
async fn unseen_panels(c: &Client) -> Value {
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
    p
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
async fn unseen_sequences_messages_departments_and_users_materialize() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let contact = c.get("/core/v1/contact?PageSize=1").await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    unseen_sequences(&c, &contact).await;
    unseen_messages(&c).await;
    let (deps_before, agents_before) = unseen_departments_and_users(&sb, &c).await;

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

/// Enrolments into unseen sequences (single, batch, by `contact.update`).
async fn unseen_sequences(c: &Client, contact: &str) {
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
}

/// Unseen message ids: sent messages, each in a new session.
async fn unseen_messages(c: &Client) {
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
}

/// Unseen department and user ids from a CSV, accepted and then listed by the lookups;
/// returns how many departments and agents there were before.
async fn unseen_departments_and_users(sb: &Sandbox, c: &Client) -> (usize, usize) {
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
    (deps_before, agents_before)
}
