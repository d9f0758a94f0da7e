//! wts-playbook: declarative YAML playbooks against the WTS Chat API.
//!
//! The pipeline, one module per stage, data flowing one way:
//! [`playbook`] (load) → [`validate`] → [`plan`] (render) → [`execute`] → [`report`] → [`views`] (HTML, `JUnit`, Markdown).
//! [`app`] maps each subcommand to these stages and owns the exit codes; [`sandbox`] is the
//! simulated WTS account the tests and `run --sandbox` use.

pub mod app;
pub mod catalog;
pub mod cli;
pub mod diagnostic;
pub mod duration;
pub mod execute;
pub mod inputs;
pub mod plan;
pub mod playbook;
pub mod progress;
pub mod report;
pub mod sandbox;
pub mod schema;
pub mod secret;
pub mod template;
pub mod validate;
pub mod views;
