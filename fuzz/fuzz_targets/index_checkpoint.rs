//! `load_checkpoint` on arbitrary files: never a panic or a large allocation; whatever loads
//! writes back and loads again.
#![no_main]

#[path = "common.rs"]
mod common;

#[global_allocator]
static GUARD: common::Guard = common::Guard;

use eventpak_core::io::OsStorage;
use eventpak_core::index::{load_checkpoint, write_checkpoint, INDEX_CHECKPOINT_FILE};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = common::scratch();
    common::write(dir, INDEX_CHECKPOINT_FILE, &common::file_bytes(b"EVPKIDX\0", data));
    if let Ok(Some((index, cover))) = load_checkpoint(dir) {
        write_checkpoint(&OsStorage, dir, &index, &cover).expect("write back");
        let (again, again_cover) = load_checkpoint(dir).expect("reload").expect("present");
        assert_eq!(
            (again.len(), &again_cover.segments, again_cover.last_timestamp_us),
            (index.len(), &cover.segments, cover.last_timestamp_us)
        );
        // Whatever version was read, the one written is the current one, with causal sections.
        assert!(again_cover.has_causal);
    }
});
