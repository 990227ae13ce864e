//! The engine's error type. Every variant maps to one typed Python error
//! (`docs/design.md`, "Errors"); variants carry fields, not pre-formatted prose, so the
//! binding can expose them as attributes.

use std::path::PathBuf;
use std::sync::Arc;

/// Result alias used across the engine.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in the engine, one variant per public error.
///
/// `Clone` because a poisoned writer reports its first failure to every later caller.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// A coordinate part breaks the naming rules.
    #[error("invalid coordinate: {0}")]
    InvalidCoordinate(String),
    /// An event kind breaks the naming rules or uses the reserved `eventpak.` prefix.
    #[error("invalid kind: {0}")]
    InvalidKind(String),
    /// A region filter is malformed (bad prefix, empty kind set, inverted clock range).
    #[error("invalid region: {0}")]
    InvalidRegion(String),
    /// A store option is out of range, or the store cannot serve the call as configured.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// An idempotency key is empty or longer than 64 bytes.
    #[error("invalid idempotency key: {0}")]
    InvalidIdempotencyKey(String),
    /// A causal link cannot be made: a batch item names itself or a later item as its cause.
    #[error("invalid causation: {0}")]
    InvalidCausation(String),
    /// A cursor checkpoint id breaks the naming rules (it names a file).
    #[error("invalid checkpoint id: {0}")]
    InvalidCheckpointId(String),
    /// A tag breaks the tag rules (1-255 bytes of UTF-8 without control bytes, at most 64
    /// per event, none twice on one event).
    #[error("invalid tag: {0}")]
    InvalidTag(String),
    /// A tracking record names no valid tracking name (same rules as a tag).
    #[error("invalid tracking name: {0}")]
    InvalidTrackingName(String),
    /// One event is larger than `max_event_bytes`.
    #[error("event of {size} bytes exceeds max_event_bytes={max}")]
    EventTooLarge {
        /// Encoded size of the event.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// A batch has more events or bytes than the configured limits.
    #[error("batch too large: {0}")]
    BatchTooLarge(String),
    /// Another store (in this or another process) owns the data dir, or the backup
    /// destination `backup_dest` (a store open on it, or another backup writing into it).
    #[error("{}", locked(backup_dest.as_deref(), *holder_pid, holder_mode))]
    StoreLocked {
        /// The backup destination that is locked; `None`: the store's own data dir.
        backup_dest: Option<PathBuf>,
        /// The process id the holder wrote into `LOCK`, when it wrote one.
        holder_pid: Option<u32>,
        /// How the holder opened it: `"exclusive"` or `"shared"`.
        holder_mode: &'static str,
    },
    /// The store was opened before `fork()` and this is the child.
    #[error("the store was opened in process {pid} before a fork; open it again in this process")]
    OpenedBeforeFork {
        /// The process that opened the store.
        pid: u32,
    },
    /// A write was attempted through a store opened with `read_only`.
    #[error("the store was opened read_only; {0} is refused")]
    ReadOnlyStore(&'static str),
    /// A write was attempted on a replica, which only its replication applies to.
    #[error("the store is a replica of stream {stream:?}; {operation} is refused")]
    ReplicaStore {
        /// What was refused.
        operation: &'static str,
        /// The stream the replica applies.
        stream: String,
    },
    /// A replicated event was refused: it does not continue the replica's log (out of
    /// order, lost predecessor, forged or from another origin). Nothing from it on was applied.
    #[error("replication refused{}: {reason}", global_sequence.map(|s| format!(" event {s}")).unwrap_or_default())]
    ReplicationRefused {
        /// The global sequence the refused event claims (`None`: refused before any event).
        global_sequence: Option<u64>,
        /// Why it was refused.
        reason: String,
    },
    /// The store was closed.
    #[error("the store is closed; open it again to use it")]
    StoreClosed,
    /// No event has this id.
    #[error("no event with id {0}")]
    EventNotFound(String),
    /// `expected_sequence` did not match the entity's next clock value.
    #[error("entity {entity:?}: expected next entity_sequence {expected}, actual {actual}")]
    ConcurrencyConflict {
        /// The entity whose clock was compared.
        entity: String,
        /// What the caller expected.
        expected: u64,
        /// What the entity's next sequence actually is.
        actual: u64,
    },
    /// An idempotency key was reused for different content, or a batch is partly committed.
    #[error("idempotency conflict: {0}")]
    IdempotencyConflict(String),
    /// An append condition failed: a visible event matching its region was committed after
    /// its position. Nothing was written.
    #[error("append condition failed: event {global_sequence} matches the condition's region")]
    AppendConditionFailed {
        /// The first matching event.
        global_sequence: u64,
    },
    /// A tracking record's position is not past the one already recorded for its name.
    /// Nothing was written.
    #[error("tracking {name:?}: position {position} is not after the recorded {recorded}")]
    TrackingConflict {
        /// The tracking name.
        name: String,
        /// The position the append asked to record.
        position: u64,
        /// The position already recorded.
        recorded: u64,
    },
    /// A plain append was attempted while a visibility fence is open.
    #[error(
        "a visibility fence is open: the thread that opened it appends through it, or commits or \
         cancels it first; another thread waits up to fence_wait_ms for it to close, then gets this"
    )]
    FenceActive,
    /// A long wait (for another thread's or process's fence) was given up because the
    /// check its caller installed asked it to ([`crate::interruptible`]); nothing was written.
    #[error("interrupted while waiting")]
    Interrupted,
    /// An append went through a fence that was already committed or cancelled.
    #[error("this fence was already committed or cancelled; open a new fence")]
    FenceClosed,
    /// A cursor checkpoint file cannot be decoded or fails its CRC.
    #[error("cursor checkpoint {path} is corrupt: {reason}")]
    CursorCheckpointCorrupt {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A cursor checkpoint was saved for another region than the cursor resuming from it.
    #[error("cursor checkpoint {path} belongs to region {stored:?}, not {expected:?}")]
    CursorCheckpointRegionMismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// The region identity stored in the checkpoint (`None`: saved without one).
        stored: Option<String>,
        /// The identity of the resuming cursor's region.
        expected: String,
    },
    /// A cursor checkpoint could not be written.
    #[error("writing cursor checkpoint {id:?} failed: {cause}")]
    CheckpointWriteFailed {
        /// The checkpoint id.
        id: String,
        /// The underlying failure.
        cause: String,
    },
    /// A projection cache refused an operation.
    #[error("projection cache failed: {0}")]
    CacheFailed(String),
    /// A segment (or another engine file) holds bytes that cannot be a valid prefix.
    #[error("corrupt segment {path}: {reason} at offset {offset}")]
    CorruptSegment {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the first bad byte or frame.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The writer hit an I/O error and is poisoned; or, with a context starting with
    /// [`BACKUP_CONTEXT`], [`COMPACTION_CONTEXT`], [`READ_CONTEXT`] or [`KEY_FILE_CONTEXT`],
    /// an operation beside the writer did, and the store is unaffected.
    #[error("storage failed ({context}): {source}; {}", storage_advice(context))]
    StorageFailed {
        /// What the engine was doing.
        context: String,
        /// The operating system's error, kept whole so callers can read its errno.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The payload of an event of a forgotten entity: its data key was destroyed.
    #[error(
        "the payload of event {global_sequence} (entity {entity:?}) was forgotten: its key was destroyed"
    )]
    PayloadForgotten {
        /// The event's entity.
        entity: String,
        /// The event's global sequence.
        global_sequence: u64,
    },
    /// An engine invariant did not hold: a bug, never a user error.
    #[error("internal error: {0}; please report it")]
    Internal(String),
}

