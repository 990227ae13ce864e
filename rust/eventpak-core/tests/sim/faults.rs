//! A [`Storage`] that fails the K-th call of one operation kind, once or forever.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use eventpak_core::io::{OsStorage, Storage};

/// The mutating operations a fault can hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Write,
    Sync,
    SyncDir,
    Rename,
    Truncate,
    Remove,
}

pub const ALL_OPS: [Op; 6] = [Op::Write, Op::Sync, Op::SyncDir, Op::Rename, Op::Truncate, Op::Remove];

/// Counts every call per kind and fails the chosen one.
#[derive(Debug, Default)]
pub struct FaultStorage {
    counts: [AtomicU64; 6],
    fault: Option<(Op, u64, bool)>,
    tripped: AtomicBool,
}

impl FaultStorage {
    /// Fails call number `nth` (1-based) of `op`; with `forever`, every later call of it too.
    pub fn failing(op: Op, nth: u64, forever: bool) -> Self {
        FaultStorage { fault: Some((op, nth, forever)), ..Default::default() }
    }

    /// Calls of `op` so far.
    pub fn count(&self, op: Op) -> u64 {
        self.counts[op as usize].load(Ordering::SeqCst)
    }

    /// True once the fault fired.
    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::SeqCst)
    }

    fn check(&self, op: Op) -> std::io::Result<()> {
        let n = self.counts[op as usize].fetch_add(1, Ordering::SeqCst) + 1;
        if let Some((fault_op, nth, forever)) = self.fault {
            if fault_op == op && (n == nth || (forever && n > nth)) {
                self.tripped.store(true, Ordering::SeqCst);
                return Err(std::io::Error::other(format!("injected {op:?} failure #{n}")));
            }
        }
        Ok(())
    }
}

impl Storage for FaultStorage {
    fn write(&self, file: &File, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        self.check(Op::Write)?;
        OsStorage.write(file, path, bytes)
    }
    fn sync(&self, file: &File, path: &Path) -> std::io::Result<()> {
        self.check(Op::Sync)?;
        OsStorage.sync(file, path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.check(Op::SyncDir)?;
        OsStorage.sync_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.check(Op::Rename)?;
        OsStorage.rename(from, to)
    }
    fn truncate(&self, file: &File, path: &Path, len: u64) -> std::io::Result<()> {
        self.check(Op::Truncate)?;
        OsStorage.truncate(file, path, len)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.check(Op::Remove)?;
        OsStorage.remove(path)
    }
}
