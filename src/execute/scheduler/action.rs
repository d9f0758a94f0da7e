//! One action item sent: planned by [`crate::plan::plan_action`] (a dry run stops there),
//! then sent through the sender, paged through, or uploaded first.

use super::{
    not_a_page, plan, read_pages, template, upload, verify_carried_unknown, ActionSpec, Done,
    Instant, ItemStatus, JValue, Placeholder, RateLimiter, Sender, Shared, SourceItem, StepPlan,
    Transport, Upload, SYNC_SEND_TIMEOUT,
};

pub(super) async fn run_action(
    shared: &Shared,
    step: &StepPlan,
    spec: &'static ActionSpec,
    with: &[(String, crate::template::Tree)],
    si: &SourceItem,
    ctx: &JValue,
    step_limiter: Option<&RateLimiter>,
) -> Done {
    let started = Instant::now();
    match plan::plan_action(step, spec, with, si, ctx, shared.dry) {
        Ok(planned) => {
            let secret_values = planned.secret_values.clone();
            let mut done =
                send_action(shared, step, spec, planned, si, step_limiter, started).await;
            done.secret_values = secret_values;
            done
        }
        Err(e) => Done {
            secret_values: e.secret_values,
            ..Done::failed(e.error, started)
        },
    }
}

/// Sends one planned action item.
async fn send_action(
    shared: &Shared,
    step: &StepPlan,
    spec: &'static ActionSpec,
    planned: plan::PlannedAction,
    si: &SourceItem,
    step_limiter: Option<&RateLimiter>,
    started: Instant,
) -> Done {
    let plan::PlannedAction {
        params,
        request: mut req,
        idempotent,
        sync,
        ..
    } = planned;
    let max_pages = step.paginate;
    // `file_base64` (api-notes "Files"): decoded now, so a dry run (and the preflight of a real
    // run) finds bad base64 too; not a placeholder for an output the dry run does not have.
    let decode = !(shared.dry
        && params
            .get("file_base64")
            .is_some_and(template::has_placeholder));
    let upload = match Upload::from_params(spec, &params, decode) {
        Ok(u) => u,
        Err(e) => return Done::failed(plan::describe_item(si, &e), started),
    };
    if shared.dry {
        if let Some(up) = &upload {
            upload::set_file_id(spec, &mut req, &up.placeholder());
        }
        let mut done = Done::new(ItemStatus::Planned, started);
        done.output = Placeholder::value(format!("steps.{}.output", step.id));
        done.request = Some(req);
        return done;
    }
    let Transport::Http { client, limiter } = &shared.transport else {
        unreachable!("dry handled above")
    };
    // A synchronous send waits up to 25 s for the provider (api-notes "Sends"): give it 40 s.
    let timeout = if sync {
        step.settings.timeout.max(SYNC_SEND_TIMEOUT)
    } else {
        step.settings.timeout
    };
    let sender = Sender {
        shared,
        step,
        si,
        client,
        limiter,
        step_limiter,
        idempotent,
        started,
        timeout,
    };
    if let Some(done) = verify_carried_unknown(&sender, &req).await {
        return done;
    }
    if let Some(up) = upload {
        return match sender.upload(up).await {
            Ok(file_id) => {
                upload::set_file_id(spec, &mut req, &file_id);
                sender.send(req).await
            }
            Err(done) => done,
        };
    }
    let Some(bound) = max_pages else {
        let done = sender.send(req).await;
        if spec.paginated && done.status == ItemStatus::Succeeded {
            if let Some(e) = not_a_page(&template::to_json(&done.output)) {
                return Done {
                    error: Some(e),
                    status: ItemStatus::Failed,
                    output: JValue::from(()),
                    ..done
                };
            }
        }
        return done;
    };
    read_pages(shared, &sender, spec, params, bound, started).await
}
