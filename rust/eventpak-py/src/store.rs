//! `NativeStore`: the engine's store, subclassed by `eventpak.Store` in Python.

use std::path::PathBuf;

use eventpak_core::{Store, StoreConfig, StoredEvent, SyncMode};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::cursor::Cursor;
use crate::errors::to_py;
use crate::event::{from_uuid, AppendReceipt, Event};
use crate::gil::detached;
use crate::projection;
use crate::request::{build, build_item, Options};
use crate::types::Region;

/// An open event store (engine side). Methods release the GIL while the engine works.
#[pyclass(frozen, subclass, module = "eventpak._native")]
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
}

fn events(py: Python<'_>, records: Vec<StoredEvent>) -> PyResult<Vec<Py<Event>>> {
    records.into_iter().map(|r| Py::new(py, Event::new(r))).collect()
}

#[pymethods]
impl NativeStore {
    #[new]
    #[pyo3(signature = (path, *, sync="batch", sync_every_n_events=1000, sync_interval_ms=50,
        segment_max_bytes=256 << 20, max_event_bytes=16 << 20, max_batch_events=4096,
        max_batch_bytes=64 << 20, enable_index_checkpoint=true, create=true, read_only=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        sync: &str,
        sync_every_n_events: u64,
        sync_interval_ms: u64,
        segment_max_bytes: u64,
        max_event_bytes: usize,
        max_batch_events: usize,
        max_batch_bytes: usize,
        enable_index_checkpoint: bool,
        create: bool,
        read_only: bool,
    ) -> PyResult<Self> {
        let shown = path.display().to_string();
        let config = StoreConfig {
            sync: SyncMode::parse(sync).map_err(|e| to_py(py, e, &shown))?,
            sync_every_n_events,
            sync_interval_ms,
            segment_max_bytes,
            max_event_bytes,
            max_batch_events,
            max_batch_bytes,
            enable_index_checkpoint,
            create,
            read_only,
        };
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
        expected_sequence: Option<u64>,
        causation_id: Option<&Bound<'_, PyAny>>,
        correlation_id: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<AppendReceipt> {
        let options = Options { idempotency_key, expected_sequence, causation_id, correlation_id };
        let request = build(coord, kind, payload, options)?;
        detached(py, &self.path, || self.store.append(request)).map(AppendReceipt::from)
    }

    /// Appends events atomically; returns one receipt per event.
    fn append_batch(&self, py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<Vec<AppendReceipt>> {
        let requests = items.try_iter()?.map(|item| build_item(&item?)).collect::<PyResult<Vec<_>>>()?;
        let receipts = detached(py, &self.path, || self.store.append_batch(requests))?;
        Ok(receipts.into_iter().map(AppendReceipt::from).collect())
    }

    /// The event with this id; raises `ep.EventNotFound`.
    fn get(&self, py: Python<'_>, event_id: &Bound<'_, PyAny>) -> PyResult<Py<Event>> {
        let id = from_uuid(event_id)?;
        let record = detached(py, &self.path, || self.store.get(&id))?;
        Py::new(py, Event::new(record))
    }

    /// Events matching `region` in commit order, strictly after `after` when given.
    #[pyo3(signature = (region, *, after=None, limit=None))]
    fn query(
        &self,
        py: Python<'_>,
        region: &Region,
        after: Option<u64>,
        limit: Option<usize>,
    ) -> PyResult<Vec<Py<Event>>> {
        let records = detached(py, &self.path, || self.store.query(&region.inner, after, limit))?;
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
        detached(py, &self.path, || self.store.query_hits_after(&region.inner, position, started, limit))
    }

    /// The event, then its entity's earlier events along the `prev_hash` chain.
    #[pyo3(signature = (event_id, limit=None))]
    fn walk_ancestors(
        &self,
        py: Python<'_>,
        event_id: &Bound<'_, PyAny>,
        limit: Option<usize>,
    ) -> PyResult<Vec<Py<Event>>> {
        let id = from_uuid(event_id)?;
        let records = detached(py, &self.path, || self.store.walk_ancestors(&id, limit))?;
        events(py, records)
    }

    /// A cursor over `region`, starting at the beginning of the log.
    fn cursor(slf: &Bound<'_, Self>, region: &Region) -> PyResult<Cursor> {
        if slf.get().store.is_closed() {
            return Err(to_py(slf.py(), eventpak_core::Error::StoreClosed, &slf.get().path));
        }
        Ok(Cursor::new(slf.clone().unbind(), region))
    }

    /// Same as `cursor`: ordered, at-least-once delivery.
    fn cursor_guaranteed(slf: &Bound<'_, Self>, region: &Region) -> PyResult<Cursor> {
        Self::cursor(slf, region)
    }

    /// Makes the event at `seq` and all before it durable (used before saving a durable
    /// cursor checkpoint).
    fn _sync_through(&self, py: Python<'_>, seq: u64) -> PyResult<()> {
        detached(py, &self.path, || self.store.sync_through(seq))
    }

    /// Up to `limit` relevant events of a projection target after `after`, in commit order.
    fn _replay(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        kinds: Vec<String>,
        after: Option<u64>,
        limit: usize,
    ) -> PyResult<Vec<Py<Event>>> {
        let (target, kinds) = (projection::target(target)?, projection::kind_set(kinds));
        let records = detached(py, &self.path, || {
            let hits = self.store.replay_hits(&target, &kinds, after, limit)?;
            self.store.read_events(&hits)
        })?;
        events(py, records)
    }

    /// The sequence of the newest relevant event of a projection target, if any.
    fn _replay_head(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        kinds: Vec<String>,
    ) -> PyResult<Option<u64>> {
        let (target, kinds) = (projection::target(target)?, projection::kind_set(kinds));
        detached(py, &self.path, || self.store.replay_head(&target, &kinds))
    }

    /// The stable identity of a projection target (part of cache keys).
    #[staticmethod]
    fn _target_identity(target: &Bound<'_, PyAny>) -> PyResult<String> {
        Ok(projection::target(target)?.identity())
    }

    /// Opens the store's visibility fence (used by `Store.fence()`).
    fn _fence_begin(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, &self.path, || self.store.begin_fence())
    }

    /// Appends events through the open fence.
    fn _fence_append(&self, py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<Vec<AppendReceipt>> {
        let requests = items.try_iter()?.map(|item| build_item(&item?)).collect::<PyResult<Vec<_>>>()?;
        let receipts = detached(py, &self.path, || self.store.fence_append_batch(requests))?;
        Ok(receipts.into_iter().map(AppendReceipt::from).collect())
    }

    /// Commits the open fence.
    fn _fence_commit(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, &self.path, || self.store.commit_fence())
    }

    /// Cancels the open fence.
    fn _fence_cancel(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, &self.path, || self.store.cancel_fence())
    }

    /// fsync barrier: every event appended so far is durable when this returns.
    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, &self.path, || self.store.sync())
    }

    /// Counts, sizes and what recovery did at open.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = detached(py, &self.path, || self.store.stats())?;
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
        detached(py, &self.path, || self.store.close())
    }

    /// Holds (`True`) or releases (`False`) every fsync of the group-commit path, so that
    /// tests can observe appenders blocked in fsync. Not for production use.
    fn _pause_syncs(&self, paused: bool) {
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
