//! The full integrity check: every frame of every segment re-read and re-hashed, every
//! chain link and clock followed, the in-memory index compared with the log, and the side
//! files parsed. It reports problems instead of failing, and runs beside appends: it checks
//! the log up to the head it saw when it started.

use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::Store;
use crate::cursor_checkpoint::CursorCheckpoint;
use crate::error::{Error, Result};
use crate::event::{chain_hash, Hash, HashedFields};
use crate::index::{EntryMeta, Index};
use crate::segment::layout::SEGMENT_PADDING_OFFSET;
use crate::segment::{
    decode_frame, load_seals, Decoded, FrameView, SegmentHeader, SEALS_FILE, SEGMENT_HEADER_LEN,
    SEGMENT_VERSION,
};
use crate::visibility::Visibility;

/// One thing `verify` found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyProblem {
    /// The file it is in.
    pub path: PathBuf,
    /// Byte offset in that file (0 when the whole file is concerned).
    pub offset: u64,
    /// The global sequence concerned, when one is.
    pub sequence: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

/// What `verify` checked and found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events checked (the head seen at the start, plus one).
    pub events: u64,
    /// Segment files checked.
    pub segments: u64,
    /// Segment bytes read.
    pub bytes: u64,
    /// Everything found wrong, in the order found (at most [`MAX_PROBLEMS`]).
    pub problems: Vec<VerifyProblem>,
    /// Problems found beyond [`MAX_PROBLEMS`], counted only.
    pub problems_not_listed: u64,
}

impl VerifyReport {
    /// True when nothing was found wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// At most this many problems are listed; the rest are counted.
pub const MAX_PROBLEMS: usize = 1000;
/// Progress is reported about this often (bytes).
const PROGRESS_EVERY: u64 = 8 << 20;
/// Index entries are compared this many at a time, so appends wait at most for one chunk.
const INDEX_CHUNK: u64 = 64 * 1024;

/// What the check compares the log with, taken under the index lock at the start.
struct Snapshot {
    /// Events to check: up to the head seen at the start (an open fence's events excluded).
    events: u64,
    /// `(id, path, bytes to read)` of each segment.
    segments: Vec<(u64, PathBuf, u64)>,
    visibility: Visibility,
}

/// Whether the frame at `at` (already decoded once) holds the hash of its own content.
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
    };
    chain_hash(&frame.prev_hash(), fields) == frame.hash()
}

/// Per-entity chain state while walking the log.
#[derive(Clone, Copy, Default)]
struct Chain {
    next_clock: u64,
    head: Hash,
    /// The previous event's frame was damaged: its hash is unknown, so the next link is
    /// not checked (the damage itself is already reported).
    head_lost: bool,
}

struct Checker<'a> {
    store: &'a Store,
    snapshot: Snapshot,
    report: VerifyReport,
    chains: Vec<Chain>,
    next_seq: u64,
    last_id: u128,
    /// The position the next frame must have in its batch, and that batch's length (`(0, 0)`
    /// between batches).
    batch: (u32, u32),
    /// Index entries and ids of the current chunk, copied out under the lock.
    chunk: (u64, Vec<EntryMeta>, Vec<u128>),
    done: u64,
    since_progress: u64,
    total: u64,
    /// `(offset, sequence)` of the current segment's frames whose hash is still to check.
    to_hash: Vec<(u64, u64)>,
}

impl Store {
    /// Checks everything on disk against itself and the index (see the module docs).
    /// `progress(done_bytes, total_bytes)` is called as it goes; returning `false` stops
    /// the check early (the report then covers what was checked).
    pub fn verify(&self, progress: &mut dyn FnMut(u64, u64) -> bool) -> Result<VerifyReport> {
        self.check_open()?;
        let snapshot = self.verify_snapshot()?;
        let total = snapshot.segments.iter().map(|(_, _, len)| len).sum();
        let mut checker = Checker {
            store: self,
            report: VerifyReport { events: snapshot.events, ..Default::default() },
            chains: Vec::new(),
            next_seq: 0,
            last_id: 0,
            batch: (0, 0),
            chunk: (0, Vec::new(), Vec::new()),
            done: 0,
            since_progress: 0,
            total,
            to_hash: Vec::new(),
            snapshot,
        };
        if !checker.check_segments(progress)? {
            return Ok(checker.report);
        }
        checker.check_side_files();
        progress(checker.total, checker.total);
        Ok(checker.report)
    }

    fn verify_snapshot(&self) -> Result<Snapshot> {
        let index = self.shared.index.read();
        let visibility = index.visibility.clone();
        let events = visibility.open_fence.map_or(index.len(), |start| start.min(index.len()));
        // How far each segment holds the events being checked: the end of its last one,
        // or its header alone.
        let files = self.shared.segments.list();
        let mut ends = vec![SEGMENT_HEADER_LEN as u64; files.len()];
        for meta in index.entries.iter().take(events as usize) {
            let end = meta.offset + meta.len as u64;
            ends[meta.segment as usize] = ends[meta.segment as usize].max(end);
        }
        let segments = files.into_iter().zip(ends).map(|((id, path), end)| (id, path, end)).collect();
        Ok(Snapshot { events, segments, visibility })
    }
}

