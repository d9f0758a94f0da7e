//! Hostile servers, broken pipes and odd inputs (issue 10): the real binary against a small
//! misbehaving HTTP server (HTML, truncated JSON, a huge body, a slow drip, 429 with a huge
//! `Retry-After`, 429 forever, pages forever, a closed connection), against the sandbox stopped
//! mid-run / restarted / never restarted, with signals and closed pipes. Every bound the runner
//! has is a setting these tests lower, so each test takes a few seconds at most.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wts_playbook::sandbox::{Sandbox, SandboxConfig};

use super::{close_playbook, completed_id, uuids, Env};

/// What the hostile server answers to one request.
#[derive(Clone)]
enum Reply {
    /// A whole answer.
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Headers announcing `len` bytes, then one byte every `every`.
    Drip { len: usize, every: Duration },
    /// Read the request, close the connection without a word.
    Close,
    /// Answer after `after`.
    Late(Duration, Box<Reply>),
}

fn json(status: u16, body: &str) -> Reply {
    Reply::Full {
        status,
        headers: vec![("content-type", "application/json".into())],
        body: body.as_bytes().to_vec(),
    }
}

fn html(status: u16) -> Reply {
    Reply::Full {
        status,
        headers: vec![("content-type", "text/html; charset=utf-8".into())],
        body: b"<!DOCTYPE html><html><body>Please log in to the Wi-Fi</body></html>".to_vec(),
    }
}

type Route = dyn Fn(&str, &str) -> Reply + Send + Sync;

/// A loopback HTTP/1.1 server answering each request (one per connection) with `route(method,
/// path)`, and recording `(method, path)` of each request it read.
struct Hostile {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Hostile {
    fn start(env: &Env, route: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) -> Hostile {
        let route: Arc<Route> = Arc::new(route);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = env
            .rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let log = seen.clone();
        env.rt.spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (route, log) = (route.clone(), log.clone());
                tokio::spawn(async move { serve_one(sock, &*route, &log).await });
            }
        });
        Hostile { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests other than the token check.
    fn requests(&self) -> Vec<(String, String)> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, p)| !(m == "GET" && p == "/core/v1/tag"))
            .cloned()
            .collect()
    }
}

async fn serve_one(
    mut sock: tokio::net::TcpStream,
    route: &Route,
    log: &Mutex<Vec<(String, String)>>,
) {
    // Read the head, then the body it announces.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    log.lock().unwrap().push((method.clone(), path.clone()));
    let mut reply = if method == "GET" && path == "/core/v1/tag" {
        json(200, "[]")
    } else {
        route(&method, &path)
    };
    loop {
        match reply {
            Reply::Late(after, r) => {
                tokio::time::sleep(after).await;
                reply = *r;
            }
            Reply::Close => return,
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\nconnection: close\r\ncontent-length: {}\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let _ = sock.write_all(out.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
                return;
            }
            Reply::Drip { len, every } => {
                let out = format!(
                    "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
                );
                let _ = sock.write_all(out.as_bytes()).await;
                for _ in 0..len {
                    tokio::time::sleep(every).await;
                    if sock.write_all(b" ").await.is_err() {
                        return;
                    }
                }
                return;
            }
        }
    }
}

/// A list step (`session.list`, `paginate` as given) and a step over its items.
fn list_then_close(settings: &str, paginate: &str) -> String {
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

fn list_playbook(env: &Env, settings: &str, paginate: &str) -> std::path::PathBuf {
    env.write("list.yaml", &list_then_close(settings, paginate))
}

fn step_items<'a>(items: &'a [Value], step: &str) -> Vec<&'a Value> {
    items.iter().filter(|i| i["step"] == step).collect()
}

