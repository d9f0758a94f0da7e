//! Whole runs from a CSV or a listing: 2,000 closes, every page of a list, a per-item pipeline, a
//! parallel group.

use std::collections::{HashMap, HashSet};

use wts_playbook::sandbox::SandboxConfig;

use crate::support::{completed_id, count_by, message_post_id, statuses, uuids, Env};

use super::{close_playbook, is_first_alone, FAST_RETRY};

// ---------------------------------------------------------------------------------------------
// 1. 2,000 closes from a CSV.

#[test]
fn closes_two_thousand_sessions_from_a_csv() {
    let env = Env::new(SandboxConfig::default());
    let ids = uuids(2000);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "32"],
    );
    assert_eq!(run.code, 0, "{}", run.context());
    eprintln!("case 1: 2,000 closes in {:?}", run.elapsed);

    for id in &ids {
        let s = env.sb().session(id).expect("session exists in the sandbox");
        assert_eq!(s.status, "COMPLETED", "session {id}");
    }
    let journal = env.journal();
    let per = count_by(&journal, completed_id);
    assert_eq!(per.len(), 2000);
    for id in &ids {
        assert_eq!(per.get(id.as_str()), Some(&1), "complete calls for {id}");
    }
    assert_eq!(
        journal.len(),
        2000,
        "2,000 closes and no separate token check"
    );
    assert!(is_first_alone(&journal), "the first request is sent alone");

    let report = run.report();
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["dry_run"], false);
    let items = run.items();
    assert_eq!(items.len(), 2000);
    let keys: HashSet<&str> = items
        .iter()
        .map(|i| {
            assert_eq!(i["status"], "succeeded", "{i}");
            assert_eq!(i["step"], "close");
            i["key"].as_str().expect("key")
        })
        .collect();
    let want: HashSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(keys, want, "report keyed by session id");
    assert_eq!(report["totals"]["succeeded"], 2000);
}

// ---------------------------------------------------------------------------------------------
// 2. list (every page) then close.

#[test]
fn list_then_close_across_many_pages_skips_none() {
    let env = Env::new(SandboxConfig::default());
    let before = env.sb().state();
    let open: HashSet<String> = before
        .sessions
        .iter()
        .filter(|s| s.status == "IN_PROGRESS")
        .map(|s| s.id.clone())
        .collect();
    assert!(
        open.len() > 14,
        "the seed has several pages of IN_PROGRESS sessions ({})",
        open.len()
    );
    let pb = env.write(
        "list-close.yaml",
        r#"version: 1
name: e2e-list-close
steps:
  - id: open_sessions
    action: session.list
    paginate: all
    with:
      status: [IN_PROGRESS]
      page_size: 7
  - id: close
    action: session.complete
    for_each: steps.open_sessions.output.items
    with:
      session_id: "{{ item.id }}"
"#,
    );
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "8"],
    );
    assert_eq!(run.code, 0, "{}", run.context());

    let after = env.sb().state();
    let still_open: Vec<&str> = after
        .sessions
        .iter()
        .filter(|s| s.status == "IN_PROGRESS")
        .map(|s| s.id.as_str())
        .collect();
    assert!(still_open.is_empty(), "still IN_PROGRESS: {still_open:?}");
    let journal = env.journal();
    let per = count_by(&journal, completed_id);
    let closed: HashSet<String> = per.keys().map(|k| (*k).to_owned()).collect();
    assert_eq!(closed, open, "exactly the sessions open before the run");
    assert!(per.values().all(|n| *n == 1), "each closed once: {per:?}");
    let pages = journal
        .iter()
        .filter(|e| e.method == "GET" && e.path == "/chat/v2/session")
        .count();
    assert_eq!(pages, open.len().div_ceil(7), "one request per page");

    let items = run.items();
    let close_items = items.iter().filter(|i| i["step"] == "close").count();
    assert_eq!(close_items, open.len());
    assert_eq!(run.report()["outcome"], "completed");
}

// ---------------------------------------------------------------------------------------------
// 3. per-item pipeline: lookup by phone, then enrol in a sequence.

