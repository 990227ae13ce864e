//! The one way the binding calls into the engine: with the GIL released, so other
//! Python threads run while Rust works, waits on locks or waits for fsync.

use eventpak_core::Result;
use pyo3::prelude::*;

use crate::errors::to_py;

/// Runs `work` without the GIL and maps its error to a typed Python exception.
pub fn detached<T: Send>(
    py: Python<'_>,
    data_dir: &str,
    work: impl FnOnce() -> Result<T> + Send,
) -> PyResult<T> {
    py.detach(work).map_err(|e| to_py(e, data_dir))
}
