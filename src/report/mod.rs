//! The run report (README, "How a run behaves": Report): the serde model and its JSON Schema, the incremental
//! writer with its in-flight journal, the crash-tolerant reader and `--resume` index, and the
//! final human summary.

mod fleet;
mod lock;
mod model;
mod reader;
mod summary;
mod writer;

pub(crate) use fleet::{merge, part_path, parts_dir, split_account};
pub use lock::{canonical, lock_path, LockError, ReportLock};
pub use model::*;
pub use reader::{
    read_header, read_report, scan_report, CarryError, Entry, ReadReport, ReportReadError,
    ReportScan, ResumeIndex,
};
pub use summary::summary_text;
pub use writer::{default_report_path, inflight_path, InFlight, ReportWriter, FLUSH_INTERVAL};
