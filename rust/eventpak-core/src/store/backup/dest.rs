//! The destination of a backup: what it may hold before, the lock held while writing it,
//! and the `backup.pending` marker that makes it refuse to open while files are moved in.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::{write_atomic, Storage};
use crate::segment::SEGMENTS_DIR;

use super::BACKUP_PENDING_FILE;

const MARKER_MAGIC: &[u8; 8] = b"EVPKBAK\0";
const MARKER_ID_OFFSET: usize = MARKER_MAGIC.len();
const MARKER_CRC_OFFSET: usize = MARKER_ID_OFFSET + 16;
const MARKER_LEN: usize = MARKER_CRC_OFFSET + size_of::<u32>();

/// Where new and changed files are written before they are moved into place.
pub(super) const STAGING_DIR: &str = ".backup.staging";

/// What the destination holds before the backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// Nothing (missing, empty, or only what an interrupted first backup left).
    Nothing,
    /// A finished backup of this store: unchanged segments are kept.
    Earlier,
    /// A backup of this store interrupted while its files were moved in: copied anew.
    Unfinished,
}

/// Judges `dest` without writing anything. Refused (`InvalidConfig`): a path that is not
/// a folder, the data dir itself or a path inside it, and a folder holding anything but a
/// backup of the store `store_id`.
pub(super) fn inspect(dest: &Path, source: &Path, store_id: [u8; 16]) -> Result<Found> {
    let refuse =
        |why: &str| Err(Error::InvalidConfig(format!("backup destination {}: {why}", dest.display())));
    if let Some(why) = unusable_name(dest) {
        return refuse(why);
    }
    let source = source.canonicalize().map_err(|e| Error::storage("resolving the data dir", e))?;
    let resolved = resolve(dest).map_err(|e| path_error(dest, "resolving the backup destination", e))?;
    if resolved.starts_with(&source) || source.starts_with(&resolved) {
        return refuse("is the data dir, inside it, or holds it");
    }
    match std::fs::metadata(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(path_error(dest, "reading the backup destination", e)),
        Ok(meta) if !meta.is_dir() => return refuse("exists and is not a folder"),
        Ok(_) => {}
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dest).map_err(|e| Error::storage("listing the backup destination", e))? {
        let entry = entry.map_err(|e| Error::storage("listing the backup destination", e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    if names.iter().any(|n| n == BACKUP_PENDING_FILE) {
        return match read_marker(dest) {
            Some(id) if id == store_id => Ok(Found::Unfinished),
            Some(_) => refuse("holds an unfinished backup of another store"),
            None => refuse("holds a damaged backup marker"),
        };
    }
    // Only what an interrupted first backup leaves (the lock file, its staging folder, a
    // temp file of its marker): empty. Any other name, dot-names included, is not ours.
    if names.iter().all(|n| left_by_a_backup(n)) {
        return Ok(Found::Nothing);
    }
    if !dest.join(SEGMENTS_DIR).is_dir() {
        return refuse("is not empty and holds no eventpak store");
    }
    match crate::store::identity::existing(dest) {
        Some(id) if id == store_id => Ok(Found::Earlier),
        Some(_) => refuse("holds another store (its store.id differs)"),
        None => refuse("holds a store without a readable store.id"),
    }
}

/// Names a first backup writes into its destination before it has a store there.
fn left_by_a_backup(name: &str) -> bool {
    let marker_temp = name
        .strip_prefix('.')
        .and_then(|n| n.strip_prefix(BACKUP_PENDING_FILE))
        .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"));
    name == crate::store::LOCK_FILE || name == STAGING_DIR || marker_temp
}

/// Why `dest` can never name a folder, found from the name alone: the system would say so
/// only after the folders above it were created, or not at all (an empty path).
fn unusable_name(dest: &Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = dest.as_os_str().as_bytes();
    if bytes.is_empty() {
        Some("is an empty path")
    } else if bytes.contains(&0) {
        Some("holds a NUL byte")
    } else if dest.components().any(|c| c.as_os_str().len() > NAME_MAX) {
        Some("its name is too long")
    } else {
        None
    }
}

/// What `path_error` is told when the destination folder itself is being made.
pub(super) const CREATING: &str = "creating the backup destination";

/// The longest file name Linux and macOS file systems take, in bytes.
const NAME_MAX: usize = 255;

/// A path that cannot be a folder (one of its parents is a file, or it is too long) or
/// that this process may not write is a bad argument, not a failing disk.
pub(super) fn path_error(dest: &Path, context: &'static str, e: std::io::Error) -> Error {
    let why = match e.raw_os_error() {
        Some(libc::ENOTDIR) => "lies under a file",
        Some(libc::ENAMETOOLONG) => "its name is too long",
        Some(libc::EACCES | libc::EPERM) => "this process may not write there (permission denied)",
        Some(libc::EROFS) => "lies on a read-only file system",
        // The folder above exists (it was looked at), yet nothing can be made in it: /proc.
        Some(libc::ENOENT) if context == CREATING => "no folder can be made there",
        // Nothing was found there, yet the name is taken: a link to a path that is gone.
        Some(libc::EEXIST) if context == CREATING => "it is a link to a path that does not exist",
        _ => return Error::storage(context, e),
    };
    Error::InvalidConfig(format!("backup destination {}: {why}", dest.display()))
}

/// `dest` made absolute with every existing ancestor's links resolved (it may not exist).
fn resolve(dest: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::path::absolute(dest)?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        let Some(parent) = existing.parent() else { break };
        rest.push(existing.file_name().map(PathBuf::from).unwrap_or_default());
        existing = parent;
    }
    let mut out = existing.canonicalize()?;
    for part in rest.into_iter().rev() {
        match part.components().next() {
            Some(Component::ParentDir) => {
                out.pop();
            }
            Some(Component::Normal(name)) => out.push(name),
            _ => {}
        }
    }
    Ok(out)
}

fn read_marker(dest: &Path) -> Option<[u8; 16]> {
    let bytes = std::fs::read(dest.join(BACKUP_PENDING_FILE)).ok()?;
    let crc = u32::from_le_bytes(bytes.get(MARKER_CRC_OFFSET..)?.try_into().ok()?);
    (bytes.len() == MARKER_LEN
        && &bytes[..MARKER_ID_OFFSET] == MARKER_MAGIC
        && crc32c::crc32c(&bytes[..MARKER_CRC_OFFSET]) == crc)
        .then(|| bytes[MARKER_ID_OFFSET..MARKER_CRC_OFFSET].try_into().expect("16 bytes"))
}

/// Writes the marker (atomically, durably): from here until it is removed, opening the
/// destination is refused, since its files are a mix of the old and the new backup.
pub(super) fn write_marker(storage: &dyn Storage, dest: &Path, store_id: [u8; 16]) -> Result<()> {
    let mut bytes = Vec::with_capacity(MARKER_LEN);
    bytes.extend_from_slice(MARKER_MAGIC);
    bytes.extend_from_slice(&store_id);
    bytes.extend_from_slice(&crc32c::crc32c(&bytes).to_le_bytes());
    write_atomic(storage, dest, BACKUP_PENDING_FILE, &bytes)
        .map_err(|e| Error::storage("writing the backup marker", e))
}

/// Removes the marker and makes that durable: the destination is a finished backup.
pub(super) fn remove_marker(storage: &dyn Storage, dest: &Path) -> Result<()> {
    storage
        .remove(&dest.join(BACKUP_PENDING_FILE))
        .and_then(|()| storage.sync_dir(dest))
        .map_err(|e| Error::storage("removing the backup marker", e))
}

/// Refuses to open a data dir holding the marker of an unfinished backup.
pub(crate) fn refuse_unfinished(data_dir: &Path) -> Result<()> {
    if data_dir.join(BACKUP_PENDING_FILE).exists() {
        return Err(Error::InvalidConfig(format!(
            "{} holds an unfinished backup (interrupted while its files were moved in); \
             run the backup into it again to finish it",
            data_dir.display()
        )));
    }
    Ok(())
}

/// Refuses to make a store in a folder where a first backup was interrupted before any of
/// its files were moved in: it holds the backup's staging folder and no store yet. Opened,
/// it would become a new empty store that the next backup into it refuses (another store),
/// and a restore from it would silently start from nothing.
pub(crate) fn refuse_interrupted_first(data_dir: &Path) -> Result<()> {
    if data_dir.join(STAGING_DIR).is_dir() && !data_dir.join(SEGMENTS_DIR).is_dir() {
        return Err(Error::InvalidConfig(format!(
            "{} holds only an interrupted first backup, no store: run the backup into it \
             again, or remove the folder",
            data_dir.display()
        )));
    }
    Ok(())
}
