//! Throughput of the sandbox: starts it in-process (no latency, no limit, no faults) and
//! hammers it over loopback with N concurrent keep-alive reqwest clients, each completing
//! distinct sessions (`PUT /chat/v1/session/{id}/complete`, a cheap mutation that also
//! materializes the session), then prints requests/second.
//!
//! `cargo run --release --example sandbox_load [-- CLIENTS REQUESTS]` (default 64 50000).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use wts_playbook::sandbox::{Sandbox, SandboxConfig};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let sandbox = Sandbox::start(
        "127.0.0.1:0".parse().expect("address"),
        SandboxConfig::default(),
    )
    .await
    .expect("start the sandbox");
    let base = sandbox.url();
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .expect("client");
        let (base, next, errors) = (base.clone(), Arc::clone(&next), Arc::clone(&errors));
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let id = format!("00000000-0000-4000-8000-{i:012}");
                let ok = http
                    .put(format!("{base}/chat/v1/session/{id}/complete"))
                    .bearer_auth("pn_load")
                    .json(&serde_json::json!({"reactivateOnNewMessage": false}))
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
    let elapsed = started.elapsed();
    let summary = sandbox.summary();
    let rate = f64::from(u32::try_from(total).unwrap_or(u32::MAX)) / elapsed.as_secs_f64();
    println!(
        "{total} requests, {clients} clients, {:.2} s: {rate:.0} req/s ({} errors, {} sessions completed)",
        elapsed.as_secs_f64(),
        errors.load(Ordering::Relaxed),
        summary.sessions_completed
    );
    sandbox.shutdown().await;
}
