//! The catalog against its contract (docs/api-notes.md): one table-driven test over all 39 actions (exact method,
//! encoded path, query pairs and body), plus focused tests of the request-building rules.

use indexmap::IndexMap;
use serde_json::{json, Value};
use wts_playbook::catalog::{
    actions, build, check_names, convert, describe, file_id_pointer, is_idempotent, list_table,
    lookup, lookup_for, names, successor, HttpRequest, Method, ParamProblem, Routes, SUCCESSORS,
};

use super::catalog_cases::cases;

pub(super) const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
pub(super) const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
pub(super) const C: &str = "cccccccc-0000-4000-8000-000000000003";
pub(super) const D: &str = "dddddddd-0000-4000-8000-000000000004";

fn params(v: Value) -> IndexMap<String, Value> {
    match v {
        Value::Object(m) => m.into_iter().collect(),
        other => panic!("params are an object, got {other}"),
    }
}

fn ok(action: &str, v: Value) -> HttpRequest {
    let spec = lookup(action).unwrap_or_else(|| panic!("no action {action}"));
    build(spec, &params(v)).unwrap_or_else(|e| {
        panic!(
            "{action}: {}",
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })
}

fn err(action: &str, v: Value) -> Vec<ParamProblem> {
    build(lookup(action).unwrap(), &params(v)).expect_err("expected problems")
}

fn joined(problems: &[ParamProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_action_builds_the_documented_request() {
    let cases = cases();
    let mut seen = std::collections::HashSet::new();
    for c in &cases {
        assert!(seen.insert(c.action), "{} listed twice", c.action);
    }
    assert_eq!(cases.len(), 39);
    for a in actions() {
        assert!(seen.contains(a.name), "{} has no case", a.name);
    }
    let mut families = std::collections::HashSet::new();
    for c in &cases {
        // Each row is built in the family its route belongs to (the ten with two routes have
        // rows of both families; the 29 others are the same in both).
        let candidates = if successor(c.action).is_some() {
            &[Routes::Documented, Routes::Node][..]
        } else {
            &[Routes::Documented][..]
        };
        let routes = candidates
            .iter()
            .copied()
            .find(|r| {
                let spec = lookup_for(c.action, *r).expect("catalog action");
                if spec.sync_path.is_some() {
                    return true;
                }
                let fixed = spec.path.split('{').next().unwrap_or_default();
                c.path.starts_with(fixed)
                    && spec.path.matches('/').count() == c.path.matches('/').count()
            })
            .unwrap_or_else(|| panic!("{}: {} is in neither family", c.action, c.path));
        if successor(c.action).is_some() {
            families.insert(routes);
        }
        let spec = lookup_for(c.action, routes).expect("catalog action");
        let req = build(spec, &params(c.params.clone())).unwrap_or_else(|e| {
            panic!("{} ({routes}): {}", c.action, joined(&e));
        });
        assert_eq!(req.method, c.method, "{}: method", c.action);
        assert_eq!(req.path, c.path, "{}: path", c.action);
        let query: Vec<(String, String)> = c
            .query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(req.query, query, "{}: query", c.action);
        assert_eq!(req.body, c.body, "{}: body", c.action);
        // Never null or "" at the top level of a body.
        if let Some(Value::Object(m)) = &req.body {
            assert!(
                m.values().all(|v| !v.is_null() && v != ""),
                "{}: null or empty sent",
                c.action
            );
        }
    }
    assert_eq!(families.len(), 2, "the table has rows of both families");
}

#[test]
fn the_two_families_differ_only_in_the_route_for_shared_parameters() {
    for s in &SUCCESSORS {
        let doc = lookup_for(s.action, Routes::Documented).unwrap();
        let node = lookup_for(s.action, Routes::Node).unwrap();
        // The required parameters, which both families have.
        let given: Value = doc
            .params
            .iter()
            .filter(|p| p.required == wts_playbook::catalog::Required::Yes)
            .map(|p| {
                let v = match p.name {
                    "title" => json!("T"),
                    _ => json!(A),
                };
                (p.name.to_owned(), v)
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
        let mut given = given;
        if let Some(p) = doc.params.iter().find(|p| p.field.is_some()) {
            // A partial update needs one value.
            given[p.name] = match p.ty {
                wts_playbook::catalog::ParamType::One(wts_playbook::catalog::Scalar::String) => {
                    json!("T")
                }
                _ => json!(A),
            };
        }
        let d = build(doc, &params(given.clone())).unwrap_or_else(|e| panic!("{}", joined(&e)));
        let n = build(node, &params(given)).unwrap_or_else(|e| panic!("{}", joined(&e)));
        assert_eq!(
            (d.method, &d.query, &d.body),
            (n.method, &n.query, &n.body),
            "{}",
            s.action
        );
        assert_eq!(
            d.path.split('/').nth(2),
            s.path.split('/').nth(2),
            "{}: the successor's version",
            s.action
        );
        assert_ne!(d.path, n.path, "{}", s.action);
    }
    // A parameter of the other family is unknown to a family's spec.
    let doc = lookup_for("panel.list_cards", Routes::Documented).unwrap();
    let problems = build(
        doc,
        &params(json!({"panel_id": A, "include_archived": true})),
    )
    .expect_err("include_archived is a node parameter");
    assert!(joined(&problems).contains("include_archived"));
}

#[test]
fn fields_are_derived_deduplicated_in_param_order() {
    let req = ok(
        "contact.update",
        json!({"contact_id": A, "tag_names": ["vip"], "tag_ids": [B], "email": "a@b.co",
               "utm_term": "t", "utm_medium": "m"}),
    );
    assert_eq!(req.body.unwrap()["fields"], json!(["Email", "Tags", "Utm"]));

    // Options without a value field do not count as something to update.
    let problems = err(
        "contact.update",
        json!({"contact_id": A, "tags_operation": "ReplaceAll"}),
    );
    assert!(
        joined(&problems).contains("nothing to update"),
        "{problems:?}"
    );
    let problems = check_names(lookup("session.update").unwrap(), &["session_id"]);
    assert!(joined(&problems).contains("nothing to update"));
}

#[test]
fn explicit_fields_clear_omitted_values() {
    // Partial updates: DepartmentId named, value omitted → the department is cleared; `fields` as given.
    let req = ok(
        "session.update",
        json!({"session_id": A, "fields": ["DepartmentId", "UserId"], "user_id": null}),
    );
    assert_eq!(
        req.body,
        Some(json!({"fields": ["DepartmentId", "UserId"]}))
    );
    // Explicit fields are not extended with derived ones.
    let req = ok(
        "panel.update_card",
        json!({"card_id": A, "fields": ["Title"], "title": "T", "metadata": {"a": 1}}),
    );
    assert_eq!(
        req.body,
        Some(json!({"fields": ["Title"], "title": "T", "metadata": {"a": 1}}))
    );
    // Derived fields include Metadata when metadata is supplied (api-notes, "Node quirks").
    let req = ok(
        "panel.update_card",
        json!({"card_id": A, "metadata": {"a": 1}}),
    );
    assert_eq!(req.body.unwrap()["fields"], json!(["Metadata"]));
}

#[test]
fn transfer_type_is_derived_unless_given() {
    let dept = ok(
        "session.transfer",
        json!({"session_id": A, "new_department_id": B}),
    );
    assert_eq!(
        dept.body,
        Some(json!({"newDepartmentId": B, "type": "DEPARTMENT"}))
    );
    let user = ok(
        "session.transfer",
        json!({"session_id": A, "new_department_id": B, "new_user_id": C}),
    );
    assert_eq!(user.body.unwrap()["type"], "USER");
    let given = ok(
        "session.transfer",
        json!({"session_id": A, "new_department_id": B, "new_user_id": C, "type": "DEPARTMENT"}),
    );
    assert_eq!(given.body.unwrap()["type"], "DEPARTMENT");
}

#[test]
fn sync_selects_the_sync_route() {
    let base = json!({"session_id": A, "text": "x"});
    assert_eq!(
        ok("session.send_text", base.clone()).path,
        format!("/chat/v1/session/{A}/message")
    );
    let mut with = base.clone();
    with["sync"] = json!("true");
    assert_eq!(
        ok("session.send_text", with).path,
        format!("/chat/v1/session/{A}/message/sync")
    );
    let quick = ok(
        "message.send_text",
        json!({"text": "x", "to": "55", "sync": true}),
    );
    assert_eq!(quick.path, "/chat/v1/message/send-sync");
    assert_eq!(quick.body, Some(json!({"body": {"text": "x"}, "to": "55"})));
}

#[test]
fn phone_numbers_are_percent_encoded_in_paths() {
    let req = ok("contact.get_by_phone", json!({"phone_number": "+5511|999"}));
    assert_eq!(req.path, "/core/v1/contact/phonenumber/%2B5511%7C999");
    let req = ok("contact.get_by_phone", json!({"phone_number": "55 11/9"}));
    assert_eq!(req.path, "/core/v1/contact/phonenumber/55%2011%2F9");
}

#[test]
fn lists_become_repeated_query_keys() {
    let req = ok(
        "session.list",
        json!({"channels_id": [A, B], "include_details": "AgentDetails,ContactDetails"}),
    );
    assert_eq!(
        req.path_and_query(),
        format!(
            "/chat/v1/session?ChannelsId={A}&ChannelsId={B}&IncludeDetails=AgentDetails&IncludeDetails=ContactDetails"
        )
    );
}

#[test]
fn page_bounds_are_checked_before_sending() {
    for bad in [json!(0), json!(101), json!("0"), json!(-5)] {
        let problems = err("contact.list", json!({"page_size": bad}));
        assert_eq!(problems[0].param.as_deref(), Some("page_size"));
        assert!(
            problems[0].message.contains("between 1 and 100"),
            "{problems:?}"
        );
    }
    ok("contact.list", json!({"page_size": 1}));
    ok("contact.list", json!({"page_size": "100"}));
    let problems = err("contact.list", json!({"page_number": 0}));
    assert!(problems[0].message.contains("1 or more"));
}

#[test]
fn unknown_parameter_gets_did_you_mean() {
    let problems = err("contact.list", json!({"page_sise": 10}));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].param.as_deref(), Some("page_sise"));
    assert!(problems[0].message.contains("unknown parameter"));
    assert_eq!(
        problems[0].hint.as_deref(),
        Some("did you mean `page_size`?")
    );
    assert_eq!(
        problems[0].to_string(),
        "parameter `page_sise`: unknown parameter for `contact.list` (did you mean `page_size`?)"
    );
}

#[test]
fn missing_and_blank_required_parameters() {
    let problems = err("session.complete", json!({}));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].param.as_deref(), Some("session_id"));
    assert_eq!(problems[0].message, "missing required parameter");
    // Unlike the node: present but blank is rejected too.
    let problems = err("contact.update", json!({"contact_id": "  ", "name": "x"}));
    assert_eq!(problems[0].param.as_deref(), Some("contact_id"));
    assert!(problems[0].message.contains("empty"));
    // check_names alone, before any rendering.
    let problems = check_names(lookup("session.assign").unwrap(), &["session_id"]);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].param.as_deref(), Some("user_id"));
    // All problems, not the first.
    let problems = err(
        "panel.create_card",
        json!({"titel": "x", "position": -1, "due_date": "tomorrow"}),
    );
    assert_eq!(problems.len(), 5, "{}", joined(&problems));
}

