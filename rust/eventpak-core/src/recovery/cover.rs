//! Deciding whether the index checkpoint can stand in for a scan of what it covers.

use std::path::PathBuf;

use memmap2::Mmap;

use crate::index::{CheckpointCover, Index};
use crate::segment::{decode_frame, Decoded, SegmentHeader, SEGMENT_HEADER_LEN};

/// True when the checkpoint describes a prefix of the segments as they are now: the same
/// segment ids, the same lengths for all but its last segment, frames (event entries and
/// tracking records, in log order) laid out back to back from each segment's header to its
/// covered length, visibility agreeing with `hidden.ranges`, and every covered frame intact
/// (CRC, sequence, and id or tracking record as the checkpoint holds them). Anything else
/// sends recovery to a full scan, which then decides authoritatively: damage anywhere in
/// the covered log fails the open closed, as it does without a checkpoint.
///
/// What the checkpoint spares is rebuilding the index (names, entity clocks and chains,
/// tags, causal links), not reading the frames: their CRCs are checked in one pass
/// (docs/decisions.md, "What open checks").
///
/// A checkpoint without causal sections (version 1) still loads; its frames' causal links
/// are then read in the same pass.
pub(super) fn cover_fits(
    cover: &CheckpointCover,
    files: &[(u64, PathBuf)],
    maps: &[(SegmentHeader, Mmap)],
    index: &mut Index,
    hidden: &dyn Fn(u64) -> bool,
) -> bool {
    let n = cover.segments.len();
    if n == 0 || n > files.len() {
        return n == 0 && index.is_empty();
    }
    for (i, &(id, len)) in cover.segments.iter().enumerate() {
        let actual = maps[i].1.len() as u64;
        let exact = i + 1 < n;
        if files[i].0 != id || len < SEGMENT_HEADER_LEN as u64 || (exact && actual != len) || actual < len {
            return false;
        }
    }
    let frame = |segment: u32, offset: u64, len: u32| {
        let start = offset as usize;
        maps.get(segment as usize)?.1.get(start..start + len as usize)
    };
    let mut next_offset = vec![SEGMENT_HEADER_LEN as u64; n];
    let tracked = &index.tracking.frames;
    let mut t = 0;
    // Tracking records before event `seq` (or after the last one) must come next, each
    // carrying the number of events before it, and read back as the checkpoint holds them.
    let mut tracking_until = |seq: u64, place: (u32, u64), next: &mut Vec<u64>| {
        while let Some(f) = tracked.get(t).filter(|f| (f.segment, f.offset) < place) {
            let segment = f.segment as usize;
            if f.offset != next[segment] || f.sequence != seq {
                return false;
            }
            let Some(Decoded::Tracking(record)) = frame(f.segment, f.offset, f.len).map(decode_frame) else {
                return false;
            };
            let name = &**index.tracking.names.name(f.name);
            if (record.global_sequence, record.name(), record.position()) != (f.sequence, name, f.position) {
                return false;
            }
            next[segment] += f.len as u64;
            t += 1;
        }
        true
    };
    let mut links = Vec::new();
    for (seq, meta) in index.entries.iter().enumerate() {
        let seq = seq as u64;
        let segment = meta.segment as usize;
        if !tracking_until(seq, (meta.segment, meta.offset), &mut next_offset) {
            return false;
        }
        if meta.offset != next_offset[segment] || meta.visible == hidden(seq) {
            return false;
        }
        let Some(Decoded::Frame(event)) = frame(meta.segment, meta.offset, meta.len).map(decode_frame) else {
            return false;
        };
        if event.global_sequence != seq
            || u128::from_be_bytes(event.event_id()) != index.event_ids[seq as usize]
        {
            return false;
        }
        if !cover.has_causal {
            links.push((seq, event.causation_id(), event.correlation_id()));
        }
        next_offset[segment] += meta.len as u64;
    }
    if !tracking_until(index.len(), (u32::MAX, u64::MAX), &mut next_offset) {
        return false;
    }
    if !next_offset.iter().zip(&cover.segments).all(|(&end, &(_, len))| end == len) {
        return false;
    }
    for (seq, causation, correlation) in links {
        index.link_causal(seq, causation, correlation);
    }
    true
}
