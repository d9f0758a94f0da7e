//! Writing to stdout and stderr without panicking when they are closed (`run … | head -c 100`,
//! `validate … | true`, `2>&-`): what cannot be written is dropped, and the run goes on to write
//! its report and exit with its own code. The crate's `println!`/`eprintln!`/`print!`/`eprint!`
//! (see `lib.rs`) come here, and so do the log lines (`tracing`'s writer is [`LogWriter`]).
//!
//! While a run shows progress bars, they own the terminal: every line for stderr is written
//! above them (the bars are cleared, the line written, the bars redrawn), so no line tears them.

use std::fmt::Arguments;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The progress bars on the terminal, while a run shows them.
static BARS: Mutex<Option<indicatif::MultiProgress>> = Mutex::new(None);

/// Registers (or, with `None`, removes) the bars that stderr's lines are written above.
pub(crate) fn set_bars(bars: Option<indicatif::MultiProgress>) {
    *BARS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = bars;
}

/// Which stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Out,
    Err,
}

static OUT_CLOSED: AtomicBool = AtomicBool::new(false);
static ERR_CLOSED: AtomicBool = AtomicBool::new(false);

fn write(stream: Stream, args: Arguments<'_>, newline: bool) {
    if stream == Stream::Err {
        let bars = BARS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(bars) = bars {
            bars.suspend(|| write_now(stream, args, newline));
            return;
        }
    }
    write_now(stream, args, newline);
}

fn write_now(stream: Stream, args: Arguments<'_>, newline: bool) {
    let closed = match stream {
        Stream::Out => &OUT_CLOSED,
        Stream::Err => &ERR_CLOSED,
    };
    if closed.load(Ordering::Relaxed) {
        return;
    }
    let result = match stream {
        Stream::Out => {
            let mut out = std::io::stdout().lock();
            out.write_fmt(args)
                .and_then(|()| {
                    if newline {
                        out.write_all(b"\n")
                    } else {
                        Ok(())
                    }
                })
                .and_then(|()| if newline { out.flush() } else { Ok(()) })
        }
        Stream::Err => {
            let mut err = std::io::stderr().lock();
            err.write_fmt(args).and_then(|()| {
                if newline {
                    err.write_all(b"\n")
                } else {
                    Ok(())
                }
            })
        }
    };
    if result.is_err() {
        // Closed (EPIPE, EBADF) or broken: stop trying; the report is the record.
        closed.store(true, Ordering::Relaxed);
    }
}

/// `println!` / `eprintln!`.
pub(crate) fn line(stream: Stream, args: Arguments<'_>) {
    write(stream, args, true);
}

/// `print!` / `eprint!`.
pub(crate) fn text(stream: Stream, args: Arguments<'_>) {
    write(stream, args, false);
}

/// `tracing`'s writer: log lines go to stderr like every other line (above the bars, and
/// quietly dropped when stderr is closed).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        write(Stream::Err, format_args!("{text}"), false);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}
