//! The segment writer: the one place that writes frames. Appends take it in turn under
//! the store's writer lock, so frames land in sequence order with no hand-off to a
//! separate thread on the hot path.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::event::{EventRecord, IdClock};
use crate::io::{open_append, Storage};
use crate::segment::{
    append_seal, encode_frame_fields, encode_tracking_frame, segment_file_name, FrameFields, Seal,
    SegmentHeader, SegmentSet, TrackingFields,
};

/// Where a frame was written.
#[derive(Clone, Copy, Debug)]
pub struct FrameLocation {
    /// Position of the segment in the segment set.
    pub segment: u32,
    /// Offset of the frame.
    pub offset: u64,
    /// Length of the frame.
    pub len: u32,
}

/// The active segment, detached from the writer so it can be fsynced without the lock.
pub struct ActiveSegment {
    file: Arc<File>,
    path: PathBuf,
    storage: Arc<dyn Storage>,
}

impl ActiveSegment {
    /// fsyncs it.
    pub fn sync(&self) -> std::io::Result<()> {
        self.storage.sync(&self.file, &self.path)
    }
}

/// The active segment and the append state that goes with it.
pub struct Writer {
    storage: Arc<dyn Storage>,
    segments_dir: PathBuf,
    path: PathBuf,
    segment_max_bytes: u64,
    /// The active segment; `None` once the store closed ([`Writer::release`]).
    file: Option<Arc<File>>,
    segment_id: u64,
    segment_position: u32,
    segment_len: u64,
    written: u64,
    /// Id and timestamp source for new events.
    pub clock: IdClock,
    buf: Vec<u8>,
    /// Where each frame of the last batch starts and ends in `buf`, and where `buf` went
    /// in the segment (kept, like `buf`, so a batch allocates nothing).
    spans: Vec<(usize, usize)>,
    batch_start: u64,
    /// The first failure (always a [`Error::StorageFailed`]); set once, reported forever.
    failure: Option<Error>,
    /// The failure is a frame write that failed (a full disk, say) and nothing was fsynced
    /// since: the batches written before it can still be made durable by a first fsync.
    /// Any other failure (an fsync above all: its outcome is unknown, it is never retried)
    /// clears it.
    only_a_write_failed: bool,
    /// The active segment must not take more frames: it is already sealed (a crash came
    /// between its seal and the next segment), or it is of an older format version.
    rotate_before_write: bool,
    /// The store is encrypted: new segments are written as format version 4, flagged.
    pub encrypted: bool,
    /// Events written before the last segment this writer sealed: its fsync covered them.
    sealed_events: u64,
}

impl Writer {
    /// Resumes appending to segment `segment_id` (already `segment_len` bytes long). With
    /// `rotate_before_write`, the first write starts a new segment instead.
    pub fn resume(
        storage: Arc<dyn Storage>,
        segments_dir: &Path,
        segment_max_bytes: u64,
        (segment_id, segment_position, segment_len): (u64, u32, u64),
        (written, rotate_before_write): (u64, bool),
        clock: IdClock,
    ) -> Result<Self> {
        let path = segments_dir.join(segment_file_name(segment_id));
        let file = open_append(&path, false).map_err(|e| Error::storage("opening the active segment", e))?;
        Ok(Writer {
            storage,
            path,
            segments_dir: segments_dir.to_owned(),
            segment_max_bytes,
            file: Some(Arc::new(file)),
            segment_id,
            segment_position,
            segment_len,
            written,
            clock,
            buf: Vec::new(),
            spans: Vec::new(),
            batch_start: 0,
            failure: None,
            only_a_write_failed: false,
            rotate_before_write,
            encrypted: false,
            sealed_events: 0,
        })
    }

    /// Events the fsync of the last segment this writer sealed covered (all before it).
    pub fn sealed_events(&self) -> u64 {
        self.sealed_events
    }

