//! The index checkpoint's hole section (version 4): where an entity's clock counts events
//! the log no longer holds. Compaction turns removed events into holes (entries without a
//! frame) while their entities keep counting them, so an entity's postings can hold a
//! hole's sequence at the clock of the event removed there. The entries alone cannot say
//! whose clock a hole was (a hole carries no names), so those postings are written out.
//!
//! ```text
//! | n u64 | n × (entity id u32, entity clock u64, sequence u64), by entity id, then clock
//! ```
//!
//! The section is read before the entries, so each entity's postings are rebuilt in clock
//! order as the entries arrive: a hole's posting is placed when its clock comes up, and it
//! must name a hole between the entity's neighbouring events.

use std::mem::size_of;

use super::checkpoint::{Reader, Writer};
use super::{EntityState, EntryMeta, Index};

/// A hole posting: entity id, entity clock, sequence.
const HOLE_POSTING_LEN: usize = size_of::<u32>() + 2 * size_of::<u64>();

/// Writes every entity posting that points at a hole.
pub(super) fn write_hole_postings(w: &mut Writer, index: &Index) {
    let mut postings = Vec::new();
    for (entity, state) in index.entities.iter().enumerate() {
        for (clock, &seq) in state.postings.iter().enumerate() {
            if index.entries[seq as usize].is_hole() {
                postings.push((entity as u32, clock as u64, seq));
            }
        }
    }
    w.u64(postings.len() as u64);
    for (entity, clock, seq) in postings {
        w.u32(entity);
        w.u64(clock);
        w.u64(seq);
    }
}

/// Hole postings read from a checkpoint, waiting for their place in their entity's
/// postings; per entity, in clock order.
#[derive(Default)]
pub(super) struct HolePostings {
    /// Per entity id: `(clock, sequence)` in clock order, and how many were placed.
    pending: Vec<(Vec<(u64, u64)>, usize)>,
}

impl HolePostings {
    /// Reads the section for a checkpoint of `entities` entities.
    pub(super) fn read(r: &mut Reader<'_>, entities: usize) -> Result<Self, String> {
        let mut pending = vec![(Vec::new(), 0); entities];
        let mut last: Option<(u32, u64)> = None;
        for _ in 0..r.count(true, HOLE_POSTING_LEN)? {
            let (entity, clock, seq) = (r.u32()?, r.u64()?, r.u64()?);
            if last.is_some_and(|l| l >= (entity, clock)) {
                return Err("hole postings out of order".into());
            }
            last = Some((entity, clock));
            let (list, _) = pending.get_mut(entity as usize).ok_or("hole posting of an unknown entity")?;
            list.push((clock, seq));
        }
        Ok(HolePostings { pending })
    }

    /// Places `entity`'s hole postings that come before clock `clock`, whose event is at
    /// `before` (`u64::MAX`: after the last entry). Each must be the next clock, name a hole
    /// of `entries` and lie after the entity's previous posting and before `before`.
    pub(super) fn place_before(
        &mut self,
        entity: u32,
        state: &mut EntityState,
        clock: u64,
        before: u64,
        entries: &[EntryMeta],
    ) -> Result<(), String> {
        let Some((list, placed)) = self.pending.get_mut(entity as usize) else { return Ok(()) };
        while let Some(&(hole_clock, seq)) = list.get(*placed).filter(|&&(c, _)| c < clock) {
            let after_previous = state.postings.last().is_none_or(|&p| p < seq);
            let is_hole = entries.get(seq as usize).is_some_and(EntryMeta::is_hole);
            if hole_clock != state.postings.len() as u64 || !after_previous || seq >= before || !is_hole {
                return Err("hole posting out of place".into());
            }
            state.postings.push(seq);
            *placed += 1;
        }
        Ok(())
    }

    /// Places every entity's remaining hole postings (its newest events were removed), once
    /// all entries are read.
    pub(super) fn place_rest(&mut self, index: &mut Index) -> Result<(), String> {
        for (entity, state) in index.entities.iter_mut().enumerate() {
            self.place_before(entity as u32, state, u64::MAX, u64::MAX, &index.entries)?;
        }
        Ok(())
    }
}
