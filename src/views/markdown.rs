//! Markdown for a pull-request comment or `$GITHUB_STEP_SUMMARY`: the outcome, a table of
//! steps, the error classes (largest first, at most [`MAX_CLASSES`]) and the re-run command.
//! Short by design: the HTML page has the rest.

use std::fmt::Write as _;

use super::{format_ms, View};

/// Error classes listed; the rest are counted in one line.
pub(crate) const MAX_CLASSES: usize = 10;
/// Sample keys shown per class.
const KEYS: usize = 3;
/// Longest message shown, in characters.
const MESSAGE_CHARS: usize = 200;

/// Text safe inside a Markdown table cell: no line breaks, `|` and HTML escaped.
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Inline code that survives backticks inside it (markup inside code is shown as text).
fn code(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|");
    let fence = if s.contains('`') { "`` " } else { "`" };
    let close = if s.contains('`') { " ``" } else { "`" };
    format!("{fence}{s}{close}")
}

fn short(s: &str) -> String {
    let mut t: String = s.chars().take(MESSAGE_CHARS).collect();
    if s.chars().count() > MESSAGE_CHARS {
        t.push('…');
    }
    t
}

fn mark(outcome: &str) -> &'static str {
    match outcome {
        "completed" => "✅",
        "failed" => "❌",
        "aborted" => "⛔",
        _ => "⚠️",
    }
}

/// The Markdown summary.
pub(crate) fn render(view: &View) -> String {
    let mut out = String::new();
    let outcome = view.outcome();
    let _ = writeln!(
        out,
        "### {} wts-playbook {}: {} — {}\n",
        mark(outcome),
        view.mode(),
        cell(&view.header.playbook.name),
        outcome
    );
    let mut facts = vec![
        format!("{} items", view.total_items()),
        format!("in {}", format_ms(view.duration_ms)),
    ];
    if let Some(url) = &view.header.base_url {
        facts.push(format!("against {}", code(url)));
    }
    facts.push(format!(
        "started {}",
        view.header.started_at.strftime("%Y-%m-%d %H:%M:%SZ")
    ));
    if let Some(n) = view.footer.as_ref().and_then(|f| f.run.rate_limited) {
        if n > 0 {
            facts.push(format!("{n}× 429"));
        }
    }
    let _ = writeln!(out, "{}\n", facts.join(" · "));
    if let Some(reason) = view
        .footer
        .as_ref()
        .and_then(|f| f.run.abort_reason.as_deref())
    {
        let _ = writeln!(out, "**Aborted:** {}\n", cell(reason));
    }
    if view.truncated {
        let _ = writeln!(
            out,
            "**The report has no footer:** the run was cut short (or is still running).\n"
        );
    }

    step_table(&mut out, view);
    if !view.classes.is_empty() {
        error_table(&mut out, view);
    }
    out
}

/// Steps × statuses, with a total row.
fn step_table(out: &mut String, view: &View) {
    if view.steps.is_empty() {
        let _ = writeln!(out, "No items.\n");
    } else {
        let _ = write!(out, "| step |");
        for s in &view.statuses {
            let _ = write!(out, " {s} |");
        }
        let _ = writeln!(out, " duration | requests/s |");
        let _ = write!(out, "|---|");
        for _ in &view.statuses {
            let _ = write!(out, "---:|");
        }
        let _ = writeln!(out, "---:|---:|");
        for st in &view.steps {
            let _ = write!(out, "| {} |", code(&st.id));
            for s in &view.statuses {
                let _ = write!(out, " {} |", st.counts.get(s).copied().unwrap_or(0));
            }
            let _ = writeln!(out, " {} | {:.1} |", format_ms(st.duration_ms), st.rate());
        }
        let _ = write!(out, "| **total** |");
        for s in &view.statuses {
            let _ = write!(out, " **{}** |", view.count(s));
        }
        let _ = writeln!(out, " {} | |\n", format_ms(view.duration_ms));
    }
}

/// The error classes, the largest first, and the command that re-runs the failed items.
fn error_table(out: &mut String, view: &View) {
    let _ = writeln!(out, "#### Errors\n");
    let _ = writeln!(out, "| items | class | steps | message | sample keys |");
    let _ = writeln!(out, "|---:|---|---|---|---|");
    for c in view.classes.iter().take(MAX_CLASSES) {
        let keys: Vec<String> = c.sample_keys.iter().take(KEYS).map(|k| code(k)).collect();
        let more = if c.distinct_messages > 1 {
            format!(" (+{} other messages)", c.distinct_messages - 1)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}{more} | {} |",
            c.count,
            code(&c.label()),
            c.steps
                .iter()
                .map(|s| code(s))
                .collect::<Vec<_>>()
                .join(" "),
            cell(&short(&c.message)),
            keys.join(" ")
        );
    }
    if view.classes.len() > MAX_CLASSES {
        let rest: u64 = view.classes[MAX_CLASSES..].iter().map(|c| c.count).sum();
        let _ = writeln!(
            out,
            "\n{} more classes ({rest} items): see the HTML report.",
            view.classes.len() - MAX_CLASSES
        );
    }
    let unknown = view.count("unknown") > 0;
    let _ = writeln!(
        out,
        "\nRe-run the failed items{} (everything that succeeded is skipped):\n\n```sh\n{}\n```",
        if unknown {
            " and those whose outcome is unknown"
        } else {
            ""
        },
        view.rerun_command(unknown)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_escape_pipes_markup_and_line_breaks() {
        assert_eq!(cell("a|b <b>&\nc"), "a\\|b &lt;b&gt;&amp; c");
        assert_eq!(code("x|y"), "`x\\|y`");
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(short(&"é".repeat(300)).chars().count(), MESSAGE_CHARS + 1);
    }
}
