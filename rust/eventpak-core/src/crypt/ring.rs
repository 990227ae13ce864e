//! The data keys in memory: each one's AEAD, built once when the key is loaded or made
//! and reused for every payload it seals or opens, with the suite the key file names.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use chacha20poly1305::XChaCha20Poly1305;

use super::payload::PayloadCipher;

use super::key_file::{Header, KeyFile, KeyRecord, KEY_LEN};
use crate::error::{Error, Result};

/// What a read needs of a data key, and no more: every payload read looks one up, so the
/// table stays small (the wrapped records, needed only to rewrite the file, are apart).
struct DataKey {
    entity: EntityName,
    /// Shared rather than cloned: an expanded AES key is about a kilobyte. A commit's
    /// sealer takes one reference per run of one entity's events.
    cipher: Arc<PayloadCipher>,
}

/// An entity name, inline when it is short (nearly always): checking a payload's entity
/// against its key's then reads nothing but the key's table entry, where a separate
/// allocation per name cost a cache miss per payload read.
enum EntityName {
    Inline { len: u8, bytes: [u8; INLINE_NAME] },
    Heap(Box<str>),
}

const INLINE_NAME: usize = 38;

impl EntityName {
    fn new(name: &str) -> EntityName {
        if name.len() > INLINE_NAME {
            return EntityName::Heap(name.into());
        }
        let mut bytes = [0u8; INLINE_NAME];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        EntityName::Inline { len: name.len() as u8, bytes }
    }

    fn is(&self, name: &str) -> bool {
        match self {
            EntityName::Inline { len, bytes } => &bytes[..*len as usize] == name.as_bytes(),
            EntityName::Heap(own) => &**own == name,
        }
    }
}

/// What a key id names for an event of some entity.
pub(super) enum Lookup<'a> {
    /// The key, ready to open the payload.
    Found(&'a PayloadCipher),
    /// An id handed out before and no longer held: its entity was forgotten.
    Forgotten,
    /// An id handed out before that the file holds neither as a key nor as forgotten:
    /// the file was damaged (only in a file that lists what it forgot).
    Lost,
    /// An id past every one this process has seen (another process made it).
    Unknown,
    /// The key of another entity: the frame or the file is damaged (a forget never moves
    /// a key to another entity, and a key id is never handed out twice).
    OtherEntity,
}

/// A key file as it will be after a forget.
pub(super) struct Rewrite {
    pub(super) header: Header,
    pub(super) records: Vec<KeyRecord>,
}

/// The loaded key file.
pub(super) struct Ring {
    keys: HashMap<u64, DataKey, foldhash::fast::RandomState>,
    /// The ids of the file's tombstones: keys destroyed by a forget.
    forgotten: HashSet<u64>,
    /// The records of `keys` and the tombstones, as the file holds them, in key id order.
    records: BTreeMap<u64, KeyRecord>,
    /// Each entity's newest key: what its next append seals with.
    current: HashMap<Box<str>, (u64, Arc<PayloadCipher>), foldhash::fast::RandomState>,
    header: Header,
    /// One past the highest key id seen (in the header or a record).
    next_id: u64,
    /// Where the intact records end: a torn tail past it is cut before the next append.
    pub(super) valid_len: u64,
    /// The shared forget counter this ring was loaded at (shared mode; 0 otherwise).
    pub(super) seen_forgets: u64,
}

impl Ring {
    /// Unwraps every record of `file`.
    pub(super) fn build(
        path: &Path,
        store: &XChaCha20Poly1305,
        file: KeyFile,
        seen_forgets: u64,
    ) -> Result<Ring> {
        let mut ring = Ring {
            keys: HashMap::default(),
            forgotten: HashSet::new(),
            records: BTreeMap::new(),
            current: HashMap::default(),
            header: file.header,
            next_id: file.header.next_key_id,
            valid_len: 0,
            seen_forgets,
        };
        ring.add(path, store, file.records, file.valid_len)?;
        Ok(ring)
    }

