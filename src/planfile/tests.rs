//! The plan file: written and read back, every refusal, holes and matching.

use super::tests_support::{plan, write};
use super::*;
use serde_json::json;

#[test]
fn a_plan_reads_back_as_written_with_counts_and_sequence_numbers() {
    let p = plan();
    let text = p.to_jsonl();
    assert_eq!(text.lines().count(), 5);
    let back = parse("p", text.as_bytes()).unwrap();
    assert_eq!(back, p);
    assert_eq!(back.writes[2].seq, 3);
    assert_eq!(back.trailer.writes, 3);
    assert_eq!(back.trailer.actions["session.transfer"], 2);
    assert_eq!(
        back.trailer.steps.keys().collect::<Vec<_>>(),
        ["move", "close"]
    );
    assert_eq!(back.hash().len(), 64);
}

#[test]
fn any_one_byte_change_is_refused_as_changed() {
    let text = plan().to_jsonl();
    let bytes = text.as_bytes();
    // Every position of every line: flip a character to another printable one.
    for i in (0..bytes.len()).step_by(7) {
        let mut b = bytes.to_vec();
        b[i] = if b[i] == b'1' { b'2' } else { b'1' };
        match parse("p", &b) {
            Err(Refusal::Changed { .. } | Refusal::UnknownFormat { .. }) => {}
            other => panic!("byte {i} changed, got {other:?}"),
        }
    }
    // The trailer's counts and whitespace too.
    let edited = text.replace("\"writes\":3", "\"writes\":2");
    assert!(matches!(
        parse("p", edited.as_bytes()),
        Err(Refusal::Changed { .. })
    ));
    let spaced = text.replacen("{\"type\":\"trailer\"", "{ \"type\":\"trailer\"", 1);
    assert!(matches!(
        parse("p", spaced.as_bytes()),
        Err(Refusal::Changed { .. })
    ));
    // A line removed, the file cut short, a line added after the trailer.
    let lines: Vec<&str> = text.lines().collect();
    let dropped = format!("{}\n{}\n{}\n", lines[0], lines[1], lines[4]);
    assert!(matches!(
        parse("p", dropped.as_bytes()),
        Err(Refusal::Changed { .. })
    ));
    let cut = &text[..text.len() - 10];
    assert!(matches!(
        parse("p", cut.as_bytes()),
        Err(Refusal::Changed { .. })
    ));
    let extra = format!("{text}{}\n", lines[1]);
    assert!(matches!(
        parse("p", extra.as_bytes()),
        Err(Refusal::Changed { .. })
    ));
}

#[test]
fn an_unknown_format_is_named() {
    let text = plan().to_jsonl().replace(FORMAT, "wts-playbook-plan/9");
    let e = parse("p", text.as_bytes()).unwrap_err();
    assert!(matches!(&e, Refusal::UnknownFormat { found, .. } if found.contains("plan/9")));
    let report = "{\"format\":1,\"tool\":\"wts-playbook\"}\n";
    assert!(matches!(
        parse("p", report.as_bytes()),
        Err(Refusal::UnknownFormat { .. })
    ));
    assert!(matches!(
        parse("p", b""),
        Err(Refusal::UnknownFormat { .. })
    ));
}

#[test]
fn expiry_base_url_and_account_are_checked_in_that_order() {
    let p = plan();
    let now = p.header.created_at;
    let acct = account_fingerprint("tok-1");
    assert_eq!(
        check_target(&p, "p", now, "http://127.0.0.1:9/", &acct),
        Ok(())
    );
    let later = now + jiff::SignedDuration::from_hours(25);
    assert!(matches!(
        check_target(&p, "p", later, "http://127.0.0.1:9", &acct),
        Err(Refusal::Expired { .. })
    ));
    assert!(matches!(
        check_target(&p, "p", now, "http://127.0.0.1:10", &acct),
        Err(Refusal::OtherBaseUrl { .. })
    ));
    let other = account_fingerprint("tok-2");
    let e = check_target(&p, "p", now, "http://127.0.0.1:9", &other).unwrap_err();
    assert!(matches!(e, Refusal::OtherAccount { .. }));
    assert!(!e.to_string().contains("tok-"), "{e}");
}

#[test]
fn the_fingerprint_is_short_stable_and_not_the_token() {
    let f = account_fingerprint("pn_live_secret");
    assert_eq!(f.len(), 16);
    assert_eq!(f, account_fingerprint("pn_live_secret"));
    assert_ne!(f, account_fingerprint("pn_live_secreT"));
    assert!(!sha256_hex(b"pn_live_secret").starts_with(&f));
}

#[test]
fn holes_match_anything_and_the_rest_must_be_equal() {
    assert!(matches(&json!("[redacted]"), &json!("s3cret")));
    assert!(matches(&json!("<steps.c.output.id>"), &json!(42)));
    assert!(matches(&json!("key=[redacted] t"), &json!("key=abc t")));
    assert!(!matches(&json!("key=[redacted] t"), &json!("kez=abc t")));
    assert!(!matches(&json!("key=[redacted] t"), &json!("key=abc u")));
    assert!(matches(
        &json!("/x/<steps.c.output.id>/n/[redacted]"),
        &json!("/x/17/n/zz")
    ));
    assert!(!matches(
        &json!("/x/<steps.c.output.id>/n"),
        &json!("/y/17/n")
    ));
    assert!(!matches(&json!("ab"), &json!("abc")));
    assert!(matches(
        &json!({"a": [1, "[redacted]"]}),
        &json!({"a": [1, "k"]})
    ));
    assert!(!matches(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    assert!(!matches(&json!([1]), &json!([1, 2])));
    let w = write("move", "a", "session.transfer");
    let mut fresh = w.request();
    assert!(request_matches(&w, &fresh));
    fresh.body = Some(json!({"newDepartmentId": "d-3", "type": "DEPARTMENT"}));
    assert!(!request_matches(&w, &fresh));
}
