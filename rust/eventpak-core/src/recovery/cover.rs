//! Deciding whether the index checkpoint can stand in for a scan of what it covers.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::OnceLock;

use memmap2::Mmap;

use crate::event::EventId;
use crate::index::{CheckpointCover, Index};
use crate::segment::{decode_frame, Decoded, LogFrame, SegmentHeader, SEGMENT_HEADER_LEN};

/// True when the checkpoint describes a prefix of the segments as they are now: the same
/// segment ids, the same lengths for all but its last segment, frames (event entries and
/// tracking records, in log order) laid out back to back from each segment's header to its
/// covered length, visibility agreeing with `hidden.ranges`, and every covered frame intact
/// (CRC, sequence, and id or tracking record as the checkpoint holds them). Anything else
/// sends recovery to a full scan, which then decides authoritatively: damage anywhere in
/// the covered log fails the open closed, as it does without a checkpoint.
///
/// What the checkpoint spares is rebuilding the index (names, entity clocks and chains,
/// tags, causal links), not reading the frames: the layout is checked in log order, then
/// every event frame's contents on several threads ([`frames_intact`]; docs/decisions.md,
/// "What open checks").
///
/// A checkpoint without causal sections (version 1) still loads; its frames' causal links
/// are then read as the frames are checked.
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
    // First the layout, in log order (cheap), then every event frame's contents (most of
    // the time: a CRC over every byte), on several threads.
    for (seq, meta) in index.entries.iter().enumerate() {
        if meta.is_hole() {
            continue; // no frame: a removed event (the caller checks it was removed)
        }
        let seq = seq as u64;
        let segment = meta.segment as usize;
        if !tracking_until(seq, (meta.segment, meta.offset), &mut next_offset) {
            return false;
        }
        if meta.offset != next_offset[segment] || meta.visible == hidden(seq) {
            return false;
        }
        next_offset[segment] += meta.len as u64;
    }
    if !tracking_until(index.len(), (u32::MAX, u64::MAX), &mut next_offset) {
        return false;
    }
    if !next_offset.iter().zip(&cover.segments).all(|(&end, &(_, len))| end == len) {
        return false;
    }
    if !ends_between_batches(index, maps, n - 1) {
        return false;
    }
    let Some(links) = frames_intact(index, maps, !cover.has_causal) else { return false };
    for (seq, causation, correlation) in links {
        index.link_causal(seq, causation, correlation);
    }
    true
}

/// True when the last frame the checkpoint covers in segment `last` ends its batch (or
/// the segment has none), so the scan after the cover starts at a batch. A shared-mode
/// follower of an older build could stop between a batch's events and its tracking record
/// and checkpoint there; such a checkpoint is stale, and the full scan reads the batch whole.
/// (In a compacted segment a batch may have lost its last frames: a stale verdict there
/// only costs the scan.)
fn ends_between_batches(index: &Index, maps: &[(SegmentHeader, Mmap)], last: usize) -> bool {
    let in_last = |segment: u32| segment as usize == last;
    let event = index.entries.iter().rev().find(|m| !m.is_hole()).filter(|m| in_last(m.segment));
    let tracking = index.tracking.frames.iter().rev().find(|f| in_last(f.segment));
    // The later of the two (`None` orders first).
    let Some((offset, len)) = event.map(|m| (m.offset, m.len)).max(tracking.map(|f| (f.offset, f.len)))
    else {
        return true;
    };
    let (offset, len) = (offset as usize, len as usize);
    let Some(bytes) = maps[last].1.get(offset..offset + len) else { return false };
    LogFrame::decode(bytes).is_ok_and(|frame| frame.batch_index() + 1 == frame.batch_len())
}

/// Causal links read from frames: `(sequence, causation id, correlation id)`.
type Links = Vec<(u64, Option<EventId>, EventId)>;

/// Events below which one thread checks every frame: starting threads costs more than it
/// saves on a small log.
const PARALLEL_MIN_EVENTS: usize = 1 << 16;

