//! Validation: a loaded playbook → a [`Program`] the later stages can run, or every problem
//! at once.
//!
//! playbook (load) → **validate** → program → plan → execute → report. Validation only checks
//! and builds: the settings ([`crate::settings`] resolves them), the inputs, vars and secrets
//! ([`inputs`]), each step ([`steps`]: actions and parameters against the catalog, every
//! template compiled) and every variable a template reads ([`templates`]: CSV columns, vars,
//! env, earlier steps only). The result is the model of [`crate::program`].

mod inputs;
mod steps;
mod templates;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::playbook::{Loaded, Step, StepDef};
use crate::program::{environment_map, InputInfo, Program, Source, Stage, StepKind, StepPlan};
use crate::settings::{Overrides, RunSettings};
use crate::template::{Env, Tree};

/// What the validator knows about a step visible to later templates.
#[derive(Debug, Clone)]
struct Known {
    fans_out: bool,
    /// CSV input the step's rows come from.
    row_input: Option<String>,
}

/// Variable scope of one template: which names mean what.
#[derive(Clone, Default)]
struct Scope {
    /// `item`/`row` available, and the CSV input their columns come from.
    has_item: bool,
    row_input: Option<String>,
    /// `item` is a fan-out result (has row/status/output…), not a CSV row.
    item_is_result: bool,
    /// Steps visible, and whether each fans out.
    /// Shared, not copied per step (a copy per step made validation quadratic); a step's scope
    /// is dropped before the next step is registered, so adding to it copies nothing.
    steps: Arc<IndexMap<String, Known>>,
    /// Steps of the same per-item pipeline (their `output` is this item's).
    siblings: HashSet<String>,
}

struct V<'a> {
    loaded: &'a Loaded,
    env: Env,
    inputs: &'a IndexMap<String, InputInfo>,
    vars: HashSet<String>,
    environment: &'a serde_json::Map<String, Value>,
    all_ids: Vec<String>,
    diags: Vec<Diagnostic>,
    defaults: RunSettings,
    /// Steps referenced by a later step (to keep their results).
    referenced: HashSet<String>,
    template_vars: &'a IndexMap<String, Tree>,
    /// Var names templates read (`vars.NAME`); `None` once a template reads `vars` whole.
    vars_read: Option<HashSet<String>>,
    /// Secret var names, and the template vars that read one.
    secret_vars: HashSet<String>,
}

/// Validates a loaded playbook, with a full pass over every CSV (it also counts the rows).
pub(crate) fn validate(loaded: Loaded, overrides: &Overrides) -> Result<Program, Vec<Diagnostic>> {
    let env = Env::new();
    let mut diags = Vec::new();
    let inputs = inputs::check_inputs(&loaded, overrides, &mut diags);
    let (vars, static_vars, template_vars) =
        inputs::split_vars(&loaded, env, overrides, &mut diags);
    let environment = environment_map();
    let secrets = inputs::collect_secrets(&loaded, &vars, &template_vars, &environment, &mut diags);
    let defaults = RunSettings::resolve(&loaded, overrides, &mut diags);

    let pb = &loaded.playbook;
    let mut v = V {
        loaded: &loaded,
        env,
        inputs: &inputs,
        vars: vars.keys().cloned().collect(),
        environment: &environment,
        all_ids: collect_ids(&pb.steps),
        diags,
        defaults: defaults.clone(),
        referenced: HashSet::new(),
        template_vars: &template_vars,
        vars_read: Some(HashSet::new()),
        secret_vars: inputs::secret_var_names(&pb.settings.secrets, &template_vars),
    };
    let mut stages = v.stages();
    v.check_var_overrides(overrides);
    let referenced = std::mem::take(&mut v.referenced);
    let mut diags = std::mem::take(&mut v.diags);
    if !diags.is_empty() {
        // In reading order: the playbook's own problems by position, then the other files'.
        diags.sort_by(|a, b| {
            (a.file != loaded.path, &a.file, a.line, a.column).cmp(&(
                b.file != loaded.path,
                &b.file,
                b.line,
                b.column,
            ))
        });
        return Err(diags);
    }
    for st in &mut stages {
        let steps: &mut [StepPlan] = match st {
            Stage::One(s) => std::slice::from_mut(s.as_mut()),
            Stage::Parallel(v) => v,
        };
        for s in steps {
            mark_kept(s, &referenced);
        }
    }
    Ok(Program {
        loaded,
        env,
        inputs,
        static_vars,
        template_vars,
        secrets,
        settings: defaults,
        stages,
        environment,
    })
}

