//! `CursorCheckpoint::load` on arbitrary files: a checkpoint or `CursorCheckpointCorrupt`,
//! never a panic; whatever loads saves and loads back the same.
#![no_main]

#[path = "common.rs"]
mod common;

#[global_allocator]
static GUARD: common::Guard = common::Guard;

use eventpak_core::{CursorCheckpoint, Error};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = common::scratch();
    std::fs::create_dir_all(dir.join("cursors")).unwrap();
    common::write(&dir.join("cursors"), "f.ckpt", &common::file_bytes(b"EVPKCUR\0", data));
    match CursorCheckpoint::load(dir, "f") {
        Ok(Some(ckpt)) => {
            ckpt.save(dir, "f").expect("save");
            assert_eq!(CursorCheckpoint::load(dir, "f").expect("reload"), Some(ckpt));
        }
        Ok(None) => panic!("an existing file loaded as missing"),
        Err(Error::CursorCheckpointCorrupt { .. }) => {}
        Err(other) => panic!("untyped error {other:?}"),
    }
});
