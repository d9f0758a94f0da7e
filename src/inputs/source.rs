//! The raw record source under every CSV pass: a `csv::Reader` over the file that yields byte
//! records with the physical line where each one starts, skips blank lines (LF or CRLF), and can
//! seek back to a remembered record. Also the helpers that fetch a line's text and a field's
//! column for diagnostics (they re-read the file, so they cost nothing until a problem is found).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use csv::{ByteRecord, Position, Terminator};

/// Read buffer size of the CSV reader.
const BUFFER: usize = 64 * 1024;
/// Longest line text fetched for a diagnostic.
const MAX_LINE_TEXT: u64 = 4096;

/// Where the current record starts.
#[derive(Debug, Clone)]
pub(super) struct Located {
    /// The csv crate's position before the record (may precede skipped blank lines); used to seek.
    pub seek: Position,
    /// 1-based physical line of the record's first byte.
    pub line: u64,
}

/// Why a file could not be opened.
pub(super) enum OpenError {
    NotFound,
    IsDirectory,
    /// A FIFO, a device, a socket: reading it could block forever or never end.
    NotRegular(&'static str),
    Io(io::Error),
}

/// What `meta` is when it is not a regular file or a directory (`None` for those): a FIFO
/// blocks its reader until a writer comes, a device such as `/dev/zero` never ends.
pub fn special_file_kind(meta: &std::fs::Metadata) -> Option<&'static str> {
    if meta.is_file() || meta.is_dir() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return Some("a named pipe (FIFO)");
        }
        if t.is_char_device() {
            return Some("a character device");
        }
        if t.is_block_device() {
            return Some("a block device");
        }
        if t.is_socket() {
            return Some("a socket");
        }
    }
    Some("a special file")
}

pub(super) struct Source {
    reader: csv::Reader<File>,
    record: ByteRecord,
    file_len: u64,
    ends_with_newline: bool,
}

impl Source {
    pub(super) fn open(path: &Path, delimiter: u8) -> Result<Self, OpenError> {
        // Checked before opening: opening a FIFO blocks until a writer comes.
        match std::fs::metadata(path) {
            Ok(meta) => {
                if let Some(kind) = special_file_kind(&meta) {
                    return Err(OpenError::NotRegular(kind));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OpenError::NotFound),
            Err(e) => return Err(OpenError::Io(e)),
        }
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OpenError::NotFound),
            Err(e) => return Err(OpenError::Io(e)),
        };
        let meta = file.metadata().map_err(OpenError::Io)?;
        if meta.is_dir() {
            return Err(OpenError::IsDirectory);
        }
        if let Some(kind) = special_file_kind(&meta) {
            return Err(OpenError::NotRegular(kind));
        }
        let file_len = meta.len();
        let ends_with_newline = if file_len == 0 {
            false
        } else {
            let mut last = [0u8];
            file.seek(SeekFrom::End(-1)).map_err(OpenError::Io)?;
            file.read_exact(&mut last).map_err(OpenError::Io)?;
            file.seek(SeekFrom::Start(0)).map_err(OpenError::Io)?;
            last[0] == b'\n'
        };
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            // Only `\n` ends a record: `\r` stays in the last field (stripped by `field`), so the
            // reader's line counter is exact after every record, CRLF or not.
            .terminator(Terminator::Any(b'\n'))
            .buffer_capacity(BUFFER)
            .from_reader(file);
        Ok(Source {
            reader,
            record: ByteRecord::new(),
            file_len,
            ends_with_newline,
        })
    }

    /// Reads the next non-blank record; `None` at the end of the file.
    pub(super) fn next_record(&mut self) -> io::Result<Option<Located>> {
        loop {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(csv_to_io)?;
            if !more {
                return Ok(None);
            }
            // A CRLF blank line reads as one field holding `\r`.
            if self.record.len() == 1 && self.record.get(0) == Some(b"\r") {
                continue;
            }
            let seek = self
                .record
                .position()
                .cloned()
                .unwrap_or_else(Position::new);
            let end = self.reader.position();
            let inner_newlines = count_newlines(self.record.as_slice());
            let terminated = end.byte() < self.file_len || self.ends_with_newline;
            let line = end.line() - inner_newlines - u64::from(terminated);
            return Ok(Some(Located { seek, line }));
        }
    }

    /// Number of fields of the current record.
    pub(super) fn len(&self) -> usize {
        self.record.len()
    }

    /// Field `i` of the current record, without the `\r` of a CRLF line end.
    pub(super) fn field(&self, i: usize) -> &[u8] {
        let f = self.record.get(i).unwrap_or_default();
        if i + 1 == self.record.len() {
            f.strip_suffix(b"\r").unwrap_or(f)
        } else {
            f
        }
    }

    /// Validates the current record as UTF-8, field by field; on failure, the field index and
    /// the valid bytes before the first invalid one in that field.
    pub(super) fn check_utf8(&self) -> Result<(), (usize, usize)> {
        for i in 0..self.len() {
            if let Err(e) = std::str::from_utf8(self.field(i)) {
                return Err((i, e.valid_up_to()));
            }
        }
        Ok(())
    }

    /// Positions the reader so that the next record read is the one `pos` was taken before.
    pub(super) fn seek(&mut self, pos: Position) -> io::Result<()> {
        self.reader.seek(pos).map_err(csv_to_io)
    }
}

