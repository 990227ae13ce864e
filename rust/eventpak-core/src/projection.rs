//! Replay input of projections: the visible events of a target (one exact entity, or a
//! region) whose kind is relevant, in commit order. Filtering happens here, so irrelevant
//! events never reach Python.

use std::collections::BTreeSet;

use crate::index::Index;
use crate::region::{KindFilter, Region};

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
/// can match. A union is narrowed member by member.
pub(crate) fn narrowed(region: &Region, kinds: &BTreeSet<String>) -> Option<Region> {
    if kinds.is_empty() {
        return Some(region.clone());
    }
    if !region.any_of.is_empty() {
        let members: Vec<Region> = region.any_of.iter().filter_map(|m| narrowed(m, kinds)).collect();
        return Region::any_of(members).ok();
    }
    let keep: BTreeSet<String> = kinds.iter().filter(|k| region.kind_matches(k)).cloned().collect();
    if keep.is_empty() {
        return None;
    }
    Some(Region { kinds: KindFilter::Exact(keep), ..region.clone() })
}

impl Index {
    pub(crate) fn entity_replay_hits(
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
            let meta = &self.entries[**seq as usize];
            // A removed event's place in its entity's postings is a hole.
            !meta.is_hole() && (kinds.is_empty() || kinds.contains(&**self.kind_names.name(meta.kind)))
        };
        postings[start..].iter().filter(relevant).take(limit).copied().collect()
    }
}
