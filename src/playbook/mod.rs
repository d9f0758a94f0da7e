//! The playbook: its serde model, the loader (the only place that parses YAML) and the
//! position index that lets every problem point at a line and column.

mod load;
mod model;
mod positions;

pub use load::{load, load_partial_file, load_str, parse_scalar, Loaded};
pub use model::*;
pub use positions::{join, Pos, Positions};