#[expect(
    clippy::naive_bytecount,
    reason = "records are short; not worth the bytecount crate"
)]
fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn csv_to_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// The raw bytes of the physical line that starts at or after `byte` (blank lines skipped),
/// without its line end and without a UTF-8 BOM; at most [`MAX_LINE_TEXT`] bytes.
pub(super) fn raw_line_at(path: &Path, byte: u64) -> Option<Vec<u8>> {
    let mut file = File::open(path).ok()?;
    file.seek(SeekFrom::Start(byte)).ok()?;
    let mut reader = BufReader::new(file.take(MAX_LINE_TEXT * 4));
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).ok()?;
        if n == 0 {
            return None;
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if !line.is_empty() {
            break;
        }
    }
    if let Some(rest) = line.strip_prefix(b"\xef\xbb\xbf") {
        line = rest.to_vec();
    }
    line.truncate(usize::try_from(MAX_LINE_TEXT).unwrap_or(usize::MAX));
    Some(line)
}

/// Byte offset where field `index` starts in a raw line (quote-aware), if it starts on that line.
pub(super) fn field_start(line: &[u8], delimiter: u8, index: usize) -> Option<usize> {
    if index == 0 {
        return Some(0);
    }
    let mut in_quotes = false;
    let mut seen = 0;
    for (pos, &b) in line.iter().enumerate() {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if b == delimiter && !in_quotes {
            seen += 1;
            if seen == index {
                return Some(pos + 1);
            }
        }
    }
    None
}

/// 1-based character column of a byte offset in a raw line.
pub(super) fn char_column(line: &[u8], byte: usize) -> usize {
    String::from_utf8_lossy(&line[..byte.min(line.len())])
        .chars()
        .count()
        + 1
}

/// Everything a row diagnostic needs to point at a field.
pub(super) struct Pointer {
    pub path: PathBuf,
    pub line: u64,
    pub text: Option<Vec<u8>>,
}

impl Pointer {
    pub(super) fn new(path: &Path, at: &Located) -> Self {
        Pointer {
            path: path.to_path_buf(),
            line: at.line,
            text: raw_line_at(path, at.seek.byte()),
        }
    }

    /// Column of field `index`, 0 when it is not on the record's first line.
    pub(super) fn field_column(&self, delimiter: u8, index: usize) -> usize {
        self.text
            .as_deref()
            .and_then(|t| field_start(t, delimiter, index).map(|b| char_column(t, b)))
            .unwrap_or(0)
    }

    /// Column of a place inside field `index`, `prefix` being the field's bytes before it;
    /// 0 when the field is not on the record's first line.
    pub(super) fn column_in_field(&self, delimiter: u8, index: usize, prefix: &[u8]) -> usize {
        let Some(text) = self.text.as_deref() else {
            return 0;
        };
        let Some(start) = field_start(text, delimiter, index) else {
            return 0;
        };
        let quote = usize::from(text.get(start) == Some(&b'"'));
        char_column(text, start) + quote + String::from_utf8_lossy(prefix).chars().count()
    }

    /// Column just past the end of the line.
    pub(super) fn end_column(&self) -> usize {
        self.text.as_deref().map_or(0, |t| char_column(t, t.len()))
    }

    pub(super) fn diagnostic(
        &self,
        column: usize,
        message: impl Into<String>,
    ) -> crate::diagnostic::Diagnostic {
        let line = usize::try_from(self.line).unwrap_or(usize::MAX);
        let d = crate::diagnostic::Diagnostic::at(&self.path, None, line, column, message);
        match &self.text {
            Some(t) => d.with_line_text(String::from_utf8_lossy(t).into_owned()),
            None => d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_field_starts_outside_quotes() {
        let line = br#"a,"b,c",d"#;
        assert_eq!(field_start(line, b',', 0), Some(0));
        assert_eq!(field_start(line, b',', 1), Some(2));
        assert_eq!(field_start(line, b',', 2), Some(8));
        assert_eq!(field_start(line, b',', 3), None);
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(char_column("é,x".as_bytes(), 3), 3);
    }
}
