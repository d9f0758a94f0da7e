//! `JUnit` XML for CI readers (GitLab, Jenkins, GitHub test reporters): one `<testsuite>` per
//! step, one `<testcase>` per failed (`<failure>`) or unknown (`<error>`) item named by its key,
//! and one aggregated `<testcase>` per other status (`1000 succeeded`). Past [`MAX_CASES`]
//! failed or unknown items, the rest are aggregated per error class, so even 100,000 failures
//! stay far below GitLab's 30 MB per file. Written with quick-xml (escaping is its job).
//!
//! Matches `schemas/junit.xsd` (checked by the tests with `xmllint --schema`).

use std::collections::BTreeMap;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use super::{View, STATUS_ORDER};

/// Longest failure message attribute and body kept per item (bytes, cut on a char boundary).
const MAX_MESSAGE: usize = 1000;

/// Failed and unknown items listed one by one in a file (about 8 MB of them); past this, the
/// rest are one case per step, error class and status.
pub(crate) const MAX_CASES: usize = 20_000;

fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// `s` cut to [`MAX_MESSAGE`] bytes, with the characters XML 1.0 cannot hold (most control
/// characters) replaced by U+FFFD.
fn cut(s: &str) -> String {
    let mut end = s.len().min(MAX_MESSAGE);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    xml_safe(&s[..end])
}

fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// The `JUnit` document.
pub(crate) fn render(view: &View) -> Vec<u8> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    write(&mut w, view).expect("writing to a Vec cannot fail");
    let mut out = w.into_inner();
    out.push(b'\n');
    out
}

fn plural(n: u64, what: &str) -> String {
    format!("{n} {what}")
}

fn write(xml: &mut Writer<Vec<u8>>, view: &View) -> std::io::Result<()> {
    xml.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;

    // Per step: the failed and unknown rows written one by one (at most MAX_CASES in the
    // file), and the rest aggregated per error class and status.
    let mut per_step: Vec<Vec<usize>> = vec![Vec::new(); view.steps.len()];
    let mut rest: Vec<BTreeMap<(Option<usize>, bool), u64>> =
        vec![BTreeMap::new(); view.steps.len()];
    let mut budget = MAX_CASES;
    for (i, r) in view.rows.iter().enumerate() {
        let st = view.statuses[r.status].as_str();
        if matches!(st, "failed" | "unknown") {
            if budget > 0 {
                budget -= 1;
                per_step[r.step].push(i);
            } else {
                *rest[r.step].entry((r.class, st == "unknown")).or_default() += 1;
            }
        }
    }
    // (cases, failure cases, error cases, skipped cases) of a step.
    let cases_of = |si: usize| -> (u64, u64, u64, u64) {
        let s = &view.steps[si];
        let aggregated = s
            .counts
            .iter()
            .filter(|(k, n)| !matches!(k.as_str(), "failed" | "unknown") && **n > 0)
            .count() as u64;
        let skipped = u64::from(s.counts.get("skipped").copied().unwrap_or(0) > 0);
        let (mut failed, mut unknown) = (0u64, 0u64);
        for &ri in &per_step[si] {
            if view.statuses[view.rows[ri].status] == "unknown" {
                unknown += 1;
            } else {
                failed += 1;
            }
        }
        for &(_, is_unknown) in rest[si].keys() {
            if is_unknown {
                unknown += 1;
            } else {
                failed += 1;
            }
        }
        (failed + unknown + aggregated, failed, unknown, skipped)
    };
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    for si in 0..view.steps.len() {
        let (cases, failed, unknown, _) = cases_of(si);
        tests += cases;
        failures += failed;
        errors += unknown;
    }

    let mut root = BytesStart::new("testsuites");
    root.push_attribute(("name", view.header.playbook.name.as_str()));
    root.push_attribute(("tests", tests.to_string().as_str()));
    root.push_attribute(("failures", failures.to_string().as_str()));
    root.push_attribute(("errors", errors.to_string().as_str()));
    root.push_attribute(("time", secs(view.duration_ms).as_str()));
    xml.write_event(Event::Start(root))?;

    let timestamp = view
        .header
        .started_at
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string();
    for (si, step) in view.steps.iter().enumerate() {
        let (cases, failed, unknown, skipped) = cases_of(si);
        let mut suite = BytesStart::new("testsuite");
        suite.push_attribute(("name", step.id.as_str()));
        suite.push_attribute(("tests", cases.to_string().as_str()));
        suite.push_attribute(("failures", failed.to_string().as_str()));
        suite.push_attribute(("errors", unknown.to_string().as_str()));
        suite.push_attribute(("skipped", skipped.to_string().as_str()));
        suite.push_attribute(("time", secs(step.duration_ms).as_str()));
        suite.push_attribute(("timestamp", timestamp.as_str()));
        xml.write_event(Event::Start(suite))?;

        write_properties(xml, view, step)?;
        write_item_cases(xml, view, &step.id, &per_step[si])?;
        write_class_cases(xml, view, &step.id, &rest[si])?;
        write_status_cases(xml, step)?;
        xml.write_event(Event::End(BytesEnd::new("testsuite")))?;
    }
    xml.write_event(Event::End(BytesEnd::new("testsuites")))?;
    Ok(())
}

