//! The store's identity: 16 random bytes fixed when the data dir is created, kept in
//! `store.id` (magic, the id, CRC-32C). Caches key their entries by it, so a data dir
//! deleted and made again at the same path never serves the old one's states.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::{write_atomic, Storage};
use crate::segment::{list_segments, SegmentHeader, FIRST_SEALED_VERSION, SEGMENTS_DIR, SEGMENT_HEADER_LEN};

/// File name of the store identity inside a data dir.
pub const STORE_ID_FILE: &str = "store.id";
const MAGIC: &[u8; 8] = b"EVPKSID\0";
const ID_OFFSET: usize = MAGIC.len();
const CRC_OFFSET: usize = ID_OFFSET + 16;
const FILE_LEN: usize = CRC_OFFSET + size_of::<u32>();

/// The id of the store in `data_dir`: read from `store.id`, or, when the file is missing,
/// made (random for a new store) and, unless `read_only`, written.
pub(super) fn load_or_create(storage: &dyn Storage, data_dir: &Path, read_only: bool) -> Result<[u8; 16]> {
    let path = data_dir.join(STORE_ID_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => return decode(&bytes).map_err(|reason| Error::corrupt(&path, 0, reason)),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::storage("reading store.id", e))
        }
        Err(_) => {}
    }
    let head = first_segment_head(data_dir);
    if head.as_deref().is_some_and(lost) {
        let why = "missing, yet the segments hold events written since it exists: restore it from a backup";
        return Err(Error::corrupt(&path, 0, why));
    }
    let id = head.as_deref().map_or_else(|| uuid::Uuid::new_v4().into_bytes(), legacy_id);
    if !read_only {
        write_atomic(storage, data_dir, STORE_ID_FILE, &encode(&id))
            .map_err(|e| Error::storage("writing store.id", e))?;
    }
    Ok(id)
}

/// The id a data dir already has (its `store.id`, or the one derived from its first
/// segment), without writing anything; `None` when it has neither or `store.id` is damaged.
pub(super) fn existing(data_dir: &Path) -> Option<[u8; 16]> {
    match std::fs::read(data_dir.join(STORE_ID_FILE)) {
        Ok(bytes) => decode(&bytes).ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            first_segment_head(data_dir).as_deref().map(legacy_id)
        }
        Err(_) => None,
    }
}

/// The first 4 KiB of the first segment (less when it is shorter); `None` without one.
fn first_segment_head(data_dir: &Path) -> Option<Vec<u8>> {
    let (_, first) = list_segments(&data_dir.join(SEGMENTS_DIR)).ok()?.into_iter().next()?;
    let mut head = vec![0; 4096];
    let n = std::io::Read::read(&mut std::fs::File::open(first).ok()?, &mut head).ok()?;
    head.truncate(n);
    Some(head)
}

/// True when `store.id` can only be missing through damage (or a hand): the first segment
/// (whose `head` this is) holds events and was written by a build that writes `store.id`
/// before any event (format version 2 on). A store made new, or killed before its first
/// event, has none yet.
fn lost(head: &[u8]) -> bool {
    head.len() > SEGMENT_HEADER_LEN && SegmentHeader::version_of(head) >= FIRST_SEALED_VERSION
}

/// A data dir made before `store.id` existed gets an id derived from its first segment's
/// `head`, so a read-only open and a later writable one (which then records it) agree.
fn legacy_id(head: &[u8]) -> [u8; 16] {
    let digest = blake3::Hasher::new().update(b"eventpak legacy store id").update(head).finalize();
    digest.as_bytes()[..16].try_into().expect("16 of 32 bytes")
}

fn encode(id: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FILE_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(id);
    out.extend_from_slice(&crc32c::crc32c(&out).to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> std::result::Result<[u8; 16], String> {
    if bytes.len() != FILE_LEN || &bytes[..ID_OFFSET] != MAGIC {
        return Err("not a store.id file".into());
    }
    let crc = u32::from_le_bytes(bytes[CRC_OFFSET..].try_into().expect("4 bytes"));
    if crc32c::crc32c(&bytes[..CRC_OFFSET]) != crc {
        return Err("store.id CRC mismatch".into());
    }
    Ok(bytes[ID_OFFSET..CRC_OFFSET].try_into().expect("16 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let id = [7u8; 16];
        let bytes = encode(&id);
        assert_eq!(decode(&bytes), Ok(id));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(decode(&bad).is_err(), "flip at {i} undetected");
        }
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
