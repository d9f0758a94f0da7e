//! The simulated account: every object the API can see, the deterministic seed data set,
//! and the counters of what changed (`Summary`).
//!
//! In: a seed. Out: a `World` the route handlers mutate under one mutex. Iteration order of
//! every collection is insertion order, and timestamps are strictly increasing, so lists come
//! out ordered by createdAt then id without sorting.

use indexmap::IndexMap;
use jiff::{SignedDuration, Timestamp};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The account's company id (one account per sandbox).
pub(super) const COMPANY_ID: &str = "5a4d3c2b-1a09-4f8e-9d7c-6b5a49382716";

/// Session statuses a client may set.
pub(super) const SESSION_STATUSES: [&str; 5] =
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
pub(super) struct Step {
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
pub(super) struct Panel {
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
pub(super) struct File {
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
pub(super) struct PendingUpload {
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

/// The whole simulated account.
#[derive(Debug)]
pub(super) struct World {
    seed: u64,
    rng: SmallRng,
    last_ms: i64,
    pub sessions: IndexMap<String, Session>,
    pub contacts: IndexMap<String, Contact>,
    /// Digits of a phone number → contact id.
    pub phones: HashMap<String, String>,
    pub messages: IndexMap<String, Message>,
    pub panels: IndexMap<String, Panel>,
    pub steps: IndexMap<String, Step>,
    pub cards: IndexMap<String, Card>,
    pub notes: IndexMap<String, Note>,
    pub sequences: IndexMap<String, Sequence>,
    pub enrolments: IndexMap<String, Enrolment>,
    pub templates: Vec<Value>,
    pub chatbots: Vec<Value>,
    pub departments: Vec<Value>,
    pub agents: Vec<Value>,
    pub tags: Vec<Value>,
    pub channels: Vec<Value>,
    pub contact_custom_fields: Vec<Value>,
    /// Confirmed uploads, by id.
    pub files: IndexMap<String, File>,
    /// Started uploads, by temporary id.
    pub uploads: IndexMap<String, PendingUpload>,
    /// `http://ADDR` of the serving sandbox: the base of the upload URLs it hands out.
    pub origin: String,
    pub summary: Summary,
    session_counter: u64,
}

/// Only the digits of a phone number (`+55|11 9999-9999` → `551199999999`).
pub(super) fn phone_digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

/// The response format of a phone number: `+55|11999999999`.
pub(super) fn phone_display(digits: &str) -> String {
    if digits.len() > 2 {
        format!("+{}|{}", &digits[..2], &digits[2..])
    } else {
        format!("+{digits}")
    }
}

const FIRST: [&str; 12] = [
    "Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabriela", "Heitor", "Isabela", "João",
    "Larissa", "Marcos",
];
const LAST: [&str; 5] = ["Silva", "Souza", "Oliveira", "Santos", "Pereira"];

impl World {
    /// The seeded data set: 3 departments, 6 agents, 8 tags, 2 channels, 4 templates,
    /// 3 chatbots, 60 contacts, 120 sessions in mixed statuses with ~240 messages,
    /// 2 panels with steps, cards and notes, 3 sequences with a few enrolments.
    pub(super) fn seeded(seed: u64) -> World {
        let mut w = World {
            seed,
            rng: SmallRng::seed_from_u64(seed),
            last_ms: 0,
            sessions: IndexMap::new(),
            contacts: IndexMap::new(),
            phones: HashMap::new(),
            messages: IndexMap::new(),
            panels: IndexMap::new(),
            steps: IndexMap::new(),
            cards: IndexMap::new(),
            notes: IndexMap::new(),
            sequences: IndexMap::new(),
            enrolments: IndexMap::new(),
            templates: Vec::new(),
            chatbots: Vec::new(),
            departments: Vec::new(),
            agents: Vec::new(),
            tags: Vec::new(),
            channels: Vec::new(),
            contact_custom_fields: Vec::new(),
            files: IndexMap::new(),
            uploads: IndexMap::new(),
            origin: String::new(),
            summary: Summary::default(),
            session_counter: 0,
        };
        w.seed_data();
        // Seeded objects sit in the past; anything created later is stamped with the wall
        // clock (kept strictly increasing).
        w.last_ms = w.last_ms.max(Timestamp::now().as_millisecond() - 1);
        w.summary = Summary::default();
        w
    }

