//! The loader: file → YAML → checked keys → typed [`Playbook`], with a position for every
//! problem. Every YAML call of the program lives in this file (`serde_yaml` is archived upstream:
//! swapping in a maintained fork touches nothing else).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_yaml::Value as Yaml;
use sha2::{Digest, Sha256};

use super::model::{
    InputDef, MaxFailures, MaxSize, OnError, Paginate, ParallelDef, Playbook, Settings, Step,
    StepDef, INPUT_KEYS, RETRY_KEYS, SETTINGS_KEYS, STEP_KEYS, TOP_KEYS,
};
use super::positions::{join, Pos, Positions};
use crate::diagnostic::{did_you_mean, Diagnostic};

/// A loaded playbook with what is needed to point into it.
#[derive(Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub source: String,
    pub sha256: String,
    pub playbook: Playbook,
    pub positions: Positions,
}

impl Loaded {
    /// The directory input paths are relative to.
    pub fn base_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }

    /// A diagnostic at the key (or value) of `path`, falling back to its nearest parent.
    pub fn at_key(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        let pos = self.positions.key_or_nearest(path);
        diag(&self.path, &self.source, pos, message)
    }

    /// A diagnostic at the value of `path`, falling back to its nearest parent.
    pub fn at_value(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        let pos = self.positions.value_or_nearest(path);
        diag(&self.path, &self.source, pos, message)
    }
}

fn diag(file: &Path, source: &str, pos: Pos, message: impl Into<String>) -> Diagnostic {
    Diagnostic::at(file, Some(source), pos.line, pos.column, message).with_width(pos.width)
}

/// The largest playbook file read (CSV inputs are streamed and have no such bound).
pub(super) const MAX_PLAYBOOK_BYTES: u64 = 16 << 20;

