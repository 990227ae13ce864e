//! Reads: events by id, by region, along an entity's chain; and statistics.

use std::sync::atomic::Ordering;

use super::Store;
use crate::error::{Error, Result};
use crate::index::{EntryMeta, Index};
use crate::recovery::RecoveryReport;
use crate::region::Region;
use crate::segment::{SegmentSet, StoredEvent};

/// A snapshot of the store's size and health.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Events in the log, including events hidden by a fence.
    pub events: u64,
    /// Events readers can see (`events` less cancelled and still-fenced ones).
    pub visible_events: u64,
    /// Leading events covered by an fsync.
    pub durable_events: u64,
    /// Segment files.
    pub segments: usize,
    /// Bytes in segment files.
    pub bytes: u64,
    /// Distinct entities.
    pub entities: usize,
    /// Distinct scopes.
    pub scopes: usize,
    /// Distinct kinds.
    pub kinds: usize,
    /// fsyncs this process did for group commit, the flusher and `sync()` (not rotation or
    /// close; in shared mode, not the ones another process did for it).
    pub fsyncs: u64,
    /// Appends through this store since it was opened that wrote events (a batch counts
    /// once; a retry answered from its idempotency key writes nothing and is not counted).
    pub appends: u64,
    /// Events those appends wrote.
    pub appended_events: u64,
    /// Why the writer stopped, if it did.
    pub writer_failure: Option<String>,
    /// What recovery found at open.
    pub recovery: RecoveryReport,
}

/// How many frames ahead of the one being checked [`decode_all`] asks to be loaded: enough
/// to cover a memory load's latency with the checks of the frames in between.
const PREFETCH_AHEAD: usize = 8;

/// Checks located frames and returns them in place; consecutive frames of one segment
/// share one mapping.
pub(super) fn decode_all(segments: &SegmentSet, located: Vec<(u64, EntryMeta)>) -> Result<Vec<StoredEvent>> {
    let mut out = Vec::with_capacity(located.len());
    let mut mapped: Option<(u32, crate::segment::reader::MappedSegment)> = None;
    for (i, &(seq, meta)) in located.iter().enumerate() {
        let end = meta.offset + meta.len as u64;
        let reuse = matches!(&mapped, Some((seg, m)) if *seg == meta.segment && m.covers(end));
        if !reuse {
            mapped = Some((meta.segment, segments.map(meta.segment, end)?));
        }
        let (_, map) = mapped.as_ref().expect("mapped above");
        if let Some((_, ahead)) = located.get(i + PREFETCH_AHEAD).filter(|(_, m)| m.segment == meta.segment) {
            map.prefetch(ahead.offset, ahead.len);
        }
        out.push(map.event(meta.offset, meta.len, seq)?);
    }
    Ok(out)
}

impl Store {
    pub(super) fn locate(index: &Index, seqs: &[u64]) -> Vec<(u64, EntryMeta)> {
        // A hole (a replica's skipped number) has no frame to read.
        seqs.iter().filter_map(|&seq| Some((seq, *index.entry(seq).filter(|m| !m.is_hole())?))).collect()
    }

    /// Reads events while the caller holds the index lock.
    pub(super) fn read_locked(&self, index: &Index, seqs: &[u64]) -> Result<Vec<StoredEvent>> {
        decode_all(&self.shared.segments, Self::locate(index, seqs))
    }

    /// Reads the events at `seqs` (unknown sequences are left out). No compaction swaps a
    /// segment between the lookup and the read (see `segment_swap`).
    pub fn read_events(&self, seqs: &[u64]) -> Result<Vec<StoredEvent>> {
        self.check_open()?;
        let _no_swap = self.shared.segment_swap.read();
        let located = Self::locate(&*self.index()?, seqs);
        decode_all(&self.shared.segments, located)
    }

    /// Runs `f` on the index under its read lock.
    pub(crate) fn with_index<T>(&self, f: impl FnOnce(&Index) -> T) -> Result<T> {
        self.check_open()?;
        Ok(f(&*self.index()?))
    }

    /// Cancelled fence ranges clipped to `[from, to)`.
    pub fn cancelled_within(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        self.shared.index.read().cancelled_within(from, to)
    }

    /// Ranges removed by compaction clipped to `[from, to)`.
    pub fn compacted_within(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        self.shared.index.read().compacted_within(from, to)
    }

    /// Sequences of events matching `region` after a cursor position (see [`Index::query_hits_after`]).
    pub fn query_hits_after(
        &self,
        region: &Region,
        position: u64,
        started: bool,
        limit: usize,
    ) -> Result<Vec<u64>> {
        self.check_open()?;
        Ok(self.index()?.query_hits_after(region, position, started, limit))
    }

