//! Settings: what a run and each of its steps run under, and the one place they are parsed.
//!
//! playbook (load) → validate → program → plan → execute → report. The rate windows
//! (`rate_limit:`, `--rate-limit`, [`RateSpec`]), the retry policy (`retry:`, [`RetryPolicy`],
//! one parser for the playbook and the serde form) and the resolution of the run's settings and
//! each step's ([`RunSettings`], [`StepSettings`]: flags over `settings`, a step's own value
//! over the run's) live here. Validation calls the resolution, the program carries its result,
//! the executor enforces it and the sandbox reads the same window grammar; nothing here depends
//! on a stage.

use std::fmt;
use std::time::Duration;

use crate::duration::{format_duration, parse_duration};

mod resolve;
mod retry;
mod values;

pub(crate) use resolve::{ranges, Budget, Overrides, RunSettings, StepSettings};
pub(crate) use retry::RetryPolicy;
#[cfg(test)]
pub(crate) use values::parse_size;

/// At most `count` sends in any interval of length `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    pub count: u32,
    pub per: Duration,
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = format_duration(self.per);
        // `1s` → `s`, `1m` → `m`, `1ms` → `ms` (but `1.5s` and `10s` stay).
        let per = match per.strip_prefix('1') {
            Some(unit) if unit.starts_with(|c: char| c.is_ascii_alphabetic()) => unit,
            _ => per.as_str(),
        };
        write!(f, "{}/{per}", self.count)
    }
}

/// A set of windows, all enforced together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateSpec {
    pub windows: Vec<Window>,
}

impl RateSpec {
    /// The published WTS account limits: 200 per 5 s and 1,000 per 5 min.
    pub fn api() -> RateSpec {
        RateSpec {
            windows: vec![
                Window {
                    count: 200,
                    per: Duration::from_secs(5),
                },
                Window {
                    count: 1000,
                    per: Duration::from_secs(300),
                },
            ],
        }
    }

    /// Parse `api`, `off` (→ `None`: no limit) or comma-separated `COUNT/DURATION` windows such
    /// as `2/s`, `100/min`, `50/10s,900/5m`. The duration may omit its number (`/s` = `/1s`).
    /// Case-insensitive; spaces around items are ignored.
    ///
    /// ```
    /// use wts_playbook::execute::RateSpec;
    ///
    /// let api = RateSpec::parse("api").unwrap().unwrap();
    /// assert_eq!(api.to_string(), "200/5s,1000/5m");
    /// assert!(RateSpec::parse("off").unwrap().is_none());
    /// assert_eq!(RateSpec::parse("50/10s, 900/5m").unwrap().unwrap().windows.len(), 2);
    /// assert!(RateSpec::parse("fast").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Option<RateSpec>, String> {
        let text = s.trim();
        match text.to_ascii_lowercase().as_str() {
            "api" => return Ok(Some(RateSpec::api())),
            "off" | "none" => return Ok(None),
            "" => return Err(
                "empty rate limit; expected `api`, `off` or windows like `2/s` or `50/10s,900/5m`"
                    .to_owned(),
            ),
            _ => {}
        }
        let mut windows = Vec::new();
        for item in text.split(',') {
            let item = item.trim();
            let Some((count, per)) = item.split_once('/') else {
                return Err(format!(
                    "`{item}`: expected COUNT/DURATION such as `2/s` or `200/5s` (or `api`, `off`)"
                ));
            };
            let count = count.trim();
            let count: u32 = count.parse().ok().filter(|&c| c > 0).ok_or_else(|| {
                format!("`{item}`: the count `{count}` must be a whole number of at least 1")
            })?;
            let per = per.trim();
            let per_text = if per.starts_with(|c: char| c.is_ascii_alphabetic()) {
                format!("1{per}")
            } else {
                per.to_owned()
            };
            let per = parse_duration(&per_text).map_err(|e| format!("`{item}`: {e}"))?;
            if per.is_zero() {
                return Err(format!("`{item}`: the window must be longer than zero"));
            }
            windows.push(Window { count, per });
        }
        Ok(Some(RateSpec { windows }))
    }
}

impl fmt::Display for RateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, w) in self.windows.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{w}")?;
        }
        Ok(())
    }
}

/// The default cap on a response body (`settings.max_response_size`): 8 MiB.
pub(crate) const DEFAULT_MAX_BODY: u64 = 8 << 20;
