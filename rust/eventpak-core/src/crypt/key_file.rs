//! The key file (`encryption.keys`, `docs/format.md` "Key file"): a header proving which
//! store key the data dir was made with and naming the cipher its payloads are sealed with
//! (its version: 1 for AES-256-GCM-SIV, 2 for AES-256-GCM, plus bit 8 when it lists the
//! keys it forgot), then one self-checking record per data key, wrapped by that store key,
//! or a tombstone of a key a forget destroyed.
//!
//! Records are appended (one `write`, then fsync) when an entity gets a key; the whole file
//! is replaced atomically (temp, fsync, rename, directory fsync) when an entity is
//! forgotten or the store key is rotated. Every write goes through [`Storage`], so the
//! fault sweep and the crash simulator see it.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::payload::PayloadSuite;
use crate::error::{Error, Result};
use crate::io::{open_append, Storage};
use crate::names::MAX_COORDINATE_PART_BYTES;

/// The key file's name in the data dir.
pub const KEY_FILE: &str = "encryption.keys";
/// Bytes of a store key and of a data key.
pub const KEY_LEN: usize = 32;
/// Bytes of an XChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes of a Poly1305 tag.
pub const TAG_LEN: usize = 16;

const MAGIC: &[u8; 8] = b"EVPKKEY\0";
// Header offsets: magic | version u32 | generation u64 | next key id u64 | check nonce
// | check tag | CRC-32C u32 of everything before it.
const VERSION_AT: usize = 8;
const GENERATION_AT: usize = VERSION_AT + 4;
const NEXT_KEY_ID_AT: usize = GENERATION_AT + 8;
const CHECK_NONCE_AT: usize = NEXT_KEY_ID_AT + 8;
const CHECK_TAG_AT: usize = CHECK_NONCE_AT + NONCE_LEN;
const HEADER_CRC_AT: usize = CHECK_TAG_AT + TAG_LEN;
/// Length of the header.
pub const HEADER_LEN: usize = HEADER_CRC_AT + 4;
// Record offsets: record length u32 (bytes after the CRC) | CRC-32C u32 of those bytes
// | key id u64 | nonce | wrapped key (key + tag) | entity length u16 | entity.
const RECORD_PREFIX: usize = 8;
const RECORD_FIXED: usize = 8 + NONCE_LEN + KEY_LEN + TAG_LEN + 2;
/// What the check value and the wrapped keys are bound to, so neither can stand in for
/// the other.
const CHECK_AAD: &[u8] = b"eventpak store key check v1";
const WRAP_AAD: &[u8] = b"eventpak data key v1";

/// What the header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Bumped by every rewrite (a forget, a rotation of the store key): another process
    /// seeing it change reloads the file.
    pub generation: u64,
    /// Every key id below it was handed out once; ids are never reused, so a forgotten
    /// key's id can never name a later key.
    pub next_key_id: u64,
    /// What the payloads are sealed with: the file's version. Kept by every rewrite.
    pub suite: PayloadSuite,
    /// The file keeps a tombstone for every key it forgot ([`KeyRecord::tombstone`]), so a
    /// key id below `next_key_id` that it holds neither as a key nor as a tombstone is
    /// damage, not a forget. Bit 8 of the version; set by every file this build writes
    /// whole (files forgotten by earlier builds hold no tombstones).
    pub lists_forgotten: bool,
}

/// The version bit of [`Header::lists_forgotten`].
const LISTS_FORGOTTEN: u32 = 1 << 8;

/// One data key as stored: wrapped, with the entity and id it is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key's id, carried by every payload sealed with it.
    pub key_id: u64,
    /// The entity it belongs to.
    pub entity: String,
    /// Nonce of the wrapping.
    pub nonce: [u8; NONCE_LEN],
    /// The data key sealed by the store key (key then tag).
    pub wrapped: [u8; KEY_LEN + TAG_LEN],
}

