//! Telling an encrypted store from a clear one at open, before anything is written, and
//! refusing a key that does not fit: a wrong key, no key for an encrypted store, a key for
//! a clear one.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use super::key_file::{self, Header, KeyFile, HEADER_LEN, KEY_FILE, KEY_LEN};
use super::ring::Ring;
use super::{PayloadKeys, PayloadSuite};
use crate::error::{Error, Result};
use crate::io::Storage;
use crate::segment::{SegmentHeader, SEGMENT_HEADER_LEN};

/// What the data dir says about encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreMode {
    /// `encryption.keys` exists.
    pub key_file: bool,
    /// A segment header carries the encrypted flag (format version 4): the store is
    /// encrypted even if its key file were deleted.
    pub encrypted_segment: bool,
    /// Any segment file exists: the store's mode was fixed when its first one was made.
    pub any_segment: bool,
    /// A segment header reads, decodes and carries no encrypted flag: the store is clear.
    pub clear_segment: bool,
}

impl StoreMode {
    /// Reads the mode of the data dir (only reads: the key file's presence and each
    /// segment's first bytes).
    pub fn of(data_dir: &Path, segments_dir: &Path) -> Result<StoreMode> {
        let key_file = std::fs::symlink_metadata(data_dir.join(KEY_FILE)).is_ok();
        let mut mode =
            StoreMode { key_file, encrypted_segment: false, any_segment: false, clear_segment: false };
        let Ok(entries) = std::fs::read_dir(segments_dir) else { return Ok(mode) };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let is_segment = name.to_str().is_some_and(|n| n.len() == 24 && n.ends_with(".seg"));
            if !is_segment {
                continue;
            }
            mode.any_segment = true;
            let mut head = [0u8; SEGMENT_HEADER_LEN];
            let read = std::fs::File::open(entry.path()).and_then(|mut f| f.read_exact(&mut head));
            // A header that does not read or decode is for recovery to judge.
            if read.is_ok() && SegmentHeader::decode(&head).is_ok() {
                let encrypted = SegmentHeader::is_encrypted(&head);
                mode.encrypted_segment |= encrypted;
                mode.clear_segment |= !encrypted;
            }
        }
        Ok(mode)
    }

    /// True when the store is encrypted.
    pub fn encrypted(&self) -> bool {
        self.key_file || self.encrypted_segment
    }
}

/// What [`open_keys`] found and made.
pub struct OpenedKeys {
    /// The store's keys; `None` for a clear store.
    pub keys: Option<PayloadKeys>,
    /// The key file was there when the open began (this open did not make it).
    pub key_file_found: bool,
}

/// The store's keys for an open with `key` (`None`: no encryption_key given). Refuses
/// with [`Error::InvalidConfig`], having written nothing, a wrong key, a missing key for an
/// encrypted store, and a key for a store made clear. A new store opened with a key gets
/// its key file here, before its first segment.
pub fn open_keys(
    data_dir: &Path,
    segments_dir: &Path,
    storage: &Arc<dyn Storage>,
    key: Option<&[u8]>,
    read_only_shared: (bool, bool),
) -> Result<OpenedKeys> {
    let mode = StoreMode::of(data_dir, segments_dir)?;
    let keys = keys_of(mode, data_dir, storage, key, read_only_shared)?;
    Ok(OpenedKeys { keys, key_file_found: mode.key_file })
}

fn keys_of(
    mode: StoreMode,
    data_dir: &Path,
    storage: &Arc<dyn Storage>,
    key: Option<&[u8]>,
    (read_only, shared): (bool, bool),
) -> Result<Option<PayloadKeys>> {
    let refuse = |why: &str| Err(Error::InvalidConfig(why.to_owned()));
    let Some(key) = key else {
        if mode.encrypted() {
            return refuse("this store is encrypted: open it with its encryption_key");
        }
        return Ok(None);
    };
    if key.len() != KEY_LEN {
        return refuse("encryption_key must be 32 bytes");
    }
    let store = key_file::cipher(key);
    let path = data_dir.join(KEY_FILE);
    let file = if mode.key_file {
        match key_file::load(&path, &store)? {
            Some(file) => file,
            None => return refuse("encryption_key is not the key this store was encrypted with"),
        }
    } else if mode.encrypted_segment {
        return refuse(&format!(
            "this store is encrypted but its key file {KEY_FILE} is missing; restore it from a backup"
        ));
    } else if mode.any_segment {
        return refuse("this store was created without encryption; an encryption_key cannot be added to it");
    } else if read_only {
        return refuse("read_only=True creates nothing, and this data dir holds no store yet");
    } else {
        create(storage, data_dir, &store, shared)?
    };
    let ring = Ring::build(&path, &store, file, 0)?;
    Ok(Some(PayloadKeys::new(path, storage.clone(), store, ring)))
}

