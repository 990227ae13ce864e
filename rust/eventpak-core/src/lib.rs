//! eventpak-core: the storage engine of eventpak, an embedded, durable, append-only
//! event log. Pure Rust; the Python binding lives in `eventpak-py`.
//!
//! A data dir holds numbered segment files of self-checking frames, an index checkpoint
//! and a lock file. [`Store`] appends through one writer, indexes every event in memory,
//! and answers reads from memory-mapped segments. See `docs/format.md` for the bytes and
//! `docs/design.md` for the contract.
//!
//! The public surface is what this file re-exports. The `#[doc(hidden)]` modules are
//! seams for the engine's own tests, fuzz targets and crash simulation (decoders, the
//! recovery scan, the file-operation trait); they are not a stable API.

#![warn(missing_docs)]

mod conditions;
mod config;
mod coord;
mod crypt;
mod cursor;
mod error;
mod interrupt;
mod mapped_alloc;
mod names;
mod projection;
mod projection_cache;
mod receipt;
mod region;
mod region_identity;
mod store;
mod sync;
mod tags;
mod writer;

#[doc(hidden)]
pub mod compaction;
#[doc(hidden)]
pub mod cursor_checkpoint;
#[doc(hidden)]
pub mod event;
#[doc(hidden)]
pub mod index;
#[doc(hidden)]
pub mod io;
#[doc(hidden)]
pub mod recovery;
#[doc(hidden)]
pub mod rng;
#[doc(hidden)]
pub mod segment;
#[doc(hidden)]
pub mod visibility;

pub use conditions::{validate_tracking_name, AppendCondition, CommitGuards, Tracking};
pub use config::{EncryptionKey, SigningKeySeed, StoreConfig, SyncMode, MIN_SEGMENT_BYTES};
pub use crypt::{
    generate_encryption_key, PayloadBinding, PayloadKeys, KEY_FILE as ENCRYPTION_KEY_FILE,
    KEY_LEN as ENCRYPTION_KEY_LEN,
};
pub use cursor::{wait_for_events, Cursor, GapObservation};
pub use cursor_checkpoint::{validate_checkpoint_id, CursorCheckpoint, MAX_CHECKPOINT_ID_BYTES};
pub use error::{Error, Result, BACKUP_CONTEXT, COMPACTION_CONTEXT, KEY_FILE_CONTEXT, READ_CONTEXT};
pub use event::{AppendRequest, EventId, EventRecord, Hash};
pub use interrupt::interruptible;
pub use io::{OsStorage, Storage};
pub use mapped_alloc::{MappedLarge, MAPPED_FROM};
pub use names::{
    validate_coordinate_part, validate_kind, validate_kind_as, MAX_COORDINATE_PART_BYTES, MAX_KIND_BYTES,
    RESERVED_KINDS, RESERVED_KIND_PREFIX,
};
pub use projection::ReplayTarget;
pub use projection_cache::{CacheMeta, NativeCache};
pub use receipt::{
    generate_signing_key, key_id, parse_public_key, public_key, AppendReceipt, KeyId, ReceiptError,
    ReceiptProblem, ReceiptSigner, KEY_ID_LEN, PUBLIC_KEY_LEN, RECEIPT_BYTES_LEN, RECEIPT_VERSION,
    SIGNATURE_LEN, SIGNING_KEY_LEN,
};
pub use region::{KindFilter, Region};
pub use segment::StoredEvent;
pub use store::{
    note_fork_in_child, ApplyOutcome, BackupReport, CheckpointStatus, CommitNotifier, CompactionReport, Lag,
    ReplicaOrigin, Retention, Selection, Stats, Store, VerifyProblem, VerifyReport, WorkerLease,
    BACKUP_PENDING_FILE, LEASES_DIR, LOCK_FILE, REPLICA_ORIGIN_FILE, STORE_ID_FILE,
};
pub use tags::{validate_tag, validate_tags, MAX_TAGS, MAX_TAG_BYTES};
