//! The catalog itself: the 39 actions of the WTS Chat API as static [`ActionSpec`] values,
//! plus the raw `http` pseudo-action (`docs/api-notes.md` explains the conventions).
//!
//! In: nothing (pure data). Out: [`actions`] (the 39, grouped by resource), [`lookup`] (any name,
//! `http` included) and [`names`] (for "did you mean" hints).
//!
//! Each parameter is one [`ParamSpec`]; the shared sets L (list and paging parameters), Q
//! (quick-send parameters) and F (file input) are expanded per action where they apply. `path`
//! is the route the n8n node calls; for ten actions the documented successor lives in
//! `routes.rs`, and a parameter only one family has is marked `node_only` / `documented_only`
//! (api-notes, "Two route families"). *API* rows are documented fields the node does not expose.

use super::model::{
    ActionSpec, Location, Method, ParamSpec, ParamType, Required, Routes, Rule, Scalar,
};

// ---------------------------------------------------------------------------------------------
// Small constructors so that the tables below read like the reference's tables.

const STR: ParamType = ParamType::One(Scalar::String);
const UUID: ParamType = ParamType::One(Scalar::Uuid);
const BOOL: ParamType = ParamType::One(Scalar::Bool);
const INT: ParamType = ParamType::One(Scalar::Int);
const NUM: ParamType = ParamType::One(Scalar::Number);
const DT: ParamType = ParamType::One(Scalar::DateTime);
const MAP: ParamType = ParamType::Map;
const UUIDS: ParamType = ParamType::List(Scalar::Uuid);
const STRS: ParamType = ParamType::List(Scalar::String);

const fn one_of(values: &'static [&'static str]) -> ParamType {
    ParamType::One(Scalar::Enum(values))
}
const fn list_of(values: &'static [&'static str]) -> ParamType {
    ParamType::List(Scalar::Enum(values))
}

const YES: Required = Required::Yes;
const COND: Required = Required::Cond;
const NO: Required = Required::No;

const PATH: Location = Location::Path;
const ROUTE: Location = Location::Route;
const RUNNER: Location = Location::Runner;
const fn q(key: &'static str) -> Location {
    Location::Query(key)
}
const fn b(pointer: &'static str) -> Location {
    Location::Body(pointer)
}

const fn p(
    name: &'static str,
    ty: ParamType,
    required: Required,
    location: Location,
    doc: &'static str,
) -> ParamSpec {
    ParamSpec {
        name,
        ty,
        required,
        default: None,
        location,
        field: None,
        doc,
        only: None,
    }
}

impl ParamSpec {
    /// What the server does when the parameter is absent (documentation only).
    const fn dflt(mut self, default: &'static str) -> Self {
        self.default = Some(default);
        self
    }
    /// The `fields` entry this parameter implies in a partial update (api-notes, "Partial updates").
    const fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
    /// The parameter exists only on the node's legacy route.
    const fn node_only(mut self) -> Self {
        self.only = Some(Routes::Node);
        self
    }
    /// The parameter exists only on the documented successor route.
    const fn documented_only(mut self) -> Self {
        self.only = Some(Routes::Documented);
        self
    }
}

/// Total length of several parameter slices (for [`concat`]).
const fn total_len(parts: &[&[ParamSpec]]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < parts.len() {
        n += parts[i].len();
        i += 1;
    }
    n
}

/// Concatenates parameter slices at compile time (own rows + shared sets).
const fn concat<const N: usize>(parts: &[&[ParamSpec]]) -> [ParamSpec; N] {
    let mut out = [p("", STR, NO, ROUTE, ""); N];
    let mut k = 0;
    let mut i = 0;
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            out[k] = parts[i][j];
            k += 1;
            j += 1;
        }
        i += 1;
    }
    assert!(k == N, "concat: length mismatch");
    out
}

/// `params![OWN, SHARED, ...]`: a `&'static [ParamSpec]` of the slices, in order.
macro_rules! params {
    ($($part:expr),+ $(,)?) => {{
        const PARTS: &[&[ParamSpec]] = &[$($part),+];
        const N: usize = total_len(PARTS);
        const OUT: [ParamSpec; N] = concat(PARTS);
        &OUT
    }};
}

// ---------------------------------------------------------------------------------------------
// Enum value sets.

const ORDER_DIRECTION: &[&str] = &["ASCENDING", "DESCENDING"];
const CONTACT_DETAILS: &[&str] = &["Tags", "CustomFields", "Portfolios"];
const CONTACT_STATUS: &[&str] = &["ACTIVE", "ARCHIVED", "BLOCKED"];
const CONTACT_FIELDS: &[&str] = &[
    "Name",
    "PhoneNumber",
    "Email",
    "Instagram",
    "Annotation",
    "Tags",
    "Status",
    "CustomFields",
    "PictureUrl",
    "Portfolio",
    "SequenceIds",
    "Utm",
    "Metadata",
];
const UPSERT_TAG_OPERATION_UPPER: &[&str] = &["INSERTIFNOTEXISTS", "DELETEIFEXISTS", "REPLACEALL"];
const TAG_OPERATION: &[&str] = &["InsertIfNotExists", "DeleteIfExists", "ReplaceAll"];
/// Upload file types (`Type` of the upload, api-notes "Files").
pub const FILE_TYPE: &[&str] = &[
    "UNDEFINED",
    "PDF",
    "EXCEL",
    "WORD",
    "IMAGE",
    "AUDIO",
    "VIDEO",
    "DOCUMENT",
];
/// Target statuses: the API enum without `UNDEFINED`, which is not a valid target for a status change.
const SESSION_TARGET_STATUS: &[&str] =
    &["STARTED", "PENDING", "IN_PROGRESS", "COMPLETED", "HIDDEN"];
const SESSION_STATUS_FILTER: &[&str] = &[
    "UNDEFINED",
    "STARTED",
    "PENDING",
    "IN_PROGRESS",
    "COMPLETED",
    "HIDDEN",
];
const SESSION_DETAILS: &[&str] = &[
    "AgentDetails",
    "ChannelDetails",
    "ChannelTypeDetails",
    "ClassificationDetails",
    "ContactDetails",
    "DepartmentsDetails",
    "Undefined",
];
const SESSION_TYPE: &[&str] = &["INDIVIDUAL", "GROUP"];
const TRANSFER_TYPE: &[&str] = &["DEPARTMENT", "USER"];
const SESSION_FIELDS: &[&str] = &[
    "Status",
    "EndAt",
    "UserId",
    "DepartmentId",
    "ReactivateDisabled",
    "Autocomplete",
    "Number",
    "Metadata",
    "Classification",
];
const CLASSIFICATION_CATEGORY: &[&str] = &["UNDEFINED", "WON", "LOST", "INFO", "OTHER"];
const DUPLICATE_FIELDS: &[&str] = &[
    "All",
    "Amount",
    "Contacts",
    "CustomFields",
    "DueDate",
    "MonetaryAmount",
    "Notes",
    "ResponsibleUser",
    "Tags",
    "Undefined",
];
const CARD_STATUS: &[&str] = &["OPEN", "WON", "LOST", "ARCHIVED"];
/// Card details; `LostReason` exists on the documented (v2) routes only.
const CARD_DETAILS: &[&str] = &[
    "Contacts",
    "CustomFields",
    "PanelTitle",
    "ResponsibleUser",
    "StepPhase",
    "StepTitle",
    "LostReason",
];
const PANEL_TYPE: &[&str] = &["MANAGEMENT", "SALES"];
const PANELS_DETAILS: &[&str] = &["Tags", "Steps", "StepsCardCount", "PanelCardOverdueCount"];
const PANEL_DETAILS: &[&str] = &["Cards", "Steps", "StepsCardCount", "StepsFields", "Tags"];
const CARD_FIELDS: &[&str] = &[
    "Archived",
    "ContactIds",
    "CustomFields",
    "Description",
    "DueDate",
    "Metadata",
    "MonetaryAmount",
    "Position",
    "ResponsibleUserId",
    "SessionId",
    "StepId",
    "TagIds",
    "Title",
    "Status",
];
const SEQUENCE_DETAILS: &[&str] = &["ContactExecutingCount", "ExecutionStats"];
const SEQUENCE_CONTACT_DETAILS: &[&str] = &["ContactDetails"];
const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH"];

