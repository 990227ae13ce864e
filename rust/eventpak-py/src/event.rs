//! `Event` and `AppendReceipt`: read-only views of stored events and receipts.

use eventpak_core::{AppendReceipt as CoreReceipt, StoredEvent};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyString, PyType};

use crate::payload;
use crate::types::Coordinate;

static UUID_CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Builds a `uuid.UUID` from raw bytes.
pub fn to_uuid<'py>(py: Python<'py>, id: &[u8; 16]) -> PyResult<Bound<'py, PyAny>> {
    let class = UUID_CLASS.import(py, "uuid", "UUID")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("bytes", PyBytes::new(py, id))?;
    class.call((), Some(&kwargs))
}

/// Reads a UUID argument: a `uuid.UUID`, or its string form.
pub fn from_uuid(obj: &Bound<'_, PyAny>) -> PyResult<[u8; 16]> {
    let class = UUID_CLASS.import(obj.py(), "uuid", "UUID")?;
    if obj.is_instance(class)? {
        let bytes = obj.getattr("bytes")?;
        return Ok(bytes.downcast::<PyBytes>()?.as_bytes().try_into()?);
    }
    if let Ok(text) = obj.downcast::<PyString>() {
        if let Ok(id) = uuid::Uuid::parse_str(text.to_str()?) {
            return Ok(id.into_bytes());
        }
    }
    Err(PyTypeError::new_err(format!("expected a uuid.UUID, got {}", obj.repr()?)))
}

/// A committed event, read in place from the store's memory-mapped segment: fields are
/// decoded on access; the payload is decoded from msgpack on first access, then cached.
#[pyclass(frozen, module = "eventpak._native")]
pub struct Event {
    stored: StoredEvent,
    payload: PyOnceLock<Py<PyAny>>,
}

impl Event {
    pub fn new(stored: StoredEvent) -> Self {
        Event { stored, payload: PyOnceLock::new() }
    }
}

#[pymethods]
impl Event {
    #[getter]
    fn event_id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_uuid(py, &self.stored.view().event_id())
    }
    #[getter]
    fn global_sequence(&self) -> u64 {
        self.stored.global_sequence()
    }
    #[getter]
    fn coordinate(&self) -> Coordinate {
        let (entity, scope, _) = self.stored.view().names();
        Coordinate { entity: entity.to_owned(), scope: scope.to_owned() }
    }
    #[getter]
    fn entity(&self) -> &str {
        self.stored.view().names().0
    }
    #[getter]
    fn scope(&self) -> &str {
        self.stored.view().names().1
    }
    #[getter]
    fn kind(&self) -> &str {
        self.stored.view().names().2
    }
    #[getter]
    fn entity_sequence(&self) -> u64 {
        self.stored.view().entity_sequence()
    }
    #[getter]
    fn timestamp_us(&self) -> u64 {
        self.stored.view().timestamp_us()
    }
    #[getter]
    fn causation_id<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.stored.view().causation_id().map(|id| to_uuid(py, &id)).transpose()
    }
    #[getter]
    fn correlation_id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_uuid(py, &self.stored.view().correlation_id())
    }
    #[getter]
    fn prev_hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.stored.view().prev_hash())
    }
    #[getter]
    fn hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.stored.view().hash())
    }
    /// The payload, decoded from msgpack (once; later reads return the same object).
    #[getter]
    fn payload(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.payload
            .get_or_try_init(py, || payload::decode(py, self.stored.view().payload()).map(Bound::unbind))
            .map(|p| p.clone_ref(py))
    }
    /// The raw msgpack bytes of the payload.
    #[getter]
    fn payload_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.stored.view().payload())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.downcast::<Event>().is_ok_and(|o| o.get().stored == self.stored)
    }

    fn __hash__(&self) -> u64 {
        self.stored.global_sequence()
    }

    fn __repr__(&self) -> String {
        let view = self.stored.view();
        let (entity, scope, kind) = view.names();
        format!(
            "Event(global_sequence={}, coordinate=({entity:?}, {scope:?}), kind={kind:?}, entity_sequence={})",
            view.global_sequence,
            view.entity_sequence()
        )
    }
}

/// What an append returns. Two receipts are equal when they name the same stored event
/// (`durable` is when the receipt was made, not part of the event).
#[pyclass(frozen, module = "eventpak._native")]
pub struct AppendReceipt {
    inner: CoreReceipt,
}

impl From<CoreReceipt> for AppendReceipt {
    fn from(inner: CoreReceipt) -> Self {
        AppendReceipt { inner }
    }
}

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
}