impl V<'_> {
    /// The playbook's steps, each validated in the scope of the steps before it, as stages.
    /// Var templates may read row/item/env/steps; they are checked where a step uses them.
    fn stages(&mut self) -> Vec<Stage> {
        let pb = &self.loaded.playbook;
        let mut stages = Vec::new();
        let mut seen: Arc<IndexMap<String, Known>> = Arc::default();
        let mut ids: HashMap<String, String> = HashMap::new();
        for (i, sd) in pb.steps.iter().enumerate() {
            let path = format!("steps.{i}");
            match sd {
                StepDef::Step(step) => {
                    let scope = Scope {
                        steps: seen.clone(),
                        ..Scope::default()
                    };
                    let plan = self.step(step, &path, &scope, &mut ids, false);
                    drop(scope);
                    if let Some(plan) = plan {
                        register(&plan, Arc::make_mut(&mut seen));
                        stages.push(Stage::One(Box::new(plan)));
                    } else {
                        declare(step, Arc::make_mut(&mut seen));
                    }
                }
                StepDef::Parallel(group) => {
                    let scope = Scope {
                        steps: seen.clone(),
                        ..Scope::default()
                    };
                    let mut plans = Vec::new();
                    let mut broken = Vec::new();
                    for (j, step) in group.parallel.iter().enumerate() {
                        if let Some(plan) = self.step(
                            step,
                            &format!("{path}.parallel.{j}"),
                            &scope,
                            &mut ids,
                            false,
                        ) {
                            plans.push(plan);
                        } else {
                            broken.push(step);
                        }
                    }
                    drop(scope);
                    for p in &plans {
                        register(p, Arc::make_mut(&mut seen));
                    }
                    for step in broken {
                        declare(step, Arc::make_mut(&mut seen));
                    }
                    stages.push(Stage::Parallel(plans));
                }
            }
        }
        stages
    }

    /// A --var must name a var the playbook declares under `vars:` or reads (`vars.NAME`);
    /// anything else is a typo whose value would be silently ignored.
    fn check_var_overrides(&mut self, overrides: &Overrides) {
        let read = self.vars_read.take();
        for (name, _) in &overrides.vars {
            let declared = self.loaded.playbook.vars.contains_key(name);
            if declared || read.as_ref().is_none_or(|r| r.contains(name)) {
                continue;
            }
            let mut known: Vec<&str> = self
                .loaded
                .playbook
                .vars
                .keys()
                .map(String::as_str)
                .collect();
            if let Some(r) = &read {
                known.extend(r.iter().map(String::as_str));
            }
            let mut d = Diagnostic::file(
                &self.loaded.path,
                format!(
                    "--var {name}=…: the playbook has no var `{name}` (the value would be ignored)"
                ),
            );
            d = d.with_hint(
                did_you_mean(name, known.iter().copied()).unwrap_or_else(|| {
                    if known.is_empty() {
                        "the playbook declares no vars".to_owned()
                    } else {
                        known.sort_unstable();
                        known.dedup();
                        format!("its vars: {}", known.join(", "))
                    }
                }),
            );
            self.diags.push(d);
        }
    }
}

fn mark_kept(s: &mut StepPlan, referenced: &HashSet<String>) {
    s.keep_results = referenced.contains(&s.id);
    if let StepKind::Pipeline(c) = &mut s.kind {
        for c in c {
            mark_kept(c, referenced);
        }
    }
}

