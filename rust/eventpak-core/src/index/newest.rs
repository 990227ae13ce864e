//! `newest_hit`: the last event a region matches, found from the end of its cheapest
//! postings, so a projection's watermark costs what the region's newest events cost, not a
//! walk of everything it ever matched.

use std::collections::BinaryHeap;

use super::Index;
use crate::region::Region;

impl Index {
    /// The global sequence of the newest visible event matching `region`: the last of
    /// [`Index::query_hits_after`] from the start of the log, without reading the others.
    pub fn newest_hit(&self, region: &Region) -> Option<u64> {
        if !region.any_of.is_empty() {
            return region.any_of.iter().filter_map(|member| self.newest_hit(member)).max();
        }
        let scan = self.plan_scan(region, 0)?;
        let accepts = |seq: u64| {
            scan.filter.accepts(&self.entries[seq as usize])
                && scan.tags.iter().all(|list| list.binary_search(&seq).is_ok())
        };
        match &scan.driver {
            None => (0..self.len()).rev().find(|&seq| accepts(seq)),
            Some(lists) => newest_of(lists, accepts),
        }
    }
}

/// The greatest value of disjoint sorted `lists` that `accepts`, walking them from the end.
fn newest_of(lists: &[&[u64]], accepts: impl Fn(u64) -> bool) -> Option<u64> {
    if let [only] = lists {
        return only.iter().rev().copied().find(|&seq| accepts(seq));
    }
    // (value, list, position): the max-heap always yields the greatest value left.
    let mut heap: BinaryHeap<(u64, usize, usize)> = lists
        .iter()
        .enumerate()
        .filter_map(|(i, list)| list.last().map(|&seq| (seq, i, list.len() - 1)))
        .collect();
    while let Some((seq, list, pos)) = heap.pop() {
        if accepts(seq) {
            return Some(seq);
        }
        if let Some(prev) = pos.checked_sub(1) {
            heap.push((lists[list][prev], list, prev));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::NewEntry;
    use super::*;

    const ENTITIES: [&str; 4] = ["a", "a:1", "a:2", "b"];
    const SCOPES: [&str; 2] = ["eu", "us"];
    const KINDS: [&str; 3] = ["open", "order.paid", "order.sent"];
    const TAGS: [&str; 2] = ["red", "blue"];

    /// An event as the strategy draws it: entity, scope, kind, tag bits, visible.
    type Drawn = (usize, usize, usize, u8, bool);

    fn index_of(events: &[Drawn]) -> Index {
        let mut index = Index::default();
        let mut clocks = [0u64; ENTITIES.len()];
        for (i, &(entity, scope, kind, tag_bits, visible)) in events.iter().enumerate() {
            let tags: Vec<&str> =
                TAGS.iter().enumerate().filter(|(b, _)| tag_bits >> b & 1 == 1).map(|(_, t)| *t).collect();
            index.insert(NewEntry {
                segment: 0,
                offset: i as u64,
                len: 1,
                event_id: (i as u128 + 1).to_be_bytes(),
                entity: ENTITIES[entity],
                scope: SCOPES[scope],
                kind: KINDS[kind],
                entity_sequence: clocks[entity],
                hash: [0; 32],
                idempotency_key: None,
                causation_id: None,
                correlation_id: (i as u128 + 1).to_be_bytes(),
                visible,
                tags,
            });
            clocks[entity] += 1;
        }
        index
    }

    /// Drawn filter choices: entity, exact, scope, kind, tag, clock (`None`: no such filter).
    type Choice = (Option<usize>, bool, Option<usize>, Option<usize>, Option<usize>, Option<(u64, u64)>);

    /// A plain region from drawn filter choices.
    fn region_of(choice: Choice) -> Region {
        let (entity, exact, scope, kind, tag, clock) = choice;
        let mut region = Region::all();
        if let Some(e) = entity {
            let name = ["a", "a:1", "b", "c"][e];
            region = if exact { region.with_exact_entity(name) } else { region.with_entity(name) }.unwrap();
        }
        if let Some(s) = scope {
            region = region.with_scope(["eu", "us", "asia"][s]).unwrap();
        }
        match kind {
            Some(0) => region = region.with_kinds(&["open"]).unwrap(),
            Some(1) => region = region.with_kinds(&["open", "order.sent"]).unwrap(),
            Some(_) => region = region.with_kind_prefix("order.").unwrap(),
            None => {}
        }
        if let Some(t) = tag {
            region = region.with_tags(&[["red", "blue", "green"][t]]).unwrap();
        }
        if let Some((lo, span)) = clock {
            region = region.with_clock_range(lo, lo + span).unwrap();
        }
        region
    }

    fn plain() -> impl Strategy<Value = Region> {
        (
            proptest::option::of(0..4usize),
            any::<bool>(),
            proptest::option::of(0..3usize),
            proptest::option::of(0..3usize),
            proptest::option::of(0..3usize),
            proptest::option::of((0..6u64, 0..4u64)),
        )
            .prop_map(region_of)
    }

    proptest! {
        /// The newest hit is the last of the forward scan, for plain regions and unions,
        /// with hidden events, tags and clock ranges in play.
        #[test]
        fn newest_hit_is_the_last_forward_hit(
            events in proptest::collection::vec((0..4usize, 0..2usize, 0..3usize, 0..4u8, proptest::bool::weighted(0.8)), 0..60),
            regions in proptest::collection::vec(plain(), 1..4),
        ) {
            let index = index_of(&events);
            let region = if regions.len() == 1 { regions[0].clone() } else { Region::any_of(regions).unwrap() };
            let forward = index.query_hits_after(&region, 0, false, usize::MAX);
            prop_assert_eq!(index.newest_hit(&region), forward.last().copied());
        }
    }
}
