//! Between the scheduler and the plan file: what `plan` captures of each write instead of
//! sending it ([`Capture`]), and what `apply` decides for each write the playbook reaches
//! ([`ApplyIndex`]: send it, it drifted, or it is not in the plan).
//!
//! In: the scheduler's items (step, key, context, rendered request). Out: [`PlannedWrite`]s
//! (secrets as references) and per-item decisions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use minijinja::Value as JValue;
use serde_json::Value;

use super::{Dependency, Idempotency, Plan, PlannedWrite, WriteSource};
use crate::catalog::{ActionSpec, HttpRequest};
use crate::program::{Program, Source, StepKind, StepPlan};
use crate::secret::Redactor;

/// One write `plan` rendered and did not send.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub(crate) step: String,
    pub(crate) index: u64,
    pub(crate) key: String,
    pub(crate) spec: &'static ActionSpec,
    /// The request as rendered (secrets in the clear: redacted when it becomes a plan line).
    pub(crate) request: HttpRequest,
    pub(crate) idempotent: bool,
    /// Rendered values that read a secret through a filter (redacted as a whole).
    pub(crate) secret_forms: Vec<String>,
    /// The item's fields its `when` and templates read.
    pub(crate) reads: BTreeMap<String, Value>,
    pub(crate) source: WriteSource,
}

/// How the scheduler treats writes and reads in a `plan` or an `apply`.
#[derive(Debug, Clone)]
pub(crate) enum PlanMode {
    /// `plan` (and apply's refresh): reads are sent, writes captured instead.
    Plan(std::sync::Arc<Capture>),
    /// `apply`: only planned writes are sent; reads come from the refresh when it had them.
    Apply(std::sync::Arc<ApplyIndex>),
}

/// The writes of a `plan` (or of apply's refresh), collected as the scheduler renders them.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    writes: Mutex<Vec<Captured>>,
    /// Outputs of the reads, by step, key and parameters, for apply to reuse after its refresh.
    reads: Mutex<HashMap<(String, String, String), Value>>,
    /// `--read-budget`: requests the reads may spend.
    pub(crate) budget: Option<u64>,
    sent: std::sync::atomic::AtomicU64,
}

impl Capture {
    pub(crate) fn with_budget(budget: Option<u64>) -> Capture {
        Capture {
            budget,
            ..Capture::default()
        }
    }