fn register(plan: &StepPlan, seen: &mut IndexMap<String, Known>) {
    let row_input = match &plan.source {
        Source::Input(n) => Some(n.clone()),
        Source::Expr { row_input, .. } => row_input.clone(),
        Source::Single => None,
    };
    seen.insert(
        plan.id.clone(),
        Known {
            fans_out: plan.fans_out(),
            row_input: row_input.clone(),
        },
    );
    if let StepKind::Pipeline(children) = &plan.kind {
        for c in children {
            // A nested step's results are one per item of its parent.
            seen.insert(
                c.id.clone(),
                Known {
                    fans_out: true,
                    row_input: row_input.clone(),
                },
            );
        }
    }
}

/// Declares a step that has errors of its own (already reported) for the steps after it, as
/// well as its definition tells, so that reading it is not one more error per reference.
fn declare(step: &Step, seen: &mut IndexMap<String, Known>) {
    let row_input = step.for_each.as_deref().and_then(|fe| {
        fe.trim()
            .trim_start_matches("{{")
            .trim_end_matches("}}")
            .trim()
            .strip_prefix("inputs.")
            .filter(|n| !n.contains(['.', '[', ' ', '|']))
            .map(str::to_owned)
    });
    seen.insert(
        step.id.clone(),
        Known {
            fans_out: step.for_each.is_some(),
            row_input: row_input.clone(),
        },
    );
    for c in &step.steps {
        seen.insert(
            c.id.clone(),
            Known {
                fans_out: true,
                row_input: row_input.clone(),
            },
        );
    }
}

