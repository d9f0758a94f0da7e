//! wts-playbook: declarative YAML playbooks against the WTS Chat API.
//!
//! The pipeline, one module per stage, data flowing one way:
//! [`playbook`] (load) → [`validate`] → [`program`] (the validated model) → [`plan`] (render) →
//! [`execute`] → [`report`] → [`views`] (HTML, `JUnit`, Markdown). [`settings`] holds what the
//! run and each step run under (rate windows, retry policy, their one resolution).
//! [`app`] maps each subcommand to these stages and owns the exit codes; [`sandbox`] is the
//! simulated WTS account the tests and `run --sandbox` use.

// A closed stdout or stderr (`… | head`, `2>&-`) is not a crash: std's printing macros panic
// when a write fails, so every module of this crate uses these instead (same names, declared
// before the modules so they shadow std's), which drop what cannot be written.
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::output::line($crate::output::Stream::Out, format_args!($($arg)*))
    };
}
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::output::text($crate::output::Stream::Out, format_args!($($arg)*))
    };
}
macro_rules! eprintln {
    ($($arg:tt)*) => {
        $crate::output::line($crate::output::Stream::Err, format_args!($($arg)*))
    };
}
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::output::text($crate::output::Stream::Err, format_args!($($arg)*))
    };
}

pub(crate) mod accounts;
pub(crate) mod api_error;
pub mod app;
pub mod catalog;
pub mod cli;
pub mod diagnostic;
pub(crate) mod duration;
pub mod execute;
pub mod inputs;
pub(crate) mod output;
pub(crate) mod plan;
pub(crate) mod planfile;
pub(crate) mod playbook;
pub(crate) mod program;
pub(crate) mod progress;
pub mod report;
pub mod sandbox;
pub mod schema;
pub(crate) mod secret;
pub(crate) mod settings;
pub(crate) mod template;
pub(crate) mod validate;
pub(crate) mod views;
