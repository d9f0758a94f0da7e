//! Writing to stdout and stderr without panicking when they are closed (`run … | head -c 100`,
//! `validate … | true`, `2>&-`): what cannot be written is dropped, and the run goes on to write
//! its report and exit with its own code. The crate's `println!`/`eprintln!`/`print!`/`eprint!`
//! (see `lib.rs`) come here.

use std::fmt::Arguments;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Which stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Out,
    Err,
}

static OUT_CLOSED: AtomicBool = AtomicBool::new(false);
static ERR_CLOSED: AtomicBool = AtomicBool::new(false);

fn write(stream: Stream, args: Arguments<'_>, newline: bool) {
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