    /// Takes one request of the read budget; `false` once it is spent.
    pub(crate) fn take_read(&self) -> bool {
        use std::sync::atomic::Ordering;
        let n = self.sent.fetch_add(1, Ordering::SeqCst);
        if self.budget.is_some_and(|b| n >= b) {
            self.sent.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Requests the reads have spent.
    pub(crate) fn reads_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn push(&self, c: Captured) {
        self.writes.lock().expect("capture lock").push(c);
    }

    pub(crate) fn read_done(&self, step: &str, key: &str, params: &str, output: Value) {
        self.reads
            .lock()
            .expect("capture lock")
            .insert((step.to_owned(), key.to_owned(), params.to_owned()), output);
    }

    pub(crate) fn into_parts(self) -> (Vec<Captured>, ReadCache) {
        (
            self.writes.into_inner().expect("capture lock"),
            ReadCache(self.reads.into_inner().expect("capture lock")),
        )
    }
}

/// The answers to apply's refresh reads: the real run that follows takes them from here, so a
/// listing is read once per apply.
#[derive(Debug, Default)]
pub(crate) struct ReadCache(HashMap<(String, String, String), Value>);

impl ReadCache {
    /// The answer to the read of this step's item with these rendered parameters (JSON text).
    pub(crate) fn get(&self, step: &str, key: &str, params: &str) -> Option<&Value> {
        self.0
            .get(&(step.to_owned(), key.to_owned(), params.to_owned()))
    }
}

/// The fields of an item a step reads: every `item.…` and `row.…` path its `when`, its `with`
/// templates and the templated vars it uses read. A change to one of them since the plan makes
/// the write `drifted`.
pub(crate) fn fields_read(program: &Program, step: &StepPlan) -> Vec<String> {
    let mut vars = std::collections::BTreeSet::new();
    if let Some(w) = &step.when {
        vars.extend(w.variables());
    }
    if let StepKind::Action { with, .. } = &step.kind {
        for (_, t) in with {
            vars.extend(t.variables());
        }
    }
    for name in &step.vars_used {
        if let Some(t) = program.template_vars.get(name) {
            vars.extend(t.variables());
        }
    }
    vars.into_iter()
        .filter(|v| v.starts_with("item.") || v.starts_with("row."))
        .collect()
}

/// The values of those fields in an item's context (absent ones as `null`).
pub(crate) fn field_values(paths: &[String], ctx: &JValue) -> BTreeMap<String, Value> {
    paths
        .iter()
        .map(|p| {
            let mut v = ctx.clone();
            for seg in p.split('.') {
                v = v.get_attr(seg).unwrap_or(JValue::UNDEFINED);
            }
            let json = if v.is_undefined() {
                Value::Null
            } else {
                crate::template::to_json(&v)
            };
            (p.clone(), json)
        })
        .collect()
}

/// Where a step's items come from, as a plan line names it.
pub(crate) fn source_of(program: &Program, step: &StepPlan, line: Option<u64>) -> WriteSource {
    match &step.source {
        Source::Single => WriteSource::default(),
        Source::Input(name) => WriteSource {
            input: Some(name.clone()),
            line,
            ..WriteSource::default()
        },
        Source::Expr { expr, row_input } => {
            // `steps.pending.output.items` → the step `pending`.
            let read = expr.variables().into_iter().find_map(|v| {
                v.strip_prefix("steps.")
                    .map(|r| r.split('.').next().unwrap_or(r).to_owned())
            });
            let action = read.as_ref().and_then(|id| {
                program
                    .all_steps()
                    .into_iter()
                    .find(|s| &s.id == id)
                    .and_then(|s| match &s.kind {
                        StepKind::Action { spec, .. } => Some(spec.name.to_owned()),
                        StepKind::Pipeline(_) => None,
                    })
            });
            WriteSource {
                step: read,
                action,
                input: row_input.clone(),
                line,
            }
        }
    }
}

/// The plan lines of the captured writes, in step order then item order. Secrets (the program's
/// and what read one through a filter) become `[redacted]` references.
pub(crate) fn planned_writes(program: &Program, mut captured: Vec<Captured>) -> Vec<PlannedWrite> {
    let order: HashMap<String, usize> = program
        .all_steps()
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect();
    captured.sort_by(|a, b| {
        (order.get(&a.step), a.index, &a.key).cmp(&(order.get(&b.step), b.index, &b.key))
    });
    let base = program.secrets.clone();
    let mut out: Vec<PlannedWrite> = Vec::with_capacity(captured.len());
    let mut seq_of: HashMap<(String, String), u64> = HashMap::new();
    for (i, c) in captured.into_iter().enumerate() {
        let mut w = redact_secrets(c, &base);
        w.seq = i as u64 + 1;
        w.depends_on = dependencies(&w.request())
            .into_iter()
            .map(|value| {
                let step = value
                    .strip_prefix("steps.")
                    .and_then(|r| r.split('.').next())
                    .unwrap_or_default()
                    .to_owned();
                // The same item's write of that step, or the one write of a step without
                // fan-out (it answers every item of a later step).
                let seq = seq_of
                    .get(&(step.clone(), w.key.clone()))
                    .or_else(|| seq_of.get(&(step.clone(), "0".to_owned())))
                    .copied();
                Dependency { value, step, seq }
            })
            .collect();
        seq_of.insert((w.step.clone(), w.key.clone()), w.seq);
        out.push(w);
    }
    out
}

/// One captured write as a plan line (sequence number and dependencies not yet set): every
/// secret (the program's, and what read one through a filter, as a whole) is `[redacted]` in
/// its path, query, body and the fields it read.
fn redact_secrets(c: Captured, secrets: &[String]) -> PlannedWrite {
    let mut all = secrets.to_vec();
    all.extend(c.secret_forms.iter().cloned());
    let redactor = Redactor::new(all);
    let mut req = c.request;
    let before = serde_json::to_string(&req).unwrap_or_default();
    req.path = redactor.redact(&req.path).into_owned();
    for (_, v) in &mut req.query {
        *v = redactor.redact(v).into_owned();
    }
    if let Some(b) = &mut req.body {
        redactor.redact_json(b);
    }
    let secret = serde_json::to_string(&req).unwrap_or_default() != before;
    let mut reads = c.reads;
    for v in reads.values_mut() {
        redactor.redact_json(v);
    }
    let idempotency = if c.idempotent {
        Idempotency::RetrySafe
    } else if crate::catalog::outcomes(c.spec).verify.is_none() {
        Idempotency::Once
    } else {
        Idempotency::Verified
    };
    PlannedWrite {
        seq: 0,
        step: c.step,
        key: c.key,
        action: c.spec.name.to_owned(),
        method: req.method,
        path: req.path,
        query: req.query,
        body: req.body,
        idempotency,
        depends_on: Vec::new(),
        source: c.source,
        reads,
        secret,
    }
}

/// The "known after apply" values a request holds: `<steps.create.output.id>` → `steps.create.output.id`.
fn dependencies(req: &HttpRequest) -> Vec<String> {
    let mut texts = vec![req.path.clone()];
    texts.extend(req.query.iter().map(|(_, v)| v.clone()));
    if let Some(b) = &req.body {
        texts.push(b.to_string());
    }
    let mut out = Vec::new();
    for t in texts {
        let mut rest = t.as_str();
        while let Some(at) = rest.find("<steps.") {
            let tail = &rest[at + 1..];
            let Some(end) = tail.find('>') else { break };
            let v = tail[..end].to_owned();
            if !out.contains(&v) {
                out.push(v);
            }
            rest = &tail[end..];
        }
    }
    out
}

/// What apply does with one write the playbook reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The planned write `seq`: send it.
    Send(u64),
    /// The planned write `seq` drifted: not sent, recorded `drifted` with this reason.
    Drifted(u64, String),
    /// Not in the plan: never sent.
    NotPlanned,
}

/// The plan as apply consults it, item by item.
#[derive(Debug)]
pub(crate) struct ApplyIndex {
    pub(crate) plan: Plan,
    by_key: HashMap<(String, String), usize>,
    /// Writes found drifted by the refresh, with the reason.
    drifted: HashMap<u64, String>,
    /// Writes the run reached (sent, or recorded drifted).
    reached: Mutex<HashSet<u64>>,
    /// The refresh's answers, reused by the run.
    pub(crate) reads: ReadCache,
    /// Compare the fields each write read (off with `--no-refresh`).
    pub(crate) check_reads: bool,
}

impl ApplyIndex {
    pub(crate) fn new(plan: Plan) -> ApplyIndex {
        let by_key = plan
            .writes
            .iter()
            .enumerate()
            .map(|(i, w)| ((w.step.clone(), w.key.clone()), i))
            .collect();
        ApplyIndex {
            plan,
            by_key,
            drifted: HashMap::new(),
            reached: Mutex::new(HashSet::new()),
            reads: ReadCache::default(),
            check_reads: true,
        }
    }

