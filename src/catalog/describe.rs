//! Text renderings of the catalog for `wts-playbook actions [ACTION]`.
//!
//! In: the static catalog. Out: plain aligned text (no colours, no terminal width assumptions):
//! [`list_table`], one line per action, and [`describe`], one action's route and parameters.

use std::fmt::Write as _;

use super::data::{actions, HTTP};
use super::model::{ActionSpec, Location, Required, Routes, Rule};
use super::request::render_type;
use super::routes::{route_of, successor};

/// Left-aligns `rows` in columns separated by two spaces; the last column is not padded.
fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// One line per action (the 39, then `http`): name, method, route (the documented one; `*`
/// marks the ten whose node route differs), retry-safe, summary.
pub fn list_table() -> String {
    let mut rows = vec![vec![
        "ACTION".to_owned(),
        "METHOD".to_owned(),
        // `*`: with `routes: node` the action calls the n8n node's legacy route instead.
        "ROUTE (*: node route differs)".to_owned(),
        "RETRY-SAFE".to_owned(),
        "SUMMARY".to_owned(),
    ]];
    for a in actions() {
        let (method, path) = route_of(a, Routes::Documented);
        let mark = if path == a.path { "" } else { " *" };
        rows.push(vec![
            a.name.to_owned(),
            method.to_string(),
            format!("{path}{mark}"),
            yes_no(a.idempotent).to_owned(),
            a.summary.to_owned(),
        ]);
    }
    rows.push(vec![
        HTTP.name.to_owned(),
        "any".to_owned(),
        "any /core/, /chat/ or /crm/ path".to_owned(),
        "by method".to_owned(),
        HTTP.summary.to_owned(),
    ]);
    columns(&rows)
}

fn maps_to(location: Location) -> String {
    match location {
        Location::Path => "path".into(),
        Location::Query("") => "query (all)".into(),
        Location::Query(key) => format!("query {key}"),
        Location::Body("") => "body (all)".into(),
        Location::Body(pointer) => format!("body {pointer}"),
        Location::Route => "route".into(),
        Location::Runner => "runner".into(),
    }
}

fn rule_text(rule: &Rule) -> String {
    let list = |names: &[&str]| names.join(", ");
    match rule {
        Rule::ExactlyOne(n) => format!("exactly one of: {}", list(n)),
        Rule::AtLeastOne(n) => format!("at least one of: {}", list(n)),
        Rule::AtMostOne(n) => format!("at most one of: {}", list(n)),
        Rule::Requires(a, b) => format!("{a} requires {b}"),
    }
}

/// One action: method, route, sync route, retry-safety, pagination, rules, then a table of its
/// parameters (name, type, required, default, maps to, field — partial updates only —, doc).
pub fn describe(action: &ActionSpec) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} — {}", action.name, action.summary);
    if action.name == HTTP.name {
        let _ = writeln!(out, "  route:      given by `method` and `path`");
        let _ = writeln!(out, "  retry-safe: GET, PUT, DELETE yes; POST, PATCH no");
    } else {
        match successor(action.name) {
            Some(s) => {
                let (method, path) = route_of(action, Routes::Documented);
                let _ = writeln!(out, "  route:      {method} {path}  (routes: documented)");
                let _ = writeln!(
                    out,
                    "  node route: {} {}  (routes: node)",
                    action.method, action.path
                );
                let _ = writeln!(out, "  documented: {}", s.differences);
            }
            None => {
                let _ = writeln!(
                    out,
                    "  route:      {} {}  (both route families)",
                    action.method, action.path
                );
            }
        }
        if let Some(sp) = action.sync_path {
            let _ = writeln!(out, "  sync route: {} {sp}  (sync: true)", action.method);
        }
        let retry = match action.name {
            "contact.create" => "no (yes with upsert or get_if_exists)",
            _ => yes_no(action.idempotent),
        };
        let _ = writeln!(out, "  retry-safe: {retry}");
        let _ = writeln!(out, "  paginated:  {}", yes_no(action.paginated));
        if !action.n8n_operation.is_empty() {
            let _ = writeln!(out, "  n8n:        {}", action.n8n_operation);
        }
    }
    if let Some(fp) = action.fields_pointer {
        let _ = writeln!(
            out,
            "  partial update: `fields` at body {fp}; derived from the values given when omitted"
        );
    }
    for rule in action.rules {
        let _ = writeln!(out, "  rule:       {}", rule_text(rule));
    }
    for line in super::outcomes(action).describe() {
        let _ = writeln!(out, "  outcome:    {line}");
    }
    out.push('\n');
    let mut rows = vec![[
        "PARAM", "TYPE", "REQUIRED", "DEFAULT", "MAPS TO", "FIELD", "DOC",
    ]
    .map(str::to_owned)
    .to_vec()];
    for p in action.params {
        rows.push(vec![
            p.name.to_owned(),
            render_type(p.ty),
            match p.required {
                Required::Yes => "yes",
                Required::Cond => "cond.",
                Required::No => "no",
            }
            .to_owned(),
            p.default.unwrap_or("–").to_owned(),
            maps_to(p.location),
            p.field.unwrap_or("").to_owned(),
            match p.only {
                Some(routes) => format!("[routes: {routes} only] {}", p.doc),
                None => p.doc.to_owned(),
            },
        ]);
    }
    if action.fields_pointer.is_none() {
        // The FIELD column only means something for partial updates.
        for row in &mut rows {
            row.remove(5);
        }
    }
    out.push_str(&columns(&rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::lookup;

    #[test]
    fn list_has_a_line_per_action_and_aligned_routes() {
        let t = list_table();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 1 + 39 + 1);
        assert!(lines
            .iter()
            .any(|l| l.starts_with("panel.list_cards ") && l.contains("/crm/v2/panel/card *")));
        let col = lines[0].find("ROUTE").unwrap();
        let line = lines
            .iter()
            .find(|l| l.starts_with("session.complete "))
            .unwrap();
        assert_eq!(&line[col..col + 34], "/chat/v1/session/{session_id}/comp");
        assert!(line.contains("PUT") && line.contains("yes"));
    }

    #[test]
    fn describe_shows_route_and_param_mapping() {
        let d = describe(lookup("session.complete").unwrap());
        assert!(d.contains("route:      PUT /chat/v1/session/{session_id}/complete"));
        let lc = describe(lookup("panel.list_cards").unwrap());
        assert!(lc.contains("route:      GET /crm/v2/panel/card  (routes: documented)"));
        assert!(lc.contains("node route: GET /crm/v1/panel/card  (routes: node)"));
        assert!(lc.contains("[routes: node only] Include archived cards."));
        assert!(lc.contains("[routes: documented only] Card status filter."));
        assert!(d.contains("retry-safe: yes"));
        assert!(d.contains("body /reactivateOnNewMessage"));
        let d = describe(lookup("contact.list").unwrap());
        assert!(d.contains("enum[] Tags|CustomFields|Portfolios"));
        assert!(d.contains("query PageSize"));
        assert!(d.contains("paginated:  yes"));
        let d = describe(lookup("message.send_text").unwrap());
        assert!(d.contains("sync route: POST /chat/v1/message/send-sync"));
        assert!(d.contains("body /options/enableBot"));
        let d = describe(lookup("session.update").unwrap());
        assert!(d.contains("DepartmentId"));
        assert!(d.contains("partial update"));
        assert!(d.contains("FIELD"));
        assert!(!describe(lookup("session.complete").unwrap()).contains("FIELD"));
        assert!(describe(lookup("http").unwrap()).contains("by `method` and `path`"));
    }
}
