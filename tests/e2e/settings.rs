//! How settings resolve, end to end: a step's own `rate_limit` is enforced on top of the run's
//! shared limiter, never instead of it (README, "How a run behaves": "Settings and what
//! overrides what"). The sandbox's journal says when each request arrived.

use wts_playbook::sandbox::SandboxConfig;

use crate::support::{completed_id, uuids, Env};

use super::close_with;

/// Closes `n` sessions with these lines under `settings:` and on the step, and returns the
/// arrival times (ms since the first) of the closes the sandbox saw.
fn close_arrivals(n: usize, settings: &str, step: &str) -> Vec<f64> {
    let env = Env::new(SandboxConfig::default());
    env.csv("ids.csv", "session_id", &uuids(n));
    let step = format!(
        "{step}    action: session.complete\n    with:\n      session_id: \"{{{{ row.session_id }}}}\"\n"
    );
    let pb = env.write("close.yaml", &close_with(settings, &step));
    let run = env.run(&pb, Some("pn_e2e"), &[]);
    assert_eq!(run.code, 0, "{}", run.context());
    let journal = env.journal();
    let mut at: Vec<jiff::Timestamp> = journal
        .iter()
        .filter(|e| e.status == 200 && completed_id(e).is_some())
        .map(|e| e.at)
        .collect();
    at.sort();
    assert_eq!(at.len(), n, "every session closed once: {journal:#?}");
    at.iter()
        .map(|t| (*t - at[0]).total(jiff::Unit::Millisecond).expect("ms"))
        .collect()
}

/// The shortest time any `count + 1` consecutive arrivals took: under a `count/window` limit it
/// is at least the window.
fn tightest(arrivals: &[f64], count: usize) -> f64 {
    arrivals
        .windows(count + 1)
        .map(|w| w[count] - w[0])
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn a_steps_rate_limit_applies_on_top_of_the_runs_and_the_runs_still_binds() {
    // The step's own limit is the tighter: it binds, though the run's would allow more.
    let a = close_arrivals(
        9,
        "  concurrency: 8\n  rate_limit: 100/s",
        "    rate_limit: 2/200ms\n",
    );
    assert!(tightest(&a, 2) >= 199.0, "2/200ms not kept: {a:?}");
    // The run's limit is the tighter: a step with a looser limit of its own does not escape it.
    let b = close_arrivals(
        9,
        "  concurrency: 8\n  rate_limit: 3/300ms",
        "    rate_limit: 100/s\n",
    );
    assert!(tightest(&b, 3) >= 299.0, "3/300ms not kept: {b:?}");
}
