//! Maps engine errors to the typed exceptions of `eventpak.errors`.
//!
//! Each class is bound once by `import_exception!`, so every use is a Rust identifier the
//! compiler checks. Errors pass their fields, never a finished message: the Python classes
//! build every message the same way and expose the fields as attributes.

use eventpak_core::Error;
use pyo3::prelude::*;

macro_rules! bind_errors {
    ($($name:ident),* $(,)?) => {
        $(pyo3::import_exception!(eventpak.errors, $name);)*
    };
}

bind_errors!(
    AppendConditionFailed,
    BatchTooLarge,
    CacheFailed,
    CheckpointWriteFailed,
    ConcurrencyConflict,
    CorruptSegment,
    CursorCheckpointCorrupt,
    CursorCheckpointRegionMismatch,
    EventNotFound,
    EventpakError,
    EventTooLarge,
    FenceActive,
    FenceClosed,
    IdempotencyConflict,
    InvalidArgument,
    InvalidCheckpointId,
    InvalidConfig,
    InvalidCoordinate,
    InvalidCausation,
    InvalidIdempotencyKey,
    InvalidKind,
    InvalidRegion,
    InvalidTag,
    PayloadForgotten,
    PayloadNotDecodable,
    PayloadNotSerializable,
    ReadOnlyStore,
    ReplicationRefused,
    StorageFailed,
    StoreClosed,
    StoreLocked,
    TrackingConflict,
    UpcastFailed,
);

// A name argument that is not a `str`: its name's error, and a `TypeError` as well.
pyo3::import_exception!(eventpak._name_type_errors, InvalidCheckpointIdType);
pyo3::import_exception!(eventpak._name_type_errors, InvalidCoordinateType);
pyo3::import_exception!(eventpak._name_type_errors, InvalidKindType);
pyo3::import_exception!(eventpak._name_type_errors, InvalidRegionType);
pyo3::import_exception!(eventpak._name_type_errors, InvalidTagType);

/// Converts an engine error; `data_dir` is the path as the caller gave it.
pub fn to_py(err: Error, data_dir: &str) -> PyErr {
    let message = err.to_string();
    let shown = |p: &std::path::Path| p.display().to_string();
    match err {
        Error::InvalidCoordinate(reason) => InvalidCoordinate::new_err((reason,)),
        Error::InvalidKind(reason) => InvalidKind::new_err((reason,)),
        Error::InvalidRegion(reason) => InvalidRegion::new_err((reason,)),
        Error::InvalidConfig(reason) => InvalidConfig::new_err((reason,)),
        Error::InvalidIdempotencyKey(reason) => InvalidIdempotencyKey::new_err((reason,)),
        Error::InvalidCausation(reason) => InvalidCausation::new_err((reason,)),
        Error::InvalidCheckpointId(reason) => InvalidCheckpointId::new_err((reason,)),
        Error::InvalidTag(reason) => InvalidTag::new_err((reason,)),
        Error::InvalidTrackingName(reason) => InvalidArgument::new_err(("tracking name".to_owned(), reason)),
        Error::AppendConditionFailed { global_sequence } => {
            AppendConditionFailed::new_err((global_sequence,))
        }
        Error::TrackingConflict { name, position, recorded } => {
            TrackingConflict::new_err((name, position, recorded))
        }
        Error::EventTooLarge { size, max } => EventTooLarge::new_err((size, max)),
        Error::BatchTooLarge(reason) => BatchTooLarge::new_err((reason,)),
        Error::StoreLocked { holder_pid, holder_mode, backup_dest: None } => {
            StoreLocked::new_err((data_dir.to_owned(), holder_pid, holder_mode))
        }
        Error::StoreLocked { holder_pid, holder_mode, backup_dest: Some(dest) } => {
            StoreLocked::new_err((shown(&dest), holder_pid, holder_mode, "backup destination"))
        }
        Error::ReadOnlyStore(operation) => ReadOnlyStore::new_err((data_dir.to_owned(), operation)),
        Error::ReplicaStore { operation, stream } => ReadOnlyStore::new_err((
            data_dir.to_owned(),
            operation,
            format!("it is a replica of stream {stream:?}, written only by its eventpak.nats.Replica"),
        )),
        Error::ReplicationRefused { global_sequence, reason } => {
            ReplicationRefused::new_err((global_sequence, reason))
        }
        Error::StoreClosed => StoreClosed::new_err((data_dir.to_owned(),)),
        Error::OpenedBeforeFork { pid } => StoreClosed::new_err((
            data_dir.to_owned(),
            format!(
                "it was opened in process {pid} before os.fork(); open the store in this process \
                 (after the fork) instead"
            ),
        )),
        Error::EventNotFound(id) => EventNotFound::new_err((id,)),
        Error::ConcurrencyConflict { entity, expected, actual } => {
            ConcurrencyConflict::new_err((entity, expected, actual))
        }
        Error::IdempotencyConflict(reason) => IdempotencyConflict::new_err((reason,)),
        Error::FenceActive => FenceActive::new_err((message,)),
        Error::FenceClosed => FenceClosed::new_err((message,)),
        Error::CorruptSegment { path, offset, reason } => {
            CorruptSegment::new_err((shown(&path), offset, reason))
        }
        Error::StorageFailed { context, source } => {
            StorageFailed::new_err((context, source.raw_os_error(), source.to_string(), data_dir.to_owned()))
        }
        Error::CursorCheckpointCorrupt { path, reason } => {
            CursorCheckpointCorrupt::new_err((shown(&path), reason))
        }
        Error::CursorCheckpointRegionMismatch { path, stored, expected } => {
            CursorCheckpointRegionMismatch::new_err((shown(&path), stored, expected))
        }
        Error::CheckpointWriteFailed { id, cause } => CheckpointWriteFailed::new_err((id, cause)),
        Error::CacheFailed(reason) => CacheFailed::new_err((reason,)),
        Error::PayloadForgotten { entity, global_sequence } => {
            PayloadForgotten::new_err((entity, global_sequence))
        }
        Error::Internal(_) => EventpakError::new_err((message,)),
        // Raised by a signal handler in the wait: `gil::detached` raises that exception.
        Error::Interrupted => pyo3::exceptions::PyKeyboardInterrupt::new_err((message,)),
    }
}