    /// Creates segment `id` holding events from `base_sequence` (header, fsync, dir fsync):
    /// a clear store's segment or, with `encrypted`, an encrypted store's (its header
    /// flagged, format version 4).
    pub fn create_segment_as(
        storage: &dyn Storage,
        segments_dir: &Path,
        (id, base_sequence): (u64, u64),
        encrypted: bool,
    ) -> std::io::Result<PathBuf> {
        let path = segments_dir.join(segment_file_name(id));
        let file = open_append(&path, true)?;
        storage.write(&file, &path, &SegmentHeader { segment_id: id, base_sequence }.encode_as(encrypted))?;
        storage.sync(&file, &path)?;
        storage.sync_dir(segments_dir)?;
        Ok(path)
    }

    /// Number of events written (the next global sequence).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Where the log ends as this writer knows it: `(segment id, segment length)`.
    pub fn end(&self) -> (u64, u64) {
        (self.segment_id, self.segment_len)
    }

    /// Takes over the end of the log another process's writer published (shared mode):
    /// `written` events, the active segment `segment_id` (at `position` in this process's
    /// segment set) `segment_len` bytes long.
    pub fn adopt(
        &mut self,
        (segment_id, position, segment_len): (u64, u32, u64),
        written: u64,
        rotate_before_write: bool,
    ) -> Result<()> {
        if segment_id != self.segment_id {
            let path = self.segments_dir.join(segment_file_name(segment_id));
            let file =
                open_append(&path, false).map_err(|e| Error::storage("opening the active segment", e))?;
            self.file = Some(Arc::new(file));
            self.path = path;
            self.segment_id = segment_id;
        }
        self.segment_position = position;
        self.segment_len = segment_len;
        self.written = written;
        self.rotate_before_write = rotate_before_write;
        Ok(())
    }

    /// fsyncs the active segment; older segments were fsynced when sealed. Nothing to do
    /// once released: the close fsynced it last.
    pub fn sync_active(&self) -> std::io::Result<()> {
        match &self.file {
            Some(file) => self.storage.sync(file, &self.path),
            None => Ok(()),
        }
    }

    /// What the group-commit leader needs to fsync the active segment without the lock;
    /// `None` once released (everything written was fsynced by the close).
    pub fn active_for_sync(&self) -> Option<ActiveSegment> {
        let file = self.file.clone()?;
        Some(ActiveSegment { file, path: self.path.clone(), storage: self.storage.clone() })
    }

    /// Closes the active segment's file once the store closed and fsynced it, so a closed
    /// store that stays referenced holds no descriptor of it. Appends are refused by then
    /// (they check the store is open under the writer lock).
    pub fn release(&mut self) {
        self.file = None;
    }

    /// Why the writer stopped accepting appends, if it did.
    pub fn failure(&self) -> Option<&Error> {
        self.failure.as_ref()
    }

    /// Stops the writer for good: later appends fail with [`Error::StorageFailed`].
    pub fn poison(&mut self, why: Error) {
        self.failure.get_or_insert_with(|| why.into_storage_failure());
        self.only_a_write_failed = false;
    }

    /// True when what this writer wrote may still be fsynced: it is healthy, or it only
    /// stopped on a failed frame write. The frames before that write are whole in the
    /// page cache; a torn batch after them is cut off by recovery, as after a crash.
    pub fn may_sync(&self) -> bool {
        self.failure.is_none() || self.only_a_write_failed
    }

