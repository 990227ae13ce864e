//! `query_hits_after`: the sequences a region matches, driven by the smallest postings.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Bound::{Excluded, Included, Unbounded};

use super::tag_filter::TagCheck;
use super::{EntryMeta, Index};
use crate::region::{KindFilter, Region};

/// A region's filters resolved to interned ids, checked per candidate entry.
pub(super) struct IdFilter {
    entities: Option<IdSet>,
    scope: Option<u32>,
    kinds: Option<IdSet>,
    clock: Option<(u64, u64)>,
}

impl IdFilter {
    pub(super) fn accepts(&self, m: &EntryMeta) -> bool {
        m.visible
            && self.entities.as_ref().is_none_or(|set| set.contains(m.entity))
            && self.scope.is_none_or(|s| s == m.scope)
            && self.kinds.as_ref().is_none_or(|set| set.contains(m.kind))
            && self.clock.is_none_or(|(lo, hi)| lo <= m.entity_sequence && m.entity_sequence <= hi)
    }
}

/// The interned ids a filter accepts. Built per query, cursor poll and append condition,
/// so its cost follows the ids it holds, never how many names the store has interned (a
/// table of every entity cost a million-entity store 30 us per one-entity query).
enum IdSet {
    /// A few ids (an exact entity, a handful of kinds): compared one by one.
    Few(Vec<u32>),
    /// More (a namespace's entities): sorted, searched by halves.
    Sorted(Vec<u32>),
}

/// Up to this many ids are compared one by one.
const FEW_IDS: usize = 16;

impl IdSet {
    fn new(mut ids: Vec<u32>) -> IdSet {
        if ids.len() <= FEW_IDS {
            return IdSet::Few(ids);
        }
        ids.sort_unstable();
        ids.dedup();
        IdSet::Sorted(ids)
    }

    fn contains(&self, id: u32) -> bool {
        match self {
            IdSet::Few(ids) => ids.contains(&id),
            IdSet::Sorted(ids) => ids.binary_search(&id).is_ok(),
        }
    }
}

fn after(list: &[u64], from: u64) -> &[u64] {
    &list[list.partition_point(|&s| s < from)..]
}

impl Index {
    /// Entity ids in the namespace of `prefix`: the entity itself and `prefix:*`.
    fn entities_under(&self, prefix: &str) -> Vec<u32> {
        let mut ids: Vec<u32> = self.entity_names.get(prefix).into_iter().collect();
        let lo = format!("{prefix}:");
        let hi = format!("{prefix};"); // ';' is the byte after ':'
        ids.extend(
            self.entity_order
                .range::<str, _>((Included(lo.as_str()), Excluded(hi.as_str())))
                .map(|(_, &id)| id),
        );
        ids
    }

    fn kinds_of(&self, filter: &KindFilter) -> Option<Vec<u32>> {
        match filter {
            KindFilter::Any => None,
            KindFilter::Exact(set) => Some(set.iter().filter_map(|k| self.kind_names.get(k)).collect()),
            KindFilter::Prefix(prefix) => Some(
                self.kind_order
                    .range::<str, _>((Included(prefix.as_str()), Unbounded))
                    .take_while(|(name, _)| name.starts_with(prefix.as_str()))
                    .map(|(_, &id)| id)
                    .collect(),
            ),
        }
    }

    /// Global sequences of events matching `region`, in commit order, at most `limit`.
    ///
    /// The scan starts after `position` once a cursor has `started`, at `position` itself
    /// before that (so sequence 0 is reachable). Cost follows the smallest postings list
    /// among the region's entity, scope, kind and tag filters, not the size of the log; a
    /// union costs what its members cost.
    pub fn query_hits_after(&self, region: &Region, position: u64, started: bool, limit: usize) -> Vec<u64> {
        let mut hits = Vec::new();
        if limit > 0 {
            let mut take = |seq| {
                hits.push(seq);
                hits.len() < limit
            };
            if region.any_of.is_empty() {
                self.visit_plain(region, position, started, &mut take);
            } else {
                self.visit_union(&region.any_of, (position, started), limit, &mut take);
            }
        }
        hits
    }

