//! Encryption at rest: the store key generator and `NativeStore.forget_entity`.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::to_py;
use crate::names::CoordinatePart;
use crate::store::NativeStore;

/// A new store encryption key: 32 random bytes from the operating system.
#[pyfunction]
pub fn generate_encryption_key(py: Python<'_>) -> PyResult<Bound<'_, PyBytes>> {
    let key = eventpak_core::generate_encryption_key().map_err(|e| to_py(e, ""))?;
    Ok(PyBytes::new(py, &key))
}

#[pymethods]
impl NativeStore {
    /// Destroys the data keys of exactly `entity`; returns how many it destroyed.
    fn forget_entity(&self, py: Python<'_>, entity: CoordinatePart) -> PyResult<usize> {
        self.run(py, |s| s.forget_entity(&entity.0))
    }

    /// True when the store seals its payloads (opened with an encryption_key).
    #[getter]
    fn encrypted(&self) -> bool {
        self.engine().is_encrypted()
    }
}
