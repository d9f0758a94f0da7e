//! Headless Chromium: open a page, read its DOM and console, take screenshots.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command as Process;
use std::time::{Duration, Instant};

use wts_playbook::report::{read_report, ItemStatus};

use super::{artefacts, tool};

pub(super) struct Page {
    pub(super) dom: String,
    pub(super) console: Vec<String>,
    pub(super) elapsed: Duration,
}

pub(super) fn chromium(extra: &[String], url: &str) -> Option<(std::process::Output, Duration)> {
    let chromium = tool("chromium")?;
    let profile = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = Process::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    Some((out, started.elapsed()))
}

pub(super) fn open(html: &Path, fragment: &str) -> Option<Page> {
    let url = format!("file://{}{fragment}", html.display());
    let (out, elapsed) = chromium(&["--dump-dom".into()], &url)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    Some(Page {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console,
        elapsed,
    })
}

pub(super) fn screenshot(html: &Path, name: &str) {
    let png = artefacts().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    let url = format!("file://{}", html.display());
    if chromium(
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,1800".into(),
            "--hide-scrollbars".into(),
        ],
        &url,
    )
    .is_some()
    {
        assert!(png.is_file(), "screenshot {} taken", png.display());
    }
}

/// Values of `attr` on every element carrying `marker` (a plain scan of the dumped DOM).
pub(super) fn attr_values(dom: &str, marker: &str, attr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for chunk in dom.split('<').skip(1) {
        let tag = chunk.split('>').next().unwrap_or("");
        if !tag.contains(marker) {
            continue;
        }
        let needle = format!("{attr}=\"");
        if let Some(start) = tag.find(&needle) {
            let rest = &tag[start + needle.len()..];
            let value = &rest[..rest.find('"').unwrap_or(rest.len())];
            out.push(unescape(value));
        }
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The page's totals (`data-status` → `data-count`).
pub(super) fn shown_totals(dom: &str) -> Vec<(String, u64)> {
    let statuses = attr_values(dom, "class=\"total\"", "data-status");
    let counts = attr_values(dom, "class=\"total\"", "data-count");
    statuses
        .into_iter()
        .zip(counts.into_iter().map(|c| c.parse().unwrap()))
        .collect()
}

/// Opens the page, checks it rendered cleanly with the report's totals, then filtered to
/// `failed` shows exactly the failed rows (all of them when they fit on one page).
pub(super) fn check_page(html: &Path, report: &Path) -> Option<Page> {
    let read = read_report(report).unwrap();
    let totals = read.footer.as_ref().unwrap().totals;
    let page = open(html, "")?;
    assert!(
        page.console.is_empty(),
        "console output: {:?}",
        page.console
    );
    assert!(
        page.dom.contains("data-ready=\"1\""),
        "the page finished drawing"
    );
    assert!(!page.dom.contains("data-errors="), "page errors");
    let shown = shown_totals(&page.dom);
    let want = serde_json::to_value(totals).unwrap();
    for (status, n) in &shown {
        if status == "total" {
            assert_eq!(*n, totals.total(), "total items");
        } else {
            assert_eq!(Some(*n), want[status].as_u64(), "{status}: {shown:?}");
        }
    }
    let shown_statuses: BTreeSet<&str> = shown.iter().map(|(s, _)| s.as_str()).collect();
    for (status, n) in want.as_object().unwrap() {
        if n.as_u64() > Some(0) {
            assert!(shown_statuses.contains(status.as_str()), "{status} shown");
        }
    }

    let failed = open(html, "#status=failed")?;
    assert!(failed.console.is_empty(), "{:?}", failed.console);
    let failed_keys: BTreeSet<String> = read
        .items
        .iter()
        .filter(|i| i.status == ItemStatus::Failed)
        .map(|i| i.key.clone())
        .collect();
    let matches: u64 = attr_values(&failed.dom, "id=\"match-info\"", "data-matches")[0]
        .parse()
        .unwrap();
    assert_eq!(matches, totals.failed, "matching rows");
    let row_statuses = attr_values(&failed.dom, "<tr data-key", "data-status");
    assert!(
        row_statuses.iter().all(|s| s == "failed"),
        "{row_statuses:?}"
    );
    let rows: BTreeSet<String> = attr_values(&failed.dom, "tr data-key", "data-key")
        .into_iter()
        .collect();
    if failed_keys.len() <= 100 {
        assert_eq!(rows, failed_keys, "exactly the failed rows");
    } else {
        assert_eq!(rows.len(), 100, "one page of failed rows");
        assert!(rows.is_subset(&failed_keys));
    }
    Some(page)
}
