//! The HTTP client: sends one rendered [`HttpRequest`] to the WTS API and returns what came back,
//! with transport failures sorted by whether the request may have reached the server.
//!
//! In: a base URL, the token (a [`Secret`]), a timeout, and `HttpRequest`s from the planner.
//! Out: [`ApiResponse`] (status, JSON body, `Retry-After`) or [`TransportError`]; for non-2xx
//! answers, [`ApiError::from_response`] decodes the error body leniently (api-notes "Errors").
//!
//! What holds:
//! * Every request carries `Authorization: Bearer <token>` (marked sensitive, so it never shows in
//!   `Debug` output), `Accept: application/json` and `User-Agent: wts-playbook/VERSION`; a request
//!   with a body sends it as JSON with `Content-Type: application/json`, whatever the method
//!   (`DELETE` with a body included).
//! * Redirects are not followed: the API never redirects, and following one could re-send a
//!   non-idempotent request or carry the token elsewhere. A 3xx is returned as a response.
//! * The token appears only in that header. reqwest's error messages name the URL (base URL plus
//!   path and query), never headers; tests assert that no error text contains the token.
//! * `HTTP(S)_PROXY` is honoured, except for a loopback base URL (the sandbox, tests).
//! * [`Client::put_upload`] is the one exception to the headers above: the `PUT` of a file's
//!   bytes to the pre-signed, absolute upload URL (api-notes "Files") goes through a second pool
//!   that carries **no** `Authorization` header (the token must not reach the storage host).
//! * A request path must start with `/`, so a path can never change the host
//!   (`https://api.wts.chat` + `evil.com/x`).
//!
//! reqwest error → [`TransportError`]:
//! * `is_builder()` → `Invalid` (could not even build the request; nothing sent, retry is futile);
//! * `is_connect()` → `NotSent`: TCP connect refused, DNS failure, TLS handshake failure, connect
//!   timeout (checked before `is_timeout`, since a connect timeout is both);
//! * `is_timeout()` → `Timeout`: the request may have been processed;
//! * anything else (`is_request()`: the connection was reset or closed after the request was
//!   written; `is_body()`/`is_decode()`: the response body broke off) → `Broken`: ambiguous.
//!
//! hyper's pool already re-sends a request, transparently, when a reused keep-alive connection
//! turns out to be closed before the request was written; what reaches us as `Broken` is genuine.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use serde_json::Value;

use crate::catalog::{HttpRequest, Method};
use crate::secret::Secret;

pub(crate) use crate::api_error::MAX_TEXT_BODY;

/// Connecting longer than this is a `NotSent` failure (retried), whatever the request timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) use crate::settings::DEFAULT_MAX_BODY;

/// How many bytes of a body that is not JSON an error message quotes.
const QUOTED_BYTES: usize = 80;

/// The response to a request that reached the server and was answered.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ApiResponse {
    pub status: u16,
    /// The JSON body; `Null` when empty; a non-JSON body as a JSON string (at most 2 KB).
    pub body: Value,
    /// The `Retry-After` header, as delta-seconds or an HTTP date, relative to now.
    pub retry_after: Option<Duration>,
    /// Set when the body was not empty and did not parse as JSON: what came instead (the
    /// content type and the first bytes). A 2xx with such a body is not a success.
    pub not_json: Option<String>,
}

impl ApiResponse {
    /// A 2xx whose body is JSON (or empty).
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status) && self.not_json.is_none()
    }

    /// The answer in one line: the decoded error, or for a 2xx that is not JSON, what came.
    pub(crate) fn describe(&self) -> String {
        match &self.not_json {
            Some(what) if (200..300).contains(&self.status) => {
                let status = reqwest::StatusCode::from_u16(self.status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .map_or_else(
                        || self.status.to_string(),
                        |r| format!("{} {r}", self.status),
                    );
                format!("{status}, but the body is not the JSON expected: {what}")
            }
            _ => ApiError::from_api_response(self).to_string(),
        }
    }
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TransportError {
    /// Connecting failed (refused, DNS, TLS handshake, connect timeout): the request was never
    /// sent, so it is safe to retry any action.
    #[error("connection failed, request not sent: {0}")]
    NotSent(String),
    /// No answer within the timeout: the server may have processed the request.
    #[error("timed out waiting for the answer: {0}")]
    Timeout(String),
    /// The connection broke after the request was sent: the server may have processed it.
    #[error("connection broken after the request was sent: {0}")]
    Broken(String),
    /// The request could not be built (bad path or URL): never sent, and retrying cannot help.
    #[error("invalid request, not sent: {0}")]
    Invalid(String),
    /// The answer's body is larger than the cap (`settings.max_response_size`): not read.
    #[error("response too large: {0}")]
    TooLarge(String),
}

impl TransportError {
    /// Whether the request may have reached the server (`Timeout`, `Broken`, `TooLarge`).
    #[cfg(test)]
    fn was_sent(&self) -> bool {
        matches!(
            self,
            TransportError::Timeout(_) | TransportError::Broken(_) | TransportError::TooLarge(_)
        )
    }

    fn from_reqwest(err: &reqwest::Error) -> TransportError {
        let msg = error_chain(err);
        if err.is_builder() {
            TransportError::Invalid(msg)
        } else if err.is_connect() {
            TransportError::NotSent(msg)
        } else if err.is_timeout() {
            TransportError::Timeout(msg)
        } else {
            TransportError::Broken(msg)
        }
    }
}

/// `err` and its sources, joined with `: `, skipping a source whose text repeats its parent's.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = err.to_string();
    let mut last = msg.clone();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !last.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        last = text;
        source = e.source();
    }
    msg
}

