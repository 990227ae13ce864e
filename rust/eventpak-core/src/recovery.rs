//! Opening a data dir: find the longest valid prefix of the log and rebuild the index,
//! from the index checkpoint when it is trustworthy, else by scanning every segment.
//!
//! Nothing on disk changes until the whole log has been checked: a store that fails
//! closed with [`Error::CorruptSegment`] leaves every file as it found it.

use std::path::{Path, PathBuf};

use memmap2::Mmap;

mod cover;

use crate::compaction::Compacted;
use crate::error::{Error, Result};
use crate::index::{load_checkpoint, Index, NewEntry};
use crate::io::Storage;
use crate::segment::{
    list_segments, load_seals, map_segment, scan_segment, LogFrame, SegmentHeader, SegmentSet,
    FIRST_SEALED_VERSION, SEGMENT_HEADER_LEN, SEGMENT_VERSION,
};
use crate::visibility::Visibility;

/// What recovery found and did, reported through `stats()`.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    /// Bytes cut from the end of the newest segment (a torn tail).
    pub torn_tail_bytes: u64,
    /// The segment the torn tail was cut from.
    pub torn_tail_segment: Option<PathBuf>,
    /// Newest segment files removed because their header never got written completely.
    pub removed_segments: Vec<PathBuf>,
    /// `"loaded"`, `"missing"`, `"stale"`, `"corrupt"` or `"disabled"`.
    pub index_checkpoint: &'static str,
    /// Events read from segments (the rest came from the checkpoint).
    pub scanned_events: u64,
}

/// A recovered log, ready for a writer.
pub struct Recovered {
    /// The rebuilt index.
    pub index: Index,
    /// `(id, valid length)` of each kept segment, ascending.
    pub segments: Vec<(u64, u64)>,
    /// Newest timestamp in the log.
    pub last_timestamp_us: u64,
    /// What happened.
    pub report: RecoveryReport,
    /// The newest segment must take no more frames: it is sealed, or of an older version.
    pub rotate_before_write: bool,
}

fn map_file(path: &Path) -> Result<Mmap> {
    map_segment(path).map_err(|e| Error::storage("mapping segment", e))
}

/// How `recover` may use and change the data dir.
#[derive(Clone, Copy, Debug)]
pub struct RecoveryOptions {
    /// Load the index from `index.ckpt` when it is valid (else scan every segment).
    pub use_index_checkpoint: bool,
    /// Change nothing on disk (no torn-tail cut, no removal of a half-created segment).
    pub read_only: bool,
    /// Index no event from this sequence on (a process joining a shared session stops
    /// where the log is published, or where a live fence starts, and follows from there).
    pub stop_at: Option<u64>,
    /// Ignore segments after this id (a joiner: later files are a dead writer's unpublished
    /// rotation, which the next writer replaces).
    pub last_segment: Option<u64>,
    /// The data dir is a replica's: event sequences increase but may jump (the skipped ones
    /// become holes).
    pub sequence_jumps: bool,
}

