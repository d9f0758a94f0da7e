//! Serving the sandbox: the axum router (API routes through the auth → rate limit →
//! latency → fault → state → fault → journal pipeline, plus the `/__sandbox/` inspection
//! routes), served with hyper directly so a fault can drop a connection without answering.
//!
//! In: a loopback address and a `SandboxConfig`. Out: a running `Sandbox` handle.

use super::config::{SandboxArgs, SandboxConfig};
use super::faults::{lock, After, Before, Realism};
use super::journal::{Journal, JournalEntry};
use super::routes::{table, Op, Verb};
use super::state::{Card, Contact, Enrolment, LookupIds, Message, Note, Session, Summary, World};
use super::wire::{envelope, ApiError, Query, Reply, Req};
use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put, MethodFilter, MethodRouter};
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt as _;

/// Largest request body accepted (bytes).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Everything a request handler needs.
#[derive(Debug)]
struct App {
    config: SandboxConfig,
    /// The address served (the origin of the upload URLs).
    addr: SocketAddr,
    world: Mutex<World>,
    journal: Journal,
    realism: Realism,
}

/// Response marker: the outer hyper service closes the connection instead of answering.
#[derive(Debug, Clone, Copy)]
struct DropConnection;

/// The error the hyper service returns to make hyper close the connection.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sandbox fault: connection dropped")
    }
}

impl std::error::Error for Dropped {}

/// A snapshot of the simulated account, for assertions in-process and `/__sandbox/state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateSnapshot {
    /// Number of objects per kind (`sessions`, `contacts`, `messages`, `cards`, ...).
    pub counts: BTreeMap<String, usize>,
    pub sessions: Vec<Session>,
    pub contacts: Vec<Contact>,
    pub messages: Vec<Message>,
    pub cards: Vec<Card>,
    pub notes: Vec<Note>,
    pub enrolments: Vec<Enrolment>,
    /// Uploaded files (confirmed), oldest first.
    #[serde(default)]
    pub files: Vec<FileInfo>,
    /// The ids of the lookups (departments, agents' `userId`s, sequences, panels with their
    /// steps, templates, channels, chatbots, tags): seeded ones first, then any a request
    /// named for the first time.
    pub lookups: LookupIds,
    pub summary: Summary,
}

/// An uploaded file, as `/__sandbox/state` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub mime_type: String,
}

