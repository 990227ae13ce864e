//! The instant a backup is taken: under the store's write lock(s), where the log ends, the
//! hidden ranges then, the seal records, and an open descriptor of every file to copy.
//!
//! Descriptors, not paths: a file replaced by rename after the snapshot (an index or cursor
//! checkpoint, a segment rewritten by compaction) is still read as it was at the snapshot,
//! so what is copied is one state of the store even though the copy runs without locks.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::index::Index;
use crate::segment::{load_seals, segment_file_name, Seal, SEALS_FILE, SEGMENTS_DIR, SEGMENT_HEADER_LEN};
use crate::store::Store;
use crate::visibility::{Visibility, HIDDEN_RANGES_FILE};

/// Names at the top of a data dir that hold no data: never copied, never removed.
pub(super) const NOT_DATA: [&str; 3] = [crate::store::LOCK_FILE, crate::store::LEASES_DIR, "shared"];

/// One segment as the backup copies it.
pub(super) struct SegmentPart {
    pub(super) id: u64,
    pub(super) file: File,
    /// Bytes to copy: the whole file, or for the newest segment, up to the cut.
    pub(super) len: u64,
    /// Its seal record, when one seals exactly `len` bytes.
    pub(super) seal: Option<Seal>,
    /// Rewritten by compaction: shorter than its seal record says, with frames removed
    /// anywhere in it.
    pub(super) compacted: bool,
}

/// Any other data file, by its path relative to the data dir.
pub(super) struct SideFile {
    pub(super) rel: PathBuf,
    pub(super) file: File,
}

/// What the backup holds: every sequence below `next_seq`, and nothing after.
pub(super) struct Snapshot {
    pub(super) next_seq: u64,
    /// Visible events among them.
    pub(super) events: u64,
    pub(super) segments: Vec<SegmentPart>,
    /// The cancelled ranges below `next_seq` (an open fence is cut off, not copied).
    pub(super) visibility: Visibility,
    pub(super) had_hidden_ranges: bool,
    pub(super) files: Vec<SideFile>,
}

impl Snapshot {
    /// The newest sequence held, if any.
    pub(super) fn through(&self) -> Option<u64> {
        self.next_seq.checked_sub(1)
    }
}

impl Store {
    /// Takes the snapshot while no process can write: the writer lock (and in shared mode
    /// the cross-process write lock, with the log followed to its published end); a
    /// read-only store of its own takes none, since nothing can write to its data dir.
    pub(super) fn backup_snapshot(&self) -> Result<Snapshot> {
        self.check_open()?;
        // A compaction commits its record before it renames its segments into place: the
        // snapshot waits for a running one, so it never pairs the new record with old files.
        let _no_compaction = self.hold_off_compaction("backup()")?;
        let data_dir = &self.shared.data_dir;
        let first = data_dir.join(SEGMENTS_DIR).join(crate::segment::segment_file_name(0));
        if self.shared.segments.list().is_empty() && !first.exists() {
            // A read-only open of a dir whose first writable open was killed before it made
            // its first segment (and its identity): there is no store to copy yet.
            return Err(Error::InvalidConfig(format!(
                "{} holds no segment yet (a writable open makes the first): nothing to back up",
                data_dir.display()
            )));
        }
        if let Some(writer) = &self.shared.writer {
            let (_writer, _writes) = self.lock_writer(writer)?;
            return self.snapshot_locked();
        }
        if let Some(mode) = &self.shared.sharing {
            let _writes = mode.coord.lock_writes()?;
            let published = mode.coord.mem.published();
            self.follow_to_end(mode, (published.segment_id, published.segment_len))?;
            return self.snapshot_locked();
        }
        self.snapshot_locked()
    }

