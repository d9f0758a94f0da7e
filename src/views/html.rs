//! The HTML report: one self-contained file (styles, script and charts inline; no network),
//! opened from disk or a CI artefact.
//!
//! The rows are stored once, as JSON data in a `<script type="application/json">` element
//! (one array per item, about 60 bytes), and the page's script draws everything from it:
//! the outcome, the timeline (SVG), the error classes, the steps and a paged table of every
//! item, filterable by step and status and searchable by key. 100,000 items make a file of
//! about 7 MB that becomes interactive in well under a second.
//!
//! The URL fragment keeps the table's filter (`#status=failed&step=close&q=abc`), so a filter
//! can be shared or bookmarked.

use serde_json::{json, Value};

use super::{format_ms, View};

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// Minimal HTML text escaping (the title is the only text written outside the data).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that is safe inside `<script>`: `<` never appears raw (so `</script>` cannot), and
/// U+2028/U+2029 are escaped too.
fn script_json(v: &Value) -> String {
    escape_script(serde_json::to_string(v).expect("JSON value serializes"))
}

fn escape_script(json: String) -> String {
    if json.contains(['<', '\u{2028}', '\u{2029}']) {
        json.replace('<', "\\u003c")
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029")
    } else {
        json
    }
}

/// The data the page's script reads, except `rows` (written one by one by [`render`], so
/// 100,000 items never exist as one JSON tree).
pub(crate) fn data(view: &View) -> Value {
    let footer = view.footer.as_ref();
    let unknown = view.count("unknown") > 0;
    json!({
        "meta": {
            "playbook": view.header.playbook,
            "run_id": view.header.run_id,
            "tool": view.header.tool,
            "mode": view.mode(),
            "dry_run": view.header.dry_run,
            "base_url": view.header.base_url,
            "routes": view.routes(),
            "started_at": view.header.started_at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "finished_at": footer.map(|f| f.finished_at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
            "outcome": view.outcome(),
            "duration": format_ms(view.duration_ms),
            "duration_ms": view.duration_ms,
            "rate_limited": footer.and_then(|f| f.run.rate_limited),
            "abort_reason": footer.and_then(|f| f.run.abort_reason.clone()),
            "events_dropped": footer.map_or(0, |f| f.run.events_dropped),
            "truncated": view.truncated,
            "in_flight": view.in_flight,
            "settings": view.header.settings,
            "report": view.report_path.display().to_string(),
            "rerun": (!view.classes.is_empty()).then(|| view.rerun_command(unknown)),
        },
        "statuses": view.statuses,
        "counts": view.counts,
        "steps": view.steps.iter().map(|s| json!({
            "id": s.id,
            "counts": s.counts,
            "duration": format_ms(s.duration_ms),
            "duration_ms": s.duration_ms,
            "requests": s.requests,
            "rate": (s.rate() * 10.0).round() / 10.0,
        })).collect::<Vec<_>>(),
        "classes": view.classes.iter().map(|c| json!({
            "label": c.label(),
            "http": c.http,
            "api_key": c.api_key,
            "kind": c.kind,
            "count": c.count,
            "steps": c.steps,
            "sample_keys": c.sample_keys,
            "message": c.message,
            "distinct_messages": c.distinct_messages,
            "command": view.class_command(c),
        })).collect::<Vec<_>>(),
        "timeline": {
            "bucket_ms": view.timeline.bucket_ms,
            "requests": view.timeline.requests,
            "rate_limited": view.timeline.rate_limited,
            "retries": view.timeline.retries,
            "pauses": view.timeline.pauses,
            "windows": view.timeline.windows.iter().map(|w| json!({
                "label": w.label,
                "per_second": w.per_second,
            })).collect::<Vec<_>>(),
        },
    })
}

/// One item as the page stores it:
/// `[step, key, status, attempts, duration_ms, start_ms, http, class, line, note, index]`.
fn row_json(r: &super::Row) -> String {
    let tuple = (
        r.step,
        &r.key,
        r.status,
        r.attempts,
        r.duration_ms,
        r.start_ms,
        r.http,
        r.class,
        r.line,
        &r.note,
        r.index,
    );
    escape_script(serde_json::to_string(&tuple).expect("a row serializes"))
}

/// The whole page.
pub(crate) fn render(view: &View) -> String {
    let head = script_json(&data(view));
    let title = escape(&format!(
        "{} — {} {}",
        view.header.playbook.name,
        view.mode(),
        view.outcome()
    ));
    let mut out =
        String::with_capacity(head.len() + view.rows.len() * 96 + CSS.len() + JS.len() + 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    // No network: nothing may be loaded from anywhere, not even by mistake.
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n");
    out.push_str(&format!(
        "<title>{title}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n"
    ));
    out.push_str("<noscript><p>This report needs JavaScript to draw its tables and charts; the data is in the JSON report.</p></noscript>\n");
    out.push_str("<main id=\"app\"></main>\n");
    out.push_str("<script type=\"application/json\" id=\"report-data\">");
    // `{…}` → `{…,"rows":[…]}`
    out.push_str(&head[..head.len() - 1]);
    out.push_str(",\"rows\":[");
    for (i, r) in view.rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&row_json(r));
    }
    out.push_str("]}</script>\n<script>\n");
    out.push_str(JS);
    out.push_str("</script>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let v = json!({"key": "</script><script>alert(1)</script>", "s": "a\u{2028}b"});
        let s = script_json(&v);
        assert!(!s.contains('<'), "{s}");
        assert!(!s.contains('\u{2028}'));
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn escape_covers_markup_characters() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