// ---------------------------------------------------------------------------------------------
// Shared parameter sets.

/// L: list parameters (paging and creation/update time filters, api-notes "Pages").
const L: &[ParamSpec] = &[
    p(
        "page_number",
        INT,
        NO,
        q("PageNumber"),
        "Page to fetch, ≥ 1; the first page is 1.",
    )
    .dflt("1"),
    p(
        "page_size",
        INT,
        NO,
        q("PageSize"),
        "Items per page, 1–100.",
    )
    .dflt("15"),
    p(
        "order_by",
        STR,
        NO,
        q("OrderBy"),
        "Name of a field of the listed object (e.g. createdAt).",
    )
    .dflt("server order"),
    p(
        "order_direction",
        one_of(ORDER_DIRECTION),
        NO,
        q("OrderDirection"),
        "Sort direction.",
    )
    .dflt("server default"),
    p(
        "created_at_after",
        DT,
        NO,
        q("CreatedAt.After"),
        "Created at or after (UTC).",
    ),
    p(
        "created_at_before",
        DT,
        NO,
        q("CreatedAt.Before"),
        "Created at or before (UTC).",
    ),
    p(
        "updated_at_after",
        DT,
        NO,
        q("UpdatedAt.After"),
        "Updated at or after (UTC).",
    ),
    p(
        "updated_at_before",
        DT,
        NO,
        q("UpdatedAt.Before"),
        "Updated at or before (UTC).",
    ),
];

/// Q: quick-send parameters of the `message.send_*` actions.
const Q: &[ParamSpec] = &[
    p(
        "to",
        STR,
        YES,
        b("/to"),
        "Recipient: phone with country code or @instagram_user.",
    ),
    p(
        "from",
        STR,
        NO,
        b("/from"),
        "Sending channel (channel id, phone or @user), verbatim.",
    )
    .dflt("platform picks the channel"),
    p(
        "bot_key",
        UUID,
        NO,
        b("/botKey"),
        "Chatbot key started when the contact replies; not with bot_id.",
    ),
    p(
        "bot_id",
        UUID,
        NO,
        b("/botId"),
        "Bot id (the field the node sends); not with bot_key.",
    ),
    p(
        "department_id",
        UUID,
        NO,
        b("/department/id"),
        "Department for a newly created session.",
    ),
    p(
        "department_name",
        STR,
        NO,
        b("/department/name"),
        "API: department by name.",
    ),
    p(
        "user_id",
        UUID,
        NO,
        b("/user/id"),
        "Agent userId for a newly created session.",
    ),
    p(
        "user_phone_number",
        STR,
        NO,
        b("/user/phoneNumber"),
        "API: agent by phone.",
    ),
    p(
        "user_email",
        STR,
        NO,
        b("/user/email"),
        "API: agent by e-mail.",
    ),
    p(
        "enable_bot",
        BOOL,
        NO,
        b("/options/enableBot"),
        "Start the chatbot when the contact answers.",
    )
    .dflt("false"),
    p(
        "hidden_session",
        BOOL,
        NO,
        b("/options/hiddenSession"),
        "New session hidden until the contact replies.",
    )
    .dflt("false"),
    p(
        "force_start_session",
        BOOL,
        NO,
        b("/options/forceStartSession"),
        "Complete any session in progress and start a new one.",
    )
    .dflt("false"),
    p(
        "ref_id",
        UUID,
        NO,
        b("/body/refId"),
        "API: reply to this message.",
    ),
    p(
        "sync",
        BOOL,
        NO,
        ROUTE,
        "true: use the synchronous send route (it waits for the provider, up to 25 s).",
    )
    .dflt("false"),
];

/// The runner-consumed half of F (file input: `file_base64` is uploaded first).
const F_RUNNER: &[ParamSpec] = &[
    p(
        "file_base64",
        STR,
        COND,
        RUNNER,
        "runner: file content in base64; uploaded, sent as fileId.",
    ),
    p(
        "file_name",
        STR,
        COND,
        RUNNER,
        "runner: upload name with extension; required with file_base64.",
    ),
    p(
        "file_mime_type",
        STR,
        NO,
        RUNNER,
        "runner: upload MIME type.",
    )
    .dflt("inferred from type/extension"),
    p(
        "file_type",
        one_of(FILE_TYPE),
        NO,
        RUNNER,
        "runner: upload type; IMAGE/VIDEO are transcoded.",
    )
    .dflt("UNDEFINED"),
];

/// F (file input) for the quick sends: the file goes under `/body`.
const F_QUICK: &[ParamSpec] = params![
    &[
        p(
            "file_url",
            STR,
            COND,
            b("/body/fileUrl"),
            "Public URL the platform downloads."
        ),
        p(
            "file_id",
            UUID,
            COND,
            b("/body/fileId"),
            "Id of an uploaded file."
        ),
    ],
    F_RUNNER,
];

/// F (file input) for the in-session sends: the body is flat.
const F_SESSION: &[ParamSpec] = params![
    &[
        p(
            "file_url",
            STR,
            COND,
            b("/fileUrl"),
            "Public URL the platform downloads."
        ),
        p(
            "file_id",
            UUID,
            COND,
            b("/fileId"),
            "Id of an uploaded file."
        ),
    ],
    F_RUNNER,
];

// Rules shared by several actions.
const FILE_SOURCE: Rule = Rule::ExactlyOne(&["file_url", "file_id", "file_base64"]);
const FILE_SOURCE_OPTIONAL: Rule = Rule::AtMostOne(&["file_url", "file_id", "file_base64"]);
const BASE64_NAME: Rule = Rule::Requires("file_base64", "file_name");
const ONE_BOT_AT_MOST: Rule = Rule::AtMostOne(&["bot_key", "bot_id"]);

const INCLUDE_CONTACT_DETAILS: ParamSpec = p(
    "include_details",
    list_of(CONTACT_DETAILS),
    NO,
    q("IncludeDetails"),
    "Extra details to include.",
);

// ---------------------------------------------------------------------------------------------
// Contacts (service core).

