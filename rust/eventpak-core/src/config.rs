//! Store options and their validation (`docs/design.md`, "The Store API").

use std::fmt;

use crate::error::{Error, Result};
use crate::receipt::{parse_public_key, ReceiptSigner};
use crate::segment::MAX_BODY_LEN;

/// When appended bytes are made durable with fsync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// fsync before an append returns; concurrent appenders share one fsync.
    Always,
    /// fsync every `sync_every_n_events` events or `sync_interval_ms`, whichever first.
    Batch,
    /// Leave it to the OS (and to explicit `sync()` calls).
    Never,
}

impl SyncMode {
    /// Parses `"always"`, `"batch"` or `"never"`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "always" => Ok(SyncMode::Always),
            "batch" => Ok(SyncMode::Batch),
            "never" => Ok(SyncMode::Never),
            other => Err(Error::InvalidConfig(format!(
                "sync must be \"always\", \"batch\" or \"never\", not {other:?}"
            ))),
        }
    }

    /// The option's name.
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::Always => "always",
            SyncMode::Batch => "batch",
            SyncMode::Never => "never",
        }
    }
}

/// Smallest accepted `segment_max_bytes`.
pub const MIN_SEGMENT_BYTES: u64 = 4096;

/// A receipt signing key as given in a config (an Ed25519 seed, 32 bytes once validated).
/// Its `Debug` never shows the key, so a logged config does not leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeySeed(pub Vec<u8>);

impl fmt::Debug for SigningKeySeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKeySeed(<hidden>)")
    }
}

/// A store encryption key as given in a config (32 bytes once validated). Its `Debug`
/// never shows the key, so a logged config or error does not leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey(pub Vec<u8>);

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey(<hidden>)")
    }
}

/// All options of a store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Durability mode.
    pub sync: SyncMode,
    /// In batch mode, fsync after this many unsynced events.
    pub sync_every_n_events: u64,
    /// In batch mode, fsync unsynced events at least this often.
    pub sync_interval_ms: u64,
    /// Rotate to a new segment once the active one would pass this size.
    pub segment_max_bytes: u64,
    /// Largest encoded event.
    pub max_event_bytes: usize,
    /// Most events in one `append_batch`.
    pub max_batch_events: usize,
    /// Most encoded bytes in one `append_batch`.
    pub max_batch_bytes: usize,
    /// Write the index checkpoint at close and use it at open.
    pub enable_index_checkpoint: bool,
    /// Create the data dir when missing.
    pub create: bool,
    /// Open for reading only: no appends, nothing on disk is changed.
    pub read_only: bool,
    /// Share the data dir with other processes that also open it with `shared`.
    pub shared: bool,
    /// How long a plain append (or a fence) waits for another thread's open fence before
    /// failing with `FenceActive`.
    pub fence_wait_ms: u64,
    /// Signs every receipt with this Ed25519 key; `None`: receipts are unsigned.
    pub signing_key: Option<SigningKeySeed>,
    /// Public keys (32 bytes each) whose receipt signatures the store accepts besides its
    /// signing key's: the keys it signed with before a key rotation.
    pub verify_keys: Vec<Vec<u8>>,
    /// Seals every payload at rest under per-entity data keys wrapped by this 32-byte key;
    /// `None`: the store is clear (see `docs/lifecycle.md`).
    pub encryption_key: Option<EncryptionKey>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            sync: SyncMode::Batch,
            sync_every_n_events: 1000,
            sync_interval_ms: 50,
            segment_max_bytes: 256 << 20,
            max_event_bytes: 16 << 20,
            max_batch_events: 4096,
            max_batch_bytes: 64 << 20,
            enable_index_checkpoint: true,
            create: true,
            read_only: false,
            shared: false,
            fence_wait_ms: 30_000,
            signing_key: None,
            verify_keys: Vec::new(),
            encryption_key: None,
        }
    }
}

impl StoreConfig {
    /// Refuses out-of-range options with [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::InvalidConfig(msg));
        if self.segment_max_bytes < MIN_SEGMENT_BYTES {
            return bad(format!("segment_max_bytes must be at least {MIN_SEGMENT_BYTES}"));
        }
        if self.max_event_bytes == 0 || self.max_event_bytes > MAX_BODY_LEN / 2 {
            return bad(format!("max_event_bytes must be between 1 and {}", MAX_BODY_LEN / 2));
        }
        for (name, value) in [
            ("sync_every_n_events", self.sync_every_n_events as usize),
            ("sync_interval_ms", self.sync_interval_ms as usize),
            ("max_batch_events", self.max_batch_events),
            ("max_batch_bytes", self.max_batch_bytes),
        ] {
            if value == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        if let Some(seed) = &self.signing_key {
            ReceiptSigner::from_seed(&seed.0)
                .map_err(|e| Error::InvalidConfig(format!("signing_key: {e}")))?;
        }
        if let Some(key) = &self.encryption_key {
            if key.0.len() != crate::crypt::KEY_LEN {
                return bad(format!(
                    "encryption_key must be {} bytes, not {}",
                    crate::crypt::KEY_LEN,
                    key.0.len()
                ));
            }
        }
        for (i, key) in self.verify_keys.iter().enumerate() {
            parse_public_key(key).map_err(|e| Error::InvalidConfig(format!("verify_keys[{i}]: {e}")))?;
        }
        Ok(())
    }
}
