//! Walking the segments for `verify`: headers, framing, every frame checked and compared
//! with the index, chains and clocks followed, hashes recomputed on every core.

use std::path::Path;

use super::{Chain, Checker, INDEX_CHUNK};
use crate::crypt::PayloadKeys;
use crate::error::{Error, Result};
use crate::event::{chain_hash, HashedFields};
use crate::segment::layout::SEGMENT_PADDING_OFFSET;
use crate::segment::{
    decode_frame, load_seals, map_segment, Decoded, FrameView, SegmentHeader, FIRST_SEALED_VERSION,
    SEALS_FILE, SEGMENT_HEADER_LEN,
};
use crate::store::forget::open_view;

/// What is wrong with the frame at `at` (already decoded once): a hash that is not that of
/// its own content, or, in an encrypted store, a payload that does not open (a key the key
/// file lost, a sealed payload altered); a forgotten entity's payload is no problem.
fn frame_problem(bytes: &[u8], at: u64, keys: Option<&PayloadKeys>) -> Option<String> {
    if !hash_holds(bytes, at) {
        return Some("event hash does not match its content".into());
    }
    let frame = FrameView::trusted(&bytes[at as usize..]);
    match keys.map(|keys| open_view(keys, &frame)) {
        Some(Err(Error::PayloadForgotten { .. })) | Some(Ok(_)) | None => None,
        Some(Err(e)) => Some(format!("payload does not open: {e}")),
    }
}

/// Whether the frame at `at` holds the hash of its own content.
fn hash_holds(bytes: &[u8], at: u64) -> bool {
    let frame = FrameView::trusted(&bytes[at as usize..]);
    let (entity, scope, kind) = frame.names();
    let fields = HashedFields {
        entity_sequence: frame.entity_sequence(),
        entity,
        scope,
        kind,
        payload_version: frame.payload_version(),
        payload: frame.payload(),
        tags: frame.tags_section(),
    };
    chain_hash(&frame.prev_hash(), fields) == frame.hash()
}

/// What checking one frame found.
pub(super) enum Step {
    /// The frame was checked; it is this long.
    Checked(u64),
    /// It does not decode and the index does not say how long it is: framing is lost.
    Lost,
    /// It is an event past those being checked (an open fence's): the walk stops here.
    Past,
}

