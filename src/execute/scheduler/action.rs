//! One action item sent: planned by [`crate::plan::plan_action`] (a dry run stops there),
//! then sent through the sender, paged through, or uploaded first.

use super::{
    not_a_page, plan, read_pages, template, upload, verify_carried_unknown, ActionSpec, Done,
    Instant, ItemStatus, JValue, Placeholder, RateLimiter, Sender, Shared, SourceItem, StepPlan,
    Transport, Upload, SYNC_SEND_TIMEOUT,
};
use super::{plan_capture, PlanMode};

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
    let read = crate::catalog::is_read(spec);
    // A plan's write may hold values known only after apply (placeholders), as a dry run's.
    let capturing = !read && matches!(shared.options.plan_mode, Some(PlanMode::Plan(_)));
    match plan::plan_action(step, spec, with, si, ctx, shared.dry || capturing) {
        Ok(planned) => {
            let secret_values = planned.secret_values.clone();
            // `plan`'s reads and apply's refresh: each read's answer is kept for the apply
            // that follows (keyed by its rendered parameters), so a listing is read once.
            let params_key = match &shared.options.plan_mode {
                Some(_) if read => serde_json::to_string(&planned.params).ok(),
                _ => None,
            };
            if let (Some(PlanMode::Apply(ix)), Some(k)) = (&shared.options.plan_mode, &params_key) {
                if let Some(v) = ix.reads.get(&step.id, &si.key, k) {
                    let mut done = Done::new(ItemStatus::Succeeded, started);
                    done.output = template::from_json(v);
                    done.reason = Some("read by apply's refresh".into());
                    return done;
                }
            }
            let write_mode = if read {
                None
            } else {
                shared
                    .options
                    .plan_mode
                    .as_ref()
                    .map(|m| (m, &secret_values, ctx))
            };
            let mut done = send_action(
                shared,
                step,
                spec,
                planned,
                si,
                step_limiter,
                started,
                write_mode,
            )
            .await;
            if let (Some(PlanMode::Plan(cap)), Some(k)) = (&shared.options.plan_mode, &params_key) {
                if done.status == ItemStatus::Succeeded {
                    cap.read_done(&step.id, &si.key, k, template::to_json(&done.output));
                }
            }
            done.secret_values = secret_values;
            done
        }
        Err(e) => Done {
            secret_values: e.secret_values,
            ..Done::failed(e.error, started)
        },
    }
}

/// Sends one planned action item. `write_mode`: a write of a `plan` (captured, not sent) or
/// an `apply` (sent only as planned), with the values that read a secret and the item's
/// context.
#[expect(clippy::too_many_arguments, reason = "one item's whole situation")]
async fn send_action(
    shared: &Shared,
    step: &StepPlan,
    spec: &'static ActionSpec,
    planned: plan::PlannedAction,
    si: &SourceItem,
    step_limiter: Option<&RateLimiter>,
    started: Instant,
    write_mode: Option<(&PlanMode, &Vec<String>, &JValue)>,
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
    if let Some((mode, secret_values, ctx)) = write_mode {
        let item = (step, spec, si, started);
        if let Some(done) = plan_or_apply(shared, item, &req, idempotent, mode, secret_values, ctx)
        {
            return done;
        }
    }
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

/// A write in a `plan` (captured, not sent: `Planned`) or an `apply` (`None`: send it as
/// planned; else `drifted`, or `skipped` when the plan does not have it).
fn plan_or_apply(
    shared: &Shared,
    (step, spec, si, started): (&StepPlan, &'static ActionSpec, &SourceItem, Instant),
    req: &crate::catalog::HttpRequest,
    idempotent: bool,
    mode: &PlanMode,
    secret_values: &[String],
    ctx: &JValue,
) -> Option<Done> {
    let program = &shared.program;
    let reads = plan_capture::field_values(&plan_capture::fields_read(program, step), ctx);
    match mode {
        PlanMode::Plan(cap) => {
            cap.push(plan_capture::Captured {
                step: step.id.clone(),
                index: si.index,
                key: si.key.clone(),
                spec,
                request: req.clone(),
                idempotent,
                secret_forms: secret_values.to_vec(),
                reads,
                source: plan_capture::source_of(program, step, si.line),
            });
            let mut done = Done::new(ItemStatus::Planned, started);
            done.output = Placeholder::value(format!("steps.{}.output", step.id));
            done.request = Some(req.clone());
            Some(done)
        }
        PlanMode::Apply(ix) => match ix.decide(&step.id, &si.key, req, &reads) {
            plan_capture::Decision::Send(_) => None,
            plan_capture::Decision::Drifted(_, reason) => Some(Done {
                reason: Some(reason),
                request: Some(req.clone()),
                ..Done::new(ItemStatus::Drifted, started)
            }),
            plan_capture::Decision::NotPlanned => Some(Done {
                reason: Some("not in the plan: apply sends only the planned writes".into()),
                ..Done::new(ItemStatus::Skipped, started)
            }),
        },
    }
}
