//! Mapped, lock-light reads of committed frames.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use memmap2::Mmap;
use parking_lot::RwLock;

use super::frame::{decode_frame, Decoded, FrameView};
use crate::error::{Error, Result};

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
#[derive(Default)]
pub struct SegmentSet {
    slots: RwLock<Vec<Arc<Slot>>>,
}

/// A mapping of one segment, kept by callers that read many frames in a row.
pub struct MappedSegment {
    slot: Arc<Slot>,
    map: Arc<Mmap>,
}

impl MappedSegment {
    /// Decodes the committed frame at `offset` (its length known from the index).
    pub fn frame(&self, offset: u64, len: u32) -> Result<FrameView<'_>> {
        let start = offset as usize;
        let bytes = self.map.get(start..start + len as usize).unwrap_or(&[]);
        match decode_frame(bytes) {
            Decoded::Frame(frame) if frame.len == len as usize => Ok(frame),
            Decoded::Frame(_) => {
                Err(Error::corrupt(&self.slot.path, offset, "frame length differs from the index"))
            }
            Decoded::Short => Err(Error::corrupt(&self.slot.path, offset, "committed frame is missing")),
            Decoded::Bad(reason) => Err(Error::corrupt(&self.slot.path, offset, reason)),
        }
    }

    /// True when this mapping covers `end` bytes.
    pub fn covers(&self, end: u64) -> bool {
        self.map.len() as u64 >= end
    }
}

impl SegmentSet {
    /// Registers segment `id` (at `path`) for reading; returns its position.
    pub fn push(&self, id: u64, path: PathBuf) -> Result<u32> {
        let file = File::open(&path).map_err(|e| Error::storage("opening segment for reading", e))?;
        let mut slots = self.slots.write();
        slots.push(Arc::new(Slot { id, path, file, map: RwLock::new(None) }));
        Ok((slots.len() - 1) as u32)
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

    /// A mapping of segment `position` that covers at least `end` bytes.
    pub fn map(&self, position: u32, end: u64) -> Result<MappedSegment> {
        let slot = self
            .slots
            .read()
            .get(position as usize)
            .cloned()
            .ok_or_else(|| Error::StorageFailed(format!("segment position {position} is unknown")))?;
        if let Some(map) = slot.map.read().as_ref() {
            if map.len() as u64 >= end {
                return Ok(MappedSegment { map: map.clone(), slot: slot.clone() });
            }
        }
        let mut guard = slot.map.write();
        if let Some(map) = guard.as_ref().filter(|m| m.len() as u64 >= end) {
            return Ok(MappedSegment { map: map.clone(), slot: slot.clone() });
        }
        // SAFETY: segment bytes below the committed length are never rewritten or truncated
        // while the store is open (truncation happens only during recovery, before any map).
        let map =
            Arc::new(unsafe { Mmap::map(&slot.file) }.map_err(|e| Error::storage("mapping segment", e))?);
        if (map.len() as u64) < end {
            return Err(Error::corrupt(
                &slot.path,
                map.len() as u64,
                "segment is shorter than its committed frames",
            ));
        }
        *guard = Some(map.clone());
        drop(guard);
        Ok(MappedSegment { slot, map })
    }
}
