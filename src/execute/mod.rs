//! The executor: rate limiter, retries, HTTP client, scheduler.
//!
//! In: rendered requests (`catalog::HttpRequest`) with their action's idempotency.
//! Out: responses classified into what the scheduler does next (`retry::Verdict`).
//! This module only declares and re-exports; one concept per file:
//!
//! - `scheduler/` runs the program: stages, concurrency, Ctrl-C, pipelines (`mod.rs`); the items
//!   of a fan-out (`items.rs`); one action item rendered and sent (`action.rs`); one item's
//!   requests through limiters, retries, outcome rules and uploads (`sender.rs`); `paginate`
//!   (`pagination.rs`); `--resume` carry-over and verification before a resend (`resume.rs`);
//!   what a finished item leaves behind: report line, counts, failed CSV, budget (`record.rs`).
//! - `client` (HTTP), `rate` (the sliding-window limiter), `retry` (the verdict of one attempt),
//!   `verify` (reads that tell whether a write happened), `upload` (the v2 file flow),
//!   `unreachable` (consecutive connection failures).
//!
//! The settings they enforce (rate windows, retry policy) live in `crate::settings`.

pub(crate) mod client;
pub mod rate;
pub(crate) mod retry;

pub(crate) use client::{ApiResponse, Client, TransportError};
pub use rate::{RateLimiter, RateSpec};
pub(crate) mod scheduler;
pub(crate) mod unreachable;
pub mod upload;
pub(crate) mod verify;

pub(crate) use scheduler::{execute, RunOptions, RunResult, Transport};
