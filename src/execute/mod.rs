//! The executor: rate limiter, retries, HTTP client, scheduler.
//!
//! In: rendered requests (`catalog::HttpRequest`) with their action's idempotency.
//! Out: responses classified into what the scheduler does next (`retry::Verdict`).
//! This module only declares and re-exports; one concept per file.

pub mod client;
pub mod rate;
pub mod retry;

pub use client::{ApiError, ApiResponse, CheckError, Client, TransportError, DEFAULT_MAX_BODY};
pub use rate::{LimiterStats, RateLimiter, RateSpec, Window};
pub use retry::{classify, parse_retry_after, RetryCause, RetryPolicy, Verdict};
pub mod scheduler;
pub mod unreachable;
pub mod upload;
pub mod verify;

pub use scheduler::{execute, RunOptions, RunResult, Transport};
pub use verify::Verified;
