//! The header row: opens the file, reads the first record only, checks column names and the
//! key column. Out: an `Arc<Header>` shared by every row, or the problems found.

use std::collections::HashMap;
use std::sync::Arc;

use super::source::{OpenError, Pointer, Source};
use super::spec::InputSpec;
use crate::diagnostic::{did_you_mean, Diagnostic};

/// The column names of an input and where its key column is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub columns: Vec<String>,
    /// Index of the key column; `None` when rows are keyed by their number.
    pub key_index: Option<usize>,
}

impl Header {
    /// Index of a column by name.
    pub fn position(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    /// The key column's name, if the input has one.
    pub fn key_column(&self) -> Option<&str> {
        self.key_index.map(|i| self.columns[i].as_str())
    }
}

/// An open file positioned after its header.
pub(super) struct Opened {
    pub source: Source,
    pub header: Arc<Header>,
}

/// Reads and checks the header of `spec`'s file.
///
/// Returns every header problem; `Opened` is `Some` when the rows can still be read and checked
/// (the header exists and is UTF-8), even if some column is wrong.
pub(super) fn open_header(spec: &InputSpec) -> (Option<Opened>, Vec<Diagnostic>) {
    let path = &spec.path;
    let name = &spec.name;
    let mut source = match open_source(spec) {
        Ok(s) => s,
        Err(d) => return (None, vec![*d]),
    };
    let at = match source.next_record() {
        Ok(Some(at)) => at,
        Ok(None) => {
            let d = Diagnostic::file(path, format!("input `{name}`: the file is empty"))
                .with_hint("the first line must be a header row naming the columns");
            return (None, vec![d]);
        }
        Err(e) => {
            let d = Diagnostic::file(path, format!("input `{name}`: cannot read the file: {e}"));
            return (None, vec![d]);
        }
    };
    let pointer = Pointer::new(path, &at);
    if let Err((field, valid)) = source.check_utf8() {
        let column = pointer.column_in_field(spec.delimiter, field, &source.field(field)[..valid]);
        let d = pointer
            .diagnostic(
                column,
                format!("input `{name}`: the header is not valid UTF-8"),
            )
            .with_hint("save the file as UTF-8");
        return (None, vec![d]);
    }
    let columns: Vec<String> = (0..source.len())
        .map(|i| String::from_utf8_lossy(source.field(i)).into_owned())
        .collect();

    let mut problems = column_problems(&pointer, spec.delimiter, &columns);

    let mut key_index = None;
    if let Some(key) = &spec.key {
        key_index = columns.iter().position(|c| c == key);
        if key_index.is_none() {
            let list = columns
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let other_delimiter = [b';', b',', b'\t', b'|'].into_iter().find(|&d| {
                d != spec.delimiter && columns.len() == 1 && columns[0].contains(char::from(d))
            });
            let hint = match (other_delimiter, did_you_mean(key, columns.iter().map(String::as_str))) {
                (Some(d), _) => format!(
                    "the header is read as one column `{}`: is the delimiter `{}`? (set `delimiter:`)",
                    columns[0],
                    d.escape_ascii()
                ),
                (None, Some(dym)) => format!("{dym} (the columns are {list})"),
                (None, None) => format!("the columns are {list}"),
            };
            problems.push(
                pointer
                    .diagnostic(
                        0,
                        format!("input `{name}`: key column `{key}` is not in the header"),
                    )
                    .with_hint(hint),
            );
        }
    }

    let header = Arc::new(Header { columns, key_index });
    (Some(Opened { source, header }), problems)
}

/// Opens `spec`'s file, or says why it cannot be read.
fn open_source(spec: &InputSpec) -> Result<Source, Box<Diagnostic>> {
    let path = &spec.path;
    let name = &spec.name;
    match Source::open(path, spec.delimiter) {
        Ok(s) => Ok(s),
        Err(OpenError::NotFound) => {
            let d = Diagnostic::file(path, format!("input `{name}`: file not found"))
                .with_hint("a `csv:` path is relative to the playbook file");
            Err(Box::new(d))
        }
        Err(OpenError::IsDirectory) => {
            let d = Diagnostic::file(
                path,
                format!("input `{name}`: is a directory, not a CSV file"),
            );
            Err(Box::new(d))
        }
        Err(OpenError::NotRegular(kind)) => {
            let d = Diagnostic::file(
                path,
                format!("input `{name}`: is {kind}, not a regular file; nothing was read"),
            )
            .with_hint("give a CSV file (a pipe or a device cannot be read twice, or never ends)");
            Err(Box::new(d))
        }
        Err(OpenError::Io(e)) => {
            let d = Diagnostic::file(path, format!("input `{name}`: cannot read the file: {e}"));
            Err(Box::new(d))
        }
    }
}

/// Columns without a name, and names that appear twice.
fn column_problems(pointer: &Pointer, delimiter: u8, columns: &[String]) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, column) in columns.iter().enumerate() {
        let at_column = pointer.field_column(delimiter, i);
        if column.trim().is_empty() {
            problems.push(
                pointer
                    .diagnostic(
                        at_column,
                        format!("column {} of the header has no name", i + 1),
                    )
                    .with_hint("every column needs a name; templates read it as `row.NAME`"),
            );
        } else if let Some(first) = seen.get(column.as_str()) {
            problems.push(
                pointer
                    .diagnostic(
                        at_column,
                        format!(
                            "column `{column}` appears twice in the header (columns {} and {})",
                            first + 1,
                            i + 1
                        ),
                    )
                    .with_width(column.chars().count()),
            );
        } else {
            seen.insert(column, i);
        }
    }

    problems
}

/// Reads the header only (cheap: the first record) and checks it; the first problem found.
pub fn read_header(spec: &InputSpec) -> Result<Arc<Header>, Diagnostic> {
    let (opened, mut problems) = open_header(spec);
    match opened {
        Some(o) if problems.is_empty() => Ok(o.header),
        _ => Err(problems.swap_remove(0)),
    }
}
