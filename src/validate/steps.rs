//! Validation of one step: its id, settings
//! ([`crate::settings::RunSettings::for_step`]), item source, `when`,
//! and what it does (an action checked against the catalog, or a per-item pipeline of nested
//! steps). Builds the step's [`StepPlan`] for the program when all of it is right.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::inputs::secret_mask;
use super::{Known, Scope, V};
use crate::catalog::{self, ActionSpec, Location};
use crate::diagnostic::did_you_mean;
use crate::playbook::{Paginate, Step};
use crate::program::{PageBound, Source, StepKind, StepPlan};
use crate::template::{Expr, Tree};

impl V<'_> {
    pub(super) fn step(
        &mut self,
        step: &Step,
        path: &str,
        outer: &Scope,
        ids: &mut HashMap<String, String>,
        nested: bool,
    ) -> Option<StepPlan> {
        let mut ok = self.check_id(step, path, ids);
        let settings = self
            .defaults
            .for_step(self.loaded, path, step, &mut self.diags);
        let (source, scope) = self.source(step, path, outer, nested, &mut ok)?;
        let (when, when_reads_steps) = self.when(step, path, &scope, &mut ok);
        let mut vars_used = BTreeSet::new();
        let kind = match (&step.action, step.steps.is_empty()) {
            (Some(_), false) | (None, true) => {
                self.no_kind(step, path);
                return None;
            }
            (None, false) => self.pipeline(step, path, &scope, ids, nested, &mut ok)?,
            (Some(_), true) => {
                self.action(step, path, settings.routes, &scope, &mut vars_used, &mut ok)?
            }
        };
        if let Some(w) = &when {
            vars_used.extend(w.variables());
        }
        let paginate = self.paginate(step, path);
        let used_vars = self.template_vars_read(&vars_used, &scope, &mut ok);
        ok.then(|| StepPlan {
            id: step.id.clone(),
            yaml_path: path.to_owned(),
            source,
            when,
            when_reads_steps,
            paginate,
            settings,
            secret_params: match &kind {
                StepKind::Action { with, .. } => with
                    .iter()
                    .filter_map(|(name, t)| {
                        secret_mask(t, &self.secret_vars).map(|m| (name.clone(), m))
                    })
                    .collect(),
                StepKind::Pipeline(_) => Vec::new(),
            },
            kind,
            vars_used: used_vars,
            keep_results: false,
        })
    }

    /// The step's id: well formed and not used before. False if not (reported).
    fn check_id(&mut self, step: &Step, path: &str, ids: &mut HashMap<String, String>) -> bool {
        let loaded = self.loaded;
        let mut ok = true;
        if !valid_id(&step.id) {
            self.diags.push(
                loaded
                    .at_value(
                        &format!("{path}.id"),
                        format!("invalid step id `{}`", step.id),
                    )
                    .with_hint("ids are lower case: [a-z][a-z0-9_]*"),
            );
            ok = false;
        }
        if let Some(first) = ids.get(&step.id) {
            let first_line = loaded
                .positions
                .value(&format!("{first}.id"))
                .map_or(0, |p| p.line);
            self.diags.push(
                loaded
                    .at_value(
                        &format!("{path}.id"),
                        format!("duplicate step id `{}`", step.id),
                    )
                    .with_hint(format!(
                        "first used on line {first_line}; step ids must be unique"
                    )),
            );
            ok = false;
        } else {
            ids.insert(step.id.clone(), path.to_owned());
        }
        ok
    }

    /// Where the step's items come from, and the scope its templates see. `None` when the
    /// step cannot be checked further (reported).
    fn source(
        &mut self,
        step: &Step,
        path: &str,
        outer: &Scope,
        nested: bool,
        ok: &mut bool,
    ) -> Option<(Source, Scope)> {
        let loaded = self.loaded;
        let mut scope = outer.clone();
        let source = match &step.for_each {
            None => {
                if nested {
                    // Nested steps run once per item of their parent: item/row stay visible.
                } else {
                    scope.has_item = false;
                    scope.row_input = None;
                }
                Source::Single
            }
            Some(_) if nested => {
                self.diags.push(
                    loaded
                        .at_key(&format!("{path}.for_each"), "a nested step cannot fan out")
                        .with_hint("nested steps run once per item of their parent step"),
                );
                return None;
            }
            Some(fe) => {
                let fe_path = format!("{path}.for_each");
                let trimmed = fe
                    .trim()
                    .trim_start_matches("{{")
                    .trim_end_matches("}}")
                    .trim();
                if let Some(name) = trimmed
                    .strip_prefix("inputs.")
                    .filter(|n| !n.contains(['.', '[', ' ', '|']))
                {
                    if !self.inputs.contains_key(name)
                        && !self.loaded.playbook.inputs.contains_key(name)
                    {
                        let mut d = loaded.at_value(&fe_path, format!("unknown input `{name}`"));
                        if let Some(h) = did_you_mean(
                            name,
                            self.loaded.playbook.inputs.keys().map(String::as_str),
                        ) {
                            d = d.with_hint(h);
                        }
                        self.diags.push(d);
                        *ok = false;
                    }
                    scope.has_item = true;
                    scope.item_is_result = false;
                    scope.row_input = Some(name.to_owned());
                    Source::Input(name.to_owned())
                } else {
                    match self.env.expression(trimmed) {
                        Err(e) => {
                            self.diags.push(
                                loaded.at_value(
                                    &fe_path,
                                    format!("invalid for_each expression: {e}"),
                                ),
                            );
                            return None;
                        }
                        Ok(expr) => {
                            let base = Scope {
                                has_item: false,
                                row_input: None,
                                ..outer.clone()
                            };
                            let vars = expr.variables();
                            if !self.check_vars(&vars, &base, &fe_path) {
                                *ok = false;
                            }
                            // Over an earlier fan-out's results: items are results with rows.
                            let from_step = vars.iter().find_map(|v| {
                                let mut parts = v.split('.');
                                (parts.next() == Some("steps"))
                                    .then(|| parts.next().unwrap_or("").to_owned())
                            });
                            let result_list = vars.iter().any(|v| {
                                let parts: Vec<&str> = v.split('.').collect();
                                parts.len() >= 3
                                    && parts[0] == "steps"
                                    && ["succeeded", "failed", "unchanged", "items"]
                                        .contains(&parts[2])
                            });
                            let row_input = from_step
                                .as_ref()
                                .and_then(|s| outer.steps.get(s))
                                .and_then(|k| k.row_input.clone());
                            scope.has_item = true;
                            scope.item_is_result = result_list;
                            scope.row_input = if result_list { row_input.clone() } else { None };
                            Source::Expr {
                                expr: Arc::new(expr),
                                row_input: if result_list { row_input } else { None },
                            }
                        }
                    }
                }
            }
        };
        Some((source, scope))
    }

    /// The step's `when`, compiled and checked, and whether it reads other steps.
    fn when(
        &mut self,
        step: &Step,
        path: &str,
        scope: &Scope,
        ok: &mut bool,
    ) -> (Option<Arc<Expr>>, bool) {
        let loaded = self.loaded;
        let mut when = None;
        let mut when_reads_steps = false;
        if let Some(w) = &step.when {
            let wp = format!("{path}.when");
            let text = match w {
                Value::Bool(b) => b.to_string(),
                Value::String(s) => s
                    .trim()
                    .trim_start_matches("{{")
                    .trim_end_matches("}}")
                    .trim()
                    .to_owned(),
                other => {
                    self.diags.push(loaded.at_value(
                        &wp,
                        format!("`when` must be an expression or a bool, got {other}"),
                    ));
                    String::from("true")
                }
            };
            match self.env.expression(&text) {
                Ok(e) => {
                    let vars = e.variables();
                    when_reads_steps = vars.iter().any(|v| v.starts_with("steps."));
                    if !self.check_vars(&vars, scope, &wp) {
                        *ok = false;
                    }
                    when = Some(Arc::new(e));
                }
                Err(e) => {
                    self.diags
                        .push(loaded.at_value(&wp, format!("invalid `when` expression: {e}")));
                    *ok = false;
                }
            }
        }
        (when, when_reads_steps)
    }

    /// A step with both an `action` and nested `steps`, or with neither.
    fn no_kind(&mut self, step: &Step, path: &str) {
        let loaded = self.loaded;
        let d = if step.action.is_some() {
            loaded
                .at_key(
                    &format!("{path}.steps"),
                    "a step has either an `action` or nested `steps`, not both",
                )
                .with_hint("move the action into a nested step")
        } else {
            loaded
                .at_key(
                    &format!("{path}.id"),
                    format!("step `{}` has no `action`", step.id),
                )
                .with_hint("add `action: …` (see `wts-playbook actions`)")
        };
        self.diags.push(d);
    }

    /// A per-item pipeline: its nested steps, each checked in the scope of one item.
    fn pipeline(
        &mut self,
        step: &Step,
        path: &str,
        scope: &Scope,
        ids: &mut HashMap<String, String>,
        nested: bool,
        ok: &mut bool,
    ) -> Option<StepKind> {
        let loaded = self.loaded;
        if nested {
            self.diags.push(loaded.at_key(
                &format!("{path}.steps"),
                "nested pipelines cannot be nested again",
            ));
            return None;
        }
        if step.for_each.is_none() {
            self.diags.push(
                loaded
                    .at_key(
                        &format!("{path}.steps"),
                        "nested `steps` need a `for_each` on their parent",
                    )
                    .with_hint("a pipeline runs its nested steps once per item"),
            );
            return None;
        }
        if !step.with.is_empty() {
            self.diags.push(loaded.at_key(
                &format!("{path}.with"),
                "a pipeline step has no `with`; put it on its nested steps",
            ));
        }
        let mut children = Vec::new();
        let mut inner = scope.clone();
        for (k, c) in step.steps.iter().enumerate() {
            if let Some(plan) = self.step(c, &format!("{path}.steps.{k}"), &inner, ids, true) {
                Arc::make_mut(&mut inner.steps).insert(
                    plan.id.clone(),
                    Known {
                        fans_out: false,
                        row_input: scope.row_input.clone(),
                    },
                );
                inner.siblings.insert(plan.id.clone());
                children.push(plan);
            } else {
                // Still declared for the nested steps after it.
                Arc::make_mut(&mut inner.steps).insert(
                    c.id.clone(),
                    Known {
                        fans_out: false,
                        row_input: scope.row_input.clone(),
                    },
                );
                inner.siblings.insert(c.id.clone());
                *ok = false;
            }
        }
        Some(StepKind::Pipeline(children))
    }

    /// An action step: the action in the catalog (in the step's route family), its parameters'
    /// names, and each parameter's template or literal value.
    fn action(
        &mut self,
        step: &Step,
        path: &str,
        routes: catalog::Routes,
        scope: &Scope,
        vars_used: &mut BTreeSet<String>,
        ok: &mut bool,
    ) -> Option<StepKind> {
        let loaded = self.loaded;
        let action = step.action.as_deref()?;
        let spec = self.action_spec(step, path, action, routes, ok)?;
        let with = self.action_with(step, path, spec, scope, vars_used, ok);
        if step.paginate.is_some() && !spec.paginated {
            self.diags.push(loaded.at_key(
                &format!("{path}.paginate"),
                format!("`{action}` is not a list action; `paginate` does not apply"),
            ));
            *ok = false;
        }
        Some(StepKind::Action { spec, with })
    }

    /// The step's action in the catalog, in the step's route family, and the names under its
    /// `with:` checked against it. `None` for an unknown action.
    fn action_spec(
        &mut self,
        step: &Step,
        path: &str,
        action: &str,
        routes: catalog::Routes,
        ok: &mut bool,
    ) -> Option<&'static ActionSpec> {
        let loaded = self.loaded;
        let ap = format!("{path}.action");
        let Some(spec) = catalog::lookup(action) else {
            let hint = did_you_mean(action, catalog::names())
                .unwrap_or_else(|| "`wts-playbook actions` lists them".to_owned());
            self.diags.push(
                loaded
                    .at_value(&ap, format!("unknown action `{action}`"))
                    .with_hint(hint),
            );
            return None;
        };
        let spec = catalog::resolve(spec, routes);
        let mut dropped = false;
        let names: Vec<&str> = step
            .with
            .keys()
            .map(String::as_str)
            .filter(|n| {
                let Some(message) = other_family_param(spec, n, routes) else {
                    return true;
                };
                let d = loaded.at_key(&format!("{path}.with.{n}"), message);
                self.diags.push(d.with_hint(family_hint(spec, routes)));
                *ok = false;
                dropped = true;
                false
            })
            .collect();
        // A rule about the whole call ("nothing to update") would only echo the
        // parameter of the other family just reported.
        let problems = catalog::check_names(spec, &names)
            .into_iter()
            .filter(|p| !(dropped && p.param.is_none()));
        for p in problems {
            let at = p
                .param
                .as_ref()
                .map_or_else(|| format!("{path}.with"), |n| format!("{path}.with.{n}"));
            let message = name_param(&p.message, p.param.as_deref());
            let mut d = if step.with.contains_key(p.param.as_deref().unwrap_or("")) {
                loaded.at_key(&at, message)
            } else if step.with.is_empty() {
                loaded.at_key(&format!("{path}.action"), message)
            } else {
                loaded.at_key(&format!("{path}.with"), message)
            };
            match (&p.hint, p.param.as_deref()) {
                (Some(h), Some(name)) if p.message == "missing required parameter" => {
                    d = d.with_hint(format!("add `{name}:` under `with:` ({h})"));
                }
                (Some(h), _) => d = d.with_hint(h.clone()),
                (None, _) => {}
            }
            self.diags.push(d);
            *ok = false;
        }
        Some(spec)
    }

    /// Each `with:` value compiled: a literal converted to its parameter's type now, each
    /// template's variables checked at its own position.
    fn action_with(
        &mut self,
        step: &Step,
        path: &str,
        spec: &'static ActionSpec,
        scope: &Scope,
        vars_used: &mut BTreeSet<String>,
        ok: &mut bool,
    ) -> Vec<(String, Tree)> {
        let loaded = self.loaded;
        let mut with = Vec::new();
        for (name, value) in &step.with {
            let vp = format!("{path}.with.{name}");
            match self.env.compile(value) {
                Err(e) => {
                    let at = if e.at.is_empty() {
                        vp.clone()
                    } else {
                        format!("{vp}.{}", e.at)
                    };
                    self.diags.push(
                        loaded.at_value(&at, format!("template error in `{name}`: {}", e.message)),
                    );
                    *ok = false;
                }
                Ok(tree) => {
                    if tree.is_literal() {
                        // Literal values are converted now: a wrong type is found before any run.
                        if let Some(param) = spec.param(name) {
                            let checked = catalog::convert(param, value).and_then(|v| {
                                match (param.location, param.name, v.as_str()) {
                                    (Location::Runner, "file_base64", Some(b64))
                                        if !b64.trim().is_empty() =>
                                    {
                                        crate::plan::decode_base64(b64).map(|_| ())
                                    }
                                    _ => Ok(()),
                                }
                            });
                            if let Err(e) = checked {
                                self.diags.push(
                                    loaded
                                        .at_value(&vp, format!("invalid value for `{name}`: {e}")),
                                );
                                *ok = false;
                            }
                        }
                    } else {
                        // Each template of a nested value is checked at its own
                        // position (`query.token`), not at the enclosing mapping.
                        for (at, vars) in template_leaves(&tree, &vp) {
                            if !self.check_vars(&vars, scope, &at) {
                                *ok = false;
                            }
                            vars_used.extend(vars);
                        }
                    }
                    with.push((name.clone(), tree));
                }
            }
        }
        with
    }

    /// How far `paginate` reads (`paginate: all` up to the run's bounds).
    fn paginate(&mut self, step: &Step, path: &str) -> Option<PageBound> {
        let loaded = self.loaded;
        match &step.paginate {
            None => None,
            Some(Paginate::Pages(0)) => {
                self.diags.push(loaded.at_value(
                    &format!("{path}.paginate"),
                    "paginate must be `all` or a page count ≥ 1",
                ));
                None
            }
            Some(Paginate::Pages(n)) => Some(PageBound {
                pages: *n,
                items: None,
            }),
            Some(Paginate::All(_)) => Some(PageBound {
                pages: self.defaults.max_pages,
                items: Some(self.defaults.max_items),
            }),
        }
    }

    /// Template vars this step reads, and what they read in turn (checked in the step's
    /// scope).
    fn template_vars_read(
        &mut self,
        vars_used: &BTreeSet<String>,
        scope: &Scope,
        ok: &mut bool,
    ) -> Vec<String> {
        let mut used_vars = Vec::new();
        for v in vars_used {
            if let Some(name) = v
                .strip_prefix("vars.")
                .map(|r| r.split('.').next().unwrap_or(r))
            {
                if let Some(t) = self.template_vars.get(name) {
                    if !used_vars.contains(&name.to_owned()) {
                        used_vars.push(name.to_owned());
                        let vp = format!("vars.{name}");
                        if !self.check_vars(&t.variables(), scope, &vp) {
                            *ok = false;
                        }
                    }
                }
            }
        }
        used_vars
    }
}

