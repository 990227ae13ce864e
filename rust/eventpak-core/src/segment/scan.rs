//! Scanning one segment's frames at open, with the torn-tail rules of `docs/design.md`, "Durability and recovery".

use std::path::Path;

use super::frame::{BODY_FIXED_LEN, FRAME_HEADER_LEN};
use super::layout::MIN_BODY_LEN;
use super::log_frame::LogFrame;
use super::SegmentHeader;
use crate::error::{Error, Result};

/// How a scan ended.
#[derive(Debug, PartialEq, Eq)]
pub struct ScanEnd {
    /// Length of the valid prefix: everything after it is a torn tail.
    pub valid_len: u64,
    /// Global sequence the next frame must carry.
    pub next_sequence: u64,
    /// Bytes past `valid_len` (0 when the segment ends cleanly).
    pub torn_bytes: u64,
}

/// Scans `bytes` (a whole segment file) from `start`, calling `on_frame` for every frame
/// of every complete batch, in order. Event frames must carry dense sequences from
/// `next_sequence` (with `jumps`, a replica's log, increasing ones: it keeps its origin's
/// numbers and skips those it does not hold); a tracking record carries the sequence of
/// the event after it, takes none, and must end its batch.
///
/// Only in the last segment (`is_last`) may the scan stop early at a torn tail: a frame
/// cut short, a damaged frame that is the final one (or followed only by zeros), or a
/// batch whose later frames never arrived. The tail is then cut back to the start of the
/// unfinished batch. Damage anywhere else is [`Error::CorruptSegment`].
///
/// A segment rewritten by compaction (header version 4) may hold what is left of a batch
/// whose other events were removed: each of its frames stands alone, and it is never cut
/// (it was complete and fsynced before it replaced the old segment).
pub fn scan_segment(
    path: &Path,
    bytes: &[u8],
    start: usize,
    mut next_sequence: u64,
    (is_last, jumps): (bool, bool),
    mut on_frame: impl FnMut(u64, &LogFrame<'_>) -> Result<()>,
) -> Result<ScanEnd> {
    let compacted = SegmentHeader::decode(bytes).is_ok() && SegmentHeader::is_compacted(bytes);
    let is_last = is_last && !compacted;
    let mut at = start;
    let mut batch: Vec<(u64, LogFrame<'_>)> = Vec::new();
    let mut batch_start = start;
    let mut batch_first_sequence = next_sequence;
    // The unfinished batch's frames are dropped: the next sequence is the batch's first.
    let torn = |cut: usize, first: u64| {
        Ok(ScanEnd { valid_len: cut as u64, next_sequence: first, torn_bytes: (bytes.len() - cut) as u64 })
    };
    while at < bytes.len() {
        let rest = &bytes[at..];
        let frame = match LogFrame::decode(rest) {
            Ok(frame) => frame,
            Err(None) if is_last && !later_frame_exists(rest, next_sequence, jumps) => {
                return torn(batch_start, batch_first_sequence)
            }
            Err(None) => {
                return Err(Error::corrupt(path, at as u64, "frame runs past the end of its segment"))
            }
            Err(Some(reason)) => {
                let claimed =
                    FRAME_HEADER_LEN as u64 + u32::from_le_bytes(rest[0..4].try_into().unwrap()) as u64;
                // Zeros after the damaged frame are what a crash leaves when the file grew
                // but the data never reached it.
                let after = rest.get(claimed as usize..).unwrap_or_default();
                let is_final = claimed == rest.len() as u64 || after.iter().all(|&b| b == 0);
                if is_last && is_final && !later_frame_exists(rest, next_sequence, jumps) {
                    return torn(batch_start, batch_first_sequence);
                }
                return Err(Error::corrupt(path, at as u64, reason));
            }
        };
        // A torn batch is cut back to where it began, before any jump it made.
        let before_frame = next_sequence;
        // In a compacted segment a tracking record may follow removed events too.
        if jumps && (frame.is_event() || compacted) && frame.global_sequence() > next_sequence {
            next_sequence = frame.global_sequence();
        }
        if frame.global_sequence() != next_sequence {
            let reason =
                format!("frame holds sequence {}, expected {next_sequence}", frame.global_sequence());
            return Err(Error::corrupt(path, at as u64, reason));
        }
        let expected_index = batch.len() as u32;
        let same_batch = batch.first().is_none_or(|(_, f)| f.batch_len() == frame.batch_len());
        if !compacted && (frame.batch_index() != expected_index || !same_batch) {
            return Err(Error::corrupt(path, at as u64, "frame out of place in its batch"));
        }
        if batch.is_empty() {
            batch_start = at;
            batch_first_sequence = before_frame;
        }
        if frame.is_event() {
            next_sequence += 1;
        }
        let done = compacted || frame.batch_index() + 1 == frame.batch_len();
        at += frame.frame_len();
        batch.push(((at - frame.frame_len()) as u64, frame));
        if done {
            for (offset, frame) in batch.drain(..) {
                on_frame(offset, &frame)?;
            }
            batch_start = at;
            batch_first_sequence = next_sequence;
        }
    }
    if !batch.is_empty() {
        if is_last {
            return torn(batch_start, batch_first_sequence);
        }
        return Err(Error::corrupt(path, batch_start as u64, "segment ends inside a batch"));
    }
    Ok(ScanEnd { valid_len: at as u64, next_sequence, torn_bytes: 0 })
}

/// True when a valid frame of a later batch starts anywhere after the first byte of
/// `rest` (one carrying a sequence at least the damaged frame's: a tracking record takes
/// none, so the frame after it carries the same). A torn write can only damage the very end
/// of the log; if intact frames follow the damage, a length field was corrupted and
/// cutting there would silently lose them.
///
/// Every offset is a candidate, so the costly CRC runs only where the cheap fields already
/// fit: a body length that stays inside `rest` and a sequence that a frame this far on
/// could carry. That keeps a torn multi-megabyte event from costing a CRC per byte.
fn later_frame_exists(rest: &[u8], next_sequence: u64, jumps: bool) -> bool {
    // Only events take sequences, so the smallest event frame bounds how far they go
    // (unless sequences may jump: then any later one may follow).
    let min_event = (FRAME_HEADER_LEN + BODY_FIXED_LEN) as u64;
    let reachable =
        if jumps { u64::MAX } else { next_sequence.saturating_add(rest.len() as u64 / min_event + 1) };
    (1..rest.len().saturating_sub(FRAME_HEADER_LEN - 1)).any(|at| {
        let candidate = &rest[at..];
        let body_len = u32::from_le_bytes(candidate[0..4].try_into().unwrap()) as usize;
        let seq = u64::from_le_bytes(candidate[8..16].try_into().unwrap());
        body_len >= MIN_BODY_LEN
            && FRAME_HEADER_LEN + body_len <= candidate.len()
            && seq >= next_sequence
            && seq <= reachable
            && LogFrame::decode(candidate).is_ok_and(|f| f.global_sequence() >= next_sequence)
    })
}
