//! Measures the streaming CSV reader:
//! `cargo run --release --example csv_bench -- PATH [render|check|count] [KEY|-]`.
//!
//! `render` (default): `open` every row (keyed by `session_id`, so the duplicate-key table is
//! built), wrap it as a template object and render `{{ row.session_id }}`. `check`: the
//! `validate` pass. `count`: `count_rows`. KEY (default `session_id`; `-` for none) is the key
//! column. Prints rows, seconds and rows/s; run it under
//! `/usr/bin/time -v` for the peak RSS.

use std::sync::Arc;
use std::time::Instant;

use wts_playbook::inputs::{check, count_rows, open, InputSpec};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: csv_bench PATH [render|check|count] [KEY|-]");
        std::process::exit(2);
    };
    let mode = args.next().unwrap_or_else(|| "render".to_owned());
    let key = args.next().unwrap_or_else(|| "session_id".to_owned());
    let mut spec = InputSpec::new("bench", &path);
    if key != "-" {
        spec = spec.with_key(key);
    }
    let started = Instant::now();
    let rows = match mode.as_str() {
        "render" => {
            let mut env = minijinja::Environment::new();
            env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
            let tmpl = env
                .template_from_str("{{ row.session_id }}")
                .expect("template compiles");
            let mut rows = open(&spec).unwrap_or_else(|d| panic!("{d}"));
            let mut n = 0u64;
            let mut bytes = 0usize;
            for row in rows.by_ref() {
                let row = Arc::new(row.unwrap_or_else(|d| panic!("{d}")));
                let out = tmpl
                    .render(minijinja::context! { row => row.into_value() })
                    .expect("renders");
                bytes += out.len();
                n += 1;
            }
            eprintln!(
                "rendered {bytes} bytes; duplicate-key table ≈ {:.1} MB",
                mb(rows.key_table_bytes())
            );
            n
        }
        "check" => {
            let problems = check(&spec, 100);
            assert!(problems.is_empty(), "{problems:?}");
            // Not timed separately: the count is a second, cheaper pass (see `count`).
            let elapsed = started.elapsed();
            let n = count_rows(&spec).unwrap_or_else(|d| panic!("{d}"));
            report(&mode, n, elapsed.as_secs_f64());
            return;
        }
        "count" => count_rows(&spec).unwrap_or_else(|d| panic!("{d}")),
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    };
    report(&mode, rows, started.elapsed().as_secs_f64());
}

fn report(mode: &str, rows: u64, secs: f64) {
    #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
    let rate = rows as f64 / secs;
    println!("{mode}: {rows} rows in {secs:.2} s = {rate:.0} rows/s");
}

#[expect(clippy::cast_precision_loss, reason = "a size for display")]
fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}
