//! The side files `verify` parses: `hidden.ranges` and every cursor checkpoint.

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
        let cursors = dir.join(crate::cursor_checkpoint::CURSORS_DIR);
        let Ok(entries) = std::fs::read_dir(&cursors) else { return };
        let mut names: Vec<String> =
            entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_owned)).collect();
        names.sort();
        for name in names {
            let Some(id) = name.strip_suffix(".ckpt") else { continue };
            match CursorCheckpoint::load(&dir, id) {
                Ok(Some(c)) if c.position > self.report.events && c.started => {
                    let why = format!("position {} is past the end of the log", c.position);
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