fn map(path: &Path) -> std::io::Result<Mmap> {
    let file = std::fs::File::open(path)?;
    // SAFETY: segments are append-only; the part read here is never rewritten.
    unsafe { Mmap::map(&file) }
}

impl Checker<'_> {
    fn problem(&mut self, path: &Path, offset: u64, sequence: Option<u64>, reason: impl Into<String>) {
        if self.report.problems.len() < MAX_PROBLEMS {
            let reason = reason.into();
            self.report.problems.push(VerifyProblem { path: path.to_owned(), offset, sequence, reason });
        } else {
            self.report.problems_not_listed += 1;
        }
    }

    /// Counts `n` bytes as checked and reports progress every few megabytes; `false` when
    /// the caller asked to stop.
    fn advance(&mut self, n: u64, progress: &mut dyn FnMut(u64, u64) -> bool) -> bool {
        self.done += n;
        self.since_progress += n;
        if self.since_progress < PROGRESS_EVERY {
            return true;
        }
        self.since_progress = 0;
        progress(self.done, self.total)
    }

    /// Walks every segment; `Ok(false)` when `progress` asked to stop.
    fn check_segments(&mut self, progress: &mut dyn FnMut(u64, u64) -> bool) -> Result<bool> {
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
            let bytes = match map(path) {
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
            match seal {
                Some(seal) if seal.len != file_len => {
                    let why = format!("sealed at {} bytes but {file_len} bytes long", seal.len);
                    self.problem(path, file_len, None, why);
                }
                None if seals.is_some()
                    && position < newest
                    && SegmentHeader::version_of(&bytes) >= SEGMENT_VERSION =>
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
            let mut framed = true;
            while at < end && self.next_seq < self.report.events {
                let Some(len) = self.check_frame(path, position as u32, &bytes[..end as usize], at)? else {
                    framed = false; // framing is lost for the rest of this segment
                    break;
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
            if framed && self.batch.0 != 0 {
                self.problem(path, at, Some(self.next_seq), "segment ends inside a batch");
            }
            // Whatever could not be framed still counts as gone through.
            self.done += end.saturating_sub(at);
            // Only a segment checked to its end can be compared with its seal: the newest one
            // may have taken events (or an open fence's) past the snapshot since.
            if let Some(seal) = seal.filter(|s| s.next_sequence != self.next_seq && at == file_len) {
                let why = format!(
                    "seal record ends at sequence {}, the segment at {}",
                    seal.next_sequence, self.next_seq
                );
                self.problem(path, at, None, why);
            }
        }
        if self.next_seq < self.report.events {
            let path = self.store.shared.data_dir.join(crate::segment::SEGMENTS_DIR);
            let why = format!("the log holds {} of the {} indexed events", self.next_seq, self.report.events);
            self.problem(&path, 0, Some(self.next_seq), why);
        }
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
        // Outside the header CRC, so open never looks: zeros as written, or damage.
        if bytes[SEGMENT_PADDING_OFFSET..SEGMENT_HEADER_LEN].iter().any(|&b| b != 0) {
            self.problem(path, SEGMENT_PADDING_OFFSET as u64, None, "segment header padding is not zero");
        }
        // A segment begun during an open fence holds only the fence's events, which are not
        // checked yet: it starts past them.
        let unchecked = self.snapshot.visibility.open_fence.is_some()
            && self.next_seq == self.report.events
            && header.base_sequence > self.next_seq;
        if header.base_sequence != self.next_seq && !unchecked {
            let why =
                format!("segment starts at sequence {}, expected {}", header.base_sequence, self.next_seq);
            self.problem(path, 0, Some(self.next_seq), why);
            self.next_seq = header.base_sequence;
        }
        true
    }

    /// Checks the frame at `at`; its length, or `None` when it cannot be decoded.
    fn check_frame(&mut self, path: &Path, segment: u32, bytes: &[u8], at: u64) -> Result<Option<u64>> {
        let seq = self.next_seq;
        let frame = match decode_frame(&bytes[at as usize..]) {
            Decoded::Frame(frame) => frame,
            Decoded::Short => {
                self.problem(path, at, Some(seq), "frame cut short");
                return Ok(None);
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
        if frame.batch_index != expected || (expected > 0 && frame.batch_len != open_len) {
            self.problem(path, at, Some(seq), "frame out of place in its batch");
        }
        let more = frame.batch_index + 1 < frame.batch_len;
        self.batch = if more { (frame.batch_index + 1, frame.batch_len) } else { (0, 0) };
        let id = u128::from_be_bytes(frame.event_id());
        if id <= self.last_id {
            self.problem(path, at, Some(seq), "event ids out of order");
        }
        self.last_id = id;
        self.to_hash.push((at, seq));
        self.check_against_index(path, segment, at, seq, &frame)?;
        Ok(Some(frame.len as u64))
    }

    /// After a frame that does not decode: when the index places event `seq` exactly there,
    /// its length tells where the next frame starts, so the rest of the segment is still
    /// checked; otherwise the framing is lost (`None`).
    fn skip_by_index(&mut self, segment: u32, at: u64, seq: u64) -> Option<u64> {
        let index = self.store.shared.index.read();
        let meta = index.entries.get(seq as usize).copied()?;
        drop(index);
        if meta.segment != segment || meta.offset != at {
            return None;
        }
        self.next_seq += 1;
        if meta.visible {
            // The entity's clock moves on as the index says; its chain head is unknown.
            if self.chains.len() <= meta.entity as usize {
                self.chains.resize(meta.entity as usize + 1, Chain::default());
            }
            let chain = &mut self.chains[meta.entity as usize];
            *chain = Chain { next_clock: meta.entity_sequence + 1, head: [0; 32], head_lost: true };
        }
        Some(meta.len as u64)
    }

    /// Recomputes the hash of every frame in `to_hash` (offsets into `bytes`, all decoded
    /// already), spread over the machine's cores: hashing is most of the check's work and
    /// each frame's hash depends on that frame alone.
    fn check_hashes(&mut self, path: &Path, bytes: &[u8]) {
        let frames = std::mem::take(&mut self.to_hash);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        let per_thread = frames.len().div_ceil(threads).max(1);
        let mut bad: Vec<(u64, u64)> = std::thread::scope(|scope| {
            let workers: Vec<_> = frames
                .chunks(per_thread)
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk.iter().copied().filter(|&(at, _)| !hash_holds(bytes, at)).collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
        });
        bad.sort_unstable();
        for (at, seq) in bad {
            self.problem(path, at, Some(seq), "event hash does not match its content");
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
        let clock_ok = frame.entity_sequence() == chain.next_clock;
        let link_ok = chain.head_lost || frame.prev_hash() == chain.head;
        *chain = Chain { next_clock: frame.entity_sequence() + 1, head: frame.hash(), head_lost: false };
        if !clock_ok {
            self.problem(path, at, Some(seq), "entity clock out of order");
        }
        if !link_ok {
            self.problem(path, at, Some(seq), "prev_hash does not name the entity's previous event");
        }
        Ok(())
    }

    /// `hidden.ranges` and every cursor checkpoint must parse.
    fn check_side_files(&mut self) {
        let dir = self.store.shared.data_dir.clone();
        match Visibility::load(&dir) {
            Ok(on_disk) => {
                let lost = self.snapshot.visibility.cancelled.iter().any(|r| !on_disk.cancelled.contains(r));
                if lost {
                    let path = dir.join(crate::visibility::HIDDEN_RANGES_FILE);
                    self.problem(&path, 0, None, "hidden.ranges lacks a cancelled range the store holds");
                }
            }
            Err(e) => self.side_file_problem(&dir, e),
        }
        let cursors = dir.join(crate::cursor_checkpoint::CURSORS_DIR);
        let Ok(entries) = std::fs::read_dir(&cursors) else { return };
        let mut names: Vec<String> =
            entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_owned)).collect();
        names.sort();
        for name in names {
            let Some(id) = name.strip_suffix(".ckpt") else { continue };
            match CursorCheckpoint::load(&dir, id) {
                Ok(Some(c)) if c.position > self.report.events && c.started => {
                    let why = format!("position {} is past the end of the log", c.position);
                    self.problem(&cursors.join(&name), 0, None, why);
                }
                Ok(_) => {}
                Err(e) => self.side_file_problem(&cursors.join(&name), e),
            }
        }
    }

    fn side_file_problem(&mut self, fallback: &Path, e: Error) {
        let (path, reason) = match e {
            Error::CorruptSegment { path, reason, .. } => (path, reason),
            Error::CursorCheckpointCorrupt { path, reason } => (path, reason),
            other => (fallback.to_owned(), other.to_string()),
        };
        self.problem(&path, 0, None, reason);
    }
}

impl Index {
    /// True when the causal indexes hold what the frame at `seq` says: its link to a cause
    /// that is an earlier event here, and its correlation when that is not its own id.
    pub(crate) fn causal_agrees(
        &self,
        seq: u64,
        causation_id: Option<[u8; 16]>,
        correlation_id: [u8; 16],
    ) -> bool {
        let earlier = &self.event_ids[..seq as usize];
        let cause = causation_id.and_then(|c| earlier.binary_search(&u128::from_be_bytes(c)).ok());
        let linked = cause.is_none_or(|c| self.causal.effects.get(&(c as u64)).binary_search(&seq).is_ok());
        let correlation = u128::from_be_bytes(correlation_id);
        let own = correlation == self.event_ids[seq as usize];
        linked && (own || self.causal.correlated.get(&correlation).binary_search(&seq).is_ok())
    }
}