    fn snapshot_locked(&self) -> Result<Snapshot> {
        let data_dir = &self.shared.data_dir;
        let index = self.shared.index.read();
        let mut visibility = index.visibility.clone();
        // An open fence's frames are the newest: the copy ends before its first one, so
        // it never holds events that may still be cancelled (or revealed after it).
        let next_seq = visibility.open_fence.take().map_or(index.len(), |start| start.min(index.len()));
        visibility.cancelled = visibility.cancelled_within(0, next_seq);
        let (end, end_offset) = cut_point(&index, next_seq);
        let events = index.entries[..next_seq as usize].iter().filter(|m| m.visible && !m.is_hole()).count();
        // A segment rewritten by compaction is shorter than its seal record says; its
        // length is in `compacted.ranges`, which is copied with the other side files.
        let compacted = index.compacted.segments.clone();
        drop(index);
        let seals = load_seals(&data_dir.join(SEGMENTS_DIR))?.by_segment;
        let mut segments = Vec::new();
        let listed = self.shared.segments.list();
        self.check_open()?; // closed meanwhile, its segments may be released: no partial copy

        for (position, (id, path)) in listed.into_iter().enumerate() {
            if position as u32 > end {
                break;
            }
            let file = File::open(&path).map_err(|e| Error::storage("opening a segment to back up", e))?;
            let len = if position as u32 == end {
                end_offset
            } else {
                match seals.get(&id) {
                    Some(seal) => compacted.get(&id).copied().unwrap_or(seal.len),
                    None => file.metadata().map_err(|e| Error::storage("reading segment size", e))?.len(),
                }
            };
            let seal =
                seals.get(&id).copied().filter(|seal| compacted.get(&id).copied().unwrap_or(seal.len) == len);
            segments.push(SegmentPart { id, file, len, seal, compacted: compacted.contains_key(&id) });
        }
        let mut files = Vec::new();
        collect_side_files(data_dir, Path::new(""), &mut files)?;
        let had_hidden_ranges = files.iter().any(|f| f.rel == Path::new(HIDDEN_RANGES_FILE));
        files.retain(|f| f.rel != Path::new(HIDDEN_RANGES_FILE));
        Ok(Snapshot { next_seq, events: events as u64, segments, visibility, had_hidden_ranges, files })
    }
}

/// Where the copy of the log ends: `(segment position, offset)` of the first frame of
/// `next_seq` when it is indexed (an open fence's), else the end of the newest frame (the
/// first segment's header when there is none).
fn cut_point(index: &Index, next_seq: u64) -> (u32, u64) {
    if let Some(entry) = index.entry(next_seq).filter(|m| !m.is_hole()) {
        return (entry.segment, entry.offset);
    }
    index.log_end().unwrap_or((0, SEGMENT_HEADER_LEN as u64))
}

/// True for names a backup never copies or removes: temp files of this and other writers
/// (`.NAME.PID.N.tmp`), and at the top, folders with a leading dot (a backup's staging), the
/// lock file and coordination folders. Below the top a leading dot alone is no sign of a
/// temp file: a checkpoint id may start with one (`cursors/.mailer.ckpt`).
pub(super) fn skipped(rel_dir: &Path, name: &str) -> bool {
    let top = rel_dir.as_os_str().is_empty();
    (name.starts_with('.') && (top || name.ends_with(".tmp")))
        || (top && (NOT_DATA.contains(&name) || name == super::BACKUP_PENDING_FILE))
}

/// Opens every data file under `root/rel_dir` except segment files and `seals` (copied
/// from the snapshot), recursing into folders.
fn collect_side_files(root: &Path, rel_dir: &Path, out: &mut Vec<SideFile>) -> Result<()> {
    let entries = match std::fs::read_dir(root.join(rel_dir)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::storage("listing the data dir", e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::storage("listing the data dir", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if skipped(rel_dir, name) {
            continue;
        }
        let rel = rel_dir.join(name);
        if is_segment_data(&rel) {
            continue;
        }
        let kind = entry.file_type().map_err(|e| Error::storage("listing the data dir", e))?;
        if kind.is_dir() {
            collect_side_files(root, &rel, out)?;
        } else if kind.is_file() {
            match File::open(root.join(&rel)) {
                Ok(file) => out.push(SideFile { rel, file }),
                // Removed between the listing and the open (a deleted checkpoint): gone.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::storage("opening a file to back up", e)),
            }
        }
    }
    Ok(())
}

/// Segment files and the seal records: what the snapshot copies by its own rules.
pub(super) fn is_segment_data(rel: &Path) -> bool {
    let mut parts = rel.iter();
    let (Some(dir), Some(name), None) = (parts.next(), parts.next(), parts.next()) else { return false };
    dir == SEGMENTS_DIR
        && name
            .to_str()
            .is_some_and(|n| n == SEALS_FILE || crate::segment::parse_segment_file_name(n).is_some())
}

/// The path of segment `id` relative to a data dir.
pub(super) fn segment_rel(id: u64) -> PathBuf {
    Path::new(SEGMENTS_DIR).join(segment_file_name(id))
}
