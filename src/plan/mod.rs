//! The plan stage: turns the validated program into planned items. The items of a step's
//! fan-out (`items`: CSV rows streamed, an earlier step's list, or one item), the template
//! context of an item, its `when:` (`when`), the rendering of a step's `with:` into the request
//! the catalog builds (`action`), placeholders for outputs a dry run does not have, and the
//! finished steps as template values (`steps.ID…`). Nothing here sends or waits: the executor
//! (`crate::execute`) sends what this plans, and the dry run shows it.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use std::collections::BTreeMap;
use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::Value as JValue;
use serde_json::Value;

use crate::catalog::{self, ActionSpec, HttpRequest};
use crate::program::{Program, StepPlan};
use crate::template::{self, has_placeholder, Tree};

mod action;
mod items;
mod when;
pub(crate) use action::{plan_action, PlannedAction};
pub(crate) use items::{items_of, Fanout};
pub(crate) use when::{check_when, describe_item, When};

/// Values shared by every item's context (built once per run).
#[derive(Clone)]
pub(crate) struct Base {
    pub vars: serde_json::Map<String, Value>,
    /// `vars` as a template value, converted once (most steps use no templated var).
    pub vars_value: JValue,
    pub env: JValue,
    pub inputs: JValue,
}

impl Base {
    pub(crate) fn new(program: &Program) -> Base {
        let inputs: BTreeMap<String, JValue> = program
            .inputs
            .iter()
            .map(|(name, info)| {
                let v = serde_json::json!({
                    "path": info.spec.path.display().to_string(),
                    "columns": info.header.columns,
                    "rows": info.rows,
                });
                (name.clone(), template::from_json(&v))
            })
            .collect();
        Base {
            vars: program.static_vars.clone(),
            vars_value: JValue::from_serialize(&program.static_vars),
            env: template::from_json(&Value::Object(program.environment.clone())),
            inputs: JValue::from(inputs),
        }
    }
}

/// One item of a fan-out (or the single item of a step without one).
#[derive(Clone, Debug)]
pub(crate) struct SourceItem {
    /// The CSV input the item's row comes from (for `--failed-csv`).
    pub input: Option<Arc<str>>,
    pub index: u64,
    pub key: String,
    /// CSV line of the row, when the item comes from an input.
    pub line: Option<u64>,
    pub item: JValue,
    pub row: JValue,
}

impl SourceItem {
    /// The one item of a step without fan-out.
    pub(crate) fn single() -> SourceItem {
        SourceItem {
            input: None,
            index: 0,
            key: "0".into(),
            line: None,
            item: JValue::UNDEFINED,
            row: JValue::UNDEFINED,
        }
    }
}

/// Builds an item's template context. `steps` is the map of step states visible to it.
pub(crate) fn context(
    program: &Program,
    base: &Base,
    step: &StepPlan,
    si: &SourceItem,
    steps: &JValue,
) -> Result<JValue, String> {
    if step.vars_used.is_empty() {
        return Ok(build(base, si, steps, base.vars_value.clone()));
    }
    // Templated vars see the item (row, item, env, steps) and the plain vars.
    let mut vars = base.vars.clone();
    let pre = build(base, si, steps, base.vars_value.clone());
    for name in &step.vars_used {
        if let Some(tree) = program.template_vars.get(name) {
            let v = tree.render(&pre).map_err(|(at, e)| {
                let at = if at.is_empty() {
                    String::new()
                } else {
                    format!(".{at}")
                };
                format!(
                    "`vars.{name}{at}` (read by this step): {}",
                    template::describe_in(&e, &tree.variables(), &pre)
                )
            })?;
            vars.insert(name.clone(), v);
        }
    }
    Ok(build(base, si, steps, JValue::from_serialize(&vars)))
}

/// The context a `for_each` expression is evaluated in: no item yet, plain vars only.
pub(crate) fn list_context(base: &Base, steps: &JValue) -> JValue {
    build(base, &SourceItem::single(), steps, base.vars_value.clone())
}

/// The root of an item's template context: a fixed set of names, looked up without building a
/// map per item (`item` and `row` are absent, not `none`, when the item has none).
#[derive(Debug)]
struct ItemContext {
    item: JValue,
    row: JValue,
    vars: JValue,
    env: JValue,
    inputs: JValue,
    steps: JValue,
}

