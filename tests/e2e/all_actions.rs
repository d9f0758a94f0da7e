//! The confirmation and header-only inputs (issue 11), and all 39 actions run under both route
//! families.

use std::collections::HashSet;

use serde_json::Value;
use wts_playbook::catalog::{lookup, route_of, Method, Routes, SUCCESSORS};
use wts_playbook::sandbox::{JournalEntry, SandboxConfig};

use crate::support::{completed_id, uuids, Env};

use super::close_playbook;

// Issue 11: the confirmation, header-only inputs.

#[test]
fn without_a_terminal_a_large_run_needs_yes_and_sends_nothing() {
    let env = Env::new(SandboxConfig::default());
    let ids = uuids(11);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(""));
    let run = env.run_unconfirmed(&pb, Some("t"), &[]);
    assert_eq!(run.code, 2, "{}", run.context());
    assert!(
        run.stderr
            .contains("This run will change 11 object(s) at http://127.0.0.1:"),
        "{}",
        run.context()
    );
    assert!(
        run.stderr.contains("11  session.complete  (step `close`)"),
        "{}",
        run.context()
    );
    assert!(run.stderr.contains("pass --yes"), "{}", run.context());
    assert!(
        env.journal().is_empty(),
        "nothing is sent, not even the token check"
    );
    // With JSON logs the refusal is a JSON log line too.
    let run = env.run_unconfirmed(&pb, Some("t"), &["--log-format", "json"]);
    assert_eq!(run.code, 2, "{}", run.context());
    let line: Value =
        serde_json::from_str(run.stderr.trim()).unwrap_or_else(|e| panic!("{e}: {}", run.stderr));
    assert_eq!(line["level"], "ERROR", "{line}");
    assert!(
        line["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("pass --yes"),
        "{line}"
    );
    // Ten changes or fewer need no --yes.
    env.csv("ids.csv", "session_id", &ids[..10]);
    let run = env.run_unconfirmed(&pb, Some("t"), &[]);
    assert_eq!(run.code, 0, "{}", run.context());
    assert_eq!(env.journal().iter().filter_map(completed_id).count(), 10);
}

#[test]
fn a_header_only_csv_is_a_warning_in_the_summary_and_the_report() {
    let env = Env::new(SandboxConfig::default());
    env.csv("ids.csv", "session_id", &[]);
    let pb = env.write("close.yaml", &close_playbook(""));
    let run = env.run(&pb, Some("t"), &[]);
    assert_eq!(run.code, 0, "{}", run.context());
    let warning = "ids.csv) has a header but no rows: step `close` runs no item";
    assert!(
        run.stdout.contains("warning: input `ids` ("),
        "{}",
        run.context()
    );
    assert!(run.stdout.contains(warning), "{}", run.context());
    let report = run.report();
    let warnings = report["warnings"]
        .as_array()
        .expect("warnings in the report");
    assert_eq!(warnings.len(), 1, "{report}");
    assert!(warnings[0].as_str().unwrap().ends_with(warning), "{report}");
    assert!(
        env.journal().iter().all(|e| e.method == "GET"),
        "no change sent"
    );
}

