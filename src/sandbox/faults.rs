//! Optional realism: per-token sliding-window rate limiting, latency with jitter, and fault
//! injection before or after the state changes. All random draws come from one generator
//! seeded with the sandbox seed, so a sequential test sees the same faults every run.
//!
//! In: the `SandboxConfig` knobs. Out: decisions (`admit`, `delay`, `before`, `after`).

use super::config::SandboxConfig;
use axum::http::StatusCode;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What happens to a request before it reaches the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Before {
    Pass,
    /// Answer this 5xx with the error envelope; the state is untouched.
    Fail(StatusCode),
    /// Close the connection without a response; the state is untouched.
    Drop,
}

/// What happens to a request after it changed the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum After {
    Pass,
    /// The change is applied, the client gets 503.
    Fail,
    /// The change is applied, the connection is closed without a response.
    Drop,
}

/// Rate limiter, latency and fault dice for one sandbox.
#[derive(Debug)]
pub(super) struct Realism {
    latency: Duration,
    jitter_ms: u64,
    fail_rate: f64,
    drop_rate: f64,
    fail_after_rate: f64,
    drop_after_rate: f64,
    windows: Vec<(u32, Duration)>,
    seed: u64,
    rng: Mutex<SmallRng>,
    /// Per token: for each window, the admission times inside it (oldest first).
    log: Mutex<HashMap<String, Vec<VecDeque<Instant>>>>,
}

impl Realism {
    pub(super) fn new(cfg: &SandboxConfig) -> Realism {
        Realism {
            latency: Duration::from_millis(cfg.latency_ms),
            jitter_ms: cfg.jitter_ms,
            fail_rate: cfg.fail_rate,
            drop_rate: cfg.drop_rate,
            fail_after_rate: cfg.fail_after_rate,
            drop_after_rate: cfg.drop_after_rate,
            windows: cfg.rate_limit.clone(),
            seed: cfg.seed,
            // A different stream from the data generator, still derived from the seed.
            rng: Mutex::new(SmallRng::seed_from_u64(cfg.seed ^ 0x5A4D_B0C5)),
            log: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets the rate-limit history and restarts the dice.
    pub(super) fn reset(&self) {
        lock(&self.log).clear();
        *lock(&self.rng) = SmallRng::seed_from_u64(self.seed ^ 0x5A4D_B0C5);
    }

    /// Admits a request for `token`, or says how long until a slot frees (`Err`).
    /// A request is admitted only if every window has room; it then counts in all of them.
    /// Rejected requests do not count.
    pub(super) fn admit(&self, token: &str) -> Result<(), Duration> {
        if self.windows.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let mut log = lock(&self.log);
        let logs = log
            .entry(token.to_owned())
            .or_insert_with(|| vec![VecDeque::new(); self.windows.len()]);
        let mut wait = Duration::ZERO;
        for ((count, window), times) in self.windows.iter().zip(logs.iter_mut()) {
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= *window)
            {
                times.pop_front();
            }
            if times.len() >= *count as usize {
                let oldest = times[times.len() - *count as usize];
                wait = wait.max(window.saturating_sub(now.duration_since(oldest)));
            }
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        for times in logs.iter_mut() {
            times.push_back(now);
        }
        Ok(())
    }

    /// The latency to add to this request, if any.
    pub(super) fn delay(&self) -> Option<Duration> {
        if self.jitter_ms == 0 {
            return (!self.latency.is_zero()).then_some(self.latency);
        }
        let extra = lock(&self.rng).random_range(0..=self.jitter_ms);
        Some(self.latency + Duration::from_millis(extra))
    }

    /// The fault, if any, that strikes before the state is touched.
    pub(super) fn before(&self) -> Before {
        if self.fail_rate <= 0.0 && self.drop_rate <= 0.0 {
            return Before::Pass;
        }
        let mut rng = lock(&self.rng);
        if self.drop_rate > 0.0 && rng.random_bool(self.drop_rate.min(1.0)) {
            return Before::Drop;
        }
        if self.fail_rate > 0.0 && rng.random_bool(self.fail_rate.min(1.0)) {
            let status = [
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::BAD_GATEWAY,
                StatusCode::SERVICE_UNAVAILABLE,
            ][rng.random_range(0..3)];
            return Before::Fail(status);
        }
        Before::Pass
    }

    /// The fault, if any, that strikes after a successful request was applied.
    pub(super) fn after(&self) -> After {
        if self.fail_after_rate <= 0.0 && self.drop_after_rate <= 0.0 {
            return After::Pass;
        }
        let mut rng = lock(&self.rng);
        if self.drop_after_rate > 0.0 && rng.random_bool(self.drop_after_rate.min(1.0)) {
            return After::Drop;
        }
        if self.fail_after_rate > 0.0 && rng.random_bool(self.fail_after_rate.min(1.0)) {
            return After::Fail;
        }
        After::Pass
    }
}

/// Locks a mutex, recovering the data if a holder panicked (the sandbox keeps serving).
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SandboxConfig {
        SandboxConfig::default()
    }

    #[test]
    fn sliding_windows_all_enforced() {
        let r = Realism::new(&SandboxConfig {
            rate_limit: vec![
                (3, Duration::from_millis(200)),
                (4, Duration::from_secs(60)),
            ],
            ..cfg()
        });
        for _ in 0..3 {
            assert!(r.admit("a").is_ok());
        }
        let wait = r.admit("a").unwrap_err();
        assert!(wait <= Duration::from_millis(200));
        assert!(r.admit("b").is_ok(), "windows are per token");
        std::thread::sleep(Duration::from_millis(210));
        assert!(r.admit("a").is_ok());
        // The 60 s window (4) is now full even though the short one has room.
        assert!(r.admit("a").unwrap_err() > Duration::from_secs(50));
    }

    #[test]
    fn faults_repeat_with_the_seed() {
        let c = SandboxConfig {
            fail_rate: 0.3,
            drop_rate: 0.2,
            ..cfg()
        };
        let a: Vec<_> = {
            let r = Realism::new(&c);
            (0..50).map(|_| r.before()).collect()
        };
        let r = Realism::new(&c);
        let b: Vec<_> = (0..50).map(|_| r.before()).collect();
        assert_eq!(a, b);
        assert!(a.contains(&Before::Drop));
        assert!(a.iter().any(|x| matches!(x, Before::Fail(_))));
        assert!(a.contains(&Before::Pass));
        let off = Realism::new(&cfg());
        assert_eq!(off.before(), Before::Pass);
        assert_eq!(off.after(), After::Pass);
        assert_eq!(off.delay(), None);
    }
}
