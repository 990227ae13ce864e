//! Mapped, lock-light reads of committed frames.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use memmap2::Mmap;
use parking_lot::RwLock;

use super::frame::{decode_frame, encode_frame, Decoded, FrameView};
use crate::error::{Error, Result};
use crate::event::EventRecord;

struct Slot {
    id: u64,
    path: PathBuf,
    file: File,
    map: RwLock<Option<Arc<Mmap>>>,
}

/// The segments of a store, indexed by their position (segment 0 is the oldest).
///
/// Each segment is memory-mapped on first read; the active segment grows, so a read past
/// the end of its mapping maps the file again at its new length.
pub struct SegmentSet {
    slots: RwLock<Vec<Arc<Slot>>>,
    /// Mapping length reserved for the active segment (its size limit).
    reserve: u64,
    /// Set by [`SegmentSet::release`] when the store closes.
    released: std::sync::atomic::AtomicBool,
}

/// A committed event, read in place from its segment's mapping: no copy of its bytes is
/// made, and fields are decoded when asked for. Holding one keeps that mapping alive.
#[derive(Clone)]
pub struct StoredEvent {
    /// A segment's mapping, or an anonymous one holding just this frame (an event rebuilt
    /// from outside the store, e.g. unpickled): one pointer either way, no branch on reads.
    map: Arc<Mmap>,
    offset: usize,
    len: u32,
}

impl StoredEvent {
    /// An event that owns its frame, built from `record` (its idempotency key included
    /// when it has one) as frame 0 of a batch of 1. A record whose fields do not fit a
    /// frame is refused.
    pub fn from_record(record: &EventRecord) -> Result<Self> {
        let mut frame = Vec::new();
        encode_frame(&mut frame, record, 0, 1);
        Self::from_frame(frame)
    }

    /// An event that owns `frame`, checked as a read checks a frame (lengths, CRC, names),
    /// since these bytes come from outside the store (e.g. a pickle).
    pub fn from_frame(frame: Vec<u8>) -> Result<Self> {
        let refused = |reason: &str| Error::Internal(format!("not an event frame: {reason}"));
        match decode_frame(&frame) {
            Decoded::Frame(view) if view.len == frame.len() => {}
            Decoded::Frame(_) => return Err(refused("bytes follow the frame")),
            Decoded::Tracking(_) => return Err(refused("a tracking record is not an event")),
            Decoded::Short => return Err(refused("the frame is cut short")),
            Decoded::Bad(reason) => return Err(refused(&reason)),
        }
        let len = u32::try_from(frame.len()).map_err(|_| refused("the frame is too large"))?;
        let mut owned = memmap2::MmapOptions::new()
            .len(frame.len())
            .map_anon()
            .map_err(|e| Error::storage("mapping an event frame", e))?;
        owned.copy_from_slice(&frame);
        let map = owned.make_read_only().map_err(|e| Error::storage("mapping an event frame", e))?;
        Ok(StoredEvent { map: Arc::new(map), offset: 0, len })
    }

    /// The frame's fields.
    pub fn view(&self) -> FrameView<'_> {
        FrameView::trusted(self.frame_bytes())
    }

    /// The raw frame bytes.
    pub fn frame_bytes(&self) -> &[u8] {
        &self.map[self.offset..self.offset + self.len as usize]
    }

    /// Its commit position.
    pub fn global_sequence(&self) -> u64 {
        self.view().global_sequence
    }

    /// An owned copy of every field.
    pub fn record(&self) -> EventRecord {
        self.view().to_record()
    }
}

impl PartialEq for StoredEvent {
    fn eq(&self, other: &Self) -> bool {
        self.frame_bytes() == other.frame_bytes()
    }
}

impl Eq for StoredEvent {}

impl std::fmt::Debug for StoredEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StoredEvent").field(&self.record()).finish()
    }
}

/// A mapping of one segment, kept by callers that read many frames in a row.
pub struct MappedSegment {
    slot: Arc<Slot>,
    map: Arc<Mmap>,
}