#[test]
fn exactly_one_rules() {
    // File sources.
    let p = err("message.send_file", json!({"to": "55"}));
    assert!(joined(&p).contains("one of `file_url`, `file_id`, `file_base64` is required"));
    let p = err(
        "session.send_file",
        json!({"session_id": A, "file_url": "https://x", "file_id": B}),
    );
    assert!(joined(&p).contains("got `file_url`, `file_id`"));
    // file_base64 needs file_name.
    let p = err(
        "session.send_file",
        json!({"session_id": A, "file_base64": "aGk="}),
    );
    assert_eq!(p.len(), 1);
    assert!(p[0]
        .message
        .contains("`file_name` is required when `file_base64` is given"));
    // Sequence: contact_id xor phone_number.
    let p = err(
        "sequence.add_contact",
        json!({"sequence_id": A, "contact_id": B, "phone_number": "55"}),
    );
    assert!(joined(&p).contains("exactly one of `contact_id`, `phone_number`"));
    let p = err("sequence.remove_contact", json!({"sequence_id": A}));
    assert!(joined(&p).contains("one of `contact_id`, `phone_number` is required"));
    // Batch: at least one non-empty list.
    let p = err("sequence.add_contacts", json!({"sequence_id": A}));
    assert!(joined(&p).contains("at least one of"));
    let p = err(
        "sequence.add_contacts",
        json!({"sequence_id": A, "contact_ids": []}),
    );
    assert!(joined(&p).contains("must be non-empty"));
    // Chatbot: exactly one bot and one target.
    let p = err("chatbot.send", json!({"to": "55"}));
    assert!(joined(&p).contains("one of `bot_key`, `bot_id` is required"));
    let p = err(
        "chatbot.send",
        json!({"bot_key": A, "session_id": B, "to": "55"}),
    );
    assert!(joined(&p).contains("exactly one of `session_id`, `to`"));
}

