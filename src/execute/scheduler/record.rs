//! What a finished item leaves behind: its report line (secrets redacted, outputs kept for
//! `--resume`), handed to the displays as an event; the step's counts and kept results; the
//! failure budget and `on_error: stop`; and the dry run's per-step preview.

use super::{
    plan, template, Done, Event, ItemRecord, ItemStatus, Ordering, RequestRecord, ResponseRecord,
    Shared, SourceItem, StepKind, StepPlan, StepState,
};

/// Writes a finished item to the report and the step's state; applies the failure budget.
pub(super) fn record(
    shared: &Shared,
    step: &StepPlan,
    si: &SourceItem,
    mut done: Done,
    parent: Option<&str>,
) {
    let (item, error, span) = item_record(shared, step, si, &mut done, parent);
    let Done {
        status,
        attempts,
        carried,
        output,
        ..
    } = done;
    shared.emit(&Event::ItemFinished {
        step,
        source: si,
        record: &item,
        carried,
    });
    let failed = status.is_failure();
    let (fails, planned) = {
        let mut states = shared.states.lock().expect("states");
        let st = states.get_mut(&step.id).expect("state exists");
        st.totals.add(status);
        if carried && failed {
            st.carried_fails += 1;
        }
        if let Some((started_at, ended_at)) = span {
            st.first_start = Some(st.first_start.map_or(started_at, |t| t.min(started_at)));
            st.last_end = Some(st.last_end.map_or(ended_at, |t| t.max(ended_at)));
        }
        st.requests += u64::from(attempts);
        if shared.dry && st.preview.len() < shared.options.preview {
            if let Some(r) = &item.request {
                let body = r.body.as_ref().map(|b| format!(" {b}")).unwrap_or_default();
                st.preview
                    .push(format!("[{}] {} {}{body}", item.key, r.method, r.path));
            }
        }
        if failed && st.first_errors.len() < 3 {
            if let Some(e) = &error {
                st.first_errors.push(format!("[{}] {e}", item.key));
            }
        }
        if step.keep_results || !step.fans_out() {
            let label = status.as_str();
            if !step.fans_out() && parent.is_none() {
                st.output = Some(output.clone());
            }
            if step.keep_results {
                let result = plan::result_value(si, label, &output, error.as_deref());
                st.results.push((si.index, label.to_owned(), result));
            }
        }
        (
            (st.totals.failed + st.totals.unknown).saturating_sub(st.carried_fails),
            st.planned_items.max(st.totals.total()),
        )
    };
    if failed {
        if carried {
            // An earlier run's unresolved item: listed, not this run's failure.
            return;
        }
        if step.settings.on_error == crate::playbook::OnError::Stop && !shared.dry {
            shared.stopped.store(true, Ordering::SeqCst);
            shared.halt();
        }
        if let Some(budget) = step.settings.max_failures {
            if !shared.dry && budget.exceeded(fails, planned) {
                shared
                    .budget_stop
                    .lock()
                    .expect("budget")
                    .get_or_insert_with(|| (step.id.clone(), budget));
                shared.abort(format!(
                    "failure budget exceeded: {fails} of {planned} items of step `{}` failed (max_failures {budget})",
                    step.id
                ));
            }
        }
    }
}

/// The report line of a finished item, secrets redacted (the run's, and the values this item
/// rendered from one); its error as the report says it; and when it started and ended (an item
/// a real run sent; `None` for a dry run's and for skipped ones).
fn item_record(
    shared: &Shared,
    step: &StepPlan,
    si: &SourceItem,
    done: &mut Done,
    parent: Option<&str>,
) -> (
    ItemRecord,
    Option<String>,
    Option<(jiff::Timestamp, jiff::Timestamp)>,
) {
    // The run's secrets, and this item's values rendered from one.
    let item_secrets;
    let redactor = if done.secret_values.is_empty() {
        &shared.redactor
    } else {
        item_secrets = shared.redactor.with(&done.secret_values);
        &item_secrets
    };
    // Moved, not copied, into the record: a dry run of a million rows makes a million of them.
    let request = done.request.take().map(|r| {
        let mut rec = RequestRecord {
            method: r.method,
            path: r.path_and_query(),
            body: r.body,
        };
        if !redactor.is_empty() {
            rec.path = redactor.redact(&rec.path).into_owned();
            if let Some(b) = &mut rec.body {
                redactor.redact_json(b);
            }
        }
        rec
    });
    let response = done.response.take().map(|(status, body)| ResponseRecord {
        status,
        body: body.map(|mut b| {
            redactor.redact_json(&mut b);
            b
        }),
    });
    let error = done.error.as_ref().map(|e| redactor.redact(e).into_owned());
    // The key is already redacted of the run's secrets (`run_step`); never of an item's
    // rendered values, so records, in-flight markers and `--resume` agree on it.
    let mut item = ItemRecord::new(step.id.clone(), si.index, si.key.clone(), done.status);
    item.attempts = done.attempts;
    let elapsed = done.started.elapsed();
    item.duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    // When it ran (a dry run's items and skipped ones did not): for the report's timeline.
    let span = (!shared.dry && done.status != ItemStatus::Skipped).then(|| {
        let ended_at = jiff::Timestamp::now();
        let started_at = ended_at
            .checked_sub(jiff::SignedDuration::try_from(elapsed).unwrap_or_default())
            .unwrap_or(ended_at);
        (started_at, ended_at)
    });
    if let Some((started_at, _)) = span {
        item.started_at = Some(started_at);
    }
    item.request = request;
    item.response = response;
    item.error.clone_from(&error);
    item.reason = done
        .reason
        .as_ref()
        .map(|r| redactor.redact(r).into_owned());
    item.line = si.line;
    if let Some(super::PlanMode::Apply(ix)) = &shared.options.plan_mode {
        item.seq = ix.seq_of(&step.id, &si.key);
    }
    item.parent = parent.map(|p| crate::report::ItemRef {
        step: p.to_owned(),
        index: si.index,
    });
    item.evidence = done.evidence.take().map(|mut e| {
        redactor.redact_json(&mut e);
        e
    });
    // What later steps read is recorded, so that `--resume` can hand it on.
    let read_later = step.keep_results || parent.is_some() || !step.fans_out();
    if read_later
        && !shared.dry
        && matches!(done.status, ItemStatus::Succeeded | ItemStatus::Unchanged)
    {
        let mut out = template::to_json(&done.output);
        if !out.is_null() {
            redactor.redact_json(&mut out);
            let size = serde_json::to_vec(&out).map_or(usize::MAX, |v| v.len());
            if size <= crate::report::OUTPUT_CAP {
                item.output = Some(out);
            } else {
                item.output_omitted = true;
            }
        }
    }

    (item, error, span)
}

pub(super) fn preview_step(step: &StepPlan, st: &StepState) -> String {
    let what = match &step.kind {
        StepKind::Action { spec, .. } => format!("{} {} {}", spec.name, spec.method, spec.path),
        StepKind::Pipeline(c) => format!("pipeline of {} steps", c.len()),
    };
    let t = &st.totals;
    let mut s = format!(
        "step {} — {what}\n  {} planned, {} skipped (when: {}), {} failed\n",
        step.id, t.planned, t.skipped, st.skipped_when, t.failed
    );
    for p in &st.preview {
        s.push_str(&format!("    {p}\n"));
    }
    let shown = st.preview.len() as u64;
    if t.planned > shown && shown > 0 {
        s.push_str(&format!("    … and {} more\n", t.planned - shown));
    }
    for e in &st.first_errors {
        s.push_str(&format!("  ! {e}\n"));
    }
    s
}
