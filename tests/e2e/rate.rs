//! The server's rate limit (429s retried, the runner's own limit avoids them) and injected 5xx.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;
use wts_playbook::sandbox::{JournalEntry, SandboxConfig};

use crate::support::{completed_id, count_by, message_post_id, statuses, uuids, Env};

use super::{close_playbook, FAST_RETRY};

// 6. the server's rate limit.

fn rate_limited_sandbox() -> Env {
    Env::new(SandboxConfig {
        rate_limit: vec![(20, Duration::from_secs(1))],
        ..SandboxConfig::default()
    })
}

#[test]
fn server_rate_limit_is_retried_and_slows_the_run() {
    let env = rate_limited_sandbox();
    let ids = uuids(100);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(""));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "8"],
    );
    eprintln!(
        "case 6a: 100 closes at a 20/s server, runner off: {:?}",
        run.elapsed
    );
    assert_eq!(run.code, 0, "{}", run.context());
    for id in &ids {
        assert_eq!(env.sb().session(id).unwrap().status, "COMPLETED", "{id}");
    }
    let journal = env.journal();
    let throttled = journal.iter().filter(|e| e.status == 429).count();
    assert!(throttled > 0, "the server answered 429");
    let per = count_by(&journal, |e| {
        (e.status == 200).then(|| completed_id(e)).flatten()
    });
    assert_eq!(per.len(), 100);
    assert!(per.values().all(|n| *n == 1));
    assert!(run.stdout.contains("rate limited"), "{}", run.context());
    let counts = statuses(&run.items());
    assert_eq!(counts.get("succeeded"), Some(&100), "{counts:?}");
    // 101 requests at 20 per second: at least 4 s.
    assert!(
        run.elapsed >= Duration::from_millis(3900),
        "{:?}",
        run.elapsed
    );
}

