//! The catalog against the published API descriptions (`shared/reference/openapi`): for
//! every action whose node route is in the spec, the method exists on that path, every query
//! key the catalog can send is declared for the operation, and every top-level body property
//! it can send is in the request body schema. The 10 legacy routes of wts-api.md §13 are not in
//! the spec; they must be exactly the unmatched ones.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use serde_json::Value;
use wts_playbook::catalog::{actions, ActionSpec, Location};

/// The node routes that the published spec does not describe (wts-api.md §13).
const LEGACY: [&str; 10] = [
    "contact.update",
    "session.list",
    "session.get",
    "panel.create_card",
    "panel.duplicate_card",
    "panel.list_cards",
    "panel.list",
    "panel.get_card",
    "panel.update_card",
    "sequence.list_contacts",
];

/// Names the catalog sends that the spec does not declare for the operation, each with the
/// reason the catalog keeps it (wts-api.md is the contract; the spec is incomplete there).
/// Format: (action, "query Key" | "body key").
const ALLOWED_DISAGREEMENTS: &[(&str, &str, &str)] = &[
    // §3.2 and §22.5: the node sends the bot id as `botId`; the current spec only names
    // `botKey`. The catalog offers both (never together) because which one the server honours
    // is UNCONFIRMED (§23.4).
    ("message.send_file", "body botId", "node field, §22.5"),
    ("message.send_template", "body botId", "node field, §22.5"),
    ("message.send_text", "body botId", "node field, §22.5"),
    ("chatbot.send", "body botId", "older node versions, §22.5"),
];

fn spec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/openapi")
}

fn load_specs() -> HashMap<&'static str, Value> {
    ["chat", "core", "crm"]
        .into_iter()
        .map(|s| {
            let path = spec_dir().join(format!("{s}.json"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (s, serde_json::from_str(&text).expect("spec is JSON"))
        })
        .collect()
}

/// Splits `/chat/v1/x/{id}` into ("chat", "/v1/x/{id}").
fn split_service(route: &str) -> (&str, &str) {
    let rest = route.strip_prefix('/').expect("route starts with /");
    let slash = rest.find('/').expect("route has a service prefix");
    (&rest[..slash], &rest[slash..])
}

fn is_template(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

/// The spec path matching `path` segment by segment, templates matching templates.
fn find_path<'a>(spec: &'a Value, path: &str) -> Option<(&'a str, &'a Value)> {
    let want: Vec<&str> = path.split('/').collect();
    spec["paths"].as_object()?.iter().find_map(|(p, item)| {
        let have: Vec<&str> = p.split('/').collect();
        let same = have.len() == want.len()
            && have.iter().zip(&want).all(|(h, w)| {
                if is_template(w) {
                    is_template(h)
                } else {
                    h == w
                }
            });
        same.then_some((p.as_str(), item))
    })
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("local $ref");
            resolve(spec, spec.pointer(pointer).expect("$ref resolves"))
        }
        None => schema,
    }
}

fn query_names(op: &Value) -> BTreeSet<String> {
    op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str())
        .map(|n| n.trim_end_matches("[]").to_ascii_lowercase())
        .collect()
}

fn body_properties(spec: &Value, op: &Value) -> Option<BTreeSet<String>> {
    let schema = op.pointer("/requestBody/content/application~1json/schema")?;
    let schema = resolve(spec, schema);
    Some(
        schema["properties"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
    )
}

/// Every problem of one matched action, as "query Key" / "body key" / free text.
fn check_action(spec: &Value, action: &ActionSpec, spec_path: &str, item: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let method = action.method.as_str().to_ascii_lowercase();
    let Some(op) = item.get(&method) else {
        return vec![format!("{} not declared on {spec_path}", action.method)];
    };
    let declared = query_names(op);
    let props = body_properties(spec, op);
    for p in action.params {
        match p.location {
            Location::Query(key) => {
                if !declared.contains(&key.to_ascii_lowercase()) {
                    problems.push(format!("query {key}"));
                }
            }
            Location::Body(pointer) => {
                let top = pointer.split('/').nth(1).unwrap_or_default();
                match &props {
                    None => problems.push(format!("body {top} (operation has no JSON body)")),
                    Some(props) if !props.contains(top) => problems.push(format!("body {top}")),
                    Some(_) => {}
                }
            }
            Location::Path | Location::Route | Location::Runner => {}
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

#[test]
fn catalog_agrees_with_the_published_spec() {
    let specs = load_specs();
    let mut matched = Vec::new();
    let mut unmatched = Vec::new();
    let mut failures = Vec::new();
    for action in actions() {
        let (service, path) = split_service(action.path);
        let spec = &specs[service];
        // A route is in the spec when its path is there *with this method*: the legacy
        // `PUT /core/v1/contact/{id}` shares its path with the documented GET.
        let method = action.method.as_str().to_ascii_lowercase();
        let Some((spec_path, item)) =
            find_path(spec, path).filter(|(_, item)| item.get(&method).is_some())
        else {
            unmatched.push(action.name);
            continue;
        };
        matched.push(action.name);
        let mut problems = BTreeSet::from_iter(check_action(spec, action, spec_path, item));
        if let Some(sync) = action.sync_path {
            let (service, path) = split_service(sync);
            match find_path(&specs[service], path) {
                Some((sp, item)) => problems.extend(check_action(spec, action, sp, item)),
                None => {
                    problems.insert(format!("sync route {sync} not in the spec"));
                }
            }
        }
        for problem in problems {
            let allowed = ALLOWED_DISAGREEMENTS
                .iter()
                .any(|(a, what, _)| *a == action.name && *what == problem);
            if allowed {
                println!("allowed disagreement: {}: {problem}", action.name);
            } else {
                failures.push(format!("{}: {problem}", action.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "catalog names the spec does not declare:\n{}",
        failures.join("\n")
    );
    assert!(
        matched.len() >= 29,
        "only {} actions matched",
        matched.len()
    );
    let mut legacy = LEGACY.to_vec();
    legacy.sort_unstable();
    unmatched.sort_unstable();
    assert_eq!(
        unmatched, legacy,
        "the unmatched actions are the legacy routes"
    );
    assert_eq!(matched.len() + unmatched.len(), 39);
}

#[test]
fn every_allowed_disagreement_is_still_needed() {
    // An allow-list entry whose disagreement has gone away must be removed.
    let specs = load_specs();
    for (name, what, _why) in ALLOWED_DISAGREEMENTS {
        let action = actions()
            .iter()
            .find(|a| a.name == *name)
            .expect("known action");
        let (service, path) = split_service(action.path);
        let spec = &specs[service];
        let (sp, item) = find_path(spec, path).expect("allow-listed action is matched");
        assert!(
            check_action(spec, action, sp, item)
                .iter()
                .any(|p| p == what),
            "{name}: `{what}` now agrees with the spec; drop it from the allow-list"
        );
    }
}
