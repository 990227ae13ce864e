//! Visibility fences: events written now, visible only when the fence commits.
//!
//! One fence at a time per store. While it is open, plain appends are refused
//! ([`Error::FenceActive`]), so the fence's events are always the newest and committing
//! them can never make an event appear behind a reader's position.

use parking_lot::Mutex;

use super::Store;
use crate::error::{Error, Result};
use crate::writer::Writer;

impl Store {
    /// True while a fence is open.
    pub fn fence_open(&self) -> bool {
        self.shared.index.read().visibility.open_fence.is_some()
    }

    /// Opens a fence. The marker is persisted before any fenced frame is written, so a
    /// crash with the fence open hides its events at reopen.
    pub fn begin_fence(&self) -> Result<()> {
        let writer = self.writer()?;
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
    }

    /// Commits the open fence: its events are made durable, then visible.
    pub fn commit_fence(&self) -> Result<()> {
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
        self.persist_visibility(&mut w, &visibility)?;
        let mut index = self.shared.index.write();
        index.visibility = visibility;
        index.drop_fence();
        Ok(())
    }

    /// Writes `hidden.ranges`. A failure poisons the writer like any failed write: the file
    /// on disk may hold the old or the new state, so nothing more may be acknowledged.
    fn persist_visibility(&self, w: &mut Writer, visibility: &crate::visibility::Visibility) -> Result<()> {
        visibility.save(&*self.shared.storage, &self.shared.data_dir).inspect_err(|e| w.poison(e.clone()))
    }
}
