//! Materialization of unseen ids (see the comment on the `impl` below).

use super::{
    Card, LookupId, LookupIds, Message, Panel, PanelIds, Sequence, Step, World, COMPANY_ID,
};
use serde_json::{json, Value};

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
    pub(in crate::sandbox) fn panel_by_id(&mut self, id: &str) -> &mut Panel {
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
    pub(in crate::sandbox) fn steps_of(&self, panel_id: &str) -> Vec<&Step> {
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
    pub(in crate::sandbox) fn ensure_step(&mut self, step_id: &str, panel_id: &str) -> String {
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
    pub(in crate::sandbox) fn home_panel(&mut self) -> String {
        if let Some(id) = self.panels.keys().next() {
            return id.clone();
        }
        let id = self.derived_id("panel", "home");
        self.panel_by_id(&id);
        id
    }

    /// The card with this id; an unseen id becomes an `OPEN` card "Card <id8>" in the first
    /// step of the first seeded panel.
    pub(in crate::sandbox) fn card_by_id(&mut self, id: &str) -> &mut Card {
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
    pub(in crate::sandbox) fn sequence_by_id(&mut self, id: &str) -> &mut Sequence {
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
    pub(in crate::sandbox) fn message_by_id(&mut self, id: &str) -> &mut Message {
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
    pub(in crate::sandbox) fn ensure_department(&mut self, id: &str) {
        if !self.departments.iter().any(|d| d["id"] == id) {
            self.departments.push(json!({
                "id": id, "companyId": COMPANY_ID, "name": format!("Department {}", World::short(id)),
                "description": null, "isDefault": false, "isSupervisor": false,
            }));
        }
    }

    /// Makes sure an agent with this `userId` is in the agents lookup ("Agent <id8>"), a
    /// member of `department` (materialized too) when one is given.
    pub(in crate::sandbox) fn ensure_agent(&mut self, user_id: &str, department: Option<&str>) {
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
    pub(in crate::sandbox) fn lookup_ids(&self) -> LookupIds {
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
