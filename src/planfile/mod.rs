//! The plan file of `plan` / `show` / `apply` (README "Plan and apply"; contract §7).
//!
//! In: what `plan` found (a [`PlanHeader`] and one [`PlannedWrite`] per write it rendered).
//! Out: a JSON Lines file (header, one line per write, trailer) whose trailer chains a SHA-256
//! over every byte of every line before it; [`read`] gives it back only when it is intact, of a
//! format this build knows, not expired, and for the base URL and account it is applied to,
//! each refusal its own [`Refusal`] (exit code 4, nothing sent).
//!
//! Secrets never reach the file: a rendered value that read a secret is written as the
//! reference `[redacted]` (a "hole"); so is a value that depends on a write's answer
//! (`<steps.create.output.id>`, "known after apply"). At apply the fresh rendering fills the
//! holes, and [`matches`] checks that everything else is what the plan says.
//!
//! The chain detects any change to the file (a reviewer's plan and the applied one are the same
//! bytes); it is not a signature: whoever can write the file can recompute it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use indexmap::IndexMap;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::catalog::{HttpRequest, Method};

pub(crate) mod capture;
pub(crate) mod cmd;
mod show;
pub(crate) use show::{show, ShowFormat};

/// The plan format this build writes and reads.
pub(crate) const FORMAT: &str = "wts-playbook-plan/1";

/// The largest plan file read: 1 GiB (about 2.5 million planned writes).
const MAX_PLAN_BYTES: u64 = 1 << 30;

/// The text a secret's rendered value is replaced with in the plan.
pub(crate) const SECRET_HOLE: &str = crate::secret::REDACTED;

/// Domain separation of the account fingerprint: never a bare hash of the token.
const FINGERPRINT_DOMAIN: &[u8] = b"wts-playbook account fingerprint v1\0";

/// The start of the line chain.
const CHAIN_DOMAIN: &[u8] = b"wts-playbook plan chain v1\0";

/// Hex SHA-256 of some bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The account a token belongs to, as the plan names it: 16 hex digits of a domain-separated
/// SHA-256 of the token. It tells two tokens apart and says nothing about either.
pub(crate) fn account_fingerprint(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(FINGERPRINT_DOMAIN);
    h.update(token.as_bytes());
    hex(&h.finalize()[..8])
}

/// The playbook the plan was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PlanPlaybook {
    pub(crate) name: String,
    pub(crate) path: String,
    pub sha256: String,
    /// The playbook's text: `apply` runs this, not the file on disk (which may have changed).
    pub(crate) source: String,
}

/// One input file as the plan read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PlanInput {
    pub(crate) path: String,
    pub sha256: String,
}

/// The command-line choices of `plan` that `apply` repeats.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct PlanOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rate_limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) routes: Option<crate::catalog::Routes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) limit: Option<u64>,
    /// `--var` values that are not secrets (a secret `--var` is given again at apply).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub(crate) vars: IndexMap<String, Value>,
    /// `--input NAME=PATH`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub(crate) inputs: IndexMap<String, String>,
    /// Secret vars given with `--var` or written in the playbook (their values are not kept):
    /// apply needs each with `--var` again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) secret_vars: Vec<String>,
    /// Made against the built-in sandbox.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) sandbox: bool,
}

/// Line 1 of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PlanHeader {
    pub(crate) format: String,
    /// `wts-playbook <version>`.
    pub(crate) tool: String,
    pub(crate) plan_id: String,
    pub(crate) created_at: Timestamp,
    pub(crate) expires_at: Timestamp,
    pub(crate) playbook: PlanPlaybook,
    #[serde(default)]
    pub(crate) inputs: IndexMap<String, PlanInput>,
    /// SHA-256 of the vars as the plan rendered them (secrets as references).
    pub vars_sha256: String,
    pub(crate) base_url: String,
    /// [`account_fingerprint`] of the token the plan read with.
    pub(crate) account: String,
    pub(crate) routes: crate::catalog::Routes,
    pub(crate) settings: Value,
    #[serde(default)]
    pub(crate) options: PlanOptions,
    /// The secret vars, by name: resolved from the environment (or `--var`) at apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) secrets: Vec<String>,
    /// Requests the plan spent on reads.
    pub(crate) reads: u64,
}

