//! The action catalog: the 39 WTS Chat operations of `docs/wts-api.md` plus the raw `http`
//! action, as data, and the function that turns parameter values into a request.

mod data;
mod describe;
mod model;
mod request;

pub use data::{actions, lookup, names, HTTP};
pub use describe::{describe, list_table};
pub use model::*;
pub use request::{build, check_names, convert, file_id_pointer, is_idempotent, ParamProblem};
