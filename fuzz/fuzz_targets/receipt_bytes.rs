//! `AppendReceipt::from_bytes`: never a panic; what parses is the one encoding of its fields,
//! so it re-encodes to exactly the input.
#![no_main]

#[path = "common.rs"]
mod common;

#[global_allocator]
static GUARD: common::Guard = common::Guard;

use eventpak_core::{AppendReceipt, RECEIPT_BYTES_LEN, RECEIPT_VERSION};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut buf = data.get(1..).unwrap_or_default().to_vec();
    if data.first().is_some_and(|b| b & 1 == 1) && buf.len() >= 2 {
        // Reach the field checks: a known version and known flag bits.
        buf[0] = RECEIPT_VERSION;
        buf[1] &= 7;
    }
    if let Ok(receipt) = AppendReceipt::from_bytes(&buf) {
        assert_eq!(buf.len(), RECEIPT_BYTES_LEN);
        assert_eq!(receipt.to_bytes().as_slice(), buf.as_slice());
    }
});
