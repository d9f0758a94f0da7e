//! The sender: one item's requests through the rate limiters, the first-request token gate,
//! retries that know idempotency, the outcome rules of the catalog (unchanged answers,
//! recovery, verification of unknown outcomes) and the v2 upload flow.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use minijinja::Value as JValue;
use serde_json::Value;

use super::{Done, Event, Shared};
use crate::catalog::{self, ActionSpec, HttpRequest};
use crate::execute::client::{ApiError, ApiResponse, Client};
use crate::execute::rate::RateLimiter;
use crate::execute::retry::{classify, RetryCause, Verdict};
use crate::execute::upload::{self, Upload};
use crate::execute::verify::Verified;
use crate::plan::SourceItem;
use crate::report::ItemStatus;
use crate::template;
use crate::validate::{StepKind, StepPlan};

/// The least timeout of a `sync: true` send, which the server holds up to 25 s.
pub(super) const SYNC_SEND_TIMEOUT: Duration = Duration::from_secs(40);

/// A request answered 429 may be retried up to this many times `retry.attempts`: the API's
/// 5-minute window can refuse for minutes (api-notes "Rate limits"), and a 429 was never processed.
pub(super) const THROTTLE_FACTOR: u32 = 4;

/// Sends one item's requests: the limiters, retries and outcome rules around the client.
#[derive(Clone, Copy)]
pub(super) struct Sender<'a> {
    pub(super) shared: &'a Shared,
    pub(super) step: &'a StepPlan,
    pub(super) si: &'a SourceItem,
    pub(super) client: &'a Client,
    pub(super) limiter: &'a RateLimiter,
    pub(super) step_limiter: Option<&'a RateLimiter>,
    pub(super) idempotent: bool,
    pub(super) started: Instant,
    pub(super) timeout: Duration,
}

/// What one exchange sends: an API request, or the bytes of an upload to a pre-signed URL.
#[derive(Clone, Copy)]
pub(super) enum Wire<'r> {
    Api(&'r HttpRequest),
    Put {
        url: &'r str,
        content_type: &'r str,
        bytes: &'r [u8],
    },
}

