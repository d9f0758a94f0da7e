//! Validation of what the steps read besides the playbook's steps: the CSV inputs (a full
//! streaming pass over each), the vars (plain values and templates rendered per item) and the
//! secrets, with the template vars that read a secret. Part of [`super`] (validation).

use std::collections::{BTreeSet, HashSet};

use indexmap::IndexMap;
use serde_json::Value;

use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::inputs::{self, InputSpec};
use crate::playbook::Loaded;
use crate::program::{InputInfo, SecretMask};
use crate::settings::Overrides;
use crate::template::{Env, Tree};

/// The playbook's inputs (with `--input` paths), each checked with a full pass over its CSV.
pub(super) fn check_inputs(
    loaded: &Loaded,
    overrides: &Overrides,
    diags: &mut Vec<Diagnostic>,
) -> IndexMap<String, InputInfo> {
    let pb = &loaded.playbook;
    let base = loaded.base_dir();
    let mut inputs = IndexMap::new();
    for (name, _) in &overrides.inputs {
        if !pb.inputs.contains_key(name) {
            let mut d = Diagnostic::file(
                &loaded.path,
                format!("--input {name}=…: the playbook has no input `{name}`"),
            );
            if let Some(h) = did_you_mean(name, pb.inputs.keys().map(String::as_str)) {
                d = d.with_hint(h);
            }
            diags.push(d);
        }
    }
    for (name, def) in &pb.inputs {
        let path = overrides
            .inputs
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| base.join(&def.csv), |(_, p)| p.clone());
        let delimiter = match def.delimiter.as_deref() {
            None => b',',
            Some(d) if d.len() == 1 => d.as_bytes()[0],
            Some("\\t" | "tab") => b'\t',
            Some(d) => {
                diags.push(loaded.at_value(
                    &format!("inputs.{name}.delimiter"),
                    format!("delimiter must be a single character, got {d:?}"),
                ));
                b','
            }
        };
        let spec = InputSpec {
            name: name.clone(),
            path,
            key: def.key.clone(),
            delimiter,
        };
        match inputs::read_header(&spec) {
            Ok(header) => {
                // A fast count first sizes the duplicate-key table of the checking pass.
                let rows = count_rows(&spec);
                let problems = inputs::check_expecting(&spec, 20, rows);
                if problems.is_empty() {
                    inputs.insert(name.clone(), InputInfo { spec, header, rows });
                } else {
                    diags.extend(problems);
                }
            }
            Err(d) => diags.push(d),
        }
    }
    inputs
}

/// The vars (`--var` over the playbook's), as a whole, as the plain ones and as the templated
/// ones (rendered per item).
pub(super) fn split_vars(
    loaded: &Loaded,
    env: Env,
    overrides: &Overrides,
    diags: &mut Vec<Diagnostic>,
) -> (
    IndexMap<String, Value>,
    serde_json::Map<String, Value>,
    IndexMap<String, Tree>,
) {
    let pb = &loaded.playbook;
    let mut vars: IndexMap<String, Value> = pb.vars.clone();
    for (k, v) in &overrides.vars {
        vars.insert(k.clone(), v.clone());
    }
    let mut static_vars = serde_json::Map::new();
    let mut template_vars: IndexMap<String, Tree> = IndexMap::new();
    for (k, v) in &vars {
        match env.compile(v) {
            Ok(t) if t.is_literal() => {
                static_vars.insert(k.clone(), v.clone());
            }
            Ok(t) => {
                template_vars.insert(k.clone(), t);
            }
            Err(e) => diags.push(loaded.at_value(
                &format!("vars.{k}"),
                format!("template error in var `{k}`: {}", e.message),
            )),
        }
    }
    // A templated var is rendered per item from plain vars only (no chains, no cycles).
    for (k, t) in &template_vars {
        for var in t.variables() {
            let name = var
                .strip_prefix("vars.")
                .map(|r| r.split('.').next().unwrap_or(r));
            if name.is_some_and(|n| template_vars.contains_key(n)) {
                diags.push(loaded.at_value(
                    &format!("vars.{k}"),
                    format!("var `{k}` reads `{var}`, another templated var; only plain vars can be read from vars"),
                ));
            }
        }
    }
    (vars, static_vars, template_vars)
}

