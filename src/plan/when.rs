//! An item's `when:` condition, evaluated in its template context, and how an item is named in
//! the messages about it.

use minijinja::Value as JValue;

use super::SourceItem;
use crate::program::StepPlan;
use crate::template;

/// What an item's `when:` decides.
pub(crate) enum When {
    /// No condition, a true one, or (in a dry run) one that reads outputs it does not have.
    Run,
    /// False: the item is skipped, for this reason.
    Skip(String),
    /// The condition cannot be evaluated: the item fails with this message.
    Fail(String),
}

/// Evaluates `step.when` for item `si` in `ctx`. A dry run plans as if true a condition that
/// reads earlier steps' outputs (it does not have them).
pub(crate) fn check_when(step: &StepPlan, si: &SourceItem, ctx: &JValue, dry: bool) -> When {
    let Some(when) = step.when.as_ref() else {
        return When::Run;
    };
    if dry && step.when_reads_steps {
        return When::Run;
    }
    match when.eval(ctx) {
        Ok(v) if v.is_true() => When::Run,
        Ok(_) => When::Skip(format!("when: {} is false", when.source)),
        Err(e) => When::Fail(describe_item(
            si,
            &format!(
                "when: {}",
                template::describe_in(&e, &when.variables(), ctx)
            ),
        )),
    }
}

/// `e`, prefixed with the row it is about when the item came from a CSV row.
pub(crate) fn describe_item(si: &SourceItem, e: &str) -> String {
    match si.line {
        Some(line) => format!("row {} (line {line}, key {}): {e}", si.index + 1, si.key),
        None => e.to_owned(),
    }
}
