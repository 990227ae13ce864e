//! `AppendReceipt`: what an append returns, and its bytes, dict and pickle forms.

use eventpak_core::AppendReceipt as CoreReceipt;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyType};

use super::ids::to_uuid;
use crate::args::BytesArg;
use crate::errors::InvalidArgument;

/// What an append returns. Two receipts are equal when they name the same stored event of
/// the same store; `durable` (when the receipt was made), the key id and the signature (who
/// vouches for it) are not compared.
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

impl AppendReceipt {
    /// The engine receipt.
    pub fn core(&self) -> &CoreReceipt {
        &self.inner
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    #[getter]
    fn store_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.store_id)
    }
    #[getter]
    fn key_id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.key_id.map(|id| PyBytes::new(py, &id))
    }
    /// The Ed25519 signature, computed on first access for a receipt the store just made.
    #[getter]
    fn signature<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.signature().map(|s| PyBytes::new(py, &s))
    }

    /// The versioned binary form of every field (signature and `durable` included).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    /// Parses `to_bytes()` output; checks the form, not the content. Malformed bytes raise
    /// `ep.InvalidArgument`.
    #[classmethod]
    fn from_bytes(_cls: &Bound<'_, PyType>, data: BytesArg) -> PyResult<Self> {
        let data = &data.0[..];
        CoreReceipt::from_bytes(data)
            .map(AppendReceipt::from)
            .map_err(|e| InvalidArgument::new_err(("data".to_owned(), e.to_string())))
    }

    /// Every field by name, JSON-ready: the event id as a str, bytes as hex.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = &self.inner;
        let d = PyDict::new(py);
        d.set_item("event_id", to_uuid(py, &r.event_id)?.str()?)?;
        d.set_item("global_sequence", r.global_sequence)?;
        d.set_item("entity_sequence", r.entity_sequence)?;
        d.set_item("hash", hex(&r.hash))?;
        d.set_item("timestamp_us", r.timestamp_us)?;
        d.set_item("durable", r.durable)?;
        d.set_item("store_id", hex(&r.store_id))?;
        d.set_item("key_id", r.key_id.map(|k| hex(&k)))?;
        d.set_item("signature", r.signature().map(|s| hex(&s)))?;
        Ok(d)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        let key = |r: &CoreReceipt| {
            (r.store_id, r.event_id, r.global_sequence, r.entity_sequence, r.hash, r.timestamp_us)
        };
        other.downcast::<AppendReceipt>().is_ok_and(|o| key(&o.get().inner) == key(&self.inner))
    }

    fn __hash__(&self) -> u64 {
        self.inner.global_sequence
    }

    fn __repr__(&self) -> String {
        format!(
            "AppendReceipt(global_sequence={}, entity_sequence={}, durable={}, signed={})",
            self.inner.global_sequence,
            self.inner.entity_sequence,
            if self.inner.durable { "True" } else { "False" },
            if self.inner.key_id.is_some() { "True" } else { "False" },
        )
    }

    /// Pickles as `AppendReceipt.from_bytes(receipt.to_bytes())`: every field is kept.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let bytes = PyBytes::new(slf.py(), &slf.get().inner.to_bytes());
        Ok((slf.get_type().getattr("from_bytes")?, (bytes,)))
    }
}
