//! Visibility fences: events written now, visible only when the fence commits.
//!
//! One fence at a time per store. While it is open, plain appends wait for it (so the
//! fence's events are always the newest, and committing them can never make an event
//! appear behind a reader's position): from the thread that opened it they fail at once
//! with [`Error::FenceActive`] (they would wait on themselves); from any other thread they
//! wait until it commits or cancels, up to `fence_wait_ms`, then fail with `FenceActive`.
//! Every such wait can be cut short by the check its caller installed ([`crate::interruptible`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::shared_mode::SharedMode;
use super::Store;
use crate::coord::WriteGuard;
use crate::error::{Error, Result};
use crate::interrupt;
use crate::writer::Writer;

/// How often a wait for another process's fence checks that its owner is still alive.
const OWNER_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Who holds the open fence, and the signal that it ended.
#[derive(Default)]
pub(super) struct FenceGate {
    owner: Mutex<Option<ThreadId>>,
    ended: Condvar,
    /// Mirrors `owner.is_some()`, so a plain append passes with one atomic load when no
    /// fence is open (the writer lock re-checks, so a fence opened just after is still seen).
    pub(super) held: AtomicBool,
}

impl FenceGate {
    /// Waits until no other thread's fence is open (until `deadline`). With `claim`, the
    /// calling thread then owns the fence. The caller's own fence fails at once.
    fn pass(&self, deadline: impl Fn() -> Instant, claim: bool) -> Result<()> {
        if !claim && !self.held.load(Ordering::Acquire) {
            return Ok(());
        }
        let deadline = deadline();
        let me = std::thread::current().id();
        let mut owner = self.owner.lock();
        loop {
            match *owner {
                Some(holder) if holder == me => return Err(Error::FenceActive),
                Some(_) => {
                    self.ended.wait_until(&mut owner, interrupt::slice_end(deadline));
                    if owner.is_some() {
                        if Instant::now() >= deadline {
                            return Err(Error::FenceActive);
                        }
                        // The check may run Python code (signal handlers): not under our lock.
                        MutexGuard::unlocked(&mut owner, interrupt::check)?;
                    }
                }
                None => {
                    if claim {
                        *owner = Some(me);
                        self.held.store(true, Ordering::Release);
                    }
                    return Ok(());
                }
            }
        }
    }

    /// True when the calling thread opened the fence that is open.
    fn held_by_caller(&self) -> bool {
        *self.owner.lock() == Some(std::thread::current().id())
    }

    /// Ends the fence (commit, cancel, close): wakes every waiting append.
    fn release(&self) {
        let mut owner = self.owner.lock();
        *owner = None;
        self.held.store(false, Ordering::Release);
        self.ended.notify_all();
    }
}

