//! What a backup writes, file by file, and the copying itself: whole files and ranges
//! with `copy_file_range` (through `std::io::copy`), one fsync per file.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::compaction::COMPACTED_RANGES_FILE;
use crate::cursor_checkpoint::CursorCheckpoint;
use crate::error::{Error, Result};
use crate::index::INDEX_CHECKPOINT_FILE;
use crate::io::Storage;
use crate::segment::{encode_seal_records, load_seals, SEALS_FILE, SEGMENTS_DIR, SEGMENT_HEADER_LEN};
use crate::visibility::HIDDEN_RANGES_FILE;

use super::snapshot::{segment_rel, Snapshot};

/// Bytes compared at each end of a file to tell a changed one from an unchanged one.
const FINGERPRINT_BYTES: u64 = 4096;
/// Side files are compared this many bytes at a time.
const COMPARE_CHUNK: usize = 1 << 20;
/// Progress is reported (and a stop request seen) after each chunk this large.
const CHUNK: u64 = 16 << 20;
/// Files kept open with their fsync to come: bounded, for stores of thousands of segments.
const UNSYNCED_FILES: usize = 32;

/// Where the bytes of one file of the backup come from.
pub(super) enum Source<'a> {
    /// `len` bytes of a file of the store from its start.
    File(&'a File, u64),
    /// Bytes made by the backup (seal records, hidden ranges, a moved-back checkpoint).
    Bytes(Vec<u8>),
}

/// What happens to one file of the destination.
pub(super) enum Action<'a> {
    /// Already there and unchanged.
    Keep,
    /// Written whole.
    Write(Source<'a>),
    /// The destination's file is a prefix of the source's: only `file[from..to]` is added.
    Append { file: &'a File, from: u64, to: u64 },
}

/// Every file the backup holds, by its path relative to the data dir.
pub(super) struct Plan<'a> {
    pub(super) items: Vec<(PathBuf, Action<'a>)>,
}

impl Plan<'_> {
    /// Bytes to copy from the store (what progress counts to).
    pub(super) fn total(&self) -> u64 {
        self.items.iter().map(|(_, action)| action_bytes(action)).sum()
    }
}

pub(super) fn action_bytes(action: &Action<'_>) -> u64 {
    match action {
        Action::Keep => 0,
        Action::Write(Source::File(_, len)) => *len,
        Action::Write(Source::Bytes(bytes)) => bytes.len() as u64,
        Action::Append { from, to, .. } => to - from,
    }
}

/// Decides each file. With `reuse`, files already in `dest` that match are kept or
/// extended; otherwise everything is written.
pub(super) fn plan<'a>(snap: &'a Snapshot, dest: &Path, reuse: bool) -> Result<Plan<'a>> {
    let io = |e| Error::storage("reading a file to back up", e);
    let mut items = Vec::new();
    let dest_seals = if reuse {
        load_seals(&dest.join(SEGMENTS_DIR)).map(|s| s.by_segment).unwrap_or_default()
    } else {
        Default::default()
    };
    // A compacted segment keeps its seal record, and two compactions of one segment (the
    // origin's, and one made in an opened backup) can leave the same length and the same
    // ends with other frames removed between them: unless both sides hold the same
    // compaction record, such a segment is compared in full.
    let compactions_differ = reuse && !same_compactions(snap, dest).map_err(io)?;
    for part in &snap.segments {
        let rel = segment_rel(part.id);
        let old_seal = dest_seals.get(&part.id);
        let existing = reuse.then(|| File::open(dest.join(&rel)).ok()).flatten();
        let action = match existing {
            Some(old) => {
                let old_len = old.metadata().map_err(io)?.len();
                let seal_agrees = part.seal.is_none() || old_seal.is_none_or(|s| Some(*s) == part.seal);
                let same = |len| match part.compacted && compactions_differ {
                    true => same_bytes(&part.file, &old, len),
                    false => same_ends(&part.file, &old, len),
                };
                if old_len == part.len && seal_agrees && same(old_len).map_err(io)? {
                    Action::Keep
                } else if (SEGMENT_HEADER_LEN as u64..part.len).contains(&old_len)
                    && same(old_len).map_err(io)?
                {
                    Action::Append { file: &part.file, from: old_len, to: part.len }
                } else {
                    Action::Write(Source::File(&part.file, part.len))
                }
            }
            None => Action::Write(Source::File(&part.file, part.len)),
        };
        items.push((rel, action));
    }
    let seals = encode_seal_records(snap.segments.iter().filter_map(|p| Some((p.id, p.seal?))));
    if !seals.is_empty() {
        items.push((Path::new(SEGMENTS_DIR).join(SEALS_FILE), Action::Write(Source::Bytes(seals))));
    }
    if snap.had_hidden_ranges || !snap.visibility.cancelled.is_empty() {
        items.push((
            PathBuf::from(HIDDEN_RANGES_FILE),
            Action::Write(Source::Bytes(snap.visibility.encode())),
        ));
    }
    for side in &snap.files {
        let len = side.file.metadata().map_err(io)?.len();
        if side.rel == Path::new(INDEX_CHECKPOINT_FILE) {
            // A cache as large as a fifth of the log, rewritten at every close: copying it
            // would double what an incremental backup copies. The backup's first open scans.
            continue;
        }
        let source = if is_cursor_checkpoint(&side.rel) {
            let bytes = read_all(&side.file, len).map_err(io)?;
            Source::Bytes(CursorCheckpoint::clamped_bytes(&bytes, snap.through()).unwrap_or(bytes))
        } else {
            Source::File(&side.file, len)
        };
        items.push((side.rel.clone(), Action::Write(source)));
    }
    if reuse {
        for (rel, action) in &mut items {
            if let Action::Write(source) = action {
                if unchanged(source, &dest.join(&*rel)).map_err(io)? {
                    *action = Action::Keep;
                }
            }
        }
    }
    Ok(Plan { items })
}