    /// Calls `visit` with the global sequence of every event matching `region` after a
    /// cursor position (as [`Index::query_hits_after`] finds them), in commit order, until
    /// it returns false. Counting a region's backlog this way allocates nothing per event
    /// (a union reads its members a chunk at a time).
    pub fn visit_hits_after(
        &self,
        region: &Region,
        position: u64,
        started: bool,
        mut visit: impl FnMut(u64) -> bool,
    ) {
        if region.any_of.is_empty() {
            self.visit_plain(region, position, started, &mut visit);
        } else {
            self.visit_union(&region.any_of, (position, started), usize::MAX, &mut visit);
        }
    }

    /// [`Index::visit_hits_after`] for a region that is not a union.
    fn visit_plain(&self, region: &Region, position: u64, started: bool, visit: &mut dyn FnMut(u64) -> bool) {
        let from = if started { position.saturating_add(1) } else { position };
        let Some(scan) = self.plan_scan(region, from) else { return };
        let mut tags = TagCheck::new(scan.tags);
        let filter = scan.filter;
        let mut take =
            |seq: u64| !filter.accepts(&self.entries[seq as usize]) || !tags.accepts(seq) || visit(seq);
        match scan.driver {
            None => {
                for seq in from..self.len() {
                    if !take(seq) {
                        break;
                    }
                }
            }
            Some(lists) => merge_lists(&lists, &mut take),
        }
    }

    /// How to scan a plain region from sequence `from` on; `None` when it can match nothing
    /// there (a name it filters on was never written, or `from` is past the log).
    pub(super) fn plan_scan(&self, region: &Region, from: u64) -> Option<Scan<'_>> {
        if from >= self.len() {
            return None;
        }
        let entity_ids = match &region.entity {
            // An exact entity is one name lookup, never a walk of its namespace.
            Some(name) if region.entity_exact => Some(vec![self.entity_names.get(name)?]),
            Some(prefix) => Some(self.entities_under(prefix)),
            None => None,
        };
        let scope_id = match region.scope.as_deref() {
            Some(scope) => Some(self.scope_names.get(scope)?),
            None => None,
        };
        let kind_ids = self.kinds_of(&region.kinds);
        let mut tags = Vec::with_capacity(region.tags.len());
        for tag in &region.tags {
            tags.push(after(&self.tag_postings[self.tag_names.get(tag)? as usize], from));
        }

        // Candidate lists, one set per filter; the cheapest set drives the scan.
        let mut plans: Vec<Vec<&[u64]>> = Vec::new();
        if let Some(ids) = &entity_ids {
            plans.push(
                ids.iter()
                    .map(|&id| {
                        let postings = &self.entities[id as usize].postings[..];
                        let clipped = match region.clock {
                            // Position n of an entity's postings holds clock n.
                            Some((lo, hi)) => {
                                let end = (hi.saturating_add(1)).min(postings.len() as u64) as usize;
                                postings.get(lo.min(end as u64) as usize..end).unwrap_or(&[])
                            }
                            None => postings,
                        };
                        after(clipped, from)
                    })
                    .collect(),
            );
        }
        if let Some(id) = scope_id {
            plans.push(vec![after(&self.scope_postings[id as usize], from)]);
        }
        if let Some(ids) = &kind_ids {
            plans.push(ids.iter().map(|&id| after(&self.kind_postings[id as usize], from)).collect());
        }
        plans.extend(tags.iter().map(|&list| vec![list]));
        let filter = IdFilter {
            entities: entity_ids.map(IdSet::new),
            scope: scope_id,
            kinds: kind_ids.map(IdSet::new),
            clock: region.clock,
        };
        let cost = |plan: &Vec<&[u64]>| plan.iter().map(|l| l.len()).sum::<usize>();
        let driver = plans.into_iter().min_by_key(cost);
        Some(Scan { driver, filter, tags })
    }
}

/// A plain region's scan from some sequence on: the candidate lists that drive it (every
/// sequence when `None`) and the checks each candidate must pass.
pub(super) struct Scan<'i> {
    /// Disjoint sorted lists whose union holds every match (the region's cheapest filter).
    pub(super) driver: Option<Vec<&'i [u64]>>,
    /// Visibility, entity, scope, kind and clock, per entry.
    pub(super) filter: IdFilter,
    /// The postings of each required tag.
    pub(super) tags: Vec<&'i [u64]>,
}

