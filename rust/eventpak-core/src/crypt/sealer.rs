//! Sealing the payloads of one commit: their nonces drawn from the operating system in one
//! call, their sealed bytes written one after another into one buffer, the key ring read
//! under one lock, and each entity's key looked up once per run of its events.
//!
//! Nonces are random, 96 bits each, never counters: two AES-256-GCM messages sealed under one
//! key with one nonce give away the XOR of their plaintexts and let the authentication key
//! be worked out, and a counter (or a user-space generator) restarted by a restored VM
//! snapshot or copied by `fork()` would hand out the same nonces again. `getrandom` asks the
//! kernel each time, whose state moves on across both. The bound this leaves (2^32 payloads
//! per data key) is in `docs/decisions.md`.

use std::ops::Range;
use std::sync::Arc;

use parking_lot::RwLockReadGuard;

use super::payload::{Aad, PayloadBinding, PayloadCipher, PAYLOAD_NONCE_LEN, SEALED_OVERHEAD};
use super::ring::Ring;
use super::{Inner, PayloadKeys};
use crate::error::{Error, Result};

/// Seals the payloads of one commit, in order (see the module docs). Made by
/// [`PayloadKeys::sealer`]; the caller holds the writer lock (in shared mode, the
/// cross-process write lock too), so no key is made or forgotten elsewhere meanwhile.
pub(crate) struct Sealer<'k, 'r> {
    keys: &'k Inner,
    /// Held from the first payload to the last, but for the making of a key.
    ring: Option<RwLockReadGuard<'k, Ring>>,
    /// The entity of the last payload sealed, its key id and its key.
    last: Option<(&'r str, u64, Arc<PayloadCipher>)>,
    /// Unused nonces, [`PAYLOAD_NONCE_LEN`] bytes each, from `next` on.
    nonces: Vec<u8>,
    next: usize,
    sealed: Vec<u8>,
}

#[cfg(test)]
thread_local! {
    /// Calls to the operating system for nonces on this thread (tests count them).
    pub(super) static NONCE_FILLS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// `count` random nonces, in one call to the operating system.
fn random_nonces(count: usize) -> Result<Vec<u8>> {
    let mut nonces = vec![0u8; count * PAYLOAD_NONCE_LEN];
    if count > 0 {
        getrandom::fill(&mut nonces)
            .map_err(|e| Error::Internal(format!("no randomness from the OS: {e}")))?;
        #[cfg(test)]
        NONCE_FILLS.with(|n| n.set(n.get() + 1));
    }
    Ok(nonces)
}

impl PayloadKeys {
    /// A sealer for `count` payloads of `plain_bytes` bytes in all. Picks up other
    /// processes' forgets first (shared mode), and draws the nonces of all `count` payloads
    /// from the operating system in one call.
    pub(crate) fn sealer<'r>(&self, count: usize, plain_bytes: usize) -> Result<Sealer<'_, 'r>> {
        self.follow()?;
        Ok(Sealer {
            keys: &self.0,
            ring: None,
            last: None,
            nonces: random_nonces(count)?,
            next: 0,
            sealed: Vec::with_capacity(plain_bytes + count * SEALED_OVERHEAD),
        })
    }
}

impl<'r> Sealer<'_, 'r> {
    /// Seals `plaintext` for the event at `at` with its entity's current data key, making
    /// (and durably recording) the key first when the entity has none: the key record is
    /// fsynced before any frame sealed with it is written. Returns where the sealed payload
    /// lies in [`Sealer::sealed`].
    pub(crate) fn seal(&mut self, at: &PayloadBinding<'r>, plaintext: &[u8]) -> Result<Range<usize>> {
        if !matches!(&self.last, Some((entity, ..)) if *entity == at.entity) {
            let (key_id, cipher) = self.current_key(at.entity)?;
            self.last = Some((at.entity, key_id, cipher));
        }
        let Some((_, key_id, cipher)) = &self.last else { unreachable!("set above") };
        if self.next == self.nonces.len() {
            // More payloads than the sealer was made for: one more call.
            self.nonces = random_nonces(1)?;
            self.next = 0;
        }
        let nonce: &[u8; PAYLOAD_NONCE_LEN] =
            self.nonces[self.next..self.next + PAYLOAD_NONCE_LEN].try_into().expect("a nonce's length");
        self.next += PAYLOAD_NONCE_LEN;
        let start = self.sealed.len();
        self.sealed.extend_from_slice(&key_id.to_le_bytes());
        self.sealed.extend_from_slice(nonce);
        self.sealed.extend_from_slice(plaintext);
        let tag = cipher
            .seal(nonce, Aad::new(*key_id, at).bytes(), &mut self.sealed[start + 8 + PAYLOAD_NONCE_LEN..])
            .map_err(|_| Error::Internal("sealing a payload failed".into()))?;
        self.sealed.extend_from_slice(&tag);
        Ok(start..self.sealed.len())
    }

