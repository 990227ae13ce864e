//! Following the log: a process sharing the data dir brings its index up to what the
//! others published, reading their frames from the segment files.

use std::sync::atomic::Ordering;

use parking_lot::RwLockReadGuard;

use super::{FollowTail, SharedMode};
use crate::error::{Error, Result};
use crate::index::{Index, NewEntry};
use crate::segment::{
    segment_file_name, LogFrame, SegmentHeader, SegmentSet, SEGMENTS_DIR, SEGMENT_HEADER_LEN,
};
use crate::store::Store;
use crate::visibility::Visibility;

impl Store {
    /// The index, brought up to everything published by any process first (shared mode).
    pub(in crate::store) fn index(&self) -> Result<RwLockReadGuard<'_, Index>> {
        if let Some(mode) = &self.shared.sharing {
            self.follow(mode)?;
        }
        Ok(self.shared.index.read())
    }

    /// Indexes every event published since the last follow, and adopts a changed
    /// `hidden.ranges`. Costs two atomic loads when nothing changed.
    ///
    /// Tracking records are indexed as the follow passes them: one that ends the batch of
    /// the newest event is reached here; one written in a batch of its own after it is not
    /// ([`Store::follow_to_end`] reads to the published end of the log, under the write lock).
    pub(in crate::store) fn follow(&self, mode: &SharedMode) -> Result<()> {
        self.follow_through(mode, None)
    }

    /// Follows to the published end of the log (`(segment id, length)`, read under the
    /// write lock), tracking records after the newest event included.
    pub(in crate::store) fn follow_to_end(&self, mode: &SharedMode, end: (u64, u64)) -> Result<()> {
        self.follow_through(mode, Some(end))
    }

    fn follow_through(&self, mode: &SharedMode, end: Option<(u64, u64)>) -> Result<()> {
        // The count is read before the visibility generation: a fence is recorded (and its
        // generation bumped) before its first frame is published, so frames counted here
        // are always judged with a visibility at least as new as theirs.
        let target = mode.coord.mem.published_seq();
        let generation = mode.coord.mem.visibility_gen();
        let segments = &self.shared.segments;
        if mode.followed.load(Ordering::Acquire) >= target
            && mode.followed_gen.load(Ordering::Acquire) == generation
            && !before_end(segments, &mode.tail.lock(), end)
        {
            return Ok(());
        }
        let mut tail = mode.tail.lock();
        let mut index = self.shared.index.write();
        if tail.visibility_gen != generation {
            // (Also bumped when another process made the dir a replica.)
            self.notice_replica_marker()?;
            adopt_visibility(&mut index, Visibility::load(&self.shared.data_dir)?);
            tail.visibility_gen = generation;
        }
        while index.len() < target || before_end(segments, &tail, end) {
            self.follow_segment(&mut tail, &mut index, target, end)?;
        }
        mode.followed.store(index.len(), Ordering::Release);
        mode.followed_gen.store(tail.visibility_gen, Ordering::Release);
        Ok(())
    }

    /// Indexes published frames of the tail's segment, or moves the tail to the next
    /// segment when this one holds no more.
    fn follow_segment(
        &self,
        tail: &mut FollowTail,
        index: &mut Index,
        target: u64,
        end: Option<(u64, u64)>,
    ) -> Result<()> {
        let segments = &self.shared.segments;
        let (id, file_len) = segments.file_len(tail.position)?;
        if tail.offset >= file_len {
            // Every published frame of a segment is in it before the next segment exists.
            let next = id + 1;
            let path = self.shared.data_dir.join(SEGMENTS_DIR).join(segment_file_name(next));
            tail.position = match segments.position_of(next) {
                Some(position) => position,
                None => segments.push(next, path.clone())?,
            };
            let map = segments.map(tail.position, SEGMENT_HEADER_LEN as u64)?;
            let header =
                SegmentHeader::decode(map.bytes()).map_err(|reason| Error::corrupt(&path, 0, reason))?;
            if header.base_sequence != index.len() {
                let reason =
                    format!("segment starts at sequence {}, expected {}", header.base_sequence, index.len());
                return Err(Error::corrupt(&path, 0, reason));
            }
            tail.offset = SEGMENT_HEADER_LEN as u64;
            return Ok(());
        }
        let map = segments.map(tail.position, file_len)?;
        let bytes = &map.bytes()[..file_len as usize];
        let visibility = index.visibility.clone();
        // The tail stops only between batches: a batch's tracking record comes after its
        // last event, and an index checkpoint or a verify that ended at the tail would
        // otherwise start or stop inside the batch. A batch is written whole before any of
        // its events is published, so its frames are all in the file by now.
        let mut inside_batch = false;
        while (index.len() < target || inside_batch || before_end(segments, tail, end))
            && tail.offset < file_len
        {
            let at = tail.offset;
            let frame = match LogFrame::decode(&bytes[at as usize..]) {
                Ok(frame) => frame,
                Err(None) => return Err(Error::corrupt(map.path(), at, "a published frame is cut short")),
                Err(Some(reason)) => return Err(Error::corrupt(map.path(), at, reason)),
            };
            let seq = frame.global_sequence();
            // A replica's sequences may jump ahead: the numbers skipped become holes.
            if frame.is_event() && seq > index.len() && self.is_replica() {
                index.skip_to(seq);
            }
            if seq != index.len() {
                let reason = format!("frame holds sequence {seq}, expected {}", index.len());
                return Err(Error::corrupt(map.path(), at, reason));
            }
            match &frame {
                LogFrame::Event(event) => {
                    let hidden = visibility.is_cancelled(seq)
                        || visibility.open_fence.is_some_and(|start| seq >= start);
                    index.insert(NewEntry::of_frame(event, tail.position, at, !hidden));
                    tail.last_timestamp_us = tail.last_timestamp_us.max(event.timestamp_us());
                }
                LogFrame::Tracking(tracking) => {
                    index.record_tracking(tracking, tail.position, at);
                    tail.last_timestamp_us = tail.last_timestamp_us.max(tracking.timestamp_us());
                }
            }
            tail.offset += frame.frame_len() as u64;
            inside_batch = frame.batch_index() + 1 < frame.batch_len();
        }
        Ok(())
    }
}

/// True while the tail is before `end` (a segment id and length; `None`: no end asked).
fn before_end(segments: &SegmentSet, tail: &FollowTail, end: Option<(u64, u64)>) -> bool {
    let Some((id, len)) = end else { return false };
    match segments.position_of(id) {
        Some(position) => (tail.position, tail.offset) < (position, len),
        // Not registered yet: the tail is in an earlier segment.
        None => true,
    }
}

/// Moves the index from its visibility to `next` (as another process saved it): a fence
/// the index saw open and `next` no longer has is published, or dropped when cancelled.
pub(super) fn adopt_visibility(index: &mut Index, next: Visibility) {
    if let Some(start) = index.visibility.open_fence {
        if next.open_fence != Some(start) {
            if next.is_cancelled(start) {
                index.drop_fence();
            } else {
                index.publish_fence();
            }
        }
    }
    index.visibility = next;
}
