//! Online backups: a copy of the data dir, consistent as of one global sequence, taken
//! while appends and reads go on.
//!
//! 1. Under the write lock(s), a snapshot: where the log ends, the hidden ranges, the seal
//!    records, and an open descriptor of every file (see `snapshot.rs`). Appends wait only
//!    for that.
//! 2. Without locks, the files that are new or changed since the destination's previous
//!    backup are copied into a staging folder inside the destination and fsynced. A crash
//!    or error until here leaves the previous backup as it was (staging is ignored).
//! 3. The `backup.pending` marker is written; the staged files are moved into place, the
//!    grown segment extended, files the new backup lacks removed, folders fsynced; the
//!    marker is removed. While it exists, opening the destination is refused, and the next
//!    backup into it copies everything anew.

mod copy;
mod dest;
mod snapshot;

pub(crate) use dest::{refuse_interrupted_first, refuse_unfinished};

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, BACKUP_CONTEXT};
use crate::io::{create_durable_dir, create_private_dir, open_append, Storage};
use crate::store::Store;

use copy::{stopped, Action, Copier, Plan};
use dest::{Found, STAGING_DIR};

/// File name of the marker of a backup being moved into its destination.
pub const BACKUP_PENDING_FILE: &str = "backup.pending";

/// What a backup copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupReport {
    /// The newest global sequence the backup holds (`None`: it holds no event). Every
    /// event up to it is in the backup, and none after it.
    pub through: Option<u64>,
    /// Visible events the backup holds.
    pub events: u64,
    /// Bytes written into the destination.
    pub bytes_copied: u64,
    /// True when the destination held an earlier backup whose unchanged files were kept.
    pub incremental: bool,
}

impl Store {
    /// Backs the store up into `dest`, which must not exist, be empty, or hold an earlier
    /// backup of this store (then only new and changed files are copied). Anything else is
    /// refused with [`Error::InvalidConfig`] before anything is written. `progress(done,
    /// total)` is called as bytes are copied; returning `false` stops the backup, leaving
    /// the destination as it was.
    pub fn backup(&self, dest: &Path, progress: &mut dyn FnMut(u64, u64) -> bool) -> Result<BackupReport> {
        self.check_open()?;
        let store_id = self.store_id();
        let storage = &*self.shared.storage;
        dest::inspect(dest, &self.shared.data_dir, store_id)?;
        let made = Made { dirs: missing_dirs(dest), lock: !dest.join(super::LOCK_FILE).exists() };
        if let Err(e) = create_durable_dir(storage, dest) {
            made.undo(dest);
            return Err(dest::path_error(dest, dest::CREATING, e));
        }
        // Held to the end: a second backup into the same folder, or a store opening it,
        // is refused meanwhile. (Refused, the folder is someone else's: nothing is undone.)
        let lock = super::lock::take_lock(dest, false, false).map_err(|e| match e {
            Error::StoreLocked { holder_pid, holder_mode, .. } => {
                Error::StoreLocked { holder_pid, holder_mode, backup_dest: Some(dest.to_owned()) }
            }
            // A folder this process may not write is a bad argument, as when it is created.
            Error::StorageFailed { source, .. } if source.raw_os_error().is_some() => {
                let code = source.raw_os_error().unwrap_or_default();
                failed(dest::path_error(dest, LOCKING, std::io::Error::from_raw_os_error(code)), dest)
            }
            other => failed(other, dest),
        })?;
        let staging = dest.join(STAGING_DIR);
        let marked = std::cell::Cell::new(false);
        let done = (|| {
            let found = dest::inspect(dest, &self.shared.data_dir, store_id)?;
            clear_staging(&staging)?;
            create_private_dir(&staging)
                .map_err(|e| Error::storage("creating the backup staging folder", e))?;
            let snap = self.backup_snapshot()?;
            let plan = copy::plan(&snap, dest, found == Found::Earlier)?;
            let staged = stage(storage, &plan, &staging, progress)?;
            marked.set(true);
            dest::write_marker(storage, dest, store_id)?;
            install(storage, dest, &plan, &staged)?;
            clear_staging(&staging)?;
            dest::remove_marker(storage, dest)?;
            Ok(BackupReport {
                through: snap.through(),
                events: snap.events,
                bytes_copied: plan.total(),
                incremental: found == Found::Earlier,
            })
        })();
        // Before the lock goes: a later holder of the folder is not this backup.
        super::lock::clear_holder(dest);
        if done.is_err() && !marked.get() {
            // Nothing was moved in: the destination goes back to what it was.
            let _ = std::fs::remove_dir_all(&staging);
            lock.unlock();
            made.undo(dest);
        }
        done.map_err(|e| failed(e, dest))
    }
}

