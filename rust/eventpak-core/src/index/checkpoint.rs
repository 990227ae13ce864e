//! The index checkpoint: a snapshot of the index written at close so that reopening
//! does not rescan every segment. It is only a cache: any doubt means a full scan.

use std::mem::size_of;
use std::path::Path;

use super::checkpoint_holes::{write_hole_postings, HolePostings};
use super::checkpoint_sections::{read_causal, read_tags, read_tracking, write_sections};
use super::holes::HOLE;
use super::{EntityState, EntryMeta, Index, Interner};
use crate::event::Hash;
use crate::io::{write_atomic, Storage};

/// File name of the index checkpoint inside a data dir.
pub const INDEX_CHECKPOINT_FILE: &str = "index.ckpt";
const MAGIC: &[u8; 8] = b"EVPKIDX\0";
/// Version 4 is version 3 with holes: entries of removed events, and before the entries the
/// entity postings that point at them (`checkpoint_holes.rs`).
const VERSION: u32 = 4;
/// Version 3 is version 2 followed by the tag and tracking sections.
const VERSION_WITHOUT_HOLES: u32 = 3;
/// Version 2 is version 1 followed by the causal sections (links, then correlations); its
/// stores hold no tags nor tracking records, so it is still read as it is.
const VERSION_WITHOUT_TAGS: u32 = 2;
/// Checkpoints without causal sections; still read, their causal indexes are rebuilt
/// from the frames they cover.
const VERSION_WITHOUT_CAUSAL: u32 = 1;

// The fixed head; the covered segments follow it.
const VERSION_OFFSET: usize = MAGIC.len();
const LAST_TIMESTAMP_OFFSET: usize = VERSION_OFFSET + size_of::<u32>();
const SEGMENT_COUNT_OFFSET: usize = LAST_TIMESTAMP_OFFSET + size_of::<u64>();
const SEGMENTS_OFFSET: usize = SEGMENT_COUNT_OFFSET + size_of::<u32>();
/// A covered segment: its id and covered length, both u64.
const SEGMENT_COVER_LEN: usize = 2 * size_of::<u64>();

// One fixed-size entry per event, by global sequence.
const ENTRY_SEGMENT_OFFSET: usize = 0;
const ENTRY_FRAME_OFFSET_OFFSET: usize = ENTRY_SEGMENT_OFFSET + size_of::<u32>();
const ENTRY_FRAME_LEN_OFFSET: usize = ENTRY_FRAME_OFFSET_OFFSET + size_of::<u64>();
const ENTRY_ENTITY_OFFSET: usize = ENTRY_FRAME_LEN_OFFSET + size_of::<u32>();
const ENTRY_SCOPE_OFFSET: usize = ENTRY_ENTITY_OFFSET + size_of::<u32>();
const ENTRY_KIND_OFFSET: usize = ENTRY_SCOPE_OFFSET + size_of::<u32>();
const ENTRY_ENTITY_SEQUENCE_OFFSET: usize = ENTRY_KIND_OFFSET + size_of::<u32>();
const ENTRY_VISIBLE_OFFSET: usize = ENTRY_ENTITY_SEQUENCE_OFFSET + size_of::<u64>();
/// The event id, big-endian like in a frame.
const ENTRY_EVENT_ID_OFFSET: usize = ENTRY_VISIBLE_OFFSET + size_of::<u8>();
const ENTRY_LEN: usize = ENTRY_EVENT_ID_OFFSET + size_of::<u128>();

/// One chain head per entity.
const CHAIN_HEAD_LEN: usize = size_of::<Hash>();
/// Names and idempotency keys are a u32 length, then the bytes.
pub(super) const LEN_PREFIX: usize = size_of::<u32>();
/// An idempotency entry without its key bytes: the key length and the global sequence.
const KEY_ENTRY_MIN_LEN: usize = LEN_PREFIX + size_of::<u64>();
const CRC_LEN: usize = size_of::<u32>();
/// Shorter than magic, version and CRC is not a checkpoint at all.
const MIN_LEN: usize = LAST_TIMESTAMP_OFFSET + CRC_LEN;

