//! `NativeStore`: the engine's store, held (never subclassed) by `eventpak.Store`, which
//! exposes the curated public API. Every method that touches disk or waits releases the GIL.

use std::path::PathBuf;
use std::sync::Arc;

use eventpak_core::{Store, StoredEvent};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::args::{int_arg, opt_int_arg};
use crate::config::from_options;
use crate::cursor::Cursor;
use crate::errors::to_py;
use crate::event::{from_uuid, Event};
use crate::gil::detached;
use crate::names::{CheckpointId, CoordinatePart};
use crate::types::Region;
use crate::upcast::Upcasters;

/// An open event store (engine side).
#[pyclass(frozen, module = "eventpak._native")]
pub struct NativeStore {
    store: Store,
    /// The data dir exactly as the caller gave it (for messages).
    path: String,
    /// Converts payload values msgpack cannot carry, as `json.dumps(default=)` does.
    default: Option<Py<PyAny>>,
    /// Run on read; `None` when the store has none, so its events pay nothing for them.
    upcasters: Option<Arc<Upcasters>>,
}

impl Drop for NativeStore {
    /// A store dropped unclosed closes itself: on a big store its final fsync and index
    /// checkpoint take a while, which other Python threads must not wait out. Without the GIL
    /// then, as `close()` runs. (At interpreter exit every store left open was closed first,
    /// by the package's exit hook, so no thread re-takes the GIL here while Python ends.)
    fn drop(&mut self) {
        if self.store.is_closed() {
            return;
        }
        let store = &self.store;
        Python::attach(|py| py.detach(|| drop(store.close())));
    }
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

    /// The store's `default=` payload converter, bound to the GIL.
    pub fn default_encoder<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.default.as_ref().map(|d| d.bind(py).clone())
    }

    /// Runs `work` on the engine without the GIL, mapping its error.
    pub fn run<T: Send>(
        &self,
        py: Python<'_>,
        work: impl FnOnce(&Store) -> eventpak_core::Result<T> + Send,
    ) -> PyResult<T> {
        detached(py, &self.path, || work(&self.store))
    }

    /// Wraps stored events read from this store as Python `Event`s.
    pub fn events(&self, py: Python<'_>, records: Vec<StoredEvent>) -> PyResult<Vec<Py<Event>>> {
        let keys = self.store.payload_keys();
        records
            .into_iter()
            .map(|r| Py::new(py, Event::new(r, self.upcasters.clone(), keys.cloned())))
            .collect()
    }
}

#[pymethods]
impl NativeStore {
    /// Opens (or creates) the store in `path`; `options` are the engine options by name,
    /// `default` converts payload values msgpack cannot carry, `upcasters` is the snapshot
    /// of an `eventpak.Upcasters` run on read.
    #[staticmethod]
    #[pyo3(signature = (path, *, default=None, upcasters=None, **options))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        default: Option<Py<PyAny>>,
        upcasters: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let config = from_options(options)?;
        let upcasters = Upcasters::from_py(upcasters)?;
        let shown = path.display().to_string();
        let store = detached(py, &shown, || Store::open(&path, config))?;
        Ok(NativeStore { store, path: shown, default: default.filter(|d| !d.is_none(py)), upcasters })
    }

    /// The event with this id; raises `ep.EventNotFound`.
    fn get(&self, py: Python<'_>, event_id: &Bound<'_, PyAny>) -> PyResult<Py<Event>> {
        let id = from_uuid(event_id, "event_id")?;
        let record = self.run(py, |s| s.get(&id))?;
        Py::new(py, Event::new(record, self.upcasters.clone(), self.store.payload_keys().cloned()))
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
        self.events(py, records)
    }

    /// Global sequences matching `region` after a cursor position.
    fn query_hits_after(
        &self,
        py: Python<'_>,
        region: &Region,
        position: &Bound<'_, PyAny>,
        started: bool,
        limit: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<u64>> {
        let (position, limit) = (int_arg(position, "position")?, int_arg(limit, "limit")?);
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
        let id = from_uuid(event_id, "event_id")?;
        let records = self.run(py, |s| s.walk_ancestors(&id, limit))?;
        self.events(py, records)
    }

    /// A cursor over `region`: from the beginning of the log, or strictly after the global
    /// sequence `after`.
    #[pyo3(signature = (region, *, after=None))]
    fn cursor(slf: &Bound<'_, Self>, region: &Region, after: Option<&Bound<'_, PyAny>>) -> PyResult<Cursor> {
        let after = opt_int_arg(after, "after")?;
        slf.get().store.check_open().map_err(|e| to_py(e, &slf.get().path))?;
        Ok(Cursor::new(slf.clone().unbind(), region, after))
    }

    /// The newest visible global sequence, or `None` while nothing is visible.
    fn head(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        self.run(py, Store::head)
    }

    /// The entity's next clock value: what `expected_sequence` must be for its next append.
    fn next_sequence(&self, py: Python<'_>, entity: CoordinatePart) -> PyResult<u64> {
        self.run(py, |s| s.next_sequence(&entity.0))
    }

    /// Deletes cursor checkpoint `checkpoint_id`; `False` when there was none.
    fn reset_checkpoint(&self, py: Python<'_>, checkpoint_id: CheckpointId) -> PyResult<bool> {
        self.run(py, |s| s.reset_cursor_checkpoint(&checkpoint_id.0))
    }

    /// The 16 random bytes fixed when the data dir was created.
    #[getter]
    fn store_id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.check_open()?;
        Ok(PyBytes::new(py, &self.store.store_id()))
    }

    /// Raises `ep.StoreClosed` when the store is closed, or was opened before a fork in
    /// this (forked) process; else nothing.
    fn check_open(&self) -> PyResult<()> {
        self.store.check_open().map_err(|e| crate::errors::to_py(e, &self.path))
    }

    /// fsync barrier: every event appended so far is durable when this returns.
    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, Store::sync)
    }

    /// Counts, sizes and what recovery did at open.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.run(py, Store::stats)?;
        crate::stats::to_dict(py, &stats, self.store.config().sync.name())
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

    /// The data dir as given to `open` (what error messages name).
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    /// The data dir as the store reaches it: made absolute at open, so a later change of
    /// the working directory does not move it (leases and checkpoints are found here).
    #[getter]
    fn data_dir(&self) -> String {
        self.store.data_dir().display().to_string()
    }
}
