//! Encryption at rest: payloads sealed with AES-256-GCM (AES-256-GCM-SIV in stores made
//! before it, see [`PayloadSuite`]) under a per-entity data key, data keys wrapped
//! (XChaCha20-Poly1305) by the store key in the key file ([`key_file`]). Names, kinds,
//! sequences and hashes stay in clear; the hash covers the sealed bytes, so `verify()`
//! never needs a key. Forgetting an entity destroys its data keys: its payloads can never
//! be opened again, everything else about its events stays and verifies.

pub mod key_file;
mod mode;
mod payload;
mod ring;
mod sealer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chacha20poly1305::XChaCha20Poly1305;
use parking_lot::RwLock;

use self::key_file::TAG_LEN;
pub use self::key_file::{KEY_FILE, KEY_LEN};
pub use self::mode::{open_keys, recheck_shared};
use self::payload::{Aad, PayloadCipher, BODY_AT};
pub use self::payload::{PayloadBinding, PayloadSuite, PAYLOAD_NONCE_LEN, SEALED_OVERHEAD};
use self::ring::Ring;
use crate::coord::SharedMemory;
use crate::error::{Error, Result};
use crate::io::Storage;

/// Opened payloads up to this long are opened into a buffer on the stack
/// ([`PayloadKeys::open_with`]); longer ones into one on the heap.
const OPEN_ON_STACK: usize = 1024;

/// A fresh random store key (32 bytes from the operating system).
pub fn generate_encryption_key() -> Result<[u8; KEY_LEN]> {
    key_file::random()
}

/// The keys of an encrypted store: shared by the store and every event read from it
/// (cloning is cheap). See `docs/lifecycle.md`, "Encryption at rest".
#[derive(Clone)]
pub struct PayloadKeys(Arc<Inner>);

struct Inner {
    path: PathBuf,
    storage: Arc<dyn Storage>,
    /// The store key's AEAD, replaced by a rotation. Lock order: `ring`, then `store`.
    store: RwLock<XChaCha20Poly1305>,
    ring: RwLock<Ring>,
    /// With `shared=True`: the page whose forget counter tells this process that another
    /// one rewrote the key file.
    shared: Option<SharedMemory>,
}

impl std::fmt::Debug for PayloadKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PayloadKeys(<hidden>)")
    }
}

impl PayloadKeys {
    fn new(path: PathBuf, storage: Arc<dyn Storage>, store: XChaCha20Poly1305, ring: Ring) -> Self {
        let store = RwLock::new(store);
        PayloadKeys(Arc::new(Inner { path, storage, store, ring: RwLock::new(ring), shared: None }))
    }

    /// Follows the forget counter of the shared page at `mem` (shared mode). Called once,
    /// before the store is handed out; the counter is read before the file is reloaded,
    /// so a forget racing with the open is seen at the next read.
    pub fn attach_shared(&mut self, mem: &Path) -> Result<()> {
        let page = SharedMemory::open(mem).map_err(|e| Error::storage("mapping shared/mem", e))?;
        let inner = Arc::get_mut(&mut self.0).ok_or_else(|| Error::Internal("keys already shared".into()))?;
        let seen = page.keys_generation();
        inner.shared = Some(page);
        let ring = self.0.load_ring(seen)?;
        *self.0.ring.write() = ring;
        Ok(())
    }

    /// Picks up what other processes changed (shared mode): a forget rewrote the file
    /// (reload it whole). Cheap when nothing changed: one load from the shared page.
    pub fn follow(&self) -> Result<()> {
        let Some(page) = &self.0.shared else { return Ok(()) };
        let now = page.keys_generation();
        if self.0.ring.read().seen_forgets == now {
            return Ok(());
        }
        let ring = self.0.load_ring(now)?;
        *self.0.ring.write() = ring;
        Ok(())
    }

    /// Opens the sealed payload of the event at `at` (global sequence `global_sequence`).
    /// [`Error::PayloadForgotten`] when its key was destroyed; a payload that does not open
    /// with its key is [`Error::CorruptSegment`].
    pub fn open(&self, at: &PayloadBinding<'_>, global_sequence: u64, sealed: &[u8]) -> Result<Vec<u8>> {
        let parts = self.split(global_sequence, sealed)?;
        let mut plain = parts.body.to_vec();
        self.open_in_place(at, global_sequence, &parts, &mut plain)?;
        Ok(plain)
    }

