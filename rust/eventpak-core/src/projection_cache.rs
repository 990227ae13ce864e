//! `NativeCache`: projection states on disk, one file per key, `<root>/<2 hex>/<hex key>.bin`.
//!
//! ```text
//! file = value | watermark u64 | cached_at_us i64 | magic "EVPKCCH1" | crc32c u32 (all before it)
//! ```
//! Writes are temp file → rename: atomic (a reader sees the old value, a miss or the new
//! value, never a torn one), deliberately not fsynced (a cache is rebuilt by replaying the
//! log). A file that fails its checks is deleted and reported as a miss.

use std::io::Write;
use std::mem::size_of;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"EVPKCCH1";

// The trailer after the value, offsets from its first byte.
const WATERMARK_OFFSET: usize = 0;
const CACHED_AT_OFFSET: usize = WATERMARK_OFFSET + size_of::<u64>();
const MAGIC_OFFSET: usize = CACHED_AT_OFFSET + size_of::<i64>();
const CRC_OFFSET: usize = MAGIC_OFFSET + MAGIC.len();
const TRAILER_LEN: usize = CRC_OFFSET + size_of::<u32>();

/// When and at which watermark a cached state was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheMeta {
    /// Global sequence of the last relevant event folded into the state.
    pub watermark: u64,
    /// Wall clock (µs since the epoch) when it was cached.
    pub cached_at_us: i64,
}

/// A file-per-key projection cache.
#[derive(Debug)]
pub struct NativeCache {
    root: PathBuf,
}

fn failed(context: &str, e: impl std::fmt::Display) -> Error {
    Error::CacheFailed(format!("{context}: {e}"))
}

fn refuse_symlink(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            Err(Error::CacheFailed(format!("refusing to use {} through a symlink", path.display())))
        }
        _ => Ok(()),
    }
}