    pub(crate) fn write(&self, step: &str, key: &str) -> Option<&PlannedWrite> {
        self.by_key
            .get(&(step.to_owned(), key.to_owned()))
            .map(|&i| &self.plan.writes[i])
    }

    pub(crate) fn seq_of(&self, step: &str, key: &str) -> Option<u64> {
        self.write(step, key).map(|w| w.seq)
    }

    /// Compares the refresh's writes with the plan: every planned write the refresh did not
    /// reach is gone from the listing (or its `when` is false now), every other one drifted
    /// when a field it read or its request changed. Returns how many drifted, not counting the
    /// ones `done` says an earlier apply already finished.
    pub(crate) fn refresh(
        &mut self,
        fresh: &[Captured],
        reads: ReadCache,
        done: impl Fn(&PlannedWrite) -> bool,
    ) -> u64 {
        let fresh: HashMap<(&str, &str), &Captured> = fresh
            .iter()
            .map(|c| ((c.step.as_str(), c.key.as_str()), c))
            .collect();
        let mut count = 0;
        for w in &self.plan.writes {
            if done(w) {
                continue;
            }
            let reason = match fresh.get(&(w.step.as_str(), w.key.as_str())) {
                None => Some(gone(w)),
                Some(c) => drift_of(w, &c.request, &c.reads),
            };
            if let Some(r) = reason {
                self.drifted.insert(w.seq, r);
                count += 1;
            }
        }
        self.reads = reads;
        count
    }

