//! Text renderings of the catalog for `wts-playbook actions [ACTION]`.
//!
//! In: the static catalog. Out: plain text (no colours): [`list_table`], one line per action,
//! [`describe`], one action's route, parameters, output and notes wrapped to the terminal's
//! width; and the same as JSON ([`list_json`], [`describe_json`]).

use super::data::{actions, HTTP};
use super::model::{ActionSpec, Location, Required, Routes, Rule};
use super::outputs::{fields_of, output_of, Output, PAGE_FIELDS};
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
        let (method, path) = documented_route(a);
        rows.push(vec![
            a.name.to_owned(),
            method,
            path,
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

/// The documented route of an action, ` *` marking one whose node route differs.
fn documented_route(a: &ActionSpec) -> (String, String) {
    let (method, path) = route_of(a, Routes::Documented);
    let mark = if path == a.path { "" } else { " *" };
    (method.to_string(), format!("{path}{mark}"))
}

/// [`list_table`] when it fits in `width` columns; otherwise two lines per action, its name,
/// method, route and retry-safety, then its summary wrapped below.
pub fn list_for_width(width: usize) -> String {
    let table = list_table();
    if table.lines().all(|l| l.chars().count() <= width) {
        return table;
    }
    let mut out = String::new();
    let entries = actions().iter().map(|a| {
        let (method, path) = documented_route(a);
        (
            a.name,
            format!("{method} {path}"),
            yes_no(a.idempotent),
            a.summary,
        )
    });
    let http = (
        HTTP.name,
        "any /core/, /chat/ or /crm/ path".to_owned(),
        "by method",
        HTTP.summary,
    );
    for (name, route, retry, summary) in entries.chain(std::iter::once(http)) {
        let atoms = [name.to_owned(), route, format!("retry-safe: {retry}")];
        wrap_atoms(&mut out, &atoms, width, "    ");
        wrap_into(&mut out, summary, width, "    ", "    ");
    }
    out
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

/// The notes markers the parameter docs use, and what they mean (wts-api.md §2 "Row tags").
const MARKERS: &[(&str, &str)] = &[
    (
        "API:",
        "a field the WTS API documents but the n8n node does not expose (an optional extension)",
    ),
    (
        "runner:",
        "read by wts-playbook itself, not sent as is (e.g. a file it uploads first)",
    ),
    (
        "§",
        "a section of the WTS API reference the catalog follows (wts-api.md)",
    ),
];

fn required_text(r: Required) -> &'static str {
    match r {
        Required::Yes => "required",
        Required::Cond => "conditionally required (see the rules)",
        Required::No => "optional",
    }
}

fn retry_text(action: &ActionSpec) -> &'static str {
    match action.name {
        "contact.create" => "no (yes with upsert or get_if_exists)",
        _ => yes_no(action.idempotent),
    }
}

/// What a template can read of the action's output, as lines.
fn output_lines(action: &ActionSpec) -> Vec<String> {
    let fields = |object: &str| fields_of(object).join(", ");
    match output_of(action.name) {
        Some(Output::Object { object }) => vec![
            format!("a {object}: steps.{{ID}}.output.FIELD (item.output.FIELD over a fan-out's results)"),
            format!("fields: {}", fields(object)),
        ],
        Some(Output::Page { object }) => vec![
            format!("a page of {object}: steps.{{ID}}.output.items[] (each item.FIELD with `for_each: steps.ID.output.items`); with `paginate`, the items of every page in one list"),
            format!("item fields: {}", fields(object)),
            format!("page fields: {}", PAGE_FIELDS.join(", ")),
        ],
        Some(Output::Send) => vec![
            "a QuickMessage (queued; its status is PROCESSING), or a Message with `sync: true`: steps.{ID}.output.FIELD".to_owned(),
            format!("fields: {}", fields("QuickMessage")),
            format!("with sync: {}", fields("Message")),
        ],
        Some(Output::Nothing) => vec!["none (200 without a body: the output is null)".to_owned()],
        Some(Output::Raw) | None => vec!["the route's JSON body, as it is".to_owned()],
    }
}

/// Word-wraps `text` to `width`, the first line after `first`, the others after `indent`.
fn wrap_into(out: &mut String, text: &str, width: usize, first: &str, indent: &str) {
    let opts = textwrap::Options::new(width.max(20))
        .initial_indent(first)
        .subsequent_indent(indent);
    for line in textwrap::wrap(text, opts) {
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Lays out `atoms` (the first, then the others joined by " · ") on lines of at most `width`,
/// breaking only between atoms (an atom longer than a line is wrapped on its own).
fn wrap_atoms(out: &mut String, atoms: &[String], width: usize, indent: &str) {
    let mut line = String::new();
    for (i, atom) in atoms.iter().enumerate() {
        let sep = if i <= 1 { "  " } else { " · " };
        let piece = if i == 0 {
            atom.trim_end().to_owned()
        } else {
            format!("{sep}{atom}")
        };
        if i > 0 && line.chars().count() + piece.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            let rest = format!("{indent}{atom}");
            if rest.chars().count() > width {
                let mut wrapped = String::new();
                wrap_into(&mut wrapped, atom, width, indent, indent);
                let mut lines: Vec<&str> = wrapped.lines().collect();
                lines.pop().unwrap_or("").clone_into(&mut line);
                for l in lines {
                    out.push_str(l);
                    out.push('\n');
                }
            } else {
                line = rest;
            }
        } else {
            line.push_str(&piece);
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// One action at the terminal's width (80 columns when not on a terminal).
pub fn describe(action: &ActionSpec) -> String {
    describe_width(action, textwrap::termwidth())
}

/// One action: method, route, sync route, retry-safety, pagination, rules, then each parameter
/// (name, type, required, where it goes, default, `fields` entry, doc), the output's shape and
/// what the markers of the docs mean; every line wrapped to `width`.
pub fn describe_width(action: &ActionSpec, width: usize) -> String {
    let mut out = String::new();
    wrap_into(
        &mut out,
        &format!("{} — {}", action.name, action.summary),
        width,
        "",
        "  ",
    );
    let mut head = Vec::new();
    if action.name == HTTP.name {
        head.push(("route:", "given by `method` and `path`".to_owned()));
        head.push((
            "retry-safe:",
            "GET, PUT, DELETE yes; POST, PATCH no".to_owned(),
        ));
    } else {
        match successor(action.name) {
            Some(s) => {
                let (method, path) = route_of(action, Routes::Documented);
                head.push(("route:", format!("{method} {path}  (routes: documented)")));
                head.push((
                    "node route:",
                    format!("{} {}  (routes: node)", action.method, action.path),
                ));
                head.push(("documented:", s.differences.to_owned()));
            }
            None => head.push((
                "route:",
                format!("{} {}  (both route families)", action.method, action.path),
            )),
        }
        if let Some(sp) = action.sync_path {
            head.push((
                "sync route:",
                format!("{} {sp}  (sync: true)", action.method),
            ));
        }
        head.push(("retry-safe:", retry_text(action).to_owned()));
        head.push(("paginated:", yes_no(action.paginated).to_owned()));
        if !action.n8n_operation.is_empty() {
            head.push(("n8n:", action.n8n_operation.to_owned()));
        }
    }
    if let Some(fp) = action.fields_pointer {
        head.push((
            "partial update:",
            format!("`fields` at body {fp}; derived from the values given when omitted"),
        ));
    }
    for rule in action.rules {
        head.push(("rule:", rule_text(rule)));
    }
    for line in super::outcomes(action).describe() {
        head.push(("outcome:", line));
    }
    for (label, text) in head {
        let first = format!("  {label:<11} ");
        let indent = " ".repeat(first.chars().count());
        wrap_into(&mut out, &text, width, &first, &indent);
    }
    out.push_str("\nparameters:\n");
    describe_params(&mut out, action, width);
    out.push_str("\noutput:\n");
    for line in output_lines(action) {
        wrap_into(&mut out, &line, width, "  ", "    ");
    }
    let docs: String = action.params.iter().map(|p| p.doc).collect();
    let used: Vec<&(&str, &str)> = MARKERS.iter().filter(|(m, _)| docs.contains(m)).collect();
    if !used.is_empty() {
        out.push_str("\nnotes:\n");
        for (marker, meaning) in used {
            let marker = if *marker == "§" { "§N" } else { marker };
            wrap_into(
                &mut out,
                &format!("{marker} {meaning}"),
                width,
                "  ",
                "    ",
            );
        }
    }
    out
}

/// The parameters' lines of [`describe_width`]: name and facts, then the doc.
fn describe_params(out: &mut String, action: &ActionSpec, width: usize) {
    for p in action.params {
        let mut facts = vec![
            render_type(p.ty),
            required_text(p.required).to_owned(),
            maps_to(p.location),
        ];
        if let Some(d) = p.default {
            facts.push(format!("default {d}"));
        }
        if let Some(f) = p.field {
            facts.push(format!("fields entry {f}"));
        }
        let mut atoms = vec![format!("{} ", p.name)];
        atoms.extend(facts);
        wrap_atoms(out, &atoms, width, "      ");
        let doc = match p.only {
            Some(routes) => format!("[routes: {routes} only] {}", p.doc),
            None => p.doc.to_owned(),
        };
        if !doc.is_empty() {
            wrap_into(out, &doc, width, "    ", "    ");
        }
    }
}

fn location_json(location: Location) -> serde_json::Value {
    use serde_json::json;
    match location {
        Location::Path => json!({ "in": "path" }),
        Location::Query(key) => json!({ "in": "query", "key": key }),
        Location::Body(pointer) => json!({ "in": "body", "pointer": pointer }),
        Location::Route => json!({ "in": "route" }),
        Location::Runner => json!({ "in": "runner" }),
    }
}

/// One action as JSON (`actions NAME --format json`).
pub fn describe_json(action: &ActionSpec) -> serde_json::Value {
    use serde_json::json;
    let params: Vec<serde_json::Value> = action
        .params
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "type": render_type(p.ty),
                "required": match p.required {
                    Required::Yes => "yes",
                    Required::Cond => "conditional",
                    Required::No => "no",
                },
                "default": p.default,
                "maps_to": location_json(p.location),
                "field": p.field,
                "doc": p.doc,
                "only": p.only.map(|r| r.to_string()),
            })
        })
        .collect();
    let output = match output_of(action.name) {
        Some(o @ (Output::Object { object } | Output::Page { object })) => {
            let mut v = serde_json::to_value(o).expect("serializes");
            v["fields"] = json!(fields_of(object));
            if matches!(o, Output::Page { .. }) {
                v["page_fields"] = json!(PAGE_FIELDS);
            }
            v
        }
        Some(o @ Output::Send) => {
            let mut v = serde_json::to_value(o).expect("serializes");
            v["fields"] = json!(fields_of("QuickMessage"));
            v["sync_fields"] = json!(fields_of("Message"));
            v
        }
        Some(o) => serde_json::to_value(o).expect("serializes"),
        None => json!({ "kind": "raw" }),
    };
    let is_http = action.name == HTTP.name;
    json!({
        "name": action.name,
        "summary": action.summary,
        "method": (!is_http).then(|| action.method.as_str()),
        "path": (!is_http).then_some(action.path),
        "documented_route": successor(action.name).map(|s| json!({
            "method": s.method.as_str(),
            "path": s.path,
            "differences": s.differences,
        })),
        "sync_path": action.sync_path,
        "retry_safe": if is_http { json!("by method") } else { json!(action.idempotent) },
        "paginated": action.paginated,
        "n8n_operation": (!action.n8n_operation.is_empty()).then_some(action.n8n_operation),
        "fields_pointer": action.fields_pointer,
        "rules": action.rules.iter().map(rule_text).collect::<Vec<_>>(),
        "params": params,
        "output": output,
    })
}

/// Every action as a JSON array (`actions --format json`).
pub fn list_json() -> serde_json::Value {
    serde_json::Value::Array(
        actions()
            .iter()
            .chain(std::iter::once(&HTTP))
            .map(describe_json)
            .collect(),
    )
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
        let d = describe_width(lookup("session.complete").unwrap(), 80);
        assert!(d.contains("route:      PUT /chat/v1/session/{session_id}/complete"));
        let lc = describe_width(lookup("panel.list_cards").unwrap(), 100);
        assert!(lc.contains("route:      GET /crm/v2/panel/card  (routes: documented)"));
        assert!(lc.contains("node route: GET /crm/v1/panel/card  (routes: node)"));
        assert!(lc.contains("[routes: node only] Include archived cards."));
        assert!(lc.contains("[routes: documented only] Card status filter."));
        assert!(d.contains("retry-safe: yes"));
        assert!(d.contains("body /reactivateOnNewMessage"));
        let d = describe_width(lookup("contact.list").unwrap(), 80);
        assert!(d.contains("enum[] Tags|CustomFields|Portfolios"));
        assert!(d.contains("query PageSize"));
        assert!(d.contains("paginated:  yes"));
        let d = describe_width(lookup("message.send_text").unwrap(), 80);
        assert!(d.contains("sync route: POST /chat/v1/message/send-sync"));
        assert!(d.contains("body /options/enableBot"));
        let d = describe_width(lookup("session.update").unwrap(), 80);
        assert!(d.contains("DepartmentId"));
        assert!(d.contains("partial update"));
        assert!(d.contains("fields entry"));
        assert!(!describe_width(lookup("session.complete").unwrap(), 80).contains("fields entry"));
        assert!(describe_width(lookup("http").unwrap(), 80).contains("by `method` and `path`"));
    }

    #[test]
    fn every_description_fits_the_width_names_its_output_and_explains_its_markers() {
        for name in crate::catalog::names() {
            let spec = lookup(name).unwrap();
            for width in [60, 80, 120] {
                let d = describe_width(spec, width);
                for line in d.lines() {
                    assert!(
                        line.chars().count() <= width,
                        "{name} at {width}: {} columns: {line}",
                        line.chars().count()
                    );
                }
                assert!(d.contains("\noutput:\n"), "{name}");
                for (marker, _) in MARKERS {
                    let used = spec.params.iter().any(|p| p.doc.contains(marker));
                    let explained = d.contains("\nnotes:\n")
                        && d.contains(&format!(
                            "  {} ",
                            if *marker == "§" { "§N" } else { marker }
                        ));
                    assert_eq!(used, explained, "{name}: {marker}");
                }
            }
        }
        let d = describe_width(lookup("session.list").unwrap(), 100);
        assert!(d.contains("steps.{ID}.output.items[]"), "{d}");
        assert!(d.contains("item fields: id, createdAt"), "{d}");
        let d = describe_width(lookup("contact.get_by_phone").unwrap(), 100);
        assert!(d.contains("a Contact: steps.{ID}.output.FIELD"), "{d}");
    }

    #[test]
    fn the_list_fits_a_narrow_terminal() {
        assert_eq!(list_for_width(500), list_table());
        let narrow = list_for_width(80);
        assert!(narrow.lines().all(|l| l.chars().count() <= 80), "{narrow}");
        assert!(narrow.contains("session.complete  PUT /chat/v1/session/{session_id}/complete · retry-safe: yes\n    Complete"), "{narrow}");
        assert_eq!(narrow.lines().filter(|l| !l.starts_with(' ')).count(), 40);
    }

    #[test]
    fn json_describes_every_action_with_its_output() {
        let all = list_json();
        let all = all.as_array().unwrap();
        assert_eq!(all.len(), 40);
        let complete = all
            .iter()
            .find(|a| a["name"] == "session.complete")
            .unwrap();
        assert_eq!(complete["method"], "PUT");
        assert_eq!(complete["retry_safe"], true);
        assert_eq!(complete["params"][0]["name"], "session_id");
        assert_eq!(complete["params"][0]["maps_to"]["in"], "path");
        assert_eq!(complete["output"]["kind"], "object");
        assert_eq!(complete["output"]["object"], "Session");
        let list = all.iter().find(|a| a["name"] == "session.list").unwrap();
        assert_eq!(list["output"]["kind"], "page");
        assert!(list["output"]["page_fields"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("hasMorePages")));
    }
}
