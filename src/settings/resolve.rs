//! The one resolution of settings: the run's ([`RunSettings::resolve`]: `--concurrency`,
//! `--rate-limit` and `--routes` over the playbook's `settings`, over the defaults) and each
//! step's ([`RunSettings::for_step`]: the step's own value of a setting, else the run's). A step's
//! `rate_limit` is the one exception: it does not replace the run's limit, it is enforced on top
//! of it (the run's limiter is the account's, shared by every step). Every problem is reported
//! at its position in the playbook, all at once.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::values::{in_range, parse_size, ranged_duration as duration_value, DurationText};
use super::{RateSpec, RetryPolicy, DEFAULT_MAX_BODY};
use crate::catalog;
use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::playbook::{Loaded, MaxFailures, OnError, PartialListing, RetryDef, Step};

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

    pub(crate) fn parse(m: &MaxFailures) -> Result<Budget, String> {
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
pub(crate) const DEFAULT_CONCURRENCY: u32 = 8;
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_MAX_RETRY_WAIT: Duration = Duration::from_secs(300);
pub(crate) const DEFAULT_UNREACHABLE_AFTER: u32 = 10;
pub(crate) const DEFAULT_MAX_PAGES: u32 = 100;
pub(crate) const DEFAULT_MAX_ITEMS: u64 = 5000;

impl RunSettings {
    /// The run's settings: a command-line flag over the playbook's `settings`, over the
    /// default. Each problem is pushed to `diags` (at the flag, or at the setting's value) and
    /// the default is kept in its place.
    pub(crate) fn resolve(
        loaded: &Loaded,
        overrides: &Overrides,
        diags: &mut Vec<Diagnostic>,
    ) -> RunSettings {
        let s = &loaded.playbook.settings;
        let mut run = RunSettings {
            concurrency: overrides
                .concurrency
                .or(s.concurrency)
                .unwrap_or(DEFAULT_CONCURRENCY),
            rate_limit: None,
            rate_limit_text: overrides
                .rate_limit
                .clone()
                .or_else(|| s.rate_limit.clone())
                .unwrap_or_else(|| "api".into()),
            retry: retry_policy(
                loaded,
                "settings.retry",
                s.retry.as_ref(),
                &RetryPolicy::default(),
                diags,
            ),
            timeout: ranged_duration(
                loaded,
                "settings.timeout",
                s.timeout.as_deref(),
                DEFAULT_TIMEOUT,
                ranges::TIMEOUT,
                diags,
            ),
            max_retry_wait: ranged_duration(
                loaded,
                "settings.max_retry_wait",
                s.max_retry_wait.as_deref(),
                DEFAULT_MAX_RETRY_WAIT,
                ranges::MAX_RETRY_WAIT,
                diags,
            ),
            max_response_size: response_size(loaded, diags),
            unreachable_after: ranged_number(
                loaded,
                "settings.unreachable_after",
                s.unreachable_after,
                DEFAULT_UNREACHABLE_AFTER,
                ranges::UNREACHABLE_AFTER,
                diags,
            ),
            max_pages: ranged_number(
                loaded,
                "settings.max_pages",
                s.max_pages,
                DEFAULT_MAX_PAGES,
                ranges::MAX_PAGES,
                diags,
            ),
            max_items: ranged_number(
                loaded,
                "settings.max_items",
                s.max_items,
                DEFAULT_MAX_ITEMS,
                ranges::MAX_ITEMS,
                diags,
            ),
            accept_partial: s.partial_listing == Some(PartialListing::Accept),
            on_error: s.on_error.unwrap_or(OnError::Continue),
            max_failures: s
                .max_failures
                .as_ref()
                .and_then(|m| budget(loaded, "settings.max_failures", m, diags)),
            routes: overrides
                .routes
                .or_else(|| routes_setting(loaded, "settings.routes", s.routes.as_deref(), diags))
                .unwrap_or_default(),
        };
        run.check_limits(loaded, overrides, diags);
        run
    }

    /// The concurrency's range and the rate limit's windows, said at the flag that set them
    /// when one did.
    fn check_limits(
        &mut self,
        loaded: &Loaded,
        overrides: &Overrides,
        diags: &mut Vec<Diagnostic>,
    ) {
        if let Err(e) = in_range(self.concurrency, ranges::CONCURRENCY) {
            let d = if overrides.concurrency.is_some() {
                Diagnostic::file(&loaded.path, format!("--concurrency: {e}"))
            } else {
                loaded.at_value("settings.concurrency", format!("concurrency: {e}"))
            };
            diags.push(d);
            self.concurrency = self
                .concurrency
                .clamp(ranges::CONCURRENCY.0, ranges::CONCURRENCY.1);
        }
        match RateSpec::parse(&self.rate_limit_text) {
            Ok(r) => self.rate_limit = r,
            Err(e) => {
                let d = if overrides.rate_limit.is_some() {
                    Diagnostic::file(&loaded.path, format!("--rate-limit: {e}"))
                } else {
                    loaded.at_value("settings.rate_limit", format!("invalid `rate_limit`: {e}"))
                };
                diags.push(
                    d.with_hint("use `api`, `off`, or windows like `2/s` or `50/10s,900/5m`"),
                );
            }
        }
    }

    /// The settings in force for `step` (at `path` in the playbook): the step's own value of
    /// each setting, else the run's (so a step's `routes` wins over `--routes` too, and a step's
    /// `retry` keys replace the run's one by one). A step's `rate_limit` is its own limit,
    /// enforced on top of the run's.
    pub(crate) fn for_step(
        &self,
        loaded: &Loaded,
        path: &str,
        step: &Step,
        diags: &mut Vec<Diagnostic>,
    ) -> StepSettings {
        let settings = StepSettings {
            routes: routes_setting(
                loaded,
                &format!("{path}.routes"),
                step.routes.as_deref(),
                diags,
            )
            .unwrap_or(self.routes),
            concurrency: step.concurrency.unwrap_or(self.concurrency).max(1),
            retry: retry_policy(
                loaded,
                &format!("{path}.retry"),
                step.retry.as_ref(),
                &self.retry,
                diags,
            ),
            timeout: ranged_duration(
                loaded,
                &format!("{path}.timeout"),
                step.timeout.as_deref(),
                self.timeout,
                ranges::TIMEOUT,
                diags,
            ),
            on_error: step.on_error.unwrap_or(self.on_error),
            max_failures: match &step.max_failures {
                None => self.max_failures,
                Some(m) => budget(loaded, &format!("{path}.max_failures"), m, diags),
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
        settings
    }
}

/// A `max_failures` value; a wrong one is reported at `at`.
fn budget(
    loaded: &Loaded,
    at: &str,
    m: &MaxFailures,
    diags: &mut Vec<Diagnostic>,
) -> Option<Budget> {
    match Budget::parse(m) {
        Ok(b) => Some(b),
        Err(e) => {
            diags.push(loaded.at_value(at, e));
            None
        }
    }
}

/// `settings.max_response_size`, within its range.
fn response_size(loaded: &Loaded, diags: &mut Vec<Diagnostic>) -> u64 {
    let Some(m) = &loaded.playbook.settings.max_response_size else {
        return DEFAULT_MAX_BODY;
    };
    match parse_size(m).and_then(|n| in_range(n, ranges::MAX_RESPONSE_SIZE)) {
        Ok(n) => n,
        Err(e) => {
            diags.push(
                loaded
                    .at_value("settings.max_response_size", e)
                    .with_hint("a number of bytes, or e.g. `512KB`, `8MB` (1 KB = 1024 bytes)"),
            );
            DEFAULT_MAX_BODY
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

/// A `retry:` (at `path`) over `base`, through the one parser ([`RetryPolicy::parse_over`]);
/// each problem is reported at its key.
fn retry_policy(
    loaded: &Loaded,
    path: &str,
    def: Option<&RetryDef>,
    base: &RetryPolicy,
    diags: &mut Vec<Diagnostic>,
) -> RetryPolicy {
    let Some(def) = def else { return *base };
    let text = |t: &Option<String>| t.clone().map(DurationText::Text);
    let (backoff, max_backoff) = (text(&def.backoff), text(&def.max_backoff));
    let (policy, problems) =
        RetryPolicy::parse_over(base, def.attempts, backoff.as_ref(), max_backoff.as_ref());
    for (key, (message, hint)) in problems {
        let mut d = loaded.at_value(&format!("{path}.{key}"), message);
        if let Some(h) = hint {
            d = d.with_hint(h);
        }
        diags.push(d);
    }
    policy
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

/// A duration setting within `range`: `default` when absent; a wrong value is reported at its
/// position and the default kept.
fn ranged_duration(
    loaded: &Loaded,
    path: &str,
    text: Option<&str>,
    default: Duration,
    range: (Duration, Duration),
    diags: &mut Vec<Diagnostic>,
) -> Duration {
    let name = path.rsplit('.').next().unwrap_or(path);
    let value = text.map(|t| DurationText::Text(t.to_owned()));
    duration_value(name, value.as_ref(), default, range).unwrap_or_else(|(message, hint)| {
        let mut d = loaded.at_value(path, message);
        if let Some(h) = hint {
            d = d.with_hint(h);
        }
        diags.push(d);
        default
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::{load_str, StepDef};

    fn loaded(settings: &str, step: &str) -> Loaded {
        let src = format!(
            "version: 1\nname: x\nsettings: {settings}\nsteps:\n  - id: s\n    action: session.list\n{step}"
        );
        load_str(std::path::Path::new("p.yaml"), src).expect("loads")
    }

    fn first_step(loaded: &Loaded) -> &Step {
        match &loaded.playbook.steps[0] {
            StepDef::Step(s) => s,
            StepDef::Parallel(_) => unreachable!("a plain step"),
        }
    }

    /// The run's settings and the first step's, with every problem.
    fn resolve(
        settings: &str,
        step: &str,
        overrides: &Overrides,
    ) -> (RunSettings, StepSettings, Vec<Diagnostic>) {
        let loaded = loaded(settings, step);
        let mut diags = Vec::new();
        let run = RunSettings::resolve(&loaded, overrides, &mut diags);
        let step = run.for_step(&loaded, "steps.0", first_step(&loaded), &mut diags);
        (run, step, diags)
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
    fn a_long_backoff_raises_the_cap_in_the_playbook_and_the_serde_form_alike() {
        let (run, step, diags) = resolve("{ retry: { backoff: 2m } }", "", &Overrides::default());
        assert!(diags.is_empty(), "{diags:#?}");
        assert_eq!(run.retry.backoff, Duration::from_secs(120));
        assert_eq!(
            run.retry.max_backoff,
            Duration::from_secs(120),
            "not capped at 60 s"
        );
        assert_eq!(
            step.retry, run.retry,
            "a step without `retry` has the run's"
        );
        let serde: RetryPolicy = serde_json::from_value(serde_json::json!({"backoff": "2m"}))
            .expect("the serde form parses");
        assert_eq!(serde, run.retry, "one parser, one meaning");
        // The same ranges in both forms.
        let (_, _, diags) = resolve("{ retry: { attempts: 101 } }", "", &Overrides::default());
        assert_eq!(diags.len(), 1, "{diags:#?}");
        assert!(diags[0]
            .message
            .starts_with("attempts: 101 is out of range"));
        let serde = serde_json::from_value::<RetryPolicy>(serde_json::json!({"attempts": 101}));
        assert!(serde
            .unwrap_err()
            .to_string()
            .contains("attempts: 101 is out of range"));
    }

    #[test]
    fn a_steps_retry_replaces_the_runs_key_by_key() {
        let (run, step, diags) = resolve(
            "{ retry: { attempts: 3, backoff: 2s } }",
            "    retry: { attempts: 7 }\n",
            &Overrides::default(),
        );
        assert!(diags.is_empty(), "{diags:#?}");
        assert_eq!(
            (run.retry.attempts, run.retry.backoff),
            (3, Duration::from_secs(2))
        );
        assert_eq!(
            step.retry,
            RetryPolicy {
                attempts: 7,
                backoff: Duration::from_secs(2),
                max_backoff: Duration::from_secs(60),
            }
        );
    }

    #[test]
    fn flags_win_over_settings_and_a_steps_own_value_over_both() {
        let flags = Overrides {
            concurrency: Some(4),
            routes: Some(catalog::Routes::Node),
            rate_limit: Some("5/s".into()),
            ..Overrides::default()
        };
        let settings = "{ concurrency: 2, routes: documented, rate_limit: 10/s, timeout: 5s }";
        let (run, step, diags) = resolve(settings, "", &flags);
        assert!(diags.is_empty(), "{diags:#?}");
        assert_eq!(run.concurrency, 4);
        assert_eq!(run.routes, catalog::Routes::Node);
        assert_eq!(run.rate_limit_text, "5/s");
        assert_eq!((step.concurrency, step.routes), (4, catalog::Routes::Node));
        assert_eq!(step.timeout, Duration::from_secs(5));
        assert_eq!(
            step.rate_limit, None,
            "no limit of its own: only the run's applies"
        );

        let own =
            "    concurrency: 1\n    routes: documented\n    timeout: 1s\n    rate_limit: 1/s\n";
        let (run, step, diags) = resolve(settings, own, &flags);
        assert!(diags.is_empty(), "{diags:#?}");
        assert_eq!(
            (step.concurrency, step.routes),
            (1, catalog::Routes::Documented)
        );
        assert_eq!(step.timeout, Duration::from_secs(1));
        // A step's rate limit is its own, on top of the run's: the run's stays as it was.
        assert_eq!(
            step.rate_limit.map(|r| r.to_string()).as_deref(),
            Some("1/s")
        );
        assert_eq!(
            run.rate_limit.map(|r| r.to_string()).as_deref(),
            Some("5/s")
        );
    }

    #[test]
    fn every_problem_is_reported_at_its_key_and_the_default_kept() {
        let (run, step, diags) = resolve(
            "{ retry: { backoff: 20m }, timeout: 0s }",
            "    retry: { attempts: 0, backoff: soon }\n",
            &Overrides::default(),
        );
        let messages: Vec<(usize, &str)> =
            diags.iter().map(|d| (d.line, d.message.as_str())).collect();
        assert_eq!(
            messages,
            [
                (
                    3,
                    "backoff 20m is out of range: it must be between 0s and 10m"
                ),
                (
                    3,
                    "timeout 0s is out of range: it must be between 10ms and 1h"
                ),
                (7, "attempts must be at least 1 (the first try counts)"),
                (
                    7,
                    "invalid `backoff`: `soon`: expected a number before `soon` (e.g. `1soon`)"
                ),
            ],
        );
        assert_eq!(run.retry, RetryPolicy::default());
        assert_eq!(run.timeout, DEFAULT_TIMEOUT);
        assert_eq!(step.retry, RetryPolicy::default());
    }
}
