//! One function per subcommand, and the only place that maps outcomes to exit codes:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | everything succeeded (or the dry run / validation found no problem) |
//! | 1 | the run finished but some items failed |
//! | 2 | the playbook, its inputs or the command line are invalid; nothing was sent |
//! | 3 | the run was aborted (authentication refused, interrupted, failure budget exceeded) |
//! | 4 | `apply` refused the plan (changed, expired, another base URL or account, unknown format, past `--max-drift`); no write was sent |

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::{
    Cli, Command, LogFormat, OutputFormat, ReportArgs, RunArgs, SchemaKind, ViewArgs,
};
use crate::diagnostic::{did_you_mean, render_all, Diagnostic};
use crate::playbook::{self};
use crate::program::Program;
use crate::report::{self, Outcome};
use crate::secret::Redactor;
use crate::settings::Overrides;
use crate::validate;
use crate::{catalog, schema, views};

mod apply;
mod fleet;
mod fleet_plan;
mod fleet_view;
mod plan;
mod preflight;
mod resume;
mod run;
use preflight::{ask, decide, preflight, Confirm, Preflight, Writes};
use resume::{check_output_paths, load_resume, note_claim, verifiable_steps};
use run::run_cmd;

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_INVALID: u8 = 2;
pub const EXIT_ABORTED: u8 = 3;
/// `apply` refused the plan (changed, expired, another base URL or account, unknown format, or
/// past `--max-drift`): no write was sent.
pub const EXIT_REFUSED: u8 = 4;

/// The exit code of a finished run.
pub fn exit_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Completed => EXIT_OK,
        Outcome::Failed => EXIT_FAILED,
        Outcome::Aborted => EXIT_ABORTED,
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Validate {
            playbooks,
            routes,
            accounts,
        } => validate_cmd(&playbooks, routes, accounts.as_deref()),
        Command::Actions { action, format } => actions_cmd(action.as_deref(), format),
        Command::Schema { which } => {
            let v = match which {
                SchemaKind::Playbook => schema::playbook_schema(),
                SchemaKind::Report => report::report_schema(),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&v).expect("schema serializes")
            );
            EXIT_OK
        }
        Command::Sandbox(args) => u8::try_from(runtime().block_on(crate::sandbox::serve_cli(args)))
            .unwrap_or(EXIT_INVALID),
        Command::Run(args) => run_cmd(&args),
        Command::Report(args) => report_cmd(&args),
        Command::Show { plan, format } => show_cmd(&plan, format),
        Command::Plan(args) => plan::plan_cmd(&args),
        Command::Apply(args) => apply::apply_cmd(&args),
    }
}

/// `show PLAN`: the plan, checked like `apply` checks it (a changed plan is refused, exit 4).
fn show_cmd(path: &Path, format: crate::cli::ShowFormat) -> u8 {
    match crate::planfile::read(path) {
        Ok(plan) => {
            print!("{}", crate::planfile::show(&plan, format));
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_REFUSED
        }
    }
}

fn view_outputs(v: &ViewArgs) -> views::Outputs {
    views::Outputs {
        html: v.html.clone(),
        junit: v.junit.clone(),
        markdown: v.markdown.clone(),
    }
}

/// `run --html/--junit/--markdown`: the views of the finished report, listed after the summary.
/// A view that cannot be written is an error message, not a different exit code.
fn write_views(report_path: &Path, args: &ViewArgs) {
    let outputs = view_outputs(args);
    if outputs.is_empty() {
        return;
    }
    match views::write_all(report_path, &outputs) {
        Ok(written) => {
            for p in written {
                println!("view     {}", p.display());
            }
        }
        Err(e) => eprintln!("error: the report's views: {e}"),
    }
}

/// `wts-playbook report REPORT --html/--junit/--markdown`: 0 written, 2 bad report or no view.
fn report_cmd(args: &ReportArgs) -> u8 {
    let outputs = view_outputs(&args.views);
    if let Some(out) = &args.merge {
        return fleet::merge_cmd(&args.reports, out, &outputs);
    }
    let [report_path] = args.reports.as_slice() else {
        eprintln!("error: one report at a time (or --merge OUT REPORT...)");
        return EXIT_INVALID;
    };
    if outputs.is_empty() {
        eprintln!("error: nothing to write\n  = help: pass --html PATH, --junit PATH and/or --markdown PATH");
        return EXIT_INVALID;
    }
    views_cmd(report_path, &outputs)
}

