//! What the runner may conclude from an action's answers beyond success and failure, per
//! action, as data:
//!
//! - **unchanged answers**: API errors that mean the object was already in the requested state
//!   (`session.complete` on a completed session). A fresh run reports such an item `unchanged`;
//!   a resumed run, for an item the earlier run never finished, takes it as proof that the
//!   interrupted attempt worked (`succeeded`).
//! - **recovery** after a retried change meets a 4xx: the first, ambiguous try may have worked.
//! - **verification** of a non-idempotent write whose outcome is unknown: a read that tells
//!   whether the write happened (the session's messages, a sequence's contacts).
//!
//! Listed only where the answer is unambiguous; everything else has none. `actions NAME`
//! shows these rules.

use super::model::ActionSpec;

/// An API error answer: HTTP status and envelope `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub key: &'static str,
}

/// What a 4xx on the retry of an idempotent change means, when an earlier try was ambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing can be concluded: the 4xx is the item's failure.
    None,
    /// Read the session (`GET` of the same path without `/complete`): `status == COMPLETED`
    /// means the first try worked.
    SessionCompleted,
    /// A removal's 4xx after an ambiguous try means the object is gone: done.
    RemovalDone,
}

/// A read that tells whether a non-idempotent write happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// The session's messages (`message.list` of `session_id`): a message created since the
    /// run started whose text, template and file are the ones sent.
    SessionMessage,
    /// The sequence's contacts (`sequence.list_contacts`): the contact (by id or phone) is
    /// enrolled, added since the run started.
    SequenceContact,
}

/// The outcome rules of one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcomes {
    pub unchanged: &'static [Answer],
    pub recovery: Recovery,
    pub verify: Option<Verify>,
}

const NONE: Outcomes = Outcomes {
    unchanged: &[],
    recovery: Recovery::None,
    verify: None,
};

/// The outcome rules of an action (none for actions not listed).
pub fn outcomes(action: &ActionSpec) -> Outcomes {
    outcomes_of(action.name)
}

fn outcomes_of(name: &str) -> Outcomes {
    match name {
        "session.complete" => Outcomes {
            unchanged: &[Answer {
                status: 400,
                key: "ERROR_SESSION_ALREADY_COMPLETED",
            }],
            recovery: Recovery::SessionCompleted,
            verify: None,
        },
        "panel.delete_note" | "sequence.remove_contact" | "sequence.remove_contacts" => Outcomes {
            recovery: Recovery::RemovalDone,
            ..NONE
        },
        "session.send_text" | "session.send_template" | "session.send_file" => Outcomes {
            verify: Some(Verify::SessionMessage),
            ..NONE
        },
        "sequence.add_contact" => Outcomes {
            verify: Some(Verify::SequenceContact),
            ..NONE
        },
        _ => NONE,
    }
}

impl Outcomes {
    /// Whether this API answer means "already in the requested state".
    pub fn is_unchanged(&self, status: u16, key: Option<&str>) -> bool {
        self.unchanged
            .iter()
            .any(|a| a.status == status && key == Some(a.key))
    }

    /// Lines for `actions NAME`; empty when the action has no rules.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in self.unchanged {
            out.push(format!(
                "already in the requested state: {} {} → `unchanged` (a resumed run: the interrupted attempt worked → `succeeded`)",
                a.status, a.key
            ));
        }
        match self.recovery {
            Recovery::None => {}
            Recovery::SessionCompleted => out.push(
                "a 4xx on a retry after an ambiguous failure is checked with GET of the session: COMPLETED → succeeded".into(),
            ),
            Recovery::RemovalDone => out.push(
                "a 4xx on a retry after an ambiguous failure means the object is already gone → succeeded".into(),
            ),
        }
        match self.verify {
            None => {}
            Some(Verify::SessionMessage) => out.push(
                "an unknown outcome is verified by listing the session's messages (same text, template and file, since the run started)".into(),
            ),
            Some(Verify::SequenceContact) => out.push(
                "an unknown outcome is verified by listing the sequence's contacts (the contact enrolled since the run started)".into(),
            ),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{actions, lookup};

    #[test]
    fn every_named_action_exists_and_verified_actions_are_not_retry_safe() {
        for name in [
            "session.complete",
            "panel.delete_note",
            "sequence.remove_contact",
            "sequence.remove_contacts",
            "session.send_text",
            "session.send_template",
            "session.send_file",
            "sequence.add_contact",
        ] {
            assert!(lookup(name).is_some(), "{name} is not in the catalog");
        }
        for a in actions() {
            let o = outcomes(a);
            if o.verify.is_some() {
                assert!(
                    !a.idempotent,
                    "{}: verification is for unsafe writes",
                    a.name
                );
            }
            if o.recovery != Recovery::None {
                assert!(a.idempotent, "{}: recovery is for retried changes", a.name);
            }
        }
    }

    #[test]
    fn unchanged_matches_status_and_key() {
        let o = outcomes(lookup("session.complete").unwrap());
        assert!(o.is_unchanged(400, Some("ERROR_SESSION_ALREADY_COMPLETED")));
        assert!(!o.is_unchanged(400, Some("ERROR_VALIDATION")));
        assert!(!o.is_unchanged(404, Some("ERROR_SESSION_ALREADY_COMPLETED")));
        assert!(!o.is_unchanged(400, None));
        assert!(outcomes(lookup("session.send_text").unwrap())
            .unchanged
            .is_empty());
        assert!(!o.describe().is_empty());
    }
}
