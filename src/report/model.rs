//! The report's data model (README, "How a run behaves": Report): what goes into a run report and what `--resume`
//! and scripts read back. Field names are a contract; more fields may be added, none renamed.
//!
//! In: values built by the scheduler (header at start, one [`ItemRecord`] per finished item,
//! footer at the end). Out: serde JSON, and the JSON Schema of the whole document
//! ([`report_schema`]), generated from [`Report`].
//!
//! The file is written incrementally (see `writer.rs`), so the header, the items and the
//! footer are separate types; [`Report`] glues them into the full document shape and is used
//! only for the schema and for tests that parse a finished report in one go.

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::catalog::{HttpRequest, Method};

/// The report format this crate writes and reads.
pub const FORMAT: u32 = 1;

/// `tool` field value: `wts-playbook <crate version>`.
pub const TOOL: &str = concat!("wts-playbook ", env!("CARGO_PKG_VERSION"));

/// Which playbook ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlaybookRef {
    /// The playbook's `name`.
    pub name: String,
    /// The playbook file as given on the command line.
    pub path: String,
    /// Hex SHA-256 of the playbook file's bytes.
    pub sha256: String,
}

/// Everything known when the run starts: line 1 of the report file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReportHeader {
    /// Report format version, [`FORMAT`].
    pub format: u32,
    /// `wts-playbook <version>`.
    pub tool: String,
    pub run_id: String,
    pub playbook: PlaybookRef,
    pub dry_run: bool,
    /// RFC 3339, UTC, second precision (`2026-11-25T10:00:00Z`).
    #[serde(serialize_with = "ser_timestamp")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub started_at: Timestamp,
    /// The run's effective settings (secrets already redacted by the caller).
    pub settings: Value,
    /// What deserves a look although it is not an error (an input with a header but no rows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// A resumed run: when the first run of this logical run started (the earliest start among
    /// the reports it continues). Verification reads look for effects since then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub logical_started_at: Option<Timestamp>,
    /// A resumed run: the reports it continues (`--resume`), in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_from: Vec<String>,
    /// The API base URL the run sends to (`WTS_BASE_URL`, or the in-process sandbox's
    /// loopback URL with `--sandbox`); a dry run names the one it would use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// A run over several accounts (`--accounts`): the part report of this one account
    /// (`REPORT.accounts/NAME.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The report of a run over several accounts: its accounts, in the accounts file's order
    /// (each item names its own in `account`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountRef>,
    /// `--shard I/N`: the shard of the accounts file this run ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// `wts-playbook report --merge`: the reports joined into this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    /// `apply`: the plan applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanRef>,
}

/// The plan an `apply` run sends (README, "Plan and apply").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlanRef {
    pub plan_id: String,
    /// The plan's hash (its trailer's chain).
    pub hash: String,
    pub path: String,
    /// Writes the plan holds: applied (succeeded) + unchanged + drifted + failed + unknown.
    pub planned: u64,
}

/// One account of a run over several accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccountRef {
    /// Its `name` in the accounts file.
    pub name: String,
    /// The API base URL its requests go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// How one account's part of a run over several accounts ended (the footer's `per_account`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccountFacts {
    pub outcome: Outcome,
    pub totals: Totals,
    /// Why this account stopped (a 401, its failure budget, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_reason: Option<String>,
    /// Its responses answered 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limited: Option<u64>,
    /// Its wall-clock duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl ReportHeader {
    /// A header with `format` and `tool` filled in.
    pub fn new(
        run_id: impl Into<String>,
        playbook: PlaybookRef,
        dry_run: bool,
        started_at: Timestamp,
        settings: Value,
    ) -> Self {
        ReportHeader {
            format: FORMAT,
            tool: TOOL.to_owned(),
            run_id: run_id.into(),
            playbook,
            dry_run,
            started_at,
            settings,
            warnings: Vec::new(),
            logical_started_at: None,
            resumed_from: Vec::new(),
            base_url: None,
            account: None,
            accounts: Vec::new(),
            shard: None,
            merged_from: Vec::new(),
            plan: None,
        }
    }
}

