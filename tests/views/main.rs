//! The report's human views (`wts-playbook report … --html/--junit/--markdown`) from fixture
//! reports: empty, all ok, mixed, aborted, and 100,000 items generated here. The `JUnit` files
//! are validated against `schemas/junit.xsd` with `xmllint --schema`; the HTML pages are opened
//! in headless Chromium, which must render them without console messages, show the report's
//! totals and, filtered to `failed`, exactly the failed rows. Screenshots are kept under
//! `target/tmp/views/`.
//!
//! Chromium and xmllint come from Debian (`.ci/run` installs them). With `CI=true` a missing
//! tool fails the test; elsewhere the check is skipped with a notice.

#[path = "../support/mod.rs"]
mod support;

mod browser;

use browser::{attr_values, check_page, open, screenshot};

use crate::support::cmd;

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant};

use serde_json::json;
use wts_playbook::catalog::Method;
use wts_playbook::report::{
    EventKind, ItemRecord, ItemStatus, Outcome, PlaybookRef, ReportHeader, ReportWriter,
    RequestRecord, ResponseRecord, RunEvent, RunFacts, StepFacts, Totals,
};

const T0: &str = "2026-11-25T10:00:00Z";

fn header(dry_run: bool) -> ReportHeader {
    let mut h = ReportHeader::new(
        "7d1c2f0e-run",
        PlaybookRef {
            name: "close-stale-sessions".into(),
            path: "playbooks/close stale.yaml".into(),
            sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        },
        dry_run,
        T0.parse().unwrap(),
        json!({"concurrency": 8, "rate_limit": "api", "sandbox": false}),
    );
    h.base_url = Some("http://127.0.0.1:9".into());
    h
}

fn at(ms: i64) -> jiff::Timestamp {
    T0.parse::<jiff::Timestamp>().unwrap() + jiff::SignedDuration::from_millis(ms)
}

fn uuid(i: usize) -> String {
    format!("11111111-2222-4333-8444-{i:012}")
}

fn ok(step: &str, i: usize) -> ItemRecord {
    let mut it = ItemRecord::new(step, i as u64, uuid(i), ItemStatus::Succeeded);
    it.attempts = 1;
    it.duration_ms = 40;
    it.started_at = Some(at(i64::try_from(i).unwrap() * 10));
    it.line = Some(i as u64 + 2);
    it.request = Some(RequestRecord {
        method: Method::Put,
        path: format!("/chat/v1/session/{}/complete", uuid(i)),
        body: None,
    });
    it.response = Some(ResponseRecord {
        status: 200,
        body: None,
    });
    it
}

/// A 400 with the API's error envelope.
fn refused(step: &str, i: usize) -> ItemRecord {
    let mut it = ok(step, i);
    it.status = ItemStatus::Failed;
    it.response = Some(ResponseRecord {
        status: 400,
        body: Some(
            json!({"key": "ERROR_SESSION_ALREADY_COMPLETED", "text": "Sessão já concluída"}),
        ),
    });
    it.error = Some("400 Bad Request: ERROR_SESSION_ALREADY_COMPLETED: Sessão já concluída".into());
    it
}

fn gave_up(step: &str, i: usize) -> ItemRecord {
    let mut it = ok(step, i);
    it.status = ItemStatus::Failed;
    it.attempts = 20;
    it.response = Some(ResponseRecord {
        status: 429,
        body: None,
    });
    it.error = Some("gave up after 20 attempts: 429 Too Many Requests".into());
    it
}

fn unknown(step: &str, i: usize) -> ItemRecord {
    let mut it = ok(step, i);
    it.status = ItemStatus::Unknown;
    it.response = Some(ResponseRecord {
        status: 502,
        body: None,
    });
    it.error = Some("outcome unknown: 502 Bad Gateway; not retried because `session.send_text` is not retry-safe".into());
    it
}

fn skipped(step: &str, i: usize) -> ItemRecord {
    let mut it = ItemRecord::new(step, i as u64, uuid(i), ItemStatus::Skipped);
    it.reason = Some("when: row.status != \"COMPLETED\" is false".into());
    it
}

