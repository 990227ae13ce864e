//! `SegmentHeader::decode`: never a panic; what decodes re-encodes to the same checked bytes.
#![no_main]

#[path = "common.rs"]
mod common;

#[global_allocator]
static GUARD: common::Guard = common::Guard;

use eventpak_core::segment::SegmentHeader;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut buf = data.get(1..).unwrap_or_default().to_vec();
    if data.first().is_some_and(|b| b & 1 == 1) && buf.len() >= 36 {
        buf[0..8].copy_from_slice(b"EVPKSEG\0");
        let crc = crc32c::crc32c(&buf[0..32]);
        buf[32..36].copy_from_slice(&crc.to_le_bytes());
    }
    if let Ok(header) = SegmentHeader::decode(&buf) {
        assert_eq!(SegmentHeader::decode(&header.encode()), Ok(header));
        assert_eq!(header.encode()[16..32], buf[16..32]);
    }
});
