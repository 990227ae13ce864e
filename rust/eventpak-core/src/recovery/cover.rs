//! Deciding whether the index checkpoint can stand in for a scan of what it covers.

use std::path::PathBuf;

use memmap2::Mmap;

use crate::index::{CheckpointCover, Index};
use crate::segment::{decode_frame, Decoded, SegmentHeader, SEGMENT_HEADER_LEN};

/// True when the checkpoint describes a prefix of the segments as they are now: the same
/// segment ids, the same lengths for all but its last segment, frames (event entries and
/// tracking records, in log order) laid out back to back from each segment's header to its
/// covered length, visibility agreeing with `hidden.ranges`, and the last covered frame of
/// each segment intact (CRC, sequence, and id or tracking record as the checkpoint holds
/// them). Anything else sends recovery to a full scan, which then decides authoritatively.
///
/// The other covered frames are not read: that is what makes reopening cost a read of the
/// checkpoint instead of a read of the log. Every read checks its frame's CRC and sequence,
/// and `Store::verify` re-reads everything (docs/decisions.md, "What open checks").
///
/// A checkpoint without causal sections (version 1) still loads, but then every covered
/// frame is read once, checked as above and linked into the causal indexes.
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
    // The last frame of each segment, to be read back below.
    let mut last_in_segment: Vec<Option<Last>> = vec![None; n];
    let mut next_offset = vec![SEGMENT_HEADER_LEN as u64; n];
    let tracked = &index.tracking.frames;
    let mut t = 0;
    // Tracking records before event `seq` (or after the last one) must come next, each
    // carrying the number of events before it.
    let mut tracking_until =
        |seq: u64, place: (u32, u64), next: &mut Vec<u64>, last: &mut Vec<Option<Last>>| {
            while let Some(f) = tracked.get(t).filter(|f| (f.segment, f.offset) < place) {
                let segment = f.segment as usize;
                if f.offset != next[segment] || f.sequence != seq {
                    return false;
                }
                next[segment] += f.len as u64;
                last[segment] = Some(Last::Tracking(t));
                t += 1;
            }
            true
        };
    for (seq, meta) in index.entries.iter().enumerate() {
        let segment = meta.segment as usize;
        if !tracking_until(seq as u64, (meta.segment, meta.offset), &mut next_offset, &mut last_in_segment) {
            return false;
        }
        if meta.offset != next_offset[segment] || meta.visible == hidden(seq as u64) {
            return false;
        }
        next_offset[segment] += meta.len as u64;
        last_in_segment[segment] = Some(Last::Event(seq as u64));
    }
    if !tracking_until(index.len(), (u32::MAX, u64::MAX), &mut next_offset, &mut last_in_segment) {
        return false;
    }
    if !next_offset.iter().zip(&cover.segments).all(|(&end, &(_, len))| end == len) {
        return false;
    }
    for last in last_in_segment.iter().flatten() {
        let Last::Tracking(i) = *last else { continue };
        let f = tracked[i];
        let start = f.offset as usize;
        let Some(bytes) = maps[f.segment as usize].1.get(start..start + f.len as usize) else { return false };
        let Decoded::Tracking(frame) = decode_frame(bytes) else { return false };
        let name = &**index.tracking.names.name(f.name);
        if (frame.global_sequence, frame.name(), frame.position()) != (f.sequence, name, f.position) {
            return false;
        }
    }
    let to_read: Vec<u64> = if cover.has_causal {
        last_in_segment.into_iter().flatten().filter_map(Last::event).collect()
    } else {
        (0..index.len()).collect()
    };
    for seq in to_read {
        let meta = index.entries[seq as usize];
        let start = meta.offset as usize;
        let Some(bytes) = maps[meta.segment as usize].1.get(start..start + meta.len as usize) else {
            return false;
        };
        let Decoded::Frame(frame) = decode_frame(bytes) else { return false };
        let id = index.event_ids[seq as usize];
        if frame.global_sequence != seq || u128::from_be_bytes(frame.event_id()) != id {
            return false;
        }
        if !cover.has_causal {
            index.link_causal(seq, frame.causation_id(), frame.correlation_id());
        }
    }
    true
}

/// The last frame of a segment: an event (by sequence) or a tracking record (by position
/// in the index's list).
#[derive(Clone, Copy)]
enum Last {
    Event(u64),
    Tracking(usize),
}

impl Last {
    fn event(self) -> Option<u64> {
        match self {
            Last::Event(seq) => Some(seq),
            Last::Tracking(_) => None,
        }
    }
}