fn write(
    path: &Path,
    header: &ReportHeader,
    items: &[ItemRecord],
    outcome: Outcome,
    mut run: RunFacts,
) {
    let mut w = ReportWriter::create(path, header).unwrap();
    w.set_sync_markers(false);
    for item in items {
        w.write_item(item).unwrap();
    }
    if run.steps.is_empty() {
        let mut steps: Vec<String> = Vec::new();
        for it in items {
            if !steps.contains(&it.step) {
                steps.push(it.step.clone());
            }
        }
        run.steps = steps
            .iter()
            .map(|s| {
                let mut totals = Totals::default();
                let mut requests = 0;
                for it in items.iter().filter(|i| &i.step == s) {
                    totals.add(it.status);
                    requests += u64::from(it.attempts);
                }
                StepFacts {
                    id: s.clone(),
                    started_at: Some(at(0)),
                    duration_ms: 1500,
                    requests,
                    totals,
                }
            })
            .collect();
    }
    run.duration_ms.get_or_insert(2000);
    w.finish_with(at(2000), outcome, run).unwrap();
}

/// The fixtures: name → (report path, outcome).
fn fixtures(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();

    let p = dir.join("empty.json");
    write(
        &p,
        &header(false),
        &[],
        Outcome::Completed,
        RunFacts::default(),
    );
    out.push(("empty", p));

    let p = dir.join("all-ok.json");
    let items: Vec<_> = (0..40)
        .map(|i| ok(if i < 20 { "close" } else { "tell" }, i))
        .collect();
    write(
        &p,
        &header(false),
        &items,
        Outcome::Completed,
        RunFacts::default(),
    );
    out.push(("all-ok", p));

    let p = dir.join("mixed.json");
    write(
        &p,
        &header(false),
        &mixed_items(),
        Outcome::Failed,
        mixed_facts(),
    );
    out.push(("mixed", p));

    let p = dir.join("aborted.json");
    let mut items: Vec<_> = (0..10).map(|i| ok("close", i)).collect();
    items.extend((10..13).map(|i| gave_up("close", i)));
    write(
        &p,
        &header(false),
        &items,
        Outcome::Aborted,
        RunFacts {
            abort_reason: Some("failure budget exceeded: 3 failures (max_failures: 2)".into()),
            rate_limited: Some(60),
            ..mixed_facts()
        },
    );
    out.push(("aborted", p));

    let p = dir.join("dry-run.json");
    let items: Vec<_> = (0..5)
        .map(|i| {
            let mut it = ok("close", i);
            it.status = ItemStatus::Planned;
            it.attempts = 0;
            it.started_at = None;
            it.response = None;
            it
        })
        .collect();
    write(
        &p,
        &header(true),
        &items,
        Outcome::Completed,
        RunFacts::default(),
    );
    out.push(("dry-run", p));
    out
}

fn mixed_items() -> Vec<ItemRecord> {
    // A key with markup and quotes must stay text.
    let mut odd = refused("close", 99);
    odd.key = "<img src=x onerror=alert(1)>\"'&".into();
    let mut items = vec![odd];
    for i in 0..30 {
        items.push(match i % 6 {
            0..=2 => ok("close", i),
            3 => refused("close", i),
            4 => skipped("close", i),
            _ => gave_up("close", i),
        });
    }
    for i in 0..6 {
        items.push(if i == 2 {
            unknown("tell", i)
        } else {
            ok("tell", i)
        });
    }
    items
}

fn mixed_facts() -> RunFacts {
    RunFacts {
        rate_limited: Some(3),
        events: (0..3)
            .flat_map(|i| {
                let e = |kind| RunEvent {
                    at: at(500 + i * 100),
                    kind,
                    step: "close".into(),
                    key: uuid(5),
                    status: Some(429),
                    cause: "rate_limited".into(),
                    wait_ms: 250,
                };
                [e(EventKind::Retry), e(EventKind::Pause)]
            })
            .collect(),
        ..RunFacts::default()
    }
}

fn report_cmd(report: &Path, args: &[&str]) -> std::process::Output {
    let out = cmd(Path::new(env!("CARGO_MANIFEST_DIR")))
        .arg("report")
        .arg(report)
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The path of a system tool, or `None` (skip, with a notice) outside CI.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !is_ci(),
            "{name} is not installed (CI must have it: .ci/run installs it)"
        );
        eprintln!("notice: {name} is not installed; skipping its check");
    }
    found
}