/// What happened to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Dry run: the request was rendered, not sent.
    Planned,
    Succeeded,
    Failed,
    /// Not sent: `when` was false, or `--resume` found it done (see `reason`).
    Skipped,
    /// A non-idempotent request whose result cannot be known: it may have happened.
    Unknown,
    /// The API answered that the object was already in the requested state (the catalog lists
    /// those answers per action): not a failure, and not among the step's `succeeded`.
    Unchanged,
    /// `apply`: a planned write not sent because its object left the listing, or the fields
    /// its `when` or templates read changed since the plan (see `reason`).
    Drifted,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Planned => "planned",
            ItemStatus::Succeeded => "succeeded",
            ItemStatus::Failed => "failed",
            ItemStatus::Skipped => "skipped",
            ItemStatus::Unknown => "unknown",
            ItemStatus::Unchanged => "unchanged",
            ItemStatus::Drifted => "drifted",
        }
    }

    /// Failed, or of unknown outcome: what the failure budget and `--failed-csv` count.
    pub fn is_failure(self) -> bool {
        matches!(self, ItemStatus::Failed | ItemStatus::Unknown)
    }
}

/// How the run as a whole ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step ran to the end (items may still have failed: see `totals`).
    Completed,
    /// The run finished but some items failed.
    Failed,
    /// Stopped early: authentication refused, interrupted, failure budget exceeded.
    Aborted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Aborted => "aborted",
        }
    }
}

/// The request as sent (or, in a dry run, as it would be sent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestRecord {
    #[serde(deserialize_with = "de_method")]
    pub method: Method,
    /// Path plus percent-encoded query string, without scheme and host.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

impl From<&HttpRequest> for RequestRecord {
    fn from(req: &HttpRequest) -> Self {
        RequestRecord {
            method: req.method,
            path: req.path_and_query(),
            body: req.body.clone(),
        }
    }
}

/// The response's status and, when the runner passes it (non-2xx), its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResponseRecord {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// Names an item of another step (the fan-out item a nested step's item belongs to).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ItemRef {
    pub step: String,
    pub index: u64,
}

/// One finished item: one line of the report's `items` array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ItemRecord {
    /// The step id.
    pub step: String,
    /// Position in the step's fan-out (0 for a step without fan-out).
    pub index: u64,
    /// The input's key column value, or the row number.
    pub key: String,
    /// A run over several accounts: the account the item ran for (step and key are unique
    /// within an account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub status: ItemStatus,
    /// Requests sent for this item (0 when skipped or planned).
    pub attempts: u32,
    pub duration_ms: u64,
    /// When the item started (RFC 3339, UTC, millisecond precision).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_timestamp_ms_opt"
    )]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseRecord>,
    /// Human-readable reason for `failed` / `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the item has its status: `when` false, carried over from an earlier report, the
    /// earlier attempt found to have worked, verified, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Line of the CSV row this item came from (1-based, header is line 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// For a nested step's item: the fan-out item it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ItemRef>,
    /// The step's output for this item (the response body), recorded when a later step or a
    /// later nested step reads it, so that `--resume` can hand it on; secrets redacted. Outputs
    /// over [`OUTPUT_CAP`] bytes are not recorded (`output_omitted` says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// The output was needed downstream but was larger than [`OUTPUT_CAP`] bytes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub output_omitted: bool,
    /// Carried over from an earlier report of the same logical run (`--resume`): this run did
    /// not send it; the record is the earlier run's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub carried: bool,
    /// What a verification read found for an item whose outcome was unknown (for example the
    /// message found in the session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Value>,
    /// `apply`: the planned write's sequence number in the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// The largest output (serialised JSON bytes) an item record keeps for `--resume`.
pub const OUTPUT_CAP: usize = 64 * 1024;

impl ItemRecord {
    /// An item with only the identifying fields and status; the rest empty.
    pub fn new(
        step: impl Into<String>,
        index: u64,
        key: impl Into<String>,
        status: ItemStatus,
    ) -> Self {
        ItemRecord {
            step: step.into(),
            index,
            key: key.into(),
            account: None,
            status,
            attempts: 0,
            duration_ms: 0,
            started_at: None,
            request: None,
            response: None,
            error: None,
            reason: None,
            line: None,
            parent: None,
            output: None,
            output_omitted: false,
            carried: false,
            evidence: None,
            seq: None,
        }
    }
}

/// Item counts by status.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Totals {
    pub planned: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
    pub unknown: u64,
    /// Already in the requested state (absent in reports of earlier versions).
    #[serde(default)]
    pub unchanged: u64,
    /// `apply`: planned writes skipped because their object drifted (absent when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drifted: u64,
}

impl Totals {
    /// Counts one item of this status.
    pub fn add(&mut self, status: ItemStatus) {
        let slot = match status {
            ItemStatus::Planned => &mut self.planned,
            ItemStatus::Succeeded => &mut self.succeeded,
            ItemStatus::Failed => &mut self.failed,
            ItemStatus::Skipped => &mut self.skipped,
            ItemStatus::Unknown => &mut self.unknown,
            ItemStatus::Unchanged => &mut self.unchanged,
            ItemStatus::Drifted => &mut self.drifted,
        };
        *slot += 1;
    }

