//! Value types of cursors: gap configuration and durable checkpoints (gap observations are
//! in `gap_observation`).

use eventpak_core::CursorCheckpoint as CoreCheckpoint;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

use crate::args::{int_arg, opt_int_arg, type_name};
use crate::errors::InvalidArgument;
use crate::types::bool_arg;

/// Whether a cursor records gap observations, and how many it keeps.
#[pyclass(frozen, eq, hash, module = "eventpak._native")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CursorGapConfig {
    /// Ring capacity; `None` when disabled.
    #[pyo3(get)]
    pub capacity: Option<usize>,
}

#[pymethods]
impl CursorGapConfig {
    /// Records the newest `capacity` observations (oldest dropped first).
    #[staticmethod]
    fn enabled(capacity: &Bound<'_, PyAny>) -> PyResult<Self> {
        let capacity = int_arg::<usize>(capacity, "capacity")?;
        if capacity == 0 {
            return Err(InvalidArgument::new_err(("capacity", "must be at least 1, got 0")));
        }
        Ok(CursorGapConfig { capacity: Some(capacity) })
    }

    /// Records nothing.
    #[staticmethod]
    fn disabled() -> Self {
        CursorGapConfig { capacity: None }
    }

    fn __repr__(&self) -> String {
        match self.capacity {
            Some(c) => format!("CursorGapConfig.enabled({c})"),
            None => "CursorGapConfig.disabled()".into(),
        }
    }
}

/// A saved cursor position (value type).
#[pyclass(frozen, eq, hash, module = "eventpak._native")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CursorCheckpoint {
    #[pyo3(get)]
    position: u64,
    #[pyo3(get)]
    started: bool,
    #[pyo3(get)]
    process_boot_ns: Option<u64>,
    #[pyo3(get)]
    region_identity: Option<String>,
}

impl From<CoreCheckpoint> for CursorCheckpoint {
    fn from(c: CoreCheckpoint) -> Self {
        CursorCheckpoint {
            position: c.position,
            started: c.started,
            process_boot_ns: c.process_boot_ns,
            region_identity: c.region_identity,
        }
    }
}

impl From<&CursorCheckpoint> for CoreCheckpoint {
    fn from(c: &CursorCheckpoint) -> Self {
        CoreCheckpoint {
            position: c.position,
            started: c.started,
            process_boot_ns: c.process_boot_ns,
            region_identity: c.region_identity.clone(),
        }
    }
}

#[pymethods]
impl CursorCheckpoint {
    #[new]
    #[pyo3(signature = (position, started, process_boot_ns=None, region_identity=None))]
    fn new(
        position: &Bound<'_, PyAny>,
        started: &Bound<'_, PyAny>,
        process_boot_ns: Option<&Bound<'_, PyAny>>,
        region_identity: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let region_identity = match region_identity.filter(|r| !r.is_none()) {
            None => None,
            Some(r) => Some(r.downcast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!("region_identity must be a str or None, not {}", type_name(r)))
            })?),
        };
        Ok(CursorCheckpoint {
            position: int_arg(position, "position")?,
            started: bool_arg(started, "started")?,
            process_boot_ns: opt_int_arg(process_boot_ns, "process_boot_ns")?,
            region_identity: region_identity.map(|r| r.to_str().map(str::to_owned)).transpose()?,
        })
    }

    /// Pickles as `CursorCheckpoint(position, started, process_boot_ns, region_identity)`.
    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> (Bound<'py, PyType>, (u64, bool, Option<u64>, Option<String>)) {
        let c = slf.get();
        (slf.get_type(), (c.position, c.started, c.process_boot_ns, c.region_identity.clone()))
    }

    fn __repr__(&self) -> String {
        let boot = self.process_boot_ns.map_or("None".to_owned(), |n| n.to_string());
        let identity = self.region_identity.as_ref().map_or("None".to_owned(), |i| format!("{i:?}"));
        format!(
            "CursorCheckpoint(position={}, started={}, process_boot_ns={boot}, region_identity={identity})",
            self.position,
            if self.started { "True" } else { "False" },
        )
    }
}
