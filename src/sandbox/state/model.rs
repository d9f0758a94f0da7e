//! The simulated account's object types (sessions, contacts, messages, panels, cards, notes,
//! sequences, enrolments, files), the summary of what changed, and the lookup ids.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The account's company id (one account per sandbox).
pub(in crate::sandbox) const COMPANY_ID: &str = "5a4d3c2b-1a09-4f8e-9d7c-6b5a49382716";

/// Session statuses a client may set.
pub(in crate::sandbox) const SESSION_STATUSES: [&str; 5] =
    ["STARTED", "PENDING", "IN_PROGRESS", "COMPLETED", "HIDDEN"];

/// A conversation (api-notes, "Response objects").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub start_at: Timestamp,
    pub end_at: Option<Timestamp>,
    pub status: String,
    pub company_id: String,
    pub contact_id: String,
    pub channel_id: String,
    pub department_id: Option<String>,
    pub user_id: Option<String>,
    pub number: Option<String>,
    pub title: Option<String>,
    pub origin: String,
    pub classification: Option<Value>,
    pub bot_id: Option<String>,
    pub unread_count: u32,
    pub last_message_text: Option<String>,
    pub last_interaction_date: Option<Timestamp>,
    pub last_message_out: Option<Timestamp>,
    pub last_message_in: Option<Timestamp>,
    pub window_status: String,
    pub metadata: Map<String, Value>,
    pub channel_type: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub reactivate_on_new_message: bool,
}

/// A contact.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub company_id: String,
    pub name: Option<String>,
    pub phone_number: Option<String>,
    pub phone_number_formatted: Option<String>,
    pub email: Option<String>,
    pub instagram: Option<String>,
    pub annotation: Option<String>,
    pub tag_ids: Vec<String>,
    pub tag_names: Vec<String>,
    pub status: String,
    pub origin: String,
    pub utm: Map<String, Value>,
    pub custom_fields: Map<String, Value>,
    pub portfolio_ids: Vec<String>,
    pub sequence_ids: Vec<String>,
    pub picture_url: Option<String>,
    pub metadata: Map<String, Value>,
}

/// A message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub timestamp: Timestamp,
    #[serde(rename = "type")]
    pub kind: String,
    pub sender_id: Option<String>,
    pub session_id: String,
    pub template_id: Option<String>,
    pub user_id: Option<String>,
    pub direction: String,
    pub status: String,
    pub origin: String,
    pub text: Option<String>,
    pub file_id: Option<String>,
    pub file_url: Option<String>,
    pub ref_id: Option<String>,
    pub parameters: Option<Value>,
    pub failed_reason: Option<String>,
}

/// A panel step (column).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::sandbox) struct Step {
    pub id: String,
    pub panel_id: String,
    pub title: String,
    pub position: u32,
    pub is_initial: bool,
    pub is_final: bool,
    pub archived: bool,
}

/// A panel; steps live in `World::steps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::sandbox) struct Panel {
    pub id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub title: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub key: String,
    pub archived: bool,
    pub tags: Vec<Value>,
    pub custom_fields: Vec<Value>,
    pub card_counter: u64,
}

/// A card (api-notes, "Two route families": card shape). `status` is the v2/v3 status; v1 shows `archived` = status ARCHIVED.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub company_id: String,
    pub panel_id: String,
    pub step_id: String,
    pub position: f64,
    pub title: String,
    pub description: Option<String>,
    pub key: String,
    pub number: u64,
    pub due_date: Option<Timestamp>,
    pub tag_ids: Vec<String>,
    pub session_id: Option<String>,
    pub monetary_amount: Option<f64>,
    pub responsible_user_id: Option<String>,
    pub contact_ids: Vec<String>,
    pub custom_fields: Map<String, Value>,
    pub metadata: Map<String, Value>,
    pub status: String,
    pub lost_reason_id: Option<String>,
}

/// A card note.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    pub id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub company_id: String,
    pub panel_id: String,
    pub card_id: String,
    pub user_id: Option<String>,
    pub text: Option<String>,
    pub file_urls: Vec<String>,
    pub is_from_public_api: bool,
}

/// A sequence.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sequence {
    pub id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub name: String,
    pub active: bool,
    pub enabled: bool,
}

/// A contact's enrolment in a sequence (`SequenceContact`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrolment {
    pub id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub sequence_id: String,
    pub contact_id: String,
    pub origin: String,
    pub active: bool,
    pub last_added_at: Timestamp,
}

/// A file uploaded through the v2 flow (api-notes "Files"; the confirmation's fields).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::sandbox) struct File {
    pub id: String,
    pub created_at: Timestamp,
    pub company_id: String,
    pub name: String,
    pub extension: String,
    pub mime_type: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub key: String,
    pub size: u64,
}

/// An upload started with `GET /core/v2/file`, not yet confirmed.
#[derive(Debug, Clone)]
pub(in crate::sandbox) struct PendingUpload {
    pub name: String,
    /// `Type` as asked (`UNDEFINED` included).
    pub kind: String,
    pub mime_type: Option<String>,
    /// Set by the `PUT` to the upload URL: the size and `Content-Type` received.
    pub uploaded: Option<(u64, Option<String>)>,
    /// Set by the confirmation: the file it created (a second confirmation answers it again).
    pub file_id: Option<String>,
}

