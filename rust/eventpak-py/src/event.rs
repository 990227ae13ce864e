//! `Event` and `AppendReceipt`: read-only views of stored events and receipts, and the
//! event id arguments they share.

mod ids;
mod payload_slot;
mod receipt;
mod sealed;

pub use ids::{from_uuid, to_uuid};
pub use receipt::AppendReceipt;

use std::borrow::Cow;
use std::sync::Arc;

use eventpak_core::{PayloadKeys, StoredEvent};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple, PyType};

use self::payload_slot::PayloadSlot;
use crate::errors::InvalidArgument;
use crate::payload;
use crate::types::Coordinate;
use crate::upcast::{decode_typed, Upcasters};

/// A frame the engine would not take as an event (from a damaged or forged pickle):
/// `ep.InvalidArgument` (a `ValueError`) naming the frame.
fn refused(e: eventpak_core::Error) -> PyErr {
    let reason = match e {
        eventpak_core::Error::Internal(reason) => reason,
        other => other.to_string(),
    };
    InvalidArgument::new_err(("pickled event frame".to_owned(), reason))
}

/// A committed event, read in place from the store's memory-mapped segment: fields are
/// decoded on access; the payload is decoded from msgpack on first access, brought up to
/// date by the store's upcasters (if it has any), then cached.
// No PyO3 free list: its pop and push each take a mutex, which costs more than CPython's
// own small-object allocator does for an object this size (measured: 32 instructions per
// event more on a bare read, 120 more with the payload decoded, and four atomic operations).
#[pyclass(frozen, module = "eventpak._native")]
pub struct Event {
    stored: StoredEvent,
    /// The payload once read.
    payload: PayloadSlot,
    upcasters: Option<Arc<Upcasters>>,
    /// The data keys of an encrypted store (its stored payload is sealed); `None`: clear.
    keys: Option<PayloadKeys>,
}

impl Event {
    /// An event read by a store with these upcasters (`None`: it has none) and, for an
    /// encrypted store, these keys.
    pub fn new(stored: StoredEvent, upcasters: Option<Arc<Upcasters>>, keys: Option<PayloadKeys>) -> Self {
        Event { stored, payload: PayloadSlot::new(), upcasters, keys }
    }

    /// The payload's msgpack bytes: opened with the store's keys when it is encrypted
    /// (`ep.PayloadForgotten` once its entity was forgotten).
    fn plain_payload(&self) -> PyResult<Cow<'_, [u8]>> {
        sealed::opened(&self.stored, self.keys.as_ref())
    }

    /// The stored event behind this view.
    pub fn stored(&self) -> &StoredEvent {
        &self.stored
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
    /// `timestamp_us` as an aware UTC `datetime.datetime`.
    #[getter]
    fn timestamp<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        payload::utc_from_micros(py, self.stored.view().timestamp_us())
    }
    /// The payload's schema version as `payload` shows it: the newest registered for its
    /// kind when the store's upcasters cover the stored one, else the stored one.
    #[getter]
    fn payload_version(&self) -> u32 {
        let view = self.stored.view();
        match &self.upcasters {
            None => view.payload_version(),
            Some(upcasters) => upcasters.version(view.kind_bytes(), view.payload_version()),
        }
    }
    /// The payload's schema version as stored on disk.
    #[getter]
    fn stored_payload_version(&self) -> u32 {
        self.stored.view().payload_version()
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
    /// The payload, decoded from msgpack and upcast (once; later reads return the same
    /// object). An upcaster that raises is not cached: the next read runs it again.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(cached) = self.payload.get(py) {
            return Ok(cached);
        }
        let mut decoded = sealed::read_opened(&self.stored, self.keys.as_ref(), |b| payload::decode(py, b))?;
        if let Some(upcasters) = &self.upcasters {
            // The frame's fields are read only when an upcaster needs them: a plain read
            // looks at the frame once, for its payload.
            let view = self.stored.view();
            let (kind, stored) = (view.kind_bytes(), view.payload_version());
            decoded = upcasters.apply(kind, stored, view.global_sequence, decoded)?;
        }
        Ok(self.payload.set_once(decoded))
    }
    /// The event's tags, in the order they were given at append.
    #[getter]
    fn tags<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.stored.view().tags().collect::<Vec<_>>())
    }
    /// The raw msgpack bytes of the payload (of an encrypted store: opened, as `payload`
    /// reads them; `ep.PayloadForgotten` once its entity was forgotten).
    #[getter]
    fn payload_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.plain_payload()?))
    }

    /// The payload as an instance of `cls`, an `@ep.event_type` dataclass of this event's
    /// kind and payload version (see `eventpak.typed.decode_event`).
    fn decode<'py>(slf: &Bound<'py, Self>, cls: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        decode_typed(slf.as_any(), cls)
    }

    /// Two events are equal when they are the same stored event: same id, position and
    /// chain hash (which covers the names, the payload and the chain before it).
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        let key = |e: &StoredEvent| {
            let view = e.view();
            (view.event_id(), view.global_sequence, view.hash())
        };
        other.downcast::<Event>().is_ok_and(|o| key(&o.get().stored) == key(&self.stored))
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

    /// Pickles as `Event._restore(frame)`: the event's fields in an owned frame of the
    /// segment format, without its idempotency key (which an `Event` does not show).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let mut record = slf.get().stored.record();
        record.idempotency_key = None;
        if slf.get().keys.is_some() {
            // A copy carries no key: it holds the opened payload (a forgotten one raises).
            record.payload = slf.get().plain_payload()?.into_owned();
        }
        let owned = StoredEvent::from_record(&record).map_err(refused)?;
        let frame = PyBytes::new(slf.py(), owned.frame_bytes());
        Ok((slf.get_type().getattr("_restore")?, (frame,)))
    }

    /// Rebuilds a pickled event; its frame is checked (lengths, CRC) as a read checks one.
    /// Upcasters belong to a store, not to a pickle: the copy shows the stored payload.
    #[classmethod]
    fn _restore(_cls: &Bound<'_, PyType>, frame: &[u8]) -> PyResult<Self> {
        let stored = StoredEvent::from_frame(frame.to_vec()).map_err(refused)?;
        Ok(Event::new(stored, None, None))
    }
}