#[test]
fn lookup_by_phone_then_enrol_each_contact_once() {
    let env = Env::new(SandboxConfig::default());
    let state = env.sb().state();
    let sequence = state.enrolments[0].sequence_id.clone();
    let enrolled: HashSet<&str> = state
        .enrolments
        .iter()
        .filter(|e| e.sequence_id == sequence)
        .map(|e| e.contact_id.as_str())
        .collect();
    let digits = |p: &str| p.chars().filter(char::is_ascii_digit).collect::<String>();
    let mut phones: Vec<String> = state
        .contacts
        .iter()
        .filter(|c| !enrolled.contains(c.id.as_str()))
        .filter_map(|c| c.phone_number.as_deref().map(digits))
        .take(8)
        .collect();
    assert_eq!(phones.len(), 8);
    // Two phones the account has never seen: the lookup creates their contacts.
    phones.push("5521988887777".into());
    phones.push("5521988886666".into());
    env.csv("contacts.csv", "phone", &phones);
    let pb = env.write(
        "enrol.yaml",
        &format!(
            r#"version: 1
name: e2e-enrol
inputs:
  contacts:
    csv: contacts.csv
    key: phone
vars:
  sequence: {sequence}
steps:
  - id: per_contact
    for_each: inputs.contacts
    steps:
      - id: lookup
        action: contact.get_by_phone
        with:
          phone_number: "{{{{ row.phone }}}}"
      - id: enrol
        action: sequence.add_contact
        with:
          sequence_id: "{{{{ vars.sequence }}}}"
          contact_id: "{{{{ steps.lookup.output.id }}}}"
"#
        ),
    );
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "4"],
    );
    assert_eq!(run.code, 0, "{}", run.context());

    let after = env.sb().state();
    let journal = env.journal();
    let enrol_path = format!("/chat/v1/sequence/{sequence}/contact");
    for phone in &phones {
        let contact = after
            .contacts
            .iter()
            .find(|c| c.phone_number.as_deref().map(digits).as_deref() == Some(phone.as_str()))
            .unwrap_or_else(|| panic!("a contact has phone {phone}"));
        let enrolments = after
            .enrolments
            .iter()
            .filter(|e| e.sequence_id == sequence && e.contact_id == contact.id)
            .count();
        assert_eq!(enrolments, 1, "contact of {phone} enrolled once");
        let posts = journal
            .iter()
            .filter(|e| e.method == "POST" && e.path == enrol_path)
            .filter(|e| e.body["contactId"] == contact.id.as_str())
            .count();
        assert_eq!(posts, 1, "one enrol request for the contact of {phone}");
        let lookups = journal
            .iter()
            .filter(|e| e.path == format!("/core/v1/contact/phonenumber/{phone}"))
            .count();
        assert_eq!(lookups, 1, "one lookup of {phone}");
    }
    let enrol_posts = journal
        .iter()
        .filter(|e| e.method == "POST" && e.path == enrol_path)
        .count();
    assert_eq!(enrol_posts, phones.len(), "no other enrol request");
    let counts = statuses(&run.items());
    assert_eq!(
        counts.get("succeeded"),
        Some(&(2 * phones.len())),
        "{counts:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. a parallel group: closing sessions while sending texts.

#[test]
fn parallel_group_closes_and_sends_at_the_same_time() {
    let env = Env::new(SandboxConfig {
        latency_ms: 3,
        ..SandboxConfig::default()
    });
    let to_close = uuids(40);
    let to_tell = uuids(40);
    env.csv("close.csv", "session_id", &to_close);
    env.csv("tell.csv", "session_id", &to_tell);
    let pb = env.write(
        "parallel.yaml",
        r#"version: 1
name: e2e-parallel
inputs:
  close:
    csv: close.csv
    key: session_id
  tell:
    csv: tell.csv
    key: session_id
settings:
  concurrency: 2
steps:
  - parallel:
      - id: close
        action: session.complete
        for_each: inputs.close
        with:
          session_id: "{{ row.session_id }}"
      - id: tell
        action: session.send_text
        for_each: inputs.tell
        with:
          session_id: "{{ row.session_id }}"
          text: "e2e parallel hello"
"#,
    );
    let run = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(run.code, 0, "{}", run.context());

    for id in &to_close {
        assert_eq!(env.sb().session(id).unwrap().status, "COMPLETED", "{id}");
    }
    let state = env.sb().state();
    let mut sent: HashMap<&str, usize> = HashMap::new();
    for m in &state.messages {
        if m.text.as_deref() == Some("e2e parallel hello") {
            *sent.entry(m.session_id.as_str()).or_default() += 1;
        }
    }
    for id in &to_tell {
        assert_eq!(sent.get(id.as_str()), Some(&1), "one message in {id}");
    }
    assert_eq!(sent.len(), to_tell.len());
    // Both steps were in flight together: their requests interleave in the journal.
    let journal = env.journal();
    let first_send = journal
        .iter()
        .position(|e| message_post_id(e).is_some())
        .unwrap();
    let last_close = journal
        .iter()
        .rposition(|e| completed_id(e).is_some())
        .unwrap();
    let first_close = journal
        .iter()
        .position(|e| completed_id(e).is_some())
        .unwrap();
    let last_send = journal
        .iter()
        .rposition(|e| message_post_id(e).is_some())
        .unwrap();
    assert!(
        first_send < last_close && first_close < last_send,
        "the two steps ran at the same time"
    );
}