/// From this size on, the checkpoint's CRC runs on a second thread beside the parse; below
/// it, starting a thread costs more than the CRC.
const PARALLEL_CRC_FROM: usize = 4 << 20;

/// What part of the log a checkpoint covers: each segment id with its length then.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointCover {
    /// `(segment id, covered length)` in ascending id order.
    pub segments: Vec<(u64, u64)>,
    /// Newest timestamp handed out when the checkpoint was taken.
    pub last_timestamp_us: u64,
    /// False for a version-1 checkpoint: it holds no causal indexes, so whoever loads it
    /// must rebuild them from the covered frames.
    pub has_causal: bool,
}

pub(super) struct Writer(pub(super) Vec<u8>);

impl Writer {
    pub(super) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
}

/// Writes the checkpoint of `index` covering `cover`, atomically.
pub fn write_checkpoint(
    storage: &dyn Storage,
    dir: &Path,
    index: &Index,
    cover: &CheckpointCover,
) -> std::io::Result<()> {
    let mut w = Writer(Vec::with_capacity(64 + index.entries.len() * (ENTRY_LEN + 8)));
    w.0.resize(SEGMENTS_OFFSET, 0);
    w.0[..VERSION_OFFSET].copy_from_slice(MAGIC);
    put(&mut w.0, VERSION_OFFSET, &VERSION.to_le_bytes());
    put(&mut w.0, LAST_TIMESTAMP_OFFSET, &cover.last_timestamp_us.to_le_bytes());
    put(&mut w.0, SEGMENT_COUNT_OFFSET, &(cover.segments.len() as u32).to_le_bytes());
    for &(id, len) in &cover.segments {
        w.u64(id);
        w.u64(len);
    }
    for names in [&index.entity_names, &index.scope_names, &index.kind_names] {
        write_names(&mut w, names);
    }
    write_hole_postings(&mut w, index);
    w.u64(index.entries.len() as u64);
    // A hole is written with the id of the event before it, as a scan rebuilds it (in
    // memory, a hole made by an earlier compaction keeps the id it took then).
    let mut last_id = 0;
    for (m, &id) in index.entries.iter().zip(&index.event_ids) {
        if !m.is_hole() {
            last_id = id;
        }
        w.0.extend_from_slice(&encode_entry(m, last_id));
    }
    for state in &index.entities {
        w.0.extend_from_slice(&state.last_hash);
    }
    w.u64(index.idempotency.len() as u64);
    for (key, &seq) in &index.idempotency {
        w.bytes(key);
        w.u64(seq);
    }
    write_sections(&mut w, index);
    let crc = crc32c::crc32c(&w.0);
    w.u32(crc);
    write_atomic(storage, dir, INDEX_CHECKPOINT_FILE, &w.0)
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

fn encode_entry(m: &EntryMeta, id: u128) -> [u8; ENTRY_LEN] {
    let mut e = [0; ENTRY_LEN];
    put(&mut e, ENTRY_SEGMENT_OFFSET, &m.segment.to_le_bytes());
    put(&mut e, ENTRY_FRAME_OFFSET_OFFSET, &m.offset.to_le_bytes());
    put(&mut e, ENTRY_FRAME_LEN_OFFSET, &m.len.to_le_bytes());
    put(&mut e, ENTRY_ENTITY_OFFSET, &m.entity.to_le_bytes());
    put(&mut e, ENTRY_SCOPE_OFFSET, &m.scope.to_le_bytes());
    put(&mut e, ENTRY_KIND_OFFSET, &m.kind.to_le_bytes());
    put(&mut e, ENTRY_ENTITY_SEQUENCE_OFFSET, &m.entity_sequence.to_le_bytes());
    e[ENTRY_VISIBLE_OFFSET] = m.visible as u8;
    put(&mut e, ENTRY_EVENT_ID_OFFSET, &id.to_be_bytes());
    e
}

fn decode_entry(e: &[u8]) -> Result<(EntryMeta, u128), String> {
    let u32_at = |at: usize| u32::from_le_bytes(e[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(e[at..at + 8].try_into().unwrap());
    let meta = EntryMeta {
        segment: u32_at(ENTRY_SEGMENT_OFFSET),
        offset: u64_at(ENTRY_FRAME_OFFSET_OFFSET),
        len: u32_at(ENTRY_FRAME_LEN_OFFSET),
        entity: u32_at(ENTRY_ENTITY_OFFSET),
        scope: u32_at(ENTRY_SCOPE_OFFSET),
        kind: u32_at(ENTRY_KIND_OFFSET),
        entity_sequence: u64_at(ENTRY_ENTITY_SEQUENCE_OFFSET),
        visible: match e[ENTRY_VISIBLE_OFFSET] {
            0 => false,
            1 => true,
            _ => return Err("bad visibility flag".into()),
        },
    };
    Ok((meta, u128::from_be_bytes(e[ENTRY_EVENT_ID_OFFSET..ENTRY_LEN].try_into().unwrap())))
}

pub(super) struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// Moves to a field of the fixed head; everything after it is read in sequence.
    fn seek(&mut self, at: usize) -> &mut Self {
        self.at = at;
        self
    }
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or("truncated")?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }
    pub(super) fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub(super) fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// A count of items of `item_len` bytes, refused when the rest of the file cannot hold
    /// them: a forged count never causes a large allocation.
    pub(super) fn count(&mut self, wide: bool, item_len: usize) -> Result<usize, String> {
        let n = if wide { self.u64()? } else { self.u32()? as u64 };
        let room = (self.buf.len() - self.at) as u64;
        if n.saturating_mul(item_len.max(1) as u64) > room {
            return Err(format!("count {n} exceeds the file"));
        }
        Ok(n as usize)
    }
    pub(super) fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.count(false, 1)?;
        self.take(n)
    }
}

