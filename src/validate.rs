//! Validation: a loaded [`Playbook`] → a [`Program`] the executor can run, or every problem at
//! once. Checks actions and parameters against the catalog, compiles every template and checks
//! every variable it reads (CSV columns, vars, env, earlier steps only), step ids, settings and
//! input files (a full streaming pass over each CSV).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

use crate::catalog::{self, ActionSpec, Location};
use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::duration::parse_duration;
use crate::inputs::{self, Header, InputSpec};
use crate::playbook::{Loaded, MaxFailures, OnError, Paginate, RetryDef, Step, StepDef};
use crate::settings::{RateSpec, RetryPolicy};
use crate::template::{Env, Expr, Tree};

/// The environment variable holding the API token; never visible to templates.
pub(crate) const TOKEN_VAR: &str = "WTS_API_TOKEN";

/// Command-line overrides applied before validation.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--input NAME=PATH`
    pub inputs: Vec<(String, PathBuf)>,
    /// `--var KEY=VALUE`
    pub vars: Vec<(String, Value)>,
    /// `--concurrency`
    pub concurrency: Option<u32>,
    /// `--rate-limit`
    pub rate_limit: Option<String>,
    /// `--routes`
    pub routes: Option<catalog::Routes>,
}

/// A CSV input, checked.
#[derive(Debug)]
pub struct InputInfo {
    pub spec: InputSpec,
    pub header: Arc<Header>,
    /// Data rows (from the validation pass).
    pub rows: u64,
}

/// A failure budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    Count(u64),
    Percent(f64),
}

impl Budget {
    /// Whether `failed` failures out of `total` items exceed the budget.
    pub fn exceeded(self, failed: u64, total: u64) -> bool {
        match self {
            Budget::Count(n) => failed > n,
            #[expect(clippy::cast_precision_loss, reason = "item counts are far below 2^52")]
            Budget::Percent(p) => total > 0 && (failed as f64) > p / 100.0 * total as f64,
        }
    }