impl ItemContext {
    /// The names present, in sorted order (as a map of them would list them).
    fn names(&self) -> Vec<JValue> {
        let mut names = vec![JValue::from("env"), JValue::from("inputs")];
        if !self.item.is_undefined() {
            names.push(JValue::from("item"));
        }
        if !self.row.is_undefined() {
            names.push(JValue::from("row"));
        }
        names.push(JValue::from("steps"));
        names.push(JValue::from("vars"));
        names
    }
}

impl Object for ItemContext {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        let v = match key.as_str()? {
            "item" => &self.item,
            "row" => &self.row,
            "vars" => &self.vars,
            "env" => &self.env,
            "inputs" => &self.inputs,
            "steps" => &self.steps,
            _ => return None,
        };
        (!v.is_undefined()).then(|| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.names())
    }
}

fn build(base: &Base, si: &SourceItem, steps: &JValue, vars: JValue) -> JValue {
    JValue::from_object(ItemContext {
        item: si.item.clone(),
        row: si.row.clone(),
        vars,
        env: base.env.clone(),
        inputs: base.inputs.clone(),
        steps: steps.clone(),
    })
}

/// Why an item could not be planned.
#[derive(Debug, Clone)]
pub(crate) struct PlanError(pub String);

/// Renders a step's parameters for one item (JSON values before conversion).
pub(crate) fn render_params(
    with: &[(String, Tree)],
    ctx: &JValue,
) -> Result<IndexMap<String, Value>, PlanError> {
    let mut out = IndexMap::with_capacity(with.len());
    for (name, tree) in with {
        let v = tree.render(ctx).map_err(|(at, e)| {
            let at = if at.is_empty() {
                name.clone()
            } else {
                format!("{name}.{at}")
            };
            PlanError(format!(
                "parameter `{at}`: {}",
                template::describe_in(&e, &tree.variables(), ctx)
            ))
        })?;
        if !v.is_null() {
            out.insert(name.clone(), v);
        }
    }
    Ok(out)
}

/// Builds the request; in a dry run, parameters holding placeholders are kept as they are (their
/// type can only be checked once the step they depend on has run).
pub(crate) fn request(
    spec: &ActionSpec,
    params: &IndexMap<String, Value>,
    dry_run: bool,
) -> Result<HttpRequest, PlanError> {
    match catalog::build(spec, params) {
        Ok(r) => Ok(r),
        Err(problems) => {
            if dry_run {
                // Retry with placeholder values swapped for a value of the right shape, then put
                // the placeholder text back where it stood.
                let mut substituted = params.clone();
                let mut swapped = Vec::new();
                for (k, v) in &mut substituted {
                    if has_placeholder(v) {
                        if let Some(p) = spec.param(k) {
                            swapped.push((k.clone(), v.clone()));
                            *v = sample_for(p);
                        }
                    }
                }
                if !swapped.is_empty() {
                    if let Ok(mut r) = catalog::build(spec, &substituted) {
                        for (k, original) in swapped {
                            let sample = sample_for(spec.param(&k).expect("swapped params exist"));
                            restore(&mut r, &sample, &original);
                        }
                        return Ok(r);
                    }
                }
            }
            Err(PlanError(
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ))
        }
    }
}

const SAMPLE_UUID: &str = "00000000-0000-4000-8000-00000000abcd";

fn sample_for(p: &catalog::ParamSpec) -> Value {
    use catalog::{ParamType, Scalar};
    let scalar = |s: Scalar| match s {
        Scalar::Uuid => Value::String(SAMPLE_UUID.into()),
        Scalar::Bool => Value::Bool(true),
        Scalar::Int => Value::from(424_242),
        Scalar::Number => Value::from(424_242.5),
        Scalar::DateTime => Value::String("2099-01-01T00:00:00Z".into()),
        Scalar::Enum(vals) => Value::String(vals.first().copied().unwrap_or("").into()),
        Scalar::String => Value::String("placeholder".into()),
    };
    match p.ty {
        ParamType::One(s) => scalar(s),
        ParamType::List(s) => Value::Array(vec![scalar(s)]),
        ParamType::Map | ParamType::Any => Value::Object(serde_json::Map::new()),
    }
}

