//! `wts-playbook plan PLAYBOOK` (README "Plan and apply"): the playbook run with the plan mode
//! on (reads sent under the limiter, writes captured), then the plan file written. The helpers
//! here are shared with `apply`.

use std::path::PathBuf;
use std::sync::Arc;

use super::{EXIT_ABORTED, EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::catalog;
use crate::cli::{LogFormat, PlanArgs};
use crate::execute::{dry_run, execute, Client, RateLimiter, RunOptions, RunResult, Transport};
use crate::planfile::capture::{self, Capture, PlanMode};
use crate::planfile::cmd::{header, HeaderParts, SANDBOX_BASE_URL, SANDBOX_TOKEN};
use crate::planfile::{self, Plan, PlanOptions, ShowFormat};
use crate::program::{Program, StepKind, TOKEN_VAR};
use crate::progress::Progress;
use crate::secret::{Redactor, Secret};
use crate::settings::Overrides;

/// The token: the sandbox's, or `WTS_API_TOKEN` (required).
pub(super) fn token(sandbox: bool) -> Result<String, u8> {
    if sandbox {
        return Ok(SANDBOX_TOKEN.to_owned());
    }
    match std::env::var(TOKEN_VAR) {
        Ok(t) if !t.trim().is_empty() => Ok(t),
        _ => {
            eprintln!("error: {TOKEN_VAR} is not set\n  = help: export {TOKEN_VAR}=pn_… (or use --sandbox to rehearse)");
            Err(EXIT_INVALID)
        }
    }
}

pub(super) fn pairs(args: &[String], flag: &str) -> Result<Vec<(String, String)>, u8> {
    super::parse_pairs(args, flag).map_err(|d| super::invalid(&[d]))
}

/// The settings the report and the plan record.
pub(super) fn settings_json(
    program: &Program,
    limit: Option<u64>,
    sandbox: bool,
) -> serde_json::Value {
    serde_json::json!({
        "concurrency": program.settings.concurrency,
        "rate_limit": program.settings.rate_limit_text,
        "routes": program.settings.routes,
        "retry": program.settings.retry,
        "timeout": crate::duration::format_duration(program.settings.timeout),
        "on_error": program.settings.on_error,
        "max_failures": program.settings.max_failures.map(|b| b.to_string()),
        "limit": limit,
        "sandbox": sandbox,
    })
}

pub(super) fn run_options(limit: Option<u64>, mode: PlanMode) -> RunOptions {
    RunOptions {
        failed_csv: None,
        limit,
        resume: None,
        retry_unknown: false,
        preview: 3,
        since: None,
        only_keys: None,
        claimed: std::collections::HashMap::new(),
        observers: Vec::new(),
        interrupt: None,
        plan_mode: Some(mode),
    }
}

/// The client and limiter of a plan or an apply (one limiter for every pass).
pub(super) fn transport_parts(
    program: &Program,
    base_url: &str,
    token: &str,
    redactor: &Redactor,
) -> Result<(Client, RateLimiter), String> {
    let client = Client::new(base_url, &Secret::new(token), program.settings.timeout)
        .map_err(|e| format!("WTS_BASE_URL: {e}; nothing was sent"))?
        .with_max_body(program.settings.max_response_size)
        .with_redactor(redactor.clone());
    Ok((
        client,
        RateLimiter::new(program.settings.rate_limit.clone()),
    ))
}

/// What the reads will spend, from a dry run of the playbook: at least one request per read
/// item, up to `max_pages` per item of a `paginate: all` listing.
fn read_estimate(program: &Program, pre: &RunResult) -> (u64, u64, Vec<String>) {
    let (mut least, mut most, mut open) = (0_u64, 0_u64, Vec::new());
    for s in program.all_steps() {
        let StepKind::Action { spec, .. } = &s.kind else {
            continue;
        };
        if !catalog::is_read(spec) {
            continue;
        }
        let n = pre
            .per_step
            .iter()
            .find(|(id, _)| *id == s.id)
            .map_or(0, |(_, t)| t.planned);
        if pre.open_lists.contains(&s.id) {
            open.push(s.id.clone());
        }
        least += n;
        most += n * s.paginate.map_or(1, |b| u64::from(b.pages));
    }
    (least, most, open)
}

/// `wts-playbook plan PLAYBOOK`.
pub(super) fn plan_cmd(args: &PlanArgs) -> u8 {
    super::init_logging_with(args.quiet, args.verbose, args.log_format);
    if args.accounts.is_some() {
        return super::fleet_plan::plan(args);
    }
    plan_one(args, None).0
}

/// One account's plan (`None`: the single account of `WTS_API_TOKEN`): the exit code, and the
/// writes planned and read requests spent when a plan was written.
pub(super) fn plan_one(
    args: &PlanArgs,
    account: Option<&PlanAccount<'_>>,
) -> (u8, Option<(u64, u64)>) {
    let planning = match Planning::new(args, account) {
        Ok(p) => p,
        Err(code) => return (code, None),
    };
    if let Err(code) = planning.estimate() {
        return (code, None);
    }
    let rt = super::runtime();
    match rt.block_on(planning.read()) {
        Ok((result, cap, named)) => planning.write(&result, cap, named),
        Err(code) => (code, None),
    }
}

/// The playbook's overrides from `plan`'s command line (`--sandbox`: no rate limit unless given).
pub(super) fn overrides_of(args: &PlanArgs) -> Result<Overrides, u8> {
    let inputs = pairs(&args.inputs, "--input")?;
    let vars = pairs(&args.vars, "--var")?;
    let mut overrides = Overrides {
        concurrency: args.concurrency,
        rate_limit: args.rate_limit.clone(),
        routes: args.routes,
        inputs: inputs
            .iter()
            .map(|(k, v)| (k.clone(), PathBuf::from(v)))
            .collect(),
        vars: vars
            .iter()
            .map(|(k, v)| (k.clone(), crate::playbook::parse_scalar(v)))
            .collect(),
        account: None,
    };
    if args.sandbox && args.rate_limit.is_none() {
        overrides.rate_limit = Some("off".into());
    }
    Ok(overrides)
}

/// What an account of `--accounts` gives its plan: its token, base URL, vars and inputs, the
/// file's every token (redacted), and the plan's path.
pub(super) struct PlanAccount<'f> {
    pub(super) account: &'f crate::accounts::Account,
    pub(super) fleet: &'f crate::accounts::Fleet,
    pub(super) secrets: &'f [String],
    pub(super) out: PathBuf,
}

