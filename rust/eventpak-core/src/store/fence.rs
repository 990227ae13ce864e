//! Visibility fences: events written now, visible only when the fence commits.
//!
//! One fence at a time per store. While it is open, plain appends wait for it (so the
//! fence's events are always the newest, and committing them can never make an event
//! appear behind a reader's position): from the thread that opened it they fail at once
//! with [`Error::FenceActive`] (they would wait on themselves); from any other thread they
//! wait until it commits or cancels, up to `fence_wait_ms`, then fail with `FenceActive`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Store;
use crate::error::{Error, Result};
use crate::writer::Writer;

/// Who holds the open fence, and the signal that it ended.
#[derive(Default)]
pub(super) struct FenceGate {
    owner: Mutex<Option<ThreadId>>,
    ended: Condvar,
    /// Mirrors `owner.is_some()`, so a plain append passes with one atomic load when no
    /// fence is open (the writer lock re-checks, so a fence opened just after is still seen).
    held: AtomicBool,
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
                    if self.ended.wait_until(&mut owner, deadline).timed_out() && owner.is_some() {
                        return Err(Error::FenceActive);
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

    /// True while a fence is open.
    pub fn fence_open(&self) -> bool {
        self.shared.index.read().visibility.open_fence.is_some()
    }

    /// Opens a fence. The marker is persisted before any fenced frame is written, so a
    /// crash with the fence open hides its events at reopen.
    /// Another thread's open fence is waited for (up to `fence_wait_ms`).
    pub fn begin_fence(&self) -> Result<()> {
        let writer = self.writer()?;
        self.shared.fence.pass(|| self.fence_deadline(), true)?;
        let opened = (|| {
            self.check_open()?;
            let mut w = writer.lock();
            w.check_healthy()?;
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
            self.shared.fence.release();
        }
        committed
    }

    fn reveal_fence(&self) -> Result<()> {
        let writer = self.writer()?;
        let written = writer.lock().written();
        // The fence's frames must be on disk before the commit that reveals them is.
        self.shared.durability.make_durable(written, writer)?;
        let mut w = writer.lock();
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
        drop(w);
        self.shared.announce_commit();
        Ok(())
    }

    /// Cancels the open fence: its events are hidden for good (persisted).
    pub fn cancel_fence(&self) -> Result<()> {
        let writer = self.writer()?;
        if !self.fence_open() {
            return Err(Error::FenceClosed);
        }
        self.cancel_open_fence(writer)
    }

    /// Cancels the open fence, if any, without checking that the store is open.
    pub(super) fn cancel_open_fence(&self, writer: &Mutex<Writer>) -> Result<()> {
        let mut w = writer.lock();
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
        drop(w);
        self.shared.fence.release();
        saved
    }

    /// Writes `hidden.ranges`. A failure poisons the writer like any failed write: the file
    /// on disk may hold the old or the new state, so nothing more may be acknowledged.
    fn persist_visibility(&self, w: &mut Writer, visibility: &crate::visibility::Visibility) -> Result<()> {
        visibility.save(&*self.shared.storage, &self.shared.data_dir).inspect_err(|e| w.poison(e.clone()))
    }
}
