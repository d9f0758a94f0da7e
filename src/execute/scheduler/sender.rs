//! The sender: one item's requests through the rate limiters, the first-request token gate,
//! retries that know idempotency, the outcome rules of the catalog (unchanged answers,
//! recovery, verification of unknown outcomes) and the v2 upload flow.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Done, Event, Shared};
use crate::catalog::{self, ActionSpec, HttpRequest};
use crate::execute::client::Client;
use crate::execute::rate::RateLimiter;
use crate::execute::retry::RetryCause;
use crate::execute::upload::{self, Upload};
use crate::execute::verify::Verified;
use crate::plan::SourceItem;
use crate::program::{StepKind, StepPlan};
use crate::report::ItemStatus;
use crate::template;

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