const CONTACT_CREATE: ActionSpec = ActionSpec {
    name: "contact.create",
    summary: "Create a contact (or upsert / get it if it exists)",
    n8n_operation: "createContact",
    method: Method::Post,
    path: "/core/v1/contact",
    sync_path: None,
    idempotent: false,
    paginated: false,
    fields_pointer: None,
    params: &[
        p("name", STR, NO, b("/name"), "Contact name."),
        p(
            "email",
            STR,
            NO,
            b("/email"),
            "E-mail address; malformed addresses are rejected.",
        ),
        p(
            "phone_number",
            STR,
            NO,
            b("/phoneNumber"),
            "WhatsApp number.",
        ),
        p("instagram", STR, NO, b("/instagram"), "Instagram username."),
        p(
            "annotation",
            STR,
            NO,
            b("/annotation"),
            "Internal team note.",
        ),
        p(
            "tag_ids",
            UUIDS,
            NO,
            b("/tagIds"),
            "Tag ids (GET /core/v1/tag).",
        ),
        p(
            "tag_names",
            STRS,
            NO,
            b("/tagNames"),
            "API: tag names; ignored when tag_ids is set.",
        ),
        p(
            "portfolio_ids",
            UUIDS,
            NO,
            b("/portfolioIds"),
            "API: portfolio ids.",
        ),
        p(
            "portfolio_names",
            STRS,
            NO,
            b("/portfolioNames"),
            "API: portfolio names; ignored when portfolio_ids is set.",
        ),
        p(
            "sequence_ids",
            UUIDS,
            NO,
            b("/sequenceIds"),
            "API: enrol the contact in these sequences.",
        ),
        p(
            "custom_fields",
            MAP,
            NO,
            b("/customFields"),
            "Custom-field key → value.",
        ),
        p(
            "metadata",
            MAP,
            NO,
            b("/metadata"),
            "Free key/value; a null value removes the key.",
        ),
        p(
            "upsert",
            BOOL,
            NO,
            b("/options/upsert"),
            "If the contact exists, update and return it.",
        )
        .dflt("false"),
        p(
            "get_if_exists",
            BOOL,
            NO,
            b("/options/getIfExists"),
            "If the contact exists, return it unchanged.",
        )
        .dflt("false"),
        p(
            "upsert_fields",
            list_of(CONTACT_FIELDS),
            NO,
            b("/options/upsertFields"),
            "API: attributes an upsert may change.",
        )
        .dflt("all fields"),
        p(
            "upsert_tag_operation",
            one_of(UPSERT_TAG_OPERATION_UPPER),
            NO,
            b("/options/upsertTagOperation"),
            "API: tag handling on upsert.",
        )
        .dflt("REPLACEALL"),
    ],
    rules: &[],
};

const CONTACT_LIST: ActionSpec = ActionSpec {
    name: "contact.list",
    summary: "List contacts (one page)",
    n8n_operation: "listContacts",
    method: Method::Get,
    path: "/core/v1/contact",
    sync_path: None,
    idempotent: true,
    paginated: true,
    fields_pointer: None,
    params: params![
        &[
            INCLUDE_CONTACT_DETAILS,
            p(
                "status",
                one_of(CONTACT_STATUS),
                NO,
                q("Status"),
                "Contact status filter."
            )
            .dflt("ACTIVE"),
        ],
        L,
    ],
    rules: &[],
};

const CONTACT_GET: ActionSpec = ActionSpec {
    name: "contact.get",
    summary: "Get a contact by id",
    n8n_operation: "getContactById",
    method: Method::Get,
    path: "/core/v1/contact/{contact_id}",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: None,
    params: &[
        p("contact_id", UUID, YES, PATH, "Contact id."),
        INCLUDE_CONTACT_DETAILS,
    ],
    rules: &[],
};

const CONTACT_GET_BY_PHONE: ActionSpec = ActionSpec {
    name: "contact.get_by_phone",
    summary: "Get a contact by phone number",
    n8n_operation: "getContactByPhone",
    method: Method::Get,
    path: "/core/v1/contact/phonenumber/{phone_number}",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: None,
    params: &[
        p(
            "phone_number",
            STR,
            YES,
            PATH,
            "Digits with country code, e.g. 5511999999999.",
        ),
        INCLUDE_CONTACT_DETAILS,
    ],
    rules: &[],
};

const CONTACT_UPDATE: ActionSpec = ActionSpec {
    name: "contact.update",
    summary: "Update a contact partially (fields mechanism)",
    n8n_operation: "updateContact",
    method: Method::Put,
    path: "/core/v1/contact/{contact_id}",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: Some("/fields"),
    params: &[
        p("contact_id", UUID, YES, PATH, "Contact id."),
        p(
            "fields",
            list_of(CONTACT_FIELDS),
            COND,
            b("/fields"),
            "Attributes to change; derived from the values when omitted.",
        )
        .dflt("derived"),
        p("name", STR, NO, b("/name"), "Name.").field("Name"),
        p("phone_number", STR, NO, b("/phoneNumber"), "Phone number.").field("PhoneNumber"),
        p("email", STR, NO, b("/email"), "E-mail address.").field("Email"),
        p("instagram", STR, NO, b("/instagram"), "Instagram username.").field("Instagram"),
        p(
            "annotation",
            STR,
            NO,
            b("/annotation"),
            "Internal team note.",
        )
        .field("Annotation"),
        p("tag_ids", UUIDS, NO, b("/tagIds"), "Tag ids.").field("Tags"),
        p(
            "tag_names",
            STRS,
            NO,
            b("/tagNames"),
            "API: tag names; ignored when tag_ids is set.",
        )
        .field("Tags"),
        p(
            "tags_operation",
            one_of(TAG_OPERATION),
            NO,
            b("/options/tagsOperation"),
            "API: how the given tags apply.",
        )
        .dflt("InsertIfNotExists"),
        p(
            "portfolio_ids",
            UUIDS,
            NO,
            b("/portfolioIds"),
            "Portfolio ids.",
        )
        .field("Portfolio"),
        p(
            "portfolio_names",
            STRS,
            NO,
            b("/portfolioNames"),
            "API: portfolio names.",
        )
        .field("Portfolio"),
        p(
            "sequence_ids",
            UUIDS,
            NO,
            b("/sequenceIds"),
            "Sequence ids.",
        )
        .field("SequenceIds"),
        p(
            "status",
            one_of(CONTACT_STATUS),
            NO,
            b("/status"),
            "Contact status.",
        )
        .field("Status"),
        p("picture_url", STR, NO, b("/pictureUrl"), "Picture URL.").field("PictureUrl"),
        p(
            "custom_fields",
            MAP,
            NO,
            b("/customFields"),
            "Custom-field key → value.",
        )
        .field("CustomFields"),
        p(
            "metadata",
            MAP,
            NO,
            b("/metadata"),
            "Add/overwrite; a null value removes the key.",
        )
        .field("Metadata"),
        p("utm_source", STR, NO, b("/utm/source"), "UTM source.").field("Utm"),
        p("utm_medium", STR, NO, b("/utm/medium"), "UTM medium.").field("Utm"),
        p("utm_campaign", STR, NO, b("/utm/campaign"), "UTM campaign.").field("Utm"),
        p("utm_content", STR, NO, b("/utm/content"), "UTM content.").field("Utm"),
        p("utm_headline", STR, NO, b("/utm/headline"), "UTM headline.").field("Utm"),
        p("utm_term", STR, NO, b("/utm/term"), "UTM term.").field("Utm"),
        p(
            "utm_referral_url",
            STR,
            NO,
            b("/utm/referralUrl"),
            "UTM referral URL.",
        )
        .field("Utm"),
        p(
            "utm_source_id",
            STR,
            NO,
            b("/utm/sourceId"),
            "API: UTM source id.",
        )
        .field("Utm"),
        p("utm_clid", STR, NO, b("/utm/clid"), "API: UTM click id.").field("Utm"),
    ],
    rules: &[],
};

// ---------------------------------------------------------------------------------------------
// Messages (service chat).

const MESSAGE_LIST: ActionSpec = ActionSpec {
    name: "message.list",
    summary: "List a session's messages (one page)",
    n8n_operation: "listMessages",
    method: Method::Get,
    path: "/chat/v1/message",
    sync_path: None,
    idempotent: true,
    paginated: true,
    fields_pointer: None,
    params: params![
        &[p(
            "session_id",
            UUID,
            YES,
            q("SessionId"),
            "Session whose messages are listed."
        )],
        L,
    ],
    rules: &[],
};

const MESSAGE_GET: ActionSpec = ActionSpec {
    name: "message.get",
    summary: "Get a message by id",
    n8n_operation: "getMessageById",
    method: Method::Get,
    path: "/chat/v1/message/{message_id}",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: None,
    params: &[p("message_id", UUID, YES, PATH, "Message id.")],
    rules: &[],
};

