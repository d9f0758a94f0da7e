//! Creating and finding the account's objects: contacts, sessions, messages, cards, notes and
//! enrolments, each with its ids and timestamps.

use super::{
    phone_digits, phone_display, Card, Contact, Enrolment, Message, Note, Session, World,
    COMPANY_ID,
};
use jiff::Timestamp;
use serde_json::Map;

impl World {
    pub(super) fn blank_contact(&mut self, at: Timestamp) -> Contact {
        let id = self.new_id();
        World::contact_with_id(at, id)
    }

    pub(super) fn contact_with_id(at: Timestamp, id: String) -> Contact {
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
    pub(in crate::sandbox) fn set_phone(&mut self, contact_id: &str, phone: &str) {
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
    pub(in crate::sandbox) fn create_contact(
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
    pub(in crate::sandbox) fn contact_by_id(&mut self, id: &str) -> &mut Contact {
        if !self.contacts.contains_key(id) {
            let now = self.now();
            let mut c = World::contact_with_id(now, id.to_owned());
            c.name = Some(format!("Contato {}", &id[..8.min(id.len())]));
            self.contacts.insert(id.to_owned(), c);
        }
        &mut self.contacts[id]
    }

    /// The contact with this phone; an unseen phone becomes a new contact.
    pub(in crate::sandbox) fn contact_by_phone(&mut self, phone: &str) -> String {
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
    pub(in crate::sandbox) fn contact_for_recipient(&mut self, to: &str) -> String {
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

    pub(in crate::sandbox) fn blank_session(
        &mut self,
        at: Timestamp,
        contact_id: String,
    ) -> Session {
        let id = self.new_id();
        self.session_with_id(at, id, contact_id)
    }

    pub(super) fn session_with_id(
        &mut self,
        at: Timestamp,
        id: String,
        contact_id: String,
    ) -> Session {
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
    pub(in crate::sandbox) fn session_mut(&mut self, id: &str) -> &mut Session {
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
    pub(in crate::sandbox) fn open_session(&mut self, contact_id: &str) -> String {
        let now = self.now();
        let s = self.blank_session(now, contact_id.to_owned());
        let id = s.id.clone();
        self.sessions.insert(id.clone(), s);
        self.summary.sessions_created += 1;
        id
    }

    /// The contact's newest session that is not completed.
    pub(in crate::sandbox) fn open_session_of(&self, contact_id: &str) -> Option<String> {
        self.sessions
            .values()
            .rev()
            .find(|s| s.contact_id == contact_id && s.status != "COMPLETED")
            .map(|s| s.id.clone())
    }

    /// Completes a session (status COMPLETED, endAt now).
    pub(in crate::sandbox) fn complete(&mut self, id: &str) {
        let now = self.now();
        let s = self.session_mut(id);
        s.status = "COMPLETED".into();
        s.end_at = Some(now);
        s.updated_at = now;
        self.summary.sessions_completed += 1;
    }

    pub(in crate::sandbox) fn blank_message(&mut self, at: Timestamp, session_id: &str) -> Message {
        let id = self.new_id();
        World::message_with_id(at, id, session_id)
    }

    pub(super) fn message_with_id(at: Timestamp, id: String, session_id: &str) -> Message {
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

    pub(in crate::sandbox) fn new_card(
        &mut self,
        at: Timestamp,
        step_id: &str,
        title: String,
    ) -> Card {
        let id = self.new_id();
        self.card_with_id(at, id, step_id, title)
    }

    pub(super) fn card_with_id(
        &mut self,
        at: Timestamp,
        id: String,
        step_id: &str,
        title: String,
    ) -> Card {
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

    pub(in crate::sandbox) fn new_note(
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
    pub(in crate::sandbox) fn enrol(
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