#[test]
fn an_undefined_value_names_the_var_the_path_and_what_is_there() {
    let env = Env::new(SandboxConfig::default());
    let ids = uuids(2);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write(
        "undef.yaml",
        &format!(
            r#"version: 1
name: e2e-undefined
inputs:
  ids: {{ csv: ids.csv, key: session_id }}
vars:
  hello: "Your case {{{{ steps.look.output.numbr }}}} is open"
steps:
  - id: look
    action: session.get
    with: {{ session_id: "{}" }}
  - id: tell
    action: session.send_text
    for_each: inputs.ids
    with:
      session_id: "{{{{ row.session_id }}}}"
      text: "{{{{ vars.hello }}}}"
"#,
            ids[0]
        ),
    );
    let run = env.run(&pb, Some("t"), &[]);
    assert_eq!(run.code, 1, "{}", run.context());
    let failed: Vec<Value> = run
        .items()
        .into_iter()
        .filter(|i| i["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 2, "{}", run.context());
    for item in &failed {
        let error = item["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(
                "`vars.hello` (read by this step): `steps.look.output.numbr` is undefined \
                 (did you mean `number`?): `steps.look.output` has "
            ),
            "{error}"
        );
        assert!(
            error.contains(", id, "),
            "the available fields are listed: {error}"
        );
    }
    assert!(
        env.journal().iter().all(|e| e.method == "GET"),
        "nothing was sent"
    );
}

#[test]
fn the_confirmation_counts_only_what_a_resume_will_send() {
    let env = Env::new(SandboxConfig::default());
    let ids = uuids(14);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(""));
    // A canary: the first 5 sessions.
    let first = env.run(&pb, Some("t"), &["--limit", "5"]);
    assert_eq!(first.code, 0, "{}", first.context());
    let earlier = env.write(
        "first.json",
        first.report_text.as_deref().expect("a report"),
    );
    // 14 planned, 5 done before: the 9 left need no --yes.
    let run = env.run_unconfirmed(&pb, Some("t"), &["--resume", earlier.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.context());
    let journal = env.journal();
    let mut closed: Vec<&str> = journal.iter().filter_map(completed_id).collect();
    closed.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(closed, expected, "each session closed once");
}

/// A playbook running each of the 39 actions once, in an order where every step finds what it
/// needs (ids from the seeded lookups and from earlier steps' outputs). `family_card_update`
/// holds the lines of `panel.update_card` that only one route family has. Two more steps: a
/// second card read after the update, and a `shape` note whose text shows what the outputs
/// held (the card's `status`/`archived`, the session's `type`), to be read back from the
/// sandbox.
fn all_actions_playbook(env: &Env, family_card_update: &str, session: &str) -> String {
    let l = env.sb().state().lookups;
    let panel = &l.panels[0];
    let (dep, agent, seq) = (&l.departments[0].id, &l.agents[0].id, &l.sequences[0].id);
    let template = &l
        .templates
        .iter()
        .find(|t| t.name == "lembrete")
        .expect("the seeded template without parameters")
        .id;
    let bot = l.chatbots[0]
        .key
        .clone()
        .expect("seeded chatbots have a key");
    let (step0, step1) = (&panel.steps[0].id, &panel.steps[1].id);
    let panel = &panel.id;
    format!(
        r#"version: 1
name: all-actions
steps:
  - {{ id: c_create, action: contact.create, with: {{ name: Ana, phone_number: "5511988887777" }} }}
  - {{ id: c_list, action: contact.list, with: {{ page_size: 5 }} }}
  - {{ id: c_get, action: contact.get, with: {{ contact_id: "{{{{ steps.c_create.output.id }}}}" }} }}
  - {{ id: c_phone, action: contact.get_by_phone, with: {{ phone_number: "5511988887777" }} }}
  - {{ id: c_update, action: contact.update, with: {{ contact_id: "{{{{ steps.c_create.output.id }}}}", name: Ana Maria }} }}
  - {{ id: m_text, action: message.send_text, with: {{ to: "5511988887777", text: hello }} }}
  - {{ id: m_file, action: message.send_file, with: {{ to: "5511988887777", file_url: "https://example.com/a.pdf" }} }}
  - {{ id: m_tpl, action: message.send_template, with: {{ to: "5511988887777", template_id: "{template}" }} }}
  - {{ id: m_list, action: message.list, with: {{ session_id: "{session}" }} }}
  - {{ id: m_get, action: message.get, with: {{ message_id: "{{{{ steps.m_text.output.id }}}}" }} }}
  - {{ id: m_status, action: message.get_status, with: {{ message_id: "{{{{ steps.m_text.output.id }}}}" }} }}
  - {{ id: s_list, action: session.list, with: {{ page_size: 3 }} }}
  - {{ id: s_get, action: session.get, with: {{ session_id: "{session}" }} }}
  - {{ id: s_status, action: session.change_status, with: {{ session_id: "{session}", new_status: PENDING }} }}
  - {{ id: s_text, action: session.send_text, with: {{ session_id: "{session}", text: hi }} }}
  - {{ id: s_file, action: session.send_file, with: {{ session_id: "{session}", file_url: "https://example.com/b.pdf" }} }}
  - {{ id: s_tpl, action: session.send_template, with: {{ session_id: "{session}", template_id: "{template}" }} }}
  - {{ id: s_transfer, action: session.transfer, with: {{ session_id: "{session}", new_department_id: "{dep}" }} }}
  - {{ id: s_assign, action: session.assign, with: {{ session_id: "{session}", user_id: "{agent}" }} }}
  - {{ id: s_update, action: session.update, with: {{ session_id: "{session}", number: "T-1" }} }}
  - {{ id: s_complete, action: session.complete, with: {{ session_id: "{session}" }} }}
  - {{ id: p_list, action: panel.list }}
  - {{ id: p_get, action: panel.get, with: {{ panel_id: "{panel}", include_details: [Steps] }} }}
  - {{ id: p_card, action: panel.create_card, with: {{ step_id: "{step0}", title: Deal }} }}
  - {{ id: p_cards, action: panel.list_cards, with: {{ panel_id: "{panel}" }} }}
  - {{ id: p_get_card, action: panel.get_card, with: {{ card_id: "{{{{ steps.p_card.output.id }}}}" }} }}
  - id: p_update
    action: panel.update_card
    with:
      card_id: "{{{{ steps.p_card.output.id }}}}"
      step_id: "{step1}"
{family_card_update}
  - {{ id: p_read, action: panel.get_card, with: {{ card_id: "{{{{ steps.p_card.output.id }}}}" }} }}
  - {{ id: p_dup, action: panel.duplicate_card, with: {{ card_id: "{{{{ steps.p_card.output.id }}}}" }} }}
  - {{ id: p_note, action: panel.create_note_text, with: {{ card_id: "{{{{ steps.p_card.output.id }}}}", text: called }} }}
  - {{ id: p_note_file, action: panel.create_note_file, with: {{ card_id: "{{{{ steps.p_card.output.id }}}}", file_urls: ["https://example.com/c.pdf"] }} }}
  - {{ id: p_notes, action: panel.list_notes, with: {{ card_id: "{{{{ steps.p_card.output.id }}}}" }} }}
  - {{ id: p_del_note, action: panel.delete_note, with: {{ card_id: "{{{{ steps.p_card.output.id }}}}", note_id: "{{{{ steps.p_note.output.id }}}}" }} }}
  - {{ id: bot, action: chatbot.send, with: {{ bot_key: "{bot}", to: "5511988887777" }} }}
  - {{ id: q_list, action: sequence.list }}
  - {{ id: q_add, action: sequence.add_contact, with: {{ sequence_id: "{seq}", contact_id: "{{{{ steps.c_create.output.id }}}}" }} }}
  - {{ id: q_adds, action: sequence.add_contacts, with: {{ sequence_id: "{seq}", phone_numbers: ["5511977776666"] }} }}
  - {{ id: q_contacts, action: sequence.list_contacts, with: {{ sequence_id: "{seq}" }} }}
  - {{ id: q_remove, action: sequence.remove_contact, with: {{ sequence_id: "{seq}", contact_id: "{{{{ steps.c_create.output.id }}}}" }} }}
  - {{ id: q_removes, action: sequence.remove_contacts, with: {{ sequence_id: "{seq}", phone_numbers: ["5511977776666"] }} }}
  - id: shape
    action: panel.create_note_text
    with:
      card_id: "{{{{ steps.p_card.output.id }}}}"
      text: "status={{{{ steps.p_read.output.status is defined and steps.p_read.output.status }}}} archived={{{{ steps.p_read.output.archived is defined and steps.p_read.output.archived }}}} type={{{{ steps.s_get.output.type is defined and steps.s_get.output.type }}}}"
"#
    )
}

/// Runs the 39 actions under one route family against a fresh sandbox and checks what the
/// sandbox saw and holds. Returns the shape note's text and the journal of catalog requests.
fn run_all_actions(routes: &str) -> (String, Vec<JournalEntry>, Env) {
    let env = Env::new(SandboxConfig::default());
    let session = env
        .sb()
        .state()
        .sessions
        .iter()
        .find(|s| s.status != "COMPLETED")
        .expect("an open seeded session")
        .id
        .clone();
    let family_lines = if routes == "documented" {
        "      status: WON\n      lost_reason_id: null"
    } else {
        "      archived: true"
    };
    let pb = env.write(
        "all.yaml",
        &all_actions_playbook(&env, family_lines, &session),
    );
    let extra: &[&str] = if routes == "documented" {
        &[] // the default
    } else {
        &["--routes", routes]
    };
    let run = env.run(&pb, Some("pn_test"), extra);
    assert_eq!(run.code, 0, "{}", run.context());
    let report = run.report();
    assert_eq!(
        report["settings"]["routes"], routes,
        "the header records the family"
    );
    let items = run.items();
    let steps: HashSet<&str> = items.iter().filter_map(|i| i["step"].as_str()).collect();
    assert_eq!(
        steps.len(),
        41,
        "every step ran once (39 actions, a card read, a note)"
    );
    for i in &items {
        assert_eq!(i["status"], "succeeded", "{i}");
    }
    // The sandbox's state: every change landed.
    let st = env.sb().state();
    let s = env.sb().session(&session).expect("the session");
    assert_eq!(s.status, "COMPLETED");
    assert_eq!(s.number.as_deref(), Some("T-1"));
    let contact = st
        .contacts
        .iter()
        .find(|c| {
            c.phone_number
                .as_deref()
                .is_some_and(|p| p.ends_with("988887777"))
        })
        .expect("the created contact");
    assert_eq!(contact.name.as_deref(), Some("Ana Maria"));
    let card = st
        .cards
        .iter()
        .find(|c| c.title == "Deal")
        .expect("the card");
    let panel = &st.lookups.panels[0];
    assert_eq!(card.step_id, panel.steps[1].id, "moved");
    assert_eq!(
        st.cards.iter().filter(|c| c.title == "Deal").count(),
        2,
        "duplicated"
    );
    let notes: Vec<_> = st.notes.iter().filter(|n| n.card_id == card.id).collect();
    assert_eq!(
        notes.len(),
        2,
        "two notes created, one deleted, the shape note"
    );
    assert!(
        !st.enrolments.iter().any(|e| e.contact_id == contact.id),
        "enrolled, then removed"
    );
    // No separate token check: every request is one of the 41 the playbook sends.
    let journal: Vec<JournalEntry> = env.journal();
    assert_eq!(journal.len(), 41);
    let shape = st
        .notes
        .iter()
        .find(|n| n.text.as_deref().is_some_and(|t| t.starts_with("status=")))
        .and_then(|n| n.text.clone())
        .expect("the shape note");
    (shape, journal, env)
}

/// Whether a journal entry is a request to `template` (its `{placeholders}` match any segment).
fn is_route(e: &JournalEntry, method: Method, template: &str) -> bool {
    let have: Vec<&str> = e.path.split('/').collect();
    let want: Vec<&str> = template.split('/').collect();
    e.method == method.as_str()
        && have.len() == want.len()
        && have
            .iter()
            .zip(&want)
            .all(|(h, w)| w.starts_with('{') || h == w)
}

/// Under one family, each of the ten actions with two routes called its family's route and
/// never the other's; returns how many requests went to the family's own routes.
fn assert_family_routes(journal: &[JournalEntry], routes: Routes) -> usize {
    let mut own = 0;
    for s in &SUCCESSORS {
        let base = lookup(s.action).expect("catalog action");
        let (m, mine) = route_of(base, routes);
        let (_, theirs) = route_of(base, routes.other());
        let hits = journal.iter().filter(|e| is_route(e, m, mine)).count();
        assert!(hits >= 1, "{}: no {m} {mine} under {routes}", s.action);
        assert!(
            !journal.iter().any(|e| is_route(e, m, theirs)),
            "{}: {m} {theirs} sent under {routes}",
            s.action
        );
        own += hits;
    }
    own
}

#[test]
fn all_39_actions_run_under_the_documented_routes() {
    let (shape, journal, env) = run_all_actions("documented");
    // contact.update, session.list/get, the 6 card and panel reads and writes (two card reads)
    // and sequence.list_contacts.
    assert_eq!(assert_family_routes(&journal, Routes::Documented), 11);
    // v2/v3 shapes, as the playbook saw them: the card has `status`, no `archived`; the
    // session carries `type`.
    assert_eq!(shape, "status=WON archived=False type=INDIVIDUAL");
    let st = env.sb().state();
    let deal = st.cards.iter().find(|c| c.title == "Deal").unwrap();
    assert_eq!(deal.status, "WON");
}

#[test]
fn all_39_actions_run_under_the_node_routes() {
    let (shape, journal, env) = run_all_actions("node");
    assert_eq!(assert_family_routes(&journal, Routes::Node), 11);
    // v1 shapes, as the playbook saw them: the card has `archived`, no `status`; the session
    // has no `type`.
    assert_eq!(shape, "status=False archived=True type=False");
    let st = env.sb().state();
    let deal = st.cards.iter().find(|c| c.title == "Deal").unwrap();
    assert_eq!(deal.status, "ARCHIVED");
}
