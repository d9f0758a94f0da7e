//! `--failed-csv`: writes the rows whose item failed back out as a CSV that [`open`](super::open)
//! reads again (comma-separated, no BOM, quoted where needed), with two more columns of fixed
//! names: the item's `_status` and its `_error`. A file fed back as the input keeps its columns:
//! `_status` and `_error` are overwritten, not added again. Each row is flushed as written, so the
//! file is usable after a crash; a run with no failure leaves a file with the header only.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::header::Header;
use super::row::Row;
use crate::diagnostic::Diagnostic;

/// Writer of a failed-rows CSV.
pub struct FailedCsvWriter {
    writer: csv::Writer<File>,
    path: PathBuf,
    columns: Vec<String>,
    /// Where `_status` and `_error` go: existing columns of the input, or appended ones.
    status_at: usize,
    error_at: usize,
}

/// The names of the two columns the failed-rows CSV adds.
pub(super) const STATUS_COLUMN: &str = "_status";
pub(super) const ERROR_COLUMN: &str = "_error";

impl FailedCsvWriter {
    /// Creates (or truncates) `path` and writes the header: the input's columns, then `_status`
    /// and `_error` (unless the input already has them, e.g. an earlier failed-rows CSV).
    /// `delimiter` is the input's, so the file can be fed back as that input unchanged.
    pub fn create(
        path: impl AsRef<Path>,
        header: &Header,
        delimiter: u8,
    ) -> Result<Self, Diagnostic> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|e| {
            Diagnostic::file(&path, format!("cannot create the failed-rows CSV: {e}"))
        })?;
        let mut columns = header.columns.clone();
        let mut at = |name: &str| {
            columns.iter().position(|c| c == name).unwrap_or_else(|| {
                columns.push(name.to_owned());
                columns.len() - 1
            })
        };
        let status_at = at(STATUS_COLUMN);
        let error_at = at(ERROR_COLUMN);
        let writer = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .terminator(csv::Terminator::Any(b'\n'))
            .quote_style(csv::QuoteStyle::Necessary)
            .from_writer(file);
        let mut this = FailedCsvWriter {
            writer,
            path,
            columns,
            status_at,
            error_at,
        };
        this.writer
            .write_record(&this.columns)
            .map_err(|e| this.error(&e))?;
        this.flush()?;
        Ok(this)
    }

    /// The columns written (the input's, then `_status` and `_error`).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Appends one row with its item's status and error, and flushes.
    pub fn write(&mut self, row: &Row, status: &str, error: &str) -> Result<(), Diagnostic> {
        let mut record: Vec<&str> = row.values.iter().map(String::as_str).collect();
        record.resize(self.columns.len(), "");
        record[self.status_at] = status;
        record[self.error_at] = error;
        self.writer
            .write_record(record)
            .map_err(|e| self.error(&e))?;
        self.flush()
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> Result<(), Diagnostic> {
        self.flush()
    }

    fn flush(&mut self) -> Result<(), Diagnostic> {
        // Flushes the csv buffer and then the file.
        self.writer.flush().map_err(|e| {
            Diagnostic::file(&self.path, format!("cannot write the failed-rows CSV: {e}"))
        })
    }

    fn error(&self, e: &csv::Error) -> Diagnostic {
        Diagnostic::file(&self.path, format!("cannot write the failed-rows CSV: {e}"))
    }
}