/// The playbook file's text: a regular file only, read with a size bound.
fn read_source(path: &Path) -> Result<String, Vec<Diagnostic>> {
    use std::io::Read;
    let cannot = |e: &dyn std::fmt::Display| {
        vec![Diagnostic::file(path, format!("cannot read playbook: {e}"))]
    };
    // A FIFO would block the open, a device such as `/dev/zero` never ends: regular files only,
    // checked before opening, and read with a size bound.
    let meta = std::fs::metadata(path).map_err(|e| cannot(&e))?;
    if meta.is_dir() {
        return Err(cannot(&"it is a directory"));
    }
    if let Some(kind) = crate::inputs::special_file_kind(&meta) {
        return Err(vec![Diagnostic::file(
            path,
            format!("cannot read playbook: it is {kind}, not a regular file"),
        )
        .with_hint("give the path of a YAML file")]);
    }
    let file = std::fs::File::open(path).map_err(|e| cannot(&e))?;
    let mut bytes = Vec::new();
    file.take(MAX_PLAYBOOK_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(&e))?;
    if bytes.len() as u64 > MAX_PLAYBOOK_BYTES {
        return Err(cannot(&format!(
            "it is larger than {} MiB; a playbook is a small YAML file",
            MAX_PLAYBOOK_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|e| vec![not_utf8(path, &e)])
}

/// Parses playbook text (the path is used for messages and relative inputs): tests, and
/// `apply`, which runs the copy a plan holds.
pub(crate) fn load_str(path: &Path, source: String) -> Result<Loaded, Vec<Diagnostic>> {
    match load_partial(path, source) {
        (Some(loaded), diags) if diags.is_empty() => Ok(loaded),
        (_, diags) => Err(diags),
    }
}

/// Reads a playbook that may have problems: the problems, and the playbook without its wrong
/// values when every step could still be read (so the later checks can run on the rest and
/// report their problems in the same round). `None` when the structure itself is broken.
pub(crate) fn load_partial_file(path: &Path) -> (Option<Loaded>, Vec<Diagnostic>) {
    match read_source(path) {
        Err(diags) => (None, diags),
        Ok(source) => load_partial(path, source),
    }
}

fn load_partial(path: &Path, source: String) -> (Option<Loaded>, Vec<Diagnostic>) {
    let sha256 = hex(&Sha256::digest(source.as_bytes()));
    let doc: Yaml = match serde_yaml::from_str(&source) {
        Ok(v) => v,
        Err(e) => return (None, vec![syntax_error(path, &source, &e)]),
    };
    let positions = Positions::index(&source);
    let mut cx = Cx {
        path,
        source: &source,
        positions: &positions,
        diags: Vec::new(),
        dropped: false,
    };
    cx.non_finite(&doc, "");
    let playbook = cx.playbook(&doc);
    let Cx { diags, dropped, .. } = cx;
    match playbook {
        Some(playbook) if !dropped => (
            Some(Loaded {
                path: path.to_path_buf(),
                source,
                sha256,
                playbook,
                positions,
            }),
            diags,
        ),
        _ => (None, diags),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Points at the first byte that is not UTF-8 (line, column, the line shown lossily).
fn not_utf8(path: &Path, e: &std::string::FromUtf8Error) -> Diagnostic {
    let bytes = e.as_bytes();
    let good = e.utf8_error().valid_up_to();
    // Everything before `good` is UTF-8 by definition.
    let valid = std::str::from_utf8(&bytes[..good]).unwrap_or_default();
    let line_start = valid.rfind('\n').map_or(0, |i| i + 1);
    let line = valid.matches('\n').count() + 1;
    let before = &valid[line_start..];
    let line_end = bytes[good..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| good + i);
    let text = String::from_utf8_lossy(&bytes[line_start..line_end]);
    Diagnostic::at(
        path,
        None,
        line,
        before.chars().count() + 1,
        format!("the playbook is not valid UTF-8 (line {line})"),
    )
    .with_line_text(text.trim_end_matches('\r'))
    .with_hint("save the file as UTF-8")
}

/// `(line, column)` from a `serde_yaml` message fragment "… at line L column C".
fn mark_in(text: &str) -> Option<(usize, usize)> {
    let (_, rest) = text.rsplit_once(" at line ")?;
    let (line, column) = rest.split_once(" column ")?;
    Some((line.trim().parse().ok()?, column.trim().parse().ok()?))
}

fn syntax_error(path: &Path, source: &str, e: &serde_yaml::Error) -> Diagnostic {
    let full = e.to_string();
    // serde_yaml appends " at line L column C" and, for parser errors, the context
    // (", while parsing a flow mapping at line L column C"); keep the problem without its mark.
    let (head, context) = match full.split_once(", while ") {
        Some((h, c)) => (h, Some(format!("while {c}"))),
        None => (full.as_str(), None),
    };
    let message = head.split(" at line ").next().unwrap_or(head).to_owned();
    let Some(loc) = e.location() else {
        return Diagnostic::file(path, format!("invalid YAML: {message}"));
    };
    // A problem found at the end of the file (an unclosed bracket or quote) points at the end of
    // the last line rather than at a line that does not exist.
    let lines: Vec<&str> = source.lines().collect();
    let (line, column) = match lines.iter().rposition(|l| !l.trim().is_empty()) {
        Some(last) if loc.line() > last + 1 => (last + 1, lines[last].chars().count() + 1),
        _ => (loc.line(), loc.column()),
    };
    let mut d = Diagnostic::at(
        path,
        Some(source),
        line,
        column,
        format!("invalid YAML: {message}"),
    );
    if let Some(context) = context {
        let hint = match mark_in(&context) {
            Some((l, c)) => {
                let what = context
                    .rsplit_once(" at line ")
                    .map_or(&*context, |(w, _)| w);
                format!("{what} that starts at line {l}, column {c}")
            }
            None => context.clone(),
        };
        d = d.with_hint(hint);
    }
    let line_text = source
        .lines()
        .nth(loc.line().saturating_sub(1))
        .unwrap_or("");
    if line_text.starts_with(['\t', ' ']) && line_text.trim_start_matches(' ').starts_with('\t') {
        let col = line_text.find('\t').unwrap_or(0) + 1;
        d.column = col;
        d = d.with_hint("YAML indentation must use spaces, not tabs");
    }
    d
}

struct Cx<'a> {
    path: &'a Path,
    source: &'a str,
    positions: &'a Positions,
    diags: Vec<Diagnostic>,
    /// A step (or the `name`) could not be read at all: positions of later steps would shift,
    /// so no later check runs on this file.
    dropped: bool,
}

/// What a field accepts, for the message of a wrong value; `None` for a field of any value.
fn accepted(key: &str, v: &Yaml) -> Option<&'static str> {
    fn is<T: DeserializeOwned>(v: &Yaml) -> bool {
        serde_yaml::from_value::<T>(v.clone()).is_ok()
    }
    let (ok, expected) = match key {
        "id" => (is::<String>(v), "a step id, [a-z][a-z0-9_]*"),
        "action" => (
            is::<String>(v),
            "an action name (`wts-playbook actions` lists them)",
        ),
        "description" | "key" | "csv" => (is::<String>(v), "a string"),
        "delimiter" => (is::<String>(v), "one character, e.g. `;`"),
        "for_each" => (is::<String>(v), "`inputs.NAME` or a list expression"),
        "with" => (
            is::<indexmap::IndexMap<String, serde_json::Value>>(v),
            "a mapping of parameter names to values",
        ),
        "paginate" => (
            is::<Paginate>(v),
            "`all` or a page count (a whole number ≥ 1)",
        ),
        "concurrency" | "unreachable_after" | "max_pages" => (is::<u32>(v), "a whole number ≥ 1"),
        "attempts" => (is::<u32>(v), "a whole number of tries ≥ 1"),
        "timeout" | "backoff" | "max_backoff" => (is::<String>(v), "a duration such as `30s`"),
        "rate_limit" => (
            is::<String>(v),
            "`api`, `off`, or windows such as `2/s` or `50/10s,900/5m`",
        ),
        "on_error" => (is::<OnError>(v), "`continue` or `stop`"),
        "on_account_failure" => (
            is::<crate::playbook::OnAccountFailure>(v),
            "`continue` or `stop_all`",
        ),
        "max_failures" => (
            is::<MaxFailures>(v),
            "a count (`10`) or a percentage of the step's items (`5%`)",
        ),
        "secrets" => (is::<Vec<String>>(v), "a list of var names"),
        "max_retry_wait" => (is::<String>(v), "a duration such as `5m`"),
        "max_response_size" => (is::<MaxSize>(v), "a size such as `8MB` or a byte count"),
        "max_items" => (is::<u64>(v), "a whole number ≥ 1"),
        "retry" => (
            v.is_mapping(),
            "a mapping of attempts, backoff, max_backoff",
        ),
        _ => (true, ""),
    };
    (!ok).then_some(expected)
}

/// A short rendering of a YAML value for messages.
fn show(v: &Yaml) -> String {
    let text = match v {
        Yaml::Null => "nothing".to_owned(),
        Yaml::String(s) => format!("`{s}`"),
        Yaml::Sequence(_) => "a list".to_owned(),
        Yaml::Mapping(_) => "a mapping".to_owned(),
        other => format!(
            "`{}`",
            serde_yaml::to_string(other).unwrap_or_default().trim()
        ),
    };
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(59).collect::<String>())
    } else {
        text
    }
}

impl Cx<'_> {
    fn at_key(&mut self, path: &str, message: impl Into<String>) -> &mut Diagnostic {
        let pos = self.positions.key_or_nearest(path);
        self.diags.push(diag(self.path, self.source, pos, message));
        self.diags.last_mut().expect("just pushed")
    }

    fn at_value(&mut self, path: &str, message: impl Into<String>) -> &mut Diagnostic {
        let pos = self.positions.value_or_nearest(path);
        self.diags.push(diag(self.path, self.source, pos, message));
        self.diags.last_mut().expect("just pushed")
    }

    /// `.nan`, `.inf` and `-.inf` anywhere: JSON has no such number, so they would silently
    /// become `null` (an omitted parameter); refused at their position instead.
    fn non_finite(&mut self, v: &Yaml, path: &str) {
        match v {
            Yaml::Number(n) if n.as_f64().is_some_and(|x| !x.is_finite()) => {
                self.at_value(
                    path,
                    format!("{n} is not a usable number: only finite numbers can be sent"),
                )
                .hint = Some("write a finite number such as `0` or `1.5`".into());
            }
            Yaml::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.non_finite(item, &join(path, &i.to_string()));
                }
            }
            Yaml::Mapping(map) => {
                for (k, item) in map {
                    let key = k.as_str().map_or_else(|| format!("{k:?}"), str::to_owned);
                    self.non_finite(item, &join(path, &key));
                }
            }
            Yaml::Tagged(t) => self.non_finite(&t.value, path),
            _ => {}
        }
    }

    /// Checks a mapping's keys against the allowed list; returns false if it is not a mapping.
    fn keys(&mut self, v: &Yaml, path: &str, what: &str, allowed: &[&str]) -> bool {
        let Some(map) = v.as_mapping() else {
            self.at_value(path, format!("{what} must be a mapping (key: value)"));
            return false;
        };
        for k in map.keys() {
            let Some(k) = k.as_str() else {
                self.at_value(path, format!("{what} has a key that is not a string"));
                continue;
            };
            if !allowed.contains(&k) {
                let hint = did_you_mean(k, allowed.iter().copied())
                    .unwrap_or_else(|| format!("expected one of: {}", allowed.join(", ")));
                let d = self.at_key(&join(path, k), format!("unknown key `{k}` in {what}"));
                *d = d.clone().with_hint(hint);
            }
        }
        true
    }

    /// The mapping without its fields of a wrong type, each reported at its value with what
    /// it accepts (a `retry` mapping is checked field by field too). An empty `with:` is none.
    fn fields(&mut self, v: &Yaml, path: &str) -> Yaml {
        let mut v = v.clone();
        let Some(m) = v.as_mapping_mut() else {
            return v;
        };
        let keys: Vec<Yaml> = m.keys().cloned().collect();
        for k in keys {
            let Some(name) = k.as_str().map(str::to_owned) else {
                continue;
            };
            let at = join(path, &name);
            if name == "with" && m.get(&k).is_some_and(Yaml::is_null) {
                m.remove(&k);
                continue;
            }
            let value = m.get(&k).cloned().unwrap_or(Yaml::Null);
            if let Some(expected) = accepted(&name, &value) {
                self.at_value(
                    &at,
                    format!(
                        "invalid `{name}`: expected {expected}, got {}",
                        show(&value)
                    ),
                );
                m.remove(&k);
            } else if name == "retry" {
                let inner = self.fields(&value, &at);
                m.insert(k, inner);
            }
        }
        v
    }

    /// Deserializes one value, reporting a type error at its position.
    fn typed<T: DeserializeOwned>(&mut self, v: &Yaml, path: &str, what: &str) -> Option<T> {
        match serde_yaml::from_value::<T>(v.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
                // Point at the named field when serde names one.
                let field_path = field_of(&msg).map_or_else(|| path.to_owned(), |f| join(path, f));
                self.at_value(&field_path, format!("invalid {what}: {msg}"));
                None
            }
        }
    }

    fn playbook(&mut self, doc: &Yaml) -> Option<Playbook> {
        if doc.is_null() {
            self.diags
                .push(Diagnostic::file(self.path, "the playbook is empty"));
            return None;
        }
        if !self.keys(doc, "", "the playbook", TOP_KEYS) {
            return None;
        }
        for required in ["version", "name", "steps"] {
            if doc.get(required).is_none() {
                let d = self.at_value("", format!("missing required key `{required}`"));
                *d = d.clone().with_hint(match required {
                    "version" => "add `version: 1`",
                    "name" => "add `name: my-playbook` (used in reports)",
                    _ => "add `steps:` with at least one step",
                });
            }
        }
        if let Some(v) = doc.get("version") {
            if v.as_u64() != Some(1) {
                self.at_value("version", "unsupported version").hint =
                    Some("only `version: 1` exists".into());
            }
        }
        let name = match doc.get("name") {
            Some(Yaml::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(_) => {
                self.at_value("name", "`name` must be a non-empty string");
                self.dropped = true;
                None
            }
            None => {
                self.dropped = true;
                None
            }
        };
        if doc.get("steps").is_none() || doc.get("version").is_none() {
            self.dropped = true;
        }
        let description = doc
            .get("description")
            .and_then(|d| self.typed::<String>(d, "description", "description"));
        let inputs = self.inputs(doc);
        let vars = doc
            .get("vars")
            .and_then(|v| self.typed(v, "vars", "vars"))
            .unwrap_or_default();
        let settings = match doc.get("settings") {
            Some(v) => {
                if self.keys(v, "settings", "settings", SETTINGS_KEYS) {
                    if let Some(r) = v.get("retry") {
                        self.keys(r, "settings.retry", "settings.retry", RETRY_KEYS);
                    }
                }
                let clean = self.fields(&known_only(v, SETTINGS_KEYS), "settings");
                self.typed::<Settings>(&clean, "settings", "settings")
                    .unwrap_or_default()
            }
            None => Settings::default(),
        };
        let steps = self.steps(doc);
        Some(Playbook {
            version: 1,
            name: name.unwrap_or_default(),
            description,
            inputs,
            vars,
            settings,
            steps,
        })
    }

    /// `inputs:`: each input's definition, its unknown keys and a missing `csv` reported.
    fn inputs(&mut self, doc: &Yaml) -> indexmap::IndexMap<String, InputDef> {
        let mut inputs = indexmap::IndexMap::new();
        if let Some(v) = doc.get("inputs") {
            if let Some(map) = v.as_mapping() {
                for (k, iv) in map {
                    let Some(k) = k.as_str() else { continue };
                    let p = join("inputs", k);
                    if self.keys(iv, &p, &format!("input `{k}`"), INPUT_KEYS) {
                        if iv.get("csv").is_none() {
                            self.at_key(&p, format!("input `{k}` has no `csv` file"))
                                .hint = Some(
                                "add `csv: path/to/file.csv` (relative to the playbook)".into(),
                            );
                        } else if let Some(def) = {
                            let clean = self.fields(&known_only(iv, INPUT_KEYS), &p);
                            self.typed(&clean, &p, &format!("input `{k}`"))
                        } {
                            inputs.insert(k.to_owned(), def);
                        }
                    }
                }
            } else {
                self.at_value("inputs", "`inputs` must be a mapping of input names");
            }
        }
        inputs
    }

    /// `steps:`: each step, and each `parallel` group of steps.
    fn steps(&mut self, doc: &Yaml) -> Vec<StepDef> {
        let mut steps = Vec::new();
        match doc.get("steps") {
            Some(Yaml::Sequence(seq)) => {
                if seq.is_empty() {
                    self.at_value("steps", "`steps` is empty").hint =
                        Some("add at least one step".into());
                }
                for (i, sv) in seq.iter().enumerate() {
                    let p = join("steps", &i.to_string());
                    if let Some(par) = sv.get("parallel") {
                        if self.keys(sv, &p, "a parallel group", &["parallel"]) {
                            let pp = join(&p, "parallel");
                            match par.as_sequence() {
                                Some(list) if !list.is_empty() => {
                                    let group: Vec<Step> = list
                                        .iter()
                                        .enumerate()
                                        .filter_map(|(j, s)| {
                                            self.step(s, &join(&pp, &j.to_string()))
                                        })
                                        .collect();
                                    steps.push(StepDef::Parallel(ParallelDef { parallel: group }));
                                }
                                _ => {
                                    self.at_value(
                                        &pp,
                                        "`parallel` must be a non-empty list of steps",
                                    );
                                    self.dropped = true;
                                }
                            }
                        } else {
                            self.dropped = true;
                        }
                    } else if let Some(step) = self.step(sv, &p) {
                        steps.push(StepDef::Step(Box::new(step)));
                    }
                }
            }
            Some(_) => {
                self.at_value("steps", "`steps` must be a list of steps");
                self.dropped = true;
            }
            None => {}
        }
        steps
    }

    fn step(&mut self, v: &Yaml, path: &str) -> Option<Step> {
        let step = self.step_inner(v, path);
        if step.is_none() {
            self.dropped = true;
        }
        step
    }

    fn step_inner(&mut self, v: &Yaml, path: &str) -> Option<Step> {
        if !self.keys(v, path, "a step", STEP_KEYS) {
            return None;
        }
        if let Some(r) = v.get("retry") {
            self.keys(r, &join(path, "retry"), "retry", RETRY_KEYS);
        }
        if v.get("id").is_none() {
            self.at_value(path, "step has no `id`").hint =
                Some("add `id: my_step` (unique, [a-z][a-z0-9_]*)".into());
            return None;
        }
        // Nested steps are parsed one by one so that each problem points at its own step.
        let mut own = known_only(v, STEP_KEYS);
        let children = own.as_mapping_mut().and_then(|m| m.remove("steps"));
        // Each field on its own: a wrong value is reported at it, and the step is kept without
        // it so that every other check still runs.
        let own = self.fields(&own, path);
        own.get("id")?;
        let mut step: Step = self.typed(&own, path, "step")?;
        if let Some(children) = children {
            let cp = join(path, "steps");
            match children.as_sequence() {
                Some(seq) => {
                    for (i, c) in seq.iter().enumerate() {
                        if let Some(s) = self.step(c, &join(&cp, &i.to_string())) {
                            step.steps.push(s);
                        }
                    }
                }
                None => {
                    self.at_value(&cp, "`steps` must be a list of steps");
                }
            }
        }
        Some(step)
    }
}

