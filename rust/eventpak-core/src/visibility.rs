//! Visibility fences: which sequences are hidden for good, and which fence is open.
//!
//! Stored in `hidden.ranges`, rewritten atomically on every fence transition. The open
//! fence is recorded *before* its first frame is written, so a crash with a fence open
//! finds the marker at reopen and hides the fence's events for good.

use std::mem::size_of;
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::{write_atomic, Storage};

/// File name of the visibility state inside a data dir.
pub const HIDDEN_RANGES_FILE: &str = "hidden.ranges";
const MAGIC: &[u8; 8] = b"EVPKHID\0";
const VERSION: u32 = 1;
const NO_FENCE: u64 = u64::MAX;

const VERSION_OFFSET: usize = MAGIC.len();
const OPEN_FENCE_OFFSET: usize = VERSION_OFFSET + size_of::<u32>();
const COUNT_OFFSET: usize = OPEN_FENCE_OFFSET + size_of::<u64>();
const RANGES_OFFSET: usize = COUNT_OFFSET + size_of::<u32>();
// Within one range: start u64, then end u64.
const RANGE_END_OFFSET: usize = size_of::<u64>();
const RANGE_LEN: usize = RANGE_END_OFFSET + size_of::<u64>();
const CRC_LEN: usize = size_of::<u32>();
/// The shortest valid file: no cancelled range.
const MIN_LEN: usize = RANGES_OFFSET + CRC_LEN;

/// Cancelled ranges and the open fence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Visibility {
    /// Half-open `(start, end)` ranges of sequences hidden forever, ascending.
    pub cancelled: Vec<(u64, u64)>,
    /// First sequence of the open fence, if one is open.
    pub open_fence: Option<u64>,
}

impl Visibility {
    /// True when `seq` is hidden for good.
    pub fn is_cancelled(&self, seq: u64) -> bool {
        let i = self.cancelled.partition_point(|&(_, end)| end <= seq);
        self.cancelled.get(i).is_some_and(|&(start, _)| start <= seq)
    }

    /// Cancelled ranges clipped to `[from, to)`.
    pub fn cancelled_within(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        self.cancelled
            .iter()
            .map(|&(start, end)| (start.max(from), end.min(to)))
            .filter(|(start, end)| start < end)
            .collect()
    }

    /// Loads `hidden.ranges`; a missing file means nothing is hidden.
    pub fn load(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(HIDDEN_RANGES_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Error::storage("reading hidden.ranges", e)),
        };
        Self::decode(&bytes).map_err(|reason| Error::corrupt(&path, 0, reason))
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        if bytes.len() < MIN_LEN || &bytes[..VERSION_OFFSET] != MAGIC {
            return Err("not a hidden.ranges file".into());
        }
        let (body, crc) = bytes.split_at(bytes.len() - CRC_LEN);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().unwrap()) {
            return Err("hidden.ranges CRC mismatch".into());
        }
        let u32_le = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap());
        let u64_le = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap());
        if u32_le(&body[VERSION_OFFSET..OPEN_FENCE_OFFSET]) != VERSION {
            return Err("unsupported hidden.ranges version".into());
        }
        let open = u64_le(&body[OPEN_FENCE_OFFSET..COUNT_OFFSET]);
        let count = u32_le(&body[COUNT_OFFSET..RANGES_OFFSET]) as usize;
        if body.len() != RANGES_OFFSET + count * RANGE_LEN {
            return Err("hidden.ranges length disagrees with its count".into());
        }
        let cancelled: Vec<(u64, u64)> = body[RANGES_OFFSET..]
            .chunks_exact(RANGE_LEN)
            .map(|range| (u64_le(&range[..RANGE_END_OFFSET]), u64_le(&range[RANGE_END_OFFSET..])))
            .collect();
        let ordered = cancelled.iter().all(|(s, e)| s < e) && cancelled.windows(2).all(|w| w[0].1 <= w[1].0);
        if !ordered {
            return Err("hidden ranges are empty, overlapping or out of order".into());
        }
        Ok(Visibility { cancelled, open_fence: (open != NO_FENCE).then_some(open) })
    }

    /// Writes `hidden.ranges` atomically (temp, fsync, rename, directory fsync).
    pub fn save(&self, storage: &dyn Storage, data_dir: &Path) -> Result<()> {
        write_atomic(storage, data_dir, HIDDEN_RANGES_FILE, &self.encode())
            .map_err(|e| Error::storage("writing hidden.ranges", e))
    }

    /// The bytes of `hidden.ranges` for this state.
    pub fn encode(&self) -> Vec<u8> {
        let crc_at = RANGES_OFFSET + self.cancelled.len() * RANGE_LEN;
        let mut out = vec![0; crc_at + CRC_LEN];
        out[..VERSION_OFFSET].copy_from_slice(MAGIC);
        out[VERSION_OFFSET..OPEN_FENCE_OFFSET].copy_from_slice(&VERSION.to_le_bytes());
        out[OPEN_FENCE_OFFSET..COUNT_OFFSET]
            .copy_from_slice(&self.open_fence.unwrap_or(NO_FENCE).to_le_bytes());
        out[COUNT_OFFSET..RANGES_OFFSET].copy_from_slice(&(self.cancelled.len() as u32).to_le_bytes());
        for (range, &(start, end)) in
            out[RANGES_OFFSET..crc_at].chunks_exact_mut(RANGE_LEN).zip(&self.cancelled)
        {
            range[..RANGE_END_OFFSET].copy_from_slice(&start.to_le_bytes());
            range[RANGE_END_OFFSET..].copy_from_slice(&end.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out[..crc_at]);
        out[crc_at..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Forgets what is cancelled from `end` on (sequences the log no longer holds); true
    /// when anything changed.
    pub fn clip_to(&mut self, end: u64) -> bool {
        let before = self.cancelled.len();
        self.cancelled.retain(|&(start, _)| start < end);
        let last = self.cancelled.last_mut().filter(|last| last.1 > end);
        let shortened = last.map(|last| last.1 = end).is_some();
        shortened || self.cancelled.len() != before
    }

    /// Hides `[start, end)` for good (merging with a directly preceding range).
    pub fn cancel(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        match self.cancelled.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => self.cancelled.push((start, end)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Visibility::load(dir.path()).unwrap(), Visibility::default());
        let mut v = Visibility { open_fence: Some(9), ..Default::default() };
        v.cancel(2, 4);
        v.cancel(4, 5);
        v.cancel(7, 8);
        let mut clipped = v.clone();
        assert!(!clipped.clip_to(8) && clipped == v);
        assert!(clipped.clip_to(3) && clipped.cancelled == [(2, 3)]);
        assert!(clipped.clip_to(2) && clipped.cancelled.is_empty());
        v.save(&crate::io::OsStorage, dir.path()).unwrap();
        let loaded = Visibility::load(dir.path()).unwrap();
        assert_eq!(loaded, v);
        assert_eq!(loaded.cancelled, vec![(2, 5), (7, 8)]);
        assert!(!loaded.is_cancelled(1) && loaded.is_cancelled(2) && loaded.is_cancelled(4));
        assert!(!loaded.is_cancelled(5) && loaded.is_cancelled(7) && !loaded.is_cancelled(8));
        assert_eq!(loaded.cancelled_within(3, 8), vec![(3, 5), (7, 8)]);
        let path = dir.path().join(HIDDEN_RANGES_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[14] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(Visibility::load(dir.path()), Err(Error::CorruptSegment { .. })));
    }
}
