//! The causal indexes: which events each event caused, and which events share a
//! correlation id. Both are kept in memory beside the other postings, rebuilt at open and
//! carried by the index checkpoint, so `effects`, `descendants` and `correlated` never
//! scan the log.
//!
//! Most events have no cause and their own id as correlation, and cost nothing here. A
//! posting list that holds one sequence (the common case: a cause with one effect) is
//! stored inline in the map's value; only longer lists get a vector of their own.

use std::collections::HashMap;

/// Marks a packed value that points into the overflow lists instead of holding a sequence.
const SPILLED: u64 = 1 << 63;

/// Sequence lists keyed by `K`, packed so that a one-element list costs no allocation.
#[derive(Debug)]
pub(crate) struct PackedPostings<K> {
    heads: HashMap<K, u64>,
    spilled: Vec<Vec<u64>>,
}

impl<K> Default for PackedPostings<K> {
    fn default() -> Self {
        PackedPostings { heads: HashMap::new(), spilled: Vec::new() }
    }
}

impl<K: std::hash::Hash + Eq + Copy> PackedPostings<K> {
    /// Appends `seq` to the list of `key`; sequences arrive in commit order.
    pub(crate) fn push(&mut self, key: K, seq: u64) {
        match self.heads.get_mut(&key) {
            None => {
                self.heads.insert(key, seq);
            }
            Some(packed) if *packed & SPILLED != 0 => {
                self.spilled[(*packed & !SPILLED) as usize].push(seq);
            }
            Some(packed) => {
                let slot = self.spilled.len() as u64;
                self.spilled.push(vec![*packed, seq]);
                *packed = slot | SPILLED;
            }
        }
    }

    /// The list of `key`, ascending.
    pub(crate) fn get(&self, key: &K) -> &[u64] {
        match self.heads.get(key) {
            None => &[],
            Some(packed) if packed & SPILLED != 0 => &self.spilled[(packed & !SPILLED) as usize],
            Some(packed) => std::slice::from_ref(packed),
        }
    }

    /// Keeps only the pairs `keep` accepts; a key left with no sequence is dropped.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, u64) -> bool) {
        let spilled = &mut self.spilled;
        self.heads.retain(|key, packed| {
            if *packed & SPILLED == 0 {
                return keep(key, *packed);
            }
            let list = &mut spilled[(*packed & !SPILLED) as usize];
            list.retain(|&seq| keep(key, seq));
            !list.is_empty()
        });
    }

    /// Every (key, sequence) pair, in no particular order.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (K, u64)> + '_ {
        self.heads.iter().flat_map(move |(&key, _)| self.get(&key).iter().map(move |&seq| (key, seq)))
    }
}

/// Causes and correlations, by sequence.
#[derive(Debug, Default)]
pub(crate) struct CausalIndex {
    /// Cause sequence → sequences of its direct effects.
    pub(crate) effects: PackedPostings<u64>,
    /// Correlation id → sequences of the events carrying it, except an event whose
    /// correlation is its own id (flagged in its entry instead, see `EntryMeta::own_correlation`).
    pub(crate) correlated: PackedPostings<u128>,
}

impl CausalIndex {
    /// Records that `seq` was caused by the event at `cause`.
    pub(crate) fn link(&mut self, seq: u64, cause: u64) {
        self.effects.push(cause, seq);
    }

    /// (effect, cause) pairs sorted by effect, as the index checkpoint stores them.
    pub(crate) fn links(&self) -> Vec<(u64, u64)> {
        let mut pairs: Vec<(u64, u64)> = self.effects.pairs().map(|(cause, seq)| (seq, cause)).collect();
        pairs.sort_unstable();
        pairs
    }

    /// (event, correlation) pairs sorted by event, as the index checkpoint stores them.
    pub(crate) fn correlations(&self) -> Vec<(u64, u128)> {
        let mut pairs: Vec<(u64, u128)> = self.correlated.pairs().map(|(c, seq)| (seq, c)).collect();
        pairs.sort_unstable();
        pairs
    }

    /// Records that `seq` carries `correlation`, which is not its own id.
    pub(crate) fn correlate(&mut self, seq: u64, correlation: u128) {
        self.correlated.push(correlation, seq);
    }
}

impl super::Index {
    /// Indexes the cause and correlation of the event at `seq` (already in `event_ids`).
    /// Only a cause that is an earlier event of this store is linked: causes precede
    /// their effects, and a cause in another store has no entry here.
    pub(crate) fn link_causal(&mut self, seq: u64, causation_id: Option<[u8; 16]>, correlation_id: [u8; 16]) {
        let (cause, correlation) = self.causal_entries(seq, causation_id, correlation_id);
        if let Some(cause) = cause {
            self.causal.link(seq, cause);
        }
        if let Some(correlation) = correlation {
            self.causal.correlate(seq, correlation);
        }
    }

