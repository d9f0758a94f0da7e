//! Hostile servers, broken pipes and odd inputs (issue 10): the real binary against a small
//! misbehaving HTTP server (HTML, truncated JSON, a huge body, a slow drip, 429 with a huge
//! `Retry-After`, 429 forever, pages forever, a closed connection), against the sandbox stopped
//! mid-run / restarted / never restarted, with signals and closed pipes. Every bound the runner
//! has is a setting these tests lower, so each test takes a few seconds at most.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wts_playbook::sandbox::SandboxConfig;

use crate::support::{
    against_std, html, json, signal, uuids, wait_exit, wait_until, Env, Hostile, Reply,
};

use super::close_playbook;

/// A list step (`session.list`, `paginate` as given) and a step over its items.
pub(super) fn list_then_close(settings: &str, paginate: &str) -> String {
    format!(
        r#"version: 1
name: hostile-list
settings:
  timeout: 2s
  retry: {{ attempts: 2, backoff: 10ms, max_backoff: 20ms }}
{settings}
steps:
  - id: open
    action: session.list
    {paginate}
    with:
      status: IN_PROGRESS
  - id: close
    action: session.complete
    for_each: steps.open.output.items
    with:
      session_id: "{{{{ item.id }}}}"
"#
    )
}

pub(super) fn list_playbook(env: &Env, settings: &str, paginate: &str) -> std::path::PathBuf {
    env.write("list.yaml", &list_then_close(settings, paginate))
}

pub(super) fn step_items<'a>(items: &'a [Value], step: &str) -> Vec<&'a Value> {
    items.iter().filter(|i| i["step"] == step).collect()
}

pub(super) fn the_error(items: &[Value], step: &str) -> String {
    let found = step_items(items, step);
    assert_eq!(found.len(), 1, "{items:?}");
    found[0]["error"].as_str().unwrap_or_default().to_owned()
}

// ---------------------------------------------------------------------------------------------
// 6. A 2xx that is not the JSON expected is a failure naming the content type and first bytes.

#[test]
fn an_html_page_on_a_list_fails_the_step_and_nothing_follows() {
    let env = Env::new(SandboxConfig::default());
    let server = Hostile::start(&env, |_, _| html(200));
    let pb = list_playbook(&env, "", "");
    let run = env.run_at(&server.url(), &pb, Some("pn_x"), &[]);
    assert_eq!(run.code, 1, "{}", run.context());
    let items = run.items();
    let err = the_error(&items, "open");
    assert!(err.contains("text/html"), "{err}");
    assert!(err.contains("<!DOCTYPE html>"), "{err}");
    assert_eq!(step_items(&items, "open")[0]["status"], "failed");
    // A read is safe to retry: tried twice; nothing else was sent.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert!(reqs.iter().all(|(m, _)| m == "GET"));
}