    /// The refresh's drifted writes, by sequence number.
    pub(crate) fn drifted(&self) -> &HashMap<u64, String> {
        &self.drifted
    }

    /// Decides one reached write: its fresh request and the fields it read now.
    pub(crate) fn decide(
        &self,
        step: &str,
        key: &str,
        fresh: &HttpRequest,
        reads: &BTreeMap<String, Value>,
    ) -> Decision {
        let Some(w) = self.write(step, key) else {
            return Decision::NotPlanned;
        };
        self.reached.lock().expect("reached lock").insert(w.seq);
        if let Some(r) = self.drifted.get(&w.seq) {
            return Decision::Drifted(w.seq, r.clone());
        }
        let reason = if self.check_reads {
            drift_of(w, fresh, reads)
        } else if super::request_matches(w, fresh) {
            None
        } else {
            Some(not_the_request(w))
        };
        match reason {
            Some(r) => Decision::Drifted(w.seq, r),
            None => Decision::Send(w.seq),
        }
    }

    /// A planned write whose `when` is false now: drifted (reached, not sent).
    pub(crate) fn when_false(&self, step: &str, key: &str, when: &str) -> Option<(u64, String)> {
        let w = self.write(step, key)?;
        self.reached.lock().expect("reached lock").insert(w.seq);
        let reason = self
            .drifted
            .get(&w.seq)
            .cloned()
            .unwrap_or_else(|| format!("drifted: `when: {when}` is false now; not sent"));
        Some((w.seq, reason))
    }

    /// Planned writes the run never reached: drifted (their item is gone).
    pub(crate) fn unreached(&self) -> Vec<(&PlannedWrite, String)> {
        let reached = self.reached.lock().expect("reached lock");
        self.plan
            .writes
            .iter()
            .filter(|w| !reached.contains(&w.seq))
            .map(|w| {
                let r = self.drifted.get(&w.seq).cloned().unwrap_or_else(|| gone(w));
                (w, r)
            })
            .collect()
    }
}

fn gone(w: &PlannedWrite) -> String {
    match &w.source.step {
        Some(s) => format!("drifted: no longer in the listing of `{s}` (or its `when` is now false); not sent"),
        None => "drifted: the playbook no longer reaches this item (or its `when` is now false); not sent".into(),
    }
}

fn not_the_request(w: &PlannedWrite) -> String {
    format!(
        "drifted: the request rendered now is not the planned one ({}); not sent",
        super::show::request_line(w)
    )
}

/// Why a planned write drifted, if it did: a field it read changed, or its request did.
pub(crate) fn drift_of(
    w: &PlannedWrite,
    fresh: &HttpRequest,
    reads: &BTreeMap<String, Value>,
) -> Option<String> {
    let mut changed = Vec::new();
    for (field, planned) in &w.reads {
        let now = reads.get(field).unwrap_or(&Value::Null);
        if !super::matches(planned, now) {
            changed.push(format!("`{field}` was {planned}, now {now}"));
        }
    }
    if !changed.is_empty() {
        return Some(format!("drifted: {}; not sent", changed.join(", ")));
    }
    (!super::request_matches(w, fresh)).then(|| not_the_request(w))
}

/// `--max-drift`: `10%` of the planned writes, or a count.
pub(crate) fn parse_max_drift(text: &str) -> Result<MaxDrift, String> {
    let t = text.trim();
    if let Some(p) = t.strip_suffix('%') {
        let v: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("--max-drift {text}: expected a percentage (10%) or a count"))?;
        if !(0.0..=100.0).contains(&v) {
            return Err(format!("--max-drift {text}: a percentage is 0%–100%"));
        }
        return Ok(MaxDrift::Percent(v));
    }
    t.parse()
        .map(MaxDrift::Count)
        .map_err(|_| format!("--max-drift {text}: expected a percentage (10%) or a count"))
}

