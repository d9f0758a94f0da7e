//! Run settings shared by the stages: the rate windows (`rate_limit:`, `--rate-limit`) and the
//! retry policy (`retry:`), each with its one parser. Validation builds them, the executor
//! enforces them, the sandbox reads the same window grammar; nothing here depends on a stage.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::{format_duration, parse_duration};

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

/// How often and how patiently to retry. Playbook form:
/// `retry: { attempts: 5, backoff: 1s, max_backoff: 60s }` (every key optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "RawRetryPolicy", into = "RawRetryPolicy")]
pub struct RetryPolicy {
    /// Total tries, the first included (1 = never retry).
    pub attempts: u32,
    /// Upper bound of the first retry's random delay; doubles with each retry.
    pub backoff: Duration,
    /// Cap on the delay bound.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// The serde shape: durations as text (`1s`) or a number of seconds.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename = "RetryPolicy")]
struct RawRetryPolicy {
    /// Total tries, the first included (default 5; 1 = never retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    /// First retry's maximum delay, e.g. `1s` (default); doubles with each retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backoff: Option<DurationText>,
    /// Cap on the delay, e.g. `60s` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_backoff: Option<DurationText>,
}

/// A duration written as text (`1.5s`, `500ms`, `2m`) or a number of seconds.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum DurationText {
    Text(String),
    Seconds(f64),
}

impl DurationText {
    fn to_duration(&self, field: &str) -> Result<Duration, String> {
        match self {
            DurationText::Text(s) => parse_duration(s).map_err(|e| format!("`{field}`: {e}")),
            DurationText::Seconds(secs) => Duration::try_from_secs_f64(*secs)
                .map_err(|_| format!("`{field}`: {secs} is not a valid number of seconds")),
        }
    }
}

impl TryFrom<RawRetryPolicy> for RetryPolicy {
    type Error = String;

    fn try_from(raw: RawRetryPolicy) -> Result<Self, String> {
        let default = RetryPolicy::default();
        let attempts = raw.attempts.unwrap_or(default.attempts);
        if attempts == 0 {
            return Err("`attempts` counts the first try too, so it must be at least 1".to_owned());
        }
        let backoff = match &raw.backoff {
            Some(d) => d.to_duration("backoff")?,
            None => default.backoff,
        };
        let max_backoff = match &raw.max_backoff {
            Some(d) => d.to_duration("max_backoff")?,
            None => default.max_backoff.max(backoff),
        };
        if backoff > max_backoff {
            return Err(format!(
                "`backoff` ({}) is larger than `max_backoff` ({})",
                format_duration(backoff),
                format_duration(max_backoff)
            ));
        }
        Ok(RetryPolicy {
            attempts,
            backoff,
            max_backoff,
        })
    }
}

impl From<RetryPolicy> for RawRetryPolicy {
    fn from(p: RetryPolicy) -> Self {
        RawRetryPolicy {
            attempts: Some(p.attempts),
            backoff: Some(DurationText::Text(format_duration(p.backoff))),
            max_backoff: Some(DurationText::Text(format_duration(p.max_backoff))),
        }
    }
}

impl RetryPolicy {
    /// Whether another try is allowed after `tries` tries (the first included) have been made.
    pub fn can_retry(&self, tries: u32) -> bool {
        tries < self.attempts
    }

    /// The delay before retry number `retry_number` (0 for the first retry): full jitter,
    /// uniformly random in `[0, min(max_backoff, backoff × 2^retry_number)]`.
    pub fn delay(&self, retry_number: u32, rng: &mut impl rand::Rng) -> Duration {
        let bound = self
            .backoff
            .saturating_mul(2u32.saturating_pow(retry_number))
            .min(self.max_backoff);
        let bound_nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=bound_nanos))
    }

    /// The wait before retry `retry_number` after a 429 (or any answer carrying `Retry-After`):
    /// the larger of the server's `Retry-After` and the jittered [`RetryPolicy::delay`].
    /// Not capped: a scheduler with a total retry budget compares the result with it.
    pub fn wait_for_429(
        &self,
        retry_number: u32,
        retry_after: Option<Duration>,
        rng: &mut impl rand::Rng,
    ) -> Duration {
        self.delay(retry_number, rng)
            .max(retry_after.unwrap_or(Duration::ZERO))
    }
}

/// The default cap on a response body (`settings.max_response_size`): 8 MiB.
pub(crate) const DEFAULT_MAX_BODY: u64 = 8 << 20;