impl Checker<'_> {
    /// Walks every segment; `Ok(false)` when `progress` asked to stop.
    pub(super) fn check_segments(&mut self, progress: &mut dyn FnMut(u64, u64) -> bool) -> Result<bool> {
        let segments_dir = self.store.shared.data_dir.join(crate::segment::SEGMENTS_DIR);
        // Loaded after the snapshot: every segment before the newest it lists was sealed
        // before the next one was created, so its record is there.
        let seals = match load_seals(&segments_dir) {
            Ok(seals) => Some(seals.by_segment),
            Err(Error::CorruptSegment { path, offset, reason }) => {
                self.problem(&path, offset, None, reason);
                None
            }
            Err(e) => {
                self.problem(&segments_dir.join(SEALS_FILE), 0, None, e.to_string());
                None
            }
        };
        let segments = std::mem::take(&mut self.snapshot.segments);
        let newest = segments.len().saturating_sub(1);
        for (position, (id, path, end)) in segments.iter().enumerate() {
            self.report.segments += 1;
            let bytes = match map_segment(path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    self.problem(path, 0, None, format!("unreadable: {e}"));
                    continue;
                }
            };
            let seal = seals.as_ref().and_then(|seals| seals.get(id).copied());
            let file_len = bytes.len() as u64;
            let end = if position < newest { file_len } else { *end };
            if !self.check_header(path, *id, &bytes) {
                continue;
            }
            let sealed_len = seal.map(|s| self.snapshot.compacted.segment_len(*id, s.len));
            match seal {
                Some(_) if sealed_len != Some(file_len) => {
                    let why =
                        format!("sealed at {} bytes but {file_len} bytes long", sealed_len.unwrap_or(0));
                    self.problem(path, file_len, None, why);
                }
                None if seals.is_some()
                    && position < newest
                    && SegmentHeader::version_of(&bytes) >= FIRST_SEALED_VERSION =>
                {
                    self.problem(path, 0, None, "a segment before the newest has no seal record");
                }
                _ => {}
            }
            if end > file_len {
                let why = format!("{file_len} bytes long, but its indexed events end at {end}");
                self.problem(path, file_len, None, why);
            }
            let end = end.min(file_len);
            let mut at = SEGMENT_HEADER_LEN as u64;
            self.report.bytes += at;
            if !self.advance(at, progress) {
                return Ok(false);
            }
            self.batch = (0, 0);
            self.loose_batches = SegmentHeader::is_compacted(&bytes);
            let mut framed = true;
            while at < end {
                let len = match self.check_frame(path, position as u32, &bytes[..end as usize], at)? {
                    Step::Checked(len) => len,
                    Step::Past => break,
                    Step::Lost => {
                        framed = false; // framing is lost for the rest of this segment
                        break;
                    }
                };
                at += len;
                self.report.bytes += len;
                if !self.advance(len, progress) {
                    self.check_hashes(path, &bytes[..at as usize]);
                    return Ok(false);
                }
            }
            self.check_hashes(path, &bytes[..end as usize]);
            // Batches are written whole, and the events checked end at a batch boundary.
            if framed && self.batch.0 != 0 && !self.batch_lost && !self.loose_batches {
                self.problem(path, at, Some(self.next_seq), "segment ends inside a batch");
            }
            // Whatever could not be framed still counts as gone through.
            self.done += end.saturating_sub(at);
            // Only a segment checked to its end can be compared with its seal: the newest one
            // may have taken events (or an open fence's) past the snapshot since. Its last
            // events may have been removed.
            if let Some(seal) = seal.filter(|s| at == file_len && s.next_sequence > self.next_seq) {
                if self.snapshot.compacted.covers(self.next_seq, seal.next_sequence) {
                    self.next_seq = seal.next_sequence;
                }
            }
            if let Some(seal) = seal.filter(|s| s.next_sequence != self.next_seq && at == file_len) {
                let why = format!(
                    "seal record ends at sequence {}, the segment at {}",
                    seal.next_sequence, self.next_seq
                );
                self.problem(path, at, None, why);
            }
        }
        if self.next_seq < self.snapshot.events {
            let path = self.store.shared.data_dir.join(crate::segment::SEGMENTS_DIR);
            let why =
                format!("the log holds {} of the {} indexed events", self.next_seq, self.snapshot.events);
            self.problem(&path, 0, Some(self.next_seq), why);
        }
        self.check_record_counts();
        Ok(true)
    }

    fn check_header(&mut self, path: &Path, id: u64, bytes: &[u8]) -> bool {
        let header = match SegmentHeader::decode(bytes) {
            Ok(header) => header,
            Err(why) => {
                self.problem(path, 0, None, why);
                return false;
            }
        };
        if header.segment_id != id {
            self.problem(path, 0, None, format!("header names segment {}", header.segment_id));
        }
        let rewritten = self.snapshot.compacted.segments.contains_key(&id);
        if SegmentHeader::is_compacted(bytes) && !rewritten {
            self.problem(path, 0, None, "a segment marked compacted that no compaction rewrote");
        }
        // Outside the header CRC, so open never looks: zeros as written, or damage.
        if bytes[SEGMENT_PADDING_OFFSET..SEGMENT_HEADER_LEN].iter().any(|&b| b != 0) {
            self.problem(path, SEGMENT_PADDING_OFFSET as u64, None, "segment header padding is not zero");
        }
        // A segment begun during an open fence holds only the fence's events, which are not
        // checked yet: it starts past them.
        let unchecked = self.snapshot.visibility.open_fence.is_some()
            && self.next_seq == self.snapshot.events
            && header.base_sequence > self.next_seq;
        // The previous segment's last events were removed.
        if header.base_sequence > self.next_seq
            && self.snapshot.compacted.covers(self.next_seq, header.base_sequence)
        {
            self.next_seq = header.base_sequence;
        }
        if header.base_sequence != self.next_seq && !unchecked {
            let why =
                format!("segment starts at sequence {}, expected {}", header.base_sequence, self.next_seq);
            self.problem(path, 0, Some(self.next_seq), why);
            self.next_seq = header.base_sequence;
        }
        true
    }

    /// Checks the frame at `at`: an event, or a tracking record.
    fn check_frame(&mut self, path: &Path, segment: u32, bytes: &[u8], at: u64) -> Result<Step> {
        let past = self.next_seq >= self.snapshot.events;
        let decoded = decode_frame(&bytes[at as usize..]);
        if let Decoded::Frame(frame) = &decoded {
            self.jump_holes(frame.global_sequence);
        }
        let seq = self.next_seq;
        let frame = match decoded {
            Decoded::Frame(_) | Decoded::Short | Decoded::Bad(_) if past => return Ok(Step::Past),
            Decoded::Frame(frame) => frame,
            Decoded::Tracking(tracking) => return Ok(self.check_tracking(path, segment, at, &tracking)),
            Decoded::Short => {
                self.problem(path, at, Some(seq), "frame cut short");
                return Ok(Step::Lost);
            }
            Decoded::Bad(why) => {
                self.problem(path, at, Some(seq), why);
                return Ok(self.skip_by_index(segment, at, seq));
            }
        };
        self.next_seq += 1;
        if frame.global_sequence != seq {
            self.problem(path, at, Some(seq), format!("frame holds sequence {}", frame.global_sequence));
        }
        let (expected, open_len) = self.batch;
        // After a frame that could not be decoded, the batch it was part of is unknown: the
        // position check restarts from this frame (the damage itself is already reported).
        let misplaced = frame.batch_index != expected || (expected > 0 && frame.batch_len != open_len);
        if misplaced && !std::mem::take(&mut self.batch_lost) && !self.loose_batches {
            self.problem(path, at, Some(seq), "frame out of place in its batch");
        }
        self.batch_lost = false;
        let more = frame.batch_index + 1 < frame.batch_len;
        self.batch = if more { (frame.batch_index + 1, frame.batch_len) } else { (0, 0) };
        let id = u128::from_be_bytes(frame.event_id());
        if id <= self.last_id {
            self.problem(path, at, Some(seq), "event ids out of order");
        }
        self.last_id = id;
        self.to_hash.push((at, seq));
        self.check_against_index(path, segment, at, seq, &frame)?;
        Ok(Step::Checked(frame.len as u64))
    }

    /// On a replica, moves past the holes before an event frame that jumps ahead: the
    /// index must hold exactly those numbers as holes, or the jump is reported as the
    /// frame's wrong sequence.
    fn jump_holes(&mut self, frame_sequence: u64) {
        if frame_sequence <= self.next_seq {
            return;
        }
        if self.snapshot.compacted.covers(self.next_seq, frame_sequence) {
            self.next_seq = frame_sequence; // removed by compaction (holes in the index too)
            return;
        }
        if !self.store.is_replica() {
            return;
        }
        let index = self.store.shared.index.read();
        let holes = (self.next_seq..frame_sequence).all(|s| index.entry(s).is_some_and(|m| m.is_hole()));
        drop(index);
        if holes {
            self.next_seq = frame_sequence;
        }
    }

    /// After a frame that does not decode: when the index places event `seq` (or a tracking
    /// record) exactly there, its length tells where the next frame starts, so the rest of
    /// the segment is still checked; otherwise the framing is lost.
    fn skip_by_index(&mut self, segment: u32, at: u64, seq: u64) -> Step {
        let index = self.store.shared.index.read();
        if let Some(tracked) = index.tracking.frame_at(segment, at) {
            self.batch_lost = true;
            self.tracking_seen += 1;
            return Step::Checked(tracked.len as u64);
        }
        let Some(meta) = index.entries.get(seq as usize).copied() else { return Step::Lost };
        drop(index);
        if meta.segment != segment || meta.offset != at {
            return Step::Lost;
        }
        self.next_seq += 1;
        self.batch_lost = true;
        if meta.visible {
            // The entity's clock moves on as the index says; its chain head is unknown.
            if self.chains.len() <= meta.entity as usize {
                self.chains.resize(meta.entity as usize + 1, Chain::default());
            }
            let chain = &mut self.chains[meta.entity as usize];
            *chain = Chain { next_clock: meta.entity_sequence + 1, head: [0; 32], head_lost: true };
        }
        Step::Checked(meta.len as u64)
    }

    /// Recomputes the hash of every frame in `to_hash` (offsets into `bytes`, all decoded
    /// already), spread over the machine's cores: hashing is most of the check's work and
    /// each frame's hash depends on that frame alone.
    fn check_hashes(&mut self, path: &Path, bytes: &[u8]) {
        let frames = std::mem::take(&mut self.to_hash);
        let keys = self.store.shared.keys.as_ref();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        let per_thread = frames.len().div_ceil(threads).max(1);
        let mut bad: Vec<(u64, u64, String)> = std::thread::scope(|scope| {
            let workers: Vec<_> = frames
                .chunks(per_thread)
                .map(|chunk| {
                    scope.spawn(move || {
                        let found = chunk.iter().map(|&(at, seq)| (at, seq, frame_problem(bytes, at, keys)));
                        found.filter_map(|(at, seq, why)| Some((at, seq, why?))).collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
        });
        bad.sort_unstable();
        for (at, seq, why) in bad {
            self.problem(path, at, Some(seq), why);
        }
    }

    /// The index entry of `seq` must describe this frame, the frame must continue its
    /// entity's chain (visible events only: hidden ones were chained provisionally), and
    /// its causal links must be indexed.
    fn check_against_index(
        &mut self,
        path: &Path,
        segment: u32,
        at: u64,
        seq: u64,
        frame: &FrameView<'_>,
    ) -> Result<()> {
        if seq < self.chunk.0 || seq >= self.chunk.0 + self.chunk.1.len() as u64 {
            let index = self.store.shared.index.read();
            let end = (seq + INDEX_CHUNK).min(index.len());
            let range = seq as usize..end as usize;
            self.chunk = (seq, index.entries[range.clone()].to_vec(), index.event_ids[range].to_vec());
        }
        let i = (seq - self.chunk.0) as usize;
        let (Some(meta), Some(&id)) = (self.chunk.1.get(i).copied(), self.chunk.2.get(i)) else {
            self.problem(path, at, Some(seq), "no index entry for this event");
            return Ok(());
        };
        let index = self.store.shared.index.read();
        let (entity, scope, kind) = frame.names();
        let names_agree = **index.entity_names.name(meta.entity) == *entity
            && **index.scope_names.name(meta.scope) == *scope
            && **index.kind_names.name(meta.kind) == *kind;
        let place_agrees = meta.segment == segment && meta.offset == at && meta.len as usize == frame.len;
        if !names_agree || !place_agrees || id != u128::from_be_bytes(frame.event_id()) {
            self.problem(path, at, Some(seq), "the index entry disagrees with the frame");
        }
        let hidden = self.snapshot.visibility.is_cancelled(seq);
        if meta.visible == hidden {
            self.problem(path, at, Some(seq), "visibility disagrees with hidden.ranges");
        }
        if !index.causal_agrees(seq, frame.causation_id(), frame.correlation_id()) {
            self.problem(path, at, Some(seq), "causal indexes disagree with the frame");
        }
        if !hidden {
            let posted =
                frame.tags().filter(|tag| index.tag_postings(tag).binary_search(&seq).is_ok()).count();
            self.tag_postings_seen += posted as u64;
            if posted != frame.tags().count() {
                self.problem(path, at, Some(seq), "the tag index misses a tag of the frame");
            }
        }
        // The chain followed is the one the frame names: keyed by the index entry instead,
        // a frame out of place would derail its neighbours' chains and report them too.
        let chain_entity = index.entity_names.get(entity);
        drop(index);
        let Some(entity) = chain_entity.map(|e| e as usize).filter(|_| !hidden) else {
            return Ok(()); // hidden, or a name the index lacks (reported above)
        };
        if self.chains.len() <= entity {
            self.chains.resize(entity + 1, Chain::default());
        }
        let chain = &mut self.chains[entity];
        // A clock that jumps over removed events cannot be chain-checked against them.
        let over_removed = self.snapshot.compacted.is_active() && frame.entity_sequence() > chain.next_clock;
        let clock_ok = over_removed || frame.entity_sequence() == chain.next_clock;
        let link_ok = over_removed || chain.head_lost || frame.prev_hash() == chain.head;
        *chain = Chain { next_clock: frame.entity_sequence() + 1, head: frame.hash(), head_lost: false };
        if !clock_ok {
            self.problem(path, at, Some(seq), "entity clock out of order");
        }
        if !link_ok {
            self.problem(path, at, Some(seq), "prev_hash does not name the entity's previous event");
        }
        Ok(())
    }
}