#[test]
fn never_both_bot_key_and_bot_id() {
    for action in ["message.send_text", "chatbot.send"] {
        let p = err(
            action,
            json!({"text": "x", "to": "55", "bot_key": A, "bot_id": B}),
        );
        let all = joined(&p);
        assert!(all.contains("`bot_key`, `bot_id`"), "{action}: {all}");
    }
    let req = ok("chatbot.send", json!({"bot_id": A, "session_id": B}));
    assert_eq!(req.body, Some(json!({"botId": A, "sessionId": B})));
}

#[test]
fn zero_and_false_are_sent() {
    // The node drops falsy values; the runner sends them.
    let req = ok(
        "panel.update_card",
        json!({"card_id": A, "position": 0, "archived": false, "monetary_amount": 0}),
    );
    assert_eq!(
        req.body,
        Some(
            json!({"fields": ["Position", "MonetaryAmount", "Archived"], "position": 0,
                    "monetaryAmount": 0, "archived": false})
        )
    );
    let req = ok(
        "panel.update_card",
        json!({"card_id": A, "position": "0", "archived": "false"}),
    );
    assert_eq!(req.body.unwrap()["archived"], json!(false));
}

#[test]
fn absent_values_are_omitted() {
    let req = ok(
        "contact.create",
        json!({"name": "", "email": null, "instagram": "   ", "annotation": "note"}),
    );
    assert_eq!(req.body, Some(json!({"annotation": "note"})));
    // A POST with nothing in it still sends an (empty) body; a GET sends none.
    assert_eq!(ok("contact.create", json!({})).body, Some(json!({})));
    assert_eq!(ok("contact.list", json!({})).body, None);
    // utm only when a utm_* is given.
    let req = ok("contact.update", json!({"contact_id": A, "name": "x"}));
    assert!(req.body.unwrap().get("utm").is_none());
}

