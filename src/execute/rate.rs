//! The run-wide rate limiter: every request of a run acquires from one [`RateLimiter`] before it
//! is sent, so the whole run stays under the account's limits (api-notes "Rate limits").
//!
//! In: a [`RateSpec`] parsed from `rate_limit:` / `--rate-limit` (`api`, `off`, or windows such
//! as `2/s` or `50/10s,900/5m`), and `pause_until` calls when a 429 is seen.
//! Out: `acquire().await` returns when sending now keeps every window satisfied.
//!
//! What holds:
//! * **Sliding windows, exactly.** For each window `N/W` the limiter keeps the times of the last
//!   `N` sends. A send at `t` is allowed when fewer than `N` earlier sends lie in `(t − W, t]`,
//!   i.e. at `max(now, log[len − N] + W)` once the log is full. So no half-open interval of length
//!   `W` ever holds more than `N` sends, which a sliding-log server and a fixed-window server both
//!   accept, and the limiter never waits longer than that rule requires (tests compare it with an
//!   independent brute-force reference). A continuously refilling token bucket (`governor`) is
//!   the wrong shape: after a full burst it admits requests a sliding-window server refuses.
//! * **FIFO among waiters.** Waiters queue on a `tokio::sync::Mutex`, held across the wait.
//!   Tokio documents that mutex as fair ("Tokio's Mutex operates on a guaranteed FIFO basis": locks
//!   are granted in the order `lock` was called), so requests go out in the order they asked.
//!   Only the head of the queue sleeps; the others wait for the lock.
//! * **Cancel-safe.** Dropping an `acquire` future before it returns records no send.
//! * **A 429 slows the whole run.** [`RateLimiter::pause_until`] stops every acquire until the
//!   given instant (the latest of all pauses wins), with or without windows.
//! * Times are `tokio::time::Instant`, so tests run on tokio's paused clock instantly.
//!
//! * **Counted until the answer.** `acquire` returns a [`Permit`]; the request it admits counts
//!   against every window from then on, and its time in the log is the moment the permit is
//!   dropped (the response came back, or the request failed). The server received the request
//!   before that moment, so however the network delays requests, no interval of length `W` at the
//!   server holds more than `N` of them: the limiter never trips the limit it enforces. The cost
//!   is about `latency / W` of the budget. Drop the permit right away to count the send at
//!   `acquire` time instead.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use crate::settings::RateSpec;
#[cfg(test)]
use crate::settings::Window;

/// Counters since the limiter was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimiterStats {
    /// Completed `acquire` calls.
    pub acquired: u64,
    /// Sum over acquires of the time from the call to its return.
    pub total_wait: Duration,
    /// Number of `pause_until` calls (one per 429 seen, as the scheduler uses it).
    pub paused_count: u64,
}

/// The run's shared limiter. Clone it freely: clones share one state.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    spec: Option<RateSpec>,
    /// The FIFO queue of waiters: held by the head waiter across its wait.
    queue: tokio::sync::Mutex<()>,
    /// Per window: the completion times of recent requests, and how many are in flight.
    logs: std::sync::Mutex<Vec<WindowLog>>,
    /// Woken when a request completes (it may free a slot).
    completed: tokio::sync::Notify,
    /// Reference point for `paused_until_nanos`.
    origin: Instant,
    /// Nanoseconds after `origin` before which nobody acquires; 0 = never paused.
    paused_until_nanos: AtomicU64,
    acquired: AtomicU64,
    total_wait_nanos: AtomicU64,
    paused_count: AtomicU64,
}

#[derive(Default)]
struct WindowLog {
    /// Completion times, oldest first (completions are recorded at `now`, so they stay sorted).
    done: VecDeque<Instant>,
    in_flight: usize,
}

