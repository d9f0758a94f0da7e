//! The playbook: its serde model, the loader (the only place that parses YAML) and the
//! position index that lets every problem point at a line and column.

mod load;
mod model;
mod positions;

pub(crate) use load::load_str;
pub(crate) use load::{load_partial_file, parse_scalar, Loaded};
pub(crate) use model::*;
pub(crate) use positions::join;
