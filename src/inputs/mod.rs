//! Streaming CSV inputs: the rows a playbook's `for_each: inputs.NAME` fans out over.
//!
//! In: an [`InputSpec`] (file, key column, delimiter). Out: the [`Header`] ([`read_header`],
//! cheap), the data [`Row`]s one at a time ([`open`]), or every problem of the file in one pass
//! ([`check`], for `validate`). Rows carry the physical line where their record starts (header =
//! line 1, quoted newlines and blank lines counted) and are template values (`row.column`).
//!
//! What holds:
//! - a header row is required; UTF-8 with or without BOM; LF or CRLF; blank lines are skipped;
//!   quoted fields may hold the delimiter, quotes (`""`) and newlines;
//! - every problem is a [`Diagnostic`](crate::diagnostic::Diagnostic) naming the file, line and
//!   (when the field is on that line) column: missing or unreadable file, empty file, empty or
//!   repeated column names, unknown key column, wrong field count, invalid UTF-8, empty or
//!   repeated key;
//! - memory is constant per row, except the duplicate-key table when the input has a key
//!   column: a hash table of 64-bit key hash → 64-bit record index (16 bytes + 1 control byte
//!   per slot, 44–87 % full), i.e. about 20–40 bytes per row — 36 MB at 1,000,000 rows, 72 MB
//!   at 2,000,000 — plus one 24-byte seek checkpoint per 1,024 rows. Keys themselves are not
//!   kept: a hash hit is confirmed by re-reading the earlier record, so a collision never
//!   reports a false duplicate.
//!
//! Measured (`examples/csv_bench.rs`, release, 4 columns, 71 MB file): 1,000,000 rows opened,
//! wrapped as template objects and rendered through `{{ row.session_id }}` at about 650,000
//! rows/s, 56 MB peak RSS with a key column, 4 MB without; 2,000,000 rows: 108 MB with a key
//! (the key table and its last resize), still 4 MB without. `check` runs at about 2 million rows/s.
//!
//! [`FailedCsvWriter`] writes rows back out (with `status` and `error` columns) in a form this
//! module reads again, for `--failed-csv`.

mod failed;
mod header;
mod keys;
mod row;
mod rows;
mod source;
mod spec;

pub use failed::FailedCsvWriter;
pub use header::{read_header, Header};
pub use row::Row;
pub use rows::{check, check_expecting, count_rows, open, Rows};
pub use source::special_file_kind;
pub(crate) use source::{char_column, field_start};
pub use spec::{parse_delimiter, InputSpec};
