//! What a playbook's `inputs.NAME` entry resolves to: the file, the key column, the delimiter.

use std::path::PathBuf;

/// One declared CSV input, its path already resolved (relative to the playbook, or `--input`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// The input's name in the playbook (`inputs.NAME`).
    pub name: String,
    pub path: PathBuf,
    /// Column whose value names a row in reports and `--resume`; `None` = the row number.
    pub key: Option<String>,
    /// Field separator, one byte (default `,`).
    pub delimiter: u8,
    /// Only the rows whose column `.0` holds exactly `.1` (an input split per account by its
    /// `account` column); the others are not rows of this input at all. A header without
    /// that column filters nothing.
    pub only: Option<(String, String)>,
}

impl InputSpec {
    /// A comma-separated input keyed by row number.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        InputSpec {
            name: name.into(),
            path: path.into(),
            key: None,
            delimiter: b',',
            only: None,
        }
    }

    #[must_use]
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Only the rows whose `column` holds `value`.
    #[must_use]
    pub fn with_only(mut self, column: impl Into<String>, value: impl Into<String>) -> Self {
        self.only = Some((column.into(), value.into()));
        self
    }

    #[must_use]
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }
}

/// Parses a playbook's `delimiter:` value: one ASCII character other than a quote or a line
/// end; `\t` and `tab` mean a tab.
pub fn parse_delimiter(text: &str) -> Result<u8, String> {
    let byte = match text {
        "\\t" | "tab" | "\t" => b'\t',
        _ => match text.as_bytes() {
            [b] if b.is_ascii() => *b,
            _ => {
                return Err(format!(
                    "delimiter must be a single ASCII character (such as `,` `;` `|` or `\\t`), not `{text}`"
                ))
            }
        },
    };
    if matches!(byte, b'"' | b'\n' | b'\r') {
        return Err(format!("`{}` cannot be a delimiter", byte.escape_ascii()));
    }
    Ok(byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters() {
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert_eq!(parse_delimiter("tab"), Ok(b'\t'));
        assert_eq!(parse_delimiter("\\t"), Ok(b'\t'));
        assert!(parse_delimiter(";;").is_err());
        assert!(parse_delimiter("é").is_err());
        assert!(parse_delimiter("\"").is_err());
        assert!(parse_delimiter("").is_err());
    }
}
