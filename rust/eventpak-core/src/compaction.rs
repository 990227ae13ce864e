//! The compaction record (`compacted.ranges`): what retention removed from the log, kept
//! because a rebuild from the segments alone would lose it.
//!
//! Written atomically (temp, fsync, rename, directory fsync) once the rewritten segments are
//! durable under temp names: that write is the commit point of a compaction. Recovery rolls
//! forward the temp files the record names for its generation and removes any other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::event::Hash;
use crate::io::{write_atomic, Storage};
use crate::segment::segment_file_name;

/// File name of the compaction record inside a data dir.
pub const COMPACTED_RANGES_FILE: &str = "compacted.ranges";
const MAGIC: &[u8; 8] = b"EVPKCMP\0";
const VERSION: u32 = 1;
const TEMP_MARK: &str = ".compact-";

/// What a retry of a removed event's idempotency key needs: its original receipt's fields
/// and a digest of the content the key was used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemovedKey {
    /// Its global sequence.
    pub seq: u64,
    /// Its id.
    pub event_id: [u8; 16],
    /// Its entity clock.
    pub entity_sequence: u64,
    /// Its timestamp.
    pub timestamp_us: u64,
    /// Its chain hash.
    pub hash: Hash,
    /// [`content_digest`] of its entity, scope, kind, payload version, payload and tags.
    pub content: Hash,
}

/// The whole record. Empty (the default) when nothing was ever compacted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Bumped by every compaction that removed something; names its temp files.
    pub generation: u64,
    /// Half-open ranges of removed sequences, ascending, disjoint, maximal.
    pub ranges: Vec<(u64, u64)>,
    /// Length of every rewritten segment, by id (it replaces the seal record's length).
    pub segments: BTreeMap<u64, u64>,
    /// Segments rewritten by `generation`: their temp files are rolled forward at open.
    pub rewritten: Vec<u64>,
    /// Each entity's newest removed event: `(clock, hash)`, so its clock and chain go on.
    pub heads: BTreeMap<String, (u64, Hash)>,
    /// Idempotency keys of removed events.
    pub keys: BTreeMap<Box<[u8]>, RemovedKey>,
}

/// The digest an idempotency retry is compared with: every field `replayed_receipts`
/// compares, length-prefixed. The payload is the plaintext (an encrypted store's sealed
/// bytes differ at every seal); `None` stands for a payload whose key was forgotten before
/// the compaction, which a retry is not compared on (as with a live forgotten event).
pub fn content_digest<'a>(
    (entity, scope, kind): (&str, &str, &str),
    payload_version: u32,
    payload: Option<&[u8]>,
    tags: impl Iterator<Item = &'a str>,
) -> Hash {
    let mut h = blake3::Hasher::new();
    for part in [entity.as_bytes(), scope.as_bytes(), kind.as_bytes()] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    match payload {
        Some(payload) => {
            h.update(&(payload.len() as u64).to_le_bytes());
            h.update(payload);
        }
        // No payload is this long: the marker matches no plaintext's prefix.
        None => {
            h.update(&u64::MAX.to_le_bytes());
        }
    }
    h.update(&payload_version.to_le_bytes());
    for tag in tags {
        h.update(&(tag.len() as u64).to_le_bytes());
        h.update(tag.as_bytes());
    }
    *h.finalize().as_bytes()
}

/// Name of the temp file a compaction of `generation` writes segment `id` to.
pub fn temp_segment_name(id: u64, generation: u64) -> String {
    format!("{}{TEMP_MARK}{generation}", segment_file_name(id))
}

fn parse_temp_name(name: &str) -> Option<(u64, u64)> {
    let (segment, generation) = name.split_once(TEMP_MARK)?;
    Some((crate::segment::parse_segment_file_name(segment)?, generation.parse().ok()?))
}

impl Compacted {
    /// True once anything was removed.
    pub fn is_active(&self) -> bool {
        !self.ranges.is_empty()
    }

    /// True when every sequence of `[from, to)` was removed.
    pub fn covers(&self, from: u64, to: u64) -> bool {
        if from >= to {
            return true;
        }
        let i = self.ranges.partition_point(|&(_, end)| end <= from);
        self.ranges.get(i).is_some_and(|&(start, end)| start <= from && to <= end)
    }