/// Where a planned write's item came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct WriteSource {
    /// The step whose listing (or other read) gave the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) step: Option<String>,
    /// That step's action (`session.list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) action: Option<String>,
    /// The CSV input of the item's row, and its line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) line: Option<u64>,
}

/// A value known only once another write has answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Dependency {
    /// `steps.create.output.id`.
    pub(crate) value: String,
    /// The step whose write answers it.
    pub(crate) step: String,
    /// The planned write of that step for the same key, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) seq: Option<u64>,
}

/// Whether a write may be sent again after an ambiguous failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Idempotency {
    /// Safe to repeat (the catalog's retry-safe actions).
    RetrySafe,
    /// Not repeated blindly: its outcome is verified by a read first.
    Verified,
    /// Not repeated: an ambiguous failure is `unknown`.
    Once,
}

/// One planned write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PlannedWrite {
    pub(crate) seq: u64,
    pub(crate) step: String,
    pub(crate) key: String,
    pub(crate) action: String,
    #[serde(deserialize_with = "de_method")]
    pub(crate) method: Method,
    pub(crate) path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) query: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) body: Option<Value>,
    pub(crate) idempotency: Idempotency,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) depends_on: Vec<Dependency>,
    pub(crate) source: WriteSource,
    /// The item's fields its `when` and templates read, as the plan saw them (`item.status`):
    /// a change at apply makes the write `drifted`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) reads: BTreeMap<String, Value>,
    /// Holds secret references (`[redacted]`), filled at apply.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) secret: bool,
}

impl PlannedWrite {
    /// The request as planned (holes and all).
    pub(crate) fn request(&self) -> HttpRequest {
        HttpRequest {
            method: self.method,
            path: self.path.clone(),
            query: self.query.clone(),
            body: self.body.clone(),
        }
    }
}

/// The last line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PlanTrailer {
    pub(crate) writes: u64,
    /// Writes per action.
    pub(crate) actions: BTreeMap<String, u64>,
    /// Writes per step, then per action, in step order.
    pub(crate) steps: IndexMap<String, BTreeMap<String, u64>>,
    /// Hex SHA-256 chaining every line before this one.
    pub(crate) chain: String,
}

/// One line of the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    Header(Box<PlanHeader>),
    Write(Box<PlannedWrite>),
    Trailer(PlanTrailer),
}

/// A whole plan.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) header: PlanHeader,
    pub(crate) writes: Vec<PlannedWrite>,
    pub(crate) trailer: PlanTrailer,
}

impl Plan {
    /// A plan of these writes: sequence numbers from 1 in order, counts computed.
    pub(crate) fn new(header: PlanHeader, mut writes: Vec<PlannedWrite>) -> Plan {
        for (i, w) in writes.iter_mut().enumerate() {
            w.seq = i as u64 + 1;
        }
        let trailer = counts(&writes);
        let mut plan = Plan {
            header,
            writes,
            trailer,
        };
        plan.trailer.chain = plan.chain();
        plan
    }

    /// The file's text: one JSON object per line.
    pub(crate) fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for line in self.body_lines() {
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str(&trailer_line(&self.trailer));
        out.push('\n');
        out
    }

    /// The plan's hash: the trailer's chain.
    pub(crate) fn hash(&self) -> &str {
        &self.trailer.chain
    }

    fn body_lines(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(line_text(&Line::Header(Box::new(self.header.clone())))).chain(
            self.writes
                .iter()
                .map(|w| line_text(&Line::Write(Box::new(w.clone())))),
        )
    }

    fn chain(&self) -> String {
        let mut c = Chain::new();
        for l in self.body_lines() {
            c.push(&l);
        }
        c.hex()
    }

    /// Writes to `path` (through a file beside it, renamed into place).
    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("plan-partial");
        std::fs::write(&tmp, self.to_jsonl())?;
        std::fs::rename(&tmp, path)
    }
}

