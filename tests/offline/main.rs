//! Tests that need no server of their own: the catalog against its contract and against the
//! vendor's API descriptions, the command line end to end (validate, dry runs, `actions`,
//! schemas, the prompt, route families), CSV inputs, and the report file.

#[path = "../support/mod.rs"]
mod support;

mod catalog;
mod catalog_cases;
mod cli;
mod inputs;
mod openapi;
mod prompt_routes;
mod report;
mod schema;
