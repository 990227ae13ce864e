//! Retention and compaction: removing the events a `Retention` selects from the sealed
//! segments, while appends and reads go on.
//!
//! The steps, each durable before the next, so that a crash at any instant leaves the store
//! as before or as after:
//! 1. select, then write each affected sealed segment again without its removed events
//!    under a temp name (`<id>.seg.compact-<generation>`), fsync it, fsync the folder;
//! 2. write `compacted.ranges` atomically, naming the new generation, the rewritten
//!    segments and their lengths, the removed ranges, each entity's newest removed event
//!    and the removed events' idempotency receipts: the commit point (recovery rolls the
//!    temp files of the committed generation forward and removes any other);
//! 3. under the index write lock, rename each temp file over its segment, swap the
//!    segment's file in the reader and move its index entries, so a reader sees the old
//!    segment and entries or the new ones, never a mix; then fsync the folder.

mod guard;
mod rewrite;
mod select;

pub use select::{Retention, Selection};

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Store;
use crate::compaction::{temp_segment_name, Compacted};
use crate::error::{Error, Result, COMPACTION_CONTEXT};
use crate::index::INDEX_CHECKPOINT_FILE;
use crate::segment::{segment_file_name, SEGMENTS_DIR};
use rewrite::Rewritten;

/// What a compaction did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Events removed.
    pub removed: u64,
    /// Visible events left in the segments examined (the sealed ones).
    pub kept: u64,
    /// Bytes the rewritten segments shrank by.
    pub bytes_freed: u64,
}

impl Store {
    /// Removes the events `selection` picks from the sealed segments (every segment but the
    /// one active at the start). `progress(done, total)` is called with bytes rewritten;
    /// returning false (or the predicate returning `None`) stops before anything changes
    /// and returns [`Error::Internal`]. Refused on a read-only store, a replica and in
    /// shared mode.
    pub fn compact(
        &self,
        selection: Selection<'_>,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<CompactionReport> {
        let writer = self.writer("compacting")?;
        self.refuse_on_replica("compacting")?;
        if self.shared.sharing.is_some() {
            return Err(Error::InvalidConfig(
                "compaction needs a store opened without shared=True (other processes map its segments)"
                    .into(),
            ));
        }
        let _one_at_a_time = self.hold_off_compaction("compact()")?;
        let _marked = guard::Compacting::enter(&self.shared);
        self.check_open()?;
        let (active, written) = {
            let w = writer.lock();
            w.check_healthy()?;
            (w.end().0, w.written())
        };
        let files = self.shared.segments.list();
        let sealed: Vec<bool> = files.iter().map(|(id, _)| *id < active).collect();
        let snapshot = {
            let index = self.index()?;
            let kind_ids = match &selection {
                Selection::Rules(rules) => rules.kinds.as_ref().map(|kinds| {
                    let mut ids = vec![false; index.kind_names.len()];
                    kinds
                        .iter()
                        .filter_map(|k| index.kind_names.get(k))
                        .for_each(|id| ids[id as usize] = true);
                    ids
                }),
                Selection::Predicate(_) => None,
            };
            let entries = index.entries[..written.min(index.len()) as usize].to_vec();
            select::Snapshot { entries, kind_ids, sealed }
        };
        let now_us = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        let stopped = || Error::Internal("compaction stopped by its callback".into());
        // Until the record is saved nothing has changed: a failure is the compaction's alone.
        let beside = |e: Error| e.beside_writer(COMPACTION_CONTEXT);
        let (removed, examined) = select::select(&self.shared.segments, &snapshot, selection, now_us)
            .map_err(beside)?
            .ok_or_else(stopped)?;
        if removed.is_empty() {
            progress(0, 0);
            return Ok(CompactionReport { removed: 0, kept: examined, bytes_freed: 0 });
        }
        let generation = self.shared.index.read().compacted.generation + 1;
        let done = self
            .rewrite_all(&snapshot, &removed, generation, progress)
            .map_err(beside)?
            .ok_or_else(stopped)?;
        let record = {
            let mut record = self.shared.index.read().compacted.clone();
            record.generation = generation;
            record.add_removed(&removed);
            record.rewritten = done.iter().map(|r| r.id).collect();
            for r in &done {
                record.segments.insert(r.id, r.new_len);
                for (entity, clock, hash) in &r.heads {
                    let head = record.heads.entry(entity.clone()).or_insert((*clock, *hash));
                    if *clock >= head.0 {
                        *head = (*clock, *hash);
                    }
                }
                record.keys.extend(r.keys.iter().cloned());
            }
            record
        };
        if let Err(e) = record.save(&*self.shared.storage, &self.shared.data_dir) {
            // The record may be in place without being durable: whether this compaction
            // happened is for the next open to find out (its temp files are kept for it),
            // and the writer stops until then.
            writer
                .lock()
                .poison(Error::storage("committing a compaction", std::io::Error::other(e.to_string())));
            return Err(e);
        }
        // Committed: from here a failure leaves the disk ahead of memory, so the writer
        // stops until a reopen rolls the rest forward.
        if let Err(e) = self.swap_in(&done, &removed, record) {
            writer
                .lock()
                .poison(Error::storage("finishing a compaction", std::io::Error::other(e.to_string())));
            return Err(e);
        }
        let bytes_freed = done.iter().map(|r| r.old_len - r.new_len).sum();
        Ok(CompactionReport {
            removed: removed.len() as u64,
            kept: examined - removed.len() as u64,
            bytes_freed,
        })
    }