fn de_method<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Method, D::Error> {
    let s = String::deserialize(d)?;
    Method::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown method `{s}`")))
}

fn line_text(line: &Line) -> String {
    serde_json::to_string(line).expect("a plan line serializes")
}

fn trailer_line(t: &PlanTrailer) -> String {
    line_text(&Line::Trailer(t.clone()))
}

fn counts(writes: &[PlannedWrite]) -> PlanTrailer {
    let mut actions = BTreeMap::new();
    let mut steps: IndexMap<String, BTreeMap<String, u64>> = IndexMap::new();
    for w in writes {
        *actions.entry(w.action.clone()).or_insert(0) += 1;
        *steps
            .entry(w.step.clone())
            .or_default()
            .entry(w.action.clone())
            .or_insert(0) += 1;
    }
    PlanTrailer {
        writes: writes.len() as u64,
        actions,
        steps,
        chain: String::new(),
    }
}

/// `h(0) = SHA-256(domain)`, `h(i) = SHA-256(h(i-1) ‖ line i ‖ "\n")`.
struct Chain(Vec<u8>);

impl Chain {
    fn new() -> Chain {
        Chain(Sha256::digest(CHAIN_DOMAIN).to_vec())
    }
    fn push(&mut self, line: &str) {
        let mut h = Sha256::new();
        h.update(&self.0);
        h.update(line.as_bytes());
        h.update(b"\n");
        self.0 = h.finalize().to_vec();
    }
    fn hex(&self) -> String {
        hex(&self.0)
    }
}

/// Why `apply` (or `show`) refuses a plan. Each is exit code 4, and nothing is sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum Refusal {
    #[error("cannot read the plan {path}: {error}")]
    Unreadable { path: String, error: String },
    #[error(
        "{path} is not a plan of a format this build knows ({found}; this build reads {FORMAT})"
    )]
    UnknownFormat { path: String, found: String },
    #[error("the plan {path} has changed since it was made ({what}): apply only what was reviewed; make a new plan")]
    Changed { path: String, what: String },
    #[error("the plan {path} expired at {expired_at} (made {created_at}); make a new plan")]
    Expired {
        path: String,
        created_at: Timestamp,
        expired_at: Timestamp,
    },
    #[error("the plan {path} was made for {planned}, not {target} (WTS_BASE_URL); make a plan for this base URL")]
    OtherBaseUrl {
        path: String,
        planned: String,
        target: String,
    },
    #[error("the plan {path} was made for another account (fingerprint {planned}; this token's is {target}); make a plan with this token")]
    OtherAccount {
        path: String,
        planned: String,
        target: String,
    },
}

/// Reads a plan and checks that its bytes are the ones its trailer chains (any change to any
/// line, the trailer included, is [`Refusal::Changed`]) and that its format is known.
pub(crate) fn read(path: &Path) -> Result<Plan, Refusal> {
    let shown = path.display().to_string();
    let unreadable = |error: String| Refusal::Unreadable {
        path: shown.clone(),
        error,
    };
    // A plan is a regular file of bounded size: a pipe, a device or an endless file is never
    // read (it would block, or fill the memory).
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(unreadable("not a regular file".into()));
    }
    if meta.len() > MAX_PLAN_BYTES {
        return Err(unreadable(format!(
            "{} bytes, more than a plan may have ({MAX_PLAN_BYTES})",
            meta.len()
        )));
    }
    let text = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
    parse(&shown, &text)
}

