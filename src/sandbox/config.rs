//! Sandbox configuration: the in-process [`SandboxConfig`] and the `wts-playbook sandbox`
//! command-line arguments ([`SandboxArgs`]), plus the `--rate-limit` spec parser.
//!
//! In: flags or a struct literal. Out: a validated `SandboxConfig`. Everything random the
//! sandbox does (seed data, jitter, fault draws) derives from `seed`, so runs repeat.

use std::net::SocketAddr;

use crate::settings::RateSpec;
use std::time::Duration;

/// Default journal capacity: the journal keeps the newest this many API requests (a ring).
pub const DEFAULT_JOURNAL_CAPACITY: usize = 1_000_000;

/// How a sandbox instance behaves. `Default` is seed 42 with every realism knob off.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Seed of the generated data set and of every random draw (jitter, faults).
    pub seed: u64,
    /// `None`: any non-empty bearer token is accepted. `Some(t)`: only `t`.
    pub token: Option<String>,
    /// Fixed latency added to every API request, in milliseconds.
    pub latency_ms: u64,
    /// Random extra latency, uniform in `0..=jitter_ms`.
    pub jitter_ms: u64,
    /// Probability of a 500/502/503 *before* the request touches the state.
    pub fail_rate: f64,
    /// Probability of dropping the connection (no response) *before* the state changes.
    pub drop_rate: f64,
    /// Probability of applying the request and then answering 503.
    pub fail_after_rate: f64,
    /// Probability of applying the request and then dropping the connection.
    pub drop_after_rate: f64,
    /// Sliding windows `(count, window)` enforced together per token; empty = no limit.
    pub rate_limit: Vec<(u32, Duration)>,
    /// Send `Retry-After` (seconds) on 429 answers. The real API does not document it.
    pub retry_after: bool,
    /// How many journal entries to keep (oldest dropped first). 0 disables the journal.
    pub journal_capacity: usize,
    /// Ids a request names must exist (404 otherwise) instead of being materialized.
    pub strict: bool,
    /// Several accounts, `(name, token)`: each token is its own account, with its own seeded
    /// data, ids, journal and rate windows; any other token is a 401. Empty: one account, whose
    /// token is `token` (or any).
    pub accounts: Vec<(String, String)>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            seed: 42,
            token: None,
            latency_ms: 0,
            jitter_ms: 0,
            fail_rate: 0.0,
            drop_rate: 0.0,
            fail_after_rate: 0.0,
            drop_after_rate: 0.0,
            rate_limit: Vec::new(),
            retry_after: false,
            journal_capacity: DEFAULT_JOURNAL_CAPACITY,
            strict: false,
            accounts: Vec::new(),
        }
    }
}

/// The published `api` limit (api-notes "Rate limits"): 200 per 5 s and 1,000 per 5 min.
pub fn api_rate_limit() -> RateWindows {
    windows(&RateSpec::api())
}

/// Parses `api`, `off`, or comma-separated `COUNT/DURATION` windows such as `200/5s,1000/5m`,
/// with the same grammar as the runner's `--rate-limit`.
pub fn parse_rate_limit(spec: &str) -> Result<RateWindows, String> {
    Ok(RateSpec::parse(spec)?
        .as_ref()
        .map_or_else(Vec::new, windows))
}

fn windows(spec: &RateSpec) -> RateWindows {
    spec.windows.iter().map(|w| (w.count, w.per)).collect()
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("`{text}` must be between 0 and 1"))
    }
}

/// Rate-limit windows `(count, window)`. An alias so clap takes the whole list from one value.
pub type RateWindows = Vec<(u32, Duration)>;