/// A decoded key file: its header, its records, and where its valid bytes end (a torn
/// last record, left by a crash during its append, lies past it).
#[derive(Debug)]
pub struct KeyFile {
    /// The header.
    pub header: Header,
    /// The records, in file order.
    pub records: Vec<KeyRecord>,
    /// Bytes of the header and the intact records.
    pub valid_len: u64,
}

/// The store key's AEAD.
pub fn cipher(key: &[u8]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(Key::from_slice(key))
}

/// Random bytes from the operating system.
pub fn random<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| Error::Internal(format!("no randomness from the OS: {e}")))?;
    Ok(out)
}

fn wrap_aad(key_id: u64, entity: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_AAD.len() + 8 + entity.len());
    aad.extend_from_slice(WRAP_AAD);
    aad.extend_from_slice(&key_id.to_le_bytes());
    aad.extend_from_slice(entity.as_bytes());
    aad
}

/// The header bytes for `header`, with a fresh check value sealed by `store`.
pub fn encode_header(store: &XChaCha20Poly1305, header: Header) -> Result<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = random()?;
    let tag = store
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), CHECK_AAD, &mut [])
        .map_err(|_| Error::Internal("sealing the key check value failed".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(MAGIC);
    let flags = if header.lists_forgotten { LISTS_FORGOTTEN } else { 0 };
    out.extend_from_slice(&(header.suite.key_file_version() | flags).to_le_bytes());
    out.extend_from_slice(&header.generation.to_le_bytes());
    out.extend_from_slice(&header.next_key_id.to_le_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&tag);
    out.extend_from_slice(&crc32c::crc32c(&out).to_le_bytes());
    Ok(out)
}

impl KeyRecord {
    /// A new record holding `key` for `entity`, wrapped by `store`.
    pub fn wrap(store: &XChaCha20Poly1305, key_id: u64, entity: &str, key: &[u8; KEY_LEN]) -> Result<Self> {
        let nonce: [u8; NONCE_LEN] = random()?;
        let mut wrapped = [0u8; KEY_LEN + TAG_LEN];
        wrapped[..KEY_LEN].copy_from_slice(key);
        let tag = store
            .encrypt_in_place_detached(
                XNonce::from_slice(&nonce),
                &wrap_aad(key_id, entity),
                &mut wrapped[..KEY_LEN],
            )
            .map_err(|_| Error::Internal("wrapping a data key failed".into()))?;
        wrapped[KEY_LEN..].copy_from_slice(&tag);
        Ok(KeyRecord { key_id, entity: entity.to_owned(), nonce, wrapped })
    }

    /// The record a forget leaves of a destroyed key: its id and entity, nonce and wrapped
    /// key all zeros (no wrapping is ever all zeros: its tag would have to be).
    pub fn tombstone(key_id: u64, entity: &str) -> Self {
        KeyRecord {
            key_id,
            entity: entity.to_owned(),
            nonce: [0; NONCE_LEN],
            wrapped: [0; KEY_LEN + TAG_LEN],
        }
    }

    /// True for a [`KeyRecord::tombstone`].
    pub fn is_tombstone(&self) -> bool {
        self.nonce == [0; NONCE_LEN] && self.wrapped == [0; KEY_LEN + TAG_LEN]
    }

    /// The data key, or `None` when the wrapping does not open with `store` (damage: the
    /// store key itself was checked against the header). Wiped when dropped: only the
    /// cipher built from it is kept.
    pub fn unwrap_key(&self, store: &XChaCha20Poly1305) -> Option<Zeroizing<[u8; KEY_LEN]>> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&self.wrapped[..KEY_LEN]);
        let tag = Tag::from_slice(&self.wrapped[KEY_LEN..]);
        let aad = wrap_aad(self.key_id, &self.entity);
        store.decrypt_in_place_detached(XNonce::from_slice(&self.nonce), &aad, &mut *key, tag).ok()?;
        Some(key)
    }

    /// Appends the record's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let len = RECORD_FIXED + self.entity.len();
        let start = out.len();
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.key_id.to_le_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.wrapped);
        out.extend_from_slice(&(self.entity.len() as u16).to_le_bytes());
        out.extend_from_slice(self.entity.as_bytes());
        let crc = crc32c::crc32c(&out[start + RECORD_PREFIX..]);
        out[start + 4..start + RECORD_PREFIX].copy_from_slice(&crc.to_le_bytes());
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Decodes the header; `Ok(None)` when `store` is not the key the file was made with.
pub fn decode_header(bytes: &[u8], store: &XChaCha20Poly1305, path: &Path) -> Result<Option<Header>> {
    let bad = |reason: &str| Err(Error::corrupt(path, 0, reason));
    if bytes.len() < HEADER_LEN {
        return bad("key file header cut short");
    }
    if &bytes[..VERSION_AT] != MAGIC {
        return bad("bad key file magic");
    }
    if crc32c::crc32c(&bytes[..HEADER_CRC_AT]) != u32_at(bytes, HEADER_CRC_AT) {
        return bad("key file header CRC mismatch");
    }
    let version = u32_at(bytes, VERSION_AT);
    let suite = PayloadSuite::of_key_file_version(version & !LISTS_FORGOTTEN);
    let Some(suite) = suite else { return bad("unsupported key file version") };
    let lists_forgotten = version & LISTS_FORGOTTEN != 0;
    let nonce = XNonce::from_slice(&bytes[CHECK_NONCE_AT..CHECK_TAG_AT]);
    let tag = Tag::from_slice(&bytes[CHECK_TAG_AT..HEADER_CRC_AT]);
    if store.decrypt_in_place_detached(nonce, CHECK_AAD, &mut [], tag).is_err() {
        return Ok(None);
    }
    let (generation, next_key_id) = (u64_at(bytes, GENERATION_AT), u64_at(bytes, NEXT_KEY_ID_AT));
    Ok(Some(Header { generation, next_key_id, suite, lists_forgotten }))
}