/// Whether `dest` holds the compaction record of the snapshot (or, like it, none).
fn same_compactions(snap: &Snapshot, dest: &Path) -> std::io::Result<bool> {
    let ours = snap.files.iter().find(|f| f.rel == Path::new(COMPACTED_RANGES_FILE));
    let theirs = match std::fs::read(dest.join(COMPACTED_RANGES_FILE)) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    match (ours, theirs) {
        (None, None) => Ok(true),
        (Some(ours), Some(theirs)) => {
            let len = ours.file.metadata()?.len();
            Ok(len == theirs.len() as u64 && read_all(&ours.file, len)? == theirs)
        }
        _ => Ok(false),
    }
}

fn is_cursor_checkpoint(rel: &Path) -> bool {
    rel.parent() == Some(Path::new(crate::cursor_checkpoint::CURSORS_DIR))
        && rel.extension().is_some_and(|e| e == "ckpt")
}

/// A whole file the destination already holds byte for byte. Compared in full, not by its
/// ends: a side file may change anywhere (a key destroyed in the middle of a key file).
fn unchanged(source: &Source<'_>, at: &Path) -> std::io::Result<bool> {
    let Ok(old) = File::open(at) else { return Ok(false) };
    let old_len = old.metadata()?.len();
    match source {
        Source::Bytes(bytes) => Ok(old_len == bytes.len() as u64 && read_all(&old, old_len)? == *bytes),
        Source::File(file, len) => Ok(old_len == *len && same_bytes(file, &old, *len)?),
    }
}

