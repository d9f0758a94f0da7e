//! wts-playbook: declarative YAML playbooks against the WTS Chat API.
//!
//! The pipeline, one module per stage, data flowing one way:
//! playbook (load) → validate → plan (render) → execute → report.

pub mod catalog;
pub mod diagnostic;
pub mod execute;
pub mod inputs;
pub mod report;
pub mod sandbox;