/// Reads and checks the checkpoint. `Ok(None)` when there is none; `Err(reason)` when it
/// is unusable (damaged, another version, inconsistent).
pub fn load_checkpoint(dir: &Path) -> Result<Option<(Index, CheckpointCover)>, String> {
    let file = match std::fs::File::open(dir.join(INDEX_CHECKPOINT_FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("unreadable: {e}")),
    };
    // Mapped (and populated in one go) rather than read: a large checkpoint is parsed
    // straight from the page cache instead of being copied first.
    // SAFETY: the file is replaced only by rename, never rewritten in place, and the store
    // holding the data dir lock is the only writer.
    let bytes = unsafe { memmap2::MmapOptions::new().populate().map(&file) }
        .map_err(|e| format!("unreadable: {e}"))?;
    if bytes.len() < MIN_LEN || &bytes[..VERSION_OFFSET] != MAGIC {
        return Err("bad magic".into());
    }
    let (body, crc) = bytes.split_at(bytes.len() - CRC_LEN);
    let crc = u32::from_le_bytes(crc.try_into().unwrap());
    if body.len() < PARALLEL_CRC_FROM {
        if crc32c::crc32c(body) != crc {
            return Err("CRC mismatch".into());
        }
        return parse(body).map(Some);
    }
    // A large checkpoint's CRC is checked on another core while the body is parsed; the
    // parse is thrown away unless the CRC holds.
    std::thread::scope(|scope| {
        let crc_ok = scope.spawn(|| crc32c::crc32c(body) == crc);
        let parsed = parse(body);
        match crc_ok.join() {
            Ok(true) => parsed.map(Some),
            _ => Err("CRC mismatch".into()),
        }
    })
}