/// The message of [`Error::StoreLocked`].
fn locked(backup_dest: Option<&std::path::Path>, holder_pid: Option<u32>, holder_mode: &str) -> String {
    let holder = format!("another open store (process {holder_pid:?}, {holder_mode} mode)");
    match backup_dest {
        None => format!(
            "data dir is locked by {holder}; to share a data dir between processes, open it with \
             shared=True in every process"
        ),
        Some(dest) => format!(
            "backup destination {} is locked by {holder}, or by another backup writing into it",
            dest.display()
        ),
    }
}

/// How the context of a [`Error::StorageFailed`] raised by a backup starts: the backup
/// failed, the store it copies (and its writer) did not.
pub const BACKUP_CONTEXT: &str = "backup: ";
/// How the context of a compaction's [`Error::StorageFailed`] before its commit starts:
/// nothing changed, and the writer goes on.
pub const COMPACTION_CONTEXT: &str = "compaction: ";
/// How the context of a failed read (a cursor checkpoint, the checkpoint listing) starts:
/// the writer goes on.
pub const READ_CONTEXT: &str = "read: ";
/// How the context of a key file rewrite (a forget, a key rotation) that failed before
/// the new file replaced the old one starts: nothing changed, and the writer goes on.
pub const KEY_FILE_CONTEXT: &str = "key file: ";

/// Every context prefix of a failure beside the writer.
pub const BESIDE_WRITER: [&str; 4] = [BACKUP_CONTEXT, COMPACTION_CONTEXT, READ_CONTEXT, KEY_FILE_CONTEXT];

/// True when `err` is a failure beside the writer (its context says so): the store is
/// unaffected, and the writer must not be stopped for it.
pub fn is_beside_writer(err: &Error) -> bool {
    matches!(err, Error::StorageFailed { context, .. } if BESIDE_WRITER.iter().any(|p| context.starts_with(p)))
}

/// What a [`Error::StorageFailed`] means for the store, by its context.
fn storage_advice(context: &str) -> &'static str {
    if BESIDE_WRITER.iter().any(|p| context.starts_with(p)) {
        "the store itself is unaffected"
    } else {
        "nothing after this failure was acknowledged, reopen the store to recover"
    }
}

impl Error {
    /// Wraps an I/O error raised while writing or syncing into [`Error::StorageFailed`].
    pub fn storage(context: &str, err: std::io::Error) -> Self {
        Error::StorageFailed { context: context.to_owned(), source: Arc::new(err) }
    }

    /// This error with the context of its storage failure (if it is one) marked by
    /// `prefix` ([`BACKUP_CONTEXT`], [`COMPACTION_CONTEXT`], [`READ_CONTEXT`]): an
    /// operation beside the writer failed, and its message must not send the user to
    /// reopen the store.
    pub fn beside_writer(self, prefix: &str) -> Self {
        match self {
            Error::StorageFailed { context, source } => {
                Error::StorageFailed { context: format!("{prefix}{context}"), source }
            }
            other => other,
        }
    }

    /// This error as the reason a writer stops: a [`Error::StorageFailed`] stays as it is
    /// (so its OS error survives), anything else is wrapped as one.
    pub fn into_storage_failure(self) -> Self {
        match self {
            failed @ Error::StorageFailed { .. } => failed,
            other => Error::storage("writing", std::io::Error::other(other.to_string())),
        }
    }

    /// Shorthand for a [`Error::CorruptSegment`].
    pub fn corrupt(path: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Error::CorruptSegment { path: path.into(), offset, reason: reason.into() }
    }
}