    /// Opens the sealed payload as [`PayloadKeys::open`] does and hands the plaintext to
    /// `read`, without a heap allocation for a payload of up to a kilobyte: for a read
    /// that decodes the payload and keeps nothing of its bytes.
    pub fn open_with<T>(
        &self,
        at: &PayloadBinding<'_>,
        global_sequence: u64,
        sealed: &[u8],
        read: impl FnOnce(&[u8]) -> T,
    ) -> Result<T> {
        let parts = self.split(global_sequence, sealed)?;
        if parts.body.len() > OPEN_ON_STACK {
            return self.open(at, global_sequence, sealed).map(|plain| read(&plain));
        }
        // Not zeroed first: only the body's length is used, and it is written before it
        // is read (zeroing a kilobyte per read cost more than the copy).
        let mut buf = std::mem::MaybeUninit::<[u8; OPEN_ON_STACK]>::uninit();
        let len = parts.body.len();
        // SAFETY: `len <= OPEN_ON_STACK` (checked above); the slice covers exactly the
        // bytes just copied into the buffer, which does not overlap the mapped frame.
        let plain = unsafe {
            let at = buf.as_mut_ptr().cast::<u8>();
            std::ptr::copy_nonoverlapping(parts.body.as_ptr(), at, len);
            std::slice::from_raw_parts_mut(at, len)
        };
        self.open_in_place(at, global_sequence, &parts, plain)?;
        Ok(read(plain))
    }

    fn damaged(&self, global_sequence: u64, reason: &str) -> Error {
        Error::corrupt(self.0.path.clone(), global_sequence, format!("event {global_sequence}: {reason}"))
    }

    fn split<'s>(&self, global_sequence: u64, sealed: &'s [u8]) -> Result<Sealed<'s>> {
        if sealed.len() < SEALED_OVERHEAD {
            return Err(self.damaged(global_sequence, "sealed payload too short"));
        }
        let (head, rest) = sealed.split_at(BODY_AT);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        Ok(Sealed {
            key_id: u64::from_le_bytes(head[..8].try_into().expect("8 bytes")),
            nonce: head[8..].try_into().expect("a nonce's length"),
            body,
            tag: tag.try_into().expect("a tag's length"),
        })
    }

    /// Decrypts `plain` (a copy of `parts.body`) in place. The key is used under the
    /// ring's read lock, so a read takes no reference to it.
    fn open_in_place(
        &self,
        at: &PayloadBinding<'_>,
        global_sequence: u64,
        parts: &Sealed<'_>,
        plain: &mut [u8],
    ) -> Result<()> {
        self.follow()?;
        let aad = Aad::new(parts.key_id, at);
        let forgotten = || Error::PayloadForgotten { entity: at.entity.to_owned(), global_sequence };
        let mut opened = |cipher: &PayloadCipher| {
            cipher
                .open(parts.nonce, aad.bytes(), plain, parts.tag)
                .map_err(|_| self.damaged(global_sequence, "sealed payload does not open with its key"))
        };
        {
            let ring = self.0.ring.read();
            match ring.lookup(parts.key_id, at.entity) {
                ring::Lookup::Found(cipher) => return opened(cipher),
                ring::Lookup::Forgotten => return Err(forgotten()),
                // Released before a reload takes the write lock.
                ring::Lookup::Unknown | ring::Lookup::Lost | ring::Lookup::OtherEntity => {}
            }
        }
        // A key id this process has not seen: another process made it (shared mode).
        self.0.reload_tail()?;
        let ring = self.0.ring.read();
        match ring.lookup(parts.key_id, at.entity) {
            ring::Lookup::Found(cipher) => opened(cipher),
            ring::Lookup::Forgotten => Err(forgotten()),
            ring::Lookup::Unknown => Err(Error::corrupt(
                self.0.path.clone(),
                0,
                format!("a payload names key {}, which the key file never held", parts.key_id),
            )),
            ring::Lookup::OtherEntity => Err(self.damaged(
                global_sequence,
                &format!("its payload names key {}, which belongs to another entity", parts.key_id),
            )),
            ring::Lookup::Lost => Err(Error::corrupt(
                self.0.path.clone(),
                0,
                format!(
                    "a payload names key {}, which the key file lost: no forget removed it",
                    parts.key_id
                ),
            )),
        }
    }

    /// Destroys every data key of `entity` durably: the key file is rewritten without them
    /// (temp, fsync, rename, directory fsync), then they are dropped from memory (and, in
    /// shared mode, the other processes told to reload). Returns how many keys it destroyed
    /// (0: the entity had none; nothing is written). The caller holds the writer lock.
    pub fn forget(&self, entity: &str) -> Result<usize> {
        self.follow()?;
        // Another process may have given the entity a key this one has not loaded yet.
        self.0.reload_tail()?;
        let mut ring = self.0.ring.write();
        let gone = ring.ids_of(entity);
        if gone.is_empty() {
            return Ok(0);
        }
        let next = ring.rewritten_without(entity);
        let len = self.0.replace_file(&self.0.store.read(), &next)?;
        ring.forget(entity, next, len);
        if let Some(page) = &self.0.shared {
            ring.seen_forgets = page.bump_keys_generation();
        }
        Ok(gone.len())
    }

    /// Wraps every data key again, by the store key `new_key` instead of the current one
    /// (a rotation of the store key): the key file is rewritten (temp, fsync, rename,
    /// directory fsync) with the same data keys, so every payload stays readable, and from
    /// then on only `new_key` opens the store. Returns how many data keys it wrapped. The
    /// caller holds the writer lock and has made sure no other process has the store open
    /// (each would still hold the old key).
    pub fn rotate(&self, new_key: &[u8; KEY_LEN]) -> Result<usize> {
        let new = key_file::cipher(new_key);
        let mut ring = self.0.ring.write();
        let mut store = self.0.store.write();
        let next = ring.rewrapped(&self.0.path, &store, &new)?;
        let count = Ring::held_in(&next);
        let len = self.0.replace_file(&new, &next)?;
        ring.rewrap(next, len);
        *store = new;
        Ok(count)
    }

    /// Data keys held, and entities holding one (for `stats()` and tests).
    pub fn counts(&self) -> (usize, usize) {
        let ring = self.0.ring.read();
        (ring.key_count(), ring.entity_count())
    }
}

