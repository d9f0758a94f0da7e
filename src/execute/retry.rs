//! Retry policy and the classification of one attempt's result (README "Retries"; api-notes
//! "Errors" and "Rate limits").
//!
//! In: the result of one `Client::send` and whether the action is idempotent (retry-safe).
//! Out: a [`Verdict`] saying what the scheduler does next, and how long to wait before a retry
//! ([`RetryPolicy::delay`], [`RetryPolicy::wait_for_429`]).
//!
//! The table ([`classify`]):
//!
//! | result | idempotent | not idempotent |
//! |---|---|---|
//! | 2xx | `Success` | `Success` |
//! | 429 | `Retry` (rate limited: pause the shared limiter) | same: a 429 was never processed |
//! | connect failure, request not sent | `Retry` | `Retry` |
//! | 5xx, timeout, connection broken after sending, 2xx that is not JSON | `Retry` | `Unknown` (may have happened; never re-sent) |
//! | body larger than `max_response_size` | `Fail` | `Unknown` |
//! | 401 | `AuthRejected` (abort the run) | same |
//! | other 4xx, 1xx, 3xx, invalid request | `Fail` | `Fail` |
//!
//! When the retry budget is spent on a `Retry`, the item fails: every `Retry` cause is either
//! "never processed" or a retry-safe action, so `Fail` is accurate.
//!
//! Backoff is exponential with full jitter: retry `n` (0 for the first retry) waits a uniformly
//! random time in `[0, min(max_backoff, backoff × 2ⁿ)]`; after a 429 the wait is at least the
//! server's `Retry-After`.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::client::{ApiResponse, TransportError};
use crate::duration::{format_duration, parse_duration};

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

/// Parse a `Retry-After` header value: delta-seconds (`120`) or an HTTP date (RFC 9110:
/// IMF-fixdate `Wed, 21 Oct 2015 07:28:00 GMT`, and the obsolete RFC 850 and asctime forms),
/// as a duration from `now`. A date in the past gives zero; anything unparsable gives `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at: SystemTime = parse_http_date(value)?.into();
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn parse_http_date(value: &str) -> Option<jiff::Timestamp> {
    static RFC2822: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    if let Ok(ts) = RFC2822.parse_timestamp(value) {
        return Some(ts);
    }
    // RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`).
    let asctime = value.split_whitespace().collect::<Vec<_>>().join(" ");
    let found = [
        ("%A, %d-%b-%y %H:%M:%S GMT", value),
        ("%a %b %e %H:%M:%S %Y", asctime.as_str()),
    ]
    .into_iter()
    .find_map(|(format, text)| {
        jiff::fmt::strtime::parse(format, text)
            .ok()?
            .to_datetime()
            .ok()?
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp())
    });
    found
}

/// Why an attempt is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryCause {
    /// 429: pause the shared limiter and wait at least `Retry-After`.
    RateLimited,
    /// Connecting failed; the request never left.
    NotSent,
    /// 5xx on a retry-safe action.
    ServerError,
    /// No answer in time, on a retry-safe action.
    Timeout,
    /// Connection broke after sending, on a retry-safe action.
    Broken,
    /// A 2xx whose body is not JSON (an HTML page, a truncated answer), on a retry-safe action.
    NotJson,
}

impl RetryCause {
    /// A 429: the whole run should slow down ([`super::RateLimiter::pause_until`]).
    pub fn pauses_limiter(self) -> bool {
        self == RetryCause::RateLimited
    }
}

/// What the scheduler does with one attempt's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: done.
    Success,
    /// Try again (if the budget allows) after a backoff; `after` is the server's `Retry-After`.
    Retry {
        cause: RetryCause,
        after: Option<Duration>,
    },
    /// Definitely failed (the API refused it, or it could not be sent): report, no retry.
    Fail,
    /// May or may not have happened (non-idempotent action, ambiguous failure): report as
    /// `unknown`, never re-send automatically.
    Unknown,
    /// 401: the token was refused; abort the whole run.
    AuthRejected,
}

