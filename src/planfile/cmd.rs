//! The `plan` and `apply` subcommands.

use crate::cli::{ApplyArgs, PlanArgs};

pub(crate) fn plan_cmd(_args: &PlanArgs) -> u8 {
    crate::app::EXIT_INVALID
}

pub(crate) fn apply_cmd(_args: &ApplyArgs) -> u8 {
    crate::app::EXIT_INVALID
}
