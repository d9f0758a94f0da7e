//! The report's timeline for the HTML view: requests, 429s and retries per bucket of time,
//! the pauses, and the configured rate windows as rates per second. Built by [`super::View::load`]
//! from the rows and the footer's events.

use serde_json::Value;

use super::Row;
use crate::report::{EventKind, ReportFooter, ReportHeader, RunEvent};
use crate::settings::RateSpec;

/// A configured rate window, as a rate per second for the timeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WindowLine {
    pub label: String,
    pub per_second: f64,
}

/// Requests over time, per bucket of `bucket_ms`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Timeline {
    pub bucket_ms: u64,
    pub requests: Vec<u64>,
    pub rate_limited: Vec<u64>,
    pub retries: Vec<u64>,
    /// `(start offset ms, length ms)` of each pause.
    pub pauses: Vec<(i64, u64)>,
    pub windows: Vec<WindowLine>,
}

/// At most this many bars in the timeline; the bucket grows with the run's length.
const MAX_BUCKETS: u64 = 600;

pub(super) fn timeline(
    t0: i64,
    header: &ReportHeader,
    footer: Option<&ReportFooter>,
    rows: &[Row],
    duration_ms: u64,
) -> Timeline {
    let events: &[RunEvent] = footer.map_or(&[], |f| f.run.events.as_slice());
    let end_ms = rows
        .iter()
        .filter_map(|r| {
            r.start_ms
                .map(|s| s + i64::try_from(r.duration_ms).unwrap_or(0))
        })
        .chain(events.iter().map(|e| e.at.as_millisecond() - t0))
        .max()
        .unwrap_or(0)
        .max(i64::try_from(duration_ms).unwrap_or(0))
        .max(1);
    let end = u64::try_from(end_ms).unwrap_or(1);
    let bucket_ms = (end.div_ceil(MAX_BUCKETS)).max(1000).div_ceil(1000) * 1000;
    let n = usize::try_from(end.div_ceil(bucket_ms)).unwrap_or(1).max(1);
    let at = |off: i64| -> usize {
        let off = u64::try_from(off.max(0)).unwrap_or(0);
        usize::try_from(off / bucket_ms).unwrap_or(0).min(n - 1)
    };
    let mut t = Timeline {
        bucket_ms,
        requests: vec![0; n],
        rate_limited: vec![0; n],
        retries: vec![0; n],
        pauses: Vec::new(),
        windows: Vec::new(),
    };
    let have_events = !events.is_empty();
    for r in rows {
        if let (Some(s), true) = (r.start_ms, r.attempts > 0) {
            // Without events, every attempt is drawn at the item's start.
            t.requests[at(s)] += if have_events {
                1
            } else {
                u64::from(r.attempts)
            };
        }
    }
    for e in events {
        let off = e.at.as_millisecond() - t0;
        match e.kind {
            EventKind::Retry => {
                // The retry's request is sent after its wait.
                let sent = off + i64::try_from(e.wait_ms).unwrap_or(0);
                t.requests[at(sent)] += 1;
                if e.status == Some(429) {
                    t.rate_limited[at(off)] += 1;
                } else {
                    t.retries[at(off)] += 1;
                }
            }
            EventKind::Pause => t.pauses.push((off, e.wait_ms)),
        }
    }
    if let Some(Ok(Some(spec))) = header
        .settings
        .get("rate_limit")
        .and_then(Value::as_str)
        .map(RateSpec::parse)
    {
        t.windows = spec
            .windows
            .iter()
            .map(|w| WindowLine {
                label: w.to_string(),
                per_second: f64::from(w.count) / w.per.as_secs_f64(),
            })
            .collect();
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    #[test]
    fn timeline_buckets_grow_with_the_run_and_windows_become_rates() {
        let header = ReportHeader::new(
            "r",
            crate::report::PlaybookRef {
                name: "n".into(),
                path: "p".into(),
                sha256: "0".into(),
            },
            false,
            Timestamp::UNIX_EPOCH,
            serde_json::json!({"rate_limit": "api"}),
        );
        let row = |start_ms: i64| Row {
            step: 0,
            index: 0,
            key: "k".into(),
            status: 0,
            attempts: 2,
            duration_ms: 10,
            start_ms: Some(start_ms),
            http: Some(200),
            class: None,
            line: None,
            note: None,
        };
        // A 3-hour run: at most 600 bars, so 18 s each.
        let t = timeline(0, &header, None, &[row(0), row(10_799_000)], 10_800_000);
        assert_eq!(t.bucket_ms, 18_000);
        assert_eq!(t.requests.len(), 600);
        // Without events, every attempt is drawn at the item's start.
        assert_eq!(t.requests[0], 2);
        assert_eq!(t.requests[599], 2);
        assert_eq!(t.windows.len(), 2);
        assert_eq!(t.windows[0].label, "200/5s");
        assert!((t.windows[0].per_second - 40.0).abs() < 1e-9);
        // A short run: one-second bars.
        let t = timeline(0, &header, None, &[row(0)], 2_500);
        assert_eq!((t.bucket_ms, t.requests.len()), (1000, 3));
    }
}
