//! Coordination between the processes that open one data dir with `shared=True`
//! (`docs/design.md`, "Several processes on one data dir").
//!
//! Every cross-process lock is an `flock` on a file in `shared/`: the kernel releases it
//! when its holder dies, however it dies, so a SIGKILLed process never blocks the others.
//! What the processes must see without a lock lives in one mapped page ([`SharedMemory`]).

pub mod fork;
mod futex;
mod mem;
mod write_lock;

pub use mem::{Published, SharedMemory};
pub use write_lock::WriteGuard;

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::io::create_private_dir;

/// Folder of a data dir holding the coordination files of shared mode.
pub const SHARED_DIR: &str = "shared";

/// An `flock`ed file: the lock is taken by [`FileLock::lock`] and dropped with the guard.
///
/// [`FileLock::close`] closes the file early (a store closed but still referenced keeps no
/// descriptor); every call holds a read lock on the file for its system call, so the
/// descriptor is never closed under one, and a call after the close is
/// [`Error::StoreClosed`].
pub struct FileLock {
    file: RwLock<Option<File>>,
    path: PathBuf,
}

impl Drop for FileLock {
    fn drop(&mut self) {
        if let Some(file) = self.file.get_mut() {
            fork::unregister(file.as_raw_fd());
        }
    }
}

/// Holds a [`FileLock`] until dropped.
pub struct LockGuard<'a>(&'a FileLock);

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

impl FileLock {
    /// Opens (creating) the lock file at `path`. Each `FileLock` is its own open file
    /// description, so two of them on one path exclude each other even in one process.
    pub fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::storage("opening a lock file", e))?;
        Ok(Self::from_file(file, path))
    }

    /// Wraps an open file used as a lock (tracked so that forked children let go of it).
    pub fn from_file(file: File, path: &Path) -> Self {
        fork::register(file.as_raw_fd());
        FileLock { file: RwLock::new(Some(file)), path: path.to_owned() }
    }

    /// Runs `call` on the open file; [`Error::StoreClosed`] once [`FileLock::close`] ran.
    fn with_file<T>(&self, call: impl FnOnce(&File) -> Result<T>) -> Result<T> {
        match &*self.file.read() {
            Some(file) => call(file),
            None => Err(Error::StoreClosed),
        }
    }

    /// Blocks until the lock is held exclusively. A signal arriving meanwhile (a Python
    /// handler, gunicorn's SIGWINCH) interrupts the wait, which then goes on.
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        self.with_file(|file| loop {
            match file.lock() {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.failed(e)),
            }
        })?;
        Ok(LockGuard(self))
    }

    /// The lock, if nobody else holds it right now.
    pub fn try_lock(&self) -> Result<Option<LockGuard<'_>>> {
        let taken = self.with_file(|file| match file.try_lock() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(self.failed(e)),
        })?;
        Ok(taken.then_some(LockGuard(self)))
    }

    /// Takes the lock for longer than a guard's scope (released by [`FileLock::unlock`]).
    pub fn try_hold(&self) -> Result<bool> {
        Ok(self.try_lock()?.map(std::mem::forget).is_some())
    }

    /// Releases a lock taken by [`FileLock::try_hold`] or [`FileLock::hold_shared`] (a
    /// closed file holds no lock: nothing to do).
    pub fn unlock(&self) {
        if let Some(file) = &*self.file.read() {
            let _ = file.unlock();
        }
    }

    /// Takes a shared lock for good (until [`FileLock::unlock`] or the process ends).
    pub fn hold_shared(&self) -> Result<bool> {
        self.with_file(|file| match file.try_lock_shared() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(self.failed(e)),
        })
    }

    /// Closes the file, which releases any lock held through it. Waits for a call in
    /// progress on another thread (one blocked in [`FileLock::lock`] included).
    pub fn close(&self) {
        if let Some(file) = self.file.write().take() {
            // Untracked before it closes: a fork must not redirect a reused number.
            fork::unregister(file.as_raw_fd());
        }
    }

    fn failed(&self, e: std::io::Error) -> Error {
        Error::storage(&format!("locking {}", self.path.display()), e)
    }
}

