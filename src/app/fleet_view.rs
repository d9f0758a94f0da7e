//! What a run over several accounts shows: a progress bar per account and a total on a
//! terminal (fed by each account's [`Tally`], an observer of its executor's events), and the
//! summary table at the end. Part of [`super::fleet`].

use std::sync::Arc;

use super::fleet::Finished;
use crate::report;

/// One line per account (its outcome and counts), then the total.
pub(super) fn summary_table(finished: &[Finished], footer: &report::ReportFooter) -> String {
    let width = finished
        .iter()
        .map(|f| f.name.chars().count())
        .max()
        .unwrap_or(0)
        .max("account".len());
    let mut out = format!(
        "{:<width$}  {:<9}  {:>9}  {:>9}  {:>7}  {:>7}  {:>7}  {:>5}\n",
        "account", "outcome", "succeeded", "unchanged", "failed", "unknown", "skipped", "429s"
    );
    let row = |name: &str, outcome: &str, t: &report::Totals, r: u64| {
        format!(
            "{name:<width$}  {outcome:<9}  {:>9}  {:>9}  {:>7}  {:>7}  {:>7}  {r:>5}\n",
            t.succeeded + t.planned,
            t.unchanged,
            t.failed,
            t.unknown,
            t.skipped
        )
    };
    for f in finished {
        out.push_str(&row(
            &f.name,
            f.result.outcome.as_str(),
            &f.totals,
            f.result.rate_limited,
        ));
    }
    let total_429: u64 = finished.iter().map(|f| f.result.rate_limited).sum();
    out.push_str(&row(
        "total",
        footer.outcome.as_str(),
        &footer.totals,
        total_429,
    ));
    out
}

/// One account's figures while it runs, fed by its executor's events (an observer).
#[derive(Default)]
pub(super) struct Tally {
    /// Items of its top-level steps, as each step starts.
    planned: std::sync::atomic::AtomicU64,
    done: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    rate_limited: std::sync::atomic::AtomicU64,
}

impl crate::execute::events::Observer for Tally {
    fn on(&self, event: &crate::execute::events::Event<'_>) -> Result<(), String> {
        use crate::execute::events::Event;
        use std::sync::atomic::Ordering::Relaxed;
        match event {
            Event::StepStarted { items, .. } => {
                self.planned.fetch_add(*items, Relaxed);
            }
            Event::Progressed { .. } => {
                self.done.fetch_add(1, Relaxed);
            }
            Event::ItemFinished {
                record, carried, ..
            } if !carried
                && matches!(
                    record.status,
                    report::ItemStatus::Failed | report::ItemStatus::Unknown
                ) =>
            {
                self.failed.fetch_add(1, Relaxed);
            }
            Event::RateLimited { .. } => {
                self.rate_limited.fetch_add(1, Relaxed);
            }
            _ => {}
        }
        Ok(())
    }
}

impl Tally {
    /// `done/planned`, then what went wrong, if anything.
    fn line(&self) -> (u64, u64, String) {
        use std::sync::atomic::Ordering::Relaxed;
        let (done, planned) = (self.done.load(Relaxed), self.planned.load(Relaxed));
        let mut msg = Vec::new();
        let failed = self.failed.load(Relaxed);
        if failed > 0 {
            msg.push(format!("{failed} failed"));
        }
        let limited = self.rate_limited.load(Relaxed);
        if limited > 0 {
            msg.push(format!("{limited}× 429"));
        }
        (done, planned.max(done), msg.join(", "))
    }
}

/// On a terminal: one bar per account and a total, redrawn from the tallies until `stop`.
pub(super) fn spawn_display(
    tallies: Vec<(String, Arc<Tally>)>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
    let width = tallies
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0)
        .max("total".len());
    let style = ProgressStyle::with_template(&format!(
        "{{prefix:<{width}}} [{{bar:30}}] {{pos}}/{{len}} {{msg}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let bars: Vec<ProgressBar> = tallies
        .iter()
        .map(|(name, _)| {
            let b = multi.add(ProgressBar::new(0).with_style(style.clone()));
            b.set_prefix(name.clone());
            b
        })
        .collect();
    let total = multi.add(ProgressBar::new(0).with_style(style));
    total.set_prefix("total");
    tokio::spawn(async move {
        let mut stop = stop;
        loop {
            let (mut all_done, mut all_planned) = (0, 0);
            for ((_, t), b) in tallies.iter().zip(&bars) {
                let (done, planned, msg) = t.line();
                b.set_length(planned);
                b.set_position(done);
                b.set_message(msg);
                all_done += done;
                all_planned += planned;
            }
            total.set_length(all_planned);
            total.set_position(all_done);
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = stop.changed() => {}
                () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
            }
        }
        let _ = multi.clear();
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::events::{Event, Observer as _};

    #[test]
    fn a_tally_counts_an_accounts_progress() {
        let t = Tally::default();
        t.on(&Event::StepStarted {
            step: "close",
            items: 10,
        })
        .unwrap();
        for _ in 0..3 {
            t.on(&Event::Progressed { step: "close" }).unwrap();
        }
        t.on(&Event::RateLimited { step: "close" }).unwrap();
        assert_eq!(t.line(), (3, 10, "1× 429".to_owned()));
    }
}
