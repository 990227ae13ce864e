//! Durable cursor checkpoints: `cursors/<id>.ckpt`, written atomically, self-checking.
//!
//! ```text
//! magic "EVPKCUR\0" | version u32 | flags u8 (1 started, 2 boot time, 4 region identity)
//! | position u64 | process_boot_ns u64 | identity_len u32 | identity | crc32c u32
//! ```

use std::mem::size_of;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, READ_CONTEXT};
use crate::io::{create_durable_dir, write_atomic, OsStorage, Storage};
use crate::names::check_name;

/// Folder of cursor checkpoints inside a data dir.
pub const CURSORS_DIR: &str = "cursors";
/// Longest checkpoint id in bytes (it names a file).
pub const MAX_CHECKPOINT_ID_BYTES: usize = 200;
const MAGIC: &[u8; 8] = b"EVPKCUR\0";
const VERSION: u32 = 1;

const VERSION_OFFSET: usize = MAGIC.len();
const FLAGS_OFFSET: usize = VERSION_OFFSET + size_of::<u32>();
const POSITION_OFFSET: usize = FLAGS_OFFSET + size_of::<u8>();
const BOOT_NS_OFFSET: usize = POSITION_OFFSET + size_of::<u64>();
const IDENTITY_LEN_OFFSET: usize = BOOT_NS_OFFSET + size_of::<u64>();
const IDENTITY_OFFSET: usize = IDENTITY_LEN_OFFSET + size_of::<u32>();
// The CRC follows the variable-length identity, so it has a length but no fixed offset.
const CRC_LEN: usize = size_of::<u32>();
/// The shortest valid file: a checkpoint whose region identity is empty.
const FIXED_LEN: usize = IDENTITY_OFFSET + CRC_LEN;

const FLAG_STARTED: u8 = 1;
const FLAG_BOOT_TIME: u8 = 2;
const FLAG_IDENTITY: u8 = 4;
const KNOWN_FLAGS: u8 = FLAG_STARTED | FLAG_BOOT_TIME | FLAG_IDENTITY;

/// A saved cursor position, bound to the region it belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CursorCheckpoint {
    /// Last delivered global sequence.
    pub position: u64,
    /// Whether anything was delivered (sequence 0 is a real position).
    pub started: bool,
    /// Reserved for monotonic-clock cross-checks.
    pub process_boot_ns: Option<u64>,
    /// `Region::checkpoint_identity` of the cursor that saved it.
    pub region_identity: Option<String>,
}

/// Refuses ids that break the naming rules; they would name files outside `cursors/`.
pub fn validate_checkpoint_id(id: &str) -> Result<()> {
    check_name(id, MAX_CHECKPOINT_ID_BYTES)
        .map_err(|reason| Error::InvalidCheckpointId(format!("{id:?} {reason}")))
}

/// Path of the checkpoint file of `id` (after validating `id`).
pub fn checkpoint_path(data_dir: &Path, id: &str) -> Result<PathBuf> {
    validate_checkpoint_id(id)?;
    Ok(data_dir.join(CURSORS_DIR).join(format!("{id}.ckpt")))
}

