//! Holes: global sequences a replica's log does not hold. A replica keeps its origin's
//! numbers, and what it applies (a region of the origin's log) skips some of them. A hole
//! is an index entry with no frame, never visible, so that per-sequence data stays a
//! vector by sequence and everything that skips invisible events skips holes too.

use super::{EntryMeta, Index};

/// The segment position of a hole's entry: it has no frame.
pub const HOLE_SEGMENT: u32 = u32::MAX;

impl EntryMeta {
    /// True for a sequence the log does not hold (a replica's skipped number).
    pub fn is_hole(&self) -> bool {
        self.segment == HOLE_SEGMENT
    }
}

/// A hole's entry: a sequence no frame holds (skipped by a replica, removed by compaction).
pub(super) const HOLE: EntryMeta = EntryMeta {
    segment: HOLE_SEGMENT,
    offset: 0,
    len: 0,
    entity: u32::MAX,
    scope: u32::MAX,
    kind: u32::MAX,
    entity_sequence: 0,
    visible: false,
};

impl Index {
    /// Marks every sequence from `self.len()` up to (not including) `seq` as a hole, so
    /// that the next event inserted takes `seq`.
    pub fn skip_to(&mut self, seq: u64) {
        // A hole repeats the newest id: ids stay sorted for the search in
        // `sequence_of_any`, which finds the first (real) one of equal ids.
        let id = self.last_event_id();
        while self.len() < seq {
            self.entries.push(HOLE);
            self.event_ids.push(id);
            self.holes += 1;
        }
    }

    /// Number of holes (sequences the log does not hold).
    pub fn holes(&self) -> u64 {
        self.holes
    }
}
