//! The executor: it sends what the plan stage (`crate::plan`) planned.
//!
//! In: planned items (rendered requests, `catalog::HttpRequest`, with their idempotency).
//! Out: events (`events`): item finished, about to send, retry, wait, notice, which the report
//! writer, the `--failed-csv` file (`failed_rows`), the timeline and the progress display
//! consume. This module only declares and re-exports; one concept per file:
//!
//! - `scheduler/` runs the program: stages, concurrency, Ctrl-C, the dry-run driver (`mod.rs`);
//!   the run's shared state and an item's result (`state.rs`); one item, its pipeline of nested
//!   steps included (`item.rs`); one action item sent (`action.rs`); one item's requests
//!   through limiters, retries, outcome rules and uploads, and the waits said to the operator
//!   (`sender.rs`); `paginate` (`pagination.rs`); `--resume` carry-over and verification before
//!   a resend (`resume.rs`); what a finished item leaves behind: report line, counts, budget
//!   (`record.rs`).
//! - `client` (HTTP), `rate` (the sliding-window limiter), `retry` (the verdict of one attempt),
//!   `verify` (reads that tell whether a write happened), `upload` (the v2 file flow),
//!   `unreachable` (consecutive connection failures).
//!
//! The settings they enforce (rate windows, retry policy) live in `crate::settings`.

pub(crate) mod client;
pub(crate) mod events;
pub(crate) mod failed_rows;
pub(crate) mod interrupt;
pub mod rate;
pub(crate) mod retry;

pub(crate) use client::{ApiResponse, Client, TransportError};
pub use rate::{RateLimiter, RateSpec};
pub(crate) mod scheduler;
pub(crate) mod unreachable;
pub mod upload;
pub(crate) mod verify;

pub(crate) use scheduler::{dry_run, execute, RunOptions, RunResult, Transport};
