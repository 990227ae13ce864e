//! Writing in shared mode: the write lock, the repair after a writer that died holding it,
//! publishing what was written, and the group-commit fsync across processes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::MutexGuard;

use super::SharedMode;
use crate::coord::{Published, WriteGuard};
use crate::error::{Error, Result};
use crate::segment::{
    list_segments, load_seals, segment_file_name, SealRecords, SegmentHeader, SEGMENTS_DIR,
    SEGMENT_HEADER_LEN,
};
use crate::store::{Shared, Store};
use crate::writer::Writer;

impl Store {
    /// Takes the cross-process write lock for a writer whose in-process lock is held:
    /// repairs what a dead writer left, follows the log, and moves the writer to its end.
    pub(in crate::store) fn lock_shared_writes<'a>(
        &self,
        mode: &'a SharedMode,
        w: &mut MutexGuard<'_, Writer>,
    ) -> Result<WriteGuard<'a>> {
        let guard = mode.coord.lock_writes()?;
        if mode.coord.mem.writing() != 0 {
            self.repair_dead_writer(mode).inspect_err(|e| w.poison(e.clone()))?;
        }
        let published = mode.coord.mem.published();
        // To the published end, not only its newest event: a tracking record after it is
        // what a tracking check must see.
        self.follow_to_end(mode, (published.segment_id, published.segment_len))?;
        let unchanged =
            (published.seq, (published.segment_id, published.segment_len)) == (w.written(), w.end());
        if unchanged && !published.rotate_before_write {
            return Ok(guard); // Nobody wrote since this writer did: it is at the end already.
        }
        // A segment published empty (a rotation finished by a repair) has no frame that
        // made the follow register it.
        let position = match self.shared.segments.position_of(published.segment_id) {
            Some(position) => position,
            None => self.shared.segments.push(
                published.segment_id,
                self.shared.data_dir.join(SEGMENTS_DIR).join(segment_file_name(published.segment_id)),
            )?,
        };
        let end = (published.segment_id, position, published.segment_len);
        w.adopt(end, published.seq, published.rotate_before_write)?;
        let last_timestamp_us = mode.tail.lock().last_timestamp_us;
        w.clock.observe(self.shared.index.read().last_event_id(), last_timestamp_us);
        Ok(guard)
    }

    /// Marks the files as being changed by this process until [`Store::publish_writes`]:
    /// if it dies in between, the next writer repairs.
    pub(in crate::store) fn begin_shared_write(&self, mode: &SharedMode) {
        // The id read at open (`getpid` is a system call; a store never crosses a fork).
        mode.coord.mem.set_writing(u64::from(self.shared.opened_by_pid));
    }

    /// Publishes the writer's end of the log (its frames are written and indexed here).
    pub(in crate::store) fn publish_writes(&self, mode: &SharedMode, w: &Writer) {
        let (segment_id, segment_len) = w.end();
        let published = Published { seq: w.written(), segment_id, segment_len, rotate_before_write: false };
        {
            let mut tail = mode.tail.lock();
            if let Some(position) = self.shared.segments.position_of(segment_id) {
                tail.position = position;
            }
            tail.offset = segment_len;
            tail.last_timestamp_us = tail.last_timestamp_us.max(w.clock.last_timestamp_us());
        }
        mode.coord.mem.publish(published);
        mode.followed.fetch_max(w.written(), std::sync::atomic::Ordering::AcqRel);
        mode.coord.mem.set_writing(0);
    }

    /// A writer died between changing files and publishing: cut what it left past the
    /// published end (a torn frame, a whole unpublished batch, a half-made rotation).
    fn repair_dead_writer(&self, mode: &SharedMode) -> Result<()> {
        let storage = &*self.shared.storage;
        let segments_dir = self.shared.data_dir.join(SEGMENTS_DIR);
        let mut published = mode.coord.mem.published();
        let seals = load_seals(&segments_dir)?;
        seals
            .cut_torn_record(storage, &segments_dir)
            .map_err(|e| Error::storage("cutting a torn seal record", e))?;
        let files = list_segments(&segments_dir).map_err(|e| Error::storage("listing segments", e))?;
        let mut dir_changed = false;
        let found = published;
        for (id, path) in files.iter().filter(|(id, _)| *id > found.segment_id) {
            // Made by a rotation that published nothing. A whole header names the segment
            // its writer may have registered (a poisoned writer's process still reads): it is
            // kept, emptied back to its header, and becomes the active segment. Anything else
            // goes, and the next rotation makes it anew.
            let whole = *id == found.segment_id + 1 && sealed_at(&seals, &found) && header_fits(path, &found);
            if whole {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| Error::storage("opening an unpublished segment", e))?;
                storage
                    .truncate(&file, path, SEGMENT_HEADER_LEN as u64)
                    .and_then(|()| storage.sync(&file, path))
                    .map_err(|e| Error::storage("emptying an unpublished segment", e))?;
                published.segment_id = *id;
                published.segment_len = SEGMENT_HEADER_LEN as u64;
                continue;
            }
            storage
                .remove(path)
                .map_err(|e| Error::storage(&format!("removing unpublished segment {id}"), e))?;
            dir_changed = true;
        }
        if dir_changed {
            storage.sync_dir(&segments_dir).map_err(|e| Error::storage("fsync of segments dir", e))?;
        }
        let path = segments_dir.join(segment_file_name(published.segment_id));
        if published.seq == 0 && !path.exists() {
            // A read-only process started the session on a store that never got a segment.
            let encrypted = self.shared.keys.is_some();
            Writer::create_segment_as(storage, &segments_dir, (published.segment_id, 0), encrypted)
                .map_err(|e| Error::storage("creating the first segment", e))?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Error::storage("opening the active segment", e))?;
        let len = file.metadata().map_err(|e| Error::storage("reading segment size", e))?.len();
        if len > published.segment_len {
            storage
                .truncate(&file, &path, published.segment_len)
                .and_then(|()| storage.sync(&file, &path))
                .map_err(|e| Error::storage("cutting a dead writer's tail", e))?;
        }
        if let Some(seal) = seals.by_segment.get(&published.segment_id) {
            if (seal.len, seal.next_sequence) != (published.segment_len, published.seq) {
                let reason = format!(
                    "sealed with {} bytes up to sequence {}, published with {} bytes up to sequence {}",
                    seal.len, seal.next_sequence, published.segment_len, published.seq
                );
                return Err(Error::corrupt(&path, published.segment_len, reason));
            }
            // Sealed, but the next segment never took a frame: the next write rotates.
            published.rotate_before_write = true;
        }
        mode.coord.mem.publish(published);
        // The dead writer may have replaced `hidden.ranges` without announcing it.
        mode.coord.mem.bump_visibility();
        mode.coord.mem.set_writing(0);
        Ok(())
    }
}

