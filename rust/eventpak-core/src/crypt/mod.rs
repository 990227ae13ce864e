//! Encryption at rest: payloads sealed with AES-256-GCM-SIV under a per-entity data key,
//! data keys wrapped (XChaCha20-Poly1305) by the store key in the key file ([`key_file`]). Names, kinds,
//! sequences and hashes stay in clear; the hash covers the sealed bytes, so `verify()`
//! never needs a key. Forgetting an entity destroys its data keys: its payloads can never
//! be opened again, everything else about its events stays and verifies.

pub mod key_file;
mod mode;
mod ring;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};
use chacha20poly1305::XChaCha20Poly1305;
use parking_lot::RwLock;

use self::key_file::TAG_LEN;
pub use self::key_file::{KEY_FILE, KEY_LEN};
pub use self::mode::open_keys;
use self::ring::Ring;
use crate::coord::SharedMemory;
use crate::error::{Error, Result};
use crate::event::EventId;
use crate::io::Storage;

/// Bytes of a payload nonce (AES-256-GCM-SIV's 96 bits).
pub const PAYLOAD_NONCE_LEN: usize = 12;
/// Bytes a sealed payload adds to the plaintext: key id, nonce and tag.
pub const SEALED_OVERHEAD: usize = 8 + PAYLOAD_NONCE_LEN + TAG_LEN;

/// The AEAD payloads are sealed with. AES-256-GCM-SIV: with the AES and carry-less multiply
/// instructions of current x86-64 and ARM processors it seals a small payload several
/// times faster than XChaCha20-Poly1305 does, and it resists nonce reuse (a repeated
/// nonce reveals only that two sealed payloads are equal, and the associated data names
/// the event, so none are), which a counter restarted by a restored VM snapshot could
/// otherwise cause.
pub(crate) type PayloadCipher = Aes256GcmSiv;

fn payload_cipher(key: &[u8; KEY_LEN]) -> PayloadCipher {
    Aes256GcmSiv::new(key.into())
}
const PAYLOAD_AAD: &[u8] = b"eventpak payload v1";

/// A fresh random store key (32 bytes from the operating system).
pub fn generate_encryption_key() -> Result<[u8; KEY_LEN]> {
    key_file::random()
}

/// What a sealed payload is bound to: its event, so a sealed payload copied onto another
/// event (or another entity) does not open.
#[derive(Clone, Copy, Debug)]
pub struct PayloadBinding<'a> {
    /// The event's entity.
    pub entity: &'a str,
    /// The event's id.
    pub event_id: EventId,
    /// The event's entity clock as its frame stores it.
    pub entity_sequence: u64,
}

fn payload_aad(key_id: u64, at: &PayloadBinding<'_>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(PAYLOAD_AAD.len() + 32 + at.entity.len());
    aad.extend_from_slice(PAYLOAD_AAD);
    aad.extend_from_slice(&key_id.to_le_bytes());
    aad.extend_from_slice(&at.event_id);
    aad.extend_from_slice(&at.entity_sequence.to_le_bytes());
    aad.extend_from_slice(at.entity.as_bytes());
    aad
}

/// The keys of an encrypted store: shared by the store and every event read from it
/// (cloning is cheap). See `docs/lifecycle.md`, "Encryption at rest".
#[derive(Clone)]
pub struct PayloadKeys(Arc<Inner>);