/// Writes the key file of a new store: the header alone, atomically. In shared mode it is
/// made durable under a temp name and then linked into place, so that of two processes
/// creating the store at once, the second finds the first one's file instead of replacing
/// it (an exclusive open holds the data dir's lock: nobody else can be creating it).
fn create(
    storage: &Arc<dyn Storage>,
    data_dir: &Path,
    store: &chacha20poly1305::XChaCha20Poly1305,
    shared: bool,
) -> Result<KeyFile> {
    // New stores seal with AES-256-GCM; those made with key file version 1 keep GCM-SIV.
    let header =
        Header { generation: 0, next_key_id: 0, suite: PayloadSuite::Aes256Gcm, lists_forgotten: true };
    let bytes = key_file::encode_file(store, header, &[])?;
    let created = KeyFile { header, records: Vec::new(), valid_len: HEADER_LEN as u64 };
    if !shared {
        crate::io::write_atomic(&**storage, data_dir, KEY_FILE, &bytes)
            .map_err(|e| Error::storage("creating the key file", e))?;
        return Ok(created);
    }
    let fail = |e| Error::storage("creating the key file", e);
    let path = data_dir.join(KEY_FILE);
    // The first opener of a shared session removes every temp file as a dead process's (it
    // cannot tell a live creator's from one): a temp file lost before its link is written
    // again. That opener runs once per session, so a second try is nearly always the last.
    for _ in 0..CREATE_ATTEMPTS {
        let tmp = data_dir.join(crate::io::temp_name(KEY_FILE));
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
            _ => {}
        }
        let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(fail)?;
        storage.write(&file, &tmp, &bytes).map_err(fail)?;
        storage.sync(&file, &tmp).map_err(fail)?;
        drop(file);
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                storage.sync_dir(data_dir).map_err(fail)?;
                return Ok(created);
            }
            // Another process made the store's key file first (or made it, then lost its
            // own temp file the same way): load that one.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists || path.exists() => {
                return key_file::load(&path, store)?.ok_or_else(|| {
                    Error::InvalidConfig("encryption_key is not the key this store was encrypted with".into())
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(fail(e)),
        }
    }
    Err(fail(std::io::Error::other("its temp file was removed before it could be linked, on every try")))
}

/// How many times a shared open writes the new key file's temp file before it gives up.
const CREATE_ATTEMPTS: usize = 5;

/// The check of a shared open, under the session's open lock, that the store's mode did not
/// change since [`open_keys`] read it: two processes opening a new data dir at once, one
/// with a key and one without, could each have found it new. The first of them to get here
/// makes its first segment under that lock, so the other sees it (or the key file) now and
/// is refused. A process that made the key file of a store that turns out clear removes it
/// again: a clear store holding a key file would refuse every open without a key.
pub fn recheck_shared(
    storage: &dyn Storage,
    data_dir: &Path,
    segments_dir: &Path,
    keyed: bool,
    key_file_found: bool,
) -> Result<()> {
    let refuse = |why: &str| Err(Error::InvalidConfig(why.to_owned()));
    let path = data_dir.join(KEY_FILE);
    if !keyed {
        return match std::fs::symlink_metadata(&path) {
            Ok(_) => refuse("this store is encrypted: open it with its encryption_key"),
            Err(_) => Ok(()),
        };
    }
    if key_file_found {
        return Ok(()); // encrypted before this open began: its segments are sealed
    }
    if !StoreMode::of(data_dir, segments_dir)?.clear_segment {
        return Ok(());
    }
    std::fs::remove_file(&path)
        .and_then(|()| storage.sync_dir(data_dir))
        .map_err(|e| Error::storage("removing the key file made for a store created clear meanwhile", e))?;
    refuse("this store was created without encryption (by another process, just now); an encryption_key cannot be added to it")
}
