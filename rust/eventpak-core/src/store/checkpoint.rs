//! Durable cursor checkpoints of this store's data dir, written through the store's
//! `Storage`, so crash simulation and fault injection cover them like every other write;
//! and the list of them with each one's lag.

use std::time::UNIX_EPOCH;

use super::Store;
use crate::cursor_checkpoint::{checkpoint_path, validate_checkpoint_id, CursorCheckpoint, CURSORS_DIR};
use crate::error::{Error, Result, READ_CONTEXT};
use crate::region::Region;

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

/// How far a region's reader is behind: the visible events of the region after its position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lag {
    /// Visible events of the region after the position.
    pub events: u64,
    /// The timestamp (µs since the epoch) of the first of them; `None` when there is none.
    pub oldest_timestamp_us: Option<u64>,
}

/// Hits counted per hold of the index lock by [`Store::region_lag`].
const LAG_CHUNK: usize = 16 * 1024;

/// A durable cursor checkpoint of the data dir, as [`Store::checkpoints`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointStatus {
    /// The checkpoint id (the file name without `.ckpt`).
    pub id: String,
    /// What the file holds.
    pub checkpoint: CursorCheckpoint,
    /// The file's modification time (µs since the epoch): when it was saved, since a save
    /// writes a temp file and renames it, and a rename keeps the temp file's write time.
    pub saved_at_us: u64,
    /// The region's backlog after the position; `None` when the file names no region
    /// identity, or one this version cannot read back as a region.
    pub lag: Option<Lag>,
}

impl Store {
    /// The lag of a reader of `region` at cursor position `position` (`started` as a
    /// cursor has it): the visible events it has yet to read, and the oldest one's time.
    pub fn region_lag(&self, region: &Region, position: u64, started: bool) -> Result<Lag> {
        self.check_open()?;
        let (mut events, mut oldest_timestamp_us) = (0u64, None);
        let mut after = (position, started);
        // Counted a chunk at a time, the index lock released in between: appends wait for
        // one chunk, not for the whole backlog of a checkpoint far behind (a metrics scrape
        // of a million-event backlog held them for a third of a second). Events appended
        // meanwhile may be counted: a lag is a reading, not a snapshot.
        loop {
            let index = self.index()?;
            let (mut seen, mut first) = (0, None);
            index.visit_hits_after(region, after.0, after.1, |seq| {
                first.get_or_insert(seq);
                after = (seq, true);
                seen += 1;
                seen < LAG_CHUNK
            });
            if let Some(seq) = first.filter(|_| events == 0) {
                // Read under the lock that found it (a compaction may remove it after).
                oldest_timestamp_us =
                    self.read_locked(&index, &[seq])?.first().map(|e| e.view().timestamp_us());
            }
            events += seen as u64;
            if seen < LAG_CHUNK {
                return Ok(Lag { events, oldest_timestamp_us });
            }
        }
    }

    /// Every durable cursor checkpoint in the data dir (of running and stopped workers, of
    /// this process and of others sharing the dir), sorted by id, each with its region's
    /// lag. A checkpoint that cannot be trusted raises [`Error::CursorCheckpointCorrupt`].
    pub fn checkpoints(&self) -> Result<Vec<CheckpointStatus>> {
        let mut out = Vec::new();
        for id in self.checkpoint_ids()? {
            out.extend(self.checkpoint_status(&id)?);
        }
        Ok(out)
    }

    /// The ids of the durable cursor checkpoints in the data dir, sorted: what
    /// [`Store::checkpoints`] lists, for a caller that reads each one on its own so that a
    /// damaged one does not hide the others.
    pub fn checkpoint_ids(&self) -> Result<Vec<String>> {
        self.check_open()?;
        let dir = self.shared.data_dir.join(CURSORS_DIR);
        let entries = match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(unreadable(dir, e)),
            Ok(entries) => entries,
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".ckpt").map(str::to_owned))
            .filter(|id| validate_checkpoint_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Checkpoint `id` with its region's lag; `None` when there is none (a checkpoint reset
    /// since it was listed is simply gone). A checkpoint that cannot be trusted raises
    /// [`Error::CursorCheckpointCorrupt`].
    pub fn checkpoint_status(&self, id: &str) -> Result<Option<CheckpointStatus>> {
        self.check_open()?;
        let Some(checkpoint) = CursorCheckpoint::load(&self.shared.data_dir, id)? else { return Ok(None) };
        let path = checkpoint_path(&self.shared.data_dir, id)?;
        let modified = std::fs::symlink_metadata(&path).and_then(|m| m.modified());
        let modified = modified.map_err(|e| unreadable(path, e))?;
        let saved_at_us = modified.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        let region = checkpoint.region_identity.as_deref().map(Region::from_checkpoint_identity);
        let lag = match region {
            Some(Ok(region)) => Some(self.region_lag(&region, checkpoint.position, checkpoint.started)?),
            _ => None,
        };
        Ok(Some(CheckpointStatus { id: id.to_owned(), checkpoint, saved_at_us, lag }))
    }
}

/// A cursors folder or checkpoint file that cannot be read or stat-ed: an I/O failure (no
/// descriptor left, permission denied), not damage.
fn unreadable(path: std::path::PathBuf, e: std::io::Error) -> Error {
    Error::storage(&format!("{READ_CONTEXT}{}", path.display()), e)
}