/// One `plan`: the validated program and what the plan file will say about it.
struct Planning<'a> {
    args: &'a PlanArgs,
    /// The account of `--accounts` (its name and base URL).
    account: Option<(String, String)>,
    program: Arc<Program>,
    token: String,
    redactor: Redactor,
    options: PlanOptions,
    ttl: std::time::Duration,
    out_path: PathBuf,
}

impl<'a> Planning<'a> {
    fn new(args: &'a PlanArgs, account: Option<&PlanAccount<'_>>) -> Result<Planning<'a>, u8> {
        let ttl = match crate::duration::parse_duration(&args.expires_in) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                eprintln!("error: --expires-in must be longer than 0");
                return Err(EXIT_INVALID);
            }
            Err(e) => {
                eprintln!("error: --expires-in {}: {e}", args.expires_in);
                return Err(EXIT_INVALID);
            }
        };
        let mut overrides = overrides_of(args)?;
        if let Some(a) = account {
            overrides = super::fleet::account_overrides(&overrides, a.account, a.fleet);
        }
        let program = match super::load_and_validate(&args.playbook, &overrides) {
            Ok(p) => Arc::new(p),
            Err(diags) => return Err(super::invalid(&diags)),
        };
        let token = match account {
            Some(a) => a.account.token.expose().to_owned(),
            None => token(args.sandbox)?,
        };
        let mut secrets = program.secrets.clone();
        secrets.push(token.clone());
        secrets.extend(account.iter().flat_map(|a| a.secrets.iter().cloned()));
        for w in program.warnings() {
            eprintln!("warning: {w}");
        }
        let out_path = account
            .map(|a| a.out.clone())
            .or_else(|| args.out.clone())
            .unwrap_or_else(|| {
                let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
                PathBuf::from("plans").join(format!("{}-{stamp}.plan.jsonl", program.name()))
            });
        let options = PlanOptions {
            concurrency: args.concurrency,
            rate_limit: overrides.rate_limit.clone(),
            routes: args.routes,
            limit: args.limit,
            vars: overrides.vars.iter().cloned().collect(),
            // The account's own input files too: apply makes the same program again.
            inputs: overrides
                .inputs
                .iter()
                .map(|(k, v)| (k.clone(), v.display().to_string()))
                .collect(),
            sandbox: args.sandbox,
            secret_vars: Vec::new(),
        };
        Ok(Planning {
            args,
            account: account.map(|a| {
                let url = a
                    .account
                    .base_url
                    .clone()
                    .unwrap_or_else(super::base_url_setting);
                (a.account.name.clone(), url)
            }),
            program,
            token,
            redactor: Redactor::new(secrets),
            options,
            ttl,
            out_path,
        })
    }

    /// The estimate first: a dry run counts the read items (nothing is sent). A dry run's
    /// placeholders can fail where real data will not: the estimate counts what it can, and the
    /// real pass reports every real problem.
    fn estimate(&self) -> Result<(), u8> {
        let options = RunOptions {
            plan_mode: None,
            preview: 0,
            ..run_options(
                self.args.limit,
                PlanMode::Plan(Arc::new(Capture::default())),
            )
        };
        let (pre, _) = dry_run(
            self.program.clone(),
            None,
            self.redactor.clone(),
            Progress::new(crate::progress::Mode::Quiet),
            options,
        );
        let (least, most, open) = read_estimate(&self.program, &pre);
        let mut estimate = format!("reads: at least {least} request(s)");
        if most > least {
            estimate.push_str(&format!(
                ", at most {most} if every `paginate` listing fills its pages"
            ));
        }
        if !open.is_empty() {
            estimate.push_str(&format!(
                ", plus one per item listed for {}",
                open.join(", ")
            ));
        }
        eprintln!("{estimate}; they count against the rate limit");
        match self.args.read_budget {
            Some(b) if least > b => {
                eprintln!("error: the reads need at least {least} request(s), more than --read-budget {b}; nothing was sent");
                Err(EXIT_INVALID)
            }
            _ => Ok(()),
        }
    }

    /// The playbook run with the reads sent and the writes captured: the run's result, what it
    /// captured, and the base URL the plan names.
    async fn read(&self) -> Result<(RunResult, Capture, String), u8> {
        let sandbox = if self.args.sandbox {
            Some(super::start_sandbox().await?)
        } else {
            None
        };
        let (base_url, named) = if let Some(sb) = &sandbox {
            (sb.url(), SANDBOX_BASE_URL.to_owned())
        } else {
            let url = self
                .account
                .as_ref()
                .map_or_else(super::base_url_setting, |(_, u)| u.clone());
            (url.clone(), url)
        };
        let (client, limiter) =
            transport_parts(&self.program, &base_url, &self.token, &self.redactor).map_err(
                |e| {
                    eprintln!("error: {e}");
                    EXIT_INVALID
                },
            )?;
        let cap = Arc::new(Capture::with_budget(self.args.read_budget));
        let progress = Progress::auto(self.args.quiet, self.args.log_format == LogFormat::Json);
        let (result, _) = execute(
            self.program.clone(),
            Transport::Http { client, limiter },
            None,
            self.redactor.clone(),
            progress,
            run_options(self.args.limit, PlanMode::Plan(cap.clone())),
        )
        .await;
        if let Some(sb) = sandbox {
            sb.shutdown().await;
        }
        let cap = Arc::try_unwrap(cap).unwrap_or_else(|_| panic!("the run has ended"));
        Ok((result, cap, named))
    }

    /// The plan file, and what `plan` prints; no plan when a read or a rendering failed.
    fn write(self, result: &RunResult, cap: Capture, named: String) -> (u8, Option<(u64, u64)>) {
        let reads = cap.reads_sent();
        let redactor = &self.redactor;
        if let Some(reason) = &result.abort_reason {
            eprintln!(
                "error: {}; no plan was written ({reads} read request(s) spent)",
                redactor.redact(reason)
            );
            return (EXIT_ABORTED, None);
        }
        if result.totals.failed + result.totals.unknown > 0 {
            for e in &result.first_errors {
                eprintln!("  {}", redactor.redact(e));
            }
            eprintln!(
                "error: {} item(s) failed while planning; no plan was written ({reads} read request(s) spent)",
                result.totals.failed + result.totals.unknown
            );
            return (EXIT_FAILED, None);
        }
        let (captured, _) = cap.into_parts();
        let writes = capture::planned_writes(&self.program, captured);
        if let Some(message) = repeated_key(&writes) {
            eprintln!(
                "error: {}; no plan was written ({reads} read request(s) spent)\n  = help: apply finds each planned write by its step and key, so a key must name one item: give the list items a unique `id` or `key`",
                redactor.redact(&message)
            );
            return (EXIT_INVALID, None);
        }
        let parts = HeaderParts {
            program_settings: settings_json(&self.program, self.args.limit, self.args.sandbox),
            options: self.options,
            ttl: self.ttl,
            base_url: named,
            token: self.token,
            reads,
        };
        let h = match header(&self.program, parts) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("error: cannot hash the inputs: {e}");
                return (EXIT_INVALID, None);
            }
        };
        let plan = Plan::new(h, writes);
        let out_path = &self.out_path;
        if let Some(dir) = out_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = plan.write(out_path) {
            eprintln!("error: cannot write the plan {}: {e}", out_path.display());
            return (EXIT_INVALID, None);
        }
        let counts = (plan.trailer.writes, reads);
        if let Some((name, _)) = &self.account {
            let steps: Vec<String> = plan
                .trailer
                .steps
                .iter()
                .map(|(s, a)| format!("{s} {}", a.values().sum::<u64>()))
                .collect();
            println!(
                "{name}: {} write(s) planned ({}), {reads} read request(s); plan written to {}",
                plan.trailer.writes,
                if steps.is_empty() {
                    "none".to_owned()
                } else {
                    steps.join(", ")
                },
                out_path.display()
            );
            return (EXIT_OK, Some(counts));
        }
        let mut out = planfile::show(&plan, ShowFormat::Text);
        let skipped: Vec<String> = result
            .per_step
            .iter()
            .filter(|(_, t)| t.skipped > 0)
            .map(|(s, t)| format!("{s} {}", t.skipped))
            .collect();
        if !skipped.is_empty() {
            out.push_str(&format!("\nskipped (when false): {}\n", skipped.join(", ")));
        }
        out.push_str(&format!(
            "\nplan written to {}\napply it with: wts-playbook apply {}\n",
            out_path.display(),
            out_path.display()
        ));
        print!("{}", redactor.redact(&out));
        (EXIT_OK, Some(counts))
    }
}

/// Two planned writes of one step with the same key (a list with a repeated id, a listing read
/// while its pages shifted): apply could not tell them apart.
fn repeated_key(writes: &[crate::planfile::PlannedWrite]) -> Option<String> {
    let mut seen = std::collections::HashMap::new();
    for w in writes {
        if let Some(first) = seen.insert((w.step.as_str(), w.key.as_str()), w.seq) {
            return Some(format!(
                "step `{}`: key `{}` names two planned writes (seq {first} and {})",
                w.step, w.key, w.seq
            ));
        }
    }
    None
}
