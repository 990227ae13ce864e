//! Seal records: where each sealed segment ends.
//!
//! When the writer rotates, it fsyncs the full segment, then appends a seal record naming
//! the segment, its final length and the sequence that follows it to `segments/seals`
//! and fsyncs that, and only then creates the next segment. Open compares every sealed
//! segment with its record, so a sealed segment cut back at a frame boundary fails closed
//! even when nothing after it remains to notice the missing sequences (the newest segment
//! empty, half created or gone).
//!
//! ```text
//! record = magic "SEAL" | crc32c u32 (of the next 24 bytes) | segment id u64
//!          | sealed length u64 | next sequence u64
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::{open_append, Storage};

/// File name of the seal records inside the segments dir.
pub const SEALS_FILE: &str = "seals";
const RECORD_MAGIC: &[u8; 4] = b"SEAL";
const RECORD_CRC_OFFSET: usize = RECORD_MAGIC.len();
const RECORD_SEGMENT_OFFSET: usize = RECORD_CRC_OFFSET + 4;
const RECORD_LEN_OFFSET: usize = RECORD_SEGMENT_OFFSET + 8;
const RECORD_NEXT_SEQUENCE_OFFSET: usize = RECORD_LEN_OFFSET + 8;
/// Bytes per record.
pub const SEAL_RECORD_LEN: usize = RECORD_NEXT_SEQUENCE_OFFSET + 8;

/// Where a sealed segment ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seal {
    /// Its length in bytes when sealed: header plus every frame.
    pub len: u64,
    /// The global sequence after its last frame (the next segment's base).
    pub next_sequence: u64,
}