/// `wts-playbook sandbox` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct SandboxArgs {
    /// Address to listen on (loopback only; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Seed of the generated account and of every random draw.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Accept only this bearer token (default: any non-empty token).
    #[arg(long)]
    pub token: Option<String>,
    /// Fixed latency per API request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Random extra latency per API request, up to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Probability (0–1) of a 5xx before the request is applied.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub fail_rate: f64,
    /// Probability (0–1) of dropping the connection before the request is applied.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub drop_rate: f64,
    /// Probability (0–1) of applying the request, then answering 503.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub fail_after_rate: f64,
    /// Probability (0–1) of applying the request, then dropping the connection.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub drop_after_rate: f64,
    /// Rate limit: `api` (200/5s,1000/5m), `off`, or windows like `200/5s,1000/5m`.
    #[arg(long, default_value = "off", value_parser = parse_rate_limit)]
    pub rate_limit: RateWindows,
    /// Send `Retry-After` on 429 answers.
    #[arg(long)]
    pub retry_after: bool,
    /// Unknown ids (in the path or the body's id fields) and unknown phone numbers answer 404
    /// instead of being created on first use.
    #[arg(long)]
    pub strict: bool,
    /// Serve one more account: NAME=TOKEN (repeatable). Each account has its own seeded data,
    /// ids, journal and rate windows; `/__sandbox/state?account=NAME` shows one.
    #[arg(long = "account", value_name = "NAME=TOKEN", value_parser = parse_account, conflicts_with = "token")]
    pub account: Vec<(String, String)>,
    /// Serve N accounts named `acct-1` … `acct-N` with tokens `token-acct-1` … (with
    /// `--account`, after those).
    #[arg(long, value_name = "N", conflicts_with = "token", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub accounts: Option<u32>,
}

fn parse_account(text: &str) -> Result<(String, String), String> {
    let (name, token) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected NAME=TOKEN"))?;
    let (name, token) = (name.trim(), token.trim());
    if name.is_empty() || token.is_empty() {
        return Err(format!("`{text}`: expected NAME=TOKEN, both non-empty"));
    }
    Ok((name.to_owned(), token.to_owned()))
}

impl SandboxArgs {
    /// `--account` pairs, then the `--accounts N` generated ones.
    fn account_list(&self) -> Vec<(String, String)> {
        let mut out = self.account.clone();
        for i in 1..=self.accounts.unwrap_or(0) {
            out.push((format!("acct-{i}"), format!("token-acct-{i}")));
        }
        out
    }

    /// The configuration these arguments describe (journal capacity at its default).
    pub fn config(&self) -> SandboxConfig {
        SandboxConfig {
            seed: self.seed,
            token: self.token.clone(),
            latency_ms: self.latency_ms,
            jitter_ms: self.jitter_ms,
            fail_rate: self.fail_rate,
            drop_rate: self.drop_rate,
            fail_after_rate: self.fail_after_rate,
            drop_after_rate: self.drop_after_rate,
            rate_limit: self.rate_limit.clone(),
            retry_after: self.retry_after,
            journal_capacity: DEFAULT_JOURNAL_CAPACITY,
            strict: self.strict,
            accounts: self.account_list(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_specs() {
        assert_eq!(parse_rate_limit("api").unwrap(), api_rate_limit());
        assert!(parse_rate_limit("off").unwrap().is_empty());
        assert_eq!(
            parse_rate_limit("200/5s, 1000/5m").unwrap(),
            vec![
                (200, Duration::from_secs(5)),
                (1000, Duration::from_secs(300))
            ]
        );
        assert_eq!(
            parse_rate_limit("10/s,3/500ms,7/2min,1/h").unwrap(),
            vec![
                (10, Duration::from_secs(1)),
                (3, Duration::from_millis(500)),
                (7, Duration::from_secs(120)),
                (1, Duration::from_secs(3600))
            ]
        );
        assert!(parse_rate_limit("10").is_err());
        assert!(parse_rate_limit("0/s").is_err());
        assert!(parse_rate_limit("5/3x").is_err());
        assert!(parse_rate_limit("5/0s").is_err());
    }

    #[test]
    fn args_parse() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: SandboxArgs,
        }
        let cli = Cli::parse_from([
            "x",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit",
            "5/1s",
            "--fail-rate",
            "0.5",
        ]);
        let cfg = cli.args.config();
        assert_eq!(cfg.rate_limit, vec![(5, Duration::from_secs(1))]);
        assert!((cfg.fail_rate - 0.5).abs() < f64::EPSILON);
        assert!(Cli::try_parse_from(["x", "--fail-rate", "2"]).is_err());
        let cli = Cli::parse_from(["x", "--account", "a=tok-a", "--accounts", "2"]);
        assert_eq!(
            cli.args.config().accounts,
            [
                ("a".to_owned(), "tok-a".to_owned()),
                ("acct-1".to_owned(), "token-acct-1".to_owned()),
                ("acct-2".to_owned(), "token-acct-2".to_owned())
            ]
        );
        assert!(Cli::try_parse_from(["x", "--account", "a"]).is_err());
        assert!(Cli::try_parse_from(["x", "--account", "a=t", "--token", "t"]).is_err());
    }
}
