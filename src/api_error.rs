//! The API's error answer, decoded leniently (api-notes "Errors"): the WTS envelope (`key`,
//! `text`, `id.shortValue`), else RFC 7807 `ProblemDetails`, else the raw body, truncated. Used
//! by the client, and by the report views to group errors by their API key.

use std::fmt;

use serde_json::Value;

/// Non-JSON bodies are kept as a JSON string of at most this many bytes.
pub(crate) const MAX_TEXT_BODY: usize = 2048;

/// `raw` in an [`ApiError`] is cut to this many bytes.
pub(crate) const MAX_RAW_ERROR: usize = 300;

/// An error answer from the API, decoded leniently: the WTS envelope, else RFC 7807
/// `ProblemDetails`, else the raw body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct ApiError {
    pub status: u16,
    /// Stable machine code, e.g. `ERROR_SESSION_ALREADY_COMPLETED`.
    pub key: Option<String>,
    /// Human message (often Portuguese), or `ProblemDetails` `title: detail`.
    pub text: Option<String>,
    /// `id.shortValue`: the reference to quote to support (`ProblemDetails`: `traceId`).
    pub short_id: Option<String>,
    /// The body, truncated, when it was neither shape.
    pub raw: Option<String>,
}

fn str_field<'a>(obj: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a str> {
    obj.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `s` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl ApiError {
    pub(crate) fn from_response(status: u16, body: &Value) -> ApiError {
        let mut err = ApiError {
            status,
            key: None,
            text: None,
            short_id: None,
            raw: None,
        };
        match body {
            Value::Null => {}
            Value::Object(obj) if is_envelope(obj) => {
                err.key = str_field(obj, "key").map(str::to_owned);
                err.text = str_field(obj, "text").map(str::to_owned);
                err.short_id = obj.get("id").and_then(|id| match id {
                    Value::Object(id) => str_field(id, "shortValue")
                        .or_else(|| str_field(id, "value"))
                        .map(str::to_owned),
                    Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                    _ => None,
                });
            }
            Value::Object(obj) if is_problem(obj) => {
                let mut text = match (str_field(obj, "title"), str_field(obj, "detail")) {
                    (Some(t), Some(d)) if t != d => format!("{t}: {d}"),
                    (Some(t), _) => t.to_owned(),
                    (None, Some(d)) => d.to_owned(),
                    (None, None) => String::new(),
                };
                // ASP.NET validation problems list the offending fields in `errors`.
                if let Some(Value::Object(errors)) = obj.get("errors") {
                    let fields: Vec<String> = errors
                        .iter()
                        .map(|(field, msgs)| match msgs {
                            Value::Array(list) => {
                                let msgs: Vec<&str> =
                                    list.iter().filter_map(Value::as_str).collect();
                                format!("{field}: {}", msgs.join("; "))
                            }
                            Value::String(m) => format!("{field}: {m}"),
                            other => format!("{field}: {other}"),
                        })
                        .collect();
                    if !fields.is_empty() {
                        text = format!("{text} ({})", fields.join(", "));
                    }
                }
                err.text = Some(truncate(text.trim(), MAX_TEXT_BODY));
                err.short_id = str_field(obj, "traceId").map(str::to_owned);
            }
            Value::String(s) => {
                let s = s.trim();
                if !s.is_empty() {
                    err.raw = Some(truncate(s, MAX_RAW_ERROR));
                }
            }
            other => err.raw = Some(truncate(&other.to_string(), MAX_RAW_ERROR)),
        }
        err
    }
}

fn is_envelope(obj: &serde_json::Map<String, Value>) -> bool {
    ["key", "text", "httpStatusCode", "isUnsolvableError"]
        .iter()
        .any(|k| obj.contains_key(*k))
        || obj
            .get("id")
            .is_some_and(|id| id.get("shortValue").is_some() || id.get("value").is_some())
}

fn is_problem(obj: &serde_json::Map<String, Value>) -> bool {
    obj.get("title").is_some_and(Value::is_string)
        || obj.get("detail").is_some_and(Value::is_string)
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if let Some(reason) = reqwest::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
        {
            write!(f, " {reason}")?;
        }
        let parts: Vec<&str> = [&self.key, &self.text, &self.raw]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .collect();
        if !parts.is_empty() {
            write!(f, ": {}", parts.join(": "))?;
        }
        if let Some(id) = &self.short_id {
            write!(f, " (ref {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}
