//! Segment files: naming, creation, scanning and mapped reads.

mod crc;
mod frame;
mod frame_encode;
mod header;
pub mod layout;
mod log_frame;
pub mod reader;
mod scan;
mod seals;
mod tags_section;
mod tracking_frame;

pub use frame::{
    decode_frame, encode_frame, encode_frame_fields, frame_len, frame_len_of, payload_version_len, Decoded,
    FrameFields, FrameView, FRAME_HEADER_LEN, MAX_BODY_LEN,
};
pub use header::{
    SegmentHeader, COMPACTED_SEGMENT_VERSION, ENCRYPTED_SEGMENT_VERSION, FIRST_SEALED_VERSION,
    SEGMENT_FLAG_COMPACTED, SEGMENT_FLAG_ENCRYPTED, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENT_VERSION,
    SEGMENT_VERSION_4,
};
pub use log_frame::LogFrame;
pub use reader::{SegmentSet, StoredEvent};
pub use scan::{scan_segment, ScanEnd};
pub use seals::{
    append_seal, encode_seal_records, load_seals, Seal, SealRecords, SEALS_FILE, SEAL_RECORD_LEN,
};
pub use tags_section::{check_tags_section, encode_tags, tags_section_len, write_tags, TagIter};
pub use tracking_frame::{encode_tracking_frame, tracking_frame_len, TrackingFields, TrackingView};

use std::path::{Path, PathBuf};

/// Name of the folder holding segment files inside a data dir.
pub const SEGMENTS_DIR: &str = "segments";

/// File name of a segment: its id as 20 zero-padded decimal digits, then `.seg`.
pub fn segment_file_name(id: u64) -> String {
    format!("{id:020}.seg")
}

/// Parses a segment file name; `None` for any other file.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Maps a whole segment file for reading.
pub fn map_segment(path: &Path) -> std::io::Result<memmap2::Mmap> {
    let file = std::fs::File::open(path)?;
    // SAFETY: segments are append-only and only the store holding the data dir lock writes
    // them; the bytes read through a mapping are never rewritten.
    unsafe { memmap2::Mmap::map(&file) }
}

/// Lists the segment files of `dir` in ascending id order.
pub fn list_segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_segment_file_name) {
            found.push((id, entry.path()));
        }
    }
    found.sort_unstable_by_key(|(id, _)| *id);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_file_name(3), "00000000000000000003.seg");
        assert_eq!(parse_segment_file_name("00000000000000000003.seg"), Some(3));
        assert_eq!(parse_segment_file_name("3.seg"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000x.seg"), None);
    }
}