/// One admitted request. It counts against the windows until dropped; its time in the log is
/// the moment it is dropped.
#[must_use = "the request counts from acquire until the permit is dropped"]
pub struct Permit {
    inner: Option<Arc<Inner>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let Some(spec) = &inner.spec else { return };
        let now = Instant::now();
        {
            let mut logs = inner.logs.lock().expect("limiter log");
            for (w, log) in spec.windows.iter().zip(logs.iter_mut()) {
                log.in_flight -= 1;
                log.done.push_back(now);
                while log.done.len() > w.count as usize {
                    log.done.pop_front();
                }
            }
        }
        inner.completed.notify_waiters();
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}

fn nanos_u64(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl RateLimiter {
    /// A limiter enforcing `spec`; `None` never waits except during a pause.
    pub fn new(spec: Option<RateSpec>) -> Self {
        let logs = spec.as_ref().map_or_else(Vec::new, |s| {
            s.windows
                .iter()
                .map(|w| WindowLog {
                    done: VecDeque::with_capacity(usize::try_from(w.count).unwrap_or(0).min(4096)),
                    in_flight: 0,
                })
                .collect()
        });
        RateLimiter {
            inner: Arc::new(Inner {
                spec,
                queue: tokio::sync::Mutex::new(()),
                logs: std::sync::Mutex::new(logs),
                completed: tokio::sync::Notify::new(),
                origin: Instant::now(),
                paused_until_nanos: AtomicU64::new(0),
                acquired: AtomicU64::new(0),
                total_wait_nanos: AtomicU64::new(0),
                paused_count: AtomicU64::new(0),
            }),
        }
    }

    /// Waits until a request may be sent now; the returned permit counts it until dropped.
    pub async fn acquire(&self) -> Permit {
        let inner = &*self.inner;
        let Some(spec) = &inner.spec else {
            // No windows: only a pause can hold us.
            if inner.paused_until_nanos.load(Ordering::Acquire) == 0 {
                inner.acquired.fetch_add(1, Ordering::Relaxed);
                return Permit { inner: None };
            }
            let start = Instant::now();
            while let Some(until) = self.paused_until() {
                tokio::time::sleep_until(until).await;
            }
            self.record(start);
            return Permit { inner: None };
        };
        let start = Instant::now();
        let queue = inner.queue.lock().await;
        loop {
            // Register for completions before reading the log, so none is missed.
            let completed = inner.completed.notified();
            let now = Instant::now();
            let mut ready = Some(self.paused_until().unwrap_or(now).max(now));
            {
                let mut logs = inner.logs.lock().expect("limiter log");
                for (w, log) in spec.windows.iter().zip(logs.iter_mut()) {
                    // Requests done at or before `now − per` can no longer constrain anything.
                    while log.done.front().is_some_and(|&t| t + w.per <= now) {
                        log.done.pop_front();
                    }
                    let n = w.count as usize;
                    if log.in_flight >= n {
                        ready = None; // only a completion can free a slot
                    } else if let Some(r) = &mut ready {
                        let free = n - log.in_flight;
                        if log.done.len() >= free {
                            *r = (*r).max(log.done[log.done.len() - free] + w.per);
                        }
                    }
                }
                if ready.is_some_and(|r| r <= now) {
                    for log in logs.iter_mut() {
                        log.in_flight += 1;
                    }
                    break;
                }
            }
            // Re-check after waking: a pause may have been extended, a request completed.
            match ready {
                Some(r) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(r) => {}
                        () = completed => {}
                    }
                }
                None => completed.await,
            }
        }
        drop(queue);
        self.record(start);
        Permit {
            inner: Some(self.inner.clone()),
        }
    }

    fn record(&self, start: Instant) {
        let inner = &*self.inner;
        inner.acquired.fetch_add(1, Ordering::Relaxed);
        inner
            .total_wait_nanos
            .fetch_add(nanos_u64(start.elapsed()), Ordering::Relaxed);
    }

    /// A 429 was seen: nobody acquires before `until`. An earlier pause that ends later is kept.
    pub(crate) fn pause_until(&self, until: Instant) {
        let inner = &*self.inner;
        inner.paused_count.fetch_add(1, Ordering::Relaxed);
        let nanos = nanos_u64(until.saturating_duration_since(inner.origin));
        inner.paused_until_nanos.fetch_max(nanos, Ordering::AcqRel);
    }

    /// The end of the current pause, if one is in effect now.
    pub(crate) fn paused_until(&self) -> Option<Instant> {
        let inner = &*self.inner;
        let nanos = inner.paused_until_nanos.load(Ordering::Acquire);
        if nanos == 0 {
            return None;
        }
        let until = inner.origin + Duration::from_nanos(nanos);
        (until > Instant::now()).then_some(until)
    }

    pub fn stats(&self) -> LimiterStats {
        let inner = &*self.inner;
        LimiterStats {
            acquired: inner.acquired.load(Ordering::Relaxed),
            total_wait: Duration::from_nanos(inner.total_wait_nanos.load(Ordering::Relaxed)),
            paused_count: inner.paused_count.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("spec", &self.inner.spec.as_ref().map(ToString::to_string))
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn spec(s: &str) -> RateSpec {
        RateSpec::parse(s).unwrap().unwrap()
    }

    fn w(count: u32, secs: u64) -> Window {
        Window {
            count,
            per: Duration::from_secs(secs),
        }
    }

    /// Reference check, independent of the limiter: a sliding-log server accepts a request at `t`
    /// when fewer than `count` accepted requests lie in `(t − per, t]`. Returns the number of
    /// requests such a server would reject.
    fn server_rejections(sends: &[Instant], window: Window) -> usize {
        let mut sorted = sends.to_vec();
        sorted.sort();
        let mut accepted: Vec<Instant> = Vec::new();
        let mut rejected = 0;
        for &t in &sorted {
            let in_window = accepted
                .iter()
                .filter(|&&a| a <= t && a + window.per > t)
                .count();
            if in_window < window.count as usize {
                accepted.push(t);
            } else {
                rejected += 1;
            }
        }
        rejected
    }

    /// Brute force: the earliest `t ≥ not_before` at which one more send keeps every window
    /// satisfied given `prev`. The only candidate instants are `not_before` and `p + per`.
    fn earliest_allowed(prev: &[Instant], windows: &[Window], not_before: Instant) -> Instant {
        let mut candidates = vec![not_before];
        for p in prev {
            for w in windows {
                if *p + w.per > not_before {
                    candidates.push(*p + w.per);
                }
            }
        }
        candidates.sort();
        candidates
            .into_iter()
            .find(|&t| {
                windows.iter().all(|w| {
                    prev.iter().filter(|&&a| a <= t && a + w.per > t).count() < w.count as usize
                })
            })
            .expect("the latest candidate always empties every window")
    }

    fn total_wait(pairs: &[(Instant, Instant)]) -> Duration {
        pairs.iter().map(|(arrival, send)| *send - *arrival).sum()
    }

    /// Spawn `tasks` tasks doing `per_task` acquires each; each records (arrival, send) pairs.
    async fn run(
        limiter: &RateLimiter,
        tasks: usize,
        per_task: usize,
        think: impl Fn(usize, usize) -> Duration + Send + Sync + Copy + 'static,
    ) -> Vec<(Instant, Instant)> {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for task in 0..tasks {
            let limiter = limiter.clone();
            let log = Arc::clone(&log);
            handles.push(tokio::spawn(async move {
                for i in 0..per_task {
                    tokio::time::sleep(think(task, i)).await;
                    let arrival = Instant::now();
                    drop(limiter.acquire().await);
                    log.lock().unwrap().push((arrival, Instant::now()));
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let mut out = log.lock().unwrap().clone();
        out.sort_by_key(|&(_, send)| send);
        out
    }

    #[test]
    fn parses_specs() {
        assert_eq!(RateSpec::parse("api").unwrap(), Some(RateSpec::api()));
        assert_eq!(RateSpec::parse(" API ").unwrap(), Some(RateSpec::api()));
        assert_eq!(RateSpec::parse("off").unwrap(), None);
        assert_eq!(spec("2/s").windows, vec![w(2, 1)]);
        assert_eq!(spec("100/min").windows, vec![w(100, 60)]);
        assert_eq!(spec("50/10s, 900/5m").windows, vec![w(50, 10), w(900, 300)]);
        assert_eq!(
            spec("3/500ms").windows,
            vec![Window {
                count: 3,
                per: Duration::from_millis(500)
            }]
        );
        assert_eq!(spec("api").to_string(), "200/5s,1000/5m");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "2/s",
            "100/m",
            "50/10s,900/5m",
            "3/500ms",
            "7/1.5s",
            "1/h",
            "10/90s",
        ] {
            let parsed = spec(s);
            assert_eq!(parsed.to_string(), s);
            assert_eq!(spec(&parsed.to_string()), parsed);
        }
        assert_eq!(spec("100/min").to_string(), "100/m");
        assert_eq!(spec("5/60s").to_string(), "5/m");
    }

    #[test]
    fn rejects_bad_specs_clearly() {
        let err = |s: &str| RateSpec::parse(s).expect_err(s);
        assert!(err("").contains("empty rate limit"));
        assert!(err("fast").contains("expected COUNT/DURATION"));
        assert!(err("0/s").contains("at least 1"));
        assert!(err("-1/s").contains("at least 1"));
        assert!(err("3.3/s").contains("whole number"));
        assert!(err("10/0s").contains("longer than zero"));
        assert!(err("10/").contains("empty duration"));
        assert!(err("10/fortnight").contains("unknown unit"));
        assert!(err("2/s,").contains("expected COUNT/DURATION"));
    }

    #[tokio::test(start_paused = true)]
    async fn five_per_second_paces_twenty_sends() {
        let limiter = RateLimiter::new(Some(spec("5/s")));
        let start = Instant::now();
        let pairs = run(&limiter, 4, 5, |_, _| Duration::ZERO).await;
        let sends: Vec<Instant> = pairs.iter().map(|(_, s)| *s).collect();
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_secs(3), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(3010), "{elapsed:?}");
        assert_eq!(sends.len(), 20);
        // No interval [t, t + 1s) holds more than 5 sends.
        for &t in &sends {
            let n = sends
                .iter()
                .filter(|&&s| s >= t && s < t + Duration::from_secs(1))
                .count();
            assert!(n <= 5, "{n} sends in the second starting {t:?}");
        }
        assert_eq!(server_rejections(&sends, w(5, 1)), 0);
        let stats = limiter.stats();
        assert_eq!(stats.acquired, 20);
        assert_eq!(stats.total_wait, total_wait(&pairs));
    }

    #[tokio::test(start_paused = true)]
    async fn two_windows_are_enforced_together() {
        let limiter = RateLimiter::new(Some(spec("3/s,5/10s")));
        let start = Instant::now();
        let sends = run(&limiter, 2, 5, |_, _| Duration::ZERO).await;
        let offsets: Vec<u64> = sends.iter().map(|(_, s)| (*s - start).as_secs()).collect();
        assert_eq!(offsets, [0, 0, 0, 1, 1, 10, 10, 10, 11, 11]);
        let times: Vec<Instant> = sends.iter().map(|(_, s)| *s).collect();
        assert_eq!(server_rejections(&times, w(3, 1)), 0);
        assert_eq!(server_rejections(&times, w(5, 10)), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_sustain_matches_a_sliding_window_server_exactly() {
        let windows = [
            Window {
                count: 10,
                per: Duration::from_secs(1),
            },
            Window {
                count: 30,
                per: Duration::from_secs(5),
            },
        ];
        let limiter = RateLimiter::new(Some(RateSpec {
            windows: windows.to_vec(),
        }));
        // 8 tasks; a burst at t = 0, then irregular think times so arrivals spread out.
        let sends = run(&limiter, 8, 12, |task, i| {
            Duration::from_millis(if i < 2 {
                0
            } else {
                ((task * 37 + i * 211) % 900) as u64
            })
        })
        .await;
        assert_eq!(sends.len(), 96);
        let times: Vec<Instant> = sends.iter().map(|(_, s)| *s).collect();
        for window in windows {
            assert_eq!(server_rejections(&times, window), 0);
        }
        // Never slower than necessary: each send happened at the earliest instant a sliding-window
        // server would accept it, given the sends before it and FIFO order.
        for k in 0..sends.len() {
            let (arrival, send) = sends[k];
            let prev: Vec<Instant> = times[..k].to_vec();
            let not_before = prev.last().map_or(arrival, |&p| p.max(arrival));
            let expected = earliest_allowed(&prev, &windows, not_before);
            assert_eq!(send, expected, "send #{k} arrived {arrival:?}");
        }
        // And the burst really was a burst: the first 10 went out at once.
        assert_eq!(times[9], times[0]);
    }

    #[tokio::test(start_paused = true)]
    async fn pause_until_delays_everyone_with_or_without_windows() {
        for limiter in [
            RateLimiter::new(None),
            RateLimiter::new(Some(spec("100/s"))),
        ] {
            let start = Instant::now();
            limiter.pause_until(start + Duration::from_secs(2));
            // An earlier pause does not shorten the later one.
            limiter.pause_until(start + Duration::from_secs(1));
            assert_eq!(limiter.paused_until(), Some(start + Duration::from_secs(2)));
            let sends = run(&limiter, 3, 2, |_, _| Duration::ZERO).await;
            for (_, s) in &sends {
                assert!(*s - start >= Duration::from_secs(2), "{:?}", *s - start);
            }
            assert_eq!(limiter.paused_until(), None);
            let stats = limiter.stats();
            assert_eq!(stats.acquired, 6);
            assert_eq!(stats.paused_count, 2);
            // The three first acquires waited 2 s each; the second ones went out at once.
            assert_eq!(stats.total_wait, Duration::from_secs(6));
            assert_eq!(stats.total_wait, total_wait(&sends));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pause_during_a_window_wait_is_honoured() {
        let limiter = RateLimiter::new(Some(spec("1/s")));
        let start = Instant::now();
        drop(limiter.acquire().await);
        let l2 = limiter.clone();
        let waiter = tokio::spawn(async move {
            drop(l2.acquire().await);
            Instant::now()
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The waiter is asleep until t = 1 s; a 429 now pushes it to t = 4 s.
        limiter.pause_until(Instant::now() + Duration::from_millis(3500));
        let sent = waiter.await.unwrap();
        assert_eq!(sent - start, Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn off_never_waits() {
        let limiter = RateLimiter::new(None);
        let start = Instant::now();
        for _ in 0..1000 {
            drop(limiter.acquire().await);
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(limiter.stats().acquired, 1000);
        assert_eq!(limiter.stats().total_wait, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_in_arrival_order() {
        let limiter = RateLimiter::new(Some(spec("1/s")));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for i in 0..6 {
            let limiter = limiter.clone();
            let order = Arc::clone(&order);
            handles.push(tokio::spawn(async move {
                drop(limiter.acquire().await);
                order.lock().unwrap().push(i);
            }));
            // Let task i reach the queue before task i + 1 is spawned.
            tokio::task::yield_now().await;
        }
        for h in handles {
            h.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_acquire_records_no_send() {
        let limiter = RateLimiter::new(Some(spec("1/s")));
        let start = Instant::now();
        drop(limiter.acquire().await);
        // Gives up after 100 ms, long before its slot at t = 1 s.
        let gave_up = tokio::time::timeout(Duration::from_millis(100), limiter.acquire()).await;
        assert!(gave_up.is_err());
        drop(limiter.acquire().await);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(limiter.stats().acquired, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_counts_until_its_answer() {
        let limiter = RateLimiter::new(Some(spec("2/s")));
        let start = Instant::now();
        let a = limiter.acquire().await;
        let b = limiter.acquire().await;
        // Both in flight: the third waits for an answer, not for the clock.
        let l = limiter.clone();
        let third = tokio::spawn(async move {
            drop(l.acquire().await);
            start.elapsed()
        });
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            !third.is_finished(),
            "no slot while both requests are in flight"
        );
        drop(a); // answered at t = 1.5 s: that slot frees at 2.5 s
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(b); // answered at t = 1.8 s
        assert_eq!(third.await.unwrap(), Duration::from_millis(2500));
    }
}