/// The message for a parameter that `spec` (as `routes` sees it) lacks but the other family
/// has, e.g. `include_archived` under `routes: documented`.
fn other_family_param(spec: &ActionSpec, name: &str, routes: catalog::Routes) -> Option<String> {
    if spec.param(name).is_some() {
        return None;
    }
    let other = routes.other();
    let base = catalog::lookup_for(spec.name, other)?;
    base.param(name)?;
    let (method, path) = catalog::route_of(base, other);
    Some(format!(
        "parameter `{name}` exists only with `routes: {other}` ({method} {path}); this step uses \
         `routes: {routes}` ({} {})",
        spec.method, spec.path
    ))
}

fn family_hint(spec: &ActionSpec, routes: catalog::Routes) -> String {
    let own: Vec<String> = spec
        .params
        .iter()
        .filter(|p| p.only == Some(routes))
        .map(|p| format!("`{}`", p.name))
        .collect();
    let switch = format!(
        "set `routes: {}` on the step or in `settings`, or run with `--routes {}`",
        routes.other(),
        routes.other()
    );
    if own.is_empty() {
        switch
    } else {
        format!(
            "`routes: {routes}` has {} instead; or {switch}",
            own.join(", ")
        )
    }
}

/// A catalog problem's message with the parameter named in it: "missing required parameter"
/// → "missing required parameter `x`" (the caret may point at `with:`, not at the name).
fn name_param(message: &str, param: Option<&str>) -> String {
    let Some(name) = param else {
        return message.to_owned();
    };
    if message.contains(&format!("`{name}`")) {
        return message.to_owned();
    }
    match message.find("parameter") {
        Some(i) => {
            let end = i + "parameter".len();
            format!("{} `{name}`{}", &message[..end], &message[end..])
        }
        None => format!("parameter `{name}`: {message}"),
    }
}

/// The templated leaves of a compiled value, each with its YAML path under `at`.
fn template_leaves(tree: &Tree, at: &str) -> Vec<(String, BTreeSet<String>)> {
    fn walk(tree: &Tree, at: String, out: &mut Vec<(String, BTreeSet<String>)>) {
        match tree {
            Tree::Lit(_) => {}
            Tree::Text(_) | Tree::Expr(_) => out.push((at, tree.variables())),
            Tree::Map(m) => m
                .iter()
                .for_each(|(k, t)| walk(t, format!("{at}.{k}"), out)),
            Tree::List(l) => l
                .iter()
                .enumerate()
                .for_each(|(i, t)| walk(t, format!("{at}.{i}"), out)),
        }
    }
    let mut out = Vec::new();
    walk(tree, at.to_owned(), &mut out);
    out
}

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
