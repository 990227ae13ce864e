//! eventpak-core: the storage engine of eventpak, an embedded, durable, append-only
//! event log. Pure Rust; the Python binding lives in `eventpak-py`.
//!
//! A data dir holds numbered segment files of self-checking frames, an index checkpoint
//! and a lock file. [`Store`] appends through one writer, indexes every event in memory,
//! and answers reads from memory-mapped segments. See `docs/format.md` for the bytes.

#![warn(missing_docs)]

pub mod config;
pub mod cursor;
pub mod cursor_checkpoint;
pub mod error;
pub mod event;
pub mod index;
pub mod io;
pub mod names;
pub mod projection;
pub mod projection_cache;
pub mod recovery;
pub mod region;
pub mod segment;
pub mod store;
pub mod sync;
pub mod visibility;
pub mod writer;

pub use config::{StoreConfig, SyncMode};
pub use cursor::{Cursor, GapObservation};
pub use cursor_checkpoint::CursorCheckpoint;
pub use error::{Error, Result};
pub use event::{AppendReceipt, AppendRequest, EventRecord};
pub use region::{KindFilter, Region};
pub use segment::StoredEvent;
pub use store::{Stats, Store};
