//! The `--failed-csv` file, a consumer of finished items: each failed or unknown item's row,
//! once per row, with the status and error, in the input's own columns and delimiter, so the
//! file feeds straight back as the input of the next run.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::inputs;
use crate::plan::SourceItem;
use crate::program::Program;

/// The `--failed-csv` output: one file per input (the given path for the first input).
pub(crate) struct FailedRows {
    path: Option<PathBuf>,
    writers: HashMap<Arc<str>, inputs::FailedCsvWriter>,
    seen: HashSet<(Arc<str>, u64)>,
    error: Option<String>,
}

impl FailedRows {
    /// Rows go to `path` (nothing is written without one).
    pub(crate) fn new(path: Option<PathBuf>) -> Self {
        FailedRows {
            path,
            writers: HashMap::new(),
            seen: HashSet::new(),
            error: None,
        }
    }

    /// Closes the files; returns the first error met. An input none of whose rows failed still
    /// gets its file, with the header only, so no earlier run's rows are left behind in it.
    pub(crate) fn finish(mut self, program: &Program) -> Option<String> {
        if let Some(base) = self.path.clone() {
            for (name, info) in &program.inputs {
                if self.writers.contains_key(name.as_str()) {
                    continue;
                }
                let path = failed_path(&base, name, program.inputs.len() > 1);
                match inputs::FailedCsvWriter::create(&path, &info.header, info.spec.delimiter) {
                    Ok(w) => {
                        self.writers.insert(Arc::from(name.as_str()), w);
                    }
                    Err(d) => {
                        self.error.get_or_insert(d.message);
                    }
                }
            }
        }
        let mut error = self.error;
        for (_, w) in self.writers {
            if let Err(d) = w.finish() {
                error.get_or_insert(d.message);
            }
        }
        error
    }

    pub(crate) fn write(&mut self, program: &Program, si: &SourceItem, status: &str, error: &str) {
        let (Some(base), Some(input)) = (&self.path, &si.input) else {
            return;
        };
        let Some(row) = si.row.downcast_object_ref::<inputs::Row>() else {
            return;
        };
        if !self.seen.insert((input.clone(), si.index)) {
            return; // one line per row, even if several of its steps failed
        }
        if !self.writers.contains_key(input) {
            let path = failed_path(base, input, program.inputs.len() > 1);
            let delimiter = program
                .inputs
                .get(&**input)
                .map_or(b',', |i| i.spec.delimiter);
            match inputs::FailedCsvWriter::create(&path, &row.header, delimiter) {
                Ok(w) => {
                    self.writers.insert(input.clone(), w);
                }
                Err(d) => {
                    self.error = Some(d.message);
                    self.path = None;
                    return;
                }
            }
        }
        if let Some(w) = self.writers.get_mut(input) {
            if let Err(d) = w.write(row, status, error) {
                self.error = Some(d.message);
            }
        }
    }
}

/// `failed.csv` for a single input; `failed-NAME.csv` beside it when the playbook has several.
fn failed_path(base: &Path, input: &str, several: bool) -> PathBuf {
    if !several {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map_or_else(|| "failed".into(), |s| s.to_string_lossy().into_owned());
    let ext = base
        .extension()
        .map_or_else(|| "csv".into(), |e| e.to_string_lossy().into_owned());
    base.with_file_name(format!("{stem}-{input}.{ext}"))
}
