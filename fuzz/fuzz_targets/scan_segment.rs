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
    let next = (mode >> 1) as u64;
    let mut bytes = SegmentHeader { segment_id: 0, base_sequence: next }.encode().to_vec();
    bytes.extend_from_slice(rest);
    let mut seen = Vec::new();
    let result = scan_segment(Path::new("fuzz.seg"), &bytes, SEGMENT_HEADER_LEN, next, is_last, |at, f| {
        seen.push((at, f.global_sequence, f.len));
        Ok(())
    });
    match result {
        Ok(end) => {
            assert_eq!(end.valid_len + end.torn_bytes, bytes.len() as u64);
            assert!(is_last || end.torn_bytes == 0);
            let mut at = SEGMENT_HEADER_LEN as u64;
            for (i, &(offset, seq, len)) in seen.iter().enumerate() {
                assert_eq!((offset, seq), (at, next + i as u64));
                at += len as u64;
            }
            assert_eq!((at, end.next_sequence), (end.valid_len, next + seen.len() as u64));
        }
        Err(Error::CorruptSegment { offset, .. }) => assert!(offset <= bytes.len() as u64),
        Err(other) => panic!("untyped scan error {other:?}"),
    }
});