#[test]
fn value_checks() {
    let p = err("contact.create", json!({"email": "not-an-email"}));
    assert!(p[0].message.contains("not an e-mail address"));
    let p = err(
        "session.change_status",
        json!({"session_id": A, "new_status": "UNDEFINED"}),
    );
    assert_eq!(p[0].param.as_deref(), Some("new_status"));
    assert!(p[0].hint.as_deref().unwrap().contains("placeholder"));
    let long = "x".repeat(8001);
    let p = err(
        "panel.create_note_text",
        json!({"card_id": A, "text": long}),
    );
    assert!(p[0].message.contains("at most 8000"));
    ok(
        "panel.create_note_text",
        json!({"card_id": A, "text": "x".repeat(8000)}),
    );
    let p = err(
        "panel.create_card",
        json!({"step_id": A, "title": "t".repeat(501)}),
    );
    assert!(p[0].message.contains("at most 500"));
    let p = err(
        "panel.create_note_file",
        json!({"card_id": A, "file_urls": ["a", "b", "c", "d"]}),
    );
    assert!(p[0].message.contains("1 to 3"));
    let p = err(
        "panel.create_card",
        json!({"step_id": A, "title": "t", "position": -0.5}),
    );
    assert!(p[0].message.contains("0 or more"));
}

