//! The executor: rate limiter, retries, HTTP client, scheduler.
