//! One item of a step: skipped if `--only-class` does not select it or an earlier report
//! finished it, its `when:` evaluated, then its action sent, or its pipeline of nested steps run
//! in order (each nested step sees the outputs of the ones before it, for this item).

use std::collections::BTreeMap;
use std::time::Instant;

use minijinja::Value as JValue;

use crate::execute::rate::RateLimiter;
use crate::plan::{self, SourceItem};
use crate::program::{StepKind, StepPlan};
use crate::report::ItemStatus;

use super::action::run_action;
use super::record::record;
use super::resume::{carried_as_is, resumed};
use super::{Done, Shared};

pub(super) async fn process_item(
    shared: &Shared,
    step: &StepPlan,
    si: SourceItem,
    steps: &JValue,
    step_limiter: Option<&RateLimiter>,
) {
    let started = Instant::now();
    if let Some(only) = &shared.options.only_keys {
        if !only.contains(&si.key) {
            // Not selected: nothing is sent or recorded; an earlier record flows on as it is.
            if let Some(done) = carried_as_is(shared, step, &si, started) {
                record(shared, step, &si, done, None);
            }
            return;
        }
    }
    // Resume: skip what an earlier run finished.
    if let StepKind::Action { .. } = step.kind {
        if let Some(done) = resumed(shared, step, &si, started) {
            record(shared, step, &si, done, None);
            return;
        }
    }
    let ctx = match plan::context(&shared.program, &shared.base, step, &si, steps) {
        Ok(c) => c,
        Err(e) => {
            record(
                shared,
                step,
                &si,
                Done::failed(plan::describe_item(&si, &e), started),
                None,
            );
            return;
        }
    };
    if let Some(skip) = check_when(shared, step, &si, &ctx, started) {
        record(shared, step, &si, skip, None);
        return;
    }
    match &step.kind {
        StepKind::Action { spec, with } => {
            let done = run_action(shared, step, spec, with, &si, &ctx, step_limiter).await;
            record(shared, step, &si, done, None);
        }
        StepKind::Pipeline(children) => {
            run_pipeline(shared, step, children, &si, steps, step_limiter).await;
        }
    }
}

/// One item's pipeline: its nested steps in order, each seeing the outputs of the ones before
/// it (for this item); a failed one ends the item's pipeline. The pipeline's own result (for
/// `steps.PARENT.succeeded` later) is kept, not reported.
async fn run_pipeline(
    shared: &Shared,
    step: &StepPlan,
    children: &[StepPlan],
    si: &SourceItem,
    steps: &JValue,
    step_limiter: Option<&RateLimiter>,
) {
    let mut overlay: BTreeMap<String, JValue> = steps
        .try_iter()
        .map(|keys| {
            keys.filter_map(|k| steps.get_item(&k).ok().map(|v| (k.to_string(), v)))
                .collect()
        })
        .unwrap_or_default();
    let mut all_ok = true;
    let mut last_output = JValue::from(());
    for child in children {
        if shared.cancelled() && !shared.dry {
            all_ok = false;
            break;
        }
        let started = Instant::now();
        let child_steps = JValue::from(overlay.clone());
        if let Some(done) = resumed(shared, child, si, started) {
            // Done in an earlier run: its recorded output goes on to the next steps.
            let ok = matches!(
                done.status,
                ItemStatus::Succeeded | ItemStatus::Unchanged | ItemStatus::Skipped
            );
            overlay.insert(
                child.id.clone(),
                plan::step_value(Some(done.output.clone()), None),
            );
            if done.status != ItemStatus::Skipped {
                last_output = done.output.clone();
            }
            record(shared, child, si, done, Some(&step.id));
            if !ok {
                all_ok = false;
                break;
            }
            continue;
        }
        let cctx = match plan::context(&shared.program, &shared.base, child, si, &child_steps) {
            Ok(c) => c,
            Err(e) => {
                record(
                    shared,
                    child,
                    si,
                    Done::failed(plan::describe_item(si, &e), started),
                    Some(&step.id),
                );
                all_ok = false;
                break;
            }
        };
        if let Some(skip) = check_when(shared, child, si, &cctx, started) {
            overlay.insert(
                child.id.clone(),
                plan::step_value(Some(JValue::from(())), None),
            );
            record(shared, child, si, skip, Some(&step.id));
            continue;
        }
        let StepKind::Action { spec, with } = &child.kind else {
            continue;
        };
        let done = run_action(shared, child, spec, with, si, &cctx, step_limiter).await;
        let ok = matches!(
            done.status,
            ItemStatus::Succeeded | ItemStatus::Planned | ItemStatus::Unchanged
        );
        overlay.insert(
            child.id.clone(),
            plan::step_value(Some(done.output.clone()), None),
        );
        last_output = done.output.clone();
        record(shared, child, si, done, Some(&step.id));
        if !ok {
            // A failed nested step ends this item's pipeline.
            all_ok = false;
            break;
        }
    }
    // The pipeline's own result (for `steps.PARENT.succeeded` later); not a report line.
    let status = if !all_ok {
        "failed"
    } else if shared.dry {
        "planned"
    } else {
        "succeeded"
    };
    if step.keep_results {
        let v = plan::result_value(si, status, &last_output, None);
        shared
            .states
            .lock()
            .expect("states")
            .get_mut(&step.id)
            .expect("state")
            .results
            .push((si.index, status.into(), v));
    }
}

/// The item's `when:`: `Some` (skipped, or failed) when it is not to run.
pub(super) fn check_when(
    shared: &Shared,
    step: &StepPlan,
    si: &SourceItem,
    ctx: &JValue,
    started: Instant,
) -> Option<Done> {
    // In a plan, a write's answer is not known yet: a `when` that reads one is planned as if
    // true, as a dry run plans it; apply evaluates it on the real answer, and a write whose
    // `when` is false there is not sent.
    let unknowable = shared.dry
        || (matches!(
            shared.options.plan_mode,
            Some(crate::planfile::capture::PlanMode::Plan(_))
        ) && shared.when_reads_write.contains(&step.id));
    match plan::check_when(step, si, ctx, unknowable) {
        plan::When::Run => None,
        plan::When::Skip(reason) => {
            // `apply`: a planned write whose `when` is false now drifted (it is not sent).
            if let Some(crate::planfile::capture::PlanMode::Apply(ix)) = &shared.options.plan_mode {
                let source = step.when.as_ref().map_or("", |w| w.source);
                if let Some((_, reason)) = ix.when_false(&step.id, &si.key, source) {
                    return Some(Done {
                        reason: Some(reason),
                        ..Done::new(ItemStatus::Drifted, started)
                    });
                }
            }
            shared
                .states
                .lock()
                .expect("states")
                .get_mut(&step.id)
                .expect("state")
                .skipped_when += 1;
            Some(Done {
                reason: Some(reason),
                ..Done::new(ItemStatus::Skipped, started)
            })
        }
        plan::When::Fail(e) => Some(Done::failed(e, started)),
    }
}