/// True when the published active segment was sealed where the log is published.
fn sealed_at(seals: &SealRecords, published: &Published) -> bool {
    seals
        .by_segment
        .get(&published.segment_id)
        .is_some_and(|seal| (seal.len, seal.next_sequence) == (published.segment_len, published.seq))
}

/// True when `path` starts with a whole header of the segment after the published one.
fn header_fits(path: &std::path::Path, published: &Published) -> bool {
    let Ok(bytes) = std::fs::read(path) else { return false };
    bytes.len() >= SEGMENT_HEADER_LEN
        && SegmentHeader::decode(&bytes[..SEGMENT_HEADER_LEN])
            .is_ok_and(|h| h.segment_id == published.segment_id + 1 && h.base_sequence == published.seq)
}

/// How often a process waiting for another's fsync checks that the leader is still alive.
const LEADER_CHECK_INTERVAL: Duration = Duration::from_millis(5);
/// Bounds of the wait for other processes' appends before a group-commit fsync.
const MIN_GATHER: Duration = Duration::from_micros(20);
const MAX_GATHER: Duration = Duration::from_millis(2);

impl Shared {
    /// Makes events `0..upto` durable with one fsync covering every event any process
    /// published before it started, unless another process's fsync already covered them;
    /// returns the durable count and whether this call ran the fsync.
    pub(in crate::store) fn lead_shared_sync(&self, mode: &SharedMode, upto: u64) -> Result<(u64, bool)> {
        let mem = &mode.coord.mem;
        loop {
            let seen = mem.fsyncs().load();
            if mem.durable() >= upto {
                return Ok((mem.durable(), false));
            }
            // One process fsyncs at a time; the others wait for its fsync to end, all woken
            // at once, and only those it did not cover try to lead the next one.
            if let Some(_leader) = mode.coord.syncs.try_lock()? {
                if mem.durable() >= upto {
                    return Ok((mem.durable(), false));
                }
                let covered = self.sync_published(mode)?;
                mem.fsyncs().wake();
                return Ok((covered, true));
            }
            // A leader that died never wakes anyone: the timeout notices its lock is free.
            mem.fsyncs().wait(seen, LEADER_CHECK_INTERVAL);
        }
    }

    /// As the holder of the sync lock: gathers, then fsyncs the active segment; returns the
    /// events the fsync covered.
    fn sync_published(&self, mode: &SharedMode) -> Result<u64> {
        let mem = &mode.coord.mem;
        gather(mode);
        let covered = mem.published_seq();
        let durable = mem.durable();
        // Read after `covered`: the segment holding the newest of those events, or a later
        // one (an older segment was fsynced when it was sealed).
        let segment_id = mem.active_segment();
        let file = {
            let mut cached = mode.sync_file.lock();
            match &*cached {
                Some((id, file)) if *id == segment_id => file.clone(),
                _ => {
                    let path = self.data_dir.join(SEGMENTS_DIR).join(segment_file_name(segment_id));
                    let file = std::fs::File::open(&path)
                        .map_err(|e| Error::storage("opening a segment to fsync", e))?;
                    let file = Arc::new((file, path));
                    *cached = Some((segment_id, file.clone()));
                    file
                }
            }
        };
        let started = Instant::now();
        self.storage.sync(&file.0, &file.1).map_err(|e| Error::storage("fsync of the active segment", e))?;
        mem.note_fsync(covered.saturating_sub(durable), started.elapsed());
        mem.note_durable(covered);
        Ok(covered)
    }
}

/// The cross-process form of the in-process gathering (`sync.rs`): processes released by
/// one fsync come back to append at slightly different moments, and the first one back
/// would otherwise fsync almost alone. So when the last fsync covered several events, the
/// leader first waits, at most about one fsync, until as many wait for the next one.
fn gather(mode: &SharedMode) {
    let mem = &mode.coord.mem;
    let (group, fsync_time) = mem.last_fsync();
    if group <= 1 {
        return;
    }
    let deadline = Instant::now() + (fsync_time * 2).clamp(MIN_GATHER, MAX_GATHER);
    let commits = mem.commits();
    loop {
        let seen = commits.load();
        if mem.published_seq().saturating_sub(mem.durable()) >= group {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        commits.wait(seen, left);
    }
}