    /// Unwraps and adds `records`, which end at `valid_len`.
    pub(super) fn add(
        &mut self,
        path: &Path,
        store: &XChaCha20Poly1305,
        records: Vec<KeyRecord>,
        valid_len: u64,
    ) -> Result<()> {
        for record in records {
            if self.records.contains_key(&record.key_id) {
                return Err(Error::corrupt(path, 0, format!("key {} recorded twice", record.key_id)));
            }
            if record.is_tombstone() {
                self.next_id = self.next_id.max(record.key_id + 1);
                self.forgotten.insert(record.key_id);
                self.records.insert(record.key_id, record);
                continue;
            }
            let key = record
                .unwrap_key(store)
                .ok_or_else(|| Error::corrupt(path, 0, format!("key {} does not unwrap", record.key_id)))?;
            self.keep(record, &key);
        }
        self.valid_len = valid_len;
        Ok(())
    }

    fn keep(&mut self, record: KeyRecord, key: &[u8; KEY_LEN]) {
        let id = record.key_id;
        self.next_id = self.next_id.max(id + 1);
        let cipher = Arc::new(PayloadCipher::new(self.header.suite, key));
        let newest = self.current.get(record.entity.as_str()).is_none_or(|&(cur, _)| cur < id);
        if newest {
            self.current.insert(record.entity.as_str().into(), (id, cipher.clone()));
        }
        self.keys.insert(id, DataKey { entity: EntityName::new(&record.entity), cipher });
        self.records.insert(id, record);
    }

    /// Adds a key just appended to the file (which now ends at `valid_len`).
    pub(super) fn insert(&mut self, record: KeyRecord, key: &[u8; KEY_LEN], valid_len: u64) {
        self.keep(record, key);
        self.valid_len = valid_len;
    }

    /// The forgets the loaded file had seen (its header's generation).
    pub(super) fn generation(&self) -> u64 {
        self.header.generation
    }

    /// The id the next key gets.
    pub(super) fn next_key_id(&self) -> u64 {
        self.next_id
    }

    /// The entity's current key.
    pub(super) fn current(&self, entity: &str) -> Option<(u64, Arc<PayloadCipher>)> {
        self.current.get(entity).map(|(id, cipher)| (*id, cipher.clone()))
    }