fn xmllint_valid(xml: &Path) {
    let Some(xmllint) = tool("xmllint") else {
        return;
    };
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/junit.xsd");
    let out = Process::new(xmllint)
        .arg("--noout")
        .arg("--huge")
        .arg("--schema")
        .arg(&xsd)
        .arg(xml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} does not validate:\n{}",
        xml.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Where screenshots are kept (a CI artefact).
fn artefacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("views");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What headless Chromium saw.
#[test]
fn every_fixture_renders_in_all_three_formats() {
    let dir = tempfile::tempdir().unwrap();
    for (name, report) in fixtures(dir.path()) {
        let html = dir.path().join(format!("{name}.html"));
        let xml = dir.path().join(format!("{name}.xml"));
        let md = dir.path().join(format!("{name}.md"));
        report_cmd(
            &report,
            &[
                "--html",
                html.to_str().unwrap(),
                "--junit",
                xml.to_str().unwrap(),
                "--markdown",
                md.to_str().unwrap(),
            ],
        );
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"), "{name}");
        // Self-contained: nothing outside the data names another resource.
        let data_start = page.find("id=\"report-data\"").unwrap();
        let data_end = data_start + page[data_start..].find("</script>").unwrap();
        let markup = format!("{}{}", &page[..data_start], &page[data_end..])
            .replace("http://www.w3.org/2000/svg", "");
        for needle in ["http://", "https://", "src=", "href=", "@import", "url("] {
            assert!(!markup.contains(needle), "{name}: {needle} in the page");
        }
        xmllint_valid(&xml);
        let md_text = std::fs::read_to_string(&md).unwrap();
        assert!(md_text.lines().count() < 60, "{name}: short:\n{md_text}");
        if let Some(page) = check_page(&html, &report) {
            assert_eq!(
                page.dom.contains("id=\"timeline\">A dry run sends nothing"),
                name == "dry-run",
                "{name}"
            );
            assert_eq!(page.dom.contains("<svg "), name != "dry-run", "{name}");
        }
        screenshot(&html, name);
    }
}

#[test]
fn markdown_has_the_summary_classes_and_rerun_command() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixtures(dir.path());
    let mixed = &fx.iter().find(|(n, _)| *n == "mixed").unwrap().1;
    let md = String::from_utf8(report_cmd(mixed, &["--markdown", "-"]).stdout).unwrap();
    assert!(
        md.starts_with("### ❌ wts-playbook run: close-stale-sessions — failed"),
        "{md}"
    );
    assert!(md.contains("against `http://127.0.0.1:9`"), "{md}");
    assert!(md.contains("| `close` | 15 | 11 | 0 | 5 |"), "{md}");
    assert!(
        md.contains("| **total** | **20** | **11** | **1** | **5** |"),
        "{md}"
    );
    assert!(
        md.contains("| 6 | `400 · ERROR_SESSION_ALREADY_COMPLETED · api_refused` | `close` |"),
        "{md}"
    );
    assert!(md.contains("| 5 | `429 · retries_exhausted` |"), "{md}");
    assert!(
        md.contains("| 1 | `502 · outcome_unknown` | `tell` |"),
        "{md}"
    );
    assert!(
        md.contains("`<img src=x onerror=alert(1)>\"'&`"),
        "a key in code: {md}"
    );
    assert!(
        md.contains(&format!(
            "wts-playbook run 'playbooks/close stale.yaml' --resume {} --retry-unknown",
            mixed.display()
        )),
        "{md}"
    );
    assert!(md.contains("3× 429"), "{md}");

    let aborted = &fx.iter().find(|(n, _)| *n == "aborted").unwrap().1;
    let md = String::from_utf8(report_cmd(aborted, &["--markdown", "-"]).stdout).unwrap();
    assert!(md.contains("⛔"), "{md}");
    assert!(
        md.contains("**Aborted:** failure budget exceeded: 3 failures (max_failures: 2)"),
        "{md}"
    );
    let dry = &fx.iter().find(|(n, _)| *n == "dry-run").unwrap().1;
    let md = String::from_utf8(report_cmd(dry, &["--markdown", "-"]).stdout).unwrap();
    assert!(
        md.starts_with("### ✅ wts-playbook dry run: close-stale-sessions"),
        "{md}"
    );
    assert!(md.contains("| `close` | 5 |"), "{md}");
    let empty = &fx.iter().find(|(n, _)| *n == "empty").unwrap().1;
    let md = String::from_utf8(report_cmd(empty, &["--markdown", "-"]).stdout).unwrap();
    assert!(md.contains("No items."), "{md}");
    assert!(!md.contains("Errors"), "{md}");
}