/// The cross-process state of one shared store: the mapped page and its locks.
pub struct Coordination {
    /// The mapped page.
    pub mem: SharedMemory,
    /// The write lock where no robust process-shared mutex is available (see `write_lock.rs`).
    #[cfg(not(target_os = "linux"))]
    writes: FileLock,
    /// Held by the process running a group-commit fsync.
    pub syncs: FileLock,
    /// Held by the process owning the open fence, for the fence's whole life.
    pub fence: FileLock,
    /// A second handle on the fence lock, to ask whether its owner is still alive.
    pub fence_probe: FileLock,
    /// Every member holds it shared; the first opener of a session finds it free.
    members: FileLock,
}

/// How a process joined a shared session.
pub struct Joined {
    /// The coordination state.
    pub coord: Coordination,
    /// True when no other process had the store open: this one starts the session.
    pub first: bool,
    /// Held for the whole open: openers take turns.
    pub open_lock: FileLock,
}

impl Coordination {
    /// Joins (or starts) the shared session of `data_dir`. The returned `open_lock` is
    /// held: the caller recovers, then unlocks it so the next opener may join (an open that
    /// fails releases it by dropping it).
    pub fn join(data_dir: &Path) -> Result<Joined> {
        let dir = data_dir.join(SHARED_DIR);
        create_private_dir(&dir).map_err(|e| Error::storage("creating the shared dir", e))?;
        let open_lock = FileLock::open(&dir.join("open.lock"))?;
        std::mem::forget(open_lock.lock()?); // Held past this scope: see the doc above.
        let members = FileLock::open(&dir.join("members.lock"))?;
        // Alone means nobody holds `members.lock` at all; openers take turns under
        // `open.lock`, so switching to a shared hold cannot race another opener.
        let alone = members.try_hold()?;
        if !members.hold_shared()? {
            return Err(Error::Internal("could not share members.lock after probing it".into()));
        }
        let mem =
            SharedMemory::open(&dir.join("mem")).map_err(|e| Error::storage("mapping shared/mem", e))?;
        let first = alone || !mem.is_initialized();
        if first {
            write_lock::initialize(&mem)?;
        }
        let coord = Coordination {
            mem,
            #[cfg(not(target_os = "linux"))]
            writes: FileLock::open(&dir.join("write.lock"))?,
            syncs: FileLock::open(&dir.join("sync.lock"))?,
            fence: FileLock::open(&dir.join("fence.lock"))?,
            fence_probe: FileLock::open(&dir.join("fence.lock"))?,
            members,
        };
        Ok(Joined { coord, first, open_lock })
    }

    /// Held while writing frames or `hidden.ranges`, and while repairing after a writer
    /// that died: blocks until this thread holds it.
    pub fn lock_writes(&self) -> Result<WriteGuard<'_>> {
        #[cfg(target_os = "linux")]
        return write_lock::lock(&self.mem);
        #[cfg(not(target_os = "linux"))]
        return write_lock::lock(&self.mem, &self.writes);
    }

    /// True when the owner of the open fence is gone (its lock is free).
    pub fn fence_owner_gone(&self) -> Result<bool> {
        Ok(self.fence_probe.try_lock()?.is_some())
    }

    /// Leaves the session: every lock file is closed (releasing what it held), so a store
    /// closed but still referenced keeps no descriptor of them. The page stays mapped
    /// until `self` is dropped, for reads racing the close.
    pub fn leave(&self) {
        #[cfg(not(target_os = "linux"))]
        self.writes.close();
        for lock in [&self.syncs, &self.fence, &self.fence_probe, &self.members] {
            lock.close();
        }
    }
}
