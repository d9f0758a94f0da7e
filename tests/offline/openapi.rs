//! The catalog's requests against the vendor's published API descriptions, which the
//! repository carries in `reference/openapi/` (see its README for the source).
//!
//! Every one of the 39 actions is built, with every parameter it has, into real requests
//! (`catalog::build`, one request per choice an exclusive rule allows, `sync` both ways), and
//! each request is checked: the method exists on that path, path values match their schema,
//! every query key is declared for the operation and every value fits its schema, required
//! query keys are present, and the JSON body validates against the request schema (types,
//! formats, enums, unknown properties). Under `routes: documented` all 39 must pass; under
//! `routes: node` the 29 actions whose node route is published must pass and the ten legacy
//! routes must be exactly the unpublished ones. The file upload's requests are checked too.
//! The few disagreements the catalog keeps on purpose are listed with their reason.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use indexmap::IndexMap;
use serde_json::{json, Value};
use wts_playbook::catalog::{
    actions, build, lookup_for, route_of, successor, ActionSpec, HttpRequest, Location, ParamSpec,
    ParamType, Routes, Rule, Scalar, SUCCESSORS,
};
use wts_playbook::execute::upload::Upload;

/// What the catalog sends that the descriptions do not declare, each with the reason the
/// catalog keeps it. Format: (action, problem as [`check_request`] words it, reason).
const ALLOWED_DISAGREEMENTS: &[(&str, &str, &str)] = &[
    // The n8n node sends the bot id as `botId`; the current descriptions name only `botKey`.
    // The catalog offers both (never together) because which one the server honours is
    // unconfirmed (docs/api-notes.md, "Node quirks").
    (
        "message.send_file",
        "body/botId: not a property of the schema",
        "node field",
    ),
    (
        "message.send_template",
        "body/botId: not a property of the schema",
        "node field",
    ),
    (
        "message.send_text",
        "body/botId: not a property of the schema",
        "node field",
    ),
    (
        "chatbot.send",
        "body/botId: not a property of the schema",
        "older node versions",
    ),
    // The descriptions declare `Metadata` as an object in the query, without saying how it is
    // serialized; the catalog sends it as compact JSON (unconfirmed, api-notes "Two route
    // families").
    (
        "session.list",
        "query Metadata: a string, the schema wants object",
        "encoding undocumented",
    ),
];

