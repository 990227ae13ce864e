//! Writing a sealed segment again without its removed events: every other frame (events
//! and tracking records) is copied verbatim, in order, under a temp name.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::compaction::{content_digest, RemovedKey};
use crate::error::{Error, Result};
use crate::event::Hash;
use crate::io::Storage;
use crate::segment::{decode_frame, Decoded, SegmentHeader, SEGMENT_HEADER_LEN};

/// Bytes gathered before each write (and between progress reports).
const CHUNK: usize = 4 << 20;

/// What rewriting one segment did.
pub(super) struct Rewritten {
    /// Its position in the store's segment list, and its id.
    pub position: u32,
    pub id: u64,
    /// The temp file holding the new bytes.
    pub temp: PathBuf,
    /// Lengths before and after.
    pub old_len: u64,
    pub new_len: u64,
    /// `(seq, new offset)` of each kept event; `(old, new offset)` of each tracking record.
    pub events: Vec<(u64, u64)>,
    pub tracking: Vec<(u64, u64)>,
    /// Each removed event's entity, clock and hash, and its key's receipt when it had one.
    pub heads: Vec<(String, u64, Hash)>,
    pub keys: Vec<(Box<[u8]>, RemovedKey)>,
}

/// Writes `bytes` (a whole sealed segment at `path`) to `temp` without the events at
/// `removed` (ascending), fsyncs it, and reports progress per chunk written. `encrypted`:
/// the segment belongs to an encrypted store (see the digest of removed keyed events).
pub(super) fn rewrite(
    storage: &dyn Storage,
    (path, temp): (&Path, PathBuf),
    (position, id): (u32, u64),
    (bytes, encrypted): (&[u8], bool),
    removed: &[u64],
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<Option<Rewritten>> {
    let corrupt = |at: usize, why: &str| Error::corrupt(path, at as u64, why.to_owned());
    let header = SegmentHeader::decode(bytes).map_err(|why| corrupt(0, &why))?;
    // A leftover temp file (or a planted symlink) is removed, not followed.
    match std::fs::remove_file(&temp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::storage("removing an old compaction temp file", e))
        }
        _ => {}
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(|e| Error::storage("creating a compacted segment", e))?;
    let write = |out: &[u8]| {
        storage.write(&file, &temp, out).map_err(|e| Error::storage("writing a compacted segment", e))
    };
    let mut out = header.encode_compacted(SegmentHeader::is_encrypted(bytes)).to_vec();
    let mut done = Rewritten {
        position,
        id,
        temp: temp.clone(),
        old_len: bytes.len() as u64,
        new_len: 0,
        events: Vec::new(),
        tracking: Vec::new(),
        heads: Vec::new(),
        keys: Vec::new(),
    };
    let (mut at, mut written) = (SEGMENT_HEADER_LEN, 0usize);
    // Frames come in ascending sequence, like `removed`: one walk over both finds them.
    let mut next_removed = removed.partition_point(|&s| s < header.base_sequence);
    let mut is_removed = |seq: u64| {
        while removed.get(next_removed).is_some_and(|&s| s < seq) {
            next_removed += 1;
        }
        removed.get(next_removed) == Some(&seq)
    };
    // Each entity's newest removed event, by name borrowed from the mapped segment.
    let mut heads: HashMap<&str, (u64, Hash), foldhash::fast::RandomState> = HashMap::default();
    while at < bytes.len() {
        let new_offset = (written + out.len()) as u64;
        let len = match decode_frame(&bytes[at..]) {
            Decoded::Frame(frame) if is_removed(frame.global_sequence) => {
                let (entity, scope, kind) = frame.names();
                let head = heads.entry(entity).or_insert((frame.entity_sequence(), frame.hash()));
                if frame.entity_sequence() >= head.0 {
                    *head = (frame.entity_sequence(), frame.hash());
                }
                if let Some(key) = frame.idempotency_key() {
                    // An encrypted store's payload stays out of the digest: an unkeyed hash
                    // of it, kept for good, would let anyone who guesses a removed payload
                    // confirm it, even after its entity was forgotten. Its retries are then
                    // not compared on the payload, as a forgotten event's are not.
                    let plain = if encrypted { None } else { Some(frame.payload()) };
                    let content =
                        content_digest((entity, scope, kind), frame.payload_version(), plain, frame.tags());
                    let receipt = RemovedKey {
                        seq: frame.global_sequence,
                        event_id: frame.event_id(),
                        entity_sequence: frame.entity_sequence(),
                        timestamp_us: frame.timestamp_us(),
                        hash: frame.hash(),
                        content,
                    };
                    done.keys.push((key.into(), receipt));
                }
                frame.len
            }
            Decoded::Frame(frame) => {
                done.events.push((frame.global_sequence, new_offset));
                out.extend_from_slice(&bytes[at..at + frame.len]);
                frame.len
            }
            Decoded::Tracking(tracking) => {
                done.tracking.push((at as u64, new_offset));
                out.extend_from_slice(&bytes[at..at + tracking.len]);
                tracking.len
            }
            Decoded::Short => return Err(corrupt(at, "sealed segment ends inside a frame")),
            Decoded::Bad(why) => return Err(corrupt(at, &why)),
        };
        at += len;
        if out.len() >= CHUNK {
            write(&out)?;
            written += out.len();
            out.clear();
            if !progress(at as u64) {
                drop(file);
                let _ = std::fs::remove_file(&temp);
                return Ok(None);
            }
        }
    }
    write(&out)?;
    done.heads = heads.into_iter().map(|(entity, (clock, hash))| (entity.to_owned(), clock, hash)).collect();
    done.new_len = (written + out.len()) as u64;
    storage.sync(&file, &temp).map_err(|e| Error::storage("fsync of a compacted segment", e))?;
    Ok(Some(done))
}
