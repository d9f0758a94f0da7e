//! The read class of each action: which actions only read the account (`plan` sends them for
//! real) and which change it (`plan` renders them without sending; `apply` sends them).
//!
//! Classed by action, not by HTTP method: a `GET` is not a read because it is a `GET`, but
//! because the catalog says what the action does. The raw `http` action is always a write (its
//! route is free text, so nothing says what it does): `plan` never sends it.

use super::model::ActionSpec;

/// What kind of read an action is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadKind {
    /// One page of a listing (`paginate` reads every page).
    List,
    /// One object by id.
    Get,
    /// One object by another key (a phone number).
    Lookup,
    /// The delivery status of a message.
    Status,
}

impl ReadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadKind::List => "list",
            ReadKind::Get => "get",
            ReadKind::Lookup => "lookup",
            ReadKind::Status => "status",
        }
    }
}

/// Whether an action reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionClass {
    Read(ReadKind),
    Write,
}

/// The reads of the catalog, by action name (every other action, `http` included, writes).
/// The list actions take the filters of their route family (`status`, `department_id`, ...).
pub const READS: &[(&str, ReadKind)] = &[
    ("contact.list", ReadKind::List),
    ("contact.get", ReadKind::Get),
    ("contact.get_by_phone", ReadKind::Lookup),
    ("message.list", ReadKind::List),
    ("message.get", ReadKind::Get),
    ("message.get_status", ReadKind::Status),
    ("session.list", ReadKind::List),
    ("session.get", ReadKind::Get),
    ("panel.list_notes", ReadKind::List),
    ("panel.list_cards", ReadKind::List),
    ("panel.list", ReadKind::List),
    ("panel.get_card", ReadKind::Get),
    ("panel.get", ReadKind::Get),
    ("sequence.list", ReadKind::List),
    ("sequence.list_contacts", ReadKind::List),
];

/// The class of an action (either route family: both read or both write).
pub fn class_of(spec: &ActionSpec) -> ActionClass {
    READS
        .iter()
        .find(|(name, _)| *name == spec.name)
        .map_or(ActionClass::Write, |(_, kind)| ActionClass::Read(*kind))
}

/// Whether `plan` sends this action for real.
pub fn is_read(spec: &ActionSpec) -> bool {
    matches!(class_of(spec), ActionClass::Read(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{actions, lookup, Method, Routes};

    #[test]
    fn every_read_is_a_catalog_action() {
        for (name, _) in READS {
            assert!(lookup(name).is_some(), "{name} is not in the catalog");
        }
    }

    #[test]
    fn reads_and_writes_are_classed_by_action() {
        let reads: Vec<&str> = actions()
            .iter()
            .filter(|a| is_read(a))
            .map(|a| a.name)
            .collect();
        assert_eq!(reads.len(), 15, "{reads:?}");
        // Every read is a GET in both families, but not every GET is a read: `http` with its
        // default method is a write.
        for a in actions().iter().filter(|a| is_read(a)) {
            for routes in [Routes::Documented, Routes::Node] {
                let spec = crate::catalog::lookup_for(a.name, routes).unwrap();
                assert_eq!(spec.method, Method::Get, "{}", a.name);
                assert!(is_read(spec));
            }
        }
        let http = lookup("http").unwrap();
        assert_eq!(http.method, Method::Get);
        assert_eq!(class_of(http), ActionClass::Write);
        for w in [
            "session.complete",
            "session.transfer",
            "panel.create_card",
            "sequence.remove_contact",
        ] {
            assert_eq!(class_of(lookup(w).unwrap()), ActionClass::Write, "{w}");
        }
        assert_eq!(
            class_of(lookup("contact.get_by_phone").unwrap()),
            ActionClass::Read(ReadKind::Lookup)
        );
        assert_eq!(
            class_of(lookup("message.get_status").unwrap()),
            ActionClass::Read(ReadKind::Status)
        );
    }
}