/// The values of the vars `settings.secrets` names (a templated one rendered now, from the
/// environment only), to redact everywhere.
pub(super) fn collect_secrets(
    loaded: &Loaded,
    vars: &IndexMap<String, Value>,
    template_vars: &IndexMap<String, Tree>,
    environment: &serde_json::Map<String, Value>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let pb = &loaded.playbook;
    let mut secrets = Vec::new();
    for (i, name) in pb.settings.secrets.iter().enumerate() {
        match vars.get(name) {
            Some(_) if template_vars.contains_key(name) => {
                // A secret filled from env: render it now with env only.
                let ctx =
                    minijinja::context! { env => minijinja::Value::from_serialize(environment) };
                match template_vars[name].render(&ctx) {
                    Ok(Value::String(v)) => secrets.push(v),
                    Ok(other) => secrets.push(other.to_string()),
                    Err((_, e)) => diags.push(loaded.at_value(
                        &format!("settings.secrets.{i}"),
                        format!(
                            "secret `{name}` cannot be rendered: {}",
                            crate::template::describe(&e)
                        ),
                    )),
                }
            }
            Some(Value::String(s)) => secrets.push(s.clone()),
            Some(other) => secrets.push(other.to_string()),
            None => {
                let mut d = loaded.at_value(
                    &format!("settings.secrets.{i}"),
                    format!("secret `{name}` is not a var"),
                );
                if let Some(h) = did_you_mean(name, vars.keys().map(String::as_str)) {
                    d = d.with_hint(h);
                }
                diags.push(d);
            }
        }
    }
    secrets
}

fn count_rows(spec: &InputSpec) -> u64 {
    inputs::count_rows(spec).unwrap_or(0)
}

/// The secret var names and every template var that reads one, however indirectly.
pub(super) fn secret_var_names(
    secrets: &[String],
    template_vars: &IndexMap<String, Tree>,
) -> HashSet<String> {
    let mut out: HashSet<String> = secrets.iter().cloned().collect();
    let reads: Vec<(&String, BTreeSet<String>)> = template_vars
        .iter()
        .map(|(n, t)| (n, t.variables()))
        .collect();
    // Each round adds at least one var or ends: at most as many rounds as vars.
    loop {
        let before = out.len();
        for (name, vars) in &reads {
            if !out.contains(*name) && reads_secret(vars, &out) {
                out.insert((*name).clone());
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// The mask of a parameter's template tree; `None` when no part of it reads a secret.
pub(super) fn secret_mask(t: &Tree, secret_vars: &HashSet<String>) -> Option<SecretMask> {
    if !reads_secret(&t.variables(), secret_vars) {
        return None;
    }
    Some(match t {
        Tree::Map(m) => SecretMask::Map(
            m.iter()
                .filter_map(|(k, t)| secret_mask(t, secret_vars).map(|m| (k.clone(), m)))
                .collect(),
        ),
        Tree::List(l) => SecretMask::List(
            l.iter()
                .map(|t| secret_mask(t, secret_vars).unwrap_or(SecretMask::Nothing))
                .collect(),
        ),
        Tree::Lit(_) | Tree::Text(_) | Tree::Expr(_) => SecretMask::All,
    })
}

/// Whether any of `vars` (`vars.api_key.x`, …) is one of `secret_vars`.
fn reads_secret(vars: &BTreeSet<String>, secret_vars: &HashSet<String>) -> bool {
    vars.iter().any(|v| {
        v.strip_prefix("vars.")
            .map(|r| r.split('.').next().unwrap_or(r))
            .is_some_and(|n| secret_vars.contains(n))
    })
}