/// A temp file of [`NativeCache::put`] older than this is a killed writer's: a put holds
/// its temp file only for one write and one rename. (Processes sharing a cache folder may
/// live in other PID namespaces, so the process id in the name decides nothing.)
pub const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes the temp files of puts killed between their write and their rename, which would
/// otherwise stay for good (a web worker killed again and again leaks one each time).
fn remove_stale_temps(root: &Path) {
    let Ok(shards) = std::fs::read_dir(root) else { return };
    for shard in shards.flatten() {
        // Not followed: a symlinked shard would lead outside the cache.
        let is_shard = shard.file_name().len() == 2 && shard.file_type().is_ok_and(|t| t.is_dir());
        let Some(files) = is_shard.then(|| std::fs::read_dir(shard.path()).ok()).flatten() else { continue };
        for file in files.flatten() {
            let name = file.file_name();
            let name = name.to_string_lossy();
            let stale = file
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|at| at.elapsed().is_ok_and(|age| age > STALE_TEMP));
            if name.starts_with('.') && name.ends_with(".tmp") && stale {
                let _ = std::fs::remove_file(file.path());
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl NativeCache {
    /// Opens (creating) the cache folder `root`; a symlinked folder is refused. The path is
    /// made absolute here, so a later change of the working directory does not move the
    /// cache. Temp files that killed writers left in it are removed ([`STALE_TEMP`]).
    pub fn open(root: &Path) -> Result<Self> {
        let root = std::path::absolute(root).map_err(|e| failed("finding the cache folder", e))?;
        refuse_symlink(&root)?;
        crate::io::create_private_dir(&root).map_err(|e| failed("creating the cache folder", e))?;
        remove_stale_temps(&root);
        Ok(NativeCache { root })
    }

    fn paths(&self, key: &[u8]) -> Result<(PathBuf, PathBuf)> {
        if key.is_empty() || key.len() > 100 {
            return Err(Error::CacheFailed(format!("cache keys hold 1 to 100 bytes, not {}", key.len())));
        }
        let name = hex(key);
        let shard = self.root.join(&name[..2]);
        let file = shard.join(format!("{name}.bin"));
        Ok((shard, file))
    }

    /// The cached value and its metadata; `None` on a miss (a damaged file is deleted).
    pub fn get(&self, key: &[u8]) -> Result<Option<(Vec<u8>, CacheMeta)>> {
        let (shard, path) = self.paths(key)?;
        refuse_symlink(&shard)?;
        refuse_symlink(&path)?;
        let mut bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(failed("reading a cache file", e)),
        };
        match Self::decode(&bytes) {
            Some(meta) => {
                bytes.truncate(bytes.len() - TRAILER_LEN);
                Ok(Some((bytes, meta)))
            }
            None => {
                // Damaged or foreign: remove it so the next put starts clean.
                let _ = std::fs::remove_file(&path);
                Ok(None)
            }
        }
    }

    fn decode(bytes: &[u8]) -> Option<CacheMeta> {
        let trailer_at = bytes.len().checked_sub(TRAILER_LEN)?;
        let (body, crc) = bytes.split_at(trailer_at + CRC_OFFSET);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().ok()?) {
            return None;
        }
        let t = &bytes[trailer_at..];
        if &t[MAGIC_OFFSET..CRC_OFFSET] != MAGIC {
            return None;
        }
        Some(CacheMeta {
            watermark: u64::from_le_bytes(t[WATERMARK_OFFSET..CACHED_AT_OFFSET].try_into().ok()?),
            cached_at_us: i64::from_le_bytes(t[CACHED_AT_OFFSET..MAGIC_OFFSET].try_into().ok()?),
        })
    }

    /// Stores `value` with `meta` under `key` (temp file, then rename).
    pub fn put(&self, key: &[u8], value: &[u8], meta: CacheMeta) -> Result<()> {
        let (shard, path) = self.paths(key)?;
        refuse_symlink(&shard)?;
        crate::io::create_private_dir(&shard).map_err(|e| failed("creating a cache shard", e))?;
        refuse_symlink(&path)?;
        let mut buf = vec![0; value.len() + TRAILER_LEN];
        let (body, trailer) = buf.split_at_mut(value.len());
        body.copy_from_slice(value);
        trailer[WATERMARK_OFFSET..CACHED_AT_OFFSET].copy_from_slice(&meta.watermark.to_le_bytes());
        trailer[CACHED_AT_OFFSET..MAGIC_OFFSET].copy_from_slice(&meta.cached_at_us.to_le_bytes());
        trailer[MAGIC_OFFSET..CRC_OFFSET].copy_from_slice(MAGIC);
        let crc = crc32c::crc32c(&buf[..value.len() + CRC_OFFSET]);
        buf[value.len() + CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
        let unique = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = shard.join(format!(".{}.{}.{unique}.tmp", hex(key), std::process::id()));
        let write = || -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            file.write_all(&buf)?;
            // Unlink the old entry first: ext4 flushes the new file's data when a rename
            // *replaces* a file (its auto_da_alloc heuristic), which makes a put ~8x slower.
            // Readers in between see a miss, never a torn value.
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            failed("writing a cache file", e)
        })
    }

    /// Deletes every entry whose key starts with `prefix`; returns how many.
    pub fn delete_prefix(&self, prefix: &[u8]) -> Result<u64> {
        let wanted = hex(prefix);
        let mut count = 0;
        let shards = match std::fs::read_dir(&self.root) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(failed("listing the cache", e)),
        };
        for shard in shards.flatten() {
            let name = shard.file_name().to_string_lossy().into_owned();
            let could_match = name.len() == 2 && (wanted.starts_with(&name) || name.starts_with(&wanted));
            if !could_match {
                continue;
            }
            // Not followed: a symlinked shard would delete files outside the cache.
            refuse_symlink(&shard.path())?;
            if !shard.path().is_dir() {
                continue;
            }
            for file in std::fs::read_dir(shard.path()).map_err(|e| failed("listing a shard", e))?.flatten() {
                let file_name = file.file_name().to_string_lossy().into_owned();
                let is_match = file_name.strip_suffix(".bin").is_some_and(|k| k.starts_with(&wanted));
                if is_match && std::fs::remove_file(file.path()).is_ok() {
                    count += 1;
                }
            }
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_damage_and_prefix_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let cache = NativeCache::open(&dir.path().join("c")).unwrap();
        let meta = CacheMeta { watermark: 7, cached_at_us: 99 };
        assert_eq!(cache.get(b"ab").unwrap(), None);
        cache.put(b"ab", b"state", meta).unwrap();
        cache.put(b"ac", b"other", meta).unwrap();
        assert_eq!(cache.get(b"ab").unwrap(), Some((b"state".to_vec(), meta)));
        let (_, path) = cache.paths(b"ab").unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[1] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(cache.get(b"ab").unwrap(), None);
        assert!(!path.exists());
        assert_eq!(cache.delete_prefix(b"a").unwrap(), 1);
        assert_eq!(cache.delete_prefix(b"a").unwrap(), 0);
    }

    #[test]
    fn stale_temp_files_of_killed_writers_go_at_open_and_fresh_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("c");
        let cache = NativeCache::open(&root).unwrap();
        cache.put(b"ab", b"state", CacheMeta { watermark: 1, cached_at_us: 2 }).unwrap();
        let (shard, entry) = cache.paths(b"ab").unwrap();
        let (stale, fresh) = (shard.join(".ab.41.0.tmp"), shard.join(".ab.42.0.tmp"));
        for temp in [&stale, &fresh] {
            std::fs::write(temp, b"half a state").unwrap();
        }
        let long_ago = std::time::SystemTime::now() - STALE_TEMP - std::time::Duration::from_secs(60);
        std::fs::File::options().write(true).open(&stale).unwrap().set_modified(long_ago).unwrap();
        NativeCache::open(&root).unwrap();
        assert!(!stale.exists() && fresh.exists() && entry.exists());
    }

    #[test]
    fn a_relative_folder_stays_where_it_was_opened() {
        let cache = NativeCache::open(Path::new("relative-cache-folder")).unwrap();
        assert!(cache.root.is_absolute() && cache.root.ends_with("relative-cache-folder"));
        std::fs::remove_dir(&cache.root).unwrap();
    }

    #[test]
    fn symlinked_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("link")).unwrap();
        assert!(matches!(NativeCache::open(&dir.path().join("link")), Err(Error::CacheFailed(_))));
    }

    #[test]
    fn prefix_deletion_refuses_a_symlinked_shard_and_leaves_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let cache = NativeCache::open(&dir.path().join("c")).unwrap();
        cache.put(b"ab", b"state", CacheMeta { watermark: 1, cached_at_us: 2 }).unwrap();
        let (shard, path) = cache.paths(b"ab").unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::rename(&shard, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &shard).unwrap();
        assert!(matches!(cache.delete_prefix(b"a"), Err(Error::CacheFailed(_))));
        let moved = elsewhere.join(path.file_name().unwrap());
        assert!(moved.exists(), "the file the symlink points at is left alone");
    }
}
