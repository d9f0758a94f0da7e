//! User-facing problems with a place in a file: file, line, column, message, hint, and one
//! caret renderer shared by every stage (loader, validator, CSV reader, templates).

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

/// One problem, pointing into a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the problem concerns the whole file (missing, empty).
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub column: usize,
    pub message: String,
    /// The text of `line`, for the caret diagram.
    pub source_line: Option<String>,
    /// Number of characters to underline (at least 1 when drawn).
    pub width: usize,
    /// "did you mean …", "expected …" and the like.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A problem with the whole file (missing, unreadable, empty).
    pub fn file(file: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.as_ref().to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
            source_line: None,
            width: 0,
            hint: None,
        }
    }

    /// A problem at a line and column; `source` is the whole file text (used for the diagram).
    pub fn at(
        file: impl AsRef<Path>,
        source: Option<&str>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        let source_line =
            source.and_then(|s| s.lines().nth(line.saturating_sub(1)).map(str::to_owned));
        Diagnostic {
            file: file.as_ref().to_path_buf(),
            line,
            column,
            message: message.into(),
            source_line,
            width: 1,
            hint: None,
        }
    }

    /// Attach the text of the line directly (for streamed files such as CSV).
    #[must_use]
    pub fn with_line_text(mut self, text: impl Into<String>) -> Self {
        self.source_line = Some(text.into());
        self
    }

    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    #[must_use]
    pub fn with_width(mut self, width: usize) -> Self {
        self.width = width.max(1);
        self
    }

    /// Renders the diagnostic with its caret diagram:
    ///
    /// ```text
    /// error: unknown action `session.compete`
    ///   --> playbooks/close.yaml:12:13
    ///    |
    /// 12 |     action: session.compete
    ///    |             ^^^^^^^^^^^^^^^
    ///    = help: did you mean `session.complete`?
    /// ```
    pub fn render(&self) -> String {
        let mut out = format!("error: {}\n", self.message);
        let file = self.file.display();
        if self.line == 0 {
            let _ = writeln!(out, "  --> {file}");
        } else if self.column == 0 {
            let _ = writeln!(out, "  --> {file}:{}", self.line);
        } else {
            let _ = writeln!(out, "  --> {file}:{}:{}", self.line, self.column);
        }
        if let (Some(text), true) = (&self.source_line, self.line > 0) {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            // Tabs are shown as one space so that the caret lines up.
            let shown: String = text
                .chars()
                .map(|c| if c == '\t' { ' ' } else { c })
                .collect();
            let shown = truncate_chars(&shown, 200);
            let _ = write!(out, "{pad} |\n{num} | {shown}\n");
            if self.column > 0 {
                let col = self.column - 1;
                let avail = shown.chars().count().saturating_sub(col).max(1);
                let width = self.width.clamp(1, avail);
                let _ = writeln!(out, "{pad} | {}{}", " ".repeat(col), "^".repeat(width));
            }
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "  = help: {hint}");
        }
        out
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Renders many diagnostics, followed by a count line.
pub fn render_all(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&d.render());
        out.push('\n');
    }
    let n = diags.len();
    let _ = writeln!(
        out,
        "{n} problem{} found; nothing was sent",
        if n == 1 { "" } else { "s" }
    );
    out
}

/// "did you mean" suggestion among candidates (Jaro-Winkler ≥ 0.8, or a prefix/suffix match).
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(word, c);
        if score >= 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_column() {
        let src = "a: 1\nstep: sesion.complete\n";
        let d = Diagnostic::at("p.yaml", Some(src), 2, 7, "unknown action")
            .with_width(15)
            .with_hint("did you mean `session.complete`?");
        let r = d.render();
        assert!(r.contains("  --> p.yaml:2:7\n"), "{r}");
        assert!(r.contains("2 | step: sesion.complete\n"), "{r}");
        assert!(r.contains("  |       ^^^^^^^^^^^^^^^\n"), "{r}");
        assert!(r.contains("= help: did you mean"), "{r}");
    }

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(
            did_you_mean("sesion.complete", ["session.complete", "contact.get"]).as_deref(),
            Some("did you mean `session.complete`?")
        );
        assert_eq!(did_you_mean("zzz", ["session.complete"]), None);
    }
}
