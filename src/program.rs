//! The program: a validated playbook, the model every later stage consumes.
//!
//! playbook (load) → validate → **program** → plan → execute → report. [`crate::validate`]
//! checks a loaded playbook and builds a [`Program`]; [`crate::plan`] renders its steps' items
//! and [`crate::execute`] sends them. Nothing here checks or sends anything: these are the
//! validated steps ([`StepPlan`]) grouped in [`Stage`]s, where their items come from
//! ([`Source`]), the checked inputs, the vars and secrets, and the settings in force
//! ([`crate::settings`]).

use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

use crate::catalog::{self, ActionSpec};
use crate::inputs::{Header, InputSpec};
use crate::playbook::Loaded;
use crate::settings::{RunSettings, StepSettings};
use crate::template::{Env, Expr, Tree};

/// The environment variable holding the API token; never visible to templates.
pub(crate) const TOKEN_VAR: &str = "WTS_API_TOKEN";

/// A CSV input, checked.
#[derive(Debug)]
pub struct InputInfo {
    pub spec: InputSpec,
    pub header: Arc<Header>,
    /// Data rows (from the validation pass).
    pub rows: u64,
}

/// Where a step's items come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// No fan-out: one item.
    Single,
    /// `inputs.NAME`: streamed CSV rows.
    Input(String),
    /// Any other expression giving a list; `row_input` is the CSV input its items' rows come from.
    Expr {
        expr: Arc<Expr>,
        row_input: Option<String>,
    },
}

/// What a step does per item.
#[derive(Debug, Clone)]
pub enum StepKind {
    Action {
        spec: &'static ActionSpec,
        with: Vec<(String, Tree)>,
    },
    /// A per-item pipeline of nested steps.
    Pipeline(Vec<StepPlan>),
}

/// How far `paginate` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageBound {
    /// At most this many pages (`paginate: N`, or `max_pages` for `all`).
    pub pages: u32,
    /// For `paginate: all`: at most this many items (`max_items`). `None` for `paginate: N`,
    /// which asks for N pages and is never "cut".
    pub items: Option<u64>,
}

/// A validated step.
#[derive(Debug, Clone)]
pub struct StepPlan {
    pub id: String,
    /// Its path in the YAML (`steps.2`), for messages.
    pub yaml_path: String,
    pub kind: StepKind,
    pub source: Source,
    pub when: Option<Arc<Expr>>,
    /// Step ids the `when` expression reads (a dry run cannot decide it when they did not run).
    pub when_reads_steps: bool,
    /// How far to follow `hasMorePages` (`paginate`), on list actions.
    pub paginate: Option<PageBound>,
    pub settings: StepSettings,
    /// Template vars this step's templates read (rendered per item).
    pub vars_used: Vec<String>,
    /// Whether a later step reads this step's results (they are then kept in memory).
    pub keep_results: bool,
    /// `with` parameters whose templates read a secret var (directly or through another var):
    /// their rendered values are redacted as a whole, whatever filter changed their form.
    pub secret_params: Vec<(String, SecretMask)>,
}

impl StepPlan {
    /// Whether this step (or a nested one) sends requests that change state.
    pub fn changes_state(&self) -> bool {
        match &self.kind {
            StepKind::Action { spec, .. } => spec.method != catalog::Method::Get,
            StepKind::Pipeline(children) => children.iter().any(StepPlan::changes_state),
        }
    }

    pub fn fans_out(&self) -> bool {
        !matches!(self.source, Source::Single)
    }
}

/// A stage of the run: one step, or steps that run at the same time.
#[derive(Debug, Clone)]
pub enum Stage {
    One(Box<StepPlan>),
    Parallel(Vec<StepPlan>),
}

impl Stage {
    pub fn steps(&self) -> &[StepPlan] {
        match self {
            Stage::One(s) => std::slice::from_ref(s.as_ref()),
            Stage::Parallel(v) => v,
        }
    }
}

/// A validated playbook, ready to plan and execute.
#[derive(Debug)]
pub struct Program {
    pub loaded: Loaded,
    pub env: Env,
    pub inputs: IndexMap<String, InputInfo>,
    /// Plain (non-template) vars.
    pub static_vars: serde_json::Map<String, Value>,
    /// Vars whose value is a template, rendered per item.
    pub template_vars: IndexMap<String, Tree>,
    /// Values to redact everywhere (the token is added by the runner).
    pub secrets: Vec<String>,
    pub settings: RunSettings,
    pub stages: Vec<Stage>,
    /// The process environment, less the token.
    pub environment: serde_json::Map<String, Value>,
}

impl Program {
    pub fn name(&self) -> &str {
        &self.loaded.playbook.name
    }

    /// Warnings that do not stop a run: an input with a header but no rows (its steps run no
    /// item).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, info) in &self.inputs {
            if info.rows > 0 {
                continue;
            }
            let steps: Vec<String> = self
                .all_steps()
                .iter()
                .filter(|s| matches!(&s.source, Source::Input(n) if n == name))
                .map(|s| format!("`{}`", s.id))
                .collect();
            let what = if steps.is_empty() {
                String::new()
            } else {
                format!(": step {} runs no item", steps.join(", "))
            };
            out.push(format!(
                "input `{name}` ({}) has a header but no rows{what}",
                info.spec.path.display()
            ));
        }
        out
    }

    /// Every step, nested ones included, in order.
    pub fn all_steps(&self) -> Vec<&StepPlan> {
        fn walk<'a>(s: &'a StepPlan, out: &mut Vec<&'a StepPlan>) {
            out.push(s);
            if let StepKind::Pipeline(c) = &s.kind {
                for c in c {
                    walk(c, out);
                }
            }
        }
        let mut out = Vec::new();
        for st in &self.stages {
            st.steps().iter().for_each(|s| walk(s, &mut out));
        }
        out
    }
}

/// Which parts of a parameter's rendered value come from templates that read a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretMask {
    /// The whole value (a template or expression that read a secret).
    All,
    /// Nothing of this part.
    Nothing,
    /// These keys of a map (the others read no secret).
    Map(Vec<(String, SecretMask)>),
    /// Each element of a list, by position.
    List(Vec<SecretMask>),
}

/// The process environment as a map, less the token.
pub(crate) fn environment_map() -> serde_json::Map<String, Value> {
    std::env::vars()
        .filter(|(k, _)| k != TOKEN_VAR)
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}