    /// Step 1 for every sealed segment holding a removed event.
    fn rewrite_all(
        &self,
        snapshot: &select::Snapshot,
        removed: &[u64],
        generation: u64,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<Option<Vec<Rewritten>>> {
        let segments_dir = self.shared.data_dir.join(SEGMENTS_DIR);
        let mut positions: Vec<u32> = removed.iter().map(|&s| snapshot.entries[s as usize].segment).collect();
        positions.dedup();
        let mut sizes = Vec::with_capacity(positions.len());
        for &position in &positions {
            sizes.push(self.shared.segments.file_len(position)?);
        }
        let total: u64 = sizes.iter().map(|(_, len)| len).sum();
        let mut done: Vec<Rewritten> = Vec::new();
        let mut before = 0;
        for (&position, &(id, len)) in positions.iter().zip(&sizes) {
            let map = self.shared.segments.map(position, len)?;
            let temp = segments_dir.join(temp_segment_name(id, generation));
            let mut report = |at: u64| progress(before + at, total);
            let outcome = rewrite::rewrite(
                &*self.shared.storage,
                (map.path(), temp),
                (position, id),
                (&map.bytes()[..len as usize], self.shared.keys.is_some()),
                removed,
                &mut report,
            );
            match outcome {
                Ok(Some(r)) => done.push(r),
                Ok(None) => {
                    discard(&done);
                    return Ok(None);
                }
                Err(e) => {
                    discard(&done);
                    return Err(e);
                }
            }
            before += len;
            if !progress(before, total) {
                discard(&done);
                return Ok(None);
            }
        }
        if let Err(e) = self.shared.storage.sync_dir(&segments_dir) {
            discard(&done);
            return Err(Error::storage("fsync of segments dir", e));
        }
        Ok(Some(done))
    }

    /// Step 3: the rewritten segments replace the old ones, on disk and for readers.
    fn swap_in(&self, done: &[Rewritten], removed: &[u64], record: Compacted) -> Result<()> {
        let storage = &*self.shared.storage;
        let segments_dir = self.shared.data_dir.join(SEGMENTS_DIR);
        let _swap = self.shared.segment_swap.write();
        let mut index = self.shared.index.write();
        let mut outcome = Ok(());
        for r in done {
            let path = segments_dir.join(segment_file_name(r.id));
            // A segment not renamed keeps its old file and entries: still true to readers.
            if let Err(e) = storage.rename(&r.temp, &path) {
                outcome = Err(Error::storage("renaming a compacted segment", e));
                break;
            }
            self.shared.segments.replace(r.position, path)?;
            index.move_frames(r.position, &r.events, &r.tracking);
        }
        index.remove_events(removed);
        index.compacted = record;
        drop(index);
        outcome?;
        storage.sync_dir(&segments_dir).map_err(|e| Error::storage("fsync of segments dir", e))?;
        // The index checkpoint cannot describe a log with removed events (a reopen scans).
        remove_if_present(storage, &self.shared.data_dir.join(INDEX_CHECKPOINT_FILE))
    }
}

fn remove_if_present(storage: &dyn crate::io::Storage, path: &Path) -> Result<()> {
    match storage.remove(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::storage("removing index.ckpt", e)),
        _ => Ok(()),
    }
}

/// Removes the temp files of a compaction that did not commit (best effort: recovery
/// removes any left behind).
fn discard(done: &[Rewritten]) {
    for r in done {
        let _ = std::fs::remove_file(&r.temp);
    }
}