pub(crate) use crate::api_error::{truncate, ApiError};

impl ApiError {
    /// Decode the error in a non-2xx response.
    pub(crate) fn from_api_response(resp: &ApiResponse) -> ApiError {
        ApiError::from_response(resp.status, &resp.body)
    }
}

/// The API client for one run: one connection pool, one token.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    /// For [`Client::put_upload`]: same settings, no default headers (no token).
    upload_http: reqwest::Client,
    /// Scheme, host and port (and any path prefix), without a trailing `/`.
    base_url: String,
    /// A body larger than this many bytes is not read ([`TransportError::TooLarge`]).
    max_body: u64,
    /// Applied to a non-JSON body before it is cut to its first bytes, so no secret survives
    /// in part (the token, `settings.secrets`).
    redactor: crate::secret::Redactor,
}

impl Client {
    /// A client for `base_url` (e.g. `https://api.wts.chat`; a trailing `/` is removed) sending
    /// `token` as a bearer token. An empty token sends no `Authorization` header (the sandbox needs
    /// none).
    pub(crate) fn new(
        base_url: &str,
        token: &Secret,
        default_timeout: Duration,
    ) -> Result<Client, String> {
        let base_url = base_url.trim().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|e| format!("invalid base URL `{base_url}`: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "invalid base URL `{base_url}`: the scheme must be http or https"
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(format!("invalid base URL `{base_url}`: no host"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(format!(
                "invalid base URL `{base_url}`: it cannot have a query or a fragment"
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(format!(
                "invalid base URL `{base_url}`: put credentials in WTS_API_TOKEN, not in the URL"
            ));
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if !token.is_empty() {
            let mut auth =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    "the API token contains characters that cannot be sent in an HTTP header \
                     (a line break or a control character?)"
                        .to_owned()
                })?;
            auth.set_sensitive(true);
            headers.insert(AUTHORIZATION, auth);
        }
        let host = parsed.host_str().unwrap_or_default();
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let builder = || {
            let builder = reqwest::Client::builder();
            if loopback {
                // A local server (the sandbox, tests) is never reached through HTTP(S)_PROXY.
                builder.no_proxy()
            } else {
                builder
            }
        };
        let upload_http = builder()
            .use_rustls_tls()
            .user_agent(concat!("wts-playbook/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT.min(default_timeout.max(Duration::from_secs(1))))
            .timeout(default_timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)))?;
        let http = builder()
            .use_rustls_tls()
            .default_headers(headers)
            .user_agent(concat!("wts-playbook/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT.min(default_timeout.max(Duration::from_secs(1))))
            .timeout(default_timeout)
            // Keep a warm connection for every in-flight request of a high-concurrency run.
            .pool_max_idle_per_host(512)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)))?;
        Ok(Client {
            http,
            upload_http,
            base_url,
            max_body: DEFAULT_MAX_BODY,
            redactor: crate::secret::Redactor::new(Vec::<String>::new()),
        })
    }

    /// Redacts these secrets from a non-JSON answer before its first bytes are quoted.
    #[must_use]
    pub(crate) fn with_redactor(mut self, redactor: crate::secret::Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// Sets the cap on a response body, in bytes.
    #[must_use]
    pub(crate) fn with_max_body(mut self, max_body: u64) -> Client {
        self.max_body = max_body;
        self
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The full URL `req` is sent to.
    pub(crate) fn url(&self, req: &HttpRequest) -> String {
        format!("{}{}", self.base_url, req.path_and_query())
    }

    /// Send `req` once (no retry here) and read the whole answer within `timeout`.
    pub(crate) async fn send(
        &self,
        req: &HttpRequest,
        timeout: Duration,
    ) -> Result<ApiResponse, TransportError> {
        if !req.path.starts_with('/') {
            return Err(TransportError::Invalid(format!(
                "the path `{}` must start with `/`",
                req.path
            )));
        }
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
            Method::Patch => reqwest::Method::PATCH,
        };
        let mut builder = self.http.request(method, self.url(req)).timeout(timeout);
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        read_answer(builder, self.max_body, &self.redactor).await
    }

    /// `PUT` `bytes` to an absolute pre-signed upload `url` (api-notes "Files", step 2) with
    /// `Content-Type: content_type` and **no** `Authorization` header. Once, no retry here.
    pub(crate) async fn put_upload(
        &self,
        url: &str,
        content_type: &str,
        bytes: Vec<u8>,
        timeout: Duration,
    ) -> Result<ApiResponse, TransportError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| TransportError::Invalid(format!("upload URL `{url}`: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(TransportError::Invalid(format!(
                "upload URL `{url}`: the scheme must be http or https"
            )));
        }
        let builder = self
            .upload_http
            .put(parsed)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes);
        read_answer(builder, self.max_body, &self.redactor).await
    }
}