impl MappedSegment {
    /// Checks the committed frame at `offset` (its length and sequence known from the
    /// index) and returns it as a [`StoredEvent`]. Every read checks the frame's CRC and
    /// that it holds the sequence the index expects there, so damage the open did not look
    /// for (it trusts the index checkpoint) is still never served as an event.
    #[inline]
    pub fn event(&self, offset: u64, len: u32, global_sequence: u64) -> Result<StoredEvent> {
        let start = offset as usize;
        let bytes = self.map.get(start..start + len as usize).unwrap_or(&[]);
        match decode_frame(bytes) {
            Decoded::Frame(frame)
                if frame.len == len as usize && frame.global_sequence == global_sequence =>
            {
                Ok(StoredEvent { map: self.map.clone(), offset: start, len })
            }
            Decoded::Frame(frame) if frame.len == len as usize => Err(Error::corrupt(
                &self.slot.path,
                offset,
                format!(
                    "frame holds sequence {}, the index expects {global_sequence}",
                    frame.global_sequence
                ),
            )),
            Decoded::Frame(_) => {
                Err(Error::corrupt(&self.slot.path, offset, "frame length differs from the index"))
            }
            Decoded::Tracking(_) => {
                Err(Error::corrupt(&self.slot.path, offset, "the index places an event on a tracking record"))
            }
            Decoded::Short => Err(Error::corrupt(&self.slot.path, offset, "committed frame is missing")),
            Decoded::Bad(reason) => Err(Error::corrupt(&self.slot.path, offset, reason)),
        }
    }

    /// Asks the CPU to start loading the frame at `offset` (its first kilobyte at most)
    /// into the caches: a read that checks frames one after another touches each for the
    /// first time, and a hint a few frames ahead overlaps those loads with the work on the
    /// frames before. Only a hint: it reads nothing and faults on nothing.
    #[inline]
    pub fn prefetch(&self, offset: u64, len: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            let start = offset as usize;
            let end = start.saturating_add((len as usize).min(1024));
            let Some(bytes) = self.map.get(start..end) else { return };
            for line in bytes.chunks(64) {
                // SAFETY: a prefetch hint has no effect on memory; the address is inside
                // the mapping.
                unsafe {
                    std::arch::x86_64::_mm_prefetch(line.as_ptr().cast(), std::arch::x86_64::_MM_HINT_T0)
                };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (offset, len);
    }

    /// The mapped bytes (for the active segment, the mapping may reach past the file's end:
    /// read only what is known to be written).
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The segment file's path.
    pub fn path(&self) -> &std::path::Path {
        &self.slot.path
    }

    /// True when this mapping covers `end` bytes.
    pub fn covers(&self, end: u64) -> bool {
        self.map.len() as u64 >= end
    }
}

impl SegmentSet {
    /// An empty set whose active segment mappings reserve `reserve` bytes.
    pub fn new(reserve: u64) -> Self {
        SegmentSet { slots: RwLock::default(), reserve, released: Default::default() }
    }

    /// Closes every segment file and drops every mapping the set holds (the store closed):
    /// a closed store kept referenced holds no descriptor or mapping of its segments. Events
    /// read before keep their own mappings. Later reads fail with [`Error::StoreClosed`].
    pub fn release(&self) {
        let mut slots = self.slots.write();
        self.released.store(true, std::sync::atomic::Ordering::Release);
        slots.clear();
    }

    /// The error for a position that is not registered.
    fn unknown(&self, position: u32) -> Error {
        if self.released.load(std::sync::atomic::Ordering::Acquire) {
            return Error::StoreClosed;
        }
        Error::Internal(format!("segment position {position} is unknown"))
    }

    /// Registers segment `id` (at `path`) for reading; returns its position.
    pub fn push(&self, id: u64, path: PathBuf) -> Result<u32> {
        let file = File::open(&path).map_err(|e| Error::storage("opening segment for reading", e))?;
        let mut slots = self.slots.write();
        slots.push(Arc::new(Slot { id, path, file, map: RwLock::new(None) }));
        Ok((slots.len() - 1) as u32)
    }

    /// Replaces the file of the segment at `position` with the one now at `path` (the same
    /// segment, rewritten by compaction). Mappings handed out before keep the old file's
    /// bytes; its space returns to the file system once the last of them is dropped.
    pub fn replace(&self, position: u32, path: PathBuf) -> Result<()> {
        let file = File::open(&path).map_err(|e| Error::storage("opening segment for reading", e))?;
        let mut slots = self.slots.write();
        let slot = slots
            .get_mut(position as usize)
            .ok_or_else(|| Error::Internal(format!("segment position {position} is unknown")))?;
        *slot = Arc::new(Slot { id: slot.id, path, file, map: RwLock::new(None) });
        Ok(())
    }

    /// Position of segment `id`, when registered.
    pub fn position_of(&self, id: u64) -> Option<u32> {
        self.slots.read().iter().rposition(|s| s.id == id).map(|p| p as u32)
    }