fn collect_ids(steps: &[StepDef]) -> Vec<String> {
    fn walk(s: &Step, out: &mut Vec<String>) {
        out.push(s.id.clone());
        s.steps.iter().for_each(|c| walk(c, out));
    }
    let mut out = Vec::new();
    for sd in steps {
        match sd {
            StepDef::Step(s) => walk(s, &mut out),
            StepDef::Parallel(p) => p.parallel.iter().for_each(|s| walk(s, &mut out)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::inputs::secret_var_names;
    use super::*;
    use crate::playbook::load_str;
    use crate::settings::parse_size;

    #[test]
    fn sizes_parse_with_units_and_secret_vars_are_followed_through_vars() {
        use crate::playbook::MaxSize;
        let size = |t: &str| parse_size(&MaxSize::Text(t.into()));
        assert_eq!(size("8MB"), Ok(8 << 20));
        assert_eq!(size("512 KB"), Ok(512 << 10));
        assert_eq!(size("1.5k"), Ok(1536));
        assert_eq!(parse_size(&MaxSize::Bytes(10)), Ok(10));
        assert!(size("lots").is_err() && size("5 parsecs").is_err() && size("-1MB").is_err());
        let env = crate::template::Env::new();
        let mut tv = IndexMap::new();
        for (name, src) in [
            ("a", "{{ vars.key | upper }}"),
            ("b", "{{ vars.a }}"),
            ("c", "x"),
        ] {
            tv.insert(name.to_owned(), env.compile(&Value::from(src)).unwrap());
        }
        let names = secret_var_names(&["key".to_owned()], &tv);
        assert!(names.contains("a") && names.contains("b") && !names.contains("c"));
    }

    fn check(src: &str) -> Result<Program, Vec<Diagnostic>> {
        let loaded = load_str(std::path::Path::new("p.yaml"), src.to_owned()).expect("loads");
        validate(loaded, &Overrides::default())
    }

    const ID: &str = "11111111-1111-4111-8111-111111111111";

    #[test]
    fn a_templated_var_cannot_read_another_one() {
        let e = check(&format!(
            "version: 1\nname: x\nvars:\n  a: \"{{{{ env.HOME }}}}\"\n  b: \"{{{{ vars.a }}}}-x\"\nsteps:\n  - id: s\n    action: session.get\n    with: {{session_id: {ID}}}\n"
        ))
        .unwrap_err();
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(e[0].message.contains("var `b` reads `vars.a`"), "{}", e[0]);
        assert_eq!(e[0].line, 5);
    }

    #[test]
    fn a_step_with_errors_is_still_declared_for_the_steps_after_it() {
        let src = "version: 1\nname: x\nsteps:\n  - id: lookup\n    action: contact.get_by_phon\n    with: { phone_number: \"5511\" }\n  - id: close\n    action: session.complete\n    with: { session_id: \"{{ steps.lookup.output.id }}\" }\n  - id: p\n    for_each: \"[1, 2]\"\n    steps:\n      - id: a\n        action: session.gett\n        with: { session_id: \"{{ item }}\" }\n      - id: b\n        action: session.get\n        with: { session_id: \"{{ steps.a.output.id }}\" }\n";
        let e = check(src).unwrap_err();
        let messages: Vec<&str> = e.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unknown action `contact.get_by_phon`",
                "unknown action `session.gett`"
            ],
            "only the steps' own errors, no `has not run yet` for their readers"
        );
    }

    #[test]
    fn a_result_items_row_fields_are_the_inputs_columns() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("s.csv"),
            "session_id,ticket\n{ID},T-1\n".replace("{ID}", ID),
        )
        .expect("csv");
        let path = dir.path().join("p.yaml");
        let src = "version: 1\nname: x\ninputs:\n  s: { csv: s.csv, key: session_id }\nsteps:\n  - id: close\n    action: session.complete\n    for_each: inputs.s\n    with: { session_id: \"{{ row.session_id }}\" }\n  - id: tell\n    action: session.send_text\n    for_each: steps.close.succeeded\n    with: { session_id: \"{{ item.item.id }}\", text: \"{{ item.row.ticket }}\" }\n";
        let loaded = load_str(&path, src.to_owned()).expect("loads");
        let e = validate(loaded, &Overrides::default()).unwrap_err();
        assert_eq!(e.len(), 1, "{e:#?}");
        assert_eq!(
            e[0].message,
            "undefined variable `item.item.id`: input `s` has no column `id`"
        );
        assert_eq!(e[0].hint.as_deref(), Some("columns: session_id, ticket"));
    }

    #[test]
    fn results_are_kept_only_for_steps_read_later() {
        let p = check(&format!(
            "version: 1\nname: x\nsteps:\n  - id: a\n    action: session.get\n    with: {{session_id: {ID}}}\n  - id: b\n    action: session.get\n    with: {{session_id: \"{{{{ steps.a.output.id }}}}\"}}\n"
        ))
        .unwrap();
        let steps = p.all_steps();
        assert!(steps[0].keep_results, "a is read by b");
        assert!(!steps[1].keep_results, "nothing reads b");
    }

    #[test]
    fn nested_steps_cannot_fan_out_and_pipelines_need_for_each() {
        let e = check(&format!(
            "version: 1\nname: x\nsteps:\n  - id: p\n    steps:\n      - id: c\n        action: session.get\n        with: {{session_id: {ID}}}\n"
        ))
        .unwrap_err();
        assert!(e[0].message.contains("need a `for_each`"), "{}", e[0]);
    }

    #[test]
    fn file_base64_validates_and_a_literal_is_decoded_now() {
        let ok = |b64: &str| {
            check(&format!(
                "version: 1\nname: x\nsteps:\n  - id: s\n    action: session.send_file\n    with:\n      session_id: {ID}\n      file_base64: {b64}\n      file_name: a.txt\n"
            ))
        };
        assert!(ok("aGVsbG8=").is_ok());
        assert!(
            ok("\"{{ 'aGVsbG8=' }}\"").is_ok(),
            "templated values are decoded at run time"
        );
        let e = ok("not*base64").unwrap_err();
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(
            e[0].message
                .starts_with("invalid value for `file_base64`: invalid base64"),
            "{}",
            e[0].message
        );
        assert_eq!((e[0].line, e[0].column), (8, 20));
    }
}