    /// Events matching `region` in commit order, strictly after sequence `after` if given.
    pub fn query(
        &self,
        region: &Region,
        after: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Vec<StoredEvent>> {
        let (position, started) = after.map_or((0, false), |a| (a, true));
        let hits = self.query_hits_after(region, position, started, limit.unwrap_or(usize::MAX))?;
        self.read_events(&hits)
    }

    /// The event with this id.
    pub fn get(&self, event_id: &[u8; 16]) -> Result<StoredEvent> {
        self.check_open()?;
        let _no_swap = self.shared.segment_swap.read();
        let located = {
            let index = self.index()?;
            let seq = index.sequence_of(event_id).ok_or_else(|| Error::EventNotFound(uuid_text(event_id)))?;
            Self::locate(&index, &[seq])
        };
        decode_all(&self.shared.segments, located)?
            .pop()
            .ok_or_else(|| Error::EventNotFound(uuid_text(event_id)))
    }

    /// The event with this id, then its entity's earlier events newest first, following
    /// `prev_hash`; at most `limit` events in all. The walk stops at a predecessor removed
    /// by compaction. A broken link is corruption.
    pub fn walk_ancestors(&self, event_id: &[u8; 16], limit: Option<usize>) -> Result<Vec<StoredEvent>> {
        self.check_open()?;
        let limit = limit.unwrap_or(usize::MAX);
        let no_swap = self.shared.segment_swap.read();
        let located = {
            let index = self.index()?;
            let seq = index.sequence_of(event_id).ok_or_else(|| Error::EventNotFound(uuid_text(event_id)))?;
            let meta = *index.entry(seq).expect("indexed sequence");
            let chain: Vec<u64> = (0..=meta.entity_sequence)
                .rev()
                .take(limit)
                .map_while(|clock| {
                    index
                        .entity_event_at(meta.entity, clock)
                        .filter(|&s| !index.entries[s as usize].is_hole())
                })
                .collect();
            Self::locate(&index, &chain)
        };
        let segment = located.first().map(|(_, meta)| meta.segment);
        let events = decode_all(&self.shared.segments, located)?;
        drop(no_swap);
        for pair in events.windows(2) {
            let (newer, older) = (pair[0].view(), pair[1].view());
            if newer.prev_hash() != older.hash() {
                let path = segment.and_then(|s| self.shared.segments.path(s)).unwrap_or_default();
                let reason = format!(
                    "hash chain broken between sequences {} and {}",
                    older.global_sequence, newer.global_sequence
                );
                return Err(Error::corrupt(path, 0, reason));
            }
        }
        Ok(events)
    }

    /// The newest visible global sequence; `None` while nothing is visible.
    pub fn head(&self) -> Result<Option<u64>> {
        self.with_index(|index| (0..index.len()).rev().find(|&seq| index.entries[seq as usize].visible))
    }

    /// The entity's next clock value: what `expected_sequence` must be for its next append
    /// (its visible events; an open fence's events count only once it commits).
    pub fn next_sequence(&self, entity: &str) -> Result<u64> {
        crate::names::validate_coordinate_part("entity", entity)?;
        self.with_index(|index| {
            index.entity_names.get(entity).map_or(0, |id| index.entities[id as usize].postings.len() as u64)
        })
    }

    /// Size and health figures.
    pub fn stats(&self) -> Result<Stats> {
        self.check_open()?;
        let (events, hidden, durable_events, (entities, scopes, kinds)) = {
            let index = self.index()?;
            let cancelled: u64 = index.visibility.cancelled.iter().map(|(start, end)| end - start).sum();
            // A replica's holes are numbers its log skips, and compaction's the events it
            // removed: neither is an event, durable or not. The holes past the durable ones
            // (in the unsynced tail, which with sync="never" may be a whole segment) are
            // counted only when the log has any, and the rest taken from the total.
            let durable_seqs = self.durable_events().min(index.len());
            let durable = match index.holes() {
                0 => durable_seqs,
                holes => {
                    let tail = &index.entries[durable_seqs as usize..];
                    durable_seqs - (holes - tail.iter().filter(|m| m.is_hole()).count() as u64)
                }
            };
            (
                index.len() - index.holes(),
                cancelled + index.pending.len() as u64,
                durable,
                index.cardinalities(),
            )
        };
        let files = self.shared.segments.list();
        let bytes = files.iter().filter_map(|(_, p)| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
        let writer_failure =
            self.shared.writer.as_ref().and_then(|w| w.lock().failure().map(Error::to_string));
        Ok(Stats {
            events,
            visible_events: events - hidden,
            durable_events,
            fsyncs: self.shared.durability.fsyncs(),
            appends: self.shared.appends.load(Ordering::Relaxed),
            appended_events: self.shared.appended_events.load(Ordering::Relaxed),
            segments: files.len(),
            bytes,
            entities,
            scopes,
            kinds,
            writer_failure,
            recovery: self.shared.report.clone(),
        })
    }
}

pub(super) fn uuid_text(id: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*id).to_string()
}
