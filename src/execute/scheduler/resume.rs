//! `--resume` inside a run: items an earlier report finished are carried (not sent, flowing on
//! with their status and output), and `unknown` ones are verified before they are sent again.

use super::{
    catalog, template, Done, HttpRequest, Instant, ItemStatus, JValue, Sender, Shared, SourceItem,
    StepKind, StepPlan, Verified,
};

/// `--resume`: an item an earlier report finished is not sent again; it takes part in later
/// steps with its earlier status and recorded output, exactly as if it had just run. Its record
/// is already in this run's report (carried over before the first request).
pub(super) fn resumed(
    shared: &Shared,
    step: &StepPlan,
    si: &SourceItem,
    started: Instant,
) -> Option<Done> {
    let resume = shared.options.resume.as_ref()?;
    let entry = resume.entry(&step.id, &si.key)?;
    // Reads are re-run (later steps need their fresh output); what changed state is not redone.
    // The raw `http` action's method is a parameter, so it is never taken for a read: what it
    // did is carried over like any write (its output included).
    let is_read = matches!(&step.kind, StepKind::Action { spec, .. }
        if spec.method == catalog::Method::Get && spec.name != catalog::HTTP.name);
    if is_read {
        return None;
    }
    let carry = match entry.status {
        ItemStatus::Succeeded
        | ItemStatus::Skipped
        | ItemStatus::Unchanged
        | ItemStatus::Drifted => true,
        // Verified (or sent again with --retry-unknown) by the sender; else stays unknown.
        ItemStatus::Unknown => !shared.options.retry_unknown && !can_verify(step),
        ItemStatus::Failed | ItemStatus::Planned => false,
    };
    if !carry {
        return None;
    }
    let reason = match entry.status {
        ItemStatus::Unknown => "carried over: unknown in an earlier report, and the catalog has no read that can verify it (use --retry-unknown to send it again)".into(),
        s => format!("carried over: {} in an earlier report", s.as_str()),
    };
    Some(Done {
        error: (entry.status == ItemStatus::Unknown)
            .then(|| "outcome unknown in an earlier run; not sent again".to_owned()),
        ..carried(entry, reason, started)
    })
}

/// An earlier record as this run's result: its status and recorded output, marked carried
/// (already in this run's report).
fn carried(entry: &crate::report::Entry, reason: String, started: Instant) -> Done {
    Done {
        reason: Some(reason),
        output: entry
            .output
            .as_ref()
            .map_or_else(|| JValue::from(()), template::from_json),
        carried: true,
        ..Done::new(entry.status, started)
    }
}

/// An item's earlier record, whatever its status, as a carried result (`--only-class` leaves
/// the rows it does not select exactly as the earlier report has them).
pub(super) fn carried_as_is(
    shared: &Shared,
    step: &StepPlan,
    si: &SourceItem,
    started: Instant,
) -> Option<Done> {
    let entry = shared.options.resume.as_ref()?.entry(&step.id, &si.key)?;
    if entry.status == ItemStatus::Planned || !matches!(step.kind, StepKind::Action { .. }) {
        return None;
    }
    let reason = format!(
        "carried over: {} in an earlier report (not selected by --only-class)",
        entry.status.as_str()
    );
    Some(carried(entry, reason, started))
}

/// Whether the catalog has a read that tells if this step's write happened.
pub(super) fn can_verify(step: &StepPlan) -> bool {
    matches!(&step.kind, StepKind::Action { spec, .. } if catalog::outcomes(spec).verify.is_some())
}

/// `--resume` of an item that an earlier run left `unknown`: where the catalog has a read that
/// can tell, ask it before sending. Found: `succeeded` with the evidence, nothing sent. Not
/// found: `None`, the item is sent (once). The read failed: still `unknown`, not sent (unless
/// `--retry-unknown`).
pub(super) async fn verify_carried_unknown(sender: &Sender<'_>, req: &HttpRequest) -> Option<Done> {
    let resume = sender.shared.options.resume.as_ref()?;
    if resume.status_of(&sender.step.id, &sender.si.key) != Some(ItemStatus::Unknown)
        || !can_verify(sender.step)
    {
        return None;
    }
    let started = sender.started;
    let since = resume
        .entry(&sender.step.id, &sender.si.key)
        .and_then(|e| e.started_at);
    match sender.verify(req, since).await {
        Verified::Happened(evidence) => Some(Done {
            reason: Some(
                "unknown in an earlier run; a read found that its request took effect".into(),
            ),
            output: template::from_json(&evidence),
            evidence: Some(evidence),
            ..Done::new(ItemStatus::Succeeded, started)
        }),
        Verified::NotHappened => None,
        Verified::Cannot(_) if sender.shared.options.retry_unknown => None,
        Verified::Cannot(e) => Some(Done {
            error: Some(format!(
                "outcome unknown in an earlier run; not sent again: verification failed: {e}"
            )),
            ..Done::new(ItemStatus::Unknown, started)
        }),
    }
}
