//! `decode_frame` on arbitrary bytes: never a panic, never a frame longer than the input,
//! and whatever decodes (an event or a tracking record) re-encodes to the same bytes.
#![no_main]

#[path = "common.rs"]
mod common;

#[global_allocator]
static GUARD: common::Guard = common::Guard;

use eventpak_core::segment::{decode_frame, encode_frame, encode_tracking_frame, Decoded};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Odd first byte: fix the CRC so the field checks behind it run.
    let mut buf = data.get(1..).unwrap_or_default().to_vec();
    if data.first().is_some_and(|b| b & 1 == 1) && buf.len() >= 24 {
        let len = (24 + u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize).min(buf.len());
        let crc = crc32c::crc32c(&buf[8..len]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
    }
    let frame = match decode_frame(&buf) {
        Decoded::Frame(frame) => frame,
        Decoded::Tracking(t) => {
            assert!(t.len <= buf.len() && t.batch_index + 1 == t.batch_len);
            let mut again = Vec::new();
            encode_tracking_frame(&mut again, t.fields(), t.global_sequence, t.batch_index, t.batch_len);
            assert_eq!(again, buf[..t.len], "a tracking record re-encodes to other bytes");
            return;
        }
        _ => return,
    };
    assert!(frame.len <= buf.len() && frame.batch_index < frame.batch_len);
    let record = frame.to_record();
    let mut again = Vec::new();
    encode_frame(&mut again, &record, frame.batch_index, frame.batch_len);
    let Decoded::Frame(second) = decode_frame(&again) else { panic!("re-encoded frame does not decode") };
    assert_eq!(second.to_record(), record);
});
