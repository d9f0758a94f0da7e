//! Authentication: a refused token aborts before any change, a token revoked mid-run, a
//! throttled token check.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;
use wts_playbook::sandbox::SandboxConfig;

use crate::support::{uuids, Env};

use super::{close_playbook, is_first_alone, FAST_RETRY};

// 5. authentication refused.

const RIGHT_TOKEN: &str = "pn-right-e2e-7f3a";
const WRONG_TOKEN: &str = "pn-wrong-e2e-91c2";

#[test]
fn refused_token_aborts_before_any_change() {
    let env = Env::new(SandboxConfig {
        token: Some(RIGHT_TOKEN.into()),
        ..SandboxConfig::default()
    });
    let ids = uuids(20);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run(
        &pb,
        Some(WRONG_TOKEN),
        &["--rate-limit", "off", "--markdown", "refused.md"],
    );
    assert_eq!(run.code, 3, "{}", run.context());
    // The views are written for a run stopped before its first item too.
    let md = std::fs::read_to_string(env.dir.path().join("refused.md")).expect("markdown");
    assert!(md.contains("**Aborted:** authentication refused"), "{md}");
    assert!(!md.contains(WRONG_TOKEN));

    let journal = env.journal();
    assert_eq!(
        journal.len(),
        1,
        "only the first request, the token check: {journal:?}"
    );
    assert_eq!(journal[0].status, 401);
    assert!(journal.iter().all(|e| !e.state_changed));
    assert_eq!(env.sb().summary().sessions_completed, 0);

    assert!(!run.stdout.contains(WRONG_TOKEN), "token in stdout");
    assert!(!run.stderr.contains(WRONG_TOKEN), "token in stderr");
    // The remaining expectations are collected so one run shows every one that fails.
    let mut problems = Vec::new();
    if !run.stderr.to_lowercase().contains("authentication") {
        problems.push(format!(
            "the error does not say that authentication was refused: {:?}",
            run.stderr
        ));
    }
    // A report is written for every run, aborted ones included.
    match &run.report_text {
        None => problems.push("no report was written for the aborted run".to_owned()),
        Some(text) => {
            assert!(!text.contains(WRONG_TOKEN), "token in the report");
            let report: Value = serde_json::from_str(text).expect("the report is valid JSON");
            if report["outcome"] != "aborted" {
                problems.push(format!(
                    "report outcome {} (want aborted)",
                    report["outcome"]
                ));
            }
            let reason = report["abort_reason"].as_str().unwrap_or("");
            if !reason.contains("authentication refused") {
                problems.push(format!("report abort_reason {reason:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// What the test proxy in front of the sandbox does.
#[derive(Clone, Copy)]
enum ProxyMode {
    /// Forward the first N requests as they are, then replace the bearer token with a revoked
    /// one: the token check passes, later requests get 401.
    RevokeAfter(usize),
    /// Answer the first N requests with a 429 (API error envelope) itself; forward the rest.
    ThrottleFirst(usize),
}

/// Starts a proxy in front of `upstream` on the env's runtime; returns its base URL.
fn start_proxy(env: &Env, upstream: String, mode: ProxyMode) -> String {
    use axum::body::{to_bytes, Body};
    use axum::extract::{Request, State};
    use axum::response::Response;

    #[derive(Clone)]
    struct Proxy {
        upstream: String,
        mode: ProxyMode,
        seen: Arc<AtomicUsize>,
        http: reqwest::Client,
    }

    async fn forward(State(p): State<Proxy>, req: Request) -> Response {
        let n = p.seen.fetch_add(1, Ordering::SeqCst);
        if matches!(p.mode, ProxyMode::ThrottleFirst(k) if n < k) {
            let body = serde_json::json!({
                "httpStatusCode": 429, "error": true, "key": "ERROR_TOO_MANY_REQUESTS",
                "text": "Limite de requisições excedido", "isUnsolvableError": false,
            });
            return Response::builder()
                .status(429)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
        }
        let (parts, body) = req.into_parts();
        let bytes = to_bytes(body, 1 << 24).await.unwrap_or_default();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", axum::http::uri::PathAndQuery::as_str);
        let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap();
        let mut rb = p
            .http
            .request(method, format!("{}{path}", p.upstream))
            .body(bytes.to_vec());
        if let Some(ct) = parts.headers.get("content-type") {
            rb = rb.header("content-type", ct.as_bytes());
        }
        let auth = if matches!(p.mode, ProxyMode::RevokeAfter(k) if n >= k) {
            "Bearer revoked-e2e".to_owned()
        } else {
            parts
                .headers
                .get("authorization")
                .map(|v| v.to_str().unwrap_or_default().to_owned())
                .unwrap_or_default()
        };
        rb = rb.header("authorization", auth);
        let resp = rb.send().await.expect("upstream answers");
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    }

    let proxy = Proxy {
        upstream,
        mode,
        seen: Arc::new(AtomicUsize::new(0)),
        http: reqwest::Client::new(),
    };
    let router = axum::Router::new().fallback(forward).with_state(proxy);
    let listener = env
        .rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    env.rt.spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

#[test]
fn token_revoked_mid_run_aborts_at_the_first_401() {
    let env = Env::new(SandboxConfig {
        token: Some(RIGHT_TOKEN.into()),
        ..SandboxConfig::default()
    });
    let proxy = start_proxy(&env, env.sb().url(), ProxyMode::RevokeAfter(1));
    let ids = uuids(30);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run_at(
        &proxy,
        &pb,
        Some(RIGHT_TOKEN),
        &["--rate-limit", "off", "--concurrency", "2"],
    );
    assert_eq!(run.code, 3, "{}", run.context());

    let journal = env.journal();
    assert!(journal[0].status == 200 && is_first_alone(&journal));
    let refused = journal.iter().filter(|e| e.status == 401).count();
    assert!(refused >= 1);
    assert!(
        journal.len() <= 1 + 2,
        "no request started after the first 401 (concurrency 2): {} requests",
        journal.len()
    );
    // The first request (which doubled as the token check) went through; nothing after the 401.
    assert_eq!(journal.iter().filter(|e| e.state_changed).count(), 1);
    assert_eq!(env.sb().summary().sessions_completed, 1);
    assert!(
        format!("{}{}", run.stdout, run.stderr)
            .to_lowercase()
            .contains("authentication"),
        "{}",
        run.context()
    );
    let text = run.report_text.clone().unwrap_or_default();
    assert!(!text.contains(RIGHT_TOKEN), "token in the report");
    assert!(!run.stdout.contains(RIGHT_TOKEN) && !run.stderr.contains(RIGHT_TOKEN));
    let report = run.report();
    assert_eq!(report["outcome"], "aborted");
    let not_succeeded = run
        .items()
        .iter()
        .filter(|i| i["status"] != "succeeded")
        .count();
    assert!(not_succeeded >= 1);
}

/// A 429 on the token check is the account being busy, not a refused token: the README says
/// 429s are always retried, and the check is a GET.
#[test]
fn throttled_token_check_is_retried_not_fatal() {
    let env = Env::new(SandboxConfig::default());
    let proxy = start_proxy(&env, env.sb().url(), ProxyMode::ThrottleFirst(1));
    let ids = uuids(10);
    env.csv("ids.csv", "session_id", &ids);
    let pb = env.write("close.yaml", &close_playbook(FAST_RETRY));
    let run = env.run_at(&proxy, &pb, Some("pn_e2e"), &["--rate-limit", "off"]);
    assert_eq!(
        run.code,
        0,
        "a 429 on the token check aborted the run\n{}",
        run.context()
    );
    for id in &ids {
        assert_eq!(env.sb().session(id).unwrap().status, "COMPLETED", "{id}");
    }
    assert_eq!(run.report()["outcome"], "completed");
}