    /// A fresh id from the seeded generator.
    pub(super) fn new_id(&mut self) -> String {
        let bytes: [u8; 16] = self.rng.random();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// An id derived from the seed, a kind and a name (`("panel-step", panel_id + "/1")`):
    /// the same inputs always give the same id, and deriving one never draws from the
    /// generator, so materializing an unseen id never shifts the ids generated later.
    pub(super) fn derived_id(&self, kind: &str, name: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.seed.to_le_bytes());
        h.update(kind.as_bytes());
        h.update([0]);
        h.update(name.as_bytes());
        let digest = h.finalize();
        let mut bytes = [0_u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// A strictly increasing "now".
    pub(super) fn now(&mut self) -> Timestamp {
        let ms = Timestamp::now().as_millisecond().max(self.last_ms + 1);
        self.last_ms = ms;
        Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn pick<'a>(&mut self, items: &'a [Value]) -> &'a Value {
        &items[self.rng.random_range(0..items.len())]
    }

    fn id_of(v: &Value) -> String {
        v["id"].as_str().unwrap_or_default().to_owned()
    }

    pub(super) fn department_ids(&self) -> Vec<String> {
        self.departments.iter().map(World::id_of).collect()
    }

    /// Agent user ids of a department.
    pub(super) fn agents_of(&self, department_id: &str) -> Vec<String> {
        self.agents
            .iter()
            .filter(|a| {
                a["departments"]
                    .as_array()
                    .is_some_and(|ds| ds.iter().any(|d| d["departmentId"] == department_id))
            })
            .map(|a| a["userId"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn next_number(&mut self) -> String {
        self.session_counter += 1;
        format!("2025{:06}", self.session_counter)
    }

    #[allow(clippy::too_many_lines)] // TODO(issue 8): split
    fn seed_data(&mut self) {
        let base: Timestamp = "2025-01-01T09:00:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        self.last_ms = base.as_millisecond();
        let seed_time = |w: &mut World, minutes: i64| {
            let ms = (base.as_millisecond() + minutes * 60_000).max(w.last_ms + 1);
            w.last_ms = ms;
            Timestamp::from_millisecond(ms).unwrap_or(base)
        };

        for name in ["Vendas", "Suporte", "Financeiro"] {
            let id = self.new_id();
            self.departments.push(json!({
                "id": id, "companyId": COMPANY_ID, "name": name, "description": null,
                "isDefault": name == "Suporte", "isSupervisor": false,
            }));
        }
        let deps = self.department_ids();
        for (i, name) in [
            "Alice Costa",
            "Rafael Lima",
            "Beatriz Rocha",
            "Thiago Alves",
            "Camila Dias",
            "Lucas Prado",
        ]
        .iter()
        .enumerate()
        {
            let id = self.new_id();
            let user_id = self.new_id();
            let first = name.split(' ').next().unwrap_or(name).to_lowercase();
            self.agents.push(json!({
                "id": id, "userId": user_id, "name": name, "shortName": first,
                "email": format!("{first}@example.com"), "phoneNumber": format!("+55|1190000000{i}"),
                "departments": [{ "departmentId": deps[i % deps.len()] }],
            }));
        }
        for name in [
            "vip",
            "lead",
            "cliente",
            "inadimplente",
            "suporte",
            "novo",
            "b2b",
            "churn",
        ] {
            let id = self.new_id();
            self.tags.push(json!({ "id": id, "name": name }));
        }
        let wa = self.new_id();
        let ig = self.new_id();
        self.channels.push(json!({
            "id": wa, "type": "CLOUDAPI_WHATSAPP", "number": "5511900000000", "displayName": "Atendimento",
            "identity": { "humanId": "+55|11900000000", "platform": "WhatsApp", "provider": "CLOUDAPI" },
        }));
        self.channels.push(json!({
            "id": ig, "type": "INSTAGRAM", "number": null, "displayName": "@loja",
            "identity": { "humanId": "@loja", "platform": "Instagram", "provider": "META" },
        }));
        for (name, text, params, file_type, status) in [
            (
                "boas_vindas",
                "Olá {{1}}, seu pedido {{2}} foi recebido.",
                vec!["1", "2"],
                "UNDEFINED",
                "Approved",
            ),
            (
                "lembrete",
                "Olá! Podemos continuar o seu atendimento?",
                vec![],
                "UNDEFINED",
                "Approved",
            ),
            (
                "promo_imagem",
                "Oferta da semana, {{1}}!",
                vec!["1"],
                "IMAGE",
                "Approved",
            ),
            ("rascunho", "Em revisão", vec![], "UNDEFINED", "InRevision"),
        ] {
            let id = self.new_id();
            let params: Vec<Value> = params
                .iter()
                .map(|p| json!({ "name": p, "templateId": id }))
                .collect();
            self.templates.push(json!({
                "id": id, "channelId": wa, "name": name, "internalName": name, "text": text,
                "footerText": null, "status": status, "channelType": "CLOUDAPI_WHATSAPP",
                "type": ["CAMPAIGN"], "params": params, "fileType": file_type,
                "categoryId": null, "categoryName": "MARKETING", "active": true, "archived": false,
                "quickReplyAlias": null, "rejectedDescription": null,
            }));
        }
        for (name, kind) in [
            ("Pesquisa NPS", "Automation"),
            ("Cobrança", "Automation"),
            ("Menu inicial", "Reactive"),
        ] {
            let id = self.new_id();
            let key = self.new_id();
            let dep = deps[self.rng.random_range(0..deps.len())].clone();
            self.chatbots.push(json!({
                "id": id, "key": key, "name": name, "type": kind, "channelIds": [wa],
                "defaultDepartmentId": dep, "publishStatus": "PUBLISHED",
                "automationUsage": if kind == "Automation" { json!("GENERAL") } else { Value::Null }, "archived": false,
            }));
        }
        self.contact_custom_fields = vec![
            json!({"key": "cpf", "name": "CPF", "type": "STRING", "options": []}),
            json!({"key": "plano", "name": "Plano", "type": "SINGLESELECT", "options": [{"id": "1", "name": "Básico"}, {"id": "2", "name": "Pro"}]}),
        ];

        for i in 0..60_i64 {
            let created = seed_time(self, i * 10);
            let first = FIRST[usize::try_from(i).unwrap_or(0) % FIRST.len()];
            let last = LAST[usize::try_from(i / 12).unwrap_or(0) % LAST.len()];
            let digits = format!(
                "55119{:08}",
                self.rng.random_range(10_000_000..99_999_999_u32)
            );
            let status = match i {
                _ if i % 20 == 19 => "BLOCKED",
                _ if i % 15 == 14 => "ARCHIVED",
                _ => "ACTIVE",
            };
            let tag = self.pick(&self.tags.clone()).clone();
            let c = self.blank_contact(created);
            let id = c.id.clone();
            self.contacts.insert(id.clone(), c);
            let c = &mut self.contacts[&id];
            c.name = Some(format!("{first} {last}"));
            c.email = Some(format!(
                "{}.{}{i}@example.com",
                first.to_lowercase(),
                last.to_lowercase()
            ));
            c.status = status.into();
            c.origin = "IMPORTED".into();
            c.tag_ids = vec![World::id_of(&tag)];
            c.tag_names = vec![tag["name"].as_str().unwrap_or_default().to_owned()];
            self.set_phone(&id, &digits);
        }

        let contact_ids: Vec<String> = self.contacts.keys().cloned().collect();
        for i in 0..120_i64 {
            let created = seed_time(self, 1000 + i * 7);
            let dep = deps[usize::try_from(i).unwrap_or(0) % deps.len()].clone();
            let status = match self.rng.random_range(0..10) {
                0 => "STARTED",
                1 | 2 => "PENDING",
                3..=5 => "IN_PROGRESS",
                6..=8 => "COMPLETED",
                _ => "HIDDEN",
            };
            let contact = contact_ids[usize::try_from(i).unwrap_or(0) % contact_ids.len()].clone();
            let mut s = self.blank_session(created, contact);
            s.department_id = Some(dep.clone());
            s.status = status.into();
            if matches!(status, "IN_PROGRESS" | "COMPLETED") {
                let agents = self.agents_of(&dep);
                s.user_id = agents
                    .get(self.rng.random_range(0..agents.len().max(1)))
                    .cloned();
            }
            if status == "COMPLETED" {
                s.end_at = Some(created + SignedDuration::from_mins(45));
                s.window_status = "EXPIRED".into();
            }
            let sid = s.id.clone();
            self.sessions.insert(sid.clone(), s);
            let n = self.rng.random_range(1..=3);
            for k in 0..n {
                let at = seed_time(self, 1000 + i * 7 + k + 1);
                let text = [
                    "Olá, preciso de ajuda",
                    "Qual o status do meu pedido?",
                    "Obrigado!",
                ][usize::try_from(k).unwrap_or(0) % 3];
                let mut m = self.blank_message(at, &sid);
                m.direction = if k % 2 == 0 { "TO_HUB" } else { "FROM_HUB" }.into();
                m.status = if k % 2 == 0 { "DELIVERED" } else { "READ" }.into();
                m.origin = "DEFAULT".into();
                m.text = Some(text.into());
                let s = &mut self.sessions[&sid];
                s.last_message_text = Some(text.into());
                s.last_interaction_date = Some(at);
                if k % 2 == 0 {
                    s.last_message_in = Some(at);
                } else {
                    s.last_message_out = Some(at);
                }
                self.messages.insert(m.id.clone(), m);
            }
        }

        for (title, kind, steps) in [
            (
                "Funil de vendas",
                "SALES",
                vec!["Prospecção", "Proposta", "Negociação", "Fechado"],
            ),
            (
                "Suporte N2",
                "MANAGEMENT",
                vec!["A fazer", "Fazendo", "Feito"],
            ),
        ] {
            let created = seed_time(self, 5000);
            let pid = self.new_id();
            let tags: Vec<Value> = ["quente", "frio"]
                .iter()
                .map(|t| json!({ "id": self.new_id(), "panelId": pid, "name": t, "nameColor": "#fff", "bgColor": "#333" }))
                .collect();
            let key = title
                .chars()
                .filter(char::is_ascii_uppercase)
                .collect::<String>();
            self.panels.insert(
                pid.clone(),
                Panel {
                    id: pid.clone(),
                    created_at: created,
                    updated_at: created,
                    title: title.into(),
                    description: None,
                    kind: kind.into(),
                    key,
                    archived: false,
                    tags,
                    custom_fields: vec![
                        json!({"key": "origem", "name": "Origem", "type": "STRING"}),
                        json!({"key": "dados", "name": "Dados", "type": "GROUP"}),
                    ],
                    card_counter: 0,
                },
            );
            let n = steps.len();
            for (pos, st) in steps.iter().enumerate() {
                let id = self.new_id();
                self.steps.insert(
                    id.clone(),
                    Step {
                        id,
                        panel_id: pid.clone(),
                        title: (*st).into(),
                        position: u32::try_from(pos).unwrap_or(0),
                        is_initial: pos == 0,
                        is_final: pos + 1 == n,
                        archived: false,
                    },
                );
            }
            let step_ids: Vec<String> = self
                .steps
                .values()
                .filter(|s| s.panel_id == pid)
                .map(|s| s.id.clone())
                .collect();
            for c in 0..10_usize {
                let created = seed_time(self, 5001);
                let step = step_ids[c % step_ids.len()].clone();
                let contact = contact_ids[(c * 5) % contact_ids.len()].clone();
                let card = self.new_card(created, &step, format!("Oportunidade {}", c + 1));
                let cid = card.id.clone();
                self.cards.insert(cid.clone(), card);
                let card = &mut self.cards[&cid];
                card.contact_ids = vec![contact];
                card.monetary_amount = Some(f64::from(u32::try_from(c).unwrap_or(0) + 1) * 250.0);
                if c % 4 == 0 {
                    let at = seed_time(self, 5002);
                    let note = self.new_note(
                        at,
                        &cid,
                        Some(format!("Primeiro contato feito ({})", c + 1)),
                        vec![],
                    );
                    self.notes.insert(note.id.clone(), note);
                }
            }
        }

        for name in ["Boas-vindas", "Recuperação de carrinho", "Pós-venda"] {
            let created = seed_time(self, 6000);
            let id = self.new_id();
            self.sequences.insert(
                id.clone(),
                Sequence {
                    id,
                    created_at: created,
                    updated_at: created,
                    name: name.into(),
                    active: true,
                    enabled: true,
                },
            );
        }
        let first_seq = self.sequences.keys().next().cloned().unwrap_or_default();
        for c in contact_ids.iter().take(5) {
            let at = seed_time(self, 6001);
            self.enrol(at, &first_seq, c, "USER_SINGLE");
        }
    }

    fn blank_contact(&mut self, at: Timestamp) -> Contact {
        let id = self.new_id();
        World::contact_with_id(at, id)
    }

    fn contact_with_id(at: Timestamp, id: String) -> Contact {
        Contact {
            id,
            created_at: at,
            updated_at: at,
            company_id: COMPANY_ID.into(),
            name: None,
            phone_number: None,
            phone_number_formatted: None,
            email: None,
            instagram: None,
            annotation: None,
            tag_ids: Vec::new(),
            tag_names: Vec::new(),
            status: "ACTIVE".into(),
            origin: "CREATED_BY_USER".into(),
            utm: Map::new(),
            custom_fields: Map::new(),
            portfolio_ids: Vec::new(),
            sequence_ids: Vec::new(),
            picture_url: None,
            metadata: Map::new(),
        }
    }

    /// Sets (or clears, with "") a contact's phone and keeps the phone index in step.
    pub(super) fn set_phone(&mut self, contact_id: &str, phone: &str) {
        let digits = phone_digits(phone);
        let Some(c) = self.contacts.get_mut(contact_id) else {
            return;
        };
        if let Some(old) = c.phone_number.as_deref().map(phone_digits) {
            if self.phones.get(&old).is_some_and(|id| id == contact_id) {
                self.phones.remove(&old);
            }
        }
        if digits.is_empty() {
            c.phone_number = None;
            c.phone_number_formatted = None;
        } else {
            c.phone_number = Some(phone_display(&digits));
            c.phone_number_formatted = Some(format!("+{digits}"));
            self.phones.insert(digits, contact_id.to_owned());
        }
    }

    /// A new contact (counted as created).
    pub(super) fn create_contact(
        &mut self,
        phone: Option<&str>,
        instagram: Option<&str>,
    ) -> String {
        let now = self.now();
        let c = self.blank_contact(now);
        let id = c.id.clone();
        self.contacts.insert(id.clone(), c);
        if let Some(p) = phone {
            self.set_phone(&id, p);
        }
        if let Some(ig) = instagram {
            self.contacts[&id].instagram = Some(ig.trim_start_matches('@').to_owned());
        }
        self.summary.contacts_created += 1;
        id
    }

    /// The contact with this id; an unseen id becomes a new contact with that id.
    pub(super) fn contact_by_id(&mut self, id: &str) -> &mut Contact {
        if !self.contacts.contains_key(id) {
            let now = self.now();
            let mut c = World::contact_with_id(now, id.to_owned());
            c.name = Some(format!("Contato {}", &id[..8.min(id.len())]));
            self.contacts.insert(id.to_owned(), c);
        }
        &mut self.contacts[id]
    }

    /// The contact with this phone; an unseen phone becomes a new contact.
    pub(super) fn contact_by_phone(&mut self, phone: &str) -> String {
        let digits = phone_digits(phone);
        if let Some(id) = self.phones.get(&digits) {
            return id.clone();
        }
        let now = self.now();
        let c = self.blank_contact(now);
        let id = c.id.clone();
        self.contacts.insert(id.clone(), c);
        self.set_phone(&id, &digits);
        id
    }

    /// The contact a send's `to` names (phone or `@instagram`), created if unknown.
    pub(super) fn contact_for_recipient(&mut self, to: &str) -> String {
        if let Some(user) = to.strip_prefix('@') {
            if let Some(c) = self.contacts.values().find(|c| {
                c.instagram
                    .as_deref()
                    .is_some_and(|i| i.eq_ignore_ascii_case(user))
            }) {
                return c.id.clone();
            }
            return self.create_contact(None, Some(user));
        }
        let digits = phone_digits(to);
        if let Some(id) = self.phones.get(&digits) {
            return id.clone();
        }
        self.create_contact(Some(&digits), None)
    }

    pub(super) fn blank_session(&mut self, at: Timestamp, contact_id: String) -> Session {
        let id = self.new_id();
        self.session_with_id(at, id, contact_id)
    }

    fn session_with_id(&mut self, at: Timestamp, id: String, contact_id: String) -> Session {
        let channel = World::id_of(&self.channels[0]);
        let number = self.next_number();
        Session {
            id,
            created_at: at,
            updated_at: at,
            start_at: at,
            end_at: None,
            status: "IN_PROGRESS".into(),
            company_id: COMPANY_ID.into(),
            contact_id,
            channel_id: channel,
            department_id: None,
            user_id: None,
            number: Some(number),
            title: None,
            origin: "API".into(),
            classification: None,
            bot_id: None,
            unread_count: 0,
            last_message_text: None,
            last_interaction_date: None,
            last_message_out: None,
            last_message_in: None,
            window_status: "ACTIVE".into(),
            metadata: Map::new(),
            channel_type: "CLOUDAPI_WHATSAPP".into(),
            kind: "INDIVIDUAL".into(),
            reactivate_on_new_message: false,
        }
    }

    /// The session with this id; an unseen id becomes an open `IN_PROGRESS` session of a
    /// seeded contact in a seeded department.
    pub(super) fn session_mut(&mut self, id: &str) -> &mut Session {
        if !self.sessions.contains_key(id) {
            let now = self.now();
            let h = id
                .bytes()
                .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
            let contact = self
                .contacts
                .get_index(h % self.contacts.len().max(1))
                .map(|(k, _)| k.clone())
                .unwrap_or_default();
            let deps = self.department_ids();
            let mut s = self.session_with_id(now, id.to_owned(), contact);
            s.department_id = deps.get(h % deps.len().max(1)).cloned();
            self.sessions.insert(id.to_owned(), s);
        }
        &mut self.sessions[id]
    }

    /// A brand-new open session for a contact (counted as created).
    pub(super) fn open_session(&mut self, contact_id: &str) -> String {
        let now = self.now();
        let s = self.blank_session(now, contact_id.to_owned());
        let id = s.id.clone();
        self.sessions.insert(id.clone(), s);
        self.summary.sessions_created += 1;
        id
    }

    /// The contact's newest session that is not completed.
    pub(super) fn open_session_of(&self, contact_id: &str) -> Option<String> {
        self.sessions
            .values()
            .rev()
            .find(|s| s.contact_id == contact_id && s.status != "COMPLETED")
            .map(|s| s.id.clone())
    }

    /// Completes a session (status COMPLETED, endAt now).
    pub(super) fn complete(&mut self, id: &str) {
        let now = self.now();
        let s = self.session_mut(id);
        s.status = "COMPLETED".into();
        s.end_at = Some(now);
        s.updated_at = now;
        self.summary.sessions_completed += 1;
    }

    pub(super) fn blank_message(&mut self, at: Timestamp, session_id: &str) -> Message {
        let id = self.new_id();
        World::message_with_id(at, id, session_id)
    }

    fn message_with_id(at: Timestamp, id: String, session_id: &str) -> Message {
        Message {
            id,
            created_at: at,
            updated_at: at,
            timestamp: at,
            kind: "TEXT".into(),
            sender_id: None,
            session_id: session_id.to_owned(),
            template_id: None,
            user_id: None,
            direction: "FROM_HUB".into(),
            status: "PROCESSING".into(),
            origin: "API".into(),
            text: None,
            file_id: None,
            file_url: None,
            ref_id: None,
            parameters: None,
            failed_reason: None,
        }
    }

    pub(super) fn new_card(&mut self, at: Timestamp, step_id: &str, title: String) -> Card {
        let id = self.new_id();
        self.card_with_id(at, id, step_id, title)
    }

    fn card_with_id(&mut self, at: Timestamp, id: String, step_id: &str, title: String) -> Card {
        let panel_id = self
            .steps
            .get(step_id)
            .map(|s| s.panel_id.clone())
            .unwrap_or_default();
        let position = self.cards.values().filter(|c| c.step_id == step_id).count();
        let (number, key) = match self.panels.get_mut(&panel_id) {
            Some(p) => {
                p.card_counter += 1;
                (p.card_counter, format!("{}-{}", p.key, p.card_counter))
            }
            None => (0, String::new()),
        };
        Card {
            id,
            created_at: at,
            updated_at: at,
            company_id: COMPANY_ID.into(),
            panel_id,
            step_id: step_id.to_owned(),
            position: f64::from(u32::try_from(position).unwrap_or(u32::MAX)),
            title,
            description: None,
            key,
            number,
            due_date: None,
            tag_ids: Vec::new(),
            session_id: None,
            monetary_amount: None,
            responsible_user_id: None,
            contact_ids: Vec::new(),
            custom_fields: Map::new(),
            metadata: Map::new(),
            status: "OPEN".into(),
            lost_reason_id: None,
        }
    }

    pub(super) fn new_note(
        &mut self,
        at: Timestamp,
        card_id: &str,
        text: Option<String>,
        file_urls: Vec<String>,
    ) -> Note {
        let panel_id = self
            .cards
            .get(card_id)
            .map(|c| c.panel_id.clone())
            .unwrap_or_default();
        Note {
            id: self.new_id(),
            created_at: at,
            updated_at: at,
            company_id: COMPANY_ID.into(),
            panel_id,
            card_id: card_id.to_owned(),
            user_id: None,
            text,
            file_urls,
            is_from_public_api: true,
        }
    }

    /// Enrols a contact (or refreshes `lastAddedAt` of an existing enrolment).
    pub(super) fn enrol(
        &mut self,
        at: Timestamp,
        sequence_id: &str,
        contact_id: &str,
        origin: &str,
    ) -> String {
        if let Some(e) = self
            .enrolments
            .values_mut()
            .find(|e| e.sequence_id == sequence_id && e.contact_id == contact_id)
        {
            e.last_added_at = at;
            e.updated_at = at;
            e.active = true;
            return e.id.clone();
        }
        let id = self.new_id();
        self.enrolments.insert(
            id.clone(),
            Enrolment {
                id: id.clone(),
                created_at: at,
                updated_at: at,
                sequence_id: sequence_id.to_owned(),
                contact_id: contact_id.to_owned(),
                origin: origin.to_owned(),
                active: true,
                last_added_at: at,
            },
        );
        id
    }
}

/// Materialization: every id a request names exists. An unseen id becomes an object with
/// that id the first time a request names it; the objects it needs (a step's panel, a
/// message's session) get ids derived from it ([`World::derived_id`]), so the same
/// requests give the same state for a seed. Materializing is not a change: the summary
/// counts only the operation applied to the object.
impl World {
    /// The first 8 characters of an id (`Card 0b8f6c1e`).
    fn short(id: &str) -> &str {
        id.get(..8).unwrap_or(id)
    }

    /// The panel with this id; an unseen id becomes a `MANAGEMENT` panel "Panel <id8>"
    /// with three steps ("Step 1" initial, "Step 2", "Step 3" final).
    pub(super) fn panel_by_id(&mut self, id: &str) -> &mut Panel {
        if !self.panels.contains_key(id) {
            let now = self.now();
            let short = World::short(id);
            self.panels.insert(
                id.to_owned(),
                Panel {
                    id: id.to_owned(),
                    created_at: now,
                    updated_at: now,
                    title: format!("Panel {short}"),
                    description: None,
                    kind: "MANAGEMENT".into(),
                    key: format!("P{}", short.to_ascii_uppercase()),
                    archived: false,
                    tags: Vec::new(),
                    custom_fields: Vec::new(),
                    card_counter: 0,
                },
            );
            for pos in 0..3_u32 {
                let sid = self.derived_id("panel-step", &format!("{id}/{pos}"));
                self.steps.insert(
                    sid.clone(),
                    Step {
                        id: sid,
                        panel_id: id.to_owned(),
                        title: format!("Step {}", pos + 1),
                        position: pos,
                        is_initial: pos == 0,
                        is_final: pos == 2,
                        archived: false,
                    },
                );
            }
        }
        &mut self.panels[id]
    }

    /// The steps of a panel in position order.
    pub(super) fn steps_of(&self, panel_id: &str) -> Vec<&Step> {
        let mut steps: Vec<&Step> = self
            .steps
            .values()
            .filter(|s| s.panel_id == panel_id)
            .collect();
        steps.sort_by_key(|s| s.position);
        steps
    }

    /// Makes sure `step_id` exists: an unseen id becomes a step "Step <id8>" appended to
    /// `panel_id` (itself materialized if unseen), neither initial nor final. Returns the
    /// step's panel (for an existing step, its own panel).
    pub(super) fn ensure_step(&mut self, step_id: &str, panel_id: &str) -> String {
        if let Some(s) = self.steps.get(step_id) {
            return s.panel_id.clone();
        }
        self.panel_by_id(panel_id);
        let position = self.steps_of(panel_id).last().map_or(0, |s| s.position + 1);
        self.steps.insert(
            step_id.to_owned(),
            Step {
                id: step_id.to_owned(),
                panel_id: panel_id.to_owned(),
                title: format!("Step {}", World::short(step_id)),
                position,
                is_initial: false,
                is_final: false,
                archived: false,
            },
        );
        panel_id.to_owned()
    }

    /// The first seeded panel (where unseen cards and steps go).
    pub(super) fn home_panel(&mut self) -> String {
        if let Some(id) = self.panels.keys().next() {
            return id.clone();
        }
        let id = self.derived_id("panel", "home");
        self.panel_by_id(&id);
        id
    }

    /// The card with this id; an unseen id becomes an `OPEN` card "Card <id8>" in the first
    /// step of the first seeded panel.
    pub(super) fn card_by_id(&mut self, id: &str) -> &mut Card {
        if !self.cards.contains_key(id) {
            let panel = self.home_panel();
            let step = self
                .steps_of(&panel)
                .first()
                .map(|s| s.id.clone())
                .unwrap_or_default();
            let now = self.now();
            let title = format!("Card {}", World::short(id));
            let card = self.card_with_id(now, id.to_owned(), &step, title);
            self.cards.insert(id.to_owned(), card);
        }
        &mut self.cards[id]
    }

    /// The sequence with this id; an unseen id becomes an active, enabled sequence
    /// "Sequence <id8>" without enrolments.
    pub(super) fn sequence_by_id(&mut self, id: &str) -> &mut Sequence {
        if !self.sequences.contains_key(id) {
            let now = self.now();
            self.sequences.insert(
                id.to_owned(),
                Sequence {
                    id: id.to_owned(),
                    created_at: now,
                    updated_at: now,
                    name: format!("Sequence {}", World::short(id)),
                    active: true,
                    enabled: true,
                },
            );
        }
        &mut self.sequences[id]
    }

    /// The message with this id; an unseen id becomes a `SENT` outgoing text message
    /// "Message <id8>" in a new open session (whose id is derived from the message's).
    pub(super) fn message_by_id(&mut self, id: &str) -> &mut Message {
        if !self.messages.contains_key(id) {
            let session = self.derived_id("message-session", id);
            self.session_mut(&session);
            let now = self.now();
            let mut m = World::message_with_id(now, id.to_owned(), &session);
            m.status = "SENT".into();
            m.text = Some(format!("Message {}", World::short(id)));
            let s = &mut self.sessions[&session];
            s.last_message_text.clone_from(&m.text);
            s.last_message_out = Some(now);
            s.last_interaction_date = Some(now);
            self.messages.insert(id.to_owned(), m);
        }
        &mut self.messages[id]
    }

    /// Makes sure a department with this id is in the departments lookup ("Department <id8>").
    pub(super) fn ensure_department(&mut self, id: &str) {
        if !self.departments.iter().any(|d| d["id"] == id) {
            self.departments.push(json!({
                "id": id, "companyId": COMPANY_ID, "name": format!("Department {}", World::short(id)),
                "description": null, "isDefault": false, "isSupervisor": false,
            }));
        }
    }

    /// Makes sure an agent with this `userId` is in the agents lookup ("Agent <id8>"), a
    /// member of `department` (materialized too) when one is given.
    pub(super) fn ensure_agent(&mut self, user_id: &str, department: Option<&str>) {
        if let Some(d) = department {
            self.ensure_department(d);
        }
        if self.agents.iter().any(|a| a["userId"] == user_id) {
            return;
        }
        let short = World::short(user_id).to_owned();
        let departments: Vec<Value> = department
            .map(|d| json!({ "departmentId": d }))
            .into_iter()
            .collect();
        self.agents.push(json!({
            "id": self.derived_id("agent", user_id), "userId": user_id, "name": format!("Agent {short}"),
            "shortName": format!("agent-{short}"), "email": format!("agent.{short}@example.com"),
            "phoneNumber": null, "departments": departments,
        }));
    }

    /// The ids of every lookup, for `/__sandbox/state` and the CLI banner.
    pub(super) fn lookup_ids(&self) -> LookupIds {
        let entry = |v: &Value, id: &str, name: &str| LookupId {
            id: v[id].as_str().unwrap_or_default().to_owned(),
            name: v[name].as_str().unwrap_or_default().to_owned(),
            key: None,
        };
        let all = |items: &[Value], id: &str, name: &str| -> Vec<LookupId> {
            items.iter().map(|v| entry(v, id, name)).collect()
        };
        LookupIds {
            departments: all(&self.departments, "id", "name"),
            agents: all(&self.agents, "userId", "name"),
            sequences: self
                .sequences
                .values()
                .map(|s| LookupId {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    key: None,
                })
                .collect(),
            panels: self
                .panels
                .values()
                .map(|p| PanelIds {
                    id: p.id.clone(),
                    title: p.title.clone(),
                    steps: self
                        .steps_of(&p.id)
                        .into_iter()
                        .map(|s| LookupId {
                            id: s.id.clone(),
                            name: s.title.clone(),
                            key: None,
                        })
                        .collect(),
                })
                .collect(),
            templates: all(&self.templates, "id", "name"),
            channels: all(&self.channels, "id", "displayName"),
            chatbots: self
                .chatbots
                .iter()
                .map(|b| LookupId {
                    key: b["key"].as_str().map(str::to_owned),
                    ..entry(b, "id", "name")
                })
                .collect(),
            tags: all(&self.tags, "id", "name"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_deterministic() {
        let a = World::seeded(7);
        let b = World::seeded(7);
        let c = World::seeded(8);
        assert_eq!(a.sessions.len(), 120);
        assert_eq!(a.contacts.len(), 60);
        assert_eq!(
            a.sessions.keys().collect::<Vec<_>>(),
            b.sessions.keys().collect::<Vec<_>>()
        );
        assert_ne!(a.sessions.keys().next(), c.sessions.keys().next());
        let statuses: std::collections::BTreeSet<_> =
            a.sessions.values().map(|s| s.status.as_str()).collect();
        assert!(statuses.len() >= 4, "{statuses:?}");
        assert_eq!(a.summary, Summary::default());
    }

    #[test]
    fn materializing_does_not_shift_generated_ids() {
        let mut a = World::seeded(3);
        let mut b = World::seeded(3);
        let x = "0b8f6c1e-1111-4222-8333-944445555666";
        a.card_by_id(x);
        a.panel_by_id(x);
        a.sequence_by_id(x);
        a.message_by_id(x);
        a.session_mut(x);
        a.contact_by_id(x);
        a.ensure_step("0b8f6c1e-1111-4222-8333-944445555667", x);
        a.ensure_agent(x, Some(x));
        assert_eq!(a.new_id(), b.new_id());
        assert_eq!(a.summary, Summary::default());
        // Derived ids: same seed and name, same id; another seed, another id.
        assert_eq!(a.derived_id("k", "n"), b.derived_id("k", "n"));
        assert_ne!(a.derived_id("k", "n"), a.derived_id("k", "m"));
        assert_ne!(
            a.derived_id("k", "n"),
            World::seeded(4).derived_id("k", "n")
        );
        assert!(uuid::Uuid::parse_str(&a.derived_id("k", "n")).is_ok());
        // The message's session is derived from the message id.
        let s = a.messages[x].session_id.clone();
        b.message_by_id(x);
        assert_eq!(b.messages[x].session_id, s);
        assert_eq!(a.steps_of(x).len(), 4);
        assert_eq!(a.lookup_ids().agents.last().map(|g| g.id.as_str()), Some(x));
    }

    #[test]
    fn unseen_ids_materialize() {
        let mut w = World::seeded(1);
        let id = "0b8f6c1e-1111-4222-8333-944445555666";
        assert_eq!(w.session_mut(id).status, "IN_PROGRESS");
        assert_eq!(w.sessions.len(), 121);
        let c = w.contact_by_phone("+55|11999990000");
        assert_eq!(w.contact_by_phone("5511999990000"), c);
        assert_eq!(
            w.contacts[&c].phone_number.as_deref(),
            Some("+55|11999990000")
        );
    }
}
