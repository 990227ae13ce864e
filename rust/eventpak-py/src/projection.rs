//! Projection support: the Rust-side replay input and `NativeCache` with `CacheMeta`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use eventpak_core::{CacheMeta as CoreMeta, NativeCache as CoreCache, ReplayTarget};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyType};

use crate::args::{int_arg, opt_int_arg, BytesArg};
use crate::event::Event;
use crate::gil::detached;
use crate::store::NativeStore;
use crate::types::Region;

/// When and at which watermark a projection state was cached.
#[pyclass(frozen, eq, hash, module = "eventpak._native")]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheMeta {
    /// Global sequence of the last relevant event folded into the state.
    #[pyo3(get)]
    watermark: u64,
    /// Wall clock (µs since the epoch) when the state was cached.
    #[pyo3(get)]
    cached_at_us: i64,
}

#[pymethods]
impl CacheMeta {
    #[new]
    fn new(watermark: &Bound<'_, PyAny>, cached_at_us: i64) -> PyResult<Self> {
        Ok(CacheMeta { watermark: int_arg(watermark, "watermark")?, cached_at_us })
    }

    fn __repr__(&self) -> String {
        format!("CacheMeta(watermark={}, cached_at_us={})", self.watermark, self.cached_at_us)
    }

    /// Pickles as `CacheMeta(watermark, cached_at_us)`: a user cache may keep its entries in
    /// pickled form (a file, a shared cache server).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, PyType>, (u64, i64)) {
        let meta = slf.get();
        (slf.get_type(), (meta.watermark, meta.cached_at_us))
    }
}

/// Projection states on disk, one file per key under `<dir>/<2 hex>/<hex key>.bin`; writes
/// are atomic (temp → rename) but not fsynced; a damaged file is deleted and missed.
#[pyclass(frozen, module = "eventpak._native")]
pub struct NativeCache {
    inner: CoreCache,
    shown: String,
}

#[pymethods]
impl NativeCache {
    #[new]
    fn new(py: Python<'_>, dir: PathBuf) -> PyResult<Self> {
        let shown = dir.display().to_string();
        let inner = detached(py, &shown, || CoreCache::open(&dir))?;
        Ok(NativeCache { inner, shown })
    }

    /// `(value, CacheMeta)` for `key`, or `None`.
    fn get<'py>(&self, py: Python<'py>, key: BytesArg) -> PyResult<Option<(Bound<'py, PyBytes>, CacheMeta)>> {
        let found = detached(py, &self.shown, || self.inner.get(&key.0))?;
        Ok(found.map(|(value, m)| {
            (PyBytes::new(py, &value), CacheMeta { watermark: m.watermark, cached_at_us: m.cached_at_us })
        }))
    }

    /// Stores `value` under `key`.
    fn put(&self, py: Python<'_>, key: BytesArg, value: BytesArg, meta: &CacheMeta) -> PyResult<()> {
        let meta = CoreMeta { watermark: meta.watermark, cached_at_us: meta.cached_at_us };
        detached(py, &self.shown, || self.inner.put(&key.0, &value.0, meta))
    }

    /// Deletes every entry whose key starts with `prefix`; returns how many.
    fn delete_prefix(&self, py: Python<'_>, prefix: BytesArg) -> PyResult<u64> {
        detached(py, &self.shown, || self.inner.delete_prefix(&prefix.0))
    }

    /// Nothing to flush: puts are written at once (and a cache needs no fsync).
    fn sync(&self) {}

    /// Nothing to prefetch: a get is one file read.
    fn prefetch(&self, key: BytesArg, meta: &CacheMeta) {
        let _ = (key, meta);
    }
}

/// Reads a projection target: an exact entity (`str`) or a `Region`.
fn target(obj: &Bound<'_, PyAny>) -> PyResult<ReplayTarget> {
    if let Ok(region) = obj.downcast::<Region>() {
        return Ok(ReplayTarget::Region(region.get().inner.clone()));
    }
    let entity = obj.extract::<crate::names::CoordinatePart>()?.0;
    // An entity no append could name matches nothing: a typo is an error, not `None`.
    eventpak_core::validate_coordinate_part("entity", &entity).map_err(|e| crate::errors::to_py(e, ""))?;
    Ok(ReplayTarget::Entity(entity))
}

/// Up to `limit` relevant events (kind in `kinds`; empty: every kind) of a projection
/// target after `after`, in commit order.
#[pyfunction]
pub fn replay(
    py: Python<'_>,
    store: &NativeStore,
    target: &Bound<'_, PyAny>,
    kinds: Vec<String>,
    after: Option<&Bound<'_, PyAny>>,
    limit: &Bound<'_, PyAny>,
) -> PyResult<Vec<Py<Event>>> {
    let (after, limit) = (opt_int_arg(after, "after")?, int_arg(limit, "limit")?);
    let (target, kinds) = (self::target(target)?, BTreeSet::from_iter(kinds));
    let records = store.run(py, |s| s.read_events(&s.replay_hits(&target, &kinds, after, limit)?))?;
    store.events(py, records)
}

/// The sequence of the newest relevant event of a projection target, if any.
#[pyfunction]
pub fn replay_head(
    py: Python<'_>,
    store: &NativeStore,
    target: &Bound<'_, PyAny>,
    kinds: Vec<String>,
) -> PyResult<Option<u64>> {
    let (target, kinds) = (self::target(target)?, BTreeSet::from_iter(kinds));
    store.run(py, |s| s.replay_head(&target, &kinds))
}

/// The stable identity of a projection target (part of cache keys).
#[pyfunction]
pub fn target_identity(target: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(self::target(target)?.identity())
}
