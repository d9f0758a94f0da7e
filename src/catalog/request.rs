//! From parameter values to an HTTP request.
//!
//! In: an [`ActionSpec`] and the step's parameter values (already rendered from templates, so
//! strings, numbers, bools, lists, maps). Out: an [`HttpRequest`] (method, encoded path, query
//! pairs, JSON body) or every [`ParamProblem`] found, never just the first.
//!
//! Stages, in order: [`check_names`] (unknown, missing, cross-parameter rules decided by
//! presence), [`convert`](super::convert::convert) (typed conversion of each value, in `convert.rs`; the README's "How a run behaves"), value checks from the
//! reference's tables (ranges, lengths, forms), then placement (path, query, body pointers,
//! derived values).
//!
//! Decisions worth knowing:
//! * A value that is `null` or a blank string counts as **absent**, for every parameter: it is
//!   not sent, and a required parameter given that way is reported missing. Never is `null` or
//!   `""` sent (api-notes, "Parameters": omission); `null` *inside* a map is passed through.
//! * An empty list is present (`tag_ids: []` with `fields: [Tags]` is a meaningful update), but
//!   the "at least one of these lists" rules want a non-empty list.
//! * UUIDs: surrounding whitespace is trimmed, any case is accepted, only the hyphenated
//!   8-4-4-4-12 form is accepted (a truncated id is caught rather than sent), and the value is
//!   sent lower-case.
//! * Datetimes must carry an offset (`Z` or `±hh:mm`) and are sent normalised to UTC `Z`.
//! * Runner parameters (`file_base64`, `file_name`, `file_mime_type`, `file_type`) are validated
//!   like the others but never placed in the request: the executor uploads the file (api-notes "Files") and
//!   puts the resulting id at [`file_id_pointer`] (a dry run puts a `<upload of NAME>`
//!   placeholder there; see `execute::upload`).
//! * POST/PUT/PATCH actions that take a body always send one (`{}` when no body value is
//!   given); GET/DELETE send a body only when a value is placed in it.

use std::fmt;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::convert::{convert_detailed, shown, to_bool, Failure};
use super::model::{
    ActionSpec, HttpRequest, Location, Method, ParamSpec, ParamType, Required, Rule, Scalar,
    PATH_SEGMENT,
};
use crate::diagnostic::did_you_mean;

/// One problem with a step's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamProblem {
    /// The parameter concerned; `None` for a rule over several parameters.
    pub param: Option<String>,
    pub message: String,
    /// "did you mean …", the accepted values, and the like.
    pub hint: Option<String>,
}

impl ParamProblem {
    fn new(param: Option<&str>, message: impl Into<String>, hint: Option<String>) -> Self {
        ParamProblem {
            param: param.map(str::to_owned),
            message: message.into(),
            hint,
        }
    }
}