    /// Removed ranges clipped to `[from, to)`.
    pub fn within(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        let i = self.ranges.partition_point(|&(_, end)| end <= from);
        self.ranges[i..]
            .iter()
            .take_while(|&&(start, _)| start < to)
            .map(|&(start, end)| (start.max(from), end.min(to)))
            .filter(|(s, e)| s < e)
            .collect()
    }

    /// Removed sequences of `[from, to)`, ascending.
    pub fn removed_seqs(&self, from: u64, to: u64) -> impl Iterator<Item = u64> + '_ {
        self.within(from, to).into_iter().flat_map(|(s, e)| s..e)
    }

    /// Adds removed sequences (ascending) to the ranges, merging neighbours.
    pub fn add_removed(&mut self, seqs: &[u64]) {
        let mut all: Vec<(u64, u64)> = std::mem::take(&mut self.ranges);
        all.extend(seqs.iter().map(|&s| (s, s + 1)));
        all.sort_unstable();
        for (start, end) in all {
            match self.ranges.last_mut() {
                Some(last) if last.1 >= start => last.1 = last.1.max(end),
                _ => self.ranges.push((start, end)),
            }
        }
    }

    /// The length segment `id` must have: its rewritten length, else `sealed`.
    pub fn segment_len(&self, id: u64, sealed: u64) -> u64 {
        self.segments.get(&id).copied().unwrap_or(sealed)
    }

    /// Loads the record; a missing file means nothing was compacted.
    pub fn load(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(COMPACTED_RANGES_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Error::storage("reading compacted.ranges", e)),
        };
        Self::decode(&bytes).map_err(|reason| Error::corrupt(&path, 0, reason))
    }

    /// Writes the record atomically: the commit point of a compaction.
    pub fn save(&self, storage: &dyn Storage, data_dir: &Path) -> Result<()> {
        write_atomic(storage, data_dir, COMPACTED_RANGES_FILE, &self.encode())
            .map_err(|e| Error::storage("writing compacted.ranges", e))
    }

    /// Finishes or undoes an interrupted compaction in `segments_dir`: a temp file of this
    /// record's generation for a segment it rewrote replaces that segment (renamed, or in a
    /// read-only open read in its place: the returned paths); any other temp file is
    /// removed (a compaction that never committed). Read-only opens change nothing.
    pub fn settle_temps(
        &self,
        storage: &dyn Storage,
        segments_dir: &Path,
        read_only: bool,
    ) -> Result<BTreeMap<u64, PathBuf>> {
        let mut redirect = BTreeMap::new();
        let listing = std::fs::read_dir(segments_dir).map_err(|e| Error::storage("listing segments", e))?;
        let mut changed = false;
        for entry in listing {
            let entry = entry.map_err(|e| Error::storage("listing segments", e))?;
            let Some((id, generation)) = entry.file_name().to_str().and_then(parse_temp_name) else {
                continue;
            };
            let path = entry.path();
            let committed = generation == self.generation && self.rewritten.contains(&id);
            if read_only {
                if committed {
                    redirect.insert(id, path);
                }
                continue;
            }
            let outcome = if committed {
                storage.rename(&path, &segments_dir.join(segment_file_name(id)))
            } else {
                storage.remove(&path)
            };
            outcome.map_err(|e| Error::storage("settling an interrupted compaction", e))?;
            changed = true;
        }
        if changed {
            storage.sync_dir(segments_dir).map_err(|e| Error::storage("fsync of segments dir", e))?;
        }
        Ok(redirect)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let u32s = |out: &mut Vec<u8>, v: usize| out.extend_from_slice(&(v as u32).to_le_bytes());
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.generation.to_le_bytes());
        u32s(&mut out, self.ranges.len());
        for &(start, end) in &self.ranges {
            out.extend_from_slice(&start.to_le_bytes());
            out.extend_from_slice(&end.to_le_bytes());
        }
        u32s(&mut out, self.segments.len());
        for (&id, &len) in &self.segments {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
        }
        u32s(&mut out, self.rewritten.len());
        for &id in &self.rewritten {
            out.extend_from_slice(&id.to_le_bytes());
        }
        u32s(&mut out, self.heads.len());
        for (entity, (clock, hash)) in &self.heads {
            out.extend_from_slice(&(entity.len() as u16).to_le_bytes());
            out.extend_from_slice(entity.as_bytes());
            out.extend_from_slice(&clock.to_le_bytes());
            out.extend_from_slice(hash);
        }
        u32s(&mut out, self.keys.len());
        for (key, k) in &self.keys {
            out.push(key.len() as u8);
            out.extend_from_slice(key);
            out.extend_from_slice(&k.seq.to_le_bytes());
            out.extend_from_slice(&k.event_id);
            out.extend_from_slice(&k.entity_sequence.to_le_bytes());
            out.extend_from_slice(&k.timestamp_us.to_le_bytes());
            out.extend_from_slice(&k.hash);
            out.extend_from_slice(&k.content);
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
            return Err("not a compacted.ranges file".into());
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().unwrap()) {
            return Err("compacted.ranges CRC mismatch".into());
        }
        let mut r = Reader { bytes: body, at: MAGIC.len() };
        if r.u32()? != VERSION {
            return Err("unsupported compacted.ranges version".into());
        }
        let mut c = Compacted { generation: r.u64()?, ..Default::default() };
        for _ in 0..r.u32()? {
            c.ranges.push((r.u64()?, r.u64()?));
        }
        let ordered = c.ranges.iter().all(|(s, e)| s < e) && c.ranges.windows(2).all(|w| w[0].1 < w[1].0);
        if !ordered {
            return Err("removed ranges are empty, overlapping or out of order".into());
        }
        for _ in 0..r.u32()? {
            c.segments.insert(r.u64()?, r.u64()?);
        }
        for _ in 0..r.u32()? {
            c.rewritten.push(r.u64()?);
        }
        for _ in 0..r.u32()? {
            let len = u16::from_le_bytes(r.take(2)?.try_into().unwrap()) as usize;
            let entity =
                std::str::from_utf8(r.take(len)?).map_err(|_| "entity name is not UTF-8")?.to_owned();
            c.heads.insert(entity, (r.u64()?, r.hash()?));
        }
        for _ in 0..r.u32()? {
            let len = r.take(1)?[0] as usize;
            let key: Box<[u8]> = r.take(len)?.into();
            let seq = r.u64()?;
            let event_id = r.take(16)?.try_into().unwrap();
            let (entity_sequence, timestamp_us) = (r.u64()?, r.u64()?);
            let (hash, content) = (r.hash()?, r.hash()?);
            c.keys.insert(key, RemovedKey { seq, event_id, entity_sequence, timestamp_us, hash, content });
        }
        if r.at != body.len() {
            return Err("compacted.ranges has bytes after its last section".into());
        }
        Ok(c)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let out = self.bytes.get(self.at..self.at + n).ok_or("compacted.ranges is cut short")?;
        self.at += n;
        Ok(out)
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn hash(&mut self) -> std::result::Result<Hash, String> {
        Ok(self.take(32)?.try_into().unwrap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_ranges_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Compacted::load(dir.path()).unwrap(), Compacted::default());
        let mut c = Compacted { generation: 3, rewritten: vec![1], ..Default::default() };
        c.add_removed(&[2, 3, 4, 9]);
        c.add_removed(&[5, 11]);
        assert_eq!(c.ranges, vec![(2, 6), (9, 10), (11, 12)]);
        assert!(c.covers(3, 6) && !c.covers(3, 7) && c.covers(7, 7));
        assert_eq!(c.within(4, 11), vec![(4, 6), (9, 10)]);
        assert_eq!(c.removed_seqs(5, 12).collect::<Vec<_>>(), vec![5, 9, 11]);
        c.segments.insert(1, 4096);
        c.heads.insert("acct:1".into(), (4, [7; 32]));
        let key = RemovedKey {
            seq: 3,
            event_id: [1; 16],
            entity_sequence: 2,
            timestamp_us: 9,
            hash: [2; 32],
            content: [3; 32],
        };
        c.keys.insert(b"k".to_vec().into(), key);
        c.save(&crate::io::OsStorage, dir.path()).unwrap();
        assert_eq!(Compacted::load(dir.path()).unwrap(), c);
        let path = dir.path().join(COMPACTED_RANGES_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(Compacted::load(dir.path()), Err(Error::CorruptSegment { .. })));
        assert_eq!(parse_temp_name(&temp_segment_name(7, 12)), Some((7, 12)));
        assert_eq!(parse_temp_name("00000000000000000007.seg"), None);
    }
}