/// Counters of what the API requests changed since start (or the last reset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub requests: u64,
    pub unauthorized: u64,
    pub rate_limited: u64,
    pub faults_injected: u64,
    pub sessions_created: u64,
    pub sessions_completed: u64,
    pub sessions_status_changed: u64,
    pub sessions_transferred: u64,
    pub sessions_assigned: u64,
    pub sessions_updated: u64,
    pub messages_sent: u64,
    pub contacts_created: u64,
    pub contacts_updated: u64,
    pub cards_created: u64,
    pub cards_duplicated: u64,
    pub cards_updated: u64,
    pub notes_created: u64,
    pub notes_deleted: u64,
    pub enrolments_added: u64,
    pub enrolments_removed: u64,
    pub chatbots_started: u64,
    #[serde(default)]
    pub files_uploaded: u64,
}

impl Summary {
    /// The state-changing counters, as `(label, count)`, in a fixed order.
    pub fn changes(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("sessions created", self.sessions_created),
            ("sessions completed", self.sessions_completed),
            ("session statuses changed", self.sessions_status_changed),
            ("sessions transferred", self.sessions_transferred),
            ("sessions assigned", self.sessions_assigned),
            ("sessions updated", self.sessions_updated),
            ("messages sent", self.messages_sent),
            ("contacts created", self.contacts_created),
            ("contacts updated", self.contacts_updated),
            ("cards created", self.cards_created),
            ("cards duplicated", self.cards_duplicated),
            ("cards updated", self.cards_updated),
            ("notes created", self.notes_created),
            ("notes deleted", self.notes_deleted),
            ("sequence enrolments added", self.enrolments_added),
            ("sequence enrolments removed", self.enrolments_removed),
            ("chatbots started", self.chatbots_started),
            ("files uploaded", self.files_uploaded),
        ]
    }
}

impl std::fmt::Display for Summary {
    /// One line per non-zero change, then the request counters.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let changes: Vec<_> = self.changes().into_iter().filter(|(_, n)| *n > 0).collect();
        if changes.is_empty() {
            writeln!(f, "nothing changed")?;
        }
        for (label, n) in changes {
            writeln!(f, "{label}: {n}")?;
        }
        write!(
            f,
            "requests: {} (unauthorized {}, rate limited {}, faults injected {})",
            self.requests, self.unauthorized, self.rate_limited, self.faults_injected
        )
    }
}

/// One lookup entry of [`LookupIds`]: an id and the name a person would recognise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupId {
    pub id: String,
    pub name: String,
    /// A chatbot's `key` (what `chatbot.send` takes as `botKey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A panel and its steps (in position order), for [`LookupIds`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PanelIds {
    pub id: String,
    pub title: String,
    pub steps: Vec<LookupId>,
}

/// The ids of the account's lookups, seeded ones first, then any a request created: what a
/// playbook can use as `department_id`, `user_id` (an agent's `userId`), `sequence_id`,
/// `panel_id`/`step_id`, `template_id`, `channel_id`, a chatbot's id or key, or a tag id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupIds {
    pub departments: Vec<LookupId>,
    /// `id` is the agent's `userId`.
    pub agents: Vec<LookupId>,
    pub sequences: Vec<LookupId>,
    pub panels: Vec<PanelIds>,
    pub templates: Vec<LookupId>,
    pub channels: Vec<LookupId>,
    pub chatbots: Vec<LookupId>,
    pub tags: Vec<LookupId>,
}

impl LookupIds {
    /// A few lines naming the first id of each kind, for `wts-playbook sandbox` to print.
    pub fn brief(&self) -> String {
        let kinds: [(&str, &str, &[LookupId]); 6] = [
            ("department", "departments", &self.departments),
            ("agent userId", "agents", &self.agents),
            ("sequence", "sequences", &self.sequences),
            ("template", "templates", &self.templates),
            ("channel", "channels", &self.channels),
            ("chatbot", "chatbots", &self.chatbots),
        ];
        let mut out = String::from("seeded ids (all of them: GET /__sandbox/state, `lookups`):\n");
        for (kind, list, items) in kinds {
            if let Some(first) = items.first() {
                let key = first
                    .key
                    .as_ref()
                    .map(|k| format!("key {k}; "))
                    .unwrap_or_default();
                out += &format!(
                    "  {kind:<13} {}  {} ({key}{} {list})\n",
                    first.id,
                    first.name,
                    items.len()
                );
            }
        }
        if let Some(p) = self.panels.first() {
            out += &format!(
                "  {:<13} {}  {} ({} panels)\n",
                "panel",
                p.id,
                p.title,
                self.panels.len()
            );
            for st in &p.steps {
                out += &format!("  {:<13} {}  {}\n", "  step", st.id, st.name);
            }
        }
        out += "  any other id a request names is created on first use\n";
        out
    }
}