#[test]
fn conversion_table() {
    let spec = |a: &str, p: &str| lookup(a).unwrap().param(p).unwrap();
    let boolean = spec("session.complete", "reactivate_on_new_message");
    let int = spec("contact.list", "page_size");
    let number = spec("panel.create_card", "monetary_amount");
    let uuid = spec("session.get", "session_id");
    let datetime = spec("contact.list", "created_at_after");
    let enumeration = spec("contact.list", "status");
    let enum_list = spec("contact.list", "include_details");
    let ul = spec("panel.create_card", "contact_ids");
    let map = spec("contact.create", "metadata");
    let string = spec("contact.create", "phone_number");
    let ok_rows: Vec<(&_, Value, Value)> = vec![
        (boolean, json!("TRUE"), json!(true)),
        (boolean, json!("No"), json!(false)),
        (boolean, json!("1"), json!(true)),
        (boolean, json!(false), json!(false)),
        (int, json!("42"), json!(42)),
        (int, json!(" 7 "), json!(7)),
        (int, json!(15), json!(15)),
        (number, json!("1.5"), json!(1.5)),
        (number, json!("3"), json!(3)),
        (number, json!(2.25), json!(2.25)),
        (
            uuid,
            json!(" AAAAAAAA-0000-4000-8000-000000000001 "),
            json!(A),
        ),
        (
            datetime,
            json!("2025-05-27T14:00:00Z"),
            json!("2025-05-27T14:00:00Z"),
        ),
        (
            datetime,
            json!("2025-05-27T09:30:00.5-04:30"),
            json!("2025-05-27T14:00:00.5Z"),
        ),
        (enumeration, json!("BLOCKED"), json!("BLOCKED")),
        (
            enum_list,
            json!("Tags, CustomFields"),
            json!(["Tags", "CustomFields"]),
        ),
        (enum_list, json!(["Tags"]), json!(["Tags"])),
        (enum_list, json!("[\"Portfolios\"]"), json!(["Portfolios"])),
        (ul, json!(A), json!([A])),
        (map, json!({"a": null}), json!({"a": null})),
        (map, json!("{\"a\": 1}"), json!({"a": 1})),
        (string, json!(5_511_999_999_999_i64), json!("5511999999999")),
        (string, Value::Null, Value::Null),
    ];
    for (spec, input, want) in ok_rows {
        assert_eq!(convert(spec, &input), Ok(want), "{} {input}", spec.name);
    }
}

#[test]
fn conversion_table_rejects() {
    let spec = |a: &str, p: &str| lookup(a).unwrap().param(p).unwrap();
    let boolean = spec("session.complete", "reactivate_on_new_message");
    let int = spec("contact.list", "page_size");
    let number = spec("panel.create_card", "monetary_amount");
    let uuid = spec("session.get", "session_id");
    let datetime = spec("contact.list", "created_at_after");
    let enumeration = spec("contact.list", "status");
    let enum_list = spec("contact.list", "include_details");
    let map = spec("contact.create", "metadata");
    let string = spec("contact.create", "phone_number");
    let err_rows: Vec<(&_, Value, &str)> = vec![
        (
            boolean,
            json!("maybe"),
            "expected a bool (true/false/yes/no/1/0), got \"maybe\"",
        ),
        (
            boolean,
            json!(2),
            "expected a bool (true/false/yes/no/1/0), got 2",
        ),
        (int, json!("4.2"), "expected an integer, got \"4.2\""),
        (int, json!(4.2), "expected an integer, got 4.2"),
        (int, json!("ten"), "expected an integer, got \"ten\""),
        (int, json!("9223372036854775808"), "out of range"),
        (number, json!("abc"), "expected a number, got \"abc\""),
        (number, json!(true), "expected a number, got true"),
        (uuid, json!("1234"), "expected a UUID, got \"1234\""),
        (
            uuid,
            json!("aaaaaaaa00004000800000000000000g"),
            "expected a UUID",
        ),
        (
            datetime,
            json!("27/05/2025"),
            "expected an RFC 3339 datetime",
        ),
        (datetime, json!("2025-05-27T14:00:00"), "has no UTC offset"),
        (
            enumeration,
            json!("blocked"),
            "values are case-sensitive: use `BLOCKED`",
        ),
        (enumeration, json!("BLOKED"), "did you mean `BLOCKED`?"),
        (
            enum_list,
            json!("Tags,Nope"),
            "list element 2: expected one of Tags|CustomFields|Portfolios",
        ),
        (enum_list, json!({"a": 1}), "expected a list, got a map"),
        (map, json!([1]), "expected a map (JSON object), got a list"),
        (
            map,
            json!("not json"),
            "expected a map (JSON object), got \"not json\"",
        ),
        (string, json!({"x": 1}), "expected a string, got a map"),
    ];
    for (spec, input, want) in err_rows {
        let got = convert(spec, &input).expect_err("should fail");
        assert!(
            got.contains(want),
            "{} {input}: {got:?} lacks {want:?}",
            spec.name
        );
    }
}

