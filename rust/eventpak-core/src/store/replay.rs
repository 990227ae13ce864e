//! Replay input of projections, answered from the index (see `crate::projection`).

use std::collections::BTreeSet;

use super::Store;
use crate::error::Result;
use crate::projection::{narrowed, ReplayTarget};

impl Store {
    /// Sequences of relevant events of `target` after `after`, at most `limit`.
    pub fn replay_hits(
        &self,
        target: &ReplayTarget,
        kinds: &BTreeSet<String>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<u64>> {
        match target {
            ReplayTarget::Entity(entity) => {
                self.with_index(|index| index.entity_replay_hits(entity, kinds, after, limit))
            }
            ReplayTarget::Region(region) => match narrowed(region, kinds) {
                Some(region) => {
                    let (position, started) = after.map_or((0, false), |a| (a, true));
                    self.query_hits_after(&region, position, started, limit)
                }
                None => Ok(Vec::new()),
            },
        }
    }

    /// The watermark of `target`: the sequence of its newest relevant event.
    pub fn replay_head(&self, target: &ReplayTarget, kinds: &BTreeSet<String>) -> Result<Option<u64>> {
        match target {
            ReplayTarget::Entity(entity) => self.with_index(|index| {
                let id = index.entity_names.get(entity)?;
                index.entities[id as usize].postings.iter().rev().copied().find(|&seq| {
                    let meta = &index.entries[seq as usize];
                    !meta.is_hole()
                        && (kinds.is_empty() || kinds.contains(&**index.kind_names.name(meta.kind)))
                })
            }),
            ReplayTarget::Region(region) => match narrowed(region, kinds) {
                Some(region) => self.with_index(|index| index.newest_hit(&region)),
                None => Ok(None),
            },
        }
    }
}
