//! Test support shared by every test binary. A binary's root file says `mod support;`, its
//! modules `use crate::support::{...}`. There is one way to do each of these things:
//!
//! - **A sandbox in the test process**: [`Env::new`]`(SandboxConfig { .. })` starts a
//!   `wts_playbook::sandbox::Sandbox` on a loopback port, served by a runtime of its own for as
//!   long as the `Env` lives, with a tempdir for playbooks, CSVs and reports
//!   ([`Env::write`], [`Env::csv`]). Async tests (`#[tokio::test]`) call [`start_sandbox`].
//! - **A standalone `wts-playbook sandbox` process** (for runs that are killed, interrupted or
//!   resumed): [`SandboxProcess::start`]`(&["--token", T, "--latency-ms", "4"])`, killed on drop;
//!   [`sandbox_stderr`] reads what a sandbox process prints at start.
//! - **A misbehaving server**: [`Hostile::start`]`(&env, |method, path| reply)` answers each
//!   request with a [`Reply`] (HTML, truncated JSON, a slow drip, a closed connection, ...).
//! - **The binary**: [`command`] (a `std::process::Command`, to spawn and signal) or [`cmd`]
//!   (`assert_cmd`, with a timeout), both with no `WTS_*` variable inherited; [`against`] /
//!   [`against_std`] point one at a server (`WTS_BASE_URL`, `WTS_API_TOKEN`); [`Run::of`] runs
//!   one and captures exit code, stdout, stderr and (with [`Run::with_report`]) the report.
//!   [`Env::run`] does all of that for `run PLAYBOOK --yes -q --report R` against the `Env`'s
//!   sandbox. [`signal`], [`finish`] and [`wait_exit`] handle spawned runs, every wait bounded.
//! - **Readers**: the sandbox's `/__sandbox/state` and `/__sandbox/journal` over HTTP from either
//!   kind of sandbox ([`Served`]), the in-process journal ([`Env::journal`]), the report
//!   ([`read_report`], [`report_lines`], [`wait_for_lines`], [`statuses`]) and requests counted
//!   per object ([`count_by`], [`completed_id`], [`message_post_id`]).
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a part of the support module"
)]

mod hostile;
mod process;
mod readers;
mod sandbox;

pub(crate) use hostile::{html, json, Hostile, Reply};
pub(crate) use process::{
    against, against_std, cmd, command, finish, signal, wait_exit, wait_until, Run,
};
pub(crate) use readers::{
    completed_id, count_by, message_post_id, read_report, report_lines, statuses, uuids,
    wait_for_lines,
};
pub(crate) use sandbox::{sandbox_stderr, start_sandbox, Env, SandboxProcess, Served};