impl CursorCheckpoint {
    fn encode(&self) -> Vec<u8> {
        let identity = self.region_identity.as_deref().unwrap_or_default().as_bytes();
        let mut out = vec![0; FIXED_LEN + identity.len()];
        let crc_at = IDENTITY_OFFSET + identity.len();
        out[..VERSION_OFFSET].copy_from_slice(MAGIC);
        out[VERSION_OFFSET..FLAGS_OFFSET].copy_from_slice(&VERSION.to_le_bytes());
        out[FLAGS_OFFSET] = if self.started { FLAG_STARTED } else { 0 }
            | if self.process_boot_ns.is_some() { FLAG_BOOT_TIME } else { 0 }
            | if self.region_identity.is_some() { FLAG_IDENTITY } else { 0 };
        out[POSITION_OFFSET..BOOT_NS_OFFSET].copy_from_slice(&self.position.to_le_bytes());
        out[BOOT_NS_OFFSET..IDENTITY_LEN_OFFSET]
            .copy_from_slice(&self.process_boot_ns.unwrap_or(0).to_le_bytes());
        out[IDENTITY_LEN_OFFSET..IDENTITY_OFFSET].copy_from_slice(&(identity.len() as u32).to_le_bytes());
        out[IDENTITY_OFFSET..crc_at].copy_from_slice(identity);
        let crc = crc32c::crc32c(&out[..crc_at]);
        out[crc_at..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        if bytes.len() < FIXED_LEN || &bytes[..VERSION_OFFSET] != MAGIC {
            return Err("not a cursor checkpoint (bad magic or too short)".into());
        }
        let (body, crc) = bytes.split_at(bytes.len() - CRC_LEN);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().unwrap()) {
            return Err("CRC mismatch".into());
        }
        let version = u32::from_le_bytes(body[VERSION_OFFSET..FLAGS_OFFSET].try_into().unwrap());
        if version != VERSION {
            return Err(format!("unsupported version {version}"));
        }
        let flags = body[FLAGS_OFFSET];
        if flags & !KNOWN_FLAGS != 0 {
            return Err("unknown flags".into());
        }
        let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().unwrap());
        let identity_len =
            u32::from_le_bytes(body[IDENTITY_LEN_OFFSET..IDENTITY_OFFSET].try_into().unwrap()) as usize;
        if body.len() != IDENTITY_OFFSET + identity_len {
            return Err("length disagrees with the region identity length".into());
        }
        let identity =
            std::str::from_utf8(&body[IDENTITY_OFFSET..]).map_err(|_| "region identity is not UTF-8")?;
        Ok(CursorCheckpoint {
            position: u64_at(POSITION_OFFSET),
            started: flags & FLAG_STARTED != 0,
            process_boot_ns: (flags & FLAG_BOOT_TIME != 0).then(|| u64_at(BOOT_NS_OFFSET)),
            region_identity: (flags & FLAG_IDENTITY != 0).then(|| identity.to_owned()),
        })
    }

    /// The bytes of a checkpoint file moved back so it points at no sequence past
    /// `through` (`None`: the log holds no event, so nothing was delivered). A file that
    /// points no further, or does not decode, is returned as it is (`None`).
    pub fn clamped_bytes(bytes: &[u8], through: Option<u64>) -> Option<Vec<u8>> {
        let mut ckpt = Self::decode(bytes).ok()?;
        if !ckpt.started || through.is_some_and(|t| ckpt.position <= t) {
            return None;
        }
        match through {
            Some(t) => ckpt.position = t,
            None => (ckpt.position, ckpt.started) = (0, false),
        }
        Some(ckpt.encode())
    }

    /// Loads checkpoint `id`: `None` when there is none; [`Error::CursorCheckpointCorrupt`]
    /// when it cannot be trusted (never a silent restart from the beginning). A file that
    /// cannot be read (no descriptor left, permission denied, an I/O error) is not
    /// corrupt: that is [`Error::StorageFailed`], with the OS error, and the file stays.
    pub fn load(data_dir: &Path, id: &str) -> Result<Option<Self>> {
        let path = checkpoint_path(data_dir, id)?;
        let corrupt = |reason: String| Error::CursorCheckpointCorrupt { path: path.clone(), reason };
        let unreadable = |e| Error::storage(&format!("{READ_CONTEXT}cursor checkpoint {id:?}"), e);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unreadable(e)),
            Ok(meta) if !meta.file_type().is_file() => return Err(corrupt("not a regular file".into())),
            Ok(_) => {}
        }
        let bytes = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None), // reset meanwhile
            Err(e) => return Err(unreadable(e)),
            Ok(bytes) => bytes,
        };
        Self::decode(&bytes).map(Some).map_err(corrupt)
    }

    /// Saves this checkpoint as `id`: temp file, fsync, rename, directory fsync.
    pub fn save(&self, data_dir: &Path, id: &str) -> Result<()> {
        self.save_with(&OsStorage, data_dir, id)
    }

    /// [`CursorCheckpoint::save`] through a given [`Storage`].
    pub fn save_with(&self, storage: &dyn Storage, data_dir: &Path, id: &str) -> Result<()> {
        let path = checkpoint_path(data_dir, id)?;
        let failed = |cause: String| Error::CheckpointWriteFailed { id: id.to_owned(), cause };
        let dir = data_dir.join(CURSORS_DIR);
        create_durable_dir(storage, &dir).map_err(|e| failed(format!("creating {}: {e}", dir.display())))?;
        // A symlinked folder or file could send the write anywhere: refuse both.
        for p in [&dir, &path] {
            if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(failed(format!("{} is a symlink", p.display())));
            }
        }
        write_atomic(storage, &dir, &format!("{id}.ckpt"), &self.encode()).map_err(|e| failed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(CursorCheckpoint::load(dir.path(), "w").unwrap(), None);
        let ckpt = CursorCheckpoint {
            position: 41,
            started: true,
            process_boot_ns: Some(7),
            region_identity: Some("entity=*|scope=*|kind=*|clock=*".into()),
        };
        ckpt.save(dir.path(), "w").unwrap();
        assert_eq!(CursorCheckpoint::load(dir.path(), "w").unwrap(), Some(ckpt.clone()));
        let path = checkpoint_path(dir.path(), "w").unwrap();
        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x20;
            std::fs::write(&path, &bad).unwrap();
            assert!(matches!(
                CursorCheckpoint::load(dir.path(), "w"),
                Err(Error::CursorCheckpointCorrupt { .. })
            ));
        }
        for cut in 0..good.len() {
            std::fs::write(&path, &good[..cut]).unwrap();
            assert!(CursorCheckpoint::load(dir.path(), "w").is_err());
        }
    }

    #[test]
    fn ids_cannot_escape_the_cursors_folder() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "../x", "a/b", "..", "a\0b", &"x".repeat(201)] {
            assert!(matches!(
                CursorCheckpoint::default().save(dir.path(), bad),
                Err(Error::InvalidCheckpointId(_))
            ));
            assert!(matches!(CursorCheckpoint::load(dir.path(), bad), Err(Error::InvalidCheckpointId(_))));
        }
    }
}
