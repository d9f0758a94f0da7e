//! Retry policy and the classification of one attempt's result (README "Retries"; api-notes
//! "Errors" and "Rate limits").
//!
//! In: the result of one `Client::send` and whether the action is idempotent (retry-safe).
//! Out: a [`Verdict`] saying what the scheduler does next, and how long to wait before a retry
//! ([`crate::settings::RetryPolicy::delay`], [`crate::settings::RetryPolicy::wait_for_429`]).
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

use std::time::Duration;

use super::client::{ApiResponse, TransportError};

#[cfg(test)]
use super::client::parse_retry_after;
#[cfg(test)]
use crate::settings::RetryPolicy;

/// Why an attempt is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryCause {
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
    pub(crate) fn pauses_limiter(self) -> bool {
        self == RetryCause::RateLimited
    }
}

/// What the scheduler does with one attempt's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
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
pub(crate) fn classify(result: &Result<ApiResponse, TransportError>, idempotent: bool) -> Verdict {
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
    use std::time::SystemTime;

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