/// The value without the keys that are not allowed (already reported), so that serde's own
/// unknown-field error does not report them twice.
fn known_only(v: &Yaml, allowed: &[&str]) -> Yaml {
    let mut v = v.clone();
    if let Some(m) = v.as_mapping_mut() {
        m.retain(|k, _| k.as_str().is_some_and(|k| allowed.contains(&k)));
        if let Some(r) = m.get_mut("retry") {
            if let Some(rm) = r.as_mapping_mut() {
                rm.retain(|k, _| k.as_str().is_some_and(|k| RETRY_KEYS.contains(&k)));
            }
        }
    }
    v
}

/// The field a serde message names, e.g. "concurrency: invalid type…" or "… field `id`".
fn field_of(msg: &str) -> Option<&str> {
    let head = msg.split(": ").next()?;
    if !head.contains(' ') && head != msg {
        return Some(head.split('.').next().unwrap_or(head));
    }
    None
}

/// Parses a YAML scalar given on the command line (`--var KEY=VALUE`) into JSON.
pub(crate) fn parse_scalar(text: &str) -> serde_json::Value {
    match serde_yaml::from_str::<serde_json::Value>(text) {
        Ok(v @ (serde_json::Value::Bool(_) | serde_json::Value::Number(_))) => v,
        _ => serde_json::Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(src: &str) -> Result<Loaded, Vec<Diagnostic>> {
        load_str(Path::new("p.yaml"), src.to_owned())
    }

    #[test]
    fn loads_a_minimal_playbook() {
        let l = load_text("version: 1\nname: x\nsteps:\n  - id: a\n    action: session.get\n    with: {session_id: abc}\n")
            .unwrap();
        assert_eq!(l.playbook.steps.len(), 1);
        assert_eq!(l.sha256.len(), 64);
    }

    #[test]
    fn reports_every_unknown_key_with_position() {
        let e = load_text(
            "version: 1\nname: x\nsetings: {}\nsteps:\n  - id: a\n    actoin: session.get\n",
        )
        .unwrap_err();
        assert_eq!(e.len(), 2, "{e:#?}");
        assert_eq!((e[0].line, e[0].column), (3, 1));
        assert_eq!(e[0].hint.as_deref(), Some("did you mean `settings`?"));
        assert_eq!((e[1].line, e[1].column), (6, 5));
        assert_eq!(e[1].hint.as_deref(), Some("did you mean `action`?"));
    }

    #[test]
    fn syntax_error_and_tabs() {
        let e = load_text("version: 1\nsteps:\n\t- id: a\n").unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 3);
        assert_eq!(
            e[0].hint.as_deref(),
            Some("YAML indentation must use spaces, not tabs")
        );
    }

    #[test]
    fn every_wrong_value_is_named_and_the_step_kept() {
        let (loaded, e) = load_partial(
            Path::new("p.yaml"),
            "version: 1\nname: x\nsettings:\n  max_failures: [1]\n  retry: { attempts: many }\nsteps:\n  - id: a\n    action: session.list\n    paginate: everything\n    concurrency: -1\n  - id: b\n    action: session.get\n    on_error: carry_on\n    with:\n"
                .to_owned(),
        );
        let messages: Vec<String> = e
            .iter()
            .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
            .collect();
        assert_eq!(
            messages,
            [
                "4:17 invalid `max_failures`: expected a count (`10`) or a percentage of the step's items (`5%`), got a list",
                "5:22 invalid `attempts`: expected a whole number of tries ≥ 1, got `many`",
                "9:15 invalid `paginate`: expected `all` or a page count (a whole number ≥ 1), got `everything`",
                "10:18 invalid `concurrency`: expected a whole number ≥ 1, got `-1`",
                "13:15 invalid `on_error`: expected `continue` or `stop`, got `carry_on`",
            ]
        );
        let loaded = loaded.expect("the steps are kept for the other checks");
        assert_eq!(loaded.playbook.steps.len(), 2);
    }

    #[test]
    fn type_error_points_at_field() {
        let e = load_text("version: 1\nname: x\nsettings:\n  concurrency: lots\nsteps:\n  - id: a\n    action: session.get\n")
            .unwrap_err();
        assert_eq!(e.len(), 1, "{e:#?}");
        assert_eq!(e[0].line, 4, "{}", e[0]);
    }
}
