//! Removed events in the index. A removed event's sequence becomes a hole (an entry with no
//! frame, never visible, see `holes.rs`), so everything that skips invisible events skips
//! it. Its entity keeps counting it: position `n` of an entity's postings still holds clock
//! `n`, as a hole's sequence, so clocks, compare-and-set and chaining are unaffected.

use super::holes::HOLE;
use super::{EntityState, Index};
use crate::compaction::Compacted;

impl Index {
    /// Turns the events at `removed` (ascending, visible) into holes. Entity postings keep
    /// their sequences (now holes); scope, kind and tag postings drop them. Idempotency
    /// keys stay: a retry is answered from the compaction record.
    pub fn remove_events(&mut self, removed: &[u64]) {
        if removed.is_empty() {
            return;
        }
        // A bitmap of the removed sequences: the postings are filtered under the index write
        // lock, so each test must be cheap.
        let end = removed[removed.len() - 1] as usize + 1;
        let mut bits = vec![0u64; end.div_ceil(64)];
        for &seq in removed {
            bits[seq as usize / 64] |= 1 << (seq % 64);
        }
        let gone = |seq: &u64| (*seq as usize) < end && bits[*seq as usize / 64] >> (seq % 64) & 1 == 1;
        let (mut scopes, mut kinds) = (Vec::new(), Vec::new());
        for &seq in removed {
            let meta = std::mem::replace(&mut self.entries[seq as usize], HOLE);
            scopes.push(meta.scope);
            kinds.push(meta.kind);
            // A hole repeats the id before it, as a rebuild from the segments makes it; so do
            // the holes an earlier compaction left right after it, which repeated its id.
            let before = if seq == 0 { 0 } else { self.event_ids[seq as usize - 1] };
            let mut at = seq as usize;
            self.event_ids[at] = before;
            while at + 1 < self.entries.len() && self.entries[at + 1].is_hole() {
                at += 1;
                self.event_ids[at] = before;
            }
        }
        self.holes += removed.len() as u64;
        for ids in [&mut scopes, &mut kinds] {
            ids.sort_unstable();
            ids.dedup();
        }
        for scope in scopes {
            self.scope_postings[scope as usize].retain(|s| !gone(s));
        }
        for kind in kinds {
            self.kind_postings[kind as usize].retain(|s| !gone(s));
        }
        for postings in &mut self.tag_postings {
            postings.retain(|s| !gone(s));
        }
        // The causal indexes forget the removed events, as a rebuild from the segments
        // (which no longer hold their frames) would: their links to their causes, the links
        // of their effects to them, and their correlations.
        self.causal.effects.retain(|cause, seq| !gone(cause) && !gone(&seq));
        self.causal.correlated.retain(|_, seq| !gone(&seq));
    }

    /// Moves the frames of segment position `segment` (rewritten): `events` are `(seq, new
    /// offset)` of its kept events, `tracking` `(old offset, new offset)` of its records.
    pub fn move_frames(&mut self, segment: u32, events: &[(u64, u64)], tracking: &[(u64, u64)]) {
        for &(seq, offset) in events {
            self.entries[seq as usize].offset = offset;
        }
        for frame in self.tracking.frames.iter_mut().filter(|f| f.segment == segment) {
            if let Ok(i) = tracking.binary_search_by_key(&frame.offset, |&(old, _)| old) {
                frame.offset = tracking[i].1;
            }
        }
    }

    /// During a scan of a compacted log: the entity's events before clock `clock` that
    /// are missing were removed. Pads its postings with removed sequences before `before`
    /// (any will do: each is a hole). False when too few were removed there.
    pub fn pad_removed(&mut self, entity: &str, clock: u64, before: u64, compacted: &Compacted) -> bool {
        let id = self.intern_entity(entity) as usize;
        let state = &mut self.entities[id];
        let need = clock.saturating_sub(state.postings.len() as u64) as usize;
        let from = state.postings.last().map_or(0, |&last| last + 1);
        let holes: Vec<u64> = compacted.removed_seqs(from, before).take(need).collect();
        if holes.len() < need {
            return false;
        }
        state.postings.extend(holes);
        true
    }

    /// After a scan of a compacted log: entities whose newest events were removed take
    /// their clock and chain head from the record, and removed events' keys are known.
    pub fn restore_removed(&mut self, compacted: &Compacted) -> bool {
        for (entity, &(clock, hash)) in &compacted.heads {
            let known =
                self.entity_id(entity).map_or(0, |id| self.entities[id as usize].postings.len() as u64);
            if known > clock {
                continue; // a kept event follows the removed one
            }
            if !self.pad_removed(entity, clock + 1, self.len(), compacted) {
                return false;
            }
            let id = self.entity_id(entity).expect("padded above");
            self.entities[id as usize].last_hash = hash;
        }
        for (key, removed) in &compacted.keys {
            self.idempotency.insert(key.clone(), removed.seq);
        }
        true
    }

    /// True when every hole is a sequence that `compacted` records as removed.
    pub fn holes_within(&self, compacted: &Compacted) -> bool {
        let mut seq = 0;
        while seq < self.entries.len() {
            if !self.entries[seq].is_hole() {
                seq += 1;
                continue;
            }
            let end = seq + self.entries[seq..].iter().take_while(|m| m.is_hole()).count();
            if !compacted.covers(seq as u64, end as u64) {
                return false;
            }
            seq = end;
        }
        true
    }

    fn intern_entity(&mut self, entity: &str) -> u32 {
        let id = self.entity_names.intern(entity);
        if id as usize == self.entities.len() {
            self.entities.push(EntityState::default());
            self.entity_order.insert(self.entity_names.name(id).clone(), id);
        }
        id
    }
}