    /// Errors when the writer is poisoned.
    pub fn check_healthy(&self) -> Result<()> {
        match &self.failure {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }

    /// Writes `records` (sequences `written..`; a replica's may jump ahead) as one atomic
    /// batch in one `write`, with the tracking record `tracking` as its last frame when
    /// given (a batch of no events may hold only that). Returns where each frame went, the
    /// tracking record's last. See [`Writer::write_frames`].
    pub fn write_batch(
        &mut self,
        records: &[EventRecord],
        tracking: Option<TrackingFields<'_>>,
        segments: &SegmentSet,
    ) -> Result<Vec<FrameLocation>> {
        self.write_frames(records.iter().map(FrameFields::from), tracking, segments)?;
        Ok(self.batch_locations().collect())
    }

    /// Writes the event frames `frames` (sequences `written..`; a replica's may jump ahead)
    /// as one atomic batch in one `write`, with the tracking record `tracking` as its last
    /// frame when given (a batch of no events may hold only that); then
    /// [`Writer::batch_locations`] tells where each frame went. Rotates first when the
    /// batch would push a non-empty segment past its limit; a batch never spans two
    /// segments. Any I/O error poisons the writer.
    pub fn write_frames<'f>(
        &mut self,
        frames: impl ExactSizeIterator<Item = FrameFields<'f>>,
        tracking: Option<TrackingFields<'_>>,
        segments: &SegmentSet,
    ) -> Result<()> {
        self.check_healthy()?;
        self.buf.clear();
        self.spans.clear();
        let count = (frames.len() + usize::from(tracking.is_some())) as u32;
        let mut next = self.written;
        for (i, frame) in frames.enumerate() {
            // Dense from `written`, except on a replica, whose sequences may jump ahead.
            debug_assert!(frame.global_sequence >= self.written + i as u64);
            let start = self.buf.len();
            encode_frame_fields(&mut self.buf, &frame, i as u32, count);
            self.spans.push((start, self.buf.len()));
            next = frame.global_sequence + 1;
        }
        if let Some(fields) = tracking {
            let start = self.buf.len();
            encode_tracking_frame(&mut self.buf, fields, next, count - 1, count);
            self.spans.push((start, self.buf.len()));
        }
        let has_frames = self.segment_len > crate::segment::SEGMENT_HEADER_LEN as u64;
        let full = has_frames && self.segment_len + self.buf.len() as u64 > self.segment_max_bytes;
        if self.file.is_none() {
            return Err(Error::StoreClosed); // Released at close: no segment is started either.
        }
        if full || self.rotate_before_write {
            self.rotate(segments).inspect_err(|e| self.poison(e.clone()))?;
        }
        let Some(file) = &self.file else { return Err(Error::StoreClosed) };
        if let Err(e) = self.storage.write(file, &self.path, &self.buf) {
            let err = Error::storage("writing frames", e);
            let first = self.failure.is_none();
            self.poison(err.clone());
            self.only_a_write_failed = first;
            return Err(err);
        }
        self.batch_start = self.segment_len;
        self.segment_len += self.buf.len() as u64;
        self.written = next;
        if self.buf.capacity() > (4 << 20) {
            self.buf = Vec::new(); // Do not keep a huge batch's buffer alive.
        }
        Ok(())
    }

    /// Where the frames of the last batch written went, in batch order (the tracking
    /// record, if any, last).
    pub fn batch_locations(&self) -> impl ExactSizeIterator<Item = FrameLocation> + '_ {
        self.spans.iter().map(|&(start, end)| FrameLocation {
            segment: self.segment_position,
            offset: self.batch_start + start as u64,
            len: (end - start) as u32,
        })
    }

    /// Seals the active segment (fsync, then a durable seal record) and starts the next
    /// one. Sealing keeps the rule that only the newest segment can ever have a torn tail,
    /// and the seal record lets open notice a sealed segment that lost frames.
    fn rotate(&mut self, segments: &SegmentSet) -> Result<()> {
        self.sync_active().map_err(|e| Error::storage("fsync while sealing a segment", e))?;
        self.sealed_events = self.written;
        let seal = Seal { len: self.segment_len, next_sequence: self.written };
        append_seal(&*self.storage, &self.segments_dir, self.segment_id, seal)
            .map_err(|e| Error::storage("writing a seal record", e))?;
        let next = self.segment_id + 1;
        let path =
            Self::create_segment_as(&*self.storage, &self.segments_dir, (next, self.written), self.encrypted)
                .map_err(|e| Error::storage("creating the next segment", e))?;
        let file = open_append(&path, false).map_err(|e| Error::storage("opening the next segment", e))?;
        self.segment_position = segments.push(next, path.clone())?;
        self.path = path;
        self.file = Some(Arc::new(file));
        self.segment_id = next;
        self.segment_len = crate::segment::SEGMENT_HEADER_LEN as u64;
        self.rotate_before_write = false;
        Ok(())
    }
}
