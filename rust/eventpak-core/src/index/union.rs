//! Unions of regions: each member is answered from its own postings, and the members'
//! ascending hit lists are merged, an event matched by several members delivered once.
//! Members are read in chunks, so a scan that stops early (a limit, a condition's first
//! match) reads little of each.

use super::Index;
use crate::region::Region;

/// Hits read from a member at a time, after a first chunk sized by the caller's limit.
const CHUNK: usize = 1024;

/// One member's hits, read ahead a chunk at a time.
struct Member<'r> {
    region: &'r Region,
    hits: Vec<u64>,
    at: usize,
    position: u64,
    started: bool,
    exhausted: bool,
}

impl Member<'_> {
    fn head(&mut self, index: &Index, chunk: usize) -> Option<u64> {
        if self.at == self.hits.len() && !self.exhausted {
            self.hits = index.query_hits_after(self.region, self.position, self.started, chunk);
            self.at = 0;
            self.exhausted = self.hits.len() < chunk;
            if let Some(&last) = self.hits.last() {
                (self.position, self.started) = (last, true);
            }
        }
        self.hits.get(self.at).copied()
    }
}

impl Index {
    /// Calls `visit` with every sequence matched by any of `members` after a cursor
    /// position, in commit order, each once, until it returns false. `first_chunk` bounds
    /// what is read ahead of each member before the first hit is visited.
    pub(super) fn visit_union(
        &self,
        members: &[Region],
        (position, started): (u64, bool),
        first_chunk: usize,
        visit: &mut dyn FnMut(u64) -> bool,
    ) {
        let mut members: Vec<Member<'_>> = members
            .iter()
            .map(|region| Member { region, hits: Vec::new(), at: 0, position, started, exhausted: false })
            .collect();
        let mut chunk = first_chunk.clamp(1, CHUNK);
        loop {
            let heads: Vec<Option<u64>> = members.iter_mut().map(|m| m.head(self, chunk)).collect();
            let Some(next) = heads.iter().flatten().min().copied() else { return };
            if !visit(next) {
                return;
            }
            for (member, head) in members.iter_mut().zip(heads) {
                if head == Some(next) {
                    member.at += 1;
                }
            }
            chunk = CHUNK;
        }
    }
}
