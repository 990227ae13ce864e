//! Durable cursor checkpoints of this store's data dir, written through the store's
//! `Storage`, so crash simulation and fault injection cover them like every other write.

use super::Store;
use crate::cursor_checkpoint::{checkpoint_path, CursorCheckpoint, CURSORS_DIR};
use crate::error::{Error, Result};

impl Store {
    /// Loads checkpoint `id`; `None` when there is none.
    pub fn load_cursor_checkpoint(&self, id: &str) -> Result<Option<CursorCheckpoint>> {
        self.check_open()?;
        CursorCheckpoint::load(&self.shared.data_dir, id)
    }

    /// Saves `checkpoint` as `id`: events through its position are made durable first, so
    /// a checkpoint never points past what survives a power loss (later events reusing
    /// those sequences would otherwise be skipped), then the file is replaced atomically.
    pub fn commit_cursor_checkpoint(&self, id: &str, checkpoint: &CursorCheckpoint) -> Result<()> {
        self.check_open()?;
        if self.shared.config.read_only {
            return Err(Error::ReadOnlyStore("saving a cursor checkpoint"));
        }
        if checkpoint.started {
            self.sync_through(checkpoint.position)?;
        }
        checkpoint.save_with(&*self.shared.storage, &self.shared.data_dir, id)
    }

    /// Deletes checkpoint `id` (durably), so a cursor or worker with that id starts over
    /// from the beginning of the log; `false` when there was none.
    pub fn reset_cursor_checkpoint(&self, id: &str) -> Result<bool> {
        self.check_open()?;
        if self.shared.config.read_only {
            return Err(Error::ReadOnlyStore("resetting a cursor checkpoint"));
        }
        let path = checkpoint_path(&self.shared.data_dir, id)?;
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(false);
        }
        let failed =
            |e: std::io::Error| Error::CheckpointWriteFailed { id: id.to_owned(), cause: e.to_string() };
        self.shared.storage.remove(&path).map_err(failed)?;
        self.shared.storage.sync_dir(&self.shared.data_dir.join(CURSORS_DIR)).map_err(failed)?;
        Ok(true)
    }
}