/// Checks that every event frame the index places is intact and is the event the index
/// holds there (CRC, sequence, id), the log split among up to [`MAX_THREADS`] threads.
/// With `read_links`, also returns each frame's causal links. `None`: a frame failed.
fn frames_intact(index: &Index, maps: &[(SegmentHeader, Mmap)], read_links: bool) -> Option<Links> {
    let n = index.entries.len();
    let threads = if n < PARALLEL_MIN_EVENTS { 1 } else { available_threads() };
    let check = |range: Range<usize>| check_frames(index, maps, range, read_links);
    if threads == 1 {
        return check(0..n);
    }
    let per = n.div_ceil(threads);
    let parts: Vec<Option<Links>> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .map(|t| {
                let range = (t * per).min(n)..((t + 1) * per).min(n);
                let part = range.clone();
                let spawned = std::thread::Builder::new()
                    .name("eventpak-open".into())
                    .spawn_scoped(scope, move || check(part));
                (spawned, range)
            })
            .collect();
        let mut parts = vec![check(0..per.min(n))];
        for (spawned, range) in helpers {
            parts.push(match spawned {
                Ok(helper) => helper.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                // No thread to be had: this one checks that part too.
                Err(_) => check(range),
            });
        }
        parts
    });
    let mut links = Vec::new();
    for part in parts {
        links.extend(part?);
    }
    Some(links)
}

/// [`frames_intact`] for the events at `range`, on the calling thread.
fn check_frames(
    index: &Index,
    maps: &[(SegmentHeader, Mmap)],
    range: Range<usize>,
    read_links: bool,
) -> Option<Links> {
    let mut links = Vec::new();
    for seq in range {
        let meta = &index.entries[seq];
        if meta.is_hole() {
            continue;
        }
        let start = meta.offset as usize;
        let bytes = maps.get(meta.segment as usize)?.1.get(start..start + meta.len as usize)?;
        let Decoded::Frame(event) = decode_frame(bytes) else { return None };
        if event.global_sequence != seq as u64
            || u128::from_be_bytes(event.event_id()) != index.event_ids[seq]
        {
            return None;
        }
        if read_links {
            links.push((seq as u64, event.causation_id(), event.correlation_id()));
        }
    }
    Some(links)
}

/// Most threads an open checks frames on.
const MAX_THREADS: usize = 8;

/// The threads an open may check frames on: the cores there are, at most [`MAX_THREADS`].
fn available_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS))
}

#[cfg(test)]
mod tests {
    use crate::index::{load_checkpoint, write_checkpoint, TrackingIndex};
    use crate::io::OsStorage;
    use crate::{AppendRequest, CommitGuards, Region, Store, StoreConfig, Tracking};

    /// An index checkpoint whose cover ends between a batch's event and its tracking record
    /// (what a shared-mode follower of an older build wrote at close) is stale: the open
    /// scans instead of starting mid-batch and failing with "frame out of place".
    #[test]
    fn a_checkpoint_ending_inside_a_batch_is_stale_and_the_open_scans() {
        let dir = tempfile::tempdir().unwrap();
        let request = |entity: &str| AppendRequest {
            entity: entity.into(),
            scope: "s".into(),
            kind: "k".into(),
            payload: b"p".to_vec(),
            ..Default::default()
        };
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        store.append(request("a")).unwrap();
        let tracked =
            CommitGuards { tracking: Some(Tracking::new("mailer", 7).unwrap()), ..CommitGuards::none() };
        store.append_batch_guarded(vec![request("b")], tracked).unwrap();
        store.close().unwrap();
        drop(store);

        let (mut index, mut cover) = load_checkpoint(dir.path()).unwrap().expect("close wrote one");
        let record = index.tracking.frames()[0];
        index.tracking = TrackingIndex::default();
        cover.segments.last_mut().unwrap().1 = record.offset;
        write_checkpoint(&OsStorage, dir.path(), &index, &cover).unwrap();

        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        assert_eq!(store.query(&Region::all(), None, None).unwrap().len(), 2);
        assert_eq!(store.tracking_position("mailer").unwrap(), Some(7));
    }
}
