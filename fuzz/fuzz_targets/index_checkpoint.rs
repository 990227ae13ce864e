//! `load_checkpoint` on arbitrary files: never a panic or a large allocation; whatever loads
//! writes back and loads again.
#![no_main]

#[path = "common.rs"]
mod common;

#[global_allocator]
static GUARD: common::Guard = common::Guard;

use eventpak_core::index::{load_checkpoint, write_checkpoint, INDEX_CHECKPOINT_FILE};
use eventpak_core::io::OsStorage;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = common::scratch();
    common::write(dir, INDEX_CHECKPOINT_FILE, &checkpoint_bytes(data));
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

/// The version of a sealed file, by `(first byte >> 1) % 4`: every version this build reads,
/// in an order that keeps the committed regression inputs (written when every sealed file was
/// version 1) at version 1.
const VERSIONS: [u32; 4] = [4, 1, 2, 3];

/// The file a run loads: for an even first byte the rest as it is; for an odd one a sealed
/// file (magic, the version from [`VERSIONS`], the rest, a good CRC), so that every version is
/// explored past its CRC (version 4's holes too).
fn checkpoint_bytes(data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else { return Vec::new() };
    if mode & 1 == 0 {
        return rest.to_vec();
    }
    let mut out = b"EVPKIDX\0".to_vec();
    out.extend_from_slice(&VERSIONS[usize::from(mode >> 1) % 4].to_le_bytes());
    out.extend_from_slice(rest);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}
