//! The index checkpoint: a snapshot of the index written at close so that reopening
//! does not rescan every segment. It is only a cache: any doubt means a full scan.

use std::path::Path;

use super::{EntityState, EntryMeta, Index, Interner};
use crate::io::{write_atomic, Storage};

/// File name of the index checkpoint inside a data dir.
pub const INDEX_CHECKPOINT_FILE: &str = "index.ckpt";
const MAGIC: &[u8; 8] = b"EVPKIDX\0";
const VERSION: u32 = 1;
const ENTRY_LEN: usize = 53;

/// What part of the log a checkpoint covers: each segment id with its length then.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointCover {
    /// `(segment id, covered length)` in ascending id order.
    pub segments: Vec<(u64, u64)>,
    /// Newest timestamp handed out when the checkpoint was taken.
    pub last_timestamp_us: u64,
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
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
    w.0.extend_from_slice(MAGIC);
    w.u32(VERSION);
    w.u64(cover.last_timestamp_us);
    w.u32(cover.segments.len() as u32);
    for &(id, len) in &cover.segments {
        w.u64(id);
        w.u64(len);
    }
    for names in [&index.entity_names, &index.scope_names, &index.kind_names] {
        w.u32(names.len() as u32);
        for name in names.names() {
            w.bytes(name.as_bytes());
        }
    }
    w.u64(index.entries.len() as u64);
    for (m, id) in index.entries.iter().zip(&index.event_ids) {
        w.u32(m.segment);
        w.u64(m.offset);
        w.u32(m.len);
        w.u32(m.entity);
        w.u32(m.scope);
        w.u32(m.kind);
        w.u64(m.entity_sequence);
        w.0.push(m.visible as u8);
        w.0.extend_from_slice(&id.to_be_bytes());
    }
    for state in &index.entities {
        w.0.extend_from_slice(&state.last_hash);
    }
    w.u64(index.idempotency.len() as u64);
    for (key, &seq) in &index.idempotency {
        w.bytes(key);
        w.u64(seq);
    }
    let crc = crc32c::crc32c(&w.0);
    w.u32(crc);
    write_atomic(storage, dir, INDEX_CHECKPOINT_FILE, &w.0)
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or("truncated")?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// A count of items of `item_len` bytes, refused when the rest of the file cannot hold
    /// them: a forged count never causes a large allocation.
    fn count(&mut self, wide: bool, item_len: usize) -> Result<usize, String> {
        let n = if wide { self.u64()? } else { self.u32()? as u64 };
        let room = (self.buf.len() - self.at) as u64;
        if n.saturating_mul(item_len.max(1) as u64) > room {
            return Err(format!("count {n} exceeds the file"));
        }
        Ok(n as usize)
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.count(false, 1)?;
        self.take(n)
    }
}

/// Reads and checks the checkpoint. `Ok(None)` when there is none; `Err(reason)` when it
/// is unusable (damaged, another version, inconsistent).
pub fn load_checkpoint(dir: &Path) -> Result<Option<(Index, CheckpointCover)>, String> {
    let bytes = match std::fs::read(dir.join(INDEX_CHECKPOINT_FILE)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("unreadable: {e}")),
    };
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err("bad magic".into());
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().unwrap()) {
        return Err("CRC mismatch".into());
    }
    let mut r = Reader { buf: body, at: 8 };
    if r.u32()? != VERSION {
        return Err("unsupported version".into());
    }
    let mut cover = CheckpointCover { last_timestamp_us: r.u64()?, ..Default::default() };
    for _ in 0..r.count(false, 16)? {
        cover.segments.push((r.u64()?, r.u64()?));
    }
    let mut tables: [Interner; 3] = Default::default();
    for table in &mut tables {
        for _ in 0..r.count(false, 4)? {
            let name = std::str::from_utf8(r.bytes()?).map_err(|_| "name is not UTF-8")?;
            if table.intern(name) as usize != table.len() - 1 {
                return Err("duplicate name".into());
            }
        }
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
    let n = r.count(true, ENTRY_LEN)?;
    index.entries.reserve_exact(n);
    index.event_ids.reserve_exact(n);
    for seq in 0..n as u64 {
        let m = EntryMeta {
            segment: r.u32()?,
            offset: r.u64()?,
            len: r.u32()?,
            entity: r.u32()?,
            scope: r.u32()?,
            kind: r.u32()?,
            entity_sequence: r.u64()?,
            visible: match r.take(1)?[0] {
                0 => false,
                1 => true,
                _ => return Err("bad visibility flag".into()),
            },
        };
        let id = u128::from_be_bytes(r.take(16)?.try_into().unwrap());
        let entity = index.entities.get_mut(m.entity as usize).ok_or("entity id out of range")?;
        let scope = index.scope_postings.get_mut(m.scope as usize).ok_or("scope id out of range")?;
        let kind = index.kind_postings.get_mut(m.kind as usize).ok_or("kind id out of range")?;
        if m.visible {
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
    for state in &mut index.entities {
        state.last_hash = r.take(32)?.try_into().unwrap();
    }
    for _ in 0..r.count(true, 12)? {
        let key = r.bytes()?.into();
        let seq = r.u64()?;
        if seq >= n as u64 {
            return Err("idempotency entry out of range".into());
        }
        index.idempotency.insert(key, seq);
    }
    if r.at != body.len() {
        return Err("trailing bytes".into());
    }
    Ok(Some((index, cover)))
}