    /// The key `key_id` for an event of `entity`. A key of another entity is never
    /// handed out: the payload would not open anyway, and it says the frame or the file
    /// is damaged, not that anything was forgotten.
    pub(super) fn lookup(&self, key_id: u64, entity: &str) -> Lookup<'_> {
        match self.keys.get(&key_id) {
            Some(key) if key.entity.is(entity) => Lookup::Found(&key.cipher),
            Some(_) => Lookup::OtherEntity,
            None if self.forgotten.contains(&key_id) => Lookup::Forgotten,
            // A file forgotten by an earlier build keeps no tombstones: every id it lacks
            // below its next one is taken as forgotten.
            None if key_id < self.next_id && !self.header.lists_forgotten => Lookup::Forgotten,
            None if key_id < self.next_id => Lookup::Lost,
            None => Lookup::Unknown,
        }
    }

    /// The ids of `entity`'s keys.
    pub(super) fn ids_of(&self, entity: &str) -> Vec<u64> {
        self.keys.iter().filter(|(_, k)| k.entity.is(entity)).map(|(&id, _)| id).collect()
    }

    /// The file with `entity`'s keys replaced by tombstones: the forget counter bumped,
    /// every id handed out so far kept out of reach for good.
    pub(super) fn rewritten_without(&self, entity: &str) -> Rewrite {
        let records = self
            .with_every_id()
            .into_iter()
            .map(|r| if r.entity == entity { KeyRecord::tombstone(r.key_id, &r.entity) } else { r })
            .collect();
        Rewrite { header: self.rewritten_header(), records }
    }

    /// The records, with a tombstone for every id below the next one that the file does
    /// not hold: a file written whole by this build lists what it forgot, including what
    /// an earlier build forgot without a tombstone (its entity unknown: empty).
    fn with_every_id(&self) -> Vec<KeyRecord> {
        if self.header.lists_forgotten {
            return self.records.values().cloned().collect();
        }
        let lacking = (0..self.next_id).filter(|id| !self.records.contains_key(id));
        let tombstones = lacking.map(|id| KeyRecord::tombstone(id, "")).collect::<Vec<_>>();
        let mut all: Vec<KeyRecord> = self.records.values().cloned().chain(tombstones).collect();
        all.sort_by_key(|r| r.key_id);
        all
    }

    /// The header of a rewrite of the file: the rewrite counter bumped, every id handed out
    /// so far kept out of reach for good, the suite kept, the forgotten keys listed.
    fn rewritten_header(&self) -> Header {
        Header {
            generation: self.header.generation + 1,
            next_key_id: self.next_id,
            lists_forgotten: true,
            ..self.header
        }
    }

    /// The file with every record wrapped again, by `new` instead of `old` (a rotation of
    /// the store key): the same data keys under the same ids, each with a fresh nonce. A
    /// record that does not unwrap with `old` is damage (`old` was checked at open).
    pub(super) fn rewrapped(
        &self,
        path: &Path,
        old: &XChaCha20Poly1305,
        new: &XChaCha20Poly1305,
    ) -> Result<Rewrite> {
        let records = self
            .with_every_id()
            .into_iter()
            .map(|record| {
                if record.is_tombstone() {
                    return Ok(record);
                }
                let key = record.unwrap_key(old).ok_or_else(|| {
                    Error::corrupt(path, 0, format!("key {} does not unwrap", record.key_id))
                })?;
                KeyRecord::wrap(new, record.key_id, &record.entity, &key)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Rewrite { header: self.rewritten_header(), records })
    }

    /// Takes the rewrapped records after the file was rewritten (`header`, `valid_len`
    /// bytes); the data keys themselves are unchanged.
    pub(super) fn rewrap(&mut self, rewrite: Rewrite, valid_len: u64) {
        self.took(rewrite, valid_len);
    }

    /// Drops `entity`'s keys after the file was rewritten as `rewrite` (`valid_len` bytes).
    pub(super) fn forget(&mut self, entity: &str, rewrite: Rewrite, valid_len: u64) {
        self.keys.retain(|_, k| !k.entity.is(entity));
        self.current.remove(entity);
        self.took(rewrite, valid_len);
    }

    /// Takes the records and header of the file as rewritten.
    fn took(&mut self, rewrite: Rewrite, valid_len: u64) {
        self.forgotten = rewrite.records.iter().filter(|r| r.is_tombstone()).map(|r| r.key_id).collect();
        self.records = rewrite.records.into_iter().map(|r| (r.key_id, r)).collect();
        self.header = rewrite.header;
        self.valid_len = valid_len;
    }

    /// Keys the rewrite holds (its tombstones aside).
    pub(super) fn held_in(rewrite: &Rewrite) -> usize {
        rewrite.records.iter().filter(|r| !r.is_tombstone()).count()
    }

    /// Keys held.
    pub(super) fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Entities holding a key.
    pub(super) fn entity_count(&self) -> usize {
        self.current.len()
    }
}

#[cfg(test)]
mod tests {
    use super::EntityName;

    #[test]
    fn entity_names_compare_exactly_inline_and_on_the_heap() {
        for name in ["", "a", "acct-00042", &"n".repeat(38), &"n".repeat(39), "é😀"] {
            let own = EntityName::new(name);
            assert_eq!(matches!(own, EntityName::Inline { .. }), name.len() <= 38, "{name}");
            assert!(own.is(name));
            for other in
                [&format!("{name}x")[..], name.get(..name.len().saturating_sub(1)).unwrap_or("x"), "\0"]
            {
                assert_eq!(own.is(other), other == name, "{name:?} vs {other:?}");
            }
        }
    }
}