/// Parses a checkpoint body (its CRC is checked by the caller).
fn parse(body: &[u8]) -> Result<(Index, CheckpointCover), String> {
    let mut r = Reader { buf: body, at: 0 };
    let version = r.seek(VERSION_OFFSET).u32()?;
    if !(VERSION_WITHOUT_CAUSAL..=VERSION).contains(&version) {
        return Err("unsupported version".into());
    }
    let last_timestamp_us = r.seek(LAST_TIMESTAMP_OFFSET).u64()?;
    let has_causal = version >= VERSION_WITHOUT_TAGS;
    let mut cover = CheckpointCover { last_timestamp_us, has_causal, ..Default::default() };
    for _ in 0..r.seek(SEGMENT_COUNT_OFFSET).count(false, SEGMENT_COVER_LEN)? {
        cover.segments.push((r.u64()?, r.u64()?));
    }
    let mut tables: [Interner; 3] = Default::default();
    for table in &mut tables {
        *table = read_names(&mut r)?;
    }
    let [entity_names, scope_names, kind_names] = tables;
    let mut index = Index {
        entities: (0..entity_names.len()).map(|_| EntityState::default()).collect(),
        scope_postings: vec![Vec::new(); scope_names.len()],
        kind_postings: vec![Vec::new(); kind_names.len()],
        entity_order: entity_names.names().iter().cloned().zip(0..).collect(),
        kind_order: kind_names.names().iter().cloned().zip(0..).collect(),
        entity_names,
        scope_names,
        kind_names,
        ..Default::default()
    };
    let mut hole_postings = match version {
        VERSION => HolePostings::read(&mut r, index.entities.len())?,
        _ => HolePostings::default(),
    };
    let n = r.count(true, ENTRY_LEN)?;
    index.entries.reserve_exact(n);
    index.event_ids.reserve_exact(n);
    for seq in 0..n as u64 {
        let (m, id) = decode_entry(r.take(ENTRY_LEN)?)?;
        if m.is_hole() {
            // A hole repeats the id before it (or is 0 at the start) and holds nothing else.
            if version < VERSION || m != HOLE || id != index.last_event_id() {
                return Err("bad hole entry".into());
            }
            index.event_ids.push(id);
            index.entries.push(m);
            index.holes += 1;
            continue;
        }
        let entity = index.entities.get_mut(m.entity as usize).ok_or("entity id out of range")?;
        let scope = index.scope_postings.get_mut(m.scope as usize).ok_or("scope id out of range")?;
        let kind = index.kind_postings.get_mut(m.kind as usize).ok_or("kind id out of range")?;
        if m.visible {
            hole_postings.place_before(m.entity, entity, m.entity_sequence, seq, &index.entries)?;
            if entity.postings.len() as u64 != m.entity_sequence {
                return Err("entity clock out of order".into());
            }
            entity.postings.push(seq);
            scope.push(seq);
            kind.push(seq);
        }
        if index.event_ids.last().is_some_and(|&last| last >= id) {
            return Err("event ids out of order".into());
        }
        if m.segment as usize >= cover.segments.len() {
            return Err("segment position out of range".into());
        }
        index.event_ids.push(id);
        index.entries.push(m);
    }
    hole_postings.place_rest(&mut index)?;
    for state in &mut index.entities {
        state.last_hash = r.take(CHAIN_HEAD_LEN)?.try_into().unwrap();
    }
    for _ in 0..r.count(true, KEY_ENTRY_MIN_LEN)? {
        let key = r.bytes()?.into();
        let seq = r.u64()?;
        if seq >= n as u64 {
            return Err("idempotency entry out of range".into());
        }
        index.idempotency.insert(key, seq);
    }
    if has_causal {
        read_causal(&mut r, &mut index, n as u64)?;
    }
    if version >= VERSION_WITHOUT_HOLES {
        read_tags(&mut r, &mut index)?;
        read_tracking(&mut r, &mut index, cover.segments.len())?;
    }
    if r.at != body.len() {
        return Err("trailing bytes".into());
    }
    Ok((index, cover))
}

/// Reads a name table: a count (u32), then each name as a length (u32) and UTF-8 bytes,
/// none twice.
pub(super) fn read_names(r: &mut Reader<'_>) -> Result<Interner, String> {
    let mut table = Interner::default();
    for _ in 0..r.count(false, LEN_PREFIX)? {
        let name = std::str::from_utf8(r.bytes()?).map_err(|_| "name is not UTF-8")?;
        if table.intern(name) as usize != table.len() - 1 {
            return Err("duplicate name".into());
        }
    }
    Ok(table)
}

/// Writes a name table as [`read_names`] reads it.
pub(super) fn write_names(w: &mut Writer, names: &Interner) {
    w.u32(names.len() as u32);
    for name in names.names() {
        w.bytes(name.as_bytes());
    }
}
