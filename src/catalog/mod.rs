//! The action catalog: the 39 WTS Chat operations (`docs/api-notes.md`) plus the raw `http`
//! action, as data, the two route families (`routes`), and the function that turns parameter
//! values into a request.
//!
//! ```
//! use indexmap::IndexMap;
//! use serde_json::json;
//! use wts_playbook::catalog;
//!
//! let spec = catalog::lookup("session.complete").unwrap();
//! let params: IndexMap<String, serde_json::Value> = [
//!     ("session_id".to_owned(), json!("9F1C2B7E-0000-4000-8000-000000000001")),
//!     ("reactivate_on_new_message".to_owned(), json!("yes")), // converted to a bool
//! ]
//! .into_iter()
//! .collect();
//! let req = catalog::build(spec, &params).unwrap();
//! assert_eq!(req.method, catalog::Method::Put);
//! assert_eq!(req.path, "/chat/v1/session/9f1c2b7e-0000-4000-8000-000000000001/complete");
//! assert_eq!(req.body, Some(json!({"reactivateOnNewMessage": true})));
//! assert!(spec.idempotent);
//! ```

mod class;
mod convert;
mod data;
mod describe;
mod model;
mod outcomes;
mod outputs;
mod request;
mod routes;

pub use class::{class_of, is_read, ActionClass, ReadKind, READS};
pub use convert::convert;
pub use data::{actions, lookup, names, FILE_TYPE, HTTP};
pub use describe::{
    describe, describe_json, describe_width, list_for_width, list_json, list_table,
};
pub use model::*;
pub use outcomes::{outcomes, Answer, Outcomes, Recovery, Verify};
pub use outputs::{fields_of, output_of, Output, PAGE_FIELDS};
pub use request::{build, check_names, file_id_pointer, is_idempotent, sends_sync, ParamProblem};
pub use routes::{has_param, lookup_for, resolve, route_of, successor, Successor, SUCCESSORS};