fn the_error(items: &[Value], step: &str) -> String {
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

fn throttled(after: &str) -> impl Fn(&str, &str) -> Reply + Send + Sync + 'static {
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
fn spawn_run(env: &Env, base_url: &str, playbook: &Path, report: &Path, extra: &[&str]) -> Child {
    StdCommand::new(assert_cmd::cargo::cargo_bin("wts-playbook"))
        .current_dir(env.dir.path())
        .env_remove("WTS_PLAYBOOK_LOG")
        .env("WTS_BASE_URL", base_url)
        .env("WTS_API_TOKEN", "pn_hostile")
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

fn sigint(child: &Child) {
    assert!(StdCommand::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

/// Waits for the child to exit (at most `within`); its exit code and stderr.
fn wait_exit(mut child: Child, within: Duration) -> (i32, String, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.code().unwrap_or(-1), stderr, started.elapsed());
        }
        if started.elapsed() > within {
            let _ = child.kill();
            panic!("the run did not end within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until `cond` holds (at most 20 s).
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
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

fn pages_forever() -> impl Fn(&str, &str) -> Reply + Send + Sync + 'static {
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

// ---------------------------------------------------------------------------------------------
// 3. The sandbox stopped mid-run: never restarted → the run ends, unreachable, resumable;
//    restarted within the retry window → ridden through. Issue 11 item 4: the base URL is named.

fn wait_for_report_lines(path: &Path, n: usize) {
    wait_until("report lines", || {
        std::fs::read_to_string(path).is_ok_and(|s| s.lines().count() >= n)
    });
}

#[test]
fn a_sandbox_that_never_comes_back_ends_the_run_as_unreachable() {
    let mut env = Env::new(SandboxConfig {
        latency_ms: 5,
        ..SandboxConfig::default()
    });
    let url = env.sb().url();
    let ids = uuids(400);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write(
        "close.yaml",
        &close_playbook(
            "  concurrency: 2\n  unreachable_after: 4\n  retry: { attempts: 2, backoff: 10ms, max_backoff: 20ms }",
        ),
    );
    let report = env.dir.path().join("gone.json");
    let report_path = report.clone();
    let child = spawn_run(&env, &url, &pb, &report, &[]);
    wait_for_report_lines(&report, 20);
    let sb = env.sandbox.take().unwrap();
    let done_before = sb
        .journal()
        .iter()
        .filter(|e| completed_id(e).is_some())
        .count();
    env.rt.block_on(sb.shutdown());
    let (code, stderr, took) = wait_exit(child, Duration::from_secs(20));
    assert_eq!(code, 3, "{stderr}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["outcome"], "aborted");
    let items = report["items"].as_array().unwrap();
    let failed = items.iter().filter(|i| i["status"] == "failed").count();
    assert!(
        (4..=8).contains(&failed),
        "stops after 4 in a row (and the ones in flight): {failed}"
    );
    assert!(items.len() < ids.len(), "no new items started");
    assert!(done_before > 0);
    let abort = format!("the server at {url} is unreachable");
    assert!(stderr.contains(&abort), "{stderr}");
    let err = items.iter().find(|i| i["status"] == "failed").unwrap()["error"]
        .as_str()
        .unwrap();
    assert!(err.contains(&url) && err.contains("WTS_BASE_URL"), "{err}");

    // Once the server is back, `--resume` finishes the job: the failed items were never sent,
    // and nothing done before is done again.
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let back = env
        .rt
        .block_on(Sandbox::start(addr, SandboxConfig::default()))
        .expect("the sandbox restarts on the same port");
    env.sandbox = Some(back);
    let resumed = env.run(
        &pb,
        Some("pn_x"),
        &["--resume", report_path.to_str().unwrap()],
    );
    assert_eq!(resumed.code, 0, "{}", resumed.context());
    let second = env
        .journal()
        .iter()
        .filter(|e| completed_id(e).is_some())
        .count();
    assert_eq!(
        second + done_before,
        ids.len(),
        "each session completed once"
    );
}

#[test]
fn a_sandbox_restarted_within_the_retry_window_is_ridden_through() {
    let mut env = Env::new(SandboxConfig {
        latency_ms: 5,
        ..SandboxConfig::default()
    });
    let url = env.sb().url();
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let ids = uuids(150);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write(
        "close.yaml",
        &close_playbook(
            "  concurrency: 2\n  unreachable_after: 2\n  retry: { attempts: 8, backoff: 200ms, max_backoff: 400ms }",
        ),
    );
    let report = env.dir.path().join("back.json");
    let child = spawn_run(&env, &url, &pb, &report, &["-q"]);
    wait_for_report_lines(&report, 20);
    let first = env.sandbox.take().unwrap();
    let mut done: Vec<String> = first
        .journal()
        .iter()
        .filter_map(|e| completed_id(e).map(str::to_owned))
        .collect();
    env.rt.block_on(first.shutdown());
    std::thread::sleep(Duration::from_millis(400));
    let second = env
        .rt
        .block_on(Sandbox::start(addr, SandboxConfig::default()))
        .expect("the sandbox restarts on the same port");
    env.sandbox = Some(second);
    let (code, stderr, _) = wait_exit(child, Duration::from_secs(30));
    assert_eq!(code, 0, "{stderr}");
    done.extend(
        env.journal()
            .iter()
            .filter_map(|e| completed_id(e).map(str::to_owned)),
    );
    let mut done_set: Vec<&String> = done.iter().collect();
    done_set.sort();
    done_set.dedup();
    // The journal snapshot of the first sandbox misses what it answered while shutting down
    // (at most the requests in flight, `concurrency: 2`).
    assert!(
        done_set.len() + 2 >= ids.len(),
        "{} of {}",
        done_set.len(),
        ids.len()
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["totals"]["succeeded"], ids.len());
}

#[test]
fn ctrl_c_ends_the_first_requests_retries() {
    let env = Env::new(SandboxConfig::default());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pb = env.write(
        "list.yaml",
        &list_then_close("", "").replace(
            "attempts: 2, backoff: 10ms, max_backoff: 20ms",
            "attempts: 6, backoff: 5s, max_backoff: 5s",
        ),
    );
    let report = env.dir.path().join("check.json");
    let child = spawn_run(
        &env,
        &format!("http://127.0.0.1:{port}"),
        &pb,
        &report,
        &["-q"],
    );
    std::thread::sleep(Duration::from_millis(700));
    sigint(&child);
    let (code, stderr, took) = wait_exit(child, Duration::from_secs(10));
    assert_eq!(code, 3, "{stderr}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["outcome"], "aborted");
}

#[test]
fn validating_many_steps_stays_linear() {
    // 6,000 chained steps: a copy of every earlier step per step (quadratic) took ~20 s here.
    let env = Env::new(SandboxConfig::default());
    let mut text = String::from("version: 1\nname: many\nsteps:\n");
    for i in 0..6000 {
        text.push_str(&format!(
            "  - id: s{i}\n    action: session.send_text\n    with:\n      session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6\n      text: \"{{{{ steps.s{}.output.id }}}}\"\n",
            i.max(1) - 1
        ));
    }
    let text = text.replacen("{{ steps.s0.output.id }}", "first", 1);
    env.write("many.yaml", &text);
    let started = Instant::now();
    let out = assert_cmd::Command::cargo_bin("wts-playbook")
        .unwrap()
        .current_dir(env.dir.path())
        .args(["validate", "many.yaml"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("6000 steps"));
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_refused_connection_names_the_base_url_and_a_bad_url_is_invalid_input() {
    let env = Env::new(SandboxConfig::default());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let pb = list_playbook(&env, "", "");
    let run = env.run_at(&url, &pb, Some("pn_x"), &[]);
    assert_eq!(run.code, 1, "{}", run.context());
    let err = the_error(&run.items(), "open");
    let hint = format!("the server at {url} could not be reached; WTS_BASE_URL sets it");
    assert!(err.contains(&hint), "{err}");
    assert!(
        run.stdout.contains(&hint),
        "the summary's first errors: {}",
        run.stdout
    );
    for bad in ["htp://api.wts.chat", "api.wts.chat", "https://"] {
        let run = env.run_at(bad, &pb, Some("pn_x"), &[]);
        assert_eq!(run.code, 2, "{bad}: {}", run.context());
        assert!(run.stderr.contains("WTS_BASE_URL"), "{}", run.stderr);
        assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Closed stdout or stderr: not a crash; the run finishes, the report is whole.

fn closed_pipe_run(env: &Env, close_stdout: bool) {
    let ids = uuids(30);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook("  concurrency: 4"));
    let report = env.dir.path().join(format!("pipe-{close_stdout}.json"));
    let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("wts-playbook"));
    cmd.current_dir(env.dir.path())
        .env_remove("WTS_PLAYBOOK_LOG")
        .env("WTS_BASE_URL", env.sb().url())
        .env("WTS_API_TOKEN", "pn_pipe")
        .args(["run", pb.to_str().unwrap(), "--yes", "-v", "--report"])
        .arg(&report)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // The reading end goes away before the process writes anything.
    if close_stdout {
        drop(child.stdout.take());
    } else {
        drop(child.stderr.take());
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "closed stdout: {close_stdout}");
    let text = std::fs::read_to_string(&report).unwrap();
    let report: Value = serde_json::from_str(&text).expect("the report is whole");
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["totals"]["succeeded"], 30);
    assert!(!env
        .dir
        .path()
        .join(format!("pipe-{close_stdout}.json.inflight"))
        .exists());
}

#[test]
fn a_closed_stdout_or_stderr_is_not_a_crash() {
    let env = Env::new(SandboxConfig::default());
    closed_pipe_run(&env, true);
    closed_pipe_run(&env, false);
    let done = env
        .journal()
        .iter()
        .filter(|e| completed_id(e).is_some())
        .count();
    assert_eq!(done, 60);
    // `validate … | true`
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("wts-playbook"))
        .current_dir(env.dir.path())
        .args(["validate", "close.yaml", "close.yaml", "close.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

// ---------------------------------------------------------------------------------------------
// 5. What is not a regular file is refused at once.

#[cfg(unix)]
#[test]
fn a_fifo_or_a_device_is_refused_not_read() {
    let env = Env::new(SandboxConfig::default());
    let fifo = env.dir.path().join("ids.csv");
    assert!(StdCommand::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let pb = env.write("close.yaml", &close_playbook(""));
    let started = Instant::now();
    let run = env.run(&pb, Some("pn_x"), &["--dry-run"]);
    assert_eq!(run.code, 2, "{}", run.context());
    assert!(run.stderr.contains("named pipe (FIFO)"), "{}", run.stderr);
    let out = assert_cmd::Command::cargo_bin("wts-playbook")
        .unwrap()
        .args(["validate", "/dev/zero"])
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("character device"));
    let out = assert_cmd::Command::cargo_bin("wts-playbook")
        .unwrap()
        .current_dir(env.dir.path())
        .args(["validate", "ids.csv"])
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(env.journal().is_empty(), "nothing sent");
}

// ---------------------------------------------------------------------------------------------
// 8. `.` and `..` as a path parameter, or in the `http` action's path, are refused.

#[test]
fn dot_segments_in_a_path_are_refused_naming_the_row() {
    let env = Env::new(SandboxConfig::default());
    env.write("phones.csv", "phone\n+5511999990000\n..\n.\n");
    let pb = env.write(
        "lookup.yaml",
        r#"version: 1
name: lookup
inputs:
  phones: { csv: phones.csv }
steps:
  - id: look
    action: contact.get_by_phone
    for_each: inputs.phones
    with:
      phone_number: "{{ row.phone }}"
  - id: raw
    action: http
    with:
      method: GET
      path: "/core/v1/contact/%2e%2e/x"
"#,
    );
    let run = env.run(&pb, Some("pn_x"), &[]);
    assert_eq!(run.code, 2, "{}", run.context());
    assert!(
        run.stderr.contains("row 2 (line 3") && run.stderr.contains("`..` would change the route"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("row 3 (line 4"), "{}", run.stderr);
    assert!(run.stderr.contains("dot segment") || run.stderr.contains("`.` or `..` segment"));
    assert!(
        env.journal().iter().all(|e| e.path == "/core/v1/tag"
            || e.method != "GET"
            || !e.path.starts_with("/core/v1/contact")),
        "nothing sent"
    );
    assert!(env
        .journal()
        .iter()
        .all(|e| !e.path.starts_with("/core/v1/contact")));
}

// ---------------------------------------------------------------------------------------------
// 9. A secret through a filter is redacted as a whole value.

#[test]
fn a_secret_through_a_filter_is_redacted_as_a_whole() {
    let env = Env::new(SandboxConfig::default());
    let secret = "sk_live_abcdefghijkl";
    let pb = env.write(
        "leak.yaml",
        &format!(
            r#"version: 1
name: leak
vars:
  api_key: {secret}
  derived: "key={{{{ vars.api_key | reverse }}}}"
settings: {{ secrets: [api_key] }}
steps:
  - id: tell
    action: session.send_text
    with:
      session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
      text: "{{{{ vars.api_key | upper }}}} {{{{ vars.api_key[:9] }}}} {{{{ vars.api_key | urlencode }}}} {{{{ vars.api_key | tojson }}}}"
  - id: again
    action: session.send_text
    with:
      session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
      text: "{{{{ vars.derived }}}}"
"#
        ),
    );
    for extra in [&["--dry-run"][..], &[][..]] {
        let run = env.run(&pb, Some("pn_x"), extra);
        assert_eq!(run.code, 0, "{}", run.context());
        let all = format!(
            "{}{}{}",
            run.stdout,
            run.stderr,
            run.report_text.as_deref().unwrap_or_default()
        );
        let upper = secret.to_uppercase();
        let reversed: String = secret.chars().rev().collect();
        for leak in [secret, upper.as_str(), &secret[..9], reversed.as_str()] {
            assert!(!all.contains(leak), "{leak} leaked: {all}");
        }
        assert!(run.report_text.unwrap().contains("[redacted]"));
    }
    // The real values reached the server.
    let sent: Vec<String> = env
        .journal()
        .iter()
        .filter(|e| e.method == "POST")
        .filter_map(|e| e.body["text"].as_str().map(str::to_owned))
        .collect();
    assert!(
        sent.iter()
            .any(|t| t.starts_with("SK_LIVE_ABCDEFGHIJKL sk_live_a")),
        "{sent:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 11. `for_each` over a string is an error; 12. every numeric setting has its range.

#[test]
fn for_each_over_a_string_is_an_error_naming_the_step() {
    let env = Env::new(SandboxConfig::default());
    let pb = env.write(
        "chars.yaml",
        r#"version: 1
name: chars
vars:
  names: hello
steps:
  - id: tell
    action: session.send_text
    for_each: vars.names
    with:
      session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
      text: "{{ item }}"
"#,
    );
    let run = env.run(&pb, Some("pn_x"), &[]);
    assert_eq!(run.code, 2, "{}", run.context());
    assert!(
        run.stderr
            .contains("step `tell`: for_each `vars.names` must give a list, got a string `hello`"),
        "{}",
        run.stderr
    );
    assert!(
        env.journal().iter().all(|e| e.method == "GET"),
        "nothing sent"
    );
}

#[test]
fn numeric_settings_and_parameters_out_of_range_are_refused_with_the_range() {
    let env = Env::new(SandboxConfig::default());
    let pb = env.write(
        "ranges.yaml",
        r"version: 1
name: ranges
settings:
  timeout: 0s
  max_failures: -1
  concurrency: 5000
  retry: { attempts: 1000, backoff: 999999999999999s }
  max_retry_wait: 2d
  max_response_size: 10
  unreachable_after: 0
  max_pages: 0
steps:
  - id: tell
    action: session.send_text
    with:
      session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
      text: hi
",
    );
    let run = env.run(&pb, Some("pn_x"), &["--dry-run"]);
    assert_eq!(run.code, 2, "{}", run.context());
    for expected in [
        "timeout 0s is out of range: it must be between 10ms and 1h",
        "max_failures -1 is out of range",
        "concurrency: 5000 is out of range: it must be between 1 and 1024",
        "attempts: 1000 is out of range: it must be between 1 and 100",
        "backoff 999999999999999s is out of range: it must be between 0s and 10m",
        "max_retry_wait 48h is out of range",
        "10 is out of range: it must be between 1024 and 1073741824",
        "unreachable_after: 0 is out of range",
        "max_pages: 0 is out of range",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
    // A NaN would silently become null (an omitted parameter).
    let pb = env.write(
        "nan.yaml",
        r"version: 1
name: nan
steps:
  - id: tell
    action: session.send_text
    with:
      session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
      text: .nan
      delay: .inf
",
    );
    let run = env.run(&pb, Some("pn_x"), &["--dry-run"]);
    assert_eq!(run.code, 2, "{}", run.context());
    assert!(
        run.stderr.contains("is not a usable number") && run.stderr.contains("nan.yaml:8:"),
        "{}",
        run.stderr
    );
    assert!(env.journal().is_empty());
}

/// A server that echoes the bearer token in an HTML error page: the token never reaches the
/// report or the output, not even in part where the quoted first bytes cut it.
#[test]
fn a_token_echoed_by_the_server_is_redacted_even_where_the_quote_cuts_it() {
    const TOKEN: &str = "pn-echo-SECRET-77880011";
    let env = Env::new(SandboxConfig::default());
    let server = Hostile::start(&env, |_, _| {
        // The token starts near the end of the quoted first bytes.
        let pad = "x".repeat(60);
        Reply::Full {
            status: 200,
            headers: vec![("content-type", "text/html".into())],
            body: format!("<html>{pad} your header was Bearer {TOKEN} </html>").into_bytes(),
        }
    });
    let pb = env.write(
        "send.yaml",
        r"version: 1
name: hostile-echo
settings: { retry: { attempts: 2, backoff: 10ms } }
steps:
  - id: tell
    action: session.send_text
    with:
      session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
      text: hello
",
    );
    let run = env.run_at(&server.url(), &pb, Some(TOKEN), &[]);
    let all = format!(
        "{}{}{}",
        run.stdout,
        run.stderr,
        run.report_text.as_deref().unwrap_or_default()
    );
    assert!(
        !all.contains(&TOKEN[..10]),
        "the token leaked, maybe in part:\n{all}"
    );
    assert!(
        all.contains("[redacted]") || !all.contains("Bearer"),
        "{all}"
    );
}
