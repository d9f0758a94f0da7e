//! The simulated account: every object the API can see, the deterministic seed data set,
//! and the counters of what changed (`Summary`).
//!
//! In: a seed. Out: a `World` the route handlers mutate under one mutex. Iteration order of
//! every collection is insertion order, and timestamps are strictly increasing, so lists come
//! out ordered by createdAt then id without sorting.
//!
//! Files: `model` (the object types, the summary, the lookup ids), `seed` (the seeded data
//! set), `objects` (creating and finding objects), `materialize` (unseen ids exist).

mod materialize;
mod model;
mod objects;
mod seed;

pub use model::*;

use indexmap::IndexMap;
use jiff::Timestamp;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

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
