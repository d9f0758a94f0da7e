//! Measures the run-wide rate limiter (`execute::rate`).
//!
//! (a) Overhead: 1,000,000 acquires from 64 tasks on the multi-threaded runtime, with the limiter
//!     off and with a limit too high to ever wait; prints acquires/s and ns per acquire.
//! (b) Real-time accuracy: `10/s` for 3 s with 16 tasks; prints the achieved rate, the most sends
//!     seen in any 1 s interval, and how late sends were relative to their earliest legal instant.
//!
//! Run: `cargo run --release --example limiter_bench`

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use wts_playbook::execute::{RateLimiter, RateSpec};

const TOTAL: usize = 1_000_000;
const TASKS: usize = 64;

async fn overhead(label: &str, spec: Option<RateSpec>) {
    let limiter = RateLimiter::new(spec);
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let limiter = limiter.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..TOTAL / TASKS {
                drop(limiter.acquire().await);
            }
        }));
    }
    for h in handles {
        h.await.expect("task panicked");
    }
    let elapsed = start.elapsed();
    let n = limiter.stats().acquired;
    #[expect(clippy::cast_precision_loss, reason = "display only")]
    let (per_sec, ns_each) = (
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / n as f64,
    );
    println!(
        "(a) {label:<28} {n} acquires from {TASKS} tasks in {elapsed:>10.3?}: \
         {per_sec:>12.0} acquires/s, {ns_each:>7.1} ns/acquire"
    );
}

async fn accuracy() {
    let spec = RateSpec::parse("10/s").expect("valid").expect("not off");
    let limiter = RateLimiter::new(Some(spec));
    let sends = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(3);
    let mut handles = Vec::new();
    for _ in 0..16 {
        let limiter = limiter.clone();
        let sends = Arc::clone(&sends);
        handles.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _permit = limiter.acquire() => {}
                    () = tokio::time::sleep_until(deadline) => break,
                }
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                sends.lock().expect("not poisoned").push(now);
            }
        }));
    }
    for h in handles {
        h.await.expect("task panicked");
    }
    let mut sends = sends.lock().expect("not poisoned").clone();
    sends.sort();
    let max_in_any_second = sends
        .iter()
        .map(|&t| {
            sends
                .iter()
                .filter(|&&s| s >= t && s < t + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    // Send k's earliest legal instant is start + (k / 10) s.
    let lateness: Vec<Duration> = sends
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let slot = start + Duration::from_secs(u64::try_from(k / 10).expect("small"));
            s.saturating_duration_since(slot)
        })
        .collect();
    let max_late = lateness.iter().max().copied().unwrap_or_default();
    let mean_late =
        lateness.iter().sum::<Duration>() / u32::try_from(lateness.len().max(1)).expect("small");
    #[expect(clippy::cast_precision_loss, reason = "display only")]
    let rate = sends.len() as f64 / 3.0;
    println!(
        "(b) spec 10/s, 16 tasks, 3 s: {} sends = {rate:.2}/s achieved (spec 10/s); \
         max {max_in_any_second} in any 1 s interval; lateness vs earliest legal slot: \
         mean {mean_late:.2?}, max {max_late:.2?}",
        sends.len()
    );
}

#[tokio::main]
async fn main() {
    overhead("off:", None).await;
    overhead(
        "huge limit (1e9/s):",
        RateSpec::parse("1000000000/s").expect("valid"),
    )
    .await;
    overhead(
        "huge, two windows:",
        RateSpec::parse("1000000000/s,2000000000/h").expect("valid"),
    )
    .await;
    accuracy().await;
}