fn restore(r: &mut HttpRequest, sample: &Value, original: &Value) {
    let sample_text = match sample {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let original_text = match original {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    r.path = r.path.replace(&sample_text, &original_text);
    for (_, v) in &mut r.query {
        if *v == sample_text {
            v.clone_from(&original_text);
        }
    }
    if let Some(body) = &mut r.body {
        replace_json(body, sample, original);
    }
}

fn replace_json(v: &mut Value, sample: &Value, original: &Value) {
    if v == sample {
        *v = original.clone();
        return;
    }
    match v {
        Value::Array(a) => a.iter_mut().for_each(|x| replace_json(x, sample, original)),
        Value::Object(m) => m
            .values_mut()
            .for_each(|x| replace_json(x, sample, original)),
        _ => {}
    }
}

/// A fan-out result as templates see it (`steps.ID.items[i]`, `item` over results).
pub(crate) fn result_value(
    si: &SourceItem,
    status: &str,
    output: &JValue,
    error: Option<&str>,
) -> JValue {
    let mut m: BTreeMap<&str, JValue> = BTreeMap::new();
    m.insert("index", JValue::from(si.index));
    m.insert("key", JValue::from(si.key.as_str()));
    if let Some(line) = si.line {
        m.insert("line", JValue::from(line));
    }
    m.insert("status", JValue::from(status));
    m.insert("output", output.clone());
    m.insert("error", error.map_or(JValue::from(()), JValue::from));
    m.insert("row", si.row.clone());
    m.insert("item", si.item.clone());
    JValue::from(m)
}

/// The state of a step as later templates see it (`steps.ID.…`).
pub(crate) fn step_value(
    output: Option<JValue>,
    results: Option<&Arc<Vec<(String, JValue)>>>,
) -> JValue {
    let mut m: BTreeMap<&str, JValue> = BTreeMap::new();
    if let Some(o) = output {
        m.insert("output", o);
    }
    if let Some(results) = results {
        let items: Vec<JValue> = results.iter().map(|(_, v)| v.clone()).collect();
        let by = |want: &[&str]| -> Vec<JValue> {
            results
                .iter()
                .filter(|(s, _)| want.contains(&s.as_str()))
                .map(|(_, v)| v.clone())
                .collect()
        };
        m.insert("succeeded", JValue::from(by(&["succeeded", "planned"])));
        m.insert("failed", JValue::from(by(&["failed", "unknown"])));
        m.insert("unchanged", JValue::from(by(&["unchanged"])));
        m.insert("items", JValue::from(items));
    }
    JValue::from(m)
}

/// Standard alphabet, padding optional.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes base64 text (standard alphabet, padding optional, whitespace ignored).
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let bytes = LENIENT
        .decode(&compact)
        .map_err(|e| format!("invalid base64: {e}"))?;
    if bytes.is_empty() {
        return Err("invalid base64: it decodes to an empty file".into());
    }
    Ok(bytes)
}

/// `steps` in templates: the finished steps, by id.
#[derive(Debug)]
pub(crate) struct StepsView(pub(crate) Arc<BTreeMap<String, JValue>>);

impl minijinja::value::Object for StepsView {
    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        self.0.get(key.as_str()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(
            self.0.keys().map(|k| JValue::from(k.as_str())).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Base {
        let mut vars = serde_json::Map::new();
        vars.insert("greeting".into(), Value::from("hi"));
        Base {
            vars_value: JValue::from_serialize(&vars),
            vars,
            env: JValue::from_serialize(serde_json::json!({"region": "br"})),
            inputs: JValue::from_serialize(serde_json::json!({"x": {"rows": 2}})),
        }
    }

    fn item(row: JValue) -> SourceItem {
        SourceItem {
            input: None,
            index: 0,
            key: "k".into(),
            line: Some(2),
            item: row.clone(),
            row,
        }
    }

    #[test]
    fn item_context_resolves_each_root_name() {
        let row = JValue::from_serialize(serde_json::json!({"session_id": "s-1"}));
        let steps = JValue::from_serialize(serde_json::json!({"prev": {"output": 7}}));
        let ctx = build(&base(), &item(row), &steps, base().vars_value.clone());
        let env = minijinja::Environment::new();
        let out = env
            .render_str(
                "{{ row.session_id }} {{ item.session_id }} {{ vars.greeting }} {{ env.region }} \
                 {{ inputs.x.rows }} {{ steps.prev.output }} {{ nothing is defined }}",
                &ctx,
            )
            .unwrap();
        assert_eq!(out, "s-1 s-1 hi br 2 7 False");
    }

    #[test]
    fn item_context_without_an_item_leaves_item_and_row_undefined() {
        let ctx = list_context(&base(), &JValue::from(()));
        let env = minijinja::Environment::new();
        let out = env
            .render_str(
                "{{ item is defined }} {{ row is defined }} {{ vars.greeting }}",
                &ctx,
            )
            .unwrap();
        assert_eq!(out, "False False hi");
        let names: Vec<String> = ctx.try_iter().unwrap().map(|k| k.to_string()).collect();
        assert_eq!(names, ["env", "inputs", "steps", "vars"]);
    }
}