fn load_specs() -> HashMap<&'static str, Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference/openapi");
    ["chat", "core", "crm"]
        .into_iter()
        .map(|s| {
            let path = dir.join(format!("{s}.json"));
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

/// A matched operation: its spec path, the operation object, and each path placeholder's value.
type Operation<'a> = (&'a str, &'a Value, Vec<(String, String)>);

/// The operation of `method` on the spec path matching `route` segment by segment: a literal
/// equals a literal, a `{placeholder}` of the catalog's route matches a spec placeholder (so the
/// legacy `/v1/panel/card` is not taken for `/v1/panel/{id}`). The concrete `path` (same
/// segments as `route`) gives the placeholders' values.
fn find_operation<'a>(
    spec: &'a Value,
    route: &str,
    path: &str,
    method: &str,
) -> Option<Operation<'a>> {
    let want: Vec<&str> = route.split('/').collect();
    let concrete: Vec<&str> = path.split('/').collect();
    if concrete.len() != want.len() {
        return None;
    }
    let mut best: Option<(usize, Operation<'a>)> = None;
    for (p, item) in spec["paths"].as_object()? {
        let have: Vec<&str> = p.split('/').collect();
        if have.len() != want.len() || item.get(method).is_none() {
            continue;
        }
        let mut holes = Vec::new();
        let same = have.iter().zip(&want).zip(&concrete).all(|((h, w), c)| {
            if is_template(h) && is_template(w) {
                holes.push((h.trim_matches(['{', '}']).to_owned(), (*c).to_owned()));
                true
            } else {
                h == w && !is_template(h)
            }
        });
        if same && best.as_ref().is_none_or(|(n, _)| holes.len() < *n) {
            best = Some((holes.len(), (p.as_str(), &item[method], holes)));
        }
    }
    best.map(|(_, op)| op)
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

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Validates `v` against an `OpenAPI` 3.0 schema (the subset the descriptions use: `$ref`,
/// `allOf`/`oneOf`/`anyOf`, `type`, `format` uuid/date-time, `enum`, `nullable`, `items`,
/// `properties`, `additionalProperties`, `minimum`/`maximum`). Problems go to `out` as
/// "`at`: what".
fn validate(spec: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    if v.is_null() {
        if schema["nullable"] != true && !schema.as_object().is_some_and(serde_json::Map::is_empty)
        {
            out.push(format!("{at}: null is not allowed"));
        }
        return;
    }
    for sub in schema["allOf"].as_array().into_iter().flatten() {
        validate(spec, sub, v, at, out);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema[key].as_array() {
            let fits = alts.iter().any(|s| {
                let mut o = Vec::new();
                validate(spec, s, v, at, &mut o);
                o.is_empty()
            });
            if !fits {
                out.push(format!("{at}: matches none of the {key} schemas"));
            }
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        if !values.contains(v) {
            out.push(format!(
                "{at}: {v} is not one of {}",
                Value::from(values.clone())
            ));
        }
    }
    let ty = schema["type"].as_str().or_else(|| {
        (schema.get("properties").is_some() || schema.get("additionalProperties").is_some())
            .then_some("object")
    });
    let Some(ty) = ty else { return };
    let got = type_name(v);
    let fits = got == ty || (ty == "number" && got == "integer");
    if !fits {
        out.push(format!("{at}: a {got}, the schema wants {ty}"));
        return;
    }
    match v {
        Value::String(s) => match schema["format"].as_str() {
            Some("uuid") if uuid::Uuid::parse_str(s).is_err() => {
                out.push(format!("{at}: `{s}` is not a uuid"));
            }
            Some("date-time") if s.parse::<jiff::Timestamp>().is_err() => {
                out.push(format!("{at}: `{s}` is not a date-time"));
            }
            _ => {}
        },
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            if schema["minimum"].as_f64().is_some_and(|m| x < m)
                || schema["maximum"].as_f64().is_some_and(|m| x > m)
            {
                out.push(format!("{at}: {x} is out of range"));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                validate(spec, &schema["items"], item, &format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            let props = schema["properties"].as_object();
            for (k, val) in map {
                let here = format!("{at}/{k}");
                match props.and_then(|p| p.get(k)) {
                    Some(s) => validate(spec, s, val, &here, out),
                    None => match &schema["additionalProperties"] {
                        Value::Bool(false) => {
                            out.push(format!("{here}: not a property of the schema"));
                        }
                        s @ Value::Object(_) => validate(spec, s, val, &here, out),
                        // Absent or `true`: anything goes, unless the schema lists properties
                        // (then an unknown key is a name the operation does not define).
                        _ if props.is_some() => {
                            out.push(format!("{here}: not a property of the schema"));
                        }
                        _ => {}
                    },
                }
            }
        }
        _ => {}
    }
}

/// A query or path value as the JSON value the parameter's schema describes.
fn typed(spec: &Value, schema: &Value, text: &str) -> Value {
    match resolve(spec, schema)["type"].as_str() {
        Some("integer") => text
            .parse::<i64>()
            .map_or_else(|_| json!(text), Value::from),
        Some("number") => text
            .parse::<f64>()
            .map_or_else(|_| json!(text), Value::from),
        Some("boolean") => match text {
            "true" => json!(true),
            "false" => json!(false),
            _ => json!(text),
        },
        _ => json!(text),
    }
}

/// Every way `req` (built from the catalog route `route`) disagrees with the descriptions, as
/// short sentences ("query Key: …").
fn check_request(specs: &HashMap<&str, Value>, route: &str, req: &HttpRequest) -> Vec<String> {
    let (service, path) = split_service(&req.path);
    let Some(spec) = specs.get(service) else {
        return vec![format!("no description for service {service}")];
    };
    let (_, route) = split_service(route);
    let method = req.method.as_str().to_ascii_lowercase();
    let Some((_, op, holes)) = find_operation(spec, route, path, &method) else {
        return vec![format!(
            "route {} {} is not published",
            req.method, req.path
        )];
    };
    let mut out = Vec::new();
    let declared: Vec<&Value> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| resolve(spec, p))
        .collect();
    let named = |place: &str, name: &str| {
        declared.iter().copied().find(|p| {
            p["in"] == place
                && p["name"]
                    .as_str()
                    .is_some_and(|n| n.trim_end_matches("[]").eq_ignore_ascii_case(name))
        })
    };
    for (name, value) in &holes {
        let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        match named("path", name) {
            Some(p) => {
                let v = typed(spec, &p["schema"], &value);
                validate(spec, &p["schema"], &v, &format!("path {name}"), &mut out);
            }
            None => out.push(format!("path {name}: not declared")),
        }
    }
    let mut keys: IndexMap<&str, Vec<&str>> = IndexMap::new();
    for (k, v) in &req.query {
        keys.entry(k.as_str()).or_default().push(v.as_str());
    }
    for (key, values) in &keys {
        let Some(p) = named("query", key) else {
            out.push(format!("query {key}: not declared for the operation"));
            continue;
        };
        if p["name"].as_str().map(|n| n.trim_end_matches("[]")) != Some(*key) {
            out.push(format!("query {key}: documented as `{}`", p["name"]));
        }
        let schema = resolve(spec, &p["schema"]);
        let at = format!("query {key}");
        if schema["type"] == "array" {
            let items: Vec<Value> = values
                .iter()
                .map(|v| typed(spec, &schema["items"], v))
                .collect();
            validate(spec, schema, &Value::Array(items), &at, &mut out);
        } else if let [one] = values.as_slice() {
            validate(spec, schema, &typed(spec, schema, one), &at, &mut out);
        } else {
            out.push(format!("{at}: repeated, but the schema is not an array"));
        }
    }
    for p in &declared {
        let name = p["name"].as_str().unwrap_or_default();
        if p["in"] == "query"
            && p["required"] == true
            && !keys.keys().any(|k| k.eq_ignore_ascii_case(name))
        {
            out.push(format!("query {name}: required, not sent"));
        }
    }
    let body_schema = op.pointer("/requestBody/content/application~1json/schema");
    match (&req.body, body_schema) {
        (Some(body), Some(schema)) => validate(spec, schema, body, "body", &mut out),
        (Some(_), None) => out.push("body: the operation takes no JSON body".to_owned()),
        (None, Some(_)) if op["requestBody"]["required"] == true => {
            out.push("body: required, not sent".to_owned());
        }
        (None, _) => {}
    }
    out
}

const UUID_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";

/// A valid value of a catalog parameter type.
fn sample(p: &ParamSpec) -> Value {
    let scalar = |s: Scalar| match s {
        Scalar::String => json!(format!("{}-value", p.name)),
        Scalar::Uuid => json!(UUID_A),
        Scalar::Bool => json!(true),
        Scalar::Int => json!(2),
        Scalar::Number => json!(1.5),
        Scalar::DateTime => json!("2025-05-27T14:00:00Z"),
        Scalar::Enum(values) => json!(values[values.len() - 1]),
    };
    match (p.name, p.ty) {
        ("phone_number" | "to" | "user_phone_number", _) => json!("5511999999999"),
        ("user_email" | "email", _) => json!("ana@example.com"),
        ("file_url" | "picture_url", _) => json!("https://example.com/a.pdf"),
        ("file_urls", _) => json!(["https://example.com/a.pdf"]),
        (_, ParamType::One(s)) => scalar(s),
        (_, ParamType::List(s)) => json!([scalar(s)]),
        (_, ParamType::Map) => json!({"k": "v"}),
        (_, ParamType::Any) => json!({}),
    }
}

/// Parameter sets that together use every parameter the action sends: one per member of the
/// largest exclusive rule (each set keeps the k-th member of every exclusive group), `sync`
/// false and true, the partial update's `fields` derived, and once given with all its values.
fn variants(action: &ActionSpec) -> Vec<IndexMap<String, Value>> {
    let groups: Vec<Vec<&str>> = action
        .rules
        .iter()
        .filter_map(|r| match r {
            Rule::ExactlyOne(n) | Rule::AtMostOne(n) => Some(
                n.iter()
                    .copied()
                    .filter(|n| {
                        action
                            .param(n)
                            .is_some_and(|p| p.location != Location::Runner)
                    })
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    let widest = groups.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let mut out = Vec::new();
    for k in 0..widest {
        for sync in [false, true] {
            let mut params = IndexMap::new();
            for p in action.params {
                let in_group = groups.iter().find(|g| g.contains(&p.name));
                let keep = match in_group {
                    Some(g) => g[k % g.len()] == p.name,
                    None => p.location != Location::Runner && p.name != "fields",
                };
                if !keep {
                    continue;
                }
                let v = if p.name == "sync" {
                    json!(sync)
                } else {
                    sample(p)
                };
                params.insert(p.name.to_owned(), v);
            }
            if !out.contains(&params) {
                out.push(params);
            }
        }
    }
    // A partial update with `fields` given: every value its enum has.
    if let Some(ParamType::List(Scalar::Enum(values))) = action.param("fields").map(|p| p.ty) {
        let mut params = out[0].clone();
        params.insert("fields".to_owned(), json!(values));
        out.push(params);
    }
    out
}

fn allowed(action: &str, problem: &str) -> bool {
    ALLOWED_DISAGREEMENTS
        .iter()
        .any(|(a, p, _)| *a == action && *p == problem)
}

/// Every problem of every request of `action` (as `routes` sees it), the allowed ones apart.
fn action_problems(
    specs: &HashMap<&str, Value>,
    action: &ActionSpec,
) -> (Vec<String>, BTreeSet<String>) {
    let mut failures = Vec::new();
    let mut allowed_seen = BTreeSet::new();
    let all = variants(action);
    for p in action.params {
        assert!(
            p.location == Location::Runner || all.iter().any(|v| v.contains_key(p.name)),
            "{}: no request exercises `{}`",
            action.name,
            p.name
        );
    }
    for params in all {
        let req = build(action, &params).unwrap_or_else(|e| {
            panic!(
                "{}: sample parameters refused: {}",
                action.name,
                e.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        });
        let route = match (action.sync_path, params.get("sync")) {
            (Some(sync), Some(Value::Bool(true))) => sync,
            _ => action.path,
        };
        for problem in check_request(specs, route, &req) {
            if allowed(action.name, &problem) {
                allowed_seen.insert(problem);
            } else {
                failures.push(format!(
                    "{} ({} {}): {problem}",
                    action.name, req.method, req.path
                ));
            }
        }
    }
    (failures, allowed_seen)
}

#[test]
fn every_documented_request_is_one_the_descriptions_define() {
    let specs = load_specs();
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    for base in actions() {
        let action = lookup_for(base.name, Routes::Documented).expect("catalog action");
        let (f, a) = action_problems(&specs, action);
        failures.extend(f);
        seen.extend(a.into_iter().map(|p| (action.name, p)));
    }
    assert!(
        failures.is_empty(),
        "requests of `routes: documented` that the published descriptions do not define:\n{}",
        failures.join("\n")
    );
    // Every allow-list entry is still needed (a disagreement that went away must be removed).
    for (action, problem, _) in ALLOWED_DISAGREEMENTS {
        assert!(
            seen.contains(&(*action, (*problem).to_owned())),
            "{action}: `{problem}` no longer happens; drop it from ALLOWED_DISAGREEMENTS"
        );
    }
}

#[test]
fn node_routes_agree_with_the_descriptions_except_the_ten_legacy_ones() {
    let specs = load_specs();
    let mut failures = Vec::new();
    let mut unpublished = Vec::new();
    for base in actions() {
        let action = lookup_for(base.name, Routes::Node).expect("catalog action");
        let (f, _) = action_problems(&specs, action);
        if f.iter().any(|p| p.contains("is not published")) {
            assert!(
                f.iter().all(|p| p.contains("is not published")),
                "{}: {f:?}",
                action.name
            );
            unpublished.push(action.name);
        } else {
            failures.extend(f);
        }
    }
    assert!(
        failures.is_empty(),
        "node-route requests the descriptions disagree with:\n{}",
        failures.join("\n")
    );
    let legacy: Vec<&str> = SUCCESSORS.iter().map(|s| s.action).collect();
    assert_eq!(unpublished.len(), 10, "{unpublished:?}");
    let mut a = unpublished.clone();
    let mut b = legacy.clone();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(
        a, b,
        "the unpublished node routes are the ten with a successor"
    );
    assert_eq!(actions().len() - unpublished.len(), 29);
}

#[test]
fn the_shared_actions_send_the_same_request_in_both_families() {
    for base in actions() {
        let doc = lookup_for(base.name, Routes::Documented).unwrap();
        let node = lookup_for(base.name, Routes::Node).unwrap();
        let (dm, dp) = route_of(base, Routes::Documented);
        let (nm, np) = route_of(base, Routes::Node);
        if successor(base.name).is_none() {
            assert_eq!((dm, dp), (nm, np), "{}", base.name);
            assert!(std::ptr::eq(doc, node), "{}", base.name);
        } else {
            assert_ne!(dp, np, "{}", base.name);
        }
    }
}

#[test]
fn the_upload_requests_are_published() {
    let specs = load_specs();
    let action = lookup_for("message.send_file", Routes::Documented).unwrap();
    let params: IndexMap<String, Value> = [
        ("file_base64".to_owned(), json!("aGVsbG8=")),
        ("file_name".to_owned(), json!("invoice.pdf")),
        ("file_type".to_owned(), json!("PDF")),
    ]
    .into_iter()
    .collect();
    let up = Upload::from_params(action, &params, true)
        .unwrap()
        .expect("an upload");
    for req in [up.start_request(), Upload::confirm_request(UUID_A)] {
        let problems = check_request(&specs, &req.path, &req);
        assert!(
            problems.is_empty(),
            "{} {}: {problems:?}",
            req.method,
            req.path
        );
    }
}

#[test]
fn the_checker_catches_what_it_should() {
    use wts_playbook::catalog::Method::{Get, Put};
    // The checker itself: a wrong route, an undeclared key, a bad value and a bad body fail.
    let specs = load_specs();
    let bad = |method, route: &str, query: &[(&str, &str)], body: Option<Value>| {
        let path = route.replace("{id}", UUID_A);
        let req = HttpRequest {
            method,
            path: path.clone(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body,
        };
        check_request(&specs, route, &req)
    };
    assert!(bad(Get, "/chat/v1/session", &[], None)[0].contains("is not published"));
    assert!(bad(Get, "/crm/v1/panel/card", &[], None)[0].contains("is not published"));
    assert_eq!(
        bad(Get, "/chat/v2/session", &[("Nope", "1")], None),
        ["query Nope: not declared for the operation"]
    );
    assert_eq!(
        bad(Get, "/chat/v2/session", &[("Status", "Started")], None).len(),
        1,
        "enum values are checked"
    );
    assert_eq!(
        bad(Get, "/chat/v2/session", &[("PageSize", "500")], None),
        ["query PageSize: 500 is out of range"]
    );
    assert!(!bad(
        Put,
        "/crm/v3/panel/card/{id}",
        &[],
        Some(json!({"fields": ["Title"], "archived": true}))
    )
    .is_empty());
    let not_uuid = HttpRequest {
        method: Get,
        path: "/chat/v2/session/not-a-uuid".to_owned(),
        query: Vec::new(),
        body: None,
    };
    assert_eq!(
        check_request(&specs, "/chat/v2/session/{session_id}", &not_uuid),
        ["path id: `not-a-uuid` is not a uuid"]
    );
}