/// The suite's properties: the run's, the step's request count and item counts.
fn write_properties(
    xml: &mut Writer<Vec<u8>>,
    view: &View,
    step: &super::StepView,
) -> std::io::Result<()> {
    xml.write_event(Event::Start(BytesStart::new("properties")))?;
    let mut props: Vec<(String, String)> = vec![
        ("playbook".into(), view.header.playbook.path.clone()),
        ("run_id".into(), view.header.run_id.clone()),
        ("outcome".into(), view.outcome().to_owned()),
        ("requests".into(), step.requests.to_string()),
    ];
    if let Some(url) = &view.header.base_url {
        props.push(("base_url".into(), url.clone()));
    }
    for (k, n) in &step.counts {
        props.push((format!("items.{k}"), n.to_string()));
    }
    for (k, v) in &props {
        let mut p = BytesStart::new("property");
        p.push_attribute(("name", k.as_str()));
        p.push_attribute(("value", v.as_str()));
        xml.write_event(Event::Empty(p))?;
    }
    xml.write_event(Event::End(BytesEnd::new("properties")))?;

    Ok(())
}

/// One case per failed or unknown item listed one by one (`rows`: indexes into the view's rows).
fn write_item_cases(
    xml: &mut Writer<Vec<u8>>,
    view: &View,
    step_id: &str,
    rows: &[usize],
) -> std::io::Result<()> {
    for &ri in rows {
        let r = &view.rows[ri];
        let unknown = view.statuses[r.status] == "unknown";
        let class = r.class.map(|c| &view.classes[c]);
        let message = r
            .note
            .as_deref()
            .or(class.map(|c| c.message.as_str()))
            .unwrap_or("");
        let mut case = BytesStart::new("testcase");
        case.push_attribute(("name", xml_safe(&r.key).as_str()));
        case.push_attribute(("classname", step_id));
        case.push_attribute(("time", secs(r.duration_ms).as_str()));
        xml.write_event(Event::Start(case))?;
        let tag = if unknown { "error" } else { "failure" };
        let mut f = BytesStart::new(tag);
        f.push_attribute(("message", cut(message).as_str()));
        f.push_attribute((
            "type",
            class
                .map_or_else(|| "error".to_owned(), super::ErrorClass::label)
                .as_str(),
        ));
        xml.write_event(Event::Start(f))?;
        let mut body = format!(
            "{} item {} (index {})",
            view.statuses[r.status],
            xml_safe(&r.key),
            r.index
        );
        if let Some(line) = r.line {
            body.push_str(&format!(", input line {line}"));
        }
        body.push_str(&format!(", {} attempt(s)", r.attempts));
        if unknown {
            body.push_str("\nit may or may not have happened: check it before sending it again");
        }
        xml.write_event(Event::Text(BytesText::new(&body)))?;
        xml.write_event(Event::End(BytesEnd::new(tag)))?;
        xml.write_event(Event::End(BytesEnd::new("testcase")))?;
    }
    Ok(())
}

/// Past the budget: one case per error class and status (`rest`: counts by class and whether
/// unknown).
fn write_class_cases(
    xml: &mut Writer<Vec<u8>>,
    view: &View,
    step_id: &str,
    rest: &BTreeMap<(Option<usize>, bool), u64>,
) -> std::io::Result<()> {
    for (&(class, is_unknown), &n) in rest {
        let label = class.map_or_else(|| "error".to_owned(), |c| view.classes[c].label());
        let status = if is_unknown { "unknown" } else { "failed" };
        let mut case = BytesStart::new("testcase");
        case.push_attribute(("name", format!("{n} more {status} items: {label}").as_str()));
        case.push_attribute(("classname", step_id));
        xml.write_event(Event::Start(case))?;
        let tag = if is_unknown { "error" } else { "failure" };
        let mut f = BytesStart::new(tag);
        f.push_attribute((
            "message",
            format!(
                "{n} more {status} items of class {label}, not listed one by one to keep \
                 this file small; every item is in the JSON report and the HTML view"
            )
            .as_str(),
        ));
        f.push_attribute(("type", label.as_str()));
        xml.write_event(Event::Empty(f))?;
        xml.write_event(Event::End(BytesEnd::new("testcase")))?;
    }
    Ok(())
}

/// The other statuses, one aggregated case each, in display order.
fn write_status_cases(xml: &mut Writer<Vec<u8>>, step: &super::StepView) -> std::io::Result<()> {
    let mut others: Vec<(&String, &u64)> = step
        .counts
        .iter()
        .filter(|(k, n)| !matches!(k.as_str(), "failed" | "unknown") && **n > 0)
        .collect();
    others.sort_by_key(|(k, _)| STATUS_ORDER.iter().position(|s| s == k).unwrap_or(99));
    for (status, n) in others {
        let mut case = BytesStart::new("testcase");
        case.push_attribute(("name", plural(*n, status).as_str()));
        case.push_attribute(("classname", step.id.as_str()));
        if status == "skipped" {
            xml.write_event(Event::Start(case))?;
            let mut s = BytesStart::new("skipped");
            s.push_attribute(("message", plural(*n, "items skipped").as_str()));
            xml.write_event(Event::Empty(s))?;
            xml.write_event(Event::End(BytesEnd::new("testcase")))?;
        } else {
            xml.write_event(Event::Empty(case))?;
        }
    }
    Ok(())
}
