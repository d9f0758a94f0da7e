//! Streaming over an input's data rows: `open` (an iterator of rows or row problems), `check`
//! (one full pass collecting every problem, for `validate`) and `count_rows` (for progress
//! totals). Memory is constant per row except the duplicate-key table (see the module doc).

use std::path::PathBuf;
use std::sync::Arc;

use super::header::{open_header, Header, Opened};
use super::keys::KeySet;
use super::row::Row;
use super::source::{Located, Pointer, Source};
use super::spec::InputSpec;
use crate::diagnostic::Diagnostic;

/// The data rows of an input, in file order. A row with a problem yields `Err` and the
/// iteration goes on with the next row; a read error ends it.
pub struct Rows {
    source: Source,
    header: Arc<Header>,
    name: String,
    path: PathBuf,
    delimiter: u8,
    keys: Option<KeySet>,
    next_index: u64,
    done: bool,
    /// `InputSpec::only`: the column's index and the value a row must hold.
    only: Option<(usize, Vec<u8>)>,
}

/// Opens an input for streaming; fails on the first problem of the file or its header.
pub fn open(spec: &InputSpec) -> Result<Rows, Diagnostic> {
    let (opened, mut problems) = open_header(spec);
    match opened {
        Some(opened) if problems.is_empty() => Ok(Rows::new(spec, opened, 0)),
        _ => Err(problems.swap_remove(0)),
    }
}

/// One full streaming pass over an input collecting every problem (file, header, rows), at most
/// `max_problems` of them.
pub fn check(spec: &InputSpec, max_problems: usize) -> Vec<Diagnostic> {
    check_expecting(spec, max_problems, 0)
}

/// [`check`] for an input known to have about `expected_rows` rows (from [`count_rows`]): the
/// duplicate-key table is sized once, which lowers the peak memory of the pass.
pub fn check_expecting(
    spec: &InputSpec,
    max_problems: usize,
    expected_rows: u64,
) -> Vec<Diagnostic> {
    let (opened, mut problems) = open_header(spec);
    if let Some(opened) = opened {
        let expected = usize::try_from(expected_rows).unwrap_or(0);
        for row in Rows::new(spec, opened, expected) {
            if problems.len() >= max_problems {
                break;
            }
            if let Err(d) = row {
                problems.push(d);
            }
        }
    }
    problems.truncate(max_problems);
    problems
}

/// Counts the data rows (blank lines excluded) without checking them, for progress totals.
pub fn count_rows(spec: &InputSpec) -> Result<u64, Diagnostic> {
    let (opened, mut problems) = open_header(spec);
    let Some(Opened { mut source, header }) = opened else {
        return Err(problems.swap_remove(0));
    };
    let only = only_filter(spec, &header);
    let mut n = 0;
    while source
        .next_record()
        .map_err(|e| read_error(&spec.path, &spec.name, &e))?
        .is_some()
    {
        if passes(&source, only.as_ref()) {
            n += 1;
        }
    }
    Ok(n)
}

/// The column index and value of `spec.only`, when the header has that column.
fn only_filter(spec: &InputSpec, header: &Header) -> Option<(usize, Vec<u8>)> {
    let (column, value) = spec.only.as_ref()?;
    Some((header.position(column)?, value.as_bytes().to_vec()))
}

/// Whether the current record is a row of the (filtered) input. A record too short to have
/// the column passes, so its problem is reported.
fn passes(source: &Source, only: Option<&(usize, Vec<u8>)>) -> bool {
    only.is_none_or(|(i, value)| *i >= source.len() || source.field(*i) == value.as_slice())
}

fn read_error(path: &std::path::Path, name: &str, e: &std::io::Error) -> Diagnostic {
    Diagnostic::file(path, format!("input `{name}`: cannot read the file: {e}"))
}

impl Rows {
    fn new(spec: &InputSpec, opened: Opened, expected_rows: usize) -> Self {
        let keys = opened
            .header
            .key_index
            .map(|k| KeySet::new(&spec.path, spec.delimiter, k, expected_rows));
        let only = only_filter(spec, &opened.header);
        Rows {
            only,
            source: opened.source,
            header: opened.header,
            name: spec.name.clone(),
            path: spec.path.clone(),
            delimiter: spec.delimiter,
            keys,
            next_index: 0,
            done: false,
        }
    }

    /// Skips the duplicate-key check, for a stream over a file that [`check`] has just passed:
    /// the run then keeps no per-row memory at all.
    #[must_use]
    pub fn already_checked(mut self) -> Self {
        self.keys = None;
        self
    }

    /// The header shared by every row.
    pub fn header(&self) -> &Arc<Header> {
        &self.header
    }

