//! End-to-end tests of the sandbox over real HTTP on loopback: every route of the catalog,
//! auth, paging, faults, the rate limit and the journal. Each test starts its own sandbox.
#![expect(
    clippy::many_single_char_names,
    clippy::similar_names,
    reason = "short-lived bindings (`c` client, `v` value, `card`/`card2`) keep the route checks readable"
)]

#[path = "../support/mod.rs"]
mod support;

mod files;
mod materialize;
mod routes;
mod sessions;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;
use wts_playbook::sandbox::{Sandbox, SandboxConfig};

use crate::support::start_sandbox;

const TOKEN: &str = "pn_test_token";

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(sb: &Sandbox) -> Client {
        Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            base: sb.url(),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.try_send(method, path, body)
            .await
            .expect("request failed")
    }

    async fn try_send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Result<(StatusCode, Value)> {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, v))
    }

    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.send(Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (s, v) = self.send(method.clone(), path, Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{method} {path}: {v}");
        v
    }
}

async fn start(config: SandboxConfig) -> (Sandbox, Client) {
    let sb = start_sandbox(config).await;
    let c = Client::new(&sb);
    (sb, c)
}

fn assert_envelope(v: &Value, status: u16, key: &str) {
    assert_eq!(v["httpStatusCode"], status, "{v}");
    assert_eq!(v["error"], true, "{v}");
    assert_eq!(v["key"], key, "{v}");
    assert!(v["text"].is_string(), "{v}");
    assert!(v["date"].is_string(), "{v}");
    assert_eq!(
        v["id"]["shortValue"].as_str().unwrap(),
        &v["id"]["value"].as_str().unwrap()[..8]
    );
    assert!(v["isUnsolvableError"].is_boolean());
}

const NEW_SESSION: &str = "0f0e0d0c-0b0a-4908-8706-050403020100";