#[test]
fn junit_has_one_suite_per_step_and_one_case_per_failed_or_unknown_item() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixtures(dir.path());
    let mixed = &fx.iter().find(|(n, _)| *n == "mixed").unwrap().1;
    let xml = String::from_utf8(report_cmd(mixed, &["--junit", "-"]).stdout).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
    assert!(
        xml.contains(r#"<testsuite name="close" tests="13" failures="11" errors="0" skipped="1""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testsuite name="tell" tests="2" failures="0" errors="1" skipped="0""#),
        "{xml}"
    );
    assert_eq!(xml.matches("<failure ").count(), 11);
    assert_eq!(xml.matches("<error ").count(), 1);
    assert!(xml.contains(&format!(
        r#"<testcase name="{}" classname="close""#,
        uuid(3)
    )));
    assert!(
        xml.contains(r#"<testcase name="15 succeeded" classname="close"/>"#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase name="&lt;img src=x onerror=alert(1)&gt;&quot;&apos;&amp;""#)
            || xml.contains(r#"<testcase name="&lt;img src=x onerror=alert(1)&gt;&quot;'&amp;""#),
        "{xml}"
    );
    assert!(xml.contains(r#"type="400 · ERROR_SESSION_ALREADY_COMPLETED · api_refused""#));
}

#[test]
fn a_bad_report_or_no_view_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixtures(dir.path());
    let out = cmd(Path::new(env!("CARGO_MANIFEST_DIR")))
        .arg("report")
        .arg(&fx[0].1)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--html"));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "not a report\n").unwrap();
    let out = cmd(dir.path())
        .args(["report"])
        .arg(&bad)
        .args(["--html", "x.html"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.json"),
        "{out:?}"
    );
    assert!(!dir.path().join("x.html").exists());
    // A view never overwrites the report it renders.
    let before = std::fs::read(&fx[0].1).unwrap();
    let out = cmd(Path::new(env!("CARGO_MANIFEST_DIR")))
        .arg("report")
        .arg(&fx[0].1)
        .arg("--html")
        .arg(&fx[0].1)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the report itself"));
    assert_eq!(std::fs::read(&fx[0].1).unwrap(), before);
}

#[test]
fn one_hundred_thousand_items_stay_small_and_usable() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("big.json");
    let n = 100_000;
    let items: Vec<ItemRecord> = (0..n)
        .map(|i| match (i % 4, i % 50) {
            (1, _) => refused("close", i),
            (_, 14) => gave_up("close", i),
            (_, 20) => skipped("close", i),
            _ => ok("close", i),
        })
        .collect();
    write(
        &report,
        &header(false),
        &items,
        Outcome::Failed,
        mixed_facts(),
    );
    let html = dir.path().join("big.html");
    let xml = dir.path().join("big.xml");
    let md = dir.path().join("big.md");
    let started = Instant::now();
    report_cmd(
        &report,
        &[
            "--html",
            html.to_str().unwrap(),
            "--junit",
            xml.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
    );
    let render = started.elapsed();
    let html_size = std::fs::metadata(&html).unwrap().len();
    let xml_size = std::fs::metadata(&xml).unwrap().len();
    eprintln!(
        "100,000 items: report {} bytes; rendered in {render:?} (debug build); HTML {html_size} bytes, JUnit {xml_size} bytes",
        std::fs::metadata(&report).unwrap().len()
    );
    assert!(html_size < 20_000_000, "HTML {html_size} bytes");
    assert!(xml_size < 30_000_000, "JUnit {xml_size} bytes");
    // 27,000 failures: 20,000 listed one by one, the rest one case per class.
    let junit = std::fs::read_to_string(&xml).unwrap();
    let failed = items
        .iter()
        .filter(|i| i.status == ItemStatus::Failed)
        .count();
    assert_eq!(failed, 27_000);
    assert_eq!(
        junit.matches("<failure ").count(),
        20_000 + 2,
        "{}",
        &junit[..2000]
    );
    let rest: usize = junit
        .match_indices("\" classname=\"close\">")
        .filter_map(|(at, _)| {
            let name_start = junit[..at].rfind("name=\"")? + 6;
            let name = &junit[name_start..at];
            name.split_once(" more failed items: ")
                .map(|(n, _)| n.parse::<usize>().unwrap())
        })
        .sum();
    assert_eq!(rest, 7_000, "the aggregated cases count the rest");
    xmllint_valid(&xml);
    if let Some(page) = check_page(&html, &report) {
        let ready = attr_values(&page.dom, "data-ready-ms", "data-ready-ms");
        let script = attr_values(&page.dom, "data-script-ms", "data-script-ms");
        eprintln!(
            "100,000 items: interactive {} ms after navigation start (its script: {} ms); \
             the whole Chromium process (start, load, dump the DOM) took {:?}",
            ready.first().map_or("?", String::as_str),
            script.first().map_or("?", String::as_str),
            page.elapsed,
        );
        // Paged: one page of rows in the DOM, not 100,000.
        assert!(page.dom.matches("<tr data-key").count() <= 100);
        screenshot(&html, "big");
    }
}

#[test]
fn the_table_filters_by_step_status_class_and_key_from_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixtures(dir.path());
    let mixed = &fx.iter().find(|(n, _)| *n == "mixed").unwrap().1;
    let html = dir.path().join("mixed.html");
    report_cmd(mixed, &["--html", html.to_str().unwrap()]);
    for (fragment, want) in [
        ("#step=tell&status=unknown", vec![uuid(2)]),
        ("#step=tell", (0..6).map(uuid).collect()),
        ("#q=000000000003", vec![uuid(3), uuid(3)]),
        (
            "#class=1&step=close",
            [5, 11, 17, 23, 29].map(uuid).to_vec(),
        ),
    ] {
        let Some(page) = open(&html, fragment) else {
            return;
        };
        assert!(page.console.is_empty(), "{:?}", page.console);
        let mut keys = attr_values(&page.dom, "tr data-key", "data-key");
        keys.sort();
        let mut want = want;
        want.sort();
        assert_eq!(keys, want, "{fragment}");
        let matches = &attr_values(&page.dom, "id=\"match-info\"", "data-matches")[0];
        assert_eq!(matches, &want.len().to_string(), "{fragment}");
    }
}

#[test]
fn markdown_lists_the_ten_largest_error_classes_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("many.json");
    let mut items = Vec::new();
    for (n, status) in (400..412).enumerate() {
        for k in 0..(12 - n) {
            let mut it = refused("close", items.len());
            it.response = Some(ResponseRecord { status, body: None });
            it.error = Some(format!("{status} refused ({k})"));
            items.push(it);
        }
    }
    write(
        &report,
        &header(false),
        &items,
        Outcome::Failed,
        RunFacts::default(),
    );
    let md = String::from_utf8(report_cmd(&report, &["--markdown", "-"]).stdout).unwrap();
    assert_eq!(md.matches("· api_refused`").count(), 10, "{md}");
    assert!(
        md.contains("| 12 | `400 · api_refused` |"),
        "largest first: {md}"
    );
    assert!(!md.contains("`410 · api_refused`"), "{md}");
    assert!(
        md.contains("2 more classes (3 items): see the HTML report."),
        "{md}"
    );
    assert!(md.contains("(+11 other messages)"), "{md}");
}

/// A report cut short (no footer, as a crash leaves it) still renders, marked incomplete.
#[test]
fn a_report_cut_short_renders_as_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("cut.json");
    {
        let mut w = ReportWriter::create(&report, &header(false)).unwrap();
        w.set_sync_markers(false);
        w.write_item(&ok("close", 0)).unwrap();
        w.write_item(&refused("close", 1)).unwrap();
        w.write_started("close", 2, &uuid(2)).unwrap();
        w.flush().unwrap();
        // Dropped without finish: no footer, one request in flight.
    }
    let html = dir.path().join("cut.html");
    let out = report_cmd(
        &report,
        &["--markdown", "-", "--html", html.to_str().unwrap()],
    );
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.contains("— incomplete"), "{md}");
    assert!(md.contains("**The report has no footer:**"), "{md}");
    assert!(
        md.contains("| **total** | **1** | **1** | **1** |"),
        "the in-flight request is unknown: {md}"
    );
    if let Some(page) = open(&html, "") {
        assert!(page.console.is_empty(), "{:?}", page.console);
        assert!(page.dom.contains("badge incomplete"), "marked incomplete");
        assert!(page.dom.contains("started without a recorded result"));
    }
}