/// How much drift apply accepts before it stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum MaxDrift {
    Percent(f64),
    Count(u64),
}

impl MaxDrift {
    /// Whether `drifted` of `planned` writes is past the bound.
    pub(crate) fn exceeded(self, drifted: u64, planned: u64) -> bool {
        match self {
            MaxDrift::Count(n) => drifted > n,
            #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
            MaxDrift::Percent(p) => planned > 0 && (drifted as f64) * 100.0 > p * planned as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planfile::tests_support::{header, write};
    use serde_json::json;

    fn captured(step: &str, key: &str, req: HttpRequest, status: &str) -> Captured {
        Captured {
            step: step.into(),
            index: 0,
            key: key.into(),
            spec: crate::catalog::lookup("session.transfer").unwrap(),
            request: req,
            idempotent: true,
            secret_forms: vec![],
            reads: BTreeMap::from([
                ("item.id".into(), json!(key)),
                ("item.status".into(), json!(status)),
            ]),
            source: WriteSource::default(),
        }
    }

    fn plan_of(keys: &[&str]) -> Plan {
        let writes = keys
            .iter()
            .map(|k| {
                let mut w = write("move", k, "session.transfer");
                w.reads.insert("item.status".into(), json!("PENDING"));
                w
            })
            .collect();
        Plan::new(header(jiff::Timestamp::now()), writes)
    }

    #[test]
    fn the_refresh_marks_gone_and_changed_writes_and_never_adds_one() {
        let plan = plan_of(&["a", "b", "c", "d"]);
        let req = |k: &str| plan.writes.iter().find(|w| w.key == k).unwrap().request();
        let fresh = vec![
            captured("move", "a", req("a"), "PENDING"),
            captured("move", "b", req("b"), "IN_PROGRESS"),
            // d is gone; e is new and never added.
            captured("move", "c", req("c"), "PENDING"),
            captured("move", "e", req("a"), "PENDING"),
        ];
        let mut idx = ApplyIndex::new(plan.clone());
        let n = idx.refresh(&fresh, ReadCache::default(), |_| false);
        assert_eq!(n, 2);
        let d = idx.drifted();
        assert!(
            d[&2].contains("`item.status` was \"PENDING\", now \"IN_PROGRESS\""),
            "{d:?}"
        );
        assert!(
            d[&4].contains("no longer in the listing of `pending`"),
            "{d:?}"
        );
        let reads = BTreeMap::from([
            ("item.id".into(), json!("a")),
            ("item.status".into(), json!("PENDING")),
        ]);
        assert_eq!(
            idx.decide("move", "a", &req("a"), &reads),
            Decision::Send(1)
        );
        assert!(matches!(
            idx.decide("move", "b", &req("b"), &reads),
            Decision::Drifted(2, _)
        ));
        assert_eq!(
            idx.decide("move", "e", &req("a"), &reads),
            Decision::NotPlanned
        );
        // A request that is not the planned one is never sent.
        let mut other = req("c");
        other.path.push('x');
        let reads_c = BTreeMap::from([
            ("item.id".into(), json!("c")),
            ("item.status".into(), json!("PENDING")),
        ]);
        assert!(matches!(
            idx.decide("move", "c", &other, &reads_c),
            Decision::Drifted(3, _)
        ));
        idx.check_reads = false;
        assert!(matches!(
            idx.decide("move", "c", &other, &reads_c),
            Decision::Drifted(3, _)
        ));
        let unreached: Vec<u64> = idx.unreached().iter().map(|(w, _)| w.seq).collect();
        assert_eq!(unreached, [4]);
        // Writes an earlier apply finished do not count.
        let mut again = ApplyIndex::new(plan_of(&["a", "b", "c", "d"]));
        assert_eq!(
            again.refresh(&fresh, ReadCache::default(), |w| w.key == "d"),
            1
        );
    }

    #[test]
    fn a_secret_becomes_a_reference_wherever_the_request_holds_it() {
        let mut c = captured(
            "move",
            "a",
            HttpRequest {
                method: crate::catalog::Method::Post,
                path: "/x/k3y-s3cret/y".into(),
                query: vec![("key".into(), "k3y-s3cret".into())],
                body: Some(json!({"text": "hello K3Y-S3CRET", "n": 1})),
            },
            "PENDING",
        );
        c.secret_forms = vec!["hello K3Y-S3CRET".into()];
        c.reads.insert("item.token".into(), json!("k3y-s3cret"));
        let w = redact_secrets(c, &["k3y-s3cret".to_owned()]);
        let text = serde_json::to_string(&w).unwrap();
        assert!(!text.to_lowercase().contains("s3cret"), "{text}");
        assert_eq!(w.path, "/x/[redacted]/y");
        assert_eq!(w.query[0].1, "[redacted]");
        assert_eq!(w.body.as_ref().unwrap()["text"], "[redacted]");
        assert!(w.secret);
        // And the plan matches what apply renders with the secret in the clear.
        let fresh = HttpRequest {
            method: crate::catalog::Method::Post,
            path: "/x/k3y-s3cret/y".into(),
            query: vec![("key".into(), "k3y-s3cret".into())],
            body: Some(json!({"text": "hello K3Y-S3CRET", "n": 1})),
        };
        assert!(crate::planfile::request_matches(&w, &fresh));
    }

    #[test]
    fn max_drift_is_a_percentage_or_a_count() {
        assert_eq!(parse_max_drift("10%"), Ok(MaxDrift::Percent(10.0)));
        assert_eq!(parse_max_drift("3"), Ok(MaxDrift::Count(3)));
        assert!(parse_max_drift("101%").is_err());
        assert!(parse_max_drift("lots").is_err());
        let ten = MaxDrift::Percent(10.0);
        assert!(!ten.exceeded(10, 100));
        assert!(ten.exceeded(11, 100));
        assert!(!ten.exceeded(0, 0));
        assert!(MaxDrift::Count(0).exceeded(1, 1000));
    }

    #[test]
    fn dependencies_are_the_placeholders_a_request_holds() {
        let req = HttpRequest {
            method: crate::catalog::Method::Post,
            path: "/crm/v1/panel/card/<steps.card.output.id>/note".into(),
            query: vec![],
            body: Some(json!({"text": "see <steps.card.output.number>"})),
        };
        assert_eq!(
            dependencies(&req),
            ["steps.card.output.id", "steps.card.output.number"]
        );
    }

    #[test]
    fn field_values_walk_the_context() {
        let ctx =
            minijinja::context! { item => minijinja::context! { id => "s1", status => "PENDING" } };
        let v = field_values(&["item.status".into(), "item.nope".into()], &ctx);
        assert_eq!(v["item.status"], json!("PENDING"));
        assert_eq!(v["item.nope"], Value::Null);
    }
}
