//! The fixed header at the start of every segment file.

/// Identifies an eventpak segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"EVPKSEG\0";
/// Version of the segment format described in `docs/format.md`.
pub const SEGMENT_VERSION: u32 = 1;
/// Size of the segment header in bytes.
pub const SEGMENT_HEADER_LEN: usize = 40;

/// The decoded header of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The segment id, equal to the number in its file name.
    pub segment_id: u64,
    /// Global sequence of the first frame this segment holds (or will hold).
    pub base_sequence: u64,
}

impl SegmentHeader {
    /// Encodes the header: magic, version, flags, id, base sequence, CRC32C, padding.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[0..8].copy_from_slice(SEGMENT_MAGIC);
        out[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        // 12..16: flags, zero in version 1.
        out[16..24].copy_from_slice(&self.segment_id.to_le_bytes());
        out[24..32].copy_from_slice(&self.base_sequence.to_le_bytes());
        let crc = crc32c::crc32c(&out[0..32]);
        out[32..36].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a header; the error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < SEGMENT_HEADER_LEN {
            return Err(format!("header cut short ({} of {SEGMENT_HEADER_LEN} bytes)", bytes.len()));
        }
        if &bytes[0..8] != SEGMENT_MAGIC {
            return Err("bad segment magic".into());
        }
        let stored_crc = u32::from_le_bytes(bytes[32..36].try_into().unwrap());
        if crc32c::crc32c(&bytes[0..32]) != stored_crc {
            return Err("segment header CRC mismatch".into());
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        if version != SEGMENT_VERSION {
            return Err(format!("unsupported segment version {version}"));
        }
        Ok(SegmentHeader {
            segment_id: u64::from_le_bytes(bytes[16..24].try_into().unwrap()),
            base_sequence: u64::from_le_bytes(bytes[24..32].try_into().unwrap()),
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
        bad[20] ^= 1;
        assert!(SegmentHeader::decode(&bad).is_err());
    }
}
