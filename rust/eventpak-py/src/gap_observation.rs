//! `ep.GapObservation`: a delivery that jumped over cancelled or compacted ranges.

use eventpak_core::GapObservation as CoreGap;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::args::{int_arg, type_name};
use crate::errors::InvalidArgument;
use crate::types::sequence_items;

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
    /// A gap observation as a cursor records it, for tests and tools to compare with: a
    /// jump (`delivered_sequence > expected_sequence`) and, for each kind, ranges `(start,
    /// end)` in ascending order, each non-empty, none overlapping another, all inside
    /// `[expected_sequence, delivered_sequence)`.
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
        if delivered <= expected {
            let reason =
                format!("must be > expected_sequence ({expected}): a gap is a jump, got {delivered}");
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

    fn __repr__(&self) -> String {
        format!(
            "GapObservation(expected_sequence={}, delivered_sequence={}, cancelled_ranges={:?}, \
             compacted_ranges={:?})",
            self.expected_sequence, self.delivered_sequence, self.cancelled_ranges, self.compacted_ranges
        )
    }

    /// Pickles as `GapObservation._restore(expected, delivered, cancelled, compacted)`,
    /// which versions without the constructor can load too.
    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, GapState)> {
        let g = slf.get();
        let state = (
            g.expected_sequence,
            g.delivered_sequence,
            g.cancelled_ranges.clone(),
            g.compacted_ranges.clone(),
        );
        Ok((slf.get_type().getattr("_restore")?, state))
    }

    /// Rebuilds a pickled observation (one pickled before compaction existed has no
    /// compacted ranges).
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

/// Reads argument `name`: `(start, end)` pairs as a cursor records them (see
/// [`GapObservation::new`]).
fn gap_ranges(
    value: &Bound<'_, PyAny>,
    name: &str,
    expected: u64,
    delivered: u64,
) -> PyResult<Vec<(u64, u64)>> {
    let Some(items) = sequence_items(value)? else {
        let shown = type_name(value);
        return Err(PyTypeError::new_err(format!(
            "{name} must be a sequence of (start, end) pairs, not {shown}"
        )));
    };
    let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let label = format!("{name}[{i}]");
        let (start, end): (u64, u64) = match sequence_items(item)? {
            Some(pair) if pair.len() == 2 => (int_arg(&pair[0], &label)?, int_arg(&pair[1], &label)?),
            _ => {
                let shown = type_name(item);
                return Err(PyTypeError::new_err(format!(
                    "{label} must be a (start, end) pair, not {shown} {item}"
                )));
            }
        };
        let after = ranges.last().map_or(expected, |&(_, previous_end)| previous_end);
        if !(after <= start && start < end && end <= delivered) {
            let reason = format!(
                "({start}, {end}) is not a non-empty range inside [{after}, {delivered}) (end exclusive; \
                 ranges ascending, none overlapping)"
            );
            return Err(InvalidArgument::new_err((label, reason)));
        }
        ranges.push((start, end));
    }
    Ok(ranges)
}