    /// Adds another set of counts to this one.
    pub fn merge(&mut self, other: &Totals) {
        self.planned += other.planned;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.unknown += other.unknown;
        self.unchanged += other.unchanged;
        self.drifted += other.drifted;
    }

    /// Takes one item of this status off the counts (its record was superseded).
    pub fn remove(&mut self, status: ItemStatus) {
        let slot = match status {
            ItemStatus::Planned => &mut self.planned,
            ItemStatus::Succeeded => &mut self.succeeded,
            ItemStatus::Failed => &mut self.failed,
            ItemStatus::Skipped => &mut self.skipped,
            ItemStatus::Unknown => &mut self.unknown,
            ItemStatus::Unchanged => &mut self.unchanged,
            ItemStatus::Drifted => &mut self.drifted,
        };
        *slot = slot.saturating_sub(1);
    }

    /// Items counted, all statuses.
    pub fn total(&self) -> u64 {
        self.planned
            + self.succeeded
            + self.failed
            + self.skipped
            + self.unknown
            + self.unchanged
            + self.drifted
    }

    /// The count for one status.
    pub fn get(&self, status: ItemStatus) -> u64 {
        match status {
            ItemStatus::Planned => self.planned,
            ItemStatus::Succeeded => self.succeeded,
            ItemStatus::Failed => self.failed,
            ItemStatus::Skipped => self.skipped,
            ItemStatus::Unknown => self.unknown,
            ItemStatus::Unchanged => self.unchanged,
            ItemStatus::Drifted => self.drifted,
        }
    }
}

/// Written once the run has ended: the last line of the report file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReportFooter {
    /// RFC 3339, UTC, second precision.
    #[serde(serialize_with = "ser_timestamp")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub finished_at: Timestamp,
    pub outcome: Outcome,
    pub totals: Totals,
    /// What the run measured: durations, 429s, retries and pauses, the abort reason.
    #[serde(flatten)]
    pub run: RunFacts,
    /// A run over several accounts: how each account's part ended, by name (`outcome` and
    /// `totals` above are the whole run's).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub per_account: std::collections::BTreeMap<String, AccountFacts>,
}

/// The run's measurements, written in the footer (all optional: a report of an older
/// version, or of a run stopped before its first item, has none of them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunFacts {
    /// Wall-clock duration of the whole run, from the header's `started_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Responses answered 429 (rate limited) during the run; each was retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limited: Option<u64>,
    /// Why the run was aborted (with `outcome: aborted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_reason: Option<String>,
    /// One entry per action step, in playbook order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepFacts>,
    /// Retries and pauses in time order (at most [`MAX_EVENTS`]; see `events_dropped`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<RunEvent>,
    /// Events left out because there were more than [`MAX_EVENTS`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub events_dropped: u64,
    /// `apply`: the planned writes by status (the write steps' items, reads and writes not in
    /// the plan left out): `succeeded + unchanged + drifted + failed + unknown` is the plan's
    /// `planned`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_totals: Option<Totals>,
}

/// The most retry and pause events a report keeps.
pub const MAX_EVENTS: usize = 10_000;

/// One step's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepFacts {
    /// The step id.
    pub id: String,
    /// When its first item started (absent if none ran).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_timestamp_ms_opt"
    )]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub started_at: Option<Timestamp>,
    /// From its first item's start to its last item's end.
    pub duration_ms: u64,
    /// Requests sent for its items (retries included).
    pub requests: u64,
    pub totals: Totals,
}

/// What a retry or a pause event was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A request is sent again after `wait_ms`.
    Retry,
    /// The whole run paused for `wait_ms` (after a 429).
    Pause,
}

