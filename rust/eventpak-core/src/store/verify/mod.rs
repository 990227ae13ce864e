//! The full integrity check: every frame of every segment re-read and re-hashed, every
//! chain link and clock followed, the in-memory index compared with the log, and the side
//! files parsed. It reports problems instead of failing, and runs beside appends: it checks
//! the log up to the head it saw when it started.

mod frames;
mod records;
mod side_files;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::Store;
use crate::error::Result;
use crate::event::Hash;
use crate::index::EntryMeta;
use crate::segment::SEGMENT_HEADER_LEN;
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
    /// Events checked: those the log holds up to the head seen at the start (events a
    /// compaction removed are not counted, as in `Stats::events`).
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
    /// Sequences to check: up to the head seen at the start (an open fence's events excluded).
    events: u64,
    /// Events among them that the log holds (the rest were removed by compaction).
    held: u64,
    /// `(id, path, bytes to read)` of each segment.
    segments: Vec<(u64, PathBuf, u64)>,
    visibility: Visibility,
    /// What compaction removed: holes the walk steps over, rewritten segments' lengths.
    compacted: crate::compaction::Compacted,
    /// Tracking records among the frames to check.
    tracking_records: u64,
    /// Tag postings of the events to check.
    tag_postings: u64,
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
    /// A frame was skipped (it did not decode): its batch position is unknown.
    batch_lost: bool,
    /// The segment being walked was rewritten by compaction: batches may have lost events.
    loose_batches: bool,
    /// Index entries and ids of the current chunk, copied out under the lock.
    chunk: (u64, Vec<EntryMeta>, Vec<u128>),
    done: u64,
    since_progress: u64,
    total: u64,
    /// `(offset, sequence)` of the current segment's frames whose hash is still to check.
    to_hash: Vec<(u64, u64)>,
    /// Tracking records found, and the last position found for each name.
    tracking_seen: u64,
    tracking_last: HashMap<String, u64>,
    /// Tags of visible events found posted in the tag index.
    tag_postings_seen: u64,
}

impl Store {
    /// Checks everything on disk against itself and the index (see the module docs).
    /// `progress(done_bytes, total_bytes)` is called as it goes; returning `false` stops
    /// the check early (the report then covers what was checked).
    pub fn verify(&self, progress: &mut dyn FnMut(u64, u64) -> bool) -> Result<VerifyReport> {
        self.check_open()?;
        // A compaction swaps segments: the check sees the log before one or after it.
        let _no_compaction = self.hold_off_compaction("verify()")?;
        let snapshot = self.verify_snapshot()?;
        let total = snapshot.segments.iter().map(|(_, _, len)| len).sum();
        let mut checker = Checker {
            store: self,
            report: VerifyReport { events: snapshot.held, ..Default::default() },
            chains: Vec::new(),
            next_seq: 0,
            last_id: 0,
            batch: (0, 0),
            batch_lost: false,
            loose_batches: false,
            chunk: (0, Vec::new(), Vec::new()),
            done: 0,
            since_progress: 0,
            total,
            to_hash: Vec::new(),
            tracking_seen: 0,
            tracking_last: HashMap::new(),
            tag_postings_seen: 0,
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
        let index = self.index()?;
        let visibility = index.visibility.clone();
        let compacted = index.compacted.clone();
        let events = visibility.open_fence.map_or(index.len(), |start| start.min(index.len()));
        // How far each segment holds the events being checked: the end of its last one,
        // or its header alone.
        let files = self.shared.segments.list();
        self.check_open()?; // closed meanwhile, its segments may be released
        let mut ends = vec![SEGMENT_HEADER_LEN as u64; files.len()];
        let mut held = 0;
        for meta in index.entries.iter().take(events as usize).filter(|m| !m.is_hole()) {
            held += 1;
            let end = meta.offset + meta.len as u64;
            ends[meta.segment as usize] = ends[meta.segment as usize].max(end);
        }
        let tracked: Vec<_> = index.tracking.frames.iter().filter(|f| f.sequence <= events).collect();
        for f in &tracked {
            ends[f.segment as usize] = ends[f.segment as usize].max(f.offset + f.len as u64);
        }
        let tag_postings = index.tag_postings.iter().map(|p| p.partition_point(|&s| s < events) as u64).sum();
        let segments = files.into_iter().zip(ends).map(|((id, path), end)| (id, path, end)).collect();
        let tracking_records = tracked.len() as u64;
        Ok(Snapshot { events, held, segments, visibility, compacted, tracking_records, tag_postings })
    }
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
}
