//! `AppendReceipt`: what an append returns.

use eventpak_core::AppendReceipt as CoreReceipt;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyType};

use super::ids::to_uuid;

/// What an append returns. Two receipts are equal when they name the same stored event
/// (`durable` is when the receipt was made, not part of the event).
#[pyclass(frozen, module = "eventpak._native")]
pub struct AppendReceipt {
    inner: CoreReceipt,
}

impl AppendReceipt {
    /// Raw id of the event the receipt names.
    pub fn event_id_bytes(&self) -> [u8; 16] {
        self.inner.event_id
    }
}

impl From<CoreReceipt> for AppendReceipt {
    fn from(inner: CoreReceipt) -> Self {
        AppendReceipt { inner }
    }
}

/// What pickling keeps: event id, global sequence, entity sequence, hash, timestamp, durable.
type State<'py> = (Bound<'py, PyBytes>, u64, u64, Bound<'py, PyBytes>, u64, bool);

#[pymethods]
impl AppendReceipt {
    #[getter]
    fn event_id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_uuid(py, &self.inner.event_id)
    }
    #[getter]
    fn global_sequence(&self) -> u64 {
        self.inner.global_sequence
    }
    #[getter]
    fn entity_sequence(&self) -> u64 {
        self.inner.entity_sequence
    }
    #[getter]
    fn hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.hash)
    }
    #[getter]
    fn timestamp_us(&self) -> u64 {
        self.inner.timestamp_us
    }
    #[getter]
    fn durable(&self) -> bool {
        self.inner.durable
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.downcast::<AppendReceipt>().is_ok_and(|o| {
            let (a, b) = (&o.get().inner, &self.inner);
            (a.event_id, a.global_sequence, a.entity_sequence, a.hash, a.timestamp_us)
                == (b.event_id, b.global_sequence, b.entity_sequence, b.hash, b.timestamp_us)
        })
    }

    fn __hash__(&self) -> u64 {
        self.inner.global_sequence
    }

    fn __repr__(&self) -> String {
        format!(
            "AppendReceipt(global_sequence={}, entity_sequence={}, durable={})",
            self.inner.global_sequence,
            self.inner.entity_sequence,
            if self.inner.durable { "True" } else { "False" }
        )
    }

    /// Pickles as `AppendReceipt._restore(state)`.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (State<'py>,))> {
        let (py, r) = (slf.py(), &slf.get().inner);
        let state = (
            PyBytes::new(py, &r.event_id),
            r.global_sequence,
            r.entity_sequence,
            PyBytes::new(py, &r.hash),
            r.timestamp_us,
            r.durable,
        );
        Ok((slf.get_type().getattr("_restore")?, (state,)))
    }

    /// Rebuilds a pickled receipt.
    #[classmethod]
    fn _restore(_cls: &Bound<'_, PyType>, state: State<'_>) -> PyResult<Self> {
        let (event_id, global_sequence, entity_sequence, hash, timestamp_us, durable) = state;
        let bad = |_| PyValueError::new_err("not a pickled AppendReceipt");
        Ok(AppendReceipt {
            inner: CoreReceipt {
                event_id: event_id.as_bytes().try_into().map_err(bad)?,
                global_sequence,
                entity_sequence,
                hash: hash.as_bytes().try_into().map_err(bad)?,
                timestamp_us,
                durable,
            },
        })
    }
}