    /// The sealed payloads so far, one after another.
    pub(crate) fn sealed(&self) -> &[u8] {
        &self.sealed
    }

    /// The sealed payloads, for the frames to take them from.
    pub(crate) fn into_sealed(self) -> Vec<u8> {
        self.sealed
    }

    fn current_key(&mut self, entity: &str) -> Result<(u64, Arc<PayloadCipher>)> {
        let ring = self.ring.get_or_insert_with(|| self.keys.ring.read());
        if let Some(found) = ring.current(entity) {
            return Ok(found);
        }
        // Making a key takes the ring's write lock.
        self.ring = None;
        self.keys.key_for_append(entity)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::config::{EncryptionKey, StoreConfig, SyncMode};
    use crate::event::AppendRequest;
    use crate::region::Region;
    use crate::store::Store;

    fn request(entity: &str, payload: &[u8]) -> AppendRequest {
        AppendRequest {
            entity: entity.into(),
            scope: "s".into(),
            kind: "k".into(),
            payload: payload.to_vec(),
            ..AppendRequest::default()
        }
    }

    fn fills() -> usize {
        NONCE_FILLS.with(|n| n.get())
    }

    #[test]
    fn a_commit_draws_all_its_nonces_in_one_call() {
        let dir = tempfile::tempdir().unwrap();
        let key = super::super::generate_encryption_key().unwrap();
        let config = StoreConfig {
            sync: SyncMode::Never,
            encryption_key: Some(EncryptionKey(key.to_vec())),
            ..StoreConfig::default()
        };
        let store = Store::open(dir.path(), config).unwrap();
        let before = fills();
        store.append(request("solo", b"one")).unwrap();
        assert_eq!(fills(), before + 1, "a single append");
        // New entities (their keys made mid-commit), runs of one entity, and others.
        let batch: Vec<_> =
            (0..500).map(|i| request(&format!("e{}", i / 3), format!("p{i}").as_bytes())).collect();
        store.append_batch(batch).unwrap();
        assert_eq!(fills(), before + 2, "a batch of 500");
        let events = store.query(&Region::all(), None, None).unwrap();
        assert_eq!(events.len(), 501);
        for (i, event) in events[1..].iter().enumerate() {
            assert_eq!(store.payload_of(event).unwrap(), format!("p{i}").as_bytes());
        }
    }

    #[test]
    fn sealers_never_repeat_a_nonce() {
        let dir = tempfile::tempdir().unwrap();
        let key = super::super::generate_encryption_key().unwrap();
        let storage: Arc<dyn crate::io::Storage> = Arc::new(crate::io::OsStorage);
        let open = || {
            let segments = dir.path().join("segments");
            super::super::open_keys(dir.path(), &segments, &storage, Some(&key), (false, false))
                .unwrap()
                .keys
                .unwrap()
        };
        let mut seen = HashSet::new();
        for round in 0..4 {
            // Every round a new open, as after a restart.
            let keys = open();
            for count in [1, 1000, 7] {
                let mut sealer = keys.sealer(count, 0).unwrap();
                for i in 0..count + 2 {
                    let entity = if i % 2 == 0 { "even" } else { "odd" };
                    let at = PayloadBinding { entity, event_id: [round; 16], entity_sequence: i as u64 };
                    let range = sealer.seal(&at, b"payload").unwrap();
                    let nonce = &sealer.sealed()[range.start + 8..range.start + 8 + PAYLOAD_NONCE_LEN];
                    assert!(seen.insert(nonce.to_vec()), "nonce repeated in round {round}");
                }
            }
        }
        assert_eq!(seen.len(), 4 * (3 + 1002 + 9));
    }
}
