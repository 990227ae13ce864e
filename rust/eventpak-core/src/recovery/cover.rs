//! Deciding whether the index checkpoint can stand in for a scan of what it covers.

use std::path::PathBuf;

use memmap2::Mmap;

use crate::index::{CheckpointCover, Index};
use crate::segment::{decode_frame, Decoded, SegmentHeader, SEGMENT_HEADER_LEN};

/// True when the checkpoint describes a prefix of the segments as they are now: the same
/// segment ids, the same lengths for all but its last segment, entries laid out back to
/// back from each segment's header to its covered length, visibility agreeing with
/// `hidden.ranges`, and the last covered frame of each segment intact (CRC, sequence and
/// id as the checkpoint holds them). Anything else sends recovery to a full scan, which
/// then decides authoritatively.
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
    // The last entry of each segment, to be read back below.
    let mut last_in_segment: Vec<Option<u64>> = vec![None; n];
    let mut next_offset = vec![SEGMENT_HEADER_LEN as u64; n];
    for (seq, meta) in index.entries.iter().enumerate() {
        let segment = meta.segment as usize;
        if meta.offset != next_offset[segment] || meta.visible == hidden(seq as u64) {
            return false;
        }
        next_offset[segment] += meta.len as u64;
        last_in_segment[segment] = Some(seq as u64);
    }
    if !next_offset.iter().zip(&cover.segments).all(|(&end, &(_, len))| end == len) {
        return false;
    }
    let to_read: Vec<u64> = if cover.has_causal {
        last_in_segment.into_iter().flatten().collect()
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