impl fmt::Display for ParamProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.param {
            write!(f, "parameter `{p}`: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

fn is_absent(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Static check before any rendering, from parameter names alone: unknown names (with a "did
/// you mean"), missing required parameters, presence rules (exactly/at least/at most one of,
/// requires), and a partial update with neither `fields` nor any value parameter.
pub fn check_names(action: &ActionSpec, supplied: &[&str]) -> Vec<ParamProblem> {
    check(action, supplied, supplied)
}

/// `all`: every name given (for the unknown-name check); `present`: the names with a value.
fn check(action: &ActionSpec, all: &[&str], present: &[&str]) -> Vec<ParamProblem> {
    let mut problems = Vec::new();
    let has = |n: &str| present.contains(&n);
    for name in all {
        if action.param(name).is_none() {
            let hint = did_you_mean(name, action.params.iter().map(|p| p.name)).or_else(|| {
                Some(format!(
                    "`{}` takes: {}",
                    action.name,
                    action
                        .params
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            });
            problems.push(ParamProblem::new(
                Some(name),
                format!("unknown parameter for `{}`", action.name),
                hint,
            ));
        }
    }
    for p in action.params {
        if p.required == Required::Yes && !has(p.name) {
            let given_blank = all.contains(&p.name);
            let message = if given_blank {
                "required parameter is empty (null or blank)"
            } else {
                "missing required parameter"
            };
            problems.push(ParamProblem::new(
                Some(p.name),
                message,
                Some(format!("{}: {}", render_type(p.ty), p.doc)),
            ));
        }
    }
    for rule in action.rules {
        check_rule(*rule, &has, &mut problems);
    }
    if action.fields_pointer.is_some()
        && !has("fields")
        && !action
            .params
            .iter()
            .any(|p| p.field.is_some() && has(p.name))
    {
        let values: Vec<&str> = action
            .params
            .iter()
            .filter(|p| p.field.is_some())
            .map(|p| p.name)
            .collect();
        problems.push(ParamProblem::new(
            None,
            "nothing to update: give `fields` or at least one value parameter",
            Some(format!("value parameters: {}", values.join(", "))),
        ));
    }
    problems
}

/// One presence rule (exactly/at least/at most one of, requires) over the names given a value.
fn check_rule(rule: Rule, has: &impl Fn(&str) -> bool, problems: &mut Vec<ParamProblem>) {
    match rule {
        Rule::ExactlyOne(names) => {
            let given: Vec<&str> = names.iter().copied().filter(|n| has(n)).collect();
            if given.is_empty() {
                problems.push(ParamProblem::new(
                    None,
                    format!("one of {} is required", backticked(names)),
                    None,
                ));
            } else if given.len() > 1 {
                problems.push(ParamProblem::new(
                    None,
                    format!(
                        "exactly one of {} may be given, got {}",
                        backticked(names),
                        backticked(&given)
                    ),
                    None,
                ));
            }
        }
        Rule::AtLeastOne(names) => {
            if !names.iter().any(|n| has(n)) {
                problems.push(ParamProblem::new(
                    None,
                    format!("at least one of {} is required", backticked(names)),
                    None,
                ));
            }
        }
        Rule::AtMostOne(names) => {
            let given: Vec<&str> = names.iter().copied().filter(|n| has(n)).collect();
            if given.len() > 1 {
                problems.push(ParamProblem::new(
                    None,
                    format!(
                        "at most one of {} may be given, got {}",
                        backticked(names),
                        backticked(&given)
                    ),
                    None,
                ));
            }
        }
        Rule::Requires(a, b) => {
            if has(a) && !has(b) {
                problems.push(ParamProblem::new(
                    Some(b),
                    format!("`{b}` is required when `{a}` is given"),
                    None,
                ));
            }
        }
    }
}

/// Whether the request goes to the action's synchronous route (`sync: true`), which the server
/// holds open until the provider answers (api-notes "Sends").
/// `sync` is the parameter's value, converted or not (`true`, `"yes"`, `1`).
pub fn sends_sync(action: &ActionSpec, sync: Option<&Value>) -> bool {
    action.sync_path.is_some()
        && sync
            .and_then(|v| to_bool(v).ok())
            .is_some_and(|v| v == Value::Bool(true))
}

/// Builds the request for `action` from `params`: checks, converts, places. Returns every
/// problem found.
pub fn build(
    action: &ActionSpec,
    params: &IndexMap<String, Value>,
) -> Result<HttpRequest, Vec<ParamProblem>> {
    let all: Vec<&str> = params.keys().map(String::as_str).collect();
    let present: Vec<&str> = params
        .iter()
        .filter(|(_, v)| !is_absent(v))
        .map(|(k, _)| k.as_str())
        .collect();
    let mut problems = check(action, &all, &present);

    let values = converted(action, params, &mut problems);
    for rule in action.rules {
        if let Rule::AtLeastOne(names) = rule {
            let given: Vec<&Value> = names.iter().filter_map(|n| values.get(n)).collect();
            if !given.is_empty()
                && given
                    .iter()
                    .all(|v| v.as_array().is_some_and(Vec::is_empty))
            {
                problems.push(ParamProblem::new(
                    None,
                    format!("at least one of {} must be non-empty", backticked(names)),
                    None,
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if action.name == "http" {
        return Ok(build_http(&values));
    }

    let mut path = match action.sync_path {
        Some(sp) if sends_sync(action, values.get("sync")) => sp.to_owned(),
        _ => action.path.to_owned(),
    };
    let mut query = Vec::new();
    let mut body = Map::new();
    for spec in action.params {
        let value = match values.get(spec.name) {
            Some(v) => v.clone(),
            None => match derived_value(action, spec, &values) {
                Some(v) => v,
                None => continue,
            },
        };
        match spec.location {
            Location::Path => {
                let text = scalar_text(&value);
                let encoded: String =
                    percent_encoding::utf8_percent_encode(&text, PATH_SEGMENT).collect();
                path = path.replace(&format!("{{{}}}", spec.name), &encoded);
            }
            Location::Query(key) => push_query(&mut query, key, &value),
            Location::Body(pointer) => set_pointer(&mut body, pointer, value),
            Location::Route | Location::Runner => {}
        }
    }
    let takes_body = action
        .params
        .iter()
        .any(|p| matches!(p.location, Location::Body(_)));
    let body = if !body.is_empty()
        || (takes_body && matches!(action.method, Method::Post | Method::Put | Method::Patch))
    {
        Some(Value::Object(body))
    } else {
        None
    };
    Ok(HttpRequest {
        method: action.method,
        path,
        query,
        body,
    })
}

/// The converted values, keyed by parameter name, in parameter order; each value that does
/// not convert or fails its checks is a problem.
fn converted(
    action: &ActionSpec,
    params: &IndexMap<String, Value>,
    problems: &mut Vec<ParamProblem>,
) -> IndexMap<&'static str, Value> {
    let mut values: IndexMap<&'static str, Value> = IndexMap::new();
    for spec in action.params {
        let Some(raw) = params.get(spec.name) else {
            continue;
        };
        if is_absent(raw) {
            continue;
        }
        match convert_detailed(spec, raw) {
            Ok(Value::Null) => {}
            Ok(v) => {
                if matches!(spec.location, Location::Path) && is_dot_segment(&scalar_text(&v)) {
                    problems.push(ParamProblem::new(
                        Some(spec.name),
                        format!(
                            "{} cannot be a path segment: `.` and `..` would change the route \
                             (e.g. to the list of all objects) once the URL is normalised",
                            shown(&v)
                        ),
                        None,
                    ));
                } else if let Err((m, h)) = check_value(action, spec, &v) {
                    problems.push(ParamProblem::new(Some(spec.name), m, h));
                }
                values.insert(spec.name, v);
            }
            Err((m, h)) => problems.push(ParamProblem::new(Some(spec.name), m, h)),
        }
    }
    values
}

/// Values the runner supplies when the parameter is omitted: the `fields` of a partial update
/// (api-notes "Partial updates") and the `type` of `session.transfer`.
fn derived_value(
    action: &ActionSpec,
    spec: &ParamSpec,
    values: &IndexMap<&'static str, Value>,
) -> Option<Value> {
    if spec.name == "fields" && action.fields_pointer.is_some() {
        let mut fields: Vec<&str> = Vec::new();
        for p in action.params {
            if let Some(f) = p.field {
                if values.contains_key(p.name) && !fields.contains(&f) {
                    fields.push(f);
                }
            }
        }
        return Some(Value::from(fields));
    }
    if action.name == "session.transfer" && spec.name == "type" {
        let t = if values.contains_key("new_user_id") {
            "USER"
        } else {
            "DEPARTMENT"
        };
        return Some(Value::from(t));
    }
    None
}

/// Value-level checks from the reference's tables, after conversion.
fn check_value(action: &ActionSpec, spec: &ParamSpec, v: &Value) -> Result<(), Failure> {
    let chars = v.as_str().map(|s| s.chars().count());
    let panel = action.name.starts_with("panel.");
    match spec.name {
        "page_size" => match v.as_i64() {
            Some(1..=100) => Ok(()),
            _ => Err((
                format!("page_size must be between 1 and 100, got {v}"),
                Some("the API's page size range is 1–100".into()),
            )),
        },
        "page_number" => match v.as_i64() {
            Some(n) if n >= 1 => Ok(()),
            _ => Err((
                format!("page_number must be 1 or more, got {v}"),
                Some("the first page is 1".into()),
            )),
        },
        "email" if action.name.starts_with("contact.") => {
            let s = v.as_str().unwrap_or_default().trim();
            if is_email(s) {
                Ok(())
            } else {
                Err((
                    format!("{} is not an e-mail address", shown(v)),
                    Some("expected name@domain.tld".into()),
                ))
            }
        }
        "text" | "description" if panel && chars.unwrap_or(0) > 8000 => Err((
            format!("too long: {} characters, at most 8000", chars.unwrap_or(0)),
            None,
        )),
        "title" if panel && chars.unwrap_or(0) > 500 => Err((
            format!("too long: {} characters, at most 500", chars.unwrap_or(0)),
            None,
        )),
        "position" if v.as_f64().is_some_and(|x| x < 0.0) => {
            Err((format!("position must be 0 or more, got {v}"), None))
        }
        "file_urls" => {
            let n = v.as_array().map_or(0, Vec::len);
            if (1..=3).contains(&n) {
                Ok(())
            } else {
                Err((
                    format!("give 1 to 3 file URLs, got {n}"),
                    Some("a card note takes at most 3 public URLs".into()),
                ))
            }
        }
        "path" if action.name == "http" => {
            let s = v.as_str().unwrap_or_default();
            if !["/core/", "/chat/", "/crm/"]
                .iter()
                .any(|p| s.starts_with(p))
            {
                Err((
                    format!("path {} must start with /core/, /chat/ or /crm/", shown(v)),
                    Some("paths include the service prefix, e.g. /chat/v1/channel".into()),
                ))
            } else if s.contains('?') || s.contains('#') {
                Err((
                    format!("path {} must not contain a query string", shown(v)),
                    Some("give query parameters in `query`".into()),
                ))
            } else if s.split('/').any(is_dot_segment) {
                Err((
                    format!(
                        "path {} has a `.` or `..` segment: the route would change once the URL \
                         is normalised",
                        shown(v)
                    ),
                    Some("give the route itself, without dot segments".into()),
                ))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// `.` or `..`, also percent-encoded (`%2e`, `.%2E`): a URL parser removes such a segment and
/// the one before it, so the request would reach another route.
fn is_dot_segment(segment: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(segment.trim()).decode_utf8_lossy();
    matches!(decoded.as_ref(), "." | "..")
}

/// A plain e-mail form check: one `@`, a non-empty local part, a dotted domain, no spaces.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !s.chars().any(char::is_whitespace)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|part| !part.is_empty())
}

/// The text of a scalar for a path or query: strings verbatim, others as JSON.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Appends `key=value` pairs: lists as repeated keys, bools `true`/`false`, maps as compact
/// JSON, nulls skipped.
fn push_query(query: &mut Vec<(String, String)>, key: &str, v: &Value) {
    match v {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                push_query(query, key, item);
            }
        }
        other => query.push((key.to_owned(), scalar_text(other))),
    }
}

/// Sets `value` at the JSON pointer `pointer` in `root`, creating intermediate objects.
fn set_pointer(root: &mut Map<String, Value>, pointer: &str, value: Value) {
    let parts: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, parents)) = parts.split_last() else {
        return;
    };
    let mut cur = root;
    for part in parents {
        let entry = cur
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        cur = match entry {
            Value::Object(m) => m,
            _ => unreachable!("made an object just above"),
        };
    }
    cur.insert(last.clone(), value);
}

/// The raw `http` action: method, path, query map (values stringified, lists repeated), body.
fn build_http(values: &IndexMap<&'static str, Value>) -> HttpRequest {
    let method = values
        .get("method")
        .and_then(Value::as_str)
        .and_then(Method::parse)
        .unwrap_or(Method::Get);
    let path = values
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut query = Vec::new();
    if let Some(Value::Object(map)) = values.get("query") {
        for (k, v) in map {
            push_query(&mut query, k, v);
        }
    }
    HttpRequest {
        method,
        path,
        query,
        body: values.get("body").cloned(),
    }
}

/// Whether the runner may re-issue this request after an ambiguous failure: the action's flag,
/// `contact.create` with `upsert` or `get_if_exists` true, and `http` by its method.
pub fn is_idempotent(action: &ActionSpec, params: &IndexMap<String, Value>) -> bool {
    let flag = |name: &str| {
        params
            .get(name)
            .is_some_and(|v| to_bool(v).is_ok_and(|b| b == Value::Bool(true)))
    };
    match action.name {
        "http" => params
            .get("method")
            .and_then(Value::as_str)
            .and_then(|m| Method::parse(m.trim()))
            .is_some_and(Method::is_idempotent),
        "contact.create" => flag("upsert") || flag("get_if_exists"),
        _ => action.idempotent,
    }
}

/// Where the executor puts the `fileId` it gets from uploading `file_base64` (api-notes "Files"): the body
/// pointer of the action's `file_id` parameter, if the action takes a file.
pub fn file_id_pointer(action: &ActionSpec) -> Option<&'static str> {
    match action.param("file_id")?.location {
        Location::Body(p) => Some(p),
        _ => None,
    }
}

/// A parameter type as shown to users: `uuid`, `enum[] Tags|CustomFields`, `map`.
pub(crate) fn render_type(ty: ParamType) -> String {
    fn scalar(s: Scalar, list: bool) -> String {
        let brackets = if list { "[]" } else { "" };
        match s {
            Scalar::String => format!("string{brackets}"),
            Scalar::Uuid => format!("uuid{brackets}"),
            Scalar::Bool => format!("bool{brackets}"),
            Scalar::Int => format!("int{brackets}"),
            Scalar::Number => format!("number{brackets}"),
            Scalar::DateTime => format!("datetime{brackets}"),
            Scalar::Enum(values) => format!("enum{brackets} {}", values.join("|")),
        }
    }
    match ty {
        ParamType::One(s) => scalar(s, false),
        ParamType::List(s) => scalar(s, true),
        ParamType::Map => "map".into(),
        ParamType::Any => "any".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_send_is_known_by_its_parameter_not_its_path() {
        let send = crate::catalog::lookup("session.send_text").unwrap();
        let complete = crate::catalog::lookup("session.complete").unwrap();
        for yes in [
            Value::Bool(true),
            Value::from("yes"),
            Value::from("true"),
            Value::from(1),
        ] {
            assert!(sends_sync(send, Some(&yes)), "{yes}");
            // An action without a synchronous route never sends synchronously.
            assert!(!sends_sync(complete, Some(&yes)), "{yes}");
        }
        for no in [Value::Bool(false), Value::from("no"), Value::Null] {
            assert!(!sends_sync(send, Some(&no)), "{no}");
        }
        assert!(!sends_sync(send, None));
        let mut p = IndexMap::new();
        p.insert(
            "session_id".to_owned(),
            Value::from("5e2b3a4c-0000-4000-8000-000000000001"),
        );
        p.insert("text".to_owned(), Value::from("hi"));
        p.insert("sync".to_owned(), Value::from("yes"));
        let req = build(send, &p).unwrap();
        assert_eq!(
            Some(req.path.as_str()),
            send.sync_path
                .map(|sp| sp.replace("{session_id}", "5e2b3a4c-0000-4000-8000-000000000001"))
                .as_deref()
        );
    }

    #[test]
    fn dot_segments_never_reach_a_path() {
        let spec = crate::catalog::lookup("contact.get_by_phone").unwrap();
        for bad in ["..", ".", " .. ", "%2e%2E", ".%2e"] {
            let mut p = IndexMap::new();
            p.insert("phone_number".to_owned(), Value::from(bad));
            let e = build(spec, &p).expect_err(bad);
            assert!(
                e[0].to_string().contains("would change the route"),
                "{bad}: {e:?}"
            );
        }
        let mut p = IndexMap::new();
        p.insert("phone_number".to_owned(), Value::from("+55..11"));
        assert!(build(spec, &p).is_ok(), "dots inside a value are fine");
        let http = crate::catalog::lookup("http").unwrap();
        for bad in [
            "/core/v1/contact/../tag",
            "/core/v1/./x",
            "/core/v1/%2E%2e/x",
        ] {
            let mut p = IndexMap::new();
            p.insert("method".to_owned(), Value::from("GET"));
            p.insert("path".to_owned(), Value::from(bad));
            let e = build(http, &p).expect_err(bad);
            assert!(e[0].to_string().contains("segment"), "{bad}: {e:?}");
        }
    }
    use crate::catalog::lookup;
    use serde_json::json;

    fn param(action: &str, name: &str) -> &'static ParamSpec {
        lookup(action).unwrap().param(name).unwrap()
    }

    #[test]
    fn set_pointer_creates_objects() {
        let mut m = Map::new();
        set_pointer(&mut m, "/options/a", json!(1));
        set_pointer(&mut m, "/options/b", json!(2));
        set_pointer(&mut m, "/x", json!(false));
        assert_eq!(
            Value::Object(m),
            json!({"options": {"a": 1, "b": 2}, "x": false})
        );
    }

    #[test]
    fn email_form() {
        assert!(is_email("a@b.co"));
        assert!(!is_email("a@b"));
        assert!(!is_email("a b@c.de"));
        assert!(!is_email("@c.de"));
    }

    #[test]
    fn render_types() {
        assert_eq!(
            render_type(param("contact.get", "include_details").ty),
            "enum[] Tags|CustomFields|Portfolios"
        );
        assert_eq!(render_type(param("contact.get", "contact_id").ty), "uuid");
    }
}