impl Inner {
    /// Replaces the key file with `next`, its check value sealed by `store` (temp, fsync,
    /// rename, directory fsync); returns the new file's length.
    fn replace_file(&self, store: &XChaCha20Poly1305, next: &ring::Rewrite) -> Result<u64> {
        let bytes = key_file::encode_file(store, next.header, &next.records)?;
        let dir = self.path.parent().expect("the key file lies in the data dir");
        crate::io::write_atomic_telling(&*self.storage, dir, KEY_FILE, &bytes).map_err(|failed| {
            // Before the rename, the old file stands and this process's keys still say
            // what it holds: the failure is beside the writer (see `Store::forget_entity`).
            let context = if failed.may_have_replaced { "" } else { crate::error::KEY_FILE_CONTEXT };
            Error::storage(&format!("{context}rewriting the key file"), failed.error)
        })?;
        Ok(bytes.len() as u64)
    }

    fn load_ring(&self, seen_forgets: u64) -> Result<Ring> {
        let store = self.store.read();
        let file = key_file::load(&self.path, &store)?.ok_or_else(|| {
            Error::InvalidConfig("the key file no longer opens with this encryption_key".into())
        })?;
        Ring::build(&self.path, &store, file, seen_forgets)
    }

    /// Adds the records other processes appended since this one last read the file.
    fn reload_tail(&self) -> Result<()> {
        if self.shared.is_none() {
            return Ok(()); // Nobody else writes the file.
        }
        let mut ring = self.ring.write();
        // Only the header and what was appended since the last load are read: a process
        // making a key reloads first, and the whole file of a store with many entities
        // would cost it milliseconds under the cross-process write lock.
        let (head, tail) = key_file::read_header_and_tail(&self.path, ring.valid_len)?;
        let header = key_file::decode_header(&head, &self.store.read(), &self.path)?.ok_or_else(|| {
            Error::InvalidConfig("the key file no longer opens with this encryption_key".into())
        })?;
        if header.generation != ring.generation() {
            // Rewritten by a forget this process has not been told of (its counter bump
            // never came): the file did not only grow, so it is read whole.
            let seen = ring.seen_forgets;
            let bytes = key_file::read_bytes(&self.path)?;
            let (records, valid_len) = key_file::decode_records(&bytes, key_file::HEADER_LEN, &self.path)?;
            let file = key_file::KeyFile { header, records, valid_len };
            *ring = Ring::build(&self.path, &self.store.read(), file, seen)?;
            return Ok(());
        }
        let from = ring.valid_len.max(key_file::HEADER_LEN as u64);
        let (records, valid_len) = key_file::decode_records_at(&tail, from, &self.path)?;
        ring.add(&self.path, &self.store.read(), records, valid_len)
    }

    /// The current key of `entity`, made and durably recorded first when it has none.
    fn key_for_append(&self, entity: &str) -> Result<(u64, Arc<PayloadCipher>)> {
        if let Some(found) = self.ring.read().current(entity) {
            return Ok(found);
        }
        self.reload_tail()?;
        let mut ring = self.ring.write();
        if let Some(found) = ring.current(entity) {
            return Ok(found);
        }
        // Wiped when dropped, on every path: only the cipher built from it is kept.
        let key: zeroize::Zeroizing<[u8; KEY_LEN]> = zeroize::Zeroizing::new(key_file::random()?);
        let key_id = ring.next_key_id();
        let record = key_file::KeyRecord::wrap(&self.store.read(), key_id, entity, &key)?;
        let valid_len = key_file::append_record(&*self.storage, &self.path, ring.valid_len, &record)?;
        ring.insert(record, &key, valid_len);
        Ok(ring.current(entity).expect("inserted above"))
    }
}

/// A sealed payload's parts: `key id u64 | nonce | ciphertext | tag`.
struct Sealed<'s> {
    key_id: u64,
    nonce: &'s [u8; PAYLOAD_NONCE_LEN],
    body: &'s [u8],
    tag: &'s [u8; TAG_LEN],
}