const MESSAGE_GET_STATUS: ActionSpec = ActionSpec {
    name: "message.get_status",
    summary: "Get a message's delivery status",
    n8n_operation: "getMessageStatus",
    method: Method::Get,
    path: "/chat/v1/message/{message_id}/status",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: None,
    params: &[p("message_id", UUID, YES, PATH, "Message id.")],
    rules: &[],
};

const MESSAGE_SEND_FILE: ActionSpec = ActionSpec {
    name: "message.send_file",
    summary: "Send a file to a contact (quick send)",
    n8n_operation: "sendFile",
    method: Method::Post,
    path: "/chat/v1/message/send",
    sync_path: Some("/chat/v1/message/send-sync"),
    idempotent: false,
    paginated: false,
    fields_pointer: None,
    params: params![F_QUICK, Q],
    rules: &[FILE_SOURCE, BASE64_NAME, ONE_BOT_AT_MOST],
};

const MESSAGE_SEND_TEMPLATE: ActionSpec = ActionSpec {
    name: "message.send_template",
    summary: "Send a template to a contact (opens a WhatsApp conversation)",
    n8n_operation: "sendTemplate",
    method: Method::Post,
    path: "/chat/v1/message/send",
    sync_path: Some("/chat/v1/message/send-sync"),
    idempotent: false,
    paginated: false,
    fields_pointer: None,
    params: params![
        &[
            p(
                "template_id",
                UUID,
                YES,
                b("/body/templateId"),
                "Template id (GET /chat/v1/template)."
            ),
            p(
                "parameters",
                MAP,
                COND,
                b("/body/parameters"),
                "Template parameters by name; required when the template has params."
            ),
        ],
        F_QUICK,
        Q,
    ],
    rules: &[FILE_SOURCE_OPTIONAL, BASE64_NAME, ONE_BOT_AT_MOST],
};

const MESSAGE_SEND_TEXT: ActionSpec = ActionSpec {
    name: "message.send_text",
    summary: "Send a text to a contact (quick send)",
    n8n_operation: "sendText",
    method: Method::Post,
    path: "/chat/v1/message/send",
    sync_path: Some("/chat/v1/message/send-sync"),
    idempotent: false,
    paginated: false,
    fields_pointer: None,
    params: params![&[p("text", STR, YES, b("/body/text"), "Message text.")], Q],
    rules: &[ONE_BOT_AT_MOST],
};

// ---------------------------------------------------------------------------------------------
// Sessions (service chat).

const SESSION_ID: ParamSpec = p("session_id", UUID, YES, PATH, "Session id.");
const STOP_BOT_OPTION: ParamSpec = p(
    "stop_bot_in_execution",
    BOOL,
    NO,
    b("/options/stopBotInExecution"),
    "API: also stop a running automation chatbot.",
)
.dflt("false");
const SESSION_REF_ID: ParamSpec = p(
    "ref_id",
    UUID,
    NO,
    b("/refId"),
    "API: reply to this message.",
);
const SESSION_SYNC: ParamSpec = p(
    "sync",
    BOOL,
    NO,
    ROUTE,
    "true: use the synchronous send route (it waits for the provider, up to 25 s).",
)
.dflt("false");
const SESSION_DETAILS_PARAM: ParamSpec = p(
    "include_details",
    list_of(SESSION_DETAILS),
    NO,
    q("IncludeDetails"),
    "Fill the *Details members of each session.",
);

const SESSION_CHANGE_STATUS: ActionSpec = ActionSpec {
    name: "session.change_status",
    summary: "Set a session's status",
    n8n_operation: "updateStatusSession",
    method: Method::Put,
    path: "/chat/v1/session/{session_id}/status",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: None,
    params: &[
        SESSION_ID,
        p(
            "new_status",
            one_of(SESSION_TARGET_STATUS),
            YES,
            b("/newStatus"),
            "Target status (UNDEFINED is rejected).",
        ),
        STOP_BOT_OPTION,
    ],
    rules: &[],
};

const SESSION_COMPLETE: ActionSpec = ActionSpec {
    name: "session.complete",
    summary: "Complete (close) a session",
    n8n_operation: "concludeSession",
    method: Method::Put,
    path: "/chat/v1/session/{session_id}/complete",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: None,
    params: &[
        SESSION_ID,
        p(
            "reactivate_on_new_message",
            BOOL,
            NO,
            b("/reactivateOnNewMessage"),
            "A later message from the contact reopens this session.",
        )
        .dflt("false"),
        p(
            "stop_bot_in_execution",
            BOOL,
            NO,
            b("/stopBotInExecution"),
            "API: also stop a running chatbot (top-level here).",
        )
        .dflt("false"),
    ],
    rules: &[],
};

const SESSION_LIST: ActionSpec = ActionSpec {
    name: "session.list",
    summary: "List sessions (one page)",
    n8n_operation: "listSessions",
    method: Method::Get,
    path: "/chat/v1/session",
    sync_path: None,
    idempotent: true,
    paginated: true,
    fields_pointer: None,
    params: params![
        &[
            p("channels_id", UUIDS, NO, q("ChannelsId"), "Channel filter."),
            p(
                "status",
                list_of(SESSION_STATUS_FILTER),
                NO,
                q("Status"),
                "Status filter (upper case)."
            ),
            SESSION_DETAILS_PARAM,
            p("tags_id", UUIDS, NO, q("TagsId"), "Tag filter."),
            p(
                "department_id",
                UUID,
                NO,
                q("DepartmentId"),
                "Department filter."
            ),
            p("user_id", UUID, NO, q("UserId"), "Agent userId filter."),
            p("contact_id", UUID, NO, q("ContactId"), "Contact filter."),
            p(
                "active_at_after",
                DT,
                NO,
                q("ActiveAt.After"),
                "Active at or after (UTC)."
            ),
            p(
                "active_at_before",
                DT,
                NO,
                q("ActiveAt.Before"),
                "Active at or before (UTC)."
            ),
            p(
                "end_at_after",
                DT,
                NO,
                q("EndAt.After"),
                "Ended at or after (UTC)."
            ),
            p(
                "end_at_before",
                DT,
                NO,
                q("EndAt.Before"),
                "Ended at or before (UTC)."
            ),
            p(
                "last_interaction_at_after",
                DT,
                NO,
                q("LastInteractionAt.After"),
                "Last interaction at or after (UTC)."
            ),
            p(
                "last_interaction_at_before",
                DT,
                NO,
                q("LastInteractionAt.Before"),
                "Last interaction at or before (UTC)."
            ),
            p("tags_name", STRS, NO, q("TagsName"), "Tag names filter.").documented_only(),
            p(
                "metadata",
                MAP,
                NO,
                q("Metadata"),
                "Metadata filter, sent as compact JSON (encoding UNCONFIRMED)."
            )
            .documented_only(),
            p("type", one_of(SESSION_TYPE), NO, q("Type"), "Session type.").documented_only(),
        ],
        L,
    ],
    rules: &[],
};

const SESSION_GET: ActionSpec = ActionSpec {
    name: "session.get",
    summary: "Get a session by id",
    n8n_operation: "getSessionById",
    method: Method::Get,
    path: "/chat/v1/session/{session_id}",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: None,
    params: &[
        SESSION_ID,
        p(
            "include_details",
            list_of(SESSION_DETAILS),
            NO,
            q("includeDetails"),
            "Fill the *Details members.",
        ),
    ],
    rules: &[],
};

