//! `scan_segment` on arbitrary segment bytes: never a panic; what it reports is a consistent
//! prefix (contiguous frames, dense sequences, valid + torn = the whole file).
#![no_main]

#[path = "common.rs"]
mod common;

#[global_allocator]
static GUARD: common::Guard = common::Guard;

use std::path::Path;

use eventpak_core::segment::{scan_segment, SegmentHeader, SEGMENT_HEADER_LEN};
use eventpak_core::Error;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let is_last = mode & 1 == 1;
    let jumps = mode & 2 == 2;
    let next = (mode >> 2) as u64;
    let mut bytes = SegmentHeader { segment_id: 0, base_sequence: next }.encode().to_vec();
    bytes.extend_from_slice(rest);
    let mut seen = Vec::new();
    let result =
        scan_segment(Path::new("fuzz.seg"), &bytes, SEGMENT_HEADER_LEN, next, (is_last, jumps), |at, f| {
            seen.push((at, f.global_sequence(), f.frame_len(), f.is_event()));
            Ok(())
        });
    match result {
        Ok(end) => {
            assert_eq!(end.valid_len + end.torn_bytes, bytes.len() as u64);
            assert!(is_last || end.torn_bytes == 0);
            // Events carry dense sequences (increasing ones with jumps); a tracking record
            // the sequence after the last event, taking none.
            let (mut at, mut expected) = (SEGMENT_HEADER_LEN as u64, next);
            for &(offset, seq, len, is_event) in &seen {
                assert_eq!(offset, at);
                assert!(seq == expected || (jumps && is_event && seq > expected));
                expected = if is_event { seq + 1 } else { seq };
                at += len as u64;
            }
            assert_eq!((at, end.next_sequence), (end.valid_len, expected));
        }
        Err(Error::CorruptSegment { offset, .. }) => assert!(offset <= bytes.len() as u64),
        Err(other) => panic!("untyped scan error {other:?}"),
    }
});