/// Sends `builder` and reads the whole answer, at most `max_body` bytes of it.
async fn read_answer(
    builder: reqwest::RequestBuilder,
    max_body: u64,
    redactor: &crate::secret::Redactor,
) -> Result<ApiResponse, TransportError> {
    let mut resp = builder
        .send()
        .await
        .map_err(|e| TransportError::from_reqwest(&e))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let too_large = |size: &str| {
        TransportError::TooLarge(format!(
            "HTTP {status} with a body of {size}, more than the {max_body} bytes allowed \
             (settings.max_response_size)"
        ))
    };
    if let Some(len) = resp.content_length().filter(|l| *l > max_body) {
        return Err(too_large(&format!("{len} bytes")));
    }
    // Read chunk by chunk so a body without a length cannot grow past the cap either.
    let mut bytes: Vec<u8> = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| TransportError::from_reqwest(&e))?
    {
        if (bytes.len() + chunk.len()) as u64 > max_body {
            return Err(too_large("unannounced length"));
        }
        bytes.extend_from_slice(&chunk);
    }
    let (body, not_json) = decode_body(&bytes, content_type.as_deref(), redactor);
    Ok(ApiResponse {
        status,
        body,
        retry_after,
        not_json,
    })
}

/// Empty → `Null`; JSON → the value; anything else → a JSON string of at most 2 KB, and a
/// description of it (content type, first bytes).
fn decode_body(
    bytes: &[u8],
    content_type: Option<&str>,
    redactor: &crate::secret::Redactor,
) -> (Value, Option<String>) {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return (Value::Null, None);
    }
    match serde_json::from_slice(bytes) {
        Ok(v) => (v, None),
        Err(e) => {
            let text = String::from_utf8_lossy(bytes);
            let text = redactor.redact(&text);
            let head = truncate(text.trim(), QUOTED_BYTES);
            let what = format!(
                "content type {}, {} bytes ({e}), starting `{}`",
                content_type.unwrap_or("(none)"),
                bytes.len(),
                head.escape_debug()
            );
            (Value::String(truncate(&text, MAX_TEXT_BODY)), Some(what))
        }
    }
}

/// Parse a `Retry-After` header value: delta-seconds (`120`) or an HTTP date (RFC 9110:
/// IMF-fixdate `Wed, 21 Oct 2015 07:28:00 GMT`, and the obsolete RFC 850 and asctime forms),
/// as a duration from `now`. A date in the past gives zero; anything unparsable gives `None`.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at: SystemTime = parse_http_date(value)?.into();
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn parse_http_date(value: &str) -> Option<jiff::Timestamp> {
    static RFC2822: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    if let Ok(ts) = RFC2822.parse_timestamp(value) {
        return Some(ts);
    }
    // RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`).
    let asctime = value.split_whitespace().collect::<Vec<_>>().join(" ");
    let found = [
        ("%A, %d-%b-%y %H:%M:%S GMT", value),
        ("%a %b %e %H:%M:%S %Y", asctime.as_str()),
    ]
    .into_iter()
    .find_map(|(format, text)| {
        jiff::fmt::strtime::parse(format, text)
            .ok()?
            .to_datetime()
            .ok()?
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp())
    });
    found
}

#[cfg(test)]
mod tests;
