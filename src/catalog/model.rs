//! The catalog's data model: what an action is (route, parameters, idempotency) and what a
//! built request looks like. The 39 actions themselves live in `data.rs`; building a request
//! from parameter values lives in `request.rs`.

use serde::Serialize;

/// HTTP method of an action's route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Patch,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
        }
    }

    /// GET, PUT and DELETE count as idempotent for the raw `http` action.
    pub fn is_idempotent(self) -> bool {
        matches!(self, Method::Get | Method::Put | Method::Delete)
    }

    pub fn parse(s: &str) -> Option<Method> {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Some(Method::Get),
            "POST" => Some(Method::Post),
            "PUT" => Some(Method::Put),
            "DELETE" => Some(Method::Delete),
            "PATCH" => Some(Method::Patch),
            _ => None,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which family of routes the actions call (`settings.routes`, `--routes`).
///
/// Ten actions have two routes: the legacy v1 route the n8n node calls, and the successor the
/// vendor's published API descriptions define (`docs/api-notes.md`, "Two route families").
/// The other 29 call the same route either way.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Routes {
    /// The routes of the published descriptions (v2/v3 successors); the default.
    #[default]
    Documented,
    /// The routes the n8n node calls (legacy v1 for ten actions), for parity with the node.
    Node,
}

impl Routes {
    pub fn as_str(self) -> &'static str {
        match self {
            Routes::Documented => "documented",
            Routes::Node => "node",
        }
    }

    /// The other family.
    #[must_use]
    pub fn other(self) -> Routes {
        match self {
            Routes::Documented => Routes::Node,
            Routes::Node => Routes::Documented,
        }
    }
}

impl std::fmt::Display for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scalar parameter type (api-notes, "Parameters").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    String,
    Uuid,
    Bool,
    Int,
    Number,
    DateTime,
    /// One of the listed values, sent verbatim.
    Enum(&'static [&'static str]),
}

/// A parameter's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    One(Scalar),
    /// `T[]`: a JSON array; in a query, repeated keys.
    List(Scalar),
    /// A JSON object with string keys, values passed through unchanged.
    Map,
    /// Any JSON value (only the raw `http` action's `body`).
    Any,
}

/// Where a parameter goes in the request (the "maps to" column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Substituted into the route's `{name}` placeholder, percent-encoded.
    Path,
    /// A query-string key (arrays are sent as repeated keys).
    Query(&'static str),
    /// A JSON pointer into the body, intermediate objects created as needed.
    Body(&'static str),
    /// Not sent; selects the route (`sync`).
    Route,
    /// Consumed by the runner itself (file upload inputs).
    Runner,
}

/// Whether a parameter must be supplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    Yes,
    /// Conditionally required; the action's `rules` give the condition.
    Cond,
    No,
}

/// One parameter of an action.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// `snake_case` name used in playbooks.
    pub name: &'static str,
    pub ty: ParamType,
    pub required: Required,
    /// What the server does when the parameter is absent (documentation only: never sent).
    pub default: Option<&'static str>,
    pub location: Location,
    /// For partial updates (api-notes, "Partial updates"): the `fields` entry this parameter implies.
    pub field: Option<&'static str>,
    pub doc: &'static str,
    /// The route family this parameter exists in; `None`: both.
    pub only: Option<Routes>,
}

/// A cross-parameter rule (conditional requirements).
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// Exactly one of these must be supplied.
    ExactlyOne(&'static [&'static str]),
    /// At least one of these must be supplied.
    AtLeastOne(&'static [&'static str]),
    /// At most one of these may be supplied.
    AtMostOne(&'static [&'static str]),
    /// If the first is supplied, the second must be too.
    Requires(&'static str, &'static str),
}

/// One catalog action.
#[derive(Debug, Clone, Copy)]
pub struct ActionSpec {
    /// `resource.operation`, e.g. `session.complete`.
    pub name: &'static str,
    pub summary: &'static str,
    /// The n8n node's operation value, for mapping exported workflows.
    pub n8n_operation: &'static str,
    pub method: Method,
    /// Route with `{param}` placeholders, e.g. `/chat/v1/session/{session_id}/complete`.
    pub path: &'static str,
    /// Route used when `sync: true`.
    pub sync_path: Option<&'static str>,
    /// Retry-safe: may be re-issued after an ambiguous failure.
    pub idempotent: bool,
    /// A list action returning the page envelope (usable with `paginate`).
    pub paginated: bool,
    /// Partial update using the `fields` mechanism (api-notes, "Partial updates"); the pointer of the `fields` array.
    pub fields_pointer: Option<&'static str>,
    pub params: &'static [ParamSpec],
    pub rules: &'static [Rule],
}

impl ActionSpec {
    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// A request built from an action and its parameter values: what would be sent.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct HttpRequest {
    pub method: Method,
    /// Path with path parameters substituted and percent-encoded, without the query string.
    pub path: String,
    /// Query pairs in order (arrays repeated), not yet encoded.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub query: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

impl HttpRequest {
    /// Path plus the percent-encoded query string.
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            return self.path.clone();
        }
        let mut s = self.path.clone();
        for (i, (k, v)) in self.query.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.extend(percent_encoding::utf8_percent_encode(k, QUERY));
            s.push('=');
            s.extend(percent_encoding::utf8_percent_encode(v, QUERY));
        }
        s
    }
}

/// Characters escaped in query keys and values.
pub const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Characters escaped in a path segment (phone numbers contain `+` and `|`).
pub const PATH_SEGMENT: &percent_encoding::AsciiSet = QUERY;
