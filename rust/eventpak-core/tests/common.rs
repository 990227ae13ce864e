//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use eventpak_core::{AppendRequest, Store, StoreConfig, SyncMode};

pub fn config() -> StoreConfig {
    StoreConfig { sync: SyncMode::Never, ..StoreConfig::default() }
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
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(dir.join("segments")).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths
}

/// `(offset, length)` of every frame in a segment file.
pub fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut at = 40;
    let mut out = Vec::new();
    while at + 24 <= bytes.len() {
        let len = 24 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, len));
        at += len;
    }
    out
}

/// Every file under `dir` with its bytes, to prove a failed open changed nothing.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in walk(dir) {
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