    /// What the causal indexes hold for the event at `seq`: the sequence of its cause when
    /// that is an earlier event of this store, and its correlation when that is not its own
    /// id. Both indexing and `verify` go by this one rule.
    fn causal_entries(
        &self,
        seq: u64,
        causation_id: Option<[u8; 16]>,
        correlation_id: [u8; 16],
    ) -> (Option<u64>, Option<u128>) {
        // The first of equal ids, as `sequence_of_any` finds it: a hole left by a compaction
        // repeats the id before it, and must not pass for that event.
        let cause = causation_id
            .and_then(|c| self.sequence_of_any(&c))
            .filter(|&cause| cause < seq && !self.entries[cause as usize].is_hole());
        let correlation = u128::from_be_bytes(correlation_id);
        let own = correlation == self.event_ids[seq as usize];
        (cause, (!own).then_some(correlation))
    }

    fn is_visible(&self, seq: u64) -> bool {
        self.entries.get(seq as usize).is_some_and(|m| m.visible)
    }

    /// Visible direct effects of the event at `seq`, in commit order.
    pub fn effects_of(&self, seq: u64) -> Vec<u64> {
        self.causal.effects.get(&seq).iter().copied().filter(|&s| self.is_visible(s)).collect()
    }

    /// Visible transitive effects of the event at `seq`, breadth first (level by level,
    /// parent by parent, each parent's effects in commit order), at most `max_depth` levels
    /// down; `seq` itself is not included.
    pub fn descendants_of(&self, seq: u64, max_depth: Option<u64>) -> Vec<u64> {
        let mut out = Vec::new();
        let mut level = vec![seq];
        let mut depth = 0u64;
        while !level.is_empty() && max_depth.is_none_or(|max| depth < max) {
            let mut next = Vec::new();
            for cause in level {
                // Hidden effects are left out, and so is what only they caused: a hidden
                // event is not in the graph at all.
                next.extend(self.effects_of(cause));
            }
            out.extend_from_slice(&next);
            level = next;
            depth += 1;
        }
        out
    }

    /// Visible events carrying `correlation`, in commit order, strictly after `after`,
    /// at most `limit`. `root` is the sequence of the event whose own id is `correlation`
    /// when that event kept its default correlation (its own id).
    pub fn correlated_with(
        &self,
        correlation: u128,
        root: Option<u64>,
        after: Option<u64>,
        limit: usize,
    ) -> Vec<u64> {
        let list = self.causal.correlated.get(&correlation);
        let root = root.filter(|&r| after.is_none_or(|a| r > a));
        let start = after.map_or(0, |a| list.partition_point(|&s| s <= a));
        let mut rest = list[start..].iter().copied().peekable();
        let mut out = Vec::new();
        let mut root = root.into_iter().peekable();
        while out.len() < limit {
            // Merge the root (one sequence) into the sorted list.
            let seq = match (root.peek(), rest.peek()) {
                (Some(&r), Some(&s)) if r < s => root.next(),
                (Some(_), None) => root.next(),
                (_, Some(_)) => rest.next(),
                (None, None) => None,
            };
            let Some(seq) = seq else { break };
            if self.is_visible(seq) {
                out.push(seq);
            }
        }
        out
    }

    /// True when the causal indexes hold what the frame at `seq` says: its link to a cause
    /// that is an earlier event here, and its correlation when that is not its own id.
    pub(crate) fn causal_agrees(
        &self,
        seq: u64,
        causation_id: Option<[u8; 16]>,
        correlation_id: [u8; 16],
    ) -> bool {
        let (cause, correlation) = self.causal_entries(seq, causation_id, correlation_id);
        let linked = cause.is_none_or(|c| self.causal.effects.get(&c).binary_search(&seq).is_ok());
        linked && correlation.is_none_or(|c| self.causal.correlated.get(&c).binary_search(&seq).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_postings_stay_inline_and_spill_when_they_grow() {
        let mut p = PackedPostings::<u64>::default();
        p.push(7, 10);
        assert_eq!(p.get(&7), &[10]);
        assert!(p.spilled.is_empty());
        p.push(7, 12);
        p.push(7, 15);
        p.push(8, 13);
        assert_eq!(p.get(&7), &[10, 12, 15]);
        assert_eq!(p.get(&8), &[13]);
        assert_eq!(p.get(&9), &[] as &[u64]);
    }
}