/// Classify one attempt's result (the table in the module doc).
pub fn classify(result: &Result<ApiResponse, TransportError>, idempotent: bool) -> Verdict {
    let ambiguous = |cause| {
        if idempotent {
            Verdict::Retry { cause, after: None }
        } else {
            Verdict::Unknown
        }
    };
    match result {
        Ok(resp) => match resp.status {
            200..=299 if resp.not_json.is_some() => ambiguous(RetryCause::NotJson),
            200..=299 => Verdict::Success,
            401 => Verdict::AuthRejected,
            429 => Verdict::Retry {
                cause: RetryCause::RateLimited,
                after: resp.retry_after,
            },
            500..=599 if idempotent => Verdict::Retry {
                cause: RetryCause::ServerError,
                after: resp.retry_after,
            },
            500..=599 => Verdict::Unknown,
            _ => Verdict::Fail,
        },
        Err(TransportError::NotSent(_)) => Verdict::Retry {
            cause: RetryCause::NotSent,
            after: None,
        },
        Err(TransportError::Invalid(_)) => Verdict::Fail,
        // Re-reading a too-large answer gives the same answer; a change may have happened.
        Err(TransportError::TooLarge(_)) if idempotent => Verdict::Fail,
        Err(TransportError::TooLarge(_)) => Verdict::Unknown,
        Err(TransportError::Timeout(_)) => ambiguous(RetryCause::Timeout),
        Err(TransportError::Broken(_)) => ambiguous(RetryCause::Broken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use serde_json::{json, Value};

    #[expect(
        clippy::unnecessary_wraps,
        reason = "builds the `Result` that `classify` takes"
    )]
    fn resp(status: u16, retry_after: Option<Duration>) -> Result<ApiResponse, TransportError> {
        Ok(ApiResponse {
            status,
            body: Value::Null,
            retry_after,
            not_json: None,
        })
    }

    #[test]
    fn classification_table() {
        let secs = |s| Some(Duration::from_secs(s));
        let retry = |cause, after| Verdict::Retry { cause, after };
        let not_sent = Err(TransportError::NotSent("refused".into()));
        let timeout = Err(TransportError::Timeout("slow".into()));
        let broken = Err(TransportError::Broken("reset".into()));
        let invalid = Err(TransportError::Invalid("bad path".into()));
        // (result, verdict if idempotent, verdict if not)
        let table = [
            (resp(200, None), Verdict::Success, Verdict::Success),
            (resp(204, None), Verdict::Success, Verdict::Success),
            (
                resp(429, secs(7)),
                retry(RetryCause::RateLimited, secs(7)),
                retry(RetryCause::RateLimited, secs(7)),
            ),
            (
                resp(429, None),
                retry(RetryCause::RateLimited, None),
                retry(RetryCause::RateLimited, None),
            ),
            (
                not_sent,
                retry(RetryCause::NotSent, None),
                retry(RetryCause::NotSent, None),
            ),
            (
                resp(500, None),
                retry(RetryCause::ServerError, None),
                Verdict::Unknown,
            ),
            (
                resp(503, secs(2)),
                retry(RetryCause::ServerError, secs(2)),
                Verdict::Unknown,
            ),
            (timeout, retry(RetryCause::Timeout, None), Verdict::Unknown),
            (broken, retry(RetryCause::Broken, None), Verdict::Unknown),
            (
                resp(401, None),
                Verdict::AuthRejected,
                Verdict::AuthRejected,
            ),
            (resp(400, None), Verdict::Fail, Verdict::Fail),
            (resp(403, None), Verdict::Fail, Verdict::Fail),
            (resp(404, None), Verdict::Fail, Verdict::Fail),
            (resp(409, None), Verdict::Fail, Verdict::Fail),
            (resp(302, None), Verdict::Fail, Verdict::Fail),
            (invalid, Verdict::Fail, Verdict::Fail),
            (
                Ok(ApiResponse {
                    status: 200,
                    body: json!("<html>"),
                    not_json: Some("content type text/html".into()),
                    ..ApiResponse::default()
                }),
                retry(RetryCause::NotJson, None),
                Verdict::Unknown,
            ),
            (
                Err(TransportError::TooLarge("50 MB".into())),
                Verdict::Fail,
                Verdict::Unknown,
            ),
        ];
        for (result, if_idempotent, if_not) in table {
            assert_eq!(
                classify(&result, true),
                if_idempotent,
                "{result:?} idempotent"
            );
            assert_eq!(
                classify(&result, false),
                if_not,
                "{result:?} not idempotent"
            );
        }
        assert!(RetryCause::RateLimited.pauses_limiter());
        assert!(!RetryCause::NotSent.pauses_limiter());
    }

    #[test]
    fn delay_is_full_jitter_under_a_doubling_capped_bound() {
        let policy = RetryPolicy::default();
        let mut rng = SmallRng::seed_from_u64(7);
        for (n, bound) in [
            (0, 1),
            (1, 2),
            (2, 4),
            (5, 32),
            (6, 60),
            (40, 60),
            (u32::MAX, 60),
        ] {
            let bound = Duration::from_secs(bound);
            let samples: Vec<Duration> = (0..2000).map(|_| policy.delay(n, &mut rng)).collect();
            let max = *samples.iter().max().unwrap();
            let min = *samples.iter().min().unwrap();
            assert!(max <= bound, "retry {n}: {max:?} > {bound:?}");
            // Full jitter: the whole range [0, bound] is used.
            assert!(max > bound.mul_f64(0.98), "retry {n}: max {max:?}");
            assert!(min < bound.mul_f64(0.02), "retry {n}: min {min:?}");
            let mean = samples.iter().sum::<Duration>() / 2000;
            assert!(
                mean > bound.mul_f64(0.45) && mean < bound.mul_f64(0.55),
                "retry {n}: mean {mean:?}"
            );
        }
    }

    #[test]
    fn wait_for_429_honours_retry_after() {
        let policy = RetryPolicy::default();
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..100 {
            let w = policy.wait_for_429(0, Some(Duration::from_secs(30)), &mut rng);
            assert!(w >= Duration::from_secs(30));
            assert_eq!(
                w,
                Duration::from_secs(30),
                "delay for retry 0 is at most 1s"
            );
            assert!(policy.wait_for_429(0, None, &mut rng) <= Duration::from_secs(1));
        }
        let big = policy.wait_for_429(10, Some(Duration::from_millis(1)), &mut rng);
        assert!(big <= Duration::from_secs(60));
    }

    #[test]
    fn parses_retry_after_forms() {
        let now: SystemTime = "2015-10-21T07:27:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .into();
        let p = |v| parse_retry_after(v, now);
        assert_eq!(p("120"), Some(Duration::from_secs(120)));
        assert_eq!(p(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            p("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            p("Wednesday, 21-Oct-15 07:28:30 GMT"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            p("Wed Oct 21 07:29:00 2015"),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            p("Thu Oct  1 07:29:00 2015"),
            Some(Duration::ZERO),
            "in the past"
        );
        assert_eq!(p("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
        for bad in ["", "-5", "1.5", "soon", "Wed, 32 Oct 2015 07:28:00 GMT"] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn policy_deserializes_from_playbook_form() {
        let p: RetryPolicy =
            serde_json::from_value(json!({"attempts": 3, "backoff": "500ms", "max_backoff": "2m"}))
                .unwrap();
        assert_eq!(
            p,
            RetryPolicy {
                attempts: 3,
                backoff: Duration::from_millis(500),
                max_backoff: Duration::from_secs(120)
            }
        );
        let p: RetryPolicy = serde_yaml::from_str("{attempts: 2, backoff: 1.5s}").unwrap();
        assert_eq!(p.backoff, Duration::from_millis(1500));
        assert_eq!(p.max_backoff, Duration::from_secs(60));
        let p: RetryPolicy = serde_json::from_value(json!({"backoff": 2})).unwrap();
        assert_eq!(p.backoff, Duration::from_secs(2));
        assert_eq!(p.attempts, 5);
        let p: RetryPolicy = serde_json::from_value(json!({})).unwrap();
        assert_eq!(p, RetryPolicy::default());
        // A backoff above the default cap raises the cap rather than failing.
        let p: RetryPolicy = serde_json::from_value(json!({"backoff": "2m"})).unwrap();
        assert_eq!(p.max_backoff, Duration::from_secs(120));
        // Round trip through the serialized form.
        let text = serde_json::to_value(RetryPolicy::default()).unwrap();
        assert_eq!(
            text,
            json!({"attempts": 5, "backoff": "1s", "max_backoff": "1m"})
        );
        assert_eq!(
            serde_json::from_value::<RetryPolicy>(text).unwrap(),
            RetryPolicy::default()
        );
    }

    #[test]
    fn policy_rejects_bad_values() {
        let err = |v: Value| {
            serde_json::from_value::<RetryPolicy>(v)
                .unwrap_err()
                .to_string()
        };
        assert!(err(json!({"attempts": 0})).contains("at least 1"));
        assert!(err(json!({"backoff": "fast"})).contains("`backoff`"));
        assert!(err(json!({"backoff": "2m", "max_backoff": "1m"})).contains("larger than"));
        assert!(err(json!({"tries": 3})).contains("unknown field"));
        assert!(err(json!({"backoff": -1})).contains("not a valid number of seconds"));
    }

    #[test]
    fn can_retry_counts_the_first_try() {
        let p = RetryPolicy {
            attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(p.can_retry(1));
        assert!(p.can_retry(2));
        assert!(!p.can_retry(3));
        let once = RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        };
        assert!(!once.can_retry(1));
    }
}
