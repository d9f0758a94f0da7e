//! Command-line types (clap) only; `app` gives them meaning.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run declarative YAML playbooks against the WTS Chat API.
#[derive(Debug, Parser)]
#[command(name = "wts-playbook", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Execute (or, with --dry-run, preview) a playbook.
    Run(RunArgs),
    /// Read for real, render every write without sending it, and save the plan.
    Plan(PlanArgs),
    /// Print a plan for a person, a pull request (Markdown) or a tool (JSON).
    Show {
        plan: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: ShowFormat,
    },
    /// Send exactly the planned writes (passing the plan is the approval).
    Apply(ApplyArgs),
    /// Check playbooks without running them; no network.
    Validate {
        #[arg(required = true)]
        playbooks: Vec<PathBuf>,
        /// Route family to check against: documented (default) or node (overrides
        /// `settings.routes`).
        #[arg(long, value_enum)]
        routes: Option<crate::catalog::Routes>,
        /// Check each playbook once per account of this accounts file (its vars, inputs and
        /// split rows); no token is needed.
        #[arg(long, value_name = "FILE")]
        accounts: Option<PathBuf>,
    },
    /// List the action catalog, or one action's parameters and output.
    Actions {
        action: Option<String>,
        /// `text` (wrapped to the terminal) or `json`.
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Print a JSON Schema.
    Schema { which: SchemaKind },
    /// Serve the simulated WTS account over HTTP (loopback only).
    Sandbox(crate::sandbox::SandboxArgs),
    /// Render a JSON report as an HTML page, `JUnit` XML and/or Markdown.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The JSON report of a run (finished or cut short); with `--merge`, the reports to join.
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// Join the reports of a run over several accounts (its shards' reports, or account
    /// parts) into one report at OUT, every item naming its account; then write the views of
    /// OUT, if asked.
    #[arg(long, value_name = "OUT")]
    pub merge: Option<PathBuf>,
    #[command(flatten)]
    pub views: ViewArgs,
}

/// The human views of a report (`-` writes to standard output).
#[derive(Debug, Args, Default, Clone)]
pub struct ViewArgs {
    /// Write a self-contained HTML page (no network needed to open it).
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// Write `JUnit` XML for CI (one suite per step, one case per failed or unknown item).
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Write a short Markdown summary (for a pull request or `$GITHUB_STEP_SUMMARY`).
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaKind {
    Playbook,
    Report,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

/// How `show` prints a plan.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ShowFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "command-line flags are bools"
)]
pub struct RunArgs {
    pub playbook: PathBuf,
    /// Render every request and write the report; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace an input's file: NAME=PATH (repeatable).
    #[arg(long = "input", value_name = "NAME=PATH")]
    pub inputs: Vec<String>,
    /// Override a var: KEY=VALUE (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// Where to write the report (default reports/NAME-TIMESTAMP.json).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Requests in flight at most (overrides settings.concurrency).
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// `api`, `off`, or windows COUNT/DURATION, comma-separated (overrides `settings.rate_limit`).
    #[arg(long, value_name = "SPEC")]
    pub rate_limit: Option<String>,
    /// Route family: documented (the published v2/v3 routes; default) or node (the routes the
    /// n8n node calls). Overrides `settings.routes`; a step's own `routes` wins.
    #[arg(long, value_enum)]
    pub routes: Option<crate::catalog::Routes>,
    /// Run against the built-in simulated account (no token needed).
    #[arg(long)]
    pub sandbox: bool,
    /// Only the first N items of each fan-out (a canary).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Continue an earlier run from its report: what it finished is not sent again but flows on
    /// to later steps. May be given several times (a canary's report and the full run's); the
    /// newest record of an item wins.
    #[arg(long, value_name = "REPORT")]
    pub resume: Vec<PathBuf>,
    /// With --resume: send again the items whose outcome was unknown and cannot be verified.
    #[arg(long)]
    pub retry_unknown: bool,
    /// With --resume: run again only the rows whose newest record is of this error class
    /// (`STATUS · API_KEY · KIND`, as the HTML and Markdown views name them); every other row
    /// is left as the earlier report has it.
    #[arg(long, value_name = "CLASS", requires = "resume")]
    pub only_class: Option<String>,
    /// Replace an existing --report even if its run did not finish (by default that is refused:
    /// resume it instead).
    #[arg(long)]
    pub overwrite: bool,
    /// With --resume: accept a report of a different playbook.
    #[arg(long)]
    pub force: bool,
    /// Write the failed and unknown items' input rows, with the error, to this CSV (feed it back
    /// with `--input NAME=PATH`).
    #[arg(long, value_name = "PATH")]
    pub failed_csv: Option<PathBuf>,
    /// Run the playbook once per account of this CSV (`name`, `token_env` or `token_file`,
    /// optional `base_url`, `input.NAME` files and vars), all accounts side by side, each at
    /// its own rate limit, into one report.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["sandbox", "only_class", "failed_csv"])]
    pub accounts: Option<PathBuf>,
    /// With --accounts: only the accounts whose name hashes to shard I of N (1 ≤ I ≤ N), so N
    /// machines can share a fleet with no coordination.
    #[arg(long, value_name = "I/N", requires = "accounts")]
    pub shard: Option<String>,
    /// No confirmation prompt.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Only errors and the final summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// More logs (repeat for more).
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// At the end of the run, also write these views of the report.
    #[command(flatten)]
    pub views: ViewArgs,
}

