//! One exchange with the server, attempt after attempt: the first-request token gate, both rate
//! limiters, the in-flight journal before a send that is not safe to repeat, and what each
//! verdict leads to (success, a refused token, a retry after a wait, a failure that the catalog
//! may call `unchanged` or a check may find already done, an unknown outcome that a read can
//! resolve).

use std::sync::atomic::Ordering;

use minijinja::Value as JValue;

use super::sender::{announce_wait, jitter_rng, Sender, Wire, THROTTLE_FACTOR};
use super::{Done, Event};
use crate::catalog;
use crate::execute::client::{ApiError, ApiResponse, TransportError};
use crate::execute::retry::{classify, RetryCause, Verdict};
use crate::execute::verify::Verified;
use crate::program::StepKind;
use crate::report::ItemStatus;
use crate::template;

type Answer = Result<ApiResponse, TransportError>;

/// One item's attempts so far.
struct Tries {
    attempts: u32,
    /// How many of the attempts were answered 429.
    throttled: u32,
    /// An earlier attempt may have been processed (a 5xx, a timeout, a broken connection).
    ambiguous_before: bool,
    /// Sends repeated after a read showed the earlier one did not happen.
    resends: u32,
    /// When the first attempt was sent (verification looks for effects since).
    first_attempt_at: Option<jiff::Timestamp>,
    rng: rand::rngs::SmallRng,
}

impl Tries {
    /// Attempts that were not refused with a 429.
    fn real(&self) -> u32 {
        self.attempts - self.throttled
    }
}

/// After a verdict: the item's result, or another attempt.
enum Next {
    Finished(Box<Done>),
    Again,
}