    /// Approximate heap bytes held by the duplicate-key table so far.
    pub fn key_table_bytes(&self) -> usize {
        self.keys.as_ref().map_or(0, KeySet::heap_bytes)
    }

    fn row(&mut self, index: u64, at: &Located) -> Result<Row, Diagnostic> {
        let columns = self.header.columns.len();
        let fields = self.source.len();
        if fields != columns {
            let p = Pointer::new(&self.path, at);
            let plural = if fields == 1 { "" } else { "s" };
            let message = format!(
                "line {} has {fields} field{plural}, the header has {columns}",
                at.line
            );
            return Err(if fields > columns {
                let column = p.field_column(self.delimiter, columns);
                let width = p.end_column().saturating_sub(column);
                p.diagnostic(column, message)
                    .with_width(width)
                    .with_hint("quote a value that contains the delimiter: \"a, b\" (and double any quote inside it)")
            } else {
                p.diagnostic(p.end_column(), message).with_hint(
                    "every row needs a value for each column; an empty value is fine (`a,,c`)",
                )
            });
        }
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            let field = self.source.field(i);
            match std::str::from_utf8(field) {
                Ok(s) => values.push(s.to_owned()),
                Err(e) => {
                    let p = Pointer::new(&self.path, at);
                    let column = p.column_in_field(self.delimiter, i, &field[..e.valid_up_to()]);
                    return Err(p
                        .diagnostic(
                            column,
                            format!(
                                "line {} is not valid UTF-8 (column `{}`)",
                                at.line, self.header.columns[i]
                            ),
                        )
                        .with_hint("save the file as UTF-8"));
                }
            }
        }
        let key = match self.header.key_index {
            None => (index + 1).to_string(),
            Some(k) => {
                let key = values[k].clone();
                let column_name = &self.header.columns[k];
                if key.is_empty() {
                    let p = Pointer::new(&self.path, at);
                    let column = p.field_column(self.delimiter, k);
                    return Err(p.diagnostic(
                        column,
                        format!("line {} has an empty key (column `{column_name}`)", at.line),
                    ));
                }
                if let Some(keys) = &mut self.keys {
                    let earlier = keys
                        .insert(key.as_bytes(), index, at.line)
                        .map_err(|e| read_error(&self.path, &self.name, &e))?;
                    if let Some(first) = earlier {
                        let p = Pointer::new(&self.path, at);
                        let column = p.field_column(self.delimiter, k);
                        return Err(p
                            .diagnostic(
                                column,
                                format!(
                                    "key `{key}` on line {} was already used on line {first}",
                                    at.line
                                ),
                            )
                            .with_width(key.chars().count())
                            .with_hint(format!(
                                "the key column `{column_name}` must name each row once"
                            )));
                    }
                }
                key
            }
        };
        Ok(Row {
            index: usize::try_from(index).unwrap_or(usize::MAX),
            line: at.line,
            key,
            values,
            header: Arc::clone(&self.header),
        })
    }
}

impl Iterator for Rows {
    type Item = Result<Row, Diagnostic>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let at = loop {
            match self.source.next_record() {
                Ok(Some(at)) if passes(&self.source, self.only.as_ref()) => break at,
                Ok(Some(_)) => {}
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(read_error(&self.path, &self.name, &e)));
                }
            }
        };
        let index = self.next_index;
        self.next_index += 1;
        if let Some(keys) = &mut self.keys {
            keys.note_record(index, &at.seek);
        }
        Some(self.row(index, &at))
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;

    #[test]
    fn a_split_input_yields_only_its_rows_with_their_own_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rows.csv");
        std::fs::write(&p, "id,account\n1,a\n2,b\n\n3,a\n4,b\n").unwrap();
        let spec = InputSpec::new("s", &p)
            .with_key("id")
            .with_only("account", "a");
        let rows: Vec<Row> = open(&spec).unwrap().map(Result::unwrap).collect();
        let got: Vec<(usize, u64, &str)> = rows
            .iter()
            .map(|r| (r.index, r.line, r.key.as_str()))
            .collect();
        assert_eq!(got, [(0, 2, "1"), (1, 5, "3")]);
        assert_eq!(count_rows(&spec).unwrap(), 2);
        assert!(check(&spec, 10).is_empty());
        // A key repeated in another account's rows is not a duplicate of this one's.
        std::fs::write(&p, "id,account\n1,a\n1,b\n").unwrap();
        assert!(check(&spec, 10).is_empty());
        assert_eq!(check(&InputSpec::new("s", &p).with_key("id"), 10).len(), 1);
        // Without the column nothing is filtered.
        let spec = InputSpec::new("s", &p).with_only("tenant", "a");
        assert_eq!(count_rows(&spec).unwrap(), 2);
    }
}