const SESSION_SEND_FILE: ActionSpec = ActionSpec {
    name: "session.send_file",
    summary: "Send a file in a session",
    n8n_operation: "sendFileBySessionid",
    method: Method::Post,
    path: "/chat/v1/session/{session_id}/message",
    sync_path: Some("/chat/v1/session/{session_id}/message/sync"),
    idempotent: false,
    paginated: false,
    fields_pointer: None,
    params: params![&[SESSION_ID], F_SESSION, &[SESSION_REF_ID, SESSION_SYNC]],
    rules: &[FILE_SOURCE, BASE64_NAME],
};

const SESSION_SEND_TEMPLATE: ActionSpec = ActionSpec {
    name: "session.send_template",
    summary: "Send a template in a session",
    n8n_operation: "sendTemplateBySessionid",
    method: Method::Post,
    path: "/chat/v1/session/{session_id}/message",
    sync_path: Some("/chat/v1/session/{session_id}/message/sync"),
    idempotent: false,
    paginated: false,
    fields_pointer: None,
    params: params![
        &[
            SESSION_ID,
            p(
                "template_id",
                UUID,
                YES,
                b("/templateId"),
                "Template id of the session's channel."
            ),
            p(
                "parameters",
                MAP,
                COND,
                b("/parameters"),
                "Template parameters by name; required when the template has params."
            ),
        ],
        F_SESSION,
        &[SESSION_REF_ID, SESSION_SYNC],
    ],
    rules: &[FILE_SOURCE_OPTIONAL, BASE64_NAME],
};

const SESSION_SEND_TEXT: ActionSpec = ActionSpec {
    name: "session.send_text",
    summary: "Send a text in a session",
    n8n_operation: "sendTextBySessionid",
    method: Method::Post,
    path: "/chat/v1/session/{session_id}/message",
    sync_path: Some("/chat/v1/session/{session_id}/message/sync"),
    idempotent: false,
    paginated: false,
    fields_pointer: None,
    params: &[
        SESSION_ID,
        p("text", STR, YES, b("/text"), "Message text."),
        SESSION_REF_ID,
        SESSION_SYNC,
    ],
    rules: &[],
};

const SESSION_TRANSFER: ActionSpec = ActionSpec {
    name: "session.transfer",
    summary: "Transfer a session to a department (and optionally an agent)",
    n8n_operation: "transferSession",
    method: Method::Put,
    path: "/chat/v1/session/{session_id}/transfer",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: None,
    params: &[
        SESSION_ID,
        p(
            "new_department_id",
            UUID,
            YES,
            b("/newDepartmentId"),
            "Target department.",
        ),
        p(
            "new_user_id",
            UUID,
            NO,
            b("/newUserId"),
            "Target agent userId in that department.",
        ),
        p(
            "type",
            one_of(TRANSFER_TYPE),
            NO,
            b("/type"),
            "USER if new_user_id is given, else DEPARTMENT.",
        )
        .dflt("derived"),
        STOP_BOT_OPTION,
    ],
    rules: &[],
};

const SESSION_ASSIGN: ActionSpec = ActionSpec {
    name: "session.assign",
    summary: "Assign a session to an agent",
    n8n_operation: "transferToUser",
    method: Method::Put,
    path: "/chat/v1/session/{session_id}/assignee",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: None,
    params: &[
        SESSION_ID,
        p(
            "user_id",
            UUID,
            YES,
            b("/userId"),
            "Agent userId (GET /core/v1/agent).",
        ),
        STOP_BOT_OPTION,
    ],
    rules: &[],
};

const SESSION_UPDATE: ActionSpec = ActionSpec {
    name: "session.update",
    summary: "Update a session partially (fields mechanism)",
    n8n_operation: "updateSession",
    method: Method::Put,
    path: "/chat/v2/session/{session_id}/partial",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: Some("/fields"),
    params: &[
        SESSION_ID,
        p(
            "fields",
            list_of(SESSION_FIELDS),
            COND,
            b("/fields"),
            "Attributes to change; derived from the values when omitted.",
        )
        .dflt("derived"),
        p(
            "status",
            one_of(SESSION_TARGET_STATUS),
            NO,
            b("/status"),
            "Session status.",
        )
        .field("Status"),
        p("end_at", DT, NO, b("/endAt"), "End time (UTC).").field("EndAt"),
        p("number", STR, NO, b("/number"), "Session protocol number.").field("Number"),
        p(
            "department_id",
            UUID,
            NO,
            b("/departmentId"),
            "Department; list DepartmentId in fields and omit to clear.",
        )
        .field("DepartmentId"),
        p(
            "user_id",
            UUID,
            NO,
            b("/userId"),
            "Agent userId; list UserId in fields and omit to clear.",
        )
        .field("UserId"),
        p("metadata", MAP, NO, b("/metadata"), "Session metadata.").field("Metadata"),
        p(
            "classification_category",
            one_of(CLASSIFICATION_CATEGORY),
            NO,
            b("/classification/category"),
            "API: closing classification.",
        )
        .field("Classification"),
        p(
            "classification_description",
            STR,
            NO,
            b("/classification/description"),
            "API: classification text.",
        )
        .field("Classification"),
        p(
            "classification_amount",
            NUM,
            NO,
            b("/classification/amount"),
            "API: classification amount.",
        )
        .field("Classification"),
        STOP_BOT_OPTION,
    ],
    rules: &[],
};

// ---------------------------------------------------------------------------------------------
// Panels and cards (service crm).

const CARD_ID: ParamSpec = p("card_id", UUID, YES, PATH, "Card id.");
const CARD_DETAILS_PARAM: ParamSpec = p(
    "include_details",
    list_of(CARD_DETAILS),
    NO,
    q("IncludeDetails"),
    "Extra details (LostReason: successor only).",
);

const PANEL_CREATE_NOTE_FILE: ActionSpec = ActionSpec {
    name: "panel.create_note_file",
    summary: "Add a note with files (URLs) to a card",
    n8n_operation: "createAnnotationFile",
    method: Method::Post,
    path: "/crm/v1/panel/card/{card_id}/note",
    sync_path: None,
    idempotent: false,
    paginated: false,
    fields_pointer: None,
    params: &[
        CARD_ID,
        p(
            "file_urls",
            STRS,
            YES,
            b("/fileUrls"),
            "1–3 public URLs, at most 25 MB each.",
        ),
        p(
            "text",
            STR,
            NO,
            b("/text"),
            "API: note text, ≤ 8000 characters.",
        ),
    ],
    rules: &[],
};

const PANEL_CREATE_NOTE_TEXT: ActionSpec = ActionSpec {
    name: "panel.create_note_text",
    summary: "Add a text note to a card",
    n8n_operation: "createAnnotationText",
    method: Method::Post,
    path: "/crm/v1/panel/card/{card_id}/note",
    sync_path: None,
    idempotent: false,
    paginated: false,
    fields_pointer: None,
    params: &[
        CARD_ID,
        p(
            "text",
            STR,
            YES,
            b("/text"),
            "Note text, ≤ 8000 characters.",
        ),
    ],
    rules: &[],
};

