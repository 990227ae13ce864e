//! The fixed header at the start of every segment file.

pub use super::layout::SEGMENT_HEADER_LEN;
use super::layout::{
    SEGMENT_BASE_SEQUENCE_OFFSET, SEGMENT_CRC_OFFSET, SEGMENT_FLAGS_OFFSET, SEGMENT_ID_OFFSET,
    SEGMENT_MAGIC_OFFSET, SEGMENT_PADDING_OFFSET, SEGMENT_VERSION_OFFSET,
};

/// Identifies an eventpak segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"EVPKSEG\0";
/// Version of the segment format described in `docs/format.md`, written into new segments.
/// Version 2 frames may carry a payload version; version 3 adds tags and tracking records.
/// Version 1 and 2 segments are still read.
pub const SEGMENT_VERSION: u32 = 3;
/// Format version 4, written only for what version 3 cannot say, which its header flags
/// name: a segment of an encrypted store ([`SEGMENT_FLAG_ENCRYPTED`]: every event payload in
/// it is sealed) and a segment rewritten by compaction ([`SEGMENT_FLAG_COMPACTED`]: its
/// frames skip the sequences of removed events, listed in `compacted.ranges`). A clear
/// store's new segments are still [`SEGMENT_VERSION`], byte for byte as before.
pub const SEGMENT_VERSION_4: u32 = 4;
/// The version of an encrypted store's segments.
pub const ENCRYPTED_SEGMENT_VERSION: u32 = SEGMENT_VERSION_4;
/// The version of a segment rewritten by compaction.
pub const COMPACTED_SEGMENT_VERSION: u32 = SEGMENT_VERSION_4;
/// Header flag (version 4): the segment belongs to an encrypted store.
pub const SEGMENT_FLAG_ENCRYPTED: u32 = 1;
/// Header flag (version 4): the segment was rewritten by compaction.
pub const SEGMENT_FLAG_COMPACTED: u32 = 2;
/// Every header flag version 4 knows.
const SEGMENT_FLAGS_KNOWN: u32 = SEGMENT_FLAG_ENCRYPTED | SEGMENT_FLAG_COMPACTED;
/// The first segment version whose sealed segments all have a seal record.
pub const FIRST_SEALED_VERSION: u32 = 2;
/// The oldest segment version this build reads.
pub const OLDEST_SEGMENT_VERSION: u32 = 1;

/// The decoded header of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The segment id, equal to the number in its file name.
    pub segment_id: u64,
    /// Global sequence of the first frame this segment holds (or will hold).
    pub base_sequence: u64,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

