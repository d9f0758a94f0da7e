//! Wire-level helpers shared by the route handlers: case-insensitive query and JSON body
//! access, the error envelope (api-notes "Errors"), the page envelope ("Pages") and the reply type.
//!
//! In: raw query strings and body bytes. Out: typed lookups, `ApiError`, `Reply`, page JSON.

use axum::http::StatusCode;
use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// A request as the handlers see it: path parameters, query and JSON body.
#[derive(Debug, Default)]
pub(super) struct Req {
    pub params: HashMap<String, String>,
    pub query: Query,
    pub body: Value,
    /// Route version (`1`, `2`, `3`), taken from the path's `/vN/` segment.
    pub version: u8,
    /// The request path (selects the `/sync` send variants).
    pub path: String,
}

impl Req {
    /// A path parameter (always present for the routes that declare it).
    pub(super) fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }

    /// A body field, case-insensitively; JSON `null` counts as absent.
    pub(super) fn field(&self, name: &str) -> Option<&Value> {
        field(&self.body, name)
    }

    /// A nested body field (`["options", "upsert"]`).
    pub(super) fn field_at(&self, path: &[&str]) -> Option<&Value> {
        let mut cur = &self.body;
        for name in path {
            cur = field(cur, name)?;
        }
        Some(cur)
    }

    pub(super) fn str(&self, name: &str) -> Option<String> {
        self.field(name).and_then(as_string)
    }

    pub(super) fn flag_at(&self, path: &[&str]) -> bool {
        self.field_at(path).is_some_and(truthy)
    }
}

/// Case-insensitive lookup of an object member; `null` counts as absent.
pub(super) fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let obj = value.as_object()?;
    let found = obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })?;
    (!found.is_null()).then_some(found)
}

/// A string, number or bool rendered as a string.
pub(super) fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Lenient boolean: `true`, `"true"`, `1`.
pub(super) fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true") || s == "1",
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        _ => false,
    }
}

/// A list of strings from an array (or a single string).
pub(super) fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items.iter().filter_map(as_string).collect(),
        Some(v) => as_string(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// The parsed query string. Keys are compared case-insensitively and a trailing `[]` is
/// ignored, so `Status[]=A&status=B` gives two `Status` values.
#[derive(Debug, Default, Clone)]
pub(super) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub(super) fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (normalize_key(&decode(k)), decode(v))
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `name`, if non-empty.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        let key = normalize_key(name);
        self.pairs
            .iter()
            .find(|(k, v)| *k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (repeated keys; comma-separated values are split too).
    pub(super) fn all(&self, name: &str) -> Vec<String> {
        let key = normalize_key(name);
        self.pairs
            .iter()
            .filter(|(k, _)| *k == key)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub(super) fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }

    /// Whether `IncludeDetails` lists `detail` (case-insensitive).
    pub(super) fn detail(&self, detail: &str) -> bool {
        self.all("IncludeDetails")
            .iter()
            .any(|d| d.eq_ignore_ascii_case(detail) || d.eq_ignore_ascii_case("All"))
    }
}

fn normalize_key(k: &str) -> String {
    k.trim_end_matches("[]").to_ascii_lowercase()
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_decode_str(&s).decode_utf8_lossy().into_owned()
}

/// An API error answered with the error envelope (api-notes "Errors").
#[derive(Debug, Clone)]
pub(super) struct ApiError {
    pub status: StatusCode,
    pub key: &'static str,
    pub text: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, key: &'static str, text: impl Into<String>) -> ApiError {
        ApiError {
            status,
            key,
            text: text.into(),
        }
    }

    pub(super) fn validation(text: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "ERROR_VALIDATION", text)
    }

    pub(super) fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "ERROR_NOT_FOUND",
            format!("{what} {id} não encontrado"),
        )
    }

    pub(super) fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "ERROR_UNAUTHORIZED",
            "Acesso negado",
        )
    }

    /// The envelope body.
    pub(super) fn envelope(&self) -> Value {
        envelope(self.status, self.key, &self.text)
    }
}

/// `{id:{value,shortValue}, httpStatusCode, error, date, key, text, isUnsolvableError}`.
pub(super) fn envelope(status: StatusCode, key: &str, text: &str) -> Value {
    let id = uuid::Uuid::new_v4().to_string();
    json!({
        "id": { "value": id, "shortValue": &id[..8] },
        "httpStatusCode": status.as_u16(),
        "error": true,
        "date": jiff::Timestamp::now().to_string(),
        "key": key,
        "text": text,
        "isUnsolvableError": status.is_server_error(),
    })
}

/// What a handler produced: status, optional JSON body, and whether the state changed.
#[derive(Debug)]
pub(super) struct Reply {
    pub body: Option<Value>,
    pub changed: bool,
}

#[expect(
    clippy::unnecessary_wraps,
    reason = "constructors return what handlers return, so `return Reply::read(..)` reads naturally"
)]
impl Reply {
    /// A read: body, no change.
    pub(super) fn read(body: Value) -> Result<Reply, ApiError> {
        Ok(Reply {
            body: Some(body),
            changed: false,
        })
    }

    /// A write answered with a body.
    pub(super) fn changed(body: Value) -> Result<Reply, ApiError> {
        Ok(Reply {
            body: Some(body),
            changed: true,
        })
    }

    /// A write answered with 200 and no body.
    pub(super) fn empty() -> Result<Reply, ApiError> {
        Ok(Reply {
            body: None,
            changed: true,
        })
    }
}

/// Paging parameters after validation.
#[derive(Debug, Clone)]
pub(super) struct Paging {
    pub number: usize,
    pub size: usize,
    pub order_by: Option<String>,
    pub descending: bool,
}

