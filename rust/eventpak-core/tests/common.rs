//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use eventpak_core::segment::{LogFrame, SEGMENT_HEADER_LEN};
use eventpak_core::{AppendRequest, EncryptionKey, Store, StoreConfig, SyncMode};

pub fn config() -> StoreConfig {
    StoreConfig { sync: SyncMode::Never, ..StoreConfig::default() }
}

/// A durable store's config, encrypted with `key` when one is given.
pub fn durable_config(key: Option<&[u8]>) -> StoreConfig {
    StoreConfig {
        sync: SyncMode::Always,
        encryption_key: key.map(|k| EncryptionKey(k.to_vec())),
        ..StoreConfig::default()
    }
}

pub fn request(entity: &str, kind: &str, payload: &[u8]) -> AppendRequest {
    AppendRequest {
        entity: entity.into(),
        scope: "s".into(),
        kind: kind.into(),
        payload: payload.to_vec(),
        idempotency_key: None,
        expected_sequence: None,
        causation_id: None,
        correlation_id: None,
        ..Default::default()
    }
}

pub fn open(dir: &Path, config: StoreConfig) -> Store {
    Store::open(dir, config).expect("open")
}

/// Appends `n` single events spread over three entities.
pub fn fill(store: &Store, n: usize) {
    for i in 0..n {
        let entity = format!("e{}", i % 3);
        store.append(request(&entity, "k", format!("payload-{i}").as_bytes())).expect("append");
    }
}

pub fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    paths.sort();
    paths
}

/// Where one frame of a segment file is, and its place in the log.
#[derive(Clone, Copy, Debug)]
pub struct FrameInfo {
    pub offset: usize,
    pub len: usize,
    pub seq: u64,
    pub batch_index: u32,
    pub batch_len: u32,
    /// False for a tracking record (which takes no sequence: `seq` is the next event's).
    pub is_event: bool,
}

/// Every frame of an intact segment file, read with the engine's own decoder (so it
/// follows the format wherever it moves); panics on anything but a clean end.
pub fn parse_frames(bytes: &[u8]) -> Vec<FrameInfo> {
    let mut at = SEGMENT_HEADER_LEN;
    let mut out = Vec::new();
    while at < bytes.len() {
        let Ok(frame) = LogFrame::decode(&bytes[at..]) else {
            panic!("no intact frame at offset {at} of a {}-byte segment", bytes.len())
        };
        out.push(FrameInfo {
            offset: at,
            len: frame.frame_len(),
            seq: frame.global_sequence(),
            batch_index: frame.batch_index(),
            batch_len: frame.batch_len(),
            is_event: frame.is_event(),
        });
        at += frame.frame_len();
    }
    out
}

/// `(offset, length)` of every frame of an intact segment file.
pub fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    parse_frames(bytes).iter().map(|f| (f.offset, f.len)).collect()
}

/// Copies the folder `from` (recursively) to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir` with its bytes, to prove a failed open changed nothing.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    // `LOCK` only names the process holding the dir (any open writes or clears it).
    for entry in walk(dir).into_iter().filter(|p| p.file_name().is_none_or(|n| n != "LOCK")) {
        out.push((entry.clone(), std::fs::read(&entry).unwrap()));
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