/// Decodes the records of `bytes` from `from`. A record cut short, or damaged and reaching
/// the end of the file, is a crash during its append: decoding stops before it. Any other
/// damage is corruption.
pub fn decode_records(bytes: &[u8], from: usize, path: &Path) -> Result<(Vec<KeyRecord>, u64)> {
    decode_records_at(&bytes[from..], from as u64, path)
}

/// [`decode_records`] of `bytes`, the file's content from offset `base` on (what a reload of
/// the records appended since `base` reads). Offsets reported are the file's.
pub fn decode_records_at(bytes: &[u8], base: u64, path: &Path) -> Result<(Vec<KeyRecord>, u64)> {
    let corrupt = |at: usize, why: &str| Error::corrupt(path, base + at as u64, why.to_owned());
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < RECORD_PREFIX {
            break;
        }
        let len = u32_at(rest, 0) as usize;
        let end = RECORD_PREFIX + len;
        let possible = (RECORD_FIXED..=RECORD_FIXED + MAX_COORDINATE_PART_BYTES).contains(&len);
        if rest.len() < end || !possible {
            // A crash during an append leaves the record cut short, or zeros. A length no
            // record can have, followed by bytes, is damage (a flipped length would
            // otherwise pass every record after it off as a torn tail).
            if (possible && rest.len() < end) || rest.iter().all(|&b| b == 0) {
                break;
            }
            return Err(corrupt(at, "impossible key record length"));
        }
        let body = &rest[RECORD_PREFIX..end];
        if crc32c::crc32c(body) != u32_at(rest, 4) {
            if end == rest.len() {
                break;
            }
            return Err(corrupt(at, "key record CRC mismatch"));
        }
        let entity_len = u16::from_le_bytes([body[RECORD_FIXED - 2], body[RECORD_FIXED - 1]]) as usize;
        let entity =
            std::str::from_utf8(&body[RECORD_FIXED..]).ok().filter(|_| entity_len == len - RECORD_FIXED);
        let Some(entity) = entity else {
            return Err(corrupt(at, "key record entity does not fit"));
        };
        records.push(KeyRecord {
            key_id: u64_at(body, 0),
            entity: entity.to_owned(),
            nonce: body[8..8 + NONCE_LEN].try_into().unwrap(),
            wrapped: body[8 + NONCE_LEN..8 + NONCE_LEN + KEY_LEN + TAG_LEN].try_into().unwrap(),
        });
        at += end;
    }
    Ok((records, base + at as u64))
}

