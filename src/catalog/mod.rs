//! The action catalog: the 39 WTS Chat operations of `docs/wts-api.md` plus the raw `http`
//! action, as data, and the function that turns parameter values into a request.

mod model;

pub use model::*;
