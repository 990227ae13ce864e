//! `Visibility::load` (`hidden.ranges`) on arbitrary files: ordered ranges or
//! `CorruptSegment`, never a panic; whatever loads saves and loads back the same.
#![no_main]

#[path = "common.rs"]
mod common;

#[global_allocator]
static GUARD: common::Guard = common::Guard;

use eventpak_core::io::OsStorage;
use eventpak_core::visibility::{Visibility, HIDDEN_RANGES_FILE};
use eventpak_core::Error;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = common::scratch();
    common::write(dir, HIDDEN_RANGES_FILE, &common::file_bytes(b"EVPKHID\0", data));
    match Visibility::load(dir) {
        Ok(v) => {
            assert!(v.cancelled.iter().all(|(s, e)| s < e));
            assert!(v.cancelled.windows(2).all(|w| w[0].1 <= w[1].0));
            v.save(&OsStorage, dir).expect("save");
            assert_eq!(Visibility::load(dir).expect("reload"), v);
        }
        Err(Error::CorruptSegment { .. }) => {}
        Err(other) => panic!("untyped error {other:?}"),
    }
});
