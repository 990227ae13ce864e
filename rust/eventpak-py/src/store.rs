//! `NativeStore`: the engine's store, held (never subclassed) by `eventpak.Store`, which
//! exposes the curated public API. Every method that touches disk or waits releases the GIL.

use std::path::PathBuf;

use eventpak_core::{Store, StoredEvent};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::args::opt_int_arg;
use crate::config::from_options;
use crate::cursor::Cursor;
use crate::errors::to_py;
use crate::event::{from_uuid, AppendReceipt, Event};
use crate::gil::detached;
use crate::request::{build, build_items, Options};
use crate::types::Region;

/// An open event store (engine side).
#[pyclass(frozen, module = "eventpak._native")]
pub struct NativeStore {
    store: Store,
    /// The data dir exactly as the caller gave it (for messages).
    path: String,
}

impl NativeStore {
    /// The engine store.
    pub fn engine(&self) -> &Store {
        &self.store
    }

    /// The data dir as the caller gave it.
    pub fn shown_path(&self) -> &str {
        &self.path
    }

    /// Runs `work` on the engine without the GIL, mapping its error.
    pub fn run<T: Send>(
        &self,
        py: Python<'_>,
        work: impl FnOnce(&Store) -> eventpak_core::Result<T> + Send,
    ) -> PyResult<T> {
        detached(py, &self.path, || work(&self.store))
    }
}

/// Wraps stored events as Python `Event`s.
pub fn events(py: Python<'_>, records: Vec<StoredEvent>) -> PyResult<Vec<Py<Event>>> {
    records.into_iter().map(|r| Py::new(py, Event::new(r))).collect()
}

#[pymethods]
impl NativeStore {
    /// Opens (or creates) the store in `path`; `options` are the engine options by name.
    #[staticmethod]
    #[pyo3(signature = (path, **options))]
    fn open(py: Python<'_>, path: PathBuf, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let config = from_options(options)?;
        let shown = path.display().to_string();
        let store = detached(py, &shown, || Store::open(&path, config))?;
        Ok(NativeStore { store, path: shown })
    }

    /// Appends one event and returns its receipt.
    #[pyo3(signature = (coord, kind, payload, *, idempotency_key=None, expected_sequence=None, causation_id=None, correlation_id=None))]
    #[allow(clippy::too_many_arguments)]
    fn append(
        &self,
        py: Python<'_>,
        coord: &Bound<'_, PyAny>,
        kind: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
        idempotency_key: Option<&Bound<'_, PyAny>>,
        expected_sequence: Option<&Bound<'_, PyAny>>,
        causation_id: Option<&Bound<'_, PyAny>>,
        correlation_id: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<AppendReceipt> {
        let expected_sequence = opt_int_arg(expected_sequence, "expected_sequence")?;
        let options = Options { idempotency_key, expected_sequence, causation_id, correlation_id };
        let request = build(coord, kind, payload, options)?;
        self.run(py, |s| s.append(request)).map(AppendReceipt::from)
    }

    /// Appends events atomically; returns one receipt per event.
    fn append_batch(&self, py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<Vec<AppendReceipt>> {
        let requests = build_items(items)?;
        let receipts = self.run(py, |s| s.append_batch(requests))?;
        Ok(receipts.into_iter().map(AppendReceipt::from).collect())
    }

    /// The event with this id; raises `ep.EventNotFound`.
    fn get(&self, py: Python<'_>, event_id: &Bound<'_, PyAny>) -> PyResult<Py<Event>> {
        let id = from_uuid(event_id)?;
        let record = self.run(py, |s| s.get(&id))?;
        Py::new(py, Event::new(record))
    }

    /// Events matching `region` in commit order, strictly after `after` when given.
    #[pyo3(signature = (region, *, after=None, limit=None))]
    fn query(
        &self,
        py: Python<'_>,
        region: &Region,
        after: Option<&Bound<'_, PyAny>>,
        limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<Event>>> {
        let (after, limit) = (opt_int_arg(after, "after")?, opt_int_arg(limit, "limit")?);
        let records = self.run(py, |s| s.query(&region.inner, after, limit))?;
        events(py, records)
    }

    /// Global sequences matching `region` after a cursor position.
    fn query_hits_after(
        &self,
        py: Python<'_>,
        region: &Region,
        position: u64,
        started: bool,
        limit: usize,
    ) -> PyResult<Vec<u64>> {
        self.run(py, |s| s.query_hits_after(&region.inner, position, started, limit))
    }

    /// The event, then its entity's earlier events along the `prev_hash` chain.
    #[pyo3(signature = (event_id, limit=None))]
    fn walk_ancestors(
        &self,
        py: Python<'_>,
        event_id: &Bound<'_, PyAny>,
        limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<Event>>> {
        let limit = opt_int_arg(limit, "limit")?;
        let id = from_uuid(event_id)?;
        let records = self.run(py, |s| s.walk_ancestors(&id, limit))?;
        events(py, records)
    }

    /// A cursor over `region`, starting at the beginning of the log.
    fn cursor(slf: &Bound<'_, Self>, region: &Region) -> PyResult<Cursor> {
        if slf.get().store.is_closed() {
            return Err(to_py(eventpak_core::Error::StoreClosed, &slf.get().path));
        }
        Ok(Cursor::new(slf.clone().unbind(), region))
    }

    /// fsync barrier: every event appended so far is durable when this returns.
    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, Store::sync)
    }

    /// Counts, sizes and what recovery did at open.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.run(py, Store::stats)?;
        let d = PyDict::new(py);
        d.set_item("events", s.events)?;
        d.set_item("durable_events", s.durable_events)?;
        d.set_item("fsyncs", s.fsyncs)?;
        d.set_item("segments", s.segments)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("entities", s.entities)?;
        d.set_item("scopes", s.scopes)?;
        d.set_item("kinds", s.kinds)?;
        d.set_item("sync", self.store.config().sync.name())?;
        d.set_item("writer_failure", s.writer_failure)?;
        d.set_item("torn_tail_bytes", s.recovery.torn_tail_bytes)?;
        let shown = |p: &std::path::Path| p.display().to_string();
        d.set_item("torn_tail_segment", s.recovery.torn_tail_segment.as_deref().map(shown))?;
        let removed: Vec<String> = s.recovery.removed_segments.iter().map(|p| shown(p)).collect();
        d.set_item("removed_segments", PyList::new(py, removed)?)?;
        d.set_item("index_checkpoint", s.recovery.index_checkpoint)?;
        d.set_item("scanned_events", s.recovery.scanned_events)?;
        Ok(d)
    }

    /// Syncs, writes the index checkpoint and releases the data dir. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, Store::close)
    }

    /// Holds (`True`) or releases (`False`) every fsync of the group-commit path, so that
    /// tests can observe appenders blocked in fsync. Not for production use.
    fn pause_syncs(&self, paused: bool) {
        self.store.pause_syncs(paused);
    }

    /// True once `close()` ran.
    #[getter]
    fn closed(&self) -> bool {
        self.store.is_closed()
    }

    /// The data dir as given to `open`.
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }
}
