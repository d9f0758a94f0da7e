//! `wts-playbook show PLAN`: a plan for a person (text), a pull-request comment (Markdown) or a
//! tool (JSON).

use std::fmt::Write as _;

use super::{Plan, PlannedWrite};

pub(crate) use crate::cli::ShowFormat;

/// Requests shown per step (the counts are always whole).
const FIRST: usize = 5;

/// The plan as `format` prints it.
pub(crate) fn show(plan: &Plan, format: ShowFormat) -> String {
    match format {
        ShowFormat::Json => {
            let v = serde_json::json!({
                "header": plan.header,
                "writes": plan.writes,
                "trailer": plan.trailer,
            });
            let mut s = serde_json::to_string_pretty(&v).expect("a plan serializes");
            s.push('\n');
            s
        }
        ShowFormat::Text => text(plan),
        ShowFormat::Markdown => markdown(plan),
    }
}

/// `PUT /chat/v1/session/…/transfer {"…"}`, one line.
pub(crate) fn request_line(w: &PlannedWrite) -> String {
    let mut s = format!("{} {}", w.method, w.request().path_and_query());
    if let Some(b) = &w.body {
        let _ = write!(s, " {b}");
    }
    s
}

fn by_step(plan: &Plan) -> Vec<(&str, Vec<&PlannedWrite>)> {
    let mut out: Vec<(&str, Vec<&PlannedWrite>)> = Vec::new();
    for w in &plan.writes {
        match out.iter_mut().find(|(s, _)| *s == w.step) {
            Some((_, v)) => v.push(w),
            None => out.push((&w.step, vec![w])),
        }
    }
    out
}

fn text(plan: &Plan) -> String {
    let h = &plan.header;
    let mut s = String::new();
    let _ = writeln!(s, "plan      {} ({})", h.plan_id, plan.hash());
    let _ = writeln!(
        s,
        "playbook  {} ({}, sha256 {})",
        h.playbook.name,
        h.playbook.path,
        &h.playbook.sha256[..12.min(h.playbook.sha256.len())]
    );
    let _ = writeln!(
        s,
        "target    {} (account {}, routes {})",
        h.base_url, h.account, h.routes
    );
    let _ = writeln!(s, "made      {}; expires {}", h.created_at, h.expires_at);
    let _ = writeln!(s, "reads     {} request(s) spent making it", h.reads);
    let _ = writeln!(s, "writes    {}", plan.trailer.writes);
    for (step, actions) in &plan.trailer.steps {
        for (action, n) in actions {
            let _ = writeln!(s, "  {step:<20} {action:<28} {n}");
        }
    }
    for (step, writes) in by_step(plan) {
        let _ = writeln!(s, "\n{step}: first requests");
        for w in writes.iter().take(FIRST) {
            let _ = writeln!(s, "  #{} [{}] {}", w.seq, w.key, request_line(w));
            for d in &w.depends_on {
                let _ = writeln!(s, "      known after apply: {}", d.value);
            }
        }
        if writes.len() > FIRST {
            let _ = writeln!(s, "  … and {} more", writes.len() - FIRST);
        }
    }
    if plan.writes.is_empty() {
        s.push_str("\nnothing to write\n");
    }
    s
}

fn markdown(plan: &Plan) -> String {
    let h = &plan.header;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Plan `{}`: {} write(s) to `{}`\n",
        h.playbook.name, plan.trailer.writes, h.base_url
    );
    let _ = writeln!(
        s,
        "Plan `{}` · hash `{}` · account `{}` · made {} · expires {} · {} read(s) spent\n",
        h.plan_id,
        &plan.hash()[..16],
        h.account,
        h.created_at,
        h.expires_at,
        h.reads
    );
    s.push_str("| step | action | writes |\n|---|---|---:|\n");
    for (step, actions) in &plan.trailer.steps {
        for (action, n) in actions {
            let _ = writeln!(s, "| {step} | `{action}` | {n} |");
        }
    }
    for (step, writes) in by_step(plan) {
        let _ = writeln!(
            s,
            "\n<details><summary>{step}: first requests</summary>\n\n```"
        );
        for w in writes.iter().take(FIRST) {
            let _ = writeln!(s, "#{} [{}] {}", w.seq, w.key, request_line(w));
        }
        if writes.len() > FIRST {
            let _ = writeln!(s, "… and {} more", writes.len() - FIRST);
        }
        s.push_str("```\n\n</details>\n");
    }
    let _ = writeln!(s, "\nApply after review: `wts-playbook apply PLAN` (refused if the file changes, expires, or is pointed at another account).");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planfile::tests_support::sample;

    #[test]
    fn text_and_markdown_count_per_step_and_show_the_first_requests() {
        let p = sample(12);
        let t = show(&p, ShowFormat::Text);
        assert!(t.contains("writes    12"), "{t}");
        assert!(
            t.contains("move                 session.transfer             12"),
            "{t}"
        );
        assert!(
            t.contains("#1 [k0] PUT /chat/v1/session/k0/transfer"),
            "{t}"
        );
        assert!(t.contains("… and 7 more"), "{t}");
        assert!(!t.contains("[k5]"), "{t}");
        let m = show(&p, ShowFormat::Markdown);
        assert!(m.contains("| move | `session.transfer` | 12 |"), "{m}");
        assert!(m.contains("<details>"), "{m}");
        let j: serde_json::Value = serde_json::from_str(&show(&p, ShowFormat::Json)).unwrap();
        assert_eq!(j["writes"].as_array().unwrap().len(), 12);
        assert_eq!(j["trailer"]["chain"], p.hash());
    }
}