/// Reads the whole key file at `path`.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| Error::storage("reading the key file", e))?;
    Ok(bytes)
}

/// Reads the key file's header and its bytes from `from` on (the records appended since a
/// reload that ended at `from`), without reading the records in between.
pub fn read_header_and_tail(path: &Path, from: u64) -> Result<(Vec<u8>, Vec<u8>)> {
    use std::os::unix::fs::FileExt;
    let failed = |e| Error::storage("reading the key file", e);
    let file = File::open(path).map_err(failed)?;
    let len = file.metadata().map_err(failed)?.len();
    let mut header = vec![0u8; HEADER_LEN.min(len as usize)];
    file.read_exact_at(&mut header, 0).map_err(failed)?;
    let from = from.max(HEADER_LEN as u64).min(len);
    let mut tail = vec![0u8; (len - from) as usize];
    file.read_exact_at(&mut tail, from).map_err(failed)?;
    Ok((header, tail))
}

/// Reads and decodes the key file; `Ok(None)` when `store` is the wrong key.
pub fn load(path: &Path, store: &XChaCha20Poly1305) -> Result<Option<KeyFile>> {
    let bytes = read_bytes(path)?;
    let Some(mut header) = decode_header(&bytes, store, path)? else { return Ok(None) };
    let (records, valid_len) = decode_records(&bytes, HEADER_LEN, path)?;
    if valid_len < bytes.len() as u64 {
        // A tail that will be cut: a crash during an append, or a damaged last record,
        // which the two cannot be told apart. Its id is never handed out again: were it
        // the damaged record of a key in use, its payloads must read as damage (a lost
        // key), not open with (or be taken as forgotten under) a new entity's key.
        let past = records.iter().map(|r| r.key_id + 1).max().unwrap_or(0).max(header.next_key_id);
        header.next_key_id = past + 1;
    }
    Ok(Some(KeyFile { header, records, valid_len }))
}

/// Appends `record` durably: cuts a torn tail left by a crash first (`valid_len` is where
/// the intact records end), then one `write` and an fsync. Returns the new valid length.
pub fn append_record(storage: &dyn Storage, path: &Path, valid_len: u64, record: &KeyRecord) -> Result<u64> {
    let file = open_append(path, false).map_err(|e| Error::storage("opening the key file", e))?;
    let len = file.metadata().map_err(|e| Error::storage("reading the key file size", e))?.len();
    if len != valid_len {
        storage
            .truncate(&file, path, valid_len)
            .map_err(|e| Error::storage("cutting the key file's torn tail", e))?;
    }
    let mut bytes = Vec::with_capacity(RECORD_PREFIX + RECORD_FIXED + record.entity.len());
    record.encode(&mut bytes);
    storage.write(&file, path, &bytes).map_err(|e| Error::storage("writing a key record", e))?;
    storage.sync(&file, path).map_err(|e| Error::storage("fsync of the key file", e))?;
    Ok(valid_len + bytes.len() as u64)
}

/// The whole file for `header` and `records`.
pub fn encode_file(store: &XChaCha20Poly1305, header: Header, records: &[KeyRecord]) -> Result<Vec<u8>> {
    let mut out = encode_header(store, header)?;
    for record in records {
        record.encode(&mut out);
    }
    Ok(out)
}
