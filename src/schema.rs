//! JSON Schemas generated from the Rust types: the playbook's (with each action's parameters, so
//! an editor running yaml-language-server completes `with:` keys) and the report's. Checked in
//! under `schemas/`; a test fails when the checked-in copies drift.

use serde_json::{json, Map, Value};

use crate::catalog::{self, ParamType, Required, Scalar};
use crate::playbook::Playbook;

/// The playbook schema: the serde model's schema, with `action` limited to the catalog and
/// `with` described per action.
pub fn playbook_schema() -> Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(Playbook)).expect("schema serializes");
    let mut conditionals = Vec::new();
    for name in catalog::names() {
        let spec = catalog::lookup(name).expect("listed names resolve");
        let mut props = Map::new();
        let mut required = Vec::new();
        for p in spec.params {
            let mut s = param_schema(p.ty, int_range(p.name));
            let mut desc = p.doc.to_owned();
            if let Some(d) = p.default {
                desc.push_str(&format!(" (default: {d})"));
            }
            if let Value::Object(m) = &mut s {
                m.insert("description".into(), Value::from(desc));
            }
            props.insert(p.name.to_owned(), s);
            if p.required == Required::Yes {
                required.push(Value::from(p.name));
            }
        }
        conditionals.push(json!({
            "if": { "properties": { "action": { "const": name } }, "required": ["action"] },
            "then": { "properties": { "with": {
                "type": "object",
                "title": format!("{name} parameters"),
                "description": spec.summary,
                "properties": props,
                "required": required,
                "additionalProperties": false
            } } }
        }));
    }
    if let Some(step) = schema
        .pointer_mut("/$defs/Step")
        .and_then(Value::as_object_mut)
    {
        if let Some(props) = step.get_mut("properties").and_then(Value::as_object_mut) {
            // One choice per action, each with its own summary (no `null`: the key is optional).
            let choices: Vec<Value> = catalog::names()
                .map(|n| {
                    let spec = catalog::lookup(n).expect("listed names resolve");
                    json!({ "const": n, "description": spec.summary })
                })
                .collect();
            props.insert(
                "action".into(),
                json!({
                    "description": "A catalog action (`wts-playbook actions`) or `http`. Absent on a pipeline step (`steps`).",
                    "oneOf": choices
                }),
            );
            props.insert(
                "id".into(),
                json!({
                    "description": "Unique id, `[a-z][a-z0-9_]*`.",
                    "type": "string",
                    "pattern": STEP_ID
                }),
            );
            props.insert(
                "with".into(),
                json!({
                    "title": "parameters",
                    "description": "The action's parameters; strings are templates.",
                    "type": "object"
                }),
            );
            props.insert("paginate".into(), paginate_schema());
            props.insert("concurrency".into(), concurrency_schema());
        }
        step.insert("allOf".into(), Value::Array(conditionals));
    }
    if let Some(props) = schema
        .pointer_mut("/$defs/Settings/properties")
        .and_then(Value::as_object_mut)
    {
        props.insert("concurrency".into(), concurrency_schema());
    }
    if let Some(d) = schema.pointer_mut("/$defs/StepDef") {
        // A group has `parallel:`, a step does not: say which one applies, so that a wrong
        // value is reported at itself rather than as "matches neither".
        *d = json!({
            "description": "A top-level entry of `steps`: one step, or a group of steps that run at the same time (`parallel:`).",
            "if": { "type": "object", "required": ["parallel"] },
            "then": { "$ref": "#/$defs/ParallelDef" },
            "else": { "$ref": "#/$defs/Step" }
        });
    }
    if let Some(m) = schema.pointer_mut("/$defs/MaxFailures") {
        *m = json!({
            "description": "A failure budget: a count (`10`) or a percentage of the step's items (`\"5%\"`).",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": BUDGET }
            ]
        });
    }
    schema
}

/// A step id.
const STEP_ID: &str = "^[a-z][a-z0-9_]*$";
/// A failure budget given as text: a count or a percentage.
const BUDGET: &str = "^\\s*([0-9]+|[0-9]+(\\.[0-9]+)?\\s*%)\\s*$";
/// A UUID (the form the API accepts), so that an editor flags `not-a-uuid`.
const UUID: &str = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

fn paginate_schema() -> Value {
    json!({
        "description": "On a list action: follow `hasMorePages`: `all`, or at most this many pages.",
        "anyOf": [
            { "const": "all", "description": "every page" },
            { "type": "integer", "minimum": 1, "description": "at most this many pages" }
        ]
    })
}

fn concurrency_schema() -> Value {
    let (min, max) = crate::settings::ranges::CONCURRENCY;
    json!({
        "description": format!("Requests in flight at most, {min}–{max}."),
        "type": "integer",
        "minimum": min,
        "maximum": max
    })
}

/// The range of an integer parameter the API bounds (wts-api.md §1: list pages).
fn int_range(name: &str) -> Option<(u64, Option<u64>)> {
    match name {
        "page_size" => Some((1, Some(100))),
        "page_number" => Some((1, None)),
        _ => None,
    }
}

/// A parameter's schema. Every value may also be a template string (`{{ … }}`).
fn param_schema(ty: ParamType, range: Option<(u64, Option<u64>)>) -> Value {
    let template = json!({ "type": "string", "pattern": "\\{\\{|\\{%" });
    let scalar = |s: Scalar| -> Value {
        match s {
            Scalar::String => json!({ "type": "string" }),
            Scalar::Uuid => json!({ "type": "string", "format": "uuid", "pattern": UUID }),
            Scalar::Bool => json!({ "type": ["boolean", "string"] }),
            Scalar::Int => match range {
                Some((min, max)) => {
                    let mut v = json!({ "type": "integer", "minimum": min });
                    if let Some(max) = max {
                        v["maximum"] = json!(max);
                    }
                    v
                }
                None => json!({ "type": ["integer", "string"] }),
            },
            Scalar::Number => json!({ "type": ["number", "string"] }),
            Scalar::DateTime => json!({ "type": "string", "format": "date-time" }),
            Scalar::Enum(values) => json!({ "enum": values }),
        }
    };
    let base = match ty {
        ParamType::One(s) => scalar(s),
        ParamType::List(s) => json!({ "type": ["array", "string"], "items": scalar(s) }),
        ParamType::Map => json!({ "type": ["object", "string"] }),
        ParamType::Any => json!({}),
    };
    if matches!(ty, ParamType::Any) {
        return base;
    }
    json!({ "anyOf": [base, template] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playbook_schema_knows_action_parameters() {
        let s = playbook_schema();
        let all_of = s
            .pointer("/$defs/Step/allOf")
            .and_then(Value::as_array)
            .expect("conditionals");
        assert_eq!(all_of.len(), 40, "39 actions + http");
        let complete = all_of
            .iter()
            .find(|c| {
                c.pointer("/if/properties/action/const") == Some(&Value::from("session.complete"))
            })
            .expect("session.complete");
        let with = complete.pointer("/then/properties/with").expect("with");
        assert!(with
            .pointer("/properties/reactivate_on_new_message")
            .is_some());
        assert_eq!(
            with.pointer("/required/0"),
            Some(&Value::from("session_id"))
        );
    }
}