impl Paging {
    pub(super) fn from_query(q: &Query) -> Result<Paging, ApiError> {
        let number = match q.get("PageNumber") {
            None => 1,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| ApiError::validation(format!("PageNumber `{v}` must be ≥ 1")))?,
        };
        let size = match q.get("PageSize") {
            None => 15,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| {
                    ApiError::validation(format!("PageSize `{v}` must be between 1 and 100"))
                })?,
        };
        let descending = match q.get("OrderDirection") {
            None => false,
            Some(d) if d.eq_ignore_ascii_case("ASCENDING") => false,
            Some(d) if d.eq_ignore_ascii_case("DESCENDING") => true,
            Some(d) => {
                return Err(ApiError::validation(format!(
                    "OrderDirection `{d}` must be ASCENDING or DESCENDING"
                )))
            }
        };
        Ok(Paging {
            number,
            size,
            order_by: q.get("OrderBy").map(str::to_owned),
            descending,
        })
    }
}

/// Applies the date filters, the order and the page to `items` (already in server order:
/// createdAt, then id) and wraps the result in the page envelope.
pub(super) fn page(items: Vec<Value>, q: &Query) -> Result<Value, ApiError> {
    let paging = Paging::from_query(q)?;
    let mut items = filter_dates(items, q)?;
    if let Some(key) = &paging.order_by {
        items.sort_by(|a, b| compare(field(a, key), field(b, key)));
    }
    if paging.descending {
        items.reverse();
    }
    let total = items.len();
    let start = (paging.number - 1).saturating_mul(paging.size).min(total);
    let end = start.saturating_add(paging.size).min(total);
    let total_pages = total.div_ceil(paging.size);
    let page_items: Vec<Value> = items.drain(start..end).collect();
    Ok(json!({
        "pageNumber": paging.number,
        "pageSize": paging.size,
        "orderBy": paging.order_by,
        "orderDirection": if paging.descending { "DESCENDING" } else { "ASCENDING" },
        "items": page_items,
        "totalItems": total,
        "totalPages": total_pages,
        "hasMorePages": paging.number < total_pages,
    }))
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(x), Some(y)) => as_string(x).cmp(&as_string(y)),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn filter_dates(items: Vec<Value>, q: &Query) -> Result<Vec<Value>, ApiError> {
    let mut bounds = Vec::new();
    for (param, member, after) in [
        ("CreatedAt.After", "createdAt", true),
        ("CreatedAt.Before", "createdAt", false),
        ("UpdatedAt.After", "updatedAt", true),
        ("UpdatedAt.Before", "updatedAt", false),
    ] {
        if let Some(v) = q.get(param) {
            let ts: jiff::Timestamp = v
                .parse()
                .map_err(|_| ApiError::validation(format!("{param} `{v}` is not a date-time")))?;
            bounds.push((member, after, ts));
        }
    }
    if bounds.is_empty() {
        return Ok(items);
    }
    Ok(items
        .into_iter()
        .filter(|item| {
            bounds.iter().all(|(member, after, bound)| {
                let Some(ts) = field(item, member)
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                else {
                    return false;
                };
                if *after {
                    ts >= *bound
                } else {
                    ts <= *bound
                }
            })
        })
        .collect())
}

/// Merges `patch` into `target` the way the API treats metadata: a key adds or overwrites,
/// a `null` value removes the key.
pub(super) fn merge_map(target: &mut Map<String, Value>, patch: &Value) {
    if let Some(obj) = patch.as_object() {
        for (k, v) in obj {
            if v.is_null() {
                target.remove(k);
            } else {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_case_insensitive_and_repeats() {
        let q = Query::parse(Some(
            "status[]=PENDING&Status=COMPLETED&pagesize=5&Name=a+b%7Cc",
        ));
        assert_eq!(q.all("Status"), vec!["PENDING", "COMPLETED"]);
        assert_eq!(q.get("PageSize"), Some("5"));
        assert_eq!(q.get("name"), Some("a b|c"));
        assert_eq!(q.get("missing"), None);
    }

    #[test]
    fn paging_bounds() {
        let items: Vec<Value> = (0..31).map(|i| json!({ "n": i })).collect();
        let p = page(
            items.clone(),
            &Query::parse(Some("PageSize=10&PageNumber=4")),
        )
        .unwrap();
        assert_eq!(p["items"].as_array().unwrap().len(), 1);
        assert_eq!(p["totalPages"], 4);
        assert_eq!(p["hasMorePages"], false);
        let p = page(items.clone(), &Query::parse(None)).unwrap();
        assert_eq!(p["pageSize"], 15);
        assert_eq!(p["hasMorePages"], true);
        assert!(page(items.clone(), &Query::parse(Some("PageSize=0"))).is_err());
        assert!(page(items.clone(), &Query::parse(Some("PageSize=101"))).is_err());
        assert!(page(items, &Query::parse(Some("PageNumber=0"))).is_err());
    }

    #[test]
    fn body_fields_case_insensitive() {
        let req = Req {
            body: json!({"phonenumber": "55", "Options": {"UPSERT": true}, "name": null}),
            ..Req::default()
        };
        assert_eq!(req.str("phoneNumber").as_deref(), Some("55"));
        assert!(req.flag_at(&["options", "upsert"]));
        assert!(req.field("name").is_none());
    }

    #[test]
    fn metadata_merge() {
        let mut m = Map::new();
        m.insert("a".into(), json!(1));
        merge_map(&mut m, &json!({"a": null, "b": 2}));
        assert_eq!(Value::Object(m), json!({"b": 2}));
    }
}