/// `plan PLAYBOOK`: the `run` options that shape what is planned, and the plan's own.
#[derive(Debug, Args)]
pub struct PlanArgs {
    pub playbook: PathBuf,
    /// Where to write the plan (default plans/NAME-TIMESTAMP.plan.jsonl).
    #[arg(long, value_name = "PLAN")]
    pub out: Option<PathBuf>,
    /// Stop before the reads would spend more than this many requests (the estimate is shown
    /// first; reads count against the rate limit).
    #[arg(long, value_name = "N")]
    pub read_budget: Option<u64>,
    /// How long the plan can be applied (default 24h).
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub expires_in: String,
    /// Replace an input's file: NAME=PATH (repeatable).
    #[arg(long = "input", value_name = "NAME=PATH")]
    pub inputs: Vec<String>,
    /// Override a var: KEY=VALUE (repeatable). A secret var's value is not kept in the plan:
    /// give it again to apply.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// Requests in flight at most (overrides settings.concurrency; apply uses it too).
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// `api`, `off`, or windows COUNT/DURATION (overrides `settings.rate_limit`; apply uses it too).
    #[arg(long, value_name = "SPEC")]
    pub rate_limit: Option<String>,
    /// Route family: documented or node (overrides `settings.routes`).
    #[arg(long, value_enum)]
    pub routes: Option<crate::catalog::Routes>,
    /// Plan against the built-in simulated account (apply it with the same).
    #[arg(long)]
    pub sandbox: bool,
    /// Only the first N items of each fan-out.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// One plan per account of this CSV (as `run --accounts`), each written to
    /// `--out DIR` as `DIR/NAME.plan.jsonl`.
    #[arg(long, value_name = "FILE", conflicts_with = "sandbox")]
    pub accounts: Option<PathBuf>,
    /// With --accounts: only the accounts whose name hashes to shard I of N.
    #[arg(long, value_name = "I/N", requires = "accounts")]
    pub shard: Option<String>,
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// `apply PLAN`.
#[derive(Debug, Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "command-line flags are bools"
)]
pub struct ApplyArgs {
    /// The plan file; with --accounts, the directory of `NAME.plan.jsonl` plans.
    pub plan: PathBuf,
    /// Apply each account's plan `PLAN/NAME.plan.jsonl` with that account's token and base
    /// URL (as `run --accounts`), side by side, into one report.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["resume", "failed_csv"])]
    pub accounts: Option<PathBuf>,
    /// With --accounts: only the accounts whose name hashes to shard I of N.
    #[arg(long, value_name = "I/N", requires = "accounts")]
    pub shard: Option<String>,
    /// Where to write the report (default reports/NAME-TIMESTAMP.json).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Continue an interrupted apply of the same plan from its report (repeatable).
    #[arg(long, value_name = "REPORT")]
    pub resume: Vec<PathBuf>,
    /// With --resume: send again the writes whose outcome was unknown and cannot be verified.
    #[arg(long)]
    pub retry_unknown: bool,
    /// Replace an existing --report even if its run did not finish.
    #[arg(long)]
    pub overwrite: bool,
    /// Stop before the first write when more than this share of the planned writes drifted
    /// (`10%`, or a count).
    #[arg(long, value_name = "PERCENT", default_value = "10%")]
    pub max_drift: String,
    /// Skip the drift check (the listing is not read again before the writes).
    #[arg(long)]
    pub no_refresh: bool,
    /// A secret var's value (the plan keeps only its name): KEY=VALUE (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// Write the failed and unknown items' input rows, with the error, to this CSV.
    #[arg(long, value_name = "PATH")]
    pub failed_csv: Option<PathBuf>,
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub views: ViewArgs,
}