/// Walks disjoint sorted lists in ascending order until `visit` returns false.
fn merge_lists(lists: &[&[u64]], visit: &mut impl FnMut(u64) -> bool) {
    let mut live = lists.iter().filter(|l| !l.is_empty());
    match (live.next(), live.next()) {
        (None, _) => {}
        (Some(only), None) => {
            for &seq in only.iter() {
                if !visit(seq) {
                    return;
                }
            }
        }
        _ => {
            let mut heap: BinaryHeap<Reverse<(u64, usize, usize)>> = lists
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.is_empty())
                .map(|(i, l)| Reverse((l[0], i, 0)))
                .collect();
            while let Some(Reverse((seq, list, pos))) = heap.pop() {
                if !visit(seq) {
                    return;
                }
                if let Some(&next) = lists[list].get(pos + 1) {
                    heap.push(Reverse((next, list, pos + 1)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::NewEntry;
    use super::*;

    fn index_of(entities: &[&str]) -> Index {
        let mut index = Index::default();
        for (i, entity) in entities.iter().enumerate() {
            index.insert(NewEntry {
                segment: 0,
                offset: i as u64,
                len: 1,
                event_id: (i as u128 + 1).to_be_bytes(),
                entity,
                scope: "s",
                kind: "k",
                entity_sequence: 0,
                hash: [0; 32],
                idempotency_key: None,
                causation_id: None,
                correlation_id: (i as u128 + 1).to_be_bytes(),
                visible: true,
                tags: if i % 2 == 0 { vec!["even", "all"] } else { vec!["all"] },
            });
        }
        index
    }

    #[test]
    fn exact_entity_skips_its_namespace() {
        let index = index_of(&["alice:x", "alice", "alice2", "bob"]);
        let exact = Region::all().with_exact_entity("alice").unwrap();
        assert_eq!(index.query_hits_after(&exact, 0, false, 10), vec![1]);
        let namespace = Region::all().with_entity("alice").unwrap();
        assert_eq!(index.query_hits_after(&namespace, 0, false, 10), vec![0, 1]);
        let missing = Region::all().with_exact_entity("carol").unwrap();
        assert!(index.query_hits_after(&missing, 0, false, 10).is_empty());
    }

    #[test]
    fn a_namespace_of_many_entities_filters_by_a_sorted_id_set() {
        // More entities than are compared one by one, interned out of order, between others.
        let mut names: Vec<String> = (0..40).map(|i| format!("acct:{}", 39 - i)).collect();
        names.extend((0..40).map(|i| format!("other:{i}")));
        names.insert(10, "acct".to_owned());
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let index = index_of(&refs);
        let expected: Vec<u64> =
            (0..refs.len() as u64).filter(|&i| refs[i as usize].starts_with("acct")).collect();
        let namespace = Region::all().with_entity("acct").unwrap();
        assert_eq!(index.query_hits_after(&namespace, 0, false, 1000), expected);
        // With a tag driving the scan, the entity set is what filters.
        let even = namespace.with_tags(&["even"]).unwrap();
        let expected_even: Vec<u64> = expected.iter().copied().filter(|i| i % 2 == 0).collect();
        assert_eq!(index.query_hits_after(&even, 0, false, 1000), expected_even);
    }

    #[test]
    fn tags_and_unions() {
        let index = index_of(&["a", "b", "a", "b", "c"]);
        let even = Region::all().with_tags(&["even"]).unwrap();
        assert_eq!(index.query_hits_after(&even, 0, false, 10), vec![0, 2, 4]);
        let both = even.clone().with_tags(&["all"]).unwrap();
        assert_eq!(index.query_hits_after(&both, 0, true, 10), vec![2, 4]);
        let b_even = even.clone().with_exact_entity("b").unwrap();
        assert!(index.query_hits_after(&b_even, 0, false, 10).is_empty());
        let unknown = Region::all().with_tags(&["none"]).unwrap();
        assert!(index.query_hits_after(&unknown, 0, false, 10).is_empty());
        let b = Region::all().with_exact_entity("b").unwrap();
        let union = Region::any_of([even, b]).unwrap();
        assert_eq!(index.query_hits_after(&union, 0, false, 10), vec![0, 1, 2, 3, 4]);
        assert_eq!(index.query_hits_after(&union, 1, true, 2), vec![2, 3]);
        let mut seen = Vec::new();
        index.visit_hits_after(&union, 2, true, |seq| {
            seen.push(seq);
            true
        });
        assert_eq!(seen, [3, 4]);
    }
}