impl Sender<'_> {
    pub(super) async fn send(&self, req: HttpRequest) -> Done {
        self.exchange(Wire::Api(&req)).await
    }

    /// The action this sender's step runs.
    pub(super) fn spec(&self) -> Option<&'static ActionSpec> {
        match &self.step.kind {
            StepKind::Action { spec, .. } => Some(spec),
            StepKind::Pipeline(_) => None,
        }
    }

    /// A read sent like any read of this item (limiters, retries), never gated on recovery.
    pub(super) async fn read(&self, req: &HttpRequest) -> Done {
        let read = Sender {
            idempotent: true,
            ..*self
        };
        // Boxed: `exchange` calls this function (never for a GET, so one level at most).
        Box::pin(read.exchange(Wire::Api(req))).await
    }

    /// After an ambiguous failure, a 4xx on the retry of an idempotent change may mean the first
    /// try worked; the catalog says how to tell ([`catalog::Recovery`]).
    pub(super) async fn already_done(&self, req: &HttpRequest) -> bool {
        let Some(spec) = self.spec() else {
            return false;
        };
        match catalog::outcomes(spec).recovery {
            catalog::Recovery::None => false,
            catalog::Recovery::RemovalDone => true,
            catalog::Recovery::SessionCompleted => {
                // The read is `session.get` of the step's route family (v2 when documented).
                let id = req.path.trim_end_matches("/complete").rsplit('/').next();
                let get_spec = catalog::lookup_for("session.get", self.step.settings.routes)
                    .expect("session.get is in the catalog");
                let get = HttpRequest {
                    method: get_spec.method,
                    path: get_spec
                        .path
                        .replace("{session_id}", id.unwrap_or_default()),
                    query: Vec::new(),
                    body: None,
                };
                let done = self.read(&get).await;
                done.status == ItemStatus::Succeeded
                    && template::to_json(&done.output)
                        .get("status")
                        .and_then(Value::as_str)
                        == Some("COMPLETED")
            }
        }
    }

    /// Whether an earlier report left this item unfinished (no record, or `unknown`): a
    /// resumed run that meets "already in the requested state" for it sees its own
    /// interrupted attempt.
    pub(super) fn earlier_unfinished(&self) -> bool {
        self.shared.options.resume.as_ref().is_some_and(|r| {
            match r.status_of(&self.step.id, &self.si.key) {
                Some(s) => s == ItemStatus::Unknown,
                // No record: an attempt may have gone unrecorded only if a run was cut short
                // (retry-safe sends leave no in-flight marker).
                None => r.any_cut_short(),
            }
        })
    }

    /// Asks the API whether `req` (a non-idempotent write) happened, with the read the catalog
    /// declares for the action.
    /// `since`: when the write was first attempted (the read looks at objects created since,
    /// less the server's clock skew); `None` falls back to the start of the logical run.
    pub(super) async fn verify(
        &self,
        req: &HttpRequest,
        since: Option<jiff::Timestamp>,
    ) -> Verified {
        let Some(how) = self.spec().and_then(|s| catalog::outcomes(s).verify) else {
            return Verified::Cannot("the catalog has no read that can verify this action".into());
        };
        let since = since
            .and_then(|t| t.checked_sub(crate::execute::verify::CLOCK_SKEW).ok())
            .or(self.shared.options.since);
        let routes = self.step.settings.routes;
        let key = crate::execute::verify::claim_key(how, req, routes);
        let claimed = key
            .as_ref()
            .and_then(|k| self.shared.claims.lock().expect("claims").get(k).copied())
            .unwrap_or(0);
        let found =
            crate::execute::verify::verify(how, req, since, routes, claimed, |read| async move {
                self.read(&read).await.into_read()
            })
            .await;
        if matches!(found, Verified::Happened(_)) {
            self.claim(key);
        }
        found
    }

    /// Counts one more object of this write's kind as accounted for (see `verify::claim_key`).
    pub(super) fn claim(&self, key: Option<String>) {
        if let Some(k) = key {
            *self
                .shared
                .claims
                .lock()
                .expect("claims")
                .entry(k)
                .or_default() += 1;
        }
    }

    /// A write the catalog can verify succeeded: its object is accounted for, so a later
    /// verification of an identical write does not take it for its own.
    pub(super) fn claim_success(&self, req: &HttpRequest) {
        if let Some(how) = self.spec().and_then(|s| catalog::outcomes(s).verify) {
            self.claim(crate::execute::verify::claim_key(
                how,
                req,
                self.step.settings.routes,
            ));
        }
    }

    /// Runs the v2 upload flow (api-notes "Files") for `up` and returns the file id. The three
    /// requests are retry-safe (an upload has no visible effect). On failure, the item's result:
    /// the error says which step failed.
    pub(super) async fn upload(&self, up: Upload) -> Result<String, Done> {
        let safe = Sender {
            idempotent: true,
            timeout: self.step.settings.timeout,
            ..*self
        };
        let failed = |n: u8, what: &str, done: Done, error: String| Done {
            error: Some(format!(
                "upload of {} failed at step {n}/3 ({what}): {error}",
                up.name
            )),
            request: None,
            response: None,
            ..done
        };
        let start = up.start_request();
        let what = "GET /core/v2/file";
        let done = safe.exchange(Wire::Api(&start)).await;
        if done.status != ItemStatus::Succeeded {
            let e = done.error.clone().unwrap_or_default();
            return Err(failed(1, what, done, e));
        }
        let (temp_id, url) = match upload::parse_started(&template::to_json(&done.output)) {
            Ok(v) => v,
            Err(e) => return Err(failed(1, what, done, e)),
        };
        let what = "PUT to the upload URL";
        let done = safe
            .exchange(Wire::Put {
                url: &url,
                content_type: &up.mime_type,
                bytes: &up.bytes,
            })
            .await;
        if done.status != ItemStatus::Succeeded {
            let e = done.error.clone().unwrap_or_default();
            return Err(failed(2, what, done, e));
        }
        let confirm = Upload::confirm_request(&temp_id);
        let what = "POST /core/v2/file";
        let done = safe.exchange(Wire::Api(&confirm)).await;
        if done.status != ItemStatus::Succeeded {
            let e = done.error.clone().unwrap_or_default();
            return Err(failed(3, what, done, e));
        }
        upload::parse_confirmed(&template::to_json(&done.output))
            .map_err(|e| failed(3, what, done, e))
    }

    pub(super) async fn exchange(&self, wire: Wire<'_>) -> Done {
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
        let policy = &step.settings.retry;
        let mut attempts = 0u32;
        // How many of the attempts were answered 429.
        let mut throttled = 0u32;
        let mut ambiguous_before = false;
        // Sends repeated after a read showed the earlier one did not happen.
        let mut resends = 0u32;
        // When the first attempt was sent (verification looks for effects since).
        let mut first_attempt_at: Option<jiff::Timestamp> = None;
        let mut rng = jitter_rng();
        let not_sent = |attempts: u32| Done {
            attempts,
            ..Done::failed(
                "not sent: the run stopped while this item waited for the rate limiter".into(),
                started,
            )
        };
        loop {
            // `plan --read-budget`: every attempt of a read counts.
            if let Some(super::PlanMode::Plan(cap)) = &shared.options.plan_mode {
                if !cap.take_read() {
                    shared.abort(format!(
                        "the read budget ({} requests, --read-budget) is spent; no plan was written",
                        cap.budget.unwrap_or_default()
                    ));
                    return Done {
                        attempts,
                        ..Done::failed("not sent: the read budget is spent".into(), started)
                    };
                }
            }
            // The first request of the run is sent alone and doubles as the token check.
            let mut gate = None;
            if matches!(wire, Wire::Api(_)) && !shared.token_ok.load(Ordering::SeqCst) {
                // Waiting for it ends when the run stops.
                let Some(g) = shared.unless_stopped(shared.first_request.lock()).await else {
                    return not_sent(attempts);
                };
                if !shared.token_ok.load(Ordering::SeqCst) {
                    gate = Some(g);
                }
            }
            if shared.auth_refused.load(Ordering::SeqCst) {
                return Done {
                    attempts,
                    ..Done::failed(
                        "not sent: the API refused the token (see the run's abort reason)".into(),
                        started,
                    )
                };
            }
            // Both permits are held until the answer: the request counts until then. Waiting for
            // them ends when the run stops.
            let step_permit = match step_limiter {
                Some(l) => match shared.unless_stopped(l.acquire()).await {
                    Some(p) => Some(p),
                    None => return not_sent(attempts),
                },
                None => None,
            };
            let Some(permit) = shared.unless_stopped(limiter.acquire()).await else {
                return not_sent(attempts);
            };
            attempts += 1;
            first_attempt_at.get_or_insert_with(jiff::Timestamp::now);
            if !idempotent {
                let sending = Event::Sending {
                    step: &step.id,
                    index: si.index,
                    key: &si.key,
                };
                if let Err(e) = shared.displays.emit(&sending) {
                    let message = format!("not sent: {e}");
                    shared.abort(e);
                    return Done {
                        attempts: 0,
                        ..Done::failed(message, started)
                    };
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
            let verdict = match (classify(&result, idempotent), wire) {
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
                attempts,
                request: match wire {
                    Wire::Api(req) => Some(req.clone()),
                    Wire::Put { .. } => None,
                },
                ..Done::new(ItemStatus::Failed, started)
            };
            match &result {
                Ok(resp) => {
                    shared.unreachable.answered();
                    done.response =
                        Some((resp.status, (!resp.is_success()).then(|| resp.body.clone())));
                }
                Err(e) => done.error = Some(e.to_string()),
            }
            match verdict {
                Verdict::Success => {
                    let resp = result.expect("success has a response");
                    done.status = ItemStatus::Succeeded;
                    done.output = template::from_json(&resp.body);
                    if let (Wire::Api(req), false) = (wire, idempotent) {
                        self.claim_success(req);
                    }
                    return done;
                }
                Verdict::AuthRejected => {
                    let resp = result.expect("401 has a response");
                    let err = ApiError::from_response(resp.status, &resp.body);
                    shared.auth_refused.store(true, Ordering::SeqCst);
                    shared.abort(format!(
                        "authentication refused by the API ({err}); run aborted"
                    ));
                    done.error = Some(err.to_string());
                    return done;
                }
                Verdict::Retry { cause, after } => {
                    let is_429 = cause == RetryCause::RateLimited;
                    if is_429 {
                        shared.rate_limited.fetch_add(1, Ordering::Relaxed);
                        shared.emit(&Event::RateLimited { step: &step.id });
                    }
                    if matches!(
                        cause,
                        RetryCause::ServerError | RetryCause::Timeout | RetryCause::Broken
                    ) {
                        ambiguous_before = true;
                    }
                    // 429s were refused before any processing: they have their own, larger
                    // budget and do not use up the attempts meant for real failures.
                    if is_429 {
                        throttled += 1;
                    }
                    let exhausted = if is_429 {
                        throttled >= policy.attempts.saturating_mul(THROTTLE_FACTOR)
                    } else {
                        attempts - throttled >= policy.attempts
                    };
                    if exhausted || shared.cancelled() {
                        let last = match &result {
                            Ok(resp) => resp.describe(),
                            Err(e) => e.to_string(),
                        };
                        let mut error = format!("gave up after {attempts} attempts: {last}");
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
                        return done;
                    }
                    // A server-requested wait is capped (`settings.max_retry_wait`).
                    let max_wait = shared.program.settings.max_retry_wait;
                    let capped = after.map(|a| a.min(max_wait));
                    let wait = if after.is_some() || is_429 {
                        policy.wait_for_429(throttled.saturating_sub(1), capped, &mut rng)
                    } else {
                        policy.delay(attempts - throttled - 1, &mut rng)
                    };
                    if cause.pauses_limiter() {
                        // A 429 slows the whole run, not just this worker.
                        limiter.pause_until(tokio::time::Instant::now() + wait);
                    }
                    announce_wait(shared, step, cause, after, max_wait, wait);
                    shared.event(step, si, cause, &result, wait);
                    tracing::debug!(step = %step.id, key = %shared.redactor.redact(&si.key), ?wait, "retrying");
                    if shared
                        .unless_stopped(tokio::time::sleep(wait))
                        .await
                        .is_none()
                    {
                        let last = match &result {
                            Ok(resp) => resp.describe(),
                            Err(e) => e.to_string(),
                        };
                        done.error = Some(format!(
                            "gave up after {attempts} attempts (the run stopped during the wait \
                             before the next try): {last}"
                        ));
                        return done;
                    }
                }
                Verdict::Fail => {
                    let Ok(resp) = result else { return done };
                    let api = ApiError::from_response(resp.status, &resp.body);
                    let unchanged = matches!(wire, Wire::Api(_))
                        && self.spec().is_some_and(|s| {
                            catalog::outcomes(s).is_unchanged(resp.status, api.key.as_deref())
                        });
                    if unchanged {
                        let answer =
                            format!("{} {}", resp.status, api.key.as_deref().unwrap_or(""));
                        done.error = None;
                        done.response = Some((resp.status, None));
                        if ambiguous_before {
                            done.status = ItemStatus::Succeeded;
                            done.reason = Some(format!("an earlier attempt of this run worked: the retry was answered {answer} (already in the requested state)"));
                        } else if self.earlier_unfinished() {
                            done.status = ItemStatus::Succeeded;
                            done.reason = Some(format!("an earlier run was interrupted before it recorded this item, and the API answers {answer} (already in the requested state): taken as that attempt having worked"));
                        } else {
                            done.status = ItemStatus::Unchanged;
                            done.reason =
                                Some(format!("already in the requested state: answered {answer}"));
                        }
                        return done;
                    }
                    // A retry of an idempotent change may find it already done.
                    let retried_change = match wire {
                        Wire::Api(req)
                            if ambiguous_before
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
                    return done;
                }
                Verdict::Unknown => {
                    done.status = ItemStatus::Unknown;
                    if let (Wire::Api(req), false) = (wire, shared.cancelled()) {
                        let why = done.error.clone().unwrap_or_else(|| {
                            result
                                .as_ref()
                                .map(|r| ApiError::from_response(r.status, &r.body).to_string())
                                .unwrap_or_default()
                        });
                        let mut verified = self.verify(req, first_attempt_at).await;
                        if result.is_err() && verified == Verified::NotHappened {
                            // No answer at all (a timeout, a dropped connection): the server may
                            // still be working on it. Look again after a backoff before
                            // concluding it is safe to send again.
                            tokio::time::sleep(policy.delay(attempts - throttled - 1, &mut rng))
                                .await;
                            verified = self.verify(req, first_attempt_at).await;
                        }
                        match verified {
                            Verified::Happened(evidence) => {
                                done.status = ItemStatus::Succeeded;
                                done.error = None;
                                done.response = None;
                                done.reason = Some(format!("the outcome was unknown ({why}); a read found that the request took effect"));
                                done.output = template::from_json(&evidence);
                                done.evidence = Some(evidence);
                                return done;
                            }
                            Verified::NotHappened if resends < 1 => {
                                // The read shows it did not happen: safe to send once more.
                                resends += 1;
                                tracing::info!(step = %step.id, key = %shared.redactor.redact(&si.key), "verified not sent; sending again");
                                continue;
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
                    return done;
                }
            }
        }
    }
}

/// Waits at least this long are said in the log and the progress display.
pub(super) const WAIT_NOTICE: Duration = Duration::from_secs(1);

/// Says what a retry waits for and until when (the log, and the progress display), when the wait
/// is long enough to be noticed or a server-requested wait was capped.
pub(super) fn announce_wait(
    shared: &Shared,
    step: &StepPlan,
    cause: RetryCause,
    asked: Option<Duration>,
    max_wait: Duration,
    wait: Duration,
) {
    let was_capped = asked.is_some_and(|a| a > max_wait);
    if wait < WAIT_NOTICE && !was_capped {
        return;
    }
    let f = crate::duration::format_duration;
    let what = match cause {
        RetryCause::RateLimited => "rate limited (429)",
        RetryCause::NotSent => "cannot connect",
        RetryCause::ServerError => "server error",
        RetryCause::Timeout => "timed out",
        RetryCause::Broken => "connection broken",
        RetryCause::NotJson => "answer not JSON",
    };
    let until = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::MAX))
        .map_or_else(
            |_| "later".to_owned(),
            |t| t.strftime("%H:%M:%S UTC").to_string(),
        );
    let mut message = format!("{what}: waiting {} until {until} before retrying", f(wait));
    if let Some(a) = asked {
        message.push_str(&format!(" (the server asked for {}", f(a)));
        if was_capped {
            message.push_str(&format!(
                ", capped by settings.max_retry_wait {}",
                f(max_wait)
            ));
        }
        message.push(')');
    }
    message.push_str("; Ctrl-C ends the wait");
    tracing::warn!(step = %step.id, "{message}");
    shared.emit(&Event::Waiting {
        step: &step.id,
        message: &message,
    });
}

/// A fast RNG for backoff jitter, seeded from the thread's.
pub(super) fn jitter_rng() -> rand::rngs::SmallRng {
    use rand::SeedableRng;
    rand::rngs::SmallRng::from_rng(&mut rand::rng())
}