impl Store {
    /// When a wait for another thread's fence gives up.
    fn fence_deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.shared.config.fence_wait_ms)
    }

    /// Waits until no other thread's fence is open (see the module docs); `Ok` once a plain
    /// append may go ahead. The caller re-checks under the writer lock and comes back here
    /// if a new fence opened in between; `deadline` is fixed at the first wait.
    pub(super) fn wait_for_fence(&self, deadline: &std::cell::OnceCell<Instant>) -> Result<()> {
        self.shared.fence.pass(|| *deadline.get_or_init(|| self.fence_deadline()), false)
    }

    /// True while a fence is open (in any process sharing the data dir).
    pub fn fence_open(&self) -> bool {
        self.index().unwrap_or_else(|_| self.shared.index.read()).visibility.open_fence.is_some()
    }

    /// True when the open fence belongs to another process (shared mode).
    pub(super) fn fence_is_elsewhere(&self) -> bool {
        self.shared.sharing.is_some() && !self.shared.fence.held.load(Ordering::Acquire)
    }

    /// An append met another process's open fence while holding the locks: cancels it when
    /// its owner died, else releases the locks and waits (until `deadline`) for it to end.
    /// The caller takes the locks again and looks afresh.
    pub(super) fn wait_for_fence_elsewhere(
        &self,
        mut w: MutexGuard<'_, Writer>,
        writes: Option<WriteGuard<'_>>,
        deadline: &std::cell::OnceCell<Instant>,
    ) -> Result<()> {
        let mode = self.shared.sharing.as_ref().expect("only in shared mode");
        if mode.coord.fence_owner_gone()? {
            return self.cancel_dead_fence(mode, &mut w);
        }
        // Read before the locks go: the fence's end (under the write lock) bumps it after.
        let seen = mode.coord.mem.commits().load();
        drop(writes);
        drop(w);
        let deadline = *deadline.get_or_init(|| self.fence_deadline());
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::FenceActive);
        }
        mode.coord.mem.commits().wait(seen, left.min(OWNER_CHECK_INTERVAL));
        interrupt::check()
    }

    /// Cancels a fence whose owning process is gone (the caller holds the write locks and
    /// has followed the log): its events stay hidden, everyone else goes on.
    fn cancel_dead_fence(&self, mode: &SharedMode, w: &mut Writer) -> Result<()> {
        let mut visibility = self.shared.index.read().visibility.clone();
        let Some(start) = visibility.open_fence.take() else { return Ok(()) };
        visibility.cancel(start, w.written());
        self.persist_visibility(w, &visibility)?;
        mode.coord.mem.set_fence_owner(0);
        let mut index = self.shared.index.write();
        index.visibility = visibility;
        index.drop_fence();
        drop(index);
        self.shared.announce_commit();
        Ok(())
    }

    /// Takes the cross-process fence lock (shared mode), waiting up to `fence_wait_ms` for
    /// another process's fence to end.
    fn claim_fence_elsewhere(&self, mode: &SharedMode) -> Result<()> {
        let deadline = self.fence_deadline();
        loop {
            let seen = mode.coord.mem.commits().load();
            if mode.coord.fence.try_hold()? {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::FenceActive);
            }
            mode.coord.mem.commits().wait(seen, left.min(OWNER_CHECK_INTERVAL));
            interrupt::check()?;
        }
    }

    /// The writer lock, and in shared mode the write lock with the log followed to its end.
    pub(super) fn lock_writer<'a>(
        &'a self,
        writer: &'a Mutex<Writer>,
    ) -> Result<(MutexGuard<'a, Writer>, Option<WriteGuard<'a>>)> {
        let mut w = writer.lock();
        let writes = match &self.shared.sharing {
            Some(mode) => Some(self.lock_shared_writes(mode, &mut w)?),
            None => None,
        };
        Ok((w, writes))
    }

    /// Ends this process's hold on the cross-process fence lock.
    fn release_fence_elsewhere(&self) {
        if let Some(mode) = &self.shared.sharing {
            mode.coord.mem.set_fence_owner(0);
            mode.coord.fence.unlock();
        }
    }

    /// Opens a fence. The marker is persisted before any fenced frame is written, so a
    /// crash with the fence open hides its events at reopen.
    /// Refuses at once what [`Store::begin_fence`] would refuse before waiting for anything:
    /// a closed or read-only store, a replica.
    pub fn check_can_fence(&self) -> Result<()> {
        self.writer("opening a fence")?;
        self.refuse_on_replica("opening a fence")
    }

    /// Another thread's open fence is waited for (up to `fence_wait_ms`).
    pub fn begin_fence(&self) -> Result<()> {
        let writer = self.writer("opening a fence")?;
        self.refuse_on_replica("opening a fence")?;
        self.shared.fence.pass(|| self.fence_deadline(), true)?;
        if let Some(mode) = &self.shared.sharing {
            if let Err(e) = self.claim_fence_elsewhere(mode) {
                self.shared.fence.release();
                return Err(e);
            }
        }
        let opened = (|| {
            self.check_open()?;
            let (mut w, _writes) = self.lock_writer(writer)?;
            w.check_healthy()?;
            if let Some(mode) = &self.shared.sharing {
                // We hold the fence lock: a fence still marked open lost its owner.
                self.cancel_dead_fence(mode, &mut w)?;
                mode.coord.mem.set_fence_owner(u64::from(self.shared.opened_by_pid));
            }
            let mut visibility = self.shared.index.read().visibility.clone();
            if visibility.open_fence.is_some() {
                return Err(Error::FenceActive);
            }
            visibility.open_fence = Some(w.written());
            self.persist_visibility(&mut w, &visibility)?;
            self.shared.index.write().visibility = visibility;
            Ok(())
        })();
        if opened.is_err() {
            self.release_fence_elsewhere();
            self.shared.fence.release();
        }
        opened
    }

    /// Commits the open fence: its events are made durable, then visible.
    pub fn commit_fence(&self) -> Result<()> {
        let committed = self.reveal_fence();
        // Whatever happened, the fence is over unless there was none: let waiters go on
        // (after a failure they meet the poisoned writer, not a fence that never ends).
        if !matches!(committed, Err(Error::FenceClosed)) {
            self.release_fence_elsewhere();
            self.shared.fence.release();
        }
        committed
    }

    fn reveal_fence(&self) -> Result<()> {
        let writer = self.writer("committing a fence")?;
        let written = writer.lock().written();
        // The fence's frames must be on disk before the commit that reveals them is.
        self.shared.make_durable(written, writer)?;
        let (mut w, writes) = self.lock_writer(writer)?;
        w.check_healthy()?;
        let mut visibility = self.shared.index.read().visibility.clone();
        if visibility.open_fence.take().is_none() {
            return Err(Error::FenceClosed);
        }
        self.persist_visibility(&mut w, &visibility)?;
        {
            let mut index = self.shared.index.write();
            index.visibility = visibility;
            index.publish_fence();
        }
        drop(writes);
        drop(w);
        self.shared.announce_commit();
        Ok(())
    }

    /// Cancels the open fence: its events are hidden for good (persisted).
    pub fn cancel_fence(&self) -> Result<()> {
        let writer = self.writer("cancelling a fence")?;
        if !self.fence_open() {
            return Err(Error::FenceClosed);
        }
        self.cancel_open_fence(writer)
    }

    /// Cancels the open fence if the calling thread opened it, and says whether it did. A
    /// thread about to close the store from inside its own fence block calls this first:
    /// appends waiting for that fence (a worker's handler) then go ahead at once rather
    /// than wait out `fence_wait_ms` while the closing thread waits for them.
    pub fn cancel_fence_of_caller(&self) -> Result<bool> {
        if !self.shared.fence.held_by_caller() {
            return Ok(false);
        }
        self.cancel_fence().map(|()| true)
    }

    /// Cancels the open fence, if any, without checking that the store is open.
    pub(super) fn cancel_open_fence(&self, writer: &Mutex<Writer>) -> Result<()> {
        if !self.shared.fence.held.load(Ordering::Acquire) {
            return Ok(()); // No fence of this process (another process's is not ours to end).
        }
        let (mut w, writes) = self.lock_writer(writer)?;
        let mut visibility = self.shared.index.read().visibility.clone();
        let Some(start) = visibility.open_fence.take() else { return Ok(()) };
        visibility.cancel(start, w.written());
        // A failed save poisons the writer: waiting appends then fail with that instead.
        let saved = self.persist_visibility(&mut w, &visibility);
        if saved.is_ok() {
            let mut index = self.shared.index.write();
            index.visibility = visibility;
            index.drop_fence();
        }
        drop(writes);
        drop(w);
        self.release_fence_elsewhere();
        self.shared.fence.release();
        saved
    }

    /// Writes `hidden.ranges`. A failure poisons the writer like any failed write: the file
    /// on disk may hold the old or the new state, so nothing more may be acknowledged.
    fn persist_visibility(&self, w: &mut Writer, visibility: &crate::visibility::Visibility) -> Result<()> {
        let Some(mode) = &self.shared.sharing else {
            return visibility
                .save(&*self.shared.storage, &self.shared.data_dir)
                .inspect_err(|e| w.poison(e.clone()));
        };
        // Marked like a frame write: a process killed between the rename and the bump below
        // leaves the mark, and the next writer's repair announces the file's new state before
        // anyone appends past a fence marker nobody loaded.
        self.begin_shared_write(mode);
        let saved = visibility.save(&*self.shared.storage, &self.shared.data_dir);
        // Even after a failure: the file may hold the new state (a rename done, its directory
        // fsync failed), and other processes must judge frames by what it says.
        mode.coord.mem.bump_visibility();
        saved.inspect_err(|e| w.poison(e.clone()))?;
        mode.coord.mem.set_writing(0);
        Ok(())
    }
}
