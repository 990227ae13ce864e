//! `stats()` as a Python dict (typed `ep.StoreStats` on the Python side).

use eventpak_core::Stats;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// The engine's statistics under the names `ep.StoreStats` declares.
pub fn to_dict<'py>(py: Python<'py>, s: &Stats, sync: &str) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("events", s.events)?;
    d.set_item("visible_events", s.visible_events)?;
    d.set_item("durable_events", s.durable_events)?;
    d.set_item("fsyncs", s.fsyncs)?;
    d.set_item("appends", s.appends)?;
    d.set_item("appended_events", s.appended_events)?;
    d.set_item("segments", s.segments)?;
    d.set_item("bytes", s.bytes)?;
    d.set_item("entities", s.entities)?;
    d.set_item("scopes", s.scopes)?;
    d.set_item("kinds", s.kinds)?;
    d.set_item("sync", sync)?;
    d.set_item("writer_failure", s.writer_failure.as_deref())?;
    d.set_item("torn_tail_bytes", s.recovery.torn_tail_bytes)?;
    let shown = |p: &std::path::Path| p.display().to_string();
    d.set_item("torn_tail_segment", s.recovery.torn_tail_segment.as_deref().map(shown))?;
    let removed: Vec<String> = s.recovery.removed_segments.iter().map(|p| shown(p)).collect();
    d.set_item("removed_segments", PyList::new(py, removed)?)?;
    d.set_item("index_checkpoint", s.recovery.index_checkpoint)?;
    d.set_item("scanned_events", s.recovery.scanned_events)?;
    Ok(d)
}
