//! The client against local servers: headers, redirects, timeouts, broken connections, body
//! caps, error decoding and `Retry-After`.

use super::*;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{any, get};
use serde_json::json;
use tokio::io::AsyncReadExt;

const TOKEN: &str = "pn_test_token_0123456789";

async fn echo(req: Request) -> impl IntoResponse {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    axum::Json(json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "authorization": header("authorization"),
        "accept": header("accept"),
        "content_type": header("content-type"),
        "user_agent": header("user-agent"),
        "body": serde_json::from_slice::<Value>(&bytes).ok(),
    }))
}

async fn tags(req: Request) -> axum::response::Response {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if auth == Some(&format!("Bearer {TOKEN}")) {
        axum::Json(json!([{"id": "t1", "name": "vip"}])).into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({
                "id": {"value": "c44bf0cc-0000", "shortValue": "c44bf0cc"},
                "httpStatusCode": 401, "error": true,
                "key": "ERROR_UNAUTHORIZED", "text": "Acesso negado"
            })),
        )
            .into_response()
    }
}

/// An axum server on 127.0.0.1:0; returns its base URL.
async fn server() -> String {
    let app = axum::Router::new()
        .route("/echo", any(echo))
        .route("/core/v1/tag", get(tags))
        .route("/empty", get(|| async { StatusCode::OK }))
        .route(
            "/limited",
            get(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "7")],
                    axum::Json(json!({"key": "ERROR_TOO_MANY_REQUESTS"})),
                )
            }),
        )
        .route(
            "/limited-date",
            get(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")],
                )
            }),
        )
        .route(
            "/text",
            get(|| async { (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>") }),
        )
        .route("/big", get(|| async { "x".repeat(10_000) }))
        .route(
            "/portal",
            get(|| async {
                (
                    [("content-type", "text/html")],
                    "<html><body>log in to the Wi-Fi</body></html>",
                )
            }),
        )
        .route(
            "/cut",
            get(|| async { ([("content-type", "application/json")], r#"{"items": [{"#) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

fn client(base: &str) -> Client {
    Client::new(base, &Secret::new(TOKEN), Duration::from_secs(5)).unwrap()
}

fn get_req(path: &str) -> HttpRequest {
    HttpRequest {
        method: Method::Get,
        path: path.to_owned(),
        query: Vec::new(),
        body: None,
    }
}

fn assert_no_token(e: &TransportError) {
    assert!(!e.to_string().contains(TOKEN), "{e}");
    assert!(!format!("{e:?}").contains(TOKEN), "{e:?}");
}

#[tokio::test]
async fn put_upload_sends_the_bytes_and_content_type_without_the_token() {
    let base = server().await;
    let c = client(&base);
    let resp = c
        .put_upload(
            &format!("{base}echo?X-Amz-Signature=abc"),
            "application/json",
            br#"{"raw": true}"#.to_vec(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    let b = &resp.body;
    assert_eq!(b["method"], "PUT");
    assert_eq!(b["uri"], "/echo?X-Amz-Signature=abc");
    assert_eq!(b["authorization"], Value::Null, "no token on the upload");
    assert_eq!(b["content_type"], "application/json");
    assert_eq!(b["body"], json!({"raw": true}));
    let e = c
        .put_upload(
            "/relative",
            "text/plain",
            Vec::new(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, TransportError::Invalid(_)), "{e:?}");
    let e = c
        .put_upload(
            "ftp://h/x",
            "text/plain",
            Vec::new(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, TransportError::Invalid(_)), "{e:?}");
}

#[tokio::test]
async fn sends_bearer_accept_user_agent_and_json_body_on_delete() {
    let base = server().await;
    let c = client(&base);
    assert!(!c.base_url().ends_with('/'));
    let req = HttpRequest {
        method: Method::Delete,
        path: "/echo".to_owned(),
        query: vec![
            ("tag".to_owned(), "a b".to_owned()),
            ("tag".to_owned(), "c".to_owned()),
        ],
        body: Some(json!({"tagIds": ["x", "y"]})),
    };
    let resp = c.send(&req, Duration::from_secs(5)).await.unwrap();
    assert_eq!(resp.status, 200);
    let b = &resp.body;
    assert_eq!(b["method"], "DELETE");
    assert_eq!(b["uri"], "/echo?tag=a%20b&tag=c");
    assert_eq!(b["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(b["accept"], "application/json");
    assert_eq!(b["content_type"], "application/json");
    assert_eq!(
        b["user_agent"],
        concat!("wts-playbook/", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(b["body"], json!({"tagIds": ["x", "y"]}));
    // No body: no content type.
    let resp = c
        .send(&get_req("/echo"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(resp.body["content_type"], Value::Null);
    assert_eq!(resp.body["body"], Value::Null);
    // The token never shows in the client's Debug output.
    assert!(!format!("{c:?}").contains(TOKEN));
}

#[tokio::test]
async fn empty_body_is_null_and_text_body_is_a_truncated_string() {
    let c = client(&server().await);
    let resp = c
        .send(&get_req("/empty"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!((resp.status, resp.body), (200, Value::Null));
    let resp = c
        .send(&get_req("/text"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(resp.status, 502);
    assert_eq!(resp.body, json!("<html>bad gateway</html>"));
    let resp = c
        .send(&get_req("/big"), Duration::from_secs(5))
        .await
        .unwrap();
    let s = resp.body.as_str().unwrap();
    assert_eq!(s.len(), MAX_TEXT_BODY + "…".len());
}

#[tokio::test]
async fn a_2xx_that_is_not_json_is_not_a_success() {
    let c = client(&server().await);
    let resp = c
        .send(&get_req("/portal"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert!(!resp.is_success());
    let d = resp.describe();
    assert!(
        d.starts_with("200 OK, but the body is not the JSON expected: content type text/html")
            && d.contains("starting `<html><body>log in"),
        "{d}"
    );
    let resp = c
        .send(&get_req("/cut"), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(!resp.is_success());
    assert!(resp.describe().contains("EOF"), "{}", resp.describe());
    // An empty 2xx and JSON are fine.
    let resp = c
        .send(&get_req("/empty"), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(resp.is_success());
}

#[tokio::test]
async fn a_body_past_the_cap_is_not_read() {
    let base = server().await;
    let c = client(&base).with_max_body(4096);
    // With a Content-Length…
    let err = c
        .send(&get_req("/big"), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TransportError::TooLarge(m) if m.contains("10000 bytes")),
        "{err:?}"
    );
    assert!(err.was_sent());
    // …and without (chunked, no length announced).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut b = [0u8; 4096];
            let _ = sock.read(&mut b).await;
            let mut out = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            for _ in 0..64 {
                out.extend_from_slice(b"400\r\n");
                out.extend(std::iter::repeat_n(b'x', 1024));
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            let _ = sock.write_all(&out).await;
        }
    });
    let chunked = format!("http://{addr}");
    let err = client(&chunked)
        .with_max_body(4096)
        .send(&get_req("/x"), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::TooLarge(_)), "{err:?}");
    let resp = client(&chunked)
        .send(&get_req("/x"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        resp.body.as_str().map(str::len),
        Some(MAX_TEXT_BODY + "…".len())
    );
}

#[tokio::test]
async fn reads_retry_after_on_429() {
    let c = client(&server().await);
    let resp = c
        .send(&get_req("/limited"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(resp.status, 429);
    assert_eq!(resp.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(
        ApiError::from_api_response(&resp).key.as_deref(),
        Some("ERROR_TOO_MANY_REQUESTS")
    );
    // A date in the past means "now".
    let resp = c
        .send(&get_req("/limited-date"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(resp.retry_after, Some(Duration::ZERO));
}

#[tokio::test]
async fn connection_refused_is_not_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = client(&format!("http://{addr}"));
    let err = c
        .send(&get_req("/x"), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::NotSent(_)), "{err:?}");
    assert_no_token(&err);
}

#[tokio::test]
async fn server_closing_without_answer_is_broken() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // Accept, read the request, hang up without answering (every connection).
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            drop(sock);
        }
    });
    let c = client(&format!("http://{addr}"));
    let req = HttpRequest {
        method: Method::Post,
        path: "/chat/v1/message/send".to_owned(),
        query: Vec::new(),
        body: Some(json!({"text": "hi"})),
    };
    let err = c.send(&req, Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(err, TransportError::Broken(_)), "{err:?}");
    assert!(err.was_sent());
    assert_no_token(&err);
}

#[tokio::test]
async fn slow_server_is_timeout() {
    let c = client(&server().await);
    let err = c
        .send(&get_req("/slow"), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Timeout(_)), "{err:?}");
    assert!(err.was_sent());
    assert_no_token(&err);
}

#[tokio::test]
async fn a_path_without_leading_slash_is_never_sent() {
    let c = client("http://127.0.0.1:9");
    let err = c
        .send(&get_req("evil.example/x"), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Invalid(_)), "{err:?}");
    assert!(!err.was_sent());
}

#[test]
fn base_url_is_checked_and_normalised() {
    let ok = |u: &str| Client::new(u, &Secret::new(TOKEN), Duration::from_secs(1)).unwrap();
    assert_eq!(
        ok("https://api.wts.chat/").base_url(),
        "https://api.wts.chat"
    );
    assert_eq!(
        ok(" https://api.wts.chat// ").base_url(),
        "https://api.wts.chat"
    );
    assert_eq!(
        ok("http://127.0.0.1:8080/prefix/").url(&get_req("/core/v1/tag")),
        "http://127.0.0.1:8080/prefix/core/v1/tag"
    );
    let err = |u: &str| Client::new(u, &Secret::new(TOKEN), Duration::from_secs(1)).unwrap_err();
    assert!(err("api.wts.chat").contains("invalid base URL"));
    assert!(err("ftp://api.wts.chat").contains("http or https"));
    assert!(err("https://api.wts.chat?x=1").contains("query"));
    assert!(err("https://user:pw@api.wts.chat").contains("credentials"));
    let bad_token = Client::new(
        "https://api.wts.chat",
        &Secret::new("pn_abc\nInjected: yes"),
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(!bad_token.contains("pn_abc"), "{bad_token}");
}

#[test]
fn decodes_the_wts_envelope() {
    let body = json!({
        "id": {"value": "c44bf0cc-1111-2222", "shortValue": "c44bf0cc"},
        "httpStatusCode": 400, "error": true, "date": "2025-01-01T12:00:00Z",
        "key": "ERROR_SESSION_ALREADY_COMPLETED", "text": "Sessão já finalizada",
        "isUnsolvableError": false
    });
    let e = ApiError::from_response(400, &body);
    assert_eq!(e.key.as_deref(), Some("ERROR_SESSION_ALREADY_COMPLETED"));
    assert_eq!(e.text.as_deref(), Some("Sessão já finalizada"));
    assert_eq!(e.short_id.as_deref(), Some("c44bf0cc"));
    assert_eq!(e.raw, None);
    assert_eq!(
        e.to_string(),
        "400 Bad Request: ERROR_SESSION_ALREADY_COMPLETED: Sessão já finalizada (ref c44bf0cc)"
    );
    // Every field is optional.
    let e = ApiError::from_response(500, &json!({"key": "ERROR_INTERNAL"}));
    assert_eq!(e.to_string(), "500 Internal Server Error: ERROR_INTERNAL");
}

#[test]
fn decodes_problem_details() {
    let body = json!({
        "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": {"PhoneNumber": ["The PhoneNumber field is required."]},
        "traceId": "00-abc-01"
    });
    let e = ApiError::from_response(400, &body);
    assert_eq!(e.key, None);
    assert_eq!(
        e.text.as_deref(),
        Some(
            "One or more validation errors occurred. \
             (PhoneNumber: The PhoneNumber field is required.)"
        )
    );
    assert_eq!(e.short_id.as_deref(), Some("00-abc-01"));
    let e = ApiError::from_response(
        404,
        &json!({"title": "Not Found", "detail": "No session 42"}),
    );
    assert_eq!(e.to_string(), "404 Not Found: Not Found: No session 42");
}

#[test]
fn keeps_other_bodies_raw_and_truncated() {
    let e = ApiError::from_response(502, &json!("<html>bad gateway</html>"));
    assert_eq!(e.raw.as_deref(), Some("<html>bad gateway</html>"));
    assert_eq!(e.to_string(), "502 Bad Gateway: <html>bad gateway</html>");
    let long = "é".repeat(1000);
    let e = ApiError::from_response(500, &Value::String(long));
    let raw = e.raw.unwrap();
    assert!(raw.len() <= crate::api_error::MAX_RAW_ERROR + "…".len() && raw.ends_with('…'));
    let e = ApiError::from_response(500, &json!([1, 2]));
    assert_eq!(e.raw.as_deref(), Some("[1,2]"));
    let e = ApiError::from_response(503, &Value::Null);
    assert_eq!(e.to_string(), "503 Service Unavailable");
    assert_eq!(
        ApiError::from_response(599, &Value::Null).to_string(),
        "599"
    );
}