/// Recovers the log in `segments_dir`, registering each kept segment in `set`.
pub fn recover(
    storage: &dyn Storage,
    data_dir: &Path,
    segments_dir: &Path,
    options: RecoveryOptions,
    set: &SegmentSet,
) -> Result<Recovered> {
    let RecoveryOptions { use_index_checkpoint, read_only, stop_at, last_segment, sequence_jumps } = options;
    // An interrupted compaction is finished or undone before anything is read.
    let compacted = Compacted::load(data_dir)?;
    let redirect = compacted.settle_temps(storage, segments_dir, read_only)?;
    let compacting = compacted.is_active();
    let mut files = list_segments(segments_dir).map_err(|e| Error::storage("listing segments", e))?;
    files.retain(|(id, _)| last_segment.is_none_or(|last| *id <= last));
    for (id, path) in &mut files {
        if let Some(temp) = redirect.get(id) {
            *path = temp.clone();
        }
    }
    let mut report = RecoveryReport { index_checkpoint: "disabled", ..Default::default() };

    // A crash while rotating can leave the newest file empty or with a partial header.
    let mut pending_removal = None;
    if let Some((_, path)) = files.last() {
        let len = std::fs::metadata(path).map_err(|e| Error::storage("reading segment size", e))?.len();
        if len < SEGMENT_HEADER_LEN as u64 {
            pending_removal = files.pop().map(|(_, p)| p);
        }
    }
    let mut maps = Vec::with_capacity(files.len());
    for (id, path) in &files {
        let map = map_file(path)?;
        let header = SegmentHeader::decode(&map).map_err(|reason| Error::corrupt(path, 0, reason))?;
        if header.segment_id != *id {
            return Err(Error::corrupt(path, 0, format!("header names segment {}", header.segment_id)));
        }
        // Compaction records every segment it rewrote.
        if SegmentHeader::is_compacted(&map) && !compacted.segments.contains_key(id) {
            return Err(Error::corrupt(path, 0, "a segment marked compacted that no compaction rewrote"));
        }
        maps.push((header, map));
    }
    let seal_records = load_seals(segments_dir)?;
    let seals = &seal_records.by_segment;
    for (position, ((id, path), (_, map))) in files.iter().zip(&maps).enumerate() {
        let newest = position + 1 == files.len();
        match seals.get(id) {
            // A sealed segment cut back at a frame boundary looks intact to a scan when
            // nothing after it is left to disagree: its seal record says where it ends.
            Some(seal) if compacted.segment_len(*id, seal.len) != map.len() as u64 => {
                let sealed = compacted.segment_len(*id, seal.len);
                let reason = format!("sealed at {sealed} bytes but {} bytes long", map.len());
                return Err(Error::corrupt(path, map.len() as u64, reason));
            }
            None if !newest && SegmentHeader::version_of(map) >= FIRST_SEALED_VERSION => {
                return Err(Error::corrupt(path, 0, "a segment before the newest has no seal record"));
            }
            _ => {}
        }
    }
    let rotate_before_write = match (files.last(), maps.last()) {
        (Some((id, _)), Some((_, map))) => {
            seals.contains_key(id) || SegmentHeader::version_of(map) < SEGMENT_VERSION
        }
        _ => false,
    };

    let mut visibility = Visibility::load(data_dir)?;
    // A fence still open at the last close or crash never committed: its events stay hidden.
    let hidden =
        |seq: u64| visibility.is_cancelled(seq) || visibility.open_fence.is_some_and(|start| seq >= start);
    let (mut index, cover) = if use_index_checkpoint {
        match load_checkpoint(data_dir) {
            Ok(Some((mut index, cover))) => {
                let within = stop_at.is_none_or(|stop| index.len() <= stop);
                // Outside a replica (whose holes are the origin's events it skipped), its
                // holes must be events the compaction record says were removed.
                let holes_removed = index.holes() == 0 || sequence_jumps || index.holes_within(&compacted);
                if within && holes_removed && cover::cover_fits(&cover, &files, &maps, &mut index, &hidden) {
                    report.index_checkpoint = "loaded";
                    (index, cover)
                } else {
                    report.index_checkpoint = "stale";
                    Default::default()
                }
            }
            Ok(None) => {
                report.index_checkpoint = "missing";
                Default::default()
            }
            Err(_) => {
                report.index_checkpoint = "corrupt";
                Default::default()
            }
        }
    } else {
        Default::default()
    };

    let mut last_ts = cover.last_timestamp_us;
    let mut last_id = index.last_event_id();
    let mut valid = Vec::with_capacity(files.len());
    let mut torn_cut = None;
    let stopped = |index: &Index| stop_at.is_some_and(|stop| index.len() >= stop);
    for (position, ((id, path), (header, map))) in files.iter().zip(&maps).enumerate() {
        if stopped(&index) && header.base_sequence > index.len() {
            break; // A joiner's follower reads on from here.
        }
        // A segment before a half-created newest one was sealed (fsynced) at rotation, so
        // it cannot have a torn tail: only a true last segment may be cut.
        let is_last = position + 1 == files.len() && pending_removal.is_none();
        let (start, covered) = match cover.segments.get(position) {
            Some(&(_, len)) => (len as usize, true),
            None => (SEGMENT_HEADER_LEN, false),
        };
        if !covered
            && header.base_sequence > index.len()
            && compacted.covers(index.len(), header.base_sequence)
        {
            index.skip_to(header.base_sequence); // the previous segment's last events were removed
        }
        if !covered && header.base_sequence != index.len() {
            let reason =
                format!("segment starts at sequence {}, expected {}", header.base_sequence, index.len());
            return Err(Error::corrupt(path, 0, reason));
        }
        let jumps = sequence_jumps || compacting;
        // A joiner stops after the last published event, but a tracking record closing that
        // event's batch belongs to the batch: the follow tail (and an index checkpoint or a
        // verify of what it followed) must not end inside a batch.
        let mut previous_indexed = false;
        let end = scan_segment(path, map, start, index.len(), (is_last, jumps), |offset, frame| {
            let closes_batch = previous_indexed
                && !frame.is_event()
                && frame.batch_index() > 0
                && frame.global_sequence() == index.len();
            previous_indexed = false;
            if stopped(&index) && !closes_batch {
                return Ok(());
            }
            previous_indexed = true;
            let frame = match frame {
                LogFrame::Event(frame) => frame,
                LogFrame::Tracking(tracking) => {
                    if compacting
                        && !sequence_jumps
                        && !compacted.covers(index.len(), tracking.global_sequence)
                    {
                        return Err(Error::corrupt(path, offset, "sequence jumps over events never removed"));
                    }
                    last_ts = last_ts.max(tracking.timestamp_us());
                    index.record_tracking(tracking, position as u32, offset);
                    return Ok(());
                }
            };
            let (entity, _, _) = frame.names();
            let visible = !hidden(frame.global_sequence);
            let id = u128::from_be_bytes(frame.event_id());
            if id <= last_id {
                return Err(Error::corrupt(path, offset, "event ids out of order"));
            }
            // Hidden events were chained provisionally; only visible ones must continue
            // their entity's chain.
            let seq = frame.global_sequence;
            if compacting && !sequence_jumps && !compacted.covers(index.len(), seq) {
                return Err(Error::corrupt(path, offset, "sequence jumps over events never removed"));
            }
            let (clock, head) = index.entity_head(entity);
            // After removed events the chain cannot be followed: they are gone, and the
            // clock jumps over them.
            let over_removed = compacting && visible && frame.entity_sequence() > clock;
            if visible && !over_removed && (frame.entity_sequence() != clock || frame.prev_hash() != head) {
                return Err(Error::corrupt(path, offset, "event does not continue its entity chain"));
            }
            last_id = id;
            last_ts = last_ts.max(frame.timestamp_us());
            index.skip_to(frame.global_sequence); // (the scan refuses a jump unless allowed)
            if over_removed && !index.pad_removed(entity, frame.entity_sequence(), seq, &compacted) {
                return Err(Error::corrupt(path, offset, "entity clock jumps over events never removed"));
            }
            index.insert(NewEntry::of_frame(frame, position as u32, offset, visible));
            report.scanned_events += 1;
            Ok(())
        })?;
        // For a segment wholly covered by the checkpoint (not its last one), the index
        // already holds later segments' events, so only its length can be compared.
        let counted = position + 1 >= cover.segments.len() && !stopped(&index);
        if let Some(seal) = seals.get(id) {
            if counted
                && index.len() < seal.next_sequence
                && compacted.covers(index.len(), seal.next_sequence)
            {
                index.skip_to(seal.next_sequence); // its last events were removed
            }
            let sealed_len = compacted.segment_len(*id, seal.len);
            if end.valid_len != sealed_len || (counted && index.len() != seal.next_sequence) {
                let reason = format!(
                    "sealed with {} bytes up to sequence {}, holds {} bytes up to sequence {}",
                    sealed_len,
                    seal.next_sequence,
                    end.valid_len,
                    index.len()
                );
                return Err(Error::corrupt(path, end.valid_len, reason));
            }
        }
        if end.torn_bytes > 0 {
            torn_cut = Some((path.clone(), end.valid_len));
            report.torn_tail_bytes = end.torn_bytes;
            report.torn_tail_segment = Some(path.clone());
        }
        valid.push((*id, end.valid_len));
    }
    drop(maps);
    if compacting && !index.restore_removed(&compacted) {
        let path = data_dir.join(crate::compaction::COMPACTED_RANGES_FILE);
        return Err(Error::corrupt(path, 0, "an entity's removed events are not in the removed ranges"));
    }

    let fence_was_open = visibility.open_fence.take().map(|start| visibility.cancel(start, index.len()));
    // Cancelled events past the end of the recovered log (a torn tail took them: a fence's
    // frames are not fsynced at cancel) are gone, and their numbers go to the next appends,
    // which must not start out hidden. Only a recovery of the whole log knows where it ends.
    let whole_log = stop_at.is_none() && last_segment.is_none();
    let clipped = whole_log && visibility.clip_to(index.len());
    // The whole log checked out: only now repair the tail.
    if !read_only {
        if fence_was_open.is_some() || clipped {
            visibility.save(storage, data_dir)?;
        }
        if let Some((path, len)) = torn_cut {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| Error::storage("opening torn segment", e))?;
            storage
                .truncate(&file, &path, len)
                .and_then(|()| storage.sync(&file, &path))
                .map_err(|e| Error::storage("truncating torn tail", e))?;
        }
        // A torn seal record (a crash while sealing what is still the newest segment) goes,
        // so that the seal written at its next rotation lands in place.
        seal_records
            .cut_torn_record(storage, segments_dir)
            .map_err(|e| Error::storage("cutting a torn seal record", e))?;
        if let Some(path) = &pending_removal {
            storage.remove(path).map_err(|e| Error::storage("removing half-created segment", e))?;
            storage.sync_dir(segments_dir).map_err(|e| Error::storage("fsync of segments dir", e))?;
        }
    }
    report.removed_segments.extend(pending_removal);
    index.visibility = visibility;
    index.compacted = compacted;
    for (id, _) in &valid {
        let path = redirect.get(id).cloned();
        set.push(*id, path.unwrap_or_else(|| segments_dir.join(crate::segment::segment_file_name(*id))))?;
    }
    Ok(Recovered { index, segments: valid, last_timestamp_us: last_ts, report, rotate_before_write })
}