impl SegmentHeader {
    /// Encodes the header: magic, version, flags, id, base sequence, CRC32C, padding.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        self.encode_as(false)
    }

    /// Encodes the header of a new segment: a clear store's (version 3, no flags) or, with
    /// `encrypted`, an encrypted store's (version 4, [`SEGMENT_FLAG_ENCRYPTED`]).
    pub fn encode_as(&self, encrypted: bool) -> [u8; SEGMENT_HEADER_LEN] {
        if encrypted {
            self.encode_with(SEGMENT_VERSION_4, SEGMENT_FLAG_ENCRYPTED)
        } else {
            self.encode_with(SEGMENT_VERSION, 0)
        }
    }

    /// Encodes the header of a segment rewritten by compaction (version 4,
    /// [`SEGMENT_FLAG_COMPACTED`], and [`SEGMENT_FLAG_ENCRYPTED`] when `encrypted`).
    pub fn encode_compacted(&self, encrypted: bool) -> [u8; SEGMENT_HEADER_LEN] {
        let encrypted = if encrypted { SEGMENT_FLAG_ENCRYPTED } else { 0 };
        self.encode_with(SEGMENT_VERSION_4, SEGMENT_FLAG_COMPACTED | encrypted)
    }

    fn encode_with(&self, version: u32, flags: u32) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[SEGMENT_MAGIC_OFFSET..SEGMENT_VERSION_OFFSET].copy_from_slice(SEGMENT_MAGIC);
        out[SEGMENT_VERSION_OFFSET..SEGMENT_FLAGS_OFFSET].copy_from_slice(&version.to_le_bytes());
        out[SEGMENT_FLAGS_OFFSET..SEGMENT_ID_OFFSET].copy_from_slice(&flags.to_le_bytes());
        out[SEGMENT_ID_OFFSET..SEGMENT_BASE_SEQUENCE_OFFSET].copy_from_slice(&self.segment_id.to_le_bytes());
        out[SEGMENT_BASE_SEQUENCE_OFFSET..SEGMENT_CRC_OFFSET]
            .copy_from_slice(&self.base_sequence.to_le_bytes());
        let crc = crc32c::crc32c(&out[..SEGMENT_CRC_OFFSET]);
        out[SEGMENT_CRC_OFFSET..SEGMENT_PADDING_OFFSET].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// The format version a header (already checked by [`SegmentHeader::decode`]) declares.
    pub fn version_of(bytes: &[u8]) -> u32 {
        u32_at(bytes, SEGMENT_VERSION_OFFSET)
    }

    /// True when a header (already checked by [`SegmentHeader::decode`]) is an encrypted
    /// store's.
    pub fn is_encrypted(bytes: &[u8]) -> bool {
        Self::version_of(bytes) >= SEGMENT_VERSION_4
            && u32_at(bytes, SEGMENT_FLAGS_OFFSET) & SEGMENT_FLAG_ENCRYPTED != 0
    }

    /// True when a header (already checked by [`SegmentHeader::decode`]) is a segment
    /// rewritten by compaction.
    pub fn is_compacted(bytes: &[u8]) -> bool {
        Self::version_of(bytes) >= SEGMENT_VERSION_4
            && u32_at(bytes, SEGMENT_FLAGS_OFFSET) & SEGMENT_FLAG_COMPACTED != 0
    }

    /// Decodes and checks a header; the error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < SEGMENT_HEADER_LEN {
            return Err(format!("header cut short ({} of {SEGMENT_HEADER_LEN} bytes)", bytes.len()));
        }
        if &bytes[SEGMENT_MAGIC_OFFSET..SEGMENT_VERSION_OFFSET] != SEGMENT_MAGIC {
            return Err("bad segment magic".into());
        }
        if crc32c::crc32c(&bytes[..SEGMENT_CRC_OFFSET]) != u32_at(bytes, SEGMENT_CRC_OFFSET) {
            return Err("segment header CRC mismatch".into());
        }
        let version = Self::version_of(bytes);
        if !(OLDEST_SEGMENT_VERSION..=SEGMENT_VERSION_4).contains(&version) {
            return Err(format!("unsupported segment version {version}"));
        }
        // Version 4 is only ever written for what its flags name: a version-4 header with
        // none of them, or with one it does not know, is damage, not a format.
        let flags = u32_at(bytes, SEGMENT_FLAGS_OFFSET);
        let expected = version >= SEGMENT_VERSION_4 && flags != 0 && flags & !SEGMENT_FLAGS_KNOWN == 0;
        if version >= SEGMENT_VERSION_4 && !expected {
            return Err(format!("segment version {version} with flags {flags:#x}"));
        }
        Ok(SegmentHeader {
            segment_id: u64_at(bytes, SEGMENT_ID_OFFSET),
            base_sequence: u64_at(bytes, SEGMENT_BASE_SEQUENCE_OFFSET),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let h = SegmentHeader { segment_id: 7, base_sequence: 42 };
        let bytes = h.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
        assert!(SegmentHeader::decode(&bytes[..20]).is_err());
        let mut bad = bytes;
        bad[SEGMENT_ID_OFFSET + 4] ^= 1;
        assert!(SegmentHeader::decode(&bad).is_err());
    }

    #[test]
    fn encrypted_headers_say_so() {
        let h = SegmentHeader { segment_id: 3, base_sequence: 9 };
        let sealed = h.encode_as(true);
        assert_eq!(SegmentHeader::decode(&sealed), Ok(h));
        assert!(SegmentHeader::is_encrypted(&sealed));
        assert_eq!(SegmentHeader::version_of(&sealed), ENCRYPTED_SEGMENT_VERSION);
        assert!(!SegmentHeader::is_encrypted(&h.encode()));
        assert_eq!(h.encode_as(false), h.encode());
    }

    #[test]
    fn compacted_headers_keep_the_encrypted_flag() {
        let h = SegmentHeader { segment_id: 4, base_sequence: 11 };
        for encrypted in [false, true] {
            let bytes = h.encode_compacted(encrypted);
            assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
            assert!(SegmentHeader::is_compacted(&bytes));
            assert_eq!(SegmentHeader::is_encrypted(&bytes), encrypted);
        }
        assert!(!SegmentHeader::is_compacted(&h.encode_as(true)));
        assert!(SegmentHeader::decode(&h.encode_with(SEGMENT_VERSION_4, 0)).is_err());
        assert!(SegmentHeader::decode(&h.encode_with(SEGMENT_VERSION_4, 4)).is_err());
    }
}