#[test]
fn runner_params_stay_out_of_the_request() {
    let req = ok(
        "message.send_file",
        json!({"to": "55", "file_base64": "aGk=", "file_name": "hi.txt", "file_type": "DOCUMENT",
               "file_mime_type": "text/plain"}),
    );
    assert_eq!(req.body, Some(json!({"to": "55"})));
    assert_eq!(
        file_id_pointer(lookup("message.send_file").unwrap()),
        Some("/body/fileId")
    );
    assert_eq!(
        file_id_pointer(lookup("session.send_template").unwrap()),
        Some("/fileId")
    );
    assert_eq!(file_id_pointer(lookup("session.send_text").unwrap()), None);
}

#[test]
fn http_action() {
    let req = ok(
        "http",
        json!({"method": "GET", "path": "/chat/v1/template",
               "query": {"ChannelId": A, "IncludeDetails": ["Params", "File"], "ApprovedOnly": true, "PageSize": 50}}),
    );
    assert_eq!(req.method, Method::Get);
    assert_eq!(req.path, "/chat/v1/template");
    assert_eq!(
        req.query,
        vec![
            ("ChannelId".to_owned(), A.to_owned()),
            ("IncludeDetails".to_owned(), "Params".to_owned()),
            ("IncludeDetails".to_owned(), "File".to_owned()),
            ("ApprovedOnly".to_owned(), "true".to_owned()),
            ("PageSize".to_owned(), "50".to_owned()),
        ]
    );
    assert_eq!(req.body, None);
    let req = ok(
        "http",
        json!({"method": "POST", "path": "/core/v1/contact/filter", "body": {"pageNumber": 1}}),
    );
    assert_eq!(req.body, Some(json!({"pageNumber": 1})));
    let p = err("http", json!({"method": "GET", "path": "/v1/channel"}));
    assert!(p[0]
        .message
        .contains("must start with /core/, /chat/ or /crm/"));
    let p = err(
        "http",
        json!({"method": "GET", "path": "/chat/v1/channel?x=1"}),
    );
    assert!(p[0].message.contains("query string"));
    let p = err("http", json!({"method": "get", "path": "/chat/v1/channel"}));
    assert!(p[0].hint.as_deref().unwrap().contains("use `GET`"));
    let p = err("http", json!({}));
    assert_eq!(p.len(), 2);
}

#[test]
fn idempotency() {
    let http = lookup("http").unwrap();
    for (m, want) in [
        ("GET", true),
        ("PUT", true),
        ("DELETE", true),
        ("POST", false),
        ("PATCH", false),
    ] {
        assert_eq!(
            is_idempotent(http, &params(json!({"method": m, "path": "/chat/x"}))),
            want,
            "{m}"
        );
    }
    let create = lookup("contact.create").unwrap();
    assert!(!is_idempotent(create, &params(json!({"name": "x"}))));
    assert!(is_idempotent(create, &params(json!({"upsert": "true"}))));
    assert!(is_idempotent(
        create,
        &params(json!({"get_if_exists": true}))
    ));
    assert!(!is_idempotent(create, &params(json!({"upsert": false}))));
    for name in [
        "panel.delete_note",
        "sequence.remove_contact",
        "sequence.remove_contacts",
        "session.complete",
    ] {
        assert!(
            is_idempotent(lookup(name).unwrap(), &IndexMap::new()),
            "{name}"
        );
    }
    for name in [
        "chatbot.send",
        "panel.duplicate_card",
        "sequence.add_contact",
        "message.send_text",
    ] {
        assert!(
            !is_idempotent(lookup(name).unwrap(), &IndexMap::new()),
            "{name}"
        );
    }
}

#[test]
fn listing_and_description() {
    assert_eq!(names().count(), 40);
    let table = list_table();
    for a in actions() {
        assert!(table.contains(a.name), "{} missing from the list", a.name);
    }
    let d = describe(lookup("contact.get").unwrap());
    assert!(d.contains("GET /core/v1/contact/{contact_id}"));
    assert!(d.contains("enum[] Tags|CustomFields|Portfolios"));
    assert!(d.contains("query IncludeDetails"));
    let paginated: Vec<&str> = actions()
        .iter()
        .filter(|a| a.paginated)
        .map(|a| a.name)
        .collect();
    assert_eq!(
        paginated,
        [
            "contact.list",
            "message.list",
            "session.list",
            "panel.list_notes",
            "panel.list_cards",
            "panel.list",
            "sequence.list",
            "sequence.list_contacts"
        ]
    );
}