/// True when the first `len` bytes of `a` and `b` are the same.
fn same_bytes(a: &File, b: &File, len: u64) -> std::io::Result<bool> {
    let mut at = 0;
    let (mut x, mut y) = (vec![0; COMPARE_CHUNK], vec![0; COMPARE_CHUNK]);
    while at < len {
        let n = (len - at).min(COMPARE_CHUNK as u64) as usize;
        a.read_exact_at(&mut x[..n], at)?;
        b.read_exact_at(&mut y[..n], at)?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// True when `a` and `b` hold the same bytes at both ends of their first `len` bytes.
fn same_ends(a: &File, b: &File, len: u64) -> std::io::Result<bool> {
    let n = len.min(FINGERPRINT_BYTES);
    for at in [0, len - n] {
        let mut x = vec![0; n as usize];
        let mut y = vec![0; n as usize];
        if a.read_exact_at(&mut x, at).is_err() || b.read_exact_at(&mut y, at).is_err() || x != y {
            return Ok(false);
        }
    }
    Ok(true)
}

fn read_all(file: &File, len: u64) -> std::io::Result<Vec<u8>> {
    let mut out = vec![0; len as usize];
    file.read_exact_at(&mut out, 0)?;
    Ok(out)
}

/// Copies bytes into new files, counting them for progress.
pub(super) struct Copier<'p> {
    pub(super) storage: &'p dyn Storage,
    pub(super) done: u64,
    pub(super) total: u64,
    pub(super) progress: &'p mut dyn FnMut(u64, u64) -> bool,
    /// Files written whose fsync is still to come (see [`Copier::finish`]).
    unsynced: VecDeque<(File, PathBuf)>,
}

impl<'p> Copier<'p> {
    pub(super) fn new(
        storage: &'p dyn Storage,
        total: u64,
        progress: &'p mut dyn FnMut(u64, u64) -> bool,
    ) -> Self {
        Copier { storage, done: 0, total, progress, unsynced: VecDeque::new() }
    }

    /// Fsyncs every file written and not yet fsynced. A file's fsync is put off until the
    /// next files are copied (up to [`UNSYNCED_FILES`] of them), so the disk writes one
    /// file while the next is copied instead of the copy waiting for each file in turn;
    /// nothing is moved into place before this returns.
    pub(super) fn finish(&mut self) -> Result<()> {
        while self.sync_oldest()? {}
        Ok(())
    }

    /// Queues `out`'s fsync, fsyncing the oldest queued file first when the queue is full.
    fn sync_later(&mut self, out: File, to: &Path) -> Result<()> {
        if self.unsynced.len() >= UNSYNCED_FILES {
            self.sync_oldest()?;
        }
        self.unsynced.push_back((out, to.to_owned()));
        Ok(())
    }

    fn sync_oldest(&mut self) -> Result<bool> {
        let Some((out, to)) = self.unsynced.pop_front() else { return Ok(false) };
        self.storage.sync(&out, &to).map_err(|e| Error::storage("fsync of the backup", e))?;
        Ok(true)
    }

    /// Writes the new file `to` from `source`, fsynced by [`Copier::finish`] at the latest.
    pub(super) fn write_new(&mut self, to: &Path, source: &Source<'_>) -> Result<()> {
        match source {
            Source::File(file, len) => self.copy_range(file, 0, *len, to, true),
            Source::Bytes(bytes) => {
                let out = create_new(to)?;
                self.storage.write(&out, to, bytes).map_err(|e| Error::storage("writing the backup", e))?;
                self.sync_later(out, to)?;
                self.advance(bytes.len() as u64)
            }
        }
    }

    /// Copies `file[from..end]` into the new file `to`, fsynced once, by [`Copier::finish`]
    /// at the latest, when `durable`.
    pub(super) fn copy_range(
        &mut self,
        file: &File,
        from: u64,
        end: u64,
        to: &Path,
        durable: bool,
    ) -> Result<()> {
        let fail = |e| Error::storage("copying into the backup", e);
        let out = create_new(to)?;
        let mut reader = file;
        reader.seek(SeekFrom::Start(from)).map_err(fail)?;
        let mut at = from;
        while at < end {
            let chunk = (end - at).min(CHUNK);
            let copied = std::io::copy(&mut std::io::Read::take(reader, chunk), &mut &out).map_err(fail)?;
            if copied == 0 {
                return Err(fail(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "file shrank")));
            }
            if durable {
                start_writeback(&out, at - from, copied);
            }
            at += copied;
            self.advance(copied)?;
        }
        if !durable {
            return Ok(());
        }
        self.sync_later(out, to)
    }

    fn advance(&mut self, n: u64) -> Result<()> {
        self.done += n;
        if (self.progress)(self.done, self.total) {
            Ok(())
        } else {
            Err(stopped())
        }
    }
}

/// Starts writing `len` bytes at `offset` of `out` to disk without waiting, so the one
/// fsync at the end of the file finds most of it written: the disk works while the next
/// chunk is copied, instead of after the last one. A hint: its failure is the fsync's.
#[cfg(target_os = "linux")]
fn start_writeback(out: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain system call on a descriptor this function borrows; no memory is passed.
    unsafe {
        libc::sync_file_range(out.as_raw_fd(), offset as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_out: &File, _offset: u64, _len: u64) {}

/// The error of a backup stopped by its progress callback.
pub(super) fn stopped() -> Error {
    Error::Internal("backup stopped by its progress callback".into())
}

fn create_new(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::storage("creating a file of the backup", e))
}
