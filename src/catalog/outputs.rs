//! What each action returns, for `actions NAME` and templates: the fields a later step can read
//! (`steps.ID.output.FIELD`, or `item.output.FIELD` over a fan-out's results). Kept beside the
//! catalog data, keyed by action name; a test checks that every action has one. Shapes are those
//! of wts-api.md §10 (every field may be missing or `null`; the body is passed through as is).

use serde::Serialize;

/// The shape of an action's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Output {
    /// One object of this type.
    Object { object: &'static str },
    /// The page envelope with `items[]` of this type (`paginate` merges every page's items).
    Page { object: &'static str },
    /// A send: `QuickMessage` (queued), or `Message` with `sync: true`.
    Send,
    /// 200 with no body: the output is `null`.
    Nothing,
    /// The raw `http` action: whatever the route returns.
    Raw,
}

/// The fields of a response object (wts-api.md §10), top level only.
pub(super) const OBJECTS: &[(&str, &[&str])] = &[
    (
        "Contact",
        &[
            "id",
            "createdAt",
            "updatedAt",
            "companyId",
            "name",
            "nameWhatsapp",
            "nameInstagram",
            "nameMessenger",
            "phoneNumber",
            "phoneNumberFormatted",
            "email",
            "instagram",
            "messengerId",
            "annotation",
            "tagIds",
            "tagNames",
            "status",
            "origin",
            "importedAt",
            "utm",
            "customFields",
            "portfolioIds",
            "portfolioNames",
            "metadata",
        ],
    ),
    (
        "Message",
        &[
            "id",
            "createdAt",
            "updatedAt",
            "timestamp",
            "type",
            "senderId",
            "sessionId",
            "templateId",
            "userId",
            "direction",
            "status",
            "origin",
            "text",
            "fileId",
            "refId",
            "readContactAt",
            "details",
            "failedReason",
            "filesIds",
        ],
    ),
    (
        "QuickMessage",
        &[
            "id",
            "createdAt",
            "updatedAt",
            "sessionId",
            "senderId",
            "status",
            "statusUrl",
            "failureReason",
        ],
    ),
    (
        "MessageStatus",
        &[
            "id",
            "createdAt",
            "updatedAt",
            "sessionId",
            "status",
            "failureReason",
        ],
    ),
    (
        "Session",
        &[
            "id",
            "createdAt",
            "updatedAt",
            "startAt",
            "endAt",
            "status",
            "companyId",
            "contactId",
            "channelId",
            "departmentId",
            "userId",
            "title",
            "number",
            "origin",
            "contactDetails",
            "agentDetails",
            "channelDetails",
            "departmentDetails",
            "classification",
            "botId",
            "unreadCount",
            "lastMessageText",
            "lastInteractionDate",
            "lastMessageOut",
            "lastMessageIn",
            "windowStatus",
            "metadata",
            "channelType",
        ],
    ),
    (
        "Card",
        &[
            "id",
            "createdAt",
            "updatedAt",
            "companyId",
            "panelId",
            "panelTitle",
            "stepId",
            "stepTitle",
            "stepPhase",
            "position",
            "title",
            "description",
            "key",
            "number",
            "dueDate",
            "isOverdue",
            "tagIds",
            "sessionId",
            "monetaryAmount",
            "responsibleUserId",
            "responsibleUser",
            "contactIds",
            "contacts",
            "customFields",
            "metadata",
        ],
    ),
    (
        "Note",
        &[
            "id",
            "createdAt",
            "updatedAt",
            "companyId",
            "panelId",
            "cardId",
            "userId",
            "text",
            "files",
            "isFromPublicApi",
        ],
    ),
    (
        "Panel",
        &[
            "id",
            "createdAt",
            "updatedAt",
            "companyId",
            "archived",
            "scope",
            "departmentIds",
            "userId",
            "title",
            "description",
            "key",
            "overdueCardCount",
            "stepTitles",
            "tags",
            "steps",
            "type",
            "autoLossDays",
        ],
    ),
    (
        "Sequence",
        &[
            "id",
            "active",
            "createdAt",
            "updatedAt",
            "companyId",
            "name",
            "enabled",
            "contactExecutingCount",
        ],
    ),
    (
        "SequenceContact",
        &[
            "id",
            "active",
            "createdAt",
            "updatedAt",
            "companyId",
            "sequenceId",
            "contactId",
            "contactName",
            "origin",
            "addedByUserId",
            "addedByChatbotId",
            "lastAddedAt",
            "contactDetails",
        ],
    ),
];

/// The page envelope's own fields (wts-api.md §10.1), besides `items`.
pub const PAGE_FIELDS: &[&str] = &[
    "pageNumber",
    "pageSize",
    "orderBy",
    "orderDirection",
    "totalItems",
    "totalPages",
    "hasMorePages",
];

/// Every action's output (wts-api.md §4–§9, "Response:").
const OUTPUTS: &[(&str, Output)] = &[
    ("contact.create", obj("Contact")),
    ("contact.list", page("Contact")),
    ("contact.get", obj("Contact")),
    ("contact.get_by_phone", obj("Contact")),
    ("contact.update", obj("Contact")),
    ("message.list", page("Message")),
    ("message.get", obj("Message")),
    ("message.get_status", obj("MessageStatus")),
    ("message.send_file", Output::Send),
    ("message.send_template", Output::Send),
    ("message.send_text", Output::Send),
    ("session.change_status", obj("Session")),
    ("session.complete", obj("Session")),
    ("session.list", page("Session")),
    ("session.get", obj("Session")),
    ("session.send_file", Output::Send),
    ("session.send_template", Output::Send),
    ("session.send_text", Output::Send),
    ("session.transfer", obj("Session")),
    ("session.assign", obj("Session")),
    ("session.update", obj("Session")),
    ("panel.create_note_file", obj("Note")),
    ("panel.create_note_text", obj("Note")),
    ("panel.create_card", obj("Card")),
    ("panel.delete_note", Output::Nothing),
    ("panel.duplicate_card", obj("Card")),
    ("panel.list_notes", page("Note")),
    ("panel.list_cards", page("Card")),
    ("panel.list", page("Panel")),
    ("panel.get_card", obj("Card")),
    ("panel.get", obj("Panel")),
    ("panel.update_card", obj("Card")),
    ("chatbot.send", obj("Session")),
    ("sequence.add_contact", obj("SequenceContact")),
    ("sequence.add_contacts", page("SequenceContact")),
    ("sequence.list", page("Sequence")),
    ("sequence.list_contacts", page("SequenceContact")),
    ("sequence.remove_contact", Output::Nothing),
    ("sequence.remove_contacts", Output::Nothing),
    ("http", Output::Raw),
];

const fn obj(object: &'static str) -> Output {
    Output::Object { object }
}

const fn page(object: &'static str) -> Output {
    Output::Page { object }
}

/// The output shape of an action.
pub fn output_of(action: &str) -> Option<Output> {
    OUTPUTS.iter().find(|(a, _)| *a == action).map(|(_, o)| *o)
}

/// The fields of a response object.
pub fn fields_of(object: &str) -> &'static [&'static str] {
    OBJECTS
        .iter()
        .find(|(o, _)| *o == object)
        .map_or(&[], |(_, f)| f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_an_output_and_every_object_its_fields() {
        for name in crate::catalog::names() {
            let out = output_of(name).unwrap_or_else(|| panic!("{name} has no output shape"));
            if let Output::Object { object } | Output::Page { object } = out {
                assert!(
                    !fields_of(object).is_empty(),
                    "{name}: {object} has no fields"
                );
            }
        }
        assert_eq!(
            OUTPUTS.len(),
            crate::catalog::names().count(),
            "no stale entries"
        );
        let spec = crate::catalog::lookup("session.list").expect("in the catalog");
        assert!(spec.paginated);
        // Paginated actions, and only they, answer a page.
        for name in crate::catalog::names() {
            let spec = crate::catalog::lookup(name).expect("listed");
            if spec.paginated {
                assert!(
                    matches!(output_of(name), Some(Output::Page { .. })),
                    "{name} is paginated"
                );
            }
        }
    }
}
