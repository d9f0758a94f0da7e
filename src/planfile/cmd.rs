//! The `plan` and `apply` subcommands.

use crate::cli::{ApplyArgs, PlanArgs};

pub fn plan_cmd(_args: &PlanArgs) -> u8 {
    crate::app::EXIT_INVALID
}

pub fn apply_cmd(_args: &ApplyArgs) -> u8 {
    crate::app::EXIT_INVALID
}