const PANEL_CREATE_CARD: ActionSpec = ActionSpec {
    name: "panel.create_card",
    summary: "Create a card in a panel step",
    n8n_operation: "createCard",
    method: Method::Post,
    path: "/crm/v1/panel/card",
    sync_path: None,
    idempotent: false,
    paginated: false,
    fields_pointer: None,
    params: &[
        p(
            "step_id",
            UUID,
            YES,
            b("/stepId"),
            "Step (column) that receives the card.",
        ),
        p("title", STR, YES, b("/title"), "Title, 1–500 characters."),
        p(
            "description",
            STR,
            NO,
            b("/description"),
            "Description, ≤ 8000 characters.",
        ),
        p(
            "monetary_amount",
            NUM,
            NO,
            b("/monetaryAmount"),
            "Monetary amount.",
        ),
        p(
            "position",
            NUM,
            NO,
            b("/position"),
            "Position within the step, ≥ 0.",
        ),
        p(
            "responsible_user_id",
            UUID,
            NO,
            b("/responsibleUserId"),
            "Responsible agent userId.",
        ),
        p(
            "contact_ids",
            UUIDS,
            NO,
            b("/contactIds"),
            "Related contacts.",
        ),
        p("tag_ids", UUIDS, NO, b("/tagIds"), "Panel tag ids."),
        p(
            "tag_names",
            STRS,
            NO,
            b("/tagNames"),
            "API: tag names; ignored when tag_ids is set.",
        ),
        p("due_date", DT, NO, b("/dueDate"), "API: due date (UTC)."),
        p(
            "session_id",
            UUID,
            NO,
            b("/sessionId"),
            "API: related conversation.",
        ),
        p(
            "custom_fields",
            MAP,
            NO,
            b("/customFields"),
            "Panel custom-field key → value.",
        ),
        p(
            "metadata",
            MAP,
            NO,
            b("/metadata"),
            "Add/overwrite; a null value removes the key.",
        ),
    ],
    rules: &[],
};

const PANEL_DELETE_NOTE: ActionSpec = ActionSpec {
    name: "panel.delete_note",
    summary: "Delete a card note",
    n8n_operation: "deleteCardAnnotation",
    method: Method::Delete,
    path: "/crm/v1/panel/card/{card_id}/note/{note_id}",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: None,
    params: &[CARD_ID, p("note_id", UUID, YES, PATH, "Note id.")],
    rules: &[],
};

const PANEL_DUPLICATE_CARD: ActionSpec = ActionSpec {
    name: "panel.duplicate_card",
    summary: "Duplicate a card (optionally into another step)",
    n8n_operation: "duplicateCard",
    method: Method::Post,
    path: "/crm/v1/panel/card/{card_id}/duplicate",
    sync_path: None,
    idempotent: false,
    paginated: false,
    fields_pointer: None,
    params: &[
        p("card_id", UUID, YES, PATH, "Card to copy."),
        p(
            "copy_to_step_id",
            UUID,
            NO,
            b("/copyToStepId"),
            "Target step, same or another panel.",
        )
        .dflt("same step"),
        p(
            "archive_original_card",
            BOOL,
            NO,
            b("/options/archiveOriginalCard"),
            "Archive the original after copying.",
        )
        .dflt("false"),
        p(
            "fields",
            list_of(DUPLICATE_FIELDS),
            NO,
            b("/options/fields"),
            "Parts to copy.",
        )
        .dflt("copy everything"),
    ],
    rules: &[],
};

const PANEL_LIST_NOTES: ActionSpec = ActionSpec {
    name: "panel.list_notes",
    summary: "List a card's notes (one page)",
    n8n_operation: "listCardAnnotations",
    method: Method::Get,
    path: "/crm/v1/panel/card/{card_id}/note",
    sync_path: None,
    idempotent: true,
    paginated: true,
    fields_pointer: None,
    params: params![&[CARD_ID], L],
    rules: &[],
};

const PANEL_LIST_CARDS: ActionSpec = ActionSpec {
    name: "panel.list_cards",
    summary: "List a panel's cards (one page)",
    n8n_operation: "listCards",
    method: Method::Get,
    path: "/crm/v1/panel/card",
    sync_path: None,
    idempotent: true,
    paginated: true,
    fields_pointer: None,
    params: params![
        &[
            p("panel_id", UUID, YES, q("PanelId"), "Panel id."),
            p("step_id", UUID, NO, q("StepId"), "Step filter."),
            p("contact_id", UUID, NO, q("ContactId"), "Contact filter."),
            p(
                "responsible_user_id",
                UUID,
                NO,
                q("ResponsibleUserId"),
                "Responsible agent filter."
            ),
            p(
                "text_filter",
                STR,
                NO,
                q("TextFilter"),
                "Search the card's text attributes."
            ),
            p(
                "include_archived",
                BOOL,
                NO,
                q("IncludeArchived"),
                "Include archived cards."
            )
            .dflt("false")
            .node_only(),
            p(
                "statuses",
                list_of(CARD_STATUS),
                NO,
                q("Statuses"),
                "Card status filter."
            )
            .documented_only(),
            CARD_DETAILS_PARAM,
        ],
        L,
    ],
    rules: &[],
};

const PANEL_LIST: ActionSpec = ActionSpec {
    name: "panel.list",
    summary: "List panels (one page)",
    n8n_operation: "getAllPanels",
    method: Method::Get,
    path: "/crm/v1/panel",
    sync_path: None,
    idempotent: true,
    paginated: true,
    fields_pointer: None,
    params: params![
        &[
            p("title", STR, NO, q("Title"), "Title filter."),
            p("type", one_of(PANEL_TYPE), NO, q("Type"), "Panel type.").documented_only(),
            p(
                "include_details",
                list_of(PANELS_DETAILS),
                NO,
                q("IncludeDetails"),
                "Extra details."
            )
            .documented_only(),
        ],
        L,
    ],
    rules: &[],
};

const PANEL_GET_CARD: ActionSpec = ActionSpec {
    name: "panel.get_card",
    summary: "Get a card by id",
    n8n_operation: "getCardById",
    method: Method::Get,
    path: "/crm/v1/panel/card/{card_id}",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: None,
    params: &[CARD_ID, CARD_DETAILS_PARAM],
    rules: &[],
};

const PANEL_GET: ActionSpec = ActionSpec {
    name: "panel.get",
    summary: "Get a panel by id (steps, tags, cards on request)",
    n8n_operation: "getPanelById",
    method: Method::Get,
    path: "/crm/v1/panel/{panel_id}",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: None,
    params: &[
        p("panel_id", UUID, YES, PATH, "Panel id."),
        p(
            "include_details",
            list_of(PANEL_DETAILS),
            NO,
            q("IncludeDetails"),
            "Extra details; Cards needs Steps too.",
        ),
    ],
    rules: &[],
};

const PANEL_UPDATE_CARD: ActionSpec = ActionSpec {
    name: "panel.update_card",
    summary: "Update a card partially (fields mechanism; moves cards)",
    n8n_operation: "updateCard",
    method: Method::Put,
    path: "/crm/v1/panel/card/{card_id}",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: Some("/fields"),
    params: &[
        CARD_ID,
        p(
            "fields",
            list_of(CARD_FIELDS),
            COND,
            b("/fields"),
            "Attributes to change; derived when omitted (Status: documented routes).",
        )
        .dflt("derived"),
        p(
            "step_id",
            UUID,
            NO,
            b("/stepId"),
            "Moves the card to this step.",
        )
        .field("StepId"),
        p("title", STR, NO, b("/title"), "Title, ≤ 500 characters.").field("Title"),
        p(
            "description",
            STR,
            NO,
            b("/description"),
            "Description, ≤ 8000 characters.",
        )
        .field("Description"),
        p(
            "position",
            NUM,
            NO,
            b("/position"),
            "Position within the step, ≥ 0 (0 is sent).",
        )
        .field("Position"),
        p("due_date", DT, NO, b("/dueDate"), "Due date (UTC).").field("DueDate"),
        p(
            "responsible_user_id",
            UUID,
            NO,
            b("/responsibleUserId"),
            "Responsible agent userId.",
        )
        .field("ResponsibleUserId"),
        p(
            "tag_ids",
            UUIDS,
            NO,
            b("/tagIds"),
            "Tags of the card's panel.",
        )
        .field("TagIds"),
        p(
            "contact_ids",
            UUIDS,
            NO,
            b("/contactIds"),
            "Related contacts.",
        )
        .field("ContactIds"),
        p("session_id", UUID, NO, b("/sessionId"), "Related session.").field("SessionId"),
        p(
            "monetary_amount",
            NUM,
            NO,
            b("/monetaryAmount"),
            "Monetary amount (0 is sent).",
        )
        .field("MonetaryAmount"),
        p(
            "archived",
            BOOL,
            NO,
            b("/archived"),
            "Archive (true) or un-archive (false); documented routes: status ARCHIVED.",
        )
        .field("Archived")
        .node_only(),
        p(
            "custom_fields",
            MAP,
            NO,
            b("/customFields"),
            "Panel custom-field key → value.",
        )
        .field("CustomFields"),
        p("metadata", MAP, NO, b("/metadata"), "Card metadata.").field("Metadata"),
        p(
            "status",
            one_of(CARD_STATUS),
            NO,
            b("/status"),
            "Card status (ARCHIVED archives).",
        )
        .field("Status")
        .documented_only(),
        p(
            "lost_reason_id",
            UUID,
            NO,
            b("/lostReasonId"),
            "Lost reason; field UNCONFIRMED, list it in `fields`.",
        )
        .documented_only(),
        p(
            "tag_names",
            STRS,
            NO,
            b("/tagNames"),
            "Tag names; ignored when tag_ids is set.",
        )
        .field("TagIds")
        .documented_only(),
        p(
            "upsert_tag_operation",
            one_of(TAG_OPERATION),
            NO,
            b("/options/upsertTagOperation"),
            "Tag handling.",
        )
        .dflt("ReplaceAll")
        .documented_only(),
    ],
    rules: &[],
};

