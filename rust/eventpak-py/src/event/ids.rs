//! Event ids: `uuid.UUID` values in Python, 16 raw bytes in the engine.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyString, PyType};

use crate::args::type_name;
use crate::errors::InvalidArgument;
use crate::exit::calling_python;

static UUID_CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Builds a `uuid.UUID` from raw bytes.
pub fn to_uuid<'py>(py: Python<'py>, id: &[u8; 16]) -> PyResult<Bound<'py, PyAny>> {
    let class = UUID_CLASS.import(py, "uuid", "UUID")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("bytes", PyBytes::new(py, id))?;
    // `uuid.UUID` is Python code.
    calling_python(py, || class.call((), Some(&kwargs)))
}

/// Reads event id argument `name`: a `uuid.UUID`, or its string form. A string that is not
/// a UUID raises `ep.InvalidArgument` (a `ValueError`), another type a `TypeError`; both
/// name the argument.
pub fn from_uuid(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<[u8; 16]> {
    let class = UUID_CLASS.import(obj.py(), "uuid", "UUID")?;
    if obj.is_instance(class)? {
        let bytes = calling_python(obj.py(), || obj.getattr("bytes"))?;
        return Ok(bytes.downcast::<PyBytes>()?.as_bytes().try_into()?);
    }
    if let Ok(text) = obj.downcast::<PyString>() {
        if let Some(id) = text.to_str().ok().and_then(|s| uuid::Uuid::parse_str(s).ok()) {
            return Ok(id.into_bytes());
        }
        let reason = format!("{} is not a UUID", obj.repr()?);
        return Err(InvalidArgument::new_err((name.to_owned(), reason)));
    }
    let shown = type_name(obj);
    Err(PyTypeError::new_err(format!("{name} must be a uuid.UUID or a UUID string, not {shown}")))
}
