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
    let names: Vec<Value> = catalog::names().map(Value::from).collect();
    let mut conditionals = Vec::new();
    for name in catalog::names() {
        let spec = catalog::lookup(name).expect("listed names resolve");
        let mut props = Map::new();
        let mut required = Vec::new();
        for p in spec.params {
            let mut s = param_schema(p.ty);
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
        if let Some(action) = step
            .get_mut("properties")
            .and_then(|p| p.get_mut("action"))
            .and_then(Value::as_object_mut)
        {
            action.insert(
                "enum".into(),
                Value::Array(names.into_iter().chain([Value::Null]).collect()),
            );
        }
        step.insert("allOf".into(), Value::Array(conditionals));
    }
    schema
}

/// A parameter's schema. Every value may also be a template string (`{{ … }}`).
fn param_schema(ty: ParamType) -> Value {
    let template = json!({ "type": "string", "pattern": "\\{\\{|\\{%" });
    let scalar = |s: Scalar| -> Value {
        match s {
            Scalar::String => json!({ "type": "string" }),
            Scalar::Uuid => json!({ "type": "string", "format": "uuid" }),
            Scalar::Bool => json!({ "type": ["boolean", "string"] }),
            Scalar::Int => json!({ "type": ["integer", "string"] }),
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
