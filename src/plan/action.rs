//! One action item planned: its `with:` rendered in the item's context, what of it read a
//! secret (redacted as a whole wherever it appears), the paging parameters a paginated read
//! starts from, and the request the catalog builds. Nothing here sends; the executor sends
//! what this returns, and a dry run shows it.

use indexmap::IndexMap;
use minijinja::Value as JValue;
use serde_json::Value;

use super::{describe_item, render_params, request, SourceItem};
use crate::catalog::{self, ActionSpec, HttpRequest};
use crate::program::{SecretMask, StepPlan};
use crate::template::Tree;

/// An action item ready to send.
pub(crate) struct PlannedAction {
    /// The rendered parameters (a paginated read's paging ones included).
    pub(crate) params: IndexMap<String, Value>,
    pub(crate) request: HttpRequest,
    /// Whether sending it twice does no harm (the catalog's class, given these parameters).
    pub(crate) idempotent: bool,
    /// It goes to the action's synchronous route, held open until the provider answers.
    pub(crate) sync: bool,
    /// Rendered values that read a secret (`step.secret_params`): redacted as a whole.
    pub(crate) secret_values: Vec<String>,
}

/// Why an item cannot be planned, and the secret values its message must not show.
pub(crate) struct Unplanned {
    pub(crate) error: String,
    pub(crate) secret_values: Vec<String>,
}

/// Plans one action item of `step` in its template context `ctx`. `dry`: values that are
/// placeholders for outputs a dry run does not have are allowed where the catalog checks types.
pub(crate) fn plan_action(
    step: &StepPlan,
    spec: &'static ActionSpec,
    with: &[(String, Tree)],
    si: &SourceItem,
    ctx: &JValue,
    dry: bool,
) -> Result<PlannedAction, Unplanned> {
    let mut params = render_params(with, ctx).map_err(|e| Unplanned {
        error: describe_item(si, &e.0),
        secret_values: Vec::new(),
    })?;
    // What a secret became through a filter (`| upper`, `[:9]`, `| tojson`) no longer matches
    // the secret: the whole rendered value is redacted instead.
    let mut secret_values = Vec::new();
    for (name, mask) in &step.secret_params {
        if let Some(v) = params.get(name) {
            masked_secret_forms(v, mask, &mut secret_values);
        }
    }
    let idempotent = catalog::is_idempotent(spec, &params);
    let sync = catalog::sends_sync(spec, params.get("sync"));
    if step.paginate.is_some() {
        params
            .entry("page_number".to_owned())
            .or_insert(Value::from(1));
        params
            .entry("page_size".to_owned())
            .or_insert(Value::from(100));
    }
    match request(spec, &params, dry) {
        Ok(request) => Ok(PlannedAction {
            params,
            request,
            idempotent,
            sync,
            secret_values,
        }),
        Err(e) => Err(Unplanned {
            error: describe_item(si, &e.0),
            secret_values,
        }),
    }
}

/// The texts to redact of a parameter's rendered value: the parts whose templates read a
/// secret (`mask`), each as a whole, and the JSON text of the structures holding them. Parts
/// that read no secret (a session id beside an API key in a body) are not secrets.
fn masked_secret_forms(v: &Value, mask: &SecretMask, out: &mut Vec<String>) {
    match (mask, v) {
        (SecretMask::Nothing, _) => {}
        (SecretMask::Map(parts), Value::Object(map)) => {
            for (k, m) in parts {
                if let Some(sub) = map.get(k) {
                    masked_secret_forms(sub, m, out);
                }
            }
            out.push(v.to_string());
        }
        (SecretMask::List(parts), Value::Array(items)) => {
            for (sub, m) in items.iter().zip(parts) {
                masked_secret_forms(sub, m, out);
            }
            out.push(v.to_string());
        }
        // All of it, or a shape that is not the template's (a structure from one expression).
        _ => secret_forms(v, out),
    }
}

/// The texts of a rendered value to redact: each string in it, and its JSON text.
fn secret_forms(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => {
            for i in items {
                secret_forms(i, out);
            }
            out.push(v.to_string());
        }
        Value::Object(map) => {
            for i in map.values() {
                secret_forms(i, out);
            }
            out.push(v.to_string());
        }
        Value::Number(_) | Value::Bool(_) => out.push(v.to_string()),
        Value::Null => {}
    }
}
