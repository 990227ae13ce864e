//! Whole-store recovery: a real small store (three segments, their seal records, batches, a
//! committed and a cancelled fence, an index checkpoint) is damaged by the input's edits (byte
//! changes and truncations anywhere in its files), then opened read-only. It must open with a
//! byte-exact prefix of the original log or fail with `CorruptSegment`; never panic. Under a
//! loaded index checkpoint a damaged covered frame may be refused on read instead (then
//! `verify` must report a problem). Unless an edit truncated a sealed (not newest) segment or
//! the seal records, only the newest segment may lose events.
#![no_main]

#[path = "common.rs"]
mod common;

#[global_allocator]
static GUARD: common::Guard = common::Guard;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use eventpak_core::{AppendRequest, Error, Region, Store, StoreConfig, SyncMode};

struct Pristine {
    /// `(path relative to the data dir, bytes)`: segments first, then sidecars.
    files: Vec<(PathBuf, Vec<u8>)>,
    frames: Vec<Vec<u8>>,
    last_segment_base: u64,
}

fn config() -> StoreConfig {
    StoreConfig { sync: SyncMode::Never, segment_max_bytes: 4096, ..StoreConfig::default() }
}

fn req(entity: &str, n: usize) -> AppendRequest {
    AppendRequest {
        entity: entity.into(),
        scope: "s".into(),
        kind: "k".into(),
        payload: format!("payload-{n}-{}", "x".repeat(n % 40)).into_bytes(),
        idempotency_key: n.is_multiple_of(5).then(|| format!("key-{n}").into_bytes()),
        expected_sequence: None,
        causation_id: None,
        correlation_id: None,
        ..AppendRequest::default()
    }
}

/// The segment files (not the seal records) of a data dir, in id order.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    segments
}

fn pristine() -> &'static Pristine {
    static P: OnceLock<Pristine> = OnceLock::new();
    P.get_or_init(|| {
        let dir = common::scratch().join("pristine");
        let store = Store::open(&dir, config()).unwrap();
        for n in 0..12 {
            store.append(req(&format!("e{}", n % 3), n)).unwrap();
        }
        store
            .append_batch(
                (12..15).map(|n| req("b", n)).map(|r| AppendRequest { idempotency_key: None, ..r }).collect(),
            )
            .unwrap();
        store.begin_fence().unwrap();
        store.fence_append_batch(vec![AppendRequest { idempotency_key: None, ..req("e1", 15) }]).unwrap();
        store.commit_fence().unwrap();
        store.begin_fence().unwrap();
        store.fence_append_batch(vec![AppendRequest { idempotency_key: None, ..req("e2", 16) }]).unwrap();
        store.cancel_fence().unwrap();
        let mut n = 17;
        while segment_files(&dir).len() < 3 {
            store.append(req(&format!("e{}", n % 3), n)).unwrap();
            n += 1;
        }
        store
            .append_batch(
                (n..n + 2).map(|n| AppendRequest { idempotency_key: None, ..req("t", n) }).collect(),
            )
            .unwrap();
        store.close().unwrap();
        let segments = segment_files(&dir);
        let store = Store::open(&dir, StoreConfig { read_only: true, ..config() }).unwrap();
        let total = store.stats().unwrap().events;
        let frames: Vec<Vec<u8>> = store
            .read_events(&(0..total).collect::<Vec<_>>())
            .unwrap()
            .iter()
            .map(|e| e.frame_bytes().to_vec())
            .collect();
        let last = std::fs::read(segments.last().unwrap()).unwrap();
        let last_segment_base = u64::from_le_bytes(last[24..32].try_into().unwrap());
        drop(store);
        let mut files: Vec<(PathBuf, Vec<u8>)> = segments
            .iter()
            .map(|p| (p.strip_prefix(&dir).unwrap().to_owned(), std::fs::read(p).unwrap()))
            .collect();
        for name in ["segments/seals", "index.ckpt", "hidden.ranges"] {
            files.push((PathBuf::from(name), std::fs::read(dir.join(name)).unwrap()));
        }
        Pristine { files, frames, last_segment_base }
    })
}

/// Writes the pristine files with `edits` applied; true when a sealed segment was cut.
fn reset(dir: &Path, p: &Pristine, edits: &[u8]) -> bool {
    let mut files: Vec<Vec<u8>> = p.files.iter().map(|(_, b)| b.clone()).collect();
    let segments = p.files.iter().filter(|(rel, _)| rel.extension().is_some_and(|x| x == "seg")).count();
    let seals = segments; // the seal records come right after the segments
    let mut sealed_cut = false;
    // Each edit is 4 bytes: file (high bit: truncate), offset u16, value.
    for edit in edits.chunks_exact(4) {
        let index = (edit[0] & 0x7f) as usize % p.files.len();
        let file = &mut files[index];
        if file.is_empty() {
            continue;
        }
        let at = u16::from_le_bytes([edit[1], edit[2]]) as usize % file.len();
        if edit[0] & 0x80 != 0 {
            sealed_cut |= index + 1 < segments || index == seals;
            file.truncate(at);
        } else {
            file[at] ^= edit[3].max(1);
        }
    }
    std::fs::create_dir_all(dir.join("segments")).unwrap();
    for ((rel, _), bytes) in p.files.iter().zip(&files) {
        std::fs::write(dir.join(rel), bytes).unwrap();
    }
    sealed_cut
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let p = pristine();
    let dir = common::scratch().join("work");
    let sealed_cut = reset(&dir, p, &data[..data.len().min(4 * 8)]);
    let config =
        StoreConfig { read_only: true, enable_index_checkpoint: data.len().is_multiple_of(2), ..config() };
    match Store::open(&dir, config) {
        Ok(store) => {
            let n = store.stats().unwrap().events;
            assert!(sealed_cut || n >= p.last_segment_base, "events lost before the last segment: {n}");
            let loaded = store.stats().unwrap().recovery.index_checkpoint == "loaded";
            match store.read_events(&(0..n).collect::<Vec<_>>()) {
                Ok(events) => {
                    assert_eq!(events.len() as u64, n);
                    for (seq, e) in events.iter().enumerate() {
                        assert_eq!(e.frame_bytes(), &p.frames[seq][..], "event {seq} differs");
                    }
                    store.query(&Region::all(), None, None).unwrap();
                }
                // Open read only the last covered frame of each segment: damage to another
                // is refused when read, and the full check reports it.
                Err(Error::CorruptSegment { .. }) if loaded => {
                    assert!(
                        !store.verify(&mut |_, _| true).unwrap().ok(),
                        "a refused read verify did not see"
                    );
                }
                Err(other) => panic!("read after a successful open: {other:?}"),
            }
        }
        Err(Error::CorruptSegment { .. }) => {}
        Err(other) => panic!("untyped error {other:?}"),
    }
});
