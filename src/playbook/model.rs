//! The playbook as written: serde types for the playbook format (README, "What it does"). They are also the source of
//! `schemas/playbook.schema.json` (schemars), so every key a user can write is declared here.

use std::path::PathBuf;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A playbook file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// Format version; only `1` exists.
    pub version: u32,
    /// Name used in reports and default report file names.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// CSV inputs, by name (`for_each: inputs.NAME`).
    #[serde(default)]
    pub inputs: IndexMap<String, InputDef>,
    /// Variables (`vars.NAME`); string values may be templates evaluated per item.
    #[serde(default)]
    pub vars: IndexMap<String, Value>,
    #[serde(default)]
    pub settings: Settings,
    pub steps: Vec<StepDef>,
}

/// One CSV input.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputDef {
    /// Path of the CSV file, relative to the playbook file.
    pub csv: PathBuf,
    /// Column whose value names a row in reports and `--resume` (default: the row number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Field delimiter, one character (default `,`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
}

/// What to do when an item fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Report the failure and go on with the other items.
    Continue,
    /// Start no new item; finish the ones in flight; end the run.
    Stop,
}

/// Retry policy for 429s, connection failures and (for retry-safe actions) 5xx and timeouts.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryDef {
    /// Total tries, the first included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Base of the exponential backoff, e.g. `1s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<String>,
    /// Cap of one backoff delay, e.g. `60s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff: Option<String>,
}

/// A failure budget: a count (`10`) or a percentage of the step's items (`"5%"`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum MaxFailures {
    Count(u64),
    /// Any other number (negative, fractional): refused by validation with the range, rather
    /// than by the loader with serde's "did not match any variant".
    Number(f64),
    Text(String),
}

/// Run-wide defaults; each one except `secrets` can also be set on a step.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Requests in flight at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// `api` (200/5s and 1000/5m), `off`, or windows such as `2/s` or `50/10s,900/5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryDef>,
    /// Per-request timeout, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<MaxFailures>,
    /// Names of `vars` whose values are redacted everywhere, like the token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Route family: `documented` (the published v2/v3 successors; default) or `node` (the
    /// legacy routes the n8n node calls). `--routes` overrides it; a step's own `routes` wins.
    // Kept as text so that a wrong value is reported at its own position (validate.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::catalog::Routes>")]
    pub routes: Option<String>,
    /// Longest wait a server may ask for with `Retry-After` (default `5m`; longer asks wait this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retry_wait: Option<String>,
    /// Largest response body read, e.g. `8MB` (default) or a number of bytes; a larger one fails
    /// the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_size: Option<MaxSize>,
    /// After this many items in a row failed because the server could not be reached (each after
    /// its retries), the run ends: aborted, exit 3 (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_after: Option<u32>,
    /// `paginate: all` reads at most this many pages (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pages: Option<u32>,
    /// `paginate: all` reads at most this many items (default 5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// When `max_pages` or `max_items` cuts a `paginate: all` listing: `fail` the step (default)
    /// or `accept` the partial listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_listing: Option<PartialListing>,
}

/// A size: a number of bytes, or text such as `512KB`, `8MB` (KB = 1024 bytes).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum MaxSize {
    Bytes(u64),
    Text(String),
}

/// What a cut `paginate: all` listing does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartialListing {
    /// The step fails, saying where the listing was cut.
    Fail,
    /// The step succeeds with the pages read; a warning says where it was cut.
    Accept,
}

/// `paginate: all` or a maximum page count.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Paginate {
    Pages(u32),
    All(PaginateAll),
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaginateAll {
    All,
}

/// A top-level entry of `steps`: one step, or a group of steps that run at the same time.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum StepDef {
    Parallel(ParallelDef),
    Step(Box<Step>),
}

/// `parallel:` — steps that run at the same time; the run continues when all are done.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParallelDef {
    pub parallel: Vec<Step>,
}

/// One step.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique id, `[a-z][a-z0-9_]*`.
    pub id: String,
    /// A catalog action (`wts-playbook actions`) or `http`. Absent on a pipeline step (`steps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Fan-out: `inputs.NAME`, `steps.ID.succeeded`, `steps.ID.output.items`, or any list expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<String>,
    /// An expression; false skips the item (reported as skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Value>,
    /// The action's parameters; strings are templates.
    #[serde(default, rename = "with", skip_serializing_if = "IndexMap::is_empty")]
    pub with: IndexMap<String, Value>,
    /// On a list action: follow `hasMorePages` (`all`, or at most this many pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paginate: Option<Paginate>,
    /// A per-item pipeline (with `for_each`): these steps run in order for each item.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<MaxFailures>,
    /// This step's route family (`documented` or `node`), over `settings.routes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::catalog::Routes>")]
    pub routes: Option<String>,
}

/// Keys accepted at each level (the loader checks them all and suggests the nearest).
pub(crate) const TOP_KEYS: &[&str] = &[
    "version",
    "name",
    "description",
    "inputs",
    "vars",
    "settings",
    "steps",
];
pub(crate) const INPUT_KEYS: &[&str] = &["csv", "key", "delimiter"];
pub(crate) const SETTINGS_KEYS: &[&str] = &[
    "concurrency",
    "rate_limit",
    "retry",
    "timeout",
    "on_error",
    "max_failures",
    "secrets",
    "max_retry_wait",
    "max_response_size",
    "unreachable_after",
    "max_pages",
    "max_items",
    "partial_listing",
    "routes",
];
pub(crate) const RETRY_KEYS: &[&str] = &["attempts", "backoff", "max_backoff"];
pub(crate) const STEP_KEYS: &[&str] = &[
    "id",
    "action",
    "description",
    "for_each",
    "when",
    "with",
    "paginate",
    "steps",
    "concurrency",
    "rate_limit",
    "retry",
    "timeout",
    "on_error",
    "max_failures",
    "routes",
];
