//! The sandbox: an in-process, stateful simulator of the WTS Chat API served over real HTTP
//! (axum on hyper, tokio), used by `wts-playbook sandbox`, `run --sandbox` and the tests.
//!
//! * `config`: [`SandboxConfig`], [`SandboxArgs`] and the rate-limit spec parser.
//! * `state/`: the simulated account ([`Session`], [`Contact`], ...; `model.rs`), its seed data
//!   (`seed.rs`), creating objects (`objects.rs`), and the
//!   materialization of unseen ids: any id a request names exists (sessions, contacts,
//!   cards, steps, panels, sequences, messages, departments, agents), see `World::card_by_id`.
//! * `routes`: one function per API route; `wire`: query/body/envelope helpers.
//!   `strict`: `--strict`, where unseen ids are a 404 instead.
//! * `faults`: rate limit, latency and fault injection; `journal`: the request log.
//! * `server`: [`Sandbox::start`], the accounts, the request pipeline, [`serve_cli`];
//!   `server/inspect.rs`: the `/__sandbox/` routes.
//!
//! Inspection routes (no auth, never faulted, not journaled): `GET /__sandbox/state`,
//! `GET /__sandbox/summary`, `GET /__sandbox/journal?since=SEQ&limit=N`,
//! `GET /__sandbox/sessions/{id}`, `POST /__sandbox/reset`. `PUT /__sandbox/upload/{temp}` is
//! the upload URL `GET /core/v2/file` hands out (no auth, journaled; api-notes "Files").

mod config;
mod faults;
mod journal;
mod routes;
mod server;
mod state;
mod strict;
mod wire;

pub use config::{
    api_rate_limit, parse_rate_limit, RateWindows, SandboxArgs, SandboxConfig,
    DEFAULT_JOURNAL_CAPACITY,
};
pub use journal::JournalEntry;
pub use server::{serve_cli, FileInfo, Sandbox, StateSnapshot};
pub use state::{
    Card, Contact, Enrolment, LookupId, LookupIds, Message, Note, PanelIds, Sequence, Session,
    Summary,
};
