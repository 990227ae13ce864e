//! The side files `verify` parses: `hidden.ranges`, `compacted.ranges` and every cursor
//! checkpoint.

use std::path::Path;

use super::Checker;
use crate::cursor_checkpoint::CursorCheckpoint;
use crate::error::Error;
use crate::visibility::Visibility;

impl Checker<'_> {
    /// `hidden.ranges` and every cursor checkpoint must parse.
    pub(super) fn check_side_files(&mut self) {
        let dir = self.store.shared.data_dir.clone();
        match Visibility::load(&dir) {
            Ok(on_disk) => {
                let lost = self.snapshot.visibility.cancelled.iter().any(|r| !on_disk.cancelled.contains(r));
                if lost {
                    let path = dir.join(crate::visibility::HIDDEN_RANGES_FILE);
                    self.problem(&path, 0, None, "hidden.ranges lacks a cancelled range the store holds");
                }
            }
            Err(e) => self.side_file_problem(&dir, e),
        }
        match crate::compaction::Compacted::load(&dir) {
            Ok(on_disk) if on_disk != self.snapshot.compacted => {
                let path = dir.join(crate::compaction::COMPACTED_RANGES_FILE);
                self.problem(&path, 0, None, "compacted.ranges differs from what the store holds");
            }
            Ok(_) => {}
            Err(e) => self.side_file_problem(&dir, e),
        }
        let cursors = dir.join(crate::cursor_checkpoint::CURSORS_DIR);
        let Ok(entries) = std::fs::read_dir(&cursors) else { return };
        let mut names: Vec<String> =
            entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_owned)).collect();
        names.sort();
        for name in names {
            let Some(id) = name.strip_suffix(".ckpt") else { continue };
            let loaded = CursorCheckpoint::load(&dir, id);
            // Workers keep committing while verify runs: a checkpoint read now may name an
            // event appended after the check started. It can only name an event that existed
            // when it was written, so the log's length read after it is the bound.
            let events_now =
                self.store.index().map_or_else(|_| self.store.shared.index.read().len(), |i| i.len());
            match loaded {
                Ok(Some(c)) if c.started && c.position >= events_now => {
                    let why =
                        format!("position {} is past the end of the log ({events_now} events)", c.position);
                    self.problem(&cursors.join(&name), 0, None, why);
                }
                Ok(_) => {}
                Err(e) => self.side_file_problem(&cursors.join(&name), e),
            }
        }
    }

    fn side_file_problem(&mut self, fallback: &Path, e: Error) {
        let (path, reason) = match e {
            Error::CorruptSegment { path, reason, .. } => (path, reason),
            Error::CursorCheckpointCorrupt { path, reason } => (path, reason),
            other => (fallback.to_owned(), other.to_string()),
        };
        self.problem(&path, 0, None, reason);
    }
}
