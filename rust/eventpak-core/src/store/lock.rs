//! Ownership of a data dir: an `flock` on `LOCK` for the store's whole life, exclusive by
//! default, shared by every opener with `shared=True`. The two modes exclude each other.
//! An exclusive writable owner also writes its process id into the file, so a refused
//! opener can say which process holds the dir.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::coord::FileLock;
use crate::error::{Error, Result};

/// Name of the lock file that marks a data dir as owned.
pub const LOCK_FILE: &str = "LOCK";

/// How long `open` retries a data dir lock held by someone else before `StoreLocked`.
const LOCK_GRACE: Duration = Duration::from_millis(20);

/// Takes the data dir's lock (shared with other shared openers when `shared`), or fails
/// with [`Error::StoreLocked`] naming the holder and its mode.
pub(super) fn take_lock(data_dir: &Path, read_only: bool, shared: bool) -> Result<FileLock> {
    let path = data_dir.join(LOCK_FILE);
    // A shared reader must be able to take a lock writers see, so it creates `LOCK` too.
    let create = !read_only || shared;
    let file = if !create && !path.exists() {
        File::open(data_dir)
    } else {
        crate::io::open_append(&path, true).or_else(|e| {
            // A reader that may not write `LOCK` (a read-only mount, a snapshot, a user who
            // may only read the store) locks it as it is: `flock` needs no write access.
            let unwritable =
                e.kind() == std::io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(libc::EROFS);
            if read_only && !shared && unwritable && path.exists() {
                File::open(&path)
            } else {
                Err(e)
            }
        })
    }
    .map_err(|e| Error::storage("opening the lock file", e))?;
    // `close()` unlocks explicitly, but a holder that simply ended its descriptor can leave
    // the lock with a child another thread forked (subprocess) and that has not exec'd yet:
    // the child shares the locked file description. Give such a holder a few milliseconds.
    let deadline = Instant::now() + LOCK_GRACE;
    loop {
        let attempt = if shared { file.try_lock_shared() } else { file.try_lock() };
        match attempt {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                // A shared lock is refused only by an exclusive holder; an exclusive one by
                // either, and a shared probe tells which.
                let holder_shared = !shared && holders_are_shared(&path);
                return Err(Error::StoreLocked {
                    backup_dest: None,
                    holder_pid: if holder_shared { None } else { holder_pid(&path) },
                    holder_mode: if holder_shared { "shared" } else { "exclusive" },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::storage("locking the data dir", e)),
        }
    }
    if !shared {
        // Informational only (it names the holder in others' errors), so it is neither
        // fsynced nor routed through `Storage`, and failing to write it is not an error.
        // A read-only holder clears what a writer that died left (when it may write the
        // file), so a refused opener is not told of a process long gone; an empty file it
        // leaves alone, as truncating it would still touch its times.
        if !read_only || file.metadata().is_ok_and(|m| m.len() > 0) {
            let _ = file.set_len(0);
        }
        if !read_only {
            let _ = (&file).write_all(format!("{}\n", std::process::id()).as_bytes());
        }
    }
    Ok(FileLock::from_file(file, &path))
}

/// Fails with [`Error::StoreLocked`] when another opener holds the data dir's lock (a backup
/// running into the folder, say); takes the lock and lets it go otherwise. For refusals made
/// before the lock is taken, so that work in progress is not called unfinished.
pub(super) fn refuse_if_held(data_dir: &Path) -> Result<()> {
    if !data_dir.join(LOCK_FILE).exists() {
        return Ok(());
    }
    take_lock(data_dir, true, false).map(drop)
}

/// Clears the process id an exclusive writable owner wrote, just before it unlocks at
/// close: a later read-only holder of the dir (which may be unable to write `LOCK`) must
/// not be reported as this process.
pub(super) fn clear_holder(data_dir: &Path) {
    if let Ok(file) = std::fs::OpenOptions::new().write(true).open(data_dir.join(LOCK_FILE)) {
        let _ = file.set_len(0);
    }
}

/// True when a shared lock on `path` can be taken now: its holders are shared openers.
fn holders_are_shared(path: &Path) -> bool {
    File::open(path).is_ok_and(|probe| probe.try_lock_shared().is_ok())
}

/// The process id the current holder wrote into `LOCK`, if it wrote one.
fn holder_pid(path: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