impl Sender<'_> {
    pub(super) async fn exchange(&self, wire: Wire<'_>) -> Done {
        let mut t = Tries {
            attempts: 0,
            throttled: 0,
            ambiguous_before: false,
            resends: 0,
            first_attempt_at: None,
            rng: jitter_rng(),
        };
        loop {
            let result = match self.attempt(wire, &mut t).await {
                Ok(result) => result,
                Err(done) => return done,
            };
            let verdict = match (classify(&result, self.idempotent), wire) {
                // The storage host's 401 says nothing about the API token.
                (Verdict::AuthRejected, Wire::Put { .. }) => Verdict::Fail,
                // The storage host's 2xx may be XML or text: its body is not read.
                (
                    Verdict::Retry {
                        cause: RetryCause::NotJson,
                        ..
                    },
                    Wire::Put { .. },
                ) => Verdict::Success,
                (v, _) => v,
            };
            let mut done = Done {
                attempts: t.attempts,
                request: match wire {
                    Wire::Api(req) => Some(req.clone()),
                    Wire::Put { .. } => None,
                },
                ..Done::new(ItemStatus::Failed, self.started)
            };
            match &result {
                Ok(resp) => {
                    self.shared.unreachable.answered();
                    done.response =
                        Some((resp.status, (!resp.is_success()).then(|| resp.body.clone())));
                }
                Err(e) => done.error = Some(e.to_string()),
            }
            let next = match verdict {
                Verdict::Success => {
                    let resp = result.expect("success has a response");
                    done.status = ItemStatus::Succeeded;
                    done.output = template::from_json(&resp.body);
                    if let (Wire::Api(req), false) = (wire, self.idempotent) {
                        self.claim_success(req);
                    }
                    Next::Finished(Box::new(done))
                }
                Verdict::AuthRejected => {
                    let resp = result.expect("401 has a response");
                    let err = ApiError::from_response(resp.status, &resp.body);
                    self.shared.auth_refused.store(true, Ordering::SeqCst);
                    self.shared.abort(format!(
                        "authentication refused by the API ({err}); run aborted"
                    ));
                    done.error = Some(err.to_string());
                    Next::Finished(Box::new(done))
                }
                Verdict::Retry { cause, after } => {
                    self.after_retryable(cause, after, &result, done, &mut t)
                        .await
                }
                Verdict::Fail => {
                    Next::Finished(Box::new(self.after_failure(wire, result, done, &t).await))
                }
                Verdict::Unknown => self.after_unknown(wire, &result, done, &mut t).await,
            };
            match next {
                Next::Finished(done) => return *done,
                Next::Again => {}
            }
        }
    }

    /// Sends one attempt: through the token gate and both limiters, journaled first when it is
    /// not safe to repeat. `Err`: the item's result without an answer (the run stopped, the
    /// token was refused, the report cannot be written).
    async fn attempt(&self, wire: Wire<'_>, t: &mut Tries) -> Result<Answer, Done> {
        let Sender {
            shared,
            step,
            si,
            client,
            limiter,
            step_limiter,
            idempotent,
            started,
            timeout,
        } = *self;
        let not_sent = |attempts: u32| Done {
            attempts,
            ..Done::failed(
                "not sent: the run stopped while this item waited for the rate limiter".into(),
                started,
            )
        };
        // `plan --read-budget`: every attempt of a read counts.
        if let Some(super::PlanMode::Plan(cap)) = &shared.options.plan_mode {
            if !cap.take_read() {
                shared.abort(format!(
                    "the read budget ({} requests, --read-budget) is spent; no plan was written",
                    cap.budget.unwrap_or_default()
                ));
                return Err(Done {
                    attempts: t.attempts,
                    ..Done::failed("not sent: the read budget is spent".into(), started)
                });
            }
        }
        // The first request of the run is sent alone and doubles as the token check.
        let mut gate = None;
        if matches!(wire, Wire::Api(_)) && !shared.token_ok.load(Ordering::SeqCst) {
            // Waiting for it ends when the run stops.
            let Some(g) = shared.unless_stopped(shared.first_request.lock()).await else {
                return Err(not_sent(t.attempts));
            };
            if !shared.token_ok.load(Ordering::SeqCst) {
                gate = Some(g);
            }
        }
        if shared.auth_refused.load(Ordering::SeqCst) {
            return Err(Done {
                attempts: t.attempts,
                ..Done::failed(
                    "not sent: the API refused the token (see the run's abort reason)".into(),
                    started,
                )
            });
        }
        // Both permits are held until the answer: the request counts until then. Waiting for
        // them ends when the run stops.
        let step_permit = match step_limiter {
            Some(l) => match shared.unless_stopped(l.acquire()).await {
                Some(p) => Some(p),
                None => return Err(not_sent(t.attempts)),
            },
            None => None,
        };
        let Some(permit) = shared.unless_stopped(limiter.acquire()).await else {
            return Err(not_sent(t.attempts));
        };
        t.attempts += 1;
        t.first_attempt_at.get_or_insert_with(jiff::Timestamp::now);
        if !idempotent {
            let sending = Event::Sending {
                step: &step.id,
                index: si.index,
                key: &si.key,
            };
            if let Err(e) = shared.displays.emit(&sending) {
                let message = format!("not sent: {e}");
                shared.abort(e);
                return Err(Done {
                    attempts: 0,
                    ..Done::failed(message, started)
                });
            }
        }
        let result = match wire {
            Wire::Api(req) => client.send(req, timeout).await,
            Wire::Put {
                url,
                content_type,
                bytes,
            } => {
                client
                    .put_upload(url, content_type, bytes.to_vec(), timeout)
                    .await
            }
        };
        drop((permit, step_permit));
        // A refused token stops every other sender before the gate lets the next one go.
        if matches!((&result, wire), (Ok(resp), Wire::Api(_)) if resp.status == 401) {
            shared.auth_refused.store(true, Ordering::SeqCst);
        }
        if gate.is_some() {
            // An HTML page (a captive portal, a proxy) is not the API accepting the token.
            if matches!(&result, Ok(resp) if resp.status != 401 && resp.not_json.is_none()) {
                shared.token_ok.store(true, Ordering::SeqCst);
            }
            drop(gate);
        }
        Ok(result)
    }

    /// A retryable answer: another attempt after a wait, unless the attempts are used up or the
    /// run stops.
    async fn after_retryable(
        &self,
        cause: RetryCause,
        after: Option<std::time::Duration>,
        result: &Answer,
        mut done: Done,
        t: &mut Tries,
    ) -> Next {
        let Sender {
            shared,
            step,
            si,
            client,
            limiter,
            ..
        } = *self;
        let policy = &step.settings.retry;
        let is_429 = cause == RetryCause::RateLimited;
        if is_429 {
            shared.rate_limited.fetch_add(1, Ordering::Relaxed);
            shared.emit(&Event::RateLimited { step: &step.id });
        }
        if matches!(
            cause,
            RetryCause::ServerError | RetryCause::Timeout | RetryCause::Broken
        ) {
            t.ambiguous_before = true;
        }
        // 429s were refused before any processing: they have their own, larger budget and do
        // not use up the attempts meant for real failures.
        if is_429 {
            t.throttled += 1;
        }
        let exhausted = if is_429 {
            t.throttled >= policy.attempts.saturating_mul(THROTTLE_FACTOR)
        } else {
            t.real() >= policy.attempts
        };
        let last = || match result {
            Ok(resp) => resp.describe(),
            Err(e) => e.to_string(),
        };
        let attempts = t.attempts;
        if exhausted || shared.cancelled() {
            let mut error = format!("gave up after {attempts} attempts: {}", last());
            if cause == RetryCause::NotSent {
                error.push_str(&format!(
                    " (the server at {} could not be reached; WTS_BASE_URL sets it)",
                    client.base_url()
                ));
                if exhausted && shared.unreachable.failed() {
                    shared.abort(format!(
                        "the server at {} is unreachable: {} items in a row could not \
                         connect, each after its retries; no new items were started \
                         (check WTS_BASE_URL and the network, then --resume the report)",
                        client.base_url(),
                        shared.unreachable.threshold()
                    ));
                }
            }
            done.error = Some(error);
            return Next::Finished(Box::new(done));
        }
        // A server-requested wait is capped (`settings.max_retry_wait`).
        let max_wait = shared.program.settings.max_retry_wait;
        let capped = after.map(|a| a.min(max_wait));
        let wait = if after.is_some() || is_429 {
            policy.wait_for_429(t.throttled.saturating_sub(1), capped, &mut t.rng)
        } else {
            policy.delay(t.real() - 1, &mut t.rng)
        };
        if cause.pauses_limiter() {
            // A 429 slows the whole run, not just this worker.
            limiter.pause_until(tokio::time::Instant::now() + wait);
        }
        announce_wait(shared, step, cause, after, max_wait, wait);
        shared.event(step, si, cause, result, wait);
        tracing::debug!(step = %step.id, key = %shared.redactor.redact(&si.key), ?wait, "retrying");
        if shared
            .unless_stopped(tokio::time::sleep(wait))
            .await
            .is_none()
        {
            done.error = Some(format!(
                "gave up after {attempts} attempts (the run stopped during the wait \
                 before the next try): {}",
                last()
            ));
            return Next::Finished(Box::new(done));
        }
        Next::Again
    }

    /// A failure answer: `unchanged` when the catalog says the object is already in the
    /// requested state, succeeded when an earlier attempt (or an interrupted run) did it.
    async fn after_failure(
        &self,
        wire: Wire<'_>,
        result: Answer,
        mut done: Done,
        t: &Tries,
    ) -> Done {
        let Ok(resp) = result else { return done };
        let api = ApiError::from_response(resp.status, &resp.body);
        let unchanged = matches!(wire, Wire::Api(_))
            && self.spec().is_some_and(|s| {
                catalog::outcomes(s).is_unchanged(resp.status, api.key.as_deref())
            });
        if unchanged {
            let answer = format!("{} {}", resp.status, api.key.as_deref().unwrap_or(""));
            done.error = None;
            done.response = Some((resp.status, None));
            if t.ambiguous_before {
                done.status = ItemStatus::Succeeded;
                done.reason = Some(format!("an earlier attempt of this run worked: the retry was answered {answer} (already in the requested state)"));
            } else if self.earlier_unfinished() {
                done.status = ItemStatus::Succeeded;
                done.reason = Some(format!("an earlier run was interrupted before it recorded this item, and the API answers {answer} (already in the requested state): taken as that attempt having worked"));
            } else {
                done.status = ItemStatus::Unchanged;
                done.reason = Some(format!("already in the requested state: answered {answer}"));
            }
            return done;
        }
        // A retry of an idempotent change may find it already done.
        let retried_change = match wire {
            Wire::Api(req)
                if t.ambiguous_before
                    && req.method != catalog::Method::Get
                    && (400..500).contains(&resp.status) =>
            {
                Some(req)
            }
            _ => None,
        };
        let done_before = match retried_change {
            Some(req) => self.already_done(req).await,
            None => false,
        };
        if done_before {
            done.status = ItemStatus::Succeeded;
            done.error = None;
            done.output = JValue::from(());
            done.reason = Some(format!(
                "an earlier attempt of this run worked: the retry's {} was checked",
                resp.status
            ));
            return done;
        }
        done.error = Some(api.to_string());
        done
    }

    /// An unknown outcome (a send that is not safe to repeat may have happened): a read that
    /// can tell resolves it; shown not to have happened, it is sent once more.
    async fn after_unknown(
        &self,
        wire: Wire<'_>,
        result: &Answer,
        mut done: Done,
        t: &mut Tries,
    ) -> Next {
        let Sender {
            shared, step, si, ..
        } = *self;
        done.status = ItemStatus::Unknown;
        if let (Wire::Api(req), false) = (wire, shared.cancelled()) {
            let why = done.error.clone().unwrap_or_else(|| {
                result
                    .as_ref()
                    .map(|r| ApiError::from_response(r.status, &r.body).to_string())
                    .unwrap_or_default()
            });
            let mut verified = self.verify(req, t.first_attempt_at).await;
            if result.is_err() && verified == Verified::NotHappened {
                // No answer at all (a timeout, a dropped connection): the server may still be
                // working on it. Look again after a backoff before concluding it is safe to
                // send again.
                tokio::time::sleep(step.settings.retry.delay(t.real() - 1, &mut t.rng)).await;
                verified = self.verify(req, t.first_attempt_at).await;
            }
            match verified {
                Verified::Happened(evidence) => {
                    done.status = ItemStatus::Succeeded;
                    done.error = None;
                    done.response = None;
                    done.reason = Some(format!("the outcome was unknown ({why}); a read found that the request took effect"));
                    done.output = template::from_json(&evidence);
                    done.evidence = Some(evidence);
                    return Next::Finished(Box::new(done));
                }
                Verified::NotHappened if t.resends < 1 => {
                    // The read shows it did not happen: safe to send once more.
                    t.resends += 1;
                    tracing::info!(step = %step.id, key = %shared.redactor.redact(&si.key), "verified not sent; sending again");
                    return Next::Again;
                }
                Verified::NotHappened => {}
                Verified::Cannot(e) => {
                    done.reason = Some(format!("verification was not possible: {e}"));
                }
            }
        }
        done.error = Some(format!(
            "outcome unknown: {}; not retried because `{}` is not retry-safe",
            done.error.clone().unwrap_or_else(|| result
                .as_ref()
                .map(ApiResponse::describe)
                .unwrap_or_default()),
            match &step.kind {
                StepKind::Action { spec, .. } => spec.name,
                StepKind::Pipeline(_) => "",
            }
        ));
        Next::Finished(Box::new(done))
    }
}
