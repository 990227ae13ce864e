//! Replay input of projections: the visible events of a target (one exact entity, or a
//! region) whose kind is relevant, in commit order. Filtering happens here, so irrelevant
//! events never reach Python.

use std::collections::BTreeSet;

use crate::error::Result;
use crate::index::Index;
use crate::region::{KindFilter, Region};
use crate::store::Store;

/// What a projection folds over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayTarget {
    /// Exactly this entity (not its namespace).
    Entity(String),
    /// Every event of a region.
    Region(Region),
}

impl ReplayTarget {
    /// A stable name of the target, part of projection cache keys.
    pub fn identity(&self) -> String {
        match self {
            ReplayTarget::Entity(entity) => format!("entity-exact={entity}"),
            ReplayTarget::Region(region) => region.checkpoint_identity(),
        }
    }
}

/// The region's kind filter narrowed to `kinds` (empty: every kind); `None` when nothing
/// can match.
fn narrowed(region: &Region, kinds: &BTreeSet<String>) -> Option<Region> {
    if kinds.is_empty() {
        return Some(region.clone());
    }
    let keep: BTreeSet<String> = kinds.iter().filter(|k| region.kind_matches(k)).cloned().collect();
    if keep.is_empty() {
        return None;
    }
    Some(Region { kinds: KindFilter::Exact(keep), ..region.clone() })
}

impl Index {
    fn entity_replay_hits(
        &self,
        entity: &str,
        kinds: &BTreeSet<String>,
        after: Option<u64>,
        limit: usize,
    ) -> Vec<u64> {
        let Some(id) = self.entity_names.get(entity) else { return Vec::new() };
        let postings = &self.entities[id as usize].postings;
        let start = after.map_or(0, |a| postings.partition_point(|&s| s <= a));
        let relevant = |seq: &&u64| {
            kinds.is_empty() || kinds.contains(&**self.kind_names.name(self.entries[**seq as usize].kind))
        };
        postings[start..].iter().filter(relevant).take(limit).copied().collect()
    }
}

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
                    kinds.is_empty()
                        || kinds.contains(&**index.kind_names.name(index.entries[seq as usize].kind))
                })
            }),
            ReplayTarget::Region(_) => Ok(self.replay_hits(target, kinds, None, usize::MAX)?.last().copied()),
        }
    }
}
