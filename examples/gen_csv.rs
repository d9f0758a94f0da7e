//! Writes a large CSV for benchmarks: `cargo run --release --example gen_csv -- PATH ROWS`.
//! Columns: `session_id` (unique, UUID-shaped), `status`, `ticket`, `phone`; every 97th ticket
//! is quoted with a comma inside.

use std::fs::File;
use std::io::{BufWriter, Write};

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(rows)) = (args.next(), args.next()) else {
        eprintln!("usage: gen_csv PATH ROWS");
        std::process::exit(2);
    };
    let rows: u64 = rows.parse().expect("ROWS must be a number");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
    writeln!(out, "session_id,status,ticket,phone")?;
    let statuses = ["OPEN", "PENDING", "IN_PROGRESS", "COMPLETED"];
    for i in 0..rows {
        // `splitmix` is a bijection, so the first 64 bits (and the id) are unique.
        let a = splitmix(i);
        let b = splitmix(a ^ 0x5555_5555_5555_5555);
        let status = statuses[usize::try_from(i % 4).unwrap_or(0)];
        write!(
            out,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x},{status},",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )?;
        if i % 97 == 0 {
            write!(out, "\"T-{i:07}, urgent\"")?;
        } else {
            write!(out, "T-{i:07}")?;
        }
        writeln!(out, ",+5511{:09}", i % 1_000_000_000)?;
    }
    out.flush()
}