    fn parse(m: &MaxFailures) -> Result<Budget, String> {
        match m {
            MaxFailures::Count(n) => Ok(Budget::Count(*n)),
            MaxFailures::Number(x) => Err(format!(
                "max_failures {x} is out of range: give a whole count of 0 or more, or a \
                 percentage from 0% to 100% such as `5%`"
            )),
            MaxFailures::Text(t) => {
                let t = t.trim();
                if let Some(p) = t.strip_suffix('%') {
                    let p: f64 = p.trim().parse().map_err(|_| {
                        format!("invalid `max_failures`: `{t}` is not a percentage")
                    })?;
                    if !(0.0..=100.0).contains(&p) {
                        return Err(format!(
                            "invalid `max_failures`: `{t}` is not between 0% and 100%"
                        ));
                    }
                    Ok(Budget::Percent(p))
                } else {
                    t.parse()
                        .map(Budget::Count)
                        .map_err(|_| {
                            format!("invalid `max_failures`: expected a count (`10`) or a percentage of the step's items (`5%`), got `{t}`")
                        })
                }
            }
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Count(n) => write!(f, "{n}"),
            Budget::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Settings in force for one step (run-wide defaults, overridden by the step).
#[derive(Debug, Clone)]
pub struct StepSettings {
    pub concurrency: u32,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    pub on_error: OnError,
    pub max_failures: Option<Budget>,
    /// A step's own limit, enforced on top of the run-wide one.
    pub rate_limit: Option<RateSpec>,
    /// The route family the step's action calls.
    pub routes: catalog::Routes,
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

/// A `routes` setting: `documented` or `node`; anything else is reported at its position.
fn routes_setting(
    loaded: &Loaded,
    at: &str,
    text: Option<&str>,
    diags: &mut Vec<Diagnostic>,
) -> Option<catalog::Routes> {
    let text = text?;
    let all = [catalog::Routes::Documented, catalog::Routes::Node];
    if let Some(r) = all.into_iter().find(|r| r.as_str() == text) {
        return Some(r);
    }
    let mut d = loaded.at_value(
        at,
        format!("unknown route family `{text}`: expected `documented` or `node`"),
    );
    if let Some(h) = did_you_mean(text, all.iter().map(|r| r.as_str())) {
        d = d.with_hint(h);
    } else {
        d = d.with_hint(
            "`documented`: the published v2/v3 routes; `node`: the routes the n8n node calls",
        );
    }
    diags.push(d);
    None
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

/// Run-wide settings.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub concurrency: u32,
    pub rate_limit: Option<RateSpec>,
    pub rate_limit_text: String,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    pub on_error: OnError,
    pub max_failures: Option<Budget>,
    /// The longest `Retry-After` honoured; a longer ask waits this long.
    pub max_retry_wait: Duration,
    /// The largest response body read, in bytes.
    pub max_response_size: u64,
    /// Consecutive items failed on connection failures that end the run.
    pub unreachable_after: u32,
    /// Bounds of `paginate: all`.
    pub max_pages: u32,
    pub max_items: u64,
    /// Whether a `paginate: all` listing cut by the bounds is accepted (else the step fails).
    pub accept_partial: bool,
    /// `--routes`, else `settings.routes`, else `documented`.
    pub routes: catalog::Routes,
}

/// Ranges of the numeric settings (item 12 of the hardening: every number has its range).
pub(crate) mod ranges {
    use std::time::Duration;
    pub(crate) const CONCURRENCY: (u32, u32) = (1, 1024);
    pub(crate) const ATTEMPTS: (u32, u32) = (1, 100);
    pub(crate) const TIMEOUT: (Duration, Duration) =
        (Duration::from_millis(10), Duration::from_secs(3600));
    pub(crate) const BACKOFF: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(600));
    pub(crate) const MAX_BACKOFF: (Duration, Duration) =
        (Duration::ZERO, Duration::from_secs(3600));
    pub(crate) const MAX_RETRY_WAIT: (Duration, Duration) =
        (Duration::ZERO, Duration::from_secs(3600));
    pub(crate) const MAX_RESPONSE_SIZE: (u64, u64) = (1024, 1 << 30);
    pub(crate) const UNREACHABLE_AFTER: (u32, u32) = (1, 1_000_000);
    pub(crate) const MAX_PAGES: (u32, u32) = (1, 100_000);
    pub(crate) const MAX_ITEMS: (u64, u64) = (1, 10_000_000);
}

/// Defaults of the settings above.
pub(crate) const DEFAULT_MAX_RETRY_WAIT: Duration = Duration::from_secs(300);
pub(crate) const DEFAULT_UNREACHABLE_AFTER: u32 = 10;
pub(crate) const DEFAULT_MAX_PAGES: u32 = 100;
pub(crate) const DEFAULT_MAX_ITEMS: u64 = 5000;

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

    /// Every step, nested ones included, in order.
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

/// The variable roots a template may read.
const ROOTS: &[&str] = &["item", "row", "vars", "env", "inputs", "steps"];
/// What a fan-out result offers (`steps.ID.items[i].…`, `item.…` over results).
const RESULT_FIELDS: &[&str] = &["row", "status", "output", "error", "key", "index", "item"];
const STEP_FIELDS: &[&str] = &["output", "items", "succeeded", "failed", "unchanged"];

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

/// Validates a loaded playbook. `check_rows` makes a full pass over every CSV (validate and run
/// do; it also counts the rows).
pub(crate) fn validate(loaded: Loaded, overrides: &Overrides) -> Result<Program, Vec<Diagnostic>> {
    let env = Env::new();
    let mut diags = Vec::new();
    let pb = &loaded.playbook;

    // Inputs.
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

    // Vars: --var overrides, then split plain values from templates.
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

    // Secrets.
    let environment = environment_map();
    let mut secrets = Vec::new();
    for (i, name) in pb.settings.secrets.iter().enumerate() {
        match vars.get(name) {
            Some(_) if template_vars.contains_key(name) => {
                // A secret filled from env: render it now with env only.
                let ctx =
                    minijinja::context! { env => minijinja::Value::from_serialize(&environment) };
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

    // Run-wide settings.
    let s = &pb.settings;
    let defaults = RunSettings {
        concurrency: overrides.concurrency.or(s.concurrency).unwrap_or(8),
        rate_limit: None,
        rate_limit_text: overrides
            .rate_limit
            .clone()
            .or_else(|| s.rate_limit.clone())
            .unwrap_or_else(|| "api".into()),
        retry: retry_policy(
            &loaded,
            "settings.retry",
            s.retry.as_ref(),
            &RetryPolicy::default(),
            &mut diags,
        ),
        timeout: ranged_duration(
            &loaded,
            "settings.timeout",
            s.timeout.as_deref(),
            Duration::from_secs(30),
            ranges::TIMEOUT,
            &mut diags,
        ),
        max_retry_wait: ranged_duration(
            &loaded,
            "settings.max_retry_wait",
            s.max_retry_wait.as_deref(),
            DEFAULT_MAX_RETRY_WAIT,
            ranges::MAX_RETRY_WAIT,
            &mut diags,
        ),
        max_response_size: match &s.max_response_size {
            None => crate::settings::DEFAULT_MAX_BODY,
            Some(m) => match parse_size(m).and_then(|n| in_range(n, ranges::MAX_RESPONSE_SIZE)) {
                Ok(n) => n,
                Err(e) => {
                    diags.push(loaded.at_value("settings.max_response_size", e).with_hint(
                        "a number of bytes, or e.g. `512KB`, `8MB` (1 KB = 1024 bytes)",
                    ));
                    crate::settings::DEFAULT_MAX_BODY
                }
            },
        },
        unreachable_after: ranged_number(
            &loaded,
            "settings.unreachable_after",
            s.unreachable_after,
            DEFAULT_UNREACHABLE_AFTER,
            ranges::UNREACHABLE_AFTER,
            &mut diags,
        ),
        max_pages: ranged_number(
            &loaded,
            "settings.max_pages",
            s.max_pages,
            DEFAULT_MAX_PAGES,
            ranges::MAX_PAGES,
            &mut diags,
        ),
        max_items: ranged_number(
            &loaded,
            "settings.max_items",
            s.max_items,
            DEFAULT_MAX_ITEMS,
            ranges::MAX_ITEMS,
            &mut diags,
        ),
        accept_partial: s.partial_listing == Some(crate::playbook::PartialListing::Accept),
        on_error: s.on_error.unwrap_or(OnError::Continue),
        max_failures: s
            .max_failures
            .as_ref()
            .and_then(|m| match Budget::parse(m) {
                Ok(b) => Some(b),
                Err(e) => {
                    diags.push(loaded.at_value("settings.max_failures", e));
                    None
                }
            }),
        routes: overrides
            .routes
            .or_else(|| routes_setting(&loaded, "settings.routes", s.routes.as_deref(), &mut diags))
            .unwrap_or_default(),
    };
    let mut defaults = defaults;
    if let Err(e) = in_range(defaults.concurrency, ranges::CONCURRENCY) {
        let d = if overrides.concurrency.is_some() {
            Diagnostic::file(&loaded.path, format!("--concurrency: {e}"))
        } else {
            loaded.at_value("settings.concurrency", format!("concurrency: {e}"))
        };
        diags.push(d);
        defaults.concurrency = defaults
            .concurrency
            .clamp(ranges::CONCURRENCY.0, ranges::CONCURRENCY.1);
    }
    match RateSpec::parse(&defaults.rate_limit_text) {
        Ok(r) => defaults.rate_limit = r,
        Err(e) => {
            let d = if overrides.rate_limit.is_some() {
                Diagnostic::file(&loaded.path, format!("--rate-limit: {e}"))
            } else {
                loaded.at_value("settings.rate_limit", format!("invalid `rate_limit`: {e}"))
            };
            diags.push(d.with_hint("use `api`, `off`, or windows like `2/s` or `50/10s,900/5m`"));
        }
    }

    let all_ids = collect_ids(&pb.steps);
    let mut v = V {
        loaded: &loaded,
        env,
        inputs: &inputs,
        vars: vars.keys().cloned().collect(),
        environment: &environment,
        all_ids,
        diags,
        defaults: defaults.clone(),
        referenced: HashSet::new(),
        template_vars: &template_vars,
        vars_read: Some(HashSet::new()),
        secret_vars: secret_var_names(&pb.settings.secrets, &template_vars),
    };

    // Var templates may read row/item/env/steps; they are checked where a step uses them.
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
                let plan = v.step(step, &path, &scope, &mut ids, false);
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
                    if let Some(plan) = v.step(
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
    // A --var must name a var the playbook declares under `vars:` or reads (`vars.NAME`);
    // anything else is a typo whose value would be silently ignored.
    let read = v.vars_read.take();
    for (name, _) in &overrides.vars {
        let declared = pb.vars.contains_key(name);
        if declared || read.as_ref().is_none_or(|r| r.contains(name)) {
            continue;
        }
        let mut known: Vec<&str> = pb.vars.keys().map(String::as_str).collect();
        if let Some(r) = &read {
            known.extend(r.iter().map(String::as_str));
        }
        let mut d = Diagnostic::file(
            &loaded.path,
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
        v.diags.push(d);
    }
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

/// The process environment as a map, less the token.
pub(crate) fn environment_map() -> serde_json::Map<String, Value> {
    std::env::vars()
        .filter(|(k, _)| k != TOKEN_VAR)
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

fn count_rows(spec: &InputSpec) -> u64 {
    inputs::count_rows(spec).unwrap_or(0)
}

fn duration_setting(
    loaded: &Loaded,
    path: &str,
    text: Option<&str>,
    default: Duration,
    diags: &mut Vec<Diagnostic>,
) -> Duration {
    match text {
        None => default,
        Some(t) => parse_duration(t).unwrap_or_else(|e| {
            diags.push(
                loaded
                    .at_value(
                        path,
                        format!("invalid `{}`: {e}", path.rsplit('.').next().unwrap_or(path)),
                    )
                    .with_hint("e.g. `500ms`, `30s`, `5m`"),
            );
            default
        }),
    }
}

fn retry_policy(
    loaded: &Loaded,
    path: &str,
    def: Option<&RetryDef>,
    base: &RetryPolicy,
    diags: &mut Vec<Diagnostic>,
) -> RetryPolicy {
    let Some(def) = def else { return *base };
    let mut p = *base;
    if let Some(a) = def.attempts {
        if a == 0 {
            diags.push(loaded.at_value(
                &format!("{path}.attempts"),
                "attempts must be at least 1 (the first try counts)",
            ));
        } else if let Err(e) = in_range(a, ranges::ATTEMPTS) {
            diags.push(loaded.at_value(&format!("{path}.attempts"), format!("attempts: {e}")));
        } else {
            p.attempts = a;
        }
    }
    p.backoff = ranged_duration(
        loaded,
        &format!("{path}.backoff"),
        def.backoff.as_deref(),
        p.backoff,
        ranges::BACKOFF,
        diags,
    );
    p.max_backoff = ranged_duration(
        loaded,
        &format!("{path}.max_backoff"),
        def.max_backoff.as_deref(),
        p.max_backoff.max(p.backoff),
        ranges::MAX_BACKOFF,
        diags,
    );
    if p.backoff > p.max_backoff {
        diags.push(loaded.at_value(
            &format!("{path}.backoff"),
            format!(
                "backoff ({}) is larger than max_backoff ({})",
                crate::duration::format_duration(p.backoff),
                crate::duration::format_duration(p.max_backoff)
            ),
        ));
    }
    p
}

/// The secret var names and every template var that reads one, however indirectly.
fn secret_var_names(secrets: &[String], template_vars: &IndexMap<String, Tree>) -> HashSet<String> {
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

/// The mask of a parameter's template tree; `None` when no part of it reads a secret.
fn secret_mask(t: &Tree, secret_vars: &HashSet<String>) -> Option<SecretMask> {
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

/// `n` if it is within `(min, max)`, else the message saying the range.
fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    n: T,
    (min, max): (T, T),
) -> Result<T, String> {
    if n < min || n > max {
        Err(format!(
            "{n} is out of range: it must be between {min} and {max}"
        ))
    } else {
        Ok(n)
    }
}

/// A whole-number setting: `default` when absent; out of range is reported at its value.
fn ranged_number<T: PartialOrd + std::fmt::Display + Copy>(
    loaded: &Loaded,
    path: &str,
    value: Option<T>,
    default: T,
    range: (T, T),
    diags: &mut Vec<Diagnostic>,
) -> T {
    match value.map(|v| in_range(v, range)) {
        None => default,
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            let name = path.rsplit('.').next().unwrap_or(path);
            diags.push(loaded.at_value(path, format!("{name}: {e}")));
            default
        }
    }
}

/// A duration setting within `(min, max)`.
fn ranged_duration(
    loaded: &Loaded,
    path: &str,
    text: Option<&str>,
    default: Duration,
    (min, max): (Duration, Duration),
    diags: &mut Vec<Diagnostic>,
) -> Duration {
    let before = diags.len();
    let d = duration_setting(loaded, path, text, default, diags);
    if diags.len() > before || (min..=max).contains(&d) {
        return d;
    }
    let name = path.rsplit('.').next().unwrap_or(path);
    let f = crate::duration::format_duration;
    let mut diag = loaded.at_value(
        path,
        format!(
            "{name} {} is out of range: it must be between {} and {}",
            f(d),
            f(min),
            f(max)
        ),
    );
    if d.is_zero() && name == "timeout" {
        diag = diag.with_hint("a zero timeout would fail every request");
    }
    diags.push(diag);
    default
}

/// `8MB`, `512 KB`, `1GB`, `1000` (bytes); KB = 1024 bytes.
fn parse_size(m: &crate::playbook::MaxSize) -> Result<u64, String> {
    let t = match m {
        crate::playbook::MaxSize::Bytes(n) => return Ok(*n),
        crate::playbook::MaxSize::Text(t) => t.trim(),
    };
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (t[..split].trim(), t[split..].trim());
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "kib" | "k" => 1 << 10,
        "mb" | "mib" | "m" => 1 << 20,
        "gb" | "gib" | "g" => 1 << 30,
        _ => {
            return Err(format!(
                "`{t}`: unknown size unit `{unit}`; use B, KB, MB or GB"
            ))
        }
    };
    let x: f64 = num.parse().map_err(|_| format!("`{t}` is not a size"))?;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "finite, non-negative and checked against u64::MAX first"
    )]
    if x.is_finite() && x >= 0.0 && x * (mult as f64) < u64::MAX as f64 {
        Ok((x * mult as f64) as u64)
    } else {
        Err(format!("`{t}` is not a size"))
    }
}

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl V<'_> {
    fn step(
        &mut self,
        step: &Step,
        path: &str,
        outer: &Scope,
        ids: &mut HashMap<String, String>,
        nested: bool,
    ) -> Option<StepPlan> {
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

        // Settings in force.
        let d = &self.defaults;
        let mut diags = Vec::new();
        let settings = StepSettings {
            routes: routes_setting(
                loaded,
                &format!("{path}.routes"),
                step.routes.as_deref(),
                &mut diags,
            )
            .unwrap_or(d.routes),
            concurrency: step.concurrency.unwrap_or(d.concurrency).max(1),
            retry: retry_policy(
                loaded,
                &format!("{path}.retry"),
                step.retry.as_ref(),
                &d.retry,
                &mut diags,
            ),
            timeout: ranged_duration(
                loaded,
                &format!("{path}.timeout"),
                step.timeout.as_deref(),
                d.timeout,
                ranges::TIMEOUT,
                &mut diags,
            ),
            on_error: step.on_error.unwrap_or(d.on_error),
            max_failures: match &step.max_failures {
                None => d.max_failures,
                Some(m) => Budget::parse(m).map_or_else(
                    |e| {
                        diags.push(loaded.at_value(&format!("{path}.max_failures"), e));
                        None
                    },
                    Some,
                ),
            },
            rate_limit: step
                .rate_limit
                .as_deref()
                .and_then(|r| match RateSpec::parse(r) {
                    Ok(r) => r,
                    Err(e) => {
                        diags.push(loaded.at_value(
                            &format!("{path}.rate_limit"),
                            format!("invalid `rate_limit`: {e}"),
                        ));
                        None
                    }
                }),
        };
        if let Some(Err(e)) = step.concurrency.map(|c| in_range(c, ranges::CONCURRENCY)) {
            diags
                .push(loaded.at_value(&format!("{path}.concurrency"), format!("concurrency: {e}")));
        }
        self.diags.extend(diags);

        // Source.
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
                        ok = false;
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
                                ok = false;
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

        // when
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
                    if !self.check_vars(&vars, &scope, &wp) {
                        ok = false;
                    }
                    when = Some(Arc::new(e));
                }
                Err(e) => {
                    self.diags
                        .push(loaded.at_value(&wp, format!("invalid `when` expression: {e}")));
                    ok = false;
                }
            }
        }

        // Kind.
        let mut vars_used = BTreeSet::new();
        let kind = match (&step.action, step.steps.is_empty()) {
            (Some(_), false) => {
                self.diags.push(
                    loaded
                        .at_key(
                            &format!("{path}.steps"),
                            "a step has either an `action` or nested `steps`, not both",
                        )
                        .with_hint("move the action into a nested step"),
                );
                return None;
            }
            (None, true) => {
                self.diags.push(
                    loaded
                        .at_key(
                            &format!("{path}.id"),
                            format!("step `{}` has no `action`", step.id),
                        )
                        .with_hint("add `action: …` (see `wts-playbook actions`)"),
                );
                return None;
            }
            (None, false) => {
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
                    if let Some(plan) =
                        self.step(c, &format!("{path}.steps.{k}"), &inner, ids, true)
                    {
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
                        ok = false;
                    }
                }
                StepKind::Pipeline(children)
            }
            (Some(action), true) => {
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
                let routes = settings.routes;
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
                        ok = false;
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
                    ok = false;
                }
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
                            self.diags.push(loaded.at_value(
                                &at,
                                format!("template error in `{name}`: {}", e.message),
                            ));
                            ok = false;
                        }
                        Ok(tree) => {
                            if tree.is_literal() {
                                // Literal values are converted now: a wrong type is found before any run.
                                if let Some(param) = spec.param(name) {
                                    let checked =
                                        catalog::convert(param, value).and_then(|v| {
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
                                        self.diags.push(loaded.at_value(
                                            &vp,
                                            format!("invalid value for `{name}`: {e}"),
                                        ));
                                        ok = false;
                                    }
                                }
                            } else {
                                // Each template of a nested value is checked at its own
                                // position (`query.token`), not at the enclosing mapping.
                                for (at, vars) in template_leaves(&tree, &vp) {
                                    if !self.check_vars(&vars, &scope, &at) {
                                        ok = false;
                                    }
                                    vars_used.extend(vars);
                                }
                            }
                            with.push((name.clone(), tree));
                        }
                    }
                }
                if step.paginate.is_some() && !spec.paginated {
                    self.diags.push(loaded.at_key(
                        &format!("{path}.paginate"),
                        format!("`{action}` is not a list action; `paginate` does not apply"),
                    ));
                    ok = false;
                }
                StepKind::Action { spec, with }
            }
        };
        if let Some(w) = &when {
            vars_used.extend(w.variables());
        }
        let paginate = match &step.paginate {
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
        };
        // Template vars this step reads, and what they read in turn.
        let mut used_vars = Vec::new();
        for v in &vars_used {
            if let Some(name) = v
                .strip_prefix("vars.")
                .map(|r| r.split('.').next().unwrap_or(r))
            {
                if let Some(t) = self.template_vars.get(name) {
                    if !used_vars.contains(&name.to_owned()) {
                        used_vars.push(name.to_owned());
                        let vp = format!("vars.{name}");
                        if !self.check_vars(&t.variables(), &scope, &vp) {
                            ok = false;
                        }
                    }
                }
            }
        }
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