/// [`read`] of bytes already in memory (`path` names them in messages).
pub(crate) fn parse(path: &str, bytes: &[u8]) -> Result<Plan, Refusal> {
    let changed = |what: &str| Refusal::Changed {
        path: path.to_owned(),
        what: what.to_owned(),
    };
    let unknown = |found: String| Refusal::UnknownFormat {
        path: path.to_owned(),
        found,
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(changed("it is not UTF-8 text"));
    };
    let mut lines = text.split_inclusive('\n');
    // The format first: another format may chain differently.
    let first = lines
        .next()
        .ok_or_else(|| unknown("an empty file".into()))?;
    let first_value: Value = serde_json::from_str(first.trim_end_matches('\n'))
        .map_err(|_| unknown("its first line is not JSON".into()))?;
    match first_value.get("format").and_then(Value::as_str) {
        Some(FORMAT) if first_value.get("type").and_then(Value::as_str) == Some("header") => {}
        Some(other) => return Err(unknown(format!("format `{other}`"))),
        None => return Err(unknown("no `format` in its first line".into())),
    }
    let mut chain = Chain::new();
    let mut header = None;
    let mut writes = Vec::new();
    let mut trailer = None;
    for (i, raw) in std::iter::once(first).chain(lines).enumerate() {
        let n = i + 1;
        let Some(line) = raw.strip_suffix('\n') else {
            return Err(changed(&format!(
                "line {n} does not end the way the plan wrote it"
            )));
        };
        if trailer.is_some() {
            return Err(changed(&format!("line {n} follows the trailer")));
        }
        let parsed: Line = serde_json::from_str(line)
            .map_err(|e| changed(&format!("line {n} is not a plan line: {e}")))?;
        match parsed {
            Line::Header(h) if n == 1 => header = Some(*h),
            Line::Write(w) if n > 1 => writes.push(*w),
            Line::Trailer(t) if n > 1 => {
                trailer = Some(t);
                // The trailer's own bytes: exactly what this plan's trailer serializes to.
                if trailer_line(trailer.as_ref().expect("just set")) != line {
                    return Err(changed("the trailer is not as written"));
                }
                continue;
            }
            _ => return Err(changed(&format!("line {n} is out of place"))),
        }
        chain.push(line);
    }
    let header = header.ok_or_else(|| changed("no header"))?;
    let trailer = trailer.ok_or_else(|| changed("no trailer: the file was cut short"))?;
    if chain.hex() != trailer.chain {
        return Err(changed("its lines do not hash to the trailer's chain"));
    }
    let expected = counts(&writes);
    if expected.writes != trailer.writes
        || expected.actions != trailer.actions
        || expected.steps != trailer.steps
    {
        return Err(changed("the trailer's counts are not the lines'"));
    }
    for (i, w) in writes.iter().enumerate() {
        if w.seq != i as u64 + 1 {
            return Err(changed(&format!(
                "write {} has sequence number {}",
                i + 1,
                w.seq
            )));
        }
    }
    Ok(Plan {
        header,
        writes,
        trailer,
    })
}

/// Checks an intact plan against the moment and the target it is applied to.
pub(crate) fn check_target(
    plan: &Plan,
    path: &str,
    now: Timestamp,
    base_url: &str,
    account: &str,
) -> Result<(), Refusal> {
    let h = &plan.header;
    if now >= h.expires_at {
        return Err(Refusal::Expired {
            path: path.to_owned(),
            created_at: h.created_at,
            expired_at: h.expires_at,
        });
    }
    if normalize_url(&h.base_url) != normalize_url(base_url) {
        return Err(Refusal::OtherBaseUrl {
            path: path.to_owned(),
            planned: h.base_url.clone(),
            target: base_url.to_owned(),
        });
    }
    if h.account != account {
        return Err(Refusal::OtherAccount {
            path: path.to_owned(),
            planned: h.account.clone(),
            target: account.to_owned(),
        });
    }
    Ok(())
}

fn normalize_url(u: &str) -> String {
    u.trim_end_matches('/').to_ascii_lowercase()
}

/// Whether a freshly rendered value is the planned one: equal everywhere except where the plan
/// has a hole (a secret reference, a value known after apply), which matches anything there.
pub(crate) fn matches(planned: &Value, fresh: &Value) -> bool {
    match (planned, fresh) {
        (Value::String(p), _) if is_whole_hole(p) => true,
        (Value::String(p), Value::String(f)) => text_matches(p, f),
        (Value::Array(p), Value::Array(f)) => {
            p.len() == f.len() && p.iter().zip(f).all(|(a, b)| matches(a, b))
        }
        (Value::Object(p), Value::Object(f)) => {
            p.len() == f.len()
                && p.iter()
                    .all(|(k, v)| f.get(k).is_some_and(|fv| matches(v, fv)))
        }
        _ => planned == fresh,
    }
}

