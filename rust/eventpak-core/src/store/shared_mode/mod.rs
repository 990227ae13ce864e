//! Shared mode: several processes open one data dir with `shared=True`.
//!
//! Each process keeps its own index and follows the log the others write. Writers take
//! turns under a cross-process file lock; before writing, a writer repairs what a dead
//! writer left, follows the log to its published end and continues from there, so entity
//! clocks, hash chains, compare-and-set and idempotency keys hold across processes as
//! within one. See `docs/design.md`, "Several processes on one data dir".

mod follow;
mod write;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::StoreConfig;
use crate::coord::{Coordination, Joined, Published};
use crate::error::{Error, Result};
use crate::index::{write_checkpoint, CheckpointCover, Index};
use crate::io::Storage;
use crate::recovery::{recover, Recovered, RecoveryOptions};
use crate::segment::{SegmentSet, SEGMENT_HEADER_LEN};
use crate::store::replica::ReplicaOrigin;
use crate::store::Store;
use crate::visibility::Visibility;
use crate::writer::Writer;

/// Where this process's index ends in the log.
#[derive(Default)]
pub(super) struct FollowTail {
    /// Segment position (in this process's segment set) of the next frame to index.
    position: u32,
    /// Its offset.
    offset: u64,
    /// The newest timestamp indexed (new events never go below it).
    last_timestamp_us: u64,
    /// The `hidden.ranges` generation the index reflects.
    visibility_gen: u64,
}

/// An open segment file with its path (what an fsync through `Storage` takes).
type OpenSegment = Arc<(File, PathBuf)>;

/// What a process sharing its data dir keeps besides the exclusive store's state.
pub(super) struct SharedMode {
    pub(super) coord: Coordination,
    tail: Mutex<FollowTail>,
    /// Index length after the last follow (what the lock-free check compares with).
    followed: AtomicU64,
    /// `hidden.ranges` generation after the last follow.
    followed_gen: AtomicU64,
    /// The segment the last group-commit fsync went to, kept open.
    sync_file: Mutex<Option<(u64, OpenSegment)>>,
}

/// A shared session joined: the recovered log, and whether this process started it.
pub(super) struct Session {
    pub(super) recovered: Recovered,
    pub(super) mode: SharedMode,
    pub(super) first: bool,
    /// Held until the store is assembled: the next opener waits for it.
    pub(super) open_lock: crate::coord::FileLock,
}

/// Joins (or starts) the shared session of `data_dir` and recovers the log as published.
/// The first opener recovers as an exclusive open does (repairing a torn tail when
/// writable) and publishes what it found; a later one reads the log only up to its
/// published end (or the start of a live fence), under the write lock so it stays put,
/// and follows the rest like any other reader.
pub(super) fn join_session(
    storage: &dyn Storage,
    data_dir: &Path,
    segments_dir: &Path,
    config: &StoreConfig,
    set: &SegmentSet,
) -> Result<Session> {
    let Joined { coord, first, open_lock } = Coordination::join(data_dir)?;
    let recovered = {
        let _writes = coord.lock_writes()?;
        let mut options = RecoveryOptions {
            use_index_checkpoint: config.enable_index_checkpoint,
            read_only: config.read_only,
            stop_at: None,
            last_segment: None,
            sequence_jumps: ReplicaOrigin::exists(data_dir),
        };
        if !first {
            let published = coord.mem.published();
            let fence = Visibility::load(data_dir)?.open_fence;
            options.read_only = true;
            options.stop_at = Some(fence.map_or(published.seq, |start| start.min(published.seq)));
            options.last_segment = Some(published.segment_id);
        }
        recover(storage, data_dir, segments_dir, options, set)?
    };
    let tail = tail_of(&recovered.index, recovered.last_timestamp_us);
    let mode = SharedMode {
        coord,
        tail: Mutex::new(tail),
        followed: AtomicU64::new(recovered.index.len()),
        // Unknown yet: the first follow loads `hidden.ranges` and adopts its open fence.
        followed_gen: AtomicU64::new(u64::MAX),
        sync_file: Mutex::default(),
    };
    Ok(Session { recovered, mode, first, open_lock })
}

impl SharedMode {
    /// Leaves the session at close: the lock files and the segment kept open for fsyncs
    /// are closed, so a closed store that stays referenced holds no descriptor.
    pub(super) fn leave(&self) {
        self.coord.leave();
        self.sync_file.lock().take();
    }
}

/// The end of what `index` holds: just past its newest frame (event or tracking record).
fn tail_of(index: &Index, last_timestamp_us: u64) -> FollowTail {
    let (position, offset) = index.log_end().unwrap_or((0, SEGMENT_HEADER_LEN as u64));
    FollowTail { position, offset, last_timestamp_us, visibility_gen: u64::MAX }
}

impl Store {
    /// Writes the index checkpoint of what this process has followed, without the write
    /// lock (others keep appending): the cover is the follow tail, and every segment before
    /// it is sealed, so its length is final. Skipped while a fence is open anywhere: its
    /// events would be recorded as hidden for good.
    pub(super) fn write_shared_checkpoint(&self, mode: &SharedMode, writer: &Mutex<Writer>) -> Result<()> {
        self.follow(mode)?;
        let clock_us = writer.lock().clock.last_timestamp_us();
        let tail = mode.tail.lock();
        let index = self.shared.index.read();
        if index.visibility.open_fence.is_some() {
            return Ok(());
        }
        let mut cover =
            CheckpointCover { last_timestamp_us: tail.last_timestamp_us.max(clock_us), ..Default::default() };
        for (position, (id, path)) in self.shared.segments.list().into_iter().enumerate() {
            let len = match (position as u32).cmp(&tail.position) {
                std::cmp::Ordering::Less => {
                    std::fs::metadata(&path).map_err(|e| Error::storage("reading segment size", e))?.len()
                }
                std::cmp::Ordering::Equal => tail.offset,
                std::cmp::Ordering::Greater => break,
            };
            cover.segments.push((id, len));
        }
        drop(tail);
        write_checkpoint(&*self.shared.storage, &self.shared.data_dir, &index, &cover)
            .map_err(|e| Error::storage("writing the index checkpoint", e))
    }
}

/// Starts the session's shared page from the first opener's recovery.
pub(super) fn start_session(mode: &SharedMode, published: Published, read_only: bool) {
    // A read-only first opener cannot cut a torn tail or a half-made rotation; the first
    // writer repairs as after a writer that died mid-write.
    mode.coord.mem.initialize(published, read_only);
}