/// A running sandbox.
#[derive(Debug)]
pub struct Sandbox {
    /// The address actually bound (the real port when listening on port 0).
    pub addr: SocketAddr,
    app: Arc<App>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Sandbox {
    /// Binds `listen` (loopback only) and serves in the background on the current runtime.
    pub async fn start(listen: SocketAddr, config: SandboxConfig) -> std::io::Result<Sandbox> {
        if !listen.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "the sandbox only listens on loopback addresses (127.0.0.1 or ::1), not {listen}"
                ),
            ));
        }
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let app = Arc::new(App {
            world: Mutex::new(seeded(config.seed, addr)),
            addr,
            journal: Journal::new(config.journal_capacity),
            realism: Realism::new(&config),
            config,
        });
        let router = router(Arc::clone(&app));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, router, stopped));
        Ok(Sandbox {
            addr,
            app,
            stop,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`: the base URL to give a client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What changed so far.
    pub fn summary(&self) -> Summary {
        lock(&self.app.world).summary.clone()
    }

    /// The whole account state.
    pub fn state(&self) -> StateSnapshot {
        snapshot(&lock(&self.app.world))
    }

    /// One session as it is now (no materialization of unseen ids).
    pub fn session(&self, id: &str) -> Option<Session> {
        lock(&self.app.world).sessions.get(id).cloned()
    }

    /// The journal, oldest first.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.app.journal.entries(0, usize::MAX)
    }

    /// Back to the seeded state: data, summary, journal and rate-limit history.
    pub fn reset(&self) {
        reset(&self.app);
    }

    /// Stops accepting, closes open connections and waits for the server task.
    pub async fn shutdown(self) {
        self.shutdown_with_journal().await;
    }

    /// Stops serving and returns the journal once every connection is closed: each request the
    /// server acted on is in it, whether or not its answer got out (what a test counts when the
    /// server goes away mid-run).
    pub async fn shutdown_with_journal(self) -> Vec<JournalEntry> {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.app.journal.entries(0, usize::MAX)
    }
}

/// The seeded world, knowing the address it is served on.
fn seeded(seed: u64, addr: SocketAddr) -> World {
    let mut w = World::seeded(seed);
    w.origin = format!("http://{addr}");
    w
}

fn reset(app: &App) {
    *lock(&app.world) = seeded(app.config.seed, app.addr);
    app.journal.clear();
    app.realism.reset();
}

fn snapshot(w: &World) -> StateSnapshot {
    let counts = [
        ("sessions", w.sessions.len()),
        ("contacts", w.contacts.len()),
        ("messages", w.messages.len()),
        ("panels", w.panels.len()),
        ("steps", w.steps.len()),
        ("cards", w.cards.len()),
        ("notes", w.notes.len()),
        ("sequences", w.sequences.len()),
        ("enrolments", w.enrolments.len()),
        ("templates", w.templates.len()),
        ("chatbots", w.chatbots.len()),
        ("departments", w.departments.len()),
        ("agents", w.agents.len()),
        ("tags", w.tags.len()),
        ("channels", w.channels.len()),
        ("files", w.files.len()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    StateSnapshot {
        counts,
        sessions: w.sessions.values().cloned().collect(),
        contacts: w.contacts.values().cloned().collect(),
        messages: w.messages.values().cloned().collect(),
        cards: w.cards.values().cloned().collect(),
        notes: w.notes.values().cloned().collect(),
        enrolments: w.enrolments.values().cloned().collect(),
        files: w
            .files
            .values()
            .map(|f| FileInfo {
                id: f.id.clone(),
                name: f.name.clone(),
                size: f.size,
                mime_type: f.mime_type.clone(),
            })
            .collect(),
        lookups: w.lookup_ids(),
        summary: w.summary.clone(),
    }
}

async fn accept_loop(listener: TcpListener, router: Router, mut stopped: watch::Receiver<bool>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let router = router.clone();
                        async move {
                            let Ok(resp) = router.oneshot(req.map(Body::new)).await;
                            if resp.extensions().get::<DropConnection>().is_some() {
                                return Err(Dropped);
                            }
                            Ok(resp)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
        while conns.try_join_next().is_some() {}
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

fn router(app: Arc<App>) -> Router {
    let mut by_path: IndexMap<&'static str, MethodRouter<Arc<App>>> = IndexMap::new();
    for (verb, path, op) in table() {
        let filter = match verb {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
            Verb::Delete => MethodFilter::DELETE,
        };
        let handler = move |State(app): State<Arc<App>>,
                            params: Option<Path<HashMap<String, String>>>,
                            req: Request| async move {
            api(app, Some(op), params.map(|p| p.0).unwrap_or_default(), req).await
        };
        let entry = by_path.shift_remove(path).unwrap_or_default();
        by_path.insert(path, entry.on(filter, handler));
    }
    let mut r = Router::new();
    for (path, mr) in by_path {
        r = r.route(path, mr);
    }
    let unmatched = |State(app): State<Arc<App>>, req: Request| async move {
        api(app, None, HashMap::new(), req).await
    };
    r.route("/__sandbox/state", get(inspect_state))
        .route("/__sandbox/summary", get(inspect_summary))
        .route("/__sandbox/journal", get(inspect_journal))
        .route("/__sandbox/sessions/{id}", get(inspect_session))
        .route("/__sandbox/reset", post(inspect_reset))
        .route("/__sandbox/upload/{temp}", put(upload_bytes))
        .fallback(unmatched)
        .method_not_allowed_fallback(unmatched)
        .with_state(app)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.status, &e.envelope())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// The API pipeline. `op` is `None` for paths no route matches.
async fn api(
    app: Arc<App>,
    op: Option<Op>,
    params: HashMap<String, String>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().map(str::to_owned);
    let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let mut entry = JournalEntry {
        seq: 0,
        at: jiff::Timestamp::now(),
        answered_at: None,
        method: parts.method.to_string(),
        path: path.clone(),
        query: raw_query.clone(),
        body: body_for_journal(&bytes),
        status: 0,
        state_changed: false,
        fault: None,
    };
    let resp = pipeline(
        &app,
        op,
        params,
        &parts.method,
        &parts.headers,
        &path,
        raw_query.as_deref(),
        &bytes,
        &mut entry,
    )
    .await;
    if resp.extensions().get::<DropConnection>().is_none() {
        entry.status = resp.status().as_u16();
    }
    entry.answered_at = Some(jiff::Timestamp::now());
    app.journal.record(entry);
    resp
}

fn body_for_journal(bytes: &Bytes) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| {
        Value::String(String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned())
    })
}

fn dropped() -> Response {
    let mut resp = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    resp.extensions_mut().insert(DropConnection);
    resp
}

#[expect(
    clippy::too_many_arguments,
    reason = "the pipeline's inputs are the request's parts"
)]
#[allow(clippy::too_many_lines)] // TODO(issue 8): split
async fn pipeline(
    app: &App,
    op: Option<Op>,
    params: HashMap<String, String>,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    raw_query: Option<&str>,
    bytes: &Bytes,
    entry: &mut JournalEntry,
) -> Response {
    // 1. Authentication runs before routing (an unknown route without a token is a 401).
    let token = bearer(headers).filter(|t| app.config.token.as_ref().is_none_or(|want| want == t));
    let Some(token) = token else {
        let mut w = lock(&app.world);
        w.summary.requests += 1;
        w.summary.unauthorized += 1;
        return error_response(&ApiError::unauthorized());
    };
    // 2. Rate limit, per token.
    if let Err(wait) = app.realism.admit(&token) {
        {
            let mut w = lock(&app.world);
            w.summary.requests += 1;
            w.summary.rate_limited += 1;
        }
        entry.fault = Some("rate_limited".into());
        let mut resp = error_response(&ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "ERROR_TOO_MANY_REQUESTS",
            "Limite de requisições excedido",
        ));
        if app.config.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        return resp;
    }
    // 3. Routing problems.
    let Some(op) = op else {
        lock(&app.world).summary.requests += 1;
        let service = path.trim_start_matches('/').split('/').next().unwrap_or("");
        let err = if ["core", "chat", "crm"].contains(&service) {
            if method == Method::GET
                || method == Method::POST
                || method == Method::PUT
                || method == Method::DELETE
            {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "ERROR_NOT_FOUND",
                    format!("Rota não encontrada: {method} {path}"),
                )
            } else {
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "ERROR_METHOD_NOT_ALLOWED",
                    format!("Método {method} não permitido"),
                )
            }
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "ERROR_BAD_REQUEST",
                format!("The path {path} has no service prefix (/core, /chat or /crm)"),
            )
        };
        return error_response(&err);
    };
    // 4. Latency, then faults before the state is touched.
    if let Some(d) = app.realism.delay() {
        tokio::time::sleep(d).await;
    }
    match app.realism.before() {
        Before::Pass => {}
        Before::Fail(status) => {
            let mut w = lock(&app.world);
            w.summary.requests += 1;
            w.summary.faults_injected += 1;
            entry.fault = Some("fail_before".into());
            return json_response(
                status,
                &envelope(status, "ERROR_INTERNAL", "Erro interno (falha simulada)"),
            );
        }
        Before::Drop => {
            let mut w = lock(&app.world);
            w.summary.requests += 1;
            w.summary.faults_injected += 1;
            entry.fault = Some("drop_before".into());
            return dropped();
        }
    }
    // 5. The operation itself.
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Null)
    } else {
        serde_json::from_slice::<Value>(bytes)
            .map_err(|e| ApiError::validation(format!("The request body is not valid JSON: {e}")))
    };
    let version = path
        .split('/')
        .nth(2)
        .and_then(|v| v.strip_prefix('v'))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let result = body.and_then(|body| {
        let req = Req {
            params,
            query: Query::parse(raw_query),
            body,
            version,
            path: path.to_owned(),
        };
        let mut w = lock(&app.world);
        w.summary.requests += 1;
        if app.config.strict {
            super::strict::check(&w, &req.params, &req.body)?;
        }
        op(&mut w, &req)
    });
    let reply = match result {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    entry.state_changed = reply.changed;
    // 6. Faults after the state changed.
    match app.realism.after() {
        After::Pass => {}
        After::Fail => {
            lock(&app.world).summary.faults_injected += 1;
            entry.fault = Some("fail_after".into());
            let s = StatusCode::SERVICE_UNAVAILABLE;
            return json_response(
                s,
                &envelope(
                    s,
                    "ERROR_SERVICE_UNAVAILABLE",
                    "Serviço indisponível (falha simulada)",
                ),
            );
        }
        After::Drop => {
            lock(&app.world).summary.faults_injected += 1;
            entry.fault = Some("drop_after".into());
            return dropped();
        }
    }
    ok_response(reply)
}

fn ok_response(reply: Reply) -> Response {
    match reply.body {
        Some(body) => json_response(StatusCode::OK, &body),
        None => StatusCode::OK.into_response(),
    }
}

async fn inspect_state(State(app): State<Arc<App>>) -> Response {
    let snap = snapshot(&lock(&app.world));
    json_response(
        StatusCode::OK,
        &serde_json::to_value(snap).unwrap_or(Value::Null),
    )
}

async fn inspect_summary(State(app): State<Arc<App>>) -> Response {
    let s = lock(&app.world).summary.clone();
    let changes: serde_json::Map<String, Value> = s
        .changes()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_owned(), json!(n)))
        .collect();
    let mut v = serde_json::to_value(&s).unwrap_or(Value::Null);
    v["changes"] = Value::Object(changes);
    v["text"] = json!(s.to_string());
    json_response(StatusCode::OK, &v)
}

async fn inspect_journal(State(app): State<Arc<App>>, req: Request) -> Response {
    let q = Query::parse(req.uri().query());
    let since = q.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    let limit = q
        .get("limit")
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    let entries = app.journal.entries(since, limit);
    json_response(
        StatusCode::OK,
        &json!({ "total": app.journal.total(), "capacity": app.journal.capacity(), "entries": entries }),
    )
}

async fn inspect_session(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match lock(&app.world).sessions.get(&id.to_ascii_lowercase()) {
        Some(s) => json_response(
            StatusCode::OK,
            &serde_json::to_value(s).unwrap_or(Value::Null),
        ),
        None => error_response(&ApiError::not_found("Sessão", &id)),
    }
}

/// `PUT /__sandbox/upload/{temp}`: the pre-signed storage URL of the upload flow (api-notes "Files"). Like
/// S3, it needs no token; unlike S3, it refuses one (400), to prove the runner sends none.
/// Journaled, but neither rate limited nor faulted (the storage host is not the API).
async fn upload_bytes(
    State(app): State<Arc<App>>,
    Path(temp): Path<String>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let mut entry = JournalEntry {
        seq: 0,
        at: jiff::Timestamp::now(),
        answered_at: None,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        body: json!({ "bytes": bytes.len() }),
        status: 0,
        state_changed: false,
        fault: None,
    };
    let result = {
        let mut w = lock(&app.world);
        w.summary.requests += 1;
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if parts.headers.contains_key(header::AUTHORIZATION) {
            Err(ApiError::validation(
                "the upload URL is pre-signed: send no Authorization header",
            ))
        } else if let Some(p) = w.uploads.get_mut(&temp.to_ascii_lowercase()) {
            p.uploaded = Some((u64::try_from(bytes.len()).unwrap_or(u64::MAX), content_type));
            Ok(())
        } else {
            Err(ApiError::not_found("Upload", &temp))
        }
    };
    let resp = match result {
        // Nothing visible changes until the upload is confirmed.
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => error_response(&e),
    };
    entry.status = resp.status().as_u16();
    app.journal.record(entry);
    resp
}

async fn inspect_reset(State(app): State<Arc<App>>) -> Response {
    reset(&app);
    json_response(
        StatusCode::OK,
        &json!({ "reset": true, "seed": app.config.seed }),
    )
}

/// `wts-playbook sandbox`: serve until Ctrl-C. Prints `listening on http://ADDR` on stdout,
/// then a short "seeded ids" section (the first id of each lookup) on stderr.
pub async fn serve_cli(args: SandboxArgs) -> i32 {
    let config = args.config();
    let sandbox = match Sandbox::start(args.listen, config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot start the sandbox on {}: {e}", args.listen);
            return 2;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", sandbox.url());
        let _ = out.flush();
    }
    {
        let ids = lock(&sandbox.app.world).lookup_ids();
        let mut err = std::io::stderr().lock();
        let mut brief = ids.brief();
        if args.strict {
            brief = brief.replace(
                "any other id a request names is created on first use",
                "any other id a request names is a 404 (--strict)",
            );
        }
        let _ = write!(err, "{brief}");
        let _ = err.flush();
    }
    {
        // Which token it accepts and how it treats unknown ids.
        let token = match &args.token {
            Some(t) => format!("only `{t}` (export WTS_API_TOKEN={t})"),
            None => "any bearer token (--token T accepts only T)".to_owned(),
        };
        let mode = if args.strict {
            "strict: an unknown id or phone number is a 404, as on a real account"
        } else {
            "lenient: unknown ids are created on first use (--strict makes them a 404)"
        };
        eprintln!("token: {token}");
        eprintln!("mode:  {mode}");
    }
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("{}", sandbox.summary());
    sandbox.shutdown().await;
    0
}