/// A retry or a pause, for the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunEvent {
    /// When it happened (RFC 3339, UTC, millisecond precision).
    #[serde(serialize_with = "ser_timestamp_ms")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub at: Timestamp,
    pub kind: EventKind,
    pub step: String,
    /// The item's key (redacted like everywhere).
    pub key: String,
    /// The status that caused it (429, 5xx), absent for a transport failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `rate_limited`, `server_error`, `timeout`, `connection`, ...
    pub cause: String,
    pub wait_ms: u64,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if signature"
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The whole report document, as one value. The writer never builds this (it streams the
/// parts); it exists for the JSON Schema and for tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(title = "wts-playbook run report")]
pub struct Report {
    #[serde(flatten)]
    pub header: ReportHeader,
    pub items: Vec<ItemRecord>,
    #[serde(flatten)]
    pub footer: ReportFooter,
}

/// The JSON Schema of a finished report (`wts-playbook schema report`).
pub fn report_schema() -> Value {
    schemars::schema_for!(Report).to_value()
}

/// Timestamps are written as `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds); any RFC 3339
/// timestamp is accepted when reading.
fn ser_timestamp<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&ts.strftime("%Y-%m-%dT%H:%M:%SZ"))
}

fn ser_timestamp_ms<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))
}

#[expect(clippy::ref_option, reason = "serde's serialize_with signature")]
fn ser_timestamp_ms_opt<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match ts {
        Some(ts) => ser_timestamp_ms(ts, s),
        None => s.serialize_none(),
    }
}

/// `Method` is shared with the catalog and only `Serialize`; read it back case-insensitively.
fn de_method<'de, D: Deserializer<'de>>(d: D) -> Result<Method, D::Error> {
    let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
    Method::parse(&s).ok_or_else(|| {
        serde::de::Error::custom(format_args!(
            "unknown HTTP method `{s}` (expected GET, POST, PUT, DELETE or PATCH)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_serialises_in_contract_order_and_skips_absent_fields() {
        let mut item = ItemRecord::new("close", 0, "9f1c", ItemStatus::Succeeded);
        item.attempts = 1;
        item.duration_ms = 212;
        item.request = Some(RequestRecord {
            method: Method::Put,
            path: "/chat/v1/session/9f1c/complete".into(),
            body: Some(serde_json::json!({"stopBotInExecution": true})),
        });
        item.response = Some(ResponseRecord {
            status: 200,
            body: None,
        });
        let s = serde_json::to_string(&item).unwrap();
        assert_eq!(
            s,
            r#"{"step":"close","index":0,"key":"9f1c","status":"succeeded","attempts":1,"duration_ms":212,"request":{"method":"PUT","path":"/chat/v1/session/9f1c/complete","body":{"stopBotInExecution":true}},"response":{"status":200}}"#
        );
        let back: ItemRecord = serde_json::from_str(&s).unwrap();
        assert_eq!(back, item);
    }

    #[test]
    fn method_is_read_case_insensitively_and_rejects_unknown() {
        let r: RequestRecord = serde_json::from_str(r#"{"method":"post","path":"/x"}"#).unwrap();
        assert_eq!(r.method, Method::Post);
        let err = serde_json::from_str::<RequestRecord>(r#"{"method":"BREW","path":"/x"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown HTTP method `BREW`"), "{err}");
    }

    #[test]
    fn header_timestamp_is_whole_seconds_utc() {
        let ts: Timestamp = "2026-11-25T10:00:00.123456Z".parse().unwrap();
        let h = ReportHeader::new(
            "r1",
            PlaybookRef {
                name: "n".into(),
                path: "p.yaml".into(),
                sha256: "00".into(),
            },
            false,
            ts,
            serde_json::json!({}),
        );
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(v["started_at"], "2026-11-25T10:00:00Z");
        assert_eq!(v["format"], 1);
        assert_eq!(
            v["tool"],
            format!("wts-playbook {}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn totals_count_each_status() {
        let mut t = Totals::default();
        for s in [
            ItemStatus::Planned,
            ItemStatus::Succeeded,
            ItemStatus::Succeeded,
            ItemStatus::Failed,
            ItemStatus::Skipped,
            ItemStatus::Unknown,
        ] {
            t.add(s);
        }
        assert_eq!(
            t,
            Totals {
                planned: 1,
                succeeded: 2,
                failed: 1,
                skipped: 1,
                unknown: 1,
                unchanged: 0,
                drifted: 0,
            }
        );
        assert_eq!(t.total(), 6);
        assert_eq!(t.get(ItemStatus::Succeeded), 2);
        let mut u = t;
        u.merge(&t);
        assert_eq!(u.total(), 12);
    }

    #[test]
    fn schema_requires_the_contract_fields() {
        let schema = report_schema();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for key in [
            "format",
            "tool",
            "run_id",
            "playbook",
            "dry_run",
            "started_at",
            "settings",
            "items",
            "finished_at",
            "outcome",
            "totals",
        ] {
            assert!(required.contains(&key), "{key} not required: {required:?}");
        }
        assert_eq!(schema["properties"]["started_at"]["format"], "date-time");
    }
}