/// Whether a fresh request is the planned one, holes aside.
pub(crate) fn request_matches(planned: &PlannedWrite, fresh: &HttpRequest) -> bool {
    planned.method == fresh.method
        && text_matches(&planned.path, &fresh.path)
        && planned.query.len() == fresh.query.len()
        && planned
            .query
            .iter()
            .zip(&fresh.query)
            .all(|((pk, pv), (fk, fv))| pk == fk && text_matches(pv, fv))
        && match (&planned.body, &fresh.body) {
            (None, None) => true,
            (Some(p), Some(f)) => matches(p, f),
            _ => false,
        }
}

/// The literal parts of a text and its holes: `a<steps.x.output.id>b` → `["a", "b"]`.
fn literal_parts(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        let next = [rest.find(SECRET_HOLE), rest.find("<steps.")]
            .into_iter()
            .flatten()
            .min();
        let Some(at) = next else {
            parts.push(rest);
            return parts;
        };
        parts.push(&rest[..at]);
        let tail = &rest[at..];
        let len = if tail.starts_with(SECRET_HOLE) {
            SECRET_HOLE.len()
        } else {
            tail.find('>').map_or(tail.len(), |e| e + 1)
        };
        rest = &tail[len..];
    }
}

fn is_whole_hole(text: &str) -> bool {
    let parts = literal_parts(text);
    parts.len() > 1 && parts.iter().all(|p| p.is_empty())
}

/// Text matching with holes: the literal parts in order, anything in place of each hole.
fn text_matches(planned: &str, fresh: &str) -> bool {
    let parts = literal_parts(planned);
    if parts.len() == 1 {
        return planned == fresh;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !fresh.starts_with(first) || fresh.len() < first.len() + last.len() || !fresh.ends_with(last)
    {
        return false;
    }
    let mut rest = &fresh[first.len()..fresh.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(at) => rest = &rest[at + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use serde_json::json;

    pub(crate) fn header(now: Timestamp) -> PlanHeader {
        PlanHeader {
            format: FORMAT.into(),
            tool: crate::report::TOOL.into(),
            plan_id: "p-1".into(),
            created_at: now,
            expires_at: now + jiff::SignedDuration::from_hours(24),
            playbook: PlanPlaybook {
                name: "t".into(),
                path: "t.yaml".into(),
                sha256: sha256_hex(b"x"),
                source: "version: 1\n".into(),
            },
            inputs: IndexMap::new(),
            vars_sha256: sha256_hex(b"{}"),
            base_url: "http://127.0.0.1:9".into(),
            account: account_fingerprint("tok-1"),
            routes: crate::catalog::Routes::Documented,
            settings: json!({"concurrency": 8}),
            options: PlanOptions::default(),
            secrets: vec![],
            reads: 3,
        }
    }

    pub(crate) fn write(step: &str, key: &str, action: &str) -> PlannedWrite {
        PlannedWrite {
            seq: 0,
            step: step.into(),
            key: key.into(),
            action: action.into(),
            method: Method::Put,
            path: format!("/chat/v1/session/{key}/transfer"),
            query: vec![],
            body: Some(json!({"newDepartmentId": "d-2", "type": "DEPARTMENT"})),
            idempotency: Idempotency::RetrySafe,
            depends_on: vec![],
            source: WriteSource {
                step: Some("pending".into()),
                action: Some("session.list".into()),
                ..WriteSource::default()
            },
            reads: BTreeMap::from([("item.id".into(), json!(key))]),
            secret: false,
        }
    }

    pub(crate) fn plan() -> Plan {
        Plan::new(
            header(Timestamp::now()),
            vec![
                write("move", "a", "session.transfer"),
                write("move", "b", "session.transfer"),
                write("close", "a", "session.complete"),
            ],
        )
    }

    /// A plan of `n` transfers.
    pub(crate) fn sample(n: usize) -> Plan {
        Plan::new(
            header(Timestamp::now()),
            (0..n)
                .map(|i| write("move", &format!("k{i}"), "session.transfer"))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests;
