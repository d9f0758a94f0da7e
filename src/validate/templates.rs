//! Checking what templates read: every variable path (`row.ticket`, `vars.goodbye`,
//! `steps.lookup.output.id`, …) against the scope of the template that reads it (the CSV's
//! columns, the vars, the environment, the inputs, the steps that ran before). Part of
//! [`super`] (validation).

use std::collections::BTreeSet;

use super::{Scope, V};
use crate::diagnostic::did_you_mean;
use crate::program::TOKEN_VAR;

/// The variable roots a template may read.
const ROOTS: &[&str] = &["item", "row", "vars", "env", "inputs", "steps"];
/// What a fan-out result offers (`steps.ID.items[i].…`, `item.…` over results).
const RESULT_FIELDS: &[&str] = &["row", "status", "output", "error", "key", "index", "item"];
const STEP_FIELDS: &[&str] = &["output", "items", "succeeded", "failed", "unchanged"];

/// A message and an optional hint.
type Problem = (String, Option<String>);

impl V<'_> {
    /// Checks every variable path read by a template against its scope. Returns false if any is
    /// wrong (each problem is reported at `at`).
    pub(super) fn check_vars(&mut self, vars: &BTreeSet<String>, scope: &Scope, at: &str) -> bool {
        let mut ok = true;
        for var in vars {
            if let Err((msg, hint)) = self.check_var(var, scope) {
                let mut d = self.loaded.at_value(at, msg);
                if let Some(h) = hint {
                    d = d.with_hint(h);
                }
                self.diags.push(d);
                ok = false;
            }
        }
        ok
    }

    fn check_var(&mut self, var: &str, scope: &Scope) -> Result<(), Problem> {
        let parts: Vec<&str> = var.split('.').collect();
        match parts[0] {
            "row" | "item" => self.check_item(var, &parts, scope),
            "vars" => self.check_var_name(var, &parts),
            "env" => self.check_env(&parts),
            "inputs" => self.check_input(var, &parts),
            "steps" => self.check_step(var, &parts, scope),
            other => {
                let hint = did_you_mean(other, ROOTS.iter().copied())
                    .unwrap_or_else(|| format!("templates can read {}", ROOTS.join(", ")));
                Err((format!("undefined variable `{other}`"), Some(hint)))
            }
        }
    }

    /// `row.COLUMN` and `item.…`: a CSV row's columns, or a fan-out result's fields.
    fn check_item(&self, var: &str, parts: &[&str], scope: &Scope) -> Result<(), Problem> {
        let root = parts[0];
        let check_column =
            |col: &str, input: &Option<String>| self.check_column(var, col, input.as_deref());
        if !scope.has_item {
            return Err((
                format!("undefined variable `{var}`: this step has no `for_each`, so there is no `{root}`"),
                Some("add `for_each: inputs.NAME` or remove the reference".into()),
            ));
        }
        let Some(field) = parts.get(1) else {
            return Ok(());
        };
        if root == "item" && scope.item_is_result {
            if !RESULT_FIELDS.contains(field) {
                return Err((
                    format!(
                        "undefined variable `{var}`: a result item has {}",
                        RESULT_FIELDS.join(", ")
                    ),
                    did_you_mean(field, RESULT_FIELDS.iter().copied()),
                ));
            }
            // A result's `row` has the input's columns; so has its `item` over CSV
            // rows (over an earlier step's results it is a result: row, status, …).
            if let Some(col) = parts.get(2) {
                if *field == "row" || (*field == "item" && !RESULT_FIELDS.contains(col)) {
                    return check_column(col, &scope.row_input);
                }
            }
            return Ok(());
        }
        if root == "item" && scope.row_input.is_none() {
            return Ok(()); // items of an arbitrary list: shape unknown
        }
        check_column(field, &scope.row_input)
    }

    /// `col` is a column of `input` (when its header is known).
    fn check_column(&self, var: &str, col: &str, input: Option<&str>) -> Result<(), Problem> {
        let columns = input
            .and_then(|n| self.inputs.get(n))
            .map(|i| i.header.columns.clone());
        let Some(cols) = columns else {
            return Ok(());
        };
        if cols.iter().any(|c| c == col) {
            Ok(())
        } else {
            let name = input.unwrap_or("");
            Err((
                format!("undefined variable `{var}`: input `{name}` has no column `{col}`"),
                Some(
                    did_you_mean(col, cols.iter().map(String::as_str))
                        .unwrap_or_else(|| format!("columns: {}", cols.join(", "))),
                ),
            ))
        }
    }

    /// `vars.NAME`: a var of the playbook (or `--var`); `vars` whole reads them all.
    fn check_var_name(&mut self, var: &str, parts: &[&str]) -> Result<(), Problem> {
        match parts.get(1) {
            None => {
                self.vars_read = None;
                Ok(())
            }
            Some(name) if self.vars.contains(*name) => {
                if let Some(read) = &mut self.vars_read {
                    read.insert((*name).to_owned());
                }
                Ok(())
            }
            Some(name) => Err((
                format!("undefined variable `{var}`: there is no var `{name}`"),
                did_you_mean(name, self.vars.iter().map(String::as_str))
                    .or_else(|| Some("define it under `vars:` or pass `--var NAME=VALUE`".into())),
            )),
        }
    }

    /// `env.NAME`: a variable set in the environment, never the token.
    fn check_env(&self, parts: &[&str]) -> Result<(), Problem> {
        match parts.get(1) {
            None => Err((
                "templates cannot read the whole environment; name a variable (`env.NAME`)".into(),
                None,
            )),
            Some(&TOKEN_VAR) => Err((
                format!("`env.{TOKEN_VAR}` is not available to templates"),
                Some("the token is sent by the runner itself and never rendered".into()),
            )),
            Some(name) if self.environment.contains_key(*name) => Ok(()),
            Some(name) => Err((format!("environment variable `{name}` is not set"), None)),
        }
    }

    /// `inputs.NAME`: an input of the playbook.
    fn check_input(&self, var: &str, parts: &[&str]) -> Result<(), Problem> {
        match parts.get(1) {
            None => Ok(()),
            Some(name) if self.loaded.playbook.inputs.contains_key(*name) => Ok(()),
            Some(name) => Err((
                format!("undefined variable `{var}`: there is no input `{name}`"),
                did_you_mean(name, self.loaded.playbook.inputs.keys().map(String::as_str)),
            )),
        }
    }

    /// `steps.ID.FIELD`: a step that ran before this one, and a field it offers.
    fn check_step(&mut self, var: &str, parts: &[&str], scope: &Scope) -> Result<(), Problem> {
        let Some(id) = parts.get(1) else {
            return Err(("name a step: `steps.ID.output`".into(), None));
        };
        let Some(known) = scope.steps.get(*id) else {
            if self.all_ids.iter().any(|i| i == id) {
                return Err((
                    format!("step `{id}` has not run yet at this point"),
                    Some("a step can only read steps that run before it (not later ones, nor ones in the same parallel group)".into()),
                ));
            }
            return Err((
                format!("undefined variable `{var}`: there is no step `{id}`"),
                did_you_mean(id, self.all_ids.iter().map(String::as_str)),
            ));
        };
        self.referenced.insert((*id).to_owned());
        if let Some(field) = parts.get(2) {
            if !STEP_FIELDS.contains(field) {
                return Err((
                    format!(
                        "undefined variable `{var}`: a step offers {}",
                        STEP_FIELDS.join(", ")
                    ),
                    did_you_mean(field, STEP_FIELDS.iter().copied()),
                ));
            }
            if *field == "output" && known.fans_out && !scope.siblings.contains(*id) {
                return Err((
                    format!("step `{id}` fans out, so it has no single `output`"),
                    Some(format!(
                        "use `steps.{id}.items`, `.succeeded`, `.unchanged` or `.failed`"
                    )),
                ));
            }
        }
        Ok(())
    }
}