const LOCKING: &str = "locking the backup destination";

/// A storage failure of a backup: the backup failed, not the store's writer, and the
/// destination is named beside the store the error is reported for.
fn failed(e: Error, dest: &Path) -> Error {
    match e.beside_writer(BACKUP_CONTEXT) {
        Error::StorageFailed { context, source } => {
            Error::StorageFailed { context: format!("{context}, destination {}", dest.display()), source }
        }
        other => other,
    }
}

/// What a backup created in its destination before copying anything.
struct Made {
    /// The folders `dest` and those above it that did not exist, `dest` first.
    dirs: Vec<PathBuf>,
    lock: bool,
}

impl Made {
    /// Removes it again (after a failure before anything was moved in). A folder that
    /// something else wrote into meanwhile is not empty, so it stays.
    fn undo(&self, dest: &Path) {
        if self.lock || !self.dirs.is_empty() {
            let _ = std::fs::remove_file(dest.join(super::LOCK_FILE));
        }
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// `dest` and the folders above it that do not exist yet, `dest` first.
fn missing_dirs(dest: &Path) -> Vec<PathBuf> {
    dest.ancestors().take_while(|p| !p.as_os_str().is_empty() && !p.exists()).map(Path::to_owned).collect()
}

fn clear_staging(staging: &Path) -> Result<()> {
    match std::fs::remove_dir_all(staging) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::storage("removing the backup staging folder", e))
        }
        _ => Ok(()),
    }
}

/// Copies every new, changed or grown file into `staging` (one flat file each, all fsynced
/// before it returns); returns where each item went (`None`: kept as it is).
fn stage(
    storage: &dyn Storage,
    plan: &Plan<'_>,
    staging: &Path,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Vec<Option<PathBuf>>> {
    let mut copier = Copier::new(storage, plan.total(), progress);
    (copier.progress)(0, copier.total).then_some(()).ok_or_else(stopped)?;
    let mut staged = Vec::with_capacity(plan.items.len());
    for (i, (_, action)) in plan.items.iter().enumerate() {
        let to = staging.join(i.to_string());
        match action {
            Action::Keep => {
                staged.push(None);
                continue;
            }
            Action::Write(source) => copier.write_new(&to, source)?,
            // Read back before the marker is removed, never renamed: no fsync needed.
            Action::Append { file, from, to: end } => copier.copy_range(file, *from, *end, &to, false)?,
        }
        staged.push(Some(to));
    }
    copier.finish()?;
    Ok(staged)
}

/// Moves the staged files into place (under the marker), removes what the new backup
/// lacks, and fsyncs every folder whose entries changed.
fn install(storage: &dyn Storage, dest: &Path, plan: &Plan<'_>, staged: &[Option<PathBuf>]) -> Result<()> {
    let fail = |e| Error::storage("moving the backup into place", e);
    let mut touched = BTreeSet::new();
    for ((rel, action), from) in plan.items.iter().zip(staged) {
        let Some(from) = from else { continue };
        let to = dest.join(rel);
        if let Action::Append { .. } = action {
            let out = open_append(&to, false).map_err(fail)?;
            let bytes = std::fs::read(from).map_err(fail)?;
            storage.write(&out, &to, &bytes).map_err(fail)?;
            storage.sync(&out, &to).map_err(fail)?;
        } else {
            let parent = to.parent().unwrap_or(dest).to_owned();
            create_durable_dir(storage, &parent).map_err(fail)?;
            storage.rename(from, &to).map_err(fail)?;
            touched.insert(parent);
        }
    }
    let wanted: HashSet<&Path> = plan.items.iter().map(|(rel, _)| rel.as_path()).collect();
    remove_stale(storage, dest, Path::new(""), &wanted, &mut touched).map_err(fail)?;
    for dir in &touched {
        storage.sync_dir(dir).map_err(fail)?;
    }
    Ok(())
}

/// Removes every data file under `dest/rel_dir` that the backup does not hold, noting the
/// folders it removed from.
fn remove_stale(
    storage: &dyn Storage,
    dest: &Path,
    rel_dir: &Path,
    wanted: &HashSet<&Path>,
    touched: &mut BTreeSet<PathBuf>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dest.join(rel_dir))? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if snapshot::skipped(rel_dir, name) {
            continue;
        }
        let rel = rel_dir.join(name);
        let kind = entry.file_type()?;
        if kind.is_dir() {
            remove_stale(storage, dest, &rel, wanted, touched)?;
        } else if !wanted.contains(rel.as_path()) {
            storage.remove(&dest.join(&rel))?;
            touched.insert(dest.join(rel_dir));
        }
    }
    Ok(())
}
