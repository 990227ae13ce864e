//! Encryption at rest: the store key generator, `NativeStore.forget_entity` and
//! `NativeStore.rotate_encryption_key`.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::args::type_name;
use crate::errors::{to_py, InvalidConfig};
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

    /// Wraps every data key again by the store key `new_key`; returns how many it wrapped.
    fn rotate_encryption_key(&self, py: Python<'_>, new_key: &Bound<'_, PyAny>) -> PyResult<usize> {
        let Ok(key) = new_key.downcast::<PyBytes>() else {
            let got = type_name(new_key);
            return Err(InvalidConfig::new_err((format!("new_key must be bytes, not {got}"),)));
        };
        let key = key.as_bytes().to_vec();
        self.run(py, |s| s.rotate_encryption_key(&key))
    }

    /// True when the store seals its payloads (opened with an encryption_key).
    #[getter]
    fn encrypted(&self) -> bool {
        self.engine().is_encrypted()
    }
}