    /// `(id, current file length)` of the segment at `position`.
    pub fn file_len(&self, position: u32) -> Result<(u64, u64)> {
        let slot = self.slots.read().get(position as usize).cloned();
        let slot = slot.ok_or_else(|| self.unknown(position))?;
        let len = slot.file.metadata().map_err(|e| Error::storage("reading segment size", e))?.len();
        Ok((slot.id, len))
    }

    /// Number of registered segments.
    pub fn len(&self) -> usize {
        self.slots.read().len()
    }

    /// True when no segment is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Path of the segment at `position`.
    pub fn path(&self, position: u32) -> Option<PathBuf> {
        self.slots.read().get(position as usize).map(|s| s.path.clone())
    }

    /// `(id, path)` of every segment, oldest first.
    pub fn list(&self) -> Vec<(u64, PathBuf)> {
        self.slots.read().iter().map(|s| (s.id, s.path.clone())).collect()
    }

    /// A mapping of segment `position` that covers at least `end` committed bytes.
    ///
    /// A sealed segment is mapped once, exactly, with its pages populated up front (one
    /// bulk fault instead of one per page on a long read). The active segment keeps
    /// growing, so it is mapped with room up to `reserve` bytes: pages past the end of
    /// the file are never touched (reads stop at committed frames) and become valid as
    /// the file grows, so tailing readers do not remap after every append.
    pub fn map(&self, position: u32, end: u64) -> Result<MappedSegment> {
        let (slot, active) = {
            let slots = self.slots.read();
            let slot = slots.get(position as usize).cloned().ok_or_else(|| self.unknown(position))?;
            (slot, position as usize + 1 == slots.len())
        };
        if let Some(map) = slot.map.read().as_ref().filter(|m| m.len() as u64 >= end) {
            return Ok(MappedSegment { map: map.clone(), slot: slot.clone() });
        }
        let mut guard = slot.map.write();
        if let Some(map) = guard.as_ref().filter(|m| m.len() as u64 >= end) {
            return Ok(MappedSegment { map: map.clone(), slot: slot.clone() });
        }
        let file_len = slot.file.metadata().map_err(|e| Error::storage("reading segment size", e))?.len();
        if file_len < end {
            let reason = "segment is shorter than its committed frames";
            return Err(Error::corrupt(&slot.path, file_len, reason));
        }
        let mut options = memmap2::MmapOptions::new();
        if active {
            options.len(self.reserve.max(end) as usize);
        } else {
            options.populate();
        }
        // SAFETY: segment bytes below the committed length are never rewritten or truncated
        // while the store is open (truncation happens only during recovery, before any
        // map), and no read goes past the committed length, so no access hits a page past
        // the end of the file.
        let map =
            Arc::new(unsafe { options.map(&slot.file) }.map_err(|e| Error::storage("mapping segment", e))?);
        *guard = Some(map.clone());
        drop(guard);
        Ok(MappedSegment { slot, map })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> EventRecord {
        EventRecord {
            event_id: [1; 16],
            global_sequence: 7,
            entity: "acct:1".into(),
            scope: "eu".into(),
            kind: "deposit".into(),
            entity_sequence: 2,
            timestamp_us: 3,
            causation_id: None,
            correlation_id: [1; 16],
            prev_hash: [4; 32],
            hash: [5; 32],
            idempotency_key: None,
            payload_version: 0,
            payload: vec![0x91, 0x01],
            tags: vec!["t".into()],
        }
    }

    #[test]
    fn an_owned_event_reads_back_its_record() {
        let event = StoredEvent::from_record(&record()).unwrap();
        assert_eq!(event.record(), record());
        assert_eq!(event.global_sequence(), 7);
        assert_eq!(event.clone(), event);
    }

    #[test]
    fn a_record_that_does_not_fit_a_frame_is_refused() {
        // The kind length is one byte in a frame: 300 bytes would wrap, and the checked
        // frame's lengths would disagree.
        let long_kind = EventRecord { kind: "k".repeat(300).into(), ..record() };
        assert!(StoredEvent::from_record(&long_kind).is_err());
        let frame = StoredEvent::from_record(&record()).unwrap().frame_bytes().to_vec();
        assert!(StoredEvent::from_frame(frame[..frame.len() - 1].to_vec()).is_err());
        let mut flipped = frame.clone();
        flipped[30] ^= 1;
        assert!(StoredEvent::from_frame(flipped).is_err());
        assert!(StoredEvent::from_frame([frame.as_slice(), &[0]].concat()).is_err());
    }
}