/// The report's run facts against what the sandbox saw: the base URL, each item's start and
/// line, the step's and the run's duration, the 429s with their retries and pauses; and the
/// views written at the end of the run say the same.
#[test]
fn report_records_times_429s_retries_and_pauses_the_sandbox_saw() {
    let env = rate_limited_sandbox();
    let ids = uuids(60);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let html = env.dir.path().join("run.html");
    let md = env.dir.path().join("run.md");
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &[
            "--rate-limit",
            "off",
            "--concurrency",
            "8",
            "--html",
            "run.html",
            "--markdown",
            "run.md",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.context());
    let report = run.report();
    assert_eq!(report["base_url"], env.sb().url());

    let journal = env.journal();
    let closes: Vec<&JournalEntry> = journal
        .iter()
        .filter(|e| completed_id(e).is_some())
        .collect();
    let throttled = closes.iter().filter(|e| e.status == 429).count() as u64;
    assert!(throttled > 0, "the sandbox answered 429");
    assert_eq!(report["rate_limited"], throttled, "429s counted");
    let events = report["events"].as_array().expect("events");
    let kind = |k: &str| {
        events
            .iter()
            .filter(|e| e["kind"] == k && e["status"] == 429)
            .count() as u64
    };
    assert_eq!(kind("retry"), throttled, "one retry per 429");
    assert_eq!(kind("pause"), throttled, "each 429 paused the run");
    assert!(events
        .iter()
        .all(|e| e["step"] == "close" && e["wait_ms"].as_u64().is_some()));

    let started: jiff::Timestamp = report["started_at"].as_str().unwrap().parse().unwrap();
    let finished: jiff::Timestamp = report["finished_at"].as_str().unwrap().parse().unwrap();
    let run_ms = report["duration_ms"].as_u64().expect("run duration");
    // 61 requests and the retries at 20 per second: well over two seconds.
    assert!(run_ms >= 2000, "{run_ms}");
    assert!(
        run_ms <= u64::try_from(run.elapsed.as_millis()).unwrap(),
        "{run_ms} vs {:?}",
        run.elapsed
    );
    for item in run.items() {
        let at: jiff::Timestamp = item["started_at"]
            .as_str()
            .expect("start time")
            .parse()
            .unwrap();
        assert!(
            at >= started && at <= finished + jiff::SignedDuration::from_secs(1),
            "{item}"
        );
        let index = item["index"].as_u64().unwrap();
        assert_eq!(item["line"], index + 2, "the CSV line of row {index}");
    }
    let steps = report["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0]["id"], "close");
    assert_eq!(
        steps[0]["requests"],
        closes.len() as u64,
        "requests the sandbox got"
    );
    assert_eq!(steps[0]["totals"]["succeeded"], 60);
    let step_ms = steps[0]["duration_ms"].as_u64().unwrap();
    assert!(
        step_ms >= 2000 && step_ms <= run_ms,
        "{step_ms} of {run_ms}"
    );

    // The views, written at the end of the run, agree.
    let md = std::fs::read_to_string(md).expect("markdown written");
    assert!(md.contains(&format!("{throttled}× 429")), "{md}");
    assert!(
        md.contains(&format!("against `{}`", env.sb().url())),
        "{md}"
    );
    let html = std::fs::read_to_string(html).expect("html written");
    assert!(
        html.contains(&format!("\"rate_limited\":{throttled}")),
        "the page's data"
    );
}

/// Items of a step that runs over an earlier step's results keep their CSV row's line.
#[test]
fn items_from_an_earlier_steps_list_keep_their_csv_line() {
    let env = Env::new(SandboxConfig::default());
    let ids = uuids(5);
    env.csv("ids.csv", "session_id", &ids);
    let mut playbook = close_playbook("");
    playbook.push_str(
        r#"  - id: tell
    action: session.send_text
    for_each: steps.close.succeeded
    with:
      session_id: "{{ row.session_id }}"
      text: closed
"#,
    );
    let pb = env.write("close.yaml", &playbook);
    let run = env.run(&pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(run.code, 0, "{}", run.context());
    let journal = env.journal();
    let sent = count_by(&journal, message_post_id);
    assert_eq!(sent.len(), 5, "every session was told");
    let items = run.items();
    let line_of = |step: &str, key: &str| {
        items
            .iter()
            .find(|i| i["step"] == step && i["key"] == key)
            .map(|i| i["line"].clone())
    };
    for (row, id) in ids.iter().enumerate() {
        assert_eq!(line_of("close", id), Some(Value::from(row + 2)), "{id}");
        assert_eq!(line_of("tell", id), line_of("close", id), "{id}");
    }
}

#[test]
fn runner_rate_limit_avoids_every_429() {
    let env = rate_limited_sandbox();
    let ids = uuids(100);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "20/s", "--concurrency", "8"],
    );
    eprintln!(
        "case 6b: 100 closes at a 20/s server, runner 20/s: {:?}",
        run.elapsed
    );
    assert_eq!(run.code, 0, "{}", run.context());
    let journal = env.journal();
    // For each 429: how long before it (at the server) the 20th-latest admitted request arrived.
    let mut admitted: Vec<jiff::Timestamp> = Vec::new();
    let mut throttled = Vec::new();
    let mut by_arrival: Vec<&JournalEntry> = journal.iter().collect();
    by_arrival.sort_by_key(|e| e.at);
    for e in by_arrival {
        if e.status == 429 {
            let gap = admitted.len().checked_sub(20).map_or("?".to_owned(), |i| {
                let ms = (e.at - admitted[i])
                    .total(jiff::Unit::Millisecond)
                    .unwrap_or(f64::NAN);
                format!("{ms:.1}")
            });
            throttled.push(format!(
                "seq {}: the 20th admitted request before it arrived {gap} ms earlier",
                e.seq
            ));
        } else {
            admitted.push(e.at);
        }
    }
    assert!(
        throttled.is_empty(),
        "the runner, limited to the server's own 20/s, still got {} 429s: {throttled:?}",
        throttled.len()
    );
    for id in &ids {
        assert_eq!(env.sb().session(id).unwrap().status, "COMPLETED", "{id}");
    }
    assert!(!run.stdout.contains("rate limited"), "{}", run.context());
}