// ---------------------------------------------------------------------------------------------
// Chatbot (service chat).

const CHATBOT_SEND: ActionSpec = ActionSpec {
    name: "chatbot.send",
    summary: "Start an automation chatbot for a contact or session",
    n8n_operation: "sendChatbot",
    method: Method::Post,
    path: "/chat/v1/chatbot/send",
    sync_path: None,
    idempotent: false,
    paginated: false,
    fields_pointer: None,
    params: &[
        p(
            "bot_key",
            UUID,
            COND,
            b("/botKey"),
            "Bot key (GET /chat/v1/chatbot?Types=Automation); exactly one of bot_key, bot_id.",
        ),
        p(
            "bot_id",
            UUID,
            COND,
            b("/botId"),
            "Bot id (older node versions).",
        ),
        p(
            "session_id",
            UUID,
            COND,
            b("/sessionId"),
            "Target session; exactly one of session_id, to.",
        ),
        p(
            "to",
            STR,
            COND,
            b("/to"),
            "Recipient phone number or @instagram_user.",
        ),
        p(
            "from",
            STR,
            NO,
            b("/from"),
            "Channel, as in the quick sends.",
        )
        .dflt("platform picks"),
        p(
            "force_start_session",
            BOOL,
            NO,
            b("/options/forceStartSession"),
            "Complete any session in progress and start a new one.",
        )
        .dflt("false"),
        p(
            "skip_if_bot_in_execution",
            BOOL,
            NO,
            b("/options/skipIfBotInExecution"),
            "Do nothing if another bot is running.",
        )
        .dflt("false"),
        p(
            "skip_if_in_progress",
            BOOL,
            NO,
            b("/options/skipIfInProgress"),
            "Do nothing if a session is in progress.",
        )
        .dflt("false"),
        p(
            "hidden_session",
            BOOL,
            NO,
            b("/options/hiddenSession"),
            "API: new session hidden until the contact replies.",
        )
        .dflt("false"),
        p(
            "session_metadata",
            MAP,
            NO,
            b("/sessionMetadata"),
            "Bot variables kept while the session is active.",
        ),
        p(
            "contact_metadata",
            MAP,
            NO,
            b("/contactMetadata"),
            "Saved on the contact.",
        ),
        p(
            "sender_id",
            STR,
            NO,
            b("/senderId"),
            "API: your tracking id for this dispatch.",
        ),
        p(
            "callback_url",
            STR,
            NO,
            b("/callbackUrl"),
            "API: webhook when the bot starts or fails.",
        ),
    ],
    // ExactlyOne for the target: a session and a recipient together are ambiguous (which one
    // wins is undocumented), so the runner refuses rather than guess.
    rules: &[
        Rule::ExactlyOne(&["bot_key", "bot_id"]),
        Rule::ExactlyOne(&["session_id", "to"]),
    ],
};

// ---------------------------------------------------------------------------------------------
// Sequences (service chat).

const SEQUENCE_ID: ParamSpec = p("sequence_id", UUID, YES, PATH, "Sequence id.");
const ONE_CONTACT: &[ParamSpec] = &[
    SEQUENCE_ID,
    p(
        "contact_id",
        UUID,
        COND,
        b("/contactId"),
        "Contact id; exactly one of contact_id, phone_number.",
    ),
    p(
        "phone_number",
        STR,
        COND,
        b("/phoneNumber"),
        "Contact phone number.",
    ),
];
const MANY_CONTACTS: &[ParamSpec] = &[
    SEQUENCE_ID,
    p(
        "contact_ids",
        UUIDS,
        COND,
        b("/contactIds"),
        "Contact ids; at least one of the two lists.",
    ),
    p(
        "phone_numbers",
        STRS,
        COND,
        b("/phoneNumbers"),
        "Phone numbers (unknown ones are created).",
    ),
];
const ONE_CONTACT_RULE: Rule = Rule::ExactlyOne(&["contact_id", "phone_number"]);
const MANY_CONTACTS_RULE: Rule = Rule::AtLeastOne(&["contact_ids", "phone_numbers"]);

const SEQUENCE_ADD_CONTACT: ActionSpec = ActionSpec {
    name: "sequence.add_contact",
    summary: "Enrol a contact in a sequence",
    n8n_operation: "addContactToSequence",
    method: Method::Post,
    path: "/chat/v1/sequence/{sequence_id}/contact",
    sync_path: None,
    idempotent: false,
    paginated: false,
    fields_pointer: None,
    params: ONE_CONTACT,
    rules: &[ONE_CONTACT_RULE],
};

const SEQUENCE_ADD_CONTACTS: ActionSpec = ActionSpec {
    name: "sequence.add_contacts",
    summary: "Enrol several contacts in a sequence",
    n8n_operation: "addContactsToSequence",
    method: Method::Post,
    path: "/chat/v1/sequence/{sequence_id}/contact/batch",
    sync_path: None,
    idempotent: false,
    paginated: false,
    fields_pointer: None,
    params: MANY_CONTACTS,
    rules: &[MANY_CONTACTS_RULE],
};

const SEQUENCE_LIST: ActionSpec = ActionSpec {
    name: "sequence.list",
    summary: "List sequences (one page)",
    n8n_operation: "listSequences",
    method: Method::Get,
    path: "/chat/v1/sequence",
    sync_path: None,
    idempotent: true,
    paginated: true,
    fields_pointer: None,
    params: params![
        &[
            p(
                "include_details",
                list_of(SEQUENCE_DETAILS),
                NO,
                q("IncludeDetails"),
                "Extra details."
            ),
            p("name", STR, NO, q("Name"), "Name filter."),
            p(
                "contact_id",
                UUID,
                NO,
                q("ContactId"),
                "Sequences this contact is in."
            ),
        ],
        L,
    ],
    rules: &[],
};