    /// Checks every variable path read by a template against its scope. Returns false if any is
    /// wrong (each problem is reported at `at`).
    fn check_vars(&mut self, vars: &BTreeSet<String>, scope: &Scope, at: &str) -> bool {
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

    fn check_var(&mut self, var: &str, scope: &Scope) -> Result<(), (String, Option<String>)> {
        let parts: Vec<&str> = var.split('.').collect();
        let root = parts[0];
        let columns = |input: &Option<String>| -> Option<Vec<String>> {
            input
                .as_ref()
                .and_then(|n| self.inputs.get(n))
                .map(|i| i.header.columns.clone())
        };
        let check_column =
            |col: &str, input: &Option<String>| -> Result<(), (String, Option<String>)> {
                let Some(cols) = columns(input) else {
                    return Ok(());
                };
                if cols.iter().any(|c| c == col) {
                    Ok(())
                } else {
                    let name = input.as_deref().unwrap_or("");
                    Err((
                        format!("undefined variable `{var}`: input `{name}` has no column `{col}`"),
                        Some(
                            did_you_mean(col, cols.iter().map(String::as_str))
                                .unwrap_or_else(|| format!("columns: {}", cols.join(", "))),
                        ),
                    ))
                }
            };
        match root {
            "row" | "item" => {
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
            "vars" => match parts.get(1) {
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
                    did_you_mean(name, self.vars.iter().map(String::as_str)).or_else(|| {
                        Some("define it under `vars:` or pass `--var NAME=VALUE`".into())
                    }),
                )),
            },
            "env" => match parts.get(1) {
                None => Err((
                    "templates cannot read the whole environment; name a variable (`env.NAME`)"
                        .into(),
                    None,
                )),
                Some(&TOKEN_VAR) => Err((
                    format!("`env.{TOKEN_VAR}` is not available to templates"),
                    Some("the token is sent by the runner itself and never rendered".into()),
                )),
                Some(name) if self.environment.contains_key(*name) => Ok(()),
                Some(name) => Err((format!("environment variable `{name}` is not set"), None)),
            },
            "inputs" => match parts.get(1) {
                None => Ok(()),
                Some(name) if self.loaded.playbook.inputs.contains_key(*name) => Ok(()),
                Some(name) => Err((
                    format!("undefined variable `{var}`: there is no input `{name}`"),
                    did_you_mean(name, self.loaded.playbook.inputs.keys().map(String::as_str)),
                )),
            },
            "steps" => {
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
            other => {
                let hint = did_you_mean(other, ROOTS.iter().copied())
                    .unwrap_or_else(|| format!("templates can read {}", ROOTS.join(", ")));
                Err((format!("undefined variable `{other}`"), Some(hint)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::load_str;

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
    fn budgets_parse_counts_and_percentages() {
        assert_eq!(
            Budget::parse(&MaxFailures::Text("5%".into())),
            Ok(Budget::Percent(5.0))
        );
        assert_eq!(Budget::parse(&MaxFailures::Count(3)), Ok(Budget::Count(3)));
        assert!(Budget::parse(&MaxFailures::Text("lots".into())).is_err());
        assert!(Budget::Percent(5.0).exceeded(6, 100));
        assert!(!Budget::Percent(5.0).exceeded(5, 100));
        assert!(Budget::Count(2).exceeded(3, 1000));
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
