//! `--failed-csv`: writes the rows whose item failed back out as a CSV that [`open`](super::open)
//! reads again (comma-separated, no BOM, quoted where needed), with two more columns: the item's
//! `status` and its `error`. Each row is flushed as written, so the file is usable after a crash.

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
}

impl FailedCsvWriter {
    /// Creates (or truncates) `path` and writes the header: the input's columns, then `status`
    /// and `error` (prefixed with `_` as often as needed if the input already has such columns).
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
        for extra in ["status", "error"] {
            let mut name = extra.to_owned();
            while columns.contains(&name) {
                name.insert(0, '_');
            }
            columns.push(name);
        }
        let writer = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .terminator(csv::Terminator::Any(b'\n'))
            .quote_style(csv::QuoteStyle::Necessary)
            .from_writer(file);
        let mut this = FailedCsvWriter {
            writer,
            path,
            columns,
        };
        this.writer
            .write_record(&this.columns)
            .map_err(|e| this.error(&e))?;
        this.flush()?;
        Ok(this)
    }

    /// The columns written (the input's, then status and error).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Appends one row with its item's status and error, and flushes.
    pub fn write(&mut self, row: &Row, status: &str, error: &str) -> Result<(), Diagnostic> {
        let record = row.values.iter().map(String::as_str).chain([status, error]);
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