const SEQUENCE_LIST_CONTACTS: ActionSpec = ActionSpec {
    name: "sequence.list_contacts",
    summary: "List a sequence's contacts",
    n8n_operation: "getContactsBySequence",
    method: Method::Get,
    path: "/chat/v1/sequence/{sequence_id}/contact",
    sync_path: None,
    idempotent: true,
    paginated: true,
    fields_pointer: None,
    params: params![
        &[
            SEQUENCE_ID,
            p("name", STR, NO, q("Name"), "Contact name filter.").documented_only(),
            p("contact_id", UUID, NO, q("ContactId"), "Contact filter.").documented_only(),
            p("phone_number", STR, NO, q("PhoneNumber"), "Phone filter.").documented_only(),
            p(
                "include_details",
                list_of(SEQUENCE_CONTACT_DETAILS),
                NO,
                q("IncludeDetails"),
                "Extra details."
            )
            .documented_only(),
        ],
        L,
    ],
    rules: &[],
};

const SEQUENCE_REMOVE_CONTACT: ActionSpec = ActionSpec {
    name: "sequence.remove_contact",
    summary: "Remove a contact from a sequence",
    n8n_operation: "removeContactToSequence",
    method: Method::Delete,
    path: "/chat/v1/sequence/{sequence_id}/contact",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: None,
    params: ONE_CONTACT,
    rules: &[ONE_CONTACT_RULE],
};

const SEQUENCE_REMOVE_CONTACTS: ActionSpec = ActionSpec {
    name: "sequence.remove_contacts",
    summary: "Remove several contacts from a sequence",
    n8n_operation: "removeContactsToSequence",
    method: Method::Delete,
    path: "/chat/v1/sequence/{sequence_id}/contact/batch",
    sync_path: None,
    idempotent: true,
    paginated: false,
    fields_pointer: None,
    params: MANY_CONTACTS,
    rules: &[MANY_CONTACTS_RULE],
};

// ---------------------------------------------------------------------------------------------
// The raw `http` action (README, "What it does").

/// The pseudo-action for routes outside the catalog. Its parameters are placed by
/// `request::build` itself: `method` and `path` select the route, `query` (pointer-free
/// `Query("")`) is the whole query map, `body` (pointer `""`) is the whole body.
pub static HTTP: ActionSpec = ActionSpec {
    name: "http",
    summary: "Any other route: method, path, query, body",
    n8n_operation: "",
    method: Method::Get,
    path: "",
    sync_path: None,
    idempotent: false,
    paginated: false,
    fields_pointer: None,
    params: &[
        p(
            "method",
            one_of(HTTP_METHODS),
            YES,
            ROUTE,
            "HTTP method; GET, PUT and DELETE are retry-safe.",
        ),
        p(
            "path",
            STR,
            YES,
            ROUTE,
            "Path starting with /core/, /chat/ or /crm/, without a query string.",
        ),
        p(
            "query",
            MAP,
            NO,
            q(""),
            "Query parameters; arrays become repeated keys.",
        ),
        p(
            "body",
            ParamType::Any,
            NO,
            b(""),
            "JSON body, sent as given.",
        ),
    ],
    rules: &[],
};

static ACTIONS: [ActionSpec; 39] = [
    CONTACT_CREATE,
    CONTACT_LIST,
    CONTACT_GET,
    CONTACT_GET_BY_PHONE,
    CONTACT_UPDATE,
    MESSAGE_LIST,
    MESSAGE_GET,
    MESSAGE_GET_STATUS,
    MESSAGE_SEND_FILE,
    MESSAGE_SEND_TEMPLATE,
    MESSAGE_SEND_TEXT,
    SESSION_CHANGE_STATUS,
    SESSION_COMPLETE,
    SESSION_LIST,
    SESSION_GET,
    SESSION_SEND_FILE,
    SESSION_SEND_TEMPLATE,
    SESSION_SEND_TEXT,
    SESSION_TRANSFER,
    SESSION_ASSIGN,
    SESSION_UPDATE,
    PANEL_CREATE_NOTE_FILE,
    PANEL_CREATE_NOTE_TEXT,
    PANEL_CREATE_CARD,
    PANEL_DELETE_NOTE,
    PANEL_DUPLICATE_CARD,
    PANEL_LIST_NOTES,
    PANEL_LIST_CARDS,
    PANEL_LIST,
    PANEL_GET_CARD,
    PANEL_GET,
    PANEL_UPDATE_CARD,
    CHATBOT_SEND,
    SEQUENCE_ADD_CONTACT,
    SEQUENCE_ADD_CONTACTS,
    SEQUENCE_LIST,
    SEQUENCE_LIST_CONTACTS,
    SEQUENCE_REMOVE_CONTACT,
    SEQUENCE_REMOVE_CONTACTS,
];

/// The 39 catalog actions, grouped by resource (without `http`).
pub fn actions() -> &'static [ActionSpec] {
    &ACTIONS
}

/// Finds an action by name; `http` included. This is the raw table: the node's route and the
/// parameters of both route families; `routes::lookup_for` gives an action as one family sees it.
pub fn lookup(name: &str) -> Option<&'static ActionSpec> {
    if name == HTTP.name {
        return Some(&HTTP);
    }
    ACTIONS.iter().find(|a| a.name == name)
}

/// Every action name (the 39 and `http`), for "did you mean" hints.
pub fn names() -> impl Iterator<Item = &'static str> {
    ACTIONS
        .iter()
        .map(|a| a.name)
        .chain(std::iter::once(HTTP.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn thirty_nine_distinct_actions_and_http() {
        let names: HashSet<_> = actions().iter().map(|a| a.name).collect();
        assert_eq!(names.len(), 39);
        assert_eq!(self::names().count(), 40);
        assert!(lookup("http").is_some());
        assert!(lookup("session.complete").is_some());
        assert!(lookup("session.compete").is_none());
    }

    #[test]
    fn params_are_unique_and_placeholders_match() {
        for a in actions() {
            let mut seen = HashSet::new();
            for prm in a.params {
                assert!(
                    seen.insert(prm.name),
                    "{}: duplicate param {}",
                    a.name,
                    prm.name
                );
                if prm.location == Location::Path {
                    let ph = format!("{{{}}}", prm.name);
                    assert!(a.path.contains(&ph), "{}: no {ph} in route", a.name);
                    assert_eq!(
                        prm.required,
                        Required::Yes,
                        "{}: path param optional",
                        a.name
                    );
                }
            }
            // Every placeholder has a path parameter.
            for seg in a.path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    a.param(name).is_some_and(|p| p.location == Location::Path),
                    "{}: placeholder {seg} without a path param",
                    a.name
                );
            }
            assert_eq!(
                a.sync_path.is_some(),
                a.param("sync").is_some(),
                "{}",
                a.name
            );
            assert_eq!(
                a.fields_pointer.is_some(),
                a.params.iter().any(|p| p.field.is_some()),
                "{}",
                a.name
            );
            for rule in a.rules {
                let names: Vec<&str> = match rule {
                    Rule::ExactlyOne(n) | Rule::AtLeastOne(n) | Rule::AtMostOne(n) => n.to_vec(),
                    Rule::Requires(x, y) => vec![*x, *y],
                };
                for n in names {
                    assert!(a.param(n).is_some(), "{}: rule names unknown {n}", a.name);
                }
            }
        }
    }

    #[test]
    fn shared_sets_expanded() {
        let list = lookup("session.list").unwrap();
        assert!(list.param("page_size").is_some());
        assert_eq!(list.params.last().unwrap().name, "updated_at_before");
        let send = lookup("message.send_file").unwrap();
        assert_eq!(send.params[0].name, "file_url");
        assert_eq!(
            send.param("file_url").unwrap().location,
            Location::Body("/body/fileUrl")
        );
        assert_eq!(
            lookup("session.send_file")
                .unwrap()
                .param("file_url")
                .unwrap()
                .location,
            Location::Body("/fileUrl")
        );
        assert_eq!(send.param("sync").unwrap().location, Location::Route);
    }
}
