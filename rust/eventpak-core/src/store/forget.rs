//! Encrypted stores: opening sealed payloads, forgetting an entity (crypto-shredding), and
//! rotating the store key.

use super::Store;
use crate::crypt::{PayloadBinding, PayloadKeys, KEY_LEN};
use crate::error::{Error, Result};
use crate::names::validate_coordinate_part;
use crate::segment::{FrameView, StoredEvent};

impl Store {
    /// The store's data keys; `None` for a clear store. Events read from an encrypted
    /// store open their payloads with these ([`Store::payload_of`]).
    pub fn payload_keys(&self) -> Option<&PayloadKeys> {
        self.shared.keys.as_ref()
    }

    /// True when the store seals its payloads (opened with an encryption key).
    pub fn is_encrypted(&self) -> bool {
        self.shared.keys.is_some()
    }

    /// The payload (msgpack bytes) of `event`, opened when the store is encrypted:
    /// [`Error::PayloadForgotten`] for an event of a forgotten entity.
    pub fn payload_of(&self, event: &StoredEvent) -> Result<Vec<u8>> {
        let view = event.view();
        match &self.shared.keys {
            None => Ok(view.payload().to_vec()),
            Some(keys) => open_view(keys, &view),
        }
    }

    /// Destroys the data keys of exactly `entity` (crypto-shredding): the key file is
    /// rewritten without them before this returns, so its payloads can never be opened
    /// again, by this process or any other; its events keep everything else and still
    /// verify. A later append to the entity gets a new key. Returns how many keys were
    /// destroyed (0 for an entity that has none: nothing is written).
    ///
    /// [`Error::InvalidConfig`] on a clear store, [`Error::ReadOnlyStore`] on a read-only one.
    pub fn forget_entity(&self, entity: &str) -> Result<usize> {
        self.check_open()?;
        validate_coordinate_part("entity", entity)?;
        let Some(keys) = &self.shared.keys else {
            return Err(Error::InvalidConfig(
                "forget_entity needs an encrypted store (opened with encryption_key)".into(),
            ));
        };
        let writer = self.writer("forgetting an entity")?;
        // The writer lock keeps appends (and their key creation) out while the file is
        // rewritten; in shared mode, the write lock keeps other processes' out too.
        let mut w = writer.lock();
        w.check_healthy()?;
        let _writes = match &self.shared.sharing {
            Some(mode) => Some(self.lock_shared_writes(mode, &mut w)?),
            None => None,
        };
        keys.forget(entity).inspect_err(|e| {
            // Once the rename was tried, the key file may be the old one or the new one,
            // and this process's keys no longer say which: like a failed frame write, it
            // stops the writer, and a reopen reads the file as it is. A failure before it
            // (a full disk) left the old file: nothing was forgotten, the writer goes on.
            if matches!(e, Error::StorageFailed { .. }) && !crate::error::is_beside_writer(e) {
                w.poison(e.clone());
            }
        })
    }

    /// Wraps every data key again by `new_key` (32 bytes) in place of the store key it was
    /// opened with: the key file is replaced atomically, so a crash leaves it opening with
    /// exactly one of the two keys; no payload is rewritten. From then on only `new_key`
    /// opens the store (this handle goes on with it). Returns how many data keys it wrapped.
    ///
    /// Needs the data dir to itself: [`Error::InvalidConfig`] on a clear store, in shared
    /// mode (the other processes hold the old key) and for a key that is not 32 bytes;
    /// [`Error::ReadOnlyStore`] on a read-only store or a replica.
    pub fn rotate_encryption_key(&self, new_key: &[u8]) -> Result<usize> {
        self.check_open()?;
        let Some(keys) = &self.shared.keys else {
            return Err(Error::InvalidConfig(
                "rotate_encryption_key needs an encrypted store (opened with encryption_key)".into(),
            ));
        };
        let new_key: &[u8; KEY_LEN] = new_key.try_into().map_err(|_| {
            Error::InvalidConfig(format!(
                "the new encryption_key must be {KEY_LEN} bytes, not {}",
                new_key.len()
            ))
        })?;
        if self.shared.sharing.is_some() {
            return Err(Error::InvalidConfig(
                "rotate_encryption_key needs the data dir to itself: every process of a shared store \
                 holds the old key (close them, open it without shared=True, rotate)"
                    .into(),
            ));
        }
        let writer = self.writer("rotating the encryption key")?;
        let mut w = writer.lock();
        w.check_healthy()?;
        keys.rotate(new_key).inspect_err(|e| {
            // As for a forget: once the rename was tried, which key file is on disk is no
            // longer known here.
            if matches!(e, Error::StorageFailed { .. }) && !crate::error::is_beside_writer(e) {
                w.poison(e.clone());
            }
        })
    }
}

/// The opened payload of `view` with `keys`.
pub(crate) fn open_view(keys: &PayloadKeys, view: &FrameView<'_>) -> Result<Vec<u8>> {
    let at = PayloadBinding {
        entity: view.names().0,
        event_id: view.event_id(),
        entity_sequence: view.entity_sequence(),
    };
    keys.open(&at, view.global_sequence, view.payload())
}
