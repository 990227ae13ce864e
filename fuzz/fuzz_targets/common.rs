//! Shared by every fuzz target: an allocation guard and a scratch directory.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// No decoder may allocate this much from a forged length: the process aborts, and
/// libFuzzer keeps the input as a crash.
const ALLOCATION_LIMIT: usize = 64 << 20;

pub struct Guard;

// SAFETY: forwards every call to the system allocator unchanged after a size check.
unsafe impl GlobalAlloc for Guard {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn check(size: usize) {
    if size > ALLOCATION_LIMIT {
        // No allocation here: write a fixed message and abort.
        let msg = b"fuzz guard: allocation above 64 MiB (forged length?)\n";
        // SAFETY: writing a static buffer to stderr.
        unsafe { libc_write(2, msg.as_ptr(), msg.len()) };
        std::process::abort();
    }
}

extern "C" {
    #[link_name = "write"]
    fn libc_write(fd: i32, buf: *const u8, count: usize) -> isize;
}

/// A private directory for this process: under `$EVENTPAK_FUZZ_TMP` (which `run.sh` creates
/// and removes: libFuzzer exits without running destructors), else on tmpfs when there is one.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = std::env::var_os("EVENTPAK_FUZZ_TMP").map(PathBuf::from);
        let root = root.unwrap_or_else(|| PathBuf::from("/dev/shm"));
        let builder = tempfile::Builder::new().prefix("eventpak-fuzz-").tempdir_in(root);
        builder.or_else(|_| tempfile::tempdir()).expect("scratch dir")
    })
    .path()
}

/// `data[0]` picks the mode: odd = wrap the rest in `magic`, version 1 and a correct CRC,
/// so the fuzzer reaches the checks behind the CRC; even = the rest as it is.
pub fn file_bytes(magic: &[u8; 8], data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else { return Vec::new() };
    if mode & 1 == 0 {
        return rest.to_vec();
    }
    let mut out = magic.to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(rest);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write scratch file");
    path
}
