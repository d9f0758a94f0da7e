//! Measures the report writer and reader on a large run.
//!
//! In: a mode and a count. Out: timings and rates on stdout. Run it in release mode, under
//! `/usr/bin/time -v` for the peak RSS of each phase:
//!
//! ```text
//! cargo run --release --example report_bench -- write 1000000 /tmp/r.json
//! cargo run --release --example report_bench -- read /tmp/r.json     # read_report (Vec)
//! cargo run --release --example report_bench -- index /tmp/r.json    # ResumeIndex::from_path
//! cargo run --release --example report_bench -- markers 2000 /tmp/m.json
//! cargo run --release --example report_bench                         # all, in a temp dir
//! ```

#![expect(
    clippy::cast_precision_loss,
    reason = "counts shown as rates and sizes with a few significant digits"
)]

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use serde_json::json;
use wts_playbook::catalog::Method;
use wts_playbook::report::{
    read_report, InFlight, ItemRecord, ItemStatus, Outcome, PlaybookRef, ReportHeader,
    ReportWriter, RequestRecord, ResponseRecord, ResumeIndex,
};

fn header() -> ReportHeader {
    ReportHeader::new(
        "bench",
        PlaybookRef {
            name: "bench".into(),
            path: "bench.yaml".into(),
            sha256: "00".repeat(32),
        },
        false,
        jiff::Timestamp::now(),
        json!({"concurrency": 8, "rate_limit": "off"}),
    )
}

/// A realistic item: 36-character key, PUT with a small body, a 200 response.
fn template() -> ItemRecord {
    let mut item = ItemRecord::new("close", 0, String::new(), ItemStatus::Succeeded);
    item.attempts = 1;
    item.duration_ms = 212;
    item.request = Some(RequestRecord {
        method: Method::Put,
        path: String::new(),
        body: Some(json!({"reactivateOnNewMessage": false, "stopBotInExecution": true})),
    });
    item.response = Some(ResponseRecord {
        status: 200,
        body: None,
    });
    item
}

/// Sets index, key, CSV line and path for item `i` without reallocating.
fn fill(item: &mut ItemRecord, i: u64) {
    item.index = i;
    item.line = Some(i + 2);
    item.key.clear();
    let _ = write!(
        item.key,
        "9f1c{i:08x}-0000-4000-8000-00000000{:04x}",
        i % 0xffff
    );
    if let Some(req) = &mut item.request {
        req.path.clear();
        let _ = write!(req.path, "/chat/v1/session/{}/complete", item.key);
    }
}

fn write(n: u64, path: &Path) {
    let start = Instant::now();
    let mut w = ReportWriter::create(path, &header()).expect("create");
    let mut item = template();
    for i in 0..n {
        fill(&mut item, i);
        w.write_item(&item).expect("write");
    }
    w.finish(jiff::Timestamp::now(), Outcome::Completed)
        .expect("finish");
    let secs = start.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    println!(
        "write   {n} items in {secs:.3}s = {:.0} items/s, {:.1} MB ({:.0} B/item)",
        n as f64 / secs,
        bytes as f64 / 1e6,
        bytes as f64 / n.max(1) as f64
    );
}

fn read(path: &Path) {
    let start = Instant::now();
    let r = read_report(path).expect("read");
    let secs = start.elapsed().as_secs_f64();
    let n = r.items.len();
    println!(
        "read    {n} items in {secs:.3}s = {:.0} items/s (read_report, all items kept)",
        n as f64 / secs
    );
}

fn index(path: &Path) {
    let start = Instant::now();
    let (index, scan) = ResumeIndex::from_path(path).expect("index");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "index   {} items, {} keys in {secs:.3}s = {:.0} items/s (ResumeIndex::from_path, streaming)",
        scan.items,
        index.len(),
        scan.items as f64 / secs
    );
}

fn markers(n: u64, path: &Path) {
    for (sync, batch) in [(false, 1), (true, 1), (true, 8)] {
        let mut w = ReportWriter::create(path, &header()).expect("create");
        w.set_sync_markers(sync);
        let mut item = template();
        let start = Instant::now();
        let mut i = 0;
        while i < n {
            let end = (i + batch).min(n);
            let started: Vec<InFlight> = (i..end)
                .map(|j| {
                    fill(&mut item, j);
                    InFlight {
                        step: item.step.clone(),
                        index: j,
                        key: item.key.clone(),
                        at: None,
                    }
                })
                .collect();
            w.write_started_batch(&started).expect("markers");
            for j in i..end {
                fill(&mut item, j);
                w.write_item(&item).expect("write");
            }
            i = end;
        }
        let secs = start.elapsed().as_secs_f64();
        w.finish(jiff::Timestamp::now(), Outcome::Completed)
            .expect("finish");
        println!(
            "markers {n} started+finished pairs, sync_data {}, batches of {batch}: {secs:.3}s = {:.0} pairs/s ({:.1} µs each)",
            if sync { "on " } else { "off" },
            n as f64 / secs,
            secs * 1e6 / n as f64
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let count = |i: usize, default: u64| arg(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    match arg(0) {
        Some("write") => write(
            count(1, 1_000_000),
            Path::new(arg(2).unwrap_or("report-bench.json")),
        ),
        Some("read") => read(Path::new(arg(1).unwrap_or("report-bench.json"))),
        Some("index") => index(Path::new(arg(1).unwrap_or("report-bench.json"))),
        Some("markers") => markers(
            count(1, 2_000),
            Path::new(arg(2).unwrap_or("markers-bench.json")),
        ),
        None => {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("bench.json");
            write(1_000_000, &path);
            read(&path);
            index(&path);
            markers(2_000, &dir.path().join("markers.json"));
        }
        Some(other) => {
            eprintln!("unknown mode {other}: write [N] [PATH] | read [PATH] | index [PATH] | markers [N] [PATH]");
            std::process::exit(2);
        }
    }
}
