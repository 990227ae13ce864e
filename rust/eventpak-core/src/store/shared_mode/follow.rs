//! Following the log: a process sharing the data dir brings its index up to what the
//! others published, reading their frames from the segment files.

use std::sync::atomic::Ordering;

use parking_lot::RwLockReadGuard;

use super::{FollowTail, SharedMode};
use crate::error::{Error, Result};
use crate::index::{Index, NewEntry};
use crate::segment::{
    decode_frame, segment_file_name, Decoded, SegmentHeader, SEGMENTS_DIR, SEGMENT_HEADER_LEN,
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
    pub(in crate::store) fn follow(&self, mode: &SharedMode) -> Result<()> {
        // The count is read before the visibility generation: a fence is recorded (and its
        // generation bumped) before its first frame is published, so frames counted here
        // are always judged with a visibility at least as new as theirs.
        let target = mode.coord.mem.published_seq();
        let generation = mode.coord.mem.visibility_gen();
        if mode.followed.load(Ordering::Acquire) >= target
            && mode.followed_gen.load(Ordering::Acquire) == generation
        {
            return Ok(());
        }
        let mut tail = mode.tail.lock();
        let mut index = self.shared.index.write();
        if tail.visibility_gen != generation {
            adopt_visibility(&mut index, Visibility::load(&self.shared.data_dir)?);
            tail.visibility_gen = generation;
        }
        while index.len() < target {
            self.follow_segment(&mut tail, &mut index, target)?;
        }
        mode.followed.store(index.len(), Ordering::Release);
        mode.followed_gen.store(tail.visibility_gen, Ordering::Release);
        Ok(())
    }

    /// Indexes published frames of the tail's segment, or moves the tail to the next
    /// segment when this one holds no more.
    fn follow_segment(&self, tail: &mut FollowTail, index: &mut Index, target: u64) -> Result<()> {
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
        while index.len() < target && tail.offset < file_len {
            let at = tail.offset;
            let frame = match decode_frame(&bytes[at as usize..]) {
                Decoded::Frame(frame) => frame,
                Decoded::Short => {
                    return Err(Error::corrupt(map.path(), at, "a published frame is cut short"))
                }
                Decoded::Bad(reason) => return Err(Error::corrupt(map.path(), at, reason)),
            };
            let seq = frame.global_sequence;
            if seq != index.len() {
                let reason = format!("frame holds sequence {seq}, expected {}", index.len());
                return Err(Error::corrupt(map.path(), at, reason));
            }
            let hidden =
                visibility.is_cancelled(seq) || visibility.open_fence.is_some_and(|start| seq >= start);
            index.insert(NewEntry::of_frame(&frame, tail.position, at, !hidden));
            tail.last_timestamp_us = tail.last_timestamp_us.max(frame.timestamp_us());
            tail.offset += frame.len as u64;
        }
        Ok(())
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
