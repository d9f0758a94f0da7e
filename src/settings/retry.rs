//! The retry policy (`retry:` in `settings` or on a step) and its one parser,
//! [`RetryPolicy::parse_over`]: validation (through [`super::resolve`]) and the serde form both
//! use it, so a `retry:` means the same wherever it is read. The executor's retry loop
//! (`execute::retry`) asks the policy for its delays.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ranges;
use super::values::{in_range, ranged_duration, DurationText, Failure};
use crate::duration::format_duration;

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

/// One problem of a `retry:` value: the key it is at (`attempts`, `backoff`, `max_backoff`),
/// the message and the hint.
pub(super) type RetryProblem = (&'static str, Failure);

impl TryFrom<RawRetryPolicy> for RetryPolicy {
    type Error = String;

    fn try_from(raw: RawRetryPolicy) -> Result<Self, String> {
        let (policy, problems) = RetryPolicy::parse_over(
            &RetryPolicy::default(),
            raw.attempts,
            raw.backoff.as_ref(),
            raw.max_backoff.as_ref(),
        );
        if problems.is_empty() {
            Ok(policy)
        } else {
            let messages: Vec<String> = problems.into_iter().map(|(_, (m, _))| m).collect();
            Err(messages.join("; "))
        }
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
    /// The one parser of `retry:`. Each key given replaces `base`'s (a step's `retry` starts
    /// from the run's, the run's from the default); an absent `max_backoff` is raised to the
    /// `backoff` (`backoff: 2m` alone means a 2-minute cap, not 60 s). Every number has its range
    /// ([`ranges`]). Returns the policy and every problem, each at its key; a key with a problem
    /// keeps `base`'s value.
    pub(super) fn parse_over(
        base: &RetryPolicy,
        attempts: Option<u32>,
        backoff: Option<&DurationText>,
        max_backoff: Option<&DurationText>,
    ) -> (RetryPolicy, Vec<RetryProblem>) {
        let mut p = *base;
        let mut problems = Vec::new();
        match attempts {
            None => {}
            Some(0) => problems.push((
                "attempts",
                (
                    "attempts must be at least 1 (the first try counts)".to_owned(),
                    None,
                ),
            )),
            Some(a) => match in_range(a, ranges::ATTEMPTS) {
                Ok(a) => p.attempts = a,
                Err(e) => problems.push(("attempts", (format!("attempts: {e}"), None))),
            },
        }
        p.backoff =
            ranged_duration("backoff", backoff, p.backoff, ranges::BACKOFF).unwrap_or_else(|f| {
                problems.push(("backoff", f));
                p.backoff
            });
        let cap = p.max_backoff.max(p.backoff);
        p.max_backoff = ranged_duration("max_backoff", max_backoff, cap, ranges::MAX_BACKOFF)
            .unwrap_or_else(|f| {
                problems.push(("max_backoff", f));
                cap
            });
        if p.backoff > p.max_backoff {
            let message = format!(
                "backoff ({}) is larger than max_backoff ({})",
                format_duration(p.backoff),
                format_duration(p.max_backoff)
            );
            problems.push(("backoff", (message, None)));
        }
        (p, problems)
    }

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