/// Writes the views of `report_path` and names them: 0, or 2 when the report is bad.
fn views_cmd(report_path: &Path, outputs: &views::Outputs) -> u8 {
    match views::write_all(report_path, outputs) {
        Ok(written) => {
            for p in written {
                eprintln!("wrote {}", p.display());
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_INVALID
        }
    }
}

/// Writes the report's footer: the totals it counts (the sends abandoned in flight included), or
/// `None` when it cannot be written (which is said).
fn write_footer(
    writer: report::ReportWriter,
    finished_at: jiff::Timestamp,
    outcome: Outcome,
    facts: report::RunFacts,
    path: &Path,
) -> Option<report::Totals> {
    match writer.finish_with(finished_at, outcome, facts) {
        Ok(footer) => Some(footer.totals),
        Err(e) => {
            eprintln!("error: cannot finish the report {}: {e}", path.display());
            None
        }
    }
}

/// The built-in sandbox on a free loopback port, for `--sandbox`; a failure is said, and is
/// exit code 3.
async fn start_sandbox() -> Result<crate::sandbox::Sandbox, u8> {
    crate::sandbox::Sandbox::start(
        "127.0.0.1:0".parse().expect("loopback address"),
        crate::sandbox::SandboxConfig::default(),
    )
    .await
    .map_err(|e| {
        eprintln!("error: cannot start the sandbox: {e}");
        EXIT_ABORTED
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn validate_cmd(paths: &[PathBuf], routes: Option<catalog::Routes>, accounts: Option<&Path>) -> u8 {
    let mut code = EXIT_OK;
    let overrides = Overrides {
        routes,
        ..Overrides::default()
    };
    for path in paths {
        if let Some(file) = accounts {
            code = code.max(fleet::validate(path, file, &overrides));
            continue;
        }
        match load_and_validate(path, &overrides) {
            Ok(program) => {
                // Every row's values too: the requests are planned (nothing is sent).
                let program = Arc::new(program);
                let redactor = Redactor::new(program.secrets.clone());
                if let Preflight::Unplannable(message) = preflight(&program, None, &redactor, None)
                {
                    eprintln!("error: {}: {}", path.display(), redactor.redact(&message));
                    code = EXIT_INVALID;
                    continue;
                }
                for w in program.warnings() {
                    eprintln!("warning: {}: {w}", path.display());
                }
                let rows: u64 = program.inputs.values().map(|i| i.rows).sum();
                println!(
                    "ok: {} ({} steps, {} input rows)",
                    path.display(),
                    program.all_steps().len(),
                    rows
                );
            }
            Err(diags) => {
                eprint!("{}", render_all(&diags));
                code = EXIT_INVALID;
            }
        }
    }
    code
}

fn actions_cmd(action: Option<&str>, format: OutputFormat) -> u8 {
    let json = |v: &serde_json::Value| {
        println!(
            "{}",
            serde_json::to_string_pretty(v).expect("JSON serializes")
        );
    };
    match action {
        None => {
            match format {
                OutputFormat::Text => {
                    // On a terminal, fitted to it; piped, the full table (one line per action).
                    let width = if std::io::stdout().is_terminal() {
                        textwrap::termwidth()
                    } else {
                        usize::MAX
                    };
                    print!("{}", catalog::list_for_width(width));
                }
                OutputFormat::Json => json(&catalog::list_json()),
            }
            EXIT_OK
        }
        Some(name) => {
            if let Some(spec) = catalog::lookup(name) {
                match format {
                    OutputFormat::Text => print!("{}", catalog::describe(spec)),
                    OutputFormat::Json => json(&catalog::describe_json(spec)),
                }
                EXIT_OK
            } else {
                let hint = did_you_mean(name, catalog::names())
                    .unwrap_or_else(|| "`wts-playbook actions` lists them".into());
                eprintln!("error: unknown action `{name}`\n  = help: {hint}");
                EXIT_INVALID
            }
        }
    }
}

/// Loads and validates a playbook with command-line overrides. Every problem comes back at
/// once: a wrong value found while loading does not stop the checks of the rest of the file.
pub fn load_and_validate(path: &Path, overrides: &Overrides) -> Result<Program, Vec<Diagnostic>> {
    let (loaded, mut diags) = playbook::load_partial_file(path);
    let Some(loaded) = loaded else {
        return Err(diags);
    };
    if diags.is_empty() {
        return validate::validate(loaded, overrides);
    }
    if let Err(more) = validate::validate(loaded, overrides) {
        // The later checks' problems, less any at a position already reported.
        for d in more {
            if !diags
                .iter()
                .any(|e| e.file == d.file && e.line == d.line && e.column == d.column)
            {
                diags.push(d);
            }
        }
        diags.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    }
    Err(diags)
}

fn parse_pairs(args: &[String], flag: &str) -> Result<Vec<(String, String)>, Diagnostic> {
    args.iter()
        .map(|a| {
            a.split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                .ok_or_else(|| {
                    Diagnostic::file(
                        Path::new("<command line>"),
                        format!("{flag} {a}: expected NAME=VALUE"),
                    )
                })
        })
        .collect()
}

fn init_logging(args: &RunArgs) {
    init_logging_with(args.quiet, args.verbose, args.log_format);
}

/// Logging to stderr at the level `-q` / `-v` choose, as text or JSON.
fn init_logging_with(quiet: bool, verbose: u8, log_format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("WTS_PLAYBOOK_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("wts_playbook={level}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Through the crate's stderr writer: above the progress bars, never a panic when stderr
        // is closed (`2>&-`, a reader gone).
        .with_writer(crate::output::LogWriter)
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if log_format == LogFormat::Json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn invalid(diags: &[Diagnostic]) -> u8 {
    eprint!("{}", render_all(diags));
    EXIT_INVALID
}

/// `WTS_BASE_URL`, or the API's address.
fn base_url_setting() -> String {
    std::env::var("WTS_BASE_URL").unwrap_or_else(|_| "https://api.wts.chat".into())
}