#[test]
fn truncated_json_on_a_list_fails_and_a_page_without_items_fails() {
    let env = Env::new(SandboxConfig::default());
    let server = Hostile::start(&env, |_, _| json(200, r#"{"items": [{"id": "3fa8"#));
    let pb = list_playbook(&env, "", "");
    let run = env.run_at(&server.url(), &pb, Some("pn_x"), &[]);
    assert_eq!(run.code, 1, "{}", run.context());
    let err = the_error(&run.items(), "open");
    assert!(
        err.contains("application/json") && err.contains("EOF"),
        "{err}"
    );

    let server = Hostile::start(&env, |_, _| json(200, r#"{"message": "ok"}"#));
    let run = env.run_at(&server.url(), &pb, Some("pn_x"), &[]);
    assert_eq!(run.code, 1, "{}", run.context());
    let err = the_error(&run.items(), "open");
    assert!(err.contains("not a page of items"), "{err}");
}

#[test]
fn a_send_answered_with_html_is_unknown_and_never_resent() {
    let env = Env::new(SandboxConfig::default());
    let server = Hostile::start(&env, |_, _| html(200));
    let pb = env.write(
        "send.yaml",
        r"version: 1
name: hostile-send
settings: { retry: { attempts: 3, backoff: 10ms } }
steps:
  - id: tell
    action: session.send_text
    with:
      session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
      text: hello
",
    );
    let run = env.run_at(&server.url(), &pb, Some("pn_x"), &[]);
    assert_eq!(run.code, 1, "{}", run.context());
    let items = run.items();
    assert_eq!(step_items(&items, "tell")[0]["status"], "unknown");
    assert!(the_error(&items, "tell").contains("text/html"));
    // Its verification reads (the session's messages) get HTML too: still unknown, never re-sent.
    let posts = server
        .requests()
        .iter()
        .filter(|(m, _)| m == "POST")
        .count();
    assert_eq!(posts, 1, "a send is never re-sent");
}

#[test]
fn html_everywhere_is_never_taken_for_the_token_accepted_or_a_success() {
    let env = Env::new(SandboxConfig::default());
    // Every route, the token check's included, answers a captive portal's page.
    let listener = env
        .rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    env.rt.spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut b = [0u8; 4096];
                let _ = sock.read(&mut b).await;
                let body = "<html>portal</html>";
                let _ = sock
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    let pb = list_playbook(&env, "", "");
    let run = env.run_at(&format!("http://{addr}"), &pb, Some("pn_x"), &[]);
    // The first request doubles as the token check: an HTML page is not the API saying yes,
    // and not a success either.
    assert_eq!(run.code, 1, "{}", run.context());
    assert!(run.stdout.contains("text/html"), "{}", run.stdout);
    assert_eq!(run.report()["outcome"], "failed");
    assert_eq!(run.report()["totals"]["succeeded"], 0);
}

// ---------------------------------------------------------------------------------------------
// 7. A body past `max_response_size` fails the item; a slow drip is a timeout.

#[test]
fn a_huge_body_fails_the_item_without_being_read() {
    let env = Env::new(SandboxConfig::default());
    let server = Hostile::start(&env, |_, _| {
        let mut body = br#"{"items": ["#.to_vec();
        body.extend(std::iter::repeat_n(b' ', 4 << 20));
        body.extend(br"]}");
        Reply::Full {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body,
        }
    });
    let pb = list_playbook(&env, "  max_response_size: 64KB", "");
    let run = env.run_at(&server.url(), &pb, Some("pn_x"), &[]);
    assert_eq!(run.code, 1, "{}", run.context());
    let err = the_error(&run.items(), "open");
    assert!(
        err.contains("response too large") && err.contains("65536"),
        "{err}"
    );
    // Refusing to read it is final: not retried.
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_slow_drip_times_out() {
    let env = Env::new(SandboxConfig::default());
    let server = Hostile::start(&env, |_, _| Reply::Drip {
        len: 1000,
        every: Duration::from_millis(50),
    });
    let pb = env.write(
        "list.yaml",
        &list_then_close("", "").replace("timeout: 2s", "timeout: 300ms"),
    );
    let run = env.run_at(&server.url(), &pb, Some("pn_x"), &[]);
    assert_eq!(run.code, 1, "{}", run.context());
    let err = the_error(&run.items(), "open");
    assert!(err.contains("timed out"), "{err}");
    assert!(run.elapsed < Duration::from_secs(8), "{:?}", run.elapsed);
}

#[test]
fn a_closed_connection_fails_a_read_and_leaves_a_send_unknown() {
    let env = Env::new(SandboxConfig::default());
    let server = Hostile::start(&env, |_, _| Reply::Close);
    let pb = list_playbook(&env, "", "");
    let run = env.run_at(&server.url(), &pb, Some("pn_x"), &[]);
    assert_eq!(run.code, 1, "{}", run.context());
    let items = run.items();
    assert_eq!(step_items(&items, "open")[0]["status"], "failed");
    assert!(the_error(&items, "open").contains("gave up after 2 attempts"));
    assert_eq!(server.requests().len(), 2, "a read is retried");
}

// ---------------------------------------------------------------------------------------------
// 1. A huge Retry-After is capped, said, and Ctrl-C ends the wait at once. 429 forever ends.

pub(super) fn throttled(after: &str) -> impl Fn(&str, &str) -> Reply + Send + Sync + 'static {
    let after = after.to_owned();
    move |_, _| Reply::Full {
        status: 429,
        headers: vec![
            ("content-type", "application/json".into()),
            ("retry-after", after.clone()),
        ],
        body: br#"{"key": "ERROR_TOO_MANY_REQUESTS"}"#.to_vec(),
    }
}

#[test]
fn a_huge_retry_after_is_capped_and_said_and_429_forever_gives_up() {
    let env = Env::new(SandboxConfig::default());
    let server = Hostile::start(&env, throttled("99999"));
    let pb = list_playbook(&env, "  max_retry_wait: 100ms", "");
    let report = env.dir.path().join("429.json");
    // Not quiet: the log and the progress lines are on stderr.
    let child = spawn_run(&env, &server.url(), &pb, &report, &[]);
    let (code, stderr, took) = wait_exit(child, Duration::from_secs(10));
    assert_eq!(code, 1, "{stderr}");
    // Four times `attempts` for 429s: 8 tries, each wait capped at 100 ms.
    assert_eq!(server.requests().len(), 8);
    assert!(took < Duration::from_secs(8), "{took:?}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let items = report["items"].as_array().unwrap().clone();
    assert!(
        the_error(&items, "open").contains("gave up after 8 attempts"),
        "{items:?}"
    );
    // The log says what it waits for, until when, and that the server's ask was capped.
    assert!(
        stderr.contains("rate limited (429): waiting")
            && stderr.contains(" UTC before retrying")
            && stderr.contains("the server asked for 99999s")
            && stderr.contains("capped by settings.max_retry_wait 100ms"),
        "{stderr}"
    );
}

/// Spawns `wts-playbook run PLAYBOOK --yes --report REPORT` against `base_url`.
pub(super) fn spawn_run(
    env: &Env,
    base_url: &str,
    playbook: &Path,
    report: &Path,
    extra: &[&str],
) -> Child {
    against_std(env.dir.path(), base_url, Some("pn_hostile"))
        .arg("run")
        .arg(playbook)
        .arg("--yes")
        .arg("--report")
        .arg(report)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs")
}

pub(super) fn sigint(child: &Child) {
    assert!(signal(child, "-INT"));
}

#[test]
fn ctrl_c_ends_a_long_server_requested_wait_at_once() {
    let env = Env::new(SandboxConfig::default());
    let server = Hostile::start(&env, throttled("99999"));
    // Default max_retry_wait (5 min): the run would sit there without Ctrl-C.
    let pb = list_playbook(&env, "", "");
    let report = env.dir.path().join("wait.json");
    let child = spawn_run(&env, &server.url(), &pb, &report, &[]);
    wait_until("the first 429", || !server.requests().is_empty());
    std::thread::sleep(Duration::from_millis(300));
    sigint(&child);
    let (code, stderr, took) = wait_exit(child, Duration::from_secs(5));
    assert_eq!(code, 3, "{stderr}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        stderr.contains("capped by settings.max_retry_wait 5m"),
        "{stderr}"
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["outcome"], "aborted");
    assert_eq!(server.requests().len(), 1, "no retry after Ctrl-C");
}

// ---------------------------------------------------------------------------------------------
// 2. A second Ctrl-C abandons in-flight requests now, not after their timeout.

#[test]
fn a_second_ctrl_c_exits_now_with_the_report_written() {
    let env = Env::new(SandboxConfig::default());
    // Every send hangs for 30 s; the timeout is 20 s.
    let server = Hostile::start(&env, |_, _| {
        Reply::Late(Duration::from_secs(30), Box::new(json(200, "{}")))
    });
    let ids = uuids(20);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write(
        "close.yaml",
        &close_playbook("  concurrency: 2").replace("timeout: 30s", "timeout: 20s"),
    );
    let report = env.dir.path().join("abandon.json");
    let child = spawn_run(&env, &server.url(), &pb, &report, &["-q"]);
    // The run's first request goes alone (it doubles as the token check) and hangs.
    wait_until("the first request in flight", || {
        !server.requests().is_empty()
    });
    sigint(&child);
    std::thread::sleep(Duration::from_millis(200));
    sigint(&child);
    let (code, stderr, took) = wait_exit(child, Duration::from_secs(10));
    assert_eq!(code, 3, "{stderr}");
    assert!(took < Duration::from_secs(3), "waited {took:?}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["outcome"], "aborted");
    assert_eq!(server.requests().len(), 1, "nothing started after Ctrl-C");
}

// ---------------------------------------------------------------------------------------------
// 4. `paginate: all` is bounded; a cut listing fails unless accepted.

pub(super) fn pages_forever() -> impl Fn(&str, &str) -> Reply + Send + Sync + 'static {
    |_, _| {
        json(
            200,
            r#"{"items": [{"id": "3fa85f64-5717-4562-b3fc-2c963f66afa6"}, {"id": "3fa85f64-5717-4562-b3fc-2c963f66afa7"}], "hasMorePages": true, "pageSize": 2}"#,
        )
    }
}

#[test]
fn paginate_all_stops_at_max_pages_and_fails_the_step() {
    let env = Env::new(SandboxConfig::default());
    let server = Hostile::start(&env, pages_forever());
    let pb = list_playbook(&env, "  max_pages: 5", "paginate: all");
    let run = env.run_at(&server.url(), &pb, Some("pn_x"), &[]);
    assert_eq!(run.code, 1, "{}", run.context());
    assert_eq!(server.requests().len(), 5, "five pages, then stop");
    let items = run.items();
    let err = the_error(&items, "open");
    assert!(
        err.contains("listing cut at 5 pages and 10 items")
            && err.contains("settings.max_pages 5")
            && err.contains("partial_listing: accept"),
        "{err}"
    );
    assert!(step_items(&items, "close").is_empty(), "nothing closed");
}

#[test]
fn paginate_all_stops_at_max_items_and_a_partial_listing_can_be_accepted() {
    let env = Env::new(SandboxConfig::default());
    let server = Hostile::start(&env, |m, p| {
        if m == "GET" {
            pages_forever()(m, p)
        } else {
            json(200, "{}")
        }
    });
    let pb = list_playbook(
        &env,
        "  max_items: 3\n  partial_listing: accept",
        "paginate: all",
    );
    let run = env.run_at(&server.url(), &pb, Some("pn_x"), &[]);
    assert_eq!(run.code, 0, "{}", run.context());
    let reqs = server.requests();
    let gets = reqs.iter().filter(|(m, _)| m == "GET").count();
    assert_eq!(gets, 2, "two pages give 4 ≥ 3 items");
    let items = run.items();
    assert_eq!(step_items(&items, "open")[0]["status"], "succeeded");
    assert!(step_items(&items, "open")[0]["reason"]
        .as_str()
        .unwrap()
        .contains("listing cut"));
    assert_eq!(step_items(&items, "close").len(), 3, "3 items kept");
}
