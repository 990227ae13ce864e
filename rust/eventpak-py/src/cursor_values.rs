//! Value types of cursors: gap configuration, gap observations, durable checkpoints.

use eventpak_core::{CursorCheckpoint as CoreCheckpoint, GapObservation as CoreGap};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

use crate::args::{int_arg, opt_int_arg, type_name};
use crate::errors::InvalidArgument;
use crate::types::{bool_arg, sequence_items};

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

/// The pickled fields of a [`GapObservation`].
type GapState = (u64, u64, Vec<(u64, u64)>, Vec<(u64, u64)>);

/// A delivery that jumped over cancelled fence ranges or ranges removed by compaction.
#[pyclass(frozen, eq, module = "eventpak._native")]
#[derive(Clone, PartialEq, Eq)]
pub struct GapObservation {
    /// Sequence the cursor would have delivered next with no gap.
    #[pyo3(get)]
    expected_sequence: u64,
    /// Sequence it delivered.
    #[pyo3(get)]
    delivered_sequence: u64,
    /// Cancelled `(start, end)` ranges, end exclusive, within the jump.
    #[pyo3(get)]
    cancelled_ranges: Vec<(u64, u64)>,
    /// Ranges removed by compaction, `(start, end)` with end exclusive, within the jump.
    #[pyo3(get)]
    compacted_ranges: Vec<(u64, u64)>,
}

impl From<CoreGap> for GapObservation {
    fn from(g: CoreGap) -> Self {
        GapObservation {
            expected_sequence: g.expected_sequence,
            delivered_sequence: g.delivered_sequence,
            cancelled_ranges: g.cancelled_ranges,
            compacted_ranges: g.compacted_ranges,
        }
    }
}

#[pymethods]
impl GapObservation {
    fn __repr__(&self) -> String {
        format!(
            "GapObservation(expected_sequence={}, delivered_sequence={}, cancelled_ranges={:?}, \
             compacted_ranges={:?})",
            self.expected_sequence, self.delivered_sequence, self.cancelled_ranges, self.compacted_ranges
        )
    }

    /// A gap observation as a cursor records it; tests and tools build them to compare.
    /// Each range is `(start, end)` with `start < end`, inside `[expected, delivered)`.
    #[new]
    #[pyo3(signature = (expected_sequence, delivered_sequence, cancelled_ranges=None, compacted_ranges=None))]
    fn new(
        expected_sequence: &Bound<'_, PyAny>,
        delivered_sequence: &Bound<'_, PyAny>,
        cancelled_ranges: Option<&Bound<'_, PyAny>>,
        compacted_ranges: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let expected: u64 = int_arg(expected_sequence, "expected_sequence")?;
        let delivered: u64 = int_arg(delivered_sequence, "delivered_sequence")?;
        if delivered < expected {
            let reason = format!("must be >= expected_sequence ({expected}), got {delivered}");
            return Err(InvalidArgument::new_err(("delivered_sequence".to_owned(), reason)));
        }
        let ranges = |value: Option<&Bound<'_, PyAny>>, name: &str| match value.filter(|v| !v.is_none()) {
            None => Ok(Vec::new()),
            Some(v) => gap_ranges(v, name, expected, delivered),
        };
        Ok(GapObservation {
            expected_sequence: expected,
            delivered_sequence: delivered,
            cancelled_ranges: ranges(cancelled_ranges, "cancelled_ranges")?,
            compacted_ranges: ranges(compacted_ranges, "compacted_ranges")?,
        })
    }

    /// Pickles as `GapObservation(expected, delivered, cancelled, compacted)`.
    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyType>, GapState)> {
        let g = slf.get();
        let state = (
            g.expected_sequence,
            g.delivered_sequence,
            g.cancelled_ranges.clone(),
            g.compacted_ranges.clone(),
        );
        Ok((slf.get_type(), state))
    }

    /// Rebuilds an observation pickled by an earlier version (one pickled before
    /// compaction existed has no compacted ranges).
    #[classmethod]
    #[pyo3(signature = (expected_sequence, delivered_sequence, cancelled_ranges, compacted_ranges=Vec::new()))]
    fn _restore(
        _cls: &Bound<'_, PyType>,
        expected_sequence: u64,
        delivered_sequence: u64,
        cancelled_ranges: Vec<(u64, u64)>,
        compacted_ranges: Vec<(u64, u64)>,
    ) -> Self {
        GapObservation { expected_sequence, delivered_sequence, cancelled_ranges, compacted_ranges }
    }
}

/// Reads argument `name`: an iterable of `(start, end)` pairs, each non-empty and inside
/// `[expected, delivered)`, as a cursor records them.
fn gap_ranges(
    value: &Bound<'_, PyAny>,
    name: &str,
    expected: u64,
    delivered: u64,
) -> PyResult<Vec<(u64, u64)>> {
    let mut ranges = Vec::new();
    for (i, item) in value.try_iter()?.enumerate() {
        let item = item?;
        let label = format!("{name}[{i}]");
        let (start, end): (u64, u64) = match sequence_items(&item)? {
            Some(pair) if pair.len() == 2 => (int_arg(&pair[0], &label)?, int_arg(&pair[1], &label)?),
            _ => {
                let shown = type_name(&item);
                return Err(PyTypeError::new_err(format!(
                    "{label} must be a (start, end) pair, not {shown} {item}"
                )));
            }
        };
        if !(expected <= start && start < end && end <= delivered) {
            let reason = format!(
                "({start}, {end}) is not a non-empty range inside [{expected}, {delivered}): end is exclusive"
            );
            return Err(InvalidArgument::new_err((label, reason)));
        }
        ranges.push((start, end));
    }
    Ok(ranges)
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
