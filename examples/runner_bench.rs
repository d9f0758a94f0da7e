//! The floor a runner can reach against a sandbox: sends N `PUT /chat/v1/session/{id}/complete`
//! requests over one shared keep-alive reqwest client with at most C in flight (the shape of a
//! `wts-playbook run` at `--concurrency C` with `--rate-limit off`) and prints the wall time,
//! the ideal `N × latency / C` and the CPU time of this process. Nothing but the HTTP client is
//! in the loop, so the gap between this figure and the runner's is what the runner itself adds
//! (templating, report, limiter, scheduling); the gap between this figure and the ideal is the
//! sandbox, the timer and loopback.
//!
//! `cargo run --release --example runner_bench -- BASE_URL N C LATENCY_MS` against
//! `wts-playbook sandbox --listen 127.0.0.1:0 --latency-ms LATENCY_MS` (reset the sandbox first:
//! `curl -X POST BASE_URL/__sandbox/reset`). Only loopback URLs are accepted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc (Linux); 0 elsewhere.
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u32>().ok())
            .unwrap_or(0)
    };
    // Fields 14 and 15 of the stat line; `after` starts at field 3.
    (f64::from(ticks(11)) + f64::from(ticks(12))) / 100.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, n, c, latency] = args.as_slice() else {
        eprintln!("usage: runner_bench BASE_URL N C LATENCY_MS");
        std::process::exit(2);
    };
    assert!(
        base.starts_with("http://127.0.0.1:"),
        "only a loopback sandbox URL (http://127.0.0.1:PORT) is accepted"
    );
    let total: usize = n.parse().expect("N is a number");
    let clients: usize = c.parse().expect("C is a number");
    let latency_ms: u32 = latency.parse().expect("LATENCY_MS is a number");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, base, next, errors) = (
            http.clone(),
            base.clone(),
            Arc::clone(&next),
            Arc::clone(&errors),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let id = format!("00000000-0000-4000-8000-{i:012}");
                let ok = http
                    .put(format!("{base}/chat/v1/session/{id}/complete"))
                    .bearer_auth("bench")
                    .json(&serde_json::json!({}))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let n = f64::from(u32::try_from(total).unwrap_or(u32::MAX));
    let c = f64::from(u32::try_from(clients).unwrap_or(u32::MAX));
    let ideal = n * f64::from(latency_ms) / 1000.0 / c;
    println!(
        "raw client: N={total} C={clients} wall {wall:.3} s, ideal {ideal:.3} s ({:+.1} %), \
         {:.0} req/s, cpu {:.1} us/request, {} errors",
        (wall / ideal - 1.0) * 100.0,
        n / wall,
        cpu / n * 1e6,
        errors.load(Ordering::Relaxed)
    );
}
