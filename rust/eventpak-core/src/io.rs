//! File-system access. Every write, fsync, rename, truncation and removal of the engine goes
//! through [`Storage`], so tests can fail any of them on purpose or record which bytes were
//! made durable when (crash simulation). [`OsStorage`] is the real thing.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

/// The mutating file operations of the engine. Every method defaults to the operating
/// system's behaviour; a test backend overrides what it wants to observe or break.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Writes all of `bytes` at the end of `file` (opened for appending).
    fn write(&self, file: &File, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let _ = path;
        (&*file).write_all(bytes)
    }

    /// Makes the data written to `file` durable (`fdatasync`).
    fn sync(&self, file: &File, path: &Path) -> std::io::Result<()> {
        let _ = path;
        file.sync_data()
    }

    /// Makes directory entry changes in `dir` (create, rename, remove) durable.
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        File::open(dir)?.sync_all()
    }

    /// Renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::rename(from, to)
    }

    /// Cuts `file` to `len` bytes.
    fn truncate(&self, file: &File, path: &Path, len: u64) -> std::io::Result<()> {
        let _ = path;
        file.set_len(len)
    }

    /// Removes the file at `path`.
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_file(path)
    }
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsStorage;

impl Storage for OsStorage {}

/// A shared handle to the real file system.
pub fn os_storage() -> Arc<dyn Storage> {
    Arc::new(OsStorage)
}

/// Creates `dir` (and parents) with mode 0700 when missing.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Creates `dir` (mode 0700) and every missing parent, and fsyncs the folder holding
/// each one it created: a new folder's name is only durable once its parent is synced.
pub fn create_durable_dir(storage: &dyn Storage, dir: &Path) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut cursor = Some(dir);
    while let Some(path) = cursor.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(path.to_owned());
        cursor = path.parent();
    }
    if missing.is_empty() {
        return Ok(());
    }
    create_private_dir(dir)?;
    for created in missing.iter().rev() {
        match created.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => storage.sync_dir(parent)?,
            None => storage.sync_dir(Path::new("."))?,
        }
    }
    Ok(())
}

/// Opens `path` for appending, creating it with mode 0600 when `create`.
pub fn open_append(path: &Path, create: bool) -> std::io::Result<File> {
    OpenOptions::new().read(true).append(true).create(create).mode(0o600).open(path)
}

/// Removes the temp files [`write_atomic`] leaves in `dir` when its process is killed
/// between the write and the rename (`.NAME.PID.N.tmp`, or `.NAME.PID.tmp` from older
/// versions). Only for a store that has the data
/// dir to itself: another process's temp file may be one it is writing.
pub fn remove_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(is_temp_name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// True for a name [`write_atomic`] gives its temp files.
fn is_temp_name(name: &str) -> bool {
    let pid = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")).and_then(|n| n.rsplit_once('.'));
    pid.is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// A name for a temp file of `name` no other writer uses at once: `.NAME.PID.N.tmp`, with
/// the process id (processes sharing a data dir) and a number counted per process (two
/// stores, or two threads, of one process writing the same file at once).
pub fn temp_name(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(".{name}.{}.{n}.tmp", std::process::id())
}

/// Replaces `dir/name` with `bytes` atomically: temp file, fsync, rename, directory fsync.
/// A crash leaves either the old file or the new one, never a mix. Each call writes a temp
/// file of its own ([`temp_name`]), so writers racing on one file never write into each
/// other's: the last rename wins, whole.
pub fn write_atomic(storage: &dyn Storage, dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_telling(storage, dir, name, bytes).map_err(|failed| failed.error)
}

/// A failed [`write_atomic_telling`]: the error, and whether the new file may have
/// replaced the old one (`false`: the old file stands, untouched).
#[derive(Debug)]
pub struct AtomicWriteFailed {
    /// What failed.
    pub error: std::io::Error,
    /// The rename was tried: the file at the name may be the old one or the new one.
    pub may_have_replaced: bool,
}

/// [`write_atomic`], telling a failure that left the old file standing from one that may
/// not have (for callers that must know which file is on disk now).
pub fn write_atomic_telling(
    storage: &dyn Storage,
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<(), AtomicWriteFailed> {
    let before = |error| AtomicWriteFailed { error, may_have_replaced: false };
    let tmp = dir.join(temp_name(name));
    // A leftover temp file (or a planted symlink) is removed, not followed; `create_new`
    // (O_CREAT | O_EXCL) then fails rather than follow a link placed in between.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(before(e)),
        _ => {}
    }
    let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(before)?;
    let written = storage.write(&file, &tmp, bytes).and_then(|()| storage.sync(&file, &tmp));
    drop(file);
    if let Err(e) = written {
        // The old file stands; the temp file would only hold space (a full disk's, often).
        let _ = std::fs::remove_file(&tmp);
        return Err(before(e));
    }
    let after = |error| AtomicWriteFailed { error, may_have_replaced: true };
    if let Err(e) = storage.rename(&tmp, &dir.join(name)) {
        // A failed rename normally changed nothing, but not on every file system: the
        // caller may not rely on the old file.
        let _ = std::fs::remove_file(&tmp);
        return Err(after(e));
    }
    storage.sync_dir(dir).map_err(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails every fsync, as a full or failing disk does.
    #[derive(Debug)]
    struct FailingSync;

    impl Storage for FailingSync {
        fn sync(&self, _file: &File, _path: &Path) -> std::io::Result<()> {
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        }
    }

    #[test]
    fn a_failed_atomic_write_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(&OsStorage, dir.path(), "f", b"old").unwrap();
        assert!(write_atomic(&FailingSync, dir.path(), "f", b"new").is_err());
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, ["f"]);
    }

    #[test]
    fn temp_file_names_are_told_apart_from_others() {
        assert!(is_temp_name(".index.ckpt.4242.tmp") && is_temp_name(".c.ckpt.1.tmp"));
        let fresh = temp_name("index.ckpt");
        assert!(is_temp_name(&fresh) && fresh != temp_name("index.ckpt"));
        for other in
            ["index.ckpt", ".index.ckpt.tmp", ".x.12a.tmp", "x.1.tmp", ".x.1.tmp.bak", ".backup.staging"]
        {
            assert!(!is_temp_name(other), "{other}");
        }
    }
}
