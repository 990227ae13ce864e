//! Tracking records in the index: the newest position per name, and where every tracking
//! frame lies (the index checkpoint lists them, so its frames-back-to-back check still
//! covers every byte of the log it vouches for).

use super::Interner;

/// One tracking frame of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackedFrame {
    /// Position of its segment in the store's segment list.
    pub segment: u32,
    /// Byte offset of the frame.
    pub offset: u64,
    /// Frame length.
    pub len: u32,
    /// Interned tracking name.
    pub name: u32,
    /// The position it records.
    pub position: u64,
    /// The global sequence in its header: the number of events before it.
    pub sequence: u64,
}

/// Every tracking record of the log, and the newest position of each name.
#[derive(Debug, Default)]
pub struct TrackingIndex {
    pub(crate) names: Interner,
    /// The highest position recorded, by name id.
    pub(crate) positions: Vec<u64>,
    /// Every tracking frame, in log order.
    pub(crate) frames: Vec<TrackedFrame>,
}

impl TrackingIndex {
    /// The position recorded for `name`, if any.
    pub fn position(&self, name: &str) -> Option<u64> {
        self.names.get(name).map(|id| self.positions[id as usize])
    }

    /// Adds a tracking frame found at `(segment, offset)`. A frame at or before the last
    /// one added is already known (a shared-mode follower may read a frame that recovery
    /// indexed) and is left out.
    pub fn record(&mut self, name: &str, position: u64, place: (u32, u64, u32), sequence: u64) {
        let (segment, offset, len) = place;
        if self.frames.last().is_some_and(|last| (last.segment, last.offset) >= (segment, offset)) {
            return;
        }
        let id = self.names.intern(name);
        if id as usize == self.positions.len() {
            self.positions.push(position);
        }
        let recorded = &mut self.positions[id as usize];
        *recorded = (*recorded).max(position);
        self.frames.push(TrackedFrame { segment, offset, len, name: id, position, sequence });
    }

    /// Every tracking frame, in log order.
    pub fn frames(&self) -> &[TrackedFrame] {
        &self.frames
    }

    /// The tracking name with id `id`.
    pub fn name(&self, id: u32) -> &str {
        self.names.name(id)
    }

    /// The tracking frame at `(segment, offset)`, if there is one.
    pub fn frame_at(&self, segment: u32, offset: u64) -> Option<&TrackedFrame> {
        let i = self.frames.binary_search_by(|f| (f.segment, f.offset).cmp(&(segment, offset))).ok()?;
        Some(&self.frames[i])
    }

    /// Number of tracking frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when the log holds no tracking record.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_only_move_forward_and_frames_are_added_once() {
        let mut t = TrackingIndex::default();
        assert_eq!(t.position("a"), None);
        t.record("a", 5, (0, 40, 40), 3);
        t.record("b", 1, (0, 80, 40), 3);
        t.record("a", 5, (0, 80, 40), 3); // already known: left out
        t.record("a", 9, (1, 40, 40), 7);
        assert_eq!((t.position("a"), t.position("b"), t.len()), (Some(9), Some(1), 3));
        assert_eq!(t.frame_at(0, 80).map(|f| f.position), Some(1));
        assert!(t.frame_at(0, 41).is_none());
    }
}
