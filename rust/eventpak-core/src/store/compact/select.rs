//! Which events a compaction removes: the retention rules (age, kinds, each entity's newest
//! kept) or a caller's predicate, over the visible events of the sealed segments.

use std::collections::{BTreeSet, HashMap};

use crate::error::Result;
use crate::index::EntryMeta;
use crate::segment::reader::MappedSegment;
use crate::segment::{SegmentSet, StoredEvent};

/// The retention rules of a compaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Events older than this (now − timestamp, at the start) are selected; `None`: any age.
    pub max_age_us: Option<u64>,
    /// Only events of these kinds are selected; `None`: every kind.
    pub kinds: Option<BTreeSet<String>>,
    /// Each entity's newest this many events among those the rules select stay (counted
    /// over the whole store, the active segment included).
    pub keep_last_per_entity: u64,
}

/// What selects the events to remove.
pub enum Selection<'a> {
    /// The retention rules.
    Rules(Retention),
    /// `true`: remove the event; `None`: stop the compaction (the caller's callback failed).
    Predicate(&'a mut (dyn FnMut(&StoredEvent) -> Option<bool> + Send)),
}

/// The index entries a compaction looks at: every event up to the head at its start.
pub(super) struct Snapshot {
    pub entries: Vec<EntryMeta>,
    /// Interned ids of the kinds the rules name (`None`: every kind).
    pub kind_ids: Option<Vec<bool>>,
    /// Segment positions that are sealed (examined).
    pub sealed: Vec<bool>,
}

/// Reads events one mapping at a time.
struct Reader<'a> {
    segments: &'a SegmentSet,
    mapped: Option<(u32, MappedSegment)>,
}

impl Reader<'_> {
    fn event(&mut self, seq: u64, meta: &EntryMeta) -> Result<StoredEvent> {
        let end = meta.offset + meta.len as u64;
        if !matches!(&self.mapped, Some((seg, m)) if *seg == meta.segment && m.covers(end)) {
            self.mapped = Some((meta.segment, self.segments.map(meta.segment, end)?));
        }
        let (_, map) = self.mapped.as_ref().expect("mapped above");
        map.event(meta.offset, meta.len, seq)
    }
}

/// The sequences to remove, ascending, and how many visible events the sealed segments
/// hold; `None` when the predicate asked to stop.
pub(super) fn select(
    segments: &SegmentSet,
    snapshot: &Snapshot,
    selection: Selection<'_>,
    now_us: u64,
) -> Result<Option<(Vec<u64>, u64)>> {
    let mut reader = Reader { segments, mapped: None };
    let sealed =
        |m: &EntryMeta| m.visible && snapshot.sealed.get(m.segment as usize).copied().unwrap_or(false);
    let examined = snapshot.entries.iter().filter(|m| sealed(m)).count() as u64;
    let mut removed = Vec::new();
    match selection {
        Selection::Predicate(predicate) => {
            for (seq, meta) in snapshot.entries.iter().enumerate().filter(|(_, m)| sealed(m)) {
                let event = reader.event(seq as u64, meta)?;
                match predicate(&event) {
                    None => return Ok(None),
                    Some(true) => removed.push(seq as u64),
                    Some(false) => {}
                }
            }
        }
        Selection::Rules(rules) => {
            // Newest first, so each entity's first `keep_last` selected events are its newest.
            let mut kept_per_entity: HashMap<u32, u64> = HashMap::new();
            for (seq, meta) in snapshot.entries.iter().enumerate().rev() {
                if !meta.visible || meta.is_hole() {
                    continue;
                }
                // Outside the sealed segments an event only counts toward keep_last.
                if !sealed(meta) && rules.keep_last_per_entity == 0 {
                    continue;
                }
                let kind_ok = snapshot.kind_ids.as_ref().is_none_or(|ids| ids[meta.kind as usize]);
                if !kind_ok {
                    continue;
                }
                if let Some(max_age) = rules.max_age_us {
                    let timestamp = reader.event(seq as u64, meta)?.view().timestamp_us();
                    if now_us.saturating_sub(timestamp) <= max_age {
                        continue;
                    }
                }
                let count = kept_per_entity.entry(meta.entity).or_default();
                if *count < rules.keep_last_per_entity {
                    *count += 1;
                    continue;
                }
                if sealed(meta) {
                    removed.push(seq as u64);
                }
            }
            removed.reverse();
        }
    }
    Ok(Some((removed, examined)))
}