// ---------------------------------------------------------------------------------------------
// 7. injected 5xx.

#[test]
fn injected_5xx_before_the_change_are_retried_for_idempotent_closes() {
    let env = Env::new(SandboxConfig {
        fail_rate: 0.05,
        seed: 7,
        ..SandboxConfig::default()
    });
    let ids = uuids(400);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "16"],
    );
    assert_eq!(run.code, 0, "{}", run.context());
    let journal = env.journal();
    let faults = journal
        .iter()
        .filter(|e| e.fault.as_deref() == Some("fail_before"))
        .count();
    assert!(faults > 0, "some 5xx were injected");
    for id in &ids {
        assert_eq!(env.sb().session(id).unwrap().status, "COMPLETED", "{id}");
    }
    let changed = count_by(&journal, |e| {
        e.state_changed.then(|| completed_id(e)).flatten()
    });
    assert_eq!(changed.len(), 400);
    assert!(changed.values().all(|n| *n == 1));
    let counts = statuses(&run.items());
    assert_eq!(counts.get("succeeded"), Some(&400), "{counts:?}");
    assert_eq!(run.report()["outcome"], "completed");
}

#[test]
fn injected_5xx_after_a_send_are_verified_never_resent() {
    let env = Env::new(SandboxConfig {
        fail_after_rate: 0.05,
        seed: 11,
        ..SandboxConfig::default()
    });
    let ids = uuids(300);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write(
        "send.yaml",
        r#"version: 1
name: e2e-send
inputs:
  ids:
    csv: ids.csv
    key: session_id
settings:
  retry: { attempts: 6, backoff: 50ms, max_backoff: 1s }
steps:
  - id: tell
    action: session.send_text
    for_each: inputs.ids
    with:
      session_id: "{{ row.session_id }}"
      text: "e2e once only"
"#,
    );
    let run = env.run(
        &pb,
        Some("pn_e2e"),
        &["--rate-limit", "off", "--concurrency", "16"],
    );
    assert_eq!(run.code, 0, "{}", run.context());

    let journal = env.journal();
    let posts = count_by(&journal, message_post_id);
    assert_eq!(posts.len(), 300);
    let resent: Vec<_> = posts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(resent.is_empty(), "sent more than once: {resent:?}");
    let state = env.sb().state();
    let mut per_session: HashMap<&str, usize> = HashMap::new();
    for m in &state.messages {
        if m.text.as_deref() == Some("e2e once only") {
            *per_session.entry(m.session_id.as_str()).or_default() += 1;
        }
    }
    assert!(per_session.values().all(|n| *n == 1), "a duplicate message");
    assert_eq!(per_session.len(), 300);

    let faulted: HashSet<&str> = journal
        .iter()
        .filter(|e| e.fault.as_deref() == Some("fail_after"))
        .filter_map(message_post_id)
        .collect();
    assert!(!faulted.is_empty(), "some sends were faulted");
    // Each faulted send was verified with a read of the session's messages: succeeded, with
    // the message found as evidence, and never sent twice.
    let items = run.items();
    let verified: HashSet<&str> = items
        .iter()
        .filter(|i| i["status"] == "succeeded" && i["evidence"].is_object())
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(verified, faulted, "exactly the faulted sends were verified");
    for i in items.iter().filter(|i| i["evidence"].is_object()) {
        assert_eq!(i["evidence"]["text"], "e2e once only");
    }
    let counts = statuses(&items);
    assert_eq!(counts.get("succeeded").copied(), Some(300), "{counts:?}");
    let reads = journal
        .iter()
        .filter(|e| e.method == "GET" && e.path.ends_with("/message"))
        .count();
    assert!(reads >= faulted.len(), "one verification read per fault");
    let report = run.report();
    assert_eq!(report["totals"]["unknown"], 0);
    assert_eq!(report["outcome"], "completed");
}
