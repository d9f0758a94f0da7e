//! Chatbot and sequence routes, lookups, auth and paths, the journal, faults, the rate limit.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use wts_playbook::sandbox::{Sandbox, SandboxConfig};

use super::{assert_envelope, start, Client, NEW_SESSION, TOKEN};

#[tokio::test]
async fn chatbot_and_sequence_routes() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let bots = c.get("/chat/v1/chatbot?Types=Automation").await;
    assert_eq!(bots["totalItems"], 2);
    let key = bots["items"][0]["key"].as_str().unwrap().to_owned();
    let s = c
        .ok(
            Method::POST,
            "/chat/v1/chatbot/send",
            json!({"botKey": key, "to": "5531911112222", "sessionMetadata": {"a": 1}}),
        )
        .await;
    assert_eq!(s["status"], "STARTED");
    assert_eq!(s["metadata"], json!({"a": 1}));
    assert!(s["botId"].is_string());
    let s2 = c
        .ok(
            Method::POST,
            "/chat/v1/chatbot/send",
            json!({"botId": "b", "sessionId": NEW_SESSION}),
        )
        .await;
    assert_eq!(s2["id"], NEW_SESSION);
    let (st, _) = c
        .send(
            Method::POST,
            "/chat/v1/chatbot/send",
            Some(json!({"to": "55"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let (seq, contact) = sequence_enrolments(&c).await;
    sequence_removals(&c, &seq, &contact).await;

    let sum = sb.summary();
    assert_eq!(
        (
            sum.chatbots_started,
            sum.enrolments_added,
            sum.enrolments_removed
        ),
        (2, 4, 3)
    );
    sb.shutdown().await;
}

/// Enrolments into a seeded sequence (by contact id, by phone, in a batch) and their listings;
/// returns the sequence's id and the enrolled contact's id.
async fn sequence_enrolments(c: &Client) -> (String, String) {
    let seqs = c.get("/chat/v1/sequence").await;
    assert_eq!(seqs["totalItems"], 3);
    let seq = seqs["items"][1]["id"].as_str().unwrap().to_owned();
    let contact = c.get("/core/v1/contact?PageSize=1").await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let e = c
        .ok(
            Method::POST,
            &format!("/chat/v1/sequence/{seq}/contact"),
            json!({"contactId": contact}),
        )
        .await;
    assert_eq!(
        (e["sequenceId"].as_str(), e["contactId"].as_str()),
        (Some(seq.as_str()), Some(contact.as_str()))
    );
    c.ok(
        Method::POST,
        &format!("/chat/v1/sequence/{seq}/contact"),
        json!({"phoneNumber": "5541900001111"}),
    )
    .await;
    let batch = c
        .ok(
            Method::POST,
            &format!("/chat/v1/sequence/{seq}/contact/batch"),
            json!({"phoneNumbers": ["5541900002222", "5541900003333"]}),
        )
        .await;
    assert_eq!(batch["totalItems"], 2);
    let (st, _) = c
        .send(
            Method::POST,
            &format!("/chat/v1/sequence/{seq}/contact/batch"),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        c.get(&format!("/chat/v1/sequence/{seq}/contact")).await["totalItems"],
        4
    );
    let filtered = c
        .get(&format!(
            "/chat/v2/sequence/{seq}/contact?ContactId={contact}"
        ))
        .await;
    assert_eq!(filtered["totalItems"], 1);
    assert_eq!(
        c.get(&format!("/chat/v1/sequence?ContactId={contact}"))
            .await["totalItems"],
        2
    );
    (seq, contact)
}

/// Removals (single, again: 404, batch) from the sequence; an unseen sequence is empty.
async fn sequence_removals(c: &Client, seq: &str, contact: &str) {
    let (st, body) = c
        .send(
            Method::DELETE,
            &format!("/chat/v1/sequence/{seq}/contact"),
            Some(json!({"contactId": contact})),
        )
        .await;
    assert_eq!((st, body), (StatusCode::OK, Value::Null));
    let (st, _) = c
        .send(
            Method::DELETE,
            &format!("/chat/v1/sequence/{seq}/contact"),
            Some(json!({"contactId": contact})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = c
        .send(
            Method::DELETE,
            &format!("/chat/v1/sequence/{seq}/contact/batch"),
            Some(json!({"phoneNumbers": ["5541900002222", "5541900003333"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        c.get(&format!("/chat/v2/sequence/{seq}/contact")).await["totalItems"],
        1
    );
    // An unseen sequence id is an empty sequence.
    let unseen = c
        .get(&format!("/chat/v1/sequence/{NEW_SESSION}/contact"))
        .await;
    assert_eq!(unseen["totalItems"], 0);
}

#[tokio::test]
async fn lookups_auth_and_paths() {
    let (sb, c) = start(SandboxConfig {
        token: Some(TOKEN.into()),
        ..SandboxConfig::default()
    })
    .await;
    for path in [
        "/chat/v1/channel",
        "/core/v1/department",
        "/core/v2/department",
        "/core/v1/agent",
        "/core/v1/tag",
        "/core/v1/contact/custom-field",
    ] {
        assert!(!c.get(path).await.as_array().unwrap().is_empty(), "{path}");
    }
    for path in ["/chat/v1/chatbot", "/chat/v1/template"] {
        assert!(
            c.get(path).await["totalItems"].as_u64().unwrap() > 0,
            "{path}"
        );
    }
    // Missing, malformed and wrong tokens: 401 envelope, even on unknown routes.
    let url = format!("{}/chat/v1/channel", sb.url());
    let http = reqwest::Client::new();
    for rb in [
        http.get(&url),
        http.get(&url).bearer_auth("wrong"),
        http.get(&url).header("Authorization", TOKEN),
        http.get(format!("{}/nowhere", sb.url())),
    ] {
        let resp = rb.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_envelope(&resp.json().await.unwrap(), 401, "ERROR_UNAUTHORIZED");
    }
    let (st, err) = c.send(Method::GET, "/v1/channel", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_envelope(&err, 400, "ERROR_BAD_REQUEST");
    let (st, _) = c.send(Method::GET, "/chat/v1/nothing", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let resp = http
        .put(format!(
            "{}/chat/v1/session/{NEW_SESSION}/complete",
            sb.url()
        ))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        sb.session(NEW_SESSION).is_none(),
        "bad JSON changes nothing"
    );
    assert_eq!(sb.summary().unauthorized, 4);

    // Non-loopback addresses are refused.
    let err = Sandbox::start("0.0.0.0:0".parse().unwrap(), SandboxConfig::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    sb.shutdown().await;
}

#[tokio::test]
async fn journal_and_inspection() {
    let (sb, c) = start(SandboxConfig::default()).await;
    c.ok(
        Method::PUT,
        &format!("/chat/v1/session/{NEW_SESSION}/complete"),
        json!({}),
    )
    .await;
    c.get("/core/v1/tag").await;
    let _ = c
        .send(
            Method::PUT,
            &format!("/chat/v1/session/{NEW_SESSION}/complete"),
            Some(json!({})),
        )
        .await;
    let j: Value = reqwest::get(format!("{}/__sandbox/journal", sb.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = j["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["seq"], 1);
    assert_eq!(entries[0]["method"], "PUT");
    assert_eq!(entries[0]["stateChanged"], true);
    assert_eq!(entries[0]["body"], json!({}));
    assert_eq!(
        (
            entries[1]["status"].as_u64(),
            entries[1]["stateChanged"].as_bool()
        ),
        (Some(200), Some(false))
    );
    assert_eq!(entries[2]["status"], 400);
    assert_eq!(sb.journal().len(), 3);

    let s: Value = reqwest::get(format!("{}/__sandbox/sessions/{NEW_SESSION}", sb.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["status"], "COMPLETED");
    let state: Value = reqwest::get(format!("{}/__sandbox/state", sb.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["counts"]["sessions"], 121);
    assert_eq!(state["counts"]["contacts"], 60);
    let summary: Value = reqwest::get(format!("{}/__sandbox/summary", sb.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["sessionsCompleted"], 1);
    assert_eq!(summary["changes"]["sessions completed"], 1);
    assert!(summary["text"]
        .as_str()
        .unwrap()
        .contains("sessions completed: 1"));
    let r = reqwest::Client::new()
        .post(format!("{}/__sandbox/reset", sb.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(sb.session(NEW_SESSION).is_none());
    assert!(sb.journal().is_empty());
    sb.shutdown().await;
}

#[tokio::test]
async fn fault_kinds() {
    let complete = |c: &Client| {
        let path = format!("/chat/v1/session/{NEW_SESSION}/complete");
        let c = Client {
            http: c.http.clone(),
            base: c.base.clone(),
        };
        async move { c.try_send(Method::PUT, &path, Some(json!({}))).await }
    };
    // fail before: 5xx envelope, state untouched.
    let (sb, c) = start(SandboxConfig {
        fail_rate: 1.0,
        ..SandboxConfig::default()
    })
    .await;
    let (st, err) = complete(&c).await.unwrap();
    assert!(st.is_server_error());
    assert_eq!(err["httpStatusCode"], st.as_u16());
    assert!(sb.session(NEW_SESSION).is_none());
    assert_eq!(sb.journal()[0].fault.as_deref(), Some("fail_before"));
    // Inspection is never faulted.
    assert_eq!(
        reqwest::get(format!("{}/__sandbox/summary", sb.url()))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    sb.shutdown().await;

    // fail after: 503, state changed.
    let (sb, c) = start(SandboxConfig {
        fail_after_rate: 1.0,
        ..SandboxConfig::default()
    })
    .await;
    let (st, err) = complete(&c).await.unwrap();
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    assert_envelope(&err, 503, "ERROR_SERVICE_UNAVAILABLE");
    assert_eq!(sb.session(NEW_SESSION).unwrap().status, "COMPLETED");
    let e = &sb.journal()[0];
    assert!(e.state_changed);
    assert_eq!(e.fault.as_deref(), Some("fail_after"));
    sb.shutdown().await;

    // drop before: transport error, state untouched.
    let (sb, c) = start(SandboxConfig {
        drop_rate: 1.0,
        ..SandboxConfig::default()
    })
    .await;
    assert!(complete(&c).await.is_err());
    assert!(sb.session(NEW_SESSION).is_none());
    assert_eq!(sb.journal()[0].status, 0);
    sb.shutdown().await;

    // drop after: transport error, state changed.
    let (sb, c) = start(SandboxConfig {
        drop_after_rate: 1.0,
        ..SandboxConfig::default()
    })
    .await;
    assert!(complete(&c).await.is_err());
    assert_eq!(sb.session(NEW_SESSION).unwrap().status, "COMPLETED");
    assert_eq!(sb.journal()[0].fault.as_deref(), Some("drop_after"));
    assert_eq!(sb.summary().faults_injected, 1);
    sb.shutdown().await;

    // latency is applied.
    let (sb, c) = start(SandboxConfig {
        latency_ms: 60,
        jitter_ms: 20,
        ..SandboxConfig::default()
    })
    .await;
    let t = std::time::Instant::now();
    c.get("/core/v1/tag").await;
    assert!(t.elapsed() >= Duration::from_millis(60));
    sb.shutdown().await;
}

#[tokio::test]
async fn rate_limit_windows() {
    let (sb, c) = start(SandboxConfig {
        rate_limit: vec![(5, Duration::from_millis(400))],
        retry_after: true,
        ..SandboxConfig::default()
    })
    .await;
    for _ in 0..5 {
        c.get("/core/v1/tag").await;
    }
    let resp = c
        .http
        .get(format!("{}/core/v1/tag", c.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_envelope(&resp.json().await.unwrap(), 429, "ERROR_TOO_MANY_REQUESTS");
    // Another token has its own windows.
    let other = c
        .http
        .get(format!("{}/core/v1/tag", c.base))
        .bearer_auth("other")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(420)).await;
    c.get("/core/v1/tag").await;
    assert_eq!(sb.summary().rate_limited, 1);
    assert_eq!(
        sb.journal()
            .iter()
            .filter(|e| e.fault.as_deref() == Some("rate_limited"))
            .count(),
        1
    );
    sb.shutdown().await;
}

// ---------------------------------------------------------------- unseen ids
