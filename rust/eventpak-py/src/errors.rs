//! Maps engine errors to the typed exceptions of `eventpak.errors` (DESIGN.md §6).

use eventpak_core::Error;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// Builds the `eventpak.errors.<name>` exception with `args`.
pub fn raise<A>(py: Python<'_>, name: &str, args: A) -> PyErr
where
    A: for<'py> IntoPyObject<'py> + Send + Sync + 'static,
    for<'py> <A as IntoPyObject<'py>>::Target: Sized,
{
    let class = ERRORS_MODULE
        .get_or_try_init(py, || py.import("eventpak.errors").map(Bound::unbind))
        .and_then(|module| module.bind(py).getattr(name))
        .and_then(|class| class.downcast_into::<PyType>().map_err(PyErr::from));
    match class {
        Ok(class) => PyErr::from_type(class, args),
        Err(err) => err,
    }
}

/// Converts an engine error; `data_dir` is the path as the caller gave it.
pub fn to_py(py: Python<'_>, err: Error, data_dir: &str) -> PyErr {
    let message = err.to_string();
    match err {
        Error::InvalidCoordinate(_) => raise(py, "InvalidCoordinate", (message,)),
        Error::InvalidKind(_) => raise(py, "InvalidKind", (message,)),
        Error::InvalidRegion(_) => raise(py, "InvalidRegion", (message,)),
        Error::InvalidConfig(_) => raise(py, "InvalidConfig", (message,)),
        Error::InvalidIdempotencyKey(_) => raise(py, "InvalidIdempotencyKey", (message,)),
        Error::EventTooLarge { .. } => raise(py, "EventTooLarge", (message,)),
        Error::BatchTooLarge(_) => raise(py, "BatchTooLarge", (message,)),
        Error::StoreLocked => raise(py, "StoreLocked", (data_dir.to_owned(),)),
        Error::StoreClosed => raise(py, "StoreClosed", (message,)),
        Error::EventNotFound(id) => raise(py, "EventNotFound", (id,)),
        Error::ConcurrencyConflict { entity, expected, actual } => {
            raise(py, "ConcurrencyConflict", (entity, expected, actual))
        }
        Error::IdempotencyConflict(_) => raise(py, "IdempotencyConflict", (message,)),
        Error::CorruptSegment { path, offset, reason } => {
            raise(py, "CorruptSegment", (path.display().to_string(), offset, reason))
        }
        Error::StorageFailed(_) => raise(py, "StorageFailed", (message,)),
        Error::InvalidCheckpointId(_) => raise(py, "InvalidCheckpointId", (message,)),
        Error::FenceActive => raise(py, "FenceActive", (message,)),
        Error::FenceClosed => raise(py, "FenceClosed", (message,)),
        Error::CursorCheckpointCorrupt { path, reason } => {
            raise(py, "CursorCheckpointCorrupt", (path.display().to_string(), reason))
        }
        Error::CacheFailed(_) => raise(py, "CacheFailed", (message,)),
        Error::CheckpointWriteFailed { id, cause } => raise(py, "CheckpointWriteFailed", (id, cause)),
    }
}