fn encode(segment_id: u64, seal: Seal) -> [u8; SEAL_RECORD_LEN] {
    let mut out = [0u8; SEAL_RECORD_LEN];
    out[..RECORD_CRC_OFFSET].copy_from_slice(RECORD_MAGIC);
    out[RECORD_SEGMENT_OFFSET..RECORD_LEN_OFFSET].copy_from_slice(&segment_id.to_le_bytes());
    out[RECORD_LEN_OFFSET..RECORD_NEXT_SEQUENCE_OFFSET].copy_from_slice(&seal.len.to_le_bytes());
    out[RECORD_NEXT_SEQUENCE_OFFSET..].copy_from_slice(&seal.next_sequence.to_le_bytes());
    let crc = crc32c::crc32c(&out[RECORD_SEGMENT_OFFSET..]);
    out[RECORD_CRC_OFFSET..RECORD_SEGMENT_OFFSET].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Appends the seal of `segment_id` and makes it durable (the file's name too, when this
/// call created it). Must complete before the next segment is created.
pub fn append_seal(
    storage: &dyn Storage,
    segments_dir: &Path,
    segment_id: u64,
    seal: Seal,
) -> std::io::Result<()> {
    let path = segments_dir.join(SEALS_FILE);
    let created = !path.exists();
    let file = open_append(&path, true)?;
    storage.write(&file, &path, &encode(segment_id, seal))?;
    storage.sync(&file, &path)?;
    if created {
        storage.sync_dir(segments_dir)?;
    }
    Ok(())
}

/// The seal records as read.
/// The bytes of a `seals` file holding `records`, in the order given (what a backup writes
/// for the segments it copies).
pub fn encode_seal_records(records: impl IntoIterator<Item = (u64, Seal)>) -> Vec<u8> {
    records.into_iter().flat_map(|(id, seal)| encode(id, seal)).collect()
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct SealRecords {
    /// Every seal, by segment id.
    pub by_segment: BTreeMap<u64, Seal>,
    /// Bytes at the end of the file that are a torn record, ignored: recovery cuts them off
    /// ([`SealRecords::cut_torn_record`]), or the next record would be appended after them,
    /// out of place.
    pub torn_bytes: u64,
}

/// Reads every seal record, by segment id. A record cut short or left as zeros at the end is
/// a crash during the append and is ignored (the segment it would seal was still the
/// newest); any other damage fails closed. No file means no segment was sealed with seal
/// records (a store of format version 1, or one that never rotated).
pub fn load_seals(segments_dir: &Path) -> Result<SealRecords> {
    let path = segments_dir.join(SEALS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SealRecords::default()),
        Err(e) => return Err(Error::storage("reading seal records", e)),
    };
    let mut seals = BTreeMap::new();
    let records: Vec<&[u8]> = bytes.chunks(SEAL_RECORD_LEN).collect();
    for (i, record) in records.iter().enumerate() {
        let last = i + 1 == records.len();
        if last && (record.len() < SEAL_RECORD_LEN || record.iter().all(|&b| b == 0)) {
            return Ok(SealRecords { by_segment: seals, torn_bytes: record.len() as u64 });
        }
        let offset = (i * SEAL_RECORD_LEN) as u64;
        let u64_at = |at: usize| u64::from_le_bytes(record[at..at + 8].try_into().unwrap());
        let crc = u32::from_le_bytes(record[RECORD_CRC_OFFSET..RECORD_SEGMENT_OFFSET].try_into().unwrap());
        if &record[..RECORD_CRC_OFFSET] != RECORD_MAGIC
            || crc32c::crc32c(&record[RECORD_SEGMENT_OFFSET..]) != crc
        {
            return Err(Error::corrupt(&path, offset, "damaged seal record"));
        }
        let seal =
            Seal { len: u64_at(RECORD_LEN_OFFSET), next_sequence: u64_at(RECORD_NEXT_SEQUENCE_OFFSET) };
        if seals.insert(u64_at(RECORD_SEGMENT_OFFSET), seal).is_some_and(|old| old != seal) {
            return Err(Error::corrupt(&path, offset, "two different seals for one segment"));
        }
    }
    Ok(SealRecords { by_segment: seals, torn_bytes: 0 })
}

impl SealRecords {
    /// Cuts the torn record (if any) off the end of `segments_dir`'s seal records and makes
    /// that durable, so the next seal is appended where it belongs. For recovery, once the
    /// whole log has been checked.
    pub fn cut_torn_record(&self, storage: &dyn Storage, segments_dir: &Path) -> std::io::Result<()> {
        if self.torn_bytes == 0 {
            return Ok(());
        }
        let path = segments_dir.join(SEALS_FILE);
        let file = std::fs::OpenOptions::new().write(true).open(&path)?;
        let len = file.metadata()?.len();
        storage.truncate(&file, &path, len.saturating_sub(self.torn_bytes))?;
        storage.sync(&file, &path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::OsStorage;

    #[test]
    fn seals_round_trip_and_a_torn_last_record_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_seals(dir.path()).unwrap(), SealRecords::default());
        let a = Seal { len: 4096, next_sequence: 10 };
        let b = Seal { len: 5000, next_sequence: 21 };
        append_seal(&OsStorage, dir.path(), 0, a).unwrap();
        append_seal(&OsStorage, dir.path(), 1, b).unwrap();
        let seals = load_seals(dir.path()).unwrap();
        assert_eq!(seals.by_segment.into_iter().collect::<Vec<_>>(), vec![(0, a), (1, b)]);
        let path = dir.path().join(SEALS_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let whole = bytes.len();
        bytes.extend_from_slice(&encode(2, a)[..10]);
        std::fs::write(&path, &bytes).unwrap();
        let torn = load_seals(dir.path()).unwrap();
        assert_eq!((torn.by_segment.len(), torn.torn_bytes), (2, 10));
        torn.cut_torn_record(&OsStorage, dir.path()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes[..whole]);
        append_seal(&OsStorage, dir.path(), 2, a).unwrap();
        let three = SealRecords { by_segment: BTreeMap::from([(0, a), (1, b), (2, a)]), torn_bytes: 0 };
        assert_eq!(load_seals(dir.path()).unwrap(), three);
        bytes = std::fs::read(&path).unwrap();
        bytes[RECORD_LEN_OFFSET] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(load_seals(dir.path()), Err(Error::CorruptSegment { .. })));
    }
}