struct Inner {
    path: PathBuf,
    storage: Arc<dyn Storage>,
    store: XChaCha20Poly1305,
    ring: RwLock<Ring>,
    /// Nonces are this random prefix (fixed per open) and a counter: never repeated
    /// within an open; across opens a repeat is harmless under GCM-SIV (see
    /// [`PayloadCipher`]).
    nonce_prefix: [u8; 4],
    nonce_counter: AtomicU64,
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
    fn new(path: PathBuf, storage: Arc<dyn Storage>, store: XChaCha20Poly1305, ring: Ring) -> Result<Self> {
        Ok(PayloadKeys(Arc::new(Inner {
            path,
            storage,
            store,
            ring: RwLock::new(ring),
            nonce_prefix: key_file::random()?,
            nonce_counter: AtomicU64::new(0),
            shared: None,
        })))
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

    /// Seals `plaintext` for the event at `at` with its entity's current data key, creating
    /// (and durably recording) the key first when the entity has none. The caller holds the
    /// writer lock (in shared mode, the cross-process write lock too), so key creation is
    /// never concurrent, and the key record is fsynced before any event sealed with it is
    /// written.
    pub fn seal(&self, at: &PayloadBinding<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.follow()?;
        let (key_id, cipher) = self.0.key_for_append(at.entity)?;
        let counter = self.0.nonce_counter.fetch_add(1, Ordering::Relaxed);
        let mut nonce = [0u8; PAYLOAD_NONCE_LEN];
        nonce[..4].copy_from_slice(&self.0.nonce_prefix);
        nonce[4..].copy_from_slice(&counter.to_le_bytes());
        let mut out = Vec::with_capacity(plaintext.len() + SEALED_OVERHEAD);
        out.extend_from_slice(&key_id.to_le_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = cipher
            .encrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                &payload_aad(key_id, at),
                &mut out[8 + PAYLOAD_NONCE_LEN..],
            )
            .map_err(|_| Error::Internal("sealing a payload failed".into()))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens the sealed payload of the event at `at` (global sequence `global_sequence`).
    /// [`Error::PayloadForgotten`] when its key was destroyed; a payload that does not open
    /// with its key is [`Error::CorruptSegment`].
    pub fn open(&self, at: &PayloadBinding<'_>, global_sequence: u64, sealed: &[u8]) -> Result<Vec<u8>> {
        let damaged = |reason: &str| {
            Error::corrupt(self.0.path.clone(), global_sequence, format!("event {global_sequence}: {reason}"))
        };
        if sealed.len() < SEALED_OVERHEAD {
            return Err(damaged("sealed payload too short"));
        }
        self.follow()?;
        let key_id = u64::from_le_bytes(sealed[..8].try_into().unwrap());
        // Looked up first, so the read lock is released before a reload takes the write lock.
        let found = self.0.ring.read().lookup(key_id, at.entity);
        let cipher = match found {
            ring::Lookup::Found(cipher) => Some(cipher),
            ring::Lookup::Forgotten => None,
            ring::Lookup::Unknown => self.0.reload_for(key_id, at.entity)?,
        };
        let Some(cipher) = cipher else {
            return Err(Error::PayloadForgotten { entity: at.entity.to_owned(), global_sequence });
        };
        let nonce = Nonce::from_slice(&sealed[8..8 + PAYLOAD_NONCE_LEN]);
        let (body, tag) = sealed[8 + PAYLOAD_NONCE_LEN..].split_at(sealed.len() - SEALED_OVERHEAD);
        let mut plain = body.to_vec();
        cipher
            .decrypt_in_place_detached(nonce, &payload_aad(key_id, at), &mut plain, Tag::from_slice(tag))
            .map_err(|_| damaged("sealed payload does not open with its key"))?;
        Ok(plain)
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
        let bytes = key_file::encode_file(&self.0.store, next.header, &next.records)?;
        let dir = self.0.path.parent().expect("the key file lies in the data dir");
        crate::io::write_atomic(&*self.0.storage, dir, KEY_FILE, &bytes)
            .map_err(|e| Error::storage("rewriting the key file", e))?;
        ring.forget(entity, next.header, bytes.len() as u64);
        if let Some(page) = &self.0.shared {
            ring.seen_forgets = page.bump_keys_generation();
        }
        Ok(gone.len())
    }

    /// Data keys held, and entities holding one (for `stats()` and tests).
    pub fn counts(&self) -> (usize, usize) {
        let ring = self.0.ring.read();
        (ring.key_count(), ring.entity_count())
    }
}

impl Inner {
    fn load_ring(&self, seen_forgets: u64) -> Result<Ring> {
        let file = key_file::load(&self.path, &self.store)?.ok_or_else(|| {
            Error::InvalidConfig("the key file no longer opens with this encryption_key".into())
        })?;
        Ring::build(&self.path, &self.store, file, seen_forgets)
    }

    /// Adds the records other processes appended since this one last read the file.
    fn reload_tail(&self) -> Result<()> {
        if self.shared.is_none() {
            return Ok(()); // Nobody else writes the file.
        }
        let bytes = key_file::read_bytes(&self.path)?;
        let header = key_file::decode_header(&bytes, &self.store, &self.path)?.ok_or_else(|| {
            Error::InvalidConfig("the key file no longer opens with this encryption_key".into())
        })?;
        let mut ring = self.ring.write();
        if header.generation != ring.generation() {
            // Rewritten by a forget this process has not been told of (its counter bump
            // never came): the file did not only grow, so it is read whole.
            let seen = ring.seen_forgets;
            let (records, valid_len) = key_file::decode_records(&bytes, key_file::HEADER_LEN, &self.path)?;
            let file = key_file::KeyFile { header, records, valid_len };
            *ring = Ring::build(&self.path, &self.store, file, seen)?;
            return Ok(());
        }
        let from = ring.valid_len as usize;
        let (records, valid_len) = key_file::decode_records(&bytes, from.min(bytes.len()), &self.path)?;
        ring.add(&self.path, &self.store, records, valid_len)
    }

    /// A key id this process has not seen: reloads the file's tail (shared mode) and looks
    /// again. `None`: forgotten.
    fn reload_for(&self, key_id: u64, entity: &str) -> Result<Option<Arc<PayloadCipher>>> {
        self.reload_tail()?;
        match self.ring.read().lookup(key_id, entity) {
            ring::Lookup::Found(cipher) => Ok(Some(cipher)),
            ring::Lookup::Forgotten => Ok(None),
            ring::Lookup::Unknown => Err(Error::corrupt(
                self.path.clone(),
                0,
                format!("a payload names key {key_id}, which the key file never held"),
            )),
        }
    }

    fn key_for_append(&self, entity: &str) -> Result<(u64, Arc<PayloadCipher>)> {
        if let Some(found) = self.ring.read().current(entity) {
            return Ok(found);
        }
        self.reload_tail()?;
        let mut ring = self.ring.write();
        if let Some(found) = ring.current(entity) {
            return Ok(found);
        }
        let key: [u8; KEY_LEN] = key_file::random()?;
        let key_id = ring.next_key_id();
        let record = key_file::KeyRecord::wrap(&self.store, key_id, entity, &key)?;
        let valid_len = key_file::append_record(&*self.storage, &self.path, ring.valid_len, &record)?;
        ring.insert(record, &key, valid_len);
        Ok(ring.current(entity).expect("inserted above"))
    }
}
