//! `sandbox --strict`: the ids a request names must exist, as on a real account. By default the
//! sandbox materializes any id it has not seen (so any playbook runs); in strict mode an id in the
//! route's path (session, contact, card, message, sequence, panel, phone number) or in the
//! body's id fields (sessions, contacts, steps, panels, cards, sequences, departments, users)
//! that the account does not have is a 404, and nothing changes: a playbook's negative paths
//! (`when`, `on_error`, a lookup that finds nothing) can be rehearsed.

use std::collections::HashMap;

use serde_json::Value;

use super::state::{phone_digits, World};
use super::wire::ApiError;

/// What kind of object a path parameter or a body field names.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Session,
    Contact,
    Card,
    Message,
    Sequence,
    Panel,
    Step,
    Department,
    User,
    Phone,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Session => "Sessão",
            Kind::Contact | Kind::Phone => "Contato",
            Kind::Card => "Card",
            Kind::Message => "Mensagem",
            Kind::Sequence => "Sequência",
            Kind::Panel => "Painel",
            Kind::Step => "Etapa",
            Kind::Department => "Departamento",
            Kind::User => "Usuário",
        }
    }

    fn exists(self, w: &World, id: &str) -> bool {
        match self {
            Kind::Session => w.sessions.contains_key(id),
            Kind::Contact => w.contacts.contains_key(id),
            Kind::Card => w.cards.contains_key(id),
            Kind::Message => w.messages.contains_key(id),
            Kind::Sequence => w.sequences.contains_key(id),
            Kind::Panel => w.panels.contains_key(id),
            Kind::Step => w.steps.contains_key(id),
            Kind::Department => w.departments.iter().any(|d| d["id"] == id),
            Kind::User => w.agents.iter().any(|a| a["userId"] == id),
            Kind::Phone => w.phones.contains_key(&phone_digits(id)),
        }
    }
}

const PATH_PARAMS: &[(&str, Kind)] = &[
    ("session_id", Kind::Session),
    ("contact_id", Kind::Contact),
    ("card_id", Kind::Card),
    ("message_id", Kind::Message),
    ("sequence_id", Kind::Sequence),
    ("panel_id", Kind::Panel),
    ("phone_number", Kind::Phone),
];

const BODY_FIELDS: &[(&str, Kind)] = &[
    ("sessionId", Kind::Session),
    ("contactId", Kind::Contact),
    ("cardId", Kind::Card),
    ("sequenceId", Kind::Sequence),
    ("panelId", Kind::Panel),
    ("stepId", Kind::Step),
    ("copyToStepId", Kind::Step),
    ("departmentId", Kind::Department),
    ("newDepartmentId", Kind::Department),
    ("userId", Kind::User),
    ("newUserId", Kind::User),
    ("responsibleUserId", Kind::User),
];

/// The 404 of the first id the request names that the account does not have.
pub(super) fn check(
    w: &World,
    params: &HashMap<String, String>,
    body: &Value,
) -> Result<(), ApiError> {
    for (name, kind) in PATH_PARAMS {
        if let Some(id) = params.get(*name) {
            if !kind.exists(w, id) {
                return Err(ApiError::not_found(kind.what(), id));
            }
        }
    }
    for (field, kind) in BODY_FIELDS {
        if let Some(id) = body.get(*field).and_then(Value::as_str) {
            if !id.is_empty() && !kind.exists(w, id) {
                return Err(ApiError::not_found(kind.what(), id));
            }
        }
    }
    Ok(())
}
