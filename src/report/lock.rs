//! One live run per report: an exclusive OS lock (`flock`-style, via `std::fs::File::try_lock`)
//! on `<report>.lock`, held for the whole run. A run locks the report it writes and every report
//! it resumes, so a second run on the same `--report`, or a `--resume` of a report whose run
//! is still alive (or that another live run is already continuing), is refused. The kernel
//! drops the lock when the process dies, so a crashed run never leaves it behind; the file
//! names the process id of its holder, for the message.
//!
//! std's file locks (stable since Rust 1.89) are used instead of `fs4`/`fd-lock`: the same
//! system call, no dependency.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// A held lock; released (and its file removed) on drop.
#[derive(Debug)]
pub struct ReportLock {
    file: File,
    path: PathBuf,
}

/// Why a report could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{} is in use by a running wts-playbook ({holder}): one report belongs to one live run", report.display())]
    Busy { report: PathBuf, holder: String },
    #[error("cannot lock {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// `<report>.lock`, beside the report's real path: symbolic links and `./` or `..` spellings
/// of one report all name the same lock.
pub fn lock_path(report: &Path) -> PathBuf {
    let mut s = canonical(report).into_os_string();
    s.push(".lock");
    PathBuf::from(s)
}

/// The real path of `report` (which may not exist yet: then its directory's real path and its
/// file name).
pub fn canonical(report: &Path) -> PathBuf {
    if let Ok(p) = fs::canonicalize(report) {
        return p;
    }
    let dir = match report.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => fs::canonicalize(d).unwrap_or_else(|_| d.to_owned()),
        None => fs::canonicalize(".").unwrap_or_default(),
    };
    match report.file_name() {
        Some(name) => dir.join(name),
        None => report.to_owned(),
    }
}

impl ReportLock {
    /// Takes the lock of `report` without waiting.
    pub fn acquire(report: &Path) -> Result<ReportLock, LockError> {
        if let Some(dir) = report.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| LockError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        let path = lock_path(report);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_err)?;
        }
        // A holder removes the file when it finishes: if it did so between our open and our
        // lock, we hold a lock on a file nobody else can find. Check and try again.
        for _ in 0..8 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io_err)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = match holder.trim() {
                        "" => "another process".to_owned(),
                        h => h.to_owned(),
                    };
                    return Err(LockError::Busy {
                        report: report.to_owned(),
                        holder,
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io_err(e)),
            }
            if !same_file(&file, &path) {
                continue;
            }
            file.set_len(0).map_err(io_err)?;
            file.rewind().map_err(io_err)?;
            writeln!(file, "process {}", std::process::id()).map_err(io_err)?;
            return Ok(ReportLock { file, path });
        }
        Err(io_err(io::Error::other(
            "the lock file keeps being replaced",
        )))
    }
}

impl Drop for ReportLock {
    fn drop(&mut self) {
        // Remove first, then unlock (closing the file): a waiter that opened the old file
        // sees it is gone and retries.
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.json");
        let held = ReportLock::acquire(&report).unwrap();
        let err = ReportLock::acquire(&report).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("process {}", std::process::id())),
            "{text}"
        );
        assert!(matches!(err, LockError::Busy { .. }));
        drop(held);
        assert!(!lock_path(&report).exists());
        let again = ReportLock::acquire(&report).unwrap();
        drop(again);
    }

    #[cfg(unix)]
    #[test]
    fn another_name_for_the_same_report_is_the_same_lock() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("a.json");
        fs::write(&report, "x").unwrap();
        let link = dir.path().join("l.json");
        std::os::unix::fs::symlink(&report, &link).unwrap();
        let _held = ReportLock::acquire(&report).unwrap();
        assert!(matches!(
            ReportLock::acquire(&link),
            Err(LockError::Busy { .. })
        ));
        let dotted = dir.path().join(".").join("a.json");
        assert!(ReportLock::acquire(&dotted).is_err());
    }

    #[test]
    fn a_stale_lock_file_without_a_holder_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.json");
        fs::write(lock_path(&report), "process 1\n").unwrap();
        let held = ReportLock::acquire(&report).unwrap();
        drop(held);
    }
}
